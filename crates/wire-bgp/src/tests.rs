//! Message-level tests: byte-exact UPDATE / ROUTE-REFRESH round trips for
//! every family (RFC 4271 §4.3, RFC 4760, RFC 4364, RFC 7432, RFC 4684),
//! framing and attribute errors (RFC 4271 §6, RFC 7606). Property tests are
//! in `tests/proptest_roundtrip.rs`.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;

use super::*;

const MARKER: [u8; 16] = [0xff; 16];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn ctx2() -> DecodeCtx {
    DecodeCtx::default()
}

fn ctx4() -> DecodeCtx {
    DecodeCtx {
        four_octet_as: true,
        ..DecodeCtx::default()
    }
}

fn ctx7606() -> DecodeCtx {
    DecodeCtx {
        rfc7606: true,
        ..DecodeCtx::default()
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

/// decode → compare → encode → same bytes.
fn round_trip(bytes: &[u8], ctx: &DecodeCtx, want: &Message) {
    let (msg, used) = Message::decode(bytes, ctx).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(&msg, want);
    let mut out = Vec::new();
    msg.encode(ctx, &mut out).unwrap();
    assert_eq!(out, bytes);
}

// ===== IPv4 UPDATE with every classic attribute (2-octet AS session) =====

const ORIGIN_IGP: [u8; 4] = [0x40, 0x01, 0x01, 0x00];
const AS_PATH_EMPTY: [u8; 3] = [0x40, 0x02, 0x00];

fn update1_bytes() -> Vec<u8> {
    cat(&[
        &MARKER,
        &[0x00, 0x66, 0x02], // length 102, UPDATE
        &[0x00, 0x03],       // withdrawn routes length 3
        &[16, 10, 9],        // 10.9.0.0/16
        &[0x00, 0x48],       // total path attribute length 72
        &ORIGIN_IGP,         // ORIGIN IGP
        &[0x40, 0x02, 0x06, 0x02, 0x02, 0xfc, 0x00, 0x00, 0x64], // AS_SEQUENCE 64512 100
        &[0x40, 0x03, 0x04, 192, 0, 2, 1], // NEXT_HOP 192.0.2.1
        &[0x80, 0x04, 0x04, 0, 0, 0, 10], // MED 10
        &[0x40, 0x05, 0x04, 0, 0, 0, 100], // LOCAL_PREF 100
        &[0x40, 0x06, 0x00], // ATOMIC_AGGREGATE
        &[0xc0, 0x07, 0x06, 0xfc, 0x00, 192, 0, 2, 1], // AGGREGATOR 64512 192.0.2.1
        &[0xc0, 0x08, 0x04, 0xff, 0xff, 0xff, 0x01], // COMMUNITIES NO_EXPORT
        &[0x80, 0x09, 0x04, 10, 0, 0, 2], // ORIGINATOR_ID 10.0.0.2
        &[0x80, 0x0a, 0x04, 10, 0, 0, 3], // CLUSTER_LIST 10.0.0.3
        &[0xc0, 0x63, 0x02, 0xab, 0xcd], // unknown optional transitive type 99
        &[24, 192, 0, 2],    // NLRI 192.0.2.0/24
    ])
}

fn update1() -> Update {
    Update {
        withdrawn: vec![net("10.9.0.0/16")],
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath(vec![AsSegment::Sequence(vec![64512, 100])])),
            PathAttr::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
            PathAttr::Med(10),
            PathAttr::LocalPref(100),
            PathAttr::AtomicAggregate,
            PathAttr::Aggregator(Aggregator {
                asn: 64512,
                ip: Ipv4Addr::new(192, 0, 2, 1),
            }),
            PathAttr::Communities(vec![0xffff_ff01]),
            PathAttr::OriginatorId(Ipv4Addr::new(10, 0, 0, 2)),
            PathAttr::ClusterList(vec![Ipv4Addr::new(10, 0, 0, 3)]),
            PathAttr::Unknown {
                flags: 0xc0,
                code: 99,
                data: vec![0xab, 0xcd],
            },
        ],
        nlri: vec![net("192.0.2.0/24")],
    }
}

#[test]
fn update_ipv4_round_trip() {
    assert_eq!(update1_bytes().len(), 102);
    round_trip(&update1_bytes(), &ctx2(), &Message::Update(update1()));
}

