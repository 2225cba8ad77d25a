//! `cyb_kms_client`: wraps and unwraps index KEKs through the registry's KMS slots.

use std::collections::BTreeMap;
use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;

use super::blob::{cyb_kms_blob, cyb_str};
use super::boundary::{ffi_call, ffi_value, Failure};
use super::handle::{self, bytes_arg, kek_buffer, str_arg, try_out, try_ref, Castable};
use super::result::cyb_result;
use super::timeouts::{cyb_aws_timeouts, retry_mode};
use crate::aws::AwsTimeouts;
use crate::error::quoted_prefix;
use crate::kms::{Kek, KeyIdentity, KmsClient, KmsClientOptions, Slot};

/// A KMS client (Rust: `KmsClient`): the registry of slots and AWS SDK clients reused across
/// calls; it owns no threads or descriptors (calls run on the library's one process-wide runtime).
/// Thread-safe: one handle may be used by any number of threads at once, including threads that
/// run their own tokio runtime. Free with `cyb_kms_client_free` after the last use.
///
/// fork(): in a child forked after the handle was made, wraps and unwraps through it return
/// `CYB_RESULT_FORKED_PROCESS` at once; freeing it there is safe. Make a new client in the child.
pub struct cyb_kms_client {
    _private: [u8; 0],
}

impl Castable for cyb_kms_client {
    type RustType = KmsClient;
}

/// Options of `cyb_kms_client_new`. Zero-initialize it (`= {0}`) for the defaults: every zero
/// field means "default". New fields are only ever appended, with zero meaning "default".
#[repr(C)]
pub struct cyb_kms_client_options {
    /// Time and retry bounds of every AWS call.
    pub timeouts: cyb_aws_timeouts,
    /// One endpoint URL for KMS, Secrets Manager and STS. Empty: the SDK's resolution, which
    /// honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`. A service's own endpoint
    /// below wins over it.
    pub endpoint_url: cyb_str,
    /// Enables the development-only `local` provider (master key from a file or an environment
    /// variable). `false` (the default): every `local` wrap and unwrap fails with
    /// `CYB_RESULT_UNTRUSTED_KEY`, whatever a stored envelope says.
    pub allow_local_provider: bool,
    /// Allows a plain `http://` endpoint on a host other than this machine (KEKs, wrap keys and
    /// credentials would cross the network in clear text). `false` (the default): such an
    /// endpoint, as option or `AWS_ENDPOINT_URL*`, is `CYB_RESULT_INVALID_CONFIG`. Loopback is
    /// always allowed.
    pub allow_insecure_http: bool,
    /// `CYB_RETRY_MODE_*` of every AWS call (0: `AWS_RETRY_MODE`, else the AWS profile's
    /// `retry_mode`, else standard). Another value is `CYB_RESULT_INVALID_ARGUMENT`.
    pub retry_mode: u32,
    /// The KMS endpoint (e.g. a KMS VPC interface endpoint), instead of `endpoint_url`. Empty:
    /// `endpoint_url`'s rule.
    pub kms_endpoint_url: cyb_str,
    /// The Secrets Manager endpoint, instead of `endpoint_url`. Empty: `endpoint_url`'s rule.
    pub secrets_manager_endpoint_url: cyb_str,
    /// The STS endpoint (assuming slots' roles), instead of `endpoint_url`. Empty:
    /// `endpoint_url`'s rule.
    pub sts_endpoint_url: cyb_str,
    /// The KMS endpoint of particular regions (e.g. a KMS VPC interface endpoint per region, for
    /// the replicas of a multi-Region key), before `kms_endpoint_url` and `endpoint_url` for keys
    /// in that region: `kms_region_endpoint_url_count` entries. NULL with a count of 0 (the
    /// zeroed default): none. NULL with a count above 0 is `CYB_RESULT_NULL_PARAMETER`, a region
    /// given twice `CYB_RESULT_INVALID_ARGUMENT`; each URL follows the rules of
    /// `kms_endpoint_url` (`CYB_RESULT_INVALID_CONFIG` naming
    /// `kms_region_endpoint_urls["<region>"]`). Read during the call only.
    pub kms_region_endpoint_urls: *const cyb_kms_region_endpoint,
    /// Number of entries in `kms_region_endpoint_urls`.
    pub kms_region_endpoint_url_count: usize,
}

