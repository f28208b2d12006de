"""sdtest.py - helpers for the splitdns integration tests (TAP scripts t_*.py).

  tap = sdtest.TAP()
  tap.run("name", fn, args...)      # or @tap.test("name") on a function
  ...
  tap.done()                        # cleans up, prints the plan "1..N", exits 0

A test is "not ok" when it raises (AssertionError or anything else); its
message and traceback go out as "# " lines and the next test runs.

Upstream() starts tests/upstream.py on a free port (127.0.0.1 and ::1),
Daemon(...) writes a config and zone files into a temporary folder, starts
$SPLITDNS (default ../src/splitdns next to this file) in the foreground and
waits for its "ready" line; Daemon.stop() sends SIGTERM and asserts exit
status 0 with no sanitizer report on stderr.  Every process started here is
killed at exit; every wait is bounded.
"""

import atexit
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("srcdir") or HERE
SPLITDNS = os.environ.get("SPLITDNS") or os.path.join(HERE, "..", "src",
                                                       "splitdns")
PYTHON = "/usr/bin/python3"
V4 = "127.0.0.1"
V6 = "::1"
TRANSPORTS = [(V4, "udp"), (V4, "tcp"), (V6, "udp"), (V6, "tcp")]

_children = []      # Popen objects to kill at exit
_tmpdirs = []
_pidfiles = []      # pid files of detached daemons to kill at exit
_ports = set()


def _cleanup():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
    for path in _pidfiles:
        try:
            with open(path) as f:
                pid = int(f.read().split()[0])
            if _is_splitdns(pid):
                os.kill(pid, signal.SIGKILL)
        except Exception:
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    # make check interrupted or timed out: atexit still kills the children
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def _is_splitdns(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"splitdns" in f.read()
    except OSError:
        return False


def watch_pidfile(path):
    """Kill the process named in this pid file at exit (detached daemons)."""
    _pidfiles.append(path)


def tmpdir(prefix="sdtest."):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


# ------------------------------------------------------------------ TAP

class TAP:
    def __init__(self):
        self.n = 0
        self.failed = 0
        self.finals = []

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            print("# " + line, flush=True)

    def run(self, name, fn, *args, **kw):
        self.n += 1
        try:
            fn(*args, **kw)
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            self.failed += 1
            print("not ok %d - %s" % (self.n, name), flush=True)
            msg = "%s: %s" % (type(e).__name__, e)
            self.diag(msg[:6000])
            tb = traceback.extract_tb(e.__traceback__)
            for fr in tb[-4:]:
                self.diag("  at %s:%d in %s: %s"
                          % (os.path.basename(fr.filename), fr.lineno,
                             fr.name, (fr.line or "").strip()))
            return False
        print("ok %d - %s" % (self.n, name), flush=True)
        return True

    def skip(self, name, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, reason), flush=True)

    def test(self, name):
        """Decorator: run the function at once as one test."""
        def deco(fn):
            self.run(name, fn)
            return fn
        return deco

    def at_end(self, fn):
        """Run fn (e.g. a daemon's stop) before the plan even if tests fail."""
        self.finals.append(fn)

    def done(self):
        for fn in self.finals:
            try:
                fn()
            except Exception as e:
                self.diag("cleanup: %r" % e)
        _cleanup()
        print("1..%d" % self.n, flush=True)
        sys.exit(0)


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what="value"):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


# ---------------------------------------------------------------- ports

