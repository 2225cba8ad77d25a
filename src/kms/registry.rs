//! The registry of named KMS slots: which provider, key and region wrap an index's KEK, and which
//! role (if any) to assume first. Loaded from the service YAML (`kms.registry`) or built in code.
//!
//! The YAML is read with yaml-rust2's event parser into a small tree of our own: scalars keep the
//! text exactly as written (no number or boolean conversion), and aliases, anchors and tags are
//! refused, so no input can expand (billion laughs). Input size, nesting depth and node count are
//! capped ([`MAX_REGISTRY_YAML_LEN`], [`MAX_REGISTRY_YAML_DEPTH`], [`MAX_REGISTRY_YAML_NODES`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use crate::blob::Provider;
use crate::error::{quoted_prefix, Error, ErrorKind, Result};
use crate::fs_bounded::{read_secret_bounded, Symlinks};

/// Session name used for `sts:AssumeRole` when a slot sets none.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "cyborgdb-kms";

/// Largest registry YAML accepted, in bytes (1 MiB, a leading BOM included); a file is read no
/// further than this.
pub const MAX_REGISTRY_YAML_LEN: usize = 1 << 20;

/// Deepest nesting of sequences and mappings accepted anywhere in the registry YAML (the registry
/// itself needs 6: root, `kms`, `registry`, slot, `previous_keys`, entry).
pub const MAX_REGISTRY_YAML_DEPTH: usize = 64;

/// Most YAML nodes (scalars, sequences, mappings; keys included) accepted in the registry YAML,
/// ignored sections included.
pub const MAX_REGISTRY_YAML_NODES: usize = 100_000;

/// Longest slot name, in bytes.
pub const MAX_SLOT_NAME_LEN: usize = 128;

/// Most replica regions a slot may list ([`Slot::replica_regions`]).
pub const MAX_REPLICA_REGIONS: usize = 8;

/// Cross-account access (BYOK): the role to assume before reaching the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// ARN of the customer's role.
    pub role_arn: String,
    /// The ExternalId the role's trust policy requires. Treated as a credential: `Debug` hides it.
    pub external_id: String,
    /// `RoleSessionName`; [`DEFAULT_ROLE_SESSION_NAME`] when `None`.
    pub session_name: Option<String>,
}

impl AssumeRole {
    /// The session name in effect.
    pub fn session_name(&self) -> &str {
        self.session_name
            .as_deref()
            .unwrap_or(DEFAULT_ROLE_SESSION_NAME)
    }
}

impl fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .field("external_id", &"<redacted>")
            .field("session_name", &self.session_name())
            .finish()
    }
}

/// Which key wraps a KEK: a provider, the key it names and the key's region. A slot wraps with
/// one ([`Slot::key`]) and may trust more for unwrapping ([`Slot::previous_keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyIdentity {
    /// `aws-kms`, `aws` or `local` (never `none`).
    pub provider: Provider,
    /// KMS key ARN / id / alias, Secrets Manager secret name / ARN, or `file:` / `env:` source.
    pub key_id: String,
    /// The AWS region of the key (empty for `local`).
    pub region: String,
}

impl KeyIdentity {
    /// The key an envelope records. Errors: `InvalidArgument` for an unknown provider.
    pub fn of_envelope(blob: &crate::KmsBlob) -> Result<Self> {
        Ok(KeyIdentity {
            provider: blob.provider.parse()?,
            key_id: blob.key_id.clone(),
            region: blob.region.clone(),
        })
    }

    /// A key from text fields, as the C ABI passes them; `provider` is `"aws-kms"`, `"aws"` or
    /// `"local"`. Errors: `InvalidConfig` naming `slot` and the field.
    pub fn from_fields(slot: &str, provider: &str, key_id: &str, region: &str) -> Result<Self> {
        let field_error = |field: &str, problem: &str| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "KMS slot {}: previous key {field} {problem}",
                    quoted_prefix(slot)
                ),
            )
        };
        let provider = provider
            .parse::<Provider>()
            .map_err(|_| field_error("provider", "must be \"aws\", \"aws-kms\" or \"local\""))?;
        let key = KeyIdentity {
            provider,
            key_id: key_id.to_owned(),
            region: region.to_owned(),
        };
        check_key(&key, "").map_err(|(field, problem)| field_error(&field, &problem))?;
        Ok(key)
    }

    /// The slot-YAML line that trusts this key as a previous key, e.g.
    /// `previous_keys: [{provider: aws-kms, key_id: "alias/old", region: "us-east-1"}]`.
    /// `key_id` and `region` are YAML double-quoted scalars, so the line pasted into a slot parses
    /// back to this key whatever characters they hold (control characters come out as escapes).
    pub fn previous_keys_line(&self) -> String {
        format!(
            "previous_keys: [{{provider: {}, key_id: {}, region: {}}}]",
            self.provider.as_str(),
            yaml_double_quoted(&self.key_id),
            yaml_double_quoted(&self.region)
        )
    }
}

impl fmt::Display for KeyIdentity {
    /// `aws-kms key "alias/x" in us-east-1`; caller-supplied text is quoted, escaped and cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {}",
            self.provider.as_str(),
            quoted_prefix(&self.key_id)
        )?;
        if !self.region.is_empty() {
            write!(f, " in {}", quoted_prefix(&self.region))?;
        }
        Ok(())
    }
}

/// One named registry slot.
///
/// `provider` is `aws-kms` (key_id: key ARN, key id, alias name or alias ARN), `aws` (key_id:
/// Secrets Manager secret name or ARN) or `local` (development only; key_id `file:<path>` or
/// `env:<VARIABLE>`, region unused).
///
/// **Key trust.** An envelope names the slot it belongs to, and records the key that wrapped it;
/// stored data is not trusted to choose a key. A [`crate::KmsClient`] unwraps an envelope only
/// with the slot's current key ([`Slot::key`]) or one of its [`Slot::previous_keys`]: anything
/// else is refused with `UntrustedKey` before any KMS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// How the KEK is wrapped.
    pub provider: Provider,
    /// Which key wraps it (see above).
    pub key_id: String,
    /// The AWS region of the key (empty for `local`).
    pub region: String,
    /// The role to assume first, for cross-account keys.
    pub assume_role: Option<AssumeRole>,
    /// Keys this slot still unwraps with but never wraps with: the keys it used before a
    /// rotation (YAML `previous_keys`), until every envelope is re-wrapped. Reached with the
    /// slot's role. Empty by default.
    pub previous_keys: Vec<KeyIdentity>,
    /// Regions holding replicas of the slot's multi-Region KMS key (YAML `replica_regions`), in
    /// the order an unwrap fails over to them when the slot's region is unavailable. Only for an
    /// `aws-kms` slot whose `key_id` is a multi-Region key (`mrk-…` id or key ARN); at most
    /// [`MAX_REPLICA_REGIONS`], region names, no duplicates, not the slot's own region. The
    /// replica is the same key id in that region (an ARN gets that region swapped in), reached
    /// with the slot's role. New KEKs are always wrapped in the slot's own region. Empty by
    /// default.
    pub replica_regions: Vec<String>,
}

impl Slot {
    /// A slot for `key_id` in `region` through `provider`, with no role, no previous keys and no
    /// replica regions; set those fields on the result (`Slot { replica_regions, ..Slot::new(…) }`).
    /// Not checked here: [`Registry::insert`] and [`crate::KmsClient::add_slot`] validate it.
    pub fn new(provider: Provider, key_id: impl Into<String>, region: impl Into<String>) -> Slot {
        Slot {
            provider,
            key_id: key_id.into(),
            region: region.into(),
            assume_role: None,
            previous_keys: Vec::new(),
            replica_regions: Vec::new(),
        }
    }

    /// A slot from text fields, as the C ABI and other languages pass them: `provider` is
    /// `"aws-kms"`, `"aws"` or `"local"`; an empty `role_arn`, `external_id` and
    /// `role_session_name` mean no role; an empty `role_session_name` means the default.
    ///
    /// Errors: `InvalidConfig` naming `name` and the field (the same rules as
    /// [`Registry::insert`]).
    pub fn from_fields(
        name: &str,
        provider: &str,
        key_id: &str,
        region: &str,
        role_arn: &str,
        external_id: &str,
        role_session_name: &str,
    ) -> Result<Slot> {
        let provider = match provider.parse::<Provider>() {
            Ok(parsed) if parsed != Provider::None => parsed,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "KMS slot {}: provider must be \"aws\", \"aws-kms\" or \"local\", not {}",
                        quoted_prefix(name),
                        quoted_prefix(provider)
                    ),
                ))
            }
        };
        let no_role = role_arn.is_empty() && external_id.is_empty() && role_session_name.is_empty();
        let slot = Slot {
            provider,
            key_id: key_id.to_owned(),
            region: region.to_owned(),
            assume_role: (!no_role).then(|| AssumeRole {
                role_arn: role_arn.to_owned(),
                external_id: external_id.to_owned(),
                session_name: (!role_session_name.is_empty()).then(|| role_session_name.to_owned()),
            }),
            previous_keys: Vec::new(),
            replica_regions: Vec::new(),
        };
        slot.validate(name)?;
        Ok(slot)
    }

    /// The key this slot wraps with.
    pub fn key(&self) -> KeyIdentity {
        KeyIdentity {
            provider: self.provider,
            key_id: self.key_id.clone(),
            region: self.region.clone(),
        }
    }

    /// The keys this slot trusts: its current key, its replicas, then its previous keys.
    fn trusted_keys(&self) -> impl Iterator<Item = KeyIdentity> + '_ {
        std::iter::once(self.key())
            .chain(self.replica_keys())
            .chain(self.previous_keys.iter().cloned())
    }

    /// The replicas of the slot's key ([`Slot::replica_regions`]), in failover order.
    pub fn replica_keys(&self) -> impl Iterator<Item = KeyIdentity> + '_ {
        self.replica_regions.iter().map(|region| KeyIdentity {
            provider: self.provider,
            key_id: key_id_in_region(&self.key_id, region),
            region: region.clone(),
        })
    }

    /// Whether `key` is the slot's current key or one of its replicas: the keys an unwrap may
    /// fail over between.
    pub fn is_current_key_or_replica(&self, key: &KeyIdentity) -> bool {
        *key == self.key() || self.replica_keys().any(|replica| replica == *key)
    }

    /// The role (ARN, ExternalId) this slot reaches its keys with, if any.
    fn role(&self) -> Option<(&str, &str)> {
        self.assume_role
            .as_ref()
            .map(|role| (role.role_arn.as_str(), role.external_id.as_str()))
    }

    /// Whether this slot unwraps with `key`: its current key or one of its previous keys.
    /// A replica region the slot lists counts as its current key (see [`Slot::replica_regions`]).
    pub fn trusts(&self, key: &KeyIdentity) -> bool {
        self.is_current_key_or_replica(key) || self.previous_keys.contains(key)
    }

    /// Checks the slot's rules and its name (see [`check_slot_name`]). Every text field must be
    /// at most [`crate::blob::MAX_STRING_FIELD_LEN`] bytes and hold no control character (Unicode
    /// Cc) and no bidirectional-text control.
    ///
    /// Errors: `InvalidConfig` naming `slot` and the field, and the problem; never a field's value
    /// (an offending character is shown as `U+XXXX`).
    pub fn validate(&self, slot: &str) -> Result<()> {
        check_slot_name(slot)?;
        let field_error = |field: &str, problem: &str| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("KMS slot {}: {field} {problem}", quoted_prefix(slot)),
            )
        };
        check_key(&self.key(), "").map_err(|(field, problem)| field_error(&field, &problem))?;
        if self.provider == Provider::Local && self.assume_role.is_some() {
            return Err(field_error("role_arn", "is not used by a local slot"));
        }
        for (i, previous) in self.previous_keys.iter().enumerate() {
            check_key(previous, &format!("previous_keys[{i}]."))
                .map_err(|(field, problem)| field_error(&field, &problem))?;
        }
        check_replica_regions(self).map_err(|(field, problem)| field_error(&field, &problem))?;
        if let Some(role) = &self.assume_role {
            for (field, value) in [
                ("role_arn", &role.role_arn),
                ("external_id", &role.external_id),
            ] {
                check_text(value).map_err(|problem| field_error(field, &problem))?;
            }
            if role.role_arn.is_empty() {
                return Err(field_error(
                    "role_arn",
                    "is required when external_id or role_session_name is set",
                ));
            }
            if role.external_id.is_empty() {
                return Err(field_error(
                    "external_id",
                    "is required when role_arn is set",
                ));
            }
            if let Some(name) = &role.session_name {
                let valid_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
                if !(2..=64).contains(&name.len()) || !name.chars().all(valid_char) {
                    return Err(field_error(
                        "role_session_name",
                        "must be 2-64 characters of [A-Za-z0-9_+=,.@-]",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Slots `first` and `second` both trust `key` with different roles.
fn shared_key_error(first: &str, second: &str, key: &KeyIdentity) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "KMS slots {} and {} both trust {key} but reach it with different roles; an envelope \
             could pick the role by naming the other slot: give each key one role (name keys in \
             other accounts by their full ARN)",
            quoted_prefix(first),
            quoted_prefix(second)
        ),
    )
}

/// Checks a slot name: 1 to [`MAX_SLOT_NAME_LEN`] bytes, no control character (Unicode Cc) and no
/// bidirectional-text control (see [`is_forbidden_char`]).
///
/// Errors: `InvalidConfig`; the name is shown quoted with such characters escaped.
pub fn check_slot_name(name: &str) -> Result<()> {
    let name_error = |problem: String| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("KMS slot name {} {problem}", quoted_prefix(name)),
        )
    };
    if name.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "KMS slot names must not be empty",
        ));
    }
    if name.len() > MAX_SLOT_NAME_LEN {
        return Err(name_error(format!(
            "is {} bytes; the limit is {MAX_SLOT_NAME_LEN}",
            name.len()
        )));
    }
    match forbidden_char_problem(name) {
        Some(problem) => Err(name_error(problem)),
        None => Ok(()),
    }
}

