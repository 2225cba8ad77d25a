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
//! scale across threads. The map is persistent (a hash array mapped trie, `rpds`): writers
//! (insert, remove, purge) serialize on one mutex, clone the snapshot in O(1), edit the clone in
//! O(log n) — copying only the nodes on the key's path — and publish it. Filling the cache with
//! n entries is O(n log n), not O(n²) as when every insert copied the whole map.
//!
//! **Eviction.** When an insert would exceed `max_entries`, expired entries go first, then one
//! entry chosen by the CLOCK algorithm (a second-chance approximation of LRU that costs readers
//! nothing): the eviction hand walks the entries in insertion order; one hit since the hand last
//! passed it has its bit cleared and another lap, the first one not hit goes; if all were hit,
//! the oldest goes. **Expiry.** Every entry has the same TTL, so insertion order is expiry order:
//! the writers keep a queue of entries in that order, drop expired ones from its front (O(1)
//! each), and a sweeper task on the library's process-wide runtime (started by the first insert;
//! no thread of its own) sleeps until the front entry expires. An insert wakes it only when the
//! new entry expires before the sweeper's next look (in practice: when it was idle on an empty
//! cache). The sweeper holds the cache only weakly, so dropping the last handle frees the cache
//! at once and the task ends; every KEK is a [`Kek`], zeroed when its last reference goes — when
//! its entry is evicted, expires or is invalidated, as soon as no reader still holds the snapshot
//! it was in.
//!
//! **fork.** In a child forked after the cache was created, its methods do nothing (lookups miss,
//! inserts and invalidations are no-ops) and never take a lock a vanished parent thread might
//! hold; the resolver refuses calls there with `ForkedProcess`. Dropping it in the child still
//! wipes its KEKs.

mod clock;
mod stats;

use std::collections::VecDeque;
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
use crate::storage::{Revision, StorageLocation};
use stats::Counters;

/// Environment variable giving the default TTL in whole seconds, as in the CyborgDB service.
pub const TTL_ENV_VAR: &str = "INDEX_KEK_CACHE_TTL_SECONDS";
/// TTL when neither the options nor [`TTL_ENV_VAR`] set one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default bound on cached KEKs: the most indexes one S3 listing collects. A full cache of this
/// size holds about 34–38 MB (≈ 340 heap bytes, ≈ 376 bytes of RSS per entry: BENCHMARKS.md,
/// "Many indexes").
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Environment variable giving the default envelope revalidation interval in whole seconds
/// (unset, empty or `0`: off). See [`KekCacheOptions::revalidate`].
pub const REVALIDATE_ENV_VAR: &str = "CYB_KEK_REVALIDATE_SECS";
/// Longest envelope revalidation interval accepted (an hour): a longer one is almost surely a
/// unit mistake, and the TTL already bounds how long an entry lives.
pub const MAX_REVALIDATE: Duration = Duration::from_secs(3600);

/// Environment variable choosing whether a failed revalidation check may serve the cached KEK
/// (`1`: yes, `0`: no; unset or empty: yes). See [`KekCacheOptions::stale_if_error`].
pub const STALE_IF_ERROR_ENV_VAR: &str = "CYB_KEK_STALE_IF_ERROR";
/// Whether stale-if-error is on when neither the options nor [`STALE_IF_ERROR_ENV_VAR`] say.
pub const DEFAULT_STALE_IF_ERROR: bool = true;

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
    /// Envelope revalidation interval, for fleets where other nodes push, delete or re-wrap
    /// envelopes in the same store. For this long after an entry was filled or last checked, a
    /// hit is served from memory; the next lookup after it re-reads the stored envelope (one
    /// caller per index; concurrent callers of that index wait for its result) and reuses the
    /// cached KEK if the envelope is unchanged (same SHA-256), unwraps the new one if it
    /// changed, or drops the entry and fails `NotFound` if it was deleted. `None`: the value of
    /// `CYB_KEK_REVALIDATE_SECS` if set, else off. Zero: off (only writes through this process
    /// and the TTL end an entry). At most [`MAX_REVALIDATE`]. The TTL still bounds revocation.
    pub revalidate: Option<Duration>,
    /// Stale-if-error, for availability within the TTL: when a revalidation check fails with a
    /// transient storage error (`StorageUnavailable`: S3 unreachable, timed out or 5xx after
    /// retries; `Io`: a disk read failed), serve the cached KEK instead of failing, and check
    /// again one interval later — never past the entry's TTL, never when the store answered that
    /// the envelope is gone (`NotFound`), changed, corrupt or access denied, and never after a
    /// write to the store through this process. Counted in [`CacheStats::stale_served`] and
    /// logged (warning) once per index per failed check. `None`: the value of
    /// `CYB_KEK_STALE_IF_ERROR` (`1` / `0`) if set, else on ([`DEFAULT_STALE_IF_ERROR`]): with
    /// it, revalidation never makes a store outage fail resolves that would succeed without
    /// revalidation, and the TTL still bounds revocation as it does then.
    pub stale_if_error: Option<bool>,
}

