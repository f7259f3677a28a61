//! CIDR parsing and containment helpers shared by the subnet code and by
//! validation elsewhere (policies, route tables, subnet overlap checks).
//!
//! Parsing is strict: a prefix whose address has host bits set
//! (`10.1.1.5/24`) is rejected with [`IpamError::HostBitsSet`] rather than
//! silently truncated. Use [`parse_cidr_normalized`] where truncation is wanted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::IpamError;

/// Parses one IP address, naming `field` in the error.
pub fn parse_ip(field: &'static str, value: &str) -> Result<IpAddr, IpamError> {
    value
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| IpamError::InvalidAddress {
            field,
            value: value.to_owned(),
        })
}

/// Builds a network from TF's `SubnetType` pair (`ip_prefix`, `ip_prefix_len`).
///
/// Rejects bad addresses, lengths outside `0..=32` / `0..=128`, and prefixes
/// with host bits set.
pub fn parse_subnet(ip_prefix: &str, ip_prefix_len: i64) -> Result<IpNet, IpamError> {
    let addr = parse_ip("ip_prefix", ip_prefix)?;
    let max: u8 = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let len = u8::try_from(ip_prefix_len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| IpamError::InvalidPrefixLen {
            prefix: ip_prefix.to_owned(),
            len: ip_prefix_len,
            max,
        })?;
    let net = build_net(addr, len).ok_or_else(|| IpamError::InvalidPrefixLen {
        prefix: ip_prefix.to_owned(),
        len: ip_prefix_len,
        max,
    })?;
    if net.network() != addr {
        return Err(IpamError::HostBitsSet {
            prefix: ip_prefix.to_owned(),
            len,
            network: net.network(),
        });
    }
    Ok(net)
}

/// Parses `"address/len"` strictly (host bits must be clear).
pub fn parse_cidr(value: &str) -> Result<IpNet, IpamError> {
    let (addr, len) = split_cidr(value)?;
    parse_subnet(addr, len).map_err(|err| match err {
        IpamError::InvalidAddress { .. } => IpamError::InvalidCidr {
            value: value.to_owned(),
            reason: "address part is not an IPv4 or IPv6 address".to_owned(),
        },
        other => other,
    })
}

/// Parses `"address/len"`, clearing any host bits (`10.1.1.5/24` → `10.1.1.0/24`).
pub fn parse_cidr_normalized(value: &str) -> Result<IpNet, IpamError> {
    let (addr_text, len) = split_cidr(value)?;
    let addr = addr_text
        .parse::<IpAddr>()
        .map_err(|_| IpamError::InvalidCidr {
            value: value.to_owned(),
            reason: "address part is not an IPv4 or IPv6 address".to_owned(),
        })?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    u8::try_from(len)
        .ok()
        .and_then(|l| build_net(addr, l))
        .map(|net| net.trunc())
        .ok_or(IpamError::InvalidPrefixLen {
            prefix: addr_text.to_owned(),
            len,
            max,
        })
}

/// Splits `"a/b"` into the address text and a numeric length.
fn split_cidr(value: &str) -> Result<(&str, i64), IpamError> {
    let trimmed = value.trim();
    let (addr, len) = trimmed
        .split_once('/')
        .ok_or_else(|| IpamError::InvalidCidr {
            value: value.to_owned(),
            reason: "expected address/prefix-length".to_owned(),
        })?;
    let len = len.parse::<i64>().map_err(|_| IpamError::InvalidCidr {
        value: value.to_owned(),
        reason: "prefix length is not a number".to_owned(),
    })?;
    Ok((addr, len))
}

/// Builds a network of the address's family; `None` when `len` is too long.
fn build_net(addr: IpAddr, len: u8) -> Option<IpNet> {
    match addr {
        IpAddr::V4(a) => Ipv4Net::new(a, len).ok().map(IpNet::V4),
        IpAddr::V6(a) => Ipv6Net::new(a, len).ok().map(IpNet::V6),
    }
}

/// True when `inner` lies entirely inside `outer` (same family; equal counts).
pub fn prefix_contains(outer: &IpNet, inner: &IpNet) -> bool {
    match (outer, inner) {
        (IpNet::V4(o), IpNet::V4(i)) => o.contains(i),
        (IpNet::V6(o), IpNet::V6(i)) => o.contains(i),
        _ => false,
    }
}

/// True when `addr` lies inside `net` (same family).
pub fn prefix_contains_addr(net: &IpNet, addr: &IpAddr) -> bool {
    net.contains(addr)
}

/// True when the two prefixes share at least one address.
pub fn prefixes_overlap(a: &IpNet, b: &IpNet) -> bool {
    prefix_contains(a, b) || prefix_contains(b, a)
}

