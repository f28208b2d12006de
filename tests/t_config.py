#!/usr/bin/python3
"""t_config.py - command line, configuration checking, start-up and
shutdown (TAP).

Config errors must print "FILE:LINE: message" on stderr and exit 1, both
with -t and when starting for real; -t on a good config prints
"FILE: configuration OK" and exits 0.  The default upstreams taken from
/etc/resolv.conf are not tested here.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sdtest  # noqa: E402
from sdtest import (V4, V6, ask, check, check_reply, eq, make_query,  # noqa: E402
                    rrs, run, udp_raw)

tap = sdtest.TAP()

ZONE_OK = r'''origin = "lan.test";
ttl = 300;
authoritative = true;
records = (
  { name = "@";    type = "SOA";   data = "ns hostmaster 1 3600 600 86400 300"; },
  { name = "box";  type = "A";     data = "10.1.1.1"; },
  { name = "box";  type = "AAAA";  data = "fd00::1"; },
  { name = "www";  type = "CNAME"; data = "box"; },
  { name = "@";    type = "MX";    data = "10 box"; },
  { name = "@";    type = "TXT";   data = "hello"; ttl = 60; },
  { name = "_x._tcp"; type = "SRV"; data = "0 0 80 box"; },
  { name = "@";    type = "NS";    data = "ns"; },
  { name = "@";    type = "CAA";   data = "0 issue \"ca.example\""; },
  { name = "*.k8s"; type = "A";    data = "10.1.1.2"; }
);
'''

GOOD = '''listen = ["127.0.0.1:{p}", "[::1]:{p}"];
upstream: {{
  servers = ["127.0.0.1:{u}", "[::1]:{u}"];
  timeout_ms = 300;
  tries = 2;
}};
zones = ["lan.zone"];
edns_size = 1232;
tcp: {{
  max_connections = 16;
  idle_timeout_ms = 1000;
}};
'''


def folder(conf, zones=None):
    """A temp folder holding splitdns.conf and the zone files."""
    d = sdtest.tmpdir()
    path = sdtest.write(d, "splitdns.conf", conf)
    for name, text in (zones or {}).items():
        sdtest.write(d, name, text)
    return d, path


def good_conf(port=None, upstream_port=None):
    return GOOD.format(p=port or sdtest.free_port(),
                       u=upstream_port or sdtest.free_port())


# ------------------------------------------------------------ -t good

def t_check_ok():
    d, conf = folder(good_conf(), {"lan.zone": ZONE_OK})
    p = run(["-t", "-c", conf])
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    eq(p.stdout, "%s: configuration OK\n" % conf, "stdout")


def t_check_minimal():
    d, conf = folder('listen = ["127.0.0.1:5399"];\n'
                     'upstream: { servers = ["192.0.2.53"]; };\n')
    p = run(["-t", "-c", conf])
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    check("configuration OK" in p.stdout, "stdout: %r" % p.stdout)


def t_check_example():
    path = os.path.join(sdtest.SRCDIR, "..", "etc", "splitdns.conf")
    p = run(["-t", "-c", path])
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    check("configuration OK" in p.stdout, "stdout: %r" % p.stdout)


def t_check_no_bind():
    """-t only checks: it works while the configured port is taken."""
    port = sdtest.free_port()
    hold = hold_port(port)
    try:
        d, conf = folder(good_conf(port), {"lan.zone": ZONE_OK})
        p = run(["-t", "-c", conf])
        eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    finally:
        for s in hold:
            s.close()


# ---------------------------------------------------------- -t errors

L = 'listen = ["127.0.0.1:%d"];\n' % sdtest.free_port()
U = 'upstream: { servers = ["192.0.2.53"]; };\n'

# (title, main file, zone files, file with the error, line, text in message)
ERRORS = [
    ("syntax error", L + U + 'zones = [ "a.zone" ;\n', {}, "splitdns.conf", 3, None),
    ("syntax error: '= ='", L + 'upstream: {\n  timeout_ms = = 500;\n};\n',
     {}, "splitdns.conf", 3, None),
    ("unknown setting", L + U + "frobnicate = 1;\n", {}, "splitdns.conf", 3, "frobnicate"),
    ("unknown setting in the upstream group",
     L + 'upstream: {\n  servers = ["192.0.2.53"];\n  retries = 3;\n};\n',
     {}, "splitdns.conf", 4, "retries"),
    ("unknown setting in the tcp group", L + U + 'tcp: {\n  max_conn = 3;\n};\n',
     {}, "splitdns.conf", 4, "max_conn"),
    ("bad listen address", U + '\nlisten = ["127.0.0.1:53", "300.1.1.1:53"];\n',
     {}, "splitdns.conf", 3, "300.1.1.1"),
    ("listen address that is a name", U + 'listen = ["localhost:53"];\n',
     {}, "splitdns.conf", 2, "localhost"),
    ("bad upstream address", L + 'upstream: {\n  servers = ["192.0.2"];\n};\n',
     {}, "splitdns.conf", 3, "192.0.2"),
    ("IPv6 upstream without brackets and port garbage",
     L + 'upstream: {\n  servers = ["[2001:db8::1]:x"];\n};\n', {}, "splitdns.conf", 3, None),
    ("listen port 99999", U + 'listen = ["127.0.0.1:99999"];\n', {}, "splitdns.conf", 2, "99999"),
    ("listen port 0", U + 'listen = ["[::1]:0"];\n', {}, "splitdns.conf", 2, None),
    ("upstream port 70000", L + 'upstream: { servers = ["192.0.2.1:70000"]; };\n',
     {}, "splitdns.conf", 2, "70000"),
    ("timeout_ms 99 (below 100)", L + 'upstream: {\n  servers = ["192.0.2.53"];\n  timeout_ms = 99;\n};\n',
     {}, "splitdns.conf", 4, None),
    ("timeout_ms 30001 (above 30000)", L + 'upstream: {\n  servers = ["192.0.2.53"];\n\n  timeout_ms = 30001;\n};\n',
     {}, "splitdns.conf", 5, None),
    ("timeout_ms as a string", L + 'upstream: {\n  servers = ["192.0.2.53"];\n  timeout_ms = "fast";\n};\n',
     {}, "splitdns.conf", 4, None),
    ("tries 0", L + 'upstream: {\n  servers = ["192.0.2.53"];\n  tries = 0;\n};\n',
     {}, "splitdns.conf", 4, None),
    ("tries 11", L + 'upstream: {\n  servers = ["192.0.2.53"];\n  tries = 11;\n};\n',
     {}, "splitdns.conf", 4, None),
    ("edns_size 511", L + U + "edns_size = 511;\n", {}, "splitdns.conf", 3, None),
    ("edns_size 4097", L + U + "\nedns_size = 4097;\n", {}, "splitdns.conf", 4, None),
    ("max_connections 0", L + U + "tcp: {\n  max_connections = 0;\n};\n", {}, "splitdns.conf", 4, None),
    ("max_connections 65536", L + U + "tcp: {\n  max_connections = 65536;\n};\n",
     {}, "splitdns.conf", 4, None),
    ("idle_timeout_ms 999", L + U + "tcp: {\n  idle_timeout_ms = 999;\n};\n", {}, "splitdns.conf", 4, None),
    ("idle_timeout_ms 600001", L + U + "tcp: {\n  idle_timeout_ms = 600001;\n};\n",
     {}, "splitdns.conf", 4, None),
    # zone files
    ("A 300.1.1.1 in a zone file", L + U + 'zones = ["bad.zone"];\n',
     {"bad.zone": 'origin = "lan.test";\nrecords = (\n'
                  '  { name = "ok"; type = "A"; data = "10.0.0.1"; },\n'
                  '  { name = "a"; type = "A"; data = "300.1.1.1"; }\n);\n'},
     "bad.zone", 4, "300.1.1.1"),
    ("bad AAAA in a zone file", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n\n'
                '  { name = "a"; type = "AAAA"; data = "fd00::g"; }\n);\n'},
     "z.zone", 4, None),
    ("unknown record type", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n'
                '  { name = "a"; type = "BOGUS"; data = "x"; }\n);\n'},
     "z.zone", 3, "BOGUS"),
    ("MX without a preference", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n'
                '  { name = "@"; type = "MX"; data = "mail"; }\n);\n'},
     "z.zone", 3, None),
    ("SRV with too few fields", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n'
                '  { name = "_s._tcp"; type = "SRV"; data = "0 5 box"; }\n);\n'},
     "z.zone", 3, None),
    ("unknown setting in a zone file", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nttl = 300;\nautoritative = true;\nrecords = ();\n'},
     "z.zone", 3, "autoritative"),
    ("syntax error in a zone file", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n  { name = "a"; type = = "A"; data = "10.0.0.1"; }\n);\n'},
     "z.zone", 3, None),
    # A '%' in record data crashed the loader (it became a printf format).
    ("'%s%s%s%s' in A data", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n'
                '  { name = "ok"; type = "A"; data = "10.0.0.1"; },\n'
                '  { name = "a"; type = "A"; data = "1.2.3.4 %s%s%s%s"; }\n);\n'},
     "z.zone", 4, '"1.2.3.4 %s%s%s%s"'),
    ("'%n' in a CNAME target", L + U + 'zones = ["z.zone"];\n',
     {"z.zone": 'origin = "lan.test";\nrecords = (\n'
                '  { name = "w"; type = "CNAME"; data = "%n%n%n..x"; }\n);\n'},
     "z.zone", 3, "'%n%n%n..x'"),
    ("second zone file with an error", L + U + 'zones = ["a.zone", "b.zone"];\n',
     {"a.zone": 'origin = "a.test";\nrecords = ();\n',
      "b.zone": 'origin = "b.test";\n\n\nttl = -5;\nrecords = ();\n'},
     "b.zone", 4, None),
]


def error_case(conf, zones, fname, line, text):
    def fn():
        d, path = folder(conf, zones)
        pat = re.compile(r"(^|/)%s:%d: " % (re.escape(fname), line), re.M)
        problems = []
        for args in (["-t", "-c", path], ["-c", path]):
            try:
                p = run(args, timeout=5)
            except subprocess.TimeoutExpired:
                problems.append("%s: still running after 5s" % " ".join(args[:-1] + ["FILE"]))
                continue
            how = "with -t" if "-t" in args else "at start-up"
            if p.returncode != 1:
                problems.append("%s: exit status %d, want 1" % (how, p.returncode))
            if not pat.search(p.stderr):
                problems.append("%s: stderr lacks '%s:%d: ': %r"
                                % (how, fname, line, p.stderr[-500:]))
            if text and text not in p.stderr:
                problems.append("%s: message does not name %r: %r"
                                % (how, text, p.stderr[-500:]))
            if "configuration OK" in p.stdout:
                problems.append("%s: says configuration OK" % how)
        check(not problems, "\n".join(problems))
    return fn


def t_missing_zone_file():
    d, path = folder(L + U + 'zones = ["lan.zone", "nothere.zone"];\n',
                     {"lan.zone": ZONE_OK})
    for args in (["-t", "-c", path], ["-c", path]):
        p = run(args, timeout=10)
        eq(p.returncode, 1, "exit status %s" % args[0])
        check("nothere.zone" in p.stderr, "message does not name the file: %r"
              % p.stderr)


def t_missing_config():
    path = os.path.join(sdtest.tmpdir(), "absent.conf")
    for args in (["-t", "-c", path], ["-c", path]):
        p = run(args, timeout=10)
        eq(p.returncode, 1, "exit status %s" % args[0])
        check(path in p.stderr, "message does not name the file: %r" % p.stderr)


def t_forwarding_loop():
    conf = ('listen = ["127.0.0.1:5399", "[::1]:5399"];\n'
            'upstream: {\n'
            '  servers = ["192.0.2.53", "[::1]:5399"];\n'
            '};\n')
    d, path = folder(conf)
    for args in (["-t", "-c", path], ["-c", path]):
        p = run(args, timeout=10)
        eq(p.returncode, 1, "exit status %s" % args[0])
        check("loop" in p.stderr, "message does not say 'forwarding loop': %r"
              % p.stderr)
        check(re.search(r"(^|/)splitdns\.conf:\d+: ", p.stderr, re.M),
              "no FILE:LINE: in %r" % p.stderr)


def t_forwarding_loop_default_port():
    conf = ('listen = ["127.0.0.1"];\n'
            'upstream: { servers = ["127.0.0.1:53"]; };\n')
    d, path = folder(conf)
    p = run(["-t", "-c", path])
    eq(p.returncode, 1, "exit status")
    check("loop" in p.stderr, "message: %r" % p.stderr)


# ----------------------------------------------------------- options

def t_version():
    for opt in ("--version", "-V"):
        p = run([opt])
        eq(p.returncode, 0, "exit status of %s" % opt)
        check(re.fullmatch(r"splitdns \d+\.\d+(\.\d+)?\S*\n", p.stdout),
              "%s printed %r" % (opt, p.stdout))


def t_help():
    for opt in ("--help", "-h"):
        p = run([opt])
        eq(p.returncode, 0, "exit status of %s" % opt)
        check("usage" in p.stdout.lower(), "%s printed %r" % (opt, p.stdout))
        for o in ("-c", "-t", "-d", "-p", "-l", "-v"):
            check(o in p.stdout, "%s does not mention %s" % (opt, o))


def t_bad_option():
    p = run(["--no-such-option"])
    check(p.returncode != 0, "exit status 0 for an unknown option")
    check(p.stderr.strip(), "nothing on stderr")


# ------------------------------------------------------------ running

def hold_port(port, udp=True, tcp=True, addr=V4):
    socks = []
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    if udp:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((addr, port))
        socks.append(s)
    if tcp:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((addr, port))
        s.listen(1)
        socks.append(s)
    return socks


def start_fails(conf_text, zones=None):
    d, path = folder(conf_text, zones)
    t0 = time.monotonic()
    try:
        p = run(["-c", path], timeout=8)
    except subprocess.TimeoutExpired:
        raise AssertionError("still running 8s after a failed bind")
    return p, time.monotonic() - t0


def t_bind_failure():
    port = sdtest.free_port()
    for udp, tcp in ((True, True), (True, False), (False, True)):
        hold = hold_port(port, udp, tcp)
        try:
            p, took = start_fails(good_conf(port), {"lan.zone": ZONE_OK})
        finally:
            for s in hold:
                s.close()
        what = "UDP" if not tcp else "TCP" if not udp else "UDP+TCP"
        eq(p.returncode, 1, "exit status with %s port taken (stderr %r)"
           % (what, p.stderr))
        check(str(port) in p.stderr,
              "message does not name the address (%s taken): %r" % (what, p.stderr))
        check(sdtest.READY not in p.stderr, "said ready despite the bind failure")


def t_bind_failure_v6():
    port = sdtest.free_port()
    hold = hold_port(port, True, True, V6)
    try:
        p, took = start_fails(good_conf(port), {"lan.zone": ZONE_OK})
    finally:
        for s in hold:
            s.close()
    eq(p.returncode, 1, "exit status (stderr %r)" % p.stderr)
    check(str(port) in p.stderr, "message: %r" % p.stderr)


def t_ready_line():
    up = sdtest.Upstream()
    try:
        port = sdtest.free_port()
        d = sdtest.Daemon(conf=good_conf(port, up.port), port=port,
                          zones={"lan.zone": ZONE_OK})
        version = run(["--version"]).stdout.split()[-1]
        err = d.stderr()
        check(re.search(r"splitdns %s ready: listening on .*127\.0\.0\.1.*%d"
                        % (re.escape(version), port), err),
              "ready line: %r" % err)
        for addr, proto in sdtest.TRANSPORTS:
            q = make_query("box.lan.test", "A")
            r = ask(q, port, addr, proto)
            check_reply(r, q, aa=True)
            eq(rrs(r.answer), ["box.lan.test. 300 A 10.1.1.1"], "answer")
        d.stop()
    finally:
        up.stop()


def signal_exit(sig):
    def fn():
        port = sdtest.free_port()
        d = sdtest.Daemon(conf=good_conf(port), port=port,
                          zones={"lan.zone": ZONE_OK})
        q = make_query("www.lan.test", "A")
        check_reply(ask(q, port, V6, "tcp"), q, aa=True)
        # a TCP client still connected and an upstream query in flight
        s = sdtest.tcp_connect(port, V4)
        try:
            s.sendall(sdtest.frame(make_query(sdtest.uniq("host"), "A").to_wire()))
            time.sleep(0.05)
            d.stop(sig)
        finally:
            s.close()
    return fn


def t_listen_option():
    conf_port = sdtest.free_port()
    port = sdtest.free_port()
    d = sdtest.Daemon(conf=good_conf(conf_port), port=port,
                      zones={"lan.zone": ZONE_OK},
                      args=["-l", "127.0.0.1:%d" % port, "-l", "[::1]:%d" % port])
    try:
        for addr, proto in sdtest.TRANSPORTS:
            q = make_query("box.lan.test", "A")
            check_reply(ask(q, port, addr, proto), q, aa=True)
        q = make_query("box.lan.test", "A")
        eq(udp_raw(q.to_wire(), conf_port, V4, timeout=0.3), None,
           "reply on the config's listen port")
        try:
            sdtest.tcp_connect(conf_port, V4, timeout=1).close()
            raise AssertionError("TCP connect to the config's port succeeded")
        except ConnectionRefusedError:
            pass
    finally:
        d.stop()


def t_verbose():
    port = sdtest.free_port()
    d = sdtest.Daemon(conf=good_conf(port), port=port,
                      zones={"lan.zone": ZONE_OK}, args=["-v"])
    try:
        before = len(d.stderr())
        q = make_query("box.lan.test", "AAAA")
        check_reply(ask(q, port), q, aa=True)
        end = time.monotonic() + 2
        while time.monotonic() < end and "box.lan.test" not in d.stderr()[before:]:
            time.sleep(0.05)
        check("box.lan.test" in d.stderr()[before:],
              "-v did not log the query: %r" % d.stderr()[before:][-500:])
    finally:
        d.stop()


def t_daemonize():
    port = sdtest.free_port()
    dirname, conf = folder(good_conf(port), {"lan.zone": ZONE_OK})
    pidfile = os.path.join(dirname, "splitdns.pid")
    sdtest.watch_pidfile(pidfile)
    out = open(os.path.join(dirname, "out"), "w")
    t0 = time.monotonic()
    p = subprocess.run([sdtest.SPLITDNS, "-c", conf, "-d", "-p", pidfile],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                       timeout=10)
    eq(p.returncode, 0, "exit status of the foreground part")
    pid = None
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            with open(pidfile) as f:
                text = f.read()
            if text.endswith("\n"):
                pid = int(text.strip())
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    check(pid is not None, "no pid file %s within 5s" % pidfile)
    try:
        check(sdtest._is_splitdns(pid), "pid %d is not a running splitdns" % pid)
        # detached: not in our session, no controlling terminal needed
        check(os.getsid(pid) != os.getsid(0), "daemon still in our session")
        r = None
        end = time.monotonic() + 5
        q = make_query("box.lan.test", "A")
        while time.monotonic() < end and r is None:
            w = udp_raw(q.to_wire(), port, V4, timeout=0.2)
            if w:
                r = sdtest.parse(w)
        check(r is not None, "the detached daemon does not answer")
        check_reply(r, q, aa=True)
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except (OSError, TypeError):
            pass
    end = time.monotonic() + 5
    while time.monotonic() < end and sdtest._is_splitdns(pid):
        time.sleep(0.05)
    check(not sdtest._is_splitdns(pid), "detached daemon alive 5s after SIGTERM")


def t_pidfile_symlink():
    """Issue 8 item 12: the pid file is opened as root; a symlink planted
    at its path must not make the daemon write through it."""
    port = sdtest.free_port()
    dirname, conf = folder(good_conf(port), {"lan.zone": ZONE_OK})
    victim = sdtest.write(dirname, "victim", "keep me\n")
    pidfile = os.path.join(dirname, "splitdns.pid")
    os.symlink(victim, pidfile)
    out = open(os.path.join(dirname, "out"), "w")
    p = subprocess.run([sdtest.SPLITDNS, "-c", conf, "-d", "-p", pidfile],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                       timeout=10)
    eq(p.returncode, 0, "exit status of the foreground part")
    time.sleep(1.0)
    with open(victim) as f:
        eq(f.read(), "keep me\n", "the symlink's target was written")
    q = make_query("box.lan.test", "A")
    w = udp_raw(q.to_wire(), port, V4, timeout=0.5)
    check(w is None, "a daemon that could not write its pid file serves")


def t_many_listen():
    """Issue 8 item 10: a start-up line longer than its buffer is cut at
    the last whole address instead of writing past it (60 addresses of
    21 characters)."""
    port = sdtest.free_port()
    addrs = ['"127.200.%d.%d:%d"' % (i // 200, 10 + i % 200, port)
             for i in range(60)]
    text = good_conf(port).replace(
        'listen = ["127.0.0.1:%d", "[::1]:%d"];' % (port, port),
        "listen = [%s];" % ", ".join(addrs))
    d = sdtest.Daemon(conf=text, zones={"lan.zone": ZONE_OK})
    try:
        ready = [l for l in d.stderr().splitlines() if " ready: " in l]
        check(ready and ", ..." in ready[0], "ready line not cut: %r" % ready)
        check(ready and "127.200.0.10:%d" % port in ready[0],
              "first address missing: %r" % ready)
        q = make_query("box.lan.test", "A")
        w = udp_raw(q.to_wire(), port, "127.200.0.69", timeout=2)
        check(w is not None, "the 60th address does not answer")
    finally:
        d.stop()


tap.run("-t on a good config: 'FILE: configuration OK', exit 0", t_check_ok)
tap.run("-t on a minimal config", t_check_minimal)
if os.path.exists(os.path.join(sdtest.SRCDIR, "..", "etc", "splitdns.conf")):
    tap.run("-t on the example etc/splitdns.conf", t_check_example)
else:
    tap.skip("-t on the example etc/splitdns.conf", "not found")
tap.run("-t does not bind: works while the port is taken", t_check_no_bind)
for title, conf, zones, fname, line, text in ERRORS:
    tap.run("%s: %s:%d:, exit 1 (-t and start-up)" % (title, fname, line),
            error_case(conf, zones, fname, line, text))
tap.run("missing zone file: exit 1, names the file", t_missing_zone_file)
tap.run("missing config file: exit 1, names the file", t_missing_config)
tap.run("forwarding loop (upstream = listen): file:line, exit 1", t_forwarding_loop)
tap.run("forwarding loop with the default port 53", t_forwarding_loop_default_port)
tap.run("--version / -V: 'splitdns VERSION', exit 0", t_version)
tap.run("--help / -h: usage on stdout, exit 0", t_help)
tap.run("unknown option: non-zero exit, message", t_bad_option)
tap.run("bind failure (port in use, UDP or TCP): exit 1 with a message", t_bind_failure)
tap.run("bind failure on [::1]: exit 1", t_bind_failure_v6)
tap.run("ready line on stderr; answers on v4 and v6, UDP and TCP", t_ready_line)
tap.run("SIGTERM with a client connected: exit 0, clean", signal_exit(signal.SIGTERM))
tap.run("SIGINT: exit 0, clean", signal_exit(signal.SIGINT))
tap.run("-l overrides the config's listen addresses", t_listen_option)
tap.run("-v logs queries", t_verbose)
tap.run("-d -p PIDFILE: detaches, writes the pid, answers, ends on SIGTERM", t_daemonize)
tap.run("-d -p PIDFILE where a symlink was planted: nothing written through it", t_pidfile_symlink)
tap.run("60 listen addresses: the ready line is cut at a whole address, all served", t_many_listen)
tap.done()
