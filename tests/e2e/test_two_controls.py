"""An agent on two control nodes (issue 6 item 1; tf-facts §2: an agent connects to up to
two control nodes, MAX_XMPP_SERVERS = 2).  One config API (``filament up --no-control``) and
two ``filament control`` nodes in iBGP, in their own namespace; two compute hosts, each
``filament agent`` given both ``--control`` addresses::

    root ns ──veth── ctl [up --no-control, cn1 .254, cn2 .253]  br0 192.168.94.254 + .253
                                          ├──veth── h1 [filament agent] fab0 192.168.94.1 ─ w1
                                          └──veth── h2 [filament agent] fab0 192.168.94.2 ─ w2, w3

Checked: both XMPP channels come up and routes arrive while both nodes run (ping w1 -> w2);
cn1 is killed: the agents keep their routes and forwarding, and a port added afterwards is
published through cn2 alone and reaches the other host (ping w1 -> w3); cn1 comes back and
the agents reconnect to it.  Root only; everything created is removed afterwards.
"""

import json
import os
import signal
import time

import pytest
import requests

from agent_lab import HostsLab, nsrun, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, AF_PACKET)")

FAB = "192.168.94"
API_LINK = "192.168.95"
CN = {"cn1": f"{FAB}.254", "cn2": f"{FAB}.253"}


class TwoControlLab(HostsLab):
    def __init__(self, work):
        super().__init__(work, "f2", FAB, API_LINK, CN.values())

    # -- processes ---------------------------------------------------------------
    def start_api(self):
        self.spawn(self.ctl, "api", [self.bin, "up", "--no-control", "--data-dir", str(self.work / "data"),
                                     "--listen", "0.0.0.0:8082"])
        wait_for(lambda: requests.get(self.api + "/", timeout=2).status_code == 200, what="config API")

    def intro(self, name):
        return f"http://{CN[name]}:8083"

    def cn_get(self, name, path):
        out = nsrun(self.ctl, "curl", "-s", "--max-time", "5", self.intro(name) + path, timeout=10).stdout
        return json.loads(out)

    def start_control(self, name):
        ip = CN[name]
        self.spawn(self.ctl, name, [self.bin, "control", "--api", "http://127.0.0.1:8082", "--name", name,
                                    "--xmpp-listen", f"{ip}:5269", "--introspect", f"{ip}:8083",
                                    "--bgp-listen", f"{ip}:1179", "--bgp-address", ip, "--hold-time", "6"])
        wait_for(lambda: self.cn_get(name, "/status")["state"] == "active", what=f"{name} active")

    def peer_controls(self):
        fq = lambda n: ["default-domain", "default-project", "ip-fabric", "__default__", n]  # noqa: E731

        def router(name):
            r = requests.post(self.api + "/fqname-to-id", json={"type": "bgp-router", "fq_name": fq(name)},
                              timeout=5)
            return r.json()["uuid"] if r.status_code == 200 else None
        wait_for(lambda: router("cn1") and router("cn2"), what="both bgp-routers registered")
        r = requests.post(self.api + "/ref-update", json={
            "type": "bgp-router", "uuid": router("cn1"), "ref-type": "bgp-router", "ref-uuid": router("cn2"),
            "operation": "ADD", "attr": {}}, timeout=5)
        assert r.status_code == 200, r.text

        def established(name, peer):
            return any(n["peer"] == peer and n.get("state") == "Established"
                       for n in self.cn_get(name, "/neighbors")["neighbors"])
        wait_for(lambda: established("cn1", CN["cn2"]) and established("cn2", CN["cn1"]), 60,
                 "iBGP session cn1 <-> cn2")

    def start_agents(self):
        super().start_agents([CN["cn1"], CN["cn2"]])

    def channels(self, i):
        return [c["state"] for c in self.agent_get(i, "/status")["xmpp"]]

    def routes(self, i):
        return {str(r.get("prefix", "")) for r in self.agent_get(i, "/vrouter/routes")}

    # -- config ---------------------------------------------------------------
    def setup_config(self):
        self.vn = self.project_with_vns({"vn1": "10.72.1.0"})["vn1"]

    def workload(self, name, host):
        """A port of vn1 on `host` (see HostsLab.port) with its address set in the workload's
        namespace (the gateway answers through the agent's ARP proxy)."""
        w = self.port(name, host, self.vn, "vn1")
        nsrun(w["ns"], "ip", "addr", "add", f"{w['ip']}/24", "dev", "eth0")
        nsrun(w["ns"], "ip", "link", "set", "eth0", "up")
        return w


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = TwoControlLab(tmp_path_factory.mktemp("two-controls"))
    try:
        lab.build()
        lab.start_api()
        for name in CN:
            lab.start_control(name)
        lab.peer_controls()
        lab.setup_config()
        lab.start_agents()
        yield lab
    except Exception:
        print(lab.logs())
        raise
    finally:
        lab.close()


