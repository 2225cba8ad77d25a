//! The S3 backend of [`crate::StorageConfig::s3`]: envelopes as objects in an S3 (or
//! S3-compatible: MinIO, Ceph, R2) bucket, so several service nodes share one keystore.
//!
//! Layout: the envelope of index `N` is the object `<prefix><N.storage_key()>.kms` — the same
//! storage key as on disk, so no name can escape the prefix. A non-empty prefix is a "folder": it
//! gets a trailing `/` if it has none.
//!
//! Semantics, one S3 request each (plus the SDK's retries):
//! - create: `PutObject` with `If-None-Match: *`. S3 makes the conditional write atomic, so of any
//!   number of creators on any number of machines exactly one gets 200; the others get 412
//!   `PreconditionFailed`, which is `AlreadyExists`. A 409 `ConditionalRequestConflict` (S3's
//!   answer when a concurrent write to the key is still in flight) is retried, up to the configured
//!   attempts, because its outcome is not yet decided; the retry's 200 or 412 is authoritative.
//! - push: unconditional `PutObject` (S3 replaces objects atomically: readers see the old or the
//!   new envelope). get: `GetObject`; `NoSuchKey` is "nothing stored"; an object larger than any
//!   envelope is `Corrupt` without reading it. delete: `DeleteObject`, which S3 makes idempotent.
//! - list: `ListObjectsV2` under the prefix with delimiter `/`, one request per page of up to
//!   1000 keys, following continuation tokens; objects in deeper "folders" are not listed. A key
//!   listed twice counts once. The listing is bounded whatever the server sends (see [`listing`]):
//!   a continuation token seen before, more than 1 000 pages or 100 000 envelopes is `Io`; not
//!   finishing within 8 × the operation timeout is `StorageUnavailable`.
//!
//! The client is built lazily, on the first operation (inside that operation's time bound), so
//! constructing a store never does network I/O: resolving the region from the default chain may
//! ask the instance-metadata service. Every operation is bounded by [`AwsTimeouts`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use zeroize::Zeroize;

use super::{key_of_envelope_name, Sidecar, ENVELOPE_SUFFIX};
use super::{Recheck, Revision};
use crate::aws::{
    check_endpoint_url, check_endpoint_variables, classify, load_sdk_config, profile_files,
    resolve_retry, transport_cause, AwsFailure, AwsTimeouts, ResponseBodyLimit,
    S3_ENDPOINT_VARIABLES,
};
use crate::codec::MAX_ENCODED_LEN;
use crate::error::{quoted_prefix, Error, ErrorKind, Result, Subject};
use crate::index_name::IndexName;
use crate::runtime::SharedRuntime;
use listing::{listing_deadline, Listing, Page, LISTING_DEADLINE_FACTOR};

mod audit_log;
mod listing;

/// S3's limit on object key length, in bytes.
const MAX_OBJECT_KEY_LEN: usize = 1024;
/// Longest storage key (`~` + 64 hex digits, or at most 200 readable characters) plus the suffix.
const MAX_STORAGE_KEY_LEN: usize = 200 + ENVELOPE_SUFFIX.len();
/// Longest accepted prefix (after the trailing `/` is added), so every object key fits S3's limit.
pub const MAX_S3_PREFIX_LEN: usize = MAX_OBJECT_KEY_LEN - MAX_STORAGE_KEY_LEN;
/// Region used with a custom endpoint when neither the options nor the default chain name one.
const ENDPOINT_DEFAULT_REGION: &str = "us-east-1";
/// Credentials provider name recorded in the SDK (appears in its debug output, never the keys).
const EXPLICIT_PROVIDER_NAME: &str = "cyborgdb-kms-s3-options";

/// Static credentials for S3 storage, used instead of the default AWS chain.
///
/// Kept apart from KMS credentials: a store given these sends them, and only them, to S3; the KMS
/// providers never see them. `Debug` shows the access key id but never the secret key or token,
/// and both are wiped from memory when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// Access key id (e.g. `AKIA...`, or a MinIO user). Required, non-empty.
    pub access_key: String,
    /// Secret access key. Required, non-empty.
    pub secret_key: String,
    /// Session token of temporary credentials. `None` (or an empty string) means none.
    pub session_token: Option<String>,
}

impl S3Credentials {
    /// Long-term credentials without a session token.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        S3Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            session_token: None,
        }
    }
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Drop for S3Credentials {
    fn drop(&mut self) {
        self.secret_key.zeroize();
        if let Some(token) = self.session_token.as_mut() {
            token.zeroize();
        }
    }
}

