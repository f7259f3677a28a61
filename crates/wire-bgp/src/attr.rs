//! Path attributes (RFC 4271 §4.3, §5, §6.3) with the RFC 7606 revised
//! error handling as a decode policy: ORIGIN, AS_PATH, NEXT_HOP, MED,
//! LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR, COMMUNITIES (RFC 1997),
//! ORIGINATOR_ID / CLUSTER_LIST (RFC 4456), MP_REACH_NLRI / MP_UNREACH_NLRI
//! (RFC 4760 §3, §4) and EXTENDED_COMMUNITIES (RFC 4360) with typed views for
//! route targets, tunnel encapsulation (RFC 9012 §4.1), MAC mobility
//! (RFC 7432 §7.7) and Tungsten Fabric's origin-VN and security-group
//! communities. Unknown attributes are preserved verbatim.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::nlri::Nlri;
use crate::notification::UpdateError;
use crate::types::{Afi, RouteTarget, Safi};
use crate::{len_u8, DecodeCtx, DecodeError, EncodeError, Reader};

/// Attribute flag bits (RFC 4271 §4.3).
pub(crate) mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED: u8 = 0x10;
}

/// Attribute type codes.
pub(crate) mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;
    pub const EXT_COMMUNITIES: u8 = 16;
}

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// 0: NLRI is interior to the originating AS.
    Igp,
    /// 1: learned via EGP.
    Egp,
    /// 2: learned by some other means.
    Incomplete,
}

/// One AS_PATH segment (RFC 4271 §4.3, RFC 5065 §3 for confederations).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AsSegment {
    /// AS_SET (1).
    Set(Vec<u32>),
    /// AS_SEQUENCE (2).
    Sequence(Vec<u32>),
    /// AS_CONFED_SEQUENCE (3).
    ConfedSequence(Vec<u32>),
    /// AS_CONFED_SET (4).
    ConfedSet(Vec<u32>),
}

/// AS_PATH: a list of segments (may be empty for iBGP-originated routes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath(pub Vec<AsSegment>);

/// AGGREGATOR (RFC 4271 §5.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    /// AS of the aggregating speaker (AS_TRANS on 2-octet sessions).
    pub asn: u32,
    /// Its BGP identifier.
    pub ip: Ipv4Addr,
}

enum_with_unknown! {
    /// BGP tunnel encapsulation types (IANA registry of RFC 9012).
    pub enum TunnelType(u16) {
        /// L2TPv3 over IP.
        L2tpv3 = 1,
        /// GRE.
        Gre = 2,
        /// IP in IP.
        IpInIp = 7,
        /// VXLAN.
        Vxlan = 8,
        /// NVGRE.
        Nvgre = 9,
        /// MPLS.
        Mpls = 10,
        /// MPLS in GRE.
        MplsInGre = 11,
        /// VXLAN GPE.
        VxlanGpe = 12,
        /// MPLS in UDP.
        MplsInUdp = 13,
    }
}

/// One extended community (RFC 4360 §2), kept as its 8 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

// TF `extended-community/types.h`: experimental types and subtypes.
const TF_EXPERIMENTAL: u8 = 0x80;
const TF_EXPERIMENTAL_AS4: u8 = 0x82;
const TF_ORIGIN_VN: u8 = 0x71;
const TF_SG_ID: u8 = 0x04;

impl ExtCommunity {
    /// Type (high octet).
    pub fn kind(&self) -> u8 {
        self.0[0]
    }

    /// Sub-type (low octet of the type field, for extended types).
    pub fn subtype(&self) -> u8 {
        self.0[1]
    }

    /// Route target view (types 0x00/0x01/0x02, subtype 0x02).
    pub fn route_target(&self) -> Option<RouteTarget> {
        RouteTarget::from_bytes(&self.0)
    }

    /// Encapsulation community (RFC 9012 §4.1, opaque type 0x03 subtype
    /// 0x0c): 4 reserved octets then the 2-octet tunnel type.
    pub fn encapsulation(&self) -> Option<TunnelType> {
        (self.0[0] == 0x03 && self.0[1] == 0x0c)
            .then(|| TunnelType::from(u16::from_be_bytes([self.0[6], self.0[7]])))
    }

