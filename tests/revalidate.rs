//! Envelope revalidation across nodes (issue #13, part 3): another process's push, re-wrap or
//! delete in a shared store (a Disk root, an S3 prefix on moto) is seen by this process's
//! resolver after the revalidation interval — driven on a manual clock, never by sleeping — and
//! not before; an unchanged envelope is confirmed without a provider call; the interval comes
//! from the options or `CYB_KEK_REVALIDATE_SECS`, and hostile values are refused.
//!
//! The "other node" is this test binary re-run as a child process (`CYB_REVALIDATE_CHILD`), so
//! its writes are invisible to the parent's in-process write generations, exactly as a
//! different machine's would be.

mod common;

use common::local::local_client_with;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::moto::{moto, unique};
use cyborgdb_kms::{
    Clock, ErrorKind, KekCacheOptions, KekResolver, KmsClient, ManualClock, S3Credentials,
    S3Options, StorageConfig, MAX_REVALIDATE, REVALIDATE_ENV_VAR, STALE_IF_ERROR_ENV_VAR,
};

const INTERVAL: Duration = Duration::from_secs(2);
const CHILD: &str = "CYB_REVALIDATE_CHILD";

/// A client with slots `main` and `other`, their keys in `keys`.
fn client(keys: &Path) -> KmsClient {
    local_client_with(keys, &[("main", 1), ("other", 2)])
}

fn resolver(client: &KmsClient, revalidate: Duration) -> (KekResolver, ManualClock) {
    let clock = ManualClock::new();
    let resolver = KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(60)),
            clock: Clock::Manual(clock.clone()),
            revalidate: Some(revalidate),
            ..KekCacheOptions::default()
        },
    )
    .unwrap();
    (resolver, clock)
}

fn s3_options(endpoint: &str, prefix: &str) -> S3Options {
    S3Options {
        prefix: prefix.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
        ..S3Options::default()
    }
}

/// Where the shared store is, as the child gets it: `disk:<root>` or `s3:<endpoint> <bucket>`.
fn open_store(spec: &str) -> StorageConfig {
    if let Some(root) = spec.strip_prefix("disk:") {
        return StorageConfig::disk(root).unwrap();
    }
    let rest = spec.strip_prefix("s3:").unwrap();
    let (endpoint, bucket) = rest.split_once(' ').unwrap();
    StorageConfig::s3(bucket, s3_options(endpoint, "shared")).unwrap()
}

