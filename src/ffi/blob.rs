//! `cyb_kms_blob`: one envelope's fields, set before create / push and read after get.

use std::ffi::c_char;

use super::boundary::{ffi_call, ffi_value};
use super::handle::{self, bytes_arg, str_arg, try_mut, try_out, Castable};
use super::result::cyb_result;
use crate::blob::KmsBlob;

/// An envelope (Rust: `KmsBlob`): `kms_name`, `provider`, `key_id`, `region`, `wrapped_kek`,
/// `version`, `created_at`. Not synchronized: use one handle from one thread at a time (it may
/// move between threads). Free with `cyb_kms_blob_free`.
pub struct cyb_kms_blob {
    _private: [u8; 0],
}

impl Castable for cyb_kms_blob {
    type RustType = KmsBlob;
}

/// Borrowed UTF-8 text: `len` bytes at `data`, not NUL-terminated (`data` is meaningless when
/// `len` is 0). Returned by getters: valid until the owning handle is modified or freed. As an
/// input field (`cyb_s3_options`): the caller's bytes, read only during the call; `data` may be
/// NULL only if `len` is 0.
#[repr(C)]
pub struct cyb_str {
    /// The first byte; may be NULL when `len` is 0.
    pub data: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

/// Borrowed bytes: `len` bytes at `data` (`data` is meaningless when `len` is 0). Valid until the
/// owning handle is modified or freed.
#[repr(C)]
pub struct cyb_bytes {
    /// The first byte; may be NULL when `len` is 0.
    pub data: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl cyb_str {
    /// A view of `value`, valid as long as `value` is.
    pub(crate) fn borrow(value: &str) -> cyb_str {
        cyb_str {
            data: value.as_ptr().cast(),
            len: value.len(),
        }
    }
}

pub(crate) const EMPTY_STR: cyb_str = cyb_str {
    data: std::ptr::null(),
    len: 0,
};

const EMPTY_BYTES: cyb_bytes = cyb_bytes {
    data: std::ptr::null(),
    len: 0,
};

/// Makes an empty envelope: empty strings and bytes, `version` 0, `created_at` 0.
///
/// On success writes a new handle to `*out_blob` (caller owns; free with `cyb_kms_blob_free`).
/// Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `out_blob` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_new(out_blob: *mut *mut cyb_kms_blob) -> cyb_result {
    ffi_call("cyb_kms_blob_new", || {
        let out = try_out!(out_blob);
        *out = handle::into_raw(KmsBlob::default());
        Ok(())
    })
}

/// Frees an envelope handle. NULL is a no-op.
///
/// # Safety
/// `blob` is NULL or a handle from this library that is not used again.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_free(blob: *mut cyb_kms_blob) {
    ffi_value((), || unsafe { handle::free(blob) })
}

/// Shared body of the four string setters.
///
/// # Safety
/// As the setters.
unsafe fn set_string(
    function: &'static str,
    blob: *mut cyb_kms_blob,
    value: *const c_char,
    value_len: usize,
    field: fn(&mut KmsBlob) -> &mut String,
) -> cyb_result {
    ffi_call(function, || {
        let blob = try_mut!(blob);
        let value = unsafe { str_arg(value, value_len, "value") }?;
        *field(blob) = value.to_owned();
        Ok(())
    })
}

/// Sets `kms_name` to `value_len` bytes of UTF-8 at `value` (copied; NULL with length 0 is "").
/// Field rules are checked by create / push. Errors: `CYB_RESULT_NULL_PARAMETER`,
/// `CYB_RESULT_INVALID_ARGUMENT` (invalid UTF-8); the field is unchanged on error.
///
/// # Safety
/// `blob` is NULL or a live handle; `value` is NULL or points to `value_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_kms_name(
    blob: *mut cyb_kms_blob,
    value: *const c_char,
    value_len: usize,
) -> cyb_result {
    unsafe {
        set_string("cyb_kms_blob_set_kms_name", blob, value, value_len, |b| {
            &mut b.kms_name
        })
    }
}

/// Sets `provider` (`"aws"`, `"aws-kms"` or `"none"`); as `cyb_kms_blob_set_kms_name`.
///
/// # Safety
/// As `cyb_kms_blob_set_kms_name`.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_provider(
    blob: *mut cyb_kms_blob,
    value: *const c_char,
    value_len: usize,
) -> cyb_result {
    unsafe {
        set_string("cyb_kms_blob_set_provider", blob, value, value_len, |b| {
            &mut b.provider
        })
    }
}

