#!/usr/bin/python3
"""t_local.py - local answers from zone files (TAP).

One daemon with five zones, queried over UDP and TCP on 127.0.0.1 and ::1:
  home.lab     authoritative, explicit SOA (negative TTL min(3600, 120) = 120)
  fwd.example  not authoritative, no SOA (synthesized), ttl 120
  auth2.test   authoritative, no SOA, ttl 600
  min.test     authoritative, SOA TTL 30 below its minimum 300
  1.168.192.in-addr.arpa   PTR records
The test upstream's query log shows what was forwarded and what was not.
"""

import os
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.rdatatype  # noqa: E402

import sdtest  # noqa: E402
from sdtest import (TRANSPORTS, V4, V6, answer_list, ask, ask_wire,  # noqa: E402
                    check, check_reply, eq, flags, make_query, rcode, rrs)
import upstream as up_mod  # noqa: E402

HOME = r'''# home.lab: authoritative
origin = "home.lab";
ttl = 300;
authoritative = true;
records = (
  { name = "@";     type = "SOA";   data = "ns1 hostmaster 2024010101 3600 600 86400 120"; ttl = 3600; },
  { name = "@";     type = "NS";    data = "ns1"; },
  { name = "ns1";   type = "A";     data = "192.168.1.2"; },
  { name = "@";     type = "A";     data = "192.168.1.1"; },
  { name = "nas";   type = "A";     data = "192.168.1.10"; ttl = 60; },
  { name = "nas";   type = "AAAA";  data = "fd00::10"; },
  { name = "multi"; type = "A";     data = "192.168.1.21"; },
  { name = "multi"; type = "A";     data = "192.168.1.22"; },
  { name = "multi"; type = "A";     data = "192.168.1.23"; },
  { name = "www";   type = "CNAME"; data = "nas"; },
  { name = "alias"; type = "CNAME"; data = "www"; },
  { name = "ext";   type = "CNAME"; data = "www.example.net."; },
  { name = "loop1"; type = "CNAME"; data = "loop2"; },
  { name = "loop2"; type = "CNAME"; data = "loop1"; },
  { name = "txt";   type = "TXT";   data = "hello world"; },
  { name = "txt2";  type = "TXT";   data = "\"part one\" \"part two\""; },
  { name = "@";     type = "MX";    data = "10 mail"; },
  { name = "@";     type = "MX";    data = "20 mail2.example.net."; },
  { name = "mail";  type = "A";     data = "192.168.1.25"; },
  { name = "_ssh._tcp.nas"; type = "SRV"; data = "0 5 22 nas"; },
  { name = "@";     type = "CAA";   data = "0 issue \"letsencrypt.org\""; },
  { name = "*.k8s"; type = "A";     data = "192.168.1.20"; },
  { name = "*.k8s"; type = "TXT";   data = "wild"; },
  { name = "real.k8s"; type = "A";  data = "192.168.1.30"; },
  { name = "deep.empty"; type = "A"; data = "192.168.1.40"; },
@MANY@
);
'''
# 30 TXT records of 100 characters: about 3.4 KB, larger than any UDP limit
MANY_TXT = ["%02d" % i + "t" * 98 for i in range(30)]
HOME = HOME.replace("@MANY@", ",\n".join(
    '  { name = "many"; type = "TXT"; data = "%s"; }' % t for t in MANY_TXT))

FWD = r'''# fwd.example: not authoritative, no SOA
origin = "fwd.example";
ttl = 120;
records = (
  { name = "local"; type = "A";   data = "10.0.0.1"; },
  { name = "*.wild"; type = "A";  data = "10.0.0.5"; }
);
'''

AUTH2 = r'''origin = "auth2.test";
ttl = 600;
authoritative = true;
records = (
  { name = "x"; type = "A"; data = "10.9.9.9"; }
);
'''

MIN = r'''origin = "min.test";
authoritative = true;
records = (
  { name = "@"; type = "SOA"; data = "ns.min.test. hostmaster.min.test. 7 3600 600 86400 300"; ttl = 30; },
  { name = "a"; type = "A"; data = "10.7.7.7"; }
);
'''

REV = r'''origin = "1.168.192.in-addr.arpa";
records = (
  { name = "10"; type = "PTR"; data = "nas.home.lab."; },
  { name = "25"; type = "PTR"; data = "mail.home.lab."; }
);
'''

HOME_SOA = "home.lab. 120 SOA ns1.home.lab. hostmaster.home.lab. 2024010101 3600 600 86400 120"
FWD_SOA = "fwd.example. 120 SOA fwd.example. hostmaster.fwd.example. 1 3600 600 86400 120"
AUTH2_SOA = "auth2.test. 600 SOA auth2.test. hostmaster.auth2.test. 1 3600 600 86400 600"

