//! The vRouter agent: XMPP client, port API, DHCP/ARP proxy, route import/export, flow decisions (core + shell).
//!
//! Cores (sans-IO, deterministic, `now` passed in):
//! * `core` — the agent model: ports, config graph, VRFs, learnt routes; `Input` in, forwarder
//!   `Op`s and XMPP bytes out (`Agent::handle` / `poll_output` / `poll_timeout`);
//! * `xmpp` — one control-node channel (stream open, keepalive, hold timer);
//! * `model` — typed reads of the IFMap config graph (VMI, VN, IPAM subnets, SG, ACL, global);
//! * `routes` — route items published and the paths of pushed routes;
//! * `dhcp`, `arp` — the DHCP server and ARP proxy for ports; `pkt` — their frame layouts;
//! * `flow` — flow decisions over network-policy and security-group ACLs; `query` — the
//!   questions the punt loop asks the model; `flow_records` — decided flows and their
//!   re-evaluation after a config change; `port` — port API requests.
//!
//! Shell (tokio): `shell` (tasks: XMPP connections, timer, punts, forwarder ops), `xmpp_tls`
//! (STARTTLS before the channel starts, TF `xmpp_auth_enable`) and `api` (the port API on
//! 9091 with the forwarder's `/vrouter/*` routes).

pub mod api;
pub mod arp;
pub mod bench;
pub mod core;
pub mod dhcp;
pub mod flow;
pub mod flow_records;
pub mod model;
pub mod pkt;
pub mod port;
pub mod query;
pub mod routes;
pub mod shell;
pub mod xmpp;
pub mod xmpp_tls;

/// The VRRP MAC that TF's vRouter puts on every VM-facing vif: the gateway and proxy-ARP MAC
/// workloads see (tf-facts §5.1).
pub const VRRP_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x00];
