//! New-KEK rotation (issue #13 part 1): a fresh KEK through the target slot, the engine's DEK
//! re-wrapped by a callback, the envelope swapped on commit — on the local provider (disk store)
//! and on moto (aws-kms → aws-kms, aws → aws-kms; memory and S3 stores).
//!
//! The engine is modelled by a file holding its DEK sealed (AES-256-GCM) under one or more KEKs,
//! rewritten atomically (temp file + rename): the callback adds a copy under the new KEK, and
//! after commit the engine keeps only the copy the resolved KEK opens. The crash tests run this
//! file's `child_*` tests as child processes that SIGKILL themselves at each step (inside the
//! library through `CYB_TEST_ROTATION_CRASH_AT`, a hook compiled only with debug assertions;
//! elsewhere through the public API), then recover in the parent: at every step the index
//! resolves to a KEK that opens its data, and recovery completes or rolls back.

mod common;

use common::local::{local_client, local_client_with, local_slot};

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use common::moto::{moto, unique};
use cyborgdb_kms::{
    get_index_kms, list_index_kms, push_index_kms, DriftStatus, ErrorKind, Kek, KekCacheOptions,
    KekResolver, KeyIdentity, KmsClient, KmsClientOptions, Provider, RotateKekError, RotationState,
    S3Credentials, S3Options, Slot, StorageConfig,
};

const INDEX: &str = "orders";
const DEK: [u8; 32] = [0x5a; 32];

// ---------------------------------------------------------------------------------------------
// The engine model

/// One DEK copy: 12-byte nonce ‖ AES-256-GCM(KEK, DEK).
fn seal(kek: &Kek, dek: &[u8; 32]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(kek.as_bytes()).unwrap();
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut entry = nonce.to_vec();
    entry.extend(cipher.encrypt(&nonce, dek.as_slice()).unwrap());
    entry
}

fn open(kek: &Kek, entry: &[u8]) -> Option<[u8; 32]> {
    let cipher = Aes256Gcm::new_from_slice(kek.as_bytes()).unwrap();
    let plain = cipher
        .decrypt(Nonce::from_slice(&entry[..12]), &entry[12..])
        .ok()?;
    plain.try_into().ok()
}

const ENTRY_LEN: usize = 12 + 32 + 16;

