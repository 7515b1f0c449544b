#!/usr/bin/env python3
"""Runs one benchmark command and prints its wall time and its own CPU time
(user + system from wait4, which covers the process and any children it
reaped; neither driver here has children: expect talks over `spawn -open`
on a socket, sockeye over TCP), as one JSON object.

Usage: measure.py -- CMD ARGS...
"""
import json
import os
import subprocess
import sys
import time


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4 gives this child's rusage; communicate() would hide it.
    out_chunks = []
    err_chunks = []
    import threading

    def drain(stream, sink):
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.append(chunk)

    threads = [threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
               threading.Thread(target=drain, args=(proc.stderr, err_chunks))]
    for t in threads:
        t.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({
        "status": proc.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "user_s": round(ru.ru_utime, 3),
        "sys_s": round(ru.ru_stime, 3),
        "max_rss_kib": ru.ru_maxrss,
        "stdout_tail": b"".join(out_chunks).decode(errors="replace")[-400:],
        "stderr_tail": b"".join(err_chunks).decode(errors="replace")[-400:],
    }))


if __name__ == "__main__":
    main()
