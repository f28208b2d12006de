#!/usr/bin/python3
"""t_tcp.py - TCP clients held to their share (issue 8, defects 2, 14, 15).

Hostile TCP clients against the real binary, from raw sockets:
  - a client that asks for big answers and never reads is closed after
    tcp.write_timeout_ms, and its slot serves another client;
  - a steady but slow reader gets every answer, more than 1 MiB in all;
  - drip-fed frames do not hold slots past tcp.query_timeout_ms, and a
    well-behaved client gets answers meanwhile;
  - tcp.max_per_client connections per client address;
  - under an open-file limit of 64 with 200 TCP connections the daemon
    stays up, logs its budget, and a forwarded UDP query is answered;
  - the accept warning at EMFILE is rate-limited;
  - a client outside access.allow is closed at accept.
Clients are told apart by their source address (127.0.0.0/8).
"""
import os
import resource
import socket
import struct
import threading
import time

from sdtest import (TAP, V4, Daemon, Upstream, check, eq, frame, make_query,
                    parse, peer_closed, rcode, run, tcp_connect,
                    tcp_established, tcp_read, tmpdir, udp_raw, uniq, write)

tap = TAP()

# 120 TXT records of 240 octets: a reply of about 30 KB.
BIG = "big.home.lab"
ZONE = ('origin = "home.lab";\nauthoritative = true;\nrecords = (\n' +
        ",\n".join('  { name = "big"; type = "TXT"; data = "%03d%s"; }'
                   % (i, "x" * 237) for i in range(120)) +
        ',\n  { name = "nas"; type = "A"; data = "192.168.1.10"; }\n);\n')

up = Upstream(addrs=(V4,))


def daemon(tcp, extra="", threads=1, **kw):
    # The limits other than max_connections hold per worker thread: one
    # worker makes their counts exact; max_connections counts over all.
    conf = ('listen = {listen};\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
            'zones = ["home.zone"];\ntcp: { %s };\nthreads = %d;\n%s\n'
            % (up.port, tcp, threads, extra))
    d = Daemon(conf, zones={"home.zone": ZONE}, **kw)
    tap.at_end(d.stop)
    return d


def big_query(qid):
    return frame(make_query(BIG, "TXT", qid=qid).to_wire())


def good_answer(d, source=V4, timeout=2.0):
    """A local answer over a new TCP connection from source, or None."""
    q = make_query("nas.home.lab", "A")
    try:
        s = tcp_connect(d.port, source=source, timeout=timeout)
    except OSError:
        return None
    try:
        s.sendall(frame(q.to_wire()))
        wire = tcp_read(s)
    except (OSError, AssertionError):
        return None
    finally:
        s.close()
    return None if wire is None else parse(wire)


