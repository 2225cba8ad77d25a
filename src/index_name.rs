//! Index names: what is accepted, and how a name becomes a storage key that can never reach
//! outside the storage root.

use std::fmt;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::error::{quoted_prefix, Error, Result};

/// Longest accepted index name, in bytes of UTF-8.
pub const MAX_INDEX_NAME_LEN: usize = 255;

/// Longest storage key kept readable; longer encodings are replaced by a hash (see [`IndexName::storage_key`]).
const MAX_READABLE_KEY_LEN: usize = 200;

/// A validated index name: non-empty UTF-8, at most [`MAX_INDEX_NAME_LEN`] bytes, no NUL.
/// Everything else — spaces, dots, slashes, `..`, control characters, any script — is a name like
/// any other: it is encoded, never interpreted as a path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IndexName(String);

impl IndexName {
    /// Validates `name`. Errors: [`crate::ErrorKind::InvalidArgument`] for an empty name, one
    /// over [`MAX_INDEX_NAME_LEN`] bytes, or one containing NUL.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid_argument("index name must not be empty"));
        }
        if name.len() > MAX_INDEX_NAME_LEN {
            return Err(Error::invalid_argument(format!(
                "index name {} is {} bytes, longer than the {MAX_INDEX_NAME_LEN}-byte limit",
                quoted_prefix(name),
                name.len()
            )));
        }
        if name.contains('\0') {
            return Err(Error::invalid_argument(format!(
                "index name {} contains a NUL byte",
                quoted_prefix(name)
            )));
        }
        Ok(IndexName(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key this index's envelope is stored under: a single path component made only of
    /// `[a-z0-9_%~-]`, distinct for distinct names even on case-insensitive file systems.
    ///
    /// Bytes `a-z`, `0-9`, `_` and `-` stand for themselves; every other byte (upper case
    /// included) becomes `%XX` with upper-case hex. If that is longer than 200 characters the key
    /// is `~` followed by the lower-case hex SHA-256 of the name (the stored envelope also records
    /// the name, so nothing is lost). `~` and `.` never occur in a readable key.
    pub fn storage_key(&self) -> String {
        let mut key = String::with_capacity(self.0.len() * 3);
        for byte in self.0.bytes() {
            if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-' {
                key.push(char::from(byte));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(key, "%{byte:02X}");
            }
        }
        if key.len() <= MAX_READABLE_KEY_LEN {
            return key;
        }
        let digest = Sha256::digest(self.0.as_bytes());
        let mut hashed = String::with_capacity(1 + 2 * digest.len());
        hashed.push('~');
        for byte in digest {
            let _ = write!(hashed, "{byte:02x}");
        }
        hashed
    }
}

/// Shows the name quoted and escaped, so hostile names cannot forge log lines.
impl fmt::Display for IndexName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for IndexName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndexName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::HashSet;

    fn key(name: &str) -> String {
        IndexName::new(name).unwrap().storage_key()
    }

    #[test]
    fn rejects_empty_long_and_nul_names() {
        for bad in [String::new(), "x".repeat(256), "a\0b".to_owned()] {
            let err = IndexName::new(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
        IndexName::new(&"x".repeat(255)).unwrap();
    }

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(key("my_index-01"), "my_index-01");
        assert_eq!(key("My Index"), "%4Dy%20%49ndex");
    }

    #[test]
    fn path_like_names_become_one_inert_component() {
        for name in [
            ".",
            "..",
            "../../etc/passwd",
            "/abs",
            "a/b",
            "a\\b",
            "~root",
            "x.kms",
        ] {
            let k = key(name);
            assert!(
                k.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"_-%".contains(&b)
                    || (b.is_ascii_uppercase() && k.contains('%'))),
                "{name:?} -> {k}"
            );
            assert!(!k.contains('/') && !k.contains('.') && !k.starts_with('~'));
        }
    }

    #[test]
    fn keys_are_distinct_even_case_folded() {
        let names = [
            "a", "A", "%41", "%", "%25", "ab", "a b", "a%20b", "é", "e\u{301}", "-", "_", "..", ".",
        ];
        let folded: HashSet<String> = names.iter().map(|n| key(n).to_lowercase()).collect();
        assert_eq!(folded.len(), names.len());
    }

    #[test]
    fn long_names_hash_to_a_fixed_length_key() {
        let unicode = "鍵".repeat(85); // 255 bytes, 765 escaped
        let k = key(&unicode);
        assert_eq!(k.len(), 65);
        assert!(k.starts_with('~'));
        assert_ne!(k, key(&"鍵".repeat(84)));
        // Exactly at the readable limit stays readable; one byte more is hashed.
        assert_eq!(key(&"a".repeat(200)), "a".repeat(200));
        assert!(key(&format!("{}A", "a".repeat(198))).starts_with('~'));
    }

    #[test]
    fn display_escapes_control_characters() {
        let name = IndexName::new("evil\nline\u{1b}[31m").unwrap();
        assert_eq!(name.to_string(), "\"evil\\nline\\u{1b}[31m\"");
    }
}
