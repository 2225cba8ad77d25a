//! The C ABI (`cyb_*`, called as C would): sequences of calls with fuzzer-chosen `(pointer,
//! length)` arguments — NULL with and without a length, a dangling pointer with length 0, invalid
//! UTF-8, embedded NUL, over-long fields — NULL handles and out-parameters, and option structs
//! (timeouts, endpoint URLs, credentials, cache options).
//!
//! Only calls that need no network run: blob setters and getters; create / push / get / delete,
//! caller-key index creation, resolve of absent or provider-"none" envelopes, drift checks without
//! re-wrap, new-KEK rotation attempts on absent or provider-"none" envelopes, and invalidation, all on in-memory stores; and the constructors of disk and S3 stores,
//! KMS clients and resolvers (made and freed: constructors do no I/O), registry YAML loading and
//! slot adds, and installing / removing a log callback that checks every record it receives.
//! Every string argument is its own exact-size heap allocation, so an over-read is an
//! AddressSanitizer report.
//!
//! Invariants: no call panics (`CYB_RESULT_PANIC`) or returns a code outside the documented set;
//! argument errors are `NULL_PARAMETER` / `INVALID_ARGUMENT` as documented; a failed call leaves
//! a non-empty, bounded, valid UTF-8 `cyb_last_error_message`; the in-memory store behaves as a
//! map (a model is kept alongside: create is a strict insert, get returns exactly what was
//! stored); getters return exactly what the setters set.
#![no_main]

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use cyborgdb_kms::ffi::*;
use cyborgdb_kms::{IndexName, KmsBlob};
use libfuzzer_sys::fuzz_target;

use cyb_result::*;

/// Longest `cyb_last_error_message` accepted.
const MAX_MESSAGE_LEN: usize = 4096;
/// Most calls made for one input.
const MAX_OPS: usize = 48;
/// Most constructors that start threads (KMS client, resolver, S3 store) per input: each costs
/// about a millisecond, which would otherwise dominate the run.
const MAX_THREADED_CONSTRUCTORS: usize = 1;

/// A `(pointer, length)` argument.
#[derive(Arbitrary, Debug, Clone)]
enum Text {
    /// NULL, length 0: the empty string.
    Null,
    /// NULL with a length (treated as 1 if 0): must be `NULL_PARAMETER`.
    NullWithLength(u16),
    /// A non-NULL pointer to nothing, length 0: the empty string.
    Dangling,
    /// Any bytes (invalid UTF-8, NUL...).
    Bytes(Vec<u8>),
    /// Valid UTF-8.
    Str(String),
    /// Valid UTF-8, repeated to exceed field limits.
    Repeated(String, u16),
}

/// What the library must make of a [`Text`].
enum Arg {
    Ok(Vec<u8>),
    Null,
}

impl Text {
    fn bytes(&self) -> Arg {
        match self {
            Text::Null | Text::Dangling => Arg::Ok(Vec::new()),
            Text::NullWithLength(_) => Arg::Null,
            Text::Bytes(b) => Arg::Ok(b.clone()),
            Text::Str(s) => Arg::Ok(s.as_bytes().to_vec()),
            Text::Repeated(s, n) => Arg::Ok(s.repeat(usize::from(*n) % 4096).into_bytes()),
        }
    }

    /// As UTF-8 text: `Err(code)` is the argument error the library must report.
    fn text(&self) -> Result<String, cyb_result> {
        match self.bytes() {
            Arg::Null => Err(CYB_RESULT_NULL_PARAMETER),
            Arg::Ok(b) => String::from_utf8(b).map_err(|_| CYB_RESULT_INVALID_ARGUMENT),
        }
    }

    /// Calls `f` with this argument as `(pointer, length)`; the bytes live in their own
    /// allocation of exactly their size for the duration of the call.
    fn with<R>(&self, f: impl FnOnce(*const c_char, usize) -> R) -> R {
        match self {
            Text::Null => f(ptr::null(), 0),
            Text::NullWithLength(n) => f(ptr::null(), usize::from(*n).max(1)),
            Text::Dangling => f(NonNull::<c_char>::dangling().as_ptr(), 0),
            _ => {
                let Arg::Ok(bytes) = self.bytes() else {
                    unreachable!()
                };
                let exact: Box<[u8]> = bytes.into_boxed_slice();
                f(exact.as_ptr().cast(), exact.len())
            }
        }
    }

