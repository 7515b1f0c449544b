#!/usr/bin/env python3
"""Client side of the lab smoke test: observes what each lab port really does.

Run in the client namespace (`ip netns exec NS python3 check.py --addr A --ca CA
CHECK...`); prints one JSON object per check and leaves the judging to the caller
(tests/lab_smoke.rs), so the expectations live in one place. Checks:

  first:PORT[@ADDR] the first bytes (up to the first newline, 512 bytes, 3 s),
                    from --addr or from ADDR (the lab's alias address)
  reply:PORT        a whole SMTP/FTP greeting: lines until one whose 4th char is a space
  http:PORT[:HOST]  HEAD / over plain TCP: status line and Server header
  https:PORT[:HOST] the same over TLS verified against the lab CA
  tls:PORT          a TLS handshake verified against the lab CA, then the first line
  tls10:PORT        a TLS 1.0 handshake with SECLEVEL=0 (the "old printer")
  starttls:PROTO    smtp25 | smtp587 | pop3 | imap | ftp | ldap: upgrade, verified
  ftp-logins        anonymous, alice/wonderland, alice/wrong on 21: reply codes
  imap-login        alice/wonderland on 993: LOGIN, SELECT INBOX: message count
  submit:ID         STARTTLS + AUTH on 587, a message for alice with Message-ID ID
  smtp-data:PORT    EHLO/MAIL/RCPT/DATA: what comes after the message (7025)

Every socket has a timeout (TIMEOUT) and every read a byte cap.
"""

import argparse
import ftplib
import imaplib
import json
import poplib
import smtplib
import socket
import ssl
import sys
import time
import warnings

# TLS 1.0 is deprecated in Python's ssl module: the old-printer check wants it anyway.
warnings.filterwarnings("ignore", category=DeprecationWarning)

TIMEOUT = 5.0
FIRST_MAX = 512
# The name every lab certificate carries (plus mail.lab.test and the address).
HOST = "lab.test"


def ctx(ca):
    c = ssl.create_default_context(cafile=ca)
    c.check_hostname = True
    return c


def first(addr, port):
    s = socket.create_connection((addr, port), timeout=3)
    data, chunks, eof = b"", 0, False
    try:
        while b"\n" not in data and len(data) < FIRST_MAX:
            chunk = s.recv(FIRST_MAX - len(data))
            if not chunk:
                eof = True
                break
            data += chunk
            chunks += 1
    except (TimeoutError, socket.timeout):
        pass
    s.close()
    return {"first": data.decode("latin-1"), "eof": eof, "chunks": chunks}


def head(sock, host):
    sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 16384:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    lines = data.decode("latin-1").split("\r\n")
    server = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("server:")), None)
    return {"status": lines[0], "server": server}


def tls_info(s):
    cert = s.getpeercert()
    cn = [v for rdn in cert.get("subject", ()) for (k, v) in rdn if k == "commonName"]
    return {"version": s.version(), "cn": cn[0] if cn else None}


