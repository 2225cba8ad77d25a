//! Disk storage: layout, hostile names, corrupt files, races, crashes and failed writes.

mod common;

use common::{assert_corrupt, aws_kms_blob, file_names};
use cyborgdb_kms::{
    create_index_kms, delete_index_kms, get_index_kms, list_index_kms, push_index_kms, ErrorKind,
    IndexName, StorageConfig,
};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

fn disk(root: &Path) -> StorageConfig {
    StorageConfig::disk(root).unwrap()
}

#[test]
fn envelope_lives_at_root_slash_storage_key_dot_kms() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("keystore");
    let store = disk(&root);
    push_index_kms(&store, "my_index", &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, "My Index", &aws_kms_blob(2)).unwrap();
    assert_eq!(
        file_names(&root),
        ["%4Dy%20%49ndex.kms", "my_index.kms"].map(String::from)
    );
    let bytes = fs::read(root.join("my_index.kms")).unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize,
        bytes.len() - 4,
        "FlatBuffers size prefix"
    );
    assert_eq!(&bytes[8..12], b"CKMS", "FlatBuffers file identifier");
}

#[cfg(unix)]
#[test]
fn created_root_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b");
    push_index_kms(&disk(&root), "idx", &aws_kms_blob(1)).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("idx.kms")), 0o600);
}

#[test]
fn hostile_names_round_trip_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = disk(&root);
    let names = [
        " ",
        ".",
        "..",
        "...",
        "../../etc/passwd",
        "/abs/path",
        "a/b",
        "a\\b",
        "nul-free \u{7f}\u{1b}[31m\n\t",
        "鍵の索引",
        "emoji 🔑",
        "CON",
        "x.kms",
        ".cyborgdb-kms.1.2.3.tmp",
        "~",
        "%41",
        "A",
        "a",
    ];
    let long_unicode = "é".repeat(127); // 254 bytes
    let mut all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    all.push(long_unicode);
    all.push("z".repeat(255));
    for (i, name) in all.iter().enumerate() {
        create_index_kms(&store, name, &aws_kms_blob(i as u8)).unwrap();
    }
    for (i, name) in all.iter().enumerate() {
        assert_eq!(
            get_index_kms(&store, name).unwrap(),
            aws_kms_blob(i as u8),
            "{name:?}"
        );
    }
    // Exactly one regular file per name, all directly in the root; nothing beside the root.
    let files = file_names(&root);
    assert_eq!(files.len(), all.len());
    for file in &files {
        assert!(file.ends_with(".kms") && !file.starts_with('.'), "{file}");
        assert!(fs::metadata(root.join(file)).unwrap().is_file());
    }
    assert_eq!(file_names(dir.path()), ["root"]);
    for name in &all {
        delete_index_kms(&store, name).unwrap();
    }
    assert!(file_names(&root).is_empty());
}

fn stored_bytes(root: &Path, name: &str) -> Vec<u8> {
    fs::read(root.join(format!("{name}.kms"))).unwrap()
}

#[test]
fn every_truncation_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(dir.path());
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    let good = stored_bytes(dir.path(), "idx");
    for len in 0..good.len() {
        fs::write(dir.path().join("idx.kms"), &good[..len]).unwrap();
        assert_corrupt(&store, "idx");
    }
}

#[test]
fn every_single_bit_flip_is_corrupt_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(dir.path());
    let blob = aws_kms_blob(1);
    push_index_kms(&store, "idx", &blob).unwrap();
    let good = stored_bytes(dir.path(), "idx");
    let mut corrupt = 0;
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        fs::write(dir.path().join("idx.kms"), &bad).unwrap();
        match get_index_kms(&store, "idx") {
            // Padding bytes carry no field: flipping them changes nothing read.
            Ok(read) => assert_eq!(read, blob, "bit {bit} produced garbage fields"),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Corrupt, "bit {bit}: {err:?}");
                corrupt += 1;
            }
        }
    }
    assert!(
        corrupt > good.len() * 8 * 9 / 10,
        "{corrupt} of {}",
        good.len() * 8
    );
}

