#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the C header drift check, then CTest (all C++
# tests plus `cargo test`), then the C++ tests again under ASan+UBSan, then the Python package's
# tests (pytest, python/tests), then a short run of every fuzz target (scripts/fuzz.sh smoke).
# Installs what is missing.
# Usage: scripts/test.sh        (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Tests never reach the network or the EC2 metadata service: dummy credentials, an explicit
# region, and a default endpoint on a closed loopback port (tests point clients at the emulator).
# cargo sets the same for its own test processes (.cargo/config.toml).
export AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:9
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE

step() { printf '\n=== %s\n' "$*"; }

step "bootstrap"
scripts/bootstrap.sh
# The AWS API emulator (moto server) and boto3, in .venv-moto; tests start it themselves.
CYB_MOTO_PYTHON=$(scripts/bootstrap-moto.sh)
export CYB_MOTO_PYTHON

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "dependencies: crate budget, duplicates, licences, THIRD_PARTY_NOTICES"
scripts/deps.py selftest
scripts/deps.py check
scripts/deps.py notices --check
# The command line links the library and its own crates (clap, indicatif, serde_json, ...).
scripts/deps.py check --package cyborgdb-kms-cli --max-crates 210
scripts/deps.py notices --package cyborgdb-kms-cli --output cli/THIRD_PARTY_NOTICES --check
# The check must fail on a violation: a budget the tree cannot meet and a too-small allowlist.
expect_deps_failure() {
  local expected=$1 out
  shift
  if out=$(scripts/deps.py check "$@" 2>&1); then
    echo "scripts/deps.py check $* passed; it must fail with: $expected" >&2
    exit 1
  fi
  grep -qF -- "$expected" <<<"$out" || { echo "$out" >&2; echo "expected: $expected" >&2; exit 1; }
}
expect_deps_failure "duplicated, budget 0" --max-duplicates 0
expect_deps_failure "crates linked, budget 10" --max-crates 10
expect_deps_failure "is not satisfiable with the allowlist" --only-licenses MIT
stale_notices=$(mktemp)
cp THIRD_PARTY_NOTICES "$stale_notices"
echo "a line the generator does not write" >> "$stale_notices"
if scripts/deps.py notices --check --output "$stale_notices" 2>/dev/null; then
  echo "scripts/deps.py notices --check accepted a stale notices file" >&2
  exit 1
fi
rm -f "$stale_notices"

step "build and C header drift check"
cargo build --locked
if git rev-parse --git-dir >/dev/null 2>&1; then
  if ! git diff --exit-code -- include/cyborgdb_core/index_kms.h; then
    echo "include/cyborgdb_core/index_kms.h is out of date: commit the header cargo build generated" >&2
    exit 1
  fi
fi

step "FlatBuffers code drift check"
scripts/regen-flatbuffers.sh
if git rev-parse --git-dir >/dev/null 2>&1; then
  if ! git diff --exit-code -- src/codec/kms_blob_generated.rs; then
    echo "src/codec/kms_blob_generated.rs differs from what flatc generates from schemas/kms_blob.fbs" >&2
    exit 1
  fi
fi

step "CTest: C++ tests and cargo test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DCYB_CARGO_TARGET_DIR="$PWD/target" >/dev/null
cmake --build build -j"$(nproc)"
(cd build && ctest --output-on-failure -j"$(nproc)")

step "CLI: the cyborgdb-kms binary's tests (cli/tests)"
cargo test --locked -p cyborgdb-kms-cli

step "CTest under ASan+UBSan: C++ tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCYB_CARGO_TARGET_DIR="$PWD/target" -DCYB_SANITIZE=ON -DCYB_CARGO_TEST=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
(cd build-asan && ctest --output-on-failure -j"$(nproc)")

step "Python package: dev wheel (shared target dir), install into .venv-moto, pytest"
# maturin (from scripts/bootstrap-moto.sh) builds python/ in the workspace's one target dir with
# the dev profile; the tests start their own moto server and reach the C ABI through the shared
# library the CTest step built (build/libcyborgdb_kms.so).
rm -rf target/wheels
"$(dirname "$CYB_MOTO_PYTHON")/maturin" build --profile dev --locked -m python/Cargo.toml \
  --interpreter "$CYB_MOTO_PYTHON" --out target/wheels
"$CYB_MOTO_PYTHON" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
  target/wheels/cyborgdb_core-*.whl
# From the repository root, so the installed wheel is imported, not the source dir python/.
"$CYB_MOTO_PYTHON" -m pytest -q -p no:cacheprovider python/tests

step "fuzz smoke run (cargo-fuzz, nightly; each target a few seconds)"
scripts/fuzz.sh smoke

step "all checks passed"
