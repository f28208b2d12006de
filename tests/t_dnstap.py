#!/usr/bin/python3
"""dnstap output read back by Debian's dnstap readers: to a file (read by
dnstap-ldns -r, in order: client query and response pairs for a local, a
blocked, a forwarded and a cached name, the forwarder's query and response
between them, with the client's port, ID and the answers), to a unix socket
that fstrm_capture listens on, to a socket nobody listens on (queries
answered, messages counted dropped), SIGUSR2 (two complete files: each
ends with the Frame Streams stop frame) and -t's checks of the setting."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import dns.message
import dns.query

from harness import Daemon, Upstream, done, eq, free_port, run, test

up = Upstream()
tmp = tempfile.mkdtemp(prefix="sddnstap.")
ZONE = '''origin = "home.lab";
authoritative = true;
records = ( { name = "nas"; type = "A"; data = "192.168.1.10"; } );
'''
CONF = '''listen = @LISTEN@;
upstream: { servers = ["127.0.0.1:%d"]; timeout_ms = 1000; tries = 2; };
zones = ["home.zone"];
block: { domains = ["ads.example.net"]; };
threads = 1;
%s
'''
# The Frame Streams stop frame: escape (0 length), control length 4, STOP.
STOP_FRAME = b"\0\0\0\0" + b"\0\0\0\x04" + b"\0\0\0\x03"


def conf(extra):
    return CONF % (up.port, extra)


def built_with_dnstap():
    path = os.path.join(tmp, "check.conf")
    with open(path, "w") as f:
        f.write('listen = ["127.0.0.1:53"];\ndnstap = "%s/x.fstrm";\n' % tmp)
    rc, out, err = run(["-t", "-c", path])
    return "built without dnstap" not in err


def ldns(path, yaml=False):
    """dnstap-ldns's reading of a file: its lines, or YAML documents."""
    p = subprocess.run(["dnstap-ldns", "-y" if yaml else "-q", "-r", path],
                       capture_output=True, text=True, timeout=20)
    eq(p.returncode, 0, "dnstap-ldns exit status (%s)" % p.stderr)
    if yaml:
        return [d for d in p.stdout.split("\n---\n") if d.strip()]
    return [l for l in p.stdout.splitlines() if l.strip()]


def summary(lines):
    """(type, protocol, name) of each dnstap-ldns -q line."""
    out = []
    for l in lines:
        m = re.match(r'\S+ \S+ (\w\w) \S+ (\w+) \d+b "([^"]*)" IN (\w+)', l)
        assert m, "unexpected dnstap-ldns line: %r" % l
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


def field(doc, name):
    m = re.search(r"^  %s: (.*)$" % name, doc, re.M)
    return m.group(1).strip('"') if m else None


def ask(name, port, tcp=False, sport=0):
    """Send one query from a known source port; the reply and the query."""
    q = dns.message.make_query(name, "A")
    if tcp:
        r = dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
    else:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=3,
                          source="127.0.0.1", source_port=sport)
    return r, q


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def texts(r):
    """The answer's addresses."""
    return sorted(rd.to_text() for rrs in r.answer for rd in rrs)


def stats_line(d, want):
    """The SIGUSR1 line's (sent, dropped), asked again until it is want
    (or want(got) holds; None: the first answer): a reply reaches the
    client just before its observer runs."""
    line = r"dnstap: (\d+) messages sent, (\d+) dropped"
    got, end = None, time.time() + 5
    while time.time() < end:
        n = len(re.findall(line, d.stderr()))
        d.signal(signal.SIGUSR1)
        while time.time() < end:
            m = re.findall(line, d.stderr())
            if len(m) > n:
                got = (int(m[-1][0]), int(m[-1][1]))
                break
            time.sleep(0.05)
        if want is None or got == want or (callable(want) and
                                          got and want(got)):
            break
        time.sleep(0.1)
    return got


if not built_with_dnstap():
    # A build without libfstrm refuses the setting with file:line; the
    # rest cannot run.
    @test
    def refused_without_dnstap():
        """without dnstap built in, -t refuses the setting at its line"""
        path = os.path.join(tmp, "check.conf")
        rc, out, err = run(["-t", "-c", path])
        assert rc != 0 and "check.conf:2:" in err, err
    done()


