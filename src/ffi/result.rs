//! Result codes of the C ABI. Numbers are stable: grouped in ranges, never reused once released.

use std::ffi::CStr;

use crate::error::ErrorKind;

/// The outcome of a C ABI call. Values are grouped: 0 success; 100–199 the caller's input;
/// 200–299 the state of the stored envelope; 300–399 the storage backend; 400–499 reserved for
/// KMS providers; 900–999 the library itself. Numbers never change meaning.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cyb_result {
    /// Success.
    CYB_RESULT_OK = 0,
    /// An argument was rejected: bad index name, invalid UTF-8, envelope field out of bounds.
    CYB_RESULT_INVALID_ARGUMENT = 100,
    /// A required pointer argument was NULL.
    CYB_RESULT_NULL_PARAMETER = 101,
    /// No envelope is stored for the index.
    CYB_RESULT_NOT_FOUND = 200,
    /// Create found an envelope already stored for the index.
    CYB_RESULT_ALREADY_EXISTS = 201,
    /// The stored envelope is truncated, damaged, foreign or belongs to another index.
    CYB_RESULT_CORRUPT = 202,
    /// The storage backend failed (OS error, permissions, full disk).
    CYB_RESULT_IO = 300,
    /// The library panicked; this is a bug. The call had no effect beyond what the message says.
    CYB_RESULT_PANIC = 900,
}

impl cyb_result {
    /// Every code, for tables and tests.
    /// cbindgen:ignore
    pub const ALL: [cyb_result; 8] = [
        cyb_result::CYB_RESULT_OK,
        cyb_result::CYB_RESULT_INVALID_ARGUMENT,
        cyb_result::CYB_RESULT_NULL_PARAMETER,
        cyb_result::CYB_RESULT_NOT_FOUND,
        cyb_result::CYB_RESULT_ALREADY_EXISTS,
        cyb_result::CYB_RESULT_CORRUPT,
        cyb_result::CYB_RESULT_IO,
        cyb_result::CYB_RESULT_PANIC,
    ];

    /// The code's name without the `CYB_RESULT_` prefix, e.g. `"NOT_FOUND"`.
    pub fn name(self) -> &'static CStr {
        match self {
            cyb_result::CYB_RESULT_OK => c"OK",
            cyb_result::CYB_RESULT_INVALID_ARGUMENT => c"INVALID_ARGUMENT",
            cyb_result::CYB_RESULT_NULL_PARAMETER => c"NULL_PARAMETER",
            cyb_result::CYB_RESULT_NOT_FOUND => c"NOT_FOUND",
            cyb_result::CYB_RESULT_ALREADY_EXISTS => c"ALREADY_EXISTS",
            cyb_result::CYB_RESULT_CORRUPT => c"CORRUPT",
            cyb_result::CYB_RESULT_IO => c"IO",
            cyb_result::CYB_RESULT_PANIC => c"PANIC",
        }
    }
}

impl From<ErrorKind> for cyb_result {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => cyb_result::CYB_RESULT_INVALID_ARGUMENT,
            ErrorKind::NotFound => cyb_result::CYB_RESULT_NOT_FOUND,
            ErrorKind::AlreadyExists => cyb_result::CYB_RESULT_ALREADY_EXISTS,
            ErrorKind::Corrupt => cyb_result::CYB_RESULT_CORRUPT,
            ErrorKind::Io => cyb_result::CYB_RESULT_IO,
        }
    }
}
