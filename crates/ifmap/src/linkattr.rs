//! References with attributes as TF puts them on the wire: a link-attr node between the two
//! ends (tf-facts §2.6; TF: `ifmap_server_table.cc` `IFMapServerTable::LinkAttrKey`,
//! contrail-generateDS `ifmap_parser.py` `IFMapGenLinkAttr`).
//!
//! ```text
//!  ours inside the control node          what TF sends and its agent reads
//!  vn ──link(md: vn-network-ipam,  ──>   <node type="virtual-network-network-ipam">
//!  │      content: VnSubnetsType)          <name>attr(<lesser name>,<greater name>)</name>
//!  ipam                                     <value>…VnSubnetsType…</value></node>
//!                                         <link> vn ↔ attr node   (metadata type = link name)
//!                                         <link> attr node ↔ ipam (metadata type = link name)
//! ```
//! A TF agent never reads a link's metadata content (`ifmap_agent_parser.cc`
//! `IFMapAgentParser::LinkParse` keeps only its type); it finds a reference's attribute as
//! the data of the node between the ends (for example `vn.cc` walks from a network to its
//! `virtual-network-network-ipam` neighbours for the subnets, and the VMI's routing
//! instance comes the same way through `virtual-machine-interface-routing-instance`).  So
//! every reference whose schema type has an attribute is sent this way, attribute or not,
//! as TF's server does for every link-attr metadata type.
//!
//! The control node keeps one link per reference (its subset diff works on those) and
//! [`to_tf_wire`] rewrites each message just before it is sent; [`crate::IfmapGraph`]
//! folds the node and its two links back into one reference.

use filament_schema::{RefDef, ResourceDef};
use filament_wire_xmpp::{
    ConfigItem, ConfigLink, ConfigMetadata, ConfigNode, ConfigNodeRef, ConfigOp, ConfigOpKind,
    Element,
};

use crate::names::{links, LinkDef};

/// The element of a link-attr node that carries the attribute.
pub const ATTR_VALUE: &str = "value";

/// The reference a link-attr metadata type stands for, when its schema type carries an
/// attribute: `(referring type, reference, attribute struct index)`.
pub fn attr_link_def(name: &str) -> Option<(&'static ResourceDef, &'static RefDef, usize)> {
    links().get(name)?.iter().find_map(|d| match *d {
        LinkDef::Ref { from, def } => def.attr.map(|i| (from, def, i)),
        LinkDef::Parent { .. } => None,
    })
}

/// TF's name of the node between `a` and `b`: `attr(<lesser>,<greater>)` by name
/// (`LinkAttrKey` orders the ends with `IFMapNode::IsLess`, a name comparison).
pub fn attr_node_name(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("attr({x},{y})")
}

/// A link of our internal shape that TF sends as a link-attr node: its metadata type is a
/// reference with an attribute type, and neither end is already such a node.
fn as_attr_link(l: &ConfigLink) -> Option<&ConfigMetadata> {
    let md = l.metadata.as_ref()?;
    attr_link_def(&md.type_name)?;
    let plain = |r: &ConfigNodeRef| r.type_name != md.type_name;
    (plain(&l.left) && plain(&l.right)).then_some(md)
}

/// Rewrite config messages from one link per reference to TF's shape: each reference with an
/// attribute type becomes its link-attr node (`<value>` holding the attribute) and two links,
/// `from ↔ node` and `node ↔ to`, in the position of the original link.  In an update the
/// node comes first; in a delete the links come first, then the node.
pub fn to_tf_wire(ops: Vec<ConfigOp>) -> Vec<ConfigOp> {
    ops.into_iter()
        .map(|op| {
            let mut items = Vec::with_capacity(op.items.len());
            for item in op.items {
                let ConfigItem::Link(l) = &item else {
                    items.push(item);
                    continue;
                };
                let Some(md) = as_attr_link(l) else {
                    items.push(item);
                    continue;
                };
                let mid = ConfigNodeRef {
                    type_name: md.type_name.clone(),
                    name: attr_node_name(&l.left.name, &l.right.name),
                };
                let half = |left: &ConfigNodeRef, right: &ConfigNodeRef| {
                    ConfigItem::Link(ConfigLink {
                        left: left.clone(),
                        right: right.clone(),
                        metadata: Some(ConfigMetadata {
                            type_name: md.type_name.clone(),
                            content: Vec::new(),
                        }),
                    })
                };
                let (to_mid, from_mid) = (half(&l.left, &mid), half(&mid, &l.right));
                match op.kind {
                    ConfigOpKind::Update => {
                        // no attribute, no <value> (it reads back as null, not as {})
                        let props = if md.content.is_empty() {
                            Vec::new()
                        } else {
                            let mut value = Element::new(ATTR_VALUE);
                            value.children = md.content.clone();
                            vec![value]
                        };
                        items.push(ConfigItem::Node(ConfigNode { id: mid, props }));
                        items.push(to_mid);
                        items.push(from_mid);
                    }
                    ConfigOpKind::Delete => {
                        items.push(to_mid);
                        items.push(from_mid);
                        items.push(ConfigItem::Node(ConfigNode {
                            id: mid,
                            props: Vec::new(),
                        }));
                    }
                }
            }
            ConfigOp {
                kind: op.kind,
                items,
            }
        })
        .collect()
}
