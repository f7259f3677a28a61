//! An AF_PACKET socket bound to one interface with a TPACKET_V3 receive ring and a
//! PACKET_TX_RING transmit ring sharing one `mmap` (Linux `Documentation/networking/packet_mmap.rst`).
//!
//! ```text
//!  mmap:  [ rx block 0 | rx block 1 | ... | rx block N-1 ][ tx frame 0 | tx frame 1 | ... ]
//!  rx block: tpacket_block_desc { version, offset_to_priv, hdr.bh1 { block_status, num_pkts,
//!            offset_to_first_pkt, blk_len, ... } } then packets linked by tp_next_offset
//!  packet:   tpacket3_hdr (48 B) | sockaddr_ll | ... | frame at tp_mac (tp_snaplen bytes)
//!  tx frame: tpacket3_hdr (tp_len, tp_status) | frame at TPACKET_ALIGN(sizeof tpacket3_hdr) = 48
//! ```
//!
//! packet_mmap.rst: "the user has to [...] set the status of the block to TP_STATUS_KERNEL
//! after processing" — a block handed to us (`TP_STATUS_USER`) is read, then given back with a
//! release store. Transmit: "set tp_status to TP_STATUS_SEND_REQUEST [...] and call send()":
//! we fill up to a burst of frames and issue ONE `sendto(NULL, 0)` per burst (no per-packet
//! syscall). Receive needs no syscall at all: epoll tells us a block was retired.
//!
//! Outgoing packets are not received (`PACKET_IGNORE_OUTGOING`, and `sll_pkttype ==
//! PACKET_OUTGOING` is skipped as well), so our own transmissions never loop back. The socket
//! joins the interface in promiscuous mode with `PACKET_MR_PROMISC` (undone by the kernel on close).
//! `TP_STATUS_CSUMNOTREADY` (the sender left the L4 checksum partial: veth/tap offload) and a
//! VLAN tag stripped by the kernel (`TP_STATUS_VLAN_VALID`) are reported per frame.

#![allow(unsafe_code)] // reason: mmap'd ring memory shared with the kernel

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::IoError;
use crate::sys::{self, os_err, setsockopt};

/// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`: where a TX frame's bytes start.
const TX_DATA_OFF: usize = 48;
/// Offsets inside `tpacket_block_desc`.
const BLK_STATUS: usize = 8;
const BLK_NUM_PKTS: usize = 12;
const BLK_FIRST_PKT: usize = 16;
/// Offsets inside `tpacket3_hdr`.
const PKT_NEXT: usize = 0;
const PKT_SNAPLEN: usize = 12;
const PKT_LEN: usize = 16;
const PKT_STATUS: usize = 20;
const PKT_MAC: usize = 24;
const PKT_VLAN_TCI: usize = 32;
/// `struct virtio_net_hdr` (10 bytes, little-endian) precedes each frame with PACKET_VNET_HDR.
const VNET_HDR_LEN: usize = 10;
/// Offset of `virtio_net_hdr.hdr_len`. On transmit the kernel's `tpacket_snd` copies
/// `max(hdr_len, hard_header_len)` bytes of the slot into the skb's linear area and attaches
/// the rest as references to the ring's pages, marked zero-copy; a receiver on the far side of
/// a veth then copies those pages again (`skb_copy_ubufs`, a page allocation per packet) and
/// every header read (flow dissector, IP input, a tc program's direct packet access, which
/// only sees the linear part) goes through `skb_copy_bits`. We set `hdr_len` to the frame's
/// length: one copy, a linear skb, no page references.
const VNET_HDR_LINEAR: usize = 2;
/// `sockaddr_ll` follows the header at TPACKET_ALIGN(48) = 48; `sll_pkttype` is its byte 10.
const PKT_SLL_PKTTYPE: usize = 48 + 10;
/// `TPACKET3_HDRLEN`: header + `sockaddr_ll`; what lies between it and the frame (the
/// `PACKET_RESERVE` bytes and the virtio_net_hdr, read before the frame is handed out) is
/// headroom the frame can grow into.
const PKT_HDRLEN: usize = 48 + 20;

