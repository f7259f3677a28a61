#!/usr/bin/env python3
"""BGP reflection benchmark (issue 4): a route reflector (RFC 4456, cluster id
set) gets N VPNv4 routes over R RDs from BIRD 2 (an iBGP route-reflector
client, the same generator as ingest.py) and reflects them to C other
clients. The clients are one cheap process (crates/bgp/examples/bgp_sink.rs:
OPEN/KEEPALIVE, then it only counts the NLRI in the UPDATE bytes), so they do
not compete with the reflector for the 2 cores the way 10 BIRDs would.

DUTs (`--dut`, one after the other with the same arguments):
* ours: the speaker alone (crates/bgp's bgp_peer example, release build);
* filament: the product, `filament up --no-control` + `filament control`,
  configured over REST as a user does it: the control node's own bgp-router
  with `bgp_router_parameters.cluster_id`, one bgp-router per client (BIRD
  and the C sinks; iBGP, same ASN, inet-vpn) with a ref to the node's.

Time: from the feed session being Established (as in ingest.py) until every
client counted N routes. Also printed: the DUT's own ingest time in the same
run (ours: the feed's End-of-RIB reaching it; filament: the control node's
bgp.l3vpn.0 holding N, introspect /routes/summary polled every 0.1 s as in
ingest.py, FILAMENT_BENCH_POLL; per-table counters, its CPU is the node's), CPU seconds of the DUT process from the feed's start and
of the clients, its RSS and peak RSS, the load average, and what tshark
decodes in the first UPDATEs sent to one client (ORIGINATOR_ID and
CLUSTER_LIST: proof the routes were reflected). Needs root.

    bench/bgp/reflect.sh [--routes 1000000] [--rds 100] [--clients 10] [--dut ours|filament|ours,filament]
"""

import argparse
import json
import os
import subprocess
import threading
import time

from dut import (DUT, GEN, REPO, Filament, Lab, capture_reflected, cpu_s, enable_feed, hwm_kb, ip_int,
                 poll, reflected_attrs, rss_kb, start_generator)

ASN = 64512
# The reflector's cluster id (RFC 4456 §7): its own address, as a 32-bit number in config.
CLUSTER_ID = DUT