/// Options of [`crate::StorageConfig::s3`]. `Default` gives: no prefix, region from the default
/// chain, AWS's own endpoint (virtual-hosted addressing), credentials from the default chain, no
/// server-side encryption requested, no bucket owner check, and the default [`AwsTimeouts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Key prefix: envelopes are `<prefix>/<storage key>.kms` (a `/` is added if missing; empty
    /// means the bucket's top level). At most [`MAX_S3_PREFIX_LEN`] bytes; no control characters,
    /// no leading `/`, no empty, `.` or `..` segments.
    pub prefix: String,
    /// Region of the bucket. `None`: the default chain (`AWS_REGION`, profile, instance metadata);
    /// with an endpoint and nothing found there, `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible endpoint URL (`http://` or `https://`, e.g. MinIO, Ceph, R2, an
    /// emulator). Selects path-style addressing (`<endpoint>/<bucket>/<key>`). `None`: AWS S3 with
    /// virtual-hosted addressing (or `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, if set).
    pub endpoint: Option<String>,
    /// Static credentials. `None`: the default AWS credential chain — for AWS S3 only: with an
    /// `endpoint` they are required, so the chain's AWS identity is never sent to another store,
    /// unless [`S3Options::default_credentials_with_endpoint`] says otherwise.
    pub credentials: Option<S3Credentials>,
    /// With an `endpoint` and no `credentials`, use the default AWS credential chain anyway: for
    /// an endpoint that *is* AWS S3 under another name, e.g. an S3 VPC interface endpoint
    /// (`https://bucket.vpce-....s3.<region>.vpce.amazonaws.com`) reached with IRSA or an
    /// instance role. Off by default, so an AWS identity is never sent to an S3-compatible store
    /// by accident. Ignored when `credentials` are given.
    pub default_credentials_with_endpoint: bool,
    /// Server-side encryption requested on every `PutObject`. `None`: the bucket's default
    /// encryption applies.
    pub server_side_encryption: Option<S3ServerSideEncryption>,
    /// The AWS account id (12 digits) that must own the bucket, sent as `ExpectedBucketOwner`
    /// (`x-amz-expected-bucket-owner`) on every S3 request: S3 answers 403 `AccessDenied`
    /// (`StorageAccessDenied`) if another account owns it, so a bucket deleted and re-created by
    /// someone else never receives envelopes. `None`: not checked.
    pub expected_bucket_owner: Option<String>,
    /// Connect / attempt / operation timeouts and retry attempts and mode of every S3 call.
    pub timeouts: AwsTimeouts,
}

/// Server-side encryption of stored envelopes (`x-amz-server-side-encryption` on `PutObject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3ServerSideEncryption {
    /// SSE-S3: keys managed by S3 (`AES256`).
    S3Managed,
    /// SSE-KMS (`aws:kms`) with the given KMS key (id, ARN or alias; `None`: the account's
    /// `aws/s3` key). The writer needs `kms:GenerateDataKey` and readers `kms:Decrypt` on it.
    Kms {
        /// The KMS key for `x-amz-server-side-encryption-aws-kms-key-id`; `None` or empty: the
        /// AWS-managed `aws/s3` key.
        key_id: Option<String>,
    },
}

/// Longest SSE-KMS key id accepted (a full alias or key ARN is far shorter).
const MAX_SSE_KMS_KEY_ID_LEN: usize = 2048;

/// The validated, normalized settings of one store.
struct Settings {
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<S3Credentials>,
    server_side_encryption: Option<S3ServerSideEncryption>,
    expected_bucket_owner: Option<String>,
    timeouts: AwsTimeouts,
}

/// One S3 store. Owns no threads or descriptors: operations run on the process-wide runtime and
/// the process-wide HTTP client. In a child forked after it was created, every operation fails at
/// once with `ForkedProcess`, and dropping it leaks its SDK client (see [`crate::runtime`]).
pub(crate) struct S3Store {
    settings: Settings,
    runtime: SharedRuntime,
    /// Built by the first operation that needs it (with the attempts in force after options,
    /// environment and profile); a failed build is retried by the next one.
    client: tokio::sync::OnceCell<(Client, u32)>,
    /// The newest audit record this process knows of (appended or read), so an append lists
    /// only what other nodes appended since, and only when its conditional create loses.
    audit_head: std::sync::Mutex<Option<crate::audit::Head>>,
}

impl S3Store {
    /// Validates `bucket` and `options`. Starts no thread and does no I/O.
    ///
    /// Errors: `InvalidArgument` naming the offending field (never echoing a credential);
    /// `InvalidConfig` naming the variable if, without an `endpoint`, `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL` holds an unusable URL, or (options leaving them unset) `AWS_MAX_ATTEMPTS` or
    /// `AWS_RETRY_MODE` an unusable value.
    pub(crate) fn new(bucket: &str, options: S3Options) -> Result<Self> {
        validate_bucket(bucket)?;
        let prefix = normalize_prefix(&options.prefix)?;
        if let Some(region) = &options.region {
            validate_region(region)?;
        }
        match &options.endpoint {
            Some(endpoint) => validate_endpoint(endpoint)?,
            None => validate_endpoint_variables()?,
        }
        match (&options.credentials, &options.endpoint) {
            (Some(credentials), _) => validate_credentials(credentials)?,
            (None, Some(_)) if options.default_credentials_with_endpoint => {}
            (None, Some(_)) => {
                return Err(Error::invalid_argument(
                    "an S3 endpoint needs explicit credentials: the AWS credential chain is never \
                     sent to a custom endpoint (set S3Options.credentials, or \
                     default_credentials_with_endpoint for an AWS S3 VPC endpoint)",
                ))
            }
            (None, None) => {}
        }
        let server_side_encryption = normalize_sse(options.server_side_encryption.clone())?;
        if let Some(owner) = &options.expected_bucket_owner {
            validate_bucket_owner(owner)?;
        }
        validate_timeouts(&options.timeouts)?;
        // AWS_MAX_ATTEMPTS / AWS_RETRY_MODE are checked now; the profile's values on first use.
        resolve_retry(&options.timeouts, None)
            .map_err(|why| Error::new(ErrorKind::InvalidConfig, format!("S3 storage: {why}")))?;
        let mut credentials = options.credentials.clone();
        if let Some(c) = credentials.as_mut() {
            if c.session_token.as_deref() == Some("") {
                c.session_token = None;
            }
        }
        Ok(S3Store {
            runtime: SharedRuntime::new(format!("S3 store s3://{bucket}/{prefix}")),
            settings: Settings {
                bucket: bucket.to_owned(),
                prefix,
                region: options.region.clone(),
                endpoint: options.endpoint.clone(),
                credentials,
                server_side_encryption,
                expected_bucket_owner: options.expected_bucket_owner.clone(),
                timeouts: options.timeouts.clone(),
            },
            client: tokio::sync::OnceCell::new(),
            audit_head: std::sync::Mutex::new(None),
        })
    }

