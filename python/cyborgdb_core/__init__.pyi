"""cyborgdb_core: per-index KMS envelopes for CyborgDB, and the KEK resolver of its service layer.

Built from the same Rust library as the C and C++ API: Python and C++ processes share one keystore
byte for byte.

Threads: every object may be shared between threads. Calls that touch storage, a KMS provider or
S3 release the GIL while they run. ``KMSBlob`` is a plain mutable record: do not mutate one from
one thread while another passes it to a call.

fork: a ``KMSClient``, ``KEKResolver`` or S3 ``StorageConfig`` created before ``os.fork()``
refuses every call in the child with ``ForkedProcessError`` (its runtime threads do not exist
there); memory and disk stores, ``KMSBlob`` and ``KEK`` objects keep working. Create new clients,
resolvers and S3 configs in the child.

Errors: every failure of the library raises a subclass of ``Error`` carrying ``code`` (a
``ResultCode``: the C result code's name and number). Wrong Python types raise ``TypeError``
naming the parameter. Messages name the index, operation and cause, never key material.
"""

import enum
import os
from datetime import timedelta
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

__version__: str

MAX_INDEX_NAME_LEN: int
"""Longest index name, in bytes of UTF-8 (255)."""
MAX_STRING_FIELD_LEN: int
"""Longest kms_name, provider, key_id or region, in bytes of UTF-8 (2048)."""
MAX_WRAPPED_KEK_LEN: int
"""Longest wrapped_kek, in bytes (8192)."""

_BytesLike = Union[bytes, bytearray, memoryview]
_Path = Union[str, "os.PathLike[str]"]

# ---------------------------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------------------------

class ResultCode(enum.IntEnum):
    """The C ABI's result codes (``cyb_result``): stable names and numbers."""

    OK = 0
    INVALID_ARGUMENT = 100
    NULL_PARAMETER = 101
    NOT_FOUND = 200
    ALREADY_EXISTS = 201
    CORRUPT = 202
    CONFLICT = 203
    IO = 300
    STORAGE_UNAVAILABLE = 301
    STORAGE_ACCESS_DENIED = 302
    DECRYPT_FAILED = 400
    KMS_ACCESS_DENIED = 401
    KMS_KEY_NOT_FOUND = 402
    KMS_KEY_DISABLED = 403
    KMS_THROTTLED = 404
    KMS_UNAVAILABLE = 405
    KMS_BAD_RESPONSE = 406
    WRAP_KEY_SIZE = 407
    UNKNOWN_SLOT = 408
    INVALID_CONFIG = 409
    KEK_NOT_WRAPPED = 410
    UNTRUSTED_KEY = 411
    PANIC = 900
    FORKED_PROCESS = 902

class Error(Exception):
    """Base of every exception the library raises. ``str(error)`` is ``"<CODE>: <message>"``."""

    code: ResultCode
    """The C result code of the failure."""
    message: str
    """The library's message: index, operation and cause (never key material)."""
    def __init__(self, message: str, code: Union[ResultCode, int, None] = None) -> None: ...

class InvalidArgumentError(Error, ValueError):
    """A rejected argument: bad index name (empty, over 255 bytes, NUL), an envelope field that
    breaks a rule, an empty or NUL-containing path, a value out of range (INVALID_ARGUMENT)."""

class NotFoundError(Error, LookupError):
    """No envelope is stored for the index (NOT_FOUND)."""

class AlreadyExistsError(Error, FileExistsError):
    """create found an envelope already stored; it was left untouched (ALREADY_EXISTS)."""

class IOError(Error, OSError):
    """The storage backend failed: OS error, permissions, full disk (IO). Not in ``__all__``."""

class CorruptDataError(Error, RuntimeError):
    """The stored envelope is truncated, damaged, foreign or belongs to another index (CORRUPT)."""

class StorageUnavailableError(Error, ConnectionError):
    """A remote store (S3) timed out or could not be reached (STORAGE_UNAVAILABLE)."""

class StorageAccessDeniedError(Error, PermissionError):
    """S3 denied access: bad credentials, no permission, no such bucket (STORAGE_ACCESS_DENIED)."""

