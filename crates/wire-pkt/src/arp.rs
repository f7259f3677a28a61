//! ARP for IPv4 over Ethernet (RFC 826): the 28-byte packet with hardware
//! type 1, protocol type 0x0800, lengths 6 and 4.

use std::net::Ipv4Addr;

use crate::{get16, need, put16, Error, Result};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP operation codes.
pub mod op {
    /// Request
    pub const REQUEST: u16 = 1;
    /// Reply
    pub const REPLY: u16 = 2;
}

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wrap after checking the length.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("arp", buffer.as_ref().len(), PACKET_LEN)?;
        Ok(Packet { buffer })
    }
    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn htype(&self) -> u16 {
        get16(self.buffer.as_ref(), 0)
    }
    /// Protocol type (0x0800 = IPv4).
    #[inline]
    pub fn ptype(&self) -> u16 {
        get16(self.buffer.as_ref(), 2)
    }
    /// Hardware address length.
    #[inline]
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
    /// Protocol address length.
    #[inline]
    pub fn plen(&self) -> u8 {
        self.buffer.as_ref()[5]
    }
    /// Operation.
    #[inline]
    pub fn operation(&self) -> u16 {
        get16(self.buffer.as_ref(), 6)
    }
    #[inline]
    fn mac(&self, at: usize) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[at..at + 6]);
        m
    }
    #[inline]
    fn ip(&self, at: usize) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
    }
    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> [u8; 6] {
        self.mac(8)
    }
    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        self.ip(14)
    }
    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> [u8; 6] {
        self.mac(18)
    }
    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        self.ip(24)
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Operation (request 1, reply 2, others kept).
    pub operation: u16,
    /// Sender MAC.
    pub sender_mac: [u8; 6],
    /// Sender IPv4.
    pub sender_ip: Ipv4Addr,
    /// Target MAC.
    pub target_mac: [u8; 6],
    /// Target IPv4.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parse; only Ethernet/IPv4 ARP is accepted.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if p.htype() != 1 || p.hlen() != 6 {
            return Err(Error::Malformed {
                proto: "arp",
                field: "hardware type",
            });
        }
        if p.ptype() != 0x0800 || p.plen() != 4 {
            return Err(Error::Malformed {
                proto: "arp",
                field: "protocol type",
            });
        }
        Ok(Repr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }
    /// 28.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }
    /// Write into the first 28 bytes of `b`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        put16(b, 0, 1);
        put16(b, 2, 0x0800);
        b[4] = 6;
        b[5] = 4;
        put16(b, 6, self.operation);
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }
}
