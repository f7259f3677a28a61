//! XMPP over TLS on the agent side, as TF's agent with `xmpp_auth_enable` runs it
//! (docs/tf-agent-compat.md "XMPP over TLS"): before the core's channel sees the connection,
//! the shell sends the stream header, waits for the control node's header and
//! `<stream:features>` with `<starttls>`, sends `<starttls/>`, waits for `<proceed/>`, and
//! runs the TLS handshake on the same socket.  The core's channel then starts on the TLS
//! stream as on a new connection: it sends the header again, as TF's agent does after the
//! handshake (`EvTlsHandShakeSuccess` → `SendOpen`).
//!
//! Framing and elements come from `filament_wire_xmpp` (sans-IO); this module only moves
//! bytes, under the open timer (TF: 15 s).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use filament_wire_xmpp::tls_config::{self, TlsSetupError};
use filament_wire_xmpp::{StreamEvent, StreamHeader, StreamParser, TlsNegotiation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// TF's open timer: the whole negotiation must finish within it.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent's TLS settings for its control-node channels.
#[derive(Clone, Debug)]
pub struct XmppTls {
    /// The agent's name (JID) for the stream header.
    pub agent: String,
    /// rustls settings (CA, optional client certificate).
    pub config: Arc<rustls::ClientConfig>,
}

/// Errors of the TLS setup and of one negotiation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmppTlsError {
    /// A PEM file could not be read.
    #[error("{what} {path}: {source}")]
    Read {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The PEM content is unusable.
    #[error("XMPP TLS settings: {0}")]
    Setup(#[from] TlsSetupError),
    /// The socket failed during the negotiation.
    #[error("XMPP STARTTLS: {0}")]
    Io(#[from] std::io::Error),
    /// The control node's bytes did not parse.
    #[error("XMPP STARTTLS: bad stream from the control node: {0}")]
    Stream(#[from] filament_wire_xmpp::XmppError),
    /// The control node sent something else than the next negotiation step.
    #[error("XMPP STARTTLS: control node sent {got} while {waiting}")]
    Unexpected {
        /// What we waited for.
        waiting: &'static str,
        /// What came.
        got: String,
    },
    /// The control node closed the connection.
    #[error("XMPP STARTTLS: control node closed the connection while {0}")]
    Closed(&'static str),
    /// The open timer expired (a control node without TLS sends no `<stream:features>`).
    #[error("XMPP STARTTLS: no answer in 15 s while {0} (does the control node run TLS?)")]
    Timeout(&'static str),
    /// The TLS handshake failed.
    #[error("XMPP TLS handshake: {0}")]
    Handshake(std::io::Error),
}

impl XmppTls {
    /// Settings from PEM files: `ca` verifies the control node (chain, not name); with
    /// `cert_key` the agent presents that certificate (needed when the control node has a CA).
    pub fn load(
        agent: &str,
        ca: &Path,
        cert_key: Option<(&Path, &Path)>,
    ) -> Result<Self, XmppTlsError> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| XmppTlsError::Read {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        let pair = match cert_key {
            Some((c, k)) => Some((read("certificate", c)?, read("key", k)?)),
            None => None,
        };
        let config = tls_config::client_config(
            &read("CA", ca)?,
            pair.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )?;
        Ok(XmppTls {
            agent: agent.to_string(),
            config,
        })
    }

    /// Negotiate STARTTLS on a fresh connection to the control node at `addr` and return
    /// the TLS stream, ready for the channel's (second) stream header.
    pub async fn starttls(
        &self,
        mut tcp: TcpStream,
        addr: IpAddr,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, XmppTlsError> {
        let hdr = StreamHeader::agent_to_control(&self.agent).to_xml();
        tcp.write_all(hdr.as_bytes()).await?;
        let mut p = StreamParser::new();
        let waiting = "waiting for <stream:features> with <starttls>";
        next_tls(&mut tcp, &mut p, waiting, |t| {
            matches!(t, TlsNegotiation::Features { .. })
        })
        .await?;
        tcp.write_all(TlsNegotiation::StartTls.to_xml().as_bytes())
            .await?;
        next_tls(&mut tcp, &mut p, "waiting for <proceed/>", |t| {
            *t == TlsNegotiation::Proceed
        })
        .await?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(tls_config::server_name(addr), tcp)
            .await
            .map_err(XmppTlsError::Handshake)
    }
}

/// Read until the negotiation element `want` accepts (the control node's stream header may
/// come first); anything else is an error.  Bounded by [`NEGOTIATION_TIMEOUT`].
async fn next_tls(
    tcp: &mut TcpStream,
    p: &mut StreamParser,
    waiting: &'static str,
    want: impl Fn(&TlsNegotiation) -> bool,
) -> Result<(), XmppTlsError> {
    let step = async {
        let mut buf = [0u8; 4096];
        loop {
            while let Some(ev) = p.next_event()? {
                match ev {
                    StreamEvent::Open(_) | StreamEvent::Keepalive => {}
                    StreamEvent::Stanza(e) => match TlsNegotiation::from_element(&e) {
                        Some(t) if want(&t) => return Ok(()),
                        _ => {
                            return Err(XmppTlsError::Unexpected {
                                waiting,
                                got: format!("<{}>", e.name),
                            })
                        }
                    },
                    StreamEvent::Close => return Err(XmppTlsError::Closed(waiting)),
                }
            }
            // one byte at a time would be exact; the control node sends nothing after
            // <proceed/> until the handshake, so whole reads lose nothing
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Err(XmppTlsError::Closed(waiting));
            }
            p.feed(&buf[..n])?;
        }
    };
    tokio::time::timeout(NEGOTIATION_TIMEOUT, step)
        .await
        .map_err(|_| XmppTlsError::Timeout(waiting))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::net::TcpListener;

    /// A CA-signed server certificate named `control.example` and its CA, as PEM.
    fn pki() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["control.example".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    }

    fn settings(ca_pem: &str) -> XmppTls {
        XmppTls {
            agent: "host1".into(),
            config: tls_config::client_config(ca_pem.as_bytes(), None).unwrap(),
        }
    }

    /// Read from `s` until `needle` was seen.
    async fn read_until<S: tokio::io::AsyncRead + Unpin>(s: &mut S, needle: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    /// Against a control node doing TF's server steps: header, features, proceed, TLS; the
    /// stream returned carries what the agent writes next (its second header) encrypted.
    #[tokio::test]
    async fn negotiates_tfs_steps_then_tls() {
        let (ca, cert, key) = pki();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let hdr = read_until(&mut s, "streams\" >").await;
            assert!(hdr.starts_with("<stream:stream from=\"host1\""), "{hdr}");
            let mut out = StreamHeader::control_to_agent("host1").to_xml();
            out += &TlsNegotiation::Features { required: true }.to_xml();
            s.write_all(out.as_bytes()).await.unwrap();
            read_until(&mut s, "<starttls").await;
            s.write_all(TlsNegotiation::Proceed.to_xml().as_bytes())
                .await
                .unwrap();
            let cfg = tls_config::server_config(cert.as_bytes(), key.as_bytes(), None).unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(cfg)
                .accept(s)
                .await
                .unwrap();
            read_until(&mut tls, "streams\" >").await
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = settings(&ca).starttls(tcp, addr.ip()).await.unwrap();
        let hdr = StreamHeader::agent_to_control("host1").to_xml();
        tls.write_all(hdr.as_bytes()).await.unwrap();
        assert_eq!(server.await.unwrap(), hdr, "the reopened stream, over TLS");
    }

    /// A control node without TLS answers the header and goes on (here: with an iq): the
    /// agent gives up with the reason instead of talking in the clear.
    #[tokio::test]
    async fn a_control_node_without_tls_is_an_error() {
        let (ca, _, _) = pki();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            read_until(&mut s, "streams\" >").await;
            let out = StreamHeader::control_to_agent("host1").to_xml() + "<iq type=\"set\"></iq>";
            s.write_all(out.as_bytes()).await.unwrap();
            let _ = s.read(&mut [0u8; 16]).await;
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = settings(&ca).starttls(tcp, addr.ip()).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("<iq>") && msg.contains("<stream:features>"),
            "{msg}"
        );
    }
}
