// cyborgdb-kms C++ API: per-index KMS envelopes for CyborgDB.
//
// A header-only C++17 layer over the C ABI in index_kms.h, matching the documented CyborgDB C++
// API (namespace `cyborg`: StorageConfig, CachePolicy, S3Options, S3Credentials, KMSBlob,
// CreateIndexKMS, PushIndexKMS, GetIndexKMS, DeleteIndexKMS). It adds no logic of its own: every
// rule is enforced by the library.
//
// Errors: every failure throws an exception that derives both from a standard exception
// (std::invalid_argument or std::runtime_error, as the CyborgDB C++ SDK does) and from the mixin
// cyborg::Error, which carries the C result code. what() is "<CODE_NAME>: <library message>".
//
//   exception                    standard base           result codes
//   cyborg::InvalidArgumentError std::invalid_argument   INVALID_ARGUMENT, NULL_PARAMETER
//   cyborg::NotFoundError        std::invalid_argument   NOT_FOUND
//   cyborg::AlreadyExistsError   std::invalid_argument   ALREADY_EXISTS
//   cyborg::IOError              std::runtime_error      IO
//   cyborg::StorageUnavailableError   std::runtime_error STORAGE_UNAVAILABLE
//   cyborg::StorageAccessDeniedError  std::runtime_error STORAGE_ACCESS_DENIED
//   cyborg::CorruptDataError     std::runtime_error      CORRUPT
//   cyborg::ConflictError        std::runtime_error      CONFLICT
//   cyborg::UnknownSlotError     std::invalid_argument   UNKNOWN_SLOT
//   cyborg::InvalidConfigError   std::invalid_argument   INVALID_CONFIG
//   cyborg::KEKNotWrappedError   std::invalid_argument   KEK_NOT_WRAPPED
//   cyborg::UntrustedKeyError    std::runtime_error      UNTRUSTED_KEY
//   cyborg::KMSError             std::runtime_error      base of the KMS provider errors below:
//     cyborg::DecryptFailedError                         DECRYPT_FAILED
//     cyborg::KMSAccessDeniedError                       KMS_ACCESS_DENIED
//     cyborg::KMSKeyNotFoundError                        KMS_KEY_NOT_FOUND
//     cyborg::KMSKeyDisabledError                        KMS_KEY_DISABLED
//     cyborg::KMSThrottledError                          KMS_THROTTLED
//     cyborg::KMSUnavailableError                        KMS_UNAVAILABLE
//     cyborg::KMSBadResponseError                        KMS_BAD_RESPONSE
//     cyborg::WrapKeySizeError                           WRAP_KEY_SIZE
//   cyborg::ForkedProcessError   std::runtime_error      FORKED_PROCESS
//   cyborg::CallbackFailedError  std::runtime_error      CALLBACK_FAILED (KEKResolver::RotateKek
//                                rethrows the callback's own exception instead of this)
//   cyborg::InternalError        std::runtime_error      PANIC and any unknown code
//   cyborg::IncompatibleLibraryError  std::runtime_error (only; no result code): the loaded
//                                libcyborgdb_kms has another major version than this header
//
// cyborg::Error is deliberately not a std::exception, so catch (const std::exception&) is never
// ambiguous. Functions that allocate may also throw std::bad_alloc.
//
// Version check: the first StorageConfig or KMSClient made checks that the loaded library's major
// version (cyb_version_number()) is this header's (CYB_KMS_VERSION_MAJOR), and throws
// IncompatibleLibraryError if not, before any other call into the library.
//
// Thread-safety: a StorageConfig is immutable; it and its copies may be used by any number of
// threads at once, and every free function may be called concurrently. A KMSBlob is a plain value.
// A KMSClient may be used by any number of threads at once (registry changes included), and so
// may a KEKResolver.
// A KEK is a plain value that wipes its bytes when destroyed.
//
// fork(): in a child process, a KMSClient, KEKResolver or S3 StorageConfig created before the fork
// throws ForkedProcessError from every call (never hangs); destroying it there is safe. Memory and
// Disk StorageConfigs keep working. Objects created in the child work normally.
//
// Logging: SetLogCallback(level, callback) sends the library's diagnostics (KEK cache fills and
// evictions, registry changes, drift, KMS failures, the AWS SDK's attempts and retries) to a
// std::function; ClearLogCallback() stops them. See SetLogCallback for threads and ownership.

// C++17 or later (MSVC reports its standard in _MSVC_LANG unless /Zc:__cplusplus is given). C
// code includes index_kms.h. Checked first, so it is the first diagnostic a wrong mode gives.
#if !defined(__cplusplus)
#  error "index_kms.hpp is a C++ header; C code includes index_kms.h"
#elif defined(_MSVC_LANG)
#  if _MSVC_LANG < 201703L
#    error "index_kms.hpp needs C++17"
#  endif
#elif __cplusplus < 201703L
#  error "index_kms.hpp needs C++17"
#endif

#ifndef CYB_INDEX_KMS_HPP
#define CYB_INDEX_KMS_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index_kms.h"

namespace cyborg {

// ---------------------------------------------------------------------------------------------
// Exceptions
// ---------------------------------------------------------------------------------------------

/// Mixin base of every exception a failed library call throws: the C result code of the failure
/// (IncompatibleLibraryError, thrown before any call, is not one). Not derived from
/// std::exception (the concrete types are, through exactly one standard base).
class Error {
public:
    /// The C result code of the failure (e.g. CYB_RESULT_NOT_FOUND).
    cyb_result code() const noexcept { return code_; }

