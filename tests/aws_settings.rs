//! AWS settings of issue #14, each shown on the wire of a loopback fault peer or fake S3: separate
//! KMS / Secrets Manager / STS endpoints, the adaptive retry mode and the attempts limit, S3
//! server-side encryption, `ExpectedBucketOwner` on every S3 request, and the opt-in to the
//! default credential chain with a custom S3 endpoint. The settings read from the environment
//! (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, the profile) are in `aws_settings_env.rs`.

mod common;

use std::time::Duration;

use common::aws_kms_blob;
use common::fake_s3::{is_list, FakeS3, Response};
use common::fault_peer::{refused_endpoint, FaultPeer, Reply, Request};
use cyborgdb_kms::kms::registry::AssumeRole;
use cyborgdb_kms::{
    delete_index_kms, get_index_kms, list_index_kms, push_index_kms, AwsRetryMode, AwsTimeouts,
    ErrorKind, KmsBlob, KmsClient, KmsClientOptions, Provider, S3Credentials, S3Options,
    S3ServerSideEncryption, Slot, StorageConfig,
};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OWNER: &str = "123456789012";

fn fast_timeouts(max_attempts: u32) -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(500),
        operation: Duration::from_secs(10),
        max_attempts: Some(max_attempts),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

fn slot(provider: Provider, key_id: &str, assume_role: Option<AssumeRole>) -> Slot {
    Slot {
        assume_role,
        ..Slot::new(provider, key_id, "us-east-1")
    }
}

fn blob(kms_name: &str, provider: &str, key_id: &str) -> KmsBlob {
    KmsBlob {
        kms_name: kms_name.into(),
        provider: provider.into(),
        key_id: key_id.into(),
        region: "us-east-1".into(),
        wrapped_kek: b"wrapped".to_vec(),
        version: 1,
        created_at: 1,
    }
}

fn is_sts(request: &Request) -> bool {
    request.query_action().as_deref() == Some("AssumeRole")
}

// ---------------------------------------------------------------------------------------------
// Separate endpoints

