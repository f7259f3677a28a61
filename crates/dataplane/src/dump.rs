//! Dump records: what `Forwarder::dump_*` return and the CLI / HTTP
//! introspection serialize (TF's `vif --list`, `nh --list`, `rt --dump`,
//! `mpls --dump`, `flow -l`, `dropstats`).

use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::types::{
    DropReason, FlowAction, FlowKey, LabelPayload, MacAddr, NhId, PuntReason, Vif, VifId, VrfId,
};

/// Which table to dump (CLI / HTTP names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpKind {
    /// `vif --list`
    Interfaces,
    /// `nh --list`
    Nexthops,
    /// `rt --dump` (all VRFs, with bridge entries)
    Routes,
    /// `mpls --dump` and `vxlan --dump`
    Labels,
    /// `flow -l`
    Flows,
    /// Fabric neighbours.
    Neighbors,
    /// `dropstats`
    Dropstats,
}

impl FromStr for DumpKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "interfaces" => DumpKind::Interfaces,
            "nexthops" => DumpKind::Nexthops,
            "routes" => DumpKind::Routes,
            "labels" => DumpKind::Labels,
            "flows" => DumpKind::Flows,
            "neighbors" => DumpKind::Neighbors,
            "dropstats" => DumpKind::Dropstats,
            other => return Err(format!("unknown table {other:?}")),
        })
    }
}

/// Per-interface counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VifStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames given a Transmit verdict on this vif.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames received on this vif and dropped.
    pub drops: u64,
}

/// An interface in a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifDump {
    /// As programmed.
    #[serde(flatten)]
    pub vif: Vif,
    /// Counters.
    pub stats: VifStats,
}

/// A route or bridge entry in a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDump {
    /// VRF.
    pub vrf: VrfId,
    /// IP prefix (routes) ...
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<IpNet>,
    /// ... or MAC (bridge entries).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac: Option<MacAddr>,
    /// Nexthop.
    pub nh: NhId,
}

/// Label and VNI tables in a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LabelsDump {
    /// (label, nexthop, payload)
    pub labels: Vec<LabelDump>,
    /// (vni, vrf)
    pub vnis: Vec<VniDump>,
}

/// One MPLS label entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelDump {
    /// Label.
    pub label: u32,
    /// Nexthop.
    pub nh: NhId,
    /// Payload kind.
    pub payload: LabelPayload,
}

/// One VNI entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VniDump {
    /// VNI.
    pub vni: u32,
    /// VRF.
    pub vrf: VrfId,
}

/// A fabric neighbour in a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborDump {
    /// Fabric vif.
    pub vif: VifId,
    /// IP.
    pub ip: Ipv4Addr,
    /// MAC.
    pub mac: MacAddr,
    /// Learned from ARP on the fabric (vs programmed).
    pub learned: bool,
}

/// Flow entry state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Awaiting the agent's verdict; packets queued (TF HOLD).
    Hold,
    /// Verdict installed.
    Active,
}

/// A flow entry in a dump (TF `flow -l`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDump {
    /// Entry index.
    pub index: u32,
    /// Key.
    pub key: FlowKey,
    /// Hold or Active.
    pub state: FlowState,
    /// Action (Hold entries: None).
    pub action: Option<FlowAction>,
    /// Index of the reverse entry.
    pub reverse: Option<u32>,
    /// Mirror nexthop.
    pub mirror: Option<NhId>,
    /// Pinned ECMP member position.
    pub ecmp_index: Option<u16>,
    /// Outer UDP source port used for this flow (MPLSoUDP/VXLAN).
    pub udp_src_port: u16,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
    /// Milliseconds since last packet (relative to the last `now` seen).
    pub idle_ms: u64,
}

/// Drop counters per reason (`dropstats`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DropStats {
    /// Count per reason (only non-zero reasons).
    pub drops: std::collections::BTreeMap<DropReason, u64>,
    /// Count of punts per reason.
    pub punts: std::collections::BTreeMap<PuntReason, u64>,
    /// Sum of drops.
    pub total: u64,
    /// Flow table occupancy.
    #[serde(default)]
    pub flow_table: FlowTableStats,
    /// Outer-fragment reassembly (`reasm.rs`).
    #[serde(default)]
    pub reassembly: ReasmStats,
}

/// The outer-fragment reassembler's counters and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReasmStats {
    /// Fragments accepted.
    pub fragments: u64,
    /// Datagrams released whole.
    pub datagrams: u64,
    /// Of those, datagrams that were no overlay packet for us (the host's).
    pub host: u64,
    /// Datagrams in progress.
    pub pending: u64,
    /// Bytes held.
    pub held_bytes: u64,
}

/// Flow table occupancy (the header of TF's `flow -l`: size and entries in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlowTableStats {
    /// Entries in use (each direction of a flow is one).
    pub entries: u64,
    /// Entries the table holds (`ForwarderCfg::flow_capacity`).
    pub capacity: u64,
}
