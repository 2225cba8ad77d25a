//! Where envelopes live. [`StorageConfig`] is the public handle; behind it sits one backend per
//! kind of store, each implementing [`EnvelopeBackend`] over encoded bytes. The backend owns
//! atomicity (strict insert, whole-object replace); validation and the file format live above it
//! (`crate::envelope`, `crate::codec`), so a new backend plugs in without touching either or the
//! C boundary.

mod disk;
mod memory;
mod s3;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use crate::audit::{AuditOptions, Auditor};
use crate::error::{Error, Result};
use crate::index_name::IndexName;

pub(crate) use disk::DiskStore;
pub(crate) use memory::MemoryStore;
use s3::S3Store;
pub use s3::{S3Credentials, S3Options, S3ServerSideEncryption, MAX_S3_PREFIX_LEN};

/// What an audited write runs before its envelope can become visible: makes the change's audit
/// record durable. Owned (`'static`), so a store may run it on a pooled thread meanwhile.
pub(crate) type BeforePublish = std::sync::Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// One kind of envelope store. Implementations are shared across threads and must make each call
/// atomic: a reader sees a whole old or a whole new envelope, never a mix.
pub(crate) trait EnvelopeBackend: Send + Sync {
    /// Stores `bytes` for `index` only if nothing is stored yet. Of several racing creators exactly
    /// one succeeds; the others get `AlreadyExists`. On failure nothing is left behind.
    fn create(&self, index: &IndexName, bytes: &[u8]) -> Result<()>;
    /// Stores `bytes` for `index`, replacing what is there. On failure the old envelope stays.
    fn put(&self, index: &IndexName, bytes: &[u8]) -> Result<()>;
    /// The stored bytes, or `None` if nothing is stored.
    fn get(&self, index: &IndexName) -> Result<Option<Vec<u8>>>;
    /// Stores `bytes` for `index` only if the stored envelope is still the version `expected`
    /// names (as [`EnvelopeBackend::get_revision`] read it) — a compare-and-swap, atomic against
    /// every other write made through this library, in any process. `Conflict` if the envelope
    /// is another or is gone; nothing is written then. On any failure the stored envelope stays.
    fn replace_if(&self, index: &IndexName, expected: &Revision, bytes: &[u8]) -> Result<()>;
    /// As `get`, with the [`Revision`] a later `replace_if` names this version by. The default
    /// has no version tag: the digest of the bytes is the revision.
    fn get_revision(&self, index: &IndexName) -> Result<Option<(Vec<u8>, Revision)>> {
        Ok(self.get(index)?.map(|bytes| {
            let revision = Revision::of(&bytes, None);
            (bytes, revision)
        }))
    }
    /// Whether the stored envelope is still the version `known` names (the KEK cache's
    /// revalidation). The default reads it whole and compares digests; S3 asks with a conditional
    /// GET (`If-None-Match: <known ETag>`), a 304 carrying that ETag meaning unchanged; Disk
    /// compares the file's stat with the stamp remembered and reads only if it differs.
    fn recheck(&self, index: &IndexName, known: &Revision) -> Result<Recheck> {
        recheck_by_digest(self, index, known)
    }
    /// As [`EnvelopeBackend::create`], calling `before_publish` (which makes the audit record of
    /// the change durable) before the envelope can become visible; if it fails nothing is stored
    /// and its error is returned. The default calls it first; disk runs it on a pooled thread
    /// while it writes the temp file.
    fn create_after(
        &self,
        index: &IndexName,
        bytes: &[u8],
        before_publish: &BeforePublish,
    ) -> Result<()> {
        before_publish.as_ref()()?;
        self.create(index, bytes)
    }
    /// As [`EnvelopeBackend::put`], with `before_publish` as in [`EnvelopeBackend::create_after`].
    fn put_after(
        &self,
        index: &IndexName,
        bytes: &[u8],
        before_publish: &BeforePublish,
    ) -> Result<()> {
        before_publish.as_ref()()?;
        self.put(index, bytes)
    }
    /// As [`EnvelopeBackend::replace_if`], with `before_publish` as in
    /// [`EnvelopeBackend::create_after`].
    fn replace_if_after(
        &self,
        index: &IndexName,
        expected: &Revision,
        bytes: &[u8],
        before_publish: &BeforePublish,
    ) -> Result<()> {
        before_publish.as_ref()()?;
        self.replace_if(index, expected, bytes)
    }
    /// Removes the envelope; removing a missing one succeeds. Any failure other than "does not
    /// exist" (a root or bucket that cannot be reached, permissions, a symlink loop) is an
    /// error: a delete never reports success while an envelope may still be stored.
    fn delete(&self, index: &IndexName) -> Result<()>;
    /// Where `index`'s envelope lives, for error messages.
    fn location(&self, index: &IndexName) -> String;
    /// The storage keys ([`IndexName::storage_key`], without `.kms`) of every stored envelope, in
    /// no particular order. Entries no storage key names (temp files, foreign files, directories,
    /// deeper S3 "folders") are left out. Errors are about [`Subject::Listing`](crate::error::Subject::Listing).
    fn list_keys(&self) -> Result<Vec<String>>;
    /// The bytes stored under storage key `key` (one [`list_keys`](Self::list_keys) returned), or
    /// `None` if nothing is stored. Errors are about [`Subject::Listing`](crate::error::Subject::Listing).
    fn get_by_key(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Where the envelope with storage key `key` lives, for error messages.
    fn key_location(&self, key: &str) -> String;
    /// The store's custody audit log (used only when audit is enabled, or to verify and read it).
    fn audit_log(&self) -> &dyn crate::audit::AuditLog;
    /// Stores `bytes` as `index`'s sidecar `kind` (the object `<storage key><kind suffix>` next
    /// to the envelope) only if none is stored: a strict insert with exactly one winner, as
    /// `create`. `AlreadyExists` if one is stored. Sidecars are never listed as envelopes.
    fn create_sidecar(&self, index: &IndexName, kind: Sidecar, bytes: &[u8]) -> Result<()>;
    /// The bytes of `index`'s sidecar `kind` (bounded as an envelope read: more than
    /// `MAX_ENCODED_LEN` bytes is `Corrupt`), or `None` if there is none.
    fn get_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<Option<Vec<u8>>>;
    /// Removes `index`'s sidecar `kind`; removing a missing one succeeds.
    fn delete_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<()>;
    /// Where `index`'s sidecar `kind` lives, for error messages.
    fn sidecar_location(&self, index: &IndexName, kind: Sidecar) -> String;
}

/// Suffix of a pending-rotation record's file or object name: `<storage key>.rot`.
const PENDING_ROTATION_SUFFIX: &str = ".rot";
const _: () = assert!(PENDING_ROTATION_SUFFIX.len() <= ENVELOPE_SUFFIX.len());

/// An object kept next to an index's envelope, in the same store, under the envelope's storage
/// key with its own suffix (never `.kms`, so listings and older releases ignore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sidecar {
    /// A new-KEK rotation in progress (`crate::resolver`'s pending-rotation record).
    PendingRotation,
}

