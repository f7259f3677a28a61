//! Between wire UPDATEs and the speaker's paths.
//!
//! * received UPDATE -> [`Received`]: withdrawn keys and announced paths
//!   with normalized [`Attrs`], including the RFC 6793 §4.2.3 AS4_PATH /
//!   AS4_AGGREGATOR merge on sessions with an OLD (2-octet) speaker;
//! * outgoing paths -> encoded UPDATE messages packed up to the 4096-octet
//!   limit, with AS4_PATH / AS4_AGGREGATOR added towards OLD speakers
//!   (RFC 6793 §4.2.2), End-of-RIB markers (RFC 4724 §2).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use filament_wire_bgp::{
    Aggregator, AsPath, AsSegment, DecodeCtx, EncodeError, Message, MpReach, MpUnreach, NextHop,
    Nlri, PathAttr, Update, AS_TRANS, HEADER_LEN,
};

use crate::types::{to_nlri, Attrs, Family, LabelStack, Path, RouteKey};

/// AS4_PATH type code (RFC 6793 §3).
pub const AS4_PATH: u8 = 17;
/// AS4_AGGREGATOR type code (RFC 6793 §3).
pub const AS4_AGGREGATOR: u8 = 18;
/// Optional + transitive attribute flags.
const OPT_TRANS: u8 = 0xc0;

/// What one received UPDATE means.
#[derive(Debug, Default)]
pub struct Received {
    /// Keys withdrawn (IPv4 withdrawn field and MP_UNREACH_NLRI).
    pub withdrawn: Vec<RouteKey>,
    /// Routes announced (the IPv4 NLRI field and MP_REACH_NLRI), one group per
    /// attribute set: every route of a group shares its attributes' `Arc`.
    pub announced: Vec<Announced>,
    /// End-of-RIB markers (RFC 4724 §2) by family.
    pub end_of_rib: Vec<Family>,
    /// Families present in the UPDATE that the speaker does not carry.
    pub unknown_families: usize,
}

/// Routes announced with one attribute set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The attributes of every route in the group.
    pub attrs: Arc<Attrs>,
    /// Each route's key and labels.
    pub routes: Vec<(RouteKey, LabelStack)>,
}

impl Received {
    /// The announced routes as paths, each with its own handle on its attributes.
    pub fn paths(&self) -> impl Iterator<Item = Path> + '_ {
        self.announced.iter().flat_map(|g| {
            g.routes.iter().map(|(key, labels)| Path {
                key: key.clone(),
                labels: labels.clone(),
                attrs: g.attrs.clone(),
            })
        })
    }
}

/// The keys of every route an UPDATE mentions (for treat-as-withdraw).
pub fn all_keys(u: &Update) -> Vec<RouteKey> {
    let mut out: Vec<RouteKey> = u.withdrawn.iter().map(|p| RouteKey::Inet(*p)).collect();
    out.extend(u.nlri.iter().map(|p| RouteKey::Inet(*p)));
    for a in &u.attrs {
        match a {
            PathAttr::MpReach(m) => out.extend(keys_of(&m.nlri)),
            PathAttr::MpUnreach(m) => out.extend(keys_of(&m.withdrawn)),
            _ => {}
        }
    }
    out
}

fn keys_of(n: &Nlri) -> Vec<RouteKey> {
    routes_of(n).into_iter().map(|(k, _)| k).collect()
}

/// The key and labels of each route of an NLRI field.
fn routes_of(n: &Nlri) -> Vec<(RouteKey, LabelStack)> {
    match n {
        Nlri::Ipv4Unicast(v) => v
            .iter()
            .map(|p| (RouteKey::Inet(*p), LabelStack::new()))
            .collect(),
        Nlri::Vpnv4(v) | Nlri::Vpnv6(v) => v.iter().map(Path::vpn_parts).collect(),
        Nlri::Evpn(v) => v.iter().map(Path::evpn_parts).collect(),
        Nlri::RouteTarget(v) => v
            .iter()
            .map(|r| (RouteKey::Rtc(*r), LabelStack::new()))
            .collect(),
        Nlri::Ipv6Unicast(_) | Nlri::Unknown { .. } => Vec::new(),
    }
}

fn family_of(n: &Nlri) -> Option<Family> {
    let (afi, safi) = n.afi_safi();
    Family::from_afi_safi(afi, safi)
}

