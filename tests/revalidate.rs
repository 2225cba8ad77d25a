//! Envelope revalidation across nodes (issue #13, part 3): another process's push, re-wrap or
//! delete in a shared store (a Disk root, an S3 prefix on moto) is seen by this process's
//! resolver after the revalidation interval — driven on a manual clock, never by sleeping — and
//! not before; an unchanged envelope is confirmed without a provider call; the interval comes
//! from the options or `CYB_KEK_REVALIDATE_SECS`, and hostile values are refused.
//!
//! The "other node" is this test binary re-run as a child process (`CYB_REVALIDATE_CHILD`), so
//! its writes are invisible to the parent's in-process write generations, exactly as a
//! different machine's would be.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::moto::{moto, unique};
use cyborgdb_kms::{
    Clock, ErrorKind, KekCacheOptions, KekResolver, KmsClient, KmsClientOptions, ManualClock,
    Provider, S3Credentials, S3Options, Slot, StorageConfig, MAX_REVALIDATE, REVALIDATE_ENV_VAR,
};

const INTERVAL: Duration = Duration::from_secs(2);
const CHILD: &str = "CYB_REVALIDATE_CHILD";

/// A local slot whose master key is the 32-byte file `dir/<name>.key` filled with `fill`.
fn local_slot(dir: &Path, name: &str, fill: u8) -> Slot {
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, [fill; 32]).unwrap();
    Slot {
        previous_keys: Vec::new(),
        provider: Provider::Local,
        key_id: format!("file:{}", path.display()),
        region: String::new(),
        assume_role: None,
    }
}

/// A client with slots `main` and `other`, their keys in `keys`.
fn client(keys: &Path) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot("main", local_slot(keys, "main", 1))
        .unwrap();
    client
        .add_slot("other", local_slot(keys, "other", 2))
        .unwrap();
    client
}

fn resolver(client: &KmsClient, revalidate: Duration) -> (KekResolver, ManualClock) {
    let clock = ManualClock::new();
    let resolver = KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(60)),
            clock: Clock::Manual(clock.clone()),
            revalidate: Some(revalidate),
            ..KekCacheOptions::default()
        },
    )
    .unwrap();
    (resolver, clock)
}

fn s3_options(endpoint: &str, prefix: &str) -> S3Options {
    S3Options {
        prefix: prefix.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
        ..S3Options::default()
    }
}

/// Where the shared store is, as the child gets it: `disk:<root>` or `s3:<endpoint> <bucket>`.
fn open_store(spec: &str) -> StorageConfig {
    if let Some(root) = spec.strip_prefix("disk:") {
        return StorageConfig::disk(root).unwrap();
    }
    let rest = spec.strip_prefix("s3:").unwrap();
    let (endpoint, bucket) = rest.split_once(' ').unwrap();
    StorageConfig::s3(bucket, s3_options(endpoint, "shared")).unwrap()
}

