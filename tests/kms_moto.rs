//! The KMS client against moto server (a real AWS API emulator on 127.0.0.1): round trips for
//! every provider and key-id form, the index binding, BYOK through sts:AssumeRole, and the error
//! paths moto models (deleted or wrong-size secrets, missing keys, unknown slots).

mod common;

use common::moto::{moto, unique};
use cyborgdb_kms::kms::registry::AssumeRole;
use cyborgdb_kms::{
    ErrorKind, Kek, KeyIdentity, KmsBlob, KmsClient, KmsClientOptions, Provider, Registry, Slot,
};

const REGION: &str = "us-east-1";

fn client_without_slots() -> KmsClient {
    client()
}

fn client() -> KmsClient {
    KmsClient::new(KmsClientOptions {
        endpoint_url: Some(moto().endpoint.clone()),
        ..KmsClientOptions::default()
    })
    .unwrap()
}

fn slot(provider: Provider, key_id: &str, region: &str) -> Slot {
    Slot::new(provider, key_id, region)
}

fn kind_of<T: std::fmt::Debug>(result: cyborgdb_kms::Result<T>) -> (ErrorKind, String) {
    let err = result.unwrap_err();
    (err.kind(), err.message().to_owned())
}

#[test]
fn aws_kms_round_trip_with_every_key_id_form() {
    let moto = moto();
    let key_arn = moto.create_kms_key(REGION);
    let key_id = key_arn.rsplit('/').next().unwrap().to_owned();
    let alias = moto.create_alias(REGION, &unique("idx-key"), &key_arn);
    let alias_arn = format!("arn:aws:kms:{REGION}:123456789012:{alias}");
    let client = client();
    for (name, key) in [
        ("by-arn", &key_arn),
        ("by-id", &key_id),
        ("by-alias", &alias),
        ("by-alias-arn", &alias_arn),
    ] {
        client
            .add_slot(name, slot(Provider::AwsKms, key, REGION))
            .unwrap();
        let (blob, kek) = client.wrap_new_kek("orders", name).unwrap();
        assert_eq!(blob.kms_name, name);
        assert_eq!(blob.provider, "aws-kms");
        assert_eq!(&blob.key_id, key);
        assert_eq!(blob.region, REGION);
        assert_eq!(blob.version, 1);
        assert!(blob.created_at > 1_700_000_000);
        assert!(!blob.wrapped_kek.is_empty());
        assert_eq!(client.unwrap_kek("orders", &blob).unwrap(), kek, "{name}");
    }
}

#[test]
fn aws_secrets_manager_round_trip_binary_and_base64_string() {
    let moto = moto();
    let binary = unique("kek/binary");
    moto.create_binary_secret(REGION, &binary, &[0x42; 32]);
    let text = unique("kek/text");
    moto.create_string_secret(
        REGION,
        &text,
        "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
    );
    let client = client();
    client
        .add_slot("bin", slot(Provider::Aws, &binary, REGION))
        .unwrap();
    client
        .add_slot("txt", slot(Provider::Aws, &text, REGION))
        .unwrap();
    let (blob, kek) = client.wrap_new_kek("orders", "bin").unwrap();
    assert_eq!(blob.provider, "aws");
    assert_eq!(blob.wrapped_kek.len(), cyborgdb_kms::kms::WRAPPED_LEN_V1);
    assert_eq!(blob.wrapped_kek[0], cyborgdb_kms::kms::WRAPPED_FORMAT_V1);
    assert_eq!(client.unwrap_kek("orders", &blob).unwrap(), kek);
    // The base64 SecretString holds the same 32 bytes (0x42), so it opens the same envelope.
    let same_key = KmsBlob {
        kms_name: "txt".into(),
        key_id: text.clone(),
        ..blob.clone()
    };
    assert_eq!(client.unwrap_kek("orders", &same_key).unwrap(), kek);
}

