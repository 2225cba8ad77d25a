"""cyborgdb_core: per-index KMS envelopes for CyborgDB, and the KEK resolver of its service layer.

The documented API (``StorageConfig``, ``KMSBlob``, ``create_index_kms``, ``push_index_kms``,
``get_index_kms``, ``delete_index_kms``) plus ``list_index_kms``, the KMS client and the KEK
resolver, built from the same Rust library as the C and C++ API: a Python and a C++ process share
one keystore byte for byte. See ``help()`` on each name, or the type stubs.
"""

from ._errors import (
    AlreadyExistsError,
    ConflictError,
    CorruptDataError,
    DecryptFailedError,
    Error,
    ForkedProcessError,
    InternalError,
    InvalidArgumentError,
    InvalidConfigError,
    IOError,
    KEKNotWrappedError,
    KMSAccessDeniedError,
    KMSBadResponseError,
    KMSError,
    KMSKeyDisabledError,
    KMSKeyNotFoundError,
    KMSThrottledError,
    KMSUnavailableError,
    NotFoundError,
    ResultCode,
    StorageAccessDeniedError,
    StorageUnavailableError,
    UnknownSlotError,
    UntrustedKeyError,
    WrapKeySizeError,
)
from ._native import (
    KEK,
    AuditRecord,
    AuditReport,
    MAX_INDEX_NAME_LEN,
    MAX_STRING_FIELD_LEN,
    MAX_WRAPPED_KEK_LEN,
    DriftEntry,
    KEKCacheStats,
    KEKResolver,
    KeySnapshot,
    KMSBlob,
    KMSClient,
    S3Credentials,
    StorageConfig,
    __version__,
    create_index_kms,
    delete_index_kms,
    get_index_kms,
    list_index_kms,
    push_index_kms,
    read_audit,
    verify_audit,
)
from ._options import RetryMode, S3Encryption

# `IOError` is left out of `__all__` so `from cyborgdb_core import *` never shadows the built-in.
__all__ = [
    "KEK",
    "MAX_INDEX_NAME_LEN",
    "MAX_STRING_FIELD_LEN",
    "MAX_WRAPPED_KEK_LEN",
    "AlreadyExistsError",
    "AuditRecord",
    "AuditReport",
    "ConflictError",
    "CorruptDataError",
    "DecryptFailedError",
    "DriftEntry",
    "Error",
    "ForkedProcessError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "KEKCacheStats",
    "KEKNotWrappedError",
    "KEKResolver",
    "KMSAccessDeniedError",
    "KMSBadResponseError",
    "KMSBlob",
    "KMSClient",
    "KMSError",
    "KMSKeyDisabledError",
    "KMSKeyNotFoundError",
    "KMSThrottledError",
    "KMSUnavailableError",
    "KeySnapshot",
    "NotFoundError",
    "ResultCode",
    "RetryMode",
    "S3Credentials",
    "S3Encryption",
    "StorageAccessDeniedError",
    "StorageConfig",
    "StorageUnavailableError",
    "UnknownSlotError",
    "UntrustedKeyError",
    "WrapKeySizeError",
    "__version__",
    "create_index_kms",
    "delete_index_kms",
    "get_index_kms",
    "list_index_kms",
    "push_index_kms",
    "read_audit",
    "verify_audit",
]

# Exceptions show as `cyborgdb_core.NotFoundError` (and pickle by that name).
for _name in dir():
    _obj = globals()[_name]
    if isinstance(_obj, type) and issubclass(_obj, (Error, ResultCode, RetryMode, S3Encryption)):
        _obj.__module__ = __name__
del _name, _obj
