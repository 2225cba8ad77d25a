//! The S3 store's audit log: one object per record, `<prefix>.audit/<seq, 20 digits>`, holding
//! the record's line (newline included). Zero-padded keys list in seq order.
//!
//! An append writes the object of seq head + 1 with `If-None-Match: *`: of appenders racing from
//! the same head on any number of nodes exactly one wins; a loser (412) lists what was appended
//! after the head it knew (`ListObjectsV2` with `start-after`), reads the newest record, and
//! tries again on top of it, up to [`MAX_APPEND_ATTEMPTS`] times. So racing appenders serialize
//! on the chain instead of forking it. The head is remembered per store, so an append with no
//! competitor is one `PutObject`; the first in a process lists the log once to find the head.
//! A 409 `ConditionalRequestConflict` (a write to the same key in flight) is retried the same way.
//!
//! Scans list the log page by page and read each record with its own bounded `GetObject`
//! ([`MAX_RECORD_LEN`] bytes). Objects under the audit prefix whose names are not 20 digits are
//! not records and are skipped. A listing that goes backwards, repeats a token or runs past
//! [`MAX_AUDIT_PAGES`] pages is `Io`.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};

use super::{PutCondition, PutFailure, S3Store};
use crate::audit::{AuditLog, AuditRecord, Flow, Head, StoredRecord, MAX_RECORD_LEN};
use crate::error::{Error, ErrorKind, Result, Subject};

/// Directory of the audit records under the store's prefix.
const AUDIT_DIR: &str = ".audit/";
/// Digits of a record object's name.
const SEQ_DIGITS: usize = 20;
/// Most conditional creates one append tries before giving up (each loss means another
/// appender's record went in: the chain moved on).
pub(crate) const MAX_APPEND_ATTEMPTS: u32 = 64;
/// Most listing pages one scan or head search requests (1 000 records each).
const MAX_AUDIT_PAGES: usize = 50_000;

/// One page of the audit listing: record seqs in key order, and the next page's token.
struct AuditPage {
    seqs: Vec<u64>,
    next: Option<String>,
}

impl S3Store {
    fn audit_prefix(&self) -> String {
        format!("{}{AUDIT_DIR}", self.settings.prefix)
    }

    fn audit_key(&self, seq: u64) -> String {
        format!("{}{seq:0width$}", self.audit_prefix(), width = SEQ_DIGITS)
    }

    fn remembered_head(&self) -> Option<Head> {
        *self
            .audit_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `head` if it is newer than the one remembered.
    fn remember_head(&self, head: Head) {
        let mut known = self
            .audit_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.is_none_or(|known| known.seq < head.seq) {
            *known = Some(head);
        }
    }

    fn audit_io(&self, why: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Io,
            format!(
                "{}: S3 ListObjectsV2 {} failed: {why}",
                Subject::Audit,
                self.location_of(&self.audit_prefix())
            ),
        )
    }

