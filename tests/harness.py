"""harness - the harness of splitdns's integration tests.

TAP output (one "ok"/"not ok" per test function, the plan at the end),
the scriptable upstream (upstream.py) and the daemon under test started on
free loopback ports, and small helpers to query them with dnspython or raw
bytes.  The daemon is $SPLITDNS (the build's src/splitdns by default).
Every process started here is stopped at exit; every wait is bounded.
It is the harness of the t_answers, t_relay, t_split and t_block scripts;
sdtest.py, the other one, provides the socket helpers both use.
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

# The low-level pieces are shared with the other harness, sdtest.
from sdtest import free_port, frame, tcp_connect, tcp_raw, udp_raw
from sdtest import tcp_read as tcp_recv

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("srcdir", HERE)
SPLITDNS = os.environ.get("SPLITDNS") or os.path.join(HERE, "..", "src", "splitdns")
PYTHON = "/usr/bin/python3"

_procs = []
_results = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)


# ---------------------------------------------------------------- TAP

def test(fn):
    """Register and run fn as one TAP test, named by its docstring."""
    name = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
    try:
        fn()
        _results.append(True)
        print("ok %d - %s" % (len(_results), name), flush=True)
    except Exception as e:
        _results.append(False)
        print("not ok %d - %s" % (len(_results), name), flush=True)
        for line in traceback.format_exception(type(e), e, e.__traceback__)[-6:]:
            for sub in line.rstrip().splitlines():
                print("# " + sub, flush=True)
    return fn


def done():
    print("1..%d" % len(_results), flush=True)
    _cleanup()
    sys.exit(0)


# ------------------------------------------------------------ processes

class Upstream:
    """The scriptable test upstream on a free port, v4 and v6."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sdup.")
        self.log = os.path.join(self.dir, "queries.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(SRCDIR, "upstream.py"), "--port", str(self.port),
             "--addr", "127.0.0.1", "--addr", "::1", "--log", self.log],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        _procs.append(self.proc)
        line = self.proc.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError("upstream did not start")

    def queries(self):
        with open(self.log) as f:
            return [l.split() for l in f if l.strip()]

    def saw(self, name):
        name = name.lower().rstrip(".") + "."
        return [q for q in self.queries() if len(q) > 2 and q[2].lower() == name]

    def clear(self):
        open(self.log, "w").close()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    """splitdns with a config written from text, on a free port."""

    def __init__(self, conf, zones=None, files=None, args=(), port=None, v6=True,
                 wait=True):
        self.dir = tempfile.mkdtemp(prefix="sdtest.")
        self.port = port or free_port()
        for name, text in (zones or {}).items():
            self.write(name, text)
        for name, text in (files or {}).items():
            self.write(name, text)
        listen = '["127.0.0.1:%d"%s]' % (self.port, ', "[::1]:%d"' % self.port if v6 else "")
        self.conf = self.write("splitdns.conf", conf.replace("@LISTEN@", listen)
                               .replace("@PORT@", str(self.port)))
        self.errpath = os.path.join(self.dir, "stderr")
        self.proc = subprocess.Popen([SPLITDNS, "-c", self.conf] + list(args),
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.errpath, "w"))
        _procs.append(self.proc)
        if wait:
            self.wait_ready()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def stderr(self):
        with open(self.errpath) as f:
            return f.read()

    def wait_ready(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("splitdns exited %d: %s" % (self.proc.returncode, self.stderr()))
            if "ready" in self.stderr():
                return
            time.sleep(0.02)
        raise RuntimeError("splitdns not ready: " + self.stderr())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM; asserts a clean exit (sanitizers make leaks fail)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("splitdns did not exit on SIGTERM")
        rc = self.proc.returncode
        err = self.stderr()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert rc == 0, "splitdns exit status %d:\n%s" % (rc, err[-3000:])
        return err


def run(args, timeout=20):
    """Run splitdns with args; returns (status, stdout, stderr)."""
    p = subprocess.run([SPLITDNS] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# --------------------------------------------------------------- queries

def query(name, rdtype="A", port=53, addr="127.0.0.1", tcp=False, timeout=3,
          want_dnssec=False, use_edns=None, payload=1232, qid=None, **kw):
    q = dns.message.make_query(name, rdtype, want_dnssec=want_dnssec,
                               use_edns=use_edns, payload=payload, **kw)
    if qid is not None:
        q.id = qid
    if tcp:
        r = dns.query.tcp(q, addr, port=port, timeout=timeout)
    else:
        r = dns.query.udp(q, addr, port=port, timeout=timeout, ignore_trailing=False)
    assert r.id == q.id, "reply ID %d, query ID %d" % (r.id, q.id)
    return q, r


def raw_udp(packet, port, addr="127.0.0.1", timeout=1.0):
    """Send bytes; the reply's bytes or None after timeout."""
    return udp_raw(packet, port, addr, timeout)


def tcp_send(s, packet):
    s.sendall(frame(packet))


def raw_tcp(packet, port, addr="127.0.0.1", timeout=2.0):
    return tcp_raw(packet, port, addr, timeout)


def rcode(r):
    return dns.rcode.to_text(r.rcode())


def texts(r, rdtype=None):
    """The answer section as sorted 'name type data' strings."""
    out = []
    for rrs in r.answer:
        if rdtype and rrs.rdtype != dns.rdatatype.from_text(rdtype):
            continue
        for rd in rrs:
            out.append("%s %s %s" % (rrs.name.to_text().lower(),
                                     dns.rdatatype.to_text(rrs.rdtype), rd.to_text()))
    return sorted(out)


def eq(a, b, what=""):
    assert a == b, "%s: got %r, want %r" % (what or "value", a, b)
