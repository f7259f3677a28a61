//! Property tests (RFC 4271 §4.3, RFC 4760): for random UPDATEs with random
//! path attributes and random VPNv4 / EVPN / RTC NLRI, decode(encode(m)) == m;
//! and decoding arbitrary bytes after a valid marker never panics.
// Strategy closures run outside #[test] functions; a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use filament_wire_bgp::*;
use ipnet::Ipv4Net;
use proptest::prelude::*;

fn rd() -> impl Strategy<Value = RouteDistinguisher> {
    any::<[u8; 8]>().prop_map(RouteDistinguisher::from_bytes)
}

fn v4net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(a.into(), l).unwrap().trunc())
}

fn label_field() -> impl Strategy<Value = LabelField> {
    (0u32..0x0100_0000).prop_map(|v| LabelField::new(v).unwrap())
}

fn ip_addr() -> impl Strategy<Value = std::net::IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| std::net::IpAddr::V4(a.into())),
        any::<u128>().prop_map(|a| std::net::IpAddr::V6(a.into())),
    ]
}

fn vpn_route() -> impl Strategy<Value = VpnRoute> {
    (prop::collection::vec(0u32..0x80000, 1..4), rd(), v4net()).prop_map(|(ls, rd, p)| VpnRoute {
        labels: ls.into_iter().map(|l| Label::new(l).unwrap()).collect(),
        rd,
        prefix: p.into(),
    })
}

fn evpn_route() -> impl Strategy<Value = EvpnRoute> {
    prop_oneof![
        (
            rd(),
            any::<[u8; 10]>(),
            any::<u32>(),
            any::<[u8; 6]>(),
            prop::option::of(ip_addr()),
            label_field(),
            prop::option::of(label_field())
        )
            .prop_map(
                |(rd, esi, eth_tag, mac, ip, label1, label2)| EvpnRoute::MacIp {
                    rd,
                    esi: Esi(esi),
                    eth_tag,
                    mac: MacAddr(mac),
                    ip,
                    label1,
                    label2
                }
            ),
        (rd(), any::<u32>(), ip_addr()).prop_map(|(rd, eth_tag, orig_ip)| {
            EvpnRoute::InclusiveMulticast {
                rd,
                eth_tag,
                orig_ip,
            }
        }),
        (
            rd(),
            any::<[u8; 10]>(),
            any::<u32>(),
            v4net(),
            any::<u32>(),
            label_field()
        )
            .prop_map(|(rd, esi, eth_tag, p, gw, label)| EvpnRoute::IpPrefix {
                rd,
                esi: Esi(esi),
                eth_tag,
                prefix: p.into(),
                gateway: std::net::IpAddr::V4(gw.into()),
                label
            }),
        (
            rd(),
            any::<u32>(),
            any::<u128>(),
            0u8..=128,
            any::<u128>(),
            label_field()
        )
            .prop_map(|(rd, eth_tag, p, len, gw, label)| EvpnRoute::IpPrefix {
                rd,
                esi: Esi::ZERO,
                eth_tag,
                prefix: ipnet::Ipv6Net::new(p.into(), len).unwrap().trunc().into(),
                gateway: std::net::IpAddr::V6(gw.into()),
                label
            }),
        (6u8..=255, prop::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(route_type, data)| EvpnRoute::Unknown { route_type, data }),
    ]
}

fn rtc_route() -> impl Strategy<Value = RtcRoute> {
    prop_oneof![Just(0u8), 32u8..=96].prop_flat_map(|len| {
        (any::<u32>(), any::<[u8; 8]>()).prop_map(move |(asn, mut t)| {
            let keep = usize::from(len).div_ceil(8).saturating_sub(4);
            t[keep..].iter_mut().for_each(|b| *b = 0);
            let origin_as = if len == 0 { 0 } else { asn };
            RtcRoute {
                prefix_len: len,
                origin_as,
                target: t,
            }
        })
    })
}

fn mp_nlri() -> impl Strategy<Value = Nlri> {
    prop_oneof![
        prop::collection::vec(vpn_route(), 0..4).prop_map(Nlri::Vpnv4),
        prop::collection::vec(evpn_route(), 0..4).prop_map(Nlri::Evpn),
        prop::collection::vec(rtc_route(), 0..4).prop_map(Nlri::RouteTarget),
    ]
}

fn segment() -> impl Strategy<Value = AsSegment> {
    (1u8..=4, prop::collection::vec(any::<u32>(), 1..5)).prop_map(|(k, v)| match k {
        1 => AsSegment::Set(v),
        2 => AsSegment::Sequence(v),
        3 => AsSegment::ConfedSequence(v),
        _ => AsSegment::ConfedSet(v),
    })
}

