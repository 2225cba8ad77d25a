"""Threads sharing one store, client and resolver; Hypothesis round-trips through every backend."""

import os
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cyborgdb_core as cyborgdb


def test_eight_threads_hammer_get_and_resolve_while_another_pushes(kms_client, tmp_path):
    storage = cyborgdb.StorageConfig.disk(tmp_path)
    resolver = cyborgdb.KEKResolver(kms_client)
    kek = resolver.create_index(storage, "hot", kms_name="vendor-default")
    base = cyborgdb.get_index_kms(storage, "hot")
    # The pusher cycles whole envelopes of one family: (version v, wrapped_kek = base + v bytes).
    # A reader must always see a whole one: wrapped_kek and version consistent.
    pushes = 200
    start = threading.Barrier(9)
    done = threading.Event()
    errors = []

    def pusher():
        start.wait()
        try:
            for version in range(2, pushes + 2):
                blob = cyborgdb.get_index_kms(storage, "hot")
                blob.version = version
                blob.key_id = f"{base.key_id}"
                blob.wrapped_kek = base.wrapped_kek  # same KEK: resolve stays valid
                blob.kms_name = base.kms_name
                cyborgdb.push_index_kms(storage, "hot", blob)
                other = cyborgdb.KMSBlob(provider="none", version=version)
                cyborgdb.push_index_kms(storage, f"side-{version % 7}", other)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    def reader():
        start.wait()
        seen = 0
        try:
            while not done.is_set() or seen < 20:
                got = cyborgdb.get_index_kms(storage, "hot")
                assert got.wrapped_kek == base.wrapped_kek and got.provider == base.provider
                assert 1 <= got.version <= pushes + 1
                assert resolver.resolve(storage, "hot") == kek
                seen += 1
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(8)] + [threading.Thread(target=pusher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cyborgdb.get_index_kms(storage, "hot").version == pushes + 1


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=40
).filter(lambda s: len(s.encode()) <= cyborgdb.MAX_INDEX_NAME_LEN)
fields = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=60)


@st.composite
def blobs(draw):
    """Valid envelopes: any text without NUL, the provider's required fields non-empty."""
    if draw(st.booleans()) and draw(st.booleans()):
        return cyborgdb.KMSBlob(provider="none", version=draw(st.integers(0, 2**32 - 1)),
                                created_at=draw(st.integers(1, 2**63 - 1)))
    wrapped = draw(st.binary(min_size=1, max_size=300))
    return cyborgdb.KMSBlob(
        kms_name=draw(fields.filter(bool)),
        provider=draw(st.sampled_from(["aws", "aws-kms"])),
        key_id=draw(fields.filter(bool)),
        region=draw(fields.filter(bool)),
        wrapped_kek=wrapped,
        version=draw(st.integers(0, 2**32 - 1)),
        created_at=draw(st.integers(1, 2**63 - 1)),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, blob=blobs())
def test_arbitrary_valid_blobs_and_names_round_trip(storage, name, blob):
    cyborgdb.push_index_kms(storage, name, blob)
    assert cyborgdb.get_index_kms(storage, name) == blob
    assert name in cyborgdb.list_index_kms(storage)
    cyborgdb.delete_index_kms(storage, name)
    assert name not in cyborgdb.list_index_kms(storage)
