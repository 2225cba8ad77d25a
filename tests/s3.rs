//! S3 storage (issue #5) against moto's S3 — the documented semantics, object layout, listing
//! (more than one page, foreign and nested objects), create races across threads and processes, a
//! missing bucket, rejected credentials, corrupt objects and the emulator going away — and against
//! a scripted loopback server (`common::fake_s3`) for what moto does not model: the exact
//! credentials on the wire, 403/409/5xx answers, a server that never answers, an object that
//! claims to be huge, listing pages scripted to the byte.
//!
//! Every client here is pointed at 127.0.0.1 explicitly; nothing reaches AWS.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::fake_s3::{hostile_listing, is_list, FakeS3, Response};
use common::moto::{moto, unique, Moto};
use common::{assert_corrupt, aws_kms_blob, hostile_names, none_blob, sorted};
use cyborgdb_kms::{
    create_index_kms, delete_index_kms, get_index_kms, list_index_kms, push_index_kms, AwsTimeouts,
    ErrorKind, IndexName, S3Credentials, S3Options, StorageConfig,
};

/// Keys moto accepts (it checks none unless told to); deliberately not the process's
/// `AWS_ACCESS_KEY_ID` (`testing`, from .cargo/config.toml).
const S3_ACCESS_KEY: &str = "S3ONLYACCESSKEY";
const S3_SECRET_KEY: &str = "s3-only-secret-key";

fn options(endpoint: &str, prefix: &str) -> S3Options {
    S3Options {
        prefix: prefix.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        credentials: Some(S3Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY)),
        timeouts: AwsTimeouts::default(),
        ..S3Options::default()
    }
}

/// A new bucket in the shared moto, and a store on it under `prefix`.
fn moto_store(prefix: &str) -> (String, StorageConfig) {
    let bucket = unique("cyb");
    moto().create_bucket(&bucket);
    let store = StorageConfig::s3(&bucket, options(&moto().endpoint, prefix)).unwrap();
    (bucket, store)
}

/// Short timeouts for the failure tests.
fn quick_timeouts() -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(500),
        operation: Duration::from_secs(2),
        max_attempts: Some(2),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

/// An operation of the API on index `idx`, named by the S3 operation it makes.
type Op<'a> = (&'static str, Box<dyn Fn() -> cyborgdb_kms::Result<()> + 'a>);

/// Create, push, get and delete of `idx` on `store`.
fn every_operation(store: &StorageConfig) -> [Op<'_>; 4] {
    [
        (
            "PutObject",
            Box::new(|| create_index_kms(store, "idx", &aws_kms_blob(1))),
        ),
        (
            "PutObject",
            Box::new(|| push_index_kms(store, "idx", &aws_kms_blob(2))),
        ),
        (
            "GetObject",
            Box::new(|| get_index_kms(store, "idx").map(drop)),
        ),
        ("DeleteObject", Box::new(|| delete_index_kms(store, "idx"))),
    ]
}

fn fake_store(server: &FakeS3, timeouts: AwsTimeouts) -> StorageConfig {
    StorageConfig::s3(
        "fake-bucket",
        S3Options {
            timeouts,
            ..options(&server.endpoint, "ks")
        },
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Semantics and layout (moto)

#[test]
fn create_push_get_delete_have_the_documented_semantics() {
    let (_bucket, store) = moto_store("keystore");
    let err = get_index_kms(&store, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.message(), "index \"idx\": no KMS envelope is stored");

    create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    let err = create_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        err.message(),
        "index \"idx\": a KMS envelope already exists"
    );
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));

    push_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap();
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(2));
    push_index_kms(&store, "new", &none_blob()).unwrap();
    assert_eq!(get_index_kms(&store, "new").unwrap(), none_blob());

    delete_index_kms(&store, "idx").unwrap();
    delete_index_kms(&store, "idx").unwrap();
    delete_index_kms(&store, "never-existed").unwrap();
    assert_eq!(
        get_index_kms(&store, "idx").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    create_index_kms(&store, "idx", &aws_kms_blob(3)).unwrap();
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(3));
}

#[test]
fn a_zero_created_at_is_stamped_on_s3_too() {
    let (_bucket, store) = moto_store("");
    let blob = cyborgdb_kms::KmsBlob {
        created_at: 0,
        ..aws_kms_blob(1)
    };
    create_index_kms(&store, "idx", &blob).unwrap();
    assert!(get_index_kms(&store, "idx").unwrap().created_at > 1_700_000_000);
}

#[test]
fn objects_live_at_prefix_slash_storage_key_dot_kms_and_nowhere_else() {
    let names = [
        "my_index",
        "My Index",
        "../x",
        "/etc/passwd",
        "a/b",
        &"鍵".repeat(85),
    ];
    for (prefix, shown) in [("keystore", "keystore/"), ("a/b/", "a/b/"), ("", "")] {
        let (bucket, store) = moto_store(prefix);
        for (i, name) in names.iter().enumerate() {
            create_index_kms(&store, name, &aws_kms_blob(i as u8)).unwrap();
        }
        let mut expected: Vec<String> = names
            .iter()
            .map(|n| format!("{shown}{}.kms", IndexName::new(n).unwrap().storage_key()))
            .collect();
        expected.sort();
        assert_eq!(moto().list_keys(&bucket), expected, "prefix {prefix:?}");
        assert!(expected.contains(&format!("{shown}%2E%2E%2Fx.kms")));
        for (i, name) in names.iter().enumerate() {
            assert_eq!(get_index_kms(&store, name).unwrap(), aws_kms_blob(i as u8));
            delete_index_kms(&store, name).unwrap();
        }
        assert!(moto().list_keys(&bucket).is_empty());
    }
}

