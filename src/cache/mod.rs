//! The KEK cache: plaintext KEKs of provider-backed indexes, each held for a TTL, bounded in
//! number, and wiped when dropped.
//!
//! **Keying.** An entry is keyed on (store identity, index name) and records the SHA-256 of the
//! stored envelope it was unwrapped from and the store's write generation at the time that
//! envelope was read. A lookup is a hit only while the store's generation is unchanged — no
//! write (create, push, delete, re-wrap) went through this process since — so the hit path
//! touches neither storage nor the provider. After a write, the next lookup is `Stale`: the
//! resolver re-reads the envelope and the entry is confirmed only if the digest is the same;
//! otherwise the old KEK is discarded and the new envelope is unwrapped. A stale KEK is never
//! returned for an envelope changed through this process; changes made by other processes are
//! seen when the entry expires (at most one TTL later) or after `invalidate`.
//!
//! **Concurrency.** Readers load an immutable map snapshot (`arc_swap`) and never write shared
//! memory except a once-per-entry "referenced" bit and their own hit-counter stripe, so hits
//! scale across threads. Writers (insert, remove, purge) copy the map under one mutex; they are
//! on the slow path behind a provider call.
//!
//! **Eviction.** When an insert would exceed `max_entries`, expired entries go first, then the
//! oldest entry not referenced since the last eviction (a CLOCK approximation of LRU that costs
//! readers nothing), else the oldest. **Expiry.** A sweeper task on the library's process-wide
//! runtime (started by the first insert; no thread of its own) wakes at the earliest expiry and
//! drops expired entries. It holds the cache only weakly, so dropping the last handle frees the
//! cache at once and the task ends; every KEK is a [`Kek`], zeroed when its last reference goes.
//!
//! **fork.** In a child forked after the cache was created, its methods do nothing (lookups miss,
//! inserts and invalidations are no-ops) and never take a lock a vanished parent thread might
//! hold; the resolver refuses calls there with `ForkedProcess`. Dropping it in the child still
//! wipes its KEKs.

mod clock;
mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

pub use clock::{Clock, ManualClock};
pub use stats::CacheStats;

use crate::error::{Error, ErrorKind, Result};
use crate::index_name::MAX_INDEX_NAME_LEN;
use crate::kms::Kek;
use crate::logging::{log_event, LogLevel, TARGET_CACHE};
use crate::runtime::{OwnerProcess, SharedRuntime};
use crate::storage::StorageLocation;
use stats::Counters;

/// Environment variable giving the default TTL in whole seconds, as in the CyborgDB service.
pub const TTL_ENV_VAR: &str = "INDEX_KEK_CACHE_TTL_SECONDS";
/// TTL when neither the options nor [`TTL_ENV_VAR`] set one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default bound on cached KEKs.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Configuration of a resolver's KEK cache.
#[derive(Clone, Debug)]
pub struct KekCacheOptions {
    /// How long a KEK may be served from memory after it was unwrapped. `None`: the value of
    /// `INDEX_KEK_CACHE_TTL_SECONDS` if set, else 60 s. Zero disables caching (every resolve
    /// unwraps). The TTL is never extended by hits: it bounds how long a revoked key keeps
    /// working.
    pub ttl: Option<Duration>,
    /// Most KEKs held at once; at least 1.
    pub max_entries: usize,
    /// Time source; [`Clock::System`] unless testing expiry.
    pub clock: Clock,
}

impl Default for KekCacheOptions {
    fn default() -> Self {
        KekCacheOptions {
            ttl: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            clock: Clock::System,
        }
    }
}

impl KekCacheOptions {
    /// The TTL these options give: `ttl`, else [`TTL_ENV_VAR`], else [`DEFAULT_TTL`].
    ///
    /// Errors: `InvalidConfig` if the variable is set but not a whole number of seconds.
    pub fn effective_ttl(&self) -> Result<Duration> {
        if let Some(ttl) = self.ttl {
            return Ok(ttl);
        }
        match std::env::var(TTL_ENV_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TTL),
            Ok(value) if value.trim().is_empty() => Ok(DEFAULT_TTL),
            Ok(value) => value
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "{TTL_ENV_VAR} must be a whole number of seconds, not {}",
                            crate::error::quoted_prefix(&value)
                        ),
                    )
                }),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("{TTL_ENV_VAR} is not valid UTF-8"),
            )),
        }
    }
}

