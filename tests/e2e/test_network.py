"""Projects and virtual networks: create/read, subnet defaults, network ids,
primary routing instances (tf-facts 1.4, 1.7, 1.8)."""

import datetime
import uuid as uuidlib

from vnc_api.vnc_api import Project

from e2e_helpers import (
    DEFAULT_DOMAIN,
    ipam_subnet,
    is_uuid,
    make_project,
    http_get,
    make_vmi,
    make_vn,
    read_raw,
    unique,
)


def _parse_ts(value):
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f")


def test_project_create_and_read_by_fq_name(api):
    name = unique("proj")
    project = Project(name, parent_obj=api.domain_read(fq_name=DEFAULT_DOMAIN))
    returned_uuid = api.project_create(project)
    assert is_uuid(returned_uuid)
    assert project.uuid == returned_uuid
    assert project.parent_type == "domain"

    read = api.project_read(fq_name=["default-domain", name])
    assert read.uuid == project.uuid
    assert read.name == name
    assert read.get_fq_name() == ["default-domain", name]
    assert read.parent_type == "domain"
    assert read.parent_uuid == api.fq_name_to_id("domain", DEFAULT_DOMAIN)
    assert read.display_name == name  # defaults to the last fq_name element
    assert api.project_read(fq_name_str=f"default-domain:{name}").uuid == project.uuid


def test_new_object_has_default_id_perms_and_perms2(server, api):
    project = make_project(api)
    raw = read_raw(server, "project", project.uuid)
    id_perms = raw["id_perms"]
    assert id_perms["enable"] is True
    assert id_perms["user_visible"] is True
    perms = id_perms["permissions"]
    assert perms["owner"] == "cloud-admin"
    assert perms["owner_access"] == 7
    assert perms["group"] == "cloud-admin-group"
    assert perms["group_access"] == 7
    assert perms["other_access"] == 7
    # id_perms.uuid is the object's uuid as two 64-bit halves.
    as_int = uuidlib.UUID(project.uuid).int
    assert id_perms["uuid"]["uuid_mslong"] == as_int >> 64
    assert id_perms["uuid"]["uuid_lslong"] == as_int & ((1 << 64) - 1)
    created = _parse_ts(id_perms["created"])
    assert _parse_ts(id_perms["last_modified"]) >= created
    perms2 = raw["perms2"]
    assert perms2["owner_access"] == 7
    assert perms2["global_access"] == 0
    assert perms2["share"] == []
    # Read response envelope.
    assert raw["uuid"] == project.uuid
    assert raw["name"] == project.name
    assert raw["fq_name"] == project.get_fq_name()
    assert raw["href"] == server.url(f"/project/{project.uuid}")
    assert raw["parent_href"] == server.url(f"/domain/{raw['parent_uuid']}")