/// Whether `c` may not appear in a slot name or field value: a control character (Unicode
/// category Cc: C0, DEL, C1) or a bidirectional-text control (U+061C, U+200E, U+200F,
/// U+202A-U+202E, U+2066-U+2069), which could hide or reorder text in logs and terminals.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `contains the control character U+000A` for the first forbidden character of `text`, if any.
fn forbidden_char_problem(text: &str) -> Option<String> {
    let c = text.chars().find(|c| is_forbidden_char(*c))?;
    let what = if c.is_control() {
        "control character"
    } else {
        "bidirectional-text control"
    };
    Some(format!("contains the {what} U+{:04X}", u32::from(c)))
}

/// The rules every text field value follows: at most [`crate::blob::MAX_STRING_FIELD_LEN`] bytes,
/// no forbidden character. On failure, the problem (never the value).
fn check_text(value: &str) -> std::result::Result<(), String> {
    if value.len() > crate::blob::MAX_STRING_FIELD_LEN {
        return Err(format!(
            "is longer than {} bytes",
            crate::blob::MAX_STRING_FIELD_LEN
        ));
    }
    forbidden_char_problem(value).map_or(Ok(()), Err)
}

/// The rules of one key's fields; on failure, the field (prefixed with `field_prefix`) and the
/// problem.
fn check_key(key: &KeyIdentity, field_prefix: &str) -> std::result::Result<(), (String, String)> {
    let fail = |field: &str, problem: &str| Err((format!("{field_prefix}{field}"), problem.into()));
    match key.provider {
        Provider::Aws | Provider::AwsKms => {
            if key.region.is_empty() {
                return fail("region", "is required");
            }
        }
        Provider::Local => {
            if !(key.key_id.starts_with("file:") || key.key_id.starts_with("env:")) {
                return fail(
                    "key_id",
                    "of a local slot must be file:<path> or env:<VARIABLE>",
                );
            }
        }
        Provider::None => return fail(
            "provider",
            "must be \"aws\" or \"aws-kms\" (\"none\" has no slot: the caller supplies the KEK)",
        ),
    }
    if key.key_id.is_empty() {
        return fail("key_id", "is required");
    }
    for (field, value) in [("key_id", &key.key_id), ("region", &key.region)] {
        check_text(value).map_err(|problem| (format!("{field_prefix}{field}"), problem))?;
    }
    Ok(())
}

/// The rules of [`Slot::replica_regions`]; on failure, the field and the problem (region names are
/// never quoted: they may have been substituted from the environment).
fn check_replica_regions(slot: &Slot) -> std::result::Result<(), (String, String)> {
    let fail = |field: String, problem: &str| Err((field, problem.to_owned()));
    if slot.replica_regions.is_empty() {
        return Ok(());
    }
    let field = "replica_regions".to_owned();
    if slot.provider != Provider::AwsKms {
        return fail(field, "is only for aws-kms slots (multi-Region KMS keys)");
    }
    if slot.replica_regions.len() > MAX_REPLICA_REGIONS {
        return Err((
            field,
            format!(
                "lists {} regions; the limit is {MAX_REPLICA_REGIONS}",
                slot.replica_regions.len()
            ),
        ));
    }
    if !is_multi_region_key_id(&slot.key_id, &slot.region) {
        return fail(
            "key_id".into(),
            "must name a multi-Region key (an mrk- key id, or its key ARN in the slot's region) \
             when replica_regions is set",
        );
    }
    if !is_region_name(&slot.region) {
        return fail(
            "region".into(),
            "must be an AWS region name (e.g. us-east-1) when replica_regions is set",
        );
    }
    for (i, region) in slot.replica_regions.iter().enumerate() {
        let field = format!("replica_regions[{i}]");
        if !is_region_name(region) {
            return fail(field, "is not an AWS region name (e.g. us-west-2)");
        }
        if *region == slot.region {
            return fail(field, "is the slot's own region");
        }
        if let Some(j) = slot.replica_regions[..i].iter().position(|r| r == region) {
            return Err((field, format!("repeats replica_regions[{j}]")));
        }
    }
    Ok(())
}

/// Whether `region` looks like an AWS region name: 2 to 32 bytes of lowercase ASCII letters,
/// digits and hyphens, at least three hyphen-separated parts, letters first and digits last
/// (`us-east-1`, `us-gov-west-1`, `ap-southeast-2`).
fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let letters = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    region.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(letters)
        && parts.last().is_some_and(digits)
}

/// Whether `key_id` names a multi-Region KMS key: `mrk-<id>` (ASCII letters, digits, hyphens), or
/// `arn:<partition>:kms:<region>:<account>:key/mrk-<id>` with `region` its region.
pub(crate) fn is_multi_region_key_id(key_id: &str, region: &str) -> bool {
    let is_mrk = |id: &str| {
        id.strip_prefix("mrk-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    if !key_id.starts_with("arn:") {
        return is_mrk(key_id);
    }
    let parts: Vec<&str> = key_id.splitn(6, ':').collect();
    matches!(parts.as_slice(), [_, _, "kms", arn_region, _, resource]
        if *arn_region == region && resource.strip_prefix("key/").is_some_and(is_mrk))
}

/// `key_id` as it names the same key in `region`: a key ARN with `region` in place of its own,
/// anything else (an `mrk-` id) unchanged.
pub(crate) fn key_id_in_region(key_id: &str, region: &str) -> String {
    let parts: Vec<&str> = key_id.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "kms", _, account, resource] => {
            format!("arn:{partition}:kms:{region}:{account}:{resource}")
        }
        _ => key_id.to_owned(),
    }
}