    /// `s3://<bucket>/<prefix>`, for `Debug`.
    pub(crate) fn describe(&self) -> String {
        format!("s3://{}/{}", self.settings.bucket, self.settings.prefix)
    }

    /// The object key of `index`'s envelope: `<prefix><storage key>.kms`.
    fn object_key(&self, index: &IndexName) -> String {
        self.object_key_of(&index.storage_key())
    }

    /// The object key of the envelope with storage key `key`: `<prefix><key>.kms`.
    fn object_key_of(&self, key: &str) -> String {
        self.suffixed_object_key(key, ENVELOPE_SUFFIX)
    }

    /// `<prefix><key><suffix>`.
    fn suffixed_object_key(&self, key: &str, suffix: &str) -> String {
        let mut object =
            String::with_capacity(self.settings.prefix.len() + key.len() + suffix.len());
        object.push_str(&self.settings.prefix);
        object.push_str(key);
        object.push_str(suffix);
        object
    }

    /// The object key of `index`'s sidecar `kind`: `<prefix><storage key><suffix>`.
    fn sidecar_key(&self, index: &IndexName, kind: Sidecar) -> String {
        self.suffixed_object_key(&index.storage_key(), kind.suffix())
    }

    /// A conditional `PutObject` (`If-None-Match: *`) of `key`, retried while S3 reports a
    /// concurrent conditional write (`ConditionalRequestConflict`). `AlreadyExists` if the
    /// object exists.
    fn create_object(&self, index: &IndexName, key: &str, bytes: &[u8]) -> Result<()> {
        self.run(async {
            let subject = Subject::Index(index);
            let (_, attempts) = *self.client_and_attempts(subject, "PutObject", key).await?;
            let mut attempt = 1;
            loop {
                match self
                    .put_object(index.into(), "PutObject", key, bytes, PutCondition::Absent)
                    .await
                {
                    Ok(()) => return Ok(()),
                    Err(PutFailure::Exists) => return Err(Error::already_exists(index)),
                    Err(PutFailure::Conflict(e)) if attempt >= attempts => {
                        return Err(Error::new(
                            ErrorKind::StorageUnavailable,
                            format!(
                                "{} (a concurrent write to the same key kept conflicting; \
                                 gave up after {attempts} attempts)",
                                e.message()
                            ),
                        ))
                    }
                    Err(PutFailure::Conflict(_)) => {
                        // The other write's outcome decides ours; ask again shortly.
                        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                        attempt += 1;
                    }
                    Err(PutFailure::Other(e)) => return Err(e),
                }
            }
        })
    }

