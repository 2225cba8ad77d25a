//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fake_s3;
pub mod fault_peer;
pub mod moto;

use cyborgdb_kms::{get_index_kms, ErrorKind, KmsBlob, StorageConfig};
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
