//! Ethernet II frames (IEEE 802.3 clause 3 with the DIX type field) and the
//! IEEE 802.1Q VLAN tag.

use crate::{get16, need, put16, Result};

/// EtherType values used here.
pub mod ethertype {
    /// IPv4
    pub const IPV4: u16 = 0x0800;
    /// ARP
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag
    pub const VLAN: u16 = 0x8100;
    /// IPv6
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast
    pub const MPLS: u16 = 0x8847;
    /// Transparent Ethernet bridging (GRE payload)
    pub const TEB: u16 = 0x6558;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

mod field {
    pub const DST: std::ops::Range<usize> = 0..6;
    pub const SRC: std::ops::Range<usize> = 6..12;
    pub const TYPE: usize = 12;
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap without checking (emit into a buffer of at least
    /// [`HEADER_LEN`] bytes).
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wrap after checking the header fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("ethernet", buffer.as_ref().len(), HEADER_LEN)?;
        Ok(Frame { buffer })
    }

    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    /// Source MAC.
    #[inline]
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// EtherType (0x8100 when a VLAN tag follows).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get16(self.buffer.as_ref(), field::TYPE)
    }

    /// Bytes after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Set the destination MAC.
    #[inline]
    pub fn set_dst(&mut self, m: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&m);
    }
    /// Set the source MAC.
    #[inline]
    pub fn set_src(&mut self, m: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&m);
    }
    /// Set the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.buffer.as_mut(), field::TYPE, t);
    }
}

/// A parsed Ethernet header, including an optional 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Destination.
    pub dst: [u8; 6],
    /// Source.
    pub src: [u8; 6],
    /// 802.1Q TCI (PCP/DEI/VID) when tagged.
    pub vlan_tci: Option<u16>,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl Repr {
    /// Parse, following one 802.1Q tag.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr> {
        let b = frame.buffer.as_ref();
        let t = frame.ethertype();
        if t == ethertype::VLAN {
            need("802.1q", b.len(), HEADER_LEN + VLAN_TAG_LEN)?;
            return Ok(Repr {
                dst: frame.dst(),
                src: frame.src(),
                vlan_tci: Some(get16(b, 14)),
                ethertype: get16(b, 16),
            });
        }
        Ok(Repr {
            dst: frame.dst(),
            src: frame.src(),
            vlan_tci: None,
            ethertype: t,
        })
    }

    /// Header length (14, or 18 with a tag).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + if self.vlan_tci.is_some() {
                VLAN_TAG_LEN
            } else {
                0
            }
    }

    /// Write the header into the first `buffer_len()` bytes.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let mut f = Frame::new_unchecked(&mut *buf);
        f.set_dst(self.dst);
        f.set_src(self.src);
        match self.vlan_tci {
            Some(tci) => {
                f.set_ethertype(ethertype::VLAN);
                put16(buf, 14, tci);
                put16(buf, 16, self.ethertype);
            }
            None => f.set_ethertype(self.ethertype),
        }
    }
}
