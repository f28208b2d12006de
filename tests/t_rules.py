#!/usr/bin/python3
"""Rules people write, through the daemon: $important, $badfilter across
lists, $dnstype (with ~ negation), /regex/ lines and block.regex, with hits
counted per list; and a blocked name blocked for every query type in each
block.answer mode (HTTPS/SVCB get NODATA, so no ipv4hint escapes)."""
import re
import signal
import time

import dns.rdatatype

from harness import Daemon, Upstream, done, eq, query, rcode, run, test, texts

RULES = """! rules with options
||imp.example^$important
@@||www.imp.example^
@@||ok.example^$important
||www.ok.example^$important
||v6only.example^$dnstype=AAAA|HTTPS
||noa.example^$dnstype=~A
@@||x.plain.example^
||plain.example^
/^ad[0-9]+\\./
@@/^ad0\\./
/^txt\\.[a-z]+\\.example$/$dnstype=TXT
||gone.example^
/^gone[0-9]\\./
"""

OFF = """! a list of $badfilter rules
||gone.example^$badfilter
/^gone[0-9]\\./$badfilter
"""

up = Upstream()


def daemon(answer, extra=""):
    return Daemon('''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 300; tries = 2; };
block: { answer = "%s"; lists = ["rules.txt", "off.txt"];
         domains = ["blocked.example"]; regex = ["^re[0-9]+\\\\.example$"]; %s };
''' % (up.port, answer, extra), files={"rules.txt": RULES, "off.txt": OFF})


d = daemon("null")
P = d.port


def blocked_a(name, t="A"):
    q, r = query(name, t, port=P)
    want = {"A": "0.0.0.0", "AAAA": "::"}
    if t in want:
        eq(texts(r), ["%s. %s %s" % (name.lower(), t, want[t])], "%s %s blocked" % (name, t))
    else:
        eq((rcode(r), r.answer), ("NOERROR", []), "%s %s: NODATA" % (name, t))
        eq(r.authority[0].rdtype, dns.rdatatype.SOA, "%s %s: SOA" % (name, t))


def forwarded(name, t="A"):
    up.clear()
    q, r = query(name, t, port=P)
    assert up.saw(name), "%s %s went upstream" % (name, t)
    assert texts(r) != ["%s. A 0.0.0.0" % name], name


@test
def t_important():
    """$important block beats an allow; @@...$important beats everything"""
    blocked_a("imp.example")
    blocked_a("www.imp.example")
    forwarded("ok.example")
    forwarded("www.ok.example")
    forwarded("x.plain.example")
    blocked_a("plain.example")


@test
def t_dnstype():
    """$dnstype=AAAA|HTTPS blocks only those types; ~A all but A"""
    forwarded("v6only.example", "A")
    blocked_a("v6only.example", "AAAA")
    blocked_a("v6only.example", "HTTPS")
    forwarded("noa.example", "A")
    blocked_a("noa.example", "AAAA")
    blocked_a("noa.example", "MX")


@test
def t_regex():
    """/regex/ lines and block.regex block, caseless; @@/regex/ allows"""
    blocked_a("ad7.example")
    blocked_a("AD12.Tracker.Example")
    forwarded("ad0.example")
    forwarded("x.ad7.example")
    blocked_a("re5.example")
    forwarded("re5.example.org")
    blocked_a("txt.abc.example", "TXT")
    forwarded("txt.abc.example", "A")


@test
def t_badfilter():
    """$badfilter in another list disables a name rule and a regex"""
    forwarded("gone.example")
    forwarded("gone1.example")


@test
def t_hits_per_list():
    """SIGUSR1 counts regex and typed hits for their lists"""
    for _ in range(3):
        query("ad9.example", port=P)
        query("re9.example", port=P)
    d.signal(signal.SIGUSR1)
    end = time.time() + 5
    while time.time() < end and "block.regex" not in d.stderr():
        time.sleep(0.05)
    err = d.stderr()
    assert "regular expressions" in err, err
    lines = [l for l in err.splitlines() if "hits" in l]
    rules = [l for l in lines if "rules.txt" in l]
    regex = [l for l in lines if "block.regex" in l]
    assert rules and regex, "\n".join(lines)
    assert int(re.search(r"(\d+) hits", rules[-1]).group(1)) >= 3, rules[-1]
    assert int(re.search(r"(\d+) hits", regex[-1]).group(1)) >= 3, regex[-1]


