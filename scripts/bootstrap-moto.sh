#!/usr/bin/env bash
# Installs the AWS API emulator the tests and benchmarks run against — moto server, plus boto3 for
# the side-by-side benchmarks — into .venv-moto/ (gitignored), once. Prints the venv's python.
# Usage: scripts/bootstrap-moto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-moto
# Pinned so every machine tests against the same emulator.
requirements=("moto[server]==5.2.5" "boto3==1.44.5")
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${requirements[*]}" ]; then
  echo "bootstrap-moto: installing ${requirements[*]} into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}" >&2
  echo "${requirements[*]}" > "$stamp"
fi
echo "$PWD/$venv/bin/python"
