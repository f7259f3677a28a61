//! MPLS label stack entry (RFC 3032 §2.1): label (20 bits), traffic class
//! (3), bottom of stack (1), TTL (8).

use crate::{get32, need, put32, Result};

/// Length of one label stack entry.
pub const ENTRY_LEN: usize = 4;

/// A view of one label stack entry.
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
    /// Wrap after checking 4 bytes are present.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("mpls", buffer.as_ref().len(), ENTRY_LEN)?;
        Ok(Packet { buffer })
    }
    #[inline]
    fn word(&self) -> u32 {
        get32(self.buffer.as_ref(), 0)
    }
    /// Label.
    #[inline]
    pub fn label(&self) -> u32 {
        self.word() >> 12
    }
    /// Traffic class.
    #[inline]
    pub fn tc(&self) -> u8 {
        ((self.word() >> 9) & 7) as u8
    }
    /// Bottom of stack.
    #[inline]
    pub fn bottom(&self) -> bool {
        self.word() & 0x100 != 0
    }
    /// TTL.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.word() as u8
    }
    /// Bytes after this entry.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ENTRY_LEN..]
    }
}

/// A parsed label stack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Label (20 bits).
    pub label: u32,
    /// Traffic class (3 bits).
    pub tc: u8,
    /// Bottom of stack.
    pub bottom: bool,
    /// TTL.
    pub ttl: u8,
}

impl Repr {
    /// Parse.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            label: p.label(),
            tc: p.tc(),
            bottom: p.bottom(),
            ttl: p.ttl(),
        })
    }
    /// 4.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }
    /// Write the entry (label and TC masked to their widths).
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        let w = ((self.label & 0xf_ffff) << 12)
            | (u32::from(self.tc & 7) << 9)
            | (u32::from(self.bottom) << 8)
            | u32::from(self.ttl);
        put32(b, 0, w);
    }
}
