//! KEK cache with many indexes (issue #13 part 4). No network at all: a `local` slot and a memory
//! store, so what is timed is the resolver and its cache, not a provider.
//!
//! Run: `cargo bench --bench kek_cache_scale`.
//!
//! 1. Warm-up fill: `warm_up` (one thread) of N freshly created indexes into a fresh resolver
//!    whose bound holds them all, for N in `KEK_CACHE_SCALE_SIZES` (default 1000,10000,100000):
//!    total time and time per index, and the per-index time relative to the first N. Each fill
//!    includes the envelope read and the local AES-GCM unwrap; a cache whose inserts are O(1) or
//!    O(log n) keeps the per-index time flat, one that copies its map on every insert grows it
//!    linearly (so the total quadratically).
//! 2. Memory per cached entry, at the largest N: the bytes the allocator gets back when
//!    `invalidate_all` drops every entry (a counting global allocator: exact data-structure bytes,
//!    no malloc overhead), and the process RSS growth over the warm-up (an upper bound: it also
//!    holds whatever the allocator kept from the fill's temporaries).
//! 3. Hit latency through the C ABI (`cyb_kek_resolve`, as `kek_resolver` measures it) with the
//!    largest N cached vs a cache holding 1 entry, same key each call, paired in 7 rounds (this
//!    VM's speed drifts): median of each, and the median ratio. Also, for information, hits that
//!    walk all N entries in a shuffled order (dominated by memory misses, which a 1-entry cache
//!    cannot have) against the same walk over 1 000 entries.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

#[path = "support/stats.rs"]
mod stats;

use cyborgdb_kms::ffi::{cyb_kek_resolve, cyb_kek_resolver, cyb_result, cyb_storage_config};
use cyborgdb_kms::{
    KekCacheOptions, KekResolver, KmsClient, KmsClientOptions, Provider, Slot, StorageConfig,
};
use stats::{format_ns, Stats};

/// Counts live heap bytes, to measure what the cache holds.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let sizes: Vec<usize> = std::env::var("KEK_CACHE_SCALE_SIZES")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let largest = *sizes.iter().max().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = local_client(dir.path());
    let storage = StorageConfig::memory();
    let names: Vec<String> = (0..largest).map(|i| format!("tenant-{i:06}")).collect();
    let creator = resolver(&client, 1);
    for name in &names {
        creator
            .create_index(&storage, name, Some("local"), None)
            .unwrap();
    }
    drop(creator);

    println!("| measurement | result |");
    println!("|---|---|");
    let mut first_per_index = None;
    let mut full = None;
    for &n in &sizes {
        let filled = resolver(&client, n);
        let rss_before = rss_bytes();
        let start = Instant::now();
        let results = filled.warm_up(&storage, &names[..n], 1).unwrap();
        let elapsed = start.elapsed();
        let rss_growth = rss_bytes().saturating_sub(rss_before);
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(filled.stats().entries, n as u64);
        let per_index = elapsed.as_secs_f64() * 1e9 / n as f64;
        let relative = per_index / *first_per_index.get_or_insert(per_index);
        println!(
            "| warm-up of {n} local indexes, 1 thread: total (per index, vs {} indexes) | {:.3} s ({}, {relative:.2}×) |",
            sizes[0],
            elapsed.as_secs_f64(),
            format_ns(per_index),
        );
        if n == largest {
            full = Some((filled, rss_growth));
        }
    }
    let (full, rss_growth) = full.unwrap();

    hits(&full, &storage, &names, &client);

    let live = LIVE_BYTES.load(Ordering::Relaxed);
    assert_eq!(full.invalidate_all(), largest);
    let freed = live - LIVE_BYTES.load(Ordering::Relaxed);
    println!(
        "| memory per cached entry ({largest} entries): heap bytes freed by invalidate_all / entries; RSS growth over the warm-up / entries | {:.0} B; {:.0} B |",
        freed as f64 / largest as f64,
        rss_growth as f64 / largest as f64
    );
}

/// A resolver holding up to `max_entries` KEKs for an hour.
fn resolver(client: &KmsClient, max_entries: usize) -> KekResolver {
    KekResolver::new(
        client.clone(),
        KekCacheOptions {
            ttl: Some(Duration::from_secs(3600)),
            max_entries,
            ..KekCacheOptions::default()
        },
    )
    .unwrap()
}

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

