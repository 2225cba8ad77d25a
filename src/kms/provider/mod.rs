//! The provider interface and its implementations. A provider wraps a KEK under a key it names
//! and unwraps it again; each binds the wrapped KEK to its index ([`super::binding`]). Adding a
//! provider means one more [`KekProvider`] implementation and one more [`crate::Provider`].

mod aws_kms;
mod local;
mod secrets_manager;

use std::future::Future;
use std::pin::Pin;

pub(crate) use aws_kms::AwsKmsProvider;
pub(crate) use local::LocalProvider;
pub(crate) use secrets_manager::SecretsManagerProvider;

use super::aws_clients::KeyRef;
use super::kek::Kek;
use crate::error::Result;
use crate::index_name::IndexName;

/// A boxed, sendable future (providers are used as trait objects).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Wraps and unwraps KEKs under keys of one kind. Implementations are shared across threads.
pub(crate) trait KekProvider: Send + Sync {
    /// Wraps `kek` for `index` under `key`; returns the provider's wrapped bytes.
    fn wrap<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
        kek: &'a Kek,
    ) -> BoxFuture<'a, Result<Vec<u8>>>;

    /// Unwraps `wrapped` for `index` under `key`. Errors: `DecryptFailed` when the bytes do not
    /// authenticate for this index and key, or the result is not 32 bytes; provider errors.
    fn unwrap<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
        wrapped: &'a [u8],
    ) -> BoxFuture<'a, Result<Kek>>;
}
