"""Every snippet of the documented Python API (shared/seeds/001), run as written. The only
change: the seed's "/tmp/cyborgdb" is a fresh temporary directory, so runs do not share state.
The seed's placeholder b"..." is stored as is (storage does not unwrap); the second half of each
test repeats the flow with a KEK really wrapped by (moto's) AWS KMS and unwraps it."""

import io
import contextlib

import cyborgdb_core as cyborgdb


def test_create_push_get_delete_and_rotation_snippets_as_written(tmp_path):
    # create_index_kms
    config = cyborgdb.StorageConfig.disk(str(tmp_path / "cyborgdb"))

    blob = cyborgdb.KMSBlob(
        kms_name="prod-kms",
        provider="aws-kms",
        key_id="arn:aws:kms:us-east-1:123456789012:key/abcd-...",
        region="us-east-1",
        wrapped_kek=b"...",  # KEK wrapped by the external KMS
        version=1,
    )

    cyborgdb.create_index_kms(config, "my_index", blob)
    assert cyborgdb.get_index_kms(config, "my_index").wrapped_kek == b"..."

    # push_index_kms: rotate the wrapped KEK without caring whether an envelope already exists
    blob.wrapped_kek = b"...new wrapped kek..."
    blob.version = 2
    cyborgdb.push_index_kms(config, "my_index", blob)

    # get_index_kms
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        blob = cyborgdb.get_index_kms(config, "my_index")
        print(blob.provider, blob.key_id, blob.version)
    assert out.getvalue() == "aws-kms arn:aws:kms:us-east-1:123456789012:key/abcd-... 2\n"

    # Rotation
    blob = cyborgdb.get_index_kms(config, "my_index")
    blob.wrapped_kek = b"...newly wrapped kek..."
    blob.version += 1
    cyborgdb.push_index_kms(config, "my_index", blob)
    stored = cyborgdb.get_index_kms(config, "my_index")
    assert (stored.wrapped_kek, stored.version) == (b"...newly wrapped kek...", 3)

    # delete_index_kms (idempotent)
    cyborgdb.delete_index_kms(config, "my_index")
    cyborgdb.delete_index_kms(config, "my_index")
    assert cyborgdb.list_index_kms(config) == []


def test_seed_flow_with_a_real_wrapped_kek(tmp_path, moto, kms_client):
    config = cyborgdb.StorageConfig.disk(tmp_path / "cyborgdb")
    wrapped, kek = kms_client.wrap_new_kek("my_index", "vendor-default")
    blob = cyborgdb.KMSBlob(
        kms_name="vendor-default",
        provider="aws-kms",
        key_id=wrapped.key_id,
        region="us-east-1",
        wrapped_kek=wrapped.wrapped_kek,
        version=1,
    )
    cyborgdb.create_index_kms(config, "my_index", blob)
    resolver = cyborgdb.KEKResolver(kms_client)
    assert resolver.resolve(config, "my_index") == kek

    # Rotation: re-wrap the same KEK with the external KMS, push, bump version.
    blob = cyborgdb.get_index_kms(config, "my_index")
    blob.wrapped_kek = kms_client.wrap_kek("my_index", "vendor-default", kek).wrapped_kek
    blob.version += 1
    cyborgdb.push_index_kms(config, "my_index", blob)
    assert cyborgdb.get_index_kms(config, "my_index").version == 2
    assert kms_client.unwrap_kek("my_index", cyborgdb.get_index_kms(config, "my_index")) == kek
    assert resolver.resolve(config, "my_index") == kek


def test_keyword_arguments_use_the_documented_names(tmp_path):
    config = cyborgdb.StorageConfig.disk(path=tmp_path)
    blob = cyborgdb.KMSBlob(provider="none")
    cyborgdb.create_index_kms(config_location=config, index_name="i", blob=blob)
    cyborgdb.push_index_kms(config_location=config, index_name="i", blob=blob)
    got = cyborgdb.get_index_kms(config_location=config, index_name="i")
    assert got.provider == "none"
    assert cyborgdb.list_index_kms(config_location=config) == ["i"]
    cyborgdb.delete_index_kms(config_location=config, index_name="i")


def test_kmsblob_defaults_are_the_documented_ones():
    blob = cyborgdb.KMSBlob()
    assert (blob.kms_name, blob.provider, blob.key_id, blob.region) == ("", "", "", "")
    assert (blob.wrapped_kek, blob.version, blob.created_at) == (b"", 1, 0)
