//! Bounded, non-blocking reads of files whose path comes from configuration, the environment or
//! a store: the local provider's master key, the registry YAML, disk envelopes.
//!
//! Every read here opens with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, `fstat`s the opened descriptor
//! and accepts only a regular file, refuses one larger than the caller's maximum before reading a
//! byte, and then reads at most `max + 1` bytes, so a FIFO, a device, a directory, a huge or a
//! growing file gives an error at once instead of blocking or filling memory.
//!
//! A path whose last component is a symbolic link is, when the caller follows links, resolved
//! with `O_PATH` (which opens nothing) and checked with `fstat` before the target is opened
//! through `/proc/self/fd`: a link to a FIFO or a device is refused without opening it. (Without
//! `/proc` the target is opened by path; the `fstat` of the opened descriptor still refuses
//! anything but a regular file.) A device node named directly is opened — non-blocking, never
//! read — and refused; creating one takes root.
//!
//! All functions are thread-safe and hold no state.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use zeroize::Zeroizing;

/// Flags of every open for reading: never wait for a FIFO's writer or a device, never acquire
/// a controlling terminal, never leak the descriptor into a child.
const READ_FLAGS: i32 = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

/// Whether a symbolic link as the path's last component is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Symlinks {
    /// Follow it to a regular file (an operator's link, a Kubernetes secret mount).
    Follow,
    /// Refuse it (`O_NOFOLLOW`: the open fails with `ELOOP`).
    Refuse,
}

/// Why a bounded read failed.
#[derive(Debug)]
pub(crate) enum FileReadError {
    /// The path could not be opened or resolved (`NotFound` for a missing file).
    Open(io::Error),
    /// The path names something other than a regular file (the article and kind, "a FIFO").
    NotRegular(&'static str),
    /// The file holds more than `max` bytes: `len` as `fstat` gave it, or `None` if it grew past
    /// `max` while being read.
    TooLarge { len: Option<u64>, max: usize },
    /// Reading the opened file failed.
    Read(io::Error),
}

impl FileReadError {
    /// Whether nothing exists at the path.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, FileReadError::Open(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// The verb for a message "cannot <verb> <path>: <self>".
    pub(crate) fn action(&self) -> &'static str {
        match self {
            FileReadError::Open(_) => "open",
            _ => "read",
        }
    }
}

impl fmt::Display for FileReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileReadError::Open(e) | FileReadError::Read(e) => write!(f, "{e}"),
            FileReadError::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            FileReadError::TooLarge {
                len: Some(len),
                max,
            } => {
                write!(f, "it holds {len} bytes, more than the {max} accepted")
            }
            FileReadError::TooLarge { len: None, max } => {
                write!(f, "it grew past the {max} bytes accepted while being read")
            }
        }
    }
}

/// Opens the regular file at `path` for reading (non-blocking) and returns it with its size.
///
/// Errors: `Open` (the OS error; `ELOOP` for a link when `symlinks` is `Refuse`), `NotRegular`.
pub(crate) fn open_regular(path: &Path, symlinks: Symlinks) -> Result<(File, u64), FileReadError> {
    open_regular_stat(path, symlinks).map(|(file, metadata)| (file, metadata.len()))
}

/// As [`open_regular`], with the `fstat` of the opened descriptor.
fn open_regular_stat(path: &Path, symlinks: Symlinks) -> Result<(File, Metadata), FileReadError> {
    let file = match open_for_reading(path, READ_FLAGS | libc::O_NOFOLLOW) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && symlinks == Symlinks::Follow => {
            open_link_target(path)?
        }
        Err(e) => return Err(FileReadError::Open(e)),
    };
    let metadata = file.metadata().map_err(FileReadError::Open)?;
    regular_len(&metadata)?;
    Ok((file, metadata))
}

/// The bytes of the regular file at `path`, which must hold at most `max_len` bytes.
///
/// Errors: as [`open_regular`], `TooLarge` (checked by `fstat` before reading, and again while
/// reading), `Read`.
pub(crate) fn read_bounded(
    path: &Path,
    max_len: usize,
    symlinks: Symlinks,
) -> Result<Vec<u8>, FileReadError> {
    let mut bytes = read_secret_bounded(path, max_len, symlinks)?;
    Ok(std::mem::take(&mut *bytes))
}

/// As [`read_bounded`], with the `fstat` of the very descriptor the bytes were read from (what
/// a later `stat` of the path is compared with to tell whether the file was replaced).
pub(crate) fn read_bounded_stat(
    path: &Path,
    max_len: usize,
    symlinks: Symlinks,
) -> Result<(Vec<u8>, Metadata), FileReadError> {
    let (file, metadata) = open_regular_stat(path, symlinks)?;
    let mut bytes = read_opened(file, metadata.len(), max_len)?;
    Ok((std::mem::take(&mut *bytes), metadata))
}

/// As [`read_bounded`], for key material: the bytes are wiped when dropped, and so is every
/// buffer used on the way (the file is read straight into heap memory, never via the stack).
pub(crate) fn read_secret_bounded(
    path: &Path,
    max_len: usize,
    symlinks: Symlinks,
) -> Result<Zeroizing<Vec<u8>>, FileReadError> {
    let (file, len) = open_regular(path, symlinks)?;
    read_opened(file, len, max_len)
}

