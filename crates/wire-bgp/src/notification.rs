//! NOTIFICATION (RFC 4271 §4.5) and KEEPALIVE (§4.4) messages, plus the error
//! code and subcode registries of RFC 4271 §6, RFC 4486 / RFC 8538 (Cease)
//! and RFC 7313 (ROUTE-REFRESH).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

enum_with_unknown! {
    /// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313 §5).
    pub enum ErrorCode(u8) {
        /// Message Header Error.
        MessageHeader = 1,
        /// OPEN Message Error.
        Open = 2,
        /// UPDATE Message Error.
        Update = 3,
        /// Hold Timer Expired.
        HoldTimerExpired = 4,
        /// Finite State Machine Error.
        Fsm = 5,
        /// Cease.
        Cease = 6,
        /// ROUTE-REFRESH Message Error (RFC 7313).
        RouteRefresh = 7,
    }
}

enum_with_unknown! {
    /// Message Header Error subcodes (RFC 4271 §6.1).
    pub enum HeaderError(u8) {
        /// Connection Not Synchronized (bad marker).
        ConnectionNotSynchronized = 1,
        /// Bad Message Length.
        BadMessageLength = 2,
        /// Bad Message Type.
        BadMessageType = 3,
    }
}

enum_with_unknown! {
    /// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492 §5).
    pub enum OpenError(u8) {
        /// Unspecific (RFC 4493 / IANA).
        Unspecific = 0,
        /// Unsupported Version Number.
        UnsupportedVersion = 1,
        /// Bad Peer AS.
        BadPeerAs = 2,
        /// Bad BGP Identifier.
        BadBgpId = 3,
        /// Unsupported Optional Parameter.
        UnsupportedOptionalParameter = 4,
        /// Unacceptable Hold Time.
        UnacceptableHoldTime = 6,
        /// Unsupported Capability (RFC 5492).
        UnsupportedCapability = 7,
    }
}

enum_with_unknown! {
    /// UPDATE Message Error subcodes (RFC 4271 §6.3).
    pub enum UpdateError(u8) {
        /// Malformed Attribute List.
        MalformedAttributeList = 1,
        /// Unrecognized Well-known Attribute.
        UnrecognizedWellKnown = 2,
        /// Missing Well-known Attribute.
        MissingWellKnown = 3,
        /// Attribute Flags Error.
        AttributeFlags = 4,
        /// Attribute Length Error.
        AttributeLength = 5,
        /// Invalid ORIGIN Attribute.
        InvalidOrigin = 6,
        /// Invalid NEXT_HOP Attribute.
        InvalidNextHop = 8,
        /// Optional Attribute Error.
        OptionalAttribute = 9,
        /// Invalid Network Field.
        InvalidNetworkField = 10,
        /// Malformed AS_PATH.
        MalformedAsPath = 11,
    }
}

enum_with_unknown! {
    /// Cease subcodes (RFC 4486, RFC 8538).
    pub enum CeaseSubcode(u8) {
        /// Maximum Number of Prefixes Reached.
        MaxPrefixes = 1,
        /// Administrative Shutdown.
        AdminShutdown = 2,
        /// Peer De-configured.
        PeerDeconfigured = 3,
        /// Administrative Reset.
        AdminReset = 4,
        /// Connection Rejected.
        ConnectionRejected = 5,
        /// Other Configuration Change.
        OtherConfigChange = 6,
        /// Connection Collision Resolution.
        CollisionResolution = 7,
        /// Out of Resources.
        OutOfResources = 8,
        /// Hard Reset (RFC 8538).
        HardReset = 9,
    }
}

/// A NOTIFICATION message (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: ErrorCode,
    /// Error subcode; interpret with the `*_subcode` helpers.
    pub subcode: u8,
    /// Diagnostic data (rest of the message).
    pub data: Vec<u8>,
}

impl Notification {
    /// A Cease NOTIFICATION with the given subcode and no data.
    pub fn cease(subcode: CeaseSubcode) -> Self {
        Notification {
            code: ErrorCode::Cease,
            subcode: subcode.into(),
            data: Vec::new(),
        }
    }

    /// The subcode as a Cease subcode, if the code is Cease.
    pub fn cease_subcode(&self) -> Option<CeaseSubcode> {
        (self.code == ErrorCode::Cease).then(|| CeaseSubcode::from(self.subcode))
    }