class UnknownSlotError(Error, LookupError):
    """No registry slot has the requested name (UNKNOWN_SLOT)."""

class InvalidConfigError(Error, ValueError):
    """The KMS registry or client configuration is invalid; names slot and field (INVALID_CONFIG)."""

class KEKNotWrappedError(Error, ValueError):
    """The envelope's provider is "none": the caller supplies the KEK (KEK_NOT_WRAPPED)."""

class UntrustedKeyError(Error, RuntimeError):
    """The envelope names a key its slot does not trust (or "local" while the client has not
    enabled it); refused before any KMS call (UNTRUSTED_KEY)."""

class KMSError(Error, RuntimeError):
    """Base of the errors a KMS provider reports (codes 400-407)."""

class DecryptFailedError(KMSError):
    """The wrapped KEK was rejected: wrong key, index or context, damaged (DECRYPT_FAILED)."""

class KMSAccessDeniedError(KMSError):
    """The provider denied access: AssumeRole, Encrypt, Decrypt, GetSecretValue (KMS_ACCESS_DENIED)."""

class KMSKeyNotFoundError(KMSError):
    """The KMS key or secret does not exist, or not in that region (KMS_KEY_NOT_FOUND)."""

class KMSKeyDisabledError(KMSError):
    """The KMS key is disabled or pending deletion, or the secret is marked for deletion
    (KMS_KEY_DISABLED)."""

class KMSThrottledError(KMSError):
    """The provider throttled the request; retry later (KMS_THROTTLED)."""

class KMSUnavailableError(KMSError):
    """The provider timed out or could not be reached (KMS_UNAVAILABLE)."""

class KMSBadResponseError(KMSError):
    """The provider's answer was malformed, or a server error (KMS_BAD_RESPONSE)."""

class WrapKeySizeError(KMSError):
    """The wrap key is not exactly 32 bytes: "Wrap key must be 32 bytes" (WRAP_KEY_SIZE)."""

class ConflictError(Error, RuntimeError):
    """The stored envelope changed while the operation ran; nothing was written (CONFLICT)."""

class CallbackFailedError(Error, RuntimeError):
    """A caller's callback reported failure; what the call had begun was rolled back
    (CALLBACK_FAILED). rotate_kek re-raises the callback's own exception instead, and
    check_drift_new_kek reports it as the entry's error."""

class ForkedProcessError(Error, RuntimeError):
    """The object was created before this process was forked; make a new one (FORKED_PROCESS)."""

class InternalError(Error, RuntimeError):
    """A bug in the library (PANIC) or an unknown result code."""

# ---------------------------------------------------------------------------------------------
# Option values (str enums: a member or its value is accepted; None is C++'s Default / None)
# ---------------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------

class S3Credentials:
    """Static credentials for S3 storage; never used for KMS calls (and KMS credentials are never
    used for S3). ``access_key`` and ``secret_key`` must be non-empty; an empty
    ``session_token`` is none. The repr shows the access key only."""

    def __init__(self, access_key: str, secret_key: str, session_token: Optional[str] = None) -> None: ...
    @property
    def access_key(self) -> str: ...

