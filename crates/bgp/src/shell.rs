//! The tokio shell around [`Core`]: a TCP listener, outgoing connections,
//! one reader and one writer task per session, and the core task that owns
//! the core and is the only one to touch it.
//!
//! ```text
//!  listener ──Accepted──┐
//!  connect task ─Accepted/ConnectFailed─┐
//!  reader (per conn) ──Data/Closed──────┼──> core task (Core) ──Send──> writer (per conn) ──> TCP
//!  Speaker handle ──Advertise/Withdraw/AddPeer/Status──┘      └──Event──> RIB owner's receiver
//! ```
//!
//! TCP MD5 (RFC 2385): a peer's [`PeerConfig::md5_key`] is set on the listener for its
//! address when the peer is added (removed with the peer or the key), on the socket of an
//! outgoing connection before `connect`, and again on every connection when the core
//! takes it (TF's `SetSessionSocketAuthKey`), so a connection made or accepted under an
//! older key carries the current one. The key itself never goes into a log line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use filament_wire_bgp::DecodeCtx;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::core::{Core, Event, Input, Output, PeerStatus};
use crate::fsm::{decode_event, framed_len, ConnEvent, ConnId};
use crate::rib::Source;
use crate::types::{Md5Key, Path, PeerConfig, RouteKey, SpeakerConfig};

/// Errors of the shell.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpeakerError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The core task is gone.
    #[error("the BGP speaker has stopped")]
    Stopped,
}

/// Inputs applied before one flush: enough to pack route bursts into full
/// UPDATEs, few enough that the outputs they produce stay small.
const MAX_BATCH: usize = 64;

/// Paths after which a batch for the RIB owner is sent (it closes at the first event
/// that reaches this: one UPDATE's paths are never split): a full table arrives as a
/// few thousand channel messages, not a million (one wake-up and one permit per batch).
const EVENT_BATCH: usize = 1024;

/// Batches queued for the RIB owner before the core waits for it (16k events).
const EVENT_QUEUE: usize = 16;

/// Reads per connection queued for the core before its reader waits (TCP
/// then slows the peer down instead of the bytes piling up here).
const READS_IN_FLIGHT: usize = 16;

/// Bytes queued for the writers before the core stops turning dirty
/// destinations into UPDATEs (a full table to many peers goes out paced).
const WRITE_QUEUE_BYTES: usize = 8 << 20;

/// How long an outgoing TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Cmd {
    Input(Input),
    /// What a connection's reader read; the permit paces it.
    Read {
        conn: ConnId,
        data: ReadData,
        permit: OwnedSemaphorePermit,
    },
    Accepted {
        stream: TcpStream,
        outgoing: bool,
    },
    Status(oneshot::Sender<Vec<PeerStatus>>),
    Rib(oneshot::Sender<Vec<(Path, Option<IpAddr>)>>),
    Shutdown,
}

/// Whole BGP messages a connection's reader read: as bytes until the session is
/// Established, then decoded by the reader itself with the session's settings (the
/// decode of a full table then runs beside the core's RIB work, on another thread).
enum ReadData {
    Raw(Vec<u8>),
    Decoded(Vec<ConnEvent>),
}

/// A handle to a running speaker. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Speaker {
    tx: mpsc::UnboundedSender<Cmd>,
    local_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

