#!/usr/bin/env python3
"""Print the Filament schema (schema/filament.schema) for a chosen set of resource
types, reading the type metadata that the installed `vnc_api` client carries.

This is a one-off import aid: the output is our own declarative format and the
committed schema file is the source of truth (edit it by hand afterwards).
Usage: python tools/import-vnc-schema.py > crates/schema/filament.schema
"""
import inspect
import sys

import vnc_api.gen.resource_common as rc
import vnc_api.gen.resource_xsd as rx

RESOURCES = """
config-root global-system-config global-vrouter-config domain project namespace
virtual-network network-ipam routing-instance route-target access-control-list
virtual-machine virtual-machine-interface instance-ip floating-ip-pool floating-ip
network-policy security-group virtual-router bgp-router logical-router
service-template service-instance port-tuple service-health-check
tag tag-type application-policy-set firewall-policy firewall-rule service-group
address-group virtual-DNS virtual-DNS-record loadbalancer loadbalancer-listener
loadbalancer-pool loadbalancer-member loadbalancer-healthmonitor virtual-ip
bgp-as-a-service route-table interface-route-table routing-policy alias-ip-pool alias-ip
api-access-list policy-management global-qos-config qos-config forwarding-class
fabric physical-router physical-interface logical-interface security-logging-object
route-aggregate bgpvpn
""".split()

SIMPLE = {"string": "string", "integer": "int", "boolean": "bool", "unsignedLong": "u64",
          "unsignedInt": "int", "dateTime": "time", "time": "time", "double": "float"}

classes = {c.resource_type: c for _, c in inspect.getmembers(rc, inspect.isclass)
           if hasattr(c, "resource_type")}
xsd = {n: c for n, c in inspect.getmembers(rx, inspect.isclass) if hasattr(c, "attr_fields")}
needed = []


def need(t):
    if t not in needed:
        needed.append(t)
        for f in xsd[t].attr_fields:
            v = xsd[t].attr_field_type_vals[f]
            if v["is_complex"]:
                need(v["attr_type"])


def texpr(attr_type, is_complex, restr_type, restr):
    if is_complex:
        need(attr_type)
        return attr_type
    base = SIMPLE[attr_type]
    if restr_type == "enum" and restr:
        return "%s{%s}" % (base, ",".join(str(r) for r in restr))
    if restr_type == "range" and restr:
        return "%s[%s..%s]" % (base, restr[0], restr[1])
    return base


out = ["# Filament data model: resource types, their properties, references and parents,",
       "# and the structured property types. See crates/schema/README.md for the format.", "",
       "# Properties every resource has.",
       "common",
       "  prop id_perms IdPermsType system",
       "  prop perms2 PermType2 system",
       "  map annotations KeyValuePairs wrapper=key_value_pair key=key",
       "  prop display_name string", ""]
have = set(RESOURCES)
for name in RESOURCES:
    c = classes[name]
    out.append("type %s" % name)
    for p in c.parent_types:
        if p in have and name != "config-root":
            out.append("  parent %s" % p)
    for f in sorted(c.prop_fields):
        if f in ("id_perms", "perms2", "annotations", "display_name"):
            continue
        v = c.prop_field_types[f]
        t = texpr(v["xsd_type"], v["is_complex"], v["restriction_type"], v["restrictions"])
        flags = []
        if v["required"] == "system-only":
            flags.append("system")
        kind = "prop"
        if f in c.prop_list_fields:
            kind = "list"
            flags.append("wrapper=%s" % xsd[v["xsd_type"]].attr_fields[0])
        if f in c.prop_map_fields:
            kind = "map"
            flags.append("wrapper=%s" % xsd[v["xsd_type"]].attr_fields[0])
            flags.append("key=%s" % c.prop_map_field_key_names[f])
        out.append("  %s %s %s%s" % (kind, f, t, "".join(" " + x for x in flags)))
    for f in sorted(c.ref_fields):
        target, attr, _weak = c.ref_field_types[f][:3]
        if target not in have:
            continue
        a = ""
        if attr != "None":
            need(attr)
            a = " " + attr
        out.append("  ref %s %s%s" % (f[: -len("_refs")], target, a))
    out.append("")

for base in ("IdPermsType", "PermType2", "KeyValuePairs"):
    need(base)
for t in needed:
    c = xsd[t]
    out.append("struct %s" % t)
    for f in c.attr_fields:
        v = c.attr_field_type_vals[f]
        e = texpr(v["attr_type"], v["is_complex"], v["restriction_type"], v["restrictions"])
        if v["is_array"]:
            e = "[%s]" % e
        out.append("  %s %s" % (f, e))
    out.append("")
sys.stdout.write("\n".join(out))
