//! Route publish / withdraw, agent → control node (tf-facts §2.3), and the route item
//! `<entry>` (tf-facts §2.4, `xmpp_unicast.xsd`, `xmpp_enet.xsd`, `xmpp_multicast.xsd`).
//!
//! Each add/delete is two iqs: `<publish node="afi/safi/…"><item><entry>…</entry></item></publish>`
//! (id `pubsub<N>`) followed by `<collection node="<vrf>"><associate|dissociate node="…"/></collection>`
//! (id `collection<N>`).  A publish with no `<item>` is treated as End-of-RIB by the control node.

use std::fmt;

use crate::element::{opt_num, opt_text, parse_num, push_opt, Element, Node};
use crate::error::{Result, XmppError};
pub use crate::node::{EvpnKey, MacAddr, RouteNode};
use crate::{Envelope, NS_PUBSUB};
/// `tunnel-encapsulation` values (tf-facts §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEncap {
    /// `gre` (MPLSoGRE).
    Gre,
    /// `mpls`.
    Mpls,
    /// `udp` (MPLSoUDP).
    Udp,
    /// `vxlan`.
    Vxlan,
    /// `native` (agent only).
    Native,
    /// Any other value (kept; the control node ignores unknown encaps).
    Other(String),
}

impl TunnelEncap {
    /// Parse (trimmed).
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "gre" => TunnelEncap::Gre,
            "mpls" => TunnelEncap::Mpls,
            "udp" => TunnelEncap::Udp,
            "vxlan" => TunnelEncap::Vxlan,
            "native" => TunnelEncap::Native,
            other => TunnelEncap::Other(other.to_string()),
        }
    }

    /// Wire text.
    pub fn as_str(&self) -> &str {
        match self {
            TunnelEncap::Gre => "gre",
            TunnelEncap::Mpls => "mpls",
            TunnelEncap::Udp => "udp",
            TunnelEncap::Vxlan => "vxlan",
            TunnelEncap::Native => "native",
            TunnelEncap::Other(s) => s,
        }
    }
}

/// A next-hop label: a value, or a multicast label range `"<start>-<end>"` (tf-facts §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NhLabel {
    /// MPLS label or VNI.
    Value(u32),
    /// Agent → control multicast label block.
    Range(u32, u32),
}

impl NhLabel {
    fn parse(s: &str) -> Result<Self> {
        let t = s.trim();
        match t.split_once('-') {
            Some((a, b)) => Ok(NhLabel::Range(
                parse_num("label", a)?,
                parse_num("label", b)?,
            )),
            None => Ok(NhLabel::Value(parse_num("label", t)?)),
        }
    }
}

impl fmt::Display for NhLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NhLabel::Value(v) => write!(f, "{v}"),
            NhLabel::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// `<next-hop>` (tf-facts §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NextHop {
    /// `af` (1 = IPv4).
    pub af: u16,
    /// Compute node (vhost) address.
    pub address: String,
    /// vhost / router MAC (EVPN type-5).
    pub mac: Option<String>,
    /// MPLS label, VNI (vxlan), or multicast label range.
    pub label: Option<NhLabel>,
    /// `vni`.
    pub vni: Option<u32>,
    /// `l3-label` (EVPN).
    pub l3_label: Option<u32>,
    /// `tunnel-encapsulation-list`.
    pub tunnel_encapsulation: Vec<TunnelEncap>,
    /// `virtual-network`.
    pub virtual_network: Option<String>,
    /// `tag-list` (32-bit tag ids).
    pub tag_list: Vec<u32>,
    /// `local-sequence-number`.
    pub local_sequence_number: Option<u32>,
}

fn list<T>(
    parent: &Element,
    list: &str,
    item: &str,
    f: impl Fn(&Element) -> Result<T>,
) -> Result<Vec<T>> {
    match parent.child(list) {
        Some(l) => l.children_named(item).map(f).collect(),
        None => Ok(Vec::new()),
    }
}

fn push_list<T>(el: &mut Element, list: &str, item: &str, v: &[T], f: impl Fn(&T) -> String) {
    if !v.is_empty() {
        let mut l = Element::new(list);
        for x in v {
            l = l.with_child(Element::leaf(item, f(x)));
        }
        el.children.push(Node::Element(l));
    }
}

impl NextHop {
    /// Encapsulations as the control node interprets them (tf-facts §2.5): a next-hop with a
    /// non-zero label and no encapsulation list is treated as `gre`.
    pub fn effective_encapsulation(&self) -> Vec<TunnelEncap> {
        let labelled = matches!(self.label, Some(NhLabel::Value(v)) if v != 0);
        if self.tunnel_encapsulation.is_empty() && labelled {
            vec![TunnelEncap::Gre]
        } else {
            self.tunnel_encapsulation.clone()
        }
    }

