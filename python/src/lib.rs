//! `cyborgdb_core._native`: the Python binding of the `cyborgdb-kms` crate, through its Rust API.
//!
//! The package `cyborgdb_core` (python/cyborgdb_core/) re-exports everything here; its type stubs
//! (`__init__.pyi`) are the user documentation. Conventions:
//!
//! - Every call that may touch storage, a KMS provider or S3 runs with the GIL released
//!   (`Python::detach`), so other Python threads keep running while it blocks.
//! - Library errors become `cyborgdb_core.Error` subclasses (built in `cyborgdb_core/_errors.py`)
//!   carrying the C result code; wrong Python types become `TypeError` naming the parameter.
//! - Every class is immutable from Rust's point of view or guards its state, so objects can be
//!   shared between Python threads. `KMSBlob` is a plain mutable record, like the C++ struct.
//! - Key material never reaches a `repr`, `str` or exception text.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use cyborgdb_kms::audit::AuditOptions;
use cyborgdb_kms::ffi::cyb_result;
use cyborgdb_kms::{
    AwsRetryMode, AwsTimeouts, DriftEntry, DriftStatus, KekCacheOptions, KeyIdentity, KmsBlob,
    KmsClientOptions, RotateKekError, RotationState, S3Credentials, S3Options,
    S3ServerSideEncryption, Slot,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use zeroize::{Zeroize, Zeroizing};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The exception for C result code `code` with `message` (an instance of the `cyborgdb_core.Error`
/// subclass for that code, made by `cyborgdb_core._errors._from_code`). If that module cannot be
/// imported, the import error itself.
fn error_for_code(py: Python<'_>, code: cyb_result, message: &str) -> PyErr {
    static FROM_CODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let made = FROM_CODE
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py
                .import("cyborgdb_core._errors")?
                .getattr("_from_code")?
                .unbind())
        })
        .and_then(|from_code| from_code.bind(py).call1((code as u32, message)));
    match made {
        Ok(exception) => PyErr::from_value(exception),
        Err(import_failed) => import_failed,
    }
}

/// The exception for a library error.
fn to_py_err(py: Python<'_>, error: &cyborgdb_kms::Error) -> PyErr {
    error_for_code(py, cyb_result::from(error.kind()), error.message())
}

/// Converts a library result, raising its exception.
trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for cyborgdb_kms::Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py_err(py, &e))
    }
}

/// An `InvalidArgumentError` (code INVALID_ARGUMENT) raised by the binding itself.
fn invalid_argument(py: Python<'_>, message: &str) -> PyErr {
    error_for_code(py, cyb_result::CYB_RESULT_INVALID_ARGUMENT, message)
}

/// `(name, number)` of every C result code, for `cyborgdb_core.ResultCode` and its test.
#[pyfunction]
fn _result_codes() -> Vec<(String, u32)> {
    cyb_result::ALL
        .iter()
        .map(|code| (code.name().to_string_lossy().into_owned(), *code as u32))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Argument conversion
// ---------------------------------------------------------------------------------------------

/// The Python type name of `value`, for TypeError messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A copy of the bytes-like `value` (bytes, bytearray or memoryview), or TypeError naming `what`.
/// The copy is zeroized when dropped, since it may hold key material.
fn bytes_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Zeroizing::new(bytes.as_bytes().to_vec()));
    }
    if let Ok(array) = value.cast::<PyByteArray>() {
        return Ok(Zeroizing::new(array.to_vec()));
    }
    if value.is_instance(&value.py().import("builtins")?.getattr("memoryview")?)? {
        let copy = value.call_method0("tobytes")?;
        let bytes = copy.cast::<PyBytes>()?;
        return Ok(Zeroizing::new(bytes.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be bytes, bytearray or memoryview, not {}",
        type_name(value)
    )))
}

/// `value` as a `str`, or TypeError naming `what`.
fn str_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be str, not {}",
            type_name(value)
        ))),
    }
}

/// `value` as an integer in `T`'s range: TypeError naming `what` for a non-int (or a bool),
/// InvalidArgumentError for one out of range.
fn int_arg<'py, T>(value: &Bound<'py, PyAny>, what: &str, range: &str) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    let py = value.py();
    let is_int = value.is_instance(&py.import("builtins")?.getattr("int")?)?;
    let is_bool = value.is_instance(&py.import("builtins")?.getattr("bool")?)?;
    if !is_int || is_bool {
        return Err(PyTypeError::new_err(format!(
            "{what} must be int, not {}",
            type_name(value)
        )));
    }
    value
        .extract::<T>()
        .map_err(|_| invalid_argument(py, &format!("{what} must be in {range}")))
}

/// Seconds (int or float, > 0) as a Duration; `None` as the library default (zero).
fn seconds_arg(py: Python<'_>, value: Option<f64>, what: &str) -> PyResult<Duration> {
    match value {
        None => Ok(Duration::ZERO),
        Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 4.0e6 => {
            Ok(Duration::from_secs_f64(seconds))
        }
        Some(_) => Err(invalid_argument(
            py,
            &format!("{what} must be a positive number of seconds below 4e6"),
        )),
    }
}

/// The time and retry bounds of AWS calls from the keyword arguments shared by `KMSClient` and
/// `StorageConfig.s3`. `None` means the library's default for each, as the C ABI's zeros do
/// (`max_attempts`: `AWS_MAX_ATTEMPTS`, else the profile's, else 3; `retry_mode`:
/// `AWS_RETRY_MODE`, else the profile's, else standard). Raises InvalidArgumentError for a
/// timeout that is not positive, `max_attempts` below 1 or an unknown retry mode, TypeError for
/// a wrong type (the library checks the upper bound of `max_attempts`).
fn timeouts_arg(
    py: Python<'_>,
    connect_timeout: Option<f64>,
    attempt_timeout: Option<f64>,
    operation_timeout: Option<f64>,
    max_attempts: Option<&Bound<'_, PyAny>>,
    initial_backoff: Option<f64>,
    retry_mode: Option<&Bound<'_, PyAny>>,
) -> PyResult<AwsTimeouts> {
    let defaults = AwsTimeouts::default();
    let or_default = |value: Duration, default: Duration| {
        if value.is_zero() {
            default
        } else {
            value
        }
    };
    let max_attempts = match max_attempts {
        None => None,
        Some(value) => {
            // TypeError for a non-int; past u32, the library's own "above 10" error.
            let attempts = match int_arg::<i64>(value, "max_attempts", "1..=10") {
                Ok(n) => n,
                Err(e) if e.is_instance_of::<PyTypeError>(py) => return Err(e),
                Err(_) if value.gt(0)? => i64::MAX,
                Err(_) => 0,
            };
            if attempts < 1 {
                return Err(invalid_argument(py, "max_attempts must be at least 1"));
            }
            Some(u32::try_from(attempts).unwrap_or(u32::MAX))
        }
    };
    Ok(AwsTimeouts {
        connect: or_default(
            seconds_arg(py, connect_timeout, "connect_timeout")?,
            defaults.connect,
        ),
        attempt: or_default(
            seconds_arg(py, attempt_timeout, "attempt_timeout")?,
            defaults.attempt,
        ),
        operation: or_default(
            seconds_arg(py, operation_timeout, "operation_timeout")?,
            defaults.operation,
        ),
        max_attempts,
        retry_mode: match retry_mode {
            None => None,
            Some(value) => Some(retry_mode_arg(py, value)?),
        },
        initial_backoff: or_default(
            seconds_arg(py, initial_backoff, "initial_backoff")?,
            defaults.initial_backoff,
        ),
    })
}

