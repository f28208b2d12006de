#!/usr/bin/python3
"""t_manpage.py - what splitdns(8) and splitdns.conf(5) promise, where the
other scripts do not look (TAP).

Documented defaults, both edges of every documented range (accepted at the
limit, refused past it with file:line), documented errors and their
"file:line: message" / "file: message" forms, the EXAMPLES of both pages run
as written (upstream servers replaced by the test upstream, listen addresses
by loopback ports), the command-line options, signals, exit statuses, the
log lines and the FILES section.  A failing test here is a disagreement
between the daemon and its manual, not a flaky test: keep it failing.

The tests that need root (network and mount namespaces for port 53,
/etc/resolv.conf and /run/splitdns.pid; another user) print "# SKIP" and
pass without it.  Everything else runs on 127.0.0.1 and ::1 (127.0.0.2 only
as a client address), and every process started here is stopped at exit.
"""
import atexit
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402

import harness  # noqa: E402
from harness import (PYTHON, SPLITDNS, SRCDIR, Daemon, Upstream, done, eq,  # noqa: E402
                     free_port, query, raw_udp, rcode, run, tcp_connect, tcp_recv,
                     tcp_send, test, texts)

TOP = os.path.normpath(os.path.join(SRCDIR, ".."))
MAN8 = os.path.join(TOP, "man", "splitdns.8")
MAN5 = os.path.join(TOP, "man", "splitdns.conf.5")
ROOT = os.geteuid() == 0
HAVE_NS = ROOT and all(shutil.which(t) for t in ("unshare", "nsenter", "ip", "mount"))
DIG = shutil.which("dig")

# ------------------------------------------------------------ utilities

_tmpdirs = []
_needles = []       # text in the command line of detached daemons started here


def tmpdir(mode=None):
    d = tempfile.mkdtemp(prefix="sdman.")
    _tmpdirs.append(d)
    if mode is not None:
        os.chmod(d, mode)
    return d


def _pids_with(needle):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if needle.encode() in cmd and b"splitdns" in cmd:
                out.append(int(p))
    return out


def _cleanup():
    harness._cleanup()
    for needle in _needles:            # detached daemons: by their own pid only
        for pid in _pids_with(needle):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def skip(reason):
    print("# SKIP %s" % reason, flush=True)


def start(argv, **kw):
    """Popen that harness kills at exit."""
    p = subprocess.Popen(argv, **kw)
    harness._procs.append(p)
    return p


class Daemon(Daemon):
    """harness.Daemon, able to write files into sub-folders (blocklists/)."""

    def write(self, name, text):
        if self.dir not in _tmpdirs:        # removed at exit even if it never starts
            _tmpdirs.append(self.dir)
        os.makedirs(os.path.dirname(os.path.join(self.dir, name)), exist_ok=True)
        return super().write(name, text)


def write_files(folder, files):
    for name, text in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def resolv_argv(argv):
    """argv run with a resolv.conf of ours when possible (a mount namespace)."""
    if not HAVE_NS:
        return argv
    d = tmpdir()
    path = os.path.join(d, "resolv.conf")
    write_files(d, {"resolv.conf": "nameserver 192.0.2.1\n"})
    return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', path] + list(argv)