    /// One page of the audit listing, after `start_after` (first page) or at `token`.
    async fn audit_page(
        &self,
        client: &Client,
        start_after: Option<String>,
        token: Option<String>,
    ) -> Result<AuditPage> {
        let prefix = self.audit_prefix();
        let output = client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .set_expected_bucket_owner(self.settings.expected_bucket_owner.clone())
            .prefix(&prefix)
            .delimiter("/")
            .set_start_after(if token.is_none() { start_after } else { None })
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.failure(Subject::Audit, "ListObjectsV2", &prefix, &e))?;
        let seqs = output
            .contents()
            .iter()
            .filter_map(|object| object.key()?.strip_prefix(prefix.as_str()))
            .filter(|name| name.len() == SEQ_DIGITS && name.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|name| name.parse().ok())
            .collect();
        let next = match (
            output.is_truncated() == Some(true),
            output.next_continuation_token(),
        ) {
            (false, _) => None,
            (true, Some(token)) if token.len() <= 4096 => Some(token.to_owned()),
            (true, Some(_)) => return Err(self.audit_io("an over-long continuation token")),
            (true, None) => return Err(self.audit_io("a truncated page without a token")),
        };
        Ok(AuditPage { seqs, next })
    }

    /// Lists the record seqs after `after` page by page, handing each page to `page` until it
    /// returns `Stop`. Seqs must rise strictly; tokens must not repeat; pages are bounded.
    fn list_audit(
        &self,
        after: Option<u64>,
        page: &mut dyn FnMut(&[u64]) -> Result<Flow>,
    ) -> Result<()> {
        let client = self.run(async {
            Ok(self
                .client(Subject::Audit, "ListObjectsV2", &self.audit_prefix())
                .await?
                .clone())
        })?;
        let start_after = after.map(|seq| self.audit_key(seq));
        let mut token: Option<String> = None;
        let mut tokens = HashSet::new();
        let mut last = after;
        for _ in 0..MAX_AUDIT_PAGES {
            let listed = self.run(self.audit_page(&client, start_after.clone(), token.take()))?;
            for seq in &listed.seqs {
                if last.is_some_and(|last| *seq <= last) {
                    return Err(self.audit_io("the listing went backwards or repeated a record"));
                }
                last = Some(*seq);
            }
            if let Flow::Stop = page(&listed.seqs)? {
                return Ok(());
            }
            match listed.next {
                None => return Ok(()),
                Some(next) => {
                    if !tokens.insert(<[u8; 32]>::from(Sha256::digest(next.as_bytes()))) {
                        return Err(self.audit_io("a continuation token came back"));
                    }
                    token = Some(next);
                }
            }
        }
        Err(self.audit_io(format_args!("more than {MAX_AUDIT_PAGES} pages")))
    }

    /// The stored bytes of record `seq`'s object (at most [`MAX_RECORD_LEN`] + 1), or `None`.
    fn read_audit_object(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        let key = self.audit_key(seq);
        let object = self.run(self.get_object_bounded(Subject::Audit, &key, MAX_RECORD_LEN))?;
        Ok(object.map(|(bytes, _)| bytes))
    }

    /// The newest record after `after` (listing from there), or `after` if there is none newer.
    ///
    /// Errors: `Corrupt` if the newest record does not decode or is stored under another seq
    /// (appending to it would extend a broken chain); the listing's and read's errors.
    fn find_audit_head(&self, after: Option<Head>) -> Result<Option<Head>> {
        let mut newest = None;
        self.list_audit(after.map(|head| head.seq), &mut |seqs| {
            if let Some(seq) = seqs.last() {
                newest = Some(*seq);
            }
            Ok(Flow::Continue)
        })?;
        let Some(seq) = newest else {
            return Ok(after);
        };
        let location = self.location_of(&self.audit_key(seq));
        let damaged = |why: String| {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{}: the last record, at {location}, is damaged ({why}); nothing is appended \
                     to a broken chain (run verify_audit)",
                    Subject::Audit
                ),
            )
        };
        let bytes = self
            .read_audit_object(seq)?
            .ok_or_else(|| damaged("listed, then gone".into()))?;
        let line = bytes
            .strip_suffix(b"\n")
            .ok_or_else(|| damaged("no end of line: cut short".into()))?;
        let record = AuditRecord::decode(line).map_err(|why| damaged(why.to_string()))?;
        if record.seq != seq {
            return Err(damaged(format!("it holds record {}", record.seq)));
        }
        let head = Head {
            seq,
            hash: record.hash,
        };
        self.remember_head(head);
        Ok(Some(head))
    }
}

impl AuditLog for S3Store {
    fn append(&self, build: &mut dyn FnMut(Option<Head>) -> AuditRecord) -> Result<AuditRecord> {
        let mut head = match self.remembered_head() {
            Some(head) => Some(head),
            None => self.find_audit_head(None)?,
        };
        for attempt in 1..=MAX_APPEND_ATTEMPTS {
            let record = build(head);
            let key = self.audit_key(record.seq);
            let line = record.to_line();
            let put = self.run(async {
                Ok(self
                    .put_object(
                        Subject::Audit,
                        "PutObject",
                        &key,
                        line.as_bytes(),
                        PutCondition::Absent,
                    )
                    .await)
            })?;
            match put {
                Ok(()) => {
                    self.remember_head(Head {
                        seq: record.seq,
                        hash: record.hash,
                    });
                    return Ok(record);
                }
                Err(PutFailure::Exists) => {}
                Err(PutFailure::Conflict(_)) => {
                    // The other write's outcome decides ours; look again shortly.
                    std::thread::sleep(Duration::from_millis(10 * u64::from(attempt.min(10))));
                }
                Err(PutFailure::Other(e)) => return Err(e),
            }
            head = self.find_audit_head(head)?;
        }
        Err(Error::new(
            ErrorKind::StorageUnavailable,
            format!(
                "{}: S3 PutObject under {} lost the race to other appenders \
                 {MAX_APPEND_ATTEMPTS} times; gave up",
                Subject::Audit,
                self.location_of(&self.audit_prefix())
            ),
        ))
    }

    fn scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(StoredRecord<'_>) -> Result<Flow>,
    ) -> Result<()> {
        let after = from_seq.checked_sub(1);
        self.list_audit(after, &mut |seqs| {
            for seq in seqs {
                let Some(bytes) = self.read_audit_object(*seq)? else {
                    continue; // deleted since it was listed: as if never listed
                };
                if bytes.len() > MAX_RECORD_LEN {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "{}: stored record at {} is corrupt: longer than any record \
                             ({MAX_RECORD_LEN} bytes)",
                            Subject::Audit,
                            self.location_of(&self.audit_key(*seq))
                        ),
                    ));
                }
                let (line, complete) = match bytes.strip_suffix(b"\n") {
                    Some(line) => (line, true),
                    None => (&bytes[..], false),
                };
                let stored = StoredRecord {
                    key_seq: Some(*seq),
                    line,
                    complete,
                };
                if let Flow::Stop = visit(stored)? {
                    return Ok(Flow::Stop);
                }
            }
            Ok(Flow::Continue)
        })
    }

    fn describe(&self) -> String {
        self.location_of(&self.audit_prefix())
    }

    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
