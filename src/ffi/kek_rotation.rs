//! `cyb_kek_rotation`: new-KEK rotation of an index (docs/resolver.md, "Rotation") — a fresh KEK
//! through a registry slot, the engine's re-wrap of its DEK, then commit or abort; one call with
//! a callback, or two phases with a pending-rotation handle.

use std::ffi::{c_char, c_void};

use super::blob::cyb_kms_blob;
use super::boundary::{ffi_call, ffi_value, Failure};
use super::handle::{self, kek_buffer, str_arg, try_out, try_ref, Castable};
use super::kek_resolver::{cyb_drift_report, cyb_kek_resolver};
use super::result::cyb_result;
use super::storage_config::cyb_storage_config;
use crate::kms::Kek;
use crate::resolver::{RotateKekError, Rotation, RotationState};

/// A new-KEK rotation of one index (Rust: `Rotation`), from `cyb_kek_begin_rotation` or
/// `cyb_kek_pending_rotation`: both KEKs (wiped when the handle is freed) and both envelopes.
/// Immutable; may be read from any thread. Free with `cyb_kek_rotation_free`.
pub struct cyb_kek_rotation {
    _private: [u8; 0],
}

impl Castable for cyb_kek_rotation {
    type RustType = Rotation;
}

/// Where a rotation stood when its handle was made, judged from the stored envelope.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cyb_rotation_state {
    /// The envelope is still the old one (resolve returns the old KEK): commit or abort.
    CYB_ROTATION_PENDING = 0,
    /// The envelope already holds the new KEK (a commit stopped before removing the record):
    /// commit finishes it; abort is refused.
    CYB_ROTATION_COMMITTED = 1,
    /// Another write replaced or deleted the envelope since begin: commit is refused; abort.
    CYB_ROTATION_STALE = 2,
}

impl From<RotationState> for cyb_rotation_state {
    fn from(state: RotationState) -> Self {
        match state {
            RotationState::Pending => cyb_rotation_state::CYB_ROTATION_PENDING,
            RotationState::Committed => cyb_rotation_state::CYB_ROTATION_COMMITTED,
            RotationState::Stale => cyb_rotation_state::CYB_ROTATION_STALE,
        }
    }
}

/// The engine's re-wrap step of `cyb_kek_rotate_kek`: re-wrap what it keeps under the KEK (its
/// DEK) under `new_kek`, keeping a copy under `old_kek` until the rotation call returns; both are
/// `CYB_KEK_LEN` bytes, valid only during the call (copy them into memory you wipe). Return true
/// on success, false to abort the rotation. It must be idempotent (a recovery may run it again)
/// and must not unwind (no C++ exception or longjmp may cross it: catch inside).
pub type cyb_kek_rotate_callback = Option<
    unsafe extern "C" fn(context: *mut c_void, old_kek: *const u8, new_kek: *const u8) -> bool,
>;

/// Begins a new-KEK rotation of the index through the registry slot `slot_name`: unwraps the
/// current KEK, wraps a fresh one through the slot, and strictly stores a pending-rotation
/// record next to the envelope (which is unchanged: resolve keeps returning the old KEK). Writes
/// a rotation handle to `*out_rotation` (caller owns; free with `cyb_kek_rotation_free`).
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`, `CYB_RESULT_NOT_FOUND`,
/// `CYB_RESULT_CORRUPT`, store errors, `CYB_RESULT_KEK_NOT_WRAPPED`, `CYB_RESULT_UNKNOWN_SLOT`,
/// `CYB_RESULT_UNTRUSTED_KEY`, provider errors, `CYB_RESULT_CONFLICT` (a rotation of the index
/// is already pending: see `cyb_kek_pending_rotation`). On error nothing is stored.
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; the names are NULL or readable for their
/// lengths; `out_rotation` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_begin_rotation(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    slot_name: *const c_char,
    slot_name_len: usize,
    out_rotation: *mut *mut cyb_kek_rotation,
) -> cyb_result {
    ffi_call("cyb_kek_begin_rotation", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let out = try_out!(out_rotation);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let slot_name = unsafe { str_arg(slot_name, slot_name_len, "slot_name") }?;
        *out = handle::into_raw(resolver.begin_rotation(config, index_name, slot_name)?);
        Ok(())
    })
}

/// Finds the index's pending rotation (begun and neither committed nor aborted, e.g. after a
/// crash): writes a rotation handle to `*out_rotation` (caller owns), or NULL if none is
/// pending. Both KEKs are unwrapped through the slots that trust their keys.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`, `CYB_RESULT_CORRUPT` (the
/// record is damaged, truncated, oversized or foreign), store errors, the unwraps' errors
/// (`CYB_RESULT_UNKNOWN_SLOT`, `CYB_RESULT_UNTRUSTED_KEY`, `CYB_RESULT_DECRYPT_FAILED`, ...).
///
/// # Safety
/// As `cyb_kek_begin_rotation`.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_pending_rotation(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    out_rotation: *mut *mut cyb_kek_rotation,
) -> cyb_result {
    ffi_call("cyb_kek_pending_rotation", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let out = try_out!(out_rotation);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        *out = match resolver.pending_rotation(config, index_name)? {
            Some(rotation) => handle::into_raw(rotation),
            None => std::ptr::null_mut(),
        };
        Ok(())
    })
}

