//! [`KmsClient`]: wraps new KEKs for indexes and unwraps them again through the registry's slots.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::aws_clients::{AwsClients, KeyRef, ServiceEndpoints};
use super::kek::Kek;
use super::provider::{
    AeadProvider, AwsKmsProvider, KekProvider, LocalMasterKey, ReEncrypted, SecretsManagerKey,
};
use super::registry::{is_multi_region_key_id, key_id_in_region, KeyIdentity, Registry, Slot};
use crate::aws::{
    check_endpoint_url, check_endpoint_variables, cleartext_endpoint, resolve_retry, AwsTimeouts,
    KMS_ENDPOINT_VARIABLES,
};
use crate::blob::{KmsBlob, Provider};
use crate::error::{quoted_prefix, Error, ErrorKind, Result};
use crate::index_name::IndexName;
use crate::logging::{log_event, LogLevel, TARGET_KMS};
use crate::runtime::SharedRuntime;

/// Counters of a [`KmsClient`] since it was created (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KmsClientStats {
    /// Times an unwrap moved on from an unavailable region of a multi-Region key to the next one
    /// ([`crate::Slot::replica_regions`]); an unwrap that tries three regions counts 2.
    pub region_failovers: u64,
    /// Unwraps answered by a region other than the one the envelope records, after a failover.
    pub replica_unwraps: u64,
}

/// How a [`KmsClient`] reaches AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsClientOptions {
    /// Connect / attempt / operation timeouts and retry attempts and mode of every AWS call.
    pub timeouts: AwsTimeouts,
    /// One endpoint for every AWS service the client calls (KMS, Secrets Manager, STS), e.g. an
    /// emulator. `None`: the SDK's resolution, which honours `AWS_ENDPOINT_URL` and
    /// `AWS_ENDPOINT_URL_KMS` / `_SECRETS_MANAGER` / `_STS`. A service's own option below wins.
    pub endpoint_url: Option<String>,
    /// The KMS endpoint (e.g. a KMS VPC interface endpoint), instead of `endpoint_url`.
    pub kms_endpoint_url: Option<String>,
    /// The KMS endpoint of particular regions (region name → URL), instead of `kms_endpoint_url`
    /// and `endpoint_url` for keys in that region: a KMS VPC interface endpoint per region, for
    /// the replicas of a multi-Region key ([`crate::Slot::replica_regions`]). Checked like
    /// `kms_endpoint_url`. Empty by default.
    pub kms_region_endpoint_urls: BTreeMap<String, String>,
    /// The Secrets Manager endpoint, instead of `endpoint_url`.
    pub secrets_manager_endpoint_url: Option<String>,
    /// The STS endpoint (used to assume slots' roles), instead of `endpoint_url`.
    pub sts_endpoint_url: Option<String>,
    /// Lets slots and envelopes use the `local` provider (a master key in a file or an
    /// environment variable: development and examples only). Off by default: a client that did
    /// not enable it refuses every `local` wrap and unwrap with `UntrustedKey`, so stored data can
    /// never switch a production client onto a key from the filesystem.
    pub allow_local_provider: bool,
    /// Allows a plain `http://` endpoint (option or `AWS_ENDPOINT_URL*`) on a host other than
    /// this machine. Off by default: `kms:Encrypt` requests carry KEKs, `Decrypt` and
    /// `GetSecretValue` answers carry KEKs and wrap keys, and STS answers carry credentials, so a
    /// client refuses to send them in clear text across a network (`InvalidConfig`). Loopback
    /// (`localhost`, 127.0.0.0/8, `[::1]`) is always allowed, for emulators.
    pub allow_insecure_http: bool,
}

/// A thread-safe KMS client: the registry of slots and AWS SDK clients built once per (region,
/// role) and reused. It owns no threads or descriptors: calls run on the library's process-wide
/// runtime, started by the first call that needs it.
///
/// Cheap to clone (clones share everything); any number of threads may call it at once. The
/// blocking methods may be called from any thread, including one inside a tokio runtime.
///
/// **fork.** In a child process forked after the client was created, every wrap and unwrap fails
/// at once with `ForkedProcess` (the parent's runtime threads do not exist in the child); dropping
/// the client there is safe and touches nothing of the parent's runtime. Create a new client in
/// the child.
#[derive(Clone)]
pub struct KmsClient {
    inner: Arc<Inner>,
}

