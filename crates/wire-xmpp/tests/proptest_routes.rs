//! Property tests: random route items survive emit → parse (tf-facts §2.3–§2.5).
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filament_wire_xmpp::route::route_iqs;
use filament_wire_xmpp::*;
use proptest::prelude::*;

fn vrf() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,8}(:[a-z0-9_-]{1,8}){0,3}"
}

fn text() -> impl Strategy<Value = String> {
    // any printable text incl. XML specials and non-ASCII, not whitespace-only
    "[a-zA-Z0-9&<>\"' :/é\u{200}-]{0,12}[a-z]"
}

fn encap() -> impl Strategy<Value = TunnelEncap> {
    prop_oneof![
        Just(TunnelEncap::Gre),
        Just(TunnelEncap::Mpls),
        Just(TunnelEncap::Udp),
        Just(TunnelEncap::Vxlan),
        Just(TunnelEncap::Native),
        "x[a-z]{1,5}".prop_map(TunnelEncap::Other),
    ]
}

fn label() -> impl Strategy<Value = NhLabel> {
    prop_oneof![
        any::<u32>().prop_map(NhLabel::Value),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| NhLabel::Range(a, b)),
    ]
}

fn next_hop() -> impl Strategy<Value = NextHop> {
    (
        (
            any::<u16>(),
            any::<[u8; 4]>(),
            proptest::option::of(any::<[u8; 6]>()),
        ),
        (
            proptest::option::of(label()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        ),
        (
            proptest::collection::vec(encap(), 0..4),
            proptest::option::of(text()),
            proptest::collection::vec(any::<u32>(), 0..4),
            proptest::option::of(any::<u32>()),
        ),
    )
        .prop_map(
            |((af, addr, mac), (label, vni, l3), (encaps, vn, tags, lsn))| NextHop {
                af,
                address: Ipv4Addr::from(addr).to_string(),
                mac: mac.map(|m| MacAddr(m).to_string()),
                label,
                vni,
                l3_label: l3,
                tunnel_encapsulation: encaps,
                virtual_network: vn,
                tag_list: tags,
                local_sequence_number: lsn,
            },
        )
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            proptest::option::of(text()),
            proptest::option::of(any::<u32>()),
        ),
        proptest::collection::vec(next_hop(), 0..4),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(text()),
            proptest::option::of((any::<u32>(), any::<bool>())),
            proptest::option::of(any::<u32>()),
        ),
        (
            proptest::collection::vec(any::<u32>(), 0..3),
            proptest::collection::vec(text(), 0..3),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        ),
        (
            proptest::option::of((
                proptest::collection::vec("l[34]-[a-z-]{1,12}", 0..3),
                proptest::option::of("[a-z-]{1,10}"),
            )),
            proptest::option::of("[a-z-]{1,10}"),
        ),
    )
        .prop_map(
            |(
                (af, safi, address, etag),
                nhs,
                (version, vn, mob, seq),
                (sgs, ctags, lp, med),
                (lb, sp),
            )| Entry {
                nlri: Nlri {
                    af,
                    safi,
                    address,
                    ethernet_tag: etag,
                    ..Nlri::default()
                },
                next_hops: nhs,
                version,
                virtual_network: vn,
                mobility: mob.map(|(seqno, sticky)| Mobility { seqno, sticky }),
                sequence_number: seq,
                security_groups: sgs,
                community_tags: ctags,
                local_preference: lp,
                med,
                load_balance: lb.map(|(fields, decision)| LoadBalance { fields, decision }),
                sub_protocol: sp,
                extra: Vec::new(),
            },
        )
}

