"""Forwarder benchmark across namespaces (issue 5, "Benchmarks"): workload to workload on two
hosts joined by a veth fabric, 64-byte UDP delivered pps and 1-stream TCP Gbit/s, through

* ``filament vrouter run`` (static tables; MPLSoUDP and VXLAN), and
* Linux kernel VXLAN (vxlan device + bridge per host) in the same topology, and
* Open vSwitch's userspace (netdev) datapath with a VXLAN tunnel port (bench/dataplane/ovs.py;
  its own ovsdb-server / ovs-vswitchd per host namespace), when ovs-vswitchd is installed
  (run.sh installs openvswitch-switch).

Tx offloads are turned off on every veth in all setups for fairness. Figures are printed as one
table at the end, never asserted. Run as root through ``run.sh``.

Environment: ``BENCH_SECONDS`` (per iperf3 run), ``VROUTER_ARGS`` (extra ``vrouter run``
arguments for every filament row), ``BENCH_IO`` (space-separated I/O modes to measure, default
"af-packet af-xdp af-packet:2 af-xdp:2"; ``:N`` = ``--cores N``), ``BENCH_ENCAPS`` (default
"mpls_over_udp vxlan"), ``BENCH_FIXED`` ("KPPS:MBIT", e.g. "100:800": offer 64-byte UDP at KPPS
thousand packets/s and pace TCP at MBIT Mbit/s instead of as fast as possible, so every datapath
does the same work and the ns/pkt and CPU s/GB columns compare like with like on a busy machine),
``BENCH_POLICY=1`` (policy on both workload vifs, as the agent sets them, with Forward flows
installed for every 5-tuple iperf3 can use: every forwarded packet takes a flow lookup and hit;
w1's ephemeral ports are narrowed to 128 for that, ``Lab.allow_iperf3_flows``), ``BENCH_PEERS=0``
(filament rows only: no kernel VXLAN and OVS rows, for A/B runs of two binaries),
``BENCH_RFC2544=0`` (skip the zero-loss search below), ``BENCH_TRIAL_SECONDS`` (3: one trial of it).

Besides the rates at full offered load, each datapath gets an RFC 2544 (section 26.1) throughput
search on 64-byte UDP: the highest rate the sender offered at which the datapath lost at most
0.1% of the frames (offered by w1's iperf3 versus handed to workload 2's interface, so frames the
receiving iperf3 is too slow to read are not the datapath's loss). When the full-rate run lost
no more than that, its offered rate is the answer, marked `s` (sender-limited: a kernel datapath
forwards in the sender's own system calls, so its sender never offers more than it carries);
otherwise the rate is bisected five times below the full-rate run's offered rate, with trials
of ``BENCH_TRIAL_SECONDS`` paced by iperf3. A second search ('0-loss app') judges each trial by
what the receiving iperf3 read instead (its own count of missing sequence numbers): the
64-byte rate a workload application receives without loss, datapath and receiver together.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from dataplane_lab import FABRIC_NET, WL_IP, Lab, nsrun, run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ovs import Ovs  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
# Extra `filament vrouter run` arguments, e.g. "--ring-block-kb 32".
VROUTER_ARGS = os.environ.get("VROUTER_ARGS", "").split()
IO_MODES = os.environ.get("BENCH_IO", "af-packet af-xdp af-packet:2 af-xdp:2").split()
ENCAPS = os.environ.get("BENCH_ENCAPS", "mpls_over_udp vxlan").split()
UDP_PAYLOAD = 18  # 14 Ethernet + 20 IPv4 + 8 UDP + 18 = 64-byte frames (without FCS)
# Fixed offered load ("KPPS:MBIT"), or None: as fast as possible.
FIXED = tuple(float(x) for x in os.environ["BENCH_FIXED"].split(":")) \
    if os.environ.get("BENCH_FIXED") else None
POLICY = os.environ.get("BENCH_POLICY") == "1"
PEERS = os.environ.get("BENCH_PEERS", "1") != "0"
RFC2544 = os.environ.get("BENCH_RFC2544", "1") != "0"
TRIAL_SECONDS = int(os.environ.get("BENCH_TRIAL_SECONDS", "3"))
LOSS_OK = 0.001  # the loss a passing trial may have (RFC 2544 asks for none: 0.1% of slack)


def offloads_off(lab):
    for i in (1, 2):
        nsrun(lab.h[i], "ethtool", "-K", f"tap{i}", "tx", "off", "tso", "off", "gso", "off",
              check=False)
        nsrun(lab.h[i], "ethtool", "-K", f"f{i}", "tx", "off", "tso", "off", "gso", "off",
              check=False)
        nsrun(lab.w[i], "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off",
              check=False)


def tap2_tx_packets(lab):
    """Packets handed to workload 2 (tx counter of its host-side veth) by either datapath."""
    out = run("ip", "-n", lab.h[2], "-s", "-j", "link", "show", "tap2").stdout
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


def iperf(lab, udp, kpps=None, seconds=SECONDS):
    """One iperf3 run from w1 to w2: UDP (64-byte frames at `kpps`, the fixed load or as fast
    as possible) -> (read by iperf3, offered, into w2) in packets/s; TCP -> (Gbit/s, segments
    the sender retransmitted)."""
    server, _ = lab.spawn(lab.w[2], ["iperf3", "-s", "-1", "-p", "5201"], "iperf3-server")
    before = tap2_tx_packets(lab)
    time.sleep(0.3)
    args = ["iperf3", "-c", WL_IP[2], "-p", "5201", "-t", str(seconds), "-J"]
    if udp:
        kpps = kpps if kpps is not None else (FIXED[0] if FIXED else None)
        rate = f"{kpps * 1000 * UDP_PAYLOAD * 8:.0f}" if kpps else "0"
        args += ["-u", "-b", rate, "-l", str(UDP_PAYLOAD)]
    elif FIXED:
        args += ["-b", f"{FIXED[1]:.0f}M"]
    out = nsrun(lab.w[1], *args, check=False, timeout=seconds + 30)
    lab._stop(server)
    if out.returncode != 0:
        return None
    end = json.loads(out.stdout)["end"]
    if udp:
        s = end["sum"]
        delivered = s["packets"] - s["lost_packets"]
        to_wl = tap2_tx_packets(lab) - before
        return delivered / s["seconds"], s["packets"] / s["seconds"], to_wl / s["seconds"]
    retx = end.get("sum_sent", {}).get("retransmits")
    return end["sum_received"]["bits_per_second"] / 1e9, retx


def loss(r):
    """The datapath's loss in a UDP run: offered by w1's iperf3 but not handed to w2."""
    _, offered, into = r
    return (offered - into) / offered if offered else 1.0


def app_loss(r):
    """The loss as the receiving application sees it: offered by w1's iperf3 but not read
    by w2's (iperf3's own count of missing sequence numbers)."""
    read, offered, _ = r
    return (offered - read) / offered if offered else 1.0


def zero_loss(lab, full, loss=loss):
    """RFC 2544 throughput (see the module doc) from the full-rate run `full`:
    (kpps, sender-limited) or None. `loss`: which loss a trial is judged by."""
    if full is None:
        return None
    if loss(full) <= LOSS_OK:  # the datapath carried all the sender could offer
        return full[1] / 1e3, True
    best, lo, hi = 0.0, 0.0, full[1] / 1e3
    for _ in range(5):  # bisect between the last pass and the last failure
        mid = (lo + hi) / 2
        r = iperf(lab, udp=True, kpps=mid, seconds=TRIAL_SECONDS)
        if r is None:
            return None
        if loss(r) <= LOSS_OK:
            best, lo = max(best, r[1] / 1e3), mid
        else:
            hi = mid
    return best, False


ROWS = []


def cpu_seconds(pids, user_only=False):
    """utime + stime (or utime alone) in seconds of the given processes and their threads."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + (0 if user_only else int(f[12]))
    return total / tick