/// A `RetryMode` member or its value ("standard", "adaptive") as the library's retry mode.
/// Raises InvalidArgumentError for another string, TypeError for a non-string.
fn retry_mode_arg(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<AwsRetryMode> {
    let text = str_arg(value, "retry_mode")?;
    [AwsRetryMode::Standard, AwsRetryMode::Adaptive]
        .into_iter()
        .find(|mode| mode.as_str() == text)
        .ok_or_else(|| {
            invalid_argument(
                py,
                &format!(
                    "retry_mode is {}: use RetryMode.STANDARD (\"standard\"), \
                     RetryMode.ADAPTIVE (\"adaptive\") or None (AWS_RETRY_MODE, else the \
                     profile's, else standard)",
                    py_repr(py, &short_prefix(&text)).unwrap_or_default()
                ),
            )
        })
}

/// The server-side encryption of `StorageConfig.s3` from an `S3Encryption` member or its value
/// ("AES256", "aws:kms") and the SSE-KMS key (empty: none, the account's `aws/s3` key). Raises
/// InvalidArgumentError for another string or a key without SSE-KMS, TypeError for a non-string.
fn server_side_encryption_arg(
    py: Python<'_>,
    encryption: Option<&Bound<'_, PyAny>>,
    sse_kms_key_id: Option<String>,
) -> PyResult<Option<S3ServerSideEncryption>> {
    let key_id = sse_kms_key_id.filter(|k| !k.is_empty());
    let encryption = match encryption {
        None => None,
        Some(value) => Some(str_arg(value, "server_side_encryption")?),
    };
    match (encryption.as_deref(), key_id) {
        (None, None) => Ok(None),
        (Some("AES256"), None) => Ok(Some(S3ServerSideEncryption::S3Managed)),
        (Some("aws:kms"), key_id) => Ok(Some(S3ServerSideEncryption::Kms { key_id })),
        (None | Some("AES256"), Some(_)) => Err(invalid_argument(
            py,
            "sse_kms_key_id is set but server_side_encryption is not S3Encryption.KMS",
        )),
        (Some(other), _) => Err(invalid_argument(
            py,
            &format!(
                "server_side_encryption is {}: use S3Encryption.S3 (\"AES256\"), \
                 S3Encryption.KMS (\"aws:kms\") or None (the bucket's default encryption)",
                py_repr(py, &short_prefix(other)).unwrap_or_default()
            ),
        )),
    }
}

/// The first 64 characters of a rejected value, so an error message stays short.
fn short_prefix(value: &str) -> String {
    value.chars().take(64).collect()
}

/// A Python `repr` of a string, as the field values appear in `KMSBlob.__repr__`.
fn py_repr(py: Python<'_>, value: &str) -> PyResult<String> {
    Ok(PyString::new(py, value).repr()?.to_string())
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

/// Static credentials for S3 storage (never used for KMS calls).
#[pyclass(name = "S3Credentials", module = "cyborgdb_core", frozen)]
struct PyS3Credentials {
    inner: S3Credentials,
}

#[pymethods]
impl PyS3Credentials {
    #[new]
    #[pyo3(signature = (access_key, secret_key, session_token=None))]
    fn new(access_key: String, secret_key: String, session_token: Option<String>) -> Self {
        PyS3Credentials {
            inner: S3Credentials {
                access_key,
                secret_key,
                session_token,
            },
        }
    }

    /// The access key id (not a secret).
    #[getter]
    fn access_key(&self) -> &str {
        &self.inner.access_key
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "S3Credentials(access_key={}, secret_key=<redacted>, session_token={})",
            py_repr(py, &self.inner.access_key)?,
            if self.inner.session_token.is_some() {
                "<redacted>"
            } else {
                "None"
            }
        ))
    }
}

/// Where index keystores, and so their KMS envelopes, are stored. Immutable; shareable.
#[pyclass(name = "StorageConfig", module = "cyborgdb_core", frozen)]
struct PyStorageConfig {
    inner: cyborgdb_kms::StorageConfig,
}

#[pymethods]
impl PyStorageConfig {
    #[new]
    fn new() -> PyResult<Self> {
        Err(PyTypeError::new_err(
            "StorageConfig has no public constructor: use StorageConfig.memory(), .disk(path) or .s3(bucket, ...)",
        ))
    }

    #[staticmethod]
    fn memory() -> Self {
        PyStorageConfig {
            inner: cyborgdb_kms::StorageConfig::memory(),
        }
    }

    #[staticmethod]
    #[pyo3(signature = (path, cache_policy=None))]
    fn disk(
        py: Python<'_>,
        path: PathBuf,
        cache_policy: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let _ = cache_policy; // Vector-data caching of the full engine: no meaning for envelopes.
                              // Resolving the path touches the filesystem (canonicalize), which may block.
        let inner = py
            .detach(|| cyborgdb_kms::StorageConfig::disk(&path))
            .or_raise(py)?;
        Ok(PyStorageConfig { inner })
    }

    #[staticmethod]
    #[pyo3(signature = (bucket, *, region=None, endpoint=None, prefix=String::new(), credentials=None, default_credentials_with_endpoint=false, server_side_encryption=None, sse_kms_key_id=None, expected_bucket_owner=None, connect_timeout=None, attempt_timeout=None, operation_timeout=None, max_attempts=None, initial_backoff=None, retry_mode=None))]
    #[allow(clippy::too_many_arguments)]
    fn s3(
        py: Python<'_>,
        bucket: String,
        region: Option<String>,
        endpoint: Option<String>,
        prefix: String,
        credentials: Option<PyRef<'_, PyS3Credentials>>,
        default_credentials_with_endpoint: bool,
        server_side_encryption: Option<&Bound<'_, PyAny>>,
        sse_kms_key_id: Option<String>,
        expected_bucket_owner: Option<String>,
        connect_timeout: Option<f64>,
        attempt_timeout: Option<f64>,
        operation_timeout: Option<f64>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        initial_backoff: Option<f64>,
        retry_mode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let empty_is_none = |s: Option<String>| s.filter(|s| !s.is_empty());
        let options = S3Options {
            prefix,
            region: empty_is_none(region),
            endpoint: empty_is_none(endpoint),
            credentials: credentials.map(|c| c.inner.clone()),
            default_credentials_with_endpoint,
            server_side_encryption: server_side_encryption_arg(
                py,
                server_side_encryption,
                sse_kms_key_id,
            )?,
            expected_bucket_owner: empty_is_none(expected_bucket_owner),
            timeouts: timeouts_arg(
                py,
                connect_timeout,
                attempt_timeout,
                operation_timeout,
                max_attempts,
                initial_backoff,
                retry_mode,
            )?,
        };
        let inner = cyborgdb_kms::StorageConfig::s3(&bucket, options).or_raise(py)?;
        Ok(PyStorageConfig { inner })
    }