def test_agent_uses_both_control_nodes_and_survives_losing_one(lab):
    for i in lab.h:
        wait_for(lambda i=i: lab.channels(i) == ["established", "established"], 40,
                 f"h{i} connected to both control nodes")
    w1, w2 = lab.workload("w1", 1), lab.workload("w2", 2)
    # routes arrive while both are up: each agent published to both, each node pushes
    wait_for(lambda: f"{w2['ip']}/32" in lab.routes(1), what="w2's route at h1")
    wait_for(lambda: f"{w1['ip']}/32" in lab.routes(2), what="w1's route at h2")
    for name in CN:
        peers = {n["peer"] for n in lab.cn_get(name, "/neighbors")["neighbors"]}
        assert {"h1", "h2"} <= peers, (name, peers)
    assert wait_for(lambda: lab.ping(w1, w2["ip"]), what="w1 -> w2 ping"), lab.logs()

    # cn1 dies (no goodbye): the agents keep their routes and forwarding through cn2
    lab.stop("cn1", signal.SIGKILL)
    for i in lab.h:
        wait_for(lambda i=i: lab.channels(i)[0] != "established", 30, f"h{i} noticed cn1 gone")
        assert lab.channels(i)[1] == "established", lab.agent_get(i, "/status")
        assert lab.agent_get(i, "/status")["state"] == "active"
    assert f"{w2['ip']}/32" in lab.routes(1) and f"{w1['ip']}/32" in lab.routes(2)
    assert lab.ping(w1, w2["ip"]), "forwarding lost with one control node left\n" + lab.logs()
    # a route published via the remaining node alone still reaches the other host; the
    # older routes are still there after cn2's pushes
    w3 = lab.workload("w3", 2)
    wait_for(lambda: f"{w3['ip']}/32" in lab.routes(1), what="w3's route at h1 through cn2")
    assert wait_for(lambda: lab.ping(w1, w3["ip"]), what="w1 -> w3 ping"), lab.logs()
    assert f"{w2['ip']}/32" in lab.routes(1)
    time.sleep(8)  # past cn1's hold time: nothing expires what cn2 still holds
    assert {f"{w2['ip']}/32", f"{w3['ip']}/32"} <= lab.routes(1), lab.routes(1)
    assert lab.ping(w1, w2["ip"], count=1) and lab.ping(w1, w3["ip"], count=1), lab.logs()

    # cn1 comes back: the agents reconnect and re-subscribe; routes and forwarding stay
    lab.start_control("cn1")
    for i in lab.h:
        wait_for(lambda i=i: lab.channels(i) == ["established", "established"], 40,
                 f"h{i} reconnected to cn1")
    wait_for(lambda: {"h1", "h2"} <= {n["peer"] for n in lab.cn_get("cn1", "/neighbors")["neighbors"]
                                      if n.get("state") == "Established"}, 30, "agents on cn1 again")
    assert {f"{w2['ip']}/32", f"{w3['ip']}/32"} <= lab.routes(1), lab.routes(1)
    assert lab.ping(w1, w3["ip"], count=1), lab.logs()
