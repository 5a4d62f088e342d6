//! Optional HTTPS, for deployments without a reverse proxy in front.

use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

pub type Acceptor = tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn acceptor(files: &TlsFiles) -> anyhow::Result<Acceptor> {
    let cert_file = std::fs::File::open(&files.cert)
        .with_context(|| format!("{}: cannot open certificate", files.cert.display()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(cert_file))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: invalid certificate", files.cert.display()))?;
    let key_file = std::fs::File::open(&files.key)
        .with_context(|| format!("{}: cannot open key", files.key.display()))?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(key_file))
        .with_context(|| format!("{}: invalid key", files.key.display()))?
        .with_context(|| format!("{}: no private key found", files.key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not form a valid pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Acceptor::from(Arc::new(config)))
}

/// Completes a TLS handshake, giving up on clients that stall or fail.
pub async fn handshake<S>(acceptor: &Acceptor, stream: S) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}
