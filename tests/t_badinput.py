#!/usr/bin/python3
"""t_badinput.py - hostile input (TAP).

1. Replays tests/corpus/*.hex over UDP and TCP (v4 and v6 alternately).
   A corpus file is hex text; '#' starts a comment; the first line says
   what the daemon must do:
     # expect: drop | FORMERR | NOTIMP | BADVERS | NOERROR | NXDOMAIN
   or several outcomes joined by " or " where the SPEC leaves the choice.
   Every reply must carry the packet's ID and QR=1.  "drop" means no reply:
   a well-formed control query sent right after it gets the first reply
   (over TCP the server may also close the connection).
2. Sends 2000 mutated and random packets over UDP and several hundred over
   TCP (seed from $SDTEST_SEED, default fixed), checks every reply it gets
   (at least 12 bytes, QR=1, an ID that was sent), then that the daemon still
   answers normally and exits 0 on SIGTERM (sanitizer builds: no report).
"""

import glob
import os
import random
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import sdtest  # noqa: E402
from sdtest import (V4, V6, ask, check, check_reply, eq, frame,  # noqa: E402
                    make_query, rrs, tcp_connect, tcp_read)

CONTROL_ID = 0xC0DE
SEED = int(os.environ.get("SDTEST_SEED", "20240601"))
N_UDP = 2000
N_TCP_CONN = 12
N_TCP_EACH = 30

LAN = r'''origin = "lan.test";
authoritative = true;
records = (
  { name = "box"; type = "A"; data = "10.1.1.1"; },
  { name = "*.wild"; type = "A"; data = "10.1.1.2"; },
  { name = "c"; type = "CNAME"; data = "box"; }
);
'''


def load_corpus():
    folder = os.path.join(sdtest.SRCDIR, "corpus")
    items = []
    for path in sorted(glob.glob(os.path.join(folder, "*.hex"))):
        with open(path) as f:
            lines = f.read().splitlines()
        m = re.match(r"#\s*expect:\s*(.+?)\s*$", lines[0] if lines else "")
        if not m:
            raise ValueError("%s: first line is not '# expect: ...'" % path)
        expect = [x.strip() for x in m.group(1).split(" or ")]
        hexdigits = "".join(line.split("#", 1)[0] for line in lines)
        hexdigits = re.sub(r"\s+", "", hexdigits)
        items.append((os.path.basename(path), expect, bytes.fromhex(hexdigits)))
    return items


tap = sdtest.TAP()
up = d = None
corpus = []


def start():
    global up, d, corpus
    corpus = load_corpus()
    check(len(corpus) >= 30, "corpus has only %d files" % len(corpus))
    up = sdtest.Upstream()
    tap.at_end(up.stop)
    d = sdtest.Daemon(zones={"lan.zone": LAN},
                      servers=["127.0.0.1:%d" % up.port],
                      timeout_ms=300, tries=1)


tap.run("corpus loads; upstream and daemon start", start)
if d is None:
    tap.done()
P = d.port


def control():
    return make_query("box.lan.test", "A", qid=CONTROL_ID)


def check_control(wire):
    r = dns.message.from_wire(wire)
    check_reply(r, control(), aa=True)
    eq(rrs(r.answer), ["box.lan.test. 300 A 10.1.1.1"], "control answer")


def full_rcode(wire):
    """rcode text of a reply, with the OPT's extended bits when parseable."""
    try:
        r = dns.message.from_wire(wire)
        return dns.rcode.to_text(r.rcode()), r
    except Exception:
        return dns.rcode.to_text(wire[3] & 0x0F), None


def check_outcome(name, expect, pkt, wire):
    check(wire is not None, "no reply; expected %s" % " or ".join(expect))
    check(len(wire) >= 12, "reply of %d bytes" % len(wire))
    if len(pkt) >= 2:
        eq(wire[:2], pkt[:2], "reply ID")
    check(wire[2] & 0x80, "QR not set in the reply")
    rc, r = full_rcode(wire)
    if rc == "NOTIMP" and len(pkt) >= 4 and (pkt[2] >> 3) & 0xF:
        # RFC 8906 3.1.4: only QR and the opcode (issue 8, defect 8)
        eq((wire[2] >> 3) & 0xF, (pkt[2] >> 3) & 0xF, "NOTIMP: opcode echoed")
        eq(wire[2] & 0x87, 0x80, "NOTIMP: AA, TC and RD clear")
        eq(wire[3] & 0xF0, 0, "NOTIMP: RA, Z, AD and CD clear")
    else:
        check(wire[3] & 0x80, "RA not set in the reply (SPEC: RA=1 on all replies)")
    check(rc in expect, "rcode %s, expected %s" % (rc, " or ".join(expect)))
    if rc == "BADVERS":
        check(r is not None and r.edns == 0, "BADVERS without an OPT of version 0")
    if rc in ("NOERROR", "NXDOMAIN"):
        check(r is not None, "answer does not parse")
        # the question is echoed as sent (case kept)
        eq(len(r.question), 1, "question count")
        sent = dns.message.from_wire(pkt, question_only=True)
        eq(r.question[0].name.to_text(), sent.question[0].name.to_text(),
           "question name")