/// Cache key bytes: the store's id (8 bytes, little-endian) then the index name.
type Key = Arc<[u8]>;
const KEY_CAPACITY: usize = 8 + MAX_INDEX_NAME_LEN;

struct Entry {
    kek: Kek,
    digest: [u8; 32],
    inserted_at: u64,
    expires_at: u64,
    /// The store's write generation when the envelope behind `digest` was last read.
    checked_generation: AtomicU64,
    /// Set by hits, cleared by eviction scans.
    referenced: AtomicBool,
}

type Map = HashMap<Key, Arc<Entry>>;

/// What a lookup found.
pub(crate) enum Probe {
    /// The KEK was copied out.
    Hit,
    /// Not cached, or expired.
    Miss,
    /// Cached, but the store was written since the entry was checked: re-read the envelope.
    Stale,
}

/// A fill's view of the world when it started: the store's write generation and the cache's
/// invalidation epoch. A fill whose epoch is outdated by the time it completes is not inserted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Ticket {
    pub(crate) generation: u64,
    pub(crate) epoch: u64,
}

/// The cache proper: see the module documentation. Thread-safe.
pub(crate) struct KekCache {
    /// The only strong reference (the sweeper holds a weak one, upgraded only while it purges):
    /// the KEKs are wiped as the last map snapshot drops.
    core: Arc<Core>,
    owner: OwnerProcess,
    /// `None` without expiry to sweep (a manual clock, or a zero TTL). Declared after `core`, so
    /// its `Drop` (which stops the task) runs once the cache is already freed.
    sweeper: Option<Sweeper>,
}

struct Core {
    entries: ArcSwap<Map>,
    /// Serializes writers (each copies the map, edits, and publishes the copy).
    writer: Mutex<()>,
    ttl_nanos: u64,
    max_entries: usize,
    clock: Clock,
    counters: Counters,
    /// Bumped by every invalidation.
    epoch: AtomicU64,
}

