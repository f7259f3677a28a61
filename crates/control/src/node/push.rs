//! Route pushes control node → agents (tf-facts §2.5), rendered once and shared.
//!
//! ```text
//! <message from="network-control@contrailsystems.com" to="<agent>/bgp-peer">   per agent (cached)
//!   <event xmlns="http://jabber.org/protocol/pubsub"><items node="1/1/<vrf>">  ┐ rendered once per
//!     <item id="10.1.1.251/32"><entry>…</entry></item> <retract id="…"/> …    │ table change, shared
//!   </items></event></message>                                                 ┘ by every subscriber
//! ```
//! tf-facts §2.5: "`items node` = `<afi>/<xmpp safi>/<vrf>`; many items/retracts per message".
//! Only the `to=` attribute differs between agents, so a change of one instance table is
//! rendered once as [`Chunk`]s of up to [`MAX_ITEMS_PER_MESSAGE`] items and every
//! subscribed session gets `[its head, shared body]` per message, by reference.
//!
//! Back-pressure (TF's ribout "blocked" peer): when the shell reports that an agent's
//! unwritten output passed its high-water mark ([`Input::Backlog`]), the node stops queueing
//! route pushes for it and only remembers which routes changed (keys, not bytes); when the
//! backlog drains, it sends the *current* state of those routes.  A slow agent therefore
//! costs at most the high-water mark plus one set of keys, never an unbounded queue.
//!
//! EVPN broadcast (BUM) by ingress replication: an agent that publishes its broadcast route
//! (`ff:ff:ff:ff:ff:ff,0.0.0.0/32`, the agent's BUM label) gets, per instance, one
//! `ff:ff:ff:ff:ff:ff` item whose `<olist>` lists every other such agent (address, label,
//! encapsulations), and a retract when it is alone; TF builds the same list from its EVPN
//! inclusive-multicast routes (`xmpp_message_builder.cc` `AddEnetReach`: an item with an
//! olist has no next hops; the agent reads it in `controller_peer.cc`
//! `AddMulticastEvpnRoute`).  Agents that publish no broadcast route (ours) get nothing.
//!
//! The broadcast route also goes into the RIB as `[<tag>-]ff:ff:ff:ff:ff:ff,<vRouter>/32`
//! (RD `<vRouter>:<instance-id>`), which the BGP link advertises as an EVPN type-3
//! (Inclusive Multicast Ethernet Tag) route with the PMSI Tunnel attribute, as TF's
//! control node does (`bgp_xmpp_channel.cc` `ProcessEnetItem`: a broadcast MAC becomes
//! `EvpnPrefix::InclusiveMulticastRoute`).  BGP peers' type-3 routes imported into an
//! instance under the same key form join the olist (next hop = the originator, label from
//! the PMSI Tunnel attribute), and so do other instances' agents' broadcast routes imported
//! by route target (a policy between two VNs), as TF's `EvpnManager` makes every imported
//! inclusive-multicast route a remote node of the instance.  Broadcast keys are never
//! pushed as MAC items.
//!
//! [`Input::Backlog`]: super::Input::Backlog

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use filament_wire_xmpp::push::EOR_NODE;
use filament_wire_xmpp::stream::{CONTROL_JID, RESOURCE_BGP};
use filament_wire_xmpp::{
    CollectionOp, Element, Envelope, ItemsNode, NhLabel, Nlri, PushedItem, RouteNode, RouteUpdate,
    NS_PUBSUB,
};

use super::{Agent, ConnId, ControlNode};
use crate::convert::{attrs_from_entry, entry_for, xmpp_family};
use crate::rib::{split_vrf_table, vrf_table, Family, Key, Rib};
use crate::rib::{Origin, Path, PeerId};
use crate::session::Chunk;
use crate::subset::MAX_ITEMS_PER_MESSAGE;
use filament_wire_xmpp::{Entry, EvpnKey, MacAddr, TunnelEncap};

/// The per-agent start of a route message: `<message from=".." to="<agent>/bgp-peer">`.
pub(crate) fn message_head(agent: &str) -> Chunk {
    let mut head = String::new();
    Element::new("message")
        .with_attr("from", CONTROL_JID)
        .with_attr("to", format!("{agent}/{RESOURCE_BGP}"))
        .write_open_tag(&mut head);
    head.push('>');
    Arc::from(head.into_bytes())
}

