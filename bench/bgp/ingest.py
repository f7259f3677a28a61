#!/usr/bin/env python3
"""BGP ingest benchmark (issue 4): N VPNv4 routes over R route distinguishers from
one eBGP feed (BIRD 2 as the generator) into a device under test; prints the
time from session up to the last route and the DUT's RSS.

Two feeds (`--feed replay,bird`, both by default, one table each):
* bird: BIRD 2 live, a fresh generator per DUT. On this machine it sends about
  1M routes/s, and the sink row (a receiver that only counts) shows that every
  DUT that keeps up finishes with it: the table then measures the generator.
* replay: BIRD's feed, recorded once byte for byte by `bgp_sink --record`, is
  played to each DUT by `bgp_sink --replay` (AS 65010 from the generator's
  address, the same OPEN) as fast as the DUT reads it, then End-of-RIB. The
  UPDATEs are exactly BIRD's; only the pace differs, so the DUT is the slowest
  party and the time is the DUT's. "sent (s)" is when the last byte was handed
  to TCP.

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
import shutil
import subprocess
import tempfile
import threading
import time

from dut import (DUT, FEED, GEN, REPO, Filament, Lab, cpu_s, enable_feed, logged_established, rss_kb, start_feed,
                 start_generator, wait_count)


class BirdFeed:
    """The live generator in each DUT's lab."""
    name = "bird"

    def __init__(self, a):
        self.a = a

    def prepare(self, lab):
        self.lab = lab
        total, self.ctl = start_generator(lab, self.a.routes, self.a.rds)
        return total

    def start(self):
        return enable_feed(self.lab, self.ctl)

    def established(self):
        return logged_established(self.lab)

    def gen_cpu(self):
        return (cpu_s(self.lab.procs[0].pid) or 0.0) - FEED.get("gen_cpu", 0.0)

    def sent(self):
        return None


