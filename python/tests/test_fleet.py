"""Fleet options of KEKResolver (issue #13): the envelope revalidation interval (seconds or a
timedelta), stale-if-error and its counter, and replica regions of programmatic slots. No moto:
local slots on Disk stores, and the key-trust check, which runs before any KMS call."""

from __future__ import annotations

import os
import pathlib
import time
from datetime import timedelta

import pytest

import cyborgdb_core as cyborgdb

R = cyborgdb.ResultCode
# Loops that wait for a revalidation interval to pass (a few ms) give up after this long: a guard
# against a hang, not a timing assertion.
GIVE_UP_AFTER = 60.0


def local_client(tmp_path: pathlib.Path) -> cyborgdb.KMSClient:
    key_file = tmp_path / "main.key"
    key_file.write_bytes(os.urandom(32))
    client = cyborgdb.KMSClient(allow_local_provider=True)
    client.add_slot("main", provider="local", key_id=f"file:{key_file}")
    return client


def envelope_file(root: pathlib.Path) -> pathlib.Path:
    (path,) = [p for p in root.iterdir() if p.suffix == ".kms"]
    return path


def test_revalidate_and_ttl_take_seconds_or_a_timedelta(tmp_path):
    client = local_client(tmp_path)
    r = cyborgdb.KEKResolver(client, ttl=timedelta(minutes=2), revalidate=2.5)
    assert (r.ttl, r.revalidate) == (120.0, 2.5)
    r = cyborgdb.KEKResolver(client, revalidate=timedelta(milliseconds=1500))
    assert r.revalidate == 1.5
    assert cyborgdb.KEKResolver(client, revalidate=0).revalidate == 0
    assert cyborgdb.KEKResolver(client, revalidate=3600).revalidate == 3600
    for bad in (-1, float("nan"), float("inf"), timedelta(seconds=-1), "2"):
        with pytest.raises(cyborgdb.InvalidArgumentError) as err:
            cyborgdb.KEKResolver(client, revalidate=bad)
        assert err.value.code == R.INVALID_ARGUMENT
        assert err.value.message == (
            "revalidate must be a non-negative number of seconds or a timedelta "
            "(0 turns revalidation off)"
        )
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.KEKResolver(client, ttl=timedelta(seconds=-5))
    assert "ttl must be a non-negative number of seconds or a timedelta" in err.value.message
    with pytest.raises(cyborgdb.InvalidConfigError) as err:
        cyborgdb.KEKResolver(client, revalidate=3601)
    assert err.value.message == (
        "the KEK envelope revalidation interval must be at most 3600s, not 3601s"
    )


def test_stale_if_error_is_on_by_default_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.delenv("CYB_KEK_STALE_IF_ERROR", raising=False)
    client = local_client(tmp_path)
    assert cyborgdb.KEKResolver(client).stale_if_error is True
    assert cyborgdb.KEKResolver(client, stale_if_error=False).stale_if_error is False
    monkeypatch.setenv("CYB_KEK_STALE_IF_ERROR", "0")
    assert cyborgdb.KEKResolver(client).stale_if_error is False
    assert cyborgdb.KEKResolver(client, stale_if_error=True).stale_if_error is True
    monkeypatch.setenv("CYB_KEK_STALE_IF_ERROR", "maybe")
    with pytest.raises(cyborgdb.InvalidConfigError) as err:
        cyborgdb.KEKResolver(client)
    assert err.value.message == 'CYB_KEK_STALE_IF_ERROR must be 1 or 0, not "maybe"'


def test_another_writers_replacement_is_seen_after_the_interval(tmp_path):
    client = local_client(tmp_path)
    store = cyborgdb.StorageConfig.disk(tmp_path / "store")
    resolver = cyborgdb.KEKResolver(client, revalidate=timedelta(milliseconds=1))
    first = resolver.create_index(store, "idx", kms_name="main")
    assert resolver.resolve(store, "idx") == first
    # Another writer (not this library instance: a file replaced by rename, as a node would)
    # publishes the envelope of a fresh KEK.
    elsewhere = cyborgdb.StorageConfig.disk(tmp_path / "elsewhere")
    second = cyborgdb.KEKResolver(client).create_index(elsewhere, "idx", kms_name="main")
    os.replace(envelope_file(tmp_path / "elsewhere"), envelope_file(tmp_path / "store"))
    deadline = time.monotonic() + GIVE_UP_AFTER
    while resolver.resolve(store, "idx") == first:
        assert time.monotonic() < deadline, "the replacement was never seen"
    assert resolver.resolve(store, "idx") == second