@test
def t_bad_regex_refused():
    """-t refuses a block.regex that does not compile, with file:line"""
    bad = Daemon('''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; };
block: {
  regex = ["^ok\\\\.", "(unclosed"];
};
''' % up.port, wait=False)
    rc, out, err = run(["-t", "-c", bad.conf])
    assert rc != 0, err
    assert "splitdns.conf:4: block.regex '(unclosed': missing closing parenthesis" in err, err
    bad.proc.wait(timeout=10)


# Every common type, for a name blocked by block.domains, a list name rule
# and a regex, in each answer mode.
TYPES = ["A", "AAAA", "HTTPS", "SVCB", "MX", "TXT", "CNAME", "ANY", "NS",
         "SOA", "PTR", "SRV", "CAA", "DS", "NAPTR"]
NAMES = ["blocked.example", "www.plain.example", "ad3.example"]


def every_type(port, want):
    for n in NAMES:
        for t in TYPES:
            for tcp in (False, True):
                q, r = query(n, t, port=port, tcp=tcp)
                want(n, t, r)


@test
def t_every_type_null():
    """null: A 0.0.0.0, AAAA ::, every other type NODATA with SOA"""
    up.clear()

    def want(n, t, r):
        if t in ("A", "AAAA"):
            eq(texts(r), ["%s. %s %s" % (n, t, "0.0.0.0" if t == "A" else "::")], n + " " + t)
        else:
            eq((rcode(r), r.answer), ("NOERROR", []), "%s %s: NODATA" % (n, t))
            eq(r.authority[0].rdtype, dns.rdatatype.SOA, "%s %s: SOA" % (n, t))
    every_type(P, want)
    eq(up.queries(), [], "no type of a blocked name leaves")


def mode_test(answer, want):
    m = daemon(answer)
    up.clear()
    try:
        every_type(m.port, want)
        eq(up.queries(), [], "no type of a blocked name leaves (%s)" % answer)
    finally:
        m.stop()


@test
def t_every_type_nxdomain():
    """nxdomain: every type NXDOMAIN"""
    def want(n, t, r):
        eq((rcode(r), r.answer), ("NXDOMAIN", []), "%s %s" % (n, t))
    mode_test("nxdomain", want)


@test
def t_every_type_nodata():
    """nodata: every type NODATA with SOA"""
    def want(n, t, r):
        eq((rcode(r), r.answer), ("NOERROR", []), "%s %s" % (n, t))
        eq(r.authority[0].rdtype, dns.rdatatype.SOA, "%s %s: SOA" % (n, t))
    mode_test("nodata", want)


@test
def t_every_type_refused():
    """refused: every type REFUSED"""
    def want(n, t, r):
        eq((rcode(r), r.answer), ("REFUSED", []), "%s %s" % (n, t))
    mode_test("refused", want)


@test
def t_every_type_address():
    """addresses: A and AAAA get them, every other type NODATA"""
    def want(n, t, r):
        if t == "A":
            eq(texts(r), ["%s. A 192.0.2.7" % n], n)
        elif t == "AAAA":
            eq(texts(r), ["%s. AAAA 2001:db8::7" % n], n)
        else:
            eq((rcode(r), r.answer), ("NOERROR", []), "%s %s: NODATA" % (n, t))
            eq(r.authority[0].rdtype, dns.rdatatype.SOA, "%s %s: SOA" % (n, t))
    mode_test("192.0.2.7, 2001:db8::7", want)


@test
def t_every_type_address_v4_only():
    """an IPv4 address alone: AAAA and HTTPS get NODATA"""
    def want(n, t, r):
        if t == "A":
            eq(texts(r), ["%s. A 192.0.2.8" % n], n)
        else:
            eq((rcode(r), r.answer), ("NOERROR", []), "%s %s: NODATA" % (n, t))
    mode_test("192.0.2.8", want)


@test
def t_stop():
    """the daemon exits cleanly"""
    d.stop()
    up.stop()


done()