struct Inner {
    allow_local_provider: bool,
    /// Bumped by every registry change (under the registry's write lock): resolvers drop their
    /// cached KEKs when it moves, so a key that is no longer trusted is not served from a cache.
    registry_generation: AtomicU64,
    /// See [`KmsClientStats`].
    region_failovers: AtomicU64,
    replica_unwraps: AtomicU64,
    runtime: SharedRuntime,
    /// Also held by `aws_kms` and `secrets_manager`; kept here so a drop in a forked child can leak
    /// the SDK clients rather than run their destructors against the parent's runtime.
    aws_clients: Arc<AwsClients>,
    registry: RwLock<Arc<Registry>>,
    aws_kms: AwsKmsProvider,
    secrets_manager: AeadProvider<SecretsManagerKey>,
    local: AeadProvider<LocalMasterKey>,
}

impl KmsClient {
    /// A client with an empty registry. Does no network I/O: SDK clients are built on first use.
    ///
    /// Errors: `InvalidConfig` for an endpoint URL that is not a plain `http://` or `https://` URL
    /// (a well-formed host and port; no user info, query or fragment) — the `endpoint_url` option
    /// or, without it, any of `AWS_ENDPOINT_URL` / `_KMS` / `_SECRETS_MANAGER` / `_STS` (the
    /// message names it) — a plain `http://` endpoint off this machine without
    /// [`KmsClientOptions::allow_insecure_http`] (also for `kms_endpoint_url`,
    /// `secrets_manager_endpoint_url`, `sts_endpoint_url`), a zero timeout, zero or more than
    /// [`crate::MAX_ATTEMPTS_LIMIT`] attempts, or (when the options leave them unset) an unusable
    /// `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE`. An unusable `max_attempts` / `retry_mode` in the
    /// AWS profile is `InvalidConfig` from the first call that reaches AWS.
    pub fn new(options: KmsClientOptions) -> Result<KmsClient> {
        KmsClient::with_registry(Registry::new(), options)
    }

    /// A client using `registry`. Errors as [`KmsClient::new`].
    pub fn with_registry(registry: Registry, options: KmsClientOptions) -> Result<KmsClient> {
        let invalid = |why: String| Error::new(ErrorKind::InvalidConfig, why);
        let endpoints = ServiceEndpoints {
            shared: options.endpoint_url.clone(),
            kms: options.kms_endpoint_url.clone(),
            kms_by_region: options.kms_region_endpoint_urls.clone(),
            secrets_manager: options.secrets_manager_endpoint_url.clone(),
            sts: options.sts_endpoint_url.clone(),
        };
        let explicit = [
            ("endpoint_url", &endpoints.shared),
            ("kms_endpoint_url", &endpoints.kms),
            ("secrets_manager_endpoint_url", &endpoints.secrets_manager),
            ("sts_endpoint_url", &endpoints.sts),
        ];
        for (name, url) in explicit {
            if let Some(url) = url {
                check_endpoint_url(url).map_err(|why| invalid(format!("KMS {name} {why}")))?;
            }
        }
        let by_region: Vec<(String, Option<String>)> = endpoints
            .kms_by_region
            .iter()
            .map(|(region, url)| {
                let name = format!("kms_region_endpoint_urls[{}]", quoted_prefix(region));
                (name, Some(url.clone()))
            })
            .collect();
        for (name, url) in &by_region {
            let url = url.as_deref().unwrap_or_default();
            check_endpoint_url(url).map_err(|why| invalid(format!("KMS {name} {why}")))?;
        }
        if !endpoints.all_explicit() {
            check_endpoint_variables(KMS_ENDPOINT_VARIABLES)
                .map_err(|why| invalid(format!("KMS client: {why}")))?;
        }
        if !options.allow_insecure_http {
            let named = explicit.iter().map(|(name, url)| (name.to_string(), *url));
            let by_region = by_region.iter().map(|(name, url)| (name.clone(), url));
            let from_options = named.chain(by_region).find_map(|(name, url)| {
                let url = url.as_deref()?;
                cleartext_endpoint(Some(url), &[]).map(|(_, url)| (name, url))
            });
            let from_variables = match endpoints.all_explicit() {
                true => None,
                false => cleartext_endpoint(None, KMS_ENDPOINT_VARIABLES),
            };
            if let Some((source, url)) = from_options.or(from_variables) {
                return Err(invalid(format!(
                    "KMS client: {source} {} is plain http to another host: KEKs, Secrets Manager \
                     values and role credentials would cross the network in clear text; use \
                     https://, a loopback address, or set allow_insecure_http",
                    quoted_prefix(&url)
                )));
            }
        }
        options
            .timeouts
            .check()
            .map_err(|why| invalid(format!("KMS client {why}")))?;
        // AWS_MAX_ATTEMPTS / AWS_RETRY_MODE are checked now; the profile's values on first use.
        resolve_retry(&options.timeouts, None)
            .map_err(|why| invalid(format!("KMS client: {why}")))?;
        let clients = Arc::new(AwsClients::new(options.timeouts.clone(), endpoints));
        Ok(KmsClient {
            inner: Arc::new(Inner {
                allow_local_provider: options.allow_local_provider,
                registry_generation: AtomicU64::new(0),
                region_failovers: AtomicU64::new(0),
                replica_unwraps: AtomicU64::new(0),
                runtime: SharedRuntime::new("KMS client"),
                registry: RwLock::new(Arc::new(registry)),
                aws_kms: AwsKmsProvider::new(Arc::clone(&clients)),
                secrets_manager: AeadProvider(SecretsManagerKey::new(Arc::clone(&clients))),
                aws_clients: clients,
                local: AeadProvider(LocalMasterKey),
            }),
        })
    }