/// Runs `op` on `index` as another node (a child process) over the store `spec`.
fn other_node(keys: &Path, spec: &str, op: &str, index: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_node", "--nocapture"])
        .env(CHILD, format!("{op} {index} {}", keys.display()))
        .env("CYB_REVALIDATE_STORE", spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CHILD=done"),
        "{op}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The other node: `replace` (delete, then create with a fresh KEK), `rewrap` (same KEK through
/// slot `other`), or `delete`. Does nothing when not run as a child.
#[test]
fn child_node() {
    let Ok(command) = std::env::var(CHILD) else {
        return;
    };
    let mut words = command.splitn(3, ' ');
    let (op, index, keys) = (
        words.next().unwrap(),
        words.next().unwrap(),
        words.next().unwrap(),
    );
    let storage = open_store(&std::env::var("CYB_REVALIDATE_STORE").unwrap());
    let client = client(Path::new(keys));
    let (node, _clock) = resolver(&client, Duration::ZERO);
    match op {
        "replace" => {
            cyborgdb_kms::delete_index_kms(&storage, index).unwrap();
            node.create_index(&storage, index, Some("main"), None)
                .unwrap();
        }
        "rewrap" => {
            node.rewrap(&storage, index, "other").unwrap();
        }
        "delete" => cyborgdb_kms::delete_index_kms(&storage, index).unwrap(),
        other => panic!("unknown op {other}"),
    }
    println!("CHILD=done");
}

/// The scenario on one shared store: this node caches a KEK; the other node re-wraps, replaces
/// and deletes the envelope; each change is invisible until the interval passes and seen on
/// the first resolve after it, and unchanged envelopes cost no provider call.
fn changes_by_another_node_are_seen_after_the_interval(spec: &str) {
    let keys = tempfile::tempdir().unwrap();
    let client = client(keys.path());
    let storage = open_store(spec);
    let (node, clock) = resolver(&client, INTERVAL);
    let first = node
        .create_index(&storage, "idx", Some("main"), None)
        .unwrap();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    let calls = |node: &KekResolver| node.stats().provider_calls;
    assert_eq!(
        calls(&node),
        2,
        "one wrap at creation, one unwrap at the miss"
    );

    // Unchanged: past the interval the envelope is re-read and confirmed, no unwrap.
    clock.advance(INTERVAL);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(calls(&node), 2);
    assert_eq!(node.stats().misses, 2, "the check re-read the envelope");
    // ...and is fresh again for a whole interval: hits.
    clock.advance(INTERVAL - Duration::from_millis(1));
    let hits = node.stats().hits;
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(node.stats().hits, hits + 1);
    clock.advance(Duration::from_millis(1));

    // A re-wrap elsewhere (same KEK, new envelope): re-read, one unwrap, the same KEK.
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    other_node(keys.path(), spec, "rewrap", "idx");
    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(calls(&node), 2, "not seen before the interval");
    clock.advance(Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(calls(&node), 3, "the changed envelope was unwrapped");

    // A new KEK pushed elsewhere: the old one is served until the interval, then the new one.
    other_node(keys.path(), spec, "replace", "idx");
    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    clock.advance(Duration::from_millis(1));
    let second = node.resolve(&storage, "idx").unwrap();
    assert_ne!(second, first);
    assert_eq!(calls(&node), 4);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);

    // A delete elsewhere: served until the interval, then NotFound and the entry is gone.
    other_node(keys.path(), spec, "delete", "idx");
    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);
    clock.advance(Duration::from_millis(1));
    let entries = node.stats().entries;
    let err = node.resolve(&storage, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(node.stats().entries, entries - 1);
    assert_eq!(
        node.resolve(&storage, "idx").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(calls(&node), 4);
}

#[test]
fn disk_changes_by_another_process_are_seen_after_the_interval() {
    let root = tempfile::tempdir().unwrap();
    changes_by_another_node_are_seen_after_the_interval(&format!("disk:{}", root.path().display()));
}

#[test]
fn s3_changes_by_another_process_are_seen_after_the_interval() {
    let bucket = unique("cyb-reval");
    moto().create_bucket(&bucket);
    changes_by_another_node_are_seen_after_the_interval(&format!(
        "s3:{} {bucket}",
        moto().endpoint
    ));
}

/// Off (the default): another node's replacement is not seen within the TTL, as before.
#[test]
fn without_revalidation_another_nodes_change_waits_for_the_ttl() {
    let keys = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let spec = format!("disk:{}", root.path().display());
    let client = client(keys.path());
    let storage = open_store(&spec);
    let (node, clock) = resolver(&client, Duration::ZERO);
    assert_eq!(node.revalidate_interval(), Duration::ZERO);
    let first = node
        .create_index(&storage, "idx", Some("main"), None)
        .unwrap();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    other_node(keys.path(), &spec, "replace", "idx");
    clock.advance(Duration::from_secs(59));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    clock.advance(Duration::from_secs(1));
    assert_ne!(node.resolve(&storage, "idx").unwrap(), first);
}

#[test]
fn an_interval_above_the_bound_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let err = KekResolver::new(
        client(keys.path()),
        KekCacheOptions {
            revalidate: Some(MAX_REVALIDATE + Duration::from_millis(1)),
            ..KekCacheOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        err.message(),
        "the KEK envelope revalidation interval must be at most 3600s, not 3600.001s"
    );
}

#[test]
fn the_interval_comes_from_the_environment_when_not_given() {
    // Runs in a child process so the variable cannot leak into other tests.
    if let Ok(keys) = std::env::var("CYB_REVALIDATE_ENV_CHILD") {
        let options = KekCacheOptions::default();
        match KekResolver::new(client(Path::new(&keys)), options) {
            Ok(r) => println!("INTERVAL=ok:{}", r.revalidate_interval().as_secs()),
            Err(e) => println!("INTERVAL=err:{:?}:{}", e.kind(), e.message()),
        }
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let not_whole = |shown: &str| {
        format!(
            "err:InvalidConfig:{REVALIDATE_ENV_VAR} must be a whole number of seconds, not {shown}"
        )
    };
    let cases = [
        ("2", "ok:2".to_owned()),
        (" 5 ", "ok:5".to_owned()),
        ("", "ok:0".to_owned()),
        ("0", "ok:0".to_owned()),
        ("3600", "ok:3600".to_owned()),
        (
            "3601",
            "err:InvalidConfig:the KEK envelope revalidation interval must be at most 3600s, \
             not 3601s"
                .to_owned(),
        ),
        ("soon", not_whole("\"soon\"")),
        ("-1", not_whole("\"-1\"")),
        ("1.5", not_whole("\"1.5\"")),
        (
            "99999999999999999999",
            not_whole("\"99999999999999999999\""),
        ),
    ];
    for (value, expect) in cases {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "the_interval_comes_from_the_environment_when_not_given",
                "--nocapture",
            ])
            .env("CYB_REVALIDATE_ENV_CHILD", keys.path())
            .env(REVALIDATE_ENV_VAR, value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("INTERVAL={expect}\n")),
            "{value:?}: {stdout}"
        );
    }
}

/// The stored bytes of a fresh `main` envelope for `index`, made in a scratch Disk store, and
/// its KEK.
fn envelope_bytes(client: &KmsClient, index: &str) -> (Vec<u8>, cyborgdb_kms::Kek) {
    let root = tempfile::tempdir().unwrap();
    let storage = StorageConfig::disk(root.path()).unwrap();
    let (node, _clock) = resolver(client, Duration::ZERO);
    let kek = node
        .create_index(&storage, index, Some("main"), None)
        .unwrap();
    let file = std::fs::read_dir(root.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "kms"))
        .unwrap();
    (std::fs::read(file).unwrap(), kek)
}

