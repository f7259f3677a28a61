//! ARP proxy for the agent's ports (sans-IO), TF's `l2_l3` behaviour (tf-facts §5.7,
//! `vr_get_proxy_mac`): the gateway and service addresses answer with the VRRP MAC
//! 00:00:5e:00:01:00; a target in the VRF with a known MAC (a local port or an EVPN route,
//! "stitched") answers with that MAC; a target only reachable by an L3 route answers with the
//! VRRP MAC (the vRouter routes it); anything else gets no answer — nothing is flooded to the
//! fabric. RFC 826 reply layout ("swap the hardware and protocol fields, putting the local
//! hardware and protocol addresses in the sender fields; set ar$op to ares_op$REPLY").

use std::net::Ipv4Addr;

use crate::pkt::{eth_frame, Arp, Eth, ETH_ARP};
use crate::VRRP_MAC;

/// What the VRF knows about an ARP target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpTarget {
    /// the subnet's gateway or service address
    Gateway,
    /// a workload whose MAC is known (local port or EVPN route)
    Mac([u8; 6]),
    /// an L3 route exists but no MAC
    Routed,
    /// nothing in the VRF
    Unknown,
}

/// Counters of the ARP proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArpStats {
    /// replies sent
    pub replies: u64,
    /// requests for addresses the VRF does not know (not flooded)
    pub unknown: u64,
    /// gratuitous ARPs and replies from workloads (absorbed)
    pub absorbed: u64,
    /// malformed frames dropped
    pub malformed: u64,
}

/// Why a frame got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArpDrop {
    /// Ethernet/ARP framing.
    #[error("arp frame: {0}")]
    Frame(#[from] crate::pkt::PktError),
    /// Not an ARP frame.
    #[error("arp frame: ethertype {0:#06x}")]
    NotArp(u16),
}

/// Answer one punted ARP frame from a workload; `lookup` resolves a target in the port's VRF.
pub fn handle(
    frame: &[u8],
    lookup: impl FnOnce(Ipv4Addr) -> ArpTarget,
    stats: &mut ArpStats,
) -> Result<Option<Vec<u8>>, ArpDrop> {
    let parsed = Eth::parse(frame).map_err(ArpDrop::from).and_then(|e| {
        if e.ethertype == ETH_ARP {
            Ok(Arp::parse(e.payload)?)
        } else {
            Err(ArpDrop::NotArp(e.ethertype))
        }
    });
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            stats.malformed += 1;
            return Err(e);
        }
    };
    // Replies and gratuitous requests (sender = target) announce the workload; the agent
    // already knows its address from config, so they are absorbed.
    if req.op != 1 || req.spa == req.tpa {
        stats.absorbed += 1;
        return Ok(None);
    }
    let mac = match lookup(req.tpa) {
        ArpTarget::Gateway | ArpTarget::Routed => VRRP_MAC,
        ArpTarget::Mac(m) => m,
        ArpTarget::Unknown => {
            stats.unknown += 1;
            return Ok(None);
        }
    };
    stats.replies += 1;
    let rep = Arp {
        op: 2,
        sha: mac,
        spa: req.tpa,
        tha: req.sha,
        tpa: req.spa,
    };
    Ok(Some(eth_frame(req.sha, mac, ETH_ARP, &rep.emit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: [u8; 6] = [2, 0, 0, 0, 0, 3];

    fn request(tpa: Ipv4Addr) -> Vec<u8> {
        let a = Arp {
            op: 1,
            sha: VM,
            spa: Ipv4Addr::new(10, 1, 1, 3),
            tha: [0; 6],
            tpa,
        };
        eth_frame([0xff; 6], VM, ETH_ARP, &a.emit())
    }

    fn answer(f: &[u8]) -> Arp {
        let e = Eth::parse(f).unwrap();
        assert_eq!(e.dst, VM);
        Arp::parse(e.payload).unwrap()
    }

    #[test]
    fn gateway_and_routed_get_vrrp_mac_known_get_theirs() {
        let mut s = ArpStats::default();
        let gw = Ipv4Addr::new(10, 1, 1, 1);
        let a = answer(
            &handle(&request(gw), |_| ArpTarget::Gateway, &mut s)
                .unwrap()
                .unwrap(),
        );
        assert_eq!(
            (a.op, a.sha, a.spa, a.tha, a.tpa),
            (2, VRRP_MAC, gw, VM, Ipv4Addr::new(10, 1, 1, 3))
        );
        let peer = [2, 0, 0, 0, 0, 4];
        let a = answer(
            &handle(
                &request(Ipv4Addr::new(10, 1, 1, 4)),
                |_| ArpTarget::Mac(peer),
                &mut s,
            )
            .unwrap()
            .unwrap(),
        );
        assert_eq!(a.sha, peer);
        let a = answer(
            &handle(
                &request(Ipv4Addr::new(10, 2, 0, 4)),
                |_| ArpTarget::Routed,
                &mut s,
            )
            .unwrap()
            .unwrap(),
        );
        assert_eq!(a.sha, VRRP_MAC);
        assert_eq!(s.replies, 3);
    }

    #[test]
    fn unknown_gratuitous_and_malformed_get_nothing() {
        let mut s = ArpStats::default();
        assert_eq!(
            handle(
                &request(Ipv4Addr::new(10, 9, 9, 9)),
                |_| ArpTarget::Unknown,
                &mut s
            ),
            Ok(None)
        );
        assert_eq!(
            handle(
                &request(Ipv4Addr::new(10, 1, 1, 3)),
                |_| ArpTarget::Gateway,
                &mut s
            ),
            Ok(None)
        );
        assert!(handle(
            &request(Ipv4Addr::new(10, 1, 1, 1))[..30],
            |_| ArpTarget::Gateway,
            &mut s
        )
        .is_err());
        assert_eq!(
            s,
            ArpStats {
                replies: 0,
                unknown: 1,
                absorbed: 1,
                malformed: 1
            }
        );
    }
}
