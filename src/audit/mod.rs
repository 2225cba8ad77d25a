//! The custody audit: a hash-chained, append-only log of every change to key custody, stored
//! with the envelopes it is about (see `docs/audit.md`).
//!
//! Audit is a property of a store: [`StorageConfig::with_audit`] returns a config whose create,
//! push, delete and re-wrap append a record before the store is written (and an
//! [`AuditEvent::Aborted`] record if the write then fails), and on which the resolver appends what
//! it observes (drift, keys the trust rules refuse, provider refusals that signal revocation).
//! A config without audit makes no audit call at all.
//!
//! [`verify_audit`] walks the chain and reports the first break; [`read_audit`] reads records for
//! `tail` and `export`. Both work on any config, audited or not.
//!
//! Layout: [`record`] (the record and its canonical encoding), `chain` (verification), `disk` and
//! `memory` (two of the three logs; the S3 one lives with the S3 store, whose client it uses).

mod chain;
pub(crate) mod disk;
pub(crate) mod memory;
pub mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use chain::{verify_audit, AuditBreak, AuditBreakKind, AuditHead, AuditReport};
pub use record::{
    Actor, AuditEvent, AuditKey, AuditRecord, CreateMode, AUDIT_FORMAT_VERSION, KEY_SUFFIX_CHARS,
    MAX_RECORD_LEN,
};

use crate::error::{Error, ErrorKind, Result};
use crate::index_name::IndexName;
use crate::logging::{log_event, LogLevel, TARGET_AUDIT};
use crate::storage::StorageConfig;

/// Longest principal accepted, in bytes.
pub const MAX_PRINCIPAL_LEN: usize = 256;
/// Most records one [`read_audit`] call returns.
pub const MAX_READ_LIMIT: usize = 10_000;
/// Most stored records one scan (verify or read) looks at; a log with more is refused as
/// `Corrupt` rather than read without end.
pub const MAX_SCANNED_RECORDS: u64 = 50_000_000;
/// A repeated observation (the same refusal of the same index by the same store) within this
/// many milliseconds is not appended again, so a revoked key that every request trips over costs
/// one record per minute, not one per request.
const REPEAT_WINDOW_MS: u64 = 60_000;
/// Most remembered observations before the memory of repeats is cleared.
const MAX_REMEMBERED_OBSERVATIONS: usize = 10_000;
/// Shortest unwrap-count interval ([`AuditOptions::unwrap_counts`]).
pub const MIN_UNWRAP_COUNTS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest unwrap-count interval ([`AuditOptions::unwrap_counts`]): one day.
pub const MAX_UNWRAP_COUNTS_INTERVAL: Duration = Duration::from_secs(86_400);

/// How audit records identify their actor. The host and process id are filled in by
/// [`StorageConfig::with_audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Who makes the changes: a service or operator name, 1..=[`MAX_PRINCIPAL_LEN`] bytes,
    /// without control characters. Never a credential.
    pub principal: String,
    /// The host name recorded; `None`: the machine's (`gethostname`).
    pub host: Option<String>,
    /// Per-index unwrap counts: `Some(interval)` makes a resolver acting on the store append an
    /// [`AuditEvent::Unwraps`] record per index at most once per `interval` (and when flushed),
    /// counting the KEKs it unwrapped through a provider. `None` (the default): off. Whole
    /// seconds, [`MIN_UNWRAP_COUNTS_INTERVAL`]..=[`MAX_UNWRAP_COUNTS_INTERVAL`].
    pub unwrap_counts: Option<Duration>,
}

impl AuditOptions {
    /// Options for `principal`, with the machine's host name.
    pub fn new(principal: impl Into<String>) -> Self {
        AuditOptions {
            principal: principal.into(),
            host: None,
            unwrap_counts: None,
        }
    }

    /// These options with per-index unwrap counts every `interval` (see
    /// [`AuditOptions::unwrap_counts`]; checked when the options are used).
    #[must_use]
    pub fn with_unwrap_counts(mut self, interval: Duration) -> Self {
        self.unwrap_counts = Some(interval);
        self
    }

