//! UDP header (RFC 768). The checksum covers a pseudo-header; for IPv4 a
//! zero checksum means "none" (RFC 768: "An all zero transmitted checksum
//! value means that the transmitter generated no checksum").

use std::net::IpAddr;

use crate::checksum;
use crate::ip_proto;
use crate::{get16, need, put16, Error, Result};

/// Header length.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
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
    /// Wrap after checking the header and Length field fit.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let have = buffer.as_ref().len();
        need("udp", have, HEADER_LEN)?;
        let p = Packet { buffer };
        let len = usize::from(p.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed {
                proto: "udp",
                field: "length",
            });
        }
        need("udp", have, len)?;
        Ok(p)
    }
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), 0)
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), 2)
    }
    /// Length (header + data).
    #[inline]
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), 4)
    }
    /// Length is zero (never valid once checked).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), 6)
    }
    /// Data bounded by Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// Verify the checksum (a zero checksum over IPv4 passes).
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 && src.is_ipv4() {
            return true;
        }
        let seg = &self.buffer.as_ref()[..usize::from(self.len())];
        let ph = checksum::pseudo_header(src, dst, ip_proto::UDP, seg.len() as u32);
        let s = u64::from(ph) + u64::from(checksum::sum(seg));
        checksum::fold(((s & 0xffff_ffff) + (s >> 32)) as u32) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the source port.
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }
    /// Set the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }
    /// Set Length.
    #[inline]
    pub fn set_len(&mut self, l: u16) {
        put16(self.buffer.as_mut(), 4, l);
    }
    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 6, c);
    }
    /// Compute the checksum over the pseudo-header and the datagram.
    /// RFC 768: "If the computed checksum is zero, it is transmitted as all
    /// ones".
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let len = usize::from(self.len());
        let c = checksum::l4_checksum(src, dst, ip_proto::UDP, &self.buffer.as_ref()[..len]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A parsed UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data length (without header).
    pub payload_len: usize,
}

impl Repr {
    /// Parse a checked datagram (checksum not verified: see
    /// [`Packet::verify_checksum`]).
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.len()) - HEADER_LEN,
        })
    }
    /// 8.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write the header with a zero checksum.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        put16(b, 0, self.src_port);
        put16(b, 2, self.dst_port);
        put16(b, 4, (HEADER_LEN + self.payload_len) as u16);
        put16(b, 6, 0);
    }
}
