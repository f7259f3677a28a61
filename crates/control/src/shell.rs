//! The control node's I/O shell (tokio): XMPP listener, config-feed follower, introspect
//! HTTP server, and one task that owns the [`ControlNode`] core.
//!
//! ```text
//!  TCP :5269 accept ──> reader task ──Input::Bytes──┐
//!  GET /watch (api) ──> follower  ──Input::Config───┼──> core thread: handle* + flush ──Output──> writer tasks
//!  interval 100 ms ──────────────────Input::Tick────┘        ^
//!  HTTP :8083 (/status, /routes, ...) ──Handle::with_node────┘
//! ```
//! Every input goes through one channel, so the core sees one ordered stream of events.
//!
//! With TLS configured ([`ShellConfig::xmpp_tls`], TF's `xmpp_auth_enable`) a connection
//! starts in the clear and switches to TLS when the core emits [`Output::StartTls`] (after
//! `<proceed/>`): `shell/conn.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use filament_config::feed::FeedLines;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::bgp_peers::follows_global_asn;
use crate::introspect::PrefixMatch;
use crate::node::{ConnId, ControlNode, Input, NodeConfig, Output};

mod conn;

/// Unwritten bytes of one agent connection past which route pushes to it are deferred
/// (kept as changed keys in the core, [`Input::Backlog`]).  The bytes counted are mostly
/// chunks shared with other agents, so this bounds how far one agent may lag, not a copy.
pub const BACKLOG_HIGH: usize = 8 << 20;
/// Unwritten bytes below which a deferred connection gets its routes again.
pub const BACKLOG_LOW: usize = 2 << 20;
/// Bytes read from one agent and not yet taken by the core past which its reader waits:
/// the socket, not our heap, holds what a fast sender sends (an endless stanza used to be
/// read at line rate into the core's queue: ~900 MiB in 2.5 s, and the session was not
/// closed at the parser's 4 MiB stanza cap until the core caught up).
pub(crate) const RX_HIGH: usize = 1 << 20;
/// At most this many chunks per vectored write (IOV_MAX is 1024 on Linux).
pub(crate) const MAX_IOV: usize = 512;
/// At most this many bytes per write before the writer yields to other tasks: a loopback
/// socket takes megabytes per write, and a thousand writers each filling one per poll
/// would starve the readers (whose arrival stamps feed the hold timers) for seconds.
pub(crate) const WRITE_SLICE: usize = 256 << 10;

/// Shell errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The core task is gone.
    #[error("control node core stopped")]
    CoreGone,
}

/// Settings of a running control node.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// Config API base URL (empty: no config feed, e.g. benchmarks).
    pub api: String,
    /// XMPP listen address.
    pub xmpp_listen: SocketAddr,
    /// Introspect listen address.
    pub introspect: SocketAddr,
    /// Address registered in this node's bgp-router object (`None`: do not register).
    pub bgp_address: Option<String>,
    /// BGP port registered beside that address (the port of `--bgp-listen`; TF: 179).
    pub bgp_port: u16,
    /// Core settings.
    pub node: NodeConfig,
    /// XMPP over TLS (TF `xmpp_auth_enable`): every agent must STARTTLS right after its
    /// stream header ([`crate::tls::server_config`]); `None`: plain XMPP, as before.
    pub xmpp_tls: Option<Arc<rustls::ServerConfig>>,
}

type Job = Box<dyn FnOnce(&mut ControlNode) + Send>;

/// Unwritten output of one connection, shared by the core thread and the writer task.
#[derive(Default)]
pub(crate) struct Backlog {
    /// Bytes handed to the writer and not yet written.
    pub(crate) queued: AtomicUsize,
    /// The core was told the connection is past [`BACKLOG_HIGH`].
    pub(crate) blocked: AtomicBool,
    /// [`Output::StartTls`] was issued: bytes read from now on are TLS records, not input
    /// for the core (set by the core thread before the writer can write `<proceed/>`).
    pub(crate) tls_switch: AtomicBool,
    /// Bytes the reader handed to the core that the core has not taken yet ([`RX_HIGH`]).
    pub(crate) rx_queued: AtomicUsize,
    /// Signalled by the core each time it takes a reader's bytes.
    pub(crate) rx_taken: tokio::sync::Notify,
}

