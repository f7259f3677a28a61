//! One XMPP session with a vRouter agent, sans-IO (tf-facts §2.1).
//!
//! ```text
//!            bytes with <stream:stream>          hold timer expires / </stream:stream> /
//!  WaitOpen ───────────────────────────> Established ───── malformed XML ─────> Closed
//!      │ open timer expires / bad data                                           ^
//!      └─────────────────────────────────────────────────────────────────────────┘
//! ```
//! With TLS required (TF's `xmpp_auth_enable`, [`Session::with_tls`]) the header is answered
//! by TF's OpenConfirm exchange (docs/tf-agent-compat.md "XMPP over TLS"):
//! ```text
//!  WaitOpen ──header──> WaitStartTls ──<starttls/>──> TlsHandshake ──shell: handshake ok──>
//!     (we send header + <stream:features>)  (we send <proceed/>, then     WaitTlsOpen
//!                                            the shell runs TLS)             │ header (over TLS)
//!                                                                            v
//!                                                                       Established
//! ```
//! Anything but `<starttls/>` in WaitStartTls, a failed handshake, or the hold timer before
//! Established closes the session with the reason (`filament neighbors` shows it).
//!
//! The session answers the stream header with the bytes TF's control node writes
//! (`<stream:stream from="network-control@contrailsystems.com" to="<agent>" id="++123" …" >`:
//! no XML declaration, double quotes, which a TF agent's `XmppProto::DecodeInternal`
//! requires), reports every stanza
//! to its owner, refreshes the hold timer on any received byte (keepalives 0xC8 0x80
//! included) and sends a keepalive every hold-time / 3.  No SASL.
//!
//! Output is a list of [`Chunk`]s: small stanzas are copied into an owned tail, route pushes
//! are shared chunks rendered once per routing instance and handed to every subscribed
//! agent by reference ([`Session::send_shared`]), so the shell can write them with
//! vectored writes and no per-agent copy.

use std::sync::Arc;
use std::time::Duration;

use filament_wire_xmpp::stream::KEEPALIVE_BYTES;
use filament_wire_xmpp::{Element, StreamEvent, StreamHeader, StreamParser, TlsNegotiation};

/// TF's open timer (tf-facts §2.1).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Default hold time (tf-facts §2.1).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(90);

/// A piece of output: immutable bytes that may be shared by many sessions.
pub type Chunk = Arc<[u8]>;

/// Session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the agent's stream header.
    WaitOpen,
    /// TLS required: header and `<stream:features>` sent, waiting for `<starttls/>`
    /// (TF's OpenConfirm, `OPENCONFIRM_INIT`).
    WaitStartTls {
        /// Agent name (`from` of its first header).
        peer: String,
    },
    /// `<proceed/>` sent: the shell runs the TLS handshake ([`Session::tls_done`]).
    TlsHandshake {
        /// Agent name.
        peer: String,
    },
    /// TLS is up: waiting for the agent to open its stream again, over TLS (TF's
    /// OpenConfirm, `OPENCONFIRM_FEATURE_SUCCESS`).
    WaitTlsOpen {
        /// Agent name.
        peer: String,
    },
    /// Stream open; `peer` is the agent name (`from`).
    Established {
        /// Agent name.
        peer: String,
    },
    /// Closed (reason kept for introspection).
    Closed {
        /// Why.
        reason: String,
    },
}

impl SessionState {
    /// The state's name as TF's introspect shows an XMPP peer (`xmpp_state_machine.cc`
    /// `state_names`): the TLS negotiation is OpenConfirm.
    pub fn tf_name(&self) -> &'static str {
        match self {
            SessionState::WaitOpen => "Active",
            SessionState::WaitStartTls { .. }
            | SessionState::TlsHandshake { .. }
            | SessionState::WaitTlsOpen { .. } => "OpenConfirm",
            SessionState::Established { .. } => "Established",
            SessionState::Closed { .. } => "Idle",
        }
    }
}

/// What the owner must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The agent opened its stream.
    Opened {
        /// Agent name.
        peer: String,
    },
    /// A stanza arrived.
    Stanza(Element),
    /// `<proceed/>` is queued: once it is written, the shell must run the server side of the
    /// TLS handshake on this connection and report with [`Session::tls_done`].
    StartTls,
    /// The session closed.
    Closed {
        /// Why.
        reason: String,
    },
}

/// A session: parser, timers, output buffer.
#[derive(Debug)]
pub struct Session {
    parser: StreamParser,
    state: SessionState,
    hold: Duration,
    started: Duration,
    last_rx: Duration,
    last_keepalive: Duration,
    /// Chunks ready to write, in order; `tail` holds owned bytes written after them.
    out: Vec<Chunk>,
    tail: Vec<u8>,
    /// TLS required before the stream may carry anything (TF `xmpp_auth_enable`).
    tls: bool,
    /// The agent's name from its first header (kept so a refused session has a name).
    peer: Option<String>,
    /// `<proceed/>` queued: the shell must switch to TLS after writing it.
    start_tls: bool,
}