def start_ours(lab, clients):
    """The speaker alone; returns (process, ingest-done clock holder)."""
    binary = os.environ.get("FILAMENT_BGP_PEER", str(REPO / "target/release/examples/bgp_peer"))
    argv = [binary, "--asn", str(ASN), "--router-id", DUT, "--listen", f"{DUT}:179",
            "--cluster-id", CLUSTER_ID, "--quiet",
            "--peer", f"{GEN},{ASN},passive,rr-client,families=inet-vpn"]
    for c in clients:
        argv += ["--peer", f"{c},{ASN},passive,rr-client,families=inet-vpn"]
    dut = lab.spawn(argv, "ours.log", stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    return dut


def watch_ours(dut, total, t0, done):
    """The feed's End-of-RIB line from our speaker."""
    def drain():
        for line in dut.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "eor" and e.get("peer") == GEN and "t" not in done:
                done["t"] = time.monotonic()
    threading.Thread(target=drain, daemon=True).start()


def start_filament(lab, clients):
    """The product, configured the way a user does it (tf-facts §3)."""
    f = Filament(lab)
    f.node_router(ASN, cluster_id=ip_int(CLUSTER_ID))
    f.bgp_router("bird", GEN, ASN, ["inet-vpn"])
    for i, c in enumerate(clients):
        f.bgp_router(f"client{i + 1}", c, ASN, ["inet-vpn"])
    dut = f.start_control()

    poll(lambda: len(bgp_rows(f.neighbors())) >= len(clients) + 1, "the control node's BGP peers", timeout=60)
    return f, dut


def bgp_rows(n):
    """BGP rows of `GET /neighbors` (`{"neighbors": [...]}`)."""
    rows = n.get("neighbors", []) if isinstance(n, dict) else []
    return [r for r in rows if isinstance(r, dict) and r.get("type") == "bgp"]


def watch_filament(f, total, t0, done):
    """The control node's bgp.l3vpn.0 holding every route."""
    verbose = os.environ.get("FILAMENT_BENCH_VERBOSE")

    def run():
        last = 0.0
        while "stop" not in done:
            n = f.paths()
            if verbose and time.monotonic() - last > 5:
                last = time.monotonic()
                print(f"  {time.monotonic() - t0:6.1f}s: bgp.l3vpn.0 {n} paths", flush=True)
            if n >= total:
                done["t"] = time.monotonic()
                return
            time.sleep(float(os.environ.get("FILAMENT_BENCH_POLL", 0.1)))
    threading.Thread(target=run, daemon=True).start()


def one(a, kind):
    clients = [f"10.77.0.{11 + i}" for i in range(a.clients)]
    lab = Lab(extra_addrs=clients)
    try:
        total, ctl = start_generator(lab, a.routes, a.rds, feed_as=ASN)
        what = "ours (bgp_peer)" if kind == "ours" else "filament control"
        print(f"\n== {kind}: {total} VPNv4 routes over {a.rds} RDs, BIRD {GEN} (iBGP RR client) "
              f"-> {what} {DUT} (RR, cluster id {CLUSTER_ID}) -> {a.clients} clients")
        f = None
        if kind == "ours":
            dut = start_ours(lab, clients)
        else:
            f, dut = start_filament(lab, clients)
        sink_argv = [str(REPO / "target/release/examples/bgp_sink"), "--connect", f"{DUT}:179",
                     "--asn", str(ASN), "--expect", str(total)]
        for c in clients:
            sink_argv += ["--local", c]
        sink = lab.spawn(sink_argv, "sink.log", stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        up = 0
        while up < a.clients:
            line = sink.stdout.readline()
            if not line:
                raise SystemExit("bgp_sink exited: " + (lab.work / "sink.log").read_text())
            e = json.loads(line)
            if e["event"] == "up":
                up += 1
            elif e["event"] == "error":
                raise SystemExit(f"bgp_sink: {e}")
        cap = capture_reflected(lab, DUT, clients[0])
        time.sleep(0.3)  # dumpcap attached
        load0 = os.getloadavg()[0]
        cpu0 = cpu_s(dut.pid) or 0.0
        t0 = enable_feed(lab, ctl)
        done = {}
        if kind == "ours":
            watch_ours(dut, total, t0, done)
        else:
            watch_filament(f, total, t0, done)
        sink_cpu = None
        timeout = float(os.environ.get("FILAMENT_BENCH_TIMEOUT", 600))
        timer = threading.Timer(timeout, sink.terminate)
        timer.start()
        try:
            for line in sink.stdout:
                e = json.loads(line)
                if e["event"] == "error":
                    raise SystemExit(f"bgp_sink: {e}")
                if e["event"] == "all":
                    sink_cpu = e["cpu_ms"] / 1000
                    break
        finally:
            timer.cancel()
        if sink_cpu is None:
            if f:
                print("neighbors:", json.dumps(f.neighbors()), "\ncontrol.log tail:", *f.log_tail(), sep="\n")
            raise SystemExit(f"timed out: the clients did not all count {total} routes in {timeout:.0f} s")
        t1 = time.monotonic()
        secs = t1 - t0
        for _ in range(300):  # the ingest mark may still be on its way
            if "t" in done:
                break
            time.sleep(0.1)
        done["stop"] = True
        cpu = (cpu_s(dut.pid) or 0.0) - cpu0
        rss, hwm = rss_kb(dut.pid), hwm_kb(dut.pid)
        ingest = done["t"] - t0 if "t" in done else None
        load = os.getloadavg()[0]
        updates, origs, clusters = reflected_attrs(lab, cap)
        print(f"{'':<22} {'time (s)':>9} {'routes/s':>12}")
        label = "ingest (feed EoR)" if kind == "ours" else "ingest (bgp.l3vpn.0)"
        if ingest is not None:
            print(f"{label:<22} {ingest:>9.2f} {total / ingest:>12.0f}")
        print(f"{f'reflect to {a.clients}':<22} {secs:>9.2f} {total * a.clients / secs:>12.0f}"
              + (f"   ({secs / ingest:.2f}x ingest)" if ingest else ""))
        print(f"{kind}: CPU {cpu:.2f} s, RSS {rss / 1024:.0f} MB, peak RSS {hwm / 1024:.0f} MB; "
              f"clients: CPU {sink_cpu:.2f} s; load average before/after: {load0:.2f}/{load:.2f}")
        print(f"first UPDATEs to {clients[0]} (tshark): {updates} decoded, ORIGINATOR_ID {sorted(origs) or 'none'}, "
              f"CLUSTER_LIST {sorted(clusters) or 'none'}")
        if f:
            rows = bgp_rows(f.neighbors())
            print("control node's BGP peers (received/sent):",
                  ", ".join(f"{r.get('name')} {r.get('received')}/{r.get('sent')}" for r in rows))
        if not origs or CLUSTER_ID not in clusters:
            print("WARNING: the client was not sent ORIGINATOR_ID / our CLUSTER_LIST")
    finally:
        lab.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--rds", type=int, default=100)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--dut", default="ours", help="ours, filament or ours,filament")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    kinds = a.dut.split(",")
    for k in kinds:
        if k not in ("ours", "filament"):
            raise SystemExit(f"unknown --dut {k} (ours, filament)")
    print(f"BGP reflection to {a.clients} clients; load average before: {os.getloadavg()[0]:.2f} "
          "(2 cores shared: compare CPU seconds)")
    for k in kinds:
        one(a, k)


if __name__ == "__main__":
    main()
