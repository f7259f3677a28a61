//! Route items ⇄ RIB paths (tf-facts §2.4 agent → control, §2.5 control → agent), with the
//! control node's validation of agent items (`bgp_xmpp_channel.cc ProcessItem`).

use filament_wire_xmpp::{
    Entry, EvpnKey, Mobility, NextHop, NhLabel, Nlri, RouteNode, TunnelEncap,
};

use crate::rib::{med_from_local_pref, Family, Path, PathAttrs};

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
    /// Family we do not carry (multicast, mvpn, labeled inet).
    #[error("family {afi}/{safi} is not supported")]
    Family {
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u16,
    },
}

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
    let nh: &NextHop = e.next_hops.first().ok_or_else(|| ItemError::NoNextHop {
        key: key.to_string(),
    })?;
    let label = match nh.label {
        Some(NhLabel::Value(v)) => v,
        _ => 0,
    };
    // tf-facts §2.4: routes in a tenant VRF need a non-zero label; plain inet routes in
    // the master instance must have label 0.
    let label_ok = match (fam, vrf == MASTER_INSTANCE) {
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
    let encaps = nh.effective_encapsulation();
    if !encaps.is_empty() && encaps.iter().all(|t| matches!(t, TunnelEncap::Other(_))) {
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
        encap: encaps
            .iter()
            .filter(|t| !matches!(t, TunnelEncap::Other(_)))
            .map(|t| t.as_str().to_string())
            .collect(),
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
                virtual_network: p.attrs.origin_vn.clone(),
                tag_list: p.attrs.tags.clone(),
                ..NextHop::default()
            })
            .collect(),
        version: Some(1),
        virtual_network: first.as_ref().and_then(|a| a.origin_vn.clone()),
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
