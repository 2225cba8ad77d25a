//! The documented operations. Create, push, get and delete each validate their input, then make
//! exactly one backend call, so atomicity is the backend's single, well-defined job; list makes
//! one listing call plus one read per hashed storage key. All are safe to call from many threads
//! at once on one [`StorageConfig`].

use std::time::{SystemTime, UNIX_EPOCH};

use crate::audit::{self, AuditEvent, AuditKey, CreateMode};
use crate::blob::{KmsBlob, Provider};
use crate::codec;
use crate::error::{Error, Result, Subject};
use crate::index_name::{IndexName, ParsedKey};
use crate::storage::{BeforePublish, Recheck, Revision, StorageConfig};

/// Stores `blob` as the envelope of `index_name` — a strict insert.
///
/// Errors: `InvalidArgument` (bad name or blob, nothing written), `AlreadyExists` (an envelope is
/// stored; it is left untouched), `Io`, and on S3 `StorageUnavailable`, `StorageAccessDenied`. A
/// `created_at` of 0 is stored as the current time.
pub fn create_index_kms(config: &StorageConfig, index_name: &str, blob: &KmsBlob) -> Result<()> {
    let index = IndexName::new(index_name)?;
    let bytes = prepare(&index, blob)?;
    let event = || AuditEvent::Created {
        mode: if blob.provider == Provider::None.as_str() {
            CreateMode::CallerSupplied
        } else {
            CreateMode::KmsBacked
        },
        key: AuditKey::of_blob(blob),
        version: blob.version,
        wrapped_sha256: audit::wrapped_fingerprint(&blob.wrapped_kek),
    };
    write_audited(config, &index, event, |sync| match sync {
        Some(sync) => config.backend().create_after(&index, &bytes, sync),
        None => config.backend().create(&index, &bytes),
    })
}

/// Makes the custody change `write` on `index`, recorded first in `config`'s audit log as
/// `event` if audit is on: `write` then gets the step that makes the record durable, to run
/// before it publishes the change (a failed write is followed by an `Aborted` record). Counts
/// the write for the KEK cache if it was attempted.
///
/// Errors: the audit append's or sync's (nothing written then), else the write's.
fn write_audited(
    config: &StorageConfig,
    index: &IndexName,
    event: impl FnOnce() -> AuditEvent,
    write: impl FnOnce(Option<&BeforePublish>) -> Result<()>,
) -> Result<()> {
    let announced = audit::record_change(config, index, event)?;
    let sync: Option<BeforePublish> = announced.map(|_| {
        let (config, index) = (config.clone(), index.clone());
        std::sync::Arc::new(move || audit::sync_changes(&config, &index)) as BeforePublish
    });
    let result = write(sync.as_ref());
    config.location().note_write();
    if let (Some(seq), Err(e)) = (announced, &result) {
        audit::record_abort(config, index, seq, e);
    }
    result
}

/// Stores `blob` as the envelope of `index_name`, creating or replacing it — an idempotent upsert.
///
/// Errors: `InvalidArgument` (nothing written), `Io`, `StorageUnavailable`, `StorageAccessDenied`
/// (the previous envelope, if any, is intact).
/// A `created_at` of 0 is stored as the current time.
pub fn push_index_kms(config: &StorageConfig, index_name: &str, blob: &KmsBlob) -> Result<()> {
    let index = IndexName::new(index_name)?;
    let bytes = prepare(&index, blob)?;
    let event = || AuditEvent::Pushed {
        key: AuditKey::of_blob(blob),
        version: blob.version,
        wrapped_sha256: audit::wrapped_fingerprint(&blob.wrapped_kek),
    };
    write_audited(config, &index, event, |sync| match sync {
        Some(sync) => config.backend().put_after(&index, &bytes, sync),
        None => config.backend().put(&index, &bytes),
    })
}

/// Reads the envelope of `index_name`.
///
/// Errors: `InvalidArgument` (bad name), `NotFound`, `Corrupt` (stored bytes fail verification:
/// truncated, damaged, foreign, or written for another index), `Io`, `StorageUnavailable`,
/// `StorageAccessDenied`.
pub fn get_index_kms(config: &StorageConfig, index_name: &str) -> Result<KmsBlob> {
    let index = IndexName::new(index_name)?;
    let bytes = read_stored(config, &index)?;
    decode_stored(config, &index, &bytes)
}

/// Reads and decodes the envelope of `index`, with the [`Revision`] read: its digest (the
/// cache's identity of an envelope) and what a compare-and-swap names it by. Errors as
/// [`get_index_kms`].
pub(crate) fn read_envelope(
    config: &StorageConfig,
    index: &IndexName,
) -> Result<(KmsBlob, Revision)> {
    let (bytes, revision) = config
        .backend()
        .get_revision(index)?
        .ok_or_else(|| Error::not_found(index))?;
    let blob = decode_stored(config, index, &bytes)?;
    Ok((blob, revision))
}

