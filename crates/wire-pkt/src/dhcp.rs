//! DHCPv4 messages: the BOOTP frame of RFC 2131 §2 with the options of RFC 2132
//! (1 subnet mask, 3 router, 6 DNS servers, 12 host name, 15 domain name, 26 interface MTU,
//! 50 requested address, 51 lease time, 53 message type, 54 server identifier, 55 parameter
//! request list, 58/59 renewal/rebinding, 61 client identifier) and RFC 3442 classless static
//! routes (option 121). Sans-IO: `DhcpRepr::parse` takes the UDP payload, `DhcpRepr::emit`
//! returns one. Unknown options are kept as `DhcpOption::Other` (smoltcp's "keep unknown").
//!
//! ```text
//!  0      1      2      3
//!  op     htype  hlen   hops
//!  xid (4)  secs (2) flags (2)  ciaddr yiaddr siaddr giaddr (4 each)
//!  chaddr (16)  sname (64)  file (128)  magic cookie 99.130.83.99  options ...
//! ```

use std::fmt;
use std::net::Ipv4Addr;

/// UDP port of DHCP servers (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// UDP port of DHCP clients (RFC 2131 §4.1).
pub const CLIENT_PORT: u16 = 68;
/// BOOTREQUEST (`op` = 1).
pub const OP_REQUEST: u8 = 1;
/// BOOTREPLY (`op` = 2).
pub const OP_REPLY: u8 = 2;
/// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
pub const FLAG_BROADCAST: u16 = 0x8000;

/// RFC 2131 §3: "the first four octets of the 'options' field of the DHCP message contain the
/// (decimal) values 99, 130, 83 and 99".
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Fixed header before the magic cookie (op .. file).
const FIXED_LEN: usize = 236;
/// RFC 1542 §3.2: a BOOTP message "MUST be at least 300 octets" on the wire for old relays and
/// clients; replies are padded to it.
const MIN_EMIT_LEN: usize = 300;

/// Why a DHCP message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhcpError {
    /// Shorter than the fixed header plus the magic cookie.
    Truncated {
        /// bytes needed
        need: usize,
        /// bytes present
        have: usize,
    },
    /// The four octets after the fixed header are not 99.130.83.99.
    BadMagic,
    /// An option's length runs past the end, or is wrong for its code.
    BadOption {
        /// option code
        code: u8,
        /// the length octet
        len: usize,
    },
    /// `op` is neither BOOTREQUEST nor BOOTREPLY.
    BadOp(u8),
    /// `hlen` larger than the 16-octet chaddr field.
    BadHlen(u8),
}

impl fmt::Display for DhcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => write!(f, "dhcp: truncated ({have} of {need} bytes)"),
            Self::BadMagic => write!(f, "dhcp: bad magic cookie"),
            Self::BadOption { code, len } => write!(f, "dhcp: bad option {code} (length {len})"),
            Self::BadOp(op) => write!(f, "dhcp: bad op {op}"),
            Self::BadHlen(h) => write!(f, "dhcp: hardware address length {h} > 16"),
        }
    }
}

impl std::error::Error for DhcpError {}

/// Option 53 values (RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1
    Discover,
    /// 2
    Offer,
    /// 3
    Request,
    /// 4
    Decline,
    /// 5
    Ack,
    /// 6
    Nak,
    /// 7
    Release,
    /// 8
    Inform,
    /// any other value, kept
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            x => Self::Unknown(x),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(v: MessageType) -> u8 {
        match v {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(x) => x,
        }
    }
}

/// One RFC 3442 classless static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClasslessRoute {
    /// destination network (host bits zero)
    pub dest: Ipv4Addr,
    /// prefix length 0..=32
    pub plen: u8,
    /// router
    pub gateway: Ipv4Addr,
}

