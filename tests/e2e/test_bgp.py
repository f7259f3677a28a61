"""BGP interop against real speakers (issue 4): our speaker (the bgp_peer
example over crates/bgp) with FRR bgpd and GoBGP, all in one private netns.

* FRR (eBGP, AS 65001): VPNv4 and EVPN routes cross both ways with the right
  RD, route target, label and next hop; a withdrawal reaches FRR.
* GoBGP (iBGP, route-target family): it is sent only the VPN routes whose
  targets its VRFs import (RFC 4684), learned from the membership routes it
  originates.

Needs root, FRR and GoBGP; skips otherwise.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from bgp_helpers import (
    FRR, GOBGP, OURS, Frr, GoBgp, Netns, OurSpeaker, bgp_peer_bin, frr_config,
    frr_vpn_conf, gobgp_toml, in_netns, missing_tools, ns_http, wait_until,
)
from test_control import Agent

RT_X = "target:64512:8000001"
RT_Y = "target:64512:8000002"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing tools: {missing_tools()}"),
]


@pytest.fixture
def lab():
    binary = bgp_peer_bin()
    work = Path(tempfile.mkdtemp(prefix="fbgp-"))
    os.chmod(work, 0o755)
    ns = Netns()
    procs = []
    try:
        yield ns, work, binary, procs
    finally:
        for p in reversed(procs):
            p.stop()
        ns.delete()
        for p in procs:
            tail = Path(p.log_path).read_text(errors="replace")[-3000:] if Path(p.log_path).exists() else ""
            print(f"--- {p.log_path.name} ---\n{tail}")
        shutil.rmtree(work, ignore_errors=True)


FRR_CONF = frr_vpn_conf(65001, evpn=True)

OUR_VPN = {
    "family": "inet-vpn", "rd": f"{OURS}:2", "prefix": "10.1.1.3/32", "labels": [17],
    "next_hop": OURS, "route_targets": [RT_X], "encapsulation": ["mpls-o-udp"],
}
# EVPN label fields are raw 3-octet values: MPLS label 18 is 18 << 4 | 1.
OUR_MAC = {
    "family": "e-vpn", "route_type": 2, "rd": f"{OURS}:2", "mac": "02:00:00:00:00:01",
    "ip": "10.1.1.3", "labels": [18 << 4 | 1], "next_hop": OURS, "route_targets": [RT_X],
}


def find_paths(tree, key):
    """Every list of paths stored under `key` anywhere in FRR's JSON."""
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                out.append(v)
            out.extend(find_paths(v, key))
    elif isinstance(tree, list):
        for v in tree:
            out.extend(find_paths(v, key))
    return out


def frr_vpn_path(frr, rd, prefix):
    table = frr.show("show bgp ipv4 vpn json")
    rds = table.get("routes", {}).get("routeDistinguishers", {})
    paths = rds.get(rd, {}).get(prefix, [])
    return paths[0] if paths else None


