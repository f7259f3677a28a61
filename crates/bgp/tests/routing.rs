//! Route exchange: Adj-RIBs and best path, iBGP split horizon, route
//! reflection (RFC 4456), eBGP rules, RT-constraint (RFC 4684), RFC 7606
//! error handling, RFC 6793 AS4_PATH, RFC 4724 helper and route refresh.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use filament_bgp::{
    Attrs, Core, Event, Family, Input, LabelStack, PeerConfig, RouteKey, SpeakerConfig, State,
};
use filament_wire_bgp::{
    Afi, AsPath, AsSegment, Capability, DecodeCtx, ErrorCode, GrFamily, Label, Message, MpReach,
    NextHop, Nlri, Open, Origin, PathAttr, RouteRefresh, Safi, Update, UpdateError, VpnRoute,
    AS_TRANS,
};

const RT_X: &str = "target:64512:8000001";
const RT_Y: &str = "target:64512:8000002";

#[test]
fn vpn_route_crosses_ibgp_with_rd_label_next_hop_and_target() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    want_all(&mut net, b);
    let p = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    net.input(a, Input::Advertise(p.clone()));
    net.run();
    let got = net.best(b, &p.key).expect("b learned the route");
    assert_eq!(got.labels[..], [17]);
    assert_eq!(got.attrs.next_hop, Some(ip("192.0.2.1")));
    assert_eq!(
        got.attrs
            .route_targets()
            .map(|t| t.to_string())
            .collect::<Vec<_>>(),
        vec![RT_X]
    );
    assert_eq!(got.attrs.local_pref, Some(100));
    assert!(got.attrs.as_path.0.is_empty(), "iBGP: no prepend");
    assert!(net.nodes[b].events.contains(&Event::Learned {
        peer: ip("10.0.0.1"),
        path: got
    }));
    net.input(a, Input::Withdraw(p.key.clone()));
    net.run();
    assert!(net.best(b, &p.key).is_none());
    assert!(net.nodes[b].events.contains(&Event::Withdrawn {
        peer: ip("10.0.0.1"),
        key: p.key
    }));
}

#[test]
fn ibgp_split_horizon_without_cluster_id() {
    let (mut net, a, b, c) = rr_chain(None);
    split_horizon(&mut net, a, b, c, RT_X);
}

#[test]
fn route_reflector_sets_originator_and_cluster_list() {
    let (mut net, a, _b, c) = rr_chain(Some("1.1.1.1"));
    let p = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    net.input(a, Input::Advertise(p.clone()));
    net.run();
    let got = net.best(c, &p.key).expect("reflected to the other client");
    assert_eq!(got.attrs.originator_id, Some(v4("10.0.0.1")));
    assert_eq!(got.attrs.cluster_list, vec![v4("1.1.1.1")]);
    assert_eq!(
        got.attrs.next_hop,
        Some(ip("192.0.2.1")),
        "reflection keeps the next hop"
    );
    // Not reflected back to the originator (its ORIGINATOR_ID would drop it).
    let from_b = filament_bgp::rib::Source::Peer(ip("10.0.0.2"));
    assert!(!net.nodes[a].core.rib().has(&p.key, from_b));
}

