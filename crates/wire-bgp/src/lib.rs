//! `filament-wire-bgp`: sans-IO BGP-4 message encoding and decoding.
//!
//! This is the vocabulary layer of Filament's control node: bytes in, typed
//! values out, and back. There is no I/O, no async and no clock here; the
//! session state machine lives above this crate.
//!
//! * RFC 4271 §4.1 message header and framing: [`Message::decode`] /
//!   [`Message::encode`], streaming-friendly via [`DecodeError::Incomplete`];
//! * RFC 4271 §4.2 OPEN with RFC 5492 capabilities: [`Open`], [`Capability`];
//! * RFC 4271 §4.3 UPDATE and §5 path attributes: [`Update`], [`PathAttr`];
//! * RFC 4760 multiprotocol NLRI: [`Nlri`] for IPv4/IPv6 unicast, VPNv4/VPNv6
//!   (RFC 4364 / 4659), EVPN (RFC 7432, RFC 9136) and route-target
//!   membership (RFC 4684);
//! * RFC 6514 §5 PMSI Tunnel attribute (EVPN type 3, RFC 7432 §11.2): [`PmsiTunnel`];
//! * RFC 4271 §4.5 NOTIFICATION: [`Notification`]; §4.4 KEEPALIVE;
//! * RFC 2918 / RFC 7313 ROUTE-REFRESH: [`RouteRefresh`];
//! * RFC 4271 §6 / RFC 7606 errors: [`DecodeError`].
//!
//! Decoding never panics on untrusted input; every length is checked before
//! it is used.

#![warn(missing_docs)]

/// Declare a `u8`/`u16` enum that keeps unknown values (smoltcp's idea).
macro_rules! enum_with_unknown {
    (
        $(#[$m:meta])* pub enum $name:ident($ty:ty) {
            $( $(#[$vm:meta])* $variant:ident = $value:expr, )+
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vm])* $variant, )+
            /// A value this crate has no name for.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

mod attr;
mod error;
pub mod nlri;
mod notification;
mod open;
mod pmsi;
mod types;
mod update;

pub use attr::{
    Aggregator, AsPath, AsSegment, ExtCommunity, MpReach, MpUnreach, NextHop, Origin, PathAttr,
    TunnelType,
};
pub use error::{DecodeError, EncodeError};
pub use nlri::{EvpnRoute, Nlri, RtcRoute, VpnRoute};
pub use notification::{
    update_error_name, CeaseSubcode, ErrorCode, HeaderError, Notification, OpenError, UpdateError,
};
pub use open::{
    AddPathFamily, Capability, GrFamily, LlgrFamily, Open, AS_TRANS, MAX_LLGR_STALE_TIME,
};

/// RFC 9494 §4.1 well-known community LLGR_STALE (65535:6): "used to mark
/// stale routes retained for a longer period of time".
pub const LLGR_STALE: u32 = 0xFFFF_0006;
/// RFC 9494 §4.1 well-known community NO_LLGR (65535:7): "used to mark routes
/// which are not to be retained".
pub const NO_LLGR: u32 = 0xFFFF_0007;
/// RFC 1997 well-known community NO_EXPORT: "All routes received carrying a
/// communities attribute containing this value MUST NOT be advertised outside
/// a BGP confederation boundary".
pub const NO_EXPORT: u32 = 0xFFFF_FF01;
/// RFC 1997 well-known community NO_ADVERTISE: "MUST NOT be advertised to
/// other BGP peers".
pub const NO_ADVERTISE: u32 = 0xFFFF_FF02;
/// RFC 1997 well-known community NO_EXPORT_SUBCONFED: "MUST NOT be advertised
/// to external BGP peers".
pub const NO_EXPORT_SUBCONFED: u32 = 0xFFFF_FF03;
pub use pmsi::{PmsiTunnel, PmsiTunnelType, PMSI_TUNNEL, PMSI_TUNNEL_FLAGS};
pub use types::{
    Afi, Esi, Label, LabelField, MacAddr, ParseError, RouteDistinguisher, RouteTarget, Safi,
};
pub use update::Update;

/// Length of the all-ones marker (RFC 4271 §4.1).
pub const MARKER_LEN: usize = 16;
/// Length of the message header: marker, length and type.
pub const HEADER_LEN: usize = 19;
/// Maximum message size without RFC 8654 extended messages.
pub const MAX_LEN: usize = 4096;
/// Maximum message size with RFC 8654 extended messages negotiated.
pub const MAX_EXTENDED_LEN: usize = 65535;

/// Negotiated session properties that change how messages are decoded and
/// encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeCtx {
    /// RFC 6793: both sides advertised the 4-octet AS capability, so AS_PATH
    /// and AGGREGATOR carry 4-octet AS numbers.
    pub four_octet_as: bool,
    /// RFC 8654: extended messages (up to 65535 bytes) were negotiated.
    pub extended_message: bool,
    /// RFC 7606 revised error handling: report malformed attributes as
    /// [`DecodeError::TreatAsWithdraw`] (or discard them) instead of a
    /// session-resetting UPDATE error.
    pub rfc7606: bool,
}

impl DecodeCtx {
    fn max_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_LEN
        } else {
            MAX_LEN
        }
    }
}

