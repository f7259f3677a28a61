"""Issue 7 acceptance: the `filament demo` lab, end to end across two compute hosts.

One `filament demo` (controller + two agents + four workloads, DHCP) is built for the module
and removed with `filament demo down` at the end. Every check uses real packets: pings,
iperf3, tshark captures on the fabric. Tests run in file order (the destructive ones last).
Root is needed (namespaces); without it the module is skipped.
"""

import json
import os
import subprocess
import time

import pytest
import requests

from lab_helpers import Lab, first_reply_after, nsrun, ping, run, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the demo lab needs root (network namespaces)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("demo-lab"))
    try:
        lab.up()
        print(f"demo ready in {lab.ready_s:.1f}s; first cross-host ping at {lab.state.get('first_cross_host_ping_s')}s")
        yield lab
    except Exception:
        print(lab.tail())
        raise
    finally:
        r = lab.down()
        leftovers = run("ip", "netns", "list").stdout
        assert "fil-" not in leftovers, f"demo down left namespaces: {leftovers}\n{r.stdout}{r.stderr}"


def test_demo_show_describes_the_lab(lab):
    s = lab.state
    assert s["ready"] is True
    assert len(s["hosts"]) == 2 and len(s["workloads"]) == 4
    for w in s["workloads"]:
        for k in ("netns", "interface", "vn", "ip", "mac", "host"):
            assert w[k], (k, w)
        # The interface really is in that namespace with that MAC.
        link = nsrun(w["netns"], "ip", "-o", "link", "show", "dev", w["interface"]).stdout
        assert w["mac"].lower() in link.lower()
    for h in s["hosts"]:
        assert h["fabric_ip"] in run("ip", "-n", h["netns"], "-4", "-o", "addr").stdout


