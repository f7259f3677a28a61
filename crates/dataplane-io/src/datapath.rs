//! `Datapath`: the forwarder core driven by one event-driven run-loop thread over the
//! AF_PACKET rings of every attached interface, and `DatapathHandle`, the cloneable async
//! handle the agent (or `filament vrouter run`) programs it through.
//!
//! ```text
//!  DatapathHandle (any task) ──Cmd──> std mpsc ──┐  eventfd doorbell
//!                                               v
//!   run loop thread:  epoll_wait( eventfd, ring fd of each vif )
//!     ├─ eventfd  -> drain commands: attach / detach / apply(Op) / inject / dump / stop
//!     ├─ ring fd  -> rx_burst: InPlace::process on the frame where it lies in the receive
//!     │               slot (headroom in front) -> copied once, into the TX slot of v;
//!     │               frames it declines: copy into a pooled PacketBuf -> Forwarder::process
//!     │               Transmit(v) -> tx ring of v  (one sendto kick per ring per burst)
//!     │               Punt        -> punt channel (tokio mpsc) -> the agent
//!     └─ every AGE_TICK: Forwarder::age_flows(now); core-originated frames (fabric ARP) sent
//! ```
//!
//! The core never sees a socket or a clock: `now` is the time since the loop started. The loop
//! owns the Forwarder outright (no lock on the packet path); reads (`dump`) go through the
//! command channel like writes, so they see a consistent table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use filament_dataplane::inplace::{InPlace, SlotFrame};
use filament_dataplane::{
    DumpKind, Forwarder, ForwarderCfg, MacAddr, Op, PacketBuf, PuntReason, RxMeta, Verdict, Vif,
    VifId, VifKind, VrfId, GATEWAY_MAC,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::IoError;
use crate::gso;
use crate::port::{IoMode, Port};
use crate::ring::{PacketRing, RingCfg};
use crate::sys::{self, Epoll, EventFd, FabricListeners};
use crate::xsk::XskCfg;

mod cfg;
mod rx;
use rx::{dispatch, send_to, Rx};

/// The fabric interface's receive ring has this many times the blocks of a workload's
/// ([`RingCfg::rx_block_nr`]).
pub const FABRIC_RING_FACTOR: u32 = 2;

/// Overlay UDP ports the fabric listeners hold (MPLSoUDP 6635, VXLAN 4789; tf-facts §5.4).
pub const OVERLAY_UDP_PORTS: [u16; 2] = [6635, 4789];
/// How often the loop ages flows when idle.
const AGE_TICK: Duration = Duration::from_millis(500);
/// epoll token of the command doorbell.
const CMD_TOKEN: u64 = u64::MAX;
/// Receive blocks handled per ring per wakeup before looking at the others (fairness).
const BLOCKS_PER_TURN: usize = 8;
/// Room in front of each software GSO segment for in-place processing (the outer headers of
/// the longest tunnel template, 64 bytes, minus the segment's Ethernet header; as the ring's
/// `PACKET_RESERVE`).
const SEGMENT_HEADROOM: usize = 64;
/// Longest busy-poll stretch before the loop looks at its commands again.
const SPIN_MAX: Duration = Duration::from_millis(2);
/// Queue depth of the punt channel; beyond it punts are dropped and counted.
const PUNT_QUEUE: usize = 4096;

/// How to attach an interface (`DatapathHandle::attach`, and the `interfaces` list of a
/// tables file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachCfg {
    /// OS interface name (host end of a workload veth/tap, or the fabric NIC).
    pub ifname: String,
    /// vif index; the next free index when absent.
    #[serde(default)]
    pub id: Option<VifId>,
    /// Workload or fabric.
    pub kind: VifKind,
    /// VRF of a workload interface.
    #[serde(default)]
    pub vrf: Option<VrfId>,
    /// Flow lookup required (POLICY_ENABLED).
    #[serde(default)]
    pub policy: bool,
    /// vif MAC; default: the gateway MAC for workloads, the NIC's MAC for the fabric.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Fabric: our fabric IP (outer source, decap filter). Workload: informational.
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

/// A packet handed to the agent (TF's pkt0 with its `agent_hdr`).
#[derive(Debug, Clone)]
pub struct Punt {
    /// Interface the packet arrived on.
    pub vif: VifId,
    /// Why it was punted.
    pub reason: PuntReason,
    /// Flow key to answer with `Op::AddFlow` (flow misses).
    pub key: Option<filament_dataplane::FlowKey>,
    /// The frame as the pipeline left it.
    pub frame: Vec<u8>,
}

pub use cfg::{DatapathCfg, ShellStats};

/// The loop's per-vif maps, looked up per frame: vif indexes are small integers we assign, so
/// a multiplicative hash of the index replaces SipHash (no untrusted keys here).
type VifMap<V> = HashMap<VifId, V, BuildHasherDefault<VifHasher>>;

/// Hasher for [`VifMap`] keys (a `VifId` hashes as one `u32`).
#[derive(Default)]
struct VifHasher(u64);

impl Hasher for VifHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Commands from handles to a loop.
enum Cmd {
    /// Attach an interface: `owner` opens its receive side (and polls it), the other loops a
    /// transmit-only socket; every loop programs the vif in its forwarder replica.
    Attach(AttachCfg, bool, oneshot::Sender<Result<VifId, IoError>>),
    Detach(VifId, oneshot::Sender<Result<(), IoError>>),
    Apply(Op, oneshot::Sender<Result<(), IoError>>),
    Inject(VifId, Vec<u8>),
    Dump(DumpKind, oneshot::Sender<serde_json::Value>),
    /// A fabric ARP frame another loop received: run it through this replica too, so every
    /// replica learns the fabric neighbours (only the fabric's owner loop receives them).
    Learn(VifId, Vec<u8>),
    Stop,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

/// One loop's command queue and doorbell.
#[derive(Debug, Clone)]
struct LoopTx {
    tx: std_mpsc::Sender<Cmd>,
    bell: Arc<EventFd>,
}

impl LoopTx {
    fn send(&self, c: Cmd) -> Result<(), IoError> {
        self.tx.send(c).map_err(|_| IoError::Stopped)?;
        self.bell.notify();
        Ok(())
    }

    async fn call<T>(&self, c: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, IoError> {
        let (tx, rx) = oneshot::channel();
        self.send(c(tx))?;
        rx.await.map_err(|_| IoError::Stopped)
    }
}

/// A cloneable handle on a running datapath (send + sync; every call is async).
///
/// With several run loops, table operations go to every loop (each owns a forwarder replica),
/// an interface is received by one loop (round robin) and transmitted by all, dumps are merged.
#[derive(Clone, Debug)]
pub struct DatapathHandle {
    loops: Arc<Vec<LoopTx>>,
    /// Serialises attach / detach, so every replica numbers vifs alike.
    attach_lock: Arc<tokio::sync::Mutex<usize>>,
}

impl DatapathHandle {
    fn first(&self) -> Result<&LoopTx, IoError> {
        self.loops.first().ok_or(IoError::Stopped)
    }

    /// Number of run loops.
    pub fn loops(&self) -> usize {
        self.loops.len()
    }

    /// Attach an interface: open its rings, program it as a vif; returns its index.
    pub async fn attach(&self, cfg: AttachCfg) -> Result<VifId, IoError> {
        let mut next = self.attach_lock.lock().await;
        let n = self.loops.len().max(1);
        let owner = *next % n;
        let owner_tx = self.loops.get(owner).ok_or(IoError::Stopped)?;
        let id = owner_tx
            .call(|r| Cmd::Attach(cfg.clone(), true, r))
            .await??;
        *next += 1;
        let cfg = AttachCfg {
            id: Some(id),
            ..cfg
        };
        for (i, l) in self.loops.iter().enumerate() {
            if i == owner {
                continue;
            }
            let r = l.call(|r| Cmd::Attach(cfg.clone(), false, r)).await;
            if let Err(e) | Ok(Err(e)) = r {
                drop(next);
                let _ = self.detach(id).await;
                return Err(e);
            }
        }
        Ok(id)
    }

    /// Detach an interface: close its rings and remove the vif (from every loop).
    pub async fn detach(&self, vif: VifId) -> Result<(), IoError> {
        let _guard = self.attach_lock.lock().await;
        let mut result = Err(IoError::NotAttached { vif: vif.0 });
        for l in self.loops.iter() {
            if let Ok(Ok(())) = l.call(|r| Cmd::Detach(vif, r)).await {
                result = Ok(());
            }
        }
        result
    }

    /// Apply one table operation in every loop (packets released by a flow verdict are sent
    /// at once by the loop that held them).
    pub async fn apply(&self, op: Op) -> Result<(), IoError> {
        let mut result = Ok(());
        for l in self.loops.iter() {
            let r = l.call(|r| Cmd::Apply(op.clone(), r)).await?;
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Send a frame built by the agent (ARP / DHCP reply) out of `vif`.
    pub fn inject(&self, vif: VifId, frame: Vec<u8>) -> Result<(), IoError> {
        self.first()?.send(Cmd::Inject(vif, frame))
    }

    /// A table as JSON (the core's dump, plus ring counters for interfaces and dropstats);
    /// with several loops, counters are summed over the replicas.
    pub async fn dump(&self, kind: DumpKind) -> Result<serde_json::Value, IoError> {
        let mut merged: Option<serde_json::Value> = None;
        for l in self.loops.iter() {
            let v = l.call(|r| Cmd::Dump(kind, r)).await?;
            merged = Some(match merged {
                None => v,
                Some(m) => crate::merge::merge_counts(m, v),
            });
        }
        Ok(merged.unwrap_or_default())
    }
}

/// The running datapath: owns the run-loop threads (stopped and joined on drop).
#[derive(Debug)]
pub struct Datapath {
    handle: DatapathHandle,
    punts: Option<mpsc::Receiver<Punt>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Datapath {
    /// Start the run loops (`cfg.cores`, 0 = one per CPU) with empty forwarders.
    pub fn spawn(cfg: DatapathCfg) -> Result<Self, IoError> {
        let n = match cfg.cores {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (punt_tx, punt_rx) = mpsc::channel(PUNT_QUEUE);
        // The flow, FIB and neighbour tables hash keys that come from the network: with the
        // default (public) seed, anyone could craft colliding keys. A seed of this process's
        // own, shared by its loops (ECMP and entropy ports agree between them).
        let mut fwd_cfg = cfg.forwarder.clone();
        if fwd_cfg.hash_seed == ForwarderCfg::default().hash_seed {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(u64::from(std::process::id()));
            fwd_cfg.hash_seed = h.finish();
        }
        let mut loops = Vec::with_capacity(n);
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            let epoll = Epoll::new()?;
            let bell = Arc::new(EventFd::new()?);
            epoll.add(bell.raw(), CMD_TOKEN)?;
            let (tx, rx) = std_mpsc::channel();
            loops.push(LoopTx {
                tx,
                bell: bell.clone(),
            });
            parts.push((epoll, bell, rx));
        }
        let mut threads = Vec::with_capacity(n);
        for (i, (epoll, bell, rx)) in parts.into_iter().enumerate() {
            let peers = loops
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| l.clone())
                .collect();
            let mut lp = Loop {
                peers,
                // The flow table on huge pages where the kernel agrees (fewer TLB misses per
                // lookup at a million flows, as TF's DPDK vRouter).
                fwd: Forwarder::new_advised(fwd_cfg.clone(), |r| {
                    if cfg.huge_pages {
                        let n = sys::advise_hugepages(r);
                        tracing::debug!(bytes = n, "flow table advised MADV_HUGEPAGE");
                    }
                }),
                ring_cfg: cfg.ring,
                io: cfg.io,
                xsk_cfg: cfg.xsk,
                tc_drop: cfg.fabric_tc_drop,
                gro: cfg.gro,
                listeners_wanted: !cfg.no_fabric_listeners,
                listeners: None,
                ports: VifMap::default(),
                tx_only: VifMap::default(),
                epoll,
                bell,
                cmds: rx,
                punt_tx: punt_tx.clone(),
                pool: Vec::new(),
                out: Vec::new(),
                inplace: cfg.in_place.then(InPlace::new),
                busy_poll: cfg.busy_poll,
                scratch: Vec::new(),
                start: Instant::now(),
                stats: ShellStats::default(),
            };
            let name = if n == 1 {
                "filament-datapath".to_string()
            } else {
                format!("filament-dp{i}")
            };
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || lp.run())
                .map_err(|source| IoError::Sys {
                    call: "spawn(run loop)",
                    source,
                })?;
            threads.push(thread);
        }
        Ok(Self {
            handle: DatapathHandle {
                loops: Arc::new(loops),
                attach_lock: Arc::new(tokio::sync::Mutex::new(0)),
            },
            punts: Some(punt_rx),
            threads,
        })
    }

    /// A handle for programming and inspecting the datapath.
    pub fn handle(&self) -> DatapathHandle {
        self.handle.clone()
    }

    /// The receiver of punted packets (flow miss, ARP, DHCP); once only.
    pub fn take_punts(&mut self) -> Option<mpsc::Receiver<Punt>> {
        self.punts.take()
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        for l in self.handle.loops.iter() {
            let _ = l.send(Cmd::Stop);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The run loop's state (lives on the loop thread only).
struct Loop {
    /// The other loops (fabric ARP frames are copied to them).
    peers: Vec<LoopTx>,
    fwd: Forwarder,
    ring_cfg: RingCfg,
    io: IoMode,
    xsk_cfg: XskCfg,
    tc_drop: bool,
    gro: bool,
    listeners_wanted: bool,
    listeners: Option<FabricListeners>,
    ports: VifMap<Port>,
    /// Transmit-only sockets on the interfaces other loops receive from.
    tx_only: VifMap<PacketRing>,
    epoll: Epoll,
    bell: Arc<EventFd>,
    cmds: std_mpsc::Receiver<Cmd>,
    punt_tx: mpsc::Sender<Punt>,
    /// Reusable packet buffers.
    pool: Vec<PacketBuf>,
    /// Frames to transmit after the current receive burst.
    out: Vec<(VifId, PacketBuf)>,
    /// In-place processing context (None: off).
    inplace: Option<InPlace>,
    busy_poll: Duration,
    /// Scratch space for software segmentation.
    scratch: Vec<u8>,
    start: Instant,
    stats: ShellStats,
}

impl Loop {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn run(&mut self) {
        let mut ready = Vec::with_capacity(32);
        let mut last_age = Duration::ZERO;
        loop {
            if let Err(e) = self.epoll.wait(AGE_TICK.as_millis() as i32, &mut ready) {
                tracing::error!(error = %e, "datapath: epoll failed, stopping");
                return;
            }
            self.stats.wakeups += 1;
            let mut got = 0;
            for &token in &ready {
                if token == CMD_TOKEN {
                    self.bell.drain();
                    if !self.commands() {
                        return;
                    }
                } else {
                    got += self.receive(VifId(token as u32), (token >> 32) as u32);
                }
            }
            if got > 0 && !self.busy_poll.is_zero() {
                self.spin();
            }
            let now = self.now();
            if now.saturating_sub(last_age) >= AGE_TICK {
                last_age = now;
                self.fwd.age_flows(now);
            }
            self.core_frames();
            self.flush();
        }
    }

    /// Busy-poll every receive ring until none has had a frame for `busy_poll`, and at most
    /// [`SPIN_MAX`] in all, so commands (waiting behind the doorbell, still readable for the
    /// next epoll) and flow ageing get their turn under steady traffic.
    fn spin(&mut self) {
        let subs: Vec<(VifId, u32)> = self
            .ports
            .iter()
            .flat_map(|(v, p)| p.fds().into_iter().map(move |(_, s)| (*v, s)))
            .collect();
        let begin = Instant::now();
        let mut idle_since = begin;
        while begin.elapsed() < SPIN_MAX {
            let mut got = 0;
            for &(v, s) in &subs {
                got += self.receive(v, s);
            }
            if got > 0 {
                idle_since = Instant::now();
                self.stats.busy_polls += 1;
            } else if idle_since.elapsed() >= self.busy_poll {
                return;
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Drain the command queue; false on Stop (or when every handle is gone).
    fn commands(&mut self) -> bool {
        loop {
            match self.cmds.try_recv() {
                Ok(Cmd::Attach(cfg, owner, reply)) => {
                    let _ = reply.send(self.attach(cfg, owner));
                }
                Ok(Cmd::Detach(vif, reply)) => {
                    let _ = reply.send(self.detach(vif));
                }
                Ok(Cmd::Apply(op, reply)) => {
                    let _ = reply.send(self.apply(op));
                }
                Ok(Cmd::Inject(vif, frame)) => self.transmit_raw(vif, &frame),
                Ok(Cmd::Learn(vif, frame)) => {
                    let mut buf = self.pool.pop().unwrap_or_default();
                    buf.load(&frame);
                    let now = self.now();
                    // Fabric ARP: the core learns the neighbour and answers Host.
                    let verdict = self.fwd.process(now, vif, &mut buf, RxMeta::default());
                    self.verdict(vif, buf, verdict);
                }
                Ok(Cmd::Dump(kind, reply)) => {
                    let _ = reply.send(self.dump(kind));
                }
                Ok(Cmd::Stop) | Err(std_mpsc::TryRecvError::Disconnected) => return false,
                Err(std_mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn attach(&mut self, cfg: AttachCfg, owner: bool) -> Result<VifId, IoError> {
        if self.ports.values().any(|p| p.ifname() == cfg.ifname)
            || self.tx_only.values().any(|r| r.ifname() == cfg.ifname)
        {
            return Err(IoError::AlreadyAttached { ifname: cfg.ifname });
        }
        let id = cfg.id.unwrap_or_else(|| {
            VifId(
                (0..)
                    .find(|i| {
                        !self.ports.contains_key(&VifId(*i))
                            && !self.tx_only.contains_key(&VifId(*i))
                    })
                    .unwrap_or(0),
            )
        });
        sys::if_index(&cfg.ifname)?; // a clear "no such interface" first
        let mtu = sys::if_mtu(&cfg.ifname)?;
        let mac = match (cfg.mac, cfg.kind) {
            (Some(m), _) => m,
            (None, VifKind::Workload) => GATEWAY_MAC,
            (None, _) => MacAddr(sys::if_mac(&cfg.ifname)?),
        };
        let ring_cfg = RingCfg {
            max_frame: mtu + 18,
            // The fabric carries every workload's traffic: twice the receive blocks, so a
            // forwarder off the CPU for a few ms does not overflow it (at ~3 Gbit/s of
            // TCP the default 4 MiB filled, and each overflow was a retransmission).
            rx_block_nr: match cfg.kind {
                VifKind::Fabric => self.ring_cfg.rx_block_nr.saturating_mul(FABRIC_RING_FACTOR),
                _ => self.ring_cfg.rx_block_nr,
            },
            ..self.ring_cfg
        };
        if !owner {
            let ring = PacketRing::open(&cfg.ifname, crate::port::tx_only(ring_cfg))?;
            self.apply(Op::AddVif(vif_of(&cfg, id, mac, mtu)))?;
            self.tx_only.insert(id, ring);
            return Ok(id);
        }
        let port = Port::open(
            &cfg.ifname,
            cfg.kind,
            self.io,
            ring_cfg,
            self.xsk_cfg,
            self.tc_drop,
            self.gro,
            // The fabric's XDP / tcx filters take overlay packets (and fragments) to this IP.
            match cfg.ip {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            },
        )?;
        self.apply(Op::AddVif(vif_of(&cfg, id, mac, mtu)))?;
        if cfg.kind == VifKind::Fabric && self.listeners_wanted && self.listeners.is_none() {
            match FabricListeners::open(&OVERLAY_UDP_PORTS) {
                Ok(l) => self.listeners = Some(l),
                Err(e) => tracing::warn!(
                    error = %e,
                    "fabric listener sockets not opened: the host may answer overlay packets \
                     with ICMP unreachable"
                ),
            }
        }
        for (fd, sub) in port.fds() {
            self.epoll
                .add(fd, u64::from(id.0) | (u64::from(sub) << 32))?;
        }
        tracing::info!(ifname = %cfg.ifname, vif = id.0, kind = ?cfg.kind, mtu, "attached");
        self.ports.insert(id, port);
        Ok(id)
    }

    fn detach(&mut self, vif: VifId) -> Result<(), IoError> {
        if self.tx_only.remove(&vif).is_some() {
            let _ = self.fwd.apply(Op::DelVif { vif });
            return Ok(());
        }
        let port = self
            .ports
            .remove(&vif)
            .ok_or(IoError::NotAttached { vif: vif.0 })?;
        for (fd, _) in port.fds() {
            self.epoll.delete(fd);
        }
        let _ = self.fwd.apply(Op::DelVif { vif });
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), IoError> {
        let applied = self.fwd.apply(op).map_err(|e| IoError::Op {
            reason: e.to_string(),
        })?;
        for r in applied.released {
            self.verdict(r.vif_in, r.buf, r.verdict);
        }
        Ok(())
    }

    fn dump(&mut self, kind: DumpKind) -> serde_json::Value {
        let mut v = core_dump(&self.fwd, kind);
        match kind {
            DumpKind::Interfaces => {
                // Ring counters beside each vif that has a ring.
                if let Some(list) = v.as_array_mut() {
                    for item in list {
                        let id = item.get("id").and_then(|x| x.as_u64());
                        let ring = id
                            .and_then(|i| u32::try_from(i).ok())
                            .and_then(|i| self.ports.get_mut(&VifId(i)))
                            .map(|p| p.stats_json())
                            .or_else(|| {
                                // Transmit-only socket of a vif another loop receives from:
                                // its counters are summed into the owner's (no "io" here).
                                id.and_then(|i| u32::try_from(i).ok())
                                    .and_then(|i| self.tx_only.get_mut(&VifId(i)))
                                    .map(|r| serde_json::to_value(r.stats()).unwrap_or_default())
                            });
                        if let (Some(obj), Some(r)) = (item.as_object_mut(), ring) {
                            obj.insert("ring".into(), r);
                        }
                    }
                }
            }
            DumpKind::Dropstats => {
                let rings: serde_json::Map<String, serde_json::Value> = self
                    .ports
                    .values_mut()
                    .map(|p| (p.ifname().to_string(), p.stats_json()))
                    .chain(self.tx_only.values_mut().map(|r| {
                        let st = serde_json::to_value(r.stats()).unwrap_or_default();
                        (r.ifname().to_string(), st)
                    }))
                    .collect();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("rings".into(), rings.into());
                    obj.insert(
                        "shell".into(),
                        serde_json::to_value(self.stats).unwrap_or_default(),
                    );
                }
            }
            _ => {}
        }
        v
    }

    /// Receive a burst on `vif`'s descriptor `sub` and run every frame through the pipeline:
    /// in place in the receive slot when the core takes it there (then one copy, into the
    /// output's transmit slot), else copied into a pooled buffer. The receiving port is taken
    /// out of the map meanwhile, so frames go to the other ports' rings as they come (in
    /// order); frames back out of the same port are queued until the burst ends.
    fn receive(&mut self, vif: VifId, sub: u32) -> usize {
        let Some(mut port) = self.ports.remove(&vif) else {
            return 0;
        };
        let mut rx = Rx {
            vif,
            now: self.start.elapsed(),
            share_arp: port.fabric && !self.peers.is_empty(),
            peers: &self.peers,
            fwd: &mut self.fwd,
            pool: &mut self.pool,
            out: &mut self.out,
            punt_tx: &self.punt_tx,
            stats: &mut self.stats,
            ports: &mut self.ports,
            tx_only: &mut self.tx_only,
        };
        let (scratch, inplace) = (&mut self.scratch, &mut self.inplace);
        let n = port.rx_burst(sub, BLOCKS_PER_TURN, |f| {
            let meta = RxMeta {
                csum_partial: f.csum_partial,
                vlan_tci: f.vlan_tci,
            };
            let tcp_gso = matches!(f.gso_type & !gso::GSO_ECN, gso::GSO_TCPV4 | gso::GSO_TCPV6);
            if f.gso_type == gso::GSO_NONE || f.gso_size == 0 {
                let Some(ip) = inplace.as_mut() else {
                    rx.one(f.data(), meta);
                    return;
                };
                let len = f.buf.len() - f.headroom;
                let slot = SlotFrame {
                    mem: f.buf,
                    start: f.headroom,
                    len,
                };
                rx.in_place(ip, slot, meta);
            } else if tcp_gso {
                // Segments leave with partial checksums: the core completes them.
                let seg_meta = RxMeta {
                    csum_partial: true,
                    ..meta
                };
                let mut n = 0;
                let data = f.data();
                // Each segment is cut into `scratch` behind SEGMENT_HEADROOM bytes, where the
                // core can process it in place like a received frame.
                let r = gso::segment_tcp_with_headroom(
                    data,
                    usize::from(f.gso_size),
                    scratch,
                    SEGMENT_HEADROOM,
                    |mem| {
                        n += 1;
                        match inplace.as_mut() {
                            Some(ip) => {
                                let len = mem.len() - SEGMENT_HEADROOM;
                                let slot = SlotFrame {
                                    mem,
                                    start: SEGMENT_HEADROOM,
                                    len,
                                };
                                rx.in_place(ip, slot, seg_meta);
                            }
                            None => rx.one(mem.get(SEGMENT_HEADROOM..).unwrap_or(&[]), seg_meta),
                        }
                    },
                );
                match r {
                    Ok(_) => {
                        rx.stats.gso_frames += 1;
                        rx.stats.gso_segments += n;
                    }
                    Err(_) => {
                        rx.stats.gso_unsupported += 1;
                        rx.one(data, meta);
                    }
                }
            } else {
                rx.stats.gso_unsupported += 1;
                rx.one(f.data(), meta);
            }
        });
        self.ports.insert(vif, port);
        if n > 0 {
            self.flush();
        }
        n
    }

    /// What to do with a packet after the pipeline (also for released held packets).
    fn verdict(&mut self, vif_in: VifId, buf: PacketBuf, verdict: Verdict) {
        dispatch(
            vif_in,
            buf,
            verdict,
            &mut self.pool,
            &mut self.out,
            &self.punt_tx,
            &mut self.stats,
        );
    }

    /// Frames the core originated (ARP requests for fabric neighbours, ...).
    fn core_frames(&mut self) {
        while let Some(tx) = self.fwd.poll_transmit() {
            self.transmit_raw(tx.vif, &tx.frame);
        }
    }

    /// Queue `frame` on `vif`'s port, or on its transmit-only socket when another loop
    /// receives from it.
    fn transmit_raw(&mut self, vif: VifId, frame: &[u8]) {
        send_to(
            &mut self.ports,
            &mut self.tx_only,
            &mut self.stats,
            vif,
            frame,
        );
    }

    /// Move queued output into the TX rings, then kick each ring once.
    fn flush(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        for (vif, buf) in out.drain(..) {
            self.transmit_raw(vif, buf.frame());
            self.pool.push(buf);
        }
        self.out = out;
        for p in self.ports.values_mut() {
            p.tx_flush();
        }
        for r in self.tx_only.values_mut() {
            r.tx_flush();
        }
    }
}

/// The core's vif for an attach request.
fn vif_of(cfg: &AttachCfg, id: VifId, mac: MacAddr, mtu: u32) -> Vif {
    Vif {
        id,
        kind: cfg.kind,
        name: cfg.ifname.clone(),
        mac,
        vrf: cfg.vrf,
        policy: cfg.policy,
        mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
        ip: cfg.ip,
    }
}

/// The core's typed dump of one table, as JSON.
fn core_dump(fwd: &Forwarder, kind: DumpKind) -> serde_json::Value {
    let v = match kind {
        DumpKind::Interfaces => serde_json::to_value(fwd.dump_interfaces()),
        DumpKind::Nexthops => serde_json::to_value(fwd.dump_nexthops()),
        DumpKind::Routes => serde_json::to_value(fwd.dump_routes()),
        DumpKind::Labels => serde_json::to_value(fwd.dump_labels()),
        DumpKind::Flows => serde_json::to_value(fwd.dump_flows()),
        DumpKind::Neighbors => serde_json::to_value(fwd.dump_neighbors()),
        DumpKind::Dropstats => serde_json::to_value(fwd.dropstats()),
    };
    v.unwrap_or_default()
}