#[test]
fn stores_with_different_prefixes_in_one_bucket_are_independent() {
    let (bucket, a) = moto_store("tenant-a");
    let b = StorageConfig::s3(&bucket, options(&moto().endpoint, "tenant-b")).unwrap();
    create_index_kms(&a, "idx", &aws_kms_blob(1)).unwrap();
    create_index_kms(&b, "idx", &aws_kms_blob(2)).unwrap();
    assert_eq!(get_index_kms(&a, "idx").unwrap(), aws_kms_blob(1));
    assert_eq!(get_index_kms(&b, "idx").unwrap(), aws_kms_blob(2));
    // A second config on the same bucket and prefix (another node) sees the same envelopes.
    let a2 = StorageConfig::s3(&bucket, options(&moto().endpoint, "tenant-a/")).unwrap();
    assert_eq!(get_index_kms(&a2, "idx").unwrap(), aws_kms_blob(1));
}

#[test]
fn works_when_called_from_inside_a_tokio_runtime() {
    let (_bucket, store) = moto_store("rt");
    let callers = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    callers.block_on(async {
        create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
        assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
    });
    callers.block_on(async move { drop(store) });
}

// ---------------------------------------------------------------------------------------------
// Listing (moto)

#[test]
fn list_returns_the_names_under_the_prefix_sorted() {
    let names = hostile_names();
    for prefix in ["keystore", "a/b/", ""] {
        let (bucket, store) = moto_store(prefix);
        assert!(list_index_kms(&store).unwrap().is_empty(), "{prefix:?}");
        for (i, name) in names.iter().enumerate() {
            create_index_kms(&store, name, &aws_kms_blob(i as u8)).unwrap();
        }
        assert_eq!(
            list_index_kms(&store).unwrap(),
            sorted(&names),
            "{prefix:?}"
        );
        let (gone, kept) = names.split_at(names.len() / 2);
        for name in gone {
            delete_index_kms(&store, name).unwrap();
        }
        assert_eq!(list_index_kms(&store).unwrap(), sorted(kept), "{prefix:?}");
        for name in kept {
            delete_index_kms(&store, name).unwrap();
        }
        assert!(list_index_kms(&store).unwrap().is_empty(), "{prefix:?}");
        assert!(moto().list_keys(&bucket).is_empty());
    }
}

#[test]
fn list_ignores_objects_outside_the_prefix_in_subfolders_or_not_named_like_envelopes() {
    let (bucket, store) = moto_store("ks");
    let top = StorageConfig::s3(&bucket, options(&moto().endpoint, "")).unwrap();
    let long = "鍵".repeat(85);
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, &long, &aws_kms_blob(2)).unwrap();
    let envelope = moto().get_object(&bucket, "ks/idx.kms");
    let hash = IndexName::new(&long).unwrap().storage_key();
    // Each holds a valid envelope, so only its key can exclude it.
    for key in [
        "idx.kms".to_owned(), // outside the prefix (but a top-level envelope for `top`)
        "ks-other/other.kms".into(),
        "ksother.kms".into(), // shares the string prefix "ks", not the folder "ks/"
        "ks/sub/nested.kms".into(),
        format!("ks/sub/{hash}.kms"),
        "ks//double.kms".into(),
        "ks/readme.txt".into(),
        "ks/idx.kms.bak".into(),
        "ks/IDX.kms".into(),
        "ks/%69dx.kms".into(),
        "ks/%4dy.kms".into(),
        "ks/.kms".into(),
        "ks/~abc.kms".into(),
        format!("ks/{}.kms", "a".repeat(201)),
        "ks/.cyborgdb-kms.1.2.3.tmp".into(),
        "ks/dir.kms/".into(),
    ] {
        moto().put_object(&bucket, &key, &envelope);
    }
    let mut expected = vec!["idx".to_owned(), long];
    expected.sort();
    assert_eq!(list_index_kms(&store).unwrap(), expected);
    // At the top of the bucket only the top-level objects count, not those under ks/.
    assert_eq!(list_index_kms(&top).unwrap(), ["idx", "ksother"]);
}

#[test]
fn list_follows_continuation_tokens_past_the_first_page() {
    // S3 (and moto) return at most 1000 keys per ListObjectsV2 page.
    let (bucket, store) = moto_store("ks");
    let readable: Vec<String> = (0..1003).map(|i| format!("index-{i:04}")).collect();
    let envelope = {
        push_index_kms(&store, "seed", &none_blob()).unwrap();
        moto().get_object(&bucket, "ks/seed.kms")
    };
    delete_index_kms(&store, "seed").unwrap();
    // Readable names are listed without being read, so any bytes will do; put them concurrently.
    let s3 = moto().s3();
    common::moto::runtime().block_on(async {
        let puts: Vec<_> = readable
            .iter()
            .map(|name| {
                let request = s3
                    .put_object()
                    .bucket(&bucket)
                    .key(format!("ks/{name}.kms"))
                    .body(envelope.clone().into());
                tokio::spawn(request.send())
            })
            .collect();
        for put in puts {
            put.await.unwrap().expect("moto PutObject");
        }
    });
    let hashed = ["鍵".repeat(85), "z".repeat(255)];
    for name in &hashed {
        create_index_kms(&store, name, &none_blob()).unwrap();
    }
    let mut expected = readable.clone();
    expected.extend(hashed.iter().cloned());
    expected.sort();
    assert_eq!(list_index_kms(&store).unwrap(), expected);
}

