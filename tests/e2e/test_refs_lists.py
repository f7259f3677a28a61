"""References, back-references, lists and delete protection (tf-facts 1.4, 1.5)."""

import pytest
from vnc_api.vnc_api import (
    NoIdError,
    Project,
    RefsExistError,
    VirtualMachineInterface,
    VirtualNetwork,
)

from e2e_helpers import (
    DEFAULT_DOMAIN,
    count_of,
    http_get,
    make_iip,
    make_project,
    make_vmi,
    make_vn,
    ref_uuids,
    unique,
)


# -- reads -------------------------------------------------------------------
def test_read_by_fq_name_and_fq_name_str(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    assert api.virtual_network_read(fq_name=vn.get_fq_name()).uuid == vn.uuid
    assert api.virtual_network_read(fq_name_str=":".join(vn.get_fq_name())).uuid == vn.uuid
    assert api.fq_name_to_id("virtual-network", vn.get_fq_name()) == vn.uuid


def test_read_with_wrong_type_is_not_found(api):
    project = make_project(api)
    with pytest.raises(NoIdError):
        api.virtual_network_read(id=project.uuid)


# -- refs --------------------------------------------------------------------
def test_ref_update_add_and_delete(api):
    project = make_project(api)
    vn1 = make_vn(api, project, None)
    vn2 = make_vn(api, project, None)
    vmi = make_vmi(api, project, vn1)

    assert api.ref_update(
        "virtual-machine-interface", vmi.uuid, "virtual-network", vn2.uuid, None, "ADD"
    ) == vmi.uuid
    refs = api.virtual_machine_interface_read(id=vmi.uuid).get_virtual_network_refs()
    assert ref_uuids(refs) == sorted([vn1.uuid, vn2.uuid])
    assert {tuple(r["to"]) for r in refs} == {tuple(vn1.get_fq_name()), tuple(vn2.get_fq_name())}

    api.ref_update(
        "virtual-machine-interface", vmi.uuid, "virtual-network", vn2.uuid, None, "DELETE"
    )
    refs = api.virtual_machine_interface_read(id=vmi.uuid).get_virtual_network_refs()
    assert ref_uuids(refs) == [vn1.uuid]


def test_ref_update_by_fq_name_only(api):
    project = make_project(api)
    vn1 = make_vn(api, project, None)
    vn2 = make_vn(api, project, None)
    vmi = make_vmi(api, project, vn1)
    api.ref_update(
        "virtual-machine-interface", vmi.uuid, "virtual-network", None, vn2.get_fq_name(), "ADD"
    )
    refs = api.virtual_machine_interface_read(id=vmi.uuid).get_virtual_network_refs()
    assert ref_uuids(refs) == sorted([vn1.uuid, vn2.uuid])


def test_ref_add_and_delete_through_object_update(api):
    project = make_project(api)
    vn1 = make_vn(api, project, None)
    vn2 = make_vn(api, project, None)
    vmi = make_vmi(api, project, vn1)

    vmi.add_virtual_network(vn2)
    api.virtual_machine_interface_update(vmi)
    read = api.virtual_machine_interface_read(id=vmi.uuid)
    assert ref_uuids(read.get_virtual_network_refs()) == sorted([vn1.uuid, vn2.uuid])

    read.del_virtual_network(vn1)
    api.virtual_machine_interface_update(read)
    again = api.virtual_machine_interface_read(id=vmi.uuid)
    assert ref_uuids(again.get_virtual_network_refs()) == [vn2.uuid]


def test_set_ref_list_replaces_refs_in_put(api):
    project = make_project(api)
    vn1 = make_vn(api, project, None)
    vn2 = make_vn(api, project, None)
    vmi = make_vmi(api, project, vn1)
    read = api.virtual_machine_interface_read(id=vmi.uuid)
    read.set_virtual_network(vn2)  # whole list in the PUT body
    api.virtual_machine_interface_update(read)
    again = api.virtual_machine_interface_read(id=vmi.uuid)
    assert ref_uuids(again.get_virtual_network_refs()) == [vn2.uuid]


def test_back_refs_visible_on_referenced_network(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    vmi1 = make_vmi(api, project, vn)
    vmi2 = make_vmi(api, project, vn)
    iip = make_iip(api, vn, vmi1)

    with_fields = api.virtual_network_read(
        id=vn.uuid, fields=["virtual_machine_interface_back_refs"]
    )
    assert ref_uuids(with_fields.get_virtual_machine_interface_back_refs()) == sorted(
        [vmi1.uuid, vmi2.uuid]
    )
    for ref in with_fields.get_virtual_machine_interface_back_refs():
        assert ref["to"] in (vmi1.get_fq_name(), vmi2.get_fq_name())

    full = api.virtual_network_read(id=vn.uuid)
    assert ref_uuids(full.get_virtual_machine_interface_back_refs()) == sorted(
        [vmi1.uuid, vmi2.uuid]
    )
    assert ref_uuids(full.get_instance_ip_back_refs()) == [iip.uuid]

    api.virtual_machine_interface_delete(id=vmi2.uuid)
    after = api.virtual_network_read(id=vn.uuid, fields=["virtual_machine_interface_back_refs"])
    assert ref_uuids(after.get_virtual_machine_interface_back_refs()) == [vmi1.uuid]


# -- lists -------------------------------------------------------------------
@pytest.fixture
def three_vns(api):
    project = make_project(api)
    vns = []
    for label in ("red", "green", "blue"):
        vn = VirtualNetwork(unique(f"vn-{label}"), parent_obj=project, display_name=f"{label}-net")
        api.virtual_network_create(vn)
        vns.append(vn)
    return project, vns


def test_list_by_parent_id(api, three_vns):
    project, vns = three_vns
    result = api.virtual_networks_list(parent_id=project.uuid)
    entries = result["virtual-networks"]
    assert sorted(e["uuid"] for e in entries) == sorted(v.uuid for v in vns)
    for entry in entries:
        assert {"uuid", "fq_name", "href"} <= set(entry), entry
        assert entry["fq_name"][:-1] == project.get_fq_name()


def test_list_by_parent_fq_name(api, three_vns):
    project, vns = three_vns
    result = api.virtual_networks_list(parent_fq_name=project.get_fq_name())
    assert sorted(e["uuid"] for e in result["virtual-networks"]) == sorted(v.uuid for v in vns)


def test_list_with_filters(api, three_vns):
    project, vns = three_vns
    one = api.virtual_networks_list(parent_id=project.uuid, filters={"display_name": "green-net"})
    assert [e["uuid"] for e in one["virtual-networks"]] == [vns[1].uuid]
    two = api.virtual_networks_list(
        parent_id=project.uuid, filters={"display_name": ["red-net", "blue-net"]}
    )
    assert sorted(e["uuid"] for e in two["virtual-networks"]) == sorted([vns[0].uuid, vns[2].uuid])
    none = api.virtual_networks_list(parent_id=project.uuid, filters={"display_name": "nope"})
    assert none["virtual-networks"] == []


def test_list_detail(api, three_vns):
    project, vns = three_vns
    objs = api.virtual_networks_list(parent_id=project.uuid, detail=True)
    assert all(isinstance(o, VirtualNetwork) for o in objs)
    by_uuid = {o.uuid: o for o in objs}
    assert sorted(by_uuid) == sorted(v.uuid for v in vns)
    for vn in vns:
        got = by_uuid[vn.uuid]
        assert got.get_fq_name() == vn.get_fq_name()
        assert got.display_name == vn.display_name
        assert isinstance(got.get_virtual_network_network_id(), int)


def test_list_count(api, three_vns):
    project, _ = three_vns
    assert api.virtual_networks_list(parent_id=project.uuid, count=True) == {
        "virtual-networks": {"count": 3}
    }


def test_list_fields(api, three_vns):
    project, vns = three_vns
    result = api.virtual_networks_list(
        parent_id=project.uuid, fields=["display_name", "virtual_network_network_id"]
    )
    entries = {e["uuid"]: e for e in result["virtual-networks"]}
    for vn in vns:
        assert entries[vn.uuid]["display_name"] == vn.display_name
        read = api.virtual_network_read(id=vn.uuid)
        assert entries[vn.uuid]["virtual_network_network_id"] == read.get_virtual_network_network_id()


def test_list_by_back_ref_id(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    other = make_vn(api, project, None)
    vmis = [make_vmi(api, project, vn) for _ in range(2)]
    make_vmi(api, project, other)
    result = api.virtual_machine_interfaces_list(back_ref_id=vn.uuid)
    assert sorted(e["uuid"] for e in result["virtual-machine-interfaces"]) == sorted(
        v.uuid for v in vmis
    )


def test_list_small_obj_uuids_uses_get(api, three_vns):
    _, vns = three_vns
    wanted = [vns[0].uuid, vns[2].uuid]
    result = api.virtual_networks_list(obj_uuids=wanted)
    assert sorted(e["uuid"] for e in result["virtual-networks"]) == sorted(wanted)


def test_list_many_obj_uuids_uses_list_bulk_collection(api):
    project = make_project(api)
    uuids = []
    for i in range(30):
        vn = VirtualNetwork(unique(f"bulk{i}"), parent_obj=project)
        api.virtual_network_create(vn)
        uuids.append(vn.uuid)

    posted = []
    real_post = api._http_post

    def spy(uri, body, headers):
        posted.append(uri)
        return real_post(uri, body, headers)

    api._http_post = spy
    result = api.virtual_networks_list(obj_uuids=uuids)
    assert posted == ["/list-bulk-collection"]
    assert sorted(e["uuid"] for e in result["virtual-networks"]) == sorted(uuids)

    objs = api.virtual_networks_list(obj_uuids=uuids, detail=True)
    assert sorted(o.uuid for o in objs) == sorted(uuids)
    counted = api.virtual_networks_list(obj_uuids=uuids, count=True)
    assert counted == {"virtual-networks": {"count": 30}}
    assert posted == ["/list-bulk-collection"] * 3


def test_list_unknown_parent_is_empty(api):
    result = api.virtual_networks_list(parent_id="00000000-0000-4000-8000-000000000000")
    assert result == {"virtual-networks": []}


def test_list_http_shape(server, three_vns):
    project, vns = three_vns
    resp = http_get(
        server,
        "/virtual-networks",
        params={"parent_id": project.uuid, "detail": "True", "count": "False", "shared": "False"},
    )
    assert resp.status_code == 200
    entries = resp.json()["virtual-networks"]
    assert sorted(e["virtual-network"]["uuid"] for e in entries) == sorted(v.uuid for v in vns)
    for entry in entries:
        obj = entry["virtual-network"]
        assert obj["href"] == server.url(f"/virtual-network/{obj['uuid']}")
        assert obj["name"] == obj["fq_name"][-1]


# -- duplicates and delete protection -----------------------------------------
def test_duplicate_create_is_refused(api):
    project = make_project(api)
    with pytest.raises(RefsExistError):
        api.project_create(Project(project.name, parent_obj=api.domain_read(fq_name=DEFAULT_DOMAIN)))
    vn = make_vn(api, project, None)
    with pytest.raises(RefsExistError):
        api.virtual_network_create(VirtualNetwork(vn.name, parent_obj=project))
    assert api.virtual_networks_list(parent_id=project.uuid, count=True) == {
        "virtual-networks": {"count": 1}
    }


def test_same_name_under_other_parent_is_fine(api):
    name = unique("vn")
    a = make_vn(api, make_project(api), None, name=name)
    b = make_vn(api, make_project(api), None, name=name)
    assert a.uuid != b.uuid


def test_delete_protection_and_dependency_order(server, api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    vmi = make_vmi(api, project, vn)
    iip = make_iip(api, vn, vmi)
    ri_uuid = api.fq_name_to_id("routing-instance", vn.get_fq_name() + [vn.name])

    # Referenced VN (by the VMI and the instance-ip): refused.
    with pytest.raises(RefsExistError):
        api.virtual_network_delete(id=vn.uuid)
    # Project with children: refused.
    with pytest.raises(RefsExistError):
        api.project_delete(id=project.uuid)
    # Referenced VMI (by the instance-ip): refused.
    with pytest.raises(RefsExistError):
        api.virtual_machine_interface_delete(id=vmi.uuid)
    # Nothing was deleted by the refused calls.
    assert api.virtual_network_read(id=vn.uuid).uuid == vn.uuid
    assert api.project_read(id=project.uuid).uuid == project.uuid

    # Dependency order works; the VN's own routing instance goes with it.
    api.instance_ip_delete(id=iip.uuid)
    api.virtual_machine_interface_delete(id=vmi.uuid)
    api.virtual_network_delete(id=vn.uuid)
    api.project_delete(id=project.uuid)

    for reader, obj_uuid in [
        (api.instance_ip_read, iip.uuid),
        (api.virtual_machine_interface_read, vmi.uuid),
        (api.virtual_network_read, vn.uuid),
        (api.routing_instance_read, ri_uuid),
        (api.project_read, project.uuid),
    ]:
        with pytest.raises(NoIdError):
            reader(id=obj_uuid)
    with pytest.raises(NoIdError):
        api.fq_name_to_id("virtual-network", vn.get_fq_name())
    assert count_of(server, "virtual-machine-interface", parent_id=project.uuid) == 0


def test_delete_by_fq_name_and_delete_twice(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    api.virtual_network_delete(fq_name=vn.get_fq_name())
    with pytest.raises(NoIdError):
        api.virtual_network_delete(id=vn.uuid)
    with pytest.raises(NoIdError):
        api.virtual_network_delete(fq_name=vn.get_fq_name())


def test_name_reusable_after_delete(api):
    project = make_project(api)
    name = unique("vmi")
    vn = make_vn(api, project, None)
    first = VirtualMachineInterface(name, parent_obj=project)
    first.add_virtual_network(vn)
    api.virtual_machine_interface_create(first)
    api.virtual_machine_interface_delete(id=first.uuid)
    second = VirtualMachineInterface(name, parent_obj=project)
    second.add_virtual_network(vn)
    api.virtual_machine_interface_create(second)
    assert second.uuid != first.uuid
    assert api.fq_name_to_id("virtual-machine-interface", second.get_fq_name()) == second.uuid