/// ROUTE-REFRESH message (RFC 2918 §3, RFC 7313 §3.2).
///
/// ```text
///  0       7      15      23      31
///  +-------+-------+-------+-------+
///  |      AFI      | Subtyp|  SAFI |
///  +-------+-------+-------+-------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    /// Address family.
    pub afi: Afi,
    /// RFC 7313 message subtype: 0 normal, 1 BoRR, 2 EoRR (was "Reserved").
    pub subtype: u8,
    /// Subsequent address family.
    pub safi: Safi,
}

/// A BGP message (RFC 4271 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN (type 1).
    Open(Open),
    /// UPDATE (type 2).
    Update(Update),
    /// NOTIFICATION (type 3).
    Notification(Notification),
    /// KEEPALIVE (type 4).
    Keepalive,
    /// ROUTE-REFRESH (type 5).
    RouteRefresh(RouteRefresh),
}

mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

// ===== impl Message =====

impl Message {
    /// Decode one message from the front of `buf`.
    ///
    /// Returns the message and the number of bytes it used. When `buf` holds
    /// only part of a message, returns [`DecodeError::Incomplete`] and the
    /// caller should read more and retry with the same (grown) buffer.
    pub fn decode(buf: &[u8], ctx: &DecodeCtx) -> Result<(Message, usize), DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Incomplete {
                needed: HEADER_LEN - buf.len(),
            });
        }
        // RFC 4271 - Section 6.1:
        // "If at least one of the following is true: - if the Length field of
        // the message header is less than 19 or greater than 4096, or ... then
        // the Error Subcode MUST be set to Bad Message Length. The Data field
        // MUST contain the erroneous Length field."
        // (The marker is checked first: Connection Not Synchronized.)
        if buf[..MARKER_LEN].iter().any(|&b| b != 0xff) {
            return Err(DecodeError::header(
                HeaderError::ConnectionNotSynchronized,
                Vec::new(),
                "marker is not all ones",
            ));
        }
        let len_field = [buf[16], buf[17]];
        let len = usize::from(u16::from_be_bytes(len_field));
        let kind = buf[18];
        let bad_len = || {
            DecodeError::header(
                HeaderError::BadMessageLength,
                len_field.to_vec(),
                "bad length",
            )
        };
        if len < HEADER_LEN || len > ctx.max_len() {
            return Err(bad_len());
        }
        if buf.len() < len {
            return Err(DecodeError::Incomplete {
                needed: len - buf.len(),
            });
        }
        // "- if the Length field of an OPEN message is less than the minimum
        // length of the OPEN message, or - if the Length field of an UPDATE
        // message is less than the minimum length of the UPDATE message, or -
        // if the Length field of a KEEPALIVE message is not equal to 19, or -
        // if the Length field of a NOTIFICATION message is less than the
        // minimum length of the NOTIFICATION message"
        let body = &buf[HEADER_LEN..len];
        let msg = match kind {
            msg_type::OPEN if len < 29 => return Err(bad_len()),
            msg_type::OPEN => Message::Open(Open::decode(body)?),
            msg_type::UPDATE if len < 23 => return Err(bad_len()),
            msg_type::UPDATE => {
                Message::Update(Update::decode(body, ctx).map_err(|e| match e {
                    DecodeError::TreatAsWithdraw {
                        attr_type,
                        subcode,
                        update,
                        ..
                    } => DecodeError::TreatAsWithdraw {
                        attr_type,
                        subcode,
                        msg_len: len,
                        update,
                    },
                    e => e,
                })?)
            }
            msg_type::NOTIFICATION if len < 21 => return Err(bad_len()),
            msg_type::NOTIFICATION => Message::Notification(Notification::decode(body)),
            msg_type::KEEPALIVE if len != HEADER_LEN => return Err(bad_len()),
            msg_type::KEEPALIVE => Message::Keepalive,
            msg_type::ROUTE_REFRESH => {
                // RFC 7313 - Section 5:
                // "If the length, excluding the fixed-size message header, of
                // the received ROUTE-REFRESH message with Message Subtype 1
                // and 2 is not 4, then the BGP speaker MUST send a
                // NOTIFICATION message with the Error Code of 'ROUTE-REFRESH
                // Message Error' and the subcode of 'Invalid Message Length'."
                // RFC 2918 fixes the same 4-octet body for subtype 0, so the
                // check is applied to every subtype.
                if body.len() != 4 {
                    return Err(DecodeError::RouteRefreshLength {
                        data: buf[..len].to_vec(),
                    });
                }
                Message::RouteRefresh(RouteRefresh {
                    afi: Afi::from(u16::from_be_bytes([body[0], body[1]])),
                    subtype: body[2],
                    safi: Safi::from(body[3]),
                })
            }
            // "If the Type field of the message header is not recognized, then
            // the Error Subcode MUST be set to Bad Message Type. The Data field
            // MUST contain the erroneous Type field."
            _ => {
                return Err(DecodeError::header(
                    HeaderError::BadMessageType,
                    vec![kind],
                    "unknown message type",
                ))
            }
        };
        Ok((msg, len))
    }

    /// Append the encoded message to `out`.
    ///
    /// On error `out` is left as it was.
    pub fn encode(&self, ctx: &DecodeCtx, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0xff; MARKER_LEN]);
        out.extend_from_slice(&[0, 0]);
        let res = match self {
            Message::Open(m) => {
                out.push(msg_type::OPEN);
                m.encode(out)
            }
            Message::Update(m) => {
                out.push(msg_type::UPDATE);
                m.encode(ctx, out)
            }
            Message::Notification(m) => {
                out.push(msg_type::NOTIFICATION);
                m.encode(out);
                Ok(())
            }
            Message::Keepalive => {
                out.push(msg_type::KEEPALIVE);
                Ok(())
            }
            Message::RouteRefresh(m) => {
                out.push(msg_type::ROUTE_REFRESH);
                out.extend_from_slice(&u16::from(m.afi).to_be_bytes());
                out.push(m.subtype);
                out.push(m.safi.into());
                Ok(())
            }
        };
        let len = out.len() - start;
        let res = res.and_then(|()| {
            if len > ctx.max_len() {
                Err(EncodeError::MessageTooLong {
                    len,
                    max: ctx.max_len(),
                })
            } else {
                Ok(())
            }
        });
        match res {
            Ok(()) => {
                // len <= 65535 was checked above.
                let l = (len as u16).to_be_bytes();
                out[start + MARKER_LEN] = l[0];
                out[start + MARKER_LEN + 1] = l[1];
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

// ===== helpers =====

/// Bounds-checked big-endian reader over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|s| s.try_into().ok())
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|a| a[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
}

/// Append `len` as a one-byte length, or fail.
pub(crate) fn len_u8(len: usize, what: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(len).map_err(|_| EncodeError::FieldTooLong { what, len })
}

/// Append `len` as a two-byte length, or fail.
pub(crate) fn len_u16(len: usize, what: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::FieldTooLong { what, len })
}

#[cfg(test)]
mod tests;
