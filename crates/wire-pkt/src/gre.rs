//! GRE header (RFC 2784 §2, with the RFC 2890 key and sequence number
//! extensions): C, K, S flags, version 0, protocol type, optional checksum
//! and reserved word, key, sequence number. MPLSoGRE (RFC 4023) uses protocol
//! type 0x8847 and no options.
//!
//! RFC 2784 §2.5: "The Version Number field MUST contain the value zero."

use crate::checksum;
use crate::{get16, get32, need, put16, put32, Error, Result};

/// Length without optional fields.
pub const BASE_LEN: usize = 4;

const FLAG_C: u16 = 0x8000;
const FLAG_K: u16 = 0x2000;
const FLAG_S: u16 = 0x1000;
/// RFC 1701's Routing Present (bit 1), Strict Source Route (bit 4) and recursion (bit 5).
const FLAGS_RFC1701: u16 = 0x4000 | 0x0800 | 0x0400;

/// A view of a GRE packet.
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
    /// Wrap after checking the header with its optional fields fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("gre", buffer.as_ref().len(), BASE_LEN)?;
        let p = Packet { buffer };
        need("gre", p.buffer.as_ref().len(), p.header_len())?;
        Ok(p)
    }
    #[inline]
    fn flags(&self) -> u16 {
        get16(self.buffer.as_ref(), 0)
    }
    /// Checksum present.
    #[inline]
    pub fn has_checksum(&self) -> bool {
        self.flags() & FLAG_C != 0
    }
    /// Key present.
    #[inline]
    pub fn has_key(&self) -> bool {
        self.flags() & FLAG_K != 0
    }
    /// Sequence number present.
    #[inline]
    pub fn has_seq(&self) -> bool {
        self.flags() & FLAG_S != 0
    }
    /// Version (must be 0).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags() & 7) as u8
    }
    /// Protocol type (EtherType of the payload).
    #[inline]
    pub fn protocol(&self) -> u16 {
        get16(self.buffer.as_ref(), 2)
    }
    /// Header length including optional fields.
    #[inline]
    pub fn header_len(&self) -> usize {
        BASE_LEN
            + 4 * (usize::from(self.has_checksum())
                + usize::from(self.has_key())
                + usize::from(self.has_seq()))
    }
    /// Key, when present.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let at = BASE_LEN + if self.has_checksum() { 4 } else { 0 };
        self.has_key().then(|| get32(self.buffer.as_ref(), at))
    }
    /// Sequence number, when present.
    #[inline]
    pub fn seq(&self) -> Option<u32> {
        let at = BASE_LEN + 4 * (usize::from(self.has_checksum()) + usize::from(self.has_key()));
        self.has_seq().then(|| get32(self.buffer.as_ref(), at))
    }
    /// Bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// A parsed GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Protocol type.
    pub protocol: u16,
    /// Emit / verify a checksum over header and payload.
    pub checksum: bool,
    /// Key (RFC 2890).
    pub key: Option<u32>,
    /// Sequence number (RFC 2890).
    pub seq: Option<u32>,
}

impl Repr {
    /// Parse: version must be 0; a present checksum must verify.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if p.version() != 0 {
            return Err(Error::Malformed {
                proto: "gre",
                field: "version",
            });
        }
        // RFC 2784 §2.3: "A receiver MUST discard a packet where any of bits 1-5 are
        // non-zero, unless that receiver implements RFC 1701." (bits 2 and 3 are RFC 2890's
        // Key and Sequence Number Present; 1, 4 and 5 are RFC 1701's Routing Present, Strict
        // Source Route and the top recursion bit.)
        if p.flags() & FLAGS_RFC1701 != 0 {
            return Err(Error::Malformed {
                proto: "gre",
                field: "reserved0",
            });
        }
        if p.has_checksum() && checksum::fold(checksum::sum(p.buffer.as_ref())) != 0xffff {
            return Err(Error::Malformed {
                proto: "gre",
                field: "checksum",
            });
        }
        Ok(Repr {
            protocol: p.protocol(),
            checksum: p.has_checksum(),
            key: p.key(),
            seq: p.seq(),
        })
    }
    /// Header length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        BASE_LEN
            + 4 * (usize::from(self.checksum)
                + usize::from(self.key.is_some())
                + usize::from(self.seq.is_some()))
    }
    /// Write the header at the front of `b`, which holds header + payload
    /// (the checksum, when requested, covers all of `b`).
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        let mut flags = 0u16;
        if self.checksum {
            flags |= FLAG_C;
        }
        if self.key.is_some() {
            flags |= FLAG_K;
        }
        if self.seq.is_some() {
            flags |= FLAG_S;
        }
        put16(b, 0, flags);
        put16(b, 2, self.protocol);
        let mut at = BASE_LEN;
        if self.checksum {
            put32(b, at, 0);
            at += 4;
        }
        if let Some(k) = self.key {
            put32(b, at, k);
            at += 4;
        }
        if let Some(s) = self.seq {
            put32(b, at, s);
        }
        if self.checksum {
            let c = checksum::checksum(b);
            put16(b, BASE_LEN, c);
        }
    }
}
