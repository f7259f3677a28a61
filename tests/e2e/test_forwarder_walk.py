"""The forwarder as an acceptance check drives it (issue 5): two hosts running
``filament vrouter run`` with static tables, workloads in namespaces, real tools.

What test_dataplane.py does not cover, for each encapsulation and I/O mode:

* ping in both directions, also resolving the peer with ARP and (IPv6) neighbour
  discovery (the standalone forwarder answers with the vif MAC), TCP both ways;
* UDP with 1400-byte datagrams on a 1400-byte workload MTU (the kernel sends
  two fragments; the first one's UDP Length counts data in the second), with
  tshark decoding the fabric capture;
* workloads with a 1500-byte MTU, too big once encapsulated: DF packets get
  ICMP "fragmentation needed" / ICMPv6 "Packet Too Big" back (path MTU
  discovery, then TCP works), packets without DF are fragmented;

and once: malformed frames from a workload and from the fabric, each counted
under its reason while good traffic still flows; overlay packets that reach the
fabric as outer IPv4 fragments (reassembled, and counted when a piece is missing);
tunnel packets to another address, or GRE not carrying MPLS, left to the kernel; NAT both ways and ECMP
programmed through the tables file; the ``vrouter`` CLI (every table,
``--vrf``, bad input, no forwarder), ``--flow-entries`` and flow ageing.

Root only (network namespaces); skips with a message otherwise.
"""

import json
import os
import shutil
import struct
import subprocess
import time

import pytest

from dataplane_lab import GATEWAY_MAC, LABEL, VNI, WL_IP, WL_MAC, WORKLOAD_MTU, module_lab, nsrun, run
from test_dataplane import DECODE, Capture, tshark

TOOLS = ("ip", "tshark", "tcpdump", "iperf3", "ping")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason=f"needs {', '.join(TOOLS)}"),
]

