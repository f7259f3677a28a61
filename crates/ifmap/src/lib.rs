//! Config objects as TF IFMap XML (node/link/metadata) and back, driven by the schema metadata
//! (tf-facts §2.6, `ifmap_encoder.cc` / `ifmap_agent_parser.cc`).
//!
//! The control node encodes, the agent decodes, with the same tables, so the agent sees
//! exactly the JSON the config API holds:
//!
//! ```text
//!  object JSON (API shape) ──encode_object──> ConfigNode + ConfigLinks ──ConfigIq──> XML
//!  XML ──ConfigIq::from_element──> IfmapGraph::apply ──object(type, name)──> object JSON
//! ```
//!
//! * [`names`] — XSD element and link names (hyphenation plus TF's exceptions);
//! * [`value`] — typed JSON ⇄ element content by the schema's `Ty`;
//! * [`codec`] — nodes, parent links, reference links with attributes; uuid ⇄ `UuidType`;
//! * [`linkattr`] — references with attributes as TF's link-attr nodes on the wire;
//! * [`graph`] — the receiver's graph, rebuilding whole objects.
//!
//! Vocabulary layer: no I/O, no clock.

pub mod codec;
pub mod error;
pub mod graph;
pub mod linkattr;
pub mod names;
pub mod value;

pub use codec::{
    decode_link, decode_node, encode_node, encode_object, encode_parent_link, encode_ref_link,
    encode_ref_links, longs_to_uuid, node_name, node_ref, split_name, uuid_to_longs, DecodedLink,
    DecodedNode,
};
pub use error::{IfmapError, Result};
pub use graph::{IfmapGraph, Key};
pub use linkattr::{attr_node_name, to_tf_wire};
