//! The envelope decoder (`codec::decode`, through the `fuzzing` feature) and the disk store's read
//! path over the same bytes.
//!
//! The first input byte picks a mode; the rest is the input:
//! - 0: raw bytes to `decode` and `decode_named`;
//! - 1: as 0, and the bytes stored as `<root>/golden.kms`, read with `get_index_kms`;
//! - 2: as 0, and the bytes stored under a long name's hashed key (`~<sha256>.kms`), read with
//!   `get_index_kms` and `list_index_kms` (which decodes without knowing the name);
//! - 3: a structured envelope (`arbitrary`), encoded, then one bit flipped or the bytes cut.
//!
//! Invariants: no panic; `decode` and `decode_named` agree; what decodes re-encodes to bytes that
//! decode to the same fields; the disk store returns exactly what the decoder does, and refuses
//! the rest as `Corrupt` naming the file; one flipped bit is caught or changes nothing; a cut
//! envelope never decodes; rejection messages stay short.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use cyborgdb_kms::fuzzing::{
    decode_envelope, decode_named_envelope, encode_envelope, MAX_ENCODED_LEN,
};
use cyborgdb_kms::{get_index_kms, list_index_kms, ErrorKind, IndexName, KmsBlob, StorageConfig};
use libfuzzer_sys::fuzz_target;

/// Longest rejection reason accepted: a reason names at most a 64-character prefix of a value.
const MAX_REASON_LEN: usize = 1024;

/// The readable index the raw modes decode for.
const INDEX: &str = "golden";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check_raw(input),
        1 => {
            check_raw(input);
            check_disk(input, &IndexName::new(INDEX).unwrap());
        }
        2 => {
            check_raw(input);
            check_disk(input, long_name());
        }
        _ => {
            if let Ok(envelope) = Envelope::arbitrary_take_rest(Unstructured::new(input)) {
                check_round_trip(&envelope);
            }
        }
    }
});

/// `decode` and `decode_named` on arbitrary bytes.
fn check_raw(bytes: &[u8]) {
    let index = IndexName::new(INDEX).unwrap();
    let decoded = decode_envelope(&index, bytes);
    let named = decode_named_envelope(bytes);
    match (&decoded, &named) {
        (Ok(blob), Ok((name, named_blob))) => {
            assert_eq!(name, INDEX);
            assert_eq!(blob, named_blob);
        }
        (Err(_), Ok((name, _))) => assert_ne!(name, INDEX, "decode refused its own index"),
        (Ok(_), Err(e)) => panic!("decode accepted what decode_named refused: {e}"),
        (Err(a), Err(b)) => assert_eq!(a, b, "decode and decode_named disagree on why"),
    }
    for reason in [decoded.as_ref().err(), named.as_ref().err()]
        .into_iter()
        .flatten()
    {
        assert!(!reason.is_empty());
        assert!(
            reason.len() <= MAX_REASON_LEN,
            "{} byte reason",
            reason.len()
        );
    }
    if let Ok((name, blob)) = named {
        assert!(bytes.len() <= MAX_ENCODED_LEN);
        // What decodes re-encodes to an envelope with the same fields (the bytes may differ: a
        // FlatBuffer has many layouts).
        if let Ok(index) = IndexName::new(&name) {
            let again = encode_envelope(&index, &blob, blob.created_at);
            assert_eq!(decode_envelope(&index, &again).as_ref(), Ok(&blob));
        }
    }
}

