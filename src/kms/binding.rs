//! Binding a wrapped KEK to its index: the KMS EncryptionContext (`aws-kms`) and the AES-GCM
//! associated data (`aws`, `local`). Both are canonical and versioned, so an envelope copied onto
//! another index fails to unwrap, and services in other languages can produce the same bytes.
//!
//! Context version 1 (frozen; a new version gets new names, old ones keep working):
//! - KMS EncryptionContext: `{"cyborgdb:context": "kek-v1", "cyborgdb:index": <index name>}`.
//! - AES-GCM associated data: the ASCII bytes `cyborgdb-kms:kek-v1`, a 0x00 byte, then the
//!   provider name (`aws` or `local`) and the index name, each as a 2-byte big-endian length
//!   followed by its UTF-8 bytes. In Python:
//!   `b"cyborgdb-kms:kek-v1\0" + struct.pack(">H", len(p)) + p + struct.pack(">H", len(i)) + i`.

use crate::blob::Provider;
use crate::index_name::IndexName;

/// EncryptionContext key naming the context version.
pub const KMS_CONTEXT_VERSION_KEY: &str = "cyborgdb:context";
/// EncryptionContext value of context version 1.
pub const KMS_CONTEXT_VERSION: &str = "kek-v1";
/// EncryptionContext key carrying the index name.
pub const KMS_CONTEXT_INDEX_KEY: &str = "cyborgdb:index";
/// Prefix of the AES-GCM associated data, version 1.
pub const AEAD_CONTEXT_PREFIX: &[u8] = b"cyborgdb-kms:kek-v1\0";

/// The KMS EncryptionContext for `index` (context version 1).
pub fn kms_encryption_context(index: &IndexName) -> [(String, String); 2] {
    [
        (
            KMS_CONTEXT_VERSION_KEY.to_owned(),
            KMS_CONTEXT_VERSION.to_owned(),
        ),
        (KMS_CONTEXT_INDEX_KEY.to_owned(), index.as_str().to_owned()),
    ]
}

/// The AES-GCM associated data for a KEK of `index` wrapped by `provider` (context version 1).
pub fn aead_associated_data(provider: Provider, index: &IndexName) -> Vec<u8> {
    let provider = provider.as_str().as_bytes();
    let index = index.as_str().as_bytes();
    let mut aad = Vec::with_capacity(AEAD_CONTEXT_PREFIX.len() + 4 + provider.len() + index.len());
    aad.extend_from_slice(AEAD_CONTEXT_PREFIX);
    for part in [provider, index] {
        // Index names are at most 255 bytes and provider names are short: always fits.
        let len = u16::try_from(part.len()).expect("context part fits in u16");
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_is_the_documented_encoding() {
        let index = IndexName::new("orders").unwrap();
        let aad = aead_associated_data(Provider::Aws, &index);
        let mut expected = b"cyborgdb-kms:kek-v1\0".to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(b"aws");
        expected.extend_from_slice(&[0, 6]);
        expected.extend_from_slice(b"orders");
        assert_eq!(aad, expected);
    }

    #[test]
    fn length_prefixes_keep_distinct_inputs_distinct() {
        // "ab"+"c" and "a"+"bc" must not collide (moto's EncryptionContext has this flaw).
        let a = aead_associated_data(Provider::Aws, &IndexName::new("x").unwrap());
        let b = aead_associated_data(Provider::Local, &IndexName::new("x").unwrap());
        assert_ne!(a, b);
    }

    #[test]
    fn kms_context_names_version_and_index() {
        let context = kms_encryption_context(&IndexName::new("idx").unwrap());
        assert_eq!(
            context,
            [
                ("cyborgdb:context".to_owned(), "kek-v1".to_owned()),
                ("cyborgdb:index".to_owned(), "idx".to_owned())
            ]
        );
    }
}