impl Speaker {
    /// Start a speaker; listen on `listen` if given (port 0 picks one; see
    /// [`Speaker::local_addr`]). Events for the RIB owner arrive on the
    /// returned receiver in batches, in order (about 1024 paths each, one UPDATE's never
    /// split; runs of paths learned with one attribute set arrive as
    /// [`Event::LearnedMany`]).
    pub async fn start(
        cfg: SpeakerConfig,
        listen: Option<SocketAddr>,
    ) -> Result<(Speaker, mpsc::Receiver<Vec<Event>>), SpeakerError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Bounded: a RIB owner slower than the peers slows the core down
        // (and TCP slows the peers) instead of queueing every path.
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let mut local_addr = None;
        let mut acceptor = None;
        let mut listener = None;
        if let Some(addr) = listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| SpeakerError::Listen { addr, source })?;
            local_addr = l.local_addr().ok();
            // Shared with the core task, which sets the peers' MD5 keys on it.
            let l = Arc::new(l);
            listener = Some(l.clone());
            let tx = tx.clone();
            acceptor = Some(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((stream, _)) => {
                            if tx
                                .send(Cmd::Accepted {
                                    stream,
                                    outgoing: false,
                                })
                                .is_err()
                            {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "BGP accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }));
        }
        let md5 = Md5Keys {
            listener,
            keys: HashMap::new(),
        };
        tokio::spawn(core_task(
            Core::new(cfg),
            tx.clone(),
            rx,
            ev_tx,
            acceptor,
            md5,
        ));
        Ok((Speaker { tx, local_addr }, ev_rx))
    }

    /// The listener's address, if listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    fn input(&self, i: Input) -> Result<(), SpeakerError> {
        self.tx
            .send(Cmd::Input(i))
            .map_err(|_| SpeakerError::Stopped)
    }

    /// Configure (or reconfigure) a neighbour.
    pub fn add_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        self.input(Input::AddPeer(cfg))
    }

    /// Remove a neighbour.
    pub fn remove_peer(&self, addr: IpAddr) -> Result<(), SpeakerError> {
        self.input(Input::RemovePeer(addr))
    }

    /// Originate (or replace) a path.
    pub fn advertise(&self, path: Path) -> Result<(), SpeakerError> {
        self.input(Input::Advertise(path))
    }

    /// Withdraw the path originated for `key`.
    pub fn withdraw(&self, key: RouteKey) -> Result<(), SpeakerError> {
        self.input(Input::Withdraw(key))
    }

    /// Every neighbour's status.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Status(tx))
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    /// Every best path in the Loc-RIB with the peer it came from (`None`
    /// for the owner's own).
    pub async fn best_paths(&self) -> Result<Vec<(Path, Option<IpAddr>)>, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Rib(tx))
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    /// Change the speaker's own AS, identifier, cluster id or timers on the
    /// running speaker: the sessions they affect are reset with a Cease
    /// (Other Configuration Change) and come back with the new settings.
    pub fn reconfigure(&self, cfg: SpeakerConfig) -> Result<(), SpeakerError> {
        self.input(Input::Reconfigure(cfg))
    }

    /// Stop the speaker: connections are closed and the listener is released
    /// (its address can be bound again once the core task has ended).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
    }
}

struct ConnIo {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
    /// The session's decoder settings once Established (set once: they do not change).
    ctx: Arc<OnceLock<DecodeCtx>>,
}

/// The peers' TCP MD5 keys (RFC 2385) and the listener they are set on.
struct Md5Keys {
    listener: Option<Arc<TcpListener>>,
    keys: HashMap<IpAddr, Md5Key>,
}

impl Md5Keys {
    /// Follow a configuration input: a peer added with a new key, another key or none,
    /// or removed, has the listener's key for its address set or removed.
    fn follow(&mut self, input: &Input) {
        let (addr, key) = match input {
            Input::AddPeer(cfg) => (cfg.address, cfg.md5_key.clone()),
            Input::RemovePeer(addr) => (*addr, None),
            _ => return,
        };
        if self.keys.get(&addr) == key.as_ref() {
            return;
        }
        match &key {
            Some(k) => self.keys.insert(addr, k.clone()),
            None => self.keys.remove(&addr),
        };
        let Some(l) = &self.listener else { return };
        let peer = SocketAddr::new(addr, 0);
        match filament_sockopt::set_tcp_md5sig(l.as_ref(), peer, key.as_ref().map(Md5Key::as_bytes))
        {
            Ok(()) => tracing::info!(%addr, md5 = key.is_some(), "BGP listener MD5 key updated"),
            // Connections are keyed again when taken (see `Cmd::Accepted`), so a peer
            // is never brought up without its key; incoming ones may fail meanwhile.
            Err(e) => tracing::warn!(%addr, error = %e, "cannot set the BGP listener's MD5 key"),
        }
    }

    /// Give a connection the current key of its peer (or none); false if that failed.
    fn apply(&self, stream: &TcpStream, remote: SocketAddr) -> bool {
        match self.keys.get(&remote.ip()) {
            Some(k) => match filament_sockopt::set_tcp_md5sig(stream, remote, Some(k.as_bytes())) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(peer = %remote.ip(), error = %e,
                        "cannot set the MD5 key on a BGP connection: closed");
                    false
                }
            },
            // No key (any inherited one is dropped): best effort, a kernel without
            // TCP_MD5SIG has none to drop.
            None => {
                let _ = filament_sockopt::set_tcp_md5sig(stream, remote, None);
                true
            }
        }
    }
}

