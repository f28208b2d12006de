#!/usr/bin/python3
"""The control socket and splitdnsctl(8) against the running daemon: every
command in text and --json (parsed with python's json), status figures that
match what was sent, pause with expiry and resume, flush (the name is asked
upstream again), reload (a zone change shows), refresh, explain, top (a known
mix), a refused user (by the file's mode, and by the daemon's peer check), a
client that connects and sends nothing while other commands still work, and
the request framing's bounds."""
import json
import os
import socket
import subprocess
import tempfile
import time

from harness import Daemon, Upstream, done, eq, query, rcode, run, test, texts
from harness import SPLITDNS

CTL = os.environ.get("SPLITDNSCTL") or os.path.join(os.path.dirname(SPLITDNS),
                                                     "splitdnsctl")
ROOT = os.geteuid() == 0

up = Upstream()
sockdir = tempfile.mkdtemp(prefix="sdctl.")
os.chmod(sockdir, 0o755)        # the refused-user tests must reach the file
SOCK = os.path.join(sockdir, "control")
ZONE = '''origin = "home.lab";
authoritative = true;
records = ( { name = "nas"; type = "A"; data = "192.168.1.10"; } %s);
'''
CONF = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 500; tries = 2; };
zones = ["home.zone"];
block: { lists = ["list.txt"]; domains = ["ads.example.net"]; };
threads = 2;
control = "%s";
%s
'''


def conf(sock=SOCK, extra=""):
    return CONF % (up.port, sock, extra)


d = Daemon(conf(), files={"home.zone": ZONE % "",
                          "list.txt": "tracker.example.org\n"})
P = d.port


def ctl(*args, js=False, sock=SOCK, user=None, timeout=20):
    """Run splitdnsctl; (exit status, stdout, stderr)."""
    cmd = [CTL, "-s", sock] + (["--json"] if js else []) + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
               "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def ok(*args):
    rc, out, err = ctl(*args)
    eq(rc, 0, "exit status of %s (%s)" % (" ".join(args), err))
    return out


def js(*args):
    rc, out, err = ctl(*args, js=True)
    eq(rc, 0, "exit status of --json %s (%s)" % (" ".join(args), err))
    return json.loads(out)


def counters():
    return js("status")["counters"]


def address(name):
    q, r = query(name, port=P)
    eq(rcode(r), "NOERROR", name)
    return [t.split()[-1] for t in texts(r, "A")]


@test
def t_status():
    """status: counters, cache, lists and groups match a known mix of queries"""
    before = counters()
    for _ in range(3):
        address("nas.home.lab")
    for _ in range(2):
        eq(address("ads.example.net"), ["0.0.0.0"], "blocked")
    eq(address("tracker.example.org"), ["0.0.0.0"], "blocked by list.txt")
    for _ in range(4):
        address("status.example.net")
    s = js("status")
    c = s["counters"]
    delta = {k: c[k] - before[k] for k in c}
    eq(delta["queries"], 10, "queries")
    eq(delta["local"], 3, "local")
    eq(delta["blocked"], 3, "blocked")
    eq(delta["forwarded"], 1, "forwarded")
    eq(delta["cached"], 3, "cached")
    eq(s["workers"], 2, "workers")
    assert s["uptime"] >= 0 and s["snapshot"]["generation"] >= 1, s
    eq(s["pause"], {}, "not paused")
    assert s["cache"]["entries"] >= 1 and 0 < s["cache"]["hit_ratio"] < 1, s
    lists = {x["name"].split("/")[-1]: x for x in s["lists"]}
    eq(lists["list.txt"]["hits"], 1, "list.txt hits")
    assert lists["block.domains"]["hits"] >= 2, lists
    eq(s["groups"][0]["name"], "default", "the one group")
    eq(s["groups"][0]["queries"], c["queries"], "its queries")
    eq(s["upstream"]["servers"], ["127.0.0.1:%d" % up.port], "servers")
    text = ok("status")
    for want in ("up ", "snapshot: generation", "blocking: on", "queries: ",
                 "cache: ", "hit ratio", "upstream: 1 servers",
                 "list.txt: 1 names", "group default"):
        assert want in text, (want, text)


@test
def t_pause_expiry():
    """pause 2: blocked names are forwarded for 2 s, then blocked again"""
    eq(address("a.ads.example.net"), ["0.0.0.0"], "blocked before")
    rc, out, err = ctl("pause", "2")
    eq(rc, 0, err)
    assert "paused for everyone (2 s left)" in out, out
    fwd = address("b.ads.example.net")
    assert fwd and fwd[0].startswith("198.51.100."), fwd
    assert up.saw("b.ads.example.net"), "asked upstream while paused"
    assert "paused for everyone" in ok("status")
    eq(list(js("status")["pause"].keys()), ["*"], "status --json")
    ex = ok("explain", "c.ads.example.net")
    assert "blocking paused (" in ex and "s left)" in ex, ex
    assert "default upstreams" in ex, ex
    e = js("explain", "c.ads.example.net")
    eq((e["decision"], e["blocking_paused"]), ("forward", True), "explain")
    time.sleep(2.2)
    eq(address("b.ads.example.net"), ["0.0.0.0"], "blocked again (not from "
                                                    "the cache)")
    assert "blocking: on" in ok("status")
    eq(js("explain", "c.ads.example.net")["decision"], "blocked", "explain")


@test
def t_pause_resume():
    """pause without SECONDS lasts until resume; pause GROUP; unknown groups"""
    r = js("pause")
    eq(r, {"paused": "*", "seconds": None}, "pause --json")
    assert "until resume" in ok("status")
    assert address("d.ads.example.net")[0].startswith("198.51.100.")
    eq(js("resume")["resumed"], "*", "resume --json")
    eq(address("d.ads.example.net"), ["0.0.0.0"], "blocked after resume")
    assert "group default" in ok("pause", "60", "default")
    eq(js("status")["pause"]["default"], 60, "status: the group's pause")
    assert address("e.ads.example.net")[0].startswith("198.51.100.")
    assert "group default" in ok("resume", "default")
    eq(address("e.ads.example.net"), ["0.0.0.0"], "group resumed")
    rc, out, err = ctl("pause", "30", "kids")
    eq(rc, 1, "unknown group: an error answer")
    assert "no client group 'kids'" in err, err
    rc, out, err = ctl("pause", "kids", js=True)
    eq((rc, "error" in json.loads(out)), (1, True), "--json error")
    for bad in (["pause", "0"], ["pause", "31536001"], ["pause", "5", "a", "b"],
                ["resume", "kids"], ["resume", "a", "b"]):
        rc, out, err = ctl(*bad)
        eq(rc, 1, " ".join(bad))
    eq(js("status")["pause"], {}, "nothing left paused")


@test
def t_flush():
    """flush NAME and flush: the name is asked upstream again"""
    up.clear()
    for _ in range(3):
        address("flush.example.net")
    eq(len(up.saw("flush.example.net")), 1, "cached")
    out = ok("flush", "FLUSH.example.net")
    assert "flushed 1 cache entry of FLUSH.example.net" in out, out
    address("flush.example.net")
    eq(len(up.saw("flush.example.net")), 2, "asked again after flush NAME")
    address("other.example.net")
    r = js("flush")
    assert r["flushed"] >= 2 and r["name"] is None, r
    eq(js("status")["cache"]["entries"], 0, "empty")
    address("flush.example.net")
    eq(len(up.saw("flush.example.net")), 3, "asked again after flush")
    eq(js("flush", "never.example.net")["flushed"], 0, "nothing to flush")
    rc, out, err = ctl("flush", "bad..name")
    eq(rc, 1, "a bad name is an error answer")


def wait_generation(g, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        s = js("status")["snapshot"]
        if s["generation"] > g:
            return s
        time.sleep(0.05)
    raise AssertionError("no generation after %d" % g)


@test
def t_reload_refresh():
    """reload: a zone change shows; refresh without URL lists does nothing"""
    g = js("status")["snapshot"]["generation"]
    q, r = query("new.home.lab", port=P)
    eq(rcode(r), "NXDOMAIN", "not there yet")
    d.write("home.zone", ZONE % ', { name = "new"; type = "A"; data = "192.168.1.77"; }')
    r = js("reload")
    eq((r["reload"], r["generation"]), ("started", g), "reload --json")
    s = wait_generation(g)
    eq(address("new.home.lab"), ["192.168.1.77"], "the new record")
    eq(s["reloads"], 1, "reloads counted")
    # The lists here are files: a refresh (of URL lists) has nothing to
    # do and publishes nothing; t_subscribe drives it with URLs.
    assert "refresh nothing to do" in ok("refresh")
    eq(js("refresh")["refresh"], "none", "refresh --json")
    eq(js("status")["snapshot"]["generation"], g + 1, "no new generation")
    d.write("home.zone", "this is not libconfig")
    ok("reload")
    end = time.time() + 10
    while js("status")["snapshot"]["reload_failures"] == 0:
        assert time.time() < end, "a failed reload is counted"
        time.sleep(0.05)
    eq(address("new.home.lab"), ["192.168.1.77"], "the old one serves on")
    d.write("home.zone", ZONE % "")


@test
def t_refresh_during_reload():
    """refresh asked while reloads run (the build thread owns the download
    schedule then): queued or started, never a crash; the list blocks"""
    import functools
    import http.server
    import threading
    web = tempfile.mkdtemp(prefix="sdctl-web.")
    with open(os.path.join(web, "l.txt"), "w") as f:
        f.write("0.0.0.0 race.example.com\n")
    h = functools.partial(http.server.SimpleHTTPRequestHandler,
                          directory=web)
    h.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    rsock = os.path.join(sockdir, "control-race")
    url = "http://127.0.0.1:%d/l.txt" % httpd.server_address[1]
    rd = Daemon((CONF % (up.port, rsock, 'state_dir = "state";')).replace(
        'lists = ["list.txt"]', 'lists = ["%s"]' % url),
        files={"home.zone": ZONE % "", "list.txt": ""})
    seen = set()
    for i in range(30):
        eq(ctl("reload", sock=rsock)[0], 0, "reload %d" % i)
        rc, out, err = ctl("--json", "refresh", sock=rsock)
        eq(rc, 0, "refresh %d (%s)" % (i, err))
        seen.add(json.loads(out)["refresh"])
    assert seen <= {"started", "queued"}, seen
    end = time.time() + 10
    while True:
        q, r = query("race.example.com", port=rd.port)
        if texts(r, "A") and texts(r, "A")[0].split()[-1] == "0.0.0.0":
            break
        assert time.time() < end, "the downloaded list blocks"
        time.sleep(0.1)
    rd.stop()
    httpd.shutdown()


@test
def t_explain():
    """explain NAME [TYPE] [CLIENT], text and --json, and its errors"""
    out = ok("explain", "nas.home.lab")
    assert "local data" in out and "192.168.1.10" in out, out
    e = js("explain", "nas.home.lab", "AAAA")
    eq(e["decision"], "local", "local data, NODATA for AAAA")
    e = js("explain", "tracker.example.org")
    eq((e["decision"], e["blocking_paused"]), ("blocked", False), "blocked")
    assert "list.txt" in e["text"], e
    e = js("explain", "www.example.com", "A", "203.0.113.5")
    eq(e["decision"], "refused", "outsider")
    assert "not in access.allow" in e["text"], e
    rc, out, err = ctl("explain", "x.example", "NOSUCHTYPE")
    eq(rc, 1, "bad type")
    assert "unknown type" in err, err
    rc, out, err = ctl("explain", "x.example", "A", "not-an-address")
    eq(rc, 1, "bad client")
    rc, out, err = ctl("explain")
    eq(rc, 1, "no name")
    assert "wrong number of arguments" in err, err


@test
def t_top():
    """top N: the most asked and most blocked names of a known mix"""
    for name, n in (("top1.example.net", 7), ("top2.example.net", 5),
                    ("top3.example.net", 3)):
        for _ in range(n):
            address(name)
    for _ in range(4):
        address("top.ads.example.net")
    t = js("top", "1000")
    asked = {x["name"]: x for x in t["asked"]["names"]}
    eq([asked["top%d.example.net." % i]["count"] for i in (1, 2, 3)],
       [7, 5, 3], "asked counts (exact: fewer names than counters)")
    eq(asked["top1.example.net."]["error"], 0, "no error below capacity")
    blocked = {x["name"]: x["count"] for x in t["blocked"]["names"]}
    eq(blocked["top.ads.example.net."], 4, "blocked count")
    assert "top1.example.net." not in blocked, blocked
    eq(t["asked"]["total"], counters()["queries"] - counters()["dropped"],
       "every query with a name is counted")
    counts = [x["count"] for x in t["asked"]["names"]]
    eq(counts, sorted(counts, reverse=True), "largest first")
    eq(len(js("top", "2")["asked"]["names"]), 2, "top 2")
    out = ok("top", "3")
    assert "most asked (of " in out and "most blocked (of " in out, out
    eq(len(js("top")["asked"]["names"]), 10, "top: 10 by default")
    for bad in ("0", "1001", "x"):
        eq(ctl("top", bad)[0], 1, "top " + bad)


@test
def t_idle_client():
    """a client that connects and sends nothing: others are served, it is cut off"""
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(SOCK)
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(SOCK)
    half.sendall(b"text sta")
    start = time.time()
    ok("status")
    ok("top")
    assert time.time() - start < 2, "commands wait for the idle client"
    q, r = query("nas.home.lab", port=P)
    eq(rcode(r), "NOERROR", "queries go on")
    idle.settimeout(6)
    half.settimeout(6)
    eq(idle.recv(100), b"", "the idle client is cut off")
    eq(half.recv(100), b"", "the half line too")
    assert time.time() - start < 5, "within the 3 s timeout"
    idle.close()
    half.close()


def raw(data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(SOCK)
    s.sendall(data)
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
    s.close()
    return out


@test
def t_framing():
    """the protocol: status line, errors for bad requests, bounds"""
    eq(raw(b"text status\n")[:3], b"ok\n", "ok line")
    assert raw(b"json status\r\n").startswith(b"ok\n{"), "CRLF accepted"
    eq(raw(b"status\n"), b"error\nbad request: FORMAT COMMAND [ARG]..., "
                         b"printable words\n", "no format")
    assert raw(b"json nosuch\n") == b'error\n{"error": "unknown command"}\n'
    assert raw(b"text flush a\x01b\n").startswith(b"error\nbad request")
    assert raw(b"text " + b"a" * 2000 + b"\n").startswith(
        b"error\nrequest longer than 1024"), "too long"
    assert raw(b"text top 1 2 3 4 5 6 7 8 9\n").startswith(b"error\n")
    rc, out, err = ctl("flush", "a b")
    eq(rc, 2, "an argument with a space: usage error")
    rc, out, err = ctl()
    eq(rc, 2, "no command")
    rc, out, err = ctl("status", sock=os.path.join(sockdir, "nothere"))
    eq(rc, 3, "no socket")
    assert "cannot connect" in err, err
    rc, out, err = ctl("--version")
    eq(rc, 0, "--version")
    assert out.startswith("splitdnsctl "), out
    assert "pause [SECONDS] [GROUP]" in ctl("--help")[1]
    eq(ctl("nosuch")[0], 1, "unknown command: an error answer")


@test
def t_refused_user():
    """a user who is not root, the owner or in the group is refused"""
    if not ROOT:
        print("# SKIP needs root for another user")
        return
    st = os.stat(SOCK)
    eq(oct(st.st_mode & 0o777), oct(0o660), "mode 0660 by default")
    rc, out, err = ctl("status", user=65534)
    eq(rc, 3, "refused by the file's mode: cannot connect")
    assert "Permission denied" in err and "its group may use it" in err, err
    # A mode that lets everyone connect: the daemon's own check refuses.
    sock2 = os.path.join(sockdir, "open")
    d2 = Daemon(conf(sock2, 'control_mode = "0666";'),
                files={"home.zone": ZONE % "", "list.txt": ""})
    try:
        eq(oct(os.stat(sock2).st_mode & 0o777), oct(0o666), "mode 0666")
        rc, out, err = ctl("pause", "100", user=65534, sock=sock2)
        eq(rc, 1, "refused by the daemon")
        assert "permission denied" in err, err
        rc, out, err = ctl("status", user=65534, sock=sock2, js=True)
        eq(rc, 1, "refused, --json")
        eq(js("status")["pause"], {}, "nothing was paused")
        rc, out, err = ctl("status", sock=sock2)
        eq(rc, 0, "root may")
        assert "control: refused a client" in d2.stderr()
    finally:
        d2.stop()


@test
def t_socket_file():
    """a live socket is not taken over, a stale one is replaced, a missing
    folder is a warning; errors at -t"""
    d2 = Daemon(conf(), files={"home.zone": ZONE % "", "list.txt": ""},
                wait=False)
    d2.proc.wait(timeout=10)
    assert d2.proc.returncode != 0 and "another daemon is listening" in \
        d2.stderr(), d2.stderr()
    ok("status")        # the first one is untouched
    stale = os.path.join(sockdir, "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()           # a file nobody listens on
    d3 = Daemon(conf(stale), files={"home.zone": ZONE % "", "list.txt": ""})
    eq(ctl("status", sock=stale)[0], 0, "the stale socket was replaced")
    d3.stop()
    assert not os.path.exists(stale), "removed at exit"
    d5 = Daemon(conf(os.path.join(sockdir, "nofolder", "control")),
                files={"home.zone": ZONE % "", "list.txt": ""})
    assert "folder %s/nofolder does not exist; no control socket" % sockdir \
        in d5.stderr(), d5.stderr()
    d5.stop()
    notsock = os.path.join(sockdir, "file")
    open(notsock, "w").close()
    d4 = Daemon(conf(notsock), files={"home.zone": ZONE % "", "list.txt": ""},
                wait=False)
    d4.proc.wait(timeout=10)
    assert "exists and is not a socket" in d4.stderr(), d4.stderr()
    for extra, why in (('control_mode = "999";', "control_mode"),
                       ('control_mode = 432;', "must be a string"),
                       ('control_group = "no-such-group";', "no such group")):
        path = d.write("bad.conf", conf(SOCK, extra).replace(
            "@LISTEN@", '["127.0.0.1:1"]'))
        rc, out, err = run(["-t", "-c", path])
        eq(rc, 1, extra)
        assert "bad.conf:" in err and why in err, err
    path = d.write("bad.conf", conf("relative/path").replace(
        "@LISTEN@", '["127.0.0.1:1"]'))
    rc, out, err = run(["-t", "-c", path])
    assert rc == 1 and "absolute path" in err, err


@test
def t_groups():
    """client groups: pause GROUP pauses only that group's clients, status
    counts per group, and a reload that reorders the groups keeps the pause
    with its group's name"""
    import dns.message
    import dns.query
    import signal
    gsock = os.path.join(sockdir, "groups")
    kids_first = ('clients = ( { name = "kids"; match = ["127.0.0.2"]; },\n'
                  '  { name = "guests"; match = ["127.0.0.3"]; } );')
    guests_first = ('clients = ( { name = "guests"; match = ["127.0.0.3"]; },\n'
                    '  { name = "kids"; match = ["127.0.0.2"]; } );')
    gd = Daemon(conf(gsock, kids_first),
                files={"home.zone": ZONE % "",
                       "list.txt": "tracker.example.org\n"})

    def ask(src):
        q = dns.message.make_query("tracker.example.org", "A")
        r = dns.query.udp(q, "127.0.0.1", port=gd.port, source=src,
                          timeout=3)
        return [t.split()[-1] for t in texts(r, "A")]

    def gjs(*args):
        rc, out, err = ctl(*args, js=True, sock=gsock)
        eq(rc, 0, "exit status of --json %s (%s)" % (" ".join(args), err))
        return json.loads(out)

    for src in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        eq(ask(src), ["0.0.0.0"], "blocked for %s" % src)
    rc, out, err = ctl("pause", "600", "kids", sock=gsock)
    assert rc == 0 and "group kids" in out, (out, err)
    assert ask("127.0.0.2") != ["0.0.0.0"], "kids' pause: forwarded"
    eq(ask("127.0.0.1"), ["0.0.0.0"], "default: still blocked")
    eq(ask("127.0.0.3"), ["0.0.0.0"], "guests: still blocked")
    s = gjs("status")
    eq([g["name"] for g in s["groups"]], ["default", "kids", "guests"],
       "status: every group")
    by = {g["name"]: g for g in s["groups"]}
    eq((by["kids"]["queries"], by["kids"]["blocked"]), (2, 1), "kids' counts")
    eq((by["guests"]["queries"], by["guests"]["blocked"]), (2, 2),
       "guests' counts")
    eq(s["pause"], {"kids": 600}, "status: the kids' pause")
    rc, out, err = ctl("pause", "5", "nobody", sock=gsock)
    assert rc == 1 and "default, kids, guests" in out + err, (out, err)
    g0 = s["snapshot"]["generation"]
    gd.write("splitdns.conf", open(gd.conf).read().replace(kids_first,
                                                            guests_first))
    gd.proc.send_signal(signal.SIGHUP)
    end = time.time() + 10
    while gjs("status")["snapshot"]["generation"] == g0:
        assert time.time() < end, "the reload is published"
        time.sleep(0.05)
    assert ask("127.0.0.2") != ["0.0.0.0"], "kids still paused after reorder"
    eq(ask("127.0.0.3"), ["0.0.0.0"], "guests still blocked after reorder")
    eq(gjs("status")["pause"], {"kids": 600}, "the pause kept its name")
    eq(ctl("resume", "kids", sock=gsock)[0], 0, "resume kids")
    eq(ask("127.0.0.2"), ["0.0.0.0"], "kids blocked again after resume")
    gd.stop()


@test
def t_pause_last_group():
    """64 client groups (the most a configuration may have): pause of the
    64th pauses its clients only"""
    import dns.message
    import dns.query
    msock = os.path.join(sockdir, "many")
    groups = ",\n".join('{ name = "g%d"; match = ["127.0.1.%d"]; }' % (i, i)
                         for i in range(1, 65))
    md = Daemon(conf(msock, "clients = ( %s );" % groups),
                files={"home.zone": ZONE % "",
                       "list.txt": "tracker.example.org\n"})

    def ask(src):
        q = dns.message.make_query("tracker.example.org", "A")
        r = dns.query.udp(q, "127.0.0.1", port=md.port, source=src,
                          timeout=3)
        return [t.split()[-1] for t in texts(r, "A")]

    eq(ctl("pause", "600", "g64", sock=msock)[0], 0, "pause g64")
    assert ask("127.0.1.64") != ["0.0.0.0"], "g64 paused: forwarded"
    eq(ask("127.0.1.63"), ["0.0.0.0"], "g63 still blocked")
    eq(ask("127.0.0.1"), ["0.0.0.0"], "default still blocked")
    rc, out, err = ctl("--json", "status", sock=msock)
    eq(json.loads(out)["pause"], {"g64": 600}, "status names g64")
    # Paused for everyone for 30 s too: explain gives the later end.
    eq(ctl("pause", "30", sock=msock)[0], 0, "pause everyone 30 s")
    rc, out, err = ctl("explain", "tracker.example.org", "A", "127.0.1.64",
                       sock=msock)
    assert "blocking paused (600 s left)" in out or \
        "blocking paused (599 s left)" in out, out
    md.stop()


@test
def t_stop():
    """SIGTERM: a clean exit, the socket file removed"""
    d.stop()
    assert not os.path.exists(SOCK), "socket removed"


done()
