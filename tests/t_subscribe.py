#!/usr/bin/python3
"""t_subscribe.py - block.lists URLs (TAP): the daemon downloads its lists
from a real HTTP server on loopback (http.server in this script, and an
https one with a CA made here by openssl) and keeps their last good copy
under state_dir.

Covered: first fetch after a start without a copy; 304 on refresh (and
nothing published); a 500, a hang past block.fetch_timeout and an
oversize body, each logged with the URL and the reason while the last
good copy keeps blocking; a list that changes between refreshes (new
names block, removed ones stop, the configuration on disk is not read
again); https verified against block.ca, and refused without it; a
restart without the server blocks at once from the cached copy; -t checks
URL syntax and downloads nothing; RSS after 30 refreshes of a 50k-name
list.  Refreshes are asked for with splitdnsctl refresh (splitdnsctl(8));
SIGUSR2 reopens the log files and refreshes nothing (splitdns(8)).
"""
import hashlib
import http.server
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sdtest  # noqa: E402
import tempfile  # noqa: E402
from sdtest import (V4, check, eq, make_query, ask, rss_kb,  # noqa: E402
                    wait_for)

tap = sdtest.TAP()


# ------------------------------------------------------- the list server

class Lists:
    """What the server serves: path -> body, and a mode per path:
    "ok", "500", "hang" (sleep past the client's timeout), "big" (a body
    larger than any cap we set)."""

    def __init__(self):
        self.bodies = {}
        self.modes = {}
        self.log = []           # (path, If-None-Match, status) answered
        self.arrived = []       # paths asked for, at once
        self.lock = threading.Lock()

    def put(self, path, names):
        body = "".join("0.0.0.0 %s\n" % n for n in names).encode()
        with self.lock:
            self.bodies[path] = body

    def requests(self, path):
        with self.lock:
            return [e for e in self.log if e[0] == path]

    def asked(self, path):
        with self.lock:
            return self.arrived.count(path)


def handler_for(lists):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass    # the daemon gave up on a hanging answer

        def do_GET(self):
            with lists.lock:
                body = lists.bodies.get(self.path)
                mode = lists.modes.get(self.path, "ok")
            inm = self.headers.get("If-None-Match")
            with lists.lock:
                lists.arrived.append(self.path)
            status = 200
            if body is None:
                status = 404
            elif mode == "500":
                status = 500
            elif mode == "hang":
                time.sleep(4)
            elif mode == "big":
                body = b"0.0.0.0 big.sub.test\n" * 10000
            etag = '"%s"' % hashlib.sha1(body or b"").hexdigest()[:16]
            if status == 200 and inm == etag and mode != "big":
                status = 304
            with lists.lock:
                lists.log.append((self.path, inm, status))
            try:
                self.send_response(status)
                if status in (200, 304):
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified",
                                     "Tue, 01 Dec 2026 10:00:00 GMT")
                if status == 200:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass
    return Handler


