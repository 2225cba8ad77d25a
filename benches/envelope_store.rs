//! Envelope store benchmarks (issue #2): our operations against the plainest code that does the
//! same I/O, measured in the same run, interleaved in alternating blocks so drift (frequency
//! scaling, noisy neighbours, page-cache or journal state) hits both sides alike.
//!
//! Run: `cargo bench --bench envelope_store`. Prints machine facts and a markdown table.
//!
//! - Disk get (warm page cache) vs `std::fs::read` of the same envelope file; also via the C ABI.
//!   Budget: ≤ 1.3× the plain read.
//! - Disk push vs a plain durable write of the same bytes (temp file in the same directory,
//!   write, fsync, rename over the envelope, fsync the directory). Budget: ≤ 1.15×.
//! - Memory get, Rust API and C ABI. Budget: ≤ 1 µs.
//!
//! Data lives in `target/bench-data` (the repository's file system, not a tmpfs).
//!
//! Environment knobs:
//! - `ENVELOPE_BENCH_SCALE=<float>` multiplies every iteration count (default 1).
//! - `ENVELOPE_BENCH_PROFILE=<op>` runs only `<op>` in a loop, for `perf` / `strace -c`, then
//!   exits; `<op>` is one of `disk-get`, `plain-read`, `c-disk-get`, `disk-push`, `plain-write`,
//!   `memory-get`, `c-memory-get`. `ENVELOPE_BENCH_PROFILE_ITERS=<n>` sets the loop count.

use std::ffi::{c_char, CStr};
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/stats.rs"]
mod stats;

use stats::{format_ns, Stats};

use cyborgdb_kms::ffi::{self, cyb_kms_blob, cyb_result, cyb_storage_config};
use cyborgdb_kms::{get_index_kms, push_index_kms, KmsBlob, StorageConfig};

const INDEX: &str = "bench";