async fn core_task(
    mut core: Core,
    tx: mpsc::UnboundedSender<Cmd>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::Sender<Vec<Event>>,
    acceptor: Option<JoinHandle<()>>,
    mut md5: Md5Keys,
) {
    let mut out = Outs {
        batch: Vec::new(),
        in_batch: 0,
        conns: HashMap::new(),
        queued: Arc::new(AtomicUsize::new(0)),
        tx: tx.clone(),
    };
    let mut next_id: ConnId = 1;
    let drained = Arc::new(Notify::new());
    loop {
        let more = core.pending();
        let room = out.queued.load(Ordering::Relaxed) < WRITE_QUEUE_BYTES;
        let deadline = core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = rx.recv() => {
                let now = Instant::now();
                let Some(mut cmd) = cmd else { break };
                // Batch what is already queued (route bursts, several reads)
                // so one flush packs many routes per UPDATE.
                let mut batch = 0;
                loop {
                    match cmd {
                        Cmd::Input(i) => {
                            md5.follow(&i);
                            core.apply(now, i);
                        }
                        Cmd::Read { conn, data, permit } => {
                            out.read(&mut core, now, conn, data);
                            drop(permit);
                            // The paths of this read go to the RIB owner now, not after
                            // the whole batch: it works on them while the core decodes
                            // the next read (a batch of 64 reads is ~250k routes).
                            out.drain(&mut core, &md5, &events).await;
                        }
                        _ => break,
                    }
                    batch += 1;
                    match rx.try_recv() {
                        Ok(next) if batch < MAX_BATCH => cmd = next,
                        Ok(next) => {
                            cmd = next;
                            break;
                        }
                        Err(_) => {
                            cmd = Cmd::Input(Input::Tick);
                            break;
                        }
                    }
                }
                core.flush();
                match cmd {
                    Cmd::Shutdown => break,
                    Cmd::Input(i) => {
                        md5.follow(&i);
                        core.handle(now, i);
                    }
                    Cmd::Read { conn, data, permit } => {
                        out.read(&mut core, now, conn, data);
                        core.flush();
                        drop(permit);
                    }
                    Cmd::Status(reply) => {
                        let _ = reply.send(core.peer_status(now));
                    }
                    Cmd::Rib(reply) => {
                        let v = core
                            .rib()
                            .best_paths()
                            .map(|c| {
                                let src = match c.src {
                                    Source::Local => None,
                                    Source::Peer(a) => Some(a),
                                };
                                (c.path.clone(), src)
                            })
                            .collect();
                        let _ = reply.send(v);
                    }
                    Cmd::Accepted { stream, outgoing } => {
                        let (Ok(remote), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
                            continue;
                        };
                        if !md5.apply(&stream, remote) {
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        let id = next_id;
                        next_id += 1;
                        out.conns.insert(
                            id,
                            spawn_conn(id, stream, tx.clone(), out.queued.clone(), drained.clone()),
                        );
                        core.handle(now, Input::Connected {
                            conn: id,
                            remote: remote.ip(),
                            local: local.ip(),
                            outgoing,
                        });
                    }
                }
            }
            () = sleep => core.handle(Instant::now(), Input::Tick),
            // More of a full table to send, and the writers keep up.
            () = std::future::ready(()), if more && room => core.flush(),
            // The writers are behind: wait until they drained some.
            () = drained.notified(), if more && !room => {}
        }
        out.drain(&mut core, &md5, &events).await;
        // What this round produced goes out before the core waits again.
        out.send_events(&events).await;
    }
    for (_, c) in out.conns {
        c.reader.abort();
    }
    // The accept task holds the listening socket: end it so the address is free.
    if let Some(a) = acceptor {
        a.abort();
    }
}

/// What the core task does with the core's outputs, and the state that needs.
struct Outs {
    /// Events for the RIB owner not sent yet, and how many the core emitted into them (a
    /// `LearnedMany` counts each of its routes).
    batch: Vec<Event>,
    in_batch: usize,
    conns: HashMap<ConnId, ConnIo>,
    /// Bytes queued for the writers.
    queued: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Cmd>,
}

impl Outs {
    /// Give the core what a connection's reader read; once the session is Established,
    /// hand the reader its decoder settings so it decodes what follows itself.
    fn read(&mut self, core: &mut Core, now: Instant, conn: ConnId, data: ReadData) {
        match data {
            ReadData::Raw(bytes) => core.apply(now, Input::Data { conn, bytes }),
            ReadData::Decoded(events) => core.apply_decoded(now, conn, events),
        }
        if let Some(io) = self.conns.get(&conn) {
            if io.ctx.get().is_none() {
                if let Some(c) = core.established_ctx(conn) {
                    let _ = io.ctx.set(c);
                }
            }
        }
    }

