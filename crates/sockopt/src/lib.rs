//! Socket options that std and tokio do not offer, behind a safe API.
//!
//! * [`set_tcp_md5sig`]: TCP MD5 signatures (RFC 2385) for one peer address on a
//!   listening or connecting TCP socket, with Linux's `TCP_MD5SIG` option; BGP sessions
//!   use it for the bgp-router's `auth_data` (TF's `key_type` "md5").
//!
//! With `filament-dataplane-io`, this is the only crate allowed `unsafe` (in [`md5`], each
//! block with a `// SAFETY:` comment); nothing here is `unsafe` to call.

pub mod md5;

pub use md5::{set_tcp_md5sig, MAX_KEY_LEN};
