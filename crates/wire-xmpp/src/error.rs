//! Error type for the whole crate (tf-facts §2: every malformed stanza is a value, never a panic).

use thiserror::Error;

/// Everything that can go wrong while framing, parsing or interpreting TF XMPP.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XmppError {
    /// Bytes are not well-formed XML (with the underlying reason).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// Stanza bytes are not valid UTF-8.
    #[error("stanza is not valid UTF-8")]
    Utf8,
    /// A single stanza grew beyond the configured cap.
    #[error("stanza exceeds {limit} bytes")]
    StanzaTooLarge {
        /// The configured maximum stanza size in bytes.
        limit: usize,
    },
    /// Caller fed more bytes than the parser will buffer without draining events.
    #[error("input buffer full ({limit} bytes); drain events before feeding more")]
    BufferFull {
        /// The configured buffer limit in bytes.
        limit: usize,
    },
    /// Non-whitespace text between stanzas, a DOCTYPE, or a stanza before the stream header.
    #[error("unexpected data at stream level: {0}")]
    UnexpectedStreamData(String),
    /// The parser hit an error earlier and refuses further input.
    #[error("stream parser is poisoned by an earlier error")]
    Poisoned,
    /// A required element is missing.
    #[error("<{parent}> lacks required child <{child}>")]
    MissingElement {
        /// The element that should contain the child.
        parent: String,
        /// The missing child's name.
        child: String,
    },
    /// A required attribute is missing.
    #[error("<{element}> lacks required attribute '{attr}'")]
    MissingAttribute {
        /// The element lacking the attribute.
        element: String,
        /// The attribute name.
        attr: String,
    },
    /// A value could not be interpreted.
    #[error("invalid value for {field}: {value:?} ({reason})")]
    InvalidValue {
        /// Which field (element or attribute path).
        field: String,
        /// The offending text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The element is not the stanza kind the caller asked for.
    #[error("unexpected element <{found}>, expected {expected}")]
    UnexpectedElement {
        /// What the caller wanted.
        expected: String,
        /// What was found.
        found: String,
    },
}

impl XmppError {
    pub(crate) fn invalid(field: &str, value: &str, reason: impl Into<String>) -> Self {
        XmppError::InvalidValue {
            field: field.to_string(),
            value: truncate(value),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(parent: &str, child: &str) -> Self {
        XmppError::MissingElement {
            parent: parent.to_string(),
            child: child.to_string(),
        }
    }

    pub(crate) fn missing_attr(element: &str, attr: &str) -> Self {
        XmppError::MissingAttribute {
            element: element.to_string(),
            attr: attr.to_string(),
        }
    }
}

/// Keep error payloads small even for hostile input.
fn truncate(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Crate result alias.
pub type Result<T> = std::result::Result<T, XmppError>;
