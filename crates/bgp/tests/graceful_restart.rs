//! Graceful restart as TF configures it, on the sans-IO core with a virtual
//! clock: helper mode on and off (RFC 4724 §4.2, TF's `bgp_helper_enable`),
//! the GR and LLGR capabilities we send (TF's `AddGRCapabilities` /
//! `AddLLGRCapabilities`), and the long-lived GR timeline (RFC 9494): stale,
//! then LLGR-stale with LLGR_STALE attached and ranked last, NO_LLGR paths
//! dropped, not exported to external peers without LLGR (to internal ones
//! with NO_EXPORT and LOCAL_PREF 0, RFC 9494 §4.6), gone after the long-lived
//! stale time or refreshed by the restarted peer and its End-of-RIB; the new
//! session's OPEN (RFC 4724 §4.2 per family, TF's `IsGRReady` for the whole
//! restart). A loss during the restart: `graceful_restart_flaps.rs`.
#![allow(clippy::unwrap_used)]

mod common;
mod gr_util;

use std::time::{Duration, Instant};

use common::*;
use filament_bgp::{Core, Family, Input, PeerConfig};
use filament_wire_bgp::{
    Afi, AsPath, AsSegment, Capability, GrFamily, Label, Message, Nlri, PathAttr, Safi, Update,
    VpnRoute, LLGR_STALE, NO_EXPORT, NO_LLGR,
};
use gr_util::*;

#[test]
fn helper_off_a_lost_session_removes_its_paths_at_once() {
    let now = Instant::now();
    let mut c = core(sc(false, 0, 0), now);
    connect(&mut c, now, R, 65001, 1, vec![gr_cap(120)]);
    feed(
        &mut c,
        now,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    assert!(c.rib().best(&key("10.1.0.0/16")).is_some());
    c.handle(now, Input::Closed { conn: 1 });
    assert!(
        c.rib().best(&key("10.1.0.0/16")).is_none(),
        "no helper: gone"
    );
    assert_eq!(status(&c, now).stale, 0);
    assert_eq!(status(&c, now).gr_state, None);

    // The same with the helper on keeps it stale, and its key is reported.
    let mut c = core(sc(true, 0, 0), now);
    connect(&mut c, now, R, 65001, 1, vec![gr_cap(120)]);
    feed(
        &mut c,
        now,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    c.handle(now, Input::Closed { conn: 1 });
    let st = status(&c, now);
    assert_eq!((st.stale, st.gr_state), (1, Some("GR_TIMER")));
    assert_eq!(*st.stale_keys, vec![key("10.1.0.0/16")]);
    // listed once while unchanged
    assert!(std::sync::Arc::ptr_eq(
        &st.stale_keys,
        &status(&c, now).stale_keys
    ));
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(false));
}

#[test]
fn our_open_carries_what_tf_sends() {
    let now = Instant::now();
    // GR disabled (TF: enable false): time 0, no families, no LLGR; R bit on
    // the first session.
    let mut c = core(sc(false, 0, 300), now);
    let o = connect(&mut c, now, R, 65001, 1, vec![]);
    let gr: Vec<_> = o
        .capabilities
        .iter()
        .filter(|c| {
            matches!(
                c,
                Capability::GracefulRestart { .. } | Capability::LongLivedGracefulRestart(_)
            )
        })
        .collect();
    assert_eq!(
        gr,
        vec![&Capability::GracefulRestart {
            flags: 0x8,
            restart_time: 0,
            families: vec![]
        }]
    );
    // Enabled: our families with the F bit, and LLGR with its time.
    let mut c = core(sc(true, 90, 600), now);
    let o = connect(&mut c, now, R, 65001, 1, vec![]);
    assert!(o.capabilities.contains(&Capability::GracefulRestart {
        flags: 0x8,
        restart_time: 90,
        families: vec![GrFamily {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
            flags: 0x80
        }]
    }));
    assert!(o.capabilities.contains(&llgr_cap(600)));
    // After a flap the R bit is clear.
    c.handle(now, Input::Closed { conn: 1 });
    let o = connect(&mut c, now, R, 65001, 2, vec![]);
    assert!(o.capabilities.iter().any(|c| matches!(
        c,
        Capability::GracefulRestart {
            flags: 0,
            restart_time: 90,
            ..
        }
    )));
}

#[test]
fn llgr_timeline_stale_then_llgr_stale_then_gone() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 600), t0);
    connect(&mut c, t0, R, 65001, 1, vec![gr_cap(60), llgr_cap(3600)]);
    // the observer negotiated LLGR too
    connect(&mut c, t0, O, 65002, 2, vec![gr_cap(120), llgr_cap(100)]);
    feed(
        &mut c,
        t0,
        1,
        &[
            Message::Update(update("10.1.0.0/16", 65001, vec![])),
            Message::Update(update("10.2.0.0/16", 65001, vec![NO_LLGR])),
        ],
    );
    let mut ev = Vec::new();
    sent(&mut c, 2, &ctx(), &mut ev);
    c.handle(t0, Input::Closed { conn: 1 });
    assert_eq!(status(&c, t0).gr_state, Some("GR_TIMER"));
    assert_eq!(status(&c, t0).stale, 2);
    c.handle(t0 + Duration::from_secs(59), Input::Tick);
    assert_eq!(status(&c, t0).gr_state, Some("GR_TIMER"));
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(false));

    // Restart time over, peer not back: LLGR. The NO_LLGR path goes, the
    // other is re-installed with LLGR_STALE, and sent so to the LLGR peer.
    let t1 = t0 + Duration::from_secs(60);
    c.handle(t1, Input::Tick);
    let s = sent(&mut c, 2, &ctx(), &mut ev);
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(true));
    assert!(
        c.rib().best(&key("10.2.0.0/16")).is_none(),
        "NO_LLGR: deleted"
    );
    let st = status(&c, t1);
    assert_eq!((st.gr_state, st.stale), (Some("LLGR_TIMER"), 1));
    let to_observer: Vec<&Update> = s
        .msgs
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect();
    assert!(
        to_observer
            .iter()
            .any(|u| u.attrs.iter().any(|a| matches!(a,
            PathAttr::Communities(c) if c.contains(&LLGR_STALE)))),
        "the LLGR peer hears the path with LLGR_STALE: {to_observer:?}"
    );
    // Long-lived stale time: ours (600 s) caps the peer's 3600 s.
    c.handle(t1 + Duration::from_secs(599), Input::Tick);
    assert!(c.rib().best(&key("10.1.0.0/16")).is_some());
    c.handle(t1 + Duration::from_secs(600), Input::Tick);
    assert!(c.rib().best(&key("10.1.0.0/16")).is_none());
    assert_eq!(status(&c, t1).gr_state, None);
}

