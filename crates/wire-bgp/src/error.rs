//! Decode and encode errors (RFC 4271 §6, RFC 7606).
//!
//! RFC 4271 §6 says which NOTIFICATION (error code, subcode, data) a speaker
//! MUST send for each malformed message; every [`DecodeError`] variant except
//! [`DecodeError::Incomplete`] and [`DecodeError::TreatAsWithdraw`] carries
//! exactly that, and [`DecodeError::notification`] builds it.
//!
//! RFC 7606 §2 adds the "treat-as-withdraw" approach for most malformed path
//! attributes; when [`crate::DecodeCtx::rfc7606`] is set those errors are
//! reported as [`DecodeError::TreatAsWithdraw`] instead of a session reset.

use crate::notification::{ErrorCode, HeaderError, Notification, OpenError, UpdateError};
use crate::update::Update;

/// Why a buffer could not be decoded into a BGP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer holds only part of a message; read at least `needed`
    /// more bytes and call decode again. Nothing was consumed.
    #[error("incomplete message: {needed} more bytes needed")]
    Incomplete {
        /// Minimum number of additional bytes required.
        needed: usize,
    },
    /// Message Header Error (code 1).
    #[error("message header error {subcode:?}: {reason}")]
    Header {
        /// Error subcode to send.
        subcode: HeaderError,
        /// NOTIFICATION data field.
        data: Vec<u8>,
        /// Human-readable context.
        reason: &'static str,
    },
    /// OPEN Message Error (code 2).
    #[error("OPEN message error {subcode:?}: {reason}")]
    Open {
        /// Error subcode to send.
        subcode: OpenError,
        /// NOTIFICATION data field.
        data: Vec<u8>,
        /// Human-readable context.
        reason: &'static str,
    },
    /// UPDATE Message Error (code 3) handled by session reset.
    #[error("UPDATE message error {subcode:?}: {reason}")]
    Update {
        /// Error subcode to send.
        subcode: UpdateError,
        /// NOTIFICATION data field.
        data: Vec<u8>,
        /// Human-readable context.
        reason: &'static str,
    },
    /// ROUTE-REFRESH Message Error (code 7, RFC 7313 §5).
    #[error("ROUTE-REFRESH message error: invalid message length")]
    RouteRefreshLength {
        /// NOTIFICATION data field (the complete message).
        data: Vec<u8>,
    },
    /// RFC 7606 "treat-as-withdraw": the UPDATE is framed correctly but an
    /// attribute is malformed; every NLRI it carries (reachable or not) MUST
    /// be handled as withdrawn and the session stays up.
    #[error("UPDATE treat-as-withdraw (attribute type {attr_type}, {subcode:?})")]
    TreatAsWithdraw {
        /// Type code of the offending attribute.
        attr_type: u8,
        /// What would have been sent under RFC 4271 rules.
        subcode: UpdateError,
        /// Length of the whole message, so a stream reader can skip it.
        msg_len: usize,
        /// The rest of the UPDATE, decoded with the bad attribute skipped:
        /// its withdrawn routes, NLRI and MP_(UN)REACH NLRI are all to be
        /// withdrawn.
        update: Box<Update>,
    },
}

impl DecodeError {
    /// The NOTIFICATION RFC 4271 §6 (or RFC 7313) says to send, if any.
    /// `Incomplete` and `TreatAsWithdraw` do not close the session.
    pub fn notification(&self) -> Option<Notification> {
        let (code, subcode, data) = match self {
            DecodeError::Incomplete { .. } | DecodeError::TreatAsWithdraw { .. } => return None,
            DecodeError::Header { subcode, data, .. } => {
                (ErrorCode::MessageHeader, u8::from(*subcode), data)
            }
            DecodeError::Open { subcode, data, .. } => (ErrorCode::Open, u8::from(*subcode), data),
            DecodeError::Update { subcode, data, .. } => {
                (ErrorCode::Update, u8::from(*subcode), data)
            }
            DecodeError::RouteRefreshLength { data } => (ErrorCode::RouteRefresh, 1, data),
        };
        Some(Notification {
            code,
            subcode,
            data: data.clone(),
        })
    }

    pub(crate) fn header(subcode: HeaderError, data: Vec<u8>, reason: &'static str) -> Self {
        DecodeError::Header {
            subcode,
            data,
            reason,
        }
    }

    pub(crate) fn open(subcode: OpenError, reason: &'static str) -> Self {
        DecodeError::Open {
            subcode,
            data: Vec::new(),
            reason,
        }
    }

    pub(crate) fn update(subcode: UpdateError, data: Vec<u8>, reason: &'static str) -> Self {
        DecodeError::Update {
            subcode,
            data,
            reason,
        }
    }

    /// UPDATE "Invalid Network Field" for malformed NLRI.
    pub(crate) fn nlri(reason: &'static str) -> Self {
        DecodeError::update(UpdateError::InvalidNetworkField, Vec::new(), reason)
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message exceeds the (possibly extended) maximum length.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLong {
        /// Encoded length.
        len: usize,
        /// Maximum allowed by the context.
        max: usize,
    },
    /// A length-prefixed field does not fit its length field.
    #[error("{what} of {len} bytes does not fit its length field")]
    FieldTooLong {
        /// Which field.
        what: &'static str,
        /// Encoded length.
        len: usize,
    },
    /// A value does not belong to the family / field it was put in.
    #[error("invalid value for encoding: {what}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
    },
}
