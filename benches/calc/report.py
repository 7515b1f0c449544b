#!/usr/bin/env python3
"""Prints the tables of benches/calc/run.sh from its JSON lines (stdlib only).

    report.py RESULTS.jsonl

Each line: {"server", "load", "loadgen_exit", "server_cpu_s", "server_alive_after_load",
"server_stop", "result": <one calc-loadgen JSON object>}.
"""

import json
import sys


def fmt_rate(x):
    return f"{x:,.0f}"


def fmt_us(x):
    if x >= 10000:
        return f"{x / 1000:.1f} ms"
    if x >= 1000:
        return f"{x / 1000:.2f} ms"
    return f"{x:.0f} µs"


def ratio(a, b):
    return f"{a / b:.2f} x" if a and b else "-"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]

    def shape(r):
        res = r.get("result", {})
        return res.get("depth") or res.get("window") or 0

    by = {(r["server"], r["load"], shape(r)): r for r in rows}
    servers = [s for s in ("reference", "rust-threads", "sockeye", "udp-ceiling") if any(k[0] == s for k in by)]

    for load in ("tcp", "udp"):
        shapes = sorted({k[2] for k in by if k[1] == load})
        for sh in shapes:
            present = [s for s in servers if (s, load, sh) in by]
            r0 = by[(present[0], load, sh)]["result"]
            what = f"depth {sh}" if load == "tcp" else f"window {sh}"
            print(f"{load.upper()}: {r0.get('clients')} clients, SUM of {r0.get('numbers')} numbers, "
                  f"{what}, {r0.get('seconds')} s")
            print("| server | req/s | p50 | p99 | errors | server CPU | CPU/req | loadgen CPU |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for s in present:
                row = by[(s, load, sh)]
                r = row["result"]
                rps = r.get("req_per_s", 0)
                lat = r.get("latency_us", {})
                cpu = row["server_cpu_s"]
                answered = r.get("answered", 0) + r.get("drained", 0)
                per = f"{cpu / answered * 1e6:.2f} µs" if answered else "-"
                errs = r.get("errors", "?")
                if errs:
                    errs = f"{errs} ({r.get('first_error')})"
                print(f"| {s} | {fmt_rate(rps)} | {fmt_us(lat.get('p50', 0))} | {fmt_us(lat.get('p99', 0))} "
                      f"| {errs} | {cpu:.2f} s | {per} | {r.get('loadgen_cpu_s')} s |")
            a = by.get(("reference", load, sh))
            for s in present:
                if s == "reference" or not a:
                    continue
                b = by[(s, load, sh)]
                ra, rb = a["result"], b["result"]
                ca = a["server_cpu_s"] / max(1, ra.get("answered", 0) + ra.get("drained", 0))
                cb = b["server_cpu_s"] / max(1, rb.get("answered", 0) + rb.get("drained", 0))
                line = (f"ratio {s}/reference: req/s {ratio(rb.get('req_per_s'), ra.get('req_per_s'))},"
                        f" server CPU per request {ratio(ca, cb)} less")
                if s == "sockeye":
                    goal = {"tcp": 50, "udp": 20}[load]
                    got = rb.get("req_per_s", 0) / ra["req_per_s"] if ra.get("req_per_s") else 0
                    line += f" (issue 5 goal: req/s >= {goal} x: {'met' if got >= goal else 'NOT met'})"
                print(line)
            print()

    by = {(k[0], k[1]): v for k, v in by.items() if k[1] == "idle"}
    present = [s for s in servers if (s, "idle") in by]
    if present:
        r0 = by[(present[0], "idle")]["result"]
        print(f"IDLE: {r0.get('connections')} connections held {r0.get('hold_seconds')} s; meanwhile "
              "every 100 ms a request on a held probe connection and one on a fresh connection, "
              "each to be answered within 1 s")
        print("| server | established | open at end | ramp | RSS before -> max | threads max "
              "| probes while held (held conn / fresh conn) | probe p99 (held / fresh) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for s in present:
            row = by[(s, "idle")]
            r = row["result"]
            if not r:
                print(f"| {s} | load failed: {row.get('server_stderr_tail', '')[-200:]!r} |")
                continue
            ph = r["probe_held_connection"]["hold"]
            pf = r["probe_fresh_connection"]["hold"]
            rb, rm = r.get("server_rss_kib_before"), r.get("server_rss_kib_max")
            rss = f"{rb / 1024:.1f} -> {rm / 1024:.1f} MiB" if rb and rm else "-"
            print(f"| {s} | {r['established']}/{r['connections']} | {r['held_alive_at_end']} "
                  f"| {r['ramp_seconds']:.1f} s | {rss} | {r.get('server_threads_max')} "
                  f"| {ph['ok']}/{ph['sent']} / {pf['ok']}/{pf['sent']} "
                  f"| {fmt_us(ph['latency_us']['p99'])} / {fmt_us(pf['latency_us']['p99'])} |")
        for s in present:
            row = by[(s, "idle")]
            r = row["result"]
            notes = []
            if r.get("connect_failed"):
                notes.append(f"{r['connect_failed']} connects failed ({', '.join(r.get('connect_errors', []))})")
            for p in ("probe_held_connection", "probe_fresh_connection"):
                ramp = r.get(p, {}).get("ramp")
                if ramp and ramp["ok"] != ramp["sent"]:
                    notes.append(f"{p.split('_')[1]} probes during the ramp: {ramp['ok']}/{ramp['sent']} answered")
            if r.get("probe_first_error"):
                notes.append(f"first probe error: {r['probe_first_error']}")
            if not row["server_alive_after_load"]:
                notes.append("the server died during the load")
            if notes:
                print(f"  {s}: " + "; ".join(notes))
        if "sockeye" in present:
            r = by[("sockeye", "idle")]["result"]
            ph = r["probe_held_connection"]["hold"]
            pf = r["probe_fresh_connection"]["hold"]
            rss_ok = r.get("server_rss_kib_max") is not None and r["server_rss_kib_max"] <= 64 * 1024
            ok = (rss_ok and r["held_alive_at_end"] == r["connections"]
                  and ph["ok"] == ph["sent"] > 0 and pf["ok"] == pf["sent"] > 0)
            print(f"goal (RSS <= 64 MiB with all {r['connections']} held, every probe answered): "
                  f"{'met' if ok else 'NOT met'}")
        print()
    print("server stop: " + "; ".join(
        f"{r['server']} {r['load']}{' ' + str(shape(r)) if shape(r) else ''}: {r['server_stop']}" for r in rows))


if __name__ == "__main__":
    main()