#[test]
fn foreign_oversized_and_misplaced_files_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = disk(root);
    push_index_kms(&store, "other", &aws_kms_blob(2)).unwrap();
    let path = root.join("idx.kms");

    fs::write(&path, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    assert!(assert_corrupt(&store, "idx").contains("file identifier"));

    let mut extended = stored_bytes(root, "other");
    extended.extend_from_slice(b"trailing");
    fs::write(&path, &extended).unwrap();
    assert!(assert_corrupt(&store, "idx").contains("size prefix"));

    let mut big = stored_bytes(root, "other");
    big.resize(70 * 1024, 0);
    fs::write(&path, &big).unwrap();
    assert!(assert_corrupt(&store, "idx").contains("more than any envelope"));

    // A valid envelope of another index, copied over: it records its own index name.
    fs::copy(root.join("other.kms"), &path).unwrap();
    let message = assert_corrupt(&store, "idx");
    assert!(message.contains("belongs to index \"other\""), "{message}");
    assert!(message.contains("idx.kms"), "names the file: {message}");
}

#[test]
fn a_directory_in_place_of_the_envelope_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(dir.path());
    fs::create_dir(dir.path().join("idx.kms")).unwrap();
    assert_eq!(
        get_index_kms(&store, "idx").unwrap_err().kind(),
        ErrorKind::Io
    );
    assert_eq!(
        push_index_kms(&store, "idx", &aws_kms_blob(1))
            .unwrap_err()
            .kind(),
        ErrorKind::Io
    );
    assert_eq!(
        create_index_kms(&store, "idx", &aws_kms_blob(1))
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
}

#[test]
fn a_root_that_is_a_file_fails_with_io_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("file");
    fs::write(&root, b"not a dir").unwrap();
    let store = disk(&root);
    let err = push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.message().contains("Not a directory"),
        "{}",
        err.message()
    );
    assert_eq!(fs::read(&root).unwrap(), b"not a dir");
}

// ---------------------------------------------------------------------------------------------
// Listing

#[test]
fn list_of_a_missing_root_is_empty_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet");
    assert!(list_index_kms(&disk(&root)).unwrap().is_empty());
    assert!(!dir.path().join("not").exists());
}

#[test]
fn list_ignores_temp_foreign_and_non_canonical_entries_and_directories() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = disk(root);
    let long = "鍵".repeat(85);
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, "My Index", &aws_kms_blob(2)).unwrap();
    push_index_kms(&store, &long, &aws_kms_blob(3)).unwrap();
    let envelope = fs::read(root.join("idx.kms")).unwrap();

    // Files no storage key names, each holding a valid envelope so only the name can exclude it.
    let hash = format!("~{}", "0".repeat(64));
    for name in [
        ".cyborgdb-kms.123.0.0000abcd.tmp", // a write in progress or left by a crash
        ".cyborgdb-kms.1.2.3.tmp.kms",
        "readme.txt",
        "idx.kms.bak",
        "idx.KMS",
        "idx",
        ".kms",      // empty key
        "IDX.kms",   // upper case is always escaped
        "%69dx.kms", // an escape of a byte that stands for itself ('i')
        "%4dy.kms",  // lower-case hex
        "%4D%.kms",  // a truncated escape
        "%FF.kms",   // not UTF-8
        "%00.kms",   // NUL: not a name
        "a b.kms",   // unescaped space
        "x.y.kms",
        "~abc.kms",                          // not a SHA-256
        &format!("{}.kms", "a".repeat(201)), // would have been hashed
        &format!("~{}.kms", "A".repeat(64)), // upper-case digest
    ] {
        fs::write(root.join(name), &envelope).unwrap();
    }
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"\xff.kms")),
        &envelope,
    )
    .unwrap();
    // Directories, even named like envelopes (readable or hashed), and what is inside them.
    for sub in ["sub", "dir.kms", &format!("{hash}.kms")] {
        fs::create_dir(root.join(sub)).unwrap();
        fs::write(root.join(sub).join("inner.kms"), &envelope).unwrap();
    }
    // Symlinks: to an envelope file it is what a get reads, so it is listed; dangling or to a
    // directory it is not.
    std::os::unix::fs::symlink(root.join("idx.kms"), root.join("alias.kms")).unwrap();
    std::os::unix::fs::symlink(root.join("gone.kms"), root.join("dangling.kms")).unwrap();
    std::os::unix::fs::symlink(root.join("sub"), root.join("subdir.kms")).unwrap();

    let mut expected = vec![
        "My Index".to_owned(),
        "alias".to_owned(),
        "idx".to_owned(),
        long,
    ];
    expected.sort();
    assert_eq!(list_index_kms(&store).unwrap(), expected);
}

