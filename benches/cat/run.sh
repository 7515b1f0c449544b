#!/usr/bin/env bash
# `sockeye cat` benchmarks (issue 4) against ncat, OpenBSD nc and socat, in one run, inside
# a network namespace this script creates (lo only; everything on 127.0.0.1 there).
#
#   sudo benches/cat/run.sh [--size 4G] [--runs 3] [--clients 10000]
#                           [--only throughput|default|broker] [--sockeye PATH]
#
# throughput  SIZE bytes of /dev/zero through stdin of a client to a listener writing to
#             /dev/null, per tool: sockeye (`cat --send-only` -> `cat -l --recv-only`), ncat
#             (same flags), nc (`-N` -> `-l -d`), socat (`-u STDIN TCP:` -> `-u TCP-LISTEN:
#             STDOUT`). Wall time from the client's start until both ends exited; tools
#             alternate run by run. A run counts only if both ends exit 0; one extra run per
#             tool pipes the listener into `wc -c` to check the byte count.
# default     ncat's default path (no --send-only/--recv-only on either side), SIZE bytes,
#             four cases per tool: the listener receiving (`TOOL -l`, its stdin
#             left open like a terminal's; `> OUT`) from `head -c SIZE /dev/zero | TOOL HOST PORT` or
#             from `TOOL HOST PORT < FILE`; the listener sending (`head ... | TOOL -l` or
#             `TOOL -l < FILE`) to `TOOL HOST PORT > OUT` (stdin left open). Tools: sockeye,
#             ncat, nc (-N on both sides: FIN at stdin's EOF), socat (STDIO). The
#             receiving end writes to OUT (on /dev/shm); wall time from the client's start
#             until OUT holds SIZE bytes, because an end whose stdin stays open does not
#             always end the session by itself (ncat's and nc's clients wait for their
#             stdin's EOF, sockeye's listener too since a peer's FIN ends only what the
#             peer sends); the script then stops what still runs and says which ends
#             exited by themselves. Tools alternate run by run.
# broker      benches/cat/broker_load.py against `sockeye cat --broker`: --clients
#             connected clients, 5 messages each fanned out to the other N-1 (latency until
#             the last copy was read), RSS per idle client from /proc; then 100 clients that
#             never read are attached and one client floods 64 MiB: the three readers must
#             get every byte. ncat --broker is run with its default (100 clients) and with
#             -m N (it uses select(): it cannot go past fd 1,024).
#
# FILE is SIZE zero bytes made once under /tmp (read once before the runs, so it is in the
# page cache); OUT goes to /dev/shm and is deleted after each run.
#
# Needs root, iproute2, python3, ncat, netcat-openbsd, socat (apt-get install ncat
# netcat-openbsd socat). An exit trap kills what the script started (by PID) and deletes the
# namespace. Results are printed, never written to BENCHMARKS.md.
set -euo pipefail

main() {
SELF=$(realpath "$0")
HERE=$(dirname "$SELF")
ROOT=$(realpath "$HERE/../..")
cd "$ROOT"

SIZE=4G
RUNS=3
CLIENTS=10000
ONLY=
SOCKEYE=target/release/sockeye
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --sockeye) SOCKEYE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SOCKEYE=$(realpath "$SOCKEYE")
[ "$(id -u)" = 0 ] || { echo "run as root (network namespace)" >&2; exit 2; }
[ -x "$SOCKEYE" ] || { echo "no $SOCKEYE: cargo build --release" >&2; exit 2; }
for t in ncat nc socat python3 ip; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install ncat netcat-openbsd socat)" >&2; exit 2; }
done

NS=skcat-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -f "/tmp/skcat-$$.zero" "/dev/shm/skcat-$$.out"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

wait_listen() { # port
  for _ in $(seq 1 250); do
    in_ns ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.02
  done
  echo "nothing listens on $1" >&2
  return 1
}

PORT=5000
listener_cmd() { # tool
  case "$1" in
    sockeye) echo "$SOCKEYE cat -l --recv-only 127.0.0.1 $PORT" ;;
    ncat) echo "ncat -l --recv-only 127.0.0.1 $PORT" ;;
    nc) echo "nc -l -d 127.0.0.1 $PORT" ;;
    socat) echo "socat -u TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr STDOUT" ;;
  esac
}
client_cmd() { # tool
  case "$1" in
    sockeye) echo "$SOCKEYE cat --send-only 127.0.0.1 $PORT" ;;
    ncat) echo "ncat --send-only 127.0.0.1 $PORT" ;;
    nc) echo "nc -N 127.0.0.1 $PORT" ;;
    socat) echo "socat -u STDIN TCP:127.0.0.1:$PORT" ;;
  esac
}