def test_frr_exchanges_vpnv4_and_evpn_both_ways(lab):
    ns, work, binary, procs = lab
    conf = frr_config(work, FRR_CONF.replace("{work}", str(work)))
    frr = Frr(ns, work, conf)
    procs.append(frr)
    ours = OurSpeaker(ns, binary, work, [f"{FRR},65001,local={OURS}"], [OUR_VPN, OUR_MAC])
    procs.append(ours)
    ours.wait_for(lambda e: e.get("event") == "state" and e.get("state") == "Established",
                  what="session with FRR")

    # FRR -> us: its static VPNv4 route with the route-map's target.
    vpn = ours.learned(FRR, family="inet-vpn", rd="65001:7", prefix="10.200.1.0/24")
    assert vpn["labels"] == [1007]
    assert vpn["next_hop"] == FRR
    assert vpn["route_targets"] == [RT_X]
    assert vpn["as_path"] == [65001]
    # FRR -> us: EVPN type 5 (label 2001 in the high 20 bits of the field).
    t5 = ours.learned(FRR, family="e-vpn", route_type=5, rd="65001:8")
    assert t5["prefix"] == "10.201.0.0/24"
    assert t5["labels"] == [2001 << 4 | 1]
    assert t5["next_hop"] == FRR

    # us -> FRR: VPNv4 with RD, label, next hop, target, encapsulation.
    path = wait_until(lambda: frr_vpn_path(frr, f"{OURS}:2", "10.1.1.3/32"),
                      what="our VPNv4 route in FRR")
    detail = frr.show(f"show bgp ipv4 vpn rd {OURS}:2 10.1.1.3/32 json")
    path = detail[f"{OURS}:2"]["paths"][0]
    text = json.dumps(path)
    assert path.get("remoteLabel") == 17, text
    assert any(n.get("ip") == OURS for n in path.get("nexthops", [])), text
    ext = path.get("extendedCommunity", {}).get("string", "")
    assert "RT:64512:8000001" in ext and "ET:13" in ext, text
    assert path.get("aspath", {}).get("string") == "64512", text
    assert path.get("peer", {}).get("type") == "external", text

    # us -> FRR: EVPN type 2 for the MAC/IP.
    def frr_mac():
        t = frr.show("show bgp l2vpn evpn route type macip json")
        return [p for p in find_paths(t, "paths") if "02:00:00:00:00:01" in json.dumps(p)]
    macs = wait_until(frr_mac, what="our EVPN type-2 route in FRR")
    mac = macs[0][0][0]  # "paths": [[path, ...]]
    text = json.dumps(mac)
    assert mac["ip"] == "10.1.1.3", text
    assert mac["extendedCommunity"]["string"] == "RT:64512:8000001", text
    assert mac["nexthops"][0]["ip"] == OURS, text
    assert mac["path"] == "64512", text

    # A withdrawal reaches FRR.
    ours.command({"op": "withdraw", **OUR_VPN})
    wait_until(lambda: frr_vpn_path(frr, f"{OURS}:2", "10.1.1.3/32") is None,
               what="withdrawal in FRR")


GOBGP_TOML = gobgp_toml(GOBGP, OURS, ["l3vpn-ipv4-unicast", "rtc"])


def test_gobgp_gets_only_the_targets_it_asked_for(lab):
    ns, work, binary, procs = lab
    gobgp = GoBgp(ns, work, GOBGP_TOML)
    procs.append(gobgp)
    x = dict(OUR_VPN)
    y = dict(OUR_VPN, rd=f"{OURS}:3", prefix="10.2.2.3/32", labels=[19], route_targets=[RT_Y])
    ours = OurSpeaker(ns, binary, work, [f"{GOBGP},64512,local={OURS}"], [x, y])
    procs.append(ours)
    ours.wait_for(lambda e: e.get("event") == "state" and e.get("state") == "Established",
                  what="session with GoBGP")

    def adj_in():
        out = gobgp.cli("neighbor", OURS, "adj-in", "-a", "vpnv4", check=False).stdout
        return out

    # No VRF yet: GoBGP asked for no target and gets no VPN route, even after
    # our wait for its route-target End-of-RIB has run out.
    time.sleep(3)
    assert "10.1.1.3/32" not in adj_in()
    assert "10.2.2.3/32" not in adj_in()

    # A VRF importing X makes GoBGP originate membership for X.
    gobgp.cli("vrf", "add", "red", "id", "1", "rd", "64512:100", "rt", "import", "64512:8000001",
              "export", "64512:8000001")
    rtc = ours.learned(GOBGP, family="route-target")
    assert rtc["route_target"] == RT_X
    assert rtc["origin_as"] == 64512
    wait_until(lambda: "10.1.1.3/32" in adj_in(), what="route X at GoBGP")
    time.sleep(1)
    assert "10.2.2.3/32" not in adj_in(), "route Y was not asked for"
    assert "[17]" in adj_in()

    # A second VRF importing Y brings Y.
    gobgp.cli("vrf", "add", "blue", "id", "2", "rd", "64512:200", "rt", "import", "64512:8000002",
              "export", "64512:8000002")
    wait_until(lambda: "10.2.2.3/32" in adj_in(), what="route Y at GoBGP")

    # Deleting the first VRF withdraws its membership, and we withdraw X.
    gobgp.cli("vrf", "del", "red")
    wait_until(lambda: "10.1.1.3/32" not in adj_in(), what="route X withdrawn from GoBGP")
    assert "10.2.2.3/32" in adj_in()


# ===== the control node's BGP side (crates/control/src/bgp_peers.rs) =====


