"""A two-host overlay lab in network namespaces for the forwarder tests.

::

    w1 (10.1.1.3)            h1                      h2             w2 (10.1.1.4)
    eth0 ──veth── tap1 [filament vrouter run] f1 ══ fabric ══ f2 [filament vrouter run] tap2 ──veth── eth0
                         192.168.77.1/24                 192.168.77.2/24

Each host namespace runs ``filament vrouter run --tables`` with static tables
(no agent; no policy unless :meth:`Lab.allow_iperf3_flows`): vif 0 = fabric, vif 1 = the
workload's tap, VRF 1.
Workloads get static neighbour entries (so that VXLAN can be bridged: the standalone
forwarder would answer ARP and ND with the gateway MAC, test_forwarder_walk.py): for the
MPLS encapsulations the peer's IP maps to the gateway MAC (routed, L3 label), for
VXLAN to the peer's real MAC (bridged, VNI).

With ``fabric_switch=True`` the fabric is two veths joined by a bridge in a third namespace
(``s``: ``f1 ── s1 [br0] s2 ── f2``): captures there see every fabric packet whatever the
hosts' I/O mode (AF_XDP receive and transmit bypass the packet taps on the hosts' own fabric
interfaces, so tcpdump on f2 would miss them). :meth:`Lab.fabric_tap` names the capture point.

Everything created here is removed by :meth:`Lab.close`, also after failures.
"""

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

GATEWAY_MAC = "00:00:5e:00:01:00"
FABRIC_NET = "192.168.77"
WL_MAC = {1: "02:00:00:00:01:03", 2: "02:00:00:00:01:04"}
WL_IP = {1: "10.1.1.3", 2: "10.1.1.4"}
LABEL = {1: 16, 2: 17}  # label of each host's workload (TF allocates from 16)
VNI = 5001
WORKLOAD_MTU = 1400  # room for the outer headers on a 1500-byte fabric


def run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def nsrun(ns, *args, check=True, **kw):
    return run("ip", "netns", "exec", ns, *args, check=check, **kw)


def module_lab(tmp_path_factory, name, prepare=None, after_build=None):
    """The body of a module-scoped ``lab`` fixture (``yield from module_lab(...)``): a
    :class:`Lab` with the fabric switch, built, closed at the end, also on failure;
    skips when FILAMENT_BIN is not built.  ``prepare(lab)`` runs before the build,
    ``after_build(lab)`` after it."""
    # Imported here: the benches (bench/dataplane) use this module without pytest.
    import pytest
    from conftest import filament_bin

    binary = filament_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.skip(f"FILAMENT_BIN {binary} not built")
    # A bridge in the middle of the fabric: the capture point sees AF_XDP traffic too.
    lab = Lab(binary, tmp_path_factory.mktemp(name), fabric_switch=True)
    try:
        if prepare:
            prepare(lab)
        lab.build()
        if after_build:
            after_build(lab)
        yield lab
    finally:
        lab.close()


