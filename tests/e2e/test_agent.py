"""The vRouter agent end to end (issue 6): ``filament up`` (config API + transformer +
control node) in its own namespace, two compute hosts each running ``filament agent``
(XMPP to the control node, forwarder on AF_PACKET, port API on 9091), workloads in their own
namespaces plugged through the port API (the agent creates the veth pairs)::

    root ns ──veth── ctl [filament up]  br0 192.168.90.254
                                          ├──veth── h1 [filament agent] fab0 192.168.90.1 ─ tap ─ w1 (vn1), w4 (vn1)
                                          └──veth── h2 [filament agent] fab0 192.168.90.2 ─ tap ─ w2 (vn1), w3 (vn2)

XMPP runs over TLS as TF's ``xmpp_auth_enable`` (control node ``--xmpp-tls-cert/-key/-ca``,
agents ``--xmpp-tls-ca/-cert/-key``; certificates made with the openssl CLI; the control
node's names ``ctl``, not its address: as TF's agent, ours checks the chain, not the name).

Checked, in order: dhclient gets the right lease; ping across hosts in one VN; two VNs
without a policy cannot talk; after a ``<>`` pass policy they can; a security group allowing
only TCP/22 blocks ping and lets TCP/22 through; stopping the controller keeps an existing
flow working (headless); an agent that does not STARTTLS is refused, with the reason in
``neighbors``. Root only; everything created is removed afterwards.
"""

import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

from agent_lab import HostsLab, nsrun, run, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, AF_PACKET)")

FAB = "192.168.90"
API_LINK = "192.168.91"


DHCLIENT_SCRIPT = """#!/bin/sh
# configure the address dhclient got, and nothing else (no resolv.conf)
case "$reason" in BOUND|RENEW|REBIND|REBOOT)
  ip addr flush dev "$interface"
  ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
  [ -n "$new_interface_mtu" ] && ip link set "$interface" mtu "$new_interface_mtu"
  set -- $new_routers; [ -n "$1" ] && ip route replace default via "$1"
  env | grep '^new_' > "$LEASE_ENV";;
esac
exit 0
"""


def make_pki(d):
    """A CA, the control node's certificate (named ``ctl``) and one agent certificate, as PEM
    files in `d` (EC P-256, openssl CLI)."""
    def ossl(*args):
        run("openssl", *args, check=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2", "-subj", "/CN=e2e-ca",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, usage in (("ctl", "serverAuth"), ("agent", "clientAuth")):
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage={usage}\n")
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}")
        ossl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-out", str(d / f"{name}.pem"), "-days", "2", "-extfile", str(d / f"{name}.ext"))


