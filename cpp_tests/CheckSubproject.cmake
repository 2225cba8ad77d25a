# CTest driver of cmake_configure: configures (does not build) subproject/, a parent project that
# adds cyborgdb-kms with add_subdirectory, and checks
#   1. the cargo profile follows CMAKE_BUILD_TYPE (Debug -> dev; Release, RelWithDebInfo,
#      MinSizeRel -> release), an explicit CYB_CARGO_PROFILE overrides it, and the configure
#      output says which one is used;
#   2. cargo's target directory is under the build directory by default;
#   3. the parent gets cyborgdb::kms but none of our tests (ctest -N) and no quickstart target.
# Usage: cmake -DSOURCE_DIR=<repo> -DWORK_DIR=.. -DGENERATOR=.. -DC_COMPILER=.. -DCXX_COMPILER=..
#              -DCTEST=<ctest> -P CheckSubproject.cmake
set(build "${WORK_DIR}/parent-build")
file(REMOVE_RECURSE "${WORK_DIR}")

# Configures the parent with `args` and fails unless the output matches `expected`.
function(configure expected)
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/cpp_tests/subproject" -B "${build}"
            -G "${GENERATOR}" "-DCYB_SOURCE_DIR=${SOURCE_DIR}" "-DCMAKE_C_COMPILER=${C_COMPILER}"
            "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("$ cmake ${ARGN}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configure failed (${rc})")
  endif()
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "configure output lacks '${expected}'")
  endif()
endfunction()

set(target_dir "target dir ${build}/cyborgdb-kms/cargo-target")
configure("cargo profile dev \\(from CMAKE_BUILD_TYPE 'Debug'\\), ${target_dir}"
          -DCMAKE_BUILD_TYPE=Debug)
foreach(type Release RelWithDebInfo MinSizeRel)
  configure("cargo profile release \\(from CMAKE_BUILD_TYPE '${type}'\\), ${target_dir}"
            -DCMAKE_BUILD_TYPE=${type})
endforeach()
configure("cargo profile dev \\(from CYB_CARGO_PROFILE\\)" -DCMAKE_BUILD_TYPE=Release
          -DCYB_CARGO_PROFILE=dev)
configure("cargo profile release \\(from CYB_CARGO_PROFILE\\)" -DCMAKE_BUILD_TYPE=Debug
          -DCYB_CARGO_PROFILE=release)
# A bad profile name is refused at configure time.
execute_process(
  COMMAND "${CMAKE_COMMAND}" "${build}" -DCYB_CARGO_PROFILE=fast
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0 OR NOT out MATCHES "CYB_CARGO_PROFILE must be dev, release or empty, not 'fast'")
  message(FATAL_ERROR "CYB_CARGO_PROFILE=fast was not refused:\n${out}")
endif()
configure("cargo profile release" -DCYB_CARGO_PROFILE= -DCMAKE_BUILD_TYPE=Release)

# 3. No tests, no example; the library targets are there.
execute_process(COMMAND "${CTEST}" -N WORKING_DIRECTORY "${build}" OUTPUT_VARIABLE out
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT out MATCHES "Total Tests: 0")
  message(FATAL_ERROR "the parent project has tests of ours:\n${out}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${build}" --target help
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT out MATCHES "cyborgdb_kms" OR out MATCHES "quickstart|c_abi_test")
  message(FATAL_ERROR "unexpected targets in the parent project:\n${out}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
