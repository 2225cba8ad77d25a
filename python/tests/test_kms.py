"""The KMS client and the KEK resolver against moto (and a loopback KMS peer for throttling and
malformed answers), the KEK object, and one exception class and code per error family."""

import os

import pytest

import cyborgdb_core as cyborgdb
from conftest import REGION, registry_yaml, s3_storage
from kms_peer import KmsPeer

R = cyborgdb.ResultCode


def test_result_codes_match_the_c_abi():
    native = dict(cyborgdb._native._result_codes())
    assert {c.name: int(c) for c in cyborgdb.ResultCode} == native


# (code, class, built-in base) for every family, mirroring include/cyborgdb_core/index_kms.hpp.
FAMILIES = [
    (R.INVALID_ARGUMENT, cyborgdb.InvalidArgumentError, ValueError),
    (R.NULL_PARAMETER, cyborgdb.InvalidArgumentError, ValueError),
    (R.CALLBACK_FAILED, cyborgdb.CallbackFailedError, RuntimeError),
    (R.NOT_FOUND, cyborgdb.NotFoundError, LookupError),
    (R.ALREADY_EXISTS, cyborgdb.AlreadyExistsError, FileExistsError),
    (R.CORRUPT, cyborgdb.CorruptDataError, RuntimeError),
    (R.CONFLICT, cyborgdb.ConflictError, RuntimeError),
    (R.IO, cyborgdb.IOError, OSError),
    (R.STORAGE_UNAVAILABLE, cyborgdb.StorageUnavailableError, ConnectionError),
    (R.STORAGE_ACCESS_DENIED, cyborgdb.StorageAccessDeniedError, PermissionError),
    (R.DECRYPT_FAILED, cyborgdb.DecryptFailedError, RuntimeError),
    (R.KMS_ACCESS_DENIED, cyborgdb.KMSAccessDeniedError, RuntimeError),
    (R.KMS_KEY_NOT_FOUND, cyborgdb.KMSKeyNotFoundError, RuntimeError),
    (R.KMS_KEY_DISABLED, cyborgdb.KMSKeyDisabledError, RuntimeError),
    (R.KMS_THROTTLED, cyborgdb.KMSThrottledError, RuntimeError),
    (R.KMS_UNAVAILABLE, cyborgdb.KMSUnavailableError, RuntimeError),
    (R.KMS_BAD_RESPONSE, cyborgdb.KMSBadResponseError, RuntimeError),
    (R.WRAP_KEY_SIZE, cyborgdb.WrapKeySizeError, RuntimeError),
    (R.UNKNOWN_SLOT, cyborgdb.UnknownSlotError, LookupError),
    (R.INVALID_CONFIG, cyborgdb.InvalidConfigError, ValueError),
    (R.KEK_NOT_WRAPPED, cyborgdb.KEKNotWrappedError, ValueError),
    (R.UNTRUSTED_KEY, cyborgdb.UntrustedKeyError, RuntimeError),
    (R.PANIC, cyborgdb.InternalError, RuntimeError),
    (R.FORKED_PROCESS, cyborgdb.ForkedProcessError, RuntimeError),
]


@pytest.mark.parametrize("code, cls, builtin", FAMILIES)
def test_every_code_maps_to_its_class(code, cls, builtin):
    error = cyborgdb._errors._from_code(int(code), "index \"i\": what happened")
    assert type(error) is cls
    assert isinstance(error, cyborgdb.Error) and isinstance(error, builtin)
    assert error.code is code and error.code.name == code.name and int(error.code) == code
    assert str(error) == f'{code.name}: index "i": what happened'
    assert error.message == 'index "i": what happened'
    if code in range(400, 408):
        assert isinstance(error, cyborgdb.KMSError)
    assert type(error).__module__ == "cyborgdb_core"


def test_every_c_code_but_ok_has_a_family():
    assert {int(c) for c, _, _ in FAMILIES} == {int(c) for c in R} - {0}
    assert type(cyborgdb._errors._from_code(12345, "x")) is cyborgdb.InternalError


def test_exceptions_pickle_with_their_code():
    import pickle

    error = cyborgdb._errors._from_code(int(R.NOT_FOUND), "m")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cyborgdb.NotFoundError and again.code is R.NOT_FOUND