impl Sidecar {
    /// The file or object name suffix: `<storage key><suffix>`. As long as `.kms`, so every
    /// sidecar key fits wherever its envelope's does (S3's 1024-byte key limit).
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Sidecar::PendingRotation => PENDING_ROTATION_SUFFIX,
        }
    }
}

/// Suffix of an envelope's file or object name: `<storage key>.kms`.
pub(crate) const ENVELOPE_SUFFIX: &str = ".kms";

/// The storage key of an envelope's file or object name (`<key>.kms`, relative to the root or
/// prefix), or `None` if the name is not one the library writes: a temp file, a foreign file, a
/// key `storage_key` never produces.
pub(crate) fn key_of_envelope_name(name: &str) -> Option<&str> {
    let key = name.strip_suffix(ENVELOPE_SUFFIX)?;
    IndexName::parse_storage_key(key).map(|_| key)
}

/// Identifies the backing store where index keystores — and their envelopes — live.
///
/// Immutable and cheap to clone; clones share the same store, so all copies of one
/// [`StorageConfig::memory`] see the same envelopes. Safe to use from any number of threads.
#[derive(Clone)]
pub struct StorageConfig {
    backend: Arc<dyn EnvelopeBackend>,
    description: Arc<str>,
    location: Arc<StorageLocation>,
    /// Set by [`StorageConfig::with_audit`]: custody changes through this config are audited.
    audit: Option<Arc<Auditor>>,
}

/// The `Conflict` of a compare-and-swap that found another envelope (or none) stored.
pub(crate) fn conflict(index: &IndexName) -> Error {
    Error::new(
        crate::error::ErrorKind::Conflict,
        format!("index {index}: the stored KMS envelope changed meanwhile; nothing was written"),
    )
}

/// [`EnvelopeBackend::recheck`] by reading the envelope whole and comparing digests.
pub(crate) fn recheck_by_digest<B: EnvelopeBackend + ?Sized>(
    backend: &B,
    index: &IndexName,
    known: &Revision,
) -> Result<Recheck> {
    Ok(match backend.get_revision(index)? {
        None => Recheck::Gone,
        Some((_, revision)) if revision.digest == known.digest => Recheck::Unchanged(revision),
        Some((bytes, revision)) => Recheck::Changed(bytes, revision),
    })
}