/// How the fake S3 peer answers a GetObject.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    /// 304 with the ETag when `If-None-Match` names the current one, else 200.
    Honest,
    /// 304 without an ETag header to every conditional GET; 200 to the others.
    NotModifiedWithoutTag,
    /// Ignores `If-None-Match`: always 200 (with the same ETag even if the body changed).
    IgnoresCondition,
    /// 404 NoSuchKey.
    Gone,
}

struct PeerState {
    mode: Peer,
    body: Vec<u8>,
}

/// Against our fake S3 peer: a 304 naming the ETag is trusted (no body, no unwrap); a 304
/// without it is not (the object is read whole and compared); a server that ignores the
/// condition and returns a changed envelope under the old ETag is caught by the digest; a
/// deleted object drops the entry and fails `NotFound`.
#[test]
fn conditional_gets_trust_only_a_304_naming_the_etag() {
    use common::fake_s3::{is_list, FakeS3, Response};
    use std::sync::{Arc, Mutex};

    let keys = tempfile::tempdir().unwrap();
    let client = client(keys.path());
    let (first_bytes, first) = envelope_bytes(&client, "idx");
    let (second_bytes, second) = envelope_bytes(&client, "idx");
    assert_ne!(first, second);
    const ETAG: &str = "\"e1\"";
    let state = Arc::new(Mutex::new(PeerState {
        mode: Peer::Honest,
        body: first_bytes,
    }));
    let shared = Arc::clone(&state);
    let server = FakeS3::start(move |request| {
        assert!(
            !is_list(request) && request.method == "GET",
            "{}",
            request.path
        );
        let state = shared.lock().unwrap();
        let conditional = request.header("if-none-match");
        let tagged = |status: u16, body: Vec<u8>| {
            Response::Reply(status, vec![("etag".into(), ETAG.into())], body)
        };
        match (state.mode, conditional) {
            (Peer::Gone, _) => Response::error(404, "NoSuchKey", "The key does not exist"),
            (Peer::Honest, Some(tag)) if tag == ETAG => tagged(304, Vec::new()),
            (Peer::NotModifiedWithoutTag, Some(_)) => Response::Reply(304, Vec::new(), Vec::new()),
            _ => tagged(200, state.body.clone()),
        }
    });
    let storage = StorageConfig::s3("fake-bucket", s3_options(&server.endpoint, "ks")).unwrap();
    let (node, clock) = resolver(&client, INTERVAL);
    let set = |mode: Peer| state.lock().unwrap().mode = mode;
    let last_condition = || {
        server
            .requests()
            .iter()
            .map(|r| r.header("if-none-match").map(str::to_owned))
            .collect::<Vec<_>>()
    };

    // The first read is unconditional; the unwrap is counted.
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(last_condition(), [None]);
    assert_eq!(node.stats().provider_calls, 1);

    // Honest 304: one conditional GET, no unwrap.
    clock.advance(INTERVAL);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(last_condition(), [None, Some(ETAG.to_owned())]);
    assert_eq!(node.stats().provider_calls, 1);

    // A 304 without the ETag: not trusted, the object is read whole; still unchanged.
    set(Peer::NotModifiedWithoutTag);
    clock.advance(INTERVAL);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    assert_eq!(
        last_condition()[2..],
        [Some(ETAG.to_owned()), None],
        "a conditional GET, then a whole read"
    );
    assert_eq!(node.stats().provider_calls, 1);

    // A changed envelope under the old ETag, condition ignored: the digest tells, re-unwrap.
    {
        let mut state = state.lock().unwrap();
        state.mode = Peer::IgnoresCondition;
        state.body = second_bytes;
    }
    clock.advance(INTERVAL);
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);
    assert_eq!(node.stats().provider_calls, 2);
    // ...and within the interval it is served from memory.
    let requests = server.requests().len();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);
    assert_eq!(server.requests().len(), requests);

    // Expired (TTL): one unconditional read and an unwrap, never a conditional GET first.
    set(Peer::Honest);
    clock.advance(Duration::from_secs(60));
    let before = last_condition().len();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);
    assert_eq!(last_condition()[before..], [None]);
    assert_eq!(node.stats().provider_calls, 3);

    // Deleted: NotFound, the entry dropped.
    set(Peer::Gone);
    clock.advance(INTERVAL);
    assert_eq!(node.stats().entries, 1);
    let err = node.resolve(&storage, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(node.stats().entries, 0);
    assert_eq!(node.stats().provider_calls, 3);
}

