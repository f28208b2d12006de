#!/usr/bin/python3
"""Client groups (clients = ( ... )) and the canaries, through the daemon.

Queries come from 127.0.0.1 (no group: the top-level settings), 127.0.0.2
(kids: a stricter list, NXDOMAIN answers), 127.0.0.3 and ::1 (guests:
their own upstream, REFUSED answers, no Firefox canary).  Each gets its
group's answers and upstream; a forward rule still wins for its domain; a
cached answer from one group's upstream is not served to another group;
deep CNAME blocking is judged per client; SIGUSR1 logs queries and blocks
per group, and a reload keeps them; --explain --client names the group.
Then use-application-dns.net, mask.icloud.com and resolver.arpa.
"""
import os
import re
import signal
import time

import dns.message
import dns.query
import dns.rdatatype

import sdtest
from sdtest import Daemon, Upstream, check, eq, rcode, rrs, uniq

tap = sdtest.TAP()
up_a = Upstream()   # the default servers and the forward rule
up_b = Upstream()   # the guests' servers

CONF = """listen = {listen};
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 500; tries = 2; };
forward = ( { domain = "corp.example"; servers = ["127.0.0.1:%d"]; } );
block: { lists = ["top.txt"]; };
clients = (
  { name = "kids"; match = ["127.0.0.2/32", "fd00::64/122"];
    block: { lists = ["top.txt", "kids.txt"]; answer = "nxdomain"; }; },
  { name = "guests"; match = ["127.0.0.3", "::1"];
    block: { answer = "refused"; firefox_canary = false; };
    upstream: { servers = ["[::1]:%d"]; }; }
);
""" % (up_a.port, up_a.port, up_b.port)

TOP = "ads.example.org\n"
KIDS = "games.example.org\ntarget.example.net\n"

d = Daemon(CONF, zones={"top.txt": TOP, "kids.txt": KIDS})
tap.at_end(d.stop)
P = d.port

# What each client sent, and how many of those were blocking answers, for
# the exact per-group counters.
sent = {"default": 0, "kids": 0, "guests": 0}
blocks = {"default": 0, "kids": 0, "guests": 0}
GROUP_OF = {"127.0.0.1": "default", "127.0.0.2": "kids",
            "127.0.0.3": "guests", "::1": "guests"}


def ask(name, source, rdtype="A", tcp=False, blocked=False):
    """A query from source (bound to it) to the daemon over its family."""
    q = dns.message.make_query(name, rdtype)
    addr = "::1" if ":" in source else "127.0.0.1"
    if tcp:
        r = dns.query.tcp(q, addr, port=P, timeout=3, source=source)
    else:
        r = dns.query.udp(q, addr, port=P, timeout=3, source=source,
                          ignore_trailing=False)
    eq(r.id, q.id, "reply ID")
    sent[GROUP_OF[source]] += 1
    if blocked:
        blocks[GROUP_OF[source]] += 1
    return r


def a_of(r):
    return [x.split()[-1] for x in rrs(r.answer) if " A " in x]


@tap.test("each group gets its own blocking answers (UDP and TCP)")
def t_block_answers():
    for tcp in (False, True):
        r = ask("ads.example.org", "127.0.0.1", tcp=tcp, blocked=True)
        eq(a_of(r), ["0.0.0.0"], "default: the top-level null answer")
        r = ask("games.example.org", "127.0.0.1", tcp=tcp)
        check(a_of(r) and a_of(r) != ["0.0.0.0"],
              "default: the kids' list does not apply: %s" % rrs(r.answer))
        r = ask("games.example.org", "127.0.0.2", tcp=tcp, blocked=True)
        eq(rcode(r), "NXDOMAIN", "kids: their list, their answer")
        r = ask("x.ads.example.org", "127.0.0.2", tcp=tcp, blocked=True)
        eq(rcode(r), "NXDOMAIN", "kids: the top list they repeat")
        for src in ("127.0.0.3", "::1"):
            r = ask("ads.example.org", src, tcp=tcp, blocked=True)
            eq(rcode(r), "REFUSED", "guests from %s: their answer" % src)
            r = ask("games.example.org", src, tcp=tcp)
            check(a_of(r), "guests: not on their list")


@tap.test("guests use their own upstream; a forward rule still wins")
def t_upstreams():
    n = uniq("g")
    r = ask(n, "127.0.0.3")
    check(a_of(r), "answered")
    check(up_b.saw(n) and not up_a.saw(n), "guests' query went to up_b")
    n = uniq("d")
    ask(n, "127.0.0.1")
    check(up_a.saw(n) and not up_b.saw(n), "default query went to up_a")
    n = uniq("k")
    ask(n, "127.0.0.2")
    check(up_a.saw(n) and not up_b.saw(n), "kids: the top-level servers")
    n = uniq("v", "corp.example")
    ask(n, "::1")
    check(up_a.saw(n) and not up_b.saw(n),
          "guests: corp.example still goes to its forward rule")


@tap.test("rebind protection covers a group's own servers as it does the "
          "default ones")