def test_dhcp_lease_gives_ip_gateway_dns_mtu(lab):
    for w in lab.state["workloads"]:
        vn = lab.vn(w["vn"])
        lease = lab.dhcp(w["netns"])
        assert lease.get("fixed-address") == w["ip"], lease
        assert lease.get("routers") == vn["gateway"], lease
        assert lease.get("domain-name-servers", "").split(",")[0] == vn["dns"], lease
        addr = nsrun(w["netns"], "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        assert f"{w['ip']}/24" in addr
        route = nsrun(w["netns"], "ip", "route", "show", "default").stdout
        assert vn["gateway"] in route
        mtu = int(nsrun(w["netns"], "cat", "/sys/class/net/eth0/mtu").stdout)
        if "interface-mtu" in lease:
            assert mtu == int(lease["interface-mtu"])
        # A full-size workload packet must fit the fabric in every encapsulation the lab
        # uses: VXLAN over IPv4 is the largest (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).
        fabric_mtu = int(run("ip", "netns", "exec", lab.host(w["host"])["netns"], "cat", "/sys/class/net/eth0/mtu").stdout)
        assert mtu + 50 <= fabric_mtu, f"workload MTU {mtu} + VXLAN overhead 50 > fabric MTU {fabric_mtu}"


def test_same_vn_across_hosts_ping_and_iperf3(lab):
    a, b = lab.w("blue1"), lab.w("blue2")
    assert a["host"] != b["host"]
    assert ping(a["netns"], b["ip"], count=3)
    assert ping(b["netns"], a["ip"], count=3)
    srv = subprocess.Popen(["ip", "netns", "exec", b["netns"], "iperf3", "-s", "-1", "-p", "5201"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = nsrun(a["netns"], "iperf3", "-c", b["ip"], "-p", "5201", "-t", "10", "-J", timeout=60, check=False)
        res = json.loads(r.stdout)
        assert "error" not in res, res.get("error")
        bps = res["end"]["sum_received"]["bits_per_second"]
        print(f"iperf3 blue1 -> blue2 (cross-host, overlay): {bps / 1e6:.0f} Mbit/s")
        assert res["end"]["sum_received"]["bytes"] > 0
    finally:
        srv.kill()
        srv.wait()


def capture(lab, host_ns, src, dst_ip, decode=()):
    """Capture the fabric of `host_ns` while `src` pings `dst_ip`; returns tshark's
    protocol column for UDP frames."""
    pcap = lab.work / f"cap-{time.monotonic_ns()}.pcap"
    cap = subprocess.Popen(["ip", "netns", "exec", host_ns, "tshark", "-q", "-i", "eth0", "-a", "duration:4",
                            "-f", "udp", "-w", str(pcap)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    ping(src["netns"], dst_ip, count=3)
    cap.wait(timeout=30)
    args = ["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.protocols"]
    for d in decode:
        args += ["-d", d]
    return run(*args).stdout


def test_fabric_capture_mpls_over_udp_then_vxlan(lab):
    a, b = lab.w("blue1"), lab.w("blue2")
    h1 = lab.host(a["host"])["netns"]
    try:
        protos = capture(lab, h1, a, b["ip"], decode=["udp.port==6635,mpls"])
        assert any("udp:mpls" in p and "icmp" in p for p in protos.splitlines()), protos
        lab.set_encap(["VXLAN", "MPLSoUDP", "MPLSoGRE"])
        seen = {}

        def vxlan():
            seen["p"] = capture(lab, h1, a, b["ip"])
            return any("vxlan" in p and "icmp" in p for p in seen["p"].splitlines())

        took = wait_until(vxlan, 30, step=0.5)
        assert took is not None, f"no VXLAN on the fabric after the encapsulation change:\n{seen.get('p')}"
    finally:
        lab.set_encap(["MPLSoUDP", "MPLSoGRE", "VXLAN"])


def test_different_vns_need_a_policy(lab):
    from vnc_api.vnc_api import (ActionListType, AddressType, NetworkPolicy, PolicyEntriesType,
                                 PolicyRuleType, PortType, SequenceType, VirtualNetworkPolicyType)

    blue, red = lab.w("blue1"), lab.w("red2")
    assert not ping(blue["netns"], red["ip"]), "different VNs talk without a policy"
    vnc = lab.vnc()
    project = vnc.project_read(fq_name=lab.state["project"]["fq_name"])
    vn_b = vnc.virtual_network_read(id=lab.vn("blue")["uuid"])
    vn_r = vnc.virtual_network_read(id=lab.vn("red")["uuid"])
    rule = PolicyRuleType(direction="<>", protocol="any", action_list=ActionListType(simple_action="pass"),
                          src_addresses=[AddressType(virtual_network=vn_b.get_fq_name_str())],
                          dst_addresses=[AddressType(virtual_network=vn_r.get_fq_name_str())],
                          src_ports=[PortType(-1, -1)], dst_ports=[PortType(-1, -1)])
    pol = NetworkPolicy("blue-red", parent_obj=project, network_policy_entries=PolicyEntriesType([rule]))
    vnc.network_policy_create(pol)
    def attach():
        for vn in (vn_b, vn_r):
            vn.add_network_policy(pol, VirtualNetworkPolicyType(sequence=SequenceType(0, 0)))
            vnc.virtual_network_update(vn)

    try:
        # A ping running every 100 ms across the attach (one ICMP id, so one flow that was
        # denied before): whether the agent re-evaluates existing flows. Reported, not asserted.
        stale = first_reply_after(blue["netns"], red["ip"], attach, limit=5)
        print(f"policy attached: a ping already running got its first reply after {stale}s "
              "(None: the denied flow was not re-evaluated)")
        # New pings (new flows) must pass both ways.
        t_fwd = wait_until(lambda: ping(blue["netns"], red["ip"]), 10)
        t_rev = wait_until(lambda: ping(red["netns"], blue["ip"]), 10)
        print(f"policy attached -> new ping blue->red after {t_fwd}s, red->blue after {t_rev}s")
        assert t_fwd is not None and t_rev is not None, "the <> pass policy did not open blue <-> red"
        # Detach: new flows (each ping is a new ICMP id) stop.
        for vn in (vn_b, vn_r):
            vn = vnc.virtual_network_read(id=vn.uuid)
            vn.del_network_policy(pol)
            vnc.virtual_network_update(vn)
        t_off = wait_until(lambda: not ping(blue["netns"], red["ip"]), 10)
        assert t_off is not None, "detaching the policy did not stop new flows"
    finally:
        for u in (vn_b.uuid, vn_r.uuid):
            vn = vnc.virtual_network_read(id=u)
            if vn.get_network_policy_refs():
                vn.set_network_policy_list([], [])
                vnc.virtual_network_update(vn)
        vnc.network_policy_delete(id=pol.uuid)


def test_security_group_allows_only_tcp_22(lab):
    a, b = lab.w("blue1"), lab.w("blue2")
    proj = lab.state["project"]["fq_name"]
    rule = lambda direction, proto, lo, hi, prefix: {  # noqa: E731
        "rule_uuid": None, "direction": ">", "protocol": proto, "ethertype": "IPv4",
        "src_addresses": [{"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}} if direction == "in" else {"security_group": "local"}],
        "dst_addresses": [{"security_group": "local"} if direction == "in" else {"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}],
        "src_ports": [{"start_port": 0, "end_port": 65535}], "dst_ports": [{"start_port": lo, "end_port": hi}]}
    sg = lab.create("security-group", {"fq_name": proj + ["only-ssh"], "parent_type": "project",
                                       "security_group_entries": {"policy_rule": [
                                           rule("in", "tcp", 22, 22, None), rule("out", "any", 0, 65535, None)]}})
    vmi = lab.read("virtual-machine-interface", b["vmi_uuid"])
    before = vmi.get("security_group_refs", [])
    lab.update("virtual-machine-interface", b["vmi_uuid"], {"security_group_refs": [{"uuid": sg, "to": proj + ["only-ssh"]}]})
    # A one-connection TCP echo on port 22 (small segments, so only the SG is being tested).
    srv = subprocess.Popen(["ip", "netns", "exec", b["netns"], "python3", "-c", TCP_ECHO_SERVER, "22"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: not ping(a["netns"], b["ip"]), 10) is not None, "ping passed an SG allowing only TCP 22"
        r = nsrun(a["netns"], "python3", "-c", TCP_ECHO_CLIENT, b["ip"], "22", check=False, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "filament-ssh-probe", (r.stdout, r.stderr)
    finally:
        srv.kill()
        srv.wait()
        lab.update("virtual-machine-interface", b["vmi_uuid"], {"security_group_refs": before})
        requests.delete(f"{lab.api}/security-group/{sg}", timeout=30)
    assert wait_until(lambda: ping(a["netns"], b["ip"]), 10) is not None, "ping did not come back after removing the SG"


def test_overlapping_subnets_in_two_tenants(lab):
    tenants = {}
    for t in ("ta", "tb"):
        t0 = time.monotonic()
        fq = ["default-domain", f"fil-{t}"]
        lab.create("project", {"fq_name": fq, "parent_type": "domain"})
        vn = lab.create("virtual-network", {"fq_name": fq + ["net"], "parent_type": "project",
                                            "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                                                                   "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.0.0.0", "ip_prefix_len": 24}}]}}]})
        ws = [lab.add_workload(fq, vn, fq + ["net"], f"{t}{i}", h["name"]) for i, h in enumerate(lab.state["hosts"], 1)]
        for w in ws:
            lease = lab.dhcp(w["netns"])
            assert lease.get("fixed-address") == w["ip"]
        took = wait_until(lambda: ping(ws[0]["netns"], ws[1]["ip"]), 10)
        print(f"tenant {t}: project+VN+2 ports created, plugged, DHCP, first cross-host ping: "
              f"{time.monotonic() - t0:.2f}s (ping {took}s after DHCP)")
        tenants[t] = ws
    # Same addresses in both tenants (same subnet, same allocation order).
    assert [w["ip"] for w in tenants["ta"]] == [w["ip"] for w in tenants["tb"]]
    for t, (w1, w2) in tenants.items():
        assert ping(w1["netns"], w2["ip"], count=2), f"tenant {t}: no ping across hosts"
    # Nothing crosses: while ta1 pings ta2's address, tb2 (same address) sees no ICMP.
    ta1, tb2 = tenants["ta"][0], tenants["tb"][1]
    cap = subprocess.Popen(["ip", "netns", "exec", tb2["netns"], "tcpdump", "-n", "-i", "eth0", "-c", "1", "icmp"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1)
        assert ping(ta1["netns"], tb2["ip"], count=3)
        time.sleep(1)
    finally:
        cap.terminate()
        out = cap.communicate(timeout=10)[0]
    assert "ICMP" not in out, f"tenant ta's ping reached tenant tb: {out}"


TCP_ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(60)
c, _ = s.accept(); c.sendall(c.recv(100)); c.close()
"""

TCP_ECHO_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
c.sendall(b"filament-ssh-probe"); print(c.recv(100).decode())
"""


def remote_has_route(lab, agent_url, ip):
    routes = requests.get(f"{agent_url}/vrouter/routes", timeout=5).json()
    return f"{ip}/32" in json.dumps(routes)


def test_port_delete_withdraws_route_and_readd_restores(lab):
    a, b = lab.w("blue1"), lab.w("blue2")
    h1, h2 = lab.agent_of(a), lab.agent_of(b)
    assert remote_has_route(lab, h1, b["ip"]), "blue2's route is not on host 1 to begin with"
    r = requests.delete(f"{h2}/port/{b['vmi_uuid']}", timeout=30)
    assert r.status_code == 200, r.text
    t = wait_until(lambda: not remote_has_route(lab, h1, b["ip"]), 10, step=0.05)
    print(f"port delete -> route gone on the remote host: {t}s")
    assert t is not None, "the route stayed on the remote host"
    r = requests.post(f"{h2}/port", json=b["port_body"], timeout=30)
    assert r.status_code == 200, r.text
    assert wait_until(lambda: remote_has_route(lab, h1, b["ip"]), 10) is not None
    lab.dhcp(b["netns"])
    t = wait_until(lambda: ping(a["netns"], b["ip"]), 10)
    print(f"port re-add + DHCP -> ping: {t}s")
    assert t is not None, "no connectivity after re-adding the port"


def test_status_route_show_flow_list_agree(lab):
    a, b = lab.w("blue1"), lab.w("blue2")
    assert ping(a["netns"], b["ip"])
    st = json.loads(lab.cli("status", "--json").stdout)
    roles = {(r["role"], r["name"]): r for r in st["roles"]}
    assert all(r["state"] == "active" for r in st["roles"]), st
    assert ("agent", "fil-h1") in roles and ("agent", "fil-h2") in roles
    ctl = roles[("control", "fil-ctl")]["status"]["status"]
    assert ctl["xmpp"]["established"] == 2
    text = lab.cli("status").stdout
    assert len([l for l in text.splitlines() if l.startswith("agent")]) == 2, text
    routes = lab.cli("route", "show", "--control", lab.control).stdout
    for w in lab.state["workloads"]:
        assert w["ip"] in routes, f"{w['ip']} not in route show"
    flows = lab.cli("flow", "list", "--agent", lab.agent_of(a)).stdout
    assert a["ip"] in flows and b["ip"] in flows, flows
    assert roles[("agent", "fil-h1")]["status"]["flows"] > 0


def test_controller_restart_headless_then_resync(lab):
    a, b = lab.w("blue1"), lab.w("blue2")
    vns_before = lab.get("/virtual-networks")["virtual-networks"]
    ctl = lab.state["controller"]
    pids = run("ip", "netns", "pids", ctl["netns"]).stdout.split()
    for p in pids:
        run("kill", "-TERM", p, check=False)
    assert wait_until(lambda: not run("ip", "netns", "pids", ctl["netns"]).stdout.split(), 15) is not None
    try:
        # Headless: the agents keep forwarding with what they have, and say so.
        assert ping(a["netns"], b["ip"], count=3), "forwarding stopped with the controller down"
        st = json.loads(lab.cli("status", "--json", check=False).stdout)
        by_role = {(r["role"], r["name"]): r for r in st["roles"]}
        assert by_role[("control", "")]["state"] == "unreachable", st
        for h in ("fil-h1", "fil-h2"):
            assert by_role[("agent", h)]["state"].startswith("initializing"), by_role[("agent", h)]
    finally:
        log = open(lab.work / "controller-restart.log", "ab")
        subprocess.Popen(["ip", "netns", "exec", ctl["netns"], lab.bin, *ctl["cmd"]], stdout=log,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert wait_until(lambda: requests.get(lab.api + "/", timeout=2).ok if _reachable(lab.api) else False, 30) is not None

    def agents_active():
        try:
            return all(requests.get(h["agent_url"] + "/status", timeout=2).json()["state"] == "active"
                       and not requests.get(h["agent_url"] + "/status", timeout=2).json().get("headless")
                       for h in lab.state["hosts"])
        except requests.RequestException:
            return False

    assert wait_until(agents_active, 60) is not None, "agents did not resync with the restarted controller"
    assert lab.get("/virtual-networks")["virtual-networks"] == vns_before, "configuration changed across the restart"
    assert ping(a["netns"], b["ip"]), "no forwarding after the resync"
    routes = lab.cli("route", "show", "--control", lab.control).stdout
    assert b["ip"] in routes


def _reachable(url):
    try:
        requests.get(url + "/", timeout=1)
        return True
    except requests.RequestException:
        return False


def test_rerun_after_a_crash_cleans_up_first(lab):
    """SIGKILL the demo (its roles and namespaces stay behind), run it again: it removes the
    leftovers first and builds a working lab."""
    lab.proc.kill()
    lab.proc.wait()
    old = {ns: run("ip", "netns", "pids", ns).stdout.split() for ns in ("fil-ctl", "fil-h1", "fil-h2")}
    assert all(old.values()), f"expected the crashed lab's roles to be left running: {old}"
    started = {p: _start_time(p) for pids in old.values() for p in pids}
    lab.up(clean_first=False)
    text = lab.log.read_text(errors="replace")
    assert "removed leftovers of an earlier lab" in text, text[:2000]
    survivors = [p for p, t in started.items() if t is not None and _start_time(p) == t]
    assert not survivors, f"processes of the crashed lab survived: {survivors}"
    a, b = lab.w("blue1"), lab.w("blue2")
    assert ping(a["netns"], b["ip"], count=2)


def _start_time(pid):
    """A process's start time (clock ticks since boot), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