class StorageConfig:
    """Where index keystores, and so their KMS envelopes, live. Immutable, no public constructor;
    shared by every call that uses it. Thread-safe."""

    @staticmethod
    def memory() -> "StorageConfig":
        """A new, empty in-process store; its envelopes live as long as this object."""
    @staticmethod
    def disk(path: _Path, cache_policy: object = None) -> "StorageConfig":
        """A store in directory ``path`` (created on the first write; a relative path is resolved
        now). Envelope of index N: ``<path>/<storage key of N>.kms``. ``cache_policy`` is
        accepted for compatibility and ignored.

        Raises InvalidArgumentError (empty path, NUL), TypeError (not str / os.PathLike)."""
    @staticmethod
    def s3(
        bucket: str,
        *,
        region: Optional[str] = None,
        endpoint: Optional[str] = None,
        prefix: str = "",
        credentials: Optional[S3Credentials] = None,
        default_credentials_with_endpoint: bool = False,
        server_side_encryption: Optional[Union[S3Encryption, str]] = None,
        sse_kms_key_id: Optional[str] = None,
        expected_bucket_owner: Optional[str] = None,
        connect_timeout: Optional[float] = None,
        attempt_timeout: Optional[float] = None,
        operation_timeout: Optional[float] = None,
        max_attempts: Optional[int] = None,
        initial_backoff: Optional[float] = None,
        retry_mode: Optional[Union[RetryMode, str]] = None,
    ) -> "StorageConfig":
        """A bucket in S3 or an S3-compatible store, shared by every node using the same bucket
        and prefix; the keyword arguments are C++'s ``S3Options``. No network I/O here. Empty
        strings mean none.

        ``endpoint`` (http:// or https://) selects path-style addressing and then requires
        ``credentials``, unless ``default_credentials_with_endpoint`` (an S3 VPC endpoint reached
        with IRSA or an instance role: use the default AWS chain anyway); without an endpoint and
        credentials the default AWS chain is used. ``server_side_encryption`` (``S3Encryption``,
        None: the bucket's default) is requested on every PutObject; ``sse_kms_key_id`` only with
        ``S3Encryption.KMS`` (None: the account's ``aws/s3`` key). ``expected_bucket_owner``: the
        12-digit AWS account id sent as ExpectedBucketOwner on every request (another owner:
        StorageAccessDeniedError). Timeouts are in seconds; None means the library defaults
        (connect 3 s, attempt 5 s, operation 15 s, first backoff up to 1 s); ``max_attempts``
        None means AWS_MAX_ATTEMPTS, else the AWS profile's, else 3 (at most 10);
        ``retry_mode`` None means AWS_RETRY_MODE, else the profile's, else standard.

        Raises InvalidArgumentError (bucket name, prefix, region, endpoint, credentials, an
        endpoint without credentials or default_credentials_with_endpoint, an unknown
        server_side_encryption or retry_mode, sse_kms_key_id without S3Encryption.KMS or too long,
        expected_bucket_owner not 12 digits, a timeout not positive, max_attempts not 1..10; the
        message never contains a secret), InvalidConfigError (an unusable AWS_MAX_ATTEMPTS,
        AWS_RETRY_MODE or AWS_ENDPOINT_URL*), TypeError naming a parameter of the wrong type.
        Operations may raise StorageUnavailableError, StorageAccessDeniedError, and
        ForkedProcessError in a child forked after this call."""
    def with_audit(
        self,
        principal: str,
        *,
        host: Optional[str] = None,
        unwrap_counts_seconds: Optional[int] = None,
    ) -> "StorageConfig":
        """This store with the custody audit on (docs/audit.md): every create, push, delete and
        re-wrap through the returned config first appends a hash-chained record naming
        ``principal``, this host (or ``host``) and this process to the store's audit log.
        ``unwrap_counts_seconds`` (1..=86400; None: off): a resolver acting on the store appends
        one ``unwraps`` record per index at most this often and on ``flush_unwrap_counts``. If that
        append fails the change is not made and its error is raised (IOError, CorruptDataError,
        Storage*Error). This config stays unaudited.

        Raises InvalidArgumentError (a principal or host that is empty, over 256 bytes or holds a
        control character; the message names the field)."""

# ---------------------------------------------------------------------------------------------
# Envelopes
# ---------------------------------------------------------------------------------------------

