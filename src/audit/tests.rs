//! The chain walk on the memory log, tampered with directly.

use super::*;
use crate::{create_index_kms, delete_index_kms, push_index_kms, KmsBlob};

fn blob(version: u32) -> KmsBlob {
    KmsBlob {
        kms_name: "main".into(),
        provider: "aws-kms".into(),
        key_id: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            .into(),
        region: "us-east-1".into(),
        wrapped_kek: vec![7; 48],
        version,
        created_at: 1,
    }
}

/// A memory store with audit on and six records (seq 0..=5).
fn audited_memory() -> StorageConfig {
    let store = StorageConfig::memory()
        .with_audit(&AuditOptions::new("unit-test"))
        .unwrap();
    create_index_kms(&store, "a", &blob(1)).unwrap();
    push_index_kms(&store, "a", &blob(2)).unwrap();
    create_index_kms(&store, "b", &blob(1)).unwrap();
    push_index_kms(&store, "b", &blob(3)).unwrap();
    delete_index_kms(&store, "a").unwrap();
    delete_index_kms(&store, "b").unwrap();
    store
}

fn edit(store: &StorageConfig, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let log = store.backend().audit_log().as_any();
    log.downcast_ref::<memory::MemoryAuditLog>()
        .expect("a memory store")
        .edit_lines(edit);
}

fn first_break(store: &StorageConfig) -> (u64, AuditBreakKind) {
    let report = verify_audit(store).unwrap();
    let found = report.first_break.expect("a break");
    (found.seq, found.kind)
}

#[test]
fn an_intact_memory_chain_verifies_and_reads_back() {
    let store = audited_memory();
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 6);
    let records = read_audit(&store, 0, 100).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(report.head.unwrap().hash, records[5].hash);
    assert_eq!(records[0].prev_hash, [0; 32]);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    assert_eq!(records[0].event.name(), "created");
    assert_eq!(records[4].event, AuditEvent::Deleted);
    assert_eq!(read_audit(&store, 4, 1).unwrap()[0].seq, 4);
    assert_eq!(
        read_audit(&store, 0, 0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn each_kind_of_tampering_is_named_with_its_first_bad_seq() {
    // A changed field, hash left as it was.
    let store = audited_memory();
    edit(&store, |lines| {
        let line = String::from_utf8(lines[2].clone()).unwrap();
        lines[2] = line.replace("unit-test", "someone-else").into_bytes();
    });
    assert_eq!(first_break(&store), (2, AuditBreakKind::Changed));
    // A changed and re-hashed record: the next one no longer chains to it.
    let store = audited_memory();
    let mut records = read_audit(&store, 0, 10).unwrap();
    records[2].index = "forged".into();
    let forged = AuditRecord::new(
        2,
        records[2].time_ms,
        "forged",
        records[2].event.clone(),
        &records[2].actor,
        records[2].prev_hash,
    );
    edit(&store, |lines| {
        lines[2] = forged.to_line().trim_end().as_bytes().to_vec();
    });
    assert_eq!(first_break(&store), (2, AuditBreakKind::Changed));
    // Records 0 and 1 are what verified: the head is record 1, not the re-hashed record 2.
    let report = verify_audit(&store).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(report.head.map(|h| h.seq), Some(1));
    // A changed line claiming an earlier seq: changed where record 3 should be, not a fork.
    let store = audited_memory();
    edit(&store, |lines| {
        let line = String::from_utf8(lines[3].clone()).unwrap();
        lines[3] = line.replacen("\"seq\":3,", "\"seq\":1,", 1).into_bytes();
    });
    let report = verify_audit(&store).unwrap();
    let found = report.first_break.unwrap();
    assert_eq!((found.seq, found.kind), (3, AuditBreakKind::Changed));
    assert_eq!(report.records, 3);
    assert!(
        found
            .message
            .starts_with("where record 3 should be: record 1's content"),
        "{}",
        found.message
    );
    // Removed.
    let store = audited_memory();
    edit(&store, |lines| {
        lines.remove(3);
    });
    assert_eq!(first_break(&store), (3, AuditBreakKind::Removed));
    // Reordered.
    let store = audited_memory();
    edit(&store, |lines| lines.swap(1, 2));
    assert_eq!(first_break(&store), (1, AuditBreakKind::Reordered));
    // Truncated (a record cut short).
    let store = audited_memory();
    edit(&store, |lines| lines[5].truncate(40));
    assert_eq!(first_break(&store), (5, AuditBreakKind::Truncated));
    // A fork: a second record 3 on top of record 2.
    let store = audited_memory();
    let records = read_audit(&store, 0, 10).unwrap();
    let second = AuditRecord::new(
        3,
        1,
        "x",
        AuditEvent::Deleted,
        &records[2].actor,
        records[2].hash,
    );
    edit(&store, |lines| {
        lines.insert(4, second.to_line().trim_end().as_bytes().to_vec())
    });
    assert_eq!(first_break(&store), (3, AuditBreakKind::Fork));
    // Garbage where record 0 should be.
    let store = audited_memory();
    edit(&store, |lines| lines[0] = vec![0xff, 0, 1, 2]);
    assert_eq!(first_break(&store), (0, AuditBreakKind::Changed));
    assert_eq!(
        read_audit(&store, 0, 10).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    // Nothing is appended to a damaged head.
    edit(&store, |lines| lines[5] = b"{\"v\":1".to_vec());
    let err = push_index_kms(&store, "c", &blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert!(
        err.message().starts_with(
            "index \"c\": the audit record could not be appended, so nothing was changed: "
        ),
        "{err:?}"
    );
    assert_eq!(
        crate::get_index_kms(&store, "c").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_failed_write_is_followed_by_an_aborted_record() {
    let store = StorageConfig::memory()
        .with_audit(&AuditOptions::new("unit-test"))
        .unwrap();
    create_index_kms(&store, "a", &blob(1)).unwrap();
    let err = create_index_kms(&store, "a", &blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let records = read_audit(&store, 0, 10).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[2].event,
        AuditEvent::Aborted {
            of_seq: 1,
            error: "AlreadyExists".into()
        }
    );
    let AuditEvent::Created {
        mode,
        key,
        version,
        wrapped_sha256,
    } = &records[0].event
    else {
        panic!("{:?}", records[0].event)
    };
    assert_eq!(*mode, CreateMode::KmsBacked);
    assert_eq!(key.key_suffix, "1234567890ab");
    assert_eq!(key.slot, "main");
    assert_eq!(*version, 1);
    assert_eq!(*wrapped_sha256, wrapped_fingerprint(&[7; 48]));
}

#[test]
fn audit_options_are_checked_and_name_the_field() {
    for (options, field) in [
        (AuditOptions::new(""), "principal"),
        (AuditOptions::new("a\nb"), "principal"),
        (AuditOptions::new("x".repeat(257)), "principal"),
        (
            AuditOptions {
                principal: "ok".into(),
                host: Some(String::new()),
                unwrap_counts: None,
            },
            "host",
        ),
        (
            AuditOptions::new("ok").with_unwrap_counts(std::time::Duration::ZERO),
            "unwrap_counts",
        ),
    ] {
        let err = StorageConfig::memory().with_audit(&options).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message().starts_with(&format!("audit option {field} ")),
            "{err:?}"
        );
    }
    let store = StorageConfig::memory()
        .with_audit(&AuditOptions::new("svc"))
        .unwrap();
    let actor = store.audit_actor().unwrap();
    assert_eq!(actor.principal, "svc");
    assert_eq!(actor.pid, std::process::id());
    assert!(StorageConfig::memory().audit_actor().is_none());
}
