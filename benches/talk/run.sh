#!/usr/bin/env bash
# benches/talk: `sockeye talk` / `exercise run` against the lab, and the
# expect engine's CPU per matched pattern against Tcl expect's.
#
# 1. Throughput: a plan of 1,000 conversations (the seed's FTP login matrix,
#    five cases, repeated 200 times) run at the default concurrency (32)
#    against the lab's vsftpd; every verdict must hold; checks per second.
# 2. CPU per matched pattern: the same FTP login conversation (alice: 220,
#    USER, 331, PASS, 230, QUIT, 221: four patterns) driven 1,000 times one
#    after another, by `sockeye exercise run` (a sequential plan) and by Tcl
#    expect (ftp_login.exp, `spawn -open` on a socket); CPU time of each
#    driver process (wait4), divided by the patterns matched.
#
# Usage (root; needs the lab's packages, see scripts/test.sh, and `expect`):
#   cargo build --release && benches/talk/run.sh [N]
# Brings the lab up with tests/lab/lab.sh unless it is up, and down again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SOCKEYE_BIN:-$root/target/release/sockeye}
n=${1:-1000}
lab=$root/tests/lab/lab.sh
ns=sklab-c
target=198.18.0.2

[ -x "$bin" ] || { echo "run.sh: build first: cargo build --release" >&2; exit 1; }
if ! command -v expect >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq expect >/dev/null
  else
    echo "run.sh: needs Tcl expect (apt-get install expect)" >&2; exit 1
  fi
fi
work=$(mktemp -d)
lab_started=
cleanup() {
  rm -rf "$work"
  [ -z "$lab_started" ] || "$lab" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [ ! -e "/run/netns/$ns" ]; then
  lab_started=1
  "$lab" up >/dev/null
fi

python3 - "$work" "$n" "$target" <<'PY'
import sys
work, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
steps = '''      steps:
        - {name: Name prompt, expect: "^220 ", send: "USER {{user}}"}
        - {name: Password prompt, expect: "^331 ", send: "PASS {{pass}}"}
        - {name: FTP application prompt, expect: "^230 ", fail: ["^530 "], send: QUIT}
        - {name: Goodbye, expect: "^221 "}
'''
cases = [("bad address", "198.18.0.99", 21, "badIP", "badPasswd", "fail"),
         ("bad username", target, 21, "badUser", "badPasswd", "fail"),
         ("good username", target, 21, "alice", "wonderland", "success"),
         ("anonymous/badPasswd", target, 2121, "anonymous", "badPasswd", "fail"),
         ("anonymous/goodpwd", target, 2121, "anonymous", "guest@lab.test", "success")]
with open(f"{work}/matrix.yaml", "w") as f:
    f.write("name: seed FTP matrix x%d\ndefaults: {connect_timeout: 2s, timeout: 5s}\n" % (n // 5))
    f.write('checks:\n  - name: "{{case}} #{{i}}"\n    talk:\n      target: "{{host}}:{{port}}"\n' + steps)
    f.write("    matrix:\n")
    for i in range(n // 5):
        for case, host, port, user, pw, exp in cases:
            f.write(f'      - {{case: "{case}", i: {i}, host: {host}, port: {port}, user: {user}, pass: "{pw}", expect: {exp}}}\n')
with open(f"{work}/logins.yaml", "w") as f:
    f.write("name: alice logs in x%d\nsequential: true\ndefaults: {timeout: 5s}\n" % n)
    f.write(f'vars: {{user: alice, pass: wonderland}}\nchecks:\n  - name: "login #{{{{i}}}}"\n    talk:\n      target: "{target}:21"\n' + steps)
    f.write("    matrix:\n")
    for i in range(n):
        f.write(f"      - {{i: {i}}}\n")
PY

echo "== 1. $n conversations (the seed's FTP matrix x $((n / 5))), default concurrency"
m1=$(ip netns exec "$ns" python3 "$here/measure.py" -- "$bin" exercise run "$work/matrix.yaml" -o "json=$work/matrix.jsonl" -o tap)
python3 - "$m1" "$work/matrix.jsonl" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
recs = [json.loads(l) for l in open(sys.argv[2])]
s = recs[-1]
assert m["status"] == 0 and s["failed"] == 0, (m, s)
rate = s["checks"] / m["wall_s"]
print(f"   {s['checks']} checks, {s['passed']} passed, {s['failed']} failed in {m['wall_s']} s: "
      f"{rate:.1f} checks/s; sockeye CPU {m['cpu_s']} s, max RSS {m['max_rss_kib']} KiB")
PY

echo "== 2. the FTP login conversation driven $n times, one after another (4 patterns each)"
s2=$(ip netns exec "$ns" python3 "$here/measure.py" -- "$bin" exercise run "$work/logins.yaml" -o "json=$work/logins.jsonl")
e2=$(ip netns exec "$ns" python3 "$here/measure.py" -- expect -f "$here/ftp_login.exp" "$target" 21 "$n")
python3 - "$s2" "$e2" "$work/logins.jsonl" "$n" <<'PY'
import json, sys
s, e = json.loads(sys.argv[1]), json.loads(sys.argv[2])
recs = [json.loads(l) for l in open(sys.argv[3])]
n = int(sys.argv[4])
summary = recs[-1]
assert s["status"] == 0 and summary["passed"] == n, (s, summary)
assert e["status"] == 0 and f"ok {n} matched {4 * n}" in e["stdout_tail"], e
matches = 4 * n
for name, m in (("sockeye", s), ("expect ", e)):
    print(f"   {name}: wall {m['wall_s']:7.2f} s, CPU {m['cpu_s']:6.2f} s "
          f"(user {m['user_s']:.2f}, sys {m['sys_s']:.2f}), "
          f"{1e6 * m['cpu_s'] / matches:7.1f} us CPU per matched pattern, max RSS {m['max_rss_kib']} KiB")
print(f"   expect / sockeye CPU per match: {e['cpu_s'] / max(s['cpu_s'], 1e-9):.2f}x")
PY