class KMSBlob:
    """A per-index KMS envelope: how one index's KEK is wrapped by an external KMS.

    A mutable record with readable and writable attributes; ``==`` compares every field; not
    hashable. The repr shows ``wrapped_kek``'s length, never its bytes. Fields are validated when
    the envelope is stored: strings of at most MAX_STRING_FIELD_LEN bytes without NUL, a known
    provider ("aws", "aws-kms", "none", or the development-only "local"), and for a wrapping
    provider a non-empty kms_name, key_id, region and wrapped_kek; "none" stores no wrapped_kek.
    """

    kms_name: str
    """Logical KMS name: the registry slot."""
    provider: str
    """ "aws" | "aws-kms" | "none" (| "local", development only)."""
    key_id: str
    """KMS key id / ARN / alias, or Secrets Manager secret name / ARN."""
    region: str
    """KMS region."""
    wrapped_kek: bytes
    """The wrapped KEK (set from bytes, bytearray or memoryview; read as bytes)."""
    version: int
    """Envelope version, 0..2**32-1; bump it on rotation."""
    created_at: int
    """Unix epoch seconds; 0 is stamped with the current time when stored."""
    def __init__(
        self,
        kms_name: str = "",
        provider: str = "",
        key_id: str = "",
        region: str = "",
        wrapped_kek: _BytesLike = b"",
        version: int = 1,
        created_at: int = 0,
    ) -> None:
        """Raises TypeError naming the field for a wrong type, InvalidArgumentError for an
        integer out of range."""
    def __eq__(self, other: object) -> bool: ...
    def __copy__(self) -> "KMSBlob": ...
    def __deepcopy__(self, memo: object) -> "KMSBlob": ...

def create_index_kms(config_location: StorageConfig, index_name: str, blob: KMSBlob) -> None:
    """Creates the KMS envelope of ``index_name`` — a strict insert. ``blob`` is not modified.

    Raises AlreadyExistsError (the stored envelope is untouched), InvalidArgumentError (bad name
    or field; nothing written), IOError, StorageUnavailableError, StorageAccessDeniedError.
    Racing creates have exactly one winner (on S3, across machines too). Releases the GIL."""

def push_index_kms(config_location: StorageConfig, index_name: str, blob: KMSBlob) -> None:
    """Stores the KMS envelope of ``index_name``, creating or replacing it — an idempotent upsert.
    Readers see the old or the new envelope, never a mix.

    Raises InvalidArgumentError (nothing written), IOError, StorageUnavailableError,
    StorageAccessDeniedError (a previous envelope is intact). Releases the GIL."""

def get_index_kms(config_location: StorageConfig, index_name: str) -> KMSBlob:
    """The stored KMS envelope of ``index_name``.

    Raises NotFoundError, InvalidArgumentError, CorruptDataError (stored bytes fail
    verification), IOError, StorageUnavailableError, StorageAccessDeniedError. Releases the GIL."""

def delete_index_kms(config_location: StorageConfig, index_name: str) -> None:
    """Deletes the KMS envelope of ``index_name``; deleting a missing one is a no-op.

    Raises InvalidArgumentError, IOError, StorageUnavailableError, StorageAccessDeniedError.
    Releases the GIL."""

def list_index_kms(config_location: StorageConfig) -> List[str]:
    """The names of every index with a stored envelope, in no particular order.

    Raises IOError, CorruptDataError, StorageUnavailableError, StorageAccessDeniedError.
    Releases the GIL."""

# ---------------------------------------------------------------------------------------------
# Custody audit
# ---------------------------------------------------------------------------------------------

class AuditReport:
    """What ``verify_audit`` found."""

    records: int
    """Records verified: those before the first break (all of them if there is none)."""
    head_seq: Optional[int]
    """The last verified record's seq (None if none verified)."""
    head_hash: Optional[bytes]
    """The last verified record's SHA-256: keep it elsewhere to detect a later truncation of the
    newest records, which the chain alone cannot show."""
    break_kind: Optional[str]
    """"changed", "removed", "reordered", "truncated" or "fork"; None if intact."""
    break_seq: Optional[int]
    """The first seq that is not trustworthy; None if intact."""
    break_message: str
    """What was found ("" if intact)."""
    @property
    def intact(self) -> bool:
        """Whether no break was found."""

class AuditRecord:
    """One custody audit record (docs/audit.md has the format)."""

    seq: int
    time_ms: int
    index_name: str
    event_type: str
    """"created", "pushed", "deleted", "rewrapped", "drift_detected", "untrusted_key",
    "provider_refused" or "aborted"."""
    event: Dict[str, Any]
    """The event's fields as the record's JSON has them (key ids only as their last 12
    characters; never key material)."""
    principal: str
    host: str
    pid: int
    prev_hash: bytes
    hash: bytes
    line: str
    """The stored JSON line, without its newline."""