    /// Build an encapsulation community.
    pub fn new_encapsulation(t: TunnelType) -> Self {
        let v = u16::from(t).to_be_bytes();
        ExtCommunity([0x03, 0x0c, 0, 0, 0, 0, v[0], v[1]])
    }

    /// MAC mobility (RFC 7432 §7.7, type 0x06 subtype 0x00):
    /// `(sticky, sequence number)`.
    pub fn mac_mobility(&self) -> Option<(bool, u32)> {
        let b = &self.0;
        (b[0] == 0x06 && b[1] == 0x00).then(|| {
            (
                b[2] & 0x01 != 0,
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
    }

    /// Build a MAC mobility community.
    pub fn new_mac_mobility(sticky: bool, seq: u32) -> Self {
        let s = seq.to_be_bytes();
        ExtCommunity([0x06, 0x00, u8::from(sticky), 0, s[0], s[1], s[2], s[3]])
    }

    /// EVPN router's MAC (RFC 9135 §8.1, type 0x06 subtype 0x03).
    pub fn router_mac(&self) -> Option<crate::MacAddr> {
        let b = &self.0;
        (b[0] == 0x06 && b[1] == 0x03).then(|| crate::MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// Whether this is the EVPN default gateway community (RFC 7432 §7.8,
    /// type 0x03 subtype 0x0d).
    pub fn is_default_gateway(&self) -> bool {
        self.0[0] == 0x03 && self.0[1] == 0x0d
    }

    fn tf_pair(&self, subtype: u8) -> Option<(u32, u32)> {
        let b = &self.0;
        if b[1] != subtype {
            return None;
        }
        match b[0] {
            TF_EXPERIMENTAL => Some((
                u32::from(u16::from_be_bytes([b[2], b[3]])),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            )),
            TF_EXPERIMENTAL_AS4 => Some((
                u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                u32::from(u16::from_be_bytes([b[6], b[7]])),
            )),
            _ => None,
        }
    }

    fn new_tf_pair(subtype: u8, asn: u32, n: u32) -> Option<Self> {
        let mut b = [0; 8];
        b[1] = subtype;
        if let Ok(a) = u16::try_from(asn) {
            b[0] = TF_EXPERIMENTAL;
            b[2..4].copy_from_slice(&a.to_be_bytes());
            b[4..].copy_from_slice(&n.to_be_bytes());
        } else {
            b[0] = TF_EXPERIMENTAL_AS4;
            b[2..6].copy_from_slice(&asn.to_be_bytes());
            b[6..].copy_from_slice(&u16::try_from(n).ok()?.to_be_bytes());
        }
        Some(ExtCommunity(b))
    }

    /// Tungsten Fabric origin-VN (`origin-vn:<asn>:<vn index>`): type 0x80
    /// (2-octet AS, 4-octet index) or 0x82 (4-octet AS, 2-octet index),
    /// subtype 0x71.
    pub fn origin_vn(&self) -> Option<(u32, u32)> {
        self.tf_pair(TF_ORIGIN_VN)
    }

    /// Build a TF origin-VN community; `None` if a 4-octet AS is paired
    /// with an index above 65535.
    pub fn new_origin_vn(asn: u32, vn_index: u32) -> Option<Self> {
        Self::new_tf_pair(TF_ORIGIN_VN, asn, vn_index)
    }

    /// Tungsten Fabric security group (`secgroup:<asn>:<sgid>`): type 0x80
    /// or 0x82, subtype 0x04, same layout as origin-VN.
    pub fn security_group(&self) -> Option<(u32, u32)> {
        self.tf_pair(TF_SG_ID)
    }

    /// Build a TF security-group community.
    pub fn new_security_group(asn: u32, sg_id: u32) -> Option<Self> {
        Self::new_tf_pair(TF_SG_ID, asn, sg_id)
    }
}

impl From<RouteTarget> for ExtCommunity {
    fn from(rt: RouteTarget) -> Self {
        ExtCommunity(rt.to_bytes())
    }
}

/// Next hop in MP_REACH_NLRI (RFC 4760 §3; RFC 4364 §4.3.2 and RFC 4659
/// §3.2.1 for VPN families, whose addresses are preceded by an all-zero RD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// IPv4 address (4 octets, or 12 with a zero RD for VPN families).
    V4(Ipv4Addr),
    /// IPv6 global address and optional link-local (16 or 32 octets; 24 or
    /// 48 with zero RDs for VPN families).
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address.
        link_local: Option<Ipv6Addr>,
    },
    /// Anything else, verbatim (e.g. a VPN next hop with a non-zero RD).
    Raw(Vec<u8>),
}

impl NextHop {
    /// The (first) address, if typed.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            NextHop::V4(a) => Some(IpAddr::V4(*a)),
            NextHop::V6 { global, .. } => Some(IpAddr::V6(*global)),
            NextHop::Raw(_) => None,
        }
    }

    fn decode(b: &[u8], vpn: bool) -> NextHop {
        let strip = |chunk: usize| -> Option<Vec<u8>> {
            if !vpn {
                return Some(b.to_vec());
            }
            let mut v = Vec::new();
            for c in b.chunks(chunk + 8) {
                if c.len() != chunk + 8 || c[..8] != [0; 8] {
                    return None;
                }
                v.extend_from_slice(&c[8..]);
            }
            Some(v)
        };
        let addrs = match (vpn, b.len()) {
            (false, 4 | 16 | 32) => strip(0),
            (true, 12) => strip(4),
            (true, 24 | 48) => strip(16),
            _ => None,
        };
        match addrs.as_deref() {
            Some(&[a, b, c, d]) => NextHop::V4(Ipv4Addr::new(a, b, c, d)),
            Some(v) if v.len() == 16 || v.len() == 32 => {
                let g: [u8; 16] = v[..16].try_into().unwrap_or([0; 16]);
                let ll = v.get(16..).and_then(|l| <[u8; 16]>::try_from(l).ok());
                NextHop::V6 {
                    global: g.into(),
                    link_local: ll.map(Ipv6Addr::from),
                }
            }
            _ => NextHop::Raw(b.to_vec()),
        }
    }

    fn encode(&self, vpn: bool, out: &mut Vec<u8>) {
        let rd: &[u8] = if vpn { &[0; 8] } else { &[] };
        match self {
            NextHop::V4(a) => {
                out.extend_from_slice(rd);
                out.extend_from_slice(&a.octets());
            }
            NextHop::V6 { global, link_local } => {
                out.extend_from_slice(rd);
                out.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.extend_from_slice(rd);
                    out.extend_from_slice(&ll.octets());
                }
            }
            NextHop::Raw(v) => out.extend_from_slice(v),
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 §3). AFI/SAFI come from the NLRI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    /// Network address of next hop.
    pub next_hop: NextHop,
    /// Reachable destinations.
    pub nlri: Nlri,
}

/// MP_UNREACH_NLRI (RFC 4760 §4): withdrawn destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    /// Withdrawn routes.
    pub withdrawn: Nlri,
}

