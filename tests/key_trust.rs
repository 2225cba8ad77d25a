//! Key trust (issue #10, finding 1): whoever can write the envelope store must not choose the key
//! that unwraps an index. Each test plays the attacker: an envelope is written by someone with
//! write access to the store (and whatever keys they hold themselves), naming a production slot.

mod common;

use std::time::Duration;

use common::fault_peer::{FaultPeer, Reply};
use common::moto::{moto, unique};
use cyborgdb_kms::{
    get_index_kms, push_index_kms, AwsTimeouts, DriftStatus, ErrorKind, KekCacheOptions,
    KekResolver, KeyIdentity, KmsBlob, KmsClient, KmsClientOptions, Provider, Slot, StorageConfig,
};

const REGION: &str = "us-east-1";
const PROD_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn slot(provider: Provider, key_id: &str, region: &str) -> Slot {
    Slot::new(provider, key_id, region)
}

fn client(endpoint: &str, allow_local_provider: bool) -> KmsClient {
    KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        allow_local_provider,
        timeouts: AwsTimeouts {
            max_attempts: Some(1),
            ..AwsTimeouts::default()
        },
        ..KmsClientOptions::default()
    })
    .unwrap()
}

fn resolver(client: &KmsClient) -> KekResolver {
    KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(3600)),
            ..KekCacheOptions::default()
        },
    )
    .unwrap()
}

/// What the attacker writes: a KEK of their choosing wrapped under a master key file they made,
/// for `index`, in an envelope that names the production slot `prod`.
fn attacker_local_envelope(dir: &std::path::Path, index: &str) -> (KmsBlob, Vec<u8>) {
    let key_file = dir.join("attacker.key");
    std::fs::write(&key_file, [0x66; 32]).unwrap();
    let attacker = client("http://127.0.0.1:9", true);
    attacker
        .add_slot(
            "mine",
            slot(Provider::Local, &format!("file:{}", key_file.display()), ""),
        )
        .unwrap();
    let (mut blob, kek) = attacker.wrap_new_kek(index, "mine").unwrap();
    blob.kms_name = "prod".into();
    (blob, kek.as_bytes().to_vec())
}

#[test]
fn an_envelope_naming_a_local_key_file_cannot_unwrap_or_be_laundered_through_a_kms_slot() {
    let dir = tempfile::tempdir().unwrap();
    // The production KMS: a fault peer that would answer any Decrypt or Encrypt, and counts them.
    let kms = FaultPeer::start(|request| {
        if request.target() == Some("TrentService.Encrypt") {
            Reply::kms_encrypt(PROD_KEY, &[7; 64])
        } else {
            Reply::kms_decrypt(PROD_KEY, &[9; 32])
        }
    });
    let store = StorageConfig::disk(dir.path().join("store")).unwrap();
    let (hostile, _) = attacker_local_envelope(dir.path(), "orders");
    push_index_kms(&store, "orders", &hostile).unwrap();
    let stored_before = get_index_kms(&store, "orders").unwrap();

    // Whether or not the service enabled the local provider for its own development slots.
    for allow_local in [false, true] {
        let service = client(kms.endpoint(), allow_local);
        service
            .add_slot("prod", slot(Provider::AwsKms, PROD_KEY, REGION))
            .unwrap();
        let r = resolver(&service);
        let err = r.resolve(&store, "orders").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
        assert!(err.message().starts_with("index \"orders\": "), "{err:?}");
        // Drift repair does not re-wrap (launder) it under the real KMS key.
        let report = r.check_drift(&store, true).unwrap();
        assert_eq!(report[0].status, DriftStatus::Failed, "{report:?}");
        assert_eq!(
            report[0].error.as_ref().unwrap().kind(),
            ErrorKind::UntrustedKey
        );
        let rewrap = r.rewrap(&store, "orders", "prod").unwrap_err();
        assert_eq!(rewrap.kind(), ErrorKind::UntrustedKey, "{rewrap:?}");
        assert_eq!(r.stats().provider_calls, 0);
    }
    assert_eq!(get_index_kms(&store, "orders").unwrap(), stored_before);
    assert_eq!(kms.request_count(), 0, "no KMS call for an untrusted key");
}

#[test]
fn the_local_provider_is_refused_unless_the_client_enables_it() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dev.key");
    std::fs::write(&key_file, [1; 32]).unwrap();
    let dev_slot = slot(Provider::Local, &format!("file:{}", key_file.display()), "");
    let enabled = client("http://127.0.0.1:9", true);
    enabled.add_slot("dev", dev_slot.clone()).unwrap();
    let (blob, kek) = enabled.wrap_new_kek("idx", "dev").unwrap();
    assert_eq!(enabled.unwrap_kek("idx", &blob).unwrap(), kek);

    let production = client("http://127.0.0.1:9", false);
    production.add_slot("dev", dev_slot).unwrap();
    for err in [
        production.unwrap_kek("idx", &blob).unwrap_err(),
        production.wrap_new_kek("idx", "dev").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
        assert!(err.message().contains("allow_local_provider"), "{err:?}");
    }
    // Enabled, a local key must still be the slot's own: another file is refused.
    let other = dir.path().join("other.key");
    std::fs::write(&other, [1; 32]).unwrap();
    let swapped = KmsBlob {
        key_id: format!("file:{}", other.display()),
        ..blob
    };
    let err = enabled.unwrap_kek("idx", &swapped).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
}

