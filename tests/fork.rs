//! fork() (issue #10, finding 11): in a child forked after the library's runtime was running,
//! calls through objects created before the fork fail at once with `ForkedProcess` (C code 902)
//! instead of hanging, freeing them prints nothing and does not panic, objects created in the
//! child work against moto, and memory and disk stores keep working.
//!
//! `harness = false` (Cargo.toml): each scenario forks from `main`'s thread, with no test-harness
//! threads around and no output capture, so the child's stderr is the real file descriptor 2 —
//! redirected into a pipe the parent reads. Every scenario runs under a generous hang guard: a
//! child that does not exit within it is killed and the scenario fails as "hung".

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::moto::{client_with, moto, unique};
use cyborgdb_kms::audit::{verify_audit, AuditOptions};
use cyborgdb_kms::ffi::cyb_result;
use cyborgdb_kms::{
    delete_index_kms, get_index_kms, list_index_kms, push_index_kms, AwsTimeouts, Clock, ErrorKind,
    KekCacheOptions, KekResolver, KmsBlob, KmsClient, ManualClock, Provider, S3Credentials,
    S3Options, StorageConfig,
};

/// How long a child may take before it counts as hung (the bug hung forever).
const HANG_GUARD: Duration = Duration::from_secs(60);
const REGION: &str = "us-east-1";

/// What a forked child did.
struct ChildOutcome {
    /// Its exit code, or `None` if it was killed (hung, or died of a signal).
    exit_code: Option<i32>,
    hung: bool,
    stderr: String,
}

/// Forks; the child runs `scenario` with its stderr redirected into a pipe, then `_exit`s: 0 if
/// the scenario returned `Ok`, 1 after writing the `Err` message to stderr, 101 if it panicked.
/// The parent reads the pipe until the child closes it (exits), killing the child after
/// [`HANG_GUARD`].
fn in_forked_child(scenario: impl FnOnce() -> Result<(), String>) -> ChildOutcome {
    let mut fds = [0; 2];
    // SAFETY: plain syscalls; the child only runs `scenario` and `_exit`s.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let (read_end, write_end) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::dup2(write_end.as_raw_fd(), 2);
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario)) {
                Ok(Ok(())) => 0,
                Ok(Err(message)) => {
                    let line = format!("{message}\n");
                    libc::write(2, line.as_ptr().cast(), line.len());
                    1
                }
                Err(_) => 101,
            };
            libc::_exit(code);
        }
        drop(write_end);
        let (stderr, hung) = read_until_closed(&read_end, Instant::now() + HANG_GUARD);
        if hung {
            libc::kill(pid, libc::SIGKILL);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        ChildOutcome {
            exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            hung,
            stderr,
        }
    }
}

/// Reads `fd` until EOF or `deadline`; returns what was read and whether the deadline passed.
fn read_until_closed(fd: &OwnedFd, deadline: Instant) -> (String, bool) {
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&out).into_owned(), true);
        }
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, timeout_ms) } <= 0 {
            continue; // timeout (re-checked above) or EINTR
        }
        let mut buffer = [0u8; 4096];
        // SAFETY: reads into a local buffer of that size.
        let n = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if n <= 0 {
            return (String::from_utf8_lossy(&out).into_owned(), false);
        }
        out.extend_from_slice(&buffer[..n as usize]);
    }
}

/// Runs `scenario` in a forked child, requires a clean exit 0 with nothing on stderr, and prints
/// the verdict; returns the failure, if any.
fn run_in_child(name: &str, scenario: impl FnOnce() -> Result<(), String>) -> Option<String> {
    if !selected(name) {
        return None;
    }
    let started = Instant::now();
    let outcome = in_forked_child(scenario);
    let failure = if outcome.hung {
        Some(format!("the child hung (killed after {HANG_GUARD:?})"))
    } else if outcome.exit_code != Some(0) {
        Some(format!("the child exited with {:?}", outcome.exit_code))
    } else if !outcome.stderr.is_empty() {
        Some("the child wrote to stderr".to_owned())
    } else {
        None
    };
    match &failure {
        None => println!("test {name} ... ok ({:?})", started.elapsed()),
        Some(why) => println!(
            "test {name} ... FAILED: {why}; stderr: {:?}",
            outcome.stderr
        ),
    }
    failure.map(|why| format!("{name}: {why}"))
}