def wait_for(get, pred, timeout=5.0, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = get()
        if pred(v):
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s; last: %r" % (what, v if not isinstance(v, str) else v[-1500:]))
        time.sleep(0.02)


def _try_query(name, port, addr="127.0.0.1"):
    try:
        return query(name, port=port, addr=addr, timeout=0.3)
    except Exception:  # noqa: BLE001
        return None


def check_all(problems):
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


def unroff(s):
    return (s.replace("\\e", "\\").replace("\\-", "-").replace("\\(aq", "'")
            .replace("\\(em", "--").replace("\\&", ""))


def man_section(path, name):
    with open(path) as f:
        text = f.read()
    return text.split("\n.SH %s\n" % name, 1)[1].split("\n.SH ", 1)[0]


def man_blocks(section):
    """The .EX/.EE blocks of a man page section, unescaped."""
    return [unroff(b) for b in re.findall(r"^\.EX\n(.*?)\n\.EE$", section, re.S | re.M)]


def transcript(block, prompt):
    """[(command, [output lines])] of a '$ command' transcript."""
    out = []
    for line in block.splitlines():
        if line.startswith(prompt):
            out.append((line[len(prompt):], []))
        elif out:
            out[-1][1].append(line)
    return out


def udp_from(name, rdtype, port, source, addr="127.0.0.1", timeout=2):
    q = dns.message.make_query(name, rdtype)
    r = dns.query.udp(q, addr, port=port, timeout=timeout, source=source)
    eq(r.id, q.id, "reply ID")
    return r


def dig_argv(port, args, addr="127.0.0.1"):
    return ["dig", "@" + addr, "-p", str(port), "+time=3", "+tries=1"] + list(args)


def digparse(out):
    """status, flags, and the answer / authority / additional lines of dig's output."""
    res = {"status": None, "flags": set(), "ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
    m = re.search(r"status: (\w+)", out)
    if m:
        res["status"] = m.group(1)
    m = re.search(r";; flags: ([a-z ]+);", out)
    if m:
        res["flags"] = set(m.group(1).split())
    sec = None
    for line in out.splitlines():
        m = re.match(r";; (\w+) SECTION:", line)
        if m:
            sec = m.group(1)
            continue
        if not line.strip() or line.startswith(";"):
            if not line.strip():
                sec = None
            continue
        if sec in res:
            res[sec].append(" ".join(line.split()))
    return res


# ---------------------------------------------------------- -t helpers

def tcheck(files, args=(), main="splitdns.conf"):
    d = tmpdir()
    write_files(d, files)
    path = os.path.join(d, main)
    rc, out, err = run(["-t", "-c", path] + list(args), timeout=10)
    return rc, out, err, path


def accepts(files, what, args=()):
    rc, out, err, path = tcheck(files, args)
    if rc != 0 or out != "%s: configuration OK\n" % path:
        return "%s: not accepted (exit %d, stdout %r): %s" % (what, rc, out, err.strip()[-300:])
    return None


def refuses(files, what, fname, line, args=(), text=None):
    """-t must exit 1 with 'fname:line: ' (line None: 'fname: ', no line;
    a tuple of lines: any of them)."""
    rc, out, err, path = tcheck(files, args)
    p = []
    if rc != 1:
        p.append("exit %d, want 1" % rc)
    if "configuration OK" in out:
        p.append("says configuration OK")
    if line is None:
        if not re.search(r"(^|/)%s: " % re.escape(fname), err, re.M) or \
                re.search(r"(^|/)%s:\d+:" % re.escape(fname), err):
            p.append("stderr is not '%s: message'" % fname)
    else:
        lines = line if isinstance(line, tuple) else (line,)
        if not any(re.search(r"(^|/)%s:%d: " % (re.escape(fname), n), err, re.M) for n in lines):
            p.append("stderr lacks '%s:%s: '" % (fname, "|".join(map(str, lines))))
    if text and text not in err:
        p.append("message does not mention %r" % text)
    if p:
        return "%s: %s; stderr %r" % (what, ", ".join(p), err.strip()[-300:])
    return None


L1 = 'listen = ["127.0.0.1:5399"];\n'
U2 = 'upstream: { servers = ["192.0.2.53"]; };\n'


def main3(line3, line2=U2, line1=L1):
    """A main file whose line 3 is the setting under test."""
    return {"splitdns.conf": line1 + line2 + line3 + "\n"}


def zone2(line2, origin="lan.test"):
    """A zone file z.zone whose line 2 is the setting under test."""
    return {"splitdns.conf": L1 + U2 + 'zones = ["z.zone"];\n',
            "z.zone": 'origin = "%s";\n%s\n' % (origin, line2)}


def rec(rtype, data, name="r", extra=""):
    return 'records = ( { name = "%s"; type = "%s"; data = "%s";%s } );' % (name, rtype, data, extra)


# =============================================================== daemons
# Started first, so that the idle connection of the tcp.idle_timeout_ms
# default test runs its 10 seconds while everything else is tested.

up = Upstream()      # tests/upstream.py, the default upstream of most daemons
upB = Upstream()     # a second one (the "office VPN" of the EXAMPLES)

ZDEF = r'''origin = "def.example.";
records = (
  { name = "host"; type = "A";   data = "198.18.0.5"; },
  { name = "tx";   type = "TXT"; data = "t"; ttl = 77; }
);
'''
# every setting left at its default but the upstream servers
D_DEF = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
               'zones = ["def.zone"];\nblock: { domains = ["ads.example.com"]; };\n'
               % up.port, zones={"def.zone": ZDEF})
P_DEF = D_DEF.port

IDLE = {}


def _idle_watch():
    try:
        s = socket.create_connection(("127.0.0.1", P_DEF), timeout=5)
    except OSError as e:
        IDLE["error"] = e
        return
    t0 = time.monotonic()
    s.settimeout(20)
    try:
        IDLE["data"] = s.recv(16)
    except Exception as e:  # noqa: BLE001 - reported by the test
        IDLE["data"] = e
    IDLE["after"] = time.monotonic() - t0
    s.close()


IDLE_THREAD = threading.Thread(target=_idle_watch, daemon=True)
IDLE_THREAD.start()


class Oracle:
    """A tiny upstream in this process (UDP, 127.0.0.1): answers from a table
    keyed by lower-case name, and logs (name, type, source port, RD)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.table = {}
        self.log = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
                qname = q.question[0].name
            except Exception:  # noqa: BLE001 - not ours to judge
                continue
            name = qname.to_text().lower()
            with self.lock:
                self.log.append((name, q.question[0].rdtype, peer[1],
                                 bool(q.flags & dns.flags.RD)))
            r = dns.message.make_response(q)
            r.flags |= dns.flags.RA
            fn = self.table.get(name)
            if fn:
                fn(q, r)
            elif q.question[0].rdtype == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", "198.51.100.7"))
            try:
                self.sock.sendto(r.to_wire(), peer)
            except OSError:
                pass

    def saw(self, name):
        name = name.lower().rstrip(".") + "."
        with self.lock:
            return [e for e in self.log if e[0] == name]

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def answer(rtype, ttl, *datas):
    def fn(q, r):
        r.answer.append(dns.rrset.from_text_list(q.question[0].name, ttl, "IN", rtype, list(datas)))
    return fn


def negative(rc=dns.rcode.NXDOMAIN, soa=None):
    """NXDOMAIN/NODATA; soa = (ttl, minimum) or None for no SOA at all."""
    def fn(q, r):
        r.set_rcode(rc)
        if soa:
            zone = q.question[0].name.parent()
            r.authority.append(dns.rrset.from_text(
                zone, soa[0], "IN", "SOA",
                "ns.%s hostmaster.%s 1 3600 600 86400 %d" % (zone, zone, soa[1])))
    return fn


oracle = Oracle()
# every setting at its default but the upstream servers
D_OR = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n' % oracle.port)
P_OR = D_OR.port


# ================================================ command line, FILES

@test
def t_default_config_file():
    """-h prints the default configuration file; without -c, -t reads exactly that file"""
    rc, out, err = run(["-h"])
    eq(rc, 0, "exit status of -h")
    m = re.search(r"(/\S+/splitdns/splitdns\.conf)\b", out)
    assert m, "-h names no sysconfdir/splitdns/splitdns.conf: %r" % out
    path = m.group(1)
    rc, out, err = run(["-t"])
    if os.path.exists(path):
        assert path in out + err, "-t without -c does not mention %s: %r %r" % (path, out, err)
    else:
        eq(rc, 1, "exit status of -t with the default file missing")
        assert path in err, "-t without -c does not name %s: %r" % (path, err)


@test
def t_cmdline_errors_exit_1():
    """a wrong command line exits with status 1 and says why on standard error"""
    d = tmpdir()
    conf = os.path.join(d, "splitdns.conf")
    write_files(d, {"splitdns.conf": L1 + U2 + 'zones = ["z.zone"];\n',
                    "z.zone": 'origin = "lan.test";\nrecords = ( { name = "a"; type = "A"; data = "10.0.0.1"; } );\n'})
    cases = [["--no-such-option"], ["-x"], ["-c"], ["-p"], ["-l"], ["--explain"],
             ["-t", "-c", conf, "-l", "300.1.1.1"], ["-t", "-c", conf, "-l", "localhost:53"],
             ["-c", conf, "--explain", "a.lan.test", "NOSUCHTYPE"],
             ["-t", "-c", conf, "stray-argument"]]
    problems = []
    for args in cases:
        rc, out, err = run(args, timeout=10)
        if rc != 1 or not err.strip():
            problems.append("%s: exit %d, stderr %r" % (" ".join(args), rc, err[-200:]))
    check_all(problems)


@test
def t_l_64_times():
    """-l may be given up to 64 times: 64 are accepted, 65 are an error (exit 1)"""
    d = tmpdir()
    write_files(d, {"splitdns.conf": L1 + U2})
    conf = os.path.join(d, "splitdns.conf")
    ls = []
    for i in range(65):
        ls += ["-l", "127.0.0.1:%d" % (21000 + i)]
    rc, out, err = run(["-t", "-c", conf] + ls[:128])
    eq((rc, out), (0, "%s: configuration OK\n" % conf), "64 -l options (stderr %r)" % err)
    rc, out, err = run(["-t", "-c", conf] + ls)
    eq(rc, 1, "exit status with 65 -l options")
    assert err.strip(), "no message for 65 -l options"


@test
def t_l_default_port_53():
    """-l without a port means port 53 (192.0.2.1 or ::1 forms), and replaces listen"""
    check_all([
        refuses(main3('upstream: { servers = ["127.0.0.1:53"]; };', line2="#\n"),
                "-l 127.0.0.1 with upstream 127.0.0.1:53", "splitdns.conf", 3,
                args=["-l", "127.0.0.1"], text="loop"),
        refuses(main3('upstream: { servers = ["[::1]:53"]; };', line2="#\n"),
                "-l ::1 with upstream [::1]:53", "splitdns.conf", 3,
                args=["-l", "::1"], text="loop"),
        accepts(main3('upstream: { servers = ["127.0.0.1:54"]; };', line2="#\n"),
                "-l 127.0.0.1 with upstream 127.0.0.1:54", args=["-l", "127.0.0.1"]),
        # the listen setting itself is replaced: its loop no longer counts
        accepts(main3('upstream: { servers = ["127.0.0.1:5399"]; };', line2="#\n"),
                "listen 127.0.0.1:5399 replaced by -l [::1]:5300",
                args=["-l", "[::1]:5300"]),
    ])


@test
def t_listen_default():
    """listen defaults to 127.0.0.1:53 and [::1]:53 (seen as forwarding loops by -t)"""
    check_all([
        refuses({"splitdns.conf": 'upstream: { servers = ["127.0.0.1:53"]; };\n'},
                "no listen, upstream 127.0.0.1:53", "splitdns.conf", 1, text="loop"),
        refuses({"splitdns.conf": 'upstream: { servers = ["[::1]:53"]; };\n'},
                "no listen, upstream [::1]:53", "splitdns.conf", 1, text="loop"),
        accepts({"splitdns.conf": 'upstream: { servers = ["127.0.0.1:54", "127.0.0.2:53"]; };\n'},
                 "no listen, upstreams 127.0.0.1:54 and 127.0.0.2:53"),
    ])


@test
def t_explain_types():
    """--explain: type A by default, type names in any case, type numbers, ANY; no query sent"""
    d = tmpdir()
    write_files(d, {"splitdns.conf": L1 + 'upstream: { servers = ["127.0.0.1:%d"]; };\nzones = ["z.zone"];\n' % up.port,
                    "z.zone": 'origin = "lan.test";\nrecords = (\n'
                              '  { name = "a"; type = "A"; data = "10.0.0.1"; },\n'
                              '  { name = "a"; type = "AAAA"; data = "fd00::1"; }\n);\n'})
    conf = os.path.join(d, "splitdns.conf")
    up.clear()

    def explain(*args):
        rc, out, err = run(["-c", conf, "--explain"] + list(args))
        eq(rc, 0, "exit status of --explain %s (stderr %r)" % (" ".join(args), err))
        return out

    out = explain("a.lan.test")
    assert out.startswith("a.lan.test. A\n") and "z.zone:3 (A)" in out and "10.0.0.1" in out, out
    for t in ("AAAA", "aaaa", "28"):
        out = explain("a.lan.test", t)
        assert out.startswith("a.lan.test. AAAA\n") and "z.zone:4 (AAAA)" in out, (t, out)
    out = explain("a.lan.test", "ANY")
    assert "10.0.0.1" in out and "fd00::1" in out, out
    out = explain("www.example.org")
    assert "127.0.0.1:%d" % up.port in out, out
    time.sleep(0.1)
    eq(up.queries(), [], "queries the upstream received from --explain")


@test
def t_explain_every_record_line():
    """--explain names the zone file and line of each record used (CNAME chain: the target's too)"""
    d = tmpdir()
    for f in ("splitdns.conf", "home.zone"):
        shutil.copy(os.path.join(TOP, "etc", f), d)
    with open(os.path.join(d, "home.zone")) as f:
        lines = f.read().splitlines()
    nas = [i + 1 for i, l in enumerate(lines) if re.search(r'name = "nas";\s+type = "A";', l)]
    assert len(nas) == 1, "etc/home.zone: nas A record not found"
    p = subprocess.run(resolv_argv([SPLITDNS, "-c", os.path.join(d, "splitdns.conf"), "-l", "127.0.0.1:5399",
                                    "--explain", "www.home.lab"]), capture_output=True, text=True, timeout=10)
    out = p.stdout
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    assert "home.zone:%d (A)" % nas[0] in out, \
        "the record used for nas.home.lab (home.zone:%d) is not named:\n%s" % (nas[0], out)


# ============================================================ ranges

def range_case(title, build, ok, bad, fname, line):
    def fn():
        problems = [accepts(build(v), "%s = %s" % (title.split()[0], v)) for v in ok]
        problems += [refuses(build(v), "%s = %s" % (title.split()[0], v), fname, line) for v in bad]
        check_all(problems)
    fn.__doc__ = title
    test(fn)


UPL = "# upstream on line 3\n"
range_case("upstream.timeout_ms: 100 and 30000 accepted (99, 30001 refused: t_config)",
           lambda v: main3('upstream: { servers = ["192.0.2.53"]; timeout_ms = %s; };' % v, UPL),
           [100, 30000], [], "splitdns.conf", 3)
range_case("upstream.tries: 1 and 10 accepted (0, 11 refused: t_config)",
           lambda v: main3('upstream: { servers = ["192.0.2.53"]; tries = %s; };' % v, UPL),
           [1, 10], [], "splitdns.conf", 3)
range_case("edns_size: 512 and 4096 accepted (511, 4097 refused: t_config)",
           lambda v: main3("edns_size = %s;" % v), [512, 4096], [], "splitdns.conf", 3)
range_case("tcp.max_connections: 1 and 65535 accepted (0, 65536 refused: t_config)",
           lambda v: main3("tcp: { max_connections = %s; };" % v), [1, 65535], [], "splitdns.conf", 3)
range_case("tcp.idle_timeout_ms: 1000 and 600000 accepted (999, 600001 refused: t_config)",
           lambda v: main3("tcp: { idle_timeout_ms = %s; };" % v), [1000, 600000], [], "splitdns.conf", 3)
range_case("listen and upstream ports: 1 and 65535 accepted (0, 99999, 70000 refused: t_config)",
           lambda v: main3('upstream: { servers = ["192.0.2.1:%s", "[2001:db8::1]:%s", "192.0.2.2"]; };' % (v, v),
                           line1='listen = ["127.0.0.1:%s", "[::1]:%s", "127.0.0.2", "::1"];\n' % (v, v),
                           line2="#\n"),
           [1, 65535], [], "splitdns.conf", 3)
range_case("block.ttl: 0..604800",
           lambda v: main3("block: { ttl = %s; };" % v), [0, 604800], [-1, 604801], "splitdns.conf", 3)
range_case("cache.size: 0..10000000",
           lambda v: main3("cache: { size = %s; };" % v), [0, 10000000], [-1, 10000001], "splitdns.conf", 3)
range_case("cache.min_ttl: 0..86400",
           lambda v: main3("cache: { min_ttl = %s; };" % v), [0, 86400], [-1, 86401], "splitdns.conf", 3)
range_case("cache.max_ttl: 0..604800",
           lambda v: main3("cache: { max_ttl = %s; };" % v), [0, 604800], [-1, 604801], "splitdns.conf", 3)
range_case("cache.negative_ttl: 0..86400",
           lambda v: main3("cache: { negative_ttl = %s; };" % v), [0, 86400], [-1, 86401], "splitdns.conf", 3)
range_case("cache.max_ttl is at least min_ttl",
           lambda v: main3("cache: { min_ttl = %d; max_ttl = %d; };" % v), [(100, 100), (0, 0)], [(101, 100)],
           "splitdns.conf", 3)
range_case("listen: at most 64 addresses",
           lambda n: main3("listen = [%s];" % ", ".join('"127.0.0.1:%d"' % (20000 + i) for i in range(n)),
                           line1=U2, line2="#\n"),
           [64], [65], "splitdns.conf", 3)
range_case("upstream.servers: at most 32",
           lambda n: main3("upstream: { servers = [%s]; };" % ", ".join('"192.0.2.%d"' % (i + 1) for i in range(n)),
                           UPL),
           [32], [33], "splitdns.conf", 3)
range_case("forward servers: at most 32 per rule",
           lambda n: main3('forward = ( { domain = "corp.example"; servers = [%s]; } );'
                           % ", ".join('"192.0.2.%d"' % (i + 1) for i in range(n))),
           [32], [33], "splitdns.conf", 3)
range_case("zone ttl: 0..2147483647",
           lambda v: zone2("ttl = %s;" % v), [0, 2147483647], [-1, 2147483648], "z.zone", 2)
range_case("record ttl: 0..2147483647",
           lambda v: zone2(rec("A", "10.0.0.1", extra=" ttl = %s;" % v)), [0, 2147483647], [-1, 2147483648],
           "z.zone", 2)
range_case("MX preference: 0..65535",
           lambda v: zone2(rec("MX", "%s mail" % v)), [0, 65535], [-1, 65536], "z.zone", 2)
range_case("SRV priority, weight and port: 0..65535 each",
           lambda v: zone2(rec("SRV", v)), ["0 0 0 t", "65535 65535 65535 t"],
           ["65536 0 0 t", "0 65536 0 t", "0 0 65536 t"], "z.zone", 2)
range_case("CAA flags: 0..255",
           lambda v: zone2(rec("CAA", '%s issue \\"ca.example\\"' % v)), [0, 255], [256], "z.zone", 2)
range_case("SOA numbers: 0..4294967295 each",
           lambda v: zone2(rec("SOA", "ns hostmaster %s" % v, name="@")),
           ["0 0 0 0 0", "4294967295 4294967295 4294967295 4294967295 4294967295"],
           ["4294967296 1 1 1 1", "1 4294967296 1 1 1", "1 1 4294967296 1 1", "1 1 1 4294967296 1",
            "1 1 1 1 4294967296"], "z.zone", 2)
range_case("labels: at most 63 octets",
           lambda n: zone2(rec("A", "10.0.0.1", name="a" * n)), [63], [64], "z.zone", 2)
# lan.test is 10 octets in wire form; 3 labels of 63 (64 each) + one of 52 (53) + 10 = 255
range_case("names: at most 255 octets in wire form",
           lambda n: zone2(rec("A", "10.0.0.1", name=".".join(["a" * 63, "b" * 63, "c" * 63, "d" * n]))),
           [52], [53], "z.zone", 2)
range_case("TXT: a quoted string holds at most 255 octets",
           lambda n: zone2(rec("TXT", '\\"%s\\"' % ("x" * n))), [255], [256], "z.zone", 2)
range_case("CAA: a quoted value holds at most 255 octets",
           lambda n: zone2(rec("CAA", '0 issue \\"%s\\"' % ("x" * n))), [255], [256], "z.zone", 2)
# 255 strings of 255 (256 octets each) + one of 254 (255) = 65535 octets
range_case("record data: at most 65535 octets",
           lambda n: zone2(rec("TXT", "x" * n)), [255 * 255 + 254], [255 * 256], "z.zone", 2)
range_case("reverse: IPv4 prefix lengths 8, 16, 24 or 32; IPv6 a multiple of 4",
           lambda v: zone2('reverse = ["%s"];' % v),
           ["10.0.0.0/8", "172.16.0.0/16", "192.168.1.0/24", "192.168.1.1/32",
            "fd00::/4", "fd00::/64", "fd00::1/128"],
           ["10.0.0.0/12", "192.168.1.0/25", "10.0.0.0/33", "fd00::/62", "fd00::/129"], "z.zone", 2)


@test
def t_no_32bit_wrap():
    """numbers out of range are errors, also those beyond 32 bits (no silent wrap-around)"""
    wrap = 1 << 32
    cases = [
        ("upstream.timeout_ms = 1000 + 2^32",
         main3('upstream: { servers = ["192.0.2.53"]; timeout_ms = %d; };' % (wrap + 1000), UPL), "splitdns.conf", 3),
        ("upstream.tries = 2 + 2^32",
         main3('upstream: { servers = ["192.0.2.53"]; tries = %d; };' % (wrap + 2), UPL), "splitdns.conf", 3),
        ("edns_size = 512 + 2^32", main3("edns_size = %d;" % (wrap + 512)), "splitdns.conf", 3),
        ("tcp.max_connections = 1 + 2^32", main3("tcp: { max_connections = %d; };" % (wrap + 1)),
         "splitdns.conf", 3),
        ("tcp.idle_timeout_ms = 10000 + 2^32", main3("tcp: { idle_timeout_ms = %d; };" % (wrap + 10000)),
         "splitdns.conf", 3),
        ("block.ttl = 60 + 2^32", main3("block: { ttl = %d; };" % (wrap + 60)), "splitdns.conf", 3),
        ("cache.size = 2^32", main3("cache: { size = %d; };" % wrap), "splitdns.conf", 3),
        ("cache.negative_ttl = 2^32", main3("cache: { negative_ttl = %d; };" % wrap), "splitdns.conf", 3),
        ("zone ttl = 2^32", zone2("ttl = %d;" % wrap), "z.zone", 2),
        ("record ttl = 1 + 2^32", zone2(rec("A", "10.0.0.1", extra=" ttl = %d;" % (wrap + 1))), "z.zone", 2),
    ]
    check_all([refuses(files, what, fname, line) for what, files, fname, line in cases])


# ============================================================ errors

@test
def t_empty_listen():
    """an empty listen array is an error"""
    check_all([refuses(main3("listen = [];", line1=U2, line2="#\n"), "listen = []", "splitdns.conf", 3)])


@test
def t_forward_rule_errors():
    """forward: domain is required; servers or refuse = true, not both, not neither"""
    check_all([
        refuses(main3('forward = ( { servers = ["10.1.0.53"]; } );'), "no domain", "splitdns.conf", 3),
        refuses(main3('forward = ( { domain = "corp.example"; } );'), "neither", "splitdns.conf", 3),
        refuses(main3('forward = ( { domain = "corp.example"; refuse = false; } );'),
                "refuse = false, no servers", "splitdns.conf", 3),
        refuses(main3('forward = ( { domain = "corp.example"; servers = ["10.1.0.53"]; refuse = true; } );'),
                "servers and refuse", "splitdns.conf", 3),
        accepts(main3('forward = ( { domain = "corp.example."; servers = ["10.1.0.53"]; } );'),
                "a final dot on the domain"),
    ])


@test
def t_forward_duplicate_domain():
    """two forward rules for the same domain are an error, with or without the final dot"""
    two = 'forward = (\n  { domain = "%s"; servers = ["10.1.0.53"]; },\n  { domain = "%s"; refuse = true; }\n);'
    check_all([refuses(main3(two % (a, b)), "rules %r and %r" % (a, b), "splitdns.conf", 5)
               for a, b in (("corp.example", "corp.example"), ("corp.example", "CORP.Example"),
                            ("corp.example.", "corp.example"), ("corp.example", "corp.example."))])


@test
def t_zone_errors():
    """zone files: same origin twice (dot and case ignored); missing origin is 'file: message'"""
    base = L1 + U2 + "zones = [%s];\n"
    check_all([
        refuses({"splitdns.conf": base % '"a.zone", "b.zone"', "a.zone": 'origin = "lan.test";\n',
                 "b.zone": '\norigin = "%s";\n' % o}, "origins lan.test and %s" % o, "b.zone", 2)
        for o in ("lan.test", "lan.test.", "LAN.Test")
    ] + [
        refuses({"splitdns.conf": base % '"a.zone"', "a.zone": 'ttl = 5;\nrecords = ();\n'},
                "a zone file without origin", "a.zone", None),
        accepts({"splitdns.conf": base % '"a.zone"', "a.zone": 'origin = "lan.test.";\n'},
                "an origin with a final dot"),
    ])


@test
def t_record_errors():
    """records: name, type and data required; at or below the origin; SOA at the origin only"""
    check_all([
        refuses(zone2('records = ( { type = "A"; data = "10.0.0.1"; } );'), "no name", "z.zone", 2),
        refuses(zone2('records = ( { name = "a"; data = "10.0.0.1"; } );'), "no type", "z.zone", 2),
        refuses(zone2('records = ( { name = "a"; type = "A"; } );'), "no data", "z.zone", 2),
        refuses(zone2(rec("A", "10.0.0.1", name="a.other.test.")), "name outside the origin", "z.zone", 2),
        refuses(zone2(rec("SOA", "ns hostmaster 1 2 3 4 5", name="sub")), "SOA below the origin", "z.zone", 2),
        accepts(zone2(rec("A", "10.0.0.1", name="a.lan.test.")), "an absolute name inside the origin"),
        accepts(zone2(rec("aaaa", "fd00::1")), "type in lower case"),
    ])


@test
def t_cname_exclusive():
    """a name with a CNAME has no other record and one CNAME; a record written twice counts once"""
    two = 'records = (\n  { name = "a"; type = "CNAME"; data = "b"; },\n  { name = "a"; type = "%s"; data = "%s"; }\n);'
    check_all([
        refuses(zone2(two % ("A", "10.0.0.1")), "CNAME and A", "z.zone", (3, 4)),
        refuses(zone2(two % ("CNAME", "c")), "two CNAMEs", "z.zone", (3, 4)),
        accepts(zone2(two % ("CNAME", "b")), "the same CNAME twice"),
    ])


@test
def t_two_soa_refused():
    """two SOA records in a zone: an error at the second, as file:line (splitdns.conf(5), RECORD DATA, SOA)"""
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\nzones = ["z.zone"];\n' % up.port,
               zones={"z.zone": 'origin = "lan.test";\nrecords = (\n'
                                '  { name = "@"; type = "SOA"; data = "ns hostmaster 1 3600 600 86400 300"; },\n'
                                '  { name = "@"; type = "SOA"; data = "ns hostmaster 2 3600 600 86400 300"; }\n);\n'},
               wait=False)
    eq(d.proc.wait(timeout=10), 1, "exit status")
    assert "z.zone:4: a second SOA record" in d.stderr(), d.stderr()


@test
def t_blocklist_file_errors():
    """block.lists: no match or an unreadable file is an error, reported as file:line"""
    base = L1 + U2 + "block: {\n  lists = [%s];\n};\n"
    check_all([
        refuses({"splitdns.conf": base % '"none*.txt"'}, "a pattern that matches no file", "splitdns.conf", 4,
                text="none*.txt"),
        refuses({"splitdns.conf": base % '"missing.txt"'}, "a missing file", "splitdns.conf", 4,
                text="missing.txt"),
        refuses({"splitdns.conf": base % '"dir.txt"', "dir.txt/x": ""}, "a folder", "splitdns.conf", 4,
                text="dir.txt"),
        accepts({"splitdns.conf": base % '"l?.txt", "m[0-9].txt", "sub/*.txt"', "l1.txt": "a.example\n",
                 "m5.txt": "b.example\n", "sub/x.txt": "c.example\n"}, "?, [...] and * patterns"),
    ])


@test
def t_forwarding_loops():
    """forwarding loops: a forward rule's server, and loopback upstreams with 0.0.0.0 or ::"""
    check_all([
        refuses(main3('forward = ( { domain = "corp.example"; servers = ["127.0.0.1:5399"]; } );'),
                "forward server = listen", "splitdns.conf", 3, text="loop"),
        refuses(main3('upstream: { servers = ["127.0.0.5:5399"]; };', line1='listen = ["0.0.0.0:5399"];\n',
                      line2="#\n"), "0.0.0.0 and 127.0.0.5", "splitdns.conf", 3, text="loop"),
        refuses(main3('upstream: { servers = ["[::1]:5399"]; };', line1='listen = ["[::]:5399"];\n',
                      line2="#\n"), ":: and ::1", "splitdns.conf", 3, text="loop"),
        accepts(main3('upstream: { servers = ["127.0.0.1:5398"]; };', line1='listen = ["0.0.0.0:5399"];\n',
                      line2="#\n"), "0.0.0.0:5399 and 127.0.0.1:5398"),
    ])


@test
def t_user_unknown_with_t():
    """-t refuses a user that does not exist, as start-up does (file:line)"""
    files = main3('user = "no-such-user-here";')
    check_all([refuses(files, "-t with user no-such-user-here", "splitdns.conf", 3)])


@test
def t_user_other():
    """started as another user, splitdns accepts only that user's name (file:line, exit 1)"""
    if not ROOT:
        return skip("needs root to start as another user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return skip("no user nobody")
    d = tmpdir(0o755)
    port = free_port()
    write_files(d, {"ok.conf": 'listen = ["127.0.0.1:%d"];\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                               'user = "nobody";\n' % (port, up.port),
                    "bad.conf": 'listen = ["127.0.0.1:%d"];\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                                'user = "root";\n' % (port, up.port)})
    for f in ("ok.conf", "bad.conf"):
        os.chmod(os.path.join(d, f), 0o644)

    def as_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    try:
        v = subprocess.run([SPLITDNS, "--version"], preexec_fn=as_nobody,
                           capture_output=True, text=True, timeout=10)
    except PermissionError:
        v = None
    if v is None or v.returncode != 0:
        return skip("nobody cannot run %s (a private build folder)" % SPLITDNS)
    p = subprocess.run([SPLITDNS, "-c", os.path.join(d, "bad.conf")], preexec_fn=as_nobody,
                       capture_output=True, text=True, timeout=10)
    eq(p.returncode, 1, "exit status as nobody with user = root")
    p2 = start([SPLITDNS, "-c", os.path.join(d, "ok.conf")], preexec_fn=as_nobody,
               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    q, r = wait_for(lambda: _try_query("www.example.org", port), lambda v: v is not None, 5,
                    "splitdns as nobody with user = nobody")
    p2.send_signal(signal.SIGTERM)
    p2.wait(10)
    eq(p2.returncode, 0, "exit status as nobody with user = nobody")
    assert re.search(r"(^|/)bad\.conf:3: ", p.stderr, re.M), \
        "the refusal of user = root is not reported as bad.conf:3: %r" % p.stderr


# ========================================================== defaults

@test
def t_user_default():
    """user: by default the daemon keeps the user it was started as"""
    with open("/proc/%d/status" % D_DEF.proc.pid) as f:
        uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    eq(set(uids), {str(os.getuid())}, "real/effective/saved uid")


@test
def t_zone_defaults():
    """zone defaults: ttl 300, not authoritative, ptr false; an origin's final dot is optional"""
    up.clear()
    q, r = query("host.def.example", port=P_DEF)
    eq(texts(r), ["host.def.example. A 198.18.0.5"])
    eq(r.answer[0].ttl, 300, "default zone ttl")
    assert r.flags & dns.flags.AA, "AA"
    q, r = query("tx.def.example", "TXT", port=P_DEF)
    eq(r.answer[0].ttl, 77, "a record's own ttl")
    q, r = query("nothere.def.example", port=P_DEF)
    eq(rcode(r), "NOERROR")
    assert up.saw("nothere.def.example"), "an unknown name of a non-authoritative zone is forwarded"
    q, r = query("5.0.18.198.in-addr.arpa", "PTR", port=P_DEF)
    assert up.saw("5.0.18.198.in-addr.arpa"), "ptr defaults to false: the PTR query went upstream"
    assert not r.answer, "no local PTR"


@test
def t_block_defaults():
    """block defaults: answer null (0.0.0.0, ::, NODATA), ttl 10, SOA localhost. nobody.invalid., AA"""
    for tcp in (False, True):
        q, r = query("ads.example.com", port=P_DEF, tcp=tcp)
        eq(texts(r), ["ads.example.com. A 0.0.0.0"])
        eq(r.answer[0].ttl, 10, "default block.ttl")
        assert r.flags & dns.flags.AA, "AA on a blocking answer"
        q, r = query("x.ads.example.com", "AAAA", port=P_DEF, tcp=tcp)
        eq(texts(r), ["x.ads.example.com. AAAA ::"])
        assert r.flags & dns.flags.AA, "AA on a blocking answer"
    q, r = query("ads.example.com", "MX", port=P_DEF)
    eq((rcode(r), r.answer), ("NOERROR", []), "NODATA for MX")
    assert r.flags & dns.flags.AA, "AA on a blocking NODATA"
    eq(len(r.authority), 1, "one SOA")
    soa = r.authority[0]
    eq(soa.name.to_text().lower(), "ads.example.com.", "SOA owner: the blocked name")
    eq((soa.rdtype, soa.ttl), (dns.rdatatype.SOA, 10), "SOA type and TTL")
    eq((soa[0].mname.to_text(), soa[0].rname.to_text(), soa[0].minimum),
       ("localhost.", "nobody.invalid.", 10), "SOA names and minimum")


@test
def t_upstream_timing_defaults():
    """upstream defaults: a reply 500 ms late is used; a silent upstream gives SERVFAIL within 2 s"""
    q, r = query("slow.example.net", port=P_DEF, timeout=5)
    eq(rcode(r), "NOERROR")
    assert texts(r), "the slow answer"
    t0 = time.monotonic()
    q, r = query("timeout.example.net", port=P_DEF, timeout=6, qid=2024)
    took = time.monotonic() - t0
    eq((rcode(r), r.id), ("SERVFAIL", 2024))
    assert 1.0 <= took <= 2.4, "SERVFAIL after %.2f s, want about timeout_ms x tries = 2 s" % took


@test
def t_access_default():
    """access.allow default: loopback clients are served (127.0.0.2, ::1)"""
    r = udp_from("host.def.example", "A", P_DEF, "127.0.0.2")
    eq(rcode(r), "NOERROR")
    eq(texts(r), ["host.def.example. A 198.18.0.5"])
    q, r = query("host.def.example", port=P_DEF, addr="::1")
    eq(rcode(r), "NOERROR")


@test
def t_access_prefixes():
    """access.allow: an address without a length is one host; an empty array refuses everyone"""
    d1 = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                'access: { allow = ["127.0.0.1", "::1"]; };\n' % up.port)
    d2 = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                'access: { allow = []; };\n' % up.port)
    try:
        eq(rcode(udp_from("www.example.org", "A", d1.port, "127.0.0.1")), "NOERROR", "127.0.0.1 allowed")
        eq(rcode(udp_from("www.example.org", "A", d1.port, "127.0.0.2")), "REFUSED", "127.0.0.2 not allowed")
        q, r = query("www.example.org", port=d1.port, addr="::1", tcp=True)
        eq(rcode(r), "NOERROR", "::1 allowed")
        q, r = query("www.example.org", port=d2.port, addr="127.0.0.1")
        eq(rcode(r), "REFUSED", "allow = [] from 127.0.0.1")
        try:  # over TCP an outsider's connection is closed at accept
            q, r = query("www.example.org", port=d2.port, addr="::1", tcp=True)
            raise AssertionError("allow = []: a TCP answer to ::1: %s" % rcode(r))
        except (EOFError, ConnectionError, OSError):
            pass
    finally:
        d1.stop()
        d2.stop()


PRIVATE = ["1.0.0.10.in-addr.arpa", "10.in-addr.arpa", "1.0.16.172.in-addr.arpa",
           "1.255.31.172.in-addr.arpa", "1.1.168.192.in-addr.arpa", "1.0.64.100.in-addr.arpa",
           "1.0.127.100.in-addr.arpa", "1.0.0.127.in-addr.arpa", "1.0.254.169.in-addr.arpa",
           "1.0.0.0.in-addr.arpa", "1.0.0.c.f.ip6.arpa", "1.0.0.d.f.ip6.arpa", "1.0.8.e.f.ip6.arpa",
           "1.0.b.e.f.ip6.arpa", "1." + "0." * 31 + "ip6.arpa", "home.arpa", "x.home.arpa", "x.local",
           "localhost", "x.localhost", "x.invalid", "x.test", "x.lan", "x.internal"]
PUBLIC = ["1.0.0.11.in-addr.arpa", "1.0.15.172.in-addr.arpa", "1.0.32.172.in-addr.arpa",
          "1.1.169.192.in-addr.arpa", "1.0.63.100.in-addr.arpa", "1.0.128.100.in-addr.arpa",
          "1.0.0.128.in-addr.arpa", "1.0.253.169.in-addr.arpa", "1.0.0.b.f.ip6.arpa",
          "1.0.0.e.f.ip6.arpa", "1.0.7.e.f.ip6.arpa", "1.0.c.e.f.ip6.arpa", "2." + "0." * 31 + "ip6.arpa",
          "x.internal.example", "x.lan.example", "local.example"]


@test
def t_private_local_default():
    """private_local default true: exactly the documented private names stay local (edges included)"""
    up.clear()
    problems = []
    for name in PRIVATE:
        for t in ("PTR", "A") if name.endswith("arpa") else ("A", "AAAA", "ANY", "MX"):
            q, r = query(name, t, port=P_DEF)
            if rcode(r) != "NXDOMAIN":
                problems.append("%s %s: %s, want NXDOMAIN" % (name, t, rcode(r)))
    for t in ("A", "AAAA", "ANY"):
        q, r = query("printer", t, port=P_DEF)
        if rcode(r) != "NXDOMAIN":
            problems.append("printer %s: %s" % (t, rcode(r)))
    time.sleep(0.1)
    leaked = sorted(set(q[2] for q in up.queries() if len(q) > 2))
    if leaked:
        problems.append("private names sent upstream: %s" % leaked)
    up.clear()
    for name in PUBLIC:
        query(name, "PTR" if name.endswith("arpa") else "A", port=P_DEF)
        if not up.saw(name):
            problems.append("%s: not forwarded, but it is not a private name" % name)
    check_all(problems)


REBIND = [  # (address, replaced by NXDOMAIN?)
    ("10.0.0.1", True), ("9.255.255.255", False), ("11.0.0.0", False),
    ("172.16.0.0", True), ("172.31.255.255", True), ("172.15.255.255", False), ("172.32.0.0", False),
    ("192.168.0.1", True), ("192.169.0.1", False), ("192.167.255.255", False),
    ("100.64.0.0", True), ("100.127.255.255", True), ("100.63.255.255", False), ("100.128.0.0", False),
    ("127.0.0.1", True), ("127.255.255.254", True), ("128.0.0.1", False),
    ("169.254.1.1", True), ("169.253.255.255", False), ("169.255.0.0", False),
    ("0.0.0.0", True), ("0.1.2.3", True), ("1.0.0.0", False),
    # ::2 is IPv4-compatible 0.0.0.2 (0.0.0.0/8); ::1.0.0.0 is public
    ("::", True), ("::1", True), ("::2", True), ("::1.0.0.0", False), ("::10.0.0.1", True),
    ("fc00::1", True), ("fdff:ffff::1", True),
    ("fbff::1", False), ("fe00::1", False), ("fe80::1", True), ("febf::1", True), ("fec0::1", True),
    ("feff::1", True),
    ("64:ff9b::c0a8:101", True), ("64:ff9b::808:808", False), ("64:ff9c::c0a8:101", False),
    ("::ffff:192.168.1.1", True), ("::ffff:10.1.2.3", True), ("::ffff:127.0.0.1", True),
    ("::ffff:8.8.8.8", False), ("2001:db8::1", False),
]


@test
def t_rebind_default():
    """rebind_protection default true: exactly the documented addresses give NXDOMAIN (edges included)"""
    problems = []
    for i, (addr, private) in enumerate(REBIND):
        rtype = "AAAA" if ":" in addr else "A"
        name = "rb%d.example.org." % i
        oracle.table[name] = answer(rtype, 300, addr)
        q, r = query(name, rtype, port=P_OR)
        got = rcode(r)
        if private and got != "NXDOMAIN":
            problems.append("%s: %s, want NXDOMAIN" % (addr, got))
        if not private and (got != "NOERROR" or not r.answer):
            problems.append("%s: %s %s, want the answer" % (addr, got, texts(r)))
    # one private address among public ones is enough; a CNAME in front too
    oracle.table["mixed.example.org."] = answer("A", 300, "198.51.100.1", "192.168.1.1")

    def cname_fn(q, r):
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "CNAME", "t.example.net."))
        r.answer.append(dns.rrset.from_text("t.example.net.", 300, "IN", "A", "10.1.1.1"))
    oracle.table["cn.example.org."] = cname_fn
    for name in ("mixed.example.org", "cn.example.org"):
        q, r = query(name, port=P_OR)
        if rcode(r) != "NXDOMAIN":
            problems.append("%s: %s, want NXDOMAIN" % (name, rcode(r)))
    check_all(problems)


@test
def t_cache_ttl_defaults():
    """cache defaults: TTLs capped at max_ttl 86400, 0 stays 0 (min_ttl 0) and is not kept"""
    oracle.table["big.ttl.example."] = answer("A", 100000, "198.51.100.9")
    q, r1 = query("big.ttl.example", port=P_OR)
    q, r2 = query("big.ttl.example", port=P_OR)
    eq(len(oracle.saw("big.ttl.example")), 1, "upstream queries for a cached answer")
    eq((r1.answer[0].ttl, r2.answer[0].ttl <= 86400), (86400, True), "TTL 100000 capped by max_ttl")
    oracle.table["zero.ttl.example."] = answer("A", 0, "198.51.100.10")
    q, r1 = query("zero.ttl.example", port=P_OR)
    q, r2 = query("zero.ttl.example", port=P_OR)
    eq((r1.answer[0].ttl, r2.answer[0].ttl), (0, 0), "TTL 0 (min_ttl 0)")
    eq(len(oracle.saw("zero.ttl.example")), 2, "upstream queries for a TTL-0 answer (kept 0 s)")


@test
def t_cache_negative_defaults():
    """cache: negative answers at most negative_ttl 300; none kept without a SOA"""
    oracle.table["nxbig.neg.example."] = negative(soa=(1000, 1000))
    for i in range(2):
        q, r = query("nxbig.neg.example", port=P_OR)
        eq(rcode(r), "NXDOMAIN")
        assert r.authority and r.authority[0].ttl <= 300, \
            "SOA TTL %s seen by the client, above negative_ttl 300" % [a.ttl for a in r.authority]
    eq(len(oracle.saw("nxbig.neg.example")), 1, "upstream queries (NXDOMAIN with SOA kept)")
    oracle.table["nxbare.neg.example."] = negative()
    oracle.table["nodatabare.neg.example."] = negative(rc=dns.rcode.NOERROR)
    for name, rc in (("nxbare.neg.example", "NXDOMAIN"), ("nodatabare.neg.example", "NOERROR")):
        for i in range(2):
            q, r = query(name, "AAAA", port=P_OR)
            eq(rcode(r), rc, name)
        eq(len(oracle.saw(name)), 2, "upstream queries for %s (no SOA: not kept)" % name)


@test
def t_cache_rd_key():
    """cache: queries with and without RD have entries of their own"""
    query("rd.key.example", port=P_OR)
    q, r = query("rd.key.example", port=P_OR, flags=0)
    assert not r.flags & dns.flags.RD, "RD copied from the query"
    seen = oracle.saw("rd.key.example")
    eq(len(seen), 2, "upstream queries")
    eq(sorted(e[3] for e in seen), [False, True], "RD bits the upstream saw")


@test
def t_source_ports():
    """upstream queries leave from a UDP port that changes at least every 256 queries (RFC 5452)"""
    with oracle.lock:
        start = len(oracle.log)
    for i in range(300):
        q, r = query("p%d.ports.example" % i, port=P_OR)
    with oracle.lock:
        ports = [e[2] for e in oracle.log[start:] if e[0].endswith(".ports.example.")]
    eq(len(ports), 300, "queries the upstream saw")
    run_len, longest = 1, 1
    for a, b in zip(ports, ports[1:]):
        run_len = run_len + 1 if a == b else 1
        longest = max(longest, run_len)
    assert longest <= 256, "one source port for %d queries in a row (ports %s)" % (longest, sorted(set(ports)))


@test
def t_switches_off():
    """private_local = false, rebind_protection = false, block.cname = false do what they say"""
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
               'private_local = false;\nrebind_protection = false;\n'
               'block: { domains = ["target.example.net"]; cname = false; };\n' % oracle.port)
    try:
        for name, t in (("x.lan", "A"), ("1.1.168.192.in-addr.arpa", "PTR"), ("printer", "A")):
            query(name, t, port=d.port)
            assert oracle.saw(name), "%s %s not forwarded with private_local = false" % (name, t)
        oracle.table["pv.example.org."] = answer("A", 300, "192.168.1.1")
        q, r = query("pv.example.org", port=d.port)
        eq(texts(r), ["pv.example.org. A 192.168.1.1"], "rebind_protection = false")

        def cname_fn(q, r):
            r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "CNAME", "target.example.net."))
            r.answer.append(dns.rrset.from_text("target.example.net.", 300, "IN", "A", "198.51.100.77"))
        oracle.table["alias.example.org."] = cname_fn
        q, r = query("alias.example.org", port=d.port)
        eq(texts(r), ["alias.example.org. CNAME target.example.net.", "target.example.net. A 198.51.100.77"],
           "block.cname = false")
        q, r = query("target.example.net", port=d.port)
        eq(texts(r), ["target.example.net. A 0.0.0.0"], "the name itself is still blocked")
    finally:
        d.stop()
    # and the default, block.cname = true, on the same reply
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
               'block: { domains = ["target.example.net"]; };\n' % oracle.port)
    try:
        q, r = query("alias.example.org", port=d.port)
        eq(texts(r), ["alias.example.org. A 0.0.0.0"], "block.cname default true")
    finally:
        d.stop()


