"""Network policy: rules, attachment to virtual networks, delete protection."""

import pytest
from vnc_api.vnc_api import (
    ActionListType,
    AddressType,
    NetworkPolicy,
    NoIdError,
    PolicyEntriesType,
    PolicyRuleType,
    PortType,
    RefsExistError,
    SequenceType,
    VirtualNetworkPolicyType,
)

from e2e_helpers import as_dict, is_uuid, make_project, make_vn, ref_uuids


def _fq_str(obj):
    return ":".join(obj.get_fq_name())


def _rule(src_vn, dst_vn):
    return PolicyRuleType(
        direction="<>",
        protocol="any",
        src_addresses=[AddressType(virtual_network=_fq_str(src_vn))],
        src_ports=[PortType(-1, -1)],
        dst_addresses=[AddressType(virtual_network=_fq_str(dst_vn))],
        dst_ports=[PortType(-1, -1)],
        action_list=ActionListType(simple_action="pass"),
    )


@pytest.fixture
def setup(api):
    project = make_project(api)
    vn1 = make_vn(api, project, "10.1.1.0/24")
    vn2 = make_vn(api, project, "10.2.2.0/24")
    policy = NetworkPolicy("allow-1-2", parent_obj=project)
    policy.set_network_policy_entries(PolicyEntriesType([_rule(vn1, vn2)]))
    api.network_policy_create(policy)
    return project, vn1, vn2, policy


def test_policy_rules_read_back(api, setup):
    _, vn1, vn2, policy = setup
    read = api.network_policy_read(id=policy.uuid)
    rules = read.get_network_policy_entries().get_policy_rule()
    assert len(rules) == 1
    rule = rules[0]
    assert rule.get_direction() == "<>"
    assert rule.get_protocol() == "any"
    assert [a.get_virtual_network() for a in rule.get_src_addresses()] == [_fq_str(vn1)]
    assert [a.get_virtual_network() for a in rule.get_dst_addresses()] == [_fq_str(vn2)]
    assert [(p.get_start_port(), p.get_end_port()) for p in rule.get_src_ports()] == [(-1, -1)]
    assert [(p.get_start_port(), p.get_end_port()) for p in rule.get_dst_ports()] == [(-1, -1)]
    assert rule.get_action_list().get_simple_action() == "pass"
    # The API server gives every rule without one a rule_uuid.
    assert is_uuid(rule.get_rule_uuid()), rule.get_rule_uuid()


def test_attach_policy_to_two_networks_and_detach(api, setup):
    _, vn1, vn2, policy = setup
    seq = VirtualNetworkPolicyType(sequence=SequenceType(0, 0))

    # VN1: through the object (client sends POST /ref-update after the PUT).
    vn1.add_network_policy(policy, seq)
    api.virtual_network_update(vn1)
    # VN2: through ref-update directly, attr as the client serialises it.
    api.ref_update(
        "virtual-network",
        vn2.uuid,
        "network-policy",
        policy.uuid,
        None,
        "ADD",
        {"sequence": {"major": 0, "minor": 0}, "timer": None},
    )

    for vn in (vn1, vn2):
        refs = api.virtual_network_read(id=vn.uuid).get_network_policy_refs()
        assert ref_uuids(refs) == [policy.uuid]
        assert refs[0]["to"] == policy.get_fq_name()
        assert as_dict(refs[0]["attr"])["sequence"] == {"major": 0, "minor": 0}

    back = api.network_policy_read(id=policy.uuid, fields=["virtual_network_back_refs"])
    assert ref_uuids(back.get_virtual_network_back_refs()) == sorted([vn1.uuid, vn2.uuid])

    # Attached: delete refused, policy still there.
    with pytest.raises(RefsExistError):
        api.network_policy_delete(id=policy.uuid)
    assert api.network_policy_read(id=policy.uuid).uuid == policy.uuid

    # Detach from VN1 through the object, from VN2 through ref-update.
    vn1.del_network_policy(policy)
    api.virtual_network_update(vn1)
    assert not api.virtual_network_read(id=vn1.uuid).get_network_policy_refs()
    with pytest.raises(RefsExistError):
        api.network_policy_delete(id=policy.uuid)
    api.ref_update("virtual-network", vn2.uuid, "network-policy", policy.uuid, None, "DELETE")

    api.network_policy_delete(id=policy.uuid)
    with pytest.raises(NoIdError):
        api.network_policy_read(id=policy.uuid)
    assert not api.virtual_network_read(id=vn2.uuid).get_network_policy_refs()


def test_ref_update_add_again_replaces_attr(api, setup):
    _, vn1, _, policy = setup
    for minor in (0, 7):
        api.ref_update(
            "virtual-network",
            vn1.uuid,
            "network-policy",
            policy.uuid,
            None,
            "ADD",
            {"sequence": {"major": 1, "minor": minor}, "timer": None},
        )
    refs = api.virtual_network_read(id=vn1.uuid).get_network_policy_refs()
    assert len(refs) == 1
    assert as_dict(refs[0]["attr"])["sequence"] == {"major": 1, "minor": 7}


def test_update_policy_rules(api, setup):
    _, vn1, vn2, policy = setup
    read = api.network_policy_read(id=policy.uuid)
    entries = read.get_network_policy_entries()
    deny = _rule(vn2, vn1)
    deny.set_action_list(ActionListType(simple_action="deny"))
    deny.set_direction(">")
    entries.add_policy_rule(deny)
    read.set_network_policy_entries(entries)
    api.network_policy_update(read)
    rules = api.network_policy_read(id=policy.uuid).get_network_policy_entries().get_policy_rule()
    assert [(r.get_direction(), r.get_action_list().get_simple_action()) for r in rules] == [
        ("<>", "pass"),
        (">", "deny"),
    ]
