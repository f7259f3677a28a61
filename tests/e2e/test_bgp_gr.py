"""BGP graceful restart as TF configures it, with real FRR killed by SIGKILL (issue 4;
tf-facts §2.7; RFC 4724 §4.2, RFC 9494): on test_bgp_interop's lab (FRR with `bgp
graceful-restart` and `preserve-fw-state`, eBGP 65001, VPNv4/VPNv6/EVPN).

* TF's default (`graceful_restart_parameters` unset: GR disabled): no helper, FRR's paths
  go as soon as its session is lost.
* Helper mode (`enable` and `bgp_helper_enable`, set over the REST API on the running
  node): FRR's paths stay, marked `stale` in `route show` (JSON and the CLI's text), the
  agent is told nothing; FRR comes back without one route: End-of-RIB sweeps it, the rest
  are fresh again.
* Long-lived GR (`long_lived_restart_time`; FRR `bgp long-lived-graceful-restart
  stale-time`): after FRR's restart time its paths are LLGR-stale (`llgr_stale`, LLGR_STALE
  attached, withdrawn from BIRD, which has no LLGR capability, sent to GoBGP, internal and
  without LLGR, with NO_EXPORT and LOCAL_PREF 0: RFC 9494 §4.6); FRR back with End-of-RIB
  makes them fresh; a second loss keeps them only for the long-lived stale time (ours,
  lowered on the running node, caps FRR's).
* FRR back without `preserve-fw-state` (F bit clear): TF's `IsGRReady` ends the restart on
  the new session, every stale path goes at once.

Needs root, FRR (bgpd, zebra), BIRD 2 and GoBGP; skips otherwise.
"""

import time

from bgp_helpers import FRR, OURS, Frr, ns_http, wait_until
from conftest import filament_bin
from test_bgp import gobgp_attrs
from test_bgp_interop import (  # noqa: F401  (lab is a fixture, pytestmark its skips)
    API, VRF, lab, pump, pytestmark,
)

TABLE = f"{VRF}.inet.0"
ROUTE = "10.200.1.0/24"  # FRR's VPNv4 route (RD 65001:7) in the VN


def set_gr(lab, **params):
    """PUT graceful_restart_parameters on the global-system-config, as vnc_api does."""
    uuid = ns_http(lab.ns, "POST", f"{API}/fqname-to-id", {
        "type": "global-system-config", "fq_name": ["default-global-system-config"]})["uuid"]
    r = ns_http(lab.ns, "PUT", f"{API}/global-system-config/{uuid}",
                {"global-system-config": {"graceful_restart_parameters": params}})
    assert r is not None, r


def kill_frr(lab):
    """SIGKILL bgpd (no NOTIFICATION: the TCP session just goes); returns the flap count
    it leaves in `neighbors`."""
    flaps = lab.neighbor(FRR)["flaps"]
    frr = lab.procs["frr"]
    frr.proc.kill()
    frr.proc.wait()
    return wait_until(lambda: (lambda r: r.get("flaps", 0) > flaps and r)(lab.neighbor(FRR)),
                      what="the session loss")


def start_frr(lab):
    lab.procs["frr"].stop()
    lab.procs["frr"] = Frr(lab.ns, lab.work, lab.work / "frr.conf", zebra=True)
    wait_until(lambda: lab.neighbor(FRR).get("state") == "Established", timeout=60, what="FRR back")


def path(lab, prefix=ROUTE):
    ps = [p for p in lab.paths(TABLE, prefix) if p["protocol"] == "BGP"]
    return ps[0] if ps else None


def route_show(lab):
    return lab.ns.run(str(filament_bin()), "route", "show", "-t", TABLE, check=False).stdout


def frr_caps(lab):
    return lab.frr(f"show bgp neighbors {OURS} json").get(OURS, {}).get("neighborCapabilities", {})


def at_bird(lab):
    return ROUTE in lab.birdc("show", "route", "table", "vpntab")


NO_EXPORT, LLGR_STALE = 0xFFFFFF01, 0xFFFF0006


