"""The operator's commands (issues 4 and 5) as a Tungsten Fabric user drives them:
``filament route show|summary``, ``filament neighbors``, ``filament status``,
``filament vrouter dump|dropstats`` and ``filament control``'s flags.

* Bad input on every command and flag (nothing listening, another role's port, an unknown
  table, a malformed prefix, an unknown subcommand or table, a BGP port already taken):
  a one-line error on stderr and a non-zero exit, never a panic, anyhow's multi-line report
  or a backtrace, even with RUST_BACKTRACE=1.
* As root, with a real FRR bgpd peered with ``filament up`` (its bgp-router and the ref
  created over REST, as README says): FRR's VPNv4 route and an XMPP agent's route show up
  in ``route show`` / ``route summary``, FRR in ``neighbors`` in TF's columns, and a prefix
  matches whole destinations only. The standalone forwarder's label and neighbour tables
  print as tables.

test_control.py covers the XMPP side of these commands and test_dataplane.py the
interfaces/routes/dropstats dumps; this file does not repeat them.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import filament_bin, free_port
from test_control import running_control, wait_for

FAIL_MARKERS = ("Caused by", "Stack backtrace", "panicked", "RUST_BACKTRACE", "Error {", "{ kind:")


def run_cli(*args, ns=None, timeout=30):
    """The binary with RUST_BACKTRACE=1, as a developer's shell has it."""
    env = dict(os.environ, RUST_BACKTRACE="1", RUST_LOG="warn")
    argv = [str(filament_bin()), *args]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(out, *needles, code=1):
    err = out.stderr.strip()
    assert out.returncode == code, (out.returncode, out.stdout, err)
    for m in FAIL_MARKERS:
        assert m not in err, err
    if code == 1:
        assert len(err.splitlines()) == 1 and err.startswith("filament: error: "), err
    else:  # clap's usage error: the first line says what is wrong
        assert err.splitlines()[0].startswith("error: "), err
    for n in needles:
        assert n in err, (n, err)
    return err


# ===== nothing running, bad arguments: no server needed =====


