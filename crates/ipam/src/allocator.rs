//! Address allocation inside one subnet.
//!
//! [`SubnetAllocator`] keeps the free addresses of the subnet's allocation
//! pools as a set of disjoint ranges, so taking the highest (TF's default,
//! top-down) or lowest (`addr_from_start`) free address, reserving a specific
//! address and releasing one are all `O(log n)`: 20,000 sequential
//! allocations in a /16 take milliseconds. The allocator is pure state: the
//! caller persists instance-ips and replays them with [`SubnetAllocator::reserve`]
//! after a restart.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::cidr::{addr_to_u128, u128_to_addr};
use crate::ranges::RangeSet;
use crate::subnet::{Subnet, SubnetConfig};
use crate::IpamError;

/// Tracks the used addresses of one subnet.
#[derive(Debug, Clone)]
pub struct SubnetAllocator {
    subnet: Subnet,
    name: String,
    /// Addresses `allocate` may ever return (pools minus reserved); fixed.
    allocatable: RangeSet,
    /// The part of `allocatable` not currently used.
    free: RangeSet,
    /// Every address in use, including user-requested ones outside the pools.
    used: BTreeSet<u128>,
}

impl SubnetAllocator {
    /// Validates `cfg` and builds an allocator with nothing in use.
    pub fn new(cfg: &SubnetConfig) -> Result<Self, IpamError> {
        Subnet::new(cfg).map(Self::from_subnet)
    }

    /// Builds an allocator for an already validated subnet.
    pub fn from_subnet(subnet: Subnet) -> Self {
        let allocatable = subnet.allocatable();
        Self {
            name: subnet.network().to_string(),
            free: allocatable.clone(),
            allocatable,
            used: BTreeSet::new(),
            subnet,
        }
    }

    /// The subnet this allocator serves.
    pub fn subnet(&self) -> &Subnet {
        &self.subnet
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.subnet.contains(ip)
    }

    /// Whether `ip` is currently assigned (reserved addresses such as the
    /// gateway are not "used"; see [`Subnet::reserved_reason`]).
    pub fn is_used(&self, ip: IpAddr) -> bool {
        self.contains(ip) && self.used.contains(&addr_to_u128(ip))
    }

    /// Marks a specific, caller-requested address as used.
    ///
    /// Any host address of the subnet may be requested, also outside the
    /// allocation pools (TF and Neutron allow fixed IPs there).
    ///
    /// Errors: [`IpamError::OutOfSubnet`], [`IpamError::Reserved`] (network or
    /// broadcast address), [`IpamError::IsGateway`],
    /// [`IpamError::IsServiceAddress`] — all bad requests — and
    /// [`IpamError::InUse`], a conflict.
    pub fn reserve(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        if !self.contains(ip) {
            return Err(IpamError::OutOfSubnet {
                subnet: self.name.clone(),
                ip,
            });
        }
        if let Some(err) = self.subnet.reserved_reason(ip) {
            return Err(err);
        }
        let value = addr_to_u128(ip);
        if !self.used.insert(value) {
            return Err(IpamError::InUse {
                subnet: self.name.clone(),
                ip,
            });
        }
        self.free.remove(value);
        Ok(())
    }

    /// Picks a free address: the highest one (TF's top-down order), or the
    /// lowest with `addr_from_start`.
    pub fn allocate(&mut self) -> Result<IpAddr, IpamError> {
        let taken = if self.subnet.addr_from_start() {
            self.free.pop_first()
        } else {
            self.free.pop_last()
        };
        let value = taken.ok_or_else(|| IpamError::Exhausted {
            subnet: self.name.clone(),
        })?;
        self.used.insert(value);
        Ok(u128_to_addr(&self.subnet.network(), value))
    }

    /// Frees `ip`; returns whether it was in use.
    pub fn release(&mut self, ip: IpAddr) -> bool {
        if !self.contains(ip) {
            return false;
        }
        let value = addr_to_u128(ip);
        if !self.used.remove(&value) {
            return false;
        }
        if self.allocatable.contains(value) {
            self.free.insert(value);
        }
        true
    }

    /// Number of addresses in use (TF's `subnet-ip-count`; reserved
    /// addresses are not counted).
    pub fn used_count(&self) -> u128 {
        self.used.len() as u128
    }

    /// Number of addresses `allocate` could hand out on an empty subnet:
    /// the pools minus network, last, gateway and service address.
    pub fn total_allocatable(&self) -> u128 {
        self.allocatable.len()
    }

    /// Number of addresses `allocate` can still hand out.
    pub fn free_count(&self) -> u128 {
        self.free.len()
    }

    /// The used addresses in ascending order.
    pub fn used_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let net = self.subnet.network();
        self.used.iter().map(move |v| u128_to_addr(&net, *v))
    }
}
