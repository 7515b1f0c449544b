#!/usr/bin/env bash
# Service-check benchmarks (issue 3): `sockeye probe` side by side with `nmap -sV
# --version-light` against the real-server lab (tests/lab/services.sh: Postfix,
# Dovecot, vsftpd, nginx, slapd, sshd), in two network namespaces this script
# creates and always deletes.
#
#   sudo benches/probe/run.sh [--runs N] [--only 1|2] [--sockeye PATH] [--sweep LIST]
#                             [--cidr CIDR] [--raw FILE]
#
#   1  the 17 classic checks of 198.18.0.2 (14 of them open in the lab): sockeye probe
#      vs nmap -n -sV --version-light -p <the same 17 ports>; checks that sockeye reports
#      every fact nmap reports (service, product, TLS yes/no) plus the STARTTLS verdicts,
#      and prints a parity table.
#   2  1,024 addresses (198.18.16.0/22) x smtp-with-STARTTLS (25) and https (443): all
#      2,048 checks with their TLS handshakes, vs nmap -n -Pn -sV --version-light; the lab
#      runs with SOCKEYE_LAB_WILDCARD=1 (Postfix's 25 and nginx's 443 on 0.0.0.0, a local
#      route for the /22 in the server namespace). sockeye also runs with the --concurrency
#      values of --sweep, to show whether the default (256) is the best.
#
# Layout: client ns skp-<pid>-c (198.18.0.1/24) <-veth-> server ns skp-<pid>-s
# (198.18.0.2/24, the lab's daemons, state in a temporary directory). Traffic never
# leaves these two namespaces; nothing is created in the root namespace. Every tool
# run is bounded (a timeout per run, then SIGKILL of its process group); an exit trap
# stops the lab and deletes both namespaces. Results are printed, never written to
# BENCHMARKS.md: copy them there by hand with the date and command.
#
# Options:
#   --runs N        runs per tool (default: 5 for bench 1, 3 for bench 2)
#   --only K        run only benchmark K (1 or 2)
#   --sockeye PATH  sockeye binary (default: target/release/sockeye)
#   --sweep LIST    bench 2: extra sockeye --concurrency values, comma-separated
#                   (default 64,128,512,1024; "none" for none)
#   --cidr CIDR     bench 2's block (default 198.18.16.0/22; a /28 checks the harness in a
#                   minute; must lie inside 198.18.16.0/20)
#   --raw FILE      also append one JSON object per run to FILE
set -euo pipefail

# The whole script is one function, parsed before it runs: editing this file while a
# benchmark is running cannot change what the running copy does.
main() {

SELF=$(realpath "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
BENCH="$ROOT/benches/probe/probe_bench.py"
SERVICES="$ROOT/tests/lab/services.sh"

RUNS=""
ONLY=""
SOCKEYE="target/release/sockeye"
SWEEP="64,128,512,1024"
CIDR="198.18.16.0/22"
RAW=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        --sweep) SWEEP="$2"; shift 2 ;;
        --cidr) CIDR="$2"; shift 2 ;;
        --raw) RAW="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$ONLY" in ""|1|2) ;; *) echo "run.sh: --only takes 1 or 2" >&2; exit 2 ;; esac
if [ -n "$RUNS" ] && ! [[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 && "$RUNS" -le 100 ]]; then
    echo "run.sh: --runs takes 1..100" >&2; exit 2