/// Ring geometry for one interface.
#[derive(Debug, Clone, Copy)]
pub struct RingCfg {
    /// Receive block size in bytes (multiple of the page size).
    pub rx_block_size: u32,
    /// Number of receive blocks.
    pub rx_block_nr: u32,
    /// Milliseconds after which a partly filled receive block is handed to us (latency bound).
    pub rx_retire_ms: u32,
    /// Number of transmit frames.
    pub tx_frame_nr: u32,
    /// Largest frame (L2, without FCS) this interface sends; sets the TX frame size.
    pub max_frame: u32,
    /// Bypass the qdisc layer on transmit (`PACKET_QDISC_BYPASS`); faster, but packet
    /// captures on the interface then miss our transmissions.
    pub qdisc_bypass: bool,
    /// Ask for a `virtio_net_hdr` per frame (`PACKET_VNET_HDR`): the segment size of GSO
    /// super-frames from workloads with TSO on, so the shell can segment them.
    pub vnet_hdr: bool,
    /// Receive ARP frames only (classic BPF filter, attached before the socket binds).
    pub arp_only: bool,
    /// Transmit only: bound with protocol 0 and without a receive ring, so the socket
    /// receives nothing (the sender of every AF_PACKET port, and of the interfaces other run
    /// loops receive from).
    pub tx_only: bool,
    /// Bytes reserved in front of each received frame (`PACKET_RESERVE`): headroom for
    /// processing the frame in place (outer headers are written in front of it).
    pub rx_reserve: u32,
}

impl Default for RingCfg {
    fn default() -> Self {
        Self {
            rx_block_size: 1 << 17,
            rx_block_nr: 32,
            rx_retire_ms: 1,
            tx_frame_nr: 1024,
            max_frame: 1518,
            // Off: with the bypass, tcpdump on the interface no longer sees what we send
            // (packet_direct_xmit skips the taps), and operators capture on the fabric.
            qdisc_bypass: false,
            vnet_hdr: true,
            arp_only: false,
            tx_only: false,
            rx_reserve: 64,
        }
    }
}

/// One received frame, borrowed (writable) from the ring, with the headroom in front of it.
#[derive(Debug)]
pub struct RxFrame<'a> {
    /// Headroom, then the captured bytes starting at the Ethernet header: the frame is
    /// `buf[headroom..]`; the caller may rewrite it in place and grow it into the headroom.
    pub buf: &'a mut [u8],
    /// Bytes in front of the frame in `buf`.
    pub headroom: usize,
    /// Original length on the wire (larger than `data` if the frame was truncated).
    pub wire_len: u32,
    /// `TP_STATUS_CSUMNOTREADY`: the L4 checksum is partial (only the pseudo-header sum).
    pub csum_partial: bool,
    /// VLAN TCI the kernel stripped from the frame (`TP_STATUS_VLAN_VALID`).
    pub vlan_tci: Option<u16>,
    /// GSO super-frame: `virtio_net_hdr.gso_type` (0 = a single packet).
    pub gso_type: u8,
    /// GSO super-frame: payload bytes per segment.
    pub gso_size: u16,
}

impl RxFrame<'_> {
    /// The frame (from the Ethernet header).
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.headroom..).unwrap_or(&[])
    }
}

/// Counters kept by the ring itself.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct RingStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames truncated by the ring (`tp_snaplen < tp_len`), dropped.
    pub rx_truncated: u64,
    /// Frames or blocks whose ring metadata was out of bounds, dropped.
    pub rx_bad_desc: u64,
    /// Frames queued for transmit.
    pub tx_frames: u64,
    /// Frames dropped because the TX ring was full.
    pub tx_ring_full: u64,
    /// Frames dropped because they were larger than a TX slot.
    pub tx_too_big: u64,
    /// `sendto` calls (one per burst).
    pub tx_kicks: u64,
    /// Kernel-side drops reported by `PACKET_STATISTICS` (ring full on receive).
    pub kernel_drops: u64,
}

/// The shared mapping; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no slice into it outlives the
        // ring (RxFrame borrows the ring mutably for the callback's duration only).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// An AF_PACKET TPACKET_V3 socket with RX and TX rings, bound to one interface.
#[derive(Debug)]
pub struct PacketRing {
    /// Interface name (for errors and dumps).
    ifname: String,
    /// Its index.
    ifindex: u32,
    /// Declared after `map`, so the socket closes after the mapping is gone.
    map: Mapping,
    fd: OwnedFd,
    /// RX geometry and the next block to look at.
    rx_block_size: usize,
    rx_block_nr: usize,
    rx_cur: usize,
    /// TX geometry (frames start at `tx_off` in the mapping), next slot, frames not yet kicked.
    tx_off: usize,
    tx_frame_size: usize,
    tx_frame_nr: usize,
    tx_head: usize,
    tx_pending: usize,
    /// Frames carry a virtio_net_hdr (rx: before tp_mac; tx: first 10 bytes of the slot data).
    vnet: usize,
    stats: RingStats,
}