#[test]
fn kms_secrets_manager_and_sts_requests_reach_their_own_endpoints() {
    let kms = FaultPeer::start(|_| Reply::kms_decrypt(KEY_ARN, &[7; 32]));
    let secrets = FaultPeer::start(|_| Reply::aws_error(400, "AccessDeniedException", "no"));
    let sts = FaultPeer::start(|_| {
        Reply::assume_role(
            "ASIAROLEKEY",
            "role-secret",
            "role-token",
            "2099-01-01T00:00:00Z",
        )
    });
    let client = KmsClient::new(KmsClientOptions {
        // The shared endpoint is closed: every request that reached a peer was routed by its
        // service's own option.
        endpoint_url: Some(refused_endpoint()),
        kms_endpoint_url: Some(kms.endpoint().to_owned()),
        secrets_manager_endpoint_url: Some(secrets.endpoint().to_owned()),
        sts_endpoint_url: Some(sts.endpoint().to_owned()),
        timeouts: fast_timeouts(1),
        ..KmsClientOptions::default()
    })
    .unwrap();
    let role = AssumeRole {
        role_arn: "arn:aws:iam::111122223333:role/cyborgdb-byok".into(),
        external_id: "ext-6f1c9a1e".into(),
        session_name: None,
    };
    client
        .add_slot("byok", slot(Provider::AwsKms, KEY_ARN, Some(role)))
        .unwrap();
    client
        .add_slot("sm", slot(Provider::Aws, "customers/acme/kek", None))
        .unwrap();

    let kek = client
        .unwrap_kek("orders", &blob("byok", "aws-kms", KEY_ARN))
        .unwrap();
    assert_eq!(kek.as_bytes(), &[7; 32]);
    // AssumeRole went to the STS peer only; Decrypt, signed with the role's key, to the KMS peer.
    let sts_requests = sts.requests();
    assert_eq!(sts_requests.len(), 1, "{sts_requests:?}");
    assert!(is_sts(&sts_requests[0]));
    let kms_requests = kms.requests();
    assert_eq!(kms_requests.len(), 1, "{kms_requests:?}");
    assert_eq!(kms_requests[0].target(), Some("TrentService.Decrypt"));
    assert_eq!(kms_requests[0].access_key_id(), Some("ASIAROLEKEY"));

    let err = client
        .unwrap_kek("orders", &blob("sm", "aws", "customers/acme/kek"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsAccessDenied, "{err:?}");
    assert_eq!(
        err.message(),
        "index \"orders\": secretsmanager:GetSecretValue failed: AccessDeniedException (HTTP \
         400): no"
    );
    let secrets_requests = secrets.requests();
    assert_eq!(secrets_requests.len(), 1, "{secrets_requests:?}");
    assert_eq!(
        secrets_requests[0].target(),
        Some("secretsmanager.GetSecretValue")
    );
    assert_eq!(kms.request_count(), 1);
    assert_eq!(sts.request_count(), 1);
}

#[test]
fn a_service_without_its_own_endpoint_uses_the_shared_one() {
    let shared = FaultPeer::start(|_| Reply::kms_decrypt(KEY_ARN, &[3; 32]));
    let sts = FaultPeer::start(|_| Reply::aws_error(400, "Unexpected", "not STS's call"));
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(shared.endpoint().to_owned()),
        sts_endpoint_url: Some(sts.endpoint().to_owned()),
        timeouts: fast_timeouts(1),
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot("kms", slot(Provider::AwsKms, KEY_ARN, None))
        .unwrap();
    let kek = client
        .unwrap_kek("orders", &blob("kms", "aws-kms", KEY_ARN))
        .unwrap();
    assert_eq!(kek.as_bytes(), &[3; 32]);
    assert_eq!(shared.count_target("TrentService.Decrypt"), 1);
    assert_eq!(sts.request_count(), 0);
}

#[test]
fn per_service_endpoints_follow_the_endpoint_rules() {
    let with = |set: fn(&mut KmsClientOptions, String), url: &str, insecure: bool| {
        let mut options = KmsClientOptions {
            allow_insecure_http: insecure,
            ..KmsClientOptions::default()
        };
        set(&mut options, url.to_owned());
        KmsClient::new(options)
    };
    type Setter = fn(&mut KmsClientOptions, String);
    let fields: [(&str, Setter); 3] = [
        ("kms_endpoint_url", |o, u| o.kms_endpoint_url = Some(u)),
        ("secrets_manager_endpoint_url", |o, u| {
            o.secrets_manager_endpoint_url = Some(u)
        }),
        ("sts_endpoint_url", |o, u| o.sts_endpoint_url = Some(u)),
    ];
    for (name, set) in fields {
        let err = with(set, "ftp://x", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{name}");
        assert_eq!(
            err.message(),
            format!("KMS {name} \"ftp://x\" must start with http:// or https://")
        );
        let err = with(set, "http://me:pw@h", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{name}");
        assert!(!err.message().contains("pw"), "{err:?}");

        let err = with(set, "http://10.1.2.3:443", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{name}");
        assert_eq!(
            err.message(),
            format!(
                "KMS client: {name} \"http://10.1.2.3:443\" is plain http to another host: KEKs, \
                 Secrets Manager values and role credentials would cross the network in clear \
                 text; use https://, a loopback address, or set allow_insecure_http"
            )
        );
        with(set, "http://10.1.2.3:443", true).unwrap();
        with(set, "https://kms.vpce.example:443", false).unwrap();
        with(set, "http://127.0.0.1:4566", false).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Retries

/// A client of `peer` with `mode`, 3 attempts and a 3 s operation bound.
fn throttled_client(peer: &FaultPeer, mode: AwsRetryMode) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(peer.endpoint().to_owned()),
        timeouts: AwsTimeouts {
            retry_mode: Some(mode),
            attempt: Duration::from_secs(3),
            operation: Duration::from_secs(3),
            ..fast_timeouts(3)
        },
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot("kms", slot(Provider::AwsKms, KEY_ARN, None))
        .unwrap();
    client
}

fn throttled_once() -> FaultPeer {
    FaultPeer::sequence(
        vec![Reply::aws_error(
            400,
            "ThrottlingException",
            "Rate exceeded",
        )],
        Reply::kms_decrypt(KEY_ARN, &[9; 32]),
    )
}

#[test]
fn adaptive_retry_mode_holds_retries_back_after_throttling() {
    // Standard: the throttled call is retried at once (10 ms backoff) and succeeds; each attempt
    // announces the configured maximum.
    let peer = throttled_once();
    let client = throttled_client(&peer, AwsRetryMode::Standard);
    let kek = client
        .unwrap_kek("orders", &blob("kms", "aws-kms", KEY_ARN))
        .unwrap();
    assert_eq!(kek.as_bytes(), &[9; 32]);
    let requests = peer.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for (i, request) in requests.iter().enumerate() {
        let info = request.header("amz-sdk-request").unwrap_or_default();
        assert!(info.starts_with(&format!("attempt={}", i + 1)), "{info}");
        assert!(info.ends_with("max=3"), "{info}");
    }

    // Adaptive: after the throttling answer the client-side rate limiter holds the retry back
    // (for tens of seconds after a first throttle, with this SDK), so within the operation bound
    // no second request reaches the peer.
    let peer = throttled_once();
    let client = throttled_client(&peer, AwsRetryMode::Adaptive);
    let err = client
        .unwrap_kek("orders", &blob("kms", "aws-kms", KEY_ARN))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{err:?}");
    assert_eq!(
        err.message(),
        "index \"orders\": kms:Decrypt failed: timed out (operation or attempt timeout)"
    );
    assert_eq!(peer.request_count(), 1);
}

#[test]
fn explicit_attempts_above_the_limit_are_refused() {
    let err = KmsClient::new(KmsClientOptions {
        timeouts: fast_timeouts(cyborgdb_kms::MAX_ATTEMPTS_LIMIT + 1),
        ..KmsClientOptions::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        err.message(),
        "KMS client max_attempts must be at most 10 (got 11)"
    );
    let err = StorageConfig::s3(
        "bucket",
        S3Options {
            timeouts: fast_timeouts(u32::MAX),
            ..S3Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message()
            .ends_with("max_attempts must be at most 10 (got 4294967295)"),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// S3

fn s3_store(server: &FakeS3, extra: S3Options) -> StorageConfig {
    StorageConfig::s3(
        "fake-bucket",
        S3Options {
            prefix: "ks".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint.clone()),
            timeouts: fast_timeouts(1),
            ..extra
        },
    )
    .unwrap()
}

fn with_credentials() -> S3Options {
    S3Options {
        credentials: Some(S3Credentials::new("S3KEY", "s3-secret")),
        ..S3Options::default()
    }
}

fn put_requests(server: &FakeS3) -> Vec<Request> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect()
}

#[test]
fn server_side_encryption_is_requested_on_every_put() {
    let cases = [
        (None, None, None),
        (
            Some(S3ServerSideEncryption::S3Managed),
            Some("AES256"),
            None,
        ),
        (
            Some(S3ServerSideEncryption::Kms { key_id: None }),
            Some("aws:kms"),
            None,
        ),
        (
            Some(S3ServerSideEncryption::Kms {
                key_id: Some(String::new()),
            }),
            Some("aws:kms"),
            None,
        ),
        (
            Some(S3ServerSideEncryption::Kms {
                key_id: Some("alias/envelopes".into()),
            }),
            Some("aws:kms"),
            Some("alias/envelopes"),
        ),
    ];
    for (sse, mode, key_id) in cases {
        let server = FakeS3::start(|_| Response::ok());
        let store = s3_store(
            &server,
            S3Options {
                server_side_encryption: sse.clone(),
                ..with_credentials()
            },
        );
        cyborgdb_kms::create_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
        push_index_kms(&store, "b", &aws_kms_blob(2)).unwrap();
        let puts = put_requests(&server);
        assert_eq!(puts.len(), 2, "{puts:?}");
        for put in puts {
            assert_eq!(put.header("x-amz-server-side-encryption"), mode, "{sse:?}");
            assert_eq!(
                put.header("x-amz-server-side-encryption-aws-kms-key-id"),
                key_id,
                "{sse:?}"
            );
        }
    }
}

#[test]
fn expected_bucket_owner_is_sent_on_every_s3_request() {
    let server = FakeS3::start(|request| {
        if is_list(request) {
            Response::list_page(&["ks/a.kms"], false, None)
        } else if request.method == "GET" {
            Response::error(404, "NoSuchKey", "none")
        } else {
            Response::ok()
        }
    });
    let store = s3_store(
        &server,
        S3Options {
            expected_bucket_owner: Some(OWNER.into()),
            ..with_credentials()
        },
    );
    push_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
    let missing = get_index_kms(&store, "a").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing:?}");
    assert_eq!(list_index_kms(&store).unwrap(), ["a"]);
    delete_index_kms(&store, "a").unwrap();
    let requests = server.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PUT", "GET", "GET", "DELETE"], "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.header("x-amz-expected-bucket-owner"),
            Some(OWNER),
            "{request:?}"
        );
    }
    // Without the option, no such header.
    let plain = FakeS3::start(|_| Response::ok());
    push_index_kms(&s3_store(&plain, with_credentials()), "a", &aws_kms_blob(1)).unwrap();
    assert_eq!(
        plain.requests()[0].header("x-amz-expected-bucket-owner"),
        None
    );
}

#[test]
fn a_bucket_of_another_owner_is_storage_access_denied() {
    // As S3 answers when the bucket's owner is not the expected one.
    let server = FakeS3::start(
        |request| match request.header("x-amz-expected-bucket-owner") {
            Some(OWNER) => Response::ok(),
            _ => Response::error(403, "AccessDenied", "Access Denied"),
        },
    );
    let store = s3_store(
        &server,
        S3Options {
            expected_bucket_owner: Some("210987654321".into()),
            ..with_credentials()
        },
    );
    let err = push_index_kms(&store, "a", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageAccessDenied, "{err:?}");
    assert!(err.message().contains("AccessDenied"), "{err:?}");
}

#[test]
fn bad_bucket_owner_and_sse_key_ids_are_invalid_arguments() {
    for owner in [
        "",
        "12345678901",
        "1234567890123",
        "12345678901a",
        "١٢٣٤٥٦٧٨٩٠١٢",
    ] {
        let err = StorageConfig::s3(
            "bucket",
            S3Options {
                expected_bucket_owner: Some(owner.into()),
                ..S3Options::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{owner}");
        assert_eq!(
            err.message(),
            format!("S3 expected_bucket_owner \"{owner}\" must be an AWS account id (12 digits)")
        );
    }
    for key_id in ["alias/a b".to_owned(), "k\n".to_owned(), "k".repeat(2049)] {
        let err = StorageConfig::s3(
            "bucket",
            S3Options {
                server_side_encryption: Some(S3ServerSideEncryption::Kms {
                    key_id: Some(key_id.clone()),
                }),
                ..S3Options::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message()
                .starts_with("S3 server_side_encryption KMS key id \"")
                && err
                    .message()
                    .ends_with("must be 1 to 2048 printable ASCII characters without spaces"),
            "{err:?}"
        );
    }
}

#[test]
fn default_credentials_with_an_endpoint_only_by_explicit_opt_in() {
    let server = FakeS3::start(|_| Response::ok());
    // The secure default: no credentials with an endpoint is refused.
    let err = StorageConfig::s3(
        "fake-bucket",
        S3Options {
            endpoint: Some(server.endpoint.clone()),
            ..S3Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.message(),
        "an S3 endpoint needs explicit credentials: the AWS credential chain is never sent to a \
         custom endpoint (set S3Options.credentials, or default_credentials_with_endpoint for an \
         AWS S3 VPC endpoint)"
    );
    // Opted in: signed by the default chain (AWS_ACCESS_KEY_ID=testing, from .cargo/config.toml).
    let store = s3_store(
        &server,
        S3Options {
            default_credentials_with_endpoint: true,
            ..S3Options::default()
        },
    );
    push_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
    assert_eq!(server.requests()[0].access_key_id(), Some("testing"));
    // Explicit credentials still win over the opt-in.
    let server = FakeS3::start(|_| Response::ok());
    let store = s3_store(
        &server,
        S3Options {
            default_credentials_with_endpoint: true,
            ..with_credentials()
        },
    );
    push_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
    assert_eq!(server.requests()[0].access_key_id(), Some("S3KEY"));
}
