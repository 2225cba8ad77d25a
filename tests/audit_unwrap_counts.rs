//! Per-index unwrap counts in the custody audit (issue #12): one `unwraps` record per index per
//! interval (or flush), counting provider unwraps only — not cache hits, not `none` envelopes.
//! No sleeps: records are produced by `flush_unwrap_counts` (the interval logic is unit-tested
//! with an explicit clock in src/resolver/unwrap_counts.rs).

#[path = "common/local.rs"]
mod local;

use local::{local_client_with, local_slot};

use std::path::Path;
use std::time::Duration;

use cyborgdb_kms::audit::{read_audit, verify_audit, AuditEvent, AuditOptions};
use cyborgdb_kms::{
    ErrorKind, KekCacheOptions, KekResolver, KmsClient, KmsClientOptions, StorageConfig,
};

fn client(dir: &Path) -> KmsClient {
    local_client_with(dir, &[("main", 0x11)])
}

/// (index, count) of every `unwraps` record, in log order, checking since <= until.
fn unwraps(store: &StorageConfig) -> Vec<(String, u64)> {
    read_audit(store, 0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            AuditEvent::Unwraps {
                count,
                since_ms,
                until_ms,
            } => {
                assert!(since_ms <= until_ms && until_ms <= r.time_ms);
                Some((r.index, count))
            }
            _ => None,
        })
        .collect()
}

fn counts_on(store: StorageConfig, dir: &Path, log: Option<&Path>) {
    let resolver = KekResolver::new(client(dir), KekCacheOptions::default()).unwrap();
    resolver
        .set_audit(Some(
            &AuditOptions::new("svc").with_unwrap_counts(Duration::from_secs(3600)),
        ))
        .unwrap();
    let kek_a = resolver
        .create_index(&store, "a", Some("main"), None)
        .unwrap();
    let kek_b = resolver
        .create_index(&store, "b", Some("main"), None)
        .unwrap();
    resolver
        .create_index(&store, "own", None, Some(&[0x5a; 32]))
        .unwrap();
    for _ in 0..5 {
        resolver.invalidate(&store, "a");
        assert_eq!(resolver.resolve(&store, "a").unwrap(), kek_a);
    }
    for _ in 0..3 {
        resolver.invalidate(&store, "b");
        resolver.resolve(&store, "b").unwrap();
    }
    // Cache hits are not unwraps.
    for _ in 0..10 {
        resolver.resolve(&store, "a").unwrap();
        resolver.resolve(&store, "b").unwrap();
    }
    // `none` envelopes are not unwraps.
    for _ in 0..4 {
        let err = resolver.resolve(&store, "own").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KekNotWrapped);
    }
    assert!(
        unwraps(&store).is_empty(),
        "nothing before the interval or a flush"
    );
    assert_eq!(resolver.flush_unwrap_counts().unwrap(), 2);
    let mut found = unwraps(&store);
    found.sort();
    assert_eq!(found, [("a".to_owned(), 5), ("b".to_owned(), 3)]);
    // Nothing pending: a second flush appends nothing.
    assert_eq!(resolver.flush_unwrap_counts().unwrap(), 0);
    // Pending counts are appended when the resolver is dropped.
    resolver.invalidate(&store, "a");
    resolver.resolve(&store, "a").unwrap();
    let clone = resolver.clone();
    drop(resolver);
    assert_eq!(unwraps(&store).len(), 2, "a clone keeps the counts pending");
    drop(clone);
    assert_eq!(unwraps(&store).last().unwrap(), &("a".to_owned(), 1));
    assert!(verify_audit(&store).unwrap().is_intact());
    // No key material in the log (raw or hex, any 8-byte / 16-character window).
    if let Some(log) = log {
        let log = std::fs::read(log).unwrap();
        let mut secrets: Vec<Vec<u8>> = vec![
            kek_a.as_bytes().to_vec(),
            kek_b.as_bytes().to_vec(),
            vec![0x5a; 32],
            vec![0x11; 32],
        ];
        secrets.extend(secrets.clone().iter().map(|s| hex::encode(s).into_bytes()));
        for (i, secret) in secrets.iter().enumerate() {
            let width = if i < 4 { 8 } else { 16 };
            for window in secret.windows(width) {
                assert!(!log.windows(window.len()).any(|w| w == window));
            }
        }
    }
}

