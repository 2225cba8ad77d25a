# CTest driver of install_consumer: installs the build into a scratch prefix, then builds and runs
#   1. consumer/ (CMake: find_package(CyborgDBKMS) -> cyborgdb::kms_cpp, cyborgdb::kms, cyborgdb::kms_static)
#   2. consumer.cpp compiled by hand with `pkg-config --cflags --libs cyborgdb-kms`
# Usage: cmake -DBUILD_DIR=.. -DWORK_DIR=.. -DCONSUMER_SOURCE_DIR=.. -DGENERATOR=.. -DCXX_COMPILER=..
#              -DC_COMPILER=.. -DPKG_CONFIG=.. -P CheckInstall.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("$ ${ARGN}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f include/cyborgdb_core/index_kms.h include/cyborgdb_core/index_kms.hpp
          lib/libcyborgdb_kms.so lib/libcyborgdb_kms.a
          lib/cmake/CyborgDBKMS/CyborgDBKMSConfig.cmake
          lib/cmake/CyborgDBKMS/CyborgDBKMSConfigVersion.cmake
          lib/pkgconfig/cyborgdb-kms.pc
          share/doc/cyborgdb-kms/LICENSE share/doc/cyborgdb-kms/THIRD_PARTY_NOTICES
          share/doc/cyborgdb-kms/CHANGELOG.md)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# 1. find_package
run("${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/consumer-build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_C_COMPILER=${C_COMPILER}" -DCMAKE_BUILD_TYPE=Debug)
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer-build")
foreach(exe consumer_cpp consumer_c consumer_c_static)
  run("${WORK_DIR}/consumer-build/${exe}")
endforeach()

# 2. pkg-config
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config not found")
endif()
set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
run("${PKG_CONFIG}" --modversion cyborgdb-kms)
run("${PKG_CONFIG}" --cflags --libs cyborgdb-kms)
separate_arguments(flags UNIX_COMMAND "${RUN_OUTPUT}")
run("${PKG_CONFIG}" --variable=libdir cyborgdb-kms)
string(STRIP "${RUN_OUTPUT}" libdir)
run("${CXX_COMPILER}" -std=c++17 -Wall -Wextra -Werror "${CONSUMER_SOURCE_DIR}/consumer.cpp"
    -o "${WORK_DIR}/consumer_pkgconfig" ${flags} "-Wl,-rpath,${libdir}")
run("${WORK_DIR}/consumer_pkgconfig")
file(REMOVE_RECURSE "${WORK_DIR}")