/// A KMS key or a secret the service's credentials happen to be allowed to use, but that is not
/// the slot's: the envelope's writer made it (or obtained a ciphertext under it) and names it.
#[test]
fn keys_the_service_can_reach_but_the_slot_does_not_name_are_refused_on_moto() {
    let moto = moto();
    let prod_key = moto.create_kms_key(REGION);
    let other_key = moto.create_kms_key(REGION);
    let prod_secret = unique("prod/kek");
    let other_secret = unique("other/kek");
    moto.create_binary_secret(REGION, &prod_secret, &[2; 32]);
    moto.create_binary_secret(REGION, &other_secret, &[3; 32]);
    let service = client(&moto.endpoint, false);
    service
        .add_slot("prod", slot(Provider::AwsKms, &prod_key, REGION))
        .unwrap();
    service
        .add_slot("prod-sm", slot(Provider::Aws, &prod_secret, REGION))
        .unwrap();
    // The attacker's envelopes, wrapped under keys the service can use, naming prod slots.
    let attacker = client(&moto.endpoint, false);
    attacker
        .add_slot("kms", slot(Provider::AwsKms, &other_key, REGION))
        .unwrap();
    attacker
        .add_slot("sm", slot(Provider::Aws, &other_secret, REGION))
        .unwrap();
    for (their_slot, prod_slot) in [("kms", "prod"), ("sm", "prod-sm")] {
        let (mut blob, kek) = attacker.wrap_new_kek("orders", their_slot).unwrap();
        // The service itself could unwrap it if it trusted the key (the old behaviour).
        assert_eq!(attacker.unwrap_kek("orders", &blob).unwrap(), kek);
        blob.kms_name = prod_slot.into();
        let err = service.unwrap_kek("orders", &blob).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
        let line = KeyIdentity::of_envelope(&blob)
            .unwrap()
            .previous_keys_line();
        assert!(err.message().ends_with(&line), "{err:?}");
        assert!(
            err.message().contains(&format!("KMS slot \"{prod_slot}\"")),
            "{err:?}"
        );
    }
}

#[test]
fn a_registry_change_drops_cached_keks_so_a_key_no_longer_trusted_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let old_key = dir.path().join("old.key");
    let new_key = dir.path().join("new.key");
    std::fs::write(&old_key, [4; 32]).unwrap();
    std::fs::write(&new_key, [5; 32]).unwrap();
    let old_id = format!("file:{}", old_key.display());
    let service = client("http://127.0.0.1:9", true);
    service
        .add_slot("main", slot(Provider::Local, &old_id, ""))
        .unwrap();
    let store = StorageConfig::memory();
    let r = resolver(&service);
    let kek = r.create_index(&store, "idx", Some("main"), None).unwrap();
    assert_eq!(r.resolve(&store, "idx").unwrap(), kek);
    let hits = r.stats().hits;
    assert_eq!(r.resolve(&store, "idx").unwrap(), kek);
    assert_eq!(r.stats().hits, hits + 1, "served from the cache");

    // Rotation without trusting the old key: the cached KEK is dropped, the envelope refused.
    let mut rotated = slot(Provider::Local, &format!("file:{}", new_key.display()), "");
    service.add_slot("main", rotated.clone()).unwrap();
    let err = r.resolve(&store, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
    // The operator adds the one line; the old envelope resolves again, then is re-wrapped.
    let old_identity = KeyIdentity {
        provider: Provider::Local,
        key_id: old_id.clone(),
        region: String::new(),
    };
    rotated.previous_keys.push(old_identity.clone());
    service.add_slot("main", rotated).unwrap();
    assert_eq!(r.resolve(&store, "idx").unwrap(), kek);
    // A change that changes nothing (the key is already trusted) keeps the cache; a real one
    // (another previous key) drops it.
    let misses = r.stats().misses;
    service.add_previous_key("main", old_identity).unwrap();
    assert_eq!(r.resolve(&store, "idx").unwrap(), kek);
    assert_eq!(
        r.stats().misses,
        misses,
        "a no-op change kept the cached KEK"
    );
    service
        .add_previous_key(
            "main",
            KeyIdentity {
                provider: Provider::Local,
                key_id: "env:CYB_SOME_OTHER_KEY".into(),
                region: String::new(),
            },
        )
        .unwrap();
    assert_eq!(r.resolve(&store, "idx").unwrap(), kek);
    assert_eq!(r.stats().misses, misses + 1, "a registry change dropped it");
    let report = r.check_drift(&store, true).unwrap();
    assert_eq!(report[0].status, DriftStatus::Rewrapped, "{report:?}");
    // The line removed after the re-wrap, a replayed copy of the old envelope is refused again.
    let mut old_envelope = get_index_kms(&store, "idx").unwrap();
    assert!(old_envelope.key_id.ends_with("new.key"));
    service
        .add_slot(
            "main",
            slot(Provider::Local, &format!("file:{}", new_key.display()), ""),
        )
        .unwrap();
    assert_eq!(r.resolve(&store, "idx").unwrap(), kek);
    old_envelope.key_id = old_id;
    push_index_kms(&store, "idx", &old_envelope).unwrap();
    assert_eq!(
        r.resolve(&store, "idx").unwrap_err().kind(),
        ErrorKind::UntrustedKey
    );
}