#[test]
fn list_reads_hashed_files_and_reports_a_damaged_or_misplaced_one_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = disk(root);
    let long = "鍵".repeat(85);
    let other_long = "鍵".repeat(84);
    push_index_kms(&store, &long, &aws_kms_blob(1)).unwrap();
    push_index_kms(&store, &other_long, &aws_kms_blob(2)).unwrap();
    push_index_kms(&store, "short", &aws_kms_blob(3)).unwrap();
    let path = root.join(format!(
        "{}.kms",
        IndexName::new(&long).unwrap().storage_key()
    ));
    let good = fs::read(&path).unwrap();
    let other = fs::read(root.join(format!(
        "{}.kms",
        IndexName::new(&other_long).unwrap().storage_key()
    )))
    .unwrap();

    let expect_corrupt = |reason: &str| {
        let err = list_index_kms(&store).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
        assert_eq!(
            err.message(),
            format!("listing KMS envelopes: stored KMS envelope at {path:?} is corrupt: {reason}")
        );
    };
    fs::write(&path, &good[..good.len() - 1]).unwrap();
    expect_corrupt(&format!(
        "{} bytes where the size prefix says {} (truncated or extended)",
        good.len() - 1,
        good.len()
    ));
    fs::write(&path, vec![7u8; 70 * 1024]).unwrap();
    // Refused by its size before reading, so the message gives the whole size.
    expect_corrupt("71680 bytes, more than any envelope (65536)");
    // Another long name's envelope copied over it: its name hashes elsewhere.
    fs::write(&path, &other).unwrap();
    expect_corrupt(&format!("it belongs to index {:?}...", "鍵".repeat(64)));
    // A short name's envelope in a hashed file would alias that name.
    fs::copy(root.join("short.kms"), &path).unwrap();
    expect_corrupt("it belongs to index \"short\"");

    fs::write(&path, &good).unwrap();
    assert_eq!(list_index_kms(&store).unwrap().len(), 3);
}

#[test]
fn list_of_a_root_that_is_not_a_directory_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("file");
    fs::write(&root, b"not a dir").unwrap();
    let err = list_index_kms(&disk(&root)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.message().starts_with(&format!(
            "listing KMS envelopes: cannot open directory {root:?}: Not a directory"
        )),
        "{}",
        err.message()
    );
}

#[test]
fn racing_creates_from_many_threads_have_exactly_one_winner() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let store = disk(dir.path());
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    create_index_kms(&store, "race", &aws_kms_blob(t as u8)).map(|()| t)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<usize> = results.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::AlreadyExists);
            }
        }
        assert_eq!(
            get_index_kms(&store, "race").unwrap(),
            aws_kms_blob(winners[0] as u8)
        );
        assert_eq!(file_names(dir.path()), ["race.kms"], "no temp left behind");
    }
}

#[test]
fn readers_never_see_a_partial_envelope_while_pushes_race() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(dir.path());
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    push_index_kms(&store, "idx", &aws_kms_blob(1 + ((i + w) % 2) as u8)).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while reads < 2000 {
                let blob = get_index_kms(&store, "idx").unwrap();
                assert!(blob == aws_kms_blob(1) || blob == aws_kms_blob(2));
                reads += 1;
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
}

