#!/usr/bin/python3
"""The reply cache: hits answered locally with the client's ID and case and
aged TTLs, negative caching, what is not cached, bounds, and reloads that
keep it (or clear it when the upstreams change)."""
import signal
import time

import dns.flags
import dns.rdatatype

from harness import Daemon, Upstream, done, eq, query, rcode, test, texts

up = Upstream()
up2 = Upstream()
CONF = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 300; tries = 2; };
zones = [%s];
cache: { size = %d; max_ttl = 100; negative_ttl = 50; };
%s
'''
ZONE = 'origin = "later.example";\nrecords = ( { name = "www"; type = "A"; data = "10.9.9.9"; } );\n'


def conf(port=None, zones="", size=1000, extra=""):
    return CONF % (port or up.port, zones, size, extra)


d = Daemon(conf(), files={"later.zone": ZONE})
P = d.port


def count(u, name):
    return len(u.saw(name))


@test
def t_hit():
    """a repeated query is answered from the cache: one upstream query"""
    up.clear()
    q1, r1 = query("www.example.net", port=P, qid=1)
    q2, r2 = query("www.example.net", port=P, qid=2, tcp=True)
    q3, r3 = query("WWW.Example.NET", port=P, qid=3, addr="::1")
    eq(count(up, "www.example.net"), 1, "upstream queries")
    eq(texts(r1), texts(r2))
    eq(r3.id, 3, "client's ID")
    eq(r3.question[0].name.to_text(), "WWW.Example.NET.", "client's spelling")
    eq(texts(r3), texts(r1))


@test
def t_ttl_ages():
    """cached TTLs go down with time spent in the cache; max_ttl caps them"""
    q, r1 = query("ages.example.net", port=P)
    eq(r1.answer[0].ttl, 100, "300 capped by max_ttl")
    time.sleep(2.1)
    q, r2 = query("ages.example.net", port=P)
    assert 97 <= r2.answer[0].ttl <= 98, r2.answer[0].ttl


@test
def t_negative():
    """NXDOMAIN is cached for min(SOA TTL, minimum, negative_ttl)"""
    up.clear()
    for i in range(3):
        q, r = query("nx.example.net", port=P)
        eq(rcode(r), "NXDOMAIN")
        eq(r.authority[0].rdtype, dns.rdatatype.SOA)
    eq(count(up, "nx.example.net"), 1)
    assert r.authority[0].ttl <= 50


@test
def t_not_cached():
    """SERVFAIL and truncated replies are not cached"""
    up.clear()
    for i in range(2):
        q, r = query("servfail.example.net", port=P)
        eq(rcode(r), "SERVFAIL")
    assert count(up, "servfail.example.net") >= 2
    up.clear()
    for i in range(2):
        q, r = query("big.example.net", "TXT", port=P, use_edns=False)
        assert r.flags & dns.flags.TC
    assert count(up, "big.example.net") >= 2


@test
def t_keys():
    """EDNS, DO and CD make different cache entries"""
    up.clear()
    query("keys.example.net", port=P, use_edns=False)
    q, r = query("keys.example.net", port=P, use_edns=0)
    eq(r.edns, 0, "an EDNS client gets an OPT")
    q, r = query("keys.example.net", port=P, use_edns=False)
    eq(r.edns, -1, "a plain client gets none")
    query("keys.example.net", port=P, use_edns=0, want_dnssec=True)
    eq(count(up, "keys.example.net"), 3, "three keys")


@test
def t_reload_keeps():
    """a reload that keeps the upstreams keeps the cache; new local data wins"""
    query("www.later.example", port=P)
    query("kept.example.net", port=P)
    up.clear()
    d.write("splitdns.conf", conf(zones='"later.zone"').replace(
        "@LISTEN@", '["127.0.0.1:%d", "[::1]:%d"]' % (P, P)))
    d.signal(signal.SIGHUP)
    time.sleep(0.4)
    q, r = query("kept.example.net", port=P)
    eq(count(up, "kept.example.net"), 0, "answered from the cache after reload")
    q, r = query("www.later.example", port=P)
    eq(texts(r), ["www.later.example. A 10.9.9.9"], "the new zone beats the cache")


@test
def t_reload_clears():
    """a reload with other upstream servers clears the cache"""
    d.write("splitdns.conf", conf(port=up2.port).replace(
        "@LISTEN@", '["127.0.0.1:%d", "[::1]:%d"]' % (P, P)))
    d.signal(signal.SIGHUP)
    time.sleep(0.4)
    up2.clear()
    query("kept.example.net", port=P)
    eq(count(up2, "kept.example.net"), 1, "asked the new upstream")


@test
def t_bounds():
    """size bounds the entries (least recently used goes); size = 0 disables"""
    d2 = Daemon(conf(size=2))
    try:
        up.clear()
        for n in ("a", "b", "a", "c", "a", "b"):
            query("%s.lru.example.net" % n, port=d2.port)
        eq(count(up, "a.lru.example.net"), 1, "a stayed (recently used)")
        eq(count(up, "b.lru.example.net"), 2, "b was evicted by c")
    finally:
        d2.stop()
    d3 = Daemon(conf(size=0))
    try:
        up.clear()
        for i in range(3):
            query("off.example.net", port=d3.port)
        eq(count(up, "off.example.net"), 3)
    finally:
        d3.stop()


@test
def t_reload_rebind():
    """a cached private answer is not served once a reload turns rebind protection on"""
    d4 = Daemon(conf(extra="rebind_protection = false;"))
    try:
        q, r = query("private.rebind.example", port=d4.port)
        eq(texts(r), ["private.rebind.example. A 192.168.1.1"])
        d4.write("splitdns.conf", conf(extra="rebind_protection = true;").replace(
            "@LISTEN@", '["127.0.0.1:%d", "[::1]:%d"]' % (d4.port, d4.port)))
        d4.signal(signal.SIGHUP)
        time.sleep(0.4)
        q, r = query("private.rebind.example", port=d4.port)
        eq(rcode(r), "NXDOMAIN")
    finally:
        d4.stop()


@test
def t_reload_in_flight():
    """an answer from the old servers that arrives after a reload is not cached"""
    d5 = Daemon(conf())
    try:
        import threading
        t = threading.Thread(target=lambda: query("slow.flight.example", port=d5.port,
                                                  timeout=3))
        t.start()
        time.sleep(0.1)
        d5.write("splitdns.conf", conf(port=up2.port).replace(
            "@LISTEN@", '["127.0.0.1:%d", "[::1]:%d"]' % (d5.port, d5.port)))
        d5.signal(signal.SIGHUP)
        t.join()
        up2.clear()
        query("slow.flight.example", port=d5.port, timeout=3)
        assert count(up2, "slow.flight.example") >= 1, "the new server was asked"
    finally:
        d5.stop()


@test
def t_negative_ceiling():
    """negative_ttl = 0 keeps no negative answer, whatever min_ttl says"""
    d6 = Daemon(conf(extra="").replace("negative_ttl = 50;",
                                       "negative_ttl = 0; min_ttl = 60;"))
    try:
        up.clear()
        for i in range(2):
            q, r = query("nx.ceiling.example", port=d6.port)
            eq(rcode(r), "NXDOMAIN")
        eq(count(up, "nx.ceiling.example"), 2)
    finally:
        d6.stop()


@test
def t_cname_nodata():
    """a CNAME then NODATA lives for the negative TTL, and min_ttl raises
    neither it nor its SOA (RFC 2308; issue 8, defect 3)"""
    d7 = Daemon(conf().replace("max_ttl = 100;", "max_ttl = 100; min_ttl = 60;"))
    try:
        up.clear()
        q, r = query("cnamenodata.example.net", port=d7.port)
        eq(rcode(r), "NOERROR")
        eq([x.rdtype for x in r.answer], [dns.rdatatype.CNAME])
        eq(r.authority[0].rdtype, dns.rdatatype.SOA)
        assert r.authority[0].ttl <= 2, "SOA TTL %d" % r.authority[0].ttl
        assert r.answer[0].ttl <= 2, "CNAME TTL %d" % r.answer[0].ttl
        q, r = query("cnamenodata.example.net", port=d7.port)
        eq(count(up, "cnamenodata.example.net"), 1, "the second from the cache")
        assert r.authority[0].ttl <= 2, "cached SOA TTL %d" % r.authority[0].ttl
        time.sleep(2.2)
        query("cnamenodata.example.net", port=d7.port)
        eq(count(up, "cnamenodata.example.net"), 2, "expired after 2 s")
    finally:
        d7.stop()


@test
def t_huge_ttl():
    """a reply with a TTL of 2^31 is not kept, min_ttl or not (RFC 2181 8;
    issue 8, defect 4)"""
    d8 = Daemon(conf().replace("max_ttl = 100;", "max_ttl = 100; min_ttl = 60;"))
    try:
        up.clear()
        for i in range(2):
            q, r = query("hugettl.example.net", port=d8.port)
            eq(rcode(r), "NOERROR")
            assert r.answer[0].ttl != 60, "TTL turned into min_ttl"
        eq(count(up, "hugettl.example.net"), 2, "asked upstream twice")
    finally:
        d8.stop()


@test
def t_stop():
    """clean exit with a full cache"""
    d.stop()
    up.stop()
    up2.stop()


done()
