//! The vRouter agent: XMPP client, port API, DHCP/ARP proxy, route import/export, flow decisions (core + shell).
//!
//! Cores (sans-IO, deterministic): `dhcp` (DHCP server for the ports), `arp` (ARP proxy),
//! `pkt` (the frame layouts they read and write).

pub mod arp;
pub mod dhcp;
pub mod flow;
pub mod pkt;

/// The VRRP MAC that TF's vRouter puts on every VM-facing vif: the gateway and proxy-ARP MAC
/// workloads see (tf-facts §5.1).
pub const VRRP_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x00];
