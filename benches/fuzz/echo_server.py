#!/usr/bin/env python3
"""Echo server for benches/fuzz/run.sh: echoes each connection until EOF, then
closes. Threads per connection; exits by itself after LIFETIME seconds.

    echo_server.py PORT LIFETIME
"""
import socket
import sys
import threading
import time

port, lifetime = int(sys.argv[1]), float(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1024)
srv.settimeout(0.5)


def echo(conn):
    conn.settimeout(5)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


deadline = time.monotonic() + lifetime
while time.monotonic() < deadline:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    threading.Thread(target=echo, args=(c,), daemon=True).start()