def at_gobgp(lab):
    """GoBGP's (iBGP, no LLGR capability) path attributes of FRR's route: type -> attribute."""
    return gobgp_attrs(lab.procs["gobgp"], ROUTE)


def communities(attrs):
    return (attrs or {}).get(8, {}).get("communities", [])


def test_helper_off_by_default_drops_paths_at_once(lab):
    """GR not configured (TF: `enable` false, so no helper): the lost session's paths go
    at once, as TF's `IsGRHelperModeEnabled` is false."""
    wait_until(lambda: path(lab), what="FRR's route in the VN")
    # our OPEN as FRR read it: TF's GR capability with GR disabled (time 0, no family), no LLGR
    caps = frr_caps(lab)
    assert caps.get("gracefulRestart") == "advertisedAndReceived", caps
    assert caps.get("gracefulRestartRemoteTimerMsecs", 0) == 0, caps
    assert caps.get("longLivedGracefulRestart") != "advertisedAndReceived", caps
    row = kill_frr(lab)
    try:
        wait_until(lambda: not lab.paths(TABLE, ROUTE), timeout=10, what="FRR's route gone")
        assert row.get("stale_paths") == 0 and row.get("graceful_restart") is None, row
        assert row["last_reason"] == "connection closed without NOTIFICATION", row
    finally:
        start_frr(lab)
    wait_until(lambda: path(lab), what="FRR's route back")


def test_graceful_restart_helper_with_frr(lab):
    """Helper on (set on the running node): FRR killed, its paths are kept and shown
    stale (JSON `stale`, CLI `, stale`), nothing is retracted from the agent; FRR comes
    back without one of its routes and with the F bit: after its End-of-RIB that one is
    swept (retracted from the agent) and the rest are fresh again. (Without the F bit the
    stale paths go when the session is back: the test after the LLGR one.)"""
    set_gr(lab, enable=True, bgp_helper_enable=True, restart_time=60, long_lived_restart_time=300,
           end_of_rib_timeout=60)
    lab.frr_conf("ipv4 vpn", "network 10.200.9.0/24 rd 65001:9 label 1009 route-map SETRT")
    wait_until(lambda: path(lab, "10.200.9.0/24"), what="FRR's extra route in the VN")
    assert path(lab)["stale"] is False
    agent = lab.agent("vr-gr")
    try:
        agent.subscribe(VRF, 7)
        agent.wait(b'<item id="10.200.9.0/24">', timeout=30, keepalive=True)
        time.sleep(1)  # the BGP link reads the GR settings every 0.3 s
        row = kill_frr(lab)
        assert row["stale_paths"] >= (6 if lab.vxlan else 3), row  # 2 VPNv4, 1 VPNv6, EVPN
        assert row["graceful_restart"] == "GR_TIMER", row
        assert row["state"].endswith("(GR helper)"), row
        assert "graceful restart helper" in row["last_reason"], row
        # stale, in the VN and in bgp.l3vpn.0, and in the CLI's text
        p = wait_until(lambda: (lambda p: p and p["stale"] and p)(path(lab)), what="stale mark")
        assert p["llgr_stale"] is False, p
        vpn = [p for p in lab.paths("bgp.l3vpn.0", f"65001:7:{ROUTE}") if p["protocol"] == "BGP"]
        assert vpn and vpn[0]["stale"] is True, vpn
        text = route_show(lab)
        assert f"[BGP|{FRR}]" in text and ", stale" in text, text
        # the other families: VPNv6 in inet6.0, EVPN (MAC+IP, and the type 3) in evpn.0
        v6 = [p for p in lab.paths(f"{VRF}.inet6.0", "2001:db8:200::/64") if p["protocol"] == "BGP"]
        assert v6 and v6[0]["stale"] is True, v6
        for k in ("02:aa:00:00:00:01,10.1.1.77/32", f"ff:ff:ff:ff:ff:ff,{FRR}/32") if lab.vxlan else ():
            ev = [p for p in lab.paths(f"{VRF}.evpn.0", k) if p["protocol"] == "BGP"]
            assert ev and ev[0]["stale"] is True, (k, ev)
        pump(agent, 2)
        assert path(lab, "10.200.9.0/24")
        assert b'<retract id="10.200.9.0/24"/>' not in agent.buf and b'<retract id="10.200.1.0/24"/>' not in agent.buf

        start_frr(lab)  # its config has no 10.200.9.0/24
        agent.wait(b'<retract id="10.200.9.0/24"/>', timeout=30, keepalive=True)
        wait_until(lambda: lab.neighbor(FRR).get("stale_paths") == 0, what="stale paths swept")
        assert not lab.paths(TABLE, "10.200.9.0/24")
        p = wait_until(lambda: (lambda p: p and not p["stale"] and p)(path(lab)), what="fresh again")
        assert ", stale" not in route_show(lab)
        assert b'<retract id="10.200.1.0/24"/>' not in agent.buf
    finally:
        agent.close()


