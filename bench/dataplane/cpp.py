"""CPU per packet of ``filament vrouter run`` at a fixed offered 64-byte rate (issue 5: every
cycle the forwarders spend on a 2-core machine is a cycle the receiving application does not
get). The lab of bench.py (two hosts, a veth fabric, one workload each, tx offloads off);
w1's iperf3 offers ``CPP_KPPS`` thousand 64-byte UDP frames per second for ``CPP_SECONDS``;
for each forwarder process (h1 encapsulates, h2 decapsulates) the script reports

* ``ms/Mpkt``: CPU time (perf's ``task-clock``, all threads; utime + stime from
  /proc/<pid>/stat when perf is missing) per million frames delivered into w2 (tx counter of
  h2's tap2), with the user part (``usr``: with ``CPP_PERF``, the share of perf's samples
  outside the kernel times the task-clock; else /proc's utime, tick-sampled: rough);
* ``sys/kpkt``: system calls per thousand frames and ``wake/kpkt`` context switches per
  thousand frames (``perf stat -e raw_syscalls:sys_enter,context-switches -p PID`` over the
  same window; the wakeups of an event-driven loop are its voluntary context switches);
* ``idle ms/s``: CPU time per second of both forwarders with no traffic (after the run):
  what a busy-poll or a timer costs when nothing arrives.

A/B runs alternate the variants (``CPP_ROUNDS`` rounds) so a load change hits both alike.
Figures depend on the offered rate (a wakeup carries more frames at a higher rate): compare
variants at the same rate. Prints one table; asserts nothing. Root only.

Usage::

    python3 bench/dataplane/cpp.py NAME=BINARY[,ARG...] ...
    e.g. base=/tmp/filament-base new=target/release/filament new-bp=target/release/filament,--busy-poll-us,50

Environment: ``CPP_KPPS`` (default 100), ``CPP_SECONDS`` (5), ``CPP_IO`` (I/O modes, default
"af-packet af-xdp"), ``BENCH_ENCAPS`` (default "mpls_over_udp vxlan"), ``CPP_ROUNDS`` (1),
``CPP_IDLE`` (idle seconds measured, 3; 0 = skip), ``CPP_PERF=DIR`` (also ``perf record -g``
each forwarder over the window, into DIR/NAME-IO-ENCAP-hN.data, for ``perf report -i``).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from dataplane_lab import WL_IP, Lab, nsrun  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import UDP_PAYLOAD, cpu_seconds, offloads_off, tap2_tx_packets  # noqa: E402

KPPS = float(os.environ.get("CPP_KPPS", "100"))
SECONDS = int(os.environ.get("CPP_SECONDS", "5"))
IO_MODES = os.environ.get("CPP_IO", "af-packet af-xdp").split()
ENCAPS = os.environ.get("BENCH_ENCAPS", "mpls_over_udp vxlan").split()
ROUNDS = int(os.environ.get("CPP_ROUNDS", "1"))
IDLE = float(os.environ.get("CPP_IDLE", "3"))
PERF_DIR = os.environ.get("CPP_PERF")


def perf_stat(pid):
    """Start counting system calls and context switches of `pid` (all its threads)."""
    return subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter,context-switches,task-clock",
         "-p", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_result(p):
    """{event: count} of a perf_stat process (stopped here with SIGINT)."""
    p.send_signal(2)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        return {}
    counts = {}
    for line in err.splitlines():
        f = line.split(",")
        try:
            counts[f[2]] = float(f[0])
        except (IndexError, ValueError):
            continue
    return counts


def offer(lab, pids, tag):
    """One fixed-rate run: (frames into w2, iperf3 read, offered, [(cpu, usr) per host],
    [perf counts per host]) or None."""
    server, _ = lab.spawn(lab.w[2], ["iperf3", "-s", "-1", "-p", "5201"], "iperf3-server")
    time.sleep(0.5)
    perfs = [perf_stat(p) for p in pids]
    records = []
    if PERF_DIR:
        Path(PERF_DIR).mkdir(parents=True, exist_ok=True)
        records = [subprocess.Popen(
            ["perf", "record", "-q", "-g", "-o", f"{PERF_DIR}/{tag}-h{i}.data", "-p", str(p)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, p in zip((1, 2), pids)]
    before = tap2_tx_packets(lab)
    c0 = [(cpu_seconds([p]), cpu_seconds([p], user_only=True)) for p in pids]
    args = ["iperf3", "-c", WL_IP[2], "-p", "5201", "-t", str(SECONDS), "-J", "-u",
            "-b", f"{KPPS * 1000 * UDP_PAYLOAD * 8:.0f}", "-l", str(UDP_PAYLOAD)]
    out = nsrun(lab.w[1], *args, check=False, timeout=SECONDS + 30)
    c1 = [(cpu_seconds([p]), cpu_seconds([p], user_only=True)) for p in pids]
    into = tap2_tx_packets(lab) - before
    counts = [perf_result(p) for p in perfs]
    for r in records:
        r.send_signal(2)
        r.wait(timeout=30)
    shares = [user_share(f"{PERF_DIR}/{tag}-h{i}.data") for i in (1, 2)] if PERF_DIR else None
    lab._stop(server)
    if out.returncode != 0:
        return None
    s = json.loads(out.stdout)["end"]["sum"]
    cpu = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(c0, c1)]
    if shares and all(x is not None for x in shares):
        # The user part from the samples (precise) instead of utime (tick-sampled).
        cpu = [(c, None if k.get("task-clock") is None else k["task-clock"] / 1e3 * sh)
               for (c, _), k, sh in zip(cpu, counts, shares)]
    return into, s["packets"] - s["lost_packets"], s["packets"], cpu, counts


def user_share(path):
    """Share of a `perf record` file's samples outside the kernel (self time by DSO)."""
    out = subprocess.run(["perf", "report", "-i", path, "--stdio", "--sort", "dso", "-g", "none"],
                         capture_output=True, text=True, check=False).stdout
    user = kernel = 0.0
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0].endswith("%") and f[1].endswith("%"):
            share = float(f[1].rstrip("%"))
            if f[2].startswith("[kernel"):
                kernel += share
            else:
                user += share
    return user / (user + kernel) if user + kernel else None


