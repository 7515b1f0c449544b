#!/usr/bin/env bash
# Scan benchmarks: sockeye side by side with nmap and RustScan, on the same work in
# the same run, in two network namespaces this script creates (and always deletes).
#
#   sudo benches/scan.sh [--runs N] [--only 1|2|3] [--type T|S] [--sockeye PATH] [--peers-only]
#                        [--raw FILE]
#
#   1  one host, all 65535 TCP ports, 12 open       (sockeye -sT / nmap -sT -T5 / rustscan;
#                                                    sockeye -sS / nmap -sS -T5)
#   2  4096 hosts (198.18.16.0/20) x top 100 ports,  (sockeye -sT / nmap -sT -T5;
#      3 open per host = 12,288 open                  sockeye -sS / nmap -sS -T5)
#   3  list 198.0.0.0/8: 16,777,216 targets, nothing sent (sockeye -sL / nmap -n -sL,
#      nmap in the first round only: it takes minutes)
#
# Layout: scanner ns skb-<pid>-s (198.18.0.1/24) <-veth-> target ns skb-<pid>-t
# (198.18.0.2/24, answers for 198.18.16.0/20 via a local route). Traffic never leaves
# these two namespaces; nothing is created in the root namespace. Results are printed,
# never written to BENCHMARKS.md: copy them there by hand with the date and command.
#
# Options:
#   --runs N        runs per tool (default: 20 for bench 1, 10 for bench 2, 3 for bench 3)
#                   (a --runs of 2 or 3 checks the harness in a few minutes)
#   --only K        run only benchmark K (1, 2 or 3)
#   --type T|S      benches 1 and 2: only the connect scans (T) or only the SYN scans (S)
#   --sockeye PATH  sockeye binary (default: target/release/sockeye)
#   --peers-only    measure the peer tools only (no sockeye needed)
#   --rustscan PATH (default: rustscan on PATH, else ~/.cargo/bin/rustscan)
#   --raw FILE      also append one JSON object per run to FILE
set -euo pipefail

# The whole script is one function, parsed before it runs: editing this file while a
# benchmark is running cannot change what the running copy does.
main() {

SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
MEASURE="$ROOT/benches/measure.py"
LISTEN="$ROOT/tests/support/listen.py"

RUNS=""
ONLY=""
TYPE=""
SOCKEYE="target/release/sockeye"
PEERS_ONLY=0
RUSTSCAN=""
RAW=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --type) TYPE="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        --peers-only) PEERS_ONLY=1; shift ;;
        --rustscan) RUSTSCAN="$2"; shift 2 ;;
        --raw) RAW="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "scan.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$ONLY" in ""|1|2|3) ;; *) echo "scan.sh: --only takes 1, 2 or 3" >&2; exit 2 ;; esac
case "$TYPE" in ""|T|S) ;; *) echo "scan.sh: --type takes T or S" >&2; exit 2 ;; esac
# want T|S: true when the rows of that scan type are wanted
want() { [ -z "$TYPE" ] || [ "$TYPE" = "$1" ]; }
if [ -n "$RUNS" ] && ! [[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 && "$RUNS" -le 1000 ]]; then
    echo "scan.sh: --runs takes 1..1000" >&2; exit 2
fi

die() { echo "scan.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces): sudo $0"
for t in ip nmap python3; do command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 nmap python3)"; done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"