    virtual ~Error() = default;

protected:
    explicit Error(cyb_result code) noexcept : code_(code) {}
    Error(const Error&) = default;
    Error& operator=(const Error&) = default;

private:
    cyb_result code_;
};

/// A rejected argument: bad index name, invalid UTF-8, an envelope field that breaks a rule, an
/// empty or missing disk path (INVALID_ARGUMENT), or a NULL pointer (NULL_PARAMETER).
class InvalidArgumentError : public std::invalid_argument, public Error {
public:
    InvalidArgumentError(cyb_result code, const std::string& what)
        : std::invalid_argument(what), Error(code) {}
};

/// No envelope is stored for the index (NOT_FOUND).
class NotFoundError : public std::invalid_argument, public Error {
public:
    NotFoundError(cyb_result code, const std::string& what)
        : std::invalid_argument(what), Error(code) {}
};

/// CreateIndexKMS found an envelope already stored; it was left untouched (ALREADY_EXISTS).
class AlreadyExistsError : public std::invalid_argument, public Error {
public:
    AlreadyExistsError(cyb_result code, const std::string& what)
        : std::invalid_argument(what), Error(code) {}
};

/// The storage backend failed: OS error, permissions, full disk (IO).
class IOError : public std::runtime_error, public Error {
public:
    IOError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// The stored envelope is truncated, damaged, foreign or belongs to another index (CORRUPT).
class CorruptDataError : public std::runtime_error, public Error {
public:
    CorruptDataError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// A remote store (S3) timed out or could not be reached (STORAGE_UNAVAILABLE).
class StorageUnavailableError : public std::runtime_error, public Error {
public:
    StorageUnavailableError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// A remote store (S3) denied access: bad credentials, no permission (STORAGE_ACCESS_DENIED).
class StorageAccessDeniedError : public std::runtime_error, public Error {
public:
    StorageAccessDeniedError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// No registry slot has the requested name (UNKNOWN_SLOT).
class UnknownSlotError : public std::invalid_argument, public Error {
public:
    UnknownSlotError(cyb_result code, const std::string& what)
        : std::invalid_argument(what), Error(code) {}
};

/// The KMS registry or client configuration is invalid; what() names slot and field
/// (INVALID_CONFIG).
class InvalidConfigError : public std::invalid_argument, public Error {
public:
    InvalidConfigError(cyb_result code, const std::string& what)
        : std::invalid_argument(what), Error(code) {}
};

/// The envelope's provider is "none": nothing is wrapped, the caller supplies the KEK
/// (KEK_NOT_WRAPPED).
class KEKNotWrappedError : public std::invalid_argument, public Error {
public:
    KEKNotWrappedError(cyb_result code, const std::string& what)
        : std::invalid_argument(what), Error(code) {}
};

/// The envelope names a key its slot does not trust; refused before any KMS call. what() names
/// the registry line (previous_keys) that would trust it (UNTRUSTED_KEY).
class UntrustedKeyError : public std::runtime_error, public Error {
public:
    UntrustedKeyError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// Base of the errors a KMS provider reports (result codes 400-407); what() names the provider
/// operation and the AWS error code. Catch the subclasses to act on one cause.
class KMSError : public std::runtime_error, public Error {
public:
    KMSError(cyb_result code, const std::string& what) : std::runtime_error(what), Error(code) {}
};

/// The wrapped KEK was rejected: wrong key, index or context, damaged (DECRYPT_FAILED).
class DecryptFailedError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The provider denied access: AssumeRole, Encrypt, Decrypt, GetSecretValue (KMS_ACCESS_DENIED).
class KMSAccessDeniedError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The KMS key or the secret does not exist, or not in that region (KMS_KEY_NOT_FOUND).
class KMSKeyNotFoundError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The KMS key is disabled or pending deletion, or the secret is marked for deletion
/// (KMS_KEY_DISABLED).
class KMSKeyDisabledError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The provider throttled the request; retry later (KMS_THROTTLED).
class KMSThrottledError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The provider timed out or could not be reached (KMS_UNAVAILABLE).
class KMSUnavailableError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The provider's answer was malformed, or a server error (KMS_BAD_RESPONSE).
class KMSBadResponseError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The wrap key is not exactly 32 bytes: "Wrap key must be 32 bytes" (WRAP_KEY_SIZE).
class WrapKeySizeError : public KMSError {
public:
    using KMSError::KMSError;
};

/// The stored envelope changed while the operation ran (e.g. a push during a re-wrap); nothing
/// was written. Re-read and retry (CONFLICT).
class ConflictError : public std::runtime_error, public Error {
public:
    ConflictError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// A caller's callback reported failure (e.g. the engine's re-wrap in cyb_kek_rotate_kek); what
/// the call had begun was rolled back (CALLBACK_FAILED).
class CallbackFailedError : public std::runtime_error, public Error {
public:
    CallbackFailedError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// The object was created before this process was forked from its parent; in the child it refuses
/// every call (FORKED_PROCESS). Create a new one in the child. Memory and Disk storage are exempt.
class ForkedProcessError : public std::runtime_error, public Error {
public:
    ForkedProcessError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// A bug in the library (PANIC) or a result code this header does not know.
class InternalError : public std::runtime_error, public Error {
public:
    InternalError(cyb_result code, const std::string& what)
        : std::runtime_error(what), Error(code) {}
};

/// The loaded libcyborgdb_kms has a different major version than the index_kms.hpp / index_kms.h
/// the program was compiled with, so its ABI may differ: rebuild against the installed headers or
/// install the library the program was built for. Not a cyborg::Error: no library call failed.
class IncompatibleLibraryError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

/// Throws IncompatibleLibraryError unless `library_number` (cyb_version_number() of the loaded
/// library, major * 10000 + minor * 100 + patch) has the same major version as `header_number`
/// (CYB_KMS_VERSION_NUMBER of the headers compiled in). `library_version` is cyb_version().
inline void check_library_version(uint32_t header_number, uint32_t library_number,
                                  const char* library_version) {
    if (header_number / 10000 == library_number / 10000) {
        return;
    }
    const auto dotted = [](uint32_t number) {
        return std::to_string(number / 10000) + "." + std::to_string(number / 100 % 100) + "." +
               std::to_string(number % 100);
    };
    throw IncompatibleLibraryError(
        "cyborgdb-kms: this program was compiled against index_kms.hpp " + dotted(header_number) +
        " (major version " + std::to_string(header_number / 10000) +
        ") but the loaded libcyborgdb_kms is " + std::string(library_version) + " (major version " +
        std::to_string(library_number / 10000) +
        "); rebuild the program against the installed library's headers, or install the "
        "library version it was built with");
}

/// Checks once per process, at the first StorageConfig or KMSClient, that the loaded library
/// matches this header's major version (see check_library_version). Thread-safe. After a failure
/// every later call throws again.
inline void require_compatible_library() {
    static const bool compatible =
        (check_library_version(CYB_KMS_VERSION_NUMBER, cyb_version_number(), cyb_version()), true);
    static_cast<void>(compatible);
}

/// Throws the exception for `code`, with what() = "<CODE_NAME>: <message>".
[[noreturn]] inline void throw_error(cyb_result code, const std::string& message) {
    std::string what = cyb_result_name(static_cast<uint32_t>(code));
    what += ": ";
    what += message;
    switch (code) {
        case CYB_RESULT_INVALID_ARGUMENT:
        case CYB_RESULT_NULL_PARAMETER:
            throw InvalidArgumentError(code, what);
        case CYB_RESULT_NOT_FOUND:
            throw NotFoundError(code, what);
        case CYB_RESULT_ALREADY_EXISTS:
            throw AlreadyExistsError(code, what);
        case CYB_RESULT_IO:
            throw IOError(code, what);
        case CYB_RESULT_CORRUPT:
            throw CorruptDataError(code, what);
        case CYB_RESULT_CONFLICT:
            throw ConflictError(code, what);
        case CYB_RESULT_STORAGE_UNAVAILABLE:
            throw StorageUnavailableError(code, what);
        case CYB_RESULT_STORAGE_ACCESS_DENIED:
            throw StorageAccessDeniedError(code, what);
        case CYB_RESULT_UNKNOWN_SLOT:
            throw UnknownSlotError(code, what);
        case CYB_RESULT_INVALID_CONFIG:
            throw InvalidConfigError(code, what);
        case CYB_RESULT_KEK_NOT_WRAPPED:
            throw KEKNotWrappedError(code, what);
        case CYB_RESULT_UNTRUSTED_KEY:
            throw UntrustedKeyError(code, what);
        case CYB_RESULT_DECRYPT_FAILED:
            throw DecryptFailedError(code, what);
        case CYB_RESULT_KMS_ACCESS_DENIED:
            throw KMSAccessDeniedError(code, what);
        case CYB_RESULT_KMS_KEY_NOT_FOUND:
            throw KMSKeyNotFoundError(code, what);
        case CYB_RESULT_KMS_KEY_DISABLED:
            throw KMSKeyDisabledError(code, what);
        case CYB_RESULT_KMS_THROTTLED:
            throw KMSThrottledError(code, what);
        case CYB_RESULT_KMS_UNAVAILABLE:
            throw KMSUnavailableError(code, what);
        case CYB_RESULT_KMS_BAD_RESPONSE:
            throw KMSBadResponseError(code, what);
        case CYB_RESULT_WRAP_KEY_SIZE:
            throw WrapKeySizeError(code, what);
        case CYB_RESULT_FORKED_PROCESS:
            throw ForkedProcessError(code, what);
        case CYB_RESULT_CALLBACK_FAILED:
            throw CallbackFailedError(code, what);
        default:  // CYB_RESULT_PANIC, unknown codes (CYB_RESULT_OK is never passed here)
            throw InternalError(code, what);
    }
}

/// Returns if `code` is CYB_RESULT_OK; otherwise throws its exception with the calling thread's
/// cyb_last_error_message(). Call it immediately after the C function that returned `code`.
inline void check(cyb_result code) {
    if (code == CYB_RESULT_OK) {
        return;
    }
    throw_error(code, cyb_last_error_message());
}

struct BlobDeleter {
    void operator()(cyb_kms_blob* blob) const noexcept { cyb_kms_blob_free(blob); }
};

/// An owned C envelope handle.
using BlobPtr = std::unique_ptr<cyb_kms_blob, BlobDeleter>;

inline std::string to_string(cyb_str s) {
    return s.len == 0 ? std::string() : std::string(s.data, s.len);
}

inline std::vector<uint8_t> to_bytes(cyb_bytes b) {
    return b.len == 0 ? std::vector<uint8_t>() : std::vector<uint8_t>(b.data, b.data + b.len);
}

/// `d` in whole milliseconds for a C `_ms` field; InvalidArgumentError (`what` names the options)
/// outside 0 .. 2^32-1.
inline uint32_t to_millis(std::chrono::milliseconds d, const char* what) {
    if (d.count() < 0 || d.count() > static_cast<std::chrono::milliseconds::rep>(UINT32_MAX)) {
        throw_error(CYB_RESULT_INVALID_ARGUMENT,
                    std::string(what) + " timeouts must be between 0 and 2^32-1 ms");
    }
    return static_cast<uint32_t>(d.count());
}

/// A view of `s` (empty for none); `s` must outlive the view.
inline cyb_str view_of(const std::optional<std::string>& s) {
    return s ? cyb_str{s->data(), s->size()} : cyb_str{nullptr, 0};
}

}  // namespace detail

/// How AWS calls are retried (C: CYB_RETRY_MODE_*).
enum class RetryMode : uint32_t {
    /// AWS_RETRY_MODE, else retry_mode of the AWS profile, else Standard.
    Default = CYB_RETRY_MODE_DEFAULT,
    /// Randomized exponential backoff.
    Standard = CYB_RETRY_MODE_STANDARD,
    /// Standard plus a client-side rate limiter that holds requests back after throttling
    /// answers (for tens of seconds after a first throttle: size the operation timeout for it).
    Adaptive = CYB_RETRY_MODE_ADAPTIVE,
};

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

/// Caching of vector data in the full CyborgDB engine. Accepted by StorageConfig::Disk for API
/// compatibility and ignored: it has no meaning for KMS envelopes.
struct CachePolicy {
    bool vectors = false;
    bool metadata = false;
    bool ids = false;
};

/// Static credentials for S3 storage. Used for S3 only, never for KMS calls (and KMS credentials
/// are never used for S3). access_key and secret_key must both be non-empty; an empty
/// session_token is the same as none.
struct S3Credentials {
    std::string access_key;
    std::string secret_key;
    std::optional<std::string> session_token;
};

/// Server-side encryption requested on every S3 PutObject (C: CYB_S3_SSE_*).
enum class S3Encryption : uint32_t {
    /// None requested: the bucket's default encryption applies.
    None = CYB_S3_SSE_NONE,
    /// SSE-S3 (AES256, keys managed by S3).
    S3 = CYB_S3_SSE_S3,
    /// SSE-KMS (aws:kms) with S3Options::sse_kms_key_id (none: the account's aws/s3 key).
    KMS = CYB_S3_SSE_KMS,
};

/// Options of StorageConfig::S3. An empty region or endpoint is the same as none.
///   prefix       object-key prefix: envelope of index N is <prefix>/<storage key of N>.kms (a '/'
///                is added if missing; "" = the bucket's top level)
///   region       the bucket's region; none: the default AWS chain (AWS_REGION, profile, instance
///                metadata), or us-east-1 with an endpoint and nothing found
///   endpoint     S3-compatible endpoint (http:// or https://: MinIO, Ceph, R2); selects
///                path-style addressing. None: AWS S3, virtual-hosted addressing
///   credentials  none: the default AWS credential chain (only without an endpoint: a custom
///                endpoint requires explicit credentials, or default_credentials_with_endpoint);
///                otherwise exactly these
///   default_credentials_with_endpoint  with an endpoint and no credentials, use the default AWS
///                chain anyway (an S3 VPC endpoint with IRSA or an instance role)
///   server_side_encryption, sse_kms_key_id  requested on every PutObject (the key id only with
///                S3Encryption::KMS; none: the account's aws/s3 key)
///   expected_bucket_owner  12-digit AWS account id sent as ExpectedBucketOwner on every request
///                (another owner: StorageAccessDeniedError)
///   timeouts     zero durations and attempts mean the defaults (connect 3 s, attempt 5 s,
///                operation 15 s, first retry backoff up to 1 s); max_attempts 0 means
///                AWS_MAX_ATTEMPTS, else the profile's max_attempts, else 3 (at most 10)
struct S3Options {
    std::string prefix = "";
    std::optional<std::string> region;
    std::optional<std::string> endpoint;
    std::optional<S3Credentials> credentials;
    bool default_credentials_with_endpoint = false;
    S3Encryption server_side_encryption = S3Encryption::None;
    std::optional<std::string> sse_kms_key_id;
    std::optional<std::string> expected_bucket_owner;
    std::chrono::milliseconds connect_timeout{0};
    std::chrono::milliseconds attempt_timeout{0};
    std::chrono::milliseconds operation_timeout{0};
    uint32_t max_attempts = 0;
    std::chrono::milliseconds initial_backoff{0};
    RetryMode retry_mode = RetryMode::Default;
};

/// Where index keystores, and so their KMS envelopes, are stored. Immutable, no public default
/// constructor; copies share one store (all copies of one Memory() see the same envelopes).
/// Thread-safe: any number of threads may use one StorageConfig or its copies at once.
/// Who custody audit records name (StorageConfig::WithAudit, KEKResolver::SetAudit).
struct AuditOptions {
    std::string principal;            // the service or operator; required, never a credential
    std::optional<std::string> host;  // std::nullopt: this machine's host name
    /// Per-index unwrap counts: a KEKResolver acting on the store appends one "unwraps" record
    /// per index at most every this long (1 s..=1 day, whole seconds) and on
    /// KEKResolver::FlushUnwrapCounts / destruction. std::nullopt: off. Out of range (0 s
    /// included): InvalidArgumentError naming unwrap_counts.
    std::optional<std::chrono::seconds> unwrap_counts = std::nullopt;
};

/// The kind of the first break StorageConfig::VerifyAudit found (the CYB_AUDIT_BREAK_* values).
enum class AuditBreakKind : uint32_t {
    None = CYB_AUDIT_BREAK_NONE,
    Changed = CYB_AUDIT_BREAK_CHANGED,
    Removed = CYB_AUDIT_BREAK_REMOVED,
    Reordered = CYB_AUDIT_BREAK_REORDERED,
    Truncated = CYB_AUDIT_BREAK_TRUNCATED,
    Fork = CYB_AUDIT_BREAK_FORK,
};

/// What StorageConfig::VerifyAudit found.
struct AuditReport {
    uint64_t records = 0;                                 // records verified (before any break)
    uint64_t head_seq = 0;                                // the last verified record's seq
    std::optional<std::array<uint8_t, 32>> head_hash;     // its SHA-256; nullopt if none verified
    AuditBreakKind break_kind = AuditBreakKind::None;     // None: the chain is intact
    uint64_t break_seq = 0;                               // the first untrustworthy seq
    std::string break_message;                            // what was found (empty if intact)

