//! The local-disk backend of [`crate::StorageConfig::disk`].
//!
//! Layout: the envelope of index `N` is the file `<root>/<N.storage_key()>.kms`, in the directory
//! that holds the index keystores. Writes go through a temp file `<root>/.cyborgdb-kms.*.tmp`
//! that is written, fsynced, then published — by `link` for a create (fails if the envelope
//! exists: exactly one winner, no check-then-write window) or by `rename` for a push (atomic
//! replace) — and the directory is fsynced. Readers open only final names, so they never see a
//! partial file. A writer holds an advisory lock on its temp file; temp files whose writer is gone
//! (lock free) and that are older than [`STALE_TEMP_AGE`] are removed once per process and root.
//! Listing reads the root directory and keeps the files named `<storage key>.kms`.
//! Every read of an envelope is bounded and non-blocking ([`crate::fs_bounded`]): only a regular
//! file (or a symbolic link to one) of at most [`MAX_ENCODED_LEN`] bytes is read; a FIFO, device,
//! socket or directory at an envelope's name is `Io`, a larger file `Corrupt`, neither is read.
//! A revision read from disk carries the file's stat stamp (device, inode, size, mtime, ctime),
//! so the KEK cache's revalidation confirms an unchanged envelope with one `stat` (see
//! [`FileStamp`]).
//! Only a root that does not exist means "nothing stored" to a delete; any other failure to
//! reach the root (permissions, a symlink loop) is `Io`.
//! Replacing writers (push, compare-and-swap, delete) of all processes serialize their publishing
//! step on an exclusive `flock` of the root directory, so a compare-and-swap's check and rename
//! are one atomic step against them.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, SystemTime};

use super::{key_of_envelope_name, ENVELOPE_SUFFIX};
use super::{BeforePublish, Recheck, Revision, Sidecar};
use crate::codec::MAX_ENCODED_LEN;
use crate::error::{Error, ErrorKind, Result, Subject};
use crate::fs_bounded::{open_regular, read_bounded, read_bounded_stat, FileReadError, Symlinks};
use crate::index_name::IndexName;

/// File-name prefix and suffix of a temp file (never a valid envelope name: keys have no `.`).
pub(crate) const TEMP_PREFIX: &str = ".cyborgdb-kms.";
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// Orphaned temp files younger than this are left alone (covers a writer between create and lock).
pub(crate) const STALE_TEMP_AGE: Duration = Duration::from_secs(60);
/// Envelope files and directories are private to the owning user.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

pub(crate) struct DiskStore {
    root: PathBuf,
    /// `<root>/.audit/log.jsonl`.
    audit: crate::audit::disk::DiskAuditLog,
    /// Set once this store has made sure the root was swept in this process.
    swept: Once,
}

impl DiskStore {
    pub(crate) fn new(root: PathBuf) -> Self {
        DiskStore {
            audit: crate::audit::disk::DiskAuditLog::new(&root),
            root,
            swept: Once::new(),
        }
    }

    /// `<root>/<storage key>.kms`.
    fn envelope_path(&self, index: &IndexName) -> PathBuf {
        self.key_path(&index.storage_key())
    }

    /// `<root>/<key>.kms`, built with one allocation (this is on every get's path).
    fn key_path(&self, key: &str) -> PathBuf {
        self.suffixed_path(key, ENVELOPE_SUFFIX)
    }

    /// `<root>/<key><suffix>`, built with one allocation.
    fn suffixed_path(&self, key: &str, suffix: &str) -> PathBuf {
        let len = self.root.as_os_str().len() + 1 + key.len() + suffix.len();
        let mut path = PathBuf::with_capacity(len);
        path.push(&self.root);
        path.push(key);
        path.as_mut_os_string().push(suffix);
        path
    }

    /// `<root>/<storage key><sidecar suffix>`.
    fn sidecar_path(&self, index: &IndexName, kind: Sidecar) -> PathBuf {
        self.suffixed_path(&index.storage_key(), kind.suffix())
    }

