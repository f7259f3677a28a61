//! Route keys for publish / associate nodes and pushed item ids (tf-facts §2.3 node-format table,
//! §2.5 item ids): `1/1/<vrf>/<prefix>/<plen>[/<primary instance id>]`, `1/4/…`, `2/1/…`,
//! `25/242/[<eth-tag>-]<mac>,<ip>/<plen>[,<group>,<source>]`, anything else kept verbatim.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::element::parse_num;
use crate::error::{Result, XmppError};
/// A 48-bit MAC address, printed TF-style (`aa:bb:cc:dd:ee:ff`, lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::str::FromStr for MacAddr {
    type Err = XmppError;
    fn from_str(s: &str) -> Result<Self> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in &mut out {
            let p = parts.next().unwrap_or("");
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(XmppError::invalid("mac", s, "expected aa:bb:cc:dd:ee:ff"));
            }
            *o =
                u8::from_str_radix(p, 16).map_err(|_| XmppError::invalid("mac", s, "bad octet"))?;
        }
        if parts.next().is_some() {
            return Err(XmppError::invalid("mac", s, "too many octets"));
        }
        Ok(MacAddr(out))
    }
}

pub(crate) fn parse_prefix(field: &str, s: &str) -> Result<(IpAddr, u8)> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| XmppError::invalid(field, s, "expected <address>/<plen>"))?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| XmppError::invalid(field, s, "bad IP address"))?;
    let plen: u8 = parse_num(field, l)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if plen > max || l.trim() != l {
        return Err(XmppError::invalid(field, s, "bad prefix length"));
    }
    Ok((addr, plen))
}

/// EVPN route key: `[<eth-tag>-]<mac>,<ip>/<plen>[,<group>,<source>]` (tf-facts §2.3, §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnKey {
    /// Ethernet tag, printed as a `<tag>-` prefix when present.
    pub ethernet_tag: Option<u32>,
    /// MAC address.
    pub mac: MacAddr,
    /// IP address (`0.0.0.0/32` for MAC-only routes).
    pub ip: IpAddr,
    /// Prefix length.
    pub plen: u8,
    /// Optional multicast `(group, source)`.
    pub group_source: Option<(IpAddr, IpAddr)>,
}

impl fmt::Display for EvpnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.ethernet_tag {
            write!(f, "{t}-")?;
        }
        write!(f, "{},{}/{}", self.mac, self.ip, self.plen)?;
        if let Some((g, s)) = self.group_source {
            write!(f, ",{g},{s}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for EvpnKey {
    type Err = XmppError;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() != 2 && parts.len() != 4 {
            return Err(XmppError::invalid(
                "evpn key",
                s,
                "expected [tag-]mac,ip/plen[,group,source]",
            ));
        }
        let (ethernet_tag, mac) = match parts[0].split_once('-') {
            Some((t, m)) => (Some(parse_num::<u32>("ethernet-tag", t)?), m),
            None => (None, parts[0]),
        };
        if ethernet_tag.is_some() && parts[0].split_once('-').is_some_and(|(t, _)| t.trim() != t) {
            return Err(XmppError::invalid("ethernet-tag", s, "whitespace"));
        }
        let mac: MacAddr = mac.parse()?;
        let (ip, plen) = parse_prefix("evpn key", parts[1])?;
        let group_source = if parts.len() == 4 {
            let g = parts[2]
                .parse()
                .map_err(|_| XmppError::invalid("evpn group", s, "bad IP"))?;
            let so = parts[3]
                .parse()
                .map_err(|_| XmppError::invalid("evpn source", s, "bad IP"))?;
            Some((g, so))
        } else {
            None
        };
        Ok(EvpnKey {
            ethernet_tag,
            mac,
            ip,
            plen,
            group_source,
        })
    }
}

/// A publish / associate node (tf-facts §2.3 table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteNode {
    /// `1/1/<vrf>/<prefix>/<plen>[/<primary instance id>]`.
    Inet {
        /// Routing instance.
        vrf: String,
        /// Prefix address.
        prefix: Ipv4Addr,
        /// Prefix length.
        plen: u8,
        /// Optional trailing primary instance id.
        primary_instance: Option<u32>,
    },
    /// `1/4/<vrf>/<prefix>/<plen>` (labeled inet, INET-MPLS).
    InetMpls {
        /// Routing instance.
        vrf: String,
        /// Prefix address.
        prefix: Ipv4Addr,
        /// Prefix length.
        plen: u8,
    },
    /// `2/1/<vrf>/<prefix>/<plen>`.
    Inet6 {
        /// Routing instance.
        vrf: String,
        /// Prefix address.
        prefix: Ipv6Addr,
        /// Prefix length.
        plen: u8,
    },
    /// `25/242/<key>` — no VRF in the node; the collection node names it.
    Evpn(EvpnKey),
    /// Any other `afi/safi/rest` (multicast `1/241/…`, mvpn `1/5/…`, an EVPN node whose key
    /// is not `[tag-]mac,ip/plen[,group,source]`), kept verbatim.
    Other {
        /// AFI.
        afi: u16,
        /// XMPP SAFI.
        safi: u16,
        /// Everything after `afi/safi/`.
        rest: String,
    },
}