def t_rebind():
    for src in ("127.0.0.1", "127.0.0.3"):
        n = uniq("private")  # upstream: A 192.168.1.1
        r = ask(n, src)
        eq(rcode(r), "NXDOMAIN", "from %s" % src)
    check(up_b.saw(n), "the guests' query reached their upstream")


@tap.test("an answer cached from one group's upstream is not served to "
          "another group")
def t_cache_apart():
    n = uniq("shared")
    ask(n, "127.0.0.1")
    eq(len(up_a.saw(n, "A")), 1, "up_a asked once")
    ask(n, "127.0.0.2")
    eq(len(up_a.saw(n, "A")), 1, "kids share the default upstream's cache")
    eq(len(up_b.saw(n, "A")), 0, "up_b not asked yet")
    ask(n, "127.0.0.3")
    eq(len(up_b.saw(n, "A")), 1, "guests asked their own upstream")
    ask(n, "::1")
    eq(len(up_b.saw(n, "A")), 1, "and then got it from their cache")


@tap.test("deep CNAME blocking is each client's own: a cached answer "
          "passes for default, not for kids")
def t_cname_per_group():
    n = uniq("cname")  # upstream: CNAME target.example.net, then its A
    r = ask(n, "127.0.0.1")
    check(any(" CNAME " in x for x in rrs(r.answer)), "default: the chain")
    r = ask(n, "127.0.0.2", blocked=True)
    eq(rcode(r), "NXDOMAIN", "kids: target.example.net is on their list")
    r = ask(n, "127.0.0.1")
    check(any(" CNAME " in x for x in rrs(r.answer)),
          "default: still the chain")


def group_lines():
    """The latest SIGUSR1 figures per group: {name: (queries, blocked)}."""
    mark = len(d.stderr())
    d.proc.send_signal(signal.SIGUSR1)
    sdtest.wait_for(lambda: "client group default" in d.stderr()[mark:], 5)
    out = {}
    for m in re.finditer(r"client group (\S+): queries (\d+), blocked (\d+)",
                         d.stderr()[mark:]):
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


@tap.test("SIGUSR1: queries and blocking answers per group, exactly")
def t_counters():
    got = group_lines()
    for g in ("default", "kids", "guests"):
        eq(got.get(g), (sent[g], blocks[g]), "group %s" % g)


@tap.test("a reload keeps the per-group counters and applies a changed "
          "group list")
def t_reload():
    before = group_lines()
    with open(os.path.join(d.dir, "kids.txt"), "a") as f:
        f.write("later.example.org\n")
    mark = len(d.stderr())
    d.proc.send_signal(signal.SIGHUP)
    sdtest.wait_for(lambda: "reloaded" in d.stderr()[mark:], 10)
    r = ask("later.example.org", "127.0.0.2", blocked=True)
    eq(rcode(r), "NXDOMAIN", "kids: the new entry blocks")
    r = ask("later.example.org", "127.0.0.1")
    check(a_of(r), "default: not blocked")
    after = group_lines()
    eq(after["kids"], (before["kids"][0] + 1, before["kids"][1] + 1),
       "kids' counters carried over")
    eq(after["default"][0], before["default"][0] + 1, "default's too")


def explain(*args):
    p = sdtest.run(["-c", d.conf, "--explain"] + list(args))
    eq(p.returncode, 0, p.stderr)
    return p.stdout


@tap.test("--explain --client names the group that decided")
def t_explain():
    out = explain("games.example.org", "A", "--client", "127.0.0.2")
    check("client group kids (match 127.0.0.2/32" in out, out)
    check("blocked" in out and "kids.txt blocks it" in out, out)
    check("NXDOMAIN" in out, out)
    out = explain("www.example.com", "A", "--client", "::1")
    check("client group guests (match ::1" in out, out)
    check("upstreams of client group 'guests'" in out
          and "[::1]:%d" % up_b.port in out, out)
    out = explain("host.corp.example", "A", "--client", "127.0.0.3")
    check("forward rule for 'corp.example'" in out, out)
    out = explain("games.example.org", "A", "--client", "127.0.0.9")
    check("default (no client group matches)" in out, out)
    out = explain("use-application-dns.net", "A", "--client", "127.0.0.1")
    check("canary" in out and "NXDOMAIN" in out, out)


# ---- the canaries

@tap.test("use-application-dns.net: NXDOMAIN, never forwarded; off for "
          "guests (block.firefox_canary = false)")
def t_firefox():
    for t in ("A", "AAAA"):
        r = ask("use-application-dns.net", "127.0.0.1", t)
        eq(rcode(r), "NXDOMAIN", t)
        check(r.authority and r.authority[0].rdtype == dns.rdatatype.SOA,
              "a SOA for negative caching")
        eq(r.authority[0].ttl, 10, "the block TTL, 10 s by default")
    r = ask("use-application-dns.net", "127.0.0.2")
    eq(rcode(r), "NXDOMAIN", "kids inherit the default (on)")
    eq(up_a.saw("use-application-dns.net"), [], "never sent upstream")
    r = ask("use-application-dns.net", "127.0.0.3")
    check(a_of(r), "guests: forwarded")
    check(up_b.saw("use-application-dns.net"), "to the guests' upstream")


