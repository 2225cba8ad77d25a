//! Result codes of the C ABI. Numbers are stable: grouped in ranges, never reused once released.

use std::ffi::CStr;

use crate::error::ErrorKind;

/// The outcome of a C ABI call. Values are grouped: 0 success; 100–199 the caller's input;
/// 200–299 the state of the stored envelope; 300–399 the storage backend; 400–499 KMS providers,
/// registry and keys; 900–999 the library itself. Numbers never change meaning.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cyb_result {
    /// Success.
    CYB_RESULT_OK = 0,
    /// An argument was rejected: bad index name, invalid UTF-8, envelope field out of bounds.
    CYB_RESULT_INVALID_ARGUMENT = 100,
    /// A required pointer argument was NULL.
    CYB_RESULT_NULL_PARAMETER = 101,
    /// The caller's callback reported failure (e.g. the engine's re-wrap in
    /// `cyb_kek_rotate_kek`); what the call had begun was rolled back.
    CYB_RESULT_CALLBACK_FAILED = 102,
    /// No envelope is stored for the index.
    CYB_RESULT_NOT_FOUND = 200,
    /// Create found an envelope already stored for the index.
    CYB_RESULT_ALREADY_EXISTS = 201,
    /// The stored envelope is truncated, damaged, foreign or belongs to another index.
    CYB_RESULT_CORRUPT = 202,
    /// The stored envelope changed while the operation ran (e.g. a push during a re-wrap);
    /// nothing was written. Re-read and retry.
    CYB_RESULT_CONFLICT = 203,
    /// The storage backend failed (OS error, permissions, full disk).
    CYB_RESULT_IO = 300,
    /// A remote store (S3) timed out or could not be reached.
    CYB_RESULT_STORAGE_UNAVAILABLE = 301,
    /// A remote store (S3) denied access: bad credentials, no permission.
    CYB_RESULT_STORAGE_ACCESS_DENIED = 302,
    /// The wrapped KEK was rejected: wrong key, index or context; damaged; not 32 bytes unwrapped.
    CYB_RESULT_DECRYPT_FAILED = 400,
    /// The KMS provider denied access (AssumeRole, Decrypt, Encrypt, GetSecretValue).
    CYB_RESULT_KMS_ACCESS_DENIED = 401,
    /// The KMS key or Secrets Manager secret does not exist (in that region).
    CYB_RESULT_KMS_KEY_NOT_FOUND = 402,
    /// The KMS key is disabled or pending deletion, or the secret is marked for deletion.
    CYB_RESULT_KMS_KEY_DISABLED = 403,
    /// The KMS provider throttled the request.
    CYB_RESULT_KMS_THROTTLED = 404,
    /// The KMS provider timed out or could not be reached.
    CYB_RESULT_KMS_UNAVAILABLE = 405,
    /// The KMS provider's answer was malformed or a server error.
    CYB_RESULT_KMS_BAD_RESPONSE = 406,
    /// The wrap key (Secrets Manager value, local master key) is not exactly 32 bytes.
    CYB_RESULT_WRAP_KEY_SIZE = 407,
    /// No registry slot has the requested name.
    CYB_RESULT_UNKNOWN_SLOT = 408,
    /// The KMS registry or client configuration is invalid.
    CYB_RESULT_INVALID_CONFIG = 409,
    /// The envelope's provider is `none`: the caller supplies the KEK; there is nothing to unwrap.
    CYB_RESULT_KEK_NOT_WRAPPED = 410,
    /// The envelope names a key its slot does not trust (not the slot's key nor one of its
    /// `previous_keys`, or `local` while the client has not enabled it); refused before any KMS
    /// call. The message names the registry line that would trust it.
    CYB_RESULT_UNTRUSTED_KEY = 411,
    /// The library panicked; this is a bug. The call had no effect beyond what the message says.
    CYB_RESULT_PANIC = 900,
    /// The handle was created before this process was forked from its parent; it refuses every
    /// call in the child (memory and disk storage configs excepted). Create a new one in the child.
    CYB_RESULT_FORKED_PROCESS = 902,
}

impl cyb_result {
    /// Every code, for tables and tests.
    /// cbindgen:ignore
    pub const ALL: [cyb_result; 25] = [
        cyb_result::CYB_RESULT_OK,
        cyb_result::CYB_RESULT_INVALID_ARGUMENT,
        cyb_result::CYB_RESULT_NULL_PARAMETER,
        cyb_result::CYB_RESULT_CALLBACK_FAILED,
        cyb_result::CYB_RESULT_NOT_FOUND,
        cyb_result::CYB_RESULT_ALREADY_EXISTS,
        cyb_result::CYB_RESULT_CORRUPT,
        cyb_result::CYB_RESULT_CONFLICT,
        cyb_result::CYB_RESULT_IO,
        cyb_result::CYB_RESULT_STORAGE_UNAVAILABLE,
        cyb_result::CYB_RESULT_STORAGE_ACCESS_DENIED,
        cyb_result::CYB_RESULT_DECRYPT_FAILED,
        cyb_result::CYB_RESULT_KMS_ACCESS_DENIED,
        cyb_result::CYB_RESULT_KMS_KEY_NOT_FOUND,
        cyb_result::CYB_RESULT_KMS_KEY_DISABLED,
        cyb_result::CYB_RESULT_KMS_THROTTLED,
        cyb_result::CYB_RESULT_KMS_UNAVAILABLE,
        cyb_result::CYB_RESULT_KMS_BAD_RESPONSE,
        cyb_result::CYB_RESULT_WRAP_KEY_SIZE,
        cyb_result::CYB_RESULT_UNKNOWN_SLOT,
        cyb_result::CYB_RESULT_INVALID_CONFIG,
        cyb_result::CYB_RESULT_KEK_NOT_WRAPPED,
        cyb_result::CYB_RESULT_UNTRUSTED_KEY,
        cyb_result::CYB_RESULT_PANIC,
        cyb_result::CYB_RESULT_FORKED_PROCESS,
    ];

