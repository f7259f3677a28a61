//! The speaker's vocabulary: address families (RFC 4760 AFI/SAFI with
//! Tungsten Fabric's family names), route keys, normalized path attributes
//! and paths, and the peer / speaker configuration.
//!
//! A [`Path`] is what the RIB owner hands to the speaker and what the
//! speaker reports back: a [`RouteKey`] (what the route is about: RD +
//! prefix, an EVPN route without its labels, ...), its labels, and shared
//! [`Attrs`].

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use filament_wire_bgp::{
    Afi, Aggregator, AsPath, AsSegment, EvpnRoute, ExtCommunity, Label, LabelField, Nlri, Origin,
    RouteTarget, RtcRoute, Safi, VpnRoute,
};
use ipnet::{IpNet, Ipv4Net};
use smallvec::SmallVec;

/// A path's labels: up to two inline (every VPN route and EVPN route in practice), a longer
/// stack on the heap. Inline, a path made on the session task and dropped on the RIB owner's
/// thread costs no allocation and no cross-thread free (issue 4: 1M routes per feed).
pub type LabelStack = SmallVec<[u32; 2]>;

/// An address family the speaker can carry (TF `AddressFamily` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 unicast, AFI 1 / SAFI 1 (`inet`).
    Inet,
    /// VPN-IPv4, AFI 1 / SAFI 128 (`inet-vpn`, RFC 4364).
    InetVpn,
    /// VPN-IPv6, AFI 2 / SAFI 128 (`inet6-vpn`, RFC 4659).
    Inet6Vpn,
    /// EVPN, AFI 25 / SAFI 70 (`e-vpn`, RFC 7432).
    Evpn,
    /// Route-target membership, AFI 1 / SAFI 132 (`route-target`, RFC 4684).
    RouteTarget,
}

impl Family {
    /// Every family, in a fixed order.
    pub const ALL: [Family; 5] = [
        Family::Inet,
        Family::InetVpn,
        Family::Inet6Vpn,
        Family::Evpn,
        Family::RouteTarget,
    ];

    /// The AFI/SAFI pair on the wire.
    pub fn afi_safi(self) -> (Afi, Safi) {
        match self {
            Family::Inet => (Afi::Ipv4, Safi::Unicast),
            Family::InetVpn => (Afi::Ipv4, Safi::MplsVpn),
            Family::Inet6Vpn => (Afi::Ipv6, Safi::MplsVpn),
            Family::Evpn => (Afi::L2vpn, Safi::Evpn),
            Family::RouteTarget => (Afi::Ipv4, Safi::RouteTarget),
        }
    }

    /// The family of an AFI/SAFI pair, if the speaker carries it.
    pub fn from_afi_safi(afi: Afi, safi: Safi) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.afi_safi() == (afi, safi))
    }

    /// TF's configuration name (`inet-vpn`, `e-vpn`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::InetVpn => "inet-vpn",
            Family::Inet6Vpn => "inet6-vpn",
            Family::Evpn => "e-vpn",
            Family::RouteTarget => "route-target",
        }
    }

    /// Parse TF's configuration name.
    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Whether routes of this family carry route targets that RT-constraint
    /// (RFC 4684) filters on.
    pub fn is_vpn(self) -> bool {
        matches!(self, Family::InetVpn | Family::Inet6Vpn | Family::Evpn)
    }
}

/// What a route is about, without its labels or attributes: two paths with
/// the same key replace each other (implicit withdraw, RFC 4271 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// IPv4 unicast prefix.
    Inet(Ipv4Net),
    /// VPN route: RD and an IPv4 (inet-vpn) or IPv6 (inet6-vpn) prefix.
    Vpn(filament_wire_bgp::RouteDistinguisher, IpNet),
    /// EVPN route with its label fields zeroed (RFC 7432 §7: labels are not
    /// part of the route key). Boxed: it is the largest key and the rarest,
    /// and every key is stored several times.
    Evpn(Box<EvpnKey>),
    /// Route-target membership route.
    Rtc(RtcRoute),
}

/// An EVPN route with its label fields zeroed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EvpnKey(pub EvpnRoute);

