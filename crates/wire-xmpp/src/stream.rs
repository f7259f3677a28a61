//! XMPP stream framing for TF agent ↔ control node (tf-facts §2.1 "Connection and stream").
//!
//! * Stream open, as TF puts it on the wire (pugixml output, see [`StreamHeader::to_xml`]):
//!   `<stream:stream from="…" to="…" version="1.0" xml:lang="en" xmlns="jabber:client"
//!   xmlns:stream="http://etherx.jabber.org/streams" >` — no XML declaration, never
//!   self-closed; the control node answers with the same shape plus `id="++123"`.  Any
//!   header is accepted on input: with or without a declaration, either quote style.
//! * Keepalive bytes are 0xC8 0x80 (U+0200) and count as inter-stanza whitespace; each one is
//!   reported as [`StreamEvent::Keepalive`] so the caller can refresh its hold timer.
//! * Top-level children of the stream (`iq`, `message`, `presence`, `stream:features`, …) are
//!   reported as complete [`Element`] trees; `</stream:stream>` as [`StreamEvent::Close`].
//!
//! The parser never buffers more than `max_stanza` bytes of one unfinished construct.

use crate::element::{escape_into, Element};
use crate::error::{Result, XmppError};

/// `xmlns:stream` value.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Default namespace of the stream.
pub const NS_CLIENT: &str = "jabber:client";
/// Control node JID (tf-facts §2.1).
pub const CONTROL_JID: &str = "network-control@contrailsystems.com";
/// DNS server JID (tf-facts §2.1).
pub const DNS_JID: &str = "network-dns@contrailsystems.com";
/// Resource for routing.
pub const RESOURCE_BGP: &str = "bgp-peer";
/// Resource for config.
pub const RESOURCE_CONFIG: &str = "config";
/// Resource for DNS.
pub const RESOURCE_DNS: &str = "dns-peer";
/// The stream id the TF control node sends.
pub const CONTROL_STREAM_ID: &str = "++123";
/// The keepalive bytes (UTF-8 of U+0200).
pub const KEEPALIVE_BYTES: [u8; 2] = [0xC8, 0x80];
/// The stream close tag.
pub const STREAM_CLOSE: &str = "</stream:stream>";
/// Default cap for one stanza.
pub const DEFAULT_MAX_STANZA: usize = 4 * 1024 * 1024;

/// The attributes of a `<stream:stream>` open tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `id` (the control node sends `++123`).
    pub id: Option<String>,
    /// `version` (`1.0`).
    pub version: Option<String>,
    /// `xml:lang` (`en`).
    pub lang: Option<String>,
    /// Default namespace (`jabber:client`).
    pub xmlns: Option<String>,
}

impl StreamHeader {
    /// Header an agent sends to a control node (`from` = agent name).
    pub fn agent_to_control(agent: &str) -> Self {
        StreamHeader {
            from: Some(agent.to_string()),
            to: Some(CONTROL_JID.to_string()),
            id: None,
            version: Some("1.0".into()),
            lang: Some("en".into()),
            xmlns: Some(NS_CLIENT.into()),
        }
    }

    /// Header a control node answers with.
    pub fn control_to_agent(agent: &str) -> Self {
        StreamHeader {
            from: Some(CONTROL_JID.to_string()),
            to: Some(agent.to_string()),
            id: Some(CONTROL_STREAM_ID.into()),
            ..StreamHeader::agent_to_control(agent)
        }
    }

    /// Build from the parsed open tag.
    pub fn from_element(e: &Element) -> Result<Self> {
        if e.name != "stream:stream" {
            return Err(XmppError::UnexpectedElement {
                expected: "<stream:stream>".into(),
                found: e.name.clone(),
            });
        }
        let get = |k: &str| e.attr(k).map(str::to_string);
        Ok(StreamHeader {
            from: get("from"),
            to: get("to"),
            id: get("id"),
            version: get("version"),
            lang: get("xml:lang"),
            xmlns: get("xmlns"),
        })
    }

