#!/usr/bin/env python3
"""Runs `sockeye probe` and `nmap -sV` side by side and checks what each found (stdlib only).

Called by benches/probe/run.sh, which builds the namespaces and starts the lab:

    probe_bench.py --bench 1 --title T --ns NS --runs N --timeout S
                   --expect-open 21,22,... --expect-closed 23,88,109
                   --tool 'LABEL=PARSER:COMMAND' [--tool ...]
    probe_bench.py --bench 2 ... --expect-cidr 198.18.16.0/22 --tool ...

PARSER is how a tool's stdout is read:
  sockeye   sockeye probe --json: JSON Lines, one "service" record per checked port
  nmap-xml  nmap -oX -: <port> elements with <state> and <service name product version tunnel>

Timing, process groups and timeouts are benches/measure.py's run_once (the scan
benchmarks' harness): `ip netns exec NS /usr/bin/time ... COMMAND`, killed after
--timeout, tools alternating (run i starts with tool i mod n). The first tool is
"ours": the summary gives its median wall time divided by each peer's.

Bench 1 (one host, the 17 classic ports): a sockeye run is correct when every port of
--expect-open is open with its facts (banner, HTTP Server, TLS version, STARTTLS accepted
and the handshake after it, as the port's service calls for) and the --expect-closed ports
are not open; an nmap run is correct when exactly --expect-open is open, each with a
service name. Then a parity table: for each port nmap found open, its service, product,
version and SSL tunnel against what sockeye reported.

Bench 2 (a CIDR x ports 25 and 443): a sockeye run is correct when it has one service
record per (address, port), every 25 with starttls.accepted and a TLS version after the
upgrade, every 443 with a TLS version; an nmap run is counted (open, smtp with a product,
ssl/http with a product) and correct when every (address, port) is open and identified.
"""

import argparse
import ipaddress
import json
import os
import shlex
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET

# No __pycache__ next to the scripts (they often run as root from a checkout).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import measure  # noqa: E402  (benches/measure.py: run_once, formatting)

# Ports whose check upgrades in-protocol (STARTTLS, STLS, AUTH TLS, LDAP StartTLS),
# whose check starts with TLS, which greet with a banner, which answer HTTP.
STARTTLS_PORTS = {21, 25, 110, 143, 389, 587}
IMPLICIT_TLS_PORTS = {443, 465, 636, 993, 995}
BANNER_PORTS = {21, 22, 25, 110, 143, 465, 587, 993, 995}
HTTP_PORTS = {80, 443, 631}

# nmap's service name -> the sockeye service names that mean the same thing.
SAME_SERVICE = {
    "smtp": {"smtp", "submission", "smtps"},
    "submission": {"submission", "smtp"},
    "pop3": {"pop3", "pop3s"},
    "imap": {"imap", "imaps"},
    "http": {"http", "https", "ipp"},
    "https": {"https", "http"},
    "ipp": {"ipp", "http"},
    "ldap": {"ldap", "ldaps"},
    "imaps": {"imaps"},
    "pop3s": {"pop3s"},
    "smtps": {"smtps"},
    "ldaps": {"ldaps"},
    "ssh": {"ssh"},
    "ftp": {"ftp"},
}


