//! One XMPP session with a vRouter agent, sans-IO (tf-facts §2.1).
//!
//! ```text
//!            bytes with <stream:stream>          hold timer expires / </stream:stream> /
//!  WaitOpen ───────────────────────────> Established ───── malformed XML ─────> Closed
//!      │ open timer expires / bad data                                           ^
//!      └─────────────────────────────────────────────────────────────────────────┘
//! ```
//! The session answers the stream header with the bytes TF's control node writes
//! (`<stream:stream from="network-control@contrailsystems.com" to="<agent>" id="++123" …" >`:
//! no XML declaration, double quotes, which a TF agent's `XmppProto::DecodeInternal`
//! requires), reports every stanza
//! to its owner, refreshes the hold timer on any received byte (keepalives 0xC8 0x80
//! included) and sends a keepalive every hold-time / 3.  No SASL, no TLS.
//!
//! Output is a list of [`Chunk`]s: small stanzas are copied into an owned tail, route pushes
//! are shared chunks rendered once per routing instance and handed to every subscribed
//! agent by reference ([`Session::send_shared`]), so the shell can write them with
//! vectored writes and no per-agent copy.

use std::sync::Arc;
use std::time::Duration;

use filament_wire_xmpp::stream::KEEPALIVE_BYTES;
use filament_wire_xmpp::{Element, StreamEvent, StreamHeader, StreamParser};

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
        }
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
        if matches!(self.state, SessionState::Established { .. }) {
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
                // the agent's header: answer with ours, the session is up
                (SessionState::WaitOpen, StreamEvent::Open(h)) => {
                    let peer = h.from.clone().unwrap_or_default();
                    if peer.is_empty() {
                        evs.push(self.close("stream header without from"));
                        break;
                    }
                    self.state = SessionState::Established { peer: peer.clone() };
                    self.tail.extend_from_slice(
                        StreamHeader::control_to_agent(&peer).to_xml().as_bytes(),
                    );
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

    /// Timers at `now`: open timer, hold timer, keepalive.
    pub fn on_tick(&mut self, now: Duration) -> Option<SessionEvent> {
        match &self.state {
            SessionState::Closed { .. } => None,
            SessionState::WaitOpen if now.saturating_sub(self.started) >= OPEN_TIMEOUT => {
                Some(self.close("open timer expired"))
            }
            SessionState::WaitOpen => None,
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
