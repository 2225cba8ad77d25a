# CTest driver of quickstart_runs: runs the quickstart in a fresh directory and checks that it
# succeeds and walks through every documented step. Usage:
#   cmake -DQUICKSTART=<exe> -DWORK_DIR=<dir> -P RunQuickstart.cmake
foreach(var QUICKSTART WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(
  COMMAND "${QUICKSTART}" "${WORK_DIR}/data"
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
message("${output}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "quickstart exited with ${result}")
endif()
foreach(expected
    "wrapped a new 32-byte KEK through slot \"dev-local\" \\(provider local\\)"
    "created envelope"
    "AlreadyExistsError \\(code 201\\)"
    "pushed re-wrapped envelope version 2"
    "provider: local"
    "version: 2"
    "wrapped_kek: 61 bytes"
    "unwrapped KEK matches the one wrapped at step 0: yes"
    "resolver: 3 resolves, 1 KMS unwrap, 2 cache hits"
    "deleted envelope"
    "deleted again"
    "NotFoundError \\(code 200\\)")
  if(NOT output MATCHES "${expected}")
    message(FATAL_ERROR "quickstart output lacks '${expected}'")
  endif()
endforeach()
# Everything the quickstart stored is gone again (delete removed the envelope file).
file(GLOB leftovers "${WORK_DIR}/data/*.kms")
if(leftovers)
  message(FATAL_ERROR "quickstart left envelopes behind: ${leftovers}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
