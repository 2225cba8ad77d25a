"""The four documented operations and list_index_kms on memory, disk and S3 (moto), and bad input:
the documented exception, and nothing stored changes."""

import copy
import os
import pathlib

import pytest

import cyborgdb_core as cyborgdb


def make_blob(version=1, wrapped=b"\x01" * 40):
    return cyborgdb.KMSBlob(
        kms_name="vendor-default",
        provider="aws-kms",
        key_id="alias/cyborgdb-python",
        region="us-east-1",
        wrapped_kek=wrapped,
        version=version,
        created_at=1_700_000_000,
    )


def test_four_operations_round_trip(storage):
    blob = make_blob()
    cyborgdb.create_index_kms(storage, "idx", blob)
    assert cyborgdb.get_index_kms(storage, "idx") == blob
    with pytest.raises(cyborgdb.AlreadyExistsError) as err:
        cyborgdb.create_index_kms(storage, "idx", make_blob(version=9))
    assert err.value.code == cyborgdb.ResultCode.ALREADY_EXISTS
    assert cyborgdb.get_index_kms(storage, "idx") == blob  # untouched
    newer = make_blob(version=2, wrapped=b"\x02" * 50)
    cyborgdb.push_index_kms(storage, "idx", newer)
    assert cyborgdb.get_index_kms(storage, "idx") == newer
    cyborgdb.push_index_kms(storage, "other", blob)  # push creates
    assert sorted(cyborgdb.list_index_kms(storage)) == ["idx", "other"]
    cyborgdb.delete_index_kms(storage, "idx")
    cyborgdb.delete_index_kms(storage, "idx")  # idempotent
    with pytest.raises(cyborgdb.NotFoundError) as err:
        cyborgdb.get_index_kms(storage, "idx")
    assert err.value.code == cyborgdb.ResultCode.NOT_FOUND
    assert isinstance(err.value, LookupError)
    assert cyborgdb.list_index_kms(storage) == ["other"]


def test_created_at_zero_is_stamped_and_blob_is_not_modified(storage):
    blob = cyborgdb.KMSBlob(provider="none")
    cyborgdb.create_index_kms(storage, "i", blob)
    assert blob.created_at == 0
    assert cyborgdb.get_index_kms(storage, "i").created_at > 1_600_000_000


def test_disk_accepts_str_and_pathlike(tmp_path):
    by_path = cyborgdb.StorageConfig.disk(tmp_path)
    by_str = cyborgdb.StorageConfig.disk(str(tmp_path))
    cyborgdb.push_index_kms(by_path, "i", make_blob())
    assert cyborgdb.get_index_kms(by_str, "i") == make_blob()
    assert (tmp_path / "i.kms").exists()


