//! `cyb_kek_resolver`: resolve an index's KEK through the cache, create indexes in either mode,
//! re-wrap, check drift, warm up, invalidate, and read the cache statistics.

use std::ffi::c_char;
use std::time::Duration;

use super::blob::{cyb_kms_blob, cyb_str, EMPTY_STR};
use super::boundary::{ffi_call, ffi_value, Failure};
use super::handle::{self, bytes_arg, kek_buffer, str_arg, try_out, try_ref, Castable};
use super::kms_client::cyb_kms_client;
use super::result::cyb_result;
use super::storage_config::cyb_storage_config;
use crate::cache::{CacheStats, KekCacheOptions, DEFAULT_MAX_ENTRIES};
use crate::resolver::{DriftEntry, DriftStatus, KekResolver, KeySnapshot};

/// A KEK resolver (Rust: `KekResolver`): a KMS client plus a TTL'd cache of unwrapped KEKs.
/// Thread-safe: one handle may be used by any number of threads at once; concurrent misses on
/// one index make one provider call. Free with `cyb_kek_resolver_free` after the last use. Owns no
/// threads: its cache's sweeper is a task on the library's process-wide runtime.
///
/// fork(): in a child forked after the handle was made, resolve, create, re-wrap, drift and
/// warm-up return `CYB_RESULT_FORKED_PROCESS` (cached KEKs are not served), invalidation does
/// nothing; freeing it there is safe and wipes its KEKs. Make a new client and resolver in the
/// child.
pub struct cyb_kek_resolver {
    _private: [u8; 0],
}

impl Castable for cyb_kek_resolver {
    type RustType = KekResolver;
}

/// `cyb_kek_cache_options.ttl_ms` value that turns caching off (every resolve unwraps).
pub const CYB_KEK_CACHE_DISABLED: i64 = -1;

/// `cyb_kek_cache_options.revalidate_ms` value that turns envelope revalidation off, whatever
/// `CYB_KEK_REVALIDATE_SECS` says.
pub const CYB_KEK_REVALIDATE_OFF: i64 = -1;

/// `cyb_kek_cache_options.stale_if_error` value that turns stale-if-error on.
pub const CYB_KEK_STALE_IF_ERROR_ON: i32 = 1;

/// `cyb_kek_cache_options.stale_if_error` value that turns stale-if-error off, whatever
/// `CYB_KEK_STALE_IF_ERROR` says.
pub const CYB_KEK_STALE_IF_ERROR_OFF: i32 = -1;

/// Most KEKs a resolver caches when `cyb_kek_cache_options.max_entries` is 0.
pub const CYB_KEK_CACHE_DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Most threads one `cyb_kek_warm_up` call may use (its `parallelism`).
pub const CYB_MAX_WARM_UP_PARALLELISM: usize = 256;

const _: () = assert!(CYB_KEK_CACHE_DEFAULT_MAX_ENTRIES == DEFAULT_MAX_ENTRIES);
const _: () = assert!(CYB_MAX_WARM_UP_PARALLELISM == crate::resolver::MAX_WARM_UP_PARALLELISM);

/// Options of `cyb_kek_resolver_new`. Zero-initialize it (`= {0}`) for the defaults.
#[repr(C)]
pub struct cyb_kek_cache_options {
    /// TTL of a cached KEK in milliseconds. 0: `INDEX_KEK_CACHE_TTL_SECONDS` if set, else 60 s;
    /// `CYB_KEK_CACHE_DISABLED` (-1): no caching; other negative values are rejected.
    pub ttl_ms: i64,
    /// Most KEKs cached at once; 0: the default, `CYB_KEK_CACHE_DEFAULT_MAX_ENTRIES` (100000).
    pub max_entries: usize,
    /// Envelope revalidation interval in milliseconds: after it, the next resolve of a cached
    /// index asks the store whether its envelope changed (S3: a conditional GET), so other nodes'
    /// pushes, re-wraps and deletes are seen within it. 0: `CYB_KEK_REVALIDATE_SECS` if set, else
    /// off; `CYB_KEK_REVALIDATE_OFF` (-1): off; other negative values are rejected; at most
    /// 3600000 (an hour).
    pub revalidate_ms: i64,
    /// Stale-if-error: when a revalidation check fails with a transient storage error
    /// (`CYB_RESULT_STORAGE_UNAVAILABLE`, `CYB_RESULT_IO`), serve the cached KEK until its TTL,
    /// checking again once per interval (never on `CYB_RESULT_NOT_FOUND`, access denied or a
    /// changed envelope). 0: `CYB_KEK_STALE_IF_ERROR` (`1` / `0`) if set, else on;
    /// `CYB_KEK_STALE_IF_ERROR_ON` (1): on; `CYB_KEK_STALE_IF_ERROR_OFF` (-1): off; other values
    /// are rejected.
    pub stale_if_error: i32,
}

