#!/usr/bin/python3
"""t_tls_listen.py - DNS over TLS and DNS over HTTPS listeners (issue 9,
part 3 and 4), against real clients and hostile ones.

A throwaway CA and server certificates are made here with openssl.  One
daemon listens on plain, tls:// and https:// addresses; the clients are
kdig (+tls, +https, +https-get), stubby, dnsperf -m dot / -m doh, curl
(HTTP/2 POST and GET, and the bad requests answered 400, 404, 405, 413,
415) and raw sockets for the hostile cases: a connection that never
handshakes, a handshake that stops halfway, garbage after the
handshake, 1,000 idle TLS connections, and an HTTP/2 client that opens
many streams and finishes none.  Meanwhile plain UDP and TCP clients
must still be answered and the daemon's memory must stay bounded.
SIGHUP with a renewed certificate: new connections get it, an open one
keeps working; a bad certificate keeps the previous one.
"""
import base64
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

from sdtest import (TAP, V4, Daemon, Upstream, _children, check, eq, frame,
                    free_port, make_query, parse, peer_closed, rcode, rss_kb,
                    run, tcp_read, tmpdir, udp_raw, uniq, wait_for, write)

tap = TAP()
HOST = "dns.test"
ZONE = ('origin = "home.lab";\nauthoritative = true;\nrecords = (\n'
        '  { name = "nas"; type = "A"; data = "192.168.1.10"; ttl = 300; },\n'
        '  { name = "short"; type = "A"; data = "192.168.1.11"; ttl = 42; }\n'
        ');\n')

# The test process holds 1,000 connections at once.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(_soft, min(_hard, 4096)),
                                            _hard))

PKI = tmpdir("tlsl.")


