//! The KMS client against our own fault-injecting peer (`tests/common/fault_peer.rs`), for what
//! moto does not model: disabled or pending-deletion keys, throttling, server errors, malformed
//! answers, slow and dead endpoints, and the exact wire contents of BYOK and KMS calls. The real
//! AWS SDK runs against it; every error asserts its exact kind. The library's log callback runs
//! at its most verbose level throughout, and no line it receives may hold a KEK the peer returns,
//! the ExternalId or the S3 secret key ([`watch_logs`]).

mod common;

use std::time::{Duration, Instant};

use common::fake_s3::{FakeS3, Response};
use common::fault_peer::{refused_endpoint, FaultPeer, Reply, Request};
use common::log_scan;
use cyborgdb_kms::kms::registry::AssumeRole;
use cyborgdb_kms::{
    get_index_kms, push_index_kms, AwsTimeouts, ErrorKind, KmsBlob, KmsClient, KmsClientOptions,
    Provider, S3Credentials, S3Options, Slot, StorageConfig,
};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The BYOK customer's key, in the customer's account (reached through the role).
const CUSTOMER_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/0badc0de-12ab-34cd-56ef-1234567890ab";

/// Scans every log line of this binary for the secrets its scenarios handle (see
/// `common::log_scan`): the KEKs the peer's Decrypt answers carry, the BYOK ExternalId, the S3
/// secret key. Called by every client constructor here.
fn watch_logs() {
    log_scan::watch(&[
        ("returned KEK 4", &[4; 32]),
        ("returned KEK 5", &[5; 32]),
        ("returned KEK 6", &[6; 32]),
        ("returned KEK 8", &[8; 32]),
        ("returned KEK 9", &[9; 32]),
        ("ExternalId", b"ext-6f1c9a1e"),
        ("S3 secret key", b"s3-only-secret"),
    ]);
}

fn client_for(endpoint: &str, timeouts: AwsTimeouts) -> KmsClient {
    watch_logs();
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        timeouts,
        ..KmsClientOptions::default()
    })
    .unwrap();
    for (name, provider, key_id) in [
        ("kms", Provider::AwsKms, KEY_ARN),
        ("sm", Provider::Aws, "customers/acme/kek"),
    ] {
        client
            .add_slot(name, Slot::new(provider, key_id, "us-east-1"))
            .unwrap();
    }
    client
}

/// Short attempts and backoff, an operation bound that retries with backoff cannot reach.
fn fast_timeouts(max_attempts: u32) -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(300),
        operation: Duration::from_secs(10),
        max_attempts: Some(max_attempts),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

fn kms_blob(wrapped: &[u8]) -> KmsBlob {
    KmsBlob {
        kms_name: "kms".into(),
        provider: "aws-kms".into(),
        key_id: KEY_ARN.into(),
        region: "us-east-1".into(),
        wrapped_kek: wrapped.to_vec(),
        version: 1,
        created_at: 1,
    }
}

/// Unwraps through a peer answering every request with `reply`; returns the error and the peer.
fn unwrap_error(reply: Reply, max_attempts: u32) -> (ErrorKind, String, FaultPeer) {
    let peer = FaultPeer::start(move |_| reply.clone());
    let client = client_for(peer.endpoint(), fast_timeouts(max_attempts));
    let err = client
        .unwrap_kek("orders", &kms_blob(b"wrapped"))
        .unwrap_err();
    (err.kind(), err.message().to_owned(), peer)
}

#[test]
fn disabled_or_pending_deletion_keys_are_key_disabled() {
    for code in ["DisabledException", "KMSInvalidStateException"] {
        let (kind, message, _) = unwrap_error(Reply::aws_error(400, code, "key is not usable"), 1);
        assert_eq!(kind, ErrorKind::KmsKeyDisabled, "{message}");
        assert_eq!(
            message,
            format!("index \"orders\": kms:Decrypt failed: {code} (HTTP 400): key is not usable")
        );
    }
}