    /// A snapshot of the registry in use.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(
            &self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Replaces the whole registry at once; calls in flight finish with the old one. Every
    /// registry change (this, a load, [`KmsClient::add_slot`], [`KmsClient::add_previous_key`])
    /// makes the resolvers using this client drop their cached KEKs.
    pub fn set_registry(&self, registry: Registry) {
        let _ = self.change_registry(|_| Ok(Some(registry)));
    }

    /// Under the registry's write lock, `change` makes the next registry from the current one
    /// (`None`: nothing changes). A new registry is installed and only then the generation
    /// bumped, so a resolver that sees the new generation finds the new registry too; an error
    /// or `None` leaves both alone.
    fn change_registry(
        &self,
        change: impl FnOnce(&Registry) -> Result<Option<Registry>>,
    ) -> Result<()> {
        let mut guard = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(next) = change(&guard)? {
            let slots = next.len();
            *guard = Arc::new(next);
            let generation = self
                .inner
                .registry_generation
                .fetch_add(1, Ordering::AcqRel)
                + 1;
            log_event!(
                LogLevel::Info,
                TARGET_KMS,
                "KMS registry changed: {slots} slots (generation {generation})"
            );
        }
        Ok(())
    }

    /// Counts registry changes (see [`KmsClient::set_registry`]).
    #[inline]
    pub(crate) fn registry_generation(&self) -> u64 {
        self.inner.registry_generation.load(Ordering::Acquire)
    }

    /// The client's counters (relaxed reads: each is exact, the pair is not a snapshot).
    pub fn stats(&self) -> KmsClientStats {
        KmsClientStats {
            region_failovers: self.inner.region_failovers.load(Ordering::Relaxed),
            replica_unwraps: self.inner.replica_unwraps.load(Ordering::Relaxed),
        }
    }

    /// Replaces the registry with the `kms.registry` section of `yaml` (see
    /// [`Registry::from_yaml_str`]); returns the number of slots. On error the registry in use
    /// is unchanged.
    pub fn load_registry_yaml(&self, yaml: &str) -> Result<usize> {
        let registry = Registry::from_yaml_str(yaml)?;
        let slots = registry.len();
        self.set_registry(registry);
        Ok(slots)
    }

    /// [`KmsClient::load_registry_yaml`] with the contents of the file at `path`.
    pub fn load_registry_file(&self, path: impl AsRef<Path>) -> Result<usize> {
        let registry = Registry::from_yaml_file(path)?;
        let slots = registry.len();
        self.set_registry(registry);
        Ok(slots)
    }

    /// Adds or replaces one slot. Errors: `InvalidConfig` naming the slot and field.
    pub fn add_slot(&self, name: &str, slot: Slot) -> Result<()> {
        self.change_registry(|current| {
            let mut registry = current.clone();
            registry.insert(name, slot)?;
            Ok(Some(registry))
        })
    }

