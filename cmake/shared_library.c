/* libcyborgdb_kms.so is linked from the Rust static library (see CMakeLists.txt); CMake needs one
 * source file per library target. This one defines nothing. */
typedef int cyb_shared_library_has_no_own_code;