    bool intact() const noexcept { return break_kind == AuditBreakKind::None; }
};

namespace detail {

/// A C view of `options` (valid while `options` lives).
inline cyb_audit_options to_c_audit_options(const AuditOptions& options) {
    cyb_audit_options c{};
    c.principal = cyb_str{options.principal.data(), options.principal.size()};
    if (options.host) {
        c.host = cyb_str{options.host->data(), options.host->size()};
    }
    if (options.unwrap_counts) {
        // 0 means off in C, so a zero (or out-of-range) interval is refused here, naming it.
        const auto seconds = options.unwrap_counts->count();
        if (seconds < 1 || seconds > 86400) {
            throw_error(CYB_RESULT_INVALID_ARGUMENT,
                        "audit option unwrap_counts must be a whole number of seconds in "
                        "1..=86400, not " + std::to_string(seconds) + "s");
        }
        c.unwrap_counts_seconds = static_cast<uint32_t>(seconds);
    }
    return c;
}

}  // namespace detail

class StorageConfig {
public:
    /// A new, empty in-process store; its envelopes are gone when the last copy is destroyed.
    /// Two calls give two distinct stores. Throws only std::bad_alloc / InternalError (and
    /// IncompatibleLibraryError, see "Version check" above).
    static StorageConfig Memory() {
        detail::require_compatible_library();
        cyb_storage_config* raw = nullptr;
        detail::check(cyb_storage_config_new_memory(&raw));
        return StorageConfig(raw);
    }

    /// A store in the directory `path` (created on the first write; a relative path is resolved
    /// against the current directory now). Envelope of index N: <path>/<storage key of N>.kms.
    /// `cache_policy` is ignored (see CachePolicy).
    /// Throws InvalidArgumentError for std::nullopt ("Disk storage needs a path"), an empty path or
    /// one containing NUL.
    static StorageConfig Disk(std::optional<std::filesystem::path> path,
                              CachePolicy cache_policy = {}) {
        detail::require_compatible_library();
        static_cast<void>(cache_policy);
        if (!path) {
            detail::throw_error(CYB_RESULT_INVALID_ARGUMENT, "Disk storage needs a path");
        }
        const std::string bytes = path->string();
        cyb_storage_config* raw = nullptr;
        detail::check(cyb_storage_config_new_disk(bytes.data(), bytes.size(), &raw));
        return StorageConfig(raw);
    }

    /// A bucket in S3 or an S3-compatible store, shared by every node using the same bucket and
    /// prefix. Creates are conditional writes (If-None-Match: *): racing creators on any number
    /// of machines have exactly one winner. Does no network I/O: the S3 client is set up by the
    /// first operation, within its time bound.
    /// Throws InvalidArgumentError for a bucket name that breaks S3's naming rules, a bad prefix,
    /// region or endpoint, credentials with an empty access or secret key (what() never
    /// contains a secret), an endpoint without credentials or default_credentials_with_endpoint,
    /// a bad sse_kms_key_id (or one without S3Encryption::KMS) or expected_bucket_owner, a timeout
    /// out of range or max_attempts above 10; InvalidConfigError for an unusable AWS_MAX_ATTEMPTS,
    /// AWS_RETRY_MODE or AWS_ENDPOINT_URL*. Operations on it may also throw StorageUnavailableError (timeout,
    /// unreachable, throttled, server error) and StorageAccessDeniedError (rejected credentials,
    /// no permission, no such bucket), and ForkedProcessError in a child forked after this call.
    static StorageConfig S3(std::string bucket, S3Options opts = {}) {
        detail::require_compatible_library();
        const auto view = [](const std::string& s) { return cyb_str{s.data(), s.size()}; };
        const auto optional_view = [&view](const std::optional<std::string>& s) {
            return s ? view(*s) : cyb_str{nullptr, 0};
        };
        cyb_s3_options options{};
        options.prefix = view(opts.prefix);
        options.region = optional_view(opts.region);
        options.endpoint = optional_view(opts.endpoint);
        options.default_credentials_with_endpoint = opts.default_credentials_with_endpoint;
        options.server_side_encryption = static_cast<uint32_t>(opts.server_side_encryption);
        options.sse_kms_key_id = optional_view(opts.sse_kms_key_id);
        options.expected_bucket_owner = optional_view(opts.expected_bucket_owner);
        options.timeouts.connect_timeout_ms = detail::to_millis(opts.connect_timeout, "S3");
        options.timeouts.attempt_timeout_ms = detail::to_millis(opts.attempt_timeout, "S3");
        options.timeouts.operation_timeout_ms = detail::to_millis(opts.operation_timeout, "S3");
        options.timeouts.max_attempts = opts.max_attempts;
        options.timeouts.initial_backoff_ms = detail::to_millis(opts.initial_backoff, "S3");
        options.retry_mode = static_cast<uint32_t>(opts.retry_mode);
        cyb_s3_credentials credentials{};
        if (opts.credentials) {
            credentials.access_key = view(opts.credentials->access_key);
            credentials.secret_key = view(opts.credentials->secret_key);
            credentials.session_token = optional_view(opts.credentials->session_token);
            options.credentials = &credentials;
        }
        cyb_storage_config* raw = nullptr;
        detail::check(cyb_storage_config_new_s3(bucket.data(), bucket.size(), &options, &raw));
        return StorageConfig(raw);
    }

