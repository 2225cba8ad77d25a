//! Files a hostile or careless party controls (issue #10, findings 4 and 7): a FIFO, a device,
//! a directory, a huge or sparse file where a master key, a registry or an envelope is expected
//! gives a clear error at once, never a hang or a huge read; and a delete that cannot reach the
//! store says so instead of reporting success.
//!
//! Every call that hung before the fix runs under [`returns_within_10s`]: a generous guard for
//! "returns at all", not a timing assertion.

mod common;

use common::local::{local_client, local_slot_at};

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::aws_kms_blob;
use cyborgdb_kms::ffi::{
    cyb_index_kms_delete, cyb_index_kms_get, cyb_kms_blob, cyb_kms_client, cyb_kms_client_free,
    cyb_kms_client_load_registry_file, cyb_kms_client_new, cyb_last_error_message, cyb_result,
    cyb_storage_config, cyb_storage_config_free, cyb_storage_config_new_disk,
};
use cyborgdb_kms::kms::registry::MAX_REGISTRY_YAML_LEN;
use cyborgdb_kms::{
    create_index_kms, delete_index_kms, get_index_kms, list_index_kms, push_index_kms, ErrorKind,
    KekCacheOptions, KekResolver, KmsClient, Registry, StorageConfig,
};

/// Runs `call` on its own thread and returns its result, failing the test if it has not
/// returned after 10 s (the bugs this file guards against blocked forever). A call that hangs is
/// left behind on its thread; the test process exits anyway.
fn returns_within_10s<T: Send + 'static>(
    what: &str,
    call: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = sender.send(call());
    });
    match receiver.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not return within 10 s"),
    }
}

fn mkfifo(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(
        unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) },
        0,
        "mkfifo {path:?}"
    );
}

/// A sparse file of 2 GiB: reading it would take 2 GiB of memory.
fn sparse_2gib(path: &Path) {
    File::create(path).unwrap().set_len(2 << 30).unwrap();
}

/// Peak resident memory of this process so far, in KiB.
fn peak_rss_kib() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_maxrss
}

/// A KMS client whose slot `dev` is the local master key file `key_file` (no network: `local`
/// never leaves the machine).
fn client_with_key_file(key_file: &Path) -> KmsClient {
    let client = local_client();
    client.add_slot("dev", local_slot_at(key_file)).unwrap();
    client
}

// ---------------------------------------------------------------------------------------------
// Local master key files

#[test]
fn a_device_as_local_master_key_is_refused_without_reading_it() {
    let (err, rss_growth) = returns_within_10s("wrap with file:/dev/zero", || {
        let client = client_with_key_file(Path::new("/dev/zero"));
        let before = peak_rss_kib();
        let err = client.wrap_new_kek("idx", "dev").unwrap_err();
        (err, peak_rss_kib() - before)
    });
    assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound, "{err:?}");
    assert_eq!(
        err.message(),
        "index \"idx\": cannot read local master key file \"/dev/zero\": \
         it is a character device, not a regular file"
    );
    assert!(rss_growth < 64 * 1024, "peak RSS grew by {rss_growth} KiB");
}

#[test]
fn a_fifo_as_local_master_key_fails_at_once_directly_and_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("master.key");
    mkfifo(&fifo);
    let link = dir.path().join("link.key");
    symlink(&fifo, &link).unwrap();
    for key_file in [fifo, link] {
        let client = client_with_key_file(&key_file);
        let err = returns_within_10s("wrap with a FIFO master key", move || {
            client.wrap_new_kek("idx", "dev").unwrap_err()
        });
        assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound, "{err:?}");
        assert!(
            err.message().ends_with("it is a FIFO, not a regular file"),
            "{key_file:?}: {}",
            err.message()
        );
    }
}

#[test]
fn resolving_an_index_whose_master_key_became_a_fifo_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    fs::write(&key_file, [9u8; 32]).unwrap();
    let client = client_with_key_file(&key_file);
    let storage = StorageConfig::disk(dir.path().join("store")).unwrap();
    let creator = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    creator
        .create_index(&storage, "orders", Some("dev"), None)
        .unwrap();
    fs::remove_file(&key_file).unwrap();
    mkfifo(&key_file);
    // A fresh resolver: nothing cached, so the master key is read.
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    let err = returns_within_10s("resolve with a FIFO master key", move || {
        resolver.resolve(&storage, "orders").unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::KmsKeyNotFound, "{err:?}");
    assert!(err.message().contains("it is a FIFO"), "{}", err.message());
}

