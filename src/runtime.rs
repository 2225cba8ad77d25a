//! The one tokio runtime per process that synchronous callers — the C ABI, the Rust API — block
//! on, the one HTTP client every AWS SDK client sends through, and the library's `fork` rules.
//!
//! **Shared, started lazily.** No object owns threads or descriptors: KMS clients, S3 stores and
//! KEK caches hold a [`SharedRuntime`], which is just a record of the process that created them.
//! The first call that needs the runtime starts it — [`WORKER_THREADS`] workers plus tokio's
//! blocking pool, which grows on demand (at most [`MAX_BLOCKING_THREADS`]) and shrinks when idle —
//! together with one HTTP client whose connection pools are shared by every SDK client, so idle
//! keep-alive connections are per endpoint, not per object. Both live until the process exits.
//!
//! **fork.** A child made by `fork()` has only the forking thread: the parent's runtime threads do
//! not exist there, and locks they held stay held. So:
//! - every object records the process that created it ([`OwnerProcess`]). In a forked child, a
//!   call through an object created before the fork fails at once with
//!   [`ErrorKind::ForkedProcess`] instead of waiting on threads that are gone, and dropping such an
//!   object touches nothing of the parent's runtime (what it holds of it is leaked);
//! - objects created in the child work: their first call starts a fresh runtime and HTTP client
//!   for the child. The parent's copies are leaked, never shut down or joined.
//!
//! A fork is detected by a `pthread_atfork` child handler that bumps a counter (one atomic load
//! to check, for hot paths) and, where a call is about to enter the runtime, also by comparing
//! `getpid()` (which also catches a child made by a raw `clone(2)` that skips the handlers).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::error::{Error, ErrorKind, Result};
use crate::logging::{log_event, LogLevel, TARGET_RUNTIME};

/// Worker threads of the process-wide runtime. Callers' futures run on the callers' own threads
/// (they block on them); workers drive I/O, timers and the connections' background tasks.
pub(crate) const WORKER_THREADS: usize = 2;
/// Upper bound on tokio's blocking pool (DNS lookups, file reads of the SDK's credential chain).
pub(crate) const MAX_BLOCKING_THREADS: usize = 64;

/// Forks this process's ancestry went through since the library first looked: bumped in the
/// child by the `pthread_atfork` handler.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static AT_FORK_REGISTERED: AtomicBool = AtomicBool::new(false);

extern "C" fn count_fork_in_child() {
    // Async-signal-safe: one atomic add.
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The current fork generation, registering the `pthread_atfork` handler on first use.
fn fork_generation() -> u64 {
    if !AT_FORK_REGISTERED.load(Ordering::Acquire)
        && !AT_FORK_REGISTERED.swap(true, Ordering::AcqRel)
    {
        // SAFETY: registers a child handler that only performs an atomic add. If registration
        // fails (ENOMEM), forks are still detected by the pid check on every runtime entry.
        unsafe {
            libc::pthread_atfork(None, None, Some(count_fork_in_child));
        }
    }
    FORK_GENERATION.load(Ordering::Acquire)
}

/// The process an object was created in. `Copy`; checking it never blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OwnerProcess {
    pid: u32,
    fork_generation: u64,
}

impl OwnerProcess {
    /// This process, now.
    pub(crate) fn current() -> OwnerProcess {
        OwnerProcess {
            fork_generation: fork_generation(),
            pid: std::process::id(),
        }
    }

    /// Whether no fork has happened since this record was made, by the `pthread_atfork` counter
    /// alone: one atomic load, for hot paths (a cache hit). Misses only a child made by a raw
    /// `clone(2)`, which [`OwnerProcess::is_current`] catches.
    #[inline]
    pub(crate) fn is_current_fast(&self) -> bool {
        FORK_GENERATION.load(Ordering::Relaxed) == self.fork_generation
    }

    /// Whether this is still the process that made the record (counter and `getpid()`).
    pub(crate) fn is_current(&self) -> bool {
        self.is_current_fast() && std::process::id() == self.pid
    }

    /// `Ok` in the owning process; else the `ForkedProcess` error for using `object` (e.g. "KMS
    /// client") in a forked child.
    pub(crate) fn check(&self, object: &str) -> Result<()> {
        if self.is_current() {
            Ok(())
        } else {
            Err(self.forked_error(object))
        }
    }

    /// The `ForkedProcess` error for using `object` in a child forked after it was created.
    pub(crate) fn forked_error(&self, object: &str) -> Error {
        log_event!(
            LogLevel::Warn,
            TARGET_RUNTIME,
            "a {object} created in process {} was used in process {}, forked from it: refused",
            self.pid,
            std::process::id()
        );
        Error::new(
            ErrorKind::ForkedProcess,
            format!(
                "this {object} was created in process {} and cannot be used in process {}, \
                 forked from it: create a new one after fork()",
                self.pid,
                std::process::id()
            ),
        )
    }
}