throughput() {
  local tools=(sockeye ncat nc socat)
  echo "== throughput: $SIZE from stdin to a listener writing to /dev/null, $RUNS runs"
  for t in "${tools[@]}"; do
    PORT=$((PORT + 1))
    in_ns bash -c "$(listener_cmd "$t") | wc -c" > /tmp/skcat-count.$$ &
    local lp=$!; PIDS+=("$lp")
    wait_listen "$PORT"
    in_ns bash -c "head -c $SIZE /dev/zero | $(client_cmd "$t")" || echo "$t: client failed" >&2
    wait "$lp" || true
    echo "check $t: $(cat /tmp/skcat-count.$$) bytes received"
  done
  rm -f /tmp/skcat-count.$$
  declare -A total
  for r in $(seq 0 $((RUNS - 1))); do
    local n=${#tools[@]}
    for i in $(seq 0 $((n - 1))); do
      local t=${tools[$(((i + r) % n))]}
      PORT=$((PORT + 1))
      in_ns $(listener_cmd "$t") >/dev/null </dev/null &
      local lp=$!; PIDS+=("$lp")
      wait_listen "$PORT"
      local start end ok=1
      start=$(date +%s.%N)
      in_ns bash -c "head -c $SIZE /dev/zero | $(client_cmd "$t")" || ok=0
      wait "$lp" || ok=0
      end=$(date +%s.%N)
      local secs
      secs=$(python3 -c "print(round($end - $start, 3))")
      echo "run $r $t: ${secs} s $( [ $ok = 1 ] || echo FAILED)"
      total[$t]=$(python3 -c "print(${total[$t]:-0} + $secs)")
    done
  done
  echo "-- mean seconds (lower is better) and ratio to ncat:"
  for t in "${tools[@]}"; do
    python3 -c "m=${total[$t]}/$RUNS; n=${total[ncat]}/$RUNS; print(f'$t: {m:.2f} s, {m/n:.2f} x ncat')"
  done
}

# ncat's default path, both directions (see the header).
default_cmd() { # tool listen|connect
  case "$1:$2" in
    sockeye:listen) echo "$SOCKEYE cat -l 127.0.0.1 $PORT" ;;
    sockeye:connect) echo "$SOCKEYE cat 127.0.0.1 $PORT" ;;
    ncat:listen) echo "ncat -l 127.0.0.1 $PORT" ;;
    ncat:connect) echo "ncat 127.0.0.1 $PORT" ;;
    nc:listen) echo "nc -N -l 127.0.0.1 $PORT" ;;
    nc:connect) echo "nc -N 127.0.0.1 $PORT" ;;
    socat:listen) echo "socat TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr STDIO" ;;
    socat:connect) echo "socat STDIO TCP:127.0.0.1:$PORT" ;;
  esac
}

alive() { # pid: running (not gone, not a zombie)
  local st; st=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# One run of one case: sets SECS, OK (1 or 0) and NOTE.
default_run() { # tool case
  local t=$1 c=$2
  PORT=$((PORT + 1))
  local feed="head -c $SIZE /dev/zero |" from=""
  case "$c" in *file) feed=""; from="< $FILE" ;; esac
  local l; l=$(default_cmd "$t" listen)
  local cl; cl=$(default_cmd "$t" connect)
  local out=/dev/shm/skcat-$$.out
  rm -f "$out"; : > "$out"
  local start lp cp rp
  OK=1
  if [ "${c%-*}" = recv ]; then
    setsid ip netns exec "$NS" bash -c "exec $l <> $IDLE > $out" &
    lp=$!; PIDS+=("$lp")
    wait_listen "$PORT"
    start=$(date +%s.%N)
    setsid ip netns exec "$NS" bash -c "$feed $cl $from > /dev/null" &
    cp=$!; PIDS+=("$cp"); rp=$lp
  else
    setsid ip netns exec "$NS" bash -c "$feed $l $from > /dev/null" &
    lp=$!; PIDS+=("$lp")
    wait_listen "$PORT"
    start=$(date +%s.%N)
    setsid ip netns exec "$NS" bash -c "exec $cl <> $IDLE > $out" &
    cp=$!; PIDS+=("$cp"); rp=$cp
  fi
  # Until OUT holds SIZE bytes, or the receiving end is gone and OUT stopped growing.
  local end got
  read -r end got < <(python3 - "$out" "$SIZE_BYTES" "$rp" <<'EOF'
import os, sys, time
path, want, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def gone():
    try:
        return open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"
    except OSError:
        return True
limit = time.time() + 600
while os.stat(path).st_size < want and time.time() < limit:
    if gone():
        break
    time.sleep(0.005)
print(f"{time.time():.6f} {os.stat(path).st_size}")
EOF
)
  [ "$got" = "$SIZE_BYTES" ] || OK=0
  sleep 1
  local ended=""
  alive "$lp" || ended="listener"
  alive "$cp" || ended="$ended${ended:+,}client"
  NOTE="(ended by itself: ${ended:-neither})"
  for p in "$lp" "$cp"; do kill -- -"$p" 2>/dev/null || true; done
  wait "$lp" "$cp" 2>/dev/null || true
  rm -f "$out"
  SECS=$(python3 -c "print(round($end - $start, 3))")
}