prop_compose! {
    fn update()(
        origin in 0u8..3,
        path in prop::collection::vec(segment(), 0..3),
        nh in 0x0100_0000u32..0xe000_0000,
        med in prop::option::of(any::<u32>()),
        lp in prop::option::of(any::<u32>()),
        atomic in any::<bool>(),
        aggr in prop::option::of((any::<u32>(), any::<u32>())),
        comms in prop::option::of(prop::collection::vec(any::<u32>(), 0..5)),
        clusters in prop::option::of(prop::collection::vec(any::<u32>(), 1..4)),
        ext in prop::option::of(prop::collection::vec(any::<[u8; 8]>(), 0..5)),
        unknown in prop::option::of((100u8..=200, any::<u8>(), prop::collection::vec(any::<u8>(), 0..300))),
        reach in prop::option::of((any::<u32>(), mp_nlri())),
        unreach in prop::option::of(mp_nlri()),
        withdrawn in prop::collection::vec(v4net(), 0..4),
        nlri in prop::collection::vec(v4net(), 0..4),
    ) -> Update {
        let mut attrs = vec![
            PathAttr::Origin([Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(origin)]),
            PathAttr::AsPath(AsPath(path)),
            PathAttr::NextHop(Ipv4Addr::from(nh)),
        ];
        attrs.extend(med.map(PathAttr::Med));
        attrs.extend(lp.map(PathAttr::LocalPref));
        attrs.extend(atomic.then_some(PathAttr::AtomicAggregate));
        attrs.extend(aggr.map(|(asn, ip)| PathAttr::Aggregator(Aggregator { asn, ip: ip.into() })));
        attrs.extend(comms.map(PathAttr::Communities));
        attrs.extend(clusters.map(|c| PathAttr::ClusterList(c.into_iter().map(Ipv4Addr::from).collect())));
        attrs.extend(ext.map(|e| PathAttr::ExtCommunities(e.into_iter().map(ExtCommunity).collect())));
        attrs.extend(unknown.map(|(code, f, data)| PathAttr::Unknown { flags: 0x80 | (f & 0x60), code, data }));
        attrs.extend(reach.map(|(nh, nlri)| PathAttr::MpReach(MpReach { next_hop: NextHop::V4(nh.into()), nlri })));
        attrs.extend(unreach.map(|withdrawn| PathAttr::MpUnreach(MpUnreach { withdrawn })));
        Update { withdrawn, attrs, nlri }
    }
}

fn capability() -> impl Strategy<Value = Capability> {
    let fam = (any::<u16>(), any::<u8>(), any::<u8>());
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Capability::Multiprotocol {
            afi: a.into(),
            safi: s.into()
        }),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (0u8..16, 0u16..4096, prop::collection::vec(fam, 0..3)).prop_map(
            |(flags, restart_time, f)| Capability::GracefulRestart {
                flags,
                restart_time,
                families: f
                    .into_iter()
                    .map(|(a, s, flags)| GrFamily {
                        afi: a.into(),
                        safi: s.into(),
                        flags
                    })
                    .collect(),
            }
        ),
        prop::collection::vec(fam, 0..3).prop_map(|f| Capability::AddPath(
            f.into_iter()
                .map(|(a, s, send_receive)| AddPathFamily {
                    afi: a.into(),
                    safi: s.into(),
                    send_receive
                })
                .collect()
        )),
        prop::collection::vec((fam, 0u32..=MAX_LLGR_STALE_TIME), 0..3).prop_map(|f| {
            Capability::LongLivedGracefulRestart(
                f.into_iter()
                    .map(|((a, s, flags), stale_time)| LlgrFamily {
                        afi: a.into(),
                        safi: s.into(),
                        flags,
                        stale_time,
                    })
                    .collect(),
            )
        }),
        (100u8..=200, prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(code, data)| Capability::Unknown { code, data }),
    ]
}

proptest! {
    #[test]
    fn open_encode_decode_identity(
        my_as in any::<u16>(),
        hold_time in prop_oneof![Just(0u16), 3u16..],
        id in 1u32..,
        capabilities in prop::collection::vec(capability(), 0..10),
    ) {
        let msg = Message::Open(Open { version: 4, my_as, hold_time, bgp_id: id.into(), capabilities });
        let ctx = DecodeCtx::default();
        let mut out = Vec::new();
        msg.encode(&ctx, &mut out).unwrap();
        prop_assert_eq!(Message::decode(&out, &ctx).unwrap(), (msg, out.len()));
    }

    #[test]
    fn update_encode_decode_identity(up in update(), rfc7606 in any::<bool>()) {
        let ctx = DecodeCtx { four_octet_as: true, extended_message: true, rfc7606 };
        let msg = Message::Update(up);
        let mut out = Vec::new();
        msg.encode(&ctx, &mut out).unwrap();
        let (back, used) = Message::decode(&out, &ctx).unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), four in any::<bool>()) {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&bytes);
        let ctx = DecodeCtx { four_octet_as: four, ..DecodeCtx::default() };
        let _ = Message::decode(&b, &ctx);
    }
}
