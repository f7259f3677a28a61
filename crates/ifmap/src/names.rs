//! XSD names of properties, struct fields and links (tf-facts §2.6).
//!
//! TF's IFMap XML uses the names of `vnc_cfg.xsd`: a JSON field `foo_bar` is the element
//! `foo-bar`, a reference `<from>` → `<stem>_refs` is the link `<from>-<stem>`, and a parent
//! `<parent>` of `<child>` is the link `<parent>-<child>`.  The few names that break those
//! rules are listed here; they were read from the real client's generated metadata
//! (`vnc_api/gen/resource_common.py` `ref_field_metas` / `children_field_metas`, and the XML
//! writers of `vnc_api/gen/resource_xsd.py`).

use std::collections::HashMap;
use std::sync::OnceLock;

use filament_schema::{index, RefDef, ResourceDef};

/// `(from type, ref field) -> link name` where it is not `<from>-<stem>`.
const REF_LINKS: &[(&str, &str, &str)] = &[
    ("virtual-DNS-record", "tag_refs", "virtual-DNS-record-tag"),
    (
        "logical-router",
        "virtual_machine_interface_refs",
        "logical-router-interface",
    ),
    (
        "logical-router",
        "route_target_refs",
        "logical-router-target",
    ),
    ("logical-router", "bgpvpn_refs", "bgpvpn-router"),
    (
        "service-instance",
        "instance_ip_refs",
        "service-instance-shared-ip",
    ),
    (
        "bgp-as-a-service",
        "control_node_zone_refs",
        "bgpaas-control-node-zone",
    ),
    (
        "bgp-as-a-service",
        "virtual_machine_interface_refs",
        "bgpaas-virtual-machine-interface",
    ),
    (
        "bgp-as-a-service",
        "service_health_check_refs",
        "bgpaas-health-check",
    ),
    ("bgp-as-a-service", "bgp_router_refs", "bgpaas-bgp-router"),
    (
        "virtual-machine-interface",
        "virtual_machine_interface_refs",
        "virtual-machine-interface-sub-interface",
    ),
    (
        "virtual-machine-interface",
        "port_tuple_refs",
        "port-tuple-interface",
    ),
    (
        "virtual-machine-interface",
        "service_health_check_refs",
        "service-port-health-check",
    ),
    (
        "virtual-machine-interface",
        "interface_route_table_refs",
        "virtual-machine-interface-route-table",
    ),
    ("virtual-DNS", "tag_refs", "virtual-DNS-tag"),
    (
        "project",
        "application_policy_set_refs",
        "project-default-application-policy-set",
    ),
    ("bgp-router", "bgp_router_refs", "bgp-peering"),
    (
        "virtual-network",
        "virtual_network_refs",
        "virtual-network-provider-network",
    ),
    ("virtual-network", "bgpvpn_refs", "bgpvpn-network"),
    (
        "service-appliance",
        "physical_interface_refs",
        "service-appliance-interface",
    ),
    (
        "physical-interface",
        "physical_interface_refs",
        "physical-interface-connection",
    ),
    ("routing-instance", "routing_instance_refs", "connection"),
    ("routing-instance", "route_target_refs", "instance-target"),
];

/// `(parent, child) -> link name` where it is not `<parent>-<child>`.
const PARENT_LINKS: &[(&str, &str, &str)] = &[
    (
        "virtual-DNS",
        "virtual-DNS-record",
        "virtual-DNS-virtual-DNS-record",
    ),
    ("project", "bgp-as-a-service", "project-bgpaas"),
    ("project", "tag", "project-scoped-tag"),
    ("routing-instance", "bgp-router", "instance-bgp-router"),
];

/// `(struct, field) -> element` where it is not the hyphenated field name.
const FIELD_NAMES: &[(&str, &str, &str)] = &[
    ("AlarmAndList", "and_list", "and_list"),
    ("AlarmOperand2", "json_value", "json_value"),
    ("AlarmOperand2", "uve_attribute", "uve_attribute"),
    ("AlarmOrList", "or_list", "or_list"),
    ("AsnRangeType", "asn_max", "asn_max"),
    ("AsnRangeType", "asn_min", "asn_min"),
    ("CliDiffInfoType", "config_changes", "config_changes"),
    ("DnsmasqLeaseParameters", "client_id", "client_id"),
    (
        "DnsmasqLeaseParameters",
        "lease_expiry_time",
        "lease_expiry_time",
    ),
    ("ESXIProperties", "dvs_id", "dvs_id"),
    ("ESXIProperties", "dvs_name", "dvs_name"),
    ("IpamSubnetType", "addr_from_start", "addr_from_start"),
    (
        "VirtualNetworkRoutedPropertiesType",
        "shared_across_all_lrs",
        "shared_across_all_lrs",
    ),
];

