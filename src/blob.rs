//! The envelope itself: [`KmsBlob`], its [`Provider`]s, and the rules a blob must meet to be stored.

use std::fmt;
use std::str::FromStr;

use crate::error::{quoted_prefix, Error, Result};

/// Longest accepted `kms_name`, `provider`, `key_id` or `region`, in bytes (a KMS alias ARN fits).
pub const MAX_STRING_FIELD_LEN: usize = 2048;
/// Longest accepted `wrapped_kek`, in bytes (an AWS KMS ciphertext blob fits).
pub const MAX_WRAPPED_KEK_LEN: usize = 8192;

/// A per-index KMS envelope, with exactly the documented fields.
///
/// `wrapped_kek` is the KEK as wrapped by the provider — ciphertext, never the plaintext KEK.
/// `Debug` prints its length only. `Default` gives empty fields and `version` 0, as the C++ struct.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KmsBlob {
    /// Logical KMS name: the registry slot that wraps and unwraps this KEK.
    pub kms_name: String,
    /// `"aws"`, `"aws-kms"` or `"none"`.
    pub provider: String,
    /// KMS key identifier (key ARN, key id, alias) or Secrets Manager secret name / ARN.
    pub key_id: String,
    /// KMS region.
    pub region: String,
    /// The wrapped KEK bytes. Empty for provider `none`.
    pub wrapped_kek: Vec<u8>,
    /// Envelope version; bump it on rotation.
    pub version: u32,
    /// Unix epoch seconds; 0 on create or push is stamped with the current time.
    pub created_at: i64,
}

impl fmt::Debug for KmsBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsBlob")
            .field("kms_name", &self.kms_name)
            .field("provider", &self.provider)
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .field(
                "wrapped_kek",
                &format_args!("<{} bytes>", self.wrapped_kek.len()),
            )
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// The providers an envelope may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// AES-256-GCM under a 32-byte value kept in AWS Secrets Manager.
    Aws,
    /// `kms:Encrypt` / `kms:Decrypt` with an AWS KMS key.
    AwsKms,
    /// No wrapping: the caller supplies the KEK; nothing key-derived is stored.
    None,
    /// AES-256-GCM under a 32-byte master key from a local file or environment variable.
    /// For development and examples only — never for production.
    Local,
}

impl Provider {
    /// Every provider, in documentation order.
    /// cbindgen:ignore
    pub const ALL: [Provider; 4] = [
        Provider::Aws,
        Provider::AwsKms,
        Provider::None,
        Provider::Local,
    ];

    /// The name stored in an envelope's `provider` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::AwsKms => "aws-kms",
            Provider::None => "none",
            Provider::Local => "local",
        }
    }
}

impl FromStr for Provider {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "provider must be \"aws\", \"aws-kms\", \"none\" or \"local\", not {}",
                    quoted_prefix(name)
                ))
            })
    }
}

