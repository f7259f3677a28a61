//! Helpers of the graceful-restart tests: a core with a restarting eBGP peer
//! (R) and an observer (O), the OPENs and UPDATEs they send, what we sent back.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::*;
use filament_bgp::{Core, Family, Input, PeerConfig, RouteKey, SpeakerConfig, State};
use filament_wire_bgp::{
    Afi, AsPath, AsSegment, Capability, DecodeCtx, GrFamily, Label, LlgrFamily, Message, MpReach,
    NextHop, Nlri, Open, Origin, PathAttr, Safi, Update, VpnRoute, LLGR_STALE,
};

/// The restarting peer (eBGP, AS 65001) and an observer (eBGP, AS 65002).
pub const R: &str = "10.0.0.9";
pub const O: &str = "10.0.0.8";
pub const RT: &str = "target:64512:1";

pub fn ctx() -> DecodeCtx {
    DecodeCtx {
        four_octet_as: true,
        ..DecodeCtx::default()
    }
}

pub fn sc(helper: bool, restart: u16, llgr: u32) -> SpeakerConfig {
    let mut sc = SpeakerConfig::new(64512, v4("10.0.0.1"));
    sc.gr_helper = helper;
    sc.gr_restart_time = restart;
    sc.gr_families = restart > 0;
    sc.llgr_time = llgr;
    sc
}

pub fn gr_cap(time: u16) -> Capability {
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

pub fn llgr_cap(time: u32) -> Capability {
    Capability::LongLivedGracefulRestart(vec![LlgrFamily {
        afi: Afi::Ipv4,
        safi: Safi::MplsVpn,
        flags: 0x80,
        stale_time: time,
    }])
}

/// A core with both peers configured (passive, VPNv4).
pub fn core(sc: SpeakerConfig, now: Instant) -> Core {
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
pub fn connect(
    core: &mut Core,
    now: Instant,
    addr: &str,
    asn: u32,
    conn: u64,
    caps: Vec<Capability>,
) -> Open {
    connect_mp(
        core,
        now,
        addr,
        asn,
        conn,
        &[(Afi::Ipv4, Safi::MplsVpn)],
        caps,
    )
}

/// The same with the Multiprotocol capabilities `mps`.
pub fn connect_mp(
    core: &mut Core,
    now: Instant,
    addr: &str,
    asn: u32,
    conn: u64,
    mps: &[(Afi, Safi)],
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
    let mut all: Vec<Capability> = mps
        .iter()
        .map(|&(afi, safi)| Capability::Multiprotocol { afi, safi })
        .collect();
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
pub fn update(prefix: &str, local_pref_as: u32, communities: Vec<u32>) -> Update {
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
pub fn feed(core: &mut Core, now: Instant, conn: u64, msgs: &[Message]) {
    core.handle(
        now,
        Input::Data {
            conn,
            bytes: enc(msgs, &ctx()),
        },
    );
}

pub fn key(prefix: &str) -> RouteKey {
    vpn_key("65001:1", prefix)
}

pub fn status(core: &Core, now: Instant) -> filament_bgp::PeerStatus {
    core.peer_status(now)
        .into_iter()
        .find(|s| s.address == ip(R))
        .unwrap()
}

pub fn llgr_stale(core: &Core, k: &RouteKey) -> Option<bool> {
    core.rib()
        .best(k)
        .map(|p| p.path.attrs.communities.contains(&LLGR_STALE))
}

pub fn at(t0: Instant, secs: u64) -> Instant {
    t0 + Duration::from_secs(secs)
}

pub fn present(c: &Core, prefix: &str) -> bool {
    c.rib().best(&key(prefix)).is_some()
}

pub fn gr_fams(time: u16, fams: &[(Afi, Safi, u8)]) -> Capability {
    Capability::GracefulRestart {
        flags: 0,
        restart_time: time,
        families: fams
            .iter()
            .map(|&(afi, safi, flags)| GrFamily { afi, safi, flags })
            .collect(),
    }
}

/// Every message the core sent, by connection.
pub fn sent_by_conn(c: &mut Core) -> HashMap<u64, Vec<Message>> {
    let mut by = HashMap::<u64, Vec<Message>>::new();
    while let Some(o) = c.poll_output() {
        if let filament_bgp::Output::Send { conn, bytes } = o {
            by.entry(conn).or_default().extend(dec(&bytes, &ctx()));
        }
    }
    by
}

/// The VPNv4 prefixes announced in `msgs`, each with its UPDATE's attributes.
pub fn announced(msgs: &[Message]) -> Vec<(String, Vec<PathAttr>)> {
    let mut v = Vec::new();
    for m in msgs {
        let Message::Update(u) = m else { continue };
        for a in &u.attrs {
            if let PathAttr::MpReach(MpReach {
                nlri: Nlri::Vpnv4(rs),
                ..
            }) = a
            {
                v.extend(rs.iter().map(|r| (r.prefix.to_string(), u.attrs.clone())));
            }
        }
    }
    v
}
