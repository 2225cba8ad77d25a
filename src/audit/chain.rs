//! [`verify_audit`]: walks a log's records in storage order and reports the first break.

use super::record::{AuditRecord, DecodeError};
use super::{too_many_records, Flow, StoredRecord, MAX_SCANNED_RECORDS};
use crate::error::Result;
use crate::storage::StorageConfig;

/// What kind of break [`verify_audit`] found. Each has a stable number for C (`kind as u32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AuditBreakKind {
    /// A record's content no longer matches its hash, is not a record, or does not chain to the
    /// record before it (that one was changed and re-hashed).
    Changed = 1,
    /// The record with the expected seq is missing, and no later one has it.
    Removed = 2,
    /// The record with the expected seq is stored later (or under another seq's key).
    Reordered = 3,
    /// A record is cut short: a torn last append or a truncated file or object.
    Truncated = 4,
    /// Two records claim one seq, or follow one record: two appenders extended the chain from
    /// the same head.
    Fork = 5,
}

impl AuditBreakKind {
    /// Lower-case name: `changed`, `removed`, `reordered`, `truncated`, `fork`.
    pub fn name(self) -> &'static str {
        match self {
            AuditBreakKind::Changed => "changed",
            AuditBreakKind::Removed => "removed",
            AuditBreakKind::Reordered => "reordered",
            AuditBreakKind::Truncated => "truncated",
            AuditBreakKind::Fork => "fork",
        }
    }
}

/// The first break in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    /// The first seq that is not trustworthy: the changed, missing, misplaced, cut or forked
    /// record's.
    pub seq: u64,
    /// What is wrong there.
    pub kind: AuditBreakKind,
    /// What was found, for people.
    pub message: String,
}

/// The last record of the intact part of a chain: keep `hash` outside the store (a ticket, a
/// write-once bucket) to detect later truncation or rewriting of the newest records, which the
/// chain alone cannot show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// What [`verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Records verified: those before the first break (all of them if there is none).
    pub records: u64,
    /// The last verified record, if any.
    pub head: Option<AuditHead>,
    /// The first break, or `None` if the chain is intact.
    pub first_break: Option<AuditBreak>,
}

