# Compiles a file that includes index_kms.hpp with COMPILER and FLAG (-std=c++14, or a C standard
# with LANGUAGE=C) and passes only if compilation fails and the diagnostics contain EXPECTED.
# Run by CTest: cmake -DCOMPILER=... -DFLAG=... -DLANGUAGE=CXX|C -DINCLUDE_DIR=... -DWORK_DIR=...
#                     -DEXPECTED=... -P ExpectHppError.cmake
foreach(_var COMPILER FLAG LANGUAGE INCLUDE_DIR WORK_DIR EXPECTED)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "ExpectHppError.cmake: ${_var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
if(LANGUAGE STREQUAL "C")
  set(_source "${WORK_DIR}/includes_hpp.c")
else()
  set(_source "${WORK_DIR}/includes_hpp.cpp")
endif()
file(WRITE "${_source}" "#include \"cyborgdb_core/index_kms.hpp\"\nint main(void) { return 0; }\n")

execute_process(
  COMMAND "${COMPILER}" ${FLAG} -fsyntax-only "-I${INCLUDE_DIR}" "${_source}"
  RESULT_VARIABLE _rc
  OUTPUT_VARIABLE _out
  ERROR_VARIABLE _out)

if(_rc EQUAL 0)
  message(FATAL_ERROR "${COMPILER} ${FLAG} compiled index_kms.hpp; expected the error \"${EXPECTED}\"")
endif()
string(FIND "${_out}" "${EXPECTED}" _at)
if(_at EQUAL -1)
  message(FATAL_ERROR "${COMPILER} ${FLAG} failed without \"${EXPECTED}\":\n${_out}")
endif()
message(STATUS "${COMPILER} ${FLAG}: refused with \"${EXPECTED}\"")