/// The disk store's get (and list) over `bytes` stored as `index`'s envelope file.
fn check_disk(bytes: &[u8], index: &IndexName) {
    let (root, config) = disk_store();
    let file = root.join(format!("{}.kms", index.storage_key()));
    std::fs::write(&file, bytes).expect("write the envelope file");
    let expected = decode_envelope(index, bytes);
    match (get_index_kms(config, index.as_str()), &expected) {
        (Ok(blob), Ok(want)) => assert_eq!(&blob, want),
        (Err(e), Err(_)) => {
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{e:?}");
            assert!(e.message().contains(&index.storage_key()), "{e:?}");
        }
        (got, want) => panic!("disk get gave {got:?}, the decoder {want:?}"),
    }
    if index.storage_key().starts_with('~') {
        match (list_index_kms(config), &expected) {
            (Ok(names), Ok(_)) => assert_eq!(names, [index.as_str()]),
            (Err(e), Err(_)) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e:?}"),
            (got, want) => panic!("disk list gave {got:?}, the decoder {want:?}"),
        }
    }
    std::fs::remove_file(&file).expect("remove the envelope file");
}

/// One store directory for the whole run (removed with the process's temp dir guard at exit is
/// not guaranteed: libFuzzer exits without unwinding, so it lives under the system temp dir).
fn disk_store() -> &'static (PathBuf, StorageConfig) {
    static STORE: OnceLock<(PathBuf, StorageConfig)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("cyb-fuzz-envelope-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let config = StorageConfig::disk(&dir).expect("disk store");
        (dir, config)
    })
}

/// A 255-byte name: its storage key is hashed.
fn long_name() -> &'static IndexName {
    static NAME: OnceLock<IndexName> = OnceLock::new();
    NAME.get_or_init(|| IndexName::new(&"鍵".repeat(85)).unwrap())
}

/// An envelope the fuzzer builds field by field, and one damage to do to its encoding.
#[derive(Arbitrary, Debug)]
struct Envelope {
    index: String,
    kms_name: String,
    provider: String,
    key_id: String,
    region: String,
    wrapped_kek: Vec<u8>,
    version: u32,
    created_at: i64,
    damage: Damage,
}

#[derive(Arbitrary, Debug)]
enum Damage {
    None,
    /// Flip bit `bit % 8` of byte `at % len`.
    FlipBit {
        at: u32,
        bit: u8,
    },
    /// Keep only the first `keep % len` bytes.
    Truncate {
        keep: u32,
    },
    /// Append these bytes.
    Extend {
        extra: Vec<u8>,
    },
}

fn check_round_trip(envelope: &Envelope) {
    let Ok(index) = IndexName::new(&envelope.index) else {
        return;
    };
    let blob = KmsBlob {
        kms_name: envelope.kms_name.clone(),
        provider: envelope.provider.clone(),
        key_id: envelope.key_id.clone(),
        region: envelope.region.clone(),
        wrapped_kek: envelope.wrapped_kek.clone(),
        version: envelope.version,
        created_at: envelope.created_at,
    };
    let mut bytes = encode_envelope(&index, &blob, blob.created_at);
    let fits = bytes.len() <= MAX_ENCODED_LEN;
    match &envelope.damage {
        Damage::None => {
            let decoded = decode_envelope(&index, &bytes);
            if fits {
                assert_eq!(decoded.as_ref(), Ok(&blob));
                assert_eq!(
                    decode_named_envelope(&bytes),
                    Ok((index.as_str().to_owned(), blob))
                );
            } else {
                assert!(decoded.is_err());
            }
        }
        Damage::FlipBit { at, bit } => {
            let at = *at as usize % bytes.len();
            bytes[at] ^= 1 << (bit % 8);
            // Caught, or a bit the fields do not depend on (padding, an unused vtable byte).
            if let Ok(decoded) = decode_envelope(&index, &bytes) {
                assert_eq!(
                    decoded, blob,
                    "bit {bit} of byte {at} changed a field unnoticed"
                );
            }
        }
        Damage::Truncate { keep } => {
            bytes.truncate(*keep as usize % bytes.len());
            assert!(
                decode_envelope(&index, &bytes).is_err(),
                "a cut envelope decoded"
            );
        }
        Damage::Extend { extra } => {
            if !extra.is_empty() {
                bytes.extend_from_slice(extra);
                assert!(
                    decode_envelope(&index, &bytes).is_err(),
                    "an extended envelope decoded"
                );
            }
        }
    }
}