def sh(args, timeout=30):
    """Run a client program; its CompletedProcess (text), checked."""
    p = subprocess.run(args, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, "%s: status %d: %s%s" % (
        args[0], p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def openssl(*args):
    sh(["openssl"] + list(args))


def make_cert(name, days=2):
    """A server certificate for HOST, 127.0.0.1 and ::1 signed by the CA:
    PKI/name.pem and PKI/name.key."""
    key, csr, pem = (os.path.join(PKI, name + ext)
                     for ext in (".key", ".csr", ".pem"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + HOST)
    openssl("x509", "-req", "-in", csr, "-CA", CA, "-CAkey", CA_KEY,
            "-CAcreateserial", "-out", pem, "-days", str(days),
            "-extfile", EXT)
    return pem, key


def der_of(pem):
    with open(pem) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


CA = os.path.join(PKI, "ca.pem")
CA_KEY = os.path.join(PKI, "ca.key")
EXT = write(PKI, "ext.cnf",
            "subjectAltName=DNS:%s,IP:127.0.0.1,IP:::1\n" % HOST)
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", CA_KEY, "-out", CA,
        "-days", "2", "-subj", "/CN=splitdns test CA")
CERT, KEY = make_cert("server")
CERT2, KEY2 = make_cert("renewed")

# A build --without-tls refuses the forms with file:line, and that is all
# there is to test.
_probe = write(PKI, "probe.conf", 'listen = ["tls://127.0.0.1:8853"];\n'
               'tls: { cert = "%s"; key = "%s"; };\n' % (CERT, KEY))
_p = run(["-t", "-c", _probe])
if "built without TLS" in _p.stderr:
    tap.run("--without-tls: tls:// is refused by -t with file:line",
            lambda: check(_p.returncode == 1 and
                          _probe + ":1: listen: 'tls://" in _p.stderr,
                          _p.stderr))
    tap.done()

up = Upstream(addrs=(V4,))
TLS_PORT = None
H_PORT = None


def start():
    global TLS_PORT, H_PORT
    TLS_PORT, H_PORT = free_port(), free_port()
    # Copies the daemon reads at every reload: the test replaces them.
    shutil.copy(CERT, os.path.join(PKI, "live.pem"))
    shutil.copy(KEY, os.path.join(PKI, "live.key"))
    conf = ('listen = ["127.0.0.1:{port}", "tls://127.0.0.1:%d", '
            '"https://127.0.0.1:%d"];\n'
            'upstream: { servers = ["127.0.0.1:%d"]; };\n'
            'zones = ["home.zone"];\nthreads = 1;\n'
            'tcp: { max_connections = 1200; max_per_client = 1200; '
            'idle_timeout_ms = 60000; };\n'
            'tls: { cert = "%s"; key = "%s"; handshake_timeout_ms = 1000; '
            'max_streams = 20; };\n'
            % (TLS_PORT, H_PORT, up.port, os.path.join(PKI, "live.pem"),
               os.path.join(PKI, "live.key")))
    d = Daemon(conf, zones={"home.zone": ZONE})
    tap.at_end(d.stop)
    return d


d = start()


def client_ctx():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = True
    return ctx


def tls_connect(port=None, alpn=None, timeout=5.0):
    ctx = client_ctx()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection((V4, port or TLS_PORT), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=HOST)


def tls_ask(s, name, rdtype="A"):
    q = make_query(name, rdtype)
    s.sendall(frame(q.to_wire()))
    r = parse(tcp_read(s))
    eq(r.id, q.id, "reply ID")
    return r


def plain_ok():
    """The plain listeners still answer, over UDP and TCP."""
    q = make_query("nas.home.lab", "A")
    r = parse(udp_raw(q.to_wire(), d.port, timeout=3))
    check(rcode(r) == "NOERROR" and r.answer, "UDP answer: %s" % r)
    s = socket.create_connection((V4, d.port), timeout=3)
    try:
        s.sendall(frame(q.to_wire()))
        r = parse(tcp_read(s))
        check(rcode(r) == "NOERROR" and r.answer, "TCP answer: %s" % r)
    finally:
        s.close()


def kdig(*args):
    p = sh(["kdig", "@127.0.0.1", "+tls-ca=" + CA, "+tls-hostname=" + HOST,
             "+time=3", "+retry=0"] + list(args), timeout=15)
    return p.stdout


def curl(*args):
    """curl over HTTP/2 to our DoH listener: (status, headers text)."""
    p = subprocess.run(
        ["curl", "-s", "--http2", "--cacert", CA, "--max-time", "5",
         "--resolve", "%s:%d:127.0.0.1" % (HOST, H_PORT), "-D", "-",
         "-o", os.devnull, "-w", "\n%{http_code} %{http_version}"] +
        list(args), capture_output=True, text=True, timeout=15)
    lines = p.stdout.replace("\r", "").strip().split("\n")
    code, version = lines[-1].split()
    return int(code), version, "\n".join(lines[:-1]).lower()


def url(path="/dns-query"):
    return "https://%s:%d%s" % (HOST, H_PORT, path)


@tap.test("kdig +tls: a local answer and a forwarded one over DNS over TLS")
def _():
    out = kdig("-p", str(TLS_PORT), "+tls", "nas.home.lab", "A")
    check("192.168.1.10" in out and "TLS1.3" in out, out)
    name = uniq("dot")
    out = kdig("-p", str(TLS_PORT), "+tls", name, "A")
    check("NOERROR" in out, out)
    check(up.saw(name), "the forwarded query reached the upstream")


@tap.test("kdig +https (POST) and +https-get: answers over HTTP/2")
def _():
    out = kdig("-p", str(H_PORT), "+https", "nas.home.lab", "A")
    check("192.168.1.10" in out and "HTTP/2-POST" in out and
          "status: 200" in out, out)
    out = kdig("-p", str(H_PORT), "+https-get", "short.home.lab", "A")
    check("192.168.1.11" in out and "HTTP/2-GET" in out, out)


@tap.test("curl POST and GET: 200, application/dns-message, max-age from "
          "the smallest TTL")
def _():
    wire = make_query("short.home.lab", "A", qid=0).to_wire()
    path = os.path.join(PKI, "q.bin")
    with open(path, "wb") as f:
        f.write(wire)
    code, version, hdr = curl("-H", "content-type: application/dns-message",
                              "--data-binary", "@" + path, url())
    eq((code, version), (200, "2"), "POST status, HTTP version")
    check("content-type: application/dns-message" in hdr, hdr)
    check("cache-control: max-age=42" in hdr, hdr)
    b64 = base64.urlsafe_b64encode(
        make_query("nas.home.lab", "A", qid=0).to_wire()).decode().rstrip("=")
    code, version, hdr = curl(url("/dns-query?dns=" + b64))
    eq(code, 200, "GET status")
    check("cache-control: max-age=300" in hdr, hdr)
    m = re.search(r"content-length: (\d+)", hdr)
    check(m and int(m.group(1)) > 12, hdr)


@tap.test("bad DoH requests: 404, 405, 413, 415, 400")
def _():
    wire = make_query("nas.home.lab", "A", qid=0).to_wire()
    path = os.path.join(PKI, "q.bin")
    with open(path, "wb") as f:
        f.write(wire)
    big = write(PKI, "big.bin", "x" * 70000)
    ct = ["-H", "content-type: application/dns-message"]
    cases = [
        (404, ct + ["--data-binary", "@" + path, url("/other")]),
        (405, ct + ["-X", "PUT", "--data-binary", "@" + path, url()]),
        (413, ct + ["--data-binary", "@" + big, url()]),
        (415, ["-H", "content-type: text/plain", "--data-binary",
               "@" + path, url()]),
        (400, [url("/dns-query?dns=!!notbase64")]),
        (400, [url("/dns-query")]),
        (400, ct + ["--data-binary", "abc", url()]),
    ]
    for want, args in cases:
        code, _, _ = curl(*args)
        eq(code, want, "status for %s" % " ".join(args[-3:]))
    plain_ok()


@tap.test("20 slow forwarded queries at once on one HTTP/2 connection: "
          "all 200, those past the output room wait (no 503)")
def _():
    urls = []
    # tls.max_streams is 20 here; tcp.max_output leaves room for 15.
    for i in range(20):
        wire = make_query(uniq("w%d.delay300" % i), "A", qid=0).to_wire()
        urls += ["-o", os.devnull, url("/dns-query?dns=" + base64.
                                       urlsafe_b64encode(wire).decode()
                                       .rstrip("="))]
    t0 = time.monotonic()
    p = subprocess.run(
        ["curl", "-s", "--http2", "--cacert", CA, "--max-time", "10",
         "--resolve", "%s:%d:127.0.0.1" % (HOST, H_PORT), "--parallel",
         "--parallel-max", "20", "-w", "%{http_code} %{num_connects}\n"] +
        urls, capture_output=True, text=True, timeout=20)
    took = time.monotonic() - t0
    lines = p.stdout.split()
    codes, connects = lines[0::2], lines[1::2]
    eq(codes, ["200"] * 20, "statuses")
    eq(sum(int(n) for n in connects), 1, "connections")
    check(took < 5, "in %.1fs" % took)


@tap.test("stubby as a DoT client (tls_ca_file, authentication required)")
def _():
    port = free_port()
    conf = write(PKI, "stubby.yml", """
resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list: [GETDNS_TRANSPORT_TLS]
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_query_padding_blocksize: 128
tls_ca_file: "%s"
idle_timeout: 5000
listen_addresses: [127.0.0.1@%d]
upstream_recursive_servers:
  - address_data: 127.0.0.1
    tls_port: %d
    tls_auth_name: "%s"
""" % (CA, port, TLS_PORT, HOST))
    p = subprocess.Popen(["stubby", "-C", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _children.append(p)
    try:
        q = make_query("nas.home.lab", "A")
        wire = None
        end = time.monotonic() + 10
        while wire is None and time.monotonic() < end:
            wire = udp_raw(q.to_wire(), port, timeout=1)
            if wire is None:
                time.sleep(0.1)  # stubby not listening yet
        check(wire is not None, "stubby answered")
        r = parse(wire)
        check(r.answer and "192.168.1.10" in r.answer[0].to_text(),
              "answer through stubby: %s" % r)
    finally:
        p.terminate()
        p.wait(timeout=5)


def dnsperf(mode, port, extra=()):
    qf = write(PKI, "perf.txt", "nas.home.lab A\nshort.home.lab A\n")
    p = sh(["dnsperf", "-m", mode, "-s", V4, "-p", str(port), "-d", qf,
             "-l", "2", "-c", "4", "-Q", "2000"] + list(extra), timeout=30)
    sent = int(re.search(r"Queries sent:\s+(\d+)", p.stdout).group(1))
    done = int(re.search(r"Queries completed:\s+(\d+)", p.stdout).group(1))
    qps = float(re.search(r"Queries per second:\s+([\d.]+)",
                          p.stdout).group(1))
    return sent, done, qps, p.stdout


@tap.test("dnsperf -m dot and -m doh: every query answered")
def _():
    sent, done, qps, out = dnsperf("dot", TLS_PORT)
    check(sent > 100 and done == sent, out)
    tap.diag("dnsperf -m dot: %d queries, %.0f qps (rate-capped)"
             % (done, qps))
    sent, done, qps, out = dnsperf(
        "doh", H_PORT, ["-O", "doh-uri=https://127.0.0.1:%d/dns-query"
                        % H_PORT, "-O", "doh-method=POST"])
    check(sent > 100 and done == sent, out)
    tap.diag("dnsperf -m doh: %d queries, %.0f qps (rate-capped)"
             % (done, qps))


@tap.test("a TCP connect that never handshakes is closed after "
          "tls.handshake_timeout_ms; a handshake stopped halfway too")
def _():
    idle = socket.create_connection((V4, TLS_PORT), timeout=5)
    # Half a handshake: our ClientHello, the server's flight read, and
    # never the client's Finished.
    half = socket.create_connection((V4, TLS_PORT), timeout=5)
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, outg, server_hostname=HOST)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    half.sendall(outg.read())
    check(len(half.recv(65536)) > 0, "the server's first flight")
    t0 = time.monotonic()
    plain_ok()
    check(peer_closed(idle, 4), "a silent connection is closed")
    check(peer_closed(half, 4), "a half handshake is closed")
    took = time.monotonic() - t0
    check(took < 3.5, "closed within about the timeout (%.1fs)" % took)
    idle.close()
    half.close()
    check(wait_for(lambda: re.search(r"closed [1-9]\d* at "
                                     r"tls.handshake_timeout_ms",
                                     d.stderr()), 3),
          "the log counts them: %s" % d.stderr()[-500:])
    plain_ok()


@tap.test("garbage after the handshake closes that connection only")
def _():
    raw = socket.create_connection((V4, TLS_PORT), timeout=5)
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, outg, server_hostname=HOST)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = outg.read()
            if data:
                raw.sendall(data)
            inc.write(raw.recv(65536))
    raw.sendall(outg.read())
    raw.sendall(os.urandom(3000))  # not TLS records
    check(peer_closed(raw, 3), "closed after garbage records")
    raw.close()
    # Garbage inside TLS: frames that are no query (QR=1, too short),
    # which the pipeline drops.
    s = tls_connect()
    s.sendall(frame(b"\xff" * 40) + frame(b"\x00" * 3))
    r = tls_ask(s, "nas.home.lab")
    check(r.answer, "the connection still answers a real query")
    s.close()
    plain_ok()


@tap.test("1,000 idle TLS connections: memory stays bounded, everyone else "
          "is answered")
def _():
    before = rss_kb(d.proc.pid)
    conns = []
    t0 = time.monotonic()
    try:
        for _ in range(1000):
            conns.append(tls_connect())
        took = time.monotonic() - t0
        r = tls_ask(conns[0], "nas.home.lab")
        check(r.answer, "a DoT answer with 1,000 open")
        plain_ok()
        s = tls_connect()
        check(tls_ask(s, "nas.home.lab").answer, "a new TLS client")
        s.close()
        after = rss_kb(d.proc.pid)
        per = (after - before) / 1000.0
        tap.diag("1,000 TLS handshakes in %.1fs (%.0f/s, sequential); "
                 "RSS %d -> %d kB (%.1f kB per idle connection)"
                 % (took, 1000 / took, before, after, per))
        check(per < 200, "RSS per idle TLS connection %.1f kB" % per)
    finally:
        for s in conns:
            s.close()


def h2_frame(ftype, flags, stream, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", stream) + payload)


def hpack_literal(name, value):
    """A literal header field without indexing, new name, no Huffman
    (RFC 7541 6.2.2); names and values under 127 bytes."""
    return (b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) +
            value)


def h2_read_frames(s, seconds):
    """Frame types and flags the server sent within seconds."""
    s.settimeout(0.3)
    buf, frames = b"", []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except OSError:
            break
        if not data:
            break
        buf += data
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big")
                           & 0x7fffffff, buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


@tap.test("an HTTP/2 client opening 2,000 streams and finishing none: "
          "streams past tls.max_streams are refused, others answered")
def _():
    before = rss_kb(d.proc.pid)
    s = tls_connect(H_PORT, alpn=["h2"])
    eq(s.selected_alpn_protocol(), "h2", "ALPN")
    block = b"".join(hpack_literal(n, v) for n, v in (
        (b":method", b"POST"), (b":scheme", b"https"),
        (b":path", b"/dns-query"), (b":authority", HOST.encode()),
        (b"content-type", b"application/dns-message")))
    out = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", h2_frame(4, 0, 0)]
    # HEADERS with END_HEADERS, without END_STREAM, and one octet of
    # body: each stream waits for the rest, which never comes.
    for i in range(2000):
        out += [h2_frame(1, 0x4, 2 * i + 1, block),
                h2_frame(0, 0, 2 * i + 1, b"\0")]
    s.sendall(b"".join(out))
    frames = h2_read_frames(s, 2)
    resets = [f for f in frames if f[0] == 3]
    goaway = [f for f in frames if f[0] == 7]
    check(resets or goaway, "streams refused or the connection ended: %s"
          % [(f[0], f[2]) for f in frames[:10]])
    code, _, _ = curl("-H", "content-type: application/dns-message",
                      "--data-binary", "@" + os.path.join(PKI, "q.bin"),
                      url())
    eq(code, 200, "another DoH client meanwhile")
    plain_ok()
    growth = rss_kb(d.proc.pid) - before
    check(growth < 20000, "RSS grew by %d kB" % growth)
    tap.diag("2,000 streams on one connection: %d RST_STREAM, %d GOAWAY, "
             "RSS +%d kB" % (len(resets), len(goaway), growth))
    s.close()


@tap.test("tls.max_handshakes (64) connections that never handshake: the "
          "next TLS client is refused until they time out; plain clients "
          "are answered meanwhile")
def _():
    idle = [socket.create_connection((V4, TLS_PORT), timeout=5)
            for _ in range(64)]
    time.sleep(0.2)
    refused = False
    try:
        tls_connect().close()
    except (ssl.SSLError, OSError):
        refused = True
    check(refused, "the 65th handshake is refused")
    plain_ok()
    check(all(peer_closed(s, 4) for s in idle), "the 64 are closed")
    for s in idle:
        s.close()
    s = tls_connect()
    check(tls_ask(s, "nas.home.lab").answer, "a TLS client after they went")
    s.close()
    check(wait_for(lambda: re.search(r"refused [1-9]\d* at "
                                     r"tls.max_handshakes", d.stderr()), 12),
          "the log counts the refusal: %s" % d.stderr()[-500:])


def served_cert():
    s = tls_connect()
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


@tap.test("SIGHUP: a renewed certificate for new connections, an open "
          "connection keeps working; a bad one keeps the previous")
def _():
    eq(served_cert(), der_of(CERT), "the first certificate")
    old = tls_connect()
    shutil.copy(CERT2, os.path.join(PKI, "live.pem"))
    shutil.copy(KEY2, os.path.join(PKI, "live.key"))
    n = d.stderr().count("reloaded")
    d.proc.send_signal(signal.SIGHUP)
    check(wait_for(lambda: d.stderr().count("reloaded") > n, 10),
          "reloaded: %s" % d.stderr()[-500:])
    eq(served_cert(), der_of(CERT2), "the renewed certificate")
    check(tls_ask(old, "nas.home.lab").answer, "the open connection")
    old.close()
    # A certificate that does not match its key.
    shutil.copy(CERT, os.path.join(PKI, "live.pem"))
    n = d.stderr().count("reload failed")
    d.proc.send_signal(signal.SIGHUP)
    check(wait_for(lambda: d.stderr().count("reload failed") > n, 10),
          "the reload failed: %s" % d.stderr()[-500:])
    check(re.search(r"reload failed.*tls\.cert", d.stderr()),
          "the log says why: %s" % d.stderr()[-500:])
    eq(served_cert(), der_of(CERT2), "still the renewed certificate")
    shutil.copy(CERT2, os.path.join(PKI, "live.pem"))


@tap.test("tcp.max_per_client counts TLS and plain TCP connections "
          "together; an idle DoH connection gets GOAWAY, then is closed")
def _():
    port, hport = free_port(), free_port()
    conf = ('listen = ["127.0.0.1:{port}", "tls://127.0.0.1:%d", '
            '"https://127.0.0.1:%d"];\n'
            'upstream: { servers = ["127.0.0.1:%d"]; };\n'
            'zones = ["home.zone"];\nthreads = 1;\n'
            'tcp: { max_per_client = 2; idle_timeout_ms = 1000; };\n'
            'tls: { cert = "%s"; key = "%s"; };\n'
            % (port, hport, up.port, CERT, KEY))
    d2 = Daemon(conf, zones={"home.zone": ZONE})
    try:
        h = tls_connect(hport, alpn=["h2"])
        h.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0))
        frames = h2_read_frames(h, 4)
        types = [f[0] for f in frames]
        check(7 in types, "GOAWAY in %s" % types)
        goaway = [f for f in frames if f[0] == 7][0]
        eq(goaway[3][4:8], b"\0\0\0\0", "GOAWAY error code NO_ERROR")
        check(peer_closed(h, 2), "closed after the GOAWAY")
        h.close()
        a = tls_connect(port)
        b = socket.create_connection((V4, d2.port), timeout=3)
        check(tls_ask(a, "nas.home.lab").answer, "the first TLS client")
        refused = False
        try:
            tls_connect(port).close()
        except (ssl.SSLError, OSError):
            refused = True
        check(refused, "a third connection (TLS) from the same address")
        a.close()
        b.close()
        time.sleep(0.2)
        c = tls_connect(port)
        check(tls_ask(c, "nas.home.lab").answer, "a slot again")
        c.close()
    finally:
        d2.stop()


