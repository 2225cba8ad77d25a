//! The custody audit on S3 (moto): one object per record under `<prefix>.audit/`, conditional
//! creates that serialize racing appenders of threads, stores and processes on one chain, every
//! kind of tampering named with its first bad seq, a hostile object, and provider refusals that
//! signal revocation (a disabled KMS key) recorded by the resolver.

mod common;

use std::process::Command;

use common::moto::{moto, runtime, unique};
use common::{aws_kms_blob, none_blob};
use cyborgdb_kms::audit::{
    read_audit, verify_audit, AuditBreakKind, AuditEvent, AuditOptions, AuditRecord,
};
use cyborgdb_kms::{
    create_index_kms, delete_index_kms, list_index_kms, push_index_kms, AwsTimeouts, ErrorKind,
    KekCacheOptions, KekResolver, KmsClient, KmsClientOptions, Provider, S3Credentials, S3Options,
    Slot, StorageConfig,
};

const CHILD: &str = "CYB_AUDIT_S3_CHILD";
const PREFIX: &str = "keystore";

fn options(endpoint: &str) -> S3Options {
    S3Options {
        prefix: PREFIX.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
        timeouts: AwsTimeouts::default(),
        ..S3Options::default()
    }
}

/// A new store (own client, own remembered head) on `bucket`, audited as `principal`.
fn store_on(bucket: &str, principal: &str) -> StorageConfig {
    StorageConfig::s3(bucket, options(&moto().endpoint))
        .unwrap()
        .with_audit(&AuditOptions::new(principal))
        .unwrap()
}

fn record_key(seq: u64) -> String {
    format!("{PREFIX}/.audit/{seq:020}")
}

/// A fresh bucket with six records (seq 0..=5).
fn six_records() -> (String, StorageConfig) {
    let bucket = unique("audit");
    moto().create_bucket(&bucket);
    let store = store_on(&bucket, "tester");
    create_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, "a", &aws_kms_blob(2)).unwrap();
    create_index_kms(&store, "b", &none_blob()).unwrap();
    push_index_kms(&store, "b", &aws_kms_blob(3)).unwrap();
    delete_index_kms(&store, "a").unwrap();
    delete_index_kms(&store, "b").unwrap();
    (bucket, store)
}

fn first_break(store: &StorageConfig) -> (u64, AuditBreakKind, String) {
    let report = verify_audit(store).unwrap();
    let found = report.first_break.expect("a break");
    (found.seq, found.kind, found.message)
}

fn delete_object(bucket: &str, key: &str) {
    runtime()
        .block_on(moto().s3().delete_object().bucket(bucket).key(key).send())
        .unwrap();
}

#[test]
fn an_intact_s3_chain_is_one_object_per_record_beside_the_envelopes() {
    let (bucket, store) = six_records();
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 6);
    let keys = moto().list_keys(&bucket);
    let audit_keys: Vec<_> = keys.iter().filter(|k| k.contains("/.audit/")).collect();
    assert_eq!(audit_keys.len(), 6);
    assert_eq!(audit_keys[0], &record_key(0));
    // The listing of envelopes does not see the records.
    push_index_kms(&store, "c", &none_blob()).unwrap();
    assert_eq!(list_index_kms(&store).unwrap(), ["c"]);
    // Each object is the record's line.
    let bytes = moto().get_object(&bucket, &record_key(6));
    let records = read_audit(&store, 6, 10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(bytes, records[0].to_line().into_bytes());
    // A new store on the same bucket (another node) reads and verifies the same chain, and
    // appends after it.
    let other = store_on(&bucket, "node-2");
    assert_eq!(verify_audit(&other).unwrap().records, 7);
    delete_index_kms(&other, "c").unwrap();
    // The first store's remembered head is stale now: its append loses the race for seq 8,
    // lists from its head, and chains after the other node's record.
    push_index_kms(&store, "d", &none_blob()).unwrap();
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 9);
    let records = read_audit(&store, 7, 10).unwrap();
    let principals: Vec<_> = records.iter().map(|r| r.actor.principal.as_str()).collect();
    assert_eq!(principals, ["node-2", "tester"]);
}