/// Resident set size of this process, from /proc/self/statm.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// `samples` timings (ns per call) of `batch` C ABI hits, cycling through `names`.
fn time_hits(
    resolver: &KekResolver,
    storage: &StorageConfig,
    names: &[&str],
    samples: usize,
) -> f64 {
    let r: *const cyb_kek_resolver = (resolver as *const KekResolver).cast();
    let s: *const cyb_storage_config = (storage as *const StorageConfig).cast();
    let batch = 1000;
    let mut out = [0u8; 32];
    let mut next = 0;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..batch {
            let name = black_box(names[next]);
            next = if next + 1 == names.len() { 0 } else { next + 1 };
            // SAFETY: live handles, a readable name, a 32-byte buffer.
            let code = unsafe {
                cyb_kek_resolve(r, s, name.as_ptr().cast(), name.len(), out.as_mut_ptr(), 32)
            };
            assert_eq!(code, cyb_result::CYB_RESULT_OK);
            black_box(&out);
        }
        times.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    Stats::of(times, batch).median
}

fn hits(full: &KekResolver, storage: &StorageConfig, names: &[String], client: &KmsClient) {
    let one = resolver(client, 1);
    one.resolve(storage, &names[0]).unwrap();
    let small = resolver(client, 1_000);
    small.warm_up(storage, &names[..1_000], 1).unwrap();
    let misses = (
        full.stats().misses,
        one.stats().misses,
        small.stats().misses,
    );
    let same = [names[0].as_str()];
    // A shuffled walk, so hardware prefetch cannot follow it.
    let mut order: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let small_order: Vec<&str> = order
        .iter()
        .copied()
        .filter(|n| names[..1_000].iter().any(|m| m == n))
        .collect();
    time_hits(&one, storage, &same, 100);
    time_hits(full, storage, &same, 100);
    let (mut ones, mut fulls, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..7 {
        let a = time_hits(&one, storage, &same, 100);
        let b = time_hits(full, storage, &same, 100);
        ones.push(a);
        fulls.push(b);
        ratios.push(b / a);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let n = names.len();
    let ratio = median(ratios.clone());
    let lo = ratios.iter().cloned().fold(f64::MAX, f64::min);
    let hi = ratios.iter().cloned().fold(0.0, f64::max);
    println!(
        "| cache-hit resolve via C ABI, same key: {n} entries vs 1 entry (medians of 7 paired rounds of 100 × 1000 calls; ratio median, range) | {} vs {} = {ratio:.2}× ({lo:.2}–{hi:.2}×); goal ≤ 1.5×: {} |",
        format_ns(median(fulls)),
        format_ns(median(ones)),
        if ratio <= 1.5 { "met" } else { "missed" }
    );
    let walk_all = time_hits(full, storage, &order, 200.min(n / 1000).max(20));
    let walk_small = time_hits(&small, storage, &small_order, 200);
    println!(
        "| cache-hit resolve via C ABI, shuffled walk over all entries: {n} entries vs 1000 entries (median) | {} vs {} |",
        format_ns(walk_all),
        format_ns(walk_small)
    );
    threads(full, storage, names);
    assert_eq!(
        (
            full.stats().misses,
            one.stats().misses,
            small.stats().misses
        ),
        misses,
        "every timed call was a hit"
    );
}

/// Hits per second on two threads (two different indexes) vs one, on the full cache, paired in 7
/// rounds with a pure-compute control (this VM's own 1 → 2 thread scaling in the same round).
fn threads(full: &KekResolver, storage: &StorageConfig, names: &[String]) {
    const OPS: usize = 1_000_000;
    let run = |keys: &[&str], control: bool| -> f64 {
        let barrier = std::sync::Barrier::new(keys.len());
        let slowest = std::thread::scope(|scope| {
            let handles: Vec<_> = keys
                .iter()
                .map(|name| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut x = 0x9E37_79B9_7F4A_7C15u64;
                        let mut out = [0u8; 32];
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..OPS {
                            if control {
                                for _ in 0..24 {
                                    x ^= x << 13;
                                    x ^= x >> 7;
                                    x ^= x << 17;
                                }
                                black_box(x);
                            } else {
                                full.resolve_into(storage, black_box(name), &mut out)
                                    .unwrap();
                            }
                        }
                        start.elapsed()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .max()
                .unwrap()
        });
        (OPS * keys.len()) as f64 / slowest.as_secs_f64()
    };
    let (a, b) = (names[0].as_str(), names[names.len() / 2].as_str());
    let (mut hits, mut machine) = (vec![], vec![]);
    for _ in 0..7 {
        hits.push(run(&[a, b], false) / run(&[a], false));
        machine.push(run(&["x", "x"], true) / run(&["x"], true));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "| hits, 2 threads vs 1 on two indexes, {} entries (median of 7 paired rounds) vs machine control | {:.2}× vs {:.2}× |",
        names.len(),
        median(hits),
        median(machine)
    );
}
