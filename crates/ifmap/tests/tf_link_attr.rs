//! References with attributes in TF's wire shape (link-attr node + two links), both ways:
//! what we send is what a TF agent reads (`ifmap_agent_parser.cc` keeps a link's type only,
//! `vn.cc` reads the subnets from the `virtual-network-network-ipam` node next to the
//! network), and what TF's control node sends is folded back into a reference.

#![allow(clippy::unwrap_used)]

use filament_ifmap::{attr_node_name, encode_ref_link, to_tf_wire, IfmapGraph};
use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOp, ConfigOpKind, Element, Stanza};
use serde_json::{json, Value};

const VN: &str = "default-domain:p:vn1";
const IPAM: &str = "default-domain:default-project:default-network-ipam";

fn fq(s: &str) -> Vec<String> {
    s.split(':').map(str::to_string).collect()
}

fn subnets() -> Value {
    json!({"ipam_subnets": [{"subnet": {"ip_prefix": "10.1.1.0", "ip_prefix_len": 24},
                              "default_gateway": "10.1.1.1"}]})
}

fn vn_ipam_ops(kind: ConfigOpKind, attr: &Value) -> Vec<ConfigOp> {
    let l = encode_ref_link(
        "virtual-network",
        &fq(VN),
        "network_ipam_refs",
        &fq(IPAM),
        attr,
    )
    .unwrap();
    vec![ConfigOp {
        kind,
        items: vec![ConfigItem::Link(l)],
    }]
}

/// Through XML text, as the agent gets it.
fn wire(ops: Vec<ConfigOp>) -> ConfigIq {
    let xml = ConfigIq::to_agent("host1", ops).to_element().to_xml();
    match Stanza::parse(&Element::parse(&xml).unwrap()).unwrap() {
        Stanza::Config(c) => c,
        other => panic!("{other:?}"),
    }
}

fn ipam_refs(g: &IfmapGraph) -> Option<Value> {
    g.object("virtual-network", VN)
        .and_then(|o| o.get("network_ipam_refs").cloned())
}

#[test]
fn a_reference_attribute_goes_out_as_a_link_attr_node() {
    let ops = to_tf_wire(vn_ipam_ops(ConfigOpKind::Update, &subnets()));
    let items = &ops[0].items;
    assert_eq!(items.len(), 3, "{items:?}");
    let ConfigItem::Node(n) = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(n.id.type_name, "virtual-network-network-ipam");
    // attr(<lesser>,<greater>) by name, as IFMapServerTable::LinkAttrKey
    assert_eq!(n.id.name, format!("attr({IPAM},{VN})"));
    assert_eq!(attr_node_name(VN, IPAM), n.id.name);
    let value = n.props.iter().find(|e| e.name == "value").unwrap();
    assert!(value.child("ipam-subnets").is_some(), "{value:?}");
    for (item, (l_ty, r_ty)) in items[1..].iter().zip([
        ("virtual-network", "virtual-network-network-ipam"),
        ("virtual-network-network-ipam", "network-ipam"),
    ]) {
        let ConfigItem::Link(l) = item else {
            panic!("{item:?}")
        };
        assert_eq!(
            (l.left.type_name.as_str(), l.right.type_name.as_str()),
            (l_ty, r_ty)
        );
        // the agent reads the type only; there is nothing in the metadata
        let md = l.metadata.as_ref().unwrap();
        assert_eq!(md.type_name, "virtual-network-network-ipam");
        assert!(md.content.is_empty());
    }
    // a reference without an attribute type stays one link
    let plain = encode_ref_link(
        "virtual-machine-interface",
        &fq("default-domain:p:vmi1"),
        "virtual_network_refs",
        &fq(VN),
        &Value::Null,
    )
    .unwrap();
    let ops = to_tf_wire(vec![ConfigOp {
        kind: ConfigOpKind::Update,
        items: vec![ConfigItem::Link(plain.clone())],
    }]);
    assert_eq!(ops[0].items, vec![ConfigItem::Link(plain)]);
}