/// `value` as a YAML double-quoted scalar: `"` and `\` escaped, and each forbidden character
/// (see [`is_forbidden_char`]), line or paragraph separator, BOM or non-character written as a
/// `\uXXXX` escape. Rust's `{:?}` is not YAML (`\u{1b}` is no YAML escape).
fn yaml_double_quoted(value: &str) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // All in the Basic Multilingual Plane, so `\uXXXX` is enough.
            c if is_forbidden_char(c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
                ) =>
            {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Named slots. Cheap to clone; validated on every insertion, so a `Registry` only ever holds
/// valid slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    slots: BTreeMap<String, Slot>,
    /// The top-level `audit:` setting: a resolver using this registry (and no audit setting of
    /// its own) audits every store it acts on as this principal.
    audit: Option<crate::audit::AuditOptions>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The custody audit setting (YAML top-level `audit:`), if any: see
    /// [`crate::KekResolver::set_audit`].
    pub fn audit(&self) -> Option<&crate::audit::AuditOptions> {
        self.audit.as_ref()
    }

    /// Sets or clears the custody audit setting.
    ///
    /// Errors: `InvalidConfig` naming the option (`audit.principal`, `audit.host`).
    pub fn set_audit(&mut self, audit: Option<crate::audit::AuditOptions>) -> Result<()> {
        if let Some(options) = &audit {
            options
                .actor()
                .map_err(|e| Error::new(ErrorKind::InvalidConfig, e.message().to_owned()))?;
        }
        self.audit = audit;
        Ok(())
    }

    /// Adds `slot` as `name`, replacing a slot of that name.
    ///
    /// Errors: `InvalidConfig` naming the slot and field. `local` slots may be added here (never
    /// from YAML).
    ///
    /// A key may be trusted by several slots only if they reach it with the same role: otherwise
    /// an envelope could switch the credentials its key is used with — say, to a role that was
    /// not revoked — by naming the other slot (`InvalidConfig` naming both slots).
    pub fn insert(&mut self, name: &str, slot: Slot) -> Result<()> {
        slot.validate(name)?;
        for (other_name, other) in self.slots.iter().filter(|(n, _)| n.as_str() != name) {
            if other.role() == slot.role() {
                continue;
            }
            if let Some(shared) = slot.trusted_keys().find(|key| other.trusts(key)) {
                return Err(shared_key_error(other_name, name, &shared));
            }
        }
        self.slots.insert(name.to_owned(), slot);
        Ok(())
    }

    /// The slot named `name`.
    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    /// The slot named `name`, or `UnknownSlot`.
    pub fn require(&self, name: &str) -> Result<&Slot> {
        self.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownSlot,
                format!(
                    "KMS slot {} is not in the registry (slots: [{}])",
                    quoted_prefix(name),
                    self.names_for_display()
                ),
            )
        })
    }

    /// Slot names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `KMS registry loaded (N entries: [a, b])`, the line the service logs after a load. A name
    /// holding a backslash or a forbidden character (which validation refuses anyway) is shown
    /// escaped, so the line never carries a raw control character.
    pub fn summary(&self) -> String {
        format!(
            "KMS registry loaded ({} entries: [{}])",
            self.len(),
            self.names_for_display()
        )
    }

    /// The slot names joined by `, `, each escaped as in [`Registry::summary`].
    fn names_for_display(&self) -> String {
        let shown = |name: &str| {
            if name.chars().any(|c| c == '\\' || is_forbidden_char(c)) {
                name.escape_debug().to_string()
            } else {
                name.to_owned()
            }
        };
        self.names().map(shown).collect::<Vec<_>>().join(", ")
    }

    /// Parses the `kms.registry` section of a service YAML document, substituting `${VAR}` and
    /// `${VAR:-default}` from the process environment (see [`Registry::from_yaml_str_with_env`]
    /// for the grammar and limits). Other top-level keys are ignored.
    ///
    /// Errors: `InvalidConfig` naming the slot and field (or the YAML position, or the missing
    /// variable).
    pub fn from_yaml_str(yaml: &str) -> Result<Registry> {
        Registry::from_yaml_str_with_env(yaml, |name| std::env::var(name).ok())
    }

    /// [`Registry::from_yaml_str`] on the contents of the file at `path`. Only a regular file is
    /// read (opened without blocking, so a FIFO cannot hang the call), and no further than
    /// [`MAX_REGISTRY_YAML_LEN`] bytes.
    ///
    /// The file (or the file a symbolic link leads to) is read without blocking and only if it is
    /// a regular file of at most 1 MiB; its bytes are wiped after parsing (they may hold
    /// ExternalIds).
    ///
    /// Errors: `InvalidConfig` (also for a file that cannot be read, is not a regular file, is
    /// larger than the limit or is not UTF-8, naming it).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Registry> {
        let path = path.as_ref();
        let unreadable = |cause: &dyn fmt::Display| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("cannot read KMS registry file {path:?}: {cause}"),
            )
        };
        let bytes = read_secret_bounded(path, MAX_REGISTRY_YAML_LEN, Symlinks::Follow)
            .map_err(|e| unreadable(&e))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| unreadable(&"not valid UTF-8"))?;
        Registry::from_yaml_str(text).map_err(|e| e.context(format_args!("{path:?}")))
    }

    /// [`Registry::from_yaml_str`] with variables looked up by `env` instead of the environment.
    ///
    /// **Limits.** At most [`MAX_REGISTRY_YAML_LEN`] bytes, [`MAX_REGISTRY_YAML_DEPTH`] levels of
    /// nesting and [`MAX_REGISTRY_YAML_NODES`] nodes, one document; a leading UTF-8 BOM is
    /// skipped. Aliases (`*a`), anchors (`&a`) and tags (`!t`) are refused anywhere in the
    /// document, ignored sections included.
    ///
    /// **Values.** Every scalar is taken exactly as written: `0012345`, `0x10`, `+12` and `TRUE`
    /// stay those strings. A plain `~`, `null`, `Null`, `NULL` or nothing (and a value that is
    /// empty after substitution) means the field is absent.
    ///
    /// **Substitution**, in every field value, left to right: `${NAME}` is the variable's value
    /// (an error naming it if unset or empty); `${NAME:-default}` is the variable's value, or
    /// `default` if it is unset or empty; `$${` is a literal `${`; any other `$` is literal.
    /// `NAME` is `[A-Za-z_][A-Za-z0-9_]*`; `default` is literal text up to the first `}` and may
    /// not contain `${` (nesting is refused, not supported). Substituted values are not expanded
    /// again. After substitution a value must hold no control character (Unicode Cc) or
    /// bidirectional-text control, and slot names follow [`check_slot_name`].
    ///
    /// Errors name the slot, field and problem, and the variable for an unset one; they never
    /// quote a value that may hold a substituted value or a credential.
    pub fn from_yaml_str_with_env(
        yaml: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Registry> {
        let config_error = |message: String| Error::new(ErrorKind::InvalidConfig, message);
        if yaml.len() > MAX_REGISTRY_YAML_LEN {
            return Err(config_error(format!(
                "KMS registry YAML is {} bytes; the limit is {MAX_REGISTRY_YAML_LEN} (1 MiB)",
                yaml.len()
            )));
        }
        let yaml = yaml.strip_prefix('\u{FEFF}').unwrap_or(yaml);
        let root = parse_yaml_tree(yaml)?
            .ok_or_else(|| config_error("KMS registry YAML is empty".into()))?;
        let no_section = || config_error("KMS registry YAML has no kms.registry section".into());
        let kms = root.mapping_value("kms")?.ok_or_else(no_section)?;
        let audit = match root.mapping_value("audit")? {
            Some(node) => parse_audit(node, &env)?,
            None => None,
        };
        let slots = match kms.mapping_value("registry")?.ok_or_else(no_section)? {
            YamlNode::Mapping(slots) => slots,
            YamlNode::Scalar { null: true, .. } => {
                let mut registry = Registry::new();
                registry.audit = audit;
                return Ok(registry);
            }
            _ => {
                return Err(config_error(
                    "kms.registry must be a mapping of slots".into(),
                ))
            }
        };
        let mut registry = Registry::new();
        registry.audit = audit;
        // Each trusted key, with the first slot that trusts it.
        let mut first_truster: HashMap<KeyIdentity, String> = HashMap::new();
        for (name, fields) in slots {
            let name = name
                .text()
                .ok_or_else(|| config_error("kms.registry: slot names must be strings".into()))?;
            check_slot_name(name)?;
            if registry.slots.contains_key(name) {
                return Err(config_error(format!(
                    "KMS slot {}: defined twice",
                    quoted_prefix(name)
                )));
            }
            let slot = parse_slot(name, fields, &env)?;
            slot.validate(name)?;
            // The rule of `insert` (one role per key), in one pass rather than one per slot.
            for key in slot.trusted_keys() {
                match first_truster.get(&key) {
                    Some(first) if registry.slots[first].role() != slot.role() => {
                        return Err(shared_key_error(first, name, &key));
                    }
                    Some(_) => {}
                    None => {
                        first_truster.insert(key, name.to_owned());
                    }
                }
            }
            registry.slots.insert(name.to_owned(), slot);
        }
        Ok(registry)
    }
}

/// A YAML node as written: the registry's own small tree, built from parser events. Scalars keep
/// their text verbatim; there are no aliases (they are refused while building). No `Debug`: a
/// scalar may be a credential.
enum YamlNode {
    /// A scalar's text exactly as written (after YAML's own quoting and folding rules); `null`
    /// for a plain `~`, `null`, `Null`, `NULL` or empty scalar.
    Scalar {
        text: String,
        null: bool,
    },
    Sequence(Vec<YamlNode>),
    /// Entries in document order; repeated keys are kept (the reader decides).
    Mapping(Vec<(YamlNode, YamlNode)>),
}

impl YamlNode {
    /// The text of a non-null scalar.
    fn text(&self) -> Option<&str> {
        match self {
            YamlNode::Scalar { text, null: false } => Some(text),
            _ => None,
        }
    }

    /// The value of `key` in a mapping (`None` if this is no mapping or has no such key).
    /// Errors: `InvalidConfig` if the key appears twice.
    fn mapping_value(&self, key: &str) -> Result<Option<&YamlNode>> {
        let YamlNode::Mapping(entries) = self else {
            return Ok(None);
        };
        let mut found = entries.iter().filter(|(k, _)| k.text() == Some(key));
        let value = found.next().map(|(_, v)| v);
        if found.next().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("KMS registry YAML: the key {key} appears twice in one mapping"),
            ));
        }
        Ok(value)
    }
}

/// A collection being built from parser events.
enum OpenCollection {
    Sequence(Vec<YamlNode>),
    /// The entries so far and, between a key and its value, the key.
    Mapping(Vec<(YamlNode, YamlNode)>, Option<YamlNode>),
}