fn entries(file: &Path) -> Vec<Vec<u8>> {
    std::fs::read(file)
        .unwrap()
        .chunks(ENTRY_LEN)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Replaces the engine's file atomically (temp file, fsync, rename).
fn write_entries(file: &Path, entries: &[Vec<u8>]) {
    let temp = file.with_extension("tmp");
    std::fs::write(&temp, entries.concat()).unwrap();
    std::fs::File::open(&temp).unwrap().sync_all().unwrap();
    std::fs::rename(&temp, file).unwrap();
}

/// The DEK, if some copy in the engine's file opens with `kek`.
fn dek_under(file: &Path, kek: &Kek) -> Option<[u8; 32]> {
    entries(file).iter().find_map(|entry| open(kek, entry))
}

/// The engine's re-wrap callback, idempotent: adds a copy under `new` unless there is one.
fn engine_rewrap(file: &Path, old: &Kek, new: &Kek) -> Result<(), String> {
    if dek_under(file, new).is_some() {
        return Ok(());
    }
    let dek = dek_under(file, old).ok_or("the DEK opens with neither KEK")?;
    let mut all = entries(file);
    all.push(seal(new, &dek));
    write_entries(file, &all);
    Ok(())
}

/// After a rotation finished or was undone: keeps only the copies `kek` opens (idempotent).
fn engine_settle(file: &Path, kek: &Kek) {
    let kept: Vec<_> = entries(file)
        .into_iter()
        .filter(|entry| open(kek, entry).is_some())
        .collect();
    assert!(!kept.is_empty(), "the resolved KEK opens no DEK copy");
    write_entries(file, &kept);
}

// ---------------------------------------------------------------------------------------------
// Local-provider fixture (disk store, shared with child processes)

/// A resolver over the local slots `main` and `other` in `dir`, and the disk store `dir/store` —
/// or, if `dir` holds a moto configuration ([`use_moto`]), over `aws-kms` slots `main` and `other`
/// on that moto and its S3 bucket (so child processes share it too).
fn local(dir: &Path) -> (KekResolver, StorageConfig) {
    if let Ok(config) = std::fs::read_to_string(dir.join(MOTO_CONFIG)) {
        let [endpoint, key_main, key_other, bucket]: [&str; 4] =
            config.lines().collect::<Vec<_>>().try_into().unwrap();
        let client = KmsClient::new(KmsClientOptions {
            endpoint_url: Some(endpoint.to_owned()),
            ..KmsClientOptions::default()
        })
        .unwrap();
        client
            .add_slot("main", aws_slot(Provider::AwsKms, key_main))
            .unwrap();
        client
            .add_slot("other", aws_slot(Provider::AwsKms, key_other))
            .unwrap();
        let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
        return (resolver, s3_store_at(endpoint, bucket));
    }
    let client = local_client_with(dir, &[("main", 1), ("other", 2)]);
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    (resolver, StorageConfig::disk(dir.join("store")).unwrap())
}

/// The file in a fixture directory that switches [`local`] to moto.
const MOTO_CONFIG: &str = "moto.cfg";

/// Makes `dir` a moto fixture: two fresh KMS keys and a fresh bucket on the shared moto.
fn use_moto(dir: &Path) {
    let bucket = unique("rotate");
    moto().create_bucket(&bucket);
    let config = [
        moto().endpoint.clone(),
        moto().create_kms_key(REGION),
        moto().create_kms_key(REGION),
        bucket,
    ]
    .join("\n");
    std::fs::write(dir.join(MOTO_CONFIG), config).unwrap();
}

fn dek_file(dir: &Path) -> PathBuf {
    dir.join("orders.dek")
}

fn envelope_path(dir: &Path) -> PathBuf {
    dir.join("store").join("orders.kms")
}

fn record_path(dir: &Path) -> PathBuf {
    dir.join("store").join("orders.rot")
}

/// Creates the index under `main` and the engine's file with the DEK under its KEK.
fn create_index(dir: &Path) {
    let (resolver, storage) = local(dir);
    let kek = resolver
        .create_index(&storage, INDEX, Some("main"), None)
        .unwrap();
    write_entries(&dek_file(dir), &[seal(&kek, &DEK)]);
}

/// A fresh process's view: the KEK the index resolves to now.
fn resolve_fresh(dir: &Path) -> Kek {
    let (resolver, storage) = local(dir);
    resolver.resolve(&storage, INDEX).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Recovery {
    Complete,
    RollBack,
}

/// What an engine does on start: finish (or undo) a rotation left pending, then settle its file.
fn recover(dir: &Path, policy: Recovery) {
    let (resolver, storage) = local(dir);
    let file = dek_file(dir);
    if let Some(rotation) = resolver.pending_rotation(&storage, INDEX).unwrap() {
        match (rotation.state(), policy) {
            (RotationState::Committed, _) | (RotationState::Pending, Recovery::Complete) => {
                engine_rewrap(&file, rotation.old_kek(), rotation.new_kek()).unwrap();
                resolver.commit_rotation(&storage, &rotation).unwrap();
            }
            (RotationState::Pending, Recovery::RollBack) | (RotationState::Stale, _) => {
                resolver.abort_rotation(&storage, &rotation).unwrap();
            }
        }
    }
    let kek = resolver.resolve(&storage, INDEX).unwrap();
    engine_settle(&file, &kek);
}

// ---------------------------------------------------------------------------------------------
// Two-phase and one-call rotation (local provider)

#[test]
fn rotate_kek_gives_the_index_a_fresh_kek_under_the_target_slot() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let old_kek = resolver.resolve(&storage, INDEX).unwrap();
    let misses = resolver.stats().misses;
    let file = dek_file(dir.path());

    let mut seen = None;
    let new = resolver
        .rotate_kek(&storage, INDEX, "other", |old, new| {
            seen = Some((old.clone(), new.clone()));
            engine_rewrap(&file, old, new)
        })
        .unwrap();
    let (seen_old, seen_new) = seen.unwrap();
    assert_eq!(seen_old, old_kek);
    assert_ne!(seen_new, old_kek);
    assert_eq!((new.kms_name.as_str(), new.version), ("other", 2));
    assert_eq!(get_index_kms(&storage, INDEX).unwrap(), new);
    // The cached old KEK is gone: the next resolve misses and returns the new KEK.
    assert_eq!(resolver.resolve(&storage, INDEX).unwrap(), seen_new);
    assert_eq!(resolver.stats().misses, misses + 1);
    assert_eq!(resolve_fresh(dir.path()), seen_new);
    assert!(!record_path(dir.path()).exists());
    engine_settle(&file, &seen_new);
    assert_eq!(dek_under(&file, &seen_new), Some(DEK));
    assert_eq!(dek_under(&file, &old_kek), None);

    // Rotating again within the same slot (its key unchanged) also draws a fresh KEK.
    let again = resolver
        .rotate_kek(&storage, INDEX, "other", |old, new| {
            engine_rewrap(&file, old, new)
        })
        .unwrap();
    assert_eq!(again.version, 3);
    assert_ne!(resolver.resolve(&storage, INDEX).unwrap(), seen_new);
}

#[test]
fn a_failing_callback_rolls_back_and_leaves_the_envelope_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let old_kek = resolver.resolve(&storage, INDEX).unwrap();
    let before = std::fs::read(envelope_path(dir.path())).unwrap();
    let err = resolver
        .rotate_kek(&storage, INDEX, "other", |_, _| Err("engine is read-only"))
        .unwrap_err();
    assert!(matches!(
        err,
        RotateKekError::Callback("engine is read-only")
    ));
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
    assert!(!record_path(dir.path()).exists());
    assert!(resolver
        .pending_rotation(&storage, INDEX)
        .unwrap()
        .is_none());
    assert_eq!(resolver.resolve(&storage, INDEX).unwrap(), old_kek);
    // A library failure before the callback (unknown slot) never calls it and changes nothing.
    let err = resolver
        .rotate_kek(&storage, INDEX, "nope", |_, _| -> Result<(), ()> {
            panic!("not called")
        })
        .unwrap_err();
    assert!(matches!(err, RotateKekError::Rotation(e) if e.kind() == ErrorKind::UnknownSlot));
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
    assert!(!record_path(dir.path()).exists());
}

