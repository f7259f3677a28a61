//! Route items ⇄ RIB paths (tf-facts §2.4 agent → control, §2.5 control → agent), with the
//! control node's validation of agent items as TF's `bgp_xmpp_channel.cc` does it
//! (`ProcessItem` for inet, `ProcessInet6Item`, `ProcessEnetItem`; docs/tf-agent-compat.md
//! "Route items TF refuses"):
//! * exactly one next hop ("Agents should send only one next-hop in the item"): none or
//!   several refuse the item (ECMP is the control node's doing, across agents);
//! * the next hop must be an IP address and not 0.0.0.0 (`XmppDecodeAddress`);
//! * inet/inet6 labels: above 0xFFFFF (20 bits) refused; in the master instance non-zero
//!   refused, elsewhere zero refused (EVPN labels are VNIs or labels, not checked);
//! * `vxlan` is not an inet/inet6 encapsulation (skipped, as unknown names are); a list of
//!   nothing valid makes TF's path infeasible (`NoTunnelEncap`), we refuse the item;
//! * a next-hop `mac` (router MAC) that does not parse refuses the item.
//!
//! A refused item is counted by reason ([`ItemError::reason`]); the session stays up.

use filament_wire_xmpp::{
    Entry, EvpnKey, MacAddr, Mobility, NextHop, NhLabel, Nlri, RouteNode, TunnelEncap,
};

use crate::rib::{med_from_local_pref, Family, Path, PathAttrs, PeerId};

/// The virtual network TF pushes for a route whose origin VN is unknown.
pub const UNRESOLVED_VN: &str = "unresolved";

/// The master instance (plain inet routes there carry label 0).
pub const MASTER_INSTANCE: &str = "default-domain:default-project:ip-fabric:__default__";

/// Why an agent's route item was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// No next hop on an add.
    #[error("route {key} has no next hop")]
    NoNextHop {
        /// Route key.
        key: String,
    },
    /// Label rules of the instance broken.
    #[error("route {key} in {vrf}: label {label} not allowed")]
    BadLabel {
        /// Route key.
        key: String,
        /// Instance.
        vrf: String,
        /// Label.
        label: u32,
    },
    /// Every listed encapsulation is unknown: the path would be infeasible.
    #[error("route {key}: no known tunnel encapsulation")]
    NoEncap {
        /// Route key.
        key: String,
    },
    /// More than one next hop in the item (TF: "More than one nexthop received").
    #[error("route {key} has {count} next hops; an agent sends one")]
    TooManyNextHops {
        /// Route key.
        key: String,
        /// How many.
        count: usize,
    },
    /// The next hop is not an IP address, or is unspecified.
    #[error("route {key}: bad next hop address {address:?}")]
    BadNextHop {
        /// Route key.
        key: String,
        /// The address as sent.
        address: String,
    },
    /// The next hop's router MAC does not parse.
    #[error("route {key}: bad next-hop mac {mac:?}")]
    BadMac {
        /// Route key.
        key: String,
        /// The MAC as sent.
        mac: String,
    },
    /// Family we do not carry (multicast, mvpn, labeled inet).
    #[error("family {afi}/{safi} is not supported")]
    Family {
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u16,
    },
}

impl ItemError {
    /// A short name of the reason, for counters (`/status` `rejected_by_reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            ItemError::NoNextHop { .. } => "no_next_hop",
            ItemError::TooManyNextHops { .. } => "several_next_hops",
            ItemError::BadNextHop { .. } => "bad_next_hop",
            ItemError::BadLabel { .. } => "bad_label",
            ItemError::NoEncap { .. } => "no_valid_encapsulation",
            ItemError::BadMac { .. } => "bad_mac",
            ItemError::Family { .. } => "unsupported_family",
        }
    }
}

/// Largest MPLS label (20 bits): TF refuses inet/inet6 items above it.
pub const MAX_LABEL: u32 = 0xF_FFFF;

/// `(family, table key)` of a publish node (`vrf` comes from the collection node).
pub fn node_key(node: &RouteNode) -> Result<(Family, String), ItemError> {
    match node {
        RouteNode::Inet { prefix, plen, .. } => Ok((Family::Inet, format!("{prefix}/{plen}"))),
        RouteNode::Inet6 { prefix, plen, .. } => Ok((Family::Inet6, format!("{prefix}/{plen}"))),
        RouteNode::Evpn(k) => Ok((Family::Evpn, k.to_string())),
        other => {
            let (afi, safi) = other.family();
            Err(ItemError::Family { afi, safi })
        }
    }
}

