"""XMPP graceful restart, helper mode (tf-facts §2.7), through ``filament up``: with
global-system-config ``graceful_restart_parameters`` set over the REST API,

- a raw-socket agent whose TCP session is reset keeps its routes (stale) at the other
  agent; back, it re-publishes one of two and sends End-of-RIB, which sweeps only the other;
- (root) a real ``filament agent`` killed with SIGKILL: the other host keeps the route to
  its workload while it is away; restarted, it re-publishes what it still has and its
  End-of-RIB ends the restart."""

import json
import os
import signal
import socket
import struct
import time

import pytest
import requests

from agent_lab import HostsLab, nsrun
from agent_lab import wait_for as lab_wait_for
from test_control import KEEPALIVE, Agent, make_vn, post, running_control, wait_for

GR_ON = {"enable": True, "restart_time": 60, "long_lived_restart_time": 300,
         "end_of_rib_timeout": 60, "bgp_helper_enable": False, "xmpp_helper_enable": True}


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    yield from running_control(tmp_path_factory, "filament-xmpp-gr")


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
    set_gr(ctl, GR_ON)
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
        a2.send('<message from="gr-a" to="network-control@contrailsystems.com/bgp-peer">'
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


FAB = "192.168.96"
API_LINK = "192.168.97"


class GrLab(HostsLab):
    """``filament up`` in the controller namespace (3 s hold time), two hosts with
    ``filament agent``."""

    def __init__(self, work):
        super().__init__(work, "gx", FAB, API_LINK, [f"{FAB}.254"])
        self.introspect = f"http://{API_LINK}.2:8083"

    def start_controller(self):
        self.spawn(self.ctl, "ctl", [self.bin, "up", "--data-dir", str(self.work / "data"),
                                     "--listen", "0.0.0.0:8082", "--xmpp-listen", "0.0.0.0:5269",
                                     "--introspect", "0.0.0.0:8083", "--bgp-listen", "127.0.0.1:1179",
                                     "--name", "ctl", "--bgp-address", f"{FAB}.254", "--hold-time", "3"])
        lab_wait_for(lambda: requests.get(self.api + "/", timeout=2).status_code == 200, what="config API")

    def start_agent(self, i):
        self.spawn(self.h[i], f"agent-h{i}", [self.bin, "agent", "--name", f"h{i}", "--fabric-if", "fab0",
                                              "--control", f"{FAB}.254", "--port-api", "127.0.0.1:9091"])
        lab_wait_for(lambda: self.agent_get(i, "/status")["state"] == "active", what=f"agent h{i} connected")

    def vrouter_routes(self, i):
        return json.loads(nsrun(self.h[i], "curl", "-s", "--max-time", "5",
                                "http://127.0.0.1:9091/vrouter/routes", timeout=10).stdout)

    def has_route(self, i, ip):
        return any(str(r.get("prefix", "")).startswith(ip + "/") for r in self.vrouter_routes(i))

    def control(self, path, **params):
        return requests.get(self.introspect + path, params=params, timeout=5).json()

    def neighbor(self, name):
        return [n for n in self.control("/neighbors")["neighbors"] if n["peer"] == name][0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, AF_PACKET)")
def test_real_agent_killed_keeps_its_route_at_the_other_host(tmp_path):
    lab = GrLab(tmp_path)
    try:
        lab.build()
        lab.start_controller()
        gsc = requests.get(f"{lab.api}/global-system-configs", timeout=30).json()["global-system-configs"][0]
        lab.update("global-system-config", gsc["uuid"], {"graceful_restart_parameters": GR_ON})
        lab_wait_for(lambda: lab.control("/status")["graceful_restart"]["xmpp_helper"], what="GR at the node")
        vn = lab.project_with_vns({"vn1": "10.72.1.0"})
        lab.start_agent(1)
        lab.start_agent(2)
        lab.port("w1", 1, vn["vn1"], "vn1")
        w2 = lab.port("w2", 2, vn["vn1"], "vn1")
        lab_wait_for(lambda: lab.has_route(1, w2["ip"]), what="w2's route on h1")

        lab.stop("agent-h2", signal.SIGKILL)
        lab_wait_for(lambda: lab.neighbor("h2")["state"] == "Idle (GR helper)", what="h2 in GR at the node")
        # well past the 3 s hold time: h1 keeps the route, the node shows it stale
        time.sleep(5)
        assert lab.has_route(1, w2["ip"]), lab.logs()
        vrf = ":".join(lab.project + ["vn1", "vn1"])
        t = lab.control("/routes", table=f"{vrf}.inet.0", prefix=f"{w2['ip']}/32")["tables"]
        paths = [p for r in t[0]["routes"] for p in r["paths"] if p["source"] == "h2"]
        assert paths and paths[0]["stale"] is True, t

        # back: the restarted agent has no ports (they are not persisted across a restart),
        # re-publishes nothing and sends End-of-RIB: that ends the restart and sweeps w2's route
        lab.start_agent(2)
        lab_wait_for(lambda: lab.control("/status")["graceful_restart"]["restarting"] == [],
                     what="h2's restart ended by its End-of-RIB")
        n = lab.neighbor("h2")
        assert n["state"] == "Established" and n["eor_received"] is True, n
        assert n["graceful_restart"] is None
        assert lab.agent_get(2, "/status")["ports"] == 0
        lab_wait_for(lambda: not lab.has_route(1, w2["ip"]), what="w2's route swept from h1")
        c = lab.control("/status")["counters"]
        # inet path kept then swept; the EVPN (MAC) path deleted at the close, as in TF
        assert (c["gr_closes"], c["gr_staled"], c["gr_swept"], c["gr_deleted"]) == (1, 1, 1, 1), c
    except Exception:
        print(lab.logs())
        raise
    finally:
        lab.close()
