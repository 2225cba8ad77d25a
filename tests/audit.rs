//! The custody audit on Disk (and through the resolver): chain integrity, every kind of
//! tampering named with its first bad seq, concurrent appenders (threads and processes), SIGKILL
//! during appends, hostile log files, no secret in any record, and what audit off costs.
//! S3 is in tests/audit_s3.rs.

mod common;

use common::local::{local_client, local_client_with, local_slot};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cyborgdb_kms::audit::{
    read_audit, verify_audit, AuditBreakKind, AuditEvent, AuditOptions, AuditRecord, CreateMode,
};
use cyborgdb_kms::{
    create_index_kms, delete_index_kms, get_index_kms, push_index_kms, DriftStatus, ErrorKind,
    KekCacheOptions, KekResolver, KeyIdentity, Provider, Slot, StorageConfig,
};

use common::{aws_kms_blob, none_blob};

/// Set in a child process: what it does (see `child_appender`).
const CHILD: &str = "CYB_AUDIT_CHILD";

fn log_path(root: &Path) -> PathBuf {
    root.join(".audit").join("log.jsonl")
}

fn audited_disk(root: &Path, principal: &str) -> StorageConfig {
    StorageConfig::disk(root)
        .unwrap()
        .with_audit(&AuditOptions::new(principal))
        .unwrap()
}

/// An audited disk store under a temp dir with six records (seq 0..=5).
fn six_records() -> (tempfile::TempDir, StorageConfig) {
    let dir = tempfile::tempdir().unwrap();
    let store = audited_disk(&dir.path().join("root"), "tester");
    create_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, "a", &aws_kms_blob(2)).unwrap();
    create_index_kms(&store, "b", &none_blob()).unwrap();
    push_index_kms(&store, "b", &aws_kms_blob(3)).unwrap();
    delete_index_kms(&store, "a").unwrap();
    delete_index_kms(&store, "b").unwrap();
    (dir, store)
}

fn lines(root: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(log_path(root)).unwrap();
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(root: &Path, lines: &[Vec<u8>]) {
    std::fs::write(log_path(root), lines.concat()).unwrap();
}

fn first_break(store: &StorageConfig) -> (u64, AuditBreakKind, String) {
    let report = verify_audit(store).unwrap();
    let found = report.first_break.expect("a break");
    (found.seq, found.kind, found.message)
}

#[test]
fn an_intact_disk_chain_verifies_and_records_each_change() {
    let (dir, store) = six_records();
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 6);
    let records = read_audit(&store, 0, 100).unwrap();
    let names: Vec<_> = records.iter().map(|r| r.event.name()).collect();
    assert_eq!(
        names,
        ["created", "pushed", "created", "pushed", "deleted", "deleted"]
    );
    assert_eq!(records[0].index, "a");
    assert_eq!(records[0].actor.principal, "tester");
    assert_eq!(records[0].actor.pid, std::process::id());
    match &records[2].event {
        AuditEvent::Created { mode, key, .. } => {
            assert_eq!(*mode, CreateMode::CallerSupplied);
            assert_eq!(key.provider, "none");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.head.unwrap().seq, 5);
    assert_eq!(report.head.unwrap().hash, records[5].hash);
    // An unaudited config of the same root reads and verifies the same log.
    let plain = StorageConfig::disk(dir.path().join("root")).unwrap();
    assert_eq!(verify_audit(&plain).unwrap(), report);
    // read_audit pages.
    let page: Vec<u64> = read_audit(&plain, 2, 3)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page, [2, 3, 4]);
    // Each line is one JSON object.
    let text = std::fs::read_to_string(log_path(&dir.path().join("root"))).unwrap();
    assert_eq!(text.lines().count(), 6);
    assert!(text.starts_with("{\"v\":1,\"seq\":0,"), "{text}");
}

#[test]
fn audit_off_writes_no_log_and_a_missing_log_verifies_empty() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = StorageConfig::disk(&root).unwrap();
    create_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, "a", &aws_kms_blob(2)).unwrap();
    delete_index_kms(&store, "a").unwrap();
    assert!(!root.join(".audit").exists());
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact());
    assert_eq!((report.records, report.head), (0, None));
    assert!(read_audit(&store, 0, 10).unwrap().is_empty());
}

