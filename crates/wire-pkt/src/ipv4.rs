//! IPv4 header (RFC 791 §3.1). Options are kept as bytes (IHL > 5) and
//! skipped; the payload is bounded by Total Length, not by the buffer.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::{get16, need, put16, Error, Result};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// A view of an IPv4 packet.
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

    /// Wrap after checking: version 4, IHL >= 5, header and Total Length fit
    /// in the buffer, Total Length >= header length.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        need("ipv4", b.len(), HEADER_LEN)?;
        let p = Packet { buffer };
        if p.version() != 4 {
            return Err(Error::Malformed {
                proto: "ipv4",
                field: "version",
            });
        }
        let hl = p.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed {
                proto: "ipv4",
                field: "header length",
            });
        }
        let total = usize::from(p.total_len());
        need("ipv4", p.buffer.as_ref().len(), hl.max(total))?;
        if total < hl {
            return Err(Error::Malformed {
                proto: "ipv4",
                field: "total length",
            });
        }
        Ok(p)
    }
    /// Version (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x0f) * 4
    }
    /// DSCP/ECN byte.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// Total Length.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), 2)
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), 4)
    }
    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[6] & 0x40 != 0
    }
    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get16(self.buffer.as_ref(), 6) & 0x1fff) * 8
    }
    /// TTL.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }
    /// Protocol.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), 10)
    }
    /// Source.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    /// Destination.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// RFC 791: "The checksum field is the 16 bit one's complement of the
    /// one's complement sum of all 16 bit words in the header."
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_len()])) == 0xffff
    }
    /// The payload, bounded by Total Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set TTL (checksum not updated).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[8] = ttl;
    }
    /// Set the source (checksum not updated).
    #[inline]
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[12..16].copy_from_slice(&a.octets());
    }
    /// Set the destination (checksum not updated).
    #[inline]
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[16..20].copy_from_slice(&a.octets());
    }
    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 10, c);
    }
    /// Recompute the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
    /// Decrement TTL and patch the checksum incrementally (RFC 1624); the
    /// caller checks TTL > 1 first.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        let old = get16(b, 8);
        b[8] = b[8].wrapping_sub(1);
        let new = get16(b, 8);
        let c = checksum::update16(get16(b, 10), old, new);
        put16(b, 10, c);
    }
    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..tl]
    }
}

/// A parsed IPv4 header (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// Payload length.
    pub payload_len: usize,
    /// TTL.
    pub ttl: u8,
    /// DSCP/ECN.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
}

impl Repr {
    /// Parse a checked packet; the header checksum must verify.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if !p.verify_checksum() {
            return Err(Error::Malformed {
                proto: "ipv4",
                field: "checksum",
            });
        }
        Ok(Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }
    /// 20.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write a 20-byte header with checksum into `b`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        b[0] = 0x45;
        b[1] = self.tos;
        put16(b, 2, (HEADER_LEN + self.payload_len) as u16);
        put16(b, 4, self.ident);
        put16(b, 6, if self.dont_frag { 0x4000 } else { 0 });
        b[8] = self.ttl;
        b[9] = self.protocol;
        put16(b, 10, 0);
        b[12..16].copy_from_slice(&self.src.octets());
        b[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(&b[..HEADER_LEN]);
        put16(b, 10, c);
    }
}
