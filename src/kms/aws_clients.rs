//! SDK clients for the AWS providers, built once per (region, role) and reused, plus the mapping
//! of SDK failures to [`ErrorKind`]s an operator can act on.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_config::identity::IdentityCache;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::OnceCell;

use super::registry::AssumeRole;
use crate::aws::{
    classify_hiding, find_cause, load_sdk_config, AwsFailure, AwsTimeouts, ResponseBodyLimit,
    KMS_ENDPOINT_VARIABLES,
};
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

/// The endpoints of the services the KMS client calls (already checked): each service's own, else
/// the shared one, else (`None`) the SDK's resolution through `AWS_ENDPOINT_URL*`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceEndpoints {
    pub(crate) shared: Option<String>,
    pub(crate) kms: Option<String>,
    /// KMS endpoints of particular regions, before `kms` for keys in those regions.
    pub(crate) kms_by_region: BTreeMap<String, String>,
    pub(crate) secrets_manager: Option<String>,
    pub(crate) sts: Option<String>,
}

impl ServiceEndpoints {
    /// Whether every service has an endpoint from the options (no `AWS_ENDPOINT_URL*` is read).
    pub(crate) fn all_explicit(&self) -> bool {
        self.shared.is_some()
            || (self.kms.is_some() && self.secrets_manager.is_some() && self.sts.is_some())
    }
}

/// The cache of [`ServiceClients`]. Thread-safe; concurrent first uses of one key build once.
pub(crate) struct AwsClients {
    timeouts: AwsTimeouts,
    endpoints: ServiceEndpoints,
    clients: Mutex<HashMap<ClientKey, Arc<OnceCell<ServiceClients>>>>,
}

impl AwsClients {
    pub(crate) fn new(timeouts: AwsTimeouts, endpoints: ServiceEndpoints) -> AwsClients {
        AwsClients {
            timeouts,
            endpoints,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The clients for `key`'s region and role, built on first use. With a role, credentials come
    /// from `sts:AssumeRole` (with the ExternalId and session name) on top of the standard chain;
    /// the SDK caches them and refreshes them before they expire. Every client (KMS, Secrets
    /// Manager, STS) bounds the response bodies it reads ([`ResponseBodyLimit::small`]).
    ///
    /// Errors: `InvalidConfig` (naming `operation` for `index`) if an `AWS_ENDPOINT_URL*`
    /// variable the SDK would use holds an unusable URL; a failed build is retried by the next
    /// call.
    pub(crate) async fn for_key(
        &self,
        key: KeyRef<'_>,
        index: &IndexName,
        operation: &str,
    ) -> crate::error::Result<ServiceClients> {
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
        cell.get_or_try_init(|| self.build(key))
            .await
            .cloned()
            .map_err(|why| failure_error(index, operation, AwsFailure::Construction(why)))
    }

    async fn build(&self, key: KeyRef<'_>) -> Result<ServiceClients, String> {
        let endpoints = &self.endpoints;
        let shared = endpoints.shared.as_deref();
        let variables = match endpoints.all_explicit() {
            true => &[][..],
            false => KMS_ENDPOINT_VARIABLES,
        };
        let (base, _) =
            load_sdk_config(key.region, &self.timeouts, shared, variables, None).await?;
        let config = match key.assume_role {
            None => base,
            Some(role) => {
                // The same configuration (files read, endpoints checked once), with the role's
                // credentials.
                let sts_endpoint = endpoints.sts.as_deref();
                let provider = AssumeRoleCredentials::new(role, key.region, &base, sts_endpoint);
                base.to_builder()
                    .credentials_provider(SharedCredentialsProvider::new(provider))
                    .build()
            }
        };
        // A service's own endpoint replaces the shared one (already in `config`); without either,
        // the builder keeps what the SDK resolved from `AWS_ENDPOINT_URL*`.
        let mut kms = aws_sdk_kms::config::Builder::from(&config);
        if let Some(url) = endpoints
            .kms_by_region
            .get(key.region)
            .or(endpoints.kms.as_ref())
        {
            kms = kms.endpoint_url(url);
        }
        let kms = kms.interceptor(ResponseBodyLimit::small()).build();
        let mut secrets = aws_sdk_secretsmanager::config::Builder::from(&config);
        if let Some(url) = &endpoints.secrets_manager {
            secrets = secrets.endpoint_url(url);
        }
        let secrets = secrets.interceptor(ResponseBodyLimit::small()).build();
        Ok(ServiceClients {
            kms: aws_sdk_kms::Client::from_conf(kms),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets),
        })
    }
}

/// Credentials from `sts:AssumeRole` of one role (with its ExternalId and session name), signed
/// with the base config's credentials. Used instead of aws-config's `AssumeRoleProvider` because
/// that builds its own STS client, which cannot carry the [`ResponseBodyLimit`] interceptor.
/// Caching and refresh before expiry are the SDK identity cache's, as with that provider.
/// `Debug` never shows the ExternalId.
struct AssumeRoleCredentials {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: String,
    session_name: String,
}

/// The credentials provider name recorded on assumed-role credentials.
const ASSUME_ROLE_PROVIDER_NAME: &str = "cyborgdb-kms-assume-role";

impl AssumeRoleCredentials {
    /// `sts_endpoint`: the STS endpoint option, overriding the base config's endpoint.
    fn new(
        role: &AssumeRole,
        region: &str,
        base: &aws_config::SdkConfig,
        sts_endpoint: Option<&str>,
    ) -> Self {
        // As aws-config's provider does: no identity cache of its own (the clients using these
        // credentials cache them), the role's region.
        let mut config = aws_sdk_sts::config::Builder::from(base);
        if let Some(url) = sts_endpoint {
            config = config.endpoint_url(url);
        }
        let config = config
            .identity_cache(IdentityCache::no_cache())
            .region(Region::new(region.to_owned()))
            .interceptor(ResponseBodyLimit::small())
            .build();
        AssumeRoleCredentials {
            sts: aws_sdk_sts::Client::from_conf(config),
            role_arn: role.role_arn.clone(),
            external_id: role.external_id.clone(),
            session_name: role.session_name().to_owned(),
        }
    }