#[test]
fn unwraps_are_counted_per_index_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let log = root.join(".audit").join("log.jsonl");
    counts_on(StorageConfig::disk(&root).unwrap(), dir.path(), Some(&log));
}

#[test]
fn unwraps_are_counted_per_index_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    counts_on(StorageConfig::memory(), dir.path(), None);
}

#[test]
fn counts_are_off_by_default_and_without_audit() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = KekResolver::new(client(dir.path()), KekCacheOptions::default()).unwrap();
    let audited = StorageConfig::memory()
        .with_audit(&AuditOptions::new("svc"))
        .unwrap();
    let plain = StorageConfig::memory();
    for store in [&audited, &plain] {
        resolver
            .create_index(store, "a", Some("main"), None)
            .unwrap();
        resolver.invalidate(store, "a");
        resolver.resolve(store, "a").unwrap();
    }
    assert_eq!(resolver.flush_unwrap_counts().unwrap(), 0);
    drop(resolver);
    assert!(unwraps(&audited).is_empty());
    assert_eq!(read_audit(&audited, 0, 10).unwrap().len(), 1);
    assert!(read_audit(&plain, 0, 10).unwrap().is_empty());
}

#[test]
fn a_store_audited_itself_counts_with_its_own_interval() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = KekResolver::new(client(dir.path()), KekCacheOptions::default()).unwrap();
    // The resolver's setting has no interval; the store's own has one and wins.
    resolver.set_audit(Some(&AuditOptions::new("r"))).unwrap();
    let store = StorageConfig::memory()
        .with_audit(&AuditOptions::new("s").with_unwrap_counts(Duration::from_secs(1)))
        .unwrap();
    resolver
        .create_index(&store, "a", Some("main"), None)
        .unwrap();
    resolver.invalidate(&store, "a");
    resolver.resolve(&store, "a").unwrap();
    assert_eq!(resolver.flush_unwrap_counts().unwrap(), 1);
    assert_eq!(unwraps(&store), [("a".to_owned(), 1)]);
}

#[test]
fn interval_bounds_are_checked_naming_the_field() {
    let store = StorageConfig::memory();
    let resolver = KekResolver::new(
        KmsClient::new(KmsClientOptions::default()).unwrap(),
        KekCacheOptions::default(),
    )
    .unwrap();
    for bad in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_millis(1500),
        Duration::from_secs(86_401),
    ] {
        let options = AuditOptions::new("svc").with_unwrap_counts(bad);
        let err = store.with_audit(&options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        assert!(err.message().contains("unwrap_counts"), "{}", err.message());
        let err = resolver.set_audit(Some(&options)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    for good in [1, 60, 86_400] {
        let options = AuditOptions::new("svc").with_unwrap_counts(Duration::from_secs(good));
        store.with_audit(&options).unwrap();
    }
}

#[test]
fn the_registry_setting_turns_counts_on_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path());
    for bad in [
        "0",
        "86401",
        "-1",
        "1.5",
        "abc",
        "[1]",
        "99999999999999999999999",
    ] {
        let err = client
            .load_registry_yaml(&format!(
                "audit:\n  principal: p\n  unwrap_counts_seconds: {bad}\nkms:\n  registry: ~\n"
            ))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
        assert!(
            err.message().contains("audit.unwrap_counts_seconds"),
            "{}",
            err.message()
        );
    }
    client
        .load_registry_yaml(
            "audit:\n  principal: from-yaml\n  unwrap_counts_seconds: 60\nkms:\n  registry: ~\n",
        )
        .unwrap();
    assert_eq!(
        client.registry().audit().unwrap().unwrap_counts,
        Some(Duration::from_secs(60))
    );
    client
        .add_slot("main", local_slot(dir.path(), "main", 0x11))
        .unwrap();
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    let store = StorageConfig::memory();
    resolver
        .create_index(&store, "a", Some("main"), None)
        .unwrap();
    for _ in 0..2 {
        resolver.invalidate(&store, "a");
        resolver.resolve(&store, "a").unwrap();
    }
    assert_eq!(resolver.flush_unwrap_counts().unwrap(), 1);
    assert_eq!(unwraps(&store), [("a".to_owned(), 2)]);
    let records = read_audit(&store, 0, 10).unwrap();
    assert!(records.iter().all(|r| r.actor.principal == "from-yaml"));
}
