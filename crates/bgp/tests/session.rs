//! RFC 4271 §8 state machine, timers, collisions and OPEN errors, with
//! cores joined in process on a virtual clock, plus a raw peer whose bytes
//! the test writes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use filament_bgp::{Core, Event, Family, Input, PeerConfig, SpeakerConfig, State};
use filament_wire_bgp::{
    Capability, CeaseSubcode, DecodeCtx, ErrorCode, Message, Notification, Open, OpenError,
};

#[test]
fn two_speakers_reach_established_and_keep_it_with_keepalives() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    assert_eq!(net.state(a, b), State::Established);
    assert_eq!(net.state(b, a), State::Established);
    // Hold time 90 s: keepalives every 30 s keep the session up for hours.
    net.advance(Duration::from_secs(3 * 3600));
    assert_eq!(net.state(a, b), State::Established);
    let fams = net.negotiated(a, b).families.clone();
    assert_eq!(
        fams,
        vec![
            Family::Inet,
            Family::InetVpn,
            Family::Inet6Vpn,
            Family::Evpn,
            Family::RouteTarget
        ]
    );
    assert!(net.nodes[a].events.contains(&Event::PeerState {
        peer: ip("10.0.0.2"),
        state: State::Established
    }));
}

#[test]
fn hold_timer_expiry_sends_notification_and_session_recovers() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    // b goes silent: a's hold timer (90 s) expires.
    net.nodes[b].mute = true;
    net.advance(Duration::from_secs(91));
    let pa = net.peer(a, b);
    assert_ne!(pa.state(), State::Established);
    assert_eq!(pa.stats.flaps, 1);
    assert!(pa
        .stats
        .last_error
        .as_deref()
        .unwrap()
        .contains("HoldTimerExpired"));
    // b talks again: a reconnects after ConnectRetry and the session is back.
    net.nodes[b].mute = false;
    net.advance(Duration::from_secs(100));
    assert_eq!(net.state(a, b), State::Established);
}

#[test]
fn connection_collision_keeps_exactly_one_session() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    // Both active: both connect at the same moment.
    let pa = net.peer_cfg(a, b);
    let pb = net.peer_cfg(b, a);
    net.input(a, Input::AddPeer(pa));
    net.input(b, Input::AddPeer(pb));
    net.run();
    assert_eq!(net.state(a, b), State::Established);
    assert_eq!(net.state(b, a), State::Established);
    let conns_a = &net.peer(a, b).conns;
    assert_eq!(conns_a.len(), 1, "one connection survives");
    // RFC 4271 §6.8: the connection initiated by the higher id (10.0.0.2) wins.
    assert!(!conns_a[0].outgoing);
    net.advance(Duration::from_secs(600));
    assert_eq!(net.state(a, b), State::Established);
}

#[test]
fn unknown_source_address_is_refused() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    // a knows b, b does not know a.
    let pa = net.peer_cfg(a, b);
    net.input(a, Input::AddPeer(pa));
    net.run();
    assert_eq!(net.nodes[b].core.rejected_connections, 1);
    assert_ne!(net.state(a, b), State::Established);
}

