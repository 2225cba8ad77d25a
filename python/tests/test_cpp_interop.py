"""Interop with C++ (include/cyborgdb_core/index_kms.hpp, as an engine uses it): a small C++
program, python/tests/cpp_peer.cpp, compiled here against the shared library CMake builds
(build/libcyborgdb_kms.so, or $CYB_KMS_LIB) and run in its own process. A KEK created from Python
resolves from C++ to the same bytes, and envelopes cross both ways on one disk root."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

import cyborgdb_core as cyborgdb
from conftest import REPO
from test_interop import c_library


@pytest.fixture(scope="module")
def cpp_peer(tmp_path_factory) -> pathlib.Path:
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    assert compiler, "no C++ compiler: scripts/bootstrap.sh installs g++"
    library = pathlib.Path(c_library()).resolve()
    binary = tmp_path_factory.mktemp("cpp_peer") / "cpp_peer"
    subprocess.run(
        [compiler, "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'include'}",
         str(pathlib.Path(__file__).with_name("cpp_peer.cpp")), "-o", str(binary),
         str(library), f"-Wl,-rpath,{library.parent}"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return binary


def run(peer: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(peer), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def master_key(tmp_path: pathlib.Path) -> pathlib.Path:
    """The development-only "local" provider's key file, for slot "dev" on both sides."""
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    return key


def test_a_kek_created_from_python_resolves_from_cpp_to_the_same_bytes(
    cpp_peer, master_key, tmp_path
):
    root = tmp_path / "keystore"
    client = cyborgdb.KMSClient(allow_local_provider=True)
    client.add_slot("dev", provider="local", key_id=f"file:{master_key}")
    with cyborgdb.KEKResolver(client).create_index(
        cyborgdb.StorageConfig.disk(root), "orders", kms_name="dev"
    ) as kek:
        expected = bytes(kek).hex()
    done = run(cpp_peer, "resolve", str(master_key), str(root), "orders")
    assert (done.returncode, done.stdout, done.stderr) == (0, expected + "\n", "")

    # The C++ side's errors are the library's: an index Python never created.
    missing = run(cpp_peer, "resolve", str(master_key), str(root), "no-such-index")
    assert missing.returncode == 1
    assert "no-such-index" in missing.stderr and missing.stdout == ""


def test_envelopes_cross_between_cpp_and_python_on_one_disk_root(cpp_peer, tmp_path):
    root = tmp_path / "keystore"
    config = cyborgdb.StorageConfig.disk(root)
    wrapped = bytes(range(60))
    from_python = cyborgdb.KMSBlob(kms_name="prod-kms", provider="aws-kms",
                                   key_id="alias/cyborgdb-default", region="us-east-1",
                                   wrapped_kek=wrapped, version=3, created_at=1_700_000_123)
    cyborgdb.create_index_kms(config, "from-python", from_python)
    done = run(cpp_peer, "get", str(root), "from-python")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:7] == [
        "prod-kms", "aws-kms", "alias/cyborgdb-default", "us-east-1", wrapped.hex(), "3",
        "1700000123",
    ]

    done = run(cpp_peer, "push", str(root), "from-cpp", "prod-kms", "aws-kms",
               "alias/cyborgdb-default", "us-east-1", wrapped.hex(), "7", "1700000456")
    assert (done.returncode, done.stderr) == (0, "")
    got = cyborgdb.get_index_kms(config, "from-cpp")
    assert got == cyborgdb.KMSBlob(kms_name="prod-kms", provider="aws-kms",
                                   key_id="alias/cyborgdb-default", region="us-east-1",
                                   wrapped_kek=wrapped, version=7, created_at=1_700_000_456)
    assert sorted(cyborgdb.list_index_kms(config)) == ["from-cpp", "from-python"]