    fn from_element(e: &Element) -> Result<Self> {
        Ok(NextHop {
            af: opt_num(e, "af")?.unwrap_or(0),
            address: opt_text(e, "address").unwrap_or_default(),
            mac: opt_text(e, "mac"),
            label: opt_text(e, "label")
                .map(|l| NhLabel::parse(&l))
                .transpose()?,
            vni: opt_num(e, "vni")?,
            l3_label: opt_num(e, "l3-label")?,
            tunnel_encapsulation: list(
                e,
                "tunnel-encapsulation-list",
                "tunnel-encapsulation",
                |t| Ok(TunnelEncap::parse(&t.text())),
            )?,
            virtual_network: opt_text(e, "virtual-network"),
            tag_list: list(e, "tag-list", "tag", |t| parse_num("tag", &t.text()))?,
            local_sequence_number: opt_num(e, "local-sequence-number")?,
        })
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new("next-hop")
            .with_child(Element::leaf("af", self.af.to_string()))
            .with_child(Element::leaf("address", self.address.clone()));
        push_opt(&mut e, "mac", &self.mac);
        push_opt(&mut e, "label", &self.label);
        push_opt(&mut e, "vni", &self.vni);
        push_opt(&mut e, "l3-label", &self.l3_label);
        push_list(
            &mut e,
            "tunnel-encapsulation-list",
            "tunnel-encapsulation",
            &self.tunnel_encapsulation,
            |t| t.as_str().to_string(),
        );
        push_opt(&mut e, "virtual-network", &self.virtual_network);
        push_list(&mut e, "tag-list", "tag", &self.tag_list, u32::to_string);
        push_opt(&mut e, "local-sequence-number", &self.local_sequence_number);
        e
    }
}

/// `<nlri>`: unicast `{af, safi, address}`, EVPN adds `ethernet-tag, mac, group, source, flags`,
/// multicast adds `group, source, source-label, source-address` (tf-facts §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlri {
    /// AFI.
    pub af: u16,
    /// XMPP SAFI.
    pub safi: u16,
    /// `ethernet-tag` (EVPN).
    pub ethernet_tag: Option<u32>,
    /// `mac` (EVPN).
    pub mac: Option<String>,
    /// `address`: `prefix/plen` for inet/inet6, `ip/plen` for EVPN.
    pub address: Option<String>,
    /// `group`.
    pub group: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// `source-label` (multicast).
    pub source_label: Option<u32>,
    /// `source-address` (multicast).
    pub source_address: Option<String>,
    /// `flags` (EVPN).
    pub flags: Option<u32>,
}

impl Nlri {
    fn from_element(e: &Element) -> Result<Self> {
        Ok(Nlri {
            af: opt_num(e, "af")?.unwrap_or(0),
            safi: opt_num(e, "safi")?.unwrap_or(0),
            ethernet_tag: opt_num(e, "ethernet-tag")?,
            mac: opt_text(e, "mac"),
            address: opt_text(e, "address"),
            group: opt_text(e, "group"),
            source: opt_text(e, "source"),
            source_label: opt_num(e, "source-label")?,
            source_address: opt_text(e, "source-address"),
            flags: opt_num(e, "flags")?,
        })
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new("nlri")
            .with_child(Element::leaf("af", self.af.to_string()))
            .with_child(Element::leaf("safi", self.safi.to_string()));
        push_opt(&mut e, "ethernet-tag", &self.ethernet_tag);
        push_opt(&mut e, "mac", &self.mac);
        push_opt(&mut e, "address", &self.address);
        push_opt(&mut e, "group", &self.group);
        push_opt(&mut e, "source", &self.source);
        push_opt(&mut e, "source-label", &self.source_label);
        push_opt(&mut e, "source-address", &self.source_address);
        push_opt(&mut e, "flags", &self.flags);
        e
    }
}

/// `<mobility seqno=".." sticky=".."/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mobility {
    /// Sequence number.
    pub seqno: u32,
    /// Sticky bit.
    pub sticky: bool,
}

/// `<load-balance>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalance {
    /// `load-balance-fields/load-balance-field-list*` (`l3-source-address`, …).
    pub fields: Vec<String>,
    /// `load-balance-decision` (`field-hash` | `source-bias`).
    pub decision: Option<String>,
}

/// Known `<entry>` children; anything else is kept verbatim in [`Entry::extra`].
const ENTRY_KNOWN: &[&str] = &[
    "nlri",
    "next-hops",
    "version",
    "virtual-network",
    "mobility",
    "sequence-number",
    "security-group-list",
    "community-tag-list",
    "local-preference",
    "med",
    "load-balance",
    "sub-protocol",
];