/// The one envelope file in a Disk `root`.
fn envelope_file(root: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "kms"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Reports every open and read of one file (Linux inotify): what tells a stat from a read.
/// Events are queued when the open or read happens, so they are there once the call returns.
struct FileWatch {
    fd: libc::c_int,
}

impl FileWatch {
    fn new(path: &Path) -> FileWatch {
        use std::os::unix::ffi::OsStrExt;
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let watch =
            unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) };
        assert!(
            watch >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        FileWatch { fd }
    }

    /// How many events (opens and reads) were queued since the last call.
    fn take_events(&self) -> usize {
        let mut events = 0;
        let mut buffer = [0u8; 4096];
        loop {
            let n = unsafe { libc::read(self.fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                return events;
            }
            let mut offset = 0;
            while offset < n as usize {
                // struct inotify_event: wd, mask, cookie, len, then `len` bytes of name.
                let len = u32::from_ne_bytes(buffer[offset + 12..offset + 16].try_into().unwrap());
                offset += 16 + len as usize;
                events += 1;
            }
        }
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// A Disk envelope last modified an hour ago (older than the window in which a file's stamp is
/// not trusted), cached by a resolver with revalidation; returns the resolver, its clock, the
/// store, the envelope's path and its KEK.
fn cached_old_disk_envelope(
    keys: &Path,
    root: &Path,
) -> (
    KekResolver,
    ManualClock,
    StorageConfig,
    std::path::PathBuf,
    cyborgdb_kms::Kek,
) {
    let client = client(keys);
    let storage = StorageConfig::disk(root).unwrap();
    let (node, clock) = resolver(&client, INTERVAL);
    let kek = node
        .create_index(&storage, "idx", Some("main"), None)
        .unwrap();
    let path = envelope_file(root);
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    (node, clock, storage, path, kek)
}

/// Past the interval, an unchanged Disk envelope is confirmed by a stat: the file is neither
/// opened nor read, and no provider call is made.
#[test]
fn an_unchanged_disk_envelope_is_confirmed_without_reading_it() {
    let keys = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (node, clock, storage, path, kek) = cached_old_disk_envelope(keys.path(), root.path());
    let watch = FileWatch::new(&path);
    let before = node.stats();
    for _ in 0..3 {
        clock.advance(INTERVAL);
        assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    }
    let after = node.stats();
    assert_eq!(
        after.misses,
        before.misses + 3,
        "each check went past the cache"
    );
    assert_eq!(after.provider_calls, before.provider_calls);
    assert_eq!(watch.take_events(), 0, "the envelope was opened or read");
    // The watch does see a read: a plain get opens and reads the file.
    cyborgdb_kms::get_index_kms(&storage, "idx").unwrap();
    assert!(watch.take_events() >= 2);
}

/// Another process rewrites the envelope in place — same inode, same size, other bytes (an
/// envelope of the same index with a fresh KEK): the new modification time gives it away and
/// the new KEK is served after the interval.
#[test]
fn a_same_size_in_place_rewrite_by_another_process_is_seen() {
    use std::os::unix::fs::MetadataExt;
    let keys = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (node, clock, storage, path, first) = cached_old_disk_envelope(keys.path(), root.path());
    // The replacement: the same index's envelope with a new KEK, made in another root.
    let elsewhere = tempfile::tempdir().unwrap();
    let other_storage = StorageConfig::disk(elsewhere.path()).unwrap();
    let second = node
        .create_index(&other_storage, "idx", Some("main"), None)
        .unwrap();
    assert_ne!(second, first);
    let replacement = envelope_file(elsewhere.path());
    let old = std::fs::metadata(&path).unwrap();
    assert_eq!(std::fs::metadata(&replacement).unwrap().len(), old.len());
    let status = Command::new("dd")
        .arg(format!("if={}", replacement.display()))
        .arg(format!("of={}", path.display()))
        .args(["conv=notrunc", "status=none"])
        .status()
        .unwrap();
    assert!(status.success());
    let new = std::fs::metadata(&path).unwrap();
    assert_eq!((new.ino(), new.len()), (old.ino(), old.len()));

    clock.advance(INTERVAL - Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), first);
    clock.advance(Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), second);
}

/// How the stale-if-error peer answers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Outage {
    /// The envelope, 304 to a conditional GET naming its ETag.
    Up,
    /// 503 ServiceUnavailable to everything.
    Unavailable,
    /// Never answers.
    Hanging,
    /// 404 NoSuchKey.
    Gone,
    /// 403 AccessDenied.
    Denied,
    /// 200 with bytes that are no envelope (a changed, corrupt object).
    Garbage,
}

