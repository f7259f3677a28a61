//! `filament-dataplane`: the forwarder's sans-IO core — the equivalent of
//! TF's vRouter data path (tf-facts §5) over byte buffers, with no syscalls,
//! no clock and no threads. The I/O shell (`filament-dataplane-io`) feeds it
//! frames and transmits what it returns; the agent programs it with [`Op`]s.
//!
//! * tables: interfaces ([`Vif`]), nexthops ([`Nexthop`]: encap to a local
//!   vif, tunnel MPLSoUDP / MPLSoGRE / VXLAN, ECMP, flood, receive,
//!   discard), per-VRF IPv4+IPv6 LPM FIBs and MAC tables, the global MPLS
//!   label and VXLAN VNI tables, fabric neighbours, the flow table;
//! * pipeline: [`Forwarder::process`] — integrated routing and bridging
//!   (frames to [`GATEWAY_MAC`] are routed, others bridged), flow lookup on
//!   policy-enabled vifs (miss: hold + [`Verdict::Punt`]), NAT, sticky
//!   ECMP, encapsulation and decapsulation, checksum completion;
//! * fast path: packets of an established Forward flow (IPv4 TCP/UDP routed
//!   from a policy vif) skip classification: flow hit -> cached route ->
//!   prebuilt outer headers per tunnel nexthop (`fastpath.rs`), with exactly
//!   the general pipeline's effects (checked by a differential proptest and
//!   the `dataplane_fastpath` fuzz target);
//! * batch: [`Forwarder::process_batch`] — a burst of frames from one vif
//!   (as taken from a receive ring), with the effects of `process` on each
//!   frame in order (the `batch_matches_single` property test); the flow
//!   lookups of up to [`BATCH_MAX`] frames are hashed and their cache and
//!   TLB misses overlapped before processing (`batch.rs`);
//! * memory: [`Forwarder::table_memory`] gives the flow table's address
//!   ranges (fixed at construction) and [`Forwarder::new_advised`] hands
//!   them to a callback before first touch — the I/O shell's
//!   `madvise(MADV_HUGEPAGE)`: with a million flows on 4 KiB pages every
//!   lookup misses the TLB twice;
//! * control: [`Forwarder::apply`] and the `dump_*` functions.
//!
//! What the agent programs for a workload, as TF's agent does:
//!
//! ```
//! use filament_dataplane::*;
//! use std::time::Duration;
//!
//! let mut fwd = Forwarder::new(ForwarderCfg::default());
//! let vm_mac: MacAddr = "02:00:00:00:00:03".parse().unwrap();
//! let ops = vec![
//!     // The fabric NIC, our fabric IP 192.0.2.1.
//!     Op::AddVif(Vif { id: VifId(0), kind: VifKind::Fabric, name: "eth0".into(),
//!         mac: "02:fa:00:00:00:01".parse().unwrap(), vrf: None, policy: false, mtu: 1500,
//!         ip: Some("192.0.2.1".parse().unwrap()) }),
//!     // A workload tap in VRF 1; its MAC is the gateway MAC.
//!     Op::AddVif(Vif { id: VifId(3), kind: VifKind::Workload, name: "tap3".into(),
//!         mac: GATEWAY_MAC, vrf: Some(VrfId(1)), policy: false, mtu: 1500,
//!         ip: Some("10.1.1.3".parse().unwrap()) }),
//!     // Its Encap nexthop (L2 rewrite from the gateway MAC) and label 16.
//!     Op::AddNexthop(Nexthop { id: NhId(3), kind: NexthopKind::Encap {
//!         vif: VifId(3), dst_mac: vm_mac, src_mac: GATEWAY_MAC } }),
//!     Op::AddLabel { label: 16, nh: NhId(3), payload: LabelPayload::Ip },
//!     Op::AddRoute { vrf: VrfId(1), prefix: "10.1.1.3/32".parse().unwrap(), nh: NhId(3) },
//!     Op::AddBridge { vrf: VrfId(1), mac: vm_mac, nh: NhId(3) },
//!     // A remote workload behind 192.0.2.2, reached with MPLSoUDP label 17.
//!     Op::AddNexthop(Nexthop { id: NhId(10), kind: NexthopKind::Tunnel { vif: VifId(0),
//!         src_ip: "192.0.2.1".parse().unwrap(), dst_ip: "192.0.2.2".parse().unwrap(),
//!         encap: TunnelEncap::MplsOverUdp { label: 17 } } }),
//!     Op::AddRoute { vrf: VrfId(1), prefix: "10.1.1.4/32".parse().unwrap(), nh: NhId(10) },
//!     Op::AddVni { vni: 5001, vrf: VrfId(1) },
//! ];
//! for op in ops {
//!     fwd.apply(op).unwrap();
//! }
//! // The shell's loop: process each received frame, act on the verdict.
//! let mut buf = PacketBuf::from_frame(&[0u8; 10]);
//! match fwd.process(Duration::from_secs(1), VifId(3), &mut buf, RxMeta::default()) {
//!     Verdict::Transmit(vif) => { /* send buf.frame() on vif */ }
//!     Verdict::Replicate(copies) => { /* send each Tx */ }
//!     Verdict::Punt { reason, key } => { /* hand buf to the agent */ }
//!     Verdict::Held | Verdict::Host => {}
//!     Verdict::Drop(reason) => { /* counted in fwd.dropstats() */ }
//! }
//! while let Some(tx) = fwd.poll_transmit() { /* ARP requests */ }
//! assert_eq!(fwd.dropstats().total, 1); // a 10-byte frame is dropped (truncated)
//!
//! // Or a burst from one vif (up to a ring's worth; BATCH_MAX at a time
//! // is prefetched): the shell loads pooled buffers, then acts on each
//! // (bufs[i], verdicts[i]) pair as above. `metas[i]` goes with `bufs[i]`
//! // (`&[]`: all default). Reuse `bufs` and `verdicts` across bursts.
//! let mut bufs = vec![PacketBuf::from_frame(&[0u8; 10]), PacketBuf::from_frame(&[0u8; 20])];
//! let metas = [RxMeta::default(), RxMeta { csum_partial: true, vlan_tci: None }];
//! let mut verdicts = Vec::new();
//! fwd.process_batch(Duration::from_secs(1), VifId(3), &mut bufs, &metas, &mut verdicts);
//! assert_eq!(verdicts.len(), 2);
//! assert_eq!(fwd.dropstats().total, 3);
//! ```
//!
//! Time is a `Duration` since any fixed origin the shell chooses
//! (monotonic); [`Forwarder::age_flows`] ages flows against it.
//!
//! Semantics worth knowing (TF's, unless said otherwise):
//! * MPLS (over UDP 6635 or GRE 0x8847) carries the inner IP packet for an
//!   L3 label ([`LabelPayload::Ip`]; the label's Encap nexthop adds L2) and
//!   a zero control word + Ethernet frame for an L2 label
//!   ([`LabelPayload::Ethernet`], TF's `VR_L2_CTRL_DATA`). VXLAN always
//!   carries Ethernet: VNI -> VRF -> bridge lookup; routed traffic sent over
//!   VXLAN is addressed to [`GATEWAY_MAC`] so the receiver routes it (ours).
//! * The outer UDP source port is 49152 + (inner 5-tuple hash mod 16384).
//! * On the fabric only overlay packets addressed to the fabric vif's `ip`
//!   are claimed; the rest (and every ARP, after learning neighbours from
//!   replies we asked for) is [`Verdict::Host`].
//! * TTL is decremented once, by the sending forwarder; the receiving one
//!   only adds L2. The outer IPv4 TTL is 64, DF clear, UDP checksum zero.
//! * Flows: a policy vif's packets need an entry (ingress side for traffic
//!   from workloads; egress side for overlay traffic to a policy vif, routed
//!   or bridged; flooded copies are not flow-checked). A miss creates a HOLD
//!   entry keeping up to `hold_max` packets (the first one included) and
//!   returns [`Verdict::Punt`] once; [`Op::AddFlow`] installs both directions
//!   (replacing an existing verdict in place) and returns the held packets
//!   already processed.
//! * IP fragments on policy vifs follow their datagram's first fragment's
//!   flow; a later fragment that comes first waits (bounded, 2 s) and is
//!   sent right after the first one through [`Forwarder::poll_transmit`]
//!   (`frag.rs`). ICMP errors follow the flow of the header they quote, and
//!   for a NAT flow are translated back, quote included (`errflow.rs`).
//! * Encapsulated frames longer than the fabric vif's MTU + 14: an IPv4
//!   packet without DF is fragmented before encapsulation; otherwise it is
//!   dropped ([`DropReason::TooBig`]) and the workload gets an ICMP
//!   "fragmentation needed" / ICMPv6 "Packet Too Big" with the size that
//!   fits (`mtu.rs`), so path MTU discovery adapts. Best: give workloads an
//!   MTU at least 50 bytes below the fabric's (VXLAN and L2 MPLSoUDP add 50;
//!   L3 MPLSoUDP 32, L3 MPLSoGRE 28), or raise the fabric MTU.

#![warn(missing_docs)]

mod batch;
mod bridge;
mod buf;
mod dump;
mod encap;
mod errflow;
mod error;
mod fastpath;
mod fib;
mod flow;
mod forwarder;
mod frag;
pub mod inplace;
mod mtu;
mod nd;
mod pipeline;
pub mod reasm;
mod types;

pub use batch::{MemRange, BATCH_MAX};
pub use buf::{PacketBuf, DEFAULT_HEADROOM};
pub use dump::*;
pub use error::OpError;
pub use forwarder::{Forwarder, ForwarderCfg, MAX_NEXTHOPS, MAX_VIFS, MAX_VRFS};
pub use frag::{FRAG_MAX, FRAG_QUEUE_MAX, FRAG_QUEUE_PER_SOURCE};
pub use types::*;
