//! A relative Disk path is resolved when the config is made. Alone in its own test binary because
//! it changes the process-wide current directory.

mod common;

use common::aws_kms_blob;
use cyborgdb_kms::{get_index_kms, push_index_kms, StorageConfig};

#[test]
fn a_relative_root_is_resolved_when_the_config_is_made() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    std::env::set_current_dir(first.path()).unwrap();
    let store = StorageConfig::disk("keystore").unwrap();
    std::env::set_current_dir(second.path()).unwrap();
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    assert!(first.path().join("keystore/idx.kms").is_file());
    assert!(!second.path().join("keystore").exists());
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
}
