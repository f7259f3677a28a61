//! rustls configurations for XMPP over TLS as TF sets them up (feature `rustls`;
//! docs/tf-agent-compat.md "XMPP over TLS").  PEM bytes in, no file I/O: the shells read
//! the files.
//!
//! * server (TF `xmpp_server.cc`): certificate chain and key; with a CA the client's
//!   certificate is verified against it.  TF sets `verify_peer` without
//!   `verify_fail_if_no_peer_cert` (a client without a certificate gets in); we require one
//!   when a CA is given.
//! * client (TF `xmpp_client.cc`): the server's chain and validity are verified against the
//!   CA, its name is not (TF installs no `rfc2818_verification`), see [`ChainOnly`]; with a
//!   certificate and key the client presents them (a TF agent always does).
//!
//! TLS 1.2 and 1.3 (rustls with the ring provider).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM input holds no usable item, or does not parse.
    #[error("{what}: {reason}")]
    Pem {
        /// Which input (certificate, key, CA).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// rustls refused the material (key does not match the certificate, no trust anchor, …).
    #[error("{what}: {reason}")]
    Rustls {
        /// Which step.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> TlsSetupError {
    move |e| TlsSetupError::Rustls {
        what,
        reason: e.to_string(),
    }
}

/// Every certificate of a PEM input (at least one).
pub fn certs(
    what: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Pem {
            what,
            reason: "no certificate".into(),
        });
    }
    Ok(certs)
}

fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsSetupError::Pem {
        what: "key",
        reason: e.to_string(),
    })
}

fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, TlsSetupError> {
    let mut store = RootCertStore::empty();
    for c in certs("CA", ca_pem)? {
        store.add(c).map_err(rustls_err("CA"))?;
    }
    Ok(Arc::new(store))
}

/// The control node's settings: certificate chain and key; with `ca_pem`, every agent
/// must present a certificate chaining to it.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err("protocol versions"))?;
    let builder = match ca_pem {
        Some(ca) => {
            let v = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                .build()
                .map_err(rustls_err("CA"))?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(certs("certificate", cert_pem)?, key(key_pem)?)
        .map_err(rustls_err("certificate and key"))?;
    Ok(Arc::new(cfg))
}

/// An agent's settings: the control node's chain is verified against `ca_pem` (not its
/// name); with `cert_key` (PEM certificate chain, PEM key) the agent presents them.
pub fn client_config(
    ca_pem: &[u8],
    cert_key: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let inner = WebPkiServerVerifier::builder_with_provider(roots(ca_pem)?, provider())
        .build()
        .map_err(rustls_err("CA"))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err("protocol versions"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)));
    let cfg = match cert_key {
        Some((c, k)) => builder
            .with_client_auth_cert(certs("certificate", c)?, key(k)?)
            .map_err(rustls_err("client certificate and key"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The server name a client uses for the control node at `addr`: the address itself (no SNI
/// is sent for an address; the name is not checked).
pub fn server_name(addr: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.into())
}

/// Web PKI verification of the chain, validity and signatures, without the host-name check
/// (TF's client installs none).
#[derive(Debug)]
pub struct ChainOnly(Arc<WebPkiServerVerifier>);

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
