//! Routes pushed control node → agent (tf-facts §2.5) and End-of-RIB markers both ways
//! (tf-facts §2.3, §2.5, §2.7).
//!
//! ```text
//! <message from="network-control@contrailsystems.com" to="<agent>/bgp-peer">
//!   <event xmlns="http://jabber.org/protocol/pubsub">
//!     <items node="1/1/<vrf>">
//!       <item id="10.1.1.251/32"><entry>…</entry></item>
//!       <retract id="10.1.1.9/32" />
//!     </items></event></message>
//! ```
//! EoR: `<items node="0/0/EndOfRib"></items>` in the same envelope, agent → control or back.
//!
//! One message carries items or retracts, never both: TF's builder asserts it
//! (`xmpp_message_builder.cc` `BgpXmppMessage::AddRoute`: `assert(is_reachable_ ==
//! roattr->IsReachable())`), and a TF agent that finds any `<retract>` in a message handles
//! only the retracts and drops the items (`controller_peer.cc` `ReceiveV4V6Update`,
//! `ReceiveEvpnUpdate`).  [`RouteUpdate`] itself can hold both (it is a parser too); the
//! control node's writer keeps them apart.

use crate::element::{parse_num, Element};
use crate::error::{Result, XmppError};
use crate::route::Entry;
use crate::stream::RESOURCE_BGP;
use crate::{Envelope, NS_PUBSUB};

/// The End-of-RIB items node.
pub const EOR_NODE: &str = "0/0/EndOfRib";

/// `items node` = `<afi>/<xmpp safi>/<vrf>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsNode {
    /// AFI.
    pub afi: u16,
    /// XMPP SAFI.
    pub safi: u16,
    /// Routing instance.
    pub vrf: String,
}

impl ItemsNode {
    /// Parse `afi/safi/vrf`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut it = s.splitn(3, '/');
        let (Some(a), Some(sf), Some(vrf)) = (it.next(), it.next(), it.next()) else {
            return Err(XmppError::invalid("items node", s, "expected afi/safi/vrf"));
        };
        // canonical decimal only, so `00/0/EndOfRib` cannot masquerade as a normal node
        let digits = |t: &str| {
            !t.is_empty()
                && t.bytes().all(|b| b.is_ascii_digit())
                && (t == "0" || !t.starts_with('0'))
        };
        if !digits(a) || !digits(sf) {
            return Err(XmppError::invalid("items node", s, "bad afi/safi"));
        }
        Ok(ItemsNode {
            afi: parse_num("afi", a)?,
            safi: parse_num("safi", sf)?,
            vrf: vrf.to_string(),
        })
    }
}

impl std::fmt::Display for ItemsNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.afi, self.safi, self.vrf)
    }
}

/// One child of `<items>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushedItem {
    /// `<item id="…"><entry>…</entry></item>` — add/update.
    Item {
        /// inet/inet6 `prefix/plen`; EVPN `[<tag>-]<mac>,<ip>/<plen>[,<g>,<s>]`; ermvpn `<RD>:<g>,<s>`.
        id: String,
        /// The route (boxed: it is large).
        entry: Box<Entry>,
    },
    /// `<retract id="…"/>` — withdraw.
    Retract {
        /// Same id format as `Item`.
        id: String,
    },
}

/// A control-node route push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUpdate {
    /// from / to.
    pub env: Envelope,
    /// `items node`.
    pub node: ItemsNode,
    /// Items and retracts in order.
    pub items: Vec<PushedItem>,
}

fn event_items(e: &Element) -> Result<&Element> {
    if e.name != "message" {
        return Err(XmppError::UnexpectedElement {
            expected: "<message>".into(),
            found: e.name.clone(),
        });
    }
    e.req_child("event")?.req_child("items")
}

fn wrap_event(env: &Envelope, items: Element) -> Element {
    env.element("message", None).with_child(
        Element::new("event")
            .with_attr("xmlns", NS_PUBSUB)
            .with_child(items),
    )
}