/// The core's end of one connection's writer.
struct Writer {
    tx: mpsc::UnboundedSender<Output>,
    backlog: Arc<Backlog>,
}

enum Msg {
    /// An input and when it happened (stamped at the sender, so a backlog in the core does
    /// not age it: hold timers measure the peer, not our queue).
    Input(Input, Instant),
    /// Bytes read from an agent ([`Input::Bytes`]), counted in its reader's backlog until
    /// the core has taken them.
    Read(Input, Instant, Arc<Backlog>),
    Register(ConnId, Writer),
    With(Job),
}

/// A handle to the running core.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
    bgp_changed: Arc<tokio::sync::Notify>,
}

impl Handle {
    /// Run `f` on the core (then push whatever route changes it made to agents).
    pub async fn with_node<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ControlNode) -> R + Send + 'static,
    ) -> Result<R, ShellError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |n| {
            let _ = tx.send(f(n));
        });
        self.tx
            .send(Msg::With(job))
            .map_err(|_| ShellError::CoreGone)?;
        rx.await.map_err(|_| ShellError::CoreGone)
    }

    /// Notified when changed global-table keys are waiting
    /// ([`ControlNode::take_bgp_changes`], once enabled): the BGP link's wake-up.
    pub fn bgp_changed(&self) -> Arc<tokio::sync::Notify> {
        self.bgp_changed.clone()
    }

    /// Feed one input to the core.
    pub fn input(&self, i: Input) -> Result<(), ShellError> {
        self.tx
            .send(Msg::Input(i, Instant::now()))
            .map_err(|_| ShellError::CoreGone)
    }

    /// Hand bytes read from connection `conn` to the core, counted in `backlog.rx_queued`
    /// until it takes them (the reader waits past [`RX_HIGH`]).
    pub(crate) fn read(
        &self,
        conn: ConnId,
        data: Vec<u8>,
        backlog: &Arc<Backlog>,
    ) -> Result<(), ShellError> {
        backlog.rx_queued.fetch_add(data.len(), Ordering::AcqRel);
        self.tx
            .send(Msg::Read(
                Input::Bytes { conn, data },
                Instant::now(),
                backlog.clone(),
            ))
            .map_err(|_| ShellError::CoreGone)
    }
}

/// Bound listeners, so callers (tests) can learn the ports before running.
pub struct Listeners {
    /// XMPP.
    pub xmpp: TcpListener,
    /// Introspect HTTP.
    pub introspect: TcpListener,
}

impl Listeners {
    /// Bind both.
    pub async fn bind(cfg: &ShellConfig) -> Result<Self, ShellError> {
        let b = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ShellError::Bind { addr, source })
        };
        Ok(Listeners {
            xmpp: b(cfg.xmpp_listen).await?,
            introspect: b(cfg.introspect).await?,
        })
    }
}

/// Start the core and every task; returns a handle.  Tasks stop when `stop` resolves.
pub fn start(
    cfg: ShellConfig,
    l: Listeners,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Handle {
    let (tx, rx) = mpsc::unbounded_channel();
    let bgp_changed = Arc::new(tokio::sync::Notify::new());
    let handle = Handle {
        tx,
        bgp_changed: bgp_changed.clone(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut r = stop_rx.clone();
        async move {
            let _ = r.wait_for(|s| *s).await;
        }
    };
    // The core is CPU-bound and synchronous: its own thread, so a long flush never stalls
    // the tokio workers that read sockets (and stamp inputs for the hold timers).
    let mut node = ControlNode::new(cfg.node.clone());
    node.set_xmpp_tls(cfg.xmpp_tls.is_some());
    let spawned = std::thread::Builder::new()
        .name("control-core".into())
        .spawn(move || core_task(node, rx, bgp_changed));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the control node core thread");
    }
    let h = handle.clone();
    let st = stopped();
    tokio::spawn(async move {
        tokio::select! {
            () = st => {}
            () = ticker(h) => {}
        }
    });
    let h = handle.clone();
    let st = stopped();
    let tls = cfg.xmpp_tls.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = st => {}
            () = accept_loop(l.xmpp, h, tls) => {}
        }
    });
    let h = handle.clone();
    let st = stopped();
    let c = cfg.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = st => {}
            () = follow(c, h) => {}
        }
    });
    let app = introspect_router(handle.clone());
    let st = stopped();
    tokio::spawn(async move {
        let _ = axum::serve(l.introspect, app)
            .with_graceful_shutdown(st)
            .await;
    });
    handle
}

