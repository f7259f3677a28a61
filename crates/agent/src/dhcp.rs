//! The agent's DHCP server for its ports (sans-IO): a punted client frame in, the reply frame
//! to inject out. RFC 2131 §4.3 server behaviour, reduced to what TF's agent does
//! (tf-facts §5.7, `services/dhcp_handler.cc`): every port has exactly one address, so the
//! server never allocates — it offers the port's configured IP. Server identifier and source
//! address = the subnet's service address; router = the subnet's gateway; DNS = the service
//! address; lease infinite unless the IPAM sets option 51.

use std::net::Ipv4Addr;

use filament_wire_pkt::dhcp::{
    ClasslessRoute, DhcpOption, DhcpRepr, MessageType, CLIENT_PORT, FLAG_BROADCAST, OP_REPLY,
    OP_REQUEST, SERVER_PORT,
};

use crate::pkt::{udp_frame, Eth, Ip4, Udp, BROADCAST, ETH_IPV4, PROTO_UDP};
use crate::VRRP_MAC;

/// What the server tells one port's client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DhcpParams {
    /// the port's address
    pub ip: Ipv4Addr,
    /// its subnet's prefix length
    pub plen: u8,
    /// the subnet's default gateway (option 3), if any
    pub gateway: Option<Ipv4Addr>,
    /// the subnet's service address: server identifier (54), source address and DNS (6)
    pub service: Ipv4Addr,
    /// DNS servers; empty = the service address
    pub dns: Vec<Ipv4Addr>,
    /// option 15
    pub domain: Option<String>,
    /// option 26 (fabric MTU minus encapsulation overhead)
    pub mtu: Option<u16>,
    /// IPAM host routes (option 121)
    pub host_routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    /// option 51; None = infinite
    pub lease: Option<u32>,
}

/// Counters of the DHCP server (shown in `GET /status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DhcpStats {
    /// DISCOVERs answered with an OFFER
    pub offers: u64,
    /// REQUESTs/INFORMs answered with an ACK
    pub acks: u64,
    /// REQUESTs answered with a NAK
    pub naks: u64,
    /// RELEASE/DECLINE and requests for another server: no reply
    pub ignored: u64,
    /// frames that were not a well-formed DHCP request: dropped
    pub malformed: u64,
}