/// A path attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAttr {
    /// ORIGIN (1).
    Origin(Origin),
    /// AS_PATH (2).
    AsPath(AsPath),
    /// NEXT_HOP (3).
    NextHop(Ipv4Addr),
    /// MULTI_EXIT_DISC (4).
    Med(u32),
    /// LOCAL_PREF (5).
    LocalPref(u32),
    /// ATOMIC_AGGREGATE (6).
    AtomicAggregate,
    /// AGGREGATOR (7).
    Aggregator(Aggregator),
    /// COMMUNITIES (8, RFC 1997).
    Communities(Vec<u32>),
    /// ORIGINATOR_ID (9, RFC 4456).
    OriginatorId(Ipv4Addr),
    /// CLUSTER_LIST (10, RFC 4456).
    ClusterList(Vec<Ipv4Addr>),
    /// MP_REACH_NLRI (14, RFC 4760).
    MpReach(MpReach),
    /// MP_UNREACH_NLRI (15, RFC 4760).
    MpUnreach(MpUnreach),
    /// EXTENDED_COMMUNITIES (16, RFC 4360).
    ExtCommunities(Vec<ExtCommunity>),
    /// Any other attribute, verbatim (flags without the extended-length bit).
    Unknown {
        /// Attribute flags.
        flags: u8,
        /// Type code.
        code: u8,
        /// Value.
        data: Vec<u8>,
    },
}

