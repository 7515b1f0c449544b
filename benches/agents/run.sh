#!/usr/bin/env bash
# Agents at scale (issue 15): 200 agents on this machine and a plan of 10,000 flow checks
# spread over them; every verdict in the run log within 30 s and the controller's RSS at
# most 128 MiB. Then the same plan with the controller killed (SIGKILL) half way and
# resumed: exactly 10,000 verdicts, none twice.
#
# Everything runs in one namespace made here (skb-agents-<pid>, a veth end with
# 198.18.200.1/24): the 200 agents are `local` (children of the controller), every flow goes
# from one agent to another's address there. Each check has its own port (20000 + index),
# so listeners never collide whatever runs at once.
#
# Usage: benches/agents/run.sh [--agents N] [--checks N] [--concurrency N] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/lib.sh

agents=200 checks=10000 concurrency=128 bin=target/release/sockeye
while [ $# -gt 0 ]; do
    case $1 in
        --agents) agents=$2; shift 2 ;;
        --checks) checks=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || cargo build --release --quiet
bin=$(realpath "$bin")
ns=skb-agents-$$
work=$(mktemp -d)
cleanup() { ns_remove "$ns"; rm -rf "$work"; }
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
# No dummy driver in this kernel: a veth pair with both ends here gives the address a device.
ip -n "$ns" link add zone type veth peer name zone-peer
ip -n "$ns" link set zone-peer up
ip -n "$ns" addr add 198.18.200.1/24 dev zone
ip -n "$ns" link set zone up

plan=$work/plan.yaml
python3 - "$agents" "$checks" "$concurrency" "$bin" >"$plan" <<'PY'
import sys
agents, checks, concurrency, bin_ = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
hi = 20000 + checks - 1
print("name: agents at scale")
print(f"concurrency: {concurrency}")
print("defaults: {timeout: 2s}")
print("agents:")
for i in range(agents):
    print(f'  a{i}: {{via: local, command: "{bin_}", allow_listen: "20000-{hi}", allow_targets: "198.18.0.0/15"}}')
print("checks:")
for c in range(checks):
    src, dst = c % agents, (c * 7 + 1) % agents
    if dst == src:
        dst = (dst + 1) % agents
    print(f"  - {{name: f{c}, flow: {{from: a{src}, to: a{dst}, port: {20000 + c}}}}}")
PY

# Samples the agents' RSS (kB) while the controller runs: the largest sum and the largest one.
sample_agents() {
    local pid=$1 out=$2 max_sum=0 max_one=0 sum one
    while kill -0 "$pid" 2>/dev/null; do
        read -r sum one < <(ps -o rss= --ppid "$pid" | awk '{s+=$1; if ($1>m) m=$1} END {print s+0, m+0}')
        [ "$sum" -gt "$max_sum" ] && max_sum=$sum
        [ "$one" -gt "$max_one" ] && max_one=$one
        sleep 0.5
    done
    echo "$max_sum $max_one" >"$out"
}

count_verdicts() { local n; n=$(grep -c '"type":"check"' "$1" 2>/dev/null) || true; echo "${n:-0}"; }

echo "== full run: $agents agents, $checks flow checks, concurrency $concurrency"
log=$work/run.jsonl
start=$(date +%s.%N)
ip netns exec "$ns" /usr/bin/time -f "%M" -o "$work/rss" \
    "$bin" exercise run "$plan" --run-log "$log" -o json="$work/out.jsonl" >/dev/null 2>"$work/err" &
tpid=$!
sleep 0.2
# time's child is the controller (ip netns exec execs it); the agents are its children.
cpid=$(pgrep -P $tpid | head -1 || true)
sample_agents "$cpid" "$work/agents_rss" &
spid=$!
status=0
wait $tpid || status=$?
end=$(date +%s.%N)
wait $spid || true
secs=$(python3 -c "print(f'{$end - $start:.2f}')")
n=$(count_verdicts "$log")
passed=$(grep -c '"passed":true' "$work/out.jsonl" || true)
read -r agents_sum agents_one <"$work/agents_rss"
echo "exit $status; $n verdicts in the run log, $passed passed; wall ${secs} s = $(python3 -c "print(f'{$checks/($end-$start):.0f}')") checks/s"
echo "controller max RSS $(($(cat "$work/rss") / 1024)) MiB; agents: largest $((agents_one / 1024)) MiB, all together at most $((agents_sum / 1024)) MiB"
[ "$status" -eq 0 ] || tail -5 "$work/err"

echo "== killed half way, resumed"
log2=$work/run2.jsonl
ip netns exec "$ns" "$bin" exercise run "$plan" --run-log "$log2" >/dev/null 2>&1 &
kpid=$!
for _ in $(seq 1 1200); do
    [ "$(count_verdicts "$log2")" -ge $((checks / 2)) ] && break
    sleep 0.05
done
# ip netns exec execs the program: $kpid is the controller itself.
kill -KILL "$kpid"; wait "$kpid" 2>/dev/null || true
before=$(count_verdicts "$log2")
start=$(date +%s.%N)
status=0
ip netns exec "$ns" "$bin" exercise run "$plan" --resume "$log2" >/dev/null 2>"$work/err2" || status=$?
end=$(date +%s.%N)
after=$(count_verdicts "$log2")
unique=$(grep -o '"check_id":"[^"]*"' "$log2" | sort -u | wc -l)
echo "killed with $before verdicts logged; resume: exit $status, $(python3 -c "print(f'{$end - $start:.2f}')") s; $after verdicts in the log, $unique distinct check IDs"
grep -m1 resuming "$work/err2" || true