WL_IP6 = {1: "fd00::3", 2: "fd00::4"}
FABRIC = {1: "192.168.77.1", 2: "192.168.77.2"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    def prepare(lab):
        base_tables = lab.tables
        lab.extra_ops = {1: [], 2: []}
        lab.tap_policy = {1: None, 2: None}

        def tables(i, encap):
            """The lab's tables plus IPv6 /128 routes for both workloads and extra_ops[i];
            tap_policy[i], when set, overrides the policy flag of host i's workload vif."""
            t = base_tables(i, encap)
            if lab.tap_policy[i] is not None:
                t["interfaces"][1]["policy"] = lab.tap_policy[i]
            j = 2 if i == 1 else 1
            t["ops"] += [
                {"op": "add_route", "vrf": 1, "prefix": f"{WL_IP6[i]}/128", "nh": 1},
                {"op": "add_route", "vrf": 1, "prefix": f"{WL_IP6[j]}/128", "nh": 2},
                *lab.extra_ops[i],
            ]
            return t

        lab.tables = tables

    def ipv6_addresses(lab):
        for i in (1, 2):
            w = lab.w[i]
            nsrun(w, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0")
            nsrun(w, "ip", "-6", "addr", "add", f"{WL_IP6[i]}/64", "dev", "eth0", "nodad")

    yield from module_lab(tmp_path_factory, "fwdwalk", prepare, ipv6_addresses)


def set_mtu(lab, mtu):
    for i in (1, 2):
        nsrun(lab.w[i], "ip", "link", "set", "eth0", "mtu", str(mtu))
        # Path MTUs learnt from an earlier test's ICMP errors go too.
        nsrun(lab.w[i], "ip", "route", "flush", "cache", check=False)
        nsrun(lab.w[i], "ip", "-6", "route", "flush", "cache", check=False)


def drops(lab, i=1):
    return json.loads(lab.vrouter_cli(i, "dropstats", "--json"))


def iperf(lab, *args, server=2, client=1, timeout=40):
    srv, _ = lab.spawn(lab.w[server], ["iperf3", "-s", "-1", "-p", "5201"], "iperf3-server")
    time.sleep(0.3)
    c = nsrun(lab.w[client], "iperf3", "-c", WL_IP[server], "-p", "5201", "-J", *args,
              check=False, timeout=timeout)
    lab._stop(srv)
    assert c.returncode == 0, f"iperf3 {args}: {c.stdout[-1500:]}{c.stderr}\n{lab.log_tails()}"
    return json.loads(c.stdout)["end"]


def ping(lab, src, dst, *args, count=2):
    return nsrun(lab.w[src], "ping", "-c", str(count), "-W", "2", *args, dst, check=False)


ENCAPS = ["mpls_over_udp", "mpls_over_gre", "vxlan"]
IO = ["af-packet", "af-xdp"]


@pytest.mark.parametrize("io", IO)
@pytest.mark.parametrize("encap", ENCAPS)
def test_both_ways_ipv6_nd_and_large_udp(lab, encap, io):
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(encap != "vxlan")
    for i in (1, 2):  # no static IPv6 neighbours: the workloads solicit
        nsrun(lab.w[i], "ip", "-6", "neigh", "flush", "dev", "eth0")
    lab.start_vrouters(encap, ["--io", io])
    try:
        for a, b in ((1, 2), (2, 1)):
            p = ping(lab, a, WL_IP[b])
            assert p.returncode == 0, f"w{a} -> w{b}: {p.stdout}{p.stderr}\n{lab.log_tails()}"
        # No static neighbour: the standalone forwarder answers ARP with the vif MAC.
        nsrun(lab.w[1], "ip", "neigh", "del", WL_IP[2], "dev", "eth0")
        p = ping(lab, 1, WL_IP[2])
        assert p.returncode == 0, f"ping over ARP: {p.stdout}{p.stderr}\n{lab.log_tails()}"
        neigh = nsrun(lab.w[1], "ip", "neigh", "show", WL_IP[2]).stdout
        assert GATEWAY_MAC in neigh, neigh
        p = ping(lab, 1, WL_IP6[2], "-6")
        assert p.returncode == 0, f"ping -6: {p.stdout}{p.stderr}\n{lab.log_tails()}"
        neigh = nsrun(lab.w[1], "ip", "-6", "neigh", "show", WL_IP6[2]).stdout
        assert GATEWAY_MAC in neigh, f"w1 resolved {WL_IP6[2]} to the vif MAC: {neigh}"

        for reverse in (False, True):
            end = iperf(lab, "-t", "1", *(["-R"] if reverse else []))
            assert end["sum_received"]["bytes"] > 500_000, (reverse, end["sum_received"])

        cap = Capture(lab, *lab.fabric_tap(), lab.work / f"udp1400-{encap}-{io}.pcap")
        end = iperf(lab, "-u", "-b", "10M", "-l", "1400", "-t", "1")
        time.sleep(1)  # tcpdump hands packets over in blocks, after up to 1 s
        cap.stop()
        got = end["sum_received"]
        # (Before the fix every datagram was lost: its first fragment was counted as
        # truncated. Some loss under load on a shared 2-core machine is not the point.)
        assert got["packets"] > 100 and got["lost_percent"] < 50, got
        assert "truncated" not in drops(lab)["drops"], drops(lab)
        decode, display = DECODE[encap]
        if encap == "vxlan":
            rows = tshark(cap.path, decode, display, ["vxlan.vni", "ip.flags.mf"])
            assert rows and {r[0] for r in rows} == {str(VNI)}, rows[:5]
        else:
            rows = tshark(cap.path, decode, display, ["mpls.label", "ip.flags.mf"])
            assert rows and {r[0] for r in rows} <= {str(LABEL[1]), str(LABEL[2])}, rows[:5]
        # Inner first fragments (MF set) crossed the fabric.
        assert any(r[1].split(",")[-1] in ("1", "True") for r in rows), rows[:5]
        malformed = tshark(cap.path, decode, "_ws.malformed", ["frame.number"])
        assert not malformed, malformed[:5]
    finally:
        lab.stop_vrouters()


@pytest.mark.parametrize("encap,io", [("mpls_over_udp", "af-packet"), ("vxlan", "af-xdp")])
def test_workload_mtu_too_big_for_the_fabric(lab, encap, io):
    """1500-byte workload MTU on a 1500-byte fabric: the workloads learn the path MTU from
    the forwarder's ICMP errors (v4 and v6), TCP then flows; without DF the forwarder
    fragments."""
    lab.set_workload_neighbors(encap != "vxlan")
    set_mtu(lab, 1500)
    lab.start_vrouters(encap, ["--io", io])
    try:
        room = 1500 - (20 + 8 + 4 if encap == "mpls_over_udp" else 20 + 8 + 8 + 14)
        p = ping(lab, 1, WL_IP[2], "-M", "do", "-s", "1472", count=1)
        assert p.returncode != 0 and f"mtu = {room}" in p.stdout.replace("mtu=", "mtu = "), \
            p.stdout + p.stderr
        assert drops(lab)["drops"].get("too_big", 0) >= 1
        route = nsrun(lab.w[1], "ip", "route", "get", WL_IP[2]).stdout
        assert f"mtu {room}" in route, route
        # Without DF: fragmented by the forwarder, answered whole.
        p = ping(lab, 2, WL_IP[1], "-M", "dont", "-s", "1472")
        assert p.returncode == 0, p.stdout + p.stderr
        # IPv6: Packet Too Big, then the kernel fragments to the learnt MTU.
        ping(lab, 1, WL_IP6[2], "-6", "-s", "1452", count=1)
        route6 = nsrun(lab.w[1], "ip", "-6", "route", "get", WL_IP6[2]).stdout
        assert f"mtu {room}" in route6, route6
        p = ping(lab, 1, WL_IP6[2], "-6", "-s", "1452")
        assert p.returncode == 0, p.stdout + p.stderr
        # TCP from the side that has not learnt anything yet.
        end = iperf(lab, "-t", "2", server=1, client=2)
        assert end["sum_received"]["bytes"] > 500_000, end["sum_received"]
    finally:
        lab.stop_vrouters()
        set_mtu(lab, WORKLOAD_MTU)


@pytest.mark.parametrize("encap,io", [("mpls_over_udp", "af-packet"), ("vxlan", "af-xdp")])
def test_large_udp_fragments_over_policy_vifs(lab, encap, io):
    """Policy on both workload vifs with Forward flows for iperf3: the later fragments of
    each 1400-byte datagram carry no ports and follow the first fragment's flow (fragment
    table), on the sending host and in the receiving host's egress policy."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(encap != "vxlan")
    lab.allow_iperf3_flows(ports=8)
    try:
        lab.start_vrouters(encap, ["--io", io])
        got = iperf(lab, "-u", "-b", "10M", "-l", "1400", "-t", "1")["sum_received"]
        assert got["packets"] > 100 and got["lost_percent"] < 50, got
        for i in (1, 2):
            assert "fragment" not in drops(lab, i)["drops"], (i, drops(lab, i))
    finally:
        lab.policy, lab.flows = False, []
        nsrun(lab.w[1], "sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 60999")
        lab.stop_vrouters()


# The tail of a datagram first: w1 writes the fragments itself (raw socket, IP_HDRINCL), the
# last one first; w2's kernel reassembles what both forwarders let through.
TAIL_FIRST = """import socket,struct,sys
src,dst,sport,dport=sys.argv[1],sys.argv[2],int(sys.argv[3]),int(sys.argv[4])
data=bytes(range(256))*6
udp=struct.pack('!HHHH',sport,dport,8+len(data),0)+data
def ip(off,more,p):
    ff=(off//8)|(0x2000 if more else 0)
    return struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(p),0x4242,ff,64,17,0,
                       socket.inet_aton(src),socket.inet_aton(dst))+p
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)
for f in (ip(800,False,udp[800:]),ip(0,True,udp[:800])):
    s.sendto(f,(dst,0))
"""
UDP_RECV = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1]))); s.settimeout(5)\n"
            "print('ready',flush=True)\nd,a=s.recvfrom(4000)\nprint(len(d),a[1],flush=True)")


def test_later_fragment_before_the_first_one_waits_for_it(lab):
    """Policy on both workload vifs with a Forward flow for the datagram's 5-tuple: its last
    fragment arrives first, carrying no ports. Each forwarder (h1's ingress policy, h2's
    egress policy) queues it until the first fragment creates the fragment entry, then sends
    it (TF vr_fragment.c). Before, it was dropped as `fragment` and the datagram was lost."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    lab.allow_iperf3_flows(ports=1)
    try:
        lab.start_vrouters("mpls_over_udp", ["--io", "af-packet"])
        recv = subprocess.Popen(["ip", "netns", "exec", lab.w[2], "python3", "-c", UDP_RECV,
                                 "5201"], stdout=subprocess.PIPE, text=True)
        try:
            assert recv.stdout.readline().strip() == "ready"
            nsrun(lab.w[1], "python3", "-c", TAIL_FIRST, WL_IP[1], WL_IP[2], "50000", "5201")
            out, _ = recv.communicate(timeout=10)
        finally:
            recv.kill()
        assert out.split() == ["1536", "50000"], \
            f"datagram not reassembled at w2: {out!r} {drops(lab, 1)} {drops(lab, 2)}"
        for i in (1, 2):
            d = drops(lab, i)["drops"]
            assert "fragment" not in d and "frag_queue_full" not in d, (i, d)
    finally:
        lab.policy, lab.flows = False, []
        nsrun(lab.w[1], "sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 60999")
        lab.stop_vrouters()


# ---------------------------------------------------------------------------------------------
# Malformed frames, written with a raw AF_PACKET socket inside a namespace.

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def mac(m):
    return bytes.fromhex(m.replace(":", ""))


def ipv4(src, dst, proto, payload, ihl=5, total=None, df=True, opts=b""):
    """An IPv4 packet; `opts` (a multiple of 4 bytes) goes after the fixed header, and the
    IHL counts it unless `ihl` says otherwise."""
    ihl = ihl + len(opts) // 4
    tl = 20 + len(opts) + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tl, 1, 0x4000 if df else 0, 64, proto, 0,
                    bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))) + opts
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def eth(dst, src, payload, ethertype=0x0800):
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def udp(sport, dport, payload, length=None):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload) if length is None else length,
                       0) + payload


