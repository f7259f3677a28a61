//! The single error type of this crate.
//!
//! Every variant carries the values needed to explain itself; the `Display`
//! text is meant to be returned to API clients verbatim. Use
//! [`IpamError::is_conflict`] to tell "already in use" (HTTP 409) apart from
//! bad input (HTTP 400) and [`IpamError::is_exhausted`] for pools that ran dry.

use std::net::IpAddr;

/// Errors from parsing, validating and allocating addresses and ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// A string that should be an IP address is not one.
    #[error("invalid {field} {value:?}: not an IPv4 or IPv6 address")]
    InvalidAddress {
        /// Which input held the value (e.g. "ip_prefix", "default_gateway").
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// A string that should be `address/len` is not one.
    #[error("invalid CIDR {value:?}: {reason}")]
    InvalidCidr {
        /// The offending text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A prefix length outside the range of its address family.
    #[error("invalid subnet {prefix}/{len}: prefix length must be 0..={max}")]
    InvalidPrefixLen {
        /// The prefix address as given.
        prefix: String,
        /// The prefix length as given.
        len: i64,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// A prefix whose address has bits set beyond its length.
    #[error("invalid subnet {prefix}/{len}: host bits are set (network address is {network})")]
    HostBitsSet {
        /// The prefix address as given.
        prefix: String,
        /// The prefix length.
        len: u8,
        /// The prefix with host bits cleared.
        network: IpAddr,
    },
    /// A subnet too small to hold any allocatable address (IPv4 /31 and /32,
    /// IPv6 /127 and /128).
    #[error(
        "subnet {subnet} has no allocatable addresses: prefix length must be at most {max_len}"
    )]
    SubnetTooSmall {
        /// The subnet.
        subnet: String,
        /// 30 for IPv4, 126 for IPv6.
        max_len: u8,
    },
    /// A configured default gateway that cannot be used.
    #[error("subnet {subnet} has invalid gateway ip address {gateway}: {reason}")]
    InvalidGateway {
        /// The subnet.
        subnet: String,
        /// The gateway as given.
        gateway: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A configured service (DNS/DHCP) address that cannot be used.
    #[error("subnet {subnet} has invalid service address {address}: {reason}")]
    InvalidServiceAddress {
        /// The subnet.
        subnet: String,
        /// The address as given.
        address: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A configured allocation pool that cannot be used.
    #[error("subnet {subnet} has invalid allocation pool {start}-{end}: {reason}")]
    InvalidAllocationPool {
        /// The subnet.
        subnet: String,
        /// Pool start as given.
        start: String,
        /// Pool end as given.
        end: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A requested address outside the subnet (or of the other family).
    #[error("ip address {ip} is not in subnet {subnet}")]
    OutOfSubnet {
        /// The subnet.
        subnet: String,
        /// The requested address.
        ip: IpAddr,
    },
    /// A requested address that is the subnet's default gateway.
    #[error("ip address {ip} is the default gateway of subnet {subnet}")]
    IsGateway {
        /// The subnet.
        subnet: String,
        /// The requested address.
        ip: IpAddr,
    },
    /// A requested address that is the subnet's service (DNS/DHCP) address.
    #[error("ip address {ip} is the service address of subnet {subnet}")]
    IsServiceAddress {
        /// The subnet.
        subnet: String,
        /// The requested address.
        ip: IpAddr,
    },
    /// A requested address that can never be assigned (network or broadcast).
    #[error("ip address {ip} is the {what} of subnet {subnet} and cannot be assigned")]
    Reserved {
        /// The subnet.
        subnet: String,
        /// The requested address.
        ip: IpAddr,
        /// "network address" or "broadcast address".
        what: &'static str,
    },
    /// A requested address already assigned.
    #[error("ip address {ip} is already in use in subnet {subnet}")]
    InUse {
        /// The subnet.
        subnet: String,
        /// The requested address.
        ip: IpAddr,
    },
    /// No free address is left.
    #[error("subnet {subnet} is exhausted: no free ip address left")]
    Exhausted {
        /// The subnet.
        subnet: String,
    },
    /// An id pool constructed with `min > max`.
    #[error("invalid id range {min}..={max}: min must not exceed max")]
    InvalidIdRange {
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
    /// A requested id outside its pool.
    #[error("id {id} is out of range {min}..={max}")]
    IdOutOfRange {
        /// The requested id.
        id: u64,
        /// Lower bound of the pool.
        min: u64,
        /// Upper bound of the pool.
        max: u64,
    },
    /// A requested id already allocated.
    #[error("id {id} is already in use")]
    IdInUse {
        /// The requested id.
        id: u64,
    },
    /// No free id is left.
    #[error("id range {min}..={max} is exhausted")]
    IdExhausted {
        /// Lower bound of the pool.
        min: u64,
        /// Upper bound of the pool.
        max: u64,
    },
    /// A malformed MAC address.
    #[error("invalid mac address {value:?}: expected six hex octets like 02:5b:1f:0c:1e:9a")]
    InvalidMac {
        /// The offending text.
        value: String,
    },
}

impl IpamError {
    /// True for "already in use" errors (map to HTTP 409 Conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::InUse { .. } | Self::IdInUse { .. })
    }

    /// True when a pool has no free address or id left.
    pub fn is_exhausted(&self) -> bool {
        matches!(self, Self::Exhausted { .. } | Self::IdExhausted { .. })
    }

    /// True for invalid input (map to HTTP 400 Bad Request): everything that
    /// is neither a conflict nor exhaustion.
    pub fn is_bad_request(&self) -> bool {
        !self.is_conflict() && !self.is_exhausted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_human_readable() {
        let err = IpamError::InvalidPrefixLen {
            prefix: "10.1.1.0".into(),
            len: 33,
            max: 32,
        };
        assert_eq!(
            err.to_string(),
            "invalid subnet 10.1.1.0/33: prefix length must be 0..=32"
        );
        assert!(err.is_bad_request());
        let in_use = IpamError::InUse {
            subnet: "10.1.1.0/24".into(),
            ip: IpAddr::from([10, 1, 1, 5]),
        };
        assert_eq!(
            in_use.to_string(),
            "ip address 10.1.1.5 is already in use in subnet 10.1.1.0/24"
        );
        assert!(in_use.is_conflict());
        assert!(IpamError::IdExhausted { min: 1, max: 2 }.is_exhausted());
    }
}
