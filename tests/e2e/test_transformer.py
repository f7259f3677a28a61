"""The schema transformer through the public interfaces: intent written with
the real vnc_api client becomes routing-instance route targets and
connections, ACLs and route-target objects, readable through the API; it
survives being killed mid-stream (in `filament up` and as its own
`filament schema run` process) and ends equal to a from-scratch compile
(`filament schema check`)."""

import subprocess
import time

import pytest
import requests
from vnc_api.vnc_api import (
    ActionListType,
    AddressType,
    NetworkPolicy,
    PolicyEntriesType,
    PolicyRuleType,
    PortType,
    SecurityGroup,
    SequenceType,
    VirtualNetworkPolicyType,
)

from e2e_helpers import make_project, make_vn, make_vmi

TIMEOUT_S = 15


def wait_for(pred, what, timeout=TIMEOUT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def ri_of(api, vn):
    return api.routing_instance_read(fq_name=vn.fq_name + [vn.name])


def rt_names(ri):
    return [r["to"][0] for r in (ri.get_route_target_refs() or [])]


def connections(ri):
    return sorted(":".join(r["to"]) for r in (ri.get_routing_instance_refs() or []))


def pass_rule(a, b, direction="<>"):
    return PolicyRuleType(
        direction=direction,
        protocol="any",
        action_list=ActionListType(simple_action="pass"),
        src_addresses=[AddressType(virtual_network=":".join(a.fq_name))],
        dst_addresses=[AddressType(virtual_network=":".join(b.fq_name))],
        src_ports=[PortType(-1, -1)],
        dst_ports=[PortType(-1, -1)],
    )


def attach(api, vn, policy):
    vn = api.virtual_network_read(id=vn.uuid)
    vn.add_network_policy(policy, VirtualNetworkPolicyType(sequence=SequenceType(0, 0)))
    api.virtual_network_update(vn)


def check_in_sync(server):
    """Stop the server and compare its store with a from-scratch compile."""
    code = server.stop()
    assert code == 0
    out = subprocess.run(
        [str(server.binary), "schema", "check", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "in sync" in out.stdout


def test_networks_get_unique_system_route_targets(api):
    project = make_project(api)
    vns = [make_vn(api, project, f"10.60.{i}.0/24") for i in range(3)]
    rts = [wait_for(lambda vn=vn: rt_names(ri_of(api, vn)), "route target") for vn in vns]
    numbers = []
    for names in rts:
        assert len(names) == 1, names
        asn, number = names[0].split(":")[1:]
        assert asn == "64512"
        numbers.append(int(number))
    assert len(set(numbers)) == 3 and min(numbers) >= 8000001
    listed = {rt.get_fq_name()[0] for rt in api.route_targets_list(detail=True)}
    assert {n[0] for n in rts} <= listed
    # Isolated: no policy, no connection, no ACL.
    assert all(connections(ri_of(api, vn)) == [] for vn in vns)


def test_policy_connects_networks_and_compiles_acls(api):
    project = make_project(api)
    vn1 = make_vn(api, project, "10.61.1.0/24")
    vn2 = make_vn(api, project, "10.61.2.0/24")
    policy = NetworkPolicy("pol", network_policy_entries=PolicyEntriesType([pass_rule(vn1, vn2)]), parent_obj=project)
    api.network_policy_create(policy)
    attach(api, vn1, policy)
    attach(api, vn2, policy)
    ri1 = wait_for(lambda: (ri := ri_of(api, vn1)) and connections(ri) and ri, "vn1 connection")
    assert connections(ri1) == [":".join(vn2.fq_name + [vn2.name])]
    ri2 = wait_for(lambda: (ri := ri_of(api, vn2)) and connections(ri) and ri, "vn2 connection")
    assert connections(ri2) == [":".join(vn1.fq_name + [vn1.name])]
    acl = wait_for(lambda: api.access_control_lists_list(parent_id=vn1.uuid, detail=True), "vn1 ACL")[0]
    assert acl.get_fq_name() == vn1.fq_name + [vn1.name]
    assert acl.get_id_perms().get_creator() == "system"
    rules = acl.get_access_control_list_entries().get_acl_rule()
    actions = [r.get_action_list().get_simple_action() for r in rules]
    assert actions == ["pass", "pass", "pass", "deny"], actions
    first = rules[0].get_match_condition()
    assert first.get_src_address().get_virtual_network() == ":".join(vn1.fq_name)
    assert first.get_dst_address().get_virtual_network() == ":".join(vn2.fq_name)

    # Detaching the policy from vn1 removes vn1's connection and ACL.
    vn1 = api.virtual_network_read(id=vn1.uuid)
    vn1.del_network_policy(policy)
    api.virtual_network_update(vn1)
    wait_for(lambda: connections(ri_of(api, vn1)) == [], "vn1 connection removed")
    wait_for(lambda: not api.access_control_lists_list(parent_id=vn1.uuid)["access-control-lists"], "vn1 ACL removed")


def test_derived_objects_never_block_deletes(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.62.1.0/24")
    rt = wait_for(lambda: rt_names(ri_of(api, vn)), "route target")[0]
    api.virtual_network_delete(id=vn.uuid)
    wait_for(
        lambda: rt not in {r.get_fq_name()[0] for r in api.route_targets_list(detail=True)},
        "route target released",
    )


def test_security_group_acls_resolve_remote_groups(api):
    project = make_project(api)
    db = SecurityGroup("db", parent_obj=project)
    api.security_group_create(db)
    db = api.security_group_read(id=db.uuid)
    rule = PolicyRuleType(
        direction=">", protocol="tcp", ethertype="IPv4",
        src_addresses=[AddressType(security_group=":".join(db.fq_name))],
        dst_addresses=[AddressType(security_group="local")],
        src_ports=[PortType(0, 65535)], dst_ports=[PortType(5432, 5432)],
        action_list=ActionListType(simple_action="pass"),
    )
    from vnc_api.vnc_api import PolicyEntriesType as Entries
    web = SecurityGroup("web", parent_obj=project, security_group_entries=Entries([rule]))
    api.security_group_create(web)
    web = api.security_group_read(id=web.uuid)
    assert web.get_security_group_id() >= 8000001

    def ingress():
        acls = api.access_control_lists_list(parent_id=web.uuid, detail=True)
        return [a for a in acls if a.name == "ingress-access-control-list"]

    acl = wait_for(ingress, "web ingress ACL")[0]
    m = acl.get_access_control_list_entries().get_acl_rule()[0].get_match_condition()
    assert m.get_src_address().get_security_group() == str(db.get_security_group_id())
    assert m.get_dst_port().get_start_port() == 5432


def test_killed_mid_stream_then_restarted_equals_from_scratch(fresh_server):
    api = fresh_server.api()
    project = make_project(api)
    vns = [make_vn(api, project, f"10.63.{i}.0/24") for i in range(8)]
    policy = NetworkPolicy("mesh", network_policy_entries=PolicyEntriesType(
        [pass_rule(vns[i], vns[i + 1]) for i in range(7)]), parent_obj=project)
    api.network_policy_create(policy)
    for vn in vns:
        attach(api, vn, policy)
    fresh_server.kill()  # SIGKILL while the transformer is still working
    fresh_server.start()
    api = fresh_server.api()
    for vn in vns[1:-1]:
        wait_for(lambda vn=vn: len(connections(ri_of(api, vn))) == 2, f"{vn.name} connections")
    check_in_sync(fresh_server)
    fresh_server.start()  # for the fixture's clean shutdown


def test_standalone_transformer_follows_and_recovers(api_only_server, tmp_path):
    server = api_only_server
    log = open(tmp_path / "schema.log", "wb")

    def start_schema():
        return subprocess.Popen(
            [str(server.binary), "schema", "run", "--api", server.base_url],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )

    proc = start_schema()
    try:
        api = server.api()
        project = make_project(api)
        vn1 = make_vn(api, project, "10.64.1.0/24")
        wait_for(lambda: rt_names(ri_of(api, vn1)), "route target from filament schema")
        vns = [make_vn(api, project, f"10.64.{i}.0/24") for i in range(2, 8)]
        proc.kill()  # mid-stream
        proc.wait()
        proc = start_schema()
        for vn in vns:
            wait_for(lambda vn=vn: rt_names(ri_of(api, vn)), f"{vn.name} route target")
        make_vmi(api, project, vns[0])
        time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
        log.close()
    check_in_sync(server)
    server.start()


def test_api_alone_derives_nothing(api_only_server):
    api = api_only_server.api()
    project = make_project(api)
    vn = make_vn(api, project, "10.65.1.0/24")
    time.sleep(0.5)
    assert rt_names(ri_of(api, vn)) == []


def test_derived_post_rejects_bad_input(server):
    r = requests.post(server.url("/derived"), json={"writes": [{"op": "explode"}]}, timeout=10)
    assert r.status_code == 400
