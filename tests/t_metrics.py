#!/usr/bin/python3
"""The Prometheus endpoint (metrics = "ADDR:PORT") against the running
daemon: a known mix of queries (local, blocked by a domain and by a list,
forwarded, cached, refused by a rule and by access.allow, SERVFAIL from a
dead upstream, FORMERR; UDP and TCP) moves each counter by exactly what
was sent; `promtool check metrics` finds no error and no lint warning; a
real Prometheus server scrapes the endpoint and answers a query over the
series; other paths get 404, other methods 405; a client outside
access.allow is closed; a bad metrics setting is refused with file:line."""
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import Daemon, Upstream, done, eq, query, raw_udp, rcode, run
from harness import test, _procs
from sdtest import free_port

# A build --without-metrics refuses the setting with file:line, and that
# is all there is to test.
_tmp = tempfile.mkdtemp(prefix="sdmprobe.")
_probe = os.path.join(_tmp, "splitdns.conf")
with open(_probe, "w") as _f:
    _f.write('listen = ["127.0.0.1:53"];\nmetrics = "127.0.0.1:9100";\n')
_rc, _out, _err = run(["-t", "-c", _probe])
shutil.rmtree(_tmp, ignore_errors=True)
if "built without metrics" in _err:
    @test
    def t_without():
        """--without-metrics: the metrics setting is refused with file:line"""
        eq(_rc, 1, "status")
        assert _probe + ":2: 'metrics'" in _err, _err
    done()

up = Upstream()
DEAD = free_port()      # nothing listens there: every query fails
MPORT = free_port()
ZONE = '''origin = "home.lab";
authoritative = true;
records = ( { name = "nas"; type = "A"; data = "192.168.1.10"; } );
'''
CONF = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 500; tries = 1; };
forward = ( { domain = "dead.test"; servers = ["127.0.0.1:%d"]; },
            { domain = "refused.test"; refuse = true; } );
