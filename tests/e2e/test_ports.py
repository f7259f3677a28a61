"""Ports: virtual-machine-interface MAC and routing-instance refs, and
instance-ip address allocation (tf-facts 1.7)."""

import pytest
from vnc_api.vnc_api import BadRequest, NoIdError, RefsExistError

from e2e_helpers import (
    as_dict,
    ipam_subnet,
    make_iip,
    make_project,
    make_vmi,
    make_vn,
    mac_for_uuid,
    unique,
)


@pytest.fixture
def net(api):
    """A project with a 10.1.1.0/24 VN (gateway defaulted) and one VMI."""
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24")
    vmi = make_vmi(api, project, vn)
    return project, vn, vmi


def test_vmi_mac_follows_uuid_rule(api, net):
    _, _, vmi = net
    macs = vmi.get_virtual_machine_interface_mac_addresses()
    assert macs is not None, "no virtual_machine_interface_mac_addresses allocated"
    assert macs.get_mac_address() == [mac_for_uuid(vmi.uuid)]


def test_vmi_macs_differ(api, net):
    project, vn, vmi = net
    other = make_vmi(api, project, vn)
    first = vmi.get_virtual_machine_interface_mac_addresses().get_mac_address()
    second = other.get_virtual_machine_interface_mac_addresses().get_mac_address()
    assert first != second


def test_vmi_refs_primary_routing_instance_with_direction_both(api, net):
    _, vn, vmi = net
    ri_fq = vn.get_fq_name() + [vn.name]
    ri_uuid = api.fq_name_to_id("routing-instance", ri_fq)
    refs = vmi.get_routing_instance_refs()
    assert refs is not None and len(refs) == 1, refs
    assert refs[0]["to"] == ri_fq
    assert refs[0]["uuid"] == ri_uuid
    attr = as_dict(refs[0]["attr"])
    assert attr["direction"] == "both"
    # PolicyBasedForwardingRuleType(direction="both"): every other field unset.
    assert {k: v for k, v in attr.items() if k != "direction" and v is not None} == {}


def test_vmi_virtual_network_ref(api, net):
    _, vn, vmi = net
    refs = vmi.get_virtual_network_refs()
    assert [(r["to"], r["uuid"]) for r in refs] == [(vn.get_fq_name(), vn.uuid)]


def test_iip_allocated_top_down_with_default_gateway(api, net):
    _, vn, vmi = net
    subnet_uuid = ipam_subnet(vn)["subnet_uuid"]
    addresses = []
    for _ in range(3):
        iip = make_iip(api, vn, vmi)
        assert iip.get_instance_ip_family() == "v4"
        assert iip.get_subnet_uuid() == subnet_uuid
        addresses.append(iip.get_instance_ip_address())
    # .255 broadcast, .254 gateway, .253 DNS/service address: first VM gets .252.
    assert addresses == ["10.1.1.252", "10.1.1.251", "10.1.1.250"]


def test_iip_first_address_with_pinned_gateway(api):
    project = make_project(api)
    vn = make_vn(api, project, "10.1.1.0/24", gateway="10.1.1.1")
    vmi = make_vmi(api, project, vn)
    iip = make_iip(api, vn, vmi)
    assert iip.get_instance_ip_address() == "10.1.1.254"


def test_iip_no_duplicates(api, net):
    _, vn, vmi = net
    addresses = [make_iip(api, vn, vmi).get_instance_ip_address() for _ in range(8)]
    assert len(set(addresses)) == len(addresses), addresses
    for addr in addresses:
        assert addr.startswith("10.1.1."), addr
        assert addr not in ("10.1.1.0", "10.1.1.255", "10.1.1.254", "10.1.1.253")


def test_iip_without_vmi(api, net):
    _, vn, _ = net
    iip = make_iip(api, vn)
    assert iip.get_instance_ip_address() == "10.1.1.252"
    assert [r["uuid"] for r in iip.get_virtual_network_refs()] == [vn.uuid]


def test_iip_has_no_parent_and_fq_name_is_its_name(api, net):
    _, vn, vmi = net
    name = unique("iip")
    iip = make_iip(api, vn, vmi, name=name)
    assert iip.get_fq_name() == [name]
    assert api.fq_name_to_id("instance-ip", [name]) == iip.uuid
    assert [r["uuid"] for r in iip.get_virtual_machine_interface_refs()] == [vmi.uuid]


def test_requested_address_is_honoured(api, net):
    _, vn, vmi = net
    iip = make_iip(api, vn, vmi, address="10.1.1.100")
    assert iip.get_instance_ip_address() == "10.1.1.100"
    # The next automatic allocation is unaffected (still the top of the pool).
    assert make_iip(api, vn, vmi).get_instance_ip_address() == "10.1.1.252"


def test_requested_address_in_use_is_refused_with_409(api, net):
    _, vn, vmi = net
    make_iip(api, vn, vmi, address="10.1.1.100")
    name = unique("iip-dup")
    with pytest.raises(RefsExistError):
        make_iip(api, vn, vmi, address="10.1.1.100", name=name)
    with pytest.raises(NoIdError):
        api.fq_name_to_id("instance-ip", [name])


def test_requested_auto_allocated_address_is_refused(api, net):
    _, vn, vmi = net
    taken = make_iip(api, vn, vmi).get_instance_ip_address()
    with pytest.raises(RefsExistError):
        make_iip(api, vn, vmi, address=taken)


def test_requesting_the_gateway_is_a_bad_request(api, net):
    _, vn, vmi = net
    name = unique("iip-gw")
    with pytest.raises(BadRequest):
        make_iip(api, vn, vmi, address="10.1.1.254", name=name)
    with pytest.raises(NoIdError):
        api.fq_name_to_id("instance-ip", [name])
    # Nothing was consumed: the first automatic address is still .252.
    assert make_iip(api, vn, vmi).get_instance_ip_address() == "10.1.1.252"


def test_freed_address_is_reused_from_the_top(api, net):
    _, vn, vmi = net
    first = make_iip(api, vn, vmi)
    second = make_iip(api, vn, vmi)
    assert (first.get_instance_ip_address(), second.get_instance_ip_address()) == (
        "10.1.1.252",
        "10.1.1.251",
    )
    api.instance_ip_delete(id=first.uuid)
    assert make_iip(api, vn, vmi).get_instance_ip_address() == "10.1.1.252"


def test_vmi_and_vn_show_iip_back_refs(api, net):
    _, vn, vmi = net
    iip = make_iip(api, vn, vmi)
    vmi_read = api.virtual_machine_interface_read(id=vmi.uuid)
    assert [r["uuid"] for r in vmi_read.get_instance_ip_back_refs()] == [iip.uuid]
    vn_read = api.virtual_network_read(id=vn.uuid, fields=["instance_ip_back_refs"])
    assert [r["uuid"] for r in vn_read.get_instance_ip_back_refs()] == [iip.uuid]
