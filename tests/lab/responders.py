#!/usr/bin/env python3
"""Scripted responders of the sockeye lab: odd servers that no real daemon makes.

Each listens on its own port of --addr (stdlib only, started by services.sh):

  7001 tarpit           accepts, never speaks
  7002 flood            one endless line without a newline (8 MiB cap per connection)
  7003 split greeting   "220 split.lab.test ESMTP ready\r\n" one byte per packet,
                        then a tiny SMTP server whose STARTTLS answer is followed by garbage
  7004 STARTTLS garbage SMTP greeting, EHLO offers STARTTLS, "220 go ahead", then non-TLS bytes
  7005 closes mid-line  "220 half a gree", then close
  7025 drops after DATA SMTP until DATA: "354", reads the message, closes without a reply
  7110 SSH banner       "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" (ssh on a non-ssh port)
  7421 busy             "421 too busy\r\n", then close
  7443 expired HTTPS    TLS with an expired certificate, then a small HTTP response

and, with --alias ALIAS: ALIAS:110 the same SSH banner as 7110 (ssh where pop3 belongs).

Every loop is bounded: the whole process exits after --seconds, each connection is
closed after CONN_SECONDS, at most MAX_CONNECTIONS are served at once (more are
closed at once), and every read and write has a byte cap.
"""

import argparse
import socket
import ssl
import sys
import threading
import time

# Longest life of one connection: a client that keeps a tarpit open is cut here.
CONN_SECONDS = 60.0
# Connections served at once across all responders; more are closed on accept.
MAX_CONNECTIONS = 256
# The flood stops after this many bytes on one connection.
FLOOD_BYTES = 8 * 1024 * 1024
FLOOD_CHUNK = 64 * 1024
# Longest command line read from a client, and most bytes of a DATA section.
LINE_MAX = 4096
DATA_MAX = 1024 * 1024
# Pause between the single bytes of the split greeting.
SPLIT_PAUSE = 0.01
# Garbage sent where a TLS ServerHello belongs (plain text, never a TLS record).
GARBAGE = b"this is not TLS, just garbage from a sockeye lab responder\r\n" * 4

slots = threading.BoundedSemaphore(MAX_CONNECTIONS)