def answered(d, source=V4, within=1.0):
    """Keep asking until a TCP answer comes or within seconds pass;
    the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        r = good_answer(d, source, timeout=0.5)
        if r is not None:
            eq(rcode(r), "NOERROR", "rcode")
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def slot_frees(d, what, within, since):
    """Every slot is held (a new client is closed at once), then one comes
    free within `within` seconds: the seconds since `since` it took."""
    check(good_answer(d) is None,
          "a new client was served while %s held every slot" % what)
    took = answered(d, within=within)
    check(took is not None, "no slot came free within %.1f s" % within)
    waited = time.monotonic() - since
    tap.diag("a slot came free %.2f s after %s took them" % (waited, what))
    return waited


# ------------------------------------------------------ never reading

d1 = daemon(threads=2, tcp="max_connections = 4; max_per_client = 64; "
            "write_timeout_ms = 1500; idle_timeout_ms = 10000;")


@tap.test("never-reading clients of 30 KB answers are closed after "
          "tcp.write_timeout_ms and their slots serve others")
def t_never_reads():
    hogs, addrs = [], ["127.0.0.%d" % (10 + i) for i in range(4)]
    start = time.monotonic()
    for a in addrs:
        s = tcp_connect(d1.port, source=a, rcvbuf=4096)
        s.sendall(b"".join(big_query(n) for n in range(70)))
        hogs.append(s)
    try:
        time.sleep(0.3)
        # The check runs once per timeout (1.5 s): closed within two.
        waited = slot_frees(d1, "never-reading clients", 5.0, start)
        check(waited >= 1.4, "a slot came free before the write timeout")
        while (tcp_established(d1.port, addrs) and
               time.monotonic() - start < 6.5):
            time.sleep(0.1)
        eq(tcp_established(d1.port, addrs), [],
           "never-reading clients still connected after 6.5 s")
    finally:
        for s in hogs:
            s.close()


N_SLOW = 200


@tap.test("a steady slow reader gets all %d answers of 30 KB (6 MB, more "
          "than the kernel buffers)" % N_SLOW)
def t_slow_reader():
    s = tcp_connect(d1.port, rcvbuf=16384, timeout=5.0)
    try:
        s.sendall(b"".join(big_query(n) for n in range(N_SLOW)))
        got, total = set(), 0
        end = time.monotonic() + 20
        while len(got) < N_SLOW and time.monotonic() < end:
            time.sleep(0.005)  # a few MB/s at most: slow, never stalled
            head = s.recv(2, socket.MSG_WAITALL)
            check(len(head) == 2, "connection closed after %d answers, "
                  "%d bytes" % (len(got), total))
            (n,) = struct.unpack("!H", head)
            wire = b""
            while len(wire) < n:
                chunk = s.recv(min(8192, n - len(wire)))
                check(chunk, "closed inside an answer after %d answers, "
                      "%d bytes" % (len(got), total))
                wire += chunk
            total += 2 + n
            r = parse(wire)
            eq(len(r.answer[0]), 120, "TXT records")
            got.add(r.id)
        eq(len(got), N_SLOW, "answers")
        check(total > 4 << 20, "only %d bytes" % total)
    finally:
        s.close()


d7 = daemon("max_output = 131072; max_output_total = 262144;")


@tap.test("at the smallest tcp.max_output and max_output_total, four "
          "pipelining clients still get all their answers")
def t_memory_bound():
    results = {}

    def client(i):
        s = tcp_connect(d7.port, source="127.0.5.%d" % (i + 1), timeout=5.0,
                        rcvbuf=16384)
        try:
            s.sendall(b"".join(big_query(n) for n in range(25)))
            time.sleep(0.5)  # the kernel's buffers fill, then ours
            ids = set()
            for _ in range(25):
                ids.add(parse(tcp_read(s)).id)
            results[i] = len(ids)
        except Exception as e:
            results[i] = repr(e)
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    eq(results, {i: 25 for i in range(4)}, "answers per client")


@tap.test("never-reading clients that fill tcp.max_output_total do not "
          "stall a client that reads")
def t_total_fair():
    hogs = []
    try:
        for i in range(4):
            s = tcp_connect(d7.port, source="127.0.5.%d" % (10 + i),
                            rcvbuf=4096)
            s.sendall(b"".join(big_query(n) for n in range(70)))
            hogs.append(s)
        time.sleep(0.5)
        for k in range(3):
            start = time.monotonic()
            r = good_answer(d7, source="127.0.5.20", timeout=2.0)
            check(r is not None, "no answer while the hogs hold the "
                  "server's output room")
            check(time.monotonic() - start < 1.0, "answer %d took %.2f s"
                  % (k, time.monotonic() - start))
    finally:
        for s in hogs:
            s.close()


# ------------------------------------------------------------ drip feed

d2 = daemon("max_connections = 12; max_per_client = 64; "
            "query_timeout_ms = 1500; idle_timeout_ms = 10000;")


@tap.test("drip-fed frames do not hold slots past tcp.query_timeout_ms; "
          "a well-behaved client gets answers")
def t_drip():
    wire = frame(make_query("nas.home.lab", "A").to_wire())
    drips = [tcp_connect(d2.port, source="127.0.1.%d" % (i + 1))
             for i in range(12)]
    stop = threading.Event()

    def drip():
        # one byte every 0.3 s: a 33-byte frame would take 10 s
        for k in range(len(wire)):
            for s in drips:
                try:
                    s.send(wire[k:k + 1])
                except OSError:
                    pass
            if stop.wait(0.3):
                return

    t = threading.Thread(target=drip, daemon=True)
    start = time.monotonic()
    t.start()
    try:
        time.sleep(0.2)
        # query timeout 1.5 s
        slot_frees(d2, "drip-fed clients", 3.5, start)
        for s in drips:
            check(peer_closed(s, 1.5), "a drip-fed client is still open")
        # and the slots stay usable
        for _ in range(5):
            check(good_answer(d2) is not None, "no answer after the drip")
    finally:
        stop.set()
        t.join(5)
        for s in drips:
            s.close()


# ------------------------------------------------------------ per client

d3 = daemon("max_connections = 32; max_per_client = 4;")


@tap.test("tcp.max_per_client: a fifth connection from one address is "
          "closed at accept, other addresses are served")
def t_per_client():
    held = [tcp_connect(d3.port) for _ in range(4)]
    try:
        # the four are served
        for s in held:
            q = make_query("nas.home.lab", "A")
            s.sendall(frame(q.to_wire()))
            eq(parse(tcp_read(s)).id, q.id, "reply ID")
        extra = tcp_connect(d3.port)
        check(peer_closed(extra, 1.0), "fifth connection from 127.0.0.1 "
              "kept open")
        extra.close()
        line = ("tcp: refused 0 at tcp.max_connections, 1 at "
                "tcp.max_per_client, 0 outside access.allow")
        end = time.monotonic() + 2.0
        while line not in d3.stderr() and time.monotonic() < end:
            time.sleep(0.05)
        check(line in d3.stderr(), "no log line %r:\n%s"
              % (line, d3.stderr()[-1500:]))
        check(good_answer(d3, source="127.0.2.1") is not None,
              "another address refused")
        held.pop().close()
        check(answered(d3, within=1.0) is not None,
              "no connection after one of the four closed")
    finally:
        for s in held:
            s.close()


# ------------------------------------------------------- open-file limit

def limit64():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


d4 = daemon("", preexec_fn=limit64)


@tap.test("open-file limit 64 and 200 TCP connections: up, budget "
          "logged, forwarded UDP query answered")
def t_fd_limit():
    conns = []
    try:
        for i in range(200):
            # Not waiting for each: beyond the listen backlog an old
            # daemon that stopped accepting would leave connect hanging.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conns.append(s)
            s.bind(("127.0.3.%d" % (i + 1), 0))
            s.setblocking(False)
            s.connect_ex((V4, d4.port))
        time.sleep(0.5)
        for k in range(3):
            q = make_query(uniq("fd%d" % k), "A")
            wire = udp_raw(q.to_wire(), d4.port, timeout=3.0)
            check(wire is not None, "no UDP answer")
            eq(rcode(parse(wire)), "NOERROR", "forwarded query's rcode")
        check(d4.alive(), "daemon died")
        check("Too many open files" not in d4.stderr(),
              "EMFILE although the budget fits the limit:\n" +
              d4.stderr()[-2000:])
    finally:
        for s in conns:
            s.close()
    time.sleep(0.3)
    check(answered(d4, within=2.0) is not None, "no TCP answer afterwards")
    log = d4.stderr()
    check("open-file limit 64" in log and "TCP connections in all" in log,
          "no budget line in the log:\n" + log[-2000:])


@tap.test("the descriptor reserve counts a client group's own upstream "
          "servers (4 sockets per server and worker)")
def t_fd_reserve_groups():
    import re
    group = ('clients = ( { name = "kids"; match = ["127.0.0.9/32"]; '
             'upstream: { servers = ["127.0.0.1:%d", "127.0.0.2:%d", '
             '"127.0.0.3:%d"]; }; } );' % (up.port, up.port, up.port))
    kept = []
    for extra in ("", group):
        dd = daemon("", extra=extra, threads=2)
        time.sleep(0.2)
        m = re.search(r"(\d+) kept for listeners", dd.stderr())
        check(m is not None, "no budget line:\n" + dd.stderr()[-1500:])
        kept.append(int(m.group(1)))
        dd.stop()
    eq(kept[1] - kept[0], 3 * 4 * 2, "reserve grown by the group's servers")


# ---------------------------------------------------------- EMFILE log

d5 = daemon("")


@tap.test("the accept warning at EMFILE is logged once per 10 s, "
          "not five times a second")
def t_emfile_rate():
    pid = d5.proc.pid
    nfd = len(os.listdir("/proc/%d/fd" % pid))
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    waiting = []
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (nfd, hard))
        for i in range(3):
            waiting.append(tcp_connect(d5.port))
        time.sleep(2.5)
        n = d5.stderr().count("accept: Too many open files")
        eq(n, 1, "accept warnings in 2.5 s")
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    for s in waiting:
        q = make_query("nas.home.lab", "A")
        s.sendall(frame(q.to_wire()))
        eq(parse(tcp_read(s)).id, q.id, "answer once the limit is back")
        s.close()


# -------------------------------------------------------------- access

d6 = daemon("", extra='access: { allow = ["10.0.0.0/8"]; };')


@tap.test("a client outside access.allow is closed at accept "
          "(needs server_set_access wired to the policy)")
def t_outsider():
    s = tcp_connect(d6.port)
    try:
        check(peer_closed(s, 1.0), "outsider's connection held open")
    finally:
        s.close()


# ------------------------------------------------------------ settings

BOUNDS = [("query_timeout_ms", 500, 60000), ("write_timeout_ms", 1000, 600000),
          ("max_per_client", 1, 65535), ("max_output", 131072, 1 << 30),
          ("max_output_total", 131072, 2147483647)]


@tap.test("tcp settings: their bounds are accepted, one beyond is refused "
          "with file:line")
def t_bounds():
    folder = tmpdir()
    for key, lo, hi in BOUNDS:
        for v, good in ((lo, True), (hi, True), (lo - 1, False),
                        (hi + 1, False)):
            path = write(folder, "c.conf", 'listen = ["127.0.0.1:53"];\n'
                         'upstream: { servers = ["192.0.2.1"]; };\n'
                         "tcp: { %s = %d; };\n" % (key, v))
            r = run(["-t", "-c", path])
            if good:
                eq(r.returncode, 0, "tcp.%s = %d: exit status (%s)"
                   % (key, v, r.stderr.strip()))
            else:
                check(r.returncode != 0 and "c.conf:3" in r.stderr and
                      key in r.stderr, "tcp.%s = %d: %r" % (key, v, r.stderr))


@tap.test("daemons stop cleanly")
def t_stop():
    for d in (d1, d2, d3, d4, d5, d6, d7):
        d.stop()
    up.stop()


tap.done()
