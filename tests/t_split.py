#!/usr/bin/python3
"""Split DNS: forward rules with two real upstreams, refusing rules, private
names, rebind protection, PTR from zones, --explain, and live reload."""
import os
import signal
import threading
import time

import dns.flags
import dns.message
import dns.rdatatype

from harness import Daemon, Upstream, done, eq, query, rcode, run, test, texts

HOME = r'''
origin = "home.lab";
ttl = 300;
authoritative = true;
ptr = true;
reverse = ["192.168.1.0/24", "fd00::/64"];
records = (
  { name = "nas";   type = "A";     data = "192.168.1.10"; },
  { name = "nas2";  type = "A";     data = "192.168.1.10"; },
  { name = "nas";   type = "AAAA";  data = "fd00::10"; },
  { name = "vpn";   type = "CNAME"; data = "srv.corp.example."; },
  { name = "pub";   type = "CNAME"; data = "www.example.net."; },
  { name = "dead";  type = "CNAME"; data = "timeout.example.net."; }
);
'''

CONF = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 300; tries = 2; };
zones = ["home.zone"];
forward = (
  { domain = "corp.example"; servers = ["127.0.0.1:%d"]; },
  { domain = "deep.corp.example"; servers = ["[::1]:%d"]; },
  { domain = "secret.example"; refuse = true; },
  { domain = "10.in-addr.arpa"; servers = ["127.0.0.1:%d"]; }
);
rebind_ok = ["ok.example"];
'''

A = Upstream()  # default
B = Upstream()  # corp.example (the "VPN" server)
d = Daemon(CONF % (A.port, B.port, A.port, B.port), zones={"home.zone": HOME})
P = d.port


def clear():
    A.clear()
    B.clear()


@test
def t_rules():
    """longest matching forward rule wins; the rest goes to the default upstream"""
    clear()
    for tcp in (False, True):
        q, r = query("www.corp.example", port=P, tcp=tcp)
        eq(rcode(r), "NOERROR")
        q, r = query("x.deep.corp.example", port=P, tcp=tcp)
        eq(rcode(r), "NOERROR")
        q, r = query("www.example.org", port=P, tcp=tcp)
        eq(rcode(r), "NOERROR")
    assert B.saw("www.corp.example") and not A.saw("www.corp.example")
    assert A.saw("x.deep.corp.example") and not B.saw("x.deep.corp.example"), \
        "deep.corp.example goes to its own rule (A on ::1)"
    assert A.saw("www.example.org") and not B.saw("www.example.org")


@test
def t_refuse():
    """refuse = true: REFUSED with the client's ID, never forwarded"""
    clear()
    for tcp in (False, True):
        q, r = query("a.secret.example", port=P, tcp=tcp, qid=777)
        eq(rcode(r), "REFUSED")
        eq(r.id, 777)
    eq(A.saw("a.secret.example") + B.saw("a.secret.example"), [], "upstream queries")


@test
def t_private():
    """single-label names and private reverse names stay local (NXDOMAIN)"""
    clear()
    for name, t in (("nas", "A"), ("printer", "AAAA"), ("4.3.168.192.in-addr.arpa", "PTR"),
                    ("1.0.16.172.in-addr.arpa", "PTR"), ("x.home.arpa", "A"),
                    ("foo.local", "A"),
                    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                     "PTR")):
        q, r = query(name, t, port=P)
        eq(rcode(r), "NXDOMAIN", name)
    eq(A.queries() + B.queries(), [], "nothing left the host")


@test
def t_single_label_other_types():
    """single-label names of other types (a validating client's "com DS") go out"""
    clear()
    q, r = query("com", "DS", port=P)
    assert A.saw("com"), "forwarded"


@test
def t_private_soa_and_classes():
    """private NXDOMAIN carries a SOA (cacheable); names of classes other than
    IN (CH, ANY), local or not, are refused, never forwarded"""
    clear()
    q, r = query("printer", port=P)
    eq(r.authority[0].rdtype, dns.rdatatype.SOA, "SOA in authority")
    q, r = query("nas.home.lab", "TXT", port=P, rdclass="CH")
    eq(rcode(r), "REFUSED")
    q, r = query("nas.home.lab", "A", port=P, rdclass="ANY")
    eq(rcode(r), "REFUSED", "class ANY: only IN is served")
    q, r = query("version.bind", "TXT", port=P, rdclass="CH")
    eq(rcode(r), "REFUSED", "version.bind CH")
    q, r = query("www.example.org", "A", port=P, rdclass="CH")
    eq(rcode(r), "REFUSED", "a non-local name in class CH")
    eq(A.queries() + B.queries(), [], "nothing left the host")


@test
def t_private_rule():
    """a forward rule takes a private reverse zone out of the private set"""
    clear()
    q, r = query("1.0.0.10.in-addr.arpa", "PTR", port=P)
    assert B.saw("1.0.0.10.in-addr.arpa"), "sent to the rule's server"


@test
def t_ptr():
    """ptr = true: PTR for the zone's addresses, first name wins; NXDOMAIN in
    the declared reverse zone"""
    for tcp in (False, True):
        q, r = query("10.1.168.192.in-addr.arpa", "PTR", port=P, tcp=tcp)
        eq(texts(r), ["10.1.168.192.in-addr.arpa. PTR nas.home.lab."])
        q, r = query("99.1.168.192.in-addr.arpa", "PTR", port=P, tcp=tcp)
        eq(rcode(r), "NXDOMAIN")
        eq(r.authority[0].rdtype, dns.rdatatype.SOA)
    rev6 = "0.1.0.0." + "0." * 26 + "d.f.ip6.arpa"
    q, r = query(rev6, "PTR", port=P)
    eq(texts(r), [rev6 + ". PTR nas.home.lab."])


@test
def t_cname_remote():
    """local CNAME to a name behind a forward rule: chased there, whole chain back"""
    clear()
    q, r = query("vpn.home.lab", port=P, qid=31337)
    eq(r.id, 31337)
    names = texts(r)
    eq(names[0], "srv.corp.example. A " + names[0].split()[-1])
    eq(names[1], "vpn.home.lab. CNAME srv.corp.example.")
    assert B.saw("srv.corp.example") and not A.saw("srv.corp.example")
    q, r = query("pub.home.lab", "AAAA", port=P, tcp=True)
    assert any(" AAAA 2001:db8::" in t for t in texts(r)), texts(r)


@test
def t_cname_remote_fail():
    """a chased target that fails gives SERVFAIL with the client's ID"""
    q, r = query("dead.home.lab", port=P, qid=4321, timeout=5)
    eq(rcode(r), "SERVFAIL")
    eq(r.id, 4321)


@test
def t_rebind():
    """a public name answered with a private address becomes NXDOMAIN, except
    for rebind_ok domains and forward rules"""
    q, r = query("private.example.org", port=P)
    eq(rcode(r), "NXDOMAIN")
    q, r = query("private.ok.example", port=P)
    eq(texts(r), ["private.ok.example. A 192.168.1.1"])
    q, r = query("private.corp.example", port=P)
    eq(texts(r), ["private.corp.example. A 192.168.1.1"])


@test
def t_rebind_disguised():
    """rebind protection sees private IPv4 behind NAT64 (64:ff9b::/96) and
    IPv4-compatible forms, site-local fec0::/10, and SVCB/HTTPS ipv4hint"""
    for label in ("nat64", "v4compat", "sitelocal"):
        q, r = query(label + ".example.org", "AAAA", port=P)
        eq(rcode(r), "NXDOMAIN", label)
    q, r = query("public6.example.org", "AAAA", port=P)
    eq(texts(r), ["public6.example.org. AAAA 2001:db8::1"])
    q, r = query("privatehint.example.org", "HTTPS", port=P)
    eq(rcode(r), "NXDOMAIN", "a private ipv4hint")
    q, r = query("publichint.example.org", "HTTPS", port=P)
    eq((rcode(r), len(r.answer)), ("NOERROR", 1), "a public ipv4hint")


def explain(*args):
    rc, out, err = run(["-c", d.conf, "--explain"] + list(args))
    eq(rc, 0, "exit status: " + err)
    return out


@test
def t_explain():
    """--explain names the rule for each kind of answer"""
    out = explain("nas.home.lab")
    assert "local data" in out and "home.zone:" in out and "A 192.168.1.10" in out, out
    assert "NXDOMAIN" in explain("nope.home.lab", "A")
    out = explain("x.deep.corp.example")
    assert "forward rule for 'deep.corp.example'" in out and "[::1]:%d" % A.port in out, out
    assert "refuse = true" in explain("a.secret.example")
    assert "private name" in explain("printer")
    out = explain("www.example.org")
    assert "default upstreams" in out and "127.0.0.1:%d" % A.port in out, out
    out = explain("vpn.home.lab")
    assert "CNAME" in out and "forward rule for 'corp.example'" in out, out
    out = explain("10.1.168.192.in-addr.arpa", "PTR")
    assert "PTR nas.home.lab." in out, out
    rc, out, err = run(["-c", d.conf, "--explain", "bad..name"])
    eq(rc, 1)


@test
def t_reload_under_load():
    """SIGHUP while a client queries continuously: nothing lost, answers switch"""
    stop = threading.Event()
    seen = {"lost": 0, "answers": set(), "count": 0}

    def client():
        while not stop.is_set():
            try:
                q, r = query("nas.home.lab", port=P, timeout=1)
                seen["answers"].add(texts(r)[0].split()[-1])
                q, r = query("www.example.net", port=P, timeout=1)
                assert rcode(r) == "NOERROR"
                seen["count"] += 2
            except Exception:
                seen["lost"] += 1

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    end = time.time() + 10
    i = 0
    while time.time() < end:
        i += 1
        d.write("home.zone", HOME.replace("192.168.1.10", "192.168.1.%d" % (100 + i % 50)))
        d.signal(signal.SIGHUP)
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    eq(seen["lost"], 0, "unanswered queries out of %d" % seen["count"])
    assert len(seen["answers"]) >= 5, "answers switched: %r" % seen["answers"]
    assert seen["count"] > 200, "queries: %d" % seen["count"]
    d.write("home.zone", HOME)
    d.signal(signal.SIGHUP)
    time.sleep(0.3)
    q, r = query("nas.home.lab", port=P)
    eq(texts(r), ["nas.home.lab. A 192.168.1.10"])


@test
def t_reload_broken():
    """a broken config on reload is reported with file:line; the old one serves"""
    d.write("home.zone", HOME.replace('data = "192.168.1.10"', 'data = "300.1.1.1"', 1))
    d.signal(signal.SIGHUP)
    time.sleep(0.3)
    q, r = query("nas.home.lab", port=P)
    eq(texts(r), ["nas.home.lab. A 192.168.1.10"])
    assert "reload failed" in d.stderr() and "home.zone:8:" in d.stderr(), d.stderr()
    d.write("home.zone", HOME)


@test
def t_reload_rules():
    """reload changes forward rules: new channels, answers from the new server"""
    d.write("splitdns.conf", (CONF % (A.port, A.port, A.port, B.port)).replace(
        "@LISTEN@", '["127.0.0.1:%d", "[::1]:%d"]' % (P, P)))
    d.signal(signal.SIGHUP)
    time.sleep(0.3)
    clear()
    q, r = query("www.corp.example", port=P)
    eq(rcode(r), "NOERROR")
    assert A.saw("www.corp.example") and not B.saw("www.corp.example"), (A.queries(), B.queries(), d.stderr()[-600:])


@test
def t_access():
    """clients outside access.allow get REFUSED with their ID over UDP, and
    their TCP connections are closed at accept; others are served"""
    d2 = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                'access: { allow = ["10.0.0.0/8", "::1"]; };' % A.port)
    try:
        q, r = query("www.example.org", port=d2.port, qid=55)
        eq(rcode(r), "REFUSED")
        eq(r.id, 55)
        try:
            q, r = query("www.example.org", port=d2.port, tcp=True)
            raise AssertionError("an outsider got a TCP answer: %s" % rcode(r))
        except (EOFError, ConnectionError, OSError):
            pass  # closed at accept: no slot held, nothing answered
        q, r = query("www.example.org", port=d2.port, addr="::1")
        eq(rcode(r), "NOERROR")
        q, r = query("www.example.org", port=d2.port, addr="::1", tcp=True)
        eq(rcode(r), "NOERROR", "an insider over TCP")
    finally:
        d2.stop()


@test
def t_user():
    """user = "nobody": bound as root, then serving as nobody; bad names refused"""
    import os
    import pwd
    if os.geteuid() != 0:
        print("# not root: only the unknown user is checked")
    else:
        d3 = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
                    'user = "nobody";' % A.port)
        try:
            os.chmod(d3.dir, 0o755)
            with open("/proc/%d/status" % d3.proc.pid) as f:
                uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
            eq(set(uids), {str(pwd.getpwnam("nobody").pw_uid)}, "real/effective/saved uid")
            q, r = query("www.example.org", port=d3.port)
            eq(rcode(r), "NOERROR")
            os.chmod(d3.conf, 0o644)
            d3.signal(signal.SIGHUP)
            time.sleep(0.3)
            q, r = query("www.example.org", port=d3.port)
            eq(rcode(r), "NOERROR")
            assert "reloaded" in d3.stderr(), d3.stderr()
        finally:
            d3.stop()
    d4 = Daemon('listen = @LISTEN@;\nuser = "no-such-user-here";', wait=False)
    eq(d4.proc.wait(timeout=10), 1)
    assert "splitdns.conf:2: user 'no-such-user-here'" in d4.stderr(), d4.stderr()


@test
def t_stop():
    """SIGTERM after reloads: exit status 0, nothing leaked"""
    d.stop()
    A.stop()
    B.stop()


done()
