"""Forwarder benchmark across namespaces (issue 5, "Benchmarks"): workload to workload on two
hosts joined by a veth fabric, 64-byte UDP delivered pps and 1-stream TCP Gbit/s, through

* ``filament vrouter run`` (static tables; MPLSoUDP and VXLAN), and
* Linux kernel VXLAN (vxlan device + bridge per host) in the same topology.

Open vSwitch is not installed on this machine, so its userspace (netdev) datapath is not
measured (said in the output). Tx offloads are turned off on every veth in both setups for
fairness. Figures are printed, never asserted. Run as root through ``run.sh``.
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

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
# Extra `filament vrouter run` arguments, e.g. "--ring-block-kb 32".
VROUTER_ARGS = os.environ.get("VROUTER_ARGS", "").split()
UDP_PAYLOAD = 18  # 14 Ethernet + 20 IPv4 + 8 UDP + 18 = 64-byte frames (without FCS)


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


def iperf(lab, udp):
    server, _ = lab.spawn(lab.w[2], ["iperf3", "-s", "-1", "-p", "5201"], "iperf3-server")
    before = tap2_tx_packets(lab)
    time.sleep(0.3)
    args = ["iperf3", "-c", WL_IP[2], "-p", "5201", "-t", str(SECONDS), "-J"]
    if udp:
        args += ["-u", "-b", "0", "-l", str(UDP_PAYLOAD)]
    out = nsrun(lab.w[1], *args, check=False, timeout=SECONDS + 30)
    lab._stop(server)
    if out.returncode != 0:
        return None
    end = json.loads(out.stdout)["end"]
    if udp:
        s = end["sum"]
        delivered = s["packets"] - s["lost_packets"]
        to_wl = tap2_tx_packets(lab) - before
        return delivered / s["seconds"], s["packets"] / s["seconds"], to_wl / s["seconds"]
    return end["sum_received"]["bits_per_second"] / 1e9


def measure(lab, name):
    pps = iperf(lab, udp=True)
    gbps = iperf(lab, udp=False)
    if pps is None:
        pps_s = "failed"
    else:
        pps_s = (f"{pps[0] / 1e3:6.1f} kpps to iperf3, {pps[2] / 1e3:6.1f} kpps into w2's "
                 f"stack ({pps[1] / 1e3:.1f} offered)")
    gbps_s = "failed" if gbps is None else f"{gbps:6.2f} Gbit/s"
    print(f"{name:<24} 64B UDP {pps_s:<62} TCP 1 stream {gbps_s}", flush=True)


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


def main():
    binary = Path(os.environ.get("FILAMENT_BIN", REPO / "target" / "release" / "filament"))
    for tool in ("ip", "iperf3", "ethtool"):
        if shutil.which(tool) is None:
            sys.exit(f"missing tool: {tool}")
    work = Path(tempfile.mkdtemp(prefix="fl-bench-dp-"))
    lab = Lab(binary, work)
    try:
        lab.build()
        offloads_off(lab)
        print(f"forwarder: {binary} {' '.join(VROUTER_ARGS)}; {SECONDS} s per run; "
              f"nproc {os.cpu_count()}; load {os.getloadavg()[0]:.1f}")
        for encap, routed in (("mpls_over_udp", True), ("vxlan", False)):
            lab.set_workload_neighbors(routed)
            lab.start_vrouters(encap, VROUTER_ARGS)
            measure(lab, f"filament {encap}")
            lab.stop_vrouters()
        lab.set_workload_neighbors(False)
        kernel_vxlan(lab, True)
        measure(lab, "kernel vxlan (bridge)")
        kernel_vxlan(lab, False)
        if shutil.which("ovs-vswitchd") is None:
            print("open vswitch (netdev)    not installed on this machine: not measured")
        print("'to iperf3' is what the receiving iperf3 read; 'into w2's stack' counts frames "
              "the datapath handed to workload 2 (the rest overflowed its socket buffer: on a "
              "2-core machine the receiver competes with both forwarder threads for CPU)")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
