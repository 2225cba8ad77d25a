# CTest driver of install_consumer: installs the build into a scratch prefix, checks the installed
# files (versioned .so with its SONAME links, debug info split into lib/.debug/ with a
# .gnu_debuglink, no debug info left in the .so or the .a, the .a one prelinked object defining
# only cyb_* globally), then builds and runs
#   1. consumer/ (CMake: find_package(CyborgDBKMS) -> cyborgdb::kms_cpp, cyborgdb::kms, cyborgdb::kms_static),
#      checking that the shared-library consumers record NEEDED libcyborgdb_kms.so.<major>
#   2. consumer.cpp compiled by hand with `pkg-config --cflags --libs cyborgdb-kms`
# and finally installs again with `cmake --install --strip` (stripped, no debug file).
# Usage: cmake -DBUILD_DIR=.. -DWORK_DIR=.. -DCONSUMER_SOURCE_DIR=.. -DGENERATOR=.. -DCXX_COMPILER=..
#              -DC_COMPILER=.. -DPKG_CONFIG=.. -DREADELF=.. -DVERSION=x.y.z -P CheckInstall.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("$ ${ARGN}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

# Fails unless `readelf <args>` output matches / does not match `regex`.
function(expect_readelf match regex)
  execute_process(COMMAND "${READELF}" --wide ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf ${ARGN} failed: ${err}")
  endif()
  if(match AND NOT out MATCHES "${regex}")
    message(FATAL_ERROR "readelf ${ARGN}: no '${regex}'")
  elseif(NOT match AND out MATCHES "${regex}")
    message(FATAL_ERROR "readelf ${ARGN}: unexpected '${regex}'")
  endif()
endfunction()

string(REGEX MATCH "^[0-9]+" major "${VERSION}")
# Debug info sections (not .debug_gdb_scripts: an allocated section, Rust's gdb pretty-printer hint).
set(debug_info "\\.debug_(info|line|str|abbrev|ranges|rnglists|loc|loclists|aranges|frame) ")
set(so "libcyborgdb_kms.so")
set(so_major "${so}.${major}")
set(so_file "${so}.${VERSION}")
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f include/cyborgdb_core/index_kms.h include/cyborgdb_core/index_kms.hpp
          lib/${so_file} lib/${so_major} lib/${so} lib/libcyborgdb_kms.a
          lib/.debug/${so_file}.debug
          lib/cmake/CyborgDBKMS/CyborgDBKMSConfig.cmake
          lib/cmake/CyborgDBKMS/CyborgDBKMSConfigVersion.cmake
          lib/cmake/CyborgDBKMS/CyborgDBKMSTargets.cmake
          lib/pkgconfig/cyborgdb-kms.pc
          share/doc/cyborgdb-kms/LICENSE share/doc/cyborgdb-kms/THIRD_PARTY_NOTICES
          share/doc/cyborgdb-kms/CHANGELOG.md)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
# The command line (CYB_INSTALL_CLI): the binary, its notices, and it runs.
if(INSTALL_CLI)
  foreach(f bin/cyborgdb-kms share/doc/cyborgdb-kms/THIRD_PARTY_NOTICES.cli)
    if(NOT EXISTS "${prefix}/${f}")
      message(FATAL_ERROR "not installed: ${f}")
    endif()
  endforeach()
  execute_process(COMMAND "${prefix}/bin/cyborgdb-kms" --version
                  OUTPUT_VARIABLE cli_version RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT cli_version MATCHES "^cyborgdb-kms ${VERSION}")
    message(FATAL_ERROR "bin/cyborgdb-kms --version: exit ${rc}, '${cli_version}'")
  endif()
endif()
foreach(link ${so} ${so_major})
  file(READ_SYMLINK "${prefix}/lib/${link}" target)
  if(NOT IS_SYMLINK "${prefix}/lib/${link}" OR NOT target MATCHES "^${so}")
    message(FATAL_ERROR "lib/${link} is not a relative link to the library (${target})")
  endif()
endforeach()
# Stripped: no debug sections and no .symtab in the .so, a debug link to lib/.debug/; the debug
# file has the debug info; no debug sections in the .a.
expect_readelf(TRUE "\\.gnu_debuglink" --sections "${prefix}/lib/${so_file}")
expect_readelf(FALSE "${debug_info}|\\.symtab " --sections "${prefix}/lib/${so_file}")
expect_readelf(TRUE "${so_file}\\.debug" --string-dump=.gnu_debuglink "${prefix}/lib/${so_file}")
expect_readelf(TRUE "\\.debug_line " --sections "${prefix}/lib/.debug/${so_file}.debug")
expect_readelf(FALSE "${debug_info}" --sections "${prefix}/lib/libcyborgdb_kms.a")
# The .a is one prelinked object whose only global definitions are the C API's functions.
execute_process(COMMAND "${READELF}" --wide --syms "${prefix}/lib/libcyborgdb_kms.a"
                OUTPUT_VARIABLE static_symbols RESULT_VARIABLE rc)
string(REGEX MATCHALL "\nFile: [^\n]*" members "${static_symbols}")
list(LENGTH members member_count)
string(REGEX MATCHALL " (GLOBAL|WEAK) +[A-Z]+ +[0-9]+ [^\n]*" static_defined "${static_symbols}")
list(FILTER static_defined EXCLUDE REGEX " cyb_[a-z0-9_]+$")
if(NOT rc EQUAL 0 OR NOT member_count EQUAL 1 OR static_defined)
  message(FATAL_ERROR "libcyborgdb_kms.a: ${member_count} members, global definitions besides "
                      "cyb_*: ${static_defined}")
endif()

# 1. find_package
run("${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/consumer-build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_C_COMPILER=${C_COMPILER}" -DCMAKE_BUILD_TYPE=Debug)
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer-build")
foreach(exe consumer_cpp consumer_c consumer_c_static)
  run("${WORK_DIR}/consumer-build/${exe}")
endforeach()
foreach(exe consumer_cpp consumer_c)
  expect_readelf(TRUE "\\(NEEDED\\)[^\n]*\\[${so_major}\\]" --dynamic "${WORK_DIR}/consumer-build/${exe}")
endforeach()
expect_readelf(FALSE "${so}" --dynamic "${WORK_DIR}/consumer-build/consumer_c_static")

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
expect_readelf(TRUE "\\(NEEDED\\)[^\n]*\\[${so_major}\\]" --dynamic "${WORK_DIR}/consumer_pkgconfig")

# 3. cmake --install --strip: the .so stripped in place, no debug file.
set(stripped "${WORK_DIR}/stripped")
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${stripped}" --strip)
if(EXISTS "${stripped}/lib/.debug")
  message(FATAL_ERROR "--strip installed debug files")
endif()
expect_readelf(FALSE "${debug_info}|\\.symtab " --sections "${stripped}/lib/${so_file}")
expect_readelf(FALSE "${debug_info}" --sections "${stripped}/lib/libcyborgdb_kms.a")
file(REMOVE_RECURSE "${WORK_DIR}")
