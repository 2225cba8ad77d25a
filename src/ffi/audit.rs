//! The custody audit from C: an audited storage config, and `cyb_verify_audit` (Rust:
//! `StorageConfig::with_audit`, `audit::verify_audit`).

use std::ffi::c_char;
use std::time::Duration;

use super::blob::cyb_str;
use super::boundary::{ffi_call, Failure};
use super::handle::{self, str_arg, try_out, try_ref};
use super::kek_resolver::cyb_kek_resolver;
use super::result::cyb_result;
use super::storage_config::cyb_storage_config;
use crate::audit::{verify_audit, AuditBreakKind, AuditOptions};

/// No break: the chain is intact (`cyb_audit_report.break_kind`).
pub const CYB_AUDIT_BREAK_NONE: u32 = 0;
/// A record's content no longer matches its hash, is not a record, or the next record does not
/// chain to it.
pub const CYB_AUDIT_BREAK_CHANGED: u32 = 1;
/// The record with the expected seq is missing.
pub const CYB_AUDIT_BREAK_REMOVED: u32 = 2;
/// The record with the expected seq is stored later, or under another seq's key.
pub const CYB_AUDIT_BREAK_REORDERED: u32 = 3;
/// A record is cut short (a torn last append, a truncated file or object).
pub const CYB_AUDIT_BREAK_TRUNCATED: u32 = 4;
/// Two records claim one seq or follow one record.
pub const CYB_AUDIT_BREAK_FORK: u32 = 5;
/// Size of `cyb_audit_report.break_message`, NUL included.
pub const CYB_AUDIT_MESSAGE_LEN: usize = 512;

const _: () = assert!(AuditBreakKind::Changed as u32 == CYB_AUDIT_BREAK_CHANGED);
const _: () = assert!(AuditBreakKind::Removed as u32 == CYB_AUDIT_BREAK_REMOVED);
const _: () = assert!(AuditBreakKind::Reordered as u32 == CYB_AUDIT_BREAK_REORDERED);
const _: () = assert!(AuditBreakKind::Truncated as u32 == CYB_AUDIT_BREAK_TRUNCATED);
const _: () = assert!(AuditBreakKind::Fork as u32 == CYB_AUDIT_BREAK_FORK);

/// Who audit records name (Rust: `AuditOptions`). Zero-initialize and set `principal`.
///
/// - `principal`: the service or operator making changes, 1–256 bytes of UTF-8 without control
///   characters; never a credential. Required.
/// - `host`: the host name recorded; empty: the machine's (`gethostname`).
/// - `unwrap_counts_seconds`: per-index unwrap counts: a resolver acting on the store appends
///   one `unwraps` record per index at most every this many seconds (1–86400) and when flushed
///   (`cyb_kek_resolver_flush_unwrap_counts`, resolver free). 0: off.
#[repr(C)]
pub struct cyb_audit_options {
    /// Required.
    pub principal: cyb_str,
    /// Empty: this machine's host name.
    pub host: cyb_str,
    /// 0: off; else 1..=86400 seconds.
    pub unwrap_counts_seconds: u32,
}

/// What `cyb_verify_audit` found (Rust: `AuditReport`).
#[repr(C)]
pub struct cyb_audit_report {
    /// Records verified: those before the first break (all of them if there is none).
    pub records: u64,
    /// Whether any record verified (then `head_seq` / `head_hash` are set).
    pub has_head: bool,
    /// The seq of the last verified record.
    pub head_seq: u64,
    /// The SHA-256 of the last verified record: keep it outside the store to detect a later
    /// truncation of the newest records, which the chain alone cannot show.
    pub head_hash: [u8; 32],
    /// `CYB_AUDIT_BREAK_*`: `CYB_AUDIT_BREAK_NONE` if the chain is intact.
    pub break_kind: u32,
    /// The first seq that is not trustworthy (0 if intact).
    pub break_seq: u64,
    /// What was found, NUL-terminated UTF-8, cut at a character boundary to fit (empty if
    /// intact).
    pub break_message: [c_char; CYB_AUDIT_MESSAGE_LEN],
}

/// The options as Rust's.
///
/// # Safety
/// `options` points to a readable `cyb_audit_options` whose strings are readable.
unsafe fn audit_options(options: &cyb_audit_options) -> Result<AuditOptions, Failure> {
    let principal = unsafe {
        str_arg(
            options.principal.data,
            options.principal.len,
            "options.principal",
        )
    }?;
    let host = unsafe { str_arg(options.host.data, options.host.len, "options.host") }?;
    Ok(AuditOptions {
        principal: principal.to_owned(),
        host: (!host.is_empty()).then(|| host.to_owned()),
        unwrap_counts: (options.unwrap_counts_seconds != 0)
            .then(|| Duration::from_secs(u64::from(options.unwrap_counts_seconds))),
    })
}