#[test]
fn while_pending_resolve_returns_the_old_kek_and_a_second_begin_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let old_kek = resolver.resolve(&storage, INDEX).unwrap();
    let rotation = resolver.begin_rotation(&storage, INDEX, "other").unwrap();
    assert_eq!(rotation.state(), RotationState::Pending);
    assert_eq!(*rotation.old_kek(), old_kek);
    assert!(record_path(dir.path()).exists());
    // The record is no envelope: listings and drift checks never see it.
    assert_eq!(list_index_kms(&storage).unwrap(), [INDEX]);
    assert_eq!(resolver.check_drift(&storage, false).unwrap().len(), 1);
    // Debug shows neither KEK.
    let debug = format!("{rotation:?}");
    for kek in [rotation.old_kek(), rotation.new_kek()] {
        let hex: String = kek.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.contains(&hex), "{debug}");
        assert!(!debug.contains(&format!("{:?}", kek.as_bytes())), "{debug}");
    }
    assert_eq!(resolver.resolve(&storage, INDEX).unwrap(), old_kek);
    assert_eq!(resolve_fresh(dir.path()), old_kek);

    let err = resolver
        .begin_rotation(&storage, INDEX, "main")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("already pending"), "{err:?}");

    // Another process finds it, with both KEKs.
    let (other, other_storage) = local(dir.path());
    let found = other
        .pending_rotation(&other_storage, INDEX)
        .unwrap()
        .unwrap();
    assert_eq!(found.old_kek(), rotation.old_kek());
    assert_eq!(found.new_kek(), rotation.new_kek());
    assert_eq!(found.new_envelope(), rotation.new_envelope());

    // Abort: the envelope is untouched, the record gone; aborting again succeeds.
    let before = std::fs::read(envelope_path(dir.path())).unwrap();
    resolver.abort_rotation(&storage, &rotation).unwrap();
    resolver.abort_rotation(&storage, &rotation).unwrap();
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
    assert!(!record_path(dir.path()).exists());
    // Committing an aborted rotation is refused.
    let err = resolver.commit_rotation(&storage, &rotation).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
}

#[test]
fn commit_is_idempotent_and_a_committed_rotation_cannot_be_aborted() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let rotation = resolver.begin_rotation(&storage, INDEX, "other").unwrap();
    // The state a crash between commit's swap and its record removal leaves.
    push_index_kms(&storage, INDEX, rotation.new_envelope()).unwrap();
    let found = resolver.pending_rotation(&storage, INDEX).unwrap().unwrap();
    assert_eq!(found.state(), RotationState::Committed);
    let err = resolver.abort_rotation(&storage, &found).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(record_path(dir.path()).exists());
    let new = resolver.commit_rotation(&storage, &found).unwrap();
    assert_eq!(&new, rotation.new_envelope());
    assert!(!record_path(dir.path()).exists());
    // Again: already done; and with the record gone, abort is still refused.
    assert_eq!(resolver.commit_rotation(&storage, &rotation).unwrap(), new);
    let err = resolver.abort_rotation(&storage, &rotation).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        resolver.resolve(&storage, INDEX).unwrap(),
        *rotation.new_kek()
    );
}

#[test]
fn a_write_during_the_rotation_makes_commit_conflict_and_abort_still_works() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let rotation = resolver.begin_rotation(&storage, INDEX, "other").unwrap();
    // Another write lands meanwhile: a push of the same envelope as version 2.
    let mut pushed = get_index_kms(&storage, INDEX).unwrap();
    pushed.version += 1;
    push_index_kms(&storage, INDEX, &pushed).unwrap();
    let before = std::fs::read(envelope_path(dir.path())).unwrap();
    let err = resolver.commit_rotation(&storage, &rotation).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("neither"), "{err:?}");
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
    let found = resolver.pending_rotation(&storage, INDEX).unwrap().unwrap();
    assert_eq!(found.state(), RotationState::Stale);
    resolver.abort_rotation(&storage, &found).unwrap();
    assert_eq!(
        resolver.resolve(&storage, INDEX).unwrap(),
        *rotation.old_kek()
    );
}