/// A route `<entry>` (unicast, inet6, EVPN, multicast share this shape; tf-facts §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// `nlri`.
    pub nlri: Nlri,
    /// `next-hops/next-hop*` (empty on withdraw).
    pub next_hops: Vec<NextHop>,
    /// `version` (the agent sends 1).
    pub version: Option<u32>,
    /// `virtual-network` (VN fq name).
    pub virtual_network: Option<String>,
    /// `mobility` attributes.
    pub mobility: Option<Mobility>,
    /// `sequence-number` (deprecated).
    pub sequence_number: Option<u32>,
    /// `security-group-list/security-group*`.
    pub security_groups: Vec<u32>,
    /// `community-tag-list/community-tag*`.
    pub community_tags: Vec<String>,
    /// `local-preference` (100 LOW, 200 HIGH).
    pub local_preference: Option<u32>,
    /// `med`.
    pub med: Option<u32>,
    /// `load-balance`.
    pub load_balance: Option<LoadBalance>,
    /// `sub-protocol` (`interface|interface-static|service-interface|bgpaas`).
    pub sub_protocol: Option<String>,
    /// Other children in order (`olist`, `leaf-olist`, `edge-replication-not-supported`,
    /// `assisted-replication-supported`, `replicator-address`, `etree-leaf`, …).
    pub extra: Vec<Element>,
}

fn parse_bool(field: &str, s: &str) -> Result<bool> {
    match s.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(XmppError::invalid(field, s, "expected true/false")),
    }
}

impl Entry {
    /// Parse an `<entry>` element.
    pub fn from_element(e: &Element) -> Result<Self> {
        if e.name != "entry" {
            return Err(XmppError::UnexpectedElement {
                expected: "<entry>".into(),
                found: e.name.clone(),
            });
        }
        let mobility = match e.child("mobility") {
            Some(m) => Some(Mobility {
                seqno: m
                    .attr("seqno")
                    .map(|s| parse_num("mobility/seqno", s))
                    .transpose()?
                    .unwrap_or(0),
                sticky: m
                    .attr("sticky")
                    .map(|s| parse_bool("mobility/sticky", s))
                    .transpose()?
                    .unwrap_or(false),
            }),
            None => None,
        };
        let load_balance = match e.child("load-balance") {
            Some(lb) => Some(LoadBalance {
                fields: list(lb, "load-balance-fields", "load-balance-field-list", |f| {
                    Ok(f.text().trim().to_string())
                })?,
                decision: opt_text(lb, "load-balance-decision").map(|d| d.trim().to_string()),
            }),
            None => None,
        };
        Ok(Entry {
            nlri: Nlri::from_element(e.req_child("nlri")?)?,
            next_hops: list(e, "next-hops", "next-hop", NextHop::from_element)?,
            version: opt_num(e, "version")?,
            virtual_network: opt_text(e, "virtual-network"),
            mobility,
            sequence_number: opt_num(e, "sequence-number")?,
            security_groups: list(e, "security-group-list", "security-group", |s| {
                parse_num("security-group", &s.text())
            })?,
            community_tags: list(e, "community-tag-list", "community-tag", |s| Ok(s.text()))?,
            local_preference: opt_num(e, "local-preference")?,
            med: opt_num(e, "med")?,
            load_balance,
            sub_protocol: opt_text(e, "sub-protocol"),
            extra: e
                .elements()
                .filter(|c| !ENTRY_KNOWN.contains(&c.name.as_str()))
                .cloned()
                .collect(),
        })
    }

    /// Emit in XSD order.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("entry").with_child(self.nlri.to_element());
        let mut nhs = Element::new("next-hops");
        for nh in &self.next_hops {
            nhs = nhs.with_child(nh.to_element());
        }
        e = e.with_child(nhs);
        push_opt(&mut e, "version", &self.version);
        push_opt(&mut e, "virtual-network", &self.virtual_network);
        if let Some(m) = self.mobility {
            e = e.with_child(
                Element::new("mobility")
                    .with_attr("seqno", m.seqno.to_string())
                    .with_attr("sticky", m.sticky.to_string()),
            );
        }
        push_opt(&mut e, "sequence-number", &self.sequence_number);
        push_list(
            &mut e,
            "security-group-list",
            "security-group",
            &self.security_groups,
            u32::to_string,
        );
        push_list(
            &mut e,
            "community-tag-list",
            "community-tag",
            &self.community_tags,
            String::clone,
        );
        push_opt(&mut e, "local-preference", &self.local_preference);
        push_opt(&mut e, "med", &self.med);
        if let Some(lb) = &self.load_balance {
            let mut l = Element::new("load-balance");
            let mut fields = Element::new("load-balance-fields");
            for f in &lb.fields {
                fields = fields.with_child(Element::leaf("load-balance-field-list", f.clone()));
            }
            l = l.with_child(fields);
            push_opt(&mut l, "load-balance-decision", &lb.decision);
            e = e.with_child(l);
        }
        push_opt(&mut e, "sub-protocol", &self.sub_protocol);
        for x in &self.extra {
            e = e.with_child(x.clone());
        }
        e
    }
}