def broken_store(tmp_path, stale_if_error):
    """A resolver revalidating every ms that cached "idx", whose envelope file is then replaced
    by a directory: every later check fails with IOError (a transient storage error)."""
    client = local_client(tmp_path)
    store = cyborgdb.StorageConfig.disk(tmp_path / "store")
    resolver = cyborgdb.KEKResolver(
        client, ttl=3600, revalidate=0.001, stale_if_error=stale_if_error
    )
    kek = resolver.create_index(store, "idx", kms_name="main")
    assert resolver.resolve(store, "idx") == kek
    path = envelope_file(tmp_path / "store")
    path.unlink()
    path.mkdir()
    return resolver, store, kek


def test_a_failed_check_serves_the_cached_kek_with_stale_if_error(tmp_path):
    resolver, store, kek = broken_store(tmp_path, None)
    deadline = time.monotonic() + GIVE_UP_AFTER
    while resolver.stats().stale_served == 0:
        assert resolver.resolve(store, "idx") == kek
        assert time.monotonic() < deadline, "no check happened"
    stats = resolver.stats()
    assert (stats.stale_served, stats.errors) == (1, 0)
    assert "stale_served=1" in repr(stats)


def test_a_failed_check_raises_without_stale_if_error(tmp_path):
    resolver, store, kek = broken_store(tmp_path, False)
    deadline = time.monotonic() + GIVE_UP_AFTER
    with pytest.raises(cyborgdb.IOError) as err:
        while True:
            assert resolver.resolve(store, "idx") == kek
            assert time.monotonic() < deadline, "no check happened"
    assert err.value.code == R.IO
    assert "it is a directory, not a regular file" in err.value.message
    assert resolver.stats().stale_served == 0


MRK = "key/mrk-1234abcd12ab34cd56ef1234567890ab"
PRIMARY_ARN = f"arn:aws:kms:us-east-1:111122223333:{MRK}"
REPLICA_ARN = f"arn:aws:kms:us-west-2:111122223333:{MRK}"


def test_replica_regions_of_a_slot_are_trusted_and_checked():
    store = cyborgdb.StorageConfig.memory()
    cyborgdb.push_index_kms(
        store,
        "orders",
        cyborgdb.KMSBlob(
            kms_name="mrk",
            provider="aws-kms",
            key_id=REPLICA_ARN,
            region="us-west-2",
            wrapped_kek=b"\x07" * 64,
            version=1,
        ),
    )
    plain = cyborgdb.KMSClient()
    plain.add_slot("mrk", provider="aws-kms", key_id=PRIMARY_ARN, region="us-east-1")
    with pytest.raises(cyborgdb.UntrustedKeyError):
        cyborgdb.KEKResolver(plain).resolve(store, "orders")
    (entry,) = cyborgdb.KEKResolver(plain).check_drift(store)
    assert entry.status == "failed"

    client = cyborgdb.KMSClient()
    client.add_slot(
        "mrk", provider="aws-kms", key_id=PRIMARY_ARN, region="us-east-1",
        replica_regions=["us-west-2"],
    )
    (entry,) = cyborgdb.KEKResolver(client).check_drift(store)
    assert entry.status == "drifted"

    with pytest.raises(cyborgdb.InvalidConfigError) as err:
        client.add_slot(
            "s", provider="aws-kms", key_id=PRIMARY_ARN, region="us-east-1",
            replica_regions=["us-west-2", "us-east-1"],
        )
    assert err.value.message == 'KMS slot "s": replica_regions[1] is the slot\'s own region'
    with pytest.raises(cyborgdb.InvalidConfigError) as err:
        client.add_slot(
            "s", provider="aws", key_id="secret", region="us-east-1",
            replica_regions=["us-west-2"],
        )
    assert err.value.message == (
        'KMS slot "s": replica_regions is only for aws-kms slots (multi-Region KMS keys)'
    )