    /// This store with the custody audit on (docs/audit.md): every create, push, delete and
    /// re-wrap through the returned config first appends a hash-chained record naming
    /// `principal`, this host (or `host`) and this process.
    /// `unwrap_counts_seconds` (1..=86400): a resolver acting on the store appends one
    /// `unwraps` record per index at most this often, and on `flush_unwrap_counts`.
    #[pyo3(signature = (principal, *, host=None, unwrap_counts_seconds=None))]
    fn with_audit(
        &self,
        py: Python<'_>,
        principal: String,
        host: Option<String>,
        unwrap_counts_seconds: Option<u64>,
    ) -> PyResult<Self> {
        let options = AuditOptions {
            principal,
            host,
            unwrap_counts: unwrap_counts_seconds.map(Duration::from_secs),
        };
        let inner = self.inner.with_audit(&options).or_raise(py)?;
        Ok(PyStorageConfig { inner })
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

// ---------------------------------------------------------------------------------------------
// Custody audit
// ---------------------------------------------------------------------------------------------

/// What `verify_audit` found.
#[pyclass(name = "AuditReport", module = "cyborgdb_core", frozen, get_all)]
struct PyAuditReport {
    /// Records verified (before the first break, or all).
    records: u64,
    /// The last verified record's seq, or None.
    head_seq: Option<u64>,
    /// The last verified record's SHA-256 (32 bytes), or None.
    head_hash: Option<Py<PyBytes>>,
    /// "changed", "removed", "reordered", "truncated" or "fork"; None if intact.
    break_kind: Option<&'static str>,
    /// The first untrustworthy seq, or None.
    break_seq: Option<u64>,
    /// What was found ("" if intact).
    break_message: String,
}

#[pymethods]
impl PyAuditReport {
    /// Whether no break was found.
    #[getter]
    fn intact(&self) -> bool {
        self.break_kind.is_none()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "AuditReport(records={}, head_seq={:?}, break_kind={}, break_seq={:?}, break_message={})",
            self.records,
            self.head_seq,
            self.break_kind.map_or(Ok("None".to_owned()), |k| py_repr(py, k))?,
            self.break_seq,
            py_repr(py, &self.break_message)?
        ))
    }
}

/// One custody audit record.
#[pyclass(name = "AuditRecord", module = "cyborgdb_core", frozen, get_all)]
struct PyAuditRecord {
    seq: u64,
    time_ms: u64,
    index_name: String,
    /// The event's type: "created", "pushed", "deleted", "rewrapped", "drift_detected",
    /// "untrusted_key", "provider_refused", "aborted" or "unwraps".
    event_type: &'static str,
    /// The event's fields, as in the record's JSON (`event` object).
    event: Py<PyAny>,
    principal: String,
    host: String,
    pid: u32,
    prev_hash: Py<PyBytes>,
    hash: Py<PyBytes>,
    /// The stored JSON line (without its newline).
    line: String,
}

#[pymethods]
impl PyAuditRecord {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "AuditRecord(seq={}, index_name={}, event_type={}, principal={})",
            self.seq,
            py_repr(py, &self.index_name)?,
            py_repr(py, self.event_type)?,
            py_repr(py, &self.principal)?
        ))
    }
}

/// Walks the audit log of `config_location`'s store and reports the first break.
#[pyfunction]
fn verify_audit(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
) -> PyResult<PyAuditReport> {
    let config = config_location.inner.clone();
    let report = py
        .detach(|| cyborgdb_kms::audit::verify_audit(&config))
        .or_raise(py)?;
    Ok(PyAuditReport {
        records: report.records,
        head_seq: report.head.map(|head| head.seq),
        head_hash: report
            .head
            .map(|head| PyBytes::new(py, &head.hash).unbind()),
        break_kind: report.first_break.as_ref().map(|b| b.kind.name()),
        break_seq: report.first_break.as_ref().map(|b| b.seq),
        break_message: report.first_break.map(|b| b.message).unwrap_or_default(),
    })
}