fi
[ "$SWEEP" = none ] && SWEEP=""
if [ -n "$SWEEP" ] && ! [[ "$SWEEP" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
    echo "run.sh: --sweep takes numbers separated by commas, or none" >&2; exit 2
fi

die() { echo "run.sh: $*" >&2; exit 1; }
python3 -c 'import ipaddress, sys
n = ipaddress.ip_network(sys.argv[1])
sys.exit(0 if n.subnet_of(ipaddress.ip_network("198.18.16.0/20")) else 1)' "$CIDR" 2>/dev/null ||
    die "--cidr takes a block inside 198.18.16.0/20, e.g. 198.18.16.0/28"
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces): sudo $0"
if ! command -v nmap >/dev/null; then
    echo "run.sh: nmap not found, installing it (apt-get install nmap)" >&2
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q nmap >&2 ||
        die "cannot install nmap"
fi
for t in ip nmap python3 timeout ss; do command -v "$t" >/dev/null || die "$t not found"; done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
[ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release, or --sockeye PATH)"
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

# ---------------------------------------------------------------------------
# Lab: two namespaces joined by a veth pair created directly inside them, and the
# lab's daemons (services.sh) in the server namespace.
# ---------------------------------------------------------------------------
C="skp-$$-c"
S="skp-$$-s"
TMPD=$(mktemp -d /tmp/sockeye-pbench.XXXXXX)
# The lab's daemons drop privileges (postfix, dovecot, ftp): they must be able to walk
# down to their state directory inside this one (mktemp makes it 0700).
chmod 755 "$TMPD"
STATE=""
BENCH_PID=""

cleanup() {
    set +e
    [ -n "$BENCH_PID" ] && kill -TERM "$BENCH_PID" 2>/dev/null
    [ -n "$STATE" ] && timeout 30 "$SERVICES" stop "$STATE" >/dev/null 2>&1
    ns_remove "$C" "$S"
    [ -n "$BENCH_PID" ] && wait "$BENCH_PID" 2>/dev/null
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_up() {
    ns_pair_up "$C" veth-c "$S" veth-s || die "veth link did not come up"
    # Bench 2 opens a thousand connections at once: the listen queues must not drop them.
    ip netns exec "$S" sysctl -q -w net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
}

# lab_start WILDCARD: services.sh start in the server namespace, a fresh state directory.
lab_start() {
    STATE="$TMPD/lab$1"
    mkdir -p "$STATE"
    local t0=$SECONDS
    if ! SOCKEYE_LAB_WILDCARD="$1" SOCKEYE_LAB_RESPONDER_SECONDS=3600 \
        timeout 120 ip netns exec "$S" "$SERVICES" start "$STATE" 198.18.0.2 >"$TMPD/lab.out" 2>&1; then
        cat "$TMPD/lab.out" >&2
        die "the lab did not start"
    fi
    echo "  lab up in $((SECONDS - t0)) s (SOCKEYE_LAB_WILDCARD=$1, state $STATE)"
}

lab_stop() {
    [ -n "$STATE" ] || return 0
    timeout 30 "$SERVICES" stop "$STATE" >/dev/null 2>&1 || true
    STATE=""
}

q() { printf '%q' "$1"; }
bench() {
    local raw=()
    [ -n "$RAW" ] && raw=(--raw "$RAW")
    # In the background + wait: a trapped SIGTERM/SIGINT interrupts `wait` at once.
    "$PY" "$BENCH" --tmpdir "$TMPD" --ns "$C" --server-ns "$S" "${raw[@]}" "$@" &
    BENCH_PID=$!
    wait "$BENCH_PID"
    BENCH_PID=""
}

echo "sockeye probe benchmarks, $(date -u '+%F %H:%M UTC'), $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  sockeye:  $SOCKEYE ($("$SOCKEYE" --version 2>/dev/null | head -1))"
echo "  nmap:     $(nmap --version | head -1)"
echo "  lab:      $C (198.18.0.1) <-veth-> $S (198.18.0.2)"
ns_up
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Bench 1: the 17 classic checks of the lab host
# ---------------------------------------------------------------------------
CLASSIC="23,22,25,587,465,109,110,143,993,995,21,80,443,631,88,389,636"
B1_OPEN="21,22,25,80,110,143,389,443,465,587,631,636,993,995"
if [ -z "$ONLY" ] || [ "$ONLY" = 1 ]; then
    lab_start 0
    bench --bench 1 --title "Bench 1: the 17 classic checks of 198.18.0.2 (14 open)" \
        --runs "${RUNS:-5}" --timeout 120 --expect-open "$B1_OPEN" --expect-closed 23,88,109 \
        --tool "sockeye=sockeye:$(q "$SOCKEYE") probe --json 198.18.0.2" \
        --tool "nmap-sV=nmap-xml:nmap -n -sV --version-light -p $CLASSIC -oX - 198.18.0.2"
    lab_stop
fi

# ---------------------------------------------------------------------------
# Bench 2: 1,024 addresses x smtp-with-STARTTLS and https
# ---------------------------------------------------------------------------
if [ -z "$ONLY" ] || [ "$ONLY" = 2 ]; then
    ip -n "$S" route add local "$CIDR" dev lo
    ip -n "$C" route add "$CIDR" via 198.18.0.2
    lab_start 1
    tools=(--tool "sockeye=sockeye:$(q "$SOCKEYE") probe -p 25,443 --json $CIDR")
    tools+=(--tool "nmap-sV=nmap-xml:nmap -n -Pn -sV --version-light -p 25,443 -oX - $CIDR")
    IFS=, read -r -a conc <<<"$SWEEP"
    for c in "${conc[@]}"; do
        tools+=(--tool "sockeye-c$c=sockeye:$(q "$SOCKEYE") probe --concurrency $c -p 25,443 --json $CIDR")
    done
    bench --bench 2 --title "Bench 2: $CIDR ($(python3 -c 'import ipaddress, sys; print(ipaddress.ip_network(sys.argv[1]).num_addresses)' "$CIDR") addresses) x smtp+STARTTLS (25) and https (443)" \
        --runs "${RUNS:-3}" --timeout 3600 --expect-cidr "$CIDR" "${tools[@]}"
    lab_stop
    ip -n "$C" route del "$CIDR" via 198.18.0.2
    ip -n "$S" route del local "$CIDR" dev lo
fi
echo
echo "done $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg); namespaces $C and $S removed on exit"
}

main "$@"
exit $?
