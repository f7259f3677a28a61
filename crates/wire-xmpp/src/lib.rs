//! Sans-IO codecs for Tungsten Fabric's vRouter-agent ↔ control-node XMPP (tf-facts §2).
//!
//! Layers:
//! * [`element`] — a small XML element tree (parse/emit) used for every stanza;
//! * [`stream`] — incremental stream framing (§2.1): header, stanzas, U+0200 keepalives, close;
//! * [`subscribe`] — routing-instance / config subscriptions (§2.2);
//! * [`node`] — route keys (publish/associate node strings, EVPN keys, MACs) (§2.3, §2.5);
//! * [`route`] — route publish / collection associate–dissociate and the `<entry>` item (§2.3, §2.4);
//! * [`push`] — routes pushed to the agent and End-of-RIB markers (§2.3, §2.5, §2.7);
//! * [`config`] — IFMap-over-XMPP config delivery (§2.6);
//! * [`tls`] — STARTTLS negotiation (`<stream:features>`, `<starttls/>`, `<proceed/>`), TF's
//!   `xmpp_auth_enable`;
//! * [`tls_config`] (feature `rustls`) — rustls settings as TF's server and agent set them up.
//!
//! [`Stanza`] classifies a top-level element into one of the typed values (or `Other`).
//! No I/O, no async, no clock: timers (hold time, EoR, end-of-config) belong to the caller.

pub mod config;
pub mod element;
pub mod error;
pub mod node;
pub mod push;
pub mod route;
pub mod stream;
pub mod subscribe;
pub mod tls;
#[cfg(feature = "rustls")]
pub mod tls_config;

pub use config::{
    ConfigIq, ConfigItem, ConfigLink, ConfigMetadata, ConfigNode, ConfigNodeRef, ConfigOp,
    ConfigOpKind,
};
pub use element::{xml_equivalent, Element, Node};
pub use error::{Result, XmppError};
pub use push::{EndOfRib, ItemsNode, PushedItem, RouteUpdate};
pub use route::route_iqs;
pub use route::{
    CollectionIq, CollectionOp, Entry, EvpnKey, LoadBalance, MacAddr, Mobility, NextHop, NhLabel,
    Nlri, PublishIq, RouteNode, TunnelEncap,
};
pub use stream::{StreamEvent, StreamHeader, StreamParser};
pub use subscribe::{IqResult, SubscribeAction, SubscribeIq};
pub use tls::TlsNegotiation;

/// `xmlns` of `<pubsub>` and `<event>` (tf-facts §2.2, §2.5).
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";

/// The `from` / `to` / `id` attributes shared by every stanza.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `from` JID.
    pub from: Option<String>,
    /// `to` JID.
    pub to: Option<String>,
    /// `id` (iq only; `subscribe<N>`, `pubsub<N>`, `collection<N>`).
    pub id: Option<String>,
}

impl Envelope {
    /// Envelope with all three attributes.
    pub fn new(from: impl Into<String>, to: impl Into<String>, id: Option<String>) -> Self {
        Envelope {
            from: Some(from.into()),
            to: Some(to.into()),
            id,
        }
    }

    /// Agent → control node, routing resource (`…/bgp-peer`).
    pub fn agent_to_bgp(agent: &str, id: Option<String>) -> Self {
        Envelope::new(
            agent,
            format!("{}/{}", stream::CONTROL_JID, stream::RESOURCE_BGP),
            id,
        )
    }

    /// Agent → control node, config resource (`…/config`).
    pub fn agent_to_config(agent: &str, id: Option<String>) -> Self {
        Envelope::new(
            agent,
            format!("{}/{}", stream::CONTROL_JID, stream::RESOURCE_CONFIG),
            id,
        )
    }

    /// Control node → agent on a resource (`<agent>/bgp-peer` or `<agent>/config`).
    pub fn control_to_agent(agent: &str, resource: &str) -> Self {
        Envelope::new(stream::CONTROL_JID, format!("{agent}/{resource}"), None)
    }

    pub(crate) fn read(e: &Element) -> Self {
        Envelope {
            from: e.attr("from").map(str::to_string),
            to: e.attr("to").map(str::to_string),
            id: e.attr("id").map(str::to_string),
        }
    }

