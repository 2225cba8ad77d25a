//! Rotation: re-wrapping an index's KEK under a slot, and the drift check that compares every
//! stored envelope's key snapshot with the registry.

use super::KekResolver;
use crate::audit::{self, AuditEvent, AuditKey};
use crate::blob::{KmsBlob, Provider};
use crate::envelope::{list_index_kms, read_envelope, replace_index_kms_if};
use crate::error::{Error, Result};
use crate::index_name::IndexName;
use crate::kms::client::trusted_key;
use crate::kms::Slot;
use crate::logging::{log_event, LogLevel, TARGET_RESOLVER};
use crate::storage::{Revision, StorageConfig};

/// Which key wraps a KEK: the fields an envelope snapshots from its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySnapshot {
    /// `"aws-kms"`, `"aws"`, `"local"` or `"none"`.
    pub provider: String,
    /// KMS key id / ARN / alias, secret name / ARN, or local key source.
    pub key_id: String,
    /// AWS region.
    pub region: String,
}

impl KeySnapshot {
    fn of_envelope(blob: &KmsBlob) -> KeySnapshot {
        KeySnapshot {
            provider: blob.provider.clone(),
            key_id: blob.key_id.clone(),
            region: blob.region.clone(),
        }
    }

    fn of_slot(slot: &Slot) -> KeySnapshot {
        KeySnapshot {
            provider: slot.provider.as_str().to_owned(),
            key_id: slot.key_id.clone(),
            region: slot.region.clone(),
        }
    }
}

/// The verdict on one stored envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftStatus {
    /// The envelope's snapshot matches its slot.
    InSync,
    /// The slot's provider, key_id or region differs from the envelope's snapshot (not re-wrapped).
    Drifted,
    /// It had drifted and was re-wrapped under the slot's current key.
    Rewrapped,
    /// Provider `none`: the caller holds the KEK; nothing to compare.
    NotWrapped,
    /// The envelope could not be read, its slot is gone or does not trust its key
    /// (`UntrustedKey`), or the re-wrap failed (see `error`);
    /// nothing was changed.
    Failed,
}

/// One line of a drift report.
#[derive(Debug, Clone)]
pub struct DriftEntry {
    /// The index.
    pub index: String,
    /// The verdict.
    pub status: DriftStatus,
    /// The envelope's slot name (empty if unreadable or `none`).
    pub kms_name: String,
    /// The key the stored envelope was wrapped with (before any re-wrap), if it was readable.
    pub stored: Option<KeySnapshot>,
    /// The key the registry slot names now, if the slot exists.
    pub configured: Option<KeySnapshot>,
    /// Why the status is `Failed`, or why a drifted index could not be re-wrapped.
    pub error: Option<Error>,
}

impl KekResolver {
    /// Re-wraps the KEK of `index_name` under registry slot `slot_name` — the index's own slot
    /// after its key was rotated or changed, or another slot. The KEK itself stays the same, so
    /// no index data changes. The stored envelope gets the slot's snapshot, `kms_name` = the slot,
    /// `version` + 1 and a new `created_at`; the index's cached KEK is invalidated, so the next
    /// resolve unwraps the new envelope. Returns the new envelope.
    ///
    /// From an `aws-kms` key to an `aws-kms` slot in the same region reached with the same
    /// credentials (both slots name the same role, or none), the re-wrap is one `kms:ReEncrypt`
    /// and the KEK never leaves KMS; otherwise (or if KMS answers ReEncrypt with
    /// `AccessDeniedException` / `UnsupportedOperationException`, logged as a warning) it is
    /// `kms:Decrypt` / unwrap through the old key and wrap through the slot.
    ///
    /// The old wrap key must still be reachable (the KEK is unwrapped with the envelope's
    /// snapshot). If anything fails, the stored envelope is unchanged. The write is a
    /// compare-and-swap against the envelope that was unwrapped: if another write (a push,
    /// delete or re-wrap from any process or node) landed meanwhile, nothing is written and the
    /// error is `Conflict` — a re-wrap can never put back a KEK that was replaced. Of concurrent
    /// re-wraps of one index (from any thread, process or node) one wins; the others get
    /// `Conflict`. While a new-KEK rotation of the index is pending
    /// ([`KekResolver::begin_rotation`]) the re-wrap is refused with `Conflict`: commit or abort
    /// the rotation first.
    ///
    /// Errors: `InvalidArgument`, `NotFound`, `Corrupt` and the store's errors; `KekNotWrapped`
    /// (provider `none`: there is no wrapped KEK to re-wrap); `UnknownSlot`; the unwrap's and
    /// wrap's provider errors; `Conflict`; `ForkedProcess`.
    pub fn rewrap(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        slot_name: &str,
    ) -> Result<KmsBlob> {
        self.check_process()?;
        let index = IndexName::new(index_name)?;
        let storage = &*self.audited(storage);
        let (old, revision) = read_envelope(storage, &index)?;
        self.rewrap_read(storage, &index, &old, &revision, slot_name)
    }