    /// This store with the custody audit on (docs/audit.md): every create, push, delete and
    /// re-wrap through the returned config first appends a hash-chained record naming
    /// `options.principal`, this host and this process to the store's audit log; if that append
    /// fails, the change is not made and the call throws the append's error (IOError,
    /// CorruptDataError, Storage*Error). This config stays unaudited; both share the store.
    /// Throws InvalidArgumentError (a principal or host that is empty, over 256 bytes or holds a
    /// control character; what() names the field).
    StorageConfig WithAudit(const AuditOptions& options) const {
        const cyb_audit_options c_options = detail::to_c_audit_options(options);
        cyb_storage_config* raw = nullptr;
        detail::check(cyb_storage_config_with_audit(handle_.get(), &c_options, &raw));
        return StorageConfig(raw);
    }

    /// Walks this store's audit log and reports the first break (a changed, removed, reordered
    /// or truncated record, or a fork); a break is in the report, not thrown. Throws
    /// CorruptDataError (a line longer than any record), IOError, Storage*Error.
    AuditReport VerifyAudit() const {
        cyb_audit_report c{};
        detail::check(cyb_verify_audit(handle_.get(), &c));
        AuditReport report;
        report.records = c.records;
        if (c.has_head) {
            report.head_seq = c.head_seq;
            report.head_hash.emplace();
            for (std::size_t i = 0; i < report.head_hash->size(); ++i) {
                (*report.head_hash)[i] = c.head_hash[i];
            }
        }
        report.break_kind = static_cast<AuditBreakKind>(c.break_kind);
        report.break_seq = c.break_seq;
        report.break_message = c.break_message;
        return report;
    }

    /// The C handle, borrowed: valid as long as this StorageConfig (or a copy) lives.
    const cyb_storage_config* c_handle() const noexcept { return handle_.get(); }

private:
    explicit StorageConfig(cyb_storage_config* raw) : handle_(raw, &cyb_storage_config_free) {}

    std::shared_ptr<cyb_storage_config> handle_;
};

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

/// A per-index KMS envelope, with exactly the documented fields and defaults.
struct KMSBlob {
    std::string kms_name;              // logical KMS name (registry slot)
    std::string provider;              // "aws" | "aws-kms" | "none"
    std::string key_id;                // KMS key identifier
    std::string region;                // KMS region
    std::vector<uint8_t> wrapped_kek;  // wrapped KEK bytes
    uint32_t version = 0;              // envelope version
    int64_t created_at = 0;            // unix epoch seconds (0: stamped with "now" when stored)
};

/// Field-wise equality.
inline bool operator==(const KMSBlob& a, const KMSBlob& b) {
    return a.kms_name == b.kms_name && a.provider == b.provider && a.key_id == b.key_id &&
           a.region == b.region && a.wrapped_kek == b.wrapped_kek && a.version == b.version &&
           a.created_at == b.created_at;
}

inline bool operator!=(const KMSBlob& a, const KMSBlob& b) { return !(a == b); }

namespace detail {

/// A new C envelope holding a copy of `blob` (strings passed as (data, size), so an embedded NUL
/// reaches the library, which rejects it on create / push).
inline BlobPtr to_c_blob(const KMSBlob& blob) {
    cyb_kms_blob* raw = nullptr;
    check(cyb_kms_blob_new(&raw));
    BlobPtr owned(raw);
    check(cyb_kms_blob_set_kms_name(raw, blob.kms_name.data(), blob.kms_name.size()));
    check(cyb_kms_blob_set_provider(raw, blob.provider.data(), blob.provider.size()));
    check(cyb_kms_blob_set_key_id(raw, blob.key_id.data(), blob.key_id.size()));
    check(cyb_kms_blob_set_region(raw, blob.region.data(), blob.region.size()));
    check(cyb_kms_blob_set_wrapped_kek(raw, blob.wrapped_kek.data(), blob.wrapped_kek.size()));
    check(cyb_kms_blob_set_version(raw, blob.version));
    check(cyb_kms_blob_set_created_at(raw, blob.created_at));
    return owned;
}

/// A copy of the C envelope `blob`.
inline KMSBlob from_c_blob(const cyb_kms_blob* blob) {
    KMSBlob out;
    out.kms_name = to_string(cyb_kms_blob_kms_name(blob));
    out.provider = to_string(cyb_kms_blob_provider(blob));
    out.key_id = to_string(cyb_kms_blob_key_id(blob));
    out.region = to_string(cyb_kms_blob_region(blob));
    out.wrapped_kek = to_bytes(cyb_kms_blob_wrapped_kek(blob));
    out.version = cyb_kms_blob_version(blob);
    out.created_at = cyb_kms_blob_created_at(blob);
    return out;
}

}  // namespace detail

/// Stores `blob` as the envelope of `index_name` — a strict insert. `blob` is not modified; a
/// created_at of 0 is stored as the current unix time.
/// Throws AlreadyExistsError if an envelope is stored (it is left untouched); InvalidArgumentError
/// for a bad index name (empty, > 255 bytes, NUL, invalid UTF-8) or a field that breaks a rule
/// (nothing is written); IOError; on S3 StorageUnavailableError, StorageAccessDeniedError. Safe to
/// call concurrently: racing creates have one winner (on S3, across machines too).
inline void CreateIndexKMS(const StorageConfig& config_location, const std::string& index_name,
                           const KMSBlob& blob) {
    const detail::BlobPtr c_blob = detail::to_c_blob(blob);
    detail::check(cyb_index_kms_create(config_location.c_handle(), index_name.data(),
                                       index_name.size(), c_blob.get()));
}

/// Stores `blob` as the envelope of `index_name`, creating or replacing it — an idempotent
/// upsert. A created_at of 0 is stored as the current unix time.
/// Throws InvalidArgumentError (nothing written), IOError, StorageUnavailableError,
/// StorageAccessDeniedError (a previous envelope is intact).
/// Safe to call concurrently; readers see the old or the new envelope, never a mix.
inline void PushIndexKMS(const StorageConfig& config_location, const std::string& index_name,
                         const KMSBlob& blob) {
    const detail::BlobPtr c_blob = detail::to_c_blob(blob);
    detail::check(cyb_index_kms_push(config_location.c_handle(), index_name.data(),
                                     index_name.size(), c_blob.get()));
}

/// The stored envelope of `index_name`, or std::nullopt if none is stored.
/// Throws InvalidArgumentError, CorruptDataError (stored bytes fail verification), IOError,
/// StorageUnavailableError, StorageAccessDeniedError.
/// Safe to call concurrently.
inline std::optional<KMSBlob> TryGetIndexKMS(const StorageConfig& config_location,
                                             const std::string& index_name) {
    cyb_kms_blob* raw = nullptr;
    const cyb_result code = cyb_index_kms_get(config_location.c_handle(), index_name.data(),
                                              index_name.size(), &raw);
    if (code == CYB_RESULT_NOT_FOUND) {
        return std::nullopt;
    }
    detail::check(code);
    const detail::BlobPtr owned(raw);
    return detail::from_c_blob(owned.get());
}

/// The stored envelope of `index_name`.
/// Throws NotFoundError if none is stored; InvalidArgumentError, CorruptDataError, IOError,
/// StorageUnavailableError, StorageAccessDeniedError.
/// Safe to call concurrently.
inline KMSBlob GetIndexKMS(const StorageConfig& config_location, const std::string& index_name) {
    cyb_kms_blob* raw = nullptr;
    detail::check(cyb_index_kms_get(config_location.c_handle(), index_name.data(),
                                    index_name.size(), &raw));
    const detail::BlobPtr owned(raw);
    return detail::from_c_blob(owned.get());
}

/// Removes the envelope of `index_name`; removing a missing envelope succeeds (idempotent).
/// Throws InvalidArgumentError, IOError, StorageUnavailableError, StorageAccessDeniedError.
/// Safe to call concurrently.
inline void DeleteIndexKMS(const StorageConfig& config_location, const std::string& index_name) {
    detail::check(cyb_index_kms_delete(config_location.c_handle(), index_name.data(),
                                       index_name.size()));
}

// ---------------------------------------------------------------------------------------------
// KMS: wrapping and unwrapping index KEKs
// ---------------------------------------------------------------------------------------------

/// A 32-byte key-encryption key. Its bytes are overwritten with zeros when it is destroyed or
/// moved from. Move-only, so no stray copies are made by accident; Clone() makes one on purpose.
class KEK {
public:
    static constexpr std::size_t kSize = 32;

    /// An all-zero KEK, to be filled through data().
    KEK() noexcept = default;
    KEK(const KEK&) = delete;
    KEK& operator=(const KEK&) = delete;
    KEK(KEK&& other) noexcept : bytes_(other.bytes_) { other.Wipe(); }
    KEK& operator=(KEK&& other) noexcept {
        if (this != &other) {
            bytes_ = other.bytes_;
            other.Wipe();
        }
        return *this;
    }
    ~KEK() { Wipe(); }

    /// An explicit copy (also wiped on destruction).
    KEK Clone() const {
        KEK copy;
        copy.bytes_ = bytes_;
        return copy;
    }

    uint8_t* data() noexcept { return bytes_.data(); }
    const uint8_t* data() const noexcept { return bytes_.data(); }
    static constexpr std::size_t size() noexcept { return kSize; }

    /// Constant-time comparison.
    friend bool operator==(const KEK& a, const KEK& b) noexcept {
        uint8_t diff = 0;
        for (std::size_t i = 0; i < kSize; ++i) {
            diff = static_cast<uint8_t>(diff | (a.bytes_[i] ^ b.bytes_[i]));
        }
        return diff == 0;
    }
    friend bool operator!=(const KEK& a, const KEK& b) noexcept { return !(a == b); }

private:
    void Wipe() noexcept {
        volatile uint8_t* p = bytes_.data();
        for (std::size_t i = 0; i < kSize; ++i) {
            p[i] = 0;
        }
    }