tap = sdtest.TAP()
up = None
d = None


def start():
    global up, d
    up = sdtest.Upstream()
    d = sdtest.Daemon(zones={"home.zone": HOME, "fwd.zone": FWD,
                             "auth2.zone": AUTH2, "rev.zone": REV,
                             "min.zone": MIN},
                      servers=["127.0.0.1:%d" % up.port],
                      timeout_ms=300, tries=2)


tap.run("daemon starts with five zones", start)
if d is None:
    tap.done()
tap.at_end(lambda: up.stop())
P = d.port


def q_all(name, rdtype, **kw):
    """Ask over every transport; returns [(transport, query, reply)]."""
    out = []
    for addr, proto in TRANSPORTS:
        q = make_query(name, rdtype, **kw)
        r = ask(q, P, addr, proto)
        out.append(("%s/%s" % (addr, proto), q, r))
    return out


def expect(name, rdtype, answer, rc="NOERROR", authority=None, aa=True,
           transports=True, **kw):
    """Ask (over all transports) and compare answer/authority exactly."""
    if transports:
        runs = q_all(name, rdtype, **kw)
    else:
        q = make_query(name, rdtype, **kw)
        runs = [("127.0.0.1/udp", q, ask(q, P))]
    for where, q, r in runs:
        try:
            check_reply(r, q, rc=rc, aa=aa)
            eq(rrs(r.answer), sorted(answer), "answer")
            if authority is not None:
                eq(rrs(r.authority), sorted(authority), "authority")
        except AssertionError as e:
            raise AssertionError("%s %s over %s: %s" % (name, rdtype, where, e))
    return runs[0][2]


# ------------------------------------------------------------ data types

def t_a():
    expect("nas.home.lab", "A", ["nas.home.lab. 60 A 192.168.1.10"])
    expect("home.lab", "A", ["home.lab. 300 A 192.168.1.1"])


def t_aaaa():
    expect("nas.home.lab", "AAAA", ["nas.home.lab. 300 AAAA fd00::10"])


def t_multi():
    expect("multi.home.lab", "A", ["multi.home.lab. 300 A 192.168.1.%d" % i
                                   for i in (21, 22, 23)])
    r = ask(make_query("multi.home.lab", "A"), P)
    eq(len(r.answer), 1, "one RRset for three records")


def t_cname():
    r = expect("www.home.lab", "A", ["www.home.lab. 300 CNAME nas.home.lab.",
                                     "nas.home.lab. 60 A 192.168.1.10"])
    eq([x[1] for x in answer_list(r)], ["CNAME", "A"], "CNAME before target")
    r = expect("alias.home.lab", "AAAA",
               ["alias.home.lab. 300 CNAME www.home.lab.",
                "www.home.lab. 300 CNAME nas.home.lab.",
                "nas.home.lab. 300 AAAA fd00::10"])
    eq([x[0] for x in answer_list(r)],
       ["alias.home.lab.", "www.home.lab.", "nas.home.lab."], "chain order")
    # asking for the CNAME itself does not follow it
    expect("alias.home.lab", "CNAME", ["alias.home.lab. 300 CNAME www.home.lab."])


def t_cname_nodata():
    q = make_query("www.home.lab", "TXT")
    r = ask(q, P)
    check_reply(r, q, rc="NOERROR", aa=True)
    eq(rrs(r.answer), ["www.home.lab. 300 CNAME nas.home.lab."], "answer")
    eq(rrs(r.authority), [HOME_SOA], "authority")


def t_cname_external():
    """SPEC: target not local -> the answer holds just the CNAME chain.
    (DESIGN: the target may be resolved upstream and appended; then it must
    be the upstream's record.)"""
    q = make_query("ext.home.lab", "A")
    r = ask(q, P)
    check_reply(r, q, rc="NOERROR")
    al = answer_list(r)
    check(len(al) >= 1, "empty answer")
    eq(al[0], ("ext.home.lab.", "CNAME", ["www.example.net."]), "first RRset")
    eq(r.answer[0].ttl, 300, "CNAME TTL")
    if len(al) > 1:
        eq(al[1:], [("www.example.net.", "A",
                     [up_mod.address_for("www.example.net.")])],
           "records after the CNAME")


