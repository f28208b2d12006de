#!/usr/bin/python3
"""Real clients beyond dnspython: kdig (Knot) over UDP and TCP, and glibc's
own resolver (getent) in a network namespace whose resolv.conf points at
splitdns on 127.0.0.1:53."""
import os
import shutil
import subprocess
import time

from harness import Daemon, Upstream, done, eq, test

HOME = '''origin = "home.lab";
authoritative = true;
records = (
  { name = "nas"; type = "A"; data = "192.168.1.10"; },
  { name = "nas"; type = "AAAA"; data = "fd00::10"; },
  { name = "www"; type = "CNAME"; data = "nas"; }
);
'''
SPLITDNS = os.environ.get("SPLITDNS") or os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", "src", "splitdns")
HERE = os.environ.get("srcdir") or os.path.dirname(os.path.abspath(__file__))

up = Upstream()
d = Daemon('listen = @LISTEN@;\nupstream: { servers = ["127.0.0.1:%d"]; };\n'
           'zones = ["home.zone"];' % up.port, zones={"home.zone": HOME})


def kdig(*args):
    return subprocess.run(["kdig", "@127.0.0.1", "-p", str(d.port)] + list(args),
                          capture_output=True, text=True, timeout=20).stdout


if shutil.which("kdig"):
    @test
    def t_kdig():
        """kdig gets local and forwarded answers over UDP and TCP"""
        for extra in ([], ["+tcp"]):
            out = kdig("nas.home.lab", "A", "+short", *extra)
            eq(out.strip(), "192.168.1.10", "kdig %s" % extra)
            out = kdig("www.home.lab", "AAAA", "+short", *extra)
            eq(out.split(), ["nas.home.lab.", "fd00::10"])
            out = kdig("host.example.net", "A", *extra)
            assert "status: NOERROR" in out and "198.51.100." in out, out
else:
    print("ok 1 - kdig # SKIP kdig is not installed", flush=True)


def netns_possible():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("getent"):
        return False
    r = subprocess.run(["ip", "netns", "add", "sdprobe%d" % os.getpid()],
                       capture_output=True)
    subprocess.run(["ip", "netns", "del", "sdprobe%d" % os.getpid()], capture_output=True)
    return r.returncode == 0


if netns_possible():
    @test
    def t_glibc():
        """glibc's resolver (getent) through splitdns on port 53 in a namespace"""
        ns = "sdtest%d" % os.getpid()
        etc = "/etc/netns/" + ns
        procs = []
        try:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
                           check=True)
            os.makedirs(etc, exist_ok=True)
            with open(etc + "/resolv.conf", "w") as f:
                f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
            exe = ["ip", "netns", "exec", ns]
            u = subprocess.Popen(exe + ["/usr/bin/python3", os.path.join(HERE, "upstream.py"),
                                        "--port", "5353", "--addr", "127.0.0.1"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            procs.append(u)
            assert b"ready" in u.stdout.readline()
            conf = d.write("ns.conf", 'listen = ["127.0.0.1:53", "[::1]:53"];\n'
                           'upstream: { servers = ["127.0.0.1:5353"]; };\n'
                           'zones = ["home.zone"];\n')
            s = subprocess.Popen(exe + [SPLITDNS, "-c", conf], stderr=subprocess.PIPE)
            procs.append(s)
            end = time.time() + 10
            line = b""
            while b"ready" not in line and time.time() < end:
                line = s.stderr.readline()
            assert b"ready" in line, line

            def getent(*args):
                return subprocess.run(exe + ["getent"] + list(args), capture_output=True,
                                      text=True, timeout=20)
            r = getent("hosts", "nas.home.lab")
            eq(r.stdout.split()[:2], ["fd00::10", "nas.home.lab"], "getent hosts (AAAA first)")
            # IPv4 through gethostbyname(3): getaddrinfo's AI_ADDRCONFIG
            # would see no IPv4 address but loopback in the namespace.
            def byname(name):
                return subprocess.run(exe + ["/usr/bin/python3", "-c",
                                             "import socket,sys; print(socket.gethostbyname(sys.argv[1]))",
                                             name], capture_output=True, text=True,
                                      timeout=20).stdout.strip()
            eq(byname("www.home.lab"), "192.168.1.10", "CNAME followed")
            assert byname("host.example.net").startswith("198.51.100."), "forwarded"
            r = getent("hosts", "missing.home.lab")
            eq(r.returncode, 2, "NXDOMAIN: getent exit status")
            s.terminate()
            eq(s.wait(timeout=10), 0, "splitdns exit status")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(etc, ignore_errors=True)
else:
    print("ok 2 - glibc resolver # SKIP needs root and ip netns", flush=True)


@test
def t_stop():
    """clean exit"""
    d.stop()
    up.stop()


done()