/// Interpret a decoded UPDATE. `four_octet` says whether the session
/// negotiated 4-octet AS numbers.
pub fn receive(u: &Update, four_octet: bool) -> Received {
    let mut rx = Received::default();
    // RFC 4724 - Section 2: "An UPDATE message with no reachable Network
    // Layer Reachability Information (NLRI) and empty withdrawn NLRI is
    // specified as the End-of-RIB marker that can be used by a BGP speaker
    // to indicate to its peer the completion of the initial routing update
    // after the session is established. For the IPv4 unicast address
    // family, the End-of-RIB marker is an UPDATE message with the minimum
    // length. For any other address family, it is an UPDATE message that
    // contains only the MP_UNREACH_NLRI attribute with no withdrawn routes
    // for that <AFI, SAFI>."
    if u.is_end_of_rib() {
        rx.end_of_rib.push(Family::Inet);
        return rx;
    }
    if let [PathAttr::MpUnreach(m)] = u.attrs.as_slice() {
        if u.nlri.is_empty() && u.withdrawn.is_empty() && m.withdrawn.is_empty() {
            let (afi, safi) = m.withdrawn.afi_safi();
            match Family::from_afi_safi(afi, safi) {
                Some(f) => rx.end_of_rib.push(f),
                None => rx.unknown_families += 1,
            }
            return rx;
        }
    }
    rx.withdrawn
        .extend(u.withdrawn.iter().map(|p| RouteKey::Inet(*p)));
    let mut attrs = Attrs::default();
    let mut as4_path = None;
    let mut as4_aggr = None;
    let mut reach = None;
    for a in &u.attrs {
        match a {
            PathAttr::Origin(o) => attrs.origin = *o,
            PathAttr::AsPath(p) => attrs.as_path = p.clone(),
            PathAttr::NextHop(n) => attrs.next_hop = Some(IpAddr::V4(*n)),
            PathAttr::Med(m) => attrs.med = Some(*m),
            PathAttr::LocalPref(l) => attrs.local_pref = Some(*l),
            PathAttr::AtomicAggregate => attrs.atomic_aggregate = true,
            PathAttr::Aggregator(g) => attrs.aggregator = Some(*g),
            PathAttr::Communities(c) => attrs.communities = c.clone(),
            PathAttr::OriginatorId(o) => attrs.originator_id = Some(*o),
            PathAttr::ClusterList(c) => attrs.cluster_list = c.clone(),
            PathAttr::ExtCommunities(c) => attrs.ext_communities = c.clone(),
            PathAttr::MpReach(m) => reach = Some(m),
            PathAttr::MpUnreach(m) => match family_of(&m.withdrawn) {
                Some(_) => rx.withdrawn.extend(keys_of(&m.withdrawn)),
                None => rx.unknown_families += 1,
            },
            PathAttr::Unknown { code, data, .. } if *code == AS4_PATH => as4_path = Some(data),
            PathAttr::Unknown { code, data, .. } if *code == AS4_AGGREGATOR => {
                as4_aggr = Some(data)
            }
            PathAttr::Unknown { flags, code, data } => {
                if let Some(PathAttr::Unknown { flags, code, data }) = (PathAttr::Unknown {
                    flags: *flags,
                    code: *code,
                    data: data.clone(),
                })
                .propagated()
                {
                    attrs.other.push((flags, code, data));
                }
            }
        }
    }
    // RFC 6793 - Section 4.1: "A NEW BGP speaker ... MUST NOT send the AS4_PATH
    // attribute and the AS4_AGGREGATOR attribute to a NEW BGP speaker. ...
    // if received from a NEW BGP speaker, [they] MUST be discarded".
    if !four_octet {
        merge_as4(
            &mut attrs,
            as4_path.map(|v| v.as_slice()),
            as4_aggr.map(|v| v.as_slice()),
        );
    }
    let attrs = Arc::new(attrs);
    if !u.nlri.is_empty() {
        rx.announced.push(Announced {
            attrs: attrs.clone(),
            routes: u
                .nlri
                .iter()
                .map(|p| (RouteKey::Inet(*p), LabelStack::new()))
                .collect(),
        });
    }
    if let Some(m) = reach {
        match family_of(&m.nlri) {
            // RFC 4364 - Section 4.3.2: the next hop of a VPN route is an
            // address with an RD of zero. Any other RD leaves the route with no
            // usable next hop: its NLRI are handled as withdrawn (RFC 7606
            // §7.11 "treat-as-withdraw" for a semantically bad next hop),
            // never installed without one.
            Some(_) if matches!(m.next_hop, NextHop::Raw(_)) => {
                rx.withdrawn.extend(keys_of(&m.nlri));
            }
            Some(_) => {
                let mut a = (*attrs).clone();
                a.next_hop = match &m.next_hop {
                    NextHop::V4(v) => Some(IpAddr::V4(*v)),
                    // RFC 4659 §3.2.1.2: an IPv4 next hop of an IPv6 VPN
                    // route travels as an IPv4-mapped IPv6 address.
                    NextHop::V6 { global, .. } => Some(match global.to_ipv4_mapped() {
                        Some(v4) => IpAddr::V4(v4),
                        None => IpAddr::V6(*global),
                    }),
                    NextHop::Raw(_) => None,
                };
                rx.announced.push(Announced {
                    attrs: Arc::new(a),
                    routes: routes_of(&m.nlri),
                });
            }
            None => rx.unknown_families += 1,
        }
    }
    rx
}

