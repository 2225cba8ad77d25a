"""The custody audit from Python: StorageConfig.with_audit records each change on memory, disk
and S3 (moto); verify_audit reports an intact chain, then the first break after tampering;
read_audit returns the records (no key material in them); KEKResolver.set_audit; bad options raise
naming the field; a missing key in KMS is recorded as a provider refusal."""

from __future__ import annotations

import pytest

import cyborgdb_core as cyborgdb


def none_blob() -> cyborgdb.KMSBlob:
    return cyborgdb.KMSBlob(provider="none", version=1)


def test_each_change_is_one_record_in_an_intact_chain(storage):
    audited = storage.with_audit("py-test")
    cyborgdb.create_index_kms(audited, "a", none_blob())
    cyborgdb.push_index_kms(audited, "a", none_blob())
    cyborgdb.delete_index_kms(audited, "a")
    cyborgdb.create_index_kms(storage, "unaudited", none_blob())
    report = cyborgdb.verify_audit(storage)
    assert report.intact and report.break_kind is None and report.break_seq is None
    assert report.records == 3 and report.head_seq == 2
    records = cyborgdb.read_audit(storage)
    assert [r.event_type for r in records] == ["created", "pushed", "deleted"]
    assert [r.seq for r in records] == [0, 1, 2]
    assert records[0].prev_hash == bytes(32)
    assert records[1].prev_hash == records[0].hash
    assert report.head_hash == records[2].hash
    assert records[0].principal == "py-test" and records[0].index_name == "a"
    assert records[0].event["mode"] == "caller-supplied"
    assert records[0].line.startswith('{"v":1,"seq":0,')
    assert [r.seq for r in cyborgdb.read_audit(storage, from_seq=1, limit=1)] == [1]
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.read_audit(storage, limit=0)


def test_a_removed_record_is_named(tmp_path):
    root = tmp_path / "root"
    audited = cyborgdb.StorageConfig.disk(root).with_audit("py-test", host="h1")
    for name in "abcd":
        cyborgdb.create_index_kms(audited, name, none_blob())
    log = root / ".audit" / "log.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    del lines[1]
    log.write_text("".join(lines))
    report = cyborgdb.verify_audit(audited)
    assert (report.break_kind, report.break_seq, report.records) == ("removed", 1, 1)
    assert report.break_message == "record 1 is missing: record 2 follows record 0"
    assert not report.intact
    # A damaged last record: nothing is appended, the change is not made.
    log.write_text("".join(lines[:-1]) + '{"v":1\n')
    with pytest.raises(cyborgdb.CorruptDataError):
        cyborgdb.create_index_kms(audited, "e", none_blob())
    with pytest.raises(cyborgdb.NotFoundError):
        cyborgdb.get_index_kms(audited, "e")


def test_bad_options_raise_naming_the_field():
    memory = cyborgdb.StorageConfig.memory()
    with pytest.raises(cyborgdb.InvalidArgumentError, match="audit option principal"):
        memory.with_audit("")
    with pytest.raises(cyborgdb.InvalidArgumentError, match="audit option host"):
        memory.with_audit("ok", host="a\nb")


def test_the_resolver_records_creates_and_provider_refusals(kms_client, moto, tmp_path):
    resolver = cyborgdb.KEKResolver(kms_client)
    store = cyborgdb.StorageConfig.disk(tmp_path / "store")
    resolver.set_audit("py-resolver")
    with resolver.create_index(store, "orders", kms_name="vendor-default"):
        pass
    # Slot "missing-key" names an alias that does not exist: the wrap is refused.
    with pytest.raises(cyborgdb.KMSKeyNotFoundError):
        resolver.create_index(store, "more", kms_name="missing-key")
    resolver.set_audit(None)
    with resolver.create_index(store, "quiet", kms_name="vendor-default"):
        pass
    records = cyborgdb.read_audit(store)
    assert [(r.index_name, r.event_type) for r in records] == [
        ("orders", "created"),
        ("more", "provider_refused"),
    ]
    created = records[0].event
    assert created["key"]["slot"] == "vendor-default"
    stored_key_id = cyborgdb.get_index_kms(store, "orders").key_id
    assert created["key"]["key_suffix"] == stored_key_id[-12:]
    refused = records[1].event
    assert (refused["operation"], refused["error"]) == ("create", "KmsKeyNotFound")
    # No key material in a record: the envelope's wrapped KEK appears nowhere.
    wrapped = cyborgdb.get_index_kms(store, "orders").wrapped_kek
    for record in records:
        assert wrapped.hex() not in record.line
        assert moto.key_arn not in record.line
    assert cyborgdb.verify_audit(store).intact


def _local_resolver(tmp_path):
    master = tmp_path / "main.key"
    master.write_bytes(bytes([0x31]) * 32)
    client = cyborgdb.KMSClient(allow_local_provider=True)
    client.add_slot("main", provider="local", key_id=f"file:{master}")
    return cyborgdb.KEKResolver(client)


def test_unwrap_counts_are_one_record_per_index_on_flush(tmp_path):
    resolver = _local_resolver(tmp_path)
    resolver.set_audit("py-counts", unwrap_counts_seconds=3600)
    store = cyborgdb.StorageConfig.disk(tmp_path / "root")
    keks = {name: bytes(resolver.create_index(store, name, kms_name="main")) for name in "ab"}
    cyborgdb.create_index_kms(store, "own", none_blob())
    for name, times in (("a", 4), ("b", 2)):
        for _ in range(times):
            resolver.invalidate(store, name)
            resolver.resolve(store, name)
            resolver.resolve(store, name)  # a hit: not counted
    with pytest.raises(cyborgdb.KEKNotWrappedError):
        resolver.resolve(store, "own")  # a none envelope: not counted
    assert all(r.event_type != "unwraps" for r in cyborgdb.read_audit(store))
    assert resolver.flush_unwrap_counts() == 2
    assert resolver.flush_unwrap_counts() == 0
    counts = sorted(
        (r.index_name, r.event["count"])
        for r in cyborgdb.read_audit(store)
        if r.event_type == "unwraps"
    )
    assert counts == [("a", 4), ("b", 2)]
    for record in cyborgdb.read_audit(store):
        if record.event_type == "unwraps":
            assert list(record.event) == ["type", "count", "since_ms", "until_ms"]
            assert record.event["since_ms"] <= record.event["until_ms"]
    assert cyborgdb.verify_audit(store).intact
    log = (tmp_path / "root" / ".audit" / "log.jsonl").read_bytes()
    for kek in keks.values():
        assert kek not in log and kek.hex().encode() not in log


def test_unwrap_counts_are_off_by_default_and_bounds_raise_naming_the_field(tmp_path):
    resolver = _local_resolver(tmp_path)
    store = cyborgdb.StorageConfig.memory().with_audit("py")
    resolver.create_index(store, "a", kms_name="main")
    resolver.invalidate(store, "a")
    resolver.resolve(store, "a")
    assert resolver.flush_unwrap_counts() == 0
    assert [r.event_type for r in cyborgdb.read_audit(store)] == ["created"]
    for bad in (0, 86401):
        with pytest.raises(cyborgdb.InvalidArgumentError, match="unwrap_counts"):
            resolver.set_audit("py", unwrap_counts_seconds=bad)
        with pytest.raises(cyborgdb.InvalidArgumentError, match="unwrap_counts"):
            cyborgdb.StorageConfig.memory().with_audit("py", unwrap_counts_seconds=bad)