    std::array<uint8_t, kSize> bytes_{};
};

/// How a KMSClient reaches AWS. Zero durations mean the library's defaults (connect 3 s, attempt
/// 5 s, operation 15 s, first retry backoff up to 1 s); max_attempts 0 means AWS_MAX_ATTEMPTS,
/// else the AWS profile's max_attempts, else 3 (at most 10).
struct KMSClientOptions {
    std::chrono::milliseconds connect_timeout{0};
    std::chrono::milliseconds attempt_timeout{0};
    std::chrono::milliseconds operation_timeout{0};
    uint32_t max_attempts = 0;
    std::chrono::milliseconds initial_backoff{0};
    RetryMode retry_mode = RetryMode::Default;
    /// One endpoint for KMS, Secrets Manager and STS (emulator). Unset: the SDK's resolution,
    /// which honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>. A service's own endpoint
    /// below wins over it.
    std::optional<std::string> endpoint_url;
    /// The KMS endpoint (e.g. a KMS VPC interface endpoint), instead of endpoint_url.
    std::optional<std::string> kms_endpoint_url;
    /// The Secrets Manager endpoint, instead of endpoint_url.
    std::optional<std::string> secrets_manager_endpoint_url;
    /// The STS endpoint (assuming slots' roles), instead of endpoint_url.
    std::optional<std::string> sts_endpoint_url;
    /// The KMS endpoint of particular regions (region -> URL, e.g. a KMS VPC interface endpoint
    /// per region for the replicas of a multi-Region key), before kms_endpoint_url and
    /// endpoint_url for keys in that region. Each URL follows kms_endpoint_url's rules
    /// (InvalidConfigError naming kms_region_endpoint_urls["<region>"]). Empty: none.
    std::map<std::string, std::string> kms_region_endpoint_urls{};
    /// Enables the development-only "local" provider (a master key in a file or an environment
    /// variable). Off by default: every local wrap and unwrap then throws UntrustedKeyError,
    /// whatever a stored envelope says.
    bool allow_local_provider = false;
    /// Allows a plain http:// endpoint on a host other than this machine (KEKs, wrap keys and
    /// credentials would cross the network in clear text). Off by default: InvalidConfigError.
    /// Loopback endpoints (emulators) are always allowed.
    bool allow_insecure_http = false;
};

/// A key a slot trusted before a rotation (YAML `previous_keys`), for KMSClient::AddPreviousKey.
struct KMSKey {
    std::string provider;  ///< "aws-kms", "aws" or "local"
    std::string key_id;
    std::string region;
};

/// A registry slot, as in the YAML `kms.registry` section.
struct KMSSlot {
    std::string provider;  // "aws-kms" | "aws" | "local" (development only)
    std::string key_id;    // KMS key ARN/id/alias; secret name/ARN; file:<path> or env:<VAR>
    std::string region;    // empty for "local"
    std::optional<std::string> role_arn;           // BYOK: role to assume first
    std::optional<std::string> external_id;        // required with role_arn
    std::optional<std::string> role_session_name;  // default "cyborgdb-kms"
    // Regions holding replicas of a multi-Region aws-kms key, in failover order (YAML
    // replica_regions; docs/providers.md). Empty: none.
    std::vector<std::string> replica_regions{};
};

/// An envelope together with the KEK it wraps, as WrapNewKEK returns them.
struct WrappedKEK {
    KMSBlob blob;
    KEK kek;
};

/// Wraps and unwraps index KEKs through named KMS slots (AWS KMS, Secrets Manager + AES-GCM,
/// BYOK via sts:AssumeRole). Reuses AWS SDK clients across calls, so create one per process (or
/// per configuration) and share it; it owns no threads (calls run on the library's one
/// process-wide runtime). Move-only; thread-safe. In a child forked after it was made, every call
/// throws ForkedProcessError; make a new one in the child.
class KMSClient {
public:
    /// A client with an empty registry. No network I/O happens here.
    /// Throws InvalidConfigError (an endpoint URL not http(s) or plain http off this machine,
    /// max_attempts above 10, an unusable AWS_MAX_ATTEMPTS or AWS_RETRY_MODE),
    /// InvalidArgumentError (a timeout out of range, an unknown retry_mode), InternalError.
    explicit KMSClient(const KMSClientOptions& options = {}) {
        detail::require_compatible_library();
        const std::string endpoint = options.endpoint_url.value_or("");
        cyb_kms_client_options c_options{};
        c_options.timeouts.connect_timeout_ms = to_millis(options.connect_timeout);
        c_options.timeouts.attempt_timeout_ms = to_millis(options.attempt_timeout);
        c_options.timeouts.operation_timeout_ms = to_millis(options.operation_timeout);
        c_options.timeouts.max_attempts = options.max_attempts;
        c_options.timeouts.initial_backoff_ms = to_millis(options.initial_backoff);
        c_options.endpoint_url = cyb_str{endpoint.data(), endpoint.size()};
        c_options.kms_endpoint_url = detail::view_of(options.kms_endpoint_url);
        c_options.secrets_manager_endpoint_url =
            detail::view_of(options.secrets_manager_endpoint_url);
        c_options.sts_endpoint_url = detail::view_of(options.sts_endpoint_url);
        std::vector<cyb_kms_region_endpoint> region_endpoints;
        region_endpoints.reserve(options.kms_region_endpoint_urls.size());
        for (const auto& [region, url] : options.kms_region_endpoint_urls) {
            region_endpoints.push_back(cyb_kms_region_endpoint{
                cyb_str{region.data(), region.size()}, cyb_str{url.data(), url.size()}});
        }
        c_options.kms_region_endpoint_urls = region_endpoints.data();
        c_options.kms_region_endpoint_url_count = region_endpoints.size();
        c_options.retry_mode = static_cast<uint32_t>(options.retry_mode);
        c_options.allow_local_provider = options.allow_local_provider;
        c_options.allow_insecure_http = options.allow_insecure_http;
        cyb_kms_client* raw = nullptr;
        detail::check(cyb_kms_client_new(&c_options, &raw));
        handle_.reset(raw);
    }

    /// Replaces the registry with the `kms.registry` section of `yaml` (${VAR} and
    /// ${VAR:-default} substituted from the environment); returns the number of slots. On error
    /// the registry in use is unchanged. Throws InvalidConfigError naming slot and field.
    std::size_t LoadRegistryYAML(const std::string& yaml) {
        std::size_t slots = 0;
        detail::check(
            cyb_kms_client_load_registry_yaml(handle_.get(), yaml.data(), yaml.size(), &slots));
        return slots;
    }

    /// As LoadRegistryYAML, from the file at `path`. Throws InvalidConfigError (also when the file
    /// cannot be read).
    std::size_t LoadRegistryFile(const std::filesystem::path& path) {
        const std::string bytes = path.string();
        std::size_t slots = 0;
        detail::check(
            cyb_kms_client_load_registry_file(handle_.get(), bytes.data(), bytes.size(), &slots));
        return slots;
    }

    /// Adds or replaces the slot `name`. Throws InvalidConfigError naming the slot and field.
    void AddSlot(const std::string& name, const KMSSlot& slot) {
        const std::string role_arn = slot.role_arn.value_or("");
        const std::string external_id = slot.external_id.value_or("");
        const std::string session = slot.role_session_name.value_or("");
        cyb_kms_slot c_slot{};
        c_slot.provider = cyb_str{slot.provider.data(), slot.provider.size()};
        c_slot.key_id = cyb_str{slot.key_id.data(), slot.key_id.size()};
        c_slot.region = cyb_str{slot.region.data(), slot.region.size()};
        c_slot.role_arn = cyb_str{role_arn.data(), role_arn.size()};
        c_slot.external_id = cyb_str{external_id.data(), external_id.size()};
        c_slot.role_session_name = cyb_str{session.data(), session.size()};
        std::vector<cyb_str> regions;
        regions.reserve(slot.replica_regions.size());
        for (const std::string& region : slot.replica_regions) {
            regions.push_back(cyb_str{region.data(), region.size()});
        }
        c_slot.replica_regions = regions.data();
        c_slot.replica_region_count = regions.size();
        detail::check(cyb_kms_client_add_slot(handle_.get(), name.data(), name.size(), &c_slot));
    }

    /// Makes slot `slot_name` trust `key` for unwrapping (the key it wrapped with before a
    /// rotation), as the YAML line `previous_keys: [...]` does. Throws UnknownSlotError,
    /// InvalidConfigError naming the slot and field.
    void AddPreviousKey(const std::string& slot_name, const KMSKey& key) {
        cyb_kms_slot c_key{};
        c_key.provider = cyb_str{key.provider.data(), key.provider.size()};
        c_key.key_id = cyb_str{key.key_id.data(), key.key_id.size()};
        c_key.region = cyb_str{key.region.data(), key.region.size()};
        detail::check(cyb_kms_client_add_previous_key(handle_.get(), slot_name.data(),
                                                      slot_name.size(), &c_key));
    }

