//! Filament's data model.
//!
//! `filament.schema` (our own declarative format, see `README.md`) is the one
//! definition of every resource type: its properties, references (with link
//! attributes) and parent types, and the structured types those use. The build
//! script turns it into:
//! - [`types`] and [`resources`]: Rust structs with serde codecs whose JSON is
//!   what the Python `vnc_api` client sends and reads;
//! - [`STRUCTS`], [`RESOURCES`], [`COMMON`]: static metadata from which the
//!   config API derives validation ([`validate`]), the parent/child and
//!   reference graph ([`Index`]) and its REST routes.
//!
//! Adding a type or a property is a schema edit; no handler code changes.
//! This crate is vocabulary: no I/O, no clock.

pub mod de;
#[doc(hidden)]
pub mod dsl;
mod meta;
mod validate;

pub use meta::{index, Collection, FieldDef, Index, PropDef, RefDef, ResourceDef, StructDef, Ty};
pub use validate::{validate, ValidationError};

use serde::{Deserialize, Serialize};

/// A reference as it appears in an object's `<x>_refs` list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjRef<A> {
    /// fq_name of the referenced object.
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr: Option<A>,
}

include!(concat!(env!("OUT_DIR"), "/generated.rs"));
