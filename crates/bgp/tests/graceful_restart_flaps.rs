//! Graceful restart when the restarting peer is lost again before it is back
//! in sync (TF's nested close, `PeerCloseManager::CloseInternal`; RFC 9494
//! §4.2 for the long-lived timers), on the sans-IO core with a virtual clock.
#![allow(clippy::unwrap_used)]

mod common;
mod gr_util;

use std::time::Instant;

use common::*;
use filament_bgp::{Core, Family, Input, PeerConfig};
use filament_wire_bgp::{
    Afi, AsPath, AsSegment, Capability, Label, LlgrFamily, Message, MpReach, NextHop, Nlri, Origin,
    PathAttr, Safi, Update, VpnRoute,
};
use gr_util::*;

/// TF's nested close (`PeerCloseManager::CloseInternal` in GR_TIMER): lost,
/// back without End-of-RIB, lost again: the stale paths go when the first
/// restart time runs out, not a restart time after the second loss (they
/// were kept as long as the peer flapped faster than its restart time).
#[test]
fn a_loss_during_the_restart_counts_the_restart_time_from_the_first_loss() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 0), t0);
    connect(&mut c, t0, R, 65001, 1, vec![gr_cap(60)]);
    feed(
        &mut c,
        t0,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    c.handle(t0, Input::Closed { conn: 1 });
    assert_eq!(c.poll_timeout(), Some(at(t0, 60)));
    // A connection that never reaches Established is no close at all (TF:
    // flap count unchanged): nothing moves.
    let t = at(t0, 20);
    c.handle(
        t,
        Input::Connected {
            conn: 2,
            remote: ip(R),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    c.handle(t, Input::Closed { conn: 2 });
    assert_eq!(status(&c, t).stale, 1);
    // Back at 40 s: re-sends 10.2/16 only, no End-of-RIB; lost at 50 s.
    let t1 = at(t0, 40);
    connect(&mut c, t1, R, 65001, 3, vec![gr_cap(60)]);
    feed(
        &mut c,
        t1,
        3,
        &[Message::Update(update("10.2.0.0/16", 65001, vec![]))],
    );
    assert_eq!(*status(&c, t1).stale_keys, vec![key("10.1.0.0/16")]);
    let t2 = at(t0, 50);
    c.handle(t2, Input::Closed { conn: 3 });
    let st = status(&c, t2);
    assert_eq!((st.stale, st.gr_state), (2, Some("GR_TIMER")));
    let why = st.stats.last_error.unwrap();
    assert!(
        why.ends_with("2 paths kept stale for up to 10 s (lost again during the restart)"),
        "{why}"
    );
    assert_eq!(c.poll_timeout(), Some(at(t0, 60)), "not 50 + 60 s");
    c.handle(at(t0, 59), Input::Tick);
    assert!(present(&c, "10.1.0.0/16") && present(&c, "10.2.0.0/16"));
    c.handle(at(t0, 60), Input::Tick);
    assert!(!present(&c, "10.1.0.0/16") && !present(&c, "10.2.0.0/16"));
    assert_eq!(status(&c, at(t0, 60)).gr_state, None);

    // The next loss (the peer was in sync: nothing stale) starts afresh.
    let t3 = at(t0, 100);
    connect(&mut c, t3, R, 65001, 4, vec![gr_cap(60)]);
    feed(
        &mut c,
        t3,
        4,
        &[Message::Update(update("10.3.0.0/16", 65001, vec![]))],
    );
    c.handle(at(t0, 110), Input::Closed { conn: 4 });
    assert_eq!(c.poll_timeout(), Some(at(t0, 170)));
}

/// RFC 9494 §4.2: a loss during LLGR does not update the running long-lived
/// timer ("MUST NOT be updated ... until the peer has established and
/// synchronized a new session"); what the new session sent gets a restart
/// time (TF: a new GR_TIMER), then is LLGR-stale until the same deadline.
#[test]
fn a_loss_during_llgr_keeps_the_long_lived_timer_running() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 600), t0);
    let caps = vec![gr_cap(10), llgr_cap(100)];
    connect(&mut c, t0, R, 65001, 1, caps.clone());
    feed(
        &mut c,
        t0,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    c.handle(t0, Input::Closed { conn: 1 });
    c.handle(at(t0, 10), Input::Tick);
    assert_eq!(status(&c, at(t0, 10)).gr_state, Some("LLGR_TIMER"));
    assert_eq!(c.poll_timeout(), Some(at(t0, 110)));
    // Back at 50 s with 10.2/16 only; lost at 60 s before End-of-RIB.
    connect(&mut c, at(t0, 50), R, 65001, 2, caps);
    feed(
        &mut c,
        at(t0, 50),
        2,
        &[Message::Update(update("10.2.0.0/16", 65001, vec![]))],
    );
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(true));
    c.handle(at(t0, 60), Input::Closed { conn: 2 });
    let st = status(&c, at(t0, 60));
    assert_eq!((st.stale, st.gr_state), (2, Some("GR_TIMER")));
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(true));
    assert_eq!(llgr_stale(&c, &key("10.2.0.0/16")), Some(false));
    assert_eq!(c.poll_timeout(), Some(at(t0, 70)));
    c.handle(at(t0, 70), Input::Tick);
    assert_eq!(llgr_stale(&c, &key("10.2.0.0/16")), Some(true));
    assert_eq!(status(&c, at(t0, 70)).gr_state, Some("LLGR_TIMER"));
    // The long-lived deadline is still 10 + 100 s.
    assert_eq!(c.poll_timeout(), Some(at(t0, 110)));
    c.handle(at(t0, 109), Input::Tick);
    assert!(present(&c, "10.1.0.0/16") && present(&c, "10.2.0.0/16"));
    c.handle(at(t0, 110), Input::Tick);
    assert!(!present(&c, "10.1.0.0/16") && !present(&c, "10.2.0.0/16"));
    assert_eq!(status(&c, at(t0, 110)).gr_state, None);
}

