//! `local` — FOR DEVELOPMENT AND EXAMPLES ONLY, NEVER FOR PRODUCTION: the wrap key is a 32-byte
//! master key on this machine, so whoever can read it can unwrap every KEK, and nothing audits or
//! revokes it. key_id `file:<path>`: the file holds exactly 32 raw bytes. key_id `env:<VARIABLE>`:
//! the variable holds 64 hexadecimal characters. Same AES-256-GCM format and binding as `aws`.

use std::path::Path;

use zeroize::{Zeroize, Zeroizing};

use super::{BoxFuture, WrapKeySource};
use crate::blob::Provider;
use crate::error::{quoted_prefix, Error, ErrorKind, Result};
use crate::fs_bounded::{read_secret_bounded, FileReadError, Symlinks};
use crate::index_name::IndexName;
use crate::kms::aead::WrapKey;
use crate::kms::aws_clients::KeyRef;

/// The wrap key of the `local` provider: the master key named by `key_id`.
pub(crate) struct LocalMasterKey;

/// Size of a master key file: exactly 32 raw bytes.
const MASTER_KEY_LEN: usize = 32;

/// Reads the master key named by a local key_id. A key file is read without blocking and at most
/// 33 bytes of it.
///
/// Errors: `KmsKeyNotFound` (file missing, unreadable, or not a regular file: a FIFO, device or
/// directory; variable not set), `WrapKeySize` (not 32 bytes; a larger file is refused by its
/// size before reading), `InvalidConfig` (key_id form).
fn master_key(key_id: &str, index: &IndexName) -> Result<WrapKey> {
    if let Some(path) = key_id.strip_prefix("file:") {
        let source = format!("local master key file {}", quoted_prefix(path));
        // At most 33 bytes are read: one more than a valid key tells a longer file apart.
        let bytes = read_secret_bounded(Path::new(path), MASTER_KEY_LEN, Symlinks::Follow)
            .map_err(|e| match e {
                FileReadError::TooLarge { len, .. } => {
                    let held = len.map_or_else(|| "more than 32".to_owned(), |n| n.to_string());
                    Error::new(
                        ErrorKind::WrapKeySize,
                        format!("Wrap key must be 32 bytes: {source} holds {held} bytes"),
                    )
                }
                // Missing, unreadable, or not a regular file (FIFO, device, directory): no key
                // is there.
                e => Error::new(
                    ErrorKind::KmsKeyNotFound,
                    format!("index {index}: cannot read {source}: {e}"),
                ),
            })?;
        return WrapKey::from_slice(&bytes, &source);
    }
    if let Some(variable) = key_id.strip_prefix("env:") {
        let mut text = Zeroizing::new(std::env::var(variable).map_err(|_| {
            Error::new(
                ErrorKind::KmsKeyNotFound,
                format!(
                    "index {index}: local master key variable {} is not set",
                    quoted_prefix(variable)
                ),
            )
        })?);
        let source = format!(
            "local master key variable {} (64 hex characters)",
            quoted_prefix(variable)
        );
        // Only a value of the right length is decoded: a huge variable costs nothing.
        let hex = text.trim();
        let decoded = (hex.len() == 2 * MASTER_KEY_LEN)
            .then(|| decode_hex(hex))
            .flatten()
            .unwrap_or_default();
        text.zeroize();
        return WrapKey::from_slice(&decoded, &source);
    }
    Err(Error::new(
        ErrorKind::InvalidConfig,
        format!("index {index}: local key_id must be file:<path> or env:<VARIABLE>"),
    ))
}

/// The bytes that `text` spells in hexadecimal digits (either case, nothing else: no sign, no
/// prefix), or `None`. The buffer is allocated once at its final size, so no partial copy is left
/// behind by growth, and is wiped on drop.
fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16);
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.as_bytes().chunks_exact(2) {
        let value = digit(pair[0])? << 4 | digit(pair[1])?;
        bytes.push(u8::try_from(value).ok()?);
    }
    Some(bytes)
}

impl WrapKeySource for LocalMasterKey {
    const PROVIDER: Provider = Provider::Local;

    fn wrap_key<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
    ) -> BoxFuture<'a, Result<WrapKey>> {
        Box::pin(async move { master_key(key.key_id, index) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding() {
        let decoded = |text| decode_hex(text).map(|bytes| bytes.to_vec());
        assert_eq!(decoded("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decoded("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(decoded(""), Some(vec![]));
        for bad in ["0", "zz", "é0", "+f", "-1", "0x"] {
            assert_eq!(decoded(bad), None, "{bad:?}");
        }
    }
}
