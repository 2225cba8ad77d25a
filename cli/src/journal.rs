//! The re-wrap journal: makes `rewrap` resumable after Ctrl-C, SIGKILL or a crash, with every
//! index re-wrapped exactly once.
//!
//! A JSON-lines file: a header naming the store and target slot, then per index an *intent*
//! (`{"intent": name, "version": V}`, written and fsync'ed before the re-wrap of the envelope
//! read at version V) and, after it succeeded, a *done* record (`{"done": name, "version":
//! V+1}`). A re-run reads it: done indexes are skipped; an index with an intent but no done
//! record is done if its stored envelope is now version V+1 under the target slot's current
//! key (the re-wrap landed, the record did not), is re-wrapped if still at V, and is reported as
//! changed by another writer otherwise. The library's compare-and-swap prevents lost updates;
//! the journal prevents a second bump.
//!
//! Intents are fsync'ed with group commit: concurrent workers share one `fdatasync`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::report::CliError;

/// The default journal path, in the current directory.
pub const DEFAULT_JOURNAL: &str = "cyborgdb-kms-rewrap.journal";
/// Longest journal line read (index names are far shorter); longer is a damaged journal.
const MAX_LINE: u64 = 64 * 1024;
/// Format marker of the header line.
const FORMAT: &str = "cyborgdb-kms rewrap journal v1";

#[derive(Serialize, Deserialize)]
struct Header {
    journal: String,
    store: String,
    to: String,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Record {
    Intent { intent: String, version: u32 },
    Done { done: String, version: u32 },
}

/// What an earlier run recorded for one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Intent to re-wrap the envelope read at this version; no done record.
    Intent(u32),
    /// Re-wrapped (to this version).
    Done(u32),
}

/// An open journal. Thread-safe.
pub struct Journal {
    path: PathBuf,
    recorded: HashMap<String, Recorded>,
    writer: Mutex<Writer>,
    synced: Condvar,
}