/// A fake S3 serving `idx`'s envelope in `mode` (DELETEs always succeed), a store on it with
/// short timeouts, and a resolver over `client` (TTL 60 s, interval [`INTERVAL`]) with
/// `stale_if_error`.
fn outage_fixture(
    client: &KmsClient,
    stale_if_error: Option<bool>,
) -> (
    common::fake_s3::FakeS3,
    std::sync::Arc<std::sync::Mutex<Outage>>,
    StorageConfig,
    KekResolver,
    ManualClock,
    cyborgdb_kms::Kek,
) {
    use common::fake_s3::{FakeS3, Response};
    use std::sync::{Arc, Mutex};
    const ETAG: &str = "\"v1\"";
    let (body, kek) = envelope_bytes(client, "idx");
    let mode = Arc::new(Mutex::new(Outage::Up));
    let shared = Arc::clone(&mode);
    let server = FakeS3::start(move |request| {
        if request.method == "DELETE" {
            return Response::Reply(204, Vec::new(), Vec::new());
        }
        match *shared.lock().unwrap() {
            Outage::Up if request.header("if-none-match") == Some(ETAG) => {
                Response::Reply(304, vec![("etag".into(), ETAG.into())], Vec::new())
            }
            Outage::Up => Response::Reply(200, vec![("etag".into(), ETAG.into())], body.clone()),
            Outage::Unavailable => Response::error(503, "ServiceUnavailable", "try later"),
            Outage::Hanging => Response::Hang,
            Outage::Gone => Response::error(404, "NoSuchKey", "The key does not exist"),
            Outage::Denied => Response::error(403, "AccessDenied", "Access Denied"),
            Outage::Garbage => Response::Reply(
                200,
                vec![("etag".into(), "\"v2\"".into())],
                b"not an envelope".to_vec(),
            ),
        }
    });
    let options = S3Options {
        timeouts: cyborgdb_kms::AwsTimeouts {
            connect: Duration::from_millis(500),
            attempt: Duration::from_millis(300),
            operation: Duration::from_secs(1),
            max_attempts: Some(2),
            retry_mode: None,
            initial_backoff: Duration::from_millis(10),
        },
        ..s3_options(&server.endpoint, "ks")
    };
    let storage = StorageConfig::s3("fake-bucket", options).unwrap();
    let clock = ManualClock::new();
    let node = KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(60)),
            clock: Clock::Manual(clock.clone()),
            revalidate: Some(INTERVAL),
            stale_if_error,
            ..KekCacheOptions::default()
        },
    )
    .unwrap();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    (server, mode, storage, node, clock, kek)
}

