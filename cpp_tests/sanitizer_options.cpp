// Sanitizer runtime defaults for the test binaries of a CYB_SANITIZE build (linked into each).
// Compiled in rather than set through CTest ENVIRONMENT so they apply however a binary starts:
// CTest, gtest discovery at build time, by hand, or as a child spawned by a test. Environment
// variables (ASAN_OPTIONS, ...) still override them.
extern "C" {

// Leak detection stays on: LSan checks every test binary at exit. No suppressions are needed: the
// library's per-thread error message is freed at thread exit or still reachable at process exit.
const char* __asan_default_options() {
    return "detect_leaks=1:abort_on_error=0:strict_string_checks=1:"
           "detect_stack_use_after_return=1:check_initialization_order=1";
}

const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

}  // extern "C"
