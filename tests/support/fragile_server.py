#!/usr/bin/env python3
"""A deliberately fragile line server for the peer-fuzzer tests (a scripted
responder, named as such): it answers each line with "ok N", and exits with
status 3 as soon as one line is longer than 1,000 bytes and contains "%n"
(the crash the fuzzer must find, save and replay).

    fragile_server.py PORT [LIFETIME_SECONDS]

Bounded: it exits by itself after LIFETIME_SECONDS (default 120), handles
one connection at a time, and reads at most 1 MiB per connection.
"""
import socket
import sys
import time

port = int(sys.argv[1])
lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
deadline = time.monotonic() + lifetime
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
srv.settimeout(0.5)
while time.monotonic() < deadline:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    conn.settimeout(2.0)
    data = b""
    try:
        while len(data) < (1 << 20):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            *lines, data_tail = data.split(b"\n")
            for i, line in enumerate(lines):
                if len(line) > 1000 and b"%n" in line:
                    sys.exit(3)
                conn.sendall(b"ok %d\n" % i)
            data = data_tail
        if len(data) > 1000 and b"%n" in data:
            sys.exit(3)
    except (socket.timeout, ConnectionError):
        pass
    finally:
        conn.close()
