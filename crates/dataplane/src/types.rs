//! The forwarder's public vocabulary: identifiers, table entries, the [`Op`]
//! enum the agent (or a static tables file) programs the forwarder with, the
//! [`Verdict`] the pipeline returns for each packet, and the dump records.
//!
//! The model follows TF's vRouter (tf-facts §5.1–5.5, include/vr_interface.h,
//! vr_nexthop.h, vr_flow.h): interfaces ("vifs") belong to a VRF; routes and
//! bridge entries point at nexthops; MPLS labels and VXLAN VNIs are global
//! tables that identify the nexthop / VRF of a packet arriving from the
//! fabric. Everything here derives serde so tables can be dumped as JSON and
//! loaded from a static file (a JSON array of [`Op`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

// ===== identifiers =====

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// Interface index (TF `vif` index), chosen by whoever adds the vif.
    VifId
);
id_type!(
    /// Nexthop index (TF `nh` id). Id 0 is not special here: use
    /// [`NexthopKind::Discard`] explicitly.
    NhId
);
id_type!(
    /// VRF index (TF `vrf` id). VRFs exist implicitly once referenced.
    VrfId
);

/// The agent's gateway / proxy-ARP MAC, programmed as the MAC of workload
/// vifs (tf-facts §5.1: "VM tap vifs are programmed with the VRRP MAC
/// `00:00:5e:00:01:00`"). Frames to it are routed; others are bridged.
pub const GATEWAY_MAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x00]);

/// First unicast MPLS label the agent allocates (tf-facts §5.3).
pub const FIRST_UNICAST_LABEL: u32 = 16;

/// Largest MPLS label (20 bits).
pub const MAX_LABEL: u32 = (1 << 20) - 1;

/// Largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// An Ethernet MAC address; serialized as `"aa:bb:cc:dd:ee:ff"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Group (multicast or broadcast) address: I/G bit set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not `xx:xx:xx:xx:xx:xx`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {text:?}")]
pub struct MacParseError {
    /// The offending text.
    pub text: String,
}

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError {
            text: s.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

// ===== interfaces =====

/// What an interface is attached to (tf-facts §5.1 vif types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VifKind {
    /// A workload's tap/veth (TF VIRTUAL 3).
    Workload,
    /// The fabric NIC (TF PHYSICAL 2): overlay packets arrive and leave here.
    Fabric,
    /// The host stack (TF HOST 0, vhost0).
    Host,
    /// The agent's packet interface (TF AGENT 1, pkt0).
    Agent,
}

/// An interface as programmed (TF `vr_interface_req`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vif {
    /// Index; adding an existing index replaces that vif.
    pub id: VifId,
    /// Kind of attachment.
    pub kind: VifKind,
    /// OS interface name (for dumps only).
    #[serde(default)]
    pub name: String,
    /// The vif's own MAC: [`GATEWAY_MAC`] for workloads, the NIC MAC for the
    /// fabric (source MAC of encapsulated frames).
    pub mac: MacAddr,
    /// VRF the interface's packets are looked up in (workloads).
    #[serde(default)]
    pub vrf: Option<VrfId>,
    /// POLICY_ENABLED: packets need a flow entry (else the fast path skips
    /// the flow table).
    #[serde(default)]
    pub policy: bool,
    /// MTU of the interface (informational; frames longer than MTU + 14 are
    /// dropped with [`DropReason::TooBig`] on transmit).
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Fabric: our fabric (vhost0) IPv4 address: outer source IP, and only
    /// overlay packets addressed to it are decapsulated. Workloads: the
    /// workload's address (informational).
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

fn default_mtu() -> u16 {
    1500
}

// ===== nexthops =====

/// Overlay encapsulation of a tunnel nexthop (tf-facts §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum TunnelEncap {
    /// MPLS over UDP, destination port 6635 (RFC 7510).
    MplsOverUdp {
        /// Label pushed (the remote vrouter's label for the destination).
        label: u32,
    },
    /// MPLS over GRE, GRE protocol 0x8847 (RFC 4023).
    MplsOverGre {
        /// Label pushed.
        label: u32,
    },
    /// VXLAN, UDP port 4789 (RFC 7348); carries the inner Ethernet frame.
    Vxlan {
        /// VNI of the destination network.
        vni: u32,
    },
}

