//! Diagnostics for the host application: one process-wide log callback that receives the
//! library's own events (KEK cache fills, evictions and expiry, registry changes, drift, KMS
//! failures, use after `fork`) and the AWS SDK's `tracing` events at DEBUG level and above.
//!
//! **Cost when off.** Every event site first loads one atomic (the threshold of the installed
//! callback, 0 when there is none) and does nothing else unless the event's level passes it; no
//! message is formatted and no lock is taken.
//!
//! **Never key material.** The library's own messages are built from the same texts as its error
//! messages (index names, slot names, key ids, error kinds; never KEKs, wrap keys, ExternalIds or
//! credentials). From the SDK only the event's `message` is taken — never its fields (`err = ?e`,
//! `response = ?r`, `endpoint_params`), which can hold requests, responses and headers — only at
//! DEBUG and above (the SDK logs raw bodies at TRACE), and never from the SDK's identity,
//! credential, SSO, token and login modules. Every message, ours and the SDK's, then goes through
//! the redaction that error messages from a peer get (`aws::sanitize_service_text`: runs of 32 or
//! more base64/hex characters become `<redacted>`, control characters are escaped) and is cut at
//! [`MAX_LOG_MESSAGE_CHARS`].
//!
//! **Calls.** The callback runs on the thread that produced the event: a caller's thread or one
//! of the library's runtime threads, possibly on several threads at once. Events produced while
//! a callback runs on the same thread (a callback calling into the library) are dropped, so a
//! callback never re-enters itself. A panic in the callback is caught and the event dropped.
//! After [`set_log_callback`] or [`clear_log_callback`] returns, the previous callback is not
//! running and is never called again (it is dropped before they return); they wait for calls of
//! it in progress on other threads, so they must not be called from inside a callback (refused
//! with `InvalidArgument`). Events produced while a replacement is waiting may be dropped.
//!
//! **fork().** Once a callback has been set, `pthread_atfork` handlers take the callback's lock
//! for writing before every `fork()` (waiting for calls in progress on other threads) and release
//! it in parent and child, so a child never inherits the lock held by a thread it does not have:
//! setting, clearing and logging work in the child. A fork from inside a callback skips this.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Once, OnceLock, RwLock, RwLockWriteGuard, TryLockError};

use crate::error::{Error, Result};

/// Longest message passed to the callback, in characters (after redaction; `...` marks a cut).
pub const MAX_LOG_MESSAGE_CHARS: usize = 1024;

/// Longest target passed to the callback, in characters.
const MAX_TARGET_CHARS: usize = 128;

/// Target of the KEK cache's events (fills, evictions, expiry, invalidations).
pub const TARGET_CACHE: &str = "cyborgdb_kms::cache";
/// Target of the resolver's events (failed resolves, registry changes, drift, re-wraps).
pub const TARGET_RESOLVER: &str = "cyborgdb_kms::resolver";
/// Target of the KMS client's events (wrap and unwrap failures, registry loads).
pub const TARGET_KMS: &str = "cyborgdb_kms::kms";
/// Target of the process-wide runtime's events (objects used in a forked child).
pub const TARGET_RUNTIME: &str = "cyborgdb_kms::runtime";
/// Target of the custody audit's events (a torn record repaired, an audit record not appended).
pub const TARGET_AUDIT: &str = "cyborgdb_kms::audit";

/// How important an event is. A callback installed with threshold `Debug` receives `Error`,
/// `Warn`, `Info` and `Debug` events. Numbers match the C ABI's `cyb_log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LogLevel {
    /// An operation failed (a KMS call, a store) and the caller gets an error.
    Error = 1,
    /// Something the operator should look at: drift, a failed re-wrap, use after `fork`.
    Warn = 2,
    /// A notable change of state: a registry change, a cache flush, a re-wrap.
    Info = 3,
    /// Routine events: cache fills, evictions, expiry; the AWS SDK's retries and attempts.
    Debug = 4,
    /// Per-call detail: cache misses. (The AWS SDK's TRACE events are never passed on.)
    Trace = 5,
}

impl LogLevel {
    /// Every level, most important first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The level with number `value` (1 = `Error` … 5 = `Trace`), if any.
    pub fn from_u32(value: u32) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| *l as u32 == value)
    }

    /// Upper-case name: `"ERROR"`, `"WARN"`, `"INFO"`, `"DEBUG"`, `"TRACE"`.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
            LogLevel::Trace => "TRACE",
        }
    }
}

/// One event as the callback sees it. Borrowed: copy what you keep.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// How important the event is.
    pub level: LogLevel,
    /// Where it comes from: `cyborgdb_kms::cache`, `cyborgdb_kms::resolver`,
    /// `cyborgdb_kms::kms`, `cyborgdb_kms::runtime`, or an AWS SDK module path
    /// (`aws_smithy_runtime::client::retries::strategy::standard`, `hyper_util::…`).
    pub target: &'a str,
    /// The text: redacted, without control characters, at most [`MAX_LOG_MESSAGE_CHARS`]
    /// characters (+ `...`).
    pub message: &'a str,
}