def filament_bin():
    return Path(os.environ.get("FILAMENT_BIN", Path(__file__).resolve().parents[2] / "target/debug/filament"))


@pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built")
def test_control_node_imports_frr_vpn_route_into_the_vn(lab):
    """FRR announces a VPNv4 route with a VN's route target; the control node's speaker
    learns it (peering from bgp-router objects), the RIB imports it into the VN's table and
    pushes it to a subscribed XMPP agent; the agent's route reaches FRR as VPNv4 with the
    right RD, target, label and next hop, and so does its withdrawal."""
    from bgp_helpers import Proc

    ns, work, _binary, procs = lab
    api, intro = "http://127.0.0.1:18082", "http://127.0.0.1:18083"
    procs.append(Proc(ns.cmd(str(filament_bin()), "up", "--no-control", "--data-dir", str(work / "data"),
                             "--listen", "127.0.0.1:18082"), work / "up.log"))
    wait_until(lambda: ns_http(ns, "GET", f"{api}/") is not None, what="config API")
    procs.append(Proc(ns.cmd(str(filament_bin()), "control", "--api", api, "--name", "cn1",
                             "--xmpp-listen", "127.0.0.1:15269", "--introspect", "127.0.0.1:18083",
                             "--bgp-listen", f"{OURS}:179", "--bgp-address", OURS), work / "control.log"))
    cn1 = ["default-domain", "default-project", "ip-fabric", "__default__", "cn1"]
    wait_until(lambda: (ns_http(ns, "POST", f"{api}/fqname-to-id", {"type": "bgp-router", "fq_name": cn1})
                        or {}).get("uuid"), what="the control node's bgp-router")

    # A VN: the transformer gives its routing instance a route target.
    vn = ns_http(ns, "POST", f"{api}/virtual-networks", {"virtual-network": {
        "fq_name": ["default-domain", "default-project", "vnb"], "parent_type": "project"}})
    assert vn and "virtual-network" in vn, vn
    ri_fq = ["default-domain", "default-project", "vnb", "vnb"]

    def target():
        ri = ns_http(ns, "POST", f"{api}/fqname-to-id", {"type": "routing-instance", "fq_name": ri_fq}) or {}
        if not ri.get("uuid"):
            return None
        obj = ns_http(ns, "GET", f"{api}/routing-instance/{ri['uuid']}") or {}
        refs = obj.get("routing-instance", {}).get("route_target_refs", [])
        return refs[0]["to"][0] if refs else None
    rt = wait_until(target, what="the VN's route target")
    assert rt.startswith("target:64512:"), rt

    # FRR as an external router peered with cn1 through a bgp-router ref.
    frr_router = ns_http(ns, "POST", f"{api}/bgp-routers", {"bgp-router": {
        "fq_name": ["default-domain", "default-project", "ip-fabric", "__default__", "frr"],
        "parent_type": "routing-instance",
        "bgp_router_parameters": {"address": FRR, "identifier": FRR, "autonomous_system": 65001,
                                  "port": 179, "router_type": "router",
                                  "address_families": {"family": ["inet-vpn", "e-vpn"]}},
        "bgp_router_refs": [{"to": cn1, "attr": {}}]}})
    assert frr_router and "bgp-router" in frr_router, frr_router
    conf = FRR_CONF.replace("{work}", str(work)).replace("64512:8000001", rt.removeprefix("target:"))
    frr = Frr(ns, work, frr_config(work, conf))
    procs.append(frr)

    def peer_up():
        s = frr.show("show bgp summary json")
        return "Established" in json.dumps(s)
    wait_until(peer_up, timeout=60, what="FRR session with the control node")
    table = "default-domain:default-project:vnb:vnb.inet.0"

    def in_vn():
        r = ns_http(ns, "GET", f"{intro}/routes?table={table}") or {}
        return "10.200.1.0/24" in json.dumps(r) and r
    r = wait_until(in_vn, timeout=30, what="FRR's route in the VN's table")
    text = json.dumps(r)
    assert '"BGP"' in text and FRR in text and "1007" in text, text

    # An XMPP agent (TF's protocol, tf-facts §2) on the control node, inside the namespace.
    with in_netns(ns.name):
        agent = Agent(15269, "vr-frr")
    try:
        vrf = ":".join(ri_fq)
        agent.subscribe(vrf, 3)
        # FRR's VPNv4 route, carrying the VN's target, is pushed to the subscribed agent.
        agent.wait(b'<item id="10.200.1.0/24">', timeout=30, keepalive=True)
        item = agent.buf[agent.buf.index(b'<item id="10.200.1.0/24">'):].split(b"</item>")[0]
        assert f"<address>{FRR}</address>".encode() in item and b"<label>1007</label>" in item, item
        # No origin-VN community on FRR's path: TF's GetVirtualNetwork says "unresolved"
        # (an origin VN index < 0), for the entry and its next hop.
        assert item.count(b"<virtual-network>unresolved</virtual-network>") == 2, item

        # The agent's route goes out to FRR as VPNv4: RD <agent-ip>:<instance-id>, the VN's
        # target, the agent's label and next hop (the vRouter), TF's encapsulations.
        vr = "10.77.0.9"
        agent.publish(vrf, "default-domain:default-project:vnb", "10.50.0.5", vr, 29)
        rd = f"{vr}:3"
        wait_until(lambda: frr_vpn_path(frr, rd, "10.50.0.5/32"), timeout=30,
                   what="the agent's route in FRR")
        path = frr.show(f"show bgp ipv4 vpn rd {rd} 10.50.0.5/32 json")[rd]["paths"][0]
        ptext = json.dumps(path)
        assert path.get("remoteLabel") == 29, ptext
        assert any(n.get("ip") == vr for n in path.get("nexthops", [])), ptext
        ext = path.get("extendedCommunity", {}).get("string", "")
        assert f"RT:{rt.removeprefix('target:')}" in ext, ptext
        assert "ET:11" in ext and "ET:13" in ext, ptext  # the agent offered gre + udp
        assert path.get("aspath", {}).get("string") == "64512", ptext

        # Its withdrawal (collection dissociate) reaches FRR.
        agent.publish(vrf, "default-domain:default-project:vnb", "10.50.0.5", vr, 29, op="dissociate")
        wait_until(lambda: frr_vpn_path(frr, rd, "10.50.0.5/32") is None, timeout=30,
                   what="the withdrawal in FRR")
    finally:
        agent.close()


