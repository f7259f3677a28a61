//! Errors of the forwarder's I/O shell: system calls, interfaces, tables files and the run loop.

use std::io;

/// What can go wrong in the I/O shell. Every variant carries its context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A system call failed.
    #[error("{call}: {source}")]
    Sys {
        /// The call (and its main argument).
        call: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// No interface with that name in this network namespace.
    #[error("no such interface {ifname:?}")]
    NoSuchInterface {
        /// The name asked for.
        ifname: String,
    },
    /// An interface name that cannot be valid (empty, too long, NUL).
    #[error("invalid interface name {ifname:?}")]
    BadIfName {
        /// The name given.
        ifname: String,
    },
    /// A fabric listener socket could not be opened (port in use?).
    #[error("cannot open the fabric {what} socket on port {port}: {source}")]
    FabricSocket {
        /// "udp".
        what: &'static str,
        /// The port.
        port: u16,
        /// The OS error.
        source: io::Error,
    },
    /// The interface is already attached.
    #[error("interface {ifname:?} is already attached")]
    AlreadyAttached {
        /// Its name.
        ifname: String,
    },
    /// No attached interface with that vif id.
    #[error("vif {vif} is not attached")]
    NotAttached {
        /// The vif id.
        vif: u32,
    },
    /// The forwarder core refused a table operation.
    #[error("table operation refused: {reason}")]
    Op {
        /// The core's error, rendered.
        reason: String,
    },
    /// The run loop thread is gone (it stopped or panicked).
    #[error("the datapath run loop is not running")]
    Stopped,
    /// A tables file could not be read or parsed.
    #[error("tables file {path}: {reason}")]
    Tables {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}