/// `Err` unless `result` failed with `ForkedProcess` (C code 902) naming `object`.
fn expect_forked<T>(
    what: &str,
    object: &str,
    result: cyborgdb_kms::Result<T>,
) -> Result<(), String> {
    let err = match result {
        Ok(_) => {
            return Err(format!(
                "{what}: succeeded in the child, expected ForkedProcess"
            ))
        }
        Err(err) => err,
    };
    if err.kind() != ErrorKind::ForkedProcess {
        return Err(format!("{what}: {err:?}, expected ForkedProcess"));
    }
    if cyb_result::from(err.kind()) != cyb_result::CYB_RESULT_FORKED_PROCESS
        || cyb_result::CYB_RESULT_FORKED_PROCESS as u32 != 902
    {
        return Err(format!("{what}: ForkedProcess does not map to C code 902"));
    }
    let expected = format!("this {object} was created in process {}", parent_pid());
    if !err.message().contains(&expected) || !err.message().contains("fork") {
        return Err(format!(
            "{what}: message {:?} lacks {expected:?}",
            err.message()
        ));
    }
    Ok(())
}

fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}

fn s3_options() -> S3Options {
    S3Options {
        region: Some(REGION.into()),
        endpoint: Some(moto().endpoint.clone()),
        credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
        timeouts: AwsTimeouts::default(),
        ..S3Options::default()
    }
}

fn kms_client(key_arn: &str) -> KmsClient {
    client_with("prod", Provider::AwsKms, key_arn)
}

fn resolver(client: &KmsClient) -> KekResolver {
    KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(600)),
            ..KekCacheOptions::default()
        },
    )
    .unwrap()
}

/// Objects made before the fork, each already used, so the runtime, the SDK clients, their
/// connection pools and the cache's sweeper all exist when the child is forked.
struct PreFork {
    bucket: String,
    key_arn: String,
    s3: StorageConfig,
    client: KmsClient,
    /// Its cache runs on `clock`, so the child can expire the cached KEK at will.
    resolver: KekResolver,
    clock: ManualClock,
    /// The envelope of "idx" (in `s3`, `disk` and `memory`), and the KEK inside it.
    blob: KmsBlob,
    disk: StorageConfig,
    /// `disk` with the custody audit on; one audited push made (its record synced on the
    /// runtime's blocking pool, which the child does not have).
    audited_disk: StorageConfig,
    memory: StorageConfig,
    _dir: tempfile::TempDir,
}

fn pre_fork() -> PreFork {
    let moto = moto();
    let bucket = unique("fork");
    moto.create_bucket(&bucket);
    let key_arn = moto.create_kms_key(REGION);
    let s3 = StorageConfig::s3(&bucket, s3_options()).unwrap();
    let client = kms_client(&key_arn);
    let clock = ManualClock::new();
    let resolver = KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(600)),
            clock: Clock::Manual(clock.clone()),
            ..KekCacheOptions::default()
        },
    )
    .unwrap();
    let (blob, kek) = client.wrap_new_kek("idx", "prod").unwrap();
    push_index_kms(&s3, "idx", &blob).unwrap();
    assert_eq!(resolver.resolve(&s3, "idx").unwrap(), kek);
    assert_eq!(resolver.stats().entries, 1, "the KEK is cached");
    let dir = tempfile::tempdir().unwrap();
    let disk = StorageConfig::disk(dir.path().join("root")).unwrap();
    push_index_kms(&disk, "idx", &blob).unwrap();
    let audited_disk = disk.with_audit(&AuditOptions::new("fork-test")).unwrap();
    push_index_kms(&audited_disk, "audited", &blob).unwrap();
    let memory = StorageConfig::memory();
    push_index_kms(&memory, "idx", &blob).unwrap();
    PreFork {
        bucket,
        key_arn,
        s3,
        client,
        resolver,
        clock,
        blob,
        disk,
        audited_disk,
        memory,
        _dir: dir,
    }
}