/// The audit records with seq >= `from_seq`, at most `limit` (1..=10000) of them.
#[pyfunction]
#[pyo3(signature = (config_location, from_seq=0, limit=1000))]
fn read_audit(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
    from_seq: u64,
    limit: usize,
) -> PyResult<Vec<PyAuditRecord>> {
    let config = config_location.inner.clone();
    let records = py
        .detach(|| cyborgdb_kms::audit::read_audit(&config, from_seq, limit))
        .or_raise(py)?;
    let loads = py.import("json")?.getattr("loads")?;
    records
        .into_iter()
        .map(|record| {
            let mut line = record.to_line();
            line.pop();
            let event = loads.call1((line.as_str(),))?.get_item("event")?.unbind();
            Ok(PyAuditRecord {
                seq: record.seq,
                time_ms: record.time_ms,
                event_type: record.event.name(),
                event,
                principal: record.actor.principal,
                host: record.actor.host,
                pid: record.actor.pid,
                prev_hash: PyBytes::new(py, &record.prev_hash).unbind(),
                hash: PyBytes::new(py, &record.hash).unbind(),
                index_name: record.index,
                line,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

/// A per-index KMS envelope: a mutable record, like the C++ struct.
#[pyclass(name = "KMSBlob", module = "cyborgdb_core")]
#[derive(Clone)]
struct PyKmsBlob {
    inner: KmsBlob,
}

#[pymethods]
impl PyKmsBlob {
    #[new]
    #[pyo3(signature = (kms_name=None, provider=None, key_id=None, region=None, wrapped_kek=None, version=None, created_at=None))]
    fn new(
        kms_name: Option<&Bound<'_, PyAny>>,
        provider: Option<&Bound<'_, PyAny>>,
        key_id: Option<&Bound<'_, PyAny>>,
        region: Option<&Bound<'_, PyAny>>,
        wrapped_kek: Option<&Bound<'_, PyAny>>,
        version: Option<&Bound<'_, PyAny>>,
        created_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let text = |value: Option<&Bound<'_, PyAny>>, name: &str| match value {
            Some(v) => str_arg(v, name),
            None => Ok(String::new()),
        };
        Ok(PyKmsBlob {
            inner: KmsBlob {
                kms_name: text(kms_name, "kms_name")?,
                provider: text(provider, "provider")?,
                key_id: text(key_id, "key_id")?,
                region: text(region, "region")?,
                wrapped_kek: match wrapped_kek {
                    Some(v) => bytes_arg(v, "wrapped_kek")?.to_vec(),
                    None => Vec::new(),
                },
                version: match version {
                    Some(v) => int_arg(v, "version", "0..=2**32-1")?,
                    None => 1,
                },
                created_at: match created_at {
                    Some(v) => int_arg(v, "created_at", "-2**63..=2**63-1")?,
                    None => 0,
                },
            },
        })
    }

    #[getter]
    fn kms_name(&self) -> &str {
        &self.inner.kms_name
    }
    #[setter]
    fn set_kms_name(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.kms_name = str_arg(value, "KMSBlob.kms_name")?;
        Ok(())
    }

    #[getter]
    fn provider(&self) -> &str {
        &self.inner.provider
    }
    #[setter]
    fn set_provider(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.provider = str_arg(value, "KMSBlob.provider")?;
        Ok(())
    }

    #[getter]
    fn key_id(&self) -> &str {
        &self.inner.key_id
    }
    #[setter]
    fn set_key_id(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.key_id = str_arg(value, "KMSBlob.key_id")?;
        Ok(())
    }

    #[getter]
    fn region(&self) -> &str {
        &self.inner.region
    }
    #[setter]
    fn set_region(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.region = str_arg(value, "KMSBlob.region")?;
        Ok(())
    }

    #[getter]
    fn wrapped_kek<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.wrapped_kek)
    }
    #[setter]
    fn set_wrapped_kek(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.wrapped_kek = bytes_arg(value, "KMSBlob.wrapped_kek")?.to_vec();
        Ok(())
    }

    #[getter]
    fn version(&self) -> u32 {
        self.inner.version
    }
    #[setter]
    fn set_version(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.version = int_arg(value, "KMSBlob.version", "0..=2**32-1")?;
        Ok(())
    }

    #[getter]
    fn created_at(&self) -> i64 {
        self.inner.created_at
    }
    #[setter]
    fn set_created_at(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.created_at = int_arg(value, "KMSBlob.created_at", "-2**63..=2**63-1")?;
        Ok(())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = other.py();
        match other.cast::<PyKmsBlob>() {
            Ok(other) => Ok(py_bool(py, self.inner == other.borrow().inner)),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self) -> PyResult<isize> {
        Err(PyTypeError::new_err(
            "unhashable type: 'KMSBlob' (it is mutable)",
        ))
    }

    /// Pickles as its fields (the wrapped KEK is not a secret: it needs the KMS to open).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<BlobReduce<'py>> {
        let py = slf.py();
        let b = &slf.borrow().inner;
        Ok((
            slf.get_type().into_any(),
            (
                b.kms_name.clone(),
                b.provider.clone(),
                b.key_id.clone(),
                b.region.clone(),
                PyBytes::new(py, &b.wrapped_kek),
                b.version,
                b.created_at,
            ),
        ))
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let b = &self.inner;
        Ok(format!(
            "KMSBlob(kms_name={}, provider={}, key_id={}, region={}, wrapped_kek=<{} bytes>, version={}, created_at={})",
            py_repr(py, &b.kms_name)?,
            py_repr(py, &b.provider)?,
            py_repr(py, &b.key_id)?,
            py_repr(py, &b.region)?,
            b.wrapped_kek.len(),
            b.version,
            b.created_at
        ))
    }
}

/// What `KMSBlob.__reduce__` returns: the class and its constructor's arguments.
type BlobReduce<'py> = (
    Bound<'py, PyAny>,
    (
        String,
        String,
        String,
        String,
        Bound<'py, PyBytes>,
        u32,
        i64,
    ),
);

fn py_bool(py: Python<'_>, value: bool) -> Py<PyAny> {
    pyo3::types::PyBool::new(py, value)
        .to_owned()
        .into_any()
        .unbind()
}

fn blob_to_py(blob: KmsBlob) -> PyKmsBlob {
    PyKmsBlob { inner: blob }
}

#[pyfunction]
#[pyo3(signature = (config_location, index_name, blob))]
fn create_index_kms(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
    index_name: String,
    blob: PyRef<'_, PyKmsBlob>,
) -> PyResult<()> {
    let blob = blob.inner.clone();
    let config = &config_location.inner;
    py.detach(|| cyborgdb_kms::create_index_kms(config, &index_name, &blob))
        .or_raise(py)
}

#[pyfunction]
#[pyo3(signature = (config_location, index_name, blob))]
fn push_index_kms(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
    index_name: String,
    blob: PyRef<'_, PyKmsBlob>,
) -> PyResult<()> {
    let blob = blob.inner.clone();
    let config = &config_location.inner;
    py.detach(|| cyborgdb_kms::push_index_kms(config, &index_name, &blob))
        .or_raise(py)
}

#[pyfunction]
#[pyo3(signature = (config_location, index_name))]
fn get_index_kms(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
    index_name: String,
) -> PyResult<PyKmsBlob> {
    let config = &config_location.inner;
    py.detach(|| cyborgdb_kms::get_index_kms(config, &index_name))
        .or_raise(py)
        .map(blob_to_py)
}

#[pyfunction]
#[pyo3(signature = (config_location, index_name))]
fn delete_index_kms(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
    index_name: String,
) -> PyResult<()> {
    let config = &config_location.inner;
    py.detach(|| cyborgdb_kms::delete_index_kms(config, &index_name))
        .or_raise(py)
}

#[pyfunction]
#[pyo3(signature = (config_location,))]
fn list_index_kms(
    py: Python<'_>,
    config_location: PyRef<'_, PyStorageConfig>,
) -> PyResult<Vec<String>> {
    let config = &config_location.inner;
    py.detach(|| cyborgdb_kms::list_index_kms(config))
        .or_raise(py)
}

// ---------------------------------------------------------------------------------------------
// KEKs
// ---------------------------------------------------------------------------------------------

/// The bytes of a KEK: on the heap (moves copy a pointer), zeroized when dropped.
type KeyBytes = Box<Zeroizing<[u8; 32]>>;

/// A 32-byte key-encryption key, wiped by `wipe()`, on leaving a `with` block and when collected.
#[pyclass(name = "KEK", module = "cyborgdb_core", frozen)]
struct PyKek {
    /// `None` once wiped. The array lives on the heap and is zeroized when replaced or dropped.
    bytes: Mutex<Option<KeyBytes>>,
}

impl PyKek {
    fn from_array(bytes: KeyBytes) -> Self {
        PyKek {
            bytes: Mutex::new(Some(bytes)),
        }
    }

    /// Runs `f` on the key bytes; InvalidArgumentError if the KEK was wiped.
    fn with_bytes<R>(&self, py: Python<'_>, f: impl FnOnce(&[u8; 32]) -> R) -> PyResult<R> {
        let guard = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(bytes) => Ok(f(bytes)),
            None => Err(invalid_argument(py, "the KEK was wiped")),
        }
    }

    fn to_kek(&self, py: Python<'_>) -> PyResult<cyborgdb_kms::Kek> {
        self.with_bytes(py, |b| cyborgdb_kms::Kek::from_slice(b))?
            .or_raise(py)
    }
}

fn kek_from(kek: &cyborgdb_kms::Kek) -> PyKek {
    let mut bytes = Box::new(Zeroizing::new([0u8; 32]));
    bytes.copy_from_slice(kek.as_bytes());
    PyKek::from_array(bytes)
}

#[pymethods]
impl PyKek {
    /// A KEK holding a copy of 32 bytes (bytes, bytearray or memoryview).
    #[new]
    fn new(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let copy = bytes_arg(key, "key")?;
        let kek = cyborgdb_kms::Kek::from_slice(&copy).or_raise(py)?;
        Ok(kek_from(&kek))
    }

