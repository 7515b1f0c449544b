#!/usr/bin/env bash
# UDP scan benchmark: ports 1-1024 of a target namespace with 3 open UDP services
# (socat echo on 7, dnsmasq on 53, snmpd on 161) and every other port closed, with
# Linux's default ICMP rate limit in force in the target (one error a second per
# destination after a burst of 6). sockeye -sU and nmap -sU -T4 run alternately on
# the same lab; each run's port states must be exactly the true ones.
#
#   sudo benches/scan-udp.sh [--runs N] [--tools sockeye,nmap] [--sockeye PATH] [--last-port N]
#                            [--sources N]
#
# --last-port N scans 1-N instead of 1-1024 (a quick check of the harness).
# --sources N gives the scanner namespace N addresses (198.18.0.1 and
# 198.18.0.101...) and sockeye `--source` with all of them: the target limits
# its ICMP errors per address, so each address has its own share. nmap's -S
# takes one address; its command is unchanged.
#
# Every run takes minutes (the target's ICMP limit sets the pace: over 1,000 closed
# ports at one refusal a second), so the default is one run per tool. Several copies
# of the script may run at once: each has its own namespace pair (skb-udp-<pid>-s/t),
# so each target has its own limiter and the runs do not share one. Results are
# printed, never written to BENCHMARKS.md.
set -euo pipefail

main() {
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

RUNS=1
TOOLS="sockeye,nmap"
SOCKEYE="target/release/sockeye"
LAST=1024
SOURCES=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --tools) TOOLS="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        --last-port) LAST="$2"; shift 2 ;;
        --sources) SOURCES="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "scan-udp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
die() { echo "scan-udp.sh: $*" >&2; exit 1; }
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 && "$RUNS" -le 100 ]] || die "--runs takes 1..100"
[[ "$LAST" =~ ^[0-9]+$ && "$LAST" -ge 161 && "$LAST" -le 65535 ]] || die "--last-port takes 161..65535"
[[ "$SOURCES" =~ ^[0-9]+$ && "$SOURCES" -ge 1 && "$SOURCES" -le 8 ]] || die "--sources takes 1..8"
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
for t in ip nmap socat dnsmasq snmpd python3; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 nmap socat dnsmasq snmpd python3)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
case ",$TOOLS," in *,sockeye,*) [ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release)" ;; esac

S="skb-udp-$$-s"
T="skb-udp-$$-t"
TMPD=$(mktemp -d /tmp/sockeye-bench-udp.XXXXXX)
cleanup() {
    set +e
    ns_remove "$S" "$T"
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_pair_up "$S" veth-s "$T" veth-t || die "veth link did not come up"
SOURCE_LIST=198.18.0.1
for i in $(seq 1 $((SOURCES - 1))); do
    ip -n "$S" addr add "198.18.0.$((100 + i))/24" dev veth-s
    SOURCE_LIST="$SOURCE_LIST,198.18.0.$((100 + i))"
done
SOURCE_ARGS=()
[ "$SOURCES" -gt 1 ] && SOURCE_ARGS=(--source "$SOURCE_LIST")
# The target keeps the kernel's default ICMP limits: that is the point.
echo "sockeye UDP scan benchmark, $(date +%F), $(nproc) cores, kernel $(uname -r)"
echo "  target $T: net.ipv4.icmp_ratelimit=$(ip netns exec "$T" sysctl -n net.ipv4.icmp_ratelimit)" \
     "icmp_msgs_per_sec=$(ip netns exec "$T" sysctl -n net.ipv4.icmp_msgs_per_sec)"
echo "  nmap: $(nmap --version | head -1)"

# The services, in the target namespace; ns_remove stops them at exit.
ip netns exec "$T" socat -T 1 UDP4-RECVFROM:7,bind=198.18.0.2,fork PIPE &
ip netns exec "$T" dnsmasq --no-daemon --conf-file=/dev/null --port=53 --listen-address=198.18.0.2 \
    --bind-interfaces --no-resolv --no-hosts --pid-file= --user=root 2>"$TMPD/dnsmasq.err" &
printf 'rocommunity public\n' >"$TMPD/snmpd.conf"
ip netns exec "$T" env MIBS= snmpd -f -Lo -C -c "$TMPD/snmpd.conf" -p "$TMPD/snmpd.pid" -m '' \
    udp:198.18.0.2:161 >"$TMPD/snmpd.log" 2>&1 &
sleep 1.5
for p in 7 53 161; do
    ip netns exec "$T" ss -Hlun "sport = :$p" | grep -q . || die "nothing listens on UDP $p in $T"
done


IFS=, read -r -a tools <<<"$TOOLS"
printf '\n%-8s %4s %10s  %s\n' tool run wall_s states
for run in $(seq 1 "$RUNS"); do
    n=${#tools[@]}
    for k in $(seq 0 $((n - 1))); do
        tool=${tools[$(( (k + run - 1) % n ))]}
        out="$TMPD/$tool.$run"
        case "$tool" in
            sockeye) cmd=("$SOCKEYE" scan -sU -T4 "${SOURCE_ARGS[@]}" -p "1-$LAST" --all-states -o "json=$out" 198.18.0.2); kind=json ;;
            nmap) cmd=(nmap -n -Pn -sU -T4 -p "1-$LAST" -oX "$out" 198.18.0.2); kind=xml ;;
            *) die "unknown tool $tool" ;;
        esac
        ip netns exec "$S" /usr/bin/time -f '%e' -o "$TMPD/time" "${cmd[@]}" >/dev/null 2>"$TMPD/err" ||
            { cat "$TMPD/err" >&2; die "$tool failed"; }
        printf '%-8s %4s %10s  %s\n' "$tool" "$run" "$(cat "$TMPD/time")" "$("$PY" "$ROOT/benches/port-states.py" "$kind" "$out" "$LAST" 7,53,161 "")"
        [ "$tool" = sockeye ] && grep -h '"note"' "$out" | sed 's/^/    /' || true
        # Let the target's ICMP bucket fill up again (6 s of tokens), as before the first run.
        sleep 7
    done
done
echo "  commands: sockeye scan -sU -T4 ${SOURCE_ARGS[*]} -p 1-$LAST --all-states -o json=F 198.18.0.2"
echo "            nmap -n -Pn -sU -T4 -p 1-$LAST -oX F 198.18.0.2"
}

PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
main "$@"
exit $?