#[test]
fn a_same_kek_rewrap_or_drift_repair_is_refused_while_a_rotation_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let rotation = resolver.begin_rotation(&storage, INDEX, "other").unwrap();
    let before = std::fs::read(envelope_path(dir.path())).unwrap();
    let err = resolver.rewrap(&storage, INDEX, "other").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("rotation is pending"), "{err:?}");
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
    // A damaged record still marks the rotation as pending.
    let record = std::fs::read(record_path(dir.path())).unwrap();
    std::fs::write(record_path(dir.path()), vec![0u8; 1 << 20]).unwrap();
    let err = resolver.rewrap(&storage, INDEX, "main").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), before);
    std::fs::write(record_path(dir.path()), record).unwrap();
    // Once committed, re-wraps work again.
    resolver.commit_rotation(&storage, &rotation).unwrap();
    let rewrapped = resolver.rewrap(&storage, INDEX, "main").unwrap();
    assert_eq!(rewrapped.version, 3);
    assert_eq!(resolve_fresh(dir.path()), *rotation.new_kek());
}

#[test]
fn a_committed_rotation_is_in_the_custody_audit() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let audited = storage
        .with_audit(&cyborgdb_kms::audit::AuditOptions::new("rotation-test"))
        .unwrap();
    let rotation = resolver.begin_rotation(&audited, INDEX, "other").unwrap();
    resolver.commit_rotation(&audited, &rotation).unwrap();
    let report = cyborgdb_kms::audit::verify_audit(&storage).unwrap();
    assert!(report.is_intact(), "{report:?}");
    let records = cyborgdb_kms::audit::read_audit(&storage, 0, 100).unwrap();
    let last = records.last().expect("the commit appended a record");
    assert_eq!(last.index, INDEX);
    assert_eq!(last.actor.principal, "rotation-test");
    match &last.event {
        cyborgdb_kms::audit::AuditEvent::Rewrapped {
            from_version,
            to_version,
            ..
        } => assert_eq!((*from_version, *to_version), (1, 2)),
        other => panic!("expected a re-wrap record, got {other:?}"),
    }
}

#[test]
fn provider_none_and_missing_indexes_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (resolver, storage) = local(dir.path());
    resolver
        .create_index(&storage, "byok", None, Some(&[7u8; 32]))
        .unwrap();
    let err = resolver
        .begin_rotation(&storage, "byok", "other")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KekNotWrapped);
    let err = resolver
        .begin_rotation(&storage, "missing", "other")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!dir.path().join("store/byok.rot").exists());
    assert!(!dir.path().join("store/missing.rot").exists());
}

// ---------------------------------------------------------------------------------------------
// Hostile pending-rotation records

/// Bytes of `blob` as this library stores an envelope for `index` (through a scratch disk store).
fn envelope_bytes(index: &str, blob: &cyborgdb_kms::KmsBlob) -> Vec<u8> {
    let scratch = tempfile::tempdir().unwrap();
    let store = StorageConfig::disk(scratch.path()).unwrap();
    push_index_kms(&store, index, blob).unwrap();
    std::fs::read(scratch.path().join(format!("{index}.kms"))).unwrap()
}

/// A pending-rotation record (docs/file-formats.md) built by hand, as an attacker would.
fn forge_record(old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut record = b"CKMR\x01".to_vec();
    for part in [old, new] {
        record.extend((part.len() as u32).to_le_bytes());
        record.extend(part);
    }
    let crc = crc32fast::hash(&record);
    record.extend(crc.to_le_bytes());
    record
}

#[test]
fn a_damaged_or_oversized_record_is_corrupt_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let rotation = resolver.begin_rotation(&storage, INDEX, "other").unwrap();
    let record = std::fs::read(record_path(dir.path())).unwrap();
    let envelope = std::fs::read(envelope_path(dir.path())).unwrap();
    let mut flipped = record.clone();
    flipped[record.len() / 2] ^= 0x40;
    let hostile: [(&str, Vec<u8>); 4] = [
        ("truncated", record[..record.len() - 9].to_vec()),
        ("flipped", flipped),
        ("oversized", vec![b'C'; 64 * 1024 + 1]),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in hostile {
        std::fs::write(record_path(dir.path()), &bytes).unwrap();
        for err in [
            resolver.pending_rotation(&storage, INDEX).unwrap_err(),
            resolver.commit_rotation(&storage, &rotation).unwrap_err(),
            resolver.abort_rotation(&storage, &rotation).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{what}: {err:?}");
            assert!(
                err.message().contains("pending KEK rotation record")
                    || err.message().contains("more than any"),
                "{what}: {err:?}"
            );
        }
        let err = resolver
            .begin_rotation(&storage, INDEX, "other")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{what}");
        assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), envelope);
        assert_eq!(std::fs::read(record_path(dir.path())).unwrap(), bytes);
        assert_eq!(
            resolver.resolve(&storage, INDEX).unwrap(),
            *rotation.old_kek()
        );
    }
}