#[test]
fn tampering_on_s3_is_named_with_its_first_bad_seq_and_kind() {
    // A changed field.
    let (bucket, store) = six_records();
    let line = String::from_utf8(moto().get_object(&bucket, &record_key(2))).unwrap();
    moto().put_object(
        &bucket,
        &record_key(2),
        line.replace("\"tester\"", "\"mallory\"").as_bytes(),
    );
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (2, AuditBreakKind::Changed), "{message}");

    // A removed record.
    let (bucket, store) = six_records();
    delete_object(&bucket, &record_key(4));
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (4, AuditBreakKind::Removed), "{message}");

    // Two records' contents swapped.
    let (bucket, store) = six_records();
    let one = moto().get_object(&bucket, &record_key(1));
    let two = moto().get_object(&bucket, &record_key(2));
    moto().put_object(&bucket, &record_key(1), &two);
    moto().put_object(&bucket, &record_key(2), &one);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (1, AuditBreakKind::Reordered), "{message}");

    // A record cut short.
    let (bucket, store) = six_records();
    let three = moto().get_object(&bucket, &record_key(3));
    moto().put_object(&bucket, &record_key(3), &three[..three.len() / 2]);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (3, AuditBreakKind::Truncated), "{message}");

    // A fork: a second record 3 on top of record 2, written past the condition at the next key.
    let (bucket, store) = six_records();
    let records = read_audit(&store, 0, 10).unwrap();
    let second = AuditRecord::new(
        3,
        records[3].time_ms,
        "x",
        AuditEvent::Deleted,
        &records[3].actor,
        records[2].hash,
    );
    moto().put_object(&bucket, &record_key(6), second.to_line().as_bytes());
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (3, AuditBreakKind::Fork), "{message}");
    // Nothing is appended on top of a head that is not the record its key names.
    let err = push_index_kms(&store_on(&bucket, "late"), "z", &none_blob()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");

    // A record stored under another seq's key (renamed).
    let (bucket, store) = six_records();
    let five = moto().get_object(&bucket, &record_key(5));
    delete_object(&bucket, &record_key(5));
    moto().put_object(&bucket, &record_key(9), &five);
    let (seq, kind, message) = first_break(&store);
    assert_eq!((seq, kind), (5, AuditBreakKind::Reordered), "{message}");
}

#[test]
fn a_hostile_record_object_is_corrupt_and_read_bounded() {
    let (bucket, store) = six_records();
    moto().put_object(&bucket, &record_key(6), &vec![b'{'; 1 << 20]);
    for err in [
        verify_audit(&store).unwrap_err(),
        read_audit(&store, 0, 100).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
        assert!(err.message().contains("more than any record"), "{err:?}");
    }
    moto().put_object(&bucket, &record_key(6), b"\x00\xffgarbage\n");
    let (seq, kind, _) = first_break(&store);
    assert_eq!((seq, kind), (6, AuditBreakKind::Changed));
    // Foreign objects under the audit prefix that are not records are skipped.
    moto().put_object(&bucket, &format!("{PREFIX}/.audit/README"), b"hello");
    moto().put_object(
        &bucket,
        &format!("{PREFIX}/.audit/sub/00000000000000000007"),
        b"x",
    );
    assert_eq!(first_break(&store).0, 6);
}

#[test]
fn concurrent_appenders_on_separate_stores_leave_one_unbroken_chain() {
    let bucket = unique("audit");
    moto().create_bucket(&bucket);
    common::assert_threads_append_one_chain(
        6,
        8,
        |actor| store_on(&bucket, actor),
        &store_on(&bucket, "checker"),
    );
}