#[test]
fn zero_restart_time_goes_straight_to_llgr_and_end_of_rib_refreshes() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 600), t0);
    let caps = vec![gr_cap(0), llgr_cap(300)];
    connect(&mut c, t0, R, 65001, 1, caps.clone());
    feed(
        &mut c,
        t0,
        1,
        &[
            Message::Update(update("10.1.0.0/16", 65001, vec![])),
            Message::Update(update("10.3.0.0/16", 65001, vec![])),
        ],
    );
    c.handle(t0, Input::Closed { conn: 1 });
    assert_eq!(status(&c, t0).gr_state, Some("LLGR_TIMER"));
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(true));
    // Back: re-sends 10.1/16 only, then End-of-RIB: that one is fresh again
    // (no LLGR_STALE), 10.3/16 is swept.
    let t1 = t0 + Duration::from_secs(30);
    connect(&mut c, t1, R, 65001, 3, caps);
    feed(
        &mut c,
        t1,
        3,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(false));
    assert_eq!(*status(&c, t1).stale_keys, vec![key("10.3.0.0/16")]);
    let eor = filament_bgp::codec::end_of_rib(Family::InetVpn);
    feed(&mut c, t1, 3, &[Message::Update(eor)]);
    assert!(c.rib().best(&key("10.3.0.0/16")).is_none());
    assert!(c.rib().best(&key("10.1.0.0/16")).is_some());
    assert_eq!(status(&c, t1).gr_state, None);
}