/// What to do with one decoded attribute.
pub(crate) enum Outcome {
    Keep(PathAttr),
    /// RFC 7606 "attribute discard".
    Discard,
    /// RFC 7606 "treat-as-withdraw".
    Withdraw(UpdateError),
}

#[derive(Clone, Copy)]
enum Policy {
    Withdraw,
    Discard,
    Reset,
}

// ===== impl PathAttr =====

impl PathAttr {
    /// The attribute type code.
    pub fn code(&self) -> u8 {
        match self {
            PathAttr::Origin(_) => code::ORIGIN,
            PathAttr::AsPath(_) => code::AS_PATH,
            PathAttr::NextHop(_) => code::NEXT_HOP,
            PathAttr::Med(_) => code::MED,
            PathAttr::LocalPref(_) => code::LOCAL_PREF,
            PathAttr::AtomicAggregate => code::ATOMIC_AGGREGATE,
            PathAttr::Aggregator(_) => code::AGGREGATOR,
            PathAttr::Communities(_) => code::COMMUNITIES,
            PathAttr::OriginatorId(_) => code::ORIGINATOR_ID,
            PathAttr::ClusterList(_) => code::CLUSTER_LIST,
            PathAttr::MpReach(_) => code::MP_REACH,
            PathAttr::MpUnreach(_) => code::MP_UNREACH,
            PathAttr::ExtCommunities(_) => code::EXT_COMMUNITIES,
            PathAttr::Unknown { code, .. } => *code,
        }
    }

    /// Optional / transitive flags a known attribute must carry.
    fn expected_flags(code: u8) -> Option<u8> {
        match code {
            code::ORIGIN
            | code::AS_PATH
            | code::NEXT_HOP
            | code::LOCAL_PREF
            | code::ATOMIC_AGGREGATE => Some(flag::TRANSITIVE),
            code::MED
            | code::ORIGINATOR_ID
            | code::CLUSTER_LIST
            | code::MP_REACH
            | code::MP_UNREACH => Some(flag::OPTIONAL),
            code::AGGREGATOR | code::COMMUNITIES | code::EXT_COMMUNITIES => {
                Some(flag::OPTIONAL | flag::TRANSITIVE)
            }
            _ => None,
        }
    }

    fn policy(code: u8) -> Policy {
        // RFC 7606 - Section 7: ATOMIC_AGGREGATE and AGGREGATOR errors use
        // "attribute discard"; MP_REACH/MP_UNREACH errors use "session
        // reset" (or AFI/SAFI disable); the rest use "treat-as-withdraw".
        match code {
            code::ATOMIC_AGGREGATE | code::AGGREGATOR => Policy::Discard,
            code::MP_REACH | code::MP_UNREACH => Policy::Reset,
            _ => Policy::Withdraw,
        }
    }