impl Session {
    /// New session accepted at `now`, with this hold time.
    pub fn new(now: Duration, hold: Duration) -> Self {
        Session {
            parser: StreamParser::new(),
            state: SessionState::WaitOpen,
            hold,
            started: now,
            last_rx: now,
            last_keepalive: now,
            out: Vec::new(),
            tail: Vec::new(),
            tls: false,
            peer: None,
            start_tls: false,
        }
    }

    /// Require TLS (STARTTLS right after the stream header) on this session.
    pub fn with_tls(mut self, required: bool) -> Self {
        self.tls = required;
        self
    }

    /// The agent's name from its first stream header, once received (also when the session
    /// never got established, e.g. refused for not starting TLS).
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// Current state.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Whether closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, SessionState::Closed { .. })
    }

    /// Chunks to write, in order (drained).
    pub fn take_output(&mut self) -> Vec<Chunk> {
        self.seal_tail();
        std::mem::take(&mut self.out)
    }

    /// Whether the shell must start the TLS handshake once the output taken so far is
    /// written (true once, after `<proceed/>` was queued).
    pub fn take_start_tls(&mut self) -> bool {
        std::mem::take(&mut self.start_tls)
    }

    /// Whether output is waiting.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.tail.is_empty()
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let t = std::mem::take(&mut self.tail);
            self.out.push(Arc::from(t));
        }
    }

    /// Queue a stanza for the agent (ignored once closed).
    pub fn send_xml(&mut self, xml: &str) {
        if matches!(self.state, SessionState::Established { .. }) {
            self.tail.extend_from_slice(xml.as_bytes());
        }
    }

    /// Queue shared chunks (one or more whole stanzas, already rendered) for the agent
    /// (ignored once closed).  The chunks are referenced, not copied.
    pub fn send_shared(&mut self, chunks: &[Chunk]) {
        if matches!(self.state, SessionState::Established { .. }) {
            self.seal_tail();
            self.out.extend(chunks.iter().cloned());
        }
    }

    /// Close with a reason: writes `</stream:stream>` if the stream was open.
    pub fn close(&mut self, reason: impl Into<String>) -> SessionEvent {
        let reason = reason.into();
        // our header is out in these states (not during the handshake, when the stream
        // under it is being replaced: TF sends no close after a TLS failure either)
        if matches!(
            self.state,
            SessionState::Established { .. } | SessionState::WaitStartTls { .. }
        ) {
            self.tail.extend_from_slice(b"</stream:stream>");
        }
        self.state = SessionState::Closed {
            reason: reason.clone(),
        };
        SessionEvent::Closed { reason }
    }

    /// Bytes received at `now`.
    pub fn on_bytes(&mut self, now: Duration, data: &[u8]) -> Vec<SessionEvent> {
        let mut evs = Vec::new();
        if self.is_closed() {
            return evs;
        }
        self.last_rx = now;
        if let Err(e) = self.parser.feed(data) {
            evs.push(self.close(format!("stream error: {e}")));
            return evs;
        }
        loop {
            let ev = match self.parser.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    evs.push(self.close(format!("malformed XMPP: {e}")));
                    break;
                }
            };
            match (&self.state, ev) {
                // the agent's header without TLS required: answer with ours, the session is up
                (SessionState::WaitOpen, StreamEvent::Open(h)) if !self.tls => {
                    let Some(peer) = self.header_peer(&h) else {
                        evs.push(self.close("stream header without from"));
                        break;
                    };
                    self.state = SessionState::Established { peer: peer.clone() };
                    self.send_header(&peer);
                    evs.push(SessionEvent::Opened { peer });
                }
                // TLS required: answer with our header and TF's feature request (TF's
                // OpenConfirm constructor: SendStreamFeatureRequest)
                (SessionState::WaitOpen, StreamEvent::Open(h)) => {
                    let Some(peer) = self.header_peer(&h) else {
                        evs.push(self.close("stream header without from"));
                        break;
                    };
                    self.send_header(&peer);
                    let f = TlsNegotiation::Features { required: true }.to_xml();
                    self.tail.extend_from_slice(f.as_bytes());
                    self.state = SessionState::WaitStartTls { peer };
                }
                // <starttls/>: <proceed/>, then the TLS handshake (TF EvStartTls)
                (SessionState::WaitStartTls { peer }, StreamEvent::Stanza(e))
                    if TlsNegotiation::from_element(&e) == Some(TlsNegotiation::StartTls) =>
                {
                    let peer = peer.clone();
                    self.tail
                        .extend_from_slice(TlsNegotiation::Proceed.to_xml().as_bytes());
                    self.state = SessionState::TlsHandshake { peer };
                    self.start_tls = true;
                    evs.push(SessionEvent::StartTls);
                    // whatever follows is TLS records, not XML: the shell hands them to TLS
                    break;
                }
                // anything else where <starttls/> is required: refused (TF ignores it and
                // lets the hold timer close the session; we say why at once)
                (SessionState::WaitStartTls { .. }, StreamEvent::Stanza(e)) => {
                    evs.push(self.close(format!(
                        "TLS required: agent sent <{}> instead of <starttls/>",
                        e.name
                    )));
                    break;
                }
                // the header again, over TLS: ours again, the session is up (TF
                // OpenConfirm EvXmppOpen on the server)
                (SessionState::WaitTlsOpen { .. }, StreamEvent::Open(h)) => {
                    let Some(peer) = self.header_peer(&h) else {
                        evs.push(self.close("stream header without from"));
                        break;
                    };
                    self.state = SessionState::Established { peer: peer.clone() };
                    self.send_header(&peer);
                    evs.push(SessionEvent::Opened { peer });
                }
                // a stanza on an open stream goes to the owner
                (SessionState::Established { .. }, StreamEvent::Stanza(e)) => {
                    evs.push(SessionEvent::Stanza(e));
                }
                // keepalives only refresh the hold timer (done above)
                (_, StreamEvent::Keepalive) => {}
                // the agent closed its stream
                (_, StreamEvent::Close) => {
                    evs.push(self.close("peer closed the stream"));
                    break;
                }
                // a second header, or a stanza before the header
                (_, other) => {
                    evs.push(self.close(format!("unexpected {other:?}")));
                    break;
                }
            }
        }
        evs
    }

    /// The agent's name from a header (`None`: no `from`); remembered for [`Session::peer`].
    fn header_peer(&mut self, h: &StreamHeader) -> Option<String> {
        let peer = h.from.clone().filter(|p| !p.is_empty())?;
        self.peer = Some(peer.clone());
        Some(peer)
    }

    fn send_header(&mut self, peer: &str) {
        self.tail
            .extend_from_slice(StreamHeader::control_to_agent(peer).to_xml().as_bytes());
    }

    /// The shell's TLS handshake ended at `now`: `Ok` → wait for the agent's new stream
    /// header (a fresh parser: the old stream is gone with the plaintext), `Err(why)` →
    /// closed with the reason.  Ignored unless a handshake was started.
    pub fn tls_done(&mut self, now: Duration, result: Result<(), String>) -> Option<SessionEvent> {
        let SessionState::TlsHandshake { peer } = &self.state else {
            return None;
        };
        match result {
            Ok(()) => {
                self.state = SessionState::WaitTlsOpen { peer: peer.clone() };
                self.parser = StreamParser::new();
                self.last_rx = now;
                None
            }
            Err(why) => Some(self.close(format!("TLS handshake failed: {why}"))),
        }
    }

    /// Timers at `now`: open timer, hold timer, keepalive.
    pub fn on_tick(&mut self, now: Duration) -> Option<SessionEvent> {
        match &self.state {
            SessionState::Closed { .. } => None,
            SessionState::WaitOpen if now.saturating_sub(self.started) >= OPEN_TIMEOUT => {
                Some(self.close("open timer expired"))
            }
            SessionState::WaitOpen => None,
            // TF runs the hold timer through OpenConfirm (no keepalives yet)
            SessionState::WaitStartTls { .. }
            | SessionState::TlsHandshake { .. }
            | SessionState::WaitTlsOpen { .. } => {
                if now.saturating_sub(self.last_rx) >= self.hold {
                    let during = match self.state {
                        SessionState::WaitStartTls { .. } => {
                            "waiting for <starttls/> (TLS required)"
                        }
                        SessionState::TlsHandshake { .. } => "during the TLS handshake",
                        _ => "waiting for the stream header over TLS",
                    };
                    return Some(self.close(format!("hold timer expired {during}")));
                }
                None
            }
            SessionState::Established { .. } => {
                if now.saturating_sub(self.last_rx) >= self.hold {
                    return Some(self.close("hold timer expired"));
                }
                if now.saturating_sub(self.last_keepalive) >= self.hold / 3 {
                    self.last_keepalive = now;
                    self.tail.extend_from_slice(&KEEPALIVE_BYTES);
                }
                None
            }
        }
    }

    /// Change the hold time (from global-system-config).
    pub fn set_hold(&mut self, hold: Duration) {
        self.hold = hold;
    }
}