    /// One `DeleteObject` of `key`; a missing object succeeds.
    fn delete_object(&self, index: &IndexName, key: &str) -> Result<()> {
        self.run(async {
            let client = self.client(index.into(), "DeleteObject", key).await?;
            match client
                .delete_object()
                .bucket(&self.settings.bucket)
                .key(key)
                .set_expected_bucket_owner(self.settings.expected_bucket_owner.clone())
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("NoSuchKey") => Ok(()),
                Err(e) => Err(self.failure(index.into(), "DeleteObject", key, &e)),
            }
        })
    }

    fn location_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.settings.bucket)
    }

    /// The client, built on first use within the operation timeout.
    async fn client(&self, subject: Subject<'_>, operation: &str, key: &str) -> Result<&Client> {
        Ok(&self.client_and_attempts(subject, operation, key).await?.0)
    }

    /// The client and the attempts per call in force, built on first use within the operation
    /// timeout.
    async fn client_and_attempts(
        &self,
        subject: Subject<'_>,
        operation: &str,
        key: &str,
    ) -> Result<&(Client, u32)> {
        self.client
            .get_or_try_init(|| async {
                let limit = self.settings.timeouts.operation;
                match tokio::time::timeout(limit, self.build_client()).await {
                    Ok(built) => built,
                    Err(_) => Err(Error::new(
                        ErrorKind::StorageUnavailable,
                        format!(
                            "setting up the S3 client took longer than the operation timeout \
                             ({limit:?}) (resolving region or configuration)"
                        ),
                    )),
                }
            })
            .await
            .map_err(|e| {
                e.context(format_args!(
                    "{subject}: S3 {operation} {}",
                    self.location_of(key)
                ))
            })
    }

    async fn build_client(&self) -> Result<(Client, u32)> {
        let s = &self.settings;
        let region =
            match &s.region {
                Some(region) => region.clone(),
                None => {
                    // The profile files as the library read them (bounded, non-blocking), not
                    // as the SDK would (whole, blocking).
                    let profile_files = profile_files().map_err(|why| {
                        Error::new(ErrorKind::InvalidConfig, format!("S3 storage: {why}"))
                    })?;
                    let found =
                        RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                            .or_else(
                                ProfileFileRegionProvider::builder()
                                    .profile_files(profile_files)
                                    .build(),
                            )
                            .or_else(ImdsRegionProvider::builder().build())
                            .region()
                            .await;
                    match (found, &s.endpoint) {
                        (Some(region), _) => region.to_string(),
                        (None, Some(_)) => ENDPOINT_DEFAULT_REGION.to_owned(),
                        (None, None) => return Err(Error::invalid_argument(
                            "no region: set S3Options.region, or AWS_REGION, or a region in the \
                             AWS profile",
                        )),
                    }
                }
            };
        let credentials = s.credentials.as_ref().map(|c| {
            SharedCredentialsProvider::new(Credentials::new(
                c.access_key.clone(),
                c.secret_key.clone(),
                c.session_token.clone(),
                None,
                EXPLICIT_PROVIDER_NAME,
            ))
        });
        let endpoint = s.endpoint.as_deref();
        let (sdk, retry) = load_sdk_config(
            &region,
            &s.timeouts,
            endpoint,
            S3_ENDPOINT_VARIABLES,
            credentials,
        )
        .await
        .map_err(|why| Error::new(ErrorKind::InvalidConfig, format!("S3 storage: {why}")))?;
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(s.endpoint.is_some())
            .interceptor(ResponseBodyLimit::s3())
            .build();
        Ok((Client::from_conf(config), retry.max_attempts))
    }

    /// Runs one operation on the process-wide runtime (`ForkedProcess` in a forked child).
    fn run<T: Send>(&self, operation: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.runtime.run(operation)
    }

    /// Turns an SDK failure of `operation` on `key` into an error naming subject, operation,
    /// location, and the failure's one [rendering](AwsFailure) (AWS error code, HTTP status, the
    /// service's sanitized message, or a fixed transport classification).
    fn failure<E>(
        &self,
        subject: Subject<'_>,
        operation: &str,
        key: &str,
        error: &SdkError<E, HttpResponse>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let at = format!("{subject}: S3 {operation} {} failed", self.location_of(key));
        let failure = classify(error);
        match &failure {
            AwsFailure::Credentials { missing, .. } => {
                let kind = if *missing {
                    ErrorKind::StorageAccessDenied
                } else {
                    ErrorKind::StorageUnavailable
                };
                Error::new(kind, format!("{at}: no usable S3 credentials: {failure}"))
            }
            AwsFailure::Unavailable(_) => Error::new(
                ErrorKind::StorageUnavailable,
                format!("{at}: storage unavailable: {failure}"),
            ),
            AwsFailure::Service { code, status, .. } => {
                let kind = service_error_kind(code, *status);
                let hint = if code == "NoSuchBucket" {
                    format!(
                        " (bucket {:?} does not exist at this endpoint and region)",
                        self.settings.bucket
                    )
                } else {
                    String::new()
                };
                Error::new(kind, format!("{at}: {failure}{hint}"))
            }
            AwsFailure::BadResponse(_) => Error::new(ErrorKind::Io, format!("{at}: {failure}")),
            AwsFailure::Construction(_) => Error::new(
                ErrorKind::Io,
                format!("{at}: the request could not be made: {failure}"),
            ),
        }
    }

    /// One `PutObject`, conditional (`If-None-Match: *`) or not.
    async fn put_object(
        &self,
        subject: Subject<'_>,
        operation: &str,
        key: &str,
        bytes: &[u8],
        condition: PutCondition<'_>,
    ) -> std::result::Result<(), PutFailure> {
        let client = self
            .client(subject, operation, key)
            .await
            .map_err(PutFailure::Other)?;
        let mut request = client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .set_expected_bucket_owner(self.settings.expected_bucket_owner.clone())
            .body(bytes.to_vec().into());
        match &self.settings.server_side_encryption {
            None => {}
            Some(S3ServerSideEncryption::S3Managed) => {
                request = request.server_side_encryption(ServerSideEncryption::Aes256)
            }
            Some(S3ServerSideEncryption::Kms { key_id }) => {
                request = request
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .set_ssekms_key_id(key_id.clone())
            }
        }
        match condition {
            PutCondition::None => {}
            PutCondition::Absent => request = request.if_none_match("*"),
            PutCondition::ETag(etag) => request = request.if_match(etag),
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.code().unwrap_or_default();
                let status = e.raw_response().map(|r| r.status().as_u16());
                let unmet = code == "PreconditionFailed" || status == Some(412);
                // If-Match on a key that is gone: 404 NoSuchKey.
                let gone = code == "NoSuchKey" || status == Some(404);
                let refused = match condition {
                    PutCondition::None => false,
                    PutCondition::Absent => unmet,
                    PutCondition::ETag(_) => unmet || gone,
                };
                if refused {
                    Err(PutFailure::Exists)
                } else if code == "ConditionalRequestConflict" {
                    Err(PutFailure::Conflict(
                        self.failure(subject, operation, key, &e),
                    ))
                } else {
                    Err(PutFailure::Other(self.failure(subject, operation, key, &e)))
                }
            }
        }
    }

    /// One `GetObject` of `key`: its bytes (at most one past the envelope limit), or `None` if
    /// there is no such object.
    async fn get_object(&self, subject: Subject<'_>, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_object_tagged(subject, key)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// `GetObject` with `If-None-Match: etag`. A 304 is `NotModified` only if it names `etag`;
    /// any other answer is as `get_object_tagged`'s.
    async fn get_object_if_changed(
        &self,
        subject: Subject<'_>,
        key: &str,
        etag: &str,
    ) -> Result<Conditional> {
        let client = self.client(subject, "GetObject", key).await?;
        let sent = client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .if_none_match(etag)
            .set_expected_bucket_owner(self.settings.expected_bucket_owner.clone())
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(Conditional::Object(None))
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
                let confirmed = e
                    .raw_response()
                    .and_then(|r| r.headers().get("etag"))
                    .is_some_and(|tag| tag == etag);
                return Ok(if confirmed {
                    Conditional::NotModified
                } else {
                    Conditional::Untrusted304
                });
            }
            Err(e) => return Err(self.failure(subject, "GetObject", key, &e)),
        };
        self.read_body(subject, key, output, MAX_ENCODED_LEN)
            .await
            .map(Conditional::Object)
    }

    /// As `get_object`, with the object's ETag (if the server sent one).
    async fn get_object_tagged(
        &self,
        subject: Subject<'_>,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>> {
        self.get_object_bounded(subject, key, MAX_ENCODED_LEN).await
    }

    /// As `get_object_tagged`, keeping at most `max` + 1 bytes of the body.
    async fn get_object_bounded(
        &self,
        subject: Subject<'_>,
        key: &str,
        max: usize,
    ) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let client = self.client(subject, "GetObject", key).await?;
        let output = match client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .set_expected_bucket_owner(self.settings.expected_bucket_owner.clone())
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.failure(subject, "GetObject", key, &e)),
        };
        self.read_body(subject, key, output, max).await
    }

    /// The body (bounded in size and time: at most `max` + 1 bytes are kept) and ETag of a
    /// `GetObject` answer.
    async fn read_body(
        &self,
        subject: Subject<'_>,
        key: &str,
        output: aws_sdk_s3::operation::get_object::GetObjectOutput,
        max: usize,
    ) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let etag = output.e_tag().map(str::to_owned);
        let declared = output.content_length().unwrap_or(0);
        if declared > max as i64 {
            let location = self.location_of(key);
            return Err(match subject {
                Subject::Audit => Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "audit log: stored record at {location} is corrupt: {declared} bytes, \
                         more than any record ({max}); not read"
                    ),
                ),
                _ => Error::corrupt(
                    subject,
                    location,
                    format_args!("{declared} bytes, more than any envelope ({max}); not read"),
                ),
            });
        }
        // Never more than one byte past the limit, whatever the server sends: that byte is
        // enough for the codec to report an over-long object as corrupt.
        let cap = max + 1;
        let mut body = output.body;
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(cap));
        let read = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                let room = cap - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() == cap {
                    break;
                }
            }
            Ok::<(), aws_smithy_types::byte_stream::error::Error>(())
        };
        // The operation timeout ends when the headers arrive; bound the body read too.
        let limit = self.settings.timeouts.attempt;
        let failed = |why: String| {
            Error::new(
                ErrorKind::StorageUnavailable,
                format!(
                    "{subject}: S3 GetObject {} failed: storage unavailable: {why}",
                    self.location_of(key)
                ),
            )
        };
        match tokio::time::timeout(limit, read).await {
            Ok(Ok(())) => Ok(Some((bytes, etag))),
            Ok(Err(e)) => Err(failed(format!(
                "reading the object body failed ({})",
                transport_cause(&e)
            ))),
            Err(_) => Err(failed(format!(
                "reading the object body took longer than {limit:?}"
            ))),
        }
    }

    /// One `ListObjectsV2` page after `token`: the envelope keys on it, whether it is truncated,
    /// and the next page's token. Bounded by the attempt and operation timeouts, body included.
    async fn list_page(&self, client: &Client, token: Option<String>) -> Result<Page> {
        let prefix = &self.settings.prefix;
        let operation = "ListObjectsV2";
        let output = client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .set_expected_bucket_owner(self.settings.expected_bucket_owner.clone())
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.failure(Subject::Listing, operation, prefix, &e))?;
        let keys = output
            .contents()
            .iter()
            .filter_map(|object| object.key()?.strip_prefix(prefix.as_str()))
            .filter(|name| !name.contains('/'))
            .filter_map(key_of_envelope_name)
            .map(str::to_owned)
            .collect();
        Ok(Page {
            keys,
            truncated: output.is_truncated() == Some(true),
            next: output.next_continuation_token().map(str::to_owned),
        })
    }

    /// Requests pages into `listing` until one is not truncated or a bound of [`Listing`] is hit.
    async fn list_pages(&self, client: &Client, listing: &mut Listing) -> Result<()> {
        let mut token = None;
        loop {
            let page = self.list_page(client, token).await?;
            match listing.record(page) {
                Ok(Some(next)) => token = Some(next),
                Ok(None) => return Ok(()),
                Err(why) => return Err(self.listing_failure(ErrorKind::Io, why)),
            }
        }
    }

    /// An error of the listing: `listing KMS envelopes: S3 ListObjectsV2 <location> failed: <why>`.
    fn listing_failure(&self, kind: ErrorKind, why: impl fmt::Display) -> Error {
        Error::new(
            kind,
            format!(
                "{}: S3 ListObjectsV2 {} failed: {why}",
                Subject::Listing,
                self.location_of(&self.settings.prefix)
            ),
        )
    }
}