    /// Decode one attribute's value. `raw` is the whole attribute (flags,
    /// type, length, value) for the NOTIFICATION data field.
    pub(crate) fn decode(
        flags: u8,
        code: u8,
        value: &[u8],
        raw: &[u8],
        ctx: &DecodeCtx,
    ) -> Result<Outcome, DecodeError> {
        let fail = |subcode: UpdateError, reason: &'static str| -> Result<Outcome, DecodeError> {
            match (ctx.rfc7606, Self::policy(code)) {
                (true, Policy::Withdraw) => Ok(Outcome::Withdraw(subcode)),
                (true, Policy::Discard) => Ok(Outcome::Discard),
                _ => Err(DecodeError::update(subcode, raw.to_vec(), reason)),
            }
        };
        let Some(expected) = Self::expected_flags(code) else {
            // RFC 4271 - Section 6.3:
            // "If any of the well-known mandatory attributes are not
            // recognized, then the Error Subcode MUST be set to Unrecognized
            // Well-known Attribute. The Data field MUST contain the
            // unrecognized attribute (type, length, and value)."
            if flags & flag::OPTIONAL == 0 {
                return Err(DecodeError::update(
                    UpdateError::UnrecognizedWellKnown,
                    raw.to_vec(),
                    "unrecognized well-known attribute",
                ));
            }
            return Ok(Outcome::Keep(PathAttr::Unknown {
                flags: flags & !flag::EXTENDED,
                code,
                data: value.to_vec(),
            }));
        };
        // "If any recognized attribute has Attribute Flags that conflict with
        // the Attribute Type Code, then the Error Subcode MUST be set to
        // Attribute Flags Error. The Data field MUST contain the erroneous
        // attribute (type, length, and value)."
        if flags & (flag::OPTIONAL | flag::TRANSITIVE) != expected {
            return fail(
                UpdateError::AttributeFlags,
                "attribute flags conflict with type",
            );
        }
        let len_err = |reason| fail(UpdateError::AttributeLength, reason);
        let mut r = Reader::new(value);
        let attr = match code {
            code::ORIGIN => {
                let [v] = value else {
                    return len_err("ORIGIN length is not 1");
                };
                // "If the ORIGIN attribute has an undefined value, then the
                // Error Sub-code MUST be set to Invalid Origin Attribute. The
                // Data field MUST contain the unrecognized attribute (type,
                // length, and value)."
                match v {
                    0 => PathAttr::Origin(Origin::Igp),
                    1 => PathAttr::Origin(Origin::Egp),
                    2 => PathAttr::Origin(Origin::Incomplete),
                    _ => return fail(UpdateError::InvalidOrigin, "undefined ORIGIN value"),
                }
            }
            code::AS_PATH => match decode_as_path(value, ctx.four_octet_as) {
                Some(p) => PathAttr::AsPath(p),
                // "If the AS_PATH attribute is syntactically incorrect, then
                // the Error Subcode MUST be set to Malformed AS_PATH."
                None => return fail(UpdateError::MalformedAsPath, "malformed AS_PATH"),
            },
            code::NEXT_HOP => {
                let Ok(a) = <[u8; 4]>::try_from(value) else {
                    return len_err("NEXT_HOP length is not 4");
                };
                // "If the NEXT_HOP attribute field is syntactically incorrect,
                // then the Error Subcode MUST be set to Invalid NEXT_HOP
                // attribute." (Semantic checks need session context.)
                let a = Ipv4Addr::from(a);
                if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                    return fail(UpdateError::InvalidNextHop, "invalid NEXT_HOP address");
                }
                PathAttr::NextHop(a)
            }
            code::MED | code::LOCAL_PREF | code::ORIGINATOR_ID => {
                let Ok(v) = <[u8; 4]>::try_from(value) else {
                    return len_err("attribute length is not 4");
                };
                let v = u32::from_be_bytes(v);
                match code {
                    code::MED => PathAttr::Med(v),
                    code::LOCAL_PREF => PathAttr::LocalPref(v),
                    _ => PathAttr::OriginatorId(Ipv4Addr::from(v)),
                }
            }
            code::ATOMIC_AGGREGATE if value.is_empty() => PathAttr::AtomicAggregate,
            code::ATOMIC_AGGREGATE => return len_err("ATOMIC_AGGREGATE length is not 0"),
            code::AGGREGATOR => {
                let want = if ctx.four_octet_as { 8 } else { 6 };
                if value.len() != want {
                    return len_err("AGGREGATOR length");
                }
                let asn = if ctx.four_octet_as {
                    r.u32()
                } else {
                    r.u16().map(u32::from)
                };
                match (asn, r.u32()) {
                    (Some(asn), Some(ip)) => PathAttr::Aggregator(Aggregator {
                        asn,
                        ip: Ipv4Addr::from(ip),
                    }),
                    _ => return len_err("AGGREGATOR length"),
                }
            }
            code::COMMUNITIES => {
                if value.len() % 4 != 0 {
                    return len_err("COMMUNITIES length is not a multiple of 4");
                }
                PathAttr::Communities(
                    value
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
            code::CLUSTER_LIST => {
                if value.len() % 4 != 0 || value.is_empty() {
                    return len_err("CLUSTER_LIST length is not a multiple of 4");
                }
                PathAttr::ClusterList(
                    value
                        .chunks_exact(4)
                        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                        .collect(),
                )
            }
            code::EXT_COMMUNITIES => {
                if value.len() % 8 != 0 {
                    return len_err("EXTENDED_COMMUNITIES length is not a multiple of 8");
                }
                PathAttr::ExtCommunities(
                    value
                        .chunks_exact(8)
                        .map(|c| ExtCommunity(<[u8; 8]>::try_from(c).unwrap_or_default()))
                        .collect(),
                )
            }
            code::MP_REACH => {
                // RFC 4760 - Section 3: AFI (2), SAFI (1), Length of Next
                // Hop (1), Next Hop (variable), Reserved (1), NLRI.
                let bad = || {
                    DecodeError::update(
                        UpdateError::OptionalAttribute,
                        raw.to_vec(),
                        "malformed MP_REACH_NLRI",
                    )
                };
                let afi = Afi::from(r.u16().ok_or_else(bad)?);
                let safi = Safi::from(r.u8().ok_or_else(bad)?);
                let nh_len = usize::from(r.u8().ok_or_else(bad)?);
                let nh = r.take(nh_len).ok_or_else(bad)?;
                let _reserved = r.u8().ok_or_else(bad)?;
                let vpn = safi == Safi::MplsVpn;
                let next_hop = NextHop::decode(nh, vpn);
                let nlri = Nlri::decode(afi, safi, r.rest(), false)?;
                // RFC 7606 - Section 7.11: "If the Length of Next Hop Network
                // Address field of the MP_REACH attribute is inconsistent with
                // that which was expected, the attribute is considered
                // malformed." and then "the 'session reset' approach ... or the
                // 'AFI/SAFI disable' approach MUST be used". Expected for the
                // families we decode: an IPv4 or IPv6 address (with a link-local
                // one), each behind an 8-octet RD for VPN families (RFC 4364
                // §4.3.2, RFC 4659 §3.2). A family we do not know is ignored
                // whole (RFC 4760 §7), whatever its next hop.
                let expected: &[usize] = if vpn { &[12, 24, 48] } else { &[4, 16, 32] };
                if !matches!(nlri, Nlri::Unknown { .. }) && !expected.contains(&nh_len) {
                    return Err(DecodeError::update(
                        UpdateError::OptionalAttribute,
                        raw.to_vec(),
                        "MP_REACH_NLRI next hop length inconsistent with the family",
                    ));
                }
                PathAttr::MpReach(MpReach { next_hop, nlri })
            }
            code::MP_UNREACH => {
                let bad = || {
                    DecodeError::update(
                        UpdateError::OptionalAttribute,
                        raw.to_vec(),
                        "malformed MP_UNREACH_NLRI",
                    )
                };
                let afi = Afi::from(r.u16().ok_or_else(bad)?);
                let safi = Safi::from(r.u8().ok_or_else(bad)?);
                let withdrawn = Nlri::decode(afi, safi, r.rest(), true)?;
                PathAttr::MpUnreach(MpUnreach { withdrawn })
            }
            _ => {
                return Ok(Outcome::Keep(PathAttr::Unknown {
                    flags: flags & !flag::EXTENDED,
                    code,
                    data: value.to_vec(),
                }))
            }
        };
        Ok(Outcome::Keep(attr))
    }