#[test]
fn an_envelope_copied_onto_another_index_fails_to_unwrap() {
    let moto = moto();
    let key = moto.create_kms_key(REGION);
    let secret = unique("kek/bind");
    moto.create_binary_secret(REGION, &secret, &[7; 32]);
    let client = client();
    client
        .add_slot("kms", slot(Provider::AwsKms, &key, REGION))
        .unwrap();
    client
        .add_slot("sm", slot(Provider::Aws, &secret, REGION))
        .unwrap();
    for slot_name in ["kms", "sm"] {
        let (blob, _) = client.wrap_new_kek("tenant-a", slot_name).unwrap();
        let (kind, message) = kind_of(client.unwrap_kek("tenant-b", &blob));
        assert_eq!(kind, ErrorKind::DecryptFailed, "{slot_name}: {message}");
        assert!(message.starts_with("index \"tenant-b\""), "{message}");
        // A damaged wrapped KEK is rejected the same way.
        let mut damaged = blob.clone();
        let last = damaged.wrapped_kek.len() - 1;
        damaged.wrapped_kek[last] ^= 1;
        assert_eq!(
            kind_of(client.unwrap_kek("tenant-a", &damaged)).0,
            ErrorKind::DecryptFailed
        );
    }
}

#[test]
fn after_a_rotation_the_old_key_unwraps_only_once_the_slot_trusts_it() {
    let moto = moto();
    let old_key = moto.create_kms_key(REGION);
    let new_key = moto.create_kms_key(REGION);
    let client = client();
    client
        .add_slot("rotating", slot(Provider::AwsKms, &old_key, REGION))
        .unwrap();
    let (blob, kek) = client.wrap_new_kek("idx", "rotating").unwrap();
    client
        .add_slot("rotating", slot(Provider::AwsKms, &new_key, REGION))
        .unwrap();
    // The envelope's recorded key is no longer the slot's: refused, naming the one YAML line
    // that would trust it, until the operator adds it.
    let (kind, message) = kind_of(client.unwrap_kek("idx", &blob));
    assert_eq!(kind, ErrorKind::UntrustedKey, "{message}");
    let line = format!(
        "previous_keys: [{{provider: aws-kms, key_id: \"{old_key}\", region: \"{REGION}\"}}]"
    );
    assert!(message.ends_with(&line), "{message}");
    client
        .add_previous_key(
            "rotating",
            KeyIdentity {
                provider: Provider::AwsKms,
                key_id: old_key.clone(),
                region: REGION.into(),
            },
        )
        .unwrap();
    assert_eq!(client.unwrap_kek("idx", &blob).unwrap(), kek);
    // Re-wrapping the same KEK through the changed slot records the new snapshot.
    let rewrapped = client.wrap_kek("idx", "rotating", &kek).unwrap();
    assert_eq!(rewrapped.key_id, new_key);
    assert_eq!(client.unwrap_kek("idx", &rewrapped).unwrap(), kek);
}

#[test]
fn keys_in_another_region_are_reached_in_that_region() {
    let moto = moto();
    let key = moto.create_kms_key("eu-west-1");
    let client = client();
    client
        .add_slot("eu", slot(Provider::AwsKms, &key, "eu-west-1"))
        .unwrap();
    let (blob, kek) = client.wrap_new_kek("idx", "eu").unwrap();
    assert_eq!(client.unwrap_kek("idx", &blob).unwrap(), kek);
    // An envelope that records another region is not the slot's key: refused before any call.
    let wrong_region = KmsBlob {
        region: REGION.into(),
        ..blob.clone()
    };
    let (kind, message) = kind_of(client.unwrap_kek("idx", &wrong_region));
    assert_eq!(kind, ErrorKind::UntrustedKey, "{message}");
    // Trusted by the operator, the same key id looked up in the wrong region does not exist.
    client
        .add_previous_key("eu", KeyIdentity::of_envelope(&wrong_region).unwrap())
        .unwrap();
    let (kind, message) = kind_of(client.unwrap_kek("idx", &wrong_region));
    assert_eq!(kind, ErrorKind::KmsKeyNotFound, "{message}");
    assert!(
        message.contains("kms:Decrypt failed: NotFoundException"),
        "{message}"
    );
}

