"""Shared pieces of the BGP benchmarks (issue 4): the network namespace, the
BIRD 2 route generator, /proc readers and the product as device under test.

* `Lab`: a fresh network namespace with the generator (10.77.0.5) and DUT
  (10.77.0.1) addresses on its loopback (plus any extra addresses); processes
  started with `spawn` are stopped by pid on `close`.
* `start_generator` / `enable_feed`: BIRD with N static VPNv4 routes over R
  RDs and a disabled BGP feed; the clock starts when the feed is Established.
* `Filament`: `filament up --no-control` (config API) and `filament control`
  (the control node: speaker + RIB) in the namespace, configured over REST
  the way a user does it: bgp-router objects and refs between them
  (tf-facts §3).
* `capture_reflected`: the first UPDATEs a client is sent, decoded by tshark,
  to show the ORIGINATOR_ID / CLUSTER_LIST a route reflector adds (RFC 4456 §8).

Used by ingest.py and reflect.py.
"""

import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GEN, DUT = "10.77.0.5", "10.77.0.1"
FABRIC = ["default-domain", "default-project", "ip-fabric", "__default__"]


def status_kb(pid, field):
    """A kB figure of /proc/<pid>/status (e.g. "VmRSS"), or None when the
    process or the field is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


def rss_kb(pid):
    """Resident set size of a process (VmRSS)."""
    return status_kb(pid, "VmRSS")


def hwm_kb(pid):
    """Peak RSS of a process (VmHWM)."""
    return status_kb(pid, "VmHWM")


def cpu_s(pid):
    """User + system CPU seconds of a process (the figure to compare on a
    busy machine: wall-clock time depends on what else runs)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Lab:
    def __init__(self, extra_addrs=()):
        self.ns = "fbgpb-" + uuid.uuid4().hex[:6]
        self.work = Path(tempfile.mkdtemp(prefix="fbgpb-"))
        os.chmod(self.work, 0o755)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.procs = []
        self.closing = threading.Event()
        self.run("ip", "link", "set", "lo", "up")
        for a in (GEN, DUT, *extra_addrs):
            self.run("ip", "addr", "add", f"{a}/32", "dev", "lo")

    def cmd(self, *a):
        return ["ip", "netns", "exec", self.ns, *a]

    def run(self, *a, check=True):
        return subprocess.run(self.cmd(*a), check=check, capture_output=True, text=True)

    def spawn(self, argv, log, **kw):
        p = subprocess.Popen(self.cmd(*argv), stderr=open(self.work / log, "w"), **kw)
        self.procs.append(p)
        return p

    def close(self):
        self.closing.set()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["ip", "netns", "del", self.ns], check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def generator_conf(lab, n, rds, feed_as=65010, dut_as=64512):
    """BIRD config with n static VPNv4 routes over `rds` RDs, BGP feed disabled
    (eBGP by default; iBGP when feed_as == dut_as)."""
    per = n // rds
    lines = [
        # the feed's state changes with microsecond times: the clock starts at its log line
        f'log "{lab.work}/gen.events" all;',
        'timeformat log "%F %T.%6f";',
        f"router id {GEN};",
        "vpn4 table vpntab;",
        "protocol device {}",
        "protocol static gen {",
        "  vpn4 { table vpntab; import filter { bgp_ext_community.add((rt, 64512, 8000001)); accept; }; };",
    ]
    for r in range(rds):
        for i in range(per):
            lines.append(f"  route 100:{r + 1} 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32 blackhole;")
    lines += [
        "}",
        "protocol bgp feed {",
        "  debug { states };",
        "  disabled;",
        f"  local {GEN} as {feed_as}; neighbor {DUT} as {dut_as}; multihop; strict bind yes;",
        "  vpn4 mpls { table vpntab; import none; export all; next hop self; };",
        "}",
    ]
    conf = lab.work / "gen.conf"
    conf.write_text("\n".join(lines) + "\n")
    return per * rds


def start_generator(lab, n, rds, feed_as=65010):
    total = generator_conf(lab, n, rds, feed_as)
    ctl = lab.work / "gen.ctl"
    lab.spawn(["bird", "-f", "-c", str(lab.work / "gen.conf"), "-s", str(ctl)], "gen.log")
    # Wait until every static route is in the table.
    while True:
        out = lab.run("birdc", "-s", str(ctl), "show", "route", "count", "table", "vpntab", check=False).stdout
        if f"{total} of {total} routes" in out:
            return total, ctl
        time.sleep(0.5)


