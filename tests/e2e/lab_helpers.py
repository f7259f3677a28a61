"""Helpers for test_lab.py: run `filament demo` once, drive the lab it builds.

The lab is described by `filament demo show --json` (see the README's "Demo lab" section):
controller (netns, api_url, control_url, pid, cmd), hosts (name, netns, fabric_ip,
agent_url), networks (name, uuid, subnet, gateway, dns), workloads (name, netns, interface,
host, vn, vn_uuid, vm_uuid, vmi_uuid, ip, mac, tap, port_body).
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from conftest import filament_bin

RUN_DIR = Path("/run/filament-demo")
READY_TIMEOUT_S = 240


def run(*args, check=True, timeout=60, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def nsrun(ns, *args, **kw):
    return run("ip", "netns", "exec", ns, *args, **kw)


def ping(ns, ip, count=1, wait=1):
    """A real ICMP echo from netns `ns` (busybox ping if iputils is not installed)."""
    cmd = ["ping"] if subprocess.run(["which", "ping"], capture_output=True).returncode == 0 else ["busybox", "ping"]
    return nsrun(ns, *cmd, "-c", str(count), "-W", str(wait), ip, check=False, timeout=30).returncode == 0


def first_reply_after(ns, ip, action, interval=0.1, limit=10):
    """Ping `ip` from `ns` every `interval` s while `action()` runs; returns the seconds from the
    end of `action` to the first echo reply (0 if one came before it ended), None if none came
    within `limit` s."""
    import re

    cmd = ["ping"] if subprocess.run(["which", "ping"], capture_output=True).returncode == 0 else ["busybox", "ping"]
    p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd, "-i", str(interval), "-w", str(limit), ip],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    t_start = time.monotonic()
    action()
    done = time.monotonic() - t_start
    out = p.communicate(timeout=limit + 10)[0]
    seqs = [int(m) for m in re.findall(r"seq=(\d+)", out)]
    if not seqs:
        return None
    return max(0.0, min(seqs) * interval - done)


def wait_until(pred, timeout, step=0.1):
    """Poll `pred` until true; returns the seconds it took, or None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    return None


