//! New-KEK rotation, as the CyborgDB service documents it: "unwraps the existing KEK with the old
//! snapshot, generates a new KEK via the new entry, re-wraps the data, and updates the snapshot".
//!
//! Two phases around the engine's own re-wrap of what it keeps under the KEK (its DEK):
//!
//! 1. [`KekResolver::begin_rotation`] unwraps the old KEK, draws a fresh one, wraps it through the
//!    target slot and strictly creates a **pending-rotation record** next to the envelope (a
//!    sidecar object `<storage key>.rot` in the same store; docs/file-formats.md). The
//!    envelope is untouched, so every resolve keeps returning the old KEK.
//! 2. The engine re-wraps its DEK under the new KEK, keeping a copy under the old one.
//! 3. [`KekResolver::commit_rotation`] swaps the envelope to the record's new envelope (a
//!    compare-and-swap against the old one), then removes the record. A crash between the two
//!    leaves the record with the envelope already swapped; the next call sees that and finishes.
//!
//! [`KekResolver::abort_rotation`] removes the record instead (envelope untouched), and
//! [`KekResolver::pending_rotation`] finds a record left by a crash, with both KEKs, so the engine
//! can finish or undo its re-wrap. A record read from storage is hostile: bounded, verified, and
//! both KEKs in it are obtained only by unwrapping through the registry slot that trusts their
//! wrap keys, exactly as an envelope's.

use super::KekResolver;
use crate::blob::{KmsBlob, Provider};
use crate::codec::{self, MAX_ENCODED_LEN};
use crate::envelope::{read_envelope, replace_index_kms_if};
use crate::error::{Error, ErrorKind, Result};
use crate::index_name::IndexName;
use crate::kms::client::trusted_key;
use crate::kms::Kek;
use crate::logging::{log_event, LogLevel, TARGET_RESOLVER};
use crate::storage::{Sidecar, StorageConfig};

use super::{DriftEntry, DriftStatus};

/// File identifier of a pending-rotation record.
const RECORD_MAGIC: &[u8; 4] = b"CKMR";
/// Format version of a pending-rotation record.
const RECORD_FORMAT: u8 = 1;
/// Magic, format byte and the two length prefixes before the envelopes, and the CRC-32 after.
const RECORD_OVERHEAD: usize = RECORD_MAGIC.len() + 1 + 4 + 4 + 4;

/// Where a new-KEK rotation stands, judged from the stored envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationState {
    /// The envelope is still the old one: resolve returns the old KEK. Commit swaps it; abort
    /// removes the record.
    Pending,
    /// The envelope is already the new one (a commit swapped it and stopped before removing the
    /// record): resolve returns the new KEK. Commit finishes; abort is refused.
    Committed,
    /// The envelope is neither (another write replaced or deleted it since the rotation began):
    /// commit is refused with `Conflict`; abort removes the record.
    Stale,
}

/// A new-KEK rotation of one index, begun by [`KekResolver::begin_rotation`] or found by
/// [`KekResolver::pending_rotation`]. Holds both KEKs (wiped on drop) and both envelopes.
/// `Debug` shows no key bytes.
#[derive(Debug, Clone)]
pub struct Rotation {
    index: String,
    old_kek: Kek,
    new_kek: Kek,
    old_envelope: KmsBlob,
    new_envelope: KmsBlob,
    state: RotationState,
}

impl Rotation {
    /// The index being rotated.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The KEK the index had when the rotation began (what the old envelope wraps).
    pub fn old_kek(&self) -> &Kek {
        &self.old_kek
    }

    /// The fresh KEK the index gets on commit (what the new envelope wraps).
    pub fn new_kek(&self) -> &Kek {
        &self.new_kek
    }

    /// The envelope the rotation replaces.
    pub fn old_envelope(&self) -> &KmsBlob {
        &self.old_envelope
    }

    /// The envelope commit stores: the target slot's snapshot, the new wrapped KEK,
    /// `version` = the old one's + 1.
    pub fn new_envelope(&self) -> &KmsBlob {
        &self.new_envelope
    }

    /// Where the rotation stood when this value was made (re-read it with
    /// [`KekResolver::pending_rotation`]).
    pub fn state(&self) -> RotationState {
        self.state
    }
}