@test
def t_edns_size_512():
    """edns_size = 512: no UDP reply above 512 octets, whatever the client offers"""
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\nedns_size = 512;\n' % up.port)
    try:
        q = dns.message.make_query("mid.example.net", "A", use_edns=0, payload=4096)
        wire = raw_udp(q.to_wire(), d.port)
        assert wire is not None, "no reply"
        r = dns.message.from_wire(wire)
        assert len(wire) <= 512 and r.flags & dns.flags.TC, "reply of %d octets, TC %s" % (
            len(wire), bool(r.flags & dns.flags.TC))
    finally:
        d.stop()


@test
def t_opt_every_reply():
    """a query with OPT gets our OPT back: edns_size (1232 by default), version 0 -- forwarded replies too"""
    problems = []
    for name, t in (("host.def.example", "A"), ("ads.example.com", "A"), ("printer", "A"),
                    ("www.example.org", "A"), ("nx.example.org", "A"), ("servfail.example.org", "A")):
        for tcp in (False, True):
            q, r = query(name, t, port=P_DEF, use_edns=0, payload=4000, tcp=tcp, timeout=4)
            if (r.edns, r.payload) != (0, 1232):
                problems.append("%s %s over %s (%s): EDNS version %d, UDP size %d; want 0, 1232"
                                % (name, t, "TCP" if tcp else "UDP", rcode(r), r.edns, r.payload))
    check_all(problems)