#[test]
fn a_forged_record_never_hands_out_a_kek_the_slots_keys_did_not_unwrap() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let rotation = resolver.begin_rotation(&storage, INDEX, "other").unwrap();
    let envelope = std::fs::read(envelope_path(dir.path())).unwrap();
    let old_bytes = envelope_bytes(INDEX, rotation.old_envelope());

    // The attacker's own key, named as such: the slot does not trust it.
    let attacker_dir = tempfile::tempdir().unwrap();
    let attacker = local_client();
    attacker
        .add_slot("other", local_slot(attacker_dir.path(), "evil", 9))
        .unwrap();
    let (mut evil, _evil_kek) = attacker.wrap_new_kek(INDEX, "other").unwrap();
    evil.version = 2;
    evil.created_at = 1;
    std::fs::write(
        record_path(dir.path()),
        forge_record(&old_bytes, &envelope_bytes(INDEX, &evil)),
    )
    .unwrap();
    let err = resolver.pending_rotation(&storage, INDEX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedKey, "{err:?}");
    let err = resolver.commit_rotation(&storage, &rotation).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:?}");

    // The attacker's wrapping relabelled as the slot's key: trusted by name, refused by the key.
    evil.key_id = rotation.new_envelope().key_id.clone();
    std::fs::write(
        record_path(dir.path()),
        forge_record(&old_bytes, &envelope_bytes(INDEX, &evil)),
    )
    .unwrap();
    let err = resolver.pending_rotation(&storage, INDEX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DecryptFailed, "{err:?}");

    // A record copied from another index fails its binding.
    let moved = forge_record(
        &envelope_bytes("other-index", rotation.old_envelope()),
        &envelope_bytes("other-index", rotation.new_envelope()),
    );
    std::fs::write(record_path(dir.path()), moved).unwrap();
    let err = resolver.pending_rotation(&storage, INDEX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");

    assert_eq!(std::fs::read(envelope_path(dir.path())).unwrap(), envelope);
    assert_eq!(
        resolver.resolve(&storage, INDEX).unwrap(),
        *rotation.old_kek()
    );
}

// ---------------------------------------------------------------------------------------------
// Kill the process at every step

/// Environment of the child tests: the fixture directory and the step to die at.
const CHILD_DIR: &str = "CYB_TEST_ROTATE_DIR";
const CHILD_STEP: &str = "CYB_TEST_ROTATE_STEP";

/// The steps, in order. `begin:*` and `commit:*` are the library's crash points; the others are
/// the engine's, around the public API.
const STEPS: [&str; 7] = [
    "begin:before-record",
    "begin:after-record",
    "callback:before-write",
    "callback:after-write",
    "commit:after-swap",
    "after-commit",
    "done",
];

fn die() -> ! {
    // SAFETY: no preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL")
}

fn run_child(test: &str, dir: &Path, step: &str) -> std::process::Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_STEP, step)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if step.starts_with("begin:") || step.starts_with("commit:") {
        command.env("CYB_TEST_ROTATION_CRASH_AT", step);
    }
    command.output().unwrap()
}

#[test]
#[ignore = "child process of the a_kill_at_every_step_* tests"]
fn child_rotate_and_die() {
    let dir = PathBuf::from(std::env::var(CHILD_DIR).expect("run by the parent test"));
    let step = std::env::var(CHILD_STEP).unwrap();
    let (resolver, storage) = local(&dir);
    let file = dek_file(&dir);
    resolver
        .rotate_kek(&storage, INDEX, "other", |old, new| {
            if step == "callback:before-write" {
                die();
            }
            engine_rewrap(&file, old, new)?;
            if step == "callback:after-write" {
                die();
            }
            Ok::<(), String>(())
        })
        .unwrap();
    if step == "after-commit" {
        die();
    }
    let kek = resolver.resolve(&storage, INDEX).unwrap();
    engine_settle(&file, &kek);
}

#[test]
fn a_kill_at_every_step_leaves_a_kek_that_opens_the_data() {
    kill_at_every_step(false);
}

#[test]
fn a_kill_at_every_step_on_moto_kms_and_s3_leaves_a_kek_that_opens_the_data() {
    kill_at_every_step(true);
}

