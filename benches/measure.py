#!/usr/bin/env python3
"""Runs scan tools side by side and checks they found the same thing (stdlib only).

Called by benches/scan.sh, which builds the namespaces; usable alone too:

    measure.py --title T --ns NS --runs N --probes P --timeout S
               (--expect-hosts 198.18.0.2 | --expect-cidr 198.18.16.0/20) --expect-ports 22,80
               | --expect-count 16777216
               --tool 'LABEL=PARSER:COMMAND' [--tool ...]

PARSER is how the tool's stdout is read:
  json      sockeye JSON Lines: {"type":"port","addr":A,"port":P,"state":"open"}
  nmap-grep nmap -oG -:  Host: A ()  Ports: 22/open/tcp//ssh///, ...
  rustscan  rustscan -g:  A -> [22,80]
  count     number of lines (checked against --expect-count)
  nmap-list number of "Nmap scan report for" lines (nmap -sL; checked against --expect-count)

Each run executes `ip netns exec NS /usr/bin/time -f '%e %U %S %M' -o F COMMAND` (or
without `ip netns exec` when --ns is empty) in its own process group, killed after
--timeout. Tools run alternately (run i starts with tool i mod n) so that drift on
the machine hits every tool alike. The first tool is "ours": the summary gives its
median wall time divided by each peer's.
"""

import argparse
import ipaddress
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MAX_RUNS = 1000
MAX_OUTPUT = 512 * 1024 * 1024  # bytes of stdout kept per run (count parser keeps none)


def parse_json(text):
    found = set()
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("type") == "port" and o.get("state") == "open":
            found.add((str(o.get("addr")), int(o.get("port"))))
    return found


GREP_HOST = re.compile(r"^Host: (\S+) .*?Ports: (.*)$")
GREP_PORT = re.compile(r"(\d+)/open/tcp/")


def parse_nmap_grep(text):
    found = set()
    for line in text.splitlines():
        m = GREP_HOST.match(line)
        if m:
            for p in GREP_PORT.findall(m.group(2)):
                found.add((m.group(1), int(p)))
    return found


RUSTSCAN_LINE = re.compile(r"^(\S+) -> \[([0-9,\s]*)\]\s*$")


def parse_rustscan(text):
    found = set()
    for line in text.splitlines():
        m = RUSTSCAN_LINE.match(line.strip())
        if m:
            for p in m.group(2).split(","):
                if p.strip():
                    found.add((m.group(1), int(p)))
    return found


NMAP_LIST_MARK = b"\nNmap scan report for "
COUNTERS = ("count", "nmap-list")

PARSERS = {"json": parse_json, "nmap-grep": parse_nmap_grep, "rustscan": parse_rustscan}


def run_once(ns, argv, parser, timeout, tmpdir=None):
    """One timed run. Returns a dict (wall, user, sys, rss_kib, rc, found|count, note)."""
    fd, timefile = tempfile.mkstemp(prefix="measure-time-", dir=tmpdir)
    os.close(fd)
    cmd = []
    if ns:
        cmd += ["ip", "netns", "exec", ns]
    cmd += ["/usr/bin/time", "-f", "%e %U %S %M", "-o", timefile] + argv
    chunks, nbytes, lines, carry = [], [0], [0], [b"\n"]

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    err = []

    def read_out():
        while True:
            b = proc.stdout.read1(1 << 20)
            if not b:
                break
            if parser == "count":
                lines[0] += b.count(b"\n")
            elif parser == "nmap-list":
                # Count "Nmap scan report for" lines without keeping 16M of them;
                # keep the tail so a marker split between two reads is still seen.
                buf = carry[0] + b
                lines[0] += buf.count(NMAP_LIST_MARK)
                carry[0] = buf[-(len(NMAP_LIST_MARK) - 1):]
            elif nbytes[0] < MAX_OUTPUT:
                chunks.append(b)
                nbytes[0] += len(b)

    def read_err():
        err.append(proc.stderr.read(1 << 16))
        proc.stderr.read()  # discard the rest, keep the pipe flowing

    threads = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    note = ""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Our own process group (start_new_session): time(1) and the tool under it.
        os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
        note = f"timeout after {timeout}s"
    wall = time.perf_counter() - t0
    for t in threads:
        t.join(timeout=5)

    user = sysc = rss = float("nan")
    try:
        with open(timefile) as f:
            last = [l for l in f.read().splitlines() if l.strip()][-1].split()
        _e, user, sysc, rss = float(last[0]), float(last[1]), float(last[2]), float(last[3])
    except (OSError, IndexError, ValueError):
        pass
    finally:
        os.unlink(timefile)

    r = {"wall": wall, "user": user, "sys": sysc, "rss_kib": rss, "rc": rc, "note": note,
         "stderr": b"".join(err).decode(errors="replace")[-400:]}
    if parser in COUNTERS:
        r["count"] = lines[0]
    else:
        r["found"] = PARSERS[parser](b"".join(chunks).decode(errors="replace"))
    return r


def fmt_mib(kib):
    return "-" if kib != kib else f"{kib / 1024:.1f}"


def fmt_us(x):
    return "-" if x != x else f"{x * 1e6:.2f}us"