/// The shared rest of each route message for one instance table: `<event …><items …>…
/// </items></event></message>`, one chunk per [`MAX_ITEMS_PER_MESSAGE`] items.
///
/// Items and retracts go in separate messages (items first): a TF agent that finds a
/// `<retract>` in a message handles only the retracts and drops every item of it
/// (`controller_peer.cc` `AgentXmppChannel::ReceiveV4V6Update` / `ReceiveEvpnUpdate`:
/// `FindNode("retract")` then `return`), and TF's own builder never mixes them
/// (`xmpp_message_builder.cc` `BgpXmppMessage::AddRoute` asserts one reachability per
/// message).  Each key appears once in `items`, so the order between the two kinds does
/// not matter.
pub(crate) fn render_bodies(fam: Family, ri: &str, items: &[PushedItem]) -> Vec<Chunk> {
    let (afi, safi) = xmpp_family(fam);
    let node = ItemsNode {
        afi,
        safi,
        vrf: ri.to_string(),
    };
    debug_assert_ne!(node.to_string(), EOR_NODE);
    let (adds, retracts): (Vec<&PushedItem>, Vec<&PushedItem>) = items
        .iter()
        .partition(|it| matches!(it, PushedItem::Item { .. }));
    adds.chunks(MAX_ITEMS_PER_MESSAGE)
        .chain(retracts.chunks(MAX_ITEMS_PER_MESSAGE))
        .map(|chunk| {
            // <message …> (per agent) <event xmlns=…><items …>…</items></event></message>
            let mut body = String::with_capacity(chunk.len() * 600 + 128);
            body.push_str("<event xmlns=\"");
            body.push_str(NS_PUBSUB);
            body.push_str("\">");
            RouteUpdate::write_items_xml_from(&node, chunk.iter().copied(), &mut body);
            body.push_str("</event></message>");
            Arc::from(body.into_bytes())
        })
        .collect()
}

/// The current state of `keys` (ordered by their string form) in one instance table: an
/// item for a route with a best path, a retract otherwise.
fn current_items(rib: &Rib, table: &str, fam: Family, keys: &Named) -> Vec<PushedItem> {
    let t = rib.table(table);
    keys.iter()
        .map(|(id, key)| match t.and_then(|t| t.get_key(key)) {
            Some(r) if !r.best().is_empty() => PushedItem::Item {
                id: id.clone(),
                entry: Box::new(pushed_entry(fam, id, r.best())),
            },
            _ => PushedItem::Retract { id: id.clone() },
        })
        .collect()
}

/// The `<entry>` pushed for a route's best paths, with the encapsulation TF's control node
/// fills in when a path carries none (a BGP path without the tunnel-encapsulation
/// community): `xmpp_message_builder.cc` `EncodeNextHop` writes `gre` for a next hop with a
/// non-zero label and no encapsulation, `EncodeEnetNextHop` writes `gre` for any EVPN next
/// hop without one.  An agent turns the list into its tunnel bitmap (`GetTypeBitmap`);
/// an empty list leaves it no tunnel type to use.
pub(crate) fn pushed_entry(fam: Family, key: &str, best: &[Path]) -> Entry {
    let mut e = entry_for(fam, key, best);
    for nh in &mut e.next_hops {
        let labelled = matches!(nh.label, Some(NhLabel::Value(l)) if l != 0);
        if nh.tunnel_encapsulation.is_empty() && (labelled || fam == Family::Evpn) {
            nh.tunnel_encapsulation.push(TunnelEncap::Gre);
        }
    }
    e
}

/// Changed keys with their string forms (`id`s of the items), ordered by them.
type Named = Vec<(String, Key)>;

