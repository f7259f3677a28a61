//! One attached interface as the run loop sees it: an AF_PACKET TPACKET_V3 ring pair
//! ([`crate::ring`]) or an AF_XDP socket ([`crate::xsk`]), behind one receive / transmit API.
//!
//! ```text
//!  IoMode::AfPacket  -> PacketRing (rx ring)                            one epoll fd
//!                       + a transmit-only PacketRing (tx ring), not polled
//!  IoMode::AfXdp     -> XskSocket (XDP program steers packets to it)    epoll fd, sub 0
//!                       fabric only: + PacketRing with an ARP-only filter  epoll fd, sub 1
//!                       (overlay goes to the XDP socket, ARP up the stack; the forwarder
//!                        learns fabric neighbours from the ARP copy)
//! ```
//!
//! AF_PACKET only copies packets: on the fabric, the kernel would also route every overlay
//! packet to the listener sockets and discard it there. A tcx ingress program
//! ([`TcOverlayDrop`]) drops them once the packet socket has its copy (unless disabled).
//!
//! AF_PACKET transmits through a socket of its own, never registered with epoll: the kernel
//! frees each sent skb through `sock_wfree`, which wakes the socket's waiters
//! (`sock_def_write_space`: the wait-queue lock and epoll's callback, per packet) when it has
//! any. The receiving socket has our epoll entry; the transmitting one has no waiter.
//!
//! When AF_XDP cannot be set up (no kernel support, no privilege, the driver refuses), the port
//! falls back to AF_PACKET with a warning naming the error; its dump says which I/O it uses.

use std::os::fd::RawFd;

use filament_dataplane::VifKind;
use serde::{Deserialize, Serialize};

use crate::bpf::{TcOverlayDrop, XdpFilter};
use crate::error::IoError;
use crate::gro::{self, Coalescer, Out};
use crate::ring::{PacketRing, RingCfg, RingStats, RxFrame};
use crate::sys::GsoSender;
use crate::xsk::{self, XskCfg, XskSocket};

/// How the datapath attaches interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoMode {
    /// AF_PACKET TPACKET_V3 receive and PACKET_TX_RING transmit rings.
    #[default]
    AfPacket,
    /// AF_XDP in copy mode, packets steered by an XDP program; AF_PACKET when unavailable.
    AfXdp,
}

impl std::str::FromStr for IoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "af-packet" | "af_packet" => Ok(Self::AfPacket),
            "af-xdp" | "af_xdp" | "xdp" => Ok(Self::AfXdp),
            _ => Err(format!("unknown I/O mode {s:?} (af-packet | af-xdp)")),
        }
    }
}

enum PortIo {
    Packet {
        /// Receives (and is polled); its own TX ring stays unused.
        rx: PacketRing,
        /// Transmits (not polled: no wakeup per sent packet).
        tx: PacketRing,
    },
    Xdp {
        /// Boxed: the socket is much larger than a packet ring.
        xsk: Box<XskSocket>,
        /// Fabric: ARP copies (the XDP program passes ARP to the kernel).
        arp: Option<PacketRing>,
        /// Transmit-only packet ring used instead of the socket's TX ring
        /// (`XskCfg::tx_packet_ring`).
        tx: Option<PacketRing>,
    },
}

/// An attached interface's I/O.
pub(crate) struct Port {
    io: PortIo,
    /// Workload interface: AF_XDP frames get the partial-checksum check.
    workload: bool,
    /// Fabric interface.
    pub(crate) fabric: bool,
    /// AF_PACKET fabric: the tcx program dropping overlay packets after our copy.
    tc_drop: Option<TcOverlayDrop>,
    /// AF_PACKET workload: TCP segments of one burst joined into GSO super-frames.
    gro: Option<Box<Gro>>,
}

/// A workload port's receive offload ([`crate::gro`]).
struct Gro {
    co: Coalescer,
    out: GroOut,
}

/// Where a coalescer's output goes besides the port's queue.
struct GroOut {
    tx: GsoSender,
    /// Super-frames the kernel refused (sent as segments instead).
    refused: u64,
    scratch: Vec<u8>,
}

impl Gro {
    /// Its counters, into a port's stats object.
    fn stats_into(&self, o: &mut serde_json::Map<String, serde_json::Value>) {
        o.insert("gro_frames".into(), self.co.frames.into());
        o.insert("gro_segments".into(), self.co.segments.into());
        o.insert("gro_refused".into(), self.out.refused.into());
    }

    /// The offload for `ifname`, or `None` (with a warning) when its socket cannot be had.
    fn open(ifname: &str) -> Option<Box<Gro>> {
        let tx = crate::sys::if_index(ifname).and_then(GsoSender::open);
        match tx {
            Ok(tx) => Some(Box::new(Gro {
                co: Coalescer::new(),
                out: GroOut {
                    tx,
                    refused: 0,
                    scratch: Vec::new(),
                },
            })),
            Err(e) => {
                tracing::warn!(ifname, error = %e, "no receive offload toward this workload");
                None
            }
        }
    }
}

