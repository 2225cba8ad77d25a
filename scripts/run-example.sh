#!/usr/bin/env bash
# Builds the library and examples/quickstart.cpp with CMake, then runs the quickstart on Disk
# storage in build/quickstart-data (recreated each run). Usage: scripts/run-example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DCYB_CARGO_TARGET_DIR="$PWD/target" >/dev/null
cmake --build build --target quickstart -j"$(nproc)"
rm -rf build/quickstart-data
./build/quickstart build/quickstart-data
