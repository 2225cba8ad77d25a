//! Threads and descriptors per object (issue #10, finding 12): S3 stores, KMS clients and KEK
//! resolvers share one process-wide runtime and one HTTP connection pool, so a thousand of each
//! cost the process a fixed number of threads and descriptors — none per object, whether idle or
//! used — and they all work under `ulimit -n 1024`.
//!
//! Its own test binary, the tests serialized: they count the whole process's threads
//! (`/proc/self/task`) and descriptors (`/proc/self/fd`), so nothing else may run beside them.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::fake_s3::{FakeS3, Response};
use common::moto::{client_with, moto, unique};
use cyborgdb_kms::{
    get_index_kms, push_index_kms, AwsTimeouts, ErrorKind, KekCacheOptions, KekResolver, KmsClient,
    Provider, S3Credentials, S3Options, StorageConfig,
};

/// Held by each test: they measure the whole process.
static SERIAL: Mutex<()> = Mutex::new(());

const OBJECTS: usize = 1000;
/// The file-descriptor limit the finding was reported under.
const FD_LIMIT: u64 = 1024;
/// Worker threads of the library's process-wide runtime (src/runtime.rs).
const RUNTIME_WORKERS: usize = 2;
/// Threads that use the objects at once.
const CALLER_THREADS: usize = 4;
/// Allowance for threads and descriptors that do not depend on the object count: the runtime's
/// epoll / event descriptors, tokio's blocking-pool threads of the moment, pooled connections to
/// the emulator (at most one per concurrent caller).
const SLACK: usize = 12;

/// Threads and open descriptors of this process.
#[derive(Clone)]
struct Usage {
    threads: usize,
    fds: usize,
    /// Thread ids: a thread started since an earlier measurement has an id that one lacks.
    tids: BTreeSet<String>,
    /// `number -> target` of each descriptor (`socket:[inode]`, a path, ...): a descriptor opened
    /// since an earlier measurement shows a pair that one lacks, even when it reuses a freed
    /// number (a new socket has a new inode) or opens a file already open (at another number).
    fd_targets: BTreeSet<String>,
}

/// Counts only: the sets are long and only their differences matter.
impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{ threads: {}, fds: {} }}", self.threads, self.fds)
    }
}

impl Usage {
    fn now() -> Usage {
        let names = |dir: &str| -> Vec<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        let tids: BTreeSet<String> = names("/proc/self/task").into_iter().collect();
        let fds = names("/proc/self/fd");
        // The descriptor read_dir held is closed by now and its number shows no target; a
        // descriptor closed while we read shows none either.
        let fd_targets = fds
            .iter()
            .filter_map(|fd| {
                let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
                Some(format!("{fd} -> {}", target.to_string_lossy()))
            })
            .collect();
        Usage {
            threads: tids.len(),
            // Includes the descriptor read_dir itself held: the same in every measurement.
            fds: fds.len(),
            tids,
            fd_targets,
        }
    }

    /// Threads and descriptors present now that were not at `earlier`. Ones that ended in
    /// between (a previous test's pooled connection closed by its runtime, an idle blocking-pool
    /// thread exiting) are not counted: they are not this test's doing.
    fn started_since(&self, earlier: &Usage) -> (Vec<String>, Vec<String>) {
        (
            self.tids.difference(&earlier.tids).cloned().collect(),
            self.fd_targets
                .difference(&earlier.fd_targets)
                .cloned()
                .collect(),
        )
    }
}

/// Lowers this process's soft RLIMIT_NOFILE to `limit` (always permitted).
fn lower_fd_limit(limit: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        rl.rlim_cur = rl.rlim_cur.min(limit);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
    }
}

fn s3_options(endpoint: &str, prefix: &str) -> S3Options {
    S3Options {
        prefix: prefix.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
        timeouts: AwsTimeouts {
            operation: Duration::from_secs(30),
            ..AwsTimeouts::default()
        },
        ..S3Options::default()
    }
}

