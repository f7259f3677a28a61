"""Type-independent action endpoints (tf-facts 1.5): name/id translation,
useragent key-value store, property collections, chmod/chown, obj-perms,
ref-relax-for-delete."""

import pytest
from vnc_api.vnc_api import (
    BadRequest,
    KeyValuePair,
    NetworkPolicy,
    NoIdError,
    RefsExistError,
    VirtualNetwork,
    VirtualNetworkPolicyType,
    SequenceType,
)

from e2e_helpers import http_get, make_project, make_vn, read_raw, unique

UNKNOWN_UUID = "00000000-0000-4000-8000-00000000abcd"


# -- fqname-to-id / id-to-fqname -------------------------------------------------
def test_fq_name_to_id_unknown_name_is_not_found(api):
    with pytest.raises(NoIdError):
        api.fq_name_to_id("virtual-network", ["default-domain", "default-project", unique("nope")])
    with pytest.raises(NoIdError):
        api.fq_name_to_id("project", ["default-domain", unique("nope")])
    with pytest.raises(NoIdError):
        api.virtual_network_read(fq_name=["default-domain", "default-project", unique("nope")])


def test_fq_name_to_id_is_per_type(api):
    project = make_project(api)
    with pytest.raises(NoIdError):
        api.fq_name_to_id("virtual-network", project.get_fq_name())


def test_id_to_fq_name(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    assert api.id_to_fq_name(vn.uuid) == vn.get_fq_name()
    assert api.id_to_fq_name_type(vn.uuid) == (vn.get_fq_name(), "virtual-network")
    assert api.id_to_fq_name_type(project.uuid) == (project.get_fq_name(), "project")
    with pytest.raises(NoIdError):
        api.id_to_fq_name(UNKNOWN_UUID)


# -- useragent-kv ---------------------------------------------------------------
def test_useragent_kv_store_retrieve_delete(api):
    key = unique("kv")
    api.kv_store(key, "value-1")
    assert api.kv_retrieve(key) == "value-1"
    api.kv_store(key, "value-2")  # STORE overwrites
    assert api.kv_retrieve(key) == "value-2"
    api.kv_delete(key)
    with pytest.raises(NoIdError):
        api.kv_retrieve(key)


def test_useragent_kv_unknown_key(api):
    with pytest.raises(NoIdError):
        api.kv_retrieve(unique("never-stored"))


# -- property collections (map: annotations) -------------------------------------
def _annotation_pairs(obj):
    annotations = obj.get_annotations()
    if annotations is None:
        return {}
    return {kv.key: kv.value for kv in annotations.get_key_value_pair() or []}


def test_annotations_set_at_create_time(api):
    project = make_project(api)
    vn = VirtualNetwork(unique("vn"), parent_obj=project)
    vn.add_annotations(KeyValuePair(key="owner", value="team-a"))
    api.virtual_network_create(vn)  # create, then POST /prop-collection-update
    assert _annotation_pairs(api.virtual_network_read(id=vn.uuid)) == {"owner": "team-a"}


def test_annotations_through_object_update_and_prop_collection_get(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    vn.add_annotations(KeyValuePair(key="k1", value="v1"))
    vn.add_annotations(KeyValuePair(key="k2", value="v2"))
    api.virtual_network_update(vn)
    assert _annotation_pairs(api.virtual_network_read(id=vn.uuid)) == {"k1": "v1", "k2": "v2"}

    # prop-collection-get answers [[element, position], ...]; position = map key.
    elems = api.prop_map_get(vn.uuid, "annotations")
    assert sorted((e[0]["key"], e[0]["value"], e[1]) for e in elems) == [
        ("k1", "v1", "k1"),
        ("k2", "v2", "k2"),
    ]
    one = api.prop_map_get(vn.uuid, "annotations", position="k2")
    assert [(e[0]["key"], e[0]["value"], e[1]) for e in one] == [("k2", "v2", "k2")]

    # set on an existing key replaces the value; delete removes one key.
    api.prop_map_set_element(vn.uuid, "annotations", KeyValuePair(key="k1", value="v1b"))
    api.prop_map_delete_element(vn.uuid, "annotations", "k2")
    assert _annotation_pairs(api.virtual_network_read(id=vn.uuid)) == {"k1": "v1b"}

    vn2 = api.virtual_network_read(id=vn.uuid)
    vn2.del_annotations("k1")
    api.virtual_network_update(vn2)
    assert _annotation_pairs(api.virtual_network_read(id=vn.uuid)) == {}


def test_prop_collection_get_on_plain_property_is_bad_request(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    with pytest.raises(BadRequest):
        api.prop_list_get(vn.uuid, "display_name")


def test_prop_collection_get_unknown_object(api):
    with pytest.raises(NoIdError):
        api.prop_map_get(UNKNOWN_UUID, "annotations")


# -- chmod / chown / obj-perms -----------------------------------------------------
def test_chmod_global_access_drives_is_shared(server, api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    assert api.chmod(vn.uuid, global_access=5) is not None
    raw = read_raw(server, "virtual-network", vn.uuid)
    assert raw["perms2"]["global_access"] == 5
    assert raw["is_shared"] is True
    assert api.virtual_network_read(id=vn.uuid).get_is_shared() is True

    api.chmod(vn.uuid, global_access=0)
    raw = read_raw(server, "virtual-network", vn.uuid)
    assert raw["perms2"]["global_access"] == 0
    assert raw["is_shared"] is False


def test_chmod_owner_access_and_share(server, api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    api.chmod(vn.uuid, owner_access=5, share=[(project.uuid, 7)])
    perms2 = read_raw(server, "virtual-network", vn.uuid)["perms2"]
    assert perms2["owner_access"] == 5
    assert perms2["share"] == [{"tenant": project.uuid, "tenant_access": 7}]


def test_chmod_bad_values_are_rejected(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    with pytest.raises(BadRequest):
        api.chmod(vn.uuid, global_access=9)
    with pytest.raises(BadRequest):
        api.chmod(vn.uuid, owner="not-a-uuid")


def test_chown(server, api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    api.chown(vn.uuid, project.uuid)
    owner = read_raw(server, "virtual-network", vn.uuid)["perms2"]["owner"]
    assert owner.replace("-", "") == project.uuid.replace("-", "")
    with pytest.raises(BadRequest):
        api.chown(vn.uuid, "not-a-uuid")


def test_obj_perms_without_auth(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    perms = api.obj_perms(None, vn.uuid)
    assert perms["permissions"] == "RWX"
    assert "token_info" in perms


def test_obj_perms_http(server, api):
    project = make_project(api)
    resp = http_get(server, "/obj-perms", params={"uuid": project.uuid})
    assert resp.status_code == 200
    assert resp.json()["permissions"] == "RWX"


# -- ref-relax-for-delete -----------------------------------------------------------
def test_ref_relax_for_delete(api):
    project = make_project(api)
    vn = make_vn(api, project, None)
    policy = NetworkPolicy(unique("pol"), parent_obj=project)
    api.network_policy_create(policy)
    vn.add_network_policy(policy, VirtualNetworkPolicyType(sequence=SequenceType(0, 0)))
    api.virtual_network_update(vn)

    with pytest.raises(RefsExistError):
        api.network_policy_delete(id=policy.uuid)
    assert api.ref_relax_for_delete(vn.uuid, policy.uuid) == vn.uuid
    api.network_policy_delete(id=policy.uuid)  # the relaxed ref no longer blocks
    with pytest.raises(NoIdError):
        api.network_policy_read(id=policy.uuid)
    assert not api.virtual_network_read(id=vn.uuid).get_network_policy_refs()
