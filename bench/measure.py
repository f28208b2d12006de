#!/usr/bin/python3
"""bench/measure.py - start a DNS server, time it to its first answer, read
its memory, run dnsperf against it and read its CPU time.

  measure.py --name NAME --port PORT --query NAME [--perf FILE --seconds N
             --clients C --outstanding Q --passes P --server-cpu N
             --perf-cpu N --mode udp|tcp|dot|doh --perf-port P
             --perf-opt NAME=VALUE... --max-qps N --latency --settle S
             --stderr FILE --usr1 --scrape URL --files GLOB...] -- COMMAND...

The first answer is always asked over UDP on --port; dnsperf talks to
--perf-port (default: --port) in --mode (dnsperf -m), with each
--perf-opt passed as dnsperf -O (doh-uri=..., doh-method=POST).

Prints one line of JSON: name, first_answer_s, rss_kib, peak_kib, threads,
and with --perf: qps, completed, lost, rcodes, cpu_s, us_per_query (the server's
utime + stime over the dnsperf run, all its threads, divided by the queries
answered).  --server-cpu and --perf-cpu pin the server and dnsperf to one
CPU each.  The server is stopped at the end.  Every run also gives
lat_avg_ms and lat_max_ms (dnsperf's summary); --latency runs dnsperf -v
(one line a query, into a temporary file) for lat_p50_ms, lat_p99_ms and
lat_p999_ms too; --max-qps is dnsperf -Q.

For the observe section (metrics, query log, dnstap): --settle S waits S
seconds after dnsperf before the CPU time is read, so that a writer thread
still emptying its queue is counted; --scrape URL fetches URL every second
during the run (scrapes_ok: answers 200 with splitdns_queries_total in
them, scrapes_failed: the rest); --stderr FILE keeps the server's stderr
in FILE (appended), and --usr1 sends it SIGUSR1 after the run and reads
back its lines "query log FILE: N lines written, M dropped" and "dnstap: N
messages sent, M dropped" (qlog_written, qlog_dropped, dnstap_sent,
dnstap_dropped) and the query count of its "stats:" line (server_queries);
--files GLOB (repeatable) adds up the sizes of the files that match once
the server has stopped (files_bytes: what a query log or dnstap file and
its rotated copies hold).

Also the module bench/stall.py takes its helpers from (query_wire, start,
stop, status); standard library only.
"""
import argparse
import glob
import json
import os
import signal
import socket
import struct
import re
import subprocess
import tempfile
import threading
import time
import urllib.request


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


def start(cmd, port, qname, cpu=None, timeout=120, stderr=subprocess.DEVNULL):
    """Starts cmd and asks it for qname every 2 ms until it answers.
    Returns (process, seconds to the first answer or None)."""
    q = query_wire(qname)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.002)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr,
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
    if a.max_qps:
        cmd += ["-Q", str(a.max_qps)]
    out = {}
    if a.latency:
        # One line a query ("> NOERROR name A 0.000123"): into a file, so
        # that reading it does not compete with the run for a CPU.
        with tempfile.TemporaryFile("w+") as f:
            subprocess.run(cmd + ["-v"], stdout=f, stderr=subprocess.DEVNULL, text=True,
                           preexec_fn=pinned(a.perf_cpu))
            f.seek(0)
            lines, lat = [], []
            for line in f:
                if line.startswith("> "):
                    w = line.split()
                    try:
                        lat.append(float(w[-1]))
                    except (ValueError, IndexError):
                        pass
                else:
                    lines.append(line)
        lat.sort()
        if lat:
            for key, q in (("lat_p50_ms", 0.5), ("lat_p99_ms", 0.99), ("lat_p999_ms", 0.999)):
                out[key] = round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3, 3)
        stdout = "".join(lines)
    else:
        stdout = subprocess.run(cmd, capture_output=True, text=True,
                                preexec_fn=pinned(a.perf_cpu)).stdout
    for line in stdout.splitlines():
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
        elif line.startswith("Average Latency (s):"):
            # "Average Latency (s):  0.000111 (min 0.000021, max 0.000483)"
            m = re.match(r"Average Latency \(s\):\s+([0-9.]+) \(min ([0-9.]+), max ([0-9.]+)\)",
                         line)
            if m:
                out["lat_avg_ms"] = round(float(m.group(1)) * 1e3, 3)
                out["lat_max_ms"] = round(float(m.group(3)) * 1e3, 3)
    return out


