#!/usr/bin/env bash
# Mail benchmark: `sockeye mail` vs swaks, the same message to the lab's Postfix (587,
# STARTTLS required, AUTH LOGIN through Dovecot SASL), in two network namespaces this
# script creates (and always deletes).
#
#   sudo benches/mail/run.sh [--runs N] [--batches N] [--count N] [--sockeye PATH] [--raw FILE]
#
#   1  one message: N single runs of each tool, alternating (median wall time)
#        sockeye mail --tls --auth LOGIN ...   vs   swaks --tls --auth LOGIN ...
#   2  COUNT messages (default 100): `sockeye mail --count COUNT` (one connection, RSET
#      between) vs COUNT swaks runs, repeated --batches times (median wall time)
#
# Both verify the server's certificate against the lab CA and print their transcript
# (to /dev/null). Every message is checked to be delivered: the script counts the files
# in alice's Maildir after each phase and fails if one is missing.
#
# Layout: client ns skm-<pid>-c (198.18.0.1/24) <-veth-> server ns skm-<pid>-s
# (198.18.0.2/24) running tests/lab/services.sh (state in a temporary directory).
# Nothing is created in the root namespace. Results are printed, never written to
# BENCHMARKS.md: copy them there by hand with the date and command.
#
# Options:
#   --runs N        single-message runs per tool (default 20)
#   --batches N     repetitions of phase 2 (default 3)
#   --count N       messages in phase 2 (default 100)
#   --sockeye PATH  sockeye binary (default: target/release/sockeye)
#   --raw FILE      also append one line per run ("phase tool seconds") to FILE
set -euo pipefail

# The whole script is one function, parsed before it runs: editing this file while a
# benchmark is running cannot change what the running copy does.
main() {

SELF=$(realpath "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
SERVICES="$ROOT/tests/lab/services.sh"

RUNS=20
BATCHES=3
COUNT=100
SOCKEYE="target/release/sockeye"
RAW=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --batches) BATCHES="$2"; shift 2 ;;
        --count) COUNT="$2"; shift 2 ;;
        --sockeye) SOCKEYE="$2"; shift 2 ;;
        --raw) RAW="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$RUNS" "$BATCHES" "$COUNT"; do
    [[ "$v" =~ ^[0-9]+$ && "$v" -ge 1 && "$v" -le 1000 ]] || { echo "run.sh: counts take 1..1000" >&2; exit 2; }
