//! The KEK resolver with the `local` provider (no network): cache hits and misses counted through
//! the statistics, staleness after pushes and deletes, TTL expiry on a manual clock, eviction,
//! invalidation, the two creation modes, re-wrap, drift and warm-up.

#[path = "common/local.rs"]
mod local;

use local::{local_client, local_client_with, local_slot};

use std::time::Duration;

use cyborgdb_kms::{
    delete_index_kms, get_index_kms, push_index_kms, CacheStats, Clock, DriftStatus, ErrorKind,
    KekCacheOptions, KekResolver, KeyIdentity, KmsClient, ManualClock, Provider, StorageConfig,
};

struct Fixture {
    dir: tempfile::TempDir,
    client: KmsClient,
    storage: StorageConfig,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let client = local_client_with(dir.path(), &[("main", 1), ("other", 2)]);
    let storage = StorageConfig::disk(dir.path().join("store")).unwrap();
    Fixture {
        dir,
        client,
        storage,
    }
}

fn resolver(client: &KmsClient, options: KekCacheOptions) -> KekResolver {
    KekResolver::new(client.clone(), options).unwrap()
}

fn ttl(seconds: u64) -> KekCacheOptions {
    KekCacheOptions {
        ttl: Some(Duration::from_secs(seconds)),
        ..KekCacheOptions::default()
    }
}

fn manual(ttl: Duration, max_entries: usize) -> (KekCacheOptions, ManualClock) {
    let clock = ManualClock::new();
    let options = KekCacheOptions {
        ttl: Some(ttl),
        max_entries,
        clock: Clock::Manual(clock.clone()),
        ..KekCacheOptions::default()
    };
    (options, clock)
}

fn kind<T: std::fmt::Debug>(result: cyborgdb_kms::Result<T>) -> ErrorKind {
    result.unwrap_err().kind()
}

#[test]
fn a_miss_unwraps_once_then_hits_touch_neither_storage_nor_provider() {
    let f = fixture();
    let r = resolver(&f.client, ttl(60));
    let kek = r
        .create_index(&f.storage, "orders", Some("main"), None)
        .unwrap();
    assert_eq!(r.stats().provider_calls, 1, "the wrap");
    assert_eq!(r.resolve(&f.storage, "orders").unwrap(), kek);
    assert_eq!(
        r.stats(),
        CacheStats {
            misses: 1,
            provider_calls: 2,
            entries: 1,
            ..CacheStats::default()
        }
    );
    // A hit does not read storage: remove the store's directory behind the library's back.
    std::fs::remove_dir_all(f.dir.path().join("store")).unwrap();
    for _ in 0..10 {
        assert_eq!(r.resolve(&f.storage, "orders").unwrap(), kek);
    }
    let stats = r.stats();
    assert_eq!((stats.hits, stats.misses, stats.provider_calls), (10, 1, 2));
}

#[test]
fn caller_supplied_keys_are_recorded_as_none_and_never_cached() {
    let f = fixture();
    let r = resolver(&f.client, ttl(60));
    let key = [7u8; 32];
    let kek = r.create_index(&f.storage, "sdk", None, Some(&key)).unwrap();
    assert_eq!(kek.as_bytes(), &key);
    let blob = get_index_kms(&f.storage, "sdk").unwrap();
    assert_eq!(blob.provider, "none");
    assert!(blob.wrapped_kek.is_empty() && blob.kms_name.is_empty());
    for _ in 0..3 {
        assert_eq!(kind(r.resolve(&f.storage, "sdk")), ErrorKind::KekNotWrapped);
    }
    let stats = r.stats();
    assert_eq!(
        (stats.entries, stats.provider_calls, stats.errors),
        (0, 0, 3)
    );
}

#[test]
fn creation_needs_exactly_one_of_kms_name_and_index_key() {
    let f = fixture();
    let r = resolver(&f.client, ttl(60));
    let both = r
        .create_index(&f.storage, "x", Some("main"), Some(&[1; 32]))
        .unwrap_err();
    assert_eq!(both.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        both.message(),
        "index_key and kms_name are mutually exclusive"
    );
    let neither = r.create_index(&f.storage, "x", None, None).unwrap_err();
    assert_eq!(neither.kind(), ErrorKind::InvalidArgument);
    assert!(neither.message().contains("one of kms_name"), "{neither:?}");
    assert_eq!(
        kind(r.create_index(&f.storage, "x", None, Some(&[1; 31]))),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(r.create_index(&f.storage, "x", Some("nope"), None)),
        ErrorKind::UnknownSlot
    );
    assert_eq!(
        kind(r.create_index(&f.storage, "", Some("main"), None)),
        ErrorKind::InvalidArgument
    );
    // None of the failures stored anything.
    assert_eq!(kind(get_index_kms(&f.storage, "x")), ErrorKind::NotFound);
    assert_eq!(r.stats().provider_calls, 0);
}

