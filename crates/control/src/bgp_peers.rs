//! The control node's BGP side: the `filament-bgp` speaker wired to this node's RIB
//! (tf-facts §3).
//!
//! * Peers come from config: this node's `bgp-router` (fq name
//!   `default-domain:default-project:ip-fabric:__default__:<name>`) and the bgp-routers it
//!   references or is referenced by (`bgp_router_refs`); each one's
//!   `bgp_router_parameters` give address, port, AS (default: the global ASN from
//!   global-system-config), hold time, address families and `admin_down`. This node's own
//!   parameters give its identifier and `cluster_id` (route reflection when set; which
//!   peers are clients: [`bgp_config`]). The speaker starts once the config feed caught up
//!   and this node's bgp-router is in it; a later change of AS, identifier or cluster id
//!   is applied to the running speaker ([`filament_bgp::Speaker::reconfigure`]), which
//!   resets the sessions concerned as TF does.
//! * TCP MD5 (RFC 2385), as TF's `MakeBgpNeighborConfig` picks the key: the `auth_data`
//!   of the peering's session attributes (the `bgp_router_refs` link, the attributes for
//!   both routers or for this one), else this node's own bgp-router's `auth_data`; the
//!   peer's bgp-router's `auth_data` is not used (TF ignores it too). `key_type` "md5"
//!   (any case) and the first of `key_items`; no items means no key. A bad `auth_data`
//!   (another key type, an empty or over-long key) keeps that peer down with the reason in
//!   `neighbors` (`last_reason`) and the log ([`auth_key`]); `neighbors` shows `"auth":
//!   "md5"` for a keyed peer, never the key.
//! * What goes out: every route of `bgp.l3vpn.0`, `bgp.l3vpn-inet6.0`, `bgp.evpn.0` whose
//!   best non-BGP path exists (agent routes exported by their instances' targets) is
//!   advertised as a VPN route (RD, label, next hop = the vRouter, route targets,
//!   encapsulation, security groups, MAC mobility); `bgp.rtarget.0` membership (RFC 4684)
//!   goes out as route-target routes, so peers send only what subscribed instances import.
//!   A broadcast-MAC EVPN key (`ff:ff:ff:ff:ff:ff,<vRouter>`) goes out as a type-3 route
//!   with the PMSI Tunnel attribute (RFC 7432 §11.2: ingress replication to the vRouter).
//! * What comes in: VPN routes learned from peers go into the same global tables through
//!   [`crate::rib::Rib::add_vpn`] (source `PeerId::Bgp(<address>)`), from where the RIB
//!   replicates them into every instance importing one of their targets and pushes them
//!   to subscribed agents. A peer's type-3 route comes in under the same broadcast key,
//!   its label taken from its PMSI Tunnel attribute.
//!
//! The link runs as one task beside the node's core task: it reads changed global-table
//! keys when the node signals them ([`Handle::bgp_changed`]), re-reads the peer list (and
//! anything missed) every [`BgpPeersConfig::poll`], and applies speaker events to the node
//! in batches.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use filament_bgp::{
    Attrs, EvpnKey as BgpEvpnKey, LabelStack, Md5Key, Path as BgpPath, PeerConfig, PeerStatus,
    RouteKey, Speaker, SpeakerConfig,
};
use filament_wire_bgp::{
    Esi, EvpnRoute, ExtCommunity, LabelField, MacAddr, PmsiTunnel, RouteTarget, RtcRoute,
    TunnelType, PMSI_TUNNEL, PMSI_TUNNEL_FLAGS,
};
use filament_wire_xmpp::EvpnKey;
use serde_json::{json, Value};

use crate::config::ConfigGraph;
use crate::rib::{Family, PathAttrs, PeerId, Route, RTARGET_TABLE};
use crate::shell::Handle;

mod learn;
mod session_attrs;
use learn::{apply_events, collect, Outbox};

/// Where this node's bgp-routers live (tf-facts §3).
const FABRIC_RI: [&str; 4] = [
    "default-domain",
    "default-project",
    "ip-fabric",
    "__default__",
];