type Callback = Box<dyn Fn(&LogRecord<'_>) + Send + Sync>;

struct Sink {
    threshold: LogLevel,
    callback: Callback,
}

/// Threshold of the installed callback as a number; 0 when none is installed. Only a fast
/// filter: the sink's own threshold, read under the lock, decides.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);

/// The installed callback. Emitters hold the read lock while calling it, so a writer (which
/// replaces it) waits until no call of the old one is in progress.
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

thread_local! {
    /// Set while this thread runs the callback.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// The lock on [`SINK`] that [`before_fork`] took on this (the forking) thread, released by
    /// [`after_fork`] in the parent and, through its copy of this thread, in the child.
    static HELD_ACROSS_FORK: RefCell<Option<RwLockWriteGuard<'static, Option<Sink>>>> =
        const { RefCell::new(None) };
}

/// Registers the fork handlers, once per process, at the first set or clear.
fn register_fork_handlers() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers three `extern "C"` functions that never unwind (below). If the
        // registration fails (ENOMEM), forks are as without it: documented residual.
        unsafe {
            libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
        }
    });
}

/// `pthread_atfork` prepare handler: takes [`SINK`] for writing, so no other thread is inside
/// the callback or replacing it while the process forks. Skipped inside a callback (this thread
/// holds the read lock; waiting would deadlock).
extern "C" fn before_fork() {
    if IN_CALLBACK.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let guard = SINK.write().unwrap_or_else(|e| e.into_inner());
    let _ = HELD_ACROSS_FORK.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            *held = Some(guard);
        }
    });
}

/// `pthread_atfork` parent and child handler: releases what [`before_fork`] took.
extern "C" fn after_fork() {
    let _ = HELD_ACROSS_FORK.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.take();
        }
    });
}

/// Installs `callback` for every event at `threshold` or more important, replacing any previous
/// callback (which is dropped before this returns, once no call of it is in progress).
///
/// The callback may be called from any thread, including the library's runtime threads, and
/// from several at once; keep it short and non-blocking. It must not call [`set_log_callback`]
/// or [`clear_log_callback`]; events it causes on its own thread are dropped. A panic in it is
/// caught.
///
/// Errors: `InvalidArgument` when called from inside a log callback (it would wait for itself).
pub fn set_log_callback(
    threshold: LogLevel,
    callback: impl Fn(&LogRecord<'_>) + Send + Sync + 'static,
) -> Result<()> {
    replace_sink(Some(Sink {
        threshold,
        callback: Box::new(callback),
    }))
}

/// Removes the installed callback, if any; when this returns it is not running and never called
/// again. Errors: as [`set_log_callback`].
pub fn clear_log_callback() -> Result<()> {
    replace_sink(None)
}

fn replace_sink(next: Option<Sink>) -> Result<()> {
    if IN_CALLBACK.with(Cell::get) {
        return Err(Error::invalid_argument(
            "the log callback cannot be set or cleared from inside a log callback",
        ));
    }
    register_fork_handlers();
    let level = next.as_ref().map_or(0, |sink| sink.threshold as u8);
    let previous = {
        let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
        MAX_LEVEL.store(level, Ordering::Release);
        std::mem::replace(&mut *sink, next)
    };
    // Dropped outside the lock: a callback's destructor may log (its events are then dropped or
    // go to the new callback) without deadlocking.
    drop(previous);
    Ok(())
}

/// Whether an event at `level` would reach a callback: one atomic load.
#[inline]
pub(crate) fn enabled(level: LogLevel) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Formats, redacts and passes one event to the callback. Call through [`log_event!`], which
/// checks [`enabled`] first.
#[cold]
pub(crate) fn emit(level: LogLevel, target: &str, message: fmt::Arguments<'_>) {
    if IN_CALLBACK.with(Cell::get) {
        return;
    }
    let mut text = BoundedText::default();
    // An error only means the text was cut.
    let _ = text.write_fmt(message);
    deliver(level, target, &text.0);
}

/// Redacts `raw` and calls the callback, if one is installed at `level` and not being replaced.
fn deliver(level: LogLevel, target: &str, raw: &str) {
    let sink = match SINK.try_read() {
        Ok(sink) => sink,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        // A replacement is waiting for calls in progress: drop the event rather than wait.
        Err(TryLockError::WouldBlock) => return,
    };
    let Some(sink) = sink.as_ref().filter(|sink| level <= sink.threshold) else {
        return;
    };
    let message = crate::aws::sanitize_service_text(raw, MAX_LOG_MESSAGE_CHARS);
    let target = crate::aws::sanitize_service_text(target, MAX_TARGET_CHARS);
    IN_CALLBACK.with(|flag| flag.set(true));
    let record = LogRecord {
        level,
        target: &target,
        message: &message,
    };
    // A panicking callback loses its event and nothing else.
    let _ = catch_unwind(AssertUnwindSafe(|| (sink.callback)(&record)));
    IN_CALLBACK.with(|flag| flag.set(false));
}

/// A `String` that keeps at most a few times [`MAX_LOG_MESSAGE_CHARS`] bytes (enough for
/// redaction to judge a run cut at the end) and then refuses further writes.
#[derive(Default)]
struct BoundedText(String);

impl BoundedText {
    const MAX_BYTES: usize = 4 * MAX_LOG_MESSAGE_CHARS + 64;
}

impl fmt::Write for BoundedText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = Self::MAX_BYTES - self.0.len();
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.0.push_str(&s[..cut]);
        Err(fmt::Error)
    }
}

