//! OPEN message (RFC 4271 §4.2, §6.2) and capabilities (RFC 5492):
//! multiprotocol (RFC 4760 §8), route refresh (RFC 2918), enhanced route
//! refresh (RFC 7313), 4-octet AS (RFC 6793), graceful restart (RFC 4724),
//! long-lived graceful restart (RFC 9494), add-path (RFC 7911) and extended
//! messages (RFC 8654).
//!
//! ```text
//!  +-+-+-+-+-+-+-+-+
//!  |    Version    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |     My Autonomous System      |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |           Hold Time           |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                         BGP Identifier                        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  | Opt Parm Len  |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |             Optional Parameters (variable)                    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use crate::notification::OpenError;
use crate::types::{Afi, Safi};
use crate::{len_u8, DecodeError, EncodeError, Reader};

/// RFC 6793 §9: AS_TRANS, put in "My Autonomous System" by a 4-octet speaker
/// whose AS does not fit in 2 octets.
pub const AS_TRANS: u16 = 23456;

const PARAM_CAPABILITIES: u8 = 2;

mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GR: u8 = 71;
}

/// RFC 9494 §3: the Long-lived Stale Time is 24 bits.
pub const MAX_LLGR_STALE_TIME: u32 = 0x00ff_ffff;

/// Per-family long-lived graceful-restart entry (RFC 9494 §3).
///
/// ```text
///  +--------------------------------------------------+
///  | Address Family Identifier (16 bits)              |
///  +--------------------------------------------------+
///  | Subsequent Address Family Identifier (8 bits)    |
///  +--------------------------------------------------+
///  | Flags for Address Family (8 bits)                |
///  +--------------------------------------------------+
///  | Long-lived Stale Time (24 bits)                  |
///  +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlgrFamily {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
    /// "Flags for Address Family"; bit 0x80 is Forwarding State (F).
    pub flags: u8,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

impl LlgrFamily {
    /// Whether forwarding state was preserved (F bit).
    pub fn forwarding_preserved(&self) -> bool {
        self.flags & 0x80 != 0
    }
}

/// Per-family graceful-restart entry (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrFamily {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
    /// "Flags for Address Family"; bit 0x80 is Forwarding State (F).
    pub flags: u8,
}

impl GrFamily {
    /// Whether forwarding state was preserved (F bit).
    pub fn forwarding_preserved(&self) -> bool {
        self.flags & 0x80 != 0
    }
}

/// Per-family add-path entry (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPathFamily {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
    /// 1 = receive, 2 = send, 3 = both.
    pub send_receive: u8,
}

/// A capability advertised in OPEN (RFC 5492 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions (code 1, RFC 4760 §8).
    Multiprotocol {
        /// Address family.
        afi: Afi,
        /// Subsequent address family.
        safi: Safi,
    },
    /// Route refresh (code 2, RFC 2918).
    RouteRefresh,
    /// Extended messages (code 6, RFC 8654).
    ExtendedMessage,
    /// Graceful restart (code 64, RFC 4724 §3).
    GracefulRestart {
        /// Restart flags, the top 4 bits of the first octet (R = 0x8,
        /// N = 0x4 per RFC 8538), kept as a nibble.
        flags: u8,
        /// Restart time in seconds (12 bits).
        restart_time: u16,
        /// Families whose state is preserved.
        families: Vec<GrFamily>,
    },
    /// Support for 4-octet AS numbers (code 65, RFC 6793 §3).
    FourOctetAs(u32),
    /// ADD-PATH (code 69, RFC 7911).
    AddPath(Vec<AddPathFamily>),
    /// Enhanced route refresh (code 70, RFC 7313).
    EnhancedRouteRefresh,
    /// Long-lived graceful restart (code 71, RFC 9494 §3): one entry per
    /// family, each with its own long-lived stale time.
    LongLivedGracefulRestart(Vec<LlgrFamily>),
    /// Any other capability, kept verbatim.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        data: Vec<u8>,
    },
}

/// An OPEN message (RFC 4271 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Protocol version; decoding rejects anything but 4.
    pub version: u8,
    /// "My Autonomous System" (AS_TRANS for large 4-octet ASes).
    pub my_as: u16,
    /// Proposed hold time in seconds (0 or >= 3).
    pub hold_time: u16,
    /// BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in order, from all Capabilities optional parameters.
    pub capabilities: Vec<Capability>,
}