impl Default for KekCacheOptions {
    fn default() -> Self {
        KekCacheOptions {
            ttl: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            clock: Clock::System,
            revalidate: None,
            stale_if_error: None,
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

impl KekCacheOptions {
    /// Whether stale-if-error is on: `stale_if_error`, else [`STALE_IF_ERROR_ENV_VAR`], else
    /// [`DEFAULT_STALE_IF_ERROR`].
    ///
    /// Errors: `InvalidConfig` if the variable is set to anything but `1`, `0` or nothing.
    pub fn effective_stale_if_error(&self) -> Result<bool> {
        if let Some(on) = self.stale_if_error {
            return Ok(on);
        }
        match std::env::var(STALE_IF_ERROR_ENV_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(DEFAULT_STALE_IF_ERROR),
            Ok(value) => match value.trim() {
                "" => Ok(DEFAULT_STALE_IF_ERROR),
                "1" => Ok(true),
                "0" => Ok(false),
                _ => Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "{STALE_IF_ERROR_ENV_VAR} must be 1 or 0, not {}",
                        crate::error::quoted_prefix(&value)
                    ),
                )),
            },
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("{STALE_IF_ERROR_ENV_VAR} is not valid UTF-8"),
            )),
        }
    }

    /// The revalidation interval these options give: `revalidate`, else [`REVALIDATE_ENV_VAR`],
    /// else zero (off).
    ///
    /// Errors: `InvalidConfig` if the interval exceeds [`MAX_REVALIDATE`] or the variable is set
    /// but not a whole number of seconds.
    pub fn effective_revalidate(&self) -> Result<Duration> {
        let interval = match self.revalidate {
            Some(interval) => interval,
            None => match std::env::var(REVALIDATE_ENV_VAR) {
                Err(std::env::VarError::NotPresent) => Duration::ZERO,
                Ok(value) if value.trim().is_empty() => Duration::ZERO,
                Ok(value) => value
                    .trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidConfig,
                            format!(
                                "{REVALIDATE_ENV_VAR} must be a whole number of seconds, not {}",
                                crate::error::quoted_prefix(&value)
                            ),
                        )
                    })?,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("{REVALIDATE_ENV_VAR} is not valid UTF-8"),
                    ))
                }
            },
        };
        if interval > MAX_REVALIDATE {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "the KEK envelope revalidation interval must be at most {MAX_REVALIDATE:?}, \
                     not {interval:?}"
                ),
            ));
        }
        Ok(interval)
    }
}

/// Cache key bytes: the store's id (8 bytes, little-endian) then the index name.
type Key = Arc<[u8]>;
const KEY_CAPACITY: usize = 8 + MAX_INDEX_NAME_LEN;

struct Entry {
    kek: Kek,
    digest: [u8; 32],
    /// Unique to this insert: tells this entry's places in the writers' queues from those of an
    /// entry it replaced under the same key.
    serial: u64,
    expires_at: u64,
    /// Until when a hit needs no look at the store: `expires_at` without revalidation, else the
    /// earlier of it and the last check plus the interval (moved on by `confirm`). The hit path
    /// compares only this, so revalidation off costs nothing extra.
    fresh_until: AtomicU64,
    /// The store's write generation when the envelope behind `digest` was last read.
    checked_generation: AtomicU64,
    /// Set by hits, cleared when the eviction hand passes the entry.
    referenced: AtomicBool,
    /// The store's version tag of that envelope (S3: its ETag), for a cheap revalidation.
    /// Touched only off the hit path.
    etag: Mutex<Option<String>>,
}

/// The published map: a persistent hash array mapped trie (`rpds`). Cloning a snapshot is O(1),
/// and an edit of the clone copies only the O(log n) nodes on its key's path, sharing the rest
/// with the snapshot readers may still hold — so inserts and removals cost O(log n), not a copy
/// of the whole map. The trie already keeps each (key, entry) pair in one shared allocation that
/// every snapshot holding it points to, so the entry sits there unboxed (an `Arc<Entry>` value
/// would add a dependent load to every hit); an entry is told from its replacement by `serial`.
type Map = rpds::HashTrieMapSync<Key, Entry>;

/// A stale place is dropped once a queue holds more than twice the live entries plus this.
const COMPACTION_SLACK: usize = 64;

/// An entry's place in one of the writers' queues.
struct Place {
    key: Key,
    serial: u64,
}

