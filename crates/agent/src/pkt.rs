//! The few frame layouts the agent reads and writes itself (sans-IO): Ethernet II (IEEE 802.3
//! §3.2.6), IPv4 (RFC 791 §3.1), UDP (RFC 768) and ARP (RFC 826), for punted DHCP/ARP requests
//! and the replies it injects. Bounds are checked before every read; a short or inconsistent
//! frame is a `PktError`, never a panic.

use std::net::Ipv4Addr;

/// EtherType IPv4.
pub const ETH_IPV4: u16 = 0x0800;
/// EtherType ARP.
pub const ETH_ARP: u16 = 0x0806;
/// IP protocol UDP.
pub const PROTO_UDP: u8 = 17;
/// Broadcast MAC.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PktError {
    /// Shorter than the header it claims.
    #[error("{layer}: truncated ({have} bytes)")]
    Truncated {
        /// which header
        layer: &'static str,
        /// bytes present
        have: usize,
    },
    /// A field with a value this reader does not handle.
    #[error("{layer}: unsupported {field} = {value}")]
    Unsupported {
        /// which header
        layer: &'static str,
        /// which field
        field: &'static str,
        /// its value
        value: u32,
    },
}

/// An Ethernet II frame, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Eth<'a> {
    /// destination MAC
    pub dst: [u8; 6],
    /// source MAC
    pub src: [u8; 6],
    /// EtherType (after one 802.1Q tag, if any)
    pub ethertype: u16,
    /// payload
    pub payload: &'a [u8],
}

fn mac(b: &[u8]) -> [u8; 6] {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

fn ip4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<'a> Eth<'a> {
    /// Read an Ethernet header (skipping one 802.1Q tag).
    pub fn parse(f: &'a [u8]) -> Result<Self, PktError> {
        let tr = PktError::Truncated {
            layer: "ethernet",
            have: f.len(),
        };
        if f.len() < 14 {
            return Err(tr);
        }
        let mut ethertype = u16::from_be_bytes([f[12], f[13]]);
        let mut off = 14;
        if ethertype == 0x8100 {
            if f.len() < 18 {
                return Err(tr);
            }
            ethertype = u16::from_be_bytes([f[16], f[17]]);
            off = 18;
        }
        Ok(Self {
            dst: mac(&f[0..6]),
            src: mac(&f[6..12]),
            ethertype,
            payload: &f[off..],
        })
    }
}

/// An IPv4 packet, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Ip4<'a> {
    /// source
    pub src: Ipv4Addr,
    /// destination
    pub dst: Ipv4Addr,
    /// protocol
    pub proto: u8,
    /// payload, cut at the total length
    pub payload: &'a [u8],
}

impl<'a> Ip4<'a> {
    /// RFC 791 §3.1: IHL "points to the beginning of the data"; total length bounds the payload.
    pub fn parse(b: &'a [u8]) -> Result<Self, PktError> {
        let tr = PktError::Truncated {
            layer: "ipv4",
            have: b.len(),
        };
        if b.len() < 20 {
            return Err(tr);
        }
        if b[0] >> 4 != 4 {
            return Err(PktError::Unsupported {
                layer: "ipv4",
                field: "version",
                value: u32::from(b[0] >> 4),
            });
        }
        let ihl = usize::from(b[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if ihl < 20 || total < ihl || b.len() < total {
            return Err(tr);
        }
        Ok(Self {
            src: ip4(&b[12..16]),
            dst: ip4(&b[16..20]),
            proto: b[9],
            payload: &b[ihl..total],
        })
    }
}

/// A UDP datagram, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    /// source port
    pub sport: u16,
    /// destination port
    pub dport: u16,
    /// payload, cut at the UDP length
    pub payload: &'a [u8],
}

impl<'a> Udp<'a> {
    /// RFC 768: length "is the length in octets of this user datagram including this header".
    pub fn parse(b: &'a [u8]) -> Result<Self, PktError> {
        let tr = PktError::Truncated {
            layer: "udp",
            have: b.len(),
        };
        if b.len() < 8 {
            return Err(tr);
        }
        let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
        if len < 8 || b.len() < len {
            return Err(tr);
        }
        Ok(Self {
            sport: u16::from_be_bytes([b[0], b[1]]),
            dport: u16::from_be_bytes([b[2], b[3]]),
            payload: &b[8..len],
        })
    }
}

/// An Ethernet/IPv4 ARP packet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply
    pub op: u16,
    /// sender hardware address
    pub sha: [u8; 6],
    /// sender protocol address
    pub spa: Ipv4Addr,
    /// target hardware address
    pub tha: [u8; 6],
    /// target protocol address
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// Read an ARP body; only hardware type 1 / protocol 0x0800 with 6/4 lengths.
    pub fn parse(b: &[u8]) -> Result<Self, PktError> {
        if b.len() < 28 {
            return Err(PktError::Truncated {
                layer: "arp",
                have: b.len(),
            });
        }
        let htype = u16::from_be_bytes([b[0], b[1]]);
        let ptype = u16::from_be_bytes([b[2], b[3]]);
        if htype != 1 || ptype != ETH_IPV4 || b[4] != 6 || b[5] != 4 {
            return Err(PktError::Unsupported {
                layer: "arp",
                field: "hardware/protocol",
                value: u32::from(htype),
            });
        }
        Ok(Self {
            op: u16::from_be_bytes([b[6], b[7]]),
            sha: mac(&b[8..14]),
            spa: ip4(&b[14..18]),
            tha: mac(&b[18..24]),
            tpa: ip4(&b[24..28]),
        })
    }