@tap.test("mask.icloud.com and mask-h2.icloud.com: NXDOMAIN where names "
          "are blocked (icloud_private_relay not set)")
def t_icloud():
    for n in ("mask.icloud.com", "mask-h2.icloud.com"):
        for src in ("127.0.0.1", "127.0.0.3"):
            r = ask(n, src, "AAAA")
            eq(rcode(r), "NXDOMAIN", "%s from %s" % (n, src))
        eq(up_a.saw(n) + up_b.saw(n), [], "never sent upstream")


@tap.test("resolver.arpa (DDR): NODATA for every name and type below it, "
          "never forwarded")
def t_ddr():
    for n, t in (("_dns.resolver.arpa", "SVCB"), ("resolver.arpa", "A"),
                 ("x.y.RESOLVER.ARPA", "HTTPS")):
        for src in ("127.0.0.1", "::1"):
            r = ask(n, src, t)
            eq(rcode(r), "NOERROR", n)
            eq(r.answer, [], "%s %s: no answer" % (n, t))
            check(r.authority and r.authority[0].rdtype == dns.rdatatype.SOA,
                  "a SOA")
        eq(up_a.saw(n) + up_b.saw(n), [], "never sent upstream")


@tap.test("the canaries are counted on their own in SIGUSR1")
def t_canary_count():
    mark = len(d.stderr())
    d.proc.send_signal(signal.SIGUSR1)
    sdtest.wait_for(lambda: "stats:" in d.stderr()[mark:], 5)
    m = re.search(r"canary (\d+)", d.stderr()[mark:])
    check(m, d.stderr()[mark:])
    eq(int(m.group(1)), 3 + 4 + 6, "Firefox 3, iCloud 4, DDR 6")


# With nothing blocked and icloud_private_relay not set, Private Relay is
# left alone; set to true, it is turned off even so.
PLAIN = """listen = {listen};
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 500; };
clients = ( { name = "strict"; match = ["127.0.0.2"];
              block: { icloud_private_relay = true; }; } );
""" % up_a.port


@tap.test("no blocking: Private Relay left alone unless "
          "icloud_private_relay = true")
def t_icloud_default_off():
    p = Daemon(PLAIN)
    try:
        q = dns.message.make_query("mask.icloud.com", "A")
        r = dns.query.udp(q, "127.0.0.1", port=p.port, timeout=3)
        check(a_of(r), "forwarded: %s" % r)
        r = dns.query.udp(q, "127.0.0.1", port=p.port, timeout=3,
                          source="127.0.0.2")
        eq(rcode(r), "NXDOMAIN", "the strict group turns it off")
        q = dns.message.make_query("_dns.resolver.arpa", "SVCB")
        r = dns.query.udp(q, "127.0.0.1", port=p.port, timeout=3)
        eq((rcode(r), r.answer), ("NOERROR", []), "DDR: NODATA always")
    finally:
        p.stop()

@tap.test("a group's block.regex replaces the top-level one; download "
          "settings in a group are refused with file:line")
def t_group_regex_and_top_keys():
    import tempfile
    conf = """listen = {listen};
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 500; };
block: { regex = ["^ads[0-9]+[.]"]; };
clients = ( { name = "strict"; match = ["127.0.0.2"];
              block: { regex = ["^track[.]"]; }; } );
""" % up_a.port
    p = Daemon(conf)
    try:
        def blocked(name, src):
            q = dns.message.make_query(name, "A")
            r = dns.query.udp(q, "127.0.0.1", port=p.port, timeout=3,
                              source=src)
            return a_of(r) == ["0.0.0.0"]
        check(blocked("ads12.example.com", "127.0.0.1"), "top regex blocks")
        check(not blocked("track.example.com", "127.0.0.1"),
              "the group's regex is not the top's")
        check(blocked("track.example.com", "127.0.0.2"), "group regex blocks")
        check(not blocked("ads12.example.com", "127.0.0.2"),
              "the group's regex replaced the top-level one")
    finally:
        p.stop()
    folder = tempfile.mkdtemp(prefix="sdgroups.")
    for key in ("refresh = 100;", "fetch_timeout = 5;",
                "max_list_size = 1000;", 'ca = "x.pem";'):
        path = os.path.join(folder, "g.conf")
        with open(path, "w") as f:
            f.write('listen = ["127.0.0.1:1"];\n'
                    'upstream: { servers = ["127.0.0.1"]; };\n'
                    'clients = ( { name = "k"; match = ["10.0.0.0/8"];\n'
                    '  block: { %s }; } );\n' % key)
        r = sdtest.run(["-t", "-c", path])
        name = key.split()[0]
        eq(r.returncode, 1, "-t refuses %s in a group" % name)
        check("g.conf:4:" in r.stderr and "top-level block group" in
              r.stderr and name in r.stderr, r.stderr)


tap.done()