# When birdc first showed the feed Established (per run, time.monotonic()).
FEED = {"est": 0.0}


def logged_established(lab):
    """time.monotonic() of the generator's own "feed: State changed to up" log line (BIRD
    logs it with microseconds), or None."""
    try:
        lines = (lab.work / "gen.events").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "feed: State changed to up" in line:  # the session is Established (debug states)
            stamp = datetime.datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S.%f")
            return stamp.timestamp() - (time.time() - time.monotonic())
    return None


def keep_generator_awake(lab, ctl, every=0.05):
    """Ask the generator for its status every `every` s until the lab closes.

    BIRD 2.0.12 as the generator stalls for ~3 s with routes still to send: after a
    burst of UPDATEs its I/O loop polls with a 3000 ms timeout and no pending event,
    and sends the rest only when that timeout expires (seen with strace: `poll(...,
    3000) = 0 (Timeout)` between two writes on the BGP socket). 50k routes took 3.1 s
    into a receiver that only counts, 0.15 s with a `birdc` query every 50 ms; 200k
    3.5 s and 0.68 s. Any socket activity wakes the loop, so a query from this thread
    keeps the feed going for every DUT alike (it costs the generator, not the DUT)."""
    def run():
        while not lab.closing.wait(every):
            lab.run("birdc", "-s", str(ctl), "show", "status", check=False)
    threading.Thread(target=run, daemon=True).start()


def start_feed(lab, ctl):
    """Enable the generator's feed (its CPU so far is recorded) and keep it awake."""
    FEED["gen_cpu"] = cpu_s(lab.procs[0].pid) or 0.0  # the generator is the first process
    lab.run("birdc", "-s", str(ctl), "enable", "feed")
    keep_generator_awake(lab, ctl)


def enable_feed(lab, ctl):
    """Start the feed; return when the generator's session is Established (the
    clock starts there for every DUT, so connection setup is not counted).
    birdc answers late while the generator is busy sending (seen: seconds), so the
    printed time starts at the generator's log line for the same moment instead."""
    start_feed(lab, ctl)
    while True:
        out = lab.run("birdc", "-s", str(ctl), "show", "protocols", "feed", check=False).stdout
        if "Established" in out:
            FEED["est"] = time.monotonic()
            return FEED["est"]
        time.sleep(0.02)


