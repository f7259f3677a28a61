//! The forwarder's I/O shell (tf-facts §5; issue 5 item 4): attaches the sans-IO forwarder
//! core to real interfaces with AF_PACKET TPACKET_V3 rings or AF_XDP sockets (copy mode, steered
//! by a hand-assembled XDP program), runs it in event-driven run-loop threads, and exposes a
//! handle for the agent plus an introspect router.
//!
//! This is the only crate allowed `unsafe` (in [`sys`], [`ring`], [`bpf`] and [`xsk`], each
//! block with a `// SAFETY:` comment).

pub mod bpf;
pub mod error;
pub mod gro;
pub mod gso;
pub mod ring;
pub mod sys;

pub use error::IoError;
pub use ring::{PacketRing, RingCfg, RingStats, RxFrame};
pub mod datapath;
pub mod introspect;
pub mod merge;
pub mod port;
pub mod tables;
pub mod xsk;

pub use datapath::{AttachCfg, Datapath, DatapathCfg, DatapathHandle, Punt, OVERLAY_UDP_PORTS};
pub use introspect::router;
pub use port::IoMode;
pub use tables::Tables;
pub use xsk::{XskCfg, XskStats};
