//! `gso::segment_tcp` (software segmentation of GSO frames from workloads) on arbitrary
//! frames and segment sizes must never panic; when it segments a frame with plain 20-byte
//! IPv4 and TCP headers, the segments' payloads concatenate to the original payload and none
//! exceeds the segment size.
#![no_main]

use filament_dataplane_io::gso::segment_tcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], frame)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mss = usize::from(u16::from_le_bytes([a, b]));
    let mut scratch = Vec::new();
    let mut payload = Vec::new();
    let mut lens = Vec::new();
    let r = segment_tcp(frame, mss, &mut scratch, |s| {
        lens.push(s.len());
        payload.extend_from_slice(&s[54.min(s.len())..]);
    });
    let plain = frame.len() >= 54 && frame[12..15] == [0x08, 0x00, 0x45] && frame[46] >> 4 == 5;
    if let (Ok(n), true) = (r, plain) {
        assert_eq!(n, lens.len());
        assert_eq!(&payload[..], &frame[54..]);
        assert!(lens.iter().all(|l| *l <= 54 + mss));
    }
});
