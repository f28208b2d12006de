#!/usr/bin/python3
"""Blocking through the daemon: list formats, answer modes over UDP and TCP,
A/AAAA/other types, allow beating block, subdomains, local data beating
both, deep CNAME blocking, and lists changed by a reload."""
import signal
import time

import dns.flags
import dns.rdatatype

from harness import Daemon, Upstream, done, eq, query, rcode, run, test, texts

LIST = """# a mixed list
0.0.0.0 ads.example.com
127.0.0.1 t1.example.org t2.example.org
||adblock.example.net^
||opt.example.net^$important
||third.example.net^$third-party
@@||ok.ads.example.com^
*.wild.example
plain.example
target.example.net
this line is bad
"""

HOME = '''origin = "home.lab";
records = ( { name = "ads"; type = "A"; data = "192.168.1.50"; } );
'''

up = Upstream()


def daemon(block, files=None):
    return Daemon('''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 300; tries = 2; };
zones = ["home.zone"];
block: { %s };
''' % (up.port, block), zones={"home.zone": HOME}, files=dict({"list.txt": LIST}, **(files or {})))


d = daemon('lists = ["list.txt"]; domains = ["tracker.example.io", "ads.home.lab"]; '
           'allow = ["fine.tracker.example.io"]; ttl = 42;')
P = d.port


def both(name, t="A", port=None):
    out = []
    for addr in ("127.0.0.1", "::1"):
        for tcp in (False, True):
            q, r = query(name, t, port=port or P, addr=addr, tcp=tcp)
            out.append(r)
    for r in out[1:]:
        eq(texts(r), texts(out[0]), "same answer on every transport")
        eq(r.rcode(), out[0].rcode())
    return out[0]


@test
def t_formats():
    """hosts, plain, adblock and *. lines block; their subdomains too"""
    up.clear()
    for n in ("ads.example.com", "x.ads.example.com", "t1.example.org", "t2.example.org",
              "adblock.example.net", "deep.adblock.example.net", "opt.example.net",
              "a.wild.example", "plain.example", "tracker.example.io", "x.tracker.example.io"):
        r = both(n)
        eq(texts(r), ["%s. A 0.0.0.0" % n], n)
        eq(r.answer[0].ttl, 42, "block ttl")
    eq(up.queries(), [], "blocked names never leave")


@test
def t_not_blocked():
    """parents, siblings, the *. domain itself and $third-party rules are not blocked"""
    for n in ("example.com", "bads.example.com", "wild.example", "third.example.net",
              "fine.tracker.example.io", "x.fine.tracker.example.io", "ok.ads.example.com"):
        q, r = query(n, port=P)
        assert texts(r) != ["%s. A 0.0.0.0" % n], n
        assert texts(r), "%s forwarded and answered" % n


@test
def t_null_types():
    """null mode: :: for AAAA, NODATA with SOA for other types"""
    eq(texts(both("ads.example.com", "AAAA")), ["ads.example.com. AAAA ::"])
    r = both("ads.example.com", "MX")
    eq(rcode(r), "NOERROR")
    eq(r.answer, [])
    eq(r.authority[0].rdtype, dns.rdatatype.SOA)
    eq(r.authority[0].ttl, 42)


@test
def t_local_wins():
    """local zone data wins over the block list"""
    eq(texts(both("ads.home.lab")), ["ads.home.lab. A 192.168.1.50"])


@test
def t_ids():
    """blocked replies carry the client's ID and question"""
    for tcp in (False, True):
        q, r = query("Ads.Example.COM", port=P, qid=999, tcp=tcp)
        eq(r.id, 999)
        eq(r.question[0].name.to_text(), "Ads.Example.COM.")


@test
def t_deep_cname():
    """a forwarded answer whose CNAME reaches a blocked name is blocked"""
    q, r = query("cname.example.org", port=P)
    eq(texts(r), ["cname.example.org. A 0.0.0.0"])


@test
def t_check_reports():
    """-t accepts the lists; the daemon reports bad lines with file:line"""
    rc, out, err = run(["-t", "-c", d.conf])
    eq(rc, 0, err)
    assert "list.txt: 11 lines" in d.stderr() or "list.txt: 12 lines" in d.stderr(), d.stderr()
    assert "list.txt:11:" in d.stderr(), d.stderr()