    /// Generates a fresh KEK for `index_name` and wraps it through slot `slot_name`. Returns the
    /// envelope (kms_name = slot, the slot's provider/key_id/region, version 1, created_at now)
    /// and the KEK. Nothing is stored: pass the envelope to CreateIndexKMS.
    /// Throws UnknownSlotError, InvalidArgumentError, the KMSError family, InvalidConfigError.
    WrappedKEK WrapNewKEK(const std::string& index_name, const std::string& slot_name) const {
        cyb_kms_blob* raw = nullptr;
        KEK kek;
        detail::check(cyb_kms_wrap_new_kek(handle_.get(), index_name.data(), index_name.size(),
                                           slot_name.data(), slot_name.size(), &raw, kek.data(),
                                           kek.size()));
        const detail::BlobPtr owned(raw);
        return WrappedKEK{detail::from_c_blob(owned.get()), std::move(kek)};
    }

    /// Wraps an existing `kek` of `index_name` through slot `slot_name` (re-wrap on rotation).
    /// Returns the new envelope (version 1: set the version you store). Throws as WrapNewKEK.
    KMSBlob WrapKEK(const std::string& index_name, const std::string& slot_name,
                    const KEK& kek) const {
        cyb_kms_blob* raw = nullptr;
        detail::check(cyb_kms_wrap_kek(handle_.get(), index_name.data(), index_name.size(),
                                       slot_name.data(), slot_name.size(), kek.data(), kek.size(),
                                       &raw));
        const detail::BlobPtr owned(raw);
        return detail::from_c_blob(owned.get());
    }

    /// Unwraps the KEK of `index_name` from its envelope `blob`.
    /// Throws KEKNotWrappedError (provider "none"), UnknownSlotError, DecryptFailedError (wrong
    /// key or index, damaged), the other KMSError types, InvalidArgumentError.
    KEK UnwrapKEK(const std::string& index_name, const KMSBlob& blob) const {
        const detail::BlobPtr c_blob = detail::to_c_blob(blob);
        KEK kek;
        detail::check(cyb_kms_unwrap_kek(handle_.get(), index_name.data(), index_name.size(),
                                         c_blob.get(), kek.data(), kek.size()));
        return kek;
    }

    /// Region failover counters (multi-Region keys, a slot's replica_regions): moves to the next
    /// region, and unwraps a failover answered. Both only grow.
    cyb_kms_failover_stats Stats() const {
        cyb_kms_failover_stats c{};
        detail::check(cyb_kms_client_stats(handle_.get(), &c));
        return c;
    }

    /// The C handle, borrowed: valid as long as this KMSClient lives.
    const cyb_kms_client* c_handle() const noexcept { return handle_.get(); }

private:
    static uint32_t to_millis(std::chrono::milliseconds d) {
        return detail::to_millis(d, "KMS client");
    }

    struct Deleter {
        void operator()(cyb_kms_client* client) const noexcept { cyb_kms_client_free(client); }
    };
    std::unique_ptr<cyb_kms_client, Deleter> handle_;
};

/// Configuration of a KEKResolver's cache. Unset TTL: INDEX_KEK_CACHE_TTL_SECONDS if set, else
/// 60 s. A zero TTL turns caching off. max_entries 0: the default, 100000. Unset revalidate:
/// CYB_KEK_REVALIDATE_SECS if set, else off; zero: off; else the envelope revalidation interval
/// (at most an hour; docs/resolver.md): other nodes' pushes, re-wraps and deletes are seen
/// within it. Unset stale_if_error: CYB_KEK_STALE_IF_ERROR (1 / 0) if set, else on; on, a
/// revalidation check that fails with a transient storage error (StorageUnavailableError,
/// IOError) serves the cached KEK until its TTL instead of throwing.
struct KEKCacheOptions {
    std::optional<std::chrono::milliseconds> ttl;
    std::size_t max_entries = 0;
    std::optional<std::chrono::milliseconds> revalidate;
    std::optional<bool> stale_if_error;
};

/// A snapshot of a KEKResolver's cache counters (all but `entries` only grow).
struct KEKCacheStats {
    uint64_t hits = 0;            // answered from memory: no storage, no provider
    uint64_t misses = 0;          // not plain hits: each waited for or led one fill
    uint64_t provider_calls = 0;  // KMS unwraps and wraps made by the resolver
    uint64_t errors = 0;          // resolves that threw
    uint64_t evictions = 0;       // removed to stay within max_entries
    uint64_t expirations = 0;     // removed at their TTL
    uint64_t invalidations = 0;   // removed by Invalidate / InvalidateAll / Rewrap
    uint64_t entries = 0;         // KEKs cached now
    uint64_t stale_served = 0;    // failed revalidation checks answered from memory
};

/// The verdict on one stored envelope of a drift check.
enum class DriftStatus : uint32_t {
    kInSync = CYB_DRIFT_IN_SYNC,          // snapshot matches the slot
    kDrifted = CYB_DRIFT_DRIFTED,         // slot names another key; not re-wrapped
    kRewrapped = CYB_DRIFT_REWRAPPED,     // drifted, and re-wrapped under the slot's key
    kNotWrapped = CYB_DRIFT_NOT_WRAPPED,  // provider "none": nothing to compare
    kFailed = CYB_DRIFT_FAILED,           // see error_code / error_message; nothing changed
};

/// The provider / key_id / region an envelope records, or a slot names.
struct KeySnapshot {
    std::string provider;
    std::string key_id;
    std::string region;
};

/// One line of a drift report.
struct DriftEntry {
    std::string index_name;
    DriftStatus status = DriftStatus::kFailed;
    std::string kms_name;
    std::optional<KeySnapshot> stored;      // unset if the envelope was unreadable
    std::optional<KeySnapshot> configured;  // unset if the slot is unknown
    cyb_result error_code = CYB_RESULT_OK;
    std::string error_message;
    /// KEKResolver::CheckDriftNewKek only: what the engine's re-wrap threw for this index (the
    /// entry is then kFailed with CYB_RESULT_CALLBACK_FAILED); null otherwise.
    std::exception_ptr callback_error;
};

/// Where a new-KEK rotation stood when its KEKRotation was made (see KEKResolver::BeginRotation).
enum class RotationState : uint32_t {
    kPending = CYB_ROTATION_PENDING,      // envelope still the old one: commit or abort
    kCommitted = CYB_ROTATION_COMMITTED,  // envelope already the new one: commit finishes it
    kStale = CYB_ROTATION_STALE,          // another write replaced the envelope: abort
};

/// A new-KEK rotation of one index, from KEKResolver::BeginRotation or PendingRotation: its old
/// and new KEK (wiped when this object is destroyed) and its state. Move-only.
class KEKRotation {
public:
    /// The KEK the index had when the rotation began.
    KEK OldKek() const {
        KEK kek;
        detail::check(cyb_kek_rotation_old_kek(handle_.get(), kek.data(), kek.size()));
        return kek;
    }

    /// The fresh KEK the index gets on commit.
    KEK NewKek() const {
        KEK kek;
        detail::check(cyb_kek_rotation_new_kek(handle_.get(), kek.data(), kek.size()));
        return kek;
    }

    /// Where the rotation stood when this object was made.
    RotationState State() const noexcept {
        return static_cast<RotationState>(cyb_kek_rotation_state(handle_.get()));
    }

    /// The C handle (owned by this object).
    const cyb_kek_rotation* c_handle() const noexcept { return handle_.get(); }

private:
    friend class KEKResolver;
    explicit KEKRotation(cyb_kek_rotation* raw) : handle_(raw) {}

    struct Deleter {
        void operator()(cyb_kek_rotation* rotation) const noexcept {
            cyb_kek_rotation_free(rotation);
        }
    };
    std::unique_ptr<cyb_kek_rotation, Deleter> handle_;
};

/// Resolves index KEKs through a KMSClient's registry with a TTL'd cache of unwrapped KEKs —
/// the service hot path — and creates, re-wraps and drift-checks index envelopes.
///
/// A cache hit touches neither storage nor KMS; concurrent misses on one index make one
/// provider call; only provider-unwrapped KEKs are cached, never caller-supplied ones. A write
/// through this process to a store (create, push, delete, re-wrap) makes its cached KEKs be
/// re-checked against the stored envelope, so a changed envelope never yields the old KEK.
/// Move-only; thread-safe (share one per process). In a child forked after it was made, every
/// call throws ForkedProcessError (cached KEKs are not served); make a new one in the child.
class KEKResolver {
public:
    /// Shares `client`'s registry (the client may be destroyed afterwards).
    /// Throws InvalidConfigError (bad INDEX_KEK_CACHE_TTL_SECONDS or CYB_KEK_REVALIDATE_SECS, a
    /// revalidation interval above an hour), InvalidArgumentError.
    explicit KEKResolver(const KMSClient& client, const KEKCacheOptions& options = {}) {
        cyb_kek_cache_options c_options{};
        if (options.ttl) {
            if (options.ttl->count() < 0) {
                detail::throw_error(CYB_RESULT_INVALID_ARGUMENT, "KEK cache TTL must not be negative");
            }
            c_options.ttl_ms = options.ttl->count() == 0 ? CYB_KEK_CACHE_DISABLED
                                                         : static_cast<int64_t>(options.ttl->count());
        }
        c_options.max_entries = options.max_entries;
        if (options.revalidate) {
            if (options.revalidate->count() < 0) {
                detail::throw_error(CYB_RESULT_INVALID_ARGUMENT,
                                    "KEK envelope revalidation interval must not be negative");
            }
            c_options.revalidate_ms = options.revalidate->count() == 0
                                          ? CYB_KEK_REVALIDATE_OFF
                                          : static_cast<int64_t>(options.revalidate->count());
        }
        if (options.stale_if_error) {
            c_options.stale_if_error =
                *options.stale_if_error ? CYB_KEK_STALE_IF_ERROR_ON : CYB_KEK_STALE_IF_ERROR_OFF;
        }
        cyb_kek_resolver* raw = nullptr;
        detail::check(cyb_kek_resolver_new(client.c_handle(), &c_options, &raw));
        handle_.reset(raw);
    }

