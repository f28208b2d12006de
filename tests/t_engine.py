#!/usr/bin/python3
"""t_engine.py - the 0.2 engine through the real binary (TAP).

Worker loops (threads = 2: own sockets per loop, every client its own ID,
case and answer over UDP and pipelined TCP), shared in-flight queries
(threads = 1: 30 identical questions, one upstream query; the bound of 64
waiters), serve-stale (RFC 8767: the 1800 ms client-response timer, TTL 30,
serve_stale = 0 and a window that ran out), prefetch (the last tenth of a
TTL), a SIGHUP storm with a 50k-name blocklist under a steady stream of
queries, --explain with --client, and SIGTERM with queries in flight.

Everything runs against tests/upstream.py on loopback: names "ttlN.*" set
the upstream TTL, "delayN.*" and "slow.*" delay its answer, and its control
file makes it drop or SERVFAIL single names (the upstream "goes silent").
Timings are kept small; the whole file runs in about 45 s.
"""

import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rdatatype  # noqa: E402

import sdtest  # noqa: E402
from sdtest import (V4, V6, check, check_reply, eq, frame,  # noqa: E402
                    make_query, parse, rcode, tcp_connect, tcp_read, uniq)
import upstream as up_mod  # noqa: E402

RNG = random.Random(os.getpid())
CLIENT_TIMER = 1.8       # RFC 8767 section 5: the client-response timer
STALE_TTL = 30           # RFC 8767 section 4: TTL of a stale answer
MAX_WAITERS = 64         # COMMON/DESIGN: fixed bound of waiters per key

LAN = r'''origin = "lan.test";
authoritative = true;
records = (
%s
  { name = "trk"; type = "CNAME"; data = "x.ads.example.com."; },
  { name = "fwd"; type = "CNAME"; data = "www.example.net."; }
);
''' % "\n".join('  { name = "h%d"; type = "A"; data = "10.1.0.%d"; },'
                % (i, i) for i in range(20))

tap = sdtest.TAP()
up = None


def start_upstream():
    global up
    up = sdtest.Upstream()
    tap.at_end(up.stop)


tap.run("the test upstream starts", start_upstream)
if up is None:
    tap.done()


def engine_keys(threads=None, serve_stale=None, prefetch=None):
    """The settings that are new in 0.2, as (top-level, cache-group) text."""
    top = "" if threads is None else "threads = %d;" % threads
    cache = ""
    if serve_stale is not None:
        cache += " serve_stale = %d;" % serve_stale
    if prefetch is not None:
        cache += " prefetch = %s;" % ("true" if prefetch else "false")
    return top, cache


BLOCK = 'domains = ["ads.test", "ads.example.com"];'


def conf(threads=2, serve_stale=None, prefetch=None, timeout_ms=1000,
         tries=2, block=BLOCK, cache="", extra=""):
    top, cache_new = engine_keys(threads, serve_stale, prefetch)
    cache = (cache + cache_new).strip()
    return '''listen = {listen};
%s
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = %d; tries = %d; };
zones = ["lan.zone"];
block: { %s };
%s
%s
''' % (top, up.port, timeout_ms, tries, block,
       "cache: { %s };" % cache if cache else "", extra)


def daemon(text, files=None, asan=None):
    """The daemon with lan.zone and files; asan: more ASAN_OPTIONS."""
    zones = {"lan.zone": LAN}
    zones.update(files or {})
    d = sdtest.Daemon(conf=text, zones=zones, asan=asan)
    tap.at_end(d.stop)
    return d


# ------------------------------------------------------------ helpers

def mixcase(name):
    """The name with its letters in random case (DNS 0x20)."""
    return "".join(c.upper() if RNG.random() < 0.5 else c.lower()
                   for c in name)


def a_data(r):
    """Sorted A data of the answer records owned by the question name."""
    qn = r.question[0].name.to_text().lower()
    return sorted(rd.to_text() for rrset in r.answer
                  if rrset.rdtype == dns.rdatatype.A
                  and rrset.name.to_text().lower() == qn for rd in rrset)


def a_ttl(r):
    qn = r.question[0].name.to_text().lower()
    for rrset in r.answer:
        if (rrset.rdtype == dns.rdatatype.A
                and rrset.name.to_text().lower() == qn):
            return rrset.ttl
    raise AssertionError("no A record in %s" % r.answer)


def fwd(name):
    """(name, the A data the upstream gives it)."""
    return name, [up_mod.address_for(name + ".")]


def local(i):
    return "h%d.lan.test" % i, ["10.1.0.%d" % i]


def blocked(name):
    return name, ["0.0.0.0"]


