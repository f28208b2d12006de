#!/usr/bin/python3
"""bench/report.py - the tables and ratios of one bench/run.

  report.py results.jsonl

Each line of results.jsonl is one JSON object from measure.py or stall.py
whose "name" is TEST/SERVER (or a note in place of figures).  Prints the
workloads side by side with CPU per query against the reflector's (the
floor), the ratios splitdns / other, splitdns' threads = 1 against
threads = 2, the reload stall, issue 7's goals met or not, and the
observe section: CPU per query with the metrics, the query log or dnstap
on against all three off, and issue 11's goals.  Tables with no rows
(sections that did not run) are left out.
"""
import json
import statistics
import sys

SERVERS = ("splitdns", "dnsmasq", "unbound", "dnsdist", "reflector")
TESTS = (("L1W2", "L1 start + W2 blocked (1M list)"), ("W1", "W1 local names"),
         ("W3", "W3 forwarded, cached"), ("W4", "W4 forwarded, cold (unique names)"))
GOAL_FLOOR = 1.2      # W1-W3: splitdns CPU/query within 1.2x the reflector's
GOAL_COLD_US = 12.0   # W4: cold forwarding CPU per query
GOAL_STALL_MS = 10.0  # slowest answer during a reload
OBSERVE = ("off", "metrics", "qlog", "dnstap")
GOAL_OBSERVE = {"metrics": 1.05, "qlog": 1.5, "dnstap": 1.5}  # x "off", CPU/query


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def mib(kib):
    return None if not kib else kib / 1024


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"


def median(runs, key):
    got = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(got) if got else None


def total(runs, key):
    got = [r[key] for r in runs if r.get(key) is not None]
    return sum(got) if got else None


def observe(runs):
    """runs: {"W1": {"off": [row, ...], ...}, ...}, a row per round."""
    if not runs:
        return
    rounds = max(len(v) for w in runs.values() for v in w.values())
    print("\nsplitdns observers, each alone against all off: CPU us/query (x off)%s" % (
        ", medians of %d rounds" % rounds if rounds > 1 else ""))
    print("%-4s" % "" + "".join("%17s" % k for k in OBSERVE))
    med = {}
    for w in ("W1", "W2", "W3"):
        got = runs.get(w, {})
        if not got:
            continue
        med[w] = {k: median(got.get(k, []), "us_per_query") for k in OBSERVE}
        off = med[w]["off"]
        print("%-4s" % w + "".join("%17s" % (
            "-" if med[w][k] is None else "%.2f" % med[w][k] +
            ("" if k == "off" else " (%sx)" % ratio(med[w][k], off))) for k in OBSERVE))
    print("\nlatency under the same load, ms: p50 / p99 / max (dnsperf; q/s beside)")
    print("%-4s" % "" + "".join("%25s" % k for k in OBSERVE))
    for w in ("W1", "W2", "W3"):
        got = runs.get(w, {})
        if not got:
            continue
        cells = []
        for k in OBSERVE:
            rs = got.get(k, [])
            if not rs:
                cells.append("-")
                continue
            cells.append("%s/%s/%s %sk" % (
                fmt(median(rs, "lat_p50_ms"), "%.2f"), fmt(median(rs, "lat_p99_ms"), "%.2f"),
                fmt(median(rs, "lat_max_ms"), "%.1f"),
                fmt(None if median(rs, "qps") is None else median(rs, "qps") / 1000)))
        print("%-4s" % w + "".join("%25s" % c for c in cells))
    print("(under saturation, as by default, latency follows throughput: OBSERVE_QPS"
          " holds the rate)")
    print("\nobservers' own counts (all rounds): metrics scrapes ok/failed; query log"
          " lines written/dropped of the queries answered, bytes a line; dnstap"
          " messages sent/dropped, bytes a query")
    for w in ("W1", "W2", "W3"):
        got = runs.get(w, {})
        if not got:
            continue
        m, q, d = got.get("metrics", []), got.get("qlog", []), got.get("dnstap", [])
        qb, db = total(q, "files_bytes"), total(d, "files_bytes")
        qn, dn = total(q, "qlog_written"), total(d, "server_queries")
        print("%-4s scrapes %s/%s   qlog %s/%s of %s, %s B   dnstap %s/%s of %s, %s B" % (
            w, fmt(total(m, "scrapes_ok"), "%d"), fmt(total(m, "scrapes_failed"), "%d"),
            fmt(qn, "%d"), fmt(total(q, "qlog_dropped"), "%d"),
            fmt(total(q, "server_queries"), "%d"), fmt(qb / qn if qb and qn else None),
            fmt(total(d, "dnstap_sent"), "%d"), fmt(total(d, "dnstap_dropped"), "%d"),
            fmt(dn, "%d"), fmt(db / dn if db and dn else None)))
    print("\nissue 11 goals (CPU/query x off: metrics free, within noise (<= %.2fx);"
          " query log, dnstap <= %.1fx; the lines and messages dropped beside)" % (
              GOAL_OBSERVE["metrics"], GOAL_OBSERVE["qlog"]))
    for w, got in sorted(med.items()):
        for k in OBSERVE[1:]:
            if got.get(k) is None or not got.get("off"):
                continue
            x = got[k] / got["off"]
            drop = {"qlog": "qlog_dropped", "dnstap": "dnstap_dropped"}.get(k)
            lost = total(runs[w].get(k, []), drop) if drop else None
            ok = x <= GOAL_OBSERVE[k]
            print("  %-3s %-8s %.2fx%s: %s" % (w, k, x, "" if lost is None else
                                              ", %d dropped" % lost, "met" if ok else "not met"))


