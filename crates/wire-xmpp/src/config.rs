//! Config delivery, IFMap over XMPP (tf-facts §2.6).
//!
//! ```text
//! <iq type="set" from="network-control@contrailsystems.com" to="<agent>/config">
//!   <config>
//!     <update>
//!       <node type="virtual-network"><name>default-domain:admin:vn1</name> …properties… </node>
//!       <link><node type="virtual-network"><name>…</name></node><node type="network-ipam"><name>…</name></node>
//!             <metadata type="virtual-network-network-ipam"> … </metadata></link>
//!     </update>
//!     <delete> <node …/> / <link …/> </delete>
//!   </config></iq>
//! ```
//! Properties and metadata stay generic XML (hyphenated XSD form).  There is no end-of-config
//! marker; the agent uses an inactivity timer (caller's business).

use crate::element::{Element, Node};
use crate::error::{Result, XmppError};
use crate::stream::RESOURCE_CONFIG;
use crate::Envelope;

/// `update` or `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOpKind {
    /// `<update>`.
    Update,
    /// `<delete>`.
    Delete,
}

/// `<node type="…"><name>…</name>` without properties (used inside links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNodeRef {
    /// Node type (`virtual-network`).
    pub type_name: String,
    /// Colon-joined fq name.
    pub name: String,
}

/// A config node with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNode {
    /// Type and name.
    pub id: ConfigNodeRef,
    /// Property elements in order (`<id-perms>`, `<virtual-network-properties>`, …).
    pub props: Vec<Element>,
}

/// `<metadata type="…">…</metadata>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMetadata {
    /// XSD link name (`virtual-network-network-ipam`).
    pub type_name: String,
    /// Content (elements and text).
    pub content: Vec<Node>,
}

/// A link between two nodes, optionally with metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLink {
    /// First node.
    pub left: ConfigNodeRef,
    /// Second node.
    pub right: ConfigNodeRef,
    /// Link metadata.
    pub metadata: Option<ConfigMetadata>,
}

/// A node or a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigItem {
    /// `<node>`.
    Node(ConfigNode),
    /// `<link>`.
    Link(ConfigLink),
}

/// One `<update>` or `<delete>` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOp {
    /// Update or delete.
    pub kind: ConfigOpKind,
    /// Nodes and links in order.
    pub items: Vec<ConfigItem>,
}

/// `<iq type="set"><config>…</config></iq>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIq {
    /// from / to / id.
    pub env: Envelope,
    /// Blocks in order.
    pub ops: Vec<ConfigOp>,
}

impl ConfigNodeRef {
    fn from_element(e: &Element) -> Result<Self> {
        Ok(ConfigNodeRef {
            type_name: e.req_attr("type")?.to_string(),
            name: e.req_child("name")?.text(),
        })
    }

    fn to_element(&self) -> Element {
        Element::new("node")
            .with_attr("type", self.type_name.clone())
            .with_child(Element::leaf("name", self.name.clone()))
    }
}

impl ConfigItem {
    fn from_element(e: &Element) -> Result<Option<Self>> {
        match e.name.as_str() {
            "node" => {
                let id = ConfigNodeRef::from_element(e)?;
                let mut seen_name = false;
                let props = e
                    .elements()
                    .filter(|c| {
                        if c.name == "name" && !seen_name {
                            seen_name = true;
                            return false;
                        }
                        true
                    })
                    .cloned()
                    .collect();
                Ok(Some(ConfigItem::Node(ConfigNode { id, props })))
            }
            "link" => {
                let mut nodes = e.children_named("node");
                let (Some(l), Some(r)) = (nodes.next(), nodes.next()) else {
                    return Err(XmppError::missing("link", "node (two of them)"));
                };
                let metadata = match e.child("metadata") {
                    Some(m) => Some(ConfigMetadata {
                        type_name: m.req_attr("type")?.to_string(),
                        content: m.children.clone(),
                    }),
                    None => None,
                };
                Ok(Some(ConfigItem::Link(ConfigLink {
                    left: ConfigNodeRef::from_element(l)?,
                    right: ConfigNodeRef::from_element(r)?,
                    metadata,
                })))
            }
            _ => Ok(None),
        }
    }

    fn to_element(&self) -> Element {
        match self {
            ConfigItem::Node(n) => {
                let mut e = n.id.to_element();
                e.children
                    .extend(n.props.iter().cloned().map(Node::Element));
                e
            }
            ConfigItem::Link(l) => {
                let mut e = Element::new("link")
                    .with_child(l.left.to_element())
                    .with_child(l.right.to_element());
                if let Some(m) = &l.metadata {
                    let mut md = Element::new("metadata").with_attr("type", m.type_name.clone());
                    md.children = m.content.clone();
                    e = e.with_child(md);
                }
                e
            }
        }
    }
}

impl ConfigIq {
    /// A control-node → agent config message (`to="<agent>/config"`).
    pub fn to_agent(agent: &str, ops: Vec<ConfigOp>) -> Self {
        ConfigIq {
            env: Envelope::control_to_agent(agent, RESOURCE_CONFIG),
            ops,
        }
    }

    /// Parse.
    pub fn from_element(e: &Element) -> Result<Self> {
        if e.name != "iq" {
            return Err(XmppError::UnexpectedElement {
                expected: "<iq>".into(),
                found: e.name.clone(),
            });
        }
        let cfg = e.req_child("config")?;
        let mut ops = Vec::new();
        for block in cfg.elements() {
            let kind = match block.name.as_str() {
                "update" => ConfigOpKind::Update,
                "delete" => ConfigOpKind::Delete,
                _ => continue,
            };
            let mut items = Vec::new();
            for c in block.elements() {
                if let Some(item) = ConfigItem::from_element(c)? {
                    items.push(item);
                }
            }
            ops.push(ConfigOp { kind, items });
        }
        Ok(ConfigIq {
            env: Envelope::read(e),
            ops,
        })
    }

    /// Emit.
    pub fn to_element(&self) -> Element {
        let mut cfg = Element::new("config");
        for op in &self.ops {
            let mut b = Element::new(match op.kind {
                ConfigOpKind::Update => "update",
                ConfigOpKind::Delete => "delete",
            });
            for it in &op.items {
                b = b.with_child(it.to_element());
            }
            cfg = cfg.with_child(b);
        }
        self.env.element("iq", Some("set")).with_child(cfg)
    }
}