/// The runtime and HTTP client of one process (the child of a fork gets its own).
struct ProcessRuntime {
    owner: OwnerProcess,
    runtime: tokio::runtime::Runtime,
    http_client: SharedHttpClient,
}

/// This process's [`ProcessRuntime`]: null until first use. Pointers stored here come from
/// `Box::into_raw` and are never freed (a forked child leaks its parent's).
static PROCESS_RUNTIME: AtomicPtr<ProcessRuntime> = AtomicPtr::new(std::ptr::null_mut());

/// Makes this thread (a runtime worker or blocking thread) send its `tracing` events to the
/// library's own dispatcher, whatever subscriber the host installed. At TRACE level the AWS SDK
/// logs raw HTTP responses and errors — `Decrypt` plaintexts, Secrets Manager values, requests
/// echoed by a peer — so its events must never reach a host's `tracing` subscriber; the
/// library's dispatcher ([`crate::logging::sdk_dispatch`]) passes only their redacted messages,
/// at DEBUG level and above, to the log callback. [`SharedRuntime::run`] does the same for the
/// calling thread while it drives a call.
fn route_sdk_events_to_the_log_callback() {
    // The guard restores the previous default when dropped; this thread keeps ours for life.
    std::mem::forget(tracing::dispatcher::set_default(
        crate::logging::sdk_dispatch(),
    ));
}

impl ProcessRuntime {
    fn start() -> Result<ProcessRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name(THREAD_NAME)
            .on_thread_start(route_sdk_events_to_the_log_callback)
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot start the cyborgdb-kms runtime: {e}"),
                )
            })?;
        Ok(ProcessRuntime {
            owner: OwnerProcess::current(),
            runtime,
            http_client: default_https_client(),
        })
    }

    /// This process's runtime, started on first use (and again in a forked child).
    ///
    /// Errors: `Io` if the OS refuses the worker threads (a later call tries again).
    fn get() -> Result<&'static ProcessRuntime> {
        loop {
            let seen = PROCESS_RUNTIME.load(Ordering::Acquire);
            // SAFETY: non-null pointers in PROCESS_RUNTIME are leaked boxes, valid forever.
            if let Some(current) = unsafe { seen.as_ref() } {
                if current.owner.is_current() {
                    return Ok(current);
                }
            }
            let fresh = Box::into_raw(Box::new(ProcessRuntime::start()?));
            match PROCESS_RUNTIME.compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // The parent's runtime, if `seen` was one, is leaked: its threads do not exist here.
                // SAFETY: just leaked above.
                Ok(_) => return Ok(unsafe { &*fresh }),
                Err(_) => {
                    // Another thread of this process started one first: use that one.
                    // SAFETY: `fresh` was never published, so this is its only owner.
                    let unused = unsafe { *Box::from_raw(fresh) };
                    unused.runtime.shutdown_background();
                }
            }
        }
    }
}

/// The SDK's default HTTPS client (hyper 1.x, rustls with aws-lc, proxy settings from the
/// environment), built once per process instead of once per SDK config, so every SDK client in the
/// process shares its connection pools. Mirrors `aws_smithy_runtime`'s `default_https_client` for
/// the behaviour version we pin (`crate::aws::behavior_version`, at least 2025-08-07).
fn default_https_client() -> SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The HTTP client of this process's runtime, for SDK configs built on it.
///
/// Errors: `Io` if the runtime cannot start.
pub(crate) fn http_client() -> Result<SharedHttpClient> {
    Ok(ProcessRuntime::get()?.http_client.clone())
}

/// A job running on the process-wide runtime's blocking pool ([`run_pooled`]).
pub(crate) struct PooledJob<T> {
    result: std::sync::mpsc::Receiver<std::thread::Result<T>>,
}

impl<T> PooledJob<T> {
    /// Waits for the job and returns its result; a panic in the job resumes here.
    pub(crate) fn wait(self) -> T {
        match self.result.recv() {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // The pool dropped the job unrun: only when the runtime shuts down, which ours never
            // does while the process lives.
            Err(_) => panic!("the runtime dropped a pooled job before running it"),
        }
    }
}

/// The name of the runtime's threads (workers and blocking pool).
const THREAD_NAME: &str = "cyborgdb-kms";