/// What [`reread_envelope`] found.
pub(crate) enum Reread {
    /// The envelope `known` names, as this revision (its ETag may be new).
    Same(Revision),
    /// Another envelope (or the first read: nothing was known).
    Other(KmsBlob, Revision),
}

/// Re-reads `index`'s envelope for the KEK cache: with a `known` revision, asks the store
/// whether it changed (S3: a conditional GET) and decodes only a changed one. Errors: as
/// [`read_envelope`] (`NotFound` if it was deleted).
pub(crate) fn reread_envelope(
    config: &StorageConfig,
    index: &IndexName,
    known: Option<&Revision>,
) -> Result<Reread> {
    let Some(known) = known else {
        let (blob, revision) = read_envelope(config, index)?;
        return Ok(Reread::Other(blob, revision));
    };
    match config.backend().recheck(index, known)? {
        Recheck::Gone => Err(Error::not_found(index)),
        Recheck::Unchanged(revision) => Ok(Reread::Same(revision)),
        Recheck::Changed(bytes, revision) => {
            let blob = decode_stored(config, index, &bytes)?;
            Ok(Reread::Other(blob, revision))
        }
    }
}

/// The stored bytes of `index`'s envelope; `NotFound` if there are none.
fn read_stored(config: &StorageConfig, index: &IndexName) -> Result<Vec<u8>> {
    config
        .backend()
        .get(index)?
        .ok_or_else(|| Error::not_found(index))
}

/// Decodes stored `bytes`; `Corrupt`, naming the location, if they fail verification.
fn decode_stored(config: &StorageConfig, index: &IndexName, bytes: &[u8]) -> Result<KmsBlob> {
    codec::decode(index, bytes)
        .map_err(|reason| Error::corrupt(index, config.backend().location(index), reason))
}

/// Stores `blob` for `index` only if the stored envelope is still the version `expected` (from
/// [`read_envelope`]) — a compare-and-swap, atomic against every write this library makes in any
/// process. Errors: `Conflict` (another envelope, or none, is stored; nothing written),
/// `InvalidArgument`, and the store's errors (the stored envelope is intact).
/// The change is audited as a re-wrap from `old` (the envelope `expected` names) to `blob`.
pub(crate) fn replace_index_kms_if(
    config: &StorageConfig,
    index: &IndexName,
    expected: &Revision,
    old: &KmsBlob,
    blob: &KmsBlob,
) -> Result<()> {
    let bytes = prepare(index, blob)?;
    let event = || AuditEvent::Rewrapped {
        from: AuditKey::of_blob(old),
        to: AuditKey::of_blob(blob),
        from_version: old.version,
        to_version: blob.version,
        wrapped_sha256: audit::wrapped_fingerprint(&blob.wrapped_kek),
    };
    write_audited(config, index, event, |sync| match sync {
        Some(sync) => config
            .backend()
            .replace_if_after(index, expected, &bytes, sync),
        None => config.backend().replace_if(index, expected, &bytes),
    })
}

/// What [`push_index_kms_if_newer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushIfNewer {
    /// Nothing was stored: the envelope was created (a strict insert).
    Created,
    /// An older envelope (of `previous_version`) was replaced (a compare-and-swap).
    Replaced {
        /// The version of the envelope that was replaced.
        previous_version: u32,
    },
    /// An envelope of `stored_version` ≥ the given one is stored: nothing was written.
    Kept {
        /// The version of the stored envelope, left untouched.
        stored_version: u32,
    },
}