    /// A copy of the key bytes (a `bytes` object cannot be wiped: keep it short-lived).
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with_bytes(py, |b| PyBytes::new(py, b))
    }

    /// Copies the key into `buffer` (a writable bytearray of 32 bytes) that the caller wipes.
    fn copy_into(&self, py: Python<'_>, buffer: &Bound<'_, PyByteArray>) -> PyResult<()> {
        if buffer.len() != 32 {
            return Err(invalid_argument(
                py,
                &format!("buffer must be 32 bytes, not {}", buffer.len()),
            ));
        }
        self.with_bytes(py, |b| {
            // SAFETY: we hold the GIL and run no Python code while the slice is alive.
            unsafe { buffer.as_bytes_mut() }.copy_from_slice(b)
        })
    }

    /// Overwrites the key with zeros; later use raises InvalidArgumentError. Idempotent.
    fn wipe(&self) {
        let mut guard = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bytes) = guard.as_mut() {
            bytes.zeroize();
        }
        *guard = None;
    }

    /// Whether `wipe()` was called.
    #[getter]
    fn wiped(&self) -> bool {
        self.bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn __len__(&self) -> usize {
        32
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.wipe();
        false
    }

    /// Constant-time comparison with another KEK.
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(other) = other.cast::<PyKek>() else {
            return Ok(py.NotImplemented());
        };
        let other = other.get();
        if std::ptr::eq(self, other) {
            return Ok(py_bool(py, !self.wiped()));
        }
        let mine = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let theirs = other.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let equal = match (mine.as_ref(), theirs.as_ref()) {
            (Some(a), Some(b)) => {
                a.iter()
                    .zip(b.iter())
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
            }
            _ => false,
        };
        Ok(py_bool(py, equal))
    }

    fn __hash__(&self) -> PyResult<isize> {
        Err(PyTypeError::new_err("unhashable type: 'KEK'"))
    }

    fn __repr__(&self) -> &'static str {
        if self.wiped() {
            "KEK(<wiped>)"
        } else {
            "KEK(<32 bytes, redacted>)"
        }
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err("a KEK cannot be pickled"))
    }
}

/// The KEK bytes of `value`: a KEK or 32 bytes-like; TypeError naming `what` otherwise.
fn kek_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<cyborgdb_kms::Kek> {
    let py = value.py();
    if let Ok(kek) = value.cast::<PyKek>() {
        return kek.get().to_kek(py);
    }
    let bytes = bytes_arg(value, what).map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a KEK or 32 bytes, not {}",
            type_name(value)
        ))
    })?;
    cyborgdb_kms::Kek::from_slice(&bytes)
        .map_err(|e| invalid_argument(py, &format!("{what}: {}", e.message())))
}

// ---------------------------------------------------------------------------------------------
// KMS client
// ---------------------------------------------------------------------------------------------

/// Wraps and unwraps index KEKs through the named slots of a KMS registry.
#[pyclass(name = "KMSClient", module = "cyborgdb_core", frozen)]
struct PyKmsClient {
    inner: cyborgdb_kms::KmsClient,
}

#[pymethods]
impl PyKmsClient {
    #[new]
    #[pyo3(signature = (*, registry_yaml=None, registry_file=None, connect_timeout=None, attempt_timeout=None, operation_timeout=None, max_attempts=None, initial_backoff=None, retry_mode=None, endpoint_url=None, kms_endpoint_url=None, secrets_manager_endpoint_url=None, sts_endpoint_url=None, kms_region_endpoint_urls=None, allow_local_provider=false, allow_insecure_http=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        registry_yaml: Option<String>,
        registry_file: Option<PathBuf>,
        connect_timeout: Option<f64>,
        attempt_timeout: Option<f64>,
        operation_timeout: Option<f64>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        initial_backoff: Option<f64>,
        retry_mode: Option<&Bound<'_, PyAny>>,
        endpoint_url: Option<String>,
        kms_endpoint_url: Option<String>,
        secrets_manager_endpoint_url: Option<String>,
        sts_endpoint_url: Option<String>,
        kms_region_endpoint_urls: Option<std::collections::BTreeMap<String, String>>,
        allow_local_provider: bool,
        allow_insecure_http: bool,
    ) -> PyResult<Self> {
        if registry_yaml.is_some() && registry_file.is_some() {
            return Err(invalid_argument(
                py,
                "registry_yaml and registry_file are mutually exclusive",
            ));
        }
        // An empty endpoint is the same as none, as in the C ABI.
        let empty_is_none = |s: Option<String>| s.filter(|s| !s.is_empty());
        let options = KmsClientOptions {
            timeouts: timeouts_arg(
                py,
                connect_timeout,
                attempt_timeout,
                operation_timeout,
                max_attempts,
                initial_backoff,
                retry_mode,
            )?,
            endpoint_url: empty_is_none(endpoint_url),
            kms_endpoint_url: empty_is_none(kms_endpoint_url),
            secrets_manager_endpoint_url: empty_is_none(secrets_manager_endpoint_url),
            sts_endpoint_url: empty_is_none(sts_endpoint_url),
            kms_region_endpoint_urls: kms_region_endpoint_urls.unwrap_or_default(),
            allow_local_provider,
            allow_insecure_http,
        };
        let inner = cyborgdb_kms::KmsClient::new(options).or_raise(py)?;
        if let Some(yaml) = registry_yaml {
            py.detach(|| inner.load_registry_yaml(&yaml)).or_raise(py)?;
        }
        if let Some(path) = registry_file {
            py.detach(|| inner.load_registry_file(&path)).or_raise(py)?;
        }
        Ok(PyKmsClient { inner })
    }

    /// Replaces the registry with the `kms.registry` section of `yaml`; returns the slot count.
    fn load_registry_yaml(&self, py: Python<'_>, yaml: String) -> PyResult<usize> {
        py.detach(|| self.inner.load_registry_yaml(&yaml))
            .or_raise(py)
    }

    /// As load_registry_yaml, from the file at `path` (str or os.PathLike).
    fn load_registry_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<usize> {
        py.detach(|| self.inner.load_registry_file(&path))
            .or_raise(py)
    }

    /// Adds or replaces the slot `name`.
    #[pyo3(signature = (name, *, provider, key_id, region="", role_arn=None, external_id=None, role_session_name=None, replica_regions=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_slot(
        &self,
        py: Python<'_>,
        name: &str,
        provider: &str,
        key_id: &str,
        region: &str,
        role_arn: Option<&str>,
        external_id: Option<&str>,
        role_session_name: Option<&str>,
        replica_regions: Option<Vec<String>>,
    ) -> PyResult<()> {
        let slot = Slot::from_fields(
            name,
            provider,
            key_id,
            region,
            role_arn.unwrap_or(""),
            external_id.unwrap_or(""),
            role_session_name.unwrap_or(""),
        )
        .or_raise(py)?;
        // `add_slot` checks the replica regions with the rest of the slot.
        let slot = Slot {
            replica_regions: replica_regions.unwrap_or_default(),
            ..slot
        };
        self.inner.add_slot(name, slot).or_raise(py)
    }

    /// Makes slot `slot_name` trust a key it wrapped with before a rotation.
    #[pyo3(signature = (slot_name, *, provider, key_id, region=""))]
    fn add_previous_key(
        &self,
        py: Python<'_>,
        slot_name: &str,
        provider: &str,
        key_id: &str,
        region: &str,
    ) -> PyResult<()> {
        let key = KeyIdentity::from_fields(slot_name, provider, key_id, region).or_raise(py)?;
        self.inner.add_previous_key(slot_name, key).or_raise(py)
    }

    /// The registry's slot names, sorted.
    #[getter]
    fn slot_names(&self) -> Vec<String> {
        let registry = self.inner.registry();
        let mut names: Vec<String> = registry.names().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// A fresh KEK for `index_name`, wrapped through slot `kms_name`: `(blob, kek)`. Stores nothing.
    #[pyo3(signature = (index_name, kms_name))]
    fn wrap_new_kek(
        &self,
        py: Python<'_>,
        index_name: String,
        kms_name: String,
    ) -> PyResult<(PyKmsBlob, PyKek)> {
        let (blob, kek) = py
            .detach(|| self.inner.wrap_new_kek(&index_name, &kms_name))
            .or_raise(py)?;
        Ok((blob_to_py(blob), kek_from(&kek)))
    }

    /// Wraps `kek` (a KEK or 32 bytes) for `index_name` through slot `kms_name`.
    #[pyo3(signature = (index_name, kms_name, kek))]
    fn wrap_kek(
        &self,
        py: Python<'_>,
        index_name: String,
        kms_name: String,
        kek: &Bound<'_, PyAny>,
    ) -> PyResult<PyKmsBlob> {
        let kek = kek_arg(kek, "kek")?;
        py.detach(|| self.inner.wrap_kek(&index_name, &kms_name, &kek))
            .or_raise(py)
            .map(blob_to_py)
    }

    /// Unwraps the KEK of `index_name` from its envelope `blob`.
    #[pyo3(signature = (index_name, blob))]
    fn unwrap_kek(
        &self,
        py: Python<'_>,
        index_name: String,
        blob: PyRef<'_, PyKmsBlob>,
    ) -> PyResult<PyKek> {
        let blob = blob.inner.clone();
        py.detach(|| self.inner.unwrap_kek(&index_name, &blob))
            .or_raise(py)
            .map(|kek| kek_from(&kek))
    }

    fn __repr__(&self) -> String {
        format!("KMSClient(slots={:?})", self.slot_names())
    }
}

