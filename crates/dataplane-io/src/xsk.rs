//! An AF_XDP socket bound to queue 0 of one interface in copy mode, with its UMEM and the four
//! single-producer / single-consumer rings (Linux `Documentation/networking/af_xdp.rst`).
//!
//! ```text
//!  UMEM: nr_frames x frame_size bytes (page aligned, ours); the kernel copies packets in/out.
//!  FILL ring  (we produce UMEM addresses)  -> kernel writes received packets there
//!  RX ring    (kernel produces xdp_desc)   -> we read the packet, give the frame back to FILL
//!  TX ring    (we produce xdp_desc)        -> one sendto() kick per burst
//!  COMPLETION (kernel produces addresses)  -> the frame is free for the next transmit
//!  ring memory: producer u32 | consumer u32 | flags u32 | descriptors  (offsets from
//!               getsockopt(XDP_MMAP_OFFSETS))
//! ```
//!
//! af_xdp.rst: "the UMEM [...] must be registered [...] and at least one of the RX and TX
//! rings must be set up"; "It is recommended to [...] use a single-producer/single-consumer
//! [...] ring": each index is written by one side only, with release stores after the
//! descriptors and acquire loads before reading them. Copy mode (`XDP_COPY`) works on every
//! driver, veth included. The XDP program ([`crate::bpf`]) steers the interface's packets here;
//! everything it passes goes up the kernel stack as usual.
//!
//! What AF_XDP does not say per packet: the kernel's CHECKSUM_PARTIAL flag. A frame from a
//! workload whose TCP/UDP checksum field holds just the pseudo-header sum is recognised here
//! ([`l4_csum_partial`]) and handed to the core as partial, so it is completed in software.

#![allow(unsafe_code)] // reason: UMEM and ring memory shared with the kernel

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use filament_wire_pkt::checksum;

use crate::bpf::{XdpFilter, XdpMode, XdpSteer};
use crate::error::IoError;
use crate::sys::{self, os_err, setsockopt};

/// AF_XDP socket settings.
#[derive(Debug, Clone, Copy)]
pub struct XskCfg {
    /// UMEM frame (chunk) size: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames (half for receive, half for transmit).
    pub frames: u32,
    /// Entries of each ring (power of two).
    pub ring_size: u32,
    /// Which XDP hook to use.
    pub mode: XdpMode,
    /// Transmit through an AF_PACKET TX ring on the interface instead of the socket's TX
    /// ring (copy-mode AF_XDP copies every frame into a fresh skb, at most 32 per `sendto`;
    /// the packet ring hands the kernel its pages and sends a whole burst per `sendto`).
    pub tx_packet_ring: bool,
}

impl Default for XskCfg {
    fn default() -> Self {
        Self {
            frame_size: 4096,
            frames: 4096,
            ring_size: 2048,
            mode: XdpMode::Auto,
            tx_packet_ring: false,
        }
    }
}

/// Counters of one AF_XDP socket.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct XskStats {
    /// Frames received.
    pub rx_frames: u64,
    /// RX descriptors outside the UMEM, dropped.
    pub rx_bad_desc: u64,
    /// Frames queued for transmit.
    pub tx_frames: u64,
    /// Frames dropped: no free UMEM frame or TX ring full.
    pub tx_ring_full: u64,
    /// Frames dropped because they were larger than a UMEM frame.
    pub tx_too_big: u64,
    /// `sendto` calls (one per burst).
    pub tx_kicks: u64,
    /// Kernel-side drops (`XDP_STATISTICS` rx_dropped + rx_ring_full + fill ring empty).
    pub kernel_drops: u64,
    /// Whether the XDP program runs in the driver's hook (else generic XDP).
    pub driver_mode: bool,
}