/// The precondition of a `PutObject`.
#[derive(Clone, Copy)]
enum PutCondition<'a> {
    None,
    /// `If-None-Match: *`: only if no object exists.
    Absent,
    /// `If-Match: <etag>`: only if the object is still this version.
    ETag(&'a str),
}

/// How a `PutObject` failed.
enum PutFailure {
    /// The precondition failed: the object exists (`Absent`), or is another version or gone
    /// (`ETag`).
    Exists,
    /// 409 ConditionalRequestConflict: a concurrent write to the key was in flight.
    Conflict(Error),
    Other(Error),
}

impl Drop for S3Store {
    fn drop(&mut self) {
        if !self.runtime.in_owner_process() {
            // A forked child: the SDK client's destructors would reach into the parent's runtime,
            // whose threads are gone. Leak it instead.
            if let Some((client, _)) = self.client.get() {
                std::mem::forget(client.clone());
            }
        }
    }
}

/// What a conditional `GetObject` answered.
enum Conditional {
    /// 304 naming the ETag sent: unchanged.
    NotModified,
    /// 304 without the ETag sent: not to be trusted.
    Untrusted304,
    /// A 200 (body and ETag) or no such key.
    Object(Option<(Vec<u8>, Option<String>)>),
}

impl super::EnvelopeBackend for S3Store {
    fn create(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        self.create_object(index, &self.object_key(index), bytes)
    }