/// What [`EnvelopeBackend::recheck`] found.
pub(crate) enum Recheck {
    /// The same envelope, as this revision (its ETag may be new if the server re-tagged it).
    Unchanged(Revision),
    /// Another envelope: its bytes and revision.
    Changed(Vec<u8>, Revision),
    /// Nothing is stored.
    Gone,
}

/// Which stored version of an envelope a read saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Revision {
    /// SHA-256 of the stored bytes: equal digests mean the same envelope (the KEK cache's check,
    /// and the compare of memory and disk).
    pub(crate) digest: [u8; 32],
    /// The store's own version tag, if it has one (S3: the ETag, for `If-Match` and
    /// `If-None-Match`; Disk: the file's stat stamp, for a revalidation without a read).
    pub(crate) etag: Option<String>,
}

impl Revision {
    pub(crate) fn of(bytes: &[u8], etag: Option<String>) -> Revision {
        use sha2::Digest as _;
        Revision {
            digest: sha2::Sha256::digest(bytes).into(),
            etag,
        }
    }
}

/// The identity of one store within this process, shared by every [`StorageConfig`] that names
/// it (the same disk directory, the same S3 endpoint + bucket + prefix, or clones of one memory
/// store), and a counter of the writes made through any of them.
///
/// The KEK cache keys entries on `id` and trusts an entry without reading storage only while
/// `write_generation` is unchanged since the entry was checked against the stored envelope.
pub(crate) struct StorageLocation {
    id: u64,
    write_generation: AtomicU64,
}

impl StorageLocation {
    /// A location no other config shares.
    fn unique() -> Arc<StorageLocation> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Arc::new(StorageLocation {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            write_generation: AtomicU64::new(0),
        })
    }

    /// The location named `identity`, shared with every live config of the same identity.
    fn shared(identity: String) -> Arc<StorageLocation> {
        static LOCATIONS: LazyLock<Mutex<HashMap<String, Weak<StorageLocation>>>> =
            LazyLock::new(Mutex::default);
        let mut locations = LOCATIONS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(location) = locations.get(&identity).and_then(Weak::upgrade) {
            return location;
        }
        locations.retain(|_, location| location.strong_count() > 0);
        let location = StorageLocation::unique();
        locations.insert(identity, Arc::downgrade(&location));
        location
    }

    /// Process-unique id of this store.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Writes (create, push, delete — finished or failed) made through this process so far.
    pub(crate) fn write_generation(&self) -> u64 {
        self.write_generation.load(Ordering::Acquire)
    }

    /// Records that a write to this store has finished (or failed, which may still have changed
    /// it), after the backend call returned.
    pub(crate) fn note_write(&self) {
        self.write_generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl StorageConfig {
    /// A new, empty in-process store. Envelopes last as long as the last clone of this config.
    pub fn memory() -> Self {
        StorageConfig {
            backend: Arc::new(MemoryStore::default()),
            description: "memory".into(),
            location: StorageLocation::unique(),
            audit: None,
        }
    }

    /// A directory on local disk (created on the first write). A relative `root` is resolved
    /// against the current directory now, so a later `chdir` does not move the store.
    ///
    /// Errors: `InvalidArgument` for an empty path or one containing NUL.
    pub fn disk(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        if root.as_os_str().is_empty() {
            return Err(Error::invalid_argument(
                "disk storage path must not be empty",
            ));
        }
        if root.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Error::invalid_argument(
                "disk storage path contains a NUL byte",
            ));
        }
        let root: PathBuf = std::path::absolute(root).map_err(|e| {
            Error::invalid_argument(format!("cannot resolve disk storage path {root:?}: {e}"))
        })?;
        Ok(StorageConfig {
            description: format!("disk:{}", root.display()).into(),
            location: StorageLocation::shared(format!(
                "disk:{}",
                canonical_identity(&root).display()
            )),
            backend: Arc::new(DiskStore::new(root)),
            audit: None,
        })
    }

    /// A bucket in S3 or an S3-compatible store (MinIO, Ceph, R2), shared by every node that
    /// uses the same bucket and prefix. The envelope of index `N` is the object
    /// `<prefix>/<storage key of N>.kms` (see [`IndexName::storage_key`]; a `/` is added to a
    /// non-empty prefix that lacks one). Creates are conditional writes (`If-None-Match: *`):
    /// racing creators on any number of machines have exactly one winner.
    ///
    /// No network I/O happens here: the S3 client is built by the first operation, within its
    /// time bound. The store owns no thread or descriptor: operations run on the library's
    /// process-wide runtime. Credentials are `options.credentials` if
    /// given (and then only those), else the default AWS chain; see [`S3Options`] for the region
    /// and endpoint rules.
    ///
    /// Errors: `InvalidArgument` for a bucket name that breaks S3's rules, a bad prefix, region,
    /// endpoint, credentials (the message names the field, never its secret value) or a zero
    /// timeout.
    ///
    /// **fork.** In a child forked after this call, every operation on the store fails at once
    /// with `ForkedProcess` (memory and disk stores keep working); make a new one in the child.
    pub fn s3(bucket: &str, options: S3Options) -> Result<Self> {
        let endpoint = options.endpoint.clone().unwrap_or_else(|| "AWS".to_owned());
        let store = S3Store::new(bucket, options)?;
        let identity = format!("{} at {endpoint}", store.describe());
        Ok(StorageConfig {
            description: store.describe().into(),
            location: StorageLocation::shared(identity),
            backend: Arc::new(store),
            audit: None,
        })
    }

    /// This store with the custody audit on: every create, push, delete and re-wrap through
    /// the returned config (and the resolver acting on it) first appends a hash-chained record to
    /// the store's audit log (see [`crate::audit`] and `docs/audit.md`), naming `options`'
    /// principal, this host and this process. The store itself is shared with `self` (which
    /// stays unaudited); clones of the returned config share its audit.
    ///
    /// Errors: `InvalidArgument` naming the option (`principal`, `host`) that is empty, too long
    /// or holds a control character.
    pub fn with_audit(&self, options: &AuditOptions) -> Result<StorageConfig> {
        Ok(self.with_auditor(Auditor::new(options)?))
    }

    /// This store audited by `auditor` (shared with other configs).
    pub(crate) fn with_auditor(&self, auditor: Arc<Auditor>) -> StorageConfig {
        StorageConfig {
            audit: Some(auditor),
            ..self.clone()
        }
    }

    /// The actor this config's audit records name, or `None` if audit is off.
    pub fn audit_actor(&self) -> Option<&crate::audit::Actor> {
        self.audit.as_deref().map(Auditor::actor)
    }

    pub(crate) fn auditor(&self) -> Option<&Auditor> {
        self.audit.as_deref()
    }

    /// The shared auditor, to tell audit settings apart.
    pub(crate) fn auditor_arc(&self) -> Option<&Arc<Auditor>> {
        self.audit.as_ref()
    }

    pub(crate) fn backend(&self) -> &dyn EnvelopeBackend {
        &*self.backend
    }

    pub(crate) fn location(&self) -> &StorageLocation {
        &self.location
    }
}