@test
def t_explain_block():
    """--explain names the list that blocks and the allow entry that wins"""
    rc, out, err = run(["-c", d.conf, "--explain", "x.ads.example.com"])
    assert "blocked" in out and "list.txt blocks it" in out and "0.0.0.0" in out, out
    rc, out, err = run(["-c", d.conf, "--explain", "fine.tracker.example.io"])
    assert "allow" in out and "block.allow" in out, out


@test
def t_list_counters():
    """SIGUSR1 logs per list: names, allowed, bad lines and hits"""
    d.signal(signal.SIGUSR1)
    time.sleep(0.3)
    err = d.stderr()
    import re
    m = re.search(r"blocklist \S*list\.txt: (\d+) names, (\d+) allowed, (\d+) bad lines, "
                  r"(\d+) hits", err)
    assert m, err[-1500:]
    assert int(m.group(1)) >= 8 and int(m.group(2)) == 1, m.group(0)
    assert int(m.group(3)) >= 1, "bad lines counted"
    assert int(m.group(4)) >= 20, "hits counted: " + m.group(0)
    m = re.search(r"blocklist block\.domains: (\d+) names, \d+ allowed, \d+ bad lines, "
                  r"(\d+) hits", err)
    assert m and int(m.group(2)) >= 4, err[-1500:]


@test
def t_reload_lists():
    """SIGHUP with a changed list: new names blocked, removed ones not"""
    d.write("list.txt", "newly.example\n")
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    eq(texts(both("newly.example")), ["newly.example. A 0.0.0.0"])
    q, r = query("ads.example.com", port=P)
    assert texts(r) != ["ads.example.com. A 0.0.0.0"], "old list gone"
    eq(texts(both("tracker.example.io")), ["tracker.example.io. A 0.0.0.0"], "domains kept")
    d.stop()


def mode_test(answer, name, rdtype, check):
    m = daemon('lists = ["list.txt"]; answer = "%s";' % answer)
    try:
        r = both(name, rdtype, port=m.port)
        check(r)
    finally:
        m.stop()


@test
def t_mode_nxdomain():
    """answer = nxdomain: NXDOMAIN with a SOA"""
    def check(r):
        eq(rcode(r), "NXDOMAIN")
        eq(r.authority[0].rdtype, dns.rdatatype.SOA)
    mode_test("nxdomain", "ads.example.com", "A", check)


@test
def t_mode_nodata():
    """answer = nodata: NOERROR, no answer, a SOA"""
    def check(r):
        eq(rcode(r), "NOERROR")
        eq(r.answer, [])
        eq(r.authority[0].rdtype, dns.rdatatype.SOA)
    mode_test("nodata", "ads.example.com", "AAAA", check)


@test
def t_mode_refused():
    """answer = refused: REFUSED"""
    mode_test("refused", "ads.example.com", "A", lambda r: eq(rcode(r), "REFUSED"))


@test
def t_mode_address():
    """answer = addresses: those addresses, NODATA for a family not given"""
    mode_test("192.0.2.7, 2001:db8::7", "ads.example.com", "AAAA",
              lambda r: eq(texts(r), ["ads.example.com. AAAA 2001:db8::7"]))
    mode_test("192.0.2.7", "ads.example.com", "A",
              lambda r: eq(texts(r), ["ads.example.com. A 192.0.2.7"]))
    mode_test("192.0.2.7", "ads.example.com", "AAAA", lambda r: eq(r.answer, []))


@test
def t_bad_config():
    """a missing list or a bad domain is refused at start, naming it"""
    rc, out, err = run(["-t", "-c", d.conf])
    d2 = Daemon('listen = @LISTEN@;\nblock: { lists = ["nothere.txt"]; };', wait=False)
    eq(d2.proc.wait(timeout=10), 1)
    assert "nothere.txt" in d2.stderr(), d2.stderr()
    d3 = Daemon('listen = @LISTEN@;\nblock: { domains = ["bad..name"]; };', wait=False)
    eq(d3.proc.wait(timeout=10), 1)
    assert "splitdns.conf:2:" in d3.stderr() and "bad..name" in d3.stderr(), d3.stderr()
    up.stop()


done()