// ---------------------------------------------------------------------------------------------
// Corrupt objects (moto)

#[test]
fn damaged_truncated_foreign_and_oversized_objects_are_corrupt() {
    let (bucket, store) = moto_store("ks");
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    let good = moto().get_object(&bucket, "ks/idx.kms");

    // Every truncation is corrupt (every length up to 64 bytes, then every 7th: ~90 requests).
    for len in (0..good.len()).filter(|l| *l < 64 || l % 7 == 0) {
        moto().put_object(&bucket, "ks/idx.kms", &good[..len]);
        assert_corrupt(&store, "idx");
    }
    // One bit flipped inside the wrapped KEK: the checksum catches it.
    let kek = aws_kms_blob(1).wrapped_kek;
    let at = good.windows(kek.len()).position(|w| w == kek).unwrap();
    let mut flipped = good.clone();
    flipped[at + 10] ^= 0x40;
    moto().put_object(&bucket, "ks/idx.kms", &flipped);
    assert_corrupt(&store, "idx");

    moto().put_object(&bucket, "ks/idx.kms", b"not an envelope at all, just text");
    let message = assert_corrupt(&store, "idx");
    assert!(message.contains("s3://"), "{message}");
    assert!(message.contains("/ks/idx.kms"), "{message}");

    // Another index's envelope copied over this one.
    push_index_kms(&store, "other", &aws_kms_blob(2)).unwrap();
    let other = moto().get_object(&bucket, "ks/other.kms");
    moto().put_object(&bucket, "ks/idx.kms", &other);
    assert!(assert_corrupt(&store, "idx").contains("belongs to index \"other\""));

    // Larger than any envelope: rejected from its Content-Length, never read.
    moto().put_object(&bucket, "ks/idx.kms", &vec![7u8; 70 * 1024]);
    let message = assert_corrupt(&store, "idx");
    assert!(
        message.contains("71680 bytes, more than any envelope"),
        "{message}"
    );

    // The good bytes read again.
    moto().put_object(&bucket, "ks/idx.kms", &good);
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
}

#[test]
fn a_body_longer_than_its_content_length_claims_is_still_bounded() {
    // The server claims 10 MB and sends 100 KB: rejected from the header, nothing buffered.
    let server = FakeS3::start(|_| Response::Lying {
        declared: 10_000_000,
        sent: vec![0; 100 * 1024],
    });
    let store = fake_store(&server, quick_timeouts());
    let message = assert_corrupt(&store, "idx");
    assert!(
        message.contains("10000000 bytes, more than any envelope (65536); not read"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Create races (moto)

#[test]
fn racing_creates_from_many_threads_have_exactly_one_winner() {
    let (bucket, store) = moto_store("race");
    for round in 0..5 {
        let index = format!("race-{round}");
        let threads = 12;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, barrier, index) = (store.clone(), barrier.clone(), index.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    create_index_kms(&store, &index, &aws_kms_blob(t as u8)).map(|()| t)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<usize> = results.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e:?}");
            }
        }
        assert_eq!(
            get_index_kms(&store, &index).unwrap(),
            aws_kms_blob(winners[0] as u8)
        );
    }
    assert_eq!(moto().list_keys(&bucket).len(), 5);
}

/// Environment variable that turns `child_race_creates` into a child process of the test below:
/// `<endpoint> <bucket> <index> <child number> <threads>`.
const RACE_CHILD: &str = "CYB_S3_RACE_CHILD";

