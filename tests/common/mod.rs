//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fake_s3;
pub mod fault_peer;
pub mod local;
pub mod log_scan;
pub mod moto;

use cyborgdb_kms::{
    get_index_kms, ErrorKind, KmsBlob, KmsClient, KmsClientOptions, Provider, Slot, StorageConfig,
};
use std::path::Path;

/// A realistic aws-kms envelope; `tag` varies the wrapped bytes and version so blobs differ.
pub fn aws_kms_blob(tag: u8) -> KmsBlob {
    KmsBlob {
        kms_name: "prod-kms".into(),
        provider: "aws-kms".into(),
        key_id: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            .into(),
        region: "us-east-1".into(),
        wrapped_kek: (0..184u32)
            .map(|i| (i as u8).wrapping_mul(31) ^ tag)
            .collect(),
        version: u32::from(tag),
        created_at: 1_700_000_000 + i64::from(tag),
    }
}

pub fn none_blob() -> KmsBlob {
    KmsBlob {
        provider: "none".into(),
        version: 1,
        created_at: 1_700_000_000,
        ..KmsBlob::default()
    }
}

/// A fresh Memory store and a fresh Disk store (with the temp dir that holds it).
pub fn both_stores() -> Vec<(&'static str, StorageConfig, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let disk = StorageConfig::disk(dir.path().join("root")).unwrap();
    vec![
        ("memory", StorageConfig::memory(), None),
        ("disk", disk, Some(dir)),
    ]
}

/// File names in `dir`, sorted; empty if it does not exist.
pub fn file_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that reading `name` from `store` fails with `Corrupt` naming the index; returns the
/// message.
pub fn assert_corrupt(store: &StorageConfig, name: &str) -> String {
    let err = get_index_kms(store, name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert!(
        err.message().starts_with(&format!("index {name:?}: ")),
        "{}",
        err.message()
    );
    err.message().to_owned()
}

/// Index names that stress the storage-key encoding: path-like, case, escapes, control
/// characters, other scripts, and names long enough to be stored under a hashed key (`~…`),
/// including several that differ only past the readable limit.
pub fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "my_index",
        "My Index",
        "a",
        "A",
        "%41",
        "%",
        "~",
        "~root",
        ".",
        "..",
        "../../etc/passwd",
        "/abs",
        "a/b",
        "a\\b",
        "x.kms",
        ".cyborgdb-kms.1.2.3.tmp",
        " ",
        "nul-free \u{7f}\u{1b}[31m\n\t",
        "é",
        "e\u{301}",
        "鍵の索引",
        "emoji 🔑",
    ]
    .map(String::from)
    .to_vec();
    names.extend([
        "a".repeat(200),                 // the longest readable key
        format!("{}A", "a".repeat(198)), // 201 characters encoded: hashed
        "z".repeat(255),
        "鍵".repeat(85),
        "鍵".repeat(84),
        format!("{}x", "é".repeat(127)),
        format!("{}y", "é".repeat(127)),
    ]);
    names
}

/// `names`, sorted as `list_index_kms` returns them.
pub fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names
}

/// A KMS client reaching AWS at `endpoint` (moto or a fault peer) with one `aws-kms` slot named
/// `slot` on key `key_id` in us-east-1.
#[allow(dead_code)] // not every test binary uses it
pub fn aws_kms_client(endpoint: &str, slot: &str, key_id: &str) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        ..KmsClientOptions::default()
    })
    .unwrap();
    let aws_kms = Slot::new(Provider::AwsKms, key_id, "us-east-1");
    client.add_slot(slot, aws_kms).unwrap();
    client
}

/// Custody audit under concurrent appenders: `threads` threads push `each` envelopes each
/// (`t<thread>-<i>`), every thread through its own audited store from `store_for(actor)` (its own
/// descriptors or clients, as separate processes have). Then, read through `checker`, the chain
/// must be intact and hold exactly one record per push.
pub fn assert_threads_append_one_chain(
    threads: usize,
    each: usize,
    store_for: impl Fn(&str) -> StorageConfig + Sync,
    checker: &StorageConfig,
) {
    use cyborgdb_kms::audit::{read_audit, verify_audit};
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store_for = &store_for;
            scope.spawn(move || {
                let store = store_for(&format!("thread-{t}"));
                for i in 0..each {
                    cyborgdb_kms::push_index_kms(&store, &format!("t{t}-{i}"), &none_blob())
                        .unwrap();
                }
            });
        }
    });
    let report = verify_audit(checker).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, (threads * each) as u64);
    let records = read_audit(checker, 0, threads * each + 1).unwrap();
    for t in 0..threads {
        for i in 0..each {
            let index = format!("t{t}-{i}");
            assert_eq!(
                records.iter().filter(|r| r.index == index).count(),
                1,
                "{index}"
            );
        }
    }
}
