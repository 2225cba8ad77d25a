//! The index-name codec: `IndexName::new` → `storage_key` → `IndexName::from_storage_key`.
//!
//! Invariants checked on every input:
//! - a name is accepted exactly when it is non-empty, at most 255 bytes and has no NUL; a refusal
//!   is `InvalidArgument`;
//! - its storage key is one safe file name (`<key>.kms` fits a 255-byte component; only
//!   `[a-z0-9_%-]` plus upper-case hex after `%`, or `~` + 64 lower-case hex digits);
//! - a readable key reads back as exactly the name; a hashed key reads back as nothing;
//! - two different names never share a key, even with the key's case folded;
//! - any text `from_storage_key` accepts is the canonical key of the name it returns.
#![no_main]

use cyborgdb_kms::{ErrorKind, IndexName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The input is two candidates split at the first 0xFF byte (never part of UTF-8).
    let (first, second) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &data[..0]),
    };
    let first = String::from_utf8_lossy(first);
    let second = String::from_utf8_lossy(second);

    let a = check_name(&first);
    let b = check_name(&second);
    if let (Some((a, key_a)), Some((b, key_b))) = (a, b) {
        if a != b {
            assert_ne!(key_a, key_b, "{a:?} and {b:?} share a key");
            assert_ne!(
                key_a.to_ascii_lowercase(),
                key_b.to_ascii_lowercase(),
                "{a:?} and {b:?} share a key on a case-insensitive file system"
            );
        }
    }

    // The same texts read as storage keys.
    for text in [&*first, &*second] {
        check_key(text);
        check_key(text.strip_suffix(".kms").unwrap_or(text));
    }
});

/// Checks `IndexName::new(text)` and its key; the name and key if the name is valid.
fn check_name(text: &str) -> Option<(IndexName, String)> {
    let expected_valid = !text.is_empty() && text.len() <= 255 && !text.contains('\0');
    let name = match IndexName::new(text) {
        Ok(name) => name,
        Err(e) => {
            assert!(!expected_valid, "{text:?} refused: {e:?}");
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e:?}");
            assert!(e.message().len() <= 512, "long message: {e:?}");
            return None;
        }
    };
    assert!(expected_valid, "{text:?} accepted");
    assert_eq!(name.as_str(), text);

    let key = name.storage_key();
    assert!(!key.is_empty());
    assert!(key.len() + ".kms".len() <= 255, "{key} too long");
    assert!(key != "." && key != "..");
    if let Some(digest) = key.strip_prefix('~') {
        assert_eq!(digest.len(), 64, "{key}");
        assert!(
            digest
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{key}"
        );
        assert_eq!(IndexName::from_storage_key(&key), None, "{key}");
    } else {
        assert!(key.len() <= 200, "{key}");
        let bytes = key.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => i += 1,
                b'%' => {
                    let hex = |c: u8| matches!(c, b'0'..=b'9' | b'A'..=b'F');
                    assert!(
                        bytes.len() >= i + 3 && hex(bytes[i + 1]) && hex(bytes[i + 2]),
                        "bad escape in {key}"
                    );
                    i += 3;
                }
                other => panic!("byte {other:#x} in key {key}"),
            }
        }
        assert_eq!(
            IndexName::from_storage_key(&key).as_ref(),
            Some(&name),
            "{key}"
        );
    }
    Some((name, key))
}

/// Checks that `text`, read as a storage key, is accepted only as the canonical key of its name.
fn check_key(text: &str) {
    if let Some(name) = IndexName::from_storage_key(text) {
        assert_eq!(
            name.storage_key(),
            text,
            "{text:?} is not canonical for {name:?}"
        );
    }
}