// ---------------------------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------------------------

/// A snapshot of a resolver's cache counters.
#[pyclass(name = "KEKCacheStats", module = "cyborgdb_core", frozen, get_all)]
struct PyCacheStats {
    hits: u64,
    misses: u64,
    provider_calls: u64,
    errors: u64,
    evictions: u64,
    expirations: u64,
    invalidations: u64,
    entries: u64,
    stale_served: u64,
}

#[pymethods]
impl PyCacheStats {
    fn __repr__(&self) -> String {
        format!(
            "KEKCacheStats(hits={}, misses={}, provider_calls={}, errors={}, evictions={}, expirations={}, invalidations={}, entries={}, stale_served={})",
            self.hits, self.misses, self.provider_calls, self.errors, self.evictions,
            self.expirations, self.invalidations, self.entries, self.stale_served
        )
    }
}

/// The provider / key_id / region an envelope records or a slot names.
#[pyclass(name = "KeySnapshot", module = "cyborgdb_core", frozen, get_all)]
struct PyKeySnapshot {
    provider: String,
    key_id: String,
    region: String,
}

#[pymethods]
impl PyKeySnapshot {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "KeySnapshot(provider={}, key_id={}, region={})",
            py_repr(py, &self.provider)?,
            py_repr(py, &self.key_id)?,
            py_repr(py, &self.region)?
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> Py<PyAny> {
        match other.cast::<PyKeySnapshot>() {
            Ok(o) => {
                let o = o.get();
                py_bool(
                    py,
                    self.provider == o.provider
                        && self.key_id == o.key_id
                        && self.region == o.region,
                )
            }
            Err(_) => py.NotImplemented(),
        }
    }
}

fn snapshot(s: Option<cyborgdb_kms::KeySnapshot>) -> Option<PyKeySnapshot> {
    s.map(|s| PyKeySnapshot {
        provider: s.provider,
        key_id: s.key_id,
        region: s.region,
    })
}

/// One line of a drift report.
#[pyclass(name = "DriftEntry", module = "cyborgdb_core", frozen, get_all)]
struct PyDriftEntry {
    index_name: String,
    /// "in_sync", "drifted", "rewrapped", "not_wrapped" or "failed".
    status: &'static str,
    kms_name: String,
    stored: Option<Py<PyKeySnapshot>>,
    configured: Option<Py<PyKeySnapshot>>,
    error: Option<Py<PyAny>>,
}

#[pymethods]
impl PyDriftEntry {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let opt = |o: &Option<Py<PyKeySnapshot>>| -> PyResult<String> {
            match o {
                Some(s) => s.get().__repr__(py),
                None => Ok("None".to_owned()),
            }
        };
        let error = match &self.error {
            Some(e) => e.bind(py).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "DriftEntry(index_name={}, status={}, kms_name={}, stored={}, configured={}, error={})",
            py_repr(py, &self.index_name)?,
            py_repr(py, self.status)?,
            py_repr(py, &self.kms_name)?,
            opt(&self.stored)?,
            opt(&self.configured)?,
            error
        ))
    }
}

/// A drift report entry for Python; `callback_error` (the engine callback's own exception, from
/// `check_drift_new_kek`) replaces the entry's error when present.
fn drift_entry_to_py(
    py: Python<'_>,
    e: DriftEntry,
    callback_error: Option<PyErr>,
) -> PyResult<PyDriftEntry> {
    let error = match callback_error {
        Some(raised) => Some(raised.into_value(py).into_any()),
        None => e
            .error
            .map(|err| to_py_err(py, &err).into_value(py).into_any()),
    };
    Ok(PyDriftEntry {
        index_name: e.index,
        status: drift_status_name(e.status),
        kms_name: e.kms_name,
        stored: snapshot(e.stored).map(|s| Py::new(py, s)).transpose()?,
        configured: snapshot(e.configured).map(|s| Py::new(py, s)).transpose()?,
        error,
    })
}

fn drift_status_name(status: DriftStatus) -> &'static str {
    match status {
        DriftStatus::InSync => "in_sync",
        DriftStatus::Drifted => "drifted",
        DriftStatus::Rewrapped => "rewrapped",
        DriftStatus::NotWrapped => "not_wrapped",
        DriftStatus::Failed => "failed",
    }
}

/// A new-KEK rotation of one index (from `KEKResolver.begin_rotation` / `pending_rotation`).
#[pyclass(name = "KEKRotation", module = "cyborgdb_core", frozen)]
struct PyKekRotation {
    inner: cyborgdb_kms::Rotation,
}

#[pymethods]
impl PyKekRotation {
    /// The index being rotated.
    #[getter]
    fn index_name(&self) -> &str {
        self.inner.index()
    }

    /// The KEK the index had when the rotation began (a new KEK object each time).
    #[getter]
    fn old_kek(&self) -> PyKek {
        kek_from(self.inner.old_kek())
    }

    /// The fresh KEK the index gets on commit (a new KEK object each time).
    #[getter]
    fn new_kek(&self) -> PyKek {
        kek_from(self.inner.new_kek())
    }