def mix(n, tag, blocked_names=None):
    """n (query, want) pairs: local, blocked, fresh and repeated forwarded
    names in turn, each in random case with a random ID."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            name, want = local(i % 20)
        elif kind == 1:
            b = (RNG.choice(blocked_names) if blocked_names
                 else "b%d.ads.test" % i)
            name, want = blocked(b)
        elif kind == 2:
            name, want = fwd(uniq("f%s" % tag))
        else:
            name, want = fwd("pop%d.%s.example.net" % (i % 7, tag))
        q = make_query(mixcase(name), qid=RNG.randrange(65536))
        out.append((q, want))
    return out


def verdict(q, want, r):
    """None when r is the right reply to q, else why not."""
    if r is None:
        return "%s id %d: no reply" % (q.question[0].name, q.id)
    try:
        check_reply(r, q)
        eq(a_data(r), want, "A data")
    except AssertionError as e:
        return "%s id %d: %s" % (q.question[0].name, q.id, e)
    return None


def all_right(pairs, replies, what):
    bad = [v for v in (verdict(q, w, r) for (q, w), r in zip(pairs, replies))
           if v]
    check(not bad, "%s: %d of %d wrong:\n%s"
          % (what, len(bad), len(pairs), "\n".join(bad[:10])))


def udp_exchange(queries, port, addr=V4, timeout=5.0, source=None,
                 sock=None):
    """Send each query from a socket of its own (or all from sock), every
    one before any reply is read; returns [(reply or None, seconds from its
    send to its reply)] in query order.  With sock, replies are matched
    by ID."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sel = selectors.DefaultSelector()
    socks, starts = [], []
    out = [(None, None)] * len(queries)
    byid = {}
    if sock is not None:
        sock.connect((addr, port))
        sock.setblocking(False)
    try:
        for i, q in enumerate(queries):
            s = sock
            if s is None:
                s = socket.socket(fam, socket.SOCK_DGRAM)
                socks.append(s)
                if source:
                    s.bind((source, 0))
                s.connect((addr, port))
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
            starts.append(time.monotonic())
            s.send(q.to_wire())
            byid[q.id] = i
        if sock is not None:
            sel.register(sock, selectors.EVENT_READ, None)
        left = len(queries)
        end = time.monotonic() + timeout
        while left and time.monotonic() < end:
            for key, _ in sel.select(max(0.0, end - time.monotonic())):
                try:
                    data = key.fileobj.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
                r = parse(data)
                i = key.data if key.data is not None else byid.get(r.id)
                if i is None or out[i][0] is not None:
                    continue
                out[i] = (r, time.monotonic() - starts[i])
                left -= 1
    finally:
        if sock is not None:
            sel.unregister(sock)
            sock.setblocking(True)
        for s in socks:
            s.close()
        sel.close()
    return out


def tcp_pipelined(queries, port, addr=V4, timeout=5.0):
    """Write every query on one connection at once; the replies in query
    order, matched by ID (RFC 7766 section 7: any order)."""
    s = tcp_connect(port, addr, timeout)
    got = {}
    try:
        s.sendall(b"".join(frame(q.to_wire()) for q in queries))
        while len(got) < len(queries):
            try:
                wire = tcp_read(s)
            except (socket.timeout, ConnectionResetError):
                break
            if wire is None:
                break
            r = parse(wire)
            got.setdefault(r.id, r)
    finally:
        s.close()
    return [got.get(q.id) for q in queries]


def unique_ids(n):
    return RNG.sample(range(65536), n)


