//! Tungsten Fabric address-management rules, checked with TF's exact values.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use filament_ipam::{IpamError, Subnet, SubnetAllocator, SubnetConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn alloc(cfg: SubnetConfig) -> SubnetAllocator {
    SubnetAllocator::new(&cfg).unwrap()
}

#[test]
fn default_v4_subnet_is_top_down() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24));
    let s = a.subnet();
    assert_eq!(s.gateway(), Some(ip("10.1.1.254")));
    assert_eq!(s.default_gateway_field(), "10.1.1.254");
    assert_eq!(s.dns_server_address(), Some(ip("10.1.1.253")));
    assert_eq!(s.dns_server_address_field(), Some("10.1.1.253"));
    assert_eq!(a.total_allocatable(), 252);
    assert_eq!(a.used_count(), 0);
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.252"));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.251"));
    assert_eq!(a.used_count(), 2);
    assert_eq!(a.free_count(), 250);
}

#[test]
fn addr_from_start_is_bottom_up() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24).with_addr_from_start(true));
    assert_eq!(a.subnet().gateway(), Some(ip("10.1.1.1")));
    assert_eq!(a.subnet().dns_server_address(), Some(ip("10.1.1.2")));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.3"));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.4"));
}

#[test]
fn user_gateway_is_kept() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24).with_gateway("10.1.1.1"));
    assert_eq!(a.subnet().gateway(), Some(ip("10.1.1.1")));
    assert_eq!(a.subnet().dns_server_address(), Some(ip("10.1.1.253")));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.254"));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.252"));
    assert_eq!(a.total_allocatable(), 252);
}

#[test]
fn service_address_steps_past_user_gateway() {
    let s = Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_gateway("10.1.1.253")).unwrap();
    assert_eq!(s.dns_server_address(), Some(ip("10.1.1.252")));
    let s = Subnet::new(
        &SubnetConfig::new("10.1.1.0", 24)
            .with_gateway("10.1.1.2")
            .with_addr_from_start(true),
    )
    .unwrap();
    assert_eq!(s.dns_server_address(), Some(ip("10.1.1.3")));
    let mut a = SubnetAllocator::from_subnet(s);
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.1"));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.4"));
}

#[test]
fn user_service_address_is_kept_and_validated() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24).with_dns_server_address("10.1.1.10"));
    assert_eq!(a.subnet().dns_server_address(), Some(ip("10.1.1.10")));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.253"));
    assert!(matches!(
        a.reserve(ip("10.1.1.10")),
        Err(IpamError::IsServiceAddress { .. })
    ));
    let err = Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_dns_server_address("10.1.2.10"))
        .unwrap_err();
    assert!(matches!(err, IpamError::InvalidServiceAddress { .. }));
    assert!(err.is_bad_request());
    assert!(matches!(
        Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_dns_server_address("bogus")),
        Err(IpamError::InvalidAddress {
            field: "dns_server_address",
            ..
        })
    ));
}

#[test]
fn no_gateway_is_kept_as_is() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24).with_gateway("0.0.0.0"));
    assert_eq!(a.subnet().gateway(), None);
    assert_eq!(a.subnet().default_gateway_field(), "0.0.0.0");
    assert_eq!(a.subnet().dns_server_address(), Some(ip("10.1.1.253")));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.254"));
    assert_eq!(a.total_allocatable(), 253);

    let s = Subnet::new(&SubnetConfig::new("2001:db8::", 64).with_gateway("::")).unwrap();
    assert_eq!(s.gateway(), None);
    assert_eq!(s.default_gateway_field(), "::");

    // Empty strings mean "not given", as in TF.
    let s = Subnet::new(
        &SubnetConfig::new("10.1.1.0", 24)
            .with_gateway("")
            .with_dns_server_address(" "),
    )
    .unwrap();
    assert_eq!(s.gateway(), Some(ip("10.1.1.254")));
    assert_eq!(s.dns_server_address(), Some(ip("10.1.1.253")));
}