def t_cname_loop():
    for proto in ("udp", "tcp"):
        q = make_query("loop1.home.lab", "A")
        t0 = time.monotonic()
        r = ask(q, P, V4, proto)
        check(time.monotonic() - t0 < 1.0, "slow answer to a CNAME loop")
        eq(r.id, q.id, "ID")
        check(rcode(r) in ("NOERROR", "SERVFAIL"), "rcode %s" % rcode(r))
        check(len(r.answer) <= 17, "more than 16 CNAME steps")
        check(not up.saw("loop1.home.lab") and not up.saw("loop2.home.lab"),
              "CNAME loop went upstream")


def t_txt():
    expect("txt.home.lab", "TXT", ['txt.home.lab. 300 TXT "hello world"'])
    expect("txt2.home.lab", "TXT", ['txt2.home.lab. 300 TXT "part one" "part two"'])


def t_mx():
    expect("home.lab", "MX", ["home.lab. 300 MX 10 mail.home.lab.",
                              "home.lab. 300 MX 20 mail2.example.net."])


def t_srv():
    expect("_ssh._tcp.nas.home.lab", "SRV",
           ["_ssh._tcp.nas.home.lab. 300 SRV 0 5 22 nas.home.lab."])


def t_ptr():
    expect("10.1.168.192.in-addr.arpa", "PTR",
           ["10.1.168.192.in-addr.arpa. 300 PTR nas.home.lab."])


def t_ns():
    expect("home.lab", "NS", ["home.lab. 300 NS ns1.home.lab."])


def t_soa():
    expect("home.lab", "SOA", ["home.lab. 3600 SOA ns1.home.lab. "
                               "hostmaster.home.lab. 2024010101 3600 600 86400 120"])


def t_caa():
    expect("home.lab", "CAA", ['home.lab. 300 CAA 0 issue "letsencrypt.org"'])


# --------------------------------------------------------------- matching

def t_case():
    for addr, proto in TRANSPORTS:
        q = make_query("NaS.HoMe.LaB", "A")
        wire, r = ask_wire(q, P, addr, proto)
        check_reply(r, q, aa=True)
        check(b"\x03NaS\x04HoMe\x03LaB\x00" in wire[12:],
              "question bytes lost the client's case over %s/%s" % (addr, proto))
        eq(rrs(r.answer), ["nas.home.lab. 60 A 192.168.1.10"], "answer")


def t_ids():
    for addr, proto in TRANSPORTS:
        for qid in (0, 1, 0x1234, 0xBEEF, 0xFFFF):
            q = make_query("nas.home.lab", "A", qid=qid)
            r = ask(q, P, addr, proto)
            eq(r.id, qid, "reply ID over %s/%s" % (addr, proto))


def t_dnspython_query():
    for addr, proto in TRANSPORTS:
        for name, rdtype in (("www.home.lab", "A"), ("nothere.home.lab", "A"),
                             ("MuLtI.home.lab", "A"), ("a.b.k8s.home.lab", "TXT")):
            q = make_query(name, rdtype, edns=0)
            r = sdtest.dq(q, P, addr, proto)
            check("AA" in flags(r), "AA not set for %s" % name)


def t_flags():
    for addr, proto in TRANSPORTS:
        q = make_query("nas.home.lab", "A")
        r = ask(q, P, addr, proto)
        f = flags(r)
        eq(f & {"QR", "AA", "RD", "RA", "TC"}, {"QR", "AA", "RD", "RA"},
           "flags over %s/%s" % (addr, proto))
        q = make_query("nas.home.lab", "A", rd=False)
        r = ask(q, P, addr, proto)
        check("RD" not in flags(r), "RD set in reply to RD=0 query")
        check("RA" in flags(r), "RA not set")


def t_edns_local():
    for addr, proto in TRANSPORTS:
        q = make_query("nas.home.lab", "A", edns=0, payload=4096, do=True)
        r = ask(q, P, addr, proto)
        check_reply(r, q, aa=True)
        eq(r.edns, 0, "reply EDNS version")
        eq(r.payload, 1232, "reply EDNS payload (our edns_size)")
        check(r.ednsflags & dns.flags.DO, "DO bit not copied")
        q = make_query("nas.home.lab", "A", edns=0, payload=1232, do=False)
        r = ask(q, P, addr, proto)
        eq(r.edns, 0, "reply EDNS version")
        check(not r.ednsflags & dns.flags.DO, "DO bit set without DO in query")
        q = make_query("nas.home.lab", "A")
        r = ask(q, P, addr, proto)
        eq(r.edns, -1, "OPT in reply to a query without OPT")