#[test]
fn ebgp_prepends_sets_next_hop_self_and_drops_local_pref_and_med() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 65001, None);
    let c = net.add("10.0.0.3", 65002, None);
    net.connect(a, b);
    net.connect(b, c);
    want_all(&mut net, b);
    want_all(&mut net, c);
    // An owner path without a next hop: next hop is a's session address.
    let mut attrs = Attrs {
        med: Some(50),
        local_pref: Some(300),
        ..Attrs::default()
    };
    attrs.ext_communities.push(
        RT_X.parse::<filament_wire_bgp::RouteTarget>()
            .unwrap()
            .into(),
    );
    let key = vpn_key("64512:1", "10.9.0.0/16");
    let p = filament_bgp::Path {
        key: key.clone(),
        labels: LabelStack::from_slice(&[30]),
        attrs: Arc::new(attrs),
    };
    net.input(a, Input::Advertise(p));
    net.run();
    let at_b = net.best(b, &key).unwrap();
    assert_eq!(
        at_b.attrs.as_path,
        AsPath(vec![AsSegment::Sequence(vec![64512])])
    );
    assert_eq!(at_b.attrs.next_hop, Some(ip("10.0.0.1")));
    assert_eq!(at_b.attrs.local_pref, None);
    assert_eq!(at_b.attrs.med, Some(50), "MED reaches the neighbouring AS");
    let at_c = net.best(c, &key).unwrap();
    assert_eq!(
        at_c.attrs.as_path,
        AsPath(vec![AsSegment::Sequence(vec![65001, 64512])])
    );
    assert_eq!(at_c.attrs.next_hop, Some(ip("10.0.0.2")), "next hop self");
    assert_eq!(at_c.attrs.med, None, "MED is not passed to a third AS");
    assert_eq!(at_c.labels[..], [30]);
    // An owner path that names its next hop (a vRouter) keeps it over eBGP.
    let q = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    net.input(a, Input::Advertise(q.clone()));
    net.run();
    assert_eq!(
        net.best(b, &q.key).unwrap().attrs.next_hop,
        Some(ip("192.0.2.1"))
    );
}

#[test]
fn rt_constraint_sends_only_requested_targets() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    let x = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    let y = vpn_path("192.0.2.1:3", "10.2.2.3/32", 18, "192.0.2.1", RT_Y);
    net.input(a, Input::Advertise(x.clone()));
    net.input(a, Input::Advertise(y.clone()));
    net.run();
    // Both negotiated route-target and b asked for nothing yet.
    assert!(net.best(b, &x.key).is_none());
    assert!(net.best(b, &y.key).is_none());
    net.input(b, Input::Advertise(rtc_path(64512, RT_X)));
    net.run();
    assert!(net.best(b, &x.key).is_some());
    assert!(net.best(b, &y.key).is_none(), "target Y was not asked for");
    net.input(b, Input::Advertise(rtc_path(64512, RT_Y)));
    net.run();
    assert!(net.best(b, &y.key).is_some());
    net.input(b, Input::Withdraw(rtc_path(64512, RT_X).key));
    net.run();
    assert!(
        net.best(b, &x.key).is_none(),
        "membership withdrawn -> route withdrawn"
    );
    // The default membership route (length 0) asks for everything.
    net.input(
        b,
        Input::Advertise(filament_bgp::Path {
            key: RouteKey::Rtc(filament_wire_bgp::RtcRoute::DEFAULT),
            labels: LabelStack::new(),
            attrs: Arc::new(Attrs::default()),
        }),
    );
    net.run();
    assert!(net.best(b, &x.key).is_some());
}

#[test]
fn peer_without_route_target_family_gets_every_vpn_route() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    let mut pa = net.peer_cfg(a, b);
    pa.families.retain(|f| *f != Family::RouteTarget);
    let mut pb = net.peer_cfg(b, a);
    pb.passive = true;
    net.input(b, Input::AddPeer(pb));
    net.input(a, Input::AddPeer(pa));
    net.run();
    let x = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    net.input(a, Input::Advertise(x.clone()));
    net.run();
    assert!(net.best(b, &x.key).is_some());
}

// ===== raw peer (the test writes the bytes) =====

struct Raw {
    core: Core,
    ctx: DecodeCtx,
    now: Instant,
    events: Vec<Event>,
}