    /// Emit the bytes TF itself puts on the wire (`xmpp_proto.cc` `EncodeOpen` /
    /// `EncodeOpenResp`): the header template is loaded into pugixml and printed with
    /// `format_raw | format_no_declaration` (`xml_pugi.cc` `PrintDoc`), so there is no XML
    /// declaration and attribute values are double-quoted; then the last `/` (of `/>`) is
    /// replaced by a space.  The receiving side (`XmppProto::DecodeInternal`) drops the
    /// stream open unless, newlines removed, it starts with `<?xml version="1.0"?><stream:stream`
    /// or `<stream:stream`: a single-quoted declaration (`<?xml version='1.0'?>`, the template's
    /// own text) makes a TF agent clear the connection.  `xmlns:stream` stays the last
    /// attribute: TF frames the header with the regex `…/streams["'][\s]*>`.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<stream:stream");
        let attrs = [
            ("from", &self.from),
            ("to", &self.to),
            ("id", &self.id),
            ("version", &self.version),
            ("xml:lang", &self.lang),
            ("xmlns", &self.xmlns),
        ];
        for (k, v) in attrs {
            if let Some(v) = v {
                out.push(' ');
                out.push_str(k);
                out.push_str("=\"");
                escape_into(&mut out, v, true);
                out.push('"');
            }
        }
        out.push_str(" xmlns:stream=\"");
        out.push_str(NS_STREAM);
        out.push_str("\" >");
        out
    }
}

/// One framing event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// `<stream:stream …>` was received.
    Open(StreamHeader),
    /// A complete top-level stanza.
    Stanza(Element),
    /// One U+0200 keepalive character (bytes 0xC8 0x80).
    Keepalive,
    /// `</stream:stream>` (or a self-closed stream header).
    Close,
}

/// Scanner state for a stanza that is not complete yet (offsets relative to `pos`).
#[derive(Debug, Clone, Copy)]
struct InStanza {
    scan: usize,
    depth: usize,
}

/// Incremental, sans-IO stream parser.  Feed bytes, then drain with [`StreamParser::next_event`].
#[derive(Debug)]
pub struct StreamParser {
    buf: Vec<u8>,
    pos: usize,
    max_stanza: usize,
    open: bool,
    stanza: Option<InStanza>,
    pending_close: bool,
    failed: bool,
    /// Where the scan of an unfinished token stopped.
    resume: Resume,
}

impl Default for StreamParser {
    fn default() -> Self {
        StreamParser::new()
    }
}

enum Tok {
    Incomplete,
    /// Text up to (exclusive) the offset.
    Text(usize),
    Start {
        end: usize,
        empty: bool,
    },
    End {
        end: usize,
    },
    Skip {
        end: usize,
    },
}

/// How far an unfinished markup token was scanned, so the next read resumes there
/// instead of rescanning it from its `<` (a tag or comment that grows read by read
/// would otherwise cost its length on every read: quadratic in the stanza cap).
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// Where the token starts, relative to the parser's position.
    at: usize,
    /// Bytes of it already scanned.
    scanned: usize,
    /// In a tag: the open attribute quote at that point.
    quote: Option<u8>,
}

impl Resume {
    const NONE: Resume = Resume {
        at: usize::MAX,
        scanned: 0,
        quote: None,
    };
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Scan one token starting at `i` (absolute in `b`), resuming where `r` says an earlier
/// scan of the same token stopped; `r` records where this one stopped if it is
/// [`Tok::Incomplete`] and is cleared otherwise.
fn scan_token(b: &[u8], i: usize, r: &mut Resume) -> Result<Tok> {
    let from = if r.at == i { r.scanned } else { 0 };
    let mut quote = if r.at == i { r.quote } else { None };
    *r = Resume::NONE;
    if b.get(i) != Some(&b'<') {
        let end = find(b, i, b"<").unwrap_or(b.len());
        return Ok(Tok::Text(end));
    }
    let rest = &b[i..];
    let prefixed = |p: &[u8]| -> Option<bool> {
        if rest.len() >= p.len() {
            Some(rest.starts_with(p))
        } else if p.starts_with(rest) {
            None
        } else {
            Some(false)
        }
    };
    // a closing sequence is searched from where the last search could have missed it
    let closer = |open_len: usize, close: &[u8], r: &mut Resume| {
        let start = open_len.max(from.saturating_sub(close.len() - 1));
        match find(b, i + start, close) {
            Some(p) => Tok::Skip {
                end: p + close.len(),
            },
            None => {
                *r = Resume {
                    at: i,
                    scanned: rest.len(),
                    quote: None,
                };
                Tok::Incomplete
            }
        }
    };
    if rest.len() < 2 {
        return Ok(Tok::Incomplete);
    }
    match rest[1] {
        b'?' => Ok(closer(2, b"?>", r)),
        b'!' => match (prefixed(b"<!--"), prefixed(b"<![CDATA[")) {
            (Some(true), _) => Ok(closer(4, b"-->", r)),
            (_, Some(true)) => Ok(closer(9, b"]]>", r)),
            (None, _) | (_, None) => Ok(Tok::Incomplete),
            _ => Err(XmppError::UnexpectedStreamData(
                "DOCTYPE or unknown markup declaration".into(),
            )),
        },
        b'/' => match find(b, i + from, b">") {
            Some(p) => Ok(Tok::End { end: p + 1 }),
            None => {
                *r = Resume {
                    at: i,
                    scanned: rest.len(),
                    quote: None,
                };
                Ok(Tok::Incomplete)
            }
        },
        _ => {
            for (k, &c) in rest.iter().enumerate().skip(from.max(1)) {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => {
                        return Ok(Tok::Start {
                            end: i + k + 1,
                            empty: rest[k - 1] == b'/',
                        })
                    }
                    None => {}
                }
            }
            *r = Resume {
                at: i,
                scanned: rest.len(),
                quote,
            };
            Ok(Tok::Incomplete)
        }
    }
}

