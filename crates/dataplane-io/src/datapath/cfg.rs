//! The run loops' settings ([`DatapathCfg`]) and the shell's own counters ([`ShellStats`]).

use std::time::Duration;

use filament_dataplane::ForwarderCfg;
use serde::Serialize;

use crate::port::IoMode;
use crate::ring::RingCfg;
use crate::xsk::XskCfg;

/// Run-loop settings.
#[derive(Debug, Clone)]
pub struct DatapathCfg {
    /// Forwarder core settings (flow table size, ...).
    pub forwarder: ForwarderCfg,
    /// Ring geometry (the TX frame size follows each interface's MTU).
    pub ring: RingCfg,
    /// AF_PACKET rings (default) or AF_XDP sockets.
    pub io: IoMode,
    /// AF_XDP socket settings (with `io: AfXdp`).
    pub xsk: XskCfg,
    /// Do not open the fabric listener sockets (tests running several forwarders in one netns).
    pub no_fabric_listeners: bool,
    /// AF_PACKET fabric: drop overlay packets at tcx ingress once our socket has its copy, so
    /// the kernel does not process each one too (default on; falls back with a warning).
    pub fabric_tc_drop: bool,
    /// Run loops (threads), each receiving a share of the interfaces (round robin, in attach
    /// order) with its own forwarder replica; 0 = one per CPU. `Default` gives 1: on small
    /// hosts the workloads need the other cores, and one loop already forwards without a
    /// per-packet system call.
    pub cores: usize,
    /// Process frames in their receive slot and copy them once, into the transmit slot
    /// (`filament_dataplane::inplace`); off: every frame is copied into a buffer first.
    pub in_place: bool,
    /// Busy-poll budget: after a wakeup that received frames, keep polling the receive rings
    /// (no system call) until they stay empty this long, before sleeping in epoll again.
    /// Zero (default): sleep at once. Trades CPU for fewer wakeups at high rates.
    pub busy_poll: Duration,
    /// Ask for transparent huge pages under the flow table (`madvise(MADV_HUGEPAGE)`, default
    /// on): fewer TLB misses per lookup with many flows, but the table's memory is then
    /// faulted in 2 MiB at a time as flows land in it.
    pub huge_pages: bool,
    /// Join the TCP segments of one flow that leave by an AF_PACKET workload interface in one
    /// burst into GSO super-frames ([`crate::gro`], default on), as kernel VXLAN's GRO does.
    pub gro: bool,
}

impl Default for DatapathCfg {
    fn default() -> Self {
        Self {
            forwarder: ForwarderCfg::default(),
            ring: RingCfg::default(),
            io: IoMode::default(),
            xsk: XskCfg::default(),
            no_fabric_listeners: false,
            fabric_tc_drop: true,
            cores: 1,
            in_place: true,
            busy_poll: Duration::ZERO,
            huge_pages: true,
            gro: true,
        }
    }
}

/// Counters of the shell itself (beside the core's drop statistics).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ShellStats {
    /// Punts dropped because the agent's queue was full or gone.
    pub punt_queue_drops: u64,
    /// Frames for a vif with no attached ring (core said Transmit to an unattached vif).
    pub tx_unattached: u64,
    /// Loop iterations (epoll wakeups).
    pub wakeups: u64,
    /// TCP GSO super-frames cut into segments in software.
    pub gso_frames: u64,
    /// Segments produced from them.
    pub gso_segments: u64,
    /// GSO frames that could not be segmented (not TCP, bad headers): passed on as they are.
    pub gso_unsupported: u64,
    /// Frames processed in their receive slot (copied once, into the transmit slot).
    pub in_place: u64,
    /// Of those, frames of policy-enabled interfaces whose installed flow entry (Forward or
    /// Drop) was applied in place.
    pub in_place_flows: u64,
    /// Busy-poll passes that found frames (no wakeup needed for them).
    pub busy_polls: u64,
}