/// Keys with their string forms, ordered by them (the order items went out in before the
/// keys were compact).
fn by_name(keys: impl IntoIterator<Item = Key>) -> Named {
    let mut v: Vec<(String, Key)> = keys.into_iter().map(|k| (k.to_string(), k)).collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Queue rendered bodies for one agent, each behind the agent's own message head.
fn send_bodies(a: &mut Agent, bodies: &[Chunk]) {
    let Some(name) = a.name.as_deref() else {
        return;
    };
    let head = a.msg_head.get_or_insert_with(|| message_head(name)).clone();
    for b in bodies {
        a.session.send_shared(&[head.clone(), b.clone()]);
    }
}

impl ControlNode {
    /// Changed routes of instance tables → items / retracts to subscribed agents (rendered
    /// once per table, shared); changed global-table keys → the BGP link.
    pub(super) fn push_routes(&mut self) {
        let dirty = self.rib.take_dirty();
        if dirty.is_empty() {
            return;
        }
        // (table, instance, family) → changed keys
        let mut by_table: Vec<(String, String, Family, Named)> = Vec::new();
        // (instance, broadcast key) changed: replication legs, not items
        let mut bum_keys: Vec<(String, String)> = Vec::new();
        for (table, keys) in dirty {
            let Some((ri, fam)) = split_vrf_table(&table) else {
                if let Some(c) = self.bgp_changes.as_mut() {
                    c.entry(table).or_default().extend(keys);
                }
                continue;
            };
            let mut named = by_name(keys);
            if fam == Family::Evpn {
                // broadcast keys are replication legs (the olist), never MAC items
                named.retain(|(id, _)| {
                    let bum = is_broadcast_key(id);
                    if bum {
                        bum_keys.push((ri.clone(), id.clone()));
                    }
                    !bum
                });
                if named.is_empty() {
                    continue;
                }
            }
            by_table.push((table, ri, fam, named));
        }
        let rendered: Vec<(String, Family, Named, Vec<Chunk>)> = by_table
            .into_iter()
            .map(|(table, ri, fam, keys)| {
                let items = current_items(&self.rib, &table, fam, &keys);
                let bodies = render_bodies(fam, &ri, &items);
                (ri, fam, keys, bodies)
            })
            .collect();
        for a in self.agents.values_mut() {
            if a.name.is_none() {
                continue;
            }
            for (ri, fam, keys, bodies) in &rendered {
                if !a.subs.contains_key(ri) {
                    continue;
                }
                if a.blocked {
                    // remember what changed; its state at unblock time is what gets sent
                    a.deferred
                        .extend(keys.iter().map(|(k, _)| (ri.clone(), *fam, k.clone())));
                } else {
                    send_bodies(a, bodies);
                }
            }
        }
        self.bum_bgp_refresh(bum_keys);
    }

    /// Full sync of one instance's tables to one agent (a new subscription).
    pub(super) fn send_instance(&mut self, conn: super::ConnId, ri: &str) {
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        for fam in Family::ALL {
            let table = vrf_table(ri, fam);
            let Some(t) = self.rib.table(&table) else {
                continue;
            };
            if a.blocked {
                a.deferred.extend(
                    t.keys()
                        .filter(|k| fam != Family::Evpn || !is_broadcast_key(k))
                        .map(|k| (ri.to_string(), fam, k)),
                );
                continue;
            }
            let items: Vec<PushedItem> = t
                .iter()
                .filter(|(k, _)| fam != Family::Evpn || !is_broadcast_key(k))
                .map(|(k, r)| PushedItem::Item {
                    entry: Box::new(pushed_entry(fam, &k, r.best())),
                    id: k,
                })
                .collect();
            send_bodies(a, &render_bodies(fam, ri, &items));
        }
    }

    /// The shell's report on an agent's unwritten output: `blocked` past the high-water
    /// mark, unblocked once drained (then the deferred routes go out, as they are now).
    pub(super) fn set_backlog(&mut self, conn: super::ConnId, blocked: bool) {
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        if blocked {
            if !a.blocked {
                self.counters.backlogged += 1;
            }
            a.blocked = true;
            return;
        }
        a.blocked = false;
        let deferred = std::mem::take(&mut a.deferred);
        let mut by_table: BTreeMap<(String, Family), Vec<String>> = BTreeMap::new();
        for (ri, fam, key) in deferred {
            if a.subs.contains_key(&ri) && (fam != Family::Evpn || !is_broadcast_key(&key)) {
                by_table.entry((ri, fam)).or_default().push(key);
            }
        }
        for ((ri, fam), keys) in by_table {
            let keys = by_name(keys.iter().map(|k| Key::parse(k)));
            let items = current_items(&self.rib, &vrf_table(&ri, fam), fam, &keys);
            send_bodies(a, &render_bodies(fam, &ri, &items));
        }
    }
}

/// Deferred keys of a blocked agent: (instance, family, key).
pub(crate) type Deferred = BTreeSet<(String, Family, String)>;

/// One agent's EVPN broadcast route in an instance: where to replicate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BumLeg {
    /// Ethernet tag of the route.
    tag: u32,
    /// The agent's address (next hop).
    address: String,
    /// Its BUM label (or VNI).
    label: u32,
    /// Its encapsulations.
    encaps: Vec<TunnelEncap>,
}