const V4: (Afi, Safi) = (Afi::Ipv4, Safi::MplsVpn);
const V6: (Afi, Safi) = (Afi::Ipv6, Safi::MplsVpn);

/// A core whose restarting peer R carries VPNv4 and VPNv6 (LLGR with `v4` / `v6`
/// seconds of long-lived time, restart time 10 s), connected on `conn` 1 with its
/// capabilities (returned, for the next session).
fn two_family_core(t0: Instant, v4: u32, v6: u32) -> (Core, Vec<Capability>) {
    let mut c = Core::new(sc(true, 90, 600));
    let mut p = PeerConfig::new(ip(R), 65001);
    p.passive = true;
    p.families = vec![Family::InetVpn, Family::Inet6Vpn];
    c.handle(t0, Input::AddPeer(p));
    let llgr = |(afi, safi): (Afi, Safi), stale_time| LlgrFamily {
        afi,
        safi,
        flags: 0x80,
        stale_time,
    };
    let caps = vec![
        gr_fams(10, &[(V4.0, V4.1, 0x80), (V6.0, V6.1, 0x80)]),
        Capability::LongLivedGracefulRestart(vec![llgr(V4, v4), llgr(V6, v6)]),
    ];
    connect_mp(&mut c, t0, R, 65001, 1, &[V4, V6], caps.clone());
    (c, caps)
}

/// A VPNv6 UPDATE from R for `prefix` (RD 65001:1).
fn update6(prefix: &str) -> Message {
    Message::Update(Update {
        attrs: vec![
            PathAttr::Origin(Origin::Igp),
            PathAttr::AsPath(AsPath(vec![AsSegment::Sequence(vec![65001])])),
            PathAttr::MpReach(MpReach {
                next_hop: NextHop::V6 {
                    global: "2001:db8::9".parse().unwrap(),
                    link_local: None,
                },
                nlri: Nlri::Vpnv6(vec![VpnRoute {
                    labels: vec![Label::new(41).unwrap()].into(),
                    rd: "65001:1".parse().unwrap(),
                    prefix: prefix.parse().unwrap(),
                }]),
            }),
        ],
        ..Update::default()
    })
}