FRR_IBGP_CONF = frr_vpn_conf(64512, evpn=False)

# An iBGP client without the route-target family: RFC 4684 sends it every VPN route.
GOBGP_CLIENT_TOML = gobgp_toml(GOBGP, OURS, ["l3vpn-ipv4-unicast"])


def gobgp_attrs(gobgp, prefix):
    """GoBGP's path attributes (type -> value) of the VPNv4 route for `prefix` it got from us."""
    table = gobgp.cli_json("neighbor", OURS, "adj-in", "-a", "vpnv4") or {}
    for key, paths in (table.items() if isinstance(table, dict) else []):
        if prefix in key and paths:
            return {a.get("type"): a for a in paths[0].get("attrs", [])}
    return None


def cluster_int(cluster):
    """`bgp_router_parameters.cluster_id` is an integer (TF's schema)."""
    return int.from_bytes(bytes(map(int, cluster.split("."))), "big")


def start_reflector_lab(lab, cluster, gobgp_toml=None):
    """The config API, the node's bgp-router `cn1` (with `cluster` as cluster id, or none),
    FRR's and GoBGP's bgp-routers referring to it (iBGP, no cluster id of their own), then
    `filament control`, FRR (iBGP, a VPNv4 route) and GoBGP (iBGP, vpnv4 without rtc, or
    with `gobgp_toml` and the route-target family in its bgp-router).
    Returns (ns, api, frr, gobgp, uuid of cn1's bgp-router, its bgp_router_parameters)."""
    from bgp_helpers import Proc

    ns, work, _binary, procs = lab
    api = "http://127.0.0.1:18082"
    procs.append(Proc(ns.cmd(str(filament_bin()), "up", "--no-control", "--data-dir", str(work / "data"),
                             "--listen", "127.0.0.1:18082"), work / "up.log"))
    wait_until(lambda: ns_http(ns, "GET", f"{api}/") is not None, what="config API")
    fabric = ["default-domain", "default-project", "ip-fabric", "__default__"]
    cn1 = [*fabric, "cn1"]

    def router(name, addr, params, refs):
        full = {"address": addr, "identifier": addr, "autonomous_system": 64512, "port": 179,
                "address_families": {"family": ["inet-vpn"]}, **params}
        body = {"bgp-router": {"fq_name": [*fabric, name], "parent_type": "routing-instance",
                               "bgp_router_parameters": full,
                               "bgp_router_refs": [{"to": r, "attr": {}} for r in refs]}}
        r = ns_http(ns, "POST", f"{api}/bgp-routers", body)
        assert r and "bgp-router" in r, r
        return r["bgp-router"]["uuid"], full

    # The node's bgp-router, provisioned before the node starts.
    mine = {"router_type": "control-node", "vendor": "contrail"}
    if cluster:
        mine["cluster_id"] = cluster_int(cluster)
    uuid, params = router("cn1", OURS, mine, [])
    router("frr", FRR, {"router_type": "router"}, [cn1])
    gobgp_params = {"router_type": "router"}
    if gobgp_toml:
        gobgp_params["address_families"] = {"family": ["inet-vpn", "route-target"]}
    router("gobgp", GOBGP, gobgp_params, [cn1])
    procs.append(Proc(ns.cmd(str(filament_bin()), "control", "--api", api, "--name", "cn1",
                             "--xmpp-listen", "127.0.0.1:15269", "--introspect", "127.0.0.1:18083",
                             "--bgp-listen", f"{OURS}:179", "--bgp-address", OURS), work / "control.log"))
    frr = Frr(ns, work, frr_config(work, FRR_IBGP_CONF.replace("{work}", str(work))))
    procs.append(frr)
    gobgp = GoBgp(ns, work, gobgp_toml or GOBGP_CLIENT_TOML)
    procs.append(gobgp)
    return ns, api, frr, gobgp, uuid, params


