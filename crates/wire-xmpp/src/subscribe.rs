//! Subscriptions, agent → control node (tf-facts §2.2), and the generic iq result (§2.1).
//!
//! ```text
//! <iq type="set" from="<agent>" to="network-control@contrailsystems.com/bgp-peer" id="subscribe<N>">
//!   <pubsub xmlns="http://jabber.org/protocol/pubsub">
//!     <subscribe node="<vrf>"><options><instance-id>3</instance-id></options></subscribe>
//!   </pubsub></iq>
//! ```
//! `unsubscribe` has the same shape; `<no-ribout/>` is optional (placed inside `<options>`).
//! Config subscriptions (to `…/config`) carry no options: `<subscribe node="virtual-router:…"/>`.

use crate::element::{parse_num, Element};
use crate::error::{Result, XmppError};
use crate::{Envelope, NS_PUBSUB};

/// Subscribe or unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeAction {
    /// `<subscribe>`.
    Subscribe,
    /// `<unsubscribe>`.
    Unsubscribe,
}

impl SubscribeAction {
    fn tag(self) -> &'static str {
        match self {
            SubscribeAction::Subscribe => "subscribe",
            SubscribeAction::Unsubscribe => "unsubscribe",
        }
    }
}

/// A (un)subscribe iq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeIq {
    /// from / to / id.
    pub env: Envelope,
    /// Subscribe or unsubscribe.
    pub action: SubscribeAction,
    /// Routing-instance name, or config node (`virtual-router:…`, `virtual-machine:<uuid>`).
    pub node: String,
    /// The agent's local VRF index (used for the RD `<agent-ip>:<instance-id>`); absent for config.
    pub instance_id: Option<u32>,
    /// `<no-ribout/>` present.
    pub no_ribout: bool,
}

impl SubscribeIq {
    /// Routing-instance subscribe as the agent sends it (`id="subscribe<seq>"`).
    pub fn routing(
        agent: &str,
        seq: u64,
        action: SubscribeAction,
        vrf: &str,
        instance_id: u32,
    ) -> Self {
        SubscribeIq {
            env: Envelope::agent_to_bgp(agent, Some(format!("subscribe{seq}"))),
            action,
            node: vrf.to_string(),
            instance_id: Some(instance_id),
            no_ribout: false,
        }
    }

    /// Config subscribe to `…/config` (no options).
    pub fn config(agent: &str, seq: u64, action: SubscribeAction, node: &str) -> Self {
        SubscribeIq {
            env: Envelope::agent_to_config(agent, Some(format!("subscribe{seq}"))),
            action,
            node: node.to_string(),
            instance_id: None,
            no_ribout: false,
        }
    }

    /// Parse from an `<iq>` element.
    pub fn from_element(e: &Element) -> Result<Self> {
        if e.name != "iq" {
            return Err(XmppError::UnexpectedElement {
                expected: "<iq>".into(),
                found: e.name.clone(),
            });
        }
        let ps = e.req_child("pubsub")?;
        let sub = ps
            .elements()
            .next()
            .ok_or_else(|| XmppError::missing("pubsub", "subscribe"))?;
        let action = match sub.name.as_str() {
            "subscribe" => SubscribeAction::Subscribe,
            "unsubscribe" => SubscribeAction::Unsubscribe,
            other => {
                return Err(XmppError::UnexpectedElement {
                    expected: "subscribe or unsubscribe".into(),
                    found: other.to_string(),
                })
            }
        };
        let node = sub.req_attr("node")?.to_string();
        let options = sub.child("options");
        let instance_id = options
            .and_then(|o| o.child("instance-id"))
            .map(|i| parse_num::<u32>("instance-id", &i.text()))
            .transpose()?;
        let no_ribout = options.and_then(|o| o.child("no-ribout")).is_some()
            || sub.child("no-ribout").is_some();
        Ok(SubscribeIq {
            env: Envelope::read(e),
            action,
            node,
            instance_id,
            no_ribout,
        })
    }

    /// Emit as an element tree.
    pub fn to_element(&self) -> Element {
        let mut sub = Element::new(self.action.tag()).with_attr("node", self.node.clone());
        if self.instance_id.is_some() || self.no_ribout {
            let mut opts = Element::new("options");
            if let Some(id) = self.instance_id {
                opts = opts.with_child(Element::leaf("instance-id", id.to_string()));
            }
            if self.no_ribout {
                opts = opts.with_child(Element::new("no-ribout"));
            }
            sub = sub.with_child(opts);
        }
        self.env.element("iq", Some("set")).with_child(
            Element::new("pubsub")
                .with_attr("xmlns", NS_PUBSUB)
                .with_child(sub),
        )
    }

    /// Emit as text.
    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }
}

/// `<iq type="result" …/>`.  TF does not acknowledge pubsub iqs (tf-facts §2.1); kept for peers
/// that do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IqResult {
    /// from / to / id (the id echoes the request's).
    pub env: Envelope,
}

impl IqResult {
    /// Result answering `request`.
    pub fn answering(request: &Envelope) -> Self {
        IqResult {
            env: Envelope {
                from: request.to.clone(),
                to: request.from.clone(),
                id: request.id.clone(),
            },
        }
    }

    /// Parse from an `<iq type="result">` element.
    pub fn from_element(e: &Element) -> Result<Self> {
        if e.name != "iq" || e.attr("type") != Some("result") {
            return Err(XmppError::UnexpectedElement {
                expected: "<iq type=\"result\">".into(),
                found: e.name.clone(),
            });
        }
        Ok(IqResult {
            env: Envelope::read(e),
        })
    }

    /// Emit as an element tree.
    pub fn to_element(&self) -> Element {
        self.env.element("iq", Some("result"))
    }
}
