//! The four envelope operations: `cyb_index_kms_create`, `_push`, `_get`, `_delete`.

use std::ffi::c_char;

use super::blob::cyb_kms_blob;
use super::boundary::ffi_call;
use super::handle::{self, str_arg, try_out, try_ref};
use super::result::cyb_result;
use super::storage_config::cyb_storage_config;
use crate::envelope;

/// Stores `blob` as the envelope of the index named by `index_name_len` bytes of UTF-8 at
/// `index_name` — a strict insert. `blob` is not modified (a `created_at` of 0 is stamped in the
/// stored copy). Safe to call from many threads on one `config`.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT` (bad name, invalid UTF-8,
/// field rules); `CYB_RESULT_ALREADY_EXISTS` (the stored envelope is untouched); `CYB_RESULT_IO`;
/// on S3 `CYB_RESULT_STORAGE_UNAVAILABLE`, `CYB_RESULT_STORAGE_ACCESS_DENIED`.
///
/// # Safety
/// `config` and `blob` are NULL or live handles; `index_name` is NULL or points to
/// `index_name_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_index_kms_create(
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    blob: *const cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_index_kms_create", || {
        let config = try_ref!(config);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let blob = try_ref!(blob);
        Ok(envelope::create_index_kms(config, index_name, blob)?)
    })
}

/// Stores `blob` as the envelope of the index, creating or replacing it — an idempotent upsert.
/// On failure a previously stored envelope is intact.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`, `CYB_RESULT_IO`,
/// `CYB_RESULT_STORAGE_UNAVAILABLE`, `CYB_RESULT_STORAGE_ACCESS_DENIED`.
///
/// # Safety
/// As `cyb_index_kms_create`.
#[no_mangle]
pub unsafe extern "C" fn cyb_index_kms_push(
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    blob: *const cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_index_kms_push", || {
        let config = try_ref!(config);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let blob = try_ref!(blob);
        Ok(envelope::push_index_kms(config, index_name, blob)?)
    })
}

/// Reads the envelope of the index. On success writes a new handle to `*out_blob` (caller owns;
/// free with `cyb_kms_blob_free`); on error `*out_blob` is untouched.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`, `CYB_RESULT_NOT_FOUND`,
/// `CYB_RESULT_CORRUPT` (stored bytes fail verification), `CYB_RESULT_IO`,
/// `CYB_RESULT_STORAGE_UNAVAILABLE`, `CYB_RESULT_STORAGE_ACCESS_DENIED`.
///
/// # Safety
/// `config` is NULL or a live handle; `index_name` is NULL or points to `index_name_len`
/// readable bytes; `out_blob` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cyb_index_kms_get(
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    out_blob: *mut *mut cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_index_kms_get", || {
        let config = try_ref!(config);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let out = try_out!(out_blob);
        let blob = envelope::get_index_kms(config, index_name)?;
        *out = handle::into_raw(blob);
        Ok(())
    })
}

/// Removes the envelope of the index; removing a missing envelope succeeds.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`, `CYB_RESULT_IO`,
/// `CYB_RESULT_STORAGE_UNAVAILABLE`, `CYB_RESULT_STORAGE_ACCESS_DENIED`.
///
/// # Safety
/// `config` is NULL or a live handle; `index_name` is NULL or points to `index_name_len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_index_kms_delete(
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
) -> cyb_result {
    ffi_call("cyb_index_kms_delete", || {
        let config = try_ref!(config);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        Ok(envelope::delete_index_kms(config, index_name)?)
    })
}