def verify_audit(config_location: StorageConfig) -> AuditReport:
    """Walks the audit log of the store from seq 0 and reports the first break: a changed,
    removed, reordered or truncated record, or a fork. A break is in the report, not raised.

    Raises CorruptDataError (a stored line longer than any record), IOError,
    StorageUnavailableError, StorageAccessDeniedError. Releases the GIL."""

def read_audit(config_location: StorageConfig, from_seq: int = 0, limit: int = 1000) -> List[AuditRecord]:
    """The audit records with seq >= ``from_seq``, at most ``limit`` (1..10000), each checked
    against its own hash (the chain is ``verify_audit``'s job). A torn last record is left out.

    Raises InvalidArgumentError (limit), CorruptDataError (a record that does not decode or
    match its hash), IOError, StorageUnavailableError, StorageAccessDeniedError. Releases the
    GIL."""

# ---------------------------------------------------------------------------------------------
# KEKs, KMS client, resolver
# ---------------------------------------------------------------------------------------------

class KEK:
    """A 32-byte key-encryption key in memory that is wiped by ``wipe()``, on leaving a ``with``
    block, and when the object is collected. The repr never shows it; it cannot be pickled or
    hashed. ``bytes(kek)`` returns a copy (a ``bytes`` object cannot be wiped: keep it short-lived,
    or use ``copy_into`` with a bytearray you wipe). ``==`` between KEKs is constant-time.
    After ``wipe()``, using the key raises InvalidArgumentError."""

    def __init__(self, key: _BytesLike) -> None:
        """A KEK holding a copy of exactly 32 bytes. Raises InvalidArgumentError (length),
        TypeError."""
    def __bytes__(self) -> bytes: ...
    def __len__(self) -> int: ...
    def copy_into(self, buffer: bytearray) -> None:
        """Copies the key into ``buffer`` (a bytearray of exactly 32 bytes)."""
    def wipe(self) -> None:
        """Overwrites the key with zeros. Idempotent."""
    @property
    def wiped(self) -> bool: ...
    def __enter__(self) -> "KEK": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Wipes the key; never suppresses the exception."""
    def __eq__(self, other: object) -> bool: ...

class KMSClient:
    """Wraps and unwraps index KEKs through the named slots of a KMS registry: AWS KMS
    ("aws-kms"), Secrets Manager + AES-256-GCM ("aws"), BYOK through sts:AssumeRole, and the
    development-only "local" provider. Reuses AWS SDK clients: create one per process and share
    it. Thread-safe. In a child forked after it was made every call raises ForkedProcessError."""

    def __init__(
        self,
        *,
        registry_yaml: Optional[str] = None,
        registry_file: Optional[_Path] = None,
        connect_timeout: Optional[float] = None,
        attempt_timeout: Optional[float] = None,
        operation_timeout: Optional[float] = None,
        max_attempts: Optional[int] = None,
        initial_backoff: Optional[float] = None,
        retry_mode: Optional[Union[RetryMode, str]] = None,
        endpoint_url: Optional[str] = None,
        kms_endpoint_url: Optional[str] = None,
        secrets_manager_endpoint_url: Optional[str] = None,
        sts_endpoint_url: Optional[str] = None,
        kms_region_endpoint_urls: Optional[Dict[str, str]] = None,
        allow_local_provider: bool = False,
        allow_insecure_http: bool = False,
    ) -> None:
        """A client, with the registry (``kms.registry`` section, ``${VAR}`` substituted) from
        YAML text or a file (at most one); the other keyword arguments are C++'s
        ``KMSClientOptions``. Timeouts are in seconds; None means the library defaults (connect
        3 s, attempt 5 s, operation 15 s, first backoff up to 1 s). ``max_attempts`` None means
        AWS_MAX_ATTEMPTS, else the AWS profile's max_attempts, else 3 (at most 10);
        ``retry_mode`` (``RetryMode``) None means AWS_RETRY_MODE, else the profile's, else
        standard. ``endpoint_url``: one endpoint for KMS, Secrets Manager and STS (else the SDK's
        resolution, honouring AWS_ENDPOINT_URL*); ``kms_endpoint_url``,
        ``secrets_manager_endpoint_url``, ``sts_endpoint_url``: one service's endpoint (e.g. a VPC
        interface endpoint), winning over ``endpoint_url``. Empty strings mean none.
        ``kms_region_endpoint_urls``: a KMS endpoint per region (``{"us-west-2": url}``), used for
        that region before the others, e.g. for a slot's ``replica_regions`` (failover).
        ``allow_local_provider`` enables "local" slots; ``allow_insecure_http`` allows http:// to
        a host other than this machine.

        Raises InvalidConfigError (registry, an endpoint not http(s) or plain http off this
        machine, max_attempts above 10, an unusable AWS_MAX_ATTEMPTS or AWS_RETRY_MODE),
        InvalidArgumentError (a timeout not positive, max_attempts below 1, an unknown retry_mode,
        both registry sources), TypeError naming a parameter of the wrong type."""
    def load_registry_yaml(self, yaml: str) -> int:
        """Replaces the registry with the ``kms.registry`` section of ``yaml``; returns the number
        of slots. On error the registry in use is unchanged. Raises InvalidConfigError."""
    def load_registry_file(self, path: _Path) -> int:
        """As load_registry_yaml, from a file. Raises InvalidConfigError (also if unreadable)."""
    def add_slot(
        self,
        name: str,
        *,
        provider: str,
        key_id: str,
        region: str = "",
        role_arn: Optional[str] = None,
        external_id: Optional[str] = None,
        role_session_name: Optional[str] = None,
        replica_regions: Optional[Sequence[str]] = None,
    ) -> None:
        """Adds or replaces slot ``name``. ``replica_regions``: the regions holding replicas of a
        multi-Region aws-kms key, in failover order (YAML ``replica_regions``). Raises
        InvalidConfigError naming slot and field."""
    def add_previous_key(self, slot_name: str, *, provider: str, key_id: str, region: str = "") -> None:
        """Makes slot ``slot_name`` trust a key it wrapped with before a rotation (YAML
        ``previous_keys``). Raises UnknownSlotError, InvalidConfigError."""
    @property
    def slot_names(self) -> List[str]:
        """The registry's slot names, sorted."""
    def wrap_new_kek(self, index_name: str, kms_name: str) -> Tuple[KMSBlob, KEK]:
        """A fresh random KEK for ``index_name`` wrapped through slot ``kms_name``: the envelope
        (version 1, created_at now) and the KEK. Stores nothing. Raises UnknownSlotError,
        InvalidArgumentError, the KMSError family, InvalidConfigError. Releases the GIL."""
    def wrap_kek(self, index_name: str, kms_name: str, kek: Union[KEK, _BytesLike]) -> KMSBlob:
        """Wraps an existing KEK (rotation). Raises as wrap_new_kek. Releases the GIL."""
    def unwrap_kek(self, index_name: str, blob: KMSBlob) -> KEK:
        """Unwraps the KEK of ``index_name`` from ``blob``. Raises KEKNotWrappedError (provider
        "none"), UnknownSlotError, UntrustedKeyError, DecryptFailedError, the other KMSError
        types, InvalidArgumentError. Releases the GIL."""