    async fn assume(&self) -> aws_credential_types::provider::Result {
        let output = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .external_id(&self.external_id)
            .role_session_name(&self.session_name)
            .send()
            .await
            .map_err(CredentialsError::provider_error)?;
        let Some(credentials) = output.credentials else {
            return Err(CredentialsError::unhandled(
                "sts:AssumeRole returned no credentials",
            ));
        };
        let expiry = SystemTime::try_from(credentials.expiration).map_err(|_| {
            CredentialsError::unhandled("sts:AssumeRole returned an unrepresentable expiration")
        })?;
        Ok(Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            Some(expiry),
            ASSUME_ROLE_PROVIDER_NAME,
        ))
    }
}

impl fmt::Debug for AssumeRoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleCredentials")
            .field("role_arn", &self.role_arn)
            .field("external_id", &"<redacted>")
            .field("session_name", &self.session_name)
            .finish()
    }
}

impl ProvideCredentials for AssumeRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}

/// Maps the failure of `operation` (e.g. `kms:Decrypt`) on `key` for `index` to an [`Error`]
/// whose message names the operation and the AWS error code. If the failure came from assuming
/// the slot's role, the operation named is `sts:AssumeRole`. The role's ExternalId, which the
/// STS request carries, is redacted from whatever the service answered.
pub(crate) fn provider_error<E>(
    index: &IndexName,
    operation: &str,
    key: KeyRef<'_>,
    error: &SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let hidden: &[&str] = match key.assume_role {
        Some(role) => &[role.external_id.as_str()],
        None => &[],
    };
    match find_cause::<SdkError<AssumeRoleError, HttpResponse>>(error) {
        Some(sts) => failure_error(index, "sts:AssumeRole", classify_hiding(sts, hidden)),
        None => failure_error(index, operation, classify_hiding(error, hidden)),
    }
}

/// The error for a classified failure of `operation`; the failure's text is its one
/// [rendering](AwsFailure).
pub(crate) fn failure_error(index: &IndexName, operation: &str, failure: AwsFailure) -> Error {
    let kind = match &failure {
        AwsFailure::Unavailable(_) => ErrorKind::KmsUnavailable,
        AwsFailure::BadResponse(_) => ErrorKind::KmsBadResponse,
        AwsFailure::Construction(_) => {
            return Error::new(
                ErrorKind::InvalidConfig,
                format!("index {index}: {operation} could not be sent: {failure}"),
            )
        }
        AwsFailure::Credentials { missing: true, .. } => ErrorKind::KmsAccessDenied,
        AwsFailure::Credentials { missing: false, .. } => ErrorKind::KmsUnavailable,
        AwsFailure::Service {
            code,
            message,
            status,
        } => service_error_kind(code, message, *status),
    };
    Error::new(
        kind,
        format!("index {index}: {operation} failed: {failure}"),
    )
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
