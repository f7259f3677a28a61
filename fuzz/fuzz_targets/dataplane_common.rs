//! Shared by the dataplane fuzz targets (each includes it with `#[path]`;
//! it is no target itself): the tables they program and the comparisons
//! their differential checks make.
#![allow(dead_code)] // each target takes what it needs

use std::net::{IpAddr, Ipv4Addr};

use filament_dataplane::*;

pub const FABRIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const VM: MacAddr = MacAddr([2, 0, 0, 0, 0, 3]);

/// Fabric vif 0 (192.0.2.1) with the remote host's neighbour entry, workload
/// vif 1 (with or without `policy`) reached through nexthop 1 (route
/// 10.1.1.3/32 and bridge entry for the VM's MAC), and tunnel nexthop 2 to
/// the remote host with `encap`.
pub fn base_ops(policy: bool, encap: TunnelEncap) -> Vec<Op> {
    vec![
        Op::AddVif(Vif { id: VifId(0), kind: VifKind::Fabric, name: String::new(), mac: MacAddr([2, 0xfa, 0, 0, 0, 1]), vrf: None, policy: false, mtu: 1500, ip: Some(IpAddr::V4(FABRIC)) }),
        Op::AddVif(Vif { id: VifId(1), kind: VifKind::Workload, name: String::new(), mac: GATEWAY_MAC, vrf: Some(VrfId(1)), policy, mtu: 1500, ip: None }),
        Op::AddNexthop(Nexthop { id: NhId(1), kind: NexthopKind::Encap { vif: VifId(1), dst_mac: VM, src_mac: GATEWAY_MAC } }),
        Op::AddNexthop(Nexthop { id: NhId(2), kind: NexthopKind::Tunnel { vif: VifId(0), src_ip: FABRIC, dst_ip: REMOTE, encap } }),
        Op::AddNeighbor { vif: VifId(0), ip: REMOTE, mac: MacAddr([2, 0xfa, 0, 0, 0, 2]) },
        Op::AddRoute { vrf: VrfId(1), prefix: "10.1.1.3/32".parse().unwrap(), nh: NhId(1) },
        Op::AddBridge { vrf: VrfId(1), mac: VM, nh: NhId(1) },
    ]
}

/// A forwarder with room for `flow_capacity` flows, programmed with `ops`.
pub fn programmed(flow_capacity: usize, ops: Vec<Op>) -> Forwarder {
    programmed_with(ForwarderCfg { flow_capacity, ..Default::default() }, ops)
}

/// A forwarder with `cfg`, programmed with `ops`.
pub fn programmed_with(cfg: ForwarderCfg, ops: Vec<Op>) -> Forwarder {
    let mut f = Forwarder::new(cfg);
    for op in ops {
        f.apply(op).unwrap();
    }
    f
}

/// The agent's "forward" verdict for `key`: what `f` released (verdicts and
/// bytes), or its error.
pub fn forward_flow(f: &mut Forwarder, key: FlowKey) -> Result<Vec<(Verdict, Vec<u8>)>, OpError> {
    let spec = FlowSpec { key, action: FlowAction::Forward, mirror: None, reverse_action: None };
    f.apply(Op::AddFlow(spec)).map(|a| a.released.into_iter().map(|r| (r.verdict, r.buf.to_vec())).collect())
}

/// Same flows, interface counters and drop statistics.
pub fn assert_same_state(a: &Forwarder, b: &Forwarder) {
    assert_eq!(a.dump_flows(), b.dump_flows());
    assert_eq!(format!("{:?}", a.dump_interfaces()), format!("{:?}", b.dump_interfaces()));
    assert_eq!(a.dropstats(), b.dropstats());
}