    fn put(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        let key = self.object_key(index);
        self.run(async {
            match self
                .put_object(index.into(), "PutObject", &key, bytes, PutCondition::None)
                .await
            {
                Ok(()) => Ok(()),
                Err(PutFailure::Conflict(e) | PutFailure::Other(e)) => Err(e),
                Err(PutFailure::Exists) => unreachable!("unconditional put"),
            }
        })
    }

    fn get(&self, index: &IndexName) -> Result<Option<Vec<u8>>> {
        let key = self.object_key(index);
        self.run(self.get_object(index.into(), &key))
    }

    fn get_revision(&self, index: &IndexName) -> Result<Option<(Vec<u8>, Revision)>> {
        let key = self.object_key(index);
        let object = self.run(self.get_object_tagged(index.into(), &key))?;
        Ok(object.map(|(bytes, etag)| {
            let revision = Revision::of(&bytes, etag);
            (bytes, revision)
        }))
    }

    /// A conditional `GetObject` (`If-None-Match: <known ETag>`): a 304 whose `ETag` header is
    /// the known one means unchanged. A 304 without that header (or with another tag) is not
    /// trusted: the object is read whole and compared by digest. A 200 is compared by digest
    /// too, so a server that ignores the condition costs a body, never a wrong answer.
    fn recheck(&self, index: &IndexName, known: &Revision) -> Result<Recheck> {
        let Some(etag) = &known.etag else {
            return super::recheck_by_digest(self, index, known);
        };
        let key = self.object_key(index);
        let answer = self.run(self.get_object_if_changed(index.into(), &key, etag))?;
        match answer {
            Conditional::NotModified => Ok(Recheck::Unchanged(known.clone())),
            Conditional::Untrusted304 => super::recheck_by_digest(self, index, known),
            Conditional::Object(None) => Ok(Recheck::Gone),
            Conditional::Object(Some((bytes, etag))) => {
                let revision = Revision::of(&bytes, etag);
                Ok(if revision.digest == known.digest {
                    Recheck::Unchanged(revision)
                } else {
                    Recheck::Changed(bytes, revision)
                })
            }
        }
    }

    /// `PutObject` with `If-Match: <the ETag read>`: S3 writes only if no other write landed
    /// since that read.
    fn replace_if(&self, index: &IndexName, expected: &Revision, bytes: &[u8]) -> Result<()> {
        let key = self.object_key(index);
        let Some(etag) = &expected.etag else {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "index {index}: S3 GetObject {} answered with no ETag, so a conditional \
                     replace is impossible",
                    self.location_of(&key)
                ),
            ));
        };
        self.run(async {
            let put = self.put_object(
                index.into(),
                "PutObject",
                &key,
                bytes,
                PutCondition::ETag(etag),
            );
            match put.await {
                Ok(()) => Ok(()),
                Err(PutFailure::Exists) => Err(super::conflict(index)),
                Err(PutFailure::Conflict(e) | PutFailure::Other(e)) => Err(e),
            }
        })
    }

    fn delete(&self, index: &IndexName) -> Result<()> {
        self.delete_object(index, &self.object_key(index))
    }

    fn location(&self, index: &IndexName) -> String {
        self.location_of(&self.object_key(index))
    }

    /// Every page of `ListObjectsV2` on the prefix, within the bounds of [`listing`]: a repeated
    /// continuation token, an over-long one, too many pages or envelopes is `Io`; not
    /// finishing within [`listing_deadline`] is `StorageUnavailable`. Keys are de-duplicated.
    fn list_keys(&self) -> Result<Vec<String>> {
        self.run(async {
            let prefix = &self.settings.prefix;
            let client = self
                .client(Subject::Listing, "ListObjectsV2", prefix)
                .await?;
            let mut listing = Listing::new();
            let operation_timeout = self.settings.timeouts.operation;
            let deadline = listing_deadline(operation_timeout);
            let listed =
                tokio::time::timeout(deadline, self.list_pages(client, &mut listing)).await;
            match listed {
                Ok(Ok(())) => Ok(listing.into_keys()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(self.listing_failure(
                    ErrorKind::StorageUnavailable,
                    format_args!(
                        "storage unavailable: the listing did not finish within {deadline:?} \
                         ({LISTING_DEADLINE_FACTOR} x the {operation_timeout:?} operation \
                         timeout; {} pages read)",
                        listing.pages()
                    ),
                )),
            }
        })
    }

    fn get_by_key(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let object = self.object_key_of(key);
        self.run(self.get_object(Subject::Listing, &object))
    }

    fn key_location(&self, key: &str) -> String {
        self.location_of(&self.object_key_of(key))
    }

    fn audit_log(&self) -> &dyn crate::audit::AuditLog {
        self
    }

    fn create_sidecar(&self, index: &IndexName, kind: Sidecar, bytes: &[u8]) -> Result<()> {
        self.create_object(index, &self.sidecar_key(index, kind), bytes)
    }

    fn get_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<Option<Vec<u8>>> {
        let key = self.sidecar_key(index, kind);
        self.run(self.get_object(index.into(), &key))
    }

    fn delete_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<()> {
        self.delete_object(index, &self.sidecar_key(index, kind))
    }

    fn sidecar_location(&self, index: &IndexName, kind: Sidecar) -> String {
        self.location_of(&self.sidecar_key(index, kind))
    }
}