def node_bgp_peer(ns, addr):
    """The control node's introspect row for its BGP neighbour `addr`, or None."""
    rows = (ns_http(ns, "GET", "http://127.0.0.1:18083/neighbors") or {}).get("neighbors", [])
    return next((n for n in rows if n.get("peer") == addr and n.get("type") == "bgp"), None)


def frr_route_reflected_to_gobgp(gobgp, cluster):
    """Wait for FRR's route at GoBGP and check it was reflected: ORIGINATOR_ID = FRR,
    CLUSTER_LIST = [cluster] (RFC 4456 §8). Returns its attributes and their JSON text."""
    attrs = wait_until(lambda: gobgp_attrs(gobgp, "10.200.1.0/24"), timeout=60, what="FRR's route at GoBGP")
    text = json.dumps(attrs)
    assert attrs.get(9, {}).get("value") == FRR, text  # ORIGINATOR_ID
    assert attrs.get(10, {}).get("value") == [cluster], text  # CLUSTER_LIST
    return attrs, text


def check_reflection(frr, gobgp, cluster):
    """FRR's route reaches GoBGP and GoBGP's reaches FRR, reflected: ORIGINATOR_ID = the
    originator, CLUSTER_LIST = [cluster] (RFC 4456 §8), next hop and label unchanged."""
    attrs, text = frr_route_reflected_to_gobgp(gobgp, cluster)
    assert FRR in json.dumps(attrs.get(14, {})), text  # MP_REACH next hop: still FRR

    gobgp.cli("global", "rib", "-a", "vpnv4", "add", "10.201.0.0/24", "label", "2001", "rd", "64512:9",
              "rt", "64512:8000001")
    path = wait_until(lambda: frr_vpn_path(frr, "64512:9", "10.201.0.0/24"), timeout=60,
                      what="GoBGP's route at FRR")
    detail = frr.show("show bgp ipv4 vpn rd 64512:9 10.201.0.0/24 json")["64512:9"]["paths"][0]
    dtext = json.dumps(detail)
    assert detail.get("originatorId") == GOBGP, dtext
    assert detail.get("clusterList", {}).get("list") == [cluster], dtext
    assert path.get("remoteLabel", detail.get("remoteLabel")) == 2001, dtext


@pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built")
def test_control_node_reflects_between_clients_with_cluster_id(lab):
    """Route reflection as a TF user turns it on: `cluster_id` in the control node's own
    bgp-router (tf-facts §3). FRR and GoBGP are iBGP peers (same AS, bgp-routers with refs
    to the node's, no cluster id of their own, so clients, as in TF); each one's VPNv4 route
    reaches the other with ORIGINATOR_ID = its originator and CLUSTER_LIST = [the node's
    cluster id] (RFC 4456 §8), next hop unchanged."""
    cluster = "10.77.0.100"
    _ns, _api, frr, gobgp, _uuid, _params = start_reflector_lab(lab, cluster)
    check_reflection(frr, gobgp, cluster)


@pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built")
def test_cluster_id_set_over_rest_on_a_running_node_turns_reflection_on(lab):
    """The node runs without a cluster id (iBGP split horizon: FRR's route stays off
    GoBGP); the user then sets `cluster_id` in its bgp-router over REST. The node resets
    its iBGP sessions (Cease / Other Configuration Change, as TF does on a cluster id
    change), they come back, and reflection works both ways with the new cluster id."""
    cluster = "10.77.0.101"
    ns, api, frr, gobgp, uuid, params = start_reflector_lab(lab, None)

    # Both sessions up, FRR's route at the node, but not at GoBGP (split horizon).
    wait_until(lambda: (node_bgp_peer(ns, FRR) or {}).get("received", 0) >= 1, timeout=60,
               what="FRR's route at the node")
    wait_until(lambda: (node_bgp_peer(ns, GOBGP) or {}).get("state") == "Established", timeout=60,
               what="session with GoBGP")
    time.sleep(3)
    assert gobgp_attrs(gobgp, "10.200.1.0/24") is None, "no cluster id: iBGP split horizon"
    flaps = node_bgp_peer(ns, GOBGP)["flaps"]

    # The user sets the cluster id on the running node.
    r = ns_http(ns, "PUT", f"{api}/bgp-router/{uuid}",
                {"bgp-router": {"bgp_router_parameters": {**params, "cluster_id": cluster_int(cluster)}}})
    assert r is not None and "error" not in json.dumps(r).lower(), r
    wait_until(lambda: (node_bgp_peer(ns, GOBGP) or {}).get("flaps", 0) > flaps, timeout=30,
               what="the iBGP sessions reset on the cluster id change")
    check_reflection(frr, gobgp, cluster)


@pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built")
def test_reflector_honours_rt_constraint_of_a_client_with_rtc(lab):
    """GoBGP is a route-reflector client WITH the route-target family (GOBGP_TOML): the node
    sends it only the VPN routes whose targets it asked for (RFC 4684), reflected from FRR
    (a client without the family, which sends everything). The node does not originate the
    default RT membership to clients (RFC 4684 asks no reflector to), so GoBGP sends the
    node only the VPN routes someone asked it for: none here."""
    cluster = "10.77.0.102"
    ns, _api, frr, gobgp, _uuid, _params = start_reflector_lab(lab, cluster, GOBGP_TOML)

    wait_until(lambda: (node_bgp_peer(ns, FRR) or {}).get("received", 0) >= 1, timeout=60,
               what="FRR's route at the node")
    wait_until(lambda: "route-target" in (node_bgp_peer(ns, GOBGP) or {}).get("families", []), timeout=60,
               what="GoBGP session with the route-target family")
    # GoBGP asked for nothing yet: FRR's route (target X) is not sent to it.
    time.sleep(3)
    assert gobgp_attrs(gobgp, "10.200.1.0/24") is None, "GoBGP asked for no target"
    # A VRF importing X: GoBGP's membership reaches the node, FRR's route is reflected to it.
    gobgp.cli("vrf", "add", "red", "id", "1", "rd", "64512:100", "rt", "import", "64512:8000001",
              "export", "64512:8000001")
    frr_route_reflected_to_gobgp(gobgp, cluster)
    # GoBGP's own VPN route: nobody sent GoBGP membership for its target, so it keeps it.
    gobgp.cli("global", "rib", "-a", "vpnv4", "add", "10.201.0.0/24", "label", "2001", "rd", "64512:9",
              "rt", "64512:8000003")
    time.sleep(3)
    assert (node_bgp_peer(ns, GOBGP) or {}).get("received", 0) <= 1, node_bgp_peer(ns, GOBGP)  # its RT membership only
