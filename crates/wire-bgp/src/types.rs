//! Identifier types shared by NLRI and attributes.
//!
//! * AFI / SAFI numbers (RFC 4760 §3, IANA registries, TF `bgp_af.h`);
//! * route distinguishers (RFC 4364 §4.2) and route targets (RFC 4360 §4,
//!   RFC 5668), printed the way Tungsten Fabric configures them
//!   (`target:64512:8000001`);
//! * MPLS labels (RFC 3032 / RFC 8277 §2), Ethernet segment identifiers
//!   (RFC 7432 §5) and MAC addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

enum_with_unknown! {
    /// Address Family Identifier (IANA).
    pub enum Afi(u16) {
        /// IPv4.
        Ipv4 = 1,
        /// IPv6.
        Ipv6 = 2,
        /// Layer-2 VPN (EVPN).
        L2vpn = 25,
    }
}

enum_with_unknown! {
    /// Subsequent Address Family Identifier (IANA; TF `bgp_af.h`).
    pub enum Safi(u8) {
        /// Unicast.
        Unicast = 1,
        /// Multicast.
        Multicast = 2,
        /// Labeled unicast (RFC 8277), TF `inet-labeled`.
        Labeled = 4,
        /// Multicast VPN (RFC 6514), TF `inet-mvpn`.
        Mvpn = 5,
        /// EVPN (RFC 7432).
        Evpn = 70,
        /// MPLS-labeled VPN (RFC 4364), TF `inet-vpn` / `inet6-vpn`.
        MplsVpn = 128,
        /// Route-target constrain (RFC 4684), TF `route-target`.
        RouteTarget = 132,
        /// TF `erm-vpn` (edge-replicated multicast).
        ErmVpn = 243,
    }
}

/// Why a textual RD / RT / MAC / ESI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {input:?}")]
pub struct ParseError {
    /// What was being parsed.
    pub what: &'static str,
    /// The offending text.
    pub input: String,
}

fn perr(what: &'static str, input: &str) -> ParseError {
    ParseError {
        what,
        input: input.to_owned(),
    }
}

// ===== administrator:assigned pairs (RD and RT share them) =====

/// An RFC 4364 §4.2 / RFC 4360 administrator + assigned-number pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Admin {
    As2(u16, u32),
    Ip(Ipv4Addr, u16),
    As4(u32, u16),
}

impl Admin {
    fn from_value(kind: u8, v: &[u8; 6]) -> Option<Admin> {
        match kind {
            0 => Some(Admin::As2(
                u16::from_be_bytes([v[0], v[1]]),
                u32::from_be_bytes([v[2], v[3], v[4], v[5]]),
            )),
            1 => Some(Admin::Ip(
                Ipv4Addr::new(v[0], v[1], v[2], v[3]),
                u16::from_be_bytes([v[4], v[5]]),
            )),
            2 => Some(Admin::As4(
                u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                u16::from_be_bytes([v[4], v[5]]),
            )),
            _ => None,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Admin::As2(..) => 0,
            Admin::Ip(..) => 1,
            Admin::As4(..) => 2,
        }
    }

    fn value(&self) -> [u8; 6] {
        let mut v = [0; 6];
        match *self {
            Admin::As2(a, n) => {
                v[..2].copy_from_slice(&a.to_be_bytes());
                v[2..].copy_from_slice(&n.to_be_bytes());
            }
            Admin::Ip(ip, n) => {
                v[..4].copy_from_slice(&ip.octets());
                v[4..].copy_from_slice(&n.to_be_bytes());
            }
            Admin::As4(a, n) => {
                v[..4].copy_from_slice(&a.to_be_bytes());
                v[4..].copy_from_slice(&n.to_be_bytes());
            }
        }
        v
    }

