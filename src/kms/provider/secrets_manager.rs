//! `aws`: the wrap key is the 32-byte value of a Secrets Manager secret; the KEK is wrapped and
//! unwrapped locally with AES-256-GCM (`crate::kms::aead`), bound to its index.
//!
//! The secret's value is read on every wrap and unwrap (so a revoked or deleted secret takes
//! effect at once) and wiped after use. Accepted values: `SecretBinary` of exactly 32 bytes, or a
//! `SecretString` holding exactly 32 bytes in standard base64 (44 characters). Anything else is
//! `WrapKeySize` ("Wrap key must be 32 bytes").

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{BoxFuture, WrapKeySource};
use crate::blob::Provider;
use crate::error::Result;
use crate::index_name::IndexName;
use crate::kms::aead::WrapKey;
use crate::kms::aws_clients::{provider_error, AwsClients, KeyRef};

/// The wrap key of the `aws` provider: the value of the Secrets Manager secret `key_id`.
pub(crate) struct SecretsManagerKey {
    clients: Arc<AwsClients>,
}

impl SecretsManagerKey {
    pub(crate) fn new(clients: Arc<AwsClients>) -> Self {
        SecretsManagerKey { clients }
    }

    async fn fetch(&self, key: KeyRef<'_>, index: &IndexName) -> Result<WrapKey> {
        let operation = "secretsmanager:GetSecretValue";
        let secrets = self.clients.for_key(key, index, operation).await?.secrets;
        let output = secrets
            .get_secret_value()
            .secret_id(key.key_id)
            .send()
            .await
            .map_err(|e| provider_error(index, operation, key, &e))?;
        let source = format!("secret {:?}", key.key_id);
        // Both values are taken over and wiped when dropped, in every branch.
        let text = output.secret_string.map(Zeroizing::new);
        let key = match (output.secret_binary, text.as_deref()) {
            (Some(binary), _) => WrapKey::from_vec(binary.into_inner(), &source),
            (None, Some(text)) => {
                let decoded = aws_smithy_types::base64::decode(text.trim()).unwrap_or_default();
                WrapKey::from_vec(decoded, &format!("{source} (SecretString, base64)"))
            }
            (None, None) => WrapKey::from_vec(Vec::new(), &source),
        };
        key.map_err(|e| e.context(format_args!("index {index}")))
    }
}

impl WrapKeySource for SecretsManagerKey {
    const PROVIDER: Provider = Provider::Aws;

    fn wrap_key<'a>(
        &'a self,
        key: KeyRef<'a>,
        index: &'a IndexName,
    ) -> BoxFuture<'a, Result<WrapKey>> {
        Box::pin(self.fetch(key, index))
    }
}