/// Stores `blob` as the envelope of `index_name` unless one of the same or a higher `version`
/// is stored — never overwriting a newer envelope. With nothing stored it is a strict insert;
/// over an older envelope it is a compare-and-swap against the envelope it read (as a re-wrap's
/// write), so a write that lands in between — from any thread, process or node — is never lost.
/// For migrating envelopes between stores (the CLI's `copy` and `import`). On an audited store
/// the write is recorded as `created` (insert) or `pushed` (replacement) before it is made.
///
/// Errors: `InvalidArgument` (bad name or blob, nothing written), `Conflict` (another envelope
/// was stored or changed meanwhile; nothing written), `Corrupt` (the stored envelope fails
/// verification; it is left untouched), and the store's errors (`Io`, `StorageUnavailable`,
/// `StorageAccessDenied`; the stored envelope is intact).
pub fn push_index_kms_if_newer(
    config: &StorageConfig,
    index_name: &str,
    blob: &KmsBlob,
) -> Result<PushIfNewer> {
    let index = IndexName::new(index_name)?;
    let bytes = prepare(&index, blob)?;
    let backend = config.backend();
    match backend.get_revision(&index)? {
        None => {
            let event = || AuditEvent::Created {
                mode: if blob.provider == Provider::None.as_str() {
                    CreateMode::CallerSupplied
                } else {
                    CreateMode::KmsBacked
                },
                key: AuditKey::of_blob(blob),
                version: blob.version,
                wrapped_sha256: audit::wrapped_fingerprint(&blob.wrapped_kek),
            };
            let create = |sync: Option<&BeforePublish>| match sync {
                Some(sync) => backend.create_after(&index, &bytes, sync),
                None => backend.create(&index, &bytes),
            };
            match write_audited(config, &index, event, create) {
                Ok(()) => Ok(PushIfNewer::Created),
                Err(e) if e.kind() == crate::error::ErrorKind::AlreadyExists => {
                    Err(crate::storage::conflict(&index))
                }
                Err(e) => Err(e),
            }
        }
        Some((stored_bytes, revision)) => {
            let stored = decode_stored(config, &index, &stored_bytes)?;
            if stored.version >= blob.version {
                return Ok(PushIfNewer::Kept {
                    stored_version: stored.version,
                });
            }
            let event = || AuditEvent::Pushed {
                key: AuditKey::of_blob(blob),
                version: blob.version,
                wrapped_sha256: audit::wrapped_fingerprint(&blob.wrapped_kek),
            };
            write_audited(config, &index, event, |sync| match sync {
                Some(sync) => backend.replace_if_after(&index, &revision, &bytes, sync),
                None => backend.replace_if(&index, &revision, &bytes),
            })?;
            Ok(PushIfNewer::Replaced {
                previous_version: stored.version,
            })
        }
    }
}

/// Removes the envelope of `index_name`; removing a missing envelope succeeds.
///
/// Errors: `InvalidArgument` (bad name), `Io` (also when the store cannot be reached to find
/// out: a disk root behind an unreadable parent or a symlink loop), `StorageUnavailable`,
/// `StorageAccessDenied`.
pub fn delete_index_kms(config: &StorageConfig, index_name: &str) -> Result<()> {
    let index = IndexName::new(index_name)?;
    write_audited(
        config,
        &index,
        || AuditEvent::Deleted,
        |sync| {
            if let Some(sync) = sync {
                sync.as_ref()()?;
            }
            config.backend().delete(&index)
        },
    )
}

