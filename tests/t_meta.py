#!/usr/bin/python3
"""Meta-queries and protocol corners (#8 items 7, 8, 17): zone transfers and
classes other than IN refused and never forwarded; OPT, TSIG and TKEY as
question types; TSIG-signed queries (NOTAUTH/BADKEY for local data, relayed
unchanged and never cached when forwarded); what outsiders get for
malformed queries; the flags of NOTIMP (RFC 8906 3.1.3-3.1.4)."""
import socket
import struct
import subprocess
import time
import zlib

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring

from harness import (Daemon, Upstream, done, eq, query, raw_tcp, raw_udp,
                     rcode, test)
from upstream import find_tsig

HOME = r'''
origin = "home.lab";
ttl = 300;
authoritative = true;
records = (
  { name = "@";   type = "SOA"; data = "ns.home.lab. admin.home.lab. 7 3600 600 86400 60"; },
  { name = "nas"; type = "A";   data = "192.168.1.10"; },
  { name = "txt"; type = "TXT"; data = "\"local\""; }
);
'''

# A long upstream timeout: a reply thrown away would show as a SERVFAIL
# after 3 s, not as a fast wrong rcode.
CONF = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 3000; tries = 1; };
zones = ["home.zone"];
%s
'''

U = Upstream()
d = Daemon(CONF % (U.port, ""), zones={"home.zone": HOME})
P = d.port
# Allows only 127.0.0.2: every query of this script is an outsider's.
OUT = Daemon(CONF % (U.port, 'access: { allow = ["127.0.0.2/32"]; };'),
             zones={"home.zone": HOME})

LOCAL = "nas.home.lab"
FWD = "www.example.org"
KEYRING = dns.tsigkeyring.from_text(
    {"k.": "c3BsaXRkbnMtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="})

F_QR, F_AA, F_TC, F_RD, F_RA, F_AD, F_CD = (0x8000, 0x0400, 0x0200, 0x0100,
                                            0x0080, 0x0020, 0x0010)


def packet(name, qtype, qclass=1, flags=F_RD, qid=4242, qdcount=1,
           additional=b"", arcount=0):
    """A query built by hand (dnspython refuses some of these)."""
    q = dns.name.from_text(name).to_wire() + struct.pack("!HH", qtype, qclass)
    body = q * qdcount if qdcount else b""
    return struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, arcount) + body + additional


def opt(version=0, size=1232, do=False):
    """An OPT record (RFC 6891 6.1.2) for the additional section."""
    ttl = (version << 16) | (0x8000 if do else 0)
    return b"\x00" + struct.pack("!HHIH", 41, size, ttl, 0)


def header(reply):
    """(id, flags, qdcount, ancount, nscount, arcount) of reply bytes."""
    assert reply is not None and len(reply) >= 12, "no reply: %r" % (reply,)
    return struct.unpack("!HHHHHH", reply[:12])


def rcode_of(reply):
    return header(reply)[1] & 0xF


def nothing_upstream(what):
    time.sleep(0.1)  # a forwarded query would be logged by now
    eq(U.queries(), [], what + ": upstream queries")


def signed(name, rdtype="A", qid=None):
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    if qid is not None:
        q.id = qid
    q.use_tsig(KEYRING, keyname="k.")
    return q, q.to_wire()


def udp_timed(wire, port=P, timeout=4.0):
    t0 = time.monotonic()
    r = raw_udp(wire, port, timeout=timeout)
    return r, time.monotonic() - t0


def tcp_timed(wire, port=P, timeout=4.0):
    t0 = time.monotonic()
    r = raw_tcp(wire, port, timeout=timeout)
    return r, time.monotonic() - t0


# ------------------------------------------------------- zone transfers

@test
def t_transfers():
    """AXFR and IXFR, for a local zone and a forwarded name, UDP and TCP:
    REFUSED with the client's ID, nothing forwarded"""
    U.clear()
    for name in ("home.lab", LOCAL, "example.org", FWD):
        for qtype in ("AXFR", "IXFR"):
            q = dns.message.make_query(name, qtype)
            if qtype == "IXFR":
                # RFC 1995 3: the client's SOA in the authority section
                q.authority.append(dns.rrset.from_text(
                    dns.name.from_text(name), 0, "IN", "SOA", "ns. admin. 1 3600 600 86400 60"))
            wire = q.to_wire()
            for proto, send in (("udp", raw_udp), ("tcp", raw_tcp)):
                r = send(wire, P)
                h = header(r)
                eq(h[0], q.id, "%s %s %s: ID" % (name, qtype, proto))
                eq(h[1] & 0xF, dns.rcode.REFUSED, "%s %s %s: rcode" % (name, qtype, proto))
                eq(h[3], 0, "%s %s %s: no records" % (name, qtype, proto))
    nothing_upstream("zone transfers")


@test
def t_transfer_kdig():
    """kdig AXFR of the local zone (TCP): the server replied REFUSED, no
    record is transferred"""
    U.clear()
    p = subprocess.run(["kdig", "@127.0.0.1", "-p", str(P), "+timeout=2",
                        "+retry=0", "AXFR", "home.lab"], capture_output=True,
                       text=True, timeout=10)
    out = p.stdout + p.stderr
    assert "replied with error 'REFUSED'" in out, out
    assert "SOA" not in out and "192.168.1.10" not in out, out
    nothing_upstream("kdig AXFR")


# ------------------------------------------------------------- classes

@test
def t_classes():
    """class CH (version.bind, a forwarded name, a local name), HS and ANY:
    REFUSED over UDP and TCP, nothing forwarded"""
    U.clear()
    cases = [("version.bind", "TXT", "CH"), ("hostname.bind", "TXT", "CH"),
             (FWD, "A", "CH"), (LOCAL, "A", "CH"), (FWD, "A", "HS"),
             (LOCAL, "A", "HS"), (FWD, "A", "ANY"), (LOCAL, "A", "ANY"),
             ("home.lab", "SOA", "ANY"), (FWD, "ANY", "ANY")]
    for name, t, cls in cases:
        for tcp in (False, True):
            q, r = query(name, t, port=P, rdclass=cls, tcp=tcp)
            eq(rcode(r), "REFUSED", "%s %s %s tcp=%s" % (name, t, cls, tcp))
            eq(r.answer, [], "%s %s %s: no answer" % (name, t, cls))
    nothing_upstream("other classes")


@test
def t_version_bind_dig():
    """dig version.bind TXT CH: status REFUSED, no version text"""
    U.clear()
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(P), "+time=2", "+tries=1",
                          "version.bind", "TXT", "CH"], capture_output=True,
                         text=True, timeout=10).stdout
    assert "status: REFUSED" in out, out
    assert "ANSWER: 0" in out, out
    nothing_upstream("dig version.bind")


# ------------------------------------------- meta types in the question

@test
def t_meta_qtypes():
    """question type OPT or TSIG, and TKEY without a TKEY record: FORMERR
    echoing the question, UDP and TCP, nothing forwarded"""
    U.clear()
    for qtype in (41, 250, 249):
        for name in (FWD, LOCAL):
            wire = packet(name, qtype, qid=1000 + qtype)
            for proto, send in (("udp", raw_udp), ("tcp", raw_tcp)):
                r = send(wire, P)
                h = header(r)
                what = "%s type %d %s" % (name, qtype, proto)
                eq(h[0], 1000 + qtype, what + ": ID")
                eq(h[1] & 0xF, dns.rcode.FORMERR, what + ": rcode")
                eq(h[2], 1, what + ": QDCOUNT")
                eq(r[12:len(wire)], wire[12:], what + ": question echoed")
    nothing_upstream("meta qtypes")


# ---------------------------------------------------------------- TSIG

def tsig_reply_check(r, q, what):
    """r (bytes) is NOTAUTH with an unsigned TSIG, error BADKEY, for q."""
    h = header(r)
    eq(h[0], q.id, what + ": ID")
    eq(h[1] & 0xF, dns.rcode.NOTAUTH, what + ": rcode")
    t = find_tsig(r)
    assert t, what + ": no TSIG record as the last one: %r" % r
    eq(t["error"], 17, what + ": TSIG error (BADKEY)")
    eq(t["key"], dns.name.from_text("k."), what + ": key name")
    eq(t["alg"], q.keyalgorithm, what + ": algorithm")
    eq(t["mac"], b"", what + ": unsigned (MAC size 0)")
    eq(t["orig_id"], q.id, what + ": original ID")
    return h, t


@test
def t_tsig_local():
    """a signed query for local data: NOTAUTH, TSIG error BADKEY (RFC 8945
    5.2.2), question echoed, UDP and TCP, nothing forwarded"""
    U.clear()
    for name in (LOCAL, "txt.home.lab", "nope.home.lab", "printer"):
        q, wire = signed(name, qid=3131)
        for proto, send in (("udp", udp_timed), ("tcp", tcp_timed)):
            r, _ = send(wire)
            h, t = tsig_reply_check(r, q, "%s %s" % (name, proto))
            eq(h[2], 1, name + ": QDCOUNT")
            eq(h[3], 0, name + ": no answer records")
            qend = 12 + len(dns.name.from_text(name).to_wire()) + 4
            eq(r[12:qend], wire[12:qend], name + ": question echoed")
            assert b"\xc0\xa8\x01\x0a" not in r, name + ": local data leaked"
    nothing_upstream("signed local queries")


@test
def t_tsig_forward_badkey():
    """a signed forwarded query reaches the upstream with its TSIG record
    intact; the upstream's NOTAUTH/BADKEY (QDCOUNT 0) reaches the client
    within 1 s with the client's ID, UDP and TCP"""
    problems = []
    for proto, send in (("udp", udp_timed), ("tcp", tcp_timed)):
        U.clear()
        name = "%s-signed.example.org" % proto
        q, wire = signed(name, qid=0x5150)
        r, took = send(wire)
        sent = find_tsig(wire)
        lines = U.saw(name)
        eq(len(lines), 1, proto + ": upstream queries")
        eq(lines[0][-1], "tsig=k.:%08x" % zlib.crc32(sent["wire"]),
           proto + ": the TSIG record as the upstream received it")
        if r is None or took >= 1.0:
            problems.append("%s: %s after %.2f s" % (
                proto, "rcode %d" % rcode_of(r) if r else "no reply", took))
            continue
        h, t = tsig_reply_check(r, q, proto)
        eq(h[2], 0, proto + ": the upstream's QDCOUNT 0, passed on")
    assert not problems, "the upstream's NOTAUTH/BADKEY was not relayed: " + \
        "; ".join(problems)


@test
def t_tsig_not_cached():
    """two identical signed queries both reach the upstream, and the signed
    reply (a TSIG with a MAC) is passed on unchanged; an unsigned query for
    the name afterwards is forwarded, not answered from the signed reply"""
    U.clear()
    name = "signed.example.org"
    for i in range(2):
        q, wire = signed(name, qid=0x6000 + i)
        r, took = udp_timed(wire)
        assert r is not None and took < 1.0, "signed query %d: %r after %.2f s" % (i, r, took)
        eq(header(r)[0], q.id, "ID")
        eq(rcode_of(r), dns.rcode.NOERROR, "rcode")
        t = find_tsig(r)
        assert t, "the upstream's TSIG record is gone: %r" % r
        eq(t["mac"], b"M" * 32, "the upstream's MAC")
        eq(t["error"], 0, "TSIG error")
        eq(t["orig_id"], q.id, "original ID")
        eq(header(r)[3], 1, "the answer")
    eq(len(U.saw(name)), 2, "both signed queries reach the upstream")
    q, r = query(name, port=P, use_edns=0)
    eq(rcode(r), "NOERROR", "unsigned")
    assert not r.had_tsig, "an unsigned query got a signed reply"
    lines = U.saw(name)
    eq(len(lines), 3, "the unsigned query reaches the upstream")
    assert not lines[2][-1].startswith("tsig="), lines[2]
    q, r = query(name, port=P, use_edns=0)
    eq(len(U.saw(name)), 3, "the unsigned reply is cached as usual")


@test
def t_tsig_signed_then_cached_unsigned():
    """a signed query for a name whose unsigned answer is cached still goes
    to the upstream, and gets the upstream's own (signed) reply"""
    U.clear()
    name = "signed.cachedfirst.example.org"
    query(name, port=P)
    query(name, port=P)
    eq(len(U.saw(name)), 1, "the unsigned answer is cached")
    q, wire = signed(name, qid=0x7007)
    r, took = udp_timed(wire)
    assert r is not None and took < 1.0, "%r after %.2f s" % (r, took)
    eq(header(r)[0], q.id, "ID")
    t = find_tsig(r)
    assert t and t["mac"] == b"M" * 32, "not the upstream's signed reply: %r" % r
    eq(len(U.saw(name)), 2, "upstream queries")


# ------------------------------------------------------------ outsiders

@test
def t_outsider_malformed():
    """outsiders get REFUSED for malformed queries too: opcode 2, QDCOUNT 2,
    QDCOUNT 0, EDNS version 1, qtype OPT, a signed local query"""
    U.clear()
    cases = {
        "a plain query": packet(FWD, 1),
        "opcode 2": packet(FWD, 1, flags=F_RD | (2 << 11)),
        "QDCOUNT 2": packet(FWD, 1, qdcount=2),
        "QDCOUNT 0": packet(FWD, 1, qdcount=0),
        "EDNS version 1": packet(FWD, 1, additional=opt(version=1), arcount=1),
        "EDNS version 1, local": packet(LOCAL, 1, additional=opt(version=1),
                                        arcount=1),
        "qtype OPT": packet(FWD, 41),
        "signed local": signed(LOCAL, qid=4242)[1],
        "AXFR": packet("home.lab", 252),
    }
    for what, wire in cases.items():
        # Over TCP an outsider's connection is closed at accept: nothing
        # to answer; the UDP reply is the one to check.
        for proto, send in (("udp", raw_udp),):
            r = send(wire, OUT.port)
            h = header(r)
            eq(h[0], 4242, "%s %s: ID" % (what, proto))
            eq(h[1] & 0xF, dns.rcode.REFUSED, "%s %s: rcode" % (what, proto))
            eq(h[3], 0, "%s %s: no answer" % (what, proto))
            try:
                m = dns.message.from_wire(r)
            except dns.message.UnknownTSIGKey:
                continue  # it has a TSIG record: checked below
            eq(m.rcode(), dns.rcode.REFUSED, "%s %s: extended rcode (no BADVERS)" % (what, proto))
            assert not any(rr.rdtype == dns.rdatatype.TSIG for rr in m.additional)
    r = raw_udp(cases["signed local"], OUT.port)
    assert find_tsig(r) is None, "an outsider got a TSIG error record"
    nothing_upstream("outsiders")


# -------------------------------------------------------------- NOTIMP

@test
def t_notimp_flags():
    """NOTIMP for opcode 2 (and 3, 6) from an insider: QR and the opcode;
    RA not set, RD and CD not copied (RFC 8906 3.1.3-3.1.4), UDP and TCP"""
    U.clear()
    for opcode in (2, 3, 6):
        wire = packet(FWD, 1, flags=F_RD | F_CD | F_AD | (opcode << 11), qid=999)
        for proto, send in (("udp", raw_udp), ("tcp", raw_tcp)):
            r = send(wire, P)
            h = header(r)
            what = "opcode %d %s" % (opcode, proto)
            eq(h[0], 999, what + ": ID")
            eq(h[1] & 0xF, dns.rcode.NOTIMP, what + ": rcode")
            eq((h[1] >> 11) & 0xF, opcode, what + ": opcode echoed")
            assert h[1] & F_QR, what + ": QR"
            eq(h[1] & (F_RA | F_RD | F_CD | F_AD | F_AA | F_TC), 0,
               what + ": flags %#06x" % h[1])
    nothing_upstream("NOTIMP")


@test
def t_still_answers():
    """after all that, ordinary queries work: local, forwarded, and the
    daemons stop cleanly"""
    q, r = query(LOCAL, port=P)
    eq(rcode(r), "NOERROR")
    q, r = query("after.example.org", port=P)
    eq(rcode(r), "NOERROR")
    assert U.saw("after.example.org")
    OUT.stop()
    d.stop()


done()
