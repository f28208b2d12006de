#!/usr/bin/python3
"""t_querylog.py - the query log (log_queries, splitdns.conf(5)) against the
running daemon (TAP).

One JSON line per reply of each decision (local, blocked with its list and
client group, forwarded to the test upstream, cached, refused, servfail
from a dead upstream, over UDP, TCP and IPv6, an odd name escaped), each
parsed with json and checked field by field; rotation by size under load
from dnsperf (never more than log_keep files, none over log_max_size, every
line whole); reopen on SIGUSR2 and SIGHUP after a move (as logrotate does);
log_privacy mask and hide; and a full queue: the log is a FIFO whose
reader stops reading, the writer thread blocks in write(2), the one-entry
queues fill, and the answers keep coming at loopback latency while the
lines are counted as dropped.  -t refuses bad values with file:line.
"""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import dns.message
import dns.name
import dns.query
import dns.rrset

from harness import SPLITDNS, Daemon, Upstream, done, eq, free_port, run, test

up = Upstream()
DEAD = free_port()      # nothing listens there: the upstream is dead
LOGDIR = tempfile.mkdtemp(prefix="sdqlog.")
HOME = '''origin = "home.lab";
records = ( { name = "nas"; type = "A"; data = "192.168.1.10"; } );
'''
BASE = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 400; tries = 1; };
zones = ["home.zone"];
forward = ( { domain = "dead.test"; servers = ["127.0.0.1:%d"]; },
            { domain = "corp.test"; refuse = true; } );
block: { lists = ["list.txt"]; };
clients = ( { name = "lab"; match = ["127.0.0.1/32"];
              block: { lists = ["list.txt", "kids.txt"]; }; } );
