"""EVPN broadcast (BUM) between TF-protocol agents and FRR, as TF's control node does it
(issue 4): an agent's broadcast route (`ff:ff:ff:ff:ff:ff`) is an EVPN type-3 route toward
BGP peers (RFC 7432 §7.3, RD <vrouter>:<instance-id>, PMSI Tunnel attribute §11.2), and a
BGP peer's type 3 is a remote VTEP in the `<olist>` of the one broadcast item an agent gets
(`xmpp_message_builder.cc` `AddEnetReach`). Runs on test_bgp_interop's lab (FRR with zebra
and VNI 100); the two-control-node case is in its split-horizon test, with these helpers.

Needs root, FRR (bgpd, zebra), BIRD 2 and GoBGP; skips otherwise.
"""

import json
import re

import pytest

from bgp_helpers import FRR, wait_until
from test_bgp_interop import (  # noqa: F401  (lab is a fixture, pytestmark its skips)
    VR, VRF, frr_evpn, item, lab, publish, pytestmark,
)

BUM_ID = "ff:ff:ff:ff:ff:ff,0.0.0.0/32"


def publish_bum(agent, label, op="associate", nh=VR):
    """The agent's broadcast route (TF's `BuildEvpnMulticastMessage` in key form)."""
    publish(agent, "25/242/ff:ff:ff:ff:ff:ff,0.0.0.0/32",
            "<af>25</af><safi>242</safi><ethernet-tag>0</ethernet-tag><mac>ff:ff:ff:ff:ff:ff</mac>"
            "<address>0.0.0.0/32</address>", nh, label, ("vxlan",), op)


def olist(agent):
    """(address, label, encapsulations) of the last broadcast item's <olist> next hops."""
    if f'<item id="{BUM_ID}">'.encode() not in agent.buf:
        return []
    it = item(agent, BUM_ID)
    ol = it.split("<olist>", 1)[1].split("</olist>", 1)[0] if "<olist>" in it else ""
    return [(re.search(r"<address>([^<]*)<", nh).group(1), re.search(r"<label>([^<]*)<", nh).group(1),
             re.findall(r"<tunnel-encapsulation>([^<]*)<", nh)) for nh in ol.split("</next-hop>")[:-1]]


def test_evpn_broadcast_type3_both_ways_with_frr(lab):
    """EVPN BUM as TF does it (issue 4): the agent's broadcast route (ff:ff:ff:ff:ff:ff)
    reaches FRR as a type-3 route, RD <vrouter>:<instance-id>, originator the vRouter, with
    the PMSI Tunnel attribute (ingress replication, the VNI; FRR prints it), and FRR's zebra
    puts the vRouter in VNI 100's flood list (the all-zero FDB entry of vxlan100). FRR's own type 3 reaches the agent in the
    <olist> of its one broadcast item (FRR's VTEP, the VNI, vxlan), never as a MAC item;
    withdrawals both ways."""
    if not lab.vxlan:
        pytest.skip("no VXLAN in this kernel: FRR has no VNI to flood to")
    rd, orig = f"{VR}:4", f"[3]:[0]:[32]:[{VR}]"

    def flood_list():
        return lab.ns.run("bridge", "fdb", "show", "dev", "vxlan100", check=False).stdout

    def at_frr():
        return frr_evpn(lab, rd).get(orig)
    wait_until(lambda: lab.paths(f"{VRF}.evpn.0", f"ff:ff:ff:ff:ff:ff,{FRR}/32"), what="FRR's type 3")
    agent = lab.agent("vr-bum")
    # FRR imports a route into its VNI only with a reachable next hop: the vRouter behind d1p
    lab.ns.run("ip", "route", "add", f"{VR}/32", "dev", "d1p")
    try:
        agent.subscribe(VRF, 4)
        publish_bum(agent, 100)
        # FRR's VTEP in the agent's olist
        agent.wait(f'<item id="{BUM_ID}">'.encode(), timeout=30, keepalive=True)
        assert olist(agent) == [(FRR, "100", ["vxlan"])], item(agent, BUM_ID)
        assert f'<item id="ff:ff:ff:ff:ff:ff,{FRR}/32">'.encode() not in agent.buf, "a type 3 pushed as a MAC item"
        # our type 3 at FRR, and FRR floods VNI 100 to the vRouter
        p = wait_until(at_frr, what="the agent's type 3 in FRR")
        assert p["nexthops"][0]["ip"] == VR and p["aspath"]["string"] == "64512", p
        ext = p["extendedCommunity"]["string"]
        assert f"RT:{lab.rt}" in ext and "ET:8" in ext, p
        multicast = json.dumps(lab.frr("show bgp l2vpn evpn route type multicast json"))
        assert orig in multicast, multicast
        shown = lab.vty(f"show bgp l2vpn evpn route rd {rd}")
        assert "PMSI Tunnel Type: Ingress Replication, label: 100" in shown, shown
        wait_until(lambda: f"00:00:00:00:00:00 dst {VR}" in flood_list(), what="the vRouter in FRR's flood list")

        # FRR's type 3 goes (VNI down): a retract, the agent is alone; back: in the olist again
        lab.ns.run("ip", "link", "set", "vxlan100", "down")
        agent.wait(f'<retract id="{BUM_ID}"/>'.encode(), timeout=30, keepalive=True)
        agent.buf = b""
        lab.ns.run("ip", "link", "set", "vxlan100", "up")
        agent.wait(f'<item id="{BUM_ID}">'.encode(), timeout=30, keepalive=True)
        assert olist(agent) == [(FRR, "100", ["vxlan"])], item(agent, BUM_ID)

        # the agent withdraws its broadcast route: the type 3 leaves FRR and its flood list
        wait_until(at_frr, what="the agent's type 3 in FRR again")
        publish_bum(agent, 100, op="dissociate")
        wait_until(lambda: not at_frr(), what="the type-3 withdrawal at FRR")
        wait_until(lambda: f"dst {VR}" not in flood_list(), what="the vRouter out of FRR's flood list")
    finally:
        agent.close()
        lab.ns.run("ip", "route", "del", f"{VR}/32", "dev", "d1p", check=False)