/// A decoded option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    /// 1
    SubnetMask(Ipv4Addr),
    /// 3
    Router(Vec<Ipv4Addr>),
    /// 6
    DnsServers(Vec<Ipv4Addr>),
    /// 12
    HostName(Vec<u8>),
    /// 15
    DomainName(Vec<u8>),
    /// 26
    InterfaceMtu(u16),
    /// 50
    RequestedIp(Ipv4Addr),
    /// 51
    LeaseTime(u32),
    /// 53
    MessageType(MessageType),
    /// 54
    ServerId(Ipv4Addr),
    /// 55
    ParameterRequestList(Vec<u8>),
    /// 58
    RenewalTime(u32),
    /// 59
    RebindingTime(u32),
    /// 61
    ClientId(Vec<u8>),
    /// 121
    ClasslessRoutes(Vec<ClasslessRoute>),
    /// anything else (code, data), kept as is
    Other(u8, Vec<u8>),
}

/// A DHCP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRepr {
    /// 1 request, 2 reply
    pub op: u8,
    /// hardware type (1 = Ethernet)
    pub htype: u8,
    /// hardware address length
    pub hlen: u8,
    /// relay hops
    pub hops: u8,
    /// transaction id
    pub xid: u32,
    /// seconds since the client began
    pub secs: u16,
    /// flags (broadcast bit)
    pub flags: u16,
    /// client address (when it already has one)
    pub ciaddr: Ipv4Addr,
    /// "your" address
    pub yiaddr: Ipv4Addr,
    /// next server
    pub siaddr: Ipv4Addr,
    /// relay agent
    pub giaddr: Ipv4Addr,
    /// client hardware address (first `hlen` octets meaningful)
    pub chaddr: [u8; 16],
    /// options in wire order (pad/end not kept)
    pub options: Vec<DhcpOption>,
}

fn ip4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn ip_list(code: u8, d: &[u8]) -> Result<Vec<Ipv4Addr>, DhcpError> {
    if d.is_empty() || !d.len().is_multiple_of(4) {
        return Err(DhcpError::BadOption { code, len: d.len() });
    }
    Ok(d.chunks_exact(4).map(ip4).collect())
}

fn fixed<const N: usize>(code: u8, d: &[u8]) -> Result<[u8; N], DhcpError> {
    d.try_into()
        .map_err(|_| DhcpError::BadOption { code, len: d.len() })
}

/// RFC 3442 §2: "the destination descriptor describes the IP subnet number and subnet mask
/// ... the width of the subnet mask, followed by the significant octets of the subnet number".
fn parse_classless(code: u8, mut d: &[u8]) -> Result<Vec<ClasslessRoute>, DhcpError> {
    let bad = DhcpError::BadOption { code, len: d.len() };
    let mut out = Vec::new();
    while let Some((&plen, rest)) = d.split_first() {
        if plen > 32 {
            return Err(bad);
        }
        let sig = usize::from(plen).div_ceil(8);
        if rest.len() < sig + 4 {
            return Err(bad);
        }
        let mut dest = [0u8; 4];
        dest[..sig].copy_from_slice(&rest[..sig]);
        out.push(ClasslessRoute {
            dest: Ipv4Addr::from(dest),
            plen,
            gateway: ip4(&rest[sig..sig + 4]),
        });
        d = &rest[sig + 4..];
    }
    Ok(out)
}