class KEKCacheStats:
    """A snapshot of a resolver's cache counters (all but ``entries`` only grow)."""

    hits: int
    misses: int
    provider_calls: int
    errors: int
    evictions: int
    expirations: int
    invalidations: int
    entries: int
    stale_served: int
    """Revalidation checks that failed with a transient storage error and were answered with
    the cached KEK (stale-if-error)."""

class KeySnapshot:
    """The provider / key_id / region an envelope records or a slot names."""

    provider: str
    key_id: str
    region: str

class DriftEntry:
    """One line of a drift report."""

    index_name: str
    status: str
    """ "in_sync", "drifted", "rewrapped", "not_wrapped" or "failed"."""
    kms_name: str
    stored: Optional[KeySnapshot]
    configured: Optional[KeySnapshot]
    error: Optional[Error]
    """Why the status is "failed" (not raised)."""

class KEKRotation:
    """A new-KEK rotation of one index, from KEKResolver.begin_rotation / pending_rotation."""

    @property
    def index_name(self) -> str: ...
    @property
    def old_kek(self) -> KEK:
        """The KEK the index had when the rotation began (a new KEK object each time)."""
    @property
    def new_kek(self) -> KEK:
        """The fresh KEK the index gets on commit (a new KEK object each time)."""
    @property
    def state(self) -> str:
        """ "pending" (envelope unchanged), "committed" (envelope already swapped: commit to
        finish) or "stale" (another write replaced the envelope: abort), when this was made."""
    @property
    def old_envelope(self) -> KMSBlob: ...
    @property
    def new_envelope(self) -> KMSBlob: ...

