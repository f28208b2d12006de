#!/usr/bin/python3
"""bench/refresh.py - refreshes of a subscribed list: the slowest answer
while they happen, how long each takes, and the RSS after the first and
after the last.

  refresh.py --splitdns PATH [--names 1000000] [--refreshes 100]
             [--load-qps 20000] [--threads 2] [--sighup]

Writes a hosts list of --names names (bench/gen-domains.py), serves it
from an http.server on 127.0.0.1, and starts splitdns with that URL in
block.lists and a state_dir of its own.  Once the first download is in
force, it sends one UDP query every millisecond for a blocked name (each
answer's time from the kernel's receive timestamp), optionally dnsperf
at --load-qps with names from the list, and then, --refreshes times:
changes one line of the list (so the download is a 200, not a 304),
runs splitdnsctl refresh (beside --splitdns; SIGUSR2 reopens the logs
since 0.3), and waits for "refreshed the block lists" in the log
(with --sighup: SIGHUP and "reloaded", the same work plus the
configuration, for comparison).

Prints one line of JSON: refreshes, refresh_s (min / median / max from
the command to the log line), answers, lost, p50_ms, p99_ms, max_ms,
quiet_max_ms (before the first refresh), rss_kb_first (after the first
refresh), rss_kb_last.  Standard library only, and dnsperf if asked.
Never run by CI.
"""
import argparse
import http.server
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def query(qid, name):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", 1, 1)


class Body:
    def __init__(self, base):
        self.base = base
        self.gen = 0
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            return self.base + b"0.0.0.0 gen%d.refresh.test\n" % self.gen


def serve(body):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            b = body.get()
            etag = '"%d"' % body.gen
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Prober:
    """One query a millisecond; latency from the receive timestamp."""

    def __init__(self, port, name):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.s.connect(("127.0.0.1", port))
        self.name = name
        self.sent = {}
        self.lat = []       # (send time, latency)
        self.stop = False

    def run(self):
        qid = 0
        nxt = time.time()
        drain_until = None
        while drain_until is None or time.time() < drain_until:
            if self.stop and drain_until is None:
                drain_until = time.time() + 1.0   # answers still due
            now = time.time()
            if drain_until is None and now >= nxt:
                qid = (qid + 1) & 0xFFFF
                self.sent[qid] = time.time()
                self.s.send(query(qid, self.name))
                nxt += 0.001
            r, _, _ = select.select([self.s], [], [], max(0, nxt - now))
            while r:
                data, anc, _, _ = self.s.recvmsg(512, 64, socket.MSG_DONTWAIT)
                t = time.time()
                for lvl, typ, d in anc:
                    if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                        sec, ns = struct.unpack("qq", d[:16])
                        t = sec + ns / 1e9
                qid_r = struct.unpack("!H", data[:2])[0]
                t0 = self.sent.pop(qid_r, None)
                if t0 is not None:
                    self.lat.append((t0, t - t0))
                r, _, _ = select.select([self.s], [], [], 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splitdns", required=True)
    ap.add_argument("--names", type=int, default=1000000)
    ap.add_argument("--refreshes", type=int, default=100)
    ap.add_argument("--load-qps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sighup", action="store_true",
                    help="for comparison: full reloads (SIGHUP, which "
                    "reads the cached copy) instead of refreshes")
    a = ap.parse_args()

    d = tempfile.mkdtemp(prefix="sdrefresh.")
    lst = os.path.join(d, "list.txt")
    subprocess.run([sys.executable, os.path.join(HERE, "gen-domains.py"),
                    "--count", str(a.names), "--format", "hosts", "-o", lst],
                   check=True)
    with open(lst, "rb") as f:
        base = f.read()
    first = base.split(b"\n", 1)[0].split()[1].decode()
    body = Body(base)
    httpd = serve(body)
    url = "http://127.0.0.1:%d/list.txt" % httpd.server_address[1]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(d, "splitdns.conf")
    with open(conf, "w") as f:
        f.write('listen = ["127.0.0.1:%d"];\nthreads = %d;\n'
                'upstream: { servers = ["192.0.2.1"]; };\n'
                'state_dir = "%s/state";\nblock: { lists = ["%s"]; };\n'
                'control = "%s/control";\n'
                % (port, a.threads, d, url, d))
    ctl = [os.path.join(os.path.dirname(os.path.abspath(a.splitdns)),
                        "splitdnsctl"), "-s", os.path.join(d, "control"),
           "refresh"]
    errpath = os.path.join(d, "stderr")
    p = subprocess.Popen([a.splitdns, "-c", conf], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=open(errpath, "w"))

    def log():
        with open(errpath, errors="replace") as f:
            return f.read()

    def wait_count(n, timeout=120, what="refreshed the block lists"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if log().count(what) >= n:
                return True
            if p.poll() is not None:
                break
            time.sleep(0.01)
        raise SystemExit("no refresh %d; log:\n%s" % (n, log()[-2000:]))

    load = None
    try:
        wait_count(1)           # the first download, at start
        pr = Prober(port, first)
        th = threading.Thread(target=pr.run, daemon=True)
        th.start()
        if a.load_qps:
            qf = os.path.join(d, "queries.txt")
            subprocess.run([sys.executable,
                            os.path.join(HERE, "gen-domains.py"),
                            "--count", str(a.names), "--queries", "100000",
                            "--miss", "0", "-o", qf], check=True)
            load = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p",
                                     str(port), "-d", qf, "-Q",
                                     str(a.load_qps), "-l", "100000"],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        quiet_end = time.time()
        took = []
        rss_first = 0
        for i in range(1, a.refreshes + 1):
            with body.lock:
                body.gen = i
            t = time.monotonic()
            if a.sighup:
                p.send_signal(signal.SIGHUP)
                wait_count(i, what="reloaded ")
            else:
                subprocess.run(ctl, stdout=subprocess.DEVNULL, check=True,
                               timeout=60)
                wait_count(i + 1)
            took.append(time.monotonic() - t)
            if i == 1:
                time.sleep(1.0)     # the old set is freed by the workers
                rss_first = rss_kb(p.pid)
        time.sleep(1.0)
        rss_last = rss_kb(p.pid)
        pr.stop = True
        th.join()
        lat = sorted(x for _, x in pr.lat)
        quiet = [x for t0, x in pr.lat if t0 < quiet_end]
        took.sort()
        out = {
            "names": a.names, "refreshes": a.refreshes,
            "load_qps": a.load_qps, "sighup": a.sighup,
            "refresh_s": [round(took[0], 2), round(took[len(took) // 2], 2),
                          round(took[-1], 2)],
            "answers": len(lat), "lost": len(pr.sent),
            "p50_ms": round(lat[len(lat) // 2] * 1e3, 3),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1e3, 3),
            "max_ms": round(lat[-1] * 1e3, 3),
            "quiet_max_ms": round(max(quiet) * 1e3, 3) if quiet else None,
            "rss_kb_first": rss_first, "rss_kb_last": rss_last,
        }
        print(json.dumps(out))
    finally:
        if load:
            load.terminate()
            load.wait()
        p.terminate()
        p.wait(30)
        httpd.shutdown()
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