// ===== impl Open =====

impl Open {
    /// An OPEN for `asn` (4-octet aware): `my_as` is AS_TRANS when `asn`
    /// does not fit 2 octets, and a FourOctetAs capability is appended.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, mut caps: Vec<Capability>) -> Self {
        caps.push(Capability::FourOctetAs(asn));
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities: caps,
        }
    }

    /// The peer's real AS: the 4-octet AS capability if present, else
    /// `my_as` (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Open, DecodeError> {
        let mut r = Reader::new(body);
        let short = || DecodeError::open(OpenError::Unspecific, "OPEN truncated");
        let version = r.u8().ok_or_else(short)?;
        // RFC 4271 - Section 6.2:
        // "If the version number in the Version field of the received OPEN
        // message is not supported, then the Error Subcode MUST be set to
        // Unsupported Version Number. The Data field is a 2-octet unsigned
        // integer, which indicates the largest, locally-supported version
        // number less than the version the remote BGP peer bid"
        if version != 4 {
            return Err(DecodeError::Open {
                subcode: OpenError::UnsupportedVersion,
                data: vec![0, 4],
                reason: "BGP version is not 4",
            });
        }
        let my_as = r.u16().ok_or_else(short)?;
        let hold_time = r.u16().ok_or_else(short)?;
        // "If the Hold Time field of the OPEN message is unacceptable, then
        // the Error Subcode MUST be set to Unacceptable Hold Time. An
        // implementation MUST reject Hold Time values of one or two seconds."
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::open(
                OpenError::UnacceptableHoldTime,
                "hold time 1 or 2",
            ));
        }
        let bgp_id = Ipv4Addr::from(r.u32().ok_or_else(short)?);
        // "If the BGP Identifier field of the OPEN message is syntactically
        // incorrect, then the Error Subcode MUST be set to Bad BGP Identifier."
        // (RFC 6286 §2.1: a non-zero 4-octet value.)
        if bgp_id.is_unspecified() {
            return Err(DecodeError::open(
                OpenError::BadBgpId,
                "BGP identifier is 0",
            ));
        }
        let opt_len = usize::from(r.u8().ok_or_else(short)?);
        if opt_len != r.remaining() {
            return Err(DecodeError::open(
                OpenError::Unspecific,
                "bad optional params length",
            ));
        }
        let mut capabilities = Vec::new();
        let mut p = Reader::new(r.rest());
        while !p.is_empty() {
            let kind = p.u8().ok_or_else(short)?;
            let len = usize::from(p.u8().ok_or_else(short)?);
            let value = p.take(len).ok_or_else(short)?;
            // "If one of the Optional Parameters in the OPEN message is not
            // recognized, then the Error Subcode MUST be set to Unsupported
            // Optional Parameters."
            if kind != PARAM_CAPABILITIES {
                return Err(DecodeError::open(
                    OpenError::UnsupportedOptionalParameter,
                    "unknown optional parameter",
                ));
            }
            let mut c = Reader::new(value);
            while !c.is_empty() {
                let code = c.u8().ok_or_else(short)?;
                let len = usize::from(c.u8().ok_or_else(short)?);
                let data = c.take(len).ok_or_else(short)?;
                capabilities.push(Capability::decode(code, data)?);
            }
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        // All capabilities go in one Capabilities parameter, split into
        // several parameters only when one would exceed 255 octets.
        let mut params: Vec<Vec<u8>> = Vec::new();
        for cap in &self.capabilities {
            let mut c = Vec::new();
            cap.encode(&mut c)?;
            match params.last_mut() {
                Some(p) if p.len() + c.len() <= 255 => p.extend_from_slice(&c),
                _ => params.push(c),
            }
        }
        let mut opt = Vec::new();
        for p in params {
            opt.push(PARAM_CAPABILITIES);
            opt.push(len_u8(p.len(), "capabilities parameter")?);
            opt.extend_from_slice(&p);
        }
        out.push(len_u8(opt.len(), "optional parameters")?);
        out.extend_from_slice(&opt);
        Ok(())
    }
}

// ===== impl Capability =====