/// Starts `job` on the process-wide runtime's blocking pool, whose threads stay alive between
/// jobs (starting a thread per job cost ~70 µs on our 2-core VM, more than the job). The caller
/// goes on and collects the result with [`PooledJob::wait`]; a job whose handle is dropped still
/// runs to its end. Works in a forked child (its own runtime is started there).
///
/// Errors: `Io` if the runtime cannot start, or if called from one of the runtime's own threads
/// (a pool thread waiting for a pooled job could, with the pool full, wait forever): run the job
/// inline then.
pub(crate) fn run_pooled<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<PooledJob<T>> {
    if std::thread::current().name() == Some(THREAD_NAME) {
        return Err(Error::new(
            ErrorKind::Io,
            "a pooled job cannot be started from the runtime's own threads",
        ));
    }
    let (send, result) = std::sync::mpsc::sync_channel(1);
    drop(ProcessRuntime::get()?.runtime.spawn_blocking(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        let _ = send.send(outcome);
    }));
    Ok(PooledJob { result })
}

/// One object's access to the process-wide runtime: records the creating process and costs no
/// threads or descriptors. `Send + Sync`; any number of threads may call [`SharedRuntime::run`].
pub(crate) struct SharedRuntime {
    owner: OwnerProcess,
    /// What the object is, for the `ForkedProcess` message (e.g. "KMS client").
    object: Box<str>,
}

impl SharedRuntime {
    /// Access for an `object` created now. Starts nothing.
    pub(crate) fn new(object: impl Into<Box<str>>) -> SharedRuntime {
        SharedRuntime {
            owner: OwnerProcess::current(),
            object: object.into(),
        }
    }

    /// The process the object was created in.
    pub(crate) fn owner(&self) -> OwnerProcess {
        self.owner
    }

    /// Whether this is the process the object was created in (false in a forked child).
    pub(crate) fn in_owner_process(&self) -> bool {
        self.owner.is_current()
    }

    /// Runs `future` to completion on the process-wide runtime and returns its output, blocking
    /// the caller. Works from any thread: from a thread inside a tokio runtime (the caller's own,
    /// or this one), where blocking on a runtime would panic, it runs the future on a short-lived
    /// helper thread and waits for it.
    ///
    /// Errors: `ForkedProcess` in a child forked after the object was created (at once, without
    /// touching the runtime); `Io` if the runtime cannot start; else the future's own.
    pub(crate) fn run<T: Send>(&self, future: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.owner.check(&self.object)?;
        let runtime = &ProcessRuntime::get()?.runtime;
        let block_on = |future| {
            tracing::dispatcher::with_default(crate::logging::sdk_dispatch(), || {
                runtime.block_on(future)
            })
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return block_on(future);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| block_on(future))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Spawns `task` on the process-wide runtime, detached.
    ///
    /// Errors: `ForkedProcess` in a child forked after the object was created; `Io` if the
    /// runtime cannot start.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        self.owner.check(&self.object)?;
        drop(ProcessRuntime::get()?.runtime.spawn(task));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_jobs_return_their_value_or_their_panic_and_refuse_the_runtimes_own_threads() {
        let job = run_pooled(|| 6 * 7).unwrap();
        assert_eq!(job.wait(), 42);
        let panicking = run_pooled(|| -> u32 { panic!("pooled job failed") }).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicking.wait()));
        let message = caught.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"pooled job failed"));
        // From one of the pool's own threads: refused (the caller then runs the job inline).
        let from_pool = run_pooled(|| run_pooled(|| ()).map(drop).unwrap_err())
            .unwrap()
            .wait();
        assert_eq!(from_pool.kind(), ErrorKind::Io);
        assert!(from_pool.message().contains("runtime's own threads"));
    }

    #[test]
    fn runs_from_a_plain_thread_and_from_inside_another_runtime() {
        let ours = SharedRuntime::new("test object");
        assert_eq!(ours.run(async { Ok(1 + 1) }).unwrap(), 2);

        let callers = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = callers.block_on(async { ours.run(async { Ok(40 + 2) }) });
        assert_eq!(inside.unwrap(), 42);
        // Dropped inside an async context without panicking.
        callers.block_on(async move { drop(ours) });
    }

    #[test]
    fn every_object_shares_one_runtime() {
        let a = SharedRuntime::new("a");
        let b = SharedRuntime::new("b");
        let id = |r: &SharedRuntime| r.run(async { Ok(tokio::runtime::Handle::current().id()) });
        assert_eq!(id(&a).unwrap(), id(&b).unwrap());
    }

    #[test]
    fn a_record_from_another_process_is_refused_with_forked_process() {
        let mut owner = OwnerProcess::current();
        assert!(owner.is_current());
        owner.pid = owner.pid.wrapping_add(1);
        assert!(owner.is_current_fast());
        assert!(!owner.is_current());
        let err = owner.check("KMS client").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ForkedProcess);
        assert!(err
            .message()
            .starts_with("this KMS client was created in process "));
    }
}