def t_local_truncation():
    for addr in (V4, V6):
        q = make_query("many.home.lab", "TXT")
        wire, r = ask_wire(q, P, addr, "udp")
        check_reply(r, q, tc=True)
        check(len(wire) <= 512, "truncated reply of %d bytes" % len(wire))
        eq(len(r.answer), 0, "answer RRsets in a truncated reply")
        eq(r.edns, -1, "OPT in reply to a query without OPT")
        q = make_query("many.home.lab", "TXT", edns=0, payload=4096)
        wire, r = ask_wire(q, P, addr, "udp")
        check_reply(r, q, tc=True)
        check(len(wire) <= 1232, "truncated reply of %d bytes" % len(wire))
        eq(r.edns, 0, "OPT kept in the truncated reply")
        q = make_query("many.home.lab", "TXT")
        wire, r = ask_wire(q, P, addr, "tcp")
        check_reply(r, q, aa=True)
        eq(rrs(r.answer), sorted('many.home.lab. 300 TXT "%s"' % t
                                 for t in MANY_TXT), "whole answer over TCP")


# -------------------------------------------------------- negative answers

def t_nxdomain_auth():
    for name in ("nothere.home.lab", "timeout.nothere.home.lab",
                 "NoThErE.HOME.lab"):
        expect(name, "A", [], rc="NXDOMAIN", authority=[HOME_SOA])
        check(not up.saw(name), "%s was forwarded upstream" % name)


def t_nodata():
    expect("nas.home.lab", "TXT", [], authority=[HOME_SOA])
    expect("www.home.lab", "CNAME", ["www.home.lab. 300 CNAME nas.home.lab."])
    expect("mail.home.lab", "AAAA", [], authority=[HOME_SOA])


def t_auth_never_forwards():
    names = ["timeout.home.lab", "host.sub.home.lab", "nx.home.lab"]
    for name in names:
        expect(name, "A", [], rc="NXDOMAIN", authority=[HOME_SOA],
               transports=False)
    expect("nas.home.lab", "MX", [], authority=[HOME_SOA], transports=False)
    for name in names + ["nas.home.lab"]:
        eq(up.saw(name), [], "upstream log for %s" % name)


def t_synth_soa():
    expect("y.auth2.test", "A", [], rc="NXDOMAIN", authority=[AUTH2_SOA])
    expect("x.auth2.test", "AAAA", [], authority=[AUTH2_SOA])
    expect("local.fwd.example", "AAAA", [], authority=[FWD_SOA])


def t_negative_ttl_soa_ttl():
    soa = "min.test. 30 SOA ns.min.test. hostmaster.min.test. 7 3600 600 86400 300"
    expect("b.min.test", "A", [], rc="NXDOMAIN", authority=[soa])
    expect("a.min.test", "TXT", [], authority=[soa])


def t_synth_soa_apex():
    expect("auth2.test", "SOA", [AUTH2_SOA])


# --------------------------------------------------------------- wildcards

def t_wildcard():
    expect("a.k8s.home.lab", "A", ["a.k8s.home.lab. 300 A 192.168.1.20"])
    expect("Foo.Bar.K8s.home.lab", "A", ["foo.bar.k8s.home.lab. 300 A 192.168.1.20"])
    expect("a.k8s.home.lab", "TXT", ['a.k8s.home.lab. 300 TXT "wild"'])


def t_wildcard_nodata():
    # *.k8s has A and TXT but no AAAA: NODATA, not NXDOMAIN
    expect("a.k8s.home.lab", "AAAA", [], authority=[HOME_SOA])


def t_wildcard_existing_name():
    # real.k8s exists: the wildcard does not cover it, not even for AAAA
    expect("real.k8s.home.lab", "A", ["real.k8s.home.lab. 300 A 192.168.1.30"])
    expect("real.k8s.home.lab", "TXT", [], authority=[HOME_SOA])


def t_wildcard_below_existing():
    # below real.k8s the closest encloser is real.k8s, which has no "*":
    # NXDOMAIN (RFC 4592 section 3.3.1)
    expect("x.real.k8s.home.lab", "A", [], rc="NXDOMAIN", authority=[HOME_SOA])


def t_wildcard_literal_and_parent():
    expect("*.k8s.home.lab", "A", ["*.k8s.home.lab. 300 A 192.168.1.20"])
    # k8s itself is an empty non-terminal: NODATA
    expect("k8s.home.lab", "A", [], authority=[HOME_SOA])


def t_empty_nonterminal():
    expect("empty.home.lab", "A", [], authority=[HOME_SOA])
    expect("deep.empty.home.lab", "A", ["deep.empty.home.lab. 300 A 192.168.1.40"])
    expect("x.empty.home.lab", "A", [], rc="NXDOMAIN", authority=[HOME_SOA])


