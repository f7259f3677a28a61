//! The Loc-RIB alone (issue 4's ingest, without sockets, decoding or the control node):
//! N VPNv4 routes over 100 RDs from one eBGP peer learned one by one, as a peer's UPDATEs
//! of `--batch` routes each (their index entries touched first, as the speaker does).
//! Prints the time per route; asserts nothing.
//!
//! `cargo run --release -p filament-bgp --example rib_ingest -- [ROUTES] [BATCH]`
//! (defaults 1000000 and 300, about what one 4096-byte UPDATE of VPNv4 routes holds;
//! BATCH 0: no touching ahead).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use filament_bgp::rib::{Rib, Source, SrcInfo};
use filament_bgp::{Attrs, LabelStack, Path, RouteKey};
use filament_wire_bgp::RouteDistinguisher;
use ipnet::{IpNet, Ipv4Net};

fn main() {
    let arg = |i: usize, d: u32| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (n, batch) = (arg(1, 1_000_000), arg(2, 300) as usize);
    let attrs = Arc::new(Attrs::default());
    let peer = Ipv4Addr::new(10, 77, 0, 5);
    let info = SrcInfo {
        src: Source::Peer(IpAddr::V4(peer)),
        ebgp: true,
        peer_id: peer,
        from_client: false,
    };
    let paths: Vec<Path> = (0..n)
        .filter_map(|i| {
            let rd = RouteDistinguisher::from_bytes([0, 0, 0xfd, 0xe8, 0, 0, 0, (i % 100) as u8]);
            let addr = Ipv4Addr::from(0x0a00_0000u32.wrapping_add((i / 100) << 8));
            let p = Ipv4Net::new(addr, 24).ok()?;
            Some(Path {
                key: RouteKey::Vpn(rd, IpNet::V4(p)),
                labels: LabelStack::from_slice(&[16 + i % 1000]),
                attrs: attrs.clone(),
            })
        })
        .collect();
    let mut rib = Rib::default();
    let t = Instant::now();
    let mut changed = 0usize;
    for chunk in paths.chunks(batch.max(1)) {
        if batch > 0 {
            std::hint::black_box(rib.touch_keys(chunk.iter().map(|p| &p.key)));
        }
        changed += chunk
            .iter()
            .filter(|p| rib.learn_ref(info, p).2.is_some())
            .count();
    }
    let e = t.elapsed();
    println!(
        "{n} routes in batches of {batch}: {e:?}, {:.0} ns/route ({changed} best paths changed)",
        e.as_nanos() as f64 / f64::from(n.max(1))
    );
}
