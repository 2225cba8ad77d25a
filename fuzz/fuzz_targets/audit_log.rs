//! The custody audit's reader: the strict record decoder (`AuditRecord::decode`, through the
//! `fuzzing` feature) and `verify_audit` / `read_audit` over a disk log holding the same bytes.
//!
//! The first input byte picks a mode; the rest is the input:
//! - even: one line to the decoder;
//! - odd: the bytes stored as `<root>/.audit/log.jsonl`, then verified and read.
//!
//! Invariants: no panic; a line that decodes is exactly its record's canonical line (one
//! encoding per record), and the record's hash is the SHA-256 the line states; a log that
//! verifies intact reads back record by record as exactly its bytes, `records` of them; errors
//! are `Corrupt` (or `Io`) with short messages; rejection reasons stay short.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cyborgdb_kms::audit::{read_audit, verify_audit, AuditBreakKind, MAX_READ_LIMIT};
use cyborgdb_kms::fuzzing::decode_audit_line;
use cyborgdb_kms::{ErrorKind, StorageConfig};
use libfuzzer_sys::fuzz_target;

/// Longest rejection reason or error message accepted.
const MAX_REASON_LEN: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_line(input);
    } else {
        check_log(input);
    }
});

fn check_line(line: &[u8]) {
    match decode_audit_line(line) {
        Ok(record) => {
            let canonical = record.to_line();
            assert_eq!(
                canonical.as_bytes(),
                [line, b"\n"].concat().as_slice(),
                "a decoded line is not its record's canonical line"
            );
            assert!(
                canonical.ends_with(&format!(",\"hash\":\"{}\"}}\n", hex(&record.hash))),
                "the record's hash is not the one the line states"
            );
        }
        Err(reason) => assert!(reason.len() <= MAX_REASON_LEN, "{} byte reason", reason.len()),
    }
}

fn check_log(bytes: &[u8]) {
    let root = root();
    let dir = root.join(".audit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("log.jsonl"), bytes).unwrap();
    let store = StorageConfig::disk(&root).unwrap();
    let report = match verify_audit(&store) {
        Ok(report) => report,
        Err(e) => {
            assert!(matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Io), "{e:?}");
            assert!(e.message().len() <= MAX_REASON_LEN, "{e:?}");
            return;
        }
    };
    if let Some(b) = &report.first_break {
        assert!(b.message.len() <= MAX_REASON_LEN, "{report:?}");
        if b.kind != AuditBreakKind::Fork {
            // Records before the break verified; the break is at the next seq.
            assert_eq!(b.seq, report.records, "{report:?}");
        }
        return;
    }
    if report.records > MAX_READ_LIMIT as u64 {
        return;
    }
    let records = read_audit(&store, 0, MAX_READ_LIMIT).expect("an intact log reads");
    assert_eq!(records.len() as u64, report.records);
    let lines: String = records.iter().map(|r| r.to_line()).collect();
    assert_eq!(lines.as_bytes(), bytes, "an intact log is not exactly its records' lines");
    if let (Some(head), Some(last)) = (&report.head, records.last()) {
        assert_eq!(head.seq, last.seq);
        assert_eq!(head.hash, last.hash);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One scratch store directory per process, reused by every run.
fn root() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("store")
}
