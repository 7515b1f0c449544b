#!/usr/bin/env bash
# The sockeye lab for humans and benchmarks: `tests/lab/lab.sh up|down|status`.
#
# `up` makes a namespace pair, sklab-c (client, 198.18.0.1, fd00:5ec::1) and
# sklab-s (server, 198.18.0.2, fd00:5ec::2) joined by a veth pair created
# directly inside them, and runs services.sh start in sklab-s with its state in
# /tmp/sockeye-lab. Then e.g. `ip netns exec sklab-c sockeye probe 198.18.0.2`.
# `down` stops the services, ends whatever still runs in the two namespaces
# (ip netns pids), deletes them and the state directory. Must run as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLIENT=sklab-c
SERVER=sklab-s
STATE=/tmp/sockeye-lab
# A lab kept up for a benchmark session: the scripted responders live this long.
export SOCKEYE_LAB_RESPONDER_SECONDS=${SOCKEYE_LAB_RESPONDER_SECONDS:-14400}

exists() { [ -e "/run/netns/$1" ]; }

# Ends every process in namespace $1 (TERM, a grace, KILL) and deletes it.
destroy() {
  local ns=$1 pids
  exists "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 30); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] && break
      sleep 0.1
    done
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
  fi
  ip netns del "$ns"
}

up() {
  # Creating the namespace is the check: of two `up` at once, exactly one
  # makes each name (a look first, then a create, would let both through).
  if ! ip netns add "$CLIENT" 2>/dev/null; then
    echo "lab.sh: the lab is already up (lab.sh down first)" >&2
    exit 1
  fi
  if ! ip netns add "$SERVER" 2>/dev/null; then
    ip netns del "$CLIENT"
    echo "lab.sh: the lab is already up (lab.sh down first)" >&2
    exit 1
  fi
  trap 'down >/dev/null 2>&1' ERR
  ip link add veth-c netns "$CLIENT" type veth peer name veth-s netns "$SERVER"
  for side in "$CLIENT veth-c 198.18.0.1 fd00:5ec::1" "$SERVER veth-s 198.18.0.2 fd00:5ec::2"; do
    set -- $side
    ip netns exec "$1" sysctl -q -w "net.ipv6.conf.$2.accept_dad=0"
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" -6 addr add "$4/64" dev "$2" nodad
    ip -n "$1" link set "$2" up
  done
  rm -rf "$STATE"
  mkdir -p "$STATE"
  local t0=$SECONDS
  ip netns exec "$SERVER" "$here/services.sh" start "$STATE" 198.18.0.2
  trap - ERR
  echo "lab.sh: up in $((SECONDS - t0)) s; client namespace $CLIENT (198.18.0.1), server $SERVER (198.18.0.2)"
  echo "lab.sh: test CA $STATE/tls/ca.crt; try: ip netns exec $CLIENT nc 198.18.0.2 25"
}

down() {
  if [ -d "$STATE" ]; then
    "$here/services.sh" stop "$STATE" || true
  fi
  destroy "$CLIENT"
  destroy "$SERVER"
  rm -rf "$STATE"
  echo "lab.sh: down"
}

status() {
  local ns
  for ns in "$CLIENT" "$SERVER"; do
    if exists "$ns"; then echo "$ns: present"; else echo "$ns: absent"; fi
  done
  if exists "$SERVER"; then
    echo "listening in $SERVER:"
    ip netns exec "$SERVER" ss -Hltn | awk '{print "  " $4}' | sort -t: -k2 -n
  fi
  if [ -d "$STATE/pids" ]; then
    for f in "$STATE"/pids/*.pid; do
      [ -e "$f" ] || continue
      read -r pid _ <"$f"
      if kill -0 "$pid" 2>/dev/null; then s=running; else s=dead; fi
      echo "  $(basename "$f" .pid): pid $pid $s"
    done
  fi
}

[ "$(id -u)" = 0 ] || { echo "lab.sh: must run as root" >&2; exit 1; }
case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
