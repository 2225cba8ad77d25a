//! The local wrapped-KEK format of the `aws` and `local` providers: AES-256-GCM under a 32-byte
//! wrap key, a fresh random 96-bit nonce per wrap, the index binding as associated data.
//!
//! Format version 1, 61 bytes (also in `schemas/wrapped_kek.md`):
//!
//! | offset | length | content                                  |
//! |--------|--------|------------------------------------------|
//! | 0      | 1      | format version, `0x01`                   |
//! | 1      | 12     | nonce                                    |
//! | 13     | 32     | AES-256-GCM ciphertext of the KEK        |
//! | 45     | 16     | GCM tag                                  |
//!
//! Associated data: [`crate::kms::binding`]. The version byte is not part of the associated data;
//! an unknown version is rejected before decryption.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::{zeroize_stack, Zeroize, Zeroizing};

use super::kek::Kek;
use crate::error::{Error, ErrorKind, Result};

/// The format version byte of [`wrap`]'s output.
pub const FORMAT_V1: u8 = 1;
/// Length of a version-1 wrapped KEK.
pub const WRAPPED_LEN_V1: usize = 1 + NONCE_LEN + Kek::LEN + TAG_LEN;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Bytes of stack that [`wrap`] and [`unwrap`] zero below their own frame once the cipher work
/// is done. The AES key schedule, whose first two round keys are the wrap key itself, is built
/// and moved by value inside the `aes` / `aes-gcm` crates and spilled by the AES-NI code, leaving
/// copies in their dead frames: in a debug build the deepest lies 16 to 20 KiB below the frame of
/// [`wrap`] / [`unwrap`] (`tests/stack_residue.rs`: a 16 KiB wipe left copies, 20 KiB none), so
/// 32 KiB there. In an optimized build wrap + unwrap with an 8 KiB wipe stay within 16 KiB of
/// the caller and leave no copy (the same test, `--release`); 8 KiB costs about 75 ns, 32 KiB
/// about 290 ns, against a ~0.5 µs unwrap (BENCHMARKS.md).
pub(crate) const AEAD_STACK_WIPE_BYTES: usize = if cfg!(debug_assertions) {
    32 * 1024
} else {
    8 * 1024
};

/// A 32-byte AES-256-GCM wrap key (the `aws` provider's Secrets Manager value, the `local`
/// master key), wiped on drop; `Debug`-free by design.
pub struct WrapKey(Box<Zeroizing<[u8; 32]>>);

impl WrapKey {
    /// The wrap key held by `bytes`, which the caller wipes.
    ///
    /// Errors: `WrapKeySize` ("Wrap key must be 32 bytes", naming `source` and the length found).
    pub fn from_slice(bytes: &[u8], source: &str) -> Result<WrapKey> {
        if bytes.len() != 32 {
            return Err(Error::new(
                ErrorKind::WrapKeySize,
                format!(
                    "Wrap key must be 32 bytes: {source} holds {} bytes",
                    bytes.len()
                ),
            ));
        }
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        key.copy_from_slice(bytes);
        Ok(WrapKey(key))
    }

    /// The wrap key in `bytes`, wiping `bytes` whatever the outcome.
    pub fn from_vec(mut bytes: Vec<u8>, source: &str) -> Result<WrapKey> {
        let key = WrapKey::from_slice(&bytes, source);
        bytes.zeroize();
        key
    }

    /// AES-256-GCM keyed with this key, built on the heap and used there by reference only; its
    /// key schedule is wiped when the box drops (the `aes` crate's `zeroize` feature). The
    /// temporaries of the construction stay in this function's (and its callees') dead frames:
    /// it is never inlined, so that the stack wipe of [`wrap`] and [`unwrap`] covers them.
    #[inline(never)]
    fn boxed_cipher(&self) -> Box<Aes256Gcm> {
        Box::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0[..])))
    }
}

/// Wraps `kek` under `key` with `associated_data` (see [`crate::kms::binding`]), in format
/// version 1, with a fresh random nonce.
///
/// Before returning it zeroes [`AEAD_STACK_WIPE_BYTES`] of stack below its frame, so no copy of
/// the wrap key or of its key schedule stays behind on the calling thread's stack.
pub fn wrap(key: &WrapKey, associated_data: &[u8], kek: &Kek) -> Vec<u8> {
    let wrapped = wrap_on_deeper_frames(key, associated_data, kek);
    zeroize_stack::<AEAD_STACK_WIPE_BYTES>();
    wrapped
}