/// Sets `key_id`; as `cyb_kms_blob_set_kms_name`.
///
/// # Safety
/// As `cyb_kms_blob_set_kms_name`.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_key_id(
    blob: *mut cyb_kms_blob,
    value: *const c_char,
    value_len: usize,
) -> cyb_result {
    unsafe {
        set_string("cyb_kms_blob_set_key_id", blob, value, value_len, |b| {
            &mut b.key_id
        })
    }
}

/// Sets `region`; as `cyb_kms_blob_set_kms_name`.
///
/// # Safety
/// As `cyb_kms_blob_set_kms_name`.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_region(
    blob: *mut cyb_kms_blob,
    value: *const c_char,
    value_len: usize,
) -> cyb_result {
    unsafe {
        set_string("cyb_kms_blob_set_region", blob, value, value_len, |b| {
            &mut b.region
        })
    }
}

/// Sets `wrapped_kek` to `value_len` bytes at `value` (copied; NULL with length 0 is empty).
/// Errors: `CYB_RESULT_NULL_PARAMETER`; the field is unchanged on error.
///
/// # Safety
/// `blob` is NULL or a live handle; `value` is NULL or points to `value_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_wrapped_kek(
    blob: *mut cyb_kms_blob,
    value: *const u8,
    value_len: usize,
) -> cyb_result {
    ffi_call("cyb_kms_blob_set_wrapped_kek", || {
        let blob = try_mut!(blob);
        let value = unsafe { bytes_arg(value, value_len, "value") }?;
        blob.wrapped_kek = value.to_vec();
        Ok(())
    })
}

/// Sets `version`. Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_version(
    blob: *mut cyb_kms_blob,
    version: u32,
) -> cyb_result {
    ffi_call("cyb_kms_blob_set_version", || {
        try_mut!(blob).version = version;
        Ok(())
    })
}

/// Sets `created_at` (unix epoch seconds; 0 is stamped with the current time on create / push).
/// Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_set_created_at(
    blob: *mut cyb_kms_blob,
    created_at: i64,
) -> cyb_result {
    ffi_call("cyb_kms_blob_set_created_at", || {
        try_mut!(blob).created_at = created_at;
        Ok(())
    })
}

/// Shared body of the string getters.
///
/// # Safety
/// `blob` is NULL or a live handle.
unsafe fn get_string(blob: *const cyb_kms_blob, field: fn(&KmsBlob) -> &str) -> cyb_str {
    ffi_value(EMPTY_STR, || match unsafe { handle::as_ref(blob) } {
        Some(blob) => cyb_str::borrow(field(blob)),
        None => EMPTY_STR,
    })
}

/// `kms_name`, borrowed (see `cyb_str`); empty for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_kms_name(blob: *const cyb_kms_blob) -> cyb_str {
    unsafe { get_string(blob, |b| &b.kms_name) }
}

/// `provider`, borrowed (see `cyb_str`); empty for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_provider(blob: *const cyb_kms_blob) -> cyb_str {
    unsafe { get_string(blob, |b| &b.provider) }
}

/// `key_id`, borrowed (see `cyb_str`); empty for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_key_id(blob: *const cyb_kms_blob) -> cyb_str {
    unsafe { get_string(blob, |b| &b.key_id) }
}

/// `region`, borrowed (see `cyb_str`); empty for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_region(blob: *const cyb_kms_blob) -> cyb_str {
    unsafe { get_string(blob, |b| &b.region) }
}

/// `wrapped_kek`, borrowed (see `cyb_bytes`); empty for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_wrapped_kek(blob: *const cyb_kms_blob) -> cyb_bytes {
    ffi_value(EMPTY_BYTES, || match unsafe { handle::as_ref(blob) } {
        Some(blob) => cyb_bytes {
            data: blob.wrapped_kek.as_ptr(),
            len: blob.wrapped_kek.len(),
        },
        None => EMPTY_BYTES,
    })
}

/// `version`; 0 for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_version(blob: *const cyb_kms_blob) -> u32 {
    ffi_value(0, || {
        unsafe { handle::as_ref(blob) }.map_or(0, |b| b.version)
    })
}

/// `created_at`; 0 for a NULL `blob`.
///
/// # Safety
/// `blob` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_blob_created_at(blob: *const cyb_kms_blob) -> i64 {
    ffi_value(0, || {
        unsafe { handle::as_ref(blob) }.map_or(0, |b| b.created_at)
    })
}