def measure(lab, name, pids=()):
    c0, u0 = cpu_seconds(pids), cpu_seconds(pids, user_only=True)
    pps = iperf(lab, udp=True)
    c1, u1 = cpu_seconds(pids), cpu_seconds(pids, user_only=True)
    gbps, retx = iperf(lab, udp=False) or (None, None)
    c2 = cpu_seconds(pids)
    # Datapath CPU per packet in the UDP run: both hosts' CPU seconds over the frames they
    # forwarded (host 1: what w1 offered, host 2: what reached w2), a figure that depends
    # little on how busy the machine is (unlike the rates).
    # 'usr': the same in user time only (what the forwarder's own code costs; the rest is the
    # kernel's socket and veth work, done in our system calls). The kernel splits utime and
    # stime by sampling at each tick: a rough figure, callgrind.py counts exactly.
    ns_pkt = usr_pkt = None
    if pids and pps is not None:
        frames = (pps[1] + pps[2]) * SECONDS
        ns_pkt = (c1 - c0) / frames * 1e9 if frames else None
        usr_pkt = (u1 - u0) / frames * 1e9 if frames else None
    tcp_cpu = (c2 - c1) if pids else None
    zl = (zero_loss(lab, pps), zero_loss(lab, pps, app_loss)) if RFC2544 and not FIXED else (None, None)
    ROWS.append((name, pps, gbps, (ns_pkt, usr_pkt), tcp_cpu, os.getloadavg()[0], zl, retx))
    print(f"  measured {name}", flush=True)


