//! Same-KEK re-wraps from one `aws-kms` key to another go through `kms:ReEncrypt`, so the KEK never
//! leaves KMS; everything else (other providers, another region, other credentials, a refused
//! ReEncrypt) is `Decrypt` / unwrap + `Encrypt` / wrap as before. Against moto, behind a
//! recording peer that forwards every request to moto and counts them by `X-Amz-Target`; the
//! refusals moto does not model come from the fault peer alone.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::fault_peer::{FaultPeer, Reply, Request};
use common::moto::{moto, unique};
use cyborgdb_kms::kms::registry::AssumeRole;
use cyborgdb_kms::{
    get_index_kms, push_index_kms, DriftStatus, ErrorKind, KekCacheOptions, KekResolver,
    KeyIdentity, KmsBlob, KmsClient, KmsClientOptions, LogLevel, Provider, Slot, StorageConfig,
};

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const REENCRYPT: &str = "TrentService.ReEncrypt";
const DECRYPT: &str = "TrentService.Decrypt";
const ENCRYPT: &str = "TrentService.Encrypt";
const GET_SECRET: &str = "secretsmanager.GetSecretValue";

/// Sends `request` to moto over a fresh connection (`Connection: close`) and returns moto's
/// answer as a reply: a transparent, recording hop in front of moto.
fn forward_to_moto(request: &Request) -> Reply {
    let address = moto().endpoint.trim_start_matches("http://").to_owned();
    let mut upstream = TcpStream::connect(&address).unwrap();
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (name, value) in &request.headers {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        request.body.len()
    ));
    upstream.write_all(head.as_bytes()).unwrap();
    upstream.write_all(&request.body).unwrap();
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("moto answered with a complete head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        let name = name.trim().to_ascii_lowercase();
        assert_ne!(name, "transfer-encoding", "moto sent a chunked answer");
        if matches!(name.as_str(), "content-type" | "x-amzn-errortype") {
            headers.push((name, value.trim().to_owned()));
        }
    }
    Reply::Raw {
        status,
        headers,
        body,
    }
}

/// A peer that forwards everything to moto and records it.
fn recording_moto() -> FaultPeer {
    FaultPeer::start(forward_to_moto)
}

fn slot(provider: Provider, key_id: &str, region: &str) -> Slot {
    Slot::new(provider, key_id, region)
}

fn resolver_at(endpoint: &str) -> KekResolver {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        ..KmsClientOptions::default()
    })
    .unwrap();
    KekResolver::new(client, KekCacheOptions::default()).unwrap()
}

/// KMS and Secrets Manager calls the peer saw, by target: (ReEncrypt, Decrypt, Encrypt,
/// GetSecretValue).
fn calls(peer: &FaultPeer) -> (usize, usize, usize, usize) {
    (
        peer.count_target(REENCRYPT),
        peer.count_target(DECRYPT),
        peer.count_target(ENCRYPT),
        peer.count_target(GET_SECRET),
    )
}

/// Calls seen since `before`.
fn since(peer: &FaultPeer, before: (usize, usize, usize, usize)) -> (usize, usize, usize, usize) {
    let now = calls(peer);
    (
        now.0 - before.0,
        now.1 - before.1,
        now.2 - before.2,
        now.3 - before.3,
    )
}

fn create_secret(region: &str) -> String {
    let name = unique("reencrypt/kek");
    common::moto::runtime()
        .block_on(
            moto()
                .secrets(region)
                .create_secret()
                .name(&name)
                .secret_binary(aws_smithy_types::Blob::new(vec![9u8; 32]))
                .send(),
        )
        .unwrap();
    name
}