// SAFETY: the mapping is owned exclusively by this value (no aliasing handles exist); moving it
// to another thread moves the sole owner. The kernel side synchronises through status words.
unsafe impl Send for PacketRing {}

impl PacketRing {
    /// Open the rings on `ifname` in the current network namespace.
    pub fn open(ifname: &str, cfg: RingCfg) -> Result<Self, IoError> {
        let ifindex = sys::if_index(ifname)?;
        let proto_all = (libc::ETH_P_ALL as u16).to_be();
        // Protocol 0: receive nothing until the rings are set up and we bind.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let v3: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &v3,
            "PACKET_VERSION",
        )?;
        let one: libc::c_int = 1;
        // Best effort on old kernels: we also filter on sll_pkttype.
        let _ = setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
            "PACKET_IGNORE_OUTGOING",
        );
        if cfg.vnet_hdr {
            // Must precede the rings (the kernel refuses it once they exist).
            setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_VNET_HDR,
                &one,
                "PACKET_VNET_HDR",
            )?;
        }
        if cfg.qdisc_bypass {
            setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &one,
                "PACKET_QDISC_BYPASS",
            )?;
        }

        if cfg.rx_reserve > 0 && !cfg.tx_only {
            // Like PACKET_VNET_HDR, it must precede the ring.
            setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_RESERVE,
                &(cfg.rx_reserve as libc::c_int),
                "PACKET_RESERVE",
            )?;
        }
        if cfg.arp_only {
            sys::attach_arp_only(s)?;
        }
        let page = 4096usize;
        let rx_block_size = (cfg.rx_block_size as usize)
            .max(page)
            .next_multiple_of(page);
        // A transmit-only socket gets no receive ring: each TPACKET_V3 receive ring arms a
        // block-retire timer that fires every `tp_retire_blk_tov` ms for as long as the ring
        // exists, traffic or not (1,000 timer interrupts and softirqs a second at 1 ms).
        let rx_block_nr = if cfg.tx_only {
            0
        } else {
            (cfg.rx_block_nr as usize).max(2)
        };
        let rx_frame_size = 2048usize;
        let rx = libc::tpacket_req3 {
            tp_block_size: rx_block_size as u32,
            tp_block_nr: rx_block_nr as u32,
            tp_frame_size: rx_frame_size as u32,
            tp_frame_nr: (rx_block_size / rx_frame_size * rx_block_nr) as u32,
            tp_retire_blk_tov: cfg.rx_retire_ms.max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if rx_block_nr > 0 {
            setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                &rx,
                "PACKET_RX_RING",
            )?;
        }

        let tx_frame_size = (cfg.max_frame as usize + TX_DATA_OFF + 64)
            .next_power_of_two()
            .max(2048);
        let tx_block_size = tx_frame_size.max(1 << 16);
        let per_block = tx_block_size / tx_frame_size;
        let tx_block_nr = (cfg.tx_frame_nr as usize).div_ceil(per_block).max(1);
        let tx_frame_nr = tx_block_nr * per_block;
        // packet_mmap.rst: for the TX ring tp_retire_blk_tov, tp_sizeof_priv and
        // tp_feature_req_word must be zero.
        let tx = libc::tpacket_req3 {
            tp_block_size: tx_block_size as u32,
            tp_block_nr: tx_block_nr as u32,
            tp_frame_size: tx_frame_size as u32,
            tp_frame_nr: tx_frame_nr as u32,
            tp_retire_blk_tov: 0,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_TX_RING,
            &tx,
            "PACKET_TX_RING",
        )?;

        let tx_off = rx_block_size * rx_block_nr;
        let len = tx_off + tx_block_size * tx_block_nr;
        // SAFETY: maps the rings the kernel just allocated for this socket; length is the sum
        // of both rings as packet_mmap.rst requires; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                s,
                0,
            )
        };
        let ptr = if ptr == libc::MAP_FAILED {
            // MAP_LOCKED can fail under RLIMIT_MEMLOCK: retry without it.
            // SAFETY: same as above, without MAP_LOCKED.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    s,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(os_err("mmap(packet ring)"));
            }
            p
        } else {
            ptr
        };
        let map = Mapping {
            ptr: ptr.cast(),
            len,
        };

        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
            "PACKET_ADD_MEMBERSHIP(PROMISC)",
        )?;

        sys::bind_packet(s, ifindex, if cfg.tx_only { 0 } else { proto_all })?;
        Ok(Self {
            ifname: ifname.to_string(),
            ifindex,
            map,
            fd,
            rx_block_size,
            rx_block_nr,
            rx_cur: 0,
            tx_off,
            tx_frame_size,
            tx_frame_nr,
            tx_head: 0,
            tx_pending: 0,
            vnet: if cfg.vnet_hdr { VNET_HDR_LEN } else { 0 },
            stats: RingStats::default(),
        })
    }

    /// The socket, for epoll.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The status word at `off` in the mapping, as an atomic shared with the kernel.
    fn status_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= self.map.len && off.is_multiple_of(4));
        // SAFETY: `off` is in bounds and 4-aligned (block and frame starts are page/16-byte
        // aligned, status fields sit at fixed 4-aligned offsets); the kernel only accesses the
        // word with atomic-compatible stores; the reference lives no longer than `self`.
        unsafe { &*self.map.ptr.add(off).cast::<AtomicU32>() }
    }

    /// Read a native-endian u32 at `off` (bounds-checked by the caller).
    fn read_u32(&self, off: usize) -> u32 {
        // SAFETY: callers check `off + 4 <= map.len`; unaligned read is allowed.
        unsafe { self.map.ptr.add(off).cast::<u32>().read_unaligned() }
    }

    /// Receive: for every block the kernel has handed over, call `f` on each frame, then give
    /// the block back. Stops after `max_blocks` blocks. Returns the number of frames.
    pub fn rx_burst(&mut self, max_blocks: usize, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        let mut frames = 0;
        if self.rx_block_nr == 0 {
            return 0; // transmit-only: no receive ring
        }
        for _ in 0..max_blocks {
            let base = self.rx_cur * self.rx_block_size;
            let status = self.status_at(base + BLK_STATUS);
            if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            let num = self.read_u32(base + BLK_NUM_PKTS) as usize;
            let mut off = self.read_u32(base + BLK_FIRST_PKT) as usize;
            for _ in 0..num {
                // Never trust ring metadata blindly: every offset stays inside this block.
                if off < 32 || off + PKT_SLL_PKTTYPE + 1 > self.rx_block_size {
                    self.stats.rx_bad_desc += 1;
                    break;
                }
                let p = base + off;
                let next = self.read_u32(p + PKT_NEXT) as usize;
                let snaplen = self.read_u32(p + PKT_SNAPLEN) as usize;
                let wire_len = self.read_u32(p + PKT_LEN);
                let st = self.read_u32(p + PKT_STATUS);
                let mac = usize::from(u16::from_ne_bytes([
                    self.byte(p + PKT_MAC),
                    self.byte(p + PKT_MAC + 1),
                ]));
                let pkttype = self.byte(p + PKT_SLL_PKTTYPE);
                if off + mac + snaplen > self.rx_block_size || mac < PKT_HDRLEN {
                    self.stats.rx_bad_desc += 1;
                } else if pkttype == libc::PACKET_OUTGOING {
                    // Our own (or the host's) transmissions: never forward them again.
                } else if (snaplen as u32) < wire_len {
                    self.stats.rx_truncated += 1;
                } else {
                    let vlan_tci = (st & libc::TP_STATUS_VLAN_VALID != 0)
                        .then(|| (self.read_u32(p + PKT_VLAN_TCI) & 0xffff) as u16);
                    // The virtio_net_hdr sits just before the frame (inside the header area).
                    let (gso_type, gso_size) =
                        if self.vnet > 0 && mac >= PKT_SLL_PKTTYPE + 1 + self.vnet {
                            let v = p + mac - self.vnet;
                            (
                                self.byte(v + 1),
                                u16::from_le_bytes([self.byte(v + 4), self.byte(v + 5)]),
                            )
                        } else {
                            (0, 0)
                        };
                    let headroom = mac - PKT_HDRLEN;
                    // SAFETY: `[p + PKT_HDRLEN, p + mac + snaplen)` is inside this block
                    // (checked above); the block belongs to us until we store
                    // TP_STATUS_KERNEL below, after the last use of the slice; nothing else
                    // reads or writes that range meanwhile (the header fields we use lie
                    // before it, and were read above).
                    let buf = unsafe {
                        std::slice::from_raw_parts_mut(
                            self.map.ptr.add(p + PKT_HDRLEN),
                            headroom + snaplen,
                        )
                    };
                    self.stats.rx_frames += 1;
                    frames += 1;
                    f(RxFrame {
                        buf,
                        headroom,
                        wire_len,
                        csum_partial: st & libc::TP_STATUS_CSUMNOTREADY != 0,
                        vlan_tci,
                        gso_type,
                        gso_size,
                    });
                }
                if next == 0 {
                    break;
                }
                off += next;
            }
            self.status_at(base + BLK_STATUS)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.rx_cur = (self.rx_cur + 1) % self.rx_block_nr;
        }
        frames
    }

    fn byte(&self, off: usize) -> u8 {
        // SAFETY: callers check `off < map.len`.
        unsafe { *self.map.ptr.add(off) }
    }

    /// Largest frame a TX slot holds.
    pub fn tx_capacity(&self) -> usize {
        self.tx_frame_size - TX_DATA_OFF - self.vnet
    }

    /// Queue one frame for transmit (copied into the next free TX slot). The frame leaves on
    /// the next [`tx_flush`](Self::tx_flush); a full ring flushes once and then drops.
    pub fn tx_push(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.tx_capacity() {
            self.stats.tx_too_big += 1;
            return false;
        }
        let mut slot = self.tx_off + self.tx_head * self.tx_frame_size;
        if self.status_at(slot + PKT_STATUS).load(Ordering::Acquire)
            & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING)
            != 0
        {
            self.tx_flush();
            slot = self.tx_off + self.tx_head * self.tx_frame_size;
            if self.status_at(slot + PKT_STATUS).load(Ordering::Acquire)
                & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING)
                != 0
            {
                self.stats.tx_ring_full += 1;
                return false;
            }
        }
        let len = (frame.len() + self.vnet) as u32;
        // SAFETY: the slot `[slot, slot + tx_frame_size)` is inside the TX ring and is ours
        // (status AVAILABLE) until we publish SEND_REQUEST; the virtio_net_hdr (no GSO, no
        // checksum offload, `hdr_len` below) plus `frame` fit (checked against tx_capacity).
        unsafe {
            let hdr = self.map.ptr.add(slot);
            std::ptr::write_bytes(hdr, 0, TX_DATA_OFF + self.vnet);
            hdr.add(PKT_LEN).cast::<u32>().write_unaligned(len);
            hdr.add(PKT_SNAPLEN).cast::<u32>().write_unaligned(len);
            if self.vnet > 0 {
                // The whole frame into the skb's linear part (see `VNET_HDR_LINEAR`).
                let linear = u16::try_from(frame.len()).unwrap_or(u16::MAX).to_le_bytes();
                std::ptr::copy_nonoverlapping(
                    linear.as_ptr(),
                    hdr.add(TX_DATA_OFF + VNET_HDR_LINEAR),
                    2,
                );
            }
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                hdr.add(TX_DATA_OFF + self.vnet),
                frame.len(),
            );
        }
        self.status_at(slot + PKT_STATUS)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx_head = (self.tx_head + 1) % self.tx_frame_nr;
        self.tx_pending += 1;
        self.stats.tx_frames += 1;
        true
    }

    /// Kick the kernel to send every queued frame: one `sendto` for the whole burst.
    pub fn tx_flush(&mut self) {
        if self.tx_pending == 0 {
            return;
        }
        // SAFETY: sendto with a NULL buffer of length 0 is the documented TX-ring kick.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        self.stats.tx_kicks += 1;
        if r >= 0 {
            self.tx_pending = 0;
        }
        // On EAGAIN/ENOBUFS the frames stay SEND_REQUEST and go with the next kick.
    }

    /// Counters, with the kernel's drop counter read (and reset) via `PACKET_STATISTICS`.
    pub fn stats(&mut self) -> RingStats {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` has room for `len` bytes; the kernel writes at most that.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.stats.kernel_drops += u64::from(st.tp_drops);
        }
        self.stats
    }
}
