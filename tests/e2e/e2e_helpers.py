"""Small helpers shared by the end-to-end tests (object builders, raw HTTP)."""

import ipaddress
import json
import uuid as uuidlib

import requests
from vnc_api.utils import _obj_serializer_all
from vnc_api.vnc_api import (
    InstanceIp,
    IpamSubnetType,
    Project,
    SubnetType,
    VirtualMachineInterface,
    VirtualNetwork,
    VnSubnetsType,
)

DEFAULT_DOMAIN = ["default-domain"]
DEFAULT_PROJECT = ["default-domain", "default-project"]
DEFAULT_IPAM = ["default-domain", "default-project", "default-network-ipam"]
JSON_HEADERS = {"Content-Type": "application/json; charset=\"UTF-8\""}


def unique(prefix: str) -> str:
    """A name that no other test uses."""
    return f"{prefix}-{uuidlib.uuid4().hex[:10]}"


def is_uuid(value) -> bool:
    """True for a canonical lower-case 8-4-4-4-12 uuid string."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuidlib.UUID(value)) == value
    except ValueError:
        return False


def make_project(api, name=None):
    domain = api.domain_read(fq_name=DEFAULT_DOMAIN)
    project = Project(name or unique("proj"), parent_obj=domain)
    api.project_create(project)
    return project


def default_ipam(api):
    return api.network_ipam_read(fq_name=DEFAULT_IPAM)


def make_vn(api, project, cidr="10.1.1.0/24", gateway=None, name=None, ipam=None):
    """Create a VN under ``project``; with ``cidr`` it gets one IPAM subnet on
    the default-network-ipam (or ``ipam``).  Returns the object read back."""
    vn = VirtualNetwork(name or unique("vn"), parent_obj=project)
    if cidr is not None:
        net = ipaddress.ip_network(cidr)
        subnet = IpamSubnetType(
            subnet=SubnetType(str(net.network_address), net.prefixlen),
            default_gateway=gateway,
        )
        vn.add_network_ipam(ipam or default_ipam(api), VnSubnetsType([subnet]))
    api.virtual_network_create(vn)
    return api.virtual_network_read(id=vn.uuid)


def make_vmi(api, project, vn, name=None):
    vmi = VirtualMachineInterface(name or unique("vmi"), parent_obj=project)
    vmi.add_virtual_network(vn)
    api.virtual_machine_interface_create(vmi)
    return api.virtual_machine_interface_read(id=vmi.uuid)


def make_iip(api, vn, vmi=None, address=None, name=None):
    """Create an instance-ip on ``vn`` (optionally bound to ``vmi``, optionally
    requesting ``address``) and return it read back from the server."""
    iip = InstanceIp(name or unique("iip"))
    if address is not None:
        iip.set_instance_ip_address(address)
    iip.add_virtual_network(vn)
    if vmi is not None:
        iip.add_virtual_machine_interface(vmi)
    api.instance_ip_create(iip)
    return api.instance_ip_read(id=iip.uuid)


def as_dict(value):
    """Plain JSON form of a vnc_api object (the client turns typed ref attrs,
    e.g. VnSubnetsType, into objects when it reads)."""
    return json.loads(json.dumps(value, default=_obj_serializer_all))


def ipam_subnet(vn):
    """The first IpamSubnetType (as a dict) of a VN read from the server."""
    refs = vn.get_network_ipam_refs()
    assert refs, f"VN {vn.get_fq_name()} has no network_ipam_refs"
    attr = as_dict(refs[0]["attr"])
    assert attr and attr.get("ipam_subnets"), f"ref has no ipam_subnets: {refs[0]}"
    return attr["ipam_subnets"][0]


def ref_uuids(refs):
    return sorted(r["uuid"] for r in (refs or []))


def mac_for_uuid(uuid_str: str) -> str:
    """TF's MAC allocation rule for a VMI without a given MAC."""
    u = uuid_str
    return "02:" + ":".join([u[0:2], u[2:4], u[4:6], u[6:8], u[9:11]])


# --------------------------------------------------------------------------
# Raw HTTP (for what the client hides: status codes, headers, bad input).
# --------------------------------------------------------------------------
def http_get(server, path, **kwargs):
    return requests.get(server.url(path), timeout=30, **kwargs)


def http_post(server, path, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(server.url(path), data=data, headers=JSON_HEADERS, timeout=30, **kwargs)


def http_put(server, path, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.put(server.url(path), data=data, headers=JSON_HEADERS, timeout=30, **kwargs)


def http_delete(server, path, **kwargs):
    return requests.delete(server.url(path), timeout=30, **kwargs)


def count_of(server, res_type: str, **params) -> int:
    """Number of objects of ``res_type`` (hyphenated), via ``?count=True``."""
    query = {"count": "True", "detail": "False", "shared": "False", **params}
    resp = http_get(server, f"/{res_type}s", params=query)
    assert resp.status_code == 200, f"count of {res_type}: {resp.status_code} {resp.text}"
    return resp.json()[f"{res_type}s"]["count"]


def read_raw(server, res_type: str, obj_uuid: str, **params):
    """GET /<type>/<uuid> with no exclude flags: props, refs, back-refs and
    children, as the server returns them."""
    resp = http_get(server, f"/{res_type}/{obj_uuid}", params=params)
    assert resp.status_code == 200, f"GET {res_type}/{obj_uuid}: {resp.status_code} {resp.text}"
    return resp.json()[res_type]
