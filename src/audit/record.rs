//! One audit record and its canonical encoding: a JSON line with a fixed field order, no
//! whitespace, integers in decimal without leading zeros, strings escaped only where JSON must
//! (`"`, `\` and control characters, as `\u00XX`), other characters as their UTF-8 bytes.
//!
//! ```text
//! {"v":1,"seq":0,"time_ms":…,"index":"…","event":{"type":"…",…},"actor":{"principal":"…","host":"…","pid":…},"prev":"<hex>","hash":"<hex>"}
//! ```
//!
//! `hash` is the SHA-256 of the *canonical encoding*: the line without its `,"hash":"…"` member
//! (so ending `"prev":"<hex>"}`); the next record's `prev` is that hash; the first record's `prev`
//! is 64 zeros. A stored line decodes only if re-encoding the decoded record gives back exactly
//! its bytes, so every record has one encoding and one hash. Decoding is strict and bounded: at
//! most [`MAX_RECORD_LEN`] bytes, objects nested at most [`MAX_DEPTH`] deep, no duplicate or
//! unknown fields (they change the re-encoding).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The format version every record carries as `"v"`.
pub const AUDIT_FORMAT_VERSION: u64 = 1;
/// Longest stored record, in bytes, newline included. Longer lines are refused unread.
pub const MAX_RECORD_LEN: usize = 16 * 1024;
/// How many characters of a key id a record shows (its tail), as Kodori's audit does: enough to
/// tell keys apart, not the full ARN, Key Vault URL or key path.
pub const KEY_SUFFIX_CHARS: usize = 12;
/// Deepest object nesting a record has (record → event → key snapshot).
const MAX_DEPTH: usize = 3;

/// Who made a change: the configured principal, the host and the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The operator-configured principal (a service or user name), never a credential.
    pub principal: String,
    /// The host name of the machine (as `gethostname` gave it when audit was enabled).
    pub host: String,
    /// The process id.
    pub pid: u32,
}

/// Which key a record is about, as the envelope or slot names it, with the key id shortened to
/// its last [`KEY_SUFFIX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditKey {
    /// The registry slot (`kms_name`); empty for provider `none`.
    pub slot: String,
    /// `"aws-kms"`, `"aws"`, `"local"` or `"none"`.
    pub provider: String,
    /// The last [`KEY_SUFFIX_CHARS`] characters of the key id (all of a shorter one).
    pub key_suffix: String,
    /// The AWS region (empty if none).
    pub region: String,
}

impl AuditKey {
    /// The key of an envelope (slot, provider, key id suffix, region).
    pub(crate) fn of_blob(blob: &crate::KmsBlob) -> AuditKey {
        AuditKey::new(&blob.kms_name, &blob.provider, &blob.key_id, &blob.region)
    }

    /// A key snapshot, shortening `key_id` to its suffix.
    pub(crate) fn new(slot: &str, provider: &str, key_id: &str, region: &str) -> AuditKey {
        AuditKey {
            slot: slot.to_owned(),
            provider: provider.to_owned(),
            key_suffix: key_suffix(key_id),
            region: region.to_owned(),
        }
    }
}

/// The last [`KEY_SUFFIX_CHARS`] characters of `key_id`.
pub(crate) fn key_suffix(key_id: &str) -> String {
    let chars = key_id.chars().count();
    key_id
        .chars()
        .skip(chars.saturating_sub(KEY_SUFFIX_CHARS))
        .collect()
}

/// How an index was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// A KEK wrapped through a registry slot.
    KmsBacked,
    /// Provider `none`: the caller supplies the KEK; no key material is stored.
    CallerSupplied,
}

impl CreateMode {
    fn as_str(self) -> &'static str {
        match self {
            CreateMode::KmsBacked => "kms-backed",
            CreateMode::CallerSupplied => "caller-supplied",
        }
    }
}

