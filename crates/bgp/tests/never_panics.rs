//! Whatever an established peer sends, the core does not panic: random
//! bytes and randomly corrupted valid UPDATEs (the same property the
//! `bgp_session` fuzz target checks, in every test run).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use filament_bgp::{Core, Family, Input, PeerConfig, SpeakerConfig};
use filament_wire_bgp::{Capability, DecodeCtx, Message, Open};
use proptest::prelude::*;

fn established() -> (Core, Instant) {
    let now = Instant::now();
    let mut core = Core::new(SpeakerConfig::new(64512, v4("10.0.0.1")));
    let mut p = PeerConfig::new(ip("10.0.0.9"), 64512);
    p.passive = true;
    p.families = Family::ALL.to_vec();
    core.handle(now, Input::AddPeer(p));
    core.handle(
        now,
        Input::Connected {
            conn: 1,
            remote: ip("10.0.0.9"),
            local: ip("10.0.0.1"),
            outgoing: false,
        },
    );
    let caps = Family::ALL
        .iter()
        .map(|f| {
            let (afi, safi) = f.afi_safi();
            Capability::Multiprotocol { afi, safi }
        })
        .collect();
    let ctx = DecodeCtx::default();
    let hello = enc(
        &[
            Message::Open(Open::new(64512, 90, v4("10.0.0.9"), caps)),
            Message::Keepalive,
        ],
        &ctx,
    );
    core.handle(
        now,
        Input::Data {
            conn: 1,
            bytes: hello,
        },
    );
    while core.poll_output().is_some() {}
    (core, now)
}

fn valid_update() -> Vec<u8> {
    let p = vpn_path(
        "10.0.0.9:1",
        "10.1.0.0/16",
        99,
        "10.0.0.9",
        "target:64512:8000001",
    );
    let mut core = Core::new(SpeakerConfig::new(64512, v4("10.0.0.9")));
    let mut pc = PeerConfig::new(ip("10.0.0.1"), 64512);
    pc.passive = true;
    pc.families = vec![Family::InetVpn];
    let now = Instant::now();
    core.handle(now, Input::AddPeer(pc));
    core.handle(
        now,
        Input::Connected {
            conn: 5,
            remote: ip("10.0.0.1"),
            local: ip("10.0.0.9"),
            outgoing: false,
        },
    );
    let caps = vec![Capability::Multiprotocol {
        afi: filament_wire_bgp::Afi::Ipv4,
        safi: filament_wire_bgp::Safi::MplsVpn,
    }];
    let ctx = DecodeCtx {
        four_octet_as: true,
        ..DecodeCtx::default()
    };
    core.handle(
        now,
        Input::Data {
            conn: 5,
            bytes: enc(
                &[
                    Message::Open(Open::new(64512, 90, v4("10.0.0.1"), caps)),
                    Message::Keepalive,
                ],
                &ctx,
            ),
        },
    );
    while core.poll_output().is_some() {}
    core.handle(now, Input::Advertise(p));
    let mut out = Vec::new();
    while let Some(o) = core.poll_output() {
        if let filament_bgp::Output::Send { bytes, .. } = o {
            out.extend(bytes);
        }
    }
    out
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (mut core, now) = established();
        for chunk in data.chunks(61) {
            core.handle(now, Input::Data { conn: 1, bytes: chunk.to_vec() });
            while core.poll_output().is_some() {}
        }
        core.handle(now + Duration::from_secs(300), Input::Tick);
    }

    #[test]
    fn corrupted_updates_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_update();
        prop_assume!(!bytes.is_empty());
        // Keep the marker so the corruption reaches the attribute / NLRI parsers.
        for (at, v) in flips {
            let i = 16 + at % (bytes.len() - 16);
            bytes[i] = v;
        }
        let (mut core, now) = established();
        core.handle(now, Input::Data { conn: 1, bytes });
        while core.poll_output().is_some() {}
        core.handle(now, Input::Tick);
    }
}