    /// The KEK of `index_name` (envelope in `storage`): cached, or unwrapped and cached.
    /// Throws NotFoundError, KEKNotWrappedError (provider "none": the caller holds the key),
    /// UnknownSlotError, the KMSError family, CorruptDataError, IOError, Storage*Error,
    /// InvalidArgumentError.
    KEK Resolve(const StorageConfig& storage, const std::string& index_name) const {
        KEK kek;
        detail::check(cyb_kek_resolve(handle_.get(), storage.c_handle(), index_name.data(),
                                      index_name.size(), kek.data(), kek.size()));
        return kek;
    }

    /// Creates the envelope of a new index and returns its KEK. Exactly one of `kms_name`
    /// (KMS-backed: a fresh KEK wrapped through that slot) and `index_key` (caller-supplied:
    /// provider "none" is recorded) must be given. If the insert fails nothing is stored.
    /// Throws InvalidArgumentError ("index_key and kms_name are mutually exclusive", neither
    /// given), AlreadyExistsError, UnknownSlotError, the KMSError family, storage errors.
    KEK CreateIndex(const StorageConfig& storage, const std::string& index_name,
                    const std::optional<std::string>& kms_name,
                    const KEK* index_key = nullptr) const {
        KEK kek;
        detail::check(cyb_kek_create_index(
            handle_.get(), storage.c_handle(), index_name.data(), index_name.size(),
            kms_name ? kms_name->data() : nullptr, kms_name ? kms_name->size() : 0,
            index_key ? index_key->data() : nullptr, index_key ? index_key->size() : 0, kek.data(),
            kek.size()));
        return kek;
    }

    /// Re-wraps the index's KEK under slot `slot_name` (same KEK, new snapshot, version + 1;
    /// invalidates its cache entry) and returns the stored envelope. On error nothing changed.
    /// Throws ConflictError (the envelope changed meanwhile), KEKNotWrappedError,
    /// UnknownSlotError, NotFoundError, the KMSError family, storage errors.
    KMSBlob Rewrap(const StorageConfig& storage, const std::string& index_name,
                   const std::string& slot_name) const {
        cyb_kms_blob* raw = nullptr;
        detail::check(cyb_kek_rewrap(handle_.get(), storage.c_handle(), index_name.data(),
                                     index_name.size(), slot_name.data(), slot_name.size(), &raw));
        const detail::BlobPtr owned(raw);
        return detail::from_c_blob(owned.get());
    }

    /// New-KEK rotation, phase 1: unwraps the current KEK, wraps a fresh one through slot
    /// `slot_name` and stores a pending-rotation record next to the envelope (unchanged: Resolve
    /// keeps returning the old KEK). Re-wrap the engine's DEK under NewKek() (keeping it under
    /// OldKek() too), then CommitRotation — or AbortRotation. Throws ConflictError (a rotation
    /// of the index is already pending), KEKNotWrappedError, UnknownSlotError, UntrustedKeyError,
    /// NotFoundError, the KMSError family, storage errors; on error nothing is stored.
    KEKRotation BeginRotation(const StorageConfig& storage, const std::string& index_name,
                              const std::string& slot_name) const {
        cyb_kek_rotation* raw = nullptr;
        detail::check(cyb_kek_begin_rotation(handle_.get(), storage.c_handle(), index_name.data(),
                                             index_name.size(), slot_name.data(), slot_name.size(),
                                             &raw));
        return KEKRotation(raw);
    }

    /// The index's pending rotation (e.g. left by a crash), with both KEKs, or nullopt. Throws
    /// CorruptDataError (a damaged record), UntrustedKeyError, the KMSError family, storage
    /// errors.
    std::optional<KEKRotation> PendingRotation(const StorageConfig& storage,
                                               const std::string& index_name) const {
        cyb_kek_rotation* raw = nullptr;
        detail::check(cyb_kek_pending_rotation(handle_.get(), storage.c_handle(),
                                               index_name.data(), index_name.size(), &raw));
        if (raw == nullptr) {
            return std::nullopt;
        }
        return KEKRotation(raw);
    }

    /// New-KEK rotation, phase 2: swaps the envelope to the new KEK (version + 1), removes the
    /// record, drops the cached KEK; idempotent. Returns the new envelope. Throws ConflictError
    /// (another write replaced the envelope, or the rotation is gone), CorruptDataError, storage
    /// errors.
    KMSBlob CommitRotation(const StorageConfig& storage, const KEKRotation& rotation) const {
        cyb_kms_blob* raw = nullptr;
        detail::check(
            cyb_kek_commit_rotation(handle_.get(), storage.c_handle(), rotation.c_handle(), &raw));
        const detail::BlobPtr owned(raw);
        return detail::from_c_blob(owned.get());
    }

    /// Undoes a rotation that was not committed: removes its record; the envelope is unchanged.
    /// Throws ConflictError (already committed: commit it instead), CorruptDataError, storage
    /// errors.
    void AbortRotation(const StorageConfig& storage, const KEKRotation& rotation) const {
        detail::check(
            cyb_kek_abort_rotation(handle_.get(), storage.c_handle(), rotation.c_handle()));
    }

    /// New-KEK rotation in one call: BeginRotation, `rewrap(old_kek, new_kek)` (the engine
    /// re-wraps its DEK under new_kek, idempotently, keeping it under old_kek until this returns),
    /// CommitRotation. If `rewrap` throws, the rotation is rolled back (the envelope is unchanged)
    /// and its exception is rethrown as is. Returns the new envelope. Throws as BeginRotation and
    /// CommitRotation.
    KMSBlob RotateKek(const StorageConfig& storage, const std::string& index_name,
                      const std::string& slot_name,
                      const std::function<void(const KEK& old_kek, const KEK& new_kek)>& rewrap)
        const {
        struct Context {
            const std::function<void(const KEK&, const KEK&)>* rewrap;
            std::exception_ptr error;
        } context{&rewrap, nullptr};
        const auto trampoline = [](void* raw, const uint8_t* old_bytes,
                                   const uint8_t* new_bytes) noexcept -> bool {
            auto* ctx = static_cast<Context*>(raw);
            try {
                KEK old_kek;
                KEK new_kek;
                std::memcpy(old_kek.data(), old_bytes, KEK::kSize);
                std::memcpy(new_kek.data(), new_bytes, KEK::kSize);
                (*ctx->rewrap)(old_kek, new_kek);
                return true;
            } catch (...) {
                ctx->error = std::current_exception();
                return false;
            }
        };
        cyb_kms_blob* raw = nullptr;
        const cyb_result code = cyb_kek_rotate_kek(
            handle_.get(), storage.c_handle(), index_name.data(), index_name.size(),
            slot_name.data(), slot_name.size(), trampoline, &context, &raw);
        if (code == CYB_RESULT_CALLBACK_FAILED && context.error) {
            std::rethrow_exception(context.error);
        }
        detail::check(code);
        const detail::BlobPtr owned(raw);
        return detail::from_c_blob(owned.get());
    }

    /// Compares every stored envelope's snapshot with the registry; with `rewrap`, re-wraps the
    /// drifted ones (failures are per entry and change nothing). Throws storage errors (listing).
    std::vector<DriftEntry> CheckDrift(const StorageConfig& storage, bool rewrap = false) const {
        cyb_drift_report* raw = nullptr;
        detail::check(cyb_kek_check_drift(handle_.get(), storage.c_handle(), rewrap, &raw));
        return ReadDriftReport(raw);
    }

    /// Drift repair in new-KEK mode (docs/resolver.md, "Drift"): CheckDrift without re-wrapping,
    /// then each drifted index is rotated to a fresh KEK under its own slot as RotateKek does,
    /// calling `rewrap(index_name, old_kek, new_kek)` for it (the engine re-wraps that index's
    /// DEK, idempotently, keeping it under old_kek until the call for the index returns). A
    /// rotated index is kRewrapped. If `rewrap` throws for an index, that index's rotation is
    /// rolled back (its envelope unchanged), its entry is kFailed with CYB_RESULT_CALLBACK_FAILED
    /// and `callback_error` holds the exception; the other indexes go on. Throws storage errors
    /// (listing).
    std::vector<DriftEntry> CheckDriftNewKek(
        const StorageConfig& storage,
        const std::function<void(const std::string& index_name, const KEK& old_kek,
                                 const KEK& new_kek)>& rewrap) const {
        struct Context {
            const std::function<void(const std::string&, const KEK&, const KEK&)>* rewrap;
            std::map<std::string, std::exception_ptr> errors;
        } context{&rewrap, {}};
        const auto trampoline = [](void* raw, const char* name, std::size_t name_len,
                                   const uint8_t* old_bytes,
                                   const uint8_t* new_bytes) noexcept -> bool {
            auto* ctx = static_cast<Context*>(raw);
            std::string index_name;
            try {
                index_name.assign(name, name_len);
                KEK old_kek;
                KEK new_kek;
                std::memcpy(old_kek.data(), old_bytes, KEK::kSize);
                std::memcpy(new_kek.data(), new_bytes, KEK::kSize);
                (*ctx->rewrap)(index_name, old_kek, new_kek);
                return true;
            } catch (...) {
                try {
                    ctx->errors[index_name] = std::current_exception();
                } catch (...) {
                    // Out of memory recording it: the entry still says CALLBACK_FAILED.
                }
                return false;
            }
        };
        cyb_drift_report* raw = nullptr;
        detail::check(cyb_kek_check_drift_new_kek(handle_.get(), storage.c_handle(), trampoline,
                                                  &context, &raw));
        std::vector<DriftEntry> entries = ReadDriftReport(raw);
        for (DriftEntry& entry : entries) {
            const auto found = context.errors.find(entry.index_name);
            if (found != context.errors.end() && entry.error_code == CYB_RESULT_CALLBACK_FAILED) {
                entry.callback_error = found->second;
            }
        }
        return entries;
    }

