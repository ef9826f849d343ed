//! The transport between drover's processes: how an HTTP client opens a connection.
//!
//! Every internal HTTP client (the Raft network here, the master's `PeerClient`, the agent's
//! `MasterClient`) is built from a [`Connector`]. In production it is TCP
//! ([`Connector::tcp`]); a test or a simulation replaces it with its own streams
//! ([`Connector::new`]), for example an in-process server over `tokio::io::duplex`, or
//! simulated TCP, so masters and agents can talk inside one process.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;

/// Whatever a connection attempt can fail with (hyper keeps it as the error's source).
pub type ConnectError = Box<dyn std::error::Error + Send + Sync>;

/// A byte stream an HTTP client can run over.
pub trait Io: Read + Write + Send + Unpin + 'static {}

impl<T> Io for T where T: Read + Write + Send + Unpin + 'static {}

/// One connection opened by a [`Connector`].
pub struct Stream(Box<dyn Io>);

impl Stream {
    /// A connection over `io` (hyper's I/O traits; wrap tokio streams in [`TokioIo`]).
    pub fn new(io: impl Io) -> Self {
        Stream(Box::new(io))
    }

    /// A connection over a tokio stream (a `TcpStream`, one end of a `duplex`, …).
    pub fn tokio<T>(io: T) -> Self
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        Stream::new(TokioIo::new(io))
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stream")
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
}

/// A connection attempt in progress.
pub type Connecting = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

/// How a client opens a connection to a URI: TCP, or whatever a test supplies. Cheap to
/// clone (clones share one function); hyper uses it as its connector.
#[derive(Clone)]
pub struct Connector {
    connect: Arc<dyn Fn(Uri) -> Connecting + Send + Sync>,
    name: &'static str,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Connector").field(&self.name).finish()
    }
}

impl Connector {
    /// Plain TCP with `TCP_NODELAY` (requests are small and latency matters more than
    /// packets), giving up a connection attempt after `connect_timeout` if one is given.
    pub fn tcp(connect_timeout: Option<Duration>) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(connect_timeout);
        Connector {
            connect: Arc::new(move |uri| {
                let mut http = http.clone();
                Box::pin(async move {
                    let io = tower_service::Service::call(&mut http, uri).await?;
                    Ok(Stream::new(io))
                })
            }),
            name: "tcp",
        }
    }

    /// The same connections, with TLS over them under `config` (the cluster CA's trust, and
    /// the caller's certificate). The server name checked is the URI's host: an IP address
    /// or a DNS name the server's certificate must carry.
    pub fn with_tls(self, config: Arc<rustls::ClientConfig>) -> Self {
        let tls = tokio_rustls::TlsConnector::from(config);
        let inner = self.connect;
        Connector {
            connect: Arc::new(move |uri: Uri| {
                let tls = tls.clone();
                let host = uri
                    .host()
                    .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
                let plain = inner(uri);
                Box::pin(async move {
                    let host = host.ok_or("the address has no host to check a certificate for")?;
                    let name = rustls_pki_types::ServerName::try_from(host)?;
                    let stream = plain.await?;
                    let secured = tls.connect(name, TokioIo::new(stream)).await?;
                    Ok(Stream::tokio(secured))
                })
            }),
            name: "tls",
        }
    }

    /// A connector that opens connections with `connect` (called once per new connection;
    /// the client pools and reuses them).
    pub fn new<F, Fut>(connect: F) -> Self
    where
        F: Fn(Uri) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Stream, ConnectError>> + Send + 'static,
    {
        Connector {
            connect: Arc::new(move |uri| Box::pin(connect(uri))),
            name: "custom",
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        (self.connect)(uri)
    }
}

/// A pooled HTTP/1 client over `connector`.
pub fn client<B>(connector: Connector) -> hyper_util::client::legacy::Client<Connector, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<ConnectError>,
{
    // Idle connections are timed by tokio's timer, not the system clock: the same in
    // production, the simulated clock in the simulation.
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(connector)
}
