#!/usr/bin/env bash
# Calculator benchmark (issue 5): `sockeye calc serve` against a reference server written
# as the seed asks (Python, one thread per TCP client, struct; UDP in one recvfrom loop),
# on the same loads in the same run, inside a network namespace this script creates.
#
#   sudo benches/calc/run.sh [--seconds 10] [--depth 1,16,64,256] [--clients 16] [--window 1]
#                            [--connections 10000] [--hold SECS] [--only tcp|udp|idle]
#                            [--sockeye PATH] [--sockeye-args 'ARGS'] [--reference-only]
#                            [--with-rust-threads] [--with-ceiling] [--raw FILE]
#
# Loads (benches/calc/loadgen, std-only Rust, built here with cargo):
#   tcp   --clients connections, each keeping --depth pipelined requests in flight, every
#         request a SUM of 10 numbers; every answer checked (ID and exact result). Run once
#         per depth of the list: the ratio between servers depends on the depth above all
#   udp   --clients sockets, one request per datagram, --window outstanding per socket
#   idle  --connections idle TCP connections held for --hold seconds, while every 100 ms
#         one request goes on a long-lived separate connection and one on a fresh
#         connection, each to be answered within 1 s; the server's VmRSS is sampled
#         from /proc while the connections are held
# Every load runs against a freshly started server, the reference and sockeye
# alternately. Server CPU time (user+sys from /proc/PID/stat) is measured around each
# load: on 2 cores the load generator shares the CPU with the server, so CPU µs per
# request is printed next to req/s.
#
# Layout: one namespace skc-<pid> with lo up; everything on 127.0.0.1 inside it
# (reference on port 7001, sockeye on 7000). Nothing is created in the root
# namespace; an exit trap kills the servers it started (by PID) and deletes the
# namespace. Results are printed, never written to BENCHMARKS.md.
#
# Options:
#   --seconds N        seconds per tcp/udp load (default 10, at most 300)
#   --depth D[,D...]   tcp: requests in flight per connection, one tcp load per value
#                      (default 1,16,64,256)
#   --clients N        tcp/udp clients (default 16)
#   --window W[,W...]  udp: datagrams outstanding per client, one udp load per value
#                      (default 1)
#   --connections N    idle: connections to hold (default 10000)
#   --hold N           idle: seconds to hold them (default: --seconds)
#   --only L           run only load L (tcp, udp or idle)
#   --sockeye PATH     sockeye binary (default target/release/sockeye)
#   --sockeye-args A   extra arguments for `sockeye calc serve` (word-split)
#   --reference-only   measure the Python reference only (no sockeye needed)
#   --with-rust-threads  also measure loadgen/src/bin/threaded_server.rs: the reference's
#                      design (thread per TCP client, one UDP thread) in plain std Rust,
#                      which separates language from architecture and shows the load
#                      generator's ceiling on this machine (port 7002)
#   --with-ceiling     udp loads only: also measure loadgen/src/bin/udp_echo_ceiling.rs,
#                      one thread of recv_from + send_to doing next to nothing, which
#                      shows what the kernel's loopback path and the load generator
#                      allow on this machine whatever the server (port 7003)
#   --raw FILE         also write one JSON object per (server, load) to FILE
set -euo pipefail

# One function, parsed before it runs: editing this file mid-run changes nothing.
main() {

SELF=$(realpath "$0")
HERE=$(dirname "$SELF")
ROOT=$(realpath "$HERE/../..")
cd "$ROOT"

SECONDS_PER=10
DEPTH=1,16,64,256
CLIENTS=16
WINDOW=1
CONNECTIONS=10000
HOLD=""
ONLY=""
SOCKEYE="target/release/sockeye"
SOCKEYE_ARGS=""
REF_ONLY=0
RUST_THREADS=0
CEILING=0
RAW=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_PER="$2"; shift 2 ;;
        --depth) DEPTH="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        --window) WINDOW="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --hold) HOLD="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        --sockeye-args) SOCKEYE_ARGS="$2"; shift 2 ;;
        --reference-only|--peers-only) REF_ONLY=1; shift ;;
        --with-rust-threads) RUST_THREADS=1; shift ;;
        --with-ceiling) CEILING=1; shift ;;
        --raw) RAW="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