class Conn:
    """A client socket with a deadline and bounded line reading."""

    def __init__(self, sock):
        self.sock = sock
        self.deadline = time.monotonic() + CONN_SECONDS
        self.buf = b""

    def left(self):
        return self.deadline - time.monotonic()

    def send(self, data):
        if self.left() <= 0:
            raise TimeoutError("connection deadline")
        self.sock.settimeout(max(self.left(), 0.01))
        self.sock.sendall(data)

    def readline(self):
        """One line (with its ending), or None at EOF, deadline or overlong line."""
        while b"\n" not in self.buf:
            if len(self.buf) > LINE_MAX or self.left() <= 0:
                return None
            self.sock.settimeout(max(self.left(), 0.01))
            try:
                chunk = self.sock.recv(LINE_MAX)
            except (OSError, TimeoutError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def drain(self):
        """Reads and discards until EOF or the deadline (bounded by CONN_SECONDS)."""
        total = 0
        while self.left() > 0 and total < DATA_MAX * 16:
            self.sock.settimeout(max(self.left(), 0.01))
            try:
                chunk = self.sock.recv(65536)
            except (OSError, TimeoutError):
                return
            if not chunk:
                return
            total += len(chunk)


def tarpit(c):
    c.drain()


def flood(c):
    sent = 0
    chunk = b"A" * FLOOD_CHUNK
    while sent < FLOOD_BYTES:
        c.send(chunk)
        sent += len(chunk)


def smtp_commands(c, name, on_starttls, on_data=None):
    """A tiny SMTP command loop (at most 64 commands)."""
    for _ in range(64):
        line = c.readline()
        if line is None:
            return
        verb = line.strip().split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            c.send(b"250-" + name + b"\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            on_starttls(c)
            return
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            c.send(b"250 ok\r\n")
        elif verb == b"DATA" and on_data is not None:
            on_data(c)
            return
        elif verb == b"QUIT":
            c.send(b"221 bye\r\n")
            return
        else:
            c.send(b"502 not in this responder\r\n")


def starttls_garbage(c):
    c.send(b"220 go ahead\r\n" + GARBAGE)


def split_greeting(c):
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in b"220 split.lab.test ESMTP ready\r\n":
        c.send(bytes([b]))
        time.sleep(SPLIT_PAUSE)
    smtp_commands(c, b"split.lab.test", starttls_garbage)


def starttls_garbage_server(c):
    c.send(b"220 starttls-garbage.lab.test ESMTP ready\r\n")
    smtp_commands(c, b"starttls-garbage.lab.test", starttls_garbage)


def half_line(c):
    c.send(b"220 half a gree")


def drop_after_data(c):
    def data(c):
        c.send(b"354 end data with <CR><LF>.<CR><LF>\r\n")
        got = 0
        while got < DATA_MAX:
            line = c.readline()
            if line is None or line.rstrip(b"\r\n") == b".":
                return  # and close without the 250 the client waits for
            got += len(line)

    c.send(b"220 drop-after-data.lab.test ESMTP ready\r\n")
    smtp_commands(c, b"drop-after-data.lab.test", starttls_garbage, data)


def ssh_banner(c):
    c.send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    c.readline()  # the client's identification, then close


def busy(c):
    c.send(b"421 too busy\r\n")


def expired_https(c, context):
    c.sock.settimeout(max(c.left(), 0.01))
    try:
        c.sock = context.wrap_socket(c.sock, server_side=True)
    except (OSError, ssl.SSLError, TimeoutError):
        return  # the client refused the expired certificate
    for _ in range(100):  # the request's header block
        line = c.readline()
        if line is None or line in (b"\r\n", b"\n"):
            break
    body = b"expired certificate responder\n"
    c.send(
        b"HTTP/1.1 200 OK\r\nServer: sockeye-lab-expired-responder\r\n"
        b"Content-Type: text/plain\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


def serve(conn_sock, handler):
    c = Conn(conn_sock)
    try:
        handler(c)
    except (OSError, TimeoutError, ssl.SSLError):
        pass
    finally:
        try:
            c.sock.close()
        except OSError:
            pass
        slots.release()


def listen(addr, port, handler, stop_at):
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(128)
    ls.settimeout(0.5)

    def loop():
        while time.monotonic() < stop_at:
            try:
                s, _ = ls.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                time.sleep(0.1)  # EMFILE and friends: wait, do not spin
                continue
            if not slots.acquire(blocking=False):
                s.close()
                continue
            threading.Thread(target=serve, args=(s, handler), daemon=True).start()
        ls.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", required=True)
    p.add_argument("--seconds", type=float, default=600.0, help="lifetime cap")
    p.add_argument("--expired-cert", required=True)
    p.add_argument("--expired-key", required=True)
    p.add_argument("--alias", help="second address: an SSH banner on its port 110")
    a = p.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(a.expired_cert, a.expired_key)

    stop_at = time.monotonic() + a.seconds
    table = {
        7001: tarpit,
        7002: flood,
        7003: split_greeting,
        7004: starttls_garbage_server,
        7005: half_line,
        7025: drop_after_data,
        7110: ssh_banner,
        7421: busy,
        7443: lambda c: expired_https(c, context),
    }
    threads = [listen(a.addr, port, h, stop_at) for port, h in table.items()]
    if a.alias:
        threads.append(listen(a.alias, 110, ssh_banner, stop_at))
    print("ready", flush=True)
    for t in threads:
        t.join(max(stop_at - time.monotonic(), 0) + 1)
    print("responders.py: lifetime over, exiting", file=sys.stderr)


if __name__ == "__main__":
    main()