class AgentLab(HostsLab):
    def __init__(self, work):
        super().__init__(work, "fa", FAB, API_LINK, [f"{FAB}.254"])
        self.pki = work / "pki"
        self.pki.mkdir(exist_ok=True)
        make_pki(self.pki)
        self.introspect = f"http://{API_LINK}.2:8083"

    def start_controller(self):
        self.spawn(self.ctl, "ctl", [self.bin, "up", "--data-dir", str(self.work / "data"),
                                     "--listen", "0.0.0.0:8082", "--xmpp-listen", "0.0.0.0:5269",
                                     "--introspect", "0.0.0.0:8083", "--bgp-listen", "127.0.0.1:1179",
                                     "--name", "ctl", "--bgp-address", f"{FAB}.254", "--hold-time", "6",
                                     "--xmpp-tls-cert", str(self.pki / "ctl.pem"),
                                     "--xmpp-tls-key", str(self.pki / "ctl.key"),
                                     "--xmpp-tls-ca", str(self.pki / "ca.pem")])
        wait_for(lambda: requests.get(self.api + "/", timeout=2).status_code == 200, what="config API")

    def start_agents(self):
        # a flow table of a million entries per run loop (TF's vr_flow_entries is 512K)
        tls = ("--xmpp-tls-ca", str(self.pki / "ca.pem"), "--xmpp-tls-cert", str(self.pki / "agent.pem"),
               "--xmpp-tls-key", str(self.pki / "agent.key"))
        super().start_agents([f"{FAB}.254"], extra=("--flow-entries", "1000000", *tls))
        for i in self.h:
            wait_for(lambda i=i: self.agent_status(i)["state"] == "active", what=f"agent h{i} connected")

    def agent_status(self, i):
        return self.agent_get(i, "/status")

    def cli(self, i, *args, check=True):
        return nsrun(self.h[i], self.bin, *args, check=check, timeout=30)

    def setup_config(self):
        gvc = requests.get(f"{self.api}/global-vrouter-configs", timeout=30).json()["global-vrouter-configs"][0]["uuid"]
        self.update("global-vrouter-config", gvc,
                    {"encapsulation_priorities": {"encapsulation": ["MPLSoUDP", "MPLSoGRE", "VXLAN"]}})
        self.vn = self.project_with_vns({"vn1": "10.70.1.0", "vn2": "10.70.2.0"})

    def workload(self, name, host, vn):
        """A port of `vn` on `host` (see HostsLab.port); its address comes by DHCP later."""
        return self.port(name, host, self.vn[vn], vn)

    def dhclient(self, w):
        env_file = self.work / f"lease-{w['ns']}.env"
        script = self.work / f"dhclient-script-{w['ns']}.sh"
        # dhclient runs its script with an environment of its own: the path goes in the text
        script.write_text(DHCLIENT_SCRIPT.replace("$LEASE_ENV", str(env_file)))
        script.chmod(0o755)
        r = run("timeout", "30", "ip", "netns", "exec", w["ns"],
                "dhclient", "-1", "-4", "-sf", str(script), "-lf", str(self.work / f"{w['ns']}.leases"),
                "-pf", str(self.work / f"{w['ns']}.pid"), "eth0", check=False)
        assert r.returncode == 0, f"dhclient: {r.stderr}\n{self.logs()}"
        lease = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        return lease


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = AgentLab(tmp_path_factory.mktemp("agent-lab"))
    try:
        lab.build()
        lab.start_controller()
        lab.setup_config()
        lab.start_agents()
        lab.wl = {
            "w1": lab.workload("w1", 1, "vn1"),
            "w2": lab.workload("w2", 2, "vn1"),
            "w3": lab.workload("w3", 2, "vn2"),
        }
        for w in lab.wl.values():
            w["lease"] = lab.dhclient(w)
        yield lab
    except Exception:
        print(lab.logs())
        raise
    finally:
        lab.close()