@pytest.mark.parametrize("args,needle", [
    (["route", "show"], "control node"),
    (["route", "show", "-t", "bgp.l3vpn.0", "10.1.1.0/24"], "control node"),
    (["route", "summary"], "control node"),
    (["neighbors"], "control node"),
    (["vrouter", "dump", "routes"], "vRouter agent"),
    (["vrouter", "dropstats"], "vRouter agent"),
])
def test_nothing_listening_is_one_line_naming_what_to_start(args, needle):
    port = free_port()
    flag = "--agent" if args[0] == "vrouter" else "--control"
    for url in (f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"):  # host:port works too
        out = run_cli(*args, flag, url)
        err = assert_one_line_error(out, "cannot reach", needle, f"127.0.0.1:{port}", "Connection refused")
        assert "running" in err and "?" in err, err


def test_status_with_nothing_answering_fails():
    p = [str(free_port()) for _ in range(3)]
    out = run_cli("status", "--api", f"127.0.0.1:{p[0]}", "--control", f"127.0.0.1:{p[1]}",
                  "--agent", f"127.0.0.1:{p[2]}")
    assert_one_line_error(out, "no role answered")
    assert "unreachable" in out.stdout


@pytest.mark.parametrize("args,needle", [
    (["route", "show", "--table", "nosuch"], "not a table name"),
    (["route", "show", "--table", "bgp.inet.0"], "not a table name"),
    (["route", "show", "10.1.1.0/40"], "prefix length"),
    (["route", "show", "10.300.0.0/24"], "malformed prefix"),
    (["route", "show", "2001:db8::/129"], "prefix length"),
    (["route", "show", "garbage"], "malformed prefix"),
    (["route", "show", "--table"], "--table"),
    (["route", "bogus"], "bogus"),
    (["vrouter", "dump", "bogus"], "possible values: interfaces, nexthops, routes, flows, labels, neighbors"),
    (["vrouter", "dump"], "<TABLE>"),
    (["control", "--bgp-listen", "nonsense"], "--bgp-listen"),
    (["control", "--xmpp-hold", "0"], "--xmpp-hold"),
    (["neighbors", "--bogus-flag"], "--bogus-flag"),
])
def test_usage_errors_exit_2_before_any_request(args, needle):
    assert_one_line_error(run_cli(*args), needle, code=2)


# ===== a running `filament up` (no root) =====


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    yield from running_control(tmp_path_factory, "filament-operator")


def test_another_roles_port_is_named_as_such(ctl):
    api = ctl.base_url
    for args in (["route", "show"], ["route", "summary"], ["neighbors"]):
        err = assert_one_line_error(run_cli(*args, "--control", api), "is not the control node introspect")
        assert "404" in err and "8083" in err, err
    assert_one_line_error(run_cli("vrouter", "dump", "routes", "--agent", ctl.control_url), "is not a vRouter agent")
    # The XMPP port does not speak HTTP.
    assert_one_line_error(run_cli("neighbors", "--control", f"127.0.0.1:{ctl.xmpp_port}"), "--control")
    # status does not pass the API off as the control node or the control node as an agent.
    out = run_cli("status", "--api", api, "--control", api, "--agent", ctl.control_url)
    assert out.returncode == 0, out.stderr
    rows = {r["role"]: r for r in json.loads(run_cli("status", "--json", "--api", api, "--control", api,
                                                         "--agent", ctl.control_url).stdout)["roles"]}
    assert rows["api"]["state"] == "active", rows
    assert rows["control"]["state"].startswith("unreachable (this URL is the api's"), rows
    assert rows["agent"]["state"].startswith("unreachable (this URL is the control's"), rows


def test_unknown_table_and_missing_route_are_errors(ctl):
    from test_control import Agent
    # A table that does not exist is an error naming the tables that hold routes.
    assert_one_line_error(run_cli("route", "show", "-t", "default-domain:nope:vn:vn.inet.0",
                                  "--control", ctl.control_url), "no table", "route summary")
    # A VN and an agent subscribed to it: its target's membership route is in bgp.rtarget.0.
    r = requests.post(ctl.url("/virtual-networks"), json={"virtual-network": {
        "fq_name": ["default-domain", "default-project", "vn-op"], "parent_type": "project"}}, timeout=5)
    assert r.status_code == 200, r.text
    # As in TF, the VN's routing instance has its (empty) tables once configured: `route
    # summary` lists them with 0 prefixes (seed 004), `route show -t` shows them empty
    # ("no table" before its first route), a listing of all tables leaves them out.
    vrf_table = "default-domain:default-project:vn-op:vn-op.inet.0"
    wait_for(lambda: vrf_table in run_cli("route", "summary", "--control", ctl.control_url).stdout,
             what="the VN's empty table in route summary")
    summary = run_cli("route", "summary", "--control", ctl.control_url).stdout
    assert re.search(rf"^{re.escape(vrf_table)}\s+0\s+0\s+0\s+0\s+0$", summary, re.M), summary
    assert re.search(r"^bgp\.l3vpn\.0\s+0\s", summary, re.M), summary
    assert ":__default__." not in summary, summary  # the master instance's tables are the bgp.* ones
    empty = run_cli("route", "show", "-t", vrf_table, "--control", ctl.control_url)
    assert empty.returncode == 0 and f"{vrf_table}: 0 destinations, 0 routes" in empty.stdout, empty
    assert vrf_table not in run_cli("route", "show", "--control", ctl.control_url).stdout
    agent = Agent(ctl.xmpp_port, "vr-op1")
    try:
        deadline = time.monotonic() + 20
        agent.subscribe("default-domain:default-project:vn-op:vn-op", 1)
        while "bgp.rtarget.0" not in run_cli("route", "summary", "--control", ctl.control_url).stdout:
            assert time.monotonic() < deadline, "no bgp.rtarget.0 route"
            agent.pump()
            time.sleep(0.3)
        err = assert_one_line_error(run_cli("route", "show", "-t", "default-domain:nope:vn:vn.inet.0",
                                            "--control", ctl.control_url), "no table")
        assert "bgp.rtarget.0" in err, err  # the tables it does hold are listed
        assert_one_line_error(run_cli("route", "show", "10.99.99.0/24", "--control", ctl.control_url),
                              "no route for 10.99.99.0/24")
        # A bare address means its host route.
        assert_one_line_error(run_cli("route", "show", "10.99.99.1", "--control", ctl.control_url),
                              "no route for 10.99.99.1/32")
        out = run_cli("route", "show", "-t", "bgp.rtarget.0", "--control", ctl.control_url)
        assert out.returncode == 0 and "bgp.rtarget.0:" in out.stdout, out
        assert "nh: ," not in out.stdout, out.stdout  # an empty next hop prints as "-"
        js = json.loads(run_cli("route", "summary", "--json", "--control", ctl.control_url).stdout)
        assert any(t["name"] == "bgp.rtarget.0" for t in js["tables"]), js
    finally:
        agent.close()


def test_control_fails_when_its_bgp_port_is_taken(ctl):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    try:
        port = held.getsockname()[1]
        out = run_cli("control", "--api", ctl.base_url, "--name", "cn-taken",
                      "--xmpp-listen", f"127.0.0.1:{free_port()}", "--introspect", f"127.0.0.1:{free_port()}",
                      "--bgp-listen", f"127.0.0.1:{port}", timeout=20)
        assert_one_line_error(out, "BGP: cannot listen on", f"127.0.0.1:{port}", "in use")
        # it stopped before registering itself
        r = requests.post(ctl.url("/fqname-to-id"), json={"type": "bgp-router", "fq_name": [
            "default-domain", "default-project", "ip-fabric", "__default__", "cn-taken"]}, timeout=5)
        assert r.status_code == 404, r.text
    finally:
        held.close()


# ===== with FRR (root) =====

try:
    from bgp_helpers import (
        FRR, OURS, Frr, Netns, Proc, frr_config, frr_vpn_conf, in_netns, missing_tools, ns_http, wait_until,
    )
except ImportError:  # pragma: no cover
    missing_tools = lambda: ["bgp_helpers"]  # noqa: E731

needs_frr = pytest.mark.skipif(
    os.geteuid() != 0 or bool(missing_tools()),
    reason="needs root (network namespaces)" if os.geteuid() != 0 else f"missing tools: {missing_tools()}")
VN = ["default-domain", "default-project", "vnop"]
TABLE = ":".join(VN + ["vnop"]) + ".inet.0"


@pytest.fixture(scope="module")
def frr_lab():
    """`filament up --bgp-address` in a netns, a VN, FRR (eBGP 65001) peered through its
    bgp-router object and a ref, as README's "Running the roles yourself" says."""
    work = Path(tempfile.mkdtemp(prefix="fopcli-"))
    os.chmod(work, 0o755)
    ns = Netns()
    procs = []
    try:
        api = "http://127.0.0.1:8082"
        procs.append(Proc(ns.cmd(str(filament_bin()), "up", "--data-dir", str(work / "data"), "--name", "cn-op",
                                 "--bgp-address", OURS, "--bgp-listen", OURS), work / "up.log"))
        me = ["default-domain", "default-project", "ip-fabric", "__default__", "cn-op"]
        wait_until(lambda: (ns_http(ns, "POST", f"{api}/fqname-to-id", {"type": "bgp-router", "fq_name": me})
                            or {}).get("uuid"), what="the control node's bgp-router")
        vn = ns_http(ns, "POST", f"{api}/virtual-networks", {"virtual-network": {"fq_name": VN, "parent_type": "project"}})
        assert vn and "virtual-network" in vn, vn

        def target():
            ri = ns_http(ns, "POST", f"{api}/fqname-to-id", {"type": "routing-instance", "fq_name": VN + ["vnop"]}) or {}
            obj = ns_http(ns, "GET", f"{api}/routing-instance/{ri['uuid']}") if ri.get("uuid") else {}
            refs = (obj or {}).get("routing-instance", {}).get("route_target_refs", [])
            return refs[0]["to"][0] if refs else None
        rt = wait_until(target, what="the VN's route target")
        r = ns_http(ns, "POST", f"{api}/bgp-routers", {"bgp-router": {
            "fq_name": ["default-domain", "default-project", "ip-fabric", "__default__", "frr"],
            "parent_type": "routing-instance",
            "bgp_router_parameters": {"address": FRR, "identifier": FRR, "autonomous_system": 65001, "port": 179,
                                      "router_type": "router", "address_families": {"family": ["inet-vpn", "e-vpn"]}},
            "bgp_router_refs": [{"to": me, "attr": {}}]}})
        assert r and "bgp-router" in r, r
        conf = frr_vpn_conf(65001, evpn=False).replace("{work}", str(work)).replace(
            "64512:8000001", rt.removeprefix("target:"))
        frr = Frr(ns, work, frr_config(work, conf))
        procs.append(frr)
        wait_until(lambda: "Established" in json.dumps(frr.show("show bgp summary json")), timeout=60,
                   what="FRR session with the control node")
        yield ns, frr, work
    finally:
        for p in reversed(procs):
            p.stop()
        ns.delete()
        for p in procs:
            if Path(p.log_path).exists():
                print(f"--- {p.log_path.name} ---\n{Path(p.log_path).read_text(errors='replace')[-3000:]}")
        shutil.rmtree(work, ignore_errors=True)


def cli_ok(ns, *args):
    out = run_cli(*args, ns=ns.name)
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_frr
def test_frr_peer_in_route_show_summary_and_neighbors(frr_lab):
    ns, frr, _work = frr_lab
    # FRR's VPNv4 route, imported into the VN by its target.
    wait_until(lambda: "10.200.1.0/24" in run_cli("route", "show", "-t", TABLE, ns=ns.name).stdout,
               what="FRR's route in the VN's table")
    out = cli_ok(ns, "route", "show", "-t", TABLE)
    assert f"{TABLE}: 1 destinations" in out, out
    assert re.search(rf"\[BGP\|{re.escape(FRR)}\] .*nh: {re.escape(FRR)}, .*label: 1007, rd: 65001:7", out), out
    # The address matches whole destinations in every table, VPN keys included.
    both = cli_ok(ns, "route", "show", "10.200.1.0/24")
    assert "bgp.l3vpn.0:" in both and f"{TABLE}:" in both and "65001:7:10.200.1.0/24" in both, both
    # ... and not as a suffix (the introspect matches "0.200.1.0/24" inside "10.200.1.0/24").
    assert_one_line_error(run_cli("route", "show", "0.200.1.0/24", ns=ns.name), "no route for 0.200.1.0/24")
    # An address finds the routes covering it, as `ist.py ctr route show 10.200.1.77` (its
    # /32 with TF's shorter_match); -l (longer_match) the routes inside a prefix.
    cover = cli_ok(ns, "route", "show", "10.200.1.77")
    assert "65001:7:10.200.1.0/24" in cover and f"{TABLE}:" in cover, cover
    inside = cli_ok(ns, "route", "show", "-t", TABLE, "-l", "10.200.0.0/16")
    assert f"{TABLE}: 1 destinations" in inside and "10.200.1.0/24" in inside, inside
    assert_one_line_error(run_cli("route", "show", "10.200.0.0/16", ns=ns.name), "no route for 10.200.0.0/16")
    summary = cli_ok(ns, "route", "summary")
    assert re.search(rf"^{re.escape(TABLE)}\s+1\s+1\s+0\s+1\s+0$", summary, re.M), summary
    lines = summary.splitlines()
    assert len({len(l) for l in lines}) == 1, summary  # columns line up

    # An XMPP agent's route goes out to FRR; both peers in `neighbors`, TF's columns.
    from test_control import Agent
    with in_netns(ns.name):
        agent = Agent(5269, "vr-op")
    try:
        agent.subscribe(":".join(VN + ["vnop"]), 3)
        agent.publish(":".join(VN + ["vnop"]), ":".join(VN), "10.50.0.5", "10.77.0.9", 29)
        agent.wait(b'<item id="10.200.1.0/24">', timeout=30, keepalive=True)
        wait_until(lambda: "10.50.0.5/32" in json.dumps(frr.show("show bgp ipv4 vpn json")),
                   what="the agent's route in FRR")
        vpn = cli_ok(ns, "route", "show", "-t", "bgp.l3vpn.0", "10.50.0.5")
        assert "10.77.0.9:3:10.50.0.5/32" in vpn and "[XMPP|vr-op]" in vpn and "label: 29" in vpn, vpn
        # prefixes received/sent: the sent count follows the adverts (the speaker's counters
        # are read every few hundred ms).
        row = rf"^frr\s+{re.escape(FRR)}\s+65001\s+BGP\s+\S+\s+Established\s.*\s[1-9]\d*/[1-9]\d*\s"
        nei = wait_until(lambda: (lambda t: re.search(row, t, re.M) and t)(cli_ok(ns, "neighbors")),
                         timeout=15, what="FRR in neighbors with a route each way")
        # an agent's peer_asn is 0, as ist.py ctr nei shows it (seed 004)
        assert re.search(r"^vr-op\s+\S+\s+0\s+XMPP\s+internal\s+Established\s", nei, re.M), nei
        st = json.loads(cli_ok(ns, "status", "--json", "--api", "127.0.0.1:8082", "--control", "127.0.0.1:8083",
                               "--agent", f"127.0.0.1:{free_port()}"))
        ctl = [r for r in st["roles"] if r["role"] == "control"][0]
        assert "bgp 1/1 established [frr=Established]" in ctl["detail"], ctl
    finally:
        agent.close()


@needs_frr
def test_frr_withdrawal_removes_its_route(frr_lab):
    """FRR stops announcing a VPNv4 route: `route show` no longer has it, the session stays up.
    FRR withdraws with the RFC 8277 §2.4 compatibility field 0x000000 (S bit clear), which the
    decoder used to read as the first of a label stack, misreading RD and prefix."""
    ns, frr, work = frr_lab

    def vty(*cmds):
        ns.run("vtysh", "--vty_socket", str(work), "-c", "conf t", "-c", "router bgp 65001",
               "-c", "address-family ipv4 vpn", *[x for c in cmds for x in ("-c", c)])

    def frr_row():
        return [r for r in json.loads(cli_ok(ns, "neighbors", "--json"))["neighbors"] if r.get("name") == "frr"][0]

    def shown():
        return run_cli("route", "show", "-t", "bgp.l3vpn.0", "10.200.9.0/24", ns=ns.name).returncode == 0

    vty("network 10.200.9.0/24 rd 65001:9 label 1009")
    wait_until(shown, what="FRR's second route in bgp.l3vpn.0")
    flaps = frr_row()["flaps"]
    vty("no network 10.200.9.0/24 rd 65001:9 label 1009")
    wait_until(lambda: not shown(), timeout=15, what="FRR's withdrawal in bgp.l3vpn.0")
    bgp = frr_row()
    assert bgp["flaps"] == flaps and bgp["state"] == "Established", json.dumps(bgp)