#[test]
fn llgr_stale_ranks_last_and_skips_peers_without_llgr() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 600), t0);
    connect(&mut c, t0, R, 65001, 1, vec![gr_cap(10), llgr_cap(300)]);
    // the observer has no LLGR capability, and its own path for 10.1/16 has
    // a longer AS path: it loses while R's path is fresh or GR-stale
    connect(&mut c, t0, O, 65002, 2, vec![]);
    feed(
        &mut c,
        t0,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    let mut longer = update("10.1.0.0/16", 65002, vec![]);
    longer.attrs[1] =
        PathAttr::AsPath(AsPath(vec![AsSegment::Sequence(vec![65002, 65009, 65010])]));
    feed(&mut c, t0, 2, &[Message::Update(longer)]);
    let k = key("10.1.0.0/16");
    let from = |c: &Core| c.rib().candidates(&k).len();
    assert_eq!(from(&c), 2);
    let mut ev = Vec::new();
    let first = sent(&mut c, 2, &ctx(), &mut ev);
    assert!(!first.msgs.is_empty(), "R's path went to the observer");
    c.handle(t0, Input::Closed { conn: 1 });
    // GR-stale ranks like fresh (TF): R's shorter path is still best.
    assert_eq!(c.rib().best(&k).unwrap().path.attrs.as_path_len(), 1);
    // LLGR-stale ranks last: the observer's path wins.
    c.handle(t0 + Duration::from_secs(10), Input::Tick);
    assert_eq!(c.rib().best(&k).unwrap().path.attrs.as_path_len(), 3);
    assert_eq!(status(&c, t0).gr_state, Some("LLGR_TIMER"));
    // Only path left is the LLGR-stale one once the observer withdraws: it
    // is best here, but not sent to the observer (no LLGR capability).
    let wd = Update {
        attrs: vec![PathAttr::MpUnreach(filament_wire_bgp::MpUnreach {
            withdrawn: Nlri::Vpnv4(vec![VpnRoute {
                labels: vec![Label::new(0x80000).unwrap()].into(),
                rd: "65001:1".parse().unwrap(),
                prefix: "10.1.0.0/16".parse().unwrap(),
            }]),
        })],
        ..Update::default()
    };
    feed(&mut c, t0, 2, &[Message::Update(wd)]);
    assert_eq!(llgr_stale(&c, &k), Some(true));
    let s = sent(&mut c, 2, &ctx(), &mut ev);
    let announced = s.msgs.iter().any(|m| {
        matches!(m, Message::Update(u)
        if u.attrs.iter().any(|a| matches!(a, PathAttr::MpReach(_))))
    });
    assert!(
        !announced,
        "no LLGR-stale path to a peer without LLGR: {:?}",
        s.msgs
    );
}

