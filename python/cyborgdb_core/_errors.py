"""Exceptions of cyborgdb_core: one class per family of C result codes, mirroring the C++
header's hierarchy, each also derived from the Python built-in a caller would catch."""

from __future__ import annotations

import enum


class ResultCode(enum.IntEnum):
    """The C ABI's result codes (``cyb_result``): stable names and numbers."""

    OK = 0
    INVALID_ARGUMENT = 100
    NULL_PARAMETER = 101
    CALLBACK_FAILED = 102
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
    """Base of every exception the library raises.

    ``code`` is the C result code (a :class:`ResultCode`: ``code.name``, ``int(code)``),
    ``message`` the library's message (index, operation and cause; never key material).
    ``str(error)`` is ``"<CODE NAME>: <message>"``, as the C++ ``what()``.
    """

    code: ResultCode
    message: str

    def __init__(self, message: str, code: ResultCode | int | None = None) -> None:
        if code is None:
            code = _DEFAULT_CODE.get(type(self), ResultCode.PANIC)
        self.code = ResultCode(code)
        self.message = message
        super().__init__(f"{self.code.name}: {message}")

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def __reduce__(self):  # picklable, e.g. across multiprocessing
        return (type(self), (self.message, int(self.code)))


class InvalidArgumentError(Error, ValueError):
    """A rejected argument: bad index name, an envelope field that breaks a rule, an empty or
    NUL-containing path, a value out of range (INVALID_ARGUMENT, NULL_PARAMETER)."""


class NotFoundError(Error, LookupError):
    """No envelope is stored for the index (NOT_FOUND)."""


class AlreadyExistsError(Error, FileExistsError):
    """create found an envelope already stored; it was left untouched (ALREADY_EXISTS)."""


class IOError(Error, OSError):  # noqa: A001 - mirrors the C++ cyborg::IOError
    """The storage backend failed: OS error, permissions, full disk (IO)."""


class CorruptDataError(Error, RuntimeError):
    """The stored envelope is truncated, damaged, foreign or belongs to another index (CORRUPT)."""


class StorageUnavailableError(Error, ConnectionError):
    """A remote store (S3) timed out or could not be reached (STORAGE_UNAVAILABLE)."""


class StorageAccessDeniedError(Error, PermissionError):
    """A remote store (S3) denied access: bad credentials, no permission, no such bucket
    (STORAGE_ACCESS_DENIED)."""


class UnknownSlotError(Error, LookupError):
    """No registry slot has the requested name (UNKNOWN_SLOT)."""


class InvalidConfigError(Error, ValueError):
    """The KMS registry or client configuration is invalid; the message names slot and field
    (INVALID_CONFIG)."""


class KEKNotWrappedError(Error, ValueError):
    """The envelope's provider is "none": nothing is wrapped, the caller supplies the KEK
    (KEK_NOT_WRAPPED)."""


class UntrustedKeyError(Error, RuntimeError):
    """The envelope names a key its slot does not trust; refused before any KMS call. The message
    names the registry line (previous_keys) that would trust it (UNTRUSTED_KEY)."""


class KMSError(Error, RuntimeError):
    """Base of the errors a KMS provider reports (codes 400-407); the message names the provider
    operation and the AWS error code."""


class DecryptFailedError(KMSError):
    """The wrapped KEK was rejected: wrong key, index or context, damaged (DECRYPT_FAILED)."""


class KMSAccessDeniedError(KMSError):
    """The provider denied access: AssumeRole, Encrypt, Decrypt, GetSecretValue
    (KMS_ACCESS_DENIED)."""


class KMSKeyNotFoundError(KMSError):
    """The KMS key or the secret does not exist, or not in that region (KMS_KEY_NOT_FOUND)."""


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
    """The stored envelope changed while the operation ran (e.g. a push during a re-wrap);
    nothing was written. Re-read and retry (CONFLICT)."""


class CallbackFailedError(Error, RuntimeError):
    """A caller's callback reported failure; what the call had begun was rolled back
    (CALLBACK_FAILED). KEKResolver.rotate_kek re-raises the callback's own exception instead."""


class ForkedProcessError(Error, RuntimeError):
    """The object was created before this process was forked; in the child it refuses every call
    (FORKED_PROCESS). Create a new one in the child. Memory and disk storage are exempt."""


class InternalError(Error, RuntimeError):
    """A bug in the library (PANIC) or a result code this module does not know."""


_CLASS_OF_CODE: dict[int, type[Error]] = {
    ResultCode.INVALID_ARGUMENT: InvalidArgumentError,
    ResultCode.NULL_PARAMETER: InvalidArgumentError,
    ResultCode.NOT_FOUND: NotFoundError,
    ResultCode.ALREADY_EXISTS: AlreadyExistsError,
    ResultCode.CORRUPT: CorruptDataError,
    ResultCode.CONFLICT: ConflictError,
    ResultCode.IO: IOError,
    ResultCode.STORAGE_UNAVAILABLE: StorageUnavailableError,
    ResultCode.STORAGE_ACCESS_DENIED: StorageAccessDeniedError,
    ResultCode.DECRYPT_FAILED: DecryptFailedError,
    ResultCode.KMS_ACCESS_DENIED: KMSAccessDeniedError,
    ResultCode.KMS_KEY_NOT_FOUND: KMSKeyNotFoundError,
    ResultCode.KMS_KEY_DISABLED: KMSKeyDisabledError,
    ResultCode.KMS_THROTTLED: KMSThrottledError,
    ResultCode.KMS_UNAVAILABLE: KMSUnavailableError,
    ResultCode.KMS_BAD_RESPONSE: KMSBadResponseError,
    ResultCode.WRAP_KEY_SIZE: WrapKeySizeError,
    ResultCode.UNKNOWN_SLOT: UnknownSlotError,
    ResultCode.INVALID_CONFIG: InvalidConfigError,
    ResultCode.KEK_NOT_WRAPPED: KEKNotWrappedError,
    ResultCode.UNTRUSTED_KEY: UntrustedKeyError,
    ResultCode.PANIC: InternalError,
    ResultCode.FORKED_PROCESS: ForkedProcessError,
    ResultCode.CALLBACK_FAILED: CallbackFailedError,
}

# The code an exception class gets when a caller constructs it without one.
_DEFAULT_CODE: dict[type, ResultCode] = {}
for _code, _cls in _CLASS_OF_CODE.items():
    _DEFAULT_CODE.setdefault(_cls, ResultCode(_code))
_DEFAULT_CODE[KMSError] = ResultCode.DECRYPT_FAILED


def _from_code(code: int, message: str) -> Error:
    """The exception for C result code ``code`` (used by the extension module)."""
    try:
        result = ResultCode(code)
    except ValueError:
        return InternalError(f"unknown result code {code}: {message}", ResultCode.PANIC)
    return _CLASS_OF_CODE.get(result, InternalError)(message, result)