struct Writer {
    file: File,
    /// Records written so far, and how many of them an fdatasync has covered.
    written: u64,
    synced: u64,
    syncing: bool,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for re-wrapping `store` to slot `to`; `fresh`
    /// discards what an earlier run recorded.
    ///
    /// Errors: usage errors (exit 2) if the journal is for another store or slot, is not a
    /// journal, or cannot be read or written.
    pub fn open(path: &Path, store: &str, to: &str, fresh: bool) -> Result<Journal, CliError> {
        let shown = path.display();
        let io = |what: &str, e: std::io::Error| {
            CliError::usage(format!("journal {shown}: cannot {what}: {e}"))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io("open", e))?;
        if fresh {
            file.set_len(0).map_err(|e| io("truncate", e))?;
        }
        let mut recorded = HashMap::new();
        let mut header_seen = false;
        // Bytes of the complete records read; a torn record after them is cut off.
        let mut complete_len = 0u64;
        let mut torn = false;
        {
            let mut reader = BufReader::new(&file);
            let mut line = Vec::new();
            let mut number = 0u64;
            loop {
                line.clear();
                let n = (&mut reader)
                    .take(MAX_LINE + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| io("read", e))?;
                if n == 0 {
                    break;
                }
                number += 1;
                if line.len() as u64 > MAX_LINE {
                    return Err(CliError::usage(format!(
                        "journal {shown}: line {number} is longer than {MAX_LINE} bytes: not a re-wrap journal"
                    )));
                }
                if line.last() != Some(&b'\n') {
                    // A record torn by a crash mid-write: it never took effect (its fsync
                    // did not return), so it is cut off.
                    torn = true;
                    break;
                }
                complete_len += n as u64;
                if !header_seen {
                    let header: Header = serde_json::from_slice(&line)
                        .ok()
                        .filter(|h: &Header| h.journal == FORMAT)
                        .ok_or_else(|| {
                            CliError::usage(format!(
                                "journal {shown}: not a cyborgdb-kms re-wrap journal (pass another --journal)"
                            ))
                        })?;
                    if header.store != store || header.to != to {
                        return Err(CliError::usage(format!(
                            "journal {shown} belongs to a re-wrap of {:?} to slot {:?}, not of {store:?} to slot {to:?}: \
                             finish that one, pass another --journal, or --fresh to discard it",
                            header.store, header.to
                        )));
                    }
                    header_seen = true;
                    continue;
                }
                match serde_json::from_slice::<Record>(&line) {
                    Ok(Record::Intent { intent, version }) => {
                        recorded.insert(intent, Recorded::Intent(version));
                    }
                    Ok(Record::Done { done, version }) => {
                        recorded.insert(done, Recorded::Done(version));
                    }
                    Err(e) => {
                        return Err(CliError::usage(format!(
                            "journal {shown}: line {number} is damaged ({e})"
                        )))
                    }
                }
            }
        }
        if torn {
            file.set_len(complete_len).map_err(|e| io("truncate", e))?;
        }
        if !header_seen {
            let header = Header {
                journal: FORMAT.to_owned(),
                store: store.to_owned(),
                to: to.to_owned(),
            };
            let mut line = serde_json::to_vec(&header).expect("header serializes");
            line.push(b'\n');
            file.write_all(&line).map_err(|e| io("write", e))?;
            file.sync_data().map_err(|e| io("fsync", e))?;
        }
        Ok(Journal {
            path: path.to_owned(),
            recorded,
            writer: Mutex::new(Writer {
                file,
                written: 0,
                synced: 0,
                syncing: false,
            }),
            synced: Condvar::new(),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What an earlier run recorded for `index`.
    pub fn recorded(&self, index: &str) -> Option<Recorded> {
        self.recorded.get(index).copied()
    }

    /// The indexes an earlier run recorded intent for (selected then, whatever selects now).
    pub fn indexes(&self) -> impl Iterator<Item = &str> {
        self.recorded.keys().map(String::as_str)
    }

    /// Records, durably, the intent to re-wrap `index`'s envelope read at `version`: returns
    /// once the record is on disk. Errors: `Io` if it cannot be written or synced (then the
    /// index must not be re-wrapped).
    pub fn intent(&self, index: &str, version: u32) -> std::io::Result<()> {
        let record = Record::Intent {
            intent: index.to_owned(),
            version,
        };
        let mine = self.append(&record)?;
        self.sync_through(mine)
    }

    /// Records that `index` was re-wrapped to `version` (not synced: a lost done record is
    /// recovered from the stored envelope).
    pub fn done(&self, index: &str, version: u32) -> std::io::Result<()> {
        let record = Record::Done {
            done: index.to_owned(),
            version,
        };
        self.append(&record).map(drop)
    }

    /// Writes one record as one `write` call; returns its sequence number.
    fn append(&self, record: &Record) -> std::io::Result<u64> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.file.write_all(&line)?;
        writer.written += 1;
        Ok(writer.written)
    }

    /// Group commit: waits until an fdatasync that started after record `seq` was written has
    /// finished, starting one if none is running.
    fn sync_through(&self, seq: u64) -> std::io::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if writer.synced >= seq {
                return Ok(());
            }
            if !writer.syncing {
                writer.syncing = true;
                let covers = writer.written;
                let file = writer.file.try_clone();
                drop(writer);
                let result = file.and_then(|f| f.sync_data());
                writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
                writer.syncing = false;
                if result.is_ok() {
                    writer.synced = writer.synced.max(covers);
                }
                self.synced.notify_all();
                result?;
                continue;
            }
            writer = self
                .synced
                .wait(writer)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_record_is_ignored_and_the_next_starts_on_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let journal = Journal::open(&path, "store", "slot", false).unwrap();
            journal.intent("a", 1).unwrap();
            journal.done("a", 2).unwrap();
            journal.intent("b", 7).unwrap();
        }
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"intent\":\"c\",\"vers").unwrap();
        let journal = Journal::open(&path, "store", "slot", false).unwrap();
        assert_eq!(journal.recorded("a"), Some(Recorded::Done(2)));
        assert_eq!(journal.recorded("b"), Some(Recorded::Intent(7)));
        assert_eq!(journal.recorded("c"), None);
        journal.intent("d", 3).unwrap();
        drop(journal);
        let journal = Journal::open(&path, "store", "slot", false).unwrap();
        assert_eq!(journal.recorded("d"), Some(Recorded::Intent(3)));
        // Another store or slot is refused; --fresh starts over.
        assert!(matches!(
            Journal::open(&path, "store", "other", false),
            Err(CliError::Usage(_))
        ));
        let fresh = Journal::open(&path, "store", "other", true).unwrap();
        assert_eq!(fresh.recorded("a"), None);
    }

    #[test]
    fn a_damaged_middle_record_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        drop(Journal::open(&path, "store", "slot", false).unwrap());
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"garbage\n{\"intent\":\"a\",\"version\":1}\n")
            .unwrap();
        let Err(CliError::Usage(message)) = Journal::open(&path, "store", "slot", false) else {
            panic!("accepted a damaged journal");
        };
        assert!(
            message.starts_with(&format!("journal {}: line 2 is damaged (", path.display())),
            "{message}"
        );
    }
}
