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

use crate::error::quoted_prefix;

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

impl AwsTimeouts {
    /// Why these bounds are unusable (a zero timeout, zero attempts), or `Ok`. The message names
    /// the field; callers prefix what they configure and pick the error kind.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        for (name, value) in [
            ("connect", self.connect),
            ("attempt", self.attempt),
            ("operation", self.operation),
        ] {
            if value.is_zero() {
                return Err(format!("{name} timeout must not be zero"));
            }
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Why `endpoint` is not a usable endpoint URL — `http://` or `https://`, a host, an optional port
/// and path; no user info, query or fragment — or `Ok`. The message starts with the quoted
/// endpoint, any user info (it may hold a password) replaced by `<user info>`.
pub(crate) fn check_endpoint_url(endpoint: &str) -> std::result::Result<(), String> {
    let shown = match endpoint.split_once('@') {
        Some((_, host)) => format!("<user info>@{host}"),
        None => endpoint.to_owned(),
    };
    let bad = |why: &str| Err(format!("{} {why}", quoted_prefix(&shown)));
    let Some(rest) = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
    else {
        return bad("must start with http:// or https://");
    };
    if endpoint.bytes().any(|b| b.is_ascii_control() || b == b' ') || !endpoint.is_ascii() {
        return bad("must be printable ASCII without spaces");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return bad("has no host");
    }
    if authority.contains('@') {
        return bad("must not contain user info (pass credentials separately)");
    }
    if endpoint.contains('?') || endpoint.contains('#') {
        return bad("must not have a query or fragment");
    }
    Ok(())
}

/// The first error of type `T` in `error`'s source chain, `error` itself included — e.g. the STS
/// failure behind a credentials error behind a KMS call's dispatch failure.
pub(crate) fn find_cause<'e, T: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
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

/// Loads SDK configuration for `region` (`timeouts` already [checked](AwsTimeouts::check)): the standard chain (environment, profile, web identity,
/// ECS/IMDS — `AWS_EC2_METADATA_DISABLED` honoured) unless `credentials` is given;
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` honoured unless `endpoint_url` is given.
/// Every config shares the process-wide HTTP client ([`crate::runtime::http_client`]).
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
                .with_max_attempts(timeouts.max_attempts)
                .with_initial_backoff(timeouts.initial_backoff),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // The process's one HTTP client: connection pools per endpoint, not per SDK config. (Called
    // on that runtime, so it exists; if it somehow did not, the SDK's own default is used.)
    if let Ok(http_client) = crate::runtime::http_client() {
        loader = loader.http_client(http_client);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_checked_and_user_info_never_shown() {
        for good in [
            "http://127.0.0.1:4566",
            "https://kms.eu-west-1.amazonaws.com/",
            "http://h/p",
        ] {
            check_endpoint_url(good).unwrap();
        }
        let cases = [
            (
                "127.0.0.1:4566",
                "\"127.0.0.1:4566\" must start with http:// or https://",
            ),
            ("ftp://x", "\"ftp://x\" must start with http:// or https://"),
            (
                "http://a b",
                "\"http://a b\" must be printable ASCII without spaces",
            ),
            ("http://", "\"http://\" has no host"),
            (
                "http://h?x=1",
                "\"http://h?x=1\" must not have a query or fragment",
            ),
            (
                "http://me:hunter2@h",
                "\"<user info>@h\" must not contain user info (pass credentials separately)",
            ),
        ];
        for (endpoint, expected) in cases {
            assert_eq!(check_endpoint_url(endpoint).unwrap_err(), expected);
        }
    }

    #[test]
    fn timeouts_must_be_non_zero_with_at_least_one_attempt() {
        AwsTimeouts::default().check().unwrap();
        let zero_attempt = AwsTimeouts {
            attempt: Duration::ZERO,
            ..AwsTimeouts::default()
        };
        assert_eq!(
            zero_attempt.check().unwrap_err(),
            "attempt timeout must not be zero"
        );
        let no_attempts = AwsTimeouts {
            max_attempts: 0,
            ..AwsTimeouts::default()
        };
        assert_eq!(
            no_attempts.check().unwrap_err(),
            "max_attempts must be at least 1"
        );
    }

    #[test]
    fn find_cause_walks_the_source_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::other("inner"));
        let found = find_cause::<std::io::Error>(&error).unwrap();
        assert_eq!(found.to_string(), "inner");
        assert!(find_cause::<Outer>(&error).is_some());
        assert!(find_cause::<std::fmt::Error>(&error).is_none());
    }
}