class Scraper(threading.Thread):
    """Fetches url once a second until stopped; counts the answers that
    are 200 and hold splitdns_queries_total (ok) and the rest (failed)."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.ok, self.failed = url, 0, 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    body = r.read()
                if r.status == 200 and b"splitdns_queries_total" in body:
                    self.ok += 1
                else:
                    self.failed += 1
            except OSError:
                self.failed += 1
            self.halt.wait(max(0.0, 1.0 - (time.monotonic() - t)))


def usr1_counts(p, path):
    """SIGUSR1 to p, then the counts of its observer lines in path (the
    server's stderr): they follow its "cache:" line at once."""
    size = os.path.getsize(path)
    p.send_signal(signal.SIGUSR1)
    text = ""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and "cache:" not in text:
        time.sleep(0.2)
        with open(path, errors="replace") as f:
            f.seek(size)
            text = f.read()
    time.sleep(0.2)
    with open(path, errors="replace") as f:
        f.seek(size)
        text = f.read()
    out = {}
    m = re.search(r"stats: queries (\d+)", text)
    if m:
        out["server_queries"] = int(m.group(1))
    m = re.search(r"query log .*: (\d+) lines written, (\d+) dropped", text)
    if m:
        out["qlog_written"], out["qlog_dropped"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"dnstap: (\d+) messages sent, (\d+) dropped", text)
    if m:
        out["dnstap_sent"], out["dnstap_dropped"] = int(m.group(1)), int(m.group(2))
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
    ap.add_argument("--max-qps", type=int, help="dnsperf -Q")
    ap.add_argument("--latency", action="store_true", help="dnsperf -v: latency percentiles")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after dnsperf before reading the CPU time")
    ap.add_argument("--stderr", help="append the server's stderr to this file")
    ap.add_argument("--usr1", action="store_true",
                    help="SIGUSR1 after the run: read the observers' counts (needs --stderr)")
    ap.add_argument("--scrape", help="URL to fetch every second during the run")
    ap.add_argument("--files", action="append", help="glob: bytes of the files left (repeatable)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    err = open(a.stderr, "a") if a.stderr else subprocess.DEVNULL
    p, first = start(cmd, a.port, a.query, a.server_cpu, stderr=err)
    out = {"name": a.name, "first_answer_s": first}
    pid = p.pid
    if first is not None:
        time.sleep(0.5)
        out["rss_kib"] = status(pid, "VmRSS")
        out["peak_kib"] = status(pid, "VmHWM")
        out["threads"] = status(pid, "Threads")
        if a.perf:
            scraper = Scraper(a.scrape) if a.scrape else None
            c0 = cpu_seconds(pid)
            if scraper:
                scraper.start()
            out.update(dnsperf(a))
            if scraper:
                scraper.halt.set()
                scraper.join()
                out["scrapes_ok"], out["scrapes_failed"] = scraper.ok, scraper.failed
            time.sleep(a.settle)
            c1 = cpu_seconds(pid)
            done = out.get("completed", 0)
            out["cpu_s"] = round(c1 - c0, 2)
            out["us_per_query"] = round((c1 - c0) * 1e6 / done, 2) if done else None
            out["rss_after_kib"] = status(pid, "VmRSS")
        if a.usr1 and a.stderr:
            err.flush()
            out.update(usr1_counts(p, a.stderr))
    stop(p)
    if a.stderr:
        err.close()
    if a.files:
        out["files_bytes"] = sum(os.path.getsize(f) for g in a.files for f in glob.glob(g))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