/// One entry of `cyb_kms_client_options.kms_region_endpoint_urls`: the KMS endpoint URL of one
/// AWS region, both as `(data, len)` views.
#[repr(C)]
pub struct cyb_kms_region_endpoint {
    /// AWS region name, e.g. `"us-west-2"`.
    pub region: cyb_str,
    /// The KMS endpoint URL for keys in `region`.
    pub url: cyb_str,
}

/// The `count` region → URL entries at `entries`, as a map; the client checks the URLs.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER` (NULL with `count` above 0, a NULL view with a length),
/// `CYB_RESULT_INVALID_ARGUMENT` (invalid UTF-8, naming the entry; a region given twice).
///
/// # Safety
/// `entries` is NULL or points to `count` `cyb_kms_region_endpoint`s whose bytes are readable.
unsafe fn region_endpoint_map(
    entries: *const cyb_kms_region_endpoint,
    count: usize,
) -> Result<BTreeMap<String, String>, Failure> {
    const WHAT: &str = "options.kms_region_endpoint_urls";
    if count == 0 {
        return Ok(BTreeMap::new());
    }
    if entries.is_null() {
        return Err(Failure::null_parameter(WHAT));
    }
    // SAFETY: the caller guarantees `count` readable entries.
    let entries = unsafe { std::slice::from_raw_parts(entries, count) };
    let mut map = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let region = unsafe {
            str_arg(
                entry.region.data,
                entry.region.len,
                format_args!("{WHAT}[{i}].region"),
            )
        }?;
        let url = unsafe {
            str_arg(
                entry.url.data,
                entry.url.len,
                format_args!("{WHAT}[{i}].url"),
            )
        }?;
        if map.insert(region.to_owned(), url.to_owned()).is_some() {
            return Err(Failure::invalid_argument(format!(
                "{WHAT}[{i}].region {} is given twice",
                quoted_prefix(region)
            )));
        }
    }
    Ok(map)
}

/// One registry slot for `cyb_kms_client_add_slot`: text fields as `(data, len)` views.
#[repr(C)]
pub struct cyb_kms_slot {
    /// `"aws-kms"`, `"aws"`, or `"local"` (development only).
    pub provider: cyb_str,
    /// KMS key ARN / id / alias; Secrets Manager secret name or ARN; `file:<path>` or
    /// `env:<VARIABLE>` for `local`.
    pub key_id: cyb_str,
    /// AWS region (empty for `local`).
    pub region: cyb_str,
    /// Role to assume first (BYOK); empty for none.
    pub role_arn: cyb_str,
    /// The ExternalId the role requires; required with `role_arn`.
    pub external_id: cyb_str,
    /// Session name for AssumeRole; empty for the default `cyborgdb-kms`.
    pub role_session_name: cyb_str,
    /// Regions holding replicas of the slot's multi-Region KMS key (YAML `replica_regions`), in
    /// failover order: `replica_region_count` views. NULL with a count of 0 (the zeroed
    /// default): none. Only for an `aws-kms` slot whose key_id is a multi-Region key
    /// (docs/providers.md, "Multi-Region keys").
    pub replica_regions: *const cyb_str,
    /// Number of entries in `replica_regions`.
    pub replica_region_count: usize,
}

/// The `count` regions at `regions` (`what` names the field in errors).
///
/// # Safety
/// `regions` is NULL or points to `count` `cyb_str`s whose bytes are readable.
unsafe fn region_list(
    regions: *const cyb_str,
    count: usize,
    what: &str,
) -> Result<Vec<String>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if regions.is_null() {
        return Err(Failure::null_parameter(what));
    }
    // SAFETY: the caller guarantees `count` readable entries.
    let views = unsafe { std::slice::from_raw_parts(regions, count) };
    views
        .iter()
        .enumerate()
        .map(|(i, s)| {
            unsafe { str_arg(s.data, s.len, format_args!("{what}[{i}]")) }.map(str::to_owned)
        })
        .collect()
}

