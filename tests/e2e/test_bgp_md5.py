"""TCP MD5 signatures (RFC 2385) on the control node's BGP sessions, with real FRR (issue 4):
the key comes from `auth_data` (TF's AuthenticationData: `key_type` "md5", the first of
`key_items`) as TF's `MakeBgpNeighborConfig` picks it — the peering's session attributes,
else the control node's OWN bgp-router — so an operator sets it on the control node's
bgp-router, and FRR has `neighbor X password ...`.

Checked: the same key gives Established and FRR's VPNv4 route arrives; a wrong key (set over
REST on the running node) resets the session and it never comes back, on either side; an
over-long key keeps the peer down with the reason in `neighbors`; the right key again
brings it back with the route. `neighbors` says `"auth": "md5"`; the key is never in
`neighbors` nor in the control node's log. One small lab (its own `filament up` and FRR):
test_bgp_interop's lab cannot take it, since this node's key keys every one of its peers.

Needs root, FRR (bgpd); skips otherwise.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from bgp_helpers import FRR, OURS, Frr, Netns, Proc, frr_config, frr_vpn_conf, ns_http, wait_until
from conftest import filament_bin
from test_bgp_interop import API, FABRIC, INTRO, Lab, bgp_router, missing, post

KEY = "md5-k3y-of-filament"
WRONG = "wr0ng-k3y-of-filament"
TOO_LONG = "L" * 81
VN = ["default-domain", "default-project", "vnm"]
VRF = ":".join(VN + ["vnm"])

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing()), reason=f"missing tools: {missing()}"),
    pytest.mark.skipif(not filament_bin().exists(), reason="filament binary not built"),
]


def frr_md5_conf(rt):
    """FRR's eBGP (65001) VPNv4 session to us with a password, announcing 10.200.1.0/24
    (RD 65001:7) with our VN's target."""
    conf = frr_vpn_conf(65001, evpn=False).replace("64512:8000001", rt)
    return conf.replace(f" neighbor {OURS} timers connect 1\n",
                        f" neighbor {OURS} timers connect 1\n neighbor {OURS} password {KEY}\n")


class Md5Lab(Lab):
    def set_key(self, key):
        """Our bgp-router's auth_data (None: no key), over REST on the running node."""
        obj = ns_http(self.ns, "GET", f"{API}/bgp-router/{self.cn1}")["bgp-router"]
        params = dict(obj["bgp_router_parameters"])
        params["auth_data"] = (None if key is None else
                               {"key_type": "md5", "key_items": [{"key_id": 0, "key": key}]})
        r = ns_http(self.ns, "PUT", f"{API}/bgp-router/{self.cn1}",
                    {"bgp-router": {"bgp_router_parameters": params}})
        assert r is not None and "error" not in json.dumps(r).lower(), r

    def frr_state(self):
        return self.frr(f"show bgp neighbors {OURS} json").get(OURS, {}).get("bgpState")

    def has_frr_route(self):
        """FRR's VPNv4 route, imported by target into our VN's instance."""
        return bool(self.paths(f"{VRF}.inet.0", "10.200.1.0/24"))

    def no_key_anywhere(self):
        """Neither key is in `neighbors` (JSON) nor in the control node's log."""
        shown = json.dumps(ns_http(self.ns, "GET", f"{INTRO}/neighbors"))
        log = (self.work / "up.log").read_text(errors="replace")
        for k in (KEY, WRONG, TOO_LONG):
            assert k not in shown, f"a key in neighbors: {shown}"
            assert k not in log, "a key in the control node's log"


