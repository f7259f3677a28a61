//! The per-connection part of the RFC 4271 §8 finite state machine:
//! OPEN exchange and capability negotiation, KEEPALIVE / hold timers,
//! message framing and error handling (RFC 4271 §6, RFC 7606, RFC 6608).
//!
//! A peer's Idle / Connect / Active states (no TCP connection yet) live in
//! [`crate::peer`]; once the shell reports a TCP connection, one [`Conn`]
//! runs the rest. Two connections of one peer can coexist until the
//! collision is resolved (RFC 4271 §6.8, in [`crate::peer`]).
//!
//! ```text
//!   TCP up (Connect/Active) --send OPEN--> OpenSent
//!   OpenSent    --OPEN ok / send KEEPALIVE-->   OpenConfirm
//!   OpenConfirm --KEEPALIVE-->                  Established
//!   Established --UPDATE / KEEPALIVE / REFRESH--> Established
//!   any         --NOTIFICATION, error, hold expiry--> Idle (closed)
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use filament_wire_bgp::{
    Capability, DecodeCtx, DecodeError, ErrorCode, GrFamily, LlgrFamily, Message, Notification,
    Open, OpenError, RouteRefresh, Update, UpdateError, MAX_LLGR_STALE_TIME,
};

use crate::types::Family;

/// RFC 4271 FSM states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not trying (admin down, or waiting after an error).
    Idle,
    /// Connecting out.
    Connect,
    /// Waiting for the peer to connect (or for the next connect attempt).
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for a KEEPALIVE.
    OpenConfirm,
    /// Exchanging routes.
    Established,
}

impl State {
    /// The name TF and other implementations display.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// Identifies one TCP connection (assigned by the shell).
pub type ConnId = u64;

/// What both sides agreed on in their OPENs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's AS (4-octet aware).
    pub remote_as: u32,
    /// The peer's BGP identifier.
    pub remote_id: Ipv4Addr,
    /// Negotiated hold time (0 = no keepalives).
    pub hold_time: u16,
    /// Families both sides offered.
    pub families: Vec<Family>,
    /// RFC 6793: both sides are NEW speakers.
    pub four_octet: bool,
    /// The peer supports ROUTE-REFRESH.
    pub route_refresh: bool,
    /// The peer's graceful-restart capability: restart time and the
    /// families it lists (whose routes a helper retains, RFC 4724 §4.2).
    pub graceful_restart: Option<(u16, Vec<Family>)>,
    /// Of those, the families whose Forwarding State (F) bit is set: after a
    /// restart, stale routes of any other family are removed at once.
    pub gr_forwarding: Vec<Family>,
    /// The peer's long-lived graceful-restart capability (RFC 9494 §3): each
    /// family with its long-lived stale time in seconds.
    pub llgr: Vec<(Family, u32)>,
    /// Of those, the families whose Forwarding State bit is set.
    pub llgr_forwarding: Vec<Family>,
}

/// What the connection needs to check an OPEN and to build its own.
#[derive(Debug, Clone)]
pub struct OpenPolicy {
    /// Local AS.
    pub local_as: u32,
    /// Local BGP identifier.
    pub router_id: Ipv4Addr,
    /// Expected remote AS.
    pub remote_as: u32,
    /// Hold time to propose.
    pub hold_time: u16,
    /// Families to offer.
    pub families: Vec<Family>,
    /// Graceful-restart time to advertise (0: GR disabled, as TF sends it).
    pub gr_restart_time: u16,
    /// List our families (Forwarding State bit set) in the GR capability.
    pub gr_families: bool,
    /// Long-lived stale time to advertise (RFC 9494; 0: no LLGR capability).
    pub llgr_time: u32,
    /// This is the first session since we started: the Restart State (R) bit
    /// is set, as TF does (`AddGRCapabilities`: "restarted = flap_count == 0").
    pub gr_restarted: bool,
}