/// Why a punted frame got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhcpDrop {
    /// Ethernet/IPv4/UDP framing.
    #[error("dhcp frame: {0}")]
    Frame(#[from] crate::pkt::PktError),
    /// Not UDP to port 67.
    #[error("dhcp frame: not UDP to port 67")]
    NotDhcp,
    /// The DHCP payload.
    #[error("{0}")]
    Message(#[from] filament_wire_pkt::dhcp::DhcpError),
    /// BOOTREPLY or no option 53.
    #[error("dhcp: not a client request (op {op}, type {kind:?})")]
    NotRequest {
        /// op field
        op: u8,
        /// option 53
        kind: Option<MessageType>,
    },
}

/// Answer one punted frame from a port whose parameters are `p`. `Ok(None)`: a valid message
/// that needs no reply (RELEASE, DECLINE, a REQUEST for another server). Updates `stats`.
pub fn handle(
    p: &DhcpParams,
    frame: &[u8],
    stats: &mut DhcpStats,
) -> Result<Option<Vec<u8>>, DhcpDrop> {
    let r = decode(frame);
    let (req, ciaddr_src) = match r {
        Ok(x) => x,
        Err(e) => {
            stats.malformed += 1;
            return Err(e);
        }
    };
    let kind = req.message_type();
    let reply = match kind {
        // RFC 2131 §4.3.1: "the server responds to a DHCPDISCOVER message with a DHCPOFFER".
        Some(MessageType::Discover) => {
            stats.offers += 1;
            Some((MessageType::Offer, p.ip))
        }
        // RFC 2131 §4.3.2: a REQUEST carrying another server's identifier means the client
        // chose that server; this one stays silent.
        Some(MessageType::Request) if req.server_id().is_some_and(|s| s != p.service) => {
            stats.ignored += 1;
            None
        }
        Some(MessageType::Request) => {
            // RFC 2131 §4.3.2: "If the requested address is incorrect ... the server SHOULD
            // respond with a DHCPNAK".
            let asked = req.requested_ip().unwrap_or(req.ciaddr);
            if asked == p.ip {
                stats.acks += 1;
                Some((MessageType::Ack, p.ip))
            } else {
                stats.naks += 1;
                Some((MessageType::Nak, Ipv4Addr::UNSPECIFIED))
            }
        }
        // RFC 2131 §4.3.5: "The server responds to a DHCPINFORM message by sending a DHCPACK
        // directly to the address given in the 'ciaddr' field ... The server MUST NOT send a
        // lease expiration time to the client and SHOULD NOT fill in 'yiaddr'."
        Some(MessageType::Inform) => {
            stats.acks += 1;
            Some((MessageType::Ack, Ipv4Addr::UNSPECIFIED))
        }
        // RELEASE / DECLINE: nothing to free, the address belongs to the port.
        Some(MessageType::Release | MessageType::Decline) => {
            stats.ignored += 1;
            None
        }
        _ => {
            stats.malformed += 1;
            return Err(DhcpDrop::NotRequest { op: req.op, kind });
        }
    };
    let Some((rtype, yiaddr)) = reply else {
        return Ok(None);
    };
    let msg = build(p, &req, rtype, yiaddr);
    let payload = msg.emit();
    // RFC 2131 §4.1: a NAK or a reply with the broadcast bit goes to 0xffffffff; otherwise to
    // the client's hardware address and 'yiaddr' (or 'ciaddr' for INFORM).
    let (dst_mac, dst_ip) = if rtype == MessageType::Nak || req.flags & FLAG_BROADCAST != 0 {
        (BROADCAST, Ipv4Addr::BROADCAST)
    } else if kind == Some(MessageType::Inform) && !req.ciaddr.is_unspecified() {
        (req.client_mac(), req.ciaddr)
    } else {
        (
            req.client_mac(),
            if yiaddr.is_unspecified() {
                ciaddr_src
            } else {
                yiaddr
            },
        )
    };
    Ok(Some(udp_frame(
        dst_mac,
        VRRP_MAC,
        p.service,
        dst_ip,
        SERVER_PORT,
        CLIENT_PORT,
        &payload,
    )))
}

/// Ethernet → IPv4 → UDP:67 → DHCP request.
fn decode(frame: &[u8]) -> Result<(DhcpRepr, Ipv4Addr), DhcpDrop> {
    let eth = Eth::parse(frame)?;
    if eth.ethertype != ETH_IPV4 {
        return Err(DhcpDrop::NotDhcp);
    }
    let ip = Ip4::parse(eth.payload)?;
    if ip.proto != PROTO_UDP {
        return Err(DhcpDrop::NotDhcp);
    }
    let udp = Udp::parse(ip.payload)?;
    if udp.dport != SERVER_PORT {
        return Err(DhcpDrop::NotDhcp);
    }
    let req = DhcpRepr::parse(udp.payload)?;
    if req.op != OP_REQUEST || req.message_type().is_none() {
        return Err(DhcpDrop::NotRequest {
            op: req.op,
            kind: req.message_type(),
        });
    }
    let src = if ip.src.is_unspecified() {
        Ipv4Addr::BROADCAST
    } else {
        ip.src
    };
    Ok((req, src))
}

fn mask(plen: u8) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(plen.min(32)))
            .unwrap_or(0),
    )
}

