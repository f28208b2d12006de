#!/usr/bin/python3
"""DNS over TLS upstreams against a real Unbound DoT server, with a CA and
certificates made here by certtool: verification by name and by address,
the client's ID, one pipelined connection for many queries, refused
certificates (another name, expired, unknown CA) that give SERVFAIL, a log
line and no query in the clear, a mixed list, idle close and resumption,
a server that dies with a query in flight, and a restart."""
import os
import shutil
import signal
import subprocess
import threading
import time

import dns.message
import dns.rcode

import sdtest
from sdtest import (Daemon, TAP, Upstream, ask, check, eq, free_port,
                    make_query, rcode, tmpdir, uniq, wait_for)

tap = TAP()
D = tmpdir("sddot.")

# A build without TLS refuses tls:// servers at -t, with file:line.
_probe = sdtest.write(D, "probe.conf", 'listen = ["127.0.0.1:5300"];\n'
                      'upstream: { servers = ["192.0.2.1",\n'
                      '  "tls://192.0.2.1#dns.example"]; };\n')
_res = sdtest.run(["-t", "-c", _probe])
if "without TLS" in _res.stderr:
    @tap.test("built --without-tls: tls:// refused by -t with file:line")
    def t_without_tls():
        eq(_res.returncode, 1, "exit status")
        check(_res.stderr.startswith(_probe + ":3: "), _res.stderr)
    tap.done()
if not (shutil.which("unbound") and shutil.which("certtool")):
    tap.skip("DNS over TLS upstreams", "needs unbound and certtool "
             "(gnutls-bin)")
    tap.done()


def certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)