#[test]
fn invalid_gateways() {
    for (gw, reason) in [
        ("10.1.2.1", "not in subnet"),
        ("10.1.1.0", "is the network address"),
        ("10.1.1.255", "is the broadcast address"),
        ("2001:db8::1", "not in subnet"),
    ] {
        let err = Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_gateway(gw)).unwrap_err();
        assert_eq!(
            err,
            IpamError::InvalidGateway {
                subnet: "10.1.1.0/24".into(),
                gateway: gw.into(),
                reason,
            }
        );
    }
    let err = Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_gateway("10.1.1")).unwrap_err();
    assert!(matches!(
        err,
        IpamError::InvalidAddress {
            field: "default_gateway",
            ..
        }
    ));
    assert_eq!(
        Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_gateway("10.1.2.1"))
            .unwrap_err()
            .to_string(),
        "subnet 10.1.1.0/24 has invalid gateway ip address 10.1.2.1: not in subnet"
    );
}

#[test]
fn invalid_prefixes() {
    let err = SubnetAllocator::new(&SubnetConfig::new("10.1.1.0", 33)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid subnet 10.1.1.0/33: prefix length must be 0..=32"
    );
    assert!(matches!(
        SubnetAllocator::new(&SubnetConfig::new("10.1.1.1", 24)),
        Err(IpamError::HostBitsSet { .. })
    ));
    assert!(matches!(
        SubnetAllocator::new(&SubnetConfig::new("10.1.1.300", 24)),
        Err(IpamError::InvalidAddress {
            field: "ip_prefix",
            ..
        })
    ));
}

#[test]
fn reserve_rules() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24));
    a.reserve(ip("10.1.1.10")).unwrap();
    assert!(a.is_used(ip("10.1.1.10")));
    let err = a.reserve(ip("10.1.1.10")).unwrap_err();
    assert_eq!(
        err,
        IpamError::InUse {
            subnet: "10.1.1.0/24".into(),
            ip: ip("10.1.1.10")
        }
    );
    assert!(err.is_conflict());
    let err = a.reserve(ip("10.1.1.254")).unwrap_err();
    assert!(matches!(err, IpamError::IsGateway { .. }));
    assert!(err.is_bad_request());
    assert!(matches!(
        a.reserve(ip("10.1.1.253")),
        Err(IpamError::IsServiceAddress { .. })
    ));
    assert!(matches!(
        a.reserve(ip("10.1.1.0")),
        Err(IpamError::Reserved {
            what: "network address",
            ..
        })
    ));
    assert!(matches!(
        a.reserve(ip("10.1.1.255")),
        Err(IpamError::Reserved {
            what: "broadcast address",
            ..
        })
    ));
    let err = a.reserve(ip("10.1.2.1")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ip address 10.1.2.1 is not in subnet 10.1.1.0/24"
    );
    assert!(matches!(err, IpamError::OutOfSubnet { .. }));
    assert!(matches!(
        a.reserve(ip("2001:db8::1")),
        Err(IpamError::OutOfSubnet { .. })
    ));
    assert!(a.contains(ip("10.1.1.0")));
    assert!(!a.contains(ip("10.1.2.0")));
    assert!(!a.is_used(ip("10.1.1.254")));
    // Reserving the next top-down candidate makes allocate skip it.
    a.reserve(ip("10.1.1.252")).unwrap();
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.251"));
    assert_eq!(a.used_count(), 3);
    assert_eq!(
        a.used_addresses().collect::<Vec<_>>(),
        vec![ip("10.1.1.10"), ip("10.1.1.251"), ip("10.1.1.252")]
    );
}

#[test]
fn release_and_reuse() {
    let mut a = alloc(SubnetConfig::new("10.1.1.0", 24));
    let first = a.allocate().unwrap();
    let second = a.allocate().unwrap();
    assert!(a.release(first));
    assert!(!a.release(first));
    assert!(!a.release(ip("10.9.9.9")));
    assert!(!a.release(ip("10.1.1.254")));
    assert!(!a.is_used(first));
    assert_eq!(a.used_count(), 1);
    assert_eq!(a.allocate().unwrap(), first);
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.250"));
    assert!(a.release(second));
    a.reserve(second).unwrap();
}

