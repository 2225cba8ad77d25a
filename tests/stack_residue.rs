//! Key residue on thread stacks (issue #10, finding 10): after a wrap and an unwrap through the
//! `aws` provider (Secrets Manager on moto: SecretBinary and base64 SecretString), the `local`
//! provider (`file:` and `env:`) and the offline `kms::aead` functions, with every key, KEK and
//! client dropped, no copy of the 32-byte wrap key or of the KEK is left on the calling thread's
//! stack, nor in the dead frames of the threads the client started.
//!
//! How it measures. Each operation runs on a dedicated thread with an 8 MiB stack whose bounds
//! come from `pthread_getattr_np`; afterwards, still on that thread, the whole stack mapping is
//! read with volatile byte loads and every occurrence of each 32-byte needle counted. The needles
//! are random per run and live only on the heap; test setup that handles a key (creating a secret,
//! writing the key file, setting the variable) runs on the test's own thread, never a scanned
//! one. Threads that appeared after the baseline (the client's tokio workers and blocking
//! threads) are scanned from the low end of the mapping holding their stack pointer up to that
//! pointer (read from `/proc/self/task/<tid>/syscall` while they are parked): their dead frames;
//! their live frames are not scanned, and a thread not parked in a system call at that moment is
//! reported as unmeasured. The operation's stack footprint (deepest byte written below the
//! caller, wipes included) is measured by painting the stack first.
//!
//! Run with `-- --nocapture` to see the table; `--release` measures the optimized build.

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::{Duration, Instant};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use common::moto::{moto, unique};
use cyborgdb_kms::kms::aead::{self, WrapKey};
use cyborgdb_kms::{
    ErrorKind, KekCacheOptions, KekResolver, KmsClient, KmsClientOptions, Provider, Slot,
    StorageConfig,
};

const REGION: &str = "us-east-1";
const KEY_LEN: usize = 32;
const ENV_KEY_VARIABLE: &str = "CYB_STACK_RESIDUE_MASTER_KEY";
/// Stack size of the scanned calling threads.
const CALLER_STACK: usize = 8 << 20;
/// How far below the caller's frame the stack is painted to measure an operation's footprint.
const PAINTED: usize = 1 << 20;
/// Room left unpainted right below the caller's frame for the painting code's own frames.
const PAINT_GAP: usize = 16 << 10;
const PAINT: u8 = 0xA5;
/// Every thread this test starts has a name with this prefix; none is counted as the library's.
const OWN_THREAD_PREFIX: &str = "residue-";

/// A fresh random 32-byte value, on the heap only.
fn random_key() -> Vec<u8> {
    let mut key = vec![0u8; KEY_LEN];
    OsRng.fill_bytes(&mut key);
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The calling thread's whole stack mapping (guard page excluded), from `pthread_getattr_np`.
fn own_stack() -> Range<usize> {
    // SAFETY: `attr` is initialized by pthread_getattr_np before use and destroyed after; the
    // out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut low: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        assert_eq!(libc::pthread_attr_getstack(&attr, &mut low, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        low as usize..low as usize + size
    }
}

/// How many times `needle` occurs in `region`, read with volatile byte loads (so the compiler
/// neither skips nor copies the scanned bytes).
///
/// SAFETY (caller): `region` is mapped readable for the whole call.
#[inline(never)]
unsafe fn count_in(region: &Range<usize>, needle: &[u8]) -> usize {
    let mut found = 0;
    let mut at = region.start;
    while at + needle.len() <= region.end {
        let mut matched = 0;
        while matched < needle.len()
            && std::ptr::read_volatile((at + matched) as *const u8) == needle[matched]
        {
            matched += 1;
        }
        if matched == needle.len() {
            found += 1;
        }
        at += 1;
    }
    found
}

/// An address inside the caller's frame.
#[inline(always)]
fn frame_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Fills `region` (dead stack below the caller) with [`PAINT`].
///
/// SAFETY (caller): `region` is unused stack of this thread, below this call's own frames.
#[inline(never)]
unsafe fn paint(region: &Range<usize>) {
    for at in region.clone() {
        std::ptr::write_volatile(at as *mut u8, PAINT);
    }
}

