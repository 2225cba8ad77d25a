"""Enumerated option values of ``KMSClient`` and ``StorageConfig.s3``, the Python spelling of the
C++ ``RetryMode`` and ``S3Encryption``. Both are ``str`` enums: a member and its value (e.g.
``RetryMode.ADAPTIVE`` and ``"adaptive"``) are accepted alike; ``None`` is C++'s ``Default`` /
``None``."""

import enum


class RetryMode(str, enum.Enum):
    """How AWS calls are retried (C++ ``RetryMode``; the values are ``AWS_RETRY_MODE``'s).
    ``retry_mode=None`` means ``AWS_RETRY_MODE``, else the AWS profile's ``retry_mode``, else
    STANDARD."""

    STANDARD = "standard"
    """Randomized exponential backoff."""
    ADAPTIVE = "adaptive"
    """STANDARD plus a client-side rate limiter that holds requests back after throttling answers
    (for tens of seconds after a first throttle: size the operation timeout for it)."""


class S3Encryption(str, enum.Enum):
    """Server-side encryption requested on every S3 PutObject (C++ ``S3Encryption``; the values
    are S3's ``x-amz-server-side-encryption``). ``server_side_encryption=None`` requests none:
    the bucket's default encryption applies."""

    S3 = "AES256"
    """SSE-S3: keys managed by S3."""
    KMS = "aws:kms"
    """SSE-KMS with ``sse_kms_key_id`` (None: the account's ``aws/s3`` key)."""
