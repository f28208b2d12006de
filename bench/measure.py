#!/usr/bin/python3
"""bench/measure.py - start a DNS server, time it to its first answer, read
its memory, run dnsperf against it and read its CPU time.

  measure.py --name NAME --port PORT --query NAME [--perf FILE --seconds N
             --clients C --outstanding Q --passes P --server-cpu N
             --perf-cpu N --mode udp|tcp|dot|doh --perf-port P
             --perf-opt NAME=VALUE...] -- COMMAND...

The first answer is always asked over UDP on --port; dnsperf talks to
--perf-port (default: --port) in --mode (dnsperf -m), with each
--perf-opt passed as dnsperf -O (doh-uri=..., doh-method=POST).

Prints one line of JSON: name, first_answer_s, rss_kib, peak_kib, threads,
and with --perf: qps, completed, lost, rcodes, cpu_s, us_per_query (the server's
utime + stime over the dnsperf run, all its threads, divided by the queries
answered).  --server-cpu and --perf-cpu pin the server and dnsperf to one
CPU each.  The server is stopped at the end.

Also the module bench/stall.py takes its helpers from (query_wire, start,
stop, status); standard library only.
"""
import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import time


def query_wire(name, qid=0x4242, qtype=1):
    """A query for NAME (type qtype, class IN) with RD set (RFC 1035 4.1)."""
    out = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0" + struct.pack("!HH", qtype, 1)


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cpu):
    """A preexec_fn that pins the child to cpu, or None to leave it."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def start(cmd, port, qname, cpu=None, timeout=120):
    """Starts cmd and asks it for qname every 2 ms until it answers.
    Returns (process, seconds to the first answer or None)."""
    q = query_wire(qname)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.002)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=pinned(cpu))
    first = None
    try:
        while time.monotonic() - t0 < timeout:
            try:
                s.sendto(q, ("127.0.0.1", port))
                s.recv(4096)
                first = time.monotonic() - t0
                break
            except OSError:
                if p.poll() is not None:
                    break
    finally:
        s.close()
    return p, first


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def dnsperf(a):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(a.perf_port or a.port),
           "-d", a.perf, "-l", str(a.seconds), "-c", str(a.clients),
           "-q", str(a.outstanding), "-t", "2"]
    if a.mode != "udp":
        cmd += ["-m", a.mode]
    for o in a.perf_opt or []:
        cmd += ["-O", o]
    if a.passes:
        cmd += ["-n", str(a.passes)]
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pinned(a.perf_cpu))
    out = {}
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Queries per second:"):
            out["qps"] = float(line.split()[-1])
        elif line.startswith("Queries completed:"):
            out["completed"] = int(line.split()[2])
        elif line.startswith("Queries lost:"):
            out["lost"] = int(line.split()[2])
        elif line.startswith("Response codes:"):
            # "NOERROR 49738 (100.00%), NXDOMAIN 3 (0.01%)": name -> count
            out["rcodes"] = {w[0]: int(w[1]) for w in
                             (c.split() for c in line.split(":", 1)[1].split(","))
                             if len(w) >= 2 and w[1].isdigit()}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--perf")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--outstanding", type=int, default=500)
    ap.add_argument("--passes", type=int, help="dnsperf -n: times through the file")
    ap.add_argument("--server-cpu", type=int)
    ap.add_argument("--perf-cpu", type=int)
    ap.add_argument("--mode", default="udp", choices=["udp", "tcp", "dot", "doh"])
    ap.add_argument("--perf-port", type=int)
    ap.add_argument("--perf-opt", action="append")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    p, first = start(cmd, a.port, a.query, a.server_cpu)
    out = {"name": a.name, "first_answer_s": first}
    pid = p.pid
    if first is not None:
        time.sleep(0.5)
        out["rss_kib"] = status(pid, "VmRSS")
        out["peak_kib"] = status(pid, "VmHWM")
        out["threads"] = status(pid, "Threads")
        if a.perf:
            c0 = cpu_seconds(pid)
            out.update(dnsperf(a))
            c1 = cpu_seconds(pid)
            done = out.get("completed", 0)
            out["cpu_s"] = round(c1 - c0, 2)
            out["us_per_query"] = round((c1 - c0) * 1e6 / done, 2) if done else None
            out["rss_after_kib"] = status(pid, "VmRSS")
    stop(p)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
