//! The KEK resolver against AWS: single flight and its error path counted on our fault peer
//! (which can hold a Decrypt until the test lets it go), parallel misses on different indexes,
//! and against moto the revocation window (secret deleted → resolve fails within the TTL plus
//! one call) and drift rules for role changes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::fault_peer::{FaultPeer, Reply};
use common::moto::{moto, unique};
use cyborgdb_kms::kms::registry::AssumeRole;
use cyborgdb_kms::{
    push_index_kms, AwsTimeouts, Clock, DriftStatus, ErrorKind, KekCacheOptions, KekResolver,
    KeyIdentity, KmsBlob, KmsClient, KmsClientOptions, ManualClock, Provider, Slot, StorageConfig,
};

const REGION: &str = "us-east-1";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const DECRYPT: &str = "TrentService.Decrypt";

fn slot(provider: Provider, key_id: &str) -> Slot {
    Slot::new(provider, key_id, REGION)
}

fn client(endpoint: &str, max_attempts: u32) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        timeouts: AwsTimeouts {
            attempt: Duration::from_secs(60),
            operation: Duration::from_secs(60),
            max_attempts: Some(max_attempts),
            initial_backoff: Duration::from_millis(10),
            ..AwsTimeouts::default()
        },
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot("kms", slot(Provider::AwsKms, KEY_ARN))
        .unwrap();
    client
}

fn resolver(client: KmsClient) -> KekResolver {
    KekResolver::new(
        client,
        KekCacheOptions {
            ttl: Some(Duration::from_secs(3600)),
            ..KekCacheOptions::default()
        },
    )
    .unwrap()
}

/// Stores an aws-kms envelope for `index` (the peer decrypts anything).
fn store_envelope(storage: &StorageConfig, index: &str) {
    let blob = KmsBlob {
        kms_name: "kms".into(),
        provider: "aws-kms".into(),
        key_id: KEY_ARN.into(),
        region: REGION.into(),
        wrapped_kek: format!("wrapped {index}").into_bytes(),
        version: 1,
        created_at: 1,
    };
    push_index_kms(storage, index, &blob).unwrap();
}

/// A gate the peer's responder waits at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let (open, timeout) = self
            .opened
            .wait_timeout_while(open, Duration::from_secs(60), |open| !*open)
            .unwrap();
        assert!(
            *open && !timeout.timed_out(),
            "the test never opened the gate"
        );
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Waits (without sleeping) until `condition` holds; fails after a generous deadline.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}

/// 64 threads miss on one index at once while the provider holds its answer: one Decrypt, one
/// provider call, 64 misses, and everyone gets the same KEK (or the same error).
fn sixty_four_cold_callers(
    reply: Reply,
    max_attempts: u32,
) -> (
    KekResolver,
    FaultPeer,
    StorageConfig,
    Vec<cyborgdb_kms::Result<[u8; 32]>>,
) {
    let gate = Arc::new(Gate::default());
    let peer = {
        let gate = Arc::clone(&gate);
        FaultPeer::start(move |_| {
            gate.wait();
            reply.clone()
        })
    };
    let r = resolver(client(peer.endpoint(), max_attempts));
    let storage = StorageConfig::memory();
    store_envelope(&storage, "hot");
    let results = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..64)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = [0u8; 32];
                    r.resolve_into(&storage, "hot", &mut out).map(|()| out)
                })
            })
            .collect();
        wait_until("all 64 callers missed", || r.stats().misses == 64);
        gate.open();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    (r, peer, storage, results)
}

#[test]
fn sixty_four_cold_callers_on_one_index_make_one_provider_call() {
    let (r, peer, _storage, results) =
        sixty_four_cold_callers(Reply::kms_decrypt(KEY_ARN, &[42; 32]), 1);
    assert!(results.iter().all(|r| r.as_ref().unwrap() == &[42; 32]));
    assert_eq!(peer.count_target(DECRYPT), 1);
    let stats = r.stats();
    assert_eq!(
        (
            stats.misses,
            stats.provider_calls,
            stats.errors,
            stats.entries
        ),
        (64, 1, 0, 1)
    );
}

