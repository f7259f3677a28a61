#!/usr/bin/env python3
"""BGP reflection benchmark (issue 4): our speaker as a route reflector
(RFC 4456, cluster id set) gets N VPNv4 routes over R RDs from BIRD 2 (an
iBGP route-reflector client, the same generator as ingest.py) and reflects
them to C other clients. The clients are one cheap process
(crates/bgp/examples/bgp_sink.rs: OPEN/KEEPALIVE, then it only counts the
NLRI in the UPDATE bytes), so they do not compete with the speaker for the
2 cores the way 10 BIRDs would.

Time: from the feed session being Established (as in ingest.py) until every
client counted N routes. Also printed: the speaker's own ingest time in the
same run (the feed's End-of-RIB reaching it), CPU seconds of the speaker and
of the clients, the speaker's RSS and peak RSS. Needs root.

    bench/bgp/reflect.sh [--routes 1000000] [--rds 100] [--clients 10]
"""

import argparse
import json
import os
import subprocess
import threading
import time

from ingest import DUT, GEN, REPO, Lab, cpu_s, enable_feed, rss_kb, start_generator

ASN = 64512


def hwm_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--rds", type=int, default=100)
    ap.add_argument("--clients", type=int, default=10)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    clients = [f"10.77.0.{11 + i}" for i in range(a.clients)]
    lab = Lab()
    try:
        for c in clients:
            lab.run("ip", "addr", "add", f"{c}/32", "dev", "lo")
        total, ctl = start_generator(lab, a.routes, a.rds, feed_as=ASN)
        print(f"BGP reflection: {total} VPNv4 routes over {a.rds} RDs, BIRD {GEN} (iBGP RR client) "
              f"-> ours {DUT} (RR) -> {a.clients} clients")
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared: compare CPU seconds)")
        binary = os.environ.get("FILAMENT_BGP_PEER", str(REPO / "target/release/examples/bgp_peer"))
        argv = [binary, "--asn", str(ASN), "--router-id", DUT, "--listen", f"{DUT}:179",
                "--cluster-id", DUT, "--quiet",
                "--peer", f"{GEN},{ASN},passive,rr-client,families=inet-vpn"]
        for c in clients:
            argv += ["--peer", f"{c},{ASN},passive,rr-client,families=inet-vpn"]
        dut = lab.spawn(argv, "ours.log", stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        eor = {}

        def drain():
            for line in dut.stdout:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == "eor" and e.get("peer") == GEN and "t" not in eor:
                    eor.update(e, t=time.monotonic())
        threading.Thread(target=drain, daemon=True).start()
        time.sleep(0.5)
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
        t0 = enable_feed(lab, ctl)
        cpu0 = cpu_s(dut.pid) or 0.0
        sink_cpu = None
        for line in sink.stdout:
            e = json.loads(line)
            if e["event"] == "error":
                raise SystemExit(f"bgp_sink: {e}")
            if e["event"] == "all":
                sink_cpu = e["cpu_ms"] / 1000
                break
        t1 = time.monotonic()
        secs = t1 - t0
        for _ in range(50):  # the feed's End-of-RIB line may still be on its way
            if "t" in eor:
                break
            time.sleep(0.1)
        cpu = (cpu_s(dut.pid) or 0.0) - cpu0
        rss, hwm = rss_kb(dut.pid), hwm_kb(dut.pid)
        ingest = eor["t"] - t0 if "t" in eor else None
        load = os.getloadavg()[0]
        print(f"{'':<22} {'time (s)':>9} {'routes/s':>12}")
        if ingest is not None:
            print(f"{'ingest (feed EoR)':<22} {ingest:>9.2f} {total / ingest:>12.0f}")
        print(f"{f'reflect to {a.clients}':<22} {secs:>9.2f} {total * a.clients / secs:>12.0f}"
              + (f"   ({secs / ingest:.2f}x ingest)" if ingest else ""))
        print(f"ours: CPU {cpu:.2f} s, RSS {rss / 1024:.0f} MB, peak RSS {hwm / 1024:.0f} MB; "
              f"clients: CPU {sink_cpu:.2f} s; load average after: {load:.2f}")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