/// The reply message with the options TF's agent sends.
fn build(p: &DhcpParams, req: &DhcpRepr, rtype: MessageType, yiaddr: Ipv4Addr) -> DhcpRepr {
    let mut o = vec![
        DhcpOption::MessageType(rtype),
        DhcpOption::ServerId(p.service),
    ];
    if rtype != MessageType::Nak {
        // RFC 2131 §4.3.5: no lease time in the ACK to an INFORM.
        if rtype != MessageType::Ack || !yiaddr.is_unspecified() {
            o.push(DhcpOption::LeaseTime(p.lease.unwrap_or(u32::MAX)));
        }
        o.push(DhcpOption::SubnetMask(mask(p.plen)));
        if let Some(gw) = p.gateway {
            o.push(DhcpOption::Router(vec![gw]));
        }
        let dns = if p.dns.is_empty() {
            vec![p.service]
        } else {
            p.dns.clone()
        };
        o.push(DhcpOption::DnsServers(dns));
        if let Some(d) = &p.domain {
            o.push(DhcpOption::DomainName(d.as_bytes().to_vec()));
        }
        if let Some(m) = p.mtu {
            o.push(DhcpOption::InterfaceMtu(m));
        }
        if !p.host_routes.is_empty() {
            // RFC 3442 §2: "If the DHCP server returns both a Classless Static Routes option
            // and a Router option, the DHCP client MUST ignore the Router option." So the
            // default route goes into option 121 too.
            let mut rs: Vec<ClasslessRoute> = p
                .host_routes
                .iter()
                .map(|&(dest, plen, gateway)| ClasslessRoute {
                    dest,
                    plen,
                    gateway,
                })
                .collect();
            if let Some(gw) = p.gateway {
                rs.push(ClasslessRoute {
                    dest: Ipv4Addr::UNSPECIFIED,
                    plen: 0,
                    gateway: gw,
                });
            }
            o.push(DhcpOption::ClasslessRoutes(rs));
        }
    }
    DhcpRepr {
        op: OP_REPLY,
        htype: req.htype,
        hlen: req.hlen,
        hops: 0,
        xid: req.xid,
        secs: 0,
        flags: req.flags,
        ciaddr: if rtype == MessageType::Ack {
            req.ciaddr
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        yiaddr,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: req.giaddr,
        chaddr: req.chaddr,
        options: o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Eth2 {
        dst: [u8; 6],
        src: [u8; 6],
    }

    fn params() -> DhcpParams {
        DhcpParams {
            ip: Ipv4Addr::new(10, 1, 1, 3),
            plen: 24,
            gateway: Some(Ipv4Addr::new(10, 1, 1, 254)),
            service: Ipv4Addr::new(10, 1, 1, 253),
            dns: vec![],
            domain: Some("vn1.local".into()),
            mtu: Some(1450),
            host_routes: vec![],
            lease: None,
        }
    }

    fn client(kind: MessageType, extra: Vec<DhcpOption>, flags: u16) -> Vec<u8> {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        let mut options = vec![DhcpOption::MessageType(kind)];
        options.extend(extra);
        let m = DhcpRepr {
            op: OP_REQUEST,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: 42,
            secs: 0,
            flags,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            options,
        };
        udp_frame(
            BROADCAST,
            [2, 0, 0, 0, 0, 7],
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            67,
            &m.emit(),
        )
    }

    fn reply(f: &[u8]) -> (Eth2, Ipv4Addr, DhcpRepr) {
        let e = Eth::parse(f).unwrap();
        let ip = Ip4::parse(e.payload).unwrap();
        let u = Udp::parse(ip.payload).unwrap();
        assert_eq!((u.sport, u.dport), (67, 68));
        assert_eq!(ip.src, Ipv4Addr::new(10, 1, 1, 253));
        (
            Eth2 {
                dst: e.dst,
                src: e.src,
            },
            ip.dst,
            DhcpRepr::parse(u.payload).unwrap(),
        )
    }

    #[test]
    fn discover_gets_offer_with_port_address_and_subnet_options() {
        let mut s = DhcpStats::default();
        let f = handle(&params(), &client(MessageType::Discover, vec![], 0), &mut s)
            .unwrap()
            .unwrap();
        let (e, dst, m) = reply(&f);
        assert_eq!(e.dst, [2, 0, 0, 0, 0, 7]);
        assert_eq!(e.src, VRRP_MAC);
        assert_eq!(dst, Ipv4Addr::new(10, 1, 1, 3));
        assert_eq!(m.xid, 42);
        assert_eq!(m.yiaddr, Ipv4Addr::new(10, 1, 1, 3));
        assert_eq!(m.message_type(), Some(MessageType::Offer));
        assert_eq!(m.server_id(), Some(Ipv4Addr::new(10, 1, 1, 253)));
        assert!(m
            .options
            .contains(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0))));
        assert!(m
            .options
            .contains(&DhcpOption::Router(vec![Ipv4Addr::new(10, 1, 1, 254)])));
        assert!(m
            .options
            .contains(&DhcpOption::DnsServers(vec![Ipv4Addr::new(10, 1, 1, 253)])));
        assert!(m
            .options
            .contains(&DhcpOption::DomainName(b"vn1.local".to_vec())));
        assert!(m.options.contains(&DhcpOption::InterfaceMtu(1450)));
        assert!(m.options.contains(&DhcpOption::LeaseTime(u32::MAX)));
        assert_eq!(s.offers, 1);
    }

    #[test]
    fn request_right_address_acks_wrong_naks_other_server_ignored() {
        let p = params();
        let mut s = DhcpStats::default();
        let ok = client(
            MessageType::Request,
            vec![
                DhcpOption::RequestedIp(p.ip),
                DhcpOption::ServerId(p.service),
            ],
            FLAG_BROADCAST,
        );
        let (e, dst, m) = reply(&handle(&p, &ok, &mut s).unwrap().unwrap());
        assert_eq!((e.dst, dst), (BROADCAST, Ipv4Addr::BROADCAST));
        assert_eq!(m.message_type(), Some(MessageType::Ack));
        assert_eq!(m.yiaddr, p.ip);
        let wrong = client(
            MessageType::Request,
            vec![DhcpOption::RequestedIp(Ipv4Addr::new(10, 1, 1, 9))],
            0,
        );
        let (_, _, m) = reply(&handle(&p, &wrong, &mut s).unwrap().unwrap());
        assert_eq!(m.message_type(), Some(MessageType::Nak));
        let other = client(
            MessageType::Request,
            vec![DhcpOption::ServerId(Ipv4Addr::new(9, 9, 9, 9))],
            0,
        );
        assert_eq!(handle(&p, &other, &mut s), Ok(None));
        let rel = client(MessageType::Release, vec![], 0);
        assert_eq!(handle(&p, &rel, &mut s), Ok(None));
        assert_eq!(
            s,
            DhcpStats {
                offers: 0,
                acks: 1,
                naks: 1,
                ignored: 2,
                malformed: 0
            }
        );
    }

    #[test]
    fn host_routes_carry_the_default_route_too() {
        let mut p = params();
        p.host_routes = vec![(
            Ipv4Addr::new(192, 168, 0, 0),
            16,
            Ipv4Addr::new(10, 1, 1, 9),
        )];
        let mut s = DhcpStats::default();
        let (_, _, m) = reply(
            &handle(&p, &client(MessageType::Discover, vec![], 0), &mut s)
                .unwrap()
                .unwrap(),
        );
        let want = DhcpOption::ClasslessRoutes(vec![
            ClasslessRoute {
                dest: Ipv4Addr::new(192, 168, 0, 0),
                plen: 16,
                gateway: Ipv4Addr::new(10, 1, 1, 9),
            },
            ClasslessRoute {
                dest: Ipv4Addr::UNSPECIFIED,
                plen: 0,
                gateway: Ipv4Addr::new(10, 1, 1, 254),
            },
        ]);
        assert!(m.options.contains(&want));
    }

    #[test]
    fn inform_ack_has_no_lease_and_goes_to_ciaddr() {
        let p = params();
        let mut f = client(MessageType::Inform, vec![], 0);
        // ciaddr at UDP payload offset 12: eth 14 + ip 20 + udp 8
        f[42 + 12..42 + 16].copy_from_slice(&[10, 1, 1, 3]);
        // UDP checksum is not verified by the server; IP header unchanged
        let mut s = DhcpStats::default();
        let (_, dst, m) = reply(&handle(&p, &f, &mut s).unwrap().unwrap());
        assert_eq!(dst, Ipv4Addr::new(10, 1, 1, 3));
        assert_eq!(m.yiaddr, Ipv4Addr::UNSPECIFIED);
        assert!(!m
            .options
            .iter()
            .any(|o| matches!(o, DhcpOption::LeaseTime(_))));
    }

    #[test]
    fn malformed_is_dropped_and_counted() {
        let p = params();
        let mut s = DhcpStats::default();
        let good = client(MessageType::Discover, vec![], 0);
        assert!(handle(&p, &good[..100], &mut s).is_err());
        let mut bad = good.clone();
        bad[42 + 236] = 0; // magic cookie
        assert!(matches!(
            handle(&p, &bad, &mut s),
            Err(DhcpDrop::Message(_))
        ));
        assert!(handle(&p, &[0u8; 3], &mut s).is_err());
        assert_eq!(s.malformed, 3);
        assert_eq!(s.offers, 0);
    }
}