impl KekCache {
    /// Starts nothing: the sweeper task is spawned by the first insert.
    ///
    /// Errors: `InvalidConfig` for `max_entries` 0 or a bad `INDEX_KEK_CACHE_TTL_SECONDS`.
    pub(crate) fn new(options: &KekCacheOptions) -> Result<KekCache> {
        let ttl = options.effective_ttl()?;
        if options.max_entries == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "KEK cache max_entries must be at least 1",
            ));
        }
        let core = Arc::new(Core {
            entries: ArcSwap::from_pointee(Map::new()),
            writer: Mutex::new(()),
            ttl_nanos: u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX),
            max_entries: options.max_entries,
            clock: options.clock.clone(),
            counters: Counters::default(),
            epoch: AtomicU64::new(0),
        });
        let sweeper = (options.clock.is_system() && !ttl.is_zero()).then(Sweeper::new);
        Ok(KekCache {
            core,
            owner: OwnerProcess::current(),
            sweeper,
        })
    }

    /// The process this cache was created in.
    pub(crate) fn owner(&self) -> OwnerProcess {
        self.owner
    }

    /// Whether this is still the process the cache was created in, checked thoroughly (the lock-
    /// taking paths call it; `probe` uses the one-load check).
    fn in_owner_process(&self) -> bool {
        self.owner.is_current()
    }

    /// The configured TTL.
    pub(crate) fn ttl(&self) -> Duration {
        Duration::from_nanos(self.core.ttl_nanos)
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// Looks `index` up; on a hit copies the KEK into `out` and counts the hit.
    #[inline]
    pub(crate) fn probe(
        &self,
        location: &StorageLocation,
        index: &str,
        out: &mut [u8; 32],
    ) -> Probe {
        let mut buffer = [0u8; KEY_CAPACITY];
        let Some(key) = key_into(&mut buffer, location, index) else {
            return Probe::Miss;
        };
        if !self.owner.is_current_fast() {
            return Probe::Miss;
        }
        let entries = self.core.entries.load();
        let Some(entry) = entries.get(key) else {
            return Probe::Miss;
        };
        if self.core.clock.now() >= entry.expires_at {
            return Probe::Miss;
        }
        if entry.checked_generation.load(Ordering::Acquire) != location.write_generation() {
            return Probe::Stale;
        }
        out.copy_from_slice(entry.kek.as_bytes());
        if !entry.referenced.load(Ordering::Relaxed) {
            entry.referenced.store(true, Ordering::Relaxed);
        }
        self.core.counters.hit();
        Probe::Hit
    }

    /// The ticket a fill starting now carries.
    pub(crate) fn ticket(&self, location: &StorageLocation) -> Ticket {
        // Epoch first: an invalidation racing with this read makes the ticket older, never newer.
        let epoch = self.core.epoch.load(Ordering::Acquire);
        Ticket {
            generation: location.write_generation(),
            epoch,
        }
    }

    /// After re-reading the envelope: if the cached entry (unexpired) was unwrapped from the
    /// same envelope (`digest`), marks it checked as of `ticket` and returns its KEK. An entry
    /// that expired or is for another envelope is dropped (and its KEK wiped).
    pub(crate) fn confirm(
        &self,
        location: &StorageLocation,
        index: &str,
        digest: &[u8; 32],
        ticket: Ticket,
    ) -> Option<Kek> {
        if !self.in_owner_process() {
            return None;
        }
        let mut buffer = [0u8; KEY_CAPACITY];
        let key = key_into(&mut buffer, location, index)?;
        let entry = Arc::clone(self.core.entries.load().get(key)?);
        let expired = self.core.clock.now() >= entry.expires_at;
        if expired || entry.digest != *digest {
            // Of no further use: drop it now rather than at the next sweep.
            if self.core.remove(key, Some(&entry)) && expired {
                self.core.counters.expired(1);
            }
            return None;
        }
        entry
            .checked_generation
            .fetch_max(ticket.generation, Ordering::AcqRel);
        Some(entry.kek.clone())
    }

    /// Caches `kek`, unwrapped from the envelope with `digest` read under `ticket` — unless the
    /// TTL is zero, an invalidation happened since the ticket was taken, or the sweeper cannot be
    /// started (a KEK that nothing would wipe at expiry is not kept).
    pub(crate) fn insert(
        &self,
        location: &StorageLocation,
        index: &str,
        kek: &Kek,
        digest: [u8; 32],
        ticket: Ticket,
    ) {
        let mut buffer = [0u8; KEY_CAPACITY];
        let Some(key) = key_into(&mut buffer, location, index) else {
            return;
        };
        if self.core.ttl_nanos == 0 || !self.in_owner_process() {
            return;
        }
        if let Some(sweeper) = &self.sweeper {
            if sweeper.ensure_started(&self.core).is_err() {
                return;
            }
        }
        let core = &self.core;
        let now = core.clock.now();
        let entry = Arc::new(Entry {
            kek: kek.clone(),
            digest,
            inserted_at: now,
            expires_at: now.saturating_add(core.ttl_nanos),
            checked_generation: AtomicU64::new(ticket.generation),
            referenced: AtomicBool::new(false),
        });
        let mut cached = None;
        core.edit(|map| {
            // Checked under the writer lock, which invalidations also take.
            if core.epoch.load(Ordering::Acquire) != ticket.epoch {
                return;
            }
            core.drop_expired(map, now);
            if !map.contains_key(key) && map.len() >= core.max_entries {
                core.evict_one(map);
            }
            map.insert(Arc::from(key), entry);
            cached = Some(map.len());
        });
        match cached {
            Some(entries) => log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "cached the KEK of index {index:?} (store {}) for {} s; {entries} KEKs cached",
                location.id(),
                core.ttl_nanos / 1_000_000_000
            ),
            None => log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "did not cache the KEK of index {index:?} (store {}): the cache was invalidated \
                 while it was being unwrapped",
                location.id()
            ),
        }
        if let Some(sweeper) = &self.sweeper {
            sweeper.wake();
        }
    }

    /// Drops the entry of `index` in `location`; returns whether there was one. Fills in
    /// progress (of any index) will not cache their results.
    pub(crate) fn invalidate(&self, location: &StorageLocation, index: &str) -> bool {
        if !self.in_owner_process() {
            return false;
        }
        let mut buffer = [0u8; KEY_CAPACITY];
        let key = key_into(&mut buffer, location, index);
        let core = &self.core;
        let writer = core.lock_writer();
        core.epoch.fetch_add(1, Ordering::AcqRel);
        let removed = key.is_some_and(|key| core.remove_locked(&writer, key, None));
        if removed {
            core.counters.invalidated(1);
            log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "invalidated the cached KEK of index {index:?} (store {})",
                location.id()
            );
        }
        removed
    }

    /// Drops the entry of `index` without counting an invalidation or touching fills in
    /// progress: its envelope is gone.
    pub(crate) fn discard(&self, location: &StorageLocation, index: &str) {
        if !self.in_owner_process() {
            return;
        }
        let mut buffer = [0u8; KEY_CAPACITY];
        if let Some(key) = key_into(&mut buffer, location, index) {
            self.core.remove(key, None);
        }
    }

    /// Drops every entry; returns how many there were.
    pub(crate) fn invalidate_all(&self) -> usize {
        if !self.in_owner_process() {
            return 0;
        }
        let core = &self.core;
        let _writer = core.lock_writer();
        core.epoch.fetch_add(1, Ordering::AcqRel);
        let removed = core.entries.load().len();
        if removed > 0 {
            core.entries.store(Arc::new(Map::new()));
        }
        core.counters.invalidated(removed);
        log_event!(
            LogLevel::Debug,
            TARGET_CACHE,
            "invalidated every cached KEK ({removed} dropped)"
        );
        removed
    }

    /// Drops expired entries now; returns how many.
    pub(crate) fn purge_expired(&self) -> usize {
        if !self.in_owner_process() {
            return 0;
        }
        self.core.purge_expired()
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.core.counters.snapshot(self.core.entries.load().len())
    }
}