/// Settings of the BGP link.
#[derive(Debug, Clone)]
pub struct BgpPeersConfig {
    /// BGP listen address (`--bgp-listen`, default 0.0.0.0:179).
    pub listen: SocketAddr,
    /// This node's name (its bgp-router's name).
    pub name: String,
    /// This node's BGP address (`--bgp-address`): identifier and next hop.
    pub address: Option<Ipv4Addr>,
    /// How often changed routes and peers are read from the node.
    pub poll: Duration,
}

/// Errors of the BGP link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BgpPeersError {
    /// The speaker could not start.
    #[error("BGP speaker: {0}")]
    Speaker(#[from] filament_bgp::SpeakerError),
    /// The control node's core is gone.
    #[error("control node core stopped")]
    CoreGone,
}

/// What the node's config says about BGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    /// Local AS.
    pub asn: u32,
    /// Local identifier.
    pub router_id: Option<Ipv4Addr>,
    /// Route-reflector cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    /// Configured peers.
    pub peers: Vec<PeerConfig>,
    /// Peers kept down by a configuration error (e.g. a bad `auth_data`), with the reason.
    pub errors: BTreeMap<IpAddr, String>,
}

/// Why an `auth_data` (TF's AuthenticationData) cannot key a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthDataError {
    /// `key_type` is not "md5" (TF would install no key: the session would run unsigned).
    #[error("auth_data key_type {0:?} is not supported (only \"md5\")")]
    KeyType(String),
    /// The first key item has no usable key.
    #[error("auth_data key_items[0] has no key")]
    NoKey,
    /// The key is refused (empty, longer than 80 bytes).
    #[error("auth_data key_items[0]: {0}")]
    Key(#[from] filament_bgp::Md5KeyError),
}

/// The MD5 key of an `auth_data` value (TF's `BuildKeyChain` + `GetBestAuthKey`: the
/// first item of `key_items`, `key_type` compared without case); `None` when it has no
/// key items (absent, null, or an empty list), as TF's `AuthenticationData::Empty`.
pub fn auth_key(auth: Option<&Value>) -> Result<Option<Md5Key>, AuthDataError> {
    let Some(items) = auth
        .and_then(|a| a.get("key_items"))
        .and_then(Value::as_array)
        .filter(|i| !i.is_empty())
    else {
        return Ok(None);
    };
    let ty = auth
        .and_then(|a| a.get("key_type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ty.eq_ignore_ascii_case("md5") {
        return Err(AuthDataError::KeyType(ty.to_string()));
    }
    let key = items[0]
        .get("key")
        .and_then(Value::as_str)
        .ok_or(AuthDataError::NoKey)?;
    Ok(Some(Md5Key::new(key.as_bytes())?))
}

/// The `auth_data` of a peering link's session attributes ([`session_attrs::chosen`]), if
/// it has key items.
fn session_auth<'a>(attr: &'a Value, local: &str) -> Option<&'a Value> {
    session_attrs::chosen(attr, local)?
        .get("auth_data")
        .filter(|d| {
            d.get("key_items")
                .and_then(Value::as_array)
                .is_some_and(|i| !i.is_empty())
        })
}

fn params(o: &filament_config::StoredObj) -> Option<&serde_json::Map<String, Value>> {
    o.props
        .get("bgp_router_parameters")
        .and_then(Value::as_object)
}

/// `bgp_router_parameters.cluster_id` (an integer; 0 or absent: none) as an identifier.
fn cluster_id_of(p: Option<&serde_json::Map<String, Value>>) -> Option<Ipv4Addr> {
    p.and_then(|p| p.get("cluster_id"))
        .and_then(Value::as_u64)
        .filter(|c| *c != 0)
        .and_then(|c| u32::try_from(c).ok())
        .map(Ipv4Addr::from)
}

/// Whether a bgp-router follows the global ASN: a control node of vendor `contrail` (or
/// none), as TF's schema transformer keeps it (`BgpRouterST.update_global_asn`: every
/// `contrail` router, bgpaas ones excepted, is rewritten with global-system-config's
/// `autonomous_system`). Only control nodes here: an external router created without a
/// `vendor` keeps the AS it was given.
pub fn follows_global_asn(p: Option<&serde_json::Map<String, Value>>) -> bool {
    let s = |f: &str| p.and_then(|p| p.get(f)).and_then(Value::as_str);
    s("router_type") == Some("control-node")
        && s("vendor").is_none_or(|v| v.is_empty() || v.eq_ignore_ascii_case("contrail"))
}