/// Parses `yaml` into a [`YamlNode`] tree with yaml-rust2's event parser; `None` for a stream
/// with no document. Refuses aliases, anchors and tags, a second document, nesting deeper than
/// [`MAX_REGISTRY_YAML_DEPTH`] and more than [`MAX_REGISTRY_YAML_NODES`] nodes, each with
/// `InvalidConfig` naming the line and column. Never expands anything, so the tree is at most
/// about as large as the input.
fn parse_yaml_tree(yaml: &str) -> Result<Option<YamlNode>> {
    let config_error = |message: String| Error::new(ErrorKind::InvalidConfig, message);
    let mut parser = Parser::new_from_str(yaml);
    let mut open: Vec<OpenCollection> = Vec::new();
    let mut root = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| config_error(format!("KMS registry YAML is not valid YAML: {e}")))?;
        let refuse = |problem: &str| {
            Err(config_error(format!(
                "KMS registry YAML: {problem} (line {} column {})",
                mark.line(),
                mark.col() + 1
            )))
        };
        // Anchors and tags of the node that starts here.
        let (anchor, tag) = match &event {
            Event::Scalar(_, _, anchor, tag)
            | Event::SequenceStart(anchor, tag)
            | Event::MappingStart(anchor, tag) => (*anchor, tag.is_some()),
            _ => (0, false),
        };
        if anchor != 0 {
            return refuse("anchors (&name) are not accepted; write the value out");
        }
        if tag {
            return refuse("tags (!tag) are not accepted");
        }
        if matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            nodes += 1;
            if nodes > MAX_REGISTRY_YAML_NODES {
                return refuse(&format!("more than {MAX_REGISTRY_YAML_NODES} nodes"));
            }
        }
        let node = match event {
            Event::StreamEnd => return Ok(root),
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(config_error(
                        "KMS registry YAML holds several documents; expected one".into(),
                    ));
                }
                continue;
            }
            Event::Alias(_) => {
                return refuse("aliases (*name) are not accepted; write the value out")
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if open.len() >= MAX_REGISTRY_YAML_DEPTH {
                    return refuse(&format!(
                        "nested deeper than {MAX_REGISTRY_YAML_DEPTH} levels"
                    ));
                }
                open.push(if matches!(event, Event::SequenceStart(..)) {
                    OpenCollection::Sequence(Vec::new())
                } else {
                    OpenCollection::Mapping(Vec::new(), None)
                });
                continue;
            }
            Event::Scalar(text, style, _, _) => {
                let null = style == TScalarStyle::Plain
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                YamlNode::Scalar { text, null }
            }
            Event::SequenceEnd => match open.pop() {
                Some(OpenCollection::Sequence(items)) => YamlNode::Sequence(items),
                _ => return refuse("unbalanced sequence end"),
            },
            Event::MappingEnd => match open.pop() {
                Some(OpenCollection::Mapping(entries, None)) => YamlNode::Mapping(entries),
                _ => return refuse("unbalanced mapping end"),
            },
        };
        match open.last_mut() {
            None => root = Some(node),
            Some(OpenCollection::Sequence(items)) => items.push(node),
            Some(OpenCollection::Mapping(entries, pending_key)) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

const SLOT_FIELDS: [&str; 8] = [
    "provider",
    "key_id",
    "region",
    "role_arn",
    "external_id",
    "role_session_name",
    "previous_keys",
    "replica_regions",
];

const KEY_FIELDS: [&str; 3] = ["provider", "key_id", "region"];

/// A field's value after substitution.
struct FieldValue {
    text: String,
    /// Whether `${...}` was expanded: such a value is never quoted in a message.
    substituted: bool,
}

/// The fields of a YAML mapping of fields, by name. On failure (not a mapping, a field name that
/// is not a string, unknown or repeated), the problem; `label` names the mapping in it (`""` for
/// the slot itself, `previous_keys[0]` for an entry).
fn fields_of<'a>(
    node: &'a YamlNode,
    allowed: &[&'static str],
    label: &str,
) -> std::result::Result<BTreeMap<&'static str, &'a YamlNode>, String> {
    let prefix = if label.is_empty() {
        String::new()
    } else {
        format!("{label}: ")
    };
    let YamlNode::Mapping(entries) = node else {
        return Err(format!(
            "{label}{}must be a mapping of fields",
            if label.is_empty() { "" } else { " " }
        ));
    };
    let mut fields = BTreeMap::new();
    for (key, value) in entries {
        let Some(key) = key.text() else {
            return Err(format!("{prefix}field names must be strings"));
        };
        let Some(field) = allowed.iter().find(|f| **f == key) else {
            return Err(format!(
                "{prefix}unknown field {} (fields: {})",
                quoted_prefix(key),
                allowed.join(", ")
            ));
        };
        if fields.insert(*field, value).is_some() {
            return Err(format!("{prefix}{field} is given twice"));
        }
    }
    Ok(fields)
}

/// The text of field `label` (its name, as errors show it) after `${}` substitution; `None` if
/// absent, null or empty. On failure (not a scalar, a substitution error, a forbidden character,
/// too long), the problem, starting with `label` and never quoting the value.
fn field_text(
    node: Option<&&YamlNode>,
    label: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<Option<FieldValue>, String> {
    let raw = match node {
        None | Some(YamlNode::Scalar { null: true, .. }) => return Ok(None),
        Some(YamlNode::Scalar { text, .. }) => text,
        Some(_) => return Err(format!("{label} must be a string")),
    };
    let text = substitute_env(raw, env).map_err(|e| format!("{label}: {e}"))?;
    check_text(&text).map_err(|problem| format!("{label} {problem}"))?;
    Ok((!text.is_empty()).then(|| FieldValue {
        text,
        substituted: raw.contains("${"),
    }))
}

/// The `aws` / `aws-kms` provider of field `label` (`local` is never accepted from YAML). On
/// failure, the problem; the value is quoted only if it was written out, not substituted.
fn yaml_provider(value: Option<FieldValue>, label: &str) -> std::result::Result<Provider, String> {
    match value {
        Some(FieldValue { text, .. }) if text == "aws" => Ok(Provider::Aws),
        Some(FieldValue { text, .. }) if text == "aws-kms" => Ok(Provider::AwsKms),
        Some(FieldValue {
            text,
            substituted: false,
        }) => Err(format!(
            "{label} must be \"aws\" or \"aws-kms\", not {}",
            quoted_prefix(&text)
        )),
        Some(_) => Err(format!(
            "{label} must be \"aws\" or \"aws-kms\" (after substitution)"
        )),
        None => Err(format!("{label} is required")),
    }
}

/// The top-level `audit:` mapping (`principal`, required; `host`, optional), `None` if it is
/// null. Errors: `InvalidConfig` naming `audit` and the field.
fn parse_audit(
    node: &YamlNode,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<crate::audit::AuditOptions>> {
    let audit_error = |message: String| Error::new(ErrorKind::InvalidConfig, message);
    if let YamlNode::Scalar { null: true, .. } = node {
        return Ok(None);
    }
    let fields = fields_of(
        node,
        &["principal", "host", "unwrap_counts_seconds"],
        "audit",
    )
    .map_err(audit_error)?;
    let text = |field: &str| {
        field_text(fields.get(field), &format!("audit.{field}"), env).map_err(audit_error)
    };
    let principal =
        text("principal")?.ok_or_else(|| audit_error("audit.principal is required".into()))?;
    let unwrap_counts = match text("unwrap_counts_seconds")? {
        None => None,
        Some(value) => Some(unwrap_counts_seconds(&value).map_err(audit_error)?),
    };
    let options = crate::audit::AuditOptions {
        principal: principal.text,
        host: text("host")?.map(|host| host.text),
        unwrap_counts,
    };
    options
        .actor()
        .map_err(|e| audit_error(e.message().to_owned()))?;
    Ok(Some(options))
}

/// `audit.unwrap_counts_seconds`: a whole number of seconds in the audit's bounds. On failure,
/// the problem; the value is quoted only if it was written out, not substituted.
fn unwrap_counts_seconds(value: &FieldValue) -> std::result::Result<std::time::Duration, String> {
    let (min, max) = (
        crate::audit::MIN_UNWRAP_COUNTS_INTERVAL.as_secs(),
        crate::audit::MAX_UNWRAP_COUNTS_INTERVAL.as_secs(),
    );
    // Digits only: `parse` would also take a leading `+`. An empty or overlong value fails it.
    let seconds = value
        .text
        .parse::<u64>()
        .ok()
        .filter(|s| value.text.bytes().all(|b| b.is_ascii_digit()) && (min..=max).contains(s));
    match seconds {
        Some(seconds) => Ok(std::time::Duration::from_secs(seconds)),
        None if value.substituted => Err(format!(
            "audit.unwrap_counts_seconds must be a whole number of seconds in {min}..={max}"
        )),
        None => Err(format!(
            "audit.unwrap_counts_seconds must be a whole number of seconds in {min}..={max}, not {}",
            crate::error::quoted_prefix(&value.text)
        )),
    }
}

fn parse_slot(
    name: &str,
    fields: &YamlNode,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Slot> {
    let slot_error = |message: String| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("KMS slot {}: {message}", quoted_prefix(name)),
        )
    };
    let fields = fields_of(fields, &SLOT_FIELDS, "").map_err(slot_error)?;
    let text = |field: &str| field_text(fields.get(field), field, env).map_err(slot_error);
    let provider = text("provider")?;
    let key_id = text("key_id")?;
    let region = text("region")?;
    let role_arn = text("role_arn")?;
    let external_id = text("external_id")?;
    let session_name = text("role_session_name")?;
    let previous_keys = match fields.get("previous_keys") {
        Some(node) => parse_previous_keys(node, env).map_err(slot_error)?,
        None => Vec::new(),
    };
    let replica_regions = match fields.get("replica_regions") {
        Some(node) => parse_replica_regions(node, env).map_err(slot_error)?,
        None => Vec::new(),
    };
    let provider = yaml_provider(provider, "provider").map_err(slot_error)?;
    let key_id = key_id.ok_or_else(|| slot_error("key_id is required".into()))?;
    let region = region.ok_or_else(|| slot_error("region is required".into()))?;
    let assume_role = match (role_arn, external_id, session_name) {
        (Some(role_arn), Some(external_id), session_name) => Some(AssumeRole {
            role_arn: role_arn.text,
            external_id: external_id.text,
            session_name: session_name.map(|s| s.text),
        }),
        (Some(_), None, _) => {
            return Err(slot_error(
                "external_id is required when role_arn is set".into(),
            ))
        }
        (None, Some(_), _) => return Err(slot_error("external_id is set without role_arn".into())),
        (None, None, Some(_)) => {
            return Err(slot_error(
                "role_session_name is set without role_arn".into(),
            ))
        }
        (None, None, None) => None,
    };
    Ok(Slot {
        provider,
        key_id: key_id.text,
        region: region.text,
        assume_role,
        previous_keys,
        replica_regions,
    })
}

/// The `replica_regions` of a slot: null, or a sequence of region names (flow or block style),
/// read no further than one past [`MAX_REPLICA_REGIONS`] (the slot's validation refuses more). On
/// failure, the problem naming `replica_regions[i]`.
fn parse_replica_regions(
    node: &YamlNode,
    env: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<String>, String> {
    let entries = match node {
        YamlNode::Scalar { null: true, .. } => return Ok(Vec::new()),
        YamlNode::Sequence(entries) => entries,
        _ => {
            return Err(
                "replica_regions must be a sequence of region names, e.g. replica_regions: \
                 [us-west-2, eu-west-1]"
                    .into(),
            )
        }
    };
    let mut regions = Vec::with_capacity(entries.len().min(MAX_REPLICA_REGIONS + 1));
    for (i, entry) in entries.iter().enumerate().take(MAX_REPLICA_REGIONS + 1) {
        let label = format!("replica_regions[{i}]");
        let region =
            field_text(Some(&entry), &label, env)?.ok_or_else(|| format!("{label} is empty"))?;
        regions.push(region.text);
    }
    if entries.len() > MAX_REPLICA_REGIONS {
        return Err(format!(
            "replica_regions lists {} regions; the limit is {MAX_REPLICA_REGIONS}",
            entries.len()
        ));
    }
    Ok(regions)
}

/// The `previous_keys` of a slot: null, or a sequence of `{provider, key_id, region}` mappings
/// (flow or block style). On failure, the problem naming `previous_keys[i].field`.
fn parse_previous_keys(
    node: &YamlNode,
    env: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<KeyIdentity>, String> {
    let entries = match node {
        YamlNode::Scalar { null: true, .. } => return Ok(Vec::new()),
        YamlNode::Sequence(entries) => entries,
        _ => {
            return Err(
                "previous_keys must be a sequence of keys, e.g. previous_keys: \
                 [{provider: aws-kms, key_id: \"alias/old\", region: \"us-east-1\"}]"
                    .into(),
            )
        }
    };
    let mut keys = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let label = format!("previous_keys[{i}]");
        let fields = fields_of(entry, &KEY_FIELDS, &label)?;
        let text = |field: &str| field_text(fields.get(field), &format!("{label}.{field}"), env);
        let provider = yaml_provider(text("provider")?, &format!("{label}.provider"))?;
        let key_id = text("key_id")?.ok_or_else(|| format!("{label}.key_id is required"))?;
        let region = text("region")?.ok_or_else(|| format!("{label}.region is required"))?;
        keys.push(KeyIdentity {
            provider,
            key_id: key_id.text,
            region: region.text,
        });
    }
    Ok(keys)
}

/// Expands `value` per the grammar of [`Registry::from_yaml_str_with_env`]: `${NAME}`,
/// `${NAME:-default}`, `$${` for a literal `${`. An empty variable counts as unset. On failure,
/// the problem; it names a valid variable but never quotes `value` (it may be a credential).
fn substitute_env(
    value: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let tail = &rest[dollar..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(after) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let end = after
            .find('}')
            .ok_or("unterminated ${ (write $${ for a literal ${)")?;
        let expression = &after[..end];
        if expression.contains("${") {
            return Err(
                "${ inside ${...} is not supported (a default is literal text; write $${ \
                 outside ${...} for a literal ${)"
                    .into(),
            );
        }
        let (variable, default) = match expression.split_once(":-") {
            Some((variable, default)) => (variable, Some(default)),
            None => (expression, None),
        };
        let valid_name = !variable.is_empty()
            && variable
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !variable.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(
                "invalid variable name in ${...}: a name is letters, digits and _, \
                 not starting with a digit (write $${ for a literal ${)"
                    .into(),
            );
        }
        match (env(variable).filter(|v| !v.is_empty()), default) {
            (Some(set), _) => out.push_str(&set),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable {variable} is not set (or empty)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_YAML: &str = r#"
kms:
  registry:
    vendor-default:
      provider: aws-kms
      key_id:   alias/cyborgdb-default
      region:   us-east-1
    customer-acme:
      provider:    aws
      key_id:      customers/acme/kek        # Secrets Manager name or ARN
      region:      us-west-2
      role_arn:    ${ACME_BYOK_ROLE_ARN}
      external_id: ${ACME_BYOK_EXTERNAL_ID}
      role_session_name: cyborgdb-acme       # optional
"#;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn config_error(yaml: &str, env: &'static [(&'static str, &'static str)]) -> String {
        let err = Registry::from_yaml_str_with_env(yaml, env_of(env)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
        err.message().to_owned()
    }

    #[test]
    fn loads_the_documented_yaml() {
        let env = env_of(&[
            (
                "ACME_BYOK_ROLE_ARN",
                "arn:aws:iam::111122223333:role/cyborgdb",
            ),
            ("ACME_BYOK_EXTERNAL_ID", "8d7c6b5a"),
        ]);
        let registry = Registry::from_yaml_str_with_env(SEED_YAML, env).unwrap();
        assert_eq!(
            registry.summary(),
            "KMS registry loaded (2 entries: [customer-acme, vendor-default])"
        );
        let acme = registry.get("customer-acme").unwrap();
        assert_eq!(acme.provider, Provider::Aws);
        assert_eq!(acme.key_id, "customers/acme/kek");
        assert_eq!(acme.region, "us-west-2");
        let role = acme.assume_role.as_ref().unwrap();
        assert_eq!(role.role_arn, "arn:aws:iam::111122223333:role/cyborgdb");
        assert_eq!(role.external_id, "8d7c6b5a");
        assert_eq!(role.session_name(), "cyborgdb-acme");
        let vendor = registry.get("vendor-default").unwrap();
        assert_eq!(vendor.provider, Provider::AwsKms);
        assert_eq!(vendor.assume_role, None);
        // The ExternalId is a credential: Debug hides it.
        assert!(!format!("{registry:?}").contains("8d7c6b5a"));
    }

    #[test]
    fn substitution_rules() {
        let env = env_of(&[("SET", "value"), ("EMPTY", "")]);
        assert_eq!(substitute_env("a-${SET}-b", &env).unwrap(), "a-value-b");
        assert_eq!(substitute_env("${UNSET:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(substitute_env("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(substitute_env("${SET:-dflt}", &env).unwrap(), "value");
        assert_eq!(substitute_env("${UNSET:-}", &env).unwrap(), "");
        assert_eq!(substitute_env("$plain $", &env).unwrap(), "$plain $");
        assert_eq!(
            substitute_env("${UNSET}", &env).unwrap_err(),
            "environment variable UNSET is not set (or empty)"
        );
        assert_eq!(
            substitute_env("${EMPTY}", &env).unwrap_err(),
            "environment variable EMPTY is not set (or empty)"
        );
        assert!(substitute_env("${OPEN", &env)
            .unwrap_err()
            .starts_with("unterminated"));
        assert!(substitute_env("${1BAD}", &env)
            .unwrap_err()
            .starts_with("invalid variable name"));
    }

    #[test]
    fn a_missing_required_variable_names_slot_field_and_variable() {
        let message = config_error(SEED_YAML, &[("ACME_BYOK_ROLE_ARN", "arn:x")]);
        assert_eq!(
            message,
            "KMS slot \"customer-acme\": external_id: environment variable ACME_BYOK_EXTERNAL_ID is not set (or empty)"
        );
    }

    #[test]
    fn validation_errors_name_slot_and_field() {
        let cases: &[(&str, &str)] = &[
            (
                "kms: {registry: {s: {provider: gcp, key_id: k, region: r}}}",
                "KMS slot \"s\": provider must be \"aws\" or \"aws-kms\", not \"gcp\"",
            ),
            (
                "kms: {registry: {s: {provider: local, key_id: 'file:/k', region: r}}}",
                "KMS slot \"s\": provider must be \"aws\" or \"aws-kms\", not \"local\"",
            ),
            (
                "kms: {registry: {s: {key_id: k, region: r}}}",
                "KMS slot \"s\": provider is required",
            ),
            (
                "kms: {registry: {s: {provider: aws, region: r}}}",
                "KMS slot \"s\": key_id is required",
            ),
            (
                "kms: {registry: {s: {provider: aws-kms, key_id: k}}}",
                "KMS slot \"s\": region is required",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: ''}}}",
                "KMS slot \"s\": region is required",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: r, role_arn: a}}}",
                "KMS slot \"s\": external_id is required when role_arn is set",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: r, external_id: e}}}",
                "KMS slot \"s\": external_id is set without role_arn",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: r, keyid: x}}}",
                "KMS slot \"s\": unknown field \"keyid\" (fields: provider, key_id, region, role_arn, external_id, role_session_name, previous_keys, replica_regions)",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: [k], region: r}}}",
                "KMS slot \"s\": key_id must be a string",
            ),
            (
                "kms: {registry: {s: [1, 2]}}",
                "KMS slot \"s\": must be a mapping of fields",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: r, role_arn: a, external_id: e, role_session_name: 'has space'}}}",
                "KMS slot \"s\": role_session_name must be 2-64 characters of [A-Za-z0-9_+=,.@-]",
            ),
            ("other: 1", "KMS registry YAML has no kms.registry section"),
            ("kms: {registry: [a]}", "kms.registry must be a mapping of slots"),
            ("", "KMS registry YAML is empty"),
        ];
        for (yaml, expected) in cases {
            assert_eq!(&config_error(yaml, &[]), expected, "{yaml}");
        }
        assert!(config_error("kms: {registry: {", &[])
            .starts_with("KMS registry YAML is not valid YAML"));
    }

    const MRK_ARN: &str =
        "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

    #[test]
    fn replica_regions_load_in_order_and_name_the_same_key_in_each_region() {
        let yaml = format!(
            "kms:\n  registry:\n    s:\n      provider: aws-kms\n      key_id: {MRK_ARN}\n      region: us-east-1\n      replica_regions: [us-west-2, '${{SECOND:-eu-west-1}}']\n"
        );
        let registry = Registry::from_yaml_str_with_env(&yaml, env_of(&[])).unwrap();
        let slot = registry.require("s").unwrap();
        assert_eq!(slot.replica_regions, ["us-west-2", "eu-west-1"]);
        let replicas: Vec<KeyIdentity> = slot.replica_keys().collect();
        assert_eq!(
            replicas[0].key_id,
            "arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
        );
        assert_eq!(replicas[1].region, "eu-west-1");
        // A replica is trusted because the slot names it; another region of the same key is not.
        assert!(slot.trusts(&replicas[1]));
        let unlisted = KeyIdentity {
            provider: Provider::AwsKms,
            key_id: key_id_in_region(MRK_ARN, "ap-south-1"),
            region: "ap-south-1".into(),
        };
        assert!(!slot.trusts(&unlisted));
        // A bare mrk- id stays the same id in every region.
        let by_id = "kms: {registry: {s: {provider: aws-kms, key_id: mrk-1a2b, region: us-east-1, replica_regions: [us-west-2]}}}";
        let registry = Registry::from_yaml_str_with_env(by_id, env_of(&[])).unwrap();
        let replica = registry
            .require("s")
            .unwrap()
            .replica_keys()
            .next()
            .unwrap();
        assert_eq!(
            (replica.key_id.as_str(), replica.region.as_str()),
            ("mrk-1a2b", "us-west-2")
        );
        // Null means none.
        let none =
            "kms: {registry: {s: {provider: aws-kms, key_id: k, region: r, replica_regions: ~}}}";
        let registry = Registry::from_yaml_str_with_env(none, env_of(&[])).unwrap();
        assert!(registry.require("s").unwrap().replica_regions.is_empty());
    }

    #[test]
    fn replica_region_errors_name_slot_and_field() {
        let slot = |provider: &str, key_id: &str, region: &str, replicas: &str| {
            format!("kms: {{registry: {{s: {{provider: {provider}, key_id: '{key_id}', region: {region}, replica_regions: {replicas}}}}}}}")
        };
        let nine = "[us-west-1, us-west-2, eu-west-1, eu-west-2, eu-west-3, eu-north-1, ap-south-1, ap-east-1, sa-east-1]";
        let cases = [
            (
                slot("aws", "customers/kek", "us-east-1", "[us-west-2]"),
                "KMS slot \"s\": replica_regions is only for aws-kms slots (multi-Region KMS keys)",
            ),
            (
                slot("aws-kms", "1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1", "[us-west-2]"),
                "KMS slot \"s\": key_id must name a multi-Region key (an mrk- key id, or its key ARN in the slot's region) when replica_regions is set",
            ),
            (
                slot("aws-kms", "alias/kek", "us-east-1", "[us-west-2]"),
                "KMS slot \"s\": key_id must name a multi-Region key (an mrk- key id, or its key ARN in the slot's region) when replica_regions is set",
            ),
            (
                // The ARN's region must be the slot's.
                slot("aws-kms", MRK_ARN, "us-west-2", "[eu-west-1]"),
                "KMS slot \"s\": key_id must name a multi-Region key (an mrk- key id, or its key ARN in the slot's region) when replica_regions is set",
            ),
            (
                slot("aws-kms", "mrk-1a2b", "somewhere", "[us-west-2]"),
                "KMS slot \"s\": region must be an AWS region name (e.g. us-east-1) when replica_regions is set",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "[us-west-2, 'https://evil.example']"),
                "KMS slot \"s\": replica_regions[1] is not an AWS region name (e.g. us-west-2)",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "[US-WEST-2]"),
                "KMS slot \"s\": replica_regions[0] is not an AWS region name (e.g. us-west-2)",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "[us-west-2, us-east-1]"),
                "KMS slot \"s\": replica_regions[1] is the slot's own region",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "[us-west-2, eu-west-1, us-west-2]"),
                "KMS slot \"s\": replica_regions[2] repeats replica_regions[0]",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", nine),
                "KMS slot \"s\": replica_regions lists 9 regions; the limit is 8",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "us-west-2"),
                "KMS slot \"s\": replica_regions must be a sequence of region names, e.g. replica_regions: [us-west-2, eu-west-1]",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "[[us-west-2]]"),
                "KMS slot \"s\": replica_regions[0] must be a string",
            ),
            (
                slot("aws-kms", MRK_ARN, "us-east-1", "[us-west-2, '']"),
                "KMS slot \"s\": replica_regions[1] is empty",
            ),
        ];
        for (yaml, expected) in cases {
            assert_eq!(&config_error(&yaml, &[]), expected, "{yaml}");
        }
        // Programmatic slots follow the same rules.
        let mut slot = Slot::from_fields("p", "aws-kms", MRK_ARN, "us-east-1", "", "", "").unwrap();
        slot.replica_regions = vec!["us-east-1".into()];
        let mut registry = Registry::new();
        let err = registry.insert("p", slot).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert_eq!(
            err.message(),
            "KMS slot \"p\": replica_regions[0] is the slot's own region"
        );
    }

    #[test]
    fn a_replica_shared_with_another_slot_needs_the_same_role() {
        let mut registry = Registry::new();
        let mut with_replica =
            Slot::from_fields("a", "aws-kms", MRK_ARN, "us-east-1", "", "", "").unwrap();
        with_replica.replica_regions = vec!["us-west-2".into()];
        registry.insert("a", with_replica).unwrap();
        let other = Slot::from_fields(
            "b",
            "aws-kms",
            &key_id_in_region(MRK_ARN, "us-west-2"),
            "us-west-2",
            "arn:aws:iam::111122223333:role/r",
            "ext",
            "",
        )
        .unwrap();
        let err = registry.insert("b", other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message()
                .starts_with("KMS slots \"a\" and \"b\" both trust aws-kms key"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn the_audit_setting_loads_and_its_errors_name_the_field() {
        let registry = Registry::from_yaml_str_with_env(
            "audit:\n  principal: ${WHO}\n  host: node-7\nkms:\n  registry: ~\n",
            |name| (name == "WHO").then(|| "svc-keys".to_owned()),
        )
        .unwrap();
        let audit = registry.audit().unwrap();
        assert_eq!(audit.principal, "svc-keys");
        assert_eq!(audit.host.as_deref(), Some("node-7"));
        assert!(Registry::from_yaml_str("kms:\n  registry: ~\n")
            .unwrap()
            .audit()
            .is_none());
        assert!(Registry::from_yaml_str("audit: ~\nkms:\n  registry: ~\n")
            .unwrap()
            .audit()
            .is_none());
        for (yaml, message) in [
            ("audit:\n  host: h\n", "audit.principal is required"),
            (
                "audit:\n  principal: p\n  who: x\n",
                "audit: unknown field \"who\" (fields: principal, host, unwrap_counts_seconds)",
            ),
            ("audit: p\n", "audit must be a mapping of fields"),
            (
                "audit:\n  principal: [a]\n",
                "audit.principal must be a string",
            ),
        ] {
            let yaml = format!("{yaml}kms:\n  registry: ~\n");
            let err = Registry::from_yaml_str(&yaml).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert_eq!(err.message(), message, "{yaml}");
        }
        let mut registry = Registry::new();
        let err = registry
            .set_audit(Some(crate::audit::AuditOptions::new("")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message().starts_with("audit option principal"),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_registry_section_loads_no_slots() {
        let registry =
            Registry::from_yaml_str_with_env("kms:\n  registry:\n", env_of(&[])).unwrap();
        assert!(registry.is_empty());
        assert_eq!(registry.summary(), "KMS registry loaded (0 entries: [])");
    }

    #[test]
    fn programmatic_slots_are_validated_and_local_slots_allowed() {
        let mut registry = Registry::new();
        let local = Slot::new(Provider::Local, "env:DEV_MASTER_KEY", "");
        registry.insert("dev", local.clone()).unwrap();
        let bad = Slot {
            key_id: "/no/scheme".into(),
            ..local
        };
        let err = registry.insert("dev2", bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert_eq!(
            err.message(),
            "KMS slot \"dev2\": key_id of a local slot must be file:<path> or env:<VARIABLE>"
        );
        let err = registry.require("nope").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownSlot);
        assert_eq!(
            err.message(),
            "KMS slot \"nope\" is not in the registry (slots: [dev])"
        );
    }

    /// A billion-laughs document of exactly `len` bytes: top-level keys `a`, `b`, ... each an
    /// anchored sequence of 9 aliases of the one before (`a` holds 9 scalars), so full expansion
    /// is 9^levels nodes; then a one-slot `kms.registry` whose key_id is `key_id` (`k`, or an
    /// alias of the last level), padded with a comment.
    fn billion_laughs(levels: usize, key_id: &str, len: usize) -> String {
        let names: Vec<char> = ('a'..='z').take(levels).collect();
        let mut doc = format!("a: &a [{}]\n", ["l"; 9].join(","));
        for pair in names.windows(2) {
            let alias = format!("*{}", pair[0]);
            doc += &format!("{0}: &{0} [{1}]\n", pair[1], vec![alias; 9].join(","));
        }
        doc += &format!(
            "kms: {{registry: {{s: {{provider: aws-kms, key_id: {key_id}, region: r}}}}}}\n"
        );
        doc.push('#');
        while doc.len() < len - 1 {
            doc.push('x');
        }
        doc.push('\n');
        assert_eq!(doc.len(), len);
        doc
    }

    #[test]
    fn billion_laughs_is_refused_without_expanding() {
        for (levels, len) in [(10, 437), (9, 387)] {
            let last = ('a'..='z').nth(levels - 1).unwrap();
            // Under ignored top-level keys, and reached from the slot.
            for key_id in ["k".to_owned(), format!("*{last}")] {
                let yaml = billion_laughs(levels, &key_id, len);
                assert_eq!(
                    config_error(&yaml, &[]),
                    "KMS registry YAML: anchors (&name) are not accepted; write the value out \
                     (line 1 column 7)",
                    "{yaml}"
                );
            }
        }
    }

    #[test]
    fn aliases_anchors_and_tags_are_refused_anywhere() {
        let slot = "kms: {registry: {s: {provider: aws-kms, key_id: k, region: r}}}\n";
        let cases: &[(&str, &str)] = &[
            (
                "x: &x 1\n",
                "anchors (&name) are not accepted; write the value out (line 1 column 7)",
            ),
            (
                "x: [&x {}]\n",
                "anchors (&name) are not accepted; write the value out (line 1 column 8)",
            ),
            (
                "x: !!str 0012\n",
                "tags (!tag) are not accepted (line 1 column 10)",
            ),
            (
                "x: !custom [1]\n",
                "tags (!tag) are not accepted (line 1 column 12)",
            ),
        ];
        for (ignored, problem) in cases {
            assert_eq!(
                config_error(&format!("{ignored}{slot}"), &[]),
                format!("KMS registry YAML: {problem}"),
                "{ignored}"
            );
        }
        // An alias of nothing never reaches the tree: the parser refuses it.
        assert!(config_error(
            "kms: {registry: {s: {provider: aws-kms, key_id: *k, region: r}}}",
            &[]
        )
        .starts_with("KMS registry YAML is not valid YAML"));
    }

    #[test]
    fn size_depth_and_node_limits() {
        let slot = "kms: {registry: {s: {provider: aws-kms, key_id: k, region: r}}}\n";
        let padded = |len: usize, prefix: &str| {
            let mut doc = format!("{prefix}{slot}#");
            doc += &"x".repeat(len - doc.len() - 1);
            doc.push('\n');
            doc
        };
        let at_limit = padded(MAX_REGISTRY_YAML_LEN, "");
        assert_eq!(
            Registry::from_yaml_str_with_env(&at_limit, env_of(&[]))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            config_error(&padded(MAX_REGISTRY_YAML_LEN + 1, ""), &[]),
            "KMS registry YAML is 1048577 bytes; the limit is 1048576 (1 MiB)"
        );
        // A BOM counts towards the limit.
        assert_eq!(
            config_error(&padded(MAX_REGISTRY_YAML_LEN + 1, "\u{FEFF}"), &[]),
            "KMS registry YAML is 1048577 bytes; the limit is 1048576 (1 MiB)"
        );

        // The root mapping is level 1, so 63 sequences under it reach the limit of 64.
        let nested =
            |depth: usize| format!("x: {}{}\n{slot}", "[".repeat(depth), "]".repeat(depth));
        assert!(Registry::from_yaml_str_with_env(&nested(63), env_of(&[])).is_ok());
        assert_eq!(
            config_error(&nested(64), &[]),
            "KMS registry YAML: nested deeper than 64 levels (line 1 column 67)"
        );
        // Far deeper: refused (by yaml-rust2's own recursion limit first), without a crash.
        config_error(&nested(100_000), &[]);

        // Nodes: root, x, its sequence, its items, then kms: {registry: {s: {3 fields}}} = 12.
        let wide = |items: usize| format!("x: [{}]\n{slot}", vec!["1"; items].join(","));
        let under = MAX_REGISTRY_YAML_NODES - 3 - 12;
        assert!(Registry::from_yaml_str_with_env(&wide(under), env_of(&[])).is_ok());
        assert_eq!(
            config_error(&wide(under + 1), &[]),
            "KMS registry YAML: more than 100000 nodes (line 2 column 60)"
        );
    }

    #[test]
    fn scalars_keep_their_text_exactly_as_written() {
        let written = [
            "0012345", "0x10", "0o17", "+12", "TRUE", "True", "false", "yes", "1e3", "1_000",
            ".inf", "-.5", "12.50", "0b101", "-0", "nUll",
        ];
        for value in written {
            for quoting in ["", "'", "\""] {
                let yaml = format!(
                    "kms:\n  registry:\n    {value}:\n      provider: aws\n      key_id: {quoting}{value}{quoting}\n      region: {quoting}{value}{quoting}\n      role_arn: arn:aws:iam::111122223333:role/r\n      external_id: {quoting}{value}{quoting}\n"
                );
                let registry = Registry::from_yaml_str_with_env(&yaml, env_of(&[])).unwrap();
                let slot = registry.get(value).expect(value);
                assert_eq!(slot.key_id, value);
                assert_eq!(slot.region, value);
                assert_eq!(slot.assume_role.as_ref().unwrap().external_id, value);
            }
        }
    }

    #[test]
    fn a_yaml_null_means_absent_and_a_quoted_null_is_text() {
        for null in ["~", "null", "Null", "NULL", ""] {
            let yaml =
                format!("kms: {{registry: {{s: {{provider: aws, key_id: {null}, region: r}}}}}}");
            assert_eq!(
                config_error(&yaml, &[]),
                "KMS slot \"s\": key_id is required",
                "{null}"
            );
        }
        for quoted in ["'~'", "\"null\""] {
            let yaml =
                format!("kms: {{registry: {{s: {{provider: aws, key_id: {quoted}, region: r}}}}}}");
            let registry = Registry::from_yaml_str_with_env(&yaml, env_of(&[])).unwrap();
            assert_eq!(
                registry.get("s").unwrap().key_id,
                &quoted[1..quoted.len() - 1]
            );
        }
        // A null registry section is an empty registry; a null slot name is refused.
        for registry in ["~", "null", ""] {
            let yaml = format!("kms: {{registry: {registry}}}");
            assert!(Registry::from_yaml_str_with_env(&yaml, env_of(&[]))
                .unwrap()
                .is_empty());
        }
        assert_eq!(
            config_error(
                "kms: {registry: {~: {provider: aws, key_id: k, region: r}}}",
                &[]
            ),
            "kms.registry: slot names must be strings"
        );
    }

    #[test]
    fn substitution_grammar() {
        let env = env_of(&[("A", "aval"), ("B", "bval"), ("EMPTY", "")]);
        assert_eq!(substitute_env("$${A}", &env).unwrap(), "${A}");
        assert_eq!(substitute_env("x$${A:-d}y", &env).unwrap(), "x${A:-d}y");
        assert_eq!(substitute_env("$${A}${A}", &env).unwrap(), "${A}aval");
        assert_eq!(substitute_env("a$$b$", &env).unwrap(), "a$$b$");
        assert_eq!(substitute_env("${A}}", &env).unwrap(), "aval}");
        assert_eq!(substitute_env("${UNSET:-$x}", &env).unwrap(), "$x");
        assert_eq!(substitute_env("${UNSET:-a:-b}", &env).unwrap(), "a:-b");
        // Substituted values are not expanded again.
        let env_with_reference = env_of(&[("R", "${A}")]);
        assert_eq!(substitute_env("${R}", &env_with_reference).unwrap(), "${A}");
        let nested = "${ inside ${...} is not supported (a default is literal text; write $${ \
                      outside ${...} for a literal ${)";
        for value in [
            "${A:-${B}}",
            "${UNSET:-${B}}",
            "${A:-x${B}",
            "${${A}}",
            "${UNSET:-$${B}}",
        ] {
            assert_eq!(substitute_env(value, &env).unwrap_err(), nested, "{value}");
        }
        assert_eq!(
            substitute_env("x${A", &env).unwrap_err(),
            "unterminated ${ (write $${ for a literal ${)"
        );
        for value in ["${1A}", "${}", "${A-B}", "${A:B}", "${ A}", "${é}"] {
            assert!(
                substitute_env(value, &env)
                    .unwrap_err()
                    .starts_with("invalid variable name in ${...}"),
                "{value}"
            );
        }
    }

    #[test]
    fn nested_default_dollar_escape_and_bom_through_the_yaml() {
        let env = || env_of(&[("A", "aval"), ("B", "bval")]);
        let slot = |key_id: &str| {
            format!("kms:\n  registry:\n    s:\n      provider: aws\n      key_id: '{key_id}'\n      region: r\n")
        };
        assert_eq!(
            Registry::from_yaml_str_with_env(&slot("lit-$${A}"), env())
                .unwrap()
                .get("s")
                .unwrap()
                .key_id,
            "lit-${A}"
        );
        let message = config_error(&slot("${A:-${B}}"), &[("A", "aval"), ("B", "bval")]);
        assert!(
            message.starts_with("KMS slot \"s\": key_id: ${ inside ${...} is not supported"),
            "{message}"
        );
        let with_bom = format!("\u{FEFF}{}", slot("k"));
        assert_eq!(
            Registry::from_yaml_str_with_env(&with_bom, env())
                .unwrap()
                .len(),
            1
        );
    }

    /// Every error the `external_id` field (and the fields around it) can give, with a
    /// recognisable secret in the value: the secret never appears in the message.
    #[test]
    fn an_external_id_is_never_echoed() {
        const SECRET: &str = "TOPSECRET-7f3a9c";
        let long = format!("{SECRET}{}", "x".repeat(3000));
        let slot = |extra: &str| {
            format!("kms:\n  registry:\n    s:\n      provider: aws\n      key_id: k\n      region: r\n{extra}")
        };
        let with_role = |external_id: &str| {
            slot(&format!(
                "      role_arn: arn:aws:iam::111122223333:role/r\n      external_id: {external_id}\n"
            ))
        };
        let cases = [
            with_role(&format!("'{SECRET}${{'")),
            with_role(&format!("'{SECRET}${{A:-${{B}}}}'")),
            with_role(&format!("'{SECRET}${{1BAD}}'")),
            with_role(&format!("'{SECRET}${{UNSET_SECRET_VAR}}'")),
            with_role(&format!("\"{SECRET}\\n\"")),
            with_role(&format!("\"{SECRET}\\u202E\"")),
            with_role(&format!("\"{SECRET}\\t\"")),
            with_role(&long),
            with_role(&format!("[{SECRET}]")),
            with_role(&format!("{{{SECRET}: 1}}")),
            with_role(&format!("\"{SECRET}")),
            with_role(&format!("{SECRET}: x")),
            with_role("${NEWLINE_SECRET}"),
            with_role("${LONG_SECRET}"),
            slot(&format!("      external_id: {SECRET}\n")),
            slot(&format!(
                "      external_id: {SECRET}\n      role_session_name: 'bad name'\n"
            )),
            with_role(&format!("{SECRET}\n      role_session_name: 'bad name'")),
            with_role(&format!("{SECRET}\n      provider: again")),
            "kms: {registry: {s: {provider: '${SECRET_PROVIDER}', key_id: k, region: r}}}"
                .to_owned(),
        ];
        let long_env = long.clone();
        let env = move |name: &str| match name {
            "NEWLINE_SECRET" => Some(format!("{SECRET}\n")),
            "LONG_SECRET" => Some(long_env.clone()),
            "SECRET_PROVIDER" => Some(SECRET.to_owned()),
            _ => None,
        };
        for yaml in &cases {
            let err = Registry::from_yaml_str_with_env(yaml, &env).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{yaml}");
            assert!(
                !err.message().contains("TOPSECRET"),
                "{yaml}\n{}",
                err.message()
            );
            assert!(
                !err.message().contains("7f3a9c"),
                "{yaml}\n{}",
                err.message()
            );
        }
        // The programmatic path too.
        for external_id in [format!("{SECRET}\n"), long.clone()] {
            let err =
                Slot::from_fields("s", "aws", "k", "r", "arn:x", &external_id, "").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(!err.message().contains("TOPSECRET"), "{}", err.message());
        }
        // The missing-variable message names the variable, as before.
        assert_eq!(
            config_error(&with_role(&format!("'{SECRET}${{UNSET_SECRET_VAR}}'")), &[]),
            "KMS slot \"s\": external_id: environment variable UNSET_SECRET_VAR is not set (or empty)"
        );
    }

    #[test]
    fn control_and_bidi_characters_are_refused_in_names_and_values_and_shown_escaped() {
        let forbidden = [
            ('\n', "control character U+000A", "\\n"),
            ('\0', "control character U+0000", "\\0"),
            ('\t', "control character U+0009", "\\t"),
            ('\u{7F}', "control character U+007F", "\\u{7f}"),
            ('\u{85}', "control character U+0085", "\\u{85}"),
            ('\u{202E}', "bidirectional-text control U+202E", "\\u{202e}"),
            ('\u{202A}', "bidirectional-text control U+202A", "\\u{202a}"),
            ('\u{2066}', "bidirectional-text control U+2066", "\\u{2066}"),
            ('\u{2069}', "bidirectional-text control U+2069", "\\u{2069}"),
            ('\u{200E}', "bidirectional-text control U+200E", "\\u{200e}"),
            ('\u{200F}', "bidirectional-text control U+200F", "\\u{200f}"),
            ('\u{061C}', "bidirectional-text control U+061C", "\\u{61c}"),
        ];
        for (c, what, escaped) in forbidden {
            let yaml_escape = format!("\\u{:04X}", u32::from(c));
            // In a slot name.
            let yaml = format!(
                "kms: {{registry: {{\"a{yaml_escape}b\": {{provider: aws, key_id: k, region: r}}}}}}"
            );
            let message = config_error(&yaml, &[]);
            assert_eq!(
                message,
                format!("KMS slot name \"a{escaped}b\" contains the {what}")
            );
            assert!(!message.contains(c));
            // In each field value, written out or substituted.
            for field in ["key_id", "region", "role_arn", "external_id"] {
                let mut fields = BTreeMap::from([
                    ("provider", "aws".to_owned()),
                    ("key_id", "k".to_owned()),
                    ("region", "r".to_owned()),
                    ("role_arn", "arn:x".to_owned()),
                    ("external_id", "e".to_owned()),
                ]);
                for value in [format!("v{yaml_escape}"), "${WITH_CHAR}".to_owned()] {
                    fields.insert(field, value);
                    let body: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| format!("{k}: \"{v}\""))
                        .collect();
                    let yaml = format!("kms: {{registry: {{s: {{{}}}}}}}", body.join(", "));
                    let env = move |name: &str| (name == "WITH_CHAR").then(|| format!("v{c}"));
                    let err = Registry::from_yaml_str_with_env(&yaml, env).unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
                    assert_eq!(
                        err.message(),
                        format!("KMS slot \"s\": {field} contains the {what}")
                    );
                }
            }
            // Programmatic slots: the same checks (this is what cyb_kms_client_add_slot calls).
            let err =
                Slot::from_fields(&format!("a{c}b"), "aws", "k", "r", "", "", "").unwrap_err();
            assert_eq!(
                err.message(),
                format!("KMS slot name \"a{escaped}b\" contains the {what}")
            );
            let err = Slot::from_fields("s", "aws", &format!("k{c}"), "r", "", "", "").unwrap_err();
            assert_eq!(
                err.message(),
                format!("KMS slot \"s\": key_id contains the {what}")
            );
            let err =
                Slot::from_fields("s", "aws", "k", "r", "arn:x", &format!("e{c}"), "").unwrap_err();
            assert_eq!(
                err.message(),
                format!("KMS slot \"s\": external_id contains the {what}")
            );
            let mut registry = Registry::new();
            let slot = Slot::from_fields("s", "aws", "k", "r", "", "", "").unwrap();
            let err = registry.insert(&format!("{c}"), slot).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(!err.message().contains(c));
        }
    }

    #[test]
    fn slot_names_are_limited_to_128_bytes_and_not_empty() {
        let yaml = |name: &str| {
            format!("kms: {{registry: {{'{name}': {{provider: aws, key_id: k, region: r}}}}}}")
        };
        let longest = "n".repeat(MAX_SLOT_NAME_LEN);
        assert!(
            Registry::from_yaml_str_with_env(&yaml(&longest), env_of(&[]))
                .unwrap()
                .get(&longest)
                .is_some()
        );
        assert_eq!(
            config_error(&yaml(&format!("{longest}n")), &[]),
            format!(
                "KMS slot name \"{}\"... is 129 bytes; the limit is 128",
                "n".repeat(64)
            )
        );
        assert_eq!(
            config_error(&yaml(""), &[]),
            "KMS slot names must not be empty"
        );
        let err =
            Slot::from_fields(&format!("{longest}n"), "aws", "k", "r", "", "", "").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn the_summary_escapes_names_defensively() {
        let slot = Slot::from_fields("s", "aws", "k", "r", "", "", "").unwrap();
        // Bypasses validation on purpose: summary() must not rely on it.
        let registry = Registry {
            slots: BTreeMap::from([
                ("a\nb\u{202E}".to_owned(), slot.clone()),
                ("plain".to_owned(), slot),
            ]),
            audit: None,
        };
        let summary = registry.summary();
        assert_eq!(
            summary,
            "KMS registry loaded (2 entries: [a\\nb\\u{202e}, plain])"
        );
        assert!(!summary.chars().any(is_forbidden_char));
    }

    #[test]
    fn repeated_keys_and_documents_are_refused() {
        let cases: &[(&str, &str)] = &[
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: r, key_id: k2}}}",
                "KMS slot \"s\": key_id is given twice",
            ),
            (
                "kms: {registry: {s: {provider: aws, key_id: k, region: r}, s: {provider: aws, key_id: k, region: r}}}",
                "KMS slot \"s\": defined twice",
            ),
            (
                "kms: {registry: {}, registry: {}}",
                "KMS registry YAML: the key registry appears twice in one mapping",
            ),
            (
                "kms: {registry: {}}\nkms: {registry: {}}",
                "KMS registry YAML: the key kms appears twice in one mapping",
            ),
            (
                "---\nkms: {registry: {}}\n---\nother: 1\n",
                "KMS registry YAML holds several documents; expected one",
            ),
            (
                "kms: {registry: {s: {[a]: 1}}}",
                "KMS slot \"s\": field names must be strings",
            ),
        ];
        for (yaml, expected) in cases {
            assert_eq!(&config_error(yaml, &[]), expected, "{yaml}");
        }
    }

    #[test]
    fn registry_files_are_bounded_and_must_be_regular() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_REGISTRY_YAML_LEN + 1]).unwrap();
        let err = Registry::from_yaml_file(&big).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message()
                .ends_with("it holds 1048577 bytes, more than the 1048576 accepted"),
            "{}",
            err.message()
        );
        let err = Registry::from_yaml_file("/dev/zero").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert_eq!(
            err.message(),
            "cannot read KMS registry file \"/dev/zero\": it is a character device, not a regular file"
        );
        // A FIFO with no writer: opened without blocking and refused, where it used to hang.
        let fifo = dir.path().join("fifo.yaml");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(Registry::from_yaml_file(&fifo).map(|r| r.len())));
        let err = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO hung")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message().ends_with("not a regular file"),
            "{}",
            err.message()
        );
        let utf16 = dir.path().join("utf16.yaml");
        std::fs::write(&utf16, [0xFF, 0xFE, b'k', 0]).unwrap();
        assert!(Registry::from_yaml_file(&utf16)
            .unwrap_err()
            .message()
            .ends_with("not valid UTF-8"));
        let with_bom = dir.path().join("bom.yaml");
        std::fs::write(
            &with_bom,
            "\u{FEFF}kms: {registry: {s: {provider: aws, key_id: k, region: r}}}",
        )
        .unwrap();
        assert_eq!(Registry::from_yaml_file(&with_bom).unwrap().len(), 1);
    }

    const ROTATED_YAML: &str = r#"