#[test]
fn update_as_path_four_octet_and_as_trans() {
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x2a, 0x02], // length 42
        &[0x00, 0x00],       // no withdrawn
        &[0x00, 0x13],       // attrs 19
        &ORIGIN_IGP,
        // AS_SET of one 4-octet AS 4200000000, AS_SEQUENCE 65001
        &[
            0x40, 0x02, 0x0c, 0x01, 0x01, 0xfa, 0x56, 0xea, 0x00, 0x02, 0x01, 0, 0, 0xfd, 0xe9,
        ],
    ]);
    let up = Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath(vec![
                AsSegment::Set(vec![4_200_000_000]),
                AsSegment::Sequence(vec![65001]),
            ])),
        ],
        ..Update::default()
    };
    round_trip(&bytes, &ctx4(), &Message::Update(up.clone()));
    // On a 2-octet session the large AS becomes AS_TRANS (RFC 6793 §4.2.2).
    let mut out = Vec::new();
    Message::Update(up).encode(&ctx2(), &mut out).unwrap();
    assert_eq!(&out[30..37], &[0x01, 0x01, 0x5b, 0xa0, 0x02, 0x01, 0xfd]);
}

// ===== MP_REACH / MP_UNREACH per family =====

fn vpnv4_reach_bytes() -> Vec<u8> {
    cat(&[
        &MARKER,
        &[0x00, 0x6c, 0x02], // length 108
        &[0x00, 0x00],       // no withdrawn
        &[0x00, 0x55],       // attrs 85
        &ORIGIN_IGP,
        &AS_PATH_EMPTY,
        &[0x40, 0x05, 0x04, 0, 0, 0, 100], // LOCAL_PREF 100
        &[0xc0, 0x10, 0x20],               // EXTENDED_COMMUNITIES, 32 octets
        &[0x00, 0x02, 0xfc, 0x00, 0x00, 0x7a, 0x12, 0x01], // target:64512:8000001
        &[0x03, 0x0c, 0, 0, 0, 0, 0x00, 0x0b], // encapsulation MPLS-in-GRE
        &[0x80, 0x71, 0xfc, 0x00, 0, 0, 0, 5], // TF origin-vn 64512:5
        &[0x06, 0x00, 0x01, 0x00, 0, 0, 0, 3], // MAC mobility sticky seq 3
        &[0x80, 0x0e, 0x21],               // MP_REACH_NLRI, 33 octets
        &[0x00, 0x01, 0x80],               // AFI 1 SAFI 128
        &[0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1], // next hop: zero RD + 10.0.0.1
        &[0x00],                           // reserved
        &[0x78, 0x00, 0x01, 0x01],         // 120 bits, label 16 (S)
        &[0x00, 0x01, 172, 31, 41, 236, 0x00, 0x02], // RD 172.31.41.236:2
        &[10, 47, 255, 252],               // 10.47.255.252/32
    ])
}

#[test]
fn update_vpnv4_reach_round_trip_and_ext_communities() {
    let route = VpnRoute {
        labels: vec![Label::new(16).unwrap()].into(),
        rd: "172.31.41.236:2".parse().unwrap(),
        prefix: "10.47.255.252/32".parse().unwrap(),
    };
    let rt: RouteTarget = "target:64512:8000001".parse().unwrap();
    let comms = vec![
        ExtCommunity::from(rt),
        ExtCommunity::new_encapsulation(TunnelType::MplsInGre),
        ExtCommunity::new_origin_vn(64512, 5).unwrap(),
        ExtCommunity::new_mac_mobility(true, 3),
    ];
    let up = Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath::default()),
            PathAttr::LocalPref(100),
            PathAttr::ExtCommunities(comms.clone()),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)),
                nlri: Nlri::Vpnv4(vec![route]),
            }),
        ],
        ..Update::default()
    };
    round_trip(&vpnv4_reach_bytes(), &ctx4(), &Message::Update(up));
    assert_eq!(comms[0].route_target(), Some(rt));
    assert_eq!(comms[1].encapsulation(), Some(TunnelType::MplsInGre));
    assert_eq!(comms[2].origin_vn(), Some((64512, 5)));
    assert_eq!(comms[3].mac_mobility(), Some((true, 3)));
    assert_eq!(comms[0].encapsulation(), None);
    assert_eq!(comms[0].mac_mobility(), None);
    assert_eq!(comms[0].origin_vn(), None);
    let rmac = ExtCommunity([0x06, 0x03, 2, 0, 0, 0, 0, 9]);
    assert_eq!(rmac.router_mac(), Some(MacAddr([2, 0, 0, 0, 0, 9])));
    assert!(ExtCommunity([0x03, 0x0d, 0, 0, 0, 0, 0, 0]).is_default_gateway());
    let sg = ExtCommunity::new_security_group(4_200_000_000, 8).unwrap();
    assert_eq!(sg.0[..2], [0x82, 0x04]);
    assert_eq!(sg.security_group(), Some((4_200_000_000, 8)));
    assert_eq!(ExtCommunity::new_origin_vn(4_200_000_000, 70_000), None);
}

