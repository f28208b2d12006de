#!/usr/bin/python3
"""Forwarding through c-ares to a real (scripted) upstream: IDs, EDNS,
failures, truncation, TCP framing, pipelining, idle timeout, connection cap."""
import socket
import struct
import subprocess
import time

import dns.edns
import dns.flags
import dns.message
import dns.rdatatype

from harness import (Daemon, Upstream, done, eq, query, raw_udp, rcode, tcp_connect,
                    tcp_recv, tcp_send, test, texts)

up = Upstream()
d = Daemon('''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d", "[::1]:%d"]; timeout_ms = 300; tries = 2; };
tcp: { max_connections = 4; idle_timeout_ms = 1000; };
''' % (up.port, up.port))
P = d.port
TRANSPORTS = [(a, t) for a in ("127.0.0.1", "::1") for t in (False, True)]


@test
def t_forwarded():
    """names without local data are relayed and answered, UDP and TCP, v4 and v6"""
    for addr, tcp in TRANSPORTS:
        q, r = query("host.example.net", port=P, addr=addr, tcp=tcp)
        eq(rcode(r), "NOERROR")
        eq(len(texts(r)), 1, "answer from upstream (%s %s)" % (addr, tcp))
        q, r = query("host.example.net", "AAAA", port=P, addr=addr, tcp=tcp)
        assert texts(r)[0].startswith("host.example.net. AAAA 2001:db8::")


@test
def t_ids():
    """the upstream sees our own random ID; the client gets its own back"""
    seen = []
    for i in range(12):
        for j, (addr, tcp) in enumerate(TRANSPORTS):
            qid = (i * 977 + 5) & 0xffff
            # A name per query: the cache would answer repeats itself.
            q, r = query("id%d-%d.example.net" % (i, j), "TXT", port=P, addr=addr,
                         tcp=tcp, qid=qid)
            eq(r.id, qid, "client ID restored")
    up_ids = [int(x[1]) for x in up.queries() if x[2].startswith("id")]
    assert len(up_ids) >= 48, "upstream queries: %d" % len(up_ids)
    client_ids = {(i * 977 + 5) & 0xffff for i in range(12)}
    same = [x for x in up_ids if x in client_ids]
    assert len(same) <= 2, "upstream saw the client's IDs: %r" % same


@test
def t_id_in_answer():
    """the ID the upstream saw differs from the client's (id.* echoes it)"""
    differ = 0
    for i in range(8):
        q, r = query("id.example.net", "TXT", port=P, qid=4242 + i)
        eq(r.id, 4242 + i)
        upstream_id = int(r.answer[0][0].strings[0])
        differ += upstream_id != r.id
    assert differ >= 7, "upstream IDs equal to the client's"


@test
def t_edns_travels():
    """the client's OPT is hop-by-hop (RFC 6891 6.1.1): upstream gets ours,
    with our size and the client's DO, and none of its options (no client
    subnet, no cookie)"""
    q, r = query("edns.example.net", "TXT", port=P, use_edns=0, payload=3000,
                 want_dnssec=True,
                 options=[dns.edns.GenericOption(65001, b"hello"),
                          dns.edns.ECSOption("192.0.2.0", 24),
                          dns.edns.GenericOption(10, b"12345678")])
    txt = r.answer[0][0].strings[0].decode()
    eq(txt, "opt=1 size=1232 do=1 opts=")
    q, r = query("edns.two.example.net", "TXT", port=P, use_edns=0, payload=512,
                 want_dnssec=False)
    eq(r.answer[0][0].strings[0].decode(), "opt=1 size=1232 do=0 opts=")
    q, r = query("edns.example.net", "TXT", port=P, use_edns=False)
    eq(r.answer[0][0].strings[0].decode(), "opt=0 size=0 do=0 opts=")
    eq(r.edns, -1, "no OPT back without one")


@test
def t_cookie_stripped():
    """an upstream's EDNS COOKIE is not relayed"""
    q, r = query("cookie.example.net", port=P, use_edns=0)
    eq([o.otype for o in r.options], [], "options")
    eq(len(r.answer), 1)


