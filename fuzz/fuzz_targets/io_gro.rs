//! `gro::Coalescer` (joining TCP segments toward a workload into GSO super-frames) on arbitrary
//! frames must never panic; every frame comes out once, in order: plain frames as they went
//! in, and a super-frame's payload is the concatenation of the payloads it joined (so no byte
//! is lost, doubled or reordered); a super-frame never exceeds 64 KiB of IP datagram, and
//! cutting it again (`gro::resegment`) gives back as many segments as it joined.
#![no_main]

use filament_dataplane_io::gro::{resegment, Coalescer, Out};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // frames: a length byte (x 8), then the bytes
    let mut frames = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (usize::from(n) * 8).min(tail.len());
        frames.push(&tail[..n]);
        rest = &tail[n..];
    }
    let mut c = Coalescer::new();
    let mut outs: Vec<(Option<(usize, u16, u16)>, Vec<u8>)> = Vec::new();
    let mut take = |o: Out<'_>| match o {
        Out::Plain(f) => outs.push((None, f.to_vec())),
        Out::Gso(h, f, n) => outs.push((Some((usize::from(h.hdr_len), h.gso_size, n)), f.to_vec())),
    };
    for f in &frames {
        c.push(f, &mut take);
    }
    c.flush(&mut take);
    let mut scratch = Vec::new();
    let mut i = 0;
    for (h, f) in &outs {
        match h {
            None => {
                assert_eq!(Some(&&f[..]), frames.get(i), "plain frame {i} in order");
                i += 1;
            }
            Some((hdr, mss, n)) => {
                assert!(f.len() - 14 <= 65535);
                let joined: Vec<u8> = frames[i..i + usize::from(*n)]
                    .iter()
                    .flat_map(|s| s[*hdr..].iter().copied())
                    .collect();
                assert_eq!(&f[*hdr..], &joined[..], "payloads of frames {i}..");
                let mut cut = 0;
                resegment(f, usize::from(*mss), &mut scratch, |_| cut += 1);
                assert_eq!(cut, usize::from(*n));
                i += usize::from(*n);
            }
        }
    }
    assert_eq!(i, frames.len(), "every frame out once");
});