default_paths() {
  local tools=(sockeye ncat nc socat)
  local cases=(recv-head recv-file send-head send-file)
  local dtmp; dtmp=$(mktemp -d)
  IDLE=$dtmp/idle
  mkfifo "$IDLE"
  FILE=/tmp/skcat-$$.zero
  SIZE_BYTES=$(numfmt --from=iec "$SIZE")
  head -c "$SIZE" /dev/zero > "$FILE"
  cat "$FILE" > /dev/null
  echo "== default path: $SIZE, $RUNS runs; recv = listener receiving, send = listener sending"
  declare -A total fails
  for r in $(seq 0 $((RUNS - 1))); do
    for c in "${cases[@]}"; do
      local n=${#tools[@]}
      for i in $(seq 0 $((n - 1))); do
        local t=${tools[$(((i + r) % n))]}
        default_run "$t" "$c"
        echo "run $r $c $t: ${SECS} s $NOTE $( [ "$OK" = 1 ] || echo FAILED)"
        total[$c:$t]=$(python3 -c "print(${total[$c:$t]:-0} + $SECS)")
        [ "$OK" = 1 ] || fails[$c:$t]=1
      done
    done
  done
  rm -f "$FILE"; rm -rf "$dtmp"
  echo "-- mean seconds (lower is better), ratio to ncat and to nc:"
  for c in "${cases[@]}"; do
    for t in "${tools[@]}"; do
      python3 -c "m=${total[$c:$t]}/$RUNS; n=${total[$c:ncat]}/$RUNS; o=${total[$c:nc]}/$RUNS; print(f'$c $t: {m:.2f} s, {m/n:.2f} x ncat, {m/o:.2f} x nc ${fails[$c:$t]:+(a run FAILED)}')"
    done
  done
}

start_in_ns() { # pidfile logfile command...: the command's own PID goes to pidfile
  local pidfile=$1 log=$2; shift 2
  in_ns bash -c 'echo $$ > "$0"; ulimit -n 20000; exec "$@"' "$pidfile" "$@" 2>"$log" &
  PIDS+=("$!")
  for _ in $(seq 1 100); do [ -s "$pidfile" ] && break; sleep 0.02; done
  PIDS+=("$(cat "$pidfile")")
}

stop_pid() { # pid
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$1" 2>/dev/null || true
}

broker() {
  local tmp; tmp=$(mktemp -d)
  echo "== broker: $CLIENTS clients"
  PORT=$((PORT + 1))
  start_in_ns "$tmp/pid" "$tmp/sockeye.log" "$SOCKEYE" cat --broker -l 127.0.0.1 "$PORT"
  local bp; bp=$(cat "$tmp/pid")
  wait_listen "$PORT"
  echo -n "sockeye: "
  in_ns bash -c "ulimit -n 20000; exec python3 $HERE/broker_load.py --port $PORT --clients $CLIENTS --pid $bp --stuck 100 --flood $((64 << 20))"
  stop_pid "$bp"
  echo "  sockeye dropped $(grep -c 'stopped reading' "$tmp/sockeye.log" || true) clients that stopped reading"

  for n in 100 "$CLIENTS"; do
    PORT=$((PORT + 1))
    local m=()
    [ "$n" = 100 ] || m=(-m "$n")
    rm -f "$tmp/pid"
    start_in_ns "$tmp/pid" "$tmp/ncat.log" ncat --broker "${m[@]}" -l 127.0.0.1 "$PORT"
    local np; np=$(cat "$tmp/pid")
    wait_listen "$PORT"
    echo -n "ncat --broker ${m[*]} with $n clients: "
    in_ns bash -c "ulimit -n 20000; exec python3 $HERE/broker_load.py --port $PORT --clients $n --pid $np --timeout 10" || true
    stop_pid "$np"
    if [ -s "$tmp/ncat.log" ]; then echo "  ncat said: $(tail -1 "$tmp/ncat.log")"; fi
  done
  rm -rf "$tmp"
}

case "$ONLY" in
  throughput) throughput ;;
  default) default_paths ;;
  broker) broker ;;
  "") throughput; default_paths; broker ;;
  *) echo "--only throughput|default|broker" >&2; exit 2 ;;
esac
}

main "$@"
