//! The agent's handling of punted workload frames must never panic on arbitrary bytes: the
//! DHCP server (`dhcp::handle`), the ARP proxy (`arp::handle`), the frame views
//! (`pkt::Eth` / `Ip4` / `Udp`) and the port API body parser (`PortReq::parse`, when the bytes
//! are JSON).
//! A DHCP reply, when one is produced, must itself parse as a DHCP message.
#![no_main]

use std::net::Ipv4Addr;

use filament_agent::arp::{self, ArpStats, ArpTarget};
use filament_agent::dhcp::{self, DhcpParams, DhcpStats};
use filament_agent::pkt::{Eth, Ip4, Udp};
use filament_agent::port::PortReq;
use filament_wire_pkt::dhcp::DhcpRepr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = DhcpParams {
        ip: Ipv4Addr::new(10, 1, 1, 3),
        plen: 24,
        gateway: Some(Ipv4Addr::new(10, 1, 1, 254)),
        service: Ipv4Addr::new(10, 1, 1, 253),
        dns: vec![],
        domain: Some("d".into()),
        mtu: Some(1450),
        host_routes: vec![(Ipv4Addr::new(192, 168, 0, 0), 16, Ipv4Addr::new(10, 1, 1, 1))],
        lease: None,
    };
    let mut ds = DhcpStats::default();
    if let Ok(Some(reply)) = dhcp::handle(&p, data, &mut ds) {
        let e = Eth::parse(&reply).expect("reply ethernet");
        let ip = Ip4::parse(e.payload).expect("reply ipv4");
        let u = Udp::parse(ip.payload).expect("reply udp");
        DhcpRepr::parse(u.payload).expect("reply dhcp");
    }
    let mut as_ = ArpStats::default();
    let _ = arp::handle(data, |_| ArpTarget::Routed, &mut as_);
    if let Ok(e) = Eth::parse(data) {
        if let Ok(ip) = Ip4::parse(e.payload) {
            let _ = Udp::parse(ip.payload);
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = PortReq::parse(&v);
    }
});