#[test]
fn exhaustion_in_slash_29() {
    let mut a = alloc(SubnetConfig::new("192.168.0.0", 29));
    // .0 network, .7 broadcast, .6 gateway, .5 service: .4 .3 .2 .1 remain.
    assert_eq!(a.total_allocatable(), 4);
    let got: Vec<_> = (0..4).map(|_| a.allocate().unwrap()).collect();
    assert_eq!(
        got,
        vec![
            ip("192.168.0.4"),
            ip("192.168.0.3"),
            ip("192.168.0.2"),
            ip("192.168.0.1")
        ]
    );
    let err = a.allocate().unwrap_err();
    assert_eq!(
        err,
        IpamError::Exhausted {
            subnet: "192.168.0.0/29".into()
        }
    );
    assert!(err.is_exhausted());
    a.release(ip("192.168.0.3"));
    assert_eq!(a.allocate().unwrap(), ip("192.168.0.3"));
}

#[test]
fn slash_30_has_nothing_allocatable() {
    let mut a = alloc(SubnetConfig::new("10.0.0.0", 30));
    assert_eq!(a.subnet().gateway(), Some(ip("10.0.0.2")));
    assert_eq!(a.subnet().dns_server_address(), Some(ip("10.0.0.1")));
    assert_eq!(a.total_allocatable(), 0);
    assert!(matches!(a.allocate(), Err(IpamError::Exhausted { .. })));

    // Without a gateway one address is left.
    let mut a = alloc(SubnetConfig::new("10.0.0.0", 30).with_gateway("0.0.0.0"));
    assert_eq!(a.allocate().unwrap(), ip("10.0.0.2"));
    assert!(a.allocate().is_err());

    // A user gateway taking the only service candidate leaves no service address.
    let s = Subnet::new(&SubnetConfig::new("10.0.0.0", 30).with_gateway("10.0.0.1")).unwrap();
    assert_eq!(s.dns_server_address(), None);
    assert_eq!(s.dns_server_address_field(), None);
    let mut a = SubnetAllocator::from_subnet(s);
    assert_eq!(a.allocate().unwrap(), ip("10.0.0.2"));
}

#[test]
fn slash_31_and_32_are_rejected() {
    for len in [31, 32] {
        let err = SubnetAllocator::new(&SubnetConfig::new("10.0.0.0", len)).unwrap_err();
        assert_eq!(
            err,
            IpamError::SubnetTooSmall {
                subnet: format!("10.0.0.0/{len}"),
                max_len: 30
            }
        );
        assert!(err.to_string().contains("no allocatable addresses"));
    }
    for len in [127, 128] {
        assert!(matches!(
            SubnetAllocator::new(&SubnetConfig::new("2001:db8::", len)),
            Err(IpamError::SubnetTooSmall { max_len: 126, .. })
        ));
    }
}

#[test]
fn ipv6_uses_last_address_rules() {
    let mut a = alloc(SubnetConfig::new("2001:db8::", 64));
    let s = a.subnet();
    assert_eq!(s.gateway(), Some(ip("2001:db8::ffff:ffff:ffff:fffe")));
    assert_eq!(
        s.dns_server_address(),
        Some(ip("2001:db8::ffff:ffff:ffff:fffd"))
    );
    assert_eq!(a.total_allocatable(), (1u128 << 64) - 4);
    assert_eq!(a.allocate().unwrap(), ip("2001:db8::ffff:ffff:ffff:fffc"));
    assert_eq!(a.allocate().unwrap(), ip("2001:db8::ffff:ffff:ffff:fffb"));
    assert!(matches!(
        a.reserve(ip("2001:db8::ffff:ffff:ffff:ffff")),
        Err(IpamError::Reserved {
            what: "last address",
            ..
        })
    ));
    assert!(matches!(
        a.reserve(ip("2001:db8::")),
        Err(IpamError::Reserved { .. })
    ));
    a.reserve(ip("2001:db8::5")).unwrap();
    assert!(matches!(
        a.reserve(ip("10.0.0.1")),
        Err(IpamError::OutOfSubnet { .. })
    ));

    let mut a = alloc(SubnetConfig::new("2001:db8::", 64).with_addr_from_start(true));
    assert_eq!(a.subnet().gateway(), Some(ip("2001:db8::1")));
    assert_eq!(a.subnet().dns_server_address(), Some(ip("2001:db8::2")));
    assert_eq!(a.allocate().unwrap(), ip("2001:db8::3"));
}