fn tag_name(tag: &[u8]) -> &[u8] {
    let body = tag.strip_prefix(b"</").or_else(|| tag.strip_prefix(b"<"));
    let body = body.unwrap_or(tag);
    let end = body
        .iter()
        .position(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .unwrap_or(body.len());
    &body[..end]
}

impl StreamParser {
    /// Parser with the default stanza cap (4 MiB).
    pub fn new() -> Self {
        StreamParser::with_max_stanza(DEFAULT_MAX_STANZA)
    }

    /// Parser with a custom stanza cap in bytes.
    pub fn with_max_stanza(max_stanza: usize) -> Self {
        StreamParser {
            buf: Vec::new(),
            pos: 0,
            max_stanza: max_stanza.max(64),
            open: false,
            stanza: None,
            pending_close: false,
            failed: false,
            resume: Resume::NONE,
        }
    }

    /// Whether a stream header has been received (and not closed).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Bytes currently buffered but not yet turned into events.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Most bytes that may be buffered at once: the stanza cap plus 64 KiB of read slack.
    pub fn buffer_limit(&self) -> usize {
        self.max_stanza.saturating_add(64 * 1024)
    }

    /// Append received bytes.  Drain events after each call; refuses input beyond
    /// [`StreamParser::buffer_limit`] (the bytes are then not taken).
    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(XmppError::Poisoned);
        }
        if self.buffered().saturating_add(data.len()) > self.buffer_limit() {
            return Err(XmppError::BufferFull {
                limit: self.buffer_limit(),
            });
        }
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= 64 * 1024) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Next complete event, `Ok(None)` if more bytes are needed.  After an error the parser is
    /// poisoned and every later call returns [`XmppError::Poisoned`].
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>> {
        if self.failed {
            return Err(XmppError::Poisoned);
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Drain every event currently available.
    pub fn drain_events(&mut self) -> Result<Vec<StreamEvent>> {
        let mut out = Vec::new();
        while let Some(ev) = self.next_event()? {
            out.push(ev);
        }
        Ok(out)
    }

    fn too_large(&self) -> XmppError {
        XmppError::StanzaTooLarge {
            limit: self.max_stanza,
        }
    }

    fn step(&mut self) -> Result<Option<StreamEvent>> {
        if self.pending_close {
            self.pending_close = false;
            self.open = false;
            return Ok(Some(StreamEvent::Close));
        }
        if let Some(st) = self.stanza {
            return self.continue_stanza(st);
        }
        loop {
            let b = &self.buf[self.pos..];
            let Some(&c) = b.first() else {
                return Ok(None);
            };
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                0xC8 => match b.get(1) {
                    None => return Ok(None),
                    Some(0x80) => {
                        self.pos += 2;
                        return Ok(Some(StreamEvent::Keepalive));
                    }
                    Some(_) => {
                        return Err(XmppError::UnexpectedStreamData(
                            "invalid byte after 0xC8".into(),
                        ))
                    }
                },
                b'<' => match self.top_level_markup()? {
                    Some(ev) => return Ok(ev),
                    None => continue,
                },
                other => {
                    return Err(XmppError::UnexpectedStreamData(format!(
                        "byte 0x{other:02X} between stanzas"
                    )))
                }
            }
        }
    }

    /// `Ok(None)` means "skipped something, keep scanning".
    fn top_level_markup(&mut self) -> Result<Option<Option<StreamEvent>>> {
        let b = &self.buf[self.pos..];
        let tok = scan_token(b, 0, &mut self.resume)?;
        match tok {
            Tok::Incomplete => {
                if b.len() > self.max_stanza {
                    return Err(self.too_large());
                }
                Ok(Some(None))
            }
            Tok::Text(_) => Err(XmppError::UnexpectedStreamData("text".into())),
            Tok::Skip { end } => {
                if b.starts_with(b"<![CDATA[") {
                    return Err(XmppError::UnexpectedStreamData("CDATA".into()));
                }
                if end > self.max_stanza {
                    return Err(self.too_large());
                }
                self.pos += end;
                Ok(None)
            }
            Tok::End { end } => {
                if tag_name(&b[..end]) != b"stream:stream" {
                    return Err(XmppError::UnexpectedStreamData(format!(
                        "unmatched end tag {}",
                        String::from_utf8_lossy(&b[..end.min(64)])
                    )));
                }
                if b[2..end - 1].trim_ascii_end() != b"stream:stream" {
                    return Err(XmppError::UnexpectedStreamData("bad close tag".into()));
                }
                self.pos += end;
                self.open = false;
                Ok(Some(Some(StreamEvent::Close)))
            }
            Tok::Start { end, empty } => {
                if end > self.max_stanza {
                    return Err(self.too_large());
                }
                if tag_name(&b[..end]) == b"stream:stream" {
                    let mut tag = b[..end - 1].to_vec();
                    if empty {
                        tag.pop();
                    }
                    tag.extend_from_slice(b"/>");
                    let el = Element::parse_bytes(&tag)?;
                    let header = StreamHeader::from_element(&el)?;
                    self.pos += end;
                    self.open = true;
                    self.pending_close = empty;
                    return Ok(Some(Some(StreamEvent::Open(header))));
                }
                if !self.open {
                    return Err(XmppError::UnexpectedStreamData(
                        "stanza before <stream:stream>".into(),
                    ));
                }
                self.continue_stanza(InStanza { scan: 0, depth: 0 })
                    .map(Some)
            }
        }
    }

    fn continue_stanza(&mut self, mut st: InStanza) -> Result<Option<StreamEvent>> {
        let b = &self.buf[self.pos..];
        loop {
            if st.scan > self.max_stanza {
                return Err(self.too_large());
            }
            if st.depth == 0 && st.scan > 0 {
                let el = Element::parse_bytes(&b[..st.scan])?;
                self.pos += st.scan;
                self.stanza = None;
                return Ok(Some(StreamEvent::Stanza(el)));
            }
            if st.scan >= b.len() {
                self.stanza = Some(st);
                return Ok(None);
            }
            match scan_token(b, st.scan, &mut self.resume)? {
                Tok::Incomplete => {
                    if b.len() > self.max_stanza {
                        return Err(self.too_large());
                    }
                    self.stanza = Some(st);
                    return Ok(None);
                }
                Tok::Text(end) | Tok::Skip { end } => st.scan = end,
                Tok::Start { end, empty } => {
                    st.scan = end;
                    if !empty {
                        st.depth += 1;
                    } else if st.depth == 0 {
                        // a self-closed top-level stanza: depth stays 0 and we are done
                        st.depth = 0;
                    }
                }
                Tok::End { end } => {
                    st.scan = end;
                    st.depth = st.depth.checked_sub(1).ok_or_else(|| {
                        XmppError::UnexpectedStreamData("unbalanced end tag".into())
                    })?;
                }
            }
        }
    }
}

use crate::tls::TlsNegotiation;
pub use crate::tls::NS_TLS;

/// Server → client when `xmpp_auth_enable`:
/// `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`.
pub fn tls_features() -> Element {
    TlsNegotiation::Features { required: true }.to_element()
}

/// Client → server `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`.
pub fn starttls() -> Element {
    TlsNegotiation::StartTls.to_element()
}

/// Server → client `<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`.
pub fn proceed() -> Element {
    TlsNegotiation::Proceed.to_element()
}
