#!/usr/bin/env python3
"""BGP ingest benchmark (issue 4): N VPNv4 routes over R route distinguishers from
one eBGP feed (BIRD 2 as the generator) into a device under test; prints the
time from session up to the last route and the DUT's RSS.

DUTs, one after the other, same feed: ours (crates/bgp, the bgp_peer example in
release mode), filament (the product: `filament up --no-control` + `filament control`,
peered through the REST API; counts the control node's bgp.l3vpn.0), BIRD 2, FRR
bgpd, GoBGP. Each runs in a fresh network namespace
(generator 10.77.0.5 AS 65010, DUT 10.77.0.1 AS 64512). Needs root.

    bench/bgp/ingest.sh [--routes 1000000] [--rds 100] [--duts ours,filament,bird,frr,gobgp]
"""

import argparse
import json
import os
import subprocess
import time

from dut import (DUT, FEED, GEN, REPO, Filament, Lab, cpu_s, enable_feed, logged_established, rss_kb, start_feed,
                 start_generator, wait_count)


def dut_ours(lab, total, ctl):
    # FILAMENT_BGP_PEER=path runs another build (e.g. a baseline) as "ours".
    binary = os.environ.get("FILAMENT_BGP_PEER", str(REPO / "target/release/examples/bgp_peer"))
    # FILAMENT_BENCH_WRAP="heaptrack -o /tmp/x" profiles our speaker.
    wrap = os.environ.get("FILAMENT_BENCH_WRAP", "").split()
    p = lab.spawn([*wrap, str(binary), "--asn", "64512", "--router-id", DUT, "--listen", f"{DUT}:179",
                   "--peer", f"{GEN},65010,passive,families=inet-vpn", "--quiet"], "ours.log",
                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    t0 = enable_feed(lab, ctl)
    for line in p.stdout:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "eor":
            t1 = time.monotonic()
            assert e["learned"] >= total, e
            cpu = e["cpu_ms"] / 1000 if e.get("cpu_ms") is not None else cpu_s(p.pid)
            return t1 - t0, e["rss_kb"], cpu
    raise SystemExit("our speaker exited")


def dut_sink(lab, total, ctl):
    """The floor: crates/bgp's `bgp_sink` example connects to the generator and only
    counts the NLRI in the UPDATE bytes (no routes built), so its time is the
    generator's pace on this machine."""
    binary = os.environ.get("FILAMENT_BGP_SINK", str(REPO / "target/release/examples/bgp_sink"))
    start_feed(lab, ctl)
    p = lab.spawn([binary, "--connect", f"{GEN}:179", "--asn", "64512", "--local", DUT,
                   "--expect", str(total), "--family", "inet-vpn"], "sink.log",
                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    t0 = None
    for line in p.stdout:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "up" and t0 is None:
            t0 = time.monotonic()
            FEED["est"] = t0
        if e.get("event") == "done":
            t1 = time.monotonic()
            return t1 - (t0 or t1), rss_kb(p.pid), cpu_s(p.pid)
    raise SystemExit("bgp_sink exited")


def dut_bird(lab, total, ctl):
    conf = lab.work / "dut.conf"
    conf.write_text(f"""router id {DUT};
vpn4 table vpntab;
protocol device {{}}
protocol bgp dut {{
  local {DUT} as 64512; neighbor {GEN} as 65010; multihop; strict bind yes; passive;
  vpn4 mpls {{ table vpntab; import all; export none; }};
}}
""")
    dctl = lab.work / "dut.ctl"
    p = lab.spawn(["bird", "-f", "-c", str(conf), "-s", str(dctl)], "dut.log")
    time.sleep(0.5)
    t0 = enable_feed(lab, ctl)

    def count():
        out = lab.run("birdc", "-s", str(dctl), "show", "route", "count", "table", "vpntab", check=False).stdout
        for w in out.split():
            if w.isdigit():
                return int(w)
        return 0
    t1 = wait_count(count, total)
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


def dut_frr(lab, total, ctl):
    conf = lab.work / "frr.conf"
    conf.write_text(f"""frr defaults traditional
router bgp 64512
 bgp router-id {DUT}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {GEN} remote-as 65010
 neighbor {GEN} update-source {DUT}
 neighbor {GEN} ebgp-multihop 2
 address-family ipv4 vpn
  neighbor {GEN} activate
 exit-address-family
""")
    shutil.chown(lab.work, "frr", "frr")
    shutil.chown(conf, "frr", "frr")
    p = lab.spawn(["/usr/lib/frr/bgpd", "-f", str(conf), "-i", str(lab.work / "bgpd.pid"),
                   "--vty_socket", str(lab.work), "-Z", "-n", "-l", DUT, "-p", "179"], "frr.log")
    time.sleep(1)
    t0 = enable_feed(lab, ctl)

    def count():
        out = lab.run("vtysh", "--vty_socket", str(lab.work), "-c", "show bgp ipv4 vpn summary json",
                      check=False).stdout
        try:
            peers = json.loads(out).get("peers", {})
            return peers.get(GEN, {}).get("pfxRcd", 0)
        except ValueError:
            return 0
    t1 = wait_count(count, total)
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


def dut_gobgp(lab, total, ctl):
    conf = lab.work / "gobgpd.toml"
    conf.write_text(f"""[global.config]
  as = 64512
  router-id = "{DUT}"
  port = 179
  local-address-list = ["{DUT}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{GEN}"
    peer-as = 65010
  [neighbors.transport.config]
    local-address = "{DUT}"
    passive-mode = true
  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l3vpn-ipv4-unicast"
""")
    p = lab.spawn(["gobgpd", "-f", str(conf), "-t", "toml", "--api-hosts", "127.0.0.1:50051"],
                  "gobgpd.log", stdout=subprocess.DEVNULL)
    time.sleep(1)
    t0 = enable_feed(lab, ctl)

    def count():
        out = lab.run("gobgp", "neighbor", GEN, "-j", check=False).stdout
        try:
            st = json.loads(out).get("afi_safis", [])
            return sum(a.get("state", {}).get("received", 0) for a in st)
        except (ValueError, AttributeError):
            return 0
    t1 = wait_count(count, total)
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


def dut_filament(lab, total, ctl):
    """The product: `filament up --no-control` (config API) and `filament control` (the
    control node: speaker + its RIB), peered with the generator the way a user does it:
    a bgp-router for BIRD with a ref to the control node's own bgp-router, over REST.
    Done when the control node's bgp.l3vpn.0 holds every route (introspect
    /routes/summary); CPU and RSS are those of the control node process."""
    f = Filament(lab)
    p = f.start_control()
    f.bgp_router("bird", GEN, 65010, ["inet-vpn"])
    time.sleep(1)
    t0 = enable_feed(lab, ctl)

    last = [0.0]

    def count():
        n = f.paths("bgp.l3vpn.0")
        if os.environ.get("FILAMENT_BENCH_VERBOSE") and time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            print(f"  {time.monotonic() - t0:6.1f}s: {n} routes, CPU {cpu_s(p.pid)} s, RSS {rss_kb(p.pid)} kB",
                  flush=True)
        return n
    try:
        # every 0.1 s, as BIRD: the summary reads per-table counters (no walk over the routes;
        # its CPU is the control node's either way). FILAMENT_BENCH_POLL changes it.
        t1 = wait_count(count, total, timeout=float(os.environ.get("FILAMENT_BENCH_TIMEOUT", 600)),
                        every=float(os.environ.get("FILAMENT_BENCH_POLL", 0.1)))
    except SystemExit:
        print(f"filament: {count()} of {total} routes; neighbors:",
              json.dumps(f.neighbors()), flush=True)
        print("control.log tail:", *f.log_tail(), sep="\n")
        raise
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


DUTS = {"sink": dut_sink, "ours": dut_ours, "filament": dut_filament, "bird": dut_bird, "frr": dut_frr, "gobgp": dut_gobgp}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--rds", type=int, default=100)
    ap.add_argument("--duts", default="ours,filament,bird,frr,gobgp")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    print(f"BGP ingest: {a.routes} VPNv4 routes over {a.rds} RDs, BIRD {GEN} (AS 65010) -> DUT {DUT}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared: compare CPU seconds)")
    print("time: from the generator's logged Established to the last route; birdc: from birdc first\n"
          "showing it Established (the earlier measure; late when birdc answers late)")
    print("gen CPU: the generator's CPU seconds from enabling the feed to the DUT's last route;\n"
          "sink: a receiver that only counts NLRI (the generator's pace, the floor for every DUT)")
    print(f"{'DUT':<8} {'time (s)':>10} {'routes/s':>12} {'CPU (s)':>9} {'RSS (MB)':>10} {'birdc (s)':>10}"
          f" {'gen CPU (s)':>12}")
    for name in a.duts.split(","):
        lab = Lab()
        try:
            total, ctl = start_generator(lab, a.routes, a.rds)
            secs, rss, cpu = DUTS[name](lab, total, ctl)
            rss_mb = f"{rss / 1024:.0f}" if rss else "?"
            cpu_txt = f"{cpu:.2f}" if cpu is not None else "?"
            est = logged_established(lab)
            logged = secs + FEED["est"] - est if est is not None else secs
            gen = (cpu_s(lab.procs[0].pid) or 0.0) - FEED.get("gen_cpu", 0.0)
            print(f"{name:<8} {logged:>10.2f} {total / logged:>12.0f} {cpu_txt:>9} {rss_mb:>10} {secs:>10.2f}"
                  f" {gen:>12.2f}", flush=True)
        finally:
            lab.close()


if __name__ == "__main__":
    main()
