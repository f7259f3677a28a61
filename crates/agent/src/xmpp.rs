//! One XMPP channel from the agent to a control node (sans-IO), as TF's agent runs it
//! (tf-facts §2.1): open the stream (`<stream:stream … >`, not self-closed), wait for the
//! server's header, exchange stanzas; a whitespace keepalive (bytes C8 80) every hold/3; the
//! channel is declared down when nothing arrived for the hold time (90 s). Keepalives go out
//! every 300 ms (see `KEEPALIVE_MS`).
//!
//! ```text
//!            connected              server header
//!   Idle ─────────────> OpenSent ──────────────────> Established
//!    ^                     │ open timer (15 s)           │ hold timer / close / error
//!    └─────────────────────┴─────────────────────────────┘
//! ```
//! Time is milliseconds from an arbitrary origin, passed in. Polling contract: call
//! `poll_timeout` after any `handle_*`; call `handle_timeout` when that time is reached; drain
//! `poll_transmit` after any `handle_*` or `send`.

use filament_wire_xmpp::stream::{KEEPALIVE_BYTES, STREAM_CLOSE};
use filament_wire_xmpp::{Stanza, StreamEvent, StreamHeader, StreamParser};

/// TF's default hold time (ms).
pub const HOLD_MS: u64 = 90_000;
/// Keepalive period (ms). TF sends one every hold/3 of its own hold time; the control node's
/// hold time is configurable down to 1 s (global-system-config `xmpp_hold_time`) and is not
/// told to the agent, so ours keeps well inside any of them: 2 bytes every 300 ms.
pub const KEEPALIVE_MS: u64 = 300;
/// TF's open timer (ms).
pub const OPEN_MS: u64 = 15_000;

/// Channel state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChanState {
    /// no TCP connection
    Idle,
    /// our stream header sent, waiting for the server's
    OpenSent,
    /// stanzas flow
    Established,
}

/// Something the channel tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChanEvent {
    /// the server's stream header arrived: the channel is up
    Up,
    /// a stanza arrived
    Stanza(Stanza),
    /// the channel went down (the shell closes the socket)
    Down(&'static str),
}

/// Counters of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChanStats {
    /// stanzas received
    pub rx_stanzas: u64,
    /// stanzas sent
    pub tx_stanzas: u64,
    /// stanzas that did not parse (dropped)
    pub rx_errors: u64,
    /// times the channel came up
    pub flaps: u64,
}

/// The client side of one XMPP channel.
#[derive(Debug)]
pub struct Channel {
    agent: String,
    state: ChanState,
    parser: StreamParser,
    hold_ms: u64,
    last_rx: u64,
    last_tx: u64,
    since: u64,
    out: Vec<Vec<u8>>,
    /// counters
    pub stats: ChanStats,
}

