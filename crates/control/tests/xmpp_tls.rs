//! XMPP over TLS as TF runs it (`xmpp_auth_enable`; docs/tf-agent-compat.md "XMPP over
//! TLS"): the core's STARTTLS steps on a virtual clock, then the real listener with TF-style
//! agents on sockets — header, `<stream:features>`, `<starttls/>`, `<proceed/>`, the TLS
//! handshake, the header again over TLS, then routes.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{two_networks, ConfigEnv, Lab, VN1, VRF1};
use filament_control::shell::{self, Listeners, ShellConfig};
use filament_control::{tls, Input, NodeConfig};
use filament_wire_xmpp::{
    route_iqs, CollectionOp, RouteNode, StreamEvent, StreamHeader, StreamParser, SubscribeAction,
    SubscribeIq, TlsNegotiation,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------- core (sans-IO) ----

fn tls_lab() -> Lab {
    let mut lab = Lab::new();
    lab.node.set_xmpp_tls(true);
    lab.sync(&two_networks());
    lab
}

/// The header is answered by our header and TF's feature request; `<starttls/>` by
/// `<proceed/>` and a StartTls for the shell; after the handshake the stream opens again.
#[test]
fn core_walks_tfs_starttls_steps() {
    let mut lab = tls_lab();
    let c = lab.connect("host1");
    let a = lab.agent(c);
    assert!(a.opened, "our stream header went out");
    assert!(!a.start_tls && !a.closed);
    assert_eq!(lab.node.neighbors()["neighbors"][0]["state"], "OpenConfirm");
    lab.send(c, &TlsNegotiation::StartTls.to_xml());
    assert!(
        lab.agent(c).start_tls,
        "<proceed/> and then the shell's handshake"
    );
    lab.step(Input::TlsDone {
        conn: c,
        error: None,
    });
    // the agent opens its stream again, over TLS; from now on it is a normal session
    lab.send(c, &StreamHeader::agent_to_control("host1").to_xml());
    assert_eq!(lab.node.neighbors()["neighbors"][0]["state"], "Established");
    lab.subscribe(c, VRF1, 3);
    lab.announce(c, "10.1.1.3", 17);
    let vpn = lab.node.rib().table("bgp.l3vpn.0").unwrap();
    assert!(vpn.get("192.168.0.1:3:10.1.1.3/32").is_some());
}

fn last_reason(lab: &Lab, peer: &str) -> String {
    let n = lab.node.neighbors();
    let row = n["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["peer"] == peer)
        .cloned()
        .unwrap_or(Value::Null);
    row["last_reason"].as_str().unwrap_or_default().to_string()
}

/// An agent that goes on in the clear where TLS is required is refused, with the reason.
#[test]
fn core_refuses_an_agent_that_does_not_start_tls() {
    let mut lab = tls_lab();
    let c = lab.connect("host1");
    lab.subscribe(c, VRF1, 3);
    assert!(lab.agent(c).closed);
    let why = last_reason(&lab, "host1");
    assert!(why.contains("TLS required"), "{why}");
    assert!(why.contains("<iq>"), "{why}");
}

/// A failed handshake (reported by the shell) closes with its reason; a silent agent is
/// dropped by the hold timer, also before TLS.
#[test]
fn core_handshake_failure_and_hold_timer() {
    let mut lab = tls_lab();
    let c = lab.connect("host1");
    lab.send(c, &TlsNegotiation::StartTls.to_xml());
    lab.step(Input::TlsDone {
        conn: c,
        error: Some("invalid peer certificate: UnknownIssuer".into()),
    });
    assert!(lab.agent(c).closed);
    let why = last_reason(&lab, "host1");
    assert!(why.starts_with("TLS handshake failed"), "{why}");
    assert!(why.contains("UnknownIssuer"), "{why}");

    let d = lab.connect("host2");
    lab.advance(Duration::from_secs(10)); // the lab's hold time is 9 s
    assert!(lab.agent(d).closed);
    let why = last_reason(&lab, "host2");
    assert!(why.contains("waiting for <starttls/>"), "{why}");
}

/// Without TLS configured nothing changes: no features, established at the header.
#[test]
fn core_without_tls_is_unchanged() {
    let mut lab = Lab::synced(&two_networks());
    let c = lab.connect("host1");
    assert!(!lab.agent(c).start_tls);
    assert_eq!(lab.node.neighbors()["neighbors"][0]["state"], "Established");
    lab.send(c, &TlsNegotiation::StartTls.to_xml());
    assert!(
        !lab.agent(c).start_tls,
        "<starttls/> means nothing without TLS"
    );
}

// ------------------------------------------------------------ shell, real sockets ----

/// A CA, a control-node certificate, and agent certificates, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        Pki {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// A self-signed CA written as `<name>.pem`; returned for signing.
    fn ca(&self, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let cert = p.self_signed(&key).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        (cert, key)
    }
    /// A leaf for `dns` signed by `ca`, written as `<name>.crt` and `<name>.key`.
    fn leaf(&self, name: &str, dns: &str, client: bool, ca: &(rcgen::Certificate, rcgen::KeyPair)) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![dns.to_string()]).unwrap();
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
        std::fs::write(self.path(&format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }
    fn cert_key(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        )
    }
}

