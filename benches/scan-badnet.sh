#!/usr/bin/env bash
# Bad-network scan benchmark: ports 1-10000 of a target namespace whose nftables input
# chain drops 2% of the scanner's packets at random (`numgen random mod 100 < 2 drop`;
# netem is not in this kernel) and every packet to 20 DROP-filtered ports, with 5 open
# ports and the rest closed. sockeye -sT runs against nmap -sT -T4 and sockeye -sS
# against nmap -sS -T4, alternately, on the same lab; every run's port states must be
# exactly the true ones (open, filtered, closed), and the medians are compared.
#
#   sudo benches/scan-badnet.sh [--runs N] [--type T|S] [--sockeye PATH]
#
# Layout: scanner ns skb-bad-<pid>-s (198.18.0.1) <-veth-> target ns skb-bad-<pid>-t
# (198.18.0.2); both are removed on exit. Results are printed, never written to
# BENCHMARKS.md.
set -euo pipefail

main() {
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
LISTEN="$ROOT/tests/support/listen.py"

RUNS=20
TYPE=""
SOCKEYE="target/release/sockeye"
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --type) TYPE="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "scan-badnet.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
die() { echo "scan-badnet.sh: $*" >&2; exit 1; }
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 && "$RUNS" -le 200 ]] || die "--runs takes 1..200"
case "$TYPE" in ""|T|S) ;; *) die "--type takes T or S" ;; esac
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
for t in ip nft nmap python3; do command -v "$t" >/dev/null || die "$t not found"; done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
[ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release)"
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

OPEN="22,80,443,3389,8080"
FILTERED="113,222,333,444,555,666,777,888,999,1111,2222,3333,4321,4444,5555,6543,6666,7777,8888,9999"
LAST=10000

S="skb-bad-$$-s"
T="skb-bad-$$-t"
TMPD=$(mktemp -d /tmp/sockeye-bench-bad.XXXXXX)
LISTENER=""
cleanup() {
    set +e
    [ -n "$LISTENER" ] && kill -TERM "$LISTENER" 2>/dev/null
    ns_remove "$S" "$T"
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_pair_up "$S" veth-s "$T" veth-t || die "veth link did not come up"
ip netns exec "$T" sysctl -q -w net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
ip netns exec "$T" nft -f - <<EOF
table inet badnet {
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr 198.18.0.1 numgen random mod 100 < 2 drop
        tcp dport { $FILTERED } drop
    }
}
EOF
ip netns exec "$T" "$PY" "$LISTEN" --addr 198.18.0.2 --ports "$OPEN" --seconds 3600 --backlog 65535 \
    --ready-file "$TMPD/ready" 2>"$TMPD/listen.err" &
LISTENER=$!
for _ in $(seq 1 250); do [ -e "$TMPD/ready" ] && break; sleep 0.02; done
[ -e "$TMPD/ready" ] || { cat "$TMPD/listen.err" >&2; die "listener did not start"; }

echo "sockeye bad-network scan benchmark, $(date +%F), $(nproc) cores, kernel $(uname -r)"
echo "  target $T: 2% of the scanner's packets dropped at random; $OPEN open; 20 ports DROP-filtered"
echo "  nmap: $(nmap --version | head -1)"
echo "  sockeye: $SOCKEYE"


tools=()
if [ -z "$TYPE" ] || [ "$TYPE" = T ]; then tools+=(sockeye-sT nmap-sT-T4); fi
if [ -z "$TYPE" ] || [ "$TYPE" = S ]; then tools+=(sockeye-sS nmap-sS-T4); fi
printf '\n%-12s %4s %8s  %s\n' tool run wall_s states
for run in $(seq 1 "$RUNS"); do
    n=${#tools[@]}
    for k in $(seq 0 $((n - 1))); do
        tool=${tools[$(( (k + run - 1) % n ))]}
        out="$TMPD/$tool.$run"
        case "$tool" in
            sockeye-sT) cmd=("$SOCKEYE" scan -sT -p "1-$LAST" --all-states -o "json=$out" 198.18.0.2); kind=json ;;
            sockeye-sS) cmd=("$SOCKEYE" scan -sS -p "1-$LAST" --all-states -o "json=$out" 198.18.0.2); kind=json ;;
            nmap-sT-T4) cmd=(nmap -n -Pn -sT -T4 -p "1-$LAST" -oX "$out" 198.18.0.2); kind=xml ;;
            nmap-sS-T4) cmd=(nmap -n -Pn -sS -T4 -p "1-$LAST" -oX "$out" 198.18.0.2); kind=xml ;;
        esac
        ip netns exec "$S" /usr/bin/time -f '%e' -o "$TMPD/time" "${cmd[@]}" >/dev/null 2>"$TMPD/err" ||
            { cat "$TMPD/err" >&2; die "$tool failed"; }
        wall=$(cat "$TMPD/time")
        verdict=$("$PY" "$ROOT/benches/port-states.py" "$kind" "$out" "$LAST" "$OPEN" "$FILTERED")
        printf '%-12s %4s %8s  %s\n' "$tool" "$run" "$wall" "$verdict"
        echo "$tool $wall $verdict" >>"$TMPD/results"
        rm -f "$out"
    done
done

echo
"$PY" - "$TMPD/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tool, wall, verdict = line.split(" ", 2)
    rows.setdefault(tool, []).append((float(wall), verdict.strip() == "ok"))
med = {t: statistics.median(w for w, _ in r) for t, r in rows.items()}
for t, r in rows.items():
    print(f"  {t:<12} runs {len(r):3}  exact {sum(ok for _, ok in r):3}/{len(r):<3}  "
          f"median {med[t]:6.2f} s  min {min(w for w, _ in r):6.2f}  max {max(w for w, _ in r):6.2f}")
for ours, peer in (("sockeye-sT", "nmap-sT-T4"), ("sockeye-sS", "nmap-sS-T4")):
    if ours in med and peer in med:
        print(f"  {ours} / {peer}: {med[ours] / med[peer]:.2f} x")
PY
echo "  commands: sockeye scan -sT|-sS -p 1-$LAST --all-states -o json=F 198.18.0.2"
echo "            nmap -n -Pn -sT|-sS -T4 -p 1-$LAST -oX F 198.18.0.2"
}

main "$@"
exit $?
