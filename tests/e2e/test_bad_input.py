"""Bad input over raw HTTP: the right status code, and nothing written.

Each case checks the object counts before and after: a refused request must
not leave anything behind.
"""

import uuid as uuidlib

import pytest
from vnc_api.vnc_api import BadRequest, IpamSubnetType, SubnetType, VirtualNetwork, VnSubnetsType

from e2e_helpers import (
    DEFAULT_IPAM,
    count_of,
    default_ipam,
    http_delete,
    http_get,
    http_post,
    http_put,
    make_project,
    make_vn,
    read_raw,
    unique,
)


@pytest.fixture
def project(api):
    return make_project(api)


def _vn_body(project, name=None, **fields):
    body = {
        "uuid": None,
        "fq_name": project.get_fq_name() + [name or unique("vn")],
        "parent_type": "project",
    }
    body.update(fields)
    return {"virtual-network": body}


def _subnet_ref(api, prefix, prefix_len, **extra):
    subnet = {"subnet": {"ip_prefix": prefix, "ip_prefix_len": prefix_len}, **extra}
    return [
        {
            "to": DEFAULT_IPAM,
            "uuid": default_ipam(api).uuid,
            "attr": {"ipam_subnets": [subnet]},
        }
    ]


def _assert_refused(server, project, status, method, path, body, **kwargs):
    """Send the request; it must answer ``status`` and change no object counts."""
    before = (
        count_of(server, "virtual-network"),
        count_of(server, "virtual-network", parent_id=project.uuid),
        count_of(server, "project"),
        count_of(server, "routing-instance"),
    )
    if method == "POST":
        resp = http_post(server, path, body, **kwargs)
    elif method == "PUT":
        resp = http_put(server, path, body, **kwargs)
    elif method == "DELETE":
        resp = http_delete(server, path, **kwargs)
    else:
        resp = http_get(server, path, **kwargs)
    assert resp.status_code == status, (
        f"{method} {path} {str(body)[:300]} -> {resp.status_code} {resp.text[:300]}"
    )
    after = (
        count_of(server, "virtual-network"),
        count_of(server, "virtual-network", parent_id=project.uuid),
        count_of(server, "project"),
        count_of(server, "routing-instance"),
    )
    assert after == before, f"object counts changed by a refused request: {before} -> {after}"
    return resp


def _assert_name_free(server, res_type, fq_name):
    resp = http_post(server, "/fqname-to-id", {"type": res_type, "fq_name": fq_name})
    assert resp.status_code == 404, f"{fq_name} exists after a refused create: {resp.text}"


# -- malformed requests -------------------------------------------------------------
def test_malformed_json_body(server, project):
    _assert_refused(server, project, 400, "POST", "/virtual-networks", '{"virtual-network": {')


def test_body_without_type_wrapper(server, project):
    body = _vn_body(project)["virtual-network"]
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)
    _assert_name_free(server, "virtual-network", body["fq_name"])


def test_body_with_wrong_type_wrapper(server, project):
    body = {"project": _vn_body(project)["virtual-network"]}
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)


def test_unknown_type_urls(server, project):
    _assert_refused(server, project, 404, "GET", "/no-such-things", None)
    _assert_refused(server, project, 404, "POST", "/no-such-things", {"no-such-thing": {}})
    _assert_refused(server, project, 404, "GET", f"/no-such-thing/{uuidlib.uuid4()}", None)


def test_unknown_type_in_fqname_to_id(server, project):
    resp = http_post(server, "/fqname-to-id", {"type": "no-such-thing", "fq_name": ["x"]})
    assert resp.status_code in (400, 404), resp.text


# -- wrong field types ----------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"display_name": 5},
        {"virtual_network_network_id": "abc"},
        {"virtual_network_properties": "not-an-object"},
        {"virtual_network_properties": {"forwarding_mode": 7}},
        {"is_shared": "yes"},
        {"fq_name": "default-domain:x:y"},
        {"network_ipam_refs": "not-a-list"},
    ],
    ids=lambda f: "-".join(f"{k}={v!r}" for k, v in f.items()),
)
def test_create_with_wrong_field_type(server, project, fields):
    body = _vn_body(project, **fields)
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)


def test_update_with_wrong_field_type_changes_nothing(server, api, project):
    vn = make_vn(api, project, None)
    before = read_raw(server, "virtual-network", vn.uuid)
    for fields in ({"display_name": 5}, {"virtual_network_properties": "x"}):
        body = {"virtual-network": {"uuid": vn.uuid, **fields}}
        _assert_refused(server, project, 400, "PUT", f"/virtual-network/{vn.uuid}", body)
    assert read_raw(server, "virtual-network", vn.uuid) == before


def test_update_cannot_change_fq_name(server, api, project):
    vn = make_vn(api, project, None)
    body = {"virtual-network": {"uuid": vn.uuid, "fq_name": project.get_fq_name() + ["renamed"]}}
    resp = http_put(server, f"/virtual-network/{vn.uuid}", body)
    assert resp.status_code in (400, 409), resp.text
    assert read_raw(server, "virtual-network", vn.uuid)["fq_name"] == vn.get_fq_name()


