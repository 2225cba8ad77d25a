//! SDK clients for the AWS providers, built once per (region, role) and reused, plus the mapping
//! of SDK failures to [`ErrorKind`]s an operator can act on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::sts::AssumeRoleProvider;
use aws_config::Region;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::OnceCell;

use super::registry::AssumeRole;
use crate::aws::{classify, find_cause, load_sdk_config, AwsFailure, AwsTimeouts};
use crate::error::{Error, ErrorKind};
use crate::index_name::IndexName;

/// Where a key lives and whose credentials reach it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub(crate) key_id: &'a str,
    pub(crate) region: &'a str,
    pub(crate) assume_role: Option<&'a AssumeRole>,
}

/// Clients sharing one SDK config (and so one credentials cache).
#[derive(Clone)]
pub(crate) struct ServiceClients {
    pub(crate) kms: aws_sdk_kms::Client,
    pub(crate) secrets: aws_sdk_secretsmanager::Client,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    region: String,
    /// role_arn, external_id, session name.
    role: Option<(String, String, String)>,
}

/// The cache of [`ServiceClients`]. Thread-safe; concurrent first uses of one key build once.
pub(crate) struct AwsClients {
    timeouts: AwsTimeouts,
    endpoint_url: Option<String>,
    clients: Mutex<HashMap<ClientKey, Arc<OnceCell<ServiceClients>>>>,
}

impl AwsClients {
    pub(crate) fn new(timeouts: AwsTimeouts, endpoint_url: Option<String>) -> AwsClients {
        AwsClients {
            timeouts,
            endpoint_url,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The clients for `key`'s region and role, built on first use. With a role, credentials come
    /// from `sts:AssumeRole` (with the ExternalId and session name) on top of the standard chain;
    /// the SDK caches them and refreshes them before they expire.
    pub(crate) async fn for_key(&self, key: KeyRef<'_>) -> ServiceClients {
        let cache_key = ClientKey {
            region: key.region.to_owned(),
            role: key.assume_role.map(|role| {
                (
                    role.role_arn.clone(),
                    role.external_id.clone(),
                    role.session_name().to_owned(),
                )
            }),
        };
        let cell = {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(clients.entry(cache_key).or_default())
        };
        cell.get_or_init(|| self.build(key)).await.clone()
    }

    async fn build(&self, key: KeyRef<'_>) -> ServiceClients {
        let endpoint = self.endpoint_url.as_deref();
        let base = load_sdk_config(key.region, &self.timeouts, endpoint, None).await;
        let config = match key.assume_role {
            None => base,
            Some(role) => {
                let provider = AssumeRoleProvider::builder(&role.role_arn)
                    .external_id(&role.external_id)
                    .session_name(role.session_name())
                    .region(Region::new(key.region.to_owned()))
                    .configure(&base)
                    .build()
                    .await;
                let credentials = SharedCredentialsProvider::new(provider);
                load_sdk_config(key.region, &self.timeouts, endpoint, Some(credentials)).await
            }
        };
        ServiceClients {
            kms: aws_sdk_kms::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
        }
    }
}

/// Maps the failure of `operation` (e.g. `kms:Decrypt`) for `index` to an [`Error`] whose message
/// names the operation and the AWS error code. If the failure came from assuming the slot's role,
/// the operation named is `sts:AssumeRole`.
pub(crate) fn provider_error<E>(
    index: &IndexName,
    operation: &str,
    error: &SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match find_cause::<SdkError<AssumeRoleError, HttpResponse>>(error) {
        Some(sts) => failure_error(index, "sts:AssumeRole", classify(sts)),
        None => failure_error(index, operation, classify(error)),
    }
}

/// The error for a classified failure of `operation`.
pub(crate) fn failure_error(index: &IndexName, operation: &str, failure: AwsFailure) -> Error {
    match failure {
        AwsFailure::Unavailable(why) => Error::new(
            ErrorKind::KmsUnavailable,
            format!("index {index}: {operation} failed: {why}"),
        ),
        AwsFailure::BadResponse(why) => Error::new(
            ErrorKind::KmsBadResponse,
            format!("index {index}: {operation} failed: {why}"),
        ),
        AwsFailure::Construction(why) => Error::new(
            ErrorKind::InvalidConfig,
            format!("index {index}: {operation} could not be sent: {why}"),
        ),
        AwsFailure::Service {
            code,
            message,
            status,
        } => Error::new(
            service_error_kind(&code, &message, status),
            format!("index {index}: {operation} failed: {code} (HTTP {status}): {message}"),
        ),
    }
}

/// The kind of an AWS service error code (KMS, Secrets Manager and STS codes).
fn service_error_kind(code: &str, message: &str, status: u16) -> ErrorKind {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "IncompleteSignature" => ErrorKind::KmsAccessDenied,
        "NotFoundException" | "ResourceNotFoundException" | "NoSuchEntity" => {
            ErrorKind::KmsKeyNotFound
        }
        "DisabledException" | "KMSInvalidStateException" | "KeyUnavailableException" => {
            ErrorKind::KmsKeyDisabled
        }
        // Secrets Manager refuses a secret scheduled for deletion with InvalidRequestException.
        "InvalidRequestException" if message.contains("deletion") => ErrorKind::KmsKeyDisabled,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "LimitExceededException"
        | "RequestLimitExceeded" => ErrorKind::KmsThrottled,
        "InvalidCiphertextException" | "IncorrectKeyException" | "DecryptionFailure" => {
            ErrorKind::DecryptFailed
        }
        _ if status >= 500 => ErrorKind::KmsUnavailable,
        _ => ErrorKind::KmsBadResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes_map_to_actionable_kinds() {
        let cases = [
            ("AccessDeniedException", "", 400, ErrorKind::KmsAccessDenied),
            ("AccessDenied", "", 403, ErrorKind::KmsAccessDenied),
            ("NotFoundException", "", 400, ErrorKind::KmsKeyNotFound),
            (
                "ResourceNotFoundException",
                "",
                400,
                ErrorKind::KmsKeyNotFound,
            ),
            ("DisabledException", "", 400, ErrorKind::KmsKeyDisabled),
            (
                "KMSInvalidStateException",
                "",
                400,
                ErrorKind::KmsKeyDisabled,
            ),
            (
                "InvalidRequestException",
                "marked for deletion",
                400,
                ErrorKind::KmsKeyDisabled,
            ),
            (
                "InvalidRequestException",
                "other",
                400,
                ErrorKind::KmsBadResponse,
            ),
            ("ThrottlingException", "", 400, ErrorKind::KmsThrottled),
            (
                "InvalidCiphertextException",
                "",
                400,
                ErrorKind::DecryptFailed,
            ),
            ("KMSInternalException", "", 500, ErrorKind::KmsUnavailable),
            ("SomethingNew", "", 400, ErrorKind::KmsBadResponse),
        ];
        for (code, message, status, kind) in cases {
            assert_eq!(service_error_kind(code, message, status), kind, "{code}");
        }
    }

    #[test]
    fn messages_name_index_operation_code_and_status() {
        let index = IndexName::new("orders").unwrap();
        let failure = AwsFailure::Service {
            code: "AccessDeniedException".into(),
            message: "not allowed".into(),
            status: 400,
        };
        let err = failure_error(&index, "kms:Decrypt", failure);
        assert_eq!(err.kind(), ErrorKind::KmsAccessDenied);
        assert_eq!(
            err.message(),
            "index \"orders\": kms:Decrypt failed: AccessDeniedException (HTTP 400): not allowed"
        );
    }
}