impl RouteKey {
    /// The family of the key.
    pub fn family(&self) -> Family {
        match self {
            RouteKey::Inet(_) => Family::Inet,
            RouteKey::Vpn(_, IpNet::V4(_)) => Family::InetVpn,
            RouteKey::Vpn(_, IpNet::V6(_)) => Family::Inet6Vpn,
            RouteKey::Evpn(_) => Family::Evpn,
            RouteKey::Rtc(_) => Family::RouteTarget,
        }
    }
}

impl std::fmt::Display for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteKey::Inet(p) => write!(f, "{p}"),
            RouteKey::Vpn(rd, p) => write!(f, "{rd}:{p}"),
            RouteKey::Evpn(k) => write!(f, "{}", crate::json::evpn_text(&k.0)),
            RouteKey::Rtc(r) => write!(f, "{r}"),
        }
    }
}

/// Path attributes in the speaker's normalized form (4-octet AS numbers,
/// AS4_PATH already merged, next hop taken from NEXT_HOP or MP_REACH_NLRI).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attrs {
    /// ORIGIN.
    pub origin: Origin,
    /// AS_PATH with 4-octet AS numbers.
    pub as_path: AsPath,
    /// Next hop (NEXT_HOP, or the MP_REACH_NLRI next hop).
    pub next_hop: Option<IpAddr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP only).
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR with a 4-octet AS.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES.
    pub communities: Vec<u32>,
    /// EXTENDED_COMMUNITIES (route targets, encapsulation, TF's origin-VN...).
    pub ext_communities: Vec<ExtCommunity>,
    /// ORIGINATOR_ID (RFC 4456).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456).
    pub cluster_list: Vec<Ipv4Addr>,
    /// Unrecognized optional transitive attributes, passed on with the
    /// Partial bit: `(flags, type code, value)`.
    pub other: Vec<(u8, u8, Vec<u8>)>,
}

impl Default for Attrs {
    fn default() -> Self {
        Attrs {
            origin: Origin::Igp,
            as_path: AsPath::default(),
            next_hop: None,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            ext_communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            other: Vec::new(),
        }
    }
}

impl Attrs {
    /// The route targets among the extended communities.
    pub fn route_targets(&self) -> impl Iterator<Item = RouteTarget> + '_ {
        self.ext_communities.iter().filter_map(|c| c.route_target())
    }

    /// Number of AS numbers on the path for the decision process
    /// (RFC 4271 §9.1.2.2 a: an AS_SET counts as 1).
    pub fn as_path_len(&self) -> usize {
        self.as_path
            .0
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(v) => v.len(),
                AsSegment::Set(_) => 1,
                AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_) => 0,
            })
            .sum()
    }

    /// Whether `asn` appears anywhere on the AS path.
    pub fn as_path_contains(&self, asn: u32) -> bool {
        self.as_path.0.iter().any(|s| match s {
            AsSegment::Sequence(v)
            | AsSegment::Set(v)
            | AsSegment::ConfedSequence(v)
            | AsSegment::ConfedSet(v) => v.contains(&asn),
        })
    }

    /// The first (neighbour) AS of the path.
    pub fn first_as(&self) -> Option<u32> {
        match self.as_path.0.first() {
            Some(AsSegment::Sequence(v)) => v.first().copied(),
            _ => None,
        }
    }

    /// A copy with `asn` prepended to the AS path (RFC 4271 §5.1.2 b).
    pub fn prepend(&mut self, asn: u32) {
        match self.as_path.0.first_mut() {
            Some(AsSegment::Sequence(v)) if v.len() < 255 => v.insert(0, asn),
            _ => self.as_path.0.insert(0, AsSegment::Sequence(vec![asn])),
        }
    }
}

/// One path: a route key, its labels and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// What the path is for.
    pub key: RouteKey,
    /// Labels: the MPLS label stack for VPN families, the raw 3-octet label
    /// fields (label1, label2) for EVPN, empty otherwise.
    pub labels: LabelStack,
    /// Attributes, shared between paths that carry the same set.
    pub attrs: Arc<Attrs>,
}

impl Path {
    /// The family of the path.
    pub fn family(&self) -> Family {
        self.key.family()
    }