die() { echo "run.sh: $*" >&2; exit 1; }
int_in() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
int_in "$SECONDS_PER" 1 300 || die "--seconds takes 1..300"
HOLD=${HOLD:-$SECONDS_PER}
int_in "$HOLD" 1 300 || die "--hold takes 1..300"
for d in ${DEPTH//,/ }; do int_in "$d" 1 4096 || die "--depth takes 1..4096 (a comma list)"; done
int_in "$CLIENTS" 1 256 || die "--clients takes 1..256"
for w in ${WINDOW//,/ }; do int_in "$w" 1 256 || die "--window takes 1..256 (a comma list)"; done
int_in "$CONNECTIONS" 0 18000 || die "--connections takes 0..18000 (the open-file limit is 20,000)"
case "$ONLY" in ""|tcp|udp|idle) ;; *) die "--only takes tcp, udp or idle" ;; esac

[ "$(id -u)" = 0 ] || die "run as root (it creates a network namespace): sudo $0"
for t in ip cargo; do command -v "$t" >/dev/null || die "$t not found"; done
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3   # a real binary: $! is its PID
command -v "$PY" >/dev/null || die "python3 not found (apt-get install python3)"
if [ "$REF_ONLY" = 0 ]; then
    [[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
    [ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release, --sockeye PATH, or --reference-only)"
    "$SOCKEYE" calc serve --help >/dev/null 2>&1 || die "$SOCKEYE has no 'calc serve' (use --reference-only)"
fi
REFERENCE="$HERE/reference_server.py"
STUDENT="$ROOT/tests/support/calc_student.py"

echo "building the load generator (benches/calc/loadgen, std only)..." >&2
cargo build --release --quiet --manifest-path "$HERE/loadgen/Cargo.toml" \
    --target-dir "$ROOT/target/calc-loadgen" || die "loadgen build failed"
LOADGEN="$ROOT/target/calc-loadgen/release/calc-loadgen"
THREADED="$ROOT/target/calc-loadgen/release/threaded_server"
CEILING_BIN="$ROOT/target/calc-loadgen/release/udp_echo_ceiling"

NS="skc-$$"
TMPD=$(mktemp -d /tmp/sockeye-calc-bench.XXXXXX)
SERVER_PID=""
LOAD_PID=""

cleanup() {
    set +e
    [ -n "$LOAD_PID" ] && kill -TERM "$LOAD_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null
    sleep 0.3
    [ -n "$LOAD_PID" ] && kill -KILL "$LOAD_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
    if [ -e "/run/netns/$NS" ]; then
        # Only what runs inside our own namespace: everything there is ours.
        pids=$(ip netns pids "$NS" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        ip netns del "$NS" 2>/dev/null
    fi
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$REF_ONLY" = 0 ]; then
    # A private copy: a rebuild during the run must not change the binary between loads.
    cp "$SOCKEYE" "$TMPD/sockeye"
    SOCKEYE_RUN="$TMPD/sockeye"
fi

ip netns add "$NS"
ip -n "$NS" link set lo up
# 10,000 connections plus the loads' own sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((CONNECTIONS + 500)) ] || die "open-file limit $(ulimit -n) is too low for --connections $CONNECTIONS"

# start_server NAME: starts it in the namespace, sets SERVER_PID and PORT, waits until
# it answers a request over TCP (and over UDP), within 10 s.
start_server() {
    local name="$1" i hello=()
    if [ "$name" = reference ]; then
        PORT=7001
        # Not through a function or subshell: `ip netns exec` execs python3, so $! is it.
        ip netns exec "$NS" "$PY" "$REFERENCE" --host 127.0.0.1 --port "$PORT" --seconds 900 --quiet \
            2>"$TMPD/server.err" >/dev/null &
    elif [ "$name" = rust-threads ]; then
        PORT=7002
        ip netns exec "$NS" "$THREADED" --listen "127.0.0.1:$PORT" --seconds 900 \
            2>"$TMPD/server.err" >/dev/null &
    elif [ "$name" = udp-ceiling ]; then
        PORT=7003
        hello=(--udp)
        ip netns exec "$NS" "$CEILING_BIN" --listen "127.0.0.1:$PORT" --seconds 900 \
            2>"$TMPD/server.err" >/dev/null &
    else
        PORT=7000
        # Every load client connects from 127.0.0.1: lift the per-address cap.
        # shellcheck disable=SC2086
        ip netns exec "$NS" "$SOCKEYE_RUN" calc serve --listen "127.0.0.1:$PORT" --max-per-address 1000000 $SOCKEYE_ARGS \
            2>"$TMPD/server.err" >/dev/null &
    fi
    SERVER_PID=$!
    for i in $(seq 1 100); do
        if ip netns exec "$NS" "$PY" "$STUDENT" client --host 127.0.0.1 --port "$PORT" --timeout 0.5 \
                "${hello[@]}" 4242 SUM 40 2 >"$TMPD/hello" 2>/dev/null && [ "$(cat "$TMPD/hello")" = "4242 42" ]; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/    /' "$TMPD/server.err" >&2
    die "$name server did not answer on 127.0.0.1:$PORT within 10 s"
}

stop_server() {
    local i rc=""
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    # 30 s: the reference needs a while to unwind 10,000 threads.
    for i in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        STOP_NOTE="did not exit within 30 s of SIGTERM: killed"
    else
        STOP_NOTE="exited $(( i / 10 )).$(( i % 10 )) s after SIGTERM"
    fi
    wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
    STOP_NOTE="exit $rc, $STOP_NOTE"
    SERVER_PID=""
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# Same answers from both servers: a few fixed requests through the student client.
cat >"$TMPD/check.txt" <<'EOF'
1 SUM 1 2 3 4 5 6 7 8 9 10
2 PRO -2 3 -4 5
3 MIN 7 -2147483648 2147483647
4 MAX -1 -2 -3
5 SUM 2147483647 -1
6 PRO 65536 -32768
7 SUM
8 PRO
9 PRO 65536 65536 0
10 PRO 65536 32768 -1
11 SUM 2147483647 1 -1
12 PRO 65536 32768
13 SUM 1
EOF
check_answers() {
    ip netns exec "$NS" "$PY" "$STUDENT" client --host 127.0.0.1 --port "$PORT" --timeout 2 \
        --pipeline "$TMPD/check.txt" >"$TMPD/answers.$1" 2>&1 || true
    ip netns exec "$NS" "$PY" "$STUDENT" client --host 127.0.0.1 --port "$PORT" --timeout 2 --udp \
        14 MAX 3 9 -4 >>"$TMPD/answers.$1" 2>&1 || true
    ip netns exec "$NS" "$PY" "$STUDENT" client --host 127.0.0.1 --port "$PORT" --timeout 0.5 --udp \
        15 MIN >>"$TMPD/answers.$1" 2>&1 || true
}

# run_load SERVER LOAD [DEPTH|WINDOW]: fresh server, one load, one JSON line appended to
# $TMPD/results.
run_load() {
    local server="$1" load="$2" shape="${3:-}" args=() out rc c0 c1 rss_idle
    start_server "$server"
    [ "$server" = udp-ceiling ] || check_answers "$server"
    case "$load" in
        tcp) args=(tcp --clients "$CLIENTS" --numbers 10 --seconds "$SECONDS_PER" --depth "$shape") ;;
        udp) args=(udp --clients "$CLIENTS" --numbers 10 --seconds "$SECONDS_PER" --window "$shape") ;;
        idle) args=(idle --connections "$CONNECTIONS" --hold "$HOLD" --server-pid "$SERVER_PID"
                    --connect-threads 32 --connect-seconds 120) ;;
    esac
    rss_idle=$(rss_kib "$SERVER_PID")
    c0=$(cpu_ticks "$SERVER_PID")
    out="$TMPD/load.out"
    # In the background + wait, so a trapped signal interrupts at once.
    ip netns exec "$NS" "$LOADGEN" "${args[@]}" --addr "127.0.0.1:$PORT" >"$out" 2>"$TMPD/load.err" &
    LOAD_PID=$!
    wait "$LOAD_PID" && rc=0 || rc=$?
    LOAD_PID=""
    c1=$(cpu_ticks "$SERVER_PID")
    local alive=yes
    kill -0 "$SERVER_PID" 2>/dev/null || alive=no
    STOP_NOTE=""
    stop_server
    [ -s "$out" ] || { cat "$TMPD/load.err" >&2; echo '{}' >"$out"; }
    "$PY" - "$server" "$load" "$rc" "$c0" "$c1" "$rss_idle" "$alive" "$STOP_NOTE" "$out" \
        "$TMPD/server.err" >>"$TMPD/results" <<'EOF'
import json, sys
server, load, rc, c0, c1, rss_idle, alive, stop, out, err = sys.argv[1:]
with open(out) as f:
    result = json.load(f)
with open(err, errors="replace") as f:
    tail = f.read()[-2000:]
print(json.dumps({"server": server, "load": load, "loadgen_exit": int(rc),
                  "server_cpu_s": (int(c1) - int(c0)) / 100.0, "server_rss_kib_start": int(rss_idle),
                  "server_alive_after_load": alive == "yes", "server_stop": stop,
                  "server_stderr_tail": tail, "result": result}))
EOF
    printf '  %-12s %-4s %-4s loadgen exit %s, server %s\n' "$server" "$load" "$shape" "$rc" "$STOP_NOTE" >&2
}

echo "sockeye calc benchmark, $(date +%F), $(nproc) cores, kernel $(uname -r), $("$PY" --version)"
if [ "$REF_ONLY" = 1 ]; then echo "  sockeye:   (reference only)"; else echo "  sockeye:   $SOCKEYE calc serve --listen 127.0.0.1:7000 $SOCKEYE_ARGS"; fi
echo "  reference: $PY benches/calc/reference_server.py --port 7001"
echo "  namespace: $NS (loopback only); loads: tcp ${SECONDS_PER}s x $CLIENTS clients depth $DEPTH," \
     "udp ${SECONDS_PER}s x $CLIENTS clients window $WINDOW, idle $CONNECTIONS connections for ${HOLD}s"

servers=(reference)
[ "$RUST_THREADS" = 1 ] && servers+=(rust-threads)
[ "$REF_ONLY" = 0 ] && servers+=(sockeye)
: >"$TMPD/results"
for load in tcp udp idle; do
    [ -n "$ONLY" ] && [ "$ONLY" != "$load" ] && continue
    case "$load" in tcp) shapes=${DEPTH//,/ } ;; udp) shapes=${WINDOW//,/ } ;; *) shapes=- ;; esac
    for shape in $shapes; do
        for server in "${servers[@]}"; do
            run_load "$server" "$load" "${shape#-}"
        done
        [ "$CEILING" = 1 ] && [ "$load" = udp ] && run_load udp-ceiling "$load" "${shape#-}"
    done
done
[ -n "$RAW" ] && cp "$TMPD/results" "$RAW"

echo
"$PY" "$HERE/report.py" "$TMPD/results"
echo "reference's answers to 13 pipelined TCP requests (the 12th is invalid) and 2 UDP ones (the 2nd invalid):"
paste -sd' ' "$TMPD/answers.reference" | sed 's/^/    /'
for server in "${servers[@]}"; do
    [ "$server" = reference ] && continue
    if cmp -s "$TMPD/answers.reference" "$TMPD/answers.$server"; then
        echo "same answers, $server: yes"
    else
        echo "same answers, $server: NO"
        diff "$TMPD/answers.reference" "$TMPD/answers.$server" | sed 's/^/    /' || true
    fi
done
echo "namespace $NS removed on exit"
}

main "$@"
exit $?