/// The error kind of an S3 error response.
fn service_error_kind(code: &str, status: u16) -> ErrorKind {
    match code {
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "AllAccessDisabled"
        | "AccountProblem"
        | "InvalidSecurity"
        | "NoSuchBucket" => ErrorKind::StorageAccessDenied,
        "SlowDown"
        | "ServiceUnavailable"
        | "InternalError"
        | "RequestTimeout"
        | "RequestTimeTooSkewed"
        | "ConditionalRequestConflict" => ErrorKind::StorageUnavailable,
        _ if status == 401 || status == 403 => ErrorKind::StorageAccessDenied,
        _ if status >= 500 || status == 429 => ErrorKind::StorageUnavailable,
        _ => ErrorKind::Io,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: every message names the field and never echoes a credential.

/// S3's bucket naming rules (general purpose buckets): 3–63 characters of `a-z`, `0-9`, `.` and
/// `-`, starting and ending with a letter or digit, no `..`, not an IPv4 address.
fn validate_bucket(bucket: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid_argument(format!(
            "S3 bucket name {} {why}",
            quoted_prefix(bucket)
        )))
    };
    if !(3..=63).contains(&bucket.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("may contain only lower-case letters, digits, '.' and '-'");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = bucket.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    if bucket.contains("..") {
        return bad("must not contain \"..\"");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be an IP address");
    }
    Ok(())
}

/// Checks the prefix and returns it with a trailing `/` (or empty).
fn normalize_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Ok(String::new());
    }
    let bad = |why: String| {
        Err(Error::invalid_argument(format!(
            "S3 prefix {} {why}",
            quoted_prefix(prefix)
        )))
    };
    if prefix.chars().any(char::is_control) {
        return bad("contains a control character".into());
    }
    if prefix.starts_with('/') {
        return bad("must not start with '/'".into());
    }
    let mut normalized = prefix.to_owned();
    if !normalized.ends_with('/') {
        normalized.push('/');
    }
    if normalized.len() > MAX_S3_PREFIX_LEN {
        return bad(format!(
            "is {} bytes with its trailing '/', more than the {MAX_S3_PREFIX_LEN}-byte limit",
            normalized.len()
        ));
    }
    let segments = &normalized[..normalized.len() - 1];
    if segments
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("must not have empty, '.' or '..' segments".into());
    }
    Ok(normalized)
}

/// A region goes into host names: 1–64 characters of letters, digits, `-` and `_`.
fn validate_region(region: &str) -> Result<()> {
    if region.is_empty()
        || region.len() > 64
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid_argument(format!(
            "S3 region {} must be 1 to 64 letters, digits, '-' or '_'",
            quoted_prefix(region)
        )));
    }
    Ok(())
}

/// The SSE setting as stored: an empty SSE-KMS key id is none. `InvalidArgument` for a key id
/// that is too long or not printable ASCII without spaces (it becomes a header value).
fn normalize_sse(sse: Option<S3ServerSideEncryption>) -> Result<Option<S3ServerSideEncryption>> {
    let Some(S3ServerSideEncryption::Kms {
        key_id: Some(key_id),
    }) = &sse
    else {
        return Ok(sse);
    };
    if key_id.is_empty() {
        return Ok(Some(S3ServerSideEncryption::Kms { key_id: None }));
    }
    if key_id.len() > MAX_SSE_KMS_KEY_ID_LEN || !key_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_argument(format!(
            "S3 server_side_encryption KMS key id {} must be 1 to {MAX_SSE_KMS_KEY_ID_LEN} \
             printable ASCII characters without spaces",
            quoted_prefix(key_id)
        )));
    }
    Ok(sse)
}

/// An `ExpectedBucketOwner` must be an AWS account id: exactly 12 decimal digits.
fn validate_bucket_owner(owner: &str) -> Result<()> {
    if owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    Err(Error::invalid_argument(format!(
        "S3 expected_bucket_owner {} must be an AWS account id (12 digits)",
        quoted_prefix(owner)
    )))
}

fn validate_endpoint(endpoint: &str) -> Result<()> {
    check_endpoint_url(endpoint)
        .map_err(|why| Error::invalid_argument(format!("S3 endpoint {why}")))
}

/// The endpoint variables the SDK reads for S3 when no endpoint option is given: an unusable
/// URL is `InvalidConfig` naming the variable.
fn validate_endpoint_variables() -> Result<()> {
    check_endpoint_variables(S3_ENDPOINT_VARIABLES)
        .map_err(|why| Error::new(ErrorKind::InvalidConfig, format!("S3 storage: {why}")))
}

fn validate_credentials(credentials: &S3Credentials) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid_argument(format!("S3 credentials: {why}")));
    if credentials.access_key.is_empty() {
        return bad("access_key must not be empty");
    }
    if credentials.secret_key.is_empty() {
        return bad("secret_key must not be empty");
    }
    // They become HTTP header content: no control characters or spaces.
    let header_safe = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if !header_safe(&credentials.access_key) {
        return bad("access_key must be printable ASCII without spaces");
    }
    if !header_safe(&credentials.secret_key) {
        return bad("secret_key must be printable ASCII without spaces");
    }
    if let Some(token) = &credentials.session_token {
        if !header_safe(token) {
            return bad("session_token must be printable ASCII without spaces");
        }
    }
    Ok(())
}

