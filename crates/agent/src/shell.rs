//! The agent's I/O shell (tokio): drives the `core::Agent` with real sockets, the forwarder
//! runtime (`filament_dataplane_io::Datapath`) and the port API.
//!
//! ```text
//!  xmpp task (1 per control node) ──Input::Connected/Bytes/Disconnected──┐
//!  port API (axum, :9091) ───────────Input::PortAdd/PortDelete ──────────┼─> Shared (Mutex<Agent>)
//!  timer task ──────────────────────Input::Tick ─────────────────────────┘        │ outputs
//!  punt task <── Datapath punts: DHCP/ARP -> reply via inject;                      ├─ Op  -> op task -> DatapathHandle::apply (in order)
//!                                 flow miss -> decide -> Op::AddFlow               └─ XMPP bytes -> the channel's writer
//! ```
//! Every state change goes through `Shared::input`, which runs the core under the lock and
//! forwards its outputs in order (ops to one applier task, bytes to the channel's writer).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use filament_dataplane::{FlowKey, Op, PuntReason, VifId};
use filament_dataplane_io::{DatapathHandle, Punt};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::arp::ArpStats;
use crate::core::{Agent, Input, Output};
use crate::dhcp::DhcpStats;
use crate::xmpp_tls::XmppTls;

pub use crate::flow_records::FlowRecord;
use crate::flow_records::{record, redecide};

/// Counters of the shell.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShellCounters {
    /// DHCP server
    pub dhcp: DhcpStats,
    /// ARP proxy
    pub arp: ArpStats,
    /// flows allowed
    pub flows_allowed: u64,
    /// flows denied
    pub flows_denied: u64,
    /// forwarder ops that failed
    pub op_errors: u64,
    /// punts without a use (unknown vif, no key)
    pub punts_ignored: u64,
    /// established flows whose verdict a config (policy, SG, ACL) change reversed
    pub flows_redecided: u64,
}

/// State shared by the shell's tasks.
pub struct Shared {
    /// the agent core
    pub agent: Mutex<Agent>,
    /// flow decisions by forward and reverse key
    pub flows: Mutex<HashMap<FlowKey, FlowRecord>>,
    /// counters
    pub counters: Mutex<ShellCounters>,
    /// the forwarder
    pub dp: DatapathHandle,
    ops: mpsc::UnboundedSender<Op>,
    chans: Vec<mpsc::UnboundedSender<ChanMsg>>,
    start: Instant,
}

/// To a channel's connection task.
pub enum ChanMsg {
    /// bytes to write
    Bytes(Vec<u8>),
    /// close the connection (the core declared the channel down)
    Close,
}

impl Shared {
    /// Milliseconds since start (the core's clock).
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Run one input through the core and forward its outputs.
    pub fn input(&self, input: Input) {
        let mut a = self.agent.lock();
        a.handle(self.now(), input);
        if let Some(ch) = a.take_policy_change() {
            self.redecide_flows(&a, &ch);
        }
        for o in a.poll_output() {
            match o {
                Output::Op(op) => {
                    let _ = self.ops.send(op);
                }
                Output::Xmpp(n, b) => {
                    if let Some(c) = self.chans.get(n) {
                        let _ = c.send(ChanMsg::Bytes(b));
                    }
                }
                Output::Close(n) => {
                    if let Some(c) = self.chans.get(n) {
                        let _ = c.send(ChanMsg::Close);
                    }
                }
            }
        }
    }

    /// A policy, security group, ACL or port changed: decide again the recorded flows it
    /// concerns (as TF's agent re-evaluates flows on a policy change) and re-install those
    /// whose verdict changed; the forwarder replaces both directions in place, releasing
    /// nothing and keeping the flows' counters, so a running connection is cut or let through
    /// at its next packet.
    fn redecide_flows(&self, a: &Agent, ch: &crate::core::PolicyChange) {
        let r = redecide(a, ch, &mut self.flows.lock());
        let changed = r.ops.len() as u64;
        for op in r.ops {
            let _ = self.ops.send(op);
        }
        if changed > 0 {
            self.counters.lock().flows_redecided += changed;
            tracing::info!(changed, "flows re-decided after a config change");
        }
    }