fn check_vrf(vrf: &str, s: &str) -> Result<()> {
    if vrf.is_empty() || vrf.contains('/') {
        return Err(XmppError::invalid(
            "route node",
            s,
            "bad routing-instance name",
        ));
    }
    Ok(())
}

impl RouteNode {
    /// Parse node text.
    pub fn parse(s: &str) -> Result<Self> {
        let mut it = s.splitn(3, '/');
        let (Some(a), Some(sf), Some(rest)) = (it.next(), it.next(), it.next()) else {
            return Err(XmppError::invalid("route node", s, "expected afi/safi/..."));
        };
        let num = |t: &str| -> Result<u16> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(XmppError::invalid("route node", s, "bad afi/safi"));
            }
            parse_num("afi/safi", t)
        };
        let (afi, safi) = (num(a)?, num(sf)?);
        let parts: Vec<&str> = rest.split('/').collect();
        match (afi, safi) {
            (1, 1) | (1, 4) | (2, 1) => {
                if parts.len() != 3 && !(parts.len() == 4 && (afi, safi) == (1, 1)) {
                    return Err(XmppError::invalid(
                        "route node",
                        s,
                        "expected <vrf>/<prefix>/<plen>",
                    ));
                }
                let vrf = parts[0].to_string();
                check_vrf(&vrf, s)?;
                let (addr, plen) =
                    parse_prefix("route node", &format!("{}/{}", parts[1], parts[2]))?;
                match (afi, safi, addr) {
                    (1, 1, IpAddr::V4(prefix)) => {
                        let primary_instance = match parts.get(3) {
                            Some(p) => Some(parse_num::<u32>("primary instance id", p)?),
                            None => None,
                        };
                        Ok(RouteNode::Inet {
                            vrf,
                            prefix,
                            plen,
                            primary_instance,
                        })
                    }
                    (1, 4, IpAddr::V4(prefix)) => Ok(RouteNode::InetMpls { vrf, prefix, plen }),
                    (2, 1, IpAddr::V6(prefix)) => Ok(RouteNode::Inet6 { vrf, prefix, plen }),
                    _ => Err(XmppError::invalid(
                        "route node",
                        s,
                        "address family mismatch",
                    )),
                }
            }
            // TF's control node takes an EVPN route from the item's `<nlri>`, not from this
            // text (`bgp_xmpp_channel.cc` ProcessEnetItem); the node only has to equal the
            // associate node.  A real agent's broadcast route is published as
            // `25/242/255.255.255.255,0.0.0.0/32,255.255.255.255,0.0.0.0` (controller_peer.cc
            // BuildEvpnMulticastMessage: the first field is an address, not a MAC), so a key
            // we cannot read is kept verbatim instead of failing the whole stanza.
            (25, 242) => Ok(match rest.parse::<EvpnKey>() {
                Ok(k) => RouteNode::Evpn(k),
                Err(_) => RouteNode::Other {
                    afi,
                    safi,
                    rest: rest.to_string(),
                },
            }),
            _ => Ok(RouteNode::Other {
                afi,
                safi,
                rest: rest.to_string(),
            }),
        }
    }

    /// `(afi, safi)` of the node.
    pub fn family(&self) -> (u16, u16) {
        match self {
            RouteNode::Inet { .. } => (1, 1),
            RouteNode::InetMpls { .. } => (1, 4),
            RouteNode::Inet6 { .. } => (2, 1),
            RouteNode::Evpn(_) => (25, 242),
            RouteNode::Other { afi, safi, .. } => (*afi, *safi),
        }
    }

    /// The item id the control node uses for the same route in pushes (tf-facts §2.5):
    /// `prefix/plen` for inet/inet6, the key for EVPN.
    pub fn item_id(&self) -> String {
        match self {
            RouteNode::Inet { prefix, plen, .. } | RouteNode::InetMpls { prefix, plen, .. } => {
                format!("{prefix}/{plen}")
            }
            RouteNode::Inet6 { prefix, plen, .. } => format!("{prefix}/{plen}"),
            RouteNode::Evpn(k) => k.to_string(),
            RouteNode::Other { rest, .. } => rest.clone(),
        }
    }
}

impl fmt::Display for RouteNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (afi, safi) = self.family();
        write!(f, "{afi}/{safi}/")?;
        match self {
            RouteNode::Inet {
                vrf,
                prefix,
                plen,
                primary_instance,
            } => {
                write!(f, "{vrf}/{prefix}/{plen}")?;
                if let Some(p) = primary_instance {
                    write!(f, "/{p}")?;
                }
                Ok(())
            }
            RouteNode::InetMpls { vrf, prefix, plen } => write!(f, "{vrf}/{prefix}/{plen}"),
            RouteNode::Inet6 { vrf, prefix, plen } => write!(f, "{vrf}/{prefix}/{plen}"),
            RouteNode::Evpn(k) => write!(f, "{k}"),
            RouteNode::Other { rest, .. } => f.write_str(rest),
        }
    }
}