#[test]
fn update_vpnv4_unreach_round_trip() {
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x2c, 0x02],                               // length 44
        &[0x00, 0x00],                                     // no withdrawn
        &[0x00, 0x15],                                     // attrs 21
        &[0x80, 0x0f, 0x12],                               // MP_UNREACH_NLRI, 18 octets
        &[0x00, 0x01, 0x80],                               // AFI 1 SAFI 128
        &[0x70, 0x80, 0x00, 0x00],                         // 112 bits, withdraw label 0x800000
        &[0x00, 0x00, 0xfc, 0x00, 0x00, 0x00, 0x00, 0x05], // RD 64512:5
        &[10, 1, 1],                                       // 10.1.1.0/24
    ]);
    let up = Update {
        attrs: vec![PathAttr::MpUnreach(MpUnreach {
            withdrawn: Nlri::Vpnv4(vec![VpnRoute {
                labels: vec![Label::WITHDRAW].into(),
                rd: RouteDistinguisher::as2(64512, 5),
                prefix: "10.1.1.0/24".parse().unwrap(),
            }]),
        })],
        ..Update::default()
    };
    round_trip(&bytes, &ctx4(), &Message::Update(up));
}

#[test]
fn update_evpn_reach_round_trip() {
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x3d, 0x02], // length 61
        &[0x00, 0x00],
        &[0x00, 0x26], // attrs 38
        &ORIGIN_IGP,
        &AS_PATH_EMPTY,
        &[0x80, 0x0e, 0x1c],              // MP_REACH_NLRI, 28 octets
        &[0x00, 0x19, 0x46],              // AFI 25 SAFI 70
        &[0x04, 10, 0, 0, 1],             // next hop 10.0.0.1
        &[0x00],                          // reserved
        &[0x03, 0x11],                    // type 3 IMET, 17 octets
        &[0x00, 0x01, 10, 0, 0, 1, 0, 3], // RD 10.0.0.1:3
        &[0, 0, 0, 0],                    // ethernet tag
        &[32, 10, 0, 0, 1],               // originating router
    ]);
    let up = Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath::default()),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)),
                nlri: Nlri::Evpn(vec![EvpnRoute::InclusiveMulticast {
                    rd: "10.0.0.1:3".parse().unwrap(),
                    eth_tag: 0,
                    orig_ip: "10.0.0.1".parse().unwrap(),
                }]),
            }),
        ],
        ..Update::default()
    };
    round_trip(&bytes, &ctx4(), &Message::Update(up));
}

#[test]
fn update_rtc_reach_round_trip() {
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x38, 0x02], // length 56
        &[0x00, 0x00],
        &[0x00, 0x21], // attrs 33
        &ORIGIN_IGP,
        &AS_PATH_EMPTY,
        &[0x80, 0x0e, 0x17],  // MP_REACH_NLRI, 23 octets
        &[0x00, 0x01, 0x84],  // AFI 1 SAFI 132
        &[0x04, 10, 0, 0, 1], // next hop 10.0.0.1
        &[0x00],              // reserved
        &[96, 0, 0, 0xfc, 0], // /96, origin AS 64512
        &[0x00, 0x02, 0xfc, 0x00, 0x00, 0x7a, 0x12, 0x01], // target:64512:8000001
        &[0],                 // default /0
    ]);
    let up = Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath::default()),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)),
                nlri: Nlri::RouteTarget(vec![
                    RtcRoute::new(64512, "target:64512:8000001".parse().unwrap()),
                    RtcRoute::DEFAULT,
                ]),
            }),
        ],
        ..Update::default()
    };
    round_trip(&bytes, &ctx4(), &Message::Update(up));
}