def fmt_s(x):
    return "-" if x != x else (f"{x:.3f}" if x < 10 else f"{x:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", required=True)
    ap.add_argument("--ns", default="")
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--probes", type=int, required=True, help="probes per run, for CPU/probe")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--expect-hosts", default="")
    ap.add_argument("--expect-cidr", default="")
    ap.add_argument("--expect-ports", default="")
    ap.add_argument("--expect-count", type=int)
    ap.add_argument("--tool", action="append", required=True, help="LABEL=PARSER:COMMAND")
    ap.add_argument("--once", action="append", default=[],
                    help="LABEL: run this (slow) tool in the first run only")
    ap.add_argument("--tmpdir", help="where time(1) writes its reports (default: $TMPDIR)")
    ap.add_argument("--raw", help="append one JSON object per run to this file")
    args = ap.parse_args()

    runs = max(1, min(args.runs, MAX_RUNS))
    tools = []
    for spec in args.tool:
        label, rest = spec.split("=", 1)
        parser, command = rest.split(":", 1)
        if parser not in PARSERS and parser not in COUNTERS:
            sys.exit(f"measure.py: unknown parser {parser!r}")
        tools.append((label, parser, shlex.split(command)))

    expected = set()
    if args.expect_ports:
        ports = [int(p) for p in args.expect_ports.split(",")]
        if args.expect_cidr:
            hosts = [str(h) for h in ipaddress.ip_network(args.expect_cidr)]
        else:
            hosts = args.expect_hosts.split(",")
        expected = {(h, p) for h in hosts for p in ports}

    print(f"\n=== {args.title}")
    print(f"    {runs} run(s) per tool, order rotated each run; timeout {args.timeout:.0f}s per run")
    for label, parser, argv in tools:
        once = " (first run only)" if label in args.once else ""
        print(f"    {label:14} {shlex.join(argv)}{once}")
    if expected:
        print(f"    expected open: {len(expected)} (host, port) pairs")
    else:
        print(f"    expected lines: {args.expect_count}")
    sys.stdout.flush()

    results = {label: [] for label, _, _ in tools}
    raw = open(args.raw, "a") if args.raw else None
    for i in range(runs):
        order = tools[i % len(tools):] + tools[:i % len(tools)]
        for label, parser, argv in order:
            if i > 0 and label in args.once:
                continue
            r = run_once(args.ns, argv, parser, args.timeout, args.tmpdir)
            if parser in COUNTERS:
                ok = r["count"] == args.expect_count
                what = f"{r['count']} lines"
            else:
                missing = expected - r["found"]
                extra = r["found"] - expected
                ok = not missing and not extra
                what = f"{len(r['found'])} open"
                if missing:
                    what += f", missing {len(missing)}: {sorted(missing)[:12]}"
                if extra:
                    what += f", extra {len(extra)}: {sorted(extra)[:12]}"
                r["found"] = sorted(r["found"]) if raw else None
            ok = ok and not r["note"] and r["rc"] == 0
            r["ok"] = ok
            results[label].append(r)
            flag = "ok " if ok else "BAD"
            line = (f"    run {i + 1:2}/{runs} {label:14} {flag} wall {fmt_s(r['wall']):>7}s "
                    f"cpu {fmt_s(r['user'] + r['sys']):>7}s rss {fmt_mib(r['rss_kib']):>7}MiB "
                    f"rc {r['rc']} {what} {r['note']}")
            if r["rc"] != 0 and r["stderr"].strip():
                line += "\n        stderr: " + r["stderr"].strip().splitlines()[-1][:200]
            print(line, flush=True)
            if raw:
                raw.write(json.dumps({"title": args.title, "run": i + 1, "tool": label,
                                      "command": shlex.join(argv), **{k: v for k, v in r.items()
                                                                      if k != "stderr"}}) + "\n")
    if raw:
        raw.close()

    print(f"\n  {args.title}: summary")
    hdr = (f"  {'tool':14} {'median s':>9} {'min s':>8} {'max s':>8} {'correct':>8} "
           f"{'cpu s':>7} {'cpu/probe':>10} {'maxRSS MiB':>10}")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    medians = {}
    for label, _, _ in tools:
        rs = results[label]
        walls = [r["wall"] for r in rs]
        cpus = [r["user"] + r["sys"] for r in rs]
        rss = max((r["rss_kib"] for r in rs if r["rss_kib"] == r["rss_kib"]), default=float("nan"))
        med = statistics.median(walls)
        medians[label] = med
        cpus = [c for c in cpus if c == c]
        cpu = statistics.median(cpus) if cpus else float("nan")
        per_probe = cpu / args.probes if args.probes else float("nan")
        correct = sum(r["ok"] for r in rs)
        print(f"  {label:14} {fmt_s(med):>9} {fmt_s(min(walls)):>8} {fmt_s(max(walls)):>8} "
              f"{f'{correct}/{len(rs)}':>8} {fmt_s(cpu):>7} {fmt_us(per_probe):>10} "
              f"{fmt_mib(rss):>10}")
    ours = tools[0][0]
    for label, _, _ in tools[1:]:
        print(f"  ratio {ours}/{label} (median wall): {medians[ours] / medians[label]:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