/// What happened. Changes to key custody (`Created`, `Pushed`, `Deleted`, `Rewrapped`) are
/// appended *before* the store is written (see `docs/audit.md`); if the write then fails, an
/// `Aborted` record naming the change's `seq` follows when it can be appended. Observations
/// (`DriftDetected`, `UntrustedKey`, `ProviderRefused`) are appended after the fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// An envelope was created (strict insert), by `create_index_kms` or the resolver's
    /// `create_index`.
    Created {
        mode: CreateMode,
        key: AuditKey,
        version: u32,
        /// Hex SHA-256 of the wrapped KEK bytes (empty when nothing is wrapped): ties the record
        /// to the envelope without revealing anything about the KEK.
        wrapped_sha256: String,
    },
    /// An envelope was stored by upsert (`push_index_kms`).
    Pushed {
        key: AuditKey,
        version: u32,
        wrapped_sha256: String,
    },
    /// The envelope was deleted.
    Deleted,
    /// The KEK was re-wrapped from one key to another (the KEK itself is unchanged).
    Rewrapped {
        from: AuditKey,
        to: AuditKey,
        from_version: u32,
        to_version: u32,
        wrapped_sha256: String,
    },
    /// A drift check found the envelope wrapped under a previous key of its slot.
    DriftDetected {
        stored: AuditKey,
        configured: AuditKey,
    },
    /// The trust rules refused the key an envelope names (`UntrustedKey`), in `operation`
    /// (`"resolve"`, `"rewrap"`, `"drift"`).
    UntrustedKey { operation: String, key: AuditKey },
    /// The KMS provider refused in a way that signals revocation (`error` is
    /// `"KmsAccessDenied"`, `"KmsKeyNotFound"` or `"KmsKeyDisabled"`), in `operation`
    /// (`"resolve"`, `"create"`, `"rewrap"`).
    ProviderRefused {
        operation: String,
        error: String,
        key: AuditKey,
    },
    /// Observation: the resolver unwrapped the index's KEK through a provider `count` times
    /// (cache fills; not cache hits, not `none` envelopes) between `since_ms` and `until_ms`
    /// (Unix milliseconds, both inclusive). Appended per index at most once per configured
    /// interval, and when the counts are flushed (see `docs/audit.md`).
    Unwraps {
        count: u64,
        since_ms: u64,
        until_ms: u64,
    },
    /// The change announced by record `of_seq` was not made: the store answered `error` (an
    /// `ErrorKind` name such as `"AlreadyExists"`).
    Aborted { of_seq: u64, error: String },
}

impl AuditEvent {
    /// The event's `"type"` name.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::Created { .. } => "created",
            AuditEvent::Pushed { .. } => "pushed",
            AuditEvent::Deleted => "deleted",
            AuditEvent::Rewrapped { .. } => "rewrapped",
            AuditEvent::DriftDetected { .. } => "drift_detected",
            AuditEvent::UntrustedKey { .. } => "untrusted_key",
            AuditEvent::ProviderRefused { .. } => "provider_refused",
            AuditEvent::Aborted { .. } => "aborted",
            AuditEvent::Unwraps { .. } => "unwraps",
        }
    }
}

/// One record of the custody audit, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 0, with no gaps.
    pub seq: u64,
    /// When it was appended: milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The index it is about.
    pub index: String,
    /// What happened.
    pub event: AuditEvent,
    /// Who did it.
    pub actor: Actor,
    /// SHA-256 of the previous record's canonical encoding; 32 zero bytes for seq 0.
    pub prev_hash: [u8; 32],
    /// SHA-256 of this record's canonical encoding.
    pub hash: [u8; 32],
}