@test
def file_output():
    """file: client and forwarder messages in order, readable by dnstap-ldns"""
    path = os.path.join(tmp, "one.fstrm")
    d = Daemon(conf('dnstap = "%s";\ndnstap_identity = "test-box";' % path),
               files={"home.zone": ZONE})
    sport = free_udp_port()
    r1, q1 = ask("nas.home.lab", d.port, sport=sport)
    eq(texts(r1), ["192.168.1.10"], "local answer")
    r2, _ = ask("ads.example.net", d.port)
    eq(texts(r2), ["0.0.0.0"], "blocked answer")
    r3, q3 = ask("www.example.com", d.port)
    eq(len(texts(r3)), 1, "forwarded answer")
    r4, _ = ask("www.example.com", d.port, tcp=True)
    eq(texts(r4), texts(r3), "cached answer")
    eq(len(up.saw("www.example.com")), 1, "asked upstream once")
    d.stop()
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(STOP_FRAME), "file ends without the stop frame"
    got = summary(ldns(path))
    eq(got, [("CQ", "UDP", "nas.home.lab."), ("CR", "UDP", "nas.home.lab."),
             ("CQ", "UDP", "ads.example.net."),
             ("CR", "UDP", "ads.example.net."),
             ("CQ", "UDP", "www.example.com."),
             ("FQ", "UDP", "www.example.com."),
             ("FR", "UDP", "www.example.com."),
             ("CR", "UDP", "www.example.com."),
             ("CQ", "TCP", "www.example.com."),
             ("CR", "TCP", "www.example.com.")], "messages")
    docs = ldns(path, yaml=True)
    eq(len(docs), 10, "YAML documents")
    cq, cr = docs[0], docs[1]
    eq(field(cq, "identity") or re.search(r'^identity: "(.*)"$', cq,
                                          re.M).group(1), "test-box",
       "identity")
    assert re.search(r'^version: "splitdns ', cq, re.M), cq
    for doc in (cq, cr):
        eq(field(doc, "query_address"), "127.0.0.1", "client address")
        eq(field(doc, "query_port"), str(sport), "client port")
        eq(field(doc, "socket_family"), "INET", "family")
    assert "id: %d" % q1.id in cq, "client query's ID"
    assert "192.168.1.10" in cr, "local answer in CLIENT_RESPONSE"
    assert "0.0.0.0" in docs[3], "blocking answer in CLIENT_RESPONSE"
    assert "response_time" in cr and "response_time" not in cq, "times"
    fq, fr = docs[5], docs[6]
    eq(field(fq, "type"), "FORWARDER_QUERY", "FQ type")
    eq(field(fr, "type"), "FORWARDER_RESPONSE", "FR type")
    eq(field(fq, "query_address"), None, "upstream address left out")
    assert texts(r3)[0] in fr and texts(r3)[0] in docs[7], \
        "the upstream's answer in FR and CR"
    eq(field(fq, "query_time"), field(fr, "query_time"),
       "FR's query time is FQ's")


