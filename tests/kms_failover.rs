//! Region failover of multi-Region KMS keys (`replica_regions`): the slot's own region on our fault
//! peer (refusing connections, hanging past the timeouts, answering 503 or throttling), each
//! replica on another fault peer that answers Decrypt like KMS only for that replica's ARN and
//! the index's EncryptionContext, through the real AWS SDK. (moto cannot serve the replica: it
//! truncates the 40-character `mrk-` key id in its ciphertext header to 36 bytes, so no
//! multi-Region ciphertext it makes decrypts, in any region — checked with moto 5.) Proves
//! that an unwrap fails over only on a regional outage, in the listed order, with the same
//! EncryptionContext; never on access denied, a missing or disabled key or a bad ciphertext; that
//! only the regions the slot names are trusted; that failovers are counted and logged at Warn
//! naming the regions; and that new KEKs are wrapped in the slot's own region only.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fault_peer::{refused_endpoint, FaultPeer, Reply};
use common::log_scan;
use cyborgdb_kms::{
    AwsTimeouts, ErrorKind, KmsBlob, KmsClient, KmsClientOptions, KmsClientStats, Provider, Slot,
};

const PRIMARY: &str = "us-east-1";
const REPLICA: &str = "us-west-2";
const SECOND_REPLICA: &str = "eu-west-1";

/// The multi-Region key of the tests, in [`PRIMARY`].
const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab";

/// The KEK every healthy region returns.
const KEK: [u8; 32] = [7; 32];

/// The key ARN of the replica in `region`.
fn arn_in(region: &str) -> String {
    KEY_ARN.replace(PRIMARY, region)
}

/// A healthy KMS region holding the replica in `region`: it answers Decrypt like KMS when the
/// request pins that replica's ARN and carries the EncryptionContext of `index` (the KEK), and
/// otherwise refuses it as KMS would (AccessDenied for another key, InvalidCiphertext for another
/// context).
fn healthy_region(region: &str, index: &str) -> FaultPeer {
    let arn = arn_in(region);
    let context = format!("\"cyborgdb:index\":\"{index}\"");
    FaultPeer::start(move |request| {
        let body = request.body_text();
        if !body.contains(&format!("\"KeyId\":\"{arn}\"")) {
            Reply::aws_error(400, "AccessDeniedException", "not this region's key")
        } else if !body.contains(&context) || !body.contains("\"cyborgdb:context\":\"kek-v1\"") {
            Reply::aws_error(400, "InvalidCiphertextException", "context mismatch")
        } else {
            Reply::kms_decrypt(&arn, &KEK)
        }
    })
}

/// Short attempts, two of them, and an operation bound the retries cannot reach.
fn fast_timeouts() -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(300),
        operation: Duration::from_secs(10),
        max_attempts: Some(2),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

fn slot(key_arn: &str, replicas: &[&str]) -> Slot {
    Slot {
        replica_regions: replicas.iter().map(|r| r.to_string()).collect(),
        ..Slot::new(Provider::AwsKms, key_arn, PRIMARY)
    }
}

/// A client reaching the regions in `overrides` (region → endpoint) and no other (a refused
/// port), with slot `mrk` for `key_arn` and `replicas`.
fn failover_client(key_arn: &str, replicas: &[&str], overrides: &[(&str, &str)]) -> KmsClient {
    log_scan::watch(&[("returned KEK", &KEK)]);
    let unlisted = refused_endpoint();
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(unlisted),
        kms_region_endpoint_urls: overrides
            .iter()
            .map(|(region, url)| (region.to_string(), url.to_string()))
            .collect::<BTreeMap<_, _>>(),
        timeouts: fast_timeouts(),
        ..KmsClientOptions::default()
    })
    .unwrap();
    client.add_slot("mrk", slot(key_arn, replicas)).unwrap();
    client
}

/// An envelope of `index` wrapped under the primary key (the bytes are the fault peers' to judge).
fn envelope(index: &str) -> KmsBlob {
    KmsBlob {
        kms_name: "mrk".into(),
        provider: "aws-kms".into(),
        key_id: KEY_ARN.into(),
        region: PRIMARY.into(),
        wrapped_kek: format!("wrapped for {index}").into_bytes(),
        version: 1,
        created_at: 1,
    }
}