impl Channel {
    /// A channel for agent `agent` (its JID).
    pub fn new(agent: &str) -> Self {
        Channel {
            agent: agent.to_string(),
            state: ChanState::Idle,
            parser: StreamParser::new(),
            hold_ms: HOLD_MS,
            last_rx: 0,
            last_tx: 0,
            since: 0,
            out: Vec::new(),
            stats: ChanStats::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> ChanState {
        self.state
    }

    /// The TCP connection is up: send the stream header.
    pub fn handle_connected(&mut self, now: u64) {
        self.parser = StreamParser::new();
        self.state = ChanState::OpenSent;
        self.since = now;
        self.last_rx = now;
        self.last_tx = now;
        self.out.push(
            StreamHeader::agent_to_control(&self.agent)
                .to_xml()
                .into_bytes(),
        );
    }

    /// The TCP connection closed.
    pub fn handle_disconnected(&mut self) -> Option<ChanEvent> {
        let was = self.state;
        self.state = ChanState::Idle;
        self.out.clear();
        (was != ChanState::Idle).then_some(ChanEvent::Down("connection closed"))
    }

    /// Bytes from the socket.
    pub fn handle_bytes(&mut self, now: u64, data: &[u8]) -> Vec<ChanEvent> {
        let mut ev = Vec::new();
        if self.state == ChanState::Idle {
            return ev;
        }
        self.last_rx = now;
        if self.parser.feed(data).is_err() {
            self.state = ChanState::Idle;
            ev.push(ChanEvent::Down("stream too large"));
            return ev;
        }
        loop {
            let next = self.parser.next_event();
            match (self.state, next) {
                // the stream is broken: nothing more can be read from it
                (_, Err(_)) => {
                    self.state = ChanState::Idle;
                    ev.push(ChanEvent::Down("malformed stream"));
                    break;
                }
                // need more bytes
                (_, Ok(None)) => break,
                // the server's header: up
                (ChanState::OpenSent, Ok(Some(StreamEvent::Open(_)))) => {
                    self.state = ChanState::Established;
                    self.stats.flaps += 1;
                    ev.push(ChanEvent::Up);
                }
                // a stanza on an established stream
                (ChanState::Established, Ok(Some(StreamEvent::Stanza(e)))) => {
                    match Stanza::parse(&e) {
                        Ok(s) => {
                            self.stats.rx_stanzas += 1;
                            ev.push(ChanEvent::Stanza(s));
                        }
                        Err(_) => self.stats.rx_errors += 1,
                    }
                }
                // keepalive: last_rx already moved
                (_, Ok(Some(StreamEvent::Keepalive))) => {}
                // the server closed the stream
                (_, Ok(Some(StreamEvent::Close))) => {
                    self.state = ChanState::Idle;
                    ev.push(ChanEvent::Down("stream closed by peer"));
                    break;
                }
                // anything else out of order (a second header, a stanza before the header)
                (_, Ok(Some(_))) => self.stats.rx_errors += 1,
            }
        }
        ev
    }

    /// Queue a stanza (dropped unless established).
    pub fn send(&mut self, now: u64, s: &Stanza) {
        if self.state == ChanState::Established {
            self.out.push(s.to_xml().into_bytes());
            self.stats.tx_stanzas += 1;
            self.last_tx = now;
        }
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            ChanState::Idle => None,
            ChanState::OpenSent => Some(self.since + OPEN_MS),
            ChanState::Established => {
                Some((self.last_rx + self.hold_ms).min(self.last_tx + KEEPALIVE_MS))
            }
        }
    }

    /// Timers: keepalive every hold/3; hold timer; open timer.
    pub fn handle_timeout(&mut self, now: u64) -> Option<ChanEvent> {
        match self.state {
            // nothing runs
            ChanState::Idle => None,
            // the server never answered the header
            ChanState::OpenSent if now >= self.since + OPEN_MS => {
                self.state = ChanState::Idle;
                Some(ChanEvent::Down("open timer expired"))
            }
            ChanState::OpenSent => None,
            // RFC-less TF rule: no bytes for the hold time = the peer is gone
            ChanState::Established if now >= self.last_rx + self.hold_ms => {
                self.state = ChanState::Idle;
                self.out.push(STREAM_CLOSE.as_bytes().to_vec());
                Some(ChanEvent::Down("hold timer expired"))
            }
            // keepalive due
            ChanState::Established => {
                if now >= self.last_tx + KEEPALIVE_MS {
                    self.out.push(KEEPALIVE_BYTES.to_vec());
                    self.last_tx = now;
                }
                None
            }
        }
    }

    /// Bytes to write, in order.
    pub fn poll_transmit(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filament_wire_xmpp::{EndOfRib, StreamHeader};

    #[test]
    fn open_handshake_keepalive_and_hold_timer() {
        let mut c = Channel::new("host1");
        c.handle_connected(0);
        let hdr = String::from_utf8(c.poll_transmit().concat()).unwrap();
        // TF's wire form (wire-xmpp StreamHeader::to_xml): no declaration, double quotes
        assert!(hdr.starts_with(
            "<stream:stream from=\"host1\" to=\"network-control@contrailsystems.com\""
        ));
        assert!(hdr.ends_with("\" >"));
        let ev = c.handle_bytes(
            10,
            StreamHeader::control_to_agent("host1").to_xml().as_bytes(),
        );
        assert_eq!(ev, vec![ChanEvent::Up]);
        let eor = EndOfRib::from_control("host1").to_xml();
        let ev = c.handle_bytes(20, eor.as_bytes());
        assert!(matches!(
            ev.as_slice(),
            [ChanEvent::Stanza(Stanza::EndOfRib(_))]
        ));
        // keepalive after KEEPALIVE_MS without sending
        assert_eq!(c.poll_timeout(), Some(KEEPALIVE_MS));
        assert_eq!(c.handle_timeout(KEEPALIVE_MS), None);
        assert_eq!(c.poll_transmit(), vec![KEEPALIVE_BYTES.to_vec()]);
        // the server's keepalive keeps us up
        c.handle_bytes(80_000, &KEEPALIVE_BYTES);
        assert_eq!(c.handle_timeout(90_020), None);
        assert_eq!(
            c.handle_timeout(170_000),
            Some(ChanEvent::Down("hold timer expired"))
        );
        assert_eq!(c.state(), ChanState::Idle);
    }

    #[test]
    fn open_timer_and_garbage() {
        let mut c = Channel::new("h");
        c.handle_connected(0);
        assert_eq!(
            c.handle_timeout(OPEN_MS),
            Some(ChanEvent::Down("open timer expired"))
        );
        c.handle_connected(100);
        let ev = c.handle_bytes(101, b"<<<>>>not xml");
        assert_eq!(ev, vec![ChanEvent::Down("malformed stream")]);
        assert_eq!(c.state(), ChanState::Idle);
    }
}
