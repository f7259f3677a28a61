//! XMPP over TLS settings of the control node (TF's `xmpp_auth_enable`, docs/tf-agent-compat.md
//! "XMPP over TLS"): PEM files → rustls configurations (`filament_wire_xmpp::tls_config`
//! builds them: server with an optional client-certificate CA, client checking the chain
//! and not the name, as TF's agent).

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use filament_wire_xmpp::tls_config::server_name;
use filament_wire_xmpp::tls_config::{self, TlsSetupError};

/// TLS setup errors, naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{what} {path}: {source}")]
    Read {
        /// Which file (certificate, key, CA).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The files' content is unusable.
    #[error("{files}: {source}")]
    Setup {
        /// The files involved.
        files: String,
        /// Cause.
        source: TlsSetupError,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn files(paths: &[Option<&Path>]) -> String {
    paths
        .iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The control node's TLS settings: its certificate chain and key, and with `ca` the CA
/// every agent's certificate must chain to (client certificates then required).
pub fn server_config(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let ca_pem = ca.map(|c| read("CA", c)).transpose()?;
    tls_config::server_config(
        &read("certificate", cert)?,
        &read("key", key)?,
        ca_pem.as_deref(),
    )
    .map_err(|source| TlsError::Setup {
        files: files(&[Some(cert), Some(key), ca]),
        source,
    })
}

/// An XMPP client's TLS settings (TF agent's): the server's chain verified against `ca`,
/// not its name; with `cert_key` the client presents that certificate.
pub fn client_config(
    ca: &Path,
    cert_key: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let pair = match cert_key {
        Some((c, k)) => Some((read("certificate", c)?, read("key", k)?)),
        None => None,
    };
    tls_config::client_config(
        &read("CA", ca)?,
        pair.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
    )
    .map_err(|source| TlsError::Setup {
        files: files(&[Some(ca), cert_key.map(|c| c.0), cert_key.map(|c| c.1)]),
        source,
    })
}