done

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces): sudo $0"
for t in ip swaks python3; do command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 swaks python3)"; done
perl -MNet::SSLeay -e1 2>/dev/null || die "swaks needs Net::SSLeay for TLS (apt-get install libnet-ssleay-perl)"
[[ "$SOCKEYE" = /* ]] || SOCKEYE="$ROOT/$SOCKEYE"
[ -x "$SOCKEYE" ] || die "no sockeye binary at $SOCKEYE (cargo build --release, or --sockeye PATH)"

C="skm-$$-c"
S="skm-$$-s"
STATE=$(mktemp -d /tmp/sockeye-mailbench.XXXXXX)
chmod 755 "$STATE"
STARTED=0

cleanup() {
    set +e
    [ "$STARTED" = 1 ] && bash "$SERVICES" stop "$STATE" >/dev/null 2>&1
    ns_remove "$C" "$S"
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_pair_up "$C" veth-c "$S" veth-s || die "veth link did not come up"

echo "starting the lab's services in $S (state $STATE)..." >&2
STARTED=1
SOCKEYE_LAB_ALIAS4="" ip netns exec "$S" bash "$SERVICES" start "$STATE" 198.18.0.2 >/dev/null \
    || die "services.sh start failed (logs in $STATE/logs)"
CA="$STATE/tls/ca.crt"
NEW="$STATE/mail/alice/new"
BODY="Benchmark message.
.a line starting with a dot
Regards"

# One run of TOOL for message SUBJECT; prints its wall time in seconds.
run_sockeye() {  # subject count
    ip netns exec "$C" "$SOCKEYE" mail --server 198.18.0.2:587 --tls --ca-file "$CA" \
        --auth LOGIN --auth-user alice --auth-password wonderland \
        --from bob@lab.test --to alice@lab.test --subject "$1" --body "$BODY" --count "$2" \
        >/dev/null 2>&1
}
run_swaks() {  # subject
    ip netns exec "$C" swaks --server 198.18.0.2:587 --tls --tls-verify --tls-ca-path "$CA" \
        --auth LOGIN --auth-user alice --auth-password wonderland \
        --from bob@lab.test --to alice@lab.test --header "Subject: $1" --body "$BODY" \
        >/dev/null 2>&1
}
timed() {  # command... ; prints seconds
    local t0 t1
    t0=$(date +%s%N)
    "$@" || die "a run failed: $*"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))" | awk '{ printf "%.4f\n", $1 / 1e6 }'
}
mails() { find "$NEW" -type f 2>/dev/null | wc -l; }
wait_mails() {  # expected
    for _ in $(seq 1 600); do
        [ "$(mails)" -ge "$1" ] && return 0
        sleep 0.05
    done
    die "expected $1 messages in alice's Maildir, found $(mails)"
}
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
record() {
    if [ -n "$RAW" ]; then echo "$1 $2 $3" >>"$RAW"; fi
    echo "$3"
}

# Warm-up: one message each (page cache, Postfix's first smtpd and TLS session cache).
run_sockeye warmup 1 || die "sockeye cannot send to the lab (try it by hand with -v)"
run_swaks warmup || die "swaks cannot send to the lab"
expected=2
wait_mails "$expected"

echo "phase 1: one message, $RUNS runs each, alternating" >&2
: >"$STATE/p1-sockeye"; : >"$STATE/p1-swaks"
for i in $(seq 1 "$RUNS"); do
    # Alternating who goes first, so that drift on the machine hits both alike.
    if [ $((i % 2)) = 0 ]; then
        t=$(timed run_sockeye "p1 s$i" 1); record one sockeye "$t" >>"$STATE/p1-sockeye"
        t=$(timed run_swaks "p1 w$i"); record one swaks "$t" >>"$STATE/p1-swaks"
    else
        t=$(timed run_swaks "p1 w$i"); record one swaks "$t" >>"$STATE/p1-swaks"
        t=$(timed run_sockeye "p1 s$i" 1); record one sockeye "$t" >>"$STATE/p1-sockeye"
    fi
done
expected=$((expected + 2 * RUNS))
wait_mails "$expected"

echo "phase 2: $COUNT messages, $BATCHES batches each" >&2
: >"$STATE/p2-sockeye"; : >"$STATE/p2-swaks"
swaks_batch() {
    local j
    for j in $(seq 1 "$COUNT"); do run_swaks "p2 w$1.$j" || return 1; done
}
for b in $(seq 1 "$BATCHES"); do
    t=$(timed run_sockeye "p2 s$b" "$COUNT"); record batch sockeye "$t" >>"$STATE/p2-sockeye"
    t=$(timed swaks_batch "$b"); record batch swaks "$t" >>"$STATE/p2-swaks"
done
expected=$((expected + 2 * COUNT * BATCHES))
wait_mails "$expected"

s1=$(median <"$STATE/p1-sockeye"); w1=$(median <"$STATE/p1-swaks")
s2=$(median <"$STATE/p2-sockeye"); w2=$(median <"$STATE/p2-swaks")
printf '\n%-44s %12s %12s %8s\n' "benchmark (median wall time, s)" "sockeye" "swaks" "ratio"
printf '%-44s %12s %12s %8s\n' "one message, STARTTLS + AUTH LOGIN ($RUNS runs)" "$s1" "$w1" \
    "$(awk -v a="$s1" -v b="$w1" 'BEGIN { printf "%.3f", a / b }')"
printf '%-44s %12s %12s %8s\n' "$COUNT messages ($BATCHES batches)" "$s2" "$w2" \
    "$(awk -v a="$s2" -v b="$w2" 'BEGIN { printf "%.3f", a / b }')"
printf 'delivered and counted in the Maildir: %s messages\n' "$(mails)"
printf 'sockeye: %s\nswaks: %s\n' "$("$SOCKEYE" --version)" "$(swaks --version 2>&1 | head -1)"

}
main "$@"