#[test]
fn tampering_on_disk_is_named_with_its_first_bad_seq_and_kind() {
    // A changed field.
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let mut edited = lines(&root);
    edited[2] = String::from_utf8(edited[2].clone())
        .unwrap()
        .replace("\"b\"", "\"c\"")
        .into_bytes();
    write_lines(&root, &edited);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (2, AuditBreakKind::Changed), "{message}");
    assert_eq!(
        message,
        "record 2's content does not match its hash: it was changed after it was written"
    );

    // A changed record with its hash recomputed: the next record no longer chains to it.
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let records = read_audit(&store, 0, 10).unwrap();
    let r = &records[3];
    let forged = AuditRecord::new(
        r.seq,
        r.time_ms,
        "other",
        r.event.clone(),
        &r.actor,
        r.prev_hash,
    );
    let mut edited = lines(&root);
    edited[3] = forged.to_line().into_bytes();
    write_lines(&root, &edited);
    assert_eq!(first_break(&store).0, 3);
    assert_eq!(first_break(&store).1, AuditBreakKind::Changed);

    // A removed record.
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let mut edited = lines(&root);
    edited.remove(1);
    write_lines(&root, &edited);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (1, AuditBreakKind::Removed), "{message}");
    assert_eq!(message, "record 1 is missing: record 2 follows record 0");

    // Two records swapped.
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let mut edited = lines(&root);
    edited.swap(3, 4);
    write_lines(&root, &edited);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (3, AuditBreakKind::Reordered), "{message}");

    // The last record cut short.
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let len = std::fs::metadata(log_path(&root)).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(log_path(&root))
        .unwrap();
    file.set_len(len - 30).unwrap();
    let (seq, kind, _) = first_break(&store);
    assert_eq!((seq, kind), (5, AuditBreakKind::Truncated));
    assert_eq!(verify_audit(&store).unwrap().records, 5);

    // A record in the middle cut short.
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let mut edited = lines(&root);
    edited[2].truncate(50);
    edited[2].push(b'\n');
    write_lines(&root, &edited);
    assert_eq!(
        (first_break(&store).0, first_break(&store).1),
        (2, AuditBreakKind::Truncated)
    );

    // A fork: two appenders extend the chain from one head (a copy of the log appended to
    // without the lock, then merged back).
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let copy_root = dir.path().join("copy");
    std::fs::create_dir_all(copy_root.join(".audit")).unwrap();
    std::fs::copy(log_path(&root), log_path(&copy_root)).unwrap();
    let copy = audited_disk(&copy_root, "intruder");
    push_index_kms(&store, "x", &aws_kms_blob(4)).unwrap();
    push_index_kms(&copy, "x", &aws_kms_blob(5)).unwrap();
    let mut merged = lines(&root);
    merged.push(lines(&copy_root)[6].clone());
    write_lines(&root, &merged);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (6, AuditBreakKind::Fork), "{message}");
    // The same fork written as a second record 6 right after the first.
    let mut merged = lines(&root);
    merged.swap(6, 7);
    merged.truncate(7);
    merged.push(lines(&root)[6].clone());
    write_lines(&root, &merged);
    assert_eq!(first_break(&store).1, AuditBreakKind::Fork);
    assert_eq!(first_break(&store).0, 6);
}

#[test]
fn truncating_the_newest_records_is_seen_only_against_an_exported_head() {
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    let exported = verify_audit(&store).unwrap().head.unwrap();
    let mut edited = lines(&root);
    edited.truncate(4);
    write_lines(&root, &edited);
    let report = verify_audit(&store).unwrap();
    // The chain alone is intact...
    assert!(report.is_intact());
    // ...but it no longer reaches the head kept elsewhere.
    assert_eq!(report.head.unwrap().seq, 3);
    assert_ne!(report.head.unwrap(), exported);
}

#[test]
fn a_torn_last_record_is_reported_then_cut_off_by_the_next_append() {
    let (dir, store) = six_records();
    let root = dir.path().join("root");
    // As a crash mid-append leaves it: part of a line, no newline.
    let mut torn = lines(&root);
    let partial = torn[5][..20].to_vec();
    torn.push(partial);
    write_lines(&root, &torn);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (6, AuditBreakKind::Truncated), "{message}");
    // read skips it.
    assert_eq!(read_audit(&store, 0, 100).unwrap().len(), 6);
    // The next append removes the torn bytes and chains to record 5.
    push_index_kms(&store, "c", &aws_kms_blob(9)).unwrap();
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 7);
    // A torn first record too.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join(".audit")).unwrap();
    std::fs::write(log_path(&root), b"{\"v\":1,\"se").unwrap();
    let store = audited_disk(&root, "tester");
    assert_eq!(
        (first_break(&store).0, first_break(&store).1),
        (0, AuditBreakKind::Truncated)
    );
    create_index_kms(&store, "a", &none_blob()).unwrap();
    assert!(verify_audit(&store).unwrap().is_intact());
}

