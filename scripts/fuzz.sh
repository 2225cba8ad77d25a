#!/usr/bin/env bash
# Fuzzes the library with cargo-fuzz (libFuzzer + AddressSanitizer) — targets in fuzz/:
#   envelope_decode  the envelope decoder, directly and through the disk store
#   registry_yaml    the registry YAML loader and ${} expansion
#   index_name       the index-name codec (name -> storage key -> name)
#   c_abi            the C ABI's string, handle and option arguments (no network)
#   audit_log        the custody audit's record decoder, verify_audit and read_audit on disk
#
# Usage:
#   scripts/fuzz.sh smoke                 each target for a few seconds from its seeds and kept
#                                         regressions (scripts/test.sh runs this)
#   scripts/fuzz.sh long SECONDS [TARGET...]
#                                         each target (or the ones named) for SECONDS, one at a
#                                         time, growing fuzz/corpus/<target>; logs in fuzz/logs/
#   scripts/fuzz.sh build                 build the targets only
#
# Needs the nightly toolchain (rustup; it cannot be installed from here) and cargo-fuzz, which this
# script installs from crates.io if missing. Without them smoke prints "SKIPPED: ..." and exits 0;
# the other modes fail. A crash, leak, timeout (10 s per input) or out-of-memory (512 MB) fails
# the run; libFuzzer saves the input under fuzz/artifacts/<target>/ (keep it in
# fuzz/regressions/<target>/ and add a test in tests/, see docs/fuzzing.md).
# Builds go to fuzz/target (its own cargo workspace; the root build never compiles fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

readonly CARGO_FUZZ_VERSION=0.13.2
readonly TARGETS=(envelope_decode registry_yaml index_name c_abi audit_log)
readonly SMOKE_SECONDS=5
# Every run: bounded memory (an expansion bomb is a finding, not a dead machine) and time.
readonly LIMITS=(-rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10)
# AddressSanitizer keeps up to 256 MB of freed memory in quarantine by default, which alone pushes
# the thread-heavy c_abi target past 512 MB RSS with a live heap of ~30 MB; 32 MB still catches
# use-after-free of recent allocations. (detect_odr_violation=0 as cargo-fuzz sets for its build.)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0:quarantine_size_mb=32}

mode=${1:-smoke}
case "$mode" in
  smoke | build) ;;
  long)
    seconds=${2:?usage: scripts/fuzz.sh long SECONDS [TARGET...]}
    [[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, not $seconds" >&2; exit 2; }
    ;;
  *) echo "usage: scripts/fuzz.sh smoke | long SECONDS [TARGET...] | build" >&2; exit 2 ;;
esac

# The same no-network environment as scripts/test.sh: cargo-fuzz runs the targets itself, so
# .cargo/config.toml's [env] does not reach them. No target makes a network call; this makes sure.
export AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:9
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE

unavailable() {
  if [[ "$mode" == smoke ]]; then
    echo "SKIPPED: fuzz smoke run: $*"
    exit 0
  fi
  echo "fuzz: $*" >&2
  exit 1
}

if ! command -v rustup >/dev/null || ! rustup run nightly rustc --version >/dev/null 2>&1; then
  unavailable "no rustup or no nightly Rust toolchain (rustup toolchain list); cargo-fuzz needs one"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "=== installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked \
    || unavailable "cargo-fuzz is not installed and could not be installed"
fi

build_start=$SECONDS
cargo +nightly fuzz build
echo "=== fuzz targets built in $((SECONDS - build_start)) s"
[[ "$mode" == build ]] && exit 0

# The input dirs libFuzzer reads for `target` after the corpus dir it writes to.
inputs() {
  local dir
  for dir in "fuzz/seeds/$1" "fuzz/regressions/$1"; do
    [[ -d "$dir" ]] && echo "$dir"
  done
  return 0
}

# libFuzzer's closing statistics as one line: executions, seconds, coverage, corpus size.
summary() {
  local log=$1 target=$2
  local execs secs cov corpus
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n1 | cut -d' ' -f2)
  echo "fuzz $target: ${execs:-?} executions in ${secs:-?} s, cov ${cov:-?}, corpus ${corpus:-?}"
}

run_target() {
  local target=$1 seconds=$2 corpus=$3 log=$4
  local -a dirs
  mapfile -t dirs < <(inputs "$target")
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  if ! cargo +nightly fuzz run "$target" "$corpus" "${dirs[@]}" -- \
      "${LIMITS[@]}" -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "FAILED: fuzz target $target (log: $log; input saved under fuzz/artifacts/$target/)" >&2
    return 1
  fi
  summary "$log" "$target"
}

if [[ "$mode" == smoke ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p fuzz/logs
  start=$SECONDS
  for target in "${TARGETS[@]}"; do
    run_target "$target" "$SMOKE_SECONDS" "$work/corpus-$target" "fuzz/logs/smoke-$target.log"
  done
  echo "=== fuzz smoke run passed (${#TARGETS[@]} targets, $((SECONDS - start)) s of fuzzing)"
  exit 0
fi

shift 2
selected=("$@")
[[ ${#selected[@]} -gt 0 ]] || selected=("${TARGETS[@]}")
mkdir -p fuzz/logs
for target in "${selected[@]}"; do
  log="fuzz/logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
  echo "=== $target for $seconds s (log: $log)"
  run_target "$target" "$seconds" "fuzz/corpus/$target" "$log"
done