    /// Carry out every output the core has queued.
    async fn drain(&mut self, core: &mut Core, md5: &Md5Keys, events: &mpsc::Sender<Vec<Event>>) {
        while let Some(o) = core.poll_output() {
            match o {
                Output::Send { conn, bytes } => {
                    if let Some(c) = self.conns.get(&conn) {
                        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
                        let n = bytes.len();
                        if c.writer.send(bytes).is_err() {
                            self.queued.fetch_sub(n, Ordering::Relaxed);
                        }
                    }
                }
                Output::Close { conn } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        // The writer drains what is queued (a NOTIFICATION),
                        // then drops its half; the reader stops now.
                        c.reader.abort();
                    }
                }
                Output::Connect { peer, addr, local } => {
                    let tx = self.tx.clone();
                    let key = md5.keys.get(&peer).cloned();
                    tokio::spawn(async move {
                        match connect(addr, local, key).await {
                            Ok(stream) => {
                                let _ = tx.send(Cmd::Accepted {
                                    stream,
                                    outgoing: true,
                                });
                            }
                            Err(e) => {
                                tracing::debug!(%addr, error = %e, "BGP connect failed");
                                let _ = tx.send(Cmd::Input(Input::ConnectFailed { peer }));
                            }
                        }
                    });
                }
                Output::Event(e) => {
                    self.in_batch += push_event(&mut self.batch, e);
                    if self.in_batch >= EVENT_BATCH {
                        self.send_events(events).await;
                    }
                }
            }
        }
    }

    /// Hand the RIB owner the events gathered so far (waits while its queue is full).
    async fn send_events(&mut self, events: &mpsc::Sender<Vec<Event>>) {
        if !self.batch.is_empty() {
            self.in_batch = 0;
            let _ = events.send(std::mem::take(&mut self.batch)).await;
        }
    }
}

/// Queue an event for the RIB owner, folding an [`Event::LearnedMany`] into the previous
/// one when it is from the same peer with the same attributes (the core emits one per
/// UPDATE; a full table sends many UPDATEs with one attribute set). Returns the number of
/// paths the event carried (1 for any other event).
fn push_event(batch: &mut Vec<Event>, e: Event) -> usize {
    match (batch.last_mut(), e) {
        (
            Some(Event::LearnedMany {
                peer,
                attrs,
                routes,
            }),
            Event::LearnedMany {
                peer: p,
                attrs: a,
                routes: mut more,
            },
        ) if *peer == p && Arc::ptr_eq(attrs, &a) => {
            let n = more.len();
            routes.append(&mut more);
            n
        }
        (_, e) => {
            let n = match &e {
                Event::LearnedMany { routes, .. } => routes.len(),
                _ => 1,
            };
            batch.push(e);
            n
        }
    }
}

/// How a connection's reader hands on what it reads.
enum ReaderMode {
    /// Whole messages as bytes, until the session is Established.
    Framing,
    /// Decoded, with the Established session's settings.
    Decoding(DecodeCtx),
    /// Bytes as read: a header it could not frame went to the core's decoder.
    Raw,
}

/// The connection events of the complete messages at the start of `buf`, in order, and
/// the bytes they used; a message that does not decode is the last (the session closes
/// on it), as with [`crate::fsm::Conn::next_event`].
fn decode_all(buf: &[u8], ctx: &DecodeCtx) -> (Vec<ConnEvent>, usize) {
    let mut out = Vec::new();
    let mut off = 0;
    while let Some((ev, used)) = buf.get(off..).and_then(|b| decode_event(b, ctx)) {
        let bad = matches!(ev, ConnEvent::Bad(_));
        out.push(ev);
        off += used;
        if bad {
            break;
        }
    }
    (out, off)
}