    /// A path from a wire route (VPN / EVPN / RTC / IPv4) and attributes.
    pub fn from_vpn(r: &VpnRoute, attrs: Arc<Attrs>) -> Path {
        let (key, labels) = Path::vpn_parts(r);
        Path { key, labels, attrs }
    }

    /// The key and labels of a VPN route.
    pub fn vpn_parts(r: &VpnRoute) -> (RouteKey, LabelStack) {
        (
            RouteKey::Vpn(r.rd, r.prefix),
            r.labels.iter().map(|l| l.value()).collect(),
        )
    }

    /// The key and label fields of an EVPN route.
    pub fn evpn_parts(r: &EvpnRoute) -> (RouteKey, LabelStack) {
        let (key, labels) = evpn_split(r);
        (RouteKey::Evpn(Box::new(EvpnKey(key))), labels)
    }

    /// A path from an EVPN route; its label fields move to `labels`.
    pub fn from_evpn(r: &EvpnRoute, attrs: Arc<Attrs>) -> Path {
        let (key, labels) = Path::evpn_parts(r);
        Path { key, labels, attrs }
    }
}

/// Split an EVPN route into its key (labels zeroed) and label fields.
pub(crate) fn evpn_split(r: &EvpnRoute) -> (EvpnRoute, LabelStack) {
    let zero = LabelField::new(0).unwrap_or(LabelField::mpls(Label::WITHDRAW));
    let mut k = r.clone();
    let labels = match &mut k {
        EvpnRoute::EthernetAd { label, .. } | EvpnRoute::IpPrefix { label, .. } => {
            LabelStack::from_slice(&[std::mem::replace(label, zero).value()])
        }
        EvpnRoute::MacIp { label1, label2, .. } => {
            let mut v = LabelStack::from_slice(&[std::mem::replace(label1, zero).value()]);
            if let Some(l2) = label2.take() {
                v.push(l2.value());
            }
            v
        }
        _ => LabelStack::new(),
    };
    (k, labels)
}

/// The wire NLRI (one route) for a key and its labels. `withdraw` uses the
/// RFC 8277 §2.4 withdrawal label for VPN routes.
pub(crate) fn to_nlri(key: &RouteKey, labels: &[u32], withdraw: bool) -> Nlri {
    match key {
        RouteKey::Inet(p) => Nlri::Ipv4Unicast(vec![*p]),
        RouteKey::Vpn(rd, prefix) => {
            let labels = if withdraw || labels.is_empty() {
                std::iter::once(Label::WITHDRAW).collect()
            } else {
                labels
                    .iter()
                    .map(|&l| Label::new(l).unwrap_or(Label::WITHDRAW))
                    .collect()
            };
            let r = VpnRoute {
                labels,
                rd: *rd,
                prefix: *prefix,
            };
            match prefix {
                IpNet::V4(_) => Nlri::Vpnv4(vec![r]),
                IpNet::V6(_) => Nlri::Vpnv6(vec![r]),
            }
        }
        RouteKey::Evpn(k) => {
            let mut r = k.0.clone();
            let lf = |i: usize| labels.get(i).and_then(|&v| LabelField::new(v));
            match &mut r {
                EvpnRoute::EthernetAd { label, .. } | EvpnRoute::IpPrefix { label, .. } => {
                    if let Some(l) = lf(0) {
                        *label = l;
                    }
                }
                EvpnRoute::MacIp { label1, label2, .. } => {
                    if let Some(l) = lf(0) {
                        *label1 = l;
                    }
                    *label2 = lf(1);
                }
                _ => {}
            }
            Nlri::Evpn(vec![r])
        }
        RouteKey::Rtc(r) => Nlri::RouteTarget(vec![*r]),
    }
}

/// Configuration of one BGP neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Neighbour address: identifies the peer; incoming connections are
    /// matched by their source address.
    pub address: IpAddr,
    /// TCP port to connect to (179).
    pub port: u16,
    /// The neighbour's AS; equal to ours means iBGP.
    pub remote_as: u32,
    /// Families to offer (intersected with the neighbour's).
    pub families: Vec<Family>,
    /// Never connect, only accept (RFC 4271 PassiveTcpEstablishment).
    pub passive: bool,
    /// Route-reflector client (used only when the speaker has a cluster id).
    pub rr_client: bool,
    /// Local address to bind outgoing connections to.
    pub local_addr: Option<IpAddr>,
    /// Hold time to propose; `None` uses the speaker's.
    pub hold_time: Option<u16>,
    /// Administratively down: no connection is made or accepted.
    pub admin_down: bool,
    /// A display name (e.g. the bgp-router object's name).
    pub name: String,
    /// TCP MD5 signature key (RFC 2385) for the sessions with this neighbour, on the
    /// listener and on outgoing connections; a change resets the session.
    pub md5_key: Option<Md5Key>,
}