def frr_llgr(lab, restart, stale):
    """FRR restarts in `restart` s and asks for `stale` s of LLGR, in its running config
    (a new session picks it up) and in its file (for its restart)."""
    lines = [f"bgp graceful-restart restart-time {restart}",
             f"bgp long-lived-graceful-restart stale-time {stale}"]
    lab.vty("conf t", "router bgp 65001", *lines)
    conf = lab.work / "frr.conf"
    text = conf.read_text()
    if lines[1] not in text:
        conf.write_text(text.replace(" bgp graceful-restart preserve-fw-state\n",
                                     " bgp graceful-restart preserve-fw-state\n"
                                     + "".join(f" {x}\n" for x in lines)))


def test_long_lived_graceful_restart_with_frr(lab):
    """RFC 9494 with FRR as the restarting speaker: stale for FRR's restart time, then
    LLGR-stale (ranked last, LLGR_STALE attached, not sent to BIRD, which did not
    negotiate LLGR); FRR back with End-of-RIB: fresh. Lost again with a long-lived time
    of 4 s set on the running node: gone 4 s after the restart time."""
    set_gr(lab, enable=True, bgp_helper_enable=True, restart_time=60, long_lived_restart_time=120,
           end_of_rib_timeout=60)
    frr_llgr(lab, restart=4, stale=600)
    lab.vty("clear bgp *")  # a new session carries the LLGR capability
    wait_until(lambda: lab.neighbor(FRR).get("state") == "Established" and path(lab), timeout=60,
               what="the session with FRR's LLGR capability")
    # our OPEN as FRR read it: GR with 60 s and our families preserved, and LLGR
    caps = frr_caps(lab)
    assert caps.get("longLivedGracefulRestart") == "advertisedAndReceived", caps
    assert caps.get("gracefulRestartRemoteTimerMsecs") == 60000, caps
    assert caps.get("addressFamiliesByPeer", {}).get("ipv4Vpn", {}).get("preserved") is True, caps
    wait_until(lambda: at_bird(lab), what="FRR's route reflected to BIRD")

    t0 = time.monotonic()
    kill_frr(lab)
    try:
        wait_until(lambda: (lambda p: p and p["stale"] and p)(path(lab)), what="stale")
        p = wait_until(lambda: (lambda p: p and p["llgr_stale"] and p)(path(lab)), timeout=20,
                       what="LLGR-stale after FRR's restart time")
        assert time.monotonic() - t0 >= 3.5, "not before FRR's 4 s restart time"
        assert p["stale"] is True, p
        # the neighbors row comes from the speaker's status, polled apart from the routes
        # (every 0.3 s): it may say LLGR a poll after the path does
        row = wait_until(lambda: (lambda r: r.get("graceful_restart") == "LLGR_TIMER" and r)(lab.neighbor(FRR)),
                         timeout=5, what="the neighbor in its LLGR timer")
        assert "long-lived graceful restart helper" in row["last_reason"], row
        assert ", llgr-stale" in route_show(lab)
        # RFC 9494 §4.3: BIRD (eBGP) has no LLGR capability: the route is withdrawn from it
        wait_until(lambda: not at_bird(lab), what="the LLGR-stale route withdrawn from BIRD")
        # §4.6: GoBGP (iBGP, no LLGR) keeps it, with NO_EXPORT and LOCAL_PREF 0, LLGR_STALE kept
        a = wait_until(lambda: (lambda a: NO_EXPORT in communities(a) and a)(at_gobgp(lab)),
                       what="GoBGP's copy with NO_EXPORT")
        assert LLGR_STALE in communities(a) and a[5]["value"] == 0, a
    finally:
        start_frr(lab)
    p = wait_until(lambda: (lambda p: p and not p["stale"] and not p["llgr_stale"] and p)(path(lab)),
                   what="fresh after FRR's End-of-RIB")
    assert lab.neighbor(FRR).get("graceful_restart") is None
    wait_until(lambda: at_bird(lab), what="back at BIRD")
    a = wait_until(lambda: (lambda a: a and not communities(a) and a)(at_gobgp(lab)),
                   what="GoBGP's copy fresh again")
    assert a[5]["value"] == 100, a

    # Our long-lived time, lowered on the running node, caps FRR's 600 s.
    set_gr(lab, enable=True, bgp_helper_enable=True, restart_time=60, long_lived_restart_time=4,
           end_of_rib_timeout=60)
    time.sleep(1)
    t0 = time.monotonic()
    kill_frr(lab)
    try:
        wait_until(lambda: (lambda p: p and p["llgr_stale"])(path(lab)), timeout=20, what="LLGR-stale")
        wait_until(lambda: not lab.paths(TABLE, ROUTE), timeout=20, what="gone after the long-lived time")
        assert time.monotonic() - t0 >= 7.5, "not before 4 s + 4 s"
        wait_until(lambda: lab.neighbor(FRR).get("stale_paths") == 0, timeout=5, what="no stale path left")
    finally:
        start_frr(lab)
    wait_until(lambda: path(lab), what="FRR's route back")