def replay_udp(name, expect, pkt, addr):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                      socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        s.connect((addr, P))
        if expect == ["drop"]:
            s.send(pkt)
            s.send(control().to_wire())
            try:
                first = s.recv(65535)
            except socket.timeout:
                raise AssertionError("no reply to the control query after it")
            check(first[:2] == struct.pack("!H", CONTROL_ID),
                  "a reply to a packet that must be dropped: %s" % first[:32].hex())
            check_control(first)
            s.settimeout(0.1)
            try:
                extra = s.recv(65535)
                raise AssertionError("extra reply %s" % extra[:32].hex())
            except socket.timeout:
                pass
        else:
            s.send(pkt)
            try:
                wire = s.recv(65535)
            except socket.timeout:
                wire = None
            check_outcome(name, expect, pkt, wire)
    finally:
        s.close()


def replay_tcp(name, expect, pkt, addr):
    s = tcp_connect(P, addr, timeout=2.0)
    try:
        if expect == ["drop"]:
            s.sendall(frame(pkt) + frame(control().to_wire()))
            try:
                first = tcp_read(s)
            except ConnectionResetError:
                first = None
            except socket.timeout:
                raise AssertionError("neither a reply to the control query "
                                     "nor a close")
            if first is None:
                return          # the server closed the connection: fine
            check(first[:2] == struct.pack("!H", CONTROL_ID),
                  "a reply to a packet that must be dropped: %s" % first[:32].hex())
            check_control(first)
        else:
            s.sendall(frame(pkt))
            try:
                wire = tcp_read(s)
            except (socket.timeout, ConnectionResetError):
                wire = None
            check_outcome(name, expect, pkt, wire)
            # the connection stays usable after an error reply
            s.sendall(frame(control().to_wire()))
            try:
                wire = tcp_read(s)
            except (socket.timeout, ConnectionResetError):
                wire = None
            check(wire is not None, "connection unusable after the error reply")
            check_control(wire)
    finally:
        s.close()


def make_replay(name, expect, pkt):
    def fn():
        errors = []
        for proto, addr in (("udp", V4), ("tcp", V6), ("udp", V6), ("tcp", V4)):
            try:
                if proto == "udp":
                    replay_udp(name, expect, pkt, addr)
                else:
                    replay_tcp(name, expect, pkt, addr)
            except AssertionError as e:
                errors.append("%s [%s]: %s" % (proto, addr, e))
            if not d.alive():
                raise AssertionError("daemon died; stderr:\n" + d.stderr()[-4000:])
        if errors:
            raise AssertionError("\n".join(errors))
    return fn


for name, expect, pkt in corpus:
    tap.run("corpus %s: %s (UDP, TCP, v4, v6)" % (name, " or ".join(expect)),
            make_replay(name, expect, pkt))


# ------------------------------------------------------------------ fuzz

rng = random.Random(SEED)
BASES = [pkt for _, _, pkt in corpus if len(pkt) >= 12]
for qn, qt, kw in (("box.lan.test", "A", {}),
                   ("Box.Lan.Test", "AAAA", {"edns": 0, "do": True}),
                   ("a.b.wild.lan.test", "A", {"edns": 0, "payload": 512}),
                   ("c.lan.test", "TXT", {}),
                   ("nothere.lan.test", "MX", {}),
                   ("host.fuzz.example.net", "A", {}),
                   ("big.fuzz.example.net", "TXT", {"edns": 0}),
                   ("id.fuzz.example.net", "TXT", {"edns": 0, "options": [
                       dns.edns.GenericOption(10, b"12345678")]})):
    BASES.append(make_query(qn, qt, **kw).to_wire())


def mutate(pkt):
    b = bytearray(pkt)
    op = rng.randrange(10)
    if op == 0 or not b:
        b = bytearray(rng.getrandbits(8) for _ in range(rng.randrange(0, 600)))
    elif op == 1:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 2:
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.getrandbits(8)
    elif op == 3:
        b = b[:rng.randrange(len(b) + 1)]
    elif op == 4:
        b += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    elif op == 5:
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
    elif op == 6:
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 8)]
    elif op == 7 and len(b) >= 12:
        for k in range(4, 12, 2):
            if rng.random() < 0.5:
                b[k:k + 2] = struct.pack("!H", rng.choice(
                    (0, 1, 2, 3, 255, 0x7FFF, 0xFFFF, rng.getrandbits(16))))
    elif op == 8:
        other = rng.choice(BASES)
        i = rng.randrange(len(b) + 1)
        j = rng.randrange(len(other) + 1)
        b = b[:i] + bytearray(other[j:])
    else:
        # compression pointers sprinkled into the name area
        if len(b) > 14:
            i = rng.randrange(12, len(b) - 1)
            b[i] = 0xC0 | rng.randrange(4)
            b[i + 1] = rng.getrandbits(8)
    if len(b) >= 3 and rng.random() < 0.8:
        b[2] &= 0x7F            # mostly queries (QR=0), so they get parsed
    if len(b) >= 3 and rng.random() < 0.6:
        b[2] &= 0x87            # mostly opcode QUERY
    return bytes(b)


