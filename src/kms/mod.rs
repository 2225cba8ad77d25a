//! Wrapping and unwrapping index KEKs through external KMS providers.
//!
//! Layout: [`kek`] (the zeroizing KEK type), [`registry`] (named slots, YAML), [`binding`] (the
//! index binding: KMS EncryptionContext and AES-GCM associated data), [`aead`] (the local wrapped
//! format of `aws` and `local`, public so a holder of the wrap key can open envelopes offline), `provider` (one [`KekProvider`](provider::KekProvider) per
//! provider), `aws_clients` (SDK clients per region and role, error mapping) and [`client`] (the
//! public [`KmsClient`]).

pub mod aead;
mod aws_clients;
pub mod binding;
pub mod client;
pub mod kek;
mod provider;
pub mod registry;

pub use aead::{FORMAT_V1 as WRAPPED_FORMAT_V1, WRAPPED_LEN_V1};
pub use client::{KmsClient, KmsClientOptions, KmsClientStats};
pub use kek::Kek;
pub use registry::{AssumeRole, KeyIdentity, Registry, Slot, DEFAULT_ROLE_SESSION_NAME};