    /// The 28-byte body.
    pub fn emit(&self) -> Vec<u8> {
        let mut b = vec![0, 1, 0x08, 0x00, 6, 4];
        b.extend_from_slice(&self.op.to_be_bytes());
        b.extend_from_slice(&self.sha);
        b.extend_from_slice(&self.spa.octets());
        b.extend_from_slice(&self.tha);
        b.extend_from_slice(&self.tpa.octets());
        b
    }
}

/// An Ethernet frame around `payload`.
pub fn eth_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// RFC 1071 one's-complement sum, folded.
fn csum_add(mut sum: u32, b: &[u8]) -> u32 {
    let mut it = b.chunks_exact(2);
    for w in &mut it {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = it.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16) // folded to 16 bits above
}

/// Ethernet + IPv4 + UDP frame with both checksums (RFC 768: a computed UDP checksum of zero
/// "is transmitted as all ones").
#[allow(clippy::too_many_arguments)] // one field per header value; a struct adds nothing
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, PROTO_UDP, 0, 0];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = csum_fold(csum_add(0, &ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut sum = csum_add(0, &src.octets());
    sum = csum_add(sum, &dst.octets());
    sum += u32::from(PROTO_UDP) + udp_len as u32;
    let c = match csum_fold(csum_add(sum, &udp)) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&udp);
    eth_frame(dst_mac, src_mac, ETH_IPV4, &ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_frame_parses_back_with_valid_checksums() {
        let f = udp_frame(
            BROADCAST,
            [2, 0, 0, 0, 0, 9],
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::BROADCAST,
            67,
            68,
            b"hello",
        );
        let e = Eth::parse(&f).unwrap();
        assert_eq!(e.ethertype, ETH_IPV4);
        let ip = Ip4::parse(e.payload).unwrap();
        assert_eq!(ip.proto, PROTO_UDP);
        assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 2));
        // header checksum verifies to zero
        assert_eq!(csum_fold(csum_add(0, &e.payload[..20])), 0);
        let u = Udp::parse(ip.payload).unwrap();
        assert_eq!((u.sport, u.dport, u.payload), (67, 68, &b"hello"[..]));
        let mut sum = csum_add(0, &ip.src.octets());
        sum = csum_add(sum, &ip.dst.octets());
        sum += u32::from(PROTO_UDP) + ip.payload.len() as u32;
        assert_eq!(csum_fold(csum_add(sum, ip.payload)), 0);
    }

    #[test]
    fn arp_round_trip_and_short_input() {
        let a = Arp {
            op: 1,
            sha: [2, 0, 0, 0, 0, 1],
            spa: Ipv4Addr::new(10, 1, 1, 3),
            tha: [0; 6],
            tpa: Ipv4Addr::new(10, 1, 1, 1),
        };
        assert_eq!(Arp::parse(&a.emit()).unwrap(), a);
        assert!(Arp::parse(&a.emit()[..27]).is_err());
        assert!(Eth::parse(&[0u8; 13]).is_err());
        assert!(
            Ip4::parse(&[0x45, 0, 0, 200, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
                .is_err()
        );
    }
}