def check_conf(text):
    folder = tmpdir()
    path = write(folder, "splitdns.conf", text)
    p = run(["-t", "-c", path])
    return p.returncode, p.stderr + p.stdout, path


@tap.test("-t: tls:// without tls.cert, an unreadable or mismatched "
          "certificate, a bad path: errors with file:line")
def _():
    rc, out, path = check_conf('listen = ["127.0.0.1:5300",\n'
                               '  "tls://127.0.0.1:8853"];\n')
    check(rc != 0 and "%s:2: listen tls://127.0.0.1:8853 needs tls.cert"
          % path in out, out)
    rc, out, path = check_conf(
        'listen = ["https://127.0.0.1:8443/q"];\n\n'
        'tls: { cert = "%s";\n key = "%s"; };\n' % (CERT, KEY2))
    check(rc != 0 and re.search(r"%s:3: tls.cert .*: .*key" % re.escape(path),
                                out, re.I), out)
    rc, out, path = check_conf(
        'listen = ["tls://127.0.0.1:8853"];\n'
        'tls: { cert = "/nonexistent.pem"; key = "%s"; };\n' % KEY)
    check(rc != 0 and "%s:2: tls.cert '/nonexistent.pem'" % path in out, out)
    rc, out, path = check_conf('listen = ["https://127.0.0.1:8443/a b"];\n'
                               'tls: { cert = "%s"; key = "%s"; };\n'
                               % (CERT, KEY))
    check(rc != 0 and "%s:1:" % path in out and "path" in out, out)
    rc, out, path = check_conf('listen = ["quic://127.0.0.1:8853"];\n')
    check(rc != 0 and "%s:1:" % path in out, out)
    rc, out, path = check_conf(
        'listen = ["127.0.0.1:5300", "tls://[::1]", "https://[::1]"];\n'
        'tls: { cert = "%s"; key = "%s"; };\n' % (CERT, KEY))
    check(rc == 0, out)


@tap.test("the daemon ends cleanly (no sanitizer report)")
def _():
    d.stop()


tap.done()
