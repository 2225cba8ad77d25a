# Install step of cyborgdb-kms (included by an install(CODE) rule in CMakeLists.txt): installs
# libcyborgdb_kms.a as one prelinked object instead of cargo's archive of every object of every
# dependency (the AWS SDK crates alone are over 70 MB of it in release):
#   1. ld -r --gc-sections from the C API's functions (the header's declarations) over the whole
#      cargo archive: only code they reach is kept, per-function sections merged (cmake/prelink.ld);
#   2. objcopy: every symbol but cyb_* made local, so the Rust runtime and the dependencies inside
#      cannot clash with another static library (e.g. a second Rust one); the sections LLVM leaves
#      for its own tools removed (.llvmbc embedded bitcode, .llvmcmd, .llvm_addrsig, which
#      the relocatable link invalidates); debug info removed (--strip-debug) unless
#      CYB_STRIP_DEBUG is OFF and no --strip is given;
#   3. ar: that one object as the archive.
# Consumers link it as before: libcyborgdb_kms.a plus the system libraries (cyborgdb::kms_static,
# pkg-config --static).
# Inputs: CYB_RUST_STATIC_LIB, CYB_HEADER, CYB_LIBDIR, CYB_STATIC_LIB_NAME, CYB_PRELINK_SCRIPT,
#         CYB_STRIP_DEBUG, CYB_LINKER, CYB_OBJCOPY, CYB_AR.

if(IS_ABSOLUTE "${CYB_LIBDIR}")
  set(_cyb_libdir "$ENV{DESTDIR}${CYB_LIBDIR}")
else()
  set(_cyb_libdir "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${CYB_LIBDIR}")
endif()
set(_cyb_static "${_cyb_libdir}/${CYB_STATIC_LIB_NAME}")
foreach(_cyb_tool CYB_LINKER CYB_OBJCOPY CYB_AR)
  if(NOT ${_cyb_tool})
    message(FATAL_ERROR "cyborgdb-kms install: ${_cyb_tool} not found (binutils)")
  endif()
endforeach()

function(_cyb_run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${err}")
  endif()
endfunction()

# The C API's functions: the roots of the garbage collection.
file(READ "${CYB_HEADER}" _cyb_header)
string(REGEX MATCHALL "CYB_API[^;(]*[ *]cyb_[a-z0-9_]+\\(" _cyb_declarations "${_cyb_header}")
set(_cyb_roots)
foreach(_cyb_declaration IN LISTS _cyb_declarations)
  string(REGEX MATCH "cyb_[a-z0-9_]+\\($" _cyb_name "${_cyb_declaration}")
  string(REGEX REPLACE "\\($" "" _cyb_name "${_cyb_name}")
  list(APPEND _cyb_roots -u "${_cyb_name}")
endforeach()
if(NOT _cyb_roots)
  message(FATAL_ERROR "no function declarations found in ${CYB_HEADER}")
endif()

set(_cyb_objcopy_args --remove-section=.llvmbc --remove-section=.llvmcmd
    --remove-section=.llvm_addrsig --wildcard "--keep-global-symbol=cyb_*")
if(CMAKE_INSTALL_DO_STRIP OR CYB_STRIP_DEBUG)
  list(APPEND _cyb_objcopy_args --strip-debug)
endif()

message(STATUS "Prelinking: ${_cyb_static}")
set(_cyb_work "${_cyb_static}.prelink")
file(REMOVE_RECURSE "${_cyb_work}")
file(MAKE_DIRECTORY "${_cyb_work}")
_cyb_run("${CYB_LINKER}" -r --gc-sections --force-group-allocation -T "${CYB_PRELINK_SCRIPT}"
         ${_cyb_roots} -o "${_cyb_work}/linked.o"
         --whole-archive "${CYB_RUST_STATIC_LIB}" --no-whole-archive)
_cyb_run("${CYB_OBJCOPY}" ${_cyb_objcopy_args} "${_cyb_work}/linked.o" "${_cyb_work}/cyborgdb_kms.o")
file(REMOVE "${_cyb_static}")
_cyb_run("${CYB_AR}" rcs "${_cyb_static}" "${_cyb_work}/cyborgdb_kms.o")
file(REMOVE_RECURSE "${_cyb_work}")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_cyb_static}")
