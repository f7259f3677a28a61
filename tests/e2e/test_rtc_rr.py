"""RFC 4684 §3.2 through the product: `filament control` as route reflector (cluster id in
its bgp-router) for two GoBGP clients that both negotiated the route-target family and
both import the same target X. Each client sends the reflector only the VPN routes whose
targets the reflector told it about, so each must be told about the other's membership;
before the fix the client whose membership path was the reflector's best heard nothing,
kept its X routes, and the other client never got them.

Needs root, FRR and GoBGP (the lab of test_bgp.py); skips otherwise.
"""

import json
import os

import pytest

from bgp_helpers import GOBGP, OURS, GoBgp, gobgp_toml, missing_tools, ns_http, wait_until
from test_bgp import (  # noqa: F401  (lab is a fixture)
    GOBGP_TOML, cluster_int, filament_bin, lab, node_bgp_peer, start_reflector_lab,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing tools: {missing_tools()}"),
    pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built"),
]

GOBGP2 = "10.77.0.4"
CLUSTER = "10.77.0.103"
RT_X = "64512:8000001"


def add_second_gobgp(ns, api, work, procs, router_id=GOBGP2, cluster=None):
    """GoBGP #2 at GOBGP2 (BGP identifier `router_id`) and its bgp-router (iBGP, inet-vpn +
    route-target, a ref to the node's `cn1`; a non-client when it names its own `cluster`)."""
    ns.run("ip", "addr", "add", f"{GOBGP2}/32", "dev", "lo")
    fabric = ["default-domain", "default-project", "ip-fabric", "__default__"]
    params = {"address": GOBGP2, "identifier": router_id, "autonomous_system": 64512, "port": 179,
              "router_type": "router", "address_families": {"family": ["inet-vpn", "route-target"]}}
    if cluster:
        params["cluster_id"] = cluster_int(cluster)
    body = {"bgp-router": {"fq_name": [*fabric, "gobgp2"], "parent_type": "routing-instance",
                           "bgp_router_parameters": params,
                           "bgp_router_refs": [{"to": [*fabric, "cn1"], "attr": {}}]}}
    r = ns_http(ns, "POST", f"{api}/bgp-routers", body)
    assert r and "bgp-router" in r, r
    toml = gobgp_toml(GOBGP2, OURS, ["l3vpn-ipv4-unicast", "rtc"])
    toml = toml.replace(f'router-id = "{GOBGP2}"', f'router-id = "{router_id}"')
    g2 = GoBgp(ns, work, toml, api_port=50052)
    procs.append(g2)
    return g2


def adj_in(gobgp, family):
    """The prefixes (NLRI text) GoBGP holds from the node for `family` (gobgp's -a name)."""
    table = gobgp.cli_json("neighbor", OURS, "adj-in", "-a", family) or {}
    return set(table) if isinstance(table, dict) else set()


def both_import_x_and_cross(ns, g1, g2):
    """Both GoBGPs import X (each originates the membership 64512:X) and announce a route
    for X; each is told about X by the node (RFC 4684 §3.2), so each sends its route, and
    the other gets it."""
    for addr in (GOBGP, GOBGP2):
        wait_until(lambda a=addr: "route-target" in (node_bgp_peer(ns, a) or {}).get("families", []),
                   timeout=60, what=f"{addr}'s session with the route-target family")
    for g, prefix, rd in ((g1, "10.30.1.0/24", "64512:31"), (g2, "10.30.2.0/24", "64512:32")):
        g.cli("vrf", "add", "red", "id", "1", "rd", f"{rd}0", "rt", "import", RT_X, "export", RT_X)
        g.cli("global", "rib", "-a", "vpnv4", "add", prefix, "label", "3001", "rd", rd, "rt", RT_X)
    for g in (g1, g2):
        wait_until(lambda g=g: adj_in(g, "rtc"), timeout=60, what=f"membership at {g.api_port}")
    wait_until(lambda: any("10.30.1.0/24" in k for k in adj_in(g2, "vpnv4")), timeout=60,
               what="GoBGP 1's route at GoBGP 2")
    wait_until(lambda: any("10.30.2.0/24" in k for k in adj_in(g1, "vpnv4")), timeout=60,
               what="GoBGP 2's route at GoBGP 1")


def test_two_rtc_clients_wanting_one_target_get_each_others_routes(lab):
    ns, work, _binary, procs = lab
    _ns, api, _frr, g1, _uuid, _params = start_reflector_lab(lab, CLUSTER, GOBGP_TOML)
    g2 = add_second_gobgp(ns, api, work, procs)
    both_import_x_and_cross(ns, g1, g2)

    # GoBGP 2 drops its VRF (its membership goes): GoBGP 1 is no longer told about X and
    # takes its route back from the reflector, which had stopped sending it to GoBGP 2.
    g2.cli("vrf", "del", "red")
    wait_until(lambda: not adj_in(g1, "rtc"), timeout=60, what="membership withdrawn from GoBGP 1")
    wait_until(lambda: not any("10.30.1.0/24" in k for k in adj_in(g2, "vpnv4")), timeout=60,
               what="GoBGP 1's route gone from GoBGP 2")
    wait_until(lambda: (node_bgp_peer(ns, GOBGP) or {}).get("received") == 1, timeout=60,
               what="GoBGP 1 left with only its membership at the node")


def test_a_non_client_with_the_best_membership_is_sent_the_clients_path(lab):
    """GoBGP 2 is a non-client (its bgp-router names another cluster) whose BGP identifier
    is the lowest, so its membership path for X is the node's best. RFC 4684 §3.2 (ii): it
    is sent the client's (GoBGP 1's) path instead, so it sends its X route to the node and
    the client gets it; before, it was sent nothing and kept its route."""
    ns, work, _binary, procs = lab
    _ns, api, _frr, g1, _uuid, _params = start_reflector_lab(lab, CLUSTER, GOBGP_TOML)
    g2 = add_second_gobgp(ns, api, work, procs, router_id="10.77.0.0", cluster="10.77.0.200")
    wait_until(lambda: (node_bgp_peer(ns, GOBGP2) or {}).get("state") == "Established", timeout=60,
               what="session with GoBGP 2")
    both_import_x_and_cross(ns, g1, g2)
    # What GoBGP 2 holds from the node is GoBGP 1's path, reflected (ORIGINATOR_ID GoBGP 1).
    table = g2.cli_json("neighbor", OURS, "adj-in", "-a", "rtc") or {}
    text = json.dumps(table)
    assert GOBGP in text and CLUSTER in text, text
