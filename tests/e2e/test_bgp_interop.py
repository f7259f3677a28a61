"""The control node's BGP side against real peers, as an acceptance check drives it
(issue 4; tf-facts §2-3): one `filament up` in a namespace, peered through bgp-router
objects with

* FRR (eBGP 65001) over VPNv4, VPNv6 and EVPN, with zebra and a VXLAN device (VNI 100)
  so that FRR originates real type-2 (MAC, MAC+IP) and type-3 routes, and with
  `bgp graceful-restart` (and `preserve-fw-state`: the F bit, RFC 4724 §4.2);
* BIRD 2 (eBGP 65002) as a VPNv4 and VPNv6 gateway;
* GoBGP (iBGP, no cluster id: a full-mesh peer);
* a crafted speaker in this file (iBGP, socket + struct) for split horizon and RFC 7606;
* a Python XMPP agent (TF's protocol) publishing inet6 and EVPN routes.

Checked: routes both ways with their RD, target, label/VNI, next hop (IPv4-mapped IPv6
for VPNv6) and encapsulation, and their withdrawals; AS_PATH on eBGP; iBGP split
horizon; route refresh (FRR soft in/out; GoBGP's softresetin sends no ROUTE-REFRESH, so for
it only the session and routes are checked); RFC 7606 treat-as-withdraw and session resets, as
`neighbors` shows them. test_bgp.py (VPNv4/EVPN type 5 with the bgp_peer example, RTC,
reflection), test_operator_cli.py (VPNv4 withdrawal, the CLI) and test_bgp_gr.py (graceful
restart and LLGR with FRR killed and restarted, on this lab) are not repeated.

Needs root, FRR (bgpd, zebra), BIRD 2 and GoBGP; skips otherwise.
"""

import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bgp_helpers import (
    FRR, GOBGP, OURS, Frr, GoBgp, Netns, Proc, Zebra, frr_config, gobgp_toml, in_netns,
    missing_tools, ns_http, wait_until,
)
from conftest import filament_bin
from test_control import KEEPALIVE, Agent

BIRD, CRAFT = "10.77.0.4", "10.77.0.5"
VR = "10.77.0.9"  # the XMPP agent's vRouter address
VN = "default-domain:default-project:vnx"
VRF = VN + ":vnx"
FABRIC = ["default-domain", "default-project", "ip-fabric", "__default__"]
API, INTRO = "http://127.0.0.1:8082", "http://127.0.0.1:8083"


def missing():
    need = ["bird", "birdc", "/usr/lib/frr/zebra"]
    return missing_tools() + [t for t in need if not (os.path.exists(t) or shutil.which(t))]


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing()), reason=f"missing tools: {missing()}"),
]


def frr_conf(work, rt):
    return f"""frr defaults traditional
hostname frr
log file {work}/frr-debug.log
route-map SETRT permit 10
 set extcommunity rt {rt}
exit
router bgp 65001
 bgp router-id {FRR}
 bgp graceful-restart
 bgp graceful-restart preserve-fw-state
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {OURS} remote-as 64512
 neighbor {OURS} update-source {FRR}
 neighbor {OURS} timers connect 1
 address-family ipv4 vpn
  neighbor {OURS} activate
  network 10.200.1.0/24 rd 65001:7 label 1007 route-map SETRT
 exit-address-family
 address-family ipv6 vpn
  neighbor {OURS} activate
  network 2001:db8:200::/64 rd 65001:17 label 1017 route-map SETRT
 exit-address-family
 address-family l2vpn evpn
  neighbor {OURS} activate
  advertise-all-vni
  vni 100
   rd 65001:100
   route-target both {rt}
  exit-vni
 exit-address-family
exit
"""


def bird_conf(work, rt):
    asn, n = rt.split(":")
    return f"""log "{work}/bird.log" all;
router id {BIRD};
vpn4 table vpntab;
vpn6 table vpntab6;
protocol device {{}}
protocol static st {{
  vpn4 {{ table vpntab; import filter {{ bgp_ext_community.add((rt, {asn}, {n})); accept; }}; }};
  route 65002:1 10.210.0.0/24 via {BIRD} mpls 2100;
}}
protocol static st6 {{
  vpn6 {{ table vpntab6; import filter {{ bgp_ext_community.add((rt, {asn}, {n})); accept; }}; }};
  route 65002:2 2001:db8:210::/64 blackhole;
}}
protocol bgp gwy {{
  local {BIRD} as 65002; neighbor {OURS} as 64512; multihop; strict bind yes;
  vpn4 mpls {{ table vpntab; import all; export all; }};
  # BIRD reads an IPv4-mapped IPv6 next hop (RFC 4659 §3.2.1.2, as TF and FRR send it)
  # as an IPv4 one, which a vpn6 channel takes only with this option.
  vpn6 mpls {{ table vpntab6; import all; export all; extended next hop on; }};
}}
"""