class KEKResolver:
    """Resolves index KEKs through a KMSClient's registry with a TTL'd cache of unwrapped KEKs
    (the service hot path), and creates, re-wraps and drift-checks envelopes. A hit touches
    neither storage nor KMS; concurrent misses on one index make one provider call; only
    provider-unwrapped KEKs are cached. Thread-safe: share one per process. In a child forked
    after it was made every call raises ForkedProcessError."""

    def __init__(
        self,
        client: KMSClient,
        *,
        ttl: Union[float, timedelta, None] = None,
        max_entries: Optional[int] = None,
        revalidate: Union[float, timedelta, None] = None,
        stale_if_error: Optional[bool] = None,
    ) -> None:
        """``ttl`` in seconds or a timedelta (None: INDEX_KEK_CACHE_TTL_SECONDS, else 60; 0
        disables caching); ``max_entries`` (default 100000); ``revalidate``: the envelope
        revalidation interval, seconds or a timedelta (None: CYB_KEK_REVALIDATE_SECS, else off;
        0: off; at most an hour) — after it, the next resolve asks the store whether the envelope
        changed, so other nodes' pushes, re-wraps and deletes are seen; ``stale_if_error``
        (None: CYB_KEK_STALE_IF_ERROR, else True): when that check fails with
        StorageUnavailableError or IOError, serve the cached KEK until its TTL. Raises
        InvalidArgumentError, InvalidConfigError."""
    @property
    def ttl(self) -> float: ...
    @property
    def revalidate(self) -> float:
        """The envelope revalidation interval in seconds (0: off)."""
    @property
    def stale_if_error(self) -> bool:
        """Whether a failed revalidation check serves the cached KEK."""
    @property
    def client(self) -> KMSClient: ...
    def resolve(self, config_location: StorageConfig, index_name: str) -> KEK:
        """The KEK of ``index_name``: cached, or unwrapped and cached. Raises NotFoundError,
        KEKNotWrappedError, UnknownSlotError, the KMSError family, CorruptDataError, IOError,
        Storage*Error, InvalidArgumentError. Releases the GIL."""
    def create_index(
        self,
        config_location: StorageConfig,
        index_name: str,
        *,
        kms_name: Optional[str] = None,
        index_key: Union[KEK, _BytesLike, None] = None,
    ) -> KEK:
        """Creates the envelope of a new index and returns its KEK. Exactly one of ``kms_name``
        (a fresh KEK wrapped through that slot) and ``index_key`` (32 caller-supplied bytes;
        provider "none" is recorded) must be given. If the insert fails nothing is stored.
        Raises InvalidArgumentError ("index_key and kms_name are mutually exclusive", neither
        given, bad key length), AlreadyExistsError, UnknownSlotError, the KMSError family,
        storage errors. Releases the GIL."""
    def rewrap(self, config_location: StorageConfig, index_name: str, kms_name: str) -> KMSBlob:
        """Re-wraps the index's KEK under slot ``kms_name`` (same KEK, new snapshot, version + 1)
        and returns the stored envelope. On error nothing changed. Raises ConflictError,
        KEKNotWrappedError, UnknownSlotError, NotFoundError, the KMSError family, storage errors."""
    def begin_rotation(self, config_location: StorageConfig, index_name: str, kms_name: str) -> KEKRotation:
        """New-KEK rotation, phase 1: a fresh KEK wrapped through slot ``kms_name`` and recorded
        as pending next to the envelope, which is unchanged (resolve keeps returning the old KEK).
        Re-wrap the engine's DEK under ``new_kek`` (keeping it under ``old_kek``), then
        commit_rotation or abort_rotation. Raises ConflictError (a rotation is already pending),
        KEKNotWrappedError, UnknownSlotError, UntrustedKeyError, NotFoundError, the KMSError
        family, storage errors; on error nothing is stored."""
    def pending_rotation(self, config_location: StorageConfig, index_name: str) -> Optional[KEKRotation]:
        """The index's pending rotation (e.g. left by a crash), with both KEKs, or None. Raises
        CorruptDataError (a damaged record), UntrustedKeyError, the KMSError family."""
    def commit_rotation(self, config_location: StorageConfig, rotation: KEKRotation) -> KMSBlob:
        """Swaps the envelope to the new KEK (version + 1), removes the record, drops the cached
        KEK; idempotent. Returns the new envelope. Raises ConflictError, CorruptDataError."""
    def abort_rotation(self, config_location: StorageConfig, rotation: KEKRotation) -> None:
        """Removes an uncommitted rotation's record; the envelope is unchanged. Raises
        ConflictError (already committed: commit instead), CorruptDataError."""
    def rotate_kek(
        self,
        config_location: StorageConfig,
        index_name: str,
        kms_name: str,
        callback: Callable[[KEK, KEK], None],
    ) -> KMSBlob:
        """New-KEK rotation in one call: begin_rotation, ``callback(old_kek, new_kek)`` (the
        engine re-wraps its DEK, idempotently), commit_rotation. If the callback raises, the
        rotation is rolled back (the envelope is unchanged) and its exception propagates as is."""
    def check_drift(self, config_location: StorageConfig, rewrap: bool = False) -> List[DriftEntry]:
        """Compares every stored envelope's key snapshot with the registry; with ``rewrap``,
        re-wraps drifted ones (failures are per entry). Raises storage errors (listing)."""
    def check_drift_new_kek(
        self,
        config_location: StorageConfig,
        callback: Callable[[str, KEK, KEK], None],
    ) -> List[DriftEntry]:
        """Drift repair in new-KEK mode: ``check_drift`` without re-wrapping, then each drifted
        index is rotated to a fresh KEK under its own slot as ``rotate_kek`` does, calling
        ``callback(index_name, old_kek, new_kek)`` for it ("rewrapped" when done). If the callback
        raises for an index, that index's rotation is rolled back and its entry is "failed" with
        the callback's own exception as ``error``; the other indexes go on. Raises storage errors
        (listing)."""
    def warm_up(
        self, config_location: StorageConfig, index_names: Sequence[str], parallelism: int = 16
    ) -> List[Optional[Error]]:
        """Resolves every index into the cache with up to ``parallelism`` threads (1..256);
        returns, per index in order, None or the exception resolve would have raised."""
    def invalidate(self, config_location: StorageConfig, index_name: str) -> bool:
        """Drops the cached KEK of one index; returns whether one was cached."""
    def invalidate_all(self) -> int:
        """Drops every cached KEK; returns how many."""
    def set_audit(
        self,
        principal: Optional[str],
        *,
        host: Optional[str] = None,
        unwrap_counts_seconds: Optional[int] = None,
    ) -> None:
        """Turns the custody audit on (a ``principal``) or off (None) for every store this
        resolver acts on: its creates, re-wraps, drift findings and refused keys are recorded in
        that store's audit log. A StorageConfig made ``with_audit`` keeps its own principal.
        Without this, the registry's top-level ``audit:`` setting applies.

        Raises InvalidArgumentError (as StorageConfig.with_audit; nothing changes then)."""
    def flush_unwrap_counts(self) -> int:
        """Appends the per-index unwrap counts not yet appended (``unwrap_counts_seconds``):
        one ``unwraps`` record per index counted since its last one; returns how many records
        were appended. Best effort (a failed append is logged). Raises ForkedProcessError."""
    def stats(self) -> KEKCacheStats:
        """The cache's counters."""

__all__: List[str]
