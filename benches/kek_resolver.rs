//! KEK resolver benchmarks (issue #4). moto runs on 127.0.0.1 (never real AWS).
//!
//! Run: `cargo bench --bench kek_resolver` (needs `.venv-moto`: `scripts/bootstrap-moto.sh`).
//!
//! 1. Cache-hit resolve through the C ABI (`cyb_kek_resolve` into a caller buffer), one thread.
//!    Budget: ≤ 150 ns median. The hit path touches no storage: the store is a disk directory
//!    that this harness deletes after warming, and the hit count is checked afterwards.
//! 2. The same with two threads, on one index and on two: throughput vs one thread, paired with
//!    the one-thread run in 7 rounds (median ratio), next to a pure-compute control that shows
//!    the VM's own 1 → 2 thread scaling in the same rounds. Budget ≥ 1.7×.
//! 3. 64 threads miss at once on one cold aws-kms index (moto): provider calls, expected 1.
//! 4. Warm-up of 500 aws-kms indexes: `warm_up` with 4 / 16 / 64 threads vs resolving one by one,
//!    each with a fresh resolver. Against moto (whose single Python process is the bottleneck:
//!    ~3.5 ms of CPU per Decrypt under the GIL, so parallel requests queue), and against the
//!    loopback fault peer answering each Decrypt after 20 ms — the round trip of a real KMS
//!    region, where the requests really overlap. Reports the speed-ups.
//!
//! 5. Logging on the hit path: the same hits with no log callback and with one installed at
//!    `Trace`, in paired rounds (a hit has no event site; with no callback every event site on
//!    the other paths costs one atomic load).
//!
//! Knobs: `KEK_BENCH_SCALE=<float>` multiplies iteration counts (default 1);
//! `KEK_BENCH_HITS_ONLY=1` runs only the cache-hit measurements (1, 2 and 5; no moto).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/stats.rs"]
mod stats;

use common::fault_peer::{FaultPeer, Reply};
use cyborgdb_kms::ffi::{cyb_kek_resolve, cyb_kek_resolver, cyb_result, cyb_storage_config};
use cyborgdb_kms::{
    KekCacheOptions, KekResolver, KmsClient, KmsClientOptions, Provider, Slot, StorageConfig,
};
use stats::{format_ns, Stats};

