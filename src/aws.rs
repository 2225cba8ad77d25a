//! What every AWS-facing part (KMS providers, S3 storage) shares: SDK configuration with bounded
//! time (connect and operation timeouts, retry attempts, a pinned `BehaviorVersion`), endpoint URL
//! checks (options and the `AWS_ENDPOINT_URL*` variables), bounded response bodies, and the one
//! classification and rendering of SDK errors into what an operator can act on — never a request,
//! a response body or an SDK error's `Debug`/`Display` dump.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
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
    /// Attempts per operation, the first included (1 = no retry), at most [`MAX_ATTEMPTS_LIMIT`].
    /// `None` (the default): `AWS_MAX_ATTEMPTS`, else `max_attempts` of the selected profile in
    /// the shared AWS config file, else 3.
    pub max_attempts: Option<u32>,
    /// How retries are paced. `None` (the default): `AWS_RETRY_MODE`, else `retry_mode` of the
    /// selected profile, else [`AwsRetryMode::Standard`].
    pub retry_mode: Option<AwsRetryMode>,
    /// Upper bound of the first retry's randomized exponential backoff. Default 1 s (the SDK's).
    pub initial_backoff: Duration,
}

/// The SDK's retry strategies (`AWS_RETRY_MODE` / the profile's `retry_mode` spell them
/// `standard` and `adaptive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsRetryMode {
    /// Randomized exponential backoff, with a retry quota per client.
    Standard,
    /// As `Standard`, plus a client-side rate limiter that slows requests down after throttling
    /// answers: for callers that share a throttled account and prefer waiting to failing.
    Adaptive,
}

impl AwsRetryMode {
    /// The spelling of `AWS_RETRY_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            AwsRetryMode::Standard => "standard",
            AwsRetryMode::Adaptive => "adaptive",
        }
    }
}

/// Most attempts per operation accepted from the options, `AWS_MAX_ATTEMPTS` or the profile: more
/// would only multiply the load on a failing service (the operation timeout still bounds time).
pub const MAX_ATTEMPTS_LIMIT: u32 = 10;
/// Attempts per operation when neither the options, the environment nor the profile set them.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The retry settings in force for one SDK configuration, after options, environment and profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetrySettings {
    pub(crate) max_attempts: u32,
    pub(crate) mode: AwsRetryMode,
}

/// Reads a hostile attempts value (from `source`, e.g. `environment variable AWS_MAX_ATTEMPTS`):
/// a whole number from 1 to [`MAX_ATTEMPTS_LIMIT`].
fn parse_max_attempts(value: &str, source: &str) -> std::result::Result<u32, String> {
    match value.trim().parse::<u64>() {
        Ok(n @ 1..) if n <= u64::from(MAX_ATTEMPTS_LIMIT) => Ok(n as u32),
        _ => Err(format!(
            "{source} is {}: max attempts must be a whole number from 1 to {MAX_ATTEMPTS_LIMIT}",
            quoted_prefix(value)
        )),
    }
}

/// Reads a hostile retry mode value (from `source`): `standard` or `adaptive`, any case.
fn parse_retry_mode(value: &str, source: &str) -> std::result::Result<AwsRetryMode, String> {
    let value_trimmed = value.trim();
    if value_trimmed.eq_ignore_ascii_case("standard") {
        Ok(AwsRetryMode::Standard)
    } else if value_trimmed.eq_ignore_ascii_case("adaptive") {
        Ok(AwsRetryMode::Adaptive)
    } else {
        Err(format!(
            "{source} is {}: the retry mode must be \"standard\" or \"adaptive\"",
            quoted_prefix(value)
        ))
    }
}

/// The value of environment variable `name`, if set; `Err` naming it if it is not UTF-8.
fn env_text(name: &str) -> std::result::Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("environment variable {name} is not valid UTF-8"))
        }
    }
}