fn warn_lines_about(index: &str) -> Vec<String> {
    log_scan::lines()
        .into_iter()
        .filter(|line| line.starts_with("WARN ") && line.contains(&format!("index \"{index}\"")))
        .collect()
}

#[test]
fn an_unavailable_primary_fails_over_to_the_replica_with_the_same_context() {
    let hang = FaultPeer::start(|_| Reply::Hang);
    let unavailable =
        FaultPeer::start(|_| Reply::aws_error(503, "KMSInternalException", "service unavailable"));
    let throttled =
        FaultPeer::start(|_| Reply::aws_error(400, "ThrottlingException", "Rate exceeded"));
    let refused = refused_endpoint();
    let outages = [
        ("refused", refused.as_str(), None),
        ("hang", hang.endpoint(), Some(&hang)),
        ("http503", unavailable.endpoint(), Some(&unavailable)),
        ("throttled", throttled.endpoint(), Some(&throttled)),
    ];
    for (what, primary_endpoint, peer) in outages {
        let index = format!("failover-{what}");
        let replica = healthy_region(REPLICA, &index);
        let client = failover_client(
            KEY_ARN,
            &[REPLICA],
            &[(PRIMARY, primary_endpoint), (REPLICA, replica.endpoint())],
        );
        let before = peer.map_or(0, |p| p.count_target("TrentService.Decrypt"));
        let unwrapped = client.unwrap_kek(&index, &envelope(&index)).unwrap();
        assert_eq!(unwrapped.as_bytes(), &KEK, "{what}");
        if let Some(peer) = peer {
            // The primary was asked first, with its retries, then abandoned.
            assert_eq!(
                peer.count_target("TrentService.Decrypt") - before,
                2,
                "{what}"
            );
        }
        assert_eq!(replica.count_target("TrentService.Decrypt"), 1, "{what}");
        assert_eq!(
            client.stats(),
            KmsClientStats {
                region_failovers: 1,
                replica_unwraps: 1
            },
            "{what}"
        );
        let warns = warn_lines_about(&index);
        assert_eq!(warns.len(), 1, "{what}: {warns:?}");
        assert!(
            warns[0].contains(&format!("KMS region \"{PRIMARY}\" is unavailable (Kms"))
                && warns[0].ends_with(&format!("failing over to replica region \"{REPLICA}\"")),
            "{what}: {}",
            warns[0]
        );
    }
}

