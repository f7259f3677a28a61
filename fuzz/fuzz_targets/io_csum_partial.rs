//! `xsk::l4_csum_partial` (AF_XDP frames from workloads: does the TCP/UDP checksum field hold
//! only the pseudo-header sum?) must never panic on arbitrary frames or their truncations.
#![no_main]

use filament_dataplane_io::xsk::l4_csum_partial;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = l4_csum_partial(data);
    for n in [0, 13, 14, 33, 34, 53, 54] {
        let _ = l4_csum_partial(&data[..n.min(data.len())]);
    }
});