    /// The actor these options describe, for this process (the other options are checked too).
    ///
    /// Errors: `InvalidArgument` naming the field (`principal` or `host`): empty, too long, or
    /// containing a control character; `unwrap_counts`: not a whole number of seconds in
    /// [`MIN_UNWRAP_COUNTS_INTERVAL`]..=[`MAX_UNWRAP_COUNTS_INTERVAL`].
    pub fn actor(&self) -> Result<Actor> {
        check_unwrap_counts(self.unwrap_counts)?;
        check_actor_field("principal", &self.principal)?;
        let host = match &self.host {
            Some(host) => {
                check_actor_field("host", host)?;
                host.clone()
            }
            None => host_name(),
        };
        Ok(Actor {
            principal: self.principal.clone(),
            host,
            pid: std::process::id(),
        })
    }
}

fn check_unwrap_counts(interval: Option<Duration>) -> Result<()> {
    match interval {
        Some(interval)
            if interval < MIN_UNWRAP_COUNTS_INTERVAL
                || interval > MAX_UNWRAP_COUNTS_INTERVAL
                || interval.subsec_nanos() != 0 =>
        {
            Err(Error::invalid_argument(format!(
                "audit option unwrap_counts must be a whole number of seconds in {}..={}, not {:?}",
                MIN_UNWRAP_COUNTS_INTERVAL.as_secs(),
                MAX_UNWRAP_COUNTS_INTERVAL.as_secs(),
                interval
            )))
        }
        _ => Ok(()),
    }
}

fn check_actor_field(field: &str, value: &str) -> Result<()> {
    let problem = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_PRINCIPAL_LEN {
        format!("is {} bytes, more than {MAX_PRINCIPAL_LEN}", value.len())
    } else if value.chars().any(char::is_control) {
        "contains a control character".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::invalid_argument(format!(
        "audit option {field} {}: {problem}",
        crate::error::quoted_prefix(value)
    )))
}

/// This machine's host name (empty if the OS has none to give).
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its length; gethostname NUL-terminates within it or
    // truncates (we stop at the first NUL or the end).
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end])
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_PRINCIPAL_LEN)
        .collect()
}

/// The last record of a log: what the next one chains to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) hash: [u8; 32],
}

/// One stored record as a scan hands it over: the bytes of its line without the newline,
/// whether the newline was there, and the sequence number its storage key names (S3 only).
pub(crate) struct StoredRecord<'a> {
    pub(crate) key_seq: Option<u64>,
    pub(crate) line: &'a [u8],
    pub(crate) complete: bool,
}

