#!/usr/bin/env bash
# Host discovery benchmark: a /24 with 5 live hosts, `sockeye scan -sn` side by side with
# `nmap -sn -n` (both as root, in the same scanner namespace), alternating run by run.
#
#   sudo benches/scan-discover.sh [--runs N] [--case link|routed|both] [--sockeye PATH]
#
# Two namespaces, skb-disc-<pid>-s (scanner, 198.18.0.1/24) and skb-disc-<pid>-t, joined
# by a veth pair. The target holds 198.18.0.2, .10, .20, .30 and .40 on its veth (the
# "link" case: 198.18.0.0/24 is directly connected, so both tools ask by ARP) and
# 198.18.8.10 to .50 on its loopback, routing the rest of 198.18.8.0/24 and answering it
# with ICMP host unreachable (the "routed" case: behind a router, so both tools send
# their IP probes). Some hosts drop ICMP echo and timestamp (nftables), one of the routed
# ones every TCP segment but port 22 as well: nmap's default probes and sockeye's find
# the same hosts. The expected sets: link, the five hosts and the scanner's own address
# (both tools call it up); routed, 198.18.8.10, .20, .40 and .50.
#
# A run is correct when it exits 0 and reports exactly the expected hosts. Prints each
# run, then per tool the correct runs, the median and min/max wall time, and the ratio of
# the medians. Results are printed, never written to BENCHMARKS.md.
set -euo pipefail

main() {
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

RUNS=20
CASES="both"
SOCKEYE="target/release/sockeye"
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --case) CASES="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "scan-discover.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
die() { echo "scan-discover.sh: $*" >&2; exit 1; }
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 && "$RUNS" -le 100 ]] || die "--runs takes 1..100"
case "$CASES" in link|routed|both) ;; *) die "--case takes link, routed or both" ;; esac
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
for t in ip nmap nft python3 bc; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 nmap nftables python3 bc)"
done
[[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
[ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release)"

S="skb-disc-$$-s"
T="skb-disc-$$-t"
TMPD=$(mktemp -d /tmp/sockeye-bench-disc.XXXXXX)
cleanup() {
    set +e
    ns_remove "$S" "$T"
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns_pair_up "$S" veth-s "$T" veth-t || die "the veth link did not come up"
for a in 10 20 30 40; do ip -n "$T" addr add "198.18.0.$a/24" dev veth-t; done
for a in 10 20 30 40 50; do ip -n "$T" addr add "198.18.8.$a/32" dev lo; done
ip -n "$T" route add 198.18.8.0/24 dev lo
ip netns exec "$T" sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 \
    net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000
ip -n "$S" route add 198.18.8.0/24 via 198.18.0.2
ip netns exec "$T" nft -f - <<'NFT'
table inet disc {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr { 198.18.0.30, 198.18.8.30, 198.18.8.40 } icmp type { echo-request, timestamp-request } drop
    ip daddr 198.18.8.30 tcp dport != 22 drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.8.0/24 reject with icmp type host-unreachable
  }
}
NFT

echo "host discovery benchmark, $(date -u '+%F %H:%M UTC'), $(nproc) cores, kernel $(uname -r), $(nmap --version | head -1)"
echo "sockeye: $SOCKEYE ($(cd "$ROOT" && git log -1 --format=%h 2>/dev/null || echo '?'))"

# run_case NAME CIDR EXPECTED: RUNS runs of each tool, alternating which goes first.
run_case() {
    local name=$1 cidr=$2 expected=$3 i tool first t0 t1 rc hosts
    local log="$TMPD/$name.tsv"
    : >"$log"
    echo
    echo "== $name: $cidr, expected up: $expected"
    for i in $(seq 1 "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then first="sockeye nmap"; else first="nmap sockeye"; fi
        for tool in $first; do
            t0=$(date +%s.%N)
            set +e
            if [ "$tool" = sockeye ]; then
                ip netns exec "$S" "$SOCKEYE" -q scan -sn -n -o grep "$cidr" >"$TMPD/out" 2>"$TMPD/err"
            else
                ip netns exec "$S" nmap -sn -n -oG - "$cidr" >"$TMPD/out" 2>"$TMPD/err"
            fi
            rc=$?
            set -e
            t1=$(date +%s.%N)
            hosts=$(awk '/Status: Up/ { print $2 }' "$TMPD/out" | sort -t. -k1,1n -k2,2n -k3,3n -k4,4n | paste -sd, -)
            printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$i" "$(echo "$t1 - $t0" | bc -l)" "$rc" "$hosts" >>"$log"
            printf '  run %2d %-8s %6.3f s  exit %s  %s\n' "$i" "$tool" "$(echo "$t1 - $t0" | bc -l)" "$rc" \
                "$([ "$rc" = 0 ] && [ "$hosts" = "$expected" ] && echo ok || echo "WRONG: $hosts")"
        done
    done
    python3 - "$log" "$expected" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
expected = sys.argv[2]
med = {}
for tool in ("sockeye", "nmap"):
    mine = [r for r in rows if r[0] == tool]
    times = [float(r[2]) for r in mine]
    ok = sum(1 for r in mine if r[3] == "0" and r[4] == expected)
    med[tool] = statistics.median(times)
    print(f"  {tool:8} correct {ok}/{len(mine)}  median {med[tool]:.3f} s  min {min(times):.3f}  max {max(times):.3f}")
print(f"  sockeye / nmap (medians): {med['sockeye'] / med['nmap']:.2f} x")
PY
}

if [ "$CASES" = link ] || [ "$CASES" = both ]; then
    run_case link 198.18.0.0/24 "198.18.0.1,198.18.0.2,198.18.0.10,198.18.0.20,198.18.0.30,198.18.0.40"
fi
if [ "$CASES" = routed ] || [ "$CASES" = both ]; then
    run_case routed 198.18.8.0/24 "198.18.8.10,198.18.8.20,198.18.8.40,198.18.8.50"
fi
}

main "$@"
