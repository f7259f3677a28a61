"""User-space instructions per forwarded frame of ``filament vrouter run`` (callgrind:
deterministic, unlike CPU time on a shared 2-core machine), for A/B comparisons of binaries or
flags. The lab of bench.py (two hosts, a veth fabric, one workload each); both forwarders run
under ``valgrind --tool=callgrind``; counters are zeroed (``callgrind_control -z``) once the
tables are installed and dumped (``-d``) right after the traffic, so startup and installs are
not counted (whole process: the run loop, and the few idle wakeups of the other threads). Tx
offloads are off on every veth, as in bench.py. Each variant runs a fixed-rate 64-byte UDP stream and, separately, a paced
TCP stream; instructions are divided by the frames each host's forwarder received (all its
vifs' rx counters: h1 encapsulates, h2 decapsulates) and, for TCP, also by the KB moved.

Usage (root)::

    python3 bench/dataplane/callgrind.py NAME=BINARY[,ARG...] ...
    e.g. base=/tmp/filament-base new-copy=target/release/filament,--no-in-place \\
         new=target/release/filament

Environment: ``BENCH_ENCAPS`` (default "mpls_over_udp vxlan"), ``BENCH_POLICY=1`` (policy on the
workload vifs with installed flows, as in bench.py), ``CG_PACKETS`` (UDP packets, default
20000), ``CG_KPPS`` (their rate, default 5), ``CG_TCP`` ("MBIT:SECONDS", default "40:4"),
``CG_OFFLOADS=on`` (leave the veths' tx offloads on: TSO super-frames cut by the shell).
Prints one table; asserts nothing.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from dataplane_lab import WL_IP, Lab, nsrun, run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import offloads_off  # noqa: E402

ENCAPS = os.environ.get("BENCH_ENCAPS", "mpls_over_udp vxlan").split()
POLICY = os.environ.get("BENCH_POLICY") == "1"
PACKETS = int(os.environ.get("CG_PACKETS", "20000"))
KPPS = float(os.environ.get("CG_KPPS", "5"))
TCP_MBIT, TCP_SECONDS = (float(x) for x in os.environ.get("CG_TCP", "40:4").split(":"))
OFFLOADS = os.environ.get("CG_OFFLOADS") == "on"
UDP_PAYLOAD = 18  # 64-byte frames


def wrapper(work, name, binary):
    """A script standing in for the binary: `vrouter run` under callgrind, the CLI as is."""
    out = work / f"cg-{name}"
    out.mkdir()
    w = work / f"filament-{name}"
    w.write_text(f"""#!/bin/sh
if [ "$1" = vrouter ] && [ "$2" = run ]; then
  exec valgrind --tool=callgrind --callgrind-out-file={out}/callgrind.out.%p \\
    {binary} "$@"
fi
exec {binary} "$@"
""")
    w.chmod(0o755)
    return w, out


def rx_frames(lab, i):
    vifs = json.loads(lab.vrouter_cli(i, "dump", "interfaces", "--json"))
    return sum(v["stats"]["rx_packets"] for v in vifs)


def traffic(lab, udp):
    server, _ = lab.spawn(lab.w[2], ["iperf3", "-s", "-1", "-p", "5201"], "iperf3-server")
    time.sleep(1.0)
    args = ["iperf3", "-c", WL_IP[2], "-p", "5201", "-J"]
    if udp:
        args += ["-u", "-l", str(UDP_PAYLOAD), "-b", f"{KPPS * 1000 * UDP_PAYLOAD * 8:.0f}",
                 "-n", str(PACKETS * UDP_PAYLOAD)]
    else:
        args += ["-b", f"{TCP_MBIT:.0f}M", "-t", f"{TCP_SECONDS:g}"]
    out = nsrun(lab.w[1], *args, check=False, timeout=300)
    lab._stop(server)
    if out.returncode != 0:
        return None
    end = json.loads(out.stdout)["end"]
    return end["sum"]["bytes"] if udp else end["sum_received"]["bytes"]


def stop(lab):
    """SIGTERM both forwarders and give callgrind time to write its output."""
    for p, _ in lab.vrouters.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p, _ in lab.vrouters.values():
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            lab._stop(p)
    lab.vrouters = {}


def instructions(out_dir, pid):
    """Ir of the first dump (`callgrind_control -d`) of process `pid`."""
    for f in out_dir.glob(f"callgrind.out.{pid}.1"):
        for line in f.read_text(errors="replace").splitlines():
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    return None


def main():
    variants = []
    for a in sys.argv[1:]:
        name, _, spec = a.partition("=")
        binary, *extra = spec.split(",")
        variants.append((name, Path(binary).resolve(), extra))
    if not variants:
        sys.exit(__doc__)
    work = Path(tempfile.mkdtemp(prefix="fl-bench-cg-"))
    lab = Lab(variants[0][1], work)
    lab.start_timeout = 120
    rows = []
    try:
        lab.build()
        if POLICY:
            lab.allow_iperf3_flows()
        # As bench.py: tx offloads off on every veth (no TSO super-frames to segment), unless
        # CG_OFFLOADS=on (the lab's default: w1's TCP arrives as super-frames the shell cuts).
        if not OFFLOADS:
            offloads_off(lab)
        for encap in ENCAPS:
            lab.set_workload_neighbors(encap != "vxlan")
            for name, binary, extra in variants:
                w, out = wrapper(work, f"{name}-{encap}", binary)
                lab.binary = w
                row = [name, encap]
                for udp in (True, False):
                    lab.start_vrouters(encap, extra)
                    pids = {i: p.pid for i, (p, _) in lab.vrouters.items()}
                    before = [rx_frames(lab, i) for i in (1, 2)]
                    for i in (1, 2):
                        run("callgrind_control", "-z", str(pids[i]))
                    moved = traffic(lab, udp)
                    for i in (1, 2):
                        run("callgrind_control", "-d", str(pids[i]))
                    frames = [rx_frames(lab, i) - b for i, b in zip((1, 2), before)]
                    stop(lab)
                    # `ip netns exec` execs the wrapper, which execs valgrind: same pid.
                    irs = [instructions(out, pids[i]) for i in (1, 2)]
                    row.append((moved, frames, irs))
                rows.append(row)
                print(f"  measured {name} {encap}: {row[2:]}", flush=True)
    finally:
        lab.close()
    print(f"\ncallgrind, whole process between zero and dump; policy {'on' if POLICY else 'off'}; "
          f"offloads {'on' if OFFLOADS else 'off'}; "
          f"UDP {PACKETS} x 64 B at {KPPS:g} kpps; TCP {TCP_MBIT:g} Mbit/s for {TCP_SECONDS:g} s")
    print(f"{'variant':<16} {'encap':<14} {'UDP Ir/frame h1 / h2':>22} "
          f"{'TCP Ir/frame h1 / h2':>22} {'TCP Ir/KB h1 / h2':>20}")

    def per(ir, n):
        return f"{ir / n:.0f}" if ir and n else "-"

    for name, encap, (_, uf, ui), (tb, tf, ti) in rows:
        kb = (tb or 0) / 1000
        print(f"{name:<16} {encap:<14} {per(ui[0], uf[0]) + ' / ' + per(ui[1], uf[1]):>22} "
              f"{per(ti[0], tf[0]) + ' / ' + per(ti[1], tf[1]):>22} "
              f"{per(ti[0], kb) + ' / ' + per(ti[1], kb):>20}")


if __name__ == "__main__":
    main()
