#!/usr/bin/env python3
"""The calculator protocol as the seed's students write it (python3 stdlib only).

Seed 001 section 3 ("Rechen-Server"): requests and responses are built with
struct.pack / struct.unpack, the TCP server starts one threading.Thread per
connection, UDP is served on the same port. sockeye's integration tests use this
file to prove byte-for-byte interoperability in both directions.
Protocol: ../../../shared/spec/calc-protocol.md

Client:

    calc_student.py client --host H --port P [--udp] [--little-endian] [--timeout S]
                           ID OP N1 N2 ...
    calc_student.py client --host H --port P [--udp] [--little-endian] [--timeout S]
                           --pipeline FILE

  Builds each request exactly like a student:
      struct.pack('!I', id) + op.encode() + struct.pack('!B', n) + struct.pack('!%di' % n, *nums)
  (with --little-endian the '!' is forgotten: struct.pack('I', ...), native order on x86).
  Prints "ID RESULT" (the response, unpacked) on stdout and exits 0.
  TCP: the server closed (or reset) the connection before a full 8-byte response:
       prints "closed", exit 3.
  No response within --timeout seconds (default 2; UDP, or a TCP server that never
  answers): prints "timeout", exit 4.
  Anything else (connection refused, a number struct.pack refuses...): message on
  stderr, exit 1 (2 for bad usage).
  --pipeline FILE ("-" for stdin): lines "ID OP N1 N2 ..." (blank lines and "#" comments
  skipped). TCP: all requests go out in one sendall (pipelined), then the responses are
  read one by one and printed as "ID RESULT"; if the server closes first, "closed" is
  printed after the last response received (exit 3). UDP: one datagram per request, then
  the responses are printed in the order they arrive; "timeout" (exit 4) if fewer came.
  OP is sent as op.encode() whatever it is, so a test can send unknown operations.

Server:

    calc_student.py server --host H --port P [--little-endian] [--udp-also]
                           [--ready-file F] [--seconds N]

  One thread per TCP connection: recv(8) for the header, then recv(4*N) for the
  numbers, each looping until complete. With --udp-also, UDP on the same port (one
  datagram = one request). Answers SUM/PRO/MIN/MAX with struct.pack('!Ii', id, result)
  ('Ii' native with --little-endian). Invalid requests follow the spec: an unknown op,
  an overflowing result, MIN/MAX of nothing, a UDP datagram whose length is not 8+4N:
  TCP closes the connection, UDP sends nothing; logged as "reject PEER ID REASON".
  Every request received is logged on stderr as "got <hex>" (the exact bytes, one line
  per request, the UDP datagram as it came), flushed at once.
  Ready: prints "ready" on stdout (with --port 0: "ready PORT"), or writes it to
  --ready-file atomically. Exits 0 after --seconds (default 60, at most 600) or on
  SIGTERM / SIGINT.
"""

import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time

MAX_SECONDS = 600
OPS = ("SUM", "PRO", "MIN", "MAX")
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

log_lock = threading.Lock()


def log(line):
    with log_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def formats(little):
    # The student on x86 who forgot the '!': native order ('@'), which packs these
    # one field at a time without any padding.
    if little:
        if sys.byteorder != "little":  # not x86: say what the student meant
            return "<"
        return ""
    return "!"


# ---------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------


def build_request(e, rid, op, nums):
    n = len(nums)
    return struct.pack(e + "I", rid) + op.encode() + struct.pack(e + "B", n) + struct.pack(e + "%di" % n, *nums)


def recv_exact(conn, n):
    """recv until n bytes; returns fewer only if the peer closed."""
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def parse_request_words(words, where):
    if len(words) < 2:
        raise ValueError(f"{where}: need ID OP [N1 N2 ...]")
    return int(words[0], 0), words[1], [int(w, 0) for w in words[2:]]