def test_wrap_unwrap_through_kms_and_secrets_manager(kms_client):
    for slot, provider in [("vendor-default", "aws-kms"), ("customer-acme", "aws")]:
        blob, kek = kms_client.wrap_new_kek("idx", slot)
        assert (blob.kms_name, blob.provider, blob.region, blob.version) == (slot, provider, REGION, 1)
        assert kms_client.unwrap_kek("idx", blob) == kek
        rewrapped = kms_client.wrap_kek("idx", slot, bytes(kek))
        assert kms_client.unwrap_kek(index_name="idx", blob=rewrapped) == kek
        with pytest.raises(cyborgdb.DecryptFailedError) as err:
            kms_client.unwrap_kek("another-index", blob)  # bound to its index
        assert err.value.code == R.DECRYPT_FAILED


def test_client_options_and_registry_sources(moto, tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(registry_yaml(moto))
    client = cyborgdb.KMSClient(
        registry_file=path,
        endpoint_url=moto.endpoint,
        connect_timeout=1,
        attempt_timeout=2.5,
        operation_timeout=5,
        max_attempts=2,
        initial_backoff=0.1,
    )
    assert client.slot_names == ["customer-acme", "missing-key", "short-key", "vendor-default"]
    assert client.load_registry_file(str(path)) == 4
    assert client.load_registry_yaml(registry_yaml(moto)) == 4
    client.add_slot("extra", provider="aws-kms", key_id="alias/cyborgdb-python", region=REGION)
    client.add_previous_key("extra", provider="aws-kms", key_id="alias/old", region=REGION)
    assert "extra" in client.slot_names and "extra" in repr(client)
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.KMSClient(registry_yaml="kms: {}", registry_file=path)
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.KMSClient(connect_timeout=0)
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.KMSClient(max_attempts=0)
    with pytest.raises(TypeError):
        cyborgdb.KMSClient("positional yaml is not accepted")


def test_invalid_config_unknown_slot_and_untrusted_key(kms_client, tmp_path, moto):
    with pytest.raises(cyborgdb.InvalidConfigError) as err:
        cyborgdb.KMSClient(registry_yaml="kms:\n  registry:\n    s:\n      provider: gcp\n")
    assert err.value.code == R.INVALID_CONFIG and "s" in err.value.message
    with pytest.raises(cyborgdb.InvalidConfigError):
        cyborgdb.KMSClient(registry_file=tmp_path / "missing.yaml")
    with pytest.raises(cyborgdb.InvalidConfigError):
        cyborgdb.KMSClient(endpoint_url="http://10.1.2.3:8080")  # clear text off this machine
    cyborgdb.KMSClient(endpoint_url="http://10.1.2.3:8080", allow_insecure_http=True)
    with pytest.raises(cyborgdb.UnknownSlotError) as err:
        kms_client.wrap_new_kek("idx", "no-such-slot")
    assert err.value.code == R.UNKNOWN_SLOT and isinstance(err.value, LookupError)
    key_file = tmp_path / "master.key"
    key_file.write_bytes(os.urandom(32))
    dev = cyborgdb.KMSClient(allow_local_provider=True)
    dev.add_slot("dev", provider="local", key_id=f"file:{key_file}")
    blob, kek = dev.wrap_new_kek("idx", "dev")
    assert dev.unwrap_kek("idx", blob) == kek
    strict = cyborgdb.KMSClient()
    strict.add_slot("dev", provider="local", key_id=f"file:{key_file}")
    with pytest.raises(cyborgdb.UntrustedKeyError) as err:
        strict.unwrap_kek("idx", blob)
    assert err.value.code == R.UNTRUSTED_KEY


def test_kms_provider_error_families(kms_client, moto):
    with pytest.raises(cyborgdb.KMSKeyNotFoundError) as err:
        kms_client.wrap_new_kek("idx", "missing-key")
    assert err.value.code == R.KMS_KEY_NOT_FOUND and isinstance(err.value, cyborgdb.KMSError)
    with pytest.raises(cyborgdb.WrapKeySizeError) as err:
        kms_client.wrap_new_kek("idx", "short-key")
    assert err.value.code == R.WRAP_KEY_SIZE
    blob, _ = kms_client.wrap_new_kek("idx", "vendor-default")
    tampered = cyborgdb.KMSBlob(**{k: getattr(blob, k) for k in ("kms_name", "provider", "key_id", "region")})
    tampered.wrapped_kek = blob.wrapped_kek[:-1] + bytes([blob.wrapped_kek[-1] ^ 1])
    with pytest.raises(cyborgdb.DecryptFailedError):
        kms_client.unwrap_kek("idx", tampered)
    with pytest.raises(cyborgdb.KEKNotWrappedError) as err:
        kms_client.unwrap_kek("idx", cyborgdb.KMSBlob(provider="none"))
    assert err.value.code == R.KEK_NOT_WRAPPED


@pytest.mark.parametrize(
    "mode, cls, code",
    [
        ("error:ThrottlingException", cyborgdb.KMSThrottledError, R.KMS_THROTTLED),
        ("error:DisabledException", cyborgdb.KMSKeyDisabledError, R.KMS_KEY_DISABLED),
        ("error:AccessDeniedException", cyborgdb.KMSAccessDeniedError, R.KMS_ACCESS_DENIED),
        ("garbage", cyborgdb.KMSBadResponseError, R.KMS_BAD_RESPONSE),
    ],
)
def test_provider_refusals_and_bad_responses_from_a_loopback_peer(mode, cls, code):
    with KmsPeer(mode) as peer:
        client = cyborgdb.KMSClient(endpoint_url=peer.endpoint, max_attempts=1)
        client.add_slot("s", provider="aws-kms", key_id="alias/k", region=REGION)
        with pytest.raises(cls) as err:
            client.wrap_new_kek("idx", "s")
        assert err.value.code == code


def test_unreachable_kms_and_s3_are_unavailable():
    client = cyborgdb.KMSClient(
        endpoint_url="http://127.0.0.1:9", max_attempts=1, connect_timeout=0.5, operation_timeout=2
    )
    client.add_slot("s", provider="aws-kms", key_id="alias/k", region=REGION)
    with pytest.raises(cyborgdb.KMSUnavailableError) as err:
        client.wrap_new_kek("idx", "s")
    assert err.value.code == R.KMS_UNAVAILABLE
    s3 = cyborgdb.StorageConfig.s3(
        "bucket", endpoint="http://127.0.0.1:9", region=REGION,
        credentials=cyborgdb.S3Credentials("testing", "testing"),
    )
    with pytest.raises(cyborgdb.StorageUnavailableError) as err:
        cyborgdb.get_index_kms(s3, "i")
    assert err.value.code == R.STORAGE_UNAVAILABLE and isinstance(err.value, OSError)


def test_missing_bucket_is_storage_access_denied(moto):
    s3 = cyborgdb.StorageConfig.s3(
        "no-such-bucket-here", endpoint=moto.endpoint, region=REGION,
        credentials=cyborgdb.S3Credentials("testing", "testing"),
    )
    with pytest.raises(cyborgdb.StorageAccessDeniedError) as err:
        cyborgdb.push_index_kms(s3, "i", cyborgdb.KMSBlob(provider="none"))
    assert err.value.code == R.STORAGE_ACCESS_DENIED and isinstance(err.value, PermissionError)


def test_resolver_create_resolve_rewrap_drift_warm_up(kms_client, storage):
    resolver = cyborgdb.KEKResolver(kms_client, ttl=60, max_entries=100)
    kek = resolver.create_index(storage, "kms-idx", kms_name="vendor-default")
    own = cyborgdb.KEK(os.urandom(32))
    returned = resolver.create_index(storage, "own-idx", index_key=own)
    assert returned == own
    assert cyborgdb.get_index_kms(storage, "own-idx").provider == "none"
    with pytest.raises(cyborgdb.InvalidArgumentError, match="mutually exclusive"):
        resolver.create_index(storage, "x", kms_name="vendor-default", index_key=own)
    with pytest.raises(cyborgdb.InvalidArgumentError):
        resolver.create_index(storage, "x")
    with pytest.raises(cyborgdb.InvalidArgumentError):
        resolver.create_index(storage, "x", index_key=b"short")
    with pytest.raises(TypeError):
        resolver.create_index(storage, "x", index_key="a str")
    with pytest.raises(cyborgdb.AlreadyExistsError):
        resolver.create_index(storage, "kms-idx", kms_name="vendor-default")
    assert "x" not in cyborgdb.list_index_kms(storage)

    assert resolver.resolve(storage, "kms-idx") == kek
    assert resolver.resolve(config_location=storage, index_name="kms-idx") == kek
    stats = resolver.stats()
    assert stats.hits >= 1 and stats.entries == 1 and "hits=" in repr(stats)
    with pytest.raises(cyborgdb.KEKNotWrappedError):
        resolver.resolve(storage, "own-idx")
    with pytest.raises(cyborgdb.NotFoundError):
        resolver.resolve(storage, "nothing")

    before = cyborgdb.get_index_kms(storage, "kms-idx")
    after = resolver.rewrap(storage, "kms-idx", "customer-acme")
    assert (after.kms_name, after.provider, after.version) == ("customer-acme", "aws", before.version + 1)
    assert cyborgdb.get_index_kms(storage, "kms-idx") == after
    assert resolver.resolve(storage, "kms-idx") == kek  # same KEK, new wrap

    report = {e.index_name: e for e in resolver.check_drift(storage)}
    assert report["kms-idx"].status == "in_sync" and report["own-idx"].status == "not_wrapped"
    assert report["kms-idx"].configured == report["kms-idx"].stored
    assert report["kms-idx"].stored.provider == "aws" and report["kms-idx"].error is None
    assert "DriftEntry(" in repr(report["kms-idx"])

    assert resolver.invalidate(storage, "kms-idx") is True
    assert resolver.invalidate(storage, "kms-idx") is False
    results = resolver.warm_up(storage, ["kms-idx", "nothing", "own-idx"], parallelism=2)
    assert results[0] is None
    assert isinstance(results[1], cyborgdb.NotFoundError)
    assert isinstance(results[2], cyborgdb.KEKNotWrappedError)
    with pytest.raises(cyborgdb.InvalidArgumentError):
        resolver.warm_up(storage, ["kms-idx"], parallelism=0)
    assert resolver.invalidate_all() == 1
    assert resolver.stats().entries == 0


def test_drift_is_reported_and_rewrapped(kms_client, moto):
    storage = cyborgdb.StorageConfig.memory()
    client = cyborgdb.KMSClient(registry_yaml=registry_yaml(moto), endpoint_url=moto.endpoint)
    resolver = cyborgdb.KEKResolver(client)
    kek = resolver.create_index(storage, "i", kms_name="vendor-default")
    client.add_slot("vendor-default", provider="aws", key_id="cyborgdb-python/wrap-key", region=REGION)
    client.add_previous_key("vendor-default", provider="aws-kms", key_id="alias/cyborgdb-python", region=REGION)
    (entry,) = resolver.check_drift(storage)
    assert entry.status == "drifted" and entry.stored.provider == "aws-kms"
    assert entry.configured.provider == "aws"
    (entry,) = resolver.check_drift(storage, rewrap=True)
    assert entry.status == "rewrapped"
    assert cyborgdb.get_index_kms(storage, "i").provider == "aws"
    assert resolver.resolve(storage, "i") == kek


def test_resolver_options_are_checked(kms_client):
    assert cyborgdb.KEKResolver(kms_client, ttl=0).ttl == 0
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.KEKResolver(kms_client, ttl=-1)
    with pytest.raises(cyborgdb.InvalidConfigError):
        cyborgdb.KEKResolver(kms_client, max_entries=0)
    with pytest.raises(TypeError):
        cyborgdb.KEKResolver("client")


def test_kek_object(kms_client):
    raw = os.urandom(32)
    kek = cyborgdb.KEK(raw)
    assert bytes(kek) == raw and len(kek) == 32 and not kek.wiped
    assert kek == cyborgdb.KEK(bytearray(raw)) and kek != cyborgdb.KEK(bytes(32))
    assert kek != raw  # compare KEK objects, not bytes
    buffer = bytearray(32)
    kek.copy_into(buffer)
    assert bytes(buffer) == raw
    with pytest.raises(cyborgdb.InvalidArgumentError):
        kek.copy_into(bytearray(31))
    with kek as same:
        assert same is kek
    assert kek.wiped and repr(kek) == "KEK(<wiped>)"
    with pytest.raises(cyborgdb.InvalidArgumentError):
        bytes(kek)
    kek.wipe()  # idempotent
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.KEK(b"short")
    with pytest.raises(TypeError):
        cyborgdb.KEK("a" * 32)
    with pytest.raises(TypeError):
        hash(cyborgdb.KEK(raw))
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(cyborgdb.KEK(raw))
    with pytest.raises(cyborgdb.InvalidArgumentError):
        kms_client.wrap_kek("idx", "vendor-default", kek)  # wiped