class Server:
    def __init__(self, lists, tls=None):
        self.httpd = http.server.ThreadingHTTPServer((V4, 0),
                                                     handler_for(lists))
        self.httpd.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                                server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        host = "localhost" if self.scheme == "https" else V4
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_ca(folder):
    """A throwaway CA and a server certificate for localhost/127.0.0.1."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=folder, check=True,
                       capture_output=True, timeout=30)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=splitdns test CA")
    run("req", *ec, "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(folder, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
        "-extfile", "ext")
    return tuple(os.path.join(folder, n) for n in ("ca.pem", "srv.pem",
                                                   "srv.key"))


LISTS = Lists()
HTTP = Server(LISTS)
CERTS = sdtest.tmpdir("sdca.")
CA, CERT, KEY = make_ca(CERTS)
HTTPS = Server(LISTS, tls=(CERT, KEY))

LAN = '''origin = "lan.test";
authoritative = true;
records = ( { name = "nas"; type = "A"; data = "192.168.1.10"; } );
'''


def conf(urls, block_extra="", top=""):
    return '''listen = {listen};
upstream: { servers = ["192.0.2.1"]; timeout_ms = 300; tries = 1; };
zones = ["lan.zone"];
state_dir = "state";
%s
block: {
  lists = [%s];
  %s
};
''' % (top, ", ".join('"%s"' % u for u in urls), block_extra)


CTL = os.environ.get("SPLITDNSCTL") or os.path.join(
    os.path.dirname(sdtest.SPLITDNS), "splitdnsctl")
SOCKDIR = tempfile.mkdtemp(prefix="sdsub.")
_socks = []


def daemon(text, asan=None):
    sock = os.path.join(SOCKDIR, "control%d" % len(_socks))
    _socks.append(sock)
    d = sdtest.Daemon(conf=text + 'control = "%s";\n' % sock,
                      zones={"lan.zone": LAN}, asan=asan)
    d.ctl = sock
    tap.at_end(d.stop)
    return d


def answer(d, name, rdtype="A"):
    r = ask(make_query(name, rdtype), d.port, timeout=2.0)
    return [rd.to_text() for rrset in r.answer for rd in rrset], r


def blocked(d, name):
    got, r = answer(d, name)
    return got == ["0.0.0.0"] and "AA" in sdtest.flags(r)


def not_blocked(d, name):
    # the upstream 192.0.2.1 never answers: SERVFAIL, not a block
    got, r = answer(d, name)
    return got != ["0.0.0.0"]


def log_since(d, mark):
    return d.stderr()[mark:]


def wait_log(d, mark, text, timeout=10):
    check(wait_for(lambda: text in log_since(d, mark), timeout, step=0.05),
          "no %r in the log within %ds; log:\n%s"
          % (text, timeout, log_since(d, mark)[-3000:]))


def ctl_refresh(d):
    p = subprocess.run([CTL, "-s", d.ctl, "refresh"], capture_output=True,
                       text=True, timeout=20)
    check(p.returncode == 0, "splitdnsctl refresh: %d %s" % (p.returncode, p.stderr))
    return p.stdout


def refresh(d):
    mark = len(d.stderr())
    ctl_refresh(d)
    return mark


# ------------------------------------------------------------- the tests

STATE = {}      # what the first daemon left for the restart test


@tap.test("first start without a copy: skipped with a warning, then "
          "fetched in the background and blocking; 304 on refresh "
          "publishes nothing")
def t_first_fetch():
    LISTS.put("/a.txt", ["ads.one.test", "old.one.test"])
    url = HTTP.url("/a.txt")
    d = daemon(conf([url], "fetch_timeout = 1; max_list_size = 100000;"))
    err = d.stderr()
    check("blocklist %s: no downloaded copy yet" % url in err, err)
    wait_log(d, 0, "refreshed the block lists")
    check("blocklist %s: downloaded a new copy" % url in d.stderr(),
          d.stderr())
    check(blocked(d, "ads.one.test"), "ads.one.test not blocked")
    check(blocked(d, "x.ads.one.test"), "subdomain not blocked")
    eq(answer(d, "nas.lan.test")[0], ["192.168.1.10"], "zone answer")
    eq(LISTS.requests("/a.txt")[0][1], None, "first request conditional")

    mark = refresh(d)
    wait_log(d, mark, "blocklist %s: not modified" % url)
    req = LISTS.requests("/a.txt")[-1]
    eq((req[2], req[1] is not None), (304, True),
       "second request: If-None-Match and 304")
    time.sleep(0.3)
    check("refreshed" not in log_since(d, mark)
          and "reloaded" not in log_since(d, mark),
          "a 304 published something:\n" + log_since(d, mark))
    check(blocked(d, "ads.one.test"), "blocked after the 304")
    STATE["d"] = d
    STATE["url"] = url


@tap.test("a list that changes: new names block, removed ones stop; the "
          "configuration on disk is not read again")
def t_change():
    d, url = STATE["d"], STATE["url"]
    # a change on disk that a reload would pick up, and a refresh must not
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(text.replace("block: {", 'block: {\n  domains = '
                             '["disk.only.test"];'))
    LISTS.put("/a.txt", ["ads.one.test", "new.one.test"])
    mark = refresh(d)
    wait_log(d, mark, "refreshed the block lists")
    check(blocked(d, "new.one.test"), "new name not blocked")
    check(not_blocked(d, "old.one.test"), "removed name still blocked")
    check(blocked(d, "ads.one.test"), "kept name not blocked")
    check(not_blocked(d, "disk.only.test"),
          "the refresh read the configuration file again")
    check("reloaded" not in log_since(d, mark), log_since(d, mark))
    eq(answer(d, "nas.lan.test")[0], ["192.168.1.10"], "zone answer")
    with open(d.conf, "w") as f:
        f.write(text)


def failing(mode, reason, extra=None):
    d, url = STATE["d"], STATE["url"]
    if extra:
        extra()
    LISTS.modes["/a.txt"] = mode
    copy = [os.path.join(r, f) for r, _, fs in
            os.walk(os.path.join(d.dir, "state")) for f in fs
            if f.endswith(".list")]
    eq(len(copy), 1, "cached copies")
    before = open(copy[0], "rb").read()
    try:
        t = time.monotonic()
        mark = refresh(d)
        wait_log(d, mark, "blocklist %s: download failed" % url)
        took = time.monotonic() - t
        line = [l for l in log_since(d, mark).splitlines()
                if "download failed" in l][0]
        check(reason in line, "reason %r not in %r" % (reason, line))
        check("keeping the last good copy" in line, line)
        check(blocked(d, "new.one.test"), "last good copy not blocking")
        eq(open(copy[0], "rb").read(), before, "cached copy")
        leftovers = [f for f in os.listdir(os.path.dirname(copy[0]))
                     if not f.endswith((".list", ".list.meta"))]
        eq(leftovers, [], "temporary files left")
        return took
    finally:
        LISTS.modes["/a.txt"] = "ok"


@tap.test("HTTP 500: logged with the URL and status, last good copy kept")
def t_500():
    failing("500", "HTTP status 500")


@tap.test("a server that hangs past block.fetch_timeout (1 s): logged, "
          "copy kept, the daemon answers meanwhile")
def t_hang():
    d = STATE["d"]
    done = {}

    def during():
        time.sleep(0.3)
        t = time.monotonic()
        done["blocked"] = blocked(d, "new.one.test")
        done["took"] = time.monotonic() - t
    th = threading.Thread(target=during)
    th.start()
    took = failing("hang", "imed out")
    th.join()
    check(done.get("blocked"), "no answer while the download hung")
    check(done["took"] < 0.5, "answer took %.2fs" % done["took"])
    check(took < 3.5, "the timeout of 1 s took %.1fs" % took)


@tap.test("an oversize body (over block.max_list_size): logged, copy kept")
def t_oversize():
    failing("big", "larger than block.max_list_size (100000 bytes)")


@tap.test("https with the test CA in block.ca blocks; without it the "
          "certificate is refused")
def t_https():
    LISTS.put("/tls.txt", ["ads.tls.test"])
    url = HTTPS.url("/tls.txt")
    d = daemon(conf([url], 'ca = "%s";' % CA))
    wait_log(d, 0, "refreshed the block lists")
    check(blocked(d, "ads.tls.test"), "https list not blocking")
    d.stop()
    d = daemon(conf([url]))
    wait_log(d, 0, "blocklist %s: download failed" % url)
    check(not_blocked(d, "ads.tls.test"), "unverified list used")
    d.stop()


@tap.test("restart without network: the cached copy blocks at once, no "
          "download at start (copy younger than block.refresh)")
def t_restart_offline():
    d0 = STATE["d"]
    state = os.path.join(d0.dir, "state")
    d0.stop()
    n = LISTS.asked("/a.txt")
    dead = sdtest.free_port()    # nothing listens there
    url = STATE["url"]
    folder = sdtest.tmpdir()
    shutil.copytree(state, os.path.join(folder, "state"))
    # the same URL, so the same copy; the server is unreachable: its
    # requests are counted to be sure none is made
    text = conf([url]).replace('state_dir = "state";',
                               'state_dir = "%s/state";' % folder)
    d = daemon(text)
    check(blocked(d, "new.one.test"), "cached copy not used at start")
    check("no downloaded copy" not in d.stderr(), d.stderr())
    time.sleep(0.5)
    eq(LISTS.asked("/a.txt"), n, "requests made at start")
    # and with the server gone, a forced refresh fails and keeps it
    gone = url.replace(":%d/" % HTTP.port, ":%d/" % dead)
    d.stop()
    os.rename(os.path.join(folder, "state", "lists"),
              os.path.join(folder, "keep"))
    text = text.replace(url, gone)
    d = daemon(text)
    check("blocklist %s: no downloaded copy yet" % gone in d.stderr(),
          "never-fetched list not skipped with a warning")
    wait_log(d, 0, "blocklist %s: download failed" % gone)
    check(not_blocked(d, "new.one.test"), "blocked without a copy")
    check(d.alive(), "the daemon gave up")
    d.stop()


@tap.test("-t checks URL syntax with file:line and downloads nothing")
def t_check():
    folder = sdtest.tmpdir()
    sdtest.write(folder, "lan.zone", LAN)
    n = LISTS.asked("/a.txt")
    good = sdtest.write(folder, "good.conf",
                        conf([HTTP.url("/a.txt")]).replace(
                            "{listen}", '["127.0.0.1:53"]'))
    p = sdtest.run(["-t", "-c", good])
    eq(p.returncode, 0, "-t with a URL: %s" % p.stderr)
    eq(LISTS.asked("/a.txt"), n, "requests made by -t")
    for bad, why in (("http://", "host"), ("http://:80/x", "host"), ("https://a b/x", "white"),
                     ("http://[::1/x", "IPv6"), ("http://a.test:99999/", "ort")):
        path = sdtest.write(folder, "bad.conf",
                            conf([bad]).replace("{listen}",
                                                '["127.0.0.1:53"]'))
        p = sdtest.run(["-t", "-c", path])
        eq(p.returncode, 1, "-t with %r" % bad)
        check(p.stderr.startswith("%s:7: block.lists '%s'" % (path, bad))
              and why in p.stderr, p.stderr)
    path = sdtest.write(folder, "ca.conf", conf(
        [HTTP.url("/a.txt")], 'ca = "nowhere.pem";').replace(
        "{listen}", '["127.0.0.1:53"]'))
    p = sdtest.run(["-t", "-c", path])
    eq(p.returncode, 1, "-t with a missing block.ca")
    check("%s:8: block.ca" % path in p.stderr, p.stderr)


@tap.test("SIGTERM during a download that hangs: the daemon exits at once "
          "(exit status 0), without waiting for block.fetch_timeout")
def t_sigterm_hang():
    LISTS.put("/slow.txt", ["ads.slow.test"])
    LISTS.modes["/slow.txt"] = "hang"
    url = HTTP.url("/slow.txt")
    try:
        d = daemon(conf([url], "fetch_timeout = 60;"))
        check(wait_for(lambda: LISTS.asked("/slow.txt"), 5),
              "the download never started")
        t = time.monotonic()
        d.stop(timeout=10)
        took = time.monotonic() - t
        check(took < 2.5, "SIGTERM took %.1fs" % took)
    finally:
        LISTS.modes["/slow.txt"] = "ok"


@tap.test("splitdnsctl refresh without any URL in block.lists: says so, "
          "nothing else; SIGUSR2 refreshes nothing")
def t_no_urls():
    d = daemon(conf([]).replace("  lists = [];\n", ""))
    out = ctl_refresh(d)
    check("block.lists names no URL" in out, out)
    mark = len(d.stderr())
    d.proc.send_signal(signal.SIGUSR2)
    time.sleep(0.3)
    check("refresh" not in log_since(d, mark), log_since(d, mark))
    check(d.proc.poll() is None, "SIGUSR2 stopped the daemon")
    d.stop()


def big(n, gen):
    return ["n%d.g%d.big.test" % (i, gen if i % 2 else 0) for i in range(n)]


@tap.test("RSS after 30 refreshes of a changing 50k-name list stays "
          "within 25% (+4 MiB) of the RSS after the first")
def t_memory():
    LISTS.put("/big.txt", big(50000, 0))
    url = HTTP.url("/big.txt")
    d = daemon(conf([url], "", "threads = 2;"), asan="quarantine_size_mb=0")
    wait_log(d, 0, "refreshed the block lists", 30)

    def one(gen):
        LISTS.put("/big.txt", big(50000, gen))
        mark = refresh(d)
        wait_log(d, mark, "refreshed the block lists", 30)
        check(blocked(d, "n1.g%d.big.test" % gen), "refresh %d" % gen)
    for gen in (1, 2):
        one(gen)
    time.sleep(0.5)
    rss1 = rss_kb(d.proc.pid)
    for gen in range(3, 33):
        one(gen)
    time.sleep(0.5)
    rss30 = rss_kb(d.proc.pid)
    tap.diag("RSS after the first refreshes %d kB, after 30 more %d kB"
             % (rss1, rss30))
    check(rss30 <= rss1 * 1.25 + 4096, "RSS grew from %d to %d kB"
          % (rss1, rss30))
    check(not_blocked(d, "n1.g1.big.test"), "an old generation blocks")
    d.stop(timeout=20)


HTTP.stop()
HTTPS.stop()
tap.done()