#[test]
fn a_deleted_secret_fails_with_resource_not_found() {
    let moto = moto();
    let secret = unique("kek/revoked");
    moto.create_binary_secret(REGION, &secret, &[9; 32]);
    let client = client();
    client
        .add_slot("s", slot(Provider::Aws, &secret, REGION))
        .unwrap();
    let (blob, kek) = client.wrap_new_kek("idx", "s").unwrap();
    assert_eq!(client.unwrap_kek("idx", &blob).unwrap(), kek);
    moto.delete_secret(REGION, &secret);
    let (kind, message) = kind_of(client.unwrap_kek("idx", &blob));
    assert_eq!(kind, ErrorKind::KmsKeyNotFound, "{message}");
    assert!(
        message.contains("secretsmanager:GetSecretValue failed: ResourceNotFoundException"),
        "{message}"
    );
}

#[test]
fn a_wrong_size_secret_is_rejected_with_the_documented_message() {
    let moto = moto();
    let short = unique("kek/short");
    moto.create_binary_secret(REGION, &short, &[1; 16]);
    let text = unique("kek/not-base64");
    moto.create_string_secret(REGION, &text, "this is a password, not a key");
    let client = client();
    client
        .add_slot("short", slot(Provider::Aws, &short, REGION))
        .unwrap();
    client
        .add_slot("text", slot(Provider::Aws, &text, REGION))
        .unwrap();
    for name in ["short", "text"] {
        let (kind, message) = kind_of(client.wrap_new_kek("idx", name));
        assert_eq!(kind, ErrorKind::WrapKeySize, "{message}");
        assert!(message.contains("Wrap key must be 32 bytes"), "{message}");
        assert!(message.starts_with("index \"idx\": "), "{message}");
    }
}

#[test]
fn a_missing_kms_key_or_secret_is_key_not_found() {
    let client = client();
    client
        .add_slot(
            "nokey",
            slot(Provider::AwsKms, "alias/does-not-exist", REGION),
        )
        .unwrap();
    client
        .add_slot("nosecret", slot(Provider::Aws, "no/such/secret", REGION))
        .unwrap();
    let (kind, message) = kind_of(client.wrap_new_kek("idx", "nokey"));
    assert_eq!(kind, ErrorKind::KmsKeyNotFound, "{message}");
    assert!(
        message.contains("kms:Encrypt failed: NotFoundException"),
        "{message}"
    );
    let (kind, message) = kind_of(client.wrap_new_kek("idx", "nosecret"));
    assert_eq!(kind, ErrorKind::KmsKeyNotFound, "{message}");
}

