//! IPv6 fixed header (RFC 8200 §3). Extension headers are not walked here;
//! the pipeline treats their next-header values as the upper protocol.

use std::net::Ipv6Addr;

use crate::{get16, need, put16, Error, Result};

/// Fixed header length.
pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet.
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
    /// Wrap after checking version 6 and that Payload Length fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("ipv6", buffer.as_ref().len(), HEADER_LEN)?;
        let p = Packet { buffer };
        if p.version() != 6 {
            return Err(Error::Malformed {
                proto: "ipv6",
                field: "version",
            });
        }
        need(
            "ipv6",
            p.buffer.as_ref().len(),
            HEADER_LEN + usize::from(p.payload_len()),
        )?;
        Ok(p)
    }
    /// Version (6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    /// Flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        (u32::from(b[1] & 0x0f) << 16) | u32::from(get16(b, 2))
    }
    /// Payload Length.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get16(self.buffer.as_ref(), 4)
    }
    /// Next Header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }
    /// Hop Limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    #[inline]
    fn addr(&self, at: usize) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[at..at + 16]);
        Ipv6Addr::from(a)
    }
    /// Source.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        self.addr(8)
    }
    /// Destination.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        self.addr(24)
    }
    /// Payload bounded by Payload Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set Hop Limit.
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[7] = h;
    }
    /// Set the source.
    #[inline]
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }
    /// Set the destination.
    #[inline]
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets());
    }
}

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Parse a checked packet.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }
    /// 40.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write the fixed header into `b`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        let fl = self.flow_label & 0xf_ffff;
        b[0] = 0x60 | (self.traffic_class >> 4);
        b[1] = (self.traffic_class << 4) | ((fl >> 16) as u8);
        put16(b, 2, fl as u16);
        put16(b, 4, self.payload_len as u16);
        b[6] = self.next_header;
        b[7] = self.hop_limit;
        b[8..24].copy_from_slice(&self.src.octets());
        b[24..40].copy_from_slice(&self.dst.octets());
    }
}