    /// The code's name without the `CYB_RESULT_` prefix, e.g. `"NOT_FOUND"`.
    pub fn name(self) -> &'static CStr {
        match self {
            cyb_result::CYB_RESULT_OK => c"OK",
            cyb_result::CYB_RESULT_INVALID_ARGUMENT => c"INVALID_ARGUMENT",
            cyb_result::CYB_RESULT_NULL_PARAMETER => c"NULL_PARAMETER",
            cyb_result::CYB_RESULT_CALLBACK_FAILED => c"CALLBACK_FAILED",
            cyb_result::CYB_RESULT_NOT_FOUND => c"NOT_FOUND",
            cyb_result::CYB_RESULT_ALREADY_EXISTS => c"ALREADY_EXISTS",
            cyb_result::CYB_RESULT_CORRUPT => c"CORRUPT",
            cyb_result::CYB_RESULT_CONFLICT => c"CONFLICT",
            cyb_result::CYB_RESULT_IO => c"IO",
            cyb_result::CYB_RESULT_STORAGE_UNAVAILABLE => c"STORAGE_UNAVAILABLE",
            cyb_result::CYB_RESULT_STORAGE_ACCESS_DENIED => c"STORAGE_ACCESS_DENIED",
            cyb_result::CYB_RESULT_DECRYPT_FAILED => c"DECRYPT_FAILED",
            cyb_result::CYB_RESULT_KMS_ACCESS_DENIED => c"KMS_ACCESS_DENIED",
            cyb_result::CYB_RESULT_KMS_KEY_NOT_FOUND => c"KMS_KEY_NOT_FOUND",
            cyb_result::CYB_RESULT_KMS_KEY_DISABLED => c"KMS_KEY_DISABLED",
            cyb_result::CYB_RESULT_KMS_THROTTLED => c"KMS_THROTTLED",
            cyb_result::CYB_RESULT_KMS_UNAVAILABLE => c"KMS_UNAVAILABLE",
            cyb_result::CYB_RESULT_KMS_BAD_RESPONSE => c"KMS_BAD_RESPONSE",
            cyb_result::CYB_RESULT_WRAP_KEY_SIZE => c"WRAP_KEY_SIZE",
            cyb_result::CYB_RESULT_UNKNOWN_SLOT => c"UNKNOWN_SLOT",
            cyb_result::CYB_RESULT_INVALID_CONFIG => c"INVALID_CONFIG",
            cyb_result::CYB_RESULT_KEK_NOT_WRAPPED => c"KEK_NOT_WRAPPED",
            cyb_result::CYB_RESULT_UNTRUSTED_KEY => c"UNTRUSTED_KEY",
            cyb_result::CYB_RESULT_PANIC => c"PANIC",
            cyb_result::CYB_RESULT_FORKED_PROCESS => c"FORKED_PROCESS",
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
            ErrorKind::StorageUnavailable => cyb_result::CYB_RESULT_STORAGE_UNAVAILABLE,
            ErrorKind::StorageAccessDenied => cyb_result::CYB_RESULT_STORAGE_ACCESS_DENIED,
            ErrorKind::DecryptFailed => cyb_result::CYB_RESULT_DECRYPT_FAILED,
            ErrorKind::KmsAccessDenied => cyb_result::CYB_RESULT_KMS_ACCESS_DENIED,
            ErrorKind::KmsKeyNotFound => cyb_result::CYB_RESULT_KMS_KEY_NOT_FOUND,
            ErrorKind::KmsKeyDisabled => cyb_result::CYB_RESULT_KMS_KEY_DISABLED,
            ErrorKind::KmsThrottled => cyb_result::CYB_RESULT_KMS_THROTTLED,
            ErrorKind::KmsUnavailable => cyb_result::CYB_RESULT_KMS_UNAVAILABLE,
            ErrorKind::KmsBadResponse => cyb_result::CYB_RESULT_KMS_BAD_RESPONSE,
            ErrorKind::WrapKeySize => cyb_result::CYB_RESULT_WRAP_KEY_SIZE,
            ErrorKind::UnknownSlot => cyb_result::CYB_RESULT_UNKNOWN_SLOT,
            ErrorKind::InvalidConfig => cyb_result::CYB_RESULT_INVALID_CONFIG,
            ErrorKind::KekNotWrapped => cyb_result::CYB_RESULT_KEK_NOT_WRAPPED,
            ErrorKind::UntrustedKey => cyb_result::CYB_RESULT_UNTRUSTED_KEY,
            ErrorKind::Conflict => cyb_result::CYB_RESULT_CONFLICT,
            ErrorKind::CallbackFailed => cyb_result::CYB_RESULT_CALLBACK_FAILED,
            ErrorKind::Internal => cyb_result::CYB_RESULT_PANIC,
            ErrorKind::ForkedProcess => cyb_result::CYB_RESULT_FORKED_PROCESS,
        }
    }
}