#[test]
fn update_ipv6_reach_with_link_local_round_trip() {
    let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x4b, 0x02], // length 75
        &[0x00, 0x00],
        &[0x00, 0x34], // attrs 52
        &ORIGIN_IGP,
        &AS_PATH_EMPTY,
        &[0x80, 0x0e, 0x2a], // MP_REACH_NLRI, 42 octets
        &[0x00, 0x02, 0x01], // AFI 2 SAFI 1
        &[0x20],             // next hop length 32
        &global.octets(),
        &ll.octets(),
        &[0x00],                       // reserved
        &[32, 0x20, 0x01, 0x0d, 0xb8], // 2001:db8::/32
    ]);
    let up = Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath::default()),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V6 {
                    global,
                    link_local: Some(ll),
                },
                nlri: Nlri::Ipv6Unicast(vec!["2001:db8::/32".parse().unwrap()]),
            }),
        ],
        ..Update::default()
    };
    round_trip(&bytes, &ctx4(), &Message::Update(up));
    // prefix length 129 inside MP_REACH
    let mut bad = bytes.clone();
    let at = bad.len() - 5;
    bad[at] = 129;
    assert!(matches!(
        Message::decode(&bad, &ctx4()),
        Err(DecodeError::Update {
            subcode: UpdateError::InvalidNetworkField,
            ..
        })
    ));
}

#[test]
fn vpnv6_reach_next_hop_with_zero_rd() {
    // RFC 4659 §3.2.1: VPN-IPv6 next hop = 8-octet zero RD + IPv6 address.
    let nh: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x4b, 0x02], // length 75
        &[0x00, 0x00],
        &[0x00, 0x34], // attrs 52
        &ORIGIN_IGP,
        &AS_PATH_EMPTY,
        &[0x80, 0x0e, 0x2a],             // MP_REACH_NLRI, 42 octets
        &[0x00, 0x02, 0x80],             // AFI 2 SAFI 128
        &[0x18, 0, 0, 0, 0, 0, 0, 0, 0], // next hop length 24, zero RD
        &nh.octets(),
        &[0x00],                                           // reserved
        &[0x60, 0x00, 0x01, 0x01],                         // 96 bits: label 16 (S)
        &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01], // RD 1:1
        &[0xfd],                                           // fd00::/8
    ]);
    let up = Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath::default()),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V6 {
                    global: nh,
                    link_local: None,
                },
                nlri: Nlri::Vpnv6(vec![VpnRoute {
                    labels: vec![Label::new(16).unwrap()].into(),
                    rd: RouteDistinguisher::as2(1, 1),
                    prefix: "fd00::/8".parse().unwrap(),
                }]),
            }),
        ],
        ..Update::default()
    };
    round_trip(&bytes, &ctx4(), &Message::Update(up));
    // A non-zero RD in the next hop is kept verbatim.
    let mut b = bytes.clone();
    b[19 + 4 + 7 + 3 + 3 + 1] = 9;
    let (Message::Update(u), _) = Message::decode(&b, &ctx4()).unwrap() else {
        panic!()
    };
    let Some(PathAttr::MpReach(m)) = u.attr(14) else {
        panic!()
    };
    assert!(matches!(&m.next_hop, NextHop::Raw(v) if v.len() == 24 && v[0] == 9));
    let mut out = Vec::new();
    Message::Update(u).encode(&ctx4(), &mut out).unwrap();
    assert_eq!(out, b);
}

#[test]
fn route_refresh_round_trip() {
    let bytes = cat(&[
        &MARKER,
        &[0x00, 0x17, 0x05],       // length 23, ROUTE-REFRESH
        &[0x00, 0x01, 0x01, 0x80], // AFI 1, subtype BoRR, SAFI 128
    ]);
    let rr = RouteRefresh {
        afi: Afi::Ipv4,
        subtype: 1,
        safi: Safi::MplsVpn,
    };
    round_trip(&bytes, &ctx2(), &Message::RouteRefresh(rr));
    let mut long = bytes.clone();
    long[17] = 24;
    long.push(0);
    let e = Message::decode(&long, &ctx2()).unwrap_err();
    let n = e.notification().unwrap();
    assert_eq!((n.code, n.subcode), (ErrorCode::RouteRefresh, 1));
}