impl AuditRecord {
    /// A new record; its `hash` is computed here. (Records are made by the library as it
    /// appends; this is public so tools and tests can build one to compare or to forge.)
    pub fn new(
        seq: u64,
        time_ms: u64,
        index: &str,
        event: AuditEvent,
        actor: &Actor,
        prev_hash: [u8; 32],
    ) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            time_ms,
            index: index.to_owned(),
            event,
            actor: actor.clone(),
            prev_hash,
            hash: [0; 32],
        };
        record.hash = Sha256::digest(record.canonical().as_bytes()).into();
        record
    }

    /// The canonical encoding (what `hash` is the SHA-256 of): the line without its hash.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"v\":");
        write_u64(&mut out, AUDIT_FORMAT_VERSION);
        out.push_str(",\"seq\":");
        write_u64(&mut out, self.seq);
        out.push_str(",\"time_ms\":");
        write_u64(&mut out, self.time_ms);
        out.push_str(",\"index\":");
        write_str(&mut out, &self.index);
        out.push_str(",\"event\":");
        write_event(&mut out, &self.event);
        out.push_str(",\"actor\":{\"principal\":");
        write_str(&mut out, &self.actor.principal);
        out.push_str(",\"host\":");
        write_str(&mut out, &self.actor.host);
        out.push_str(",\"pid\":");
        write_u64(&mut out, u64::from(self.actor.pid));
        out.push_str("},\"prev\":");
        write_str(&mut out, &hex::encode(self.prev_hash));
        out.push('}');
        out
    }

    /// The stored line: the canonical encoding with `"hash"` as its last member, and a newline.
    pub fn to_line(&self) -> String {
        let mut line = self.canonical();
        line.pop();
        line.push_str(",\"hash\":\"");
        line.push_str(&hex::encode(self.hash));
        line.push_str("\"}\n");
        line
    }

    /// Decodes one stored line (without its newline). Fails unless the line is exactly the
    /// canonical line of the record it decodes to, and its `hash` is the SHA-256 of its
    /// canonical encoding.
    pub(crate) fn decode(line: &[u8]) -> Result<AuditRecord, DecodeError> {
        if line.len() >= MAX_RECORD_LEN {
            return Err(DecodeError::Malformed(format!(
                "{} bytes, more than any record ({MAX_RECORD_LEN})",
                line.len()
            )));
        }
        let text = std::str::from_utf8(line).map_err(|e| match e.error_len() {
            // A character cut at the end: the line is cut short, not foreign.
            None => DecodeError::Truncated,
            Some(_) => DecodeError::Malformed("not UTF-8 text".into()),
        })?;
        let value = Parser::new(text).parse_document()?;
        let mut top = Fields::of(value, "record")?;
        let version = top.u64("v")?;
        if version != AUDIT_FORMAT_VERSION {
            return Err(DecodeError::Malformed(format!(
                "format version {version}; this release reads version {AUDIT_FORMAT_VERSION}"
            )));
        }
        let seq = top.u64("seq")?;
        let time_ms = top.u64("time_ms")?;
        let index = top.string("index")?;
        let event = decode_event(top.object("event")?)?;
        let mut actor = top.object("actor")?;
        let actor = Actor {
            principal: actor.string("principal")?,
            host: actor.string("host")?,
            pid: u32::try_from(actor.u64("pid")?)
                .map_err(|_| DecodeError::Malformed("actor.pid is not a process id".into()))?,
        };
        let prev_hash = hash_field(&mut top, "prev")?;
        let stored_hash = hash_field(&mut top, "hash")?;
        let record = AuditRecord::new(seq, time_ms, &index, event, &actor, prev_hash);
        let canonical_line = record.to_line();
        if canonical_line.as_bytes()[..canonical_line.len() - 1] != *line {
            if record.hash != stored_hash {
                return Err(DecodeError::HashMismatch { seq });
            }
            return Err(DecodeError::Malformed(format!(
                "record {seq} is not in the canonical encoding (fields reordered, added, \
                 duplicated or spaced)"
            )));
        }
        Ok(record)
    }
}

/// Why a stored line is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The line ends before the record does: a torn or cut record.
    Truncated,
    /// Not a record of this format (the reason).
    Malformed(String),
    /// A well-formed record whose content does not hash to its `hash` field: changed after it was
    /// written.
    HashMismatch { seq: u64 },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("the record is cut short"),
            DecodeError::Malformed(why) => write!(f, "not an audit record: {why}"),
            DecodeError::HashMismatch { seq } => write!(
                f,
                "record {seq}'s content does not match its hash: it was changed after it was \
                 written"
            ),
        }
    }
}

