//! The forwarder's I/O shell (tf-facts §5; issue 5 item 4): attaches the sans-IO forwarder
//! core to real interfaces with AF_PACKET TPACKET_V3 rings, runs it in one event-driven thread,
//! and exposes a handle for the agent plus an introspect router.
//!
//! This is the only crate allowed `unsafe` (in [`sys`] and [`ring`], each block with a
//! `// SAFETY:` comment).

pub mod error;
pub mod gso;
pub mod ring;
pub mod sys;

pub use error::IoError;
pub use ring::{PacketRing, RingCfg, RingStats, RxFrame};
pub mod datapath;
pub mod introspect;
pub mod tables;

pub use datapath::{AttachCfg, Datapath, DatapathCfg, DatapathHandle, Punt, OVERLAY_UDP_PORTS};
pub use introspect::router;
pub use tables::Tables;
