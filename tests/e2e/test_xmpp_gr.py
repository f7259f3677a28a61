"""XMPP graceful restart, helper mode (tf-facts §2.7), through ``filament up``: with
global-system-config ``graceful_restart_parameters`` set over the REST API, an agent whose
TCP session is reset keeps its routes (stale) at the other agents; back, it re-publishes
one of two and sends End-of-RIB, which sweeps only the other."""

import socket
import struct
import time

import pytest
import requests

from conftest import filament_bin
from test_control import KEEPALIVE, Agent, ControlServer, make_vn, post, wait_for


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    work = tmp_path_factory.mktemp("filament-xmpp-gr")
    data = work / "data"
    data.mkdir()
    srv = ControlServer(filament_bin(), data, work)
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, srv.log_tail()


def set_gr(srv, params):
    """PUT graceful_restart_parameters on the global-system-config, as vnc_api does."""
    uuid = requests.post(srv.url("/fqname-to-id"), json={
        "type": "global-system-config", "fq_name": ["default-global-system-config"]}, timeout=5).json()["uuid"]
    r = requests.put(srv.url(f"/global-system-config/{uuid}"),
                     json={"global-system-config": {"graceful_restart_parameters": params}}, timeout=5)
    assert r.status_code == 200, r.text


def status(srv):
    return requests.get(srv.control_url + "/status", timeout=5).json()


def reset(agent):
    """Drop the agent's TCP session with a RST (a crash, not an orderly stream close)."""
    agent.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    agent.close()


def path_of(srv, table, prefix, source):
    v = requests.get(srv.control_url + "/routes", params={"table": table, "prefix": prefix}, timeout=5).json()
    for t in v["tables"]:
        for r in t["routes"]:
            for p in r["paths"]:
                if p["source"] == source:
                    return p
    return None


def keep_alive(agents, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for a in agents:
            a.send(KEEPALIVE)
            assert a.pump(), f"{a.name}: session closed"


def test_agent_reset_keeps_routes_stale_until_end_of_rib(ctl):
    set_gr(ctl, {"enable": True, "restart_time": 60, "long_lived_restart_time": 300,
                 "end_of_rib_timeout": 60, "bgp_helper_enable": False, "xmpp_helper_enable": True})
    wait_for(lambda: status(ctl)["graceful_restart"]["xmpp_helper"], what="GR parameters at the node")
    assert status(ctl)["graceful_restart"]["restart_time"] == 60
    post(ctl, "projects", "project", {"fq_name": ["default-domain", "pgr"], "parent_type": "domain"})
    vrf = make_vn(ctl, "pgr", "red", "10.31.1.0")
    vn = "default-domain:pgr:red"
    table = f"{vrf}.inet.0"
    a, b = Agent(ctl.xmpp_port, "gr-a"), Agent(ctl.xmpp_port, "gr-b")
    a2 = None
    try:
        a.subscribe(vrf, 1)
        b.subscribe(vrf, 2)
        a.publish(vrf, vn, "10.31.1.3", "192.168.70.1", 17)
        a.publish(vrf, vn, "10.31.1.5", "192.168.70.1", 19)
        b.wait(b'<item id="10.31.1.3/32">', keepalive=True)
        b.wait(b'<item id="10.31.1.5/32">', keepalive=True)
        assert path_of(ctl, table, "10.31.1.3/32", "gr-a")["stale"] is False

        reset(a)
        wait_for(lambda: "gr-a" in status(ctl)["graceful_restart"]["restarting"], what="gr-a in GR")
        # away: nothing retracted from gr-b, the paths are shown stale, the peer is in GR
        keep_alive([b], 2.0)
        assert b"<retract" not in b.buf, b.buf[-2000:]
        assert path_of(ctl, table, "10.31.1.3/32", "gr-a")["stale"] is True
        vpn = path_of(ctl, "bgp.l3vpn.0", "10.31.1.5/32", "gr-a")
        assert vpn is not None and vpn["stale"] is True
        out = ctl.cli("route", "show", "-t", table)
        assert "[XMPP|gr-a]" in out and ", stale" in out, out
        nei = ctl.cli("neighbors")
        assert "Idle (GR helper)" in nei, nei

        # back: re-subscribe, re-publish one of the two, End-of-RIB
        a2 = Agent(ctl.xmpp_port, "gr-a")
        a2.subscribe(vrf, 1)
        a2.publish(vrf, vn, "10.31.1.3", "192.168.70.1", 17)
        wait_for(lambda: path_of(ctl, table, "10.31.1.3/32", "gr-a")["stale"] is False, what="refreshed")
        keep_alive([a2, b], 0.5)
        assert b"<retract" not in b.buf
        a2.send(f'<message from="gr-a" to="network-control@contrailsystems.com/bgp-peer">'
                '<event xmlns="http://jabber.org/protocol/pubsub"><items node="0/0/EndOfRib"></items>'
                "</event></message>")
        b.wait(b'<retract id="10.31.1.5/32"', keepalive=True)
        assert b'<retract id="10.31.1.3/32"' not in b.buf
        assert path_of(ctl, table, "10.31.1.5/32", "gr-a") is None
        assert path_of(ctl, table, "10.31.1.3/32", "gr-a")["stale"] is False
        st = status(ctl)
        assert st["graceful_restart"]["restarting"] == []
        assert st["counters"]["gr_swept"] == 1 and st["counters"]["gr_refreshed"] == 1
    finally:
        for x in (a, b, a2):
            if x is not None:
                x.close()
        set_gr(ctl, {"enable": False, "xmpp_helper_enable": False})