/// What a nexthop does (tf-facts §5.2 nexthop types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NexthopKind {
    /// Drop, counted as [`DropReason::Discard`] (TF DISCARD).
    Discard,
    /// For the host: punted to the agent with [`PuntReason::Receive`]
    /// (TF RCV), e.g. the gateway address of a subnet.
    Receive,
    /// A local interface (TF ENCAP). Routed packets get an L2 rewrite to
    /// `dst_mac` from `src_mac` (normally [`GATEWAY_MAC`]); bridged frames
    /// are sent unchanged.
    Encap {
        /// Output interface.
        vif: VifId,
        /// Workload MAC.
        dst_mac: MacAddr,
        /// Source MAC of routed frames.
        src_mac: MacAddr,
    },
    /// A remote vrouter or gateway (TF TUNNEL): encapsulate and send out of
    /// the fabric vif to `dst_ip`; the outer destination MAC comes from the
    /// fabric neighbour table.
    Tunnel {
        /// Fabric interface.
        vif: VifId,
        /// Outer source (our fabric IP).
        src_ip: Ipv4Addr,
        /// Outer destination (the remote fabric IP).
        dst_ip: Ipv4Addr,
        /// Encapsulation and its label / VNI.
        encap: TunnelEncap,
    },
    /// ECMP composite: one member chosen by the 5-tuple hash, pinned in the
    /// flow entry when there is one (TF COMPOSITE + ECMP flag).
    Ecmp {
        /// Member nexthops; keep positions stable (append new members) so
        /// pinned flows keep their path.
        members: Vec<NhId>,
    },
    /// L2 flood list (TF COMPOSITE for broadcast/unknown unicast): a copy to
    /// every member except the input interface.
    Flood {
        /// Member nexthops (Encap and Tunnel).
        members: Vec<NhId>,
    },
}

/// A nexthop as programmed (TF `vr_nexthop_req`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nexthop {
    /// Index; adding an existing index replaces that nexthop.
    pub id: NhId,
    /// Behaviour.
    #[serde(flatten)]
    pub kind: NexthopKind,
}

/// What an MPLS label carries after it is popped: TF distinguishes L3 labels
/// (inner IP packet, the nexthop adds L2) from L2 labels (inner Ethernet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LabelPayload {
    /// Inner IPv4/IPv6 packet without Ethernet header.
    #[default]
    Ip,
    /// Inner Ethernet frame (bridged traffic).
    Ethernet,
}

// ===== flows =====

/// A flow key (tf-facts §5.5): VRF + 5-tuple. For ICMP echo both ports are
/// the echo identifier (so the key of the reply is the swapped key); other
/// ICMP and non-TCP/UDP protocols use port 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowKey {
    /// VRF the packet was looked up in.
    pub vrf: VrfId,
    /// IP protocol number.
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (or ICMP echo id).
    pub sport: u16,
    /// Destination port (or ICMP echo id).
    pub dport: u16,
}

/// Hashes whole words (the flow table's hot path): VRF, protocol and ports
/// in one word, each address as one or two words.
impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let ports = (u64::from(self.vrf.0) << 40)
            | (u64::from(self.proto) << 32)
            | (u64::from(self.sport) << 16)
            | u64::from(self.dport);
        state.write_u64(ports);
        for a in [&self.src, &self.dst] {
            match a {
                IpAddr::V4(v4) => state.write_u32(u32::from(*v4)),
                IpAddr::V6(v6) => state.write_u128(u128::from(*v6)),
            }
        }
    }
}

impl FlowKey {
    /// The key of packets flowing the other way (same VRF, swapped).
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            vrf: self.vrf,
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// Address/port rewrite of a NAT flow (TF SNAT/SPAT/DNAT/DPAT flags).
/// Fields left `None` are not rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct NatRewrite {
    /// New source address (SNAT).
    #[serde(default)]
    pub src_ip: Option<IpAddr>,
    /// New destination address (DNAT).
    #[serde(default)]
    pub dst_ip: Option<IpAddr>,
    /// New source port (SPAT).
    #[serde(default)]
    pub src_port: Option<u16>,
    /// New destination port (DPAT).
    #[serde(default)]
    pub dst_port: Option<u16>,
    /// VRF the rewritten packet is routed in (TF `fe_dvrf`; floating IPs
    /// span two VRFs). `None`: the key's VRF.
    #[serde(default)]
    pub dst_vrf: Option<VrfId>,
}

/// A flow's action (TF DROP 0 / FORWARD 2 / NAT 3; HOLD is internal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum FlowAction {
    /// Drop, counted as [`DropReason::Policy`].
    Drop,
    /// Forward by the FIB / bridge table.
    Forward,
    /// Rewrite (forward direction as given, reverse direction inverted),
    /// then forward.
    Nat(NatRewrite),
}

/// The agent's verdict for a flow: installing it creates the forward entry
/// (`key`) and the linked reverse entry, and releases held packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpec {
    /// Forward key, as punted.
    pub key: FlowKey,
    /// Forward action; the reverse entry gets the matching action (NAT
    /// inverted, Drop stays Drop, Forward stays Forward).
    #[serde(flatten)]
    pub action: FlowAction,
    /// Mirror: a copy of each packet of both directions also goes to this
    /// nexthop.
    #[serde(default)]
    pub mirror: Option<NhId>,
    /// Reverse direction action override (e.g. a stateful ACL allowing only
    /// one direction); `None`: derived from `action`.
    #[serde(default)]
    pub reverse_action: Option<FlowAction>,
}