/// Bytes between `region.end` and the lowest byte of `region` that is no longer [`PAINT`].
///
/// SAFETY (caller): as [`count_in`].
#[inline(never)]
unsafe fn painted_depth_used(region: &Range<usize>) -> usize {
    let lowest = region
        .clone()
        .find(|&at| std::ptr::read_volatile(at as *const u8) != PAINT)
        .unwrap_or(region.end);
    region.end - lowest
}

/// Thread ids of this process.
fn thread_ids() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect()
}

fn thread_name(tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The dead part of thread `tid`'s stack: from the low end of the mapping holding its stack
/// pointer up to that pointer. `None` when the thread is not parked in a system call (its stack
/// pointer is then unknown) or is gone.
fn parked_thread_dead_stack(tid: i32) -> Option<Range<usize>> {
    let syscall = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let fields: Vec<&str> = syscall.split_whitespace().collect();
    // "<nr> <6 args> <sp> <pc>" while in a system call; "running" or "-1 <sp> <pc>" otherwise.
    if fields.len() != 9 {
        return None;
    }
    let sp = usize::from_str_radix(fields[7].trim_start_matches("0x"), 16).ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let (range, rest) = line.split_once(' ')?;
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (start <= sp && sp < end && rest.starts_with("rw")).then_some(start..sp)
    })
}

/// Copies of (wrap key, KEK) in a thread's dead frames; `None`: the thread was not measured.
type Counts = Option<(usize, usize)>;

/// What one wrap + unwrap left behind.
struct Residue {
    label: &'static str,
    calling_thread: (usize, usize),
    /// Deepest stack byte written below the caller's frame (wipes included).
    footprint: usize,
    /// (thread name, tid, counts) for every thread that appeared since the baseline.
    other_threads: Vec<(String, i32, Counts)>,
}

/// Runs `operation` (a wrap + unwrap under `wrap_key` that drops everything and returns the
/// KEK's bytes, heap only) on a dedicated thread, then counts copies of `wrap_key` and of the
/// KEK on that thread's stack and in the dead frames of every thread not in `baseline`.
fn measure(
    label: &'static str,
    wrap_key: &[u8],
    baseline: &BTreeSet<i32>,
    operation: impl FnOnce() -> Vec<u8> + Send,
) -> Residue {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(format!("{OWN_THREAD_PREFIX}caller"))
            .stack_size(CALLER_STACK)
            .spawn_scoped(scope, || {
                let stack = own_stack();
                let frame = frame_address();
                let painted = frame - PAINTED..frame - PAINT_GAP;
                // SAFETY: below this frame by more than the painting code's own frames, and
                // inside the 8 MiB stack.
                unsafe { paint(&painted) };
                let kek = operation();
                // SAFETY: this thread's own stack is mapped while it runs.
                let (calling_thread, footprint) = unsafe {
                    (
                        (count_in(&stack, wrap_key), count_in(&stack, &kek)),
                        painted_depth_used(&painted) + PAINT_GAP,
                    )
                };
                let other_threads = thread_ids()
                    .difference(baseline)
                    .map(|&tid| (thread_name(tid), tid))
                    .filter(|(name, _)| !name.starts_with(OWN_THREAD_PREFIX))
                    .map(|(name, tid)| {
                        // SAFETY: the other new threads are the client's runtime threads, parked;
                        // their stacks stay mapped while the client lives, i.e. until after
                        // `measure` returns.
                        let counts = parked_thread_dead_stack(tid).map(|dead| unsafe {
                            (count_in(&dead, wrap_key), count_in(&dead, &kek))
                        });
                        (name, tid, counts)
                    })
                    .collect();
                Residue {
                    label,
                    calling_thread,
                    footprint,
                    other_threads,
                }
            })
            .unwrap()
            .join()
            .unwrap()
    })
}