/// Logs one event of the library: `log_event!(LogLevel::Debug, TARGET_CACHE, "format", args..)`.
/// Formats nothing unless a callback wants the level.
macro_rules! log_event {
    ($level:expr, $target:expr, $($arg:tt)+) => {{
        let level = $level;
        if $crate::logging::enabled(level) {
            $crate::logging::emit(level, $target, format_args!($($arg)+));
        }
    }};
}
pub(crate) use log_event;

// ---------------------------------------------------------------------------------------------
// The AWS SDK's `tracing` events.

/// The `tracing` dispatcher that the library's runtime threads, and callers' threads while they
/// drive an SDK call, use instead of the host's: it passes the SDK's events at DEBUG level and
/// above, message only, to the log callback, and nothing anywhere else.
pub(crate) fn sdk_dispatch() -> &'static tracing::Dispatch {
    static DISPATCH: OnceLock<tracing::Dispatch> = OnceLock::new();
    DISPATCH.get_or_init(|| tracing::Dispatch::new(SdkEventBridge))
}

struct SdkEventBridge;

/// SDK modules whose events are never passed on, whatever their level: they describe
/// credentials, identities and tokens (identity caches, credential providers and chains, SSO,
/// web identity and login tokens).
fn is_withheld_target(target: &str) -> bool {
    ["identity", "credential", "sso", "token", "login"]
        .iter()
        .any(|word| target.contains(word))
}

fn sdk_level(level: &tracing::Level) -> Option<LogLevel> {
    match *level {
        tracing::Level::ERROR => Some(LogLevel::Error),
        tracing::Level::WARN => Some(LogLevel::Warn),
        tracing::Level::INFO => Some(LogLevel::Info),
        tracing::Level::DEBUG => Some(LogLevel::Debug),
        // Raw bodies and headers live here: never passed on.
        _ => None,
    }
}

/// Whether an SDK callsite could ever be passed on (an event, at DEBUG or above, from a module
/// not withheld).
fn is_bridged(metadata: &tracing::Metadata<'_>) -> Option<LogLevel> {
    if !metadata.is_event() || is_withheld_target(metadata.target()) {
        return None;
    }
    sdk_level(metadata.level())
}

impl tracing::Subscriber for SdkEventBridge {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        match is_bridged(metadata) {
            Some(_) => tracing::subscriber::Interest::sometimes(),
            None => tracing::subscriber::Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        is_bridged(metadata).is_some_and(enabled) && !IN_CALLBACK.with(Cell::get)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        // Spans are never enabled; an id is still required.
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let Some(level) = is_bridged(event.metadata()) else {
            return;
        };
        let mut message = MessageOnly::default();
        event.record(&mut message);
        if !message.0 .0.is_empty() {
            deliver(level, event.metadata().target(), &message.0 .0);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Keeps an event's `message` field and ignores every other field.
#[derive(Default)]
struct MessageOnly(BoundedText);

impl tracing::field::Visit for MessageOnly {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            let _ = self.0.write_str(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_targets_and_levels() {
        assert!(is_withheld_target(
            "aws_smithy_runtime::client::identity::cache::lazy"
        ));
        assert!(is_withheld_target(
            "aws_config::default_provider::credentials"
        ));
        assert!(is_withheld_target("aws_config::sso::token"));
        assert!(is_withheld_target("aws_config::web_identity_token"));
        assert!(is_withheld_target("aws_config::meta::token"));
        assert!(is_withheld_target("aws_config::login"));
        assert!(!is_withheld_target(
            "aws_smithy_runtime::client::retries::strategy::standard"
        ));
        assert_eq!(sdk_level(&tracing::Level::TRACE), None);
        assert_eq!(sdk_level(&tracing::Level::DEBUG), Some(LogLevel::Debug));
        for level in LogLevel::ALL {
            assert_eq!(LogLevel::from_u32(level as u32), Some(level));
        }
        assert_eq!(LogLevel::from_u32(0), None);
        assert_eq!(LogLevel::from_u32(6), None);
    }

    #[test]
    fn bounded_text_cuts_at_a_char_boundary() {
        let mut text = BoundedText::default();
        let long = "é".repeat(BoundedText::MAX_BYTES);
        assert!(text.write_str(&long).is_err());
        assert!(text.0.len() <= BoundedText::MAX_BYTES);
        assert!(text.0.chars().all(|c| c == 'é'));
    }
}