class Lab:
    def __init__(self, ns, work, rt):
        self.ns, self.work, self.rt = ns, work, rt
        self.procs = {}
        self.vxlan = False

    # ----- the control node's introspect -----
    def neighbor(self, addr):
        rows = (ns_http(self.ns, "GET", f"{INTRO}/neighbors") or {}).get("neighbors", [])
        return next((n for n in rows if n.get("peer") == addr), None) or {}

    def paths(self, table, prefix):
        """Paths of `prefix` in `table` (the introspect's JSON), [] if none."""
        r = ns_http(self.ns, "GET", f"{INTRO}/routes?table={table}") or {}
        for t in r.get("tables", []):
            for route in t.get("routes", []):
                if route["prefix"] == prefix:
                    return route["paths"]
        return []

    # ----- the peers -----
    def vty(self, *cmds):
        return self.ns.run("vtysh", "--vty_socket", str(self.work),
                           *[x for c in cmds for x in ("-c", c)], check=False).stdout

    def frr_conf(self, family, *cmds):
        return self.vty("conf t", "router bgp 65001", f"address-family {family}", *cmds)

    def frr(self, cmd):
        try:
            return json.loads(self.vty(cmd))
        except ValueError:
            return {}

    def birdc(self, *args):
        return self.ns.run("birdc", "-s", str(self.work / "bird.ctl"), *args, check=False).stdout

    def agent(self, name):
        with in_netns(self.ns.name):
            return Agent(5269, name)


def post(ns, plural, body):
    kind = plural[:-1]
    r = ns_http(ns, "POST", f"{API}/{plural}", {kind: body})
    assert r and kind in r, r
    return r


def bgp_router(ns, name, addr, asn, families):
    post(ns, "bgp-routers", {
        "fq_name": FABRIC + [name], "parent_type": "routing-instance",
        "bgp_router_parameters": {"address": addr, "identifier": addr, "autonomous_system": asn,
                                  "port": 179, "router_type": "router",
                                  "address_families": {"family": families}},
        "bgp_router_refs": [{"to": FABRIC + ["cn1"], "attr": {}}]})


def vxlan_bridge(ns):
    """VNI 100 on a bridge with a static MAC (and its ARP entry) behind a veth: zebra
    hands FRR the VNI, the MAC and the MAC+IP. False when the kernel has no VXLAN."""
    if ns.run("ip", "link", "add", "vxtest", "type", "vxlan", "id", "9", "dstport", "4789",
              check=False).returncode != 0:
        return False
    ns.run("ip", "link", "del", "vxtest")
    for cmd in (
        "ip link add br100 type bridge",
        f"ip link add vxlan100 type vxlan id 100 local {FRR} dstport 4789 nolearning",
        "ip link set vxlan100 master br100",
        "ip link add d1 type veth peer name d1p",
        "ip link set d1 master br100",
        "ip link set br100 up", "ip link set vxlan100 up", "ip link set d1 up", "ip link set d1p up",
        "bridge fdb add 02:aa:00:00:00:01 dev d1 master static",
        "ip addr add 10.1.1.254/24 dev br100",
        "ip neigh add 10.1.1.77 lladdr 02:aa:00:00:00:01 dev br100 nud permanent",
    ):
        ns.run(*cmd.split())
    return True


@pytest.fixture(scope="module")
def lab():
    work = Path(tempfile.mkdtemp(prefix="fbgpx-"))
    os.chmod(work, 0o755)
    ns = Netns()
    lab = None
    try:
        for a in (BIRD, CRAFT):
            ns.run("ip", "addr", "add", f"{a}/32", "dev", "lo")
        up = Proc(ns.cmd(str(filament_bin()), "up", "--data-dir", str(work / "data"), "--name", "cn1",
                         "--bgp-address", OURS, "--bgp-listen", OURS), work / "up.log")
        wait_until(lambda: (ns_http(ns, "POST", f"{API}/fqname-to-id",
                                    {"type": "bgp-router", "fq_name": FABRIC + ["cn1"]}) or {}).get("uuid"),
                   what="the control node's bgp-router")
        post(ns, "virtual-networks", {"fq_name": VN.split(":"), "parent_type": "project"})

        def target():
            ri = ns_http(ns, "POST", f"{API}/fqname-to-id", {"type": "routing-instance",
                                                              "fq_name": VRF.split(":")}) or {}
            obj = ns_http(ns, "GET", f"{API}/routing-instance/{ri['uuid']}") if ri.get("uuid") else {}
            refs = (obj or {}).get("routing-instance", {}).get("route_target_refs", [])
            return refs[0]["to"][0] if refs else None
        rt = wait_until(target, what="the VN's route target").removeprefix("target:")
        lab = Lab(ns, work, rt)
        lab.procs["up"] = up
        bgp_router(ns, "frr", FRR, 65001, ["inet-vpn", "inet6-vpn", "e-vpn"])
        bgp_router(ns, "bird", BIRD, 65002, ["inet-vpn", "inet6-vpn"])
        bgp_router(ns, "gobgp", GOBGP, 64512, ["inet-vpn"])
        bgp_router(ns, "crafty", CRAFT, 64512, ["inet-vpn"])

        lab.vxlan = vxlan_bridge(ns)
        conf = frr_config(work, frr_conf(work, rt))  # also gives FRR the work dir
        lab.procs["zebra"] = Zebra(ns, work)
        time.sleep(0.5)
        lab.procs["frr"] = Frr(ns, work, conf, zebra=True)
        (work / "bird.conf").write_text(bird_conf(work, rt))
        lab.procs["bird"] = Proc(ns.cmd("bird", "-f", "-c", str(work / "bird.conf"), "-s", str(work / "bird.ctl")),
                                 work / "bird.out")
        lab.procs["gobgp"] = GoBgp(ns, work, gobgp_toml(GOBGP, OURS, ["l3vpn-ipv4-unicast"]))
        for addr in (FRR, BIRD, GOBGP):
            wait_until(lambda: lab.neighbor(addr).get("state") == "Established", timeout=60,
                       what=f"session with {addr}")
        yield lab
    finally:
        for p in reversed(list((lab.procs if lab else {}).values())):
            p.stop()
        ns.delete()
        for name in ("up.log", "frr.log", "bird.log"):
            if (work / name).exists():
                print(f"--- {name} ---\n{(work / name).read_text(errors='replace')[-3000:]}")
        shutil.rmtree(work, ignore_errors=True)


