//! ICMP errors on policy vifs follow the flow of the packet they are about (TF's vRouter looks
//! an ICMP error up by the header it quotes, `vr_inet_flow_lookup` / `AGENT_TRAP_ICMP_ERROR`):
//! a "port unreachable", "fragmentation needed" (RFC 1191) or "time exceeded" coming back for
//! a flow the agent allowed is forwarded or dropped with that flow, instead of being a flow
//! miss of its own (ICMP, ports 0) that the agent must decide on.
//!
//! RFC 792: an ICMP error's data is "Internet Header + 64 bits of Original Data Datagram";
//! RFC 4443 §2.4 (c): an ICMPv6 error carries "as much of invoking packet as possible". The
//! quoted packet went the other way, so its flow key reversed is the key of the entry the error
//! belongs to. Only Forward and Drop entries are used: a NAT entry would need the quoted header
//! rewritten too, so such errors stay flow misses as before.

use std::net::IpAddr;

use filament_wire_pkt::{icmp, ip_proto};

use crate::encap::IpInfo;
use crate::forwarder::Forwarder;
use crate::types::*;
use crate::FlowState;

/// ICMPv4 error types (RFC 792): destination unreachable, source quench, redirect, time
/// exceeded, parameter problem.
const V4_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 error types (RFC 4443 §2.1): 1-4 (destination unreachable, packet too big, time
/// exceeded, parameter problem).
const V6_ERRORS: std::ops::RangeInclusive<u8> = 1..=4;

impl Forwarder {
    /// The key of the Forward / Drop flow entry an ICMP error in `frame` (parsed as `info`) is
    /// about, if it is one and that entry exists.
    pub(crate) fn icmp_error_flow(
        &self,
        frame: &[u8],
        info: &IpInfo,
        vrf: VrfId,
    ) -> Option<FlowKey> {
        if info.later_fragment {
            return None;
        }
        let msg = frame.get(info.l4..info.l4 + info.l4_len)?;
        let t = *msg.first()?;
        let error = match info.proto {
            ip_proto::ICMP => V4_ERRORS.contains(&t),
            ip_proto::ICMPV6 => V6_ERRORS.contains(&t),
            _ => false,
        };
        if !error {
            return None;
        }
        let q = msg.get(icmp::HEADER_LEN..)?;
        let (src, dst, proto, l4) = match (info.proto, q.first()? >> 4) {
            (ip_proto::ICMP, 4) => {
                let hl = usize::from(q[0] & 0x0f) * 4;
                let a: [u8; 4] = q.get(12..16)?.try_into().ok()?;
                let b: [u8; 4] = q.get(16..20)?.try_into().ok()?;
                (IpAddr::from(a), IpAddr::from(b), *q.get(9)?, q.get(hl..)?)
            }
            (ip_proto::ICMPV6, 6) => {
                let a: [u8; 16] = q.get(8..24)?.try_into().ok()?;
                let b: [u8; 16] = q.get(24..40)?.try_into().ok()?;
                (IpAddr::from(a), IpAddr::from(b), *q.get(6)?, q.get(40..)?)
            }
            _ => return None,
        };
        let port = |at: usize| l4.get(at..at + 2).map(|p| u16::from_be_bytes([p[0], p[1]]));
        let (sport, dport) = match proto {
            ip_proto::TCP | ip_proto::UDP => (port(0)?, port(2)?),
            // A quoted echo: both "ports" are its identifier.
            ip_proto::ICMP | ip_proto::ICMPV6 => {
                let id = port(4)?;
                (id, id)
            }
            _ => (0, 0),
        };
        let key = FlowKey {
            vrf,
            proto,
            src: dst,
            dst: src,
            sport: dport,
            dport: sport,
        };
        let e = self.flows.get(self.flows.find(&key)?)?;
        matches!(
            (e.state, e.action),
            (
                FlowState::Active,
                Some(FlowAction::Forward | FlowAction::Drop)
            )
        )
        .then_some(key)
    }
}