/// `path` with symlinks resolved as far as it exists: the longest existing ancestor is
/// canonicalized and the rest appended. So two configs naming one directory through different
/// links — before or after it is created — get the same identity.
fn canonical_identity(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            return rest
                .iter()
                .rev()
                .fold(canonical, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageConfig({})", self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_directory_is_one_store_however_it_is_named_and_whenever() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        // Not created yet, named through the link and directly.
        let via_link = StorageConfig::disk(dir.path().join("link/store")).unwrap();
        let direct = StorageConfig::disk(real.join("store")).unwrap();
        assert_eq!(via_link.location().id(), direct.location().id());
        std::fs::create_dir(real.join("store")).unwrap();
        let later = StorageConfig::disk(dir.path().join("link/./store")).unwrap();
        assert_eq!(later.location().id(), direct.location().id());
        let other = StorageConfig::disk(real.join("other")).unwrap();
        assert_ne!(other.location().id(), direct.location().id());
        // Writes through one are seen by the other's generation.
        let before = direct.location().write_generation();
        crate::push_index_kms(
            &via_link,
            "i",
            &crate::KmsBlob {
                provider: "none".into(),
                version: 1,
                ..crate::KmsBlob::default()
            },
        )
        .unwrap();
        assert!(direct.location().write_generation() > before);
        // S3: one endpoint + bucket + (normalized) prefix is one store (while a config of it
        // lives); no I/O happens here.
        let s3 = |prefix: &str, endpoint: &str| {
            StorageConfig::s3(
                "bucket",
                S3Options {
                    prefix: prefix.into(),
                    region: Some("us-east-1".into()),
                    endpoint: Some(endpoint.into()),
                    credentials: Some(S3Credentials::new("key", "secret")),
                    ..S3Options::default()
                },
            )
            .unwrap()
        };
        let ks = s3("ks", "http://127.0.0.1:9");
        let id = |config: &StorageConfig| config.location().id();
        assert_eq!(id(&ks), id(&s3("ks/", "http://127.0.0.1:9")));
        assert_ne!(id(&ks), id(&s3("other", "http://127.0.0.1:9")));
        assert_ne!(id(&ks), id(&s3("ks", "http://127.0.0.2:9")));
        // Memory stores are their own identity; clones share it.
        let memory = StorageConfig::memory();
        assert_eq!(memory.clone().location().id(), memory.location().id());
        assert_ne!(
            StorageConfig::memory().location().id(),
            memory.location().id()
        );
    }
}