/// The writers' bookkeeping, guarded by [`Core::writer`]. Each entry in the map has exactly one
/// place in each queue; an entry removed or replaced leaves its places behind (stale), to be
/// dropped when they reach a queue's front or by [`Order::compact`].
struct Order {
    /// Places in insertion order, which is expiry order: one TTL for every entry, and the
    /// monotonic clock is read under the writer lock. Expired entries are at the front.
    by_expiry: VecDeque<Place>,
    /// The CLOCK eviction ring, its hand at the front: a referenced entry there has its bit
    /// cleared and goes to the back (a second chance); an unreferenced one is evicted.
    clock: VecDeque<Place>,
    next_serial: u64,
    /// When the sweeper task will next look at the cache (`u64::MAX`: only when woken). An
    /// insert wakes it only if the new entry expires before that — in practice only when the
    /// cache was empty, since later inserts expire later.
    sweeper_looks_at: u64,
}

impl Order {
    fn new() -> Order {
        Order {
            by_expiry: VecDeque::new(),
            clock: VecDeque::new(),
            next_serial: 0,
            sweeper_looks_at: u64::MAX,
        }
    }

    /// The entry `place` stands for, if it is still in `map`.
    fn live<'m>(map: &'m Map, place: &Place) -> Option<&'m Entry> {
        map.get(&*place.key)
            .filter(|entry| entry.serial == place.serial)
    }

    /// Queues a new entry under `key`; returns its serial.
    fn push(&mut self, key: &Key) -> u64 {
        let serial = self.next_serial;
        self.next_serial += 1;
        for queue in [&mut self.by_expiry, &mut self.clock] {
            queue.push_back(Place {
                key: Arc::clone(key),
                serial,
            });
        }
        serial
    }

    /// Drops the stale places of a queue that holds more than twice as many places as `map` has
    /// entries (plus [`COMPACTION_SLACK`]): the queues stay O(entries), and since a compaction
    /// follows at least as many edits as it leaves places, it costs O(log n) amortized per edit.
    fn compact(&mut self, map: &Map) {
        let limit = map
            .size()
            .saturating_mul(2)
            .saturating_add(COMPACTION_SLACK);
        for queue in [&mut self.by_expiry, &mut self.clock] {
            if queue.len() > limit {
                queue.retain(|place| Order::live(map, place).is_some());
                queue.shrink_to(limit);
            }
        }
    }

    /// Forgets every place (the map was emptied).
    fn clear(&mut self) {
        self.by_expiry = VecDeque::new();
        self.clock = VecDeque::new();
    }
}

