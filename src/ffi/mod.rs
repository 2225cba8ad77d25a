//! The C ABI (`include/cyborgdb_core/index_kms.h`, generated from this module by cbindgen).
//! Thin by design: every function converts its arguments, calls the Rust API, and converts the
//! result. Conventions, following rustls-ffi:
//!
//! - Every exported symbol starts with `cyb_`; handles are opaque (`cyb_storage_config`,
//!   `cyb_kms_blob`, `cyb_kms_client`, `cyb_kek_resolver`, `cyb_drift_report`, `cyb_kek_rotation`) with `_new` / `_free`, and `_free(NULL)` is a no-op.
//! - Fallible functions return a [`cyb_result`]; outputs are written only on success.
//! - Every pointer argument is checked: NULL gives `CYB_RESULT_NULL_PARAMETER`. Strings are
//!   `(pointer, length)` pairs of UTF-8, not NUL-terminated; a NULL pointer with length 0 is the
//!   empty string.
//! - Every body runs inside a panic boundary: a Rust panic becomes `CYB_RESULT_PANIC`.
//! - The message of the last failed call on a thread is [`cyb_last_error_message`].
//! - Diagnostics reach the host through one process-wide log callback, [`cyb_set_log_callback`].

#![allow(non_camel_case_types)] // C names: cyb_snake_case handles and enums.

mod audit;
mod blob;
mod boundary;
mod envelope;
mod handle;
mod kek_resolver;
mod kek_rotation;
mod kms_client;
mod logging;
mod result;
mod storage_config;
mod timeouts;

pub use audit::*;
pub use blob::*;
pub use boundary::{cyb_last_error_message, cyb_result_name, cyb_version, cyb_version_number};
pub use envelope::*;
pub use kek_resolver::*;
pub use kek_rotation::*;
pub use kms_client::*;
pub use logging::{cyb_log_callback, cyb_log_level, cyb_log_record, cyb_set_log_callback};
pub use result::cyb_result;
pub use storage_config::*;
pub use timeouts::{
    cyb_aws_timeouts, CYB_MAX_ATTEMPTS, CYB_RETRY_MODE_ADAPTIVE, CYB_RETRY_MODE_DEFAULT,
    CYB_RETRY_MODE_STANDARD,
};

/// Major version of the library; matches Cargo.toml.
pub const CYB_KMS_VERSION_MAJOR: u32 = 0;
/// Minor version of the library; matches Cargo.toml.
pub const CYB_KMS_VERSION_MINOR: u32 = 1;
/// Patch version of the library; matches Cargo.toml.
pub const CYB_KMS_VERSION_PATCH: u32 = 0;
/// The version as one number, major * 10000 + minor * 100 + patch (0.1.0 is 100, 1.2.3 is 10203):
/// compare it with `cyb_version_number()` at run time, or use it in `#if`.
pub const CYB_KMS_VERSION_NUMBER: u32 =
    CYB_KMS_VERSION_MAJOR * 10000 + CYB_KMS_VERSION_MINOR * 100 + CYB_KMS_VERSION_PATCH;
/// Longest index name in bytes.
pub const CYB_MAX_INDEX_NAME_LEN: usize = 255;
/// Longest `kms_name`, `provider`, `key_id` or `region` in bytes.
pub const CYB_MAX_STRING_FIELD_LEN: usize = 2048;
/// Longest `wrapped_kek` in bytes.
pub const CYB_MAX_WRAPPED_KEK_LEN: usize = 8192;
/// Length of every KEK in bytes: the size of the `out_kek` / `kek` buffers.
pub const CYB_KEK_LEN: usize = 32;

// CYB_KMS_VERSION_NUMBER is unambiguous only while minor and patch stay below 100.
const _: () = assert!(CYB_KMS_VERSION_MINOR < 100 && CYB_KMS_VERSION_PATCH < 100);
const _: () = assert!(CYB_MAX_INDEX_NAME_LEN == crate::index_name::MAX_INDEX_NAME_LEN);
const _: () = assert!(CYB_MAX_STRING_FIELD_LEN == crate::blob::MAX_STRING_FIELD_LEN);
const _: () = assert!(CYB_MAX_WRAPPED_KEK_LEN == crate::blob::MAX_WRAPPED_KEK_LEN);
const _: () = assert!(CYB_KEK_LEN == crate::kms::Kek::LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo_toml() {
        let expected =
            format!("{CYB_KMS_VERSION_MAJOR}.{CYB_KMS_VERSION_MINOR}.{CYB_KMS_VERSION_PATCH}");
        assert_eq!(expected, env!("CARGO_PKG_VERSION"));
    }
}
