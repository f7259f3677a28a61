//! Errors of the IFMap codec: every malformed node or link is a value, never a panic.

use thiserror::Error;

/// What can go wrong converting between config JSON and IFMap XML.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IfmapError {
    /// The node type is not a resource type of the schema.
    #[error("unknown node type {type_name:?}")]
    UnknownType {
        /// The type as received.
        type_name: String,
    },
    /// The link's metadata name does not fit the two node types.
    #[error("unknown link {metadata:?} between {left:?} and {right:?}")]
    UnknownLink {
        /// Metadata type.
        metadata: String,
        /// Left node type.
        left: String,
        /// Right node type.
        right: String,
    },
    /// A value does not have the schema's type.
    #[error("{path}: expected {expected}, found {found:?}")]
    BadValue {
        /// Field path (`virtual-network-properties/network-id`).
        path: String,
        /// The schema type.
        expected: &'static str,
        /// What was found (truncated).
        found: String,
    },
    /// The object JSON lacks what identifies it.
    #[error("object has no {field}")]
    Missing {
        /// `fq_name`, `type`, ...
        field: &'static str,
    },
}

impl IfmapError {
    pub(crate) fn bad(path: &str, expected: &'static str, found: impl ToString) -> Self {
        let mut f = found.to_string();
        if f.len() > 80 {
            let mut end = 80;
            while !f.is_char_boundary(end) {
                end -= 1;
            }
            f.truncate(end);
        }
        IfmapError::BadValue {
            path: path.to_string(),
            expected,
            found: f,
        }
    }
}

/// Crate result.
pub type Result<T> = std::result::Result<T, IfmapError>;