    /// As a `cyb_str` field of an options struct, for the duration of `f`.
    fn with_str<R>(&self, f: impl FnOnce(cyb_str) -> R) -> R {
        self.with(|data, len| f(cyb_str { data, len }))
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Timeouts {
    connect_timeout_ms: u32,
    attempt_timeout_ms: u32,
    operation_timeout_ms: u32,
    max_attempts: u32,
    initial_backoff_ms: u32,
}

impl From<Timeouts> for cyb_aws_timeouts {
    fn from(t: Timeouts) -> Self {
        cyb_aws_timeouts {
            connect_timeout_ms: t.connect_timeout_ms,
            attempt_timeout_ms: t.attempt_timeout_ms,
            operation_timeout_ms: t.operation_timeout_ms,
            max_attempts: t.max_attempts,
            initial_backoff_ms: t.initial_backoff_ms,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    SetString {
        field: u8,
        value: Text,
        null_blob: bool,
    },
    SetWrappedKek {
        value: Text,
        null_blob: bool,
    },
    SetVersion(u32),
    SetCreatedAt(i64),
    NewBlob,
    Create {
        store: bool,
        name: Text,
        null_config: bool,
        null_blob: bool,
    },
    Push {
        store: bool,
        name: Text,
        null_config: bool,
        null_blob: bool,
    },
    Get {
        store: bool,
        name: Text,
        null_out: bool,
    },
    Delete {
        store: bool,
        name: Text,
    },
    CreateWithCallerKey {
        store: bool,
        name: Text,
        key: Text,
        kms_name: Option<Text>,
        out_len: u8,
    },
    Resolve {
        store: bool,
        name: Text,
        out_len: u8,
    },
    CheckDrift {
        store: bool,
    },
    /// `cyb_kek_begin_rotation` or (with `rotate`) `cyb_kek_rotate_kek`, then
    /// `cyb_kek_pending_rotation`.
    Rotate {
        store: bool,
        name: Text,
        slot: Text,
        rotate: bool,
        null_callback: bool,
    },
    Invalidate {
        store: bool,
        name: Text,
    },
    InvalidateAll,
    /// An audited handle of a memory store (`cyb_storage_config_with_audit`), a change through
    /// it, and `cyb_verify_audit` of the store; also `cyb_kek_resolver_set_audit`.
    Audit {
        store: bool,
        principal: Text,
        host: Text,
        null_options: bool,
        null_report: bool,
    },
    NewDiskStore {
        path: Text,
    },
    NewS3Store {
        bucket: Text,
        null_options: bool,
        prefix: Text,
        region: Text,
        endpoint: Text,
        credentials: Option<(Text, Text, Text)>,
        timeouts: Timeouts,
        retry_mode: u32,
        server_side_encryption: u32,
        sse_kms_key_id: Text,
        expected_bucket_owner: Text,
        default_credentials_with_endpoint: bool,
    },
    NewClient {
        null_options: bool,
        endpoint: Text,
        timeouts: Timeouts,
        allow_local_provider: bool,
        allow_insecure_http: bool,
        retry_mode: u32,
        kms_endpoint: Text,
        secrets_manager_endpoint: Text,
        sts_endpoint: Text,
        /// `options.kms_region_endpoint_urls` as (region, URL) UTF-8 pairs (a NULL array when
        /// `null_region_endpoints`).
        region_endpoints: Vec<(String, String)>,
        null_region_endpoints: bool,
    },
    NewResolver {
        null_options: bool,
        ttl_ms: i64,
        max_entries: usize,
        revalidate_ms: i64,
        stale_if_error: i32,
    },
    LoadRegistryYaml {
        yaml: Text,
    },
    AddSlot {
        name: Text,
        fields: [Text; 6],
        null_slot: bool,
        /// `slot.replica_regions`, as UTF-8 text (a NULL array when `null_replicas`).
        replica_regions: Vec<String>,
        null_replicas: bool,
    },
    SetLogCallback {
        level: u32,
        null_callback: bool,
    },
    /// `cyb_kek_check_drift_new_kek`: with the fuzzer's empty registry nothing has drifted, so
    /// the callback is never called; the report is as `cyb_kek_check_drift`'s.
    CheckDriftNewKek {
        store: bool,
        null_callback: bool,
    },
}

/// Threshold of the log callback the fuzzer installed (0: none).
static LOG_THRESHOLD: AtomicU32 = AtomicU32::new(0);

/// The fuzzer's log callback: every record is well formed (a level from 1 to the installed
/// threshold; target and message valid UTF-8 of the given length, NUL-terminated, bounded). A
/// failed check panics, which aborts the process (the callback is `extern "C"`).
unsafe extern "C" fn check_log_record(userdata: *mut c_void, record: *const cyb_log_record) {
    assert_eq!(userdata as usize, 0x10, "userdata is passed back unchanged");
    let record = unsafe { &*record };
    let level = record.level as u32;
    assert!((1..=LOG_THRESHOLD.load(Ordering::SeqCst)).contains(&level));
    for (ptr, len, max) in [
        (record.target, record.target_len, 4 * 128 + 3),
        (record.message, record.message_len, 4 * 1024 + 3),
    ] {
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        assert_eq!(bytes.len(), len, "NUL-terminated at the given length");
        assert!(len <= max);
        assert!(std::str::from_utf8(bytes).is_ok());
    }
}

/// The engine callback of `cyb_kek_check_drift_new_kek`: never reached (the fuzzer's registry
/// is empty, so no envelope can have drifted).
unsafe extern "C" fn never_called_for_drift(
    _: *mut c_void,
    _: *const c_char,
    _: usize,
    _: *const u8,
    _: *const u8,
) -> bool {
    panic!("cyb_kek_check_drift_new_kek called its callback with an empty registry");
}

/// The engine callback of `cyb_kek_rotate_kek`: never reached (no rotation the fuzzer starts can
/// get past begin without a provider call); reaching it aborts the run.
unsafe extern "C" fn never_called(_: *mut c_void, _: *const u8, _: *const u8) -> bool {
    panic!("cyb_kek_rotate_kek called its callback without a slot that can wrap");
}

/// One KMS client and resolver for the whole run (each starts threads); emptied per input.
struct Shared {
    client: *mut cyb_kms_client,
    resolver: *mut cyb_kek_resolver,
}
// SAFETY: both handles are documented thread-safe; libFuzzer calls the target from one thread.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| unsafe {
        let mut client = ptr::null_mut();
        assert_eq!(cyb_kms_client_new(ptr::null(), &mut client), CYB_RESULT_OK);
        let mut resolver = ptr::null_mut();
        assert_eq!(
            cyb_kek_resolver_new(client, ptr::null(), &mut resolver),
            CYB_RESULT_OK
        );
        Shared { client, resolver }
    })
}

/// An envelope kept by the model: the blob, and whether `created_at` was stamped by the store.
type Model = BTreeMap<String, KmsBlob>;

struct Session {
    stores: [*mut cyb_storage_config; 2],
    models: [Model; 2],
    blob: *mut cyb_kms_blob,
    shadow: KmsBlob,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let shared = shared();
    unsafe {
        // The same starting state for every input: no log callback, an empty registry and cache.
        assert_eq!(
            cyb_set_log_callback(0, None, ptr::null_mut()),
            CYB_RESULT_OK
        );
        LOG_THRESHOLD.store(0, Ordering::SeqCst);
        empty_registry(shared);
        assert_eq!(
            cyb_kek_invalidate_all(shared.resolver, ptr::null_mut()),
            CYB_RESULT_OK
        );

        let mut session = Session {
            stores: [ptr::null_mut(); 2],
            models: [Model::new(), Model::new()],
            blob: ptr::null_mut(),
            shadow: KmsBlob::default(),
        };
        for store in &mut session.stores {
            assert_eq!(cyb_storage_config_new_memory(store), CYB_RESULT_OK);
        }
        assert_eq!(cyb_kms_blob_new(&mut session.blob), CYB_RESULT_OK);
        let mut threaded = 0;
        for _ in 0..MAX_OPS {
            let Ok(op) = Op::arbitrary(&mut input) else {
                break;
            };
            if matches!(
                op,
                Op::NewClient { .. } | Op::NewResolver { .. } | Op::NewS3Store { .. }
            ) {
                threaded += 1;
                if threaded > MAX_THREADED_CONSTRUCTORS {
                    continue;
                }
            }
            session.run(shared, &op);
            session.check_blob();
        }
        cyb_kms_blob_free(session.blob);
        for store in session.stores {
            cyb_storage_config_free(store);
        }
    }
});