    /// Makes slot `slot_name` trust `key` for unwrapping (a [`Slot::previous_keys`] entry): the
    /// programmatic form of the YAML line `previous_keys: [...]`, for keeping envelopes wrapped
    /// before a rotation readable until they are re-wrapped. Adding a key already trusted is a
    /// no-op.
    ///
    /// Errors: `UnknownSlot`; `InvalidConfig` naming the slot and field (bad key fields, or a key
    /// another slot reaches with a different role).
    pub fn add_previous_key(&self, slot_name: &str, key: KeyIdentity) -> Result<()> {
        self.change_registry(|current| {
            let mut slot = current.require(slot_name)?.clone();
            if slot.trusts(&key) {
                return Ok(None);
            }
            slot.previous_keys.push(key);
            let mut registry = current.clone();
            registry.insert(slot_name, slot)?;
            Ok(Some(registry))
        })
    }

    /// Generates a fresh random KEK for `index_name` and wraps it through slot `slot_name`.
    ///
    /// Returns the envelope — kms_name = the slot, the slot's provider / key_id / region as a
    /// snapshot, the wrapped KEK, version 1, created_at now — and the KEK. Nothing is stored.
    ///
    /// Errors: `InvalidArgument` (index name), `ForkedProcess` (client created before this process
    /// was forked), `UnknownSlot`, the provider's errors (`KmsAccessDenied`, `KmsKeyNotFound`,
    /// `KmsKeyDisabled`, `KmsThrottled`, `KmsUnavailable`, `KmsBadResponse`, `WrapKeySize`,
    /// `InvalidConfig`), `Io` (the process-wide runtime cannot start).
    pub fn wrap_new_kek(&self, index_name: &str, slot_name: &str) -> Result<(KmsBlob, Kek)> {
        let kek = Kek::generate();
        let blob = self.wrap_kek(index_name, slot_name, &kek)?;
        Ok((blob, kek))
    }

    /// Wraps the given `kek` for `index_name` through slot `slot_name` (re-wrap on rotation).
    /// The envelope is as [`KmsClient::wrap_new_kek`]'s. Errors likewise.
    pub fn wrap_kek(&self, index_name: &str, slot_name: &str, kek: &Kek) -> Result<KmsBlob> {
        self.wrap_kek_counted(index_name, slot_name, kek, || ())
    }

    /// [`KmsClient::wrap_kek`], calling `on_provider_call` just before the provider is asked.
    pub(crate) fn wrap_kek_counted(
        &self,
        index_name: &str,
        slot_name: &str,
        kek: &Kek,
        on_provider_call: impl FnOnce(),
    ) -> Result<KmsBlob> {
        let index = IndexName::new(index_name)?;
        self.check_process(&index)?;
        let registry = self.registry();
        let slot = registry
            .require(slot_name)
            .map_err(|e| e.context(format_args!("index {index}")))?;
        let key = KeyRef {
            key_id: &slot.key_id,
            region: &slot.region,
            assume_role: slot.assume_role.as_ref(),
        };
        let provider = self.provider(slot.provider, &index)?;
        on_provider_call();
        let wrapped_kek = self
            .inner
            .runtime
            .run(provider.wrap(key, &index, kek))
            .inspect_err(|e| log_provider_failure("wrapping", &index, slot_name, e))?;
        log_event!(
            LogLevel::Debug,
            TARGET_KMS,
            "wrapped a KEK for index {index} through slot {slot_name:?} ({})",
            slot.provider.as_str()
        );
        Ok(new_envelope(slot_name, slot, wrapped_kek))
    }

