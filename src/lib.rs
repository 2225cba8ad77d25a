//! Per-index KMS envelopes for CyborgDB.
//!
//! An envelope ([`KmsBlob`]) records how one index's 32-byte key-encryption key is wrapped by an
//! external Key Management Service. This crate stores envelopes next to the index keystore (see
//! [`StorageConfig`]) with the four documented operations — [`create_index_kms`] (strict insert),
//! [`push_index_kms`] (upsert), [`get_index_kms`] and [`delete_index_kms`] (idempotent) — plus
//! [`list_index_kms`] (Rust only), and exports the four to C (`include/cyborgdb_core/index_kms.h`, module [`ffi`]) and C++
//! (`include/cyborgdb_core/index_kms.hpp`).
//!
//! Layout: [`blob`] (the envelope and its validation), [`index_name`] (name rules and their
//! file-name encoding), `codec` (the FlatBuffers file format), [`storage`] (one backend per kind of
//! store), `envelope` (the operations), [`logging`] (the host's log callback) and [`ffi`] (the C
//! boundary, no logic of its own), [`audit`] (the hash-chained custody audit kept with the
//! envelopes).

pub mod audit;
mod aws;
pub mod blob;
pub mod cache;
mod codec;
mod envelope;
pub mod error;
pub mod ffi;
mod fs_bounded;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod index_name;
pub mod kms;
pub mod logging;
pub mod resolver;
mod runtime;
pub mod storage;

pub use aws::{AwsRetryMode, AwsTimeouts, MAX_ATTEMPTS_LIMIT};
pub use blob::{KmsBlob, Provider};
pub use cache::{
    CacheStats, Clock, KekCacheOptions, ManualClock, DEFAULT_STALE_IF_ERROR, MAX_REVALIDATE,
    REVALIDATE_ENV_VAR, STALE_IF_ERROR_ENV_VAR,
};
pub use envelope::{
    create_index_kms, delete_index_kms, get_index_kms, list_index_kms, push_index_kms,
};
pub use error::{Error, ErrorKind, Result};
pub use index_name::IndexName;
pub use kms::{Kek, KeyIdentity, KmsClient, KmsClientOptions, KmsClientStats, Registry, Slot};
pub use logging::{clear_log_callback, set_log_callback, LogLevel, LogRecord};
pub use resolver::{
    DriftEntry, DriftStatus, KekResolver, KeySnapshot, RotateKekError, Rotation, RotationState,
};
pub use storage::{S3Credentials, S3Options, S3ServerSideEncryption, StorageConfig};
