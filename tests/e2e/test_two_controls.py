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
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import filament_bin

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, AF_PACKET)")

FAB = "192.168.94"
API_LINK = "192.168.95"
CN = {"cn1": f"{FAB}.254", "cn2": f"{FAB}.253"}


def run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def nsrun(ns, *args, check=True, timeout=60):
    return run("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


def wait_for(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({last})")


class TwoControlLab:
    def __init__(self, work: Path):
        self.work = work
        self.bin = str(filament_bin())
        t = uuid.uuid4().hex[:5]
        self.ctl, self.h = f"f2-ctl-{t}", {1: f"f2-h1-{t}", 2: f"f2-h2-{t}"}
        self.tag = t
        self.w = {}
        self.rootif = f"f2-r{t}"
        self.procs = {}
        self.api = f"http://{API_LINK}.2:8082"

    def build(self):
        for ns in (self.ctl, *self.h.values()):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.ctl, "link", "add", "br0", "type", "bridge")
        for ip in CN.values():
            run("ip", "-n", self.ctl, "addr", "add", f"{ip}/24", "dev", "br0")
        run("ip", "-n", self.ctl, "link", "set", "br0", "up")
        for i, ns in self.h.items():
            run("ip", "-n", self.ctl, "link", "add", f"p{i}", "type", "veth", "peer", "name", "fab0", "netns", ns)
            run("ip", "-n", self.ctl, "link", "set", f"p{i}", "master", "br0", "up")
            run("ip", "-n", ns, "addr", "add", f"{FAB}.{i}/24", "dev", "fab0")
            run("ip", "-n", ns, "link", "set", "fab0", "up")
            nsrun(ns, "ethtool", "-K", "fab0", "tso", "off", "gso", "off", "gro", "off", check=False)
        run("ip", "link", "add", self.rootif, "type", "veth", "peer", "name", "api0", "netns", self.ctl)
        run("ip", "addr", "add", f"{API_LINK}.1/30", "dev", self.rootif)
        run("ip", "link", "set", self.rootif, "up")
        run("ip", "-n", self.ctl, "addr", "add", f"{API_LINK}.2/30", "dev", "api0")
        run("ip", "-n", self.ctl, "link", "set", "api0", "up")

    def spawn(self, ns, name, args):
        log = self.work / f"{name}.log"
        f = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        f.close()
        self.procs[name] = (p, log)
        return p

    def stop(self, name, sig=signal.SIGTERM):
        p, _ = self.procs.pop(name)
        if p.poll() is None:
            os.killpg(p.pid, sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        for ns in (*self.w.values(), *self.h.values(), self.ctl):
            for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", self.rootif, check=False)

    def logs(self, lines=60):
        out = []
        for name, (_, log) in self.procs.items():
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(out)

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
        for i, ns in self.h.items():
            self.spawn(ns, f"agent-h{i}", [self.bin, "agent", "--name", f"h{i}", "--fabric-if", "fab0",
                                           "--control", CN["cn1"], "--control", CN["cn2"],
                                           "--port-api", "127.0.0.1:9091"])

    def agent_get(self, i, path):
        out = nsrun(self.h[i], "curl", "-s", "--max-time", "5", f"http://127.0.0.1:9091{path}", timeout=10).stdout
        return json.loads(out)

    def channels(self, i):
        return [c["state"] for c in self.agent_get(i, "/status")["xmpp"]]

    def routes(self, i):
        return {str(r.get("prefix", "")) for r in self.agent_get(i, "/vrouter/routes")}

    # -- config API --------------------------------------------------------------
    def create(self, ty, body):
        r = requests.post(f"{self.api}/{ty}s", json={ty: body}, timeout=30)
        assert r.status_code == 200, f"create {ty}: {r.status_code} {r.text}"
        return r.json()[ty]["uuid"]

    def read(self, ty, u):
        r = requests.get(f"{self.api}/{ty}/{u}", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()[ty]

    def setup_config(self):
        self.project = ["default-domain", "f2-" + self.tag]
        self.create("project", {"fq_name": self.project, "parent_type": "domain"})
        self.vn = self.create("virtual-network", {
            "fq_name": self.project + ["vn1"], "parent_type": "project",
            "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                                   "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.72.1.0",
                                                                         "ip_prefix_len": 24}}]}}]})
        for i in self.h:
            self.create("virtual-router", {"fq_name": ["default-global-system-config", f"h{i}"],
                                           "parent_type": "global-system-config",
                                           "virtual_router_ip_address": f"{FAB}.{i}"})

    def workload(self, name, host):
        """VM + VMI + instance-ip in the API, `filament port add` on the host, the address set
        in the workload's namespace (the gateway answers through the agent's ARP proxy)."""
        vm = str(uuid.uuid4())
        self.create("virtual-machine", {"fq_name": [vm], "uuid": vm})
        vmi = self.create("virtual-machine-interface", {
            "fq_name": self.project + [name], "parent_type": "project",
            "virtual_network_refs": [{"uuid": self.vn, "to": self.project + ["vn1"]}],
            "virtual_machine_refs": [{"uuid": vm, "to": [vm]}]})
        iip = self.create("instance-ip", {"fq_name": [f"{name}-{vm[:8]}"],
                                          "virtual_network_refs": [{"uuid": self.vn, "to": self.project + ["vn1"]}],
                                          "virtual_machine_interface_refs": [{"uuid": vmi,
                                                                              "to": self.project + [name]}]})
        ip = self.read("instance-ip", iip)["instance_ip_address"]
        mac = self.read("virtual-machine-interface", vmi)["virtual_machine_interface_mac_addresses"]["mac_address"][0]
        ns = f"f2-{name}-{self.tag}"
        run("ip", "netns", "add", ns)
        self.w[name] = ns
        nsrun(self.h[host], self.bin, "port", "add", "--vmi", vmi, "--vm", vm, "--vn", self.vn, "--mac", mac,
              "--ip", ip, "--ifname", f"tap{name}", "--netns", ns, timeout=30)
        wait_for(lambda: self.agent_get(host, f"/port/{vmi}")["state"] == "active",
                 what=f"port {name} programmed")
        nsrun(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        nsrun(ns, "ip", "link", "set", "eth0", "up")
        return {"ns": ns, "vmi": vmi, "ip": ip, "host": host}

    def ping(self, src, dst_ip, count=2):
        r = nsrun(src["ns"], "busybox", "ping", "-c", str(count), "-W", "2", dst_ip, check=False)
        return r.returncode == 0


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
