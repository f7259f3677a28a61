//! `DhcpRepr::parse` on arbitrary bytes must never panic; whatever parses must emit and parse
//! back to the same value (round trip).
#![no_main]

use filament_wire_pkt::dhcp::DhcpRepr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = DhcpRepr::parse(data) else {
        return;
    };
    let again = DhcpRepr::parse(&m.emit()).expect("parse of emitted message");
    assert_eq!(again, m);
});
