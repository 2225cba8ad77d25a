//! The provider interface and its implementations. A provider wraps a KEK under a key it names
//! and unwraps it again; each binds the wrapped KEK to its index ([`super::binding`]). Adding a
//! provider means one more [`KekProvider`] implementation and one more [`crate::Provider`] — or,
//! for one that wraps locally with AES-256-GCM, just one more [`WrapKeySource`].

mod aws_kms;
mod local;
mod secrets_manager;

use std::future::Future;
use std::pin::Pin;

pub(crate) use aws_kms::{AwsKmsProvider, ReEncrypted};
pub(crate) use local::LocalMasterKey;
pub(crate) use secrets_manager::SecretsManagerKey;

use zeroize::zeroize_stack;

use super::aead::{self, WrapKey};
use super::aws_clients::KeyRef;
use super::binding::aead_associated_data;
use super::kek::Kek;
use crate::blob::Provider;
use crate::error::{quoted_prefix, Result};
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

/// Where a locally wrapping provider's 32-byte wrap key comes from.
pub(crate) trait WrapKeySource: Send + Sync {
    /// The provider named in the associated data of what this key wraps.
    const PROVIDER: Provider;

    /// The wrap key `key` names, fetched for `index` (named in errors). Errors: `WrapKeySize`
    /// for a key that is not 32 bytes; the source's own failures.
    fn wrap_key<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
    ) -> BoxFuture<'a, Result<WrapKey>>;
}

/// A provider that wraps KEKs locally with AES-256-GCM (format v1, [`super::aead`]) under the
/// wrap key from `S`, bound to the index by the associated data.
///
/// Each wrap and unwrap ends, on whatever thread polls it last and whatever the outcome, by
/// zeroing [`FETCH_STACK_WIPE_BYTES`] of stack below the frame that polls it: the fetch of the wrap
/// key (the AWS SDK's response parsing and base64 decoding, the file or variable read) and the
/// cipher leave copies of the key in frames that are dead by then.
pub(crate) struct AeadProvider<S>(pub(crate) S);

/// Bytes of stack that an [`AeadProvider`] wrap or unwrap zeroes below the frame polling it. In a
/// debug build the deepest wrap-key copy lies 16 to 24 KiB below that frame, for Secrets Manager
/// and local alike (`tests/stack_residue.rs` with this wipe alone: 16 KiB left copies, 24 KiB
/// none); 32 KiB leaves a margin and adds little to the stack the AWS SDK itself needs.
const FETCH_STACK_WIPE_BYTES: usize = 32 * 1024;

impl<S: WrapKeySource> KekProvider for AeadProvider<S> {
    fn wrap<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
        kek: &'a Kek,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let wrapped = async {
                let wrap_key = self.0.wrap_key(key, index).await?;
                let aad = aead_associated_data(S::PROVIDER, index);
                // The wipe below covers the cipher's frames too: no second, inner wipe.
                Ok(aead::wrap_on_deeper_frames(&wrap_key, &aad, kek))
            }
            .await;
            zeroize_stack::<FETCH_STACK_WIPE_BYTES>();
            wrapped
        })
    }

    fn unwrap<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
        wrapped: &'a [u8],
    ) -> BoxFuture<'a, Result<Kek>> {
        Box::pin(async move {
            let kek = async {
                let wrap_key = self.0.wrap_key(key, index).await?;
                let aad = aead_associated_data(S::PROVIDER, index);
                aead::unwrap_on_deeper_frames(&wrap_key, &aad, wrapped).map_err(|e| {
                    e.context(format_args!(
                        "index {index}: unwrap under {}",
                        quoted_prefix(key.key_id)
                    ))
                })
            }
            .await;
            zeroize_stack::<FETCH_STACK_WIPE_BYTES>();
            kek
        })
    }
}