    /// "pending", "committed" or "stale", when this object was made.
    #[getter]
    fn state(&self) -> &'static str {
        match self.inner.state() {
            RotationState::Pending => "pending",
            RotationState::Committed => "committed",
            RotationState::Stale => "stale",
        }
    }

    /// The envelope the rotation replaces.
    #[getter]
    fn old_envelope(&self) -> PyKmsBlob {
        blob_to_py(self.inner.old_envelope().clone())
    }

    /// The envelope commit stores.
    #[getter]
    fn new_envelope(&self) -> PyKmsBlob {
        blob_to_py(self.inner.new_envelope().clone())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "KEKRotation(index_name={}, state={}, version={} -> {})",
            py_repr(py, self.inner.index())?,
            py_repr(py, self.state())?,
            self.inner.old_envelope().version,
            self.inner.new_envelope().version
        ))
    }
}

/// A duration argument given as seconds (int or float) or a `datetime.timedelta` (anything with
/// `total_seconds()`); `None` stays `None`. Negative, non-finite or absurd (≥ 4e9 s) values raise
/// InvalidArgumentError with `message`.
fn duration_arg(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    message: &str,
) -> PyResult<Option<Duration>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let seconds = if value.hasattr("total_seconds")? {
        value.call_method0("total_seconds")?.extract::<f64>()
    } else {
        value.extract::<f64>()
    };
    match seconds {
        Ok(t) if t.is_finite() && (0.0..4.0e9).contains(&t) => Ok(Some(Duration::from_secs_f64(t))),
        _ => Err(invalid_argument(py, message)),
    }
}

/// Resolves index KEKs through a KMS client with a TTL'd cache; creates, re-wraps and
/// drift-checks envelopes.
#[pyclass(name = "KEKResolver", module = "cyborgdb_core", frozen)]
struct PyKekResolver {
    inner: cyborgdb_kms::KekResolver,
}

#[pymethods]
impl PyKekResolver {
    #[new]
    #[pyo3(signature = (client, *, ttl=None, max_entries=None, revalidate=None, stale_if_error=None))]
    fn new(
        py: Python<'_>,
        client: PyRef<'_, PyKmsClient>,
        ttl: Option<&Bound<'_, PyAny>>,
        max_entries: Option<usize>,
        revalidate: Option<&Bound<'_, PyAny>>,
        stale_if_error: Option<bool>,
    ) -> PyResult<Self> {
        let ttl = duration_arg(
            py,
            ttl,
            "ttl must be a non-negative number of seconds or a timedelta (0 disables caching)",
        )?;
        let revalidate = duration_arg(
            py,
            revalidate,
            "revalidate must be a non-negative number of seconds or a timedelta (0 turns \
             revalidation off)",
        )?;
        let mut options = KekCacheOptions {
            ttl,
            revalidate,
            stale_if_error,
            ..KekCacheOptions::default()
        };
        if let Some(max) = max_entries {
            options.max_entries = max;
        }
        let inner = cyborgdb_kms::KekResolver::new(client.inner.clone(), options).or_raise(py)?;
        Ok(PyKekResolver { inner })
    }

    /// The KEK of `index_name` (envelope in `config_location`): cached, or unwrapped and cached.
    #[pyo3(signature = (config_location, index_name))]
    fn resolve(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_name: String,
    ) -> PyResult<PyKek> {
        let mut bytes = Box::new(Zeroizing::new([0u8; 32]));
        let config = &config_location.inner;
        let out: &mut [u8; 32] = &mut bytes;
        py.detach(|| self.inner.resolve_into(config, &index_name, out))
            .or_raise(py)?;
        Ok(PyKek::from_array(bytes))
    }