#[test]
fn ipv6_whole_space_does_not_overflow() {
    let mut a = alloc(SubnetConfig::new("::", 0));
    assert_eq!(
        a.subnet().gateway(),
        Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"))
    );
    assert_eq!(a.total_allocatable(), u128::MAX - 3);
    assert_eq!(
        a.allocate().unwrap(),
        ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc")
    );
    let mut a = alloc(SubnetConfig::new("0.0.0.0", 0).with_addr_from_start(true));
    assert_eq!(a.allocate().unwrap(), ip("0.0.0.3"));
}

#[test]
fn allocation_pools_restrict_allocation() {
    let mut a = alloc(
        SubnetConfig::new("10.1.1.0", 24)
            .with_pool("10.1.1.10", "10.1.1.12")
            .with_pool("10.1.1.100", "10.1.1.100"),
    );
    assert_eq!(a.total_allocatable(), 4);
    let got: Vec<_> = (0..4).map(|_| a.allocate().unwrap()).collect();
    assert_eq!(
        got,
        vec![
            ip("10.1.1.100"),
            ip("10.1.1.12"),
            ip("10.1.1.11"),
            ip("10.1.1.10")
        ]
    );
    assert!(a.allocate().is_err());
    // Specific addresses outside the pools may still be requested.
    a.reserve(ip("10.1.1.50")).unwrap();
    assert!(a.release(ip("10.1.1.50")));
    assert!(a.allocate().is_err());
    assert!(a.release(ip("10.1.1.11")));
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.11"));
}

#[test]
fn pools_exclude_reserved_addresses() {
    let mut a = alloc(
        SubnetConfig::new("10.1.1.0", 24)
            .with_pool("10.1.1.0", "10.1.1.255")
            .with_addr_from_start(true),
    );
    assert_eq!(a.total_allocatable(), 252);
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.3"));
    let mut a = alloc(
        SubnetConfig::new("10.1.1.0", 24)
            .with_pool("10.1.1.250", "10.1.1.255")
            .with_pool("10.1.1.248", "10.1.1.251"),
    );
    // Overlapping pools are merged: .248-.252 remain after .253/.254/.255.
    assert_eq!(a.total_allocatable(), 5);
    assert_eq!(a.allocate().unwrap(), ip("10.1.1.252"));
}

#[test]
fn invalid_pools() {
    let cases = [
        ("10.1.1.20", "10.1.1.10", "start is after end"),
        ("10.1.0.250", "10.1.1.10", "pool is outside the subnet"),
        ("10.1.1.10", "10.1.2.10", "pool is outside the subnet"),
        ("10.1.1.x", "10.1.1.10", "start is not an ip address"),
        ("10.1.1.1", "", "end is not an ip address"),
        ("2001:db8::1", "2001:db8::2", "pool is outside the subnet"),
    ];
    for (start, end, reason) in cases {
        let err =
            Subnet::new(&SubnetConfig::new("10.1.1.0", 24).with_pool(start, end)).unwrap_err();
        assert_eq!(
            err,
            IpamError::InvalidAllocationPool {
                subnet: "10.1.1.0/24".into(),
                start: start.into(),
                end: end.into(),
                reason,
            },
            "{start}-{end}"
        );
    }
}

#[test]
fn twenty_thousand_allocations_in_a_slash_16_go_top_down() {
    // Speed is measured by `filament bench api`, not asserted here.
    let mut a = alloc(SubnetConfig::new("172.16.0.0", 16));
    let mut last = None;
    for _ in 0..20_000 {
        last = Some(a.allocate().unwrap());
    }
    assert_eq!(a.used_count(), 20_000);
    // 172.16.255.252 is first; 20,000 addresses down from there.
    assert_eq!(last, Some(ip("172.16.177.221")));
    // Releasing and re-allocating keeps working without scans.
    for i in 0..1_000u32 {
        let addr = IpAddr::from([172, 16, 200, (i % 250) as u8 + 1]);
        a.release(addr);
    }
    assert!(a.allocate().is_ok());
}