    /// Queue a forwarder op behind the core's.
    pub fn apply(&self, op: Op) {
        let _ = self.ops.send(op);
    }
}

/// Start the shell's tasks over an agent core and a running datapath; returns the shared
/// state (for the port API) once the tasks are spawned.
pub fn start(
    agent: Agent,
    dp: DatapathHandle,
    punts: mpsc::Receiver<Punt>,
    controls: Vec<SocketAddr>,
) -> Arc<Shared> {
    start_with_tls(agent, dp, punts, controls, None)
}

/// [`start`], with XMPP over TLS to every control node when `tls` is given (STARTTLS as
/// TF's agent with `xmpp_auth_enable`, `xmpp_tls.rs`).
pub fn start_with_tls(
    agent: Agent,
    dp: DatapathHandle,
    punts: mpsc::Receiver<Punt>,
    controls: Vec<SocketAddr>,
    tls: Option<XmppTls>,
) -> Arc<Shared> {
    let (op_tx, op_rx) = mpsc::unbounded_channel();
    let mut chan_rx = Vec::new();
    let mut chans = Vec::new();
    for _ in &controls {
        let (tx, rx) = mpsc::unbounded_channel();
        chans.push(tx);
        chan_rx.push(rx);
    }
    let shared = Arc::new(Shared {
        agent: Mutex::new(agent),
        flows: Mutex::new(HashMap::new()),
        counters: Mutex::new(ShellCounters::default()),
        dp: dp.clone(),
        ops: op_tx,
        chans,
        start: Instant::now(),
    });
    tokio::spawn(op_task(shared.clone(), op_rx));
    for (n, (addr, rx)) in controls.into_iter().zip(chan_rx).enumerate() {
        tokio::spawn(xmpp_task(shared.clone(), n, addr, rx, tls.clone()));
    }
    tokio::spawn(timer_task(shared.clone()));
    tokio::spawn(punt_task(shared.clone(), punts));
    shared
}

async fn op_task(s: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Op>) {
    while let Some(op) = rx.recv().await {
        if let Err(e) = s.dp.apply(op.clone()).await {
            s.counters.lock().op_errors += 1;
            tracing::warn!(error = %e, ?op, "forwarder op failed");
        }
    }
}

async fn timer_task(s: Arc<Shared>) {
    loop {
        let due = s.agent.lock().poll_timeout();
        let wait = due.map_or(1000, |t| t.saturating_sub(s.now()).clamp(10, 1000));
        tokio::time::sleep(Duration::from_millis(wait)).await;
        s.input(Input::Tick);
    }
}

/// One control node: connect (and STARTTLS when configured), feed bytes to the core, write
/// what it sends; reconnect with backoff (TF: connect retry ≤ 30 s).
async fn xmpp_task(
    s: Arc<Shared>,
    n: usize,
    addr: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<ChanMsg>,
    tls: Option<XmppTls>,
) {
    let mut backoff = 1u64;
    loop {
        let conn = TcpStream::connect(addr).await;
        let Ok(stream) = conn else {
            tokio::time::sleep(Duration::from_secs(backoff)).await;
            backoff = (backoff * 2).min(8);
            continue;
        };
        backoff = 1;
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                tracing::info!(%addr, "xmpp connected");
                run_connection(&s, n, stream, &mut rx).await;
            }
            Some(t) => match t.starttls(stream, addr.ip()).await {
                Ok(tls_stream) => {
                    tracing::info!(%addr, "xmpp connected (TLS)");
                    run_connection(&s, n, tls_stream, &mut rx).await;
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "xmpp: TLS negotiation failed");
                    tokio::time::sleep(Duration::from_secs(backoff)).await;
                    backoff = (backoff * 2).min(8);
                    continue;
                }
            },
        }
        tracing::info!(%addr, "xmpp disconnected");
        s.input(Input::Disconnected(n));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One connection (plain or TLS) as the core's channel `n`, until either side ends it.