const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";

/// Whether an EVPN publish is the agent's broadcast route: TF reads the route from `<nlri>`
/// (`ProcessEnetItem`), whatever the node text (`25/242/255.255.255.255,…` or
/// `25/242/ff:ff:ff:ff:ff:ff,…`); an (S,G) route (group set) is not one.
pub(crate) fn is_broadcast(node: &RouteNode, e: &Entry) -> bool {
    node.family() == (25, 242)
        && e.nlri
            .mac
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
            == Some(BROADCAST)
        && e.nlri.group.is_none()
}

/// Whether an EVPN table key is a broadcast key (`[<tag>-]ff:ff:ff:ff:ff:ff,<ip>/<len>`):
/// an agent's broadcast route or a BGP peer's type-3 route.
pub(crate) fn is_broadcast_key(key: &str) -> bool {
    broadcast_tag(key).is_some()
}

/// The ethernet tag of a broadcast key (`None` for other keys).
fn broadcast_tag(key: &str) -> Option<u32> {
    if !key.contains(BROADCAST) {
        return None;
    }
    let k: EvpnKey = key.parse().ok()?;
    (k.mac.0 == [0xff; 6] && k.group_source.is_none()).then(|| k.ethernet_tag.unwrap_or(0))
}

/// The replication leg under broadcast `key` of `vrf`'s EVPN table that did not come from
/// an agent of this instance (`None` when there is none): a BGP peer's type-3 route, or
/// another instance's broadcast route imported by route target (a secondary path; TF's
/// `EvpnManager` makes every inclusive-multicast route in the table that is not the
/// instance's own MAC-form broadcast route an `EvpnRemoteMcastNode`, which joins the
/// olists of the local ones, `bgp_evpn.cc` `InclusiveMulticastRouteListener`).  Next hop =
/// the originator (the PMSI Tunnel endpoint of ingress replication), label from the PMSI
/// Tunnel attribute or the agent's item, the encapsulations (`gre` when none were sent, as
/// `EncodeEnetNextHop` fills in).
fn bgp_leg(rib: &Rib, vrf: &str, key: &str) -> Option<BumLeg> {
    let r = rib.table(&vrf_table(vrf, Family::Evpn))?.get(key)?;
    let k: EvpnKey = key.parse().ok()?;
    let p = r.paths.iter().find(|p| {
        matches!(p.peer, PeerId::Bgp(_)) || matches!(p.origin, Origin::Secondary { .. })
    })?;
    let address = if k.ip.is_unspecified() {
        p.attrs.next_hop.clone()
    } else {
        k.ip.to_string()
    };
    let mut encaps: Vec<TunnelEncap> = p
        .attrs
        .encap
        .iter()
        .map(|s| TunnelEncap::parse(s))
        .collect();
    if encaps.is_empty() {
        encaps.push(TunnelEncap::Gre);
    }
    Some(BumLeg {
        tag: k.ethernet_tag.unwrap_or(0),
        address,
        label: p.label,
        encaps,
    })
}

