//! The Rust log callback (`cyborgdb_kms::set_log_callback`): the library's events with their
//! levels and targets, the threshold, the AWS SDK's events through the bridge (DEBUG and above
//! only), redaction, a panicking callback, re-entry, and replacing the callback while other
//! threads log. The callback is process-wide, so the tests of this binary take turns
//! ([`exclusive`]).

mod common;

use common::local::{local_client_with, local_slot};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::fault_peer::{FaultPeer, Reply};
use cyborgdb_kms::{
    clear_log_callback, set_log_callback, AwsTimeouts, DriftStatus, ErrorKind, KekCacheOptions,
    KekResolver, KeyIdentity, KmsBlob, KmsClient, KmsClientOptions, LogLevel, Provider, Slot,
    StorageConfig,
};

/// Serializes the tests of this binary (one process-wide callback) and clears the callback
/// when the test ends.
struct Exclusive(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Exclusive {
    fn drop(&mut self) {
        clear_log_callback().unwrap();
    }
}

fn exclusive() -> Exclusive {
    static LOCK: Mutex<()> = Mutex::new(());
    Exclusive(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

#[derive(Clone, Debug, PartialEq)]
struct Line {
    level: LogLevel,
    target: String,
    message: String,
}

/// Installs a callback at `threshold` that keeps every event; returns what it kept.
fn collect(threshold: LogLevel) -> Arc<Mutex<Vec<Line>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    set_log_callback(threshold, move |record| {
        kept.lock().unwrap().push(Line {
            level: record.level,
            target: record.target.to_owned(),
            message: record.message.to_owned(),
        });
    })
    .unwrap();
    lines
}

fn has(lines: &Mutex<Vec<Line>>, level: LogLevel, target: &str, text: &str) -> bool {
    lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.level == level && l.target == target && l.message.contains(text))
}

/// A client with the local slot `main`, its key in `dir`.
fn main_client(dir: &std::path::Path) -> KmsClient {
    local_client_with(dir, &[("main", 1)])
}

fn one_entry_cache() -> KekCacheOptions {
    KekCacheOptions {
        ttl: Some(Duration::from_secs(3600)),
        max_entries: 1,
        ..KekCacheOptions::default()
    }
}

#[test]
fn library_events_arrive_with_their_levels_and_targets_above_the_threshold() {
    let _turn = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let debug = collect(LogLevel::Debug);
    let client = main_client(dir.path());
    let storage = StorageConfig::memory();
    let resolver = KekResolver::new(client.clone(), one_entry_cache()).unwrap();
    resolver
        .create_index(&storage, "alpha", Some("main"), None)
        .unwrap();
    resolver
        .create_index(&storage, "beta", Some("main"), None)
        .unwrap();
    resolver.resolve(&storage, "alpha").unwrap();
    resolver.resolve(&storage, "beta").unwrap(); // evicts alpha: one entry at most
    assert_eq!(
        resolver.resolve(&storage, "missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    for (level, target, text) in [
        (
            LogLevel::Info,
            "cyborgdb_kms::kms",
            "KMS registry changed: 1 slots (generation 1)",
        ),
        (
            LogLevel::Debug,
            "cyborgdb_kms::kms",
            "wrapped a KEK for index \"alpha\" through slot \"main\" (local)",
        ),
        (
            LogLevel::Debug,
            "cyborgdb_kms::kms",
            "unwrapped the KEK of index \"beta\" through slot \"main\" (local)",
        ),
        (
            LogLevel::Debug,
            "cyborgdb_kms::cache",
            "cached the KEK of index \"alpha\"",
        ),
        (
            LogLevel::Debug,
            "cyborgdb_kms::cache",
            "evicted the KEK of index \"alpha\" to stay within max_entries 1",
        ),
        (
            LogLevel::Warn,
            "cyborgdb_kms::resolver",
            "resolving a KEK failed (NotFound): index \"missing\": no KMS envelope is stored",
        ),
    ] {
        assert!(
            has(&debug, level, target, text),
            "{level:?} {target} {text:?} in {:#?}",
            debug.lock().unwrap()
        );
    }
    assert!(debug
        .lock()
        .unwrap()
        .iter()
        .all(|l| l.level <= LogLevel::Debug));

    // Info: the registry change arrives, the cache's Debug events do not; Trace adds misses.
    let info = collect(LogLevel::Info);
    client
        .add_slot("other", local_slot(dir.path(), "other", 2))
        .unwrap();
    resolver.resolve(&storage, "alpha").unwrap();
    assert!(has(
        &info,
        LogLevel::Info,
        "cyborgdb_kms::resolver",
        "the KMS registry changed (generation 2): dropped 1 cached KEKs"
    ));
    assert!(info
        .lock()
        .unwrap()
        .iter()
        .all(|l| l.level <= LogLevel::Info));
    let trace = collect(LogLevel::Trace);
    resolver.invalidate_all();
    resolver.resolve(&storage, "beta").unwrap();
    assert!(has(
        &trace,
        LogLevel::Trace,
        "cyborgdb_kms::resolver",
        "KEK cache miss for index \"beta\""
    ));
    assert!(has(
        &trace,
        LogLevel::Debug,
        "cyborgdb_kms::cache",
        "invalidated every cached KEK (1 dropped)"
    ));

    // Cleared: nothing more arrives anywhere.
    clear_log_callback().unwrap();
    let before = trace.lock().unwrap().len();
    resolver.invalidate_all();
    resolver.resolve(&storage, "beta").unwrap();
    assert_eq!(trace.lock().unwrap().len(), before);
}

#[test]
fn drift_is_a_warning_and_a_rewrap_is_news() {
    let _turn = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let client = main_client(dir.path());
    let storage = StorageConfig::memory();
    let resolver = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    resolver
        .create_index(&storage, "orders", Some("main"), None)
        .unwrap();
    let old_key_id = format!("file:{}", dir.path().join("main.key").display());
    let mut rotated = local_slot(dir.path(), "main-new", 5);
    rotated.previous_keys.push(KeyIdentity {
        provider: Provider::Local,
        key_id: old_key_id,
        region: String::new(),
    });
    client.add_slot("main", rotated).unwrap();

    let lines = collect(LogLevel::Info);
    let report = resolver.check_drift(&storage, false).unwrap();
    assert_eq!(report[0].status, DriftStatus::Drifted);
    assert!(has(
        &lines,
        LogLevel::Warn,
        "cyborgdb_kms::resolver",
        "drift check: index \"orders\" (slot \"main\") drifted: wrapped under a previous key of its slot"
    ));
    let report = resolver.check_drift(&storage, true).unwrap();
    assert_eq!(report[0].status, DriftStatus::Rewrapped);
    assert!(has(
        &lines,
        LogLevel::Info,
        "cyborgdb_kms::resolver",
        "drift check: index \"orders\" (slot \"main\") re-wrapped under its slot's current key"
    ));
}

#[test]
fn sdk_retries_and_kms_errors_arrive_but_never_the_sdks_trace_events() {
    let _turn = exclusive();
    let lines = collect(LogLevel::Trace);
    let peer = FaultPeer::start(|_| Reply::aws_error(400, "ThrottlingException", "Rate exceeded"));
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(peer.endpoint().to_owned()),
        timeouts: AwsTimeouts {
            max_attempts: Some(2),
            initial_backoff: Duration::from_millis(10),
            ..AwsTimeouts::default()
        },
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot(
            "kms",
            Slot::new(Provider::AwsKms, "alias/throttled", "us-east-1"),
        )
        .unwrap();
    let blob = KmsBlob {
        kms_name: "kms".into(),
        provider: "aws-kms".into(),
        key_id: "alias/throttled".into(),
        region: "us-east-1".into(),
        wrapped_kek: b"wrapped".to_vec(),
        version: 1,
        created_at: 1,
    };
    let err = client.unwrap_kek("orders", &blob).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsThrottled);
    assert_eq!(peer.count_target("TrentService.Decrypt"), 2);

    assert!(has(
        &lines,
        LogLevel::Error,
        "cyborgdb_kms::kms",
        "unwrapping the KEK of index \"orders\" through slot \"kms\" failed (KmsThrottled): \
         index \"orders\": kms:Decrypt failed: ThrottlingException (HTTP 400): Rate exceeded"
    ));
    assert!(has(
        &lines,
        LogLevel::Debug,
        "aws_smithy_runtime::client::retries::strategy::standard",
        "attempt #1 failed with"
    ));
    let lines = lines.lock().unwrap();
    // The SDK's TRACE events (raw bodies and headers) and its identity, credential and token
    // modules never reach the callback.
    let withheld: Vec<_> = lines
        .iter()
        .filter(|l| !l.target.starts_with("cyborgdb_kms::"))
        .filter(|l| {
            l.level == LogLevel::Trace
                || l.target.contains("identity")
                || l.target.contains("credential")
                || l.target.contains("token")
        })
        .collect();
    assert!(withheld.is_empty(), "{withheld:#?}");
}

#[test]
fn messages_are_redacted_like_peer_text() {
    let _turn = exclusive();
    let lines = collect(LogLevel::Warn);
    let client = main_client(tempfile::tempdir().unwrap().path());
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    // A name that looks like key material (40 hex characters) and one with a line break.
    let hex_name = "0123456789abcdef0123456789abcdef01234567";
    let storage = StorageConfig::memory();
    assert_eq!(
        resolver.resolve(&storage, hex_name).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0].message,
        "resolving a KEK failed (NotFound): index \"<redacted>\": no KMS envelope is stored"
    );
}