def _can_bind(port):
    socks = []
    try:
        for fam, addr in ((socket.AF_INET, V4), (socket.AF_INET6, V6)):
            for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(fam, typ)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 and ::1, not yet handed out."""
    for _ in range(500):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((V4, 0))
        port = s.getsockname()[1]
        s.close()
        if port in _ports or port < 1024:
            continue
        if _can_bind(port):
            _ports.add(port)
            return port
    raise RuntimeError("no free port found")


def _wait_file_text(path, needle, proc, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        if needle in text:
            return text
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


# ------------------------------------------------------------- upstream

def _absolute(name):
    return name if name == "*" else name.lower().rstrip(".") + "."


class Upstream:
    """tests/upstream.py on a free port, listening on 127.0.0.1 and ::1."""

    def __init__(self, addrs=(V4, V6)):
        self.dir = tmpdir("sdup.")
        self.logpath = os.path.join(self.dir, "queries.log")
        self.controlpath = os.path.join(self.dir, "control")
        for _ in range(5):
            self.port = free_port()
            open(self.logpath, "w").close()
            cmd = [PYTHON, os.path.join(SRCDIR, "upstream.py"),
                   "--port", str(self.port), "--log", self.logpath,
                   "--control", self.controlpath]
            for a in addrs:
                cmd += ["--addr", a]
            self.errpath = os.path.join(self.dir, "stderr")
            self.outpath = os.path.join(self.dir, "stdout")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=open(self.outpath, "w"),
                                         stderr=open(self.errpath, "w"))
            _children.append(self.proc)
            if _wait_file_text(self.outpath, "ready", self.proc, 10):
                return
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        raise RuntimeError("test upstream did not start: "
                           + open(self.errpath).read())

    def entries(self):
        """Logged queries: dicts proto, id (int or None), name, type, raw."""
        out = []
        try:
            with open(self.logpath) as f:
                lines = f.read().splitlines()
        except OSError:
            return out
        for line in lines:
            parts = line.split()
            if len(parts) < 4 or parts[1] == "-":
                out.append({"proto": parts[0] if parts else "", "id": None,
                            "name": None, "type": None, "raw": line})
                continue
            out.append({"proto": parts[0], "id": int(parts[1]),
                        "name": parts[2], "type": parts[3], "raw": line})
        return out

    def control(self, drop=(), servfail=()):
        """Replace the upstream's rules: names (or "*") it drops or answers
        with SERVFAIL from its next query on; no arguments clears them."""
        lines = ["drop %s" % _absolute(n) for n in drop]
        lines += ["servfail %s" % _absolute(n) for n in servfail]
        tmp = self.controlpath + ".new"
        with open(tmp, "w") as f:
            f.write("".join(l + "\n" for l in lines))
        os.rename(tmp, self.controlpath)

    def saw(self, name, rdtype=None):
        """The logged queries for this name (any case), optionally this type."""
        name = name.lower().rstrip(".") + "."
        return [e for e in self.entries() if e["name"] == name
                and (rdtype is None or e["type"] == rdtype)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------- daemon

def conf_text(listen, servers=None, timeout_ms=None, tries=None, zones=(),
              edns_size=None, max_connections=None, idle_timeout_ms=None,
              extra=""):
    """A main config file's text from the SPEC's settings."""
    lines = ["listen = [%s];" % ", ".join('"%s"' % a for a in listen)]
    up = []
    if servers is not None:
        up.append("servers = [%s];" % ", ".join('"%s"' % s for s in servers))
    if timeout_ms is not None:
        up.append("timeout_ms = %d;" % timeout_ms)
    if tries is not None:
        up.append("tries = %d;" % tries)
    if up:
        lines.append("upstream: {\n  %s\n};" % "\n  ".join(up))
    if zones:
        lines.append("zones = [%s];" % ", ".join('"%s"' % z for z in zones))
    if edns_size is not None:
        lines.append("edns_size = %d;" % edns_size)
    tcp = []
    if max_connections is not None:
        tcp.append("max_connections = %d;" % max_connections)
    if idle_timeout_ms is not None:
        tcp.append("idle_timeout_ms = %d;" % idle_timeout_ms)
    if tcp:
        lines.append("tcp: {\n  %s\n};" % "\n  ".join(tcp))
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def write(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


READY = " ready: listening on "   # SPEC: "splitdns VERSION ready: listening on ..."
SANITIZER_RE = re.compile(r"(ERROR: (Address|Leak|Memory|Thread)Sanitizer|"
                          r"runtime error:|SUMMARY: \w+Sanitizer)")


class Daemon:
    """splitdns in the foreground on 127.0.0.1:PORT and [::1]:PORT.

    conf: full main-file text, in which {port} and {listen} are replaced
    (str.replace, so libconfig braces are safe); or None to build one from
    the keyword settings of conf_text.  zones: {filename: text}.
    """

    def __init__(self, conf=None, zones=None, args=(), port=None,
                 ready=True, preexec_fn=None, asan=None, **settings):
        # a port picked here may be taken by a parallel test meanwhile:
        # try again with another one
        self.preexec_fn = preexec_fn  # e.g. resource limits for the child
        # asan: more ASAN_OPTIONS for this daemon alone
        self.env = None
        if asan:
            self.env = dict(os.environ)
            saved = self.env.get("ASAN_OPTIONS")
            self.env["ASAN_OPTIONS"] = ":".join(o for o in (saved, asan) if o)
        for attempt in range(3):
            try:
                self._start(conf, zones, args, port, ready, settings)
                return
            except RuntimeError:
                if port or "in use" not in self.stderr() or attempt == 2:
                    raise

    def _start(self, conf, zones, args, port, ready, settings):
        settings = dict(settings)
        self.dir = tmpdir()
        self.port = port or free_port()
        self.listen = ["%s:%d" % (V4, self.port), "[%s]:%d" % (V6, self.port)]
        for name, text in (zones or {}).items():
            write(self.dir, name, text)
        if conf is None:
            if zones and "zones" not in settings:
                settings["zones"] = sorted(zones)
            conf = conf_text(self.listen, **settings)
        else:
            conf = conf.replace("{listen}", "[%s]" % ", ".join(
                '"%s"' % a for a in self.listen)).replace(
                "{port}", str(self.port))
        self.conf = write(self.dir, "splitdns.conf", conf)
        self.errpath = os.path.join(self.dir, "stderr")
        self.outpath = os.path.join(self.dir, "stdout")
        self.cmd = [SPLITDNS, "-c", self.conf] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.outpath, "w"),
                                     stderr=open(self.errpath, "w"),
                                     cwd=self.dir, env=self.env,
                                     preexec_fn=self.preexec_fn)
        _children.append(self.proc)
        self.stopped = False
        if ready:
            self.wait_ready()

    def stderr(self):
        try:
            with open(self.errpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_ready(self, timeout=10):
        if _wait_file_text(self.errpath, READY, self.proc, timeout) is None:
            rc = self.proc.poll()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("splitdns not ready within %ds; stderr:\n%s"
                                   % (timeout, self.stderr()[-3000:]))
            raise RuntimeError("splitdns exited with status %d at start-up; "
                               "stderr:\n%s" % (rc, self.stderr()[-3000:]))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig; assert exit status 0 and no sanitizer report."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("splitdns did not exit within %ds of "
                                     "signal %d; stderr:\n%s"
                                     % (timeout, sig, self.stderr()[-3000:]))
        rc = self.proc.returncode
        err = self.stderr()
        if rc != 0:
            raise AssertionError("splitdns exit status %d; stderr:\n%s"
                                 % (rc, err[-6000:]))
        m = SANITIZER_RE.search(err)
        if m:
            raise AssertionError("sanitizer report on stderr:\n%s"
                                 % err[max(0, m.start() - 200):][:6000])


def run(args, timeout=20, **kw):
    """Run splitdns with args; returns CompletedProcess (text)."""
    return subprocess.run([SPLITDNS] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          **kw)


# -------------------------------------------------------------- queries

_uniq = [random.Random(os.getpid()).randrange(1000, 9000)]


def uniq(label, zone="example.net"):
    """A fresh name 'label.uNNNN.zone', so no cache can answer it."""
    _uniq[0] += 1
    return "%s.u%d.%s" % (label, _uniq[0], zone)


def make_query(name, rdtype="A", qid=None, edns=None, payload=1232, do=False,
               options=None, rd=True):
    """A query; edns=None means no OPT, edns=0 an OPT of version 0."""
    if edns is None and (do or options):
        edns = 0
    q = dns.message.make_query(name, rdtype,
                               use_edns=False if edns is None else edns,
                               payload=payload, want_dnssec=do,
                               options=options)
    if not rd:
        q.flags &= ~dns.flags.RD
    if qid is not None:
        q.id = qid
    return q


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def udp_raw(data, port, addr=V4, timeout=2.0):
    """Send bytes over UDP; the reply bytes, or None after timeout."""
    s = socket.socket(_family(addr), socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect((addr, port))
        s.send(data)
        return s.recv(65535)
    except (socket.timeout, ConnectionRefusedError):
        return None
    finally:
        s.close()


def tcp_connect(port, addr=V4, timeout=3.0, source=None, rcvbuf=None):
    """A TCP connection to [addr]:port, from address source (e.g. another
    127.0.0.0/8 address, to be another client) with an optional small
    receive buffer (set before connecting, so the window stays small)."""
    s = socket.socket(_family(addr), socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((addr, port))
    except BaseException:
        s.close()
        raise
    return s


def tcp_established(port, peers):
    """The server-side TCP connections on local port whose peer address is
    one of peers (IPv4 text), from /proc/net/tcp: (peer, peer port) pairs.
    Unlike reading from the client's socket, looking does not move data."""
    want = {socket.inet_aton(p)[::-1].hex().upper(): p for p in peers}
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            lport = int(local.split(":")[1], 16)
            raddr, rport = remote.split(":")
            if state == "01" and lport == port and raddr in want:
                out.append((want[raddr], int(rport, 16)))
    return out