def mpls(label, bottom=True):
    return struct.pack("!I", (label << 12) | (0x100 if bottom else 0) | 64)


def inject(ns, ifname, *frames):
    code = ("import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
            "s.bind((sys.argv[1],0))\nfor h in sys.argv[2:]: s.send(bytes.fromhex(h))")
    nsrun(ns, "python3", "-c", code, ifname, *(f.hex() for f in frames))


@pytest.mark.parametrize("io", IO)
def test_malformed_frames_are_dropped_per_reason_and_good_traffic_flows(lab, io):
    """(With af-xdp, the fabric's XDP program hands the broken outer header to the forwarder
    instead of passing it to the kernel, which dropped it uncounted.)"""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    lab.start_vrouters("mpls_over_udp", ["--io", io])
    try:
        f1, f2 = lab.fabric_mac(1), lab.fabric_mac(2)
        w1 = WL_MAC[1]
        good = ipv4(WL_IP[1], WL_IP[2], 17, udp(1000, 2000, b"hello"))
        inner = ipv4(WL_IP[2], WL_IP[1], 17, udp(1, 2, b"x" * 20))

        def tunnel(proto, payload):
            return eth(f1, f2, ipv4(FABRIC[2], FABRIC[1], proto, payload, df=False))

        cases = [
            # from the workload
            ("truncated IPv4 header", lab.w[1], "eth0", eth(GATEWAY_MAC, w1, good[:12]),
             "truncated"),
            ("IHL 3", lab.w[1], "eth0",
             eth(GATEWAY_MAC, w1, ipv4(WL_IP[1], WL_IP[2], 17, udp(1, 2, b"abc"), ihl=3)),
             "malformed"),
            ("total length > frame", lab.w[1], "eth0",
             eth(GATEWAY_MAC, w1, ipv4(WL_IP[1], WL_IP[2], 17, udp(1, 2, b"abc"), total=400)),
             "truncated"),
            ("bad header checksum", lab.w[1], "eth0",
             eth(GATEWAY_MAC, w1, good[:10] + b"\x12\x34" + good[12:]), "checksum"),
            ("UDP length > packet", lab.w[1], "eth0",
             eth(GATEWAY_MAC, w1, ipv4(WL_IP[1], WL_IP[2], 17, udp(1, 2, b"abc", length=200))),
             "truncated"),
            # from the fabric (the switch port facing h1)
            ("MPLS label not in the table", lab.s, "s1",
             tunnel(17, udp(50000, 6635, mpls(99) + inner)), "unknown_label"),
            ("VXLAN unknown VNI", lab.s, "s1",
             tunnel(17, udp(50000, 4789, struct.pack("!II", 0x08000000, 777 << 8)
                            + eth(w1, WL_MAC[2], inner))), "unknown_vni"),
            ("GRE version 1", lab.s, "s1", tunnel(47, b"\x00\x01\x88\x47" + mpls(16) + inner),
             "bad_tunnel"),
            ("GRE routing present (RFC 1701)", lab.s, "s1",
             tunnel(47, b"\x40\x00\x88\x47" + mpls(16) + inner), "bad_tunnel"),
            ("UDP 6635 shorter than a label", lab.s, "s1", tunnel(17, udp(50000, 6635, b"\0\1")),
             "truncated"),
            ("outer IPv4 IHL 4", lab.s, "s1",
             eth(f1, f2, ipv4(FABRIC[2], FABRIC[1], 17, udp(50000, 6635, mpls(16) + inner),
                              ihl=4)), "malformed"),
        ]
        for name, ns, ifname, frame, reason in cases:
            before = drops(lab)["drops"]
            inject(ns, ifname, frame)
            deadline = time.monotonic() + 3
            while True:
                after = drops(lab)["drops"]
                # (Not counted: the workloads' own IPv6 multicast, MLD and router
                # solicitations soon after the lab starts, bridged with no flood entry here.)
                moved = {k: after[k] - before.get(k, 0) for k in after
                         if after[k] != before.get(k, 0) and k != "no_bridge_entry"}
                if moved or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert moved == {reason: 1}, f"{name}: counted {moved}, expected {reason}"
        p = ping(lab, 1, WL_IP[2])
        assert p.returncode == 0, "good traffic after the bad frames: " + p.stdout
        text = lab.vrouter_cli(1, "dropstats")
        for reason in ("unknown_label", "unknown_vni", "bad_tunnel", "checksum"):
            assert reason in text, text
    finally:
        lab.stop_vrouters()


