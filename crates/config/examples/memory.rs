//! Resident memory of the config database for 1,000 VNs and 20,000 ports
//! (VMI + instance-ip), read from /proc/self/status (Linux).
//! `cargo run --release -p filament-config --example memory`

use filament_config::{ConfigDb, Ctx};
use filament_schema::index;
use serde_json::json;

fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn main() {
    sizes();
    let mut db = ConfigDb::new();
    let mut gen = filament_config::seq_uuids();
    let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
    let t = db.bootstrap(&mut ctx).expect("bootstrap");
    db.apply(t);
    let ix = index();
    let (t, _) = db
        .create(
            ix.resource("project").expect("t"),
            &json!({"fq_name": ["default-domain", "bench"]}),
            &mut ctx,
        )
        .expect("project");
    db.apply(t);
    let base = (rss(), 0usize);
    let mut vns = Vec::new();
    for i in 0..1000 {
        let body = json!({"fq_name": ["default-domain", "bench", format!("vn{i}")],
            "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": format!("10.{}.{}.0", i / 256, i % 256), "ip_prefix_len": 24}}]}}]});
        let (t, u) = db
            .create(ix.resource("virtual-network").expect("t"), &body, &mut ctx)
            .expect("vn");
        db.apply(t);
        vns.push(u);
    }
    let after_vns = (rss(), 0usize);
    for i in 0..20000 {
        let vn = &vns[i % vns.len()];
        let (t, vmi) = db
            .create(ix.resource("virtual-machine-interface").expect("t"),
                &json!({"fq_name": ["default-domain", "bench", format!("port{i}")], "virtual_network_refs": [{"uuid": vn}]}), &mut ctx)
            .expect("vmi");
        db.apply(t);
        let (t, _) = db
            .create(ix.resource("instance-ip").expect("t"),
                &json!({"fq_name": [format!("iip{i}")], "virtual_network_refs": [{"uuid": vn}], "virtual_machine_interface_refs": [{"uuid": vmi}]}), &mut ctx)
            .expect("iip");
        db.apply(t);
    }
    let end = (rss(), 0usize);
    let mb = |b: usize| b as f64 / 1048576.0;
    println!("objects: {}", db.len());
    println!(
        "1000 VNs (+ RIs): {:.1} MB, {:.0} B per VN",
        mb(after_vns.0 - base.0),
        (after_vns.0 - base.0) as f64 / 1000.0
    );
    println!(
        "20000 ports (VMI + IIP): {:.1} MB, {:.0} B per port",
        mb(end.0 - after_vns.0),
        (end.0 - after_vns.0) as f64 / 20000.0
    );
    println!("total heap: {:.1} MB", mb(end.0));
}

#[allow(dead_code)]
fn sizes() {
    use std::mem::size_of;
    println!(
        "size_of: Obj {} IdPermsType {} PermType2 {} Value {} RefLink {} Map {}",
        size_of::<filament_config::Obj>(),
        size_of::<filament_schema::types::IdPermsType>(),
        size_of::<filament_schema::types::PermType2>(),
        size_of::<serde_json::Value>(),
        size_of::<filament_config::RefLink>(),
        size_of::<serde_json::Map<String, serde_json::Value>>()
    );
}