async fn run_connection<S: AsyncRead + AsyncWrite>(
    s: &Shared,
    n: usize,
    stream: S,
    rx: &mut mpsc::UnboundedReceiver<ChanMsg>,
) {
    // drop anything queued for the previous connection
    while rx.try_recv().is_ok() {}
    let (mut rd, mut wr) = tokio::io::split(stream);
    s.input(Input::Connected(n));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(k) => s.input(Input::Bytes(n, buf[..k].to_vec())),
            },
            m = rx.recv() => match m {
                Some(ChanMsg::Bytes(b)) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Some(ChanMsg::Close) | None => break,
            },
        }
    }
}

async fn punt_task(s: Arc<Shared>, mut rx: mpsc::Receiver<Punt>) {
    while let Some(p) = rx.recv().await {
        handle_punt(&s, p);
    }
}

/// One punted packet.
pub fn handle_punt(s: &Shared, p: Punt) {
    match p.reason {
        PuntReason::Dhcp => {
            let params = s.agent.lock().dhcp_params(p.vif.0);
            let Some(params) = params else {
                s.counters.lock().punts_ignored += 1;
                return;
            };
            let r = {
                let mut c = s.counters.lock();
                crate::dhcp::handle(&params, &p.frame, &mut c.dhcp)
            };
            match r {
                Ok(Some(reply)) => {
                    let _ = s.dp.inject(p.vif, reply);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, vif = p.vif.0, "dhcp dropped"),
            }
        }
        PuntReason::Arp => {
            let a = s.agent.lock();
            let r = {
                let mut c = s.counters.lock();
                crate::arp::handle(&p.frame, |t| a.arp_target(p.vif.0, t), &mut c.arp)
            };
            drop(a);
            if let Ok(Some(reply)) = r {
                let _ = s.dp.inject(p.vif, reply);
            }
        }
        PuntReason::FlowMiss => {
            let Some(key) = p.key else {
                s.counters.lock().punts_ignored += 1;
                return;
            };
            // The forwarder runs the flow stage for a policy vif on every path (routed or
            // bridged, from a workload or the fabric), so the first packet of a flow is its
            // request and the reply matches the reverse entry installed with this verdict.
            let (d, deps) = {
                let a = s.agent.lock();
                (a.decide_flow(&key), a.flow_deps(&key))
            };
            {
                let mut c = s.counters.lock();
                if d.allow {
                    c.flows_allowed += 1;
                } else {
                    c.flows_denied += 1;
                }
            }
            record(&mut s.flows.lock(), key, d.allow, d.rule, deps);
            s.apply(Agent::flow_op(key, d.allow));
        }
        PuntReason::Receive => s.counters.lock().punts_ignored += 1,
    }
}

/// The fabric interface's first IPv4 address with its prefix length and its MTU, read from
/// the system (`ip -j addr show`, sysfs).
pub fn fabric_addr(ifname: &str) -> Option<(Ipv4Addr, u8, u16)> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-4", "addr", "show", "dev", ifname])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let a = v.get(0)?.get("addr_info")?.get(0)?;
    let ip = a.get("local")?.as_str()?.parse().ok()?;
    let plen = u8::try_from(a.get("prefixlen")?.as_u64()?).ok()?;
    let mtu = u16::try_from(v.get(0)?.get("mtu")?.as_u64()?).ok()?;
    Some((ip, plen, mtu))
}

/// The vif of a port, if attached.
pub fn port_vif(s: &Shared, id: &str) -> Option<VifId> {
    s.agent.lock().ports.get(id).map(|p| VifId(p.vif))
}
