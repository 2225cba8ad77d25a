//! Retry settings from the environment and the shared config file: `AWS_MAX_ATTEMPTS`,
//! `AWS_RETRY_MODE` and the profile's `max_attempts` / `retry_mode` apply when the options leave
//! them unset (attempts counted on a fault peer / fake S3), the options win when set, and hostile
//! values are refused with `InvalidConfig` naming their source. One test in its own binary,
//! because it changes the process environment.

mod common;

use std::time::Duration;

use common::aws_kms_blob;
use common::fake_s3::{FakeS3, Response};
use common::fault_peer::{FaultPeer, Reply};
use cyborgdb_kms::{
    push_index_kms, AwsTimeouts, ErrorKind, KmsBlob, KmsClient, KmsClientOptions, Provider,
    S3Credentials, S3Options, Slot, StorageConfig,
};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Timeouts with attempts and mode left to the environment and profile.
fn unset_retries() -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(500),
        operation: Duration::from_secs(10),
        max_attempts: None,
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

fn kms_client(endpoint: &str, timeouts: AwsTimeouts) -> cyborgdb_kms::Result<KmsClient> {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        timeouts,
        ..KmsClientOptions::default()
    })?;
    client.add_slot("kms", Slot::new(Provider::AwsKms, KEY_ARN, "us-east-1"))?;
    Ok(client)
}

fn blob() -> KmsBlob {
    KmsBlob {
        kms_name: "kms".into(),
        provider: "aws-kms".into(),
        key_id: KEY_ARN.into(),
        region: "us-east-1".into(),
        wrapped_kek: b"wrapped".to_vec(),
        version: 1,
        created_at: 1,
    }
}

/// Attempts a fresh client made now spends on a peer that always throttles, and the maximum the
/// last attempt announced (`amz-sdk-request: attempt=N; max=M`).
fn kms_attempts(timeouts: AwsTimeouts) -> (usize, String) {
    let peer = FaultPeer::start(|_| Reply::aws_error(400, "ThrottlingException", "slow down"));
    let client = kms_client(peer.endpoint(), timeouts).unwrap();
    let err = client.unwrap_kek("orders", &blob()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsThrottled, "{err:?}");
    let requests = peer.requests();
    let info = requests
        .last()
        .and_then(|r| r.header("amz-sdk-request"))
        .unwrap_or_default()
        .to_owned();
    (requests.len(), info)
}

/// Attempts a fresh S3 store made now spends on a fake S3 that always answers 503 SlowDown.
fn s3_attempts() -> usize {
    let server = FakeS3::start(|_| Response::error(503, "SlowDown", "slow down"));
    let store = StorageConfig::s3(
        "fake-bucket",
        S3Options {
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint.clone()),
            credentials: Some(S3Credentials::new("S3KEY", "s3-secret")),
            timeouts: unset_retries(),
            ..S3Options::default()
        },
    )
    .unwrap();
    let err = push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    server.requests().len()
}

fn set(name: &str, value: Option<&str>) {
    match value {
        Some(value) => std::env::set_var(name, value),
        None => std::env::remove_var(name),
    }
}

#[test]
fn retry_settings_come_from_options_then_environment_then_profile() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");

    // Nothing set anywhere (AWS_CONFIG_FILE is /dev/null): 3 attempts.
    assert_eq!(
        kms_attempts(unset_retries()),
        (3, "attempt=3; max=3".into())
    );

    // AWS_MAX_ATTEMPTS, for KMS and S3 alike.
    set("AWS_MAX_ATTEMPTS", Some("4"));
    assert_eq!(
        kms_attempts(unset_retries()),
        (4, "attempt=4; max=4".into())
    );
    assert_eq!(s3_attempts(), 4);
    // The options win over it.
    let one = AwsTimeouts {
        max_attempts: Some(1),
        ..unset_retries()
    };
    assert_eq!(kms_attempts(one.clone()).0, 1);

    // The selected profile's max_attempts, when the environment says nothing; the variable wins
    // over it.
    std::fs::write(
        &config,
        "[default]\nmax_attempts = 2\nretry_mode = standard\n",
    )
    .unwrap();
    set("AWS_CONFIG_FILE", Some(config.to_str().unwrap()));
    assert_eq!(kms_attempts(unset_retries()).0, 4);
    set("AWS_MAX_ATTEMPTS", None);
    assert_eq!(
        kms_attempts(unset_retries()),
        (2, "attempt=2; max=2".into())
    );
    assert_eq!(s3_attempts(), 2);
    std::fs::write(
        &config,
        "[default]\nmax_attempts = 1\n[profile other]\nmax_attempts = 5\n",
    )
    .unwrap();
    set("AWS_PROFILE", Some("other"));
    assert_eq!(kms_attempts(unset_retries()).0, 5);
    set("AWS_PROFILE", None);

    // Hostile environment values: refused when the client or store is made, naming the variable.
    let peer = FaultPeer::start(|_| Reply::kms_decrypt(KEY_ARN, &[1; 32]));
    for (name, value, why) in [
        (
            "AWS_MAX_ATTEMPTS",
            "0",
            "max attempts must be a whole number from 1 to 10",
        ),
        (
            "AWS_MAX_ATTEMPTS",
            "4294967296",
            "max attempts must be a whole number from 1 to 10",
        ),
        (
            "AWS_MAX_ATTEMPTS",
            "three",
            "max attempts must be a whole number from 1 to 10",
        ),
        (
            "AWS_RETRY_MODE",
            "legacy",
            "the retry mode must be \"standard\" or \"adaptive\"",
        ),
    ] {
        set(name, Some(value));
        let err = kms_client(peer.endpoint(), unset_retries()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
        assert_eq!(
            err.message(),
            format!("KMS client: environment variable {name} is \"{value}\": {why}")
        );
        let err = StorageConfig::s3("bucket", S3Options::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
        assert_eq!(
            err.message(),
            format!("S3 storage: environment variable {name} is \"{value}\": {why}")
        );
        // Options that set both leave the variables unread.
        let explicit = AwsTimeouts {
            max_attempts: Some(1),
            retry_mode: Some(cyborgdb_kms::AwsRetryMode::Standard),
            ..unset_retries()
        };
        kms_client(peer.endpoint(), explicit).unwrap();
        set(name, None);
    }
    assert_eq!(peer.request_count(), 0);

    // Hostile profile values: refused by the first call that reaches AWS, naming the key.
    std::fs::write(&config, "[default]\nmax_attempts = 99\n").unwrap();
    let client = kms_client(peer.endpoint(), unset_retries()).unwrap();
    let err = client.unwrap_kek("orders", &blob()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert_eq!(
        err.message(),
        "index \"orders\": kms:Decrypt could not be sent: max_attempts of profile \"default\" in \
         the AWS config file is \"99\": max attempts must be a whole number from 1 to 10"
    );
    std::fs::write(&config, "[default]\nretry_mode = turbo\n").unwrap();
    let server = FakeS3::start(|_| Response::ok());
    let store = StorageConfig::s3(
        "fake-bucket",
        S3Options {
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint.clone()),
            credentials: Some(S3Credentials::new("S3KEY", "s3-secret")),
            timeouts: unset_retries(),
            ..S3Options::default()
        },
    )
    .unwrap();
    let err = push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert!(
        err.message().ends_with(
            "S3 storage: retry_mode of profile \"default\" in the AWS config file is \"turbo\": \
             the retry mode must be \"standard\" or \"adaptive\""
        ),
        "{err:?}"
    );
    assert_eq!(peer.request_count(), 0);
    assert_eq!(server.requests().len(), 0);
}