def check_fuzz_reply(wire, sent_ids, bad):
    if len(wire) < 12:
        bad.append("reply of %d bytes" % len(wire))
        return
    if not wire[2] & 0x80:
        bad.append("reply without QR: %s" % wire[:12].hex())
    if wire[:2] not in sent_ids:
        bad.append("reply with an ID never sent: %s" % wire[:2].hex())


def t_fuzz_udp():
    sent_ids = set()
    bad = []
    replies = 0
    socks = []
    for addr in (V4, V6):
        s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                          socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect((addr, P))
        s.setblocking(False)
        socks.append(s)

    def drain(wait):
        nonlocal replies
        end = time.monotonic() + wait
        while True:
            got = False
            for s in socks:
                try:
                    wire = s.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
                got = True
                replies += 1
                check_fuzz_reply(wire, sent_ids, bad)
            if not got:
                if time.monotonic() >= end:
                    return
                time.sleep(0.002)

    try:
        for n in range(N_UDP):
            pkt = mutate(rng.choice(BASES))
            if len(pkt) >= 2:
                sent_ids.add(pkt[:2])
            try:
                socks[n % 2].send(pkt)
            except (BlockingIOError, ConnectionRefusedError):
                pass
            if n % 25 == 24:
                drain(0.005)
                if not d.alive():
                    raise AssertionError("daemon died after %d packets; stderr:\n%s"
                                         % (n + 1, d.stderr()[-4000:]))
        drain(0.8)
    finally:
        for s in socks:
            s.close()
    tap.diag("UDP: %d packets sent, %d replies" % (N_UDP, replies))
    check(d.alive(), "daemon died; stderr:\n" + d.stderr()[-4000:])
    check(not bad, "%d bad replies, e.g. %r" % (len(bad), bad[:5]))
    check(replies > N_UDP // 10, "only %d replies to %d packets" % (replies, N_UDP))


def t_fuzz_tcp():
    bad = []
    closed = 0
    for c in range(N_TCP_CONN):
        addr = V4 if c % 2 else V6
        s = tcp_connect(P, addr, timeout=3.0)
        sent_ids = set()
        try:
            data = b""
            for _ in range(N_TCP_EACH):
                pkt = mutate(rng.choice(BASES))[:65535]
                sent_ids.add(pkt[:2])
                data += frame(pkt)
            data += frame(control().to_wire())
            sent_ids.add(struct.pack("!H", CONTROL_ID))
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                closed += 1
                continue
            end = time.monotonic() + 3.0
            while True:
                if time.monotonic() > end:
                    bad.append("connection %d: no control reply within 3s" % c)
                    break
                try:
                    wire = tcp_read(s)
                except ConnectionResetError:
                    wire = None
                except socket.timeout:
                    bad.append("connection %d: no control reply, no close" % c)
                    break
                if wire is None:
                    closed += 1
                    break
                check_fuzz_reply(wire, sent_ids, bad)
                if wire[:2] == struct.pack("!H", CONTROL_ID):
                    break
        except AssertionError as e:
            bad.append("connection %d: %s" % (c, e))
        finally:
            s.close()
        if not d.alive():
            raise AssertionError("daemon died; stderr:\n" + d.stderr()[-4000:])
    # raw byte streams, not framed at all
    for c in range(6):
        s = tcp_connect(P, V4, timeout=2.0)
        try:
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000))))
            s.shutdown(socket.SHUT_WR)
            s.settimeout(1.5)
            try:
                while s.recv(65535):
                    pass
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()
    tap.diag("TCP: %d connections closed by the server" % closed)
    check(d.alive(), "daemon died; stderr:\n" + d.stderr()[-4000:])
    check(not bad, "%d problems, e.g. %r" % (len(bad), bad[:5]))


def t_still_answers():
    for addr, proto in sdtest.TRANSPORTS:
        q = make_query("box.lan.test", "A")
        r = ask(q, P, addr, proto)
        check_reply(r, q, aa=True)
        eq(rrs(r.answer), ["box.lan.test. 300 A 10.1.1.1"], "local answer")
        name = sdtest.uniq("host")
        q = make_query(name, "A")
        r = ask(q, P, addr, proto)
        check_reply(r, q)
        eq(len(r.answer), 1, "forwarded answer")


tap.run("%d mutated/random packets over UDP (seed %d)" % (N_UDP, SEED), t_fuzz_udp)
tap.run("%d mutated packets over %d TCP connections, and raw byte streams"
        % (N_TCP_CONN * N_TCP_EACH, N_TCP_CONN), t_fuzz_tcp)
tap.run("daemon still answers locally and forwards, UDP/TCP, v4/v6", t_still_answers)
tap.run("SIGTERM: exit status 0, no sanitizer report", d.stop)
tap.done()