impl DhcpOption {
    fn decode(code: u8, d: &[u8]) -> Result<Self, DhcpError> {
        let bad = || DhcpError::BadOption { code, len: d.len() };
        Ok(match code {
            1 => Self::SubnetMask(Ipv4Addr::from(fixed::<4>(code, d)?)),
            3 => Self::Router(ip_list(code, d)?),
            6 => Self::DnsServers(ip_list(code, d)?),
            12 => Self::HostName(d.to_vec()),
            15 => Self::DomainName(d.to_vec()),
            26 => Self::InterfaceMtu(u16::from_be_bytes(fixed::<2>(code, d)?)),
            50 => Self::RequestedIp(Ipv4Addr::from(fixed::<4>(code, d)?)),
            51 => Self::LeaseTime(u32::from_be_bytes(fixed::<4>(code, d)?)),
            53 => match d {
                [t] => Self::MessageType(MessageType::from(*t)),
                _ => return Err(bad()),
            },
            54 => Self::ServerId(Ipv4Addr::from(fixed::<4>(code, d)?)),
            55 => Self::ParameterRequestList(d.to_vec()),
            58 => Self::RenewalTime(u32::from_be_bytes(fixed::<4>(code, d)?)),
            59 => Self::RebindingTime(u32::from_be_bytes(fixed::<4>(code, d)?)),
            61 => Self::ClientId(d.to_vec()),
            121 => Self::ClasslessRoutes(parse_classless(code, d)?),
            _ => Self::Other(code, d.to_vec()),
        })
    }

    /// Code and encoded data.
    fn encode(&self) -> (u8, Vec<u8>) {
        let ips = |v: &[Ipv4Addr]| v.iter().flat_map(|a| a.octets()).collect::<Vec<u8>>();
        match self {
            Self::SubnetMask(a) => (1, a.octets().to_vec()),
            Self::Router(v) => (3, ips(v)),
            Self::DnsServers(v) => (6, ips(v)),
            Self::HostName(v) => (12, v.clone()),
            Self::DomainName(v) => (15, v.clone()),
            Self::InterfaceMtu(m) => (26, m.to_be_bytes().to_vec()),
            Self::RequestedIp(a) => (50, a.octets().to_vec()),
            Self::LeaseTime(t) => (51, t.to_be_bytes().to_vec()),
            Self::MessageType(t) => (53, vec![u8::from(*t)]),
            Self::ServerId(a) => (54, a.octets().to_vec()),
            Self::ParameterRequestList(v) => (55, v.clone()),
            Self::RenewalTime(t) => (58, t.to_be_bytes().to_vec()),
            Self::RebindingTime(t) => (59, t.to_be_bytes().to_vec()),
            Self::ClientId(v) => (61, v.clone()),
            Self::ClasslessRoutes(rs) => {
                let mut d = Vec::new();
                for r in rs {
                    let plen = r.plen.min(32);
                    let sig = usize::from(plen).div_ceil(8);
                    d.push(plen);
                    d.extend_from_slice(&r.dest.octets()[..sig]);
                    d.extend_from_slice(&r.gateway.octets());
                }
                (121, d)
            }
            Self::Other(c, v) => (*c, v.clone()),
        }
    }
}

