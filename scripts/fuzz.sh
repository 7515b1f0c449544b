#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets in fuzz/ (the sans-IO codecs of sockeye-proto).
#
#   scripts/fuzz.sh --smoke [SECONDS] [TARGET...]   every target (or the named ones) for
#                                                   SECONDS each, 20 by default: the CI check
#   scripts/fuzz.sh [TARGET...]                     the longer run: 300 s per target, or
#                                                   FUZZ_SECONDS=3600 scripts/fuzz.sh calc_stream
#   FUZZ_STABLE=1 scripts/fuzz.sh --smoke           force the stable, no-sanitizer build
#
# It installs cargo-fuzz if it is missing (`cargo install cargo-fuzz --locked`, about 30 s),
# builds every target once (about 50 s clean), then runs each one from its committed seeds
# (fuzz/seeds/TARGET) into a working corpus (fuzz/corpus/TARGET, ignored by git). With the
# nightly toolchain that rustup lists it builds with AddressSanitizer (`cargo +nightly fuzz`);
# on stable alone, `-s none`: no ASan, but libFuzzer still finds panics (DEPENDENCIES.md,
# "Fuzzing (measured)"). Debug assertions and overflow checks are on either way.
#
# It exits 1 if any target crashed (a panic is a crash), printing the artifact that
# reproduces it: `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`. Every run
# is bounded (libFuzzer's -max_total_time, a per-input -timeout, and `timeout` around the
# whole process as a backstop) and runs in the foreground, so nothing is left behind.
# Logs: fuzz/target/fuzz-logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

seconds="${FUZZ_SECONDS:-300}"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke)
      seconds=20
      if [ $# -gt 1 ] && [[ "$2" =~ ^[0-9]+$ ]]; then
        seconds="$2"
        shift
      fi
      ;;
    -h | --help) usage ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage ;;
    *) targets+=("$1") ;;
  esac
  shift
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, not '$seconds'" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  start=$(date +%s)
  cargo install cargo-fuzz --locked
  echo "fuzz.sh: cargo-fuzz installed in $(($(date +%s) - start)) s"
fi

# Nightly when rustup has it (ASan); otherwise stable without a sanitizer. FUZZ_STABLE=1
# takes the stable path even where nightly exists (to check that path still works).
toolchain=()
build_flags=(--fuzz-dir fuzz -O -a)
if [ "${FUZZ_STABLE:-0}" != 1 ] && command -v rustup >/dev/null \
  && rustup toolchain list | grep -q '^nightly'; then
  toolchain=(+nightly)
  mode="nightly, AddressSanitizer"
else
  build_flags+=(-s none)
  mode="stable, no sanitizer"
fi

mapfile -t known < <(cargo fuzz list --fuzz-dir fuzz)
if [ ${#known[@]} -eq 0 ]; then
  echo "fuzz.sh: cargo fuzz list found no targets in fuzz/" >&2
  exit 1
fi
for target in "${targets[@]}"; do
  if ! printf '%s\n' "${known[@]}" | grep -qxF -- "$target"; then
    echo "fuzz.sh: no fuzz target '$target' (targets: ${known[*]})" >&2
    exit 2
  fi
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=("${known[@]}")
fi

echo "fuzz.sh: building every target ($mode)"
start=$(date +%s)
cargo "${toolchain[@]}" fuzz build "${build_flags[@]}"
echo "fuzz.sh: built in $(($(date +%s) - start)) s"

# The fuzzer runs as a child we can always stop: `timeout` kills its whole process group
# when the backstop expires, and an interrupt of this script is passed on to it.
child=""
stop_child() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
    child=""
  fi
}
trap 'stop_child; exit 130' INT TERM
trap stop_child EXIT

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  seeds="fuzz/seeds/$target"
  mkdir -p "$corpus" "$seeds" "fuzz/artifacts/$target"
  log="$logs/$target.log"
  echo "fuzz.sh: running $target for $seconds s"
  set +e
  timeout --kill-after=10 $((seconds + 120)) \
    cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 &
  child=$!
  wait "$child"
  status=$?
  child=""
  set -e

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(find "$corpus" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    echo "fuzz.sh: $target ok: ${execs:-?} executions, ${rate:-?} exec/s, corpus $units inputs"
  else
    failed+=("$target")
    echo "fuzz.sh: $target FAILED (exit $status), full log in $PWD/$log:" >&2
    # The panic message (or sanitizer report) says what broke; the rest is backtrace.
    grep -m1 -A6 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" >&2 \
      || tail -n 20 "$log" >&2
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -n "$artifact" ]; then
      echo "fuzz.sh: crash input: $PWD/$artifact" >&2
      echo "fuzz.sh: reproduce (from $PWD): cargo ${toolchain[*]:+${toolchain[*]} }fuzz run ${build_flags[*]} $target $artifact" >&2
    elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      echo "fuzz.sh: $target did not stop within its time bound" >&2
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, no crash"