/// Why [`KekResolver::rotate_kek`] failed: the library, or the engine's callback.
#[derive(Debug)]
pub enum RotateKekError<E> {
    /// The rotation failed in the library (see the error's kind). If begin had succeeded, the
    /// rotation was aborted when it could be, else its record is left for
    /// [`KekResolver::pending_rotation`].
    Rotation(Error),
    /// The engine's callback failed; the rotation was aborted (the envelope is unchanged) — or,
    /// if even the abort failed (logged), its record is left for
    /// [`KekResolver::pending_rotation`].
    Callback(E),
}

impl<E: std::fmt::Display> std::fmt::Display for RotateKekError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RotateKekError::Rotation(e) => write!(f, "{e}"),
            RotateKekError::Callback(e) => write!(f, "the engine's re-wrap callback failed: {e}"),
        }
    }
}

impl KekResolver {
    /// Begins a new-KEK rotation of `index_name` through registry slot `slot_name` (the index's
    /// own slot after its key changed, or another): unwraps the current KEK through the
    /// envelope's slot (key trust as for a resolve), generates a fresh KEK, wraps it through
    /// `slot_name`, and strictly creates the pending-rotation record next to the envelope. The
    /// envelope is not changed: until [`KekResolver::commit_rotation`], resolve keeps returning
    /// the old KEK. Returns both KEKs: re-wrap the engine's DEK under the new one (keeping it
    /// under the old one too until commit returns), then commit — or abort.
    ///
    /// Errors: `InvalidArgument`, `NotFound`, `Corrupt` and the store's errors; `KekNotWrapped`;
    /// `UnknownSlot`; `UntrustedKey`; the unwrap's and wrap's provider errors; `Conflict` if a
    /// rotation of the index is already pending (begun elsewhere, or left by a crash: see
    /// [`KekResolver::pending_rotation`]) — of concurrent begins from any number of processes
    /// exactly one wins; `ForkedProcess`. On any error nothing is stored.
    pub fn begin_rotation(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        slot_name: &str,
    ) -> Result<Rotation> {
        self.check_process()?;
        let index = IndexName::new(index_name)?;
        let (old_envelope, _) = read_envelope(storage, &index)?;
        let old_kek = self.unwrap(&index, &old_envelope)?;
        let new_kek = Kek::generate();
        let mut new_envelope = self.wrap(&index, slot_name, &new_kek)?;
        new_envelope.version = next_version(&index, &old_envelope)?;
        let record = encode_record(&index, &old_envelope, &new_envelope)?;
        crash_point("begin:before-record");
        storage
            .backend()
            .create_sidecar(&index, Sidecar::PendingRotation, &record)
            .map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => already_pending(&index),
                _ => e,
            })?;
        crash_point("begin:after-record");
        log_event!(
            LogLevel::Info,
            TARGET_RESOLVER,
            "began a new-KEK rotation of index {index} from slot {:?} to slot {slot_name:?} (version {} -> {})",
            old_envelope.kms_name,
            old_envelope.version,
            new_envelope.version
        );
        Ok(Rotation {
            index: index.as_str().to_owned(),
            old_kek,
            new_kek,
            old_envelope,
            new_envelope,
            state: RotationState::Pending,
        })
    }

    /// The rotation of `index_name` that is pending (begun and neither committed nor aborted —
    /// for example after a crash), or `None`. Both KEKs are unwrapped from the record's envelopes
    /// through the slots that trust their keys, so the engine can finish or undo its DEK
    /// re-wrap; [`Rotation::state`] says whether the envelope was already swapped.
    ///
    /// Errors: `InvalidArgument`; `Corrupt` (the record is truncated, damaged, oversized,
    /// foreign, or its envelopes are not an old envelope and its successor for this index); the
    /// store's errors; the unwraps' errors (`UnknownSlot`, `UntrustedKey`, `KekNotWrapped`,
    /// `DecryptFailed`, provider errors); `ForkedProcess`. Nothing is changed.
    pub fn pending_rotation(
        &self,
        storage: &StorageConfig,
        index_name: &str,
    ) -> Result<Option<Rotation>> {
        self.check_process()?;
        let index = IndexName::new(index_name)?;
        let Some((old_envelope, new_envelope)) = read_record(storage, &index)? else {
            return Ok(None);
        };
        let old_kek = self
            .unwrap(&index, &old_envelope)
            .map_err(|e| e.context("pending KEK rotation: old envelope"))?;
        let new_kek = self
            .unwrap(&index, &new_envelope)
            .map_err(|e| e.context("pending KEK rotation: new envelope"))?;
        let state = stored_state(storage, &index, &old_envelope, &new_envelope)?;
        Ok(Some(Rotation {
            index: index.as_str().to_owned(),
            old_kek,
            new_kek,
            old_envelope,
            new_envelope,
            state,
        }))
    }

    /// Commits `rotation`: swaps the stored envelope from the old one to the new one (a
    /// compare-and-swap: version + 1, the target slot's snapshot, the new wrapped KEK), removes
    /// the pending-rotation record, and drops the index's cached KEK, so the next resolve
    /// returns the new KEK. Idempotent: if a crash stopped an earlier commit between the swap
    /// and the removal, this finishes it; if the record is already gone and the envelope is the
    /// new one, it succeeds. Returns the new envelope.
    ///
    /// Call it only once the engine's data opens with the new KEK.
    ///
    /// Errors: `InvalidArgument`; `Conflict` — the stored envelope is neither the old nor the
    /// new one (another write landed since begin; the record is kept: undo the engine's re-wrap
    /// and abort), or the record is gone or another rotation's; `Corrupt`, `UnknownSlot`,
    /// `UntrustedKey` (the stored record fails the checks of
    /// [`KekResolver::pending_rotation`]); the store's errors (a failed swap changes nothing; a
    /// failed removal leaves the swap done and the record, which the next commit removes);
    /// `ForkedProcess`.
    pub fn commit_rotation(&self, storage: &StorageConfig, rotation: &Rotation) -> Result<KmsBlob> {
        self.check_process()?;
        // The swap is a custody change: audited (as a re-wrap to the new KEK) as the resolver says.
        let storage = &*self.audited(storage);
        let index = IndexName::new(&rotation.index)?;
        let record = read_record(storage, &index)?;
        let new = &rotation.new_envelope;
        let (blob, revision) = read_envelope(storage, &index)?;
        match record {
            Some((old, recorded_new)) if old == rotation.old_envelope && recorded_new == *new => {
                // The stored record is the rotation's: its new envelope must be one the slot
                // trusts before it becomes the index's envelope.
                self.check_trusted(&index, new)?;
                if blob == *new {
                    // A crash after the swap: only the record's removal is left.
                } else if blob == old {
                    replace_index_kms_if(storage, &index, &revision, &old, new)?;
                    crash_point("commit:after-swap");
                } else {
                    return Err(stale(&index, "commit"));
                }
            }
            // Already committed and the record removed (a retried commit).
            None if blob == *new => {
                self.inner
                    .cache
                    .invalidate(storage.location(), index.as_str());
                return Ok(blob);
            }
            None => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("index {index}: no KEK rotation is pending (it was committed or aborted elsewhere, or never begun); nothing was written"),
                ))
            }
            Some(_) => return Err(not_this_rotation(&index)),
        }
        storage
            .backend()
            .delete_sidecar(&index, Sidecar::PendingRotation)?;
        storage.location().note_write();
        self.inner
            .cache
            .invalidate(storage.location(), index.as_str());
        log_event!(
            LogLevel::Info,
            TARGET_RESOLVER,
            "committed the new-KEK rotation of index {index}: slot {:?}, version {}",
            new.kms_name,
            new.version
        );
        Ok(new.clone())
    }

    /// Aborts `rotation`: removes its pending-rotation record. The envelope is not touched, so
    /// the index keeps its old KEK (undo the engine's re-wrap, if any, before or after).
    /// Aborting a rotation whose record is already gone succeeds unless it was committed.
    ///
    /// Errors: `InvalidArgument`; `Conflict` — the envelope was already swapped to the new one
    /// (committed, or a commit stopped after its swap: finish it with
    /// [`KekResolver::commit_rotation`]), or the
    /// stored record is another rotation's; `Corrupt` (the stored record fails verification);
    /// the store's errors; `ForkedProcess`.
    pub fn abort_rotation(&self, storage: &StorageConfig, rotation: &Rotation) -> Result<()> {
        self.check_process()?;
        let index = IndexName::new(&rotation.index)?;
        let record = read_record(storage, &index)?;
        if let Some((old, new)) = &record {
            if *old != rotation.old_envelope || *new != rotation.new_envelope {
                return Err(not_this_rotation(&index));
            }
        }
        // Committed (with or without its record removed): the index has the new KEK now, so
        // "aborted" would send the engine back to a KEK the index no longer has.
        match read_envelope(storage, &index) {
            Ok((blob, _)) if blob == rotation.new_envelope => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("index {index}: the KEK rotation was already committed (the envelope holds the new KEK); finish it with commit_rotation instead of aborting"),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if record.is_none() {
            return Ok(());
        }
        storage
            .backend()
            .delete_sidecar(&index, Sidecar::PendingRotation)?;
        storage.location().note_write();
        log_event!(
            LogLevel::Info,
            TARGET_RESOLVER,
            "aborted the new-KEK rotation of index {index}; it keeps its KEK (version {})",
            rotation.old_envelope.version
        );
        Ok(())
    }

    /// New-KEK rotation in one call: [`KekResolver::begin_rotation`], then `reencrypt(old, new)`
    /// — the engine re-wraps its DEK under `new` (keeping a copy under `old` until this returns),
    /// and must be idempotent (a crash may make a recovery run it again) — then
    /// [`KekResolver::commit_rotation`]. If the callback fails, the rotation is aborted (the
    /// stored envelope is byte-for-byte unchanged) and its error returned. Returns the new
    /// envelope.
    ///
    /// Errors: `Rotation` with begin's and commit's errors (a failed commit after a successful
    /// callback leaves the record: recover with [`KekResolver::pending_rotation`]); `Callback`
    /// with the callback's error.
    pub fn rotate_kek<E>(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        slot_name: &str,
        reencrypt: impl FnOnce(&Kek, &Kek) -> std::result::Result<(), E>,
    ) -> std::result::Result<KmsBlob, RotateKekError<E>> {
        let rotation = self
            .begin_rotation(storage, index_name, slot_name)
            .map_err(RotateKekError::Rotation)?;
        if let Err(e) = reencrypt(&rotation.old_kek, &rotation.new_kek) {
            if let Err(abort) = self.abort_rotation(storage, &rotation) {
                log_event!(
                    LogLevel::Warn,
                    TARGET_RESOLVER,
                    "the engine's re-wrap failed and aborting the KEK rotation failed too ({:?}): {}; the record stays for pending_rotation",
                    abort.kind(),
                    abort.message()
                );
            }
            return Err(RotateKekError::Callback(e));
        }
        self.commit_rotation(storage, &rotation)
            .map_err(RotateKekError::Rotation)
    }

    /// Drift repair in new-KEK mode: [`KekResolver::check_drift`] without re-wrapping, then each
    /// drifted index is rotated to a fresh KEK under its own slot with
    /// [`KekResolver::rotate_kek`], calling `reencrypt(index, old, new)` for it. Returns the
    /// drift report (drifted indexes now `Rewrapped`, or `Failed` with the rotation's error) and,
    /// per entry, the callback's error if it failed (the entry is then `Failed` with a
    /// `CallbackFailed` error saying so, and the index's rotation was aborted).
    ///
    /// Errors (of the whole call): as [`KekResolver::check_drift`].
    #[allow(clippy::type_complexity)]
    pub fn check_drift_new_kek<E: std::fmt::Display>(
        &self,
        storage: &StorageConfig,
        mut reencrypt: impl FnMut(&str, &Kek, &Kek) -> std::result::Result<(), E>,
    ) -> Result<Vec<(DriftEntry, Option<E>)>> {
        let report = self.check_drift(storage, false)?;
        Ok(report
            .into_iter()
            .map(|mut entry| {
                if entry.status != DriftStatus::Drifted {
                    return (entry, None);
                }
                let slot = entry.kms_name.clone();
                let index = entry.index.clone();
                match self.rotate_kek(storage, &index, &slot, |old, new| {
                    reencrypt(&index, old, new)
                }) {
                    Ok(_) => {
                        entry.status = DriftStatus::Rewrapped;
                        (entry, None)
                    }
                    Err(RotateKekError::Rotation(e)) => {
                        entry.status = DriftStatus::Failed;
                        entry.error = Some(e);
                        (entry, None)
                    }
                    Err(RotateKekError::Callback(e)) => {
                        entry.status = DriftStatus::Failed;
                        entry.error = Some(Error::new(
                            ErrorKind::CallbackFailed,
                            format!(
                                "index {}: the engine's re-wrap callback failed ({e}); the new-KEK rotation was rolled back (the envelope is unchanged)",
                                crate::error::quoted_prefix(&index)
                            ),
                        ));
                        (entry, Some(e))
                    }
                }
            })
            .collect())
    }

    /// `UntrustedKey` / `UnknownSlot` unless `blob`'s slot trusts the key it names (no KMS call).
    fn check_trusted(&self, index: &IndexName, blob: &KmsBlob) -> Result<()> {
        let registry = self.client().registry();
        let slot = registry
            .require(&blob.kms_name)
            .map_err(|e| e.context(format_args!("index {index}")))?;
        trusted_key(index, blob, slot).map(drop)
    }
}