#[test]
fn a_failed_flight_fails_all_its_callers_once_and_is_not_cached() {
    let throttled = Reply::aws_error(400, "ThrottlingException", "Rate exceeded");
    let (r, peer, storage, results) = sixty_four_cold_callers(throttled, 1);
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::KmsThrottled);
    }
    assert_eq!(peer.count_target(DECRYPT), 1);
    let stats = r.stats();
    assert_eq!(
        (stats.provider_calls, stats.errors, stats.entries),
        (1, 64, 0)
    );
    // The error was not cached: the next caller asks the provider again (still throttled).
    let again = r.resolve(&storage, "hot").unwrap_err();
    assert_eq!(again.kind(), ErrorKind::KmsThrottled);
    assert_eq!(peer.count_target(DECRYPT), 2);
    assert_eq!(r.stats().provider_calls, 2);
    // Flights are per store: the same name in another (empty) store is its own miss.
    let storage_err = r.resolve(&StorageConfig::memory(), "hot").unwrap_err();
    assert_eq!(storage_err.kind(), ErrorKind::NotFound);
}

#[test]
fn misses_on_different_indexes_reach_the_provider_in_parallel() {
    // The peer answers no Decrypt until four are in flight at once: serialized misses would
    // never get there (and fail after the gate's deadline).
    const INDEXES: usize = 4;
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    let peer = {
        let arrived = Arc::clone(&arrived);
        FaultPeer::start(move |_| {
            let (count, all_here) = &*arrived;
            let mut count = count.lock().unwrap();
            *count += 1;
            all_here.notify_all();
            let (count, timeout) = all_here
                .wait_timeout_while(count, Duration::from_secs(60), |n| *n < INDEXES)
                .unwrap();
            if timeout.timed_out() {
                return Reply::aws_error(
                    500,
                    "KMSInternalException",
                    &format!("only {count} in flight"),
                );
            }
            Reply::kms_decrypt(KEY_ARN, &[7; 32])
        })
    };
    let r = resolver(client(peer.endpoint(), 1));
    let storage = StorageConfig::memory();
    let names: Vec<String> = (0..INDEXES).map(|i| format!("idx-{i}")).collect();
    for name in &names {
        store_envelope(&storage, name);
    }
    let results = r.warm_up(&storage, &names, INDEXES).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(peer.count_target(DECRYPT), INDEXES);
    assert_eq!(r.stats().provider_calls, INDEXES as u64);
    for name in &names {
        r.resolve(&storage, name).unwrap();
    }
    assert_eq!(peer.count_target(DECRYPT), INDEXES, "all cached");
}

/// An `aws` (Secrets Manager) index on moto, resolved through a resolver with a 1 s TTL.
fn secrets_manager_index(clock: Clock) -> (KekResolver, StorageConfig, String) {
    let moto = moto();
    let secret = unique("revocable");
    moto.create_binary_secret(REGION, &secret, &[9; 32]);
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(moto.endpoint.clone()),
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot("customer", slot(Provider::Aws, &secret))
        .unwrap();
    let r = KekResolver::new(
        client,
        KekCacheOptions {
            ttl: Some(Duration::from_secs(1)),
            clock,
            ..KekCacheOptions::default()
        },
    )
    .unwrap();
    let storage = StorageConfig::memory();
    r.create_index(&storage, "orders", Some("customer"), None)
        .unwrap();
    (r, storage, secret)
}

#[test]
fn a_deleted_secret_stops_resolves_once_the_ttl_has_passed() {
    let clock = ManualClock::new();
    let (r, storage, secret) = secrets_manager_index(Clock::Manual(clock.clone()));
    let kek = r.resolve(&storage, "orders").unwrap();
    moto().delete_secret(REGION, &secret);
    // Within the TTL the cached KEK is still served: the documented revocation window.
    clock.advance(Duration::from_millis(999));
    assert_eq!(r.resolve(&storage, "orders").unwrap(), kek);
    let calls = r.stats().provider_calls;
    clock.advance(Duration::from_millis(1));
    let err = r.resolve(&storage, "orders").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound, "{err:?}");
    assert_eq!(
        r.stats().provider_calls,
        calls + 1,
        "exactly one call after expiry"
    );
    assert_eq!(r.stats().entries, 0);
}