@test
def t_tcp_max_connections_default():
    """tcp.max_connections default 256: 256 connections are served, the 257th is closed at once"""
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n' % up.port)
    conns = []
    try:
        # 8 per client address: tcp.max_per_client (32) is not the limit
        for i in range(256):
            conns.append(tcp_connect(d.port, timeout=3,
                                     source="127.0.4.%d" % (i // 8 + 1)))
        time.sleep(0.3)
        extra = tcp_connect(d.port, timeout=3, source="127.0.4.100")
        conns.append(extra)
        try:
            data = extra.recv(16)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            data = None
        eq(data, b"", "the 257th connection closed at once")
        for s in (conns[0], conns[255]):
            m = dns.message.make_query("www.example.org", "A")
            tcp_send(s, m.to_wire())
            eq(dns.message.from_wire(tcp_recv(s)).id, m.id, "a reply on an open connection")
    finally:
        for s in conns:
            s.close()
        d.stop()


# ====================================================== zone answers

def chain(prefix, n):
    return ",\n".join('  { name = "%s%d"; type = "CNAME"; data = "%s"; }'
                      % (prefix, i, "%s%d" % (prefix, i + 1) if i < n else "end") for i in range(1, n + 1))


LONG_TXT = "w" + " word" * 60     # 301 octets, blanks included
ZLAN = r'''origin = "lan.test";
ttl = 300;
authoritative = true;
ptr = true;
records = (
%s,
%s,
  { name = "end";  type = "A";     data = "10.0.0.1"; },
  { name = "mix";  type = "A";     data = "10.0.0.2"; ttl = 100; },
  { name = "mix";  type = "A";     data = "10.0.0.3"; ttl = 50; },
  { name = "dup";  type = "A";     data = "10.0.0.4"; },
  { name = "dup";  type = "A";     data = "10.0.0.4"; },
  { name = "long"; type = "TXT";   data = "%s"; },
  { name = "esc";  type = "TXT";   data = "\"say\\\"hi\" \"a\\\\b\" \"\\065BC\""; },
  { name = "my\\.printer"; type = "A"; data = "10.0.0.5"; },
  { name = "x\\065y"; type = "A";  data = "10.0.0.6"; },
  { name = "host"; type = "A";     data = "192.168.7.7"; ttl = 123; },
  { name = "host2"; type = "A";    data = "192.168.7.7"; },
  { name = "solo"; type = "A";     data = "192.168.9.8"; ttl = 321; },
  { name = "solo6"; type = "AAAA"; data = "fd00::98"; ttl = 222; },
  { name = "@";    type = "MX";    data = "10 mail"; },
  { name = "@";    type = "NS";    data = "mail"; },
  { name = "mail"; type = "A";     data = "10.0.0.7"; },
  { name = "_s._tcp"; type = "SRV"; data = "0 5 22 mail"; },
  { name = "all";  type = "A";     data = "10.0.0.8"; },
  { name = "all";  type = "AAAA";  data = "fd00::8"; },
  { name = "all";  type = "TXT";   data = "t"; }
);
''' % (chain("c", 16), chain("d", 17), LONG_TXT)
ZREV = 'origin = "7.168.192.in-addr.arpa";\nrecords = ( { name = "7"; type = "PTR"; data = "other.example."; } );\n'
D_Z = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\nzones = ["lan.zone", "rev.zone"];\n'
             % up.port, zones={"lan.zone": ZLAN, "rev.zone": ZREV})
P_Z = D_Z.port


@test
def t_cname_16():
    """CNAME chains: 16 CNAME records are followed; a 17th gives SERVFAIL"""
    for tcp in (False, True):
        q, r = query("c1.lan.test", port=P_Z, tcp=tcp)
        eq(rcode(r), "NOERROR", "16 CNAMEs")
        eq(len(texts(r)), 17, "16 CNAMEs and the A record")
        assert "end.lan.test. A 10.0.0.1" in texts(r), texts(r)
        q, r = query("d1.lan.test", port=P_Z, tcp=tcp)
        eq(rcode(r), "SERVFAIL", "17 CNAMEs")
    q, r = query("c2.lan.test", port=P_Z)     # from the middle: 15
    eq(rcode(r), "NOERROR")


@test
def t_rrset_ttl_and_duplicates():
    """an RRset's TTL is the smallest of its records; a record written twice counts once"""
    q, r = query("mix.lan.test", port=P_Z)
    eq(texts(r), ["mix.lan.test. A 10.0.0.2", "mix.lan.test. A 10.0.0.3"])
    eq(r.answer[0].ttl, 50, "RRset TTL")
    q, r = query("dup.lan.test", port=P_Z)
    eq(texts(r), ["dup.lan.test. A 10.0.0.4"], "one record")


@test
def t_txt_strings():
    """TXT: unquoted data is one text split every 255 octets; \\" \\\\ \\DDD in quoted strings"""
    q, r = query("long.lan.test", "TXT", port=P_Z, tcp=True)
    eq([s.decode() for s in r.answer[0][0].strings], [LONG_TXT[:255], LONG_TXT[255:]], "strings")
    q, r = query("esc.lan.test", "TXT", port=P_Z)
    eq(list(r.answer[0][0].strings), [b'say"hi', b"a\\b", b"ABC"], "strings")


@test
def t_name_escapes():
    """names: \\. is a dot inside a label, \\DDD an octet"""
    q, r = query(dns.name.from_text("my\\.printer.lan.test"), port=P_Z)
    eq(texts(r), ["my\\.printer.lan.test. A 10.0.0.5"])
    eq(len(r.answer[0].name.labels), 4, "labels of the owner")
    q, r = query("xay.lan.test", port=P_Z)
    eq(texts(r), ["xay.lan.test. A 10.0.0.6"])
    q, r = query("my.printer.lan.test", port=P_Z)
    eq(rcode(r), "NXDOMAIN", "my.printer (two labels) does not exist")


@test
def t_ptr_rules():
    """ptr = true: the PTR has the TTL of the address records; a PTR in another zone file wins"""
    q, r = query("8.9.168.192.in-addr.arpa", "PTR", port=P_Z)
    eq(texts(r), ["8.9.168.192.in-addr.arpa. PTR solo.lan.test."])
    eq(r.answer[0].ttl, 321, "TTL of the A record")
    rev6 = ".".join(reversed("fd00" + "0" * 26 + "98")) + ".ip6.arpa"
    q, r = query(rev6, "PTR", port=P_Z)
    eq(texts(r), [rev6 + ". PTR solo6.lan.test."])
    eq(r.answer[0].ttl, 222, "TTL of the AAAA record")
    q, r = query("7.7.168.192.in-addr.arpa", "PTR", port=P_Z)
    eq(texts(r), ["7.7.168.192.in-addr.arpa. PTR other.example."], "the PTR record of rev.zone wins")


@test
def t_any_and_no_additional():
    """ANY gets every record of the name; local replies have no additional section but OPT"""
    q, r = query("all.lan.test", "ANY", port=P_Z)
    eq(texts(r), ['all.lan.test. A 10.0.0.8', 'all.lan.test. AAAA fd00::8', 'all.lan.test. TXT "t"'])
    for name, t in (("lan.test", "MX"), ("lan.test", "NS"), ("_s._tcp.lan.test", "SRV"), ("c1.lan.test", "A")):
        for edns in (None, 0):
            q, r = query(name, t, port=P_Z, use_edns=edns)
            assert r.answer, "%s %s answered" % (name, t)
            eq(r.additional, [], "additional section of %s %s (EDNS %s)" % (name, t, edns))


# ============================================================ signals

@test
def t_sigterm_inflight_servfail():
    """SIGTERM: queries in flight are still answered, here SERVFAIL at their deadline (UDP and TCP), then exit status 0"""
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 500; tries = 2; };\n'
               % up.port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = None
    try:
        q1 = dns.message.make_query("timeout.example.net", "A")
        q1.id = 4242
        u.sendto(q1.to_wire(), ("127.0.0.1", d.port))
        t = tcp_connect(d.port, "::1")
        q2 = dns.message.make_query("Timeout.Example.net", "AAAA")
        q2.id = 4343
        tcp_send(t, q2.to_wire())
        time.sleep(0.3)
        d.signal(signal.SIGTERM)
        u.settimeout(3)
        r1 = dns.message.from_wire(u.recvfrom(4096)[0])
        t.settimeout(3)
        r2 = dns.message.from_wire(tcp_recv(t))
        eq((r1.id, rcode(r1)), (4242, "SERVFAIL"), "UDP reply")
        eq((r2.id, rcode(r2), r2.question[0].name.to_text()), (4343, "SERVFAIL", "Timeout.Example.net."),
           "TCP reply")
    finally:
        u.close()
        if t:
            t.close()
        d.stop()


@test
def t_sighup_listen_tcp_lists():
    """SIGHUP: listen/tcp changes warn and wait for a restart, -l stays, new list files are read"""
    p1, p2, p3 = free_port(), free_port(), free_port()
    conf = ('listen = ["127.0.0.1:%d"];\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
            'tcp: { max_connections = %d; };\nblock: { lists = ["lists/*.txt"]; };\n')
    d = Daemon(conf % (p2, up.port, 10), files={"lists/a.txt": "one.example\n"},
               args=["-l", "127.0.0.1:%d" % p1, "-l", "[::1]:%d" % p1])
    try:
        before = d.stderr()
        m1 = re.search(r"a\.txt: 1 lines?, 1 names?", before)
        m2 = re.search(r"blocking 1 names?", before)
        m3 = re.search(r"ready: ", before)
        assert m1 and m2 and m3 and m1.start() < m2.start() < m3.start(), \
            "list line, then the blocked names line, then ready: %r" % before
        q, r = query("one.example", port=p1)
        eq(texts(r), ["one.example. A 0.0.0.0"])
        mark = len(before)
        d.write("splitdns.conf", conf % (p3, up.port, 11))
        d.write("lists/b.txt", "two.example\n")
        d.signal(signal.SIGHUP)
        wait_for(d.stderr, lambda s: "reloaded" in s[mark:], 5, "the reload")
        new = d.stderr()[mark:]
        assert re.search(r"listen|tcp", new), "no warning about listen/tcp: %r" % new
        assert re.search(r"a\.txt: 1 lines?, 1 names?", new) and re.search(r"b\.txt: 1 lines?", new), \
            "blocklist lines not logged again: %r" % new
        assert re.search(r"blocking 2 names", new), "no summary line with 2 names: %r" % new
        for addr, tcp in (("127.0.0.1", False), ("::1", True)):
            q, r = query("two.example", port=p1, addr=addr, tcp=tcp)
            eq(texts(r), ["two.example. A 0.0.0.0"], "new list file matched by the pattern")
        for p in (p2, p3):
            eq(raw_udp(dns.message.make_query("one.example", "A").to_wire(), p, timeout=0.3), None,
               "reply on the listen port %d" % p)
        q, r = query("one.example", port=p1)
        mark = len(d.stderr())
        d.signal(signal.SIGUSR1)
        text = wait_for(d.stderr, lambda s: re.search(r"b\.txt: .*hits", s[mark:]), 3, "the counters")[mark:]
        m = re.search(r"a\.txt: .*?(\d+) hits", text)
        assert m and int(m.group(1)) == 2, "hits of a.txt kept across the reload (want 2): %r" % text
    finally:
        d.stop()


STAT_KEYS = ["queries", "local", "blocked", "forwarded", "upstream answers", "servfail", "refused",
             "private", "rebind", "malformed", "dropped", "truncated"]


@test
def t_sigusr1_counters():
    """SIGUSR1: one counters line, a line per blocklist source, a cache line"""
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 300; tries = 1; };\n'
               'zones = ["z.zone"];\nblock: { domains = ["ads.example.com"]; allow = ["ok.ads.example.com"]; };\n'
               'forward = ( { domain = "secret.example"; refuse = true; } );\n' % up.port,
               zones={"z.zone": 'origin = "lan.test";\nrecords = ( { name = "a"; type = "A"; data = "10.0.0.1"; } );\n'})
    try:
        P = d.port
        for name, t, kw in (("a.lan.test", "A", {}), ("a.lan.test", "A", {"tcp": True}),
                            ("ads.example.com", "A", {}), ("www.example.org", "A", {}),
                            ("www.example.org", "A", {}), ("servfail.example.org", "A", {}),
                            ("x.secret.example", "A", {}), ("printer", "A", {}),
                            ("private.example.org", "A", {}), ("big.example.org", "TXT", {})):
            query(name, t, port=P, timeout=3, **kw)
        raw_udp(b"\x12\x34\x01", P, timeout=0.2)                                  # 3 octets
        reply = dns.message.make_query("x.example", "A")
        reply.flags |= dns.flags.QR
        raw_udp(reply.to_wire(), P, timeout=0.2)                                  # QR set
        raw_udp(struct.pack("!HHHHHH", 77, 0x0100, 0, 0, 0, 0), P, timeout=1)   # no question
        mark = len(d.stderr())
        d.signal(signal.SIGUSR1)
        text = wait_for(d.stderr, lambda s: len(s[mark:].splitlines()) >= 4 and s.endswith("\n"), 3,
                        "the counters")[mark:]
        m = re.search(r"^.*(queries \d+.*)$", text, re.M)
        assert m, "no counters line: %r" % text
        stats = dict((k.strip(), int(v)) for k, v in re.findall(r"([a-z][a-z ]*?) (\d+)(?:,|$)", m.group(1)))
        missing = [k for k in STAT_KEYS if k not in stats]
        assert not missing, "counters missing %s: %r" % (missing, m.group(0))
        want = {"local": 2, "blocked": 1, "refused": 1, "private": 1, "rebind": 1, "truncated": 1, "servfail": 1}
        eq(dict((k, stats[k]) for k in want), want, "counters")
        assert stats["queries"] >= 10, stats
        assert stats["malformed"] + stats["dropped"] >= 3, stats
        for src in ("block.domains", "block.allow"):
            assert re.search(r"%s: .*\bhits?\b" % re.escape(src), text), "no line for %s: %r" % (src, text)
        m = re.search(r"^(?!.*queries \d).*cache.*$", text, re.M)
        assert m, "no cache line: %r" % text
        for word in ("entries", "bytes", "hits", "misses", "stored", "evicted"):
            assert word in m.group(0), "cache line lacks %s: %r" % (word, m.group(0))
        hits = re.search(r"(\d+) hits", m.group(0))
        assert hits and int(hits.group(1)) >= 1, "cache hits: %r" % m.group(0)
        bad = [l for l in d.stderr().splitlines() if not l.startswith("splitdns:")]
        eq(bad, [], "foreground log lines not starting with 'splitdns:'")
    finally:
        d.stop()


