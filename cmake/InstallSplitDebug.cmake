# Install step of cyborgdb-kms (included by the install(CODE) rule in CMakeLists.txt, after the
# libraries are installed), as distributions' -dbgsym packages do:
#   libcyborgdb_kms.so.<version>  debug info moved to <libdir>/.debug/libcyborgdb_kms.so.<version>.debug
#                                 (objcopy --only-keep-debug), then stripped (--strip-unneeded) and
#                                 given a .gnu_debuglink to it; gdb finds it there by itself.
#   (libcyborgdb_kms.a loses its debug info in cmake/InstallStaticLibrary.cmake.)
# With `cmake --install --strip` (CMAKE_INSTALL_DO_STRIP) the .so is already stripped by CMake:
# no debug file is made. CYB_SPLIT_DEBUG OFF (-DCYB_INSTALL_SPLIT_DEBUG=OFF) installs the files
# as built, unless --strip is given.
# Inputs: CYB_SPLIT_DEBUG, CYB_LIBDIR, CYB_SHARED_LIB_NAME, CYB_OBJCOPY, CYB_STRIP.

if(IS_ABSOLUTE "${CYB_LIBDIR}")
  set(_cyb_libdir "$ENV{DESTDIR}${CYB_LIBDIR}")
else()
  set(_cyb_libdir "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${CYB_LIBDIR}")
endif()
set(_cyb_shared "${_cyb_libdir}/${CYB_SHARED_LIB_NAME}")

function(_cyb_run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${err}")
  endif()
endfunction()

if(CMAKE_INSTALL_DO_STRIP OR NOT CYB_SPLIT_DEBUG)
  return()  # --strip: CMake stripped the .so already; OFF: installed as built
endif()
foreach(_cyb_tool CYB_OBJCOPY CYB_STRIP)
  if(NOT ${_cyb_tool})
    message(FATAL_ERROR "cyborgdb-kms install: ${_cyb_tool} not found (binutils); "
                        "install binutils or configure with -DCYB_INSTALL_SPLIT_DEBUG=OFF")
  endif()
endforeach()

set(_cyb_debug_dir "${_cyb_libdir}/.debug")
set(_cyb_debug "${_cyb_debug_dir}/${CYB_SHARED_LIB_NAME}.debug")
file(MAKE_DIRECTORY "${_cyb_debug_dir}")
message(STATUS "Splitting debug info: ${_cyb_debug}")
_cyb_run("${CYB_OBJCOPY}" --only-keep-debug --compress-debug-sections=zlib
         "${_cyb_shared}" "${_cyb_debug}")
file(CHMOD "${_cyb_debug}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
_cyb_run("${CYB_STRIP}" --strip-unneeded --remove-section=.comment "${_cyb_shared}")
# The link records the debug file's name and CRC; run from its directory so only the name is kept.
execute_process(COMMAND "${CYB_OBJCOPY}" "--add-gnu-debuglink=${CYB_SHARED_LIB_NAME}.debug"
                        "${_cyb_shared}"
                WORKING_DIRECTORY "${_cyb_debug_dir}" RESULT_VARIABLE _cyb_rc ERROR_VARIABLE _cyb_err)
if(NOT _cyb_rc EQUAL 0)
  message(FATAL_ERROR "objcopy --add-gnu-debuglink failed: ${_cyb_err}")
endif()
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_cyb_debug}")