impl Core {
    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on a copy of the map under the writer lock and publishes the copy.
    fn edit(&self, change: impl FnOnce(&mut Map)) {
        let writer = self.lock_writer();
        self.edit_locked(&writer, change);
    }

    /// As `edit`, the writer lock being held (`_writer`).
    fn edit_locked(&self, _writer: &MutexGuard<'_, ()>, change: impl FnOnce(&mut Map)) {
        let mut map = Map::clone(&self.entries.load());
        change(&mut map);
        self.entries.store(Arc::new(map));
    }

    /// Removes the entry under `key` — only if it is still `only`, when given — copying the map
    /// only if there is something to remove. Returns whether it removed one.
    fn remove(&self, key: &[u8], only: Option<&Arc<Entry>>) -> bool {
        let writer = self.lock_writer();
        self.remove_locked(&writer, key, only)
    }

    fn remove_locked(
        &self,
        writer: &MutexGuard<'_, ()>,
        key: &[u8],
        only: Option<&Arc<Entry>>,
    ) -> bool {
        let present = self
            .entries
            .load()
            .get(key)
            .is_some_and(|e| only.is_none_or(|only| Arc::ptr_eq(e, only)));
        if present {
            self.edit_locked(writer, |map| {
                map.remove(key);
            });
        }
        present
    }

