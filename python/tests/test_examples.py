"""The front page's Python example (examples/quickstart.py, shown verbatim in README.md) runs as
a user would run it, in a fresh directory, and fails clearly where it should."""

from __future__ import annotations

import os
import pathlib
import secrets
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def run_example(work_dir: pathlib.Path, master_key: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CYB_DEV_MASTER_KEY", None)
    if master_key is not None:
        env["CYB_DEV_MASTER_KEY"] = master_key
    return subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=work_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_quickstart_creates_and_resolves_one_kek(tmp_path: pathlib.Path) -> None:
    key = secrets.token_hex(32)
    first = run_example(tmp_path, key)
    assert (first.returncode, first.stdout, first.stderr) == (0, "same KEK: yes\n", "")
    assert [p.name for p in (tmp_path / "example-data").iterdir()] == ["orders.kms"]
    envelope = (tmp_path / "example-data" / "orders.kms").read_bytes()

    # A second run is a strict insert on the same index: ALREADY_EXISTS, the envelope untouched.
    second = run_example(tmp_path, key)
    assert second.returncode == 1
    assert second.stderr.startswith('ALREADY_EXISTS: index "orders"'), second.stderr
    assert (tmp_path / "example-data" / "orders.kms").read_bytes() == envelope


def test_the_quickstart_without_a_master_key_fails_and_stores_nothing(tmp_path: pathlib.Path) -> None:
    run = run_example(tmp_path, None)
    assert run.returncode == 1
    assert run.stderr.startswith("KMS_KEY_NOT_FOUND: "), run.stderr
    assert run.stdout == ""
    data = tmp_path / "example-data"
    assert not data.exists() or not any(data.iterdir())