def t_wildcard_nonauth():
    expect("a.wild.fwd.example", "A", ["a.wild.fwd.example. 120 A 10.0.0.5"])
    eq(up.saw("a.wild.fwd.example"), [], "upstream log")


# ------------------------------------------------------- forwarding zone

def t_nonauth_local():
    expect("local.fwd.example", "A", ["local.fwd.example. 120 A 10.0.0.1"])
    eq(up.saw("local.fwd.example"), [], "upstream log")


def t_nonauth_forwards():
    for addr, proto in TRANSPORTS:
        name = sdtest.uniq("host", "fwd.example")
        q = make_query(name, "A")
        r = ask(q, P, addr, proto)
        check_reply(r, q, rc="NOERROR")
        check("AA" not in flags(r), "AA on a forwarded answer")
        eq(rrs(r.answer), ["%s. 300 A %s" % (name, up_mod.address_for(name))],
           "answer")
        check(up.saw(name, "A"), "upstream did not see %s" % name)


def t_nonauth_forwards_nx():
    name = sdtest.uniq("nx", "fwd.example")
    q = make_query(name, "A")
    r = ask(q, P)
    check_reply(r, q, rc="NXDOMAIN")
    eq(rrs(r.authority), ["%s 60 SOA ns.%s hostmaster.%s 1 3600 600 86400 60"
                          % ((name.split(".", 1)[1] + ".",) * 3)], "authority")
    check(up.saw(name), "upstream did not see %s" % name)


def t_unrelated_forwards():
    name = sdtest.uniq("host")
    q = make_query(name, "AAAA")
    r = ask(q, P, V6, "udp")
    check_reply(r, q)
    eq(rrs(r.answer), ["%s. 300 AAAA %s" % (name, up_mod.address6_for(name))],
       "answer")
    check(up.saw(name, "AAAA"), "upstream did not see it")


TESTS = [
    ("A record, per-record and default TTL", t_a),
    ("AAAA record", t_aaaa),
    ("several A records for one name form one RRset", t_multi),
    ("CNAME chains followed through local data", t_cname),
    ("CNAME to a name without the type: CNAME + SOA", t_cname_nodata),
    ("CNAME to a non-local name", t_cname_external),
    ("CNAME loop answered quickly, never forwarded", t_cname_loop),
    ("TXT: one string, and quoted parts", t_txt),
    ("MX, relative and absolute exchange", t_mx),
    ("SRV", t_srv),
    ("PTR from a reverse zone", t_ptr),
    ("NS", t_ns),
    ("SOA from zone data with its own TTL", t_soa),
    ("CAA", t_caa),
    ("case-insensitive match, client's case echoed", t_case),
    ("client's transaction ID kept", t_ids),
    ("dns.query.udp/tcp accept the replies (ID and question match)", t_dnspython_query),
    ("flags QR AA RA, RD copied", t_flags),
    ("EDNS on local answers: our size, DO copied, no OPT without one", t_edns_local),
    ("local answer too big for UDP: TC=1 (512 / edns_size), whole over TCP",
     t_local_truncation),
    ("authoritative NXDOMAIN with SOA (TTL = min(SOA TTL, minimum))", t_nxdomain_auth),
    ("NODATA with SOA", t_nodata),
    ("authoritative zone never forwards", t_auth_never_forwards),
    ("synthesized SOA in negative answers", t_synth_soa),
    ("negative TTL = SOA TTL when it is below the SOA minimum", t_negative_ttl_soa_ttl),
    ("synthesized SOA answers an SOA query at the apex", t_synth_soa_apex),
    ("wildcard synthesizes answers with the query name", t_wildcard),
    ("wildcard NODATA for a missing type", t_wildcard_nodata),
    ("an existing name is not covered by the wildcard", t_wildcard_existing_name),
    ("names below an existing name are not covered (NXDOMAIN)", t_wildcard_below_existing),
    ("the wildcard name itself and its empty parent", t_wildcard_literal_and_parent),
    ("empty non-terminal: NODATA, not NXDOMAIN", t_empty_nonterminal),
    ("wildcard in a non-authoritative zone answers locally", t_wildcard_nonauth),
    ("non-authoritative zone: local data answered locally", t_nonauth_local),
    ("non-authoritative zone forwards unknown names", t_nonauth_forwards),
    ("non-authoritative zone: upstream NXDOMAIN passed through", t_nonauth_forwards_nx),
    ("names outside every zone are forwarded", t_unrelated_forwards),
]

for title, fn in TESTS:
    tap.run(title, fn)


def t_stop():
    d.stop()


tap.run("SIGTERM: exit status 0, no sanitizer report", t_stop)
tap.done()
