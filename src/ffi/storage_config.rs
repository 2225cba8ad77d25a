//! `cyb_storage_config`: where envelopes are stored.

use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;

use super::boundary::{ffi_call, ffi_value};
use super::handle::{self, bytes_arg, try_out, Castable};
use super::result::cyb_result;
use crate::storage::StorageConfig;

/// A backing store for envelopes (Rust: `StorageConfig`). Immutable once made: one handle may be
/// used by any number of threads at once. Free with `cyb_storage_config_free` after the last use.
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
