"""KEKs and credentials never appear in a repr, str or exception text; what happens across
os.fork()."""

import base64
import json
import os

import pytest

import cyborgdb_core as cyborgdb
from conftest import REGION, registry_yaml, s3_storage


def forms(secret: bytes):
    """Every way a secret could leak into text."""
    return [
        secret.hex(),
        secret.hex().upper(),
        repr(secret)[2:-1],
        base64.b64encode(secret).decode(),
        secret.decode("latin-1"),
        ", ".join(str(b) for b in secret[:8]),
    ]


def test_keks_and_credentials_never_appear_in_text(kms_client, moto, tmp_path):
    storage = cyborgdb.StorageConfig.disk(tmp_path)
    resolver = cyborgdb.KEKResolver(kms_client)
    kek = resolver.create_index(storage, "idx", kms_name="vendor-default")
    raw = bytes(kek)
    own = os.urandom(32)
    texts = [repr(kek), str(kek), repr(resolver), repr(kms_client), repr(resolver.stats()), repr(storage)]
    texts += [repr(cyborgdb.get_index_kms(storage, "idx"))]
    resolved = resolver.resolve(storage, "idx")
    texts += [repr(resolved), str(resolved)]
    resolver.create_index(storage, "own", index_key=own)
    texts += [repr(e) for e in resolver.check_drift(storage)]
    errors = []
    for call in [
        lambda: cyborgdb.KEK(raw[:31]),
        lambda: cyborgdb.KEK(raw + b"\x00"),
        lambda: resolver.create_index(storage, "idx", index_key=own),
        lambda: resolver.create_index(storage, "x", index_key=own[:16]),
        lambda: resolver.create_index(storage, "x", kms_name="vendor-default", index_key=own),
        lambda: kms_client.wrap_kek("idx", "no-slot", kek),
        lambda: kms_client.wrap_kek("idx", "short-key", kek),
        lambda: kms_client.wrap_kek("", "vendor-default", kek),
        lambda: kms_client.unwrap_kek("other", cyborgdb.get_index_kms(storage, "idx")),
        lambda: resolver.resolve(storage, "own"),
    ]:
        with pytest.raises(cyborgdb.Error) as err:
            call()
        errors.append(err.value)
    texts += [repr(e) for e in errors] + [str(e) for e in errors] + [e.message for e in errors]
    creds = cyborgdb.S3Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET", "SESSIONTOKENSECRET")
    texts.append(repr(creds))
    with pytest.raises(cyborgdb.InvalidArgumentError) as err:
        cyborgdb.StorageConfig.s3("Bad_Bucket", endpoint=moto.endpoint, credentials=creds)
    texts += [str(err.value), repr(err.value)]
    blob = " | ".join(texts)
    assert "AKIDEXAMPLE" in repr(creds)
    for secret in (raw, own):
        for form in forms(secret):
            assert form not in blob
    assert "SECRET" not in blob
    kek.wipe()


def test_fork_child_fails_clearly_and_can_start_over(kms_client, moto, tmp_path):
    """A KMS client, resolver or S3 store made before fork() refuses every call in the child
    with ForkedProcessError; memory and disk stores keep working; new objects work."""
    disk = cyborgdb.StorageConfig.disk(tmp_path)
    memory = cyborgdb.StorageConfig.memory()
    s3_prefix = f"fork/{os.getpid()}-{os.urandom(4).hex()}"
    s3 = s3_storage(moto, s3_prefix)
    resolver = cyborgdb.KEKResolver(kms_client)
    kek = resolver.create_index(disk, "idx", kms_name="vendor-default")
    cyborgdb.push_index_kms(s3, "idx", cyborgdb.get_index_kms(disk, "idx"))
    cyborgdb.push_index_kms(memory, "idx", cyborgdb.get_index_kms(disk, "idx"))
    assert resolver.resolve(s3, "idx") == kek  # the runtime's threads run in the parent

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        report = {}
        try:
            def outcome(call):
                try:
                    call()
                    return "ok"
                except cyborgdb.Error as e:
                    return [type(e).__name__, e.code.name, e.message]

            report["client"] = outcome(lambda: kms_client.wrap_new_kek("idx", "vendor-default"))
            report["resolver"] = outcome(lambda: resolver.resolve(disk, "idx"))
            report["s3"] = outcome(lambda: cyborgdb.get_index_kms(s3, "idx"))
            report["disk"] = outcome(lambda: cyborgdb.get_index_kms(disk, "idx"))
            report["memory"] = outcome(lambda: cyborgdb.get_index_kms(memory, "idx"))
            fresh = cyborgdb.KMSClient(registry_yaml=registry_yaml(moto), endpoint_url=moto.endpoint)
            report["fresh"] = bytes(cyborgdb.KEKResolver(fresh).resolve(disk, "idx")).hex()
            report["fresh_s3"] = outcome(lambda: cyborgdb.get_index_kms(s3_storage(moto, s3_prefix), "idx"))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            report["crash"] = repr(e)
        finally:
            os.write(write_end, json.dumps(report).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert "crash" not in report, report
    for name in ("client", "resolver", "s3"):
        kind, code, message = report[name]
        assert (kind, code) == ("ForkedProcessError", "FORKED_PROCESS"), report
        assert "fork" in message.lower()
    assert report["disk"] == "ok" and report["memory"] == "ok"
    assert report["fresh"] == bytes(kek).hex()
    assert report["fresh_s3"] == "ok"
    assert resolver.resolve(s3, "idx") == kek  # the parent is unaffected

