//! What the operator is told about a neighbour (`last_error`, shown as
//! `last_reason` by `filament neighbors`): an RFC 7606 treat-as-withdraw
//! names the attribute and the error and keeps the session; a NOTIFICATION
//! is named by its registry text; a TCP loss of a graceful-restart peer says
//! how many paths are kept stale (RFC 4724 §4.2) and the count is in
//! [`filament_bgp::PeerStatus::stale`].
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use filament_bgp::{Core, Family, Input, PeerConfig, SpeakerConfig, State};
use filament_wire_bgp::{Afi, Capability, DecodeCtx, GrFamily, Message, Open, Safi};

const PEER: &str = "10.0.0.9";

/// A core with one established iBGP peer (VPNv4, 4-octet AS) whose OPEN
/// carried `gr` as its graceful-restart capability.
fn established(gr: Option<Capability>) -> (Core, Instant) {
    let now = Instant::now();
    let mut core = Core::new(SpeakerConfig::new(64512, v4("10.0.0.1")));
    let mut p = PeerConfig::new(ip(PEER), 64512);
    p.passive = true;
    p.families = vec![Family::InetVpn];
    core.handle(now, Input::AddPeer(p));
    connect(&mut core, now, 1, gr);
    (core, now)
}

/// The peer connects (connection `conn`) and sends its OPEN with `gr`.
fn connect(core: &mut Core, now: Instant, conn: u64, gr: Option<Capability>) {
    core.handle(
        now,
        Input::Connected {
            conn,
            remote: ip(PEER),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    let mut caps = vec![
        Capability::Multiprotocol {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
        },
        Capability::FourOctetAs(64512),
    ];
    caps.extend(gr);
    let hello = enc(
        &[
            Message::Open(Open::new(64512, 90, v4(PEER), caps)),
            Message::Keepalive,
        ],
        &DecodeCtx::default(),
    );
    core.handle(now, Input::Data { conn, bytes: hello });
    while core.poll_output().is_some() {}
    assert_eq!(core.peer(&ip(PEER)).unwrap().state(), State::Established);
}

/// A graceful-restart capability for VPNv4 with the Forwarding State bit
/// `forwarding`.
fn gr_cap(forwarding: bool) -> Capability {
    Capability::GracefulRestart {
        flags: 0,
        restart_time: 120,
        families: vec![GrFamily {
            afi: Afi::Ipv4,
            safi: Safi::MplsVpn,
            flags: if forwarding { 0x80 } else { 0 },
        }],
    }
}

/// An UPDATE for VPNv4 10.1.0.0/16 (RD 10.0.0.9:1, label 99) whose
/// EXTENDED_COMMUNITIES value is `ext` (8 octets when well formed).
fn update_bytes(ext: &[u8]) -> Vec<u8> {
    update_with_next_hop(ext, [0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 9])
}

/// The same with `nh` as the MP_REACH_NLRI next hop (RD and IPv4 address).
fn update_with_next_hop(ext: &[u8], nh: [u8; 12]) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
    attrs.extend([0x40, 2, 0]); // empty AS_PATH (iBGP)
    attrs.extend([0x40, 5, 4, 0, 0, 0, 100]); // LOCAL_PREF
    attrs.extend([0xC0, 16, u8::try_from(ext.len()).unwrap()]);
    attrs.extend(ext);
    let nlri = [
        88 + 16, // label (24) + RD (64) + 16 prefix bits
        0x00,
        0x06,
        0x31, // label 99, bottom of stack
        0,
        1,
        10,
        0,
        0,
        9,
        0,
        1, // RD type 1 10.0.0.9:1
        10,
        1,
    ];
    let mut mp = vec![0, 1, 128, 12];
    mp.extend(nh);
    mp.push(0);
    mp.extend(nlri);
    attrs.extend([0x80, 14, u8::try_from(mp.len()).unwrap()]);
    attrs.extend(mp);
    let mut body = vec![0, 0];
    body.extend(u16::try_from(attrs.len()).unwrap().to_be_bytes());
    body.extend(attrs);
    let mut m = vec![0xff; 16];
    m.extend(u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    m.push(2);
    m.extend(body);
    m
}

const RT: [u8; 8] = [0, 2, 0xfc, 0, 0, 0x7a, 0x12, 0x01]; // target:64512:8000001

/// The peer's bytes on its connection.
fn feed(core: &mut Core, now: Instant, bytes: Vec<u8>) {
    core.handle(now, Input::Data { conn: 1, bytes });
}

#[test]
fn treat_as_withdraw_is_the_last_reason_and_the_session_stays() {
    let (mut core, now) = established(None);
    let key = vpn_key("10.0.0.9:1", "10.1.0.0/16");
    feed(&mut core, now, update_bytes(&RT));
    assert!(
        core.rib().best(&key).is_some(),
        "the well-formed UPDATE is learned"
    );
    // RFC 7606 §7.14: an EXTENDED_COMMUNITIES length not a multiple of 8.
    core.handle(
        now,
        Input::Data {
            conn: 1,
            bytes: update_bytes(&RT[..7]),
        },
    );
    let p = core.peer(&ip(PEER)).unwrap();
    assert_eq!(p.state(), State::Established);
    assert!(core.rib().best(&key).is_none(), "treated as withdrawn");
    assert_eq!(p.stats.treat_as_withdraw, 1);
    assert_eq!(
        p.stats.last_error.as_deref(),
        Some("treat-as-withdraw: attribute 16 (EXTENDED_COMMUNITIES): Attribute Length Error (Update/5), 1 routes withdrawn")
    );
}

#[test]
fn a_notification_is_named_by_its_registry_text() {
    let (mut core, now) = established(None);
    // A header whose length (18) is below the minimum: Bad Message Length,
    // with the length field as data (RFC 4271 §6.1).
    let mut bad = vec![0xff; 16];
    bad.extend([0, 18, 4]);
    core.handle(
        now,
        Input::Data {
            conn: 1,
            bytes: bad,
        },
    );
    let p = core.peer(&ip(PEER)).unwrap();
    assert_ne!(p.state(), State::Established);
    assert_eq!(
        p.stats.last_error.as_deref(),
        Some("sent MessageHeader/2 (Bad Message Length), data 0012")
    );
}

#[test]
fn a_graceful_restart_peer_lost_without_notification_keeps_stale_paths() {
    let (mut core, now) = established(Some(gr_cap(true)));
    feed(&mut core, now, update_bytes(&RT));
    core.handle(now, Input::Closed { conn: 1 });
    let status = core.peer_status(now);
    let st = status.iter().find(|s| s.address == ip(PEER)).unwrap();
    assert_eq!(st.stale, 1);
    assert_eq!(
        st.stats.last_error.as_deref(),
        Some("connection closed without NOTIFICATION; graceful restart helper: 1 paths kept stale for up to 120 s")
    );
    let key = vpn_key("10.0.0.9:1", "10.1.0.0/16");
    assert!(
        core.rib().best(&key).is_some(),
        "kept while the peer restarts"
    );
    // Restart time over: swept.
    core.handle(now + Duration::from_secs(121), Input::Tick);
    assert!(core.rib().best(&key).is_none());
    assert_eq!(
        core.peer_status(now)
            .iter()
            .find(|s| s.address == ip(PEER))
            .unwrap()
            .stale,
        0
    );

    // Without the capability the paths go at once, and the reason says so.
    let (mut core, now) = established(None);
    feed(&mut core, now, update_bytes(&RT));
    core.handle(now, Input::Closed { conn: 1 });
    assert!(core.rib().best(&key).is_none());
    let p = core.peer(&ip(PEER)).unwrap();
    assert_eq!(
        p.stats.last_error.as_deref(),
        Some("connection closed without NOTIFICATION")
    );
}

/// RFC 4364 §4.3.2: a VPN next hop carries a zero RD. One with another RD
/// (kept verbatim by the decoder) leaves no usable next hop: the route is
/// handled as withdrawn instead of being installed with none.
#[test]
fn a_vpn_next_hop_with_a_non_zero_rd_withdraws_the_route() {
    let (mut core, now) = established(None);
    let key = vpn_key("10.0.0.9:1", "10.1.0.0/16");
    feed(&mut core, now, update_bytes(&RT));
    assert!(core.rib().best(&key).is_some());
    let odd = update_with_next_hop(&RT, [0, 0, 0xfc, 0, 0, 0, 0, 1, 10, 0, 0, 9]);
    core.handle(
        now,
        Input::Data {
            conn: 1,
            bytes: odd,
        },
    );
    assert!(core.rib().best(&key).is_none());
    assert_eq!(core.peer(&ip(PEER)).unwrap().state(), State::Established);
}

/// RFC 4724 §4.2 after the restart: with the Forwarding State bit set in the
/// new OPEN the stale path waits for End-of-RIB; without it (FRR's default,
/// no `preserve-fw-state`) it is removed as soon as the session is back.
#[test]
fn stale_paths_after_the_restart_follow_the_forwarding_state_bit() {
    let key = vpn_key("10.0.0.9:1", "10.1.0.0/16");
    for forwarding in [true, false] {
        let (mut core, now) = established(Some(gr_cap(true)));
        core.handle(
            now,
            Input::Data {
                conn: 1,
                bytes: update_bytes(&RT),
            },
        );
        core.handle(now, Input::Closed { conn: 1 });
        assert!(core.rib().best(&key).is_some());
        connect(&mut core, now, 2, Some(gr_cap(forwarding)));
        let p = core.peer(&ip(PEER)).unwrap();
        if forwarding {
            assert!(core.rib().best(&key).is_some(), "kept until End-of-RIB");
            assert_eq!(p.stale.len(), 1);
            // End-of-RIB for VPNv4 (an UPDATE with an empty MP_UNREACH_NLRI).
            let mut eor = vec![0xff; 16];
            eor.extend([0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 1, 128]);
            core.handle(
                now,
                Input::Data {
                    conn: 2,
                    bytes: eor,
                },
            );
            assert!(core.rib().best(&key).is_none(), "swept at End-of-RIB");
        } else {
            assert!(core.rib().best(&key).is_none(), "removed at once");
            assert!(p.stale.is_empty());
            assert_eq!(
                p.stats.last_error.as_deref(),
                Some("graceful restart ended: forwarding state not preserved for inet-vpn; 1 stale paths removed")
            );
        }
    }
}