def idle_cpu(pids):
    """CPU seconds per second of the given processes while nothing is offered."""
    if IDLE <= 0:
        return None
    time.sleep(0.5)
    c0 = cpu_seconds(pids)
    time.sleep(IDLE)
    return (cpu_seconds(pids) - c0) / IDLE


def main():
    variants = []
    for a in sys.argv[1:]:
        name, _, spec = a.partition("=")
        binary, *extra = spec.split(",")
        variants.append((name, Path(binary).resolve(), extra))
    if not variants:
        sys.exit(__doc__)
    work = Path(tempfile.mkdtemp(prefix="fl-bench-cpp-"))
    lab = Lab(variants[0][1], work)
    rows = []
    try:
        lab.build()
        offloads_off(lab)
        for rnd in range(ROUNDS):
            for io in IO_MODES:
                for encap in ENCAPS:
                    lab.set_workload_neighbors(encap != "vxlan")
                    for name, binary, extra in variants:
                        lab.binary = binary
                        lab.start_vrouters(encap, [*extra, "--io", io])
                        pids = [lab.vrouters[i][0].pid for i in (1, 2)]
                        # `ip netns exec` execs the binary: the same pid.
                        r = offer(lab, pids, f"{name}-{io}-{encap}")
                        idle = idle_cpu(pids)
                        lab.stop_vrouters()
                        rows.append((rnd, name, io, encap, r, idle, os.getloadavg()[0]))
                        print(f"  round {rnd} {name} {io} {encap}: done", flush=True)
    finally:
        lab.close()

    print(f"\n64-byte UDP offered at {KPPS:g} kpps for {SECONDS} s; per forwarder h1 / h2; "
          f"per frame delivered into w2")
    print(f"{'variant':<14} {'io':<10} {'encap':<14} {'into w2':>8} {'read':>7} "
          f"{'ms/Mpkt h1 / h2':>16} {'total':>6} {'usr h1 / h2':>12} {'sys/kpkt':>11} "
          f"{'wake/kpkt':>11} {'idle ms/s':>9} {'load':>5}")
    for rnd, name, io, encap, r, idle, load in rows:
        if r is None:
            print(f"{name:<14} {io:<10} {encap:<14} failed")
            continue
        into, read, offered, cpu, counts = r
        mp = into / 1e6 if into else float("nan")
        kp = into / 1e3 if into else float("nan")
        # task-clock is in ms; /proc's ticks when perf gave nothing.
        ms = [(k["task-clock"] / 1e3 if k.get("task-clock") else c) / mp * 1e3
              for (c, _), k in zip(cpu, counts)]
        us = [(u or 0) / mp * 1e3 for _, u in cpu]
        sc = [c.get("raw_syscalls:sys_enter", 0) / kp for c in counts]
        cs = [c.get("context-switches", 0) / kp for c in counts]
        i = "-" if idle is None else f"{idle * 1e3:.1f}"
        print(f"{name:<14} {io:<10} {encap:<14} {into / SECONDS / 1e3:>7.1f}k "
              f"{read / SECONDS / 1e3:>6.1f}k {ms[0]:>7.0f} / {ms[1]:<6.0f} {sum(ms):>6.0f} "
              f"{us[0]:>5.0f} / {us[1]:<4.0f} {sc[0]:>5.1f}/{sc[1]:<5.1f} "
              f"{cs[0]:>5.1f}/{cs[1]:<5.1f} {i:>9} {load:>5.1f}")
    print("ms/Mpkt: forwarder CPU ms (user + system, all threads) per million frames into w2; "
          "usr: its user part; sys/kpkt, wake/kpkt: system calls and context switches per "
          "thousand frames; idle ms/s: both forwarders' CPU per second with no traffic.")


if __name__ == "__main__":
    main()
