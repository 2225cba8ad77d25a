//! `cyb_storage_config`: where envelopes are stored.

use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;

use super::blob::cyb_str;
use super::boundary::{ffi_call, ffi_value, Failure};
use super::handle::{self, bytes_arg, str_arg, try_out, Castable};
use super::result::cyb_result;
use super::timeouts::cyb_aws_timeouts;
use crate::storage::{S3Credentials, S3Options, StorageConfig};
use crate::AwsTimeouts;

/// A backing store for envelopes (Rust: `StorageConfig`). Immutable once made: one handle may be
/// used by any number of threads at once. Free with `cyb_storage_config_free` after the last use.
///
/// fork(): memory and disk handles keep working in a forked child. An S3 handle made before the
/// fork returns `CYB_RESULT_FORKED_PROCESS` from every operation in the child (freeing it there is
/// safe); make a new one in the child.
pub struct cyb_storage_config {
    _private: [u8; 0],
}

impl Castable for cyb_storage_config {
    type RustType = StorageConfig;
}

/// Makes a new, empty in-memory store. Everything using this handle shares its envelopes; they
/// are gone when the handle is freed.
///
/// On success writes a new handle to `*out_config` (caller owns; free with
/// `cyb_storage_config_free`). Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `out_config` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cyb_storage_config_new_memory(
    out_config: *mut *mut cyb_storage_config,
) -> cyb_result {
    ffi_call("cyb_storage_config_new_memory", || {
        let out = try_out!(out_config);
        *out = handle::into_raw(StorageConfig::memory());
        Ok(())
    })
}

/// Makes a store in the directory `path` (`path_len` bytes, not NUL-terminated, any bytes but
/// NUL). The directory is created on the first write. A relative path is resolved against the
/// current directory now.
///
/// On success writes a new handle to `*out_config` (caller owns; free with
/// `cyb_storage_config_free`). Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`
/// (empty path, NUL in path).
///
/// # Safety
/// `path` is NULL or points to `path_len` readable bytes; `out_config` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_storage_config_new_disk(
    path: *const c_char,
    path_len: usize,
    out_config: *mut *mut cyb_storage_config,
) -> cyb_result {
    ffi_call("cyb_storage_config_new_disk", || {
        let path = unsafe { bytes_arg(path.cast(), path_len, "path") }?;
        let out = try_out!(out_config);
        let config = StorageConfig::disk(OsStr::from_bytes(path))?;
        *out = handle::into_raw(config);
        Ok(())
    })
}

/// Frees a store handle. NULL is a no-op. An in-memory store's envelopes go with its handle.
///
/// # Safety
/// `config` is NULL or a handle from `cyb_storage_config_new_*` that no thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn cyb_storage_config_free(config: *mut cyb_storage_config) {
    ffi_value((), || unsafe { handle::free(config) })
}

/// Static credentials for S3 storage (`cyb_s3_options.credentials`): an access key id and secret
/// key, both required and non-empty, and an optional session token (empty = none). Used for S3
/// only, never for KMS calls. The library copies them; the caller may wipe its copy after the call.
#[repr(C)]
pub struct cyb_s3_credentials {
    /// The access key id; required.
    pub access_key: cyb_str,
    /// The secret access key; required.
    pub secret_key: cyb_str,
    /// The session token of temporary credentials; empty for none.
    pub session_token: cyb_str,
}

/// Longest `cyb_s3_options.prefix` in bytes, counting the `/` added when it is missing, so every
/// object key fits S3's 1024-byte limit.
pub const CYB_MAX_S3_PREFIX_LEN: usize = 820;

const _: () = assert!(CYB_MAX_S3_PREFIX_LEN == crate::storage::MAX_S3_PREFIX_LEN);