#[test]
fn the_replica_checks_the_index_binding_like_the_primary() {
    // Same EncryptionContext at the replica: an envelope copied onto another index fails there
    // too, and that failure (a bad ciphertext) ends the unwrap.
    let replica = healthy_region(REPLICA, "binding-a");
    let refused = refused_endpoint();
    let client = failover_client(
        KEY_ARN,
        &[REPLICA],
        &[(PRIMARY, &refused), (REPLICA, replica.endpoint())],
    );
    let err = client
        .unwrap_kek("binding-b", &envelope("binding-a"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DecryptFailed, "{}", err.message());
    assert_eq!(
        err.message(),
        "slot \"mrk\": after failing over through regions \"us-east-1\", \"us-west-2\": \
         index \"binding-b\": kms:Decrypt failed: InvalidCiphertextException (HTTP 400): context mismatch"
    );
    assert_eq!(client.stats().region_failovers, 1);
    assert_eq!(client.stats().replica_unwraps, 0);
}

#[test]
fn replicas_are_tried_in_the_listed_order_and_the_last_error_names_every_region() {
    let primary = FaultPeer::start(|_| Reply::aws_error(503, "KMSInternalException", "down"));
    let second = FaultPeer::start(|_| Reply::aws_error(503, "KMSInternalException", "down"));
    let replica = healthy_region(REPLICA, "order");
    // eu-west-1 (down) is listed before us-west-2 (healthy): both are tried, in that order.
    let client = failover_client(
        KEY_ARN,
        &[SECOND_REPLICA, REPLICA],
        &[
            (PRIMARY, primary.endpoint()),
            (SECOND_REPLICA, second.endpoint()),
            (REPLICA, replica.endpoint()),
        ],
    );
    let unwrapped = client.unwrap_kek("order", &envelope("order")).unwrap();
    assert_eq!(unwrapped.as_bytes(), &KEK);
    assert_eq!(second.count_target("TrentService.Decrypt"), 2);
    // Each region's request pins that region's replica ARN and carries the same context.
    let body = second.requests()[0].body_text();
    assert!(
        body.contains(&format!("\"KeyId\":\"{}\"", arn_in(SECOND_REPLICA))),
        "{body}"
    );
    assert!(body.contains("\"cyborgdb:index\":\"order\""), "{body}");
    assert_eq!(
        client.stats(),
        KmsClientStats {
            region_failovers: 2,
            replica_unwraps: 1
        }
    );
    let warns = warn_lines_about("order");
    assert_eq!(warns.len(), 2, "{warns:?}");
    assert!(
        warns[1].contains("KMS region \"eu-west-1\" is unavailable"),
        "{}",
        warns[1]
    );

    // Every region down: the last region's kind, naming the regions tried.
    let refused = refused_endpoint();
    let client = failover_client(
        KEY_ARN,
        &[REPLICA],
        &[(PRIMARY, primary.endpoint()), (REPLICA, &refused)],
    );
    let err = client.unwrap_kek("order", &envelope("order")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{}", err.message());
    assert!(
        err.message().starts_with(
            "slot \"mrk\": after failing over through regions \"us-east-1\", \"us-west-2\": index \"order\": kms:Decrypt failed:"
        ),
        "{}",
        err.message()
    );
}

#[test]
fn no_failover_on_access_denied_not_found_disabled_or_a_bad_ciphertext() {
    let cases = [
        ("AccessDeniedException", 400, ErrorKind::KmsAccessDenied),
        ("NotFoundException", 400, ErrorKind::KmsKeyNotFound),
        ("DisabledException", 400, ErrorKind::KmsKeyDisabled),
        ("InvalidCiphertextException", 400, ErrorKind::DecryptFailed),
        ("IncorrectKeyException", 400, ErrorKind::DecryptFailed),
    ];
    for (code, status, kind) in cases {
        let peer = FaultPeer::start(move |_| Reply::aws_error(status, code, "refused"));
        let replica = healthy_region(REPLICA, "refusals");
        let client = failover_client(
            KEY_ARN,
            &[REPLICA],
            &[(PRIMARY, peer.endpoint()), (REPLICA, replica.endpoint())],
        );
        let err = client
            .unwrap_kek("refusals", &envelope("refusals"))
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {}", err.message());
        assert_eq!(
            err.message(),
            format!("index \"refusals\": kms:Decrypt failed: {code} (HTTP {status}): refused")
        );
        assert_eq!(peer.count_target("TrentService.Decrypt"), 1, "{code}");
        assert_eq!(replica.request_count(), 0, "{code}");
        assert_eq!(client.stats(), KmsClientStats::default(), "{code}");
    }
}

#[test]
fn only_regions_the_slot_names_are_trusted() {
    let peer = FaultPeer::start(|_| Reply::aws_error(503, "KMSInternalException", "down"));
    let replica = healthy_region(REPLICA, "trust");
    let elsewhere_peer = healthy_region(SECOND_REPLICA, "trust");
    let endpoints = [
        (PRIMARY, peer.endpoint()),
        (REPLICA, replica.endpoint()),
        (SECOND_REPLICA, elsewhere_peer.endpoint()),
    ];
    let client = failover_client(KEY_ARN, &[REPLICA], &endpoints);
    let blob = envelope("trust");

    // An envelope rewritten to name a region the slot does not list: refused before any call.
    let elsewhere = KmsBlob {
        key_id: arn_in(SECOND_REPLICA),
        region: SECOND_REPLICA.into(),
        ..blob.clone()
    };
    let err = client.unwrap_kek("trust", &elsewhere).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{}", err.message());
    assert!(
        err.message().starts_with(&format!(
            "index \"trust\": the envelope names aws-kms key \"{}\"... in \"eu-west-1\", a region KMS slot \"mrk\" does not list",
            &arn_in(SECOND_REPLICA)[..64]
        )) && err.message().ends_with("add it to the slot's replica_regions"),
        "{}",
        err.message()
    );
    // Nor a listed region with another key in it.
    let other_key = KmsBlob {
        key_id: "arn:aws:kms:us-west-2:123456789012:key/mrk-00000000000000000000000000000000"
            .into(),
        region: REPLICA.into(),
        ..blob.clone()
    };
    let err = client.unwrap_kek("trust", &other_key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{}", err.message());
    assert_eq!(peer.request_count() + replica.request_count(), 0);
    assert_eq!(elsewhere_peer.request_count(), 0);

    // Without replica_regions the same slot does not fail over, and trusts no replica.
    let plain = failover_client(KEY_ARN, &[], &endpoints);
    let err = plain.unwrap_kek("trust", &blob).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{}", err.message());
    assert_eq!(plain.stats(), KmsClientStats::default());
    let at_replica = KmsBlob {
        key_id: arn_in(REPLICA),
        region: REPLICA.into(),
        ..blob
    };
    let err = plain.unwrap_kek("trust", &at_replica).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{}", err.message());
    assert_eq!(replica.request_count(), 0);

    // An envelope recording a listed replica region is the slot's key: unwrapped there first.
    let unwrapped = client.unwrap_kek("trust", &at_replica).unwrap();
    assert_eq!(unwrapped.as_bytes(), &KEK);
    assert_eq!(client.stats(), KmsClientStats::default());
}

#[test]
fn new_keks_are_wrapped_in_the_primary_region_only() {
    let peer = FaultPeer::start(|_| Reply::aws_error(503, "KMSInternalException", "down"));
    let replica = healthy_region(REPLICA, "wrap-primary");
    let client = failover_client(
        KEY_ARN,
        &[REPLICA],
        &[(PRIMARY, peer.endpoint()), (REPLICA, replica.endpoint())],
    );
    let err = client.wrap_new_kek("wrap-primary", "mrk").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{}", err.message());
    assert_eq!(peer.count_target("TrentService.Encrypt"), 2);
    assert_eq!(replica.request_count(), 0);
    assert_eq!(client.stats(), KmsClientStats::default());
}

#[test]
fn region_endpoint_options_are_checked_at_construction() {
    let loopback = refused_endpoint();
    let err = KmsClient::new(KmsClientOptions {
        kms_region_endpoint_urls: [(REPLICA.to_owned(), "http://10.1.2.3:4566".to_owned())].into(),
        endpoint_url: Some(loopback.clone()),
        ..KmsClientOptions::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.message().starts_with(
            "KMS client: kms_region_endpoint_urls[\"us-west-2\"] \"http://10.1.2.3:4566\" is plain http to another host"
        ),
        "{}",
        err.message()
    );
    let err = KmsClient::new(KmsClientOptions {
        kms_region_endpoint_urls: [(REPLICA.to_owned(), "ftp://127.0.0.1".to_owned())].into(),
        endpoint_url: Some(loopback),
        ..KmsClientOptions::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.message()
            .starts_with("KMS kms_region_endpoint_urls[\"us-west-2\"] "),
        "{}",
        err.message()
    );
}

#[test]
fn c_abi_stats_start_at_zero_and_refuse_null_parameters() {
    use cyborgdb_kms::ffi::{
        cyb_kms_client, cyb_kms_client_free, cyb_kms_client_new, cyb_kms_client_stats,
        cyb_kms_failover_stats, cyb_result,
    };
    let mut client: *mut cyb_kms_client = std::ptr::null_mut();
    assert_eq!(
        unsafe { cyb_kms_client_new(std::ptr::null(), &mut client) },
        cyb_result::CYB_RESULT_OK
    );
    let mut stats = cyb_kms_failover_stats {
        region_failovers: 7,
        replica_unwraps: 7,
    };
    assert_eq!(
        unsafe { cyb_kms_client_stats(client, &mut stats) },
        cyb_result::CYB_RESULT_OK
    );
    assert_eq!(stats, cyb_kms_failover_stats::default());
    assert_eq!(
        unsafe { cyb_kms_client_stats(client, std::ptr::null_mut()) },
        cyb_result::CYB_RESULT_NULL_PARAMETER
    );
    assert_eq!(
        unsafe { cyb_kms_client_stats(std::ptr::null(), &mut stats) },
        cyb_result::CYB_RESULT_NULL_PARAMETER
    );
    unsafe { cyb_kms_client_free(client) };
}

#[test]
fn a_yaml_slot_fails_over_through_one_shared_endpoint() {
    // One endpoint for every region (a proxy): the peer answers by the key the request pins.
    let primary_arn = KEY_ARN.to_owned();
    let replica_arn = arn_in(REPLICA);
    let peer = FaultPeer::start(move |request| {
        let body = request.body_text();
        if body.contains(&format!("\"KeyId\":\"{primary_arn}\"")) {
            Reply::aws_error(503, "KMSInternalException", "region down")
        } else if body.contains(&format!("\"KeyId\":\"{replica_arn}\""))
            && body.contains("\"cyborgdb:index\":\"from-yaml\"")
        {
            Reply::kms_decrypt(&replica_arn, &KEK)
        } else {
            Reply::aws_error(400, "AccessDeniedException", "unexpected key")
        }
    });
    log_scan::watch(&[("returned KEK", &KEK)]);
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(peer.endpoint().to_owned()),
        timeouts: fast_timeouts(),
        ..KmsClientOptions::default()
    })
    .unwrap();
    let yaml = format!(
        "kms:\n  registry:\n    mrk:\n      provider: aws-kms\n      key_id: {KEY_ARN}\n      region: {PRIMARY}\n      replica_regions:\n        - {REPLICA}\n"
    );
    assert_eq!(client.load_registry_yaml(&yaml).unwrap(), 1);
    let kek = client
        .unwrap_kek("from-yaml", &envelope("from-yaml"))
        .unwrap();
    assert_eq!(kek.as_bytes(), &KEK);
    assert_eq!(peer.count_target("TrentService.Decrypt"), 3);
    assert_eq!(
        client.stats(),
        KmsClientStats {
            region_failovers: 1,
            replica_unwraps: 1
        }
    );
}

#[test]
fn the_resolver_fails_over_once_and_reports_a_replica_envelope_as_drifted() {
    use cyborgdb_kms::{push_index_kms, DriftStatus, KekCacheOptions, KekResolver, StorageConfig};
    let primary = FaultPeer::start(|_| Reply::aws_error(503, "KMSInternalException", "down"));
    let replica = healthy_region(REPLICA, "cached");
    let client = failover_client(
        KEY_ARN,
        &[REPLICA],
        &[(PRIMARY, primary.endpoint()), (REPLICA, replica.endpoint())],
    );
    let storage = StorageConfig::memory();
    push_index_kms(&storage, "cached", &envelope("cached")).unwrap();
    let resolver = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    for _ in 0..3 {
        assert_eq!(
            resolver.resolve(&storage, "cached").unwrap().as_bytes(),
            &KEK
        );
    }
    // One fill, one failover: later resolves are cache hits.
    assert_eq!(resolver.stats().provider_calls, 1);
    assert_eq!(replica.count_target("TrentService.Decrypt"), 1);
    assert_eq!(client.stats().region_failovers, 1);

    // An envelope recording a listed replica region is trusted, and reported as drifted (new
    // KEKs are wrapped in the slot's region); drift repair would re-wrap it there.
    let at_replica = KmsBlob {
        key_id: arn_in(REPLICA),
        region: REPLICA.into(),
        ..envelope("cached")
    };
    push_index_kms(&storage, "cached", &at_replica).unwrap();
    let report = resolver.check_drift(&storage, false).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].status, DriftStatus::Drifted, "{:?}", report[0]);
}