    /// Resolves every index into the cache with up to `parallelism` threads; returns one result
    /// code per index, in order (CYB_RESULT_OK or what Resolve would have thrown). Throws
    /// InvalidArgumentError for a parallelism of 0 or above 256.
    std::vector<cyb_result> WarmUp(const StorageConfig& storage,
                                   const std::vector<std::string>& index_names,
                                   std::size_t parallelism = 16) const {
        std::vector<cyb_str> names;
        names.reserve(index_names.size());
        for (const std::string& name : index_names) {
            names.push_back(cyb_str{name.data(), name.size()});
        }
        std::vector<cyb_result> results(index_names.size(), CYB_RESULT_OK);
        detail::check(cyb_kek_warm_up(handle_.get(), storage.c_handle(), names.data(), names.size(),
                                      parallelism, results.data()));
        return results;
    }

    /// Drops the cached KEK of one index; returns whether one was cached.
    bool Invalidate(const StorageConfig& storage, const std::string& index_name) const {
        bool removed = false;
        detail::check(cyb_kek_invalidate(handle_.get(), storage.c_handle(), index_name.data(),
                                         index_name.size(), &removed));
        return removed;
    }

    /// Drops every cached KEK; returns how many.
    std::size_t InvalidateAll() const {
        std::size_t removed = 0;
        detail::check(cyb_kek_invalidate_all(handle_.get(), &removed));
        return removed;
    }

    /// The cache's counters.
    /// Turns the custody audit on (`options`) or off (std::nullopt) for every store this
    /// resolver acts on: its creates, re-wraps, drift findings and refused keys are recorded in
    /// that store's audit log. A StorageConfig made WithAudit keeps its own options.
    /// Throws InvalidArgumentError (as StorageConfig::WithAudit; nothing changes then).
    void SetAudit(const std::optional<AuditOptions>& options) const {
        if (options) {
            const cyb_audit_options c_options = detail::to_c_audit_options(*options);
            detail::check(cyb_kek_resolver_set_audit(handle_.get(), &c_options));
        } else {
            detail::check(cyb_kek_resolver_set_audit(handle_.get(), nullptr));
        }
    }

    /// Appends the per-index unwrap counts not yet appended (AuditOptions::unwrap_counts): one
    /// "unwraps" record per index counted since its last one. Best effort (a failed append is
    /// logged). Throws ForkedProcessError.
    void FlushUnwrapCounts() const {
        detail::check(cyb_kek_resolver_flush_unwrap_counts(handle_.get()));
    }

    KEKCacheStats Stats() const {
        cyb_kek_cache_stats c{};
        detail::check(cyb_kek_resolver_stats(handle_.get(), &c));
        return KEKCacheStats{c.hits,      c.misses,      c.provider_calls, c.errors,       c.evictions,
                             c.expirations, c.invalidations, c.entries,   c.stale_served};
    }

    /// The C handle, borrowed: valid as long as this KEKResolver lives.
    const cyb_kek_resolver* c_handle() const noexcept { return handle_.get(); }

private:
    struct Deleter {
        void operator()(cyb_kek_resolver* resolver) const noexcept {
            cyb_kek_resolver_free(resolver);
        }
    };
    struct ReportDeleter {
        void operator()(cyb_drift_report* report) const noexcept { cyb_drift_report_free(report); }
    };

    /// Copies a drift report's entries out and frees it (owned from the first line on).
    static std::vector<DriftEntry> ReadDriftReport(cyb_drift_report* raw) {
        const std::unique_ptr<cyb_drift_report, ReportDeleter> report(raw);
        const auto text = [](cyb_str s) { return std::string(s.data, s.len); };
        std::vector<DriftEntry> entries;
        const std::size_t count = cyb_drift_report_len(report.get());
        entries.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            cyb_drift_entry c{};
            detail::check(cyb_drift_report_entry(report.get(), i, &c));
            DriftEntry entry;
            entry.index_name = text(c.index_name);
            entry.status = static_cast<DriftStatus>(c.status);
            entry.kms_name = text(c.kms_name);
            if (c.stored_provider.len > 0) {
                entry.stored = KeySnapshot{text(c.stored_provider), text(c.stored_key_id),
                                           text(c.stored_region)};
            }
            if (c.configured_provider.len > 0) {
                entry.configured = KeySnapshot{text(c.configured_provider),
                                               text(c.configured_key_id), text(c.configured_region)};
            }
            entry.error_code = c.error_code;
            entry.error_message = text(c.error_message);
            entries.push_back(std::move(entry));
        }
        return entries;
    }
    std::unique_ptr<cyb_kek_resolver, Deleter> handle_;
};


/// Importance of a log event (the numbers of the C enum cyb_log_level). A callback installed at a
/// level receives that level and every more important one.
enum class LogLevel : uint32_t {
    Off = CYB_LOG_LEVEL_OFF,      ///< As a threshold: no events.
    Error = CYB_LOG_LEVEL_ERROR,  ///< An operation failed (a KMS call) and its caller gets an error.
    Warn = CYB_LOG_LEVEL_WARN,    ///< A failed resolve, drift, a failed re-wrap, use after fork().
    Info = CYB_LOG_LEVEL_INFO,    ///< A KMS registry change, a re-wrap.
    Debug = CYB_LOG_LEVEL_DEBUG,  ///< KEK cache fills, evictions, expiry; AWS SDK attempts, retries.
    Trace = CYB_LOG_LEVEL_TRACE,  ///< KEK cache misses.
};

/// A log callback: the event's level, target (e.g. "cyborgdb_kms::cache") and message. The
/// string_views are valid only during the call: copy what you keep.
using LogCallback =
    std::function<void(LogLevel level, std::string_view target, std::string_view message)>;

namespace detail {

/// What SetLogCallback owns: the installed callback (heap copy) and the mutex serializing
/// installs. Allocated once and never destroyed, so the library's runtime threads can still log
/// while static destructors run at exit.
struct LogState {
    std::mutex mutex;
    LogCallback* installed = nullptr;
};

inline LogState& log_state() {
    static LogState* state = new LogState();
    return *state;
}

/// Set while this thread runs a LogCallback.
inline thread_local bool in_log_callback = false;

/// The C callback: calls the LogCallback passed as userdata; swallows every exception, which
/// must not cross the C ABI.
inline void log_trampoline(void* userdata, const cyb_log_record* record) noexcept {
    in_log_callback = true;
    try {
        (*static_cast<LogCallback*>(userdata))(
            static_cast<LogLevel>(record->level),
            std::string_view(record->target, record->target_len),
            std::string_view(record->message, record->message_len));
    } catch (...) {
        // A throwing callback loses its event and nothing else.
    }
    in_log_callback = false;
}

}  // namespace detail

/// Sends every log event at `level` or more important to `callback`, replacing the previous
/// callback; an empty `callback` or LogLevel::Off removes it (as ClearLogCallback()).
///
/// - Ownership: the library keeps its own copy of `callback` until it is replaced or cleared;
///   the previous copy is destroyed before this returns, once no call of it is in progress on any
///   thread (this waits for such calls). The copy installed last is never destroyed, so logging
///   during process exit is safe.
/// - Threads: `callback` runs on the thread that produced the event — a caller's thread or one
///   of the library's runtime threads — and possibly on several threads at once. Keep it short.
/// - Exceptions thrown by `callback` are caught and discarded (they never cross the C ABI).
/// - Never key material: KEKs, wrap keys, ExternalIds and credentials never appear in events.
///
/// Throws InvalidArgumentError when called from inside a log callback (it would wait for
/// itself); the installed callback is then unchanged.
inline void SetLogCallback(LogLevel level, LogCallback callback) {
    if (detail::in_log_callback) {
        detail::throw_error(CYB_RESULT_INVALID_ARGUMENT,
                            "SetLogCallback: cannot be called from inside a log callback");
    }
    std::unique_ptr<LogCallback> next;
    if (callback && level != LogLevel::Off) {
        next = std::make_unique<LogCallback>(std::move(callback));
    }
    detail::LogState& state = detail::log_state();
    std::lock_guard<std::mutex> lock(state.mutex);
    detail::check(cyb_set_log_callback(static_cast<uint32_t>(level),
                                       next ? &detail::log_trampoline : nullptr, next.get()));
    // The library no longer calls the previous one.
    delete state.installed;
    state.installed = next.release();
}

/// Removes the log callback (destroying the library's copy); when this returns it is not running
/// and never called again. Throws as SetLogCallback.
inline void ClearLogCallback() { SetLogCallback(LogLevel::Off, LogCallback()); }

}  // namespace cyborg

#endif  // CYB_INDEX_KMS_HPP
