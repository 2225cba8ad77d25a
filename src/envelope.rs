//! The four documented operations. Each validates its input, then makes exactly one backend call,
//! so atomicity is the backend's single, well-defined job. All are safe to call from many threads
//! at once on one [`StorageConfig`].

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::blob::KmsBlob;
use crate::codec;
use crate::error::{Error, ErrorKind, Result};
use crate::index_name::IndexName;
use crate::storage::StorageConfig;

/// Stores `blob` as the envelope of `index_name` — a strict insert.
///
/// Errors: `InvalidArgument` (bad name or blob, nothing written), `AlreadyExists` (an envelope is
/// stored; it is left untouched), `Io`, and on S3 `StorageUnavailable`, `StorageAccessDenied`. A
/// `created_at` of 0 is stored as the current time.
pub fn create_index_kms(config: &StorageConfig, index_name: &str, blob: &KmsBlob) -> Result<()> {
    let index = IndexName::new(index_name)?;
    let bytes = prepare(&index, blob)?;
    let result = config.backend().create(&index, &bytes);
    config.location().note_write();
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
    let result = config.backend().put(&index, &bytes);
    config.location().note_write();
    result
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

/// SHA-256 of an envelope's stored bytes: equal digests mean the same stored envelope.
pub(crate) type EnvelopeDigest = [u8; 32];

/// Reads and decodes the envelope of `index`, with the digest of its stored bytes. Errors as
/// [`get_index_kms`].
pub(crate) fn read_envelope(
    config: &StorageConfig,
    index: &IndexName,
) -> Result<(KmsBlob, EnvelopeDigest)> {
    let bytes = read_stored(config, index)?;
    let blob = decode_stored(config, index, &bytes)?;
    Ok((blob, Sha256::digest(&bytes).into()))
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
    codec::decode(index, bytes).map_err(|reason| {
        Error::new(
            ErrorKind::Corrupt,
            format!(
                "index {index}: stored KMS envelope at {} is corrupt: {reason}",
                config.backend().location(index)
            ),
        )
    })
}

/// Removes the envelope of `index_name`; removing a missing envelope succeeds.
///
/// Errors: `InvalidArgument` (bad name), `Io`, `StorageUnavailable`, `StorageAccessDenied`.
pub fn delete_index_kms(config: &StorageConfig, index_name: &str) -> Result<()> {
    let index = IndexName::new(index_name)?;
    let result = config.backend().delete(&index);
    config.location().note_write();
    result
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

/// TEMPORARY until the storage list operation lands.
pub fn list_index_kms(_config: &StorageConfig) -> Result<Vec<String>> {
    Ok(Vec::new())
}
