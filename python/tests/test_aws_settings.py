"""The AWS settings of KMSClient and StorageConfig.s3 (issue #14, the C++ KMSClientOptions and
S3Options as keyword arguments): each accepted and effective where moto shows it (SSE on stored
objects, per-service KMS / Secrets Manager / STS endpoints while the shared endpoint is a closed
port, default credentials with an endpoint, attempts and retry mode from the environment), a
loopback S3 peer for the bucket-owner check moto does not model, and the exact error of every bad
value."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import cyborgdb_core as cyborgdb
from conftest import BUCKET, REGION, registry_yaml

R = cyborgdb.ResultCode
CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port
MOTO_ACCOUNT = "123456789012"
CREDS = cyborgdb.S3Credentials("testing", "testing")


def moto_s3(moto, prefix: str, **options) -> cyborgdb.StorageConfig:
    return cyborgdb.StorageConfig.s3(
        BUCKET, region=REGION, endpoint=moto.endpoint, prefix=prefix, credentials=CREDS, **options
    )


def stored_object(moto, prefix: str) -> dict:
    """The head of the one object under `prefix`."""
    s3 = moto.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")["Contents"]]
    assert len(keys) == 1, keys
    return s3.head_object(Bucket=BUCKET, Key=keys[0])


# ---------------------------------------------------------------------------------------------
# StorageConfig.s3
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encryption, key_id, header",
    [
        (cyborgdb.S3Encryption.S3, None, "AES256"),
        ("AES256", None, "AES256"),
        (cyborgdb.S3Encryption.KMS, None, "aws:kms"),
        ("aws:kms", "alias/cyborgdb-python", "aws:kms"),
    ],
)
def test_server_side_encryption_is_requested_on_put(moto, encryption, key_id, header):
    prefix = f"sse/{uuid.uuid4().hex}"
    store = moto_s3(moto, prefix, server_side_encryption=encryption, sse_kms_key_id=key_id)
    cyborgdb.push_index_kms(store, "idx", cyborgdb.KMSBlob(provider="none"))
    head = stored_object(moto, prefix)
    assert head["ServerSideEncryption"] == header
    if key_id is not None:
        assert head["SSEKMSKeyId"].endswith(key_id)
    assert cyborgdb.get_index_kms(store, "idx").provider == "none"


def test_timeouts_attempts_retry_mode_and_owner_are_accepted(moto):
    prefix = f"opts/{uuid.uuid4().hex}"
    store = moto_s3(
        moto,
        prefix,
        connect_timeout=1,
        attempt_timeout=2.5,
        operation_timeout=5,
        max_attempts=2,
        initial_backoff=0.1,
        retry_mode=cyborgdb.RetryMode.ADAPTIVE,
        expected_bucket_owner=MOTO_ACCOUNT,
    )
    cyborgdb.push_index_kms(store, "idx", cyborgdb.KMSBlob(provider="none"))
    assert cyborgdb.list_index_kms(store) == ["idx"]


def test_default_credentials_with_an_endpoint_only_by_opt_in(moto):
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.StorageConfig.s3(BUCKET, region=REGION, endpoint=moto.endpoint)
    assert err.value.code == R.INVALID_ARGUMENT
    # The default chain: conftest's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, which moto accepts.
    store = cyborgdb.StorageConfig.s3(
        BUCKET,
        region=REGION,
        endpoint=moto.endpoint,
        prefix=f"chain/{uuid.uuid4().hex}",
        default_credentials_with_endpoint=True,
    )
    cyborgdb.push_index_kms(store, "idx", cyborgdb.KMSBlob(provider="none"))
    assert cyborgdb.get_index_kms(store, "idx").provider == "none"


class OwnerCheckingS3:
    """A loopback S3 peer (moto ignores ExpectedBucketOwner): 403 AccessDenied when a request's
    x-amz-expected-bucket-owner is not `owner`, else 404 NoSuchKey. Records the header seen."""

    def __init__(self, owner: str) -> None:
        self.seen: list = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                sent = self.headers.get("x-amz-expected-bucket-owner")
                peer.seen.append(sent)
                status, code = (404, "NoSuchKey") if sent == owner else (403, "AccessDenied")
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{code}</Message><RequestId>1</RequestId></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_PUT = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> "OwnerCheckingS3":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_bucket_of_another_owner_is_storage_access_denied():
    with OwnerCheckingS3(MOTO_ACCOUNT) as peer:

        def store(owner):
            return cyborgdb.StorageConfig.s3(
                "owned-bucket", region=REGION, endpoint=peer.endpoint, credentials=CREDS,
                expected_bucket_owner=owner, max_attempts=1,
            )

        with pytest.raises(cyborgdb.NotFoundError):
            cyborgdb.get_index_kms(store(MOTO_ACCOUNT), "idx")
        with pytest.raises(cyborgdb.StorageAccessDeniedError) as err:
            cyborgdb.get_index_kms(store("210987654321"), "idx")
        assert err.value.code == R.STORAGE_ACCESS_DENIED
        assert peer.seen == [MOTO_ACCOUNT, "210987654321"]


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"server_side_encryption": "AES128"}, "server_side_encryption"),
        ({"sse_kms_key_id": "alias/k"}, "sse_kms_key_id"),
        ({"server_side_encryption": cyborgdb.S3Encryption.S3, "sse_kms_key_id": "alias/k"}, "sse_kms_key_id"),
        ({"server_side_encryption": "aws:kms", "sse_kms_key_id": "k" * 3000}, "KMS key id"),
        ({"expected_bucket_owner": "12345"}, "expected_bucket_owner"),
        ({"expected_bucket_owner": "12345678901a"}, "expected_bucket_owner"),
        ({"retry_mode": "fast"}, "retry_mode"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -3}, "max_attempts"),
        ({"max_attempts": 11}, "10"),
        ({"max_attempts": 2**70}, "10"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"attempt_timeout": -1}, "attempt_timeout"),
        ({"operation_timeout": float("nan")}, "operation_timeout"),
        ({"initial_backoff": float("inf")}, "initial_backoff"),
    ],
)
def test_bad_s3_settings_are_invalid_arguments(options, needle):
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.StorageConfig.s3(BUCKET, endpoint=CLOSED, credentials=CREDS, **options)
    assert err.value.code == R.INVALID_ARGUMENT
    assert needle in err.value.message


@pytest.mark.parametrize(
    "options, name",
    [
        ({"server_side_encryption": 1}, "server_side_encryption"),
        ({"retry_mode": 2}, "retry_mode"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 2.0}, "max_attempts"),
        ({"expected_bucket_owner": 123456789012}, "expected_bucket_owner"),
        ({"sse_kms_key_id": b"alias/k"}, "sse_kms_key_id"),
        ({"connect_timeout": "1"}, "connect_timeout"),
    ],
)
def test_wrong_s3_setting_types_are_type_errors(options, name):
    with pytest.raises(TypeError, match=name):
        cyborgdb.StorageConfig.s3(BUCKET, endpoint=CLOSED, credentials=CREDS, **options)


# ---------------------------------------------------------------------------------------------
# KMSClient
# ---------------------------------------------------------------------------------------------


def quick(**options) -> dict:
    """Options failing fast on the closed shared endpoint."""
    return dict(endpoint_url=CLOSED, max_attempts=1, connect_timeout=0.5, operation_timeout=3, **options)


def test_per_service_endpoints_win_over_the_shared_one(moto):
    yaml = registry_yaml(moto)
    both = cyborgdb.KMSClient(
        registry_yaml=yaml,
        **quick(kms_endpoint_url=moto.endpoint, secrets_manager_endpoint_url=moto.endpoint),
    )
    for slot in ("vendor-default", "customer-acme"):  # aws-kms, aws (Secrets Manager)
        blob, kek = both.wrap_new_kek("idx", slot)
        assert both.unwrap_kek("idx", blob) == kek
    kms_only = cyborgdb.KMSClient(registry_yaml=yaml, **quick(kms_endpoint_url=moto.endpoint))
    kms_only.wrap_new_kek("idx", "vendor-default")
    with pytest.raises(cyborgdb.KMSUnavailableError) as err:  # Secrets Manager: the closed port
        kms_only.wrap_new_kek("idx", "customer-acme")
    assert err.value.code == R.KMS_UNAVAILABLE


def test_sts_endpoint_is_used_to_assume_a_slots_role(moto):
    def byok(**options):
        client = cyborgdb.KMSClient(**quick(kms_endpoint_url=moto.endpoint, **options))
        client.add_slot(
            "byok", provider="aws-kms", key_id=moto.key_arn, region=REGION,
            role_arn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/cyborgdb-byok", external_id="acme-external",
        )
        return client

    client = byok(sts_endpoint_url=moto.endpoint)
    blob, kek = client.wrap_new_kek("idx", "byok")
    assert client.unwrap_kek("idx", blob) == kek
    with pytest.raises(cyborgdb.KMSUnavailableError) as err:  # STS: the closed shared port
        byok().wrap_new_kek("idx", "byok")
    assert err.value.code == R.KMS_UNAVAILABLE


@pytest.mark.parametrize("mode", [cyborgdb.RetryMode.STANDARD, cyborgdb.RetryMode.ADAPTIVE, "standard", "adaptive"])
def test_retry_modes_are_accepted(moto, mode):
    client = cyborgdb.KMSClient(registry_yaml=registry_yaml(moto), endpoint_url=moto.endpoint, retry_mode=mode)
    blob, kek = client.wrap_new_kek("idx", "vendor-default")
    assert client.unwrap_kek("idx", blob) == kek


@pytest.mark.parametrize(
    "variable, value",
    [("AWS_MAX_ATTEMPTS", "0"), ("AWS_MAX_ATTEMPTS", "eleventy"), ("AWS_RETRY_MODE", "legacy-ish")],
)
def test_unset_attempts_and_mode_come_from_the_environment(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(cyborgdb.InvalidConfigError) as err:
        cyborgdb.KMSClient()
    assert err.value.code == R.INVALID_CONFIG and variable in err.value.message
    # An explicit setting takes the place of the variable.
    explicit = {"AWS_MAX_ATTEMPTS": {"max_attempts": 2}, "AWS_RETRY_MODE": {"retry_mode": "standard"}}
    cyborgdb.KMSClient(**explicit[variable])


@pytest.mark.parametrize(
    "options, cls, code, needle",
    [
        ({"retry_mode": "fast"}, cyborgdb.InvalidArgumentError, R.INVALID_ARGUMENT, "retry_mode"),
        ({"retry_mode": "Standard "}, cyborgdb.InvalidArgumentError, R.INVALID_ARGUMENT, "retry_mode"),
        ({"max_attempts": 0}, cyborgdb.InvalidArgumentError, R.INVALID_ARGUMENT, "max_attempts"),
        ({"max_attempts": -1}, cyborgdb.InvalidArgumentError, R.INVALID_ARGUMENT, "max_attempts"),
        ({"max_attempts": 11}, cyborgdb.InvalidConfigError, R.INVALID_CONFIG, "10"),
        ({"max_attempts": 2**70}, cyborgdb.InvalidConfigError, R.INVALID_CONFIG, "10"),
        ({"kms_endpoint_url": "ftp://127.0.0.1"}, cyborgdb.InvalidConfigError, R.INVALID_CONFIG, "ftp"),
        ({"secrets_manager_endpoint_url": "http://10.1.2.3:80"}, cyborgdb.InvalidConfigError, R.INVALID_CONFIG, "10.1.2.3"),
        ({"sts_endpoint_url": "not a url"}, cyborgdb.InvalidConfigError, R.INVALID_CONFIG, "not a url"),
    ],
)
def test_bad_client_settings_raise_the_library_error(options, cls, code, needle):
    with pytest.raises(cls) as err:
        cyborgdb.KMSClient(**options)
    assert err.value.code == code
    assert needle in err.value.message


def test_service_endpoint_opt_in_and_empty_values():
    cyborgdb.KMSClient(kms_endpoint_url="http://10.1.2.3:80", allow_insecure_http=True)
    cyborgdb.KMSClient(kms_endpoint_url="")  # empty is none, as in C++


@pytest.mark.parametrize(
    "options, name",
    [
        ({"retry_mode": 1}, "retry_mode"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": False}, "max_attempts"),
        ({"kms_endpoint_url": 3}, "kms_endpoint_url"),
        ({"secrets_manager_endpoint_url": b"http://127.0.0.1:1"}, "secrets_manager_endpoint_url"),
        ({"sts_endpoint_url": ["http://127.0.0.1:1"]}, "sts_endpoint_url"),
    ],
)
def test_wrong_client_setting_types_are_type_errors(options, name):
    with pytest.raises(TypeError, match=name):
        cyborgdb.KMSClient(**options)


def test_option_enums_mirror_cpp():
    assert [m.name for m in cyborgdb.RetryMode] == ["STANDARD", "ADAPTIVE"]
    assert [m.name for m in cyborgdb.S3Encryption] == ["S3", "KMS"]
    assert cyborgdb.RetryMode.ADAPTIVE == "adaptive" and cyborgdb.S3Encryption.KMS == "aws:kms"
    assert repr(cyborgdb.S3Encryption.S3).startswith("<S3Encryption.S3")
    assert cyborgdb.RetryMode.__module__ == "cyborgdb_core"


def test_a_rejected_value_is_shown_bounded():
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.KMSClient(retry_mode="x" * 100_000)
    assert "x" * 64 in err.value.message and len(err.value.message) < 400
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.StorageConfig.s3(BUCKET, endpoint=CLOSED, credentials=CREDS, server_side_encryption="y" * 100_000)
    assert "y" * 64 in err.value.message and len(err.value.message) < 400