fn hash_field(fields: &mut Fields, name: &'static str) -> Result<[u8; 32], DecodeError> {
    let text = fields.string(name)?;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(&text, &mut hash)
        .map_err(|_| DecodeError::Malformed(format!("{name} is not 64 hex digits")))?;
    Ok(hash)
}

fn write_u64(out: &mut String, value: u64) {
    let _ = write!(out, "{value}");
}

/// A JSON string: `"` and `\` escaped with a backslash, control characters as `\u00XX`.
fn write_str(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_key(out: &mut String, key: &AuditKey) {
    out.push_str("{\"slot\":");
    write_str(out, &key.slot);
    out.push_str(",\"provider\":");
    write_str(out, &key.provider);
    out.push_str(",\"key_suffix\":");
    write_str(out, &key.key_suffix);
    out.push_str(",\"region\":");
    write_str(out, &key.region);
    out.push('}');
}

fn write_event(out: &mut String, event: &AuditEvent) {
    out.push_str("{\"type\":");
    write_str(out, event.name());
    match event {
        AuditEvent::Created {
            mode,
            key,
            version,
            wrapped_sha256,
        } => {
            out.push_str(",\"mode\":");
            write_str(out, mode.as_str());
            out.push_str(",\"key\":");
            write_key(out, key);
            out.push_str(",\"version\":");
            write_u64(out, u64::from(*version));
            out.push_str(",\"wrapped_sha256\":");
            write_str(out, wrapped_sha256);
        }
        AuditEvent::Pushed {
            key,
            version,
            wrapped_sha256,
        } => {
            out.push_str(",\"key\":");
            write_key(out, key);
            out.push_str(",\"version\":");
            write_u64(out, u64::from(*version));
            out.push_str(",\"wrapped_sha256\":");
            write_str(out, wrapped_sha256);
        }
        AuditEvent::Deleted => {}
        AuditEvent::Rewrapped {
            from,
            to,
            from_version,
            to_version,
            wrapped_sha256,
        } => {
            out.push_str(",\"from\":");
            write_key(out, from);
            out.push_str(",\"to\":");
            write_key(out, to);
            out.push_str(",\"from_version\":");
            write_u64(out, u64::from(*from_version));
            out.push_str(",\"to_version\":");
            write_u64(out, u64::from(*to_version));
            out.push_str(",\"wrapped_sha256\":");
            write_str(out, wrapped_sha256);
        }
        AuditEvent::DriftDetected { stored, configured } => {
            out.push_str(",\"stored\":");
            write_key(out, stored);
            out.push_str(",\"configured\":");
            write_key(out, configured);
        }
        AuditEvent::UntrustedKey { operation, key } => {
            out.push_str(",\"operation\":");
            write_str(out, operation);
            out.push_str(",\"key\":");
            write_key(out, key);
        }
        AuditEvent::ProviderRefused {
            operation,
            error,
            key,
        } => {
            out.push_str(",\"operation\":");
            write_str(out, operation);
            out.push_str(",\"error\":");
            write_str(out, error);
            out.push_str(",\"key\":");
            write_key(out, key);
        }
        AuditEvent::Aborted { of_seq, error } => {
            out.push_str(",\"of_seq\":");
            write_u64(out, *of_seq);
            out.push_str(",\"error\":");
            write_str(out, error);
        }
        AuditEvent::Unwraps {
            count,
            since_ms,
            until_ms,
        } => {
            out.push_str(",\"count\":");
            write_u64(out, *count);
            out.push_str(",\"since_ms\":");
            write_u64(out, *since_ms);
            out.push_str(",\"until_ms\":");
            write_u64(out, *until_ms);
        }
    }
    out.push('}');
}

fn decode_key(mut fields: Fields) -> Result<AuditKey, DecodeError> {
    Ok(AuditKey {
        slot: fields.string("slot")?,
        provider: fields.string("provider")?,
        key_suffix: fields.string("key_suffix")?,
        region: fields.string("region")?,
    })
}

fn version_field(fields: &mut Fields, name: &'static str) -> Result<u32, DecodeError> {
    u32::try_from(fields.u64(name)?)
        .map_err(|_| DecodeError::Malformed(format!("event.{name} is over u32")))
}

fn decode_event(mut fields: Fields) -> Result<AuditEvent, DecodeError> {
    let kind = fields.string("type")?;
    Ok(match kind.as_str() {
        "created" => AuditEvent::Created {
            mode: match fields.string("mode")?.as_str() {
                "kms-backed" => CreateMode::KmsBacked,
                "caller-supplied" => CreateMode::CallerSupplied,
                other => {
                    return Err(DecodeError::Malformed(format!(
                        "event.mode {other:?} is not kms-backed or caller-supplied"
                    )))
                }
            },
            key: decode_key(fields.object("key")?)?,
            version: version_field(&mut fields, "version")?,
            wrapped_sha256: fields.string("wrapped_sha256")?,
        },
        "pushed" => AuditEvent::Pushed {
            key: decode_key(fields.object("key")?)?,
            version: version_field(&mut fields, "version")?,
            wrapped_sha256: fields.string("wrapped_sha256")?,
        },
        "deleted" => AuditEvent::Deleted,
        "rewrapped" => AuditEvent::Rewrapped {
            from: decode_key(fields.object("from")?)?,
            to: decode_key(fields.object("to")?)?,
            from_version: version_field(&mut fields, "from_version")?,
            to_version: version_field(&mut fields, "to_version")?,
            wrapped_sha256: fields.string("wrapped_sha256")?,
        },
        "drift_detected" => AuditEvent::DriftDetected {
            stored: decode_key(fields.object("stored")?)?,
            configured: decode_key(fields.object("configured")?)?,
        },
        "untrusted_key" => AuditEvent::UntrustedKey {
            operation: fields.string("operation")?,
            key: decode_key(fields.object("key")?)?,
        },
        "provider_refused" => AuditEvent::ProviderRefused {
            operation: fields.string("operation")?,
            error: fields.string("error")?,
            key: decode_key(fields.object("key")?)?,
        },
        "aborted" => AuditEvent::Aborted {
            of_seq: fields.u64("of_seq")?,
            error: fields.string("error")?,
        },
        "unwraps" => AuditEvent::Unwraps {
            count: fields.u64("count")?,
            since_ms: fields.u64("since_ms")?,
            until_ms: fields.u64("until_ms")?,
        },
        other => {
            return Err(DecodeError::Malformed(format!(
                "unknown event type {}",
                crate::error::quoted_prefix(other)
            )))
        }
    })
}

/// A parsed JSON value of the subset records use.
enum Value {
    Str(String),
    Num(u64),
    Obj(Vec<(String, Value)>),
}

/// The members of one object, taken by name (order and extras are checked by re-encoding).
struct Fields {
    what: &'static str,
    members: Vec<(String, Value)>,
}

impl Fields {
    fn of(value: Value, what: &'static str) -> Result<Fields, DecodeError> {
        match value {
            Value::Obj(members) => Ok(Fields { what, members }),
            _ => Err(DecodeError::Malformed(format!("{what} is not an object"))),
        }
    }

    fn take(&mut self, name: &'static str) -> Result<Value, DecodeError> {
        let at = self
            .members
            .iter()
            .position(|(key, _)| key == name)
            .ok_or_else(|| DecodeError::Malformed(format!("{} has no {name}", self.what)))?;
        Ok(self.members.swap_remove(at).1)
    }

    fn string(&mut self, name: &'static str) -> Result<String, DecodeError> {
        match self.take(name)? {
            Value::Str(s) => Ok(s),
            _ => Err(DecodeError::Malformed(format!(
                "{}.{name} is not a string",
                self.what
            ))),
        }
    }

    fn u64(&mut self, name: &'static str) -> Result<u64, DecodeError> {
        match self.take(name)? {
            Value::Num(n) => Ok(n),
            _ => Err(DecodeError::Malformed(format!(
                "{}.{name} is not a number",
                self.what
            ))),
        }
    }

    fn object(&mut self, name: &'static str) -> Result<Fields, DecodeError> {
        let value = self.take(name)?;
        Fields::of(value, name)
    }
}

/// A strict parser of the JSON subset records use: objects, strings, unsigned integers; no
/// whitespace. Depth-limited; every input ends in bounded time (one pass).
struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            bytes: text.as_bytes(),
            text,
            at: 0,
        }
    }

    fn parse_document(mut self) -> Result<Value, DecodeError> {
        let value = self.value(0)?;
        if self.at != self.bytes.len() {
            return Err(DecodeError::Malformed(format!(
                "unexpected bytes after the record at byte {}",
                self.at
            )));
        }
        Ok(value)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.bytes
            .get(self.at)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    fn expect(&mut self, byte: u8) -> Result<(), DecodeError> {
        if self.peek()? != byte {
            return Err(DecodeError::Malformed(format!(
                "expected {:?} at byte {}",
                byte as char, self.at
            )));
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        match self.peek()? {
            b'{' => self.object(depth),
            b'"' => self.string().map(Value::Str),
            b'0'..=b'9' => self.number().map(Value::Num),
            other => Err(DecodeError::Malformed(format!(
                "unexpected byte 0x{other:02x} at byte {}",
                self.at
            ))),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::Malformed("objects nested too deep".into()));
        }
        self.expect(b'{')?;
        let mut members = Vec::new();
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(Value::Obj(members));
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value(depth + 1)?;
            members.push((key, value));
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Ok(Value::Obj(members));
                }
                other => {
                    return Err(DecodeError::Malformed(format!(
                        "unexpected byte 0x{other:02x} at byte {}",
                        self.at
                    )))
                }
            }
        }
    }

    fn number(&mut self) -> Result<u64, DecodeError> {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.text[start..self.at]
            .parse()
            .map_err(|_| DecodeError::Malformed(format!("number at byte {start} is over u64")))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while self
                .bytes
                .get(self.at)
                .is_some_and(|b| *b != b'"' && *b != b'\\')
            {
                self.at += 1;
            }
            out.push_str(&self.text[start..self.at]);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                _ => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'u' => {
                            let hex = self
                                .text
                                .get(self.at + 1..self.at + 5)
                                .ok_or(DecodeError::Truncated)?;
                            let code = u32::from_str_radix(hex, 16).map_err(|_| {
                                DecodeError::Malformed(format!(
                                    "bad \\u escape at byte {}",
                                    self.at
                                ))
                            })?;
                            // Records escape only control characters; anything else is not
                            // canonical and fails the re-encoding check.
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            self.at += 4;
                        }
                        other => {
                            return Err(DecodeError::Malformed(format!(
                                "bad escape \\{} at byte {}",
                                other as char, self.at
                            )))
                        }
                    }
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            principal: "ops \"team\"\n".into(),
            host: "host-1".into(),
            pid: 42,
        }
    }

    fn every_event() -> Vec<AuditEvent> {
        let key = AuditKey::new(
            "slot",
            "aws-kms",
            "arn:aws:kms:us-east-1:1:key/abcdef-123456",
            "us-east-1",
        );
        vec![
            AuditEvent::Created {
                mode: CreateMode::KmsBacked,
                key: key.clone(),
                version: 1,
                wrapped_sha256: "ab".repeat(32),
            },
            AuditEvent::Pushed {
                key: key.clone(),
                version: 7,
                wrapped_sha256: String::new(),
            },
            AuditEvent::Deleted,
            AuditEvent::Rewrapped {
                from: key.clone(),
                to: AuditKey::default(),
                from_version: 1,
                to_version: 2,
                wrapped_sha256: String::new(),
            },
            AuditEvent::DriftDetected {
                stored: key.clone(),
                configured: key.clone(),
            },
            AuditEvent::UntrustedKey {
                operation: "resolve".into(),
                key: key.clone(),
            },
            AuditEvent::ProviderRefused {
                operation: "resolve".into(),
                error: "KmsAccessDenied".into(),
                key,
            },
            AuditEvent::Aborted {
                of_seq: 3,
                error: "AlreadyExists".into(),
            },
            AuditEvent::Unwraps {
                count: 12,
                since_ms: 1_700_000_000_000,
                until_ms: 1_700_000_060_000,
            },
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_line() {
        let mut prev = [0u8; 32];
        for (seq, event) in every_event().into_iter().enumerate() {
            let record = AuditRecord::new(
                seq as u64,
                1_700_000_000_000,
                "ix\u{1}é",
                event,
                &actor(),
                prev,
            );
            let line = record.to_line();
            assert!(line.ends_with("\"}\n") && !line[..line.len() - 1].contains('\n'));
            let decoded = AuditRecord::decode(&line.as_bytes()[..line.len() - 1]).unwrap();
            assert_eq!(decoded, record);
            prev = record.hash;
        }
    }

    #[test]
    fn an_unwraps_record_has_its_fields_in_the_fixed_order_and_nothing_else_decodes() {
        let event = AuditEvent::Unwraps {
            count: 3,
            since_ms: 10,
            until_ms: 20,
        };
        let record = AuditRecord::new(0, 20, "idx", event, &actor(), [0; 32]);
        let line = record.to_line();
        assert!(line.contains(
            ",\"event\":{\"type\":\"unwraps\",\"count\":3,\"since_ms\":10,\"until_ms\":20},"
        ));
        let line = line.trim_end();
        for (from, to) in [
            ("\"count\":3,\"since_ms\":10", "\"since_ms\":10,\"count\":3"),
            ("\"count\":3", "\"count\":03"),
            ("\"until_ms\":20}", "\"until_ms\":20,\"key\":\"x\"}"),
            (",\"until_ms\":20", ""),
            ("\"count\":3", "\"count\":\"3\""),
        ] {
            let changed = line.replacen(from, to, 1);
            assert_ne!(changed, line);
            assert!(
                AuditRecord::decode(changed.as_bytes()).is_err(),
                "{from} -> {to} decoded"
            );
        }
    }

    #[test]
    fn key_ids_show_only_their_last_twelve_characters() {
        assert_eq!(
            key_suffix("arn:aws:kms:us-east-1:111:key/1234abcd-5678"),
            "1234abcd-5678"[1..]
        );
        assert_eq!(key_suffix("short"), "short");
        assert_eq!(key_suffix("ééééééééééééééé").chars().count(), 12);
    }

    #[test]
    fn changed_spaced_reordered_or_cut_lines_do_not_decode() {
        let record = AuditRecord::new(0, 1, "idx", AuditEvent::Deleted, &actor(), [0; 32]);
        let line = record.to_line();
        let line = line.trim_end();
        let changed = line.replace("\"idx\"", "\"idy\"");
        assert_eq!(
            AuditRecord::decode(changed.as_bytes()),
            Err(DecodeError::HashMismatch { seq: 0 })
        );
        let spaced = line.replacen(':', ": ", 1);
        assert!(matches!(
            AuditRecord::decode(spaced.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
        let reordered = line.replacen("\"v\":1,\"seq\":0", "\"seq\":0,\"v\":1", 1);
        assert!(matches!(
            AuditRecord::decode(reordered.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
        for cut in 1..line.len() {
            assert_eq!(
                AuditRecord::decode(&line.as_bytes()[..cut]),
                Err(DecodeError::Truncated),
                "cut at {cut}"
            );
        }
        let nested = "{\"a\":".repeat(10_000);
        assert!(matches!(
            AuditRecord::decode(nested.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            AuditRecord::decode(&[0xff, 0x00, 0x13]),
            Err(DecodeError::Malformed(_))
        ));
    }
}