#[test]
fn a_panicking_callback_loses_its_event_and_nothing_else() {
    let _turn = exclusive();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    set_log_callback(LogLevel::Trace, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        panic!("callback bug");
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = main_client(dir.path());
    let storage = StorageConfig::memory();
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    let kek = resolver
        .create_index(&storage, "orders", Some("main"), None)
        .unwrap();
    assert_eq!(resolver.resolve(&storage, "orders").unwrap(), kek);
    assert!(calls.load(Ordering::SeqCst) >= 3);
    // The next callback still receives events.
    let lines = collect(LogLevel::Warn);
    let _ = resolver.resolve(&storage, "missing");
    assert_eq!(lines.lock().unwrap().len(), 1);
}

#[test]
fn setting_the_callback_from_inside_a_callback_is_refused() {
    let _turn = exclusive();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&outcomes);
    set_log_callback(LogLevel::Info, move |_| {
        let err = clear_log_callback().unwrap_err();
        seen.lock()
            .unwrap()
            .push((err.kind(), err.message().to_owned()));
    })
    .unwrap();
    let _client = main_client(tempfile::tempdir().unwrap().path()); // one Info event
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(
        *outcomes,
        vec![(
            ErrorKind::InvalidArgument,
            "the log callback cannot be set or cleared from inside a log callback".to_owned()
        )]
    );
}