/// Environment variable that turns the ignored `child_*` tests below into child processes.
const CHILD_ROOT: &str = "CYB_TEST_CHILD_ROOT";

fn spawn_child(test: &str, root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ROOT, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "child process of a_crash_at_any_instant_leaves_the_old_or_the_new_envelope"]
fn child_push_forever() {
    let root = std::env::var(CHILD_ROOT).expect("run by the parent test");
    let store = disk(Path::new(&root));
    for i in 0u64.. {
        push_index_kms(&store, "idx", &aws_kms_blob(1 + (i % 2) as u8)).unwrap();
        println!("pushed {i}");
    }
}

#[test]
fn a_crash_at_any_instant_leaves_the_old_or_the_new_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(dir.path());
    push_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap();
    for round in 0..24 {
        let mut child = spawn_child("child_push_forever", dir.path());
        // Kill after a varying number of completed pushes: mid-push, somewhere in its steps.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < round % 8 {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("pushed") => seen += 1,
                Some(_) => {}
                None => panic!("child exited early"),
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructors, no cleanup
        child.wait().unwrap();
        let blob = get_index_kms(&store, "idx").unwrap();
        assert!(
            blob == aws_kms_blob(1) || blob == aws_kms_blob(2),
            "round {round}"
        );
        // Whatever temp files the crash left, readers ignore them and only envelopes are named *.kms.
        let envelopes: Vec<_> = file_names(dir.path())
            .into_iter()
            .filter(|n| n.ends_with(".kms"))
            .collect();
        assert_eq!(envelopes, ["idx.kms"]);
    }
}

#[test]
#[ignore = "child process of failed_writes_keep_the_old_envelope_and_leave_nothing"]
fn child_write_with_tiny_file_size_limit() {
    let root = std::env::var(CHILD_ROOT).expect("run by the parent test");
    let store = disk(Path::new(&root));
    // Files may not grow past 64 bytes: every envelope write fails with EFBIG.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: 64,
            rlim_max: 64,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    for (what, result) in [
        ("push", push_index_kms(&store, "idx", &aws_kms_blob(2))),
        ("create", create_index_kms(&store, "new", &aws_kms_blob(2))),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{what}");
        println!("{what}: {}", err.message());
    }
}

#[test]
fn failed_writes_keep_the_old_envelope_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(dir.path());
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
    let before = fs::read(dir.path().join("idx.kms")).unwrap();
    let output = spawn_child("child_write_with_tiny_file_size_limit", dir.path())
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains("push: index \"idx\": cannot write"),
        "{stdout}"
    );
    assert!(stdout.contains("File too large"), "{stdout}");
    assert_eq!(fs::read(dir.path().join("idx.kms")).unwrap(), before);
    assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(1));
    assert_eq!(
        file_names(dir.path()),
        ["idx.kms"],
        "no temp file, no new envelope"
    );
}

#[test]
fn stale_temp_files_are_swept_but_live_and_young_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let old = SystemTime::now() - Duration::from_secs(3600);
    let make = |name: &str, mtime: SystemTime| {
        let file = File::create(root.join(name)).unwrap();
        file.set_modified(mtime).unwrap();
        file
    };
    drop(make(".cyborgdb-kms.1.1.0.tmp", old)); // crashed writer: removed
    drop(make(".cyborgdb-kms.1.2.0.tmp", SystemTime::now())); // may be mid-create: kept
    let live = make(".cyborgdb-kms.1.3.0.tmp", old); // writer still holds its lock: kept
    live.lock().unwrap();
    drop(make("engine-keystore.tmp", old)); // not ours: kept

    let store = disk(root);
    assert_eq!(
        get_index_kms(&store, "idx").unwrap_err().kind(),
        ErrorKind::NotFound,
        "readers ignore temp files"
    );
    push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap(); // first write on this root sweeps
    assert_eq!(
        file_names(root),
        [
            ".cyborgdb-kms.1.2.0.tmp",
            ".cyborgdb-kms.1.3.0.tmp",
            "engine-keystore.tmp",
            "idx.kms"
        ]
    );
    drop(live);
}
