//! The memory store's audit log: its lines in a vector behind a mutex, shared by every clone of
//! the store and gone with it.

use std::sync::{Mutex, PoisonError};

use super::record::AuditRecord;
use super::{AuditLog, Flow, Head, StoredRecord};
use crate::error::{Error, ErrorKind, Result};

/// Stored lines (each without its newline) in append order.
#[derive(Default)]
pub(crate) struct MemoryAuditLog {
    lines: Mutex<Vec<Vec<u8>>>,
}

impl MemoryAuditLog {
    /// Runs `edit` on the stored lines (tests tamper with them through this).
    #[cfg(test)]
    pub(crate) fn edit_lines(&self, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
        edit(&mut self.lines.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl AuditLog for MemoryAuditLog {
    fn append(&self, build: &mut dyn FnMut(Option<Head>) -> AuditRecord) -> Result<AuditRecord> {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let head = match lines.last() {
            None => None,
            Some(last) => {
                let record = AuditRecord::decode(last).map_err(|why| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "audit log at {}: its last record is damaged ({why}); nothing is \
                             appended to a broken chain",
                            self.describe()
                        ),
                    )
                })?;
                Some(Head {
                    seq: record.seq,
                    hash: record.hash,
                })
            }
        };
        let record = build(head);
        let mut line = record.to_line().into_bytes();
        line.pop();
        lines.push(line);
        Ok(record)
    }

    fn scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(StoredRecord<'_>) -> Result<Flow>,
    ) -> Result<()> {
        let _ = from_seq;
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for line in &lines {
            let stored = StoredRecord {
                key_seq: None,
                line,
                complete: true,
            };
            if let Flow::Stop = visit(stored)? {
                break;
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