    /// Re-wraps the KEK in `blob` (the envelope of `index_name`) under slot `slot_name` with one
    /// `kms:ReEncrypt`, so the KEK never leaves KMS. Applies when the envelope's key and the
    /// slot's key are both `aws-kms`, in the same region, reached with the same credentials (the
    /// envelope's slot and `slot_name` name the same role, or none): ReEncrypt is one call, signed
    /// by one principal in one region. Otherwise, or when KMS refuses ReEncrypt in a way
    /// Decrypt + Encrypt may answer (see `REENCRYPT_FALLBACK_CODES` in the provider; logged as a
    /// warning), returns `Ok(None)` and the caller unwraps and wraps instead.
    ///
    /// The envelope is checked as by [`KmsClient::unwrap_kek`] (slot, key trust) before any KMS
    /// call. `on_provider_call` runs just before ReEncrypt is sent. The envelope returned is as
    /// [`KmsClient::wrap_kek`]'s.
    ///
    /// Errors: those of `unwrap_kek` and `wrap_kek`, the provider's named `kms:ReEncrypt`.
    pub(crate) fn reencrypt_kek_counted(
        &self,
        index_name: &str,
        blob: &KmsBlob,
        slot_name: &str,
        on_provider_call: impl FnOnce(),
    ) -> Result<Option<KmsBlob>> {
        let index = IndexName::new(index_name)?;
        self.check_process(&index)?;
        let provider = blob
            .validate()
            .map_err(|e| e.context(format_args!("index {index}: invalid KMS envelope")))?;
        if provider != Provider::AwsKms {
            return Ok(None);
        }
        let registry = self.registry();
        let source_slot = registry
            .require(&blob.kms_name)
            .map_err(|e| e.context(format_args!("index {index}")))?;
        let stored = trusted_key(&index, blob, source_slot)?;
        let slot = registry
            .require(slot_name)
            .map_err(|e| e.context(format_args!("index {index}")))?;
        if slot.provider != Provider::AwsKms
            || slot.region != stored.region
            || slot.assume_role != source_slot.assume_role
        {
            return Ok(None);
        }
        let source = KeyRef {
            key_id: &stored.key_id,
            region: &stored.region,
            assume_role: source_slot.assume_role.as_ref(),
        };
        let destination = KeyRef {
            key_id: &slot.key_id,
            region: &slot.region,
            assume_role: slot.assume_role.as_ref(),
        };
        on_provider_call();
        let reencrypted = self
            .inner
            .runtime
            .run(
                self.inner
                    .aws_kms
                    .reencrypt(source, destination, &index, &blob.wrapped_kek),
            )
            .inspect_err(|e| log_provider_failure("re-encrypting", &index, slot_name, e))?;
        match reencrypted {
            ReEncrypted::Wrapped(wrapped_kek) => {
                log_event!(
                    LogLevel::Debug,
                    TARGET_KMS,
                    "re-encrypted the KEK of index {index} from slot {:?} to slot {slot_name:?} inside KMS",
                    blob.kms_name
                );
                Ok(Some(new_envelope(slot_name, slot, wrapped_kek)))
            }
            ReEncrypted::NotApplicable(why) => {
                log_event!(
                    LogLevel::Warn,
                    TARGET_KMS,
                    "re-wrapping the KEK of index {index} to slot {slot_name:?} falls back to kms:Decrypt + kms:Encrypt (the KEK passes through this process; grant kms:ReEncryptFrom and kms:ReEncryptTo to keep it inside KMS) ({:?}): {}",
                    why.kind(),
                    why.message()
                );
                Ok(None)
            }
        }
    }

    /// Unwraps the KEK of `index_name` from its envelope `blob`.
    ///
    /// **Key trust.** The envelope names its slot (`blob.kms_name`) and records which key wrapped
    /// it; the registry, not the envelope, decides whether that key may be used. The recorded
    /// provider / key_id / region must be the slot's current key or one of its `previous_keys`
    /// (a slot changed by a rotation keeps unwrapping old envelopes once the operator lists the
    /// old key there); credentials and role always come from the slot. Anything else is refused
    /// with `UntrustedKey` before any KMS call, with the registry line that would trust the key.
    ///
    /// Errors: `InvalidArgument` (index name, envelope fields), `ForkedProcess`, `KekNotWrapped`
    /// (provider `none`: the caller supplies the KEK), `UnknownSlot`, `UntrustedKey`,
    /// `DecryptFailed` (wrong key, another index's envelope, damaged, not 32 bytes), and the
    /// provider errors of
    /// `wrap_new_kek`.
    pub fn unwrap_kek(&self, index_name: &str, blob: &KmsBlob) -> Result<Kek> {
        self.unwrap_kek_counted(index_name, blob, || ())
    }

