#!/usr/bin/env python3
"""Scripted TCP listener for sockeye's namespace tests and benchmarks (stdlib only).

Binds every given port on one address, accepts connections as fast as it can
and closes each one at once (it answers "is this port open?", nothing more).
It exits by itself after --seconds (a hard cap, so a forgotten listener cannot
live on), or on SIGTERM / SIGINT.

    listen.py --addr 198.18.0.2 --ports 1,22,80,1000-1010 [--seconds 120]
              [--ready-file F] [--backlog 4096]

When every port is bound and listening it prints "ready" on stdout (or, with
--ready-file, writes "ready" to F atomically); from then on connects succeed.
On exit it prints "accepted N" on stderr.
"""

import argparse
import errno
import os
import selectors
import signal
import socket
import struct
import sys
import time

MAX_SECONDS = 3600  # hard cap on --seconds
MAX_PORTS = 65535


def parse_ports(spec):
    ports = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            lo, hi = int(lo), int(hi)
            if not 1 <= lo <= hi <= 65535:
                raise ValueError(f"bad port range {part!r}")
            ports.extend(range(lo, hi + 1))
        else:
            p = int(part)
            if not 1 <= p <= 65535:
                raise ValueError(f"bad port {part!r}")
            ports.append(p)
    ports = sorted(set(ports))
    if not ports or len(ports) > MAX_PORTS:
        raise ValueError("need 1..65535 ports")
    return ports


def main():
    ap = argparse.ArgumentParser(description="accept-and-close TCP listener")
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ports", required=True, help="e.g. 1,22,80,1000-1010")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--ready-file")
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--rst", action="store_true",
                    help="abort each accepted connection with an RST (SO_LINGER 0) instead of a FIN")
    args = ap.parse_args()

    seconds = min(max(args.seconds, 0.1), MAX_SECONDS)
    ports = parse_ports(args.ports)
    family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET

    # SIGTERM / SIGINT end the loop at once (raising from the handler interrupts
    # select(), which Python would otherwise retry until its timeout).
    def on_signal(*_):
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sel = selectors.DefaultSelector()
    listeners = []
    for port in ports:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((args.addr, port))
        except OSError as e:
            print(f"listen.py: bind {args.addr} port {port}: {e}", file=sys.stderr)
            return 1
        s.listen(args.backlog)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        listeners.append(s)

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("ready\n")
        os.replace(tmp, args.ready_file)
    else:
        print("ready", flush=True)

    count = [0]  # connections accepted, kept across a Stop
    try:
        serve(sel, time.monotonic() + seconds, count, args.rst)
    except Stop:
        pass
    for s in listeners:
        s.close()
    print(f"listen.py: accepted {count[0]}", file=sys.stderr, flush=True)
    return 0


class Stop(Exception):
    pass


def serve(sel, deadline, count, rst=False):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(timeout=min(left, 1.0)):
            lsock = key.fileobj
            # Drain the accept queue: one wakeup may stand for thousands of connections.
            for _ in range(100000):
                try:
                    conn, _addr = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        time.sleep(0.001)
                        break
                    if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                        continue
                    raise
                if rst:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                count[0] += 1


if __name__ == "__main__":
    sys.exit(main())
