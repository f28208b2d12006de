#!/usr/bin/python3
"""upstream.py - a scriptable upstream DNS server for the splitdns tests.

Listens on UDP and TCP on every --addr (IPv4 or IPv6) at --port and answers
for any zone.  What it does is chosen by the first label of the query name
(case-insensitive):

  (anything else)  A 198.51.100.X / AAAA 2001:db8::X, X derived from the
                   name (see address_for), TTL 300; other types: NODATA + SOA
  nx          NXDOMAIN with a SOA in the authority section
  private     A 192.168.1.1
  nat64 v4compat sitelocal public6
              AAAA 64:ff9b::c0a8:101, ::10.0.0.1, fec0::1, 2001:db8::1
  privatehint publichint
              HTTPS 1 . alpn=h2 ipv4hint=10.1.2.3 (or 192.0.2.7)
  timeout     no answer at all
  servfail    SERVFAIL            refused   REFUSED
  garbage     64 random bytes     malformed the query's ID, QR=1, then junk
  wrongid     reply with ID+1     noqr      reply with QR=0
  badq        reply for another question name
  badop       reply with opcode NOTIFY (4)
  upcase      a normal answer, but question and owner names in upper case
  short       the first 5 bytes of a reply
  big         about 3000 bytes (A: 200 A records, AAAA: 100, TXT: 12 x 240)
  mid         about 800 bytes (A: 48 A records, TXT: 3 x 240)
  half        about 360 bytes (A: 20 A records, TXT: 1 x 240)
              Over UDP a reply larger than the query's limit (512, or its
              OPT size) is sent truncated (TC=1, question and OPT only);
              TCP always gets the whole reply.
  id          TXT: the transaction ID received, in decimal
  edns        TXT: "opt=0|1 size=N do=0|1 opts=CODE,CODE" for the OPT received
  slow        a normal answer, 500 ms late
  cookie      a normal answer whose OPT carries a COOKIE option (code 10)
  cname       CNAME target.example.net., then target's A/AAAA
  ttlN        a normal answer with TTL N (digits; ttl1, ttl10)
  delayN      a normal answer, N milliseconds late (delay1000)
  cnamenodata CNAME target.example.net. (TTL 3600), then NODATA: a SOA
              with TTL 3600 and minimum 2 in the authority section
  hugettl     a normal answer whose TTL is 2^31 (RFC 2181 8: means 0)
  nsid        a normal answer whose OPT carries NSID "upstream-1" (code 3)
  optowner    a normal answer whose OPT record is owned by "x." (not root)
  selfptr     one A record whose owner name is a pointer to itself
  manycount   a normal answer whose header claims 65,535 answers

A query signed with TSIG (the last additional record) is answered as a
server that does not know the key answers (RFC 8945 5.2.2): NOTAUTH, no
question, an unsigned TSIG record with error BADKEY (17); except for the
label "signed", which gets a normal answer followed by a TSIG record with
error 0 and a 32-byte MAC of 'M's, as if the key were known.

--log FILE appends one line per query received, written before any answer:
  PROTO ID QNAME QTYPE opt=0|1 size=N do=0|1 opts=CODE,...
(QNAME lower-cased, absolute) or "PROTO - unparseable len=N"; a signed
query's line ends with " tsig=KEYNAME:CRC", CRC the crc32 (hex) of its
whole TSIG record as received.

--control FILE is read again for every query (a missing file means no
rules); each line is "ACTION NAME", NAME absolute and lower-case or "*" for
every name, and the first line that matches decides:
  drop NAME       no answer at all (the upstream has gone silent)
  servfail NAME   SERVFAIL
A dropped query is still logged.  Write the file whole (to a temporary
name, then rename) so a query never sees half of it.

Prints "ready PORT" on stdout once every socket is bound; exits 1 if a bind
fails.  SIGTERM/SIGINT end it.  Can also be imported for address_for() and
the record sets.
"""

import argparse
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 300
NEG_TTL = 60
SLOW_SECONDS = 0.5
OUR_PAYLOAD = 4096
TTL_LABEL = re.compile(r"^ttl([0-9]{1,7})$")
# AAAA answers that hide a private IPv4 address, or are site-local.
PRIVATE6 = {"nat64": "64:ff9b::c0a8:101", "v4compat": "::10.0.0.1",
            "sitelocal": "fec0::1", "public6": "2001:db8::1"}
DELAY_LABEL = re.compile(r"^delay([0-9]{1,6})$")