    /// Publishes `bytes` at `path` only if nothing is there (temp file, `link`, fsync), after
    /// `before_publish` (as in `write_temp_overlapping`).
    fn create_at(
        &self,
        index: &IndexName,
        path: &Path,
        bytes: &[u8],
        before_publish: Option<&BeforePublish>,
    ) -> Result<()> {
        let temp = self.write_temp_overlapping(index, bytes, before_publish)?;
        match fs::hard_link(&temp.path, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::already_exists(index))
            }
            Err(e) => return Err(Error::io(index, format!("cannot create {path:?}"), &e)),
        }
        drop(temp); // unlinks the temp name; the file keeps the inode
        self.sync_root(index)
    }

    /// Removes the file at `path` under the writers' lock; a missing file or root succeeds.
    fn delete_at(&self, index: &IndexName, path: &Path) -> Result<()> {
        let root = match open_directory(&self.root) {
            Ok(root) => root,
            // Only a root that does not exist means nothing was ever stored. Any other failure
            // (EACCES, ELOOP, ENOTDIR, ...) hides a file that may well be there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.cannot_open_root(index, &e)),
        };
        let writers = self.lock_root(index, root)?;
        let removed = fs::remove_file(path);
        drop(writers);
        match removed {
            Ok(()) => self.sync_root(index),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(index, format!("cannot delete {path:?}"), &e)),
        }
    }

    /// Writes `bytes` to a fresh, locked, fsynced temp file in the root (created if missing).
    fn write_temp(&self, index: &IndexName, bytes: &[u8]) -> Result<TempFile> {
        self.swept.call_once(|| sweep_stale_temps_once(&self.root));
        let mut temp = match TempFile::create_in(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_root()
                    .map_err(|e| Error::io(index, format!("cannot create {:?}", self.root), &e))?;
                TempFile::create_in(&self.root)
            }
            other => other,
        }
        .map_err(|e| {
            Error::io(
                index,
                format!("cannot create a temp file in {:?}", self.root),
                &e,
            )
        })?;
        temp.file
            .write_all(bytes)
            .and_then(|()| temp.file.sync_all())
            .map_err(|e| Error::io(index, format!("cannot write {:?}", temp.path), &e))?;
        Ok(temp)
    }

    /// As `write_temp`, running `before_publish` (the audit record's `fdatasync`) meanwhile on a
    /// thread of the runtime's blocking pool (kept between calls: starting a thread per write
    /// cost more than the rest of the audit), so the two syncs overlap. The temp file is returned
    /// only if both succeeded (otherwise it is removed): nothing is published before the record
    /// is durable. If the pool cannot be used (it cannot start, or this is one of its threads),
    /// `before_publish` runs first, on this thread.
    fn write_temp_overlapping(
        &self,
        index: &IndexName,
        bytes: &[u8],
        before_publish: Option<&BeforePublish>,
    ) -> Result<TempFile> {
        let Some(before_publish) = before_publish else {
            return self.write_temp(index, bytes);
        };
        let job = Arc::clone(before_publish);
        match crate::runtime::run_pooled(move || job.as_ref()()) {
            Ok(pooled) => {
                let temp = self.write_temp(index, bytes);
                pooled.wait().and(temp)
            }
            Err(_) => before_publish.as_ref()().and_then(|()| self.write_temp(index, bytes)),
        }
    }

    /// Atomic replace by `rename` under the writers' lock.
    fn put_publishing_after(
        &self,
        index: &IndexName,
        bytes: &[u8],
        before_publish: Option<&BeforePublish>,
    ) -> Result<()> {
        let mut temp = self.write_temp_overlapping(index, bytes, before_publish)?;
        let path = self.envelope_path(index);
        {
            let _writers = self.lock_writers(index)?;
            fs::rename(&temp.path, &path)
                .map_err(|e| Error::io(index, format!("cannot replace {path:?}"), &e))?;
        }
        temp.published = true;
        drop(temp);
        self.sync_root(index)
    }

    /// Compare-and-swap: check and `rename` under the writers' lock.
    fn replace_if_publishing_after(
        &self,
        index: &IndexName,
        expected: &Revision,
        bytes: &[u8],
        before_publish: Option<&BeforePublish>,
    ) -> Result<()> {
        let mut temp = self.write_temp_overlapping(index, bytes, before_publish)?;
        let path = self.envelope_path(index);
        {
            let _writers = self.lock_writers(index)?;
            match super::EnvelopeBackend::get(self, index)? {
                Some(stored) if Revision::of(&stored, None).digest == expected.digest => {}
                _ => return Err(super::conflict(index)),
            }
            fs::rename(&temp.path, &path)
                .map_err(|e| Error::io(index, format!("cannot replace {path:?}"), &e))?;
        }
        temp.published = true;
        drop(temp);
        self.sync_root(index)
    }

    /// Creates the root directory (and parents) and makes its entry durable.
    fn create_root(&self) -> io::Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.root)?;
        match self.root.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    /// The bytes of the envelope file at `path`, or `None` if there is none. The file (or the
    /// file a symbolic link there leads to) is opened without blocking and read only if it is a
    /// regular file of at most [`MAX_ENCODED_LEN`] bytes, and never more than one byte past that.
    ///
    /// Errors: `Io` (cannot open or read; a FIFO, device, socket or directory at `path`),
    /// `Corrupt` (larger than any envelope: refused by its size before reading, or grew past it
    /// while being read).
    fn read_envelope(&self, subject: Subject<'_>, path: &Path) -> Result<Option<Vec<u8>>> {
        match read_bounded(path, MAX_ENCODED_LEN, Symlinks::Follow) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) => self.read_failed(subject, path, e).map(|()| None),
        }
    }

    /// What a failed envelope read means: `Ok(())` for nothing stored, else the error.
    fn read_failed(&self, subject: Subject<'_>, path: &Path, e: FileReadError) -> Result<()> {
        match e {
            e if e.is_not_found() => Ok(()),
            FileReadError::TooLarge { len: Some(len), .. } => Err(Error::corrupt(
                subject,
                format_args!("{path:?}"),
                format_args!("{len} bytes, more than any envelope ({MAX_ENCODED_LEN})"),
            )),
            FileReadError::TooLarge { len: None, .. } => Err(Error::corrupt(
                subject,
                format_args!("{path:?}"),
                format_args!(
                    "grew past {MAX_ENCODED_LEN} bytes while being read, more than any envelope"
                ),
            )),
            e => Err(Error::new(
                ErrorKind::Io,
                format!("{subject}: cannot {} {path:?}: {e}", e.action()),
            )),
        }
    }

    /// Serializes the replacing writers (push, compare-and-swap, delete) of every process on
    /// this root: an exclusive `flock` on the root directory itself (no extra file), held only
    /// around the publishing step, released by the OS if the process dies. Readers never take it;
    /// create needs none (its `link` fails if anything is there).
    fn lock_writers(&self, index: &IndexName) -> Result<File> {
        let root = open_directory(&self.root).map_err(|e| self.cannot_open_root(index, &e))?;
        self.lock_root(index, root)
    }

    /// Takes the writers' lock on `root`, the opened root directory (see `lock_writers`).
    fn lock_root(&self, index: &IndexName, root: File) -> Result<File> {
        root.lock()
            .map_err(|e| Error::io(index, format!("cannot lock {:?}", self.root), &e))?;
        Ok(root)
    }

    /// The `Io` error of a failed open of the root directory.
    fn cannot_open_root(&self, index: &IndexName, cause: &io::Error) -> Error {
        Error::io(index, format_args!("cannot open {:?}", self.root), cause)
    }

    fn sync_root(&self, index: &IndexName) -> Result<()> {
        sync_dir(&self.root)
            .map_err(|e| Error::io(index, format!("cannot fsync directory {:?}", self.root), &e))
    }
}

