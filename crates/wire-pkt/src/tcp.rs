//! TCP header (RFC 9293 §3.1). Options are kept in the buffer and skipped.

use std::net::IpAddr;

use crate::checksum;
use crate::ip_proto;
use crate::{get16, get32, need, put16, put32, Error, Result};

/// Header length without options.
pub const HEADER_LEN: usize = 20;

/// TCP flag bits.
pub mod flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
}

/// A view of a TCP segment.
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
    /// Wrap after checking that the header (with options) fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("tcp", buffer.as_ref().len(), HEADER_LEN)?;
        let p = Packet { buffer };
        let hl = p.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed {
                proto: "tcp",
                field: "data offset",
            });
        }
        need("tcp", p.buffer.as_ref().len(), hl)?;
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
    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        get32(self.buffer.as_ref(), 4)
    }
    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        get32(self.buffer.as_ref(), 8)
    }
    /// Header length (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }
    /// Flags byte (CWR..FIN).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }
    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        get16(self.buffer.as_ref(), 14)
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), 16)
    }
    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        get16(self.buffer.as_ref(), 18)
    }
    /// Data after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Verify the checksum over the whole buffer as the segment.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let seg = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ip_proto::TCP, seg.len() as u32);
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
    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 16, c);
    }
    /// Compute the checksum (the whole buffer is the segment).
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(src, dst, ip_proto::TCP, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A parsed TCP header (options not represented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: u8,
    /// Window.
    pub window: u16,
}

impl Repr {
    /// Parse a checked segment.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq(),
            ack: p.ack(),
            flags: p.flags(),
            window: p.window(),
        })
    }
    /// 20.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write a 20-byte header with a zero checksum.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        put16(b, 0, self.src_port);
        put16(b, 2, self.dst_port);
        put32(b, 4, self.seq);
        put32(b, 8, self.ack);
        b[12] = 5 << 4;
        b[13] = self.flags;
        put16(b, 14, self.window);
        put16(b, 16, 0);
        put16(b, 18, 0);
    }
}