/// Commits the rotation: swaps the stored envelope to the new one (compare-and-swap, version +
/// 1), removes the record and drops the index's cached KEK. Idempotent (finishes a commit a crash
/// interrupted). Call it once the engine's data opens with the new KEK. If `out_blob` is
/// non-NULL, writes a handle to the new envelope there (caller owns).
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_CONFLICT` (the envelope is neither the old
/// nor the new one, or the record is gone or another rotation's; nothing written),
/// `CYB_RESULT_CORRUPT`, `CYB_RESULT_UNKNOWN_SLOT`, `CYB_RESULT_UNTRUSTED_KEY`, store errors.
///
/// # Safety
/// `resolver`, `config` and `rotation` are NULL or live handles; `out_blob` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_commit_rotation(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    rotation: *const cyb_kek_rotation,
    out_blob: *mut *mut cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_kek_commit_rotation", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let rotation = try_ref!(rotation);
        let blob = resolver.commit_rotation(config, rotation)?;
        if let Some(out) = unsafe { out_blob.as_mut() } {
            *out = handle::into_raw(blob);
        }
        Ok(())
    })
}

/// Aborts the rotation: removes its record; the envelope (and so the index's KEK) is unchanged.
/// Aborting a rotation whose record is gone succeeds.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_CONFLICT` (already committed: finish with
/// `cyb_kek_commit_rotation`; or the record is another rotation's), `CYB_RESULT_CORRUPT`, store
/// errors.
///
/// # Safety
/// `resolver`, `config` and `rotation` are NULL or live handles.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_abort_rotation(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    rotation: *const cyb_kek_rotation,
) -> cyb_result {
    ffi_call("cyb_kek_abort_rotation", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let rotation = try_ref!(rotation);
        Ok(resolver.abort_rotation(config, rotation)?)
    })
}

/// Copies the rotation's old KEK (the one the old envelope wraps) into the caller's 32-byte
/// `out_kek`. Wipe it when done.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT` (`out_kek_len` not 32).
///
/// # Safety
/// `rotation` is NULL or a live handle; `out_kek` is NULL or points to `out_kek_len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_rotation_old_kek(
    rotation: *const cyb_kek_rotation,
    out_kek: *mut u8,
    out_kek_len: usize,
) -> cyb_result {
    ffi_call("cyb_kek_rotation_old_kek", || {
        let rotation = try_ref!(rotation);
        kek_buffer(out_kek, out_kek_len)?.copy_from_slice(rotation.old_kek().as_bytes());
        Ok(())
    })
}

/// Copies the rotation's new KEK (the one commit gives the index) into the caller's 32-byte
/// `out_kek`. Wipe it when done. Errors as `cyb_kek_rotation_old_kek`.
///
/// # Safety
/// As `cyb_kek_rotation_old_kek`.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_rotation_new_kek(
    rotation: *const cyb_kek_rotation,
    out_kek: *mut u8,
    out_kek_len: usize,
) -> cyb_result {
    ffi_call("cyb_kek_rotation_new_kek", || {
        let rotation = try_ref!(rotation);
        kek_buffer(out_kek, out_kek_len)?.copy_from_slice(rotation.new_kek().as_bytes());
        Ok(())
    })
}

/// Where the rotation stood when its handle was made; `CYB_ROTATION_STALE` for NULL.
///
/// # Safety
/// `rotation` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_rotation_state(
    rotation: *const cyb_kek_rotation,
) -> cyb_rotation_state {
    ffi_value(cyb_rotation_state::CYB_ROTATION_STALE, || {
        unsafe { handle::as_ref(rotation) }
            .map_or(cyb_rotation_state::CYB_ROTATION_STALE, |r| r.state().into())
    })
}

/// Frees a rotation handle and wipes its KEKs (the rotation itself stays as it is in storage).
/// NULL is a no-op.
///
/// # Safety
/// `rotation` is NULL or a handle from this API that no thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_rotation_free(rotation: *mut cyb_kek_rotation) {
    ffi_value((), || unsafe { handle::free(rotation) })
}