#[test]
fn a_failed_create_leaves_the_existing_envelope_alone() {
    let f = fixture();
    let r = resolver(&f.client, ttl(60));
    let first = r
        .create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    let stored = get_index_kms(&f.storage, "idx").unwrap();
    assert_eq!(
        kind(r.create_index(&f.storage, "idx", Some("other"), None)),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(r.create_index(&f.storage, "idx", None, Some(&[9; 32]))),
        ErrorKind::AlreadyExists
    );
    assert_eq!(get_index_kms(&f.storage, "idx").unwrap(), stored);
    assert_eq!(r.resolve(&f.storage, "idx").unwrap(), first);
}

#[test]
fn a_changed_envelope_never_yields_the_old_kek() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let old = r
        .create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    assert_eq!(r.resolve(&f.storage, "idx").unwrap(), old);
    // Another component pushes a new envelope with a new KEK, through its own StorageConfig of
    // the same directory.
    let same_dir = StorageConfig::disk(f.dir.path().join("store")).unwrap();
    let (blob, new) = f.client.wrap_new_kek("idx", "main").unwrap();
    push_index_kms(&same_dir, "idx", &blob).unwrap();
    assert_ne!(old, new);
    assert_eq!(r.resolve(&f.storage, "idx").unwrap(), new);
    assert_eq!(r.resolve(&f.storage, "idx").unwrap(), new);
    let stats = r.stats();
    assert_eq!((stats.misses, stats.hits, stats.provider_calls), (2, 1, 3));
    // Deleted: resolve fails and the KEK is dropped from the cache.
    delete_index_kms(&f.storage, "idx").unwrap();
    assert_eq!(kind(r.resolve(&f.storage, "idx")), ErrorKind::NotFound);
    assert_eq!(r.stats().entries, 0);
}

#[test]
fn a_write_to_another_index_costs_one_envelope_read_not_a_provider_call() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let kek = r.create_index(&f.storage, "a", Some("main"), None).unwrap();
    r.resolve(&f.storage, "a").unwrap();
    r.create_index(&f.storage, "b", Some("main"), None).unwrap();
    let before = r.stats();
    assert_eq!(r.resolve(&f.storage, "a").unwrap(), kek);
    assert_eq!(r.resolve(&f.storage, "a").unwrap(), kek);
    let after = r.stats();
    assert_eq!(after.provider_calls, before.provider_calls);
    assert_eq!(after.misses, before.misses + 1, "one re-check");
    assert_eq!(after.hits, before.hits + 1);
}

#[test]
fn entries_expire_at_the_ttl_and_are_wiped_from_the_cache() {
    let f = fixture();
    let (options, clock) = manual(Duration::from_secs(1), 100);
    let r = resolver(&f.client, options);
    r.create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    r.resolve(&f.storage, "idx").unwrap();
    clock.advance(Duration::from_millis(999));
    r.resolve(&f.storage, "idx").unwrap();
    assert_eq!(r.stats().hits, 1);
    assert_eq!(r.purge_expired(), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(r.purge_expired(), 1);
    let stats = r.stats();
    assert_eq!((stats.entries, stats.expirations), (0, 1));
    r.resolve(&f.storage, "idx").unwrap();
    let stats = r.stats();
    assert_eq!(
        (stats.misses, stats.provider_calls, stats.entries),
        (2, 3, 1)
    );
    // Hits do not extend the TTL.
    clock.advance(Duration::from_millis(600));
    r.resolve(&f.storage, "idx").unwrap();
    clock.advance(Duration::from_millis(600));
    r.resolve(&f.storage, "idx").unwrap();
    assert_eq!(r.stats().provider_calls, 4);
}

#[test]
fn the_system_clock_sweeper_drops_expired_entries_on_its_own() {
    let f = fixture();
    let r = resolver(
        &f.client,
        KekCacheOptions {
            ttl: Some(Duration::from_millis(50)),
            ..KekCacheOptions::default()
        },
    );
    r.create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    r.resolve(&f.storage, "idx").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while r.stats().entries != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never ran"
        );
        std::thread::yield_now();
    }
    assert_eq!(r.stats().expirations, 1);
}

#[test]
fn a_zero_ttl_disables_caching() {
    let f = fixture();
    let r = resolver(&f.client, ttl(0));
    r.create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    for _ in 0..3 {
        r.resolve(&f.storage, "idx").unwrap();
    }
    let stats = r.stats();
    assert_eq!((stats.hits, stats.provider_calls, stats.entries), (0, 4, 0));
}