def wait_count(fn, total, timeout=600, every=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (fn() or 0) >= total:
            return time.monotonic()
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {total} routes")


def http(lab, method, url, body=None):
    """HTTP inside the namespace (the API and introspect listen on its loopback)."""
    args = ["curl", "-s", "-m", "10", "-X", method, url, "-H", "Content-Type: application/json"]
    if body is not None:
        args += ["-d", json.dumps(body)]
    out = lab.run(*args, check=False).stdout
    try:
        return json.loads(out or "null")
    except ValueError:
        return None


def poll(fn, what, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


class Filament:
    """The product in `lab`: config API on 127.0.0.1:18082, control node `name` with BGP
    on the DUT address and introspect on 127.0.0.1:18083. `FILAMENT_BIN=path` runs
    another build, `FILAMENT_BENCH_WRAP` wraps `filament control` (e.g. perf, heaptrack)."""

    API, INTRO = "http://127.0.0.1:18082", "http://127.0.0.1:18083"

    def __init__(self, lab, name="cn1"):
        self.lab, self.name = lab, name
        self.binary = os.environ.get("FILAMENT_BIN", str(REPO / "target/release/filament"))
        self.fq = [*FABRIC, name]
        self.control = None
        lab.spawn([self.binary, "up", "--no-control", "--data-dir", str(lab.work / "data"),
                   "--listen", "127.0.0.1:18082"], "up.log", stdout=subprocess.DEVNULL)
        poll(lambda: http(lab, "GET", f"{self.API}/") is not None, "config API")

    def bgp_router(self, name, address, asn, families, router_type="router", peer_with_node=True, **params):
        """Create a bgp-router under ip-fabric's `__default__` (with a ref to the control
        node's own bgp-router when `peer_with_node`); extra `bgp_router_parameters` as
        keyword arguments (e.g. cluster_id)."""
        body = {"bgp-router": {
            "fq_name": [*FABRIC, name], "parent_type": "routing-instance",
            "bgp_router_parameters": {"address": address, "identifier": address, "autonomous_system": asn,
                                      "port": 179, "router_type": router_type,
                                      "address_families": {"family": families}, **params}}}
        if peer_with_node:
            body["bgp-router"]["bgp_router_refs"] = [{"to": self.fq, "attr": {}}]
        r = http(self.lab, "POST", f"{self.API}/bgp-routers", body)
        if not r or "bgp-router" not in r:
            raise SystemExit(f"creating bgp-router {name} failed: {r}")
        return r["bgp-router"]

    def node_router(self, asn=64512, **params):
        """The control node's own bgp-router, created before the node starts (as TF's
        provisioning does; the node registers one itself only when none exists)."""
        return self.bgp_router(self.name, DUT, asn, ["route-target", "inet-vpn", "e-vpn", "erm-vpn", "inet6-vpn"],
                               router_type="control-node", peer_with_node=False, vendor="contrail",
                               hold_time=90, **params)

    def start_control(self):
        wrap = os.environ.get("FILAMENT_BENCH_WRAP", "").split()
        self.control = self.lab.spawn(
            [*wrap, self.binary, "control", "--api", self.API, "--name", self.name,
             "--xmpp-listen", "127.0.0.1:15269", "--introspect", "127.0.0.1:18083",
             "--bgp-listen", f"{DUT}:179", "--bgp-address", DUT], "control.log", stdout=subprocess.DEVNULL)
        poll(lambda: (http(self.lab, "POST", f"{self.API}/fqname-to-id", {"type": "bgp-router", "fq_name": self.fq})
                      or {}).get("uuid"), "the control node's bgp-router")
        poll(lambda: http(self.lab, "GET", f"{self.INTRO}/neighbors") is not None, "the control node's introspect")
        return self.control

    def paths(self, table="bgp.l3vpn.0"):
        """Paths in one of the control node's tables (`GET /routes/summary`, read from
        per-table counters; its CPU is the control node's)."""
        s = http(self.lab, "GET", f"{self.INTRO}/routes/summary") or {}
        return sum(t.get("paths", 0) for t in s.get("tables", []) if t.get("name") == table)

    def neighbors(self):
        return http(self.lab, "GET", f"{self.INTRO}/neighbors")

    def log_tail(self, lines=15):
        return (self.lab.work / "control.log").read_text(errors="replace").splitlines()[-lines:]


def ip_int(addr):
    return int(ipaddress.IPv4Address(addr))


def capture_reflected(lab, src, dst, packets=40):
    """Start capturing the first `packets` TCP segments `src`:179 sends `dst` (dumpcap
    stops by itself); `reflected_attrs` decodes them."""
    pcap = lab.work / f"to-{dst}.pcapng"
    p = lab.spawn(["dumpcap", "-q", "-i", "lo", "-c", str(packets), "-w", str(pcap),
                   "-f", f"tcp and src host {src} and src port 179 and dst host {dst}"], "dumpcap.log",
                  stdout=subprocess.DEVNULL)
    return p, pcap


def reflected_attrs(lab, cap, timeout=10):
    """(UPDATEs decoded, ORIGINATOR_IDs seen, CLUSTER_LIST ids seen) in a capture from
    `capture_reflected`, as tshark decodes them."""
    p, pcap = cap
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.wait()
    if not pcap.exists():
        return 0, set(), set()
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "bgp.type == 2", "-T", "fields", "-E", "occurrence=a",
                          "-e", "bgp.type", "-e", "bgp.update.path_attribute.originator_id",
                          "-e", "bgp.path_attribute.cluster_id"],
                         capture_output=True, text=True, check=False).stdout
    updates, origs, clusters = 0, set(), set()
    for line in out.splitlines():
        types, o, c = (line.split("\t") + ["", ""])[:3]
        updates += types.split(",").count("2")  # a frame may carry several messages
        origs.update(x for x in o.split(",") if x)
        clusters.update(x for x in c.split(",") if x)
    return updates, origs, clusters
