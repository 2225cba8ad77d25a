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

    /// The name whose [`IndexName::storage_key`] is `key`, for a readable key. `None` for a hashed
    /// key (`~…`: the name is recorded only in the envelope) and for anything `storage_key` never
    /// produces — lower-case hex in an escape, an escape of a byte that stands for itself, a key
    /// that would have been hashed, bytes that are not UTF-8 or not a valid name — so no stray
    /// file or object can alias a name.
    pub fn from_storage_key(key: &str) -> Option<IndexName> {
        match Self::parse_storage_key(key)? {
            ParsedKey::Name(name) => Some(name),
            ParsedKey::Hashed => None,
        }
    }

    /// What `key` is, if `storage_key` can produce it: a readable key with its name, or a
    /// well-formed hashed key. `None` for anything else.
    pub(crate) fn parse_storage_key(key: &str) -> Option<ParsedKey> {
        if let Some(digest) = key.strip_prefix('~') {
            let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            return (digest.len() == 64 && digest.bytes().all(hex)).then_some(ParsedKey::Hashed);
        }
        if key.len() > MAX_READABLE_KEY_LEN {
            return None;
        }
        let upper_hex = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        };
        let mut bytes = Vec::with_capacity(key.len());
        let mut rest = key.as_bytes();
        while let Some((&first, tail)) = rest.split_first() {
            if first == b'%' {
                let [high, low, tail @ ..] = tail else {
                    return None;
                };
                bytes.push(upper_hex(*high)? << 4 | upper_hex(*low)?);
                rest = tail;
            } else {
                bytes.push(first);
                rest = tail;
            }
        }
        let name = IndexName::new(&String::from_utf8(bytes).ok()?).ok()?;
        // The encoding is canonical: only the key `storage_key` makes for this name is accepted
        // (this rejects escaped `a-z0-9_-`, unescaped other bytes, and hashed-length encodings).
        (name.storage_key() == key).then_some(ParsedKey::Name(name))
    }
}

/// A storage key, read back: what [`IndexName::parse_storage_key`] makes of it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParsedKey {
    /// A readable key, and the one name it stands for.
    Name(IndexName),
    /// A hashed key (`~` + 64 lower-case hex digits): only the stored envelope knows the name.
    Hashed,
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

    /// Names that stress the encoding: path-like, case, escapes, control bytes, scripts, and
    /// lengths on both sides of the 200-character readable limit.
    fn hostile_names() -> Vec<String> {
        let mut names: Vec<String> = [
            "a",
            "A",
            "%",
            "%25",
            "%41",
            "~",
            "~root",
            ".",
            "..",
            "../../etc/passwd",
            "/abs",
            "a/b",
            "a\\b",
            "x.kms",
            " ",
            "\t\n\r",
            "\u{1}",
            "\u{7f}",
            "é",
            "e\u{301}",
            "鍵",
            "🔑",
            "-",
            "_",
            "my_index-01",
            "My Index",
            "a%20b",
            "\u{feff}bom",
        ]
        .map(String::from)
        .to_vec();
        names.extend([
            "a".repeat(200),
            "a".repeat(255),
            format!("{}A", "a".repeat(197)), // 200 characters escaped: readable
            format!("{}A", "a".repeat(198)), // 201: hashed
            "A".repeat(66),                  // 198 escaped
            "A".repeat(67),                  // 201 escaped
            "鍵".repeat(85),
            "\u{ff}".repeat(127),
        ]);
        names.extend(
            (1u8..=255)
                .filter_map(|b| char::from_u32(b.into()))
                .map(|c| c.to_string()),
        );
        names
    }

    #[test]
    fn from_storage_key_inverts_every_readable_key_and_declines_hashed_ones() {
        let mut hashed = 0;
        for name in hostile_names() {
            let index = IndexName::new(&name).unwrap();
            let k = index.storage_key();
            match IndexName::parse_storage_key(&k) {
                Some(ParsedKey::Name(back)) => {
                    assert_eq!(back, index, "{k}");
                    assert_eq!(IndexName::from_storage_key(&k), Some(index));
                }
                Some(ParsedKey::Hashed) => {
                    hashed += 1;
                    assert!(k.starts_with('~') && k.len() == 65, "{name:?}");
                    assert_eq!(IndexName::from_storage_key(&k), None);
                }
                None => panic!("{name:?} -> {k} not recognised"),
            }
        }
        assert_eq!(hashed, 5);
    }

    #[test]
    fn from_storage_key_rejects_keys_storage_key_never_makes() {
        let long_hash = format!("~{}", "0".repeat(64));
        assert_eq!(
            IndexName::parse_storage_key(&long_hash),
            Some(ParsedKey::Hashed)
        );
        for bad in [
            String::new(),
            "%4d".into(),   // lower-case hex
            "%61".into(),   // 'a' stands for itself
            "%30".into(),   // '0'
            "%5F".into(),   // '_'
            "%2D".into(),   // '-'
            "A".into(),     // upper case is always escaped
            "a.kms".into(), // '.' is escaped
            "a b".into(),   // so is a space
            "a/b".into(),
            "~".into(),
            "%".into(), // truncated escape
            "%4".into(),
            "a%".into(),
            "%G0".into(), // not hex
            "%+1".into(),
            "%00".into(), // NUL is not a valid name
            "%FF".into(), // not UTF-8 on its own
            "%C3".into(), // truncated UTF-8
            "%C3%A9%".into(),
            "é".into(),                     // non-ASCII is escaped
            "a".repeat(201),                // would have been hashed
            "%41".repeat(67),               // 201 characters: would have been hashed
            format!("~{}", "A".repeat(64)), // upper-case digest
            format!("~{}", "0".repeat(63)),
            format!("~{}", "0".repeat(65)),
            format!("~{}g", "0".repeat(63)),
            format!("x~{}", "0".repeat(64)),
        ] {
            assert_eq!(IndexName::parse_storage_key(&bad), None, "{bad:?}");
            assert_eq!(IndexName::from_storage_key(&bad), None, "{bad:?}");
        }
        // The canonical spellings of the same names are accepted.
        for (good, name) in [("%4D", "M"), ("%C3%A9", "é"), ("%25", "%"), ("%7E", "~")] {
            assert_eq!(
                IndexName::from_storage_key(good),
                Some(IndexName::new(name).unwrap())
            );
        }
    }

    #[test]
    fn display_escapes_control_characters() {
        let name = IndexName::new("evil\nline\u{1b}[31m").unwrap();
        assert_eq!(name.to_string(), "\"evil\\nline\\u{1b}[31m\"");
    }
}