#[test]
fn the_cache_is_bounded_and_keeps_recently_used_entries() {
    let f = fixture();
    let (options, _clock) = manual(Duration::from_secs(60), 2);
    let r = resolver(&f.client, options);
    for name in ["a", "b", "c"] {
        r.create_index(&f.storage, name, Some("main"), None)
            .unwrap();
    }
    r.resolve(&f.storage, "a").unwrap();
    r.resolve(&f.storage, "b").unwrap();
    r.resolve(&f.storage, "a").unwrap(); // a is referenced, b is not
    r.resolve(&f.storage, "c").unwrap(); // evicts b
    let stats = r.stats();
    assert_eq!((stats.entries, stats.evictions), (2, 1));
    let calls = stats.provider_calls;
    r.resolve(&f.storage, "a").unwrap();
    r.resolve(&f.storage, "c").unwrap();
    assert_eq!(r.stats().provider_calls, calls, "a and c are still cached");
    r.resolve(&f.storage, "b").unwrap();
    assert_eq!(r.stats().provider_calls, calls + 1);
}

#[test]
fn invalidation_drops_one_index_or_all() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    for name in ["a", "b", "c"] {
        r.create_index(&f.storage, name, Some("main"), None)
            .unwrap();
        r.resolve(&f.storage, name).unwrap();
    }
    assert!(r.invalidate(&f.storage, "a"));
    assert!(!r.invalidate(&f.storage, "a"));
    assert!(!r.invalidate(&f.storage, ""));
    assert_eq!(r.stats().entries, 2);
    // Another store's entry of the same name is a different entry.
    let elsewhere = StorageConfig::memory();
    assert!(!r.invalidate(&elsewhere, "b"));
    assert_eq!(r.invalidate_all(), 2);
    let stats = r.stats();
    assert_eq!((stats.entries, stats.invalidations), (0, 3));
    let calls = stats.provider_calls;
    r.resolve(&f.storage, "b").unwrap();
    assert_eq!(r.stats().provider_calls, calls + 1);
}

#[test]
fn stores_are_kept_apart_in_the_cache() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let memory = StorageConfig::memory();
    let on_disk = r
        .create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    let in_memory = r.create_index(&memory, "idx", Some("main"), None).unwrap();
    assert_eq!(r.resolve(&f.storage, "idx").unwrap(), on_disk);
    assert_eq!(r.resolve(&memory, "idx").unwrap(), in_memory);
    assert_eq!(r.resolve(&memory.clone(), "idx").unwrap(), in_memory);
    assert_eq!(r.stats().entries, 2);
}

#[test]
fn concurrent_cold_resolves_of_one_index_unwrap_once() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let kek = r
        .create_index(&f.storage, "hot", Some("main"), None)
        .unwrap();
    let calls = r.stats().provider_calls;
    let barrier = std::sync::Barrier::new(64);
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| {
                barrier.wait();
                assert_eq!(r.resolve(&f.storage, "hot").unwrap(), kek);
            });
        }
    });
    let stats = r.stats();
    assert_eq!(stats.provider_calls, calls + 1);
    assert_eq!(stats.hits + stats.misses, 64);
}

#[test]
fn rewrap_keeps_the_kek_bumps_the_version_and_invalidates() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let kek = r
        .create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    r.resolve(&f.storage, "idx").unwrap();
    let before = get_index_kms(&f.storage, "idx").unwrap();
    let after = r.rewrap(&f.storage, "idx", "other").unwrap();
    assert_eq!(get_index_kms(&f.storage, "idx").unwrap(), after);
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.kms_name, "other");
    assert_ne!(after.key_id, before.key_id);
    assert_ne!(after.wrapped_kek, before.wrapped_kek);
    let stats = r.stats();
    assert_eq!((stats.entries, stats.invalidations), (0, 1));
    let calls = stats.provider_calls;
    // The next resolve unwraps the new envelope, under the new key, to the same KEK.
    assert_eq!(r.resolve(&f.storage, "idx").unwrap(), kek);
    assert_eq!(r.stats().provider_calls, calls + 1);
    assert_eq!(f.client.unwrap_kek("idx", &after).unwrap(), kek);
}