/// A KMS client for moto with one slot, `slot`.
fn client_with(slot: Slot) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(moto().endpoint.clone()),
        // Two of the cases wrap under `local` master keys.
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap();
    client.add_slot("slot", slot).unwrap();
    client
}

/// Wraps a fresh KEK through `client`'s slot and unwraps it again, dropping everything; returns
/// the KEK's bytes (heap only).
#[inline(never)]
fn client_round_trip(client: &KmsClient) -> Vec<u8> {
    let (blob, kek) = client.wrap_new_kek("residue", "slot").unwrap();
    let unwrapped = client.unwrap_kek("residue", &blob).unwrap();
    assert!(unwrapped == kek, "the unwrapped KEK differs");
    // A failed unwrap (another index's envelope) wipes too.
    let failed = client.unwrap_kek("another", &blob).map(drop).unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::DecryptFailed);
    kek.as_bytes().to_vec()
}

/// Creates an index through `client`'s slot with a fresh resolver on `storage`, resolves it
/// (a miss, then hits: cached KEKs are cloned out), drops everything; returns the KEK's bytes.
#[inline(never)]
fn resolver_round_trip(client: &KmsClient, storage: &StorageConfig) -> Vec<u8> {
    let resolver = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    let kek = resolver
        .create_index(storage, "residue", Some("slot"), None)
        .unwrap();
    for _ in 0..3 {
        assert!(resolver.resolve(storage, "residue").unwrap() == kek);
    }
    assert_eq!(resolver.stats().hits, 2);
    kek.as_bytes().to_vec()
}

/// [`client_round_trip`] through the offline `kms::aead` functions.
#[inline(never)]
fn aead_round_trip(wrap_key: &[u8]) -> Vec<u8> {
    let key = WrapKey::from_slice(wrap_key, "test key").unwrap();
    let kek = cyborgdb_kms::Kek::generate();
    let wrapped = aead::wrap(&key, b"associated data", &kek);
    let unwrapped = aead::unwrap(&key, b"associated data", &wrapped).unwrap();
    assert!(unwrapped == kek, "the unwrapped KEK differs");
    let failed = aead::unwrap(&key, b"other data", &wrapped).unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::DecryptFailed);
    kek.as_bytes().to_vec()
}

/// Leaves one copy of `needle` in a dead frame of the calling thread, 4 KiB below the caller
/// (library residue lies deeper still; the scan's own frames overwrite less than that).
#[inline(never)]
fn leave_a_copy_in_a_dead_frame(needle: &[u8]) {
    let padding = [0u8; 4096];
    std::hint::black_box(&padding);
    copy_onto_the_stack(needle);
}

#[inline(never)]
fn copy_onto_the_stack(needle: &[u8]) {
    let mut copy = [0u8; KEY_LEN];
    copy.copy_from_slice(needle);
    std::hint::black_box(&copy);
}

/// The scanner itself: a copy left in a dead frame is found on the calling thread and on a
/// parked thread (so the zero counts below are not an artefact of where it looks).
fn scanner_finds_a_planted_copy() {
    let needle = random_key();
    let own = measure("planted", &needle, &thread_ids(), || {
        leave_a_copy_in_a_dead_frame(&needle);
        Vec::new()
    });
    assert!(own.calling_thread.0 >= 1, "planted copy not found");

    let needle = &needle;
    let (parked_tx, parked_rx) = std::sync::mpsc::channel::<()>();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(format!("{OWN_THREAD_PREFIX}parked"))
            .spawn_scoped(scope, move || {
                leave_a_copy_in_a_dead_frame(needle);
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                parked_rx.recv().unwrap();
            })
            .unwrap();
        let tid = tid_rx.recv().unwrap();
        // The thread is about to block in recv; wait (bounded) until it is seen in the syscall.
        let deadline = Instant::now() + Duration::from_secs(10);
        let dead = loop {
            if let Some(dead) = parked_thread_dead_stack(tid) {
                break dead;
            }
            assert!(Instant::now() < deadline, "thread {tid} never parked");
            std::thread::yield_now();
        };
        // SAFETY: the thread is blocked in recv until `parked_tx` is used below.
        let found = unsafe { count_in(&dead, needle) };
        parked_tx.send(()).unwrap();
        assert!(found >= 1, "planted copy not found on the parked thread");
    });
}

