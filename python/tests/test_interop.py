"""Interop with the C ABI (the shared library CMake builds, build/libcyborgdb_kms.so, or the one
$CYB_KMS_LIB names; the C++ header wraps it), in another process:
an envelope written from C is read from Python and vice versa, on the same disk root and the
same S3 prefix; a KEK created from Python resolves from C to the same bytes."""

import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

import cyborgdb_core as cyborgdb
from conftest import BUCKET, REPO, registry_yaml, s3_storage


def c_library() -> str:
    path = os.environ.get("CYB_KMS_LIB") or str(REPO / "build/libcyborgdb_kms.so")
    assert pathlib.Path(path).exists(), (
        f"{path} is missing: build it with `cmake -S . -B build && cmake --build build` "
        "(scripts/test.sh does), or set CYB_KMS_LIB"
    )
    return path


def c_peer(storage: str, *args: str, stdin: str = "") -> str:
    peer = pathlib.Path(__file__).with_name("c_abi_peer.py")
    done = subprocess.run(
        [sys.executable, str(peer), c_library(), storage, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def blob_json(blob: cyborgdb.KMSBlob) -> str:
    return json.dumps({
        "kms_name": blob.kms_name, "provider": blob.provider, "key_id": blob.key_id,
        "region": blob.region, "wrapped_kek": blob.wrapped_kek.hex(), "version": blob.version,
        "created_at": blob.created_at,
    })


@pytest.fixture(params=["disk", "s3"])
def shared_store(request, tmp_path):
    """(Python StorageConfig, the C peer's STORAGE argument) naming one store."""
    if request.param == "disk":
        return cyborgdb.StorageConfig.disk(tmp_path), f"disk:{tmp_path}"
    moto = request.getfixturevalue("moto")
    prefix = f"interop/{uuid.uuid4().hex}"
    return s3_storage(moto, prefix), f"s3:{moto.endpoint},{BUCKET},{prefix}"


def test_envelopes_cross_between_c_and_python(shared_store, wrapped):
    config, c_storage = shared_store
    blob, _ = wrapped
    blob.created_at = 1_700_000_123
    c_peer(c_storage, "write", "from-c", stdin=blob_json(blob))
    assert cyborgdb.get_index_kms(config, "from-c") == blob

    blob.version = 7
    blob.kms_name = "written by python"
    cyborgdb.create_index_kms(config, "from-python", blob)
    assert json.loads(c_peer(c_storage, "read", "from-python")) == json.loads(blob_json(blob))


def test_kek_created_from_python_resolves_from_c_to_the_same_bytes(shared_store, kms_client, moto, tmp_path):
    config, c_storage = shared_store
    resolver = cyborgdb.KEKResolver(kms_client)
    for slot in ("vendor-default", "customer-acme"):
        kek = resolver.create_index(config, f"py-{slot}", kms_name=slot)
        registry = tmp_path / "registry.yaml"
        registry.write_text(registry_yaml(moto))
        assert c_peer(c_storage, "resolve", f"py-{slot}", moto.endpoint, str(registry)) == bytes(kek).hex()