/// The version after `old`'s; `InvalidArgument` at the maximum.
fn next_version(index: &IndexName, old: &KmsBlob) -> Result<u32> {
    old.version.checked_add(1).ok_or_else(|| {
        Error::invalid_argument(format!(
            "index {index}: envelope version is at its maximum ({})",
            u32::MAX
        ))
    })
}

/// Where the stored envelope says the rotation from `old` to `new` stands.
fn stored_state(
    storage: &StorageConfig,
    index: &IndexName,
    old: &KmsBlob,
    new: &KmsBlob,
) -> Result<RotationState> {
    match read_envelope(storage, index) {
        Ok((blob, _)) if blob == *new => Ok(RotationState::Committed),
        Ok((blob, _)) if blob == *old => Ok(RotationState::Pending),
        Ok(_) => Ok(RotationState::Stale),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(RotationState::Stale),
        Err(e) => Err(e),
    }
}

/// The `Conflict` of a second begin.
fn already_pending(index: &IndexName) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("index {index}: a KEK rotation is already pending (begun by another process, or left by a crash); find it with pending_rotation, then commit or abort it; nothing was written"),
    )
}

/// The `Conflict` of a commit whose envelope changed since begin.
fn stale(index: &IndexName, action: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("index {index}: cannot {action} the KEK rotation: the stored KMS envelope is neither the one the rotation began from nor its successor (another write replaced it); undo the engine's re-wrap and abort the rotation; nothing was written"),
    )
}

