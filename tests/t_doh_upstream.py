#!/usr/bin/python3
"""DNS over HTTPS upstreams against dnsdist's DoH frontend (Debian's
dnsdist 1.7, addDOHLocal), with a CA and certificates made here by
certtool, and tests/upstream.py as dnsdist's backend: answers with the
client's ID, many queries on one connection (counted at dnsdist), the
address from #ADDR and looked up through the plain servers, refused
certificates (another name, expired, unknown CA) that give SERVFAIL, a log
line and no query anywhere, an HTTP error (404) that moves to the next
server or gives SERVFAIL, and nghttpd (an HTTP/2 server that is not DoH)
for a body that is no DNS message, another content type and an oversized
body; a mixed list, a client group, a reload, a server that dies, idle
close and resumption, and the -t checks."""
import base64
import os
import shutil
import socket
import subprocess
import time

import sdtest
from sdtest import (Daemon, TAP, Upstream, ask, check, eq, free_port,
                    make_query, rcode, tmpdir, uniq, wait_for)

tap = TAP()
D = tmpdir("sddohup.")

# A build without TLS refuses https:// servers at -t, with file:line.
_probe = sdtest.write(D, "probe.conf", 'listen = ["127.0.0.1:5300"];\n'
                      'upstream: { servers = ["192.0.2.1",\n'
                      '  "https://dns.example/dns-query#192.0.2.2"]; };\n')
_res = sdtest.run(["-t", "-c", _probe])
if "without TLS" in _res.stderr:
    @tap.test("built --without-tls: https:// refused by -t with file:line")
    def t_without_tls():
        eq(_res.returncode, 1, "exit status")
        check(_res.stderr.startswith(_probe + ":3: "), _res.stderr)
        check("https://" in _res.stderr, _res.stderr)
    tap.done()


@tap.test("-t: https:// without #ADDR and no plain server to look it up "
          "through: refused with file:line")
def t_no_lookup():
    conf = sdtest.write(D, "nolookup.conf",
                        'listen = ["127.0.0.1:5300"];\n'
                        'upstream: { servers = [\n'
                        '  "tls://192.0.2.1#dns.example",\n'
                        '  "https://dns.example/dns-query"]; };\n')
    res = sdtest.run(["-t", "-c", conf])
    eq(res.returncode, 1, "exit status")
    check(res.stderr.startswith(conf + ":4: "), res.stderr)
    check("looked up" in res.stderr, res.stderr)
    ok = sdtest.write(D, "lookup.conf",
                      'listen = ["127.0.0.1:5300"];\n'
                      'upstream: { servers = ["192.0.2.53",\n'
                      '  "https://dns.example/dns-query"]; };\n')
    eq(sdtest.run(["-t", "-c", ok]).returncode, 0, "with a plain server")


if not (shutil.which("dnsdist") and shutil.which("certtool")):
    tap.skip("DNS over HTTPS upstreams", "needs dnsdist and certtool "
             "(gnutls-bin)")
    tap.done()


def certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)


def template(name, text):
    return sdtest.write(D, name, text)


def make_ca(name):
    key = os.path.join(D, name + ".key")
    pem = os.path.join(D, name + ".pem")
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    certtool("--generate-self-signed", "--load-privkey", key, "--template",
             template(name + ".tmpl", 'cn = "splitdns test %s"\nca\n'
                      "cert_signing_key\nexpiration_days = 30\n"),
             "--outfile", pem)
    return key, pem


def make_cert(name, ca, dates):
    """A server certificate for doh.test and 127.0.0.1, signed by ca."""
    key = os.path.join(D, name + ".key")
    pem = os.path.join(D, name + ".pem")
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    certtool("--generate-certificate", "--load-privkey", key,
             "--load-ca-certificate", ca[1], "--load-ca-privkey", ca[0],
             "--template", template(name + ".tmpl",
                                    'cn = "doh.test"\ndns_name = "doh.test"\n'
                                    'ip_address = "127.0.0.1"\n'
                                    "tls_www_server\nsigning_key\n"
                                    "encryption_key\n" + dates),
             "--outfile", pem)
    return key, pem


