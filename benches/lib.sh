# Shared by the benchmark scripts (sourced, not run): the namespace pair they measure in,
# and its removal. Traffic never leaves the pair; nothing is created in the root namespace.

# ns_pair_up A DEV_A B DEV_B: namespaces A (198.18.0.1/24 on DEV_A) and B (198.18.0.2/24 on
# DEV_B) joined by a veth pair, loopback up in both; waits (at most 5 s) for carrier on both
# ends, as SYNs sent before it would be lost and retried a second later. Returns 1 if the
# link never came up.
ns_pair_up() {
    local a=$1 dev_a=$2 b=$3 dev_b=$4 ns dev v4 i
    ip netns add "$a"
    ip netns add "$b"
    ip link add "$dev_a" netns "$a" type veth peer name "$dev_b" netns "$b"
    for x in "$a $dev_a 198.18.0.1" "$b $dev_b 198.18.0.2"; do
        read -r ns dev v4 <<<"$x"
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$v4/24" dev "$dev"
        ip -n "$ns" link set "$dev" up
    done
    for i in $(seq 1 250); do
        if ip -n "$a" -o link show "$dev_a" | grep -q "state UP" &&
           ip -n "$b" -o link show "$dev_b" | grep -q "state UP"; then
            return 0
        fi
        sleep 0.02
    done
    return 1
}

# ns_remove NS...: TERM to everything still running in each namespace (all of it ours:
# the script made the namespace), KILL to what is left 0.3 s later, then delete it.
# Namespaces that do not exist are skipped, so a cleanup trap may call it at any point.
ns_remove() {
    local ns pids
    for ns in "$@"; do
        [ -e "/run/netns/$ns" ] || continue
        pids=$(ip netns pids "$ns" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
    done
    sleep 0.3
    for ns in "$@"; do
        [ -e "/run/netns/$ns" ] || continue
        pids=$(ip netns pids "$ns" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    return 0
}
