//! The registry of named KMS slots: which provider, key and region wrap an index's KEK, and which
//! role (if any) to assume first. Loaded from the service YAML (`kms.registry`) or built in code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use crate::blob::Provider;
use crate::error::{quoted_prefix, Error, ErrorKind, Result};
use crate::fs_bounded::{read_secret_bounded, Symlinks};

/// Session name used for `sts:AssumeRole` when a slot sets none.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "cyborgdb-kms";

/// Largest registry file [`Registry::from_yaml_file`] reads (1 MiB); a larger one is refused
/// before it is read.
pub(crate) const MAX_REGISTRY_FILE_LEN: usize = 1 << 20;

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
        check_key(&key, "").map_err(|(field, problem)| field_error(&field, problem))?;
        Ok(key)
    }

    /// The slot-YAML line that trusts this key as a previous key, e.g.
    /// `previous_keys: [{provider: aws-kms, key_id: "alias/old", region: "us-east-1"}]`.
    pub fn previous_keys_line(&self) -> String {
        format!(
            "previous_keys: [{{provider: {}, key_id: {:?}, region: {:?}}}]",
            self.provider.as_str(),
            self.key_id,
            self.region
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
}

impl Slot {
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

    /// Whether this slot unwraps with `key`: its current key or one of its previous keys.
    pub fn trusts(&self, key: &KeyIdentity) -> bool {
        (key.provider == self.provider && key.key_id == self.key_id && key.region == self.region)
            || self.previous_keys.contains(key)
    }

    /// Checks the slot's rules; errors are `InvalidConfig` naming `slot` and the field.
    pub fn validate(&self, slot: &str) -> Result<()> {
        let field_error = |field: &str, problem: &str| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("KMS slot {}: {field} {problem}", quoted_prefix(slot)),
            )
        };
        if slot.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "KMS slot names must not be empty",
            ));
        }
        check_key(&self.key(), "").map_err(|(field, problem)| field_error(&field, problem))?;
        if self.provider == Provider::Local && self.assume_role.is_some() {
            return Err(field_error("role_arn", "is not used by a local slot"));
        }
        for (i, previous) in self.previous_keys.iter().enumerate() {
            check_key(previous, &format!("previous_keys[{i}]."))
                .map_err(|(field, problem)| field_error(&field, problem))?;
        }
        if let Some(role) = &self.assume_role {
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

/// The rules of one key's fields; on failure, the field (prefixed with `field_prefix`) and the
/// problem.
fn check_key(
    key: &KeyIdentity,
    field_prefix: &str,
) -> std::result::Result<(), (String, &'static str)> {
    let fail = |field: &str, problem| Err((format!("{field_prefix}{field}"), problem));
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
        if value.len() > crate::blob::MAX_STRING_FIELD_LEN || value.contains('\0') {
            return fail(field, "is too long or contains NUL");
        }
    }
    Ok(())
}

/// Named slots. Cheap to clone; validated on every insertion, so a `Registry` only ever holds
/// valid slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    slots: BTreeMap<String, Slot>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
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
        let role_of = |slot: &Slot| {
            slot.assume_role
                .as_ref()
                .map(|role| (role.role_arn.clone(), role.external_id.clone()))
        };
        for (other_name, other) in self.slots.iter().filter(|(n, _)| n.as_str() != name) {
            if role_of(other) == role_of(&slot) {
                continue;
            }
            let keys = std::iter::once(slot.key()).chain(slot.previous_keys.iter().cloned());
            if let Some(shared) = keys.into_iter().find(|key| other.trusts(key)) {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "KMS slots {} and {} both trust {shared} but reach it with different roles; \
                         an envelope could pick the role by naming the other slot: give each key \
                         one role (name keys in other accounts by their full ARN)",
                        quoted_prefix(other_name),
                        quoted_prefix(name)
                    ),
                ));
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
                    self.names().collect::<Vec<_>>().join(", ")
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

    /// `KMS registry loaded (N entries: [a, b])`, the line the service logs after a load.
    pub fn summary(&self) -> String {
        format!(
            "KMS registry loaded ({} entries: [{}])",
            self.len(),
            self.names().collect::<Vec<_>>().join(", ")
        )
    }

    /// Parses the `kms.registry` section of a service YAML document, substituting `${VAR}` and
    /// `${VAR:-default}` from the process environment (an empty variable counts as unset).
    /// Other top-level keys are ignored.
    ///
    /// Errors: `InvalidConfig` naming the slot and field (or the YAML position, or the missing
    /// variable).
    pub fn from_yaml_str(yaml: &str) -> Result<Registry> {
        Registry::from_yaml_str_with_env(yaml, |name| std::env::var(name).ok())
    }

    /// [`Registry::from_yaml_str`] on the contents of the file at `path`.
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
        let bytes = read_secret_bounded(path, MAX_REGISTRY_FILE_LEN, Symlinks::Follow)
            .map_err(|e| unreadable(&e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| unreadable(&e))?;
        Registry::from_yaml_str(text).map_err(|e| e.context(format_args!("{path:?}")))
    }

    /// [`Registry::from_yaml_str`] with variables looked up by `env` instead of the environment.
    pub fn from_yaml_str_with_env(
        yaml: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Registry> {
        let config_error = |message: String| Error::new(ErrorKind::InvalidConfig, message);
        let documents = YamlLoader::load_from_str(yaml)
            .map_err(|e| config_error(format!("KMS registry YAML is not valid YAML: {e}")))?;
        let root = match documents.as_slice() {
            [root] => root,
            [] => return Err(config_error("KMS registry YAML is empty".into())),
            _ => {
                return Err(config_error(
                    "KMS registry YAML holds several documents; expected one".into(),
                ))
            }
        };
        let slots = match &root["kms"]["registry"] {
            Yaml::Hash(slots) => slots,
            Yaml::BadValue => {
                return Err(config_error(
                    "KMS registry YAML has no kms.registry section".into(),
                ))
            }
            Yaml::Null => return Ok(Registry::new()),
            _ => {
                return Err(config_error(
                    "kms.registry must be a mapping of slots".into(),
                ))
            }
        };
        let mut registry = Registry::new();
        for (name, fields) in slots {
            let name = scalar_string(name)
                .ok_or_else(|| config_error("kms.registry: slot names must be strings".into()))?;
            let slot = parse_slot(&name, fields, &env)?;
            if registry.slots.contains_key(&name) {
                return Err(config_error(format!(
                    "KMS slot {}: defined twice",
                    quoted_prefix(&name)
                )));
            }
            registry.insert(&name, slot)?;
        }
        Ok(registry)
    }
}