# -- uuids ----------------------------------------------------------------------------------
def test_unknown_uuid_in_url_is_not_found(server, project):
    for method in ("GET", "PUT", "DELETE"):
        body = {"virtual-network": {"display_name": "x"}} if method == "PUT" else None
        _assert_refused(server, project, 404, method, f"/virtual-network/{uuidlib.uuid4()}", body)


def test_malformed_uuid_in_url_is_refused(server, project):
    # tf-facts does not pin this one (TF itself answers 404: no such id).
    path = "/virtual-network/not-a-uuid"
    for resp in (
        http_get(server, path),
        http_put(server, path, {"virtual-network": {"display_name": "x"}}),
        http_delete(server, path),
    ):
        assert resp.status_code in (400, 404), f"{resp.request.method}: {resp.status_code} {resp.text}"


def test_bad_uuid_in_create_body_is_bad_request(server, project):
    for bad in ("not-a-uuid", str(uuidlib.uuid4()).upper(), "1234"):
        body = _vn_body(project, uuid=bad)
        _assert_refused(server, project, 400, "POST", "/virtual-networks", body)
        _assert_name_free(server, "virtual-network", body["virtual-network"]["fq_name"])


def test_given_uuid_is_used_and_cannot_be_reused(server, api, project):
    chosen = str(uuidlib.uuid4())
    resp = http_post(server, "/virtual-networks", _vn_body(project, uuid=chosen))
    assert resp.status_code == 200, resp.text
    created = resp.json()["virtual-network"]
    assert created["uuid"] == chosen
    assert created["parent_uuid"] == project.uuid
    assert api.virtual_network_read(id=chosen).uuid == chosen
    # Same uuid, other name: 409.
    _assert_refused(server, project, 409, "POST", "/virtual-networks", _vn_body(project, uuid=chosen))


def test_wrong_type_for_existing_uuid(server, api, project):
    vn = make_vn(api, project, None)
    resp = http_get(server, f"/project/{vn.uuid}")
    assert resp.status_code == 404, resp.text


# -- names and parents ----------------------------------------------------------------------
def test_name_with_colon_is_bad_request(server, project):
    body = _vn_body(project, name=f"a:{unique('b')}")
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)


def test_missing_parent_is_bad_request(server, project):
    body = {
        "virtual-network": {
            "fq_name": ["default-domain", unique("no-such-project"), unique("vn")],
            "parent_type": "project",
        }
    }
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)


def test_fq_name_not_matching_parent_type_is_bad_request(server, project):
    # A virtual-network directly under a domain is not a valid parent.
    body = {"virtual-network": {"fq_name": ["default-domain", unique("vn")], "parent_type": "domain"}}
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)


# -- subnets ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "prefix,prefix_len",
    [("10.1.1.300", 24), ("10.1.1.0", 33), ("not-an-ip", 24), ("10.1.1.0", -1)],
)
def test_bad_cidr_is_bad_request(server, api, project, prefix, prefix_len):
    body = _vn_body(project, network_ipam_refs=_subnet_ref(api, prefix, prefix_len))
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)
    _assert_name_free(server, "virtual-network", body["virtual-network"]["fq_name"])


def test_gateway_outside_subnet_is_bad_request(server, api, project):
    body = _vn_body(
        project, network_ipam_refs=_subnet_ref(api, "10.1.1.0", 24, default_gateway="10.9.9.1")
    )
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)


def test_bad_cidr_through_the_client(api, project):
    vn = VirtualNetwork(unique("vn"), parent_obj=project)
    vn.add_network_ipam(
        default_ipam(api), VnSubnetsType([IpamSubnetType(subnet=SubnetType("10.1.1.0", 40))])
    )
    with pytest.raises(BadRequest):
        api.virtual_network_create(vn)


# -- refs ---------------------------------------------------------------------------------------
def test_ref_to_missing_object_is_refused(server, project):
    body = _vn_body(
        project,
        network_ipam_refs=[
            {"to": ["default-domain", "default-project", unique("no-ipam")], "attr": None}
        ],
    )
    # Unknown reference in a create is a bad request (not a 404 of the URL).
    _assert_refused(server, project, 400, "POST", "/virtual-networks", body)
    _assert_name_free(server, "virtual-network", body["virtual-network"]["fq_name"])


def test_ref_update_bad_operation(server, api, project):
    vn = make_vn(api, project, None)
    body = {
        "type": "virtual-network",
        "uuid": vn.uuid,
        "ref-type": "network-ipam",
        "ref-uuid": default_ipam(api).uuid,
        "ref-fq-name": None,
        "operation": "FROB",
        "attr": None,
    }
    _assert_refused(server, project, 400, "POST", "/ref-update", body)
    assert "network_ipam_refs" not in read_raw(server, "virtual-network", vn.uuid)
