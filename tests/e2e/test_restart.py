"""Durability: everything written before a clean restart reads back identical,
and allocators continue without handing out anything twice."""

import pytest
from vnc_api.vnc_api import (
    KeyValuePair,
    NetworkPolicy,
    NoIdError,
    SequenceType,
    VirtualNetworkPolicyType,
)

from e2e_helpers import (
    DEFAULT_DOMAIN,
    DEFAULT_IPAM,
    DEFAULT_PROJECT,
    count_of,
    ipam_subnet,
    make_iip,
    make_project,
    make_vmi,
    make_vn,
    mac_for_uuid,
    read_raw,
    unique,
)


def _snapshot(server, objects):
    """Full server view (props, refs, back-refs, children) of every object."""
    return {(t, u): read_raw(server, t, u) for t, u in objects}


def test_restart_preserves_everything(fresh_server):
    server = fresh_server
    api = server.api()

    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    vn_pinned = make_vn(api, project, "10.2.2.0/24", gateway="10.2.2.1")
    vmi1 = make_vmi(api, project, vn)
    vmi2 = make_vmi(api, project, vn_pinned)
    iips = [make_iip(api, vn, vmi1), make_iip(api, vn, vmi1), make_iip(api, vn_pinned, vmi2)]
    assert [i.get_instance_ip_address() for i in iips] == ["10.1.1.252", "10.1.1.251", "10.2.2.254"]
    policy = NetworkPolicy(unique("pol"), parent_obj=project)
    api.network_policy_create(policy)
    vn.add_network_policy(policy, VirtualNetworkPolicyType(sequence=SequenceType(0, 0)))
    vn.add_annotations(KeyValuePair(key="team", value="blue"))
    api.virtual_network_update(vn)
    kv_key = unique("kv")
    api.kv_store(kv_key, "persisted")
    # Deleted before the restart: must stay deleted.
    gone = make_vn(api, project, None)
    api.virtual_network_delete(id=gone.uuid)

    objects = [
        ("domain", api.fq_name_to_id("domain", DEFAULT_DOMAIN)),
        ("project", api.fq_name_to_id("project", DEFAULT_PROJECT)),
        ("network-ipam", api.fq_name_to_id("network-ipam", DEFAULT_IPAM)),
        ("project", project.uuid),
        ("virtual-network", vn.uuid),
        ("virtual-network", vn_pinned.uuid),
        ("routing-instance", api.fq_name_to_id("routing-instance", vn.get_fq_name() + [vn.name])),
        ("virtual-machine-interface", vmi1.uuid),
        ("virtual-machine-interface", vmi2.uuid),
        ("network-policy", policy.uuid),
    ] + [("instance-ip", i.uuid) for i in iips]
    before = _snapshot(server, objects)
    counts_before = {t: count_of(server, t) for t in ("virtual-network", "instance-ip", "project")}

    server.restart()
    api = server.api()

    after = _snapshot(server, objects)
    for key in objects:
        assert after[key] == before[key], f"{key} changed across restart"
    assert {t: count_of(server, t) for t in counts_before} == counts_before

    # Spot checks of allocated values, through the client.
    macs = api.virtual_machine_interface_read(id=vmi1.uuid).get_virtual_machine_interface_mac_addresses()
    assert macs.get_mac_address() == [mac_for_uuid(vmi1.uuid)]
    assert ipam_subnet(api.virtual_network_read(id=vn.uuid))["default_gateway"] == "10.1.1.254"
    assert api.kv_retrieve(kv_key) == "persisted"
    with pytest.raises(NoIdError):
        api.virtual_network_read(id=gone.uuid)

    # Allocators continue where they were.
    new_iip = make_iip(api, vn, vmi1)
    assert new_iip.get_instance_ip_address() == "10.1.1.250"
    assert new_iip.get_instance_ip_address() not in [i.get_instance_ip_address() for i in iips]
    new_pinned = make_iip(api, vn_pinned, vmi2)
    # .253 is the pinned VN's DNS/service address, so after .254 comes .252.
    assert new_pinned.get_instance_ip_address() == "10.2.2.252"
    old_ids = {
        api.virtual_network_read(id=u).get_virtual_network_network_id()
        for u in (vn.uuid, vn_pinned.uuid)
    }
    new_vn = make_vn(api, project, None)
    assert new_vn.get_virtual_network_network_id() not in old_ids
    assert new_vn.uuid not in {u for _, u in objects}


def test_restart_twice_and_keep_serving(fresh_server):
    server = fresh_server
    api = server.api()
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    addresses = [make_iip(api, vn).get_instance_ip_address()]
    for _ in range(2):
        server.restart()
        api = server.api()
        addresses.append(make_iip(api, vn).get_instance_ip_address())
    assert addresses == ["10.1.1.252", "10.1.1.251", "10.1.1.250"]
    assert api.project_read(fq_name=project.get_fq_name()).uuid == project.uuid