CA = make_ca("ca")
GOOD = make_cert("good", CA, "expiration_days = 30\n")
EXPIRED = make_cert("expired", CA,
                    'activation_date = "2020-01-01 00:00:00 UTC"\n'
                    'expiration_date = "2020-06-01 00:00:00 UTC"\n')


class Dnsdist:
    """dnsdist in the foreground: a DoH frontend on 127.0.0.1:doh (path
    /dns-query) and a plain one on 127.0.0.1:plain, both relaying to
    backend (tests/upstream.py); the plain one answers doh.test with
    127.0.0.1 itself (the name splitdns looks up)."""

    def __init__(self, cert, backend):
        self.dir = tmpdir("sddd.")
        self.doh, self.plain, self.ctl = free_port(), free_port(), free_port()
        self.key = base64.b64encode(os.urandom(32)).decode()
        self.conf = sdtest.write(self.dir, "dnsdist.lua", '''
setSecurityPollSuffix("")
setLocal("127.0.0.1:%(plain)d")
addDOHLocal("127.0.0.1:%(doh)d", "%(pem)s", "%(key)s", "/dns-query")
newServer({address = "127.0.0.1:%(backend)d", checkInterval = 1})
addAction(QNameRule("doh.test"), SpoofAction({"127.0.0.1"}))
controlSocket("127.0.0.1:%(ctl)d")
setKey("%(ckey)s")
''' % {"plain": self.plain, "doh": self.doh, "pem": cert[1],
       "key": cert[0], "backend": backend, "ctl": self.ctl,
       "ckey": self.key})
        self.start()

    def start(self):
        self.errpath = os.path.join(self.dir, "out.%d" % time.time_ns())
        self.proc = subprocess.Popen(
            ["dnsdist", "--supervised", "--disable-syslog", "-C", self.conf],
            stdin=subprocess.DEVNULL, stdout=open(self.errpath, "w"),
            stderr=subprocess.STDOUT)
        sdtest._children.append(self.proc)

        def up():
            if self.proc.poll() is not None:
                return True
            try:
                return rcode(ask(make_query(uniq("ddready")), self.plain,
                                 timeout=0.5)) == "NOERROR"
            except Exception:
                return False
        check(wait_for(up, 15, step=0.3) and self.proc.poll() is None,
              "dnsdist did not start:\n" + open(self.errpath).read())

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def console(self, cmd):
        return subprocess.run(["dnsdist", "-c", "127.0.0.1:%d" % self.ctl,
                               "-k", self.key, "-e", cmd],
                              capture_output=True, text=True,
                              timeout=10).stdout

    def frontend(self):
        """showDOHFrontends()'s counters of the DoH frontend."""
        lines = self.console("showDOHFrontends()").splitlines()
        head = lines[0].split()
        row = lines[1].split()
        return dict(zip(head[2:], (int(x) for x in row[2:len(head)])))

    def connections(self):
        """Established TCP connections to the DoH port, at the server."""
        return len(sdtest.tcp_established(self.doh, ["127.0.0.1"]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


up = Upstream()
good = Dnsdist(GOOD, up.port)
expired = Dnsdist(EXPIRED, up.port)
dying = Dnsdist(GOOD, up.port)
tap.at_end(good.stop)
tap.at_end(expired.stop)
tap.at_end(dying.stop)
dead_port = free_port()  # nothing listens there

SERVER = "https://doh.test:%d/dns-query" % good.doh
CONF = '''listen = {listen};
threads = 1;
upstream: { servers = ["%(server)s", "127.0.0.1:%(plain)d"];
            timeout_ms = 1000; tries = 2; };
tls: { ca = "%(ca)s"; upstream_idle_timeout_ms = 1500; };
forward = (
  { domain = "addr.example.net"; servers = ["https://doh.test:%(doh)d#127.0.0.1"]; },
  { domain = "byip.example.net"; servers = ["https://127.0.0.1:%(doh)d/dns-query"]; },
  { domain = "wrongname.example.net";
    servers = ["https://other.test:%(doh)d/dns-query#127.0.0.1"]; },
  { domain = "expired.example.net";
    servers = ["https://doh.test:%(exp)d/dns-query#127.0.0.1"]; },
  { domain = "notfound.example.net";
    servers = ["https://doh.test:%(doh)d/nope#127.0.0.1"]; },
  { domain = "fallback.example.net";
    servers = ["https://doh.test:%(doh)d/nope#127.0.0.1",
               "udp://127.0.0.1:%(up)d"]; },
  { domain = "mixed.example.net";
    servers = ["https://doh.test:%(dead)d#127.0.0.1", "127.0.0.1:%(up)d"]; },
  { domain = "nxname.example.net";
    servers = ["https://nx.doh.test:%(doh)d/dns-query"]; },
  { domain = "dying.example.net";
    servers = ["https://doh.test:%(dying)d/dns-query#127.0.0.1",
               "127.0.0.1:%(up)d"]; }
);
''' % {"server": SERVER, "plain": good.plain, "doh": good.doh,
       "exp": expired.doh, "dead": dead_port, "up": up.port, "ca": CA[1],
       "dying": dying.doh}
d = Daemon(CONF, args=["-v"])
P = d.port
tap.at_end(d.stop)
# The system store does not know the test CA.
d_sys = Daemon('''listen = {listen};
threads = 1;
upstream: { servers = ["https://doh.test:%d/dns-query#127.0.0.1"];
            timeout_ms = 500; tries = 2; };
''' % good.doh, args=["-v"])
tap.at_end(d_sys.stop)
# A client group (the daemon's IPv6 clients) whose own server is
# https://, looked up through the top-level plain server (dnsdist's plain
# port); everyone else has that plain server.
d_grp = Daemon('''listen = {listen};
threads = 1;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 1000; tries = 2; };
tls: { ca = "%s"; };
clients = ( { name = "v6"; match = ["::1"];
              upstream: { servers = ["https://doh.test:%d/dns-query"]; }; } );
''' % (good.plain, CA[1], good.doh), args=["-v"])
tap.at_end(d_grp.stop)


def handshakes(daemon, server):
    lines = [l for l in daemon.stderr().splitlines()
             if ("upstream %s: HTTPS connection up" % server) in l]
    return (len(lines), len([l for l in lines if "resumed handshake" in l]))


def refused(daemon, name, server, reason):
    """name gets SERVFAIL within the deadline; a log line names server
    and reason; nobody saw name: not dnsdist's backend, not its plain
    port (it never went anywhere in the clear)."""
    before = good.frontend()["Valid"] + expired.frontend()["Valid"]
    t0 = time.monotonic()
    r = ask(make_query(name), daemon.port, timeout=5)
    took = time.monotonic() - t0
    eq(rcode(r), "SERVFAIL", name)
    check(took < 2.5, "SERVFAIL after %.2fs" % took)
    check(wait_for(lambda: any(server in l and reason in l
                               for l in daemon.stderr().splitlines()), 3),
          "no log line with %r and %r:\n%s"
          % (server, reason, daemon.stderr()[-2000:]))
    eq(up.saw(name), [], "queries for %s at the backend" % name)
    eq(good.frontend()["Valid"] + expired.frontend()["Valid"], before,
       "DoH queries at dnsdist")


@tap.test("https://NAME/PATH looked up through the plain server: answered "
          "over DoH, the client's ID back")
def t_lookup():
    f0 = good.frontend()
    for qid in (1, 4242, 65535):
        name = uniq("host")
        r = ask(make_query(name, qid=qid), P)
        eq(rcode(r), "NOERROR")
        eq(r.id, qid, "client ID")
        direct = ask(make_query(name), up.port)
        eq([rr.to_text() for rrs in r.answer for rr in rrs],
           [rr.to_text() for rrs in direct.answer for rr in rrs],
           "the backend's answer")
        eq(len(up.saw(name)), 2, "at the backend: ours and the check's")
        eq([e["proto"] for e in up.saw(name)], ["udp", "udp"],
           "dnsdist relays over UDP")
    f1 = good.frontend()
    eq(f1["POST"] - f0["POST"], 3, "POSTs at dnsdist's DoH frontend")
    check(any("%s: doh.test looked up" % SERVER in l
              for l in d.stderr().splitlines()), d.stderr()[-2000:])


@tap.test("a NAME that does not resolve: SERVFAIL and a log line, nothing "
          "sent to the DoH server")
def t_lookup_fails():
    f0 = good.frontend()
    name = uniq("nxn", "nxname.example.net")
    t0 = time.monotonic()
    eq(rcode(ask(make_query(name), P, timeout=5)), "SERVFAIL")
    check(time.monotonic() - t0 < 2.5, "within the deadline")
    server = "https://nx.doh.test:%d/dns-query" % good.doh
    check(wait_for(lambda: any(
        server + ": looking nx.doh.test up" in l and "rcode 3" in l
        for l in d.stderr().splitlines()), 2), d.stderr()[-1500:])
    eq(good.frontend()["HTTP"], f0["HTTP"], "connections at dnsdist")
    eq(up.saw(name), [], "at the backend")
    eq(len(up.saw("nx.doh.test", "A")) >= 1, True, "the A lookup")


@tap.test("https://NAME#ADDR: no lookup, the certificate checked against "
          "NAME")
def t_addr():
    f0 = good.frontend()
    r = ask(make_query(uniq("a", "addr.example.net"), qid=77), P)
    eq(rcode(r), "NOERROR")
    eq(r.id, 77, "client ID")
    eq(good.frontend()["POST"] - f0["POST"], 1, "POSTs at dnsdist")
    server = "https://doh.test:%d/dns-query#127.0.0.1" % good.doh
    eq(handshakes(d, server)[0], 1, "handshakes with " + server)
    check(not any(server + ": doh.test looked up" in l
                  for l in d.stderr().splitlines()), "looked up")


@tap.test("https://ADDR: the certificate's IP address entry")
def t_by_ip():
    r = ask(make_query(uniq("x", "byip.example.net")), P)
    eq(rcode(r), "NOERROR")
    eq(handshakes(d, "https://127.0.0.1:%d/dns-query" % good.doh)[0], 1,
       "handshake with the address-only server")


@tap.test("300 queries at once share one HTTP/2 connection, each a stream")
def t_one_connection():
    n0, _ = handshakes(d, SERVER)
    f0 = good.frontend()
    s = sdtest.tcp_connect(P, timeout=8)
    qs = [make_query(uniq("many"), qid=1000 + i) for i in range(300)]
    got = sdtest.pipelined(s, qs)
    conns = good.connections()
    s.close()
    eq(len(got), 300, "replies")
    eq(sorted(got), list(range(1000, 1300)), "IDs")
    check(all(rcode(r) == "NOERROR" for r in got.values()), "all NOERROR")
    for q in qs[:20]:
        name = q.question[0].name.to_text()
        eq(got[q.id].question[0].name.to_text(), name, "question")
    f1 = good.frontend()
    n, resumed = handshakes(d, SERVER)
    tap.diag("300 queries: %d POSTs and %d new HTTP connections at "
             "dnsdist, %d handshakes (%d before); connections at the DoH "
             "port: %d" % (f1["POST"] - f0["POST"], f1["HTTP"] - f0["HTTP"],
                           n, n0, conns))
    eq(f1["POST"] - f0["POST"], 300, "POSTs at dnsdist")
    check(n - n0 <= 1, "handshakes: %d, %d before" % (n, n0))
    check(f1["HTTP"] - f0["HTTP"] <= 1, "new connections at dnsdist")
    # Three servers of this daemon point at this frontend.
    check(conns <= 3, "connections at the server: %d" % conns)


@tap.test("upstream_max_queries: a fresh connection after so many queries, "
          "resumed")
def t_cap():
    dc = Daemon(CONF.replace("upstream_idle_timeout_ms = 1500;",
                             "upstream_max_queries = 50;"), args=["-v"])
    try:
        s = sdtest.tcp_connect(dc.port, timeout=8)
        got = sdtest.pipelined(s, [make_query(uniq("cap"), qid=i)
                                   for i in range(120)])
        s.close()
        eq(len(got), 120, "replies")
        check(all(rcode(r) == "NOERROR" for r in got.values()), "NOERROR")
        n, resumed = handshakes(dc, SERVER)
        tap.diag("120 queries, at most 50 per connection: %d handshakes "
                 "(%d resumed)" % (n, resumed))
        eq(n, 3, "connections")
        check(resumed >= 1, "resumed handshakes: %d" % resumed)
    finally:
        dc.stop()


@tap.test("a TSIG-signed query to an https:// server goes over HTTPS, "
          "the signed reply back with the client's ID")
def t_signed():
    import dns.tsigkeyring
    f0 = good.frontend()
    name = uniq("signed")
    q = make_query(name, qid=777)
    q.use_tsig(dns.tsigkeyring.from_text({"k.": "c2VjcmV0c2VjcmV0"}),
               keyname="k.")
    raw = sdtest.udp_raw(q.to_wire(), P, timeout=4)
    check(raw is not None, "a reply")
    eq(int.from_bytes(raw[:2], "big"), 777, "client ID")
    eq(good.frontend()["POST"] - f0["POST"], 1, "POSTs at dnsdist")
    seen = up.saw(name)
    eq(len(seen), 1, "at the backend")
    check("tsig=k." in seen[0]["raw"], "signed at the backend: %r"
          % seen[0]["raw"])


@tap.test("a certificate for another name: SERVFAIL, a log line, nothing "
          "sent")
def t_wrong_name():
    refused(d, uniq("w", "wrongname.example.net"),
            "https://other.test:%d/dns-query#127.0.0.1" % good.doh,
            "does not match")


@tap.test("an expired certificate: SERVFAIL, a log line, nothing sent")
def t_expired():
    refused(d, uniq("e", "expired.example.net"),
            "https://doh.test:%d/dns-query#127.0.0.1" % expired.doh,
            "expired")


@tap.test("a certificate from a CA the system store lacks: SERVFAIL, a log "
          "line, nothing sent")
def t_unknown_ca():
    refused(d_sys, uniq("unknownca"),
            "https://doh.test:%d/dns-query#127.0.0.1" % good.doh,
            "NOT trusted")


@tap.test("HTTP 404 (a path dnsdist does not serve): SERVFAIL and a log "
          "line; in a list, the next server answers")
def t_http_error():
    f0 = good.frontend()
    name = uniq("nf", "notfound.example.net")
    t0 = time.monotonic()
    eq(rcode(ask(make_query(name), P, timeout=5)), "SERVFAIL")
    check(time.monotonic() - t0 < 1.0, "at once")
    check(wait_for(lambda: any(
        "https://doh.test:%d/nope#127.0.0.1: HTTP status 404" % good.doh in l
        for l in d.stderr().splitlines()), 2), d.stderr()[-1500:])
    eq(up.saw(name), [], "at the backend")
    eq(good.frontend()["Valid"], f0["Valid"], "valid DoH queries at dnsdist")
    name = uniq("fb", "fallback.example.net")
    t0 = time.monotonic()
    r = ask(make_query(name, qid=31337), P)
    eq(rcode(r), "NOERROR")
    eq(r.id, 31337, "client ID")
    check(time.monotonic() - t0 < 1.0, "answered in %.2fs"
          % (time.monotonic() - t0))
    eq([e["proto"] for e in up.saw(name)], ["udp"],
       "the plain server answered")


@tap.test("mixed list: a dead https:// server first, a plain one second")
def t_mixed():
    for i in range(3):
        name = uniq("m%d" % i, "mixed.example.net")
        t0 = time.monotonic()
        r = ask(make_query(name), P)
        eq(rcode(r), "NOERROR", name)
        check(time.monotonic() - t0 < 1.5, "answered in %.2fs"
              % (time.monotonic() - t0))
        eq(len(up.saw(name)), 1, "the plain server answered")
    check(any("https://doh.test:%d/dns-query#127.0.0.1: connect:" % dead_port
              in l for l in d.stderr().splitlines()), "the dead server "
          "logged")


@tap.test("a client group's https:// server (looked up through the "
          "top-level plain server)")
def t_group():
    f0 = good.frontend()
    name = uniq("g6")
    r = ask(make_query(name, qid=606), d_grp.port, addr="::1")
    eq(rcode(r), "NOERROR")
    eq(r.id, 606, "client ID")
    eq(good.frontend()["POST"] - f0["POST"], 1, "POSTs at dnsdist")
    name = uniq("g4")
    eq(rcode(ask(make_query(name), d_grp.port)), "NOERROR")
    eq(good.frontend()["POST"] - f0["POST"], 1, "POSTs at dnsdist")
    eq(len(up.saw(name)), 1, "IPv4 client: through the plain server")
    d_grp.stop()  # its connection would count in t_idle


@tap.test("a reload that leaves the servers as they are keeps the "
          "connection")
def t_reload():
    import signal
    eq(rcode(ask(make_query(uniq("r1")), P)), "NOERROR")
    n0, _ = handshakes(d, SERVER)
    conns = set(sdtest.tcp_established(good.doh, ["127.0.0.1"]))
    before = d.stderr().count("reloaded ")
    d.proc.send_signal(signal.SIGHUP)
    check(wait_for(lambda: d.stderr().count("reloaded ") > before, 5),
          "no reload line")
    eq(rcode(ask(make_query(uniq("r2")), P)), "NOERROR")
    eq(handshakes(d, SERVER)[0], n0, "handshakes")
    # Others of its connections may close idle meanwhile; none is new.
    eq(set(sdtest.tcp_established(good.doh, ["127.0.0.1"])) - conns, set(),
       "new connections at the server")


@tap.test("the server dies with a query in flight: the next server answers "
          "within the deadline; after a restart it serves again")
def t_dies():
    import threading
    name = uniq("delay600", "dying.example.net")
    res = {}

    def go():
        t0 = time.monotonic()
        res["r"] = ask(make_query(name), P, timeout=6)
        res["t"] = time.monotonic() - t0
    th = threading.Thread(target=go)
    th.start()
    check(wait_for(lambda: up.saw(name), 3), "query at the backend")
    dying.kill()  # a FIN, or a RST when it left bytes unread
    th.join(8)
    eq(rcode(res["r"]), "NOERROR")
    check(res["t"] < 2.0, "answered after %.2fs" % res["t"])
    server = "https://doh.test:%d/dns-query#127.0.0.1" % dying.doh
    check(wait_for(lambda: any(
        server in l and ("closed the connection" in l or "TLS read" in l)
        and "queries in flight: 1" in l
        for l in d.stderr().splitlines()), 2), d.stderr()[-1500:])
    dying.start()

    def via_doh():
        f0 = dying.frontend()
        n = uniq("back", "dying.example.net")
        return (rcode(ask(make_query(n), P)) == "NOERROR"
                and dying.frontend()["POST"] > f0["POST"])
    check(wait_for(via_doh, 8, step=0.3), "no answer through the restarted "
          "server:\n" + d.stderr()[-1500:])


class Nghttpd:
    """nghttpd (nghttp2-server) on 127.0.0.1:port: an HTTP/2 server that
    answers any request with a file of its document root, whatever came,
    with the content type its extension maps to: a server that does not
    speak DoH but answers."""

    def __init__(self, cert, files):
        self.dir = tmpdir("sdngd.")
        docs = os.path.join(self.dir, "htdocs")
        os.mkdir(docs)
        for name, data in files.items():
            with open(os.path.join(docs, name), "wb") as f:
                f.write(data)
        types = sdtest.write(self.dir, "mime.types",
                             "application/dns-message dns\n"
                             "text/plain txt\n")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["nghttpd", "-d", docs, "--mime-types-file=" + types,
             str(self.port), cert[0], cert[1]],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        sdtest._children.append(self.proc)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return True
            except OSError:
                return self.proc.poll() is not None
        check(wait_for(listening, 5, step=0.1) and self.proc.poll() is None,
              "nghttpd did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


if shutil.which("nghttpd"):
    @tap.test("an HTTP/2 server that is not DoH (nghttpd): a body that is "
              "no DNS message, another content type, a body larger than a "
              "DNS message: SERVFAIL and a log line; in a list, the next "
              "server answers")
    def t_not_doh():
        ng = Nghttpd(GOOD, {"garbage.dns": b"not a DNS message",
                            "plain.txt": bytes(64),
                            "big.dns": bytes(70000)})
        base = "https://doh.test:%d/%%s#127.0.0.1" % ng.port
        cases = (("garbage.dns", "malformed DNS message"),
                 ("plain.txt", "not application/dns-message"),
                 ("big.dns", "malformed DNS message"))
        forwards = ",\n".join(
            '{ domain = "%s.example"; servers = ["%s"]; }'
            % (f.split(".")[0], base % f) for f, _ in cases)
        dn = Daemon('''listen = {listen};
threads = 1;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 1000; tries = 2; };
tls: { ca = "%s"; };
forward = ( %s,
  { domain = "next.example"; servers = ["%s", "127.0.0.1:%d"]; } );
''' % (up.port, CA[1], forwards, base % "garbage.dns", up.port),
                    args=["-v"])
        try:
            for f, reason in cases:
                name = uniq("x", f.split(".")[0] + ".example")
                t0 = time.monotonic()
                eq(rcode(ask(make_query(name), dn.port, timeout=5)),
                   "SERVFAIL", name)
                check(time.monotonic() - t0 < 1.0, "at once")
                server = base % f
                check(wait_for(lambda: any(
                    server + ": " in l and reason in l
                    for l in dn.stderr().splitlines()), 2),
                    "no log line %r for %s:\n%s"
                    % (reason, server, dn.stderr()[-1500:]))
                eq(up.saw(name), [], "at the plain server")
            name = uniq("n", "next.example")
            r = ask(make_query(name, qid=4711), dn.port)
            eq(rcode(r), "NOERROR")
            eq(r.id, 4711, "client ID")
            eq(len(up.saw(name)), 1, "the plain server answered")
        finally:
            dn.stop()
            ng.stop()
else:
    tap.skip("an HTTP/2 server that is not DoH", "needs nghttpd "
             "(nghttp2-server)")


@tap.test("an idle connection closes; the next handshake is resumed")
def t_idle():
    ask(make_query(uniq("before")), P)
    check(wait_for(lambda: good.connections() == 0, 5),
          "connections left: %d" % good.connections())
    n0, r0 = handshakes(d, SERVER)
    eq(rcode(ask(make_query(uniq("after")), P)), "NOERROR")
    n1, r1 = handshakes(d, SERVER)
    eq((n1 - n0, r1 - r0), (1, 1), "one more handshake, resumed")


tap.done()