/// RFC 6793 - Section 4.2.3: reconstruct the path of a route received from
/// an OLD speaker from AS_PATH and AS4_PATH (and AGGREGATOR / AS4_AGGREGATOR).
fn merge_as4(attrs: &mut Attrs, as4_path: Option<&[u8]>, as4_aggr: Option<&[u8]>) {
    // "If the AGGREGATOR attribute contains an AS number other than AS_TRANS,
    // then: the AS4_AGGREGATOR and the AS4_PATH attributes MUST be ignored."
    if let Some(g) = attrs.aggregator {
        if g.asn != u32::from(AS_TRANS) {
            return;
        }
        if let Some([a, b, c, d, e, f, g2, h]) = as4_aggr.and_then(|d| <[u8; 8]>::try_from(d).ok())
        {
            attrs.aggregator = Some(Aggregator {
                asn: u32::from_be_bytes([a, b, c, d]),
                ip: [e, f, g2, h].into(),
            });
        }
    }
    let Some(as4) = as4_path.and_then(decode_as4_path) else {
        return;
    };
    let n2 = count(&attrs.as_path);
    let n4 = count(&as4);
    // "if the number of AS numbers in the AS_PATH attribute is less than the
    // number of AS numbers in the AS4_PATH attribute, then the AS4_PATH
    // attribute SHALL be ignored, and the AS_PATH attribute SHALL be taken
    // as the AS path information."
    if n2 < n4 {
        return;
    }
    // "the leading AS numbers from the AS_PATH attribute ... are prepended
    // to the AS4_PATH attribute" (so the merged path has n2 numbers).
    let mut keep = n2 - n4;
    let mut segs = Vec::new();
    for s in &attrs.as_path.0 {
        if keep == 0 {
            break;
        }
        match s {
            AsSegment::Sequence(v) if v.len() > keep => {
                segs.push(AsSegment::Sequence(v[..keep].to_vec()));
                keep = 0;
            }
            AsSegment::Sequence(v) => {
                keep -= v.len();
                segs.push(s.clone());
            }
            AsSegment::Set(_) => {
                keep -= 1;
                segs.push(s.clone());
            }
            _ => segs.push(s.clone()),
        }
    }
    segs.extend(as4.0);
    attrs.as_path = AsPath(segs);
}

fn count(p: &AsPath) -> usize {
    Attrs {
        as_path: p.clone(),
        ..Attrs::default()
    }
    .as_path_len()
}

/// Decode an AS4_PATH value (4-octet segments, RFC 6793 §3). Confederation
/// segments are not allowed in AS4_PATH and make it unusable.
pub fn decode_as4_path(b: &[u8]) -> Option<AsPath> {
    let mut segs = Vec::new();
    let mut rest = b;
    while let [kind, n, tail @ ..] = rest {
        let n = usize::from(*n);
        if n == 0 || tail.len() < n * 4 {
            return None;
        }
        let asns = tail[..n * 4]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        segs.push(match kind {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            _ => return None,
        });
        rest = &tail[n * 4..];
    }
    rest.is_empty().then_some(AsPath(segs))
}