    fn drop_expired(&self, map: &mut Map, now: u64) {
        let before = map.len();
        map.retain(|_, entry| entry.expires_at > now);
        let expired = before - map.len();
        self.counters.expired(expired);
        if expired > 0 {
            log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "dropped {expired} expired KEKs (wiped); {} KEKs cached",
                map.len()
            );
        }
    }

    /// Removes one entry: the oldest not referenced since the last scan, else the oldest.
    fn evict_one(&self, map: &mut Map) {
        let victim = map
            .iter()
            .filter(|(_, e)| !e.referenced.load(Ordering::Relaxed))
            .min_by_key(|(_, e)| e.inserted_at)
            .or_else(|| map.iter().min_by_key(|(_, e)| e.inserted_at))
            .map(|(key, _)| Arc::clone(key));
        for entry in map.values() {
            entry.referenced.store(false, Ordering::Relaxed);
        }
        if let Some(victim) = victim {
            map.remove(&victim);
            self.counters.evicted(1);
            log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "evicted the KEK of index {:?} to stay within max_entries {}",
                String::from_utf8_lossy(victim.get(8..).unwrap_or_default()),
                self.max_entries
            );
        }
    }

    fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        if self.entries.load().values().all(|e| e.expires_at > now) {
            return 0;
        }
        let mut purged = 0;
        self.edit(|map| {
            let before = map.len();
            self.drop_expired(map, now);
            purged = before - map.len();
        });
        purged
    }

    /// When the earliest entry expires, in this clock's nanoseconds.
    fn next_expiry(&self) -> Option<u64> {
        self.entries.load().values().map(|e| e.expires_at).min()
    }
}

/// Writes the cache key of (`location`, `index`) into `buffer`; `None` for a name too long to be
/// valid (it can never be cached).
#[inline]
fn key_into<'a>(
    buffer: &'a mut [u8; KEY_CAPACITY],
    location: &StorageLocation,
    index: &str,
) -> Option<&'a [u8]> {
    let len = 8 + index.len();
    if len > KEY_CAPACITY {
        return None;
    }
    buffer[..8].copy_from_slice(&location.id().to_le_bytes());
    buffer[8..len].copy_from_slice(index.as_bytes());
    Some(&buffer[..len])
}

/// The sweeper of one cache: a task on the process-wide runtime, spawned by the first insert.
struct Sweeper {
    runtime: SharedRuntime,
    started: AtomicBool,
    signal: Arc<SweepSignal>,
}

/// Wakes the sweeper task: a new entry (it may expire first) or the cache's drop (`stop`).
#[derive(Default)]
struct SweepSignal {
    wake: Notify,
    stop: AtomicBool,
}

impl Sweeper {
    fn new() -> Sweeper {
        Sweeper {
            runtime: SharedRuntime::new("KEK cache"),
            started: AtomicBool::new(false),
            signal: Arc::default(),
        }
    }

    /// Spawns the task unless it runs already. Errors: the runtime's (`Io`, `ForkedProcess`);
    /// a later call tries again.
    fn ensure_started(&self, core: &Arc<Core>) -> Result<()> {
        if self.started.load(Ordering::Acquire) || self.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let task = sweep(Arc::downgrade(core), Arc::clone(&self.signal));
        self.runtime.spawn(task).inspect_err(|_| {
            self.started.store(false, Ordering::Release);
        })
    }

    fn wake(&self) {
        self.signal.wake.notify_one();
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        // In a forked child the task is on the parent's runtime, which does not run here, and
        // waking it would take a lock a vanished thread may hold: leave it alone.
        if self.runtime.in_owner_process() {
            self.signal.stop.store(true, Ordering::Release);
            self.signal.wake.notify_one();
        }
    }
}