# ====================================================== -d, pid files

def _free_udp_tcp(port):
    try:
        for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, typ)
            try:
                s.bind(("127.0.0.1", port))
            finally:
                s.close()
        return True
    except OSError:
        return False


@test
def t_detach_pidfile():
    """-d -p FILE: exit 0, daemon in /, answers; the pid file is removed on a clean exit"""
    d = tmpdir()
    port = free_port()
    _needles.append(d)
    write_files(d, {"splitdns.conf": 'listen = ["127.0.0.1:%d"];\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                                     % (port, up.port)})
    pidfile = os.path.join(d, "run.pid")
    p = subprocess.run([SPLITDNS, "-d", "-p", pidfile, "-c", os.path.join(d, "splitdns.conf")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, "exit status of the command (stderr %r)" % p.stderr)
    text = wait_for(lambda: open(pidfile).read() if os.path.exists(pidfile) else "",
                    lambda s: s.endswith("\n"), 5, "the pid file")
    pid = int(text)
    try:
        eq(os.readlink("/proc/%d/cwd" % pid), "/", "working directory of the daemon")
        q, r = wait_for(lambda: _try_query("www.example.org", port), lambda v: v is not None, 5, "an answer")
        eq(rcode(r), "NOERROR")
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: os.path.exists("/proc/%d" % pid), lambda v: not v, 5, "the daemon to exit")
    assert not os.path.exists(pidfile), "pid file left after a clean exit"


@test
def t_detach_errors():
    """-d: config and bind errors still go to stderr with exit 1; an unwritable pid file ends the daemon"""
    d = tmpdir()
    _needles.append(d)
    port = free_port()
    write_files(d, {"bad.conf": L1 + U2 + "frobnicate = 1;\n",
                    "ok.conf": 'listen = ["127.0.0.1:%d"];\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                               % (port, up.port)})
    p = subprocess.run([SPLITDNS, "-d", "-p", os.path.join(d, "x.pid"), "-c", os.path.join(d, "bad.conf")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    eq(p.returncode, 1, "exit status with a config error")
    assert re.search(r"(^|/)bad\.conf:3: ", p.stderr, re.M), "stderr: %r" % p.stderr
    hold = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hold.bind(("127.0.0.1", port))
    try:
        p = subprocess.run([SPLITDNS, "-d", "-p", os.path.join(d, "x.pid"), "-c", os.path.join(d, "ok.conf")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    finally:
        hold.close()
    eq(p.returncode, 1, "exit status with the port taken")
    assert str(port) in p.stderr, "stderr: %r" % p.stderr
    p = subprocess.run([SPLITDNS, "-d", "-p", os.path.join(d, "no", "such", "dir.pid"),
                        "-c", os.path.join(d, "ok.conf")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, "the command exits 0 once detached")
    wait_for(lambda: _pids_with(d), lambda v: not v, 5, "the daemon without a pid file to exit")
    assert _free_udp_tcp(port), "port %d still bound" % port


# ========================================= namespaces: port 53, /etc, /run

class Netns:
    """A holder process in new network and mount namespaces, lo up; optionally
    /etc/resolv.conf bound to a file of ours and /run on a tmpfs."""

    def __init__(self, resolv=None, tmpfs_run=False):
        steps = ["ip link set lo up"]
        if resolv:
            steps.append("mount --bind %s /etc/resolv.conf" % shlex.quote(resolv))
        if tmpfs_run:
            steps.append("mount -t tmpfs tmpfs /run")
        self.proc = start(["unshare", "-n", "-m", "sh", "-c", " && ".join(steps + ["echo ready", "exec sleep 120"])],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError("namespace setup failed: %r" % self.proc.stderr.read(500))
        self.pid = self.proc.pid

    def argv(self, argv):
        return ["nsenter", "-t", str(self.pid), "-n", "-m"] + list(argv)

    def dig(self, *args):
        p = subprocess.run(self.argv(["dig", "+time=2", "+tries=1"] + list(args)),
                           capture_output=True, text=True, timeout=10)
        return p.stdout

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def ns_daemon(ns, conf, args=()):
    errpath = conf + ".stderr"
    p = start(ns.argv([SPLITDNS, "-c", conf] + list(args)), stdout=subprocess.DEVNULL, stderr=open(errpath, "w"))

    def err():
        with open(errpath) as f:
            return f.read()
    wait_for(lambda: (p.poll(), err()), lambda v: v[0] is not None or "ready" in v[1], 5, "ready")
    if p.poll() is not None:
        raise AssertionError("splitdns exited %d: %s" % (p.returncode, err()))
    return p, err


def stop_proc(p, what):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("%s did not exit on SIGTERM" % what)
    eq(p.returncode, 0, "exit status of %s" % what)


@test
def t_listen_default_live():
    """listen default: UDP and TCP on 127.0.0.1:53 and [::1]:53 (in a network namespace)"""
    if not HAVE_NS or not DIG:
        return skip("needs root, unshare, nsenter and dig")
    d = tmpdir()
    write_files(d, {"splitdns.conf": 'upstream: { servers = ["192.0.2.1"]; };\nzones = ["z.zone"];\n',
                    "z.zone": 'origin = "lan.test";\nrecords = ( { name = "a"; type = "A"; data = "10.0.0.1"; } );\n'})
    ns = Netns()
    try:
        p, err = ns_daemon(ns, os.path.join(d, "splitdns.conf"))
        assert re.search(r"ready: listening on 127\.0\.0\.1:53, \[::1\]:53;", err()), err()
        for args in (["@127.0.0.1"], ["@::1"], ["@127.0.0.1", "+tcp"], ["@::1", "+tcp"]):
            eq(ns.dig(*(args + ["+short", "a.lan.test"])).strip(), "10.0.0.1", " ".join(args))
        stop_proc(p, "splitdns")
    finally:
        ns.stop()


@test
def t_listen_wildcard():
    """listen 0.0.0.0 and ::: every address of the host; replies leave from the address asked"""
    if not HAVE_NS or not DIG:
        return skip("needs root, unshare, nsenter and dig")
    d = tmpdir()
    write_files(d, {"splitdns.conf": 'listen = ["0.0.0.0:5300", "[::]:5300"];\n'
                                     'upstream: { servers = ["192.0.2.1"]; };\nzones = ["z.zone"];\n'
                                     'access: { allow = ["0.0.0.0/0", "::/0"]; };\n',
                    "z.zone": 'origin = "lan.test";\nrecords = ( { name = "a"; type = "A"; data = "10.0.0.1"; } );\n'})
    ns = Netns()
    try:
        for a in ("192.0.2.99/32", "fd00::99/128"):
            subprocess.run(ns.argv(["ip", "addr", "add", a, "dev", "lo"]), check=True, timeout=10)
        p, err = ns_daemon(ns, os.path.join(d, "splitdns.conf"))
        for addr in ("127.0.0.1", "127.0.0.2", "192.0.2.99", "::1", "fd00::99"):
            for tcp in ([], ["+tcp"]):
                out = ns.dig(*(["@" + addr, "-p", "5300", "+short"] + tcp + ["a.lan.test"]))
                eq(out.strip(), "10.0.0.1", "answer asked of %s %s (dig ignores replies from elsewhere)"
                   % (addr, tcp))
        stop_proc(p, "splitdns")
    finally:
        ns.stop()


@test
def t_resolv_conf_upstreams():
    """no upstream.servers: /etc/resolv.conf's nameservers (%scope skipped), read again on SIGHUP"""
    if not HAVE_NS or not DIG:
        return skip("needs root, unshare, nsenter and dig")
    d = tmpdir()
    resolv = os.path.join(d, "resolv.conf")
    write_files(d, {"resolv.conf": "# test\nsearch example.org\nnameserver fe80::1%lo\nnameserver 127.0.0.1\n",
                    "splitdns.conf": 'listen = ["127.0.0.1:5300", "[::1]:5300"];\n'})
    ns = Netns(resolv=resolv)
    try:
        ups = []
        for addr in ("127.0.0.1", "::1"):
            log = os.path.join(d, "up-%s.log" % addr.replace(":", "_"))
            open(log, "w").close()
            u = start(ns.argv([PYTHON, os.path.join(SRCDIR, "upstream.py"), "--port", "53", "--addr", addr,
                               "--log", log]), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert b"ready" in u.stdout.readline(), "upstream on %s:53" % addr
            ups.append((u, log))

        def saw(i, name):
            with open(ups[i][1]) as f:
                return name + "." in f.read()

        p, err = ns_daemon(ns, os.path.join(d, "splitdns.conf"))
        assert re.search(r"ready: .*; 1 upstream servers \(from /etc/resolv\.conf\)", err()), err()
        out = ns.dig("@127.0.0.1", "-p", "5300", "+short", "one.example.org")
        assert out.startswith("198.51.100."), out
        assert saw(0, "one.example.org") and not saw(1, "one.example.org"), "asked 127.0.0.1:53 only"
        with open(resolv, "w") as f:           # same inode: the bind mount sees it
            f.write("nameserver ::1\n")
        mark = len(err())
        p.send_signal(signal.SIGHUP)
        wait_for(err, lambda s: "reloaded" in s[mark:], 5, "the reload")
        out = ns.dig("@127.0.0.1", "-p", "5300", "+short", "two.example.org")
        assert out.startswith("198.51.100."), out
        assert saw(1, "two.example.org") and not saw(0, "two.example.org"), "asked [::1]:53 after SIGHUP"
        # rebinding protection applies to them (they are the default upstreams)
        eq(digparse(ns.dig("@127.0.0.1", "-p", "5300", "private.example.org"))["status"], "NXDOMAIN",
           "private address from a resolv.conf upstream")
        stop_proc(p, "splitdns")
        for u, log in ups:
            u.terminate()
            u.wait(5)

        # errors without a line: nothing usable, or a loop through resolv.conf
        conf = os.path.join(d, "splitdns.conf")
        for text, what in (("nameserver fe80::1%lo\n", "only a scoped link-local nameserver"),
                           ("# none\n", "no nameserver"),
                           ("nameserver 127.0.0.1\n", "a nameserver equal to the listen address")):
            with open(resolv, "w") as f:
                f.write(text)
            with open(conf, "w") as f:
                f.write('listen = ["127.0.0.1:53"];\n')
            c = subprocess.run(ns.argv([SPLITDNS, "-t", "-c", conf]), capture_output=True, text=True, timeout=10)
            eq(c.returncode, 1, "exit status with %s" % what)
            assert c.stderr.startswith(conf + ": ") or ("splitdns: " + conf + ": ") in c.stderr, \
                "%s: not 'file: message': %r" % (what, c.stderr)
            if "equal" in what:
                assert "loop" in c.stderr, c.stderr
    finally:
        ns.stop()


@test
def t_default_pidfile():
    """-d without -p writes /run/splitdns.pid and removes it on SIGTERM (private /run)"""
    if not HAVE_NS:
        return skip("needs root, unshare and nsenter")
    d = tmpdir()
    _needles.append(d)
    write_files(d, {"splitdns.conf": 'listen = ["127.0.0.1:5300"];\nupstream: { servers = ["192.0.2.1"]; };\n'
                                     'zones = ["z.zone"];\n',
                    "z.zone": 'origin = "lan.test";\nrecords = ( { name = "a"; type = "A"; data = "10.0.0.1"; } );\n'})
    ns = Netns(tmpfs_run=True)
    try:
        p = subprocess.run(ns.argv([SPLITDNS, "-d", "-c", os.path.join(d, "splitdns.conf")]),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
        pidfile = "/proc/%d/root/run/splitdns.pid" % ns.pid
        text = wait_for(lambda: open(pidfile).read() if os.path.exists(pidfile) else "",
                        lambda s: s.endswith("\n"), 5, "/run/splitdns.pid")
        pid = int(text)
        eq(_pids_with(d), [pid], "the pid in /run/splitdns.pid")
        eq(ns.dig("@127.0.0.1", "-p", "5300", "+short", "a.lan.test").strip() if DIG else "10.0.0.1",
           "10.0.0.1", "answer of the detached daemon")
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: os.path.exists("/proc/%d" % pid), lambda v: not v, 5, "the daemon to exit")
        assert not os.path.exists(pidfile), "/run/splitdns.pid left after SIGTERM"
    finally:
        ns.stop()


# ============================================================ EXAMPLES

@test
def t_examples_8_check_explain():
    """splitdns(8) EXAMPLES: -t and --explain www.home.lab on the shipped files, output as shown"""
    blocks = man_blocks(man_section(MAN8, "EXAMPLES"))
    steps = transcript(blocks[0], "$ ")
    eq([c.split()[0] for c, _ in steps], ["splitdns", "splitdns"], "commands of the first example")
    d = tmpdir()
    for f in ("splitdns.conf", "home.zone"):
        shutil.copy(os.path.join(TOP, "etc", f), d)
    for cmd, want in steps:
        argv = shlex.split(cmd.replace("/etc/splitdns", d))
        p = subprocess.run(resolv_argv([SPLITDNS] + argv[1:]), capture_output=True, text=True, timeout=10)
        eq(p.returncode, 0, "exit status of %s (stderr %r)" % (cmd, p.stderr))
        eq(p.stdout.splitlines(), [w.replace("/etc/splitdns", d) for w in want], cmd)


@test
def t_examples_8_foreground():
    """splitdns(8) EXAMPLES: -v -c etc/splitdns.conf -l ... -l ...; both digs answered with aa, logged"""
    if not DIG:
        return skip("needs dig")
    block = man_blocks(man_section(MAN8, "EXAMPLES"))[1]
    steps = [c for c, _ in transcript(block, "$ ")]
    assert steps[0].startswith("splitdns ") and "5300" in steps[0], steps
    port = free_port()
    argv = shlex.split(steps[0].replace("5300", str(port)))
    errpath = os.path.join(tmpdir(), "stderr")
    p = start(resolv_argv([SPLITDNS] + argv[1:]), cwd=TOP, stdout=subprocess.DEVNULL, stderr=open(errpath, "w"))

    def err():
        with open(errpath) as f:
            return f.read()
    wait_for(lambda: (p.poll(), err()), lambda v: v[0] is not None or "ready" in v[1], 5, "ready")
    assert p.poll() is None, "splitdns exited: %s" % err()
    try:
        m = re.search(r"^splitdns: splitdns \S+ ready: listening on 127\.0\.0\.1:%d, \[::1\]:%d; \d+ worker threads?; 15 local names; "
                      r"(\d+) upstream servers \(from /etc/resolv\.conf\)$" % (port, port), err(), re.M)
        assert m, "ready line unlike splitdns(8) LOGGING: %r" % err()
        if HAVE_NS:
            eq(m.group(1), "1", "upstream servers of our resolv.conf")
        want = {"nas.home.lab": "nas.home.lab. 300 IN A 192.168.1.10",
                "foo.k8s.home.lab": "foo.k8s.home.lab. 300 IN A 192.168.1.20"}
        for cmd in steps[1:]:
            args = shlex.split(cmd.replace("5300", str(port)))
            assert args[0] == "dig", cmd
            out = subprocess.run(args + ["+time=2", "+tries=1"], capture_output=True, text=True, timeout=10).stdout
            res = digparse(out)
            name = args[-1]
            eq((res["status"], "aa" in res["flags"], res["ANSWER"]), ("NOERROR", True, [want[name]]), cmd)
        log = err()
        assert re.search(r"udp 127\.0\.0\.1\S* nas\.home\.lab\.? .*(A\b|type 1\b).*\S", log), \
            "-v line for the UDP query: %r" % log
        assert re.search(r"tcp ::1\S* foo\.k8s\.home\.lab\.? .*(A\b|type 1\b).*\S", log), \
            "-v line for the TCP query: %r" % log
    finally:
        stop_proc(p, "splitdns")


def examples5():
    sec = man_section(MAN5, "EXAMPLES")
    names = re.findall(r"^\.I (/etc/splitdns/\S+)\s*$", sec, re.M)
    blocks = man_blocks(sec)
    eq(names, ["/etc/splitdns/splitdns.conf", "/etc/splitdns/home.zone", "/etc/splitdns/example.net.zone"],
       "files of splitdns.conf(5) EXAMPLES")
    files = dict((os.path.basename(n), b + "\n") for n, b in zip(names, blocks))
    dig_block = [b for b in blocks if "$ dig" in b]
    check_block = [b for b in blocks if "# splitdns -t" in b]
    eq((len(dig_block), len(check_block)), (1, 1), "dig and check blocks")
    # a list that names ads.example.com, and the one allowed name
    files["blocklists/ads.txt"] = "0.0.0.0 ads.example.com\n||cdn.example.com^\n"
    return files, dig_block[0], check_block[0]


@test
def t_examples_5_check():
    """splitdns.conf(5) EXAMPLES: the files as written pass -t with the output shown"""
    files, _, check = examples5()
    d = tmpdir()
    write_files(d, files)
    steps = transcript(check, "# ")
    cmd, want = steps[0]
    argv = shlex.split(cmd.replace("/etc/splitdns", d))
    p = subprocess.run([SPLITDNS] + argv[1:], capture_output=True, text=True, timeout=10)
    eq((p.returncode, p.stdout.splitlines()), (0, [w.replace("/etc/splitdns", d) for w in want]),
       "%s (stderr %r)" % (cmd, p.stderr))


def _example_daemon():
    files, digs, _ = examples5()
    conf = files["splitdns.conf"]
    subs = [(r'^listen = \[.*\];$', 'listen = @LISTEN@;'),
            (r'"192\.168\.1\.1"', '"127.0.0.1:%d"' % up.port),
            (r'"9\.9\.9\.9"', '"[::1]:%d"' % up.port),
            (r'"10\.1\.0\.53"', '"127.0.0.1:%d"' % upB.port)]
    for pat, rep in subs:
        conf, n = re.subn(pat, rep, conf, flags=re.M)
        eq(n, 1, "replacements of %s in the example" % pat)
    del files["splitdns.conf"]
    return Daemon(conf, files=files), digs


@test
def t_examples_5_dig():
    """splitdns.conf(5) EXAMPLES: every dig result shown (upstreams replaced by the test upstream)"""
    if not DIG:
        return skip("needs dig")
    d, digs = _example_daemon()
    try:
        problems = []
        for cmd, want in transcript(digs, "$ "):
            cmd, _, comment = cmd.partition("#")
            args = shlex.split(cmd)
            assert args[0] == "dig", cmd
            up.clear()
            upB.clear()
            out = subprocess.run(dig_argv(d.port, args[1:]), capture_output=True, text=True, timeout=10).stdout
            res = digparse(out)
            key = " ".join(args[1:])
            name = [a for a in args[1:] if not a.startswith(("+", "-"))]
            try:
                if want:
                    eq(out.splitlines(), want, "output")
                elif key == "nas.home.lab MX":
                    eq((res["status"], res["ANSWER"]), ("NOERROR", []), "NODATA")
                    assert [a for a in res["AUTHORITY"] if " SOA " in a], "no SOA in authority"
                elif key == "printer.home.lab":
                    eq(res["status"], "NXDOMAIN")
                    assert not up.saw("printer.home.lab") and not upB.saw("printer.home.lab"), "left the host"
                elif key == "-x 192.168.1.99":
                    eq((res["status"], "aa" in res["flags"]), ("NXDOMAIN", True))
                    assert [a for a in res["AUTHORITY"] if a.startswith("1.168.192.in-addr.arpa.") and " SOA " in a], \
                        "SOA of the reverse zone: %r" % res["AUTHORITY"]
                elif key == "intranet.corp.example":
                    eq(res["status"], "NOERROR")
                    assert upB.saw("intranet.corp.example") and not up.saw("intranet.corp.example"), \
                        "not asked of the corp.example server"
                elif key == "db.internal.corp.example":
                    eq(res["status"], "REFUSED")
                    assert not upB.saw(name[0]) and not up.saw(name[0]), "sent upstream"
                elif key == "git.example.net":
                    eq((res["status"], res["ANSWER"], "aa" in res["flags"]),
                       ("NOERROR", ["git.example.net. 300 IN A 192.168.1.30"], True))
                    assert not up.saw("git.example.net"), "forwarded"
                elif key == "www.example.net":
                    eq(res["status"], "NOERROR")
                    assert res["ANSWER"] and "aa" not in res["flags"], out
                    assert up.saw("www.example.net") and not upB.saw("www.example.net"), "not forwarded upstream"
                else:
                    raise AssertionError("no check written for this example")
            except AssertionError as e:
                problems.append("dig %s: %s" % (key, e))
        check_all(problems)
    finally:
        d.stop()


@test
def t_examples_5_prose():
    """splitdns.conf(5) EXAMPLES prose: plex.direct may be private, cdn.example.com is allowed"""
    d, _ = _example_daemon()
    try:
        q, r = query("private.plex.direct", port=d.port)
        eq(texts(r), ["private.plex.direct. A 192.168.1.1"], "rebind_ok")
        q, r = query("private.example.org", port=d.port)
        eq(rcode(r), "NXDOMAIN", "rebinding protection elsewhere")
        q, r = query("cdn.example.com", port=d.port)
        assert texts(r) and texts(r) != ["cdn.example.com. A 0.0.0.0"], "allowed: %s" % texts(r)
        q, r = query("x.ads.example.com", port=d.port)
        eq(texts(r), ["x.ads.example.com. A 0.0.0.0"], "names below a listed name")
        q, r = query("corp.example", "SOA", port=d.port)
        assert upB.saw("corp.example"), "the rule covers its own domain"
    finally:
        d.stop()


@test
def t_files_unit():
    """FILES / EXAMPLES: the shipped unit runs -t first, in the foreground, reloads with SIGHUP, dynamic user"""
    with open(os.path.join(TOP, "etc", "splitdns.service.in")) as f:
        unit = f.read()
    pre = re.search(r"^ExecStartPre=(.*)$", unit, re.M)
    st = re.search(r"^ExecStart=(.*)$", unit, re.M)
    rel = re.search(r"^ExecReload=(.*)$", unit, re.M)
    assert pre and re.search(r"\bsplitdns\b.* -t\b", pre.group(1)), "ExecStartPre: %r" % (pre and pre.group(0))
    assert st and " -d" not in st.group(1), "ExecStart: %r" % (st and st.group(0))
    assert rel and "HUP" in rel.group(1), "ExecReload: %r" % (rel and rel.group(0))
    assert re.search(r"^DynamicUser=(yes|true)$", unit, re.M), "DynamicUser"
    assert re.search(r"^AmbientCapabilities=CAP_NET_BIND_SERVICE$", unit, re.M), "bind capability"
    with open(os.path.join(TOP, "etc", "splitdns.conf")) as f:
        conf = f.read()
    assert re.search(r'^zones = \["home\.zone"\];', conf, re.M), "the shipped config names home.zone"
    assert re.search(r'^listen = \["127\.0\.0\.1:53", "\[::1\]:53"\];', conf, re.M), "shipped listen"


CTL8 = os.path.join(TOP, "man", "splitdnsctl.8")
SPLITDNSCTL = os.environ.get("SPLITDNSCTL") or os.path.join(
    os.path.dirname(SPLITDNS), "splitdnsctl")


@test
def t_splitdnsctl_page():
    """splitdnsctl(8): its COMMANDS are --help's, its default socket, exit statuses 2 and 3; the example config and unit agree"""
    cmds = re.findall(r"^\.TP\n\.BI? (\w+)", man_section(CTL8, "COMMANDS"), re.M)
    p = subprocess.run([SPLITDNSCTL, "--help"], capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, "--help")
    helped = re.findall(r"^  ([a-z]+)\b", p.stdout.split("commands:", 1)[1], re.M)
    eq(sorted(cmds), sorted(helped), "commands")
    files = man_section(CTL8, "FILES")
    assert "/run/splitdns/control" in files and "(default /run/splitdns/control)" in p.stdout
    codes = re.findall(r"^\.TP\n(\d)\n", man_section(CTL8, "EXIT STATUS"), re.M)
    eq(codes, ["0", "1", "2", "3"], "documented exit statuses")
    eq(subprocess.run([SPLITDNSCTL], capture_output=True, timeout=10).returncode, 2, "usage")
    eq(subprocess.run([SPLITDNSCTL, "-s", "/nonexistent/control", "status"],
                      capture_output=True, timeout=10).returncode, 3, "no answer")
    with open(os.path.join(TOP, "etc", "splitdns.service.in")) as f:
        assert re.search(r"^RuntimeDirectory=splitdns$", f.read(), re.M), "the unit makes /run/splitdns"
    with open(os.path.join(TOP, "etc", "splitdns.conf")) as f:
        assert re.search(r'^control = "/run/splitdns/control";$', f.read(), re.M), "the example enables it"


# =========================================================== the end

@test
def t_idle_timeout_default():
    """tcp.idle_timeout_ms default 10000: a silent connection is closed after about 10 s"""
    IDLE_THREAD.join(25)
    assert "error" not in IDLE, "connect: %s" % IDLE.get("error")
    assert "after" in IDLE, "still open after 25 s"
    eq(IDLE["data"], b"", "connection closed by the server")
    assert 9.5 <= IDLE["after"] <= 12.0, "closed after %.2f s" % IDLE["after"]


@test
def t_stop():
    """SIGTERM: every daemon exits 0"""
    for d in (D_DEF, D_OR, D_Z):
        d.stop()
    oracle.stop()
    up.stop()
    upB.stop()


done()