#[test]
fn a_replaced_callback_is_never_called_after_set_returns_while_threads_log() {
    let _turn = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let client = main_client(dir.path());
    let storage = StorageConfig::memory();
    let resolver = KekResolver::new(client, one_entry_cache()).unwrap();
    for name in ["alpha", "beta"] {
        resolver
            .create_index(&storage, name, Some("main"), None)
            .unwrap();
    }
    let late_calls = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for name in ["alpha", "beta", "missing"] {
            let (resolver, storage, stop) = (&resolver, &storage, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = resolver.resolve(storage, name); // misses, fills, evictions, failures
                }
            });
        }
        let mut retired_flag: Option<Arc<AtomicBool>> = None;
        let mut replacements = 0;
        while (replacements < 300 || delivered.load(Ordering::SeqCst) < 2000)
            && replacements < 10_000_000
        {
            let retired = Arc::new(AtomicBool::new(false));
            let (flag, late, count) = (
                Arc::clone(&retired),
                Arc::clone(&late_calls),
                Arc::clone(&delivered),
            );
            set_log_callback(LogLevel::Trace, move |_| {
                if flag.load(Ordering::SeqCst) {
                    late.fetch_add(1, Ordering::SeqCst);
                }
                count.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            if let Some(previous) = retired_flag.replace(retired) {
                previous.store(true, Ordering::SeqCst);
            }
            replacements += 1;
        }
        clear_log_callback().unwrap();
        if let Some(last) = retired_flag {
            last.store(true, Ordering::SeqCst);
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(late_calls.load(Ordering::SeqCst), 0);
    assert!(delivered.load(Ordering::SeqCst) >= 2000);
}
