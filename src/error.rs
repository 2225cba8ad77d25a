//! The one error type of the Rust API. Every message names the index and the underlying cause
//! (OS error, verifier finding) and never contains key material.

use std::fmt;

/// What went wrong, coarsely enough to act on. Each kind maps to one stable C result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller passed something the library refuses: a bad index name, field or path.
    InvalidArgument,
    /// No envelope is stored for the index.
    NotFound,
    /// `create` found an envelope already stored for the index.
    AlreadyExists,
    /// The stored envelope is truncated, damaged, foreign, or belongs to another index.
    Corrupt,
    /// The storage backend failed (OS error, permissions, full disk).
    Io,
    /// A remote store (S3) did not answer in time or could not be reached.
    StorageUnavailable,
    /// A remote store (S3) refused the credentials or the request (403, bad keys, no such bucket
    /// under this account).
    StorageAccessDenied,
    /// The wrapped KEK was rejected: wrong key, wrong index or context, damaged ciphertext, or the
    /// unwrapped key is not 32 bytes.
    DecryptFailed,
    /// The KMS provider denied access (sts:AssumeRole, kms:Decrypt, secretsmanager:GetSecretValue).
    KmsAccessDenied,
    /// The KMS key or Secrets Manager secret does not exist (or not in that region).
    KmsKeyNotFound,
    /// The KMS key is disabled or pending deletion, or the secret is scheduled for deletion.
    KmsKeyDisabled,
    /// The KMS provider throttled the request; retry later.
    KmsThrottled,
    /// The KMS provider did not answer within the configured timeouts or could not be reached.
    KmsUnavailable,
    /// The KMS provider answered with something unusable: a malformed body, a server error.
    KmsBadResponse,
    /// The wrap key (the Secrets Manager value, the local master key) is not exactly 32 bytes.
    WrapKeySize,
    /// No registry slot has the requested name.
    UnknownSlot,
    /// The KMS registry or client configuration is invalid (the message names slot and field).
    InvalidConfig,
    /// The envelope's provider is `none`: nothing is wrapped; the caller supplies the KEK.
    KekNotWrapped,
    /// The envelope names a key its slot does not trust: not the slot's current key, not one of
    /// its `previous_keys`, or a `local` key in a client that did not enable the local provider.
    /// Refused before any KMS call; the message says which registry line would trust it.
    UntrustedKey,
    /// The stored envelope changed while an operation that read it was running (for example a
    /// push during a re-wrap); nothing was written. Re-read and retry.
    Conflict,
    /// A caller's callback (the engine's re-wrap in a new-KEK rotation) reported failure; what
    /// the call had begun for that index was rolled back.
    CallbackFailed,
    /// The object was created before this process was forked from its parent: in the child its
    /// runtime threads do not exist, so it refuses every call. Create a new one in the child
    /// (the memory and disk stores are the exception: they keep working).
    ForkedProcess,
    /// A bug in the library: a panic was caught (in this call or one it was waiting for).
    Internal,
}

/// An error with its [`ErrorKind`] and a human-readable message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The result type of every fallible call in this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with `message`: for tools built on this library (the `cyborgdb-kms`
    /// CLI) that report findings of their own under the library's codes. The message must not
    /// contain key material.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn already_exists(index: &crate::IndexName) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            format!("index {index}: a KMS envelope already exists"),
        )
    }

    pub(crate) fn not_found(index: &crate::IndexName) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("index {index}: no KMS envelope is stored"),
        )
    }

    /// An OS-level failure of `action` (e.g. "cannot write envelope to /root/x.kms").
    pub(crate) fn io<'a>(
        subject: impl Into<Subject<'a>>,
        action: impl fmt::Display,
        cause: &std::io::Error,
    ) -> Self {
        let subject = subject.into();
        Self::new(ErrorKind::Io, format!("{subject}: {action}: {cause}"))
    }

    /// Stored bytes at `location` failed verification for `reason`.
    pub(crate) fn corrupt<'a>(
        subject: impl Into<Subject<'a>>,
        location: impl fmt::Display,
        reason: impl fmt::Display,
    ) -> Self {
        let subject = subject.into();
        Self::new(
            ErrorKind::Corrupt,
            format!("{subject}: stored KMS envelope at {location} is corrupt: {reason}"),
        )
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The full message: index, operation and cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with more context, keeping the kind.
    pub(crate) fn context(self, context: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}, {:?})", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// What a storage error is about; its message begins with this.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject<'a> {
    /// An operation on one index: `index "<name>"`.
    Index(&'a crate::IndexName),
    /// Listing the stored envelopes (and reading those whose name only they record).
    Listing,
    /// The store's custody audit log.
    Audit,
}

impl<'a> From<&'a crate::IndexName> for Subject<'a> {
    fn from(index: &'a crate::IndexName) -> Self {
        Subject::Index(index)
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Index(index) => write!(f, "index {index}"),
            Subject::Listing => f.write_str("listing KMS envelopes"),
            Subject::Audit => f.write_str("audit log"),
        }
    }
}

/// A caller-supplied string for an error message: quoted, escaped, cut at 64 characters.
pub(crate) fn quoted_prefix(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_prefix_cuts_long_values_on_a_char_boundary() {
        let long = "é".repeat(100);
        let shown = quoted_prefix(&long);
        assert!(shown.ends_with("..."));
        assert_eq!(shown.chars().filter(|c| *c == 'é').count(), 64);
    }
}
