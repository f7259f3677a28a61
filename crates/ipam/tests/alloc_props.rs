//! Property tests: exhausting a subnet never yields a duplicate, a reserved
//! address or an address outside the allocation pools, and id pools never
//! hand out an id twice.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use filament_ipam::{IdAllocator, IpamError, SubnetAllocator, SubnetConfig};
use proptest::prelude::*;

/// A random /22../30 IPv4 subnet config inside 10.0.0.0/8 with optional
/// gateway, pools and direction. Offsets are relative to the network.
fn subnet_config() -> impl Strategy<Value = SubnetConfig> {
    (22u8..=30, any::<u16>(), any::<bool>()).prop_flat_map(|(len, base, from_start)| {
        let size = 1u32 << (32 - len);
        let network = (10u32 << 24) | ((u32::from(base) << 10) & !(size - 1) & 0x00ff_ffff);
        let gateway = prop_oneof![Just(None), Just(Some(0u32)), (1..size - 1).prop_map(Some),];
        let pools = prop::collection::vec((0..size, 0..size), 0..4);
        (gateway, pools).prop_map(move |(gw, pools)| {
            let addr = |off: u32| Ipv4Addr::from(network + off).to_string();
            let mut cfg =
                SubnetConfig::new(addr(0), i64::from(len)).with_addr_from_start(from_start);
            match gw {
                Some(0) => cfg = cfg.with_gateway("0.0.0.0"),
                Some(off) => cfg = cfg.with_gateway(addr(off)),
                None => {}
            }
            for (a, b) in pools {
                cfg = cfg.with_pool(addr(a.min(b)), addr(a.max(b)));
            }
            cfg
        })
    })
}

fn in_pools(cfg: &SubnetConfig, ip: IpAddr) -> bool {
    if cfg.allocation_pools.is_empty() {
        return true;
    }
    cfg.allocation_pools.iter().any(|p| {
        let start: IpAddr = p.start.parse().unwrap();
        let end: IpAddr = p.end.parse().unwrap();
        start <= ip && ip <= end
    })
}

proptest! {
    #[test]
    fn exhausting_a_subnet_is_sound(
        cfg in subnet_config(),
        requests in prop::collection::vec(any::<u16>(), 0..8),
    ) {
        let mut a = SubnetAllocator::new(&cfg).unwrap();
        let subnet = a.subnet().clone();
        let net = subnet.network();
        let size = 1u32 << (32 - net.prefix_len());
        let base = match net.network() { IpAddr::V4(v) => u32::from(v), IpAddr::V6(_) => unreachable!() };

        // Some caller-requested addresses first.
        let mut seen = BTreeSet::new();
        for r in requests {
            let req = IpAddr::V4(Ipv4Addr::from(base + u32::from(r) % size));
            match a.reserve(req) {
                Ok(()) => { prop_assert!(seen.insert(req)); }
                Err(IpamError::InUse { .. }) => prop_assert!(seen.contains(&req)),
                Err(err) => prop_assert!(subnet.reserved_reason(req) == Some(err)),
            }
        }
        let requested_in_pool = seen
            .iter()
            .filter(|ip| in_pools(&cfg, **ip) && subnet.reserved_reason(**ip).is_none())
            .count() as u128;
        prop_assert_eq!(a.free_count(), a.total_allocatable() - requested_in_pool);

        let mut previous: Option<IpAddr> = None;
        let mut handed_out = 0u128;
        loop {
            match a.allocate() {
                Ok(ip) => {
                    handed_out += 1;
                    prop_assert!(seen.insert(ip), "duplicate {}", ip);
                    prop_assert!(net.contains(&ip));
                    prop_assert!(subnet.reserved_reason(ip).is_none(), "reserved {}", ip);
                    prop_assert!(Some(ip) != subnet.gateway());
                    prop_assert!(Some(ip) != subnet.dns_server_address());
                    prop_assert!(in_pools(&cfg, ip), "outside pools {}", ip);
                    // Strictly monotonic in the configured direction.
                    if let Some(prev) = previous {
                        if subnet.addr_from_start() {
                            prop_assert!(ip > prev);
                        } else {
                            prop_assert!(ip < prev);
                        }
                    }
                    previous = Some(ip);
                }
                Err(err) => {
                    prop_assert!(err.is_exhausted());
                    break;
                }
            }
        }
        prop_assert_eq!(handed_out + requested_in_pool, a.total_allocatable());
        prop_assert_eq!(a.used_count(), seen.len() as u128);
        prop_assert_eq!(a.free_count(), 0);

        // Releasing everything and exhausting again yields the same count.
        for ip in &seen {
            prop_assert!(a.release(*ip));
        }
        prop_assert_eq!(a.used_count(), 0);
        let mut again = 0u128;
        while a.allocate().is_ok() {
            again += 1;
        }
        prop_assert_eq!(again, a.total_allocatable());
    }

    #[test]
    fn id_pool_never_duplicates(
        min in 0u64..1000,
        span in 0u64..200,
        ops in prop::collection::vec((0u8..3, 0u64..1200), 0..300),
    ) {
        let max = min + span;
        let mut ids = IdAllocator::new(min, max).unwrap();
        let mut model = BTreeSet::new();
        for (op, value) in ops {
            match op {
                0 => match ids.allocate() {
                    Ok(id) => {
                        prop_assert!((min..=max).contains(&id));
                        // Lowest free first.
                        let expected = (min..=max).find(|i| !model.contains(i));
                        prop_assert_eq!(Some(id), expected);
                        prop_assert!(model.insert(id));
                    }
                    Err(err) => {
                        prop_assert!(err.is_exhausted());
                        prop_assert_eq!(model.len() as u64, span + 1);
                    }
                },
                1 => {
                    let res = ids.reserve(value);
                    if !(min..=max).contains(&value) {
                        prop_assert!(
                            matches!(res, Err(IpamError::IdOutOfRange { .. })),
                            "expected IdOutOfRange"
                        );
                    } else if model.contains(&value) {
                        prop_assert_eq!(res, Err(IpamError::IdInUse { id: value }));
                    } else {
                        prop_assert!(res.is_ok());
                        model.insert(value);
                    }
                }
                _ => {
                    prop_assert_eq!(ids.release(value), model.remove(&value));
                }
            }
            prop_assert_eq!(ids.used_count(), model.len() as u64);
            prop_assert_eq!(ids.is_used(value), model.contains(&value));
        }
    }
}