fn core_task(
    mut node: ControlNode,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    bgp_changed: Arc<tokio::sync::Notify>,
) {
    let t0 = Instant::now();
    let mut writers: HashMap<ConnId, Writer> = HashMap::new();
    while let Some(first) = rx.blocking_recv() {
        // handle a burst of queued inputs, then flush once
        let mut next = Some(first);
        let mut n = 0;
        while let Some(m) = next.take() {
            match m {
                Msg::Register(c, w) => {
                    writers.insert(c, w);
                }
                Msg::Input(i, at) => {
                    // The reader is done: drop the writer's sender too, so the writer
                    // ends and the socket is released (the core removes the agent without
                    // a Close; each agent that went away used to leave its socket in
                    // CLOSE-WAIT and its writer task waiting forever).
                    if let Input::Disconnected { conn } = &i {
                        writers.remove(conn);
                    }
                    node.handle(at.saturating_duration_since(t0), i)
                }
                Msg::Read(i, at, backlog) => {
                    let n = match &i {
                        Input::Bytes { data, .. } => data.len(),
                        _ => 0,
                    };
                    node.handle(at.saturating_duration_since(t0), i);
                    backlog.rx_queued.fetch_sub(n, Ordering::AcqRel);
                    backlog.rx_taken.notify_one();
                }
                Msg::With(job) => job(&mut node),
            }
            n += 1;
            if n < 1024 {
                next = rx.try_recv().ok();
            }
        }
        let outs = node.flush();
        if node.has_bgp_changes() {
            bgp_changed.notify_one();
        }
        // STARTTLS flags first: the writer may write <proceed/> (queued just before) as
        // soon as it gets it, and the agent's TLS records follow at once
        for o in &outs {
            if let Output::StartTls { conn } = o {
                if let Some(w) = writers.get(conn) {
                    w.backlog.tls_switch.store(true, Ordering::SeqCst);
                }
            }
        }
        let mut blocked = Vec::new();
        for o in outs {
            let c = match &o {
                Output::Send { conn, .. } | Output::Close { conn } | Output::StartTls { conn } => {
                    *conn
                }
            };
            let Some(w) = writers.get(&c) else { continue };
            match &o {
                Output::Send { data, .. } => {
                    let n: usize = data.iter().map(|d| d.len()).sum();
                    let q = w.backlog.queued.fetch_add(n, Ordering::AcqRel) + n;
                    let _ = w.tx.send(o);
                    if q > BACKLOG_HIGH && !w.backlog.blocked.swap(true, Ordering::AcqRel) {
                        // the writer may have drained meanwhile: whoever clears the flag
                        // first owns the transition (here: it is as if never blocked)
                        let drained = w.backlog.queued.load(Ordering::Acquire) < BACKLOG_LOW
                            && w.backlog
                                .blocked
                                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                                .is_ok();
                        if !drained {
                            blocked.push(c);
                        }
                    }
                }
                Output::Close { .. } => {
                    let _ = w.tx.send(o);
                    writers.remove(&c);
                }
                // (flag set above) the writer hands its half back after <proceed/>
                Output::StartTls { .. } => {
                    let _ = w.tx.send(o);
                }
            }
        }
        for conn in blocked {
            node.handle(
                Instant::now().saturating_duration_since(t0),
                Input::Backlog {
                    conn,
                    blocked: true,
                },
            );
        }
    }
}

async fn ticker(h: Handle) {
    let mut iv = tokio::time::interval(Duration::from_millis(100));
    loop {
        iv.tick().await;
        if h.input(Input::Tick).is_err() {
            return;
        }
    }
}