def run(check, a):
    kind, _, arg = check.partition(":")
    if kind == "first":
        port, _, host = arg.partition("@")
        return first(host or a.addr, int(port))
    if kind == "reply":
        s = socket.create_connection((a.addr, int(arg)), timeout=TIMEOUT)
        f = s.makefile("rb")
        lines = []
        for _ in range(32):
            line = f.readline(FIRST_MAX).decode("latin-1")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        s.close()
        return {"lines": lines}
    if kind in ("http", "https"):
        port, _, host = arg.partition(":")
        s = socket.create_connection((a.addr, int(port)), timeout=TIMEOUT)
        if kind == "https":
            s = ctx(a.ca).wrap_socket(s, server_hostname=host or HOST)
        with s:
            return head(s, host or HOST)
    if kind == "tls":
        raw = socket.create_connection((a.addr, int(arg)), timeout=TIMEOUT)
        with ctx(a.ca).wrap_socket(raw, server_hostname=HOST) as s:
            info = tls_info(s)
            line = b""
            if int(arg) != 636:  # LDAP servers speak only when asked
                while not line.endswith(b"\n") and len(line) < FIRST_MAX:
                    chunk = s.recv(1)
                    if not chunk:
                        break
                    line += chunk
            info["first"] = line.decode("latin-1")
            return info
    if kind == "tls10":
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.minimum_version = ssl.TLSVersion.TLSv1
        c.maximum_version = ssl.TLSVersion.TLSv1
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
        raw = socket.create_connection((a.addr, int(arg)), timeout=TIMEOUT)
        with c.wrap_socket(raw) as s:
            return {"version": s.version()}
    if kind == "starttls":
        return starttls(arg, a)
    if kind == "ftp-logins":
        out = {}
        for who, user, pw in (("anonymous", "anonymous", "x@lab.test"),
                              ("alice", "alice", "wonderland"),
                              ("wrong", "alice", "not-the-password")):
            f = ftplib.FTP(timeout=TIMEOUT)
            f.connect(a.addr, 21)
            try:
                out[who] = f.login(user, pw)[:3]
            except ftplib.error_perm as e:
                out[who] = str(e)[:3]
            f.close()
        return out
    if kind == "imap-login":
        m = imaplib.IMAP4_SSL(a.addr, 993, ssl_context=ctx(a.ca), timeout=TIMEOUT)
        m.login("alice", "wonderland")
        typ, data = m.select("INBOX", readonly=True)
        m.logout()
        return {"select": typ, "messages": int(data[0])}
    if kind == "submit":
        with smtplib.SMTP(a.addr, 587, timeout=TIMEOUT, local_hostname="client.lab.test") as s:
            s.ehlo()
            auth_before = s.has_extn("auth")
            s.starttls(context=ctx(a.ca))
            s.ehlo()
            s.login("alice@lab.test", "wonderland")
            msg = (f"From: bob@lab.test\r\nTo: alice@lab.test\r\nSubject: lab smoke\r\n"
                   f"Message-ID: <{arg}>\r\n\r\nHello Alice, from the lab smoke test.\r\n")
            refused = s.sendmail("bob@lab.test", ["alice@lab.test"], msg.encode())
            return {"auth_before_tls": auth_before, "refused": list(refused)}
    if kind == "smtp-data":
        s = socket.create_connection((a.addr, int(arg)), timeout=TIMEOUT)
        f = s.makefile("rb")
        replies = [f.readline(FIRST_MAX).decode("latin-1")]
        for cmd in (b"EHLO client.lab.test", b"MAIL FROM:<bob@lab.test>",
                    b"RCPT TO:<alice@lab.test>", b"DATA"):
            s.sendall(cmd + b"\r\n")
            while True:  # a multi-line reply ends with "NNN "
                line = f.readline(FIRST_MAX).decode("latin-1")
                if len(line) < 4 or line[3] != "-":
                    break
            replies.append(line)
        s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        after = f.readline(FIRST_MAX)
        s.close()
        return {"replies": replies, "after_data": after.decode("latin-1")}
    raise ValueError(f"unknown check {check}")


def ldap_result_code(resp):
    """resultCode of an LDAP ExtendedResponse ([APPLICATION 24]); None if absent.

    OpenLDAP writes lengths in the long form (0x84 + 4 bytes), so skip them properly.
    """
    i = resp.find(b"\x78")
    if i < 0 or i + 1 >= len(resp):
        return None
    n = resp[i + 1]
    j = i + 2 + (n & 0x7F if n & 0x80 else 0)
    if resp[j:j + 2] != b"\x0a\x01" or j + 2 >= len(resp):
        return None
    return resp[j + 2]


def starttls(proto, a):
    c = ctx(a.ca)
    if proto in ("smtp25", "smtp587"):
        with smtplib.SMTP(a.addr, int(proto[4:]), timeout=TIMEOUT) as s:
            s.ehlo("client.lab.test")
            offered = s.has_extn("starttls")
            code, _ = s.starttls(context=c)
            return {"offered": offered, "code": code, "version": s.sock.version()}
    if proto == "pop3":
        p = poplib.POP3(a.addr, 110, timeout=TIMEOUT)
        greeting = p.getwelcome().decode()
        p.stls(context=c)
        v = p.sock.version()
        p.quit()
        return {"greeting": greeting, "version": v}
    if proto == "imap":
        m = imaplib.IMAP4(a.addr, 143, timeout=TIMEOUT)
        typ, _ = m.starttls(ssl_context=c)
        v = m.sock.version()
        m.logout()
        return {"result": typ, "version": v}
    if proto == "ftp":
        f = ftplib.FTP_TLS(context=c, timeout=TIMEOUT)
        f.connect(a.addr, 21)
        reply = f.auth()
        v = f.sock.version()
        f.close()
        return {"reply": reply[:3], "version": v}
    if proto == "ldap":
        # ExtendedRequest StartTLS (OID 1.3.6.1.4.1.1466.20037), message id 1.
        oid = b"1.3.6.1.4.1.1466.20037"
        req = bytes([0x30, 7 + len(oid), 0x02, 0x01, 0x01, 0x77, 2 + len(oid), 0x80, len(oid)]) + oid
        s = socket.create_connection((a.addr, 389), timeout=TIMEOUT)
        s.sendall(req)
        resp = s.recv(4096)
        code = ldap_result_code(resp)
        with c.wrap_socket(s, server_hostname=HOST) as t:
            return {"result_code": code, "version": t.version()}
    raise ValueError(f"unknown protocol {proto}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("checks", nargs="+")
    a = p.parse_args()
    for check in a.checks:
        t0 = time.monotonic()
        try:
            out = run(check, a)
        except Exception as e:  # reported, judged by the caller
            out = {"error": f"{type(e).__name__}: {e}"}
        out["check"] = check
        out["ms"] = round((time.monotonic() - t0) * 1000)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