/// The text of a YAML scalar (strings, and numbers or booleans as written).
fn scalar_string(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

const SLOT_FIELDS: [&str; 6] = [
    "provider",
    "key_id",
    "region",
    "role_arn",
    "external_id",
    "role_session_name",
];

fn parse_slot(name: &str, fields: &Yaml, env: &impl Fn(&str) -> Option<String>) -> Result<Slot> {
    let slot_error = |message: String| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("KMS slot {}: {message}", quoted_prefix(name)),
        )
    };
    let Yaml::Hash(fields) = fields else {
        return Err(slot_error("must be a mapping of fields".into()));
    };
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    for (key, value) in fields {
        let key = scalar_string(key).unwrap_or_default();
        let Some(field) = SLOT_FIELDS.iter().find(|f| **f == key) else {
            return Err(slot_error(format!(
                "unknown field {} (fields: {})",
                quoted_prefix(&key),
                SLOT_FIELDS.join(", ")
            )));
        };
        let raw = match value {
            Yaml::Null => continue,
            other => scalar_string(other)
                .ok_or_else(|| slot_error(format!("{field} must be a string")))?,
        };
        let value = substitute_env(&raw, env).map_err(|e| slot_error(format!("{field}: {e}")))?;
        if !value.is_empty() {
            values.insert(field, value);
        }
    }
    let provider = match values.get("provider").map(String::as_str) {
        Some("aws") => Provider::Aws,
        Some("aws-kms") => Provider::AwsKms,
        Some(other) => {
            return Err(slot_error(format!(
                "provider must be \"aws\" or \"aws-kms\", not {}",
                quoted_prefix(other)
            )))
        }
        None => return Err(slot_error("provider is required".into())),
    };
    let mut take = |field: &str| values.remove(field);
    let key_id = take("key_id").ok_or_else(|| slot_error("key_id is required".into()))?;
    let region = take("region").ok_or_else(|| slot_error("region is required".into()))?;
    let role_arn = take("role_arn");
    let external_id = take("external_id");
    let session_name = take("role_session_name");
    let assume_role = match (role_arn, external_id, session_name) {
        (Some(role_arn), Some(external_id), session_name) => Some(AssumeRole {
            role_arn,
            external_id,
            session_name,
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
        key_id,
        region,
        assume_role,
        previous_keys: Vec::new(),
    })
}

/// Replaces each `${VAR}` (required) and `${VAR:-default}` in `value`. An empty variable counts
/// as unset. Text without `${` is returned unchanged.
fn substitute_env(
    value: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {}", quoted_prefix(value)))?;
        let expression = &after[..end];
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
            return Err(format!(
                "invalid variable name {} in {}",
                quoted_prefix(variable),
                quoted_prefix(value)
            ));
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
                "KMS slot \"s\": unknown field \"keyid\" (fields: provider, key_id, region, role_arn, external_id, role_session_name)",
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
        let local = Slot {
            previous_keys: Vec::new(),
            provider: Provider::Local,
            key_id: "env:DEV_MASTER_KEY".into(),
            region: String::new(),
            assume_role: None,
        };
        registry.insert("dev", local.clone()).unwrap();
        let bad = Slot {
            previous_keys: Vec::new(),
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
}