/// New-KEK rotation in one call: begin, `callback(context, old_kek, new_kek)`, commit. If the
/// callback returns false the rotation is aborted (the stored envelope is unchanged) and the
/// call returns `CYB_RESULT_CALLBACK_FAILED`. If `out_blob` is non-NULL, writes a handle to the
/// new envelope there (caller owns).
///
/// Errors: `CYB_RESULT_NULL_PARAMETER` (also a NULL callback), `CYB_RESULT_CALLBACK_FAILED`,
/// and those of `cyb_kek_begin_rotation` and `cyb_kek_commit_rotation` (a failed commit after
/// the callback succeeded leaves the record: recover with `cyb_kek_pending_rotation`).
///
/// # Safety
/// As `cyb_kek_begin_rotation`; `callback` is safe to call with `context` during this call;
/// `out_blob` is NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cyb_kek_rotate_kek(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    slot_name: *const c_char,
    slot_name_len: usize,
    callback: cyb_kek_rotate_callback,
    context: *mut c_void,
    out_blob: *mut *mut cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_kek_rotate_kek", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let callback = callback.ok_or_else(|| Failure::null_parameter("callback"))?;
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let slot_name = unsafe { str_arg(slot_name, slot_name_len, "slot_name") }?;
        let rotated = resolver.rotate_kek(config, index_name, slot_name, |old: &Kek, new: &Kek| {
            // SAFETY: the caller guarantees the callback may be called with `context`; the KEK
            // pointers are valid for CYB_KEK_LEN bytes during the call.
            match unsafe { callback(context, old.as_bytes().as_ptr(), new.as_bytes().as_ptr()) } {
                true => Ok(()),
                false => Err(()),
            }
        });
        let blob = match rotated {
            Ok(blob) => blob,
            Err(RotateKekError::Rotation(e)) => return Err(e.into()),
            Err(RotateKekError::Callback(())) => {
                return Err(Failure::callback_failed(format!(
                    "index {}: the engine's re-wrap callback failed; the new-KEK rotation was rolled back (the envelope is unchanged)",
                    crate::error::quoted_prefix(index_name)
                )))
            }
        };
        if let Some(out) = unsafe { out_blob.as_mut() } {
            *out = handle::into_raw(blob);
        }
        Ok(())
    })
}

/// The engine's re-wrap step of `cyb_kek_check_drift_new_kek`, called once per drifted index:
/// as `cyb_kek_rotate_callback`, with the index's name (`index_name_len` bytes of UTF-8, not
/// NUL-terminated, valid only during the call). Return true on success, false to roll that
/// index's rotation back (the others go on).
pub type cyb_kek_drift_rotate_callback = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        index_name: *const c_char,
        index_name_len: usize,
        old_kek: *const u8,
        new_kek: *const u8,
    ) -> bool,
>;

/// What a C callback's `false` says, for the report's message.
struct ReturnedFalse;

impl std::fmt::Display for ReturnedFalse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("it returned false")
    }
}

/// Drift repair in new-KEK mode (docs/resolver.md, "Drift"): compares every envelope stored in
/// `config` with the registry as `cyb_kek_check_drift` does without re-wrapping, then rotates
/// each drifted index to a fresh KEK under its own slot as `cyb_kek_rotate_kek` does, calling
/// `callback(context, index, old_kek, new_kek)` for it. Writes a report handle to
/// `*out_report` (caller owns; free with `cyb_drift_report_free`): a rotated index is
/// `CYB_DRIFT_REWRAPPED`; one whose callback returned false is `CYB_DRIFT_FAILED` with
/// `CYB_RESULT_CALLBACK_FAILED` (its rotation rolled back, its envelope unchanged); a failed
/// rotation is `CYB_DRIFT_FAILED` with its error (recover a commit failure with
/// `cyb_kek_pending_rotation`).
///
/// Errors (of the whole call): `CYB_RESULT_NULL_PARAMETER` (also a NULL callback); the store's
/// errors while listing envelopes.
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; `callback` is safe to call with `context`
/// during this call, from this thread; `out_report` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_check_drift_new_kek(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    callback: cyb_kek_drift_rotate_callback,
    context: *mut c_void,
    out_report: *mut *mut cyb_drift_report,
) -> cyb_result {
    ffi_call("cyb_kek_check_drift_new_kek", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let callback = callback.ok_or_else(|| Failure::null_parameter("callback"))?;
        let out = try_out!(out_report);
        let report =
            resolver.check_drift_new_kek(config, |index: &str, old: &Kek, new: &Kek| {
                // SAFETY: the caller guarantees the callback may be called with `context`; the name
                // and KEK pointers are valid for their lengths during the call.
                match unsafe {
                    callback(
                        context,
                        index.as_ptr().cast(),
                        index.len(),
                        old.as_bytes().as_ptr(),
                        new.as_bytes().as_ptr(),
                    )
                } {
                    true => Ok(()),
                    false => Err(ReturnedFalse),
                }
            })?;
        *out = handle::into_raw(report.into_iter().map(|(entry, _)| entry).collect());
        Ok(())
    })
}
