//! [`Kek`]: a 32-byte key-encryption key in memory that is wiped on drop.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A 32-byte key-encryption key (KEK).
///
/// The bytes live on the heap in one place for the value's whole life (moves copy only a pointer)
/// and are overwritten with zeros when it is dropped. `Debug` prints no key bytes. Clones are
/// independent copies, each wiped on drop. Thread-safe (`Send + Sync`, immutable).
#[derive(Clone)]
pub struct Kek(Box<Zeroizing<[u8; Kek::LEN]>>);

impl Kek {
    /// The length of every KEK in bytes.
    pub const LEN: usize = 32;

    /// A fresh random KEK from the operating system's CSPRNG.
    pub fn generate() -> Kek {
        let mut kek = Kek(Box::new(Zeroizing::new([0u8; Kek::LEN])));
        OsRng.fill_bytes(&mut kek.0[..]);
        kek
    }

    /// A KEK holding a copy of `bytes` (the caller wipes its own copy).
    ///
    /// Errors: `InvalidArgument` unless `bytes` is exactly 32 bytes long (the message gives the
    /// length, never the bytes).
    pub fn from_slice(bytes: &[u8]) -> Result<Kek> {
        if bytes.len() != Kek::LEN {
            return Err(Error::invalid_argument(format!(
                "a KEK is {} bytes, not {}",
                Kek::LEN,
                bytes.len()
            )));
        }
        let mut kek = Kek(Box::new(Zeroizing::new([0u8; Kek::LEN])));
        kek.0.copy_from_slice(bytes);
        Ok(kek)
    }

    /// The key bytes. Do not keep copies that outlive this value without wiping them.
    pub fn as_bytes(&self) -> &[u8; Kek::LEN] {
        &self.0
    }
}

impl PartialEq for Kek {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

impl Eq for Kek {}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<32 bytes, redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ_and_debug_redacts() {
        let a = Kek::generate();
        let b = Kek::generate();
        assert_ne!(a, b);
        assert_eq!(a, a.clone());
        let shown = format!("{a:?}");
        assert_eq!(shown, "Kek(<32 bytes, redacted>)");
    }

    #[test]
    fn from_slice_needs_exactly_32_bytes() {
        assert_eq!(Kek::from_slice(&[7; 32]).unwrap().as_bytes(), &[7; 32]);
        for len in [0, 16, 31, 33, 64] {
            let err = Kek::from_slice(&vec![1; len]).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
            assert_eq!(err.message(), format!("a KEK is 32 bytes, not {len}"));
        }
    }
}