impl OpenPolicy {
    /// Our OPEN.
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| {
                let (afi, safi) = f.afi_safi();
                Capability::Multiprotocol { afi, safi }
            })
            .collect();
        caps.push(Capability::RouteRefresh);
        // RFC 4724 - Section 3: a speaker that only helps its peers restart
        // advertises the capability with no <AFI, SAFI> entries. TF always
        // sends the capability (time 0 and no families with GR disabled: it
        // still announces End-of-RIB support) and lists its families with
        // the F bit when GR is enabled.
        let restart_time = self.gr_restart_time.min(0x0fff);
        let list = self.gr_families && restart_time > 0;
        let fams = |f: &Family| f.afi_safi();
        caps.push(Capability::GracefulRestart {
            flags: if self.gr_restarted { 0x8 } else { 0 },
            restart_time,
            families: if list {
                self.families
                    .iter()
                    .map(fams)
                    .map(|(afi, safi)| GrFamily {
                        afi,
                        safi,
                        flags: 0x80,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        });
        // RFC 9494 - Section 3: the LLGR capability goes with the GR
        // capability; TF sends it only when both times are non-zero.
        if restart_time > 0 && self.llgr_time > 0 {
            let stale_time = self.llgr_time.min(MAX_LLGR_STALE_TIME);
            caps.push(Capability::LongLivedGracefulRestart(
                self.families
                    .iter()
                    .map(fams)
                    .map(|(afi, safi)| LlgrFamily {
                        afi,
                        safi,
                        flags: 0x80,
                        stale_time,
                    })
                    .collect(),
            ));
        }
        Open::new(self.local_as, self.hold_time, self.router_id, caps)
    }

    /// Check the peer's OPEN (RFC 4271 §6.2) and negotiate.
    pub fn negotiate(&self, o: &Open) -> Result<Negotiated, Notification> {
        let open_err = |sub: OpenError, data: Vec<u8>| Notification {
            code: ErrorCode::Open,
            subcode: sub.into(),
            data,
        };
        // RFC 4271 - Section 6.2: "If the Autonomous System field of the
        // OPEN message is unacceptable, then the Error Subcode MUST be set
        // to Bad Peer AS."
        if o.asn() != self.remote_as {
            return Err(open_err(
                OpenError::BadPeerAs,
                o.my_as.to_be_bytes().to_vec(),
            ));
        }
        // "If the BGP Identifier field of the OPEN message is syntactically
        // incorrect, then the Error Subcode MUST be set to Bad BGP
        // Identifier." RFC 6286 §2.1: within an AS the identifiers MUST
        // differ.
        if o.asn() == self.local_as && o.bgp_id == self.router_id {
            return Err(open_err(OpenError::BadBgpId, o.bgp_id.octets().to_vec()));
        }
        let mut theirs = Vec::new();
        let mut four_octet = false;
        let mut route_refresh = false;
        let mut gr = None;
        let mut gr_forwarding = Vec::new();
        let mut llgr = Vec::new();
        let mut llgr_forwarding = Vec::new();
        for c in &o.capabilities {
            match c {
                Capability::Multiprotocol { afi, safi } => {
                    if let Some(f) = Family::from_afi_safi(*afi, *safi) {
                        theirs.push(f);
                    }
                }
                Capability::FourOctetAs(_) => four_octet = true,
                Capability::RouteRefresh | Capability::EnhancedRouteRefresh => route_refresh = true,
                Capability::GracefulRestart {
                    restart_time,
                    families,
                    ..
                } => {
                    let fams = families
                        .iter()
                        .filter_map(|g: &GrFamily| Family::from_afi_safi(g.afi, g.safi))
                        .collect();
                    gr = Some((*restart_time, fams));
                    gr_forwarding = families
                        .iter()
                        .filter(|g| g.forwarding_preserved())
                        .filter_map(|g| Family::from_afi_safi(g.afi, g.safi))
                        .collect();
                }
                Capability::LongLivedGracefulRestart(families) => {
                    for g in families {
                        if let Some(f) = Family::from_afi_safi(g.afi, g.safi) {
                            llgr.push((f, g.stale_time));
                            if g.forwarding_preserved() {
                                llgr_forwarding.push(f);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // RFC 9494 - Section 4.5: "If the LLGR capability is received without
        // an accompanying GR capability, the LLGR capability MUST be ignored,
        // that is, the implementation MUST behave as though no LLGR
        // capability had been received."
        if gr.is_none() {
            llgr.clear();
            llgr_forwarding.clear();
        }
        // RFC 4760 - Section 8: a speaker that advertises no Multiprotocol
        // capability supports IPv4 unicast only.
        if !o
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }))
        {
            theirs.push(Family::Inet);
        }
        let families = self
            .families
            .iter()
            .copied()
            .filter(|f| theirs.contains(f))
            .collect();
        // RFC 4271 - Section 4.2: "The calculated value [of the hold time]
        // MUST be the smaller of its configured Hold Time and the Hold Time
        // received in the OPEN message."
        Ok(Negotiated {
            remote_as: o.asn(),
            remote_id: o.bgp_id,
            hold_time: self.hold_time.min(o.hold_time),
            families,
            four_octet,
            route_refresh,
            graceful_restart: gr,
            gr_forwarding,
            llgr,
            llgr_forwarding,
        })
    }
}

/// An UPDATE handled as withdraw (RFC 7606 §2) and why.
#[derive(Debug)]
pub struct Withdrawal {
    /// The UPDATE with the malformed attribute skipped: everything it names
    /// is withdrawn.
    pub update: Update,
    /// Type code of the malformed attribute.
    pub attr_type: u8,
    /// The UPDATE Message Error RFC 4271 would have sent.
    pub subcode: UpdateError,
}

/// The first message of `buf` as a connection event and the bytes it used; `None`
/// while the message is incomplete. A message that does not decode uses the rest of
/// `buf` (the session closes on it).
pub fn decode_event(buf: &[u8], ctx: &DecodeCtx) -> Option<(ConnEvent, usize)> {
    Some(match Message::decode(buf, ctx) {
        Ok((m, used)) => (ConnEvent::Msg(m), used),
        Err(DecodeError::Incomplete { .. }) => return None,
        Err(DecodeError::TreatAsWithdraw {
            msg_len,
            update,
            attr_type,
            subcode,
        }) => (
            ConnEvent::TreatAsWithdraw(Withdrawal {
                update: *update,
                attr_type,
                subcode,
            }),
            msg_len,
        ),
        Err(e) => (ConnEvent::Bad(e), buf.len()),
    })
}

/// The length of the complete BGP messages at the start of `buf` (RFC 4271 §4.1: the
/// header's Length field), or `None` when a complete header cannot be framed: a Marker
/// that is not all ones, or a Length below 19 or above 4096, the limit until Extended
/// Messages are negotiated (RFC 8654 §4; a reader frames only until the session is
/// Established, then decodes with the session's settings, [`decode_event`]).
pub fn framed_len(buf: &[u8]) -> Option<usize> {
    let mut off = 0;
    while let Some(h) = buf.get(off..off + 19) {
        let len = usize::from(u16::from_be_bytes([h[16], h[17]]));
        if h[..16].iter().any(|&b| b != 0xff) || !(19..=4096).contains(&len) {
            return None;
        }
        if buf.len() - off < len {
            break;
        }
        off += len;
    }
    Some(off)
}

/// An input to one connection.
#[derive(Debug)]
pub enum ConnEvent {
    /// A decoded message.
    Msg(Message),
    /// An UPDATE that RFC 7606 says to treat as withdraw.
    TreatAsWithdraw(Withdrawal),
    /// Bytes that do not decode; the error says which NOTIFICATION to send.
    Bad(DecodeError),
    /// The hold timer ran out.
    HoldExpired,
    /// Time to send a KEEPALIVE.
    KeepaliveDue,
}

/// What the connection asks the peer to do.
#[derive(Debug)]
pub enum ConnAction {
    /// Send this message.
    Send(Message),
    /// Close the connection (after sending the NOTIFICATION, if any);
    /// `received` is the NOTIFICATION the peer sent, if that was the cause.
    Close {
        /// NOTIFICATION to send first.
        send: Option<Notification>,
        /// NOTIFICATION received from the peer.
        received: Option<Notification>,
    },
    /// The peer's OPEN was accepted: check for collisions.
    OpenReceived,
    /// The session is up.
    Established,
    /// A route update to process.
    Update(Update),
    /// A malformed update: withdraw everything it names.
    TreatAsWithdraw(Withdrawal),
    /// The peer asks for our routes again.
    RouteRefresh(RouteRefresh),
}

/// One TCP connection to a peer.
#[derive(Debug)]
pub struct Conn {
    /// Shell-assigned id.
    pub id: ConnId,
    /// We initiated it (RFC 4271 §6.8 collision resolution needs to know).
    pub outgoing: bool,
    /// OpenSent, OpenConfirm or Established; Idle once closed.
    pub state: State,
    /// Our address on this connection (next-hop-self uses it).
    pub local_addr: IpAddr,
    /// Negotiated session parameters, once the OPEN was accepted.
    pub neg: Option<Negotiated>,
    /// The connection reached Established (stays true once closed).
    pub was_established: bool,
    /// Decoder settings for this session.
    pub ctx: DecodeCtx,
    /// Bytes received but not yet decoded.
    rx: Vec<u8>,
    /// When the hold timer expires.
    pub hold_deadline: Option<Instant>,
    /// When the next KEEPALIVE is due.
    pub keepalive_deadline: Option<Instant>,
}

/// RFC 4271 - Section 8: "a suggested value for [the large hold time used
/// in OpenSent] is 4 minutes."
const LARGE_HOLD: Duration = Duration::from_secs(240);

impl Conn {
    /// A new connection; the caller sends our OPEN.
    pub fn new(id: ConnId, outgoing: bool, local_addr: IpAddr, now: Instant) -> Conn {
        Conn {
            id,
            outgoing,
            state: State::OpenSent,
            local_addr,
            neg: None,
            was_established: false,
            ctx: DecodeCtx {
                rfc7606: true,
                ..DecodeCtx::default()
            },
            rx: Vec::new(),
            hold_deadline: Some(now + LARGE_HOLD),
            keepalive_deadline: None,
        }
    }

    /// Buffer received bytes; take events with [`Conn::next_event`].
    pub fn feed(&mut self, data: &[u8]) {
        self.rx.extend_from_slice(data);
    }

    /// Decode the next complete message, if any. One at a time, because
    /// an OPEN changes how the messages after it decode (4-octet AS).
    pub fn next_event(&mut self) -> Option<ConnEvent> {
        let (ev, used) = decode_event(&self.rx, &self.ctx)?;
        self.rx.drain(..used);
        Some(ev)
    }

    /// The decoder settings of an Established session, which no later message
    /// changes: a connection's reader may decode what follows with them.
    pub fn established_ctx(&self) -> Option<DecodeCtx> {
        (self.state == State::Established).then_some(self.ctx)
    }

    fn restart_hold(&mut self, now: Instant) {
        let hold = self.neg.as_ref().map_or(0, |n| n.hold_time);
        self.hold_deadline = (hold > 0).then(|| now + Duration::from_secs(u64::from(hold)));
    }

    fn arm_keepalive(&mut self, now: Instant) {
        let hold = self.neg.as_ref().map_or(0, |n| n.hold_time);
        // RFC 4271 - Section 4.4: "A reasonable maximum time between
        // KEEPALIVE messages would be one third of the Hold Time interval."
        self.keepalive_deadline =
            (hold > 0).then(|| now + Duration::from_secs(u64::from(hold / 3).max(1)));
    }

    fn close(
        &mut self,
        send: Option<Notification>,
        received: Option<Notification>,
    ) -> Vec<ConnAction> {
        self.state = State::Idle;
        self.hold_deadline = None;
        self.keepalive_deadline = None;
        vec![ConnAction::Close { send, received }]
    }

    /// Run one event through the state machine.
    pub fn step(&mut self, now: Instant, ev: ConnEvent, pol: &OpenPolicy) -> Vec<ConnAction> {
        let fsm_err = |sub: u8| Notification {
            code: ErrorCode::Fsm,
            subcode: sub,
            data: Vec::new(),
        };
        match (self.state, ev) {
            // OpenSent: the peer's OPEN arrives; if acceptable, answer with a
            // KEEPALIVE and wait for its KEEPALIVE (RFC 4271 §8.2.2).
            (State::OpenSent, ConnEvent::Msg(Message::Open(o))) => match pol.negotiate(&o) {
                Ok(neg) => {
                    self.ctx.four_octet_as = neg.four_octet;
                    self.neg = Some(neg);
                    self.state = State::OpenConfirm;
                    self.restart_hold(now);
                    self.arm_keepalive(now);
                    vec![
                        ConnAction::Send(Message::Keepalive),
                        ConnAction::OpenReceived,
                    ]
                }
                Err(n) => self.close(Some(n), None),
            },
            // OpenConfirm: the KEEPALIVE completes the handshake.
            (State::OpenConfirm, ConnEvent::Msg(Message::Keepalive)) => {
                self.state = State::Established;
                self.was_established = true;
                self.restart_hold(now);
                vec![ConnAction::Established]
            }
            // Established: a KEEPALIVE only restarts the hold timer.
            (State::Established, ConnEvent::Msg(Message::Keepalive)) => {
                self.restart_hold(now);
                Vec::new()
            }
            // Established: an UPDATE restarts the hold timer and goes to the RIB.
            (State::Established, ConnEvent::Msg(Message::Update(u))) => {
                self.restart_hold(now);
                vec![ConnAction::Update(u)]
            }
            // Established: RFC 7606 treat-as-withdraw keeps the session.
            (State::Established, ConnEvent::TreatAsWithdraw(u)) => {
                self.restart_hold(now);
                vec![ConnAction::TreatAsWithdraw(u)]
            }
            // Established: ROUTE-REFRESH asks for our Adj-RIB-Out again.
            (State::Established, ConnEvent::Msg(Message::RouteRefresh(r))) => {
                self.restart_hold(now);
                vec![ConnAction::RouteRefresh(r)]
            }
            // Any state: a NOTIFICATION closes the connection, no reply.
            (_, ConnEvent::Msg(Message::Notification(n))) => self.close(None, Some(n)),
            // Any state: RFC 4271 §6.5 "If a system does not receive successive
            // KEEPALIVE, UPDATE, and/or NOTIFICATION messages within the
            // period specified in the Hold Time field of the OPEN message,
            // then the NOTIFICATION message with the Hold Timer Expired Error
            // Code is sent and the BGP connection is closed."
            (_, ConnEvent::HoldExpired) => self.close(
                Some(Notification {
                    code: ErrorCode::HoldTimerExpired,
                    subcode: 0,
                    data: Vec::new(),
                }),
                None,
            ),
            // OpenConfirm / Established: send a KEEPALIVE and rearm.
            (State::OpenConfirm | State::Established, ConnEvent::KeepaliveDue) => {
                self.arm_keepalive(now);
                vec![ConnAction::Send(Message::Keepalive)]
            }
            // Other states: no keepalives yet.
            (_, ConnEvent::KeepaliveDue) => Vec::new(),
            // Any state: a malformed message gets the NOTIFICATION RFC 4271
            // §6 / RFC 7606 prescribe, then the connection closes.
            (_, ConnEvent::Bad(e)) => self.close(e.notification(), None),
            // RFC 6608 - Section 4: "If a BGP speaker receives an unexpected
            // message (e.g., KEEPALIVE/UPDATE/ROUTE-REFRESH message) on a
            // session in OpenSent state, it MUST send to the neighbor a
            // NOTIFICATION message with the Error Code Finite State Machine
            // Error and the Error Subcode 'Receive Unexpected Message in
            // OpenSent State'." (subcodes 1, 2 and 3 for the three states)
            (State::OpenSent, _) => self.close(Some(fsm_err(1)), None),
            (State::OpenConfirm, _) => self.close(Some(fsm_err(2)), None),
            (State::Established, _) => self.close(Some(fsm_err(3)), None),
            // Closed connections ignore everything.
            (State::Idle | State::Connect | State::Active, _) => Vec::new(),
        }
    }

    /// The earliest timer deadline of this connection.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.hold_deadline, self.keepalive_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Timer events that are due at `now`.
    pub fn due(&self, now: Instant) -> Vec<ConnEvent> {
        let mut v = Vec::new();
        if self.hold_deadline.is_some_and(|d| d <= now) {
            v.push(ConnEvent::HoldExpired);
        } else if self.keepalive_deadline.is_some_and(|d| d <= now) {
            v.push(ConnEvent::KeepaliveDue);
        }
        v
    }
}