/// Stale-if-error (the default): a check that meets a 503 or a hanging store serves the cached
/// KEK, counted and logged, and is repeated only an interval later; the TTL still ends it.
#[test]
fn a_store_outage_serves_the_cached_kek_until_the_ttl() {
    common::log_scan::watch(&[]);
    let keys = tempfile::tempdir().unwrap();
    let client = client(keys.path());
    let (server, mode, storage, node, clock, kek) = outage_fixture(&client, None);
    assert!(node.stale_if_error(), "on by default");
    let set = |outage: Outage| *mode.lock().unwrap() = outage;
    let requests = || server.requests().len();
    let warnings = || {
        common::log_scan::lines()
            .into_iter()
            .filter(|line| line.contains("stale-if-error"))
            .collect::<Vec<_>>()
    };

    set(Outage::Unavailable);
    clock.advance(INTERVAL);
    let before = requests();
    assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    assert!(requests() > before, "the store was asked");
    assert_eq!(node.stats().stale_served, 1);
    assert_eq!(node.stats().errors, 0);
    let logged = warnings();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].starts_with(
            "WARN cyborgdb_kms::resolver index \"idx\": checking its KMS envelope failed \
             (StorageUnavailable); serving the cached KEK (stale-if-error) for at most 58 s more, \
             checking again in 2 s: "
        ),
        "{logged:?}"
    );

    // Within the next interval: hits, the store is not asked, nothing more is logged.
    clock.advance(INTERVAL - Duration::from_millis(1));
    let before = requests();
    let hits = node.stats().hits;
    assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    assert_eq!(node.stats().hits, hits + 1);
    assert_eq!(requests(), before);
    assert_eq!(warnings().len(), 1);

    // At the interval: asked again; now it hangs — served stale again.
    set(Outage::Hanging);
    clock.advance(Duration::from_millis(1));
    assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    assert_eq!(node.stats().stale_served, 2);
    assert_eq!(warnings().len(), 2);

    // Back up: a 304, fresh again, no provider call.
    set(Outage::Up);
    clock.advance(INTERVAL);
    let calls = node.stats().provider_calls;
    assert_eq!(node.resolve(&storage, "idx").unwrap(), kek);
    assert_eq!(node.stats().stale_served, 2);
    assert_eq!(node.stats().provider_calls, calls);

    // The TTL bounds it: once the entry expired, the outage fails the resolve.
    set(Outage::Unavailable);
    clock.advance(Duration::from_secs(60));
    let err = node.resolve(&storage, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert_eq!(node.stats().stale_served, 2);
}