def test_frr_back_without_forwarding_state_ends_the_restart(lab):
    """FRR killed, then back without `preserve-fw-state`: its new OPEN clears the F bit,
    so TF's `IsGRReady` fails on the new session and every stale path goes as soon as it
    is Established, not at FRR's End-of-RIB (RFC 4724 §4.2 asks that for the family;
    TF ends the whole restart). FRR re-sends its routes and they are fresh."""
    set_gr(lab, enable=True, bgp_helper_enable=True, restart_time=60, long_lived_restart_time=0,
           end_of_rib_timeout=60)
    # a session that carries a 60 s restart time (the LLGR test left FRR at 4 s)
    lab.vty("conf t", "router bgp 65001", "bgp graceful-restart restart-time 60")
    lab.vty("clear bgp *")
    wait_until(lambda: lab.neighbor(FRR).get("state") == "Established" and path(lab), timeout=60,
               what="the session with FRR's 60 s restart time")
    conf = lab.work / "frr.conf"
    conf.write_text(conf.read_text().replace(" bgp graceful-restart preserve-fw-state\n", "")
                    .replace("restart-time 4\n", "restart-time 60\n"))
    time.sleep(1)  # the BGP link reads the GR settings every 0.3 s
    kill_frr(lab)
    try:
        wait_until(lambda: (lambda p: p and p["stale"] and p)(path(lab)), what="stale")
    finally:
        start_frr(lab)
    row = wait_until(lambda: (lambda r: "graceful restart ended" in (r.get("last_reason") or "")
                              and r)(lab.neighbor(FRR)), timeout=10, what="the restart ended")
    assert "forwarding state not preserved for" in row["last_reason"], row
    p = wait_until(lambda: (lambda p: p and not p["stale"] and p)(path(lab)), what="fresh again")
    assert p["llgr_stale"] is False, p


def test_nothing_panicked(lab):
    log = (lab.work / "up.log").read_text(errors="replace")
    assert "panicked" not in log, log[-3000:]
    assert lab.procs["up"].proc.poll() is None, "filament up is still running"