async fn accept_loop(l: TcpListener, h: Handle, tls: Option<Arc<rustls::ServerConfig>>) {
    let mut next: ConnId = 1;
    loop {
        let Ok((sock, remote)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        let conn = next;
        next += 1;
        let (wtx, wrx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        let w = Writer {
            tx: wtx,
            backlog: backlog.clone(),
        };
        if h.tx.send(Msg::Register(conn, w)).is_err()
            || h.input(Input::Accepted {
                conn,
                remote: remote.ip().to_string(),
            })
            .is_err()
        {
            return;
        }
        tokio::spawn(conn::connection(
            sock,
            conn,
            h.clone(),
            wrx,
            backlog,
            tls.clone(),
        ));
    }
}

/// Follow `GET /watch?since=R` forever, resuming after the last revision applied.
async fn follow(cfg: ShellConfig, h: Handle) {
    if cfg.api.is_empty() {
        let _ = h.input(Input::ConfigSynced { revision: 0 });
        return futures::future::pending().await;
    }
    let client = reqwest::Client::new();
    let api = cfg.api.trim_end_matches('/').to_string();
    let mut last = 0u64;
    let mut registered = cfg.bgp_address.is_none();
    // The global ASN last written into this node's bgp-router (not written twice).
    let mut own_asn_put: Option<u32> = None;
    // A global-system-config or bgp-router event came since the last check (and once at
    // the start: the ASN may have changed while this node was down).
    let mut asn_check = true;
    loop {
        let resp = match client.get(format!("{api}/watch?since={last}")).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(status = %r.status(), since = last, "control: change feed refused; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "control: cannot reach {api}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let head: u64 = resp
            .headers()
            .get("X-Filament-Revision")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        tracing::info!(since = last, head, "control node following {api}");
        let mut synced = false;
        let mut body = resp.bytes_stream();
        let mut lines = FeedLines::default();
        loop {
            if !synced && last >= head {
                synced = true;
                let _ = h.input(Input::ConfigSynced { revision: last });
                let _ = h.input(Input::Tick);
                if !registered {
                    registered = register(&client, &api, &cfg, &h).await;
                }
                if asn_check {
                    asn_check = false;
                    own_asn_put = follow_global_asn(&client, &api, &cfg, &h, own_asn_put).await;
                }
            }
            let Some(Ok(chunk)) = body.next().await else {
                break;
            };
            lines.push(&chunk);
            while let Some(ev) = lines.next_event() {
                asn_check |= ev
                    .object
                    .as_ref()
                    .is_some_and(|o| o.ty == "global-system-config" || o.ty == "bgp-router");
                let _ = h.input(Input::Config {
                    uuid: ev.uuid,
                    object: ev.object.map(Box::new),
                });
                last = ev.revision;
            }
            let _ = h.input(Input::Tick);
            // (a round trip to the core: only when the ASN or a bgp-router may have moved)
            if synced && asn_check {
                asn_check = false;
                own_asn_put = follow_global_asn(&client, &api, &cfg, &h, own_asn_put).await;
            }
        }
        tracing::warn!("control: change feed closed; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Create this node's bgp-router (router_type control-node, under ip-fabric's
/// `__default__`) unless a bgp-router with its name exists, as TF's provisioning does.
async fn register(client: &reqwest::Client, api: &str, cfg: &ShellConfig, h: &Handle) -> bool {
    let name = cfg.node.name.clone();
    let Some(address) = cfg.bgp_address.clone() else {
        return true;
    };
    let fq: Vec<String> = [
        "default-domain",
        "default-project",
        "ip-fabric",
        "__default__",
        name.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let probe = fq.clone();
    let (exists, asn) = match h
        .with_node(move |n| {
            (
                n.graph().lookup("bgp-router", &probe).is_some(),
                n.graph().asn(),
            )
        })
        .await
    {
        Ok(x) => x,
        Err(_) => return false,
    };
    if exists {
        return true;
    }
    let body = json!({"bgp-router": {
        "fq_name": fq, "parent_type": "routing-instance",
        "bgp_router_parameters": {
            "router_type": "control-node", "vendor": "contrail", "address": address, "identifier": address,
            "autonomous_system": asn, "port": cfg.bgp_port, "hold_time": 90,
            "address_families": {"family": ["route-target", "inet-vpn", "e-vpn", "erm-vpn", "inet6-vpn"]},
        }
    }});
    match client
        .post(format!("{api}/bgp-routers"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => {
            tracing::info!(name, address, asn, "control node registered its bgp-router");
            true
        }
        Ok(r) => {
            tracing::warn!(status = %r.status(), "control node: bgp-router registration refused");
            r.status().as_u16() == 409
        }
        Err(e) => {
            tracing::warn!(error = %e, "control node: bgp-router registration failed");
            false
        }
    }
}

/// Keep this node's bgp-router in the global ASN, as TF's schema transformer does for
/// `contrail` routers (`BgpRouterST.update_global_asn`): when global-system-config's
/// `autonomous_system` changes, the router's `bgp_router_parameters.autonomous_system`
/// is rewritten (the BGP link already speaks in the global AS, [`follows_global_asn`]).
/// `put` is the ASN last written, returned updated: a refused write is not repeated
/// until the global ASN changes again.
async fn follow_global_asn(
    client: &reqwest::Client,
    api: &str,
    cfg: &ShellConfig,
    h: &Handle,
    put: Option<u32>,
) -> Option<u32> {
    let mut fq: Vec<String> = [
        "default-domain",
        "default-project",
        "ip-fabric",
        "__default__",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fq.push(cfg.node.name.clone());
    let stale = h
        .with_node(move |n| {
            let g = n.graph();
            let me = g.lookup("bgp-router", &fq)?;
            let params = me.props.get("bgp_router_parameters")?.as_object()?;
            let asn = g.asn();
            let stored = params.get("autonomous_system").and_then(Value::as_u64);
            (follows_global_asn(Some(params)) && stored != Some(u64::from(asn)))
                .then(|| (me.uuid.clone(), params.clone(), asn))
        })
        .await
        .ok()
        .flatten();
    let (uuid, mut params, asn) = stale?;
    if put == Some(asn) {
        return put;
    }
    params.insert("autonomous_system".into(), json!(asn));
    let body = json!({"bgp-router": {"bgp_router_parameters": params}});
    match client
        .put(format!("{api}/bgp-router/{uuid}"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => {
            tracing::info!(asn, "control node: its bgp-router follows the global ASN");
        }
        Ok(r) => {
            tracing::warn!(status = %r.status(), asn, "control node: bgp-router ASN update refused");
        }
        Err(e) => {
            tracing::warn!(error = %e, asn, "control node: bgp-router ASN update failed");
        }
    }
    Some(asn)
}

fn introspect_router(h: Handle) -> Router {
    async fn status(State(h): State<Arc<Handle>>) -> Json<Value> {
        Json(h.with_node(|n| n.status()).await.unwrap_or(Value::Null))
    }
    async fn routes(
        State(h): State<Arc<Handle>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        let t = q.get("table").cloned().filter(|s| !s.is_empty());
        let p = q.get("prefix").cloned().filter(|s| !s.is_empty());
        let m = PrefixMatch::from_flags(
            q.get("longer_match").map(String::as_str),
            q.get("shorter_match").map(String::as_str),
        );
        Json(
            h.with_node(move |n| n.routes_matching(t.as_deref(), p.as_deref(), m))
                .await
                .unwrap_or(Value::Null),
        )
    }
    async fn summary(State(h): State<Arc<Handle>>) -> Json<Value> {
        Json(
            h.with_node(|n| n.routes_summary())
                .await
                .unwrap_or(Value::Null),
        )
    }
    async fn neighbors(State(h): State<Arc<Handle>>) -> Json<Value> {
        Json(h.with_node(|n| n.neighbors()).await.unwrap_or(Value::Null))
    }
    /// What this endpoint serves (the control node's introspect, TF's 8083).
    async fn index() -> Json<Value> {
        Json(json!({
            "service": "filament control node introspect",
            "endpoints": {
                "/status": "role, state, sessions, route counts, counters, graceful restart",
                "/routes?table=T&prefix=P": "tables with their routes and paths (TF table names); \
                    with longer_match=1 or shorter_match=1 the routes inside or covering P",
                "/routes/summary": "one row per table: prefixes, paths, primary, secondary",
                "/neighbors": "BGP and XMPP peers: state, flaps, prefixes",
            }
        }))
    }
    Router::new()
        .route("/", get(index))
        .route("/status", get(status))
        .route("/routes", get(routes))
        .route("/routes/summary", get(summary))
        .route("/neighbors", get(neighbors))
        .with_state(Arc::new(h))
}