/// Runs the rotation in a child killed at each step, then checks and recovers in this process:
/// on the local provider and a disk store, or on moto (`aws-kms` → `aws-kms`, S3 store).
fn kill_at_every_step(on_moto: bool) {
    for policy in [Recovery::Complete, Recovery::RollBack] {
        for (k, step) in STEPS.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            if on_moto {
                use_moto(dir.path());
            }
            create_index(dir.path());
            let original = resolve_fresh(dir.path());
            let out = run_child("child_rotate_and_die", dir.path(), step);
            if *step == "done" {
                assert!(out.status.success(), "{step}: {out:?}");
            } else {
                assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{step}: {out:?}");
            }
            // Right after the crash, before any recovery: the index resolves to a KEK that opens
            // its data.
            let file = dek_file(dir.path());
            let now = resolve_fresh(dir.path());
            assert_eq!(dek_under(&file, &now), Some(DEK), "{step}, {policy:?}");

            recover(dir.path(), policy);
            let (resolver, storage) = local(dir.path());
            assert!(resolver
                .pending_rotation(&storage, INDEX)
                .unwrap()
                .is_none());
            assert!(on_moto || !record_path(dir.path()).exists());
            let kek = resolver.resolve(&storage, INDEX).unwrap();
            assert_eq!(dek_under(&file, &kek), Some(DEK), "{step}, {policy:?}");
            assert_eq!(entries(&file).len(), 1, "{step}, {policy:?}");
            let envelope = get_index_kms(&storage, INDEX).unwrap();
            // Before the record exists nothing happened; from the swap on it is committed;
            // in between, the recovery's policy decides.
            let rotated = match k {
                0 => false,
                1..=3 => policy == Recovery::Complete,
                _ => true,
            };
            if rotated {
                assert_eq!((envelope.kms_name.as_str(), envelope.version), ("other", 2));
                assert_ne!(kek, original, "{step}");
            } else {
                assert_eq!((envelope.kms_name.as_str(), envelope.version), ("main", 1));
                assert_eq!(kek, original, "{step}");
            }
            // A later rotation starts cleanly.
            resolver
                .rotate_kek(&storage, INDEX, "main", |old, new| {
                    engine_rewrap(&file, old, new)
                })
                .unwrap();
        }
    }
}

#[test]
#[ignore = "child process of concurrent_begins_from_two_processes_*"]
fn child_begin() {
    let dir = PathBuf::from(std::env::var(CHILD_DIR).expect("run by the parent test"));
    let (resolver, storage) = local(&dir);
    match resolver.begin_rotation(&storage, INDEX, "other") {
        Ok(_) => println!("RESULT won"),
        Err(e) if e.kind() == ErrorKind::Conflict => println!("RESULT conflict"),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn concurrent_begins_from_two_processes_have_one_winner() {
    concurrent_begins_from_two_processes(false);
}

/// The same on S3 (moto), where the record's strict create is a PUT with `If-None-Match: *`.
#[test]
fn concurrent_begins_from_two_processes_on_s3_have_one_winner() {
    concurrent_begins_from_two_processes(true);
}

/// Two child processes begin a rotation of one index at once (on Disk, or on moto's S3 with
/// aws-kms slots): exactly one wins, the other gets `Conflict`, and the winner's rotation is
/// pending.
fn concurrent_begins_from_two_processes(on_moto: bool) {
    let dir = tempfile::tempdir().unwrap();
    if on_moto {
        use_moto(dir.path());
    }
    create_index(dir.path());
    let spawn = || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_begin",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let children = [spawn(), spawn()];
    let mut results: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .find_map(|l| l.split("RESULT ").nth(1).map(str::to_owned))
                .unwrap()
        })
        .collect();
    results.sort();
    assert_eq!(results, ["conflict", "won"]);
    let (resolver, storage) = local(dir.path());
    let found = resolver.pending_rotation(&storage, INDEX).unwrap().unwrap();
    assert_eq!(found.state(), RotationState::Pending);
}

// ---------------------------------------------------------------------------------------------
// Drift repair in new-KEK mode

#[test]
fn drift_repair_in_new_kek_mode_rotates_each_drifted_index_through_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    resolver
        .create_index(&storage, "fails", Some("main"), None)
        .unwrap();
    let old_kek = resolver.resolve(&storage, INDEX).unwrap();
    let main = local_slot(dir.path(), "main", 1);
    let old_main = KeyIdentity {
        provider: main.provider,
        key_id: main.key_id.clone(),
        region: main.region.clone(),
    };
    // The operator points slot main at a new key and trusts the old one.
    let mut moved = local_slot(dir.path(), "main-new", 3);
    moved.previous_keys.push(old_main);
    resolver.client().add_slot("main", moved).unwrap();

    let file = dek_file(dir.path());
    let report = resolver
        .check_drift_new_kek(&storage, |index, old, new| {
            if index == "fails" {
                return Err("engine busy".to_owned());
            }
            engine_rewrap(&file, old, new)
        })
        .unwrap();
    let by_index = |name: &str| report.iter().find(|(e, _)| e.index == name).unwrap();
    let (orders, orders_err) = by_index(INDEX);
    assert_eq!(orders.status, DriftStatus::Rewrapped);
    assert!(orders_err.is_none());
    let (fails, fails_err) = by_index("fails");
    assert_eq!(fails.status, DriftStatus::Failed);
    assert_eq!(fails_err.as_deref(), Some("engine busy"));
    let fails_error = fails.error.as_ref().unwrap();
    assert_eq!(fails_error.kind(), ErrorKind::CallbackFailed);
    assert!(
        fails_error.message().contains("engine busy") && fails_error.message().contains("fails"),
        "{fails_error:?}"
    );
    // The name comes from storage: quoted and escaped, as in every other message.
    assert!(
        fails_error.message().starts_with("index \"fails\": "),
        "{fails_error:?}"
    );
    assert_eq!(get_index_kms(&storage, "fails").unwrap().version, 1);
    assert!(resolver
        .pending_rotation(&storage, "fails")
        .unwrap()
        .is_none());

    let kek = resolver.resolve(&storage, INDEX).unwrap();
    assert_ne!(kek, old_kek);
    assert_eq!(dek_under(&file, &kek), Some(DEK));
    let envelope = get_index_kms(&storage, INDEX).unwrap();
    assert_eq!(envelope.version, 2);
    assert!(envelope.key_id.ends_with("main-new.key"));
}

