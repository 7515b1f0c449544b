#!/usr/bin/env python3
"""Reference calculator server for benches/calc/run.sh, written as the seed asks.

Seed 001 section 3 ("Rechen-Server", 3.3 "Unterstuetzung fuer mehrere Clients"):
Python, the `socket` module, `struct.pack`/`unpack`, a listen(sock) function that
starts one receive(conn) thread per TCP connection (threading.Thread), and UDP on the
same port served by one recvfrom loop (the seed has no threads for UDP). Protocol
and semantics: shared/spec/calc-protocol.md (big-endian; exact results; an invalid
request closes the TCP connection after the earlier answers / gets no UDP answer, and
is logged as "peer ID reason" on stderr).

    reference_server.py --host 127.0.0.1 --port 7000 [--seconds 300] [--ready-file F]
                        [--little-endian] [--backlog N] [--quiet]

Stdlib only. It prints "ready" (or writes it to --ready-file) once TCP and UDP are both
bound, and exits by itself after --seconds (default 300, hard cap 3600), or on
SIGTERM/SIGINT. `--backlog` defaults to what a student gets from `sock.listen()`
(Python picks min(SOMAXCONN, 128)). On exit it prints counters on stderr:
"served tcp=N udp=N rejected=N connections=N threads_max=N".
"""

import argparse
import os
import signal
import socket
import struct
import sys
import threading

MAX_SECONDS = 3600
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

stop = threading.Event()
counts = {"tcp": 0, "udp": 0, "rejected": 0, "connections": 0, "threads_max": 0}
quiet = False


def log(msg):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def calculate(op, nums):
    """(result, None), or (None, reason) for an invalid request."""
    if op == "SUM":
        result = sum(nums)
    elif op == "PRO":
        result = 1
        for z in nums:
            result *= z
    elif op == "MIN":
        if not nums:
            return None, "empty"
        result = min(nums)
    elif op == "MAX":
        if not nums:
            return None, "empty"
        result = max(nums)
    else:
        return None, "unknown-op"
    if result < I32_MIN or result > I32_MAX:
        return None, "overflow"
    return result, None


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def receive(conn, addr, e):
    peer = "%s:%d" % addr[:2]
    try:
        while True:
            header = recv_exact(conn, 8)
            if header is None:
                break
            rid, op, n = struct.unpack(e + "I3sB", header)
            body = recv_exact(conn, 4 * n)
            if body is None:
                log("%s %d truncated" % (peer, rid))
                break
            nums = struct.unpack(e + "%di" % n, body)
            result, reason = calculate(op.decode("utf-8", "replace"), nums)
            if reason:
                # every earlier answer has been sent (sendall below): close now
                counts["rejected"] += 1
                log("%s %d %s" % (peer, rid, reason))
                break
            conn.sendall(struct.pack(e + "Ii", rid, result))
            counts["tcp"] += 1
    except OSError:
        pass
    finally:
        conn.close()


def listen(sock, e):
    while not stop.is_set():
        try:
            conn, addr = sock.accept()
        except OSError as err:
            if stop.is_set():
                break
            log("accept: %s" % err)
            stop.wait(0.05)
            continue
        counts["connections"] += 1
        try:
            threading.Thread(target=receive, args=(conn, addr, e), daemon=True).start()
        except RuntimeError as err:  # "can't start new thread"
            log("thread for %s:%d: %s" % (addr[0], addr[1], err))
            conn.close()
            continue
        active = threading.active_count()
        if active > counts["threads_max"]:
            counts["threads_max"] = active


def serve_udp(usock, e):
    while not stop.is_set():
        try:
            data, addr = usock.recvfrom(2048)
        except OSError:
            continue
        peer = "%s:%d" % addr[:2]
        if len(data) < 8:
            counts["rejected"] += 1
            log("%s - length" % peer)
            continue
        rid, op, n = struct.unpack(e + "I3sB", data[:8])
        if len(data) != 8 + 4 * n:
            counts["rejected"] += 1
            log("%s %d length" % (peer, rid))
            continue
        result, reason = calculate(op.decode("utf-8", "replace"), struct.unpack(e + "%di" % n, data[8:]))
        if reason:
            counts["rejected"] += 1
            log("%s %d %s" % (peer, rid, reason))
            continue
        usock.sendto(struct.pack(e + "Ii", rid, result), addr)
        counts["udp"] += 1


def main():
    global quiet
    ap = argparse.ArgumentParser(description="reference calculator server (Python, thread per client)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--ready-file")
    ap.add_argument("--little-endian", action="store_true")
    ap.add_argument("--backlog", type=int, default=None)
    ap.add_argument("--quiet", action="store_true", help="do not log rejected requests")
    args = ap.parse_args()
    quiet = args.quiet
    e = "<" if args.little_endian else "!"
    seconds = min(max(args.seconds, 0.0), MAX_SECONDS)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    if args.backlog is None:
        sock.listen()
    else:
        sock.listen(args.backlog)
    usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    usock.bind((args.host, sock.getsockname()[1]))

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=listen, args=(sock, e), daemon=True).start()
    threading.Thread(target=serve_udp, args=(usock, e), daemon=True).start()
    if args.ready_file:
        tmp = "%s.tmp.%d" % (args.ready_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("ready\n")
        os.rename(tmp, args.ready_file)
    else:
        print("ready", flush=True)
    stop.wait(seconds)
    print("served tcp={tcp} udp={udp} rejected={rejected} connections={connections} "
          "threads_max={threads_max}".format(**counts), file=sys.stderr, flush=True)
    # Daemon threads blocked in recv/accept die with the process.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