#[test]
fn one_key_reached_through_two_roles_is_refused_at_configuration() {
    let service = client("http://127.0.0.1:9", false);
    service
        .add_slot("vendor", slot(Provider::AwsKms, PROD_KEY, REGION))
        .unwrap();
    let mut byok = slot(Provider::AwsKms, PROD_KEY, REGION);
    byok.assume_role = Some(cyborgdb_kms::kms::AssumeRole {
        role_arn: "arn:aws:iam::111122223333:role/x".into(),
        external_id: "ext".into(),
        session_name: None,
    });
    let err = service.add_slot("customer", byok.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert!(
        err.message()
            .starts_with("KMS slots \"vendor\" and \"customer\" both trust aws-kms key"),
        "{err:?}"
    );
    // As a previous key of a slot with another role, too.
    let mut other = slot(
        Provider::AwsKms,
        "arn:aws:kms:us-east-1:111122223333:key/other",
        REGION,
    );
    other.assume_role = byok.assume_role.clone();
    service.add_slot("customer", other).unwrap();
    let err = service
        .add_previous_key(
            "customer",
            KeyIdentity {
                provider: Provider::AwsKms,
                key_id: PROD_KEY.into(),
                region: REGION.into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    // The same role (or none on both) is fine.
    service
        .add_slot("vendor-alias", slot(Provider::AwsKms, PROD_KEY, REGION))
        .unwrap();
    // Unknown slots and bad key fields are clear errors.
    let err = service
        .add_previous_key(
            "missing",
            KeyIdentity {
                provider: Provider::AwsKms,
                key_id: "k".into(),
                region: REGION.into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownSlot);
    let err = service
        .add_previous_key(
            "vendor",
            KeyIdentity {
                provider: Provider::AwsKms,
                key_id: "k".into(),
                region: String::new(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        err.message(),
        "KMS slot \"vendor\": previous_keys[0].region is required"
    );
}

/// The documented rotation (seed 002): the operator changes key_id in the YAML while the old key
/// stays reachable. Old envelopes are refused with the one line that trusts the old key; pasted
/// into the slot, they resolve again; after the drift repair the line can go.
#[test]
fn the_documented_rotation_flow_takes_one_yaml_line() {
    let moto = moto();
    let old_key = moto.create_kms_key(REGION);
    let new_key = moto.create_kms_key(REGION);
    let yaml = |key: &str, extra: &str| {
        format!(
            "kms:\n  registry:\n    vendor-default:\n      provider: aws-kms\n      \
             key_id: {key}\n      region: {REGION}\n{extra}"
        )
    };
    let service = client(&moto.endpoint, false);
    service.load_registry_yaml(&yaml(&old_key, "")).unwrap();
    let r = resolver(&service);
    let store = StorageConfig::memory();
    let kek = r
        .create_index(&store, "orders", Some("vendor-default"), None)
        .unwrap();
    assert_eq!(r.resolve(&store, "orders").unwrap(), kek); // now cached

    // The reload drops the cached KEK: the old envelope is judged by the new registry.
    service.load_registry_yaml(&yaml(&new_key, "")).unwrap();
    let err = r.resolve(&store, "orders").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
    let (_, line) = err
        .message()
        .split_once("adding this line to the slot: ")
        .unwrap_or_else(|| panic!("{err:?}"));
    assert!(
        line.starts_with("previous_keys: [{provider: aws-kms"),
        "{line}"
    );
    service
        .load_registry_yaml(&yaml(&new_key, &format!("      {line}\n")))
        .unwrap();
    assert_eq!(r.resolve(&store, "orders").unwrap(), kek);
    let report = r.check_drift(&store, true).unwrap();
    assert_eq!(report[0].status, DriftStatus::Rewrapped, "{report:?}");
    assert_eq!(get_index_kms(&store, "orders").unwrap().key_id, new_key);

    service.load_registry_yaml(&yaml(&new_key, "")).unwrap();
    assert_eq!(r.resolve(&store, "orders").unwrap(), kek);
}
