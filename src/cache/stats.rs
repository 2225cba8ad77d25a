//! Counters of the KEK cache. Hits are counted in cache-line-padded stripes, one per thread
//! (modulo [`STRIPES`]), so concurrent hits never write the same cache line; everything else
//! happens on the slow path and uses plain atomics.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of a KEK cache's counters. Counters only grow (from the resolver's creation);
/// `entries` is the number of KEKs held right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Resolves answered from the cache without touching storage or the provider.
    pub hits: u64,
    /// Resolves that were not plain hits: nothing cached, expired, or the store was written since
    /// the entry was checked. Each miss either waits for, or leads, one flight.
    pub misses: u64,
    /// Calls to a KMS provider (unwrap or wrap) made by the resolver: one per miss flight that
    /// had to unwrap, plus those of index creation and re-wrap.
    pub provider_calls: u64,
    /// Resolve calls that returned an error (every caller of a failed flight counts once).
    pub errors: u64,
    /// Entries removed to keep the cache within `max_entries`.
    pub evictions: u64,
    /// Entries removed because their TTL passed.
    pub expirations: u64,
    /// Entries removed by `invalidate`, `invalidate_all`, or automatically by a re-wrap.
    pub invalidations: u64,
    /// Revalidation checks that failed with a transient storage error and were answered with the
    /// cached KEK instead (stale-if-error): at most one per index per revalidation interval.
    pub stale_served: u64,
    /// KEKs cached right now.
    pub entries: u64,
}

const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

#[derive(Default)]
pub(crate) struct Counters {
    hits: [Stripe; STRIPES],
    misses: AtomicU64,
    provider_calls: AtomicU64,
    errors: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    invalidations: AtomicU64,
    stale_served: AtomicU64,
}

/// This thread's hit stripe, assigned round-robin on first use.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        let mut index = stripe.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            stripe.set(index);
        }
        index
    })
}

impl Counters {
    #[inline]
    pub(crate) fn hit(&self) {
        self.hits[stripe()].0.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn provider_call(&self) {
        self.provider_calls.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn evicted(&self, count: usize) {
        self.evictions.fetch_add(count as u64, Ordering::Relaxed);
    }
    pub(crate) fn expired(&self, count: usize) {
        self.expirations.fetch_add(count as u64, Ordering::Relaxed);
    }
    pub(crate) fn invalidated(&self, count: usize) {
        self.invalidations
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn stale_served(&self) {
        self.stale_served.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, entries: usize) -> CacheStats {
        CacheStats {
            hits: self.hits.iter().map(|s| s.0.load(Ordering::Relaxed)).sum(),
            misses: self.misses.load(Ordering::Relaxed),
            provider_calls: self.provider_calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            expirations: self.expirations.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            stale_served: self.stale_served.load(Ordering::Relaxed),
            entries: entries as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_from_many_threads_all_count() {
        let counters = Counters::default();
        std::thread::scope(|scope| {
            for _ in 0..40 {
                scope.spawn(|| (0..1000).for_each(|_| counters.hit()));
            }
        });
        counters.miss();
        counters.evicted(2);
        let stats = counters.snapshot(7);
        assert_eq!(stats.hits, 40_000);
        assert_eq!(stats.misses, 1);
        assert_eq!(stats.evictions, 2);
        assert_eq!(stats.entries, 7);
    }
}