/// Never stale on an answer: a deleted, access-denied or changed (here corrupt) envelope fails
/// the resolve at the interval, as without stale-if-error.
#[test]
fn stale_if_error_never_hides_an_answer_from_the_store() {
    let keys = tempfile::tempdir().unwrap();
    let client = client(keys.path());
    for (outage, kind) in [
        (Outage::Gone, ErrorKind::NotFound),
        (Outage::Denied, ErrorKind::StorageAccessDenied),
        (Outage::Garbage, ErrorKind::Corrupt),
    ] {
        let (_server, mode, storage, node, clock, _kek) = outage_fixture(&client, Some(true));
        *mode.lock().unwrap() = outage;
        clock.advance(INTERVAL);
        let err = node.resolve(&storage, "idx").unwrap_err();
        assert_eq!(err.kind(), kind, "{outage:?}: {err:?}");
        assert_eq!(node.stats().stale_served, 0, "{outage:?}");
    }
}

/// Off: the check's error fails the resolve. On, but after a write through this process (a
/// delete): the KEK is not served either, since this process changed the envelope itself.
#[test]
fn stale_if_error_off_or_after_an_own_write_fails_the_resolve() {
    let keys = tempfile::tempdir().unwrap();
    let client = client(keys.path());
    let (_server, mode, storage, node, clock, _kek) = outage_fixture(&client, Some(false));
    assert!(!node.stale_if_error());
    *mode.lock().unwrap() = Outage::Unavailable;
    clock.advance(INTERVAL);
    let err = node.resolve(&storage, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert_eq!(node.stats().stale_served, 0);

    let (_server, mode, storage, node, _clock, _kek) = outage_fixture(&client, Some(true));
    cyborgdb_kms::delete_index_kms(&storage, "idx").unwrap();
    *mode.lock().unwrap() = Outage::Unavailable;
    let err = node.resolve(&storage, "idx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err:?}");
    assert_eq!(node.stats().stale_served, 0);
}

#[test]
fn stale_if_error_comes_from_the_environment_when_not_given() {
    // Runs in a child process so the variable cannot leak into other tests.
    if let Ok(keys) = std::env::var("CYB_STALE_ENV_CHILD") {
        match KekResolver::new(client(Path::new(&keys)), KekCacheOptions::default()) {
            Ok(r) => println!("STALE=ok:{}", r.stale_if_error()),
            Err(e) => println!("STALE=err:{:?}:{}", e.kind(), e.message()),
        }
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let cases = [
        (None, "ok:true"),
        (Some(""), "ok:true"),
        (Some("1"), "ok:true"),
        (Some(" 0 "), "ok:false"),
        (
            Some("yes"),
            "err:InvalidConfig:CYB_KEK_STALE_IF_ERROR must be 1 or 0, not \"yes\"",
        ),
    ];
    for (value, expect) in cases {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "stale_if_error_comes_from_the_environment_when_not_given",
                "--nocapture",
            ])
            .env("CYB_STALE_ENV_CHILD", keys.path())
            .env_remove(STALE_IF_ERROR_ENV_VAR);
        if let Some(value) = value {
            child.env(STALE_IF_ERROR_ENV_VAR, value);
        }
        let out = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("STALE={expect}\n")),
            "{value:?}: {stdout}"
        );
    }
}