/// An envelope a store writer planted under slot `main`, wrapped by the writer's own key: drift
/// repair in new-KEK mode reports it `Failed` with `UntrustedKey`, never calls the engine for
/// it and never rotates it (that would launder the writer's KEK into the slot's key).
#[test]
fn drift_repair_in_new_kek_mode_never_rotates_an_envelope_under_an_untrusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let (resolver, storage) = local(dir.path());
    let attacker_dir = tempfile::tempdir().unwrap();
    let attacker = local_client();
    attacker
        .add_slot("main", local_slot(attacker_dir.path(), "evil", 9))
        .unwrap();
    let (planted, _) = attacker.wrap_new_kek("planted", "main").unwrap();
    push_index_kms(&storage, "planted", &planted).unwrap();
    let before = std::fs::read(dir.path().join("store").join("planted.kms")).unwrap();

    let report = resolver
        .check_drift_new_kek(&storage, |index, _, _| -> Result<(), String> {
            panic!("the engine was called for {index}")
        })
        .unwrap();
    assert_eq!(report.len(), 1);
    let (entry, callback_error) = &report[0];
    assert_eq!(entry.status, DriftStatus::Failed);
    assert_eq!(
        entry.error.as_ref().unwrap().kind(),
        ErrorKind::UntrustedKey
    );
    assert!(callback_error.is_none());
    assert_eq!(
        std::fs::read(dir.path().join("store").join("planted.kms")).unwrap(),
        before
    );
    assert!(resolver
        .pending_rotation(&storage, "planted")
        .unwrap()
        .is_none());
}

/// The same on moto: `aws-kms` slots and an S3 store. Slot `main` moves to the fixture's
/// other KMS key and trusts its old one; the drifted index gets a fresh KEK wrapped by the new
/// key, and the engine's DEK opens under it.
#[test]
fn drift_repair_in_new_kek_mode_on_moto_s3_and_kms() {
    let dir = tempfile::tempdir().unwrap();
    use_moto(dir.path());
    create_index(dir.path());
    let (resolver, storage) = local(dir.path());
    let old_kek = resolver.resolve(&storage, INDEX).unwrap();
    let config = std::fs::read_to_string(dir.path().join(MOTO_CONFIG)).unwrap();
    let [_, key_main, key_other, _]: [&str; 4] =
        config.lines().collect::<Vec<_>>().try_into().unwrap();
    let mut moved = aws_slot(Provider::AwsKms, key_other);
    moved.previous_keys.push(KeyIdentity {
        provider: Provider::AwsKms,
        key_id: key_main.to_owned(),
        region: REGION.to_owned(),
    });
    resolver.client().add_slot("main", moved).unwrap();

    let file = dek_file(dir.path());
    let report = resolver
        .check_drift_new_kek(&storage, |index, old, new| {
            assert_eq!(index, INDEX);
            engine_rewrap(&file, old, new)
        })
        .unwrap();
    assert_eq!(report.len(), 1);
    let (entry, callback_error) = &report[0];
    assert_eq!(entry.status, DriftStatus::Rewrapped, "{entry:?}");
    assert!(callback_error.is_none());
    let envelope = get_index_kms(&storage, INDEX).unwrap();
    assert_eq!((envelope.key_id.as_str(), envelope.version), (key_other, 2));
    // Resolved again through KMS (cache emptied), the index has the new KEK, and the engine's
    // DEK opens under it.
    resolver.invalidate_all();
    let kek = resolver.resolve(&storage, INDEX).unwrap();
    assert_ne!(kek, old_kek);
    engine_settle(&file, &kek);
    assert_eq!(dek_under(&file, &kek), Some(DEK));
    assert!(resolver
        .pending_rotation(&storage, INDEX)
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// moto: aws-kms → aws-kms and aws → aws-kms, memory and S3 stores

const REGION: &str = "us-east-1";

fn aws_slot(provider: Provider, key_id: &str) -> Slot {
    Slot {
        previous_keys: Vec::new(),
        replica_regions: Vec::new(),
        provider,
        key_id: key_id.to_owned(),
        region: REGION.to_owned(),
        assume_role: None,
    }
}

fn moto_resolver() -> KekResolver {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(moto().endpoint.clone()),
        ..KmsClientOptions::default()
    })
    .unwrap();
    KekResolver::new(client, KekCacheOptions::default()).unwrap()
}

fn moto_s3_store() -> StorageConfig {
    let bucket = unique("rotate");
    moto().create_bucket(&bucket);
    s3_store_at(&moto().endpoint, &bucket)
}