/// Counters of a resolver's cache (see `cyb_kek_resolver_stats`). All but `entries` only grow.
#[repr(C)]
pub struct cyb_kek_cache_stats {
    /// Resolves answered from the cache without touching storage or the provider.
    pub hits: u64,
    /// Resolves that were not plain hits (each waited for or led one fill).
    pub misses: u64,
    /// KMS provider calls (unwrap, wrap) made by the resolver.
    pub provider_calls: u64,
    /// Resolves that returned an error.
    pub errors: u64,
    /// Entries removed to stay within `max_entries`.
    pub evictions: u64,
    /// Entries removed because their TTL passed.
    pub expirations: u64,
    /// Entries removed by invalidation (explicit, or by a re-wrap).
    pub invalidations: u64,
    /// KEKs cached now.
    pub entries: u64,
    /// Revalidation checks that failed with a transient storage error and were answered with the
    /// cached KEK (stale-if-error).
    pub stale_served: u64,
}

impl From<CacheStats> for cyb_kek_cache_stats {
    fn from(s: CacheStats) -> Self {
        cyb_kek_cache_stats {
            hits: s.hits,
            misses: s.misses,
            provider_calls: s.provider_calls,
            errors: s.errors,
            evictions: s.evictions,
            expirations: s.expirations,
            invalidations: s.invalidations,
            entries: s.entries,
            stale_served: s.stale_served,
        }
    }
}

/// The verdict on one stored envelope in a drift report.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cyb_drift_status {
    /// The envelope's provider / key_id / region match its slot.
    CYB_DRIFT_IN_SYNC = 0,
    /// The slot names another key than the envelope's snapshot; not re-wrapped.
    CYB_DRIFT_DRIFTED = 1,
    /// It had drifted and was re-wrapped under the slot's current key.
    CYB_DRIFT_REWRAPPED = 2,
    /// Provider "none": the caller holds the KEK; nothing to compare.
    CYB_DRIFT_NOT_WRAPPED = 3,
    /// Unreadable envelope, unknown slot, or failed re-wrap (see `error_code`); nothing changed.
    CYB_DRIFT_FAILED = 4,
}

impl From<DriftStatus> for cyb_drift_status {
    fn from(status: DriftStatus) -> Self {
        match status {
            DriftStatus::InSync => cyb_drift_status::CYB_DRIFT_IN_SYNC,
            DriftStatus::Drifted => cyb_drift_status::CYB_DRIFT_DRIFTED,
            DriftStatus::Rewrapped => cyb_drift_status::CYB_DRIFT_REWRAPPED,
            DriftStatus::NotWrapped => cyb_drift_status::CYB_DRIFT_NOT_WRAPPED,
            DriftStatus::Failed => cyb_drift_status::CYB_DRIFT_FAILED,
        }
    }
}

/// The result of `cyb_kek_check_drift`: one entry per stored envelope, in index-name order.
/// Read-only; free with `cyb_drift_report_free`.
pub struct cyb_drift_report {
    _private: [u8; 0],
}

impl Castable for cyb_drift_report {
    type RustType = Vec<DriftEntry>;
}