#[test]
#[ignore = "child process of racing_creates_from_many_processes_have_exactly_one_winner"]
fn child_race_creates() {
    let spec = std::env::var(RACE_CHILD).expect("run by the parent test");
    let [endpoint, bucket, index, child, threads]: [&str; 5] = spec
        .split(' ')
        .collect::<Vec<_>>()
        .try_into()
        .expect("five fields");
    let (child, threads): (usize, usize) = (child.parse().unwrap(), threads.parse().unwrap());
    let store = StorageConfig::s3(bucket, options(endpoint, "race")).unwrap();
    // Set up the client before the barrier, so the race is between the PutObjects.
    let _ = get_index_kms(&store, "warm-up");
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, barrier, index) = (store.clone(), barrier.clone(), index.to_owned());
            std::thread::spawn(move || {
                let tag = (child * threads + t) as u8;
                barrier.wait();
                let outcome = match create_index_kms(&store, &index, &aws_kms_blob(tag)) {
                    Ok(()) => "WON".to_owned(),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => "LOST".to_owned(),
                    Err(e) => format!("ERROR {e:?}"),
                };
                println!("RESULT {tag} {outcome}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn racing_creates_from_many_processes_have_exactly_one_winner() {
    let (bucket, store) = moto_store("race");
    let (processes, threads) = (4, 3);
    let spawn = |child: usize| -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_race_creates",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                RACE_CHILD,
                format!("{} {bucket} shared {child} {threads}", moto().endpoint),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut children: Vec<Child> = (0..processes).map(spawn).collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    // Barrier: every child has its client ready before any is told to go.
    for lines in &mut outputs {
        loop {
            let line = lines.next().expect("child exited before READY").unwrap();
            // The harness may have printed "test child_race_creates ... " on the same line.
            if line.ends_with("READY") {
                break;
            }
        }
    }
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"GO\n").unwrap();
    }
    let mut results = Vec::new();
    for lines in outputs {
        for line in lines {
            let line = line.unwrap();
            if let Some(at) = line.find("RESULT ") {
                results.push(line[at + "RESULT ".len()..].to_owned());
            }
        }
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(results.len(), processes * threads, "{results:?}");
    let winners: Vec<&String> = results.iter().filter(|r| r.ends_with(" WON")).collect();
    let losers = results.iter().filter(|r| r.ends_with(" LOST")).count();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(losers, processes * threads - 1, "{results:?}");
    let tag: u8 = winners[0].split(' ').next().unwrap().parse().unwrap();
    assert_eq!(get_index_kms(&store, "shared").unwrap(), aws_kms_blob(tag));
}

// ---------------------------------------------------------------------------------------------
// Access: missing bucket, rejected credentials (moto)

#[test]
fn a_missing_bucket_is_access_denied_naming_bucket_key_operation_and_code() {
    let bucket = unique("missing");
    let store = StorageConfig::s3(&bucket, options(&moto().endpoint, "ks")).unwrap();
    let ops = every_operation(&store);
    for (operation, op) in ops {
        let err = op().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageAccessDenied, "{err:?}");
        let m = err.message();
        assert!(
            m.starts_with(&format!(
                "index \"idx\": S3 {operation} s3://{bucket}/ks/idx.kms failed: NoSuchBucket (HTTP \
                 404): "
            )),
            "{m}"
        );
        assert!(
            m.contains(&format!("bucket \"{bucket}\" does not exist")),
            "{m}"
        );
        assert!(!m.contains(S3_SECRET_KEY), "{m}");
    }
}

#[test]
fn listing_a_missing_bucket_is_access_denied_naming_bucket_prefix_and_code() {
    let bucket = unique("missing");
    let store = StorageConfig::s3(&bucket, options(&moto().endpoint, "ks")).unwrap();
    let err = list_index_kms(&store).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageAccessDenied, "{err:?}");
    let m = err.message();
    assert!(
        m.starts_with(&format!(
            "listing KMS envelopes: S3 ListObjectsV2 s3://{bucket}/ks/ failed: NoSuchBucket \
             (HTTP 404): "
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!("bucket \"{bucket}\" does not exist")),
        "{m}"
    );
}

#[test]
fn credentials_the_store_rejects_are_access_denied() {
    // A moto that checks credentials (every request authenticated): our keys are unknown to it.
    let strict = Moto::spawn(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let store = StorageConfig::s3("any-bucket", options(&strict.endpoint, "ks")).unwrap();
    for err in [
        create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap_err(),
        get_index_kms(&store, "idx").unwrap_err(),
        delete_index_kms(&store, "idx").unwrap_err(),
        list_index_kms(&store).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::StorageAccessDenied, "{err:?}");
        assert!(err.message().contains("InvalidAccessKeyId"), "{err:?}");
        assert!(err.message().contains("(HTTP 403)"), "{err:?}");
        assert!(!err.message().contains(S3_SECRET_KEY), "{err:?}");
    }
}

