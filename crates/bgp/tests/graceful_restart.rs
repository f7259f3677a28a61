//! Graceful restart as TF configures it, on the sans-IO core with a virtual
//! clock: helper mode on and off (RFC 4724 §4.2, TF's `bgp_helper_enable`),
//! the GR and LLGR capabilities we send (TF's `AddGRCapabilities` /
//! `AddLLGRCapabilities`), and the long-lived GR timeline (RFC 9494): stale,
//! then LLGR-stale with LLGR_STALE attached and ranked last, NO_LLGR paths
//! dropped, not exported to peers without LLGR, gone after the long-lived
//! stale time or refreshed by the restarted peer and its End-of-RIB.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use filament_bgp::{Core, Family, Input, PeerConfig, RouteKey, SpeakerConfig, State};
use filament_wire_bgp::{
    Afi, AsPath, AsSegment, Capability, DecodeCtx, GrFamily, Label, LlgrFamily, Message, MpReach,
    NextHop, Nlri, Open, Origin, PathAttr, Safi, Update, VpnRoute, LLGR_STALE, NO_LLGR,
};

/// The restarting peer (eBGP, AS 65001) and an observer (eBGP, AS 65002).
const R: &str = "10.0.0.9";
const O: &str = "10.0.0.8";
const RT: &str = "target:64512:1";

fn ctx() -> DecodeCtx {
    DecodeCtx {
        four_octet_as: true,
        ..DecodeCtx::default()
    }
}

fn sc(helper: bool, restart: u16, llgr: u32) -> SpeakerConfig {
    let mut sc = SpeakerConfig::new(64512, v4("10.0.0.1"));
    sc.gr_helper = helper;
    sc.gr_restart_time = restart;
    sc.gr_families = restart > 0;
    sc.llgr_time = llgr;
    sc
}

fn gr_cap(time: u16) -> Capability {
    Capability::GracefulRestart {
        flags: 0,
        restart_time: time,
        families: vec![GrFamily {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
            flags: 0x80,
        }],
    }
}

fn llgr_cap(time: u32) -> Capability {
    Capability::LongLivedGracefulRestart(vec![LlgrFamily {
        afi: Afi::Ipv4,
        safi: Safi::MplsVpn,
        flags: 0x80,
        stale_time: time,
    }])
}

/// A core with both peers configured (passive, VPNv4).
fn core(sc: SpeakerConfig, now: Instant) -> Core {
    let mut core = Core::new(sc);
    for (a, asn) in [(R, 65001), (O, 65002)] {
        let mut p = PeerConfig::new(ip(a), asn);
        p.passive = true;
        p.families = vec![Family::InetVpn];
        core.handle(now, Input::AddPeer(p));
    }
    core
}

/// Peer `addr` (AS `asn`) connects on `conn` with `caps` beside MP VPNv4;
/// returns the OPEN we sent it.
fn connect(
    core: &mut Core,
    now: Instant,
    addr: &str,
    asn: u32,
    conn: u64,
    caps: Vec<Capability>,
) -> Open {
    core.handle(
        now,
        Input::Connected {
            conn,
            remote: ip(addr),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    let mut all = vec![Capability::Multiprotocol {
        afi: Afi::Ipv4,
        safi: Safi::MplsVpn,
    }];
    all.extend(caps);
    let hello = enc(
        &[
            Message::Open(Open::new(asn, 90, v4(addr), all)),
            Message::Keepalive,
        ],
        &ctx(),
    );
    core.handle(now, Input::Data { conn, bytes: hello });
    let mut ev = Vec::new();
    let s = sent(core, conn, &ctx(), &mut ev);
    assert_eq!(core.peer(&ip(addr)).unwrap().state(), State::Established);
    s.msgs
        .into_iter()
        .find_map(|m| match m {
            Message::Open(o) => Some(o),
            _ => None,
        })
        .unwrap()
}

/// A VPNv4 UPDATE from the restarting peer for `prefix` (RD 65001:1), with
/// `communities`.
fn update(prefix: &str, local_pref_as: u32, communities: Vec<u32>) -> Update {
    let mut attrs = vec![
        PathAttr::Origin(Origin::Igp),
        PathAttr::AsPath(AsPath(vec![AsSegment::Sequence(vec![local_pref_as])])),
        PathAttr::MpReach(MpReach {
            next_hop: NextHop::V4(v4("10.0.0.9")),
            nlri: Nlri::Vpnv4(vec![VpnRoute {
                labels: vec![Label::new(40).unwrap()].into(),
                rd: "65001:1".parse().unwrap(),
                prefix: prefix.parse().unwrap(),
            }]),
        }),
        PathAttr::ExtCommunities(vec![RT
            .parse::<filament_wire_bgp::RouteTarget>()
            .unwrap()
            .into()]),
    ];
    if !communities.is_empty() {
        attrs.push(PathAttr::Communities(communities));
    }
    Update {
        attrs,
        ..Update::default()
    }
}

/// Bytes from the peer on `conn` (outputs stay queued: read them with `sent`).
fn feed(core: &mut Core, now: Instant, conn: u64, msgs: &[Message]) {
    core.handle(
        now,
        Input::Data {
            conn,
            bytes: enc(msgs, &ctx()),
        },
    );
}

fn key(prefix: &str) -> RouteKey {
    vpn_key("65001:1", prefix)
}

fn status(core: &Core, now: Instant) -> filament_bgp::PeerStatus {
    core.peer_status(now)
        .into_iter()
        .find(|s| s.address == ip(R))
        .unwrap()
}

fn llgr_stale(core: &Core, k: &RouteKey) -> Option<bool> {
    core.rib()
        .best(k)
        .map(|p| p.path.attrs.communities.contains(&LLGR_STALE))
}

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
    connect(&mut c, t0, O, 65002, 2, vec![llgr_cap(100)]);
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