/// Reads a `cyb_str` argument as UTF-8.
///
/// # Safety
/// `s.data` is NULL or points to `s.len` readable bytes.
unsafe fn view<'a>(s: &cyb_str, parameter: &str) -> Result<&'a str, Failure> {
    unsafe { str_arg(s.data, s.len, parameter) }
}

/// Makes a KMS client with an empty registry. `options` may be NULL for the defaults. Does no
/// network I/O (SDK clients are built on first use).
///
/// On success writes a new handle to `*out_client` (caller owns; free with
/// `cyb_kms_client_free`). Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT`
/// (invalid UTF-8, an unknown `retry_mode`, a region given twice in `kms_region_endpoint_urls`),
/// `CYB_RESULT_INVALID_CONFIG` (an endpoint URL that is not http(s), plain http off this machine,
/// `max_attempts` above 10, an unusable `AWS_ENDPOINT_URL*`). Starts no thread.
///
/// # Safety
/// `options` is NULL or points to a valid `cyb_kms_client_options` whose strings are valid and
/// whose `kms_region_endpoint_urls` is NULL or points to `kms_region_endpoint_url_count` entries;
/// `out_client` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_new(
    options: *const cyb_kms_client_options,
    out_client: *mut *mut cyb_kms_client,
) -> cyb_result {
    ffi_call("cyb_kms_client_new", || {
        let out = try_out!(out_client);
        let mut rust_options = KmsClientOptions::default();
        if let Some(options) = unsafe { options.as_ref() } {
            rust_options.timeouts = AwsTimeouts::from(&options.timeouts);
            rust_options.timeouts.retry_mode =
                retry_mode(options.retry_mode, "options.retry_mode")?;
            let endpoint = |value: &cyb_str, name: &str| -> Result<Option<String>, Failure> {
                let url = unsafe { view(value, name) }?;
                Ok((!url.is_empty()).then(|| url.to_owned()))
            };
            rust_options.endpoint_url = endpoint(&options.endpoint_url, "options.endpoint_url")?;
            rust_options.kms_endpoint_url =
                endpoint(&options.kms_endpoint_url, "options.kms_endpoint_url")?;
            rust_options.secrets_manager_endpoint_url = endpoint(
                &options.secrets_manager_endpoint_url,
                "options.secrets_manager_endpoint_url",
            )?;
            rust_options.sts_endpoint_url =
                endpoint(&options.sts_endpoint_url, "options.sts_endpoint_url")?;
            rust_options.kms_region_endpoint_urls = unsafe {
                region_endpoint_map(
                    options.kms_region_endpoint_urls,
                    options.kms_region_endpoint_url_count,
                )
            }?;
            rust_options.allow_local_provider = options.allow_local_provider;
            rust_options.allow_insecure_http = options.allow_insecure_http;
        }
        *out = handle::into_raw(KmsClient::new(rust_options)?);
        Ok(())
    })
}

/// Frees a KMS client. NULL is a no-op. Calls in flight on other threads must have returned.
///
/// # Safety
/// `client` is NULL or a handle from `cyb_kms_client_new` that no thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_free(client: *mut cyb_kms_client) {
    ffi_value((), || unsafe { handle::free(client) })
}

/// Counters of a KMS client since it was created (see `cyb_kms_client_stats`). Both only grow.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct cyb_kms_failover_stats {
    /// Times an unwrap moved on from an unavailable region of a multi-Region key to the next
    /// one (a slot's `replica_regions`); an unwrap that tries three regions counts 2.
    pub region_failovers: u64,
    /// Unwraps answered by a region other than the one the envelope records, after a failover.
    pub replica_unwraps: u64,
}

