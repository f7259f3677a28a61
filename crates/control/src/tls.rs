//! XMPP over TLS settings (TF's `xmpp_auth_enable`, docs/tf-agent-compat.md "XMPP over
//! TLS"): PEM files → rustls configurations, for the control node's listener and for an
//! XMPP client (the in-process test client, tools).
//!
//! What TF does, and we do:
//! * server (`xmpp_server.cc`): its certificate and key (`xmpp_server_cert`,
//!   `xmpp_server_key`); with a CA (`xmpp_ca_cert`) the client's certificate is requested
//!   and verified against it (`verify_peer`).  TF does not set `verify_fail_if_no_peer_cert`,
//!   so OpenSSL lets a client that sends no certificate in; we require one when a CA is
//!   given (`--xmpp-tls-ca`: "require and verify client certs").
//! * client (`xmpp_client.cc`): verifies the server's chain against the CA (`verify_peer`,
//!   `load_verify_file`) but installs no host-name check (no `rfc2818_verification`), so a
//!   control node's certificate need not name the address the agent dials.  [`client_config`]
//!   does the same: chain and validity are checked, the name is not.
//!
//! TLS 1.2 and 1.3 only (rustls); TF's client already refuses TLS 1.0 (`no_tlsv1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// TLS setup errors (bad files, unusable keys).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds no usable item.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// Which file (certificate, key, CA).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the material (key does not match the certificate, …).
    #[error("TLS setup ({what}): {source}")]
    Rustls {
        /// Which step.
        what: &'static str,
        /// Cause.
        source: rustls::Error,
    },
    /// The CA file gave no usable trust anchor.
    #[error("CA {path}: {reason}")]
    Verifier {
        /// CA path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        what: "key",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs("CA", ca)? {
        store.add(c).map_err(|e| TlsError::Verifier {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(store))
}

/// The control node's TLS settings: its certificate chain and key, and with `ca` the CA
/// every agent's certificate must chain to (client certificates then required).
pub fn server_config(
    cert: &Path,
    key_file: &Path,
    ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let rustls_err = |what| move |source| TlsError::Rustls { what, source };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err("protocol versions"))?;
    let builder = match ca {
        Some(ca) => {
            let v = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                .build()
                .map_err(|e| TlsError::Verifier {
                    path: ca.to_path_buf(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(certs("certificate", cert)?, key(key_file)?)
        .map_err(rustls_err("certificate and key"))?;
    Ok(Arc::new(cfg))
}

/// An XMPP client's TLS settings, as TF's agent sets them up: the server's chain is
/// verified against `ca` (its host name is not checked, see the module doc); with
/// `cert_key` the client presents that certificate.
pub fn client_config(
    ca: &Path,
    cert_key: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let inner = WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(|e| TlsError::Verifier {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "protocol versions",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)));
    let cfg = match cert_key {
        Some((c, k)) => builder
            .with_client_auth_cert(certs("certificate", c)?, key(k)?)
            .map_err(|source| TlsError::Rustls {
                what: "client certificate and key",
                source,
            })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The server name a client uses for the control node at `addr`: the address itself (no
/// SNI is sent for an address; the name is not checked, see [`client_config`]).
pub fn server_name(addr: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.into())
}

/// Web PKI verification of the chain, validity and signatures, without the host-name check
/// (TF's client installs none).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // the chain verified; only the name did not match
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