def print_table():
    print()
    print(f"{'datapath':<30} {'UDP 64B to iperf3':>17} {'into w2':>9} {'offered':>9} "
          f"{'ns/pkt':>7} {'usr':>5} {'TCP 1 stream':>13} {'CPU s/GB':>8} {'load':>5}"
          f" {'0-loss kpps':>11} {'0-loss app':>10} {'retx':>6}")
    for name, pps, gbps, (ns_pkt, usr_pkt), tcp_cpu, load, zl, retx in ROWS:
        if pps is None:
            p = f"{'failed':>17} {'':>9} {'':>9}"
        else:
            p = f"{pps[0] / 1e3:>12.1f} kpps {pps[2] / 1e3:>9.1f} {pps[1] / 1e3:>9.1f}"
        g = f"{'failed':>13}" if gbps is None else f"{gbps:>6.2f} Gbit/s"
        n = f"{'-':>7}" if ns_pkt is None else f"{ns_pkt:>7.0f}"
        n += f" {'-':>5}" if usr_pkt is None else f" {usr_pkt:>5.0f}"
        c = (f"{'-':>8}" if tcp_cpu is None or not gbps
             else f"{tcp_cpu / (gbps * SECONDS / 8):>8.2f}")
        z = " ".join(f"{'-':>{w}}" if v is None else f"{v[0]:>{w - 2}.1f} {'s' if v[1] else ' '}"
                     for v, w in zip(zl, (11, 10)))
        r = f"{'-':>6}" if retx is None else f"{retx:>6}"
        print(f"{name:<30} {p} {n} {g} {c} {load:>5.1f} {z} {r}")


def kernel_vxlan(lab, up):
    for i, j in ((1, 2), (2, 1)):
        ns = lab.h[i]
        if up:
            run("ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "5001", "local",
                f"{FABRIC_NET}.{i}", "remote", f"{FABRIC_NET}.{j}", "dstport", "4789",
                "dev", f"f{i}")
            run("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", ns, "link", "set", "vx0", "master", "br0")
            run("ip", "-n", ns, "link", "set", f"tap{i}", "master", "br0")
            for d in ("vx0", "br0"):
                run("ip", "-n", ns, "link", "set", d, "up")
        else:
            run("ip", "-n", ns, "link", "del", "vx0", check=False)
            run("ip", "-n", ns, "link", "del", "br0", check=False)