/// Makes a new handle to the store of `config` with the custody audit on: every create, push,
/// delete and re-wrap through it (and resolver calls on it) first appends a hash-chained record to
/// the store's audit log (`<root>/.audit/log.jsonl` on disk, `<prefix>.audit/<seq>` objects on
/// S3). If that append fails, the change is not made and the call fails with the append's code
/// (`CYB_RESULT_IO`, `CYB_RESULT_CORRUPT`, `CYB_RESULT_STORAGE_*`). `config` itself is unchanged.
///
/// On success writes a new handle to `*out_config` (caller owns; free with
/// `cyb_storage_config_free`). Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`
/// (a principal or host that is empty, over 256 bytes, not UTF-8 or holds a control character;
/// the message names the field).
///
/// # Safety
/// `config` is NULL or a live handle; `options` is NULL or points to a readable
/// `cyb_audit_options`; `out_config` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_storage_config_with_audit(
    config: *const cyb_storage_config,
    options: *const cyb_audit_options,
    out_config: *mut *mut cyb_storage_config,
) -> cyb_result {
    ffi_call("cyb_storage_config_with_audit", || {
        let config = try_ref!(config);
        let options =
            unsafe { options.as_ref() }.ok_or_else(|| Failure::null_parameter("options"))?;
        let out = try_out!(out_config);
        let options = unsafe { audit_options(options) }?;
        *out = handle::into_raw(config.with_audit(&options)?);
        Ok(())
    })
}

/// Turns the custody audit on for every store `resolver` acts on (`options` non-NULL) or off
/// (NULL): its creates, re-wraps, drift findings and refused keys are recorded in that store's
/// audit log. A store handle that is audited itself keeps its own options.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER` (`resolver`), `CYB_RESULT_INVALID_ARGUMENT` (as
/// `cyb_storage_config_with_audit`; nothing changes then).
///
/// # Safety
/// `resolver` is NULL or a live handle; `options` is NULL or points to a readable
/// `cyb_audit_options`.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_resolver_set_audit(
    resolver: *const cyb_kek_resolver,
    options: *const cyb_audit_options,
) -> cyb_result {
    ffi_call("cyb_kek_resolver_set_audit", || {
        let resolver = try_ref!(resolver);
        let options = match unsafe { options.as_ref() } {
            Some(options) => Some(unsafe { audit_options(options) }?),
            None => None,
        };
        resolver.set_audit(options.as_ref())?;
        Ok(())
    })
}

/// Walks the audit log of `config`'s store from seq 0 and reports the first break (changed,
/// removed, reordered, truncated record, or fork) in `*out_report`. A break is not an error: the
/// call returns `CYB_RESULT_OK` with `break_kind` set. Works on audited and plain handles alike.
///
/// Errors (`*out_report` untouched): `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_CORRUPT` (a stored
/// line longer than any record, more records than the scan limit), `CYB_RESULT_IO`,
/// `CYB_RESULT_STORAGE_UNAVAILABLE`, `CYB_RESULT_STORAGE_ACCESS_DENIED`,
/// `CYB_RESULT_FORKED_PROCESS` (an S3 handle made before `fork()`).
///
/// # Safety
/// `config` is NULL or a live handle; `out_report` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_verify_audit(
    config: *const cyb_storage_config,
    out_report: *mut cyb_audit_report,
) -> cyb_result {
    ffi_call("cyb_verify_audit", || {
        let config = try_ref!(config);
        let out = try_out!(out_report);
        let report = verify_audit(config)?;
        let mut c_report = cyb_audit_report {
            records: report.records,
            has_head: report.head.is_some(),
            head_seq: report.head.map_or(0, |head| head.seq),
            head_hash: report.head.map_or([0; 32], |head| head.hash),
            break_kind: CYB_AUDIT_BREAK_NONE,
            break_seq: 0,
            break_message: [0; CYB_AUDIT_MESSAGE_LEN],
        };
        if let Some(found) = &report.first_break {
            c_report.break_kind = found.kind as u32;
            c_report.break_seq = found.seq;
            let mut cut = found.message.len().min(CYB_AUDIT_MESSAGE_LEN - 1);
            while !found.message.is_char_boundary(cut) {
                cut -= 1;
            }
            for (slot, byte) in c_report
                .break_message
                .iter_mut()
                .zip(found.message[..cut].bytes())
            {
                *slot = byte as c_char;
            }
        }
        *out = c_report;
        Ok(())
    })
}

/// Appends the per-index unwrap counts `resolver` has not yet appended (audit option
/// `unwrap_counts_seconds`): one `unwraps` record per index counted since its last record, to
/// its store's audit log. Freeing the resolver does the same. Best effort as every observation:
/// a record that cannot be appended is logged and its counts dropped.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER` (`resolver`), `CYB_RESULT_FORKED_PROCESS`.
///
/// # Safety
/// `resolver` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_resolver_flush_unwrap_counts(
    resolver: *const cyb_kek_resolver,
) -> cyb_result {
    ffi_call("cyb_kek_resolver_flush_unwrap_counts", || {
        let resolver = try_ref!(resolver);
        resolver.flush_unwrap_counts()?;
        Ok(())
    })
}