impl DhcpRepr {
    /// Decode a UDP payload. Pad (0) options are skipped, End (255) stops; an option running
    /// past the buffer is an error (RFC 2131 §4.1: malformed messages are silently discarded by
    /// the caller).
    pub fn parse(b: &[u8]) -> Result<Self, DhcpError> {
        let need = FIXED_LEN + MAGIC.len();
        if b.len() < need {
            return Err(DhcpError::Truncated {
                need,
                have: b.len(),
            });
        }
        if b[FIXED_LEN..need] != MAGIC {
            return Err(DhcpError::BadMagic);
        }
        let op = b[0];
        if op != OP_REQUEST && op != OP_REPLY {
            return Err(DhcpError::BadOp(op));
        }
        if b[2] > 16 {
            return Err(DhcpError::BadHlen(b[2]));
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(&b[28..44]);
        let mut options = Vec::new();
        let mut rest = &b[need..];
        while let Some((&code, after)) = rest.split_first() {
            match code {
                0 => rest = after,
                255 => break,
                _ => {
                    let Some((&len, data)) = after.split_first() else {
                        return Err(DhcpError::BadOption { code, len: 0 });
                    };
                    let len = usize::from(len);
                    if data.len() < len {
                        return Err(DhcpError::BadOption { code, len });
                    }
                    options.push(DhcpOption::decode(code, &data[..len])?);
                    rest = &data[len..];
                }
            }
        }
        Ok(Self {
            op,
            htype: b[1],
            hlen: b[2],
            hops: b[3],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip4(&b[12..16]),
            yiaddr: ip4(&b[16..20]),
            siaddr: ip4(&b[20..24]),
            giaddr: ip4(&b[24..28]),
            chaddr,
            options,
        })
    }

    /// Encode as a UDP payload, ending with the End option and padded to 300 octets.
    /// Options longer than 255 octets are split into consecutive instances of the same
    /// code (RFC 3396 §6 "concatenation").
    pub fn emit(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(MIN_EMIT_LEN);
        b.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        b.extend_from_slice(&self.xid.to_be_bytes());
        b.extend_from_slice(&self.secs.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        for a in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            b.extend_from_slice(&a.octets());
        }
        b.extend_from_slice(&self.chaddr);
        b.resize(FIXED_LEN, 0); // sname + file
        b.extend_from_slice(&MAGIC);
        for o in &self.options {
            let (code, data) = o.encode();
            if data.is_empty() {
                b.extend_from_slice(&[code, 0]);
            }
            for chunk in data.chunks(255) {
                b.push(code);
                b.push(chunk.len() as u8); // chunks(255): fits
                b.extend_from_slice(chunk);
            }
        }
        b.push(255);
        if b.len() < MIN_EMIT_LEN {
            b.resize(MIN_EMIT_LEN, 0);
        }
        b
    }

    /// The client's Ethernet address (first 6 octets of chaddr).
    pub fn client_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.chaddr[..6]);
        m
    }

    /// Option 53, if present.
    pub fn message_type(&self) -> Option<MessageType> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::MessageType(t) => Some(*t),
            _ => None,
        })
    }

    /// Option 50, if present.
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::RequestedIp(a) => Some(*a),
            _ => None,
        })
    }

    /// Option 54, if present.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::ServerId(a) => Some(*a),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover() -> DhcpRepr {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        DhcpRepr {
            op: OP_REQUEST,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: 0x1234_5678,
            secs: 3,
            flags: FLAG_BROADCAST,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            options: vec![
                DhcpOption::MessageType(MessageType::Discover),
                DhcpOption::ParameterRequestList(vec![1, 3, 6, 15, 26, 121]),
                DhcpOption::HostName(b"vm1".to_vec()),
            ],
        }
    }

    #[test]
    fn discover_bytes_are_rfc2131_layout() {
        let b = discover().emit();
        assert_eq!(b.len(), 300);
        assert_eq!(&b[0..4], &[1, 1, 6, 0]);
        assert_eq!(&b[4..8], &[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(&b[10..12], &[0x80, 0x00]);
        assert_eq!(&b[28..34], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&b[236..240], &[99, 130, 83, 99]);
        assert_eq!(&b[240..243], &[53, 1, 1]);
        assert_eq!(&b[243..251], &[55, 6, 1, 3, 6, 15, 26, 121]);
        assert_eq!(&b[251..256], &[12, 3, b'v', b'm', b'1']);
        assert_eq!(b[256], 255);
    }

    #[test]
    fn round_trip_every_option() {
        let mut m = discover();
        m.op = OP_REPLY;
        m.yiaddr = Ipv4Addr::new(10, 1, 1, 3);
        m.options = vec![
            DhcpOption::MessageType(MessageType::Ack),
            DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
            DhcpOption::Router(vec![Ipv4Addr::new(10, 1, 1, 1)]),
            DhcpOption::DnsServers(vec![Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(8, 8, 8, 8)]),
            DhcpOption::DomainName(b"example.org".to_vec()),
            DhcpOption::InterfaceMtu(1450),
            DhcpOption::LeaseTime(u32::MAX),
            DhcpOption::ServerId(Ipv4Addr::new(10, 1, 1, 2)),
            DhcpOption::RenewalTime(100),
            DhcpOption::RebindingTime(200),
            DhcpOption::ClientId(vec![1, 2, 0, 0, 0, 0, 1]),
            DhcpOption::RequestedIp(Ipv4Addr::new(10, 1, 1, 3)),
            DhcpOption::ClasslessRoutes(vec![
                ClasslessRoute {
                    dest: Ipv4Addr::new(0, 0, 0, 0),
                    plen: 0,
                    gateway: Ipv4Addr::new(10, 1, 1, 1),
                },
                ClasslessRoute {
                    dest: Ipv4Addr::new(192, 168, 0, 0),
                    plen: 17,
                    gateway: Ipv4Addr::new(10, 1, 1, 9),
                },
                ClasslessRoute {
                    dest: Ipv4Addr::new(172, 16, 5, 4),
                    plen: 32,
                    gateway: Ipv4Addr::new(10, 1, 1, 9),
                },
            ]),
            DhcpOption::Other(252, b"x".to_vec()),
        ];
        let b = m.emit();
        assert_eq!(DhcpRepr::parse(&b).unwrap(), m);
    }

    #[test]
    fn classless_route_encoding_matches_rfc3442_examples() {
        // RFC 3442 §2: "10.17.0.0/16 -> 16.10.17", "0/0 -> 0"
        let (_, d) = DhcpOption::ClasslessRoutes(vec![
            ClasslessRoute {
                dest: Ipv4Addr::new(10, 17, 0, 0),
                plen: 16,
                gateway: Ipv4Addr::new(1, 2, 3, 4),
            },
            ClasslessRoute {
                dest: Ipv4Addr::UNSPECIFIED,
                plen: 0,
                gateway: Ipv4Addr::new(1, 2, 3, 5),
            },
        ])
        .encode();
        assert_eq!(d, vec![16, 10, 17, 1, 2, 3, 4, 0, 1, 2, 3, 5]);
    }

    #[test]
    fn malformed_is_rejected() {
        let good = discover().emit();
        assert!(matches!(
            DhcpRepr::parse(&good[..200]),
            Err(DhcpError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad[236] = 0;
        assert_eq!(DhcpRepr::parse(&bad), Err(DhcpError::BadMagic));
        let mut bad = good.clone();
        bad[0] = 9;
        assert_eq!(DhcpRepr::parse(&bad), Err(DhcpError::BadOp(9)));
        // option 53 claiming 200 bytes with fewer left
        let mut bad = good[..243].to_vec();
        bad[241] = 200;
        assert!(matches!(
            DhcpRepr::parse(&bad),
            Err(DhcpError::BadOption { code: 53, .. })
        ));
        // subnet mask of 3 bytes
        let mut bad = good[..240].to_vec();
        bad.extend_from_slice(&[1, 3, 255, 255, 255, 255]);
        assert!(matches!(
            DhcpRepr::parse(&bad),
            Err(DhcpError::BadOption { code: 1, len: 3 })
        ));
        // classless route with plen 33
        let mut bad = good[..240].to_vec();
        bad.extend_from_slice(&[121, 5, 33, 1, 2, 3, 4]);
        assert!(matches!(
            DhcpRepr::parse(&bad),
            Err(DhcpError::BadOption { code: 121, .. })
        ));
    }

    #[test]
    fn long_option_is_split_and_pad_skipped() {
        let mut m = discover();
        m.options = vec![DhcpOption::Other(250, vec![7u8; 300])];
        let b = m.emit();
        assert_eq!(&b[240..242], &[250, 255]);
        assert_eq!(&b[497..499], &[250, 45]);
        // a pad before the End is skipped
        let mut raw = discover().emit()[..240].to_vec();
        raw.extend_from_slice(&[0, 0, 53, 1, 3, 255]);
        assert_eq!(
            DhcpRepr::parse(&raw).unwrap().message_type(),
            Some(MessageType::Request)
        );
    }
}
