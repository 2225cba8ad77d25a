"""New-KEK rotation from Python: rotate_kek with a callback (committed, or rolled back with the
callback's own exception), the two-phase API (begin / pending / commit / abort), a second begin
refused, and a corrupt pending record -- on moto (aws -> aws-kms) and the local provider."""

import os

import pytest

import cyborgdb_core as cyborgdb


class EngineError(Exception):
    """The engine's own failure, which rotate_kek must re-raise unchanged."""


def test_rotate_kek_gives_a_fresh_kek_and_the_callback_both_keks(resolver, storage):
    old = resolver.create_index(storage, "orders", kms_name="customer-acme")
    seen = []
    blob = resolver.rotate_kek(
        storage, "orders", "vendor-default", lambda o, n: seen.append((bytes(o), bytes(n)))
    )
    assert len(seen) == 1
    assert seen[0][0] == bytes(old) and seen[0][1] != bytes(old)
    assert (blob.kms_name, blob.provider, blob.version) == ("vendor-default", "aws-kms", 2)
    assert bytes(resolver.resolve(storage, "orders")) == seen[0][1]
    assert cyborgdb.get_index_kms(storage, "orders") == blob
    assert resolver.pending_rotation(storage, "orders") is None


def test_a_raising_callback_rolls_back_and_its_exception_propagates(resolver, storage):
    old = resolver.create_index(storage, "orders", kms_name="vendor-default")
    before = cyborgdb.get_index_kms(storage, "orders")

    def fail(old_kek, new_kek):
        raise EngineError("disk full while re-wrapping the DEK")

    with pytest.raises(EngineError, match="disk full"):
        resolver.rotate_kek(storage, "orders", "vendor-default", fail)
    assert cyborgdb.get_index_kms(storage, "orders") == before
    assert resolver.pending_rotation(storage, "orders") is None
    assert bytes(resolver.resolve(storage, "orders")) == bytes(old)
    with pytest.raises(cyborgdb.UnknownSlotError):
        resolver.rotate_kek(storage, "orders", "nope", lambda o, n: None)


def test_two_phase_rotation_and_a_second_begin(resolver):
    storage = cyborgdb.StorageConfig.memory()
    old = resolver.create_index(storage, "orders", kms_name="vendor-default")
    rotation = resolver.begin_rotation(storage, "orders", "customer-acme")
    assert rotation.state == "pending" and rotation.index_name == "orders"
    assert bytes(rotation.old_kek) == bytes(old)
    assert rotation.new_envelope.version == rotation.old_envelope.version + 1
    with pytest.raises(cyborgdb.ConflictError, match="already pending"):
        resolver.begin_rotation(storage, "orders", "customer-acme")
    assert bytes(resolver.resolve(storage, "orders")) == bytes(old)
    found = resolver.pending_rotation(storage, "orders")
    assert found is not None and bytes(found.new_kek) == bytes(rotation.new_kek)
    blob = resolver.commit_rotation(storage, found)
    assert blob.kms_name == "customer-acme"
    assert bytes(resolver.resolve(storage, "orders")) == bytes(rotation.new_kek)
    with pytest.raises(cyborgdb.ConflictError, match="already committed"):
        resolver.abort_rotation(storage, rotation)

    again = resolver.begin_rotation(storage, "orders", "vendor-default")
    resolver.abort_rotation(storage, again)
    assert resolver.pending_rotation(storage, "orders") is None
    assert bytes(resolver.resolve(storage, "orders")) == bytes(rotation.new_kek)


def local_key(tmp_path, name):
    """A fresh 32-byte local master key file; returns its key_id."""
    path = tmp_path / f"{name}.key"
    path.write_bytes(os.urandom(32))
    return f"file:{path}"


def local_fixture(tmp_path):
    """(client, resolver, disk storage) with the local slot "dev" on a fresh key."""
    client = cyborgdb.KMSClient(allow_local_provider=True)
    client.add_slot("dev", provider="local", key_id=local_key(tmp_path, "dev"))
    resolver = cyborgdb.KEKResolver(client)
    return client, resolver, cyborgdb.StorageConfig.disk(tmp_path / "store")


def test_a_corrupt_pending_record_is_corrupt_data(tmp_path):
    _, resolver, storage = local_fixture(tmp_path)
    resolver.create_index(storage, "orders", kms_name="dev")
    rotation = resolver.begin_rotation(storage, "orders", "dev")
    record = tmp_path / "store" / "orders.rot"
    record.write_bytes(record.read_bytes()[:-3])
    with pytest.raises(cyborgdb.CorruptDataError, match="pending KEK rotation record"):
        resolver.pending_rotation(storage, "orders")
    with pytest.raises(cyborgdb.CorruptDataError):
        resolver.commit_rotation(storage, rotation)
    assert bytes(resolver.resolve(storage, "orders")) == bytes(rotation.old_kek)


def test_drift_repair_in_new_kek_mode_rotates_drifted_indexes_and_reports_a_raising_callback(tmp_path):
    client, resolver, storage = local_fixture(tmp_path)
    old = {name: bytes(resolver.create_index(storage, name, kms_name="dev")) for name in ("fails", "orders")}
    fails_envelope = (tmp_path / "store" / "fails.kms").read_bytes()
    # The operator points slot dev at a new key and trusts the old one: both indexes drift.
    client.add_slot("dev", provider="local", key_id=local_key(tmp_path, "dev-new"))
    client.add_previous_key("dev", provider="local", key_id=f"file:{tmp_path / 'dev.key'}")

    seen = {}

    def rewrap(index_name, old_kek, new_kek):
        seen[index_name] = (bytes(old_kek), bytes(new_kek))
        if index_name == "fails":
            raise EngineError("engine busy re-wrapping fails")

    report = {e.index_name: e for e in resolver.check_drift_new_kek(storage, rewrap)}
    assert sorted(seen) == ["fails", "orders"]
    assert report["orders"].status == "rewrapped" and report["orders"].error is None
    assert seen["orders"][0] == old["orders"] and seen["orders"][1] != old["orders"]
    assert bytes(resolver.resolve(storage, "orders")) == seen["orders"][1]
    assert cyborgdb.get_index_kms(storage, "orders").version == 2

    assert report["fails"].status == "failed"
    assert isinstance(report["fails"].error, EngineError)
    assert str(report["fails"].error) == "engine busy re-wrapping fails"
    assert (tmp_path / "store" / "fails.kms").read_bytes() == fails_envelope
    assert resolver.pending_rotation(storage, "fails") is None
    assert bytes(resolver.resolve(storage, "fails")) == old["fails"]
    assert [e.status for e in resolver.check_drift(storage)] == ["drifted", "in_sync"]