kms:
  registry:
    vendor-default:
      provider: aws-kms
      key_id:   alias/cyborgdb-new
      region:   us-east-1
      previous_keys: [{provider: aws-kms, key_id: "alias/cyborgdb-old", region: "us-east-1"}]
    customer-acme:
      provider: aws
      key_id:   customers/acme/kek-2
      region:   us-west-2
      previous_keys:
        - provider: aws
          key_id:   customers/acme/kek-1
          region:   us-west-2
        - {provider: aws-kms, key_id: '${OLD_KMS_KEY}', region: eu-west-1}
    no-previous:
      provider: aws
      key_id:   k
      region:   r
      previous_keys: ~
"#;

    #[test]
    fn previous_keys_in_flow_and_block_form() {
        let registry = Registry::from_yaml_str_with_env(
            ROTATED_YAML,
            env_of(&[("OLD_KMS_KEY", "alias/acme-kms-old")]),
        )
        .unwrap();
        let key = |provider, key_id: &str, region: &str| KeyIdentity {
            provider,
            key_id: key_id.into(),
            region: region.into(),
        };
        assert_eq!(
            registry.get("vendor-default").unwrap().previous_keys,
            [key(Provider::AwsKms, "alias/cyborgdb-old", "us-east-1")]
        );
        assert_eq!(
            registry.get("customer-acme").unwrap().previous_keys,
            [
                key(Provider::Aws, "customers/acme/kek-1", "us-west-2"),
                key(Provider::AwsKms, "alias/acme-kms-old", "eu-west-1"),
            ]
        );
        assert!(registry
            .get("no-previous")
            .unwrap()
            .previous_keys
            .is_empty());
        let vendor = registry.get("vendor-default").unwrap();
        assert!(vendor.trusts(&key(Provider::AwsKms, "alias/cyborgdb-old", "us-east-1")));
        assert!(!vendor.trusts(&key(Provider::AwsKms, "alias/cyborgdb-old", "us-west-2")));
        let empty =
            "kms: {registry: {s: {provider: aws, key_id: k, region: r, previous_keys: []}}}";
        assert!(Registry::from_yaml_str_with_env(empty, env_of(&[]))
            .unwrap()
            .get("s")
            .unwrap()
            .previous_keys
            .is_empty());
    }

    #[test]
    fn previous_keys_errors_name_the_entry_and_field() {
        let slot = |previous: &str| {
            format!("kms: {{registry: {{s: {{provider: aws, key_id: k, region: r, previous_keys: {previous}}}}}}}")
        };
        let sequence_hint = "previous_keys must be a sequence of keys, e.g. previous_keys: \
                             [{provider: aws-kms, key_id: \"alias/old\", region: \"us-east-1\"}]";
        let cases: &[(&str, &str)] = &[
            ("alias/old", sequence_hint),
            ("{provider: aws, key_id: old, region: r}", sequence_hint),
            (
                "[alias/old]",
                "previous_keys[0] must be a mapping of fields",
            ),
            (
                "[{provider: aws, key_id: old, region: r}, [x]]",
                "previous_keys[1] must be a mapping of fields",
            ),
            (
                "[{provider: aws, key_id: old, region: r, role_arn: x}]",
                "previous_keys[0]: unknown field \"role_arn\" (fields: provider, key_id, region)",
            ),
            (
                "[{provider: aws, key_id: old, key_id: old, region: r}]",
                "previous_keys[0]: key_id is given twice",
            ),
            (
                "[{key_id: old, region: r}]",
                "previous_keys[0].provider is required",
            ),
            (
                "[{provider: aws, region: r}]",
                "previous_keys[0].key_id is required",
            ),
            (
                "[{provider: aws, key_id: old}]",
                "previous_keys[0].region is required",
            ),
            (
                "[{provider: aws, key_id: old, region: ''}]",
                "previous_keys[0].region is required",
            ),
            (
                "[{provider: local, key_id: 'file:/k', region: r}]",
                "previous_keys[0].provider must be \"aws\" or \"aws-kms\", not \"local\"",
            ),
            (
                "[{provider: gcp, key_id: old, region: r}]",
                "previous_keys[0].provider must be \"aws\" or \"aws-kms\", not \"gcp\"",
            ),
            (
                "[{provider: aws, key_id: '${OLD_KEY}', region: r}]",
                "previous_keys[0].key_id: environment variable OLD_KEY is not set (or empty)",
            ),
            (
                "[{provider: aws, key_id: old, region: \"r\\n\"}]",
                "previous_keys[0].region contains the control character U+000A",
            ),
            (
                "[{provider: aws, key_id: [old], region: r}]",
                "previous_keys[0].key_id must be a string",
            ),
        ];
        for (previous, expected) in cases {
            assert_eq!(
                config_error(&slot(previous), &[]),
                format!("KMS slot \"s\": {expected}"),
                "{previous}"
            );
        }
        assert_eq!(
            config_error(
                "kms: {registry: {s: {provider: aws, key_id: k, region: r, previous_keys: [], previous_keys: []}}}",
                &[]
            ),
            "KMS slot \"s\": previous_keys is given twice"
        );
        // A previous key another slot reaches with a different role: the insert rule applies.
        let shared = "kms: {registry: {\
             a: {provider: aws, key_id: old, region: r, role_arn: 'arn:a', external_id: e},\
             b: {provider: aws, key_id: new, region: r, previous_keys: [{provider: aws, key_id: old, region: r}]}}}";
        assert!(config_error(shared, &[])
            .starts_with("KMS slots \"a\" and \"b\" both trust aws key \"old\""));
    }

    /// The line an `UntrustedKey` error tells operators to paste parses back to the same key,
    /// whatever the key's text.
    #[test]
    fn the_previous_keys_line_pastes_back_to_the_same_key() {
        let awkward = [
            ("0012345", "us-east-1"),
            ("alias/\"quoted\" \\back\\slash", "us-east-1"),
            (
                "arn:aws:kms:us-east-1:111122223333:key/a #not-a-comment",
                "us-east-1",
            ),
            ("key: {with} [flow], 'single' & *star ! % @ `", "eu-west-1"),
            ("tail\\", "\"r\""),
            ("zero\u{200B}width soft\u{AD}hyphen é 鍵 🔑", "ap-south-1"),
            ("${NOT_A_VARIABLE}", "us-east-1"),
        ];
        for (key_id, region) in awkward {
            for provider in [Provider::AwsKms, Provider::Aws] {
                let key = KeyIdentity {
                    provider,
                    key_id: key_id.into(),
                    region: region.into(),
                };
                let line = key.previous_keys_line();
                let yaml = format!(
                    "kms:\n  registry:\n    s:\n      provider: aws-kms\n      key_id: current\n      region: us-east-1\n      {line}\n"
                );
                // `${` in a key is written `$${` by no one: the line is for keys without it.
                if key_id.contains("${") {
                    assert!(Registry::from_yaml_str_with_env(&yaml, env_of(&[])).is_err());
                    continue;
                }
                let registry = Registry::from_yaml_str_with_env(&yaml, env_of(&[]))
                    .unwrap_or_else(|e| panic!("{line}\n{e}"));
                assert_eq!(
                    registry.get("s").unwrap().previous_keys,
                    std::slice::from_ref(&key),
                    "{line}"
                );
            }
        }
        // A hostile key (from an envelope) never puts a raw control character in the line.
        let hostile = KeyIdentity {
            provider: Provider::AwsKms,
            key_id: "a\nb\u{202E}c\u{1b}[31m".into(),
            region: "r\0".into(),
        };
        assert_eq!(
            hostile.previous_keys_line(),
            "previous_keys: [{provider: aws-kms, key_id: \"a\\u000Ab\\u202Ec\\u001B[31m\", region: \"r\\u0000\"}]"
        );
    }

    /// The C ABI entry points of the findings: the exact code, a message without raw control
    /// characters, and the registry in use unchanged after a refused load.
    #[test]
    fn the_c_abi_refuses_billion_laughs_and_control_characters_with_invalid_config() {
        use crate::ffi::{
            cyb_kms_client_add_previous_key, cyb_kms_client_add_slot, cyb_kms_client_free,
            cyb_kms_client_load_registry_yaml, cyb_kms_client_new, cyb_kms_slot,
            cyb_last_error_message, cyb_result, cyb_str,
        };
        let text = |s: &str| cyb_str {
            data: s.as_ptr().cast(),
            len: s.len(),
        };
        let last_message = || {
            unsafe { std::ffi::CStr::from_ptr(cyb_last_error_message()) }
                .to_str()
                .unwrap()
                .to_owned()
        };
        let mut client = std::ptr::null_mut();
        assert_eq!(
            unsafe { cyb_kms_client_new(std::ptr::null(), &mut client) },
            cyb_result::CYB_RESULT_OK
        );
        let load = |yaml: &str, slots: &mut usize| unsafe {
            cyb_kms_client_load_registry_yaml(client, yaml.as_ptr().cast(), yaml.len(), slots)
        };
        let mut slots = 0;
        let good = "kms: {registry: {s: {provider: aws-kms, key_id: k, region: r}}}";
        assert_eq!(load(good, &mut slots), cyb_result::CYB_RESULT_OK);
        assert_eq!(slots, 1);
        for (levels, len) in [(10, 437), (9, 387)] {
            let mut slots = 99;
            let code = load(&billion_laughs(levels, "k", len), &mut slots);
            assert_eq!(code, cyb_result::CYB_RESULT_INVALID_CONFIG);
            assert_eq!(slots, 99);
            assert!(
                last_message().starts_with("KMS registry YAML: anchors (&name) are not accepted"),
                "{}",
                last_message()
            );
        }
        // Slot "s" of the good load is still there: trusting one more key in it works.
        let previous = cyb_kms_slot {
            provider: text("aws-kms"),
            key_id: text("alias/old"),
            region: text("r"),
            role_arn: text(""),
            external_id: text(""),
            role_session_name: text(""),
            replica_regions: std::ptr::null(),
            replica_region_count: 0,
        };
        let code =
            unsafe { cyb_kms_client_add_previous_key(client, "s".as_ptr().cast(), 1, &previous) };
        assert_eq!(code, cyb_result::CYB_RESULT_OK);
        // cyb_kms_client_add_slot applies the name and value checks.
        for (name, external_id) in [("a\nb", "e"), ("ok", "e\u{202E}")] {
            let slot = cyb_kms_slot {
                provider: text("aws"),
                key_id: text("k"),
                region: text("r"),
                role_arn: text("arn:aws:iam::111122223333:role/r"),
                external_id: text(external_id),
                role_session_name: text(""),
                replica_regions: std::ptr::null(),
                replica_region_count: 0,
            };
            let code =
                unsafe { cyb_kms_client_add_slot(client, name.as_ptr().cast(), name.len(), &slot) };
            assert_eq!(code, cyb_result::CYB_RESULT_INVALID_CONFIG);
            assert!(
                !last_message().chars().any(is_forbidden_char),
                "{}",
                last_message()
            );
        }
        unsafe { cyb_kms_client_free(client) };
    }

    #[test]
    fn a_key_trusted_by_two_slots_must_be_reached_with_one_role() {
        let two = |role_a: &str, role_b: &str, b_key: &str| {
            format!(
                "kms: {{registry: {{\
                 a: {{provider: aws, key_id: k, region: r{role_a}}},\
                 b: {{provider: aws, key_id: {b_key}, region: r{role_b}, previous_keys: [{{provider: aws, key_id: old, region: r}}]}}}}}}"
            )
        };
        let role = ", role_arn: 'arn:a', external_id: e";
        assert_eq!(
            config_error(&two("", role, "k"), &[]),
            "KMS slots \"a\" and \"b\" both trust aws key \"k\" in \"r\" but reach it with \
             different roles; an envelope could pick the role by naming the other slot: give \
             each key one role (name keys in other accounts by their full ARN)"
        );
        assert!(Registry::from_yaml_str_with_env(&two(role, role, "k"), env_of(&[])).is_ok());
        assert!(Registry::from_yaml_str_with_env(&two("", role, "k2"), env_of(&[])).is_ok());
    }

    /// Loading checks the one-role-per-key rule in one pass: 8,300 slots (near the node limit),
    /// each with its own role, took 67 s in a debug build when each slot was checked against
    /// every other (0.5 s now). The bound is generous; it catches the quadratic check.
    #[test]
    fn a_large_registry_loads_in_bounded_time() {
        let mut yaml = String::from("kms:\n  registry:\n");
        for i in 0..8300 {
            yaml += &format!(
                "    s{i}: {{provider: aws, key_id: k{i}, region: r, role_arn: a{i}, external_id: e}}\n"
            );
        }
        let started = std::time::Instant::now();
        let registry = Registry::from_yaml_str_with_env(&yaml, env_of(&[])).unwrap();
        assert_eq!(registry.len(), 8300);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }
}