fn encode_as4_path(p: &AsPath) -> Vec<u8> {
    let mut v = Vec::new();
    for s in &p.0 {
        let (kind, asns) = match s {
            AsSegment::Set(a) => (1u8, a),
            AsSegment::Sequence(a) => (2, a),
            _ => continue,
        };
        for chunk in asns.chunks(255) {
            v.push(kind);
            v.push(chunk.len() as u8);
            chunk
                .iter()
                .for_each(|a| v.extend_from_slice(&a.to_be_bytes()));
        }
    }
    v
}

/// Path attributes for sending `attrs` (without MP_REACH / NEXT_HOP).
fn wire_attrs(attrs: &Attrs, four_octet: bool) -> Vec<PathAttr> {
    let mut out = vec![
        PathAttr::Origin(attrs.origin),
        PathAttr::AsPath(attrs.as_path.clone()),
    ];
    if let Some(m) = attrs.med {
        out.push(PathAttr::Med(m));
    }
    if let Some(l) = attrs.local_pref {
        out.push(PathAttr::LocalPref(l));
    }
    if attrs.atomic_aggregate {
        out.push(PathAttr::AtomicAggregate);
    }
    if let Some(g) = attrs.aggregator {
        out.push(PathAttr::Aggregator(g));
    }
    if !attrs.communities.is_empty() {
        out.push(PathAttr::Communities(attrs.communities.clone()));
    }
    if let Some(o) = attrs.originator_id {
        out.push(PathAttr::OriginatorId(o));
    }
    if !attrs.cluster_list.is_empty() {
        out.push(PathAttr::ClusterList(attrs.cluster_list.clone()));
    }
    if !attrs.ext_communities.is_empty() {
        out.push(PathAttr::ExtCommunities(attrs.ext_communities.clone()));
    }
    // RFC 6793 - Section 4.2.2: "Whenever the AS path information contains
    // an AS number that is non-mappable, the NEW BGP speaker MUST send the
    // AS4_PATH attribute" [towards an OLD speaker]; likewise AS4_AGGREGATOR.
    if !four_octet {
        let big = |a: &u32| *a > u32::from(u16::MAX);
        let any_big = attrs.as_path.0.iter().any(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.iter().any(big),
            _ => false,
        });
        if any_big {
            out.push(PathAttr::Unknown {
                flags: OPT_TRANS,
                code: AS4_PATH,
                data: encode_as4_path(&attrs.as_path),
            });
        }
        if let Some(g) = attrs.aggregator.filter(|g| big(&g.asn)) {
            let mut d = g.asn.to_be_bytes().to_vec();
            d.extend_from_slice(&g.ip.octets());
            out.push(PathAttr::Unknown {
                flags: OPT_TRANS,
                code: AS4_AGGREGATOR,
                data: d,
            });
        }
    }
    for (flags, code, data) in &attrs.other {
        out.push(PathAttr::Unknown {
            flags: *flags,
            code: *code,
            data: data.clone(),
        });
    }
    out
}

fn mp_next_hop(family: Family, nh: Option<IpAddr>) -> NextHop {
    match (family, nh) {
        (Family::Inet6Vpn, Some(IpAddr::V4(v4))) => NextHop::V6 {
            global: v4.to_ipv6_mapped(),
            link_local: None,
        },
        (_, Some(IpAddr::V4(v4))) => NextHop::V4(v4),
        (_, Some(IpAddr::V6(v6))) => NextHop::V6 {
            global: v6,
            link_local: None,
        },
        (_, None) => NextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: None,
        },
    }
}

/// An empty NLRI of `family`.
fn empty_nlri(family: Family) -> Nlri {
    match family {
        Family::Inet => Nlri::Ipv4Unicast(Vec::new()),
        Family::InetVpn => Nlri::Vpnv4(Vec::new()),
        Family::Inet6Vpn => Nlri::Vpnv6(Vec::new()),
        Family::Evpn => Nlri::Evpn(Vec::new()),
        Family::RouteTarget => Nlri::RouteTarget(Vec::new()),
    }
}