    /// `asn:n`, `ip:n`, or `asnL:n` (4-octet AS that would fit 2 octets).
    fn parse(s: &str) -> Option<Admin> {
        let (a, n) = s.rsplit_once(':')?;
        if a.contains('.') {
            return Some(Admin::Ip(a.parse().ok()?, n.parse().ok()?));
        }
        if let Some(a) = a.strip_suffix('L') {
            return Some(Admin::As4(a.parse().ok()?, n.parse().ok()?));
        }
        let asn: u32 = a.parse().ok()?;
        match u16::try_from(asn) {
            Ok(a2) => Some(Admin::As2(a2, n.parse().ok()?)),
            Err(_) => Some(Admin::As4(asn, n.parse().ok()?)),
        }
    }
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Admin::As2(a, n) => write!(f, "{a}:{n}"),
            Admin::Ip(ip, n) => write!(f, "{ip}:{n}"),
            Admin::As4(a, n) if *a <= u32::from(u16::MAX) => write!(f, "{a}L:{n}"),
            Admin::As4(a, n) => write!(f, "{a}:{n}"),
        }
    }
}

// ===== RouteDistinguisher =====

/// Route distinguisher (RFC 4364 §4.2): 2-byte type + 6-byte value.
///
/// Displays as `asn:n` (type 0), `ip:n` (type 1) or `asn:n` (type 2; an
/// `L` suffix marks a 4-octet AS below 65536). TF agents use type 1,
/// `<router-ip>:<instance-id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteDistinguisher(RdInner);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum RdInner {
    Known(Admin),
    Unknown([u8; 8]),
}

impl RouteDistinguisher {
    /// Type 0: 2-octet AS administrator, 4-octet assigned number.
    pub fn as2(asn: u16, n: u32) -> Self {
        RouteDistinguisher(RdInner::Known(Admin::As2(asn, n)))
    }

    /// Type 1: IPv4 administrator, 2-octet assigned number.
    pub fn ip(ip: Ipv4Addr, n: u16) -> Self {
        RouteDistinguisher(RdInner::Known(Admin::Ip(ip, n)))
    }

    /// Type 2: 4-octet AS administrator, 2-octet assigned number.
    pub fn as4(asn: u32, n: u16) -> Self {
        RouteDistinguisher(RdInner::Known(Admin::As4(asn, n)))
    }

    /// The all-zero RD used in VPN next hops.
    pub const ZERO: RouteDistinguisher = RouteDistinguisher(RdInner::Known(Admin::As2(0, 0)));