/// One entry of a drift report. The strings are borrowed from the report (valid until it is
/// freed); a snapshot that is unknown is three empty strings.
#[repr(C)]
pub struct cyb_drift_entry {
    /// The index the envelope belongs to.
    pub index_name: cyb_str,
    /// The verdict on the envelope.
    pub status: cyb_drift_status,
    /// The envelope's slot name.
    pub kms_name: cyb_str,
    /// The provider of the key the stored envelope was wrapped with (before any re-wrap).
    pub stored_provider: cyb_str,
    /// The key id of that key.
    pub stored_key_id: cyb_str,
    /// The region of that key.
    pub stored_region: cyb_str,
    /// The provider of the key the registry slot names now.
    pub configured_provider: cyb_str,
    /// The key id of that key.
    pub configured_key_id: cyb_str,
    /// The region of that key.
    pub configured_region: cyb_str,
    /// `CYB_RESULT_OK`, or why the status is `CYB_DRIFT_FAILED`.
    pub error_code: cyb_result,
    /// The error's message; empty with `CYB_RESULT_OK`.
    pub error_message: cyb_str,
}

/// Reads a caller's `(index_name, len)` argument.
///
/// # Safety
/// As `str_arg`.
unsafe fn index_arg<'a>(index_name: *const c_char, len: usize) -> Result<&'a str, Failure> {
    unsafe { str_arg(index_name, len, "index_name") }
}

/// Makes a resolver over `client` (sharing its registry; the client handle may be freed
/// afterwards) with a cache configured by `options` (NULL: defaults).
///
/// On success writes a new handle to `*out_resolver` (caller owns; free with
/// `cyb_kek_resolver_free`). Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT`
/// (negative `ttl_ms` other than `CYB_KEK_CACHE_DISABLED`, negative `revalidate_ms` other than
/// `CYB_KEK_REVALIDATE_OFF`, `stale_if_error` not 0 / 1 / -1); `CYB_RESULT_INVALID_CONFIG`
/// (`INDEX_KEK_CACHE_TTL_SECONDS` or `CYB_KEK_REVALIDATE_SECS` not a whole number of seconds, a
/// revalidation interval above an hour, `CYB_KEK_STALE_IF_ERROR` not `1` or `0`). Starts no
/// thread.
///
/// # Safety
/// `client` is NULL or a live handle; `options` is NULL or valid; `out_resolver` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_resolver_new(
    client: *const cyb_kms_client,
    options: *const cyb_kek_cache_options,
    out_resolver: *mut *mut cyb_kek_resolver,
) -> cyb_result {
    ffi_call("cyb_kek_resolver_new", || {
        let client = try_ref!(client);
        let out = try_out!(out_resolver);
        let mut rust_options = KekCacheOptions::default();
        if let Some(options) = unsafe { options.as_ref() } {
            rust_options.ttl = match options.ttl_ms {
                0 => None,
                CYB_KEK_CACHE_DISABLED => Some(Duration::ZERO),
                ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
                ms => {
                    return Err(Failure::invalid_argument(format!(
                        "options.ttl_ms must be positive, 0 (default) or CYB_KEK_CACHE_DISABLED (-1), not {ms}"
                    )))
                }
            };
            rust_options.max_entries = match options.max_entries {
                0 => DEFAULT_MAX_ENTRIES,
                n => n,
            };
            rust_options.revalidate = match options.revalidate_ms {
                0 => None,
                CYB_KEK_REVALIDATE_OFF => Some(Duration::ZERO),
                ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
                ms => {
                    return Err(Failure::invalid_argument(format!(
                        "options.revalidate_ms must be positive, 0 (default) or CYB_KEK_REVALIDATE_OFF (-1), not {ms}"
                    )))
                }
            };
            rust_options.stale_if_error = match options.stale_if_error {
                0 => None,
                CYB_KEK_STALE_IF_ERROR_ON => Some(true),
                CYB_KEK_STALE_IF_ERROR_OFF => Some(false),
                other => {
                    return Err(Failure::invalid_argument(format!(
                        "options.stale_if_error must be 0 (default), CYB_KEK_STALE_IF_ERROR_ON (1) or CYB_KEK_STALE_IF_ERROR_OFF (-1), not {other}"
                    )))
                }
            };
        }
        *out = handle::into_raw(KekResolver::new(client.clone(), rust_options)?);
        Ok(())
    })
}