/// A child process: pushes `N` envelopes tagged `TAG` to the bucket in `CYB_AUDIT_S3_BUCKET`
/// at the moto endpoint in `CYB_AUDIT_S3_ENDPOINT`. Does nothing when not run as a child.
#[test]
fn child_s3_appender() {
    let Ok(command) = std::env::var(CHILD) else {
        return;
    };
    let (count, tag) = command.split_once(' ').unwrap();
    let bucket = std::env::var("CYB_AUDIT_S3_BUCKET").unwrap();
    let endpoint = std::env::var("CYB_AUDIT_S3_ENDPOINT").unwrap();
    let store = StorageConfig::s3(&bucket, options(&endpoint))
        .unwrap()
        .with_audit(&AuditOptions::new("child"))
        .unwrap();
    for i in 0..count.parse::<usize>().unwrap() {
        push_index_kms(&store, &format!("{tag}-{i}"), &none_blob()).unwrap();
    }
    println!("CHILD=done");
}

#[test]
fn concurrent_processes_on_s3_leave_one_unbroken_chain() {
    let bucket = unique("audit");
    moto().create_bucket(&bucket);
    const CHILDREN: usize = 3;
    const EACH: usize = 8;
    let children: Vec<_> = (0..CHILDREN)
        .map(|c| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_s3_appender", "--nocapture"])
                .env(CHILD, format!("{EACH} p{c}"))
                .env("CYB_AUDIT_S3_BUCKET", &bucket)
                .env("CYB_AUDIT_S3_ENDPOINT", &moto().endpoint)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let store = store_on(&bucket, "parent");
    for i in 0..EACH {
        push_index_kms(&store, &format!("parent-{i}"), &none_blob()).unwrap();
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("CHILD=done"));
    }
    let report = verify_audit(&store).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, ((CHILDREN + 1) * EACH) as u64);
}

/// A client reaching KMS at `endpoint` with slot "prod" on `key_arn`.
fn kms_client(endpoint: &str, key_arn: &str) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.into()),
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot(
            "prod",
            Slot {
                provider: Provider::AwsKms,
                key_id: key_arn.into(),
                region: "us-east-1".into(),
                assume_role: None,
                previous_keys: Vec::new(),
                replica_regions: Vec::new(),
            },
        )
        .unwrap();
    client
}

#[test]
fn a_kms_key_that_is_not_found_is_recorded_as_a_provider_refusal() {
    let key_arn = moto().create_kms_key("us-east-1");
    let bucket = unique("audit");
    moto().create_bucket(&bucket);
    let store = store_on(&bucket, "svc");
    let resolver = |endpoint: &str| {
        KekResolver::new(kms_client(endpoint, &key_arn), KekCacheOptions::default()).unwrap()
    };
    resolver(&moto().endpoint)
        .create_index(&store, "orders", Some("prod"), None)
        .unwrap();
    // Another KMS, where the key does not exist (as after it was deleted): the unwrap and a
    // new wrap are refused with KmsKeyNotFound, and each refusal is recorded.
    let elsewhere = common::moto::Moto::spawn(&[]);
    let node = resolver(&elsewhere.endpoint);
    let err = node.resolve(&store, "orders").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound, "{err:?}");
    let err = node
        .create_index(&store, "more", Some("prod"), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound, "{err:?}");
    let records = read_audit(&store, 0, 10).unwrap();
    let tail: String = key_arn.chars().skip(key_arn.chars().count() - 12).collect();
    let refusals: Vec<_> = records[1..]
        .iter()
        .map(|record| match &record.event {
            AuditEvent::ProviderRefused {
                operation,
                error,
                key,
            } => {
                assert_eq!(
                    (key.slot.as_str(), key.key_suffix.as_str()),
                    ("prod", &tail[..])
                );
                assert!(!record.to_line().contains(&key_arn));
                (record.index.as_str(), operation.as_str(), error.as_str())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        refusals,
        [
            ("orders", "resolve", "KmsKeyNotFound"),
            ("more", "create", "KmsKeyNotFound")
        ]
    );
    assert!(verify_audit(&store).unwrap().is_intact());
}