/// The names of every index with a stored envelope, sorted by their UTF-8 bytes.
///
/// Names are recovered from storage keys (see [`IndexName::storage_key`]): a readable key is
/// decoded without reading anything (so its envelope is not verified here: a damaged one is
/// listed, and [`get_index_kms`] reports it); a hashed key (a name whose encoding is over 200
/// characters) costs one read, and the name is the one its verified envelope records. Entries that no storage
/// key names — temp files, foreign files, directories, objects in deeper S3 "folders" — are
/// ignored; a missing disk root is an empty store. The list is not a snapshot: an envelope created
/// or deleted while it runs may or may not be in it (a hashed one deleted before its read is left
/// out).
///
/// Errors: `Corrupt` (an envelope under a hashed key fails verification, or records a name whose
/// storage key is another; the message names its location), `Io` (e.g. the disk root is not a
/// readable directory), and on S3 `StorageUnavailable`, `StorageAccessDenied` (listing needs
/// `s3:ListBucket`).
pub fn list_index_kms(config: &StorageConfig) -> Result<Vec<String>> {
    let backend = config.backend();
    let mut names = Vec::new();
    for key in backend.list_keys()? {
        match IndexName::parse_storage_key(&key) {
            Some(ParsedKey::Name(index)) => names.push(index.as_str().to_owned()),
            Some(ParsedKey::Hashed) => {
                let Some(bytes) = backend.get_by_key(&key)? else {
                    continue; // deleted since it was listed
                };
                let corrupt =
                    |reason| Error::corrupt(Subject::Listing, backend.key_location(&key), reason);
                let (name, _) = codec::decode_named(&bytes).map_err(corrupt)?;
                // The name must hash to this key, or a copied envelope would list a name twice
                // (or one that get could not find).
                let owns_key = IndexName::new(&name).is_ok_and(|index| index.storage_key() == key);
                if !owns_key {
                    return Err(corrupt(codec::belongs_to(&name)));
                }
                names.push(name);
            }
            // Backends list only keys `storage_key` can produce.
            None => {}
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Validates `blob` for `index` and encodes it, stamping a zero `created_at` with the time now.
fn prepare(index: &IndexName, blob: &KmsBlob) -> Result<Vec<u8>> {
    blob.validate()
        .map_err(|e| e.context(format_args!("index {index}: invalid KMS envelope")))?;
    let created_at = match blob.created_at {
        0 => unix_now(),
        given => given,
    };
    Ok(codec::encode(index, blob, created_at))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn push_if_newer_creates_replaces_older_and_never_overwrites_newer() {
        let store = StorageConfig::memory();
        let blob = |version| KmsBlob {
            provider: "none".into(),
            version,
            created_at: 1,
            ..KmsBlob::default()
        };
        assert_eq!(
            push_index_kms_if_newer(&store, "i", &blob(2)).unwrap(),
            PushIfNewer::Created
        );
        assert_eq!(
            push_index_kms_if_newer(&store, "i", &blob(2)).unwrap(),
            PushIfNewer::Kept { stored_version: 2 }
        );
        assert_eq!(
            push_index_kms_if_newer(&store, "i", &blob(1)).unwrap(),
            PushIfNewer::Kept { stored_version: 2 }
        );
        assert_eq!(get_index_kms(&store, "i").unwrap(), blob(2));
        assert_eq!(
            push_index_kms_if_newer(&store, "i", &blob(5)).unwrap(),
            PushIfNewer::Replaced {
                previous_version: 2
            }
        );
        assert_eq!(get_index_kms(&store, "i").unwrap(), blob(5));
        // A damaged stored envelope is reported, not overwritten.
        let index = IndexName::new("d").unwrap();
        store.backend().put(&index, b"junk").unwrap();
        assert_eq!(
            push_index_kms_if_newer(&store, "d", &blob(9))
                .unwrap_err()
                .kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(store.backend().get(&index).unwrap().unwrap(), b"junk");
    }

    #[test]
    fn reads_accept_envelopes_a_later_release_may_write() {
        // A provider this release does not know, stored by bypassing validation.
        let store = StorageConfig::memory();
        let index = IndexName::new("idx").unwrap();
        let future = KmsBlob {
            provider: "gcp-kms".into(),
            version: 9,
            created_at: 1,
            ..KmsBlob::default()
        };
        let bytes = codec::encode(&index, &future, future.created_at);
        store.backend().put(&index, &bytes).unwrap();
        assert_eq!(get_index_kms(&store, "idx").unwrap(), future);
        // ...but this release will not write it.
        assert_eq!(
            push_index_kms(&store, "idx", &future).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn listing_reads_hashed_keys_and_reports_a_damaged_or_misplaced_one_as_corrupt() {
        let store = StorageConfig::memory();
        let long = IndexName::new(&"鍵".repeat(85)).unwrap();
        let key = long.storage_key();
        let blob = KmsBlob {
            provider: "none".into(),
            version: 1,
            created_at: 1,
            ..KmsBlob::default()
        };
        push_index_kms(&store, long.as_str(), &blob).unwrap();
        push_index_kms(&store, "short", &blob).unwrap();
        assert_eq!(
            list_index_kms(&store).unwrap(),
            ["short", long.as_str()].map(String::from)
        );

        let expect_corrupt = |reason: &str| {
            let err = list_index_kms(&store).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
            assert_eq!(
                err.message(),
                format!(
                    "listing KMS envelopes: stored KMS envelope at memory store entry with \
                     storage key {key} is corrupt: {reason}"
                )
            );
        };
        // Damaged bytes under the hashed key.
        store.backend().put(&long, b"garbage").unwrap();
        expect_corrupt("7 bytes, too short for an envelope");
        // A valid envelope of another index (short or long) under the hashed key: its name does
        // not hash to this key, so listing it would alias that index.
        for other in ["short".to_owned(), "鍵".repeat(84)] {
            let other = IndexName::new(&other).unwrap();
            let misplaced = codec::encode(&other, &blob, 1);
            store.backend().put(&long, &misplaced).unwrap();
            expect_corrupt(&codec::belongs_to(other.as_str()));
        }
        // A damaged envelope under a readable key is listed unread; get reports it.
        push_index_kms(&store, long.as_str(), &blob).unwrap();
        let short = IndexName::new("short").unwrap();
        store.backend().put(&short, b"garbage").unwrap();
        assert_eq!(list_index_kms(&store).unwrap().len(), 2);
        assert_eq!(
            get_index_kms(&store, "short").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn invalid_envelope_messages_name_the_index_and_field() {
        let store = StorageConfig::memory();
        let blob = KmsBlob {
            provider: "aws".into(),
            ..KmsBlob::default()
        };
        let err = create_index_kms(&store, "orders", &blob).unwrap_err();
        assert_eq!(
            err.message(),
            "index \"orders\": invalid KMS envelope: provider \"aws\" needs a non-empty kms_name"
        );
    }
}