zones = ["home.zone"];
block: { lists = ["list.txt", "q\\"uote\\\\d.txt"];
         domains = ["ads.example.net"]; };
access: { allow = ["127.0.0.1/32", "::1/128"]; };
threads = 2;
metrics = "127.0.0.1:%d";
'''
d = Daemon(CONF % (up.port, DEAD, MPORT),
           files={"home.zone": ZONE, "list.txt": "tracker.example.org\n",
                  'q"uote\\d.txt': "odd.example.org\n"})
P = d.port
URL = "http://127.0.0.1:%d/metrics" % MPORT

SAMPLE = re.compile(r'^([a-z_]+)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def scrape_text():
    with urllib.request.urlopen(URL, timeout=5) as r:
        eq(r.status, 200, "status")
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        return r.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def scrape():
    return parse(scrape_text())


def val(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


def delta(a, b, name, **labels):
    return val(b, name, **labels) - val(a, name, **labels)


def formerr_packet():
    # Two questions (QDCOUNT 2): FORMERR.
    hdr = struct.pack(">HHHHHH", 0x4242, 0x0100, 2, 0, 0, 0)
    q = b"\x03nas\x04home\x03lab\x00" + struct.pack(">HH", 1, 1)
    return hdr + q + q


def from_outside(name):
    """A query from 127.0.0.2, outside access.allow: the rcode."""
    import dns.message
    import dns.query
    q = dns.message.make_query(name, "A")
    r = dns.query.udp(q, "127.0.0.1", port=P, timeout=3, source="127.0.0.2")
    return r.rcode()


def send_mix():
    for _ in range(3):
        eq(rcode(query("nas.home.lab", port=P)[1]), "NOERROR", "local")
    for _ in range(2):
        eq(rcode(query("ads.example.net", port=P)[1]), "NOERROR", "blocked")
    eq(rcode(query("tracker.example.org", port=P)[1]), "NOERROR", "list")
    eq(rcode(query("www.example.com", port=P)[1]), "NOERROR", "forwarded")
    eq(rcode(query("www.example.com", port=P)[1]), "NOERROR", "cached")
    eq(rcode(query("x.refused.test", port=P)[1]), "REFUSED", "refused")
    eq(rcode(query("x.dead.test", port=P, timeout=5)[1]), "SERVFAIL",
       "dead upstream")
    r = raw_udp(formerr_packet(), P)
    assert r is not None and r[3] & 0xF == 1, "FORMERR: %r" % r
    eq(from_outside("nas.home.lab"), 5, "outside access.allow: REFUSED")
    # A response (QR=1) and a packet shorter than a header: dropped.
    response = bytearray(formerr_packet())
    response[2] |= 0x80
    eq(raw_udp(bytes(response), P, timeout=0.5), None, "QR=1 dropped")
    eq(raw_udp(b"\x12\x34\x01", P, timeout=0.5), None, "short dropped")
    eq(rcode(query("nas.home.lab", port=P, tcp=True)[1]), "NOERROR",
       "local over TCP")
    eq(rcode(query("other.example.com", port=P, tcp=True)[1]), "NOERROR",
       "forwarded over TCP")


before = after = None
body = None


@test
def t_mix():
    """each counter moves by exactly what a known mix of queries sent"""
    global before, after, body
    before = scrape()
    send_mix()
    body = scrape_text()
    after = parse(body)
    want = {("udp", "local"): 3, ("udp", "blocked"): 3,
            ("udp", "forwarded"): 1, ("udp", "cached"): 1,
            ("udp", "refused"): 2, ("udp", "servfail"): 1,
            ("udp", "formerr"): 1, ("tcp", "local"): 1,
            ("udp", "dropped"): 2, ("tcp", "forwarded"): 1}
    for t in ("udp", "tcp", "tls", "https"):
        for k in ("local", "canary", "blocked", "cached", "forwarded",
                  "stale", "refused", "private", "rebind", "servfail",
                  "formerr", "limited", "dropped"):
            assert ("splitdns_queries_total",
                    frozenset({"transport": t, "kind": k}.items())) in after, \
                "series transport=%s kind=%s is there" % (t, k)
            eq(delta(before, after, "splitdns_queries_total", transport=t,
                     kind=k), want.get((t, k), 0), "queries %s %s" % (t, k))
    for rc, n in (("NOERROR", 10), ("REFUSED", 2), ("SERVFAIL", 1),
                  ("FORMERR", 1), ("NXDOMAIN", 0)):
        eq(delta(before, after, "splitdns_answers_total", rcode=rc), n,
           "answers " + rc)
    eq(delta(before, after, "splitdns_list_hits_total",
             list="block.domains"), 2, "hits of block.domains")
    lists = [dict(k[1])["list"] for k in after
             if k[0] == "splitdns_list_hits_total"]
    lst = [x for x in lists if x.endswith("list.txt")]
    eq(len(lst), 1, "one series for list.txt: %r" % lists)
    eq(delta(before, after, "splitdns_list_hits_total", list=lst[0]), 1,
       "hits of list.txt")
    eq(delta(before, after, "splitdns_group_queries_total", group="default"),
       16, "queries of the default group (every packet)")
    eq(delta(before, after, "splitdns_group_blocked_total", group="default"),
       3, "blocked for the default group")
    eq(delta(before, after, "splitdns_cache_hits_total"), 1, "cache hits")
    eq(delta(before, after, "splitdns_cache_misses_total"), 3,
       "cache misses (www, other, x.dead.test)")
    live = "127.0.0.1:%d" % up.port
    dead = "127.0.0.1:%d" % DEAD
    eq(delta(before, after, "splitdns_upstream_queries_total", server=live),
       2, "queries to the live upstream")
    eq(delta(before, after, "splitdns_upstream_errors_total", server=live),
       0, "errors of the live upstream")
    eq(delta(before, after, "splitdns_upstream_queries_total", server=dead),
       1, "queries to the dead upstream")
    eq(delta(before, after, "splitdns_upstream_errors_total", server=dead),
       1, "errors of the dead upstream")
    h = "splitdns_upstream_duration_seconds"
    eq(delta(before, after, h + "_count", server=live), 2, "histogram count")
    eq(delta(before, after, h + "_bucket", server=live, le="+Inf"), 2,
       "+Inf bucket")
    les = sorted(float(dict(k[1])["le"]) for k in after
                 if k[0] == h + "_bucket" and dict(k[1])["server"] == live)
    counts = [val(after, h + "_bucket", server=live,
                  le=("+Inf" if x == float("inf") else "%g" % x))
              for x in les]
    eq(counts, sorted(counts), "buckets are cumulative")
    eq(val(after, "splitdns_inflight_queries"), 0, "nothing in flight")
    eq(val(after, "splitdns_snapshot_local_names"), 2,
       "local names (nas and the zone's apex)")
    eq(val(after, "splitdns_snapshot_blocked_names"), 3, "blocked names")
    eq(val(after, "splitdns_reloads_total", result="success"), 0, "reloads")
    eq(val(after, "splitdns_tcp_connections"), 0, "TCP connections")
    assert ("splitdns_build_info",
            frozenset({"version": "0.2.0"}.items())) in after or any(
        k[0] == "splitdns_build_info" for k in after), "build_info"


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


@test
def t_escape():
    """a label value with a double quote and a backslash is escaped"""
    a = scrape()
    eq(rcode(query("odd.example.org", port=P)[1]), "NOERROR", "blocked")
    text = scrape_text()
    b = parse(text)
    odd = [k for k in b if k[0] == "splitdns_list_hits_total" and
           unescape(dict(k[1])["list"]).endswith('q"uote\\d.txt')]
    eq(len(odd), 1, "one series for the odd list name")
    raw = dict(odd[0][1])["list"]
    assert raw.endswith('q\\"uote\\\\d.txt'), raw
    eq(b[odd[0]] - a.get(odd[0], 0), 1, "its hit")
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    eq((p.returncode, (p.stdout + p.stderr).strip()), (0, ""), "promtool")


@test
def t_reload():
    """a reload counts, keeps the counters and sets the last duration"""
    import signal as sig
    a = scrape()
    d.signal(sig.SIGHUP)
    end = time.time() + 10
    while time.time() < end:
        b = scrape()
        if val(b, "splitdns_reloads_total", result="success") >= 1:
            break
        time.sleep(0.1)
    eq(delta(a, b, "splitdns_reloads_total", result="success"), 1, "reloads")
    eq(val(b, "splitdns_snapshot_generation"), 2, "generation")
    assert val(b, "splitdns_reload_duration_seconds") >= 0
    eq(delta(a, b, "splitdns_upstream_queries_total",
             server="127.0.0.1:%d" % up.port), 0, "kept over the reload")
    eq(val(b, "splitdns_upstream_queries_total",
           server="127.0.0.1:%d" % up.port), 2, "counted before the reload")
    eq(delta(a, b, "splitdns_list_hits_total", list="block.domains"), 0,
       "list hits kept")


@test
def t_promtool():
    """promtool check metrics: no errors, no lint warnings"""
    p = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "promtool status: " + p.stdout + p.stderr)
    eq((p.stdout + p.stderr).strip(), "", "promtool says nothing")


def get(path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (MPORT, path),
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@test
def t_http():
    """other paths 404, other methods 405 (Allow), HEAD has no body"""
    for path in ("/", "/metric", "/metrics/", "/metrics?x", "/api"):
        code = get(path)[0]
        eq(code, 200 if path == "/metrics?x" else 404, path)
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        code, h, _ = get("/metrics", m)
        eq(code, 405, m)
        eq(h["Allow"], "GET, HEAD", "Allow header")
    code, h, b = get("/metrics", "HEAD")
    eq((code, b), (200, b""), "HEAD")
    # One connection, three requests in turn (HTTP/1.1 keep-alive).
    c = http.client.HTTPConnection("127.0.0.1", MPORT, timeout=5)
    socks = set()
    for _ in range(3):
        c.request("GET", "/metrics")
        r = c.getresponse()
        eq(r.status, 200, "keep-alive answer")
        assert b"splitdns_queries_total" in r.read()
        socks.add(id(c.sock))
    c.close()
    eq(len(socks), 1, "one connection for three requests")


@test
def t_outside():
    """a client outside access.allow is closed without an answer"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", MPORT))
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        got = s.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    s.close()
    eq(got, b"", "no answer from outside access.allow")
    code = get("/metrics")[0]
    eq(code, 200, "an allowed client still is")


@test
def t_prometheus():
    """a real Prometheus scrapes the endpoint and has the series"""
    tmp = tempfile.mkdtemp(prefix="sdprom.")
    pport = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: splitdns\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % MPORT)
    p = subprocess.Popen(
        ["prometheus", "--config.file=" + cfg,
         "--storage.tsdb.path=" + os.path.join(tmp, "data"),
         "--web.listen-address=127.0.0.1:%d" % pport],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "w"))
    _procs.append(p)
    try:
        api = ("http://127.0.0.1:%d/api/v1/query?query=" % pport +
               urllib.request.quote('splitdns_queries_total{kind="local"}'))
        result, end = [], time.time() + 60
        while time.time() < end and p.poll() is None:
            try:
                with urllib.request.urlopen(api, timeout=2) as r:
                    j = json.load(r)
                result = j["data"]["result"]
                if result:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        assert result, "Prometheus has no series: " + open(
            os.path.join(tmp, "log")).read()[-2000:]
        got = {(x["metric"]["transport"]): float(x["value"][1])
               for x in result}
        eq(got.get("udp"), 3.0, "udp local as Prometheus read it")
        eq(got.get("tcp"), 1.0, "tcp local as Prometheus read it")
        eq(result[0]["metric"]["job"], "splitdns", "job label")
        # The target is up, and histograms are queryable.
        q = ("http://127.0.0.1:%d/api/v1/query?query=" % pport +
             urllib.request.quote('up{job="splitdns"}'))
        with urllib.request.urlopen(q, timeout=5) as r:
            eq(json.load(r)["data"]["result"][0]["value"][1], "1", "up")
    finally:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@test
def t_tls():
    """DNS over TLS and HTTPS count as transport tls and https; TLS
    connections open show"""
    tmp = tempfile.mkdtemp(prefix="sdmtls.")
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "c.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=dns.test",
                    "-addext", "subjectAltName=DNS:dns.test,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    tport, hport, mport = free_port(), free_port(), free_port()
    conf = ('listen = ["127.0.0.1:@PORT@", "tls://127.0.0.1:%d", '
            '"https://127.0.0.1:%d"];\n'
            'upstream: { servers = ["127.0.0.1:%d"]; };\n'
            'zones = ["home.zone"];\nthreads = 1;\n'
            'tls: { cert = "%s"; key = "%s"; };\n'
            'metrics = "127.0.0.1:%d";\n'
            % (tport, hport, up.port, cert, key, mport))
    probe = os.path.join(tmp, "probe.conf")
    with open(probe, "w") as f:
        f.write(conf.replace("@PORT@", "53").replace("home.zone", "/dev/null"))
    if "built without TLS" in run(["-t", "-c", probe])[2]:
        print("# SKIP built without TLS")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    t = Daemon(conf, files={"home.zone": ZONE})
    url = "http://127.0.0.1:%d/metrics" % mport

    def get_m():
        with urllib.request.urlopen(url, timeout=5) as r:
            return parse(r.read().decode())

    def kdig(*args):
        p = subprocess.run(["kdig", "@127.0.0.1", "+tls-ca=" + cert,
                            "+tls-hostname=dns.test", "+time=3",
                            "+retry=0"] + list(args),
                           capture_output=True, text=True, timeout=15)
        assert "NOERROR" in p.stdout, p.stdout + p.stderr
    try:
        a = get_m()
        kdig("-p", str(tport), "+tls", "nas.home.lab")
        kdig("-p", str(tport), "+tls", "tls1.example.com")
        kdig("-p", str(hport), "+https", "nas.home.lab")
        kdig("-p", str(hport), "+https-get", "nas.home.lab")
        b = get_m()
        for tr, k, n in (("tls", "local", 1), ("tls", "forwarded", 1),
                         ("https", "local", 2), ("udp", "local", 0),
                         ("tcp", "local", 0)):
            eq(delta(a, b, "splitdns_queries_total", transport=tr, kind=k),
               n, "%s %s" % (tr, k))
        # A TLS connection held open shows, and goes when it closes.
        import ssl
        ctx = ssl.create_default_context(cafile=cert)
        ctx.set_alpn_protocols(["dot"])
        raw = socket.create_connection(("127.0.0.1", tport), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="dns.test")
        c = get_m()
        eq(val(c, "splitdns_tls_connections"), 1, "one TLS connection open")
        eq(val(c, "splitdns_tcp_connections"), 1, "counted as TCP too")
        s.close()
        end = time.time() + 5
        while time.time() < end and val(get_m(),
                                        "splitdns_tls_connections"):
            time.sleep(0.05)
        eq(val(get_m(), "splitdns_tls_connections"), 0, "closed")
    finally:
        t.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@test
def t_stale():
    """an expired answer served when the upstream has gone counts as stale"""
    u2 = Upstream()
    mport = free_port()
    st = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; '
                'timeout_ms = 300; tries = 1; };\nthreads = 1;\n'
                'metrics = "127.0.0.1:%d";\n' % (u2.port, mport), v6=False)
    url = "http://127.0.0.1:%d/metrics" % mport

    def get_m():
        with urllib.request.urlopen(url, timeout=5) as r:
            return parse(r.read().decode())
    try:
        eq(rcode(query("ttl1.example.com", port=st.port)[1]), "NOERROR",
           "first answer")
        time.sleep(1.5)
        u2.stop()
        a = get_m()
        eq(rcode(query("ttl1.example.com", port=st.port, timeout=5)[1]),
           "NOERROR", "the stale answer")
        b = get_m()
        eq(delta(a, b, "splitdns_queries_total", transport="udp",
                 kind="stale"), 1, "stale")
        eq(delta(a, b, "splitdns_queries_total", transport="udp",
                 kind="servfail"), 0, "no servfail")
        eq(delta(a, b, "splitdns_upstream_errors_total",
                 server="127.0.0.1:%d" % u2.port), 1, "the upstream failed")
    finally:
        st.stop()


@test
def t_check():
    """-t refuses a bad metrics setting with file:line"""
    tmp = tempfile.mkdtemp(prefix="sdmet.")
    path = os.path.join(tmp, "splitdns.conf")
    for value, why in (('"127.0.0.1"', "port"), ('"nowhere:80"', "address"),
                       ('"[::1]:99999"', "port"), ("9100", "")):
        with open(path, "w") as f:
            f.write('listen = ["127.0.0.1:53"];\nmetrics = %s;\n' % value)
        rc, out, err = run(["-t", "-c", path])
        eq(rc, 1, "status for " + value)
        assert path + ":2:" in err, err
        assert why in err, err
    with open(path, "w") as f:
        f.write('listen = ["127.0.0.1:53"];\nmetrics = "[::1]:9100";\n')
    eq(run(["-t", "-c", path])[0], 0, "[::1]:9100 is fine")
    shutil.rmtree(tmp, ignore_errors=True)


@test
def t_stop():
    """the daemon exits cleanly (leak checkers see the endpoint freed)"""
    d.stop()


done()