#[test]
fn a_failed_rewrap_changes_nothing() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    r.create_index(&f.storage, "idx", Some("main"), None)
        .unwrap();
    r.create_index(&f.storage, "sdk", None, Some(&[3; 32]))
        .unwrap();
    let stored = get_index_kms(&f.storage, "idx").unwrap();
    assert_eq!(
        kind(r.rewrap(&f.storage, "idx", "nope")),
        ErrorKind::UnknownSlot
    );
    assert_eq!(
        kind(r.rewrap(&f.storage, "sdk", "main")),
        ErrorKind::KekNotWrapped
    );
    assert_eq!(
        kind(r.rewrap(&f.storage, "missing", "main")),
        ErrorKind::NotFound
    );
    // The old wrap key is gone: the KEK cannot be unwrapped, so nothing is re-wrapped.
    std::fs::remove_file(f.dir.path().join("main.key")).unwrap();
    assert_eq!(
        kind(r.rewrap(&f.storage, "idx", "other")),
        ErrorKind::KmsKeyNotFound
    );
    assert_eq!(get_index_kms(&f.storage, "idx").unwrap(), stored);
}

#[test]
fn warm_up_reports_per_index_and_fills_the_cache() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let mut names: Vec<String> = (0..20).map(|i| format!("idx-{i}")).collect();
    for name in &names {
        r.create_index(&f.storage, name, Some("main"), None)
            .unwrap();
    }
    r.create_index(&f.storage, "sdk", None, Some(&[1; 32]))
        .unwrap();
    names.insert(3, "missing".to_owned());
    names.insert(7, "sdk".to_owned());
    let results = r.warm_up(&f.storage, &names, 4).unwrap();
    assert_eq!(results.len(), 22);
    for (name, result) in names.iter().zip(&results) {
        match name.as_str() {
            "missing" => assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::NotFound),
            "sdk" => assert_eq!(
                result.as_ref().unwrap_err().kind(),
                ErrorKind::KekNotWrapped
            ),
            _ => assert!(result.is_ok(), "{name}: {result:?}"),
        }
    }
    assert_eq!(r.stats().entries, 20);
    let calls = r.stats().provider_calls;
    r.resolve(&f.storage, "idx-19").unwrap();
    assert_eq!(r.stats().provider_calls, calls);
    for bad in [0, cyborgdb_kms::resolver::MAX_WARM_UP_PARALLELISM + 1] {
        assert_eq!(
            kind(r.warm_up(&f.storage, &names, bad)),
            ErrorKind::InvalidArgument
        );
    }
    assert!(r.warm_up(&f.storage, &[] as &[&str], 1).unwrap().is_empty());
}

