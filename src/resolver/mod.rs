//! [`KekResolver`]: the service layer's hot path. One call turns (storage, index name) into the
//! index's KEK — from the cache when it can, else by reading the envelope and unwrapping it
//! through the [`KmsClient`] — plus the operations that change which KEK an index has: creation
//! in either mode, re-wrap, drift checks, and batch warm-up.

mod rotate_new_kek;
mod rotation;
mod single_flight;
mod unwrap_counts;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

pub use rotate_new_kek::{RotateKekError, Rotation, RotationState};
pub use rotation::{DriftEntry, DriftStatus, KeySnapshot};

use crate::audit::{self, AuditKey, AuditOptions, Auditor};
use crate::blob::{KmsBlob, Provider};
use crate::cache::{CacheStats, KekCache, KekCacheOptions, Probe};
use crate::envelope::{create_index_kms, read_envelope, reread_envelope, Reread};
use crate::error::{Error, ErrorKind, Result};
use crate::index_name::IndexName;
use crate::kms::{Kek, KmsClient};
use crate::logging::{log_event, LogLevel, TARGET_RESOLVER};
use crate::storage::StorageConfig;
use single_flight::Flights;
use unwrap_counts::{Due, UnwrapCounts};

/// Most worker threads one [`KekResolver::warm_up`] may use.
pub const MAX_WARM_UP_PARALLELISM: usize = 256;

/// Resolves, creates and rotates index KEKs through a [`KmsClient`], caching unwrapped KEKs.
///
/// Cheap to clone (clones share the cache and client). Thread-safe: any number of threads may
/// call any method at once; concurrent misses on one index make one provider call (single
/// flight), misses on different indexes run in parallel. Only KEKs unwrapped by a provider are
/// cached — never a caller-supplied (`none`) key. See [`crate::cache`] for keying, expiry and
/// eviction. Owns no threads: the cache's sweeper is a task on the process-wide runtime.
///
/// **fork.** In a child forked after the resolver was created, resolve, create, re-wrap and drift
/// fail at once with `ForkedProcess` (cached KEKs are not served there), the invalidation and purge
/// methods do nothing and return 0 / `false`, and dropping it wipes its KEKs without touching the
/// parent's runtime. Create a new client and resolver in the child.
#[derive(Clone)]
pub struct KekResolver {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set by [`KekResolver::set_audit`]: every store this resolver acts on is audited.
    audit: RwLock<Option<Arc<Auditor>>>,
    /// The auditor of the registry's `audit:` setting, with the registry generation it was made
    /// for (so its memory of repeated observations lasts while the setting does).
    registry_audit: std::sync::Mutex<Option<(u64, Option<Arc<Auditor>>)>>,
    client: KmsClient,
    cache: KekCache,
    flights: Flights,
    /// The client's registry generation the cache was filled under.
    registry_seen: AtomicU64,
    /// Per-index unwrap counts not yet appended (audited stores with an interval only).
    unwrap_counts: UnwrapCounts,
}

impl Drop for Inner {
    /// Appends the unwrap counts still pending (not in a forked child, whose stores and runtime
    /// are the parent's).
    fn drop(&mut self) {
        if self.cache.owner().is_current() {
            append_due(self.unwrap_counts.take_all(audit::now_ms()));
        }
    }
}

/// Appends the `unwraps` records of closed windows (no lock held); returns how many were.
fn append_due(due: Vec<Due>) -> usize {
    due.into_iter()
        .map(Due::append)
        .filter(|appended| *appended)
        .count()
}

impl KekResolver {
    /// A resolver over `client` (sharing its registry) with a cache configured by `options`.
    ///
    /// Errors: `InvalidConfig` (`max_entries` 0, `INDEX_KEK_CACHE_TTL_SECONDS` or
    /// `CYB_KEK_REVALIDATE_SECS` not a whole number, a revalidation interval above an hour).
    pub fn new(client: KmsClient, options: KekCacheOptions) -> Result<KekResolver> {
        Ok(KekResolver {
            inner: Arc::new(Inner {
                audit: RwLock::new(None),
                registry_audit: std::sync::Mutex::new(None),
                registry_seen: AtomicU64::new(client.registry_generation()),
                client,
                cache: KekCache::new(&options)?,
                flights: Flights::default(),
                unwrap_counts: UnwrapCounts::default(),
            }),
        })
    }