@test
def t_nsid_stripped():
    """an upstream's NSID is neither relayed nor cached, whether the client
    asked for one or not (RFC 5001 2.1; issue 8, defect 6)"""
    for i in range(2):
        q, r = query("nsid.example.net", port=P, use_edns=0)
        eq([o.otype for o in r.options], [], "options, plain query %d" % i)
        eq(len(r.answer), 1)
        q, r = query("nsid.example.net", port=P, use_edns=0,
                     options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")])
        eq([o.otype for o in r.options], [], "options, NSID asked %d" % i)


@test
def t_nxdomain_relayed():
    """NXDOMAIN and its SOA pass through"""
    q, r = query("nx.example.net", port=P)
    eq(rcode(r), "NXDOMAIN")
    eq(r.authority[0].rdtype, dns.rdatatype.SOA)


def servfail_within(name, limit, **kw):
    t0 = time.time()
    q, r = query(name, port=P, timeout=5, **kw)
    took = time.time() - t0
    eq(rcode(r), "SERVFAIL", name)
    eq(r.id, q.id)
    eq(r.question[0].name, q.question[0].name, "question echoed")
    assert took < limit, "%s took %.2f s" % (name, took)
    return took


@test
def t_failures():
    """timeout, SERVFAIL, REFUSED, garbage, wrong ID, QR=0, other question,
    short reply: SERVFAIL with the client's ID and question, in time"""
    for tcp in (False, True):
        servfail_within("timeout.example.net", 1.5, tcp=tcp)
        for bad in ("servfail", "refused", "garbage", "wrongid", "noqr", "badq", "short"):
            servfail_within(bad + ".example.net", 1.5, tcp=tcp)


@test
def t_malformed_servfail():
    """a reply no client could parse is answered SERVFAIL, not relayed: an
    OPT not owned by the root (RFC 6891 6.1.1), an owner name pointing at
    itself, ANCOUNT 65535 with one answer (issue 8, defects 5 and 13)"""
    for tcp in (False, True):
        for bad in ("optowner", "selfptr", "manycount"):
            servfail_within(bad + ".example.net", 1.5, tcp=tcp, use_edns=0)


@test
def t_truncation_udp():
    """a reply over the client's UDP size is cut with TC=1, keeping the ID"""
    q, r = query("big.example.net", "TXT", port=P, use_edns=False)
    assert r.flags & dns.flags.TC, "TC"
    eq(len(r.answer), 0)
    assert len(r.to_wire()) <= 512
    q, r = query("big.example.net", "TXT", port=P, use_edns=0, payload=1232)
    assert r.flags & dns.flags.TC, "TC with EDNS 1232"
    eq(r.edns, 0, "OPT kept")
    q, r = query("big.example.net", "TXT", port=P, use_edns=0, payload=4096)
    assert r.flags & dns.flags.TC, "client's 4096 is capped by our 1232"
    q, r = query("mid.example.net", "TXT", port=P, use_edns=0, payload=1232)
    assert not r.flags & dns.flags.TC, "800 bytes fit 1232"
    eq(len(r.answer[0]), 3)
    q, r = query("mid.example.net", "TXT", port=P, use_edns=False)
    assert r.flags & dns.flags.TC, "800 bytes do not fit 512"


@test
def t_truncation_tcp():
    """TCP clients get the whole reply"""
    for addr in ("127.0.0.1", "::1"):
        q, r = query("big.example.net", "TXT", port=P, addr=addr, tcp=True, use_edns=False)
        assert not r.flags & dns.flags.TC
        eq(len(r.answer[0]), 12)


@test
def t_dig_retries_tcp():
    """dig falls back to TCP on TC=1 and gets the whole answer"""
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(P), "+noedns", "big.example.net",
                          "TXT"], capture_output=True, text=True, timeout=20).stdout
    assert "Truncated, retrying in TCP mode" in out, out
    assert "ANSWER: 12," in out, out


@test
def t_pipelining():
    """several queries on one TCP connection, answered as they complete"""
    s = tcp_connect(P)
    names = ["slow.example.net.", "a.example.net.", "b.example.net.", "c.example.net."]
    ids = {}
    for i, n in enumerate(names):
        m = dns.message.make_query(n, "A")
        m.id = 100 + i
        ids[m.id] = n
        tcp_send(s, m.to_wire())
    got = []
    for _ in names:
        r = dns.message.from_wire(tcp_recv(s))
        eq(r.question[0].name.to_text(), ids[r.id], "question matches ID")
        got.append(r.id)
    s.close()
    eq(sorted(got), sorted(ids))
    assert got[-1] == 100, "the slow answer came last: %r" % got


@test
def t_tcp_idle():
    """an idle TCP connection is closed after idle_timeout_ms"""
    s = tcp_connect(P, timeout=5)
    t0 = time.time()
    eq(s.recv(10), b"", "closed by the server")
    took = time.time() - t0
    assert 0.8 < took < 3, "closed after %.2f s" % took


@test
def t_tcp_cap():
    """connections past max_connections are closed at once"""
    conns = [tcp_connect(P) for _ in range(4)]
    time.sleep(0.2)
    extra = tcp_connect(P)
    extra.settimeout(2)
    try:
        data = extra.recv(10)
    except ConnectionResetError:
        data = b""
    eq(data, b"", "the fifth connection is closed")
    m = dns.message.make_query("host.example.net", "A")
    tcp_send(conns[0], m.to_wire())
    eq(dns.message.from_wire(tcp_recv(conns[0])).id, m.id, "the first four still work")
    for c in conns + [extra]:
        c.close()


@test
def t_partial_frames():
    """a TCP query split into single bytes is still answered"""
    s = tcp_connect(P)
    m = dns.message.make_query("host.example.net", "A")
    data = struct.pack("!H", len(m.to_wire())) + m.to_wire()
    for b in data:
        s.send(bytes([b]))
        time.sleep(0.002)
    eq(dns.message.from_wire(tcp_recv(s)).id, m.id)
    s.close()


@test
def t_upstream_down():
    """no upstream at all: SERVFAIL within the deadline, then a clean exit"""
    up2 = Upstream()
    d2 = Daemon('''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 200; tries = 2; };''' % up2.port)
    up2.stop()
    q, r = query("host.example.net", port=d2.port, timeout=5)
    eq(rcode(r), "SERVFAIL")
    d2.stop()


@test
def t_stop():
    """SIGTERM with queries in flight: exit status 0, nothing leaked"""
    for i in range(5):
        raw_udp(dns.message.make_query("timeout%d.example.net" % i, "A").to_wire(), P,
                timeout=0.01)
    d.stop()
    up.stop()


done()