/// The sweeper task: sleeps until the earliest expiry (or a new entry, or stop), then purges.
/// Holds the cache only weakly, and strongly only while purging.
async fn sweep(core: Weak<Core>, signal: Arc<SweepSignal>) {
    loop {
        if signal.stop.load(Ordering::Acquire) {
            return;
        }
        let wait = {
            let Some(core) = core.upgrade() else {
                return;
            };
            core.purge_expired();
            core.next_expiry()
                .map(|at| Duration::from_nanos(at.saturating_sub(core.clock.now())))
        };
        // A wake between computing `wait` and here is not lost: `notify_one` leaves a permit.
        let woken = signal.wake.notified();
        match wait {
            Some(wait) => {
                let _ = tokio::time::timeout(wait, woken).await;
            }
            None => woken.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageConfig;

    fn cache(max_entries: usize) -> (KekCache, ManualClock) {
        let clock = ManualClock::new();
        let cache = KekCache::new(&KekCacheOptions {
            ttl: Some(Duration::from_secs(10)),
            max_entries,
            clock: Clock::Manual(clock.clone()),
        })
        .unwrap();
        (cache, clock)
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_not_cached() {
        let (cache, _clock) = cache(10);
        let storage = StorageConfig::memory();
        let location = storage.location();
        let ticket = cache.ticket(location);
        cache.invalidate_all();
        cache.insert(location, "idx", &Kek::generate(), [1; 32], ticket);
        assert_eq!(cache.stats().entries, 0);
        // A fill that started after the invalidation is cached.
        let ticket = cache.ticket(location);
        cache.insert(location, "idx", &Kek::generate(), [1; 32], ticket);
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn a_write_to_the_store_makes_an_entry_stale_until_confirmed() {
        let (cache, _clock) = cache(10);
        let storage = StorageConfig::memory();
        let location = storage.location();
        let kek = Kek::generate();
        cache.insert(location, "idx", &kek, [1; 32], cache.ticket(location));
        let mut out = [0u8; 32];
        assert!(matches!(cache.probe(location, "idx", &mut out), Probe::Hit));
        assert_eq!(&out, kek.as_bytes());
        location.note_write();
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Stale
        ));
        // Another envelope: the entry is dropped.
        assert!(cache
            .confirm(location, "idx", &[2; 32], cache.ticket(location))
            .is_none());
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Miss
        ));
        // Same envelope: confirmed, a hit again.
        cache.insert(location, "idx", &kek, [1; 32], cache.ticket(location));
        location.note_write();
        let confirmed = cache.confirm(location, "idx", &[1; 32], cache.ticket(location));
        assert_eq!(confirmed.unwrap(), kek);
        assert!(matches!(cache.probe(location, "idx", &mut out), Probe::Hit));
    }

    #[test]
    fn dropping_the_last_handle_frees_the_cache_and_ends_its_sweeper() {
        let cache = KekCache::new(&KekCacheOptions {
            ttl: Some(Duration::from_secs(600)),
            max_entries: 10,
            clock: Clock::System,
        })
        .unwrap();
        let storage = StorageConfig::memory();
        let location = storage.location();
        let kek = Kek::generate();
        cache.insert(location, "idx", &kek, [1; 32], cache.ticket(location));
        assert_eq!(cache.stats().entries, 1);
        let sweeper = cache.sweeper.as_ref().expect("a system-clock cache sweeps");
        assert!(
            sweeper.started.load(Ordering::Acquire),
            "started by the insert"
        );
        let core = Arc::downgrade(&cache.core);
        // The task holds the signal until it returns.
        let task = Arc::downgrade(&sweeper.signal);
        drop(cache);
        // The sweeper holds the cache only while it purges, so it is freed (and its KEK wiped)
        // promptly, and the task ends instead of sleeping until the entry would have expired.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while core.strong_count() + task.strong_count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "cache alive: {}, sweeper alive: {}",
                core.strong_count(),
                task.strong_count()
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_cache_without_system_expiry_has_no_sweeper() {
        let (cache, _clock) = cache(10);
        assert!(cache.sweeper.is_none());
        let zero = KekCache::new(&KekCacheOptions {
            ttl: Some(Duration::ZERO),
            ..KekCacheOptions::default()
        })
        .unwrap();
        assert!(zero.sweeper.is_none());
    }

    #[test]
    fn options_are_checked() {
        let zero = KekCacheOptions {
            max_entries: 0,
            ..KekCacheOptions::default()
        };
        let err = KekCache::new(&zero).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("max_entries"));
    }

    #[test]
    fn names_too_long_to_be_valid_are_never_cached() {
        let (cache, _clock) = cache(10);
        let storage = StorageConfig::memory();
        let location = storage.location();
        let long = "x".repeat(MAX_INDEX_NAME_LEN + 1);
        cache.insert(
            location,
            &long,
            &Kek::generate(),
            [1; 32],
            cache.ticket(location),
        );
        assert_eq!(cache.stats().entries, 0);
        let mut out = [0u8; 32];
        assert!(matches!(
            cache.probe(location, &long, &mut out),
            Probe::Miss
        ));
    }
}