def peer_closed(s, timeout):
    """True when the server closes s (EOF or reset) within timeout seconds;
    whatever it still sends is read and thrown away."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def frame(data):
    return struct.pack("!H", len(data)) + data


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_read(s):
    """One framed message from s; None at EOF. socket.timeout propagates."""
    head = recv_exact(s, 2)
    if head is None:
        return None
    (n,) = struct.unpack("!H", head)
    data = recv_exact(s, n)
    if data is None:
        raise AssertionError("connection closed inside a %d-byte message" % n)
    return data


def tcp_raw(data, port, addr=V4, timeout=2.0, framed=False):
    """Send one message over a new TCP connection; the reply bytes or None
    (timeout or the server closed).  framed=True: data already framed."""
    s = tcp_connect(port, addr, timeout)
    try:
        s.sendall(data if framed else frame(data))
        try:
            return tcp_read(s)
        except (socket.timeout, ConnectionResetError):
            return None
    finally:
        s.close()


def parse(wire):
    return dns.message.from_wire(wire, ignore_trailing=False)


def ask(q, port, addr=V4, proto="udp", timeout=3.0):
    """Send a dns.message query; return the parsed reply (asserts one came)."""
    wire = q.to_wire() if isinstance(q, dns.message.Message) else q
    if proto == "udp":
        r = udp_raw(wire, port, addr, timeout)
    else:
        r = tcp_raw(wire, port, addr, timeout)
    if r is None:
        raise AssertionError("no reply over %s from [%s]:%d within %.1fs"
                             % (proto, addr, port, timeout))
    return parse(r)


def ask_wire(q, port, addr=V4, proto="udp", timeout=3.0):
    """Like ask, but return (reply bytes, parsed reply)."""
    wire = q.to_wire()
    if proto == "udp":
        r = udp_raw(wire, port, addr, timeout)
    else:
        r = tcp_raw(wire, port, addr, timeout)
    if r is None:
        raise AssertionError("no reply over %s from [%s]:%d within %.1fs"
                             % (proto, addr, port, timeout))
    return r, parse(r)


def dq(q, port, addr=V4, proto="udp", timeout=3.0):
    """Query with dns.query.udp/tcp, which itself rejects a reply whose ID
    or question does not match the query."""
    if proto == "udp":
        return dns.query.udp(q, addr, port=port, timeout=timeout,
                             ignore_trailing=False)
    return dns.query.tcp(q, addr, port=port, timeout=timeout)


# ------------------------------------------------------------ checking

def rcode(r):
    return dns.rcode.to_text(r.rcode())


def flags(r):
    """Header flags as a set of names: QR AA TC RD RA AD CD."""
    return set(dns.flags.to_text(r.flags).split())


def rrs(section):
    """A section as a sorted list of 'name TTL TYPE data' (names lower-case)."""
    out = []
    for rrset in section:
        for rd in rrset:
            out.append("%s %d %s %s" % (rrset.name.to_text().lower(),
                                         rrset.ttl,
                                         dns.rdatatype.to_text(rrset.rdtype),
                                         rd.to_text()))
    return sorted(out)


def answer_list(r):
    """The answer section in order, as (name lower, TYPE, data) per RR set."""
    out = []
    for rrset in r.answer:
        out.append((rrset.name.to_text().lower(),
                    dns.rdatatype.to_text(rrset.rdtype),
                    sorted(rd.to_text() for rd in rrset)))
    return out


def check_reply(r, q, rc="NOERROR", aa=None, tc=False):
    """The checks every reply must pass: client ID, QR, the question echoed
    with the client's case, opcode, RA, rcode; optionally AA and TC."""
    eq(r.id, q.id, "reply ID")
    f = flags(r)
    check("QR" in f, "QR not set")
    check("RA" in f, "RA not set (flags %s)" % sorted(f))
    eq(r.opcode(), q.opcode(), "opcode")
    eq(rcode(r), rc, "rcode")
    eq(len(r.question), 1, "question count")
    eq(r.question[0].name.to_text(), q.question[0].name.to_text(),
       "question name (case-sensitive)")
    eq(r.question[0].rdtype, q.question[0].rdtype, "question type")
    if aa is not None:
        eq("AA" in f, aa, "AA flag")
    eq("TC" in f, tc, "TC flag")


def opt_codes(r):
    return [int(o.otype) for o in r.options]


def dig(args, timeout=10):
    p = subprocess.run(["dig"] + list(args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


# ---- process probes and waits, for the engine and fault tests

def fd_count(pid):
    """Open file descriptors of process pid."""
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    """Resident memory of process pid, in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def wait_for(cond, timeout, step=0.02):
    """Poll cond() until it is true or timeout seconds pass; its last
    value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def pipelined(s, qs):
    """Write queries qs at once on TCP socket s and read replies until all
    have come, the peer closes or the socket times out: {ID: reply}."""
    got = {}
    s.sendall(b"".join(frame(q.to_wire()) for q in qs))
    while len(got) < len(qs):
        try:
            wire = tcp_read(s)
        except (socket.timeout, ConnectionResetError):
            break
        if wire is None:
            break
        r = parse(wire)
        got.setdefault(r.id, r)
    return got