#[test]
fn drift_is_reported_and_optionally_rewrapped_per_index() {
    let f = fixture();
    let r = resolver(&f.client, ttl(3600));
    let a = r.create_index(&f.storage, "a", Some("main"), None).unwrap();
    r.create_index(&f.storage, "b", Some("main"), None).unwrap();
    r.create_index(&f.storage, "c", Some("other"), None)
        .unwrap();
    r.create_index(&f.storage, "sdk", None, Some(&[1; 32]))
        .unwrap();
    let in_sync = r.check_drift(&f.storage, false).unwrap();
    let statuses: Vec<_> = in_sync
        .iter()
        .map(|e| (e.index.as_str(), e.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("a", DriftStatus::InSync),
            ("b", DriftStatus::InSync),
            ("c", DriftStatus::InSync),
            ("sdk", DriftStatus::NotWrapped)
        ]
    );
    // The operator points slot "main" at a new key; the old one stays readable.
    let old_main_key = f.dir.path().join("main.key");
    let kept = f.dir.path().join("main-old.key");
    std::fs::copy(&old_main_key, &kept).unwrap();
    let old_key_id = format!("file:{}", old_main_key.display());
    f.client
        .add_slot("main", local_slot(f.dir.path(), "main-new", 5))
        .unwrap();
    // Until the operator lists the old key, the slot does not trust it: not drift but a
    // failure, and a drift repair re-wraps nothing (it would launder an untrusted KEK).
    for rewrap in [false, true] {
        let report = r.check_drift(&f.storage, rewrap).unwrap();
        for entry in &report[..2] {
            assert_eq!(entry.status, DriftStatus::Failed, "{entry:?}");
            let error = entry.error.as_ref().unwrap();
            assert_eq!(error.kind(), ErrorKind::UntrustedKey, "{error:?}");
        }
    }
    assert_eq!(get_index_kms(&f.storage, "a").unwrap().version, 1);
    let mut main_new = local_slot(f.dir.path(), "main-new", 5);
    main_new.previous_keys.push(KeyIdentity {
        provider: Provider::Local,
        key_id: old_key_id.clone(),
        region: String::new(),
    });
    f.client.add_slot("main", main_new).unwrap();
    let report = r.check_drift(&f.storage, false).unwrap();
    let drifted: Vec<_> = report
        .iter()
        .filter(|e| e.status == DriftStatus::Drifted)
        .map(|e| e.index.as_str())
        .collect();
    assert_eq!(drifted, ["a", "b"]);
    let a_entry = &report[0];
    assert_eq!(a_entry.kms_name, "main");
    assert_eq!(a_entry.stored.as_ref().unwrap().key_id, old_key_id);
    assert!(a_entry
        .configured
        .as_ref()
        .unwrap()
        .key_id
        .ends_with("main-new.key"));
    // Reporting changed nothing.
    assert_eq!(get_index_kms(&f.storage, "a").unwrap().version, 1);
    // Re-wrap, with "b"'s envelope unreadable by then: it fails alone and is left as it was.
    let b_before = std::fs::read(f.dir.path().join("store/b.kms")).unwrap();
    std::fs::write(f.dir.path().join("store/b.kms"), b"garbage").unwrap();
    let report = r.check_drift(&f.storage, true).unwrap();
    let statuses: Vec<_> = report
        .iter()
        .map(|e| (e.index.as_str(), e.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("a", DriftStatus::Rewrapped),
            ("b", DriftStatus::Failed),
            ("c", DriftStatus::InSync),
            ("sdk", DriftStatus::NotWrapped)
        ]
    );
    assert_eq!(report[1].error.as_ref().unwrap().kind(), ErrorKind::Corrupt);
    assert_eq!(
        std::fs::read(f.dir.path().join("store/b.kms")).unwrap(),
        b"garbage"
    );
    std::fs::write(f.dir.path().join("store/b.kms"), b_before).unwrap();
    let a_now = get_index_kms(&f.storage, "a").unwrap();
    assert_eq!(a_now.version, 2);
    assert!(a_now.key_id.ends_with("main-new.key"));
    assert_eq!(r.resolve(&f.storage, "a").unwrap(), a);
    // With the old key gone, "b" cannot be re-wrapped: reported, unchanged.
    std::fs::remove_file(&old_main_key).unwrap();
    let report = r.check_drift(&f.storage, true).unwrap();
    assert_eq!(report[1].status, DriftStatus::Failed);
    assert_eq!(
        report[1].error.as_ref().unwrap().kind(),
        ErrorKind::KmsKeyNotFound
    );
    assert_eq!(get_index_kms(&f.storage, "b").unwrap().version, 1);
    // A slot that is gone is reported, not guessed.
    let memory = StorageConfig::memory();
    let (blob, _) = f.client.wrap_new_kek("x", "other").unwrap();
    let mut orphan = blob.clone();
    orphan.kms_name = "retired".to_owned();
    push_index_kms(&memory, "x", &orphan).unwrap();
    let report = r.check_drift(&memory, true).unwrap();
    assert_eq!(report[0].status, DriftStatus::Failed);
    assert_eq!(
        report[0].error.as_ref().unwrap().kind(),
        ErrorKind::UnknownSlot
    );
}

#[test]
fn the_ttl_comes_from_the_environment_when_not_given() {
    // Runs in a child process so the variable cannot leak into other tests.
    if std::env::var_os("CYB_TTL_CHILD").is_none() {
        for (value, expect) in [("5", "ok:5"), ("", "ok:60"), ("soon", "err:InvalidConfig")] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "the_ttl_comes_from_the_environment_when_not_given",
                    "--nocapture",
                ])
                .env("CYB_TTL_CHILD", "1")
                .env("INDEX_KEK_CACHE_TTL_SECONDS", value)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&format!("TTL={expect}")),
                "{value:?}: {stdout}"
            );
        }
        return;
    }
    match KekResolver::new(local_client(), KekCacheOptions::default()) {
        Ok(r) => println!("TTL=ok:{}", r.ttl().as_secs()),
        Err(e) => println!("TTL=err:{:?}", e.kind()),
    }
}

#[test]
fn a_full_cache_drops_expired_entries_before_evicting_live_ones() {
    let f = fixture();
    let (options, clock) = manual(Duration::from_secs(1), 2);
    let r = resolver(&f.client, options);
    for name in ["a", "b", "c"] {
        r.create_index(&f.storage, name, Some("main"), None)
            .unwrap();
    }
    r.resolve(&f.storage, "a").unwrap();
    r.resolve(&f.storage, "b").unwrap();
    clock.advance(Duration::from_secs(1));
    r.resolve(&f.storage, "c").unwrap();
    let stats = r.stats();
    assert_eq!(
        (stats.entries, stats.expirations, stats.evictions),
        (1, 2, 0)
    );
}
