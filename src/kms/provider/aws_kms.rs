//! `aws-kms`: `kms:Encrypt` of the KEK under the slot's key, `kms:Decrypt` with the KeyId pinned to
//! the envelope's key; the EncryptionContext binds the ciphertext to its index. Same-KEK re-wraps
//! from one `aws-kms` key to another use `kms:ReEncrypt`, so the KEK stays inside KMS.

use std::sync::Arc;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::Blob;
use zeroize::Zeroize;

use super::{BoxFuture, KekProvider};
use crate::error::{Error, ErrorKind, Result};
use crate::index_name::IndexName;
use crate::kms::aws_clients::{provider_error, AwsClients, KeyRef};
use crate::kms::binding::kms_encryption_context;
use crate::kms::kek::Kek;

pub(crate) struct AwsKmsProvider {
    clients: Arc<AwsClients>,
}

impl AwsKmsProvider {
    pub(crate) fn new(clients: Arc<AwsClients>) -> Self {
        AwsKmsProvider { clients }
    }
}

/// What a `kms:ReEncrypt` attempt came to.
pub(crate) enum ReEncrypted {
    /// The KEK wrapped under the destination key (the new `CiphertextBlob`).
    Wrapped(Vec<u8>),
    /// KMS refused the call in a way the caller may answer with `kms:Decrypt` + `kms:Encrypt`
    /// (see [`REENCRYPT_FALLBACK_CODES`]); the error says why, for the log.
    NotApplicable(Error),
}

/// The `kms:ReEncrypt` error codes after which a re-wrap falls back to `kms:Decrypt` +
/// `kms:Encrypt`: the caller lacks `kms:ReEncryptFrom` / `kms:ReEncryptTo` (a deployment that
/// granted only Encrypt and Decrypt), or the endpoint does not offer the operation. The fallback
/// is authorised by the keys' own Decrypt and Encrypt grants to the same principal, so it never
/// reaches further than those; every other failure (not found, disabled, bad ciphertext,
/// throttling, unavailable) is the re-wrap's error, as a Decrypt would hit it too.
const REENCRYPT_FALLBACK_CODES: &[&str] =
    &["AccessDeniedException", "UnsupportedOperationException"];

impl AwsKmsProvider {
    /// Re-wraps `wrapped` (the KEK of `index` under `source`) under `destination` with one
    /// `kms:ReEncrypt`, sent with `destination`'s region and credentials: `SourceKeyId` is pinned
    /// to `source`, and both encryption contexts are the index's, so the result unwraps through
    /// [`KekProvider::unwrap`] as a `kms:Encrypt` of the same KEK would. The KEK never reaches
    /// this process. The caller checks that one call can serve both keys (same region and
    /// credentials).
    ///
    /// Errors: as [`KekProvider::unwrap`]'s and `wrap`'s provider errors, named `kms:ReEncrypt`;
    /// `KmsBadResponse` for an answer without a ciphertext. A fallback-able refusal is
    /// `Ok(ReEncrypted::NotApplicable)`.
    pub(crate) async fn reencrypt(
        &self,
        source: KeyRef<'_>,
        destination: KeyRef<'_>,
        index: &IndexName,
        wrapped: &[u8],
    ) -> Result<ReEncrypted> {
        let operation = "kms:ReEncrypt";
        let kms = self
            .clients
            .for_key(destination, index, operation)
            .await?
            .kms;
        let mut request = kms
            .re_encrypt()
            .source_key_id(source.key_id)
            .destination_key_id(destination.key_id)
            .ciphertext_blob(Blob::new(wrapped));
        for (name, value) in kms_encryption_context(index) {
            request = request
                .source_encryption_context(name.clone(), value.clone())
                .destination_encryption_context(name, value);
        }
        match request.send().await {
            Ok(output) => match output.ciphertext_blob {
                Some(blob) if !blob.as_ref().is_empty() => {
                    Ok(ReEncrypted::Wrapped(blob.into_inner()))
                }
                _ => Err(Error::new(
                    ErrorKind::KmsBadResponse,
                    format!("index {index}: {operation} returned no CiphertextBlob"),
                )),
            },
            Err(e) => {
                let error = provider_error(index, operation, destination, &e);
                let code = e.as_service_error().and_then(|s| s.code());
                match code {
                    Some(code) if REENCRYPT_FALLBACK_CODES.contains(&code) => {
                        Ok(ReEncrypted::NotApplicable(error))
                    }
                    _ => Err(error),
                }
            }
        }
    }
}

impl KekProvider for AwsKmsProvider {
    fn wrap<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
        kek: &'a Kek,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let kms = self.clients.for_key(key, index, "kms:Encrypt").await?.kms;
            let mut request = kms
                .encrypt()
                .key_id(key.key_id)
                .plaintext(Blob::new(kek.as_bytes().to_vec()));
            for (name, value) in kms_encryption_context(index) {
                request = request.encryption_context(name, value);
            }
            let output = request
                .send()
                .await
                .map_err(|e| provider_error(index, "kms:Encrypt", key, &e))?;
            match output.ciphertext_blob {
                Some(blob) if !blob.as_ref().is_empty() => Ok(blob.into_inner()),
                _ => Err(Error::new(
                    ErrorKind::KmsBadResponse,
                    format!("index {index}: kms:Encrypt returned no CiphertextBlob"),
                )),
            }
        })
    }

    fn unwrap<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
        wrapped: &'a [u8],
    ) -> BoxFuture<'a, Result<Kek>> {
        Box::pin(async move {
            let kms = self.clients.for_key(key, index, "kms:Decrypt").await?.kms;
            let mut request = kms
                .decrypt()
                .key_id(key.key_id)
                .ciphertext_blob(Blob::new(wrapped));
            for (name, value) in kms_encryption_context(index) {
                request = request.encryption_context(name, value);
            }
            let output = request
                .send()
                .await
                .map_err(|e| provider_error(index, "kms:Decrypt", key, &e))?;
            let mut plaintext = output.plaintext.map(Blob::into_inner).unwrap_or_default();
            let kek = Kek::from_slice(&plaintext).map_err(|_| {
                Error::new(
                    ErrorKind::DecryptFailed,
                    format!(
                        "index {index}: kms:Decrypt returned {} bytes of plaintext; a KEK is 32",
                        plaintext.len()
                    ),
                )
            });
            plaintext.zeroize();
            kek
        })
    }
}
