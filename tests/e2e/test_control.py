"""The control node inside ``filament up``: XMPP agents (raw sockets speaking TF's
protocol, tf-facts §2), route exchange and replication, config delivery, hold timer, the
introspect JSON on its own port and the ``filament route`` / ``filament neighbors`` CLI."""

import re
import socket
import subprocess
import time

import pytest
import requests

from conftest import FilamentServer, _die_with_parent, filament_bin, free_port

CONTROL_JID = "network-control@contrailsystems.com"
KEEPALIVE = b"\xc8\x80"


class ControlServer(FilamentServer):
    """``filament up`` with the control node on private ports and a 3 s hold time."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.xmpp_port = free_port()
        self.introspect_port = free_port()
        self.control_url = f"http://127.0.0.1:{self.introspect_port}"

    def start(self):
        self.starts += 1
        log = open(self.log_path, "ab")
        cmd = [str(self.binary), "up", "--data-dir", str(self.data_dir),
               "--listen", f"127.0.0.1:{self.port}",
               "--xmpp-listen", f"127.0.0.1:{self.xmpp_port}",
               "--introspect", f"127.0.0.1:{self.introspect_port}",
               "--bgp-listen", f"127.0.0.1:{free_port()}",
               "--bgp-address", "127.0.0.1", "--name", "ctl-e2e", "--hold-time", "3"]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        finally:
            log.close()
        self._wait_ready()
        wait_for(lambda: requests.get(self.control_url + "/status", timeout=2).json()["state"] == "active")

    def cli(self, *args):
        out = subprocess.run([str(self.binary), *args, "--control", self.control_url],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception as exc:  # the server may not answer yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} ({last})")


class Agent:
    """A minimal TF vRouter agent: stream open, subscribe, publish + collection."""

    def __init__(self, port, name):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.seq = 0
        self.send(f"<?xml version='1.0'?><stream:stream from='{name}' to='{CONTROL_JID}' version='1.0' "
                  "xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' >")
        self.wait(b"<stream:stream")

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def pump(self):
        self.sock.settimeout(0.1)
        try:
            data = self.sock.recv(65536)
            if not data:
                return False
            self.buf += data
        except socket.timeout:
            pass
        except OSError:
            return False
        return True

    def wait(self, needle, timeout=10.0, keepalive=False):
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {needle!r} in {self.buf[-2000:]!r}")
            if keepalive:
                self.send(KEEPALIVE)
            if not self.pump():
                raise AssertionError(f"{self.name}: connection closed waiting for {needle!r}")

    def closed_within(self, timeout, keepalive_others=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for o in keepalive_others:
                o.send(KEEPALIVE)
                o.pump()
            if not self.pump():
                return True
        return False

    def iq(self, body, to="bgp-peer", kind="subscribe"):
        self.seq += 1
        return (f'<iq type="set" from="{self.name}" to="{CONTROL_JID}/{to}" id="{kind}{self.seq}">'
                f'<pubsub xmlns="http://jabber.org/protocol/pubsub">{body}</pubsub></iq>')

    def subscribe(self, vrf, instance_id):
        self.send(self.iq(f'<subscribe node="{vrf}"><options><instance-id>{instance_id}</instance-id></options></subscribe>'))

    def subscribe_config(self, node):
        self.send(self.iq(f'<subscribe node="{node}"/>', to="config"))

    def publish(self, vrf, vn, ip, nh, label, op="associate"):
        node = f"1/1/{vrf}/{ip}/32"
        entry = (f"<entry><nlri><af>1</af><safi>1</safi><address>{ip}/32</address></nlri>"
                 f"<next-hops><next-hop><af>1</af><address>{nh}</address><label>{label}</label>"
                 "<tunnel-encapsulation-list><tunnel-encapsulation>gre</tunnel-encapsulation>"
                 "<tunnel-encapsulation>udp</tunnel-encapsulation></tunnel-encapsulation-list>"
                 f"<virtual-network>{vn}</virtual-network></next-hop></next-hops><version>1</version>"
                 f"<virtual-network>{vn}</virtual-network><local-preference>200</local-preference><med>0</med></entry>")
        self.send(self.iq(f'<publish node="{node}"><item>{entry}</item></publish>', kind="pubsub")
                  + self.iq(f'<collection node="{vrf}"><{op} node="{node}"/></collection>', kind="collection"))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def running_control(tmp_path_factory, name):
    """A started `ControlServer` in a fresh work dir (`name`), stopped cleanly after: the body
    of a module-scoped fixture (`yield from running_control(...)`)."""
    work = tmp_path_factory.mktemp(name)
    data = work / "data"
    data.mkdir()
    srv = ControlServer(filament_bin(), data, work)
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, srv.log_tail()


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    yield from running_control(tmp_path_factory, "filament-control")


def post(srv, plural, ty, body):
    r = requests.post(srv.url(f"/{plural}"), json={ty: body}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()[ty]["uuid"]


def make_vn(srv, proj, name, prefix):
    post(srv, "virtual-networks", "virtual-network", {
        "fq_name": ["default-domain", proj, name], "parent_type": "project",
        "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                               "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": prefix, "ip_prefix_len": 24}}]}}]})
    vrf = f"default-domain:{proj}:{name}:{name}"

    def has_target():
        ri = requests.get(ctl_url(srv, "/routing-instances"), timeout=5).json()
        return any(r["fq_name"] == vrf.split(":") for r in ri["routing-instances"])
    wait_for(has_target, what=f"routing instance {vrf}")
    return vrf


def ctl_url(srv, path):
    return srv.url(path)


def test_bgp_router_registered(ctl):
    routers = requests.get(ctl.url("/bgp-routers?detail=True"), timeout=5).json()["bgp-routers"]
    mine = [r["bgp-router"] for r in routers if r["bgp-router"]["fq_name"][-1] == "ctl-e2e"]
    assert mine, routers
    params = mine[0]["bgp_router_parameters"]
    assert params["router_type"] == "control-node"
    assert params["address"] == "127.0.0.1"
    assert params["autonomous_system"] == 64512
    assert mine[0]["fq_name"][:4] == ["default-domain", "default-project", "ip-fabric", "__default__"]


def test_agents_exchange_routes_and_policy_connects_networks(ctl):
    post(ctl, "projects", "project", {"fq_name": ["default-domain", "pc"], "parent_type": "domain"})
    vrf1 = make_vn(ctl, "pc", "red", "10.11.1.0")
    vrf2 = make_vn(ctl, "pc", "blue", "10.12.1.0")
    a, b, c = Agent(ctl.xmpp_port, "cn-a"), Agent(ctl.xmpp_port, "cn-b"), Agent(ctl.xmpp_port, "cn-c")
    try:
        a.subscribe(vrf1, 1)
        b.subscribe(vrf1, 2)
        c.subscribe(vrf2, 1)
        a.publish(vrf1, "default-domain:pc:red", "10.11.1.3", "192.168.50.1", 17)
        b.wait(b'<item id="10.11.1.3/32">')
        assert b"<address>192.168.50.1</address>" in b.buf
        assert b"<label>17</label>" in b.buf
        # the VPN table carries RD <agent-ip>:<instance-id>
        vpn = requests.get(ctl.control_url + "/routes", params={"table": "bgp.l3vpn.0"}, timeout=5).json()
        keys = [r["prefix"] for t in vpn["tables"] for r in t["routes"]]
        assert "192.168.50.1:1:10.11.1.3/32" in keys
        # blue does not see red until a policy connects them
        time.sleep(0.5)
        c.pump()
        assert b"10.11.1.3/32" not in c.buf
        rule = {"direction": "<>", "protocol": "any", "action_list": {"simple_action": "pass"},
                "src_addresses": [{"virtual_network": "default-domain:pc:red"}],
                "dst_addresses": [{"virtual_network": "default-domain:pc:blue"}],
                "src_ports": [{"start_port": -1, "end_port": -1}], "dst_ports": [{"start_port": -1, "end_port": -1}]}
        pol = post(ctl, "network-policys", "network-policy", {
            "fq_name": ["default-domain", "pc", "red-blue"], "parent_type": "project",
            "network_policy_entries": {"policy_rule": [rule]}})
        for vn in ("red", "blue"):
            vn_uuid = requests.post(ctl.url("/fqname-to-id"), json={"type": "virtual-network",
                                    "fq_name": ["default-domain", "pc", vn]}, timeout=5).json()["uuid"]
            r = requests.post(ctl.url("/ref-update"), json={
                "type": "virtual-network", "uuid": vn_uuid, "ref-type": "network-policy", "ref-uuid": pol,
                "operation": "ADD", "attr": {"sequence": {"major": 0, "minor": 0}}}, timeout=5)
            assert r.status_code == 200, r.text
        c.wait(b'<item id="10.11.1.3/32">', keepalive=True)
        # operator CLI
        out = ctl.cli("route", "show", "-t", f"{vrf2}.inet.0")
        assert f"{vrf2}.inet.0: 1 destinations" in out, out
        assert "[XMPP|cn-a]" in out and "nh: 192.168.50.1" in out and "primary: " in out, out
        summary = ctl.cli("route", "summary")
        assert re.search(rf"{re.escape(vrf1)}\.inet\.0\s+1\s+1\s+1\s+0\s+0", summary), summary
        nei = ctl.cli("neighbors")
        assert re.search(r"cn-a\s+127\.0\.0\.1\s+0\s+XMPP\s+internal\s+Established", nei), nei
        # a silent agent is dropped after the 3 s hold time; its route is retracted
        assert a.closed_within(8, keepalive_others=(b, c)), "hold timer did not fire"
        b.wait(b'<retract id="10.11.1.3/32"', keepalive=True)
        c.wait(b'<retract id="10.11.1.3/32"', keepalive=True)
        nei = requests.get(ctl.control_url + "/neighbors", timeout=5).json()["neighbors"]
        assert [n for n in nei if n["peer"] == "cn-a"][0]["flap_count"] == 1
    finally:
        for x in (a, b, c):
            x.close()


def test_config_delivery_and_bad_input(ctl):
    post(ctl, "projects", "project", {"fq_name": ["default-domain", "pcfg"], "parent_type": "domain"})
    make_vn(ctl, "pcfg", "green", "10.21.1.0")
    vm = post(ctl, "virtual-machines", "virtual-machine", {"fq_name": ["vm-e2e-1"]})
    vmi = post(ctl, "virtual-machine-interfaces", "virtual-machine-interface", {
        "fq_name": ["default-domain", "pcfg", "vm-e2e-1-eth0"], "parent_type": "project",
        "virtual_network_refs": [{"to": ["default-domain", "pcfg", "green"]}],
        "virtual_machine_refs": [{"to": ["vm-e2e-1"]}]})
    post(ctl, "instance-ips", "instance-ip", {
        "fq_name": ["vm-e2e-1-ip"], "virtual_network_refs": [{"to": ["default-domain", "pcfg", "green"]}],
        "virtual_machine_interface_refs": [{"uuid": vmi, "to": []}]})
    post(ctl, "virtual-routers", "virtual-router", {
        "fq_name": ["default-global-system-config", "cfg-host"], "parent_type": "global-system-config",
        "virtual_router_ip_address": "192.168.60.1", "virtual_machine_refs": [{"uuid": vm, "to": []}]})
    agent = Agent(ctl.xmpp_port, "cfg-host")
    bad = Agent(ctl.xmpp_port, "bad-host")
    try:
        agent.subscribe_config("virtual-router:default-global-system-config:cfg-host")
        agent.wait(b'<node type="virtual-machine-interface"><name>default-domain:pcfg:vm-e2e-1-eth0</name>',
                   keepalive=True)
        agent.wait(b'<metadata type="virtual-machine-interface-virtual-network"', keepalive=True)
        agent.wait(b'<node type="instance-ip"><name>vm-e2e-1-ip</name>', keepalive=True)
        assert b'to="cfg-host/config"' in agent.buf
        # malformed XMPP closes only that session
        bad.send(b"<iq type='set'><pubsub><a></b></pubsub></iq>")
        assert bad.closed_within(5, keepalive_others=(agent,))
        agent.send(KEEPALIVE)
        assert agent.pump(), "the other session stays up"
        status = requests.get(ctl.control_url + "/status", timeout=5).json()
        assert status["role"] == "control" and status["state"] == "active"
        assert status["counters"]["malformed"] >= 1
    finally:
        agent.close()
        bad.close()


def close_wait_sockets(port):
    """Sockets of this host in CLOSE-WAIT whose local port is `port` (ss, iproute2)."""
    out = subprocess.run(["ss", "-Htn", "state", "close-wait", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_agent_sockets_are_released_and_an_endless_stanza_is_not_read_into_memory(ctl):
    """An agent that goes away leaves no socket behind (each one used to stay in CLOSE-WAIT
    with its writer task, forever: an fd per agent reconnect). An agent that sends an
    endless stanza is closed at the 4 MiB stanza cap, and the node reads no further ahead
    of its core than a bounded window: the socket, not the node's heap, holds the rest (it
    used to read at line rate into the core's queue, ~900 MiB in 2.5 s here, before the
    core got to the cap)."""
    a = Agent(ctl.xmpp_port, "gone-1")
    a.send(KEEPALIVE)
    a.close()
    wait_for(lambda: not close_wait_sockets(ctl.xmpp_port), 5, "the closed agent's socket released")

    flood = Agent(ctl.xmpp_port, "flood-1")
    flood.send(b"<iq type='set' x='")
    chunk = b"a" * (1 << 20)
    with pytest.raises(OSError):  # reset or broken pipe: the node closed the session
        for _ in range(256):
            flood.sock.settimeout(30)
            flood.sock.sendall(chunk)
    flood.close()

    def reason():
        rows = requests.get(ctl.control_url + "/neighbors", timeout=5).json()["neighbors"]
        return next((r.get("last_reason") or "" for r in rows if r["peer"] == "flood-1"), "")
    wait_for(lambda: "stanza exceeds" in reason(), 10, "the flood's session closed at the stanza cap")
    wait_for(lambda: not close_wait_sockets(ctl.xmpp_port), 10, "the flood's socket released")


class IbgpPair:
    """One config API (``filament up --no-control``) and two ``filament control`` nodes,
    cn1 on 127.0.0.2 and cn2 on 127.0.0.3 (same BGP port, each speaking from its own address)."""

    def __init__(self, work):
        self.work = work
        data = work / "data"
        data.mkdir()
        self.api = FilamentServer(filament_bin(), data, work)
        self.bgp_port = free_port()
        self.nodes = {}
        self.procs = []

    def start(self):
        log = open(self.work / "api.log", "ab")
        p = subprocess.Popen([str(self.api.binary), "up", "--no-control", "--data-dir", str(self.api.data_dir),
                              "--listen", f"127.0.0.1:{self.api.port}"], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        log.close()
        self.procs.append(p)
        wait_for(lambda: requests.get(self.api.url("/"), timeout=2).status_code == 200, 30, "config API")
        for name, ip in (("cn1", "127.0.0.2"), ("cn2", "127.0.0.3")):
            xmpp, intro = free_port(), free_port()
            log = open(self.work / f"{name}.log", "ab")
            p = subprocess.Popen([str(self.api.binary), "control", "--api", self.api.base_url, "--name", name,
                                  "--xmpp-listen", f"127.0.0.1:{xmpp}", "--introspect", f"127.0.0.1:{intro}",
                                  "--bgp-listen", f"{ip}:{self.bgp_port}", "--bgp-address", ip],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=_die_with_parent)
            log.close()
            self.procs.append(p)
            self.nodes[name] = (xmpp, f"http://127.0.0.1:{intro}")
        for name, (_, url) in self.nodes.items():
            wait_for(lambda: requests.get(url + "/status", timeout=2).json()["state"] == "active", 30,
                     f"{name} active")

    def logs(self):
        return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.work.glob("*.log")))

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def ibgp(tmp_path):
    pair = IbgpPair(tmp_path)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        print(pair.logs())


def test_two_control_nodes_in_ibgp_routes_cross(ibgp):
    """Two control nodes on one config, peered by a bgp-router ref (tf-facts §3: iBGP full
    mesh between control nodes); an agent on each; a route published at cn1 reaches cn2's
    agent with its next hop and label, and its withdrawal follows."""
    api = ibgp.api
    fq = lambda n: ["default-domain", "default-project", "ip-fabric", "__default__", n]  # noqa: E731

    def router(name):
        r = requests.post(api.url("/fqname-to-id"), json={"type": "bgp-router", "fq_name": fq(name)}, timeout=5)
        if r.status_code != 200:
            return None
        return requests.get(api.url(f"/bgp-router/{r.json()['uuid']}"), timeout=5).json()["bgp-router"]
    wait_for(lambda: router("cn1") and router("cn2"), 30, "both control nodes' bgp-routers")
    cn1, cn2 = router("cn1"), router("cn2")
    # each registered the address and port it listens on
    assert cn1["bgp_router_parameters"]["address"] == "127.0.0.2"
    assert cn1["bgp_router_parameters"]["port"] == ibgp.bgp_port
    r = requests.post(api.url("/ref-update"), json={
        "type": "bgp-router", "uuid": cn1["uuid"], "ref-type": "bgp-router", "ref-uuid": cn2["uuid"],
        "operation": "ADD", "attr": {}}, timeout=5)
    assert r.status_code == 200, r.text

    def established(url, peer):
        nei = requests.get(url + "/neighbors", timeout=5).json()["neighbors"]
        return any(n["peer"] == peer and n.get("state") == "Established" for n in nei)
    wait_for(lambda: established(ibgp.nodes["cn1"][1], "127.0.0.3")
             and established(ibgp.nodes["cn2"][1], "127.0.0.2"), 60, "iBGP session cn1 <-> cn2")

    post(api, "projects", "project", {"fq_name": ["default-domain", "pib"], "parent_type": "domain"})
    vrf = make_vn(api, "pib", "red", "10.31.1.0")
    a = Agent(ibgp.nodes["cn1"][0], "ib-a")
    b = Agent(ibgp.nodes["cn2"][0], "ib-b")
    try:
        b.subscribe(vrf, 1)
        a.subscribe(vrf, 1)
        a.publish(vrf, "default-domain:pib:red", "10.31.1.3", "192.168.70.1", 23)
        b.wait(b'<item id="10.31.1.3/32">', timeout=30, keepalive=True)
        item = b.buf[b.buf.index(b'<item id="10.31.1.3/32">'):]
        item = item.split(b"</item>")[0]
        assert b"<address>192.168.70.1</address>" in item and b"<label>23</label>" in item, item
        # the origin VN crossed as TF's origin-vn community and came back as the VN's name
        assert b"<virtual-network>default-domain:pib:red</virtual-network>" in item, item
        # cn2 holds it as a BGP path from cn1, RD <agent-ip>:<instance-id>
        vpn = requests.get(ibgp.nodes["cn2"][1] + "/routes", params={"table": "bgp.l3vpn.0"}, timeout=5).json()
        text = str(vpn)
        assert "192.168.70.1:1:10.31.1.3/32" in text and "127.0.0.2" in text, text
        # and back: cn2's agent publishes, cn1's agent receives
        b.publish(vrf, "default-domain:pib:red", "10.31.1.4", "192.168.70.2", 24)
        a.wait(b'<item id="10.31.1.4/32">', timeout=30, keepalive=True)
        # withdrawal crosses too
        a.publish(vrf, "default-domain:pib:red", "10.31.1.3", "192.168.70.1", 23, op="dissociate")
        b.wait(b'<retract id="10.31.1.3/32"', timeout=30, keepalive=True)

        # A new global ASN (global-system-config) while running: as TF's schema transformer
        # does for `contrail` routers, both control nodes' bgp-routers take it, and the iBGP
        # session comes back in the new AS (it stayed up in 64512 before: OPEN, RTC origin
        # and route targets disagreed).
        gsc = requests.get(api.url("/global-system-configs"), timeout=5).json()["global-system-configs"][0]
        r = requests.put(api.url(f"/global-system-config/{gsc['uuid']}"),
                         json={"global-system-config": {"autonomous_system": 64513}}, timeout=5)
        assert r.status_code == 200, r.text
        wait_for(lambda: all(router(n)["bgp_router_parameters"]["autonomous_system"] == 64513
                             for n in ("cn1", "cn2")), 30, "both bgp-routers in AS 64513")

        def in_new_as(url, peer):
            nei = requests.get(url + "/neighbors", timeout=5).json()["neighbors"]
            return any(n["peer"] == peer and n.get("state") == "Established" and n.get("asn") == 64513
                       for n in nei)
        wait_for(lambda: in_new_as(ibgp.nodes["cn1"][1], "127.0.0.3")
                 and in_new_as(ibgp.nodes["cn2"][1], "127.0.0.2"), 60, "iBGP session in AS 64513")
        # routes still cross, under the VN's new target
        a.publish(vrf, "default-domain:pib:red", "10.31.1.5", "192.168.70.1", 25)
        b.wait(b'<item id="10.31.1.5/32">', timeout=30, keepalive=True)
        vpn = requests.get(ibgp.nodes["cn2"][1] + "/routes", params={"table": "bgp.l3vpn.0"}, timeout=5).json()
        assert "target:64513:" in str(vpn), vpn

        # Deleting the peering ref brings the session down on both nodes (TF: Cease,
        # peer de-configured) and the peer leaves `neighbors`.
        r = requests.post(api.url("/ref-update"), json={
            "type": "bgp-router", "uuid": cn1["uuid"], "ref-type": "bgp-router", "ref-uuid": cn2["uuid"],
            "operation": "DELETE"}, timeout=5)
        assert r.status_code == 200, r.text

        def gone(url, peer):
            nei = requests.get(url + "/neighbors", timeout=5).json()["neighbors"]
            return not any(n["peer"] == peer for n in nei)
        wait_for(lambda: gone(ibgp.nodes["cn1"][1], "127.0.0.3") and gone(ibgp.nodes["cn2"][1], "127.0.0.2"),
                 30, "the peering gone on both nodes")
    finally:
        a.close()
        b.close()