/// Frees a resolver; its cached KEKs are wiped. NULL is a no-op. Calls in flight on other
/// threads must have returned.
///
/// # Safety
/// `resolver` is NULL or a handle from `cyb_kek_resolver_new` that no thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_resolver_free(resolver: *mut cyb_kek_resolver) {
    ffi_value((), || unsafe { handle::free(resolver) })
}

/// Writes the KEK of the index named by `index_name` (envelope in `config`) into the caller's
/// 32-byte buffer `out_kek` — from the cache if it can (no storage or KMS access), else by reading
/// the envelope and unwrapping it (one provider call shared by concurrent callers). Only KEKs
/// unwrapped by a provider are cached. On error `out_kek` is untouched. Wipe it when done.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT` (name, UTF-8,
/// `out_kek_len` not 32); `CYB_RESULT_NOT_FOUND`, `CYB_RESULT_CORRUPT`, `CYB_RESULT_IO`,
/// `CYB_RESULT_STORAGE_*`; `CYB_RESULT_KEK_NOT_WRAPPED` (provider "none": the caller holds the
/// KEK); `CYB_RESULT_UNKNOWN_SLOT`, `CYB_RESULT_DECRYPT_FAILED`, `CYB_RESULT_KMS_*`,
/// `CYB_RESULT_WRAP_KEY_SIZE`. Errors are never cached.
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; `index_name` is NULL or points to
/// `index_name_len` readable bytes; `out_kek` is NULL or points to `out_kek_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_resolve(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    out_kek: *mut u8,
    out_kek_len: usize,
) -> cyb_result {
    ffi_call("cyb_kek_resolve", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let index_name = unsafe { index_arg(index_name, index_name_len) }?;
        let out: &mut [u8; 32] = kek_buffer(out_kek, out_kek_len)?
            .try_into()
            .expect("kek_buffer checked the length");
        Ok(resolver.resolve_into(config, index_name, out)?)
    })
}

/// Creates the envelope of a new index and writes its KEK to the caller's 32-byte `out_kek`:
///
/// - KMS-backed: `kms_name` = a registry slot, `index_key` NULL. A fresh random KEK is wrapped
///   through the slot and the envelope strictly inserted; if that fails nothing is stored.
/// - Caller-supplied: `kms_name` NULL, `index_key` = the caller's 32-byte key. An envelope with
///   provider "none" (no key material) is strictly inserted; `out_kek` receives the same key.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT` ("index_key and kms_name
/// are mutually exclusive" if both are non-NULL; also if both are NULL, for a bad name, an
/// `index_key_len` or `out_kek_len` not 32); `CYB_RESULT_ALREADY_EXISTS` (the stored envelope is
/// untouched); `CYB_RESULT_UNKNOWN_SLOT`; the provider's and store's errors.
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; each `(pointer, length)` is NULL or
/// readable; `out_kek` is NULL or points to `out_kek_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_create_index(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    kms_name: *const c_char,
    kms_name_len: usize,
    index_key: *const u8,
    index_key_len: usize,
    out_kek: *mut u8,
    out_kek_len: usize,
) -> cyb_result {
    ffi_call("cyb_kek_create_index", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let index_name = unsafe { index_arg(index_name, index_name_len) }?;
        let kms_name = match kms_name.is_null() {
            true => None,
            false => Some(unsafe { str_arg(kms_name, kms_name_len, "kms_name") }?),
        };
        let index_key = match index_key.is_null() {
            true => None,
            false => Some(unsafe { bytes_arg(index_key, index_key_len, "index_key") }?),
        };
        let kek_out = kek_buffer(out_kek, out_kek_len)?;
        let kek = resolver.create_index(config, index_name, kms_name, index_key)?;
        kek_out.copy_from_slice(kek.as_bytes());
        Ok(())
    })
}