fn raw_core() -> (Core, DecodeCtx) {
    let mut cfg = SpeakerConfig::new(64512, v4("10.0.0.1"));
    cfg.hold_time = 90;
    let mut core = Core::new(cfg);
    let mut p = PeerConfig::new(ip("10.0.0.9"), 65001);
    p.passive = true;
    core.handle(common_now(), Input::AddPeer(p));
    core.handle(
        common_now(),
        Input::Connected {
            conn: 7,
            remote: ip("10.0.0.9"),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    (core, DecodeCtx::default())
}

fn common_now() -> std::time::Instant {
    std::time::Instant::now()
}

#[test]
fn open_from_the_wrong_as_gets_bad_peer_as() {
    let (mut core, ctx) = raw_core();
    let mut ev = Vec::new();
    let s = sent(&mut core, 7, &ctx, &mut ev);
    let Message::Open(ours) = &s.msgs[0] else {
        panic!("expected OPEN")
    };
    assert_eq!(ours.asn(), 64512);
    assert_eq!(ours.hold_time, 90);
    assert!(ours.capabilities.contains(&Capability::RouteRefresh));
    // RFC 4271 §6.2: Bad Peer AS, data = the 2-octet AS field.
    let open = Open::new(65002, 90, v4("10.0.0.9"), vec![]);
    core.handle(
        common_now(),
        Input::Data {
            conn: 7,
            bytes: enc(&[Message::Open(open)], &ctx),
        },
    );
    let s = sent(&mut core, 7, &ctx, &mut ev);
    assert_eq!(
        s.msgs,
        vec![Message::Notification(Notification {
            code: ErrorCode::Open,
            subcode: OpenError::BadPeerAs.into(),
            data: 65002u16.to_be_bytes().to_vec(),
        })]
    );
    assert!(s.closed);
}

#[test]
fn hold_time_is_the_smaller_one_and_keepalive_a_third() {
    let (mut core, ctx) = raw_core();
    let mut ev = Vec::new();
    sent(&mut core, 7, &ctx, &mut ev);
    let t0 = common_now();
    let open = Open::new(65001, 9, v4("10.0.0.9"), vec![]);
    core.handle(
        t0,
        Input::Data {
            conn: 7,
            bytes: enc(&[Message::Open(open)], &ctx),
        },
    );
    let s = sent(&mut core, 7, &ctx, &mut ev);
    assert_eq!(s.msgs, vec![Message::Keepalive]);
    core.handle(
        t0,
        Input::Data {
            conn: 7,
            bytes: enc(&[Message::Keepalive], &ctx),
        },
    );
    let p = core.peer(&ip("10.0.0.9")).unwrap();
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.negotiated().unwrap().hold_time, 9);
    // A peer without MP capabilities speaks IPv4 unicast only (RFC 4760 §8);
    // we did not offer inet to it, so nothing is common.
    assert!(p.negotiated().unwrap().families.is_empty());
    // Keepalive due after 3 s; hold expiry after 9 s of silence.
    let t = core.poll_timeout().unwrap();
    assert_eq!(t.duration_since(t0), Duration::from_secs(3));
    core.handle(t, Input::Tick);
    let s = sent(&mut core, 7, &ctx, &mut ev);
    assert!(s.msgs.contains(&Message::Keepalive));
    core.handle(t0 + Duration::from_secs(9), Input::Tick);
    let s = sent(&mut core, 7, &ctx, &mut ev);
    assert!(s.closed);
    assert!(s
        .msgs
        .iter()
        .any(|m| matches!(m, Message::Notification(n) if n.code == ErrorCode::HoldTimerExpired)));
}

#[test]
fn update_in_open_confirm_is_an_fsm_error() {
    let (mut core, ctx) = raw_core();
    let mut ev = Vec::new();
    sent(&mut core, 7, &ctx, &mut ev);
    let open = Open::new(65001, 90, v4("10.0.0.9"), vec![]);
    let upd = Message::Update(Default::default());
    core.handle(
        common_now(),
        Input::Data {
            conn: 7,
            bytes: enc(&[Message::Open(open), upd], &ctx),
        },
    );
    let s = sent(&mut core, 7, &ctx, &mut ev);
    // RFC 6608: FSM error, subcode 2 = unexpected message in OpenConfirm.
    assert!(s.msgs.contains(&Message::Notification(Notification {
        code: ErrorCode::Fsm,
        subcode: 2,
        data: vec![],
    })));
    assert!(s.closed);
}

#[test]
fn bad_marker_gets_connection_not_synchronized() {
    let (mut core, ctx) = raw_core();
    let mut ev = Vec::new();
    sent(&mut core, 7, &ctx, &mut ev);
    let mut bytes = enc(&[Message::Keepalive], &ctx);
    bytes[0] = 0;
    core.handle(common_now(), Input::Data { conn: 7, bytes });
    let s = sent(&mut core, 7, &ctx, &mut ev);
    assert_eq!(
        s.msgs,
        vec![Message::Notification(Notification {
            code: ErrorCode::MessageHeader,
            subcode: 1,
            data: vec![]
        })]
    );
    assert_eq!(core.peer(&ip("10.0.0.9")).unwrap().stats.malformed, 1);
}

#[test]
fn removing_a_peer_sends_cease_deconfigured() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    net.input(a, Input::RemovePeer(ip("10.0.0.2")));
    net.run();
    let pb = net.nodes[b].core.peer(&ip("10.0.0.1")).unwrap();
    assert_ne!(pb.state(), State::Established);
    let want = format!(
        "received Cease/{}",
        u8::from(CeaseSubcode::PeerDeconfigured)
    );
    assert!(
        pb.stats.last_error.as_deref().unwrap().contains(&want),
        "{:?}",
        pb.stats.last_error
    );
}