    /// Start a stanza element: `type` (if any) first, then from / to / id.
    pub(crate) fn element(&self, name: &str, ty: Option<&str>) -> Element {
        let mut e = Element::new(name);
        if let Some(t) = ty {
            e.attrs.push(("type".into(), t.into()));
        }
        for (k, v) in [("from", &self.from), ("to", &self.to), ("id", &self.id)] {
            if let Some(v) = v {
                e.attrs.push((k.into(), v.clone()));
            }
        }
        e
    }
}

/// A classified top-level stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    /// `<iq type="set"><pubsub><subscribe|unsubscribe …>` (§2.2).
    Subscribe(SubscribeIq),
    /// `<iq type="set"><pubsub><publish …>` (§2.3).
    Publish(PublishIq),
    /// `<iq type="set"><pubsub><collection …><associate|dissociate …>` (§2.3).
    Collection(CollectionIq),
    /// `<iq type="result">` (TF never sends these for pubsub, §2.1; modelled for completeness).
    IqResult(IqResult),
    /// `<message><event><items node="afi/safi/vrf">` (§2.5).
    RouteUpdate(RouteUpdate),
    /// `<message><event><items node="0/0/EndOfRib">` (§2.3, §2.5).
    EndOfRib(EndOfRib),
    /// `<iq type="set"><config>` (§2.6).
    Config(ConfigIq),
    /// Anything else (`presence`, `stream:features`, `starttls`, …), kept as a tree.
    Other(Element),
}

impl Stanza {
    /// Classify and parse.  A stanza that looks like a known kind but is malformed is an error.
    pub fn parse(e: &Element) -> Result<Stanza> {
        match e.name.as_str() {
            "iq" => match e.attr("type") {
                Some("result") if e.elements().next().is_none() => {
                    Ok(Stanza::IqResult(IqResult::from_element(e)?))
                }
                Some("set") => {
                    if let Some(ps) = e.child("pubsub") {
                        let first = ps.elements().next().ok_or_else(|| {
                            XmppError::missing("pubsub", "subscribe|publish|collection")
                        })?;
                        match first.name.as_str() {
                            "subscribe" | "unsubscribe" => {
                                Ok(Stanza::Subscribe(SubscribeIq::from_element(e)?))
                            }
                            "publish" => Ok(Stanza::Publish(PublishIq::from_element(e)?)),
                            "collection" => Ok(Stanza::Collection(CollectionIq::from_element(e)?)),
                            other => Err(XmppError::UnexpectedElement {
                                expected: "subscribe, unsubscribe, publish or collection".into(),
                                found: other.to_string(),
                            }),
                        }
                    } else if e.child("config").is_some() {
                        Ok(Stanza::Config(ConfigIq::from_element(e)?))
                    } else {
                        Ok(Stanza::Other(e.clone()))
                    }
                }
                _ => Ok(Stanza::Other(e.clone())),
            },
            "message" => match e.child("event").and_then(|ev| ev.child("items")) {
                Some(items) if items.attr("node") == Some(push::EOR_NODE) => {
                    Ok(Stanza::EndOfRib(EndOfRib::from_element(e)?))
                }
                Some(_) => Ok(Stanza::RouteUpdate(RouteUpdate::from_element(e)?)),
                None => Ok(Stanza::Other(e.clone())),
            },
            _ => Ok(Stanza::Other(e.clone())),
        }
    }

    /// Parse from XML text.
    pub fn parse_str(xml: &str) -> Result<Stanza> {
        Stanza::parse(&Element::parse(xml)?)
    }

    /// Back to an element tree.
    pub fn to_element(&self) -> Element {
        match self {
            Stanza::Subscribe(s) => s.to_element(),
            Stanza::Publish(s) => s.to_element(),
            Stanza::Collection(s) => s.to_element(),
            Stanza::IqResult(s) => s.to_element(),
            Stanza::RouteUpdate(s) => s.to_element(),
            Stanza::EndOfRib(s) => s.to_element(),
            Stanza::Config(s) => s.to_element(),
            Stanza::Other(e) => e.clone(),
        }
    }

    /// Serialize to wire text (EoR keeps TF's `<items …></items>` form).
    pub fn to_xml(&self) -> String {
        match self {
            Stanza::EndOfRib(s) => s.to_xml(),
            other => other.to_element().to_xml(),
        }
    }
}