#[test]
fn a_thousand_stores_clients_and_resolvers_cost_a_fixed_number_of_threads_and_descriptors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The emulator and the test's own SDK runtime first: they are not the library's.
    let moto = moto();
    let bucket = unique("resources");
    moto.create_bucket(&bucket);
    let key_arn = moto.create_kms_key("us-east-1");
    lower_fd_limit(FD_LIMIT);

    let before = Usage::now();
    let stores: Vec<StorageConfig> = (0..OBJECTS)
        .map(|i| StorageConfig::s3(&bucket, s3_options(&moto.endpoint, &format!("p{i}"))))
        .collect::<Result<_, _>>()
        .expect("S3 stores under ulimit -n 1024");
    let clients: Vec<KmsClient> = (0..OBJECTS)
        .map(|_| client_with("prod", Provider::AwsKms, &key_arn))
        .collect();
    let resolvers: Vec<KekResolver> = clients
        .iter()
        .map(|client| {
            KekResolver::new(
                client.clone(),
                KekCacheOptions {
                    ttl: Some(Duration::from_secs(600)),
                    ..KekCacheOptions::default()
                },
            )
        })
        .collect::<cyborgdb_kms::Result<_>>()
        .expect("KEK resolvers under ulimit -n 1024");
    let created = Usage::now();

    // Use every object once: wrap through its client, store through its S3 store, resolve
    // through its resolver (which caches the KEK and so has something to sweep). From a few
    // threads at once, so the shared connection pool serves concurrent calls too.
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..CALLER_THREADS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= OBJECTS {
                    return;
                }
                let name = format!("index-{i}");
                let (blob, kek) = clients[i]
                    .wrap_new_kek(&name, "prod")
                    .unwrap_or_else(|e| panic!("wrap {i}: {e:?}"));
                push_index_kms(&stores[i], &name, &blob)
                    .unwrap_or_else(|e| panic!("push {i}: {e:?}"));
                let resolved = resolvers[i]
                    .resolve(&stores[i], &name)
                    .unwrap_or_else(|e| panic!("resolve {i}: {e:?}"));
                assert_eq!(resolved, kek);
            });
        }
    });
    let used = Usage::now();

    drop(resolvers);
    drop(clients);
    drop(stores);
    let dropped = Usage::now();

    eprintln!(
        "threads / fds for {OBJECTS} S3 stores + {OBJECTS} KMS clients + {OBJECTS} resolvers: \
         before {before:?}, created {created:?}, each used once {used:?}, dropped {dropped:?}"
    );
    for (phase, usage) in [
        ("created", &created),
        ("used", &used),
        ("dropped", &dropped),
    ] {
        assert!(
            usage.threads <= before.threads + RUNTIME_WORKERS + SLACK,
            "{phase}: {} threads, {} before",
            usage.threads,
            before.threads
        );
        assert!(
            usage.fds <= before.fds + SLACK,
            "{phase}: {} descriptors, {} before",
            usage.fds,
            before.fds
        );
    }
    // Objects that made no call start nothing at all.
    // Compared as sets, not counts: a connection left by an earlier call can close while we
    // measure, which lowered the count and failed a count comparison on a loaded CI machine.
    let (new_threads, new_fds) = created.started_since(&before);
    assert!(
        new_threads.is_empty() && new_fds.is_empty(),
        "creating objects started threads {new_threads:?} and opened descriptors {new_fds:?}"
    );
}

/// An idle keep-alive connection stays in its HTTP client's pool after a call. With a client per
/// store, every store that made a call kept a socket open (for the pool's 90 s idle timeout); with
/// the one process-wide client, sequential calls through any number of stores reuse one.
#[test]
fn stores_that_made_a_call_share_pooled_connections() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const STORES: usize = 200;
    let server = FakeS3::start(|_| Response::error(404, "NoSuchKey", "The key does not exist"));
    let stores: Vec<StorageConfig> = (0..STORES)
        .map(|i| StorageConfig::s3("bucket", s3_options(&server.endpoint, &format!("p{i}"))))
        .collect::<Result<_, _>>()
        .unwrap();
    let before = Usage::now();
    for store in &stores {
        let err = get_index_kms(store, "idx").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    }
    let after = Usage::now();
    eprintln!(
        "{STORES} S3 stores, one call each: {} connections open at the server; \
         descriptors {} -> {}",
        server.open_connections(),
        before.fds,
        after.fds
    );
    assert!(
        server.open_connections() <= 2,
        "{} connections kept open by {STORES} stores",
        server.open_connections()
    );
    assert!(after.fds <= before.fds + SLACK, "{after:?} vs {before:?}");
}
