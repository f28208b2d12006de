#!/usr/bin/python3
"""bench/measure.py - start a DNS server, time it to its first answer, read
its memory, run dnsperf against it and read its CPU time.

  measure.py --name NAME --port PORT --query NAME [--perf FILE --seconds N]
             -- COMMAND...

Prints one line of JSON: name, first_answer_s, rss_kib, peak_kib, and with
--perf: qps, lost, cpu_s, us_per_query.  The server is stopped at the end.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

import dns.message


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--perf")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    q = dns.message.make_query(a.query, "A").to_wire()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.002)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while time.monotonic() - t0 < 120:
        try:
            s.sendto(q, ("127.0.0.1", a.port))
            s.recv(4096)
            first = time.monotonic() - t0
            break
        except OSError:
            if p.poll() is not None:
                break
    out = {"name": a.name, "first_answer_s": first}
    pid = p.pid
    if first is not None:
        time.sleep(0.5)
        out["rss_kib"] = status(pid, "VmRSS")
        out["peak_kib"] = status(pid, "VmHWM")
        if a.perf:
            c0 = cpu_seconds(pid)
            r = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(a.port), "-d", a.perf,
                                "-l", str(a.seconds), "-c", str(a.clients), "-q", "500",
                                "-t", "2"], capture_output=True, text=True)
            c1 = cpu_seconds(pid)
            done = 0
            for line in r.stdout.splitlines():
                line = line.strip()
                if line.startswith("Queries per second:"):
                    out["qps"] = float(line.split()[-1])
                if line.startswith("Queries completed:"):
                    done = int(line.split()[2])
                if line.startswith("Queries lost:"):
                    out["lost"] = int(line.split()[2])
            out["cpu_s"] = round(c1 - c0, 2)
            out["us_per_query"] = round((c1 - c0) * 1e6 / done, 2) if done else None
            out["rss_after_kib"] = status(pid, "VmRSS")
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