#[test]
fn on_the_system_clock_revocation_takes_effect_within_the_ttl_plus_one_call() {
    let (r, storage, secret) = secrets_manager_index(Clock::System);
    let kek = r.resolve(&storage, "orders").unwrap();
    let calls = r.stats().provider_calls;
    moto().delete_secret(REGION, &secret);
    let deleted = Instant::now();
    // Resolve in a loop (hits, no sleeping) until the first failure.
    let err = loop {
        match r.resolve(&storage, "orders") {
            Ok(k) => assert_eq!(k, kek),
            Err(e) => break e,
        }
        assert!(deleted.elapsed() < Duration::from_secs(60), "never revoked");
    };
    assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound);
    assert_eq!(
        r.stats().provider_calls,
        calls + 1,
        "the first call after expiry failed"
    );
    // Bounded by the TTL plus one call (whose own bound is the 15 s operation timeout).
    assert!(deleted.elapsed() < Duration::from_secs(1) + Duration::from_secs(15));
}

#[test]
fn role_changes_are_not_drift_but_key_changes_are() {
    let moto = moto();
    let key = moto.create_kms_key(REGION);
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(moto.endpoint.clone()),
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot("byok", slot(Provider::AwsKms, &key))
        .unwrap();
    let r = resolver(client.clone());
    let storage = StorageConfig::memory();
    let kek = r
        .create_index(&storage, "orders", Some("byok"), None)
        .unwrap();
    let mut with_role = slot(Provider::AwsKms, &key);
    with_role.assume_role = Some(AssumeRole {
        role_arn: "arn:aws:iam::123456789012:role/customer".into(),
        external_id: "ext-1".into(),
        session_name: None,
    });
    client.add_slot("byok", with_role).unwrap();
    let report = r.check_drift(&storage, false).unwrap();
    assert_eq!(report[0].status, DriftStatus::InSync);
    // The operator rotates to a new KMS key, listing the old one as a previous key: drift, then
    // re-wrap through the old key.
    let new_key = moto.create_kms_key(REGION);
    let mut rotated = slot(Provider::AwsKms, &new_key);
    rotated.previous_keys.push(KeyIdentity {
        provider: Provider::AwsKms,
        key_id: key.clone(),
        region: REGION.into(),
    });
    client.add_slot("byok", rotated).unwrap();
    assert_eq!(
        r.check_drift(&storage, false).unwrap()[0].status,
        DriftStatus::Drifted
    );
    assert_eq!(
        r.check_drift(&storage, true).unwrap()[0].status,
        DriftStatus::Rewrapped
    );
    assert_eq!(
        r.check_drift(&storage, false).unwrap()[0].status,
        DriftStatus::InSync
    );
    assert_eq!(r.resolve(&storage, "orders").unwrap(), kek);
}

/// The stores a re-wrap race is tried on: memory, disk, and S3 on moto.
fn race_stores(dir: &std::path::Path) -> Vec<(&'static str, StorageConfig)> {
    let bucket = unique("rewrap-race");
    moto().create_bucket(&bucket);
    let s3 = StorageConfig::s3(
        &bucket,
        cyborgdb_kms::S3Options {
            prefix: "envelopes".into(),
            region: Some(REGION.into()),
            endpoint: Some(moto().endpoint.clone()),
            credentials: Some(cyborgdb_kms::S3Credentials::new("S3KEY", "s3-secret")),
            timeouts: AwsTimeouts::default(),
            ..Default::default()
        },
    )
    .unwrap();
    vec![
        ("memory", StorageConfig::memory()),
        ("disk", StorageConfig::disk(dir.join("store")).unwrap()),
        ("s3", s3),
    ]
}

