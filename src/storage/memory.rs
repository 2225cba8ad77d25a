//! The in-process backend of [`crate::StorageConfig::memory`].

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::error::{Error, Result};
use crate::index_name::IndexName;

/// Envelopes in a map behind a reader-writer lock: every operation is one map access under the
/// lock, so each is atomic and creates have exactly one winner.
#[derive(Default)]
pub(crate) struct MemoryStore {
    envelopes: RwLock<HashMap<String, Vec<u8>>>,
}

impl super::EnvelopeBackend for MemoryStore {
    fn create(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match envelopes.entry(index.as_str().to_owned()) {
            Entry::Occupied(_) => Err(Error::already_exists(index)),
            Entry::Vacant(slot) => {
                slot.insert(bytes.to_vec());
                Ok(())
            }
        }
    }

    fn put(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        envelopes.insert(index.as_str().to_owned(), bytes.to_vec());
        Ok(())
    }

    fn get(&self, index: &IndexName) -> Result<Option<Vec<u8>>> {
        let envelopes = self
            .envelopes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(envelopes.get(index.as_str()).cloned())
    }

    fn delete(&self, index: &IndexName) -> Result<()> {
        let mut envelopes = self
            .envelopes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        envelopes.remove(index.as_str());
        Ok(())
    }

    fn location(&self, index: &IndexName) -> String {
        format!("memory store entry {index}")
    }
}