def test_vn_subnet_gets_uuid_gateway_and_dns_defaults(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    subnet = ipam_subnet(vn)
    assert subnet["subnet"] == {"ip_prefix": "10.1.1.0", "ip_prefix_len": 24}
    assert is_uuid(subnet["subnet_uuid"]), subnet
    assert subnet["default_gateway"] == "10.1.1.254"  # last - 1
    assert subnet["dns_server_address"] == "10.1.1.253"  # last - 2
    ref = vn.get_network_ipam_refs()[0]
    assert ref["to"] == ["default-domain", "default-project", "default-network-ipam"]
    assert ref["uuid"] == api.fq_name_to_id(
        "network-ipam", ["default-domain", "default-project", "default-network-ipam"]
    )


def test_vn_pinned_gateway_is_kept(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24", gateway="10.1.1.1")
    subnet = ipam_subnet(vn)
    assert subnet["default_gateway"] == "10.1.1.1"
    assert subnet["dns_server_address"] == "10.1.1.253"


def test_vn_subnet_uuids_are_distinct(api):
    project = make_project(api)
    a = make_vn(api, project, "10.1.1.0/24")
    b = make_vn(api, project, "10.1.1.0/24")  # overlapping subnets in other VNs are fine
    assert ipam_subnet(a)["subnet_uuid"] != ipam_subnet(b)["subnet_uuid"]


def test_vn_network_id_allocated_and_unique(api):
    project = make_project(api)
    first = make_vn(api, project, "10.1.1.0/24")
    second = make_vn(api, project, None)
    ids = [first.get_virtual_network_network_id(), second.get_virtual_network_network_id()]
    for net_id in ids:
        assert isinstance(net_id, int) and not isinstance(net_id, bool), ids
        assert 1 <= net_id < 2**24, ids
    assert ids[0] != ids[1]


def test_vn_parent_and_display_name(api):
    project = make_project(api)
    name = unique("vn")
    vn = make_vn(api, project, None, name=name)
    assert vn.get_fq_name() == project.get_fq_name() + [name]
    assert vn.parent_type == "project"
    assert vn.parent_uuid == project.uuid
    assert vn.display_name == name


def test_vn_primary_routing_instance(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    ri_fq = vn.get_fq_name() + [vn.name]
    ri = api.routing_instance_read(fq_name=ri_fq)
    assert ri.get_routing_instance_is_default() is True
    assert ri.parent_type == "virtual-network"
    assert ri.parent_uuid == vn.uuid

    # Children are listed when the VN is read with children.
    with_children = api.virtual_network_read(id=vn.uuid, exclude_children=False)
    children = with_children.get_routing_instances()
    assert children, "VN read with children has no routing_instances"
    primary = [c for c in children if c["uuid"] == ri.uuid]
    assert len(primary) == 1, children
    assert primary[0]["to"] == ri_fq

    # ... and fetched lazily through fields=['routing_instances'].
    plain = api.virtual_network_read(id=vn.uuid)
    assert ri.uuid in [c["uuid"] for c in plain.get_routing_instances()]


def test_read_exclude_flags(server, api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    vmi = make_vmi(api, project, vn)
    # What vnc_api sends on every plain read: no children, no back-refs.
    slim = read_raw(server, "virtual-network", vn.uuid,
                    exclude_back_refs="True", exclude_children="True")
    assert "routing_instances" not in slim
    assert "virtual_machine_interface_back_refs" not in slim
    # Without the flags the server returns both.
    full = read_raw(server, "virtual-network", vn.uuid)
    assert [c["to"] for c in full["routing_instances"]] == [vn.get_fq_name() + [vn.name]]
    assert [r["uuid"] for r in full["virtual_machine_interface_back_refs"]] == [vmi.uuid]


def test_update_display_name(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    before = ipam_subnet(vn)
    vn.set_display_name("renamed network")
    api.virtual_network_update(vn)
    read = api.virtual_network_read(id=vn.uuid)
    assert read.display_name == "renamed network"
    # A PUT of one field leaves the others alone.
    assert ipam_subnet(read) == before
    assert read.get_virtual_network_network_id() == vn.get_virtual_network_network_id()


def test_read_with_fields_returns_requested_fields(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    part = api.virtual_network_read(
        id=vn.uuid, fields=["virtual_network_network_id", "display_name"]
    )
    assert part.get_virtual_network_network_id() == vn.get_virtual_network_network_id()
    assert part.display_name == vn.display_name


def test_etag_and_if_none_match(server, api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    path = f"/virtual-network/{vn.uuid}"
    first = http_get(server, path)
    assert first.status_code == 200
    etag = first.headers.get("ETag")
    assert etag, "GET of an object has no ETag header"
    # ETag is id_perms.last_modified in double quotes.
    assert etag == '"%s"' % first.json()["virtual-network"]["id_perms"]["last_modified"]

    unchanged = http_get(server, path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    vn.set_display_name("changed")
    api.virtual_network_update(vn)
    changed = http_get(server, path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["virtual-network"]["display_name"] == "changed"
    assert changed.headers.get("ETag") not in (None, etag)
