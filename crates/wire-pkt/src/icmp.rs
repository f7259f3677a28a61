//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) share the first four bytes (type,
//! code, checksum) and, for echo, the identifier and sequence number. ICMPv4's
//! checksum covers the message only; ICMPv6's adds the IPv6 pseudo-header
//! (RFC 4443 §2.3).

use std::net::IpAddr;

use crate::checksum;
use crate::ip_proto;
use crate::{get16, need, put16, Result};

/// Header length (type, code, checksum, rest-of-header).
pub const HEADER_LEN: usize = 8;

/// Message types used by the pipeline.
pub mod types {
    /// ICMPv4 echo reply
    pub const V4_ECHO_REPLY: u8 = 0;
    /// ICMPv4 echo request
    pub const V4_ECHO_REQUEST: u8 = 8;
    /// ICMPv6 echo request
    pub const V6_ECHO_REQUEST: u8 = 128;
    /// ICMPv6 echo reply
    pub const V6_ECHO_REPLY: u8 = 129;
    /// ICMPv6 neighbor solicitation
    pub const V6_NEIGHBOR_SOLICIT: u8 = 135;
    /// ICMPv6 neighbor advertisement
    pub const V6_NEIGHBOR_ADVERT: u8 = 136;
}

/// A view of an ICMP message (either version).
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
    /// Wrap after checking the 8-byte header fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("icmp", buffer.as_ref().len(), HEADER_LEN)?;
        Ok(Packet { buffer })
    }
    /// Type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), 2)
    }
    /// Echo identifier (bytes 4..6).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get16(self.buffer.as_ref(), 4)
    }
    /// Echo sequence number (bytes 6..8).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        get16(self.buffer.as_ref(), 6)
    }
    /// Data after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// Verify an ICMPv4 checksum.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
    /// Verify an ICMPv6 checksum (with pseudo-header).
    #[inline]
    pub fn verify_checksum_v6(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ip_proto::ICMPV6, b.len() as u32);
        let s = u64::from(ph) + u64::from(checksum::sum(b));
        checksum::fold(((s & 0xffff_ffff) + (s >> 32)) as u32) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the echo identifier (checksum not updated).
    #[inline]
    pub fn set_echo_ident(&mut self, id: u16) {
        put16(self.buffer.as_mut(), 4, id);
    }
    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 2, c);
    }
    /// Compute an ICMPv4 checksum.
    #[inline]
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Compute an ICMPv6 checksum.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(src, dst, ip_proto::ICMPV6, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A parsed ICMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Type.
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// Rest of header (echo: identifier << 16 | sequence).
    pub rest: u32,
}

impl Repr {
    /// Parse a checked message.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            msg_type: p.msg_type(),
            code: p.code(),
            rest: crate::get32(p.buffer.as_ref(), 4),
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
        b[0] = self.msg_type;
        b[1] = self.code;
        put16(b, 2, 0);
        crate::put32(b, 4, self.rest);
    }
}