def proc_sockets(pid, port):
    """(UDP, TCP-listening) sockets of pid bound to port, per family."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    out = {}
    for table in ("udp", "udp6", "tcp", "tcp6"):
        n = 0
        with open("/proc/net/" + table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                lport = int(fields[1].split(":")[1], 16)
                listening = table.startswith("udp") or fields[3] == "0A"
                if lport == port and listening and fields[9] in inodes:
                    n += 1
        out[table] = n
    return out


from sdtest import fd_count, rss_kb, wait_for  # noqa: E402


def client_socket():
    """One UDP client socket, so that a sequence of queries comes from one
    address and port (the same worker loop, whatever the cache's layout)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((V4, 0))
    return s


def ask_on(s, name, port, timeout=5.0):
    """One query from socket s; (query, reply or None, seconds)."""
    q = make_query(name, qid=RNG.randrange(65536))
    [(r, t)] = udp_exchange([q], port, sock=s, timeout=timeout)
    return q, r, t


# ------------------------------------------------------ worker loops

d2 = None


def t_start_threads2():
    global d2
    d2 = daemon(conf(threads=2))


tap.run("threads = 2: the daemon starts", t_start_threads2)


def t_worker_sockets():
    """Each worker loop owns an SO_REUSEPORT UDP and TCP socket per listen
    address: two of each for 127.0.0.1:PORT and [::1]:PORT."""
    check(d2 is not None, "no daemon")
    pid = d2.proc.pid
    tasks = len(os.listdir("/proc/%d/task" % pid))
    check(tasks >= 2, "threads = 2 but the daemon has %d thread(s)" % tasks)
    eq(proc_sockets(pid, d2.port), {"udp": 2, "udp6": 2, "tcp": 2, "tcp6": 2},
       "the daemon's sockets on its port (UDP; TCP listening)")


tap.run("threads = 2: two worker loops, each with its own UDP and TCP "
        "socket on every listen address", t_worker_sockets)


def t_many_clients():
    check(d2 is not None, "no daemon")
    udp = mix(200, "many")
    tcp = mix(100, "many")
    for i, (q, _) in enumerate(tcp):
        q.id = i + 1
    tcp_replies = [None] * len(tcp)

    def conn(k):
        chunk = tcp[k * 5:(k + 1) * 5]
        addr = V4 if k % 2 == 0 else V6
        tcp_replies[k * 5:(k + 1) * 5] = tcp_pipelined(
            [q for q, _ in chunk], d2.port, addr)

    threads = [threading.Thread(target=conn, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    half = len(udp) // 2
    got = udp_exchange([q for q, _ in udp[:half]], d2.port, V4)
    got += udp_exchange([q for q, _ in udp[half:]], d2.port, V6)
    for t in threads:
        t.join(10)
    all_right(udp, [r for r, _ in got], "UDP")
    all_right(tcp, tcp_replies, "TCP")


tap.run("threads = 2: 200 UDP queries from 200 sockets and 100 pipelined TCP "
        "queries on 20 connections (local, blocked, forwarded; 0x20 case): "
        "each client its own ID, case and answer", t_many_clients)


def t_real_clients():
    check(d2 is not None, "no daemon")
    pairs = [local(5), blocked("y.ads.test"), fwd(uniq("dig")),
             fwd("pop1.many.example.net")]
    names = [n for n, _ in pairs]
    want = "".join(w[0] + "\n" for _, w in pairs)
    for cmd in (["kdig", "@" + V4, "-p", str(d2.port), "+tcp", "+keepopen",
                 "+short"], ["dig", "@" + V6, "-p", str(d2.port), "+short"]):
        p = subprocess.run(cmd + [mixcase(n) for n in names],
                           capture_output=True, text=True, timeout=15,
                           stdin=subprocess.DEVNULL)
        eq((p.returncode, p.stdout), (0, want), " ".join(cmd[:2] + cmd[4:]))


tap.run("threads = 2: kdig (several queries on one TCP connection) and dig "
        "(UDP over IPv6) get the right answers", t_real_clients)


def t_shared_per_loop():
    check(d2 is not None, "no daemon")
    name = uniq("slow")
    qs = [make_query(mixcase(name), qid=i) for i in unique_ids(30)]
    got = udp_exchange(qs, d2.port, timeout=5)
    all_right([(q, fwd(name)[1]) for q in qs], [r for r, _ in got],
              "replies")
    n = len(up.saw(name))
    check(1 <= n <= 2, "upstream queries for %s: %d, want 1 or 2 "
          "(at most one per worker loop)" % (name, n))


tap.run("threads = 2: 30 concurrent identical queries (upstream 500 ms) "
        "reach the upstream at most twice", t_shared_per_loop)


def t_stop_threads2():
    check(d2 is not None, "no daemon")
    d2.stop()


tap.run("threads = 2: clean exit (status 0, no sanitizer report)",
        t_stop_threads2)


def t_default_threads():
    d = daemon(conf(threads=None))
    cpus = {os.cpu_count(), len(os.sched_getaffinity(0))}
    socks = proc_sockets(d.proc.pid, d.port)
    check(socks["udp"] in cpus and socks["udp6"] == socks["udp"]
          and socks["tcp"] == socks["udp"] and socks["tcp6"] == socks["udp"],
          "no threads setting: sockets %s, want one of each per CPU (%s)"
          % (socks, " or ".join(str(c) for c in sorted(cpus))))
    d.stop()


tap.run("threads unset (0): one worker loop, with its sockets, per CPU",
        t_default_threads)


# ----------------------------------------------- shared in-flight queries

d1 = None


def t_start_threads1():
    global d1
    d1 = daemon(conf(threads=1))


tap.run("threads = 1: the daemon starts", t_start_threads1)


def t_shared_once():
    check(d1 is not None, "no daemon")
    name = uniq("slow")
    qs = []
    for qid in unique_ids(30):
        qs.append(make_query(mixcase(name), qid=qid))
    got = udp_exchange(qs, d1.port, timeout=5)
    # every reply: its own ID and its own spelling of the question
    all_right([(q, fwd(name)[1]) for q in qs], [r for r, _ in got],
              "replies")
    eq(len(up.saw(name)), 1, "upstream queries for %s" % name)
    slowest = max(t for _, t in got)
    check(slowest >= up_mod.SLOW_SECONDS - 0.05,
          "answered in %.3fs: before the slow upstream could" % slowest)


tap.run("threads = 1: 30 concurrent identical queries (upstream 500 ms, "
        "0x20 case, own IDs) reach the upstream once", t_shared_once)


def t_waiter_bound():
    check(d1 is not None, "no daemon")
    name = uniq("slow")
    n = MAX_WAITERS + 16
    qs = [make_query(mixcase(name), qid=qid) for qid in unique_ids(n)]
    got = udp_exchange(qs, d1.port, timeout=5)
    ok = fail = 0
    for q, (r, t) in zip(qs, got):
        check(r is not None, "no reply to id %d" % q.id)
        if rcode(r) == "SERVFAIL":
            check_reply(r, q, rc="SERVFAIL")
            check(t < up_mod.SLOW_SECONDS - 0.1,
                  "a SERVFAIL past the bound came after %.3fs, not at once"
                  % t)
            fail += 1
        else:
            eq(verdict(q, fwd(name)[1], r), None, "reply")
            ok += 1
    check(ok in (MAX_WAITERS, MAX_WAITERS + 1),
          "%d answered, %d SERVFAIL: want the first query and its 64 "
          "waiters answered (64 or 65)" % (ok, fail))
    eq(len(up.saw(name)), 1, "upstream queries for %s" % name)


tap.run("threads = 1: past 64 waiters on one key the extra queries get "
        "SERVFAIL at once; one upstream query", t_waiter_bound)


def t_stop_threads1():
    check(d1 is not None, "no daemon")
    d1.stop()


tap.run("threads = 1: clean exit", t_stop_threads1)


# ----------------------------------------------------------- serve-stale

def t_serve_stale():
    # timeout 1500 ms x 2 tries: the upstream query outlives the 1.8 s
    # client-response timer, so the stale answer comes from the timer
    d = daemon(conf(threads=2, serve_stale=3600, timeout_ms=1500, tries=2))
    silent, failing, fresh = (uniq("ttl1"), uniq("ttl1"), uniq("ttl1"))
    s = client_socket()
    try:
        for name in (silent, failing):
            q, r, t = ask_on(s, name, d.port)
            eq(verdict(q, fwd(name)[1], r), None, "first answer")
            check(a_ttl(r) <= 1, "TTL %d from a TTL-1 upstream" % a_ttl(r))
        time.sleep(2.2)        # both expired more than a second ago
        up.control(drop=[silent, fresh], servfail=[failing])

        # the upstream answers SERVFAIL: the stale answer, by the timer at
        # the latest
        q, r, t = ask_on(s, failing, d.port)
        eq(verdict(q, fwd(failing)[1], r), None, "stale answer (SERVFAIL "
           "upstream)")
        check(1 <= a_ttl(r) <= STALE_TTL, "stale TTL %d" % a_ttl(r))
        check(t < CLIENT_TIMER + 0.5, "stale answer after %.2fs" % t)

        # the upstream is silent: the stale answer when the timer fires;
        # a name never cached has nothing stale: SERVFAIL at the deadline
        qa = make_query(mixcase(silent), qid=RNG.randrange(65536))
        qb = make_query(fresh, qid=RNG.randrange(65536))
        (ra, ta), (rb, tb) = udp_exchange([qa, qb], d.port, timeout=5)
        eq(verdict(qa, fwd(silent)[1], ra), None, "stale answer (silent "
           "upstream)")
        check(1 <= a_ttl(ra) <= STALE_TTL, "stale TTL %d" % a_ttl(ra))
        check(CLIENT_TIMER - 0.3 <= ta <= CLIENT_TIMER + 0.7,
              "stale answer after %.2fs, want the %.1fs client-response "
              "timer" % (ta, CLIENT_TIMER))
        check(rb is not None, "no reply for a name never cached")
        eq(rcode(rb), "SERVFAIL", "rcode for a name never cached")
        check(len(up.saw(silent)) >= 2,
              "the upstream was not asked again for %s" % silent)
    finally:
        s.close()
        up.control()
    d.stop()


tap.run("serve_stale = 3600: expired names are answered stale (NOERROR, "
        "same data, TTL <= 30) when the upstream fails at once or goes "
        "silent (by the 1.8 s timer); a name never cached gets SERVFAIL",
        t_serve_stale)


def t_stale_off():
    d_off = daemon(conf(threads=2, serve_stale=0, timeout_ms=1500, tries=2))
    d_short = daemon(conf(threads=2, serve_stale=1, timeout_ms=1500, tries=2))
    n_off, n_short = uniq("ttl1"), uniq("ttl1")
    s = client_socket()
    try:
        for d, name in ((d_off, n_off), (d_short, n_short)):
            q, r, t = ask_on(s, name, d.port)
            eq(verdict(q, fwd(name)[1], r), None, "first answer")
        time.sleep(2.5)        # expired 1.5 s ago: past serve_stale = 1
        up.control(drop=[n_off, n_short])
        out = {}

        def one(d, name):
            c = client_socket()
            out[name] = ask_on(c, name, d.port, timeout=6)
            c.close()

        ts = [threading.Thread(target=one, args=a)
              for a in ((d_off, n_off), (d_short, n_short))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(8)
        for name, what in ((n_off, "serve_stale = 0"),
                           (n_short, "serve_stale = 1, 1.5 s past expiry")):
            q, r, t = out[name]
            check(r is not None, "%s: no reply" % what)
            eq(rcode(r), "SERVFAIL", "%s: rcode" % what)
            check(t >= CLIENT_TIMER + 0.3, "%s: SERVFAIL after %.2fs, before "
                  "the upstream deadline (3 s)" % (what, t))
    finally:
        s.close()
        up.control()
    d_off.stop()
    d_short.stop()


tap.run("serve_stale = 0, and serve_stale = 1 once the window has passed: "
        "the silent upstream's expired name gets SERVFAIL at the deadline",
        t_stale_off)


# -------------------------------------------------------------- prefetch

def t_prefetch():
    d = daemon(conf(threads=2, prefetch=True, serve_stale=0))
    name = uniq("ttl10")
    s = client_socket()
    try:
        q, r, t = ask_on(s, name, d.port)
        # The entry's clock starts when the daemon stored it, just before
        # this reply came (a slow build, such as TSan's, must not shift
        # the asks below out of the last tenth of the TTL).
        t0 = time.monotonic()
        eq(verdict(q, fwd(name)[1], r), None, "first answer")
        eq(a_ttl(r), 10, "first TTL")

        time.sleep(max(0.0, t0 + 5.0 - time.monotonic()))
        q, r, t = ask_on(s, name, d.port)
        eq(verdict(q, fwd(name)[1], r), None, "answer at 5 s")
        check(4 <= a_ttl(r) <= 6, "TTL %d at 5 s: not a cache hit"
              % a_ttl(r))
        time.sleep(0.3)
        eq(len(up.saw(name)), 1, "upstream queries after an ask at half "
           "the TTL (no prefetch yet)")

        # the last tenth: the cached answer at once, one refresh behind it
        time.sleep(max(0.0, t0 + 9.2 - time.monotonic()))
        for i in range(5):
            q, r, t = ask_on(s, name, d.port)
            eq(verdict(q, fwd(name)[1], r), None, "answer at 9.2 s")
            # The first ask is the old entry; the refresh may land before
            # the next ones, which then see it (TTL 10) instead.
            check(a_ttl(r) <= 1 or (i > 0 and a_ttl(r) >= 9),
                  "TTL %d at 9.2 s (ask %d): neither the cached answer nor "
                  "the refreshed one" % (a_ttl(r), i))
            check(t < 0.2, "cache hit took %.3fs" % t)
        check(wait_for(lambda: len(up.saw(name)) >= 2, 1.0),
              "no prefetch query reached the upstream within 1 s")
        time.sleep(0.3)
        eq(len(up.saw(name)), 2, "upstream queries: one refresh per key")

        # past the first TTL: a hit on the refreshed entry
        time.sleep(max(0.0, t0 + 11.0 - time.monotonic()))
        q, r, t = ask_on(s, name, d.port)
        eq(verdict(q, fwd(name)[1], r), None, "answer at 11 s")
        check(7 <= a_ttl(r) <= 9, "TTL %d at 11 s: want the refreshed "
              "entry aged about 1.8 s" % a_ttl(r))
        time.sleep(0.5)
        eq(len(up.saw(name)), 2, "upstream queries after the ask at 11 s")
    finally:
        s.close()
    d.stop()


tap.run("prefetch = true: an ask in the last tenth of the TTL is answered "
        "from the cache and refreshed once; the next ask after the old "
        "expiry is a cache hit", t_prefetch)


# ------------------------------------------------------------ SIGHUP storm

BIG = ["t%05d.ads%02d.storm.test" % (i, i % 37) for i in range(50000)]
LATE = "late.storm.test"


def big_list(extra=()):
    return "".join("0.0.0.0 %s\n" % n for n in list(BIG) + list(extra))


def write_list(d, extra):
    """Replace big.txt whole: a reload never reads half a file."""
    sdtest.write(d.dir, "big.txt.new", big_list(extra))
    os.rename(os.path.join(d.dir, "big.txt.new"),
              os.path.join(d.dir, "big.txt"))


def blocks(d, name):
    q = make_query(name, qid=RNG.randrange(65536))
    [(r, _)] = udp_exchange([q], d.port, timeout=1)
    return r is not None and a_data(r) == ["0.0.0.0"]


def paced(pairs, port, interval, nsocks=50, grace=5.0, during=None):
    """Send the queries at a steady pace from a pool of sockets while a
    thread reads the replies; during(t0), if given, runs in a thread of
    its own from the first send.  Returns the replies in query order."""
    socks = []
    for i in range(nsocks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((V4, port))
        socks.append(s)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    base = RNG.randrange(65536)
    for i, (q, _) in enumerate(pairs):
        q.id = (base + i * 7919) % 65536       # distinct for i < 65536
    index = {q.id: i for i, (q, _) in enumerate(pairs)}
    replies = [None] * len(pairs)
    strays = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                try:
                    data = key.fileobj.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
                r = parse(data)
                i = index.get(r.id)
                if (i is None or i % nsocks != key.data
                        or replies[i] is not None):
                    strays.append(r.id)
                    continue
                replies[i] = r

    rt = threading.Thread(target=reader)
    rt.start()
    t0 = time.monotonic()
    side = None
    if during:
        side = threading.Thread(target=during, args=(t0,))
        side.start()
    try:
        for i, (q, _) in enumerate(pairs):
            delay = t0 + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            socks[i % nsocks].send(q.to_wire())
        if side:
            side.join(30)
        wait_for(lambda: all(r is not None for r in replies), grace)
    finally:
        stop.set()
        rt.join(5)
        for s in socks:
            s.close()
        sel.close()
    check(not strays, "replies with unexpected IDs or on the wrong "
          "socket: %s" % strays[:10])
    return replies


def probe(d):
    """The daemon's fds and RSS (kB) after forwarded queries from 16
    sockets and a local one, so that every worker loop has used its
    upstream channel since the last reload, as in steady state."""
    pairs = [fwd(uniq("probe")) for _ in range(16)] + [local(3)]
    qs = [make_query(n, qid=RNG.randrange(65536)) for n, _ in pairs]
    all_right(list(zip(qs, [w for _, w in pairs])),
              [r for r, _ in udp_exchange(qs, d.port)], "probe")
    time.sleep(0.2)
    return fd_count(d.proc.pid), rss_kb(d.proc.pid)


def t_sighup_storm():
    # AddressSanitizer keeps freed memory in quarantine (256 MB), so every
    # reload of the list would add to the RSS; without it RSS measures
    # the daemon (leaks at exit are LeakSanitizer's, as everywhere)
    d = daemon(conf(threads=2, block='lists = ["big.txt"];'),
               files={"big.txt": big_list()}, asan="quarantine_size_mb=0")
    pid = d.proc.pid
    # warm up: the same traffic and two reloads, so that lazily made
    # things (reload thread, upstream sockets, cache) exist before measuring
    warm = mix(200, "storm", BIG)

    def two_hups(t0):
        for k in range(2):
            time.sleep(0.1)
            if k == 1:
                write_list(d, ["warm.storm.test"])
            d.proc.send_signal(signal.SIGHUP)

    all_right(warm, paced(warm, d.port, 0.002, during=two_hups), "warm-up")
    check(wait_for(lambda: blocks(d, "warm.storm.test"), 15, step=0.2),
          "the warm-up reload never took effect")
    time.sleep(1.0)
    fds0, rss0 = probe(d)
    reloads0 = d.stderr().count("reloaded ")

    def storm(t0):
        for k in range(50):
            delay = t0 + 0.05 + k * 0.078 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if k == 49:        # the last reload must bring this in
                write_list(d, [LATE])
            d.proc.send_signal(signal.SIGHUP)

    pairs = mix(2000, "storm", BIG)
    t = time.monotonic()
    replies = paced(pairs, d.port, 0.002, during=storm, grace=10)
    took = time.monotonic() - t
    check(d.alive(), "the daemon died in the SIGHUP storm")
    all_right(pairs, replies, "queries during 50 SIGHUPs (%.1fs)" % took)

    check(wait_for(lambda: blocks(d, LATE), 15, step=0.2),
          "the list written before the last SIGHUP never took effect")
    # the log line is 0.1's ("reloaded FILE: ..."): informational only
    reloads = d.stderr().count("reloaded ") - reloads0
    time.sleep(1.0)
    fds1, rss1 = probe(d)
    check(d.alive(), "the daemon died after the storm")
    tap.diag("SIGHUP storm: %d reloads, fds %d -> %d, RSS %d -> %d kB"
             % (reloads, fds0, fds1, rss0, rss1))
    eq(fds1, fds0, "open fds after the storm (before: %d)" % fds0)
    check(rss1 < rss0 * 1.5, "RSS %d kB after the storm, %d kB before"
          % (rss1, rss0))
    eq(pid, d.proc.pid, "pid")
    d.stop(timeout=20)


tap.run("SIGHUP storm: 50 SIGHUPs with a 50k-name blocklist during 2000 "
        "UDP queries over 4 s (threads = 2): every query answered right, "
        "the last list applied, fds and RSS back to their level",
        t_sighup_storm)


# --------------------------------------------------------------- explain

EXPLAIN_EXTRA = '''access: { allow = ["127.0.0.1", "::1"]; };
forward = ( { domain = "secret.test"; refuse = true; } );
'''


dx = None


def t_explain_existing():
    global dx
    # no 0.2 setting here: this part holds for 0.1 already
    dx = daemon(conf(threads=None, extra=EXPLAIN_EXTRA))
    [(r, _)] = udp_exchange([make_query("h1.lan.test", qid=7)], dx.port,
                            source="127.0.0.2")
    check(r is not None and rcode(r) == "REFUSED",
          "the daemon's answer to 127.0.0.2: %s" % (r and rcode(r)))
    q = make_query("trk.lan.test", qid=8)
    [(r, _)] = udp_exchange([q], dx.port)
    check(r is not None, "no reply for trk.lan.test")
    eq(a_data(r), ["0.0.0.0"], "the daemon's answer for trk.lan.test (CNAME "
       "to a blocked name)")
    eq(up.saw("x.ads.example.com"), [], "upstream queries for the blocked "
       "target")
    p = sdtest.run(["-c", dx.conf, "--explain", "trk.lan.test"])
    eq(p.returncode, 0, "exit status")
    check("local data" in p.stdout and "CNAME" in p.stdout, p.stdout)
    p = sdtest.run(["-c", dx.conf, "--explain", "x.ads.test", "A"])
    check("blocked" in p.stdout, p.stdout)


tap.run("the daemon refuses 127.0.0.2 (outside access.allow) and blocks a "
        "local CNAME to a blocked name; --explain without --client",
        t_explain_existing)


def t_explain_client():
    check(dx is not None, "no daemon")
    upaddr = "127.0.0.1:%d" % up.port

    def explain(name, rdtype=None, client=None):
        args = ["-c", dx.conf, "--explain", name]
        if rdtype:
            args.append(rdtype)
        if client:
            args += ["--client", client]
        p = sdtest.run(args)
        eq(p.returncode, 0, "exit status of --explain %s (stderr %r)"
           % (" ".join(args[3:]), p.stderr))
        return p.stdout, p.stdout.lower()

    for client in ("127.0.0.1", "::1"):
        out, low = explain("h1.lan.test", "A", client)
        check("local" in low and "refused" not in low,
              "inside client %s, local name:\n%s" % (client, out))
        out, low = explain("www.example.net", "A", client)
        check(("forward" in low or "upstream" in low) and upaddr in out
              and "refused" not in low,
              "inside client %s, forwarded name:\n%s" % (client, out))
    for client in ("127.0.0.2", "192.0.2.1", "2001:db8::1"):
        for name in ("h1.lan.test", "www.example.net", "x.ads.test"):
            out, low = explain(name, "A", client)
            check("refused" in low, "client %s outside access.allow, %s: "
                  "not refused:\n%s" % (client, name, out))
            check("local data" not in low and upaddr not in out
                  and "blocked" not in low,
                  "client %s outside access.allow, %s: a route past the "
                  "access check:\n%s" % (client, name, out))
    out, low = explain("x.ads.test", "A", "127.0.0.1")
    check("blocked" in low and upaddr not in out, "blocked name:\n" + out)
    out, low = explain("a.secret.test", "A", "127.0.0.1")
    check("refused" in low and upaddr not in out, "refuse rule:\n" + out)
    # the drift of 0.1: the chased CNAME target was not checked against
    # the block lists (the daemon blocks it, see above)
    out, low = explain("trk.lan.test", "A", "127.0.0.1")
    check("blocked" in low, "CNAME to a blocked name: not blocked:\n" + out)
    check(upaddr not in out, "CNAME to a blocked name: a forward route "
          "is shown:\n" + out)
    out, low = explain("fwd.lan.test", "A", "127.0.0.1")
    check("local" in low and upaddr in out and "blocked" not in low,
          "CNAME to a forwarded name:\n" + out)
    p = sdtest.run(["-c", dx.conf, "--explain", "h1.lan.test", "A",
                    "--client", "not-an-address"])
    check(p.returncode != 0 and p.stderr.strip(),
          "--client not-an-address: status %d, stderr %r"
          % (p.returncode, p.stderr))
    dx.stop()


tap.run("--explain NAME TYPE --client ADDR: refused outside access.allow, "
        "the route inside it (local, forward, blocked, refuse rule), and a "
        "local CNAME whose target is blocked is shown blocked",
        t_explain_client)


# -------------------------------------------------------------- SIGTERM

def t_sigterm_in_flight():
    # query deadline: timeout_ms x tries = 4 s; the upstream takes 1 s
    d = daemon(conf(threads=2, timeout_ms=2000, tries=2))
    deadline = 4.0
    udp = [fwd(uniq("delay1000")) for _ in range(40)]
    tcp = [fwd(uniq("delay1000")) for _ in range(10)]
    uq = [make_query(mixcase(n), qid=qid)
          for (n, _), qid in zip(udp, unique_ids(40))]
    tq = [make_query(mixcase(n), qid=qid)
          for (n, _), qid in zip(tcp, unique_ids(10))]
    got_udp = []
    got_tcp = [None] * len(tq)

    def tcp_one(i):
        got_tcp[i] = tcp_pipelined([tq[i]], d.port, timeout=8)[0]

    threads = [threading.Thread(target=tcp_one, args=(i,))
               for i in range(len(tq))]
    threads.append(threading.Thread(target=lambda: got_udp.extend(
        udp_exchange(uq, d.port, timeout=8))))
    for t in threads:
        t.start()
    names = [n for n, _ in udp + tcp]
    check(wait_for(lambda: all(up.saw(n) for n in names), 0.9),
          "not every query reached the upstream before SIGTERM")
    t_term = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(timeout=deadline + 1.0)
    except Exception:
        raise AssertionError("no exit within %.1fs of SIGTERM" %
                             (deadline + 1.0))
    exit_after = time.monotonic() - t_term
    d.stopped = True
    for t in threads:
        t.join(10)
    all_right([(q, w) for q, (_, w) in zip(uq, udp)],
              [r for r, _ in got_udp], "UDP queries in flight at SIGTERM")
    all_right([(q, w) for q, (_, w) in zip(tq, tcp)], got_tcp,
              "TCP queries in flight at SIGTERM")
    eq(rc, 0, "exit status after SIGTERM (stderr %s)" % d.stderr()[-2000:])
    check(not sdtest.SANITIZER_RE.search(d.stderr()), "sanitizer report:\n"
          + d.stderr()[-4000:])
    tap.diag("exit %.2fs after SIGTERM" % exit_after)


tap.run("SIGTERM with 50 queries in flight to a 1 s upstream: every one "
        "answered right, exit status 0 within the query deadline",
        t_sigterm_in_flight)

# ---------------------------------------------------------------------------
# SO_REUSEPORT must not let a second daemon share our addresses

def t_second_daemon():
    d = daemon(conf(threads=2))
    p = subprocess.run([sdtest.SPLITDNS, "-c", d.conf], capture_output=True,
                       text=True, timeout=10)
    check(p.returncode == 1, "a second daemon on the same addresses "
          "started (exit %r): %s" % (p.returncode, p.stderr[-500:]))
    check("Address already in use" in p.stderr, "no clear error: %r"
          % p.stderr[-500:])
    q, r, t = ask_on(client_socket(), "h1.lan.test", d.port)
    eq(r.rcode(), 0, "the first daemon still answers")
    d.stop()


tap.run("threads = 2: a second daemon on the same addresses exits 1 with "
        "'Address already in use' (SO_REUSEPORT shares only among our "
        "workers)", t_second_daemon)

tap.done()