    /// [`KmsClient::unwrap_kek`], calling `on_provider_call` once every check has passed, just
    /// before the provider is asked (the resolver counts provider calls with it).
    pub(crate) fn unwrap_kek_counted(
        &self,
        index_name: &str,
        blob: &KmsBlob,
        on_provider_call: impl FnOnce(),
    ) -> Result<Kek> {
        let index = IndexName::new(index_name)?;
        self.check_process(&index)?;
        let provider = blob
            .validate()
            .map_err(|e| e.context(format_args!("index {index}: invalid KMS envelope")))?;
        // Refuses `local` in a client without it and `none` before the registry is consulted.
        self.provider(provider, &index)?;
        let registry = self.registry();
        let slot = registry
            .require(&blob.kms_name)
            .map_err(|e| e.context(format_args!("index {index}")))?;
        let stored = trusted_key(&index, blob, slot)?;
        let regions = failover_order(slot, stored);
        on_provider_call();
        let kek = self
            .unwrap_in_order(&index, &blob.kms_name, slot, &regions, &blob.wrapped_kek)
            .inspect_err(|e| log_provider_failure("unwrapping", &index, &blob.kms_name, e))?;
        log_event!(
            LogLevel::Debug,
            TARGET_KMS,
            "unwrapped the KEK of index {index} through slot {:?} ({})",
            blob.kms_name,
            blob.provider
        );
        Ok(kek)
    }

    /// Unwraps `wrapped` through the first of `keys` (the envelope's key), failing over to the
    /// next key while one answers with a regional outage ([`is_regional_outage`]); any other
    /// error ends the unwrap at once. Counts and logs (at Warn, naming both regions) each
    /// failover. The last region's error, if every one is unavailable, names the regions tried.
    fn unwrap_in_order(
        &self,
        index: &IndexName,
        slot_name: &str,
        slot: &Slot,
        keys: &[KeyIdentity],
        wrapped: &[u8],
    ) -> Result<Kek> {
        let provider = self.provider(keys[0].provider, index)?;
        let mut tried: Vec<&str> = Vec::with_capacity(keys.len());
        for (i, identity) in keys.iter().enumerate() {
            let key = KeyRef {
                key_id: &identity.key_id,
                region: &identity.region,
                assume_role: slot.assume_role.as_ref(),
            };
            match self.inner.runtime.run(provider.unwrap(key, index, wrapped)) {
                Ok(kek) => {
                    if i > 0 {
                        self.inner.replica_unwraps.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(kek);
                }
                Err(error) if is_regional_outage(&error) && i + 1 < keys.len() => {
                    let next = &keys[i + 1].region;
                    self.inner.region_failovers.fetch_add(1, Ordering::Relaxed);
                    log_event!(
                        LogLevel::Warn,
                        TARGET_KMS,
                        "unwrapping the KEK of index {index} through slot {slot_name:?}: KMS region \
                         {} is unavailable ({:?}: {}); failing over to replica region {}",
                        quoted_prefix(&identity.region),
                        error.kind(),
                        error.message(),
                        quoted_prefix(next)
                    );
                    tried.push(&identity.region);
                }
                Err(error) if i > 0 => {
                    tried.push(&identity.region);
                    let tried = tried.iter().map(|r| quoted_prefix(r)).collect::<Vec<_>>();
                    return Err(error.context(format_args!(
                        "slot {slot_name:?}: after failing over through regions {}",
                        tried.join(", ")
                    )));
                }
                Err(error) => return Err(error),
            }
        }
        unreachable!("keys is never empty")
    }

    /// `ForkedProcess` (naming `index`) in a child forked after this client was created — before
    /// any lock a vanished parent thread might have held is taken.
    fn check_process(&self, index: &IndexName) -> Result<()> {
        self.inner
            .runtime
            .owner()
            .check("KMS client")
            .map_err(|e| e.context(format_args!("index {index}")))
    }

    fn provider(&self, provider: Provider, index: &IndexName) -> Result<&dyn KekProvider> {
        match provider {
            Provider::AwsKms => Ok(&self.inner.aws_kms),
            Provider::Aws => Ok(&self.inner.secrets_manager),
            Provider::Local if self.inner.allow_local_provider => Ok(&self.inner.local),
            Provider::Local => Err(Error::new(
                ErrorKind::UntrustedKey,
                format!(
                    "index {index}: the local provider (a master key from a file or an environment variable, development only) is disabled in this KMS client; enable it with allow_local_provider"
                ),
            )),
            Provider::None => Err(Error::new(
                ErrorKind::KekNotWrapped,
                format!(
                    "index {index}: the envelope's provider is \"none\": no KEK is wrapped; the caller supplies the index's KEK"
                ),
            )),
        }
    }
}

/// A fresh envelope (version 1, created now) holding `wrapped_kek` under `slot`'s current key.
fn new_envelope(slot_name: &str, slot: &Slot, wrapped_kek: Vec<u8>) -> KmsBlob {
    KmsBlob {
        kms_name: slot_name.to_owned(),
        provider: slot.provider.as_str().to_owned(),
        key_id: slot.key_id.clone(),
        region: slot.region.clone(),
        wrapped_kek,
        version: 1,
        created_at: crate::envelope::unix_now(),
    }
}

/// Logs a failed provider call (`action` is "wrapping", "unwrapping" or "re-encrypting"): the
/// error's kind and its message, which never holds key material.
fn log_provider_failure(action: &str, index: &IndexName, slot: &str, error: &Error) {
    log_event!(
        LogLevel::Error,
        TARGET_KMS,
        "{action} the KEK of index {index} through slot {slot:?} failed ({:?}): {}",
        error.kind(),
        error.message()
    );
}

/// The keys an unwrap of an envelope recording `stored` tries, in order: `stored` first, then —
/// if it is the slot's multi-Region key or one of its replicas — the slot's own region and its
/// replica regions in their listed order. A previous key is tried alone.
fn failover_order(slot: &Slot, stored: KeyIdentity) -> Vec<KeyIdentity> {
    if slot.replica_regions.is_empty() || !slot.is_current_key_or_replica(&stored) {
        return vec![stored];
    }
    let others = std::iter::once(slot.key())
        .chain(slot.replica_keys())
        .filter(|key| *key != stored);
    std::iter::once(stored.clone()).chain(others).collect()
}

/// Whether `error` means the key's region could not answer — connect failures, timeouts, HTTP
/// 5xx (`KmsUnavailable`) and throttling that outlasted the retries (`KmsThrottled`) — so that
/// a replica may. Access denied, a missing or disabled key, a bad ciphertext or answer, and
/// configuration errors are never a reason to fail over.
fn is_regional_outage(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::KmsUnavailable | ErrorKind::KmsThrottled
    )
}

