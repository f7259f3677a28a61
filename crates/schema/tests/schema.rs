//! Tests of the schema language, the generated metadata and codecs, and validation.

#![allow(clippy::unwrap_used)]

use filament_schema::{dsl, index, resources::VirtualNetwork, validate, Collection, Ty};
use serde_json::json;

#[test]
fn dsl_rejects_bad_lines_with_line_numbers() {
    let e = dsl::parse("type a\n  prop x nosuchtype\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.msg.contains("nosuchtype"), "{e}");
    let e = dsl::parse("type a\n  ref b missing-type\n").unwrap_err();
    assert!(e.msg.contains("undefined type missing-type"), "{e}");
    let e = dsl::parse("type a\n  prop x Undefined\n").unwrap_err();
    assert!(e.msg.contains("Undefined"), "{e}");
    let e = dsl::parse("struct S\n  f int\n  f string\n").unwrap_err();
    assert!(e.msg.contains("twice"), "{e}");
    let e = dsl::parse("type a\n  list x S wrapper=nope\nstruct S\n  items [int]\n").unwrap_err();
    assert!(e.msg.contains("wrapper nope"), "{e}");
    assert!(dsl::parse("bogus\n").is_err());
    assert!(dsl::parse("type a\n  prop n int[5..1]\n").is_err());
}

#[test]
fn dsl_parses_every_construct() {
    let s = dsl::parse(
        "common\n  prop display_name string\ntype p\n  parent config-root\ntype a\n  parent p\n  prop n int[0..10] system\n  prop e string{x,y}\n  list l S wrapper=items\n  map m S wrapper=items key=k\n  ref p p S\nstruct S\n  items [int]\n  k string\n",
    )
    .unwrap();
    assert_eq!(s.resources.len(), 2);
    let a = &s.resources[1];
    assert_eq!(a.parents, vec!["p"]);
    assert_eq!(a.props[0].ty, dsl::TypeExpr::Range(0, 10));
    assert!(a.props[0].system);
    assert_eq!(
        a.props[3].collection,
        dsl::Collection::Map {
            wrapper: "items".into(),
            key: "k".into()
        }
    );
    assert_eq!(a.refs[0].attr.as_deref(), Some("S"));
}

#[test]
fn every_type_the_issue_names_is_in_the_schema() {
    let required = "config-root global-system-config global-vrouter-config domain project \
        virtual-network network-ipam routing-instance route-target access-control-list \
        virtual-machine virtual-machine-interface instance-ip floating-ip-pool floating-ip \
        network-policy security-group virtual-router bgp-router logical-router service-template \
        service-instance port-tuple service-health-check tag tag-type application-policy-set \
        firewall-policy firewall-rule service-group address-group virtual-DNS virtual-DNS-record \
        loadbalancer loadbalancer-listener loadbalancer-pool loadbalancer-member \
        loadbalancer-healthmonitor virtual-ip bgp-as-a-service route-table interface-route-table \
        routing-policy alias-ip-pool alias-ip";
    for t in required.split_whitespace() {
        assert!(index().resource(t).is_some(), "missing type {t}");
    }
}

#[test]
fn graph_metadata_matches_the_client() {
    let ix = index();
    let vn = ix.resource("virtual-network").unwrap();
    assert_eq!(vn.plural, "virtual-networks");
    assert_eq!(vn.parents, &["project"]);
    let r = vn.ref_def("network_ipam_refs").unwrap();
    assert_eq!(r.target, "network-ipam");
    assert_eq!(
        ix.struct_def(r.attr.unwrap()).unwrap().name,
        "VnSubnetsType"
    );
    let iip = ix.resource("instance-ip").unwrap();
    assert!(iip.is_root_child());
    let proj = ix.resource("project").unwrap();
    assert!(proj.children().iter().any(|c| c.name == "virtual-network"));
    assert!(ix
        .back_refs_to("virtual-network")
        .iter()
        .any(
            |(src, f)| src.name == "virtual-machine-interface" && f.field == "virtual_network_refs"
        ));
    assert_eq!(
        ix.by_plural("bgp-as-a-services").unwrap().name,
        "bgp-as-a-service"
    );
    assert_eq!(
        ix.by_object("virtual_DNS_record").unwrap().name,
        "virtual-DNS-record"
    );
    let ann = vn.prop("annotations").unwrap();
    assert_eq!(
        ann.collection,
        Collection::Map {
            wrapper: "key_value_pair",
            key: "key"
        }
    );
}

#[test]
fn validation_reports_the_field_path() {
    let vn = index().resource("virtual-network").unwrap();
    let ty = vn.prop("virtual_network_properties").unwrap().ty;
    assert!(validate(
        &ty,
        &json!({"vxlan_network_identifier": 5, "forwarding_mode": "l2_l3"}),
        "virtual_network_properties"
    )
    .is_ok());
    let e = validate(
        &ty,
        &json!({"vxlan_network_identifier": "five"}),
        "virtual_network_properties",
    )
    .unwrap_err();
    assert_eq!(
        e.path,
        "virtual_network_properties.vxlan_network_identifier"
    );
    let e = validate(&ty, &json!({"forwarding_mode": "bogus"}), "p").unwrap_err();
    assert!(e.msg.contains("not one of"), "{e}");
    let e = validate(&ty, &json!({"no_such": 1}), "p").unwrap_err();
    assert!(e.msg.contains("unknown field"), "{e}");
    assert!(validate(&Ty::Range(0, 10), &json!(11), "x").is_err());
    assert!(validate(&Ty::Bool, &json!("true"), "x").is_err());
    assert!(validate(&Ty::List(&Ty::Int), &json!([1, null, 3]), "x").is_ok());
    assert!(validate(&Ty::List(&Ty::Int), &json!([1, "a"]), "x").is_err());
}

#[test]
fn generated_codec_reads_what_the_client_sends() {
    // Body captured from the real vnc_api client (tf-facts 1.10).
    let body = json!({"uuid": null, "fq_name": ["default-domain","admin","vn1"], "parent_type": "project",
      "network_ipam_refs": [{"to": ["default-domain","default-project","default-network-ipam"],
         "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.1.1.0", "ip_prefix_len": 24},
            "default_gateway": "10.1.1.1", "dns_server_address": null, "subnet_uuid": null, "enable_dhcp": true,
            "dns_nameservers": [], "allocation_pools": [], "addr_from_start": null, "dhcp_option_list": null,
            "host_routes": null, "subnet_name": null, "alloc_unit": 1, "created": null, "last_modified": null,
            "subscriber_tag": null, "vlan_tag": null, "dhcp_relay_server": []}], "host_routes": null},
         "uuid": "0b8b9b4e-2a43-4b1c-9d0e-2f4a4b3c2d1e"}]});
    let vn: VirtualNetwork = serde_json::from_value(body.clone()).unwrap();
    let sn = &vn.network_ipam_refs[0].attr.as_ref().unwrap().ipam_subnets[0];
    assert_eq!(sn.subnet.as_ref().unwrap().ip_prefix_len, Some(24));
    assert_eq!(sn.default_gateway.as_deref(), Some("10.1.1.1"));
    // Re-encoding keeps the meaning.
    let again: VirtualNetwork = serde_json::from_value(serde_json::to_value(&vn).unwrap()).unwrap();
    assert_eq!(vn, again);
    // And the table-driven validator accepts the same attribute.
    let vnd = index().resource("virtual-network").unwrap();
    let attr_ty = Ty::Struct(vnd.ref_def("network_ipam_refs").unwrap().attr.unwrap());
    validate(&attr_ty, &body["network_ipam_refs"][0]["attr"], "attr").unwrap();
}

#[test]
fn committed_schema_parses() {
    let text = include_str!("../filament.schema");
    let s = dsl::parse(text).unwrap();
    assert_eq!(s.resources.len(), index().resources().len());
    assert_eq!(s.structs.len(), index().structs().len());
}