@pytest.fixture(scope="module")
def lab():
    work = Path(tempfile.mkdtemp(prefix="fbgpmd5-"))
    os.chmod(work, 0o755)
    ns = Netns()
    lab = None
    try:
        up = Proc(ns.cmd(str(filament_bin()), "up", "--data-dir", str(work / "data"), "--name", "cn1",
                         "--bgp-address", OURS, "--bgp-listen", OURS), work / "up.log")
        lab = Md5Lab(ns, work, None)
        lab.procs["up"] = up
        lab.cn1 = wait_until(lambda: (ns_http(ns, "POST", f"{API}/fqname-to-id",
                                              {"type": "bgp-router", "fq_name": FABRIC + ["cn1"]}) or {}).get("uuid"),
                             what="the control node's bgp-router")
        post(ns, "virtual-networks", {"fq_name": VN, "parent_type": "project"})

        def target():
            ri = ns_http(ns, "POST", f"{API}/fqname-to-id", {
                "type": "routing-instance", "fq_name": VN + ["vnm"]}) or {}
            obj = ns_http(ns, "GET", f"{API}/routing-instance/{ri['uuid']}") if ri.get("uuid") else {}
            refs = (obj or {}).get("routing-instance", {}).get("route_target_refs", [])
            return refs[0]["to"][0] if refs else None
        lab.rt = wait_until(target, what="the VN's route target").removeprefix("target:")
        lab.set_key(KEY)
        bgp_router(ns, "frr", FRR, 65001, ["inet-vpn"])
        lab.procs["frr"] = Frr(ns, work, frr_config(work, frr_md5_conf(lab.rt).replace("{work}", str(work))))
        yield lab
    finally:
        for p in reversed(list((lab.procs if lab else {}).values())):
            p.stop()
        ns.delete()
        for name in ("up.log", "frr.log"):
            if (work / name).exists():
                print(f"--- {name} ---\n{(work / name).read_text(errors='replace')[-3000:]}")
        shutil.rmtree(work, ignore_errors=True)


def test_same_key_established_and_routes_flow(lab):
    """Our bgp-router's auth_data and FRR's `neighbor password` agree: Established on both
    sides, FRR's VPNv4 route in bgp.l3vpn.0; `neighbors` says md5, never the key."""
    wait_until(lambda: lab.neighbor(FRR).get("state") == "Established", timeout=60, what="the MD5 session")
    assert lab.frr_state() == "Established"
    wait_until(lab.has_frr_route, what="FRR's route over the MD5 session")
    assert lab.neighbor(FRR).get("auth") == "md5", lab.neighbor(FRR)
    lab.no_key_anywhere()


def test_wrong_or_bad_key_never_established(lab):
    """Another key on our side (REST, running node): the session is reset and stays down on
    both sides (RFC 2385: segments with a wrong digest are dropped unanswered). An 81-byte
    key is refused: the peer stays down, `neighbors` says why."""
    wait_until(lambda: lab.neighbor(FRR).get("state") == "Established", timeout=60, what="the MD5 session")
    flaps = lab.neighbor(FRR)["flaps"]
    lab.set_key(WRONG)
    wait_until(lambda: lab.neighbor(FRR).get("flaps", 0) > flaps, timeout=30, what="the reset on the key change")
    end = time.monotonic() + 8
    while time.monotonic() < end:
        assert lab.neighbor(FRR).get("state") != "Established", lab.neighbor(FRR)
        assert lab.frr_state() != "Established", "FRR established with another key"
        time.sleep(0.5)
    wait_until(lambda: not lab.has_frr_route(), what="FRR's route gone with its session")

    lab.set_key(TOO_LONG)
    row = wait_until(lambda: (r := lab.neighbor(FRR)) and "81 bytes" in (r.get("last_reason") or "") and r,
                     what="the refused key in neighbors")
    assert row["state"] != "Established" and row.get("auth") is None, row
    lab.no_key_anywhere()


def test_right_key_over_rest_brings_it_back(lab):
    """The operator corrects the key over REST: Established again, FRR's route is back."""
    lab.set_key(KEY)
    wait_until(lambda: lab.neighbor(FRR).get("state") == "Established", timeout=60,
               what="the session with the right key again")
    wait_until(lambda: lab.frr_state() == "Established", what="FRR's side Established")
    wait_until(lab.has_frr_route, what="FRR's route back")
    assert lab.neighbor(FRR).get("auth") == "md5"
    lab.no_key_anywhere()