/// `(resource, prop) -> element` where it is not the hyphenated property name.
const PROP_NAMES: &[(&str, &str, &str)] = &[("node", "node_type", "node_type")];

/// What a link name means.
#[derive(Debug, Clone, Copy)]
pub enum LinkDef {
    /// A reference `from.<field>` → `to`.
    Ref {
        /// Referring type.
        from: &'static ResourceDef,
        /// The reference field.
        def: &'static RefDef,
    },
    /// `parent` has child `child`.
    Parent {
        /// Parent type.
        parent: &'static ResourceDef,
        /// Child type.
        child: &'static ResourceDef,
    },
}

fn hyphen(s: &str) -> String {
    s.replace('_', "-")
}

/// XSD element name of a property.
pub fn prop_element(ty: &str, prop: &str) -> String {
    PROP_NAMES
        .iter()
        .find(|(t, p, _)| *t == ty && *p == prop)
        .map_or_else(|| hyphen(prop), |(_, _, x)| (*x).to_string())
}

/// XSD element name of a struct field.
pub fn field_element(st: &str, field: &str) -> String {
    FIELD_NAMES
        .iter()
        .find(|(s, f, _)| *s == st && *f == field)
        .map_or_else(|| hyphen(field), |(_, _, x)| (*x).to_string())
}

/// Link (metadata) name of a reference field.
pub fn ref_link(from: &str, field: &str) -> String {
    REF_LINKS
        .iter()
        .find(|(t, f, _)| *t == from && *f == field)
        .map_or_else(
            || format!("{from}-{}", hyphen(field.trim_end_matches("_refs"))),
            |(_, _, x)| (*x).to_string(),
        )
}

/// Link (metadata) name of a parent → child edge.
pub fn parent_link(parent: &str, child: &str) -> String {
    PARENT_LINKS
        .iter()
        .find(|(p, c, _)| *p == parent && *c == child)
        .map_or_else(|| format!("{parent}-{child}"), |(_, _, x)| (*x).to_string())
}

/// Every link name with what it can mean (a few names are shared by several type pairs).
pub fn links() -> &'static HashMap<String, Vec<LinkDef>> {
    static LINKS: OnceLock<HashMap<String, Vec<LinkDef>>> = OnceLock::new();
    LINKS.get_or_init(|| {
        let ix = index();
        let mut m: HashMap<String, Vec<LinkDef>> = HashMap::new();
        for r in ix.resources() {
            for d in r.refs {
                m.entry(ref_link(r.name, d.field))
                    .or_default()
                    .push(LinkDef::Ref { from: r, def: d });
            }
            for p in r.parents {
                if let Some(pr) = ix.resource(p) {
                    m.entry(parent_link(p, r.name))
                        .or_default()
                        .push(LinkDef::Parent {
                            parent: pr,
                            child: r,
                        });
                }
            }
        }
        m
    })
}

/// Property of `ty` by element name, with its JSON name.
pub fn prop_by_element(
    ty: &'static ResourceDef,
    element: &str,
) -> Option<&'static filament_schema::PropDef> {
    ty.all_props()
        .find(|p| prop_element(ty.name, p.name) == element)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_names() {
        assert_eq!(
            ref_link("virtual-network", "network_ipam_refs"),
            "virtual-network-network-ipam"
        );
        assert_eq!(
            ref_link("routing-instance", "route_target_refs"),
            "instance-target"
        );
        assert_eq!(
            ref_link("virtual-machine-interface", "routing_instance_refs"),
            "virtual-machine-interface-routing-instance"
        );
        assert_eq!(
            parent_link("project", "virtual-network"),
            "project-virtual-network"
        );
        assert_eq!(
            prop_element("virtual-network", "virtual_network_properties"),
            "virtual-network-properties"
        );
        assert_eq!(field_element("IdPermsType", "uuid"), "uuid");
        assert_eq!(field_element("UuidType", "uuid_mslong"), "uuid-mslong");
        assert_eq!(
            field_element("IpamSubnetType", "addr_from_start"),
            "addr_from_start"
        );
        assert!(links().contains_key("connection"));
    }
}