/// Re-wraps the index's KEK under the registry slot `slot_name` (its own slot after a key
/// rotation, or another): same KEK, new snapshot, version + 1; the index's cached KEK is
/// invalidated. If `out_blob` is non-NULL, writes a handle to the new envelope there (caller
/// owns). On any error the stored envelope is unchanged.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`, `CYB_RESULT_NOT_FOUND`,
/// `CYB_RESULT_CORRUPT`, store errors, `CYB_RESULT_KEK_NOT_WRAPPED`, `CYB_RESULT_UNKNOWN_SLOT`,
/// provider errors, `CYB_RESULT_CONFLICT` (the envelope changed meanwhile; nothing written).
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; the names are NULL or readable for their
/// lengths; `out_blob` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_rewrap(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    slot_name: *const c_char,
    slot_name_len: usize,
    out_blob: *mut *mut cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_kek_rewrap", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let index_name = unsafe { index_arg(index_name, index_name_len) }?;
        let slot_name = unsafe { str_arg(slot_name, slot_name_len, "slot_name") }?;
        let blob = resolver.rewrap(config, index_name, slot_name)?;
        if let Some(out) = unsafe { out_blob.as_mut() } {
            *out = handle::into_raw(blob);
        }
        Ok(())
    })
}

/// Compares every envelope stored in `config` with the resolver's registry and, if `rewrap`,
/// re-wraps each drifted index under its slot's current key (failures are per index and change
/// nothing). Writes a report handle to `*out_report` (caller owns; free with
/// `cyb_drift_report_free`).
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; the store's errors while listing envelopes.
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; `out_report` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_check_drift(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    rewrap: bool,
    out_report: *mut *mut cyb_drift_report,
) -> cyb_result {
    ffi_call("cyb_kek_check_drift", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let out = try_out!(out_report);
        *out = handle::into_raw(resolver.check_drift(config, rewrap)?);
        Ok(())
    })
}

/// Number of entries in a drift report; 0 for NULL.
///
/// # Safety
/// `report` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cyb_drift_report_len(report: *const cyb_drift_report) -> usize {
    ffi_value(0, || unsafe { handle::as_ref(report) }.map_or(0, Vec::len))
}