impl RouteUpdate {
    /// Parse a `<message>`.
    pub fn from_element(e: &Element) -> Result<Self> {
        let items = event_items(e)?;
        let node = ItemsNode::parse(items.req_attr("node")?)?;
        let mut out = Vec::new();
        for c in items.elements() {
            match c.name.as_str() {
                "item" => out.push(PushedItem::Item {
                    id: c.req_attr("id")?.to_string(),
                    entry: Box::new(Entry::from_element(c.req_child("entry")?)?),
                }),
                "retract" => out.push(PushedItem::Retract {
                    id: c.req_attr("id")?.to_string(),
                }),
                _ => {}
            }
        }
        Ok(RouteUpdate {
            env: Envelope {
                id: None,
                ..Envelope::read(e)
            },
            node,
            items: out,
        })
    }

    /// Emit.
    pub fn to_element(&self) -> Element {
        let mut items = Element::new("items").with_attr("node", self.node.to_string());
        for it in &self.items {
            items = items.with_child(match it {
                PushedItem::Item { id, entry } => Element::new("item")
                    .with_attr("id", id.clone())
                    .with_child(entry.to_element()),
                PushedItem::Retract { id } => Element::new("retract").with_attr("id", id.clone()),
            });
        }
        wrap_event(&self.env, items)
    }

    /// Append `<items node="…">…</items>` for `items` to `out`: the same text as the
    /// `<items>` of [`RouteUpdate::to_element`], written one item at a time (no clone of the
    /// items, no tree of the whole message).  `items` must not be empty (an empty list is
    /// the self-closed `<items …/>` of the tree form).
    pub fn write_items_xml(node: &ItemsNode, items: &[PushedItem], out: &mut String) {
        RouteUpdate::write_items_xml_from(node, items, out);
    }

    /// [`RouteUpdate::write_items_xml`] over borrowed items (e.g. only the items, or only
    /// the retracts, of a longer list).
    pub fn write_items_xml_from<'a>(
        node: &ItemsNode,
        items: impl IntoIterator<Item = &'a PushedItem>,
        out: &mut String,
    ) {
        Element::new("items")
            .with_attr("node", node.to_string())
            .write_open_tag(out);
        out.push('>');
        for it in items {
            match it {
                PushedItem::Item { id, entry } => {
                    Element::new("item")
                        .with_attr("id", id.as_str())
                        .write_open_tag(out);
                    out.push('>');
                    entry.to_element().write_xml(out);
                    out.push_str("</item>");
                }
                PushedItem::Retract { id } => {
                    Element::new("retract")
                        .with_attr("id", id.as_str())
                        .write_xml(out);
                }
            }
        }
        out.push_str("</items>");
    }
}

/// End-of-RIB marker (`<items node="0/0/EndOfRib"></items>`), either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndOfRib {
    /// from / to.
    pub env: Envelope,
}

impl EndOfRib {
    /// Agent → control node (`…/bgp-peer`).
    pub fn from_agent(agent: &str) -> Self {
        EndOfRib {
            env: Envelope::agent_to_bgp(agent, None),
        }
    }

    /// Control node → agent (`<agent>/bgp-peer`).
    pub fn from_control(agent: &str) -> Self {
        EndOfRib {
            env: Envelope::control_to_agent(agent, RESOURCE_BGP),
        }
    }

    /// Parse.
    pub fn from_element(e: &Element) -> Result<Self> {
        let items = event_items(e)?;
        if items.attr("node") != Some(EOR_NODE) {
            return Err(XmppError::invalid(
                "items node",
                items.attr("node").unwrap_or(""),
                "not End-of-RIB",
            ));
        }
        Ok(EndOfRib {
            env: Envelope {
                id: None,
                ..Envelope::read(e)
            },
        })
    }

    /// Emit as a tree.
    pub fn to_element(&self) -> Element {
        wrap_event(&self.env, Element::new("items").with_attr("node", EOR_NODE))
    }

    /// Emit TF's exact text (`<items …></items>`, not self-closed).
    pub fn to_xml(&self) -> String {
        self.to_element().to_xml_expanded()
    }
}