// ===== framing errors =====

#[test]
fn framing_errors() {
    let good = update1_bytes();
    let mut b = good.clone();
    b[3] = 0xfe;
    let e = Message::decode(&b, &ctx2()).unwrap_err();
    assert!(matches!(
        e,
        DecodeError::Header {
            subcode: HeaderError::ConnectionNotSynchronized,
            ..
        }
    ));
    assert_eq!(e.notification().unwrap().code, ErrorCode::MessageHeader);

    let mut b = good.clone();
    b[16..18].copy_from_slice(&[0, 18]);
    let e = Message::decode(&b, &ctx2()).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Header {
            subcode: HeaderError::BadMessageLength,
            data: vec![0, 18],
            reason: "bad length"
        }
    );

    let mut b = good.clone();
    b[16..18].copy_from_slice(&4097u16.to_be_bytes());
    let e = Message::decode(&b, &ctx2()).unwrap_err();
    assert!(matches!(
        e,
        DecodeError::Header {
            subcode: HeaderError::BadMessageLength,
            ..
        }
    ));
    // Allowed with RFC 8654 extended messages: now just incomplete.
    let ext = DecodeCtx {
        extended_message: true,
        ..ctx2()
    };
    assert_eq!(
        Message::decode(&b, &ext).unwrap_err(),
        DecodeError::Incomplete {
            needed: 4097 - b.len()
        }
    );

    let mut b = good.clone();
    b[18] = 9;
    let e = Message::decode(&b, &ctx2()).unwrap_err();
    assert_eq!(e.notification().unwrap().data, vec![9]);

    // KEEPALIVE must be exactly 19 octets; OPEN at least 29.
    let ka = cat(&[&MARKER, &[0x00, 0x14, 0x04, 0x00]]);
    assert!(matches!(
        Message::decode(&ka, &ctx2()),
        Err(DecodeError::Header {
            subcode: HeaderError::BadMessageLength,
            ..
        })
    ));
    let op = cat(&[&MARKER, &[0x00, 0x14, 0x01, 0x04]]);
    assert!(Message::decode(&op, &ctx2()).is_err());
}

#[test]
fn streaming_incomplete_then_complete() {
    let good = update1_bytes();
    for n in 0..good.len() {
        let e = Message::decode(&good[..n], &ctx2()).unwrap_err();
        let needed = if n < HEADER_LEN {
            HEADER_LEN - n
        } else {
            good.len() - n
        };
        assert_eq!(e, DecodeError::Incomplete { needed }, "prefix of {n}");
    }
    // Two messages back to back: the first consumes only its own bytes.
    let mut two = good.clone();
    two.extend_from_slice(&cat(&[&MARKER, &[0, 19, 4]]));
    let (_, used) = Message::decode(&two, &ctx2()).unwrap();
    assert_eq!(
        Message::decode(&two[used..], &ctx2()).unwrap(),
        (Message::Keepalive, 19)
    );
}

// ===== UPDATE errors =====

/// Offset of the NEXT_HOP attribute in `update1_bytes`.
const NH_AT: usize = 19 + 2 + 3 + 2 + 4 + 9;

fn update_err(b: &[u8], ctx: &DecodeCtx) -> DecodeError {
    Message::decode(b, ctx).unwrap_err()
}

#[test]
fn bad_origin_value() {
    let mut b = update1_bytes();
    b[19 + 2 + 3 + 2 + 3] = 3;
    let e = update_err(&b, &ctx2());
    assert_eq!(
        e.notification().unwrap(),
        Notification {
            code: ErrorCode::Update,
            subcode: 6,
            data: vec![0x40, 0x01, 0x01, 0x03]
        }
    );
    let DecodeError::TreatAsWithdraw {
        attr_type,
        subcode,
        msg_len,
        update,
    } = update_err(&b, &ctx7606())
    else {
        panic!("expected treat-as-withdraw")
    };
    assert_eq!(
        (attr_type, subcode, msg_len),
        (1, UpdateError::InvalidOrigin, 102)
    );
    assert_eq!(update.nlri, vec![net("192.0.2.0/24")]);
    assert_eq!(update.withdrawn, vec![net("10.9.0.0/16")]);
}