impl KmsBlob {
    /// Checks the rules every stored envelope meets (docs/storage.md, "Envelope rules"):
    /// a known provider; string fields of at most [`MAX_STRING_FIELD_LEN`] bytes without NUL;
    /// `wrapped_kek` of at most [`MAX_WRAPPED_KEK_LEN`] bytes; provider `none` stores no
    /// `wrapped_kek`; `aws` and `aws-kms` need `kms_name`, `key_id`, `region` and `wrapped_kek`;
    /// `local` needs `kms_name`, `key_id` and `wrapped_kek` (no region).
    ///
    /// Errors are [`crate::ErrorKind::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<Provider> {
        let strings = [
            ("kms_name", &self.kms_name),
            ("provider", &self.provider),
            ("key_id", &self.key_id),
            ("region", &self.region),
        ];
        for (field, value) in strings {
            if value.len() > MAX_STRING_FIELD_LEN {
                return Err(Error::invalid_argument(format!(
                    "{field} is {} bytes, longer than the {MAX_STRING_FIELD_LEN}-byte limit",
                    value.len()
                )));
            }
            if value.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "{field} contains a NUL byte"
                )));
            }
        }
        if self.wrapped_kek.len() > MAX_WRAPPED_KEK_LEN {
            return Err(Error::invalid_argument(format!(
                "wrapped_kek is {} bytes, longer than the {MAX_WRAPPED_KEK_LEN}-byte limit",
                self.wrapped_kek.len()
            )));
        }
        let provider: Provider = self.provider.parse()?;
        match provider {
            Provider::None if !self.wrapped_kek.is_empty() => Err(Error::invalid_argument(
                "provider \"none\" stores nothing key-derived, so wrapped_kek must be empty",
            )),
            Provider::None => Ok(provider),
            Provider::Aws | Provider::AwsKms | Provider::Local => {
                let required = [
                    ("kms_name", self.kms_name.is_empty()),
                    ("key_id", self.key_id.is_empty()),
                    (
                        "region",
                        provider != Provider::Local && self.region.is_empty(),
                    ),
                    ("wrapped_kek", self.wrapped_kek.is_empty()),
                ];
                match required.iter().find(|(_, empty)| *empty) {
                    Some((field, _)) => Err(Error::invalid_argument(format!(
                        "provider {:?} needs a non-empty {field}",
                        provider.as_str()
                    ))),
                    None => Ok(provider),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn aws_kms_blob() -> KmsBlob {
        KmsBlob {
            kms_name: "prod-kms".into(),
            provider: "aws-kms".into(),
            key_id: "alias/cyborgdb".into(),
            region: "us-east-1".into(),
            wrapped_kek: vec![7; 184],
            version: 1,
            created_at: 0,
        }
    }

    fn invalid_message(blob: &KmsBlob) -> String {
        let err = blob.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        err.message().to_owned()
    }

    #[test]
    fn accepts_each_provider_in_its_documented_shape() {
        assert_eq!(aws_kms_blob().validate().unwrap(), Provider::AwsKms);
        let aws = KmsBlob {
            provider: "aws".into(),
            ..aws_kms_blob()
        };
        assert_eq!(aws.validate().unwrap(), Provider::Aws);
        let none = KmsBlob {
            provider: "none".into(),
            ..KmsBlob::default()
        };
        assert_eq!(none.validate().unwrap(), Provider::None);
        let local = KmsBlob {
            provider: "local".into(),
            region: String::new(),
            ..aws_kms_blob()
        };
        assert_eq!(local.validate().unwrap(), Provider::Local);
    }

    #[test]
    fn rejects_unknown_provider_naming_it() {
        for bad in ["", "AWS", "gcp-kms", "aws-kms "] {
            let blob = KmsBlob {
                provider: bad.into(),
                ..aws_kms_blob()
            };
            assert!(invalid_message(&blob).contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn none_provider_must_not_carry_a_wrapped_kek() {
        let blob = KmsBlob {
            provider: "none".into(),
            wrapped_kek: vec![1],
            ..KmsBlob::default()
        };
        assert!(invalid_message(&blob).contains("wrapped_kek must be empty"));
    }

    #[test]
    fn kms_providers_need_their_fields() {
        for field in ["kms_name", "key_id", "region", "wrapped_kek"] {
            let mut blob = aws_kms_blob();
            match field {
                "kms_name" => blob.kms_name.clear(),
                "key_id" => blob.key_id.clear(),
                "region" => blob.region.clear(),
                _ => blob.wrapped_kek.clear(),
            }
            assert!(invalid_message(&blob).contains(field), "{field}");
        }
    }

    #[test]
    fn enforces_size_bounds_at_the_limit() {
        let mut blob = aws_kms_blob();
        blob.key_id = "k".repeat(MAX_STRING_FIELD_LEN);
        blob.wrapped_kek = vec![0; MAX_WRAPPED_KEK_LEN];
        blob.validate().unwrap();
        blob.key_id.push('k');
        assert!(invalid_message(&blob).contains("key_id is 2049 bytes"));
        blob.key_id.pop();
        blob.wrapped_kek.push(0);
        assert!(invalid_message(&blob).contains("wrapped_kek is 8193 bytes"));
    }

    #[test]
    fn rejects_nul_in_string_fields() {
        let blob = KmsBlob {
            region: "us-east-1\0".into(),
            ..aws_kms_blob()
        };
        assert!(invalid_message(&blob).contains("region contains a NUL"));
    }

    #[test]
    fn debug_hides_wrapped_kek_bytes() {
        let blob = KmsBlob {
            wrapped_kek: vec![0xAB; 3],
            ..aws_kms_blob()
        };
        let shown = format!("{blob:?}");
        assert!(shown.contains("<3 bytes>"));
        assert!(!shown.contains("171"));
    }
}