/// Writes the client's counters to `*out_stats`.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `client` is NULL or a live handle; `out_stats` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_stats(
    client: *const cyb_kms_client,
    out_stats: *mut cyb_kms_failover_stats,
) -> cyb_result {
    ffi_call("cyb_kms_client_stats", || {
        let client = try_ref!(client);
        let out = try_out!(out_stats);
        let stats = client.stats();
        *out = cyb_kms_failover_stats {
            region_failovers: stats.region_failovers,
            replica_unwraps: stats.replica_unwraps,
        };
        Ok(())
    })
}

/// Replaces the client's registry with the `kms.registry` section of the YAML text `yaml`
/// (`yaml_len` bytes). `${VAR}` and `${VAR:-default}` are substituted from the environment. On
/// success writes the number of slots to `*out_slots` unless it is NULL; on error the registry
/// in use is unchanged.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT` (invalid UTF-8),
/// `CYB_RESULT_INVALID_CONFIG` (the message names the slot and field, the YAML position, or the
/// missing variable).
///
/// # Safety
/// `client` is NULL or a live handle; `yaml` is NULL or points to `yaml_len` readable bytes;
/// `out_slots` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_load_registry_yaml(
    client: *const cyb_kms_client,
    yaml: *const c_char,
    yaml_len: usize,
    out_slots: *mut usize,
) -> cyb_result {
    ffi_call("cyb_kms_client_load_registry_yaml", || {
        let client = try_ref!(client);
        let yaml = unsafe { str_arg(yaml, yaml_len, "yaml") }?;
        let slots = client.load_registry_yaml(yaml)?;
        if let Some(out) = unsafe { out_slots.as_mut() } {
            *out = slots;
        }
        Ok(())
    })
}

/// As `cyb_kms_client_load_registry_yaml`, reading the YAML from the file at `path`
/// (`path_len` bytes, not NUL-terminated). An unreadable file is `CYB_RESULT_INVALID_CONFIG`.
///
/// # Safety
/// `client` is NULL or a live handle; `path` is NULL or points to `path_len` readable bytes;
/// `out_slots` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_load_registry_file(
    client: *const cyb_kms_client,
    path: *const c_char,
    path_len: usize,
    out_slots: *mut usize,
) -> cyb_result {
    ffi_call("cyb_kms_client_load_registry_file", || {
        let client = try_ref!(client);
        let path = unsafe { bytes_arg(path.cast(), path_len, "path") }?;
        if path.is_empty() || path.contains(&0) {
            return Err(Failure::invalid_argument(
                "path must be non-empty and contain no NUL".to_owned(),
            ));
        }
        let slots = client.load_registry_file(OsStr::from_bytes(path))?;
        if let Some(out) = unsafe { out_slots.as_mut() } {
            *out = slots;
        }
        Ok(())
    })
}

/// Adds `slot` to the registry as `name` (`name_len` bytes of UTF-8), replacing a slot of that
/// name. Calls in flight use the registry they started with.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER` (also `replica_regions` NULL with a count above 0),
/// `CYB_RESULT_INVALID_ARGUMENT` (invalid UTF-8), `CYB_RESULT_INVALID_CONFIG` (naming the slot
/// and field: unknown provider, missing key_id or region, external_id missing with role_arn,
/// `replica_regions[i]` not a region, repeated, the slot's own region, more than 8, on a key that
/// is not multi-Region, ...).
///
/// # Safety
/// `client` and `slot` are NULL or valid; `name` is NULL or points to `name_len` readable bytes;
/// the strings of `slot` are valid; `slot.replica_regions` is NULL or points to
/// `slot.replica_region_count` valid strings.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_add_slot(
    client: *const cyb_kms_client,
    name: *const c_char,
    name_len: usize,
    slot: *const cyb_kms_slot,
) -> cyb_result {
    ffi_call("cyb_kms_client_add_slot", || {
        let client = try_ref!(client);
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let spec = unsafe { slot.as_ref() }.ok_or_else(|| Failure::null_parameter("slot"))?;
        let replica_regions = unsafe {
            region_list(
                spec.replica_regions,
                spec.replica_region_count,
                "slot.replica_regions",
            )
        }?;
        let slot = unsafe {
            Slot::from_fields(
                name,
                view(&spec.provider, "slot.provider")?,
                view(&spec.key_id, "slot.key_id")?,
                view(&spec.region, "slot.region")?,
                view(&spec.role_arn, "slot.role_arn")?,
                view(&spec.external_id, "slot.external_id")?,
                view(&spec.role_session_name, "slot.role_session_name")?,
            )
        }?;
        // `add_slot` checks the replica regions with the rest of the slot.
        Ok(client.add_slot(
            name,
            Slot {
                replica_regions,
                ..slot
            },
        )?)
    })
}

