# CTest driver of the front page's examples (README.md): runs one as a user would, in a fresh
# directory, and checks what it prints and leaves behind. Usage:
#   cmake -DMODE=c  -DEXAMPLE=<quickstart_c>  -DWORK_DIR=<dir> -P RunExample.cmake
#   cmake -DMODE=s3 -DEXAMPLE=<s3_quickstart> -DWORK_DIR=<dir> -DMOTO_STATE_DIR=<dir> -P RunExample.cmake
# MODE=s3 needs the moto fixture (MOTO_STATE_DIR/port, the seeded KMS key alias/cyborgdb-test and
# bucket cyborgdb-test-bucket) and the dummy AWS environment of the moto tests.
foreach(var MODE EXAMPLE WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()

# Runs the example with ARGN as its arguments; sets `result` and `output` in the caller.
function(run_example)
  execute_process(
    COMMAND "${EXAMPLE}" ${ARGN}
    WORKING_DIRECTORY "${WORK_DIR}"
    RESULT_VARIABLE run_result
    OUTPUT_VARIABLE run_output
    ERROR_VARIABLE run_output)
  string(REPLACE ";" " " shown_args "${ARGN}")
  message("$ ${EXAMPLE} ${shown_args}\n${run_output}(exit ${run_result})")
  set(result "${run_result}" PARENT_SCOPE)
  set(output "${run_output}" PARENT_SCOPE)
endfunction()

# Fails unless `output` matches every regular expression given.
function(expect_output)
  foreach(expected IN LISTS ARGN)
    if(NOT output MATCHES "${expected}")
      message(FATAL_ERROR "the example's output lacks '${expected}'")
    endif()
  endforeach()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "c")
  # As the example's comment says: a master key for the development-only `local` provider.
  string(RANDOM LENGTH 64 ALPHABET "0123456789abcdef" master_key)
  set(ENV{CYB_DEV_MASTER_KEY} "${master_key}")
  run_example()
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "quickstart_c exited with ${result}")
  endif()
  expect_output("same KEK: yes")
  if(NOT EXISTS "${WORK_DIR}/example-data/orders.kms")
    message(FATAL_ERROR "quickstart_c stored no envelope at example-data/orders.kms")
  endif()
  # A second run finds the envelope: create is a strict insert, and the example says why it failed.
  run_example()
  if(NOT result EQUAL 1)
    message(FATAL_ERROR "quickstart_c's second run exited with ${result}, expected 1")
  endif()
  expect_output("^ALREADY_EXISTS: .*orders")
  # Without the master key the wrap fails clearly (KMS_KEY_NOT_FOUND), storing nothing.
  file(REMOVE_RECURSE "${WORK_DIR}/example-data")
  unset(ENV{CYB_DEV_MASTER_KEY})
  run_example()
  if(NOT result EQUAL 1)
    message(FATAL_ERROR "quickstart_c without a master key exited with ${result}, expected 1")
  endif()
  expect_output("^KMS_KEY_NOT_FOUND: .*CYB_DEV_MASTER_KEY")
  file(GLOB leftovers "${WORK_DIR}/example-data/*.kms")
  if(leftovers)
    message(FATAL_ERROR "a failed create left envelopes behind: ${leftovers}")
  endif()
elseif(MODE STREQUAL "s3")
  if(NOT DEFINED MOTO_STATE_DIR)
    message(FATAL_ERROR "MOTO_STATE_DIR is not set")
  endif()
  file(READ "${MOTO_STATE_DIR}/port" port)
  string(STRIP "${port}" port)
  set(endpoint "http://127.0.0.1:${port}")
  # KMS through the SDK's endpoint variable, S3 through the example's endpoint argument.
  set(ENV{AWS_ENDPOINT_URL} "${endpoint}")
  file(WRITE "${WORK_DIR}/registry.yaml" [=[
kms:
  registry:
    vendor-default:
      provider: aws-kms
      key_id:   alias/cyborgdb-test
      region:   us-east-1
]=])
  run_example(registry.yaml cyborgdb-test-bucket "${endpoint}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "s3_quickstart exited with ${result}")
  endif()
  expect_output(
    "same KEK: yes"
    "create \\+ 2 resolves: KMS calls 2 \\(wrap \\+ unwrap\\), cache hits 1"
    "re-wrapped: version 2, same KEK: yes"
    "deleted s3://cyborgdb-test-bucket/cyborgdb/keystore/orders.kms")
  # Wrong usage gets the usage line and exit code 2.
  run_example(registry.yaml)
  if(NOT result EQUAL 2)
    message(FATAL_ERROR "s3_quickstart with one argument exited with ${result}, expected 2")
  endif()
  expect_output("usage: s3_quickstart REGISTRY.yaml BUCKET \\[S3_ENDPOINT\\]")
else()
  message(FATAL_ERROR "MODE must be c or s3, not '${MODE}'")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
