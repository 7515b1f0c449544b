#!/usr/bin/env bash
# Peer-fuzzer benchmark (issue 8): cases per second of `sockeye fuzz` at its default
# settings (random inputs of 0-1024 bytes, one connection per case, 1 s timeout) against
# a local echo server, next to the netcat way of the seed (a shell loop of
# `head -c 1024 /dev/urandom | ncat HOST PORT`), same server, same run.
#
#   sudo benches/fuzz/run.sh [--cases N] [--sockeye PATH]
#
# Everything runs inside one network namespace this script creates (skf-<pid>, lo only)
# and deletes on exit; the echo server (benches/fuzz/echo_server.py, bounded lifetime)
# is stopped by PID. Results are printed, never written to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
ROOT=$PWD
CASES=5000
NCAT_CASES=500
SOCKEYE="$ROOT/target/release/sockeye"
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) CASES="$2"; NCAT_CASES=$(( $2 / 10 )); shift 2 ;;
    --sockeye) SOCKEYE="$2"; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$SOCKEYE" ] || { echo "run.sh: no sockeye binary at $SOCKEYE (cargo build --release)" >&2; exit 2; }
command -v ncat >/dev/null || apt-get install -y -qq ncat >/dev/null
NS="skf-$$"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" python3 "$ROOT/benches/fuzz/echo_server.py" 7007 600 &
SERVER_PID=$!
for _ in $(seq 50); do
  ip netns exec "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/7007' 2>/dev/null && break
  sleep 0.1
done

echo "sockeye fuzz: $CASES cases, default settings"
out=$(ip netns exec "$NS" timeout 600 "$SOCKEYE" fuzz --json --seed 1 --cases "$CASES" \
  --artifacts "/tmp/skf-$$" 127.0.0.1:7007 | tail -1)
echo "  $out"
s_rate=$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["cases_per_sec"])' "$out")

echo "ncat loop: $NCAT_CASES cases of head -c 1024 /dev/urandom | ncat"
start=$(date +%s.%N)
ip netns exec "$NS" timeout 600 bash -c "for i in \$(seq $NCAT_CASES); do head -c 1024 /dev/urandom | ncat 127.0.0.1 7007 >/dev/null; done"
end=$(date +%s.%N)
n_rate=$(python3 -c "print('%.0f' % ($NCAT_CASES / ($end - $start)))")
echo
echo "| tool | cases/s |"
echo "| --- | --- |"
echo "| sockeye fuzz (defaults) | $s_rate |"
echo "| shell loop of ncat | $n_rate |"
python3 -c "print('ratio sockeye/ncat loop: %.1f x' % ($s_rate / max($n_rate, 1)))"
rm -rf "/tmp/skf-$$"