def test_dhclient_lease_is_the_ports_config(lab):
    w1 = lab.wl["w1"]
    lease = w1["lease"]
    assert lease["new_ip_address"] == w1["ip"]
    assert lease["new_subnet_mask"] == "255.255.255.0"
    assert lease["new_routers"] == "10.70.1.254"  # subnet default gateway (last - 1)
    assert lease["new_domain_name_servers"] == "10.70.1.253"  # service address (last - 2)
    assert lease["new_dhcp_server_identifier"] == "10.70.1.253"
    # min(port MTU 1500, fabric MTU 1500 - 50): VXLAN and MPLSoUDP carrying Ethernet cost 50
    assert int(lease["new_interface_mtu"]) == 1500 - 50
    addr = nsrun(w1["ns"], "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert f"{w1['ip']}/24" in addr


def test_ping_across_hosts_same_vn(lab):
    assert wait_for(lambda: lab.ping(lab.wl["w1"], lab.wl["w2"]["ip"]), what="w1 -> w2 ping"), lab.logs()
    flows = lab.cli(1, "flow", "list").stdout
    assert lab.wl["w2"]["ip"] in flows and "implicit-allow-same-network" in flows, flows
    # the remote workload's route came from the control node as a tunnel nexthop
    nhs = json.loads(nsrun(lab.h[1], "curl", "-s", "http://127.0.0.1:9091/vrouter/nexthops").stdout)
    assert any(n.get("type") == "tunnel" and n.get("dst_ip") == f"{FAB}.2" for n in nhs), nhs
    # the agent's forwarder has the flow table size it was started with (--flow-entries)
    drops = json.loads(nsrun(lab.h[1], "curl", "-s", "http://127.0.0.1:9091/vrouter/dropstats").stdout)
    assert drops["flow_table"]["capacity"] >= 1_000_000 and drops["flow_table"]["entries"] > 0, drops
    # Workload vifs have policy: packets of an installed flow were forwarded in their receive
    # slot on both hosts (h1: w1's requests; h2: their egress toward w2, and w2's replies).
    assert lab.ping(lab.wl["w1"], lab.wl["w2"]["ip"], count=3), lab.logs()
    for i in (1, 2):
        stats = json.loads(nsrun(lab.h[i], "curl", "-s",
                                 "http://127.0.0.1:9091/vrouter/dropstats").stdout)
        assert stats["shell"]["in_place_flows"] > 0, (i, stats["shell"])


def test_two_vns_need_a_policy(lab):
    w1, w3 = lab.wl["w1"], lab.wl["w3"]
    assert not lab.ping(w1, w3["ip"], count=1)
    rule = {"direction": "<>", "protocol": "any", "ethertype": "IPv4",
            "src_addresses": [{"virtual_network": ":".join(lab.project + ["vn1"])}],
            "dst_addresses": [{"virtual_network": ":".join(lab.project + ["vn2"])}],
            "src_ports": [{"start_port": -1, "end_port": -1}], "dst_ports": [{"start_port": -1, "end_port": -1}],
            "action_list": {"simple_action": "pass"}}
    pol = lab.create("network-policy", {"fq_name": lab.project + ["allow-1-2"], "parent_type": "project",
                                        "network_policy_entries": {"policy_rule": [rule]}})
    for vn in ("vn1", "vn2"):
        lab.update("virtual-network", lab.vn[vn], {"network_policy_refs": [
            {"uuid": pol, "to": lab.project + ["allow-1-2"], "attr": {"sequence": {"major": 0, "minor": 0}}}]})
    assert wait_for(lambda: lab.ping(w1, w3["ip"], count=1), timeout=40, what="w1 -> w3 ping after policy"), lab.logs()


def test_policy_detach_cuts_a_running_ping(lab):
    # One ping process = one ICMP id = one flow, allowed by the policy attached above; after the
    # policy is detached the agent re-decides its flows and that same flow is dropped.
    w1, w3 = lab.wl["w1"], lab.wl["w3"]
    refs = {vn: lab.read("virtual-network", lab.vn[vn]).get("network_policy_refs", [])
            for vn in ("vn1", "vn2")}
    assert all(refs.values()), "test_two_vns_need_a_policy attaches the policy first"
    p = subprocess.Popen(["ip", "netns", "exec", w1["ns"], "ping", "-n", "-D", "-i", "0.2", "-w", "8", w3["ip"]],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(2.5)
        detached = time.time()
        for vn in ("vn1", "vn2"):
            lab.update("virtual-network", lab.vn[vn], {"network_policy_refs": []})
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    times = [float(line.split("]")[0].lstrip("[")) for line in out.splitlines() if "bytes from" in line]
    assert any(t < detached for t in times), out
    late = [t for t in times if t > detached + 2]
    assert not late, f"the running ping still got replies {[t - detached for t in late]} s after the detach"
    for vn in ("vn1", "vn2"):
        lab.update("virtual-network", lab.vn[vn], {"network_policy_refs": refs[vn]})


def test_security_group_only_ssh_blocks_ping(lab):
    w1, w2 = lab.wl["w1"], lab.wl["w2"]
    any4 = {"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}
    rules = [
        {"direction": ">", "protocol": "tcp", "ethertype": "IPv4", "src_addresses": [any4],
         "dst_addresses": [{"security_group": "local"}], "src_ports": [{"start_port": 0, "end_port": 65535}],
         "dst_ports": [{"start_port": 22, "end_port": 22}], "action_list": {"simple_action": "pass"}},
        {"direction": ">", "protocol": "any", "ethertype": "IPv4", "src_addresses": [{"security_group": "local"}],
         "dst_addresses": [any4], "src_ports": [{"start_port": 0, "end_port": 65535}],
         "dst_ports": [{"start_port": 0, "end_port": 65535}], "action_list": {"simple_action": "pass"}},
    ]
    denied_before = lab.agent_status(2)["counters"]["flows_denied"]
    sg = lab.create("security-group", {"fq_name": lab.project + ["ssh-only"], "parent_type": "project",
                                       "security_group_entries": {"policy_rule": rules}})
    lab.update("virtual-machine-interface", w2["vmi"],
               {"security_group_refs": [{"uuid": sg, "to": lab.project + ["ssh-only"]}]})
    wait_for(lambda: not lab.ping(w1, w2["ip"], count=1), timeout=40, what="ping blocked by the SG")
    server = subprocess.Popen(["ip", "netns", "exec", w2["ns"], "busybox", "nc", "-l", "-p", "22"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.5)
        nsrun(w1["ns"], "sh", "-c", f"echo hello-ssh | busybox nc -w 3 {w2['ip']} 22", check=False)
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out = b""
        assert b"hello-ssh" in out, (lab.cli(1, "flow", "list").stdout + lab.cli(2, "flow", "list").stdout
                                     + json.dumps(lab.agent_status(2)) + lab.logs(400))
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert lab.agent_status(2)["counters"]["flows_denied"] > denied_before
    lab.update("virtual-machine-interface", w2["vmi"], {"security_group_refs": []})


def test_bad_port_requests_change_nothing(lab):
    def call(method, path, body=None):
        cmd = ["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", "-X", method,
               f"http://127.0.0.1:9091{path}"]
        if body is not None:
            cmd += ["-H", "content-type: application/json", "-d", json.dumps(body)]
        r = nsrun(lab.h[1], *cmd, check=False)
        return int(r.stdout), r.stderr
    before = json.loads(nsrun(lab.h[1], "curl", "-s", "http://127.0.0.1:9091/ports").stdout)
    good = {"id": str(uuid.uuid4()), "instance-id": str(uuid.uuid4()), "mac-address": "02:00:00:00:99:01",
            "system-name": "tapbad"}
    for key, value in (("mac-address", "not-a-mac"), ("id", "123"), ("system-name", "x" * 20),
                       ("ip-address", "10.1")):
        code, text = call("POST", "/port", {**good, key: value})
        assert code == 400 and key in text, (key, code, text)
    code, text = call("POST", "/port", {**good, "system-name": "no-such-if0"})
    assert code == 400 and "no-such-if0" in text, text
    code, _ = call("POST", "/port", "{not json")
    assert 400 <= code < 500
    code, _ = call("DELETE", f"/port/{uuid.uuid4()}")
    assert code == 404
    code, _ = call("POST", "/port", {**good, "id": lab.wl["w1"]["vmi"]})
    assert code == 409
    after = json.loads(nsrun(lab.h[1], "curl", "-s", "http://127.0.0.1:9091/ports").stdout)
    assert after == before


def test_controller_down_keeps_flows(lab):
    w1, w2 = lab.wl["w1"], lab.wl["w2"]
    assert wait_for(lambda: lab.ping(w1, w2["ip"], count=1), timeout=40, what="ping before stop"), lab.logs()
    p = subprocess.Popen(["ip", "netns", "exec", w1["ns"], "busybox", "ping", "-c", "30", "-i", "0.2", w2["ip"]],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    lab.stop("ctl")
    out, _ = p.communicate(timeout=30)
    text = out.decode(errors="replace")
    received = int(text.split(" packets received")[0].rsplit(" ", 1)[-1])
    assert received >= 28, text
    st = lab.agent_status(1)
    # after the hold time the agent notices; its state is kept either way
    assert st["ports_active"] == 1 and st["routes_learnt"] >= 1, st
    assert lab.ping(w1, w2["ip"], count=1), "new flow while headless"


def test_controller_returns_and_agents_resync(lab):
    """After the headless test: the controller restarts on the same store; both agents
    reconnect, re-subscribe and re-publish, and traffic keeps flowing (learnt routes that the
    control node pushes again stay; stale ones are flushed at its End-of-RIB)."""
    w1, w2 = lab.wl["w1"], lab.wl["w2"]
    if "ctl" not in lab.procs:
        lab.start_controller()
    for i in lab.h:
        wait_for(lambda i=i: lab.agent_status(i)["state"] == "active", timeout=40, what=f"h{i} reconnected")
    wait_for(lambda: lab.agent_status(1)["routes_learnt"] >= 1, timeout=20, what="routes learnt again")
    assert wait_for(lambda: lab.ping(w1, w2["ip"], count=1), timeout=30, what="ping after resync"), lab.logs()
    st = lab.agent_status(1)
    assert st["xmpp"][0]["stats"]["flaps"] >= 2, st


def test_port_delete_withdraws_the_route(lab):
    w3 = lab.wl["w3"]
    def h1_has_w3():
        routes = json.loads(nsrun(lab.h[1], "curl", "-s", "http://127.0.0.1:9091/vrouter/routes").stdout)
        return any(str(r.get("prefix", "")).startswith(w3["ip"] + "/") for r in routes)
    assert wait_for(h1_has_w3, what="w3 route on h1 (policy leaks it)")
    lab.cli(2, "port", "delete", w3["vmi"])
    wait_for(lambda: not h1_has_w3(), what="w3 route withdrawn from h1")
    listed = lab.cli(2, "port", "list").stdout
    assert w3["vmi"] not in listed and lab.wl["w2"]["vmi"] in listed
    assert run("ip", "-n", lab.h[2], "link", "show", "tapw3", check=False).returncode != 0


def test_xmpp_is_tls_and_a_plain_agent_is_refused(lab):
    """Both agents' sessions came up over TLS (their logs say so, and the control node shows
    them Established); an agent that answers the feature request with an iq instead of
    <starttls/> is closed, and `neighbors` says why."""
    for i in lab.h:
        log = (lab.work / f"agent-h{i}.log").read_text(errors="replace")
        assert "xmpp connected (TLS)" in log, log[-2000:]
    rows = {r["peer"]: r for r in requests.get(lab.introspect + "/neighbors", timeout=5).json()["neighbors"]}
    assert all(rows[f"h{i}"]["state"] == "Established" for i in lab.h), rows
    s = socket.create_connection((f"{API_LINK}.2", 5269), timeout=5)
    try:
        s.sendall(b'<stream:stream from="plain" to="network-control@contrailsystems.com" version="1.0" '
                  b'xml:lang="en" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" >')
        buf = b""
        while b"</stream:features>" not in buf:
            data = s.recv(4096)
            assert data, buf
            buf += data
        assert b"<starttls" in buf and b"<required/>" in buf, buf
        s.sendall(b'<iq type="set" from="plain" to="network-control@contrailsystems.com/bgp-peer" id="subscribe1">'
                  b'<pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="x"><options>'
                  b'<instance-id>1</instance-id></options></subscribe></pubsub></iq>')
        while data:
            data = s.recv(4096)
            buf += data
        assert b"</stream:stream>" in buf, buf
    finally:
        s.close()

    def refused():
        r = requests.get(lab.introspect + "/neighbors", timeout=5).json()["neighbors"]
        row = next((x for x in r if x["peer"] == "plain"), {})
        return "TLS required" in (row.get("last_reason") or "")
    wait_for(refused, what="the plain agent's refusal in neighbors")