#[test]
fn byok_reaches_keys_in_the_customer_account_through_assume_role() {
    let moto = moto();
    let role_arn = "arn:aws:iam::111122223333:role/cyborgdb-byok";
    // The customer creates the key and the secret in their own account (111122223333).
    let customer = moto.customer_config(REGION, role_arn);
    let key = common::moto::runtime()
        .block_on(aws_sdk_kms::Client::new(&customer).create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    assert!(key.contains(":111122223333:"), "{key}");
    let secret = unique("customers/acme/kek");
    common::moto::runtime()
        .block_on(
            aws_sdk_secretsmanager::Client::new(&customer)
                .create_secret()
                .name(&secret)
                .secret_binary(aws_smithy_types::Blob::new(vec![3u8; 32]))
                .send(),
        )
        .unwrap();
    let role = AssumeRole {
        role_arn: role_arn.into(),
        external_id: "6f1c9a1e-operator-generated".into(),
        session_name: Some("cyborgdb-acme".into()),
    };
    let client = client();
    for (name, provider, key_id) in [
        ("acme-kms", Provider::AwsKms, key.as_str()),
        ("acme-sm", Provider::Aws, secret.as_str()),
    ] {
        let byok = Slot {
            assume_role: Some(role.clone()),
            ..slot(provider, key_id, REGION)
        };
        client.add_slot(name, byok).unwrap();
        let (blob, kek) = client.wrap_new_kek("tenant", name).unwrap();
        assert_eq!(client.unwrap_kek("tenant", &blob).unwrap(), kek);
        // A second slot reaching the same key without the role is refused: an envelope could
        // otherwise switch its credentials by naming that slot.
        let direct = format!("{name}-direct");
        let (kind, message) = kind_of(client.add_slot(&direct, slot(provider, key_id, REGION)));
        assert_eq!(kind, ErrorKind::InvalidConfig, "{name}: {message}");
        assert!(
            message.contains("reach it with different roles"),
            "{message}"
        );
        // And without the role, the operator's own credentials cannot reach the customer's key.
        let operator_only = client_without_slots();
        operator_only
            .add_slot(&direct, slot(provider, key_id, REGION))
            .unwrap();
        let orphaned = KmsBlob {
            kms_name: direct,
            ..blob
        };
        let (kind, message) = kind_of(operator_only.unwrap_kek("tenant", &orphaned));
        assert_eq!(kind, ErrorKind::KmsKeyNotFound, "{name}: {message}");
    }
}

#[test]
fn unknown_slots_none_envelopes_and_invalid_envelopes_are_clear_errors() {
    let client = client();
    let (kind, message) = kind_of(client.wrap_new_kek("idx", "missing"));
    assert_eq!(kind, ErrorKind::UnknownSlot);
    assert_eq!(
        message,
        "index \"idx\": KMS slot \"missing\" is not in the registry (slots: [])"
    );
    let none = KmsBlob {
        provider: "none".into(),
        ..KmsBlob::default()
    };
    let (kind, message) = kind_of(client.unwrap_kek("idx", &none));
    assert_eq!(kind, ErrorKind::KekNotWrapped);
    assert!(
        message.contains("the caller supplies the index's KEK"),
        "{message}"
    );
    let unnamed = KmsBlob {
        provider: "aws-kms".into(),
        ..KmsBlob::default()
    };
    assert_eq!(
        kind_of(client.unwrap_kek("idx", &unnamed)).0,
        ErrorKind::InvalidArgument
    );
    let orphan = KmsBlob {
        kms_name: "gone".into(),
        provider: "aws-kms".into(),
        key_id: "k".into(),
        region: REGION.into(),
        wrapped_kek: vec![1; 10],
        version: 1,
        created_at: 1,
    };
    assert_eq!(
        kind_of(client.unwrap_kek("idx", &orphan)).0,
        ErrorKind::UnknownSlot
    );
    assert_eq!(
        kind_of(client.unwrap_kek("", &orphan)).0,
        ErrorKind::InvalidArgument
    );
}

#[test]
fn one_client_serves_many_threads_and_calls_from_inside_a_tokio_runtime() {
    let moto = moto();
    let key = moto.create_kms_key(REGION);
    let client = client();
    client
        .add_slot("k", slot(Provider::AwsKms, &key, REGION))
        .unwrap();
    let (blob, kek) = client.wrap_new_kek("shared", "k").unwrap();
    let unwrapped: Vec<Kek> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| client.unwrap_kek("shared", &blob).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(unwrapped.iter().all(|k| *k == kek));
    // A caller that is itself async (inside a runtime) must not hit "runtime within a runtime".
    let callers = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = callers.block_on(async { client.unwrap_kek("shared", &blob) });
    assert_eq!(inside.unwrap(), kek);
}

#[test]
fn local_provider_round_trip_from_file_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, [5u8; 32]).unwrap();
    let short_file = dir.path().join("short.key");
    std::fs::write(&short_file, [5u8; 31]).unwrap();
    let client = KmsClient::new(KmsClientOptions {
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap();
    let local = |key_id: String| Slot::new(Provider::Local, key_id, String::new());
    client
        .add_slot("dev", local(format!("file:{}", key_file.display())))
        .unwrap();
    client
        .add_slot("short", local(format!("file:{}", short_file.display())))
        .unwrap();
    client
        .add_slot("missing", local("file:/nonexistent/master.key".into()))
        .unwrap();
    let (blob, kek) = client.wrap_new_kek("idx", "dev").unwrap();
    assert_eq!(blob.provider, "local");
    assert_eq!(blob.region, "");
    assert_eq!(client.unwrap_kek("idx", &blob).unwrap(), kek);
    assert_eq!(
        kind_of(client.unwrap_kek("other", &blob)).0,
        ErrorKind::DecryptFailed
    );
    let (kind, message) = kind_of(client.wrap_new_kek("idx", "short"));
    assert_eq!(kind, ErrorKind::WrapKeySize);
    assert!(message.contains("Wrap key must be 32 bytes"));
    assert_eq!(
        kind_of(client.wrap_new_kek("idx", "missing")).0,
        ErrorKind::KmsKeyNotFound
    );
}

#[test]
fn registry_yaml_loads_into_the_client_and_a_bad_load_keeps_the_old_registry() {
    let moto = moto();
    let key = moto.create_kms_key(REGION);
    let client = client();
    let yaml = format!(
        "kms:\n  registry:\n    vendor-default:\n      provider: aws-kms\n      key_id: {key}\n      region: {REGION}\n"
    );
    assert_eq!(client.load_registry_yaml(&yaml).unwrap(), 1);
    let (blob, kek) = client.wrap_new_kek("idx", "vendor-default").unwrap();
    let (kind, _) = kind_of(client.load_registry_yaml("kms: {registry: {x: {provider: aws}}}"));
    assert_eq!(kind, ErrorKind::InvalidConfig);
    assert_eq!(client.unwrap_kek("idx", &blob).unwrap(), kek);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cyborgdb.yaml");
    std::fs::write(&file, &yaml).unwrap();
    assert_eq!(client.load_registry_file(&file).unwrap(), 1);
    let (kind, message) = kind_of(client.load_registry_file(dir.path().join("absent.yaml")));
    assert_eq!(kind, ErrorKind::InvalidConfig);
    assert!(
        message.starts_with("cannot read KMS registry file"),
        "{message}"
    );
    assert_eq!(
        Registry::clone(&client.registry()).summary(),
        "KMS registry loaded (1 entries: [vendor-default])"
    );
}

#[test]
fn invalid_client_options_are_rejected() {
    for url in ["127.0.0.1:4566", "ftp://x", "http://a b"] {
        let err = KmsClient::new(KmsClientOptions {
            endpoint_url: Some(url.into()),
            ..KmsClientOptions::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{url}");
    }
    // User info may hold a password: it never reaches the message.
    let err = KmsClient::new(KmsClientOptions {
        endpoint_url: Some("http://me:hunter2@127.0.0.1:4566".into()),
        ..KmsClientOptions::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(!err.message().contains("hunter2"), "{err:?}");
    let mut options = KmsClientOptions::default();
    options.timeouts.operation = std::time::Duration::ZERO;
    let err = KmsClient::new(options.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        err.message(),
        "KMS client operation timeout must not be zero"
    );
    options.timeouts = cyborgdb_kms::AwsTimeouts {
        max_attempts: Some(0),
        ..cyborgdb_kms::AwsTimeouts::default()
    };
    let err = KmsClient::new(options).unwrap_err();
    assert_eq!(err.message(), "KMS client max_attempts must be at least 1");
}