/// The key `blob` records, if `slot` trusts it; else `UntrustedKey` naming the slot's current
/// key and the `previous_keys` line that would trust the recorded one.
pub(crate) fn trusted_key(index: &IndexName, blob: &KmsBlob, slot: &Slot) -> Result<KeyIdentity> {
    let stored = KeyIdentity::of_envelope(blob)?;
    if slot.trusts(&stored) {
        return Ok(stored);
    }
    let same_key_elsewhere = slot.provider == Provider::AwsKms
        && stored.provider == Provider::AwsKms
        && stored.region != slot.region
        && is_multi_region_key_id(&slot.key_id, &slot.region)
        && stored.key_id == key_id_in_region(&slot.key_id, &stored.region);
    if same_key_elsewhere {
        return Err(Error::new(
            ErrorKind::UntrustedKey,
            format!(
                "index {index}: the envelope names {stored}, a region KMS slot {} does not list \
                 (it wraps with {}); if that region holds a replica of the slot's multi-Region \
                 key, add it to the slot's replica_regions",
                quoted_prefix(&blob.kms_name),
                slot.key(),
            ),
        ));
    }
    Err(Error::new(
        ErrorKind::UntrustedKey,
        format!(
            "index {index}: the envelope names {stored}, which KMS slot {} does not trust (it wraps with {}); \
             if that is the slot's key before a rotation, trust it by adding this line to the slot: {}",
            quoted_prefix(&blob.kms_name),
            slot.key(),
            stored.previous_keys_line()
        ),
    ))
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.runtime.in_owner_process() {
            // A forked child: the SDK clients' destructors would reach into the parent's runtime
            // (connection tasks, wakers) whose threads are gone. Leak them instead.
            std::mem::forget(Arc::clone(&self.aws_clients));
        }
    }
}

impl std::fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsClient")
            .field("slots", &self.registry().names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
