"""GET / (the homepage): the discovery document vnc_api parses before any call.

The client strips the homepage ``href`` from every link's ``href`` to get the
URI it will use, so the links must be absolute URLs under that ``href``
(tf-facts 1.3).
"""

import pytest
from vnc_api.vnc_api import InstanceIp, Project, VirtualNetwork

from e2e_helpers import http_get

# action link name -> URI (tf-facts 1.3)
ACTION_LINKS = {
    "name-to-id": "/fqname-to-id",
    "id-to-name": "/id-to-fqname",
    "ref-update": "/ref-update",
    "ref-relax-for-delete": "/ref-relax-for-delete",
    "prop-collection-get": "/prop-collection-get",
    "prop-collection-update": "/prop-collection-update",
    "useragent-keyvalue": "/useragent-kv",
    "list-bulk-collection": "/list-bulk-collection",
    "obj-perms": "/obj-perms",
    "chown": "/chown",
    "chmod": "/chmod",
}

RESOURCE_TYPES = [
    "domain",
    "project",
    "virtual-network",
    "network-ipam",
    "routing-instance",
    "virtual-machine-interface",
    "instance-ip",
    "network-policy",
    "global-system-config",
    "global-vrouter-config",
]


@pytest.fixture(scope="module")
def homepage(server):
    resp = http_get(server, "/")
    assert resp.status_code == 200, resp.text
    return resp.json()


def _links(homepage, rel):
    return {
        link["link"]["name"]: link["link"]
        for link in homepage["links"]
        if link["link"]["rel"] == rel
    }


def test_homepage_href_is_the_request_base_url(server, homepage):
    # No trailing slash: the client strips exactly this prefix from each link.
    assert homepage["href"] == f"http://127.0.0.1:{server.port}"


def test_every_link_has_rel_href_name_method_under_the_base(homepage):
    base = homepage["href"]
    assert homepage["links"], "homepage has no links"
    for entry in homepage["links"]:
        link = entry["link"]
        assert {"rel", "href", "name", "method"} <= set(link), link
        assert link["href"].startswith(base + "/"), link


def test_root_link(homepage):
    roots = [l["link"] for l in homepage["links"] if l["link"]["rel"] == "root"]
    assert len(roots) == 1, roots
    assert roots[0]["name"] == "config-root"
    assert roots[0]["href"] == homepage["href"] + "/config-root"


@pytest.mark.parametrize("res_type", RESOURCE_TYPES)
def test_collection_and_resource_base_links(homepage, res_type):
    base = homepage["href"]
    collections = _links(homepage, "collection")
    bases = _links(homepage, "resource-base")
    assert collections[res_type]["href"] == f"{base}/{res_type}s"
    assert bases[res_type]["href"] == f"{base}/{res_type}"


@pytest.mark.parametrize("name,uri", sorted(ACTION_LINKS.items()))
def test_action_link(homepage, name, uri):
    actions = _links(homepage, "action")
    assert name in actions, f"no action link named {name!r}; have {sorted(actions)}"
    assert actions[name]["href"] == homepage["href"] + uri


def test_client_parses_homepage_into_uris(api):
    # What the client derived from the homepage and will use for every call.
    assert VirtualNetwork.create_uri == "/virtual-networks"
    assert VirtualNetwork.resource_uri_base["virtual-network"] == "/virtual-network"
    assert Project.create_uri == "/projects"
    assert InstanceIp.resource_uri_base["instance-ip"] == "/instance-ip"
    for name, uri in ACTION_LINKS.items():
        assert api._action_uri[name] == uri, name


def test_homepage_is_json(server):
    resp = http_get(server, "/")
    assert resp.headers["Content-Type"].startswith("application/json")


def test_status_reports_the_api_role_and_follows_revisions(server, api):
    """`GET /status` is the role-status document `filament status` reads."""
    before = http_get(server, "/status")
    assert before.status_code == 200
    doc = before.json()
    assert doc["role"] == "api" and doc["state"] == "active", doc
    assert doc["objects"] > 0, "a fresh system has its bootstrap objects"
    api.project_create(Project(f"status-{doc['revision']}"))
    after = http_get(server, "/status").json()
    assert after["revision"] > doc["revision"], (doc, after)
    assert after["objects"] > doc["objects"], (doc, after)