impl Capability {
    fn decode(code: u8, data: &[u8]) -> Result<Capability, DecodeError> {
        let bad = || DecodeError::open(OpenError::Unspecific, "malformed capability");
        let mut r = Reader::new(data);
        let cap = match code {
            cap_code::MULTIPROTOCOL => {
                let afi = r.u16().ok_or_else(bad)?;
                let _reserved = r.u8().ok_or_else(bad)?;
                let safi = r.u8().ok_or_else(bad)?;
                Capability::Multiprotocol {
                    afi: afi.into(),
                    safi: safi.into(),
                }
            }
            cap_code::ROUTE_REFRESH => Capability::RouteRefresh,
            cap_code::EXTENDED_MESSAGE => Capability::ExtendedMessage,
            cap_code::ENHANCED_ROUTE_REFRESH => Capability::EnhancedRouteRefresh,
            cap_code::FOUR_OCTET_AS => Capability::FourOctetAs(r.u32().ok_or_else(bad)?),
            cap_code::GRACEFUL_RESTART => {
                let v = r.u16().ok_or_else(bad)?;
                let mut families = Vec::new();
                while !r.is_empty() {
                    let afi = r.u16().ok_or_else(bad)?;
                    let safi = r.u8().ok_or_else(bad)?;
                    let flags = r.u8().ok_or_else(bad)?;
                    families.push(GrFamily {
                        afi: afi.into(),
                        safi: safi.into(),
                        flags,
                    });
                }
                Capability::GracefulRestart {
                    flags: (v >> 12) as u8,
                    restart_time: v & 0x0fff,
                    families,
                }
            }
            cap_code::ADD_PATH => {
                let mut fams = Vec::new();
                while !r.is_empty() {
                    let afi = r.u16().ok_or_else(bad)?;
                    let safi = r.u8().ok_or_else(bad)?;
                    let send_receive = r.u8().ok_or_else(bad)?;
                    fams.push(AddPathFamily {
                        afi: afi.into(),
                        safi: safi.into(),
                        send_receive,
                    });
                }
                Capability::AddPath(fams)
            }
            cap_code::LONG_LIVED_GR => {
                // RFC 9494 - Section 3: the capability value is a sequence of
                // 7-octet <AFI, SAFI, Flags, Long-lived Stale Time> tuples; a
                // truncated tuple is a malformed capability.
                let mut fams = Vec::new();
                while !r.is_empty() {
                    let afi = r.u16().ok_or_else(bad)?;
                    let safi = r.u8().ok_or_else(bad)?;
                    let flags = r.u8().ok_or_else(bad)?;
                    let hi = r.u8().ok_or_else(bad)?;
                    let lo = r.u16().ok_or_else(bad)?;
                    fams.push(LlgrFamily {
                        afi: afi.into(),
                        safi: safi.into(),
                        flags,
                        stale_time: (u32::from(hi) << 16) | u32::from(lo),
                    });
                }
                Capability::LongLivedGracefulRestart(fams)
            }
            _ => {
                return Ok(Capability::Unknown {
                    code,
                    data: data.to_vec(),
                })
            }
        };
        if !r.is_empty() {
            return Err(bad());
        }
        Ok(cap)
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut v = Vec::new();
        let code = match self {
            Capability::Multiprotocol { afi, safi } => {
                v.extend_from_slice(&u16::from(*afi).to_be_bytes());
                v.push(0);
                v.push((*safi).into());
                cap_code::MULTIPROTOCOL
            }
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::ExtendedMessage => cap_code::EXTENDED_MESSAGE,
            Capability::EnhancedRouteRefresh => cap_code::ENHANCED_ROUTE_REFRESH,
            Capability::FourOctetAs(a) => {
                v.extend_from_slice(&a.to_be_bytes());
                cap_code::FOUR_OCTET_AS
            }
            Capability::GracefulRestart {
                flags,
                restart_time,
                families,
            } => {
                if *flags > 0x0f || *restart_time > 0x0fff {
                    return Err(EncodeError::Invalid {
                        what: "graceful restart flags/time",
                    });
                }
                let w = (u16::from(*flags) << 12) | restart_time;
                v.extend_from_slice(&w.to_be_bytes());
                for f in families {
                    v.extend_from_slice(&u16::from(f.afi).to_be_bytes());
                    v.push(f.safi.into());
                    v.push(f.flags);
                }
                cap_code::GRACEFUL_RESTART
            }
            Capability::AddPath(fams) => {
                for f in fams {
                    v.extend_from_slice(&u16::from(f.afi).to_be_bytes());
                    v.push(f.safi.into());
                    v.push(f.send_receive);
                }
                cap_code::ADD_PATH
            }
            Capability::LongLivedGracefulRestart(fams) => {
                for f in fams {
                    if f.stale_time > MAX_LLGR_STALE_TIME {
                        return Err(EncodeError::Invalid {
                            what: "long-lived stale time",
                        });
                    }
                    v.extend_from_slice(&u16::from(f.afi).to_be_bytes());
                    v.push(f.safi.into());
                    v.push(f.flags);
                    v.extend_from_slice(&f.stale_time.to_be_bytes()[1..]);
                }
                cap_code::LONG_LIVED_GR
            }
            Capability::Unknown { code, data } => {
                v.extend_from_slice(data);
                *code
            }
        };
        out.push(code);
        out.push(len_u8(v.len(), "capability")?);
        out.extend_from_slice(&v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeCtx, Message};

    // An OPEN from AS 4200000000 (so my_as = AS_TRANS), hold time 90,
    // id 10.0.0.1, with one Capabilities parameter holding: MP inet-vpn,
    // MP e-vpn, route refresh, enhanced route refresh, 4-octet AS, graceful
    // restart (R bit, 120 s, inet-vpn with F bit), and an unknown code 73.
    static OPEN_BYTES: [u8; 73] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // marker
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // marker
        0x00, 0x49, // length 73
        0x01, // type OPEN
        0x04, // version
        0x5b, 0xa0, // my AS 23456 (AS_TRANS)
        0x00, 0x5a, // hold time 90
        0x0a, 0x00, 0x00, 0x01, // BGP id 10.0.0.1
        0x2c, // opt param len 44
        0x02, 0x2a, // param type 2 (capabilities), len 42
        0x01, 0x04, 0x00, 0x01, 0x00, 0x80, // MP: AFI 1, SAFI 128
        0x01, 0x04, 0x00, 0x19, 0x00, 0x46, // MP: AFI 25, SAFI 70
        0x02, 0x00, // route refresh
        0x46, 0x00, // enhanced route refresh
        0x41, 0x04, 0xfa, 0x56, 0xea, 0x00, // 4-octet AS 4200000000
        0x40, 0x06, 0x80, 0x78, // GR: R flag, restart time 120
        0x00, 0x01, 0x80, 0x80, // GR family AFI 1 SAFI 128, F bit
        0x49, 0x04, b'h', b'o', b's', b't', // unknown capability 73
        0x45, 0x04, 0x00, 0x01, 0x01, 0x03, // add-path inet unicast send+recv
    ];