@test
def unix_socket():
    """unix socket: fstrm_capture receives the messages"""
    sock = os.path.join(tmp, "cap.sock")
    out = os.path.join(tmp, "cap.fstrm")
    cap = subprocess.Popen(["fstrm_capture", "-t", "protobuf:dnstap.Dnstap",
                            "-u", sock, "-w", out],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 5
        while not os.path.exists(sock) and time.time() < end:
            time.sleep(0.02)
        d = Daemon(conf('dnstap = "unix:%s";' % sock),
                   files={"home.zone": ZONE})
        ask("nas.home.lab", d.port)
        ask("blocked.ads.example.net", d.port)
        eq(stats_line(d, (4, 0)), (4, 0), "sent, dropped")
        d.stop()
    finally:
        time.sleep(0.3)
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
    eq(summary(ldns(out)),
       [("CQ", "UDP", "nas.home.lab."), ("CR", "UDP", "nas.home.lab."),
        ("CQ", "UDP", "blocked.ads.example.net."),
        ("CR", "UDP", "blocked.ads.example.net.")], "captured messages")


@test
def no_reader():
    """socket without a reader: answers as usual, messages counted dropped"""
    sock = os.path.join(tmp, "nobody.sock")
    d = Daemon(conf('dnstap = "unix:%s";' % sock), files={"home.zone": ZONE})
    for i in range(5):
        r, _ = ask("nas.home.lab", d.port)
        eq(texts(r), ["192.168.1.10"], "answer %d" % i)
    r, _ = ask("fwd.example.org", d.port)
    eq(len(texts(r)), 1, "forwarded answer")
    # 5 x (CQ, CR) and CQ, FQ, FR, CR
    eq(stats_line(d, (0, 14)), (0, 14), "sent, dropped")
    d.stop()


@test
def reader_later():
    """a reader that starts after the daemon gets the messages from then on"""
    sock = os.path.join(tmp, "late.sock")
    out = os.path.join(tmp, "late.fstrm")
    d = Daemon(conf('dnstap = "unix:%s";' % sock), files={"home.zone": ZONE})
    ask("before.ads.example.net", d.port)
    eq(stats_line(d, (0, 2)), (0, 2), "sent, dropped with no reader")
    cap = subprocess.Popen(["fstrm_capture", "-t", "protobuf:dnstap.Dnstap",
                            "-u", sock, "-w", out],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        # splitdns tries again every 2 seconds; until then, drops
        end = time.time() + 10
        while time.time() < end:
            ask("nas.home.lab", d.port)
            got = stats_line(d, None)
            if got[0] > 0:
                break
            time.sleep(0.2)
        sent0 = stats_line(d, None)[0]
        ask("after.ads.example.net", d.port)
        eq(stats_line(d, lambda g: g[0] == sent0 + 2)[0], sent0 + 2,
           "sent")
        d.stop()
    finally:
        time.sleep(0.3)
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
    got = summary(ldns(out))
    assert ("CQ", "UDP", "before.ads.example.net.") not in got, got
    eq(got[-2:], [("CQ", "UDP", "after.ads.example.net."),
                  ("CR", "UDP", "after.ads.example.net.")], "last messages")


@test
def reopen():
    """SIGUSR2: the moved file is finished, a new one started"""
    path = os.path.join(tmp, "rot.fstrm")
    d = Daemon(conf('dnstap = "%s";' % path), files={"home.zone": ZONE})
    ask("nas.home.lab", d.port)
    eq(stats_line(d, (2, 0)), (2, 0), "sent, dropped before the move")
    os.rename(path, path + ".1")
    d.signal(signal.SIGUSR2)
    end = time.time() + 5
    while not os.path.exists(path) and time.time() < end:
        time.sleep(0.02)
    with open(path + ".1", "rb") as f:
        assert f.read().endswith(STOP_FRAME), "moved file finished"
    ask("ads.example.net", d.port)
    d.stop()
    eq(summary(ldns(path + ".1")), [("CQ", "UDP", "nas.home.lab."),
                                    ("CR", "UDP", "nas.home.lab.")],
       "first file")
    with open(path, "rb") as f:
        assert f.read().endswith(STOP_FRAME), "second file finished"
    eq(summary(ldns(path)), [("CQ", "UDP", "ads.example.net."),
                             ("CR", "UDP", "ads.example.net.")],
       "second file")


def tls_built():
    path = os.path.join(tmp, "tls.conf")
    with open(path, "w") as f:
        f.write('listen = ["tls://127.0.0.1:8853"];\n')
    rc, out, err = run(["-t", "-c", path])
    return "without TLS" not in err


@test
def reload_keeps_output():
    """SIGHUP with another dnstap path: a warning, the output stays"""
    path = os.path.join(tmp, "keep.fstrm")
    d = Daemon(conf('dnstap = "%s";' % path), files={"home.zone": ZONE})
    d.write("splitdns.conf", conf('dnstap = "%s.other";' % path)
            .replace("@LISTEN@", '["127.0.0.1:%d"]' % d.port))
    d.signal(signal.SIGHUP)
    end = time.time() + 10
    while "reloaded" not in d.stderr() and time.time() < end:
        time.sleep(0.05)
    assert "dnstap settings changed: they take effect after a restart" \
        in d.stderr(), d.stderr()
    ask("nas.home.lab", d.port)
    d.stop()
    assert not os.path.exists(path + ".other"), "no second output"
    eq(summary(ldns(path)), [("CQ", "UDP", "nas.home.lab."),
                             ("CR", "UDP", "nas.home.lab.")], "messages")


@test
def encrypted_clients():
    """DoT and DoH clients: recorded as TCP, readable by dnstap-ldns -y"""
    if not tls_built() or not shutil.which("kdig"):
        return  # nothing to test in a --without-tls build
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=dns.test",
                    "-addext", "subjectAltName=DNS:dns.test,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    path = os.path.join(tmp, "tls.fstrm")
    tport, hport = free_port(), free_port()
    d = Daemon(conf('dnstap = "%s";\ntls: { cert = "%s"; key = "%s"; };'
                    % (path, cert, key))
               .replace("@LISTEN@", '["127.0.0.1:@PORT@", '
                        '"tls://127.0.0.1:%d", "https://127.0.0.1:%d"]'
                        % (tport, hport)),
               files={"home.zone": ZONE})
    for port, how in ((tport, "+tls"), (hport, "+https")):
        p = subprocess.run(["kdig", "@127.0.0.1", "-p", str(port), how,
                            "+tls-ca=" + cert, "+tls-hostname=dns.test",
                            "+short", "nas.home.lab"],
                           capture_output=True, text=True, timeout=20)
        eq(p.stdout.split(), ["192.168.1.10"], "kdig %s" % how)
    d.stop()
    eq(summary(ldns(path)), [("CQ", "TCP", "nas.home.lab."),
                             ("CR", "TCP", "nas.home.lab.")] * 2,
       "messages")
    docs = ldns(path, yaml=True)
    eq([field(x, "socket_protocol") for x in docs], ["TCP"] * 4,
       "YAML socket_protocol")


@test
def unopenable_file():
    """a file that cannot be created stops the start, saying why"""
    path = os.path.join(tmp, "no-such-dir", "x.fstrm")
    d = Daemon(conf('dnstap = "%s";' % path), files={"home.zone": ZONE},
               wait=False)
    rc = d.proc.wait(timeout=20)
    eq(rc, 1, "exit status")
    assert "dnstap: %s: No such file or directory" % path in d.stderr(), \
        d.stderr()


@test
def config_checks():
    """-t: dnstap must be an absolute path or unix: and one, file:line"""
    for value, why in (("relative.fstrm", "absolute path"),
                       ("unix:sock", "absolute path"),
                       ("unix:/" + "x" * 120, "longer than 107")):
        path = os.path.join(tmp, "bad.conf")
        with open(path, "w") as f:
            f.write('listen = ["127.0.0.1:53"];\n\ndnstap = "%s";\n' % value)
        rc, out, err = run(["-t", "-c", path])
        eq(rc != 0, True, "exit status for %s" % value)
        assert "bad.conf:3:" in err and why in err, err


done()