#[test]
fn attribute_length_overrun() {
    let mut b = update1_bytes();
    b[NH_AT + 2] = 0xf0; // NEXT_HOP claims 240 octets
    assert!(matches!(
        update_err(&b, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::AttributeLength,
            ..
        }
    ));
    assert!(matches!(
        update_err(&b, &ctx7606()),
        DecodeError::TreatAsWithdraw { .. }
    ));
    // NEXT_HOP with length 5 inside the attribute block: length error
    let mut b = update1_bytes();
    b[NH_AT + 2] = 5;
    b[NH_AT + 3 + 4] = 0x80; // (MED flags now read as NEXT_HOP data)
    assert!(update_err(&b, &ctx2()).notification().is_some());
    // total attribute length too large
    let mut b = update1_bytes();
    b[19 + 2 + 3] = 0x10;
    assert!(matches!(
        update_err(&b, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::MalformedAttributeList,
            ..
        }
    ));
    // withdrawn routes length too large
    let mut b = update1_bytes();
    b[19 + 1] = 0x90;
    assert!(matches!(
        update_err(&b, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::MalformedAttributeList,
            ..
        }
    ));
}

#[test]
fn nlri_errors() {
    // prefix length 33 in the NLRI field
    let mut b = update1_bytes();
    let at = b.len() - 4;
    b[at] = 33;
    assert!(matches!(
        update_err(&b, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::InvalidNetworkField,
            ..
        }
    ));
    // truncated NLRI: /24 with only 2 octets (message length adjusted)
    let mut b = update1_bytes();
    b.pop();
    b[17] = 101;
    assert!(matches!(
        update_err(&b, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::InvalidNetworkField,
            ..
        }
    ));
}

#[test]
fn flags_duplicates_missing_and_unrecognized() {
    // ORIGIN sent as optional transitive
    let mut b = update1_bytes();
    b[19 + 2 + 3 + 2] = 0xc0;
    let e = update_err(&b, &ctx2());
    assert!(matches!(
        e,
        DecodeError::Update {
            subcode: UpdateError::AttributeFlags,
            ..
        }
    ));
    // unknown type 99 marked well-known
    let mut b = update1_bytes();
    let at = b.len() - 4 - 5;
    b[at] = 0x40;
    let e = update_err(&b, &ctx2());
    assert_eq!(
        e.notification().unwrap().data,
        vec![0x40, 0x63, 0x02, 0xab, 0xcd],
        "{e:?}"
    );
    // Rewrite CLUSTER_LIST's type code to 9: a second ORIGINATOR_ID.
    let mut b = update1_bytes();
    let at = b.len() - 4 - 5 - 7 + 1;
    assert_eq!(b[at], 0x0a);
    b[at] = 0x09;
    assert!(matches!(
        update_err(&b, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::MalformedAttributeList,
            ..
        }
    ));
    // RFC 7606: the repeat is discarded
    let (Message::Update(u), _) = Message::decode(&b, &ctx7606()).unwrap() else {
        panic!()
    };
    assert_eq!(u.attrs.len(), 10);
    // missing NEXT_HOP: retag it as an unknown optional attribute 200
    let mut b = update1_bytes();
    b[NH_AT] = 0x80;
    b[NH_AT + 1] = 200;
    let e = update_err(&b, &ctx2());
    assert_eq!(
        e,
        DecodeError::Update {
            subcode: UpdateError::MissingWellKnown,
            data: vec![3],
            reason: "missing well-known attribute"
        }
    );
    assert!(matches!(
        update_err(&b, &ctx7606()),
        DecodeError::TreatAsWithdraw { attr_type: 3, .. }
    ));
}

#[test]
fn rfc7606_discards_bad_aggregator() {
    // AGGREGATOR starts after ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, ATOMIC
    let at = NH_AT + 7 + 7 + 7 + 3;
    // Shorten AGGREGATOR to 5 octets (drop its last IP octet) and fix up the
    // attribute and message lengths.
    let mut b2 = update1_bytes();
    assert_eq!(&b2[at..at + 2], &[0xc0, 0x07]);
    b2.remove(at + 3 + 5);
    b2[at + 2] = 5;
    b2[17] -= 1;
    b2[19 + 2 + 3 + 1] -= 1;
    assert!(matches!(
        update_err(&b2, &ctx2()),
        DecodeError::Update {
            subcode: UpdateError::AttributeLength,
            ..
        }
    ));
    let (Message::Update(u), _) = Message::decode(&b2, &ctx7606()).unwrap() else {
        panic!()
    };
    assert!(u.attr(7).is_none());
    assert_eq!(u.attrs.len(), 10);
}