    /// Creates the envelope of a new index and returns its KEK; exactly one of `kms_name` and
    /// `index_key` must be given.
    #[pyo3(signature = (config_location, index_name, *, kms_name=None, index_key=None))]
    fn create_index(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_name: String,
        kms_name: Option<String>,
        index_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyKek> {
        let index_key = match index_key {
            Some(key) if !key.is_none() => Some(kek_arg(key, "index_key")?),
            _ => None,
        };
        let config = &config_location.inner;
        py.detach(|| {
            self.inner.create_index(
                config,
                &index_name,
                kms_name.as_deref(),
                index_key.as_ref().map(|k| &k.as_bytes()[..]),
            )
        })
        .or_raise(py)
        .map(|kek| kek_from(&kek))
    }

    /// Re-wraps the index's KEK under slot `kms_name`; returns the stored envelope.
    #[pyo3(signature = (config_location, index_name, kms_name))]
    fn rewrap(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_name: String,
        kms_name: String,
    ) -> PyResult<PyKmsBlob> {
        let config = &config_location.inner;
        py.detach(|| self.inner.rewrap(config, &index_name, &kms_name))
            .or_raise(py)
            .map(blob_to_py)
    }

    /// New-KEK rotation, phase 1: a fresh KEK through slot `kms_name`, recorded as pending next
    /// to the envelope (resolve keeps returning the old KEK until commit).
    #[pyo3(signature = (config_location, index_name, kms_name))]
    fn begin_rotation(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_name: String,
        kms_name: String,
    ) -> PyResult<PyKekRotation> {
        let config = &config_location.inner;
        py.detach(|| self.inner.begin_rotation(config, &index_name, &kms_name))
            .or_raise(py)
            .map(|inner| PyKekRotation { inner })
    }

    /// The index's pending rotation (e.g. left by a crash), or None.
    #[pyo3(signature = (config_location, index_name))]
    fn pending_rotation(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_name: String,
    ) -> PyResult<Option<PyKekRotation>> {
        let config = &config_location.inner;
        py.detach(|| self.inner.pending_rotation(config, &index_name))
            .or_raise(py)
            .map(|found| found.map(|inner| PyKekRotation { inner }))
    }

    /// New-KEK rotation, phase 2: swaps the envelope to the new KEK; returns the new envelope.
    #[pyo3(signature = (config_location, rotation))]
    fn commit_rotation(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        rotation: PyRef<'_, PyKekRotation>,
    ) -> PyResult<PyKmsBlob> {
        let config = &config_location.inner;
        let rotation = &rotation.inner;
        py.detach(|| self.inner.commit_rotation(config, rotation))
            .or_raise(py)
            .map(blob_to_py)
    }

    /// Undoes a rotation that was not committed (the envelope is unchanged).
    #[pyo3(signature = (config_location, rotation))]
    fn abort_rotation(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        rotation: PyRef<'_, PyKekRotation>,
    ) -> PyResult<()> {
        let config = &config_location.inner;
        let rotation = &rotation.inner;
        py.detach(|| self.inner.abort_rotation(config, rotation))
            .or_raise(py)
    }

    /// New-KEK rotation in one call: begin, `callback(old_kek, new_kek)`, commit. If the
    /// callback raises, the rotation is rolled back and its exception propagates unchanged.
    #[pyo3(signature = (config_location, index_name, kms_name, callback))]
    fn rotate_kek(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_name: String,
        kms_name: String,
        callback: Py<PyAny>,
    ) -> PyResult<PyKmsBlob> {
        let config = &config_location.inner;
        let rotated = py.detach(|| {
            self.inner
                .rotate_kek(config, &index_name, &kms_name, |old, new| {
                    Python::attach(|py| {
                        callback
                            .bind(py)
                            .call1((kek_from(old), kek_from(new)))
                            .map(drop)
                    })
                })
        });
        match rotated {
            Ok(blob) => Ok(blob_to_py(blob)),
            Err(RotateKekError::Rotation(e)) => Err(to_py_err(py, &e)),
            Err(RotateKekError::Callback(e)) => Err(e),
        }
    }

    /// Compares every stored envelope's key snapshot with the registry; with `rewrap=True`,
    /// re-wraps the drifted ones.
    #[pyo3(signature = (config_location, rewrap=false))]
    fn check_drift(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        rewrap: bool,
    ) -> PyResult<Vec<PyDriftEntry>> {
        let config = &config_location.inner;
        let entries = py
            .detach(|| self.inner.check_drift(config, rewrap))
            .or_raise(py)?;
        entries
            .into_iter()
            .map(|e| drift_entry_to_py(py, e, None))
            .collect()
    }

    /// Drift repair in new-KEK mode: `check_drift` without re-wrapping, then each drifted index
    /// is rotated to a fresh KEK under its own slot as `rotate_kek` does, calling
    /// `callback(index_name, old_kek, new_kek)` for it. A rotated index is "rewrapped"; if the
    /// callback raises for an index, that index's rotation is rolled back and its entry is
    /// "failed" with the callback's own exception as `error`; the others go on.
    #[pyo3(signature = (config_location, callback))]
    fn check_drift_new_kek(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        callback: Py<PyAny>,
    ) -> PyResult<Vec<PyDriftEntry>> {
        let config = &config_location.inner;
        let entries = py
            .detach(|| {
                self.inner.check_drift_new_kek(config, |index, old, new| {
                    Python::attach(|py| {
                        callback
                            .bind(py)
                            .call1((index, kek_from(old), kek_from(new)))
                            .map(drop)
                    })
                })
            })
            .or_raise(py)?;
        entries
            .into_iter()
            .map(|(e, callback_error)| drift_entry_to_py(py, e, callback_error))
            .collect()
    }

    /// Resolves every index into the cache with up to `parallelism` threads; returns, per index
    /// in order, None or the exception `resolve` would have raised (not raised).
    #[pyo3(signature = (config_location, index_names, parallelism=16))]
    fn warm_up(
        &self,
        py: Python<'_>,
        config_location: PyRef<'_, PyStorageConfig>,
        index_names: Vec<String>,
        parallelism: usize,
    ) -> PyResult<Vec<Option<Py<PyAny>>>> {
        let config = &config_location.inner;
        let results = py
            .detach(|| self.inner.warm_up(config, &index_names, parallelism))
            .or_raise(py)?;
        Ok(results
            .into_iter()
            .map(|r| r.err().map(|e| to_py_err(py, &e).into_value(py).into_any()))
            .collect())
    }

    /// Drops the cached KEK of one index; returns whether one was cached.
    #[pyo3(signature = (config_location, index_name))]
    fn invalidate(&self, config_location: PyRef<'_, PyStorageConfig>, index_name: &str) -> bool {
        self.inner.invalidate(&config_location.inner, index_name)
    }

    /// Drops every cached KEK; returns how many.
    fn invalidate_all(&self) -> usize {
        self.inner.invalidate_all()
    }

    /// Turns the custody audit on (a `principal`) or off (None) for every store this resolver
    /// acts on.
    #[pyo3(signature = (principal, *, host=None, unwrap_counts_seconds=None))]
    fn set_audit(
        &self,
        py: Python<'_>,
        principal: Option<String>,
        host: Option<String>,
        unwrap_counts_seconds: Option<u64>,
    ) -> PyResult<()> {
        let options = principal.map(|principal| AuditOptions {
            principal,
            host,
            unwrap_counts: unwrap_counts_seconds.map(Duration::from_secs),
        });
        self.inner.set_audit(options.as_ref()).or_raise(py)
    }

    /// Appends the per-index unwrap counts not yet appended; returns how many records were.
    fn flush_unwrap_counts(&self, py: Python<'_>) -> PyResult<usize> {
        let inner = self.inner.clone();
        py.detach(move || inner.flush_unwrap_counts()).or_raise(py)
    }

    /// The cache's counters.
    fn stats(&self) -> PyCacheStats {
        let s = self.inner.stats();
        PyCacheStats {
            hits: s.hits,
            misses: s.misses,
            provider_calls: s.provider_calls,
            errors: s.errors,
            evictions: s.evictions,
            expirations: s.expirations,
            invalidations: s.invalidations,
            entries: s.entries,
            stale_served: s.stale_served,
        }
    }

    /// The cache's TTL in seconds.
    #[getter]
    fn ttl(&self) -> f64 {
        self.inner.ttl().as_secs_f64()
    }

    /// The envelope revalidation interval in seconds (0: off).
    #[getter]
    fn revalidate(&self) -> f64 {
        self.inner.revalidate_interval().as_secs_f64()
    }

    /// Whether a failed revalidation check serves the cached KEK (stale-if-error).
    #[getter]
    fn stale_if_error(&self) -> bool {
        self.inner.stale_if_error()
    }

    /// The client this resolver unwraps with.
    #[getter]
    fn client(&self) -> PyKmsClient {
        PyKmsClient {
            inner: self.inner.client().clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "KEKResolver(ttl={}s, entries={})",
            self.ttl(),
            self.inner.stats().entries
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Module
// ---------------------------------------------------------------------------------------------

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStorageConfig>()?;
    m.add_class::<PyS3Credentials>()?;
    m.add_class::<PyKmsBlob>()?;
    m.add_class::<PyKek>()?;
    m.add_class::<PyKmsClient>()?;
    m.add_class::<PyKekResolver>()?;
    m.add_class::<PyCacheStats>()?;
    m.add_class::<PyKeySnapshot>()?;
    m.add_class::<PyDriftEntry>()?;
    m.add_class::<PyAuditReport>()?;
    m.add_class::<PyAuditRecord>()?;
    m.add_function(wrap_pyfunction!(verify_audit, m)?)?;
    m.add_function(wrap_pyfunction!(read_audit, m)?)?;
    m.add_class::<PyKekRotation>()?;
    m.add_function(wrap_pyfunction!(create_index_kms, m)?)?;
    m.add_function(wrap_pyfunction!(push_index_kms, m)?)?;
    m.add_function(wrap_pyfunction!(get_index_kms, m)?)?;
    m.add_function(wrap_pyfunction!(delete_index_kms, m)?)?;
    m.add_function(wrap_pyfunction!(list_index_kms, m)?)?;
    m.add_function(wrap_pyfunction!(_result_codes, m)?)?;
    m.add(
        "MAX_INDEX_NAME_LEN",
        cyborgdb_kms::index_name::MAX_INDEX_NAME_LEN,
    )?;
    m.add(
        "MAX_STRING_FIELD_LEN",
        cyborgdb_kms::blob::MAX_STRING_FIELD_LEN,
    )?;
    m.add(
        "MAX_WRAPPED_KEK_LEN",
        cyborgdb_kms::blob::MAX_WRAPPED_KEK_LEN,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