#[test]
fn s3_error_codes_map_to_access_denied_unavailable_or_io() {
    let cases = [
        (403, "AccessDenied", ErrorKind::StorageAccessDenied),
        (403, "SignatureDoesNotMatch", ErrorKind::StorageAccessDenied),
        (400, "ExpiredToken", ErrorKind::StorageAccessDenied),
        (503, "SlowDown", ErrorKind::StorageUnavailable),
        (500, "InternalError", ErrorKind::StorageUnavailable),
        (400, "InvalidRequest", ErrorKind::Io),
    ];
    for (status, code, kind) in cases {
        let server = FakeS3::start(move |_| Response::error(status, code, "scripted"));
        let store = fake_store(&server, quick_timeouts());
        let err = get_index_kms(&store, "idx").unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err:?}");
        assert!(
            err.message()
                .starts_with("index \"idx\": S3 GetObject s3://fake-bucket/ks/idx.kms failed: "),
            "{err:?}"
        );
        assert!(
            err.message()
                .contains(&format!("{code} (HTTP {status}): scripted")),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Listing (scripted)

#[test]
fn list_sends_prefix_and_delimiter_and_passes_each_continuation_token_back() {
    let server = FakeS3::start(|request| {
        if request.path.contains("continuation-token=page%2B2") {
            Response::list_page(&["ks/b.kms", "ks/sub/x.kms"], true, Some("page/3"))
        } else if request.path.contains("continuation-token=page%2F3") {
            Response::list_page(&["ks/c.kms"], false, None)
        } else {
            Response::list_page(&["ks/a.kms", "other/z.kms"], true, Some("page+2"))
        }
    });
    let store = fake_store(&server, quick_timeouts());
    assert_eq!(list_index_kms(&store).unwrap(), ["a", "b", "c"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for (i, r) in requests.iter().enumerate() {
        assert!(is_list(r), "{r:?}");
        assert!(
            r.path.starts_with("/fake-bucket?") || r.path.starts_with("/fake-bucket/?"),
            "{}",
            r.path
        );
        assert!(r.path.contains("prefix=ks%2F"), "{}", r.path);
        assert!(r.path.contains("delimiter=%2F"), "{}", r.path);
        assert_eq!(r.path.contains("continuation-token="), i > 0, "{}", r.path);
        assert_eq!(r.access_key_id(), Some(S3_ACCESS_KEY));
    }
}

#[test]
fn a_truncated_listing_without_a_new_token_is_io_not_a_partial_list_or_a_loop() {
    for (next, why) in [
        (None, "there is no continuation token"),
        (
            Some("same"),
            "page 2's continuation token repeats page 1's (the server is going round in a loop)",
        ),
    ] {
        let server = FakeS3::start(move |_| Response::list_page(&["ks/a.kms"], true, next));
        let store = fake_store(&server, quick_timeouts());
        let err = list_index_kms(&store).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
        assert_eq!(
            err.message(),
            format!(
                "listing KMS envelopes: S3 ListObjectsV2 s3://fake-bucket/ks/ failed: the \
                 listing is truncated but {why}"
            )
        );
        assert_eq!(server.requests().len(), if next.is_some() { 2 } else { 1 });
    }
}

#[test]
fn list_error_answers_map_to_access_denied_unavailable_or_io() {
    let cases = [
        (403, "AccessDenied", ErrorKind::StorageAccessDenied),
        (403, "InvalidAccessKeyId", ErrorKind::StorageAccessDenied),
        (503, "SlowDown", ErrorKind::StorageUnavailable),
        (500, "InternalError", ErrorKind::StorageUnavailable),
        (400, "InvalidArgument", ErrorKind::Io),
    ];
    for (status, code, kind) in cases {
        let server = FakeS3::start(move |_| Response::error(status, code, "scripted"));
        let store = fake_store(&server, quick_timeouts());
        let err = list_index_kms(&store).unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err:?}");
        assert_eq!(
            err.message(),
            format!(
                "listing KMS envelopes: S3 ListObjectsV2 s3://fake-bucket/ks/ failed: {code} \
                 (HTTP {status}): scripted"
            )
        );
    }
    // A body that is not a listing.
    let server = FakeS3::start(|_| {
        Response::Reply(
            200,
            vec![("content-type".into(), "application/xml".into())],
            b"<ListBucketResult><IsTruncated>maybe".to_vec(),
        )
    });
    let err = list_index_kms(&fake_store(&server, quick_timeouts())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert!(
        err.message()
            .starts_with("listing KMS envelopes: S3 ListObjectsV2 s3://fake-bucket/ks/ failed: "),
        "{err:?}"
    );
}

#[test]
fn a_listing_that_never_answers_is_unavailable_within_the_operation_timeout() {
    let server = FakeS3::start(|_| Response::Hang);
    let timeouts = quick_timeouts();
    let store = fake_store(&server, timeouts.clone());
    let started = Instant::now();
    let err = list_index_kms(&store).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert!(
        err.message().starts_with(
            "listing KMS envelopes: S3 ListObjectsV2 s3://fake-bucket/ks/ failed: storage \
             unavailable: "
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < timeouts.operation + Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn hashed_keys_are_read_and_a_vanished_one_is_skipped_a_bad_one_reported() {
    let long = "鍵".repeat(85);
    let hash = IndexName::new(&long).unwrap().storage_key();
    let object = format!("ks/{hash}.kms");
    // The envelope bytes this library writes for `long`, made through a disk store.
    let dir = tempfile::tempdir().unwrap();
    push_index_kms(
        &StorageConfig::disk(dir.path()).unwrap(),
        &long,
        &aws_kms_blob(1),
    )
    .unwrap();
    let envelope = std::fs::read(dir.path().join(format!("{hash}.kms"))).unwrap();
    let location = format!("s3://fake-bucket/{object}");

    let serve = |object_answer: fn(&[u8]) -> Response| {
        let envelope = envelope.clone();
        let key = object.clone();
        FakeS3::start(move |request| {
            if is_list(request) {
                Response::list_page(&["ks/short.kms", &key], false, None)
            } else {
                object_answer(&envelope)
            }
        })
    };

    let server = serve(Response::object);
    let store = fake_store(&server, quick_timeouts());
    assert_eq!(
        list_index_kms(&store).unwrap(),
        ["short".to_owned(), long.clone()]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one listing, one read: {requests:?}");
    assert_eq!(requests[1].method, "GET");
    assert!(requests[1]
        .path
        .starts_with(&format!("/fake-bucket/ks/{hash}.kms")));

    // Deleted between the listing and the read.
    let server = serve(|_| Response::error(404, "NoSuchKey", "gone"));
    assert_eq!(
        list_index_kms(&fake_store(&server, quick_timeouts())).unwrap(),
        ["short"]
    );

    let server = serve(|bytes| Response::object(&bytes[..bytes.len() - 1]));
    let err = list_index_kms(&fake_store(&server, quick_timeouts())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert!(
        err.message().starts_with(&format!(
            "listing KMS envelopes: stored KMS envelope at {location} is corrupt: "
        )),
        "{err:?}"
    );

    let server = serve(|_| Response::Lying {
        declared: 10_000_000,
        sent: vec![0; 1024],
    });
    let err = list_index_kms(&fake_store(&server, quick_timeouts())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert_eq!(
        err.message(),
        format!(
            "listing KMS envelopes: stored KMS envelope at {location} is corrupt: 10000000 bytes, \
             more than any envelope (65536); not read"
        )
    );

    for (status, code, kind) in [
        (403, "AccessDenied", ErrorKind::StorageAccessDenied),
        (503, "SlowDown", ErrorKind::StorageUnavailable),
    ] {
        let server = FakeS3::start({
            let key = object.clone();
            move |request| {
                if is_list(request) {
                    Response::list_page(&[&key], false, None)
                } else {
                    Response::error(status, code, "scripted")
                }
            }
        });
        let err = list_index_kms(&fake_store(&server, quick_timeouts())).unwrap_err();
        assert_eq!(err.kind(), kind, "{err:?}");
        assert_eq!(
            err.message(),
            format!(
                "listing KMS envelopes: S3 GetObject {location} failed: {code} (HTTP \
                 {status}): scripted"
            )
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile listings (scripted): every bound of a listing, each of which a server used to be able
// to stretch forever. Each call runs under a hang guard of HANG_GUARD (the bug looped forever);
// the limits themselves are documented in src/storage/s3/listing.rs.

/// Generous wall-clock bound for calls that looped forever before the listing was bounded.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and returns its result; fails the test if `f` has not returned
/// within `limit` (a hang guard, not a timing assertion: the thread is left running).
fn returns_within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    match result.recv_timeout(limit) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("still running after {limit:?}: the call hangs")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the call panicked"),
    }
}

/// `list_index_kms(store)` under the hang guard.
fn list_guarded(store: &StorageConfig) -> cyborgdb_kms::Result<Vec<String>> {
    let store = store.clone();
    returns_within(HANG_GUARD, move || list_index_kms(&store))
}

/// The message of a listing of the fake bucket's `ks/` that failed because `why`.
fn listing_failed(why: &str) -> String {
    format!("listing KMS envelopes: S3 ListObjectsV2 s3://fake-bucket/ks/ failed: {why}")
}

#[test]
fn alternating_continuation_tokens_are_a_loop_not_an_endless_listing() {
    let server = FakeS3::start(hostile_listing::alternating_tokens);
    let err = list_guarded(&fake_store(&server, quick_timeouts())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(
        err.message(),
        listing_failed(
            "the listing is truncated but page 3's continuation token repeats page 1's (the \
             server is going round in a loop)"
        )
    );
    let tokens: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.query_param("continuation-token"))
        .collect();
    assert_eq!(tokens, [None, Some("A".into()), Some("B".into())]);
}

#[test]
fn a_fresh_token_on_every_page_stops_at_the_page_limit() {
    // Default timeouts: the listing deadline (120 s) is far off, so the page limit ends it.
    let server = FakeS3::start(hostile_listing::fresh_tokens(1));
    let err = list_guarded(&fake_store(&server, AwsTimeouts::default())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(
        err.message(),
        listing_failed(
            "the listing is still truncated after 1000 pages, the most one listing reads"
        )
    );
    assert_eq!(server.requests().len(), 1000);
}

#[test]
fn more_envelopes_than_the_limit_is_io_not_a_partial_list() {
    // 1000 new keys a page: the 100 001st distinct key arrives on page 101.
    let server = FakeS3::start(hostile_listing::fresh_tokens(1000));
    let err = list_guarded(&fake_store(&server, AwsTimeouts::default())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(
        err.message(),
        listing_failed(
            "more than 100000 envelopes under the prefix (page 101), the most one listing collects"
        )
    );
    assert_eq!(server.requests().len(), 101);
}

#[test]
fn a_key_repeated_across_pages_is_listed_once() {
    let server = FakeS3::start(hostile_listing::repeated_key);
    let store = fake_store(&server, quick_timeouts());
    assert_eq!(list_guarded(&store).unwrap(), ["a", "b", "c"]);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_listing_page_that_trickles_is_cut_by_the_timeouts() {
    // One byte every 100 ms: the page would take over a minute; the attempt timeout (500 ms, body
    // included) cuts each of the 2 attempts.
    let server = FakeS3::start(|_| {
        Response::list_page(&["ks/a.kms"], false, None).trickled(1, Duration::from_millis(100))
    });
    let err = list_guarded(&fake_store(&server, quick_timeouts())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert!(
        err.message()
            .starts_with(&listing_failed("storage unavailable: timed out")),
        "{err:?}"
    );
    assert!(!server.requests().is_empty());
}

#[test]
fn slow_pages_with_fresh_tokens_end_at_the_listing_deadline() {
    // Each page trickles in (3 writes, 10 ms apart), well inside the 1 s attempt and operation
    // timeouts, and always names a fresh token: only the whole listing's deadline (8 x 1 s) ends
    // it.
    let fresh = hostile_listing::fresh_tokens(1);
    let server =
        FakeS3::start(move |request| fresh(request).trickled(250, Duration::from_millis(10)));
    let timeouts = AwsTimeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(1),
        operation: Duration::from_secs(1),
        max_attempts: Some(1),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    };
    let err = list_guarded(&fake_store(&server, timeouts)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    let pages_read: usize = err
        .message()
        .strip_prefix(&listing_failed(
            "storage unavailable: the listing did not finish within 8s (8 x the 1s operation \
             timeout; ",
        ))
        .and_then(|rest| rest.strip_suffix(" pages read)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err:?}"));
    // Every page read was requested; at most one more was in flight when the deadline hit.
    let requested = server.requests().len();
    assert!(pages_read > 1, "{err:?}");
    assert!(
        requested == pages_read || requested == pages_read + 1,
        "{requested} requests, {err:?}"
    );
}

#[test]
fn the_drift_check_on_a_looping_listing_is_an_error_not_a_hang() {
    use cyborgdb_kms::{KekCacheOptions, KekResolver, KmsClient, KmsClientOptions};
    let server = FakeS3::start(hostile_listing::alternating_tokens);
    let store = fake_store(&server, quick_timeouts());
    let client = KmsClient::new(KmsClientOptions::default()).unwrap();
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    let err = returns_within(HANG_GUARD, move || resolver.check_drift(&store, true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(
        err.message(),
        listing_failed(
            "the listing is truncated but page 3's continuation token repeats page 1's (the \
             server is going round in a loop)"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Conditional-write conflicts (scripted)

#[test]
fn a_409_conflict_on_create_is_retried_and_the_retry_decides() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let server = FakeS3::start(move |_| match counted.fetch_add(1, Ordering::SeqCst) {
        0 => Response::error(409, "ConditionalRequestConflict", "in flight"),
        _ => Response::error(412, "PreconditionFailed", "exists"),
    });
    let store = fake_store(&server, AwsTimeouts::default());
    let err = create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A conflict that never resolves: bounded by max_attempts, then STORAGE_UNAVAILABLE.
    let server = FakeS3::start(|_| Response::error(409, "ConditionalRequestConflict", "busy"));
    let store = fake_store(&server, AwsTimeouts::default());
    let err = create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert!(
        err.message().contains("gave up after 3 attempts"),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Bounded time: a server that never answers, an emulator that goes away

#[test]
fn a_server_that_never_answers_is_unavailable_within_the_operation_timeout() {
    let server = FakeS3::start(|_| Response::Hang);
    let timeouts = AwsTimeouts {
        connect: Duration::from_millis(300),
        attempt: Duration::from_millis(300),
        operation: Duration::from_secs(1),
        max_attempts: Some(2),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    };
    let store = fake_store(&server, timeouts.clone());
    let started = Instant::now();
    let err = get_index_kms(&store, "idx").unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert!(err.message().contains("timed out"), "{err:?}");
    // Bound: the operation timeout, plus generous slack for a loaded 2-core machine.
    assert!(
        elapsed < timeouts.operation + Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(!server.requests().is_empty());
}

#[test]
fn an_object_body_that_trickles_is_cut_by_the_attempt_timeout() {
    // The headers at once, then one byte of a 300-byte body every 100 ms (30 s in all). The
    // SDK's timeouts end when the headers arrive; the store bounds the body read itself.
    let server =
        FakeS3::start(|_| Response::object(&[0u8; 300]).trickled(1, Duration::from_millis(100)));
    let store = fake_store(&server, quick_timeouts());
    let err = returns_within(HANG_GUARD, move || get_index_kms(&store, "idx")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert_eq!(
        err.message(),
        "index \"idx\": S3 GetObject s3://fake-bucket/ks/idx.kms failed: storage unavailable: \
         reading the object body took longer than 500ms"
    );
}

#[test]
fn the_emulator_going_away_mid_run_is_unavailable_within_the_bound() {
    let doomed = Moto::spawn(&[]);
    doomed.create_bucket("doomed");
    let timeouts = quick_timeouts();
    let store = StorageConfig::s3(
        "doomed",
        S3Options {
            timeouts: timeouts.clone(),
            ..options(&doomed.endpoint, "ks")
        },
    )
    .unwrap();
    create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));

    doomed.kill();
    let bound = timeouts.operation * timeouts.max_attempts.unwrap() + Duration::from_secs(5);
    let ops = every_operation(&store);
    for (operation, op) in ops {
        let started = Instant::now();
        let err = op().unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            err.kind(),
            ErrorKind::StorageUnavailable,
            "{operation}: {err:?}"
        );
        assert!(
            err.message()
                .contains(&format!("S3 {operation} s3://doomed/ks/")),
            "{err:?}"
        );
        assert!(err.message().contains("storage unavailable"), "{err:?}");
        assert!(elapsed < bound, "{operation} took {elapsed:?}");
    }
    let started = Instant::now();
    let err = list_index_kms(&store).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert!(
        err.message().starts_with(
            "listing KMS envelopes: S3 ListObjectsV2 s3://doomed/ks/ failed: storage unavailable"
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < bound,
        "list took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Credentials on the wire (scripted recorder)

#[test]
fn explicit_s3_credentials_are_the_only_ones_sent_and_the_env_chain_is_not_used() {
    // The process environment has AWS_ACCESS_KEY_ID=testing (.cargo/config.toml).
    assert_eq!(std::env::var("AWS_ACCESS_KEY_ID").unwrap(), "testing");
    let server = FakeS3::start(|request| match request.method.as_str() {
        "GET" => Response::error(404, "NoSuchKey", "none"),
        _ => Response::ok(),
    });
    let explicit = StorageConfig::s3(
        "fake-bucket",
        S3Options {
            credentials: Some(S3Credentials {
                access_key: S3_ACCESS_KEY.into(),
                secret_key: S3_SECRET_KEY.into(),
                session_token: Some("s3-session-token".into()),
            }),
            ..options(&server.endpoint, "ks")
        },
    )
    .unwrap();
    create_index_kms(&explicit, "idx", &aws_kms_blob(1)).unwrap();
    push_index_kms(&explicit, "idx", &aws_kms_blob(1)).unwrap();
    assert_eq!(
        get_index_kms(&explicit, "idx").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    delete_index_kms(&explicit, "idx").unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.access_key_id(), Some(S3_ACCESS_KEY), "{r:?}");
        assert_eq!(r.header("x-amz-security-token"), Some("s3-session-token"));
        assert!(!format!("{r:?}").contains(S3_SECRET_KEY));
        // Path-style addressing: /<bucket>/<key>.
        assert!(r.path.starts_with("/fake-bucket/ks/idx.kms"), "{}", r.path);
    }
    // Create is conditional, push is not.
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].header("if-none-match"), Some("*"));
    assert_eq!(requests[1].method, "PUT");
    assert_eq!(requests[1].header("if-none-match"), None);

    // A custom endpoint never gets the AWS chain's identity: without explicit credentials the
    // store is refused before anything is sent.
    let server = FakeS3::start(|_| Response::ok());
    let err = StorageConfig::s3(
        "fake-bucket",
        S3Options {
            credentials: None,
            ..options(&server.endpoint, "ks")
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message()
            .starts_with("an S3 endpoint needs explicit credentials"),
        "{err:?}"
    );
    assert!(server.requests().is_empty());
}

/// Environment variable that turns `child_no_credentials_anywhere` into a child process.
const NO_CREDS_CHILD: &str = "CYB_S3_NO_CREDS_CHILD";

#[test]
#[ignore = "child process of no_credentials_anywhere_is_access_denied"]
fn child_no_credentials_anywhere() {
    // AWS S3 itself (no endpoint option), reached through AWS_ENDPOINT_URL set by the parent:
    // the default chain is consulted, finds nothing, and nothing is sent.
    let _ = std::env::var(NO_CREDS_CHILD).expect("run by the parent test");
    let store = StorageConfig::s3(
        "fake-bucket",
        S3Options {
            credentials: None,
            endpoint: None,
            timeouts: quick_timeouts(),
            ..options("http://unused", "ks")
        },
    )
    .unwrap();
    let err = get_index_kms(&store, "idx").unwrap_err();
    println!("KIND {:?}", err.kind());
    println!("MESSAGE {}", err.message());
}

#[test]
fn no_credentials_anywhere_is_access_denied() {
    let server = FakeS3::start(|_| Response::ok());
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_no_credentials_anywhere",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NO_CREDS_CHILD, &server.endpoint)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("KIND StorageAccessDenied"), "{stdout}");
    assert!(stdout.contains("no usable S3 credentials"), "{stdout}");
    assert!(server.requests().is_empty(), "nothing unsigned was sent");
}

// ---------------------------------------------------------------------------------------------
// Construction

#[test]
fn construction_validates_every_field_and_does_no_network_io() {
    let bad = |bucket: &str, options: S3Options| {
        let err = StorageConfig::s3(bucket, options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err:?}");
        err.message().to_owned()
    };
    assert!(bad("Bad_Bucket", S3Options::default()).starts_with("S3 bucket name \"Bad_Bucket\""));
    assert!(bad(
        "ok-bucket",
        S3Options {
            prefix: "/abs".into(),
            ..S3Options::default()
        }
    )
    .contains("must not start with '/'"));
    assert!(bad(
        "ok-bucket",
        S3Options {
            endpoint: Some("127.0.0.1:9000".into()),
            ..S3Options::default()
        }
    )
    .contains("must start with http:// or https://"));
    assert!(bad(
        "ok-bucket",
        S3Options {
            region: Some(String::new()),
            ..S3Options::default()
        }
    )
    .contains("region"));
    let message = bad(
        "ok-bucket",
        S3Options {
            credentials: Some(S3Credentials::new("AKID", "has space")),
            ..S3Options::default()
        },
    );
    assert_eq!(
        message,
        "S3 credentials: secret_key must be printable ASCII without spaces"
    );
    // An endpoint nothing listens on: construction succeeds (it does no I/O); use fails.
    let store = StorageConfig::s3(
        "ok-bucket",
        S3Options {
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials: Some(S3Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY)),
            timeouts: quick_timeouts(),
            ..S3Options::default()
        },
    )
    .unwrap();
    assert_eq!(format!("{store:?}"), "StorageConfig(s3://ok-bucket/)");
    assert_eq!(
        get_index_kms(&store, "idx").unwrap_err().kind(),
        ErrorKind::StorageUnavailable
    );
}
