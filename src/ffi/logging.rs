//! `cyb_set_log_callback`: the library's diagnostics to a C function. Adapts the Rust API
//! ([`crate::logging`]); no logic of its own.

use std::ffi::{c_char, c_void};

use super::boundary::{ffi_call, Failure};
use super::result::cyb_result;
use crate::logging::{LogLevel, LogRecord};

/// Importance of a log event; a callback installed at a level receives that level and every more
/// important one (lower number).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cyb_log_level {
    /// As a threshold: no events (the callback is removed).
    CYB_LOG_LEVEL_OFF = 0,
    /// An operation failed (a KMS call) and its caller gets an error.
    CYB_LOG_LEVEL_ERROR = 1,
    /// Something to look at: a failed resolve, drift, a failed re-wrap, use after fork().
    CYB_LOG_LEVEL_WARN = 2,
    /// A notable change of state: a KMS registry change, a re-wrap.
    CYB_LOG_LEVEL_INFO = 3,
    /// Routine events: KEK cache fills, evictions, expiry; the AWS SDK's attempts and retries.
    CYB_LOG_LEVEL_DEBUG = 4,
    /// Per-call detail: KEK cache misses. (The AWS SDK's own TRACE events are never passed on.)
    CYB_LOG_LEVEL_TRACE = 5,
}

impl From<LogLevel> for cyb_log_level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => cyb_log_level::CYB_LOG_LEVEL_ERROR,
            LogLevel::Warn => cyb_log_level::CYB_LOG_LEVEL_WARN,
            LogLevel::Info => cyb_log_level::CYB_LOG_LEVEL_INFO,
            LogLevel::Debug => cyb_log_level::CYB_LOG_LEVEL_DEBUG,
            LogLevel::Trace => cyb_log_level::CYB_LOG_LEVEL_TRACE,
        }
    }
}

/// One log event, borrowed for the duration of the callback: copy what you keep. Both strings
/// are UTF-8 without control characters, given as (pointer, length) and also NUL-terminated
/// (`target[target_len] == '\0'`), so they can be printed with `%s` directly.
#[repr(C)]
#[derive(Debug)]
pub struct cyb_log_record {
    /// How important the event is (never `CYB_LOG_LEVEL_OFF`).
    pub level: cyb_log_level,
    /// Where the event comes from: `cyborgdb_kms::cache`, `cyborgdb_kms::resolver`,
    /// `cyborgdb_kms::kms`, `cyborgdb_kms::runtime`, or an AWS SDK module path.
    pub target: *const c_char,
    /// Length of `target` in bytes, without the NUL.
    pub target_len: usize,
    /// The text: redacted, at most 1024 characters (+ `...`); never key material.
    pub message: *const c_char,
    /// Length of `message` in bytes, without the NUL.
    pub message_len: usize,
}

/// A log callback: receives the `userdata` given to `cyb_set_log_callback` and one event, valid
/// only during the call. It must return normally: a C++ exception or a `longjmp` out of it
/// aborts the process (the C++ wrapper catches every exception).
pub type cyb_log_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, record: *const cyb_log_record)>;

/// The callback with its userdata. The caller of `cyb_set_log_callback` promises both are usable
/// from any thread (the documented contract), which is what makes these `Send + Sync`.
struct CCallback {
    function: unsafe extern "C" fn(*mut c_void, *const cyb_log_record),
    userdata: *mut c_void,
}

// SAFETY: `cyb_set_log_callback`'s contract: the function and userdata may be used from any
// thread, concurrently; the library never dereferences `userdata` itself.
unsafe impl Send for CCallback {}
// SAFETY: as above.
unsafe impl Sync for CCallback {}

impl CCallback {
    fn call(&self, record: &LogRecord<'_>) {
        let target = nul_terminated(record.target);
        let message = nul_terminated(record.message);
        let c_record = cyb_log_record {
            level: record.level.into(),
            target: target.as_ptr().cast(),
            target_len: target.len() - 1,
            message: message.as_ptr().cast(),
            message_len: message.len() - 1,
        };
        // SAFETY: the caller's contract for `function`; the record and its strings outlive the
        // call.
        unsafe { (self.function)(self.userdata, &c_record) }
    }
}

/// `text` as bytes with a terminating NUL (an interior NUL, which redaction already escapes,
/// would become `?`).
fn nul_terminated(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend(text.bytes().map(|b| if b == 0 { b'?' } else { b }));
    bytes.push(0);
    bytes
}

/// Installs `callback` to receive every log event at `level` or more important (a
/// `cyb_log_level` number), replacing the previous callback; `callback` NULL or `level`
/// `CYB_LOG_LEVEL_OFF` removes it. Until one is installed nothing is logged, at the cost of one
/// atomic load per event site.
///
/// - **Threads.** The callback runs on the thread that produced the event — a caller's thread or
///   one of the library's runtime threads — and may run on several threads at once: it and
///   `userdata` must be safe to use that way. Keep it short; it must not block on the library.
/// - **Lifetime of userdata.** When this function returns, the previous callback is not running
///   on any thread and will never be called again with the previous `userdata`: free it then.
///   To do so, this function waits for calls of the previous callback in progress.
/// - **Re-entry.** Calling this function from inside a callback is refused with
///   `CYB_RESULT_INVALID_ARGUMENT` (it would wait for itself). Library calls made from inside a
///   callback work, but their own events are dropped.
/// - **Never key material.** KEKs, wrap keys, ExternalIds and credentials never appear; AWS SDK
///   events are passed on only at DEBUG and above, message only, redacted.
/// - The record and its strings are valid only during the call. The callback must not unwind
///   (no C++ exception, no `longjmp` out of it).
///
/// Errors: `CYB_RESULT_INVALID_ARGUMENT` for a `level` above `CYB_LOG_LEVEL_TRACE` or a call
/// from inside a callback (nothing changes).
#[no_mangle]
pub extern "C" fn cyb_set_log_callback(
    level: u32,
    callback: cyb_log_callback,
    userdata: *mut c_void,
) -> cyb_result {
    ffi_call("cyb_set_log_callback", || {
        let threshold = match (level, callback) {
            (0, _) | (_, None) => None,
            (level, Some(function)) => {
                let threshold = LogLevel::from_u32(level).ok_or_else(|| {
                    Failure::invalid_argument(format!(
                        "cyb_set_log_callback: level {level} is not a cyb_log_level (0 to 5)"
                    ))
                })?;
                Some((threshold, CCallback { function, userdata }))
            }
        };
        match threshold {
            None if level > 5 => Err(Failure::invalid_argument(format!(
                "cyb_set_log_callback: level {level} is not a cyb_log_level (0 to 5)"
            ))),
            None => Ok(crate::logging::clear_log_callback()?),
            Some((threshold, c_callback)) => Ok(crate::logging::set_log_callback(
                threshold,
                move |record| c_callback.call(record),
            )?),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_match_the_rust_levels() {
        for level in LogLevel::ALL {
            assert_eq!(cyb_log_level::from(level) as u32, level as u32);
        }
    }

    #[test]
    fn strings_are_nul_terminated() {
        assert_eq!(nul_terminated("ab"), b"ab\0");
        assert_eq!(nul_terminated("a\0b"), b"a?b\0");
    }
}