def run_client(args):
    e = formats(args.little_endian)
    if args.pipeline:
        f = sys.stdin if args.pipeline == "-" else open(args.pipeline, encoding="utf-8")
        reqs = []
        with f:
            for lineno, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    reqs.append(parse_request_words(line.split(), f"{args.pipeline}:{lineno}"))
        if args.request:
            print("calc_student.py: give either --pipeline or ID OP N..., not both", file=sys.stderr)
            return 2
    else:
        reqs = [parse_request_words(args.request, "request")]
    try:
        packets = [build_request(e, rid, op, nums) for rid, op, nums in reqs]
    except struct.error as err:
        print(f"calc_student.py: struct.pack: {err}", file=sys.stderr)
        return 1

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    if args.udp:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(args.timeout)
        for p in packets:
            s.sendto(p, (args.host, args.port))
        for _ in packets:
            try:
                data, _addr = s.recvfrom(1024)
            except socket.timeout:
                print("timeout", flush=True)
                return 4
            except ConnectionRefusedError:  # ICMP port unreachable
                print("closed", flush=True)
                return 3
            if len(data) != 8:
                print(f"calc_student.py: odd datagram of {len(data)} bytes: {data.hex()}", file=sys.stderr)
                return 1
            rid, result = struct.unpack(e + "Ii", data)
            print(rid, result, flush=True)
        s.close()
        return 0

    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    try:
        s.connect((args.host, args.port))
    except OSError as err:
        print(f"calc_student.py: connect {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    try:
        s.sendall(b"".join(packets))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed early: read what it answered before that
    for _ in packets:
        try:
            data = recv_exact(s, 8)
        except socket.timeout:
            print("timeout", flush=True)
            return 4
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if len(data) < 8:
            print("closed", flush=True)
            return 3
        rid, result = struct.unpack(e + "Ii", data)
        print(rid, result, flush=True)
    s.close()
    return 0


# ---------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------

stop = threading.Event()


def calculate(op, nums):
    """(result, None) or (None, reason)."""
    if op == "SUM":
        r = sum(nums)
    elif op == "PRO":
        r = 1
        for z in nums:
            r *= z
            if r == 0:
                break
    elif op in ("MIN", "MAX"):
        if not nums:
            return None, "empty"
        r = min(nums) if op == "MIN" else max(nums)
    else:
        return None, "unknown-op"
    if not I32_MIN <= r <= I32_MAX:
        return None, "overflow"
    return r, None


def peer_name(addr):
    return f"{addr[0]}:{addr[1]}"


def receive(conn, addr, e):
    """The seed's receive(conn): read requests, calculate, answer."""
    peer = peer_name(addr)
    conn.settimeout(1.0)  # so the thread notices the stop flag
    try:
        while not stop.is_set():
            header = b""
            while len(header) < 8 and not stop.is_set():
                try:
                    chunk = conn.recv(8 - len(header))
                except socket.timeout:
                    continue
                if not chunk:
                    return  # closed (possibly mid-header: a truncated frame)
                header += chunk
            if len(header) < 8:
                return
            rid = struct.unpack(e + "I", header[0:4])[0]
            op = header[4:7].decode("utf-8", errors="replace")
            n = struct.unpack(e + "B", header[7:8])[0]
            body = b""
            while len(body) < 4 * n and not stop.is_set():
                try:
                    chunk = conn.recv(4 * n - len(body))
                except socket.timeout:
                    continue
                if not chunk:
                    log(f"got {(header + body).hex()}")
                    log(f"reject {peer} {rid} truncated")
                    return
                body += chunk
            if len(body) < 4 * n:
                return
            log(f"got {(header + body).hex()}")
            nums = struct.unpack(e + "%di" % n, body)
            result, reason = calculate(op, nums)
            if reason:
                log(f"reject {peer} {rid} {reason}")
                return
            conn.sendall(struct.pack(e + "Ii", rid, result))
    except OSError as err:
        log(f"error {peer} {err}")
    finally:
        conn.close()


def listen(sock, e):
    """The seed's listen(sock): one receive thread per connection."""
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, addr = sock.accept()
        except socket.timeout:
            continue
        except OSError as err:
            log(f"accept: {err}")
            time.sleep(0.05)
            continue
        threading.Thread(target=receive, args=(conn, addr, e), daemon=True).start()


def serve_udp(usock, e):
    usock.settimeout(0.5)
    while not stop.is_set():
        try:
            data, addr = usock.recvfrom(2048)
        except socket.timeout:
            continue
        except OSError as err:
            log(f"recvfrom: {err}")
            continue
        log(f"got {data.hex()}")
        peer = peer_name(addr)
        if len(data) < 8:
            log(f"reject {peer} - short")
            continue
        rid = struct.unpack(e + "I", data[0:4])[0]
        n = struct.unpack(e + "B", data[7:8])[0]
        if len(data) != 8 + 4 * n:
            log(f"reject {peer} {rid} length")
            continue
        op = data[4:7].decode("utf-8", errors="replace")
        result, reason = calculate(op, struct.unpack(e + "%di" % n, data[8:]))
        if reason:
            log(f"reject {peer} {rid} {reason}")
            continue
        usock.sendto(struct.pack(e + "Ii", rid, result), addr)


def write_ready(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, path)


def run_server(args):
    e = formats(args.little_endian)
    seconds = min(max(args.seconds, 0.0), MAX_SECONDS)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen()
    port = sock.getsockname()[1]
    threads = [threading.Thread(target=listen, args=(sock, e), daemon=True)]
    if args.udp_also:
        usock = socket.socket(family, socket.SOCK_DGRAM)
        usock.bind((args.host, port))
        threads.append(threading.Thread(target=serve_udp, args=(usock, e), daemon=True))

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for t in threads:
        t.start()
    ready = "ready" if args.port else f"ready {port}"
    if args.ready_file:
        write_ready(args.ready_file, ready)
    else:
        print(ready, flush=True)
    stop.wait(seconds)
    stop.set()
    return 0


def main():
    ap = argparse.ArgumentParser(description="calculator protocol, written the way the seed's students write it")
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client", help="send requests, print 'ID RESULT'")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--udp", action="store_true")
    c.add_argument("--little-endian", action="store_true")
    c.add_argument("--timeout", type=float, default=2.0)
    c.add_argument("--pipeline", metavar="FILE")
    c.add_argument("request", nargs="*", metavar="ID OP N", help="ID OP N1 N2 ...")
    s = sub.add_parser("server", help="minimal threaded student server")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--little-endian", action="store_true")
    s.add_argument("--udp-also", action="store_true")
    s.add_argument("--ready-file")
    s.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    try:
        if args.mode == "client":
            if not args.pipeline and not args.request:
                c.error("give ID OP N1 N2 ... or --pipeline FILE")
            return run_client(args)
        return run_server(args)
    except ValueError as err:
        print(f"calc_student.py: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