/// A running control node (shell) with `env`'s config, TLS from `pki` (`ca`: require
/// client certificates).
async fn control(pki: &Pki, ca: Option<&Path>, env: &ConfigEnv) -> (shell::Handle, SocketAddr) {
    let (cert, key) = pki.cert_key("control");
    let cfg = ShellConfig {
        api: String::new(),
        xmpp_listen: "127.0.0.1:0".parse().unwrap(),
        introspect: "127.0.0.1:0".parse().unwrap(),
        bgp_address: None,
        bgp_port: 179,
        node: NodeConfig {
            name: "ctl1".into(),
            hold: Duration::from_secs(30),
            eor_delay: Duration::from_millis(100),
        },
        xmpp_tls: Some(tls::server_config(&cert, &key, ca).unwrap()),
    };
    let l = Listeners::bind(&cfg).await.unwrap();
    let addr = l.xmpp.local_addr().unwrap();
    let h = shell::start(cfg, l, futures::future::pending());
    for o in env.objects() {
        h.input(Input::Config {
            uuid: o.uuid.clone(),
            object: Some(Box::new(o)),
        })
        .unwrap();
    }
    h.input(Input::Tick).unwrap();
    (h, addr)
}

/// Read stream events until one satisfies `done` (5 s at most).
async fn read_until<S: AsyncRead + Unpin>(
    s: &mut S,
    p: &mut StreamParser,
    mut done: impl FnMut(&StreamEvent) -> bool,
) -> Result<Vec<StreamEvent>, String> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(ev) = p.next_event().map_err(|e| e.to_string())? {
            let stop = done(&ev);
            seen.push(ev);
            if stop {
                return Ok(seen);
            }
        }
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .map_err(|_| format!("timed out after {seen:?}"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed after {seen:?}"));
        }
        p.feed(&buf[..n]).map_err(|e| e.to_string())?;
    }
}

fn is_tls(ev: &StreamEvent, want: fn(&TlsNegotiation) -> bool) -> bool {
    matches!(ev, StreamEvent::Stanza(e) if TlsNegotiation::from_element(e).as_ref().is_some_and(want))
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// What a TF agent does with `xmpp_auth_enable`: header, wait for the feature request,
/// `<starttls/>`, wait for `<proceed/>`, TLS, header again, wait for the server's header.
async fn tf_agent_tls(
    addr: SocketAddr,
    name: &str,
    tls_cfg: Arc<rustls::ClientConfig>,
) -> Result<(TlsStream, StreamParser), String> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let hdr = StreamHeader::agent_to_control(name).to_xml();
    tcp.write_all(hdr.as_bytes()).await.unwrap();
    let mut p = StreamParser::new();
    read_until(&mut tcp, &mut p, |ev| {
        is_tls(ev, |t| *t == TlsNegotiation::Features { required: true })
    })
    .await?;
    tcp.write_all(TlsNegotiation::StartTls.to_xml().as_bytes())
        .await
        .unwrap();
    read_until(&mut tcp, &mut p, |ev| {
        is_tls(ev, |t| *t == TlsNegotiation::Proceed)
    })
    .await?;
    let mut s = tokio_rustls::TlsConnector::from(tls_cfg)
        .connect(tls::server_name(addr.ip()), tcp)
        .await
        .map_err(|e| format!("client handshake: {e}"))?;
    s.write_all(hdr.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut p = StreamParser::new();
    read_until(&mut s, &mut p, |ev| matches!(ev, StreamEvent::Open(_))).await?;
    Ok((s, p))
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, xml: &str) {
    s.write_all(xml.as_bytes()).await.unwrap();
}

fn subscribe(name: &str) -> String {
    SubscribeIq::routing(name, 1, SubscribeAction::Subscribe, VRF1, 3).to_xml()
}

fn publish(name: &str, ip: &str, nh: &str) -> String {
    let node = RouteNode::parse(&format!("1/1/{VRF1}/{ip}/32")).unwrap();
    let entry = common::inet_entry(ip, nh, 17, VN1);
    let (p, col) = route_iqs(name, 2, VRF1, node, entry, CollectionOp::Associate);
    p.to_element().to_xml() + &col.to_element().to_xml()
}

fn has_item(ev: &StreamEvent, id: &str) -> bool {
    let StreamEvent::Stanza(e) = ev else {
        return false;
    };
    e.to_xml().contains(&format!("id=\"{id}\""))
}

async fn neighbor(h: &shell::Handle, peer: &'static str) -> Value {
    h.with_node(move |n| {
        n.neighbors()["neighbors"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["peer"] == peer).cloned())
            .unwrap_or(Value::Null)
    })
    .await
    .unwrap()
}