impl super::EnvelopeBackend for DiskStore {
    fn create(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        self.create_at(index, &self.envelope_path(index), bytes, None)
    }

    fn create_after(
        &self,
        index: &IndexName,
        bytes: &[u8],
        before_publish: &BeforePublish,
    ) -> Result<()> {
        self.create_at(
            index,
            &self.envelope_path(index),
            bytes,
            Some(before_publish),
        )
    }

    fn put(&self, index: &IndexName, bytes: &[u8]) -> Result<()> {
        self.put_publishing_after(index, bytes, None)
    }

    fn put_after(
        &self,
        index: &IndexName,
        bytes: &[u8],
        before_publish: &BeforePublish,
    ) -> Result<()> {
        self.put_publishing_after(index, bytes, Some(before_publish))
    }

    fn replace_if(&self, index: &IndexName, expected: &Revision, bytes: &[u8]) -> Result<()> {
        self.replace_if_publishing_after(index, expected, bytes, None)
    }

    fn replace_if_after(
        &self,
        index: &IndexName,
        expected: &Revision,
        bytes: &[u8],
        before_publish: &BeforePublish,
    ) -> Result<()> {
        self.replace_if_publishing_after(index, expected, bytes, Some(before_publish))
    }

    fn get(&self, index: &IndexName) -> Result<Option<Vec<u8>>> {
        self.read_envelope(Subject::Index(index), &self.envelope_path(index))
    }