fn main() {
    let scale: f64 = std::env::var("ENVELOPE_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let _ = fs::remove_dir_all(&data);
    fs::create_dir_all(&data).expect("create target/bench-data");

    if let Ok(op) = std::env::var("ENVELOPE_BENCH_PROFILE") {
        let iters = std::env::var("ENVELOPE_BENCH_PROFILE_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000u64);
        profile(&op, iters, &data);
        let _ = fs::remove_dir_all(&data);
        return;
    }

    let facts = MachineFacts::collect(&data);
    facts.print();
    let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(1);

    let mut rows = Vec::new();
    disk_get(&data, &mut rows, scaled(1500));
    disk_push(&data, &mut rows, scaled(200));
    memory_get(&mut rows, scaled(500));

    println!();
    print_table(&rows);
    let _ = fs::remove_dir_all(&data);
}

// ---------------------------------------------------------------------------------------------
// The envelope and the operations under test.

/// A realistic aws-kms envelope (shared with the tests): a full key ARN and a 184-byte wrapped KEK
/// (a KMS ciphertext of a 32-byte key). `created_at` is fixed so every push writes identical bytes.
fn envelope() -> KmsBlob {
    common::aws_kms_blob(1)
}

/// A Disk store under `root` holding the bench envelope, with the envelope file's path and bytes.
struct DiskFixture {
    root: PathBuf,
    config: StorageConfig,
    blob: KmsBlob,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl DiskFixture {
    fn new(root: PathBuf) -> Self {
        let config = StorageConfig::disk(&root).unwrap();
        let blob = envelope();
        push_index_kms(&config, INDEX, &blob).unwrap();
        let path = root.join(format!("{INDEX}.kms"));
        // The exact bytes a push writes (created_at is fixed, so every push writes these).
        let bytes = fs::read(&path).unwrap();
        DiskFixture {
            root,
            config,
            blob,
            path,
            bytes,
        }
    }
}

fn check(code: cyb_result, what: &str) {
    if code != cyb_result::CYB_RESULT_OK {
        let message = unsafe { CStr::from_ptr(ffi::cyb_last_error_message()) };
        panic!("{what}: {code:?}: {}", message.to_string_lossy());
    }
}

/// A C ABI store handle, freed on drop.
struct CConfig(*mut cyb_storage_config);

impl CConfig {
    fn disk(root: &Path) -> Self {
        let path = root.as_os_str().as_encoded_bytes();
        let mut config = std::ptr::null_mut();
        check(
            unsafe {
                ffi::cyb_storage_config_new_disk(path.as_ptr().cast(), path.len(), &mut config)
            },
            "cyb_storage_config_new_disk",
        );
        CConfig(config)
    }

    fn memory() -> Self {
        let mut config = std::ptr::null_mut();
        check(
            unsafe { ffi::cyb_storage_config_new_memory(&mut config) },
            "cyb_storage_config_new_memory",
        );
        CConfig(config)
    }

    /// Pushes `blob` through the C ABI (setters, then `cyb_index_kms_push`).
    fn push(&self, blob: &KmsBlob) {
        unsafe {
            let mut handle: *mut cyb_kms_blob = std::ptr::null_mut();
            check(ffi::cyb_kms_blob_new(&mut handle), "cyb_kms_blob_new");
            type Setter =
                unsafe extern "C" fn(*mut cyb_kms_blob, *const c_char, usize) -> cyb_result;
            let strings: [(Setter, &str); 4] = [
                (ffi::cyb_kms_blob_set_kms_name, &blob.kms_name),
                (ffi::cyb_kms_blob_set_provider, &blob.provider),
                (ffi::cyb_kms_blob_set_key_id, &blob.key_id),
                (ffi::cyb_kms_blob_set_region, &blob.region),
            ];
            for (set, value) in strings {
                check(set(handle, value.as_ptr().cast(), value.len()), "set field");
            }
            let kek = &blob.wrapped_kek;
            check(
                ffi::cyb_kms_blob_set_wrapped_kek(handle, kek.as_ptr(), kek.len()),
                "set wrapped_kek",
            );
            check(
                ffi::cyb_kms_blob_set_version(handle, blob.version),
                "set version",
            );
            check(
                ffi::cyb_kms_blob_set_created_at(handle, blob.created_at),
                "set created_at",
            );
            check(
                ffi::cyb_index_kms_push(self.0, INDEX.as_ptr().cast(), INDEX.len(), handle),
                "cyb_index_kms_push",
            );
            ffi::cyb_kms_blob_free(handle);
        }
    }

    /// One `cyb_index_kms_get` + `cyb_kms_blob_free`, as a C caller does it.
    #[inline]
    fn get(&self) {
        unsafe {
            let mut out: *mut cyb_kms_blob = std::ptr::null_mut();
            let code = ffi::cyb_index_kms_get(
                black_box(self.0),
                black_box(INDEX).as_ptr().cast(),
                INDEX.len(),
                &mut out,
            );
            assert_eq!(code, cyb_result::CYB_RESULT_OK);
            black_box(ffi::cyb_kms_blob_version(black_box(out)));
            ffi::cyb_kms_blob_free(out);
        }
    }
}

impl Drop for CConfig {
    fn drop(&mut self) {
        unsafe { ffi::cyb_storage_config_free(self.0) }
    }
}

fn rust_get(config: &StorageConfig) {
    let blob = get_index_kms(black_box(config), black_box(INDEX)).expect("get_index_kms");
    black_box(&blob);
}

fn plain_read(path: &Path) {
    let bytes = fs::read(black_box(path)).expect("plain read");
    black_box(&bytes);
}

fn rust_push(config: &StorageConfig, blob: &KmsBlob) {
    push_index_kms(black_box(config), black_box(INDEX), black_box(blob)).expect("push_index_kms");
}

/// The plainest durable replace of `target` with `bytes`: write a temp file in the same
/// directory, fsync it, close it, rename it over `target`, fsync the directory.
fn plain_durable_write(dir: &Path, temp: &Path, target: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .expect("create plain temp");
    file.write_all(black_box(bytes)).expect("write plain temp");
    file.sync_all().expect("fsync plain temp");
    drop(file);
    fs::rename(temp, target).expect("rename plain temp");
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

// ---------------------------------------------------------------------------------------------
// The measurements.

/// One line of the result table.
struct Row {
    operation: String,
    stats: Stats,
    /// Ratio of medians against the named baseline row.
    ratio: Option<(f64, &'static str)>,
    budget: Budget,
}

enum Budget {
    None,
    /// Ratio of medians against the baseline at most this.
    Ratio(f64),
    /// Median at most this many nanoseconds.
    AbsoluteNs(f64),
}

fn disk_get(data: &Path, rows: &mut Vec<Row>, blocks: usize) {
    let DiskFixture {
        root, config, path, ..
    } = DiskFixture::new(data.join("get"));
    let c_config = CConfig::disk(&root);
    // The same envelope read three ways; check they agree before timing.
    assert_eq!(get_index_kms(&config, INDEX).unwrap(), envelope());
    eprintln!(
        "disk get: envelope file {} ({} bytes)",
        path.display(),
        fs::metadata(&path).unwrap().len()
    );

    // 20 ops per timed sample (a few µs each: timer cost is noise), 8 samples per block.
    let mut ops: [Op<'_>; 3] = [
        ("Disk get_index_kms (Rust)", Box::new(|| rust_get(&config))),
        ("plain std::fs::read", Box::new(|| plain_read(&path))),
        (
            "Disk cyb_index_kms_get + free (C ABI)",
            Box::new(|| c_config.get()),
        ),
    ];
    let stats = interleave(&mut ops, blocks, 8, 20, 2_000);
    let [get, plain, c_get] = stats;
    let base = plain.median;
    rows.push(Row {
        operation: "Disk `get_index_kms`, warm cache".into(),
        ratio: Some((get.median / base, "plain read")),
        stats: get,
        budget: Budget::Ratio(1.3),
    });
    rows.push(Row {
        operation: "Disk `cyb_index_kms_get` + `cyb_kms_blob_free` (C ABI)".into(),
        ratio: Some((c_get.median / base, "plain read")),
        stats: c_get,
        budget: Budget::Ratio(1.3),
    });
    rows.push(Row {
        operation: "baseline: `std::fs::read` of the same file".into(),
        stats: plain,
        ratio: None,
        budget: Budget::None,
    });
}

fn disk_push(data: &Path, rows: &mut Vec<Row>, blocks: usize) {
    let DiskFixture {
        root,
        config,
        blob,
        path: target,
        bytes,
    } = DiskFixture::new(data.join("push"));
    let temp = root.join(".plain-bench.tmp");
    eprintln!(
        "disk push: {} ({} bytes), {} blocks",
        target.display(),
        bytes.len(),
        blocks
    );

    // One op per sample (milliseconds each), 5 samples per block: ABAB... in small blocks.
    let mut ops: [Op<'_>; 2] = [
        (
            "Disk push_index_kms",
            Box::new(|| rust_push(&config, &blob)),
        ),
        (
            "plain durable write",
            Box::new(|| plain_durable_write(&root, &temp, &target, &bytes)),
        ),
    ];
    let [push, plain] = interleave(&mut ops, blocks, 5, 1, 20);
    assert_eq!(fs::read(&target).unwrap(), bytes);
    let base = plain.median;
    rows.push(Row {
        operation: "Disk `push_index_kms` (durable replace)".into(),
        ratio: Some((push.median / base, "plain durable write")),
        stats: push,
        budget: Budget::Ratio(1.15),
    });
    rows.push(Row {
        operation: "baseline: temp write + fsync + rename + dir fsync".into(),
        stats: plain,
        ratio: None,
        budget: Budget::None,
    });
}

fn memory_get(rows: &mut Vec<Row>, blocks: usize) {
    let config = StorageConfig::memory();
    push_index_kms(&config, INDEX, &envelope()).unwrap();
    let c_config = CConfig::memory();
    c_config.push(&envelope());

    // 200 ops per timed sample (sub-µs each), 10 samples per block.
    let mut ops: [Op<'_>; 2] = [
        ("Memory get_index_kms", Box::new(|| rust_get(&config))),
        ("Memory cyb_index_kms_get", Box::new(|| c_config.get())),
    ];
    let [get, c_get] = interleave(&mut ops, blocks, 10, 200, 20_000);
    rows.push(Row {
        operation: "Memory `get_index_kms`".into(),
        stats: get,
        ratio: None,
        budget: Budget::AbsoluteNs(1_000.0),
    });
    rows.push(Row {
        operation: "Memory `cyb_index_kms_get` + `cyb_kms_blob_free` (C ABI)".into(),
        stats: c_get,
        ratio: None,
        budget: Budget::AbsoluteNs(1_000.0),
    });
}

/// A named operation under test.
type Op<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Runs `warmup` untimed ops of each, then `blocks` blocks; in each block every op takes
/// `samples_per_block` samples in turn, the starting op rotating from block to block. A sample
/// times `ops_per_sample` back-to-back calls and records the mean per call, in nanoseconds.
fn interleave<const N: usize>(
    ops: &mut [Op<'_>; N],
    blocks: usize,
    samples_per_block: usize,
    ops_per_sample: usize,
    warmup: usize,
) -> [Stats; N] {
    for (_, op) in ops.iter_mut() {
        for _ in 0..warmup {
            op();
        }
    }
    let mut samples: [Vec<f64>; N] =
        std::array::from_fn(|_| Vec::with_capacity(blocks * samples_per_block));
    let started = Instant::now();
    for block in 0..blocks {
        for turn in 0..N {
            let which = (block + turn) % N;
            let op = &mut ops[which].1;
            for _ in 0..samples_per_block {
                let start = Instant::now();
                for _ in 0..ops_per_sample {
                    op();
                }
                let ns = start.elapsed().as_nanos() as f64;
                samples[which].push(ns / ops_per_sample as f64);
            }
        }
    }
    let names: Vec<&str> = ops.iter().map(|(name, _)| *name).collect();
    eprintln!(
        "  {} interleaved: {:.1} s",
        names.join(" / "),
        started.elapsed().as_secs_f64()
    );
    samples.map(|s| Stats::of(s, ops_per_sample))
}

// ---------------------------------------------------------------------------------------------
// Profiling mode: one op in a loop, nothing else, so `strace -c` / `perf` see only it.

fn profile(op: &str, iters: u64, data: &Path) {
    let DiskFixture {
        root,
        config,
        blob,
        path,
        bytes,
    } = DiskFixture::new(data.join("profile"));
    let temp = root.join(".plain-bench.tmp");
    let memory = StorageConfig::memory();
    push_index_kms(&memory, INDEX, &blob).unwrap();
    let c_disk = CConfig::disk(&root);
    let c_memory = CConfig::memory();
    c_memory.push(&blob);
    let mut run: Box<dyn FnMut() + '_> = match op {
        "disk-get" => Box::new(|| rust_get(&config)),
        "plain-read" => Box::new(|| plain_read(&path)),
        "c-disk-get" => Box::new(|| c_disk.get()),
        "disk-push" => Box::new(|| rust_push(&config, &blob)),
        "plain-write" => Box::new(|| plain_durable_write(&root, &temp, &path, &bytes)),
        "memory-get" => Box::new(|| rust_get(&memory)),
        "c-memory-get" => Box::new(|| c_memory.get()),
        other => panic!("unknown ENVELOPE_BENCH_PROFILE op {other:?}"),
    };
    eprintln!(
        "profiling {op}: {iters} iterations (pid {})",
        std::process::id()
    );
    let start = Instant::now();
    for _ in 0..iters {
        run();
    }
    let per_op = start.elapsed().as_nanos() as f64 / iters as f64;
    eprintln!("profiling {op}: mean {}", format_ns(per_op));
}

// ---------------------------------------------------------------------------------------------
// Reporting.

struct MachineFacts {
    nproc: usize,
    cpu: String,
    kernel: String,
    data_dir: PathBuf,
    fs_type: String,
    mount: String,
    tmp_fs_type: String,
    clocksource: String,
    rustc: String,
}

impl MachineFacts {
    fn collect(data: &Path) -> Self {
        let read = |path: &str| {
            fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into())
        };
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let findmnt = |path: &Path| {
            std::process::Command::new("findmnt")
                .args(["-n", "-o", "FSTYPE,SOURCE,TARGET", "-T"])
                .arg(path)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let mount = findmnt(data).unwrap_or_else(|| "unknown (findmnt failed)".into());
        let fs_type = mount
            .split_whitespace()
            .next()
            .map(str::to_owned)
            .filter(|t| !t.starts_with("unknown"))
            .unwrap_or_else(|| statfs_type(data));
        let tmp_fs_type = findmnt(Path::new("/tmp"))
            .and_then(|m| m.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| statfs_type(Path::new("/tmp")));
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        MachineFacts {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease"),
            data_dir: data.to_path_buf(),
            fs_type,
            mount,
            tmp_fs_type,
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            rustc,
        }
    }

    fn print(&self) {
        println!("## Machine");
        println!();
        println!("- nproc: {}", self.nproc);
        println!("- CPU: {}", self.cpu);
        println!("- kernel: Linux {}", self.kernel);
        println!(
            "- data dir: `{}` on **{}** (`{}`); /tmp is {}",
            self.data_dir.display(),
            self.fs_type,
            self.mount,
            self.tmp_fs_type
        );
        println!("- clocksource: {}", self.clocksource);
        println!("- {}, profile `bench` (= release)", self.rustc);
    }
}

/// The file-system type of `path` from statfs(2), for when findmnt is missing.
fn statfs_type(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as u64 {
        0xEF53 => "ext4 (ext2/3/4 magic)".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("statfs magic {other:#x}"),
    }
}

fn print_table(rows: &[Row]) {
    println!("## Results");
    println!();
    println!(
        "| operation | median | p10 | p90 | iterations | ratio vs baseline (medians) | budget | within budget |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---|");
    for row in rows {
        let s = &row.stats;
        let ratio = match row.ratio {
            Some((r, base)) => format!("{r:.3}× {base}"),
            None => "—".into(),
        };
        let (budget, verdict) = match row.budget {
            Budget::None => ("—".to_owned(), "—"),
            Budget::Ratio(max) => {
                let r = row.ratio.map_or(f64::INFINITY, |(r, _)| r);
                (format!("≤ {max}×"), if r <= max { "yes" } else { "**no**" })
            }
            Budget::AbsoluteNs(max) => (
                format!("≤ {}", format_ns(max)),
                if s.median <= max { "yes" } else { "**no**" },
            ),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.operation,
            format_ns(s.median),
            format_ns(s.p10),
            format_ns(s.p90),
            s.iterations,
            ratio,
            budget,
            verdict
        );
    }
}