fn raw(remote_as: u32, caps: Vec<Capability>, four_octet: bool) -> Raw {
    let mut core = Core::new(SpeakerConfig::new(64512, v4("10.0.0.1")));
    let mut p = PeerConfig::new(ip("10.0.0.9"), remote_as);
    p.passive = true;
    let now = Instant::now();
    core.handle(now, Input::AddPeer(p));
    core.handle(
        now,
        Input::Connected {
            conn: 7,
            remote: ip("10.0.0.9"),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    let mut open = Open::new(remote_as, 90, v4("10.0.0.9"), caps);
    if !four_octet {
        open.capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        open.my_as = u16::try_from(remote_as).unwrap_or(AS_TRANS);
    }
    let ctx = DecodeCtx {
        four_octet_as: four_octet,
        ..DecodeCtx::default()
    };
    core.handle(
        now,
        Input::Data {
            conn: 7,
            bytes: enc(&[Message::Open(open), Message::Keepalive], &ctx),
        },
    );
    let mut r = Raw {
        core,
        ctx,
        now,
        events: Vec::new(),
    };
    r.drain();
    assert_eq!(
        r.core.peer(&ip("10.0.0.9")).unwrap().state(),
        State::Established
    );
    r
}

impl Raw {
    fn send(&mut self, msgs: &[Message]) -> Sent {
        let bytes = enc(msgs, &self.ctx);
        self.core.handle(self.now, Input::Data { conn: 7, bytes });
        self.drain()
    }

    fn drain(&mut self) -> Sent {
        sent(&mut self.core, 7, &self.ctx, &mut self.events)
    }
}

fn mp(rd: &str, prefix: &str, label: u32) -> Nlri {
    Nlri::Vpnv4(vec![VpnRoute {
        labels: vec![Label::new(label).unwrap()].into(),
        rd: rd.parse().unwrap(),
        prefix: prefix.parse().unwrap(),
    }])
}

fn vpn_update(as_path: Vec<u32>, origin: Origin, nlri: Nlri) -> Update {
    Update {
        attrs: vec![
            PathAttr::Origin(origin),
            PathAttr::AsPath(AsPath(vec![AsSegment::Sequence(as_path)])),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V4(v4("10.0.0.9")),
                nlri,
            }),
            PathAttr::ExtCommunities(vec![RT_X
                .parse::<filament_wire_bgp::RouteTarget>()
                .unwrap()
                .into()]),
        ],
        ..Update::default()
    }
}

fn mp_caps() -> Vec<Capability> {
    vec![Capability::Multiprotocol {
        afi: Afi::Ipv4,
        safi: Safi::MplsVpn,
    }]
}

#[test]
fn rfc7606_malformed_origin_is_treat_as_withdraw() {
    let mut r = raw(65001, mp_caps(), true);
    let key = vpn_key("65001:1", "10.5.0.0/24");
    r.send(&[Message::Update(vpn_update(
        vec![65001],
        Origin::Igp,
        mp("65001:1", "10.5.0.0/24", 40),
    ))]);
    assert!(r.core.rib().best(&key).is_some());
    // Same route, ORIGIN value 5 (undefined): RFC 7606 §7.1 treat-as-withdraw.
    let mut bytes = enc(
        &[Message::Update(vpn_update(
            vec![65001],
            Origin::Igp,
            mp("65001:1", "10.5.0.0/24", 40),
        ))],
        &r.ctx,
    );
    let at = bytes
        .windows(4)
        .position(|w| w == [0x40, 0x01, 0x01, 0x00])
        .unwrap();
    bytes[at + 3] = 5;
    r.core.handle(r.now, Input::Data { conn: 7, bytes });
    let s = r.drain();
    assert!(!s.closed, "the session stays up");
    assert!(r.core.rib().best(&key).is_none());
    assert!(r.events.contains(&Event::Withdrawn {
        peer: ip("10.0.0.9"),
        key
    }));
    assert_eq!(
        r.core
            .peer(&ip("10.0.0.9"))
            .unwrap()
            .stats
            .treat_as_withdraw,
        1
    );
}

#[test]
fn rfc7606_duplicate_mp_reach_resets_with_malformed_attribute_list() {
    let mut r = raw(65001, mp_caps(), true);
    let mut u = vpn_update(vec![65001], Origin::Igp, mp("65001:1", "10.5.0.0/24", 40));
    let dup = u.attrs[2].clone();
    u.attrs.push(dup);
    let s = r.send(&[Message::Update(u)]);
    assert!(s.closed);
    assert!(s.msgs.iter().any(|m| matches!(m, Message::Notification(n)
        if n.code == ErrorCode::Update && n.subcode == u8::from(UpdateError::MalformedAttributeList))));
}