    /// [`KekResolver::rewrap`] of the envelope `old` already read as `revision`.
    fn rewrap_read(
        &self,
        storage: &StorageConfig,
        index: &IndexName,
        old: &KmsBlob,
        revision: &Revision,
        slot_name: &str,
    ) -> Result<KmsBlob> {
        // A same-KEK re-wrap would swap the envelope a pending new-KEK rotation is about to
        // replace, leaving that rotation stale; the rotation is finished or aborted first.
        super::rotate_new_kek::refuse_if_rotation_pending(storage, index, "re-wrap")?;
        let counters = self.inner.cache.counters();
        let refused_old = |e: &Error| {
            self.observe_refusal(storage, index, "rewrap", || AuditKey::of_blob(old), e)
        };
        let reencrypted = self
            .client()
            .reencrypt_kek_counted(index.as_str(), old, slot_name, || counters.provider_call())
            .inspect_err(refused_old)?;
        let mut new = match reencrypted {
            Some(new) => new,
            None => {
                let kek = self.unwrap(index, old).inspect_err(refused_old)?;
                self.wrap(index, slot_name, &kek).inspect_err(|e| {
                    let key = || self.slot_audit_key(slot_name);
                    self.observe_refusal(storage, index, "rewrap", key, e)
                })?
            }
        };
        new.version = old.version.checked_add(1).ok_or_else(|| {
            Error::invalid_argument(format!(
                "index {index}: envelope version is at its maximum ({})",
                u32::MAX
            ))
        })?;
        replace_index_kms_if(storage, index, revision, old, &new)?;
        self.inner
            .cache
            .invalidate(storage.location(), index.as_str());
        Ok(new)
    }

    /// Compares every envelope stored in `storage` with the current registry: an envelope whose
    /// provider / key_id / region snapshot differs from its slot (by `kms_name`) but is one of
    /// the slot's `previous_keys` has drifted. One that names a key the slot does not trust at
    /// all is `Failed` with `UntrustedKey` (and never re-wrapped).
    /// With `rewrap`, each drifted index is re-wrapped under its slot's current key (see
    /// [`KekResolver::rewrap`]); failures are reported per index and change nothing.
    ///
    /// Changes to a slot's role_arn / external_id / role_session_name are not drift: they apply
    /// on the next unwrap. Entries come in index-name order.
    ///
    /// Errors (of the whole call): `ForkedProcess`; the store's errors while listing envelopes.
    pub fn check_drift(&self, storage: &StorageConfig, rewrap: bool) -> Result<Vec<DriftEntry>> {
        self.check_process()?;
        let storage = &*self.audited(storage);
        let names = list_index_kms(storage)?;
        let registry = self.client().registry();
        Ok(names
            .into_iter()
            .map(|name| {
                let mut entry = DriftEntry {
                    index: name,
                    status: DriftStatus::Failed,
                    kms_name: String::new(),
                    stored: None,
                    configured: None,
                    error: None,
                };
                let index = match IndexName::new(&entry.index) {
                    Ok(index) => index,
                    Err(e) => {
                        entry.error = Some(e);
                        return entry;
                    }
                };
                let (blob, revision) = match read_envelope(storage, &index) {
                    Ok(read) => read,
                    Err(e) => {
                        entry.error = Some(e);
                        return entry;
                    }
                };
                entry.stored = Some(KeySnapshot::of_envelope(&blob));
                if blob.provider == Provider::None.as_str() {
                    entry.status = DriftStatus::NotWrapped;
                    return entry;
                }
                entry.kms_name = blob.kms_name.clone();
                let slot = match registry.require(&blob.kms_name) {
                    Ok(slot) => slot,
                    Err(e) => {
                        entry.error = Some(e.context(format_args!("index {index}")));
                        return entry;
                    }
                };
                entry.configured = Some(KeySnapshot::of_slot(slot));
                // A key the slot does not trust is not drift: re-wrapping would launder
                // whatever KEK the envelope's writer chose under the slot's real key.
                let stored = match trusted_key(&index, &blob, slot) {
                    Ok(stored) => stored,
                    Err(e) => {
                        self.observe_refusal(
                            storage,
                            &index,
                            "drift",
                            || AuditKey::of_blob(&blob),
                            &e,
                        );
                        entry.error = Some(e);
                        return entry;
                    }
                };
                let drifted = stored != slot.key();
                if drifted {
                    let event = AuditEvent::DriftDetected {
                        stored: AuditKey::of_blob(&blob),
                        configured: AuditKey::new(
                            &blob.kms_name,
                            slot.provider.as_str(),
                            &slot.key_id,
                            &slot.region,
                        ),
                    };
                    audit::record_observation(storage, index.as_str(), event);
                }
                entry.status = match (drifted, rewrap) {
                    (false, _) => DriftStatus::InSync,
                    (true, false) => DriftStatus::Drifted,
                    (true, true) => {
                        match self.rewrap_read(storage, &index, &blob, &revision, &blob.kms_name) {
                            Ok(_) => DriftStatus::Rewrapped,
                            Err(e) => {
                                entry.error = Some(e);
                                DriftStatus::Failed
                            }
                        }
                    }
                };
                entry
            })
            .inspect(log_drift)
            .collect())
    }
}

/// One drift check's outcome for the log: drift and failures are warnings, a re-wrap is news.
fn log_drift(entry: &DriftEntry) {
    let (level, what) = match entry.status {
        DriftStatus::InSync => (LogLevel::Debug, "in sync with its slot"),
        DriftStatus::NotWrapped => (LogLevel::Debug, "not wrapped (provider none)"),
        DriftStatus::Drifted => (
            LogLevel::Warn,
            "drifted: wrapped under a previous key of its slot",
        ),
        DriftStatus::Rewrapped => (LogLevel::Info, "re-wrapped under its slot's current key"),
        DriftStatus::Failed => (LogLevel::Warn, "could not be checked"),
    };
    let slot = &entry.kms_name;
    match &entry.error {
        Some(e) => log_event!(
            level,
            TARGET_RESOLVER,
            "drift check: index {:?} (slot {slot:?}) {what} ({:?}): {}",
            entry.index,
            e.kind(),
            e.message()
        ),
        None => log_event!(
            level,
            TARGET_RESOLVER,
            "drift check: index {:?} (slot {slot:?}) {what}",
            entry.index
        ),
    }
}