/// Makes the slot named `slot_name` trust one more key for unwrapping — the key it wrapped with
/// before a rotation — as the YAML slot line `previous_keys: [{provider: ..., key_id: ...,
/// region: ...}]` does. `key` uses the `provider`, `key_id` and `region` fields of
/// `cyb_kms_slot`; its role fields must be empty (the slot's role is used), and so must its
/// replica regions (a previous key never fails over). Trusting a key already trusted is a no-op.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`, `CYB_RESULT_INVALID_ARGUMENT` (invalid UTF-8, role fields
/// or replica regions set), `CYB_RESULT_UNKNOWN_SLOT`, `CYB_RESULT_INVALID_CONFIG` (naming the
/// slot and field).
///
/// # Safety
/// `client` and `key` are NULL or valid; `slot_name` is NULL or points to `slot_name_len`
/// readable bytes; the strings of `key` are valid.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_client_add_previous_key(
    client: *const cyb_kms_client,
    slot_name: *const c_char,
    slot_name_len: usize,
    key: *const cyb_kms_slot,
) -> cyb_result {
    ffi_call("cyb_kms_client_add_previous_key", || {
        let client = try_ref!(client);
        let slot_name = unsafe { str_arg(slot_name, slot_name_len, "slot_name") }?;
        let spec = unsafe { key.as_ref() }.ok_or_else(|| Failure::null_parameter("key"))?;
        let (role_arn, external_id, session) = unsafe {
            (
                view(&spec.role_arn, "key.role_arn")?,
                view(&spec.external_id, "key.external_id")?,
                view(&spec.role_session_name, "key.role_session_name")?,
            )
        };
        if !(role_arn.is_empty() && external_id.is_empty() && session.is_empty()) {
            return Err(Failure::invalid_argument(
                "key: role_arn, external_id and role_session_name must be empty (a previous key is reached with its slot's role)".to_owned(),
            ));
        }
        if spec.replica_region_count != 0 {
            return Err(Failure::invalid_argument(
                "key: replica_region_count must be 0 (a previous key never fails over)".to_owned(),
            ));
        }
        let key = unsafe {
            KeyIdentity::from_fields(
                slot_name,
                view(&spec.provider, "key.provider")?,
                view(&spec.key_id, "key.key_id")?,
                view(&spec.region, "key.region")?,
            )
        }?;
        Ok(client.add_previous_key(slot_name, key)?)
    })
}

/// Generates a fresh random KEK for the index named by `index_name` and wraps it through the slot
/// named by `slot_name`. Nothing is stored: store the envelope with `cyb_index_kms_create`.
///
/// On success writes a new envelope handle to `*out_blob` (caller owns; free with
/// `cyb_kms_blob_free`) — kms_name = the slot, its provider / key_id / region, the wrapped KEK,
/// version 1, created_at now — and the KEK to the caller's 32-byte buffer `out_kek`. On error
/// neither output is touched. Wipe the KEK buffer when done with it.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT` (index name, UTF-8,
/// `out_kek_len` not 32); `CYB_RESULT_UNKNOWN_SLOT`; the provider's errors
/// (`CYB_RESULT_KMS_*`, `CYB_RESULT_WRAP_KEY_SIZE`, `CYB_RESULT_INVALID_CONFIG`).
///
/// # Safety
/// `client` is NULL or a live handle; the names are NULL or point to their lengths of readable
/// bytes; `out_blob` is NULL or writable; `out_kek` is NULL or points to `out_kek_len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_wrap_new_kek(
    client: *const cyb_kms_client,
    index_name: *const c_char,
    index_name_len: usize,
    slot_name: *const c_char,
    slot_name_len: usize,
    out_blob: *mut *mut cyb_kms_blob,
    out_kek: *mut u8,
    out_kek_len: usize,
) -> cyb_result {
    ffi_call("cyb_kms_wrap_new_kek", || {
        let client = try_ref!(client);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let slot_name = unsafe { str_arg(slot_name, slot_name_len, "slot_name") }?;
        let out = try_out!(out_blob);
        let kek_out = kek_buffer(out_kek, out_kek_len)?;
        let (blob, kek) = client.wrap_new_kek(index_name, slot_name)?;
        kek_out.copy_from_slice(kek.as_bytes());
        *out = handle::into_raw(blob);
        Ok(())
    })
}

