//! `filament-ipam`: sans-IO address and id allocation for Filament.
//!
//! Everything here is deterministic state with no IO, clock or randomness;
//! callers pass uuids in and persist results themselves. Behaviour follows
//! Tungsten Fabric's config API server (`vnc_addr_mgmt.py`):
//!
//! * [`Subnet`] / [`SubnetConfig`]: validated IPv4/IPv6 subnets with TF's
//!   default gateway (last − 1), service address (last − 2) and allocation
//!   pools, or first + 1 / first + 2 with `addr_from_start`;
//! * [`SubnetAllocator`]: top-down (or bottom-up) address allocation,
//!   specific-address reservation and release;
//! * [`IdAllocator`]: lowest-free integer ids for virtual networks, security
//!   groups and route targets;
//! * [`mac_from_uuid`] / [`validate_mac`]: TF's VMI MAC addresses;
//! * [`parse_cidr`] / [`prefix_contains`]: CIDR helpers for validation.
//!
//! All errors are [`IpamError`].

mod allocator;
mod cidr;
mod error;
mod ids;
mod mac;
mod ranges;
mod subnet;

pub use allocator::SubnetAllocator;
pub use cidr::{
    parse_cidr, parse_cidr_normalized, parse_ip, parse_subnet, prefix_contains,
    prefix_contains_addr, prefixes_overlap,
};
pub use error::IpamError;
pub use ids::{
    IdAllocator, RT_NUMBER_MAX, RT_NUMBER_MIN, SG_ID_BASE, SG_ID_MAX, SG_ID_MIN, VN_ID_MAX,
    VN_ID_MIN,
};
pub use ipnet::IpNet;
pub use mac::{mac_from_uuid, normalize_mac, validate_mac};
pub use subnet::{AllocationPool, Subnet, SubnetConfig};