    /// Append the attribute (flags, type, length, value).
    pub(crate) fn encode(&self, ctx: &DecodeCtx, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut v = Vec::new();
        match self {
            PathAttr::Origin(o) => v.push(match o {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            }),
            PathAttr::AsPath(p) => encode_as_path(p, ctx.four_octet_as, &mut v)?,
            PathAttr::NextHop(a) | PathAttr::OriginatorId(a) => v.extend_from_slice(&a.octets()),
            PathAttr::Med(x) | PathAttr::LocalPref(x) => v.extend_from_slice(&x.to_be_bytes()),
            PathAttr::AtomicAggregate => {}
            PathAttr::Aggregator(a) => {
                push_asn(a.asn, ctx.four_octet_as, &mut v);
                v.extend_from_slice(&a.ip.octets());
            }
            PathAttr::Communities(c) => {
                c.iter().for_each(|x| v.extend_from_slice(&x.to_be_bytes()))
            }
            PathAttr::ClusterList(c) => c.iter().for_each(|x| v.extend_from_slice(&x.octets())),
            PathAttr::ExtCommunities(c) => c.iter().for_each(|x| v.extend_from_slice(&x.0)),
            PathAttr::MpReach(m) => {
                let (afi, safi) = m.nlri.afi_safi();
                v.extend_from_slice(&u16::from(afi).to_be_bytes());
                v.push(safi.into());
                let mut nh = Vec::new();
                m.next_hop.encode(safi == Safi::MplsVpn, &mut nh);
                v.push(len_u8(nh.len(), "next hop")?);
                v.extend_from_slice(&nh);
                v.push(0);
                m.nlri.encode(&mut v)?;
            }
            PathAttr::MpUnreach(m) => {
                let (afi, safi) = m.withdrawn.afi_safi();
                v.extend_from_slice(&u16::from(afi).to_be_bytes());
                v.push(safi.into());
                m.withdrawn.encode(&mut v)?;
            }
            PathAttr::Unknown { data, .. } => v.extend_from_slice(data),
        }
        let code = self.code();
        let mut flags = match self {
            PathAttr::Unknown { flags, .. } => *flags & !flag::EXTENDED,
            _ => Self::expected_flags(code).unwrap_or(flag::OPTIONAL),
        };
        if let Ok(l) = u8::try_from(v.len()) {
            out.extend_from_slice(&[flags, code, l]);
        } else {
            let l = u16::try_from(v.len()).map_err(|_| EncodeError::FieldTooLong {
                what: "path attribute",
                len: v.len(),
            })?;
            flags |= flag::EXTENDED;
            out.extend_from_slice(&[flags, code]);
            out.extend_from_slice(&l.to_be_bytes());
        }
        out.extend_from_slice(&v);
        Ok(())
    }
}