#[test]
fn partial_bit_on_propagation() {
    let t = PathAttr::Unknown {
        flags: 0xc0,
        code: 99,
        data: vec![],
    };
    assert_eq!(
        t.propagated(),
        Some(PathAttr::Unknown {
            flags: 0xe0,
            code: 99,
            data: vec![]
        })
    );
    let nt = PathAttr::Unknown {
        flags: 0x80,
        code: 98,
        data: vec![],
    };
    assert_eq!(nt.propagated(), None);
}

#[test]
fn encode_too_long_is_an_error() {
    let up = Update {
        attrs: vec![PathAttr::Communities(vec![1; 1100])],
        ..Update::default()
    };
    let mut out = vec![7];
    let e = Message::Update(up.clone())
        .encode(&ctx2(), &mut out)
        .unwrap_err();
    assert!(matches!(e, EncodeError::MessageTooLong { .. }));
    assert_eq!(out, vec![7]);
    let ext = DecodeCtx {
        extended_message: true,
        ..ctx2()
    };
    Message::Update(up.clone()).encode(&ext, &mut out).unwrap();
    let (m, _) = Message::decode(&out[1..], &ext).unwrap();
    assert_eq!(m, Message::Update(up));
}

/// Writes fuzz seeds (one selector byte + a valid message) when
/// `BGP_SEED_DIR` is set, e.g. `BGP_SEED_DIR=fuzz/corpus/bgp_message`;
/// otherwise does nothing.
#[test]
fn dump_fuzz_seeds() {
    let Ok(dir) = std::env::var("BGP_SEED_DIR") else {
        return;
    };
    let mut seeds = vec![update1_bytes(), vpnv4_reach_bytes()];
    let ctx = ctx4();
    let open = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::Multiprotocol {
                afi: Afi::L2vpn,
                safi: Safi::Evpn,
            },
            Capability::RouteRefresh,
            Capability::GracefulRestart {
                flags: 8,
                restart_time: 90,
                families: vec![],
            },
            Capability::AddPath(vec![]),
        ],
    );
    let mp = |nlri| {
        Message::Update(Update {
            attrs: vec![
                PathAttr::Origin(Origin::Igp),
                PathAttr::AsPath(AsPath::default()),
                PathAttr::MpReach(MpReach {
                    next_hop: NextHop::V4(Ipv4Addr::LOCALHOST),
                    nlri,
                }),
            ],
            ..Update::default()
        })
    };
    let evpn = Nlri::Evpn(vec![EvpnRoute::MacIp {
        rd: RouteDistinguisher::as2(1, 1),
        esi: Esi::ZERO,
        eth_tag: 0,
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        ip: Some("10.0.0.1".parse().unwrap()),
        label1: LabelField::new(5).unwrap(),
        label2: None,
    }]);
    let rtc = Nlri::RouteTarget(vec![RtcRoute::DEFAULT]);
    let unreach = Message::Update(Update {
        attrs: vec![PathAttr::MpUnreach(MpUnreach {
            withdrawn: Nlri::Ipv6Unicast(vec![]),
        })],
        ..Update::default()
    });
    let rr = Message::RouteRefresh(RouteRefresh {
        afi: Afi::Ipv4,
        subtype: 0,
        safi: Safi::Unicast,
    });
    let note = Message::Notification(Notification::cease(CeaseSubcode::AdminReset));
    for m in [
        Message::Update(update1()),
        Message::Keepalive,
        Message::Open(open),
        mp(evpn),
        mp(rtc),
        unreach,
        rr,
        note,
    ] {
        let mut o = Vec::new();
        m.encode(&ctx, &mut o).unwrap();
        seeds.push(o);
    }
    for (i, s) in seeds.iter().enumerate() {
        for sel in 0u8..4 {
            let mut v = vec![sel];
            v.extend_from_slice(s);
            std::fs::write(format!("{dir}/seed-{i}-{sel}"), v).unwrap();
        }
    }
}