#[test]
fn no_copy_of_a_wrap_key_or_kek_stays_on_a_stack_after_wrap_and_unwrap() {
    scanner_finds_a_planted_copy();

    let moto = moto();
    let binary_key = random_key();
    let binary_secret = unique("residue/binary");
    moto.create_binary_secret(REGION, &binary_secret, &binary_key);
    let string_key = random_key();
    let string_secret = unique("residue/string");
    moto.create_string_secret(
        REGION,
        &string_secret,
        &aws_smithy_types::base64::encode(&string_key),
    );
    let dir = tempfile::tempdir().unwrap();
    let file_key = random_key();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, &file_key).unwrap();
    let env_key = random_key();
    std::env::set_var(ENV_KEY_VARIABLE, hex(&env_key));
    let aead_key = random_key();
    let resolver_key = random_key();
    let resolver_key_file = dir.path().join("resolver.key");
    std::fs::write(&resolver_key_file, &resolver_key).unwrap();
    let storage = StorageConfig::disk(dir.path().join("store")).unwrap();

    let slot = |provider, key_id: String, region: &str| Slot::new(provider, key_id, region);
    let cases = [
        (
            "aws (SecretBinary)",
            slot(Provider::Aws, binary_secret, REGION),
            &binary_key,
        ),
        (
            "aws (SecretString, base64)",
            slot(Provider::Aws, string_secret, REGION),
            &string_key,
        ),
        (
            "local (file:)",
            slot(Provider::Local, format!("file:{}", key_file.display()), ""),
            &file_key,
        ),
        (
            "local (env:)",
            slot(Provider::Local, format!("env:{ENV_KEY_VARIABLE}"), ""),
            &env_key,
        ),
    ];
    // Threads before any client exists: the test's own and the setup runtime's (which handled
    // the keys while creating the secrets) are not the library's.
    let baseline = thread_ids();
    let mut residues: Vec<Residue> = cases
        .into_iter()
        .map(|(label, slot, wrap_key)| {
            let client = client_with(slot);
            let residue = measure(label, wrap_key, &baseline, || client_round_trip(&client));
            drop(client);
            residue
        })
        .collect();
    residues.push(measure(
        "kms::aead wrap/unwrap",
        &aead_key,
        &baseline,
        || aead_round_trip(&aead_key),
    ));
    let client = client_with(slot(
        Provider::Local,
        format!("file:{}", resolver_key_file.display()),
        "",
    ));
    residues.push(measure(
        "resolver (local, miss + hits)",
        &resolver_key,
        &baseline,
        || resolver_round_trip(&client, &storage),
    ));
    drop(client);

    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!("copies left on thread stacks after wrap + unwrap ({profile} build): wrap key / KEK");
    for r in &residues {
        eprintln!(
            "  {:<30} calling thread: {} / {}   (stack footprint {} KiB)",
            r.label,
            r.calling_thread.0,
            r.calling_thread.1,
            r.footprint.div_ceil(1024)
        );
        for (name, tid, counts) in &r.other_threads {
            match counts {
                Some((wrap_key, kek)) => eprintln!(
                    "  {:<30} thread {name} ({tid}), dead frames: {wrap_key} / {kek}",
                    ""
                ),
                None => eprintln!("  {:<30} thread {name} ({tid}): not parked, unmeasured", ""),
            }
        }
    }
    for r in &residues {
        assert_eq!(
            r.calling_thread,
            (0, 0),
            "{}: wrap key / KEK copies on the calling thread's stack",
            r.label
        );
        for (name, tid, counts) in &r.other_threads {
            if let Some(counts) = counts {
                assert_eq!(
                    *counts,
                    (0, 0),
                    "{}: wrap key / KEK copies on thread {name} ({tid})",
                    r.label
                );
            }
        }
    }
}
