#!/usr/bin/env python3
"""Checks a scan's port states against the truth (stdlib only); prints "ok" or what is wrong.

    port-states.py KIND FILE LAST OPEN FILTERED

KIND is json (sockeye JSON Lines with --all-states) or xml (nmap -oX). Ports 1-LAST
were scanned; OPEN and FILTERED are comma-separated lists (FILTERED may be empty);
every other port must be closed. Ports nmap folds into <extraports> must be closed.
Used by benches/scan-udp.sh and benches/scan-badnet.sh.
"""
import json
import sys
import xml.etree.ElementTree as ET

kind, path, last, want_open, want_filtered = sys.argv[1:6]
last = int(last)
want_open = {int(p) for p in want_open.split(",")}
want_filtered = {int(p) for p in want_filtered.split(",") if p}
states, folded = {}, []
if kind == "json":
    for line in open(path):
        o = json.loads(line)
        if o.get("type") == "port":
            states[o["port"]] = o["state"]
else:
    root = ET.parse(path).getroot()
    for p in root.iter("port"):
        states[int(p.get("portid"))] = p.find("state").get("state")
    for e in root.iter("extraports"):
        folded.append((e.get("state"), int(e.get("count"))))
def truth(p):
    return "open" if p in want_open else "filtered" if p in want_filtered else "closed"
bad = sorted(p for p, s in states.items() if s != truth(p))
missing = sorted((want_open | want_filtered) - set(states))
total = len(states) + sum(n for _, n in folded)
ok = not bad and not missing and all(s == "closed" for s, _ in folded) and total == last
print("ok" if ok else f"WRONG: {[(p, states[p]) for p in bad[:8]]} missing={missing[:8]} folded={folded} total={total}")