/// `<iq type="set"><pubsub><publish node="…">[<item><entry>…</entry></item>]</publish></pubsub></iq>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishIq {
    /// from / to / id (`pubsub<N>`).
    pub env: Envelope,
    /// The route node.
    pub node: RouteNode,
    /// The item; `None` = no `<item>` (End-of-RIB for the control node).
    pub entry: Option<Box<Entry>>,
}

fn pubsub_first(e: &Element, want: &str) -> Result<Element> {
    if e.name != "iq" {
        return Err(XmppError::UnexpectedElement {
            expected: "<iq>".into(),
            found: e.name.clone(),
        });
    }
    let first = e
        .req_child("pubsub")?
        .elements()
        .next()
        .ok_or_else(|| XmppError::missing("pubsub", want))?;
    if first.name != want {
        return Err(XmppError::UnexpectedElement {
            expected: want.into(),
            found: first.name.clone(),
        });
    }
    Ok(first.clone())
}

fn wrap_pubsub(env: &Envelope, inner: Element) -> Element {
    env.element("iq", Some("set")).with_child(
        Element::new("pubsub")
            .with_attr("xmlns", NS_PUBSUB)
            .with_child(inner),
    )
}

impl PublishIq {
    /// Parse.
    pub fn from_element(e: &Element) -> Result<Self> {
        let p = pubsub_first(e, "publish")?;
        let node = RouteNode::parse(p.req_attr("node")?)?;
        let entry = p
            .child("item")
            .and_then(|i| i.child("entry"))
            .map(Entry::from_element)
            .transpose()?
            .map(Box::new);
        Ok(PublishIq {
            env: Envelope::read(e),
            node,
            entry,
        })
    }

    /// Emit.
    pub fn to_element(&self) -> Element {
        let mut p = Element::new("publish").with_attr("node", self.node.to_string());
        if let Some(entry) = &self.entry {
            p = p.with_child(Element::new("item").with_child(entry.to_element()));
        }
        wrap_pubsub(&self.env, p)
    }
}

/// `associate` (add/update) or `dissociate` (delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionOp {
    /// Add or update.
    Associate,
    /// Withdraw.
    Dissociate,
}

/// `<iq type="set"><pubsub><collection node="<vrf>"><associate|dissociate node="…"/></collection>…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionIq {
    /// from / to / id (`collection<N>`).
    pub env: Envelope,
    /// Collection node: the VRF (EVPN: the VRF export name).
    pub collection: String,
    /// Associate or dissociate.
    pub op: CollectionOp,
    /// Must equal the preceding publish node.
    pub node: RouteNode,
}

impl CollectionIq {
    /// Parse.
    pub fn from_element(e: &Element) -> Result<Self> {
        let c = pubsub_first(e, "collection")?;
        let collection = c.req_attr("node")?.to_string();
        let (op, inner) = if let Some(a) = c.child("associate") {
            (CollectionOp::Associate, a)
        } else if let Some(d) = c.child("dissociate") {
            (CollectionOp::Dissociate, d)
        } else {
            return Err(XmppError::missing("collection", "associate|dissociate"));
        };
        let node = RouteNode::parse(inner.req_attr("node")?)?;
        Ok(CollectionIq {
            env: Envelope::read(e),
            collection,
            op,
            node,
        })
    }

    /// Emit.
    pub fn to_element(&self) -> Element {
        let tag = match self.op {
            CollectionOp::Associate => "associate",
            CollectionOp::Dissociate => "dissociate",
        };
        let c = Element::new("collection")
            .with_attr("node", self.collection.clone())
            .with_child(Element::new(tag).with_attr("node", self.node.to_string()));
        wrap_pubsub(&self.env, c)
    }
}

/// The two iqs of one route add (`associate`) or delete (`dissociate`) as the agent sends
/// them, ids `pubsub<seq>` / `collection<seq>` (tf-facts §2.3).
pub fn route_iqs(
    agent: &str,
    seq: u64,
    vrf: &str,
    node: RouteNode,
    entry: Entry,
    op: CollectionOp,
) -> (PublishIq, CollectionIq) {
    let publish = PublishIq {
        env: Envelope::agent_to_bgp(agent, Some(format!("pubsub{seq}"))),
        node: node.clone(),
        entry: Some(Box::new(entry)),
    };
    let collection = CollectionIq {
        env: Envelope::agent_to_bgp(agent, Some(format!("collection{seq}"))),
        collection: vrf.to_string(),
        op,
        node,
    };
    (publish, collection)
}
