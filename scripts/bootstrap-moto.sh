#!/usr/bin/env bash
# Installs the AWS API emulator the tests and benchmarks run against — moto server, plus boto3 for
# the side-by-side benchmarks — and the Python package's build and test tools (maturin builds the
# `cyborgdb_core` wheel from python/, pytest and hypothesis run python/tests) into .venv-moto/
# (gitignored), once. Prints the venv's python.
# Usage: scripts/bootstrap-moto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-moto
# Pinned so every machine tests against the same emulator.
requirements=("moto[server]==5.2.5" "boto3==1.44.5" "maturin==1.16.0" "pytest==9.2.0" "hypothesis==6.170.15")
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${requirements[*]}" ]; then
  echo "bootstrap-moto: installing ${requirements[*]} into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}" >&2
  echo "${requirements[*]}" > "$stamp"
fi
echo "$PWD/$venv/bin/python"
