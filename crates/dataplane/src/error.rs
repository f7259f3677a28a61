//! Errors of table operations ([`crate::Forwarder::apply`]). Packet problems
//! are not errors: they are verdicts ([`crate::DropReason`]) and counters.

use crate::types::{FlowKey, NhId, VifId};

/// A table operation that cannot be applied; the tables are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The operation names an interface that does not exist.
    #[error("interface {vif} does not exist")]
    UnknownVif {
        /// Interface.
        vif: VifId,
    },
    /// The operation names a nexthop that does not exist.
    #[error("nexthop {nh} does not exist")]
    UnknownNexthop {
        /// Nexthop.
        nh: NhId,
    },
    /// A composite nexthop lists itself or another composite of the same
    /// kind (members must be Encap / Tunnel / Discard / Receive).
    #[error("nexthop {nh}: member {member} cannot be a composite")]
    NestedComposite {
        /// The composite.
        nh: NhId,
        /// The offending member.
        member: NhId,
    },
    /// A tunnel nexthop's interface is not a fabric vif.
    #[error("nexthop {nh}: interface {vif} is not a fabric interface")]
    NotFabric {
        /// Nexthop.
        nh: NhId,
        /// Interface.
        vif: VifId,
    },
    /// MPLS label out of the 20-bit range.
    #[error("label {label} out of range (max 1048575)")]
    LabelOutOfRange {
        /// Label.
        label: u32,
    },
    /// VNI out of the 24-bit range.
    #[error("vni {vni} out of range (max 16777215)")]
    VniOutOfRange {
        /// VNI.
        vni: u32,
    },
    /// The entry to delete does not exist.
    #[error("{what} not found")]
    NotFound {
        /// Which entry ("route 10.0.0.0/8 in vrf 1", ...).
        what: String,
    },
    /// The flow table is full (capacity from `ForwarderCfg::flow_capacity`).
    #[error("flow table full ({capacity} entries) installing {key:?}")]
    FlowTableFull {
        /// Configured capacity.
        capacity: usize,
        /// Flow being installed.
        key: FlowKey,
    },
    /// A NAT rewrite mixes IPv4 and IPv6.
    #[error("flow {key:?}: NAT address family differs from the key's")]
    NatFamily {
        /// Flow.
        key: FlowKey,
    },
}