#[test]
fn a_2gib_master_key_file_is_refused_by_its_size_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("huge.key");
    sparse_2gib(&key_file);
    let client = client_with_key_file(&key_file);
    let before = peak_rss_kib();
    let err = returns_within_10s("wrap with a 2 GiB master key", move || {
        client.wrap_new_kek("idx", "dev").unwrap_err()
    });
    let rss_growth = peak_rss_kib() - before;
    assert_eq!(err.kind(), ErrorKind::WrapKeySize, "{err:?}");
    assert_eq!(
        err.message(),
        format!(
            "Wrap key must be 32 bytes: local master key file {:?} holds 2147483648 bytes",
            key_file.display().to_string()
        )
    );
    assert!(rss_growth < 64 * 1024, "peak RSS grew by {rss_growth} KiB");
    // 33 bytes: refused by size too, the message exact as for any wrong size.
    fs::write(&key_file, [1u8; 33]).unwrap();
    let err = client_with_key_file(&key_file)
        .wrap_new_kek("idx", "dev")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrapKeySize);
    assert!(
        err.message().ends_with("holds 33 bytes"),
        "{}",
        err.message()
    );
}

// ---------------------------------------------------------------------------------------------
// Registry files

#[test]
fn a_fifo_or_an_oversized_file_as_registry_is_invalid_config_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cyborgdb.yaml");
    mkfifo(&fifo);
    let err = returns_within_10s("load a FIFO registry", move || {
        Registry::from_yaml_file(&fifo).unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert!(
        err.message().ends_with("it is a FIFO, not a regular file"),
        "{}",
        err.message()
    );

    // A valid registry padded with a comment past the limit: refused before it is read.
    let padded = dir.path().join("padded.yaml");
    let mut yaml = b"kms:\n  registry:\n    prod:\n      provider: aws-kms\n      key_id: alias/prod\n      region: us-east-1\n".to_vec();
    yaml.push(b'#');
    yaml.resize(MAX_REGISTRY_YAML_LEN + 1, b'x');
    fs::write(&padded, &yaml).unwrap();
    let err = Registry::from_yaml_file(&padded).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert!(
        err.message()
            .ends_with("it holds 1048577 bytes, more than the 1048576 accepted"),
        "{}",
        err.message()
    );
    // At the limit it loads.
    yaml.truncate(MAX_REGISTRY_YAML_LEN);
    fs::write(&padded, &yaml).unwrap();
    assert_eq!(Registry::from_yaml_file(&padded).unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Disk envelopes

#[test]
fn a_fifo_as_an_envelope_file_is_io_at_once_and_a_push_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let store = StorageConfig::disk(&root).unwrap();
    push_index_kms(&store, "kept", &aws_kms_blob(1)).unwrap();
    mkfifo(&root.join("idx.kms"));
    let reader = store.clone();
    let err = returns_within_10s("get of a FIFO envelope", move || {
        get_index_kms(&reader, "idx").unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(
        err.message(),
        format!(
            "index \"idx\": cannot read {:?}: it is a FIFO, not a regular file",
            root.join("idx.kms")
        )
    );
    // Listing leaves the FIFO out (it is no envelope) and reads the rest.
    let lister = store.clone();
    let names = returns_within_10s("list next to a FIFO", move || list_index_kms(&lister));
    assert_eq!(names.unwrap(), ["kept"]);
    // Nothing is lost and the name is usable: a push replaces the FIFO.
    push_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap();
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(2));
}

#[test]
fn a_link_to_a_fifo_or_a_device_as_an_envelope_is_io_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let fifo = root.join("elsewhere.fifo");
    mkfifo(&fifo);
    symlink(&fifo, root.join("fifo.kms")).unwrap();
    symlink("/dev/zero", root.join("zero.kms")).unwrap();
    let store = StorageConfig::disk(&root).unwrap();
    for (name, kind) in [("fifo", "a FIFO"), ("zero", "a character device")] {
        let reader = store.clone();
        let err = returns_within_10s("get through a link", move || {
            get_index_kms(&reader, name).unwrap_err()
        });
        assert_eq!(err.kind(), ErrorKind::Io, "{name}: {err:?}");
        assert!(
            err.message()
                .ends_with(&format!("it is {kind}, not a regular file")),
            "{}",
            err.message()
        );
    }
    // A link to a regular envelope is still followed (the documented layout allows it).
    push_index_kms(&store, "real", &aws_kms_blob(3)).unwrap();
    symlink(root.join("real.kms"), root.join("alias.kms")).unwrap();
    assert!(matches!(
        get_index_kms(&store, "alias"),
        Err(e) if e.kind() == ErrorKind::Corrupt && e.message().contains("belongs to index \"real\"")
    ));
}

#[test]
fn a_2gib_sparse_envelope_is_corrupt_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx.kms");
    sparse_2gib(&path);
    let store = StorageConfig::disk(dir.path()).unwrap();
    let err = returns_within_10s("get of a 2 GiB envelope", move || {
        get_index_kms(&store, "idx").unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert_eq!(
        err.message(),
        format!(
            "index \"idx\": stored KMS envelope at {path:?} is corrupt: \
             2147483648 bytes, more than any envelope (65536)"
        )
    );
}

#[test]
fn a_fifo_posing_as_a_stale_temp_file_does_not_block_writers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let fifo = root.join(".cyborgdb-kms.1.1.00000000.tmp");
    mkfifo(&fifo);
    // Old enough to be swept (an hour ago).
    let c_path = CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    let an_hour_ago = libc::timespec {
        tv_sec: unsafe { libc::time(std::ptr::null_mut()) } - 3600,
        tv_nsec: 0,
    };
    let times = [an_hour_ago, an_hour_ago];
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), times.as_ptr(), 0) },
        0
    );
    let store = StorageConfig::disk(&root).unwrap();
    let writer = store.clone();
    returns_within_10s("first push into a root holding a FIFO temp", move || {
        push_index_kms(&writer, "idx", &aws_kms_blob(1)).unwrap()
    });
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
    assert!(
        fs::symlink_metadata(&fifo).is_ok(),
        "the FIFO is not ours to remove"
    );
}

