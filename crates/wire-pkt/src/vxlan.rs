//! VXLAN header (RFC 7348 §5): flags (I bit), reserved, VNI (24 bits),
//! reserved.
//!
//! RFC 7348: "I flag MUST be set to 1 for a valid VXLAN Network ID (VNI).
//! The other 7 bits (designated "R") are reserved fields and MUST be set to
//! zero on transmission. They MUST be ignored on receipt."

use crate::{get32, need, put32, Error, Result};

/// Header length.
pub const HEADER_LEN: usize = 8;

const FLAG_I: u8 = 0x08;

/// A view of a VXLAN packet.
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
        need("vxlan", buffer.as_ref().len(), HEADER_LEN)?;
        Ok(Packet { buffer })
    }
    /// Flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        get32(self.buffer.as_ref(), 4) >> 8
    }
    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// A parsed VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// VNI (24 bits).
    pub vni: u32,
}

impl Repr {
    /// Parse: the I flag must be set; reserved bits are ignored.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if p.flags() & FLAG_I == 0 {
            return Err(Error::Malformed {
                proto: "vxlan",
                field: "I flag",
            });
        }
        Ok(Repr { vni: p.vni() })
    }
    /// 8.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write the header: I flag set, reserved bits zero.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        put32(b, 0, u32::from(FLAG_I) << 24);
        put32(b, 4, (self.vni & 0xff_ffff) << 8);
    }
}