/// Reads the opened regular `file`, `len` bytes long by its `fstat`, bounded by `max_len`.
fn read_opened(
    mut file: File,
    len: u64,
    max_len: usize,
) -> Result<Zeroizing<Vec<u8>>, FileReadError> {
    if len > max_len as u64 {
        return Err(FileReadError::TooLarge {
            len: Some(len),
            max: max_len,
        });
    }
    // Room for the size `fstat` gave plus one byte, so a file that grew since shows it by
    // filling the room; more room is made only then, up to `max_len + 1` bytes.
    let limit = max_len + 1;
    let mut buffer = Zeroizing::new(vec![0u8; len as usize + 1]);
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            if buffer.len() == limit {
                return Err(FileReadError::TooLarge {
                    len: None,
                    max: max_len,
                });
            }
            // The file grew since the fstat. Move to a buffer of the full limit; the old one is
            // wiped when dropped.
            let mut larger = Zeroizing::new(vec![0u8; limit]);
            larger[..filled].copy_from_slice(&buffer[..filled]);
            buffer = larger;
        }
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                // Exactly the size fstat gave, with room left over: the read stopped at the end
                // of the file (a regular file only reads short at its end), so the read that
                // would return 0 is saved — a get costs open, fstat, read, close. A file that
                // had grown fills the room instead and is read on.
                if filled as u64 == len && filled < buffer.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileReadError::Read(e)),
        }
    }
    buffer.truncate(filled); // the tail stays allocated, and is wiped on drop
    Ok(buffer)
}

fn open_for_reading(path: &Path, flags: i32) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(flags).open(path)
}

/// Opens the regular file a symbolic link at `path` leads to, without opening anything else:
/// `O_PATH` resolves the link, `fstat` checks the target, `/proc/self/fd` opens that very inode.
fn open_link_target(path: &Path) -> Result<File, FileReadError> {
    let resolved =
        open_for_reading(path, libc::O_PATH | libc::O_CLOEXEC).map_err(FileReadError::Open)?;
    let target = resolved.metadata().map_err(FileReadError::Open)?;
    regular_len(&target)?;
    let by_descriptor = format!("/proc/self/fd/{}", resolved.as_raw_fd());
    match open_for_reading(Path::new(&by_descriptor), READ_FLAGS) {
        Ok(file) => Ok(file),
        // No /proc (a bare chroot): open by path. The link may have changed since the check,
        // so the caller's fstat of this descriptor decides.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            open_for_reading(path, READ_FLAGS).map_err(FileReadError::Open)
        }
        Err(e) => Err(FileReadError::Open(e)),
    }
}

/// The length of a regular file; `NotRegular` naming what else it is.
fn regular_len(metadata: &Metadata) -> Result<u64, FileReadError> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(metadata.len());
    }
    Err(FileReadError::NotRegular(if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mkfifo(path: &Path) {
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn reads_a_regular_file_up_to_the_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [7u8; 32]).unwrap();
        assert_eq!(
            read_bounded(&path, 32, Symlinks::Refuse).unwrap(),
            [7u8; 32]
        );
        assert_eq!(
            &read_secret_bounded(&path, 32, Symlinks::Follow).unwrap()[..],
            [7u8; 32]
        );
        let err = read_bounded(&path, 31, Symlinks::Follow).unwrap_err();
        assert!(
            matches!(
                err,
                FileReadError::TooLarge {
                    len: Some(32),
                    max: 31
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "it holds 32 bytes, more than the 31 accepted"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(read_bounded(&path, 0, Symlinks::Follow).unwrap().is_empty());
    }

    #[test]
    fn a_file_reporting_size_zero_is_still_read_at_most_max_plus_one() {
        // /proc files report st_size 0 but hold bytes: the read, not fstat, bounds them.
        let err = read_bounded(Path::new("/proc/self/maps"), 8, Symlinks::Follow).unwrap_err();
        assert!(
            matches!(err, FileReadError::TooLarge { len: None, max: 8 }),
            "{err:?}"
        );
        assert!(
            !read_bounded(Path::new("/proc/self/maps"), 1 << 20, Symlinks::Follow)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn non_regular_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let link = dir.path().join("link");
        symlink(&fifo, &link).unwrap();
        for (path, symlinks, kind) in [
            (fifo.as_path(), Symlinks::Follow, "a FIFO"),
            (link.as_path(), Symlinks::Follow, "a FIFO"),
            (
                Path::new("/dev/zero"),
                Symlinks::Follow,
                "a character device",
            ),
            (dir.path(), Symlinks::Follow, "a directory"),
        ] {
            match read_bounded(path, 64, symlinks) {
                Err(FileReadError::NotRegular(found)) => assert_eq!(found, kind, "{path:?}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        let refused = read_bounded(&link, 64, Symlinks::Refuse).unwrap_err();
        assert!(
            matches!(&refused, FileReadError::Open(e) if e.raw_os_error() == Some(libc::ELOOP)),
            "{refused:?}"
        );
        let missing = read_bounded(&dir.path().join("absent"), 64, Symlinks::Follow).unwrap_err();
        assert!(missing.is_not_found(), "{missing:?}");
        assert_eq!(missing.action(), "open");
    }

    #[test]
    fn a_link_to_a_regular_file_is_followed_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"bytes").unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        assert_eq!(read_bounded(&link, 5, Symlinks::Follow).unwrap(), b"bytes");
        let chained = dir.path().join("chained");
        symlink(&link, &chained).unwrap();
        assert_eq!(
            read_bounded(&chained, 5, Symlinks::Follow).unwrap(),
            b"bytes"
        );
        assert!(matches!(
            read_bounded(&link, 4, Symlinks::Follow),
            Err(FileReadError::TooLarge {
                len: Some(5),
                max: 4
            })
        ));
    }
}