/// The `Conflict` of a commit or abort whose stored record is another rotation's.
fn not_this_rotation(index: &IndexName) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("index {index}: the pending KEK rotation record in storage is another rotation's (it was replaced since this one began); re-read it with pending_rotation; nothing was written"),
    )
}

/// Encodes a pending-rotation record (docs/file-formats.md): `CKMR`, format 1, the old and the
/// new envelope as envelope bytes bound to `index`, each behind a u32le length, and a CRC-32 of
/// everything before it.
fn encode_record(index: &IndexName, old: &KmsBlob, new: &KmsBlob) -> Result<Vec<u8>> {
    let old_bytes = codec::encode(index, old, old.created_at);
    let new_bytes = codec::encode(index, new, new.created_at);
    let len = RECORD_OVERHEAD + old_bytes.len() + new_bytes.len();
    if len > MAX_ENCODED_LEN {
        return Err(Error::invalid_argument(format!(
            "index {index}: a pending KEK rotation record would be {len} bytes, more than {MAX_ENCODED_LEN}"
        )));
    }
    let mut record = Vec::with_capacity(len);
    record.extend_from_slice(RECORD_MAGIC);
    record.push(RECORD_FORMAT);
    for part in [&old_bytes, &new_bytes] {
        let part_len = u32::try_from(part.len()).expect("bounded by MAX_ENCODED_LEN");
        record.extend_from_slice(&part_len.to_le_bytes());
        record.extend_from_slice(part);
    }
    let crc = crc32fast::hash(&record);
    record.extend_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Decodes a pending-rotation record of `index` into (old envelope, new envelope). The error is
/// the reason the bytes are rejected.
fn decode_record(
    index: &IndexName,
    bytes: &[u8],
) -> std::result::Result<(KmsBlob, KmsBlob), String> {
    if bytes.len() < RECORD_OVERHEAD {
        return Err(format!(
            "{} bytes, too short for a pending-rotation record",
            bytes.len()
        ));
    }
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(format!(
            "{} bytes, more than any pending-rotation record ({MAX_ENCODED_LEN})",
            bytes.len()
        ));
    }
    if &bytes[..4] != RECORD_MAGIC {
        return Err("not a pending-rotation record (no CKMR identifier)".to_owned());
    }
    if bytes[4] != RECORD_FORMAT {
        return Err(format!("unknown record format {}", bytes[4]));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch (truncated or damaged)".to_owned());
    }
    let mut rest = &body[5..];
    let mut take = |what: &str| -> std::result::Result<KmsBlob, String> {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(format!("no length for the {what} envelope"));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(format!(
                "the {what} envelope's length {len} runs past the record"
            ));
        }
        let (part, tail) = tail.split_at(len);
        rest = tail;
        codec::decode(index, part).map_err(|reason| format!("its {what} envelope: {reason}"))
    };
    let old = take("old")?;
    let new = take("new")?;
    if !rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the envelopes",
            rest.len()
        ));
    }
    for (what, blob) in [("old", &old), ("new", &new)] {
        match blob.validate() {
            Ok(Provider::None) => {
                return Err(format!(
                    "its {what} envelope has provider \"none\" (nothing wrapped)"
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(format!("its {what} envelope: {}", e.message())),
        }
    }
    if old.version.checked_add(1) != Some(new.version) {
        return Err(format!(
            "its new envelope's version {} does not follow the old one's ({})",
            new.version, old.version
        ));
    }
    Ok((old, new))
}

/// The stored pending-rotation record of `index`, decoded, or `None`. `Corrupt` naming its
/// location if it fails verification.
/// `Conflict` if a new-KEK rotation of `index` is pending in `storage` (its record exists,
/// whatever it holds), for `operation`s that would leave it stale. Errors: the store's.
pub(super) fn refuse_if_rotation_pending(
    storage: &StorageConfig,
    index: &IndexName,
    operation: &str,
) -> Result<()> {
    match storage
        .backend()
        .get_sidecar(index, Sidecar::PendingRotation)
    {
        Ok(None) => Ok(()),
        // A record too large to read (`Corrupt`) still marks a pending rotation.
        Ok(Some(_)) => Err(rotation_pending(index, operation)),
        Err(e) if e.kind() == ErrorKind::Corrupt => Err(rotation_pending(index, operation)),
        Err(e) => Err(e),
    }
}

fn rotation_pending(index: &IndexName, operation: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "index {index}: a new-KEK rotation is pending; commit or abort it before a \
             {operation}; nothing was written"
        ),
    )
}