/// `<olist><next-hop>…</next-hop>…</olist>` of the given legs.
fn olist(legs: &[&BumLeg]) -> Element {
    let mut ol = Element::new("olist");
    for l in legs {
        let mut encaps = Element::new("tunnel-encapsulation-list");
        for t in &l.encaps {
            encaps = encaps.with_child(Element::leaf("tunnel-encapsulation", t.as_str()));
        }
        ol = ol.with_child(
            Element::new("next-hop")
                .with_child(Element::leaf("af", "1"))
                .with_child(Element::leaf("address", l.address.clone()))
                .with_child(Element::leaf("label", l.label.to_string()))
                .with_child(encaps),
        );
    }
    ol
}

/// The broadcast item id: `[<tag>-]ff:ff:ff:ff:ff:ff,0.0.0.0/32` (what the agent's retract
/// parser reads back, `ReceiveEvpnUpdate`).
fn bum_id(tag: u32) -> String {
    if tag == 0 {
        format!("{BROADCAST},0.0.0.0/32")
    } else {
        format!("{tag}-{BROADCAST},0.0.0.0/32")
    }
}

impl ControlNode {
    /// An agent's broadcast route into (or out of) the RIB as
    /// `[<tag>-]ff:ff:ff:ff:ff:ff,<vRouter>/32`, RD `<vRouter>:<instance-id>`: the BGP link
    /// advertises it as a type-3 route (TF: one per vRouter per instance).
    pub(super) fn bum_publish(
        &mut self,
        conn: ConnId,
        vrf: &str,
        instance_id: u32,
        e: &Entry,
        op: CollectionOp,
    ) {
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        let peer = PeerId::Xmpp(a.name.as_deref().unwrap_or_default().into());
        let tag = e.nlri.ethernet_tag.unwrap_or(0);
        // what it had for this tag goes, unless published again as it was
        let mut gone: Vec<((String, Family, String), Option<String>)> = a
            .published
            .iter()
            .filter(|((ri, fam, key), _)| {
                ri == vrf && *fam == Family::Evpn && broadcast_tag(key) == Some(tag)
            })
            .map(|(k, rd)| (k.clone(), rd.clone()))
            .collect();
        for (k, _) in &gone {
            a.published.remove(k);
        }
        let nh = e.next_hops.first();
        let ip = nh.and_then(|nh| nh.address.parse::<std::net::IpAddr>().ok());
        if let (CollectionOp::Associate, Some(ip)) = (op, ip) {
            let key = EvpnKey {
                ethernet_tag: (tag != 0).then_some(tag),
                mac: MacAddr([0xff; 6]),
                ip,
                plen: if ip.is_ipv4() { 32 } else { 128 },
                group_source: None,
            }
            .to_string();
            match attrs_from_entry(vrf, Family::Evpn, &key, e) {
                Ok((attrs, label, rd_ip)) => {
                    let rd = Some(format!("{rd_ip}:{instance_id}"));
                    let path = (vrf.to_string(), Family::Evpn, key.clone());
                    gone.retain(|(k, old)| *k != path || *old != rd);
                    a.published.insert(path, rd.clone());
                    self.rib
                        .add_local(vrf, Family::Evpn, &key, peer.clone(), rd, label, attrs);
                }
                Err(e) => self.counters.reject(&e),
            }
        }
        for ((ri, fam, key), rd) in gone {
            self.rib.del_local(&ri, fam, &key, &peer, &rd);
        }
    }

    /// Broadcast keys changed in instance tables: the BGP peers' legs under them are
    /// looked up again, and agents with a leg in an instance whose peers' legs changed get
    /// their new lists.
    fn bum_bgp_refresh(&mut self, changed: Vec<(String, String)>) {
        let mut vrfs: BTreeSet<String> = BTreeSet::new();
        for (vrf, key) in changed {
            let leg = bgp_leg(&self.rib, &vrf, &key);
            let legs = self.bgp_bum.entry(vrf.clone()).or_default();
            let differs = match leg {
                Some(l) => legs.insert(key, l.clone()).as_ref() != Some(&l),
                None => legs.remove(&key).is_some(),
            };
            if differs {
                vrfs.insert(vrf);
            }
        }
        self.bgp_bum.retain(|_, legs| !legs.is_empty());
        for vrf in vrfs {
            let legs = self.bum.get(&vrf).cloned().unwrap_or_default();
            self.bum_push(&vrf, &legs);
        }
    }

