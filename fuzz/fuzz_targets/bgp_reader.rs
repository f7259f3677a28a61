//! The BGP connection reader's framing and decoding (`fsm::framed_len`,
//! `fsm::decode_event`, as the shell's reader runs them on each read) on arbitrary
//! bytes cut into arbitrary reads: never panics, frames no more than it has, and, once
//! decoding, yields the same events in the same order as the core's own decoder
//! (`Conn::next_event`) fed the same bytes at once, up to the first message that does
//! not decode.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use filament_bgp::fsm::{decode_event, framed_len, Conn, ConnEvent};
use filament_wire_bgp::DecodeCtx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ctx = DecodeCtx {
        four_octet_as: sel & 1 != 0,
        extended_message: sel & 2 != 0,
        rfc7606: sel & 4 != 0,
    };
    let step = usize::from(sel >> 3) * 7 + 1;
    // framing never claims more than it has
    if let Some(whole) = framed_len(rest) {
        assert!(whole <= rest.len());
    }
    // the reader once Established: reads of `step` bytes, each message decoded as it
    // completes (as the shell's `decode_all`)
    let mut reader = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    'reads: for chunk in rest.chunks(step) {
        pending.extend_from_slice(chunk);
        let mut off = 0;
        while let Some((ev, used)) = decode_event(&pending[off..], &ctx) {
            assert!(used > 0 && off + used <= pending.len());
            let bad = matches!(ev, ConnEvent::Bad(_));
            reader.push(format!("{ev:?}"));
            if bad {
                break 'reads;
            }
            off += used;
        }
        pending.drain(..off);
    }
    // the core's decoder on the same bytes
    let mut conn = Conn::new(1, false, IpAddr::V4(Ipv4Addr::LOCALHOST), Instant::now());
    conn.ctx = ctx;
    conn.feed(rest);
    let mut core = Vec::new();
    while let Some(ev) = conn.next_event() {
        let bad = matches!(ev, ConnEvent::Bad(_));
        core.push(format!("{ev:?}"));
        if bad {
            break;
        }
    }
    assert_eq!(reader, core, "reader and core disagree");
});