impl AuditReport {
    /// Whether no break was found.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Walks `config`'s audit log from seq 0 and reports the first break: a changed, removed,
/// reordered or truncated record, or a fork. Reads each record once, bounded (at most
/// [`super::MAX_RECORD_LEN`] bytes each, [`MAX_SCANNED_RECORDS`] records). An empty or missing
/// log is intact with 0 records.
///
/// What it cannot see: the newest records removed or rewritten together with everything after
/// them (the chain ends earlier but is intact) — compare [`AuditReport::head`] with a head hash
/// kept elsewhere for that.
///
/// Errors: `Corrupt` (a stored line longer than any record, more than [`MAX_SCANNED_RECORDS`]
/// records), the store's (`Io`, `StorageUnavailable`, `StorageAccessDenied`). Breaks are not
/// errors: they are in the report.
pub fn verify_audit(config: &StorageConfig) -> Result<AuditReport> {
    let log = config.backend().audit_log();
    let mut walk = Walk::default();
    let mut position = 0u64;
    log.scan(0, &mut |stored| {
        position += 1;
        if position > MAX_SCANNED_RECORDS {
            return Err(too_many_records(&log.describe()));
        }
        Ok(walk.visit(&stored))
    })?;
    walk.finish();
    Ok(AuditReport {
        records: walk.verified,
        head: walk.last.as_ref().map(|last| AuditHead {
            seq: last.seq,
            hash: last.hash,
        }),
        first_break: walk.found,
    })
}

/// The state of one verification walk.
#[derive(Default)]
struct Walk {
    /// Records verified so far (= the seq the next one must have).
    verified: u64,
    /// The last verified record.
    last: Option<AuditRecord>,
    /// The one verified before it (the head again if `last` turns out to be re-hashed).
    before_last: Option<AuditRecord>,
    /// The break found, if any.
    found: Option<AuditBreak>,
    /// A record after the expected one came first: still looking for the expected one further on
    /// (then it was reordered; else removed).
    missing: Option<(u64, u64)>,
}

impl Walk {
    fn visit(&mut self, stored: &StoredRecord<'_>) -> Flow {
        if let Some((missing, seen)) = self.missing {
            let found = stored.complete
                && AuditRecord::decode(stored.line).is_ok_and(|record| record.seq == missing);
            if found {
                self.missing = None;
                self.found = Some(AuditBreak {
                    seq: missing,
                    kind: AuditBreakKind::Reordered,
                    message: format!(
                        "record {missing} is stored after record {seen}, out of order"
                    ),
                });
                return Flow::Stop;
            }
            return Flow::Continue;
        }
        let expected = self.verified;
        if !stored.complete {
            return self.stop(
                expected,
                AuditBreakKind::Truncated,
                format!(
                    "record {expected} is cut short (no end of line): an append torn by a crash, \
                     or a truncated log"
                ),
            );
        }
        let record = match AuditRecord::decode(stored.line) {
            Ok(record) => record,
            Err(DecodeError::Truncated) => {
                return self.stop(
                    expected,
                    AuditBreakKind::Truncated,
                    format!("record {expected} is cut short: {}", DecodeError::Truncated),
                )
            }
            // The seq the line states is part of what was changed: the break is where the walk
            // is (a changed line claiming an earlier seq is not a fork of a verified record).
            Err(why @ DecodeError::HashMismatch { seq }) => {
                let message = if seq == expected {
                    why.to_string()
                } else {
                    format!("where record {expected} should be: {why}")
                };
                return self.stop(expected, AuditBreakKind::Changed, message);
            }
            Err(why @ DecodeError::Malformed(_)) => {
                return self.stop(
                    expected,
                    AuditBreakKind::Changed,
                    format!("where record {expected} should be: {why}"),
                )
            }
        };
        let seq = record.seq;
        if seq < expected {
            return self.stop(
                seq,
                AuditBreakKind::Fork,
                format!(
                    "a second record {seq} follows record {}: two appenders extended the chain \
                     from one head",
                    expected - 1
                ),
            );
        }
        if seq > expected {
            self.missing = Some((expected, seq));
            return Flow::Continue;
        }
        let prev_expected = self.last.as_ref().map_or([0; 32], |last| last.hash);
        if record.prev_hash != prev_expected {
            return match &self.last {
                None => self.stop(
                    0,
                    AuditBreakKind::Changed,
                    "record 0 does not start the chain (its prev is not 32 zero bytes)".into(),
                ),
                Some(last) if last.prev_hash == record.prev_hash => self.stop(
                    seq,
                    AuditBreakKind::Fork,
                    format!(
                        "records {} and {seq} both follow the same record: two appenders \
                         extended the chain from one head",
                        last.seq
                    ),
                ),
                Some(last) => {
                    let changed = last.seq;
                    // Record `changed` is not trustworthy after all: the verified part ends
                    // before it.
                    self.verified -= 1;
                    self.last = self.before_last.take();
                    self.stop(
                        changed,
                        AuditBreakKind::Changed,
                        format!(
                            "record {seq} does not chain to record {changed}: record {changed} was \
                             changed (and re-hashed), or records between them were removed and \
                             the rest renumbered"
                        ),
                    )
                }
            };
        }
        if let Some(key_seq) = stored.key_seq {
            if key_seq != seq {
                return self.stop(
                    seq,
                    AuditBreakKind::Reordered,
                    format!("record {seq} is stored under the key of record {key_seq}"),
                );
            }
        }
        self.verified += 1;
        self.before_last = self.last.replace(record);
        Flow::Continue
    }

    fn stop(&mut self, seq: u64, kind: AuditBreakKind, message: String) -> Flow {
        self.found = Some(AuditBreak { seq, kind, message });
        Flow::Stop
    }

    /// The end of the log: a record still missing was removed.
    fn finish(&mut self) {
        if let Some((missing, seen)) = self.missing.take() {
            self.found = Some(AuditBreak {
                seq: missing,
                kind: AuditBreakKind::Removed,
                message: format!(
                    "record {missing} is missing: record {seen} follows record {}",
                    missing.wrapping_sub(1)
                ),
            });
        }
    }
}