/// [`wrap`] minus the stack wipe; never inlined, so that everything it leaves on the stack lies
/// below the caller's frame, where the caller's wipe reaches. For callers that wipe a larger
/// region themselves (the AEAD providers), so the stack is not wiped twice.
#[inline(never)]
pub(crate) fn wrap_on_deeper_frames(key: &WrapKey, associated_data: &[u8], kek: &Kek) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let sealed = key
        .boxed_cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: kek.as_bytes(),
                aad: associated_data,
            },
        )
        .expect("AES-GCM encryption of 32 bytes cannot fail");
    let mut wrapped = Vec::with_capacity(WRAPPED_LEN_V1);
    wrapped.push(FORMAT_V1);
    wrapped.extend_from_slice(&nonce);
    wrapped.extend_from_slice(&sealed);
    wrapped
}

/// Unwraps a version-1 `wrapped` KEK under `key` with `associated_data`.
///
/// Errors: `DecryptFailed` for a wrong length or version, or when authentication fails (wrong
/// key, another index's envelope, damaged bytes). The plaintext never leaves on failure.
///
/// Wipes the stack below its frame as [`wrap`] does, whatever the outcome.
pub fn unwrap(key: &WrapKey, associated_data: &[u8], wrapped: &[u8]) -> Result<Kek> {
    let kek = unwrap_on_deeper_frames(key, associated_data, wrapped);
    zeroize_stack::<AEAD_STACK_WIPE_BYTES>();
    kek
}

/// [`unwrap`] minus the stack wipe (see [`wrap_on_deeper_frames`]).
#[inline(never)]
pub(crate) fn unwrap_on_deeper_frames(
    key: &WrapKey,
    associated_data: &[u8],
    wrapped: &[u8],
) -> Result<Kek> {
    if wrapped.len() != WRAPPED_LEN_V1 || wrapped[0] != FORMAT_V1 {
        return Err(Error::new(
            ErrorKind::DecryptFailed,
            format!(
                "wrapped KEK is not format v1 ({} bytes, version byte {}; expected {WRAPPED_LEN_V1} bytes, version {FORMAT_V1})",
                wrapped.len(),
                wrapped.first().copied().unwrap_or(0)
            ),
        ));
    }
    let (nonce, sealed) = wrapped[1..].split_at(NONCE_LEN);
    let plaintext = Zeroizing::new(
        key.boxed_cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: associated_data,
                },
            )
            .map_err(|_| {
                Error::new(
                    ErrorKind::DecryptFailed,
                    "AES-GCM authentication failed: wrong wrap key, another index's envelope, or damaged wrapped_kek",
                )
            })?,
    );
    Kek::from_slice(&plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> WrapKey {
        WrapKey::from_slice(&[byte; 32], "test").unwrap()
    }

    #[test]
    fn round_trips_and_every_wrap_uses_a_fresh_nonce() {
        let kek = Kek::generate();
        let a = wrap(&key(1), b"ctx", &kek);
        let b = wrap(&key(1), b"ctx", &kek);
        assert_eq!(a.len(), WRAPPED_LEN_V1);
        assert_eq!(a[0], FORMAT_V1);
        assert_ne!(a, b);
        assert_eq!(unwrap(&key(1), b"ctx", &a).unwrap(), kek);
    }

    #[test]
    fn wrong_key_context_or_any_flipped_bit_fails_to_decrypt() {
        let kek = Kek::generate();
        let wrapped = wrap(&key(1), b"ctx", &kek);
        let decrypt_failed = |r: Result<Kek>| r.unwrap_err().kind() == ErrorKind::DecryptFailed;
        assert!(decrypt_failed(unwrap(&key(2), b"ctx", &wrapped)));
        assert!(decrypt_failed(unwrap(&key(1), b"other", &wrapped)));
        for bit in 0..wrapped.len() * 8 {
            let mut damaged = wrapped.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decrypt_failed(unwrap(&key(1), b"ctx", &damaged)),
                "bit {bit}"
            );
        }
        for len in [0, 1, 60, 62] {
            assert!(decrypt_failed(unwrap(&key(1), b"ctx", &vec![1; len])));
        }
    }

    #[test]
    fn wrap_keys_must_be_32_bytes() {
        for len in [0, 16, 31, 33] {
            let err = WrapKey::from_slice(&vec![0; len], "secret s")
                .err()
                .unwrap();
            assert_eq!(err.kind(), ErrorKind::WrapKeySize);
            assert_eq!(
                err.message(),
                format!("Wrap key must be 32 bytes: secret s holds {len} bytes")
            );
        }
    }
}