/// Empties the shared client's registry (the drift model expects no slots).
fn empty_registry(shared: &Shared) {
    // Two spellings of an empty `kms.registry`, in case the parser accepts only one.
    let ok = [&b"kms:\n  registry: {}\n"[..], b"kms:\n  registry:\n"]
        .iter()
        .any(|yaml| {
            let mut slots = usize::MAX;
            let got = unsafe {
                cyb_kms_client_load_registry_yaml(
                    shared.client,
                    yaml.as_ptr().cast(),
                    yaml.len(),
                    &mut slots,
                )
            };
            got == CYB_RESULT_OK && slots == 0
        });
    assert!(ok, "cannot load an empty registry: {}", last_error());
}

/// Checks a call's result against what is allowed, and the error message it leaves.
fn check(function: &str, got: cyb_result, allowed: &[cyb_result]) {
    assert_ne!(
        got,
        CYB_RESULT_PANIC,
        "{function} panicked: {}",
        last_error()
    );
    assert!(
        allowed.contains(&got),
        "{function} returned {got:?}, expected one of {allowed:?}: {}",
        last_error()
    );
    if got != CYB_RESULT_OK {
        let message = last_error();
        assert!(!message.is_empty(), "{function} {got:?} left no message");
        assert!(
            message.len() <= MAX_MESSAGE_LEN,
            "{function}: {} byte message",
            message.len()
        );
    }
}

fn last_error() -> String {
    let message = unsafe { CStr::from_ptr(cyb_last_error_message()) };
    message
        .to_str()
        .expect("cyb_last_error_message is UTF-8")
        .to_owned()
}

/// The argument error `texts` must produce, if any: every applicable one is allowed.
fn argument_errors(texts: &[&Text]) -> Vec<cyb_result> {
    texts.iter().filter_map(|t| t.text().err()).collect()
}

fn borrowed(s: cyb_str) -> Vec<u8> {
    if s.len == 0 {
        return Vec::new();
    }
    unsafe { std::slice::from_raw_parts(s.data.cast::<u8>(), s.len) }.to_vec()
}

/// The fields of a blob handle, read through the getters.
unsafe fn read_blob(blob: *const cyb_kms_blob) -> KmsBlob {
    unsafe {
        let text = |s: cyb_str| String::from_utf8(borrowed(s)).expect("getter returns UTF-8");
        let kek = cyb_kms_blob_wrapped_kek(blob);
        KmsBlob {
            kms_name: text(cyb_kms_blob_kms_name(blob)),
            provider: text(cyb_kms_blob_provider(blob)),
            key_id: text(cyb_kms_blob_key_id(blob)),
            region: text(cyb_kms_blob_region(blob)),
            wrapped_kek: if kek.len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(kek.data, kek.len).to_vec()
            },
            version: cyb_kms_blob_version(blob),
            created_at: cyb_kms_blob_created_at(blob),
        }
    }
}

impl Session {
    unsafe fn check_blob(&self) {
        assert_eq!(
            unsafe { read_blob(self.blob) },
            self.shadow,
            "getters disagree with setters"
        );
    }

    fn store(&self, which: bool) -> (*mut cyb_storage_config, usize) {
        let i = usize::from(which);
        (self.stores[i], i)
    }

    unsafe fn run(&mut self, shared: &Shared, op: &Op) {
        unsafe { self.run_op(shared, op) }
    }