/// Reads entry `i` of a drift report into `*out_entry` (strings borrowed from the report).
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT` (`i` out of range).
///
/// # Safety
/// `report` is NULL or a live handle; `out_entry` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_drift_report_entry(
    report: *const cyb_drift_report,
    i: usize,
    out_entry: *mut cyb_drift_entry,
) -> cyb_result {
    ffi_call("cyb_drift_report_entry", || {
        let report = try_ref!(report);
        let out = try_out!(out_entry);
        let entry = report.get(i).ok_or_else(|| {
            Failure::invalid_argument(format!(
                "drift report entry {i} is out of range (the report has {})",
                report.len()
            ))
        })?;
        let snapshot = |s: &Option<KeySnapshot>| match s {
            Some(s) => [
                cyb_str::borrow(&s.provider),
                cyb_str::borrow(&s.key_id),
                cyb_str::borrow(&s.region),
            ],
            None => [EMPTY_STR, EMPTY_STR, EMPTY_STR],
        };
        let [stored_provider, stored_key_id, stored_region] = snapshot(&entry.stored);
        let [configured_provider, configured_key_id, configured_region] =
            snapshot(&entry.configured);
        *out = cyb_drift_entry {
            index_name: cyb_str::borrow(&entry.index),
            status: entry.status.into(),
            kms_name: cyb_str::borrow(&entry.kms_name),
            stored_provider,
            stored_key_id,
            stored_region,
            configured_provider,
            configured_key_id,
            configured_region,
            error_code: entry
                .error
                .as_ref()
                .map_or(cyb_result::CYB_RESULT_OK, |e| e.kind().into()),
            error_message: entry
                .error
                .as_ref()
                .map_or(EMPTY_STR, |e| cyb_str::borrow(e.message())),
        };
        Ok(())
    })
}

/// Frees a drift report. NULL is a no-op.
///
/// # Safety
/// `report` is NULL or a handle from `cyb_kek_check_drift` not used any more.
#[no_mangle]
pub unsafe extern "C" fn cyb_drift_report_free(report: *mut cyb_drift_report) {
    ffi_value((), || unsafe { handle::free(report) })
}

/// Resolves the `count` indexes named by `index_names` into the cache with up to `parallelism`
/// threads, and writes each one's result code to `out_results[i]` (`CYB_RESULT_OK` or the error
/// `cyb_kek_resolve` would give). One failure does not stop the others; the call itself succeeds.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER` (a NULL array with `count` > 0);
/// `CYB_RESULT_INVALID_ARGUMENT` (`parallelism` 0 or above `CYB_MAX_WARM_UP_PARALLELISM` (256), a name that is not UTF-8).
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; `index_names` is NULL or points to `count`
/// `cyb_str`s whose bytes are readable; `out_results` is NULL or points to `count` writable codes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_warm_up(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_names: *const cyb_str,
    count: usize,
    parallelism: usize,
    out_results: *mut cyb_result,
) -> cyb_result {
    ffi_call("cyb_kek_warm_up", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        if count > 0 && index_names.is_null() {
            return Err(Failure::null_parameter("index_names"));
        }
        if count > 0 && out_results.is_null() {
            return Err(Failure::null_parameter("out_results"));
        }
        let specs = match count {
            0 => &[][..],
            // SAFETY: the caller guarantees `count` readable entries.
            _ => unsafe { std::slice::from_raw_parts(index_names, count) },
        };
        let names = specs
            .iter()
            .enumerate()
            .map(|(i, s)| unsafe { str_arg(s.data, s.len, format_args!("index_names[{i}]")) })
            .collect::<Result<Vec<&str>, Failure>>()?;
        let results = resolver.warm_up(config, &names, parallelism)?;
        if count > 0 {
            // SAFETY: the caller guarantees `count` writable entries.
            let out = unsafe { std::slice::from_raw_parts_mut(out_results, count) };
            for (slot, result) in out.iter_mut().zip(results) {
                *slot = result.map_or_else(|e| e.kind().into(), |()| cyb_result::CYB_RESULT_OK);
            }
        }
        Ok(())
    })
}

/// Drops the cached KEK of the index (if any); fills in progress will not cache theirs. Writes
/// whether an entry was dropped to `*out_removed` unless it is NULL.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT` (UTF-8).
///
/// # Safety
/// `resolver` and `config` are NULL or live handles; `index_name` is NULL or readable for
/// `index_name_len` bytes; `out_removed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_invalidate(
    resolver: *const cyb_kek_resolver,
    config: *const cyb_storage_config,
    index_name: *const c_char,
    index_name_len: usize,
    out_removed: *mut bool,
) -> cyb_result {
    ffi_call("cyb_kek_invalidate", || {
        let resolver = try_ref!(resolver);
        let config = try_ref!(config);
        let index_name = unsafe { index_arg(index_name, index_name_len) }?;
        let removed = resolver.invalidate(config, index_name);
        if let Some(out) = unsafe { out_removed.as_mut() } {
            *out = removed;
        }
        Ok(())
    })
}

/// Drops every cached KEK; writes how many to `*out_removed` unless it is NULL.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `resolver` is NULL or a live handle; `out_removed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_invalidate_all(
    resolver: *const cyb_kek_resolver,
    out_removed: *mut usize,
) -> cyb_result {
    ffi_call("cyb_kek_invalidate_all", || {
        let resolver = try_ref!(resolver);
        let removed = resolver.invalidate_all();
        if let Some(out) = unsafe { out_removed.as_mut() } {
            *out = removed;
        }
        Ok(())
    })
}

/// Writes the cache's counters and size to `*out_stats`.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `resolver` is NULL or a live handle; `out_stats` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kek_resolver_stats(
    resolver: *const cyb_kek_resolver,
    out_stats: *mut cyb_kek_cache_stats,
) -> cyb_result {
    ffi_call("cyb_kek_resolver_stats", || {
        let resolver = try_ref!(resolver);
        let out = try_out!(out_stats);
        *out = resolver.stats().into();
        Ok(())
    })
}