class Lab:
    def __init__(self, work: Path):
        self.work = work
        self.bin = str(filament_bin())
        self.log = work / "demo.log"
        self.proc = None
        self.state = None

    def cli(self, *args, check=True, timeout=60):
        return run(self.bin, *args, check=check, timeout=timeout)

    def up(self, clean_first=True):
        if clean_first:
            self.cli("demo", "down", check=False)
        out = open(self.log, "wb")
        self.proc = subprocess.Popen([self.bin, "demo"], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        t0 = time.monotonic()
        while time.monotonic() - t0 < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise AssertionError(f"filament demo exited with {self.proc.returncode}\n{self.tail()}")
            if "READY" in self.log.read_text(errors="replace"):
                self.state = json.loads(self.cli("demo", "show", "--json").stdout)
                self.ready_s = time.monotonic() - t0
                return
            time.sleep(0.5)
        raise AssertionError(f"filament demo not ready after {READY_TIMEOUT_S}s\n{self.tail()}")

    def down(self):
        r = self.cli("demo", "down", check=False)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        return r

    def tail(self, n=60):
        parts = [self.log.read_text(errors="replace")[-6000:]] if self.log.exists() else []
        for f in sorted((RUN_DIR / "logs").glob("*.log")) if (RUN_DIR / "logs").exists() else []:
            lines = f.read_text(errors="replace").splitlines()[-n:]
            parts.append(f"--- {f} ---\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- lab description ----------------------------------------------------
    @property
    def api(self):
        return self.state["controller"]["api_url"]

    @property
    def control(self):
        return self.state["controller"]["control_url"]

    def w(self, name):
        return next(w for w in self.state["workloads"] if w["name"] == name)

    def host(self, name):
        return next(h for h in self.state["hosts"] if h["name"] == name)

    def vn(self, name):
        return next(n for n in self.state["networks"] if n["name"] == name)

    def agent_of(self, w):
        return self.host(w["host"])["agent_url"]

    # -- API ----------------------------------------------------------------
    def get(self, path):
        r = requests.get(self.api + path, timeout=30)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def create(self, ty, body):
        r = requests.post(f"{self.api}/{ty}s", json={ty: body}, timeout=30)
        assert r.status_code == 200, f"create {ty}: {r.status_code} {r.text}"
        return r.json()[ty]["uuid"]

    def read(self, ty, uuid):
        return self.get(f"/{ty}/{uuid}")[ty]

    def update(self, ty, uuid, body):
        r = requests.put(f"{self.api}/{ty}/{uuid}", json={ty: body}, timeout=30)
        assert r.status_code == 200, f"update {ty}: {r.status_code} {r.text}"

    def set_encap(self, order):
        gvc = self.get("/global-vrouter-configs")["global-vrouter-configs"][0]["uuid"]
        self.update("global-vrouter-config", gvc, {"encapsulation_priorities": {"encapsulation": order}})

    def vnc(self):
        """The real vnc_api client, against the lab's API."""
        from vnc_api.vnc_api import VncApi

        conf = self.work / "vnc_api_lib.ini"
        conf.write_text("")
        host, port = self.api.split("//")[1].split(":")
        return VncApi(api_server_host=host, api_server_port=int(port), auth_type="noauth",
                      conf_file=str(conf), timeout=60, connection_timeout=5)

    # -- workloads -----------------------------------------------------------
    def dhcp(self, ns):
        """Run dhclient (as the demo does) in `ns`; returns the lease's options."""
        lf = RUN_DIR / f"{ns}-dhclient.leases"
        pf = RUN_DIR / f"{ns}-dhclient.pid"
        if pf.exists():
            try:
                os.kill(int(pf.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        nsrun(ns, "dhclient", "-1", "-cf", RUN_DIR / "dhclient.conf", "-sf", RUN_DIR / "dhcp-hook.sh",
              "-pf", pf, "-lf", lf, "eth0", timeout=60)
        return parse_lease(lf.read_text())

    def add_workload(self, project_fq, vn_uuid, vn_fq, name, host):
        """VM + VMI + instance-ip through the API, plugged on `host`'s agent into a new netns."""
        ns = f"fil-{name}"
        run("ip", "netns", "add", ns)
        vm = self.create("virtual-machine", {"fq_name": [f"{name}-vm"]})
        vmi = self.create("virtual-machine-interface", {
            "fq_name": project_fq + [name], "parent_type": "project",
            "virtual_network_refs": [{"uuid": vn_uuid, "to": vn_fq}],
            "virtual_machine_refs": [{"uuid": vm, "to": [f"{name}-vm"]}]})
        iip = self.create("instance-ip", {
            "fq_name": [f"{name}-iip"], "virtual_network_refs": [{"uuid": vn_uuid, "to": vn_fq}],
            "virtual_machine_interface_refs": [{"uuid": vmi, "to": project_fq + [name]}]})
        ip = self.read("instance-ip", iip)["instance_ip_address"]
        mac = self.read("virtual-machine-interface", vmi)["virtual_machine_interface_mac_addresses"]["mac_address"][0]
        body = {"id": vmi, "instance-id": vm, "display-name": name, "ip-address": ip, "vn-id": vn_uuid,
                "mac-address": mac, "system-name": f"tap{vmi[:11]}", "type": 0, "rx-vlan-id": -1,
                "tx-vlan-id": -1, "vm-namespace": ns, "vm-ifname": "eth0"}
        agent = self.host(host)["agent_url"]
        r = requests.post(f"{agent}/port", json=body, timeout=30)
        assert r.status_code == 200, f"POST /port: {r.status_code} {r.text}"
        assert wait_until(lambda: requests.get(f"{agent}/port/{vmi}", timeout=5).json().get("state") == "active", 30) is not None
        return {"name": name, "netns": ns, "ip": ip, "mac": mac, "vmi_uuid": vmi, "host": host, "port_body": body}


def parse_lease(text):
    """The last lease of a dhclient lease file: fixed-address and options."""
    lease = {}
    block = text.rsplit("lease {", 1)[-1]
    for line in block.splitlines():
        line = line.strip().rstrip(";")
        if line.startswith("fixed-address "):
            lease["fixed-address"] = line.split()[1]
        elif line.startswith("option "):
            parts = line.split(None, 2)
            if len(parts) == 3:
                lease[parts[1]] = parts[2]
    return lease
