//! Arbitrary bytes from an established peer into the speaker core
//! (`filament_bgp::Core`): the core must never panic, whatever the framing,
//! attributes or NLRI, and must answer malformed input with a NOTIFICATION
//! or treat-as-withdraw (RFC 4271 §6, RFC 7606), never by crashing.
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use filament_bgp::{Core, Input, PeerConfig, SpeakerConfig};
use filament_wire_bgp::{Capability, DecodeCtx, Message, Open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let peer: IpAddr = [10, 0, 0, 9].into();
    let mut core = Core::new(SpeakerConfig::new(64512, [10, 0, 0, 1].into()));
    let mut p = PeerConfig::new(peer, 64512);
    p.passive = true;
    core.handle(now, Input::AddPeer(p));
    core.handle(
        now,
        Input::Connected { conn: 1, remote: peer, local: [10, 0, 0, 1].into(), outgoing: false },
    );
    let caps = filament_bgp::Family::ALL
        .iter()
        .map(|f| {
            let (afi, safi) = f.afi_safi();
            Capability::Multiprotocol { afi, safi }
        })
        .collect();
    let mut hello = Vec::new();
    let ctx = DecodeCtx::default();
    let _ = Message::Open(Open::new(64512, 90, [10, 0, 0, 9].into(), caps)).encode(&ctx, &mut hello);
    let _ = Message::Keepalive.encode(&ctx, &mut hello);
    core.handle(now, Input::Data { conn: 1, bytes: hello });
    // The rest of the input in a few chunks, then time passes.
    for chunk in data.chunks(97) {
        core.handle(now, Input::Data { conn: 1, bytes: chunk.to_vec() });
        while core.poll_output().is_some() {}
    }
    core.handle(now + Duration::from_secs(200), Input::Tick);
    while core.poll_output().is_some() {}
});