    fn open_value() -> Open {
        Open {
            version: 4,
            my_as: AS_TRANS,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(10, 0, 0, 1),
            capabilities: vec![
                Capability::Multiprotocol {
                    afi: Afi::Ipv4,
                    safi: Safi::MplsVpn,
                },
                Capability::Multiprotocol {
                    afi: Afi::L2vpn,
                    safi: Safi::Evpn,
                },
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::FourOctetAs(4_200_000_000),
                Capability::GracefulRestart {
                    flags: 0x8,
                    restart_time: 120,
                    families: vec![GrFamily {
                        afi: Afi::Ipv4,
                        safi: Safi::MplsVpn,
                        flags: 0x80,
                    }],
                },
                Capability::Unknown {
                    code: 73,
                    data: b"host".to_vec(),
                },
                Capability::AddPath(vec![AddPathFamily {
                    afi: Afi::Ipv4,
                    safi: Safi::Unicast,
                    send_receive: 3,
                }]),
            ],
        }
    }

    #[test]
    fn open_round_trip() {
        let ctx = DecodeCtx::default();
        let (msg, used) = Message::decode(&OPEN_BYTES, &ctx).unwrap();
        assert_eq!(used, OPEN_BYTES.len());
        let open = open_value();
        assert_eq!(msg, Message::Open(open.clone()));
        assert_eq!(open.asn(), 4_200_000_000);
        let mut out = Vec::new();
        msg.encode(&ctx, &mut out).unwrap();
        assert_eq!(out, OPEN_BYTES);
    }

    #[test]
    fn open_new_uses_as_trans() {
        let o = Open::new(4_200_000_000, 90, Ipv4Addr::new(1, 1, 1, 1), vec![]);
        assert_eq!(o.my_as, AS_TRANS);
        let o = Open::new(64512, 90, Ipv4Addr::new(1, 1, 1, 1), vec![]);
        assert_eq!((o.my_as, o.asn()), (64512, 64512));
    }

