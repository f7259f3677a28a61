"""RFC 4684 §3.2 through the product: `filament control` as route reflector (cluster id in
its bgp-router) for two GoBGP clients that both negotiated the route-target family and
both import the same target X. Each client sends the reflector only the VPN routes whose
targets the reflector told it about, so each must be told about the other's membership;
before the fix the client whose membership path was the reflector's best heard nothing,
kept its X routes, and the other client never got them.

Needs root, FRR and GoBGP (the lab of test_bgp.py); skips otherwise.
"""

import os

import pytest

from bgp_helpers import GOBGP, OURS, GoBgp, gobgp_toml, missing_tools, wait_until
from test_bgp import (  # noqa: F401  (lab is a fixture)
    GOBGP_TOML, filament_bin, lab, node_bgp_peer, ns_http, start_reflector_lab,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing tools: {missing_tools()}"),
    pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built"),
]

GOBGP2 = "10.77.0.4"
CLUSTER = "10.77.0.103"
RT_X = "64512:8000001"


def add_second_client(ns, api):
    """GoBGP #2's bgp-router (iBGP, inet-vpn + route-target, a ref to the node's `cn1`)."""
    ns.run("ip", "addr", "add", f"{GOBGP2}/32", "dev", "lo")
    fabric = ["default-domain", "default-project", "ip-fabric", "__default__"]
    params = {"address": GOBGP2, "identifier": GOBGP2, "autonomous_system": 64512, "port": 179,
              "router_type": "router", "address_families": {"family": ["inet-vpn", "route-target"]}}
    body = {"bgp-router": {"fq_name": [*fabric, "gobgp2"], "parent_type": "routing-instance",
                           "bgp_router_parameters": params,
                           "bgp_router_refs": [{"to": [*fabric, "cn1"], "attr": {}}]}}
    r = ns_http(ns, "POST", f"{api}/bgp-routers", body)
    assert r and "bgp-router" in r, r


def adj_in(gobgp, family):
    """The prefixes (NLRI text) GoBGP holds from the node for `family` (gobgp's -a name)."""
    table = gobgp.cli_json("neighbor", OURS, "adj-in", "-a", family) or {}
    return set(table) if isinstance(table, dict) else set()


def test_two_rtc_clients_wanting_one_target_get_each_others_routes(lab):
    ns, work, _binary, procs = lab
    _ns, api, _frr, g1, _uuid, _params = start_reflector_lab(lab, CLUSTER, GOBGP_TOML)
    add_second_client(ns, api)
    g2 = GoBgp(ns, work, gobgp_toml(GOBGP2, OURS, ["l3vpn-ipv4-unicast", "rtc"]), api_port=50052)
    procs.append(g2)
    for addr in (GOBGP, GOBGP2):
        wait_until(lambda a=addr: "route-target" in (node_bgp_peer(ns, a) or {}).get("families", []),
                   timeout=60, what=f"{addr}'s session with the route-target family")

    # Both import X (each originates the membership 64512:X), each has a route for X.
    for g, prefix, rd in ((g1, "10.30.1.0/24", "64512:31"), (g2, "10.30.2.0/24", "64512:32")):
        g.cli("vrf", "add", "red", "id", "1", "rd", f"{rd}0", "rt", "import", RT_X, "export", RT_X)
        g.cli("global", "rib", "-a", "vpnv4", "add", prefix, "label", "3001", "rd", rd, "rt", RT_X)

    # Each client holds the reflector's membership for X (RFC 4684 §3.2)...
    for g in (g1, g2):
        wait_until(lambda g=g: adj_in(g, "rtc"), timeout=60, what=f"membership at {g.api_port}")
    # ... so each sends its X route, and the other gets it, in both directions.
    wait_until(lambda: any("10.30.1.0/24" in k for k in adj_in(g2, "vpnv4")), timeout=60,
               what="GoBGP 1's route at GoBGP 2")
    wait_until(lambda: any("10.30.2.0/24" in k for k in adj_in(g1, "vpnv4")), timeout=60,
               what="GoBGP 2's route at GoBGP 1")

    # GoBGP 2 drops its VRF (its membership goes): GoBGP 1 is no longer told about X and
    # takes its route back from the reflector, which had stopped sending it to GoBGP 2.
    g2.cli("vrf", "del", "red")
    wait_until(lambda: not adj_in(g1, "rtc"), timeout=60, what="membership withdrawn from GoBGP 1")
    wait_until(lambda: not any("10.30.1.0/24" in k for k in adj_in(g2, "vpnv4")), timeout=60,
               what="GoBGP 1's route gone from GoBGP 2")
    wait_until(lambda: (node_bgp_peer(ns, GOBGP) or {}).get("received") == 1, timeout=60,
               what="GoBGP 1 left with only its membership at the node")