const SCENARIOS: [&str; 8] = [
    "a_pre_fork_s3_store_fails_with_forked_process",
    "a_pre_fork_aws_kms_client_fails_with_forked_process",
    "use_after_fork_is_logged_as_a_warning",
    "setting_the_log_callback_works_in_a_child_forked_during_a_callback",
    "a_pre_fork_resolver_fails_even_for_a_cached_kek",
    "memory_and_disk_stores_keep_working_in_the_child",
    "objects_created_in_the_child_work_against_moto",
    "freeing_pre_fork_objects_in_the_child_is_silent",
];

/// Whether scenario `name` matches the command line's filter (its first non-flag argument, as
/// `cargo test <filter>` passes it), like libtest's name filter.
fn selected(name: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    filter.is_none_or(|f| name.contains(&f))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        SCENARIOS
            .iter()
            .filter(|name| selected(name))
            .for_each(|name| println!("{name}: test"));
        return;
    }
    if !SCENARIOS.iter().any(|name| selected(name)) {
        return;
    }
    let objects = pre_fork();
    let store = &format!("S3 store s3://{}/", objects.bucket);
    let mut failures = Vec::new();

    failures.extend(run_in_child(
        "a_pre_fork_s3_store_fails_with_forked_process",
        || {
            expect_forked("get", store, get_index_kms(&objects.s3, "idx"))?;
            expect_forked(
                "push",
                store,
                push_index_kms(&objects.s3, "idx", &objects.blob),
            )?;
            expect_forked("delete", store, delete_index_kms(&objects.s3, "idx"))?;
            expect_forked("list", store, list_index_kms(&objects.s3))
        },
    ));

    failures.extend(run_in_child(
        "a_pre_fork_aws_kms_client_fails_with_forked_process",
        || {
            let client = &objects.client;
            expect_forked(
                "unwrap",
                "KMS client",
                client.unwrap_kek("idx", &objects.blob),
            )?;
            expect_forked("wrap", "KMS client", client.wrap_new_kek("idx", "prod"))
        },
    ));

    failures.extend(run_in_child(
        "use_after_fork_is_logged_as_a_warning",
        || {
            let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let kept = std::sync::Arc::clone(&lines);
            cyborgdb_kms::set_log_callback(cyborgdb_kms::LogLevel::Warn, move |record| {
                kept.lock().unwrap().push(format!(
                    "{} {} {}",
                    record.level.name(),
                    record.target,
                    record.message
                ));
            })
            .map_err(|e| format!("set_log_callback: {e:?}"))?;
            expect_forked(
                "unwrap",
                "KMS client",
                objects.client.unwrap_kek("idx", &objects.blob),
            )?;
            cyborgdb_kms::clear_log_callback().map_err(|e| format!("clear: {e:?}"))?;
            let lines = lines.lock().unwrap();
            let expected = format!(
            "WARN cyborgdb_kms::runtime a KMS client created in process {} was used in process {}, \
             forked from it: refused",
            parent_pid(),
            std::process::id()
        );
            check(*lines == [expected.clone()], || {
                format!("logged {lines:?}, expected [{expected:?}]")
            })
        },
    ));

    // Another thread of the parent is inside the log callback (holding its lock) when the
    // process forks. Without the library's fork handlers the child inherits the held lock and
    // setting the callback there waits forever (the hang guard kills it).
    let name = "setting_the_log_callback_works_in_a_child_forked_during_a_callback";
    if selected(name) {
        let (entered, callback_entered) = std::sync::mpsc::channel();
        let entered = std::sync::Mutex::new(Some(entered));
        cyborgdb_kms::set_log_callback(cyborgdb_kms::LogLevel::Warn, move |_| {
            if let Some(entered) = entered.lock().unwrap().take() {
                entered.send(()).unwrap();
                // Still inside the callback when the main thread forks (it waits for `entered`).
                std::thread::sleep(Duration::from_millis(300));
            }
        })
        .unwrap();
        failures.extend(std::thread::scope(|scope| {
            scope.spawn(|| {
                // A failed resolve logs a Warn event on this thread.
                let _ = objects.resolver.resolve(&objects.memory, "no-such-index");
            });
            callback_entered
                .recv_timeout(HANG_GUARD)
                .expect("the failed resolve reached the log callback");
            run_in_child(name, || {
                cyborgdb_kms::set_log_callback(cyborgdb_kms::LogLevel::Warn, |_| {})
                    .map_err(|e| format!("set_log_callback in the child: {e:?}"))?;
                cyborgdb_kms::clear_log_callback()
                    .map_err(|e| format!("clear_log_callback in the child: {e:?}"))
            })
        }));
        cyborgdb_kms::clear_log_callback().unwrap();
    }

    failures.extend(run_in_child(
        "a_pre_fork_resolver_fails_even_for_a_cached_kek",
        || {
            let r = &objects.resolver;
            let what = "KEK resolver";
            expect_forked("resolve", what, r.resolve(&objects.s3, "idx"))?;
            expect_forked("resolve from disk", what, r.resolve(&objects.disk, "idx"))?;
            let created = r.create_index(&objects.disk, "new", Some("prod"), None);
            expect_forked("create", what, created)?;
            expect_forked("rewrap", what, r.rewrap(&objects.disk, "idx", "prod"))?;
            expect_forked("drift", what, r.check_drift(&objects.disk, true))?;
            check(!r.invalidate(&objects.s3, "idx"), || {
                "invalidate acted".into()
            })?;
            check(r.invalidate_all() == 0, || "invalidate_all acted".into())?;
            // The cached KEK is now expired: a purge that acted would drop it (and return 1).
            objects.clock.advance(Duration::from_secs(600));
            check(r.purge_expired() == 0, || "purge_expired acted".into())
        },
    ));

    failures.extend(run_in_child(
        "memory_and_disk_stores_keep_working_in_the_child",
        || {
            for (name, store) in [
                ("memory", &objects.memory),
                ("disk", &objects.disk),
                ("audited disk", &objects.audited_disk),
            ] {
                let got = get_index_kms(store, "idx").map_err(|e| format!("{name} get: {e:?}"))?;
                check(got == objects.blob, || format!("{name}: another envelope"))?;
                push_index_kms(store, "other", &objects.blob)
                    .map_err(|e| format!("{name} push: {e:?}"))?;
                delete_index_kms(store, "other").map_err(|e| format!("{name} delete: {e:?}"))?;
            }
            // The audited changes were recorded: the parent's push, the child's push and delete.
            let report = verify_audit(&objects.disk).map_err(|e| format!("verify: {e:?}"))?;
            check(report.is_intact() && report.records == 3, || {
                format!("audit log after the child's changes: {report:?}")
            })?;
            let fresh = StorageConfig::disk(objects._dir.path().join("child")).unwrap();
            push_index_kms(&fresh, "idx", &objects.blob).map_err(|e| format!("new disk: {e:?}"))?;
            let names = list_index_kms(&fresh).map_err(|e| format!("list: {e:?}"))?;
            check(names == ["idx"], || format!("listed {names:?}"))
        },
    ));

    failures.extend(run_in_child(
        "objects_created_in_the_child_work_against_moto",
        || {
            let s3 = StorageConfig::s3(&objects.bucket, s3_options()).unwrap();
            let got = get_index_kms(&s3, "idx").map_err(|e| format!("S3 get: {e:?}"))?;
            check(got == objects.blob, || "S3: another envelope".into())?;
            let client = kms_client(&objects.key_arn);
            let (blob, kek) = client
                .wrap_new_kek("child-idx", "prod")
                .map_err(|e| format!("wrap: {e:?}"))?;
            push_index_kms(&s3, "child-idx", &blob).map_err(|e| format!("S3 push: {e:?}"))?;
            let resolver = resolver(&client);
            let resolved = resolver
                .resolve(&s3, "child-idx")
                .map_err(|e| format!("resolve: {e:?}"))?;
            check(resolved == kek, || "resolved another KEK".into())?;
            check(resolver.stats().entries == 1, || "not cached".into())?;
            // The parent's envelope unwraps too (same moto key).
            client
                .unwrap_kek("idx", &objects.blob)
                .map_err(|e| format!("unwrap: {e:?}"))?;
            Ok(())
        },
    ));

    // Last: the closure owns every pre-fork object, so the child drops the last handles (and the
    // parent drops its copies afterwards, unused).
    failures.extend(run_in_child(
        "freeing_pre_fork_objects_in_the_child_is_silent",
        move || {
            let PreFork {
                s3,
                client,
                resolver,
                ..
            } = objects;
            drop(resolver);
            drop(client);
            drop(s3);
            Ok(())
        },
    ));

    assert!(failures.is_empty(), "fork scenarios failed: {failures:#?}");
}
