#!/usr/bin/python3
"""t_forward.py - forwarding through the daemon to the test upstream (TAP).

Two daemons share one upstream (tests/upstream.py on 127.0.0.1 and ::1):
  d   upstream 127.0.0.1, timeout_ms=300 tries=2, edns_size 1232 (default),
      tcp max_connections=5, idle_timeout_ms=1000
  d6  upstream [::1], timeout_ms=1000 tries=2, edns_size 4096
Every forwarded name is fresh (sdtest.uniq) so no cache can answer it.
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.rdatatype  # noqa: E402

import sdtest  # noqa: E402
from sdtest import (TRANSPORTS, V4, V6, ask, ask_wire, check,  # noqa: E402
                    check_reply, eq, frame, make_query, opt_codes,
                    parse, rcode, rrs, tcp_connect, tcp_read, uniq)
import upstream as up_mod  # noqa: E402

TIMEOUT_MS = 300
TRIES = 2
DEADLINE = TIMEOUT_MS * TRIES / 1000.0   # SPEC: SERVFAIL by then at the latest
SLACK = 0.4                              # scheduling, process start-up

LAN = r'''origin = "lan.test";
authoritative = true;
records = ( { name = "box"; type = "A"; data = "10.1.1.1"; } );
'''

tap = sdtest.TAP()
up = d = d6 = None


def start():
    global up, d, d6
    up = sdtest.Upstream()
    tap.at_end(up.stop)
    d = sdtest.Daemon(zones={"lan.zone": LAN},
                      servers=["127.0.0.1:%d" % up.port],
                      timeout_ms=TIMEOUT_MS, tries=TRIES,
                      max_connections=5, idle_timeout_ms=1000)
    d6 = sdtest.Daemon(zones={"lan.zone": LAN},
                       servers=["[::1]:%d" % up.port],
                       timeout_ms=1000, tries=2, edns_size=4096)


tap.run("upstream and two daemons start", start)
if d is None or d6 is None:
    tap.done()
P = d.port
P6 = d6.port


def a_rr(name):
    return "%s. 300 A %s" % (name.lower(), up_mod.address_for(name))


def aaaa_rr(name):
    return "%s. 300 AAAA %s" % (name.lower(), up_mod.address6_for(name))


def txt_of(r):
    check(r.answer, "empty answer")
    return b"".join(r.answer[0][0].strings).decode()


# ---------------------------------------------------------------- basics

def t_forward_basic():
    for addr, proto in TRANSPORTS:
        name = uniq("Host", "Example.NET")
        q = make_query(name, "A")
        r = ask(q, P, addr, proto)
        check_reply(r, q, aa=False)
        eq(rrs(r.answer), [a_rr(name)], "answer over %s/%s" % (addr, proto))
        check(up.saw(name, "A"), "upstream did not see %s" % name)
        q = make_query(name, "AAAA")
        r = ask(q, P, addr, proto)
        check_reply(r, q, aa=False)
        eq(rrs(r.answer), [aaaa_rr(name)], "AAAA over %s/%s" % (addr, proto))


def t_forward_v6_upstream():
    for addr, proto in TRANSPORTS:
        name = uniq("host")
        q = make_query(name, "A")
        r = ask(q, P6, addr, proto)
        check_reply(r, q, aa=False)
        eq(rrs(r.answer), [a_rr(name)], "answer over %s/%s" % (addr, proto))


def t_forward_nxdomain():
    for proto in ("udp", "tcp"):
        name = uniq("nx")
        q = make_query(name, "A")
        r = ask(q, P, V4, proto)
        check_reply(r, q, rc="NXDOMAIN", aa=False)
        zone = name.split(".", 1)[1] + "."
        eq(rrs(r.authority), ["%s 60 SOA ns.%s hostmaster.%s 1 3600 600 86400 60"
                              % (zone, zone, zone)], "authority")


def t_upstream_case():
    """The upstream answers in another letter case: still an answer, and the
    client gets its own case back in the question."""
    for addr, proto in TRANSPORTS:
        name = uniq("UpCase", "Example.Net")
        q = make_query(name, "A")
        wire, r = ask_wire(q, P, addr, proto)
        check_reply(r, q, aa=False)
        eq(rrs(r.answer), [a_rr(name)], "answer over %s/%s" % (addr, proto))
        check(q.question[0].name.to_wire() in wire[12:],
              "the client's spelling of the name is not in the reply")


def t_ids():
    equal = []
    for addr, proto in TRANSPORTS:
        for qid in (0, 7, 0x1234, 0xFFFF):
            name = uniq("id")
            q = make_query(name, "TXT", qid=qid)
            r = ask(q, P, addr, proto)
            check_reply(r, q, aa=False)
            upstream_id = int(txt_of(r))
            logged = up.saw(name, "TXT")
            check(logged, "upstream log lacks %s" % name)
            eq(logged[0]["id"], upstream_id, "ID in the upstream log vs TXT")
            if upstream_id == qid:
                equal.append((addr, proto, qid))
    # c-ares picks random IDs: one coincidence in 16 is already 1/4000
    check(len(equal) <= 1, "upstream saw the client's own ID: %r" % equal)


def t_ids_differ_per_query():
    seen = set()
    for i in range(6):
        q = make_query(uniq("id"), "TXT", qid=4242)
        r = ask(q, P)
        eq(r.id, 4242, "reply ID")
        seen.add(int(txt_of(r)))
    check(len(seen) >= 5, "upstream IDs not random: %r" % sorted(seen))


def t_edns_travels():
    opts = [dns.edns.GenericOption(3, b""),
            dns.edns.GenericOption(65001, b"hello")]
    for addr, proto in TRANSPORTS:
        q = make_query(uniq("edns"), "TXT", edns=0, payload=1400, do=True,
                       options=opts)
        r = ask(q, P, addr, proto)
        check_reply(r, q, aa=False)
        # RFC 6891 6.1.1: hop-by-hop; our size, the client's DO, none of
        # its options
        eq(txt_of(r), "opt=1 size=1232 do=1 opts=",
           "OPT seen upstream over %s/%s" % (addr, proto))
        eq(r.edns, 0, "reply has an OPT")
        q = make_query(uniq("edns"), "TXT", edns=0, payload=4096, do=False)
        r = ask(q, P, addr, proto)
        eq(txt_of(r), "opt=1 size=1232 do=0 opts=", "OPT without DO")
        check(not r.ednsflags & dns.flags.DO, "DO set in the reply")
        q = make_query(uniq("edns"), "TXT")
        r = ask(q, P, addr, proto)
        eq(txt_of(r), "opt=0 size=0 do=0 opts=", "no OPT upstream")
        eq(r.edns, -1, "reply without OPT")


def t_cookie_stripped():
    client_cookie = dns.edns.GenericOption(10, b"\x11\x22\x33\x44\x55\x66\x77\x88")
    for addr, proto in TRANSPORTS:
        name = uniq("cookie")
        q = make_query(name, "A", edns=0, options=[client_cookie])
        r = ask(q, P, addr, proto)
        check_reply(r, q, aa=False)
        eq(rrs(r.answer), [a_rr(name)], "answer")
        eq(r.edns, 0, "reply has an OPT")
        check(10 not in opt_codes(r), "COOKIE option not stripped over %s/%s: %r"
              % (addr, proto, opt_codes(r)))
        logged = up.saw(name)
        check(logged and "opts=10" not in logged[0]["raw"],
              "client's cookie travelled upstream: %r" % logged)
        # without a client cookie the upstream still adds one
        name = uniq("cookie")
        q = make_query(name, "A", edns=0)
        r = ask(q, P, addr, proto)
        check(10 not in opt_codes(r), "COOKIE option not stripped")
        eq(rrs(r.answer), [a_rr(name)], "answer")


# ---------------------------------------------------------------- failures

def servfail(label, addr=V4, proto="udp", edns=None):
    name = uniq(label.capitalize(), "Example.Net")
    q = make_query(name, "A", edns=edns)
    t0 = time.monotonic()
    r = ask(q, P, addr, proto, timeout=DEADLINE + 2)
    took = time.monotonic() - t0
    check_reply(r, q, rc="SERVFAIL", aa=False)
    eq(len(r.answer), 0, "answer records")
    check(took <= DEADLINE + SLACK,
          "SERVFAIL after %.2fs, more than timeout_ms*tries=%.1fs (+%.1fs)"
          % (took, DEADLINE, SLACK))
    if edns is not None:
        eq(r.edns, 0, "OPT in the SERVFAIL reply to a query with OPT")
    check(up.saw(name), "the upstream never saw %s" % name)
    return took


def t_fail(label):
    def fn():
        took = servfail(label)
        tap.diag("%s: SERVFAIL after %.3fs" % (label, took))
    return fn


def t_fail_transports():
    for addr, proto in TRANSPORTS:
        servfail("timeout", addr, proto)
    servfail("timeout", edns=0)
    servfail("garbage", V6, "tcp", edns=0)


def t_timeout_tries():
    name = uniq("timeout")
    q = make_query(name, "A")
    r = ask(q, P, timeout=DEADLINE + 2)
    eq(rcode(r), "SERVFAIL", "rcode")
    time.sleep(0.1)
    n = len(up.saw(name))
    check(1 <= n <= TRIES, "upstream saw %d tries, tries = %d" % (n, TRIES))


def t_after_failures():
    """The daemon still forwards normally after all that."""
    name = uniq("host")
    q = make_query(name, "A")
    r = ask(q, P)
    check_reply(r, q)
    eq(rrs(r.answer), [a_rr(name)], "answer")


# -------------------------------------------------------------- truncation

def check_truncated(wire, r, q, limit, with_opt):
    check_reply(r, q, rc="NOERROR", tc=True)
    check(len(wire) <= limit, "truncated reply of %d bytes > %d" % (len(wire), limit))
    eq(len(r.answer) + len(r.authority), 0, "records in a truncated reply")
    eq(r.edns, 0 if with_opt else -1, "OPT in the truncated reply")


def t_trunc_noedns():
    for addr in (V4, V6):
        for rdtype in ("A", "TXT"):
            q = make_query(uniq("big"), rdtype)
            wire, r = ask_wire(q, P, addr, "udp")
            check_truncated(wire, r, q, 512, False)


def t_trunc_edns():
    for payload in (1232, 4096):
        q = make_query(uniq("big"), "TXT", edns=0, payload=payload)
        wire, r = ask_wire(q, P, V4, "udp")
        check_truncated(wire, r, q, 1232, True)


def t_mid():
    name = uniq("mid")
    q = make_query(name, "A", edns=0, payload=1232)
    wire, r = ask_wire(q, P, V4, "udp")
    check_reply(r, q)
    check(len(wire) > 512, "mid reply only %d bytes" % len(wire))
    eq(len(r.answer[0]), 48, "records")
    q = make_query(uniq("mid"), "A")
    wire, r = ask_wire(q, P, V6, "udp")
    check_truncated(wire, r, q, 512, False)


def t_small_payload_floor():
    # an OPT size below 512 still allows 512 bytes
    name = uniq("half")
    q = make_query(name, "A", edns=0, payload=100)
    wire, r = ask_wire(q, P, V4, "udp")
    check_reply(r, q)
    check(100 < len(wire) <= 512, "reply size %d" % len(wire))
    eq(len(r.answer[0]), 20, "records")


def t_full_udp_4096():
    name = uniq("big")
    q = make_query(name, "A", edns=0, payload=4096)
    wire, r = ask_wire(q, P6, V4, "udp")
    check_reply(r, q)
    check(len(wire) > 3000, "reply only %d bytes" % len(wire))
    eq(rrs(r.answer), sorted("%s. 300 A %s" % (name.lower(), a) for a in
                             up_mod.big_rdatas("big", dns.rdatatype.A)), "answer")
    q = make_query(uniq("big"), "A", edns=0, payload=1500)
    wire, r = ask_wire(q, P6, V4, "udp")
    check_truncated(wire, r, q, 1500, True)


def t_big_tcp():
    for addr in (V4, V6):
        for rdtype in ("A", "TXT"):
            name = uniq("big")
            q = make_query(name, rdtype)
            wire, r = ask_wire(q, P, addr, "tcp")
            check_reply(r, q)
            want = sorted("%s. 300 %s %s" % (name.lower(), rdtype, x) for x in
                          up_mod.big_rdatas("big", dns.rdatatype.from_text(rdtype)))
            eq(rrs(r.answer), want, "answer over %s" % addr)
            check(len(wire) > 2900, "reply only %d bytes" % len(wire))


def t_dig_tcp_retry():
    name = uniq("big")
    rc, out = sdtest.dig(["+tries=1", "+time=3", "@127.0.0.1", "-p", str(P),
                          name, "TXT"])
    eq(rc, 0, "dig exit status")
    check("Truncated, retrying in TCP mode" in out, "no TCP retry:\n" + out)
    check("status: NOERROR" in out and "ANSWER: 12," in out,
          "dig did not get the whole answer:\n" + out)
    eq(out.count('"%02d' % 11), 1, "last TXT string in dig output")


# -------------------------------------------------------------------- TCP

def t_pipelining():
    s = tcp_connect(P6, V4, timeout=3)
    try:
        qs = [make_query(uniq("slow"), "A", qid=100),
              make_query(uniq("id"), "TXT", qid=101),
              make_query(uniq("host"), "A", qid=102),
              make_query("box.lan.test", "A", qid=103),
              make_query(uniq("host"), "AAAA", qid=104),
              make_query(uniq("nx"), "A", qid=105)]
        t0 = time.monotonic()
        s.sendall(b"".join(frame(q.to_wire()) for q in qs))
        got = {}
        order = []
        while len(got) < len(qs):
            wire = tcp_read(s)
            check(wire is not None, "connection closed after %d replies" % len(got))
            r = parse(wire)
            check(r.id not in got, "two replies with ID %d" % r.id)
            got[r.id] = r
            order.append(r.id)
        took = time.monotonic() - t0
    finally:
        s.close()
    tap.diag("reply order %r in %.2fs" % (order, took))
    byid = {q.id: q for q in qs}
    for qid, r in got.items():
        check(qid in byid, "reply with unknown ID %d" % qid)
    q = byid[100]
    check_reply(got[100], q)
    eq(rrs(got[100].answer), [a_rr(q.question[0].name.to_text()[:-1])], "slow")
    check_reply(got[101], byid[101])
    int(txt_of(got[101]))
    check_reply(got[102], byid[102])
    eq(rrs(got[102].answer), [a_rr(byid[102].question[0].name.to_text()[:-1])],
       "host A")
    check_reply(got[103], byid[103], aa=True)
    eq(rrs(got[103].answer), ["box.lan.test. 300 A 10.1.1.1"], "local")
    check_reply(got[104], byid[104])
    check_reply(got[105], byid[105], rc="NXDOMAIN")
    check(took < 1.5, "pipelined replies took %.2fs" % took)


def t_pipelining_split_writes():
    """A message split over several writes, and two in one write."""
    s = tcp_connect(P, V4)
    try:
        q1 = make_query("box.lan.test", "A", qid=1)
        q2 = make_query("Box.Lan.Test", "A", qid=2)
        data = frame(q1.to_wire()) + frame(q2.to_wire())
        for i in range(0, len(data), 7):
            s.sendall(data[i:i + 7])
            time.sleep(0.005)
        r1 = parse(tcp_read(s))
        r2 = parse(tcp_read(s))
    finally:
        s.close()
    rs = {r1.id: r1, r2.id: r2}
    eq(sorted(rs), [1, 2], "reply IDs")
    check_reply(rs[1], q1, aa=True)
    check_reply(rs[2], q2, aa=True)


def t_idle_timeout():
    s = tcp_connect(P, V4, timeout=5)
    try:
        q = make_query("box.lan.test", "A")
        s.sendall(frame(q.to_wire()))
        check_reply(parse(tcp_read(s)), q, aa=True)
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            raise AssertionError("connection still open after 5s idle "
                                 "(idle_timeout_ms=1000)")
        took = time.monotonic() - t0
    finally:
        s.close()
    eq(data, b"", "data on an idle connection")
    check(0.8 <= took <= 2.5, "closed after %.2fs idle, idle_timeout_ms=1000"
          % took)
    tap.diag("idle connection closed after %.2fs" % took)


def t_idle_timeout_silent():
    s = tcp_connect(P, V6, timeout=5)
    t0 = time.monotonic()
    try:
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            raise AssertionError("silent connection still open after 5s")
    finally:
        s.close()
    took = time.monotonic() - t0
    eq(data, b"", "data on a silent connection")
    check(0.8 <= took <= 2.5, "closed after %.2fs, idle_timeout_ms=1000" % took)


def tcp_query_ok(s, qid):
    q = make_query("box.lan.test", "A", qid=qid)
    s.sendall(frame(q.to_wire()))
    r = parse(tcp_read(s))
    check_reply(r, q, aa=True)


def t_connection_cap():
    time.sleep(0.2)          # connections of earlier tests are gone
    conns = []
    try:
        for i in range(5):
            s = tcp_connect(P, V4 if i % 2 else V6, timeout=2)
            conns.append(s)
            tcp_query_ok(s, 1000 + i)
        extra = tcp_connect(P, V4, timeout=1.5)
        conns.append(extra)
        q = make_query("box.lan.test", "A", qid=2000)
        t0 = time.monotonic()
        try:
            extra.sendall(frame(q.to_wire()))
            got = extra.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        except socket.timeout:
            got = None
        took = time.monotonic() - t0
        check(got is not None, "the 6th connection (max_connections=5) was "
              "neither answered nor closed within 1.5s")
        eq(got, b"", "reply on the 6th connection (max_connections=5)")
        check(took < 0.5, "6th connection closed only after %.2fs" % took)
        # the first five still work
        for i, s in enumerate(conns[:5]):
            tcp_query_ok(s, 3000 + i)
        # closing one makes room for another
        conns[0].close()
        ok = False
        end = time.monotonic() + 0.6
        while time.monotonic() < end and not ok:
            time.sleep(0.05)
            s = tcp_connect(P, V4, timeout=1)
            conns.append(s)
            try:
                tcp_query_ok(s, 4000)
                ok = True
            except (AssertionError, OSError, socket.timeout):
                s.close()
        check(ok, "no new connection accepted after one of five closed")
    finally:
        for s in conns:
            s.close()


def t_tcp_garbage_length():
    """A frame longer than what follows, then EOF: no crash."""
    s = tcp_connect(P, V4)
    try:
        s.sendall(b"\x01\x00" + b"\x00" * 20)
        s.shutdown(socket.SHUT_WR)
        try:
            data = s.recv(100)
        except (socket.timeout, ConnectionResetError):
            data = b""
    finally:
        s.close()
    eq(data, b"", "reply to an incomplete frame")
    q = make_query("box.lan.test", "A")
    check_reply(ask(q, P, V4, "tcp"), q, aa=True)


def t_many_in_flight():
    """60 concurrent UDP queries, mixed slow and fast, all answered."""
    names = [uniq("slow" if i % 3 == 0 else "host") for i in range(60)]
    results = [None] * len(names)

    def worker(i):
        try:
            q = make_query(names[i], "A", qid=i + 1)
            r = ask(q, P6, V6 if i % 2 else V4, "udp", timeout=3)
            check_reply(r, q)
            eq(rrs(r.answer), [a_rr(names[i])], "answer")
            results[i] = True
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    bad = [(names[i], r) for i, r in enumerate(results) if r is not True]
    check(not bad, "%d of 60 failed, e.g. %r" % (len(bad), bad[:3]))


TESTS = [
    ("forwarded A/AAAA over UDP and TCP, v4 and v6, AA=0", t_forward_basic),
    ("forwarding to an IPv6 upstream", t_forward_v6_upstream),
    ("upstream NXDOMAIN passed through with its SOA", t_forward_nxdomain),
    ("upstream reply in another letter case: accepted, client's case echoed",
     t_upstream_case),
    ("client ID restored; the upstream saw another ID", t_ids),
    ("upstream IDs differ between queries", t_ids_differ_per_query),
    ("client's OPT is hop-by-hop: upstream gets our size, the client's DO, no options", t_edns_travels),
    ("EDNS COOKIE stripped both ways: the client's never goes upstream, the upstream's never comes back", t_cookie_stripped),
]
for label in ("timeout", "servfail", "refused", "garbage", "malformed",
              "wrongid", "noqr", "badq", "badop", "short"):
    TESTS.append(("upstream %s -> SERVFAIL, client ID and question, in time"
                  % label, t_fail(label)))
TESTS += [
    ("timeout -> SERVFAIL over every transport, with OPT", t_fail_transports),
    ("upstream tried at most `tries` times", t_timeout_tries),
    ("normal forwarding after failures", t_after_failures),
    ("big reply over UDP without EDNS: TC=1, <= 512 bytes", t_trunc_noedns),
    ("big reply over UDP with EDNS: TC=1 within min(client, edns_size), OPT kept",
     t_trunc_edns),
    ("mid reply (~800 bytes): whole with EDNS 1232, TC=1 without", t_mid),
    ("client OPT size below 512 still allows 512 bytes", t_small_payload_floor),
    ("edns_size 4096: a 3000-byte reply over UDP whole", t_full_udp_4096),
    ("big reply whole over TCP, v4 and v6", t_big_tcp),
    ("dig retries over TCP on TC=1 and gets the whole answer", t_dig_tcp_retry),
    ("TCP pipelining: six queries on one connection, slow one first", t_pipelining),
    ("TCP: messages split across writes", t_pipelining_split_writes),
    ("TCP idle timeout closes the connection after an answer", t_idle_timeout),
    ("TCP idle timeout closes a silent connection", t_idle_timeout_silent),
    ("TCP connection cap: further connections closed at once", t_connection_cap),
    ("TCP incomplete frame then EOF", t_tcp_garbage_length),
    ("60 queries in flight at once", t_many_in_flight),
]
for title, fn in TESTS:
    tap.run(title, fn)

tap.run("SIGTERM: daemon 1 exits 0, no sanitizer report", d.stop)
tap.run("SIGTERM: daemon 2 exits 0, no sanitizer report", d6.stop)
tap.done()