    /// Turns the custody audit on (`Some`) or off (`None`) for every store this resolver acts
    /// on: its creates, re-wraps, drift findings and refused keys are appended to the audit log
    /// of that store, naming `options`' principal (see [`StorageConfig::with_audit`]). A store
    /// that is itself audited keeps its own settings. Without this, the registry's top-level
    /// `audit:` setting applies, if it has one. Thread-safe; affects calls that start after it.
    ///
    /// Errors: `InvalidArgument` naming the bad option (nothing changes then).
    pub fn set_audit(&self, options: Option<&AuditOptions>) -> Result<()> {
        let auditor = options.map(Auditor::new).transpose()?;
        *self
            .inner
            .audit
            .write()
            .unwrap_or_else(PoisonError::into_inner) = auditor;
        Ok(())
    }

    /// `storage` audited as this resolver's audit setting says (it is returned as it is if it
    /// is audited itself, or if the resolver has no audit setting).
    pub(crate) fn audited<'a>(&self, storage: &'a StorageConfig) -> Cow<'a, StorageConfig> {
        if storage.auditor().is_some() {
            return Cow::Borrowed(storage);
        }
        let own = self
            .inner
            .audit
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match own.or_else(|| self.registry_auditor()) {
            Some(auditor) => Cow::Owned(storage.with_auditor(auditor)),
            None => Cow::Borrowed(storage),
        }
    }

    /// The auditor of the client's registry `audit:` setting, if it has one.
    fn registry_auditor(&self) -> Option<Arc<Auditor>> {
        let generation = self.inner.client.registry_generation();
        let mut cached = self
            .inner
            .registry_audit
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((seen, auditor)) if *seen == generation => auditor.clone(),
            _ => {
                // The registry checked the setting when it was set: a failure here is a
                // setting that cannot describe an actor, so audit stays off for it.
                let auditor = self
                    .inner
                    .client
                    .registry()
                    .audit()
                    .and_then(|options| Auditor::new(options).ok());
                *cached = Some((generation, auditor.clone()));
                auditor
            }
        }
    }

    /// Appends the audit record of a refusal `error` of `key` (a key the trust rules refuse, a
    /// provider refusal that signals revocation) to `storage`'s audit, if it is audited and the
    /// error is one the audit records.
    pub(crate) fn observe_refusal(
        &self,
        storage: &StorageConfig,
        index: &IndexName,
        operation: &str,
        key: impl FnOnce() -> AuditKey,
        error: &Error,
    ) {
        if !audit::is_audited_refusal(error.kind()) {
            return;
        }
        let storage = self.audited(storage);
        if let Some(event) = audit::refusal_event(operation, key(), error) {
            audit::record_observation(&storage, index.as_str(), event);
        }
    }

    /// The audit key of registry slot `slot` (just its name if it is unknown).
    fn slot_audit_key(&self, slot: &str) -> AuditKey {
        match self.client().registry().get(slot) {
            Some(s) => AuditKey::new(slot, s.provider.as_str(), &s.key_id, &s.region),
            None => AuditKey {
                slot: slot.to_owned(),
                ..AuditKey::default()
            },
        }
    }

    /// The client this resolver unwraps with (its registry is the one used for drift checks).
    pub fn client(&self) -> &KmsClient {
        &self.inner.client
    }

    /// The cache's TTL.
    pub fn ttl(&self) -> std::time::Duration {
        self.inner.cache.ttl()
    }

    /// The cache's envelope revalidation interval (zero: off).
    pub fn revalidate_interval(&self) -> std::time::Duration {
        self.inner.cache.revalidate_interval()
    }

    /// Whether a failed revalidation check may serve the cached KEK (stale-if-error).
    pub fn stale_if_error(&self) -> bool {
        self.inner.cache.stale_if_error()
    }

    /// The KEK of `index_name`, whose envelope is in `storage`.
    ///
    /// A hit (cached, unexpired, no write to `storage` through this process since it was
    /// checked, and checked within the revalidation interval if one is set) touches neither
    /// storage nor the provider. Otherwise the envelope is read; if it is
    /// the one the cached KEK came from, that KEK is reused; else it is unwrapped (one provider
    /// call shared by every concurrent caller) and cached.
    ///
    /// Errors: `InvalidArgument` (bad name), the envelope read's (`NotFound`, `Corrupt`, `Io`,
    /// `StorageUnavailable`, `StorageAccessDenied`), `KekNotWrapped` (provider `none`: the caller
    /// holds the KEK), and the unwrap's (`UnknownSlot`, `DecryptFailed`, `KmsAccessDenied`,
    /// `KmsKeyNotFound`, `KmsKeyDisabled`, `KmsThrottled`, `KmsUnavailable`, `KmsBadResponse`,
    /// `WrapKeySize`); `ForkedProcess` (resolver created before this process was forked). Errors
    /// are never cached.
    pub fn resolve(&self, storage: &StorageConfig, index_name: &str) -> Result<Kek> {
        let mut bytes = zeroize::Zeroizing::new([0u8; Kek::LEN]);
        self.resolve_into(storage, index_name, &mut bytes)?;
        Kek::from_slice(&*bytes)
    }

    /// As [`KekResolver::resolve`], writing the KEK into `out` (untouched on error). This is the
    /// allocation-free hot path the C ABI uses; wipe `out` when done with it.
    #[inline]
    pub fn resolve_into(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        out: &mut [u8; Kek::LEN],
    ) -> Result<()> {
        let generation = self.inner.client.registry_generation();
        if generation != self.inner.registry_seen.load(Ordering::Acquire) {
            self.registry_changed(generation);
        }
        let location = storage.location();
        match self.inner.cache.probe(location, index_name, out) {
            Probe::Hit => Ok(()),
            Probe::Miss | Probe::Stale => self.resolve_slow(storage, index_name, out),
        }
    }

    /// The client's registry changed (a reload, a slot added or changed, a previous key
    /// trusted): KEKs cached under the old registry may come from keys it no longer trusts, so
    /// they are all dropped (and fills in flight are not cached).
    #[cold]
    fn registry_changed(&self, generation: u64) {
        // Flush first, then record: until `registry_seen` moves, every caller keeps taking this
        // path, so none can hit an entry cached under the old registry in between.
        let dropped = self.inner.cache.invalidate_all();
        self.inner
            .registry_seen
            .fetch_max(generation, Ordering::AcqRel);
        log_event!(
            LogLevel::Info,
            TARGET_RESOLVER,
            "the KMS registry changed (generation {generation}): dropped {dropped} cached KEKs"
        );
    }

    #[cold]
    fn resolve_slow(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        out: &mut [u8; Kek::LEN],
    ) -> Result<()> {
        self.check_process()?;
        let inner = &*self.inner;
        let counters = inner.cache.counters();
        counters.miss();
        log_event!(
            LogLevel::Trace,
            TARGET_RESOLVER,
            "KEK cache miss for index {}: reading its envelope",
            crate::error::quoted_prefix(index_name)
        );
        // Unwrap-count windows this fill closed, appended once the flight is over.
        let mut due = Vec::new();
        let result = IndexName::new(index_name).and_then(|index| {
            let location = storage.location();
            let ticket = inner.cache.ticket(location);
            inner
                .flights
                .run(location.id(), index.as_str(), ticket, || {
                    let name = index.as_str();
                    let discard_if_gone = |e: &Error| {
                        if e.kind() == ErrorKind::NotFound {
                            inner.cache.discard(location, name);
                        }
                    };
                    // With a cached entry, ask the store whether its envelope changed (S3: a
                    // conditional GET); else, or if the entry went meanwhile, read it whole.
                    let known = inner.cache.known_revision(location, name);
                    let reread = match reread_envelope(storage, &index, known.as_ref()) {
                        Ok(reread) => reread,
                        Err(e) => {
                            discard_if_gone(&e);
                            return self.serve_stale_on_error(
                                storage,
                                name,
                                known.is_some(),
                                ticket,
                                e,
                            );
                        }
                    };
                    let (blob, revision) = match reread {
                        Reread::Same(revision) => {
                            if let Some(kek) =
                                inner
                                    .cache
                                    .confirm(location, name, &revision.digest, ticket)
                            {
                                inner.cache.remember_etag(location, name, &revision);
                                return Ok(kek);
                            }
                            read_envelope(storage, &index).inspect_err(discard_if_gone)?
                        }
                        Reread::Other(blob, revision) => (blob, revision),
                    };
                    if let Some(kek) = inner
                        .cache
                        .confirm(location, name, &revision.digest, ticket)
                    {
                        inner.cache.remember_etag(location, name, &revision);
                        return Ok(kek);
                    }
                    let kek = self.unwrap(&index, &blob).inspect_err(|e| {
                        self.observe_refusal(
                            storage,
                            &index,
                            "resolve",
                            || AuditKey::of_blob(&blob),
                            e,
                        )
                    })?;
                    due = self.count_unwrap(storage, name);
                    inner
                        .cache
                        .insert(location, name, &kek, revision.digest, ticket);
                    inner.cache.remember_etag(location, name, &revision);
                    Ok(kek)
                })
        });
        if !due.is_empty() {
            append_due(due);
        }
        match result {
            Ok(kek) => {
                out.copy_from_slice(kek.as_bytes());
                Ok(())
            }
            Err(e) => {
                counters.error();
                log_event!(
                    LogLevel::Warn,
                    TARGET_RESOLVER,
                    "resolving a KEK failed ({:?}): {}",
                    e.kind(),
                    e.message()
                );
                Err(e)
            }
        }
    }

    /// A revalidation check of a cached `index_name` (`had_entry`) failed with `error`: serves
    /// the cached KEK if the error is a transient storage one (`StorageUnavailable`, `Io`) and
    /// the cache's stale-if-error rules allow it (see [`KekCacheOptions::stale_if_error`]),
    /// logging a warning that names the index and the error kind; else returns `error`.
    #[cold]
    fn serve_stale_on_error(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        had_entry: bool,
        ticket: crate::cache::Ticket,
        error: Error,
    ) -> Result<Kek> {
        let transient = matches!(error.kind(), ErrorKind::StorageUnavailable | ErrorKind::Io);
        let cache = &self.inner.cache;
        if !had_entry || !transient {
            return Err(error);
        }
        let location = storage.location();
        let Some(kek) = cache.serve_stale(location, index_name, ticket) else {
            return Err(error);
        };
        let left = cache.time_to_live(location, index_name).unwrap_or_default();
        log_event!(
            LogLevel::Warn,
            TARGET_RESOLVER,
            "index {}: checking its KMS envelope failed ({:?}); serving the cached KEK \
             (stale-if-error) for at most {} s more, checking again in {} s: {}",
            crate::error::quoted_prefix(index_name),
            error.kind(),
            left.as_secs(),
            cache.revalidate_interval().as_secs().min(left.as_secs()),
            error.message()
        );
        Ok(kek)
    }

    /// Unwraps through the client, counting the provider call if one is made (not for `none`
    /// envelopes or unknown slots, which fail before any).
    fn unwrap(&self, index: &IndexName, blob: &KmsBlob) -> Result<Kek> {
        let counters = self.inner.cache.counters();
        self.inner
            .client
            .unwrap_kek_counted(index.as_str(), blob, || counters.provider_call())
    }

    /// Counts a provider unwrap of `index_name` for the unwrap counts of the audit, if the store
    /// is audited (itself, else as this resolver's or the registry's setting says) with an
    /// interval. Returns the windows this closed, to append once no lock is held.
    fn count_unwrap(&self, storage: &StorageConfig, index_name: &str) -> Vec<Due> {
        let audited = self.audited(storage);
        match audited.auditor_arc() {
            Some(auditor) if auditor.unwrap_counts().is_some() => {
                self.inner
                    .unwrap_counts
                    .note(&audited, auditor, index_name, audit::now_ms())
            }
            _ => Vec::new(),
        }
    }

    /// Appends the per-index unwrap counts not yet appended (see
    /// [`crate::audit::AuditOptions::unwrap_counts`]): one `unwraps` record per index counted
    /// since its last record, to the audit log of its store. Dropping the last clone of the
    /// resolver does the same. Best effort as every observation: a record that cannot be
    /// appended is logged on `cyborgdb_kms::audit` and its counts are dropped. Returns how many
    /// records were appended.
    ///
    /// Errors: `ForkedProcess` (resolver created before this process was forked; the counts
    /// stay the parent's).
    pub fn flush_unwrap_counts(&self) -> Result<usize> {
        self.check_process()?;
        Ok(append_due(
            self.inner.unwrap_counts.take_all(audit::now_ms()),
        ))
    }

    /// Wraps through the client, counting the provider call if one is made.
    fn wrap(&self, index: &IndexName, slot: &str, kek: &Kek) -> Result<KmsBlob> {
        let counters = self.inner.cache.counters();
        self.inner
            .client
            .wrap_kek_counted(index.as_str(), slot, kek, || counters.provider_call())
    }

    /// Drops the cached KEK of `index_name` in `storage` (if any) and makes every fill in
    /// progress skip caching its result. Returns whether an entry was dropped. Invalid names are
    /// never cached, so they return `false`.
    pub fn invalidate(&self, storage: &StorageConfig, index_name: &str) -> bool {
        self.inner.cache.invalidate(storage.location(), index_name)
    }

    /// Drops every cached KEK; returns how many were dropped.
    pub fn invalidate_all(&self) -> usize {
        self.inner.cache.invalidate_all()
    }

    /// Drops expired entries now (the sweeper does it at expiry time on the system clock).
    /// Returns how many.
    pub fn purge_expired(&self) -> usize {
        self.inner.cache.purge_expired()
    }

    /// The cache's counters and current size.
    pub fn stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// `ForkedProcess` in a child forked after this resolver was created.
    fn check_process(&self) -> Result<()> {
        self.inner.cache.owner().check("KEK resolver")
    }

    /// Creates the envelope of a new index, in one of the two documented modes, and returns the
    /// index's KEK:
    ///
    /// - **KMS-backed** (`kms_name` given): a fresh random KEK is wrapped through that registry
    ///   slot and the envelope strictly inserted. If the insert fails nothing is stored and the
    ///   KEK is wiped.
    /// - **Caller-supplied** (`index_key` given, 32 bytes): an envelope with provider `none` and
    ///   no key material is strictly inserted; the caller keeps supplying the key.
    ///
    /// Errors: `InvalidArgument` — `"index_key and kms_name are mutually exclusive"` if both are
    /// given, also if neither is, for a bad name, or an `index_key` that is not 32 bytes;
    /// `AlreadyExists` (the stored envelope is untouched); `UnknownSlot`; the wrap's provider
    /// errors; the store's errors; `ForkedProcess`. With audit on (the store's or the
    /// resolver's), a `created` record is appended before the envelope is stored; if that
    /// append fails, nothing is stored and its error is returned.
    pub fn create_index(
        &self,
        storage: &StorageConfig,
        index_name: &str,
        kms_name: Option<&str>,
        index_key: Option<&[u8]>,
    ) -> Result<Kek> {
        self.check_process()?;
        let index = IndexName::new(index_name)?;
        let storage = &*self.audited(storage);
        match (kms_name, index_key) {
            (Some(_), Some(_)) => Err(Error::invalid_argument(
                "index_key and kms_name are mutually exclusive",
            )),
            (None, None) => Err(Error::invalid_argument(format!(
                "index {index}: one of kms_name (KMS-backed) or index_key (caller-supplied) is required"
            ))),
            (Some(slot), None) => {
                let kek = Kek::generate();
                let blob = self.wrap(&index, slot, &kek).inspect_err(|e| {
                    self.observe_refusal(storage, &index, "create", || self.slot_audit_key(slot), e)
                })?;
                create_index_kms(storage, index.as_str(), &blob)?;
                Ok(kek)
            }
            (None, Some(key)) => {
                let kek = Kek::from_slice(key)
                    .map_err(|e| e.context(format_args!("index {index}: index_key")))?;
                let blob = KmsBlob {
                    provider: Provider::None.as_str().to_owned(),
                    version: 1,
                    ..KmsBlob::default()
                };
                create_index_kms(storage, index.as_str(), &blob)?;
                Ok(kek)
            }
        }
    }

    /// Resolves each of `index_names` into the cache, using up to `parallelism` threads, and
    /// returns one result per name, in order. One failure does not stop the others.
    ///
    /// Errors (of the whole call): `InvalidArgument` if `parallelism` is 0 or above
    /// [`MAX_WARM_UP_PARALLELISM`]. Per index: as [`KekResolver::resolve`].
    pub fn warm_up<S: AsRef<str> + Sync>(
        &self,
        storage: &StorageConfig,
        index_names: &[S],
        parallelism: usize,
    ) -> Result<Vec<Result<()>>> {
        if parallelism == 0 || parallelism > MAX_WARM_UP_PARALLELISM {
            return Err(Error::invalid_argument(format!(
                "warm-up parallelism must be 1..={MAX_WARM_UP_PARALLELISM}, not {parallelism}"
            )));
        }
        run_parallel(index_names, parallelism, |name| {
            self.resolve(storage, name.as_ref()).map(drop)
        })
    }
}

/// Runs `work` on every item of `items` with up to `parallelism` scoped threads — each takes
/// the next unvisited item — and returns the results in item order: the worker pool behind
/// [`KekResolver::warm_up`], for bulk tools (the `cyborgdb-kms` CLI's `--parallel`). A panic in
/// `work` is resumed on the caller's thread after the other workers finish.
///
/// Errors: `InvalidArgument` if `parallelism` is 0 or above [`MAX_WARM_UP_PARALLELISM`].
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    parallelism: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Result<Vec<R>> {
    if parallelism == 0 || parallelism > MAX_WARM_UP_PARALLELISM {
        return Err(Error::invalid_argument(format!(
            "parallelism must be 1..={MAX_WARM_UP_PARALLELISM}, not {parallelism}"
        )));
    }
    // Each worker takes the next unvisited position and keeps its (position, result) pairs.
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, work(item)));
        }
    };
    let threads = parallelism.min(items.len());
    let mut done = if threads <= 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

impl std::fmt::Debug for KekResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KekResolver")
            .field("ttl", &self.ttl())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
