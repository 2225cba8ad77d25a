//! Conversions between C arguments and Rust values: opaque handles, `(pointer, length)` strings
//! and byte slices, and out-parameters. Each NULL check yields `CYB_RESULT_NULL_PARAMETER` naming
//! the parameter, so no entry point dereferences a pointer it has not checked.

use std::ffi::c_char;
use std::fmt;

use super::boundary::Failure;

/// Ties an opaque C handle type to the Rust value a pointer to it stands for. Handles are created
/// by [`into_raw`] (a `Box`, single owner) and destroyed by [`free`].
pub(crate) trait Castable {
    type RustType;
}

/// Moves `value` to the heap and returns it as a handle the caller owns.
pub(crate) fn into_raw<C: Castable>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Destroys a handle made by [`into_raw`]; NULL is a no-op.
///
/// # Safety
/// `handle` is NULL or came from `into_raw::<C>` and is not used again.
pub(crate) unsafe fn free<C: Castable>(handle: *mut C) {
    if !handle.is_null() {
        drop(unsafe { Box::from_raw(handle.cast::<C::RustType>()) });
    }
}

/// Borrows the value behind a handle, or `None` for NULL.
///
/// # Safety
/// `handle` is NULL or a live handle of type `C`, not mutated during `'a`.
pub(crate) unsafe fn as_ref<'a, C: Castable>(handle: *const C) -> Option<&'a C::RustType> {
    unsafe { handle.cast::<C::RustType>().as_ref() }
}

/// Mutably borrows the value behind a handle, or `None` for NULL.
///
/// # Safety
/// `handle` is NULL or a live handle of type `C`, not otherwise used during `'a`.
pub(crate) unsafe fn as_mut<'a, C: Castable>(handle: *mut C) -> Option<&'a mut C::RustType> {
    unsafe { handle.cast::<C::RustType>().as_mut() }
}

/// Borrows `(data, len)` as bytes. NULL with `len == 0` is the empty slice; NULL otherwise fails.
///
/// # Safety
/// Unless NULL, `data` points to `len` readable bytes that stay valid and unchanged during `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    data: *const u8,
    len: usize,
    parameter: impl fmt::Display,
) -> Result<&'a [u8], Failure> {
    match (data.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Failure::null_parameter(&parameter.to_string())),
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(data, len) }),
    }
}

/// Borrows `(data, len)` as UTF-8 text; invalid UTF-8 is `CYB_RESULT_INVALID_ARGUMENT`.
/// `parameter` names the argument in error messages (formatted only on error, so
/// `format_args!("names[{i}]")` costs nothing on success).
///
/// # Safety
/// As [`bytes_arg`].
pub(crate) unsafe fn str_arg<'a>(
    data: *const c_char,
    len: usize,
    parameter: impl fmt::Display,
) -> Result<&'a str, Failure> {
    let bytes = unsafe { bytes_arg(data.cast(), len, &parameter) }?;
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::invalid_argument(format!(
            "{parameter} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Checks a caller's KEK buffer: non-NULL and exactly 32 bytes.
pub(crate) fn kek_buffer<'a>(
    out_kek: *mut u8,
    out_kek_len: usize,
) -> Result<&'a mut [u8], Failure> {
    if out_kek.is_null() {
        return Err(Failure::null_parameter("out_kek"));
    }
    if out_kek_len != crate::kms::Kek::LEN {
        return Err(Failure::invalid_argument(format!(
            "out_kek_len must be {} (a KEK is 32 bytes), not {out_kek_len}",
            crate::kms::Kek::LEN
        )));
    }
    // SAFETY: the caller guarantees `out_kek` points to `out_kek_len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(out_kek, out_kek_len) })
}

/// `as_ref` that fails with NULL_PARAMETER naming the argument.
macro_rules! try_ref {
    ($handle:ident) => {
        unsafe { $crate::ffi::handle::as_ref($handle) }
            .ok_or_else(|| $crate::ffi::boundary::Failure::null_parameter(stringify!($handle)))?
    };
}

/// `as_mut` that fails with NULL_PARAMETER naming the argument.
macro_rules! try_mut {
    ($handle:ident) => {
        unsafe { $crate::ffi::handle::as_mut($handle) }
            .ok_or_else(|| $crate::ffi::boundary::Failure::null_parameter(stringify!($handle)))?
    };
}

/// Checks an out-parameter for NULL, giving `&mut` to the caller's slot.
macro_rules! try_out {
    ($out:ident) => {
        unsafe { $out.as_mut() }
            .ok_or_else(|| $crate::ffi::boundary::Failure::null_parameter(stringify!($out)))?
    };
}

pub(crate) use {try_mut, try_out, try_ref};