class ReplayFeed:
    """BIRD's feed recorded once (`bgp_sink --record`), replayed to each DUT."""
    name = "replay"
    SINK = os.environ.get("FILAMENT_BGP_SINK", str(REPO / "target/release/examples/bgp_sink"))

    def __init__(self, a):
        self.dir = tempfile.mkdtemp(prefix="fbgp-feed-")
        self.path = os.path.join(self.dir, "feed.bgp")
        lab = Lab()
        try:
            self.total, ctl = start_generator(lab, a.routes, a.rds)
            start_feed(lab, ctl)
            p = lab.spawn([self.SINK, "--connect", f"{GEN}:179", "--asn", "64512", "--local", DUT,
                           "--expect", str(self.total), "--family", "inet-vpn", "--record", self.path],
                          "record.log", stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            for line in p.stdout:
                if '"done"' in line:
                    break
            else:
                raise SystemExit("recording the feed failed: " + (lab.work / "record.log").read_text())
        finally:
            lab.close()
        print(f"replay feed: {self.total} routes in {os.path.getsize(self.path)} bytes of BIRD's UPDATEs "
              f"({self.path})", flush=True)

    def prepare(self, lab):
        self.lab = lab
        return self.total

    def start(self):
        self.p = self.lab.spawn([self.SINK, "--connect", f"{DUT}:179", "--asn", "65010", "--local", GEN,
                                 "--replay", self.path, "--family", "inet-vpn"], "replay.log",
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.sent_at = None
        for line in self.p.stdout:
            if '"up"' in line:
                FEED["est"] = time.monotonic()
                threading.Thread(target=self._wait_sent, daemon=True).start()
                return FEED["est"]
        raise SystemExit("replay: no session: " + (self.lab.work / "replay.log").read_text())

    def _wait_sent(self):
        for line in self.p.stdout:
            if '"sent"' in line:
                self.sent_at = time.monotonic()

    def established(self):
        return None

    def gen_cpu(self):
        return cpu_s(self.p.pid) or 0.0

    def sent(self):
        return self.sent_at - FEED["est"] if self.sent_at else None

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def dut_ours(lab, total, feed):
    # FILAMENT_BGP_PEER=path runs another build (e.g. a baseline) as "ours".
    binary = os.environ.get("FILAMENT_BGP_PEER", str(REPO / "target/release/examples/bgp_peer"))
    # FILAMENT_BENCH_WRAP="heaptrack -o /tmp/x" profiles our speaker.
    wrap = os.environ.get("FILAMENT_BENCH_WRAP", "").split()
    p = lab.spawn([*wrap, str(binary), "--asn", "64512", "--router-id", DUT, "--listen", f"{DUT}:179",
                   "--peer", f"{GEN},65010,passive,families=inet-vpn", "--quiet"], "ours.log",
                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    t0 = feed.start()
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


def dut_sink(lab, total, feed):
    """The floor: crates/bgp's `bgp_sink` example connects to the generator and only
    counts the NLRI in the UPDATE bytes (no routes built), so its time is the
    generator's pace on this machine."""
    binary = os.environ.get("FILAMENT_BGP_SINK", str(REPO / "target/release/examples/bgp_sink"))
    start_feed(lab, feed.ctl)
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


def dut_bird(lab, total, feed):
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
    t0 = feed.start()

    def count():
        # The channel's import counter ("Routes: N imported, ..."): a `show route count`
        # walks the table, which at a million routes slowed BIRD itself down.
        out = lab.run("birdc", "-s", str(dctl), "show", "protocols", "all", "dut", check=False).stdout
        for line in out.splitlines():
            w = line.split()
            if len(w) >= 3 and w[0] == "Routes:" and w[2].startswith("imported"):
                return int(w[1]) if w[1].isdigit() else 0
        return 0
    t1 = wait_count(count, total)
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


def dut_frr(lab, total, feed):
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
    t0 = feed.start()

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


def dut_gobgp(lab, total, feed):
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
    t0 = feed.start()

    def count():
        out = lab.run("gobgp", "neighbor", GEN, "-j", check=False).stdout
        try:
            st = json.loads(out).get("afi_safis", [])
            return sum(a.get("state", {}).get("received", 0) for a in st)
        except (ValueError, AttributeError):
            return 0
    t1 = wait_count(count, total)
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


def dut_filament(lab, total, feed):
    """The product: `filament up --no-control` (config API) and `filament control` (the
    control node: speaker + its RIB), peered with the generator the way a user does it:
    a bgp-router for BIRD with a ref to the control node's own bgp-router, over REST.
    Done when the control node's bgp.l3vpn.0 holds every route (introspect
    /routes/summary); CPU and RSS are those of the control node process."""
    f = Filament(lab)
    p = f.start_control()
    f.bgp_router("bird", GEN, 65010, ["inet-vpn"])
    time.sleep(1)
    t0 = feed.start()

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
    if os.environ.get("FILAMENT_BENCH_VERBOSE"):
        print("  control node threads (CPU s):", threads_cpu(p.pid), flush=True)
    return t1 - t0, rss_kb(p.pid), cpu_s(p.pid)


def threads_cpu(pid):
    """CPU seconds per thread of a process, by thread name (shows whether the work
    spreads over the runtime's workers)."""
    out = []
    for t in sorted(os.listdir(f"/proc/{pid}/task")):
        try:
            name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        except OSError:
            continue
        c = cpu_s(f"{pid}/task/{t}")
        if c:
            out.append(f"{name}={c:.2f}")
    return " ".join(out)


DUTS = {"sink": dut_sink, "ours": dut_ours, "filament": dut_filament, "bird": dut_bird, "frr": dut_frr, "gobgp": dut_gobgp}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--rds", type=int, default=100)
    ap.add_argument("--duts", default="ours,filament,bird,frr,gobgp")
    ap.add_argument("--feed", default="replay,bird",
                    help="replay (BIRD's recorded feed, as fast as the DUT reads), bird (BIRD live), or both")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    print(f"BGP ingest: {a.routes} VPNv4 routes over {a.rds} RDs, BIRD {GEN} (AS 65010) -> DUT {DUT}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared: compare CPU seconds)")
    for kind in a.feed.split(","):
        feed = {"bird": BirdFeed, "replay": ReplayFeed}[kind](a)
        try:
            run_table(a, feed)
        finally:
            if hasattr(feed, "close"):
                feed.close()


def run_table(a, feed):
    if feed.name == "bird":
        print("\nfeed: BIRD live. time: from the generator's logged Established to the last route; birdc: from\n"
              "birdc first showing it Established (the earlier measure; late when birdc answers late)")
        print("gen CPU: the generator's CPU seconds from enabling the feed to the DUT's last route;\n"
              "sink: a receiver that only counts NLRI (the generator's pace, the floor for every DUT)")
    else:
        print("\nfeed: BIRD's recorded UPDATEs replayed as fast as the DUT reads them. time: from Established\n"
              "(the replayer read the DUT's KEEPALIVE) to the last route; sent: the last byte handed to TCP")
    third = "birdc (s)" if feed.name == "bird" else "sent (s)"
    print(f"{'DUT':<8} {'time (s)':>10} {'routes/s':>12} {'CPU (s)':>9} {'RSS (MB)':>10} {third:>10}"
          f" {'gen CPU (s)':>12}", flush=True)
    for name in a.duts.split(","):
        if name == "sink" and feed.name != "bird":
            continue  # the sink is the live generator's floor
        lab = Lab()
        try:
            total = feed.prepare(lab)
            secs, rss, cpu = DUTS[name](lab, total, feed)
            rss_mb = f"{rss / 1024:.0f}" if rss else "?"
            cpu_txt = f"{cpu:.2f}" if cpu is not None else "?"
            est = feed.established()
            logged = secs + FEED["est"] - est if est is not None else secs
            sent = feed.sent()
            third = secs if feed.name == "bird" else sent
            third_txt = f"{third:.2f}" if third is not None else "?"
            print(f"{name:<8} {logged:>10.2f} {total / logged:>12.0f} {cpu_txt:>9} {rss_mb:>10} {third_txt:>10}"
                  f" {feed.gen_cpu():>12.2f}", flush=True)
        finally:
            lab.close()


if __name__ == "__main__":
    main()