fn route_node() -> impl Strategy<Value = RouteNode> {
    prop_oneof![
        (
            vrf(),
            any::<[u8; 4]>(),
            0u8..=32,
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(vrf, a, plen, p)| {
                RouteNode::Inet {
                    vrf,
                    prefix: Ipv4Addr::from(a),
                    plen,
                    primary_instance: p,
                }
            }),
        (vrf(), any::<[u8; 4]>(), 0u8..=32).prop_map(|(vrf, a, plen)| RouteNode::InetMpls {
            vrf,
            prefix: Ipv4Addr::from(a),
            plen
        }),
        (vrf(), any::<[u8; 16]>(), 0u8..=128).prop_map(|(vrf, a, plen)| RouteNode::Inet6 {
            vrf,
            prefix: Ipv6Addr::from(a),
            plen
        }),
        (
            proptest::option::of(any::<u32>()),
            any::<[u8; 6]>(),
            any::<[u8; 4]>(),
            0u8..=32,
            proptest::option::of((any::<[u8; 4]>(), any::<[u8; 16]>()))
        )
            .prop_map(|(t, m, ip, plen, gs)| RouteNode::Evpn(EvpnKey {
                ethernet_tag: t,
                mac: MacAddr(m),
                ip: IpAddr::V4(Ipv4Addr::from(ip)),
                plen,
                group_source: gs
                    .map(|(g, s)| (IpAddr::V4(Ipv4Addr::from(g)), IpAddr::V6(Ipv6Addr::from(s)))),
            })),
    ]
}

proptest! {
    #[test]
    fn route_node_text_round_trip(n in route_node()) {
        prop_assert_eq!(RouteNode::parse(&n.to_string()).unwrap(), n);
    }

    #[test]
    fn publish_and_collection_round_trip(
        node in route_node(), e in entry(), vrf in vrf(), seq in any::<u64>(), add in any::<bool>()
    ) {
        let op = if add { CollectionOp::Associate } else { CollectionOp::Dissociate };
        let (p, c) = route_iqs("compute-1", seq, &vrf, node, e, op);
        let sp = Stanza::Publish(p);
        let sc = Stanza::Collection(c);
        prop_assert_eq!(Stanza::parse_str(&sp.to_xml()).unwrap(), sp);
        prop_assert_eq!(Stanza::parse_str(&sc.to_xml()).unwrap(), sc);
    }

    #[test]
    fn pushed_items_round_trip(
        vrf in vrf(),
        items in proptest::collection::vec((route_node(), proptest::option::of(entry())), 0..5),
    ) {
        let u = RouteUpdate {
            env: Envelope::control_to_agent("compute-1", "bgp-peer"),
            node: ItemsNode { afi: 1, safi: 1, vrf },
            items: items
                .into_iter()
                .map(|(n, e)| match e {
                    Some(e) => PushedItem::Item { id: n.item_id(), entry: Box::new(e) },
                    None => PushedItem::Retract { id: n.item_id() },
                })
                .collect(),
        };
        let s = Stanza::RouteUpdate(u);
        let text = s.to_xml();
        prop_assert_eq!(Stanza::parse_str(&text).unwrap(), s.clone());
        // and through the stream parser
        let mut p = StreamParser::new();
        p.feed(StreamHeader::control_to_agent("compute-1").to_xml().as_bytes()).unwrap();
        p.feed(text.as_bytes()).unwrap();
        let ev = p.drain_events().unwrap();
        let StreamEvent::Stanza(el) = &ev[1] else { panic!("{ev:?}") };
        prop_assert_eq!(Stanza::parse(el).unwrap(), s);
    }

    #[test]
    fn streamed_items_text_equals_the_tree_text(
        vrf in vrf(),
        items in proptest::collection::vec((route_node(), proptest::option::of(entry())), 1..5),
    ) {
        let u = RouteUpdate {
            env: Envelope::control_to_agent("compute-1", "bgp-peer"),
            node: ItemsNode { afi: 1, safi: 1, vrf },
            items: items
                .into_iter()
                .map(|(n, e)| match e {
                    Some(e) => PushedItem::Item { id: n.item_id(), entry: Box::new(e) },
                    None => PushedItem::Retract { id: n.item_id() },
                })
                .collect(),
        };
        let tree = u.to_element().child("event").unwrap().child("items").unwrap().to_xml();
        let mut streamed = String::new();
        RouteUpdate::write_items_xml(&u.node, &u.items, &mut streamed);
        prop_assert_eq!(streamed, tree);
    }
}