/// RFC 9494 §4.2: a family's long-lived timer runs "until EoR is received for the
/// relevant AFI/SAFI": lost again after the VPNv4 End-of-RIB (VPNv6 still stale),
/// the re-sent VPNv4 path gets a long-lived time of its own; VPNv6 keeps its deadline.
#[test]
fn end_of_rib_ends_a_familys_long_lived_timer_before_the_next_loss() {
    let t0 = Instant::now();
    let (mut c, caps) = two_family_core(t0, 100, 100);
    let a = Message::Update(update("10.1.0.0/16", 65001, vec![]));
    feed(&mut c, t0, 1, &[a.clone(), update6("2001:db8:1::/48")]);
    let k6 = key("2001:db8:1::/48");
    c.handle(t0, Input::Closed { conn: 1 });
    c.handle(at(t0, 10), Input::Tick);
    assert_eq!(status(&c, at(t0, 10)).gr_state, Some("LLGR_TIMER"));
    // back at 50 s: VPNv4 re-sent and its End-of-RIB; VPNv6 not; lost at 60 s
    connect_mp(&mut c, at(t0, 50), R, 65001, 2, &[V4, V6], caps);
    let eor = filament_bgp::codec::end_of_rib(Family::InetVpn);
    feed(&mut c, at(t0, 50), 2, &[a, Message::Update(eor)]);
    assert_eq!(*status(&c, at(t0, 50)).stale_keys, vec![k6.clone()]);
    c.handle(at(t0, 60), Input::Closed { conn: 2 });
    c.handle(at(t0, 70), Input::Tick);
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(true));
    c.handle(at(t0, 110), Input::Tick);
    assert!(c.rib().best(&k6).is_none(), "VPNv6: the first deadline");
    assert!(present(&c, "10.1.0.0/16"), "VPNv4: 70 + 100 s");
    c.handle(at(t0, 170), Input::Tick);
    assert!(!present(&c, "10.1.0.0/16"));
    assert_eq!(status(&c, at(t0, 170)).gr_state, None);
}

/// RFC 9494 §4.2: "If the session subsequently resets prior to becoming synchronized,
/// any remaining routes (for the AFI/SAFI whose LLST timer expired) MUST be removed
/// immediately": VPNv4's long-lived time runs out while R is back without its VPNv4
/// End-of-RIB; lost again, its re-sent VPNv4 path goes at once (VPNv6, whose timer
/// still runs, stays).
#[test]
fn a_loss_after_a_familys_long_lived_time_ran_out_unsynchronized_drops_it() {
    let t0 = Instant::now();
    let (mut c, caps) = two_family_core(t0, 100, 300);
    let a = Message::Update(update("10.1.0.0/16", 65001, vec![]));
    feed(&mut c, t0, 1, &[a.clone(), update6("2001:db8:1::/48")]);
    let k6 = key("2001:db8:1::/48");
    c.handle(t0, Input::Closed { conn: 1 });
    c.handle(at(t0, 10), Input::Tick);
    // back at 50 s: re-sends the VPNv4 path only, no End-of-RIB
    connect_mp(&mut c, at(t0, 50), R, 65001, 2, &[V4, V6], caps);
    feed(&mut c, at(t0, 50), 2, &[a]);
    c.handle(at(t0, 110), Input::Tick);
    assert!(present(&c, "10.1.0.0/16"), "refreshed: not stale");
    assert!(c.rib().best(&k6).is_some(), "VPNv6: until 310 s");
    c.handle(at(t0, 120), Input::Closed { conn: 2 });
    assert!(!present(&c, "10.1.0.0/16"), "VPNv4 removed at once");
    assert!(c.rib().best(&k6).is_some());
    assert_eq!(*status(&c, at(t0, 120)).stale_keys, vec![k6.clone()]);
    c.handle(at(t0, 310), Input::Tick);
    assert!(c.rib().best(&k6).is_none());
}