/// A store under prefix `ks` of `bucket` on the S3 endpoint `endpoint`.
fn s3_store_at(endpoint: &str, bucket: &str) -> StorageConfig {
    StorageConfig::s3(
        bucket,
        S3Options {
            prefix: "ks".into(),
            region: Some(REGION.into()),
            endpoint: Some(endpoint.to_owned()),
            credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
            ..S3Options::default()
        },
    )
    .unwrap()
}

/// Rotates `INDEX` from slot `from` to slot `to` on `storage`, checking commit and rollback.
fn rotate_on_moto(resolver: &KekResolver, storage: &StorageConfig, from: &str, to: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dek_file(dir.path());
    let old_kek = resolver
        .create_index(storage, INDEX, Some(from), None)
        .unwrap();
    write_entries(&file, &[seal(&old_kek, &DEK)]);
    let before = get_index_kms(storage, INDEX).unwrap();

    // A failing callback: rolled back.
    let err = resolver
        .rotate_kek(storage, INDEX, to, |_, _| Err("no"))
        .unwrap_err();
    assert!(matches!(err, RotateKekError::Callback("no")));
    assert_eq!(get_index_kms(storage, INDEX).unwrap(), before);
    assert!(resolver.pending_rotation(storage, INDEX).unwrap().is_none());

    // Two-phase, with a second begin refused while pending.
    let rotation = resolver.begin_rotation(storage, INDEX, to).unwrap();
    assert_eq!(*rotation.old_kek(), old_kek);
    let err = resolver.begin_rotation(storage, INDEX, to).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(resolver.resolve(storage, INDEX).unwrap(), old_kek);
    let found = resolver.pending_rotation(storage, INDEX).unwrap().unwrap();
    assert_eq!(found.new_kek(), rotation.new_kek());
    engine_rewrap(&file, found.old_kek(), found.new_kek()).unwrap();
    let new = resolver.commit_rotation(storage, &found).unwrap();
    assert_eq!(
        (new.kms_name.as_str(), new.version),
        (to, before.version + 1)
    );
    assert_eq!(new.provider, "aws-kms");
    let kek = resolver.resolve(storage, INDEX).unwrap();
    assert_eq!(kek, *rotation.new_kek());
    assert_ne!(kek, old_kek);
    engine_settle(&file, &kek);
    assert_eq!(dek_under(&file, &kek), Some(DEK));
    assert!(resolver.pending_rotation(storage, INDEX).unwrap().is_none());
}

#[test]
fn aws_kms_to_aws_kms_on_moto_memory_and_s3() {
    let resolver = moto_resolver();
    let key_a = moto().create_kms_key(REGION);
    let key_b = moto().create_kms_key(REGION);
    resolver
        .client()
        .add_slot("a", aws_slot(Provider::AwsKms, &key_a))
        .unwrap();
    resolver
        .client()
        .add_slot("b", aws_slot(Provider::AwsKms, &key_b))
        .unwrap();
    rotate_on_moto(&resolver, &StorageConfig::memory(), "a", "b");
    rotate_on_moto(&resolver, &moto_s3_store(), "a", "b");
}

#[test]
fn aws_secrets_manager_to_aws_kms_on_moto() {
    let resolver = moto_resolver();
    let secret = moto().create_binary_secret(REGION, &unique("rotate/kek"), &[4u8; 32]);
    let key = moto().create_kms_key(REGION);
    resolver
        .client()
        .add_slot("sm", aws_slot(Provider::Aws, &secret))
        .unwrap();
    resolver
        .client()
        .add_slot("kms", aws_slot(Provider::AwsKms, &key))
        .unwrap();
    rotate_on_moto(&resolver, &StorageConfig::memory(), "sm", "kms");
}

#[test]
fn a_corrupt_record_on_s3_is_corrupt_and_changes_nothing() {
    let resolver = moto_resolver();
    let key = moto().create_kms_key(REGION);
    resolver
        .client()
        .add_slot("k", aws_slot(Provider::AwsKms, &key))
        .unwrap();
    let storage = moto_s3_store();
    resolver
        .create_index(&storage, INDEX, Some("k"), None)
        .unwrap();
    let rotation = resolver.begin_rotation(&storage, INDEX, "k").unwrap();
    assert_eq!(list_index_kms(&storage).unwrap(), [INDEX]);
    let before = get_index_kms(&storage, INDEX).unwrap();
    // The bucket name is in the store's Debug form: s3://<bucket>/ks/.
    let described = format!("{storage:?}");
    let bucket = described
        .trim_start_matches("StorageConfig(s3://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    moto().put_object(&bucket, "ks/orders.rot", &vec![0u8; 64 * 1024 + 1]);
    let err = resolver.pending_rotation(&storage, INDEX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    let err = resolver.commit_rotation(&storage, &rotation).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert_eq!(get_index_kms(&storage, INDEX).unwrap(), before);
    assert_eq!(
        resolver.resolve(&storage, INDEX).unwrap(),
        *rotation.old_kek()
    );
}