/// A TCP MD5 key (RFC 2385): 1 to 80 bytes (the kernel's `TCP_MD5SIG_MAXKEYLEN`). Its
/// bytes never show in `Debug` output, so a logged configuration does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Key(Vec<u8>);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Md5KeyError {
    /// No bytes.
    #[error("the MD5 key is empty")]
    Empty,
    /// Longer than the kernel takes.
    #[error("the MD5 key is {len} bytes, longer than {max} (TCP_MD5SIG_MAXKEYLEN)")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl Md5Key {
    /// A key, if it is 1 to [`filament_sockopt::MAX_KEY_LEN`] bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Md5Key, Md5KeyError> {
        let key = key.into();
        match key.len() {
            0 => Err(Md5KeyError::Empty),
            len if len > filament_sockopt::MAX_KEY_LEN => Err(Md5KeyError::TooLong {
                len,
                max: filament_sockopt::MAX_KEY_LEN,
            }),
            _ => Ok(Md5Key(key)),
        }
    }

    /// The key's bytes (for the socket option only).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5Key(<redacted>)")
    }
}

impl PeerConfig {
    /// A peer with the default settings: port 179, the TF families
    /// (inet-vpn, inet6-vpn, e-vpn, route-target), active.
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        PeerConfig {
            address,
            port: 179,
            remote_as,
            families: vec![
                Family::InetVpn,
                Family::Inet6Vpn,
                Family::Evpn,
                Family::RouteTarget,
            ],
            passive: false,
            rr_client: false,
            local_addr: None,
            hold_time: None,
            admin_down: false,
            name: address.to_string(),
            md5_key: None,
        }
    }
}

/// Configuration of the speaker itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Local AS.
    pub asn: u32,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Hold time to propose (TF: 90 s).
    pub hold_time: u16,
    /// Time between connection attempts (TF: 30 s).
    pub connect_retry: Duration,
    /// Route-reflector cluster id; `None` means a plain iBGP full-mesh
    /// member (split horizon).
    pub cluster_id: Option<Ipv4Addr>,
    /// Graceful-restart time advertised (RFC 4724 §3); 0 with TF's GR disabled.
    pub gr_restart_time: u16,
    /// Helper mode (RFC 4724 §4.2, RFC 9494 §4.2): a peer's paths are kept stale while
    /// it restarts. TF: `graceful_restart_parameters` `enable && bgp_helper_enable`.
    /// Off, a session loss removes the peer's paths at once.
    pub gr_helper: bool,
    /// Our OPEN lists our families with the Forwarding State bit, as TF's control node
    /// does when GR is enabled with a non-zero restart time (`AddGRCapabilities`); off,
    /// the capability lists no family (a helper only).
    pub gr_families: bool,
    /// Long-lived stale time (RFC 9494): advertised in the LLGR capability when it and
    /// `gr_restart_time` are non-zero (TF's `AddLLGRCapabilities`), and the most a
    /// restarting peer's paths are kept LLGR-stale. 0: no LLGR.
    pub llgr_time: u32,
    /// How long to wait for a peer's RT-membership End-of-RIB before sending
    /// it VPN routes anyway (RFC 4684 §6).
    pub rtc_eor_wait: Duration,
}

impl SpeakerConfig {
    /// A speaker with TF's timers.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> Self {
        SpeakerConfig {
            asn,
            router_id,
            hold_time: 90,
            connect_retry: Duration::from_secs(30),
            cluster_id: None,
            gr_restart_time: 120,
            gr_helper: true,
            gr_families: false,
            llgr_time: 0,
            rtc_eor_wait: Duration::from_secs(30),
        }
    }
}