/// Poll `neighbors` until `peer`'s row satisfies `ok` (5 s at most).
async fn wait_neighbor(
    h: &shell::Handle,
    peer: &'static str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let row = neighbor(h, peer).await;
        if ok(&row) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    neighbor(h, peer).await
}

/// Two agents with certificates from the CA: TLS up, routes flow between them.  The
/// control node's certificate names `control.example`, not 127.0.0.1: as TF's agent, the
/// client checks the chain, not the name.
#[tokio::test]
async fn tls_agents_exchange_routes() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    pki.leaf("control", "control.example", false, &ca);
    pki.leaf("host1", "host1", true, &ca);
    pki.leaf("host2", "host2", true, &ca);
    let (h, addr) = control(&pki, Some(&pki.path("ca.pem")), &two_networks()).await;
    let client = |name: &str| {
        let (c, k) = pki.cert_key(name);
        tls::client_config(&pki.path("ca.pem"), Some((&c, &k))).unwrap()
    };
    let r = tf_agent_tls(addr, "host1", client("host1")).await;
    let row = neighbor(&h, "host1").await;
    let (mut a, _pa) = r.map_err(|e| format!("{e}: {row}")).unwrap();
    let (mut b, mut pb) = tf_agent_tls(addr, "host2", client("host2")).await.unwrap();
    send(&mut b, &subscribe("host2")).await;
    send(&mut a, &subscribe("host1")).await;
    send(&mut a, &publish("host1", "10.1.1.3", "192.168.0.1")).await;
    read_until(&mut b, &mut pb, |ev| has_item(ev, "10.1.1.3/32"))
        .await
        .expect("host2 gets host1's route over TLS");
    let row = neighbor(&h, "host1").await;
    assert_eq!(row["state"], "Established", "{row}");
    assert_eq!(row["prefixes"], 1, "{row}");
}

/// An agent that does not STARTTLS is refused, and `neighbors` says why.
#[tokio::test]
async fn agent_without_tls_is_refused() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    pki.leaf("control", "control.example", false, &ca);
    let (h, addr) = control(&pki, None, &two_networks()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    send(&mut tcp, &StreamHeader::agent_to_control("host1").to_xml()).await;
    send(&mut tcp, &subscribe("host1")).await;
    let mut p = StreamParser::new();
    let seen = read_until(&mut tcp, &mut p, |ev| *ev == StreamEvent::Close)
        .await
        .unwrap();
    assert!(
        seen.iter()
            .any(|ev| is_tls(ev, |t| matches!(t, TlsNegotiation::Features { .. }))),
        "the feature request came first: {seen:?}"
    );
    let row = wait_neighbor(&h, "host1", |r| r["last_reason"].is_string()).await;
    let why = row["last_reason"].as_str().unwrap_or_default();
    assert!(why.contains("TLS required"), "{row}");
    assert_ne!(row["state"], "Established", "{row}");
}

/// A client certificate from another CA fails the handshake: refused, with the reason;
/// so does a client that presents no certificate where one is required.
#[tokio::test]
async fn wrong_ca_or_no_client_cert_is_refused() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let rogue = pki.ca("rogue");
    pki.leaf("control", "control.example", false, &ca);
    pki.leaf("host1", "host1", true, &rogue);
    let (h, addr) = control(&pki, Some(&pki.path("ca.pem")), &two_networks()).await;
    let (c, k) = pki.cert_key("host1");
    let cfg = tls::client_config(&pki.path("ca.pem"), Some((&c, &k))).unwrap();
    let r = tf_agent_tls(addr, "host1", cfg).await;
    assert!(r.is_err(), "a rogue certificate must not get a session");
    let row = wait_neighbor(&h, "host1", |r| r["last_reason"].is_string()).await;
    let why = row["last_reason"].as_str().unwrap_or_default();
    assert!(why.starts_with("TLS handshake failed"), "{row}");
    assert!(why.to_lowercase().contains("certificate"), "{row}");

    let cfg = tls::client_config(&pki.path("ca.pem"), None).unwrap();
    assert!(tf_agent_tls(addr, "host2", cfg).await.is_err());
    let row = wait_neighbor(&h, "host2", |r| r["last_reason"].is_string()).await;
    let why = row["last_reason"].as_str().unwrap_or_default();
    assert!(why.starts_with("TLS handshake failed"), "{row}");
}

/// The agent side checks the control node too: a server certificate from a CA the agent
/// does not trust ends the handshake on the agent's side.
#[tokio::test]
async fn agent_refuses_an_untrusted_control_node() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let other = pki.ca("other");
    pki.leaf("control", "control.example", false, &other);
    let (_h, addr) = control(&pki, None, &two_networks()).await;
    let cfg = tls::client_config(&pki.path("ca.pem"), None).unwrap();
    let err = tf_agent_tls(addr, "host1", cfg).await.unwrap_err();
    assert!(err.contains("client handshake"), "{err}");
    drop(ca);
}
