//! `aws-kms`: `kms:Encrypt` of the KEK under the slot's key, `kms:Decrypt` with the KeyId pinned to
//! the envelope's key; the EncryptionContext binds the ciphertext to its index.

use std::sync::Arc;

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
