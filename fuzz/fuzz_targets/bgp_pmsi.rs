//! `PmsiTunnel::decode` (RFC 6514 §5 PMSI Tunnel attribute value, as EVPN
//! type-3 routes carry it) on arbitrary bytes must never panic; whatever
//! decodes must re-encode to the same bytes.
#![no_main]

use filament_wire_bgp::PmsiTunnel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = PmsiTunnel::decode(data) {
        assert_eq!(p.encode(), data);
        let _ = p.endpoint();
    }
});