#[test]
fn throttling_is_retried_up_to_max_attempts_then_reported() {
    let (kind, message, peer) = unwrap_error(
        Reply::aws_error(400, "ThrottlingException", "Rate exceeded"),
        2,
    );
    assert_eq!(kind, ErrorKind::KmsThrottled, "{message}");
    assert!(
        message.contains("kms:Decrypt failed: ThrottlingException"),
        "{message}"
    );
    assert_eq!(peer.count_target("TrentService.Decrypt"), 2);
}

#[test]
fn throttling_then_success_succeeds_within_the_attempts() {
    let throttled = Reply::aws_error(400, "ThrottlingException", "Rate exceeded");
    let peer = FaultPeer::sequence(
        vec![throttled.clone(), throttled],
        Reply::kms_decrypt(KEY_ARN, &[9; 32]),
    );
    let client = client_for(peer.endpoint(), fast_timeouts(3));
    let kek = client.unwrap_kek("orders", &kms_blob(b"w")).unwrap();
    assert_eq!(kek.as_bytes(), &[9; 32]);
    assert_eq!(peer.count_target("TrentService.Decrypt"), 3);
}

#[test]
fn access_denied_names_the_operation() {
    let (kind, message, _) = unwrap_error(
        Reply::aws_error(400, "AccessDeniedException", "no kms:Decrypt"),
        1,
    );
    assert_eq!(kind, ErrorKind::KmsAccessDenied);
    assert!(
        message.contains("kms:Decrypt failed: AccessDeniedException"),
        "{message}"
    );

    let peer = FaultPeer::start(|_| Reply::aws_error(400, "AccessDeniedException", "no access"));
    let client = client_for(peer.endpoint(), fast_timeouts(1));
    let err = client.wrap_new_kek("orders", "sm").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsAccessDenied);
    assert!(
        err.message()
            .contains("secretsmanager:GetSecretValue failed: AccessDeniedException"),
        "{err:?}"
    );
    let err = client.wrap_new_kek("orders", "kms").unwrap_err();
    assert!(err
        .message()
        .contains("kms:Encrypt failed: AccessDeniedException"));
}

#[test]
fn a_secret_marked_for_deletion_is_key_disabled() {
    let reply = Reply::aws_error(
        400,
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    );
    let peer = FaultPeer::start(move |_| reply.clone());
    let client = client_for(peer.endpoint(), fast_timeouts(1));
    let err = client.wrap_new_kek("orders", "sm").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsKeyDisabled, "{err:?}");
}

#[test]
fn server_errors_are_retried_then_unavailable() {
    let (kind, message, peer) =
        unwrap_error(Reply::aws_error(500, "KMSInternalException", "internal"), 3);
    assert_eq!(kind, ErrorKind::KmsUnavailable, "{message}");
    assert_eq!(peer.count_target("TrentService.Decrypt"), 3);
}

#[test]
fn malformed_answers_are_bad_responses() {
    for body in ["{not json", r#"{"Plaintext":12}"#] {
        let (kind, message, _) = unwrap_error(Reply::json(body), 1);
        assert_eq!(kind, ErrorKind::KmsBadResponse, "{body}: {message}");
    }
    let (kind, message, _) = unwrap_error(
        Reply::Body {
            status: 400,
            body: b"<html>proxy error</html>".to_vec(),
            content_type: "text/html".into(),
        },
        1,
    );
    assert_eq!(kind, ErrorKind::KmsBadResponse, "{message}");
}

#[test]
fn decrypt_must_return_exactly_32_bytes() {
    for len in [0usize, 16, 31, 33, 64] {
        let (kind, message, _) = unwrap_error(Reply::kms_decrypt(KEY_ARN, &vec![1; len]), 1);
        assert_eq!(kind, ErrorKind::DecryptFailed, "{len}: {message}");
        assert!(
            message.contains(&format!("returned {len} bytes of plaintext; a KEK is 32")),
            "{message}"
        );
    }
    let (kind, _, _) = unwrap_error(Reply::json("{}"), 1);
    assert_eq!(kind, ErrorKind::DecryptFailed);
}