// ===== operations =====

/// One table operation (TF's sandesh requests `vr_interface_req`,
/// `vr_nexthop_req`, `vr_route_req`, `vr_mpls_req`, `vr_vxlan_req`,
/// `vr_flow_req`). A static tables file is a JSON array of these, e.g.
/// `{"op":"add_route","vrf":1,"prefix":"10.1.1.3/32","nh":3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Op {
    /// Add or replace an interface.
    AddVif(Vif),
    /// Remove an interface (nexthops pointing at it become drops).
    DelVif {
        /// Interface.
        vif: VifId,
    },
    /// Add or replace a nexthop. Members / vifs must exist.
    AddNexthop(Nexthop),
    /// Remove a nexthop (routes pointing at it drop with `NoRoute`).
    DelNexthop {
        /// Nexthop.
        nh: NhId,
    },
    /// Add or replace a route in a VRF's FIB (IPv4 or IPv6, LPM).
    AddRoute {
        /// VRF.
        vrf: VrfId,
        /// Prefix (host bits are cleared).
        prefix: IpNet,
        /// Nexthop.
        nh: NhId,
    },
    /// Remove a route.
    DelRoute {
        /// VRF.
        vrf: VrfId,
        /// Prefix.
        prefix: IpNet,
    },
    /// Add or replace a bridge (MAC) entry in a VRF. The entry for
    /// ff:ff:ff:ff:ff:ff is the flood nexthop for broadcast and unknown
    /// unicast.
    AddBridge {
        /// VRF.
        vrf: VrfId,
        /// MAC.
        mac: MacAddr,
        /// Nexthop (Encap, Tunnel or Flood).
        nh: NhId,
    },
    /// Remove a bridge entry.
    DelBridge {
        /// VRF.
        vrf: VrfId,
        /// MAC.
        mac: MacAddr,
    },
    /// Add or replace an MPLS label (global table): packets arriving from
    /// the fabric with this label go to `nh`.
    AddLabel {
        /// Label (16..=2^20-1).
        label: u32,
        /// Nexthop (normally an Encap nexthop of a workload).
        nh: NhId,
        /// What the label carries.
        #[serde(default)]
        payload: LabelPayload,
    },
    /// Remove a label.
    DelLabel {
        /// Label.
        label: u32,
    },
    /// Add or replace a VNI (global table): VXLAN packets with this VNI are
    /// bridged in `vrf`.
    AddVni {
        /// VNI (24 bits).
        vni: u32,
        /// VRF.
        vrf: VrfId,
    },
    /// Remove a VNI.
    DelVni {
        /// VNI.
        vni: u32,
    },
    /// Add or replace a fabric neighbour (remote fabric IP -> MAC).
    AddNeighbor {
        /// Fabric interface the neighbour is reached on.
        vif: VifId,
        /// Neighbour IPv4 address.
        ip: Ipv4Addr,
        /// Its MAC.
        mac: MacAddr,
    },
    /// Remove a fabric neighbour.
    DelNeighbor {
        /// Fabric interface.
        vif: VifId,
        /// Neighbour IPv4 address.
        ip: Ipv4Addr,
    },
    /// Install a flow verdict (both directions); releases held packets.
    AddFlow(FlowSpec),
    /// Remove a flow and its reverse entry.
    DelFlow {
        /// Either direction's key.
        key: FlowKey,
    },
    /// Remove every flow entry.
    FlushFlows,
}

// ===== per-packet input and output =====

/// Receive metadata the shell knows about a frame (from `tpacket_auxdata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RxMeta {
    /// The L4 checksum is partial (CHECKSUM_PARTIAL / TP_STATUS_CSUMNOTREADY:
    /// veth/TAP offload left only the pseudo-header sum in the field); the
    /// forwarder completes it in software before the packet leaves.
    pub csum_partial: bool,
    /// 802.1Q tag the kernel stripped (TCI), if any.
    pub vlan_tci: Option<u16>,
}

/// Why a packet is handed to the agent (TF `agent_hdr` trap codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PuntReason {
    /// No flow entry on a policy-enabled vif (AGENT_TRAP_FLOW_MISS 6); the
    /// packet is also held until the verdict is installed.
    FlowMiss,
    /// ARP from a workload (AGENT_TRAP_ARP 2).
    Arp,
    /// DHCP (UDP 67/68) from a workload (AGENT_TRAP_L2_PROTOCOLS 3).
    Dhcp,
    /// Addressed to a Receive nexthop (the gateway / service address).
    Receive,
}

