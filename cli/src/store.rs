//! Store URLs (`file:///path` or a plain path, `s3://bucket/prefix`, `memory:`) and the S3 and
//! KMS settings that come with them, turned into the library's [`StorageConfig`] and
//! [`KmsClient`]. Everything here is argument handling: the library checks every value again.

use std::path::PathBuf;

use clap::Args;
use cyborgdb_kms::{
    KmsClient, KmsClientOptions, Registry, S3Credentials, S3Options, Slot, StorageConfig,
};

use crate::report::CliError;

/// Environment variables of S3 *storage* credentials: kept apart from the `AWS_*` variables the
/// KMS providers use, as the CyborgDB docs require (never mixed, in either direction).
pub const S3_ACCESS_KEY_ENV: &str = "CYBORGDB_S3_ACCESS_KEY_ID";
/// See [`S3_ACCESS_KEY_ENV`]. Read from the environment only: a flag would show in `ps`.
pub const S3_SECRET_KEY_ENV: &str = "CYBORGDB_S3_SECRET_ACCESS_KEY";
/// See [`S3_ACCESS_KEY_ENV`].
pub const S3_SESSION_TOKEN_ENV: &str = "CYBORGDB_S3_SESSION_TOKEN";

/// How S3 stores are reached (for every `s3://` URL of the command).
#[derive(Args, Debug, Clone, Default)]
pub struct S3Args {
    /// The bucket's region (default: the AWS chain; with an endpoint, us-east-1).
    #[arg(long, global = true, env = "CYBORGDB_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// An S3-compatible endpoint (MinIO, Ceph, R2, an emulator): http(s)://host[:port].
    /// Requires storage credentials (CYBORGDB_S3_ACCESS_KEY_ID / CYBORGDB_S3_SECRET_ACCESS_KEY).
    #[arg(long, global = true, env = "CYBORGDB_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The storage access key id (the secret key comes from CYBORGDB_S3_SECRET_ACCESS_KEY only).
    #[arg(long, global = true, env = S3_ACCESS_KEY_ENV, value_name = "ID")]
    pub s3_access_key_id: Option<String>,
    /// With --s3-endpoint and no storage credentials, sign with the default AWS chain anyway
    /// (for an endpoint that is AWS S3 itself, e.g. a VPC interface endpoint).
    #[arg(long, global = true)]
    pub s3_default_credentials_with_endpoint: bool,
}

/// How KMS slots are reached.
#[derive(Args, Debug, Clone, Default)]
pub struct KmsArgs {
    /// The registry file (its `kms.registry` section names the slots and their keys).
    #[arg(
        long,
        global = true,
        env = "CYBORGDB_KMS_REGISTRY",
        value_name = "FILE"
    )]
    pub registry: Option<PathBuf>,
    /// One endpoint for KMS, Secrets Manager and STS (default: the SDK's, which honours
    /// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_KMS / _SECRETS_MANAGER / _STS).
    #[arg(long, global = true, value_name = "URL")]
    pub kms_endpoint: Option<String>,
    /// DEVELOPMENT ONLY: add a slot of the `local` provider, NAME=file:PATH or NAME=env:VAR
    /// (a 32-byte master key on this machine), and allow `local` envelopes. Repeatable.
    #[arg(long, global = true, value_name = "NAME=KEY_SOURCE")]
    pub dev_local_slot: Vec<String>,
}

/// The store a URL names: `file:///abs/path` or a plain path (Disk), `s3://bucket[/prefix]`
/// (S3 with `s3`'s settings), `memory:` (an empty in-process store: for tests).
///
/// Errors: [`CliError::Usage`] for an unknown scheme or a bad URL, and the library's
/// `InvalidArgument` / `InvalidConfig` (also usage errors: nothing was touched).
pub fn open_store(url: &str, s3: &S3Args) -> Result<StorageConfig, CliError> {
    let config = if url == "memory:" {
        Ok(StorageConfig::memory())
    } else if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(CliError::usage(format!(
                "store URL {url:?}: a file URL needs an absolute path (file:///var/lib/cyborgdb)"
            )));
        }
        StorageConfig::disk(rest)
    } else if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(CliError::usage(format!(
                "store URL {url:?}: no bucket (s3://bucket/prefix)"
            )));
        }
        StorageConfig::s3(bucket, s3_options(prefix, s3)?)
    } else if url.contains("://") || url.ends_with(':') {
        return Err(CliError::usage(format!(
            "store URL {url:?}: unknown scheme (use file:///path, a path, s3://bucket/prefix or memory:)"
        )));
    } else {
        StorageConfig::disk(url)
    };
    config.map_err(CliError::config)
}

fn s3_options(prefix: &str, s3: &S3Args) -> Result<S3Options, CliError> {
    let secret = std::env::var(S3_SECRET_KEY_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let credentials = match (&s3.s3_access_key_id, secret) {
        (Some(access), Some(secret)) => Some(S3Credentials {
            access_key: access.clone(),
            secret_key: secret,
            session_token: std::env::var(S3_SESSION_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty()),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(CliError::usage(format!(
            "S3 storage credentials: an access key id is given but {S3_SECRET_KEY_ENV} is not set"
        )))
        }
        (None, Some(_)) => {
            return Err(CliError::usage(format!(
                "S3 storage credentials: {S3_SECRET_KEY_ENV} is set but no access key id \
                 (--s3-access-key-id or {S3_ACCESS_KEY_ENV})"
            )))
        }
    };
    Ok(S3Options {
        prefix: prefix.to_owned(),
        region: s3.s3_region.clone(),
        endpoint: s3.s3_endpoint.clone(),
        credentials,
        default_credentials_with_endpoint: s3.s3_default_credentials_with_endpoint,
        ..S3Options::default()
    })
}

/// The KMS client of the command: the `--registry` file's slots plus any `--dev-local-slot`.
/// `required_by` names the command for the error when neither is given.
///
/// Errors: usage errors (no registry, a bad `--dev-local-slot`), and the library's
/// `InvalidConfig` / `Io` loading the registry (configuration errors: exit 2).
pub fn open_kms(kms: &KmsArgs, required_by: &str) -> Result<KmsClient, CliError> {
    let registry = match &kms.registry {
        Some(path) => Registry::from_yaml_file(path).map_err(CliError::config)?,
        None if kms.dev_local_slot.is_empty() => {
            return Err(CliError::usage(format!(
                "{required_by} needs the KMS registry: pass --registry cyborgdb.yaml \
                 (or set CYBORGDB_KMS_REGISTRY)"
            )))
        }
        None => Registry::new(),
    };
    let options = KmsClientOptions {
        endpoint_url: kms.kms_endpoint.clone(),
        allow_local_provider: !kms.dev_local_slot.is_empty(),
        ..KmsClientOptions::default()
    };
    let client = KmsClient::with_registry(registry, options).map_err(CliError::config)?;
    for spec in &kms.dev_local_slot {
        let Some((name, source)) = spec.split_once('=') else {
            return Err(CliError::usage(format!(
                "--dev-local-slot {spec:?}: expected NAME=file:PATH or NAME=env:VARIABLE"
            )));
        };
        let slot =
            Slot::from_fields(name, "local", source, "", "", "", "").map_err(CliError::config)?;
        client.add_slot(name, slot).map_err(CliError::config)?;
    }
    Ok(client)
}