    /// The bytes, with the file's [`FileStamp`] (from the `fstat` of the descriptor read) as the
    /// revision's tag — or no tag if the file was modified too recently to trust its stamp.
    fn get_revision(&self, index: &IndexName) -> Result<Option<(Vec<u8>, Revision)>> {
        let path = self.envelope_path(index);
        let (bytes, metadata) = match read_bounded_stat(&path, MAX_ENCODED_LEN, Symlinks::Follow) {
            Ok(read) => read,
            Err(e) => {
                return self
                    .read_failed(Subject::Index(index), &path, e)
                    .map(|()| None)
            }
        };
        let stamp = FileStamp::trusted(&metadata, SystemTime::now());
        let revision = Revision::of(&bytes, stamp.map(|stamp| stamp.tag()));
        Ok(Some((bytes, revision)))
    }

    /// Stat first: if the file's stamp is the one `known` remembers, the envelope is unchanged
    /// and nothing is read. Otherwise (replaced, touched, no stamp remembered) the file is read
    /// and its digest decides, as for any store.
    fn recheck(&self, index: &IndexName, known: &Revision) -> Result<Recheck> {
        if let Some(known_tag) = &known.etag {
            // A failed stat (gone, unreachable) falls through to the read, which reports it.
            if let Ok(metadata) = fs::metadata(self.envelope_path(index)) {
                if FileStamp::of(&metadata).tag() == *known_tag {
                    return Ok(Recheck::Unchanged(known.clone()));
                }
            }
        }
        super::recheck_by_digest(self, index, known)
    }

    fn delete(&self, index: &IndexName) -> Result<()> {
        self.delete_at(index, &self.envelope_path(index))
    }

    fn location(&self, index: &IndexName) -> String {
        format!("{:?}", self.envelope_path(index))
    }

    /// The root's entries named `<storage key>.kms` that are files (or symlinks to files, which
    /// a get follows). A missing root is an empty store.
    fn list_keys(&self) -> Result<Vec<String>> {
        let failed = |action: &str, e: &io::Error| {
            Error::io(
                Subject::Listing,
                format_args!("cannot {action} directory {:?}", self.root),
                e,
            )
        };
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(failed("open", &e)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| failed("read", &e))?;
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(key_of_envelope_name) else {
                continue;
            };
            // An entry that vanishes or cannot be inspected now is left out, as a get would find
            // nothing readable there either.
            let is_file = match entry.file_type() {
                Ok(kind) if kind.is_symlink() => {
                    fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
                }
                Ok(kind) => kind.is_file(),
                Err(_) => false,
            };
            if is_file {
                keys.push(key.to_owned());
            }
        }
        Ok(keys)
    }

    fn get_by_key(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.read_envelope(Subject::Listing, &self.key_path(key))
    }

    fn key_location(&self, key: &str) -> String {
        format!("{:?}", self.key_path(key))
    }

    fn audit_log(&self) -> &dyn crate::audit::AuditLog {
        &self.audit
    }

    fn create_sidecar(&self, index: &IndexName, kind: Sidecar, bytes: &[u8]) -> Result<()> {
        self.create_at(index, &self.sidecar_path(index, kind), bytes, None)
    }

    fn get_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<Option<Vec<u8>>> {
        self.read_envelope(Subject::Index(index), &self.sidecar_path(index, kind))
    }

    fn delete_sidecar(&self, index: &IndexName, kind: Sidecar) -> Result<()> {
        self.delete_at(index, &self.sidecar_path(index, kind))
    }

    fn sidecar_location(&self, index: &IndexName, kind: Sidecar) -> String {
        format!("{:?}", self.sidecar_path(index, kind))
    }
}

