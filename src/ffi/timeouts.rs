//! `cyb_aws_timeouts`: the time and retry bounds shared by every option struct that reaches AWS.

use std::time::Duration;

use super::boundary::Failure;
use crate::aws::{AwsRetryMode, AwsTimeouts};

/// Most attempts per call accepted in `max_attempts`, `AWS_MAX_ATTEMPTS` or the profile.
pub const CYB_MAX_ATTEMPTS: u32 = 10;
const _: () = assert!(CYB_MAX_ATTEMPTS == crate::aws::MAX_ATTEMPTS_LIMIT);

/// `retry_mode` of the option structs: unset — `AWS_RETRY_MODE`, else `retry_mode` of the AWS
/// profile, else standard.
pub const CYB_RETRY_MODE_DEFAULT: u32 = 0;
/// `retry_mode`: the SDK's standard retries (randomized exponential backoff).
pub const CYB_RETRY_MODE_STANDARD: u32 = 1;
/// `retry_mode`: standard retries plus a client-side rate limiter that slows down after
/// throttling answers.
pub const CYB_RETRY_MODE_ADAPTIVE: u32 = 2;

/// The Rust retry mode of a C `retry_mode` field (`field` names it in the error):
/// `CYB_RESULT_INVALID_ARGUMENT` for a value that is none of `CYB_RETRY_MODE_*`.
pub(crate) fn retry_mode(value: u32, field: &str) -> Result<Option<AwsRetryMode>, Failure> {
    match value {
        CYB_RETRY_MODE_DEFAULT => Ok(None),
        CYB_RETRY_MODE_STANDARD => Ok(Some(AwsRetryMode::Standard)),
        CYB_RETRY_MODE_ADAPTIVE => Ok(Some(AwsRetryMode::Adaptive)),
        other => Err(Failure::invalid_argument(format!(
            "{field} is {other}: use CYB_RETRY_MODE_DEFAULT (0), CYB_RETRY_MODE_STANDARD (1) or \
             CYB_RETRY_MODE_ADAPTIVE (2)"
        ))),
    }
}

/// Time and retry bounds of AWS calls (KMS, Secrets Manager, STS, S3). Zero-initialize it for the
/// defaults: every zero field means "default".
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct cyb_aws_timeouts {
    /// Time to connect, in milliseconds (default 3000).
    pub connect_timeout_ms: u32,
    /// Time for one attempt of a call, in milliseconds (default 5000).
    pub attempt_timeout_ms: u32,
    /// Time for a whole call, retries included, in milliseconds (default 15000).
    pub operation_timeout_ms: u32,
    /// Attempts per call, the first included (1 = no retry; at most `CYB_MAX_ATTEMPTS`). 0: `AWS_MAX_ATTEMPTS`,
    /// else `max_attempts` of the AWS profile, else 3.
    pub max_attempts: u32,
    /// Upper bound of the first retry's randomized backoff, in milliseconds (default 1000).
    pub initial_backoff_ms: u32,
}

impl From<&cyb_aws_timeouts> for AwsTimeouts {
    fn from(c: &cyb_aws_timeouts) -> Self {
        let defaults = AwsTimeouts::default();
        let millis = |ms: u32, default: Duration| match ms {
            0 => default,
            ms => Duration::from_millis(u64::from(ms)),
        };
        AwsTimeouts {
            connect: millis(c.connect_timeout_ms, defaults.connect),
            attempt: millis(c.attempt_timeout_ms, defaults.attempt),
            operation: millis(c.operation_timeout_ms, defaults.operation),
            max_attempts: match c.max_attempts {
                0 => None,
                n => Some(n),
            },
            retry_mode: None,
            initial_backoff: millis(c.initial_backoff_ms, defaults.initial_backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_default_and_values_are_milliseconds() {
        assert_eq!(
            AwsTimeouts::from(&cyb_aws_timeouts::default()),
            AwsTimeouts::default()
        );
        let set = cyb_aws_timeouts {
            connect_timeout_ms: 1,
            attempt_timeout_ms: 2,
            operation_timeout_ms: 3,
            max_attempts: 4,
            initial_backoff_ms: 5,
        };
        assert_eq!(
            AwsTimeouts::from(&set),
            AwsTimeouts {
                connect: Duration::from_millis(1),
                attempt: Duration::from_millis(2),
                operation: Duration::from_millis(3),
                max_attempts: Some(4),
                retry_mode: None,
                initial_backoff: Duration::from_millis(5),
            }
        );
    }
}
