"""The compute-host lab shared by the agent end-to-end tests (test_agent.py,
test_two_controls.py): a controller namespace with a fabric bridge, compute-host
namespaces each joined to the bridge by a veth (``fab0``), a veth from the root
namespace to the controller for the config API, processes started inside the
namespaces with their logs kept, and the raw-JSON config calls vnc_api makes.

Each test module subclasses ``HostsLab`` with how it starts its controller(s) and
agents; everything created is removed by ``close``.
"""

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import requests

from conftest import filament_bin


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


class HostsLab:
    """``prefix`` names the namespaces, ``fab`` is the fabric /24 (hosts are .1, .2),
    ``bridge_ips`` the controller addresses on the fabric bridge, ``api_link`` the /30
    between the root namespace and the controller (API at .2:8082)."""

    def __init__(self, work: Path, prefix: str, fab: str, api_link: str, bridge_ips):
        self.work = work
        self.bin = str(filament_bin())
        self.tag = uuid.uuid4().hex[:5]
        self.prefix, self.fab, self.bridge_ips = prefix, fab, list(bridge_ips)
        self.ctl = f"{prefix}-ctl-{self.tag}"
        self.h = {1: f"{prefix}-h1-{self.tag}", 2: f"{prefix}-h2-{self.tag}"}
        self.w = {}
        self.rootif = f"{prefix}-r{self.tag}"
        self.procs = {}
        self.api_link = api_link
        self.api = f"http://{api_link}.2:8082"

    # -- topology ------------------------------------------------------------
    def build(self):
        for ns in (self.ctl, *self.h.values()):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.ctl, "link", "add", "br0", "type", "bridge")
        for ip in self.bridge_ips:
            run("ip", "-n", self.ctl, "addr", "add", f"{ip}/24", "dev", "br0")
        run("ip", "-n", self.ctl, "link", "set", "br0", "up")
        for i, ns in self.h.items():
            run("ip", "-n", self.ctl, "link", "add", f"p{i}", "type", "veth", "peer", "name", "fab0", "netns", ns)
            run("ip", "-n", self.ctl, "link", "set", f"p{i}", "master", "br0", "up")
            run("ip", "-n", ns, "addr", "add", f"{self.fab}.{i}/24", "dev", "fab0")
            run("ip", "-n", ns, "link", "set", "fab0", "up")
            nsrun(ns, "ethtool", "-K", "fab0", "tso", "off", "gso", "off", "gro", "off", check=False)
        run("ip", "link", "add", self.rootif, "type", "veth", "peer", "name", "api0", "netns", self.ctl)
        run("ip", "addr", "add", f"{self.api_link}.1/30", "dev", self.rootif)
        run("ip", "link", "set", self.rootif, "up")
        run("ip", "-n", self.ctl, "addr", "add", f"{self.api_link}.2/30", "dev", "api0")
        run("ip", "-n", self.ctl, "link", "set", "api0", "up")

    # -- processes -------------------------------------------------------------
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

    def start_agents(self, controls, extra=()):
        for i, ns in self.h.items():
            args = [self.bin, "agent", "--name", f"h{i}", "--fabric-if", "fab0"]
            for c in controls:
                args += ["--control", c]
            self.spawn(ns, f"agent-h{i}", [*args, "--port-api", "127.0.0.1:9091", *extra])

    def agent_get(self, i, path):
        out = nsrun(self.h[i], "curl", "-s", "--max-time", "5", f"http://127.0.0.1:9091{path}", timeout=10).stdout
        return json.loads(out)

    def logs(self, lines=40):
        out = []
        for name, (_, log) in self.procs.items():
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(out)

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

    # -- config API (raw JSON, as vnc_api sends it) ------------------------------
    def create(self, ty, body):
        r = requests.post(f"{self.api}/{ty}s", json={ty: body}, timeout=30)
        assert r.status_code == 200, f"create {ty}: {r.status_code} {r.text}"
        return r.json()[ty]["uuid"]

    def read(self, ty, u):
        r = requests.get(f"{self.api}/{ty}/{u}", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()[ty]

    def update(self, ty, u, body):
        r = requests.put(f"{self.api}/{ty}/{u}", json={ty: body}, timeout=30)
        assert r.status_code == 200, f"update {ty}: {r.status_code} {r.text}"

    def project_with_vns(self, subnets):
        """A project of this lab and one VN per ``{name: "a.b.c.0"}`` (/24 subnets), plus a
        virtual-router per host; returns ``{name: uuid}``."""
        self.project = ["default-domain", f"{self.prefix}-{self.tag}"]
        self.create("project", {"fq_name": self.project, "parent_type": "domain"})
        vns = {}
        for n, cidr in subnets.items():
            vns[n] = self.create("virtual-network", {
                "fq_name": self.project + [n], "parent_type": "project",
                "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                                       "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": cidr,
                                                                             "ip_prefix_len": 24}}]}}]})
        for i in self.h:
            self.create("virtual-router", {"fq_name": ["default-global-system-config", f"h{i}"],
                                           "parent_type": "global-system-config",
                                           "virtual_router_ip_address": f"{self.fab}.{i}"})
        return vns

    def port(self, name, host, vn_uuid, vn_name):
        """VM + VMI + instance-ip in the API, then `filament port add` on the host's agent into
        a new workload namespace; waits until the agent has programmed it."""
        vm = str(uuid.uuid4())
        self.create("virtual-machine", {"fq_name": [vm], "uuid": vm})
        vn_ref = [{"uuid": vn_uuid, "to": self.project + [vn_name]}]
        vmi = self.create("virtual-machine-interface", {
            "fq_name": self.project + [name], "parent_type": "project",
            "virtual_network_refs": vn_ref, "virtual_machine_refs": [{"uuid": vm, "to": [vm]}]})
        iip = self.create("instance-ip", {"fq_name": [f"{name}-{vm[:8]}"], "virtual_network_refs": vn_ref,
                                          "virtual_machine_interface_refs": [{"uuid": vmi,
                                                                              "to": self.project + [name]}]})
        ip = self.read("instance-ip", iip)["instance_ip_address"]
        mac = self.read("virtual-machine-interface", vmi)["virtual_machine_interface_mac_addresses"]["mac_address"][0]
        ns = f"{self.prefix}-{name}-{self.tag}"
        run("ip", "netns", "add", ns)
        self.w[name] = ns
        nsrun(self.h[host], self.bin, "port", "add", "--vmi", vmi, "--vm", vm, "--vn", vn_uuid, "--mac", mac,
              "--ip", ip, "--ifname", f"tap{name}", "--netns", ns, timeout=30)
        wait_for(lambda: self.agent_get(host, f"/port/{vmi}")["state"] == "active",
                 what=f"port {name} programmed")
        return {"ns": ns, "vmi": vmi, "vm": vm, "ip": ip, "mac": mac, "host": host}

    def ping(self, src, dst_ip, count=2):
        r = nsrun(src["ns"], "busybox", "ping", "-c", str(count), "-W", "2", dst_ip, check=False)
        return r.returncode == 0
