//! IPv4 / IPv6 unicast prefixes (RFC 4271 §4.3 "Network Layer Reachability
//! Information", RFC 4760 §5).
//!
//! ```text
//! +---------------------------+
//! |   Length (1 octet)        |   prefix length in bits
//! +---------------------------+
//! |   Prefix (variable)       |   ceil(Length / 8) octets, trailing bits
//! +---------------------------+   irrelevant (kept as received)
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{pad, read_prefix};
use crate::{DecodeError, Reader};

/// Decode a run of IPv4 prefixes (the UPDATE's Withdrawn Routes and NLRI
/// fields, or AFI 1 / SAFI 1 MP NLRI).
pub(crate) fn decode_v4(buf: &[u8]) -> Result<Vec<Ipv4Net>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (bits, bytes) = read_prefix(&mut r, 32)?;
        out.push(prefix_v4(bits, bytes)?);
    }
    Ok(out)
}

/// Decode a run of IPv6 prefixes.
pub(crate) fn decode_v6(buf: &[u8]) -> Result<Vec<Ipv6Net>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (bits, bytes) = read_prefix(&mut r, 128)?;
        out.push(prefix_v6(bits, bytes)?);
    }
    Ok(out)
}

pub(crate) fn prefix_v4(bits: u8, bytes: &[u8]) -> Result<Ipv4Net, DecodeError> {
    Ipv4Net::new(Ipv4Addr::from(pad::<4>(bytes)), bits)
        .map_err(|_| DecodeError::nlri("IPv4 prefix length > 32"))
}

pub(crate) fn prefix_v6(bits: u8, bytes: &[u8]) -> Result<Ipv6Net, DecodeError> {
    Ipv6Net::new(Ipv6Addr::from(pad::<16>(bytes)), bits)
        .map_err(|_| DecodeError::nlri("IPv6 prefix length > 128"))
}

/// Only the significant octets of the address are written.
pub(crate) fn encode_v4(p: &Ipv4Net, out: &mut Vec<u8>) {
    let n = usize::from(p.prefix_len()).div_ceil(8);
    out.push(p.prefix_len());
    out.extend_from_slice(&p.addr().octets()[..n]);
}

/// Only the significant octets of the address are written.
pub(crate) fn encode_v6(p: &Ipv6Net, out: &mut Vec<u8>) {
    let n = usize::from(p.prefix_len()).div_ceil(8);
    out.push(p.prefix_len());
    out.extend_from_slice(&p.addr().octets()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlri::Nlri;
    use crate::{Afi, Safi, UpdateError};

    #[test]
    fn v4_round_trip() {
        // 10.1.0.0/16, 0.0.0.0/0, 192.0.2.1/32
        let bytes = [16, 10, 1, 0, 32, 192, 0, 2, 1];
        let n = Nlri::decode(Afi::Ipv4, Safi::Unicast, &bytes, false).unwrap();
        assert_eq!(
            n,
            Nlri::Ipv4Unicast(vec![
                "10.1.0.0/16".parse().unwrap(),
                "0.0.0.0/0".parse().unwrap(),
                "192.0.2.1/32".parse().unwrap(),
            ])
        );
        let mut out = Vec::new();
        n.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn v6_round_trip() {
        // 2001:db8::/32, ::1/128
        let mut bytes = vec![32, 0x20, 0x01, 0x0d, 0xb8, 128];
        bytes.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let n = Nlri::decode(Afi::Ipv6, Safi::Unicast, &bytes, false).unwrap();
        assert_eq!(
            n,
            Nlri::Ipv6Unicast(vec![
                "2001:db8::/32".parse().unwrap(),
                "::1/128".parse().unwrap()
            ])
        );
        let mut out = Vec::new();
        n.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    fn is_invalid_network(e: DecodeError) -> bool {
        matches!(
            e,
            DecodeError::Update {
                subcode: UpdateError::InvalidNetworkField,
                ..
            }
        )
    }

    #[test]
    fn malformed_prefixes() {
        assert!(is_invalid_network(
            decode_v4(&[33, 1, 2, 3, 4, 5]).unwrap_err()
        ));
        assert!(is_invalid_network(decode_v4(&[24, 10, 0]).unwrap_err()));
        let mut v6 = vec![129];
        v6.extend_from_slice(&[0; 17]);
        assert!(is_invalid_network(decode_v6(&v6).unwrap_err()));
        assert!(is_invalid_network(
            decode_v6(&[64, 0x20, 0x01]).unwrap_err()
        ));
    }
}
