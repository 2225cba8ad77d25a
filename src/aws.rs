//! What every AWS-facing part (KMS providers, S3 storage) shares: SDK configuration with bounded
//! time (connect and operation timeouts, retry attempts, a pinned `BehaviorVersion`), and the
//! classification of SDK errors into what an operator can act on.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The SDK behaviour this release was tested against; pinned so an SDK upgrade cannot silently
/// change retry or timeout defaults.
pub(crate) fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Time and retry bounds for every AWS call, so no call can hang.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// Time to establish a TCP/TLS connection. Default 3 s.
    pub connect: Duration,
    /// Time for one attempt (request and response). Default 5 s.
    pub attempt: Duration,
    /// Time for the whole operation, retries included. Default 15 s.
    pub operation: Duration,
    /// Attempts per operation, the first included (1 = no retry). Default 3.
    pub max_attempts: u32,
    /// Upper bound of the first retry's randomized exponential backoff. Default 1 s (the SDK's).
    pub initial_backoff: Duration,
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        AwsTimeouts {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(5),
            operation: Duration::from_secs(15),
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

/// Loads SDK configuration for `region`: the standard chain (environment, profile, web identity,
/// ECS/IMDS — `AWS_EC2_METADATA_DISABLED` honoured) unless `credentials` is given;
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` honoured unless `endpoint_url` is given.
pub(crate) async fn load_sdk_config(
    region: &str,
    timeouts: &AwsTimeouts,
    endpoint_url: Option<&str>,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(behavior_version())
        .region(Region::new(region.to_owned()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(timeouts.max_attempts.max(1))
                .with_initial_backoff(timeouts.initial_backoff),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}

/// What an SDK call's failure means, independent of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsFailure {
    /// No usable answer in time: connect failure, timeout, connection reset.
    Unavailable(String),
    /// The service answered with an error: its code (e.g. `AccessDeniedException`), message and
    /// HTTP status.
    Service {
        code: String,
        message: String,
        status: u16,
    },
    /// The answer could not be understood (malformed body, unexpected status without a code).
    BadResponse(String),
    /// The request could not be built (bad configuration, e.g. an invalid endpoint URL).
    Construction(String),
}

/// Classifies an SDK error. The texts carry the SDK's own explanation, never request payloads.
pub(crate) fn classify<E>(error: &SdkError<E, HttpResponse>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let explained = || DisplayErrorContext(error).to_string();
    match error {
        SdkError::TimeoutError(_) => {
            AwsFailure::Unavailable(format!("timed out ({})", explained()))
        }
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            AwsFailure::Unavailable(format!("timed out ({})", explained()))
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => {
            AwsFailure::Construction(explained())
        }
        SdkError::DispatchFailure(_) => {
            AwsFailure::Unavailable(format!("unreachable ({})", explained()))
        }
        SdkError::ResponseError(_) => {
            AwsFailure::BadResponse(format!("malformed response ({})", explained()))
        }
        SdkError::ConstructionFailure(_) => AwsFailure::Construction(explained()),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err().code() {
                Some(code) => AwsFailure::Service {
                    code: code.to_owned(),
                    message: service.err().message().unwrap_or("").to_owned(),
                    status,
                },
                None => AwsFailure::BadResponse(format!(
                    "HTTP {status} without an error code ({})",
                    explained()
                )),
            }
        }
        _ => AwsFailure::BadResponse(explained()),
    }
}