/// The retry settings of `timeouts`, with what the caller left unset taken from
/// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`, else from `max_attempts` / `retry_mode` of `profile`
/// (the selected profile of the shared config file, if one is given), else the defaults (3
/// attempts, standard). Every source is checked: `Err` names the variable or profile key and
/// the allowed values.
pub(crate) fn resolve_retry(
    timeouts: &AwsTimeouts,
    profile: Option<&aws_config::profile::ProfileSet>,
) -> std::result::Result<RetrySettings, String> {
    let from_profile = |key: &str| {
        profile.and_then(|set| {
            set.get(key)
                .map(|value| (value.to_owned(), set.selected_profile().to_owned()))
        })
    };
    let max_attempts = match timeouts.max_attempts {
        Some(n) => n,
        None => match env_text("AWS_MAX_ATTEMPTS")? {
            Some(value) => parse_max_attempts(&value, "environment variable AWS_MAX_ATTEMPTS")?,
            None => match from_profile("max_attempts") {
                Some((value, name)) => parse_max_attempts(
                    &value,
                    &format!(
                        "max_attempts of profile {} in the AWS config file",
                        quoted_prefix(&name)
                    ),
                )?,
                None => DEFAULT_MAX_ATTEMPTS,
            },
        },
    };
    let mode = match timeouts.retry_mode {
        Some(mode) => mode,
        None => match env_text("AWS_RETRY_MODE")? {
            Some(value) => parse_retry_mode(&value, "environment variable AWS_RETRY_MODE")?,
            None => match from_profile("retry_mode") {
                Some((value, name)) => parse_retry_mode(
                    &value,
                    &format!(
                        "retry_mode of profile {} in the AWS config file",
                        quoted_prefix(&name)
                    ),
                )?,
                None => AwsRetryMode::Standard,
            },
        },
    };
    Ok(RetrySettings { max_attempts, mode })
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
        match self.max_attempts {
            Some(0) => return Err("max_attempts must be at least 1".to_owned()),
            Some(n) if n > MAX_ATTEMPTS_LIMIT => {
                return Err(format!(
                    "max_attempts must be at most {MAX_ATTEMPTS_LIMIT} (got {n})"
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

/// The environment variables through which the SDK picks the endpoint of the KMS client's
/// services (KMS, Secrets Manager, STS) when no `endpoint_url` option is given.
pub(crate) const KMS_ENDPOINT_VARIABLES: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_STS",
];

/// The environment variables through which the SDK picks the S3 endpoint when no `endpoint`
/// option is given.
pub(crate) const S3_ENDPOINT_VARIABLES: &[&str] = &["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"];

/// Why `endpoint` is not a usable endpoint URL, or `Ok`. Usable: `http://` or `https://`, a
/// non-empty host written as the URL parser reads it (a DNS name, four decimal IPv4 numbers, or a
/// well-formed bracketed IPv6 address), an optional port in 0–65535 and an optional path; no user
/// info, query or fragment. Parsed twice: by the `url` crate (the WHATWG parser `aws-config` uses)
/// and by `http::Uri` (the parser the SDK applies the endpoint to each request with), so a URL
/// accepted here cannot fail inside the SDK.
///
/// The message starts with the quoted endpoint (cut at 64 characters), any user info (it may hold
/// a password) replaced by `<user info>`.
pub(crate) fn check_endpoint_url(endpoint: &str) -> std::result::Result<(), String> {
    let shown = match (endpoint.split_once("://"), endpoint.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) if !scheme.contains('@') => {
            format!("{scheme}://<user info>@{host}")
        }
        (_, Some((_, host))) => format!("<user info>@{host}"),
        (_, None) => endpoint.to_owned(),
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
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("must not contain user info (pass credentials separately)");
    }
    if endpoint.contains('?') || endpoint.contains('#') {
        return bad("must not have a query or fragment");
    }
    if authority.is_empty() {
        return bad("has no host");
    }
    let parsed = match url::Url::parse(endpoint) {
        Ok(parsed) => parsed,
        Err(url::ParseError::EmptyHost) => return bad("has no host"),
        Err(why) => return bad(&format!("is not a valid URL: {why}")),
    };
    if let Err(why) = endpoint.parse::<http::Uri>() {
        return bad(&format!("is not a valid URL: {why}"));
    }
    // The host as written (the port cut off) must be the host the parser read: no percent
    // escapes, internationalized or shorthand forms that one parser reads differently from
    // another.
    let written_host = match authority.strip_prefix('[') {
        Some(_) => authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let understood = match parsed.host() {
        None => return bad("has no host"),
        Some(url::Host::Ipv6(_)) => return Ok(()),
        Some(url::Host::Domain(name)) => name.to_owned(),
        Some(url::Host::Ipv4(address)) => address.to_string(),
    };
    if !written_host.eq_ignore_ascii_case(&understood) {
        return bad(&format!(
            "has a host the URL parser reads as {}; write the host plainly",
            quoted_prefix(&understood)
        ));
    }
    Ok(())
}

/// Whether `endpoint` (a URL [`check_endpoint_url`] accepted) is plain `http://` to a host other
/// than this machine (`localhost`, 127.0.0.0/8, `[::1]`): whatever it carries crosses the
/// network in clear text.
pub(crate) fn is_cleartext_off_host(endpoint: &str) -> bool {
    let Ok(parsed) = url::Url::parse(endpoint) else {
        return false;
    };
    if parsed.scheme() != "http" {
        return false;
    }
    match parsed.host() {
        Some(url::Host::Domain(name)) => !name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => !address.is_loopback(),
        Some(url::Host::Ipv6(address)) => !address.is_loopback(),
        None => false,
    }
}

/// The first endpoint among the `endpoint` option (if given) or else the set variables of
/// `names` that [`is_cleartext_off_host`], with where it came from.
pub(crate) fn cleartext_endpoint(
    endpoint: Option<&str>,
    names: &[&str],
) -> Option<(String, String)> {
    match endpoint {
        Some(url) => {
            is_cleartext_off_host(url).then(|| ("endpoint_url".to_owned(), url.to_owned()))
        }
        None => names.iter().find_map(|name| {
            let value = std::env::var(name).ok()?;
            is_cleartext_off_host(&value).then(|| (format!("environment variable {name}"), value))
        }),
    }
}

/// Checks the endpoint URL in every variable of `names` that is set (see
/// [`check_endpoint_url`]): `Err` names the variable. An empty value is refused too: the SDK
/// would use it as an endpoint.
pub(crate) fn check_endpoint_variables(names: &[&str]) -> std::result::Result<(), String> {
    for name in names {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        let Some(value) = value.to_str() else {
            return Err(format!("environment variable {name} is not valid UTF-8"));
        };
        check_endpoint_url(value).map_err(|why| format!("environment variable {name}: {why}"))?;
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
            max_attempts: None,
            retry_mode: None,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

/// Loads SDK configuration for `region` (`timeouts` already [checked](AwsTimeouts::check)): the
/// standard chain (environment, profile, web identity, ECS/IMDS — `AWS_EC2_METADATA_DISABLED`
/// honoured) unless `credentials` is given; `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
/// honoured unless `endpoint_url` is given; retries as [`resolve_retry`] settles them (the caller's
/// options, else `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`, else the profile). Returns the
/// configuration and the retry settings in force.
///
/// Errors (the message names the variable, file or profile key): without `endpoint_url`, one of
/// `endpoint_variables` (the ones the SDK will read for the caller's services) holds an unusable
/// URL; an unreadable profile file; an unusable retry setting in the environment or the profile.
/// The `endpoint_url` itself was checked when the caller was constructed.
/// Every config shares the process-wide HTTP client ([`crate::runtime::http_client`]).
pub(crate) async fn load_sdk_config(
    region: &str,
    timeouts: &AwsTimeouts,
    endpoint_url: Option<&str>,
    endpoint_variables: &[&str],
    credentials: Option<SharedCredentialsProvider>,
) -> std::result::Result<(SdkConfig, RetrySettings), String> {
    let files = profile_files()?;
    // The profile is read for the retry settings only when the caller and the environment left
    // one unset. A profile file that does not parse counts as empty, as it does for the SDK.
    let profile = match (timeouts.max_attempts, timeouts.retry_mode) {
        (Some(_), Some(_)) => None,
        _ => aws_config::profile::load(
            &aws_types::os_shim_internal::Fs::real(),
            &aws_types::os_shim_internal::Env::real(),
            &files,
            None,
        )
        .await
        .ok(),
    };
    let retry = resolve_retry(timeouts, profile.as_ref())?;
    let retry_config = match retry.mode {
        AwsRetryMode::Standard => RetryConfig::standard(),
        AwsRetryMode::Adaptive => RetryConfig::adaptive(),
    }
    .with_max_attempts(retry.max_attempts)
    .with_initial_backoff(timeouts.initial_backoff);
    let mut loader = aws_config::defaults(behavior_version())
        .region(Region::new(region.to_owned()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .retry_config(retry_config);
    match endpoint_url {
        Some(url) => loader = loader.endpoint_url(url),
        None => check_endpoint_variables(endpoint_variables)?,
    }
    // The process's one HTTP client: connection pools per endpoint, not per SDK config. (Called
    // on that runtime, so it exists; if it somehow did not, the SDK's own default is used.)
    if let Ok(http_client) = crate::runtime::http_client() {
        loader = loader.http_client(http_client);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    loader = loader.profile_files(files);
    check_web_identity_token_file()?;
    Ok((loader.load().await, retry))
}

/// Most bytes read of the shared config or credentials file.
const MAX_PROFILE_FILE_BYTES: usize = 1024 * 1024;

/// The shared AWS config and credentials files (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`,
/// else `~/.aws/config` and `~/.aws/credentials`), read here — without blocking, regular files
/// only, at most 1 MiB each — and handed to the SDK as contents, so a FIFO, a device or a huge
/// file named there cannot hang or balloon the process (the SDK would read them whole, with no
/// timeout). A missing file counts as empty, as in the SDK; so does `/dev/null`.
///
/// Errors (naming the variable or file): not a regular file, too large, unreadable, not UTF-8.
pub(crate) fn profile_files() -> std::result::Result<EnvConfigFiles, String> {
    let mut files = EnvConfigFiles::builder();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    for (kind, variable, default) in [
        (EnvConfigFileKind::Config, "AWS_CONFIG_FILE", ".aws/config"),
        (
            EnvConfigFileKind::Credentials,
            "AWS_SHARED_CREDENTIALS_FILE",
            ".aws/credentials",
        ),
    ] {
        let (path, named_by) = match std::env::var_os(variable) {
            Some(value) => {
                let value = std::path::PathBuf::from(value);
                let expanded = match (value.strip_prefix("~"), &home) {
                    (Ok(rest), Some(home)) => home.join(rest),
                    _ => value,
                };
                (expanded, format!("{variable} "))
            }
            None => match &home {
                Some(home) => (home.join(default), String::new()),
                None => continue,
            },
        };
        if path.as_os_str() == "/dev/null" {
            continue;
        }
        let shown = quoted_prefix(&path.to_string_lossy());
        // Not wiped: the SDK keeps its own copy of the text (credentials included) anyway.
        let contents = match crate::fs_bounded::read_bounded(
            &path,
            MAX_PROFILE_FILE_BYTES,
            crate::fs_bounded::Symlinks::Follow,
        ) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                return Err(format!(
                    "cannot {} the AWS {named_by}file {shown}: {e}",
                    e.action()
                ))
            }
        };
        let text = String::from_utf8(contents)
            .map_err(|_| format!("the AWS {named_by}file {shown} is not valid UTF-8"))?;
        files = files.with_contents(kind, text);
    }
    // The builder needs at least one source; an empty config file changes nothing.
    Ok(files.with_contents(EnvConfigFileKind::Config, "").build())
}

/// Largest web identity token file accepted (tokens are a few KiB).
const MAX_WEB_IDENTITY_TOKEN_BYTES: u64 = 64 * 1024;

/// `AWS_WEB_IDENTITY_TOKEN_FILE`, if set, must name a regular file of at most 64 KiB (the SDK
/// reads it whole, with no timeout, whenever it fetches credentials: a FIFO would hang it, a huge
/// file balloon it). Checked each time SDK clients are built — not on each later credential
/// refresh, so a file swapped afterwards is not covered. Errors name the variable.
fn check_web_identity_token_file() -> std::result::Result<(), String> {
    let Some(path) = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE") else {
        return Ok(());
    };
    let path = std::path::PathBuf::from(path);
    let shown = quoted_prefix(&path.to_string_lossy());
    match crate::fs_bounded::open_regular(&path, crate::fs_bounded::Symlinks::Follow) {
        Ok((_, len)) if len > MAX_WEB_IDENTITY_TOKEN_BYTES => Err(format!(
            "cannot read AWS_WEB_IDENTITY_TOKEN_FILE {shown}: it holds {len} bytes, more than \
             the {MAX_WEB_IDENTITY_TOKEN_BYTES} accepted"
        )),
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(format!(
            "cannot {} AWS_WEB_IDENTITY_TOKEN_FILE {shown}: {e}",
            e.action()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Response bodies: what any peer can make us read is bounded.

/// Most bytes read of an error response body (any service, any status outside 2xx). AWS error
/// documents are a few hundred bytes (code, message, request id); 64 KiB is far above any real
/// one and small enough that a hostile answer costs nothing.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Most bytes read of a successful KMS, Secrets Manager or STS response. The largest real one is
/// `GetSecretValue` of a maximal (65,536-byte) secret: as `SecretBinary` 87,384 base64 characters,
/// as a `SecretString` of control characters JSON-escaped at most 6 × 65,536 = 393,216, plus
/// under 2 KiB of other fields. KMS (ciphertexts ≤ 6 KiB) and STS (≈ 2 KiB) answers are far
/// smaller.
pub(crate) const MAX_SMALL_RESPONSE_BYTES: usize = 1024 * 1024;

/// Most bytes read of a successful S3 response. The largest real one is a `ListObjectsV2` page:
/// at most 1,000 entries, typically ~300 bytes each (≈ 300 KB a page), and in the worst case
/// 1,024-byte keys whose every byte is XML-escaped (≤ 6 bytes) plus ~400 bytes of metadata, about
/// 6.6 MB. `GetObject` payloads pass through this cap too, but the store reads at most one byte
/// past the envelope limit (64 KiB) of them anyway.
pub(crate) const MAX_S3_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// An SDK interceptor that bounds every response body: successful answers to `success_limit`
/// bytes, error answers to [`MAX_ERROR_BODY_BYTES`]. A longer body fails with [`BodyTooLarge`]
/// once the limit is passed, before more than the limit (plus one network read) is buffered.
/// Registered on every SDK client the library builds. Stateless: `Send + Sync`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseBodyLimit {
    success_limit: usize,
}

impl ResponseBodyLimit {
    /// For KMS, Secrets Manager and STS clients.
    pub(crate) fn small() -> Self {
        ResponseBodyLimit {
            success_limit: MAX_SMALL_RESPONSE_BYTES,
        }
    }

    /// For S3 clients.
    pub(crate) fn s3() -> Self {
        ResponseBodyLimit {
            success_limit: MAX_S3_RESPONSE_BYTES,
        }
    }
}

impl Intercept for ResponseBodyLimit {
    fn name(&self) -> &'static str {
        "cyborgdb-kms response body limit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let response = context.response_mut();
        let limit = if response.status().is_success() {
            self.success_limit
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = SdkBody::from_body_1_x(CappedBody {
            inner: body,
            remaining: limit,
            limit,
        });
        Ok(())
    }
}

/// A response body longer than the limit the library reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTooLarge {
    /// The limit, in bytes.
    pub(crate) limit: usize,
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the response body is longer than the {}-byte limit",
            self.limit
        )
    }
}

impl std::error::Error for BodyTooLarge {}

/// `inner`, failing with [`BodyTooLarge`] as soon as more than `limit` bytes of data arrive.
struct CappedBody {
    inner: SdkBody,
    remaining: usize,
    limit: usize,
}

impl http_body::Body for CappedBody {
    type Data = <SdkBody as http_body::Body>::Data;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame
            .as_ref()
            .map(|f| f.as_ref().map(http_body::Frame::data_ref))
        {
            let len = data.map_or(0, |d| d.len());
            if len > this.remaining {
                this.remaining = 0;
                // Drop the connection's body now: nothing more of it is read.
                this.inner = SdkBody::taken();
                return Poll::Ready(Some(Err(Box::new(BodyTooLarge { limit: this.limit }))));
            }
            this.remaining -= len;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let hint = http_body::Body::size_hint(&self.inner);
        let fits = u64::try_from(self.remaining).unwrap_or(u64::MAX);
        match hint.upper() {
            Some(upper) if upper <= fits => hint,
            _ => http_body::SizeHint::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Failures: what an operator may see, and nothing else.

/// Longest service-supplied message kept in an error message, in characters (after escaping).
pub(crate) const MAX_SERVICE_MESSAGE_CHARS: usize = 200;

/// Longest service-supplied error code kept, in characters (real codes are under 50).
const MAX_SERVICE_CODE_CHARS: usize = 64;

/// Runs of at least this many base64 or hex characters in a service-supplied text are redacted:
/// a hostile or echoing endpoint may return our own request (a 32-byte KEK is 44 base64 or 64 hex
/// characters; 32 catches a KEK cut short too, and no word or AWS identifier segment is as long).
pub(crate) const MIN_REDACTED_RUN: usize = 32;

/// What an SDK call's failure means, independent of the service. Every text in it is either
/// fixed by the library or service-supplied and [sanitized](sanitize_service_text); none comes
/// from an SDK error's `Display` or `Debug` (which can hold the whole request, KEK included).
/// [`Display`](fmt::Display) is the one rendering of a failure every AWS call site uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsFailure {
    /// No usable answer in time: connect failure, timeout, connection reset. The text classifies
    /// the transport failure.
    Unavailable(String),
    /// The service answered with an error: its code (e.g. `AccessDeniedException`), message and
    /// HTTP status.
    Service {
        code: String,
        message: String,
        status: u16,
    },
    /// The answer could not be used: malformed, too long, an unexpected status without a code.
    BadResponse(String),
    /// The request could not be built or sent as configured (e.g. an endpoint the SDK cannot
    /// apply).
    Construction(String),
    /// No usable credentials: `missing` if the credential chain found none or is misconfigured,
    /// otherwise a provider failed or timed out.
    Credentials { missing: bool, why: &'static str },
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsFailure::Unavailable(why)
            | AwsFailure::BadResponse(why)
            | AwsFailure::Construction(why) => f.write_str(why),
            AwsFailure::Service {
                code,
                message,
                status,
            } if message.is_empty() => write!(f, "{code} (HTTP {status})"),
            AwsFailure::Service {
                code,
                message,
                status,
            } => write!(f, "{code} (HTTP {status}): {message}"),
            AwsFailure::Credentials { why, .. } => f.write_str(why),
        }
    }
}

/// Classifies an SDK error into fixed texts, the AWS error code, the HTTP status and the
/// service's own message (sanitized, capped, base64/hex runs redacted).
pub(crate) fn classify<E>(error: &SdkError<E, HttpResponse>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify_hiding(error, &[])
}

/// [`classify`], also redacting from the service's code and message every occurrence of the
/// `hidden` values (as sent and percent-encoded): short secrets the request carried, such as an
/// ExternalId, that an echoing endpoint could return and no run-length rule would catch.
pub(crate) fn classify_hiding<E>(error: &SdkError<E, HttpResponse>, hidden: &[&str]) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(credentials) = find_cause::<CredentialsError>(error) {
        return credentials_failure(credentials);
    }
    if find_cause::<ResolveEndpointError>(error).is_some() {
        return AwsFailure::Construction(
            "the endpoint could not be applied to the request (check endpoint_url, \
             AWS_ENDPOINT_URL* and the endpoints in the AWS config file)"
                .to_owned(),
        );
    }
    let status = || error.raw_response().map(|r| r.status().as_u16());
    match error {
        SdkError::TimeoutError(_) => {
            AwsFailure::Unavailable("timed out (operation or attempt timeout)".to_owned())
        }
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            AwsFailure::Unavailable("timed out (connect or read timeout)".to_owned())
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => AwsFailure::Construction(
            "the request could not be sent as configured (endpoint or client configuration)"
                .to_owned(),
        ),
        SdkError::DispatchFailure(_) => {
            AwsFailure::Unavailable(format!("unreachable ({})", transport_cause(error)))
        }
        SdkError::ResponseError(_) => AwsFailure::BadResponse(match status() {
            Some(status) => format!(
                "malformed response ({}, HTTP {status})",
                transport_cause(error)
            ),
            None => format!("malformed response ({})", transport_cause(error)),
        }),
        SdkError::ConstructionFailure(_) => AwsFailure::Construction(
            "the request could not be built (client configuration or parameters)".to_owned(),
        ),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err().code() {
                Some(code) => AwsFailure::Service {
                    code: sanitize_service_text(&hide(code, hidden), MAX_SERVICE_CODE_CHARS),
                    message: sanitize_service_text(
                        &hide(service.err().message().unwrap_or(""), hidden),
                        MAX_SERVICE_MESSAGE_CHARS,
                    ),
                    status,
                },
                None => AwsFailure::BadResponse(format!(
                    "HTTP {status} without an error code (malformed or unexpected answer)"
                )),
            }
        }
        _ => AwsFailure::BadResponse(match status() {
            Some(status) => format!("unexpected failure (HTTP {status})"),
            None => "unexpected failure".to_owned(),
        }),
    }
}

/// A fixed text for a failed transfer: the body limit passed, the [`std::io::ErrorKind`] of an
/// I/O error in the chain, or "connection failed".
pub(crate) fn transport_cause(error: &(dyn std::error::Error + 'static)) -> String {
    if let Some(too_large) = find_cause::<BodyTooLarge>(error) {
        return too_large.to_string();
    }
    match find_cause::<std::io::Error>(error) {
        Some(io) => format!("I/O error: {}", io.kind()),
        None => "connection failed".to_owned(),
    }
}

/// The fixed classification of a credentials failure.
fn credentials_failure(error: &CredentialsError) -> AwsFailure {
    let (missing, why) = match error {
        CredentialsError::CredentialsNotLoaded(_) => {
            (true, "no credentials found in the credential chain")
        }
        CredentialsError::InvalidConfiguration(_) => {
            (true, "the credential configuration is invalid")
        }
        CredentialsError::ProviderTimedOut(_) => (false, "the credentials provider timed out"),
        _ => (false, "the credentials provider failed"),
    };
    AwsFailure::Credentials { missing, why }
}

/// `text` from a peer made safe for an error message: every run of [`MIN_REDACTED_RUN`] or more
/// base64/hex characters (`A-Z a-z 0-9 + / =`) becomes `<redacted>`, control and bidirectional
/// formatting characters are escaped (`\n`, `\u{202e}`), and the result is cut at `max_chars`
/// characters (`...` marks a cut). Runs are judged whole, before the cut, so no part of a long
/// run survives. Time is linear in `text`; the result never exceeds `max_chars` + 3 characters.
pub(crate) fn sanitize_service_text(text: &str, max_chars: usize) -> String {
    let in_run = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut out = String::new();
    let mut shown = 0usize;
    let mut push = |out: &mut String, piece: &str| -> bool {
        for c in piece.chars() {
            if shown == max_chars {
                return false;
            }
            out.push(c);
            shown += 1;
        }
        true
    };
    let mut run_start: Option<usize> = None;
    let mut complete = true;
    for (i, c) in text.char_indices() {
        if in_run(c) {
            run_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = run_start.take() {
            if !push(&mut out, shown_run(&text[start..i])) {
                complete = false;
                break;
            }
        }
        let fits = if crate::kms::registry::is_forbidden_char(c) {
            push(&mut out, &c.escape_debug().to_string())
        } else {
            push(&mut out, c.encode_utf8(&mut [0; 4]))
        };
        if !fits {
            complete = false;
            break;
        }
    }
    if complete {
        if let Some(start) = run_start {
            complete = push(&mut out, shown_run(&text[start..]));
        }
    }
    if !complete {
        out.push_str("...");
    }
    out
}

/// `text` with every occurrence of each non-empty `hidden` value, as written or percent-encoded
/// (as a query-protocol request carries it), replaced by `<redacted>`.
fn hide(text: &str, hidden: &[&str]) -> String {
    let mut text = text.to_owned();
    for value in hidden.iter().filter(|v| !v.is_empty()) {
        // Percent-encoded with upper- and with lower-case hex digits (only the escapes change
        // case, never the value's own letters).
        let encoded = |upper: bool| -> String {
            value
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        char::from(b).to_string()
                    }
                    _ if upper => format!("%{b:02X}"),
                    _ => format!("%{b:02x}"),
                })
                .collect()
        };
        text = text.replace(value, "<redacted>");
        for form in [encoded(true), encoded(false)] {
            if form != *value {
                text = text.replace(&form, "<redacted>");
            }
        }
    }
    text
}

/// A run of base64/hex characters as shown: itself, or `<redacted>` if it is long enough to be
/// key material.
fn shown_run(run: &str) -> &str {
    if run.len() >= MIN_REDACTED_RUN {
        "<redacted>"
    } else {
        run
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
            "http://[::1]:4566",
            "http://[fe80::1]/base/",
            "http://localhost:0",
            "http://LocalHost:9000/x",
            "http://h:",
        ] {
            check_endpoint_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        let cases = [
            (
                "127.0.0.1:4566",
                "\"127.0.0.1:4566\" must start with http:// or https://",
            ),
            ("ftp://x", "\"ftp://x\" must start with http:// or https://"),
            ("", "\"\" must start with http:// or https://"),
            (
                "http://a b",
                "\"http://a b\" must be printable ASCII without spaces",
            ),
            ("http://", "\"http://\" has no host"),
            ("http:///path", "\"http:///path\" has no host"),
            ("http://:80", "\"http://:80\" has no host"),
            (
                "http://h?x=1",
                "\"http://h?x=1\" must not have a query or fragment",
            ),
            (
                "http://h#f",
                "\"http://h#f\" must not have a query or fragment",
            ),
            (
                "http://me:hunter2@h",
                "\"http://<user info>@h\" must not contain user info (pass credentials \
                 separately)",
            ),
            (
                "http://me:p@ss@[::1",
                "\"http://<user info>@[::1\" must not contain user info (pass credentials \
                 separately)",
            ),
            (
                "http://[::1",
                "\"http://[::1\" is not a valid URL: invalid IPv6 address",
            ),
            (
                "http://[zz]",
                "\"http://[zz]\" is not a valid URL: invalid IPv6 address",
            ),
            (
                "http://%zz",
                "\"http://%zz\" is not a valid URL: invalid international domain name",
            ),
            (
                "http://h:99999",
                "\"http://h:99999\" is not a valid URL: invalid port number",
            ),
            (
                "http://h:8o",
                "\"http://h:8o\" is not a valid URL: invalid port number",
            ),
            (
                "http://%41",
                "\"http://%41\" is not a valid URL: invalid authority",
            ),
            (
                "http://127.1",
                "\"http://127.1\" has a host the URL parser reads as \"127.0.0.1\"; write \
                 the host plainly",
            ),
            (
                "http://h\\x",
                "\"http://h\\\\x\" is not a valid URL: invalid uri character",
            ),
        ];
        for (endpoint, expected) in cases {
            assert_eq!(check_endpoint_url(endpoint).unwrap_err(), expected);
        }
    }

    /// 32 bytes as an AWS JSON request carries them (base64) and as hex.
    fn kek_encodings() -> (String, String) {
        let kek: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let hex: String = kek.iter().map(|b| format!("{b:02x}")).collect();
        (aws_smithy_types::base64::encode(&kek), hex)
    }

    #[test]
    fn service_text_is_redacted_escaped_and_capped() {
        let (b64, hex) = kek_encodings();
        assert_eq!(b64.len(), 44);
        let echoed = format!("1 validation error: {{\"Plaintext\":\"{b64}\"}} hex {hex}.");
        assert_eq!(
            sanitize_service_text(&echoed, 200),
            "1 validation error: {\"Plaintext\":\"<redacted>\"} hex <redacted>."
        );
        // Runs shorter than the threshold (ids, ARN segments) stay.
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(sanitize_service_text(arn, 200), arn);
        let short = "a".repeat(MIN_REDACTED_RUN - 1);
        assert_eq!(sanitize_service_text(&short, 200), short);
        let long = "a".repeat(MIN_REDACTED_RUN);
        assert_eq!(sanitize_service_text(&long, 200), "<redacted>");
        // Control and bidi characters are escaped, never passed through.
        assert_eq!(
            sanitize_service_text("a\nb\u{1b}[31m\u{202e}c\u{0}", 200),
            "a\\nb\\u{1b}[31m\\u{202e}c\\0"
        );
        // Capped, with a mark; a run crossing the cap is judged whole, so none of it shows.
        let text = format!("{} {b64}", "x ".repeat(95));
        let shown = sanitize_service_text(&text, 200);
        assert_eq!(shown, format!("{} <redacted...", "x ".repeat(95)));
        assert!(!shown.contains(&b64[..8]), "{shown}");
        let huge = "é".repeat(1_000_000);
        let shown = sanitize_service_text(&huge, 200);
        assert_eq!(shown.chars().count(), 203);
        assert!(shown.ends_with("..."));
    }

    #[test]
    fn hidden_values_are_redacted_as_sent_and_percent_encoded() {
        let hidden = ["ext:6f1c/9a1e", ""];
        assert_eq!(
            hide(
                "ExternalId=ext%3A6f1c%2F9a1e; id ext:6f1c/9a1e; lower ext%3a6f1c%2f9a1e",
                &hidden
            ),
            "ExternalId=<redacted>; id <redacted>; lower <redacted>"
        );
        assert_eq!(hide("nothing to hide", &hidden), "nothing to hide");
        // Lower-case escapes of a value with upper-case letters: only the escapes change case.
        assert_eq!(
            hide("a Ext%3aID b Ext%3AID c", &["Ext:ID"]),
            "a <redacted> b <redacted> c"
        );
    }

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            SdkBody::from("response body"),
        )
    }

    type EncryptFailure = SdkError<aws_sdk_kms::operation::encrypt::EncryptError, HttpResponse>;

    fn service_error(status: u16, code: Option<&str>, message: &str) -> EncryptFailure {
        let mut meta = aws_smithy_types::error::ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let err = aws_sdk_kms::operation::encrypt::EncryptError::generic(meta.build());
        SdkError::service_error(err, response(status))
    }

    #[test]
    fn failures_render_only_fixed_texts_codes_statuses_and_sanitized_messages() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let (b64, hex) = kek_encodings();
        let request_dump =
            format!("Request {{ body: b\"{{\\\"Plaintext\\\":\\\"{b64}\\\"}}\" }} {hex}");
        let with_request = || std::io::Error::other(request_dump.clone());
        let cases: Vec<(EncryptFailure, AwsFailure)> = vec![
            (
                SdkError::construction_failure(with_request()),
                AwsFailure::Construction(
                    "the request could not be built (client configuration or parameters)".into(),
                ),
            ),
            (
                // The shape of the original leak: the SDK cannot apply the endpoint and puts the
                // whole request into its error.
                SdkError::dispatch_failure(ConnectorError::other(
                    Box::new(ResolveEndpointError::message(request_dump.clone())),
                    None,
                )),
                AwsFailure::Construction(
                    "the endpoint could not be applied to the request (check endpoint_url, \
                     AWS_ENDPOINT_URL* and the endpoints in the AWS config file)"
                        .into(),
                ),
            ),
            (
                SdkError::timeout_error(with_request()),
                AwsFailure::Unavailable("timed out (operation or attempt timeout)".into()),
            ),
            (
                SdkError::dispatch_failure(ConnectorError::timeout(Box::new(with_request()))),
                AwsFailure::Unavailable("timed out (connect or read timeout)".into()),
            ),
            (
                SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    request_dump.clone(),
                )))),
                AwsFailure::Unavailable("unreachable (I/O error: connection refused)".into()),
            ),
            (
                SdkError::dispatch_failure(ConnectorError::other(
                    request_dump.clone().into(),
                    None,
                )),
                AwsFailure::Unavailable("unreachable (connection failed)".into()),
            ),
            (
                SdkError::response_error(BodyTooLarge { limit: 65536 }, response(503)),
                AwsFailure::BadResponse(
                    "malformed response (the response body is longer than the 65536-byte \
                     limit, HTTP 503)"
                        .into(),
                ),
            ),
            (
                SdkError::response_error(with_request(), response(200)),
                AwsFailure::BadResponse(
                    "malformed response (I/O error: other error, HTTP 200)".into(),
                ),
            ),
            (
                service_error(503, None, &request_dump),
                AwsFailure::BadResponse(
                    "HTTP 503 without an error code (malformed or unexpected answer)".into(),
                ),
            ),
            (
                service_error(400, Some("ValidationException"), &request_dump),
                AwsFailure::Service {
                    code: "ValidationException".into(),
                    message: "Request { body: b\"{\\\"Plaintext\\\":\\\"<redacted>\\\"}\" } \
                              <redacted>"
                        .into(),
                    status: 400,
                },
            ),
            (
                SdkError::dispatch_failure(ConnectorError::other(
                    Box::new(CredentialsError::not_loaded(request_dump.clone())),
                    None,
                )),
                AwsFailure::Credentials {
                    missing: true,
                    why: "no credentials found in the credential chain",
                },
            ),
            (
                SdkError::dispatch_failure(ConnectorError::other(
                    Box::new(CredentialsError::provider_error(request_dump.clone())),
                    None,
                )),
                AwsFailure::Credentials {
                    missing: false,
                    why: "the credentials provider failed",
                },
            ),
        ];
        for (error, expected) in cases {
            let failure = classify(&error);
            assert_eq!(failure, expected);
            let shown = failure.to_string();
            assert!(
                !shown.contains(&b64[..16]) && !shown.contains(&hex[..16]),
                "{shown}"
            );
            assert!(!shown.contains("Plaintext\\\":\\\"A"), "{shown}");
        }
        assert_eq!(
            classify(&service_error(400, Some("AccessDeniedException"), "")).to_string(),
            "AccessDeniedException (HTTP 400)"
        );
        assert_eq!(
            classify(&service_error(400, Some(&"Bad-".repeat(25)), "m")).to_string(),
            format!("{}... (HTTP 400): m", "Bad-".repeat(16))
        );
    }

    /// Every frame of `body`, or the first error.
    fn drain(mut body: CappedBody) -> std::result::Result<usize, BoxError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut total = 0;
            loop {
                let frame =
                    std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                        .await;
                match frame {
                    None => return Ok(total),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(frame)) => total += frame.data_ref().map_or(0, |d| d.len()),
                }
            }
        })
    }

    #[test]
    fn capped_bodies_pass_up_to_the_limit_and_fail_past_it() {
        let capped = |len: usize, limit: usize| CappedBody {
            inner: SdkBody::from(vec![7u8; len]),
            remaining: limit,
            limit,
        };
        assert_eq!(drain(capped(100, 100)).unwrap(), 100);
        assert_eq!(drain(capped(0, 0)).unwrap(), 0);
        let err = drain(capped(101, 100)).unwrap_err();
        assert_eq!(
            err.downcast_ref::<BodyTooLarge>(),
            Some(&BodyTooLarge { limit: 100 })
        );
        assert_eq!(
            err.to_string(),
            "the response body is longer than the 100-byte limit"
        );
        // A body announcing more than the limit does not announce it through the cap.
        assert_eq!(http_body::Body::size_hint(&capped(101, 100)).upper(), None);
        assert_eq!(
            http_body::Body::size_hint(&capped(10, 100)).exact(),
            Some(10)
        );
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
            max_attempts: Some(0),
            ..AwsTimeouts::default()
        };
        assert_eq!(
            no_attempts.check().unwrap_err(),
            "max_attempts must be at least 1"
        );
        let too_many = AwsTimeouts {
            max_attempts: Some(MAX_ATTEMPTS_LIMIT + 1),
            ..AwsTimeouts::default()
        };
        assert_eq!(
            too_many.check().unwrap_err(),
            "max_attempts must be at most 10 (got 11)"
        );
    }

    #[test]
    fn hostile_retry_values_are_refused_naming_their_source() {
        let source = "environment variable AWS_MAX_ATTEMPTS";
        assert_eq!(parse_max_attempts("4", source), Ok(4));
        assert_eq!(parse_max_attempts(" 10 ", source), Ok(10));
        for bad in [
            "0",
            "11",
            "99999999999999999999999",
            "-1",
            "three",
            "",
            "4.5",
        ] {
            assert_eq!(
                parse_max_attempts(bad, source).unwrap_err(),
                format!(
                    "environment variable AWS_MAX_ATTEMPTS is {}: max attempts must be a whole \
                     number from 1 to 10",
                    quoted_prefix(bad)
                )
            );
        }
        let source = "environment variable AWS_RETRY_MODE";
        assert_eq!(
            parse_retry_mode("adaptive", source),
            Ok(AwsRetryMode::Adaptive)
        );
        assert_eq!(
            parse_retry_mode("Standard", source),
            Ok(AwsRetryMode::Standard)
        );
        assert_eq!(
            parse_retry_mode("legacy", source).unwrap_err(),
            "environment variable AWS_RETRY_MODE is \"legacy\": the retry mode must be \
             \"standard\" or \"adaptive\""
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