/// An mmap'd region; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn anon(len: usize) -> Result<Self, IoError> {
        // SAFETY: a fresh private anonymous mapping; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("mmap(UMEM)"));
        }
        Ok(Self { ptr: p.cast(), len })
    }

    fn ring(fd: RawFd, len: usize, pgoff: u64, call: &'static str) -> Result<Self, IoError> {
        // SAFETY: maps the ring the kernel allocated for this socket at its documented page
        // offset; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(call));
        }
        Ok(Self { ptr: p.cast(), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference into the mapping
        // outlives its owner (received slices borrow the socket for the callback only).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// One of the four rings: producer and consumer indexes plus the descriptor array.
#[derive(Debug)]
struct Ring {
    map: Mapping,
    prod: usize,
    cons: usize,
    desc: usize,
    mask: u32,
    size: u32,
}

impl Ring {
    fn open(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        entry: usize,
        pgoff: u64,
        call: &'static str,
    ) -> Result<Self, IoError> {
        let len = off.desc as usize + size as usize * entry;
        let map = Mapping::ring(fd, len, pgoff, call)?;
        Ok(Self {
            map,
            prod: off.producer as usize,
            cons: off.consumer as usize,
            desc: off.desc as usize,
            mask: size - 1,
            size,
        })
    }

    fn idx(&self, off: usize) -> &AtomicU32 {
        // SAFETY: producer/consumer offsets come from XDP_MMAP_OFFSETS, inside the mapping and
        // 4-aligned; the kernel accesses them with atomic loads/stores (smp_load_acquire /
        // smp_store_release); the reference does not outlive the mapping.
        unsafe { &*self.map.ptr.add(off).cast::<AtomicU32>() }
    }

    fn producer(&self) -> &AtomicU32 {
        self.idx(self.prod)
    }

    fn consumer(&self) -> &AtomicU32 {
        self.idx(self.cons)
    }

    /// Address of entry `i` (masked) of `entry` bytes.
    fn entry(&self, i: u32, entry: usize) -> *mut u8 {
        let slot = (i & self.mask) as usize;
        // SAFETY: `desc + slot * entry` is inside the mapping (len = desc + size * entry).
        unsafe { self.map.ptr.add(self.desc + slot * entry) }
    }
}

/// `XDP_MAX_TX_SKB_BUDGET` (`linux/if_xdp.h`, Linux 6.17; not in the libc crate yet).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
/// Most `sendto` kicks per flush (each sends up to 32 frames in copy mode).
const MAX_KICKS: u32 = 64;
/// `struct xdp_desc` size.
const DESC: usize = 16;
/// A fill / completion entry (a u64 UMEM address).
const ADDR: usize = 8;

/// An AF_XDP socket (copy mode, queue 0) with its UMEM, rings and XDP program.
#[derive(Debug)]
pub struct XskSocket {
    ifname: String,
    ifindex: u32,
    /// Declared first: the program is detached before the socket and memory go.
    steer: XdpSteer,
    rx: Ring,
    tx: Ring,
    fill: Ring,
    comp: Ring,
    fd: OwnedFd,
    umem: Mapping,
    frame_size: u32,
    /// UMEM frames free for transmit.
    free: Vec<u64>,
    tx_pending: u32,
    stats: XskStats,
}

// SAFETY: the mappings are owned exclusively by this value; moving it to another thread moves
// the sole owner. The kernel side synchronises through the ring indexes.
unsafe impl Send for XskSocket {}

impl XskSocket {
    /// Create the socket on queue 0 of `ifname`, load and attach the steering program.
    pub fn open(ifname: &str, filter: XdpFilter, cfg: XskCfg) -> Result<Self, IoError> {
        let ifindex = sys::if_index(ifname)?;
        let frame_size = if cfg.frame_size >= 4096 { 4096 } else { 2048 };
        let frames = cfg.frames.max(64).next_power_of_two();
        let ring_size = cfg.ring_size.clamp(64, frames / 2).next_power_of_two();
        let umem = Mapping::anon(frames as usize * frame_size as usize)?;

        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err("socket(AF_XDP)"));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr as u64,
            len: umem.len as u64,
            chunk_size: frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(s, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        for (opt, call) in [
            (libc::XDP_UMEM_FILL_RING, "XDP_UMEM_FILL_RING"),
            (libc::XDP_UMEM_COMPLETION_RING, "XDP_UMEM_COMPLETION_RING"),
            (libc::XDP_RX_RING, "XDP_RX_RING"),
            (libc::XDP_TX_RING, "XDP_TX_RING"),
        ] {
            setsockopt(s, libc::SOL_XDP, opt, &(ring_size as libc::c_int), call)?;
        }
        // af_xdp.rst, XDP_MAX_TX_SKB_BUDGET: "the maximum number of descriptors that can be
        // handled and passed to the driver at one send syscall [...] in the copy mode [...]
        // Allowed range is [32, xs->tx->nentries]". A whole TX ring per kick instead of 32
        // frames (Linux 6.17+; older kernels refuse the option and keep 32: `tx_flush` kicks
        // again while frames remain).
        let _ = setsockopt(
            s,
            libc::SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            &(ring_size as libc::c_uint),
            "XDP_MAX_TX_SKB_BUDGET",
        );
        // SAFETY: xdp_mmap_offsets is plain old data; all-zero is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` has room for `len` bytes; the kernel writes at most that.
        let r = unsafe {
            libc::getsockopt(
                s,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(os_err("getsockopt(XDP_MMAP_OFFSETS)"));
        }
        let rx = Ring::open(
            s,
            &off.rx,
            ring_size,
            DESC,
            libc::XDP_PGOFF_RX_RING as u64,
            "mmap(XDP rx ring)",
        )?;
        let tx = Ring::open(
            s,
            &off.tx,
            ring_size,
            DESC,
            libc::XDP_PGOFF_TX_RING as u64,
            "mmap(XDP tx ring)",
        )?;
        let fill = Ring::open(
            s,
            &off.fr,
            ring_size,
            ADDR,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "mmap(XDP fill ring)",
        )?;
        let comp = Ring::open(
            s,
            &off.cr,
            ring_size,
            ADDR,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "mmap(XDP completion ring)",
        )?;

        // SAFETY: sockaddr_xdp is plain old data; all-zero is valid.
        let mut sxdp: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sxdp.sxdp_family = libc::AF_XDP as u16;
        sxdp.sxdp_flags = libc::XDP_COPY;
        sxdp.sxdp_ifindex = ifindex;
        sxdp.sxdp_queue_id = 0;
        // SAFETY: `sxdp` is a valid sockaddr_xdp for the duration of the call.
        let r = unsafe {
            libc::bind(
                s,
                (&sxdp as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(os_err("bind(AF_XDP, copy mode, queue 0)"));
        }

        // Frames [0, frames/2) feed the receive side, the rest are free for transmit.
        let half = frames / 2;
        let mut sock_free: Vec<u64> = (half..frames)
            .map(|i| u64::from(i) * u64::from(frame_size))
            .collect();
        sock_free.reverse();
        let steer = XdpSteer::attach(ifindex, 1, filter, cfg.mode)?;
        let mut sock = Self {
            ifname: ifname.to_string(),
            ifindex,
            steer,
            rx,
            tx,
            fill,
            comp,
            fd,
            umem,
            frame_size,
            free: sock_free,
            tx_pending: 0,
            stats: XskStats::default(),
        };
        sock.stats.driver_mode = sock.steer.driver_mode;
        let rx_frames: Vec<u64> = (0..half.min(ring_size))
            .map(|i| u64::from(i) * u64::from(frame_size))
            .collect();
        sock.fill_push(&rx_frames);
        sock.steer.set_socket(0, sock.fd.as_raw_fd())?;
        Ok(sock)
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

    /// Give UMEM frames to the kernel for receiving (the fill ring has room for all: we never
    /// hold more than we took out).
    fn fill_push(&mut self, addrs: &[u64]) {
        let prod = self.fill.producer().load(Ordering::Relaxed);
        let cons = self.fill.consumer().load(Ordering::Acquire);
        let room = self.fill.size - prod.wrapping_sub(cons);
        let n = (addrs.len() as u32).min(room);
        for (k, a) in addrs.iter().take(n as usize).enumerate() {
            let p = self.fill.entry(prod.wrapping_add(k as u32), ADDR);
            // SAFETY: the entry is inside the fill ring and between our producer index and
            // the kernel's consumer index, so the kernel does not read it until we publish.
            unsafe { p.cast::<u64>().write_unaligned(*a) };
        }
        self.fill
            .producer()
            .store(prod.wrapping_add(n), Ordering::Release);
    }

    /// Receive up to `max` frames, calling `f(buf, headroom)` on each: the frame is
    /// `buf[headroom..]`, writable, with the UMEM frame's bytes in front of it as headroom (the
    /// kernel leaves XDP_PACKET_HEADROOM, 256 bytes, in copy mode). Frames go back to the
    /// fill ring after `f` returns.
    pub fn rx_burst(&mut self, max: usize, mut f: impl FnMut(&mut [u8], usize)) -> usize {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        let prod = self.rx.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons).min(max as u32);
        if n == 0 {
            return 0;
        }
        let mut recycle = [0u64; 64];
        let mut r = 0;
        let mut done = 0;
        for k in 0..n {
            let d = self.rx.entry(cons.wrapping_add(k), DESC);
            // SAFETY: the descriptor is inside the RX ring and was published by the kernel
            // (between our consumer and its producer index, acquire-loaded above).
            let (addr, len) = unsafe {
                (
                    d.cast::<u64>().read_unaligned(),
                    d.add(8).cast::<u32>().read_unaligned() as usize,
                )
            };
            let base = addr - addr % u64::from(self.frame_size);
            let within = (addr % u64::from(self.frame_size)) as usize + len;
            if (addr as usize).saturating_add(len) > self.umem.len
                || within > self.frame_size as usize
            {
                self.stats.rx_bad_desc += 1;
            } else {
                let headroom = (addr - base) as usize;
                // SAFETY: `[base, addr + len)` is inside the UMEM and inside one UMEM frame
                // (checked above); the frame is ours (the kernel gave it back on the RX ring
                // and gets it again only through the fill ring, after `f` returns), so
                // nothing else reads or writes it meanwhile.
                let buf = unsafe {
                    std::slice::from_raw_parts_mut(self.umem.ptr.add(base as usize), headroom + len)
                };
                self.stats.rx_frames += 1;
                done += 1;
                f(buf, headroom);
            }
            recycle[r] = base;
            r += 1;
            if r == recycle.len() {
                self.fill_push(&recycle);
                r = 0;
            }
        }
        self.rx
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        self.fill_push(&recycle[..r]);
        done
    }

    /// Take back the frames the kernel finished sending.
    fn reap_completions(&mut self) {
        let cons = self.comp.consumer().load(Ordering::Relaxed);
        let prod = self.comp.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons);
        for k in 0..n {
            let p = self.comp.entry(cons.wrapping_add(k), ADDR);
            // SAFETY: the entry is inside the completion ring and published by the kernel.
            let a = unsafe { p.cast::<u64>().read_unaligned() };
            self.free.push(a - a % u64::from(self.frame_size));
        }
        self.comp
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
    }

    /// Largest frame a UMEM frame holds.
    pub fn tx_capacity(&self) -> usize {
        self.frame_size as usize
    }

    /// Queue one frame for transmit (copied into a free UMEM frame); it leaves on the next
    /// [`tx_flush`](Self::tx_flush). No free frame or a full TX ring: flush once, then drop.
    pub fn tx_push(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.tx_capacity() {
            self.stats.tx_too_big += 1;
            return false;
        }
        let mut prod = self.tx.producer().load(Ordering::Relaxed);
        let full = |s: &Self, prod: u32| {
            prod.wrapping_sub(s.tx.consumer().load(Ordering::Acquire)) >= s.tx.size
        };
        if self.free.is_empty() || full(self, prod) {
            self.tx_flush();
            self.reap_completions();
            prod = self.tx.producer().load(Ordering::Relaxed);
            if self.free.is_empty() || full(self, prod) {
                self.stats.tx_ring_full += 1;
                return false;
            }
        }
        let Some(addr) = self.free.pop() else {
            return false;
        };
        let d = self.tx.entry(prod, DESC);
        // SAFETY: `addr` is a free UMEM frame (not in any ring) with room for `frame`
        // (checked against tx_capacity); the descriptor slot is between our producer index and
        // the kernel's consumer index, so the kernel does not read either before we publish.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.umem.ptr.add(addr as usize),
                frame.len(),
            );
            d.cast::<u64>().write_unaligned(addr);
            d.add(8).cast::<u32>().write_unaligned(frame.len() as u32);
            d.add(12).cast::<u32>().write_unaligned(0);
        }
        self.tx
            .producer()
            .store(prod.wrapping_add(1), Ordering::Release);
        self.tx_pending += 1;
        self.stats.tx_frames += 1;
        true
    }

    /// Kick the kernel to send every queued frame, reap completions. Copy mode sends at most
    /// 32 frames per `sendto` (the kernel's TX_BATCH_SIZE, then EAGAIN): kick again while the
    /// kernel's TX consumer index still trails ours, a bounded number of times, so a burst
    /// leaves now rather than waiting for the next wakeup.
    pub fn tx_flush(&mut self) {
        let mut kicks = 0;
        while self.tx_pending > 0 && kicks < MAX_KICKS {
            // SAFETY: sendto with a NULL buffer of length 0 is the documented AF_XDP TX kick.
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
            kicks += 1;
            self.stats.tx_kicks += 1;
            let prod = self.tx.producer().load(Ordering::Relaxed);
            let cons = self.tx.consumer().load(Ordering::Acquire);
            self.tx_pending = prod.wrapping_sub(cons);
            if r < 0 {
                let e = std::io::Error::last_os_error().raw_os_error();
                // EAGAIN: batch limit reached, more to send; EBUSY/ENOBUFS: the device is
                // busy, the frames stay queued for the next flush.
                if e != Some(libc::EAGAIN) {
                    break;
                }
            }
        }
        self.reap_completions();
    }

    /// Counters, with the kernel's (`XDP_STATISTICS`, cumulative).
    pub fn stats(&mut self) -> XskStats {
        // SAFETY: xdp_statistics is plain old data; all-zero is valid.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `st` has room for `len` bytes; the kernel writes at most that.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.stats.kernel_drops = st.rx_dropped + st.rx_ring_full + st.rx_fill_ring_empty_descs;
        }
        self.stats
    }
}

/// Whether `frame` (Ethernet, IPv4 or IPv6, TCP or UDP, no IPv6 extension headers) carries a
/// partial L4 checksum: the field holds the folded pseudo-header sum that a sender with
/// checksum offload leaves for the device (`~csum_tcpudp_magic(.., 0)` in Linux) and the full
/// checksum does not verify. Anything it cannot parse is "not partial".
pub fn l4_csum_partial(frame: &[u8]) -> bool {
    let Some(&[e0, e1]) = frame.get(12..14) else {
        return false;
    };
    let (l4_off, l4_len, proto, src, dst) = match u16::from_be_bytes([e0, e1]) {
        0x0800 => {
            let Some(ip) = frame.get(14..34) else {
                return false;
            };
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            // Later fragments carry no L4 header.
            if ihl < 20 || total < ihl || u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
                return false;
            }
            let addr = |at: usize| IpAddr::from([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
            (14 + ihl, total - ihl, ip[9], addr(12), addr(16))
        }
        0x86dd => {
            let Some(ip) = frame.get(14..54) else {
                return false;
            };
            let addr = |at: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[at..at + 16]);
                IpAddr::from(a)
            };
            let l4_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (54, l4_len, ip[6], addr(8), addr(24))
        }
        _ => return false,
    };
    let field = match proto {
        6 => l4_off + 16,
        17 => l4_off + 6,
        _ => return false,
    };
    let Some(&[c0, c1]) = frame.get(field..field + 2) else {
        return false;
    };
    let psum = checksum::pseudo_header(&src, &dst, proto, l4_len as u32);
    if u16::from_be_bytes([c0, c1]) != checksum::fold(psum) {
        return false;
    }
    // Rare case: a complete checksum equal to the pseudo-header sum. Verify it.
    let Some(l4) = frame.get(l4_off..l4_off + l4_len) else {
        return true;
    };
    checksum::l4_checksum(&src, &dst, proto, l4) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use filament_wire_pkt::checksum::{fold, sum};

    /// An Ethernet/IPv4/UDP frame with the checksum field set by `csum`.
    fn udp4(payload: &[u8], csum: impl Fn(u32, &[u8]) -> u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&[10, 1, 1, 3, 10, 1, 1, 4]);
        f.extend_from_slice(&ip);
        let l4_len = 8 + payload.len();
        let mut udp = vec![
            0x30,
            0x39,
            0x13,
            0x89,
            (l4_len >> 8) as u8,
            l4_len as u8,
            0,
            0,
        ];
        udp.extend_from_slice(payload);
        let psum = sum(&ip[12..20]) + 17 + l4_len as u32;
        let c = csum(psum, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&udp);
        f
    }

    #[test]
    fn pseudo_header_sum_is_partial_and_full_checksum_is_not() {
        let partial = udp4(b"hello world", |p, _| fold(p));
        assert!(l4_csum_partial(&partial));
        let full = udp4(b"hello world", |p, l4| !fold(p + sum(l4)));
        assert!(!l4_csum_partial(&full));
        let none = udp4(b"hello world", |_, _| 0);
        assert!(!l4_csum_partial(&none));
    }

    #[test]
    fn short_or_foreign_frames_are_not_partial() {
        assert!(!l4_csum_partial(&[]));
        assert!(!l4_csum_partial(&[0u8; 13]));
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert!(!l4_csum_partial(&arp));
        let full = udp4(b"x", |p, l4| !fold(p + sum(l4)));
        for n in 0..full.len() {
            let _ = l4_csum_partial(&full[..n]);
        }
    }
}