    /// Wire form. RDs of unknown type are kept verbatim.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        let v = [b[2], b[3], b[4], b[5], b[6], b[7]];
        match (u16::from_be_bytes([b[0], b[1]]), b[0]) {
            (t @ 0..=2, _) => match Admin::from_value(t as u8, &v) {
                Some(a) => RouteDistinguisher(RdInner::Known(a)),
                None => RouteDistinguisher(RdInner::Unknown(b)),
            },
            _ => RouteDistinguisher(RdInner::Unknown(b)),
        }
    }

    /// Wire form.
    pub fn to_bytes(&self) -> [u8; 8] {
        match &self.0 {
            RdInner::Known(a) => {
                let mut b = [0; 8];
                b[1] = a.kind();
                b[2..].copy_from_slice(&a.value());
                b
            }
            RdInner::Unknown(b) => *b,
        }
    }

    /// RD type field (0, 1, 2 or other).
    pub fn rd_type(&self) -> u16 {
        let b = self.to_bytes();
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl fmt::Display for RouteDistinguisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            RdInner::Known(a) => a.fmt(f),
            RdInner::Unknown(b) => {
                write!(f, "0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

impl FromStr for RouteDistinguisher {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Admin::parse(s)
            .map(|a| RouteDistinguisher(RdInner::Known(a)))
            .ok_or_else(|| perr("route distinguisher", s))
    }
}

// ===== RouteTarget =====

/// Route target extended community (RFC 4360 §4, RFC 5668): transitive type
/// 0x00 / 0x01 / 0x02, subtype 0x02.
///
/// Displays and parses as TF writes it: `target:<asn>:<n>` or
/// `target:<ip>:<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteTarget(Admin);

impl RouteTarget {
    /// Type 0x00: 2-octet AS, 4-octet number (TF's `target:64512:8000001`).
    pub fn as2(asn: u16, n: u32) -> Self {
        RouteTarget(Admin::As2(asn, n))
    }

    /// Type 0x01: IPv4 address, 2-octet number.
    pub fn ip(ip: Ipv4Addr, n: u16) -> Self {
        RouteTarget(Admin::Ip(ip, n))
    }

    /// Type 0x02: 4-octet AS, 2-octet number.
    pub fn as4(asn: u32, n: u16) -> Self {
        RouteTarget(Admin::As4(asn, n))
    }

    /// The 8-byte extended community.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0] = self.0.kind();
        b[1] = 0x02;
        b[2..].copy_from_slice(&self.0.value());
        b
    }

    /// Interpret an extended community as a route target.
    pub fn from_bytes(b: &[u8; 8]) -> Option<Self> {
        if b[1] != 0x02 {
            return None;
        }
        let v = [b[2], b[3], b[4], b[5], b[6], b[7]];
        Admin::from_value(b[0], &v).map(RouteTarget)
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target:{}", self.0)
    }
}

impl FromStr for RouteTarget {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        s.strip_prefix("target:")
            .and_then(Admin::parse)
            .map(RouteTarget)
            .ok_or_else(|| perr("route target", s))
    }
}

// ===== labels =====

/// A 20-bit MPLS label value (RFC 3032).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(u32);

impl Label {
    /// Largest label value.
    pub const MAX: u32 = 0x000f_ffff;

    /// RFC 8277 §2.4 / RFC 3107: the 3-octet value 0x800000 sent in place of
    /// a label when withdrawing; as a label value, 0x80000.
    pub const WITHDRAW: Label = Label(0x80000);

    /// A label, or `None` if `v` does not fit in 20 bits.
    pub fn new(v: u32) -> Option<Self> {
        (v <= Self::MAX).then_some(Label(v))
    }

    /// The label value.
    pub fn value(&self) -> u32 {
        self.0
    }
}

/// A raw 3-octet label field as EVPN carries it (RFC 7432 §7, RFC 8365 §5.1.3):
/// either an MPLS label (high 20 bits) or a 24-bit VXLAN VNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelField(u32);

impl LabelField {
    /// From the 24-bit value; `None` if it does not fit.
    pub fn new(v: u32) -> Option<Self> {
        (v <= 0x00ff_ffff).then_some(LabelField(v))
    }

    /// An MPLS label in the high 20 bits with the bottom-of-stack bit set.
    pub fn mpls(label: Label) -> Self {
        LabelField((label.value() << 4) | 1)
    }

    /// The 24-bit field value (the VNI for VXLAN encapsulation).
    pub fn value(&self) -> u32 {
        self.0
    }

    /// The MPLS label in the high 20 bits.
    pub fn label(&self) -> Label {
        Label(self.0 >> 4)
    }

    pub(crate) fn from_bytes(b: [u8; 3]) -> Self {
        LabelField(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub(crate) fn to_bytes(self) -> [u8; 3] {
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }
}

// ===== Esi / MacAddr =====

/// Ethernet Segment Identifier (RFC 7432 §5): 10 octets, type in the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Esi(pub [u8; 10]);

impl Esi {
    /// The all-zero ESI (single-homed).
    pub const ZERO: Esi = Esi([0; 10]);
}

impl fmt::Display for Esi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex_colon(f, &self.0)
    }
}

impl FromStr for Esi {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_hex_colon(s).map(Esi).ok_or_else(|| perr("ESI", s))
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex_colon(f, &self.0)
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_hex_colon(s)
            .map(MacAddr)
            .ok_or_else(|| perr("MAC address", s))
    }
}