/// A new KMS key created with `config`'s credentials (e.g. in a customer's account); its ARN.
fn create_key_as(config: &aws_config::SdkConfig) -> String {
    common::moto::runtime()
        .block_on(aws_sdk_kms::Client::new(config).create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned()
}

#[test]
fn an_aws_kms_to_aws_kms_rewrap_is_one_reencrypt_and_keeps_the_kek() {
    let peer = recording_moto();
    let r = resolver_at(peer.endpoint());
    let key_a = moto().create_kms_key(REGION);
    let key_b = moto().create_kms_key(REGION);
    r.client()
        .add_slot("a", slot(Provider::AwsKms, &key_a, REGION))
        .unwrap();
    r.client()
        .add_slot("b", slot(Provider::AwsKms, &key_b, REGION))
        .unwrap();
    let storage = StorageConfig::memory();
    let kek = r.create_index(&storage, "orders", Some("a"), None).unwrap();
    let old = get_index_kms(&storage, "orders").unwrap();

    let before = calls(&peer);
    let new = r.rewrap(&storage, "orders", "b").unwrap();
    assert_eq!(
        since(&peer, before),
        (1, 0, 0, 0),
        "one ReEncrypt, nothing else"
    );
    assert_eq!(
        (new.kms_name.as_str(), new.key_id.as_str(), new.version),
        ("b", key_b.as_str(), old.version + 1)
    );
    assert_ne!(new.wrapped_kek, old.wrapped_kek);
    assert_eq!(get_index_kms(&storage, "orders").unwrap(), new);

    // The request pinned the source key and bound both sides to the index.
    let request = peer
        .requests()
        .into_iter()
        .find(|r| r.target() == Some(REENCRYPT))
        .unwrap();
    let body = request.body_text();
    assert!(
        body.contains(&format!(r#""SourceKeyId":"{key_a}""#)),
        "{body}"
    );
    assert!(
        body.contains(&format!(r#""DestinationKeyId":"{key_b}""#)),
        "{body}"
    );
    assert!(body.contains(r#""SourceEncryptionContext":{"#), "{body}");
    assert!(
        body.contains(r#""DestinationEncryptionContext":{"#),
        "{body}"
    );
    assert_eq!(
        body.matches(r#""cyborgdb:index":"orders""#).count(),
        2,
        "{body}"
    );
    assert_eq!(body.matches(r#""cyborgdb:context":"#).count(), 2, "{body}");

    // Byte-compatible: the existing unwrap path (kms:Decrypt with KeyId pinned to key B) gives
    // the same KEK, in this resolver (its cache was invalidated) and in a fresh client that
    // knows key B only.
    assert_eq!(r.resolve(&storage, "orders").unwrap(), kek);
    let fresh = common::aws_kms_client(&moto().endpoint, "b", &key_b);
    assert_eq!(fresh.unwrap_kek("orders", &new).unwrap(), kek);
}

#[test]
fn drift_repair_after_a_key_rotation_uses_reencrypt() {
    let peer = recording_moto();
    let r = resolver_at(peer.endpoint());
    let old_key = moto().create_kms_key(REGION);
    r.client()
        .add_slot("byok", slot(Provider::AwsKms, &old_key, REGION))
        .unwrap();
    let storage = StorageConfig::memory();
    let keks: Vec<_> = ["one", "two"]
        .map(|index| r.create_index(&storage, index, Some("byok"), None).unwrap())
        .into();
    let new_key = moto().create_kms_key(REGION);
    let mut rotated = slot(Provider::AwsKms, &new_key, REGION);
    rotated.previous_keys.push(KeyIdentity {
        provider: Provider::AwsKms,
        key_id: old_key.clone(),
        region: REGION.into(),
    });
    r.client().add_slot("byok", rotated).unwrap();

    let before = calls(&peer);
    let report = r.check_drift(&storage, true).unwrap();
    assert_eq!(
        since(&peer, before),
        (2, 0, 0, 0),
        "one ReEncrypt per index"
    );
    for entry in &report {
        assert_eq!(entry.status, DriftStatus::Rewrapped, "{entry:?}");
    }
    for (index, kek) in ["one", "two"].iter().zip(&keks) {
        assert_eq!(get_index_kms(&storage, index).unwrap().key_id, new_key);
        assert_eq!(&r.resolve(&storage, index).unwrap(), kek);
    }
}

#[test]
fn an_untrusted_source_key_is_refused_before_any_kms_call() {
    let peer = recording_moto();
    let r = resolver_at(peer.endpoint());
    let trusted = moto().create_kms_key(REGION);
    let foreign = moto().create_kms_key(REGION);
    r.client()
        .add_slot("prod", slot(Provider::AwsKms, &trusted, REGION))
        .unwrap();
    r.client()
        .add_slot("other", slot(Provider::AwsKms, &trusted, REGION))
        .unwrap();
    // Stored data names a key the slot never trusted, wrapping a KEK of its writer's choosing.
    let planted = common::aws_kms_client(&moto().endpoint, "foreign", &foreign)
        .wrap_new_kek("orders", "foreign")
        .unwrap()
        .0;
    let storage = StorageConfig::memory();
    push_index_kms(
        &storage,
        "orders",
        &KmsBlob {
            kms_name: "prod".into(),
            ..planted.clone()
        },
    )
    .unwrap();
    for target in ["prod", "other"] {
        let err = r.rewrap(&storage, "orders", target).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
    }
    let report = r.check_drift(&storage, true).unwrap();
    assert_eq!(report[0].status, DriftStatus::Failed);
    assert_eq!(
        report[0].error.as_ref().unwrap().kind(),
        ErrorKind::UntrustedKey
    );
    assert_eq!(peer.request_count(), 0, "no KMS call of any kind");
    assert_eq!(get_index_kms(&storage, "orders").unwrap().version, 1);
}

#[test]
fn other_providers_regions_and_roles_fall_back_to_decrypt_and_encrypt() {
    let peer = recording_moto();
    let r = resolver_at(peer.endpoint());
    let key = moto().create_kms_key(REGION);
    let key_elsewhere = moto().create_kms_key(OTHER_REGION);
    let secret = create_secret(REGION);
    // A role whose credentials reach another account's key: ReEncrypt would be signed by one
    // principal only, so a change of role is two calls.
    let role_arn = "arn:aws:iam::111122223333:role/reencrypt-byok";
    let customer = moto().customer_config(REGION, role_arn);
    let customer_key = create_key_as(&customer);
    let mut byok = slot(Provider::AwsKms, &customer_key, REGION);
    byok.assume_role = Some(AssumeRole {
        role_arn: role_arn.into(),
        external_id: "reencrypt-external-id".into(),
        session_name: None,
    });
    let client = r.client();
    client
        .add_slot("kms", slot(Provider::AwsKms, &key, REGION))
        .unwrap();
    client
        .add_slot("sm", slot(Provider::Aws, &secret, REGION))
        .unwrap();
    client
        .add_slot("eu", slot(Provider::AwsKms, &key_elsewhere, OTHER_REGION))
        .unwrap();
    client.add_slot("byok", byok).unwrap();
    let storage = StorageConfig::memory();
    let kek = r.create_index(&storage, "idx", Some("kms"), None).unwrap();
    // (from, to, calls): aws-kms → aws, aws → aws-kms, aws-kms → another region and back,
    // aws-kms → another role and back.
    let steps = [
        ("kms", "sm", (0, 1, 0, 1)),
        ("sm", "kms", (0, 0, 1, 1)),
        ("kms", "eu", (0, 1, 1, 0)),
        ("eu", "kms", (0, 1, 1, 0)),
        ("kms", "byok", (0, 1, 1, 0)),
        ("byok", "kms", (0, 1, 1, 0)),
    ];
    for (from, to, expected) in steps {
        assert_eq!(get_index_kms(&storage, "idx").unwrap().kms_name, from);
        let before = calls(&peer);
        r.rewrap(&storage, "idx", to).unwrap();
        assert_eq!(since(&peer, before), expected, "{from} -> {to}");
        assert_eq!(r.resolve(&storage, "idx").unwrap(), kek, "{from} -> {to}");
    }
    // Same role on both sides: one call again.
    let mut byok_two = client.registry().require("byok").unwrap().clone();
    byok_two.key_id = create_key_as(&customer);
    client.add_slot("byok-two", byok_two).unwrap();
    r.rewrap(&storage, "idx", "byok").unwrap();
    let before = calls(&peer);
    r.rewrap(&storage, "idx", "byok-two").unwrap();
    assert_eq!(since(&peer, before), (1, 0, 0, 0), "same role: ReEncrypt");
    assert_eq!(r.resolve(&storage, "idx").unwrap(), kek);
}

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const NEW_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:123456789012:key/9999abcd-12ab-34cd-56ef-1234567890ab";

/// A resolver whose slot "kms" (key A, trusted as a previous key) now wraps with key B, at `peer`,
/// and a memory store holding an envelope of "idx" under key A.
fn rotated_at(peer: &FaultPeer) -> (KekResolver, StorageConfig, KmsBlob) {
    let r = resolver_at(peer.endpoint());
    let mut rotated = slot(Provider::AwsKms, NEW_KEY_ARN, REGION);
    rotated.previous_keys.push(KeyIdentity {
        provider: Provider::AwsKms,
        key_id: KEY_ARN.into(),
        region: REGION.into(),
    });
    r.client().add_slot("kms", rotated).unwrap();
    let storage = StorageConfig::memory();
    let old = KmsBlob {
        kms_name: "kms".into(),
        provider: "aws-kms".into(),
        key_id: KEY_ARN.into(),
        region: REGION.into(),
        wrapped_kek: b"under key A".to_vec(),
        version: 1,
        created_at: 1,
    };
    push_index_kms(&storage, "idx", &old).unwrap();
    (r, storage, old)
}

#[test]
fn reencrypt_access_denied_or_unsupported_falls_back_with_the_same_result() {
    // The KEK the peer hands out must never reach a log line (the scan aborts the binary).
    common::log_scan::watch(&[("fallback KEK", &[7u8; 32])]);
    for code in ["AccessDeniedException", "UnsupportedOperationException"] {
        let peer = FaultPeer::start(move |request| match request.target() {
            Some(REENCRYPT) => Reply::aws_error(400, code, "not for this caller"),
            Some(ENCRYPT) => Reply::kms_encrypt(NEW_KEY_ARN, b"under key B"),
            _ => Reply::kms_decrypt(KEY_ARN, &[7; 32]),
        });
        let (r, storage, _) = rotated_at(&peer);
        let new = r.rewrap(&storage, "idx", "kms").unwrap();
        assert_eq!(calls(&peer), (1, 1, 1, 0), "{code}");
        assert_eq!(new.wrapped_kek, b"under key B", "{code}");
        assert_eq!(new.key_id, NEW_KEY_ARN, "{code}");
        assert_eq!(get_index_kms(&storage, "idx").unwrap(), new, "{code}");
        let warning = format!(
            "{} cyborgdb_kms::kms re-wrapping the KEK of index \"idx\" to slot \"kms\" falls back to kms:Decrypt + kms:Encrypt",
            LogLevel::Warn.name()
        );
        let warned = common::log_scan::lines()
            .iter()
            .any(|line| line.starts_with(&warning) && line.contains(code));
        assert!(warned, "{code}: {:#?}", common::log_scan::lines());
    }
}

#[test]
fn other_reencrypt_failures_are_the_rewraps_error_and_change_nothing() {
    let cases = [
        ("DisabledException", ErrorKind::KmsKeyDisabled),
        ("NotFoundException", ErrorKind::KmsKeyNotFound),
        ("InvalidCiphertextException", ErrorKind::DecryptFailed),
        ("IncorrectKeyException", ErrorKind::DecryptFailed),
    ];
    for (code, kind) in cases {
        let peer = FaultPeer::start(move |request| match request.target() {
            Some(REENCRYPT) => Reply::aws_error(400, code, "refused"),
            _ => Reply::kms_decrypt(KEY_ARN, &[7; 32]),
        });
        let (r, storage, old) = rotated_at(&peer);
        let err = r.rewrap(&storage, "idx", "kms").unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err:?}");
        assert_eq!(
            err.message(),
            format!("index \"idx\": kms:ReEncrypt failed: {code} (HTTP 400): refused"),
        );
        assert_eq!(calls(&peer), (1, 0, 0, 0), "{code}: no fallback");
        assert_eq!(get_index_kms(&storage, "idx").unwrap(), old, "{code}");
    }
    // An answer without a ciphertext is a bad response, not a fallback.
    let peer = FaultPeer::start(|request| match request.target() {
        Some(REENCRYPT) => Reply::json(r#"{"KeyId":"k"}"#),
        _ => Reply::kms_decrypt(KEY_ARN, &[7; 32]),
    });
    let (r, storage, old) = rotated_at(&peer);
    let err = r.rewrap(&storage, "idx", "kms").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsBadResponse, "{err:?}");
    assert_eq!(
        err.message(),
        "index \"idx\": kms:ReEncrypt returned no CiphertextBlob"
    );
    assert_eq!(calls(&peer), (1, 0, 0, 0));
    assert_eq!(get_index_kms(&storage, "idx").unwrap(), old);
}