/// The transmit queue under a port's offload.
trait TxQueue {
    fn push(&mut self, frame: &[u8]) -> bool;
    fn kick(&mut self);
}

impl TxQueue for PacketRing {
    fn push(&mut self, frame: &[u8]) -> bool {
        self.tx_push(frame)
    }
    fn kick(&mut self) {
        self.tx_flush()
    }
}

impl TxQueue for XskSocket {
    fn push(&mut self, frame: &[u8]) -> bool {
        self.tx_push(frame)
    }
    fn kick(&mut self) {
        self.tx_flush()
    }
}

impl Port {
    /// Open `ifname` with `mode`, falling back to AF_PACKET when AF_XDP fails. A fabric's
    /// XDP / tcx filters select overlay packets (and, XDP, outer fragments) to `fabric_ip`.
    #[allow(clippy::too_many_arguments)] // the attach request's settings, one per knob
    pub(crate) fn open(
        ifname: &str,
        kind: VifKind,
        mode: IoMode,
        ring: RingCfg,
        xsk: XskCfg,
        fabric_tc_drop: bool,
        gro: bool,
        fabric_ip: Option<std::net::Ipv4Addr>,
    ) -> Result<Self, IoError> {
        let workload = kind == VifKind::Workload;
        if mode == IoMode::AfXdp {
            let filter = if kind == VifKind::Fabric {
                XdpFilter::fabric(fabric_ip)
            } else {
                XdpFilter::All
            };
            let opened = XskSocket::open(ifname, filter, xsk).and_then(|s| {
                let arp = if kind == VifKind::Fabric {
                    let cfg = RingCfg {
                        rx_block_size: 1 << 16,
                        rx_block_nr: 4,
                        tx_frame_nr: 16,
                        vnet_hdr: false,
                        arp_only: true,
                        ..ring
                    };
                    Some(PacketRing::open(ifname, cfg)?)
                } else {
                    None
                };
                let tx = if xsk.tx_packet_ring {
                    Some(PacketRing::open(ifname, tx_only(ring))?)
                } else {
                    None
                };
                Ok((s, arp, tx))
            });
            match opened {
                Ok((xsk, arp, tx)) => {
                    let gro = if gro && workload {
                        Gro::open(ifname)
                    } else {
                        None
                    };
                    return Ok(Self {
                        io: PortIo::Xdp {
                            xsk: Box::new(xsk),
                            arp,
                            tx,
                        },
                        workload,
                        fabric: kind == VifKind::Fabric,
                        tc_drop: None,
                        gro,
                    });
                }
                Err(e) => tracing::warn!(
                    ifname,
                    error = %e,
                    "AF_XDP unavailable on this interface, falling back to AF_PACKET"
                ),
            }
        }
        let r = PacketRing::open(
            ifname,
            RingCfg {
                tx_frame_nr: 1,
                ..ring
            },
        )?;
        let tx = PacketRing::open(ifname, tx_only(ring))?;
        let tc_drop = if kind == VifKind::Fabric && fabric_tc_drop {
            match TcOverlayDrop::attach(r.ifindex(), fabric_ip) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(ifname, error = %e, "no tcx overlay drop: the kernel also \
                        processes every overlay packet (to the fabric listener sockets)");
                    None
                }
            }
        } else {
            None
        };
        let gro = if gro && workload && !ring.tx_only {
            Gro::open(ifname)
        } else {
            None
        };
        Ok(Self {
            io: PortIo::Packet { rx: r, tx },
            workload,
            fabric: kind == VifKind::Fabric,
            tc_drop,
            gro,
        })
    }

    /// Interface name.
    pub(crate) fn ifname(&self) -> &str {
        match &self.io {
            PortIo::Packet { rx, .. } => rx.ifname(),
            PortIo::Xdp { xsk, .. } => xsk.ifname(),
        }
    }

    /// Descriptors to watch, with their sub-index (0 main, 1 the fabric's ARP ring).
    pub(crate) fn fds(&self) -> Vec<(RawFd, u32)> {
        match &self.io {
            PortIo::Packet { rx, .. } => vec![(rx.raw_fd(), 0)],
            PortIo::Xdp { xsk, arp, .. } => {
                let mut v = vec![(xsk.raw_fd(), 0)];
                if let Some(a) = arp {
                    v.push((a.raw_fd(), 1));
                }
                v
            }
        }
    }

    /// Receive a burst from descriptor `sub`, calling `f` on each frame; returns the number
    /// of frames.
    pub(crate) fn rx_burst(
        &mut self,
        sub: u32,
        blocks: usize,
        mut f: impl FnMut(RxFrame<'_>),
    ) -> usize {
        match (&mut self.io, sub) {
            (PortIo::Packet { rx, .. }, _) => rx.rx_burst(blocks, f),
            (PortIo::Xdp { arp: Some(a), .. }, 1) => a.rx_burst(blocks, f),
            (PortIo::Xdp { xsk, .. }, _) => {
                let workload = self.workload;
                xsk.rx_burst(blocks * 64, |buf, headroom| {
                    let data = buf.get(headroom..).unwrap_or(&[]);
                    let (wire_len, csum_partial) =
                        (data.len() as u32, workload && xsk::l4_csum_partial(data));
                    f(RxFrame {
                        buf,
                        headroom,
                        wire_len,
                        csum_partial,
                        vlan_tci: None,
                        gso_type: 0,
                        gso_size: 0,
                    })
                })
            }
        }
    }

    /// The transmit queue frames for this port go to.
    fn txq(io: &mut PortIo) -> &mut dyn TxQueue {
        match io {
            PortIo::Packet { tx: r, .. } | PortIo::Xdp { tx: Some(r), .. } => r,
            PortIo::Xdp { xsk, .. } => &mut **xsk,
        }
    }

    /// Queue a frame for transmit.
    pub(crate) fn tx_push(&mut self, frame: &[u8]) -> bool {
        let q = Self::txq(&mut self.io);
        match &mut self.gro {
            Some(g) => {
                let mut ok = true;
                let Gro { co, out } = &mut **g;
                co.push(frame, |o| ok &= out.send(q, o));
                ok
            }
            None => q.push(frame),
        }
    }

    /// Send what is queued (one kick).
    pub(crate) fn tx_flush(&mut self) {
        let q = Self::txq(&mut self.io);
        if let Some(g) = &mut self.gro {
            let Gro { co, out } = &mut **g;
            co.flush(|o| {
                out.send(q, o);
            });
        }
        q.kick();
    }

    /// Counters as JSON, with the I/O mode (`"io"`).
    pub(crate) fn stats_json(&mut self) -> serde_json::Value {
        match &mut self.io {
            PortIo::Packet { rx, tx } => {
                let (r, t) = (rx.stats(), tx.stats());
                let st = RingStats {
                    tx_frames: t.tx_frames,
                    tx_ring_full: t.tx_ring_full,
                    tx_too_big: t.tx_too_big,
                    tx_kicks: t.tx_kicks,
                    ..r
                };
                let mut v = serde_json::to_value(st).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("io".into(), "af-packet".into());
                    if self.tc_drop.is_some() {
                        o.insert("tc_overlay_drop".into(), true.into());
                    }
                    if let Some(g) = &self.gro {
                        g.stats_into(o);
                    }
                }
                v
            }
            PortIo::Xdp { xsk, arp, tx } => {
                let mut v = serde_json::to_value(xsk.stats()).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("io".into(), "af-xdp".into());
                    if let Some(g) = &self.gro {
                        g.stats_into(o);
                    }
                    if let Some(t) = tx {
                        // Transmit goes through the packet ring: its counters are the ones.
                        let st = t.stats();
                        o.insert("tx_frames".into(), st.tx_frames.into());
                        o.insert("tx_kicks".into(), st.tx_kicks.into());
                        o.insert("tx_ring_full".into(), st.tx_ring_full.into());
                        o.insert("tx_packet_ring".into(), true.into());
                    }
                    if let Some(a) = arp {
                        o.insert(
                            "arp_ring".into(),
                            serde_json::to_value(a.stats()).unwrap_or_default(),
                        );
                    }
                }
                v
            }
        }
    }
}

impl GroOut {
    /// Transmit one output of a coalescer: a plain frame into `q`; a super-frame, after
    /// `q`'s frames (order kept), through the GSO socket, or cut again into segments when
    /// the kernel refuses it (e.g. its send buffer is full).
    fn send(&mut self, q: &mut dyn TxQueue, o: Out<'_>) -> bool {
        match o {
            Out::Plain(f) => q.push(f),
            Out::Gso(hdr, f, _) => {
                q.kick();
                if self.tx.send(&hdr.to_bytes(), f).is_ok() {
                    return true;
                }
                self.refused += 1;
                let mut ok = true;
                gro::resegment(f, usize::from(hdr.gso_size), &mut self.scratch, |s| {
                    ok &= q.push(s)
                });
                ok
            }
        }
    }
}

/// The geometry of a transmit-only socket on an interface with geometry `ring`: bound to no
/// protocol, without a receive ring (receives nothing), with a virtio_net_hdr per TX slot so
/// frames leave as linear skbs (ring.rs, `VNET_HDR_LINEAR`).
pub(crate) fn tx_only(ring: RingCfg) -> RingCfg {
    RingCfg {
        tx_only: true,
        vnet_hdr: true,
        ..ring
    }
}