/// The restarting peer's new session: RFC 4724 §4.2 per family, and TF's
/// `BgpPeerClose::IsGRReady` re-run on the new OPEN, which ends the whole
/// restart (every stale path goes at once) on any failed check.
#[test]
fn the_new_open_decides_which_stale_paths_stay() {
    const V4: (Afi, Safi) = (Afi::Ipv4, Safi::MplsVpn);
    const V6: (Afi, Safi) = (Afi::Ipv6, Safi::MplsVpn);
    let both = [V4, V6];
    let f = |(afi, safi): (Afi, Safi), flags| (afi, safi, flags);
    let full = gr_fams(60, &[f(V4, 0x80), f(V6, 0x80)]);
    // (case, the new OPEN's MP families, its GR capabilities, helper still
    // on, why the restart ends if it does)
    type Case<'a> = (
        &'a str,
        Vec<(Afi, Safi)>,
        Vec<Capability>,
        bool,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("kept: both families listed with the F bit", both.to_vec(), vec![full.clone()], true, None),
        ("no GR capability", both.to_vec(), vec![], true,
         Some("graceful restart ended: no graceful restart capability in the new OPEN; 1 stale paths removed")),
        ("GR capability without families", both.to_vec(), vec![gr_fams(60, &[])], true,
         Some("graceful restart ended: the new graceful restart capability lists no family; 1 stale paths removed")),
        ("VPNv4 not listed", both.to_vec(), vec![gr_fams(60, &[f(V6, 0x80)])], true,
         Some("graceful restart ended: the graceful restart families differ from the negotiated ones; 1 stale paths removed")),
        ("VPNv4 without the F bit", both.to_vec(), vec![gr_fams(60, &[f(V4, 0), f(V6, 0x80)])], true,
         Some("graceful restart ended: forwarding state not preserved for inet-vpn; 1 stale paths removed")),
        // TF's checks beyond RFC 4724's per-family rule: VPNv4 is preserved
        // in each of these, the restart ends all the same.
        ("VPNv6 without the F bit", both.to_vec(), vec![gr_fams(60, &[f(V4, 0x80), f(V6, 0)])], true,
         Some("graceful restart ended: forwarding state not preserved for inet6-vpn; 1 stale paths removed")),
        ("restart time 0, no LLGR", both.to_vec(), vec![gr_fams(0, &[f(V4, 0x80), f(V6, 0x80)])], true,
         Some("graceful restart ended: restart time 0 without long-lived graceful restart; 1 stale paths removed")),
        ("VPNv6 no longer negotiated", vec![V4], vec![gr_fams(60, &[f(V4, 0x80)])], true,
         Some("graceful restart ended: the negotiated families differ from the lost session's; 1 stale paths removed")),
        ("helper turned off meanwhile", both.to_vec(), vec![full.clone()], false,
         Some("graceful restart ended: helper mode is off; 1 stale paths removed")),
    ];
    for (name, mps, caps, helper, why) in cases {
        let t0 = Instant::now();
        let mut c = Core::new(sc(true, 90, 0));
        let mut p = PeerConfig::new(ip(R), 65001);
        p.passive = true;
        p.families = vec![Family::InetVpn, Family::Inet6Vpn];
        c.handle(t0, Input::AddPeer(p));
        connect_mp(&mut c, t0, R, 65001, 1, &both, vec![full.clone()]);
        feed(
            &mut c,
            t0,
            1,
            &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
        );
        c.handle(t0, Input::Closed { conn: 1 });
        assert_eq!(status(&c, t0).stale, 1, "{name}");
        if !helper {
            c.handle(t0, Input::Reconfigure(sc(false, 90, 0)));
        }
        connect_mp(&mut c, at(t0, 5), R, 65001, 2, &mps, caps);
        let st = status(&c, at(t0, 5));
        assert_eq!(present(&c, "10.1.0.0/16"), why.is_none(), "{name}");
        assert_eq!(st.stale, usize::from(why.is_none()), "{name}");
        if let Some(why) = why {
            assert_eq!(st.stats.last_error.as_deref(), Some(why), "{name}");
            assert_eq!(st.gr_state, None, "{name}");
            let p = c.peer(&ip(R)).unwrap();
            assert!(
                p.stale_until.is_none() && p.gr_since.is_none(),
                "{name}: no GR timer left"
            );
        } else {
            // kept until End-of-RIB (RFC 4724 §4.2)
            let eor = filament_bgp::codec::end_of_rib(Family::InetVpn);
            feed(&mut c, at(t0, 6), 2, &[Message::Update(eor)]);
            assert!(!present(&c, "10.1.0.0/16"), "{name}: swept at End-of-RIB");
        }
    }
}

/// RFC 4724 §4.2: "If the session does not get re-established within the
/// "Restart Time" that the peer advertised previously, the Receiving Speaker
/// MUST delete all the stale routes": here with the peer still away and a
/// session attempt that never reached Established in between.
#[test]
fn the_restart_time_runs_out_without_the_peer() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 0), t0);
    connect(&mut c, t0, R, 65001, 1, vec![gr_cap(30)]);
    feed(
        &mut c,
        t0,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    c.handle(t0, Input::Closed { conn: 1 });
    c.handle(at(t0, 29), Input::Tick);
    assert!(present(&c, "10.1.0.0/16"));
    c.handle(at(t0, 30), Input::Tick);
    assert!(!present(&c, "10.1.0.0/16"));
    let st = status(&c, at(t0, 30));
    assert_eq!((st.stale, st.gr_state), (0, None));
}