/// Why a packet was dropped (TF drop statistics). Counted per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Shorter than its headers say.
    Truncated,
    /// A header field is invalid (version, header length, ...).
    Malformed,
    /// Received on an unknown interface.
    UnknownVif,
    /// Workload vif without a VRF.
    NoVrf,
    /// No route for the destination.
    NoRoute,
    /// Bridged frame with no MAC entry and no flood entry.
    NoBridgeEntry,
    /// Tunnel nexthop whose remote fabric IP has no neighbour entry yet
    /// (an ARP request was queued, see `poll_transmit`).
    NoNeighbor,
    /// Flow action Drop.
    Policy,
    /// Flow table full.
    FlowLimit,
    /// More than the hold limit queued for a flow awaiting its verdict.
    FlowHoldLimit,
    /// TTL / hop limit expired on routing.
    Ttl,
    /// Discard nexthop.
    Discard,
    /// Overlay packet with a label not in the label table.
    UnknownLabel,
    /// VXLAN packet with a VNI not in the VNI table.
    UnknownVni,
    /// Nexthop missing, empty composite, or pointing at a missing vif.
    InvalidNexthop,
    /// Frame larger than the output interface's MTU.
    TooBig,
    /// Not enough headroom for the encapsulation (never with
    /// [`crate::PacketBuf`] defaults).
    NoHeadroom,
    /// A protocol the pipeline does not forward (e.g. non-IP routed).
    Unsupported,
    /// Would go back out of the interface it came in on.
    Loop,
    /// IP fragment on a policy vif whose flow cannot be identified: a later fragment whose
    /// first one did not arrive within 2 s.
    Fragment,
    /// IPv4 header or GRE checksum wrong (TF's `cksum_err`).
    Checksum,
    /// Overlay header we must not accept: GRE version other than 0 or RFC 1701 routing /
    /// strict source route / recursion bits set (RFC 2784 §2.3, §2.5).
    BadTunnel,
    /// A later IP fragment arrived before its first one and the queue of such fragments was
    /// full (TF's "Fragment Queue Fail"; `FRAG_QUEUE_MAX` in all, `FRAG_QUEUE_PER_SOURCE` per
    /// source address).
    FragQueueFull,
    /// An outer IPv4 fragment to our fabric IP whose datagram did not arrive whole within the
    /// reassembly timeout (2 s, TF's `VR_ASSEMBLER_TIMEOUT_SECS`); counted per fragment
    /// discarded (`reasm.rs`).
    ReasmTimeout,
    /// An outer IPv4 fragment overlapping (or duplicating) one already held for its datagram,
    /// or contradicting its end: the whole datagram is discarded (RFC 5722's rule, for
    /// IPv4); counted per fragment discarded.
    ReasmOverlap,
    /// An outer IPv4 fragment beyond the reassembler's bounds (datagrams in progress, bytes
    /// held, fragments per datagram).
    ReasmLimit,
}

/// What to do with a packet after [`crate::Forwarder::process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) buffer on this interface.
    Transmit(VifId),
    /// Send these copies (flood, mirror); the buffer itself is consumed.
    Replicate(Vec<Tx>),
    /// Hand the buffer to the agent. For a flow miss `key` is the flow key
    /// to answer with [`Op::AddFlow`]; the packet is also held.
    Punt {
        /// Why.
        reason: PuntReason,
        /// Flow key (flow misses).
        key: Option<FlowKey>,
    },
    /// Queued on a flow awaiting the agent's verdict, or a later IP fragment queued until its
    /// first fragment arrives (then it goes out through [`crate::Forwarder::poll_transmit`]),
    /// or an outer fragment from the fabric held until its datagram is whole (`reasm.rs`).
    Held,
    /// Not for the overlay: a fabric frame the host kernel (which also
    /// received it) handles. Nothing to send.
    Host,
    /// Dropped and counted.
    Drop(DropReason),
}

/// One frame to send (copies of a flooded or mirrored packet, released
/// packets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    /// Output interface.
    pub vif: VifId,
    /// Frame bytes.
    pub frame: Vec<u8>,
}

/// A held packet released by installing its flow's verdict, with the
/// verdict the pipeline gave it (Transmit / Replicate / Drop ...). Its
/// buffer is ready to send as for [`Verdict`].
#[derive(Debug, Clone)]
pub struct Released {
    /// Interface it was received on.
    pub vif_in: VifId,
    /// The processed packet.
    pub buf: crate::PacketBuf,
    /// What to do with it.
    pub verdict: Verdict,
}

/// Result of [`crate::Forwarder::apply`].
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Packets released by an [`Op::AddFlow`] (held on a flow miss).
    pub released: Vec<Released>,
}
