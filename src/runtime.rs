//! A private tokio runtime that synchronous callers — the C ABI, the Rust API — block on.
//!
//! Each AWS-facing object (the KMS client, an S3 store) owns one. [`BlockingRuntime::run`] works
//! from any thread: from a plain thread it blocks on the runtime directly; from a thread that is
//! itself inside a tokio runtime (where `block_on` would panic with "Cannot start a runtime from
//! within a runtime") it runs the future on a short-lived helper thread and waits for it.

use std::future::Future;

use crate::error::{Error, ErrorKind, Result};

/// Owns a multi-threaded tokio runtime; shareable across threads (`Send + Sync`).
pub(crate) struct BlockingRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingRuntime {
    /// Starts a runtime with `worker_threads` workers named `thread_name`.
    ///
    /// Errors: `Io` if the OS refuses the threads.
    pub(crate) fn new(thread_name: &str, worker_threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot start the {thread_name} runtime: {e}"),
                )
            })?;
        Ok(BlockingRuntime {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` to completion on this runtime and returns its output, blocking the caller.
    pub(crate) fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self.runtime.as_ref().expect("present until drop");
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        // Inside some runtime (the caller's own, or ours): block_on here would panic.
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for BlockingRuntime {
    fn drop(&mut self) {
        // A plain drop blocks and panics inside an async context; this never does.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_from_a_plain_thread_and_from_inside_another_runtime() {
        let ours = BlockingRuntime::new("cyb-test", 1).unwrap();
        assert_eq!(ours.run(async { 1 + 1 }), 2);

        let callers = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = callers.block_on(async { ours.run(async { 40 + 2 }) });
        assert_eq!(inside, 42);
        // Dropped inside an async context without panicking.
        callers.block_on(async move { drop(ours) });
    }
}