/// How recently modified a file's stamp is not trusted: a file timestamp has the granularity of
/// the kernel's coarse clock (a few ms; seconds on some file systems), so a write in the same
/// tick as the read — one that reused the freed inode of an earlier version and has its size —
/// could leave an identical stamp. An envelope modified this recently is compared by digest.
const RACY_STAMP_WINDOW: Duration = Duration::from_secs(2);

/// What `stat` says about an envelope file: device, inode, size, modification and status-change
/// times (ns). Every write publishes a new file by `rename`, which gives the name a new inode, so
/// an unchanged stamp means the file read before is still the one there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileStamp {
    fn of(metadata: &fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileStamp {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            changed_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// The stamp of a file read at `now`, unless it was modified within [`RACY_STAMP_WINDOW`]
    /// of `now` (or in the future).
    fn trusted(metadata: &fs::Metadata, now: SystemTime) -> Option<FileStamp> {
        let modified = metadata.modified().ok()?;
        let age = now.duration_since(modified).ok()?;
        (age >= RACY_STAMP_WINDOW).then(|| FileStamp::of(metadata))
    }

    /// The revision tag a disk envelope carries (the cache remembers it as it does an S3 ETag).
    fn tag(&self) -> String {
        format!(
            "stat:{}:{}:{}:{}:{}",
            self.device, self.inode, self.size, self.modified_ns, self.changed_ns
        )
    }
}

/// A temp file being written. Removed on drop unless it was published by `rename`.
struct TempFile {
    path: PathBuf,
    file: File,
    published: bool,
}

impl TempFile {
    /// Creates a new temp file (never reusing a name) and takes its lock.
    fn create_in(dir: &Path) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{TEMP_PREFIX}{}.{}.{nanos:08x}{TEMP_SUFFIX}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
            );
            let path = dir.join(name);
            let file = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let temp = TempFile {
                path,
                file,
                published: false,
            };
            // Fresh file: nobody else can hold the lock, but fail loudly rather than write unlocked.
            temp.file.try_lock().map_err(io::Error::from)?;
            return Ok(temp);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    open_directory(dir)?.sync_all()
}

/// Opens `dir` only if it is a directory (`O_DIRECTORY`: a FIFO or device there fails with
/// `ENOTDIR` instead of blocking or being opened).
fn open_directory(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
}

/// Removes temp files left by crashed writers in `root`, once per process and root.
fn sweep_stale_temps_once(root: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let first = SWEPT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert(root.to_path_buf());
    if first {
        remove_stale_temps(root, STALE_TEMP_AGE);
    }
}

/// Removes every temp file in `root` older than `min_age` whose writer no longer holds its lock.
/// Best effort: housekeeping never fails a write. Returns how many were removed.
pub(crate) fn remove_stale_temps(root: &Path, min_age: Duration) -> usize {
    let Ok(entries) = fs::read_dir(root) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|mtime| now.duration_since(mtime).unwrap_or_default() >= min_age);
        if !old_enough {
            continue;
        }
        // Non-blocking and without following a link: a FIFO or a link posing as a temp file is
        // skipped, never waited on (this library's temp files are regular files).
        let Ok((file, _)) = open_regular(&path, Symlinks::Refuse) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {
                if fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
            Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => {}
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recently_modified_file_gets_no_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"x").unwrap();
        let metadata = fs::metadata(&path).unwrap();
        let modified = metadata.modified().unwrap();
        assert_eq!(FileStamp::trusted(&metadata, modified), None);
        let almost = modified + RACY_STAMP_WINDOW - Duration::from_nanos(1);
        assert_eq!(FileStamp::trusted(&metadata, almost), None);
        let old_enough = modified + RACY_STAMP_WINDOW;
        assert_eq!(
            FileStamp::trusted(&metadata, old_enough),
            Some(FileStamp::of(&metadata))
        );
        // A modification time in the future (a skewed clock) is not trusted either.
        let before = modified - Duration::from_secs(1);
        assert_eq!(FileStamp::trusted(&metadata, before), None);
    }
}