/// RFC 9494 §4.6 partial deployment: an LLGR-stale path goes to an internal
/// peer without LLGR with NO_EXPORT and LOCAL_PREF 0 (LLGR_STALE kept,
/// §4.3), to an internal LLGR peer as it is, to an external peer without
/// LLGR not at all (withdrawn). RFC 1997: NO_EXPORT keeps a path from
/// external peers.
#[test]
fn llgr_stale_paths_reach_internal_peers_without_llgr_with_no_export() {
    const I: &str = "10.0.0.7"; // iBGP, no LLGR
    const L: &str = "10.0.0.6"; // iBGP, LLGR
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 600), t0);
    for a in [I, L] {
        let mut p = PeerConfig::new(ip(a), 64512);
        p.passive = true;
        p.families = vec![Family::InetVpn];
        c.handle(t0, Input::AddPeer(p));
    }
    connect(&mut c, t0, R, 65001, 1, vec![gr_cap(10), llgr_cap(300)]);
    connect(&mut c, t0, O, 65002, 2, vec![]);
    connect(&mut c, t0, I, 64512, 3, vec![]);
    connect(&mut c, t0, L, 64512, 4, vec![gr_cap(120), llgr_cap(100)]);
    feed(
        &mut c,
        t0,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    let from_i = |prefix, comms| {
        let mut u = update(prefix, 65001, comms);
        u.attrs[1] = PathAttr::AsPath(AsPath(vec![]));
        u.attrs.push(PathAttr::LocalPref(100));
        Message::Update(u)
    };
    let (no_export, plain) = (
        from_i("10.5.0.0/16", vec![NO_EXPORT]),
        from_i("10.6.0.0/16", vec![]),
    );
    feed(&mut c, t0, 3, &[no_export, plain]);
    let to_o: Vec<String> = announced(&sent_by_conn(&mut c).remove(&2).unwrap_or_default())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(to_o.contains(&"10.1.0.0/16".to_string()), "{to_o:?}");
    assert!(to_o.contains(&"10.6.0.0/16".to_string()), "{to_o:?}");
    assert!(
        !to_o.contains(&"10.5.0.0/16".to_string()),
        "NO_EXPORT: {to_o:?}"
    );

    // R lost, restart time over: LLGR-stale.
    c.handle(t0, Input::Closed { conn: 1 });
    sent_by_conn(&mut c);
    c.handle(at(t0, 10), Input::Tick);
    assert_eq!(llgr_stale(&c, &key("10.1.0.0/16")), Some(true));
    let out = sent_by_conn(&mut c);
    let attrs_to = |out: &std::collections::HashMap<u64, Vec<Message>>, conn| {
        announced(out.get(&conn).map(Vec::as_slice).unwrap_or_default())
            .into_iter()
            .find(|(p, _)| p == "10.1.0.0/16")
            .map(|(_, a)| a)
    };
    let comms = |a: &[PathAttr]| {
        a.iter()
            .find_map(|x| match x {
                PathAttr::Communities(c) => Some(c.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let lp = |a: &[PathAttr]| {
        a.iter().find_map(|x| match x {
            PathAttr::LocalPref(l) => Some(*l),
            _ => None,
        })
    };
    let to_i = attrs_to(&out, 3).expect("sent to the internal peer without LLGR");
    assert!(comms(&to_i).contains(&NO_EXPORT), "{to_i:?}");
    assert!(comms(&to_i).contains(&LLGR_STALE), "{to_i:?}");
    assert_eq!(lp(&to_i), Some(0));
    let to_l = attrs_to(&out, 4).expect("sent to the internal LLGR peer");
    assert_eq!(comms(&to_l), vec![LLGR_STALE]);
    assert_eq!(lp(&to_l), Some(100));
    assert!(
        attrs_to(&out, 2).is_none(),
        "not to the external peer without LLGR"
    );
    let withdrawn_from_o = out.get(&2).into_iter().flatten().any(|m| {
        matches!(m, Message::Update(u) if u.attrs.iter().any(|a| matches!(a, PathAttr::MpUnreach(_))))
    });
    assert!(withdrawn_from_o, "withdrawn from the external peer");
}

/// RFC 9494 §4.5: an LLGR capability without a GR capability "MUST be ignored": the
/// lost session's paths go at once, and the peer counts as one without LLGR.
#[test]
fn an_llgr_capability_without_gr_is_ignored() {
    let t0 = Instant::now();
    let mut c = core(sc(true, 90, 600), t0);
    connect(&mut c, t0, R, 65001, 1, vec![llgr_cap(300)]);
    let n = c.peer(&ip(R)).unwrap().negotiated().unwrap().clone();
    assert!(n.llgr.is_empty() && n.llgr_forwarding.is_empty(), "{n:?}");
    feed(
        &mut c,
        t0,
        1,
        &[Message::Update(update("10.1.0.0/16", 65001, vec![]))],
    );
    c.handle(t0, Input::Closed { conn: 1 });
    assert!(!present(&c, "10.1.0.0/16"), "not kept LLGR-stale");
    assert_eq!(status(&c, t0).gr_state, None);
}