#[test]
fn the_graph_folds_it_back_in_any_order_and_deletes_it() {
    let mut g = IfmapGraph::new();
    let vn_node = r#"<iq type="set"><config><update><node type="virtual-network"><name>default-domain:p:vn1</name></node></update></config></iq>"#;
    let Stanza::Config(c) = Stanza::parse_str(vn_node).unwrap() else {
        panic!()
    };
    g.apply(&c).unwrap();
    let up = wire(to_tf_wire(vn_ipam_ops(ConfigOpKind::Update, &subnets())));
    // links first, the node last: the reference appears with a null attribute, then gets it
    let mut items = up.ops[0].items.clone();
    items.rotate_left(1);
    let partial = ConfigIq {
        ops: vec![ConfigOp {
            kind: ConfigOpKind::Update,
            items: items[..2].to_vec(),
        }],
        ..up.clone()
    };
    g.apply(&partial).unwrap();
    let refs = ipam_refs(&g).unwrap();
    assert_eq!(refs[0]["to"], json!(fq(IPAM)));
    assert_eq!(refs[0]["attr"], Value::Null);
    let touched = g.apply(&up).unwrap();
    assert!(touched.contains(&("virtual-network".into(), VN.into())));
    assert_eq!(ipam_refs(&g).unwrap()[0]["attr"], subnets());
    // the API's JSON is what a one-link reference gives (the receiver sees no difference)
    let mut old = IfmapGraph::new();
    old.apply(&c).unwrap();
    old.apply(&wire(vn_ipam_ops(ConfigOpKind::Update, &subnets())))
        .unwrap();
    assert_eq!(
        old.object("virtual-network", VN),
        g.object("virtual-network", VN)
    );
    // a reference of an attribute type with a null attribute stays null (no <value>)
    let mut nulls = IfmapGraph::new();
    nulls.apply(&c).unwrap();
    nulls
        .apply(&wire(to_tf_wire(vn_ipam_ops(
            ConfigOpKind::Update,
            &Value::Null,
        ))))
        .unwrap();
    assert_eq!(ipam_refs(&nulls).unwrap()[0]["attr"], Value::Null);
    // deleted: links then node
    g.apply(&wire(to_tf_wire(vn_ipam_ops(
        ConfigOpKind::Delete,
        &Value::Null,
    ))))
    .unwrap();
    assert_eq!(ipam_refs(&g), None);
}

/// What TF's control node itself sends (hand-written in the shape of `IFMapNode::EncodeNode`
/// and the generated `EncodeUpdate` of a link-attr type): the node named `attr(…)` with
/// `<value>`, links whose node order is TF's, not ours.
#[test]
fn tf_s_own_message_decodes_to_the_reference() {
    let xml = format!(
        r#"<iq type="set" from="network-control@contrailsystems.com" to="host1/config">
<config>
<update>
<node type="virtual-network"><name>{VN}</name></node>
<node type="virtual-network-network-ipam"><name>attr({IPAM},{VN})</name>
<value><ipam-subnets><subnet><ip-prefix>10.1.1.0</ip-prefix><ip-prefix-len>24</ip-prefix-len></subnet>
<default-gateway>10.1.1.1</default-gateway></ipam-subnets></value></node>
<link><node type="virtual-network-network-ipam"><name>attr({IPAM},{VN})</name></node><node type="virtual-network"><name>{VN}</name></node><metadata type="virtual-network-network-ipam"/></link>
<link><node type="network-ipam"><name>{IPAM}</name></node><node type="virtual-network-network-ipam"><name>attr({IPAM},{VN})</name></node><metadata type="virtual-network-network-ipam"/></link>
</update>
</config>
</iq>"#
    );
    let Stanza::Config(c) = Stanza::parse_str(&xml).unwrap() else {
        panic!()
    };
    let mut g = IfmapGraph::new();
    g.apply(&c).unwrap();
    let refs = ipam_refs(&g).unwrap();
    assert_eq!(refs[0]["to"], json!(fq(IPAM)));
    assert_eq!(
        refs[0]["attr"]["ipam_subnets"][0]["subnet"]["ip_prefix"],
        "10.1.1.0"
    );
    assert_eq!(
        refs[0]["attr"]["ipam_subnets"][0]["default_gateway"],
        "10.1.1.1"
    );
    // the link-attr node is not an object of its own
    assert!(!g.contains(
        "virtual-network-network-ipam",
        &format!("attr({IPAM},{VN})")
    ));
}