fn write_hex_colon(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{x:02x}")?;
    }
    Ok(())
}

fn parse_hex_colon<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0; N];
    let mut parts = s.split(':');
    for o in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rd_display_parse_and_bytes() {
        let rd: RouteDistinguisher = "172.31.41.236:2".parse().unwrap();
        assert_eq!(
            rd,
            RouteDistinguisher::ip(Ipv4Addr::new(172, 31, 41, 236), 2)
        );
        assert_eq!(rd.to_bytes(), [0, 1, 172, 31, 41, 236, 0, 2]);
        assert_eq!(rd.to_string(), "172.31.41.236:2");
        let rd: RouteDistinguisher = "64512:7".parse().unwrap();
        assert_eq!(rd.to_bytes(), [0, 0, 0xfc, 0x00, 0, 0, 0, 7]);
        let rd: RouteDistinguisher = "4200000000:7".parse().unwrap();
        assert_eq!(rd.to_bytes(), [0, 2, 0xfa, 0x56, 0xea, 0x00, 0, 7]);
        assert_eq!(RouteDistinguisher::from_bytes(rd.to_bytes()), rd);
        let small4 = RouteDistinguisher::as4(100, 1);
        assert_eq!(small4.to_string(), "100L:1");
        assert_eq!("100L:1".parse::<RouteDistinguisher>().unwrap(), small4);
        let odd = RouteDistinguisher::from_bytes([0, 9, 1, 2, 3, 4, 5, 6]);
        assert_eq!(odd.to_bytes(), [0, 9, 1, 2, 3, 4, 5, 6]);
        assert_eq!(odd.rd_type(), 9);
        assert!("nope".parse::<RouteDistinguisher>().is_err());
        assert!("1.2.3.4:70000".parse::<RouteDistinguisher>().is_err());
    }

    #[test]
    fn rt_display_parse_and_bytes() {
        let rt: RouteTarget = "target:64512:8000001".parse().unwrap();
        assert_eq!(
            rt.to_bytes(),
            [0x00, 0x02, 0xfc, 0x00, 0x00, 0x7a, 0x12, 0x01]
        );
        assert_eq!(rt.to_string(), "target:64512:8000001");
        let rt: RouteTarget = "target:172.31.14.47:1".parse().unwrap();
        assert_eq!(rt.to_bytes(), [0x01, 0x02, 172, 31, 14, 47, 0, 1]);
        assert_eq!(RouteTarget::from_bytes(&rt.to_bytes()), Some(rt));
        assert_eq!(
            RouteTarget::from_bytes(&[0x03, 0x0c, 0, 0, 0, 0, 0, 8]),
            None
        );
        assert!("64512:1".parse::<RouteTarget>().is_err());
    }

    #[test]
    fn label_and_mac() {
        assert!(Label::new(0x10_0000).is_none());
        assert_eq!(
            LabelField::mpls(Label::new(16).unwrap()).to_bytes(),
            [0, 1, 1]
        );
        let mac: MacAddr = "02:aa:bb:cc:dd:0e".parse().unwrap();
        assert_eq!(mac.0, [2, 0xaa, 0xbb, 0xcc, 0xdd, 0x0e]);
        assert_eq!(mac.to_string(), "02:aa:bb:cc:dd:0e");
        assert!("02:aa:bb:cc:dd".parse::<MacAddr>().is_err());
        assert_eq!(
            "00:00:00:00:00:00:00:00:00:01".parse::<Esi>().unwrap().0[9],
            1
        );
    }

    #[test]
    fn afi_safi_unknown() {
        assert_eq!(Afi::from(25), Afi::L2vpn);
        assert_eq!(Safi::from(132), Safi::RouteTarget);
        assert_eq!(Safi::from(99), Safi::Unknown(99));
        assert_eq!(u16::from(Afi::Unknown(7)), 7);
    }
}