#[test]
fn ebgp_path_not_starting_with_peer_as_is_withdrawn() {
    let mut r = raw(65001, mp_caps(), true);
    let key = vpn_key("65001:1", "10.5.0.0/24");
    let s = r.send(&[Message::Update(vpn_update(
        vec![65099],
        Origin::Igp,
        mp("65001:1", "10.5.0.0/24", 40),
    ))]);
    assert!(!s.closed);
    assert!(r.core.rib().best(&key).is_none());
    assert_eq!(
        r.core
            .peer(&ip("10.0.0.9"))
            .unwrap()
            .stats
            .treat_as_withdraw,
        1
    );
}

#[test]
fn as4_path_from_an_old_speaker_is_merged() {
    let mut r = raw(65001, mp_caps(), false);
    let mut u = vpn_update(
        vec![65001, u32::from(AS_TRANS)],
        Origin::Igp,
        mp("65001:1", "10.5.0.0/24", 40),
    );
    // AS4_PATH: one sequence with 4200000000.
    let mut as4 = vec![2u8, 1];
    as4.extend_from_slice(&4_200_000_000u32.to_be_bytes());
    u.attrs.push(PathAttr::Unknown {
        flags: 0xc0,
        code: 17,
        data: as4,
    });
    r.send(&[Message::Update(u)]);
    let got = r
        .core
        .rib()
        .best(&vpn_key("65001:1", "10.5.0.0/24"))
        .unwrap()
        .path
        .clone();
    assert_eq!(
        got.attrs.as_path,
        AsPath(vec![
            AsSegment::Sequence(vec![65001]),
            AsSegment::Sequence(vec![4_200_000_000])
        ])
    );
}

#[test]
fn old_speaker_gets_as_trans_and_as4_path() {
    let mut r = raw(65001, mp_caps(), false);
    let mut p = vpn_path("64512:1", "10.6.0.0/24", 41, "192.0.2.1", RT_X);
    let mut a = (*p.attrs).clone();
    a.as_path = AsPath(vec![AsSegment::Sequence(vec![4_200_000_000])]);
    p.attrs = Arc::new(a);
    r.core.handle(r.now, Input::Advertise(p));
    let s = r.drain();
    let u = s
        .msgs
        .iter()
        .find_map(|m| match m {
            Message::Update(u) if u.attr(14).is_some() => Some(u.clone()),
            _ => None,
        })
        .unwrap();
    // Decoded as a 2-octet session: the big AS is AS_TRANS in AS_PATH.
    assert_eq!(
        u.attr(2),
        Some(&PathAttr::AsPath(AsPath(vec![AsSegment::Sequence(vec![
            64512,
            u32::from(AS_TRANS)
        ])])))
    );
    let mut as4 = vec![2u8, 2];
    as4.extend_from_slice(&64512u32.to_be_bytes());
    as4.extend_from_slice(&4_200_000_000u32.to_be_bytes());
    assert_eq!(
        u.attr(17),
        Some(&PathAttr::Unknown {
            flags: 0xc0,
            code: 17,
            data: as4
        })
    );
}

#[test]
fn graceful_restart_helper_keeps_stale_routes_until_restart_time() {
    let gr = Capability::GracefulRestart {
        flags: 0,
        restart_time: 120,
        families: vec![GrFamily {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
            flags: 0x80,
        }],
    };
    let mut caps = mp_caps();
    caps.push(gr);
    let mut r = raw(65001, caps, true);
    let key = vpn_key("65001:1", "10.5.0.0/24");
    r.send(&[Message::Update(vpn_update(
        vec![65001],
        Origin::Igp,
        mp("65001:1", "10.5.0.0/24", 40),
    ))]);
    r.events.clear();
    // TCP reset, no NOTIFICATION: the route stays (stale).
    r.core.handle(r.now, Input::Closed { conn: 7 });
    r.drain();
    assert!(r.core.rib().best(&key).is_some());
    assert!(!r
        .events
        .iter()
        .any(|e| matches!(e, Event::Withdrawn { .. })));
    // Restart time passes without the peer: the stale route goes.
    let t = r.now + Duration::from_secs(121);
    r.core.handle(t, Input::Tick);
    r.drain();
    assert!(r.core.rib().best(&key).is_none());
}

