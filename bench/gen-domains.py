#!/usr/bin/env python3
"""Generate a deterministic list of realistic-looking blocked domains.

    gen-domains.py --count 1000000 --format hosts --seed 1 > hosts.txt
    gen-domains.py --count 1000000 --seed 1 --queries 100000 > queries.txt

The list has exactly --count distinct names of 2-4 labels such as
"ads-7k3f9.tracker-cdn.com" or "px4q1z.metrics.example.co.uk", in one of
three formats: hosts ("0.0.0.0 name"), plain ("name") or adblock
("||name^").  With --queries N the output is instead a dnsperf query file
("name A" lines) of N names drawn from that same list (so every query is
for a blocked name), optionally with a share of subdomains of listed names
(--sub) and of names that are not listed (--miss).  With --regex N it is
instead N adblock regular expression lines ("/^ad7[a-z]*\.tracker[0-9]*\./")
in the style of hand-written rules, for names other than the query files'
(so each query that the list leaves open runs all of them).

The same arguments always give the same bytes (Python's random.Random is
stable across versions for random(), randrange() and choice()).  Standard
library only.

Uniqueness is by construction, not by a set: the first label is a word of
letters, an optional '-', and a token that starts with a digit and encodes
a bijective scramble of the name's index.  The token can be read back from
any name, so two indexes never give the same name.  Names for --miss use
words from a disjoint vocabulary and so are never in the list.
"""

import argparse
import random
import sys

PREFIXES = [
    "ads", "ad", "adserv", "banner", "track", "trk", "pixel", "px", "stats",
    "metric", "beacon", "click", "imp", "log", "tag", "sync", "rtb", "bid",
    "pop", "promo", "cdn", "static", "img", "media", "srv", "api", "go",
    "events", "collect", "telemetry", "analytics", "counter", "hit",
]
MIDDLES = [
    "tracker", "adnet", "adsrv", "metrics", "analytics", "clickstream",
    "adtech", "doubleclk", "pixelhub", "statcounter", "bannerflow", "popads",
    "adform", "trafficjunky", "revcontent", "taboo", "outbrain", "mgid",
    "criteo", "smartad", "openx", "pubmatic", "rubicon", "appnexus",
    "adcolony", "inmobi", "vungle", "unityads", "chartboost", "mopub",
    "telemetry", "insights", "measure", "audience", "segment", "mixpanel",
]
SUFFIX_WORDS = ["cdn", "net", "cloud", "media", "data", "edge", "hub", "io",
                "srv", "api", "web", "tech", "ads", "track"]
# (top-level part, weight); two-label parts count as two labels.
TLDS = [("com", 50), ("net", 12), ("org", 5), ("io", 4), ("info", 4),
        ("biz", 3), ("xyz", 4), ("top", 3), ("ru", 3), ("de", 2), ("cn", 2),
        ("co", 2), ("online", 2), ("site", 2), ("co.uk", 1), ("com.br", 1)]
# Only for --miss names: no word here is a word above, so they are absent.
MISS_WORDS = ["www", "mail", "news", "shop", "docs", "wiki", "blog", "home"]

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MASK32 = 0xFFFFFFFF


def base36(x):
    s = ""
    while True:
        x, d = divmod(x, 36)
        s = ALPHABET[d] + s
        if x == 0:
            return s


def scramble(i, seed):
    """A bijection on 32-bit integers (odd multiplies and xorshifts)."""
    x = (i + seed * 0x9E3779B9) & MASK32
    x = (x * 0x85EBCA6B) & MASK32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & MASK32
    x ^= x >> 16
    return x


def token(i, seed):
    x = scramble(i, seed)
    return str(x % 10) + base36(x // 10)  # starts with a digit


class Namer:
    def __init__(self, seed):
        self.seed = seed
        self.rng = random.Random(seed)
        self.tlds = [t for t, _ in TLDS]
        self.cum = []
        total = 0
        for _, w in TLDS:
            total += w
            self.cum.append(total)
        self.total = total

    def tld(self):
        r = self.rng.randrange(self.total)
        for t, c in zip(self.tlds, self.cum):
            if r < c:
                return t
        return self.tlds[-1]

    def name(self, i, words=PREFIXES):
        rng = self.rng
        first = rng.choice(words) + rng.choice(("-", "", "")) + \
            token(i, self.seed)
        tld = self.tld()
        have = 1 + tld.count(".") + 1
        shape = rng.random()
        if have >= 4 or shape < 0.25:
            mids = []  # "ads-7k3f9.com"
        elif shape < 0.80 or have == 3:
            mid = rng.choice(MIDDLES)
            if rng.random() < 0.3:
                mid += "-" + rng.choice(SUFFIX_WORDS)
            mids = [mid]  # "ads-7k3f9.tracker-cdn.com"
        else:
            mids = [rng.choice(SUFFIX_WORDS), rng.choice(MIDDLES)]
        return ".".join([first] + mids + [tld])


def fmt_line(fmt, name):
    if fmt == "hosts":
        return "0.0.0.0 " + name
    if fmt == "adblock":
        return "||" + name + "^"
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000000,
                    help="names in the list (default 1000000)")
    ap.add_argument("--format", choices=("hosts", "plain", "adblock"),
                    default="hosts", help="list format (default hosts)")
    ap.add_argument("--seed", type=int, default=1, help="default 1")
    ap.add_argument("--queries", type=int, metavar="N",
                    help="write N dnsperf query lines instead of the list")
    ap.add_argument("--sub", type=float, default=0.0, metavar="F",
                    help="with --queries: share of queries for a subdomain "
                    "of a listed name (default 0)")
    ap.add_argument("--miss", type=float, default=0.0, metavar="F",
                    help="with --queries: share of queries for names not "
                    "in the list (default 0)")
    ap.add_argument("--type", default="A",
                    help="with --queries: query type (default A)")
    ap.add_argument("--regex", type=int, metavar="N",
                    help="write N /regex/ lines instead of the list")
    ap.add_argument("--output", "-o", help="file to write (default stdout)")
    args = ap.parse_args()
    if not 1 <= args.count <= MASK32:
        ap.error("--count must be between 1 and 2^32-1")

    out = open(args.output, "w") if args.output else sys.stdout
    namer = Namer(args.seed)
    lines = []
    if args.regex is not None:
        pick = random.Random(args.seed * 104729 + 3)
        for i in range(args.regex):
            lines.append("/^%s%d[a-z]*\\.%s[0-9]*\\./" % (
                pick.choice(PREFIXES), i, pick.choice(MIDDLES)))
    elif args.queries is None:
        for i in range(args.count):
            lines.append(fmt_line(args.format, namer.name(i)))
            if len(lines) >= 65536:
                out.write("\n".join(lines) + "\n")
                lines = []
    else:
        names = [namer.name(i) for i in range(args.count)]
        pick = random.Random(args.seed * 7919 + 17)
        for q in range(args.queries):
            r = pick.random()
            if r < args.miss:
                name = namer.name(args.count + q, MISS_WORDS)
            elif r < args.miss + args.sub:
                name = pick.choice(("www", "cdn", "x1")) + "." + \
                    names[pick.randrange(args.count)]
            else:
                name = names[pick.randrange(args.count)]
            lines.append(name + " " + args.type)
            if len(lines) >= 65536:
                out.write("\n".join(lines) + "\n")
                lines = []
    if lines:
        out.write("\n".join(lines) + "\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