def measure_peers(lab):
    """The kernel VXLAN and OVS rows (same topology, same workloads)."""
    kernel_vxlan(lab, True)
    measure(lab, "kernel vxlan (bridge)")
    kernel_vxlan(lab, False)
    if shutil.which("ovs-vswitchd") is None:
        print("open vswitch (netdev): not installed: not measured (run.sh installs it)")
        return
    ovs = Ovs(lab)
    try:
        ovs.up()
        pids = [p.pid for p in ovs.procs]
        measure(lab, "open vswitch netdev vxlan", pids)
    finally:
        ovs.close()


def main():
    binary = Path(os.environ.get("FILAMENT_BIN", REPO / "target" / "release" / "filament"))
    for tool in ("ip", "iperf3", "ethtool"):
        if shutil.which(tool) is None:
            sys.exit(f"missing tool: {tool}")
    work = Path(tempfile.mkdtemp(prefix="fl-bench-dp-"))
    lab = Lab(binary, work)
    try:
        lab.build()
        if POLICY:
            lab.allow_iperf3_flows()
        offloads_off(lab)
        print(f"forwarder: {binary} {' '.join(VROUTER_ARGS)}; {SECONDS} s per run; "
              f"nproc {os.cpu_count()}; load {os.getloadavg()[0]:.1f}"
              + (f"; fixed load {FIXED[0]:g} kpps UDP, {FIXED[1]:g} Mbit/s TCP" if FIXED else "")
              + ("; policy vifs with installed flows" if POLICY else ""))
        for io in IO_MODES:
            for encap in ENCAPS:
                lab.set_workload_neighbors(encap != "vxlan")
                # "default": no --io argument (binaries from before the flag); "af-xdp:2":
                # AF_XDP with two run loops (--cores 2).
                mode, _, cores = io.partition(":")
                name = f"filament {io} {encap}" + (" policy" if POLICY else "")
                extra = [*VROUTER_ARGS, *([] if mode == "default" else ["--io", mode]),
                         *(["--cores", cores] if cores else [])]
                try:
                    lab.start_vrouters(encap, extra)
                except AssertionError as e:
                    print(f"  {name}: did not start: {str(e)[-300:]}")
                    ROWS.append((name, None, None, (None, None), None, os.getloadavg()[0],
                                 (None, None), None))
                    continue
                pids = [p.pid for p, _ in lab.vrouters.values()]
                measure(lab, name, pids)
                shells = [json.loads(lab.vrouter_cli(i, "dropstats", "--json")).get("shell", {})
                          for i in (1, 2)]
                print("    frames in place (h1, h2): "
                      + ", ".join(f"{s.get('in_place', '-')} ({s.get('in_place_flows', '-')} "
                                  "by flow)" for s in shells), flush=True)
                lab.stop_vrouters()
        lab.set_workload_neighbors(False)
        if PEERS:
            measure_peers(lab)
        print_table()
        print("'to iperf3' is what the receiving iperf3 read; 'into w2' counts frames the "
              "datapath handed to workload 2 (the rest overflowed its socket buffer: on a "
              "2-core machine the receiver competes with the forwarders for CPU); 'offered' is "
              "what the sender's iperf3 wrote. 'ns/pkt': datapath CPU time (both hosts' "
              "processes) per frame forwarded in the UDP run ('usr': user time only); 'CPU s/GB': "
              "datapath CPU seconds "
              "per GB moved in the TCP run. Rates depend on the machine's load; the CPU figures "
              "much less. 'retx': TCP segments the sender retransmitted in the TCP run. "
              "'0-loss kpps': RFC 2544 throughput, the highest offered 64-byte rate "
              f"the datapath carried into w2 with at most {LOSS_OK:.1%} loss ('s': the sender "
              "could offer no more: a kernel datapath forwards in the sender's system calls); "
              "'0-loss app': the same search judged by what the receiving iperf3 read (the "
              "datapath, the receiver's CPU share and its socket buffer together).")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