def template(name, text):
    path = os.path.join(D, name)
    with open(path, "w") as f:
        f.write(text)
    return path


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
    """A server certificate for dot.test and 127.0.0.1, signed by ca."""
    key = os.path.join(D, name + ".key")
    pem = os.path.join(D, name + ".pem")
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    certtool("--generate-certificate", "--load-privkey", key,
             "--load-ca-certificate", ca[1], "--load-ca-privkey", ca[0],
             "--template", template(name + ".tmpl",
                                    'cn = "dot.test"\ndns_name = "dot.test"\n'
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


class Unbound:
    """Unbound in the foreground as a DoT server on 127.0.0.1:port, which
    answers every name under example.net with 192.0.2.1 and logs each
    query it receives; example.org goes on to a tests/upstream.py."""

    def __init__(self, cert, fwd_port, port=None):
        self.cert = cert
        self.fwd_port = fwd_port
        self.port = port or free_port()
        self.ctl = free_port()
        self.dir = tmpdir("sdub.")
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write('''server:
  interface: 127.0.0.1@%(port)d
  tls-port: %(port)d
  tls-service-key: "%(key)s"
  tls-service-pem: "%(pem)s"
  username: ""
  chroot: ""
  directory: "%(dir)s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  extended-statistics: yes
  log-queries: yes
  do-ip6: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  incoming-num-tcp: 64
  local-zone: "example.net." redirect
  local-data: "example.net. 300 IN A 192.0.2.1"
  local-zone: "slow.example.net." transparent
forward-zone:
  name: "example.org."
  forward-addr: 127.0.0.1@%(fwd)d
forward-zone:
  name: "slow.example.net."
  forward-addr: 127.0.0.1@%(fwd)d
remote-control:
  control-enable: yes
  control-use-cert: no
  control-interface: 127.0.0.1
  control-port: %(ctl)d
''' % {"port": self.port, "key": cert[0], "pem": cert[1], "dir": self.dir,
       "fwd": fwd_port, "ctl": self.ctl})
        self.start()

    def start(self):
        self.errpath = os.path.join(self.dir, "stderr.%d" % time.time_ns())
        self.proc = subprocess.Popen(["unbound", "-d", "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.errpath, "w"))
        sdtest._children.append(self.proc)
        if not wait_for(lambda: "start of service" in self.log()
                        or self.proc.poll() is not None, 10):
            raise RuntimeError("unbound did not start:\n" + self.log())
        check(self.proc.poll() is None, "unbound exited:\n" + self.log())

    def log(self):
        text = ""
        for name in sorted(os.listdir(self.dir)):
            if name.startswith("stderr."):
                with open(os.path.join(self.dir, name),
                          errors="replace") as f:
                    text += f.read()
        return text

    def saw(self, word):
        """Queries received (any transport, any name containing word)."""
        return [l for l in self.log().splitlines()
                if " info: 127.0.0.1 " in l and word in l.lower()]

    def stats(self):
        """Unbound's counters (not reset by reading)."""
        out = subprocess.run(["unbound-control", "-c", self.conf,
                              "stats_noreset"], capture_output=True,
                             text=True, timeout=10).stdout
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    def connections(self):
        """Established TCP connections to the DoT port, at the server."""
        return len(sdtest.tcp_established(self.port, ["127.0.0.1"]))

    def kill(self):
        self.proc.kill()
        self.proc.wait()


up = Upstream()
good = Unbound(GOOD, up.port)
expired = Unbound(EXPIRED, up.port)
dying = Unbound(GOOD, up.port)
dead_port = free_port()  # nothing listens there

CONF = '''listen = {listen};
threads = 1;
upstream: { servers = ["tls://127.0.0.1:%(good)d#dot.test"];
            timeout_ms = 1000; tries = 2; };
tls: { ca = "%(ca)s"; upstream_idle_timeout_ms = 1500; };
forward = (
  { domain = "byip.example.net"; servers = ["tls://127.0.0.1:%(good)d"]; },
  { domain = "wrongname.example.net";
    servers = ["tls://127.0.0.1:%(good)d#other.test"]; },
  { domain = "expired.example.net";
    servers = ["tls://127.0.0.1:%(expired)d#dot.test"]; },
  { domain = "mixed.example.net";
    servers = ["tls://127.0.0.1:%(dead)d#dot.test", "udp://127.0.0.1:%(up)d"]; },
  { domain = "tcponly.example.net"; servers = ["tcp://127.0.0.1:%(up)d"]; },
  { domain = "example.org";
    servers = ["tls://127.0.0.1:%(dying)d#dot.test", "127.0.0.1:%(up)d"];
    }
);
''' % {"good": good.port, "expired": expired.port, "dying": dying.port,
       "dead": dead_port, "up": up.port, "ca": CA[1]}
d = Daemon(CONF, args=["-v"])
P = d.port
tap.at_end(d.stop)
# The system store does not know the test CA.
d_sys = Daemon('''listen = {listen};
threads = 1;
upstream: { servers = ["tls://127.0.0.1:%d#dot.test"]; timeout_ms = 500;
            tries = 2; };
''' % good.port, args=["-v"])
tap.at_end(d_sys.stop)


def handshakes(daemon, server):
    lines = [l for l in daemon.stderr().splitlines()
             if ("upstream %s: TLS connection up" % server) in l]
    return (len(lines), len([l for l in lines if "resumed handshake" in l]))


def refused(daemon, name, server, reason, uname):
    """name gets SERVFAIL; a log line names server and reason; uname never
    reached any of the Unbound servers, in any form."""
    t0 = time.monotonic()
    r = ask(make_query(name), daemon.port, timeout=5)
    took = time.monotonic() - t0
    eq(rcode(r), "SERVFAIL", name)
    check(took < 2.5, "SERVFAIL after %.2fs" % took)
    check(wait_for(lambda: any(server in l and reason in l
                               for l in daemon.stderr().splitlines()), 3),
          "no log line with %r and %r:\n%s"
          % (server, reason, daemon.stderr()[-2000:]))
    for u in (good, expired, dying):
        eq(u.saw(uname), [], "queries for %s at the server" % uname)
    eq(up.saw(name), [], "queries for %s at the plain upstream" % name)


@tap.test("tls://ADDR#NAME: answered through Unbound, the client's ID back")
def t_by_name():
    for qid in (1, 4242, 65535):
        name = uniq("host")
        r = ask(make_query(name, qid=qid), P)
        eq(rcode(r), "NOERROR")
        eq(r.id, qid, "client ID")
        eq([rr.to_text() for rrs in r.answer for rr in rrs], ["192.0.2.1"])
        check(good.saw(name + ". "), "Unbound saw " + name)


@tap.test("tls://ADDR without a name: the certificate's IP address entry")
def t_by_ip():
    r = ask(make_query(uniq("x", "byip.example.net")), P)
    eq(rcode(r), "NOERROR")
    eq(handshakes(d, "tls://127.0.0.1:%d" % good.port)[0] >= 1, True,
       "handshake with the address-only server")


@tap.test("200 queries at once share one TLS connection, replies by ID")
def t_one_connection():
    server = "tls://127.0.0.1:%d#dot.test" % good.port
    n0, _ = handshakes(d, server)
    s = sdtest.tcp_connect(P)
    qs = [make_query(uniq("many"), qid=1000 + i) for i in range(200)]
    got = sdtest.pipelined(s, qs)
    s.close()
    eq(len(got), 200, "replies")
    eq(sorted(got), list(range(1000, 1200)), "IDs")
    check(all(rcode(r) == "NOERROR" for r in got.values()), "all NOERROR")
    conns = good.connections()
    n, resumed = handshakes(d, server)
    tap.diag("connections at Unbound's DoT port: %d; handshakes with %s: "
             "%d so far (%d resumed), %d for these 200 queries"
             % (conns, server, n, resumed, n - n0))
    check(n - n0 <= 1 and n == 1, "handshakes: %d, %d before" % (n, n0))
    # By address only, this daemon has a second connection to it.
    check(conns <= 2, "connections at the server: %d" % conns)


@tap.test("replies out of order on one connection: a slow name does not "
          "hold up the quick ones behind it")
def t_out_of_order():
    server = "tls://127.0.0.1:%d#dot.test" % good.port
    n0, _ = handshakes(d, server)
    slow = uniq("delay400", "slow.example.net")
    qs = [make_query(slow, qid=1)] + [make_query(uniq("quick"), qid=i)
                                      for i in range(2, 6)]
    s = sdtest.tcp_connect(P, timeout=4)
    s.sendall(b"".join(sdtest.frame(q.to_wire()) for q in qs))
    order = []
    while len(order) < len(qs):
        r = sdtest.parse(sdtest.tcp_read(s))
        eq(rcode(r), "NOERROR", "rcode of %d" % r.id)
        eq(r.question[0].name.to_text(),
           qs[r.id - 1].question[0].name.to_text(), "question of %d" % r.id)
        order.append(r.id)
    s.close()
    eq(order[-1], 1, "the slow answer comes last (order %r)" % order)
    eq(handshakes(d, server)[0], n0, "no new connection")


@tap.test("a reload that leaves the servers as they are keeps the "
          "connection")
def t_reload():
    server = "tls://127.0.0.1:%d#dot.test" % good.port
    eq(rcode(ask(make_query(uniq("r1")), P)), "NOERROR")
    n0, _ = handshakes(d, server)
    conns = good.connections()
    before = d.stderr().count("reloaded ")
    d.proc.send_signal(signal.SIGHUP)
    check(wait_for(lambda: d.stderr().count("reloaded ") > before, 5),
          "no reload line")
    eq(rcode(ask(make_query(uniq("r2")), P)), "NOERROR")
    eq(handshakes(d, server)[0], n0, "handshakes")
    eq(good.connections(), conns, "connections at the server")


@tap.test("upstream_max_queries: a fresh connection after so many queries")
def t_cap():
    dc = Daemon(CONF.replace("upstream_idle_timeout_ms = 1500;",
                             "upstream_max_queries = 50;"), args=["-v"])
    try:
        s = sdtest.tcp_connect(dc.port)
        got = sdtest.pipelined(s, [make_query(uniq("cap"), qid=i)
                                   for i in range(120)])
        s.close()
        eq(len(got), 120, "replies")
        check(all(rcode(r) == "NOERROR" for r in got.values()), "NOERROR")
        n, resumed = handshakes(dc, "tls://127.0.0.1:%d#dot.test"
                               % good.port)
        tap.diag("120 queries, at most 50 per connection: %d handshakes "
                 "(%d resumed)" % (n, resumed))
        eq(n, 3, "connections")
    finally:
        dc.stop()


@tap.test("a TSIG-signed query to a tls:// server goes over TLS only")
def t_signed():
    import dns.tsigkeyring
    server = "tls://127.0.0.1:%d#dot.test" % good.port
    n0, _ = handshakes(d, server)
    before = good.stats()
    name = uniq("signed")
    q = make_query(name, qid=777)
    q.use_tsig(dns.tsigkeyring.from_text({"k.": "c2VjcmV0c2VjcmV0"}),
               keyname="k.")
    raw = sdtest.udp_raw(q.to_wire(), P, timeout=4)
    check(raw is not None, "a reply")
    eq(int.from_bytes(raw[:2], "big"), 777, "client ID")
    after = good.stats()
    # Unbound does not know TSIG (FORMERR) and then counts the query in
    # no transport's counter: the handshake of the signed queries' own
    # connection shows it came over TLS.
    eq(int(after["total.num.queries"]) - int(before["total.num.queries"]),
       1, "queries at Unbound")
    eq(handshakes(d, server)[0] - n0, 1, "a TLS connection for it")
    check(good.saw(name + ". "), "Unbound saw it")


@tap.test("a certificate for another name: SERVFAIL, a log line, no query")
def t_wrong_name():
    refused(d, uniq("w", "wrongname.example.net"),
            "tls://127.0.0.1:%d#other.test" % good.port,
            "does not match", "wrongname")


@tap.test("an expired certificate: SERVFAIL, a log line, no query")
def t_expired():
    refused(d, uniq("e", "expired.example.net"),
            "tls://127.0.0.1:%d#dot.test" % expired.port, "expired",
            "expired")


@tap.test("a certificate from a CA the system store lacks: SERVFAIL, a log "
          "line, no query")
def t_unknown_ca():
    refused(d_sys, uniq("unknownca"),
            "tls://127.0.0.1:%d#dot.test" % good.port, "NOT trusted",
            "unknownca")


@tap.test("mixed list: a dead tls:// server first, a plain one second")
def t_mixed():
    for i in range(3):
        name = uniq("m%d" % i, "mixed.example.net")
        t0 = time.monotonic()
        r = ask(make_query(name), P)
        eq(rcode(r), "NOERROR", name)
        check(time.monotonic() - t0 < 1.0, "answered in %.2fs"
              % (time.monotonic() - t0))
        eq(len(up.saw(name)), 1, "the plain server answered")
    check(any("tls://127.0.0.1:%d#dot.test: connect:" % dead_port in l
              for l in d.stderr().splitlines()), "the dead server logged")


@tap.test("tcp://: TCP only")
def t_tcp_only():
    name = uniq("t", "tcponly.example.net")
    eq(rcode(ask(make_query(name), P)), "NOERROR")
    eq([e["proto"] for e in up.saw(name)], ["tcp"])


@tap.test("an idle connection closes; the next handshake is resumed")
def t_idle():
    server = "tls://127.0.0.1:%d#dot.test" % good.port
    ask(make_query(uniq("before")), P)
    check(wait_for(lambda: good.connections() == 0, 4),
          "connections left: %d" % good.connections())
    n0, r0 = handshakes(d, server)
    st0 = good.stats()
    eq(rcode(ask(make_query(uniq("after")), P)), "NOERROR")
    n1, r1 = handshakes(d, server)
    eq((n1 - n0, r1 - r0), (1, 1), "one more handshake, resumed")
    st1 = good.stats()
    eq(int(st1["num.query.tls.resume"]) - int(st0["num.query.tls.resume"]),
       1, "queries on resumed sessions at Unbound")


@tap.test("the server dies with a query in flight: the next server answers "
          "within the deadline; after a restart it serves again")
def t_dies():
    name = uniq("delay600", "example.org")
    res = {}

    def go():
        t0 = time.monotonic()
        res["r"] = ask(make_query(name), P, timeout=6)
        res["t"] = time.monotonic() - t0
    th = threading.Thread(target=go)
    th.start()
    check(wait_for(lambda: dying.saw("delay600"), 3), "query at Unbound")
    dying.kill()
    th.join(8)
    eq(rcode(res["r"]), "NOERROR")
    check(res["t"] < 2.0, "answered after %.2fs" % res["t"])
    server = "tls://127.0.0.1:%d#dot.test" % dying.port
    check(wait_for(lambda: any(
        server in l and "closed the connection" in l
        and "queries in flight: 1" in l
        for l in d.stderr().splitlines()), 2), d.stderr()[-1500:])
    dying.start()

    def via_tls():
        n = uniq("back", "example.org")
        return rcode(ask(make_query(n), P)) == "NOERROR" and dying.saw(
            n + ". ")
    check(wait_for(via_tls, 8, step=0.3), "no answer through the restarted "
          "server:\n" + d.stderr()[-1500:])


tap.done()
