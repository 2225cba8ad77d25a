//! The disk store's audit log: one append-only segment, `<root>/.audit/log.jsonl`, one record
//! per line.
//!
//! An append opens the segment (`O_APPEND`, never following a link, non-blocking), takes an
//! exclusive `flock` on it — as envelope writers lock the root: released by the OS if the process
//! dies — reads the last line to find the head (one `pread` of at most two records' length, so
//! an append costs the same however long the log is), writes the new line with one `write`, and
//! `fdatasync`s before unlocking. So appenders of every thread and process serialize, and each
//! new record chains to the one before it. A custody change's record is appended without the
//! `fdatasync` (`append_unsynced`); the disk store runs [`AuditLog::sync`] while it writes the
//! envelope's temp file and publishes only after it returned.
//!
//! A crash (SIGKILL, power loss) during an append can leave a torn last line (no newline). That
//! record was never acknowledged — its appender died before the store was written, since changes
//! are recorded before they are made — so the next append, holding the lock, cuts the torn bytes
//! off (logged on `cyborgdb_kms::audit`) and appends after the last whole record. Until then
//! [`super::verify_audit`] reports the torn line as `Truncated` at its seq.
//!
//! A last line that is whole but not a valid record is not repaired: appending to it would
//! extend a chain that no longer verifies, so the append fails with `Corrupt` (and the change it
//! announces is not made) until an operator has looked (see `docs/audit.md`).
//!
//! Readers (verify, read) take a shared lock only to read the segment's length, then read up to
//! that length without a lock: everything before it is whole records, as appends finish under
//! the exclusive lock.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::{AuditRecord, MAX_RECORD_LEN};
use super::{overlong_record, AuditLog, Flow, Head, StoredRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::fs_bounded::{open_regular, Symlinks};
use crate::logging::{log_event, LogLevel, TARGET_AUDIT};

/// The directory of the audit log under the store's root (never an envelope name: storage keys
/// have no `.`).
pub(crate) const AUDIT_DIR: &str = ".audit";
/// The segment's file name.
pub(crate) const AUDIT_SEGMENT: &str = "log.jsonl";
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// The audit log of the disk store at one root. Holds no descriptor between calls.
pub(crate) struct DiskAuditLog {
    root: PathBuf,
    dir: PathBuf,
    path: PathBuf,
}

impl DiskAuditLog {
    pub(crate) fn new(root: &Path) -> Self {
        let dir = root.join(AUDIT_DIR);
        DiskAuditLog {
            root: root.to_path_buf(),
            path: dir.join(AUDIT_SEGMENT),
            dir,
        }
    }

    fn io_error(&self, action: &str, cause: &io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("audit log at {:?}: cannot {action}: {cause}", self.path),
        )
    }

    fn corrupt(&self, why: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Corrupt,
            format!("audit log at {:?} is corrupt: {why}", self.path),
        )
    }

    /// Opens the segment for appending, creating it (and the directories, made durable) on the
    /// first append. Refuses anything but a regular file (`O_NOFOLLOW`: not through a link).
    fn open_segment(&self) -> Result<File> {
        let open = |create: bool| {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(create)
                .mode(FILE_MODE)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&self.path)
        };
        let file = match open(false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(&self.dir)
                    .map_err(|e| self.io_error("create its directory", &e))?;
                let file = open(true).map_err(|e| self.io_error("create it", &e))?;
                sync_dir(&self.dir)
                    .and_then(|()| sync_dir(&self.root))
                    .map_err(|e| self.io_error("fsync its directory", &e))?;
                file
            }
            Err(e) => return Err(self.io_error("open it", &e)),
        };
        let metadata = file.metadata().map_err(|e| self.io_error("stat it", &e))?;
        if !metadata.is_file() {
            return Err(self.io_error(
                "use it",
                &io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        Ok(file)
    }

    /// The head of the segment `file` of `len` bytes, and the length of its whole lines (less
    /// than `len` if the last line is torn). Reads at most two records' length from the end.
    fn read_head(&self, file: &File, len: u64) -> Result<(Option<Head>, u64)> {
        if len == 0 {
            return Ok((None, 0));
        }
        let window = len.min(2 * MAX_RECORD_LEN as u64);
        let start = len - window;
        let mut tail = vec![0u8; window as usize];
        file.read_exact_at(&mut tail, start)
            .map_err(|e| self.io_error("read its last record", &e))?;
        // The end of the last whole line (just past its newline), relative to `start`.
        let whole_end = match tail.iter().rposition(|b| *b == b'\n') {
            Some(at) => at + 1,
            None if start == 0 => 0, // only a torn first record
            None => return Err(self.corrupt("its last line is longer than any record")),
        };
        let valid_len = start + whole_end as u64;
        if whole_end == 0 {
            return Ok((None, valid_len));
        }
        let body = &tail[..whole_end - 1];
        let line_start = match body.iter().rposition(|b| *b == b'\n') {
            Some(at) => at + 1,
            None if start == 0 => 0,
            None => return Err(self.corrupt("its last line is longer than any record")),
        };
        let record = AuditRecord::decode(&body[line_start..]).map_err(|why| {
            self.corrupt(format_args!(
                "its last record is damaged ({why}); nothing is appended to a broken chain \
                 (run verify_audit)"
            ))
        })?;
        Ok((
            Some(Head {
                seq: record.seq,
                hash: record.hash,
            }),
            valid_len,
        ))
    }
}

impl DiskAuditLog {
    /// Appends under the lock; `fdatasync`s before unlocking if `durable`.
    fn append_locked(
        &self,
        build: &mut dyn FnMut(Option<Head>) -> AuditRecord,
        durable: bool,
    ) -> Result<AuditRecord> {
        let mut file = self.open_segment()?;
        file.lock().map_err(|e| self.io_error("lock it", &e))?;
        let len = file
            .metadata()
            .map_err(|e| self.io_error("stat it", &e))?
            .len();
        let (head, valid_len) = self.read_head(&file, len)?;
        if valid_len < len {
            file.set_len(valid_len)
                .map_err(|e| self.io_error("cut off a torn last record", &e))?;
            log_event!(
                LogLevel::Warn,
                TARGET_AUDIT,
                "audit log at {:?}: removed a torn last record ({} bytes, an append cut short \
                 by a crash; its change was never made) before appending",
                self.path,
                len - valid_len
            );
        }
        let record = build(head);
        let line = record.to_line();
        if line.len() > MAX_RECORD_LEN {
            return Err(Error::invalid_argument(format!(
                "audit record for index {} is {} bytes, more than {MAX_RECORD_LEN}",
                crate::error::quoted_prefix(&record.index),
                line.len()
            )));
        }
        file.write_all(line.as_bytes())
            .and_then(|()| if durable { file.sync_data() } else { Ok(()) })
            .map_err(|e| self.io_error("append to it", &e))?;
        drop(file); // closing releases the lock
        Ok(record)
    }
}

impl AuditLog for DiskAuditLog {
    fn append(&self, build: &mut dyn FnMut(Option<Head>) -> AuditRecord) -> Result<AuditRecord> {
        self.append_locked(build, true)
    }

    /// Written under the lock but not `fdatasync`ed: a later appender chains after it, and an
    /// `fdatasync` of the segment (by [`AuditLog::sync`] or any appender) flushes it with
    /// everything before it, so a crash can lose only a tail of records whose changes were never
    /// published.
    fn append_unsynced(
        &self,
        build: &mut dyn FnMut(Option<Head>) -> AuditRecord,
    ) -> Result<AuditRecord> {
        self.append_locked(build, false)
    }

    fn sync(&self) -> Result<()> {
        self.open_segment()?
            .sync_data()
            .map_err(|e| self.io_error("fdatasync it", &e))
    }

    fn scan(
        &self,
        _from_seq: u64,
        visit: &mut dyn FnMut(StoredRecord<'_>) -> Result<Flow>,
    ) -> Result<()> {
        let file = match open_regular(&self.path, Symlinks::Refuse) {
            Ok((file, _)) => file,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "audit log at {:?}: cannot {} it: {e}",
                        self.path,
                        e.action()
                    ),
                ))
            }
        };
        // Everything before the length read under the shared lock is whole records.
        file.lock_shared()
            .map_err(|e| self.io_error("lock it", &e))?;
        let len = file.metadata().map_err(|e| self.io_error("stat it", &e));
        file.unlock().map_err(|e| self.io_error("unlock it", &e))?;
        let mut reader = BufReader::with_capacity(64 * 1024, file.take(len?.len()));
        let mut line = Vec::with_capacity(1024);
        let mut position = 0u64;
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_RECORD_LEN as u64)
                .read_until(b'\n', &mut line)
                .map_err(|e| self.io_error("read it", &e))?;
            if read == 0 {
                return Ok(());
            }
            position += 1;
            let complete = line.last() == Some(&b'\n');
            if !complete && line.len() == MAX_RECORD_LEN {
                return Err(overlong_record(&self.describe(), position));
            }
            let body = if complete {
                &line[..line.len() - 1]
            } else {
                &line[..]
            };
            let stored = StoredRecord {
                key_seq: None,
                line: body,
                complete,
            };
            if let Flow::Stop = visit(stored)? {
                return Ok(());
            }
        }
    }

    fn describe(&self) -> String {
        format!("{:?}", self.path)
    }

    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
