//! TLS over any axum [`Listener`]: handshakes run off the accept path (a slow or silent
//! client holds up nobody), and each connection's verified client certificate becomes its
//! [`PeerCertificate`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const BACKLOG: usize = 128;

/// A listener that serves TLS under one server configuration.
pub struct TlsListener<L: Listener> {
    incoming: mpsc::Receiver<(TlsStream<L::Io>, L::Addr)>,
    local_addr: io::Result<L::Addr>,
    accepting: tokio::task::AbortHandle,
}

impl<L: Listener> Drop for TlsListener<L> {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl<L> TlsListener<L>
where
    L: Listener,
    L::Addr: Clone + Send + 'static,
{
    /// Accepts on `inner` and handshakes under `config`.
    pub fn new(mut inner: L, config: Arc<rustls::ServerConfig>) -> Self {
        let local_addr = inner.local_addr();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, incoming) = mpsc::channel(BACKLOG);
        let accepting = tokio::spawn(async move {
            loop {
                let (io, addr) = inner.accept().await;
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        // A client of the wrong CA, a plain-HTTP client, a port scan.
                        Ok(Err(e)) => tracing::debug!("TLS handshake refused: {e}"),
                        Err(_) => tracing::debug!("TLS handshake not finished in time"),
                    }
                });
            }
        })
        .abort_handle();
        TlsListener {
            incoming,
            local_addr: local_addr.map_err(io::Error::other),
            accepting,
        }
    }
}

impl<L> Listener for TlsListener<L>
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    type Io = TlsStream<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept task ended (it never does while the listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local_addr {
            Ok(addr) => Ok(addr.clone()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// The client certificate a connection presented (verified against the cluster CA during
/// the handshake), if it presented one.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<CertificateDer<'static>>);

impl<L> Connected<IncomingStream<'_, TlsListener<L>>> for PeerCertificate
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    fn connect_info(stream: IncomingStream<'_, TlsListener<L>>) -> Self {
        let (_, session) = stream.io().get_ref();
        PeerCertificate(
            session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.clone().into_owned()),
        )
    }
}