#[test]
fn end_of_rib_after_restart_removes_routes_not_refreshed() {
    let gr = Capability::GracefulRestart {
        flags: 0,
        restart_time: 120,
        families: vec![GrFamily {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
            flags: 0x80,
        }],
    };
    let mut caps = mp_caps();
    caps.push(gr.clone());
    let mut r = raw(65001, caps.clone(), true);
    let k1 = vpn_key("65001:1", "10.5.0.0/24");
    let k2 = vpn_key("65001:1", "10.6.0.0/24");
    r.send(&[Message::Update(vpn_update(
        vec![65001],
        Origin::Igp,
        mp("65001:1", "10.5.0.0/24", 40),
    ))]);
    r.send(&[Message::Update(vpn_update(
        vec![65001],
        Origin::Igp,
        mp("65001:1", "10.6.0.0/24", 41),
    ))]);
    r.core.handle(r.now, Input::Closed { conn: 7 });
    r.drain();
    // The peer comes back, re-sends only k1, then End-of-RIB.
    r.core.handle(
        r.now,
        Input::Connected {
            conn: 8,
            remote: ip("10.0.0.9"),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    let open = Open::new(65001, 90, v4("10.0.0.9"), caps);
    let bytes = enc(
        &[
            Message::Open(open),
            Message::Keepalive,
            Message::Update(vpn_update(
                vec![65001],
                Origin::Igp,
                mp("65001:1", "10.5.0.0/24", 40),
            )),
            Message::Update(filament_bgp::codec::end_of_rib(Family::InetVpn)),
        ],
        &r.ctx,
    );
    r.core.handle(r.now, Input::Data { conn: 8, bytes });
    r.drain();
    assert!(r.core.rib().best(&k1).is_some());
    assert!(
        r.core.rib().best(&k2).is_none(),
        "stale route removed at End-of-RIB"
    );
}

#[test]
fn route_refresh_resends_the_family() {
    let mut r = raw(65001, mp_caps(), true);
    r.core.handle(
        r.now,
        Input::Advertise(vpn_path("64512:1", "10.6.0.0/24", 41, "192.0.2.1", RT_X)),
    );
    let first = r.drain();
    assert!(first
        .msgs
        .iter()
        .any(|m| matches!(m, Message::Update(u) if u.attr(14).is_some())));
    let s = r.send(&[Message::RouteRefresh(RouteRefresh {
        afi: Afi::Ipv4,
        subtype: 0,
        safi: Safi::MplsVpn,
    })]);
    assert!(s
        .msgs
        .iter()
        .any(|m| matches!(m, Message::Update(u) if u.attr(14).is_some())));
}

#[test]
fn many_routes_are_packed_into_few_updates() {
    let mut r = raw(65001, mp_caps(), true);
    for i in 0..1000u32 {
        let prefix = format!("10.{}.{}.0/24", i / 256, i % 256);
        r.core.apply(
            r.now,
            Input::Advertise(vpn_path("64512:1", &prefix, 100, "192.0.2.1", RT_X)),
        );
    }
    r.core.flush();
    let s = r.drain();
    let updates = s
        .msgs
        .iter()
        .filter(|m| matches!(m, Message::Update(_)))
        .count();
    // 1000 routes of 16 octets in 4096-octet messages: a handful, not 1000.
    assert!(updates < 10, "{updates} updates");
    let n: usize = s
        .msgs
        .iter()
        .map(|m| match m {
            Message::Update(u) => match u.attr(14) {
                Some(PathAttr::MpReach(m)) => m.nlri.len(),
                _ => 0,
            },
            _ => 0,
        })
        .sum();
    assert_eq!(n, 1000);
}