if [ "$PEERS_ONLY" = 0 ]; then
    [[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
    [ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release, or --sockeye PATH, or --peers-only)"
fi
if [ -z "$RUSTSCAN" ]; then
    RUSTSCAN=$(command -v rustscan || true)
    if [ -z "$RUSTSCAN" ] && [ -x "$HOME/.cargo/bin/rustscan" ]; then
        RUSTSCAN="$HOME/.cargo/bin/rustscan"
    fi
fi
if [ -z "$RUSTSCAN" ] || [ ! -x "$RUSTSCAN" ]; then
    echo "scan.sh: rustscan not found (cargo install rustscan --locked): bench 1 runs without it" >&2
    RUSTSCAN=""
fi
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

# ---------------------------------------------------------------------------
# Lab: two namespaces joined by a veth pair, created directly inside them.
# ---------------------------------------------------------------------------
S="skb-$$-s"
T="skb-$$-t"
TMPD=$(mktemp -d /tmp/sockeye-bench.XXXXXX)
LISTENER_PIDS=()
MEASURE_PID=""

cleanup() {
    set +e
    [ -n "$MEASURE_PID" ] && kill -TERM "$MEASURE_PID" 2>/dev/null
    for pid in "${LISTENER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    ns_remove "$S" "$T"
    for pid in "${LISTENER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_s() { ip netns exec "$S" "$@"; }
in_t() { ip netns exec "$T" "$@"; }

lab_up() {
    ns_pair_up "$S" veth-s "$T" veth-t || die "veth link did not come up"
    # Every RST/ICMP answer counts; the listener's queues must never be the limit.
    in_t sysctl -q -w net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 \
        net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
}

# listen ADDR PORTS: start listen.py in the target ns, wait for it to be ready (<= 5 s).
listen() {
    local ready="$TMPD/ready.${#LISTENER_PIDS[@]}"
    # Not through in_t: a backgrounded function would run in a subshell and $! would
    # be the subshell's PID. `ip netns exec` execs python3, so $! is the listener.
    ip netns exec "$T" "$PY" "$LISTEN" --addr "$1" --ports "$2" --seconds 3600 --backlog 65535 \
        --ready-file "$ready" 2>"$TMPD/listen.${#LISTENER_PIDS[@]}.err" &
    LISTENER_PIDS+=("$!")
    local i
    for i in $(seq 1 250); do
        [ -e "$ready" ] && return 0
        kill -0 "$!" 2>/dev/null || break
        sleep 0.02
    done
    cat "$TMPD"/listen.*.err >&2 || true
    die "listener on $1 ports $2 did not start"
}

stop_listeners() {
    local pid
    for pid in "${LISTENER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${LISTENER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for f in "$TMPD"/listen.*.err; do [ -e "$f" ] && sed 's/^/    /' "$f"; done
    rm -f "$TMPD"/listen.*.err
    LISTENER_PIDS=()
}

q() { printf '%q' "$1"; }
measure() {
    local raw=()
    [ -n "$RAW" ] && raw=(--raw "$RAW")
    # In the background + wait: a trapped SIGTERM/SIGINT interrupts `wait` at once
    # (bash would otherwise run the trap only after the whole benchmark).
    "$PY" "$MEASURE" --tmpdir "$TMPD" "${raw[@]}" "$@" &
    MEASURE_PID=$!
    wait "$MEASURE_PID"
    MEASURE_PID=""
}

echo "sockeye scan benchmarks, $(date +%F), $(nproc) cores, kernel $(uname -r)"
if [ "$PEERS_ONLY" = 1 ]; then echo "  sockeye:  (peers only)"; else echo "  sockeye:  $SOCKEYE"; fi
echo "  nmap:     $(nmap --version | head -1)"
[ -n "$RUSTSCAN" ] && echo "  rustscan: $("$RUSTSCAN" --version 2>/dev/null | head -1)"
echo "  lab:      $S (198.18.0.1) <-veth-> $T (198.18.0.2)"

lab_up
# RustScan raises its own soft limit with --ulimit; the hard limit here is 20000.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Bench 1: one host, all 65535 ports, 12 open
# ---------------------------------------------------------------------------
B1_PORTS="1,22,80,443,3389,8080,12345,20000,32768,44444,55555,65535"
if [ -z "$ONLY" ] || [ "$ONLY" = 1 ]; then
    listen 198.18.0.2 "$B1_PORTS"
    tools=()
    if want T; then
        [ "$PEERS_ONLY" = 0 ] && tools+=(--tool "sockeye=json:$(q "$SOCKEYE") scan -sT -p- -o json 198.18.0.2")
        tools+=(--tool "nmap-sT-T5=nmap-grep:nmap -n -Pn -sT -T5 -p- -oG - 198.18.0.2")
        [ -n "$RUSTSCAN" ] && tools+=(--tool "rustscan=rustscan:$(q "$RUSTSCAN") -n -a 198.18.0.2 -r 1-65535 -b 4500 -g --ulimit 20000")
    fi
    if want S; then
        [ "$PEERS_ONLY" = 0 ] && tools+=(--tool "sockeye-sS=json:$(q "$SOCKEYE") scan -sS -p- -o json 198.18.0.2")
        tools+=(--tool "nmap-sS-T5=nmap-grep:nmap -n -Pn -sS -T5 -p- -oG - 198.18.0.2")
    fi
    measure --title "Bench 1: 65535 TCP ports of 198.18.0.2, 12 open" --ns "$S" \
        --runs "${RUNS:-20}" --probes 65535 --timeout 300 \
        --expect-hosts 198.18.0.2 --expect-ports "$B1_PORTS" "${tools[@]}"
    stop_listeners
fi

# ---------------------------------------------------------------------------
# Bench 2: 4096 hosts x top 100 ports, 22/80/443 open on every host
# ---------------------------------------------------------------------------
if [ -z "$ONLY" ] || [ "$ONLY" = 2 ]; then
    ip -n "$T" route add local 198.18.16.0/20 dev lo
    ip -n "$S" route add 198.18.16.0/20 via 198.18.0.2
    listen 0.0.0.0 22,80,443
    tools=()
    if want T; then
        [ "$PEERS_ONLY" = 0 ] && tools+=(--tool "sockeye=json:$(q "$SOCKEYE") scan -Pn -sT --top-ports 100 -o json 198.18.16.0/20")
        tools+=(--tool "nmap-sT-T5=nmap-grep:nmap -n -Pn -sT -T5 --top-ports 100 -oG - 198.18.16.0/20")
    fi
    if want S; then
        [ "$PEERS_ONLY" = 0 ] && tools+=(--tool "sockeye-sS=json:$(q "$SOCKEYE") scan -Pn -sS --top-ports 100 -o json 198.18.16.0/20")
        tools+=(--tool "nmap-sS-T5=nmap-grep:nmap -n -Pn -sS -T5 --top-ports 100 -oG - 198.18.16.0/20")
    fi
    measure --title "Bench 2: 198.18.16.0/20 (4096 hosts) x top 100 ports, 3 open each" --ns "$S" \
        --runs "${RUNS:-10}" --probes $((4096 * 100)) --timeout 900 \
        --expect-cidr 198.18.16.0/20 --expect-ports 22,80,443 "${tools[@]}"
    stop_listeners
    ip -n "$S" route del 198.18.16.0/20 via 198.18.0.2
    ip -n "$T" route del local 198.18.16.0/20 dev lo
fi

# ---------------------------------------------------------------------------
# Bench 3: list 2^24 targets (-sL sends nothing; run in the scanner ns all the same,
# where nothing could leave even if it tried)
# ---------------------------------------------------------------------------
if [ -z "$ONLY" ] || [ "$ONLY" = 3 ]; then
    # nmap -sL needs over two minutes for 2^24 targets: it runs in the first round only.
    tools=()
    [ "$PEERS_ONLY" = 0 ] && tools+=(--tool "sockeye=count:$(q "$SOCKEYE") scan -sL 198.0.0.0/8")
    tools+=(--tool "nmap-sL=nmap-list:nmap -n -sL 198.0.0.0/8" --once nmap-sL)
    measure --title "Bench 3: list 198.0.0.0/8 (16,777,216 targets, nothing sent)" --ns "$S" \
        --runs "${RUNS:-3}" --probes $((1 << 24)) --timeout 600 --expect-count $((1 << 24)) \
        "${tools[@]}"
fi
echo
echo "done; namespaces $S and $T removed on exit"
}

main "$@"
exit $?