def first_label(name):
    """The first label of a dns.name.Name, lower-cased text ('' for root)."""
    if len(name.labels) == 0:
        return ""
    return name.labels[0].decode("latin-1").lower()


def host_byte(qname):
    """The deterministic X in 198.51.100.X for a name (str or Name)."""
    if isinstance(qname, dns.name.Name):
        qname = qname.to_text()
    text = qname.lower()
    if not text.endswith("."):
        text += "."
    return zlib.crc32(text.encode("latin-1")) % 250 + 1


def address_for(qname):
    return "198.51.100.%d" % host_byte(qname)


def address6_for(qname):
    return "2001:db8::%x" % host_byte(qname)


def big_rdatas(kind, rdtype):
    """Record data (text) for big.*, mid.* or half.* (kind 'big', 'mid',
    'half')."""
    sizes = {"big": (200, 100, 12), "mid": (48, 24, 3), "half": (20, 10, 1)}
    n_a, n_aaaa, n_txt = sizes[kind]
    if rdtype == dns.rdatatype.A:
        return ["198.18.%d.%d" % (i // 256, i % 256) for i in range(n_a)]
    if rdtype == dns.rdatatype.AAAA:
        return ["2001:db8:b16::%x" % (i + 1) for i in range(n_aaaa)]
    if rdtype == dns.rdatatype.TXT:
        return ['"%02d%s"' % (i, "x" * 238) for i in range(n_txt)]
    return []


def find_tsig(data):
    """The TSIG record that ends a message, or None: a dict with its
    offset and bytes ('start', 'wire'), 'key' and 'alg' (dns.name.Name),
    'time_fudge' (8 bytes), 'mac', 'orig_id', 'error' and 'other'."""
    try:
        counts = struct.unpack("!HHHH", data[4:12])
        off = 12
        for _ in range(counts[0]):
            _, used = dns.name.from_wire(data, off)
            off += used + 4
        total = counts[1] + counts[2] + counts[3]
        for i in range(total):
            start = off
            key, used = dns.name.from_wire(data, off)
            off += used
            rdtype, _, _, rdlen = struct.unpack("!HHIH", data[off:off + 10])
            off += 10
            rdata = off
            off += rdlen
            if i + 1 < total or rdtype != dns.rdatatype.TSIG:
                continue
            alg, used = dns.name.from_wire(data, rdata)
            p = rdata + used
            time_fudge = data[p:p + 8]
            (macsize,) = struct.unpack("!H", data[p + 8:p + 10])
            mac = data[p + 10:p + 10 + macsize]
            p += 10 + macsize
            orig_id, error, olen = struct.unpack("!HHH", data[p:p + 6])
            if off != len(data) or p + 6 + olen != off:
                return None
            return {"start": start, "wire": data[start:off], "key": key,
                    "alg": alg, "time_fudge": time_fudge, "mac": mac,
                    "orig_id": orig_id, "error": error,
                    "other": data[p + 6:off]}
    except (ValueError, struct.error, dns.exception.DNSException):
        return None
    return None


def tsig_record(t, msg_id, error, mac=b""):
    """A TSIG record (wire) for the key and algorithm of t (find_tsig)."""
    rdata = (t["alg"].to_wire() + t["time_fudge"]
             + struct.pack("!H", len(mac)) + mac
             + struct.pack("!HHH", msg_id, error, 0))
    return (t["key"].to_wire() + struct.pack("!HHIH", dns.rdatatype.TSIG,
                                             dns.rdataclass.ANY, 0,
                                             len(rdata)) + rdata)


class Upstream:
    def __init__(self, addrs, port, logfile=None, control=None):
        self.addrs = addrs
        self.port = port
        self.logfile = logfile
        self.control = control
        self.max_delay = SLOW_SECONDS
        self.loglock = threading.Lock()
        self.socks = []

    # ---------------------------------------------------------------- log
    def log(self, line):
        if not self.logfile:
            return
        with self.loglock:
            try:
                with open(self.logfile, "a") as f:
                    f.write(line + "\n")
                    f.flush()
            except OSError:
                pass

    # ------------------------------------------------------------ control
    def rule_for(self, qname_text):
        """The action of the --control file for this name, or None."""
        if not self.control:
            return None
        try:
            with open(self.control) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[1] in ("*", qname_text):
                return parts[0]
        return None

    # ------------------------------------------------------------ answers
    def soa_rrset(self, qname):
        zone = qname.parent() if len(qname.labels) > 1 else qname
        ztext = zone.to_text()
        if ztext == ".":
            ztext = ""
        return dns.rrset.from_text(
            zone, NEG_TTL, "IN", "SOA",
            "ns.%s hostmaster.%s 1 3600 600 86400 %d"
            % (ztext or ".", ztext or ".", NEG_TTL))

    def response(self, q, rcode=dns.rcode.NOERROR):
        r = dns.message.Message(id=q.id)
        r.flags = dns.flags.QR | dns.flags.RA | (q.flags & dns.flags.RD)
        r.set_opcode(q.opcode())
        r.question = list(q.question)
        if q.edns >= 0:
            r.use_edns(0, q.ednsflags & dns.flags.DO, OUR_PAYLOAD)
        r.set_rcode(rcode)
        return r

    def add(self, r, qname, rdtype, ttl, texts):
        if not texts:
            return
        rrset = dns.rrset.from_text_list(qname, ttl, dns.rdataclass.IN,
                                         rdtype, texts)
        r.answer.append(rrset)

    def normal(self, q, qname, rdtype, r, ttl=TTL):
        if rdtype == dns.rdatatype.A:
            self.add(r, qname, rdtype, ttl, [address_for(qname)])
        elif rdtype == dns.rdatatype.AAAA:
            self.add(r, qname, rdtype, ttl, [address6_for(qname)])
        else:
            r.authority.append(self.soa_rrset(qname))

    def answer(self, q, proto):
        """Return a list of (delay seconds, bytes) replies to send."""
        if q.flags & dns.flags.QR or len(q.question) != 1:
            return []
        question = q.question[0]
        qname = question.name
        rdtype = question.rdtype
        label = first_label(qname)
        r = self.response(q)
        delay = 0.0

        if label == "timeout":
            return []
        rule = self.rule_for(qname.to_text().lower())
        if rule == "drop":
            return []
        if rule == "servfail":
            return [(0.0, self.response(q, dns.rcode.SERVFAIL).to_wire())]
        if label == "servfail":
            r.set_rcode(dns.rcode.SERVFAIL)
        elif label == "refused":
            r.set_rcode(dns.rcode.REFUSED)
        elif label == "garbage":
            return [(0.0, os.urandom(64))]
        elif label == "malformed":
            return [(0.0, struct.pack("!HHHHHH", q.id, 0x8180, 1, 5, 0, 0)
                     + b"\x3fjunk" + os.urandom(20))]
        elif label == "nx":
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(self.soa_rrset(qname))
        elif label == "private":
            if rdtype == dns.rdatatype.A:
                self.add(r, qname, rdtype, TTL, ["192.168.1.1"])
            else:
                r.authority.append(self.soa_rrset(qname))
        elif label in PRIVATE6:
            if rdtype == dns.rdatatype.AAAA:
                self.add(r, qname, rdtype, TTL, [PRIVATE6[label]])
            else:
                r.authority.append(self.soa_rrset(qname))
        elif label in ("privatehint", "publichint"):
            if rdtype == dns.rdatatype.HTTPS:
                hint = "10.1.2.3" if label == "privatehint" else "192.0.2.7"
                self.add(r, qname, rdtype, TTL,
                         ['1 . alpn="h2" ipv4hint="%s"' % hint])
            else:
                r.authority.append(self.soa_rrset(qname))
        elif label in ("big", "mid", "half"):
            texts = big_rdatas(label, rdtype)
            if texts:
                self.add(r, qname, rdtype, TTL, texts)
            else:
                r.authority.append(self.soa_rrset(qname))
        elif label == "cname":
            # A CNAME to target.example.net, then the target's record:
            # for deep CNAME blocking.
            target = dns.name.from_text("target.example.net.")
            self.add(r, qname, dns.rdatatype.CNAME, TTL, [target.to_text()])
            self.normal(q, target, rdtype, r)
        elif label == "cnamenodata":
            target = dns.name.from_text("target.example.net.")
            self.add(r, qname, dns.rdatatype.CNAME, 3600, [target.to_text()])
            r.authority.append(dns.rrset.from_text(
                "example.net.", 3600, "IN", "SOA",
                "ns.example.net. hostmaster.example.net. 1 3600 600 86400 2"))
        elif label == "hugettl":
            if rdtype == dns.rdatatype.A:
                self.add(r, qname, rdtype, 2 ** 31, [address_for(qname)])
            else:
                r.authority.append(self.soa_rrset(qname))
        elif label == "nsid":
            self.normal(q, qname, rdtype, r)
            nsid = dns.edns.GenericOption(dns.edns.OptionType.NSID,
                                          b"upstream-1")
            r.use_edns(0, q.ednsflags & dns.flags.DO if q.edns >= 0 else 0,
                       OUR_PAYLOAD, options=[nsid])
        elif label == "selfptr":
            # header, the question as sent, then an owner pointing at
            # its own offset
            qwire = question.name.to_wire() + struct.pack(
                "!HH", rdtype, question.rdclass)
            at = 12 + len(qwire)
            return [(0.0, struct.pack("!HHHHHH", q.id, 0x8180, 1, 1, 0, 0)
                     + qwire + struct.pack("!HHHIH", 0xC000 | at, 1, 1, 300, 4)
                     + bytes([192, 0, 2, 1]))]
        elif label == "id":
            self.add(r, qname, dns.rdatatype.TXT, 0, ['"%d"' % q.id])
        elif label == "edns":
            if q.edns >= 0:
                text = "opt=1 size=%d do=%d opts=%s" % (
                    q.payload, 1 if q.ednsflags & dns.flags.DO else 0,
                    ",".join(str(int(o.otype)) for o in q.options))
            else:
                text = "opt=0 size=0 do=0 opts="
            self.add(r, qname, dns.rdatatype.TXT, 0, ['"%s"' % text])
        elif label == "cookie":
            self.normal(q, qname, rdtype, r)
            client = b"\x01\x02\x03\x04\x05\x06\x07\x08"
            for o in q.options:
                if int(o.otype) == 10:
                    data = o.to_wire() if hasattr(o, "to_wire") else b""
                    if data and len(data) >= 8:
                        client = data[:8]
            cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE,
                                            client + b"S" * 16)
            flags = q.ednsflags & dns.flags.DO if q.edns >= 0 else 0
            r.use_edns(0, flags, OUR_PAYLOAD, options=[cookie])
        elif TTL_LABEL.match(label):
            self.normal(q, qname, rdtype, r,
                        int(TTL_LABEL.match(label).group(1)))
        else:
            if label == "slow":
                delay = SLOW_SECONDS
            elif DELAY_LABEL.match(label):
                delay = int(DELAY_LABEL.match(label).group(1)) / 1000.0
                self.max_delay = max(self.max_delay, delay)
            self.normal(q, qname, rdtype, r)

        if label == "badq":
            r.question = [dns.rrset.RRset(dns.name.from_text("other.invalid."),
                                          question.rdclass, rdtype)]
        if label == "badop":
            r.set_opcode(dns.opcode.NOTIFY)
        if label == "upcase":
            upper = dns.name.from_text(qname.to_text().upper())
            r.question = [dns.rrset.RRset(upper, question.rdclass, rdtype)]
            for rrset in r.answer:
                rrset.name = upper
        if label == "noqr":
            r.flags &= ~dns.flags.QR
        if label == "wrongid":
            r.id = (q.id + 1) & 0xFFFF

        wire = r.to_wire(max_size=65535)
        if proto == "udp":
            limit = max(512, q.payload) if q.edns >= 0 else 512
            if len(wire) > limit:
                r.answer = []
                r.authority = []
                r.additional = []
                r.flags |= dns.flags.TC
                wire = r.to_wire(max_size=65535)
        if label == "short":
            wire = wire[:5]
        if label == "manycount":
            wire = wire[:6] + b"\xff\xff" + wire[8:]
        if label == "optowner" and q.edns >= 0 and r.edns >= 0:
            # the OPT is the last record: 11 octets and its options
            olen = 11 + len(b"".join(o.to_wire() if hasattr(o, "to_wire")
                                     else b"" for o in r.options))
            at = len(wire) - olen
            wire = wire[:at] + b"\x01x\x00" + wire[at + 1:]
        return [(delay, wire)]

    def signed_answer(self, q, t, proto):
        """The reply to a signed query (see the top of the file)."""
        if q.flags & dns.flags.QR:
            return []
        if first_label(q.question[0].name) == "signed":
            replies = self.answer(q, proto)
            if not replies:
                return []
            delay, wire = replies[0]
            (ar,) = struct.unpack("!H", wire[10:12])
            wire = (wire[:10] + struct.pack("!H", ar + 1) + wire[12:]
                    + tsig_record(t, t["orig_id"], 0, b"M" * 32))
            return [(delay, wire)]
        flags = 0x8000 | (q.opcode() << 11) | (q.flags & dns.flags.RD) | 9
        return [(0.0, struct.pack("!HHHHHH", q.id, flags, 0, 0, 0, 1)
                 + tsig_record(t, t["orig_id"], 17))]

    def handle(self, data, proto):
        t = find_tsig(data)
        try:
            if t:
                # the message without its TSIG record, which dnspython
                # would insist on validating
                (ar,) = struct.unpack("!H", data[10:12])
                data = (data[:10] + struct.pack("!H", ar - 1)
                        + data[12:t["start"]])
            q = dns.message.from_wire(data)
        except Exception:
            self.log("%s - unparseable len=%d" % (proto, len(data)))
            return []
        try:
            if q.question:
                qn = q.question[0].name.to_text().lower()
                qt = dns.rdatatype.to_text(q.question[0].rdtype)
            else:
                qn, qt = "-", "-"
            if q.edns >= 0:
                opt = "opt=1 size=%d do=%d opts=%s" % (
                    q.payload, 1 if q.ednsflags & dns.flags.DO else 0,
                    ",".join(str(int(o.otype)) for o in q.options))
            else:
                opt = "opt=0 size=0 do=0 opts="
            if t:
                opt += " tsig=%s:%08x" % (t["key"].to_text().lower(),
                                          zlib.crc32(t["wire"]))
            self.log("%s %d %s %s %s" % (proto, q.id, qn, qt, opt))
            if t and q.question:
                return self.signed_answer(q, t, proto)
            return self.answer(q, proto)
        except Exception as e:  # never die on a query
            self.log("%s - error %r" % (proto, e))
            return []

    # ------------------------------------------------------------- sockets
    def family(self, addr):
        return socket.AF_INET6 if ":" in addr else socket.AF_INET

    def bind(self):
        for addr in self.addrs:
            fam = self.family(addr)
            u = socket.socket(fam, socket.SOCK_DGRAM)
            t = socket.socket(fam, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            u.bind((addr, self.port))
            t.bind((addr, self.port))
            t.listen(64)
            self.socks.append((u, t))

    def start(self):
        for u, t in self.socks:
            threading.Thread(target=self.udp_loop, args=(u,),
                             daemon=True).start()
            threading.Thread(target=self.tcp_loop, args=(t,),
                             daemon=True).start()

    def udp_loop(self, sock):
        while True:
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                time.sleep(0.01)
                continue
            for delay, wire in self.handle(data, "udp"):
                if delay > 0:
                    threading.Timer(delay, self.udp_send,
                                    (sock, wire, peer)).start()
                else:
                    self.udp_send(sock, wire, peer)

    def udp_send(self, sock, wire, peer):
        try:
            sock.sendto(wire, peer)
        except OSError:
            pass

    def tcp_loop(self, lsock):
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                time.sleep(0.01)
                continue
            threading.Thread(target=self.tcp_conn, args=(conn,),
                             daemon=True).start()

    def tcp_conn(self, conn):
        lock = threading.Lock()
        conn.settimeout(30)

        def recv_exact(n):
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    return None
                buf += chunk
            return buf

        def send(wire):
            with lock:
                try:
                    conn.sendall(struct.pack("!H", len(wire)) + wire)
                except OSError:
                    pass

        try:
            while True:
                head = recv_exact(2)
                if head is None:
                    break
                (n,) = struct.unpack("!H", head)
                data = recv_exact(n)
                if data is None:
                    break
                for delay, wire in self.handle(data, "tcp"):
                    if delay > 0:
                        threading.Timer(delay, send, (wire,)).start()
                    else:
                        send(wire)
        except (OSError, ValueError):
            pass
        finally:
            # let delayed answers go out before closing
            time.sleep(0.0)
            threading.Timer(self.max_delay + 0.5, conn.close).start()


def main():
    ap = argparse.ArgumentParser(description="scriptable test upstream DNS server")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--addr", action="append", default=[],
                    help="address to listen on (repeatable; default 127.0.0.1)")
    ap.add_argument("--log", help="append one line per query to this file")
    ap.add_argument("--control", help="drop/servfail rules, read per query")
    args = ap.parse_args()
    addrs = args.addr or ["127.0.0.1"]

    def bye(signum, frame):
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)

    up = Upstream(addrs, args.port, args.log, args.control)
    try:
        up.bind()
    except OSError as e:
        print("upstream: cannot bind port %d: %s" % (args.port, e),
              file=sys.stderr)
        sys.exit(1)
    up.start()
    print("ready %d" % args.port, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
