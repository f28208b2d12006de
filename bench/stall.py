#!/usr/bin/python3
"""bench/stall.py - the slowest answer while a server reloads.

  stall.py --name NAME --port PORT --query NAME [--seconds 3]
           [--reload-at T1,T2...] [--reload-cmd CMD] [--grace 3]
           [--server-cpu N] -- COMMAND...

Starts COMMAND, waits for its first answer to NAME, then sends one UDP query
for NAME every millisecond for --seconds (each with its own ID) and records
when each answer came in (the kernel's receive timestamp, SO_TIMESTAMPNS,
so that the prober's own scheduling delays do not count).  At each
--reload-at second (by default at 1/6 and 1/2 of --seconds: 0.5 and 1.5 s)
it reloads the server: SIGHUP to its process, or --reload-cmd run through
the shell (for example unbound-control), without waiting for it.  After the
last query it waits up to --grace seconds for answers still due, and for
the reload commands to finish.

Prints one line of JSON: sent, answered, lost (no answer by the end of the
grace period: dropped, or later than that), p50_ms, p99_ms, max_ms (over
every answer), quiet_max_ms (the slowest answer to a query sent before the
first reload: the machine's own noise) and reload_cmd_s (how long each
reload command took to return, when there are any: unbound-control returns
once the reload is asked for, not once it is done).
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import time

from measure import query_wire, start, stop

# Linux: receive timestamps as a struct timespec (CLOCK_REALTIME) in a
# control message of the same type; Python 3.11 has no name for it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, int(len(sorted_values) * p))
    return sorted_values[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--interval-ms", type=float, default=1.0)
    ap.add_argument("--reload-at")
    ap.add_argument("--reload-cmd")
    ap.add_argument("--grace", type=float, default=3.0)
    ap.add_argument("--server-cpu", type=int)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if a.reload_at is None:
        reload_at = [a.seconds / 6, a.seconds / 2]
    else:
        reload_at = sorted(float(x) for x in a.reload_at.split(",") if x)
    interval = a.interval_ms / 1000.0
    count = int(a.seconds / interval)
    if count > 65536:
        ap.error("at most 65536 queries (one ID each)")

    p, first = start(cmd, a.port, a.query, a.server_cpu)
    out = {"name": a.name, "first_answer_s": first}
    if first is None:
        stop(p)
        print(json.dumps(out), flush=True)
        return
    time.sleep(0.5)

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", a.port))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setblocking(False)
    wires = [query_wire(a.query, qid) for qid in range(count)]
    sent_at = [None] * count  # monotonic, for the schedule
    sent_wall = [None] * count  # the clock the kernel's timestamps use
    latency = [None] * count
    reloads = []
    answered = 0
    sent = 0
    t0 = time.monotonic()
    first_reload = t0 + reload_at[0] if reload_at else None
    pending = list(reload_at)

    def drain():
        nonlocal answered
        while True:
            try:
                data, anc, _, _ = s.recvmsg(4096, 64)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                continue  # ICMP port unreachable: the server let go of its port
            now = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("=qq", value[:16])
                    now = sec + nsec / 1e9
            if len(data) < 12:
                continue
            qid, flags = struct.unpack("!HH", data[:4])
            if not flags & 0x8000 or qid >= count or sent_at[qid] is None \
                    or latency[qid] is not None:
                continue
            latency[qid] = max(0.0, now - sent_wall[qid])
            answered += 1

    end = t0 + count * interval + a.grace
    while True:
        now = time.monotonic()
        if pending and now >= t0 + pending[0]:
            pending.pop(0)
            if a.reload_cmd:
                reloads.append([now, subprocess.Popen(
                    a.reload_cmd, shell=True, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL), None])
            else:
                os.kill(p.pid, signal.SIGHUP)
        while sent < count and now >= t0 + sent * interval:
            try:
                s.send(wires[sent])
            except (BlockingIOError, ConnectionRefusedError):
                pass  # counted as lost if it never gets an answer
            sent_at[sent] = time.monotonic()
            sent_wall[sent] = time.time()
            sent += 1
        drain()
        for r in reloads:
            if r[2] is None and r[1].poll() is not None:
                r[2] = time.monotonic()
        if sent == count and (answered == count or now >= end):
            break
        wake = t0 + sent * interval if sent < count else end
        if pending:
            wake = min(wake, t0 + pending[0])
        select.select([s], [], [], max(0.0, wake - time.monotonic()))

    took = []
    for started, r, done in reloads:
        try:
            r.wait(timeout=60)
        except subprocess.TimeoutExpired:
            r.kill()
            r.wait()
        done = done or time.monotonic()
        took.append(round(done - started, 2) if r.returncode == 0 else None)
    stop(p)
    s.close()

    lat = sorted(x * 1000 for x in latency if x is not None)
    quiet = [latency[i] * 1000 for i in range(count)
             if latency[i] is not None and first_reload is not None
             and sent_at[i] < first_reload]
    out.update({
        "sent": count, "answered": answered, "lost": count - answered,
        "p50_ms": round(percentile(lat, 0.50), 2) if lat else None,
        "p99_ms": round(percentile(lat, 0.99), 2) if lat else None,
        "max_ms": round(lat[-1], 2) if lat else None,
        "quiet_max_ms": round(max(quiet), 2) if quiet else None,
    })
    if reloads:
        out["reload_cmd_s"] = took
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