    #[allow(clippy::too_many_lines)]
    unsafe fn run_op(&mut self, shared: &Shared, op: &Op) {
        match op {
            Op::SetString {
                field,
                value,
                null_blob,
            } => {
                let blob = if *null_blob {
                    ptr::null_mut()
                } else {
                    self.blob
                };
                let setter = match field % 4 {
                    0 => cyb_kms_blob_set_kms_name,
                    1 => cyb_kms_blob_set_provider,
                    2 => cyb_kms_blob_set_key_id,
                    _ => cyb_kms_blob_set_region,
                };
                let got = value.with(|p, n| unsafe { setter(blob, p, n) });
                let mut allowed = argument_errors(&[value]);
                if *null_blob {
                    allowed.push(CYB_RESULT_NULL_PARAMETER);
                }
                if allowed.is_empty() {
                    allowed.push(CYB_RESULT_OK);
                }
                check("cyb_kms_blob_set_*", got, &allowed);
                if got == CYB_RESULT_OK {
                    let value = value.text().unwrap();
                    match field % 4 {
                        0 => self.shadow.kms_name = value,
                        1 => self.shadow.provider = value,
                        2 => self.shadow.key_id = value,
                        _ => self.shadow.region = value,
                    }
                }
            }
            Op::SetWrappedKek { value, null_blob } => {
                let blob = if *null_blob {
                    ptr::null_mut()
                } else {
                    self.blob
                };
                let got =
                    value.with(|p, n| unsafe { cyb_kms_blob_set_wrapped_kek(blob, p.cast(), n) });
                let expected = match (value.bytes(), null_blob) {
                    (_, true) | (Arg::Null, _) => CYB_RESULT_NULL_PARAMETER,
                    (Arg::Ok(_), false) => CYB_RESULT_OK,
                };
                check("cyb_kms_blob_set_wrapped_kek", got, &[expected]);
                if let (CYB_RESULT_OK, Arg::Ok(bytes)) = (got, value.bytes()) {
                    self.shadow.wrapped_kek = bytes;
                }
            }
            Op::SetVersion(v) => {
                check(
                    "cyb_kms_blob_set_version",
                    unsafe { cyb_kms_blob_set_version(self.blob, *v) },
                    &[CYB_RESULT_OK],
                );
                self.shadow.version = *v;
            }
            Op::SetCreatedAt(t) => {
                check(
                    "cyb_kms_blob_set_created_at",
                    unsafe { cyb_kms_blob_set_created_at(self.blob, *t) },
                    &[CYB_RESULT_OK],
                );
                self.shadow.created_at = *t;
            }
            Op::NewBlob => unsafe {
                cyb_kms_blob_free(self.blob);
                self.blob = ptr::null_mut();
                check(
                    "cyb_kms_blob_new",
                    cyb_kms_blob_new(&mut self.blob),
                    &[CYB_RESULT_OK],
                );
                self.shadow = KmsBlob::default();
            },
            Op::Create {
                store,
                name,
                null_config,
                null_blob,
            }
            | Op::Push {
                store,
                name,
                null_config,
                null_blob,
            } => {
                let create = matches!(op, Op::Create { .. });
                let (config, i) = self.store(*store);
                let config = if *null_config {
                    ptr::null_mut()
                } else {
                    config
                };
                let blob = if *null_blob {
                    ptr::null_mut()
                } else {
                    self.blob
                };
                let got = name.with(|p, n| unsafe {
                    if create {
                        cyb_index_kms_create(config, p, n, blob)
                    } else {
                        cyb_index_kms_push(config, p, n, blob)
                    }
                });
                let mut allowed = argument_errors(&[name]);
                if *null_config || *null_blob {
                    allowed.push(CYB_RESULT_NULL_PARAMETER);
                }
                let name_text = name.text().ok();
                if let Some(text) = &name_text {
                    if IndexName::new(text).is_err() || self.shadow.validate().is_err() {
                        allowed.push(CYB_RESULT_INVALID_ARGUMENT);
                    }
                }
                if allowed.is_empty() {
                    let exists = self.models[i].contains_key(name_text.as_ref().unwrap());
                    allowed.push(if create && exists {
                        CYB_RESULT_ALREADY_EXISTS
                    } else {
                        CYB_RESULT_OK
                    });
                }
                check(
                    if create {
                        "cyb_index_kms_create"
                    } else {
                        "cyb_index_kms_push"
                    },
                    got,
                    &allowed,
                );
                if got == CYB_RESULT_OK {
                    self.models[i].insert(name_text.unwrap(), self.shadow.clone());
                }
            }
            Op::Get {
                store,
                name,
                null_out,
            } => {
                let (config, i) = self.store(*store);
                let mut out: *mut cyb_kms_blob = ptr::null_mut();
                let out_ptr: *mut *mut cyb_kms_blob =
                    if *null_out { ptr::null_mut() } else { &mut out };
                let got = name.with(|p, n| unsafe { cyb_index_kms_get(config, p, n, out_ptr) });
                let mut allowed = argument_errors(&[name]);
                if *null_out {
                    allowed.push(CYB_RESULT_NULL_PARAMETER);
                }
                let name_text = name.text().ok();
                if let Some(text) = &name_text {
                    if IndexName::new(text).is_err() {
                        allowed.push(CYB_RESULT_INVALID_ARGUMENT);
                    }
                }
                let stored = name_text.as_ref().and_then(|n| self.models[i].get(n));
                if allowed.is_empty() {
                    allowed.push(if stored.is_some() {
                        CYB_RESULT_OK
                    } else {
                        CYB_RESULT_NOT_FOUND
                    });
                }
                check("cyb_index_kms_get", got, &allowed);
                if got == CYB_RESULT_OK {
                    let read = unsafe { read_blob(out) };
                    unsafe { cyb_kms_blob_free(out) };
                    let mut want = stored.unwrap().clone();
                    if want.created_at == 0 {
                        assert!(read.created_at > 0, "created_at 0 was not stamped");
                        want.created_at = read.created_at;
                    }
                    assert_eq!(read, want, "get returned other fields than were stored");
                } else {
                    assert!(out.is_null(), "out_blob written on error");
                }
            }
            Op::Delete { store, name } => {
                let (config, i) = self.store(*store);
                let got = name.with(|p, n| unsafe { cyb_index_kms_delete(config, p, n) });
                let mut allowed = argument_errors(&[name]);
                let name_text = name.text().ok();
                if let Some(text) = &name_text {
                    if IndexName::new(text).is_err() {
                        allowed.push(CYB_RESULT_INVALID_ARGUMENT);
                    }
                }
                if allowed.is_empty() {
                    allowed.push(CYB_RESULT_OK);
                }
                check("cyb_index_kms_delete", got, &allowed);
                if got == CYB_RESULT_OK {
                    self.models[i].remove(&name_text.unwrap());
                }
            }
            Op::CreateWithCallerKey {
                store,
                name,
                key,
                kms_name,
                out_len,
            } => {
                let (config, i) = self.store(*store);
                let mut kek = [0u8; 32];
                let out_len = if *out_len < 128 {
                    32
                } else {
                    usize::from(*out_len) % 64
                };
                let key_is_null = matches!(key, Text::Null | Text::NullWithLength(_));
                let got = name.with(|np, nn| {
                    key.with(|kp, kn| {
                        let mut call = |sp: *const c_char, sn: usize| unsafe {
                            cyb_kek_create_index(
                                shared.resolver,
                                config,
                                np,
                                nn,
                                sp,
                                sn,
                                kp.cast(),
                                kn,
                                kek.as_mut_ptr(),
                                out_len,
                            )
                        };
                        match kms_name {
                            // A slot name with no key would wrap through KMS: only with a key.
                            Some(slot) if !key_is_null => slot.with(call),
                            _ => call(ptr::null(), 0),
                        }
                    })
                });
                let mut allowed = argument_errors(&[name]);
                allowed.extend(kms_name.iter().filter_map(|t| t.text().err()));
                allowed.push(CYB_RESULT_INVALID_ARGUMENT); // both or neither, key or buffer size
                allowed.push(CYB_RESULT_NULL_PARAMETER);
                let name_text = name.text().ok();
                let valid_request = kms_name.is_none()
                    && !key_is_null
                    && out_len == 32
                    && matches!(key.bytes(), Arg::Ok(ref b) if b.len() == 32)
                    && name_text
                        .as_deref()
                        .is_some_and(|n| IndexName::new(n).is_ok());
                if valid_request {
                    let exists = self.models[i].contains_key(name_text.as_ref().unwrap());
                    allowed = vec![if exists {
                        CYB_RESULT_ALREADY_EXISTS
                    } else {
                        CYB_RESULT_OK
                    }];
                }
                check("cyb_kek_create_index", got, &allowed);
                if got == CYB_RESULT_OK {
                    let Arg::Ok(key) = key.bytes() else {
                        unreachable!()
                    };
                    assert_eq!(
                        kek.as_slice(),
                        key.as_slice(),
                        "out_kek is not the caller's key"
                    );
                    let name = name_text.unwrap();
                    let mut out = ptr::null_mut();
                    let got = unsafe {
                        cyb_index_kms_get(config, name.as_ptr().cast(), name.len(), &mut out)
                    };
                    check("cyb_index_kms_get", got, &[CYB_RESULT_OK]);
                    let read = unsafe { read_blob(out) };
                    unsafe { cyb_kms_blob_free(out) };
                    assert_eq!(read.provider, "none");
                    assert!(
                        read.wrapped_kek.is_empty(),
                        "a caller-key envelope stores key material"
                    );
                    self.models[i].insert(name, read);
                } else {
                    assert_eq!(kek, [0u8; 32], "out_kek written on error");
                }
            }
            Op::Resolve {
                store,
                name,
                out_len,
            } => {
                let (config, i) = self.store(*store);
                let name_text = name.text().ok();
                // Only what needs no provider call: nothing stored, or provider "none".
                let stored = name_text.as_ref().and_then(|n| self.models[i].get(n));
                if stored.is_some_and(|b| b.provider != "none") {
                    return;
                }
                let mut kek = [0u8; 32];
                let out_len = if *out_len < 128 {
                    32
                } else {
                    usize::from(*out_len) % 64
                };
                let got = name.with(|p, n| unsafe {
                    cyb_kek_resolve(shared.resolver, config, p, n, kek.as_mut_ptr(), out_len)
                });
                let mut allowed = argument_errors(&[name]);
                if name_text
                    .as_deref()
                    .is_some_and(|n| IndexName::new(n).is_err())
                    || out_len != 32
                {
                    allowed.push(CYB_RESULT_INVALID_ARGUMENT);
                }
                if allowed.is_empty() {
                    allowed.push(if stored.is_some() {
                        CYB_RESULT_KEK_NOT_WRAPPED
                    } else {
                        CYB_RESULT_NOT_FOUND
                    });
                }
                check("cyb_kek_resolve", got, &allowed);
                assert_eq!(kek, [0u8; 32], "out_kek written on error");
            }
            Op::CheckDrift { store } => unsafe {
                let (config, i) = self.store(*store);
                let mut report = ptr::null_mut();
                check(
                    "cyb_kek_check_drift",
                    cyb_kek_check_drift(shared.resolver, config, false, &mut report),
                    &[CYB_RESULT_OK],
                );
                let names: Vec<&String> = self.models[i].keys().collect();
                assert_eq!(cyb_drift_report_len(report), names.len());
                for (at, name) in names.iter().enumerate() {
                    let mut entry = std::mem::zeroed::<cyb_drift_entry>();
                    check(
                        "cyb_drift_report_entry",
                        cyb_drift_report_entry(report, at, &mut entry),
                        &[CYB_RESULT_OK],
                    );
                    assert_eq!(
                        borrowed(entry.index_name),
                        name.as_bytes(),
                        "drift report order"
                    );
                    let none = self.models[i][*name].provider == "none";
                    assert_eq!(
                        entry.status == cyb_drift_status::CYB_DRIFT_NOT_WRAPPED,
                        none
                    );
                    // An empty registry: every wrapped envelope names an unknown slot.
                    if !none {
                        assert_eq!(entry.status, cyb_drift_status::CYB_DRIFT_FAILED);
                    }
                }
                let mut entry = std::mem::zeroed::<cyb_drift_entry>();
                check(
                    "cyb_drift_report_entry",
                    cyb_drift_report_entry(report, names.len(), &mut entry),
                    &[CYB_RESULT_INVALID_ARGUMENT],
                );
                cyb_drift_report_free(report);
            },
            Op::CheckDriftNewKek {
                store,
                null_callback,
            } => unsafe {
                let (config, i) = self.store(*store);
                let mut report = ptr::null_mut();
                let callback: cyb_kek_drift_rotate_callback =
                    (!*null_callback).then_some(never_called_for_drift);
                let got = cyb_kek_check_drift_new_kek(
                    shared.resolver,
                    config,
                    callback,
                    ptr::null_mut(),
                    &mut report,
                );
                if *null_callback {
                    check("cyb_kek_check_drift_new_kek", got, &[CYB_RESULT_NULL_PARAMETER]);
                    assert!(report.is_null(), "out written on error");
                    return;
                }
                check("cyb_kek_check_drift_new_kek", got, &[CYB_RESULT_OK]);
                assert_eq!(cyb_drift_report_len(report), self.models[i].len());
                for at in 0..self.models[i].len() {
                    let mut entry = std::mem::zeroed::<cyb_drift_entry>();
                    check(
                        "cyb_drift_report_entry",
                        cyb_drift_report_entry(report, at, &mut entry),
                        &[CYB_RESULT_OK],
                    );
                    assert!(
                        entry.status != cyb_drift_status::CYB_DRIFT_REWRAPPED
                            && entry.status != cyb_drift_status::CYB_DRIFT_DRIFTED,
                        "drift with an empty registry"
                    );
                }
                cyb_drift_report_free(report);
            },
            Op::Rotate {
                store,
                name,
                slot,
                rotate,
                null_callback,
            } => {
                let (config, i) = self.store(*store);
                let name_text = name.text().ok();
                // Only what needs no provider call: nothing stored, or provider "none".
                let stored = name_text.as_ref().and_then(|n| self.models[i].get(n));
                if stored.is_some_and(|b| b.provider != "none") {
                    return;
                }
                let mut rotation = ptr::null_mut();
                let mut blob = ptr::null_mut();
                let got = name.with(|p, n| {
                    slot.with(|sp, sn| unsafe {
                        if *rotate {
                            let callback: cyb_kek_rotate_callback =
                                (!*null_callback).then_some(never_called);
                            cyb_kek_rotate_kek(
                                shared.resolver,
                                config,
                                p,
                                n,
                                sp,
                                sn,
                                callback,
                                ptr::null_mut(),
                                &mut blob,
                            )
                        } else {
                            cyb_kek_begin_rotation(
                                shared.resolver,
                                config,
                                p,
                                n,
                                sp,
                                sn,
                                &mut rotation,
                            )
                        }
                    })
                });
                let mut allowed = argument_errors(&[name, slot]);
                if *rotate && *null_callback {
                    allowed.push(CYB_RESULT_NULL_PARAMETER);
                }
                allowed.extend([
                    CYB_RESULT_INVALID_ARGUMENT,
                    CYB_RESULT_NOT_FOUND,
                    CYB_RESULT_KEK_NOT_WRAPPED,
                ]);
                check("cyb_kek_begin_rotation / cyb_kek_rotate_kek", got, &allowed);
                assert!(rotation.is_null() && blob.is_null(), "out written on error");
                let mut pending = ptr::null_mut();
                let got = name.with(|p, n| unsafe {
                    cyb_kek_pending_rotation(shared.resolver, config, p, n, &mut pending)
                });
                let mut allowed = argument_errors(&[name]);
                allowed.extend([CYB_RESULT_OK, CYB_RESULT_INVALID_ARGUMENT]);
                check("cyb_kek_pending_rotation", got, &allowed);
                assert!(pending.is_null(), "no rotation was ever begun");
            }
            Op::Invalidate { store, name } => {
                let (config, _) = self.store(*store);
                let mut removed = true;
                let got = name.with(|p, n| unsafe {
                    cyb_kek_invalidate(shared.resolver, config, p, n, &mut removed)
                });
                let mut allowed = argument_errors(&[name]);
                allowed.push(CYB_RESULT_OK);
                allowed.push(CYB_RESULT_INVALID_ARGUMENT);
                check("cyb_kek_invalidate", got, &allowed);
                if got == CYB_RESULT_OK {
                    assert!(!removed, "nothing is ever cached without a provider");
                }
            }
            Op::InvalidateAll => {
                let mut removed = usize::MAX;
                check(
                    "cyb_kek_invalidate_all",
                    unsafe { cyb_kek_invalidate_all(shared.resolver, &mut removed) },
                    &[CYB_RESULT_OK],
                );
                assert_eq!(removed, 0);
            }
            Op::Audit {
                store,
                principal,
                host,
                null_options,
                null_report,
            } => unsafe {
                let (config, _) = self.store(*store);
                let mut audited = ptr::null_mut();
                let got = principal.with_str(|principal| {
                    host.with_str(|host| {
                        let options = cyb_audit_options {
                            principal,
                            host,
                            unwrap_counts_seconds: 0,
                        };
                        let options_ptr = if *null_options {
                            ptr::null()
                        } else {
                            &options as *const cyb_audit_options
                        };
                        let set = cyb_kek_resolver_set_audit(shared.resolver, options_ptr);
                        let made = cyb_storage_config_with_audit(config, options_ptr, &mut audited);
                        // Off again: the other ops' stores stay unaudited, as the model assumes.
                        check(
                            "cyb_kek_resolver_set_audit",
                            cyb_kek_resolver_set_audit(shared.resolver, ptr::null()),
                            &[CYB_RESULT_OK],
                        );
                        (set, made)
                    })
                });
                let mut allowed = argument_errors(&[principal, host]);
                allowed.extend([CYB_RESULT_OK, CYB_RESULT_INVALID_ARGUMENT]);
                if *null_options {
                    allowed = vec![CYB_RESULT_NULL_PARAMETER];
                }
                let (set, made) = got;
                check("cyb_storage_config_with_audit", made, &allowed);
                if *null_options {
                    check("cyb_kek_resolver_set_audit", set, &[CYB_RESULT_OK]);
                } else {
                    check("cyb_kek_resolver_set_audit", set, &[made]);
                }
                let mut report = std::mem::zeroed::<cyb_audit_report>();
                let out = if *null_report {
                    ptr::null_mut()
                } else {
                    &mut report as *mut cyb_audit_report
                };
                let verified = cyb_verify_audit(config, out);
                if *null_report {
                    check("cyb_verify_audit", verified, &[CYB_RESULT_NULL_PARAMETER]);
                } else {
                    check("cyb_verify_audit", verified, &[CYB_RESULT_OK]);
                    // Only the library writes the log: it is always intact.
                    assert_eq!(report.break_kind, CYB_AUDIT_BREAK_NONE);
                    assert_eq!(report.has_head, report.records > 0);
                }
                cyb_storage_config_free(audited);
            },
            Op::NewDiskStore { path } => {
                let mut config = ptr::null_mut();
                let got =
                    path.with(|p, n| unsafe { cyb_storage_config_new_disk(p, n, &mut config) });
                let expected = match path.bytes() {
                    Arg::Null => CYB_RESULT_NULL_PARAMETER,
                    Arg::Ok(b) if b.is_empty() || b.contains(&0) => CYB_RESULT_INVALID_ARGUMENT,
                    Arg::Ok(_) => CYB_RESULT_OK,
                };
                check("cyb_storage_config_new_disk", got, &[expected]);
                unsafe { cyb_storage_config_free(config) };
            }
            Op::NewS3Store {
                bucket,
                null_options,
                prefix,
                region,
                endpoint,
                credentials,
                timeouts,
                retry_mode,
                server_side_encryption,
                sse_kms_key_id,
                expected_bucket_owner,
                default_credentials_with_endpoint,
            } => {
                let mut config = ptr::null_mut();
                let got = bucket.with(|bp, bn| {
                    prefix.with_str(|prefix| {
                        region.with_str(|region| {
                            endpoint.with_str(|endpoint| {
                                sse_kms_key_id.with_str(|sse_kms_key_id| {
                                    expected_bucket_owner.with_str(|expected_bucket_owner| {
                                        let call = |credentials: *const cyb_s3_credentials| {
                                            let options = cyb_s3_options {
                                                prefix,
                                                region,
                                                endpoint,
                                                credentials,
                                                timeouts: (*timeouts).into(),
                                                retry_mode: *retry_mode,
                                                server_side_encryption: *server_side_encryption,
                                                sse_kms_key_id,
                                                expected_bucket_owner,
                                                default_credentials_with_endpoint:
                                                    *default_credentials_with_endpoint,
                                            };
                                            let options_ptr =
                                                if *null_options { ptr::null() } else { &options };
                                            unsafe {
                                                cyb_storage_config_new_s3(
                                                    bp,
                                                    bn,
                                                    options_ptr,
                                                    &mut config,
                                                )
                                            }
                                        };
                                        match credentials {
                                            None => call(ptr::null()),
                                            Some((a, s, t)) => a.with_str(|access_key| {
                                                s.with_str(|secret_key| {
                                                    t.with_str(|session_token| {
                                                        call(&cyb_s3_credentials {
                                                            access_key,
                                                            secret_key,
                                                            session_token,
                                                        })
                                                    })
                                                })
                                            }),
                                        }
                                    })
                                })
                            })
                        })
                    })
                });
                let allowed = [
                    CYB_RESULT_OK,
                    CYB_RESULT_NULL_PARAMETER,
                    CYB_RESULT_INVALID_ARGUMENT,
                    CYB_RESULT_IO,
                ];
                check("cyb_storage_config_new_s3", got, &allowed);
                if bucket.text().is_err() {
                    assert_ne!(got, CYB_RESULT_OK, "a bad bucket argument was accepted");
                }
                unsafe { cyb_storage_config_free(config) };
            }
            Op::NewClient {
                null_options,
                endpoint,
                timeouts,
                allow_local_provider,
                allow_insecure_http,
                retry_mode,
                kms_endpoint,
                secrets_manager_endpoint,
                sts_endpoint,
                region_endpoints,
                null_region_endpoints,
            } => {
                let region_entries: Vec<cyb_kms_region_endpoint> = region_endpoints
                    .iter()
                    .map(|(region, url)| cyb_kms_region_endpoint {
                        region: cyb_str {
                            data: region.as_ptr().cast(),
                            len: region.len(),
                        },
                        url: cyb_str {
                            data: url.as_ptr().cast(),
                            len: url.len(),
                        },
                    })
                    .collect();
                let region_entries_ptr = if *null_region_endpoints {
                    ptr::null()
                } else {
                    region_entries.as_ptr()
                };
                let mut client = ptr::null_mut();
                let got = endpoint.with_str(|endpoint_url| {
                    kms_endpoint.with_str(|kms_endpoint_url| {
                        secrets_manager_endpoint.with_str(|secrets_manager_endpoint_url| {
                            sts_endpoint.with_str(|sts_endpoint_url| {
                                let options = cyb_kms_client_options {
                                    timeouts: (*timeouts).into(),
                                    endpoint_url,
                                    allow_local_provider: *allow_local_provider,
                                    allow_insecure_http: *allow_insecure_http,
                                    retry_mode: *retry_mode,
                                    kms_endpoint_url,
                                    secrets_manager_endpoint_url,
                                    sts_endpoint_url,
                                    kms_region_endpoint_urls: region_entries_ptr,
                                    kms_region_endpoint_url_count: region_entries.len(),
                                };
                                let options_ptr =
                                    if *null_options { ptr::null() } else { &options };
                                unsafe { cyb_kms_client_new(options_ptr, &mut client) }
                            })
                        })
                    })
                });
                let mut allowed = vec![CYB_RESULT_OK, CYB_RESULT_INVALID_CONFIG, CYB_RESULT_IO];
                if !null_options {
                    // Checked in this order: retry_mode, then the endpoints as text.
                    let first_bad_text = [
                        endpoint,
                        kms_endpoint,
                        secrets_manager_endpoint,
                        sts_endpoint,
                    ]
                    .iter()
                    .find_map(|text| text.text().err());
                    // Then the per-region endpoints: a NULL array with entries, a repeated region.
                    let mut regions: Vec<&String> =
                        region_endpoints.iter().map(|(r, _)| r).collect();
                    regions.sort();
                    let repeated_region = regions.windows(2).any(|pair| pair[0] == pair[1]);
                    allowed = if *retry_mode > CYB_RETRY_MODE_ADAPTIVE {
                        vec![CYB_RESULT_INVALID_ARGUMENT]
                    } else if let Some(code) = first_bad_text {
                        vec![code]
                    } else if *null_region_endpoints && !region_endpoints.is_empty() {
                        vec![CYB_RESULT_NULL_PARAMETER]
                    } else if repeated_region {
                        vec![CYB_RESULT_INVALID_ARGUMENT]
                    } else {
                        allowed
                    };
                }
                check("cyb_kms_client_new", got, &allowed);
                unsafe { cyb_kms_client_free(client) };
            }
            Op::NewResolver {
                null_options,
                ttl_ms,
                max_entries,
                revalidate_ms,
                stale_if_error,
            } => {
                let options = cyb_kek_cache_options {
                    ttl_ms: *ttl_ms,
                    max_entries: *max_entries,
                    revalidate_ms: *revalidate_ms,
                    stale_if_error: *stale_if_error,
                };
                let options_ptr = if *null_options { ptr::null() } else { &options };
                let mut resolver = ptr::null_mut();
                let got =
                    unsafe { cyb_kek_resolver_new(shared.client, options_ptr, &mut resolver) };
                let bad_stale = !matches!(*stale_if_error, -1..=1);
                let expected = if !null_options && (*ttl_ms < -1 || *revalidate_ms < -1 || bad_stale)
                {
                    vec![CYB_RESULT_INVALID_ARGUMENT]
                } else {
                    vec![CYB_RESULT_OK, CYB_RESULT_INVALID_CONFIG, CYB_RESULT_IO]
                };
                check("cyb_kek_resolver_new", got, &expected);
                unsafe { cyb_kek_resolver_free(resolver) };
            }
            Op::LoadRegistryYaml { yaml } => {
                let mut slots = usize::MAX;
                let got = yaml.with(|p, n| unsafe {
                    cyb_kms_client_load_registry_yaml(shared.client, p, n, &mut slots)
                });
                let allowed = match yaml.text() {
                    Err(code) => vec![code],
                    Ok(_) => vec![CYB_RESULT_OK, CYB_RESULT_INVALID_CONFIG],
                };
                check("cyb_kms_client_load_registry_yaml", got, &allowed);
                // Keep the registry empty for the drift model.
                empty_registry(shared);
            }
            Op::AddSlot {
                name,
                fields,
                null_slot,
                replica_regions,
                null_replicas,
            } => {
                let [provider, key_id, region, role_arn, external_id, session] = fields;
                let region_views: Vec<cyb_str> = replica_regions
                    .iter()
                    .map(|r| cyb_str {
                        data: r.as_ptr().cast(),
                        len: r.len(),
                    })
                    .collect();
                let regions_ptr = if *null_replicas {
                    ptr::null()
                } else {
                    region_views.as_ptr()
                };
                let got = name.with(|np, nn| {
                    provider.with_str(|provider| {
                        key_id.with_str(|key_id| {
                            region.with_str(|region| {
                                role_arn.with_str(|role_arn| {
                                    external_id.with_str(|external_id| {
                                        session.with_str(|role_session_name| {
                                            let slot = cyb_kms_slot {
                                                provider,
                                                key_id,
                                                region,
                                                role_arn,
                                                external_id,
                                                role_session_name,
                                                replica_regions: regions_ptr,
                                                replica_region_count: region_views.len(),
                                            };
                                            let slot_ptr =
                                                if *null_slot { ptr::null() } else { &slot };
                                            unsafe {
                                                cyb_kms_client_add_slot(
                                                    shared.client,
                                                    np,
                                                    nn,
                                                    slot_ptr,
                                                )
                                            }
                                        })
                                    })
                                })
                            })
                        })
                    })
                });
                let allowed = [
                    CYB_RESULT_OK,
                    CYB_RESULT_NULL_PARAMETER,
                    CYB_RESULT_INVALID_ARGUMENT,
                    CYB_RESULT_INVALID_CONFIG,
                ];
                check("cyb_kms_client_add_slot", got, &allowed);
                let mut texts: Vec<&Text> = fields.iter().collect();
                texts.push(name);
                let null_regions = *null_replicas && !replica_regions.is_empty();
                if !argument_errors(&texts).is_empty() || *null_slot || null_regions {
                    assert_ne!(got, CYB_RESULT_OK, "a bad argument was accepted");
                }
                empty_registry(shared);
            }
            Op::SetLogCallback {
                level,
                null_callback,
            } => {
                let callback: cyb_log_callback = if *null_callback {
                    None
                } else {
                    Some(check_log_record)
                };
                // Raised before installing (a record at the new level may come at once), set
                // exactly after.
                if *level <= 5 && !*null_callback {
                    LOG_THRESHOLD.fetch_max(*level, Ordering::SeqCst);
                }
                let got = cyb_set_log_callback(*level, callback, 0x10 as *mut c_void);
                if *level > 5 {
                    check("cyb_set_log_callback", got, &[CYB_RESULT_INVALID_ARGUMENT]);
                } else {
                    check("cyb_set_log_callback", got, &[CYB_RESULT_OK]);
                    let installed = if *null_callback { 0 } else { *level };
                    LOG_THRESHOLD.store(installed, Ordering::SeqCst);
                }
            }
        }
    }
}
