//! One IPAM subnet as Tungsten Fabric resolves it: the validated network,
//! its default gateway, its service (DNS/DHCP) address and its allocation
//! pools.
//!
//! Defaults follow TF's `vnc_addr_mgmt.py`:
//!
//! * gateway: the user's value if given, else the prefix's last address − 1
//!   (`10.1.1.254` in `10.1.1.0/24`), or first + 1 (`10.1.1.1`) with
//!   `addr_from_start`. `0.0.0.0` / `::` means "no gateway" and is kept as-is.
//! * service address: the user's value if given, else last − 2 (`10.1.1.253`)
//!   or first + 2 (`10.1.1.2`) with `addr_from_start`; if that is the gateway,
//!   the next address further in the same direction.
//! * the network address and the last address (IPv4 broadcast; IPv6 is
//!   treated the same way) are never allocatable.
//!
//! Subnets with fewer than four addresses (IPv4 /31 and /32, IPv6 /127 and
//! /128) are rejected, as TF does: they cannot hold a single allocatable
//! address.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cidr::{addr_to_u128, net_bounds, parse_ip, parse_subnet, u128_to_addr};
use crate::ranges::RangeSet;
use crate::IpamError;

/// One `allocation_pools` entry of TF's `IpamSubnetType`, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocationPool {
    /// First address of the pool (inclusive).
    pub start: String,
    /// Last address of the pool (inclusive).
    pub end: String,
}

impl AllocationPool {
    /// A pool from `start` to `end`, both inclusive.
    pub fn new(start: impl Into<String>, end: impl Into<String>) -> Self {
        Self {
            start: start.into(),
            end: end.into(),
        }
    }
}

/// The user-supplied fields of a TF `IpamSubnetType` that drive allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetConfig {
    /// `subnet.ip_prefix`, e.g. `"10.1.1.0"`.
    pub ip_prefix: String,
    /// `subnet.ip_prefix_len`, e.g. `24`.
    pub ip_prefix_len: i64,
    /// `default_gateway`; `None` or empty means "pick the default".
    pub default_gateway: Option<String>,
    /// `dns_server_address`; `None` or empty means "pick the default".
    pub dns_server_address: Option<String>,
    /// `allocation_pools`; empty means "the whole subnet".
    pub allocation_pools: Vec<AllocationPool>,
    /// `addr_from_start`: defaults and allocation go bottom-up instead of top-down.
    pub addr_from_start: bool,
}

impl SubnetConfig {
    /// A config with only the prefix set; every other field takes its default.
    pub fn new(ip_prefix: impl Into<String>, ip_prefix_len: i64) -> Self {
        Self {
            ip_prefix: ip_prefix.into(),
            ip_prefix_len,
            ..Self::default()
        }
    }

    /// Sets `default_gateway`.
    pub fn with_gateway(mut self, gateway: impl Into<String>) -> Self {
        self.default_gateway = Some(gateway.into());
        self
    }

    /// Sets `dns_server_address`.
    pub fn with_dns_server_address(mut self, address: impl Into<String>) -> Self {
        self.dns_server_address = Some(address.into());
        self
    }

    /// Appends one allocation pool.
    pub fn with_pool(mut self, start: impl Into<String>, end: impl Into<String>) -> Self {
        self.allocation_pools.push(AllocationPool::new(start, end));
        self
    }

    /// Sets `addr_from_start`.
    pub fn with_addr_from_start(mut self, addr_from_start: bool) -> Self {
        self.addr_from_start = addr_from_start;
        self
    }
}

/// A validated subnet with its reserved addresses resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    net: IpNet,
    gateway: Option<IpAddr>,
    gateway_field: String,
    service_address: Option<IpAddr>,
    service_field: Option<String>,
    pools: Vec<(IpAddr, IpAddr)>,
    addr_from_start: bool,
}

impl Subnet {
    /// Validates `cfg` and resolves gateway, service address and pools.
    pub fn new(cfg: &SubnetConfig) -> Result<Self, IpamError> {
        let net = parse_subnet(&cfg.ip_prefix, cfg.ip_prefix_len)?;
        let (min_host_bits, max_len) = match net {
            IpNet::V4(_) => (2u8, 30u8),
            IpNet::V6(_) => (2u8, 126u8),
        };
        if net.max_prefix_len() - net.prefix_len() < min_host_bits {
            return Err(IpamError::SubnetTooSmall {
                subnet: net.to_string(),
                max_len,
            });
        }
        let name = net.to_string();
        let (first, last) = net_bounds(&net);
        let from_start = cfg.addr_from_start;

        let (gateway, gateway_field) = match given(cfg.default_gateway.as_deref()) {
            Some(text) => {
                let ip = parse_ip("default_gateway", text)?;
                if ip.is_unspecified() {
                    (None, ip.to_string())
                } else {
                    check_inside(&net, ip).map_err(|reason| IpamError::InvalidGateway {
                        subnet: name.clone(),
                        gateway: text.to_owned(),
                        reason,
                    })?;
                    (Some(ip), ip.to_string())
                }
            }
            None => {
                let value = if from_start { first + 1 } else { last - 1 };
                let ip = u128_to_addr(&net, value);
                (Some(ip), ip.to_string())
            }
        };

        let (service_address, service_field) = match given(cfg.dns_server_address.as_deref()) {
            Some(text) => {
                let ip = parse_ip("dns_server_address", text)?;
                if ip.is_unspecified() {
                    (None, Some(ip.to_string()))
                } else {
                    check_inside(&net, ip).map_err(|reason| IpamError::InvalidServiceAddress {
                        subnet: name.clone(),
                        address: text.to_owned(),
                        reason,
                    })?;
                    (Some(ip), Some(ip.to_string()))
                }
            }
            None => {
                let gw = gateway.map(addr_to_u128);
                let ip =
                    default_service(first, last, gw, from_start).map(|v| u128_to_addr(&net, v));
                (ip, ip.map(|ip| ip.to_string()))
            }
        };

        let mut pools = Vec::with_capacity(cfg.allocation_pools.len());
        for pool in &cfg.allocation_pools {
            let invalid = |reason| IpamError::InvalidAllocationPool {
                subnet: name.clone(),
                start: pool.start.clone(),
                end: pool.end.clone(),
                reason,
            };
            let start = parse_ip("allocation_pools.start", &pool.start)
                .map_err(|_| invalid("start is not an ip address"))?;
            let end = parse_ip("allocation_pools.end", &pool.end)
                .map_err(|_| invalid("end is not an ip address"))?;
            if !net.contains(&start) || !net.contains(&end) {
                return Err(invalid("pool is outside the subnet"));
            }
            if addr_to_u128(start) > addr_to_u128(end) {
                return Err(invalid("start is after end"));
            }
            pools.push((start, end));
        }

        Ok(Self {
            net,
            gateway,
            gateway_field,
            service_address,
            service_field,
            pools,
            addr_from_start: from_start,
        })
    }