# ===== the XMPP agent's inet6 and EVPN routes (tf-facts §2.3, §2.4) =====

def publish(agent, node, nlri, nh, label, encaps, op="associate", vn=VN):
    enc = "".join(f"<tunnel-encapsulation>{e}</tunnel-encapsulation>" for e in encaps)
    entry = (f"<entry><nlri>{nlri}</nlri><next-hops><next-hop><af>1</af><address>{nh}</address>"
             f"<label>{label}</label><tunnel-encapsulation-list>{enc}</tunnel-encapsulation-list>"
             f"<virtual-network>{vn}</virtual-network></next-hop></next-hops><version>1</version>"
             f"<virtual-network>{vn}</virtual-network><local-preference>200</local-preference><med>0</med></entry>")
    agent.send(agent.iq(f'<publish node="{node}"><item>{entry}</item></publish>', kind="pubsub")
               + agent.iq(f'<collection node="{VRF}"><{op} node="{node}"/></collection>', kind="collection"))


def publish_inet6(agent, prefix, label, op="associate"):
    publish(agent, f"2/1/{VRF}/{prefix}", f"<af>2</af><safi>1</safi><address>{prefix}</address>",
            VR, label, ("gre", "udp"), op)


def publish_evpn(agent, mac, ip, label, encaps=("vxlan",), op="associate"):
    publish(agent, f"25/242/{mac},{ip}/32",
            f"<af>25</af><safi>242</safi><ethernet-tag>0</ethernet-tag><mac>{mac}</mac><address>{ip}/32</address>",
            VR, label, encaps, op)


def item(agent, item_id):
    """The last pushed `<item id=...>` text for `item_id`."""
    key = f'<item id="{item_id}">'.encode()
    return agent.buf[agent.buf.rindex(key):].split(b"</item>")[0].decode()