def test_kmsblob_attributes_equality_copy_and_repr():
    blob = make_blob()
    blob.kms_name, blob.provider, blob.key_id, blob.region = "a", "aws", "k", "eu-west-1"
    blob.wrapped_kek = bytearray(b"\x05" * 3)
    assert blob.wrapped_kek == b"\x05\x05\x05" and isinstance(blob.wrapped_kek, bytes)
    blob.wrapped_kek = memoryview(b"\x06" * 4)
    assert blob.wrapped_kek == b"\x06" * 4
    blob.version += 1
    blob.created_at = -5
    assert (blob.version, blob.created_at) == (2, -5)
    twin = copy.copy(blob)
    assert twin == blob and twin is not blob
    twin.version = 3
    assert twin != blob and copy.deepcopy(blob) == blob
    assert blob != "not a blob"
    with pytest.raises(TypeError):
        hash(blob)
    assert repr(blob) == (
        "KMSBlob(kms_name='a', provider='aws', key_id='k', region='eu-west-1', "
        "wrapped_kek=<4 bytes>, version=2, created_at=-5)"
    )


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda c, b: cyborgdb.get_index_kms(c, 7), "index_name"),
        (lambda c, b: cyborgdb.get_index_kms("disk", "i"), "config_location"),
        (lambda c, b: cyborgdb.create_index_kms(c, "i", {"provider": "none"}), "blob"),
        (lambda c, b: cyborgdb.push_index_kms(c, b"i", b), "index_name"),
        (lambda c, b: cyborgdb.delete_index_kms(None, "i"), "config_location"),
        (lambda c, b: cyborgdb.list_index_kms(3), "config_location"),
        (lambda c, b: cyborgdb.StorageConfig.disk(3), "path"),
        (lambda c, b: cyborgdb.StorageConfig.s3(3), "bucket"),
        (lambda c, b: cyborgdb.KMSBlob(kms_name=3), "kms_name"),
        (lambda c, b: cyborgdb.KMSBlob(wrapped_kek="text"), "wrapped_kek"),
        (lambda c, b: cyborgdb.KMSBlob(version="1"), "version"),
        (lambda c, b: cyborgdb.KMSBlob(version=True), "version"),
        (lambda c, b: cyborgdb.KMSBlob(created_at=1.5), "created_at"),
        (lambda c, b: setattr(b, "provider", None), "KMSBlob.provider"),
        (lambda c, b: setattr(b, "wrapped_kek", [1, 2]), "KMSBlob.wrapped_kek"),
        (lambda c, b: setattr(b, "version", 1.0), "KMSBlob.version"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_parameter(call, parameter):
    config = cyborgdb.StorageConfig.memory()
    blob = make_blob()
    cyborgdb.push_index_kms(config, "i", blob)
    with pytest.raises(TypeError) as err:
        call(config, blob)
    assert parameter in str(err.value)
    assert blob == make_blob()
    assert cyborgdb.get_index_kms(config, "i") == make_blob()


@pytest.mark.parametrize("field, value", [("version", -1), ("version", 2**32), ("created_at", 2**63)])
def test_out_of_range_integers_are_invalid_arguments(field, value):
    blob = make_blob()
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        setattr(blob, field, value)
    assert isinstance(err.value, ValueError) and field in str(err.value)
    assert blob == make_blob()
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.KMSBlob(**{field: value})


BAD_NAMES = ["", "a\0b", "x" * 256, "é" * 128]
BAD_BLOBS = [
    dict(kms_name="k\0"),
    dict(provider="gcp"),
    dict(key_id="x" * (cyborgdb.MAX_STRING_FIELD_LEN + 1)),
    dict(region="us-east-1\0"),
    dict(wrapped_kek=b"\x00" * (cyborgdb.MAX_WRAPPED_KEK_LEN + 1)),
    dict(provider="none", wrapped_kek=b"\x01"),
    dict(wrapped_kek=b""),
]


def test_bad_names_and_blobs_are_rejected_and_change_nothing(storage):
    good = make_blob()
    cyborgdb.create_index_kms(storage, "idx", good)
    for name in BAD_NAMES:
        for op in (cyborgdb.create_index_kms, cyborgdb.push_index_kms):
            with pytest.raises(cyborgdb.InvalidArgumentError) as err:
                op(storage, name, good)
            assert err.value.code == cyborgdb.ResultCode.INVALID_ARGUMENT
        with pytest.raises(cyborgdb.InvalidArgumentError):
            cyborgdb.get_index_kms(storage, name)
        with pytest.raises(cyborgdb.InvalidArgumentError):
            cyborgdb.delete_index_kms(storage, name)
    for fields in BAD_BLOBS:
        bad = make_blob()
        for key, value in fields.items():
            setattr(bad, key, value)
        for op in (cyborgdb.create_index_kms, cyborgdb.push_index_kms):
            for name in ("idx", "new"):
                with pytest.raises(cyborgdb.InvalidArgumentError) as err:
                    op(storage, name, bad)
                assert isinstance(err.value, ValueError)
    assert cyborgdb.get_index_kms(storage, "idx") == good
    assert cyborgdb.list_index_kms(storage) == ["idx"]


def test_storage_config_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError):
        cyborgdb.StorageConfig()
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.StorageConfig.disk("")
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.StorageConfig.disk("a\0b")
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.StorageConfig.s3("Not_A_Bucket")
    with pytest.raises(cyborgdb.InvalidArgumentError):
        cyborgdb.StorageConfig.s3("bucket", endpoint="ftp://127.0.0.1")
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.StorageConfig.s3(
            "bucket",
            endpoint="http://127.0.0.1:9",
            credentials=cyborgdb.S3Credentials("AKIA", ""),
        )
    assert "secret" in str(err.value).lower() or "secret_key" in str(err.value)


def test_s3_prefixes_separate_stores(moto):
    from conftest import s3_storage

    a, b = s3_storage(moto, "p/a"), s3_storage(moto, "p/b")
    cyborgdb.push_index_kms(a, "i", make_blob())
    assert cyborgdb.list_index_kms(b) == []
    assert cyborgdb.get_index_kms(s3_storage(moto, "p/a/"), "i") == make_blob()


def test_corrupt_and_io_errors_on_disk(tmp_path):
    config = cyborgdb.StorageConfig.disk(tmp_path)
    cyborgdb.push_index_kms(config, "i", make_blob())
    (tmp_path / "i.kms").write_bytes(b"garbage, not an envelope")
    with pytest.raises(cyborgdb.CorruptDataError) as err:
        cyborgdb.get_index_kms(config, "i")
    assert err.value.code == cyborgdb.ResultCode.CORRUPT
    file_root = tmp_path / "a-file"
    file_root.write_bytes(b"")
    with pytest.raises(cyborgdb.IOError) as err:
        cyborgdb.push_index_kms(cyborgdb.StorageConfig.disk(file_root), "i", make_blob())
    assert err.value.code == cyborgdb.ResultCode.IO
    assert isinstance(err.value, OSError)


def test_names_that_are_not_utf8_encodable_are_value_errors():
    config = cyborgdb.StorageConfig.memory()
    with pytest.raises(ValueError):
        cyborgdb.push_index_kms(config, "\ud800", make_blob())
    assert cyborgdb.list_index_kms(config) == []


def test_unusual_but_valid_names_round_trip(storage):
    names = ["bad\nname", "../../etc/passwd", "名前", "a/b", ".", "x" * 255]
    for name in names:
        cyborgdb.push_index_kms(storage, name, make_blob())
    assert sorted(cyborgdb.list_index_kms(storage)) == sorted(names)


def test_kmsblob_pickles_with_every_field():
    import pickle

    blob = make_blob(version=5, wrapped=b"\x00\xff" * 10)
    assert pickle.loads(pickle.dumps(blob)) == blob