    /// The validated network.
    pub fn network(&self) -> IpNet {
        self.net
    }

    /// The gateway, or `None` when configured as `0.0.0.0` / `::`.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    /// The value TF stores in `default_gateway`: the resolved gateway, or the
    /// unspecified address the user gave.
    pub fn default_gateway_field(&self) -> &str {
        &self.gateway_field
    }

    /// The service (DNS/DHCP) address, if any.
    ///
    /// `None` when configured as `0.0.0.0` / `::`, or in the corner case of a
    /// /30 whose only default candidate is taken by a user-given gateway.
    pub fn dns_server_address(&self) -> Option<IpAddr> {
        self.service_address
    }

    /// The value to store in `dns_server_address` (`None`: leave it unset).
    pub fn dns_server_address_field(&self) -> Option<&str> {
        self.service_field.as_deref()
    }

    /// Validated allocation pools (empty: the whole subnet).
    pub fn allocation_pools(&self) -> &[(IpAddr, IpAddr)] {
        &self.pools
    }

    /// Whether defaults and allocation go bottom-up.
    pub fn addr_from_start(&self) -> bool {
        self.addr_from_start
    }

    /// Whether `ip` is inside the network (same family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip)
    }

    /// Why `ip` can never be handed to an instance: `Some(error)` for the
    /// network address, the last address, the gateway and the service
    /// address; `None` otherwise (including addresses outside the subnet).
    pub fn reserved_reason(&self, ip: IpAddr) -> Option<IpamError> {
        if !self.contains(ip) {
            return None;
        }
        let subnet = self.net.to_string();
        if ip == self.net.network() {
            Some(IpamError::Reserved {
                subnet,
                ip,
                what: "network address",
            })
        } else if ip == self.net.broadcast() {
            Some(IpamError::Reserved {
                subnet,
                ip,
                what: last_address_name(&self.net),
            })
        } else if Some(ip) == self.gateway {
            Some(IpamError::IsGateway { subnet, ip })
        } else if Some(ip) == self.service_address {
            Some(IpamError::IsServiceAddress { subnet, ip })
        } else {
            None
        }
    }

    /// The addresses `allocate` may hand out, as integer ranges.
    pub(crate) fn allocatable(&self) -> RangeSet {
        let (first, last) = net_bounds(&self.net);
        let (lo, hi) = (first + 1, last - 1);
        let mut set = RangeSet::new();
        if self.pools.is_empty() {
            set.insert_range(lo, hi);
        } else {
            for (start, end) in &self.pools {
                set.insert_range(addr_to_u128(*start).max(lo), addr_to_u128(*end).min(hi));
            }
        }
        for ip in [self.gateway, self.service_address].into_iter().flatten() {
            set.remove(addr_to_u128(ip));
        }
        set
    }
}

/// The trimmed value when present and non-empty (TF treats "" as unset).
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Checks that a configured gateway/service address is a usable host address.
fn check_inside(net: &IpNet, ip: IpAddr) -> Result<(), &'static str> {
    if !net.contains(&ip) {
        Err("not in subnet")
    } else if ip == net.network() {
        Err("is the network address")
    } else if ip == net.broadcast() {
        Err(match net {
            IpNet::V4(_) => "is the broadcast address",
            IpNet::V6(_) => "is the last address of the subnet",
        })
    } else {
        Ok(())
    }
}

/// What the last address of a prefix is called in messages.
fn last_address_name(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "broadcast address",
        IpNet::V6(_) => "last address",
    }
}

/// TF's default service address (last − 2 / first + 2), stepping past the
/// gateway in the same direction; `None` when the subnet has no room left.
fn default_service(
    first: u128,
    last: u128,
    gateway: Option<u128>,
    from_start: bool,
) -> Option<u128> {
    let mut candidate = if from_start { first + 2 } else { last - 2 };
    while Some(candidate) == gateway {
        candidate = if from_start {
            candidate + 1
        } else {
            candidate - 1
        };
    }
    (candidate > first && candidate < last).then_some(candidate)
}