    /// An agent's broadcast route added or withdrawn in `vrf`.
    pub(super) fn bum_route(&mut self, vrf: &str, agent: &str, e: &Entry, op: CollectionOp) {
        let legs = self.bum.entry(vrf.to_string()).or_default();
        let before = legs.clone();
        match (op, e.next_hops.first()) {
            (CollectionOp::Associate, Some(nh)) => {
                let label = match nh.label {
                    Some(NhLabel::Value(v)) => v,
                    _ => 0,
                };
                legs.insert(
                    agent.to_string(),
                    BumLeg {
                        tag: e.nlri.ethernet_tag.unwrap_or(0),
                        address: nh.address.clone(),
                        label,
                        encaps: nh.effective_encapsulation(),
                    },
                );
            }
            _ => {
                legs.remove(agent);
            }
        }
        if before == *legs {
            return;
        }
        self.bum_push(vrf, &before);
    }

    /// An agent's legs leave (its session closed: `vrf` `None`; or it unsubscribed `vrf`).
    pub(super) fn bum_forget(&mut self, agent: &str, vrf: Option<&str>) {
        let vrfs: Vec<String> = self
            .bum
            .iter()
            .filter(|(v, legs)| vrf.is_none_or(|x| x == v.as_str()) && legs.contains_key(agent))
            .map(|(v, _)| v.clone())
            .collect();
        for v in vrfs {
            let Some(legs) = self.bum.get_mut(&v) else {
                continue;
            };
            let before = legs.clone();
            legs.remove(agent);
            self.bum_push(&v, &before);
        }
        self.bum.retain(|_, legs| !legs.is_empty());
    }

    /// Each agent with a leg in `vrf` gets its list of the others; one that had a leg and
    /// lost it (or is alone now) gets a retract.
    fn bum_push(&mut self, vrf: &str, before: &BTreeMap<String, BumLeg>) {
        let legs = self.bum.get(vrf).cloned().unwrap_or_default();
        let bgp: Vec<BumLeg> = self
            .bgp_bum
            .get(vrf)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let node = ItemsNode {
            afi: 25,
            safi: 242,
            vrf: vrf.to_string(),
        };
        for a in self.agents.values_mut() {
            let Some(name) = a.name.clone() else { continue };
            if !a.subs.contains_key(vrf) {
                continue;
            }
            let mut others: Vec<&BumLeg> = legs
                .iter()
                .filter(|(n, _)| **n != name)
                .map(|(_, l)| l)
                .collect();
            // BGP peers' VTEPs of the same tag, each address once (not the agent itself,
            // whose route may come back from another control node)
            if let Some(mine) = legs.get(&name) {
                for l in &bgp {
                    if l.tag == mine.tag
                        && l.address != mine.address
                        && others.iter().all(|o| o.address != l.address)
                    {
                        others.push(l);
                    }
                }
            }
            let item = match (legs.get(&name), before.get(&name)) {
                // it has a leg and others to replicate to: its list
                (Some(mine), _) if !others.is_empty() => {
                    let mut nlri = Nlri {
                        af: 25,
                        safi: 242,
                        mac: Some(BROADCAST.into()),
                        address: Some("0.0.0.0/32".into()),
                        ..Nlri::default()
                    };
                    nlri.ethernet_tag = Some(mine.tag);
                    let entry = Entry {
                        nlri,
                        version: Some(1),
                        extra: vec![olist(&others)],
                        ..Entry::default()
                    };
                    PushedItem::Item {
                        id: bum_id(mine.tag),
                        entry: Box::new(entry),
                    }
                }
                // alone, or its leg went: nothing to replicate to
                (Some(mine), _) => PushedItem::Retract {
                    id: bum_id(mine.tag),
                },
                (None, Some(old)) => PushedItem::Retract {
                    id: bum_id(old.tag),
                },
                // never published one (an agent of ours): nothing for it
                (None, None) => continue,
            };
            let msg = RouteUpdate {
                env: Envelope::control_to_agent(&name, RESOURCE_BGP),
                node: node.clone(),
                items: vec![item],
            };
            a.session.send_xml(&msg.to_element().to_xml());
        }
    }
}
