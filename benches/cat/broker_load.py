#!/usr/bin/env python3
# Broker load for benches/cat/run.sh: connects N clients to a broker, measures how long one
# message takes to reach every other client, and (optionally) attaches clients that never
# read and floods, checking that the readers still get every byte.
#
#   broker_load.py --port P --clients N [--messages M] [--stuck S --flood BYTES]
#                  [--pid PID] [--settle SECS]
#
# Prints one JSON object: connected clients, per-message fan-out latency (time from the
# send until the median and the last of the N-1 copies reached their sockets, by the
# kernel's receive timestamps, and until this script had read them, in ms), whether
# every copy arrived, the broker's VmRSS before and after connecting (from /proc/PID/status, for RSS per
# idle client), and for the flood: bytes each reader got, whether it got them all, and the
# longest it waited for the next bytes.
# Every wait is bounded (--timeout); the script never sends to anything but 127.0.0.1.
import argparse
import json
import os
import select
import selectors
import socket
import struct
import sys
import time


def rss_kib(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def connect_all(port, n, rcvbuf=None):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setblocking(False)
        socks.append(s)
    return socks


# Linux's SO_TIMESTAMPNS / SCM_TIMESTAMPNS (Python has no name for them): the kernel
# stamps each segment with the wall-clock time it reached the socket, so a copy's
# delivery is timed apart from how long this script takes to get round to reading it.
SO_TIMESTAMPNS = 35


def fan_out(socks, payload, timeout):
    """Sends payload from socks[0]. Returns (ms until the median and the last copy
    reached its socket (kernel receive timestamps), ms until the median and the last
    copy were read by this script, every copy complete)."""
    ep = select.epoll(len(socks))
    want = len(payload)
    got = {}
    by_fd = {}
    for s in socks[1:]:
        ep.register(s.fileno(), select.EPOLLIN)
        got[s.fileno()] = 0
        by_fd[s.fileno()] = s
    anc_size = socket.CMSG_SPACE(16)
    start_wall = time.time()
    start = time.monotonic()
    socks[0].setblocking(True)
    socks[0].sendall(payload)
    socks[0].setblocking(False)
    read_at = []
    arrived_at = []
    deadline = start + timeout
    n = len(got)
    while len(read_at) < n and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.1):
            try:
                data, anc, _, _ = by_fd[fd].recvmsg(65536, anc_size)
            except BlockingIOError:
                continue
            if not data:
                ep.unregister(fd)
                continue
            before = got[fd]
            got[fd] += len(data)
            if before < want <= got[fd]:
                read_at.append(time.monotonic())
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                        sec, nsec = struct.unpack("qq", raw[:16])
                        arrived_at.append(sec + nsec / 1e9)
    ep.close()
    if not read_at:
        return None, None, None, None, False
    arrived_at.sort()
    ms = lambda t, t0: round((t - t0) * 1000.0, 1)
    arr_med = ms(arrived_at[len(arrived_at) // 2], start_wall) if arrived_at else None
    arr_last = ms(arrived_at[-1], start_wall) if arrived_at else None
    return (arr_med, arr_last, ms(read_at[len(read_at) // 2], start),
            ms(read_at[-1], start), len(read_at) == n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--messages", type=int, default=5)
    ap.add_argument("--stuck", type=int, default=0)
    ap.add_argument("--flood", type=int, default=0)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    out = {"clients": a.clients}
    rss0 = rss_kib(a.pid)
    t0 = time.monotonic()
    try:
        socks = connect_all(a.port, a.clients)
    except OSError as e:
        out["error"] = f"connect failed after some clients: {e}"
        print(json.dumps(out))
        return 1
    out["connect_s"] = round(time.monotonic() - t0, 3)
    time.sleep(a.settle)
    rss1 = rss_kib(a.pid)
    out["rss_before_kib"] = rss0
    out["rss_after_kib"] = rss1
    if rss0 is not None and rss1 is not None:
        out["rss_per_client_kib"] = round((rss1 - rss0) / a.clients, 2)
    arr_med, arr_last, med, last = [], [], [], []
    complete = True
    for i in range(a.messages):
        am, al, m, l, ok = fan_out(socks, b"message %06d\n" % i, a.timeout)
        arr_med.append(am)
        arr_last.append(al)
        med.append(m)
        last.append(l)
        complete = complete and ok
        time.sleep(0.2)
    out["fanout_arrived_median_ms"] = arr_med
    out["fanout_arrived_last_ms"] = arr_last
    out["fanout_read_median_ms"] = med
    out["fanout_read_last_ms"] = last
    out["every_copy_delivered"] = complete

    if a.stuck:
        stuck = connect_all(a.port, a.stuck, rcvbuf=4096)
        time.sleep(a.settle)
        readers = socks[1:4]
        sender = socks[0]
        for s in socks[4:]:
            s.close()
        sel = selectors.DefaultSelector()
        got = {}
        last_read = {}
        gap = {}
        for r in readers:
            sel.register(r, selectors.EVENT_READ)
            got[r.fileno()] = 0
            gap[r.fileno()] = 0.0
        sender.setblocking(False)
        chunk = b"f" * 65536
        sent = 0
        deadline = time.monotonic() + a.timeout
        sel.register(sender, selectors.EVENT_WRITE)
        while (sent < a.flood or min(got.values()) < a.flood) and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=0.1):
                if key.fileobj is sender:
                    if sent >= a.flood:
                        continue
                    try:
                        sent += sender.send(chunk[: min(len(chunk), a.flood - sent)])
                    except BlockingIOError:
                        pass
                    if sent >= a.flood:
                        sel.unregister(sender)
                else:
                    try:
                        data = key.fileobj.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        sel.unregister(key.fileobj)
                        continue
                    fd = key.fileobj.fileno()
                    now = time.monotonic()
                    if fd in last_read and got[fd] < a.flood:
                        gap[fd] = max(gap[fd], now - last_read[fd])
                    last_read[fd] = now
                    got[fd] += len(data)
        out["flood_bytes"] = a.flood
        out["flood_readers_got"] = sorted(got.values())
        out["flood_complete"] = all(v == a.flood for v in got.values())
        # The longest wait for the next bytes, per reader: what the clients
        # that stopped reading cost the others.
        out["flood_longest_gap_ms"] = sorted(round(v * 1000.0, 1) for v in gap.values())
        for s in stuck:
            s.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