def parse_sockeye(text):
    """{(addr, port): service record} of sockeye's JSON Lines."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("type") == "service":
            found[(str(o.get("addr")), int(o.get("port")))] = o
    return found


def parse_nmap_xml(text):
    """{(addr, port): {"state", "name", "product", "version", "tunnel"}} of nmap -oX."""
    found = {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return found
    for host in root.iter("host"):
        addr = next((a.get("addr") for a in host.iter("address") if a.get("addrtype") == "ipv4"),
                    None)
        for port in host.iter("port"):
            st = port.find("state")
            sv = port.find("service")
            rec = {"state": st.get("state") if st is not None else "?"}
            if sv is not None:
                for k in ("name", "product", "version", "extrainfo", "hostname", "tunnel", "method"):
                    if sv.get(k):
                        rec[k] = sv.get(k)
            found[(addr, int(port.get("portid")))] = rec
    return found


def ns_cpu_seconds(ns):
    """CPU seconds (user+sys, own and reaped children's) of every process in namespace NS.

    The difference around a run is what the lab's servers spent on it (Postfix's smtpd
    and nginx's worker stay alive between runs; what an exited process used is counted
    in its parent's cutime/cstime once reaped). None when it cannot be read.
    """
    try:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in out.split():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
        total += sum(int(x) for x in fields[11:15])
    return total / tick


PARSERS = {"sockeye": parse_sockeye, "nmap-xml": parse_nmap_xml}
# run_once looks its parser up in measure.PARSERS by name.
measure.PARSERS.update(PARSERS)


def tls_version(tls):
    """The negotiated version of a TLS outcome, or None (not attempted or failed)."""
    if isinstance(tls, dict):
        return tls.get("version")
    return None


def sockeye_text(rec):
    """Everything sockeye said about a port, lower-cased, to look nmap's product up in."""
    parts = [rec.get("banner") or "", rec.get("product") or ""]
    parts += rec.get("greeting") or []
    parts += rec.get("capabilities") or []
    http = rec.get("http") or {}
    parts.append(http.get("server") or "")
    st = rec.get("starttls") or {}
    parts.append(st.get("reply") or "")
    return " ".join(parts).lower()


def sockeye_facts_ok(port, rec):
    """Bench 1: the facts a port's check must report; returns a list of what is missing."""
    missing = []
    if rec.get("state") != "open":
        return [f"state {rec.get('state')}"]
    if port in BANNER_PORTS and not rec.get("banner"):
        missing.append("banner")
    if port in HTTP_PORTS and not (rec.get("http") or {}).get("server"):
        missing.append("http server")
    if port in IMPLICIT_TLS_PORTS and not tls_version(rec.get("tls")):
        missing.append("tls")
    if port in STARTTLS_PORTS:
        st = rec.get("starttls") or {}
        if not st.get("accepted"):
            missing.append("starttls accepted")
        elif not tls_version(st.get("tls")):
            missing.append("tls after starttls")
    if rec.get("error"):
        missing.append(f"error {rec['error']}")
    return missing


def short(s, n):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def nmap_says(n):
    if not n:
        return "-"
    name = n.get("name", "?")
    if n.get("tunnel"):
        name = f"{n['tunnel']}/{name}"
    prod = " ".join(x for x in (n.get("product"), n.get("version")) if x)
    return f"{n['state']} {name}" + (f" ({prod})" if prod else "")


def sockeye_says(s):
    if not s:
        return "-"
    out = f"{s.get('state')} {s.get('service')}"
    what = (s.get("http") or {}).get("server") or s.get("banner") or s.get("product")
    if what:
        out += f": {short(what, 44)}"
    v = tls_version(s.get("tls"))
    if v:
        out += f"; TLS {v}"
    elif isinstance(s.get("tls"), dict) and s["tls"].get("failed"):
        out += f"; TLS failed: {short(s['tls']['failed'], 30)}"
    st = s.get("starttls")
    if st:
        verdict = "accepted" if st.get("accepted") else "refused"
        tv = tls_version(st.get("tls"))
        out += f"; {st.get('command')} {verdict}" + (f", TLS {tv}" if tv else "")
    return out


def parity(n, s):
    """Does sockeye report at least what nmap reports for this port?

    Returns (verdict, details). Required: the same service, TLS where nmap saw an SSL
    tunnel, nmap's product name (its first word) and host name somewhere in what sockeye
    reported. nmap's version is looked up too but only reported: nmap often infers it
    from how a server behaves ("vsftpd 2.0.8 or later") rather than reading it.
    """
    if n is None or n.get("state") != "open":
        return True, "nmap: not open"
    if s is None or s.get("state") != "open":
        return False, "sockeye: not open"
    gaps, seen = [], []
    name = n.get("name", "")
    if name and s.get("service") not in SAME_SERVICE.get(name, {name}):
        gaps.append(f"service {s.get('service')} vs {name}")
    else:
        seen.append("service")
    if n.get("tunnel") == "ssl":
        if tls_version(s.get("tls")):
            seen.append("tls")
        else:
            gaps.append("tls")
    text = sockeye_text(s)
    if n.get("product"):
        word = n["product"].split()[0].lower()
        if word in text:
            seen.append("product")
        else:
            gaps.append(f"product {n['product']!r}")
    if n.get("hostname", "").strip():
        if n["hostname"].strip().lower() in text:
            seen.append("hostname")
        else:
            gaps.append(f"hostname {n['hostname'].strip()!r}")
    if tls_version(s.get("tls")) and n.get("tunnel") != "ssl":
        seen.append("+tls")
    if not n.get("product") and (s.get("banner") or (s.get("http") or {}).get("server")):
        seen.append("+banner")
    if s.get("starttls"):
        seen.append("+starttls")
    note = ""
    if n.get("version"):
        word = n["version"].split()[0].lower()
        note = (" (version seen)" if word in text
                else f" (nmap's version {n['version']!r} not in sockeye's output)")
    if gaps:
        return False, "missing " + ", ".join(gaps) + note
    return True, " ".join(seen) + note


def check_bench1(label, parser, r, expect_open, expect_closed, addr):
    found = r["found"]
    problems = []
    if parser == "sockeye":
        for p in sorted(expect_open):
            rec = found.get((addr, p))
            if rec is None:
                problems.append(f"{p}: no record")
                continue
            miss = sockeye_facts_ok(p, rec)
            if miss:
                problems.append(f"{p}: {', '.join(miss)}")
        for p in sorted(expect_closed):
            rec = found.get((addr, p))
            if rec is not None and rec.get("state") == "open":
                problems.append(f"{p}: open")
        n_open = sum(1 for rec in found.values() if rec.get("state") == "open")
        what = f"{len(found)} records, {n_open} open"
    else:
        opened = {p for (a, p), rec in found.items() if a == addr and rec["state"] == "open"}
        for p in sorted(expect_open - opened):
            problems.append(f"{p}: not open")
        for p in sorted(opened - expect_open):
            problems.append(f"{p}: open")
        for p in sorted(opened):
            if not found[(addr, p)].get("name"):
                problems.append(f"{p}: no service name")
        what = f"{len(opened)} open"
    return problems, what


def check_bench2(label, parser, r, hosts):
    found = r["found"]
    want = {(h, p) for h in hosts for p in (25, 443)}
    problems = []
    counts = {}
    if parser == "sockeye":
        st_ok = sum(1 for (a, p), rec in found.items() if p == 25 and rec.get("state") == "open"
                    and (rec.get("starttls") or {}).get("accepted")
                    and tls_version((rec.get("starttls") or {}).get("tls")))
        tls_ok = sum(1 for (a, p), rec in found.items() if p == 443 and rec.get("state") == "open"
                     and tls_version(rec.get("tls")))
        counts = {"records": len(found), "25 starttls+tls": st_ok, "443 tls": tls_ok}
        if len(found) != len(want) or set(found) != want:
            problems.append(f"{len(found)} records, {len(want - set(found))} missing, "
                            f"{len(set(found) - want)} unexpected")
        if st_ok != len(hosts):
            problems.append(f"25: {st_ok} of {len(hosts)} with STARTTLS accepted and TLS")
        if tls_ok != len(hosts):
            problems.append(f"443: {tls_ok} of {len(hosts)} with TLS")
        what = (f"{len(found)} records, 25 STARTTLS+TLS {st_ok}, 443 TLS {tls_ok}")
    else:
        opened = {k for k, rec in found.items() if rec["state"] == "open"}
        smtp = sum(1 for (a, p), rec in found.items() if p == 25 and rec["state"] == "open"
                   and rec.get("name") == "smtp" and rec.get("product"))
        https = sum(1 for (a, p), rec in found.items() if p == 443 and rec["state"] == "open"
                    and rec.get("tunnel") == "ssl" and rec.get("name") in ("http", "https")
                    and rec.get("product"))
        counts = {"open": len(opened), "25 smtp+product": smtp, "443 ssl/http+product": https}
        if opened != want:
            problems.append(f"{len(opened)} open, {len(want - opened)} missing")
        if smtp != len(hosts) or https != len(hosts):
            problems.append(f"identified smtp {smtp}, ssl/http {https} of {len(hosts)}")
        what = f"{len(opened)} open, 25 smtp+product {smtp}, 443 ssl/http+product {https}"
    r["counts"] = counts
    return problems, what


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", type=int, choices=(1, 2), required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("--ns", default="")
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--expect-open", default="")
    ap.add_argument("--expect-closed", default="")
    ap.add_argument("--addr", default="198.18.0.2", help="bench 1's host")
    ap.add_argument("--expect-cidr", default="")
    ap.add_argument("--tool", action="append", required=True, help="LABEL=PARSER:COMMAND")
    ap.add_argument("--server-ns", help="the lab's namespace, for the servers' CPU per run")
    ap.add_argument("--tmpdir")
    ap.add_argument("--raw")
    args = ap.parse_args()

    runs = max(1, min(args.runs, 100))
    tools = []
    for spec in args.tool:
        label, rest = spec.split("=", 1)
        parser, command = rest.split(":", 1)
        if parser not in PARSERS:
            sys.exit(f"probe_bench.py: unknown parser {parser!r}")
        tools.append((label, parser, shlex.split(command)))
    expect_open = {int(p) for p in args.expect_open.split(",") if p}
    expect_closed = {int(p) for p in args.expect_closed.split(",") if p}
    hosts = [str(h) for h in ipaddress.ip_network(args.expect_cidr)] if args.expect_cidr else []
    checks = len(hosts) * 2 if args.bench == 2 else 17

    print(f"\n=== {args.title}")
    print(f"    {runs} run(s) per tool, order rotated each run; timeout {args.timeout:.0f}s per run")
    for label, _parser, argv in tools:
        print(f"    {label:14} {shlex.join(argv)}")
    sys.stdout.flush()

    results = {label: [] for label, _, _ in tools}
    last = {}
    raw = open(args.raw, "a") if args.raw else None
    for i in range(runs):
        order = tools[i % len(tools):] + tools[:i % len(tools)]
        for label, parser, argv in order:
            before = ns_cpu_seconds(args.server_ns) if args.server_ns else None
            r = measure.run_once(args.ns, argv, parser, args.timeout, args.tmpdir)
            after = ns_cpu_seconds(args.server_ns) if args.server_ns else None
            r["server_cpu"] = (after - before) if before is not None and after is not None \
                else float("nan")
            if args.bench == 1:
                problems, what = check_bench1(label, parser, r, expect_open, expect_closed,
                                              args.addr)
            else:
                problems, what = check_bench2(label, parser, r, hosts)
            ok = not problems and not r["note"] and r["rc"] == 0
            r["ok"] = ok
            results[label].append(r)
            last[label] = r["found"]
            flag = "ok " if ok else "BAD"
            line = (f"    run {i + 1:2}/{runs} {label:14} {flag} wall {measure.fmt_s(r['wall']):>7}s "
                    f"cpu {measure.fmt_s(r['user'] + r['sys']):>7}s "
                    f"rss {measure.fmt_mib(r['rss_kib']):>7}MiB "
                    f"server cpu {measure.fmt_s(r['server_cpu'])}s rc {r['rc']} {what} {r['note']}")
            if problems:
                line += "\n        problems: " + "; ".join(problems[:8])
            if r["rc"] != 0 and r["stderr"].strip():
                line += "\n        stderr: " + r["stderr"].strip().splitlines()[-1][:200]
            print(line, flush=True)
            if raw:
                raw.write(json.dumps({"title": args.title, "run": i + 1, "tool": label,
                                      "command": shlex.join(argv), "problems": problems,
                                      **{k: v for k, v in r.items()
                                         if k not in ("stderr", "found")}}) + "\n")
            r["found"] = None  # keep only the last run's records (bench 2's are large)
    if raw:
        raw.close()

    print(f"\n  {args.title}: summary\n")
    print("| tool | median s | min s | max s | correct | checks/s | CPU s (median) | peak RSS MiB "
          "| servers' CPU s (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    medians = {}
    for label, _, _ in tools:
        rs = results[label]
        walls = [r["wall"] for r in rs]
        cpus = [r["user"] + r["sys"] for r in rs if r["user"] == r["user"]]
        rss = max((r["rss_kib"] for r in rs if r["rss_kib"] == r["rss_kib"]), default=float("nan"))
        med = statistics.median(walls)
        medians[label] = med
        cpu = statistics.median(cpus) if cpus else float("nan")
        correct = sum(r["ok"] for r in rs)
        scpus = [r["server_cpu"] for r in rs if r["server_cpu"] == r["server_cpu"]]
        scpu = statistics.median(scpus) if scpus else float("nan")
        print(f"| {label} | {measure.fmt_s(med)} | {measure.fmt_s(min(walls))} | "
              f"{measure.fmt_s(max(walls))} | {correct}/{len(rs)} | {checks / med:,.1f} | "
              f"{measure.fmt_s(cpu)} | {measure.fmt_mib(rss)} | {measure.fmt_s(scpu)} |")
    ours = tools[0][0]
    print()
    for label, _, _ in tools[1:]:
        print(f"  ratio {ours}/{label} (median wall): {medians[ours] / medians[label]:.3f}")

    if args.bench == 1:
        s_label = next((l for l, p, _ in tools if p == "sockeye"), None)
        n_label = next((l for l, p, _ in tools if p == "nmap-xml"), None)
        if s_label and n_label:
            s_found, n_found = last[s_label], last[n_label]
            print(f"\n  Parity (last run of each): what nmap -sV reports vs what sockeye reports\n")
            print("| port | nmap says | sockeye says | sockeye has nmap's facts |")
            print("| --- | --- | --- | --- |")
            all_ok = True
            ports = sorted({p for (_a, p) in list(s_found) + list(n_found)})
            for p in ports:
                n = n_found.get((args.addr, p))
                s = s_found.get((args.addr, p))
                ok, detail = parity(n, s)
                all_ok &= ok
                print(f"| {p} | {nmap_says(n)} | {sockeye_says(s)} | "
                      f"{'yes' if ok else 'NO'}: {detail} |")
            print(f"\n  parity: {'sockeye reports every fact nmap reports' if all_ok else 'GAPS (see NO rows)'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