#[test]
fn a_fifo_as_the_root_fails_every_operation_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    mkfifo(&root);
    let store = StorageConfig::disk(&root).unwrap();
    let errors = returns_within_10s("operations on a FIFO root", move || {
        [
            get_index_kms(&store, "idx").map(drop),
            push_index_kms(&store, "idx", &aws_kms_blob(1)),
            create_index_kms(&store, "idx", &aws_kms_blob(1)),
            delete_index_kms(&store, "idx"),
            list_index_kms(&store).map(drop),
        ]
    });
    for result in errors {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
        assert!(
            err.message().contains("Not a directory"),
            "{}",
            err.message()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Delete that cannot reach the store (finding 7)

/// A store at `dir/link`, a symlink to `dir/real`, holding the envelope of `idx`.
fn store_behind_a_link(dir: &Path) -> (StorageConfig, PathBuf) {
    let real = dir.join("real");
    fs::create_dir(&real).unwrap();
    let link = dir.join("link");
    symlink(&real, &link).unwrap();
    let store = StorageConfig::disk(&link).unwrap();
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    (store, link)
}

fn repoint(link: &Path, target: &Path) {
    fs::remove_file(link).unwrap();
    symlink(target, link).unwrap();
}

#[test]
fn delete_through_a_symlink_loop_is_io_and_the_envelope_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (store, link) = store_behind_a_link(dir.path());
    // The root becomes a link to itself: every path through it fails with ELOOP, which no
    // privilege bypasses.
    repoint(&link, &link);
    for (operation, result) in [
        ("get", get_index_kms(&store, "idx").map(drop)),
        ("push", push_index_kms(&store, "idx", &aws_kms_blob(2))),
        ("delete", delete_index_kms(&store, "idx")),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{operation}: {err:?}");
        assert!(
            err.message().contains("Too many levels of symbolic links"),
            "{operation}: {}",
            err.message()
        );
    }
    assert_eq!(
        delete_index_kms(&store, "idx").unwrap_err().message(),
        format!(
            "index \"idx\": cannot open {link:?}: Too many levels of symbolic links (os error 40)"
        )
    );
    // Repaired, the envelope is still there.
    repoint(&link, &dir.path().join("real"));
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
    // A loop further up (a parent of the root) is the same.
    let looped = dir.path().join("loop");
    symlink(&looped, &looped).unwrap();
    let under_loop = StorageConfig::disk(looped.join("store")).unwrap();
    assert_eq!(
        delete_index_kms(&under_loop, "idx").unwrap_err().kind(),
        ErrorKind::Io
    );
    // A root that does not exist at all still deletes successfully (nothing was stored).
    let missing = StorageConfig::disk(dir.path().join("absent/store")).unwrap();
    delete_index_kms(&missing, "idx").unwrap();
}

/// Environment variable naming the store root for the `child_*` test run by another user.
const CHILD_ROOT: &str = "CYB_TEST_HOSTILE_FILES_ROOT";
/// Marks the lines of the child's output that carry a result.
const RESULT: &str = "RESULT ";
/// uid and gid of `nobody` / `nogroup`.
const NOBODY: u32 = 65534;

#[test]
#[ignore = "child process of delete_with_an_unreadable_parent_is_io_and_the_envelope_stays"]
fn child_delete_and_get_in_a_root_it_cannot_reach() {
    let root = std::env::var(CHILD_ROOT).expect("run by the parent test");
    let store = StorageConfig::disk(&root).unwrap();
    for (operation, result) in [
        ("get", get_index_kms(&store, "idx").map(drop)),
        ("delete", delete_index_kms(&store, "idx")),
    ] {
        match result {
            Ok(()) => println!("{RESULT}{operation}: OK"),
            Err(e) => println!("{RESULT}{operation}: {:?}: {}", e.kind(), e.message()),
        }
    }
}

#[test]
fn delete_with_an_unreadable_parent_is_io_and_the_envelope_stays() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let parent = dir.path().join("parent");
    fs::create_dir(&parent).unwrap();
    let root = parent.join("store");
    let store = StorageConfig::disk(&root).unwrap();
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o000)).unwrap();

    let lines: Vec<String> = if unsafe { libc::geteuid() } == 0 {
        // root ignores the mode: ask as `nobody`, in a child process.
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_delete_and_get_in_a_root_it_cannot_reach",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ROOT, &root)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        // The harness may print the test's name on the same line as the first result.
        stdout
            .lines()
            .filter_map(|line| Some(line[line.find(RESULT)? + RESULT.len()..].to_owned()))
            .collect()
    } else {
        [
            ("get", get_index_kms(&store, "idx").map(drop)),
            ("delete", delete_index_kms(&store, "idx")),
        ]
        .into_iter()
        .map(|(operation, result)| match result {
            Ok(()) => format!("{operation}: OK"),
            Err(e) => format!("{operation}: {:?}: {}", e.kind(), e.message()),
        })
        .collect()
    };
    let denied = "Permission denied (os error 13)";
    assert_eq!(
        lines,
        [
            format!(
                "get: Io: index \"idx\": cannot open {:?}: {denied}",
                root.join("idx.kms")
            ),
            format!("delete: Io: index \"idx\": cannot open {root:?}: {denied}"),
        ]
    );
    // Repaired, the envelope is still there.
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
}