fn validate_timeouts(timeouts: &AwsTimeouts) -> Result<()> {
    timeouts
        .check()
        .map_err(|why| Error::invalid_argument(format!("S3 {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EnvelopeBackend;

    fn store(prefix: &str) -> S3Store {
        S3Store::new(
            "bucket",
            S3Options {
                prefix: prefix.into(),
                ..S3Options::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn object_keys_are_prefix_storage_key_dot_kms() {
        let idx = |n: &str| IndexName::new(n).unwrap();
        assert_eq!(store("").object_key(&idx("my_index")), "my_index.kms");
        assert_eq!(store("ks").object_key(&idx("my_index")), "ks/my_index.kms");
        assert_eq!(store("a/b/").object_key(&idx("../x")), "a/b/%2E%2E%2Fx.kms");
        let long = store("p").object_key(&idx(&"鍵".repeat(85)));
        assert!(long.starts_with("p/~") && long.ends_with(".kms") && long.len() == 2 + 65 + 4);
        assert_eq!(
            store("p").location(&idx("My Index")),
            "s3://bucket/p/%4Dy%20%49ndex.kms"
        );
    }

    #[test]
    fn the_longest_prefix_and_key_fit_s3s_limit() {
        let prefix = format!("{}/", "p".repeat(MAX_S3_PREFIX_LEN - 1));
        let key = store(&prefix).object_key(&IndexName::new(&"a".repeat(200)).unwrap());
        assert_eq!(key.len(), MAX_OBJECT_KEY_LEN);
        let err = normalize_prefix(&"p".repeat(MAX_S3_PREFIX_LEN)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("820-byte limit"), "{err:?}");
    }

    #[test]
    fn bad_buckets_prefixes_regions_endpoints_are_rejected() {
        for bucket in [
            "", "ab", "UPPER", "a_b", "-ab", "ab-", "a..b", "a/b", "1.2.3.4", "a b",
        ] {
            assert_eq!(
                validate_bucket(bucket).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bucket:?}"
            );
        }
        for bucket in ["abc", "my-bucket.v2", "0ab", &"a".repeat(63)] {
            validate_bucket(bucket).unwrap();
        }
        for prefix in ["/a", "a//b", "./a", "a/../b", "a\nb", "a/./"] {
            assert!(normalize_prefix(prefix).is_err(), "{prefix:?}");
        }
        assert_eq!(normalize_prefix("a/b").unwrap(), "a/b/");
        assert_eq!(normalize_prefix("a/b/").unwrap(), "a/b/");
        assert_eq!(normalize_prefix("Ünï cödé").unwrap(), "Ünï cödé/");
        for region in ["", "us east", "a/b", &"a".repeat(65)] {
            assert!(validate_region(region).is_err(), "{region:?}");
        }
        validate_region("auto").unwrap();
        for endpoint in [
            "",
            "127.0.0.1:9000",
            "ftp://x",
            "http://",
            "http:///path",
            "http://user:pw@host",
            "http://user:pw@ho st",
            "ftp://user:pw@host",
            "http://host/?q",
            "http://host#f",
            "http://ho st",
            "http://host\n",
        ] {
            let err = validate_endpoint(endpoint).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{endpoint:?}");
            assert!(!err.message().contains("pw@"), "{err:?}");
        }
        for endpoint in [
            "http://127.0.0.1:9000",
            "https://s3.example.com",
            "https://h/base",
        ] {
            validate_endpoint(endpoint).unwrap();
        }
    }

    #[test]
    fn credential_errors_and_debug_never_show_the_secret() {
        let mut c = S3Credentials::new("AKIDEXAMPLE", "s3cr3t\n");
        c.session_token = Some("t0ken".into());
        let err = validate_credentials(&c).unwrap_err();
        assert_eq!(
            err.message(),
            "S3 credentials: secret_key must be printable ASCII without spaces"
        );
        let shown = format!(
            "{:?}",
            S3Options {
                credentials: Some(c),
                ..S3Options::default()
            }
        );
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0ken"),
            "{shown}"
        );
        assert!(validate_credentials(&S3Credentials::new("", "x")).is_err());
        assert!(validate_credentials(&S3Credentials::new("x", "")).is_err());
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        let mut t = AwsTimeouts::default();
        validate_timeouts(&t).unwrap();
        t.attempt = Duration::ZERO;
        assert!(validate_timeouts(&t).is_err());
        let t = AwsTimeouts {
            max_attempts: Some(0),
            ..AwsTimeouts::default()
        };
        assert!(validate_timeouts(&t).is_err());
    }

    #[test]
    fn service_errors_map_to_kinds() {
        assert_eq!(
            service_error_kind("AccessDenied", 403),
            ErrorKind::StorageAccessDenied
        );
        assert_eq!(
            service_error_kind("NoSuchBucket", 404),
            ErrorKind::StorageAccessDenied
        );
        assert_eq!(
            service_error_kind("Whatever", 403),
            ErrorKind::StorageAccessDenied
        );
        assert_eq!(
            service_error_kind("SlowDown", 503),
            ErrorKind::StorageUnavailable
        );
        assert_eq!(
            service_error_kind("Odd", 502),
            ErrorKind::StorageUnavailable
        );
        assert_eq!(service_error_kind("InvalidRequest", 400), ErrorKind::Io);
    }
}