def main():
    rows, notes, obs = {}, [], {}
    for line in open(sys.argv[1]):
        r = json.loads(line)
        test, server = r["name"].split("/", 1)
        if "note" in r:
            notes.append("%s %s: %s" % (test, server, r["note"]))
        rows.setdefault(test, {})[server] = r
        if test.startswith("observe-") and "note" not in r:
            obs.setdefault(test[len("observe-"):], {}).setdefault(server, []).append(r)

    head = "%-9s %9s %9s %9s %8s %9s %8s" % ("server", "first(s)", "RSS(MiB)", "q/s",
                                          "lost", "us/query", "x floor")
    for test, title in TESTS:
        got = rows.get(test, {})
        if not got:
            continue
        floor = got.get("reflector", {}).get("us_per_query")
        print("\n%s\n%s" % (title, head))
        for server in SERVERS:
            r = got.get(server)
            if not r:
                continue
            if r.get("first_answer_s") is None:
                print("%-9s  did not answer" % server)
                continue
            us = r.get("us_per_query")
            print("%-9s %9s %9s %9s %8s %9s %8s" % (
                server, fmt(r.get("first_answer_s"), "%.3f"), fmt(mib(r.get("rss_kib")), "%.1f"),
                fmt(r.get("qps")), fmt(r.get("lost"), "%d"), fmt(us, "%.2f"),
                ratio(us, floor) if server != "reflector" else ""))

    if any(len(rows.get(t, {})) > 1 for t, _ in TESTS):
        print("\nratios splitdns / other (first answer, RSS, CPU/query: lower is better;"
              " q/s: higher is better)")
    for test, _ in TESTS:
        s = rows.get(test, {}).get("splitdns")
        for other in SERVERS[1:4]:
            o = rows.get(test, {}).get(other)
            if not s or not o or o.get("first_answer_s") is None:
                continue
            print("%-5s vs %-8s first %5s  RSS %5s  q/s %5s  CPU/query %5s" % (
                test, other, ratio(s.get("first_answer_s"), o.get("first_answer_s")),
                ratio(s.get("rss_kib"), o.get("rss_kib")), ratio(s.get("qps"), o.get("qps")),
                ratio(s.get("us_per_query"), o.get("us_per_query"))))

    if any(rows.get("threads-" + t) for t, _ in TESTS):
        print("\nsplitdns threads = 1 vs threads = 2, unpinned")
        print("%-5s %9s %9s %4s %9s %9s %4s %9s %9s" % (
            "test", "t1 q/s", "t1 us/q", "thr", "t2 q/s", "t2 us/q", "thr", "q/s t2/t1",
            "CPU t2/t1"))
    for test, _ in TESTS:
        got = rows.get("threads-" + test, {})
        t1, t2 = got.get("t1"), got.get("t2")
        if not t1:
            continue
        t2 = t2 or {}
        print("%-5s %9s %9s %4s %9s %9s %4s %9s %9s" % (
            test, fmt(t1.get("qps")), fmt(t1.get("us_per_query"), "%.2f"),
            fmt(t1.get("threads"), "%d"), fmt(t2.get("qps")),
            fmt(t2.get("us_per_query"), "%.2f"), fmt(t2.get("threads"), "%d"),
            ratio(t2.get("qps"), t1.get("qps")),
            ratio(t2.get("us_per_query"), t1.get("us_per_query"))))

    if rows.get("rules-W2") or rows.get("rules-W3"):
        print("\nsplitdns with the 1M list, without and with 100 regexes (us/query)")
    for test in ("W2", "W3"):
        got = rows.get("rules-" + test, {})
        b, x = got.get("block", {}), got.get("regex", {})
        if b or x:
            print("%-5s %9s %9s %9s" % (test, fmt(b.get("us_per_query"), "%.2f"),
                                      fmt(x.get("us_per_query"), "%.2f"),
                                      ratio(x.get("us_per_query"), b.get("us_per_query"))))

    got = rows.get("groups-W2", {})
    b, x = got.get("block", {}), got.get("groups", {})
    if b or x:
        print("\nsplitdns with the 1M list, without and with 3 client groups (us/query)")
        print("%-5s %9s %9s %9s" % ("W2", fmt(b.get("us_per_query"), "%.2f"),
                                  fmt(x.get("us_per_query"), "%.2f"),
                                  ratio(x.get("us_per_query"), b.get("us_per_query"))))

    for mode in ("dot", "doh"):
        got = rows.get("enc-" + mode, {})
        if not got:
            continue
        print("\nW1 local names over %s (dnsperf -m %s)" % (mode.upper(), mode))
        print("%-9s %9s %8s %9s %9s" % ("server", "q/s", "lost", "us/query", "splitdns/x"))
        s = got.get("splitdns", {}).get("us_per_query")
        for server in ("splitdns", "unbound", "dnsdist"):
            r = got.get(server)
            if not r:
                continue
            us = r.get("us_per_query")
            print("%-9s %9s %8s %9s %9s" % (server, fmt(r.get("qps")), fmt(r.get("lost"), "%d"),
                                           fmt(us, "%.2f"),
                                           ratio(s, us) if server != "splitdns" else ""))

    for test in ("up-W3", "up-W4"):
        got = rows.get(test, {})
        p = got.get("plain", {})
        for kind, what in (("dotup", "DoT"), ("dohup", "DoH")):
            d = got.get(kind, {})
            if p or d:
                print("\n%s splitdns forwarding plain vs %s upstream: us/query %s vs %s (%s),"
                      " q/s %s vs %s" % (test, what, fmt(p.get("us_per_query"), "%.2f"),
                                         fmt(d.get("us_per_query"), "%.2f"),
                                         ratio(d.get("us_per_query"), p.get("us_per_query")),
                                         fmt(p.get("qps")), fmt(d.get("qps"))))

    stall = rows.get("stall", {})
    if stall:
        print("\nreload stall: one query per ms, two reloads of the 1M list (ms)")
        print("%-9s %9s %6s %6s %7s %7s %8s %9s %s" % (
            "server", "first(s)", "sent", "lost", "p50", "p99", "max", "quiet max",
            "ctl returned (s)"))
    for server in ("splitdns", "splitdns-t2") + SERVERS[1:4]:
        r = stall.get(server)
        if not r or "note" in r:
            continue
        print("%-9s %9s %6s %6s %7s %7s %8s %9s %s" % (
            server, fmt(r.get("first_answer_s"), "%.3f"), fmt(r.get("sent"), "%d"),
            fmt(r.get("lost"), "%d"), fmt(r.get("p50_ms"), "%.2f"),
            fmt(r.get("p99_ms"), "%.2f"), fmt(r.get("max_ms"), "%.1f"),
            fmt(r.get("quiet_max_ms"), "%.1f"),
            " ".join(fmt(x, "%.2f") for x in r.get("reload_cmd_s", []))))

    if any(rows.get(t, {}).get("splitdns") for t in ("L1W2", "W1", "W3", "W4")) or stall:
        print("\nissue 7 goals (splitdns)")
    for test in ("L1W2", "W1", "W3"):
        s = rows.get(test, {}).get("splitdns", {}).get("us_per_query")
        f = rows.get(test, {}).get("reflector", {}).get("us_per_query")
        if s and f:
            print("  %-5s CPU/query %.2f us = %.2fx the reflector's %.2f (goal <= %.1fx): %s" % (
                test, s, s / f, f, GOAL_FLOOR, "met" if s / f <= GOAL_FLOOR else "not met"))
    s = rows.get("W4", {}).get("splitdns", {}).get("us_per_query")
    if s:
        print("  W4    cold forwarding %.2f us per query (goal <= %.0f): %s" % (
            s, GOAL_COLD_US, "met" if s <= GOAL_COLD_US else "not met"))
    r = stall.get("splitdns", {})
    if r.get("max_ms") is not None:
        ok = r["max_ms"] <= GOAL_STALL_MS and r.get("lost") == 0
        print("  stall slowest answer %.1f ms, %d lost (goal <= %.0f ms, none lost): %s" % (
            r["max_ms"], r.get("lost", 0), GOAL_STALL_MS, "met" if ok else "not met"))
    observe(obs)
    for n in notes:
        print(n)
    # Every workload's answers are NOERROR; anything else means a server
    # was not set up as intended and its row is not comparable.
    for test, got in sorted(rows.items()):
        for server, r in sorted(got.items()):
            odd = {k: v for k, v in (r.get("rcodes") or {}).items() if k != "NOERROR"}
            if odd:
                print("warning: %s/%s answered %s" % (test, server, ", ".join(
                    "%s %d" % kv for kv in sorted(odd.items()))))


if __name__ == "__main__":
    main()