// ---------------------------------------------------------------------------------------------
// The C ABI

fn last_error() -> String {
    unsafe { std::ffi::CStr::from_ptr(cyb_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn c_disk_store(root: &Path) -> *mut cyb_storage_config {
    let path = root.as_os_str().as_encoded_bytes();
    let mut config: *mut cyb_storage_config = std::ptr::null_mut();
    let rc = unsafe { cyb_storage_config_new_disk(path.as_ptr().cast(), path.len(), &mut config) };
    assert_eq!(rc, cyb_result::CYB_RESULT_OK);
    config
}

#[test]
fn c_abi_get_of_a_fifo_envelope_and_delete_through_a_loop_are_cyb_result_io() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("idx.kms"));
    let config = c_disk_store(dir.path()) as usize; // moved to the guard thread and back
    let (rc, message) = returns_within_10s("cyb_index_kms_get of a FIFO", move || {
        let mut blob: *mut cyb_kms_blob = std::ptr::null_mut();
        let rc = unsafe {
            cyb_index_kms_get(
                config as *const cyb_storage_config,
                c"idx".as_ptr(),
                3,
                &mut blob,
            )
        };
        assert!(blob.is_null());
        (rc, last_error())
    });
    assert_eq!(rc, cyb_result::CYB_RESULT_IO);
    assert!(
        message.ends_with("it is a FIFO, not a regular file"),
        "{message}"
    );
    unsafe { cyb_storage_config_free(config as *mut cyb_storage_config) };

    let (_store, link) = store_behind_a_link(dir.path());
    let config = c_disk_store(&link);
    repoint(&link, &link);
    let rc = unsafe { cyb_index_kms_delete(config, c"idx".as_ptr(), 3) };
    assert_eq!(rc, cyb_result::CYB_RESULT_IO);
    assert!(
        last_error().contains("Too many levels of symbolic links"),
        "{}",
        last_error()
    );
    repoint(&link, &dir.path().join("real"));
    assert_eq!(
        get_index_kms(&StorageConfig::disk(&link).unwrap(), "idx").unwrap(),
        aws_kms_blob(1)
    );
    unsafe { cyb_storage_config_free(config) };
}

#[test]
fn c_abi_loading_a_fifo_registry_file_is_cyb_result_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cyborgdb.yaml");
    mkfifo(&fifo);
    let mut client: *mut cyb_kms_client = std::ptr::null_mut();
    assert_eq!(
        unsafe { cyb_kms_client_new(std::ptr::null(), &mut client) },
        cyb_result::CYB_RESULT_OK
    );
    let client = client as usize;
    let (rc, message) = returns_within_10s("cyb_kms_client_load_registry_file", move || {
        let path = fifo.as_os_str().as_encoded_bytes();
        let mut slots = 0usize;
        let rc = unsafe {
            cyb_kms_client_load_registry_file(
                client as *const cyb_kms_client,
                path.as_ptr().cast(),
                path.len(),
                &mut slots,
            )
        };
        (rc, last_error())
    });
    assert_eq!(rc, cyb_result::CYB_RESULT_INVALID_CONFIG);
    assert!(
        message.ends_with("it is a FIFO, not a regular file"),
        "{message}"
    );
    unsafe { cyb_kms_client_free(client as *mut cyb_kms_client) };
}