fn extend_nlri(into: &mut Nlri, from: Nlri) {
    match (into, from) {
        (Nlri::Ipv4Unicast(a), Nlri::Ipv4Unicast(b)) => a.extend(b),
        (Nlri::Vpnv4(a), Nlri::Vpnv4(b)) | (Nlri::Vpnv6(a), Nlri::Vpnv6(b)) => a.extend(b),
        (Nlri::Evpn(a), Nlri::Evpn(b)) => a.extend(b),
        (Nlri::RouteTarget(a), Nlri::RouteTarget(b)) => a.extend(b),
        _ => {}
    }
}

/// The End-of-RIB marker of a family (RFC 4724 §2).
pub fn end_of_rib(family: Family) -> Update {
    match family {
        Family::Inet => Update::default(),
        f => Update {
            attrs: vec![PathAttr::MpUnreach(MpUnreach {
                withdrawn: empty_nlri(f),
            })],
            ..Update::default()
        },
    }
}

fn encode(u: &Update, ctx: &DecodeCtx, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    Message::Update(u.clone()).encode(ctx, out)
}

/// Encode withdrawals of `keys` (one family or several) as UPDATEs packed
/// to the size limit, appended to `out`.
pub fn encode_withdrawals(
    keys: &[RouteKey],
    ctx: &DecodeCtx,
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut by_family: HashMap<Family, Vec<Nlri>> = HashMap::new();
    for k in keys {
        by_family
            .entry(k.family())
            .or_default()
            .push(to_nlri(k, &[], true));
    }
    let mut msgs = 0;
    for (family, nlris) in by_family {
        let make = |n: Nlri| match n {
            Nlri::Ipv4Unicast(v) => Update {
                withdrawn: v,
                ..Update::default()
            },
            n => Update {
                attrs: vec![PathAttr::MpUnreach(MpUnreach { withdrawn: n })],
                ..Update::default()
            },
        };
        msgs += pack(family, nlris, make, ctx, max_len, out)?;
    }
    Ok(msgs)
}

/// Encode announcements of paths that share `attrs` (already transformed
/// for the peer, next hop included) as packed UPDATEs appended to `out`.
pub fn encode_announcements(
    family: Family,
    attrs: &Attrs,
    routes: &[(&RouteKey, &[u32])],
    ctx: &DecodeCtx,
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let base = wire_attrs(attrs, ctx.four_octet_as);
    let nlris = routes.iter().map(|(k, l)| to_nlri(k, l, false)).collect();
    let make = |n: Nlri| {
        let mut a = base.clone();
        match n {
            Nlri::Ipv4Unicast(v) => {
                if let Some(IpAddr::V4(nh)) = attrs.next_hop {
                    a.insert(2, PathAttr::NextHop(nh));
                }
                Update {
                    attrs: a,
                    nlri: v,
                    ..Update::default()
                }
            }
            n => {
                a.insert(
                    2,
                    PathAttr::MpReach(MpReach {
                        next_hop: mp_next_hop(family, attrs.next_hop),
                        nlri: n,
                    }),
                );
                Update {
                    attrs: a,
                    ..Update::default()
                }
            }
        }
    };
    pack(family, nlris, make, ctx, max_len, out)
}

/// Greedily pack single-route NLRIs into as few messages as fit `max_len`.
fn pack(
    family: Family,
    nlris: Vec<Nlri>,
    make: impl Fn(Nlri) -> Update,
    ctx: &DecodeCtx,
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut scratch = Vec::new();
    encode(&make(empty_nlri(family)), ctx, &mut scratch)?;
    // An attribute longer than 255 octets needs the extended length octet;
    // leave room for it.
    let base = scratch.len() + 2;
    let budget = max_len.saturating_sub(base).max(HEADER_LEN);
    let mut msgs = 0;
    let mut cur = empty_nlri(family);
    let mut used = 0;
    for n in nlris {
        let len = n.encoded_len()?;
        if used + len > budget && !cur.is_empty() {
            encode(
                &make(std::mem::replace(&mut cur, empty_nlri(family))),
                ctx,
                out,
            )?;
            msgs += 1;
            used = 0;
        }
        used += len;
        extend_nlri(&mut cur, n);
    }
    if !cur.is_empty() {
        encode(&make(cur), ctx, out)?;
        msgs += 1;
    }
    Ok(msgs)
}