/// Whether a scan goes on after a record.
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Where one store keeps its audit records. Implemented by each backend; shared across threads.
pub(crate) trait AuditLog: Send + Sync {
    /// Appends the record `build` makes for the current head (`None`: the log is empty),
    /// atomically against every other appender of any process or node: the record is stored
    /// with `seq` = head + 1 and chains to the head, or not at all. `build` may be called again
    /// if another appender won the race. Returns the stored record once it is durable.
    fn append(&self, build: &mut dyn FnMut(Option<Head>) -> AuditRecord) -> Result<AuditRecord>;
    /// As [`AuditLog::append`], but the record may not be durable until [`AuditLog::sync`]
    /// returns (disk: written, not yet `fdatasync`ed, so the sync can overlap the envelope
    /// write). Other appenders still chain after it. The default appends durably.
    fn append_unsynced(
        &self,
        build: &mut dyn FnMut(Option<Head>) -> AuditRecord,
    ) -> Result<AuditRecord> {
        self.append(build)
    }
    /// Makes every record appended so far durable. The default (stores whose appends are
    /// durable) does nothing.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Hands every stored record from (about) `from_seq` on to `visit`, in storage order, until
    /// it says stop. Records are read one at a time, each at most [`MAX_RECORD_LEN`] bytes.
    fn scan(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(StoredRecord<'_>) -> Result<Flow>,
    ) -> Result<()>;
    /// Where the log lives, for messages.
    fn describe(&self) -> String;
    /// The log itself, for tests that tamper with it.
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The audit of one store: who the records name, and the memory of recent observations.
/// Shared by the clones of an audited [`StorageConfig`]; thread-safe.
pub(crate) struct Auditor {
    actor: Actor,
    recent: Mutex<HashMap<(u64, String, String), u64>>,
    unwrap_counts: Option<Duration>,
}

impl Auditor {
    pub(crate) fn new(options: &AuditOptions) -> Result<Arc<Auditor>> {
        Ok(Arc::new(Auditor {
            actor: options.actor()?,
            recent: Mutex::default(),
            unwrap_counts: options.unwrap_counts,
        }))
    }

    pub(crate) fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The unwrap-count interval, if counts are on.
    pub(crate) fn unwrap_counts(&self) -> Option<Duration> {
        self.unwrap_counts
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Appends `event` about `index` to `config`'s log as `auditor`'s actor, durably.
fn append(
    config: &StorageConfig,
    auditor: &Auditor,
    index: &str,
    event: AuditEvent,
) -> Result<AuditRecord> {
    append_with(config, auditor, index, event, true)
}

/// Appends `event`; durably unless `durable` is false (then [`sync_changes`] must follow).
fn append_with(
    config: &StorageConfig,
    auditor: &Auditor,
    index: &str,
    event: AuditEvent,
    durable: bool,
) -> Result<AuditRecord> {
    let time_ms = now_ms();
    let log = config.backend().audit_log();
    let mut build = |head: Option<Head>| {
        let (seq, prev) = head.map_or((0, [0; 32]), |h| (h.seq + 1, h.hash));
        AuditRecord::new(seq, time_ms, index, event.clone(), &auditor.actor, prev)
    };
    if durable {
        log.append(&mut build)
    } else {
        log.append_unsynced(&mut build)
    }
}

/// Makes the change records [`record_change`] appended durable: called before the change is
/// published. Errors: the log's, with context saying nothing was changed.
pub(crate) fn sync_changes(config: &StorageConfig, index: &IndexName) -> Result<()> {
    config.backend().audit_log().sync().map_err(|e| {
        e.context(format_args!(
            "index {index}: the audit record could not be made durable, so nothing was changed"
        ))
    })
}

/// Records a custody change about to be made: returns the record's seq (`None` if `config` is
/// not audited: then nothing is done). Called before the store is written; the record may not be
/// durable until [`sync_changes`] returns, which the write calls before it publishes.
///
/// Errors: the log's (`Io`, `Corrupt` for a damaged head, `StorageUnavailable`,
/// `StorageAccessDenied`), with context saying nothing was changed.
pub(crate) fn record_change(
    config: &StorageConfig,
    index: &IndexName,
    event: impl FnOnce() -> AuditEvent,
) -> Result<Option<u64>> {
    let Some(auditor) = config.auditor() else {
        return Ok(None);
    };
    match append_with(config, auditor, index.as_str(), event(), false) {
        Ok(record) => Ok(Some(record.seq)),
        Err(e) => Err(e.context(format_args!(
            "index {index}: the audit record could not be appended, so nothing was changed"
        ))),
    }
}

/// Records that the change announced by record `seq` failed with `error`. Best effort: a
/// failure to append is logged (the announced record then stands for an attempt).
pub(crate) fn record_abort(config: &StorageConfig, index: &IndexName, seq: u64, error: &Error) {
    if let Some(auditor) = config.auditor() {
        let event = AuditEvent::Aborted {
            of_seq: seq,
            error: format!("{:?}", error.kind()),
        };
        if let Err(e) = append(config, auditor, index.as_str(), event) {
            log_event!(
                LogLevel::Warn,
                TARGET_AUDIT,
                "index {index}: the write announced by audit record {seq} failed, and the \
                 record saying so could not be appended ({:?}): {}",
                e.kind(),
                e.message()
            );
        }
    }
}

/// Records an observation (drift, a refused key, a provider refusal) if `config` is audited.
/// A repeat of the same observation within a minute is skipped. Best effort: a failure to
/// append is logged, never returned (the operation's own result stands).
pub(crate) fn record_observation(config: &StorageConfig, index: &str, event: AuditEvent) {
    let Some(auditor) = config.auditor() else {
        return;
    };
    let now = now_ms();
    let key = (
        config.location().id(),
        index.to_owned(),
        format!("{event:?}"),
    );
    {
        let mut recent = auditor
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if recent
            .get(&key)
            .is_some_and(|last| now.saturating_sub(*last) < REPEAT_WINDOW_MS)
        {
            return;
        }
        if recent.len() >= MAX_REMEMBERED_OBSERVATIONS {
            recent.clear();
        }
        recent.insert(key, now);
    }
    if let Err(e) = append(config, auditor, index, event) {
        log_event!(
            LogLevel::Warn,
            TARGET_AUDIT,
            "index {}: an audit record could not be appended ({:?}): {}",
            crate::error::quoted_prefix(index),
            e.kind(),
            e.message()
        );
    }
}

/// Appends the `unwraps` record of `count` provider unwraps of `index` between `since_ms` and
/// `until_ms` if `config` is audited. Best effort, as observations: a failure to append is
/// logged (those counts are then lost), never returned. Returns whether the record was appended.
pub(crate) fn record_unwraps(
    config: &StorageConfig,
    index: &str,
    count: u64,
    since_ms: u64,
    until_ms: u64,
) -> bool {
    let Some(auditor) = config.auditor() else {
        return false;
    };
    let event = AuditEvent::Unwraps {
        count,
        since_ms,
        until_ms,
    };
    match append(config, auditor, index, event) {
        Ok(_) => true,
        Err(e) => {
            log_event!(
                LogLevel::Warn,
                TARGET_AUDIT,
                "index {}: the audit record of {count} unwraps could not be appended ({:?}): {}",
                crate::error::quoted_prefix(index),
                e.kind(),
                e.message()
            );
            false
        }
    }
}

/// Whether an error of this kind is one the audit records: a key the trust rules refuse, or a
/// provider refusal that signals revocation.
pub(crate) fn is_audited_refusal(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::UntrustedKey
            | ErrorKind::KmsAccessDenied
            | ErrorKind::KmsKeyNotFound
            | ErrorKind::KmsKeyDisabled
    )
}

/// The observation for a refusal `error` of `key` in `operation`, if it is one the audit records.
pub(crate) fn refusal_event(operation: &str, key: AuditKey, error: &Error) -> Option<AuditEvent> {
    match error.kind() {
        ErrorKind::UntrustedKey => Some(AuditEvent::UntrustedKey {
            operation: operation.to_owned(),
            key,
        }),
        kind if is_audited_refusal(kind) => Some(AuditEvent::ProviderRefused {
            operation: operation.to_owned(),
            error: format!("{kind:?}"),
            key,
        }),
        _ => None,
    }
}

/// Hex SHA-256 of wrapped KEK bytes; empty for none.
pub(crate) fn wrapped_fingerprint(wrapped: &[u8]) -> String {
    use sha2::Digest as _;
    if wrapped.is_empty() {
        return String::new();
    }
    hex::encode(sha2::Sha256::digest(wrapped))
}

/// The records of `config`'s audit log with `seq >= from_seq`, at most `limit` of them, in
/// storage order (which is seq order in an intact log). Each is decoded and checked against its
/// own hash, but the chain is not verified (that is [`verify_audit`]). A torn last record (an
/// append cut short by a crash) is left out.
///
/// Disk reads the log from its start (cost grows with its length); S3 lists from `from_seq` and
/// reads one object per record.
///
/// Errors: `InvalidArgument` (`limit` 0 or above [`MAX_READ_LIMIT`]); `Corrupt` (a record that
/// does not decode or match its hash, a line longer than [`MAX_RECORD_LEN`], more than
/// [`MAX_SCANNED_RECORDS`] records); the store's (`Io`, `StorageUnavailable`,
/// `StorageAccessDenied`).
pub fn read_audit(config: &StorageConfig, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
    if limit == 0 || limit > MAX_READ_LIMIT {
        return Err(Error::invalid_argument(format!(
            "audit read limit must be 1..={MAX_READ_LIMIT}, not {limit}"
        )));
    }
    let log = config.backend().audit_log();
    let mut records = Vec::new();
    let mut position = 0u64;
    log.scan(from_seq, &mut |stored| {
        position += 1;
        if position > MAX_SCANNED_RECORDS {
            return Err(too_many_records(&log.describe()));
        }
        if !stored.complete {
            return Ok(Flow::Continue);
        }
        let record = AuditRecord::decode(stored.line).map_err(|why| {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "audit log at {}: stored record {} is corrupt: {why}",
                    log.describe(),
                    stored
                        .key_seq
                        .map_or_else(|| format!("#{position}"), |seq| seq.to_string())
                ),
            )
        })?;
        if record.seq >= from_seq {
            records.push(record);
        }
        Ok(if records.len() == limit {
            Flow::Stop
        } else {
            Flow::Continue
        })
    })?;
    Ok(records)
}

pub(crate) fn too_many_records(location: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "audit log at {location}: more than {MAX_SCANNED_RECORDS} records; not read further"
        ),
    )
}

/// The `Corrupt` error of a stored line longer than any record.
pub(crate) fn overlong_record(location: &str, position: u64) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "audit log at {location}: stored record #{position} is corrupt: longer than any \
             record ({MAX_RECORD_LEN} bytes); not read"
        ),
    )
}

#[cfg(test)]
mod tests;
