"""Objects that exist on a freshly started system (tf-facts 1.9).

Uses a private server so that nothing created by other tests is around.
"""

import pytest

from e2e_helpers import DEFAULT_DOMAIN, DEFAULT_IPAM, DEFAULT_PROJECT, is_uuid

IP_FABRIC = DEFAULT_PROJECT + ["ip-fabric"]
LINK_LOCAL = DEFAULT_PROJECT + ["__link_local__"]
GSC = ["default-global-system-config"]
GVC = GSC + ["default-global-vrouter-config"]


@pytest.fixture
def bapi(module_server):
    return module_server.api()


def test_default_domain(bapi):
    domain = bapi.domain_read(fq_name=DEFAULT_DOMAIN)
    assert is_uuid(domain.uuid)
    assert domain.get_fq_name() == DEFAULT_DOMAIN
    assert domain.display_name == "default-domain"


def test_default_project_is_child_of_default_domain(bapi):
    domain = bapi.domain_read(fq_name=DEFAULT_DOMAIN)
    project = bapi.project_read(fq_name=DEFAULT_PROJECT)
    assert project.parent_type == "domain"
    assert project.parent_uuid == domain.uuid


def test_default_network_ipam_is_shared_read_execute(bapi):
    project = bapi.project_read(fq_name=DEFAULT_PROJECT)
    ipam = bapi.network_ipam_read(fq_name=DEFAULT_IPAM)
    assert ipam.parent_type == "project"
    assert ipam.parent_uuid == project.uuid
    assert ipam.get_perms2().global_access == 5


def test_ip_fabric_network_and_routing_instances(bapi):
    vn = bapi.virtual_network_read(fq_name=IP_FABRIC)
    assert vn.get_is_provider_network() is True
    primary = bapi.routing_instance_read(fq_name=IP_FABRIC + ["ip-fabric"])
    assert primary.get_routing_instance_is_default() is True
    assert primary.parent_uuid == vn.uuid
    master = bapi.routing_instance_read(fq_name=IP_FABRIC + ["__default__"])
    assert master.parent_uuid == vn.uuid
    assert master.uuid != primary.uuid


def test_link_local_network_and_routing_instance(bapi):
    vn = bapi.virtual_network_read(fq_name=LINK_LOCAL)
    ri = bapi.routing_instance_read(fq_name=LINK_LOCAL + ["__link_local__"])
    assert ri.parent_uuid == vn.uuid


def test_global_system_config_autonomous_system(bapi):
    gsc = bapi.global_system_config_read(fq_name=GSC)
    assert gsc.get_autonomous_system() == 64512


def test_global_vrouter_config(bapi):
    gsc = bapi.global_system_config_read(fq_name=GSC)
    gvc = bapi.global_vrouter_config_read(fq_name=GVC)
    assert gvc.parent_type == "global-system-config"
    assert gvc.parent_uuid == gsc.uuid


def test_bootstrap_uuids_resolve_both_ways(bapi):
    for res_type, fq_name in [
        ("domain", DEFAULT_DOMAIN),
        ("project", DEFAULT_PROJECT),
        ("network-ipam", DEFAULT_IPAM),
        ("virtual-network", IP_FABRIC),
        ("virtual-network", LINK_LOCAL),
        ("global-system-config", GSC),
        ("global-vrouter-config", GVC),
    ]:
        obj_uuid = bapi.fq_name_to_id(res_type, fq_name)
        assert is_uuid(obj_uuid), (res_type, fq_name, obj_uuid)
        assert bapi.id_to_fq_name_type(obj_uuid) == (fq_name, res_type)
