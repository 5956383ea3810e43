//! TLS for client connections (rustls with ring). A certificate that cannot be loaded stops the
//! server: it never falls back to plaintext.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::{self, ServerConfig};

use crate::ServeError;

pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<pgwire::tokio::TlsAcceptor, ServeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let err = |what: &'static str, path: &Path, reason: String| ServeError::Tls {
        what,
        path: path.display().to_string(),
        reason,
    };
    let cert_file = File::open(cert).map_err(|e| err("certificate", cert, e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(cert_file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("certificate", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(err("certificate", cert, "no PEM certificate found".into()));
    }
    let key_file = File::open(key).map_err(|e| err("private key", key, e.to_string()))?;
    let private_key = rustls_pemfile::private_key(&mut BufReader::new(key_file))
        .map_err(|e| err("private key", key, e.to_string()))?
        .ok_or_else(|| err("private key", key, "no PEM private key found".into()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| err("certificate", cert, e.to_string()))?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}