#[test]
fn hostile_log_files_give_corrupt_errors_with_bounded_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join(".audit")).unwrap();
    let store = audited_disk(&root, "tester");
    // One huge line (64 MiB, no newline): refused after one record's length.
    std::fs::write(log_path(&root), vec![b'{'; 64 << 20]).unwrap();
    for err in [
        verify_audit(&store).unwrap_err(),
        read_audit(&store, 0, 10).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
        assert!(
            err.message()
                .contains("longer than any record (16384 bytes)"),
            "{err:?}"
        );
    }
    let err = create_index_kms(&store, "a", &none_blob()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert!(err
        .message()
        .contains("its last line is longer than any record"));
    assert_eq!(
        get_index_kms(&store, "a").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Binary garbage in lines: not records.
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(log_path(&root), &garbage).unwrap();
    let report = verify_audit(&store).unwrap();
    let found = report.first_break.unwrap();
    assert_eq!((found.seq, report.records), (0, 0));
    assert!(
        matches!(
            found.kind,
            AuditBreakKind::Changed | AuditBreakKind::Truncated
        ),
        "{found:?}"
    );
    assert_eq!(
        read_audit(&store, 0, 10).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    std::fs::write(log_path(&root), b"\x00\xff garbage\n").unwrap();
    let err = push_index_kms(&store, "a", &none_blob()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert!(err.message().starts_with(
        "index \"a\": the audit record could not be appended, so nothing was changed: "
    ));
    // A FIFO at the log's name: an error at once, never a hang.
    std::fs::remove_file(log_path(&root)).unwrap();
    let fifo =
        std::ffi::CString::new(log_path(&root).into_os_string().into_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert_eq!(verify_audit(&store).unwrap_err().kind(), ErrorKind::Io);
    assert_eq!(
        create_index_kms(&store, "a", &none_blob())
            .unwrap_err()
            .kind(),
        ErrorKind::Io
    );
}

#[test]
fn an_unwritable_log_fails_the_change_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    // `.audit` is a file: the log cannot be created.
    std::fs::write(root.join(".audit"), b"not a directory").unwrap();
    let store = audited_disk(&root, "tester");
    let err = create_index_kms(&store, "a", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert!(
        err.message().starts_with(
            "index \"a\": the audit record could not be appended, so nothing was changed: audit log at "
        ),
        "{err:?}"
    );
    assert_eq!(
        get_index_kms(&store, "a").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // The unaudited config writes as before.
    let plain = StorageConfig::disk(&root).unwrap();
    create_index_kms(&plain, "a", &aws_kms_blob(1)).unwrap();
    assert_eq!(
        delete_index_kms(&store, "a").unwrap_err().kind(),
        ErrorKind::Io
    );
    assert!(get_index_kms(&plain, "a").is_ok());
}

#[test]
fn concurrent_threads_leave_one_unbroken_chain_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    common::assert_threads_append_one_chain(
        8,
        25,
        |actor| audited_disk(&root, actor),
        &StorageConfig::disk(&root).unwrap(),
    );
}

/// Runs this test binary as a child doing `command` on `root`, with stdout piped.
fn spawn_child(command: &str, root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, command)
        .env("CYB_AUDIT_ROOT", root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A child: `push N TAG` pushes N envelopes, printing `appended <i>` after each, then `done`;
/// `loop TAG` pushes until killed. Does nothing when not run as a child.
#[test]
fn child_appender() {
    let Ok(command) = std::env::var(CHILD) else {
        return;
    };
    let root = PathBuf::from(std::env::var("CYB_AUDIT_ROOT").unwrap());
    let store = audited_disk(&root, "child");
    let words: Vec<&str> = command.split(' ').collect();
    let (count, tag) = match words.as_slice() {
        ["push", n, tag] => (n.parse::<usize>().unwrap(), *tag),
        ["loop", tag] => (usize::MAX, *tag),
        _ => panic!("unknown command {command}"),
    };
    for i in 0..count {
        push_index_kms(&store, &format!("{tag}-{i}"), &aws_kms_blob(1)).unwrap();
        println!("appended {i}");
    }
    println!("done");
}

#[test]
fn concurrent_processes_leave_one_unbroken_chain_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    const CHILDREN: usize = 4;
    const EACH: usize = 30;
    let children: Vec<_> = (0..CHILDREN)
        .map(|c| spawn_child(&format!("push {EACH} p{c}"), &root))
        .collect();
    // The parent appends too, meanwhile.
    let store = audited_disk(&root, "parent");
    for i in 0..EACH {
        push_index_kms(&store, &format!("parent-{i}"), &none_blob()).unwrap();
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("done"));
    }
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, ((CHILDREN + 1) * EACH) as u64);
    let records = read_audit(&store, 0, 10_000).unwrap();
    let mut pids: Vec<u32> = records.iter().map(|r| r.actor.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), CHILDREN + 1);
    for c in 0..CHILDREN {
        for i in 0..EACH {
            let index = format!("p{c}-{i}");
            assert_eq!(records.iter().filter(|r| r.index == index).count(), 1);
        }
    }
}

#[test]
fn sigkill_during_appends_never_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = audited_disk(&root, "parent");
    let mut acknowledged = 0u64;
    for round in 0..12u64 {
        let mut child = spawn_child(&format!("loop r{round}"), &root);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // Kill after the child has said it appended `1 + round % 5` records: it is then in
        // its next append (or between two), wherever the signal lands.
        let wanted = 1 + round % 5;
        let mut line = String::new();
        let mut seen = 0;
        while seen < wanted {
            line.clear();
            assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "the child ended");
            // The test harness prints its own lines too.
            if line.starts_with("appended") {
                seen += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        acknowledged += wanted;
        let report = verify_audit(&store).unwrap();
        match &report.first_break {
            None => {}
            // A torn last append: reported at the record after the verified ones.
            Some(found) => {
                assert_eq!(found.kind, AuditBreakKind::Truncated, "{found:?}");
                assert_eq!(found.seq, report.records);
            }
        }
        assert!(report.records >= acknowledged, "{report:?}");
        // The parent appends on top: the chain is whole again.
        push_index_kms(&store, &format!("parent-{round}"), &none_blob()).unwrap();
        acknowledged += 1;
        let report = verify_audit(&store).unwrap();
        assert!(report.is_intact(), "{report:?}");
    }
}

#[test]
fn the_resolver_records_creates_rewraps_drift_and_refused_keys_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let client = local_client_with(dir.path(), &[("main", 0x11), ("other", 0x22)]);
    // A BYOK slot with an ExternalId: it must never reach a record.
    let external_id = "ExternalId-SECRET-5f0c2a9e";
    client
        .add_slot(
            "byok",
            Slot::from_fields(
                "byok",
                "aws-kms",
                "arn:aws:kms:us-east-1:111122223333:key/abcd",
                "us-east-1",
                "arn:aws:iam::111122223333:role/cyborg",
                external_id,
                "",
            )
            .unwrap(),
        )
        .unwrap();
    let resolver = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    resolver
        .set_audit(Some(&AuditOptions::new("resolver")))
        .unwrap();
    // A plain store: the resolver's setting audits it.
    let root = dir.path().join("root");
    let store = StorageConfig::disk(&root).unwrap();
    let kek = resolver
        .create_index(&store, "orders", Some("main"), None)
        .unwrap();
    let caller_key = [0x5a; 32];
    resolver
        .create_index(&store, "own", None, Some(&caller_key))
        .unwrap();
    resolver.rewrap(&store, "orders", "other").unwrap();
    // Rotate slot "other" to a new key, keeping the old one trusted: drift.
    let old_other = format!("file:{}", dir.path().join("other.key").display());
    let mut rotated = local_slot(dir.path(), "other-new", 0x33);
    rotated.previous_keys.push(KeyIdentity {
        provider: Provider::Local,
        key_id: old_other.clone(),
        region: String::new(),
    });
    client.add_slot("other", rotated).unwrap();
    let drift = resolver.check_drift(&store, true).unwrap();
    assert_eq!(drift[0].status, DriftStatus::Rewrapped, "{drift:?}");
    // An envelope naming slot byok with a key byok does not trust: refused, recorded.
    let mut foreign = aws_kms_blob(1);
    foreign.kms_name = "byok".into();
    push_index_kms(&store, "foreign", &foreign).unwrap();
    let err = resolver.resolve(&store, "foreign").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey);
    // A repeat within the minute is not recorded again.
    resolver.resolve(&store, "foreign").unwrap_err();

    let records = read_audit(&store, 0, 100).unwrap();
    let names: Vec<_> = records
        .iter()
        .map(|r| (r.index.as_str(), r.event.name()))
        .collect();
    assert_eq!(
        names,
        [
            ("orders", "created"),
            ("own", "created"),
            ("orders", "rewrapped"),
            ("orders", "drift_detected"),
            ("orders", "rewrapped"),
            ("foreign", "untrusted_key"),
        ],
        "{records:#?}"
    );
    // The push of "foreign" went through the plain store: not audited.
    match &records[2].event {
        AuditEvent::Rewrapped {
            from,
            to,
            from_version,
            to_version,
            ..
        } => {
            assert_eq!((from.slot.as_str(), to.slot.as_str()), ("main", "other"));
            assert_eq!((*from_version, *to_version), (1, 2));
            let main_id = format!("file:{}", dir.path().join("main.key").display());
            let tail: Vec<char> = main_id.chars().collect();
            let expected: String = tail[tail.len() - 12..].iter().collect();
            assert_eq!(from.key_suffix, expected);
            assert_eq!(to.key_suffix.chars().count(), 12);
        }
        other => panic!("{other:?}"),
    }
    match &records[3].event {
        AuditEvent::DriftDetected { stored, configured } => {
            assert!(stored.key_suffix.ends_with("other.key"));
            assert!(configured.key_suffix.ends_with("her-new.key"));
        }
        other => panic!("{other:?}"),
    }
    assert!(verify_audit(&store).unwrap().is_intact());

    // No secret in any record: KEKs, wrapped KEKs, master keys, the ExternalId, as raw bytes
    // or hex.
    let log = std::fs::read(log_path(&root)).unwrap();
    let text = String::from_utf8(log.clone()).unwrap();
    let envelope = get_index_kms(&store, "orders").unwrap();
    let mut secrets: Vec<Vec<u8>> = vec![
        kek.as_bytes().to_vec(),
        caller_key.to_vec(),
        envelope.wrapped_kek.clone(),
        vec![0x11; 32],
        vec![0x22; 32],
        vec![0x33; 32],
        external_id.as_bytes().to_vec(),
    ];
    secrets.extend(secrets.clone().iter().map(|s| hex::encode(s).into_bytes()));
    for (i, secret) in secrets.iter().enumerate() {
        // Any 8-byte window of a raw secret, any 16-character window of its hex.
        let width = if i < 7 { 8 } else { 16 };
        for window in secret.windows(width) {
            assert!(
                !log.windows(window.len()).any(|w| w == window),
                "a secret's bytes are in the audit log"
            );
        }
    }
    assert!(!text.contains("ExternalId"));
    assert!(!text.contains("role/cyborg"));
}

