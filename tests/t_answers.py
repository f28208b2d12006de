#!/usr/bin/python3
"""Local answers from zone files, through the real daemon, with dnspython."""
import dns.flags
import dns.rdatatype

from harness import Daemon, Upstream, done, eq, query, rcode, test, texts

HOME = r'''
origin = "home.lab";
ttl = 300;
authoritative = true;
records = (
  { name = "@";     type = "A";     data = "192.168.1.1"; },
  { name = "nas";   type = "A";     data = "192.168.1.10"; },
  { name = "nas";   type = "A";     data = "192.168.1.12"; },
  { name = "nas";   type = "AAAA";  data = "fd00::10"; },
  { name = "*.k8s"; type = "A";     data = "192.168.1.20"; },
  { name = "real.k8s"; type = "A";  data = "192.168.1.21"; },
  { name = "deep.sub.k8s"; type = "A"; data = "192.168.1.22"; },
  { name = "www";   type = "CNAME"; data = "nas"; },
  { name = "w2";    type = "CNAME"; data = "www"; },
  { name = "out";   type = "CNAME"; data = "host.example.net."; },
  { name = "loop1"; type = "CNAME"; data = "loop2"; },
  { name = "loop2"; type = "CNAME"; data = "loop1"; },
  { name = "gone";  type = "CNAME"; data = "nothere"; },
  { name = "@";     type = "MX";    data = "10 mail"; },
  { name = "@";     type = "NS";    data = "ns1"; },
  { name = "_ssh._tcp.nas"; type = "SRV"; data = "0 5 22 nas"; },
  { name = "@";     type = "TXT";   data = "v=spf1 -all"; ttl = 60; },
  { name = "multi"; type = "TXT";   data = "\"part one\" \"part two\""; },
  { name = "@";     type = "CAA";   data = "0 issue \"letsencrypt.org\""; },
  { name = "10.ptr"; type = "PTR";  data = "nas"; }
);
'''

OPEN = r'''
origin = "open.lab";
ttl = 120;
records = (
  { name = "known"; type = "A"; data = "10.0.0.1"; },
  { name = "@"; type = "SOA"; data = "ns.open.lab. admin.open.lab. 7 3600 600 86400 30"; }
);
'''

up = Upstream()
d = Daemon('''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 300; tries = 2; };
zones = ["home.zone", "open.zone"];
''' % up.port, zones={"home.zone": HOME, "open.zone": OPEN})
P = d.port


def both(name, rdtype="A", **kw):
    """The same query over UDP/v4, UDP/v6, TCP/v4, TCP/v6; returns the UDP/v4
    reply after checking all four answer alike."""
    replies = [query(name, rdtype, port=P, addr=a, tcp=t, **kw)[1]
               for a in ("127.0.0.1", "::1") for t in (False, True)]
    for r in replies[1:]:
        eq(texts(r), texts(replies[0]), "same answer over every transport")
        eq(r.rcode(), replies[0].rcode(), "same rcode")
    return replies[0]


@test
def t_a():
    """A records, several per name, AA set, over UDP and TCP, v4 and v6"""
    r = both("nas.home.lab")
    eq(texts(r), ["nas.home.lab. A 192.168.1.10", "nas.home.lab. A 192.168.1.12"])
    assert r.flags & dns.flags.AA, "AA not set"
    assert r.flags & dns.flags.RA, "RA not set"
    eq(r.answer[0].ttl, 300, "ttl")


@test
def t_aaaa():
    """AAAA record"""
    eq(texts(both("nas.home.lab", "AAAA")), ["nas.home.lab. AAAA fd00::10"])


@test
def t_case():
    """names match case-insensitively; the question keeps the client's case"""
    q, r = query("NaS.HoMe.LaB", port=P)
    eq(r.question[0].name.to_text(), "NaS.HoMe.LaB.", "question echoed")
    eq(len(r.answer[0]), 2, "records")
    raw = r.to_wire()
    assert b"\x03NaS\x04HoMe\x03LaB" in raw, "client's spelling on the wire"


@test
def t_types():
    """TXT, MX, NS, SRV, CAA, PTR and SOA data"""
    eq(texts(both("home.lab", "TXT")), ['home.lab. TXT "v=spf1 -all"'])
    eq(both("home.lab", "TXT").answer[0].ttl, 60, "record ttl")
    eq(texts(both("multi.home.lab", "TXT")), ['multi.home.lab. TXT "part one" "part two"'])
    eq(texts(both("home.lab", "MX")), ["home.lab. MX 10 mail.home.lab."])
    eq(texts(both("home.lab", "NS")), ["home.lab. NS ns1.home.lab."])
    eq(texts(both("_ssh._tcp.nas.home.lab", "SRV")),
       ["_ssh._tcp.nas.home.lab. SRV 0 5 22 nas.home.lab."])
    eq(texts(both("home.lab", "CAA")), ['home.lab. CAA 0 issue "letsencrypt.org"'])
    eq(texts(both("10.ptr.home.lab", "PTR")), ["10.ptr.home.lab. PTR nas.home.lab."])
    soa = texts(both("home.lab", "SOA"))
    eq(soa, ["home.lab. SOA home.lab. hostmaster.home.lab. 1 3600 600 86400 300"],
       "synthesized SOA")