    /// The subcode's name in its code's registry (RFC 4271 §4.5 and §6,
    /// RFC 4486, RFC 7313), e.g. "Invalid Network Field"; `None` for an
    /// unassigned one.
    pub fn subcode_name(&self) -> Option<&'static str> {
        Some(match self.code {
            ErrorCode::MessageHeader => match HeaderError::from(self.subcode) {
                HeaderError::ConnectionNotSynchronized => "Connection Not Synchronized",
                HeaderError::BadMessageLength => "Bad Message Length",
                HeaderError::BadMessageType => "Bad Message Type",
                HeaderError::Unknown(_) => return None,
            },
            ErrorCode::Open => match OpenError::from(self.subcode) {
                OpenError::Unspecific => "Unspecific",
                OpenError::UnsupportedVersion => "Unsupported Version Number",
                OpenError::BadPeerAs => "Bad Peer AS",
                OpenError::BadBgpId => "Bad BGP Identifier",
                OpenError::UnsupportedOptionalParameter => "Unsupported Optional Parameter",
                OpenError::UnacceptableHoldTime => "Unacceptable Hold Time",
                OpenError::UnsupportedCapability => "Unsupported Capability",
                OpenError::Unknown(_) => return None,
            },
            ErrorCode::Update => update_error_name(UpdateError::from(self.subcode))?,
            ErrorCode::HoldTimerExpired => "Hold Timer Expired",
            ErrorCode::Fsm => "Finite State Machine Error",
            ErrorCode::Cease => match CeaseSubcode::from(self.subcode) {
                CeaseSubcode::MaxPrefixes => "Maximum Number of Prefixes Reached",
                CeaseSubcode::AdminShutdown => "Administrative Shutdown",
                CeaseSubcode::PeerDeconfigured => "Peer De-configured",
                CeaseSubcode::AdminReset => "Administrative Reset",
                CeaseSubcode::ConnectionRejected => "Connection Rejected",
                CeaseSubcode::OtherConfigChange => "Other Configuration Change",
                CeaseSubcode::CollisionResolution => "Connection Collision Resolution",
                CeaseSubcode::OutOfResources => "Out of Resources",
                CeaseSubcode::HardReset => "Hard Reset",
                CeaseSubcode::Unknown(_) => return None,
            },
            ErrorCode::RouteRefresh => "Invalid Message Length",
            ErrorCode::Unknown(_) => return None,
        })
    }

    pub(crate) fn decode(body: &[u8]) -> Self {
        // The framing layer guarantees at least 2 body bytes (length >= 21).
        let code = body.first().copied().unwrap_or(0);
        let subcode = body.get(1).copied().unwrap_or(0);
        Notification {
            code: ErrorCode::from(code),
            subcode,
            data: body.get(2..).unwrap_or_default().to_vec(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code.into());
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }
}

/// The name of an UPDATE Message Error subcode (RFC 4271 §6.3), e.g.
/// "Attribute Length Error"; `None` for an unassigned one.
pub fn update_error_name(e: UpdateError) -> Option<&'static str> {
    Some(match e {
        UpdateError::MalformedAttributeList => "Malformed Attribute List",
        UpdateError::UnrecognizedWellKnown => "Unrecognized Well-known Attribute",
        UpdateError::MissingWellKnown => "Missing Well-known Attribute",
        UpdateError::AttributeFlags => "Attribute Flags Error",
        UpdateError::AttributeLength => "Attribute Length Error",
        UpdateError::InvalidOrigin => "Invalid ORIGIN Attribute",
        UpdateError::InvalidNextHop => "Invalid NEXT_HOP Attribute",
        UpdateError::OptionalAttribute => "Optional Attribute Error",
        UpdateError::InvalidNetworkField => "Invalid Network Field",
        UpdateError::MalformedAsPath => "Malformed AS_PATH",
        UpdateError::Unknown(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeCtx, Message};

    // Cease / Administrative Shutdown with a 1-byte shutdown-communication
    // length of 0 (RFC 9003) as data.
    static NOTIFICATION_BYTES: [u8; 22] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // marker
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // marker
        0x00, 0x16, // length 22
        0x03, // type NOTIFICATION
        0x06, // code Cease
        0x02, // subcode Administrative Shutdown
        0x00, // data
    ];

    #[test]
    fn notification_round_trip() {
        let ctx = DecodeCtx::default();
        let (msg, used) = Message::decode(&NOTIFICATION_BYTES, &ctx).unwrap();
        assert_eq!(used, 22);
        let n = Notification {
            code: ErrorCode::Cease,
            subcode: 2,
            data: vec![0],
        };
        assert_eq!(msg, Message::Notification(n.clone()));
        assert_eq!(n.cease_subcode(), Some(CeaseSubcode::AdminShutdown));
        let mut out = Vec::new();
        msg.encode(&ctx, &mut out).unwrap();
        assert_eq!(out, NOTIFICATION_BYTES);
    }

    #[test]
    fn keepalive_round_trip() {
        let bytes = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, // marker
            0x00, 0x13, // length 19
            0x04, // type KEEPALIVE
        ];
        let ctx = DecodeCtx::default();
        assert_eq!(
            Message::decode(&bytes, &ctx).unwrap(),
            (Message::Keepalive, 19)
        );
        let mut out = Vec::new();
        Message::Keepalive.encode(&ctx, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn subcodes_have_their_registry_names() {
        let n = |code: ErrorCode, subcode: u8| Notification {
            code,
            subcode,
            data: vec![],
        };
        assert_eq!(
            n(ErrorCode::Update, 10).subcode_name(),
            Some("Invalid Network Field")
        );
        assert_eq!(
            n(ErrorCode::MessageHeader, 2).subcode_name(),
            Some("Bad Message Length")
        );
        assert_eq!(
            n(ErrorCode::Cease, 6).subcode_name(),
            Some("Other Configuration Change")
        );
        assert_eq!(n(ErrorCode::Update, 7).subcode_name(), None);
        assert_eq!(n(ErrorCode::Unknown(9), 1).subcode_name(), None);
    }

    #[test]
    fn unknown_codes_are_kept() {
        assert_eq!(ErrorCode::from(42), ErrorCode::Unknown(42));
        assert_eq!(u8::from(ErrorCode::Unknown(42)), 42);
        assert_eq!(u8::from(CeaseSubcode::HardReset), 9);
    }
}
