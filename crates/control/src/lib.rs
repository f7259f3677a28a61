//! The control node: config graph, per-instance RIBs, route-target replication, XMPP server
//! for agents (core + shell).  tf-facts §2 (XMPP), §3 (control node), §7 (introspect).
//!
//! Layers:
//! * [`config`] — the config graph from the change feed; routing-instance targets;
//! * [`subset`] — each agent's config subset as IFMap nodes/links, diffed into messages;
//! * [`rib`] — tables, paths, best path + ECMP, replication by route targets;
//! * [`convert`] — route items ⇄ paths, validation of agent items;
//! * [`session`] — one XMPP session, sans-IO (stream, STARTTLS steps, keepalive, hold timer);
//! * [`node`] — the core: [`node::Input`] in, [`node::Output`] out, deterministic;
//! * [`introspect`] — JSON views (`/status`, `/routes`, `/routes/summary`, `/neighbors`);
//! * [`shell`] — tokio: XMPP listener (STARTTLS when configured), config-feed follower,
//!   introspect HTTP server;
//! * [`tls`] — XMPP over TLS settings (TF `xmpp_auth_enable`): PEM files → rustls configs.
//!
//! ## BGP hook (for the BGP speaker in `crates/bgp`)
//! Paths have a source, [`rib::PeerId`]: `Xmpp(agent)`, `Bgp(peer)` or `Local`.  A BGP
//! speaker plugs in as another source and sink of the VPN tables:
//! * learned VPN routes: [`rib::Rib::add_vpn`]`(family, rd, prefix, PeerId::Bgp(..), attrs)`
//!   with `attrs.route_targets` from the extended communities, and [`rib::Rib::del_vpn`];
//!   [`rib::Rib::remove_peer`] when the session drops.  They are replicated into every
//!   instance importing one of their targets and pushed to subscribed agents on the next
//!   [`node::ControlNode::step`]; a full table goes through [`rib::Rib::add_vpn_key`] /
//!   [`rib::Rib::del_vpn_key`] with compact keys ([`rib::Key::vpn4`]) and shared names and
//!   attributes ([`rib::Rib::name`], [`rib::Rib::peer`], [`rib::Rib::share`]), no strings
//!   per route;
//! * what to advertise: the tables `bgp.l3vpn.0`, `bgp.l3vpn-inet6.0`, `bgp.evpn.0` (keys
//!   `RD:prefix`, paths with `route_targets` = the instance's export targets) and
//!   `bgp.rtarget.0` (keys `<asn>:target:..`, this node's RT membership, RFC 4684), read through
//!   [`node::ControlNode::rib`] (tables are [`rib::Table`]s: `get(&str)`, `get_key`, ordered
//!   `iter()`); changed keys since the last call, by table, come from
//!   [`node::ControlNode::take_bgp_changes`] (after [`node::ControlNode::enable_bgp_changes`];
//!   changes of BGP-learned paths are left out: they never change what is advertised);
//! * access from the shell: [`shell::Handle::with_node`] runs a closure on the core (and
//!   pushes the resulting route changes to agents).
//!
//! * wake-up: [`shell::Handle::bgp_changed`] is notified when changed keys wait; BGP peers
//!   for `GET /neighbors`: [`node::ControlNode::set_bgp_neighbors`]; agent paths carry the
//!   origin VN's id in [`rib::PathAttrs::origin_vn_id`].
//!
//! [`bgp_peers`] (the bgp engineer's module) connects the two.

pub mod bgp_peers;
pub mod config;
pub mod convert;
pub mod introspect;
pub mod node;
pub mod rib;
pub mod session;
pub mod shell;
pub mod subset;
pub mod tls;

pub use node::{ConnId, ControlNode, Input, NodeConfig, Output};