/// What a lookup found.
pub(crate) enum Probe {
    /// The KEK was copied out.
    Hit,
    /// Not cached, or expired.
    Miss,
    /// Cached, but the store was written since the entry was checked, or its revalidation
    /// interval passed: re-read the envelope.
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
    /// Serializes writers (each clones the snapshot, edits the clone and publishes it) and holds
    /// their queues.
    writer: Mutex<Order>,
    ttl_nanos: u64,
    /// Revalidation interval; 0 when off.
    revalidate_nanos: u64,
    /// Whether a failed revalidation check may serve the cached KEK ([`KekCache::serve_stale`]).
    stale_if_error: bool,
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
        let revalidate = options.effective_revalidate()?;
        let stale_if_error = options.effective_stale_if_error()?;
        if options.max_entries == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "KEK cache max_entries must be at least 1",
            ));
        }
        let core = Arc::new(Core {
            entries: ArcSwap::from_pointee(Map::new_sync()),
            writer: Mutex::new(Order::new()),
            ttl_nanos: u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX),
            revalidate_nanos: u64::try_from(revalidate.as_nanos()).unwrap_or(u64::MAX),
            stale_if_error,
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

    /// The configured revalidation interval (zero: off).
    pub(crate) fn revalidate_interval(&self) -> Duration {
        Duration::from_nanos(self.core.revalidate_nanos)
    }

    /// Whether stale-if-error is on.
    pub(crate) fn stale_if_error(&self) -> bool {
        self.core.stale_if_error
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
        let now = self.core.clock.now();
        // One compare while fresh; `fresh_until` is `expires_at` when revalidation is off.
        if now >= entry.fresh_until.load(Ordering::Relaxed) {
            if now >= entry.expires_at {
                return Probe::Miss;
            }
            return Probe::Stale;
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
        let entries = self.core.entries.load();
        let entry = entries.get(key)?;
        let expired = self.core.clock.now() >= entry.expires_at;
        if expired || entry.digest != *digest {
            // Of no further use: drop it now rather than at the next sweep.
            let serial = entry.serial;
            drop(entries);
            if self.core.remove(key, Some(serial)) && expired {
                self.core.counters.expired(1);
            }
            return None;
        }
        entry
            .checked_generation
            .fetch_max(ticket.generation, Ordering::AcqRel);
        if self.core.revalidate_nanos != 0 {
            let fresh_until = self
                .core
                .fresh_until(self.core.clock.now(), entry.expires_at);
            entry.fresh_until.fetch_max(fresh_until, Ordering::AcqRel);
        }
        Some(entry.kek.clone())
    }

    /// Stale-if-error: the revalidation check of `index`'s entry failed with a transient
    /// storage error. If stale-if-error is on and the entry is unexpired and was last checked
    /// under `ticket`'s write generation (no write to the store through this process since),
    /// returns its KEK, counts it in `stale_served`, and leaves the entry fresh for another
    /// interval (never past its TTL), so the store is asked again then — not on every resolve.
    /// Returns `None` otherwise (the caller fails with the check's error).
    pub(crate) fn serve_stale(
        &self,
        location: &StorageLocation,
        index: &str,
        ticket: Ticket,
    ) -> Option<Kek> {
        if !self.core.stale_if_error || !self.in_owner_process() {
            return None;
        }
        let mut buffer = [0u8; KEY_CAPACITY];
        let key = key_into(&mut buffer, location, index)?;
        let entries = self.core.entries.load();
        let entry = entries.get(key)?;
        let now = self.core.clock.now();
        if now >= entry.expires_at
            || entry.checked_generation.load(Ordering::Acquire) != ticket.generation
        {
            return None;
        }
        entry.fresh_until.fetch_max(
            self.core.fresh_until(now, entry.expires_at),
            Ordering::AcqRel,
        );
        self.core.counters.stale_served();
        Some(entry.kek.clone())
    }

    /// The time left until `index`'s entry expires, if it is cached (for log messages).
    pub(crate) fn time_to_live(&self, location: &StorageLocation, index: &str) -> Option<Duration> {
        let mut buffer = [0u8; KEY_CAPACITY];
        let key = key_into(&mut buffer, location, index)?;
        let entries = self.core.entries.load();
        let expires_at = entries.get(key)?.expires_at;
        Some(Duration::from_nanos(
            expires_at.saturating_sub(self.core.clock.now()),
        ))
    }

    /// The revision (digest and remembered ETag) of the envelope the cached entry of `index`
    /// came from, if there is an unexpired entry.
    pub(crate) fn known_revision(
        &self,
        location: &StorageLocation,
        index: &str,
    ) -> Option<Revision> {
        let mut buffer = [0u8; KEY_CAPACITY];
        let key = key_into(&mut buffer, location, index)?;
        let entries = self.core.entries.load();
        let entry = entries
            .get(key)
            .filter(|entry| self.core.clock.now() < entry.expires_at)?;
        let etag = entry
            .etag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some(Revision {
            digest: entry.digest,
            etag,
        })
    }

    /// Remembers `revision`'s ETag in the entry of `index`, if that entry is for the same
    /// envelope (digest).
    pub(crate) fn remember_etag(
        &self,
        location: &StorageLocation,
        index: &str,
        revision: &Revision,
    ) {
        let mut buffer = [0u8; KEY_CAPACITY];
        let Some(key) = key_into(&mut buffer, location, index) else {
            return;
        };
        let entries = self.core.entries.load();
        if let Some(entry) = entries.get(key).filter(|e| e.digest == revision.digest) {
            let mut etag = entry.etag.lock().unwrap_or_else(PoisonError::into_inner);
            if *etag != revision.etag {
                etag.clone_from(&revision.etag);
            }
        }
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
        let mut order = core.lock_writer();
        // Checked under the writer lock, which invalidations also take.
        if core.epoch.load(Ordering::Acquire) != ticket.epoch {
            log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "did not cache the KEK of index {index:?} (store {}): the cache was invalidated \
                 while it was being unwrapped",
                location.id()
            );
            return;
        }
        // Read under the lock, so entries enter the queues in expiry order.
        let now = core.clock.now();
        let expires_at = now.saturating_add(core.ttl_nanos);
        let mut map = Map::clone(&core.entries.load());
        core.drop_expired(&mut map, &mut order, now);
        if !map.contains_key(key) && map.size() >= core.max_entries {
            core.evict_one(&mut map, &mut order);
        }
        let key: Key = Arc::from(key);
        let serial = order.push(&key);
        map.insert_mut(
            key,
            Entry {
                kek: kek.clone(),
                digest,
                serial,
                expires_at,
                fresh_until: AtomicU64::new(core.fresh_until(now, expires_at)),
                checked_generation: AtomicU64::new(ticket.generation),
                referenced: AtomicBool::new(false),
                etag: Mutex::new(None),
            },
        );
        order.compact(&map);
        let entries = map.size();
        core.entries.store(Arc::new(map));
        log_event!(
            LogLevel::Debug,
            TARGET_CACHE,
            "cached the KEK of index {index:?} (store {}) for {} s; {entries} KEKs cached",
            location.id(),
            core.ttl_nanos / 1_000_000_000
        );
        let wake = expires_at < order.sweeper_looks_at;
        if wake {
            order.sweeper_looks_at = expires_at;
        }
        drop(order);
        if let Some(sweeper) = self.sweeper.as_ref().filter(|_| wake) {
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
        let mut order = core.lock_writer();
        core.epoch.fetch_add(1, Ordering::AcqRel);
        let removed = key.is_some_and(|key| core.remove_locked(&mut order, key, None));
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
        let mut order = core.lock_writer();
        core.epoch.fetch_add(1, Ordering::AcqRel);
        let removed = core.entries.load().size();
        if removed > 0 {
            core.entries.store(Arc::new(Map::new_sync()));
        }
        order.clear();
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
        self.core.counters.snapshot(self.core.entries.load().size())
    }
}

impl Core {
    /// Until when an entry checked at `now` and expiring at `expires_at` needs no new check.
    #[inline]
    fn fresh_until(&self, now: u64, expires_at: u64) -> u64 {
        if self.revalidate_nanos == 0 {
            expires_at
        } else {
            now.saturating_add(self.revalidate_nanos).min(expires_at)
        }
    }

    fn lock_writer(&self) -> MutexGuard<'_, Order> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the entry under `key` — only if it is still the one with serial `only`, when
    /// given — editing the map only if there is something to remove. Returns whether it removed
    /// one.
    fn remove(&self, key: &[u8], only: Option<u64>) -> bool {
        let mut order = self.lock_writer();
        self.remove_locked(&mut order, key, only)
    }

    /// As `remove`, the writer lock being held (`order` is what it guards).
    fn remove_locked(&self, order: &mut Order, key: &[u8], only: Option<u64>) -> bool {
        let snapshot = self.entries.load();
        let present = snapshot
            .get(key)
            .is_some_and(|e| only.is_none_or(|only| e.serial == only));
        if present {
            let mut map = Map::clone(&snapshot);
            drop(snapshot);
            map.remove_mut(key);
            order.compact(&map);
            self.entries.store(Arc::new(map));
        }
        present
    }

    /// Removes from `map` the entries expired at `now` (they are at the front of the expiry
    /// queue, behind stale places that go too) and counts them; returns how many.
    fn drop_expired(&self, map: &mut Map, order: &mut Order, now: u64) -> usize {
        let mut expired = 0;
        while let Some(place) = order.by_expiry.front() {
            match Order::live(map, place).map(|entry| entry.expires_at) {
                Some(expires_at) if expires_at > now => break,
                Some(_) => {
                    map.remove_mut(&*place.key);
                    expired += 1;
                }
                None => {}
            }
            order.by_expiry.pop_front();
        }
        self.counters.expired(expired);
        if expired > 0 {
            log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "dropped {expired} expired KEKs (wiped); {} KEKs cached",
                map.size()
            );
        }
        expired
    }

    /// Evicts one entry by the CLOCK algorithm: from the hand, a referenced entry has its bit
    /// cleared and goes to the back of the ring; the first unreferenced one goes. When every
    /// entry was referenced, that is the oldest, after one lap. The hand passes each entry at
    /// most once per eviction (hits racing with it cannot keep it going), and each entry it
    /// passes was hit since it last passed: O(1) amortized.
    fn evict_one(&self, map: &mut Map, order: &mut Order) {
        let mut second_chances = order.clock.len();
        while let Some(place) = order.clock.pop_front() {
            let Some(entry) = Order::live(map, &place) else {
                continue;
            };
            if second_chances > 0 && entry.referenced.load(Ordering::Relaxed) {
                entry.referenced.store(false, Ordering::Relaxed);
                second_chances -= 1;
                order.clock.push_back(place);
                continue;
            }
            map.remove_mut(&*place.key);
            self.counters.evicted(1);
            log_event!(
                LogLevel::Debug,
                TARGET_CACHE,
                "evicted the KEK of index {:?} to stay within max_entries {}",
                String::from_utf8_lossy(place.key.get(8..).unwrap_or_default()),
                self.max_entries
            );
            return;
        }
    }

    /// Drops expired entries; returns how many.
    fn purge_expired(&self) -> usize {
        let mut order = self.lock_writer();
        self.purge_expired_locked(&mut order)
    }

    fn purge_expired_locked(&self, order: &mut Order) -> usize {
        let now = self.clock.now();
        let mut map = Map::clone(&self.entries.load());
        let purged = self.drop_expired(&mut map, order, now);
        if purged > 0 {
            order.compact(&map);
            self.entries.store(Arc::new(map));
        }
        purged
    }

    /// The sweeper's visit: drops expired entries, then returns (and records) when the earliest
    /// remaining entry expires, in this clock's nanoseconds (`None`: the cache is empty).
    fn sweep(&self) -> Option<u64> {
        let mut order = self.lock_writer();
        self.purge_expired_locked(&mut order);
        // The front place is live now: `drop_expired` stops only at a live, unexpired entry.
        let next = order
            .by_expiry
            .front()
            .and_then(|place| Order::live(&self.entries.load(), place).map(|e| e.expires_at));
        order.sweeper_looks_at = next.unwrap_or(u64::MAX);
        next
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

/// Wakes the sweeper task: a first entry to expire (see `Order::sweeper_looks_at`) or the
/// cache's drop (`stop`).
#[derive(Default)]
struct SweepSignal {
    wake: Notify,
    stop: AtomicBool,
    /// Wakes by inserts, counted for the tests.
    #[cfg(test)]
    wakes: AtomicU64,
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
        #[cfg(test)]
        self.signal.wakes.fetch_add(1, Ordering::Relaxed);
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

/// The sweeper task: sleeps until the earliest expiry (or a wake by an insert, or stop), then
/// purges.
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
            core.sweep()
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
    use std::sync::atomic::AtomicUsize;

    fn cache(max_entries: usize) -> (KekCache, ManualClock) {
        let clock = ManualClock::new();
        let cache = KekCache::new(&KekCacheOptions {
            ttl: Some(Duration::from_secs(10)),
            max_entries,
            clock: Clock::Manual(clock.clone()),
            revalidate: Some(Duration::ZERO),
            stale_if_error: None,
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
            revalidate: Some(Duration::ZERO),
            stale_if_error: None,
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
    fn revalidation_intervals_above_the_bound_are_refused() {
        let options = KekCacheOptions {
            revalidate: Some(MAX_REVALIDATE + Duration::from_secs(1)),
            ..KekCacheOptions::default()
        };
        let err = KekCache::new(&options).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert_eq!(
            err.message(),
            "the KEK envelope revalidation interval must be at most 3600s, not 3601s"
        );
        let at_bound = KekCacheOptions {
            revalidate: Some(MAX_REVALIDATE),
            ..KekCacheOptions::default()
        };
        let cache = KekCache::new(&at_bound).unwrap();
        assert_eq!(cache.revalidate_interval(), MAX_REVALIDATE);
    }

    #[test]
    fn a_hit_past_the_revalidation_interval_is_stale_until_confirmed() {
        let clock = ManualClock::new();
        let cache = KekCache::new(&KekCacheOptions {
            ttl: Some(Duration::from_secs(60)),
            max_entries: 10,
            clock: Clock::Manual(clock.clone()),
            revalidate: Some(Duration::from_secs(2)),
            stale_if_error: None,
        })
        .unwrap();
        let storage = StorageConfig::memory();
        let location = storage.location();
        let kek = Kek::from_slice(&[7; 32]).unwrap();
        cache.insert(location, "idx", &kek, [1; 32], cache.ticket(location));
        let mut out = [0u8; 32];
        assert!(matches!(cache.probe(location, "idx", &mut out), Probe::Hit));
        clock.advance(Duration::from_millis(1999));
        assert!(matches!(cache.probe(location, "idx", &mut out), Probe::Hit));
        clock.advance(Duration::from_millis(1));
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Stale
        ));
        // The same envelope: confirmed, fresh for another interval.
        assert!(cache
            .confirm(location, "idx", &[1; 32], cache.ticket(location))
            .is_some());
        assert!(matches!(cache.probe(location, "idx", &mut out), Probe::Hit));
        clock.advance(Duration::from_secs(2));
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Stale
        ));
        // Another envelope: the entry goes.
        assert!(cache
            .confirm(location, "idx", &[2; 32], cache.ticket(location))
            .is_none());
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Miss
        ));
        // Never fresh past the TTL: the last interval before expiry is cut short.
        cache.insert(location, "idx", &kek, [1; 32], cache.ticket(location));
        clock.advance(Duration::from_secs(59));
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Stale
        ));
        assert!(cache
            .confirm(location, "idx", &[1; 32], cache.ticket(location))
            .is_some());
        clock.advance(Duration::from_secs(1));
        assert!(matches!(
            cache.probe(location, "idx", &mut out),
            Probe::Miss
        ));
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

    fn kek(byte: u8) -> Kek {
        Kek::from_slice(&[byte; 32]).unwrap()
    }

    /// Inserts `kek` for `index` under a ticket taken now.
    fn put(cache: &KekCache, location: &StorageLocation, index: &str, kek: &Kek) {
        cache.insert(location, index, kek, [1; 32], cache.ticket(location));
    }

    fn hit(cache: &KekCache, location: &StorageLocation, index: &str) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        matches!(cache.probe(location, index, &mut out), Probe::Hit).then_some(out)
    }

    /// The writers' queue lengths (expiry, clock).
    fn queue_lengths(cache: &KekCache) -> (usize, usize) {
        let order = cache.core.lock_writer();
        (order.by_expiry.len(), order.clock.len())
    }

    #[test]
    fn a_hundred_thousand_entries_fill_hit_and_are_all_invalidated() {
        const COUNT: usize = 100_000;
        let (cache, _clock) = cache(COUNT);
        let storage = StorageConfig::memory();
        let location = storage.location();
        for i in 0..COUNT {
            put(&cache, location, &format!("index-{i}"), &kek(i as u8));
        }
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.evictions), (COUNT as u64, 0));
        for i in (0..COUNT).step_by(997) {
            assert_eq!(
                hit(&cache, location, &format!("index-{i}")),
                Some([i as u8; 32])
            );
        }
        assert_eq!(queue_lengths(&cache), (COUNT, COUNT));
        assert_eq!(cache.invalidate_all(), COUNT);
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(queue_lengths(&cache), (0, 0));
        for i in (0..COUNT).step_by(997) {
            assert_eq!(hit(&cache, location, &format!("index-{i}")), None);
        }
        // The cache works as before.
        put(&cache, location, "index-0", &kek(9));
        assert_eq!(hit(&cache, location, "index-0"), Some([9; 32]));
    }

    #[test]
    fn the_bound_evicts_the_oldest_entry_not_hit_since_the_hand_passed() {
        let (cache, _clock) = cache(3);
        let storage = StorageConfig::memory();
        let location = storage.location();
        for (name, byte) in [("a", 1), ("b", 2), ("c", 3)] {
            put(&cache, location, name, &kek(byte));
        }
        assert!(hit(&cache, location, "a").is_some());
        assert!(hit(&cache, location, "c").is_some());
        put(&cache, location, "d", &kek(4)); // a and c get a second chance: b goes
        assert_eq!(hit(&cache, location, "b"), None);
        put(&cache, location, "e", &kek(5)); // c was hit since the hand passed it; a was not
        assert_eq!(hit(&cache, location, "a"), None);
        for name in ["c", "d", "e"] {
            assert!(hit(&cache, location, name).is_some(), "{name}");
        }
        // The ring is now d, c (sent back when e came), e. Every entry hit: after one lap, the
        // one at the hand goes.
        put(&cache, location, "f", &kek(6));
        assert_eq!(hit(&cache, location, "d"), None);
        for name in ["c", "e", "f"] {
            assert!(hit(&cache, location, name).is_some(), "{name}");
        }
        assert_eq!(cache.stats().evictions, 3);
    }

    #[test]
    fn a_full_cache_evicts_in_insertion_order_and_keeps_the_newest() {
        let (cache, _clock) = cache(1_000);
        let storage = StorageConfig::memory();
        let location = storage.location();
        for i in 0..10_000 {
            put(&cache, location, &format!("index-{i}"), &kek(i as u8));
        }
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.evictions), (1_000, 9_000));
        for i in 0..10_000 {
            let cached = hit(&cache, location, &format!("index-{i}"));
            assert_eq!(cached.is_some(), i >= 9_000, "index-{i}");
        }
        let (by_expiry, clock) = queue_lengths(&cache);
        assert!(by_expiry <= 2 * 1_000 + COMPACTION_SLACK, "{by_expiry}");
        assert!(clock <= 2 * 1_000 + COMPACTION_SLACK, "{clock}");
    }

    #[test]
    fn replacing_and_removing_entries_keeps_the_queues_bounded() {
        let (cache, _clock) = cache(10);
        let storage = StorageConfig::memory();
        let location = storage.location();
        for round in 0..10_000u32 {
            put(&cache, location, "hot", &kek(round as u8));
            put(&cache, location, "other", &kek(round as u8));
            if round % 3 == 0 {
                cache.invalidate(location, "other");
            }
            let (by_expiry, clock) = queue_lengths(&cache);
            assert!(by_expiry <= 2 * 2 + COMPACTION_SLACK, "{by_expiry}");
            assert!(clock <= 2 * 2 + COMPACTION_SLACK, "{clock}");
        }
        // The latest insert is what is cached.
        assert_eq!(hit(&cache, location, "hot"), Some([(9_999u32 as u8); 32]));
        assert_eq!(cache.stats().evictions, 0);
    }

    #[test]
    fn entries_expire_in_insertion_order_also_after_replacement() {
        let (cache, clock) = cache(10);
        let storage = StorageConfig::memory();
        let location = storage.location();
        put(&cache, location, "a", &kek(1));
        clock.advance(Duration::from_secs(4));
        put(&cache, location, "b", &kek(2));
        clock.advance(Duration::from_secs(4));
        put(&cache, location, "a", &kek(3)); // replaces a: expires at 18 s, b at 14 s
        clock.advance(Duration::from_secs(6)); // 14 s
        assert_eq!(cache.purge_expired(), 1);
        assert_eq!(hit(&cache, location, "b"), None);
        assert_eq!(hit(&cache, location, "a"), Some([3; 32]));
        clock.advance(Duration::from_secs(4)); // 18 s
        assert_eq!(cache.purge_expired(), 1);
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.expirations), (0, 2));
        assert_eq!(queue_lengths(&cache).0, 0);
    }

    #[test]
    fn concurrent_fills_never_outlive_an_invalidation() {
        const WRITERS: usize = 2;
        const ROUNDS: usize = 2_000;
        const INDEXES: usize = 50;
        let (cache, _clock) = cache(INDEXES);
        let storage = StorageConfig::memory();
        let location = storage.location();
        let finished = AtomicUsize::new(0);
        let index = |i: usize| format!("index-{}", i % INDEXES);
        // The invalidation epoch right after the last invalidation covering each index.
        let last_invalidation = std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let (cache, finished) = (&cache, &finished);
                scope.spawn(move || {
                    for round in 0..ROUNDS {
                        // A fill: ticket first, KEK later. The KEK records the epoch it began in.
                        let ticket = cache.ticket(location);
                        let mut bytes = [0u8; 32];
                        bytes[..8].copy_from_slice(&ticket.epoch.to_le_bytes());
                        let kek = Kek::from_slice(&bytes).unwrap();
                        cache.insert(location, &index(writer + round), &kek, [1; 32], ticket);
                    }
                    finished.fetch_add(1, Ordering::AcqRel);
                });
            }
            let (cache, finished) = (&cache, &finished);
            scope
                .spawn(move || {
                    // Only this thread invalidates, so the epoch after its call is its own.
                    let mut last = [0u64; INDEXES];
                    let mut round = 0;
                    while finished.load(Ordering::Acquire) < WRITERS {
                        if round % 4 == 0 {
                            cache.invalidate_all();
                            last = [cache.core.epoch.load(Ordering::Acquire); INDEXES];
                        } else {
                            cache.invalidate(location, &index(round));
                            last[round % INDEXES] = cache.core.epoch.load(Ordering::Acquire);
                        }
                        round += 1;
                    }
                    last
                })
                .join()
                .unwrap()
        });
        let mut out = [0u8; 32];
        for (i, &invalidated_at) in last_invalidation.iter().enumerate() {
            if let Probe::Hit = cache.probe(location, &index(i), &mut out) {
                let began = u64::from_le_bytes(out[..8].try_into().unwrap());
                assert!(
                    began >= invalidated_at,
                    "index-{i}: {began} < {invalidated_at}"
                );
            }
        }
        let entries = cache.stats().entries as usize;
        assert!(entries <= INDEXES);
        assert!(queue_lengths(&cache).0 <= 2 * entries + COMPACTION_SLACK);
    }

    #[test]
    fn the_sweeper_is_woken_only_by_an_insert_into_an_empty_cache() {
        let cache = KekCache::new(&KekCacheOptions {
            ttl: Some(Duration::from_secs(600)),
            max_entries: 100,
            clock: Clock::System,
            revalidate: Some(Duration::ZERO),
            stale_if_error: None,
        })
        .unwrap();
        let storage = StorageConfig::memory();
        let location = storage.location();
        for i in 0..50 {
            put(&cache, location, &format!("index-{i}"), &kek(1));
        }
        let sweeper = cache.sweeper.as_ref().unwrap();
        // Later inserts expire later than the first: the sweeper already looks then.
        assert_eq!(sweeper.signal.wakes.load(Ordering::Relaxed), 1);
        cache.invalidate_all();
        put(&cache, location, "again", &kek(2));
        // The sweeper still looks at the first entry's expiry, which is earlier.
        assert_eq!(sweeper.signal.wakes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_insert_wakes_the_sweeper_only_before_its_next_look() {
        let (cache, clock) = cache(10);
        let storage = StorageConfig::memory();
        let location = storage.location();
        assert_eq!(cache.core.lock_writer().sweeper_looks_at, u64::MAX);
        put(&cache, location, "a", &kek(1));
        let first = cache.core.lock_writer().sweeper_looks_at;
        assert_eq!(first, 10_000_000_000);
        clock.advance(Duration::from_secs(1));
        put(&cache, location, "b", &kek(2));
        assert_eq!(cache.core.lock_writer().sweeper_looks_at, first);
        // A visit records the earliest expiry left, or "only when woken" for an empty cache.
        assert_eq!(cache.core.sweep(), Some(first));
        clock.advance(Duration::from_secs(10));
        assert_eq!(cache.core.sweep(), None);
        assert_eq!(cache.core.lock_writer().sweeper_looks_at, u64::MAX);
        assert_eq!(cache.stats().expirations, 2);
    }
}