fn push_asn(asn: u32, four: bool, out: &mut Vec<u8>) {
    if four {
        out.extend_from_slice(&asn.to_be_bytes());
    } else {
        // RFC 6793 - Section 4.2.2: an AS number that does not fit in two
        // octets is represented by AS_TRANS towards an OLD speaker.
        let a = u16::try_from(asn).unwrap_or(crate::AS_TRANS);
        out.extend_from_slice(&a.to_be_bytes());
    }
}

fn decode_as_path(b: &[u8], four: bool) -> Option<AsPath> {
    let mut r = Reader::new(b);
    let mut segs = Vec::new();
    while !r.is_empty() {
        let kind = r.u8()?;
        let count = r.u8()?;
        // RFC 7606 - Section 7.2: a segment with a zero length is malformed.
        if count == 0 {
            return None;
        }
        let mut asns = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            asns.push(if four { r.u32()? } else { u32::from(r.u16()?) });
        }
        segs.push(match kind {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            3 => AsSegment::ConfedSequence(asns),
            4 => AsSegment::ConfedSet(asns),
            _ => return None,
        });
    }
    Some(AsPath(segs))
}

fn encode_as_path(p: &AsPath, four: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    for s in &p.0 {
        let (kind, asns) = match s {
            AsSegment::Set(a) => (1, a),
            AsSegment::Sequence(a) => (2, a),
            AsSegment::ConfedSequence(a) => (3, a),
            AsSegment::ConfedSet(a) => (4, a),
        };
        if asns.is_empty() {
            return Err(EncodeError::Invalid {
                what: "empty AS_PATH segment",
            });
        }
        out.push(kind);
        out.push(len_u8(asns.len(), "AS_PATH segment")?);
        asns.iter().for_each(|&a| push_asn(a, four, out));
    }
    Ok(())
}

impl PathAttr {
    /// The attribute as it should be passed on to other peers, per
    /// RFC 4271 - Section 5:
    /// "If a path with an unrecognized transitive optional attribute is
    /// accepted and passed to other BGP peers, then the unrecognized
    /// transitive optional attribute of that path MUST be passed, along with
    /// the path, to other BGP peers with the Partial bit in the Attribute
    /// Flags octet set to 1." Unrecognized non-transitive optional
    /// attributes "MUST be quietly ignored and not passed along" (`None`).
    pub fn propagated(&self) -> Option<PathAttr> {
        match self {
            PathAttr::Unknown { flags, code, data } => {
                (flags & flag::TRANSITIVE != 0).then(|| PathAttr::Unknown {
                    flags: flags | flag::PARTIAL,
                    code: *code,
                    data: data.clone(),
                })
            }
            other => Some(other.clone()),
        }
    }
}