/// The address as an integer (IPv4 in the low 32 bits).
pub(crate) fn addr_to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The integer as an address of the same family as `net`.
///
/// Callers only pass values inside `net`, so an IPv4 value always fits.
pub(crate) fn u128_to_addr(net: &IpNet, value: u128) -> IpAddr {
    match net {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX))),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// First and last address of `net` as integers.
pub(crate) fn net_bounds(net: &IpNet) -> (u128, u128) {
    (addr_to_u128(net.network()), addr_to_u128(net.broadcast()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_subnet_accepts_v4_and_v6() {
        let net = parse_subnet("10.1.1.0", 24).unwrap();
        assert_eq!(net.to_string(), "10.1.1.0/24");
        let net = parse_subnet("2001:db8::", 64).unwrap();
        assert_eq!(net.to_string(), "2001:db8::/64");
        assert_eq!(parse_subnet("0.0.0.0", 0).unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(
            parse_subnet("10.1.1.7", 32).unwrap().to_string(),
            "10.1.1.7/32"
        );
    }

    #[test]
    fn parse_subnet_rejects_bad_length() {
        let err = parse_subnet("10.1.1.0", 33).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subnet 10.1.1.0/33: prefix length must be 0..=32"
        );
        assert!(matches!(
            parse_subnet("10.1.1.0", -1),
            Err(IpamError::InvalidPrefixLen {
                len: -1,
                max: 32,
                ..
            })
        ));
        assert!(matches!(
            parse_subnet("2001:db8::", 129),
            Err(IpamError::InvalidPrefixLen { max: 128, .. })
        ));
        assert!(matches!(
            parse_subnet("10.1.1.0", 1 << 40),
            Err(IpamError::InvalidPrefixLen { .. })
        ));
    }

    #[test]
    fn parse_subnet_rejects_host_bits_and_garbage() {
        let err = parse_subnet("10.1.1.5", 24).unwrap_err();
        assert_eq!(
            err,
            IpamError::HostBitsSet {
                prefix: "10.1.1.5".into(),
                len: 24,
                network: "10.1.1.0".parse().unwrap(),
            }
        );
        assert!(err.to_string().contains("host bits are set"));
        assert!(matches!(
            parse_subnet("10.1.1", 24),
            Err(IpamError::InvalidAddress {
                field: "ip_prefix",
                ..
            })
        ));
        assert!(matches!(
            parse_subnet("", 24),
            Err(IpamError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn parse_cidr_strict_and_normalized() {
        assert_eq!(
            parse_cidr("10.0.0.0/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(parse_cidr(" fd00::/8 ").unwrap().to_string(), "fd00::/8");
        assert!(matches!(
            parse_cidr("10.0.0.1/24"),
            Err(IpamError::HostBitsSet { .. })
        ));
        assert!(matches!(
            parse_cidr("10.0.0.0"),
            Err(IpamError::InvalidCidr { .. })
        ));
        assert!(matches!(
            parse_cidr("10.0.0.0/x"),
            Err(IpamError::InvalidCidr { .. })
        ));
        assert!(matches!(
            parse_cidr("nope/8"),
            Err(IpamError::InvalidCidr { .. })
        ));
        assert!(matches!(
            parse_cidr("10.0.0.0/40"),
            Err(IpamError::InvalidPrefixLen { .. })
        ));
        assert_eq!(
            parse_cidr_normalized("10.0.0.1/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert!(parse_cidr_normalized("10.0.0.1/33").is_err());
    }

    #[test]
    fn containment() {
        let big = parse_cidr("10.0.0.0/8").unwrap();
        let small = parse_cidr("10.1.0.0/16").unwrap();
        let other = parse_cidr("11.0.0.0/8").unwrap();
        let v6 = parse_cidr("::/0").unwrap();
        assert!(prefix_contains(&big, &small));
        assert!(prefix_contains(&big, &big));
        assert!(!prefix_contains(&small, &big));
        assert!(!prefix_contains(&big, &other));
        assert!(!prefix_contains(&v6, &big));
        assert!(prefixes_overlap(&small, &big));
        assert!(!prefixes_overlap(&other, &big));
        assert!(prefix_contains_addr(&big, &"10.200.0.1".parse().unwrap()));
        assert!(!prefix_contains_addr(&big, &"::1".parse().unwrap()));
    }

    #[test]
    fn integer_round_trip() {
        let net = parse_cidr("10.1.1.0/24").unwrap();
        let (first, last) = net_bounds(&net);
        assert_eq!(u128_to_addr(&net, first).to_string(), "10.1.1.0");
        assert_eq!(u128_to_addr(&net, last).to_string(), "10.1.1.255");
        let net6 = parse_cidr("2001:db8::/64").unwrap();
        let (_, last6) = net_bounds(&net6);
        assert_eq!(
            u128_to_addr(&net6, last6).to_string(),
            "2001:db8::ffff:ffff:ffff:ffff"
        );
    }
}