/// Runs `op` on `index` as another node (a child process) over the store `spec`.
fn other_node(keys: &Path, spec: &str, op: &str, index: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_node", "--nocapture"])
        .env(CHILD, format!("{op} {index} {}", keys.display()))
        .env("CYB_REVALIDATE_STORE", spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CHILD=done"),
        "{op}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The other node: `replace` (delete, then create with a fresh KEK), `rewrap` (same KEK through
/// slot `other`), or `delete`. Does nothing when not run as a child.
#[test]
fn child_node() {
    let Ok(command) = std::env::var(CHILD) else {
        return;
    };
    let mut words = command.splitn(3, ' ');
    let (op, index, keys) = (
        words.next().unwrap(),
        words.next().unwrap(),
        words.next().unwrap(),
    );
    let storage = open_store(&std::env::var("CYB_REVALIDATE_STORE").unwrap());
    let client = client(Path::new(keys));
    let (node, _clock) = resolver(&client, Duration::ZERO);
    match op {
        "replace" => {
            cyborgdb_kms::delete_index_kms(&storage, index).unwrap();
            node.create_index(&storage, index, Some("main"), None)
                .unwrap();
        }
        "rewrap" => {
            node.rewrap(&storage, index, "other").unwrap();
        }
        "delete" => cyborgdb_kms::delete_index_kms(&storage, index).unwrap(),
        other => panic!("unknown op {other}"),
    }
    println!("CHILD=done");
}

/// The scenario on one shared store: this node caches a KEK; the other node re-wraps, replaces
/// and deletes the envelope; each change is invisible until the interval passes and seen on
/// the first resolve after it, and unchanged envelopes cost no provider call.
fn changes_by_another_node_are_seen_after_the_interval(spec: &str) {
    let keys = tempfile::tempdir().unwrap();
    let client = client(keys.path());
    let storage = open_store(spec);
    let (node, clock) = resolver(&client, INTERVAL);
    let first = node
        .create_index(&storage, "idx", Some("main"), None)
        .unwrap();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    let calls = |node: &KekResolver| node.stats().provider_calls;
    assert_eq!(
        calls(&node),
        2,
        "one wrap at creation, one unwrap at the miss"
    );

    // Unchanged: past the interval the envelope is re-read and confirmed, no unwrap.
    clock.advance(INTERVAL);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(calls(&node), 2);
    assert_eq!(node.stats().misses, 2, "the check re-read the envelope");
    // ...and is fresh again for a whole interval: hits.
    clock.advance(INTERVAL - Duration::from_millis(1));
    let hits = node.stats().hits;
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(node.stats().hits, hits + 1);
    clock.advance(Duration::from_millis(1));

    // A re-wrap elsewhere (same KEK, new envelope): re-read, one unwrap, the same KEK.
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    other_node(keys.path(), spec, "rewrap", "idx");
    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(calls(&node), 2, "not seen before the interval");
    clock.advance(Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(calls(&node), 3, "the changed envelope was unwrapped");

    // A new KEK pushed elsewhere: the old one is served until the interval, then the new one.
    other_node(keys.path(), spec, "replace", "idx");
    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    clock.advance(Duration::from_millis(1));
    let second = node.resolve(&storage, "idx").unwrap();
    assert_ne!(second, first);
    assert_eq!(calls(&node), 4);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);

    // A delete elsewhere: served until the interval, then NotFound and the entry is gone.
    other_node(keys.path(), spec, "delete", "idx");
    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);
    clock.advance(Duration::from_millis(1));
    let entries = node.stats().entries;
    let err = node.resolve(&storage, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(node.stats().entries, entries - 1);
    assert_eq!(
        node.resolve(&storage, "idx").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(calls(&node), 4);
}

#[test]
fn disk_changes_by_another_process_are_seen_after_the_interval() {
    let root = tempfile::tempdir().unwrap();
    changes_by_another_node_are_seen_after_the_interval(&format!("disk:{}", root.path().display()));
}

#[test]
fn s3_changes_by_another_process_are_seen_after_the_interval() {
    let bucket = unique("cyb-reval");
    moto().create_bucket(&bucket);
    changes_by_another_node_are_seen_after_the_interval(&format!(
        "s3:{} {bucket}",
        moto().endpoint
    ));
}

/// Off (the default): another node's replacement is not seen within the TTL, as before.
#[test]
fn without_revalidation_another_nodes_change_waits_for_the_ttl() {
    let keys = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let spec = format!("disk:{}", root.path().display());
    let client = client(keys.path());
    let storage = open_store(&spec);
    let (node, clock) = resolver(&client, Duration::ZERO);
    assert_eq!(node.revalidate_interval(), Duration::ZERO);
    let first = node
        .create_index(&storage, "idx", Some("main"), None)
        .unwrap();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    other_node(keys.path(), &spec, "replace", "idx");
    clock.advance(Duration::from_secs(59));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    clock.advance(Duration::from_secs(1));
    assert_ne!(node.resolve(&storage, "idx").unwrap(), first);
}

#[test]
fn an_interval_above_the_bound_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let err = KekResolver::new(
        client(keys.path()),
        KekCacheOptions {
            revalidate: Some(MAX_REVALIDATE + Duration::from_millis(1)),
            ..KekCacheOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        err.message(),
        "the KEK envelope revalidation interval must be at most 3600s, not 3600.001s"
    );
}

#[test]
fn the_interval_comes_from_the_environment_when_not_given() {
    // Runs in a child process so the variable cannot leak into other tests.
    if let Ok(keys) = std::env::var("CYB_REVALIDATE_ENV_CHILD") {
        let options = KekCacheOptions::default();
        match KekResolver::new(client(Path::new(&keys)), options) {
            Ok(r) => println!("INTERVAL=ok:{}", r.revalidate_interval().as_secs()),
            Err(e) => println!("INTERVAL=err:{:?}:{}", e.kind(), e.message()),
        }
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let not_whole = |shown: &str| {
        format!(
            "err:InvalidConfig:{REVALIDATE_ENV_VAR} must be a whole number of seconds, not {shown}"
        )
    };
    let cases = [
        ("2", "ok:2".to_owned()),
        (" 5 ", "ok:5".to_owned()),
        ("", "ok:0".to_owned()),
        ("0", "ok:0".to_owned()),
        ("3600", "ok:3600".to_owned()),
        (
            "3601",
            "err:InvalidConfig:the KEK envelope revalidation interval must be at most 3600s, \
             not 3601s"
                .to_owned(),
        ),
        ("soon", not_whole("\"soon\"")),
        ("-1", not_whole("\"-1\"")),
        ("1.5", not_whole("\"1.5\"")),
        (
            "99999999999999999999",
            not_whole("\"99999999999999999999\""),
        ),
    ];
    for (value, expect) in cases {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "the_interval_comes_from_the_environment_when_not_given",
                "--nocapture",
            ])
            .env("CYB_REVALIDATE_ENV_CHILD", keys.path())
            .env(REVALIDATE_ENV_VAR, value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("INTERVAL={expect}\n")),
            "{value:?}: {stdout}"
        );
    }
}