/// Wraps the caller's KEK (`kek`, exactly 32 bytes) for the index through the slot named by
/// `slot_name` — re-wrapping an index's existing KEK, e.g. after a key rotation. On success
/// writes a new envelope handle to `*out_blob` (caller owns), as `cyb_kms_wrap_new_kek`.
///
/// Errors: as `cyb_kms_wrap_new_kek`; `CYB_RESULT_INVALID_ARGUMENT` if `kek_len` is not 32.
///
/// # Safety
/// As `cyb_kms_wrap_new_kek`; `kek` is NULL or points to `kek_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_wrap_kek(
    client: *const cyb_kms_client,
    index_name: *const c_char,
    index_name_len: usize,
    slot_name: *const c_char,
    slot_name_len: usize,
    kek: *const u8,
    kek_len: usize,
    out_blob: *mut *mut cyb_kms_blob,
) -> cyb_result {
    ffi_call("cyb_kms_wrap_kek", || {
        let client = try_ref!(client);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let slot_name = unsafe { str_arg(slot_name, slot_name_len, "slot_name") }?;
        if kek.is_null() {
            return Err(Failure::null_parameter("kek"));
        }
        let kek = Kek::from_slice(unsafe { bytes_arg(kek, kek_len, "kek") }?)?;
        let out = try_out!(out_blob);
        let blob = client.wrap_kek(index_name, slot_name, &kek)?;
        *out = handle::into_raw(blob);
        Ok(())
    })
}

/// Unwraps the KEK of the index named by `index_name` from its envelope `blob` into the caller's
/// 32-byte buffer `out_kek`. Credentials and role come from the slot named by the envelope's
/// kms_name; the key from the envelope's own provider / key_id / region. On error `out_kek` is
/// untouched. Wipe the buffer when done with it.
///
/// Errors: `CYB_RESULT_NULL_PARAMETER`; `CYB_RESULT_INVALID_ARGUMENT` (index name, UTF-8,
/// envelope fields, `out_kek_len` not 32); `CYB_RESULT_KEK_NOT_WRAPPED` (provider "none");
/// `CYB_RESULT_UNKNOWN_SLOT`; `CYB_RESULT_DECRYPT_FAILED` (wrong key or index, damaged);
/// `CYB_RESULT_KMS_*`, `CYB_RESULT_WRAP_KEY_SIZE`, `CYB_RESULT_INVALID_CONFIG`.
///
/// # Safety
/// `client` and `blob` are NULL or live handles; `index_name` is NULL or points to
/// `index_name_len` readable bytes; `out_kek` is NULL or points to `out_kek_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cyb_kms_unwrap_kek(
    client: *const cyb_kms_client,
    index_name: *const c_char,
    index_name_len: usize,
    blob: *const cyb_kms_blob,
    out_kek: *mut u8,
    out_kek_len: usize,
) -> cyb_result {
    ffi_call("cyb_kms_unwrap_kek", || {
        let client = try_ref!(client);
        let index_name = unsafe { str_arg(index_name, index_name_len, "index_name") }?;
        let blob = try_ref!(blob);
        let kek_out = kek_buffer(out_kek, out_kek_len)?;
        let kek = client.unwrap_kek(index_name, blob)?;
        kek_out.copy_from_slice(kek.as_bytes());
        Ok(())
    })
}