    // RFC 9494 §3: capability 71 with two tuples, inet-vpn (F bit, 86400 s)
    // and e-vpn (no F bit, the largest 24-bit time).
    static LLGR_CAP: [u8; 16] = [
        0x47, 0x0e, // code 71, length 14
        0x00, 0x01, 0x80, 0x80, 0x01, 0x51, 0x80, // AFI 1 SAFI 128, F, 86400
        0x00, 0x19, 0x46, 0x00, 0xff, 0xff, 0xff, // AFI 25 SAFI 70, 16777215
    ];

    fn llgr_value() -> Capability {
        Capability::LongLivedGracefulRestart(vec![
            LlgrFamily {
                afi: Afi::Ipv4,
                safi: Safi::MplsVpn,
                flags: 0x80,
                stale_time: 86_400,
            },
            LlgrFamily {
                afi: Afi::L2vpn,
                safi: Safi::Evpn,
                flags: 0,
                stale_time: MAX_LLGR_STALE_TIME,
            },
        ])
    }

    #[test]
    fn llgr_capability_round_trip() {
        let cap = Capability::decode(LLGR_CAP[0], &LLGR_CAP[2..]).unwrap();
        assert_eq!(cap, llgr_value());
        let Capability::LongLivedGracefulRestart(f) = &cap else {
            unreachable!()
        };
        assert!(f[0].forwarding_preserved() && !f[1].forwarding_preserved());
        let mut out = Vec::new();
        cap.encode(&mut out).unwrap();
        assert_eq!(out, LLGR_CAP);
        // inside a whole OPEN
        let o = Open::new(65001, 90, Ipv4Addr::new(10, 0, 0, 1), vec![llgr_value()]);
        let ctx = DecodeCtx::default();
        let mut bytes = Vec::new();
        Message::Open(o.clone()).encode(&ctx, &mut bytes).unwrap();
        assert_eq!(Message::decode(&bytes, &ctx).unwrap().0, Message::Open(o));
    }

    #[test]
    fn llgr_capability_errors() {
        // a truncated tuple (6 of 7 octets) is malformed
        let e = Capability::decode(71, &LLGR_CAP[2..8]).unwrap_err();
        assert!(matches!(e, DecodeError::Open { .. }), "{e:?}");
        // an empty capability lists no families
        assert_eq!(
            Capability::decode(71, &[]).unwrap(),
            Capability::LongLivedGracefulRestart(vec![])
        );
        // a stale time above 24 bits cannot be encoded
        let big = Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
            flags: 0,
            stale_time: MAX_LLGR_STALE_TIME + 1,
        }]);
        assert!(big.encode(&mut Vec::new()).is_err());
    }

    fn decode_err(patch: impl FnOnce(&mut Vec<u8>)) -> DecodeError {
        let mut b = OPEN_BYTES.to_vec();
        patch(&mut b);
        Message::decode(&b, &DecodeCtx::default()).unwrap_err()
    }

    #[test]
    fn open_errors() {
        let e = decode_err(|b| b[19] = 3);
        assert!(matches!(
            e,
            DecodeError::Open {
                subcode: OpenError::UnsupportedVersion,
                ..
            }
        ));
        assert_eq!(e.notification().unwrap().data, vec![0, 4]);
        let e = decode_err(|b| b[23] = 2);
        assert!(matches!(
            e,
            DecodeError::Open {
                subcode: OpenError::UnacceptableHoldTime,
                ..
            }
        ));
        let e = decode_err(|b| b[24..28].copy_from_slice(&[0; 4]));
        assert!(matches!(
            e,
            DecodeError::Open {
                subcode: OpenError::BadBgpId,
                ..
            }
        ));
        let e = decode_err(|b| b[29] = 9);
        assert!(matches!(
            e,
            DecodeError::Open {
                subcode: OpenError::UnsupportedOptionalParameter,
                ..
            }
        ));
        // capability length running past the parameter
        let e = decode_err(|b| b[31 + 1] = 40);
        assert!(matches!(
            e,
            DecodeError::Open {
                subcode: OpenError::Unspecific,
                ..
            }
        ));
        // opt param length disagreeing with the message length
        let e = decode_err(|b| b[28] = 45);
        assert!(matches!(e, DecodeError::Open { .. }));
    }
}