@test
def t_nxdomain():
    """authoritative zone: unknown name is NXDOMAIN with the SOA, never forwarded"""
    up.clear()
    r = both("nothing.home.lab")
    eq(rcode(r), "NXDOMAIN")
    eq(len(r.answer), 0, "answers")
    eq(r.authority[0].rdtype, dns.rdatatype.SOA, "SOA in authority")
    eq(r.authority[0].ttl, 300, "negative ttl = min(SOA ttl, minimum)")
    assert r.flags & dns.flags.AA
    eq(up.saw("nothing.home.lab"), [], "upstream saw it")


@test
def t_nodata():
    """a name without the asked type is NODATA with the SOA"""
    r = both("nas.home.lab", "MX")
    eq(rcode(r), "NOERROR")
    eq(len(r.answer), 0, "answers")
    eq(r.authority[0].rdtype, dns.rdatatype.SOA, "SOA in authority")


@test
def t_empty_nonterminal():
    """an empty non-terminal (_tcp.nas) exists: NODATA, not NXDOMAIN"""
    r = both("_tcp.nas.home.lab", "A")
    eq(rcode(r), "NOERROR")
    eq(len(r.answer), 0)


@test
def t_wildcard():
    """wildcards (RFC 4592): cover names below, not names that exist"""
    eq(texts(both("a.k8s.home.lab")), ["a.k8s.home.lab. A 192.168.1.20"])
    eq(texts(both("x.y.k8s.home.lab")), ["x.y.k8s.home.lab. A 192.168.1.20"])
    eq(texts(both("real.k8s.home.lab")), ["real.k8s.home.lab. A 192.168.1.21"])
    # sub.k8s exists as an empty non-terminal: it is not covered, and
    # neither is a name below it (its closest encloser is sub.k8s).
    eq(rcode(both("sub.k8s.home.lab")), "NOERROR")
    eq(len(both("sub.k8s.home.lab").answer), 0)
    eq(rcode(both("other.sub.k8s.home.lab")), "NXDOMAIN")
    q, r = query("A.K8S.home.lab", port=P)
    eq(r.answer[0].name.to_text(), "A.K8S.home.lab.", "owner is the query name")


@test
def t_cname_chain():
    """a local CNAME is followed through local data in the same answer"""
    eq(texts(both("w2.home.lab")), [
        "nas.home.lab. A 192.168.1.10", "nas.home.lab. A 192.168.1.12",
        "w2.home.lab. CNAME www.home.lab.", "www.home.lab. CNAME nas.home.lab."])
    eq(texts(both("www.home.lab", "CNAME")), ["www.home.lab. CNAME nas.home.lab."])
    r = both("gone.home.lab")
    eq(rcode(r), "NXDOMAIN", "chain ends in a missing name (RFC 6604)")
    eq(texts(r), ["gone.home.lab. CNAME nothere.home.lab."])
    eq(rcode(both("loop1.home.lab")), "SERVFAIL", "CNAME loop")


@test
def t_cname_out():
    """a local CNAME to a non-local name: the target is resolved upstream"""
    up.clear()
    r = both("out.home.lab")
    eq(texts(r), ["host.example.net. A " + [t for t in texts(r) if " A " in t][0].split()[-1],
                  "out.home.lab. CNAME host.example.net."])
    assert not r.flags & dns.flags.AA, "AA cleared for a mixed answer"
    assert up.saw("host.example.net"), "upstream asked for the target"


@test
def t_ids():
    """every local reply carries the client's transaction ID"""
    for qid in (0, 1, 0x1234, 0xffff):
        for tcp in (False, True):
            q, r = query("nas.home.lab", port=P, qid=qid, tcp=tcp)
            eq(r.id, qid)
            q, r = query("nothing.home.lab", port=P, qid=qid, tcp=tcp)
            eq(r.id, qid)


@test
def t_edns():
    """OPT answered with ours (1232, version 0), DO echoed; none without"""
    q, r = query("nas.home.lab", port=P, use_edns=0, payload=4096, want_dnssec=True)
    eq(r.edns, 0, "EDNS version")
    eq(r.payload, 1232, "our UDP size")
    assert r.ednsflags & dns.flags.DO, "DO echoed"
    q, r = query("nas.home.lab", port=P, use_edns=False)
    eq(r.edns, -1, "no OPT without one in the query")


@test
def t_open_zone():
    """a non-authoritative zone answers its names and forwards the rest"""
    up.clear()
    eq(texts(both("known.open.lab")), ["known.open.lab. A 10.0.0.1"])
    r = both("unknown.open.lab")
    eq(rcode(r), "NOERROR")
    assert r.answer and r.answer[0].name.to_text() == "unknown.open.lab."
    assert not r.flags & dns.flags.AA
    assert up.saw("unknown.open.lab"), "forwarded"
    r = both("known.open.lab", "MX")
    eq(rcode(r), "NOERROR")
    eq(r.authority[0].ttl, 30, "the zone's own SOA minimum")


@test
def t_stop():
    """SIGTERM: exit status 0, nothing leaked"""
    d.stop()
    up.stop()


done()