fn main() {
    let scale: f64 = std::env::var("KEK_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(1);
    println!("| measurement | result | budget | verdict |");
    println!("|---|---|---|---|");
    cache_hits(scaled(200), scaled(2_000_000));
    if std::env::var_os("KEK_BENCH_HITS_ONLY").is_some() {
        return;
    }
    let moto = common::moto::moto();
    cold_stampede(&moto.endpoint);
    let key = moto.create_kms_key("us-east-1");
    warm_up_500("moto", &common::aws_kms_client(&moto.endpoint, "kms", &key));
    let peer = FaultPeer::start(|request| {
        let answer = match request.target() {
            Some("TrentService.Encrypt") => Reply::kms_encrypt(KEY_ARN, b"wrapped"),
            _ => Reply::kms_decrypt(KEY_ARN, &[5; 32]),
        };
        Reply::delayed(Duration::from_millis(20), answer)
    });
    warm_up_500(
        "20 ms peer",
        &common::aws_kms_client(peer.endpoint(), "kms", KEY_ARN),
    );
}

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// A client with a `local` slot whose master key file lives in `dir`.
fn local_client(dir: &std::path::Path) -> KmsClient {
    let key = dir.join("master.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let client = KmsClient::new(KmsClientOptions {
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot(
            "local",
            Slot::new(
                Provider::Local,
                format!("file:{}", key.display()),
                String::new(),
            ),
        )
        .unwrap();
    client
}

/// Raw handle views of Rust objects, for calling the C ABI exactly as C does.
fn c_resolver(r: &KekResolver) -> *const cyb_kek_resolver {
    (r as *const KekResolver).cast()
}
fn c_storage(s: &StorageConfig) -> *const cyb_storage_config {
    (s as *const StorageConfig).cast()
}

/// One C ABI resolve of `name` into `out`.
#[inline(always)]
fn resolve_c(
    r: *const cyb_kek_resolver,
    s: *const cyb_storage_config,
    name: &str,
    out: &mut [u8; 32],
) {
    // SAFETY: live handles, a readable name, a 32-byte buffer.
    let code =
        unsafe { cyb_kek_resolve(r, s, name.as_ptr().cast(), name.len(), out.as_mut_ptr(), 32) };
    assert_eq!(code, cyb_result::CYB_RESULT_OK);
}

fn cache_hits(samples: usize, ops: usize) {
    let dir = tempfile::tempdir().unwrap();
    let client = local_client(dir.path());
    let storage = StorageConfig::disk(dir.path().join("store")).unwrap();
    let resolver = KekResolver::new(
        client,
        KekCacheOptions {
            ttl: Some(Duration::from_secs(3600)),
            ..KekCacheOptions::default()
        },
    )
    .unwrap();
    for name in ["orders", "users"] {
        resolver
            .create_index(&storage, name, Some("local"), None)
            .unwrap();
    }
    // After the last write to the store (a write makes cached entries re-check their envelope).
    for name in ["orders", "users"] {
        resolver.resolve(&storage, name).unwrap();
    }
    // From here on a storage read would fail: hits must not touch it.
    std::fs::remove_dir_all(dir.path().join("store")).unwrap();
    let (r, s) = (c_resolver(&resolver), c_storage(&storage));
    let r_addr = r as usize;
    let s_addr = s as usize;

    // 1. Single-thread latency: samples of `batch` back-to-back hits.
    let batch = 1000;
    let mut out = [0u8; 32];
    for _ in 0..100_000 {
        resolve_c(r, s, "orders", &mut out);
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..batch {
            resolve_c(r, s, black_box("orders"), &mut out);
            black_box(&out);
        }
        times.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    let hit = Stats::of(times, batch);
    println!(
        "| cache-hit resolve via C ABI, 1 thread: median (p10–p90, n) | {} ({}–{}, {}) | ≤ 150 ns | {} |",
        format_ns(hit.median),
        format_ns(hit.p10),
        format_ns(hit.p90),
        hit.iterations,
        if hit.median <= 150.0 { "met" } else { "missed" }
    );

    // 5. The same hits without and with a log callback (at Trace), in paired rounds.
    let (mut without, mut with) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let timed_batch = |out: &mut [u8; 32]| {
        let start = Instant::now();
        for _ in 0..batch {
            resolve_c(r, s, black_box("orders"), out);
            black_box(&*out);
        }
        start.elapsed().as_nanos() as f64 / batch as f64
    };
    for _ in 0..samples {
        without.push(timed_batch(&mut out));
        cyborgdb_kms::set_log_callback(cyborgdb_kms::LogLevel::Trace, |record| {
            black_box(record.message.len());
        })
        .unwrap();
        with.push(timed_batch(&mut out));
        cyborgdb_kms::clear_log_callback().unwrap();
    }
    let (without, with) = (Stats::of(without, batch), Stats::of(with, batch));
    println!(
        "| cache-hit resolve via C ABI, no log callback vs callback at Trace: median (p10–p90), paired rounds | {} ({}–{}) vs {} ({}–{}) | — | — |",
        format_ns(without.median),
        format_ns(without.p10),
        format_ns(without.p90),
        format_ns(with.median),
        format_ns(with.p10),
        format_ns(with.p90),
    );

    // 2. Throughput: `ops` operations per thread, threads started together, in resolves (or
    // control steps) per second. This 2-vCPU VM's own parallelism varies over time (its vCPUs
    // are sometimes co-scheduled on one host core), so one- and two-thread runs are paired
    // back to back in 7 rounds and the median ratio reported, next to a control: a pure
    // per-thread compute loop (no shared memory at all) measured the same way, i.e. the
    // machine's own 1 → 2 thread scaling in that round.
    let run = |names: &[&str], control: bool| -> f64 {
        let barrier = Barrier::new(names.len());
        let elapsed: Vec<Duration> = std::thread::scope(|scope| {
            let handles: Vec<_> = names
                .iter()
                .map(|name| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let (r, s) = (
                            r_addr as *const cyb_kek_resolver,
                            s_addr as *const cyb_storage_config,
                        );
                        let mut out = [0u8; 32];
                        let mut x = 0x9E37_79B9_7F4A_7C15u64;
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..ops {
                            if control {
                                // ~the hit's length of dependent arithmetic (xorshift steps).
                                for _ in 0..24 {
                                    x ^= x << 13;
                                    x ^= x >> 7;
                                    x ^= x << 17;
                                }
                                black_box(x);
                            } else {
                                resolve_c(r, s, black_box(name), &mut out);
                            }
                        }
                        start.elapsed()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let slowest = elapsed.iter().max().unwrap().as_secs_f64();
        (ops * names.len()) as f64 / slowest
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut same, mut apart, mut machine, mut one_rates) = (vec![], vec![], vec![], vec![]);
    for _ in 0..7 {
        let one = run(&["orders"], false);
        same.push(run(&["orders", "orders"], false) / one);
        apart.push(run(&["orders", "users"], false) / one);
        machine.push(run(&["x", "x"], true) / run(&["x"], true));
        one_rates.push(one);
    }
    let range = |v: &[f64]| {
        let lo = v.iter().cloned().fold(f64::MAX, f64::min);
        let hi = v.iter().cloned().fold(0.0, f64::max);
        format!("{lo:.2}–{hi:.2}×")
    };
    println!(
        "| machine control: pure compute, 2 threads vs 1 (median of 7 paired rounds, range) | {:.2}× ({}) | — | — |",
        median(machine.clone()),
        range(&machine)
    );
    for (what, ratios) in [("same index", &same), ("two indexes", &apart)] {
        let m = median(ratios.clone());
        println!(
            "| 2 threads vs 1, {what} (1 thread: {:.1} M/s; median of 7 paired rounds, range) | {m:.2}× ({}) | ≥ 1.7× | {} |",
            median(one_rates.clone()) / 1e6,
            range(ratios),
            if m >= 1.7 { "met" } else { "missed" }
        );
    }
    let stats = resolver.stats();
    assert_eq!(stats.misses, 2, "every timed resolve was a hit");
    assert_eq!(stats.errors, 0);
}

fn cold_stampede(endpoint: &str) {
    let moto = common::moto::moto();
    let key = moto.create_kms_key("us-east-1");
    let client = common::aws_kms_client(endpoint, "kms", &key);
    let storage = StorageConfig::memory();
    let creator = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    let kek = creator
        .create_index(&storage, "hot", Some("kms"), None)
        .unwrap();
    let mut worst = 0;
    for _ in 0..5 {
        let resolver = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
        let barrier = Barrier::new(64);
        std::thread::scope(|scope| {
            for _ in 0..64 {
                scope.spawn(|| {
                    barrier.wait();
                    assert_eq!(resolver.resolve(&storage, "hot").unwrap(), kek);
                });
            }
        });
        let stats = resolver.stats();
        worst = worst.max(stats.provider_calls);
        println!(
            "| 64 threads cold on one index (moto aws-kms): provider calls, misses, hits | {}, {}, {} | = 1 call | {} |",
            stats.provider_calls,
            stats.misses,
            stats.hits,
            if stats.provider_calls == 1 { "met" } else { "missed" }
        );
    }
    assert_eq!(worst, 1);
}

fn warm_up_500(against: &str, client: &KmsClient) {
    let storage = StorageConfig::memory();
    let names: Vec<String> = (0..500).map(|i| format!("tenant-{i:03}")).collect();
    let creator = KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    let results = creator.warm_up(&storage, &names, 1).unwrap(); // all NotFound: cheap check
    assert!(results.iter().all(Result::is_err));
    for name in &names {
        creator
            .create_index(&storage, name, Some("kms"), None)
            .unwrap();
    }
    let fresh = || KekResolver::new(client.clone(), KekCacheOptions::default()).unwrap();
    for round in 0..2 {
        let one_by_one = fresh();
        let start = Instant::now();
        for name in &names {
            one_by_one.resolve(&storage, name).unwrap();
        }
        let sequential = start.elapsed();
        let mut batch_times = Vec::new();
        for parallelism in [4, 16, 64] {
            let batch = fresh();
            let start = Instant::now();
            let results = batch.warm_up(&storage, &names, parallelism).unwrap();
            let elapsed = start.elapsed();
            assert!(results.iter().all(Result::is_ok));
            assert_eq!(batch.stats().provider_calls, 500);
            batch_times.push((parallelism, elapsed));
        }
        for (parallelism, elapsed) in batch_times {
            println!(
                "| warm-up of 500 aws-kms indexes ({against}), round {}: batch ×{parallelism} vs one by one | {:.2} s vs {:.2} s = {:.2}× faster | report | — |",
                round + 1,
                elapsed.as_secs_f64(),
                sequential.as_secs_f64(),
                sequential.as_secs_f64() / elapsed.as_secs_f64()
            );
        }
    }
}