#[test]
fn a_push_that_lands_during_a_rewrap_wins_and_the_rewrap_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in race_stores(dir.path()) {
        // While the re-wrap's kms:Encrypt is in flight, another node pushes a new envelope (a
        // new KEK) for the index. The re-wrap must not put the old KEK back.
        let pushed = KmsBlob {
            wrapped_kek: b"another node's KEK".to_vec(),
            version: 7,
            ..aws_kms_envelope()
        };
        let peer = {
            let storage = storage.clone();
            let pushed = pushed.clone();
            FaultPeer::start(move |request| match request.target() {
                Some("TrentService.Encrypt" | "TrentService.ReEncrypt") => {
                    push_index_kms(&storage, "idx", &pushed).unwrap();
                    Reply::kms_encrypt(KEY_ARN, b"re-wrapped")
                }
                _ => Reply::kms_decrypt(KEY_ARN, &[1; 32]),
            })
        };
        let r = resolver(client(peer.endpoint(), 1));
        push_index_kms(&storage, "idx", &aws_kms_envelope()).unwrap();
        let err = r.rewrap(&storage, "idx", "kms").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{name}: {err:?}");
        assert!(err.message().contains("nothing was written"), "{name}");
        assert_eq!(
            cyborgdb_kms::get_index_kms(&storage, "idx").unwrap(),
            pushed,
            "{name}"
        );
        // Deleted meanwhile: also a conflict, and nothing is resurrected.
        let peer = {
            let storage = storage.clone();
            FaultPeer::start(move |request| match request.target() {
                Some("TrentService.Encrypt" | "TrentService.ReEncrypt") => {
                    cyborgdb_kms::delete_index_kms(&storage, "idx").unwrap();
                    Reply::kms_encrypt(KEY_ARN, b"re-wrapped")
                }
                _ => Reply::kms_decrypt(KEY_ARN, &[1; 32]),
            })
        };
        let r = resolver(client(peer.endpoint(), 1));
        assert_eq!(
            r.rewrap(&storage, "idx", "kms").unwrap_err().kind(),
            ErrorKind::Conflict,
            "{name}"
        );
        assert_eq!(
            cyborgdb_kms::get_index_kms(&storage, "idx")
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound,
            "{name}"
        );
        // Undisturbed, the same re-wrap goes through.
        let peer = FaultPeer::start(|request| match request.target() {
            Some("TrentService.Encrypt" | "TrentService.ReEncrypt") => {
                Reply::kms_encrypt(KEY_ARN, b"re-wrapped")
            }
            _ => Reply::kms_decrypt(KEY_ARN, &[1; 32]),
        });
        let r = resolver(client(peer.endpoint(), 1));
        push_index_kms(&storage, "idx", &aws_kms_envelope()).unwrap();
        let new = r.rewrap(&storage, "idx", "kms").unwrap();
        assert_eq!(new.version, 2, "{name}");
        assert_eq!(new.wrapped_kek, b"re-wrapped", "{name}");
        assert_eq!(
            cyborgdb_kms::get_index_kms(&storage, "idx").unwrap(),
            new,
            "{name}"
        );
    }
}

fn aws_kms_envelope() -> KmsBlob {
    KmsBlob {
        kms_name: "kms".into(),
        provider: "aws-kms".into(),
        key_id: KEY_ARN.into(),
        region: REGION.into(),
        wrapped_kek: b"original".to_vec(),
        version: 1,
        created_at: 1,
    }
}