#[test]
fn decrypt_pins_the_key_and_sends_the_index_context() {
    let peer = FaultPeer::start(|_| Reply::kms_decrypt(KEY_ARN, &[4; 32]));
    let client = client_for(peer.endpoint(), fast_timeouts(1));
    client.unwrap_kek("orders", &kms_blob(b"ct")).unwrap();
    let request = &peer.requests()[0];
    assert_eq!(request.target(), Some("TrentService.Decrypt"));
    let body = request.body_text();
    assert!(body.contains(&format!(r#""KeyId":"{KEY_ARN}""#)), "{body}");
    assert!(
        body.contains(
            r#""EncryptionContext":{"cyborgdb:context":"kek-v1","cyborgdb:index":"orders"}"#
        ) || body.contains(
            r#""EncryptionContext":{"cyborgdb:index":"orders","cyborgdb:context":"kek-v1"}"#
        ),
        "{body}"
    );
    // Environment credentials (dummy, from .cargo/config.toml) sign slots without a role.
    assert_eq!(request.access_key_id(), Some("testing"));
}

#[test]
fn a_hanging_endpoint_fails_within_the_configured_timeout() {
    let peer = FaultPeer::start(|_| Reply::Hang);
    let timeouts = AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(250),
        operation: Duration::from_millis(800),
        max_attempts: Some(3),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    };
    let client = client_for(peer.endpoint(), timeouts.clone());
    let started = Instant::now();
    let err = client.unwrap_kek("orders", &kms_blob(b"w")).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{err:?}");
    assert!(err.message().contains("timed out"), "{err:?}");
    // Bounded by the operation timeout (plus scheduling slack), never by the peer.
    assert!(
        elapsed < timeouts.operation + Duration::from_secs(2),
        "took {elapsed:?}"
    );
    assert!(peer.count_target("TrentService.Decrypt") >= 1);
}

#[test]
fn a_refused_or_closing_endpoint_is_unavailable() {
    let client = client_for(&refused_endpoint(), fast_timeouts(2));
    let err = client.unwrap_kek("orders", &kms_blob(b"w")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{err:?}");
    assert!(err.message().contains("unreachable"), "{err:?}");
    let (kind, message, _) = unwrap_error(Reply::Close, 2);
    assert_eq!(kind, ErrorKind::KmsUnavailable, "{message}");
}

fn is_sts(request: &Request) -> bool {
    request.query_action().as_deref() == Some("AssumeRole")
}

fn byok_client(peer: &FaultPeer, session_name: Option<&str>) -> KmsClient {
    let client = client_for(peer.endpoint(), fast_timeouts(1));
    client
        .add_slot(
            "acme",
            Slot {
                assume_role: Some(AssumeRole {
                    role_arn: "arn:aws:iam::111122223333:role/cyborgdb-byok".into(),
                    external_id: "ext-6f1c9a1e".into(),
                    session_name: session_name.map(str::to_owned),
                }),
                ..Slot::new(Provider::AwsKms, CUSTOMER_KEY_ARN, "us-east-1")
            },
        )
        .unwrap();
    client
}

fn acme_blob() -> KmsBlob {
    KmsBlob {
        kms_name: "acme".into(),
        key_id: CUSTOMER_KEY_ARN.into(),
        ..kms_blob(b"w")
    }
}

#[test]
fn byok_sends_external_id_and_session_name_and_signs_with_the_role() {
    let peer = FaultPeer::start(|request| {
        if is_sts(request) {
            Reply::assume_role(
                "ASIAROLEKEY",
                "role-secret",
                "role-token",
                "2099-01-01T00:00:00Z",
            )
        } else {
            Reply::kms_decrypt(CUSTOMER_KEY_ARN, &[5; 32])
        }
    });
    let client = byok_client(&peer, Some("cyborgdb-acme"));
    for _ in 0..5 {
        assert_eq!(
            client
                .unwrap_kek("orders", &acme_blob())
                .unwrap()
                .as_bytes(),
            &[5; 32]
        );
    }
    // One AssumeRole for five unwraps: the role's credentials are cached.
    assert_eq!(peer.count_action("AssumeRole"), 1);
    let sts = peer.requests().into_iter().find(is_sts).unwrap();
    assert_eq!(
        sts.form_param("ExternalId").as_deref(),
        Some("ext-6f1c9a1e")
    );
    assert_eq!(
        sts.form_param("RoleSessionName").as_deref(),
        Some("cyborgdb-acme")
    );
    assert_eq!(
        sts.form_param("RoleArn").as_deref(),
        Some("arn:aws:iam::111122223333:role/cyborgdb-byok")
    );
    assert_eq!(sts.access_key_id(), Some("testing"));
    let decrypts: Vec<_> = peer
        .requests()
        .into_iter()
        .filter(|r| r.target() == Some("TrentService.Decrypt"))
        .collect();
    assert_eq!(decrypts.len(), 5);
    assert!(decrypts
        .iter()
        .all(|r| r.access_key_id() == Some("ASIAROLEKEY")));
}

#[test]
fn byok_uses_the_default_session_name_and_refreshes_credentials_before_they_expire() {
    let peer = FaultPeer::start(|request| {
        if is_sts(request) {
            // Already inside the SDK's refresh window: every use must fetch new credentials.
            let soon = std::time::SystemTime::now() + Duration::from_secs(1);
            let soon = aws_smithy_types::DateTime::from(soon)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap();
            Reply::assume_role("ASIASHORTLIVED", "role-secret", "role-token", &soon)
        } else {
            Reply::kms_decrypt(CUSTOMER_KEY_ARN, &[6; 32])
        }
    });
    let client = byok_client(&peer, None);
    for _ in 0..3 {
        client.unwrap_kek("orders", &acme_blob()).unwrap();
    }
    assert_eq!(peer.count_action("AssumeRole"), 3);
    let sts = peer.requests().into_iter().find(is_sts).unwrap();
    assert_eq!(
        sts.form_param("RoleSessionName").as_deref(),
        Some("cyborgdb-kms")
    );
}

#[test]
fn a_refused_assume_role_is_access_denied_on_sts() {
    let peer = FaultPeer::start(|request| {
        if is_sts(request) {
            Reply::query_error(
                403,
                "AccessDenied",
                "not authorized to perform sts:AssumeRole",
            )
        } else {
            Reply::kms_decrypt(CUSTOMER_KEY_ARN, &[6; 32])
        }
    });
    let client = byok_client(&peer, None);
    let err = client.unwrap_kek("orders", &acme_blob()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsAccessDenied, "{err:?}");
    assert!(
        err.message()
            .starts_with("index \"orders\": sts:AssumeRole failed: AccessDenied (HTTP 403)"),
        "{err:?}"
    );
    assert_eq!(peer.count_target("TrentService.Decrypt"), 0);
}

#[test]
fn s3_storage_keys_and_kms_credentials_are_kept_apart() {
    // One process using an S3 store with its own keys and a KMS client on the AWS chain (the
    // dummy environment keys): each request is signed with its own side's key only.
    let kms = FaultPeer::start(|_| Reply::kms_decrypt(KEY_ARN, &[8; 32]));
    let stored = std::sync::Mutex::new(Vec::new());
    let s3 = FakeS3::start(move |request| {
        let mut stored = stored.lock().unwrap();
        if request.method == "PUT" {
            *stored = request.body.clone();
        }
        Response::object(&stored)
    });
    let store = StorageConfig::s3(
        "envelopes",
        S3Options {
            region: Some("us-east-1".into()),
            endpoint: Some(s3.endpoint.clone()),
            credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret")),
            ..S3Options::default()
        },
    )
    .unwrap();
    let client = client_for(kms.endpoint(), fast_timeouts(1));
    for _ in 0..3 {
        push_index_kms(&store, "orders", &kms_blob(b"wrapped")).unwrap();
        let blob = get_index_kms(&store, "orders").unwrap();
        client.unwrap_kek("orders", &blob).unwrap();
    }
    let kms_keys: Vec<_> = kms
        .requests()
        .iter()
        .map(|r| r.access_key_id().map(str::to_owned))
        .collect();
    let s3_keys: Vec<_> = s3
        .requests()
        .iter()
        .map(|r| r.access_key_id().map(str::to_owned))
        .collect();
    assert_eq!(kms_keys, vec![Some("testing".to_owned()); 3]);
    assert_eq!(s3_keys, vec![Some("S3ONLYACCESSKEY".to_owned()); 6]);
}
