//! The config database core: Filament's equivalent of TF's config API server
//! logic, without I/O.
//!
//! [`ConfigDb`] holds every config object in memory with the indexes the
//! API needs, and implements the operations `vnc_api` drives (create, read,
//! update, delete, list, ref-update, prop-collection, chmod, ...) with TF's
//! server-side behaviour: bootstrap objects, IPAM, MAC and id allocation,
//! derived routing instances, delete rules.
//!
//! Every write is two steps: an operation *plans* a [`Txn`] (and takes any
//! allocations), the shell commits the txn to the store, then calls
//! [`ConfigDb::apply`]. The core never reads a clock or generates randomness:
//! the time and a uuid source come in a [`Ctx`].

mod actions;
mod bootstrap;
mod db;
mod derived;
mod error;
pub mod feed;
mod hooks;
mod input;
mod obj;
mod read;
mod write;

pub use bootstrap::DEFAULT_ASN;
pub use db::{Allocs, ConfigDb, SubnetState, Txn};
pub use derived::{DerivedRef, DerivedWrite};
pub use error::{fq_repr, ConfigError, Result};
pub use input::{check_name, check_uuid, parse_fq_name};
pub use obj::{Obj, RefLink, StoredObj};
pub use read::{parse_filters, ListOpts, ReadOpts};

/// `id_perms.creator` of objects the system derives (routing instances made
/// for a VN, ...). They never block a user's delete and are removed with
/// their owner.
pub const SYSTEM_CREATOR: &str = "system";

/// What an operation needs from outside: the time and fresh uuids.
pub struct Ctx<'a> {
    /// Now, ISO-8601 UTC (`2024-01-01T00:00:00.000000`), for id_perms times.
    pub now: String,
    /// Source of new canonical uuids.
    pub uuids: &'a mut dyn FnMut() -> String,
    /// Owner for new top-level objects (the request's project id), if known.
    pub owner: Option<String>,
    /// Creating derived objects: marked system-created, may set system fields.
    pub system: bool,
    /// May set system-assigned fields (bootstrap, restore).
    pub trusted: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(now: impl Into<String>, uuids: &'a mut dyn FnMut() -> String) -> Self {
        Self {
            now: now.into(),
            uuids,
            owner: None,
            system: false,
            trusted: false,
        }
    }
}

/// A deterministic uuid source for tests, fuzzing and examples:
/// `00000000-0000-4000-8000-000000000001`, `...002`, ...
pub fn seq_uuids() -> impl FnMut() -> String {
    let mut n = 0u64;
    move || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}
