//! Bytes per route of the control node's RIB (issue 4's ingest: VPNv4 routes learned
//! from one BGP peer into `bgp.l3vpn.0`), counted as the growth of the process's RSS
//! (`/proc/self/statm`). Prints bytes per route after N `Rib::add_vpn` calls, with one label
//! per prefix (`--per-prefix-labels`) or one label per RD, and after `take_dirty`.
//!
//! `cargo run --release -p filament-control --example rib_mem -- [N] [--per-prefix-labels]`

use filament_control::rib::{Family, PathAttrs, PeerId, Rib};

/// Resident set size of this process in bytes (`/proc/self/statm`, 4 KiB pages).
fn rss() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u32 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let per_prefix = args.iter().any(|a| a == "--per-prefix-labels");
    let rds = 100;
    let per = n / rds;
    let before = rss();
    let mut rib = Rib::new();
    for r in 0..rds {
        let rd = format!("100:{}", r + 1);
        for i in 0..per {
            let prefix = format!("10.{}.{}.{}/32", i >> 16 & 255, i >> 8 & 255, i & 255);
            let label = if per_prefix { 16 + i } else { 16 + r };
            let attrs = PathAttrs {
                next_hop: "10.77.0.5".into(),
                encap: vec!["gre".into()],
                local_pref: 100,
                as_path_len: 1,
                route_targets: ["target:64512:8000001".to_string()].into(),
                ..PathAttrs::default()
            };
            rib.add_vpn(
                Family::Inet,
                &rd,
                &prefix,
                PeerId::Bgp("10.77.0.5".into()),
                label,
                attrs,
            );
        }
    }
    let total = f64::from(per * rds);
    let live = rss() - before;
    println!(
        "{} routes ({}): {:.0} bytes/route live with the dirty set, attribute sets {}",
        per * rds,
        if per_prefix {
            "label per prefix"
        } else {
            "label per RD"
        },
        live / total,
        rib.attr_sets()
    );
    let dirty = rib.take_dirty();
    drop(dirty);
    let live = rss() - before;
    println!("  after take_dirty: {:.0} bytes/route", live / total);
}