threads = 2;
''' % (up.port, DEAD)
FILES = {"home.zone": HOME, "list.txt": "ads.example.com\n",
         "kids.txt": "games.example.org\n"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def logpath(name):
    return os.path.join(LOGDIR, name)


def daemon(path, extra=""):
    return Daemon(BASE + 'log_queries = "%s";\n%s' % (path, extra), files=FILES)


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path, n, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        got = lines(path)
        if len(got) >= n:
            return [json.loads(l) for l in got]
        time.sleep(0.02)
    raise AssertionError("%s: %d lines, want %d" % (path, len(lines(path)), n))


def counts(d):
    """(written, dropped) from the SIGUSR1 log line."""
    mark = len(d.stderr())
    d.signal(signal.SIGUSR1)
    end = time.time() + 5
    while time.time() < end:
        m = re.search(r"query log \S+: (\d+) lines written, (\d+) dropped",
                      d.stderr()[mark:])
        if m:
            return int(m.group(1)), int(m.group(2))
        time.sleep(0.02)
    raise AssertionError("no query log line after SIGUSR1: " + d.stderr()[mark:])


def ask(name, rdtype="A", port=None, addr="127.0.0.1", tcp=False, sport=0):
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, addr, port=port, timeout=3, source_port=sport)
    return dns.query.udp(q, addr, port=port, timeout=3, source_port=sport)


def check_line(e, name, rdtype, kind, rcode, answers, transport="udp",
               client="127.0.0.1"):
    eq(e["name"], name, "name")
    eq(e["type"], rdtype, "type of " + name)
    eq(e["class"], "IN", "class of " + name)
    eq(e["kind"], kind, "kind of " + name)
    eq(e["rcode"], rcode, "rcode of " + name)
    eq(e["answers"], answers, "answers of " + name)
    eq(e["transport"], transport, "transport of " + name)
    eq(e["client"], client, "client of " + name)
    assert isinstance(e["port"], int) and 0 < e["port"] < 65536, e
    assert TIME.match(e["time"]), e["time"]
    t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert abs(t - time.time()) < 30, "time %s is not now" % e["time"]
    assert isinstance(e["duration_ms"], float) and 0 <= e["duration_ms"] < 3000, e


@test
def t_decisions():
    """one valid JSON line per reply of each decision, with its fields"""
    path = logpath("decisions.log")
    d = daemon(path)
    P = d.port
    sport = free_port()
    steps = [
        # (query, expected line fields)
        (lambda: ask("nas.home.lab", port=P, sport=sport),
         ("nas.home.lab.", "A", "local", "NOERROR", 1)),
        (lambda: ask("ads.example.com", port=P),
         ("ads.example.com.", "A", "blocked", "NOERROR", 1)),
        (lambda: ask("www.example.com", port=P),
         ("www.example.com.", "A", "forwarded", "NOERROR", 1)),
        (lambda: ask("www.example.com", port=P),
         ("www.example.com.", "A", "cached", "NOERROR", 1)),
        (lambda: ask("x.corp.test", "AAAA", port=P),
         ("x.corp.test.", "AAAA", "refused", "REFUSED", 0)),
        (lambda: ask("x.dead.test", port=P),
         ("x.dead.test.", "A", "servfail", "SERVFAIL", 0)),
        (lambda: ask("nx.example.com", "MX", port=P, tcp=True),
         ("nx.example.com.", "MX", "forwarded", "NXDOMAIN", 0, "tcp")),
        (lambda: ask("games.example.org", "TYPE999", port=P, tcp=True),
         ("games.example.org.", "TYPE999", "blocked", "NOERROR", 0, "tcp")),
        (lambda: ask("ads.example.com", port=P, addr="::1", tcp=True),
         ("ads.example.com.", "A", "blocked", "NOERROR", 1, "tcp", "::1")),
    ]
    for i, (fn, want) in enumerate(steps):
        fn()
        e = wait_lines(path, i + 1)[i]
        check_line(e, *want)
    got = wait_lines(path, len(steps))
    eq(got[0]["port"], sport, "the client's port")
    # the block source and the client group
    eq(got[1]["group"], "lab", "group of 127.0.0.1")
    assert got[1]["list"].endswith("/list.txt"), got[1]
    assert got[7]["list"].endswith("/kids.txt"), got[7]
    assert "group" not in got[8] and got[8]["list"].endswith("/list.txt"), got[8]
    for e in got:
        if e["kind"] != "blocked":
            assert "list" not in e, e
    # where the forwarded ones went (the servfail one too)
    eq(got[2]["upstream"], "127.0.0.1:%d" % up.port, "upstream of www")
    eq(got[6]["upstream"], "127.0.0.1:%d" % up.port, "upstream over TCP")
    eq(got[5]["upstream"], "127.0.0.1:%d" % DEAD, "upstream of the dead")
    for i in (0, 1, 3, 4, 7, 8):
        assert "upstream" not in got[i], got[i]
    # every forwarded name reached the test upstream, the cached one once
    eq(len(up.saw("www.example.com")), 1, "upstream queries for www")
    time.sleep(0.1)
    eq(len(lines(path)), len(steps), "one line per query, no more")
    eq(counts(d), (len(steps), 0), "written, dropped")
    d.stop()


@test
def t_odd_name():
    """a name with a quote, a backslash, a control and a non-ASCII byte:
    escaped (RFC 1035 presentation, then JSON), read back by json"""
    path = logpath("odd.log")
    d = daemon(path)
    name = dns.name.Name([b'we"ird\\', b"a\x01b\xffc", b"example", b"com", b""])
    ask(name, port=d.port)
    e = wait_lines(path, 1)[0]
    eq(e["name"], name.to_text(), "the name as dnspython writes it")
    eq(e["name"], 'we\\"ird\\\\.a\\001b\\255c.example.com.', "escapes")
    raw = lines(path)[0]
    assert all(32 <= ord(c) < 127 for c in raw), "the line is printable ASCII"
    d.stop()


def dnsperf(port, names, seconds, threads=2, outstanding=50):
    data = os.path.join(LOGDIR, "perf%d.txt" % port)
    with open(data, "w") as f:
        for n in names:
            f.write("%s A\n" % n)
    p = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", data,
                        "-l", str(seconds), "-c", "2", "-T", str(threads),
                        "-q", str(outstanding)],
                       capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Queries completed:\s+(\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    return int(m.group(1))


@test
def t_rotation():
    """rotation by size under load: never more than log_keep files, none past
    log_max_size, every line whole JSON; written + dropped = replies"""
    sub = logpath("rot")
    os.mkdir(sub)
    path = os.path.join(sub, "q.log")
    d = daemon(path, "log_max_size = 8192;\nlog_keep = 3;\n")
    seen = set()
    stop = []

    def watch():
        while not stop:
            seen.update(os.listdir(sub))
            time.sleep(0.002)
    th = threading.Thread(target=watch)
    th.start()
    try:
        n = dnsperf(d.port, ["nas.home.lab", "ads.example.com"], 3)
    finally:
        time.sleep(0.3)
        stop.append(1)
        th.join()
    written, dropped = counts(d)
    eq(written + dropped, n, "lines written and dropped, of %d replies" % n)
    assert written > 4 * 8192 // 200, "enough lines to rotate: %d" % written
    names = set(os.listdir(sub))
    eq(names, {"q.log", "q.log.1", "q.log.2", "q.log.3"}, "the files")
    assert seen <= names, "files seen meanwhile: %s" % sorted(seen)
    total = 0
    for name in names:
        p = os.path.join(sub, name)
        size = os.path.getsize(p)
        assert size <= 8192, "%s: %d bytes" % (name, size)
        with open(p) as f:
            text = f.read()
        assert text.endswith("\n"), name
        for l in text.splitlines():
            e = json.loads(l)
            assert e["kind"] in ("local", "blocked"), e
            total += 1
        if name != "q.log":
            assert size > 8192 - 400, "%s was rotated full: %d bytes" % (name, size)
    assert total <= written
    d.stop()


@test
def t_reopen():
    """SIGUSR2 and SIGHUP after a move (logrotate): the next lines go to a new
    file at the path, the moved one keeps the earlier ones"""
    path = logpath("reopen.log")
    d = daemon(path)
    ask("nas.home.lab", port=d.port)
    wait_lines(path, 1)
    os.rename(path, path + ".old")
    ask("ads.example.com", port=d.port)   # still into the moved file
    wait_lines(path + ".old", 2)
    d.signal(signal.SIGUSR2)
    time.sleep(0.2)
    ask("www.example.net", port=d.port)
    e = wait_lines(path, 1)
    eq([x["name"] for x in e], ["www.example.net."], "the new file")
    eq(len(lines(path + ".old")), 2, "the moved file")
    os.rename(path, path + ".old2")
    mark = len(d.stderr())
    d.signal(signal.SIGHUP)
    end = time.time() + 5
    while "reloaded" not in d.stderr()[mark:] and time.time() < end:
        time.sleep(0.02)
    assert "reloaded" in d.stderr()[mark:], "SIGHUP still reloads"
    ask("nas.home.lab", port=d.port)
    e = wait_lines(path, 1)
    eq([x["name"] for x in e], ["nas.home.lab."], "the file after SIGHUP")
    eq(len(lines(path + ".old2")), 1)
    d.stop()


@test
def t_privacy():
    """log_privacy mask: IPv4 /24 and IPv6 /48, no port; hide: no client"""
    path = logpath("mask.log")
    d = daemon(path, 'log_privacy = "mask";\n')
    # one at a time: lines of two worker threads may be in either order
    ask("nas.home.lab", port=d.port)
    wait_lines(path, 1)
    ask("nas.home.lab", port=d.port, addr="::1")
    e = wait_lines(path, 2)
    eq(e[0]["client"], "127.0.0.0", "masked IPv4")
    eq(e[1]["client"], "::", "masked IPv6 (::1 in ::/48)")
    assert "port" not in e[0] and "port" not in e[1], e
    d.stop()
    path = logpath("hide.log")
    d = daemon(path, 'log_privacy = "hide";\n')
    ask("nas.home.lab", port=d.port)
    e = wait_lines(path, 1)[0]
    assert "client" not in e and "port" not in e, e
    eq(e["name"], "nas.home.lab.")
    d.stop()


def latencies(port, n, name="nas.home.lab"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    out = []
    try:
        for i in range(n):
            q = dns.message.make_query(name, "A")
            q.id = i
            t = time.perf_counter()
            s.sendto(q.to_wire(), ("127.0.0.1", port))
            r = dns.message.from_wire(s.recv(4096))
            out.append(time.perf_counter() - t)
            assert r.id == i
    finally:
        s.close()
    return sorted(out)


@test
def t_full_queue():
    """a writer that cannot write (a FIFO whose reader stopped): the queue
    fills, lines are dropped and counted, answers keep their latency"""
    fifo = logpath("stalled.fifo")
    os.mkfifo(fifo)
    # the reader: opened first (the daemon's open would wait for one), and
    # then never read until the end
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    d = daemon(fifo, "log_queue = 1;\n")
    try:
        base = latencies(d.port, 200)
        # until the pipe's buffer is full and the writer blocks in write(2):
        # a whole batch of queries then adds no line
        for i in range(60):
            w = counts(d)[0]
            latencies(d.port, 300)
            time.sleep(0.05)
            if counts(d)[0] == w:
                break
        else:
            raise AssertionError("the writer never blocked")
        before = counts(d)
        lat = latencies(d.port, 1000)
        w, dr = counts(d)
        eq(w, before[0], "nothing written while the reader sleeps")
        assert dr - before[1] >= 990, "dropped %d of 1000" % (dr - before[1])
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        # loopback answers take well under a millisecond; allow for a
        # loaded machine, but a writer in the way would make them wait
        # forever (the queue never empties)
        assert p50 < 0.005 and p99 < 0.05, "p50 %.2f ms, p99 %.2f ms" % (
            p50 * 1000, p99 * 1000)
        print("# answers with the log stalled: p50 %.3f ms, p99 %.3f ms "
              "(%.3f / %.3f before); %d lines dropped"
              % (p50 * 1000, p99 * 1000, base[100] * 1000, base[198] * 1000, dr))
        assert stat.S_ISFIFO(os.stat(fifo).st_mode), "not rotated away"
    finally:
        # SIGTERM while the reader still sleeps: the writer gives up on
        # the pipe (its lines are counted lost) and the daemon exits
        # (Daemon.stop: SIGTERM, exit status 0 within 15 s)
        d.stop()
        drained = []
        while True:
            try:
                b = os.read(rfd, 65536)
            except BlockingIOError:
                break
            if not b:
                break
            drained.append(b)
        os.close(rfd)
    text = b"".join(drained).decode()
    for l in text.splitlines():
        json.loads(l)
    assert text.count("\n") >= 100, "the lines before the stall came out"


@test
def t_user():
    """user = "nobody" (as root): the file is given to the user at start, a
    reopen in a folder the user may write makes a new file; in one it may
    not, the error is logged and the lines go on into the open file"""
    if os.geteuid() != 0:
        print("# SKIP: needs root")
        return
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(LOGDIR, 0o755)        # the user must reach its folder
    sub = logpath("user")
    os.mkdir(sub)
    os.chown(sub, nobody.pw_uid, nobody.pw_gid)
    path = os.path.join(sub, "q.log")
    d = daemon(path, 'user = "nobody";\n')
    assert "running as user nobody" in d.stderr()
    eq(os.stat(path).st_uid, nobody.pw_uid, "owner of the file")
    ask("nas.home.lab", port=d.port)
    wait_lines(path, 1)
    os.rename(path, path + ".1")
    d.signal(signal.SIGUSR2)
    time.sleep(0.2)
    ask("ads.example.com", port=d.port)
    eq([e["name"] for e in wait_lines(path, 1)], ["ads.example.com."], "new file")
    eq(os.stat(path).st_uid, nobody.pw_uid, "made by the user")
    # a folder the user cannot write: the reopen fails, the lines go on
    os.chown(sub, 0, 0)
    os.chmod(sub, 0o755)
    os.rename(path, path + ".2")
    mark = len(d.stderr())
    d.signal(signal.SIGUSR2)
    time.sleep(0.2)
    ask("nas.home.lab", port=d.port)
    eq(len(wait_lines(path + ".2", 2)), 2, "the line went to the open file")
    assert "cannot open" in d.stderr()[mark:], d.stderr()[mark:]
    assert not os.path.exists(path)
    d.stop()


@test
def t_rotation_fails():
    """rotation in a folder the user may not write: every line still goes
    into the open file, the error is logged about once per log_max_size"""
    if os.geteuid() != 0:
        print("# SKIP: needs root")
        return
    os.chmod(LOGDIR, 0o755)
    sub = logpath("ro")
    os.mkdir(sub, 0o755)             # root's
    path = os.path.join(sub, "q.log")
    d = daemon(path, 'user = "nobody";\nlog_max_size = 4096;\nlog_keep = 2;\n')
    for i in range(200):
        ask("nas.home.lab", port=d.port)
    got = wait_lines(path, 200)
    eq(len(got), 200, "lines in the file")
    size = os.path.getsize(path)
    errors = d.stderr().count("cannot rename")
    assert 1 <= errors <= size // 4096 + 1, "%d errors for %d bytes" % (errors, size)
    eq(sorted(os.listdir(sub)), ["q.log"], "nothing rotated")
    d.stop()


@test
def t_status():
    """splitdnsctl status and status --json: the lines written and dropped"""
    ctl = os.path.join(os.path.dirname(SPLITDNS), "splitdnsctl")
    ctl = os.environ.get("SPLITDNSCTL") or ctl
    path = logpath("status.log")
    sock = logpath("control")
    d = daemon(path, 'control = "%s";\n' % sock)
    for i in range(3):
        ask("nas.home.lab", port=d.port)
    wait_lines(path, 3)
    p = subprocess.run([ctl, "-s", sock, "status"], capture_output=True,
                       text=True, timeout=10)
    assert "query log %s: 3 lines written, 0 dropped" % path in p.stdout, p.stdout
    p = subprocess.run([ctl, "-s", sock, "--json", "status"],
                       capture_output=True, text=True, timeout=10)
    eq(json.loads(p.stdout)["query_log"],
       {"path": path, "written": 3, "dropped": 0}, "--json")
    d.stop()


@test
def t_check_errors():
    """-t refuses bad log_* values with file:line"""
    cases = [
        ('log_queries = "";', "'log_queries' is empty"),
        ('log_max_size = 100;', "'log_max_size' must be 0 or at least 4096"),
        ('log_keep = 101;', "'log_keep' is out of range"),
        ('log_queue = 0;', "'log_queue' is out of range"),
        ('log_privacy = "partial";', "log_privacy 'partial'"),
        ('log_queries = 5;', "'log_queries' must be a string"),
    ]
    tmp = tempfile.mkdtemp(prefix="sdqlogt.")
    try:
        for line, msg in cases:
            conf = os.path.join(tmp, "splitdns.conf")
            with open(conf, "w") as f:
                f.write('listen = ["127.0.0.1:5300"];\n'
                        'upstream: { servers = ["127.0.0.1:9"]; };\n%s\n' % line)
            rc, out, err = run(["-t", "-c", conf])
            eq(rc, 1, line)
            assert "%s:3: %s" % (conf, msg) in err, (line, err)
        with open(conf, "w") as f:
            f.write('listen = ["127.0.0.1:5300"];\n'
                    'upstream: { servers = ["127.0.0.1:9"]; };\n'
                    'log_queries = "syslog"; log_max_size = 0; log_keep = 0;\n'
                    'log_queue = 1048576; log_privacy = "hide";\n')
        rc, out, err = run(["-t", "-c", conf])
        eq(rc, 0, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Silent:
    """An upstream on a free UDP port that answers (TTL 1) while
    self.answer is true, and is silent after."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if not self.answer:
                continue
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            r.answer.append(dns.rrset.from_text(q.question[0].name, 1, "IN",
                                                "A", "192.0.2.1"))
            self.sock.sendto(r.to_wire(), peer)

    def stop(self):
        self.sock.close()


@test
def t_stale_timer():
    """an expired answer served by the 1.8 s timer, while the upstream says
    nothing, is logged with its own arrival time and fields, not those of
    the query the pipeline saw last (a blocked one here)"""
    s = Silent()
    path = logpath("stale.log")
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; '
               'timeout_ms = 4000; tries = 1; };\nthreads = 1;\n'
               'block: { lists = ["list.txt"]; };\nlog_queries = "%s";\n'
               % (s.port, path), files={"list.txt": "ads.example.com\n"})
    try:
        ask("old.example.com", port=d.port)
        wait_lines(path, 1)
        time.sleep(1.5)            # its TTL of 1 s is over
        s.answer = False
        got = {}
        t = threading.Thread(target=lambda: got.update(
            r=ask("old.example.com", port=d.port)))
        t0 = time.time()
        t.start()
        time.sleep(0.5)
        ask("ads.example.com", port=d.port)  # blocked, with its list
        t.join()
        took = time.time() - t0
        assert 1.5 < took < 3.5, "the stale answer took %.2f s" % took
        e = wait_lines(path, 3)[2]
        eq(e["kind"], "stale", "kind")
        eq(e["name"], "old.example.com.", "name")
        assert "list" not in e, "a list for a stale answer: %r" % e
        eq(e.get("upstream"), "127.0.0.1:%d" % s.port, "its upstream")
        assert e["duration_ms"] >= 1500, "duration of %r" % e
        t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        assert abs(t - t0) < 0.3, "time %s, asked at %.3f" % (e["time"], t0)
    finally:
        d.stop()
        s.stop()


@test
def t_chase_blocked():
    """a local CNAME whose target, asked upstream, reaches a blocked name by
    a CNAME: the blocked line names the list that blocked it"""
    path = logpath("chase.log")
    zone = ('origin = "home.lab";\nrecords = ( { name = "alias"; '
            'type = "CNAME"; data = "cname.example.com."; } );\n')
    d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; '
               '};\nzones = ["home.zone"];\nthreads = 1;\n'
               'block: { lists = ["list.txt"]; };\nlog_queries = "%s";\n'
               % (up.port, path),
               files={"home.zone": zone, "list.txt": "target.example.net\n"})
    try:
        ask("alias.home.lab", port=d.port)
        e = wait_lines(path, 1)[0]
        eq(e["name"], "alias.home.lab.", "name")
        eq(e["kind"], "blocked", "kind")
        assert e.get("list", "").endswith("/list.txt"), "no list in %r" % e
        assert len(up.saw("cname.example.com")) >= 1, "asked upstream"
    finally:
        d.stop()


try:
    done()
finally:
    shutil.rmtree(LOGDIR, ignore_errors=True)