/// Validate an agent's item and turn it into path attributes; also returns the label and
/// the RD source address (the first next hop, `<agent-ip>` of `<agent-ip>:<instance-id>`).
pub fn attrs_from_entry(
    vrf: &str,
    fam: Family,
    key: &str,
    e: &Entry,
) -> Result<(PathAttrs, u32, String), ItemError> {
    // "Agents should send only one next-hop in the item."
    let nh: &NextHop = match e.next_hops.as_slice() {
        [] => {
            return Err(ItemError::NoNextHop {
                key: key.to_string(),
            })
        }
        [nh] => nh,
        many => {
            return Err(ItemError::TooManyNextHops {
                key: key.to_string(),
                count: many.len(),
            })
        }
    };
    // XmppDecodeAddress: an IP address, not the unspecified one
    match nh.address.trim().parse::<std::net::IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => {}
        _ => {
            return Err(ItemError::BadNextHop {
                key: key.to_string(),
                address: nh.address.clone(),
            })
        }
    }
    if let Some(mac) = nh.mac.as_deref().filter(|m| !m.trim().is_empty()) {
        if mac.trim().parse::<MacAddr>().is_err() {
            return Err(ItemError::BadMac {
                key: key.to_string(),
                mac: mac.to_string(),
            });
        }
    }
    let label = match nh.label {
        Some(NhLabel::Value(v)) => v,
        _ => 0,
    };
    // tf-facts §2.4 and ProcessItem: `nit->label > 0xFFFFF || (master && nit->label)` is a
    // bad label; so is `!master && !nit->label`.
    let label_ok = match (fam, vrf == MASTER_INSTANCE) {
        (Family::Inet | Family::Inet6, _) if label > MAX_LABEL => false,
        (Family::Inet | Family::Inet6, true) => label == 0,
        (Family::Inet | Family::Inet6, false) => label != 0,
        (Family::Evpn, _) => true,
    };
    if !label_ok {
        return Err(ItemError::BadLabel {
            key: key.to_string(),
            vrf: vrf.to_string(),
            label,
        });
    }
    // ProcessItem / ProcessInet6Item skip UNSPEC and, for inet and inet6, VXLAN;
    // ProcessEnetItem only UNSPEC.  All listed skipped: TF's path is infeasible.
    let usable = |t: &TunnelEncap| match t {
        TunnelEncap::Other(_) => false,
        TunnelEncap::Vxlan => fam == Family::Evpn,
        _ => true,
    };
    let listed = nh.effective_encapsulation();
    let encaps: Vec<&TunnelEncap> = listed.iter().filter(|t| usable(t)).collect();
    if !listed.is_empty() && encaps.is_empty() {
        return Err(ItemError::NoEncap {
            key: key.to_string(),
        });
    }
    let local_pref = e.local_preference.unwrap_or(100);
    let med = match e.med {
        Some(m) if m != 0 => m,
        _ => med_from_local_pref(local_pref),
    };
    let mobility = e
        .mobility
        .map(|m| (m.seqno, m.sticky))
        .or(e.sequence_number.map(|s| (s, false)));
    let attrs = PathAttrs {
        next_hop: nh.address.clone(),
        encap: encaps.iter().map(|t| t.as_str().to_string()).collect(),
        mac: nh.mac.clone(),
        origin_vn: e
            .virtual_network
            .clone()
            .or_else(|| nh.virtual_network.clone()),
        origin_vn_id: None,
        security_groups: e.security_groups.clone(),
        communities: e.community_tags.clone(),
        tags: nh.tag_list.clone(),
        local_pref,
        med,
        mobility,
        sub_protocol: e.sub_protocol.clone(),
        as_path_len: 0,
        ..PathAttrs::default()
    };
    Ok((attrs, label, nh.address.clone()))
}

/// The `<entry>` pushed to agents for a route's best (ECMP) paths: one next hop per path.
pub fn entry_for(fam: Family, key: &str, best: &[Path]) -> Entry {
    let mut nlri = Nlri::default();
    match fam {
        Family::Inet => {
            nlri.af = 1;
            nlri.safi = 1;
            nlri.address = Some(key.to_string());
        }
        Family::Inet6 => {
            nlri.af = 2;
            nlri.safi = 1;
            nlri.address = Some(key.to_string());
        }
        Family::Evpn => {
            nlri.af = 25;
            nlri.safi = 242;
            if let Ok(k) = key.parse::<EvpnKey>() {
                nlri.ethernet_tag = k.ethernet_tag;
                nlri.mac = Some(k.mac.to_string());
                nlri.address = Some(format!("{}/{}", k.ip, k.plen));
            }
        }
    }
    let first = best.first().map(|p| p.attrs.clone());
    // TF's BgpXmppMessage::GetVirtualNetwork: the origin VN's name; for a path that
    // carries none and came from a BGP peer (origin VN index -1), "unresolved".
    let vn = |p: &Path| {
        p.attrs
            .origin_vn
            .clone()
            .or_else(|| matches!(p.peer, PeerId::Bgp(_)).then(|| UNRESOLVED_VN.to_string()))
    };
    Entry {
        nlri,
        next_hops: best
            .iter()
            .map(|p| NextHop {
                af: 1,
                address: p.attrs.next_hop.clone(),
                mac: p.attrs.mac.clone(),
                label: Some(NhLabel::Value(p.label)),
                tunnel_encapsulation: p
                    .attrs
                    .encap
                    .iter()
                    .map(|s| TunnelEncap::parse(s))
                    .collect(),
                virtual_network: vn(p),
                tag_list: p.attrs.tags.clone(),
                ..NextHop::default()
            })
            .collect(),
        version: Some(1),
        virtual_network: best.first().and_then(vn),
        mobility: first
            .as_ref()
            .and_then(|a| a.mobility)
            .map(|(seqno, sticky)| Mobility { seqno, sticky }),
        sequence_number: first.as_ref().and_then(|a| a.mobility).map(|(s, _)| s),
        security_groups: first
            .as_ref()
            .map(|a| a.security_groups.clone())
            .unwrap_or_default(),
        community_tags: first
            .as_ref()
            .map(|a| a.communities.clone())
            .unwrap_or_default(),
        local_preference: first.as_ref().map(|a| a.local_pref),
        med: first.as_ref().map(|a| a.med),
        sub_protocol: first.as_ref().and_then(|a| a.sub_protocol.clone()),
        ..Entry::default()
    }
}

/// `(afi, xmpp safi)` of a family.
pub fn xmpp_family(fam: Family) -> (u16, u16) {
    match fam {
        Family::Inet => (1, 1),
        Family::Inet6 => (2, 1),
        Family::Evpn => (25, 242),
    }
}