class Lab:
    def __init__(self, binary: Path, work: Path, fabric_switch: bool = False):
        self.binary = binary
        self.work = work
        tag = uuid.uuid4().hex[:6]
        self.h = {1: f"fl-h1-{tag}", 2: f"fl-h2-{tag}"}
        self.w = {1: f"fl-w1-{tag}", 2: f"fl-w2-{tag}"}
        self.s = f"fl-s-{tag}" if fabric_switch else None
        self.procs = []
        self.logs = []
        # False: no static fabric neighbour in the tables; the forwarders resolve each other's
        # fabric MAC with ARP (answered by the peer host's kernel).
        self.static_fabric_neighbors = True
        # Policy on the workload vifs (flow lookup, as the agent sets them) with these
        # installed flows (FlowSpec JSON); see allow_iperf3_flows.
        self.policy = False
        self.flows = []
        # Seconds `vrouter run` may take to start (longer under valgrind).
        self.start_timeout = 20

    # -- topology -----------------------------------------------------------
    def namespaces(self):
        return [*self.h.values(), *self.w.values(), *([self.s] if self.s else [])]

    def fabric_tap(self):
        """(namespace, interface) where a capture sees both directions of the fabric."""
        return (self.s, "s2") if self.s else (self.h[2], "f2")

    def build(self):
        for ns in self.namespaces():
            run("ip", "netns", "add", ns)
            nsrun(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            nsrun(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        # fabric
        if self.s:
            run("ip", "-n", self.s, "link", "add", "br0", "type", "bridge")
            for i in (1, 2):
                run("ip", "link", "add", f"fl-f{i}-tmp", "netns", self.h[i], "type", "veth",
                    "peer", "name", f"s{i}", "netns", self.s)
                run("ip", "-n", self.s, "link", "set", f"s{i}", "master", "br0", "up")
            run("ip", "-n", self.s, "link", "set", "br0", "up")
        else:
            run("ip", "link", "add", "fl-f1-tmp", "netns", self.h[1], "type", "veth",
                "peer", "name", "fl-f2-tmp", "netns", self.h[2])
        for i in (1, 2):
            ns = self.h[i]
            run("ip", "-n", ns, "link", "set", f"fl-f{i}-tmp", "name", f"f{i}")
            run("ip", "-n", ns, "addr", "add", f"{FABRIC_NET}.{i}/24", "dev", f"f{i}")
            run("ip", "-n", ns, "link", "set", f"f{i}", "up")
        # workloads
        for i in (1, 2):
            run("ip", "link", "add", f"fl-tap{i}-tmp", "netns", self.h[i], "type", "veth",
                "peer", "name", f"fl-eth{i}-tmp", "netns", self.w[i])
            run("ip", "-n", self.h[i], "link", "set", f"fl-tap{i}-tmp", "name", f"tap{i}")
            run("ip", "-n", self.h[i], "link", "set", f"tap{i}", "up")
            wns = self.w[i]
            run("ip", "-n", wns, "link", "set", f"fl-eth{i}-tmp", "name", "eth0")
            run("ip", "-n", wns, "link", "set", "eth0", "address", WL_MAC[i], "mtu",
                str(WORKLOAD_MTU), "up")
            run("ip", "-n", wns, "addr", "add", f"{WL_IP[i]}/24", "dev", "eth0")
            # Offloads left ON (the defaults): TSO super-frames are segmented by the
            # forwarder's shell and partial checksums completed by its core.

    def fabric_mac(self, i):
        out = run("ip", "-n", self.h[i], "-j", "link", "show", f"f{i}").stdout
        return json.loads(out)[0]["address"]

    def set_workload_neighbors(self, routed: bool):
        for i, j in ((1, 2), (2, 1)):
            mac = GATEWAY_MAC if routed else WL_MAC[j]
            run("ip", "-n", self.w[i], "neigh", "replace", WL_IP[j], "lladdr", mac,
                "dev", "eth0", "nud", "permanent")

    def allow_iperf3_flows(self, first_port=50000, ports=128, server_port=5201):
        """Turn policy on for both workload vifs and install, on both hosts, Forward flows (both
        directions) for every TCP and UDP 5-tuple iperf3 between w1 and w2 can use: w1's
        ephemeral ports are narrowed to [first_port, first_port + ports). No agent runs, so a
        packet of any other flow is punted and dropped."""
        nsrun(self.w[1], "sysctl", "-qw",
              f"net.ipv4.ip_local_port_range={first_port} {first_port + ports - 1}")
        self.policy = True
        self.flows = [
            {"op": "add_flow", "action": "forward",
             "key": {"vrf": 1, "proto": proto, "src": WL_IP[1], "dst": WL_IP[2],
                     "sport": port, "dport": server_port}}
            for proto in (6, 17) for port in range(first_port, first_port + ports)
        ]

    # -- tables ---------------------------------------------------------------
    def tables(self, i, encap):
        """Static tables of host i for encap 'mpls_over_udp' | 'mpls_over_gre' | 'vxlan'."""
        j = 2 if i == 1 else 1
        if encap == "vxlan":
            tun = {"type": "vxlan", "vni": VNI}
        else:
            tun = {"type": encap, "label": LABEL[j]}
        payload = "ethernet" if encap == "vxlan" else "ip"
        return {
            "interfaces": [
                {"ifname": f"f{i}", "id": 0, "kind": "fabric", "ip": f"{FABRIC_NET}.{i}"},
                {"ifname": f"tap{i}", "id": 1, "kind": "workload", "vrf": 1,
                 "ip": WL_IP[i], "policy": self.policy},
            ],
            "ops": [
                {"op": "add_nexthop", "id": 1, "type": "encap", "vif": 1,
                 "dst_mac": WL_MAC[i], "src_mac": GATEWAY_MAC},
                {"op": "add_nexthop", "id": 2, "type": "tunnel", "vif": 0,
                 "src_ip": f"{FABRIC_NET}.{i}", "dst_ip": f"{FABRIC_NET}.{j}",
                 "encap": tun},
                *([{"op": "add_neighbor", "vif": 0, "ip": f"{FABRIC_NET}.{j}",
                    "mac": self.fabric_mac(j)}] if self.static_fabric_neighbors else []),
                {"op": "add_route", "vrf": 1, "prefix": f"{WL_IP[i]}/32", "nh": 1},
                {"op": "add_route", "vrf": 1, "prefix": f"{WL_IP[j]}/32", "nh": 2},
                {"op": "add_bridge", "vrf": 1, "mac": WL_MAC[i], "nh": 1},
                {"op": "add_bridge", "vrf": 1, "mac": WL_MAC[j], "nh": 2},
                {"op": "add_label", "label": LABEL[i], "nh": 1, "payload": payload},
                {"op": "add_vni", "vni": VNI, "vrf": 1},
                *self.flows,
            ],
        }

    # -- processes -----------------------------------------------------------
    def spawn(self, ns, args, name):
        log = self.work / f"{name}.log"
        f = open(log, "wb")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=f,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env={**os.environ, "NO_COLOR": "1"})
        f.close()
        self.procs.append(p)
        self.logs.append(log)
        return p, log

    def start_vrouters(self, encap, extra=()):
        self.vrouters = {}
        for i in (1, 2):
            path = self.work / f"tables-h{i}-{encap}.json"
            path.write_text(json.dumps(self.tables(i, encap), indent=1))
            p, log = self.spawn(self.h[i], [str(self.binary), "vrouter", "run", "--tables",
                                            str(path), "--listen", "127.0.0.1:9091", *extra],
                                f"vrouter-h{i}-{encap}")
            self.vrouters[i] = (p, log)
        for i, (p, log) in self.vrouters.items():
            deadline = time.monotonic() + self.start_timeout
            while b"vrouter running" not in log.read_bytes():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"vrouter on h{i} did not start:\n"
                                         + log.read_text(errors="replace"))
                time.sleep(0.05)

    def stop_vrouters(self):
        for p, _ in getattr(self, "vrouters", {}).values():
            self._stop(p)
        self.vrouters = {}

    def vrouter_cli(self, i, *args):
        return nsrun(self.h[i], str(self.binary), "vrouter", *args).stdout

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def log_tails(self, lines=30):
        out = []
        for log in self.logs:
            try:
                text = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {log.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def close(self):
        for p in self.procs:
            self._stop(p)
        for ns in self.namespaces():
            # Anything still running in our namespaces (started by this lab) goes too.
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", ns, check=False)