#[test]
fn concurrent_rewraps_from_separate_resolvers_lose_no_update() {
    // Four resolvers (as four nodes) each re-wrap the index ten times, retrying on Conflict.
    // Each success is a compare-and-swap from version v to v + 1, so the final version counts
    // them exactly: a lost update (a write based on a stale read) would leave it short.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, [3u8; 32]).unwrap();
    let local = Slot::new(
        Provider::Local,
        format!("file:{}", key.display()),
        String::new(),
    );
    for (name, storage) in race_stores(dir.path()) {
        let nodes: Vec<KekResolver> = (0..4)
            .map(|_| {
                let client = KmsClient::new(KmsClientOptions {
                    allow_local_provider: true,
                    ..KmsClientOptions::default()
                })
                .unwrap();
                client.add_slot("dev", local.clone()).unwrap();
                resolver(client)
            })
            .collect();
        let kek = nodes[0]
            .create_index(&storage, "idx", Some("dev"), None)
            .unwrap();
        let conflicts = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for node in &nodes {
                let (storage, conflicts) = (&storage, &conflicts);
                scope.spawn(move || {
                    let mut done = 0;
                    while done < 10 {
                        match node.rewrap(storage, "idx", "dev") {
                            Ok(_) => done += 1,
                            Err(e) if e.kind() == ErrorKind::Conflict => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{name}: {e:?}"),
                        }
                    }
                });
            }
        });
        let stored = cyborgdb_kms::get_index_kms(&storage, "idx").unwrap();
        assert_eq!(
            stored.version,
            41,
            "{name} ({} conflicts)",
            conflicts.load(Ordering::Relaxed)
        );
        assert_eq!(nodes[3].resolve(&storage, "idx").unwrap(), kek, "{name}");
    }
}

#[test]
fn an_s3_rewrap_is_a_put_with_if_match_and_a_412_is_a_conflict() {
    use common::fake_s3::{FakeS3, Response};
    // The stored bytes of an envelope for "idx" wrapped by a local slot, taken from a disk store.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, [3u8; 32]).unwrap();
    let client = KmsClient::new(KmsClientOptions {
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap();
    let local = Slot::new(
        Provider::Local,
        format!("file:{}", key.display()),
        String::new(),
    );
    client.add_slot("dev", local).unwrap();
    let r = resolver(client);
    let disk = StorageConfig::disk(dir.path().join("store")).unwrap();
    r.create_index(&disk, "idx", Some("dev"), None).unwrap();
    let stored = std::fs::read(dir.path().join("store/idx.kms")).unwrap();
    let fake = |etag: Option<&'static str>, put_status: u16| {
        let stored = stored.clone();
        let server = FakeS3::start(move |request| match request.method.as_str() {
            // Only the envelope exists: the re-wrap first checks that no new-KEK rotation
            // record (`idx.rot`) is pending, and must find none.
            "GET"
                if !request
                    .path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .ends_with(".kms") =>
            {
                Response::error(404, "NoSuchKey", "The specified key does not exist.")
            }
            "GET" => {
                let mut headers = vec![("content-type".into(), "application/octet-stream".into())];
                if let Some(etag) = etag {
                    headers.push(("etag".into(), etag.into()));
                }
                Response::Reply(200, headers, stored.clone())
            }
            _ if put_status == 200 => Response::ok(),
            _ => Response::error(
                put_status,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        });
        let store = StorageConfig::s3(
            "fake-bucket",
            cyborgdb_kms::S3Options {
                prefix: "ks".into(),
                region: Some(REGION.into()),
                endpoint: Some(server.endpoint.clone()),
                credentials: Some(cyborgdb_kms::S3Credentials::new("S3KEY", "s3-secret")),
                timeouts: AwsTimeouts::default(),
                ..Default::default()
            },
        )
        .unwrap();
        (server, store)
    };
    let puts = |server: &FakeS3| -> Vec<Option<String>> {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .map(|r| r.header("if-match").map(str::to_owned))
            .collect()
    };
    // Success: the PUT carries If-Match with the ETag of the version that was read.
    let (server, store) = fake(Some("\"v1\""), 200);
    assert_eq!(r.rewrap(&store, "idx", "dev").unwrap().version, 2);
    assert_eq!(puts(&server), [Some("\"v1\"".to_owned())]);
    // 412: another write landed between the read and the PUT.
    let (server, store) = fake(Some("\"v1\""), 412);
    assert_eq!(
        r.rewrap(&store, "idx", "dev").unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(puts(&server).len(), 1);
    // No ETag: a conditional replace is impossible, so nothing is written.
    let (server, store) = fake(None, 200);
    let err = r.rewrap(&store, "idx", "dev").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("no ETag"), "{err:?}");
    assert!(puts(&server).is_empty());
}
