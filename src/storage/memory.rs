//! The in-process backend of [`crate::StorageConfig::memory`].

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::{Revision, Sidecar};
use crate::error::{Error, Result};
use crate::index_name::IndexName;

/// Envelopes in a map behind a reader-writer lock: every operation is one map access under the
/// lock, so each is atomic and creates have exactly one winner. The map is keyed by storage key,
/// as the disk and S3 stores are, so listing and reading by key work the same on every backend.
#[derive(Default)]
pub(crate) struct MemoryStore {
    envelopes: RwLock<HashMap<String, Vec<u8>>>,
    audit: crate::audit::memory::MemoryAuditLog,
    /// Sidecar objects, keyed by storage key + suffix (apart, so they are never listed).
    sidecars: RwLock<HashMap<String, Vec<u8>>>,
}

impl super::EnvelopeBackend for MemoryStore {
    fn create(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        let key = index.storage_key();
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match envelopes.entry(key) {
            Entry::Occupied(_) => Err(Error::already_exists(index)),
            Entry::Vacant(slot) => {
                slot.insert(bytes.to_vec());
                Ok(())
            }
        }
    }

    fn put(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        let key = index.storage_key();
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        envelopes.insert(key, bytes.to_vec());
        Ok(())
    }

    fn get(&self, index: &IndexName) -> Result<Option<Vec<u8>>> {
        self.get_by_key(&index.storage_key())
    }

    fn replace_if(&self, index: &IndexName, expected: &Revision, bytes: &[u8]) -> Result<()> {
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match envelopes.get_mut(&index.storage_key()) {
            Some(stored) if Revision::of(stored, None).digest == expected.digest => {
                *stored = bytes.to_vec();
                Ok(())
            }
            _ => Err(super::conflict(index)),
        }
    }

    fn delete(&self, index: &IndexName) -> Result<()> {
        let key = index.storage_key();
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        envelopes.remove(&key);
        Ok(())
    }

    fn location(&self, index: &IndexName) -> String {
        format!("memory store entry {index}")
    }

    fn list_keys(&self) -> Result<Vec<String>> {
        let envelopes = self
            .envelopes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(envelopes.keys().cloned().collect())
    }

    fn get_by_key(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let envelopes = self
            .envelopes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(envelopes.get(key).cloned())
    }

    fn key_location(&self, key: &str) -> String {
        format!("memory store entry with storage key {key}")
    }

    fn audit_log(&self) -> &dyn crate::audit::AuditLog {
        &self.audit
    }

    fn create_sidecar(&self, index: &IndexName, kind: Sidecar, bytes: &[u8]) -> Result<()> {
        let key = index.storage_key() + kind.suffix();
        let mut sidecars = self
            .sidecars
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match sidecars.entry(key) {
            Entry::Occupied(_) => Err(Error::already_exists(index)),
            Entry::Vacant(slot) => {
                slot.insert(bytes.to_vec());
                Ok(())
            }
        }
    }

    fn get_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<Option<Vec<u8>>> {
        let key = index.storage_key() + kind.suffix();
        let sidecars = self.sidecars.read().unwrap_or_else(PoisonError::into_inner);
        Ok(sidecars.get(&key).cloned())
    }

    fn delete_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<()> {
        let key = index.storage_key() + kind.suffix();
        let mut sidecars = self
            .sidecars
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        sidecars.remove(&key);
        Ok(())
    }

    fn sidecar_location(&self, index: &IndexName, kind: Sidecar) -> String {
        format!("memory store entry {index} ({})", kind.suffix())
    }
}