async fn connect(
    addr: SocketAddr,
    local: Option<IpAddr>,
    key: Option<Md5Key>,
) -> std::io::Result<TcpStream> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(k) = key {
        // Before connect: the SYN is signed (RFC 2385).
        filament_sockopt::set_tcp_md5sig(&sock, addr, Some(k.as_bytes())).map_err(|e| {
            // Never connecting unsigned: the peer stays down, and the operator hears why.
            tracing::warn!(peer = %addr.ip(), error = %e, "cannot set the MD5 key to connect to a BGP peer");
            std::io::Error::new(e.kind(), format!("setting the TCP MD5 key: {e}"))
        })?;
    }
    if let Some(l) = local {
        sock.bind(SocketAddr::new(l, 0))?;
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

fn spawn_conn(
    id: ConnId,
    stream: TcpStream,
    tx: mpsc::UnboundedSender<Cmd>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
) -> ConnIo {
    let (mut rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let mut ok = true;
        while let Some(b) = wrx.recv().await {
            ok = ok && wr.write_all(&b).await.is_ok();
            // Bytes of a dead connection count as drained too.
            queued.fetch_sub(b.len(), Ordering::Relaxed);
            drained.notify_one();
        }
        let _ = wr.shutdown().await;
    });
    let reads = Arc::new(Semaphore::new(READS_IN_FLIGHT));
    let ctx: Arc<OnceLock<DecodeCtx>> = Arc::default();
    let settings = ctx.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes read but not yet a whole message (not in `Raw`).
        let mut pending: Vec<u8> = Vec::new();
        let mut mode = ReaderMode::Framing;
        loop {
            let Ok(permit) = reads.clone().acquire_owned().await else {
                break;
            };
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Cmd::Input(Input::Closed { conn: id }));
                    break;
                }
                Ok(n) => n,
            };
            if let (ReaderMode::Framing, Some(c)) = (&mode, settings.get()) {
                mode = ReaderMode::Decoding(*c);
            }
            let data = match mode {
                ReaderMode::Raw => ReadData::Raw(buf[..n].to_vec()),
                ReaderMode::Framing => {
                    pending.extend_from_slice(&buf[..n]);
                    match framed_len(&pending) {
                        Some(0) => continue,
                        Some(whole) => ReadData::Raw(pending.drain(..whole).collect()),
                        // Something the core's decoder must judge (and will close on):
                        // from now on it gets the bytes as they come.
                        None => {
                            mode = ReaderMode::Raw;
                            ReadData::Raw(std::mem::take(&mut pending))
                        }
                    }
                }
                ReaderMode::Decoding(c) => {
                    pending.extend_from_slice(&buf[..n]);
                    let (events, used) = decode_all(&pending, &c);
                    pending.drain(..used);
                    if events.is_empty() {
                        continue;
                    }
                    ReadData::Decoded(events)
                }
            };
            if tx
                .send(Cmd::Read {
                    conn: id,
                    data,
                    permit,
                })
                .is_err()
            {
                break;
            }
        }
    });
    ConnIo {
        writer: wtx,
        reader,
        ctx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LabelStack;

    fn learned(peer: [u8; 4], prefix: &str, attrs: &Arc<crate::types::Attrs>) -> Event {
        Event::LearnedMany {
            peer: IpAddr::from(peer),
            attrs: attrs.clone(),
            routes: vec![(
                RouteKey::Vpn("100:1".parse().unwrap(), prefix.parse().unwrap()),
                LabelStack::from_slice(&[17]),
            )],
        }
    }

    /// Runs of one peer's paths with one attribute set fold into one event, in order;
    /// another peer, another attribute set or any other event starts a new one.
    #[test]
    fn learned_paths_fold_per_peer_and_attribute_set() {
        let a = Arc::new(crate::types::Attrs::default());
        let b = Arc::new(crate::types::Attrs {
            med: Some(5),
            ..Default::default()
        });
        let mut batch = Vec::new();
        for e in [
            learned([1, 1, 1, 1], "10.0.0.1/32", &a),
            learned([1, 1, 1, 1], "10.0.0.2/32", &a),
            learned([1, 1, 1, 1], "10.0.0.3/32", &b),
            learned([2, 2, 2, 2], "10.0.0.4/32", &b),
            Event::EndOfRib {
                peer: IpAddr::from([2, 2, 2, 2]),
                family: crate::types::Family::InetVpn,
            },
            learned([2, 2, 2, 2], "10.0.0.5/32", &b),
        ] {
            push_event(&mut batch, e);
        }
        let shape: Vec<(String, usize)> = batch
            .iter()
            .map(|e| match e {
                Event::LearnedMany {
                    peer,
                    attrs,
                    routes,
                } => (format!("{peer} med {:?}", attrs.med), routes.len()),
                Event::EndOfRib { .. } => ("eor".into(), 0),
                _ => ("other".into(), 0),
            })
            .collect();
        let want = [
            ("1.1.1.1 med None", 2),
            ("1.1.1.1 med Some(5)", 1),
            ("2.2.2.2 med Some(5)", 1),
            ("eor", 0),
            ("2.2.2.2 med Some(5)", 1),
        ];
        assert_eq!(
            shape,
            want.map(|(s, n)| (s.to_string(), n)).to_vec(),
            "folded events"
        );
        let Some(Event::LearnedMany { routes, .. }) = batch.first() else {
            panic!("first event is not folded: {batch:?}");
        };
        let keys: Vec<String> = routes.iter().map(|(k, _)| format!("{k:?}")).collect();
        assert!(
            keys[0].contains("10.0.0.1/32") && keys[1].contains("10.0.0.2/32"),
            "{keys:?}"
        );
    }
}
