//! `filament-bgp`: the BGP speaker of Filament's control node.
//!
//! * [`core`] (sans-IO, deterministic): the RFC 4271 peer state machine
//!   ([`fsm`], [`peer`]), capabilities (RFC 4760 multiprotocol for inet,
//!   inet-vpn, inet6-vpn, e-vpn and route-target; RFC 6793 4-octet AS with
//!   AS4_PATH; RFC 2918 route refresh; RFC 4724 graceful-restart helper),
//!   Adj-RIB-In / Loc-RIB ([`rib`]) / Adj-RIB-Out, RFC 4684 RT-constraint,
//!   iBGP split horizon, eBGP, RFC 4456 route reflection ([`export`]) and
//!   RFC 7606 error handling. It takes `now` as an argument and returns
//!   outputs; it never touches a socket or a clock.
//! * [`shell`] (tokio): a listener, outgoing connections and one task per
//!   session feeding the core, behind a cloneable [`Speaker`] handle for
//!   the RIB owner (the control node).
//! * [`json`]: paths <-> JSON (the example peer and introspection).
//!
//! ```text
//!  RIB owner --advertise/withdraw--> Speaker --Input--> core task (Core)
//!      ^                                                 |  Output::Send/Close/Connect
//!      +------------- Event (learned/withdrawn/state) ---+--> session tasks <-> TCP
//! ```

pub mod codec;
pub mod core;
pub mod export;
pub mod fsm;
pub mod idset;
pub mod index;
pub mod json;
pub mod peer;
pub mod rib;
pub mod shell;
pub mod types;

pub use crate::core::{Core, Event, Input, Output, PeerStatus};
pub use fsm::{ConnId, State};
pub use shell::{Speaker, SpeakerError};
pub use types::{
    Attrs, EvpnKey, Family, LabelStack, Md5Key, Md5KeyError, Path, PeerConfig, RouteKey,
    SpeakerConfig,
};