/// Options of `cyb_storage_config_new_s3`. Zero-initialize (`cyb_s3_options o = {0};`) and set
/// what you need: an empty string or a 0 number means "unset / default".
///
/// - `prefix`: object-key prefix; envelopes are `<prefix>/<storage key>.kms` (a `/` is added if
///   missing; at most `CYB_MAX_S3_PREFIX_LEN` bytes with it). Empty: the bucket's top level.
/// - `region`: the bucket's region. Empty: the default AWS chain (`AWS_REGION`, profile, instance
///   metadata); with an `endpoint` and nothing found there, `us-east-1`.
/// - `endpoint`: an S3-compatible endpoint (`http://` or `https://`: MinIO, Ceph, R2, an emulator);
///   selects path-style addressing. Empty: AWS S3, virtual-hosted addressing.
/// - `credentials`: NULL = the default AWS credential chain (AWS S3 only: with an `endpoint`,
///   NULL is `CYB_RESULT_INVALID_ARGUMENT`); otherwise exactly these credentials.
/// - `timeouts`: time and retry bounds of every S3 call (zero-initialized: the defaults).
#[repr(C)]
pub struct cyb_s3_options {
    pub prefix: cyb_str,
    pub region: cyb_str,
    pub endpoint: cyb_str,
    pub credentials: *const cyb_s3_credentials,
    pub timeouts: cyb_aws_timeouts,
}

/// Makes a store in the S3 bucket `bucket` (`bucket_len` bytes of UTF-8) with `options` (NULL:
/// all defaults). No network I/O happens here: the S3 client is set up by the first operation,
/// within that operation's time bound. Every node using the same bucket and prefix shares the
/// envelopes; creates are conditional writes, so racing creators anywhere have exactly one winner.
///
/// On success writes a new handle to `*out_config` (caller owns; free with
/// `cyb_storage_config_free`). Errors: `CYB_RESULT_NULL_PARAMETER` (a NULL pointer with a non-zero
/// length, NULL `out_config`); `CYB_RESULT_INVALID_ARGUMENT` (bucket name breaks S3's rules, bad
/// prefix, region or endpoint, invalid UTF-8, an empty access or secret key; messages never contain
/// a secret). Starts no thread and opens no descriptor.
///
/// # Safety
/// `bucket` is NULL or points to `bucket_len` readable bytes; `options` is NULL or points to a
/// readable `cyb_s3_options` whose strings (and `credentials`, if not NULL) are readable as
/// described; `out_config` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cyb_storage_config_new_s3(
    bucket: *const c_char,
    bucket_len: usize,
    options: *const cyb_s3_options,
    out_config: *mut *mut cyb_storage_config,
) -> cyb_result {
    ffi_call("cyb_storage_config_new_s3", || {
        let bucket = unsafe { str_arg(bucket, bucket_len, "bucket") }?;
        let options = match unsafe { options.as_ref() } {
            None => S3Options::default(),
            Some(options) => unsafe { s3_options(options) }?,
        };
        let out = try_out!(out_config);
        *out = handle::into_raw(StorageConfig::s3(bucket, options)?);
        Ok(())
    })
}

/// The Rust options for the C options.
///
/// # Safety
/// As `cyb_storage_config_new_s3`'s `options`.
unsafe fn s3_options(options: &cyb_s3_options) -> Result<S3Options, Failure> {
    let text = |view: &cyb_str, name: &str| -> Result<Option<String>, Failure> {
        let value = unsafe { str_arg(view.data, view.len, name) }?;
        Ok((!value.is_empty()).then(|| value.to_owned()))
    };
    let credentials = match unsafe { options.credentials.as_ref() } {
        None => None,
        Some(c) => {
            let (Some(access_key), Some(secret_key)) = (
                text(&c.access_key, "credentials.access_key")?,
                text(&c.secret_key, "credentials.secret_key")?,
            ) else {
                return Err(Failure::invalid_argument(
                    "S3 credentials need both a non-empty access_key and secret_key (pass NULL \
                     credentials for the default AWS chain)"
                        .to_owned(),
                ));
            };
            Some(S3Credentials {
                access_key,
                secret_key,
                session_token: text(&c.session_token, "credentials.session_token")?,
            })
        }
    };
    Ok(S3Options {
        prefix: text(&options.prefix, "prefix")?.unwrap_or_default(),
        region: text(&options.region, "region")?,
        endpoint: text(&options.endpoint, "endpoint")?,
        credentials,
        timeouts: AwsTimeouts::from(&options.timeouts),
    })
}