fn read_record(storage: &StorageConfig, index: &IndexName) -> Result<Option<(KmsBlob, KmsBlob)>> {
    let backend = storage.backend();
    let Some(bytes) = backend.get_sidecar(index, Sidecar::PendingRotation)? else {
        return Ok(None);
    };
    decode_record(index, &bytes).map(Some).map_err(|reason| {
        Error::new(
            ErrorKind::Corrupt,
            format!(
                "index {index}: pending KEK rotation record at {} is corrupt: {reason}",
                backend.sidecar_location(index, Sidecar::PendingRotation)
            ),
        )
    })
}

/// Test-only crash injection for the kill-at-every-step tests (tests/rotate_new_kek.rs): in
/// builds with debug assertions, if `CYB_TEST_ROTATION_CRASH_AT` names `step`, the process kills
/// itself with SIGKILL there. Compiled out of release builds.
fn crash_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("CYB_TEST_ROTATION_CRASH_AT").is_some_and(|at| at == step) {
        // SAFETY: getpid and kill have no preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(version: u32, wrapped: u8) -> KmsBlob {
        KmsBlob {
            kms_name: "main".into(),
            provider: "local".into(),
            key_id: "file:/k".into(),
            region: String::new(),
            wrapped_kek: vec![wrapped; 61],
            version,
            created_at: 7,
        }
    }

    #[test]
    fn records_round_trip_and_reject_damage_truncation_and_foreign_indexes() {
        let index = IndexName::new("orders").unwrap();
        let record = encode_record(&index, &blob(3, 1), &blob(4, 2)).unwrap();
        assert_eq!(
            decode_record(&index, &record).unwrap(),
            (blob(3, 1), blob(4, 2))
        );
        let other = IndexName::new("other").unwrap();
        assert!(decode_record(&other, &record)
            .unwrap_err()
            .contains("belongs to index"));
        for cut in [0, 5, record.len() / 2, record.len() - 1] {
            assert!(decode_record(&index, &record[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = record.clone();
        flipped[40] ^= 1;
        assert_eq!(
            decode_record(&index, &flipped).unwrap_err(),
            "checksum mismatch (truncated or damaged)"
        );
        let skipped = encode_record(&index, &blob(3, 1), &blob(5, 2)).unwrap();
        assert!(decode_record(&index, &skipped)
            .unwrap_err()
            .contains("does not follow"));
        let oversized = vec![0u8; MAX_ENCODED_LEN + 1];
        assert!(decode_record(&index, &oversized)
            .unwrap_err()
            .contains("more than any"));
    }
}