/// BGP settings from the config graph for the node called `name`.
///
/// Route reflection: when this node's bgp-router has a `cluster_id`, a peer is a
/// route-reflector client unless its own bgp-router carries a different cluster id (another
/// reflector), as TF's `BgpPeer::CheckSplitHorizon` decides with the peers' configured
/// cluster ids: a user sets the cluster id on the control node only, and its iBGP peers
/// get each other's routes (RFC 4456 §6, with ORIGINATOR_ID / CLUSTER_LIST added).
pub fn bgp_config(g: &ConfigGraph, name: &str) -> BgpConfig {
    let asn = g.asn();
    let mut fq: Vec<String> = FABRIC_RI.iter().map(|s| s.to_string()).collect();
    fq.push(name.to_string());
    let Some(me) = g.lookup("bgp-router", &fq) else {
        return BgpConfig {
            asn,
            router_id: None,
            cluster_id: None,
            peers: Vec::new(),
            errors: BTreeMap::new(),
        };
    };
    let mine = params(me);
    let ip = |m: Option<&serde_json::Map<String, Value>>, f: &str| {
        m.and_then(|p| p.get(f))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
    };
    let router_id = ip(mine, "identifier").or_else(|| ip(mine, "address"));
    let cluster_id = cluster_id_of(mine);
    // A control node's AS is the global one, whatever its bgp-router still says (the
    // shell rewrites the object too, as TF's schema transformer does); its
    // `local_autonomous_system`, when set, is the AS every session uses (TF's
    // MakeBgpNeighborConfig: the master's local_autonomous_system as each local_as).
    let own_as = |f: &str| {
        mine.and_then(|p| p.get(f))
            .and_then(Value::as_u64)
            .and_then(|a| u32::try_from(a).ok())
            .filter(|a| *a != 0)
    };
    let local_asn = own_as("local_autonomous_system")
        .or_else(|| own_as("autonomous_system").filter(|_| !follows_global_asn(mine)))
        .unwrap_or(asn);
    // Peerings are refs between bgp-routers, in either direction (with the link's
    // session attributes, for the MD5 key).
    let mut others: BTreeMap<String, &filament_config::StoredObj> = BTreeMap::new();
    let mut links: BTreeMap<String, &Value> = BTreeMap::new();
    for (o, attr) in g.targets(me, "bgp_router_refs") {
        others.insert(o.uuid.clone(), o);
        links.insert(o.uuid.clone(), attr);
    }
    for o in g.referrers(&me.uuid, "bgp-router") {
        others.insert(o.uuid.clone(), o);
        if let Some((_, attr)) = g
            .targets(o, "bgp_router_refs")
            .into_iter()
            .find(|(t, _)| t.uuid == me.uuid)
        {
            links.entry(o.uuid.clone()).or_insert(attr);
        }
    }
    let own_auth = mine.and_then(|p| p.get("auth_data"));
    let mut peers = Vec::new();
    let mut errors = BTreeMap::new();
    for o in others.values() {
        let p = params(o);
        let Some(addr) = p
            .and_then(|p| p.get("address"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let as_of = |f: &str| {
            p.and_then(|p| p.get(f))
                .and_then(Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .filter(|a| *a != 0)
        };
        // TF's MakeBgpNeighborConfig: the peer's local_autonomous_system, else its AS
        let remote_as = if follows_global_asn(p) {
            asn
        } else {
            as_of("local_autonomous_system")
                .or_else(|| as_of("autonomous_system"))
                .unwrap_or(local_asn)
        };
        let mut pc = PeerConfig::new(addr, remote_as);
        pc.name = o.fq_name.last().cloned().unwrap_or_default();
        if let Some(port) = p
            .and_then(|p| p.get("port"))
            .and_then(Value::as_u64)
            .and_then(|x| u16::try_from(x).ok())
            .filter(|x| *x != 0)
        {
            pc.port = port;
        }
        pc.hold_time = p
            .and_then(|p| p.get("hold_time"))
            .and_then(Value::as_u64)
            .and_then(|x| u16::try_from(x).ok())
            .filter(|x| *x != 0);
        // down if the peer's bgp-router or this node's is (TF: either admin_down)
        let down = |m: Option<&serde_json::Map<String, Value>>| {
            m.and_then(|p| p.get("admin_down"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        pc.admin_down = down(p) || down(mine);
        let fams = session_attrs::families(p.and_then(|p| p.get("address_families")));
        if !fams.is_empty() {
            pc.families = fams;
        }
        // the peering link's session attributes override (TF's NeighborSetSessionAttributes)
        if let Some(s) = links
            .get(&o.uuid)
            .and_then(|a| session_attrs::chosen(a, name))
        {
            session_attrs::apply(&mut pc, s);
        }
        let theirs = cluster_id_of(p);
        pc.rr_client = cluster_id.is_some() && (theirs.is_none() || theirs == cluster_id);
        let session = links.get(&o.uuid).and_then(|a| session_auth(a, name));
        match auth_key(session.or(own_auth)) {
            Ok(key) => pc.md5_key = key,
            // Never up with a wrong key (or unsigned, as TF would run it): down, with why.
            Err(e) => {
                pc.admin_down = true;
                errors.insert(addr, e.to_string());
            }
        }
        peers.push(pc);
    }
    BgpConfig {
        asn: local_asn,
        router_id,
        cluster_id,
        peers,
        errors,
    }
}

/// Split a global-table key `RD:rest` (the RD has exactly one colon).
fn split_rd(key: &str) -> Option<(&str, &str)> {
    let first = key.find(':')?;
    let second = first + 1 + key[first + 1..].find(':')?;
    Some((&key[..second], &key[second + 1..]))
}

fn encap_type(s: &str) -> Option<TunnelType> {
    match s {
        "gre" => Some(TunnelType::MplsInGre),
        "udp" => Some(TunnelType::MplsInUdp),
        "vxlan" => Some(TunnelType::Vxlan),
        _ => None,
    }
}

fn encap_name(t: TunnelType) -> Option<&'static str> {
    match t {
        TunnelType::MplsInGre | TunnelType::Gre => Some("gre"),
        TunnelType::MplsInUdp => Some("udp"),
        TunnelType::Vxlan => Some("vxlan"),
        _ => None,
    }
}

/// The BGP key of a global-table key.
pub fn route_key(table: &str, key: &str) -> Option<RouteKey> {
    if table == RTARGET_TABLE {
        // `<asn>:target:<..>:<..>`
        let (asn, rt) = key.split_once(':')?;
        let rt: RouteTarget = rt.parse().ok()?;
        return Some(RouteKey::Rtc(RtcRoute::new(asn.parse().ok()?, rt)));
    }
    let fam = Family::ALL.into_iter().find(|f| f.vpn_table() == table)?;
    let (rd, rest) = split_rd(key)?;
    let rd = rd.parse().ok()?;
    match fam {
        Family::Inet | Family::Inet6 => Some(RouteKey::Vpn(rd, rest.parse().ok()?)),
        Family::Evpn => {
            let k: EvpnKey = rest.parse().ok()?;
            if k.group_source.is_some() {
                return None;
            }
            let mac = MacAddr(k.mac.0);
            let zero = LabelField::new(0)?;
            let route = if mac.0 == [0xff; 6] {
                EvpnRoute::InclusiveMulticast {
                    rd,
                    eth_tag: k.ethernet_tag.unwrap_or(0),
                    orig_ip: k.ip,
                }
            } else {
                EvpnRoute::MacIp {
                    rd,
                    esi: Esi::ZERO,
                    eth_tag: k.ethernet_tag.unwrap_or(0),
                    mac,
                    ip: (!k.ip.is_unspecified()).then_some(k.ip),
                    label1: zero,
                    label2: None,
                }
            };
            Some(RouteKey::Evpn(Box::new(BgpEvpnKey(route))))
        }
    }
}

/// What to advertise for one global-table route: the best path not learned over BGP, or
/// `None` (withdraw).
pub fn advert(table: &str, key: &RouteKey, route: Option<&Route>, asn: u32) -> Option<BgpPath> {
    let p = route?
        .paths
        .iter()
        .find(|p| !matches!(p.peer, PeerId::Bgp(_)))?;
    let a = &p.attrs;
    let label = p.label;
    let mut attrs = Attrs {
        next_hop: a.next_hop.parse().ok(),
        med: Some(a.med),
        local_pref: Some(a.local_pref),
        ..Attrs::default()
    };
    // RFC 9494 §4.2: an LLGR-stale path (an agent's, past its restart time) carries
    // LLGR_STALE; the speaker sends it only to peers that negotiated LLGR.
    if a.llgr_stale {
        attrs.communities.push(filament_wire_bgp::LLGR_STALE);
    }
    for rt in &a.route_targets {
        if let Ok(rt) = rt.parse::<RouteTarget>() {
            attrs.ext_communities.push(rt.into());
        }
    }
    for e in &a.encap {
        if let Some(t) = encap_type(e) {
            attrs
                .ext_communities
                .push(ExtCommunity::new_encapsulation(t));
        }
    }
    for sg in &a.security_groups {
        attrs
            .ext_communities
            .extend(ExtCommunity::new_security_group(asn, *sg));
    }
    if let Some((seq, sticky)) = a.mobility {
        attrs
            .ext_communities
            .push(ExtCommunity::new_mac_mobility(sticky, seq));
    }
    if let Some(id) = a.origin_vn_id {
        // TF's `origin-vn:<asn>:<vn id>` (tf-facts §3), so peers know the source network.
        attrs
            .ext_communities
            .extend(ExtCommunity::new_origin_vn(asn, id));
    }
    let vxlan = a.encap.iter().any(|e| e == "vxlan");
    if let RouteKey::Evpn(k) = key {
        if let (EvpnRoute::InclusiveMulticast { .. }, Some(nh)) = (&k.0, attrs.next_hop) {
            // RFC 7432 - Section 11.2: "The Inclusive Multicast Ethernet Tag
            // route MUST carry a PMSI Tunnel attribute as specified in
            // [RFC6514]." Ingress replication to the vRouter, with the VNI
            // (VXLAN) or the MPLS label in the label field (RFC 8365 §5.1.3).
            let field = if vxlan {
                LabelField::new(label)
            } else {
                LabelField::new((label << 4) | 1)
            };
            if let Some(field) = field {
                attrs.other.push((
                    PMSI_TUNNEL_FLAGS,
                    PMSI_TUNNEL,
                    PmsiTunnel::ingress_replication(field, nh).encode(),
                ));
            }
        }
    }
    let labels = match key {
        RouteKey::Vpn(..) => LabelStack::from_slice(&[label]),
        // EVPN label fields: the VNI for VXLAN, else an MPLS label (RFC 8365 §5.1.3).
        RouteKey::Evpn(_) if vxlan => LabelStack::from_slice(&[label]),
        RouteKey::Evpn(_) => LabelStack::from_slice(&[(label << 4) | 1]),
        _ => LabelStack::new(),
    };
    if table == RTARGET_TABLE {
        attrs.med = None;
    }
    Some(BgpPath {
        key: key.clone(),
        labels,
        attrs: Arc::new(attrs),
    })
}

/// A learned BGP path as `(family, rd, key without RD, label, attributes)` for
/// [`crate::rib::Rib::add_vpn`]; `None` for what the RIB does not carry.
pub fn learned(path: &BgpPath) -> Option<(Family, String, String, u32, PathAttrs)> {
    let attrs = path_attrs(&path.attrs);
    let vxlan = attrs.encap.iter().any(|e| e == "vxlan");
    let (fam, rd, rest, label) = match &path.key {
        RouteKey::Vpn(rd, p) => {
            let fam = match p {
                ipnet::IpNet::V4(_) => Family::Inet,
                ipnet::IpNet::V6(_) => Family::Inet6,
            };
            (
                fam,
                rd.to_string(),
                p.to_string(),
                path.labels.first().copied()?,
            )
        }
        RouteKey::Evpn(k) => match &k.0 {
            EvpnRoute::MacIp {
                rd,
                eth_tag,
                mac,
                ip,
                ..
            } => {
                let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
                let key = EvpnKey {
                    ethernet_tag: (*eth_tag != 0).then_some(*eth_tag),
                    mac: filament_wire_xmpp::MacAddr(mac.0),
                    ip,
                    plen: if ip.is_ipv4() { 32 } else { 128 },
                    group_source: None,
                };
                let raw = path.labels.first().copied()?;
                let label = if vxlan { raw } else { raw >> 4 };
                (Family::Evpn, rd.to_string(), key.to_string(), label)
            }
            // A peer's type-3 route (its flood-list membership for the
            // instance) is kept as TF's broadcast key `ff:ff:ff:ff:ff:ff,<ip>`,
            // the form agents publish theirs in; its label is the PMSI
            // Tunnel attribute's (RFC 7432 §11.2), 0 when there is none.
            EvpnRoute::InclusiveMulticast {
                rd,
                eth_tag,
                orig_ip,
            } => {
                let key = EvpnKey {
                    ethernet_tag: (*eth_tag != 0).then_some(*eth_tag),
                    mac: filament_wire_xmpp::MacAddr([0xff; 6]),
                    ip: *orig_ip,
                    plen: if orig_ip.is_ipv4() { 32 } else { 128 },
                    group_source: None,
                };
                let label = pmsi_of(&path.attrs)
                    .map(|p| {
                        if vxlan {
                            p.label.value()
                        } else {
                            p.label.label().value()
                        }
                    })
                    .unwrap_or(0);
                (Family::Evpn, rd.to_string(), key.to_string(), label)
            }
            _ => return None,
        },
        _ => return None,
    };
    Some((fam, rd, rest, label, attrs))
}

/// The PMSI Tunnel attribute of a path, if it carries a well-formed one.
fn pmsi_of(a: &Attrs) -> Option<PmsiTunnel> {
    a.other
        .iter()
        .find(|(_, code, _)| *code == PMSI_TUNNEL)
        .and_then(|(_, _, v)| PmsiTunnel::decode(v))
}

/// Our attributes of a BGP path's (no origin VN name yet: that needs the config).
fn path_attrs(a: &Attrs) -> PathAttrs {
    PathAttrs {
        next_hop: a.next_hop.map(|n| n.to_string()).unwrap_or_default(),
        encap: a
            .ext_communities
            .iter()
            .filter_map(|c| c.encapsulation().and_then(encap_name))
            .map(str::to_string)
            .collect(),
        security_groups: a
            .ext_communities
            .iter()
            .filter_map(|c| c.security_group().map(|(_, id)| id))
            .collect(),
        local_pref: a.local_pref.unwrap_or(100),
        med: a.med.unwrap_or(0),
        mobility: a
            .ext_communities
            .iter()
            .find_map(|c| c.mac_mobility())
            .map(|(sticky, seq)| (seq, sticky)),
        as_path_len: u32::try_from(a.as_path_len()).unwrap_or(u32::MAX),
        route_targets: a.route_targets().map(|t| t.to_string()).collect(),
        origin_vn_id: a
            .ext_communities
            .iter()
            .find_map(|c| c.origin_vn())
            .map(|(_, id)| id),
        llgr_stale: a.communities.contains(&filament_wire_bgp::LLGR_STALE),
        ..PathAttrs::default()
    }
}

/// Peer summaries as JSON for `filament neighbors`: our keys, and the XMPP rows' (TF's
/// `ShowBgpNeighborSummary` names: `peer_address`, `peer_asn`, `encoding`, `peer_type`,
/// `flap_count`, `last_reason`, `prefixes`) beside them. `local_as` tells internal peers.
pub fn peer_summaries(peers: &[PeerStatus], local_as: u32) -> Value {
    Value::Array(
        peers
            .iter()
            .map(|p| {
                let peer_type = if p.remote_as == local_as {
                    "internal"
                } else {
                    "external"
                };
                // down, but its paths kept stale (as the XMPP rows say it)
                let state = match p.gr_state {
                    Some(_) if p.state != filament_bgp::State::Established => {
                        format!("{} (GR helper)", p.state.name())
                    }
                    _ => p.state.name().to_string(),
                };
                json!({
                    "peer": p.address.to_string(), "name": p.name, "type": "bgp",
                    "asn": p.remote_as, "state": state, "flaps": p.stats.flaps,
                    "received": p.received, "sent": p.sent,
                    "families": p.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
                    "last_error": p.stats.last_error,
                    "peer_address": p.address.to_string(), "peer_asn": p.remote_as,
                    "encoding": "BGP", "peer_type": peer_type, "flap_count": p.stats.flaps,
                    "last_reason": p.stats.last_error, "prefixes": p.received,
                    "stale_paths": p.stale, "graceful_restart": p.gr_state, "treat_as_withdraw": p.stats.treat_as_withdraw,
                    "malformed": p.stats.malformed,
                })
            })
            .collect(),
    )
}

/// Add what the speaker does not know to its rows: `"auth": "md5"` for a keyed peer
/// (never the key; also TF's `auth_type`, "MD5" or "NIL"), and a configuration error as
/// the peer's `last_reason`.
fn annotate(
    rows: &mut Value,
    peers: &BTreeMap<IpAddr, PeerConfig>,
    errors: &BTreeMap<IpAddr, String>,
) {
    for row in rows.as_array_mut().into_iter().flatten() {
        let Some(addr) = row["peer"].as_str().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        let keyed = peers.get(&addr).is_some_and(|p| p.md5_key.is_some());
        row["auth"] = if keyed { json!("md5") } else { Value::Null };
        // TF's BgpNeighborResp `auth_type` (`AuthenticationData::KeyTypeToString`).
        row["auth_type"] = json!(if keyed { "MD5" } else { "NIL" });
        if let Some(e) = errors.get(&addr) {
            row["last_reason"] = json!(e);
            row["last_error"] = json!(e);
        }
    }
}

/// The global tables, whose routes the link advertises.
const GLOBAL_TABLES: [&str; 4] = [
    "bgp.l3vpn.0",
    "bgp.l3vpn-inet6.0",
    "bgp.evpn.0",
    RTARGET_TABLE,
];

/// How long the link waits for this node's bgp-router before starting the speaker with
/// `--bgp-address` and the global ASN.
const STARTUP_WAIT: Duration = Duration::from_secs(10);

/// The speaker's settings from this node's config: the identifier falls back to
/// `--bgp-address`, then 127.0.0.1.
fn speaker_config(bc: &BgpConfig, cfg: &BgpPeersConfig) -> SpeakerConfig {
    let router_id = bc
        .router_id
        .or(cfg.address)
        .unwrap_or(Ipv4Addr::new(127, 0, 0, 1));
    let mut sc = SpeakerConfig::new(bc.asn, router_id);
    sc.cluster_id = bc.cluster_id;
    sc
}

/// Run the BGP link until the node's core goes away.
pub async fn run(handle: Handle, cfg: BgpPeersConfig) -> Result<(), BgpPeersError> {
    let name = cfg.name.clone();
    // Wait for the ASN / identifier / cluster id (a change later resets sessions, so start
    // with the right ones): wait for the config feed to catch up and this node's bgp-router to be in it (the node
    // registers one after the sync when none exists). With --bgp-address it starts after
    // STARTUP_WAIT without one.
    let since = tokio::time::Instant::now();
    let bc = loop {
        let n2 = name.clone();
        let (bc, synced) = handle
            .with_node(move |n| (bgp_config(n.graph(), &n2), n.synced.is_some()))
            .await
            .map_err(|_| BgpPeersError::CoreGone)?;
        if (synced && bc.router_id.is_some())
            || (cfg.address.is_some() && since.elapsed() >= STARTUP_WAIT)
        {
            break bc;
        }
        tokio::time::sleep(cfg.poll).await;
    };
    let mut sc = speaker_config(&bc, &cfg);
    handle
        .with_node(|n| n.bgp_gr())
        .await
        .map_err(|_| BgpPeersError::CoreGone)?
        .apply(&mut sc);
    let (speaker, mut events) = Speaker::start(sc.clone(), Some(cfg.listen)).await?;
    tracing::info!(listen = %cfg.listen, asn = sc.asn, router_id = %sc.router_id,
        cluster_id = ?sc.cluster_id, "BGP speaker started");
    let mut peers: BTreeMap<IpAddr, PeerConfig> = BTreeMap::new();
    let mut first = true;
    let mut outbox = Outbox::default();
    let mut tick = tokio::time::interval(cfg.poll);
    let changed = handle.bgp_changed();
    // Speaker events are applied by their own task: the speaker's core waits when its
    // event queue is full, so a loop that also awaits the speaker (`peers()`) while
    // events are queued would wait for it forever (a full table stalled at ~16k routes).
    let applier = handle.clone();
    let mut apply = tokio::spawn(async move {
        while let Some(mut batch) = events.recv().await {
            while batch.len() < 4096 {
                match events.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            applier
                .with_node(move |n| apply_events(n, batch))
                .await
                .map_err(|_| BgpPeersError::CoreGone)?;
        }
        Ok::<(), BgpPeersError>(())
    });
    loop {
        tokio::select! {
            done = &mut apply => {
                // the speaker stopped (Ok) or the node did
                return done.unwrap_or(Err(BgpPeersError::CoreGone));
            }
            _ = tick.tick() => {
                let n2 = name.clone();
                let (now_bc, gr) = handle
                    .with_node(move |n| (bgp_config(n.graph(), &n2), n.bgp_gr()))
                    .await
                    .map_err(|_| BgpPeersError::CoreGone)?;
                // This node's AS / identifier / cluster id changed: the speaker resets the
                // sessions concerned (TF resets peers on these changes), and every route is
                // advertised again (security-group and origin-VN communities carry the AS).
                // Graceful-restart settings apply without a reset (node/gr.rs).
                let mut new_sc = SpeakerConfig {
                    asn: now_bc.asn,
                    router_id: now_bc.router_id.unwrap_or(sc.router_id),
                    cluster_id: now_bc.cluster_id,
                    ..sc.clone()
                };
                gr.apply(&mut new_sc);
                if new_sc != sc {
                    tracing::info!(asn = new_sc.asn, router_id = %new_sc.router_id,
                        cluster_id = ?new_sc.cluster_id, "BGP speaker reconfigured");
                    speaker.reconfigure(new_sc.clone())?;
                    first |= new_sc.asn != sc.asn;
                    sc = new_sc;
                }
                let all = first;
                let asn = sc.asn;
                let want = now_bc.peers;
                let errors = now_bc.errors;
                let adverts = handle
                    .with_node(move |n| collect(n, all, asn))
                    .await
                    .map_err(|_| BgpPeersError::CoreGone)?;
                first = false;
                // A node listening on one address talks from it, so a peer that knows it
                // by that address recognises its connections (several nodes on one host).
                let local = (!cfg.listen.ip().is_unspecified()).then_some(cfg.listen.ip());
                let want: BTreeMap<IpAddr, PeerConfig> = want
                    .into_iter()
                    .map(|mut p| {
                        p.local_addr = p.local_addr.or(local);
                        (p.address, p)
                    })
                    .collect();
                for a in peers.keys().filter(|a| !want.contains_key(a)) {
                    speaker.remove_peer(*a)?;
                }
                for (a, p) in &want {
                    if peers.get(a) != Some(p) {
                        if let Some(e) = errors.get(a) {
                            tracing::warn!(peer = %a, name = %p.name, error = %e, "BGP peer kept down");
                        }
                        speaker.add_peer(p.clone())?;
                    }
                }
                peers = want;
                // `GET /neighbors` shows the BGP peers beside the XMPP ones.
                let status = speaker.peers().await?;
                let mut rows = peer_summaries(&status, sc.asn);
                annotate(&mut rows, &peers, &errors);
                handle
                    .with_node(move |n| {
                        n.set_bgp_neighbors(rows);
                        n.set_bgp_stale(&status);
                    })
                    .await
                    .map_err(|_| BgpPeersError::CoreGone)?;
                outbox.send(&speaker, adverts)?;
            }
            // Changed keys wait in the node: advertise them now, not at the next poll.
            _ = changed.notified(), if !first => {
                let asn = sc.asn;
                let adverts = handle
                    .with_node(move |n| collect(n, false, asn))
                    .await
                    .map_err(|_| BgpPeersError::CoreGone)?;
                outbox.send(&speaker, adverts)?;
            }
        }
    }
}

/// Start the link as its own task.
pub fn spawn(handle: Handle, cfg: BgpPeersConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = run(handle, cfg).await {
            tracing::warn!(error = %e, "BGP link stopped");
        }
    })
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;
