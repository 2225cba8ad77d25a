//! The development-only `local` provider as a test fixture: master key files in a directory and
//! a client that enables the provider. Also included alone (`#[path]`) by tests that need
//! nothing else from `common`.
#![allow(dead_code)]

use std::path::Path;

use cyborgdb_kms::{KmsClient, KmsClientOptions, Provider, Slot};

/// A `local` slot whose master key is the 32-byte file `dir/<name>.key` filled with `fill`.
/// The file is replaced atomically (temp file + rename) and only when its content differs, so
/// child processes of a test that rebuild the same fixture never see a half-written key.
pub fn local_slot(dir: &Path, name: &str, fill: u8) -> Slot {
    let path = dir.join(format!("{name}.key"));
    let key = [fill; 32];
    if std::fs::read(&path).ok().as_deref() != Some(&key[..]) {
        let temp = dir.join(format!(".{name}.key.{}.tmp", std::process::id()));
        std::fs::write(&temp, key).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    }
    local_slot_at(&path)
}

/// A `local` slot over the master key file `key_file`, as it is (nothing written).
pub fn local_slot_at(key_file: &Path) -> Slot {
    Slot::new(
        Provider::Local,
        format!("file:{}", key_file.display()),
        String::new(),
    )
}

/// A KMS client with the `local` provider enabled and no slots.
pub fn local_client() -> KmsClient {
    KmsClient::new(KmsClientOptions {
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap()
}

/// A KMS client with the `local` provider enabled and one [`local_slot`] per `(name, fill)`,
/// their key files in `dir`.
pub fn local_client_with(dir: &Path, slots: &[(&str, u8)]) -> KmsClient {
    let client = local_client();
    for &(name, fill) in slots {
        client.add_slot(name, local_slot(dir, name, fill)).unwrap();
    }
    client
}