#[test]
fn the_registry_audit_setting_audits_every_store_the_resolver_acts_on() {
    let dir = tempfile::tempdir().unwrap();
    let client = local_client();
    client
        .load_registry_yaml("audit:\n  principal: from-yaml\nkms:\n  registry: ~\n")
        .unwrap();
    client
        .add_slot("main", local_slot(dir.path(), "main", 0x44))
        .unwrap();
    let resolver = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    let store = StorageConfig::disk(dir.path().join("root")).unwrap();
    resolver
        .create_index(&store, "a", Some("main"), None)
        .unwrap();
    // The resolver's own setting wins over the registry's.
    resolver
        .set_audit(Some(&AuditOptions::new("from-resolver")))
        .unwrap();
    resolver
        .create_index(&store, "b", Some("main"), None)
        .unwrap();
    // A store audited itself keeps its own principal.
    let own = store.with_audit(&AuditOptions::new("from-store")).unwrap();
    resolver
        .create_index(&own, "c", Some("main"), None)
        .unwrap();
    // Off in the resolver and a registry without the setting: nothing is recorded.
    resolver.set_audit(None).unwrap();
    client.load_registry_yaml("kms:\n  registry: ~\n").unwrap();
    client
        .add_slot("main", local_slot(dir.path(), "main", 0x44))
        .unwrap();
    resolver
        .create_index(&store, "d", Some("main"), None)
        .unwrap();
    let principals: Vec<_> = read_audit(&store, 0, 10)
        .unwrap()
        .into_iter()
        .map(|r| (r.index, r.actor.principal))
        .collect();
    assert_eq!(
        principals,
        [
            ("a".to_owned(), "from-yaml".to_owned()),
            ("b".to_owned(), "from-resolver".to_owned()),
            ("c".to_owned(), "from-store".to_owned()),
        ]
    );
    let err = resolver
        .set_audit(Some(&AuditOptions::new("bad\u{7}")))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