def pump(agent, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        agent.send(KEEPALIVE)
        agent.pump()


# ===== 1. VPNv6 with FRR =====

def test_vpnv6_both_ways_with_frr(lab):
    """FRR's VPNv6 route (RD 65001:17, label 1017, the VN's target) is imported into the
    VN's inet6.0 and pushed to a subscribed agent; the agent's inet6 route reaches FRR with
    RD <vrouter>:<instance-id>, its label, the target and the vRouter as an IPv4-mapped
    IPv6 next hop (RFC 4659 §3.2.1.2, as TF sends it); withdrawals go both ways."""
    table = f"{VRF}.inet6.0"
    paths = wait_until(lambda: lab.paths(table, "2001:db8:200::/64"), what="FRR's VPNv6 route in inet6.0")
    p = paths[0]
    assert (p["protocol"], p["next_hop"], p["label"], p["rd"]) == ("BGP", FRR, 1017, "65001:17"), p

    agent = lab.agent("vr-v6")
    try:
        agent.subscribe(VRF, 3)
        agent.wait(b'<item id="2001:db8:200::/64">', timeout=30, keepalive=True)
        it = item(agent, "2001:db8:200::/64")
        assert "<af>2</af>" in it and f"<address>{FRR}</address>" in it and "<label>1017</label>" in it, it

        publish_inet6(agent, "2001:db8:5::5/128", 33)
        rd = f"{VR}:3"

        def at_frr():
            return lab.frr(f"show bgp ipv6 vpn rd {rd} 2001:db8:5::5/128 json").get(rd, {}).get("paths")
        path = wait_until(at_frr, what="the agent's inet6 route in FRR")[0]
        text = json.dumps(path)
        assert path["remoteLabel"] == 33, text
        nh = ipaddress.ip_address(path["nexthops"][0]["ip"])
        assert nh.version == 6 and nh.ipv4_mapped == ipaddress.ip_address(VR), text
        ext = path["extendedCommunity"]["string"]
        assert f"RT:{lab.rt}" in ext and "ET:11" in ext and "ET:13" in ext, text
        assert path["aspath"]["string"] == "64512", text

        # Withdrawals: the agent's (collection dissociate) reaches FRR ...
        publish_inet6(agent, "2001:db8:5::5/128", 33, op="dissociate")
        wait_until(lambda: not at_frr(), what="the inet6 withdrawal at FRR")
        # ... and FRR's reaches the VN's table and the agent.
        lab.frr_conf("ipv6 vpn", "no network 2001:db8:200::/64 rd 65001:17 label 1017")
        wait_until(lambda: not lab.paths(table, "2001:db8:200::/64"), what="FRR's VPNv6 withdrawal")
        agent.wait(b'<retract id="2001:db8:200::/64"/>', timeout=15, keepalive=True)
    finally:
        agent.close()
        lab.frr_conf("ipv6 vpn", f"network 2001:db8:200::/64 rd 65001:17 label 1017 route-map SETRT")


# ===== 2. EVPN type 2 and type 3 with FRR =====

def frr_evpn(lab, rd):
    """FRR's EVPN routes of `rd`: {prefix text: first path}."""
    out = lab.frr(f"show bgp l2vpn evpn route rd {rd} json").get(rd, {})
    return {k: v["paths"][0][0] for k, v in out.items() if isinstance(v, dict) and v.get("paths")}


def test_evpn_type2_and_type3_both_ways_with_frr(lab):
    """FRR's VNI 100 (zebra, a VXLAN device): its type-2 MAC and MAC+IP routes and its
    type-3 route land in the VN's evpn.0 with the VNI as label (the type 3's from its PMSI
    Tunnel attribute: such routes used to be dropped) and the VXLAN encapsulation, and the
    MAC routes go to the agent; the agent's MAC and MAC+IP routes (VXLAN: the VNI in the
    label field; MPLS: the label in its high 20 bits, RFC 8365 §5.1.3) reach FRR as type 2;
    withdrawals both ways. (The agent's broadcast route, which TF turns into a type 3:
    test_evpn_bum.py.)"""
    if not lab.vxlan:
        pytest.skip("no VXLAN in this kernel: FRR originates no EVPN routes without a VNI device")
    table = f"{VRF}.evpn.0"
    frr_keys = ["02:aa:00:00:00:01,0.0.0.0/32", "02:aa:00:00:00:01,10.1.1.77/32", f"ff:ff:ff:ff:ff:ff,{FRR}/32"]
    for k in frr_keys:
        p = wait_until(lambda: lab.paths(table, k), what=f"FRR's {k} in evpn.0")[0]
        assert (p["next_hop"], p["label"], p["encap"], p["rd"]) == (FRR, 100, ["vxlan"], "65001:100"), (k, p)

    agent = lab.agent("vr-evpn")
    try:
        agent.subscribe(VRF, 3)
        agent.wait(b'<item id="02:aa:00:00:00:01,10.1.1.77/32">', timeout=30, keepalive=True)
        it = item(agent, "02:aa:00:00:00:01,10.1.1.77/32")
        assert "<label>100</label>" in it and "<tunnel-encapsulation>vxlan</tunnel-encapsulation>" in it, it

        publish_evpn(agent, "02:00:00:00:00:01", "0.0.0.0", 5001)
        publish_evpn(agent, "02:00:00:00:00:02", "10.1.1.2", 5001)
        publish_evpn(agent, "02:00:00:00:00:03", "10.1.1.3", 40, encaps=("gre", "udp"))
        rd = f"{VR}:3"
        want = {
            "[2]:[0]:[48]:[02:00:00:00:00:01]": ("5001", "ET:8"),
            "[2]:[0]:[48]:[02:00:00:00:00:02]:[32]:[10.1.1.2]": ("5001", "ET:8"),
            "[2]:[0]:[48]:[02:00:00:00:00:03]:[32]:[10.1.1.3]": (str(40 << 4 | 1), "ET:13"),
        }
        routes = wait_until(lambda: (lambda r: len(r) == 3 and r)(frr_evpn(lab, rd)), what="the agent's EVPN routes in FRR")
        assert set(routes) == set(want), routes
        for k, (vni, et) in want.items():
            p = routes[k]
            assert p["nexthops"][0]["ip"] == VR and p["aspath"]["string"] == "64512", (k, p)
            ext = p["extendedCommunity"]["string"]
            assert f"RT:{lab.rt}" in ext and et in ext, (k, p)
            assert p.get("vni") == vni, (k, p)

        # Withdrawals: FRR's MAC+IP (its ARP entry goes) leaves the table and the agent ...
        lab.ns.run("ip", "neigh", "del", "10.1.1.77", "dev", "br100")
        wait_until(lambda: not lab.paths(table, frr_keys[1]), what="FRR's MAC+IP withdrawal")
        agent.wait(f'<retract id="{frr_keys[1]}"/>'.encode(), timeout=15, keepalive=True)
        assert lab.paths(table, frr_keys[0]), "the MAC-only route stays"
        # ... and the agent's MAC+IP route leaves FRR.
        publish_evpn(agent, "02:00:00:00:00:02", "10.1.1.2", 5001, op="dissociate")
        wait_until(lambda: len(frr_evpn(lab, rd)) == 2, what="the agent's EVPN withdrawal at FRR")
        assert "[2]:[0]:[48]:[02:00:00:00:00:02]:[32]:[10.1.1.2]" not in frr_evpn(lab, rd)
        # FRR's type 3 goes with its VNI (the VXLAN device down) and comes back with it.
        lab.ns.run("ip", "link", "set", "vxlan100", "down")
        wait_until(lambda: not lab.paths(table, frr_keys[2]), what="FRR's type-3 withdrawal")
        lab.ns.run("ip", "link", "set", "vxlan100", "up")
        wait_until(lambda: lab.paths(table, frr_keys[2]), what="FRR's type 3 again")
    finally:
        agent.close()
        lab.ns.run("ip", "neigh", "replace", "10.1.1.77", "lladdr", "02:aa:00:00:00:01", "dev", "br100",
                   "nud", "permanent")


# ===== 3. BIRD as an eBGP VPNv4 gateway =====

def bird_route(lab, rd, prefix, table="vpntab"):
    """BIRD's `show route all` block for `rd prefix` in `table`, or ''."""
    out = lab.birdc("show", "route", "table", table, "all")
    m = re.search(rf"^{re.escape(rd)} {re.escape(prefix)} .*?(?=^\S|\Z)", out, re.M | re.S)
    return m.group(0) if m else ""


def test_bird_gateway_vpnv4_both_ways(lab):
    """BIRD's VPNv4 route reaches the VN; the agent's route reaches BIRD over eBGP with our
    AS prepended, the vRouter as next hop (TF keeps it: a gateway tunnels straight to the
    vRouter), its label and the VN's target; FRR's route reaches BIRD as `64512 65001`;
    VPNv6 both ways; withdrawals both ways."""
    table = f"{VRF}.inet.0"
    p = wait_until(lambda: lab.paths(table, "10.210.0.0/24"), what="BIRD's route in the VN")[0]
    assert (p["next_hop"], p["rd"], p["as_path_len"]) == (BIRD, "65002:1", 1), p

    agent = lab.agent("vr-gw")
    try:
        agent.subscribe(VRF, 4)
        agent.publish(VRF, VN, "10.50.0.7", VR, 29)
        r = wait_until(lambda: bird_route(lab, f"{VR}:4", "10.50.0.7/32"), what="the agent's route at BIRD")
        assert "BGP.as_path: 64512\n" in r and f"BGP.next_hop: {VR}" in r, r
        assert "BGP.mpls_label_stack: 29" in r and f"(rt, {lab.rt.replace(':', ', ')})" in r, r
        assert "BGP.local_pref" not in r or "[AS64512i]" in r, r
        frr = wait_until(lambda: bird_route(lab, "65001:7", "10.200.1.0/24"), what="FRR's route at BIRD")
        assert "BGP.as_path: 64512 65001" in frr, frr
        # VPNv6 both ways (BIRD's vpn6 channel with `extended next hop`, see bird_conf).
        p6 = wait_until(lambda: lab.paths(f"{VRF}.inet6.0", "2001:db8:210::/64"), what="BIRD's VPNv6 route")[0]
        assert (p6["next_hop"], p6["rd"]) == (BIRD, "65002:2"), p6
        publish_inet6(agent, "2001:db8:5::8/128", 43)
        r6 = wait_until(lambda: bird_route(lab, f"{VR}:4", "2001:db8:5::8/128", "vpntab6"),
                        what="the agent's inet6 route at BIRD")
        assert f"BGP.next_hop: {VR}" in r6 and "BGP.mpls_label_stack: 43" in r6, r6

        agent.publish(VRF, VN, "10.50.0.7", VR, 29, op="dissociate")
        wait_until(lambda: not bird_route(lab, f"{VR}:4", "10.50.0.7/32"), what="the withdrawal at BIRD")
        lab.birdc("disable", "st")
        wait_until(lambda: not lab.paths(table, "10.210.0.0/24"), what="BIRD's withdrawal in the VN")
    finally:
        agent.close()
        lab.birdc("enable", "st")


# ===== a crafted BGP speaker (RFC 4271 §4 by hand) =====

MARK = b"\xff" * 16


def bgp_msg(kind, body):
    return MARK + struct.pack("!HB", 19 + len(body), kind) + body


def attr(flags, code, value):
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def rt_bytes(rt):
    asn, n = rt.split(":")
    return struct.pack("!BBHI", 0, 2, int(asn), int(n))


def vpn_nlri(label, rd_n, prefix):
    net = ipaddress.ip_network(prefix)
    body = struct.pack("!I", label << 4 | 1)[1:] + struct.pack("!HHI", 0, 64512, rd_n)
    return bytes([88 + net.prefixlen]) + body + net.network_address.packed[: (net.prefixlen + 7) // 8]


def vpn_update(rt, prefix, ext=None, origin=b"\x40\x01\x01\x00", mp=None):
    """An iBGP VPNv4 UPDATE for `prefix` (RD 64512:1, label 500) from CRAFT; `ext` and
    `origin` replace the EXTENDED_COMMUNITIES and ORIGIN attributes, `mp` MP_REACH's value."""
    if mp is None:
        nh = b"\0" * 8 + socket.inet_aton(CRAFT)
        mp = struct.pack("!HBB", 1, 128, len(nh)) + nh + b"\0" + vpn_nlri(500, 1, prefix)
    attrs = (origin + attr(0x40, 2, b"") + attr(0x40, 5, struct.pack("!I", 100))
             + (ext if ext is not None else attr(0xC0, 16, rt_bytes(rt))) + attr(0x80, 14, mp))
    return bgp_msg(2, struct.pack("!HH", 0, len(attrs)) + attrs)


class Crafted:
    """An iBGP speaker (AS 64512, VPNv4) on CRAFT, connected to the node."""

    def __init__(self, lab):
        caps = (b"\x01\x04\x00\x01\x00\x80"  # MP: VPNv4
                + b"\x41\x04" + struct.pack("!I", 64512) + b"\x02\x00")  # 4-octet AS, route refresh
        opt = bytes([2, len(caps)]) + caps
        open_ = bgp_msg(1, struct.pack("!BHH4sB", 4, 64512, 90, socket.inet_aton(CRAFT), len(opt)) + opt)
        self.buf = b""
        with in_netns(lab.ns.name):
            for _ in range(40):  # the node may be between two connect retries
                self.s = socket.socket()
                self.s.bind((CRAFT, 0))
                try:
                    self.s.connect((OURS, 179))
                    self.s.sendall(open_ + bgp_msg(4, b""))
                    if self.read()[0] == 1 and self.read()[0] == 4:
                        break
                except (OSError, EOFError):
                    pass
                self.s.close()
                time.sleep(0.5)
            else:
                raise AssertionError("crafted speaker: no session")

    def read(self, timeout=5.0):
        """The next message as (type, body)."""
        self.s.settimeout(timeout)
        while len(self.buf) < 19 or len(self.buf) < struct.unpack("!H", self.buf[16:18])[0]:
            data = self.s.recv(65536)
            if not data:
                raise EOFError("closed")
            self.buf += data
        n = struct.unpack("!H", self.buf[16:18])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m[18], m[19:]

    def messages(self, seconds):
        """Every message within `seconds`, keepalives answered."""
        out, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                kind, body = self.read(max(0.05, end - time.monotonic()))
            except (socket.timeout, TimeoutError):
                break
            out.append((kind, body))
            if kind == 4:
                self.s.sendall(bgp_msg(4, b""))
        return out

    def notification(self, timeout=5.0):
        """(code, subcode, data hex) of the NOTIFICATION the node sends before closing."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            kind, body = self.read(max(0.05, end - time.monotonic()))
            if kind == 3:
                return body[0], body[1], body[2:].hex()
        return None

    def close(self):
        self.s.close()


# ===== 4. iBGP split horizon =====

def test_ibgp_learned_route_is_not_sent_to_another_ibgp_peer(lab):
    """Two iBGP peers without a cluster id (full mesh, tf-facts §3): the crafted speaker's
    route reaches BIRD (eBGP) but not GoBGP, and GoBGP's route does not reach the crafted
    speaker, while the node's own (agent) routes reach both (RFC 4271 §9.2.1)."""
    sp = Crafted(lab)
    agent = lab.agent("vr-sh")
    try:
        sp.s.sendall(vpn_update(lab.rt, "10.230.1.0/24"))
        wait_until(lambda: lab.paths(f"{VRF}.inet.0", "10.230.1.0/24"), what="the crafted route in the VN")
        gobgp = lab.procs["gobgp"]
        gobgp.cli("global", "rib", "-a", "vpnv4", "add", "10.231.0.0/24", "label", "2001", "rd", "64512:9",
                  "rt", lab.rt)
        wait_until(lambda: lab.paths(f"{VRF}.inet.0", "10.231.0.0/24"), what="GoBGP's route in the VN")
        agent.subscribe(VRF, 5)
        agent.publish(VRF, VN, "10.50.0.8", VR, 31)
        wait_until(lambda: bird_route(lab, "64512:1", "10.230.1.0/24"), what="the crafted route at BIRD")
        adj = lambda: gobgp.cli("neighbor", OURS, "adj-in", "-a", "vpnv4", check=False).stdout  # noqa: E731
        wait_until(lambda: "10.50.0.8/32" in adj(), what="the agent's route at GoBGP")
        assert "10.230.1.0" not in adj(), adj()
        got = b"".join(body for kind, body in sp.messages(3) if kind == 2)
        assert socket.inet_aton("10.50.0.8") in got, "the agent's route reaches the crafted speaker"
        assert bytes([10, 231, 0]) not in got, "GoBGP's route must not"
        gobgp.cli("global", "rib", "-a", "vpnv4", "del", "10.231.0.0/24", "label", "2001", "rd", "64512:9",
                  "rt", lab.rt)
    finally:
        agent.close()
        sp.close()


def test_split_horizon_between_two_control_nodes(lab):
    """A second control node (cn2, its bgp-router referring to cn1's: TF's iBGP mesh, no
    cluster id) with an agent of its own: cn2's agent route reaches cn1 over iBGP, and cn1
    passes it to its eBGP peers (BIRD sees `64512` and the vRouter as next hop) but not to
    GoBGP, another iBGP peer (RFC 4271 §9.2.1); cn1's agent route reaches cn2's agent; each
    agent's EVPN broadcast olist lists the other's vRouter and FRR's VTEP (type 3s)."""
    cn2_addr, vr2 = "10.77.0.8", "10.77.0.19"
    lab.ns.run("ip", "addr", "add", f"{cn2_addr}/32", "dev", "lo")
    post(lab.ns, "bgp-routers", {
        "fq_name": FABRIC + ["cn2"], "parent_type": "routing-instance",
        "bgp_router_parameters": {"address": cn2_addr, "identifier": cn2_addr, "autonomous_system": 64512,
                                  "port": 179, "router_type": "control-node", "vendor": "contrail",
                                  "address_families": {"family": ["inet-vpn", "inet6-vpn", "e-vpn",
                                                                  "route-target"]}},
        "bgp_router_refs": [{"to": FABRIC + ["cn1"], "attr": {}}]})
    cn2 = Proc(lab.ns.cmd(str(filament_bin()), "control", "--api", API, "--name", "cn2",
                          "--xmpp-listen", "127.0.0.1:15269", "--introspect", "127.0.0.1:18084",
                          "--bgp-listen", f"{cn2_addr}:179", "--bgp-address", cn2_addr), lab.work / "cn2.log")
    a1 = a2 = None
    try:
        wait_until(lambda: lab.neighbor(cn2_addr).get("state") == "Established", timeout=60,
                   what="the iBGP session between the control nodes")
        a1 = lab.agent("vr-cn1")
        with in_netns(lab.ns.name):
            a2 = Agent(15269, "vr-cn2")
        a1.subscribe(VRF, 9)
        a2.subscribe(VRF, 9)
        a1.publish(VRF, VN, "10.60.0.1", VR, 41)
        a2.publish(VRF, VN, "10.60.0.2", vr2, 42)
        p = wait_until(lambda: lab.paths(f"{VRF}.inet.0", "10.60.0.2/32"), what="cn2's agent route at cn1")[0]
        assert (p["protocol"], p["source"], p["next_hop"], p["label"]) == ("BGP", cn2_addr, vr2, 42), p
        a2.wait(b'<item id="10.60.0.1/32">', timeout=30, keepalive=True)
        r = wait_until(lambda: bird_route(lab, f"{vr2}:9", "10.60.0.2/32"), what="cn2's route at BIRD")
        assert "BGP.as_path: 64512\n" in r and f"BGP.next_hop: {vr2}" in r, r
        gobgp = lab.procs["gobgp"]
        adj = lambda: gobgp.cli("neighbor", OURS, "adj-in", "-a", "vpnv4", check=False).stdout  # noqa: E731
        wait_until(lambda: "10.60.0.1/32" in adj(), what="cn1's own agent route at GoBGP")
        pump(a1, 2)
        assert "10.60.0.2/32" not in adj(), adj()

        # EVPN broadcast across the control nodes: each agent's olist has the other's
        # vRouter (its type 3 over iBGP) and FRR's VTEP (FRR's type 3, through cn1)
        from test_evpn_bum import BUM_ID, olist, publish_bum  # it imports this module
        publish_bum(a1, 100)
        publish_bum(a2, 100, nh=vr2)
        frr_vtep = {FRR} if lab.vxlan else set()
        for a, want in ((a1, {vr2} | frr_vtep), (a2, {VR} | frr_vtep)):
            wait_until(lambda: (pump(a, 0.3), {x for x, _, _ in olist(a)} == want)[1],
                       what=f"{sorted(want)} in {a.name}'s olist")
        publish_bum(a2, 100, op="dissociate", nh=vr2)
        wait_until(lambda: (pump(a1, 0.3), {x for x, _, _ in olist(a1)} == frr_vtep)[1] if frr_vtep
                   else (pump(a1, 0.3), f'<retract id="{BUM_ID}"/>'.encode() in a1.buf)[1],
                   what="cn2's vRouter out of cn1's agent's olist")
    finally:
        for a in (a1, a2):
            if a:
                a.close()
        cn2.stop()


# ===== 5. route refresh =====

def frr_msgs(lab, key):
    n = lab.frr(f"show bgp neighbors {OURS} json").get(OURS, {})
    return n.get("messageStats", {}).get(key, 0)


def test_route_refresh_from_frr_and_gobgp(lab):
    """`clear bgp * soft in` on FRR (ROUTE-REFRESH for its three families) makes the node
    send its routes again; `soft out` makes FRR re-send its own, which changes nothing here;
    GoBGP's `softresetin` keeps our routes. No session flaps."""
    flaps = {a: lab.neighbor(a)["flaps"] for a in (FRR, GOBGP)}
    agent = lab.agent("vr-rr")
    try:
        agent.subscribe(VRF, 6)
        agent.publish(VRF, VN, "10.50.0.9", VR, 35)
        wait_until(lambda: "10.50.0.9/32" in json.dumps(lab.frr("show bgp ipv4 vpn json")), what="route at FRR")
        before = frr_msgs(lab, "updatesRecv")
        lab.vty("clear bgp * soft in")
        wait_until(lambda: frr_msgs(lab, "updatesRecv") > before, what="our UPDATEs again at FRR")
        assert frr_msgs(lab, "routeRefreshSent") >= 3
        sent = frr_msgs(lab, "updatesSent")
        lab.vty("clear bgp * soft out")
        wait_until(lambda: frr_msgs(lab, "updatesSent") > sent, what="FRR re-sending")
        time.sleep(1)
        assert lab.paths(f"{VRF}.inet.0", "10.200.1.0/24"), "FRR's route is still there"

        # GoBGP 3.10's softresetin re-reads its own Adj-RIB-In: it sends no ROUTE-REFRESH
        # (its counters stay 0), so only the session and the routes are checked.
        gobgp = lab.procs["gobgp"]
        gobgp.cli("neighbor", OURS, "softresetin", "-a", "vpnv4")
        time.sleep(1)
        assert "10.50.0.9/32" in gobgp.cli("neighbor", OURS, "adj-in", "-a", "vpnv4").stdout
        assert "10.50.0.9/32" in gobgp.cli("global", "rib", "-a", "vpnv4").stdout
        assert {a: lab.neighbor(a)["flaps"] for a in (FRR, GOBGP)} == flaps
    finally:
        agent.close()


# ===== 6. RFC 7606 =====

def test_rfc7606_treat_as_withdraw_and_resets(lab):
    """Malformed UPDATEs from the crafted speaker. Treat-as-withdraw (RFC 7606 §7.14
    EXTENDED_COMMUNITIES length, §7.3 bad ORIGIN value, §3 c attribute flags on a
    well-known attribute): the route leaves the VN, the session stays, and `neighbors`
    names the attribute and error as last_reason. A malformed MP_REACH_NLRI (NLRI overrun,
    zero-length next hop; §7.11: session reset) and a truncated message header (RFC 4271 §6.1: Bad Message Length, the length
    as data) get a NOTIFICATION and the reset shows in last_reason."""
    table, prefix = f"{VRF}.inet.0", "10.240.1.0/24"
    sp = Crafted(lab)
    try:
        flaps = lab.neighbor(CRAFT)["flaps"]
        cases = [
            (vpn_update(lab.rt, prefix, ext=attr(0xC0, 16, rt_bytes(lab.rt)[:7])),
             "attribute 16 (EXTENDED_COMMUNITIES): Attribute Length Error (Update/5)"),
            (vpn_update(lab.rt, prefix, origin=b"\x40\x01\x01\x07"),
             "attribute 1 (ORIGIN): Invalid ORIGIN Attribute (Update/6)"),
            (vpn_update(lab.rt, prefix, origin=b"\xc0\x01\x01\x00"),
             "attribute 1 (ORIGIN): Attribute Flags Error (Update/4)"),
        ]
        for bad, reason in cases:
            sp.s.sendall(vpn_update(lab.rt, prefix))
            wait_until(lambda: lab.paths(table, prefix), what="the well-formed route")
            sp.s.sendall(bad)
            wait_until(lambda: not lab.paths(table, prefix), what=f"treat-as-withdraw ({reason})")
            row = wait_until(lambda: (lambda r: reason in (r.get("last_reason") or "") and r)(lab.neighbor(CRAFT)),
                             what=f"last_reason {reason}")
            assert row["state"] == "Established" and row["flaps"] == flaps, row
            assert row["last_reason"].startswith("treat-as-withdraw: "), row
        assert lab.neighbor(CRAFT)["treat_as_withdraw"] == 3
        assert not [k for k, _ in sp.messages(0.5) if k == 3], "no NOTIFICATION for treat-as-withdraw"

        # MP_REACH_NLRI whose NLRI runs past the attribute: session reset.
        nh = b"\0" * 8 + socket.inet_aton(CRAFT)
        mp = struct.pack("!HBB", 1, 128, len(nh)) + nh + b"\0" + bytes([88 + 24]) + b"\x00\x01"
        sp.s.sendall(vpn_update(lab.rt, prefix, mp=mp))
        code, sub, _ = sp.notification()
        assert code == 3, (code, sub)
        row = wait_until(lambda: (lambda r: r.get("flaps", 0) > flaps and r)(lab.neighbor(CRAFT)),
                         what="the reset in neighbors")
        assert row["last_reason"].startswith(f"sent Update/{sub} ("), row
        sp.close()

        # MP_REACH_NLRI with a zero-length next hop (§7.11; it used to be taken, and the
        # route installed with an empty next hop): session reset, Optional Attribute Error.
        sp = Crafted(lab)
        flaps = lab.neighbor(CRAFT)["flaps"]
        mp = struct.pack("!HBB", 1, 128, 0) + b"\0" + vpn_nlri(500, 1, prefix)
        sp.s.sendall(vpn_update(lab.rt, prefix, mp=mp))
        assert sp.notification()[:2] == (3, 9)
        wait_until(lambda: lab.neighbor(CRAFT).get("flaps", 0) > flaps, what="the reset in neighbors")
        assert not lab.paths(table, prefix)
        sp.close()

        # A header whose length is below the minimum: NOTIFICATION 1/2 with the length.
        sp = Crafted(lab)
        sp.s.sendall(MARK + struct.pack("!HB", 18, 4))
        assert sp.notification() == (1, 2, "0012")
        wait_until(lambda: lab.neighbor(CRAFT).get("last_reason") == "sent MessageHeader/2 (Bad Message Length), data 0012",
                   what="the header error in neighbors")
    finally:
        sp.close()


def test_header_length_above_4096_is_bad_message_length(lab):
    """RFC 4271 §6.1: a Length field greater than 4096 (extended messages not negotiated)
    is Bad Message Length, the Length as data, at once: not a wait for 5000 octets until
    the hold timer runs out (the reader's framer used to frame any Length >= 19)."""
    sp = Crafted(lab)
    try:
        sp.s.sendall(MARK + struct.pack("!HB", 5000, 2) + b"\0" * 8)
        assert sp.notification() == (1, 2, "1388")
    finally:
        sp.close()


def test_nothing_panicked(lab):
    log = (lab.work / "up.log").read_text(errors="replace")
    assert "panicked" not in log, log[-3000:]
    assert lab.procs["up"].proc.poll() is None, "filament up is still running"