# Outer IPv4 options: the XDP program read the UDP port at offset 20 only and passed the frame
# to h1's kernel, which dropped it; af-packet always had it.
RECV_ALL = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1]))); s.settimeout(8)\n"
            "want=set(sys.argv[2:]); print('ready',flush=True)\n"
            "while want:\n d,a=s.recvfrom(2000); want.discard(d.decode()); print(d.decode(),flush=True)")


@pytest.mark.parametrize("io", IO)
def test_outer_ipv4_options_from_the_fabric_reach_the_workload(lab, io):
    """MPLSoUDP and MPLSoGRE to h1 with a Router Alert and NOPs in the outer IPv4 header
    (IHL 6, 10, 15), sent from the fabric switch: w1 receives each inner datagram."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    lab.start_vrouters("mpls_over_udp", ["--io", io])
    try:
        f1, f2 = lab.fabric_mac(1), lab.fabric_mac(2)
        frames, names = [], []
        for ihl in (6, 10, 15):
            room = (ihl - 5) * 4
            opts = b"\x94\x04\x00\x00" + (b"\x01" * (room - 5) + b"\x00" if room > 4 else b"")
            for tun, proto in (("udp", 17), ("gre", 47)):
                name = f"{tun}-ihl{ihl}"
                inner = ipv4(WL_IP[2], WL_IP[1], 17, udp(1234, 5301, name.encode()))
                body = (udp(50000, 6635, mpls(LABEL[1]) + inner) if proto == 17
                        else b"\x00\x00\x88\x47" + mpls(LABEL[1]) + inner)
                frames.append(eth(f1, f2, ipv4(FABRIC[2], FABRIC[1], proto, body, df=False,
                                               opts=opts)))
                names.append(name)
        recv = subprocess.Popen(["ip", "netns", "exec", lab.w[1], "python3", "-c", RECV_ALL,
                                 "5301", *names], stdout=subprocess.PIPE, text=True)
        try:
            assert recv.stdout.readline().strip() == "ready"
            for _ in range(3):  # (again, in case the first ones met a run loop still starting)
                inject(lab.s, "s1", *frames)
                try:
                    recv.wait(timeout=1.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
            out, _ = recv.communicate(timeout=10)
        finally:
            recv.kill()
        assert recv.returncode == 0, f"{io}: w1 got only {out.split()} of {names}: {drops(lab)}"
        assert set(out.split()) == set(names)
        # (Not counted: the workloads' own IPv6 multicast, bridged with no flood entry here.)
        d = {k: v for k, v in drops(lab)["drops"].items() if k != "no_bridge_entry"}
        assert d == {}, d
    finally:
        lab.stop_vrouters()


# Outer IPv4 fragments of overlay packets to our fabric IP: the forwarder reassembles them
# (reasm.rs). Before, classify_fabric passed every fragment to the kernel: over af-packet the
# kernel reassembled the datagram for its listener socket, which discarded it; over af-xdp the
# first fragment was steered to the forwarder and discarded as the host's. Nothing was counted.
RECV_HEX = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1]))); s.settimeout(8)\n"
            "want=set(sys.argv[2:]); print('ready',flush=True)\n"
            "while want:\n d,a=s.recvfrom(4000); want.discard(d.hex()); print(d.hex(),flush=True)")


def fragments(packet, cuts, ident):
    """RFC 791 §3.2 fragments of the IPv4 `packet` (20-byte header), cut at payload offsets
    `cuts` (multiples of 8), with identification `ident`."""
    head, payload = bytearray(packet[:20]), packet[20:]
    bounds = [0, *cuts, len(payload)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        h = bytearray(head)
        struct.pack_into("!HHH", h, 2, 20 + b - a, ident, (a // 8) | (0x2000 if b < len(payload) else 0))
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, csum(bytes(h)))
        out.append(bytes(h) + payload[a:b])
    return out


@pytest.mark.parametrize("io", IO)
def test_fragmented_overlay_packets_from_the_fabric_reach_the_workload(lab, io):
    """An MPLSoUDP, a VXLAN and an MPLSoGRE packet to h1, each sent from the fabric switch as
    three outer fragments out of order (the first one holding the outer UDP header, or GRE
    and the label, only): w1 receives
    each inner datagram byte for byte. Then a datagram missing its middle fragment: its two
    fragments are counted as reasm_timeout once the 2 s are up, and nothing stays held."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    lab.start_vrouters("mpls_over_udp", ["--io", io])
    try:
        f1, f2 = lab.fabric_mac(1), lab.fabric_mac(2)
        datas, outers = [], []
        for tun in ("mplsoudp", "vxlan", "mplsogre"):
            data = (f"{io}-{tun}-".encode() + bytes(range(256)) * 3)[:700]
            inner = ipv4(WL_IP[2], WL_IP[1], 17, udp(1234, 5302, data))
            proto, body = {
                "mplsoudp": (17, udp(50000, 6635, mpls(LABEL[1]) + inner)),
                "vxlan": (17, udp(50001, 4789, struct.pack("!II", 0x08000000, VNI << 8)
                                  + eth(WL_MAC[1], WL_MAC[2], inner))),
                "mplsogre": (47, b"\x00\x00\x88\x47" + mpls(LABEL[1]) + inner),
            }[tun]
            datas.append(data)
            outers.append(ipv4(FABRIC[2], FABRIC[1], proto, body, df=False))
        want = [d.hex() for d in datas]
        recv = subprocess.Popen(["ip", "netns", "exec", lab.w[1], "python3", "-c", RECV_HEX,
                                 "5302", *want], stdout=subprocess.PIPE, text=True)
        try:
            assert recv.stdout.readline().strip() == "ready"
            # (Again with new identifications, in case the first ones met a run loop still
            # starting.)
            for attempt in range(3):
                frames = []
                for k, outer in enumerate(outers):
                    fr = fragments(outer, [8, 360], 0x4000 + attempt * 16 + k)
                    frames += [eth(f1, f2, fr[i]) for i in (2, 0, 1)]
                inject(lab.s, "s1", *frames)
                try:
                    recv.wait(timeout=1.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
            out, _ = recv.communicate(timeout=10)
        finally:
            recv.kill()
        assert recv.returncode == 0, f"{io}: w1 got {len(out.split())} of 3: {drops(lab)}"
        assert set(want) <= set(out.split())
        d = drops(lab)
        assert d["reassembly"]["datagrams"] >= 3, d
        # (Not counted: the workloads' own IPv6 multicast, bridged with no flood entry here.)
        bad = {k: v for k, v in d["drops"].items() if k not in ("no_bridge_entry", "reasm_timeout")}
        assert bad == {}, d

        # A missing piece: both fragments held, then counted at the timeout.
        time.sleep(2.5)  # (any partial attempt above has timed out by now)
        before = drops(lab)["drops"].get("reasm_timeout", 0)
        fr = fragments(outers[0], [8, 360], 0x7777)
        inject(lab.s, "s1", eth(f1, f2, fr[0]), eth(f1, f2, fr[2]))
        deadline = time.monotonic() + 6
        while True:
            d = drops(lab)
            if d["drops"].get("reasm_timeout", 0) - before >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert d["drops"].get("reasm_timeout", 0) - before == 2, d
        assert d["reassembly"]["pending"] == 0 and d["reassembly"]["held_bytes"] == 0, d
    finally:
        lab.stop_vrouters()


def ip_counters(ns):
    """The namespace kernel's IPv4 counters (`/proc/net/snmp`, Ip:)."""
    lines = [l.split() for l in nsrun(ns, "cat", "/proc/net/snmp").stdout.splitlines()
             if l.startswith("Ip:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


@pytest.mark.parametrize("io", IO)
def test_tunnel_packets_not_for_the_forwarder_reach_the_kernel(lab, io):
    """MPLSoUDP, VXLAN and MPLSoGRE to another address than h1's fabric IP, and GRE carrying
    IPv4 (not MPLS) to it, arrive on h1's fabric port: they are the kernel's, which receives
    them (InReceives; InAddrErrors for the other address), and the forwarder counts nothing. Before, af-xdp's program steered every
    UDP 6635/4789 and GRE packet to the forwarder, which discarded these as the host's, and
    af-packet's tcx program dropped them before the kernel's IP layer."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.start_vrouters("mpls_over_udp", ["--io", io])
    try:
        f1, f2 = lab.fabric_mac(1), lab.fabric_mac(2)
        other = "192.168.77.9"
        inner = ipv4(WL_IP[2], WL_IP[1], 17, udp(1234, 5303, b"not ours"))
        frames = [
            eth(f1, f2, ipv4(FABRIC[2], other, 17, udp(50000, 6635, mpls(LABEL[1]) + inner))),
            eth(f1, f2, ipv4(FABRIC[2], other, 17, udp(50001, 4789, struct.pack(
                "!II", 0x08000000, VNI << 8) + eth(WL_MAC[1], WL_MAC[2], inner)))),
            eth(f1, f2, ipv4(FABRIC[2], other, 47, b"\x00\x00\x88\x47" + mpls(LABEL[1]) + inner)),
            eth(f1, f2, ipv4(FABRIC[2], FABRIC[1], 47, b"\x00\x00\x08\x00" + inner)),
        ] * 5
        time.sleep(0.5)  # (the run loop attached)
        # (No CLI call between the two readings: its HTTP over loopback counts as received.)
        drops_before = drops(lab)["drops"]
        before = ip_counters(lab.h[1])
        inject(lab.s, "s1", *frames)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            got = {k: v - before[k] for k, v in ip_counters(lab.h[1]).items()}
            if got["InReceives"] >= len(frames):
                break
            time.sleep(0.1)
        # Each one reached the kernel's IP layer; the 15 to another address are refused there
        # (no forwarding in h1), the GRE with IPv4 inside goes to the raw GRE listener.
        assert got["InReceives"] == len(frames), f"{io}: h1's kernel received {got}"
        assert got["InAddrErrors"] == 15, f"{io}: {got}"
        after = drops(lab)["drops"]
        moved = {k: after[k] - drops_before.get(k, 0) for k in after
                 if after[k] != drops_before.get(k, 0) and k != "no_bridge_entry"}
        assert moved == {}, moved
    finally:
        lab.stop_vrouters()


# ---------------------------------------------------------------------------------------------
# NAT and ECMP from the tables file (no agent).

UDP_ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1])))\nwhile True:\n"
            " d,a=s.recvfrom(2000); s.sendto(d,a)")
UDP_ASK = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
           "s.bind(('0.0.0.0',int(sys.argv[1]))); s.settimeout(3)\n"
           "s.sendto(b'ping',(sys.argv[2],int(sys.argv[3])))\nd,a=s.recvfrom(2000)\n"
           "print(a[0],a[1],d.decode())")


def test_nat_both_ways_from_static_flows(lab):
    """w1 talks to 10.9.9.4:7000, a floating address of w2: h1's NAT flow rewrites the
    destination to 10.1.1.4 going out and the source back to 10.9.9.4 coming back."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    nsrun(lab.w[1], "ip", "route", "replace", "10.9.9.0/24", "dev", "eth0")
    nsrun(lab.w[1], "ip", "neigh", "replace", "10.9.9.4", "lladdr", GATEWAY_MAC, "dev", "eth0",
          "nud", "permanent")
    key = {"vrf": 1, "proto": 17, "src": WL_IP[1], "dst": "10.9.9.4", "sport": 40000,
           "dport": 7000}
    lab.tap_policy[1] = True
    lab.extra_ops[1] = [{"op": "add_flow", "key": key, "action": "nat", "dst_ip": WL_IP[2]}]
    try:
        lab.start_vrouters("mpls_over_udp", ["--io", "af-packet"])
        lab.spawn(lab.w[2], ["python3", "-c", UDP_ECHO, "7000"], "udp-echo")
        time.sleep(0.3)
        r = nsrun(lab.w[1], "python3", "-c", UDP_ASK, "40000", "10.9.9.4", "7000", check=False)
        assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{lab.log_tails()}"
        assert r.stdout.split() == ["10.9.9.4", "7000", "ping"], r.stdout
        flows = json.loads(lab.vrouter_cli(1, "dump", "flows", "--json"))
        fwd = next(f for f in flows if f["key"]["dst"] == "10.9.9.4")
        rev = next(f for f in flows if f["index"] == fwd["reverse"])
        assert rev["key"]["src"] == WL_IP[2] and rev["reverse"] == fwd["index"], (fwd, rev)
        assert fwd["packets"] >= 1 and rev["packets"] >= 1, (fwd, rev)
        assert "nat" in lab.vrouter_cli(1, "dump", "flows")
        # A flow nobody installed is held and punted (no agent), not forwarded.
        r = nsrun(lab.w[1], "python3", "-c", UDP_ASK, "40001", "10.9.9.4", "7000", check=False)
        assert r.returncode != 0
        assert drops(lab)["punts"].get("flow_miss", 0) >= 1
    finally:
        lab.extra_ops[1], lab.tap_policy[1] = [], None
        lab.stop_vrouters()


def test_ecmp_spreads_flows_over_members_and_keeps_each_on_one(lab):
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    # h1: 10.1.1.4 over an ECMP of two tunnels to h2 (labels 17 and 18); h2: label 18 is
    # w2's too.
    lab.extra_ops[1] = [
        {"op": "add_nexthop", "id": 3, "type": "tunnel", "vif": 0, "src_ip": FABRIC[1],
         "dst_ip": FABRIC[2], "encap": {"type": "mpls_over_udp", "label": 18}},
        {"op": "add_nexthop", "id": 4, "type": "ecmp", "members": [2, 3]},
        {"op": "add_route", "vrf": 1, "prefix": f"{WL_IP[2]}/32", "nh": 4},
    ]
    lab.extra_ops[2] = [{"op": "add_label", "label": 18, "nh": 1, "payload": "ip"}]
    try:
        lab.start_vrouters("mpls_over_udp", ["--io", "af-packet"])
        cap = Capture(lab, *lab.fabric_tap(), lab.work / "ecmp.pcap")
        send = ("import socket,sys\nfor p in range(41000,41032):\n"
                " for _ in range(3):\n"
                "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "  s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                "  s.bind(('0.0.0.0',p)); s.sendto(b'x',(sys.argv[1],9)); s.close()")
        nsrun(lab.w[1], "python3", "-c", send, WL_IP[2])
        time.sleep(1)  # tcpdump hands packets over in blocks, after up to 1 s
        cap.stop()
        rows = tshark(cap.path, ["-d", "udp.port==6635,mpls"],
                      "mpls && !icmp && udp.dstport==9",
                      ["mpls.label", "udp.srcport"])
        by_flow = {}
        for label, ports in rows:
            by_flow.setdefault(ports.split(",")[-1], set()).add(label)
        assert len(by_flow) == 32, by_flow
        assert all(len(v) == 1 for v in by_flow.values()), f"a flow changed path: {by_flow}"
        used = set().union(*by_flow.values())
        assert used == {"17", "18"}, f"members used: {used}"
    finally:
        lab.extra_ops = {1: [], 2: []}
        lab.stop_vrouters()


# ---------------------------------------------------------------------------------------------
# The CLI.

def cli(lab, i, *args):
    return nsrun(lab.h[i], str(lab.binary), "vrouter", *args, check=False)


def test_cli_tables_errors_flow_entries_and_ageing(lab):
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    lab.allow_iperf3_flows(ports=4)
    try:
        lab.start_vrouters("mpls_over_udp", ["--io", "af-packet", "--flow-entries", "3000000",
                                             "--flow-timeout", "5"])
        stats = drops(lab)
        assert stats["flow_table"] == {"entries": 4 * 2 * 2, "capacity": 3_000_000}, stats
        # Traffic moves the counters of both linked entries; idle flows age out.
        end = iperf(lab, "-u", "-b", "1M", "-t", "1")
        assert end["sum_received"]["packets"] > 0
        flows = json.loads(cli(lab, 1, "dump", "flows", "--json").stdout)
        used = [f for f in flows if f["packets"] > 0]
        assert {f["key"]["proto"] for f in used} == {6, 17}, flows
        for f in used:
            rev = next(r for r in flows if r["index"] == f["reverse"])
            assert rev["reverse"] == f["index"]
        for table in ("interfaces", "nexthops", "routes", "flows", "labels", "neighbors"):
            r = cli(lab, 1, "dump", table)
            assert r.returncode == 0 and r.stdout.strip(), (table, r.stderr)
            json.loads(cli(lab, 1, "dump", table, "--json").stdout)
        nh = cli(lab, 1, "dump", "nexthops").stdout
        assert "encap=mpls_over_udp" in nh and "label=17" in nh, nh
        routes = cli(lab, 1, "dump", "routes", "--vrf", "1").stdout
        assert f"{WL_IP[2]}/32" in routes, routes
        def active():
            flows = json.loads(cli(lab, 1, "dump", "flows", "--json").stdout)
            # (HOLD entries of packets nobody installed a flow for, e.g. the workload's
            # IPv6 multicast, wait for a verdict that never comes: their own timeout.)
            return [f for f in flows if f["state"] == "active"]

        deadline = time.monotonic() + 10
        while active() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not active(), "flows did not age out"
        assert "Index" in cli(lab, 1, "dump", "flows").stdout

        bad = [
            (["dump", "routes", "--vrf", "9"], 1, "no VRF 9"),
            (["dump", "labels", "--vrf", "1"], 1, "--vrf applies to"),
            (["dump", "bogus"], 2, "invalid value"),
            (["dump", "routes", "--agent", "127.0.0.1:1"], 1, "cannot reach"),
            (["dropstats", "--agent", "http://127.0.0.1:1"], 1, "cannot reach"),
        ]
        for args, rc, text in bad:
            r = cli(lab, 1, *args)
            assert r.returncode == rc and text in r.stderr, (args, r.returncode, r.stderr)
            if rc == 1:
                assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        for args in (["--flow-entries", "0"], ["--flow-timeout", "0"]):
            r = run(str(lab.binary), "vrouter", "run", "--tables", "/nonexistent", *args,
                    check=False)
            assert r.returncode == 2, (args, r.stderr)
    finally:
        lab.policy, lab.flows = False, []
        nsrun(lab.w[1], "sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 60999")
        lab.stop_vrouters()


# A connected UDP socket sends one datagram to a closed port and reports whether the kernel
# matched an ICMP port unreachable to it (ECONNREFUSED: the quote names this socket's
# destination address and port); a raw socket opened first shows the error as received.
ICMP_REFUSED = """import socket,sys
r=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); r.settimeout(5)
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',int(sys.argv[1])))
s.connect((sys.argv[2],int(sys.argv[3]))); s.settimeout(3)
s.send(b'anyone there?')
try:
    s.recv(100); print('answered')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
while True:
    p=r.recv(4000)
    if p[(p[0]&15)*4]==3: break
print(p.hex())
"""


def check_port_unreachable(pkt, src, dst, q_src, q_dst, q_sport, q_dport):
    """The ICMP port unreachable `pkt` (IPv4 header on) comes from `src` to `dst` and quotes a
    UDP datagram q_src:q_sport -> q_dst:q_dport; every checksum in it holds (outer header,
    ICMP over the whole message, quoted header, quoted UDP over its pseudo-header)."""
    ihl = (pkt[0] & 15) * 4
    a = lambda b: ".".join(map(str, b))  # noqa: E731
    assert (a(pkt[12:16]), a(pkt[16:20])) == (src, dst), "outer addresses"
    assert csum(pkt[:ihl]) == 0, "outer IPv4 header checksum"
    icmp = pkt[ihl:struct.unpack("!H", pkt[2:4])[0]]
    assert icmp[:2] == b"\x03\x03", f"ICMP type/code {icmp[:2].hex()}"
    assert csum(icmp) == 0, "ICMP checksum"
    q = icmp[8:]
    qhl = (q[0] & 15) * 4
    assert (a(q[12:16]), a(q[16:20]), q[9]) == (q_src, q_dst, 17), "quoted header"
    assert csum(q[:qhl]) == 0, "quoted IPv4 header checksum"
    u = q[qhl:]
    assert struct.unpack("!HH", u[:4]) == (q_sport, q_dport), "quoted ports"
    ulen = struct.unpack("!H", u[4:6])[0]
    assert len(u) == ulen, "the whole datagram quoted (Linux quotes up to 576 bytes)"
    if u[6:8] != b"\0\0":
        pseudo = q[12:20] + struct.pack("!BBH", 0, 17, ulen)
        assert csum(pseudo + u) == 0, "quoted UDP checksum"


def test_icmp_errors_about_a_floating_ip_are_translated_back(lab):
    """The NAT flow of test_nat_both_ways_from_static_flows (w1 sees w2 as 10.9.9.4), to closed
    ports, each way (errflow.rs):

    * w1 -> 10.9.9.4:7009: w2's kernel answers port unreachable from 10.1.1.4 quoting
      10.1.1.4:7009; h1 hands w1 an error from 10.9.9.4 quoting 10.9.9.4:7009;
    * w2 -> w1 from 7009 (seen by w1 as from 10.9.9.4): w1's kernel answers to 10.9.9.4
      quoting 10.9.9.4:7009; h1 hands w2 an error to 10.1.1.4 quoting 10.1.1.4:7009.

    Each time the sender's connected socket gets ECONNREFUSED (its kernel matched the quote)
    and every checksum holds."""
    set_mtu(lab, WORKLOAD_MTU)
    lab.set_workload_neighbors(True)
    fip = "10.9.9.4"
    nsrun(lab.w[1], "ip", "route", "replace", "10.9.9.0/24", "dev", "eth0")
    nsrun(lab.w[1], "ip", "neigh", "replace", fip, "lladdr", GATEWAY_MAC, "dev", "eth0",
          "nud", "permanent")
    key = {"vrf": 1, "proto": 17, "src": WL_IP[1], "dst": fip, "sport": 40002, "dport": 7009}
    lab.tap_policy[1] = True
    lab.extra_ops[1] = [{"op": "add_flow", "key": key, "action": "nat", "dst_ip": WL_IP[2]}]
    try:
        lab.start_vrouters("mpls_over_udp", ["--io", "af-packet"])
        for sender, args, want in [
            (1, ("40002", fip, "7009"), (fip, WL_IP[1], WL_IP[1], fip, 40002, 7009)),
            (2, ("7009", WL_IP[1], "40002"), (WL_IP[1], WL_IP[2], WL_IP[2], WL_IP[1], 7009, 40002)),
        ]:
            r = nsrun(lab.w[sender], "python3", "-c", ICMP_REFUSED, *args, check=False)
            lines = r.stdout.split()
            assert r.returncode == 0 and len(lines) == 2, \
                f"w{sender}: {r.stdout}{r.stderr}\n{drops(lab)}\n{lab.log_tails()}"
            assert lines[0] == "refused", f"w{sender}'s socket: {lines[0]}; error {lines[1]}"
            check_port_unreachable(bytes.fromhex(lines[1]), *want)
        flows = json.loads(lab.vrouter_cli(1, "dump", "flows", "--json"))
        fwd = next(f for f in flows if f["key"]["dst"] == fip)
        rev = next(f for f in flows if f["index"] == fwd["reverse"])
        # Each way: the datagram and the error about it, in the flow the error is about.
        assert fwd["packets"] >= 2 and rev["packets"] >= 2, (fwd, rev)
        assert drops(lab)["punts"].get("flow_miss", 0) == 0, drops(lab)
    finally:
        lab.extra_ops[1], lab.tap_policy[1] = [], None
        lab.stop_vrouters()
