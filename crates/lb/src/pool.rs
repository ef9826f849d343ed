//! Keep-alive connections to HTTP backends, driven by the requests that use them.
//!
//! A connection has no task of its own: the task serving the client's connection writes the
//! request, reads the answer's head ([`Pool::send`]) and then its body ([`Relay`]), polling
//! the backend connection itself; when the body is done the connection goes back to the
//! pool. With a task per backend connection every request crossed between two tasks four
//! times (request, answer, body wanted, body sent); here it stays on one.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::balancer::{Active, CONNECT_TIMEOUT};

/// Idle connections kept per backend.
const IDLE_PER_BACKEND: usize = 256;

/// One connection to a backend: the request side and the connection to drive.
struct Conn {
    sender: SendRequest<Incoming>,
    conn: Pin<Box<Connection<TokioIo<TcpStream>, Incoming>>>,
    /// The connection future has completed (closed or failed): never poll it again.
    ended: bool,
}

impl Conn {
    /// Moves the connection on (reads, writes); false once it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && self.conn.as_mut().poll(cx).is_ready() {
            self.ended = true;
        }
        !self.ended
    }
}

/// Why a request did not get an answer from a backend.
pub enum SendFail {
    /// Not sent: the request comes back to go elsewhere.
    NotSent(Box<Request<Incoming>>, String),
    /// Sent, and the backend failed it: not repeated.
    Failed(String),
}

/// The idle connections of one process, by backend.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Conn>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool::default())
    }

    /// The most recently used idle connection to `addr`.
    fn take(&self, addr: SocketAddr) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get_mut(&addr)?.pop()
    }

    /// Keeps `c` for the next request to `addr`, unless it ended or the pool is full.
    fn put(&self, addr: SocketAddr, c: Conn) {
        if c.ended || c.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr).or_default();
        if list.len() < IDLE_PER_BACKEND {
            list.push(c);
        }
    }

    /// Sends `req` to `addr` on an idle connection, else a new one; the answer's body is
    /// read through [`Relay`], which returns the connection when it is done.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut req: Request<Incoming>,
        active: Active,
    ) -> Result<Response<Relay>, (SendFail, Active)> {
        while let Some(c) = self.take(addr) {
            match exchange(c, req).await {
                Ok((resp, c)) => return Ok(self.relay(addr, resp, c, active)),
                // The backend had closed this idle connection: try the next.
                Err(SendFail::NotSent(back, _)) => req = *back,
                Err(e) => return Err((e, active)),
            }
        }
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err((
                    SendFail::NotSent(Box::new(req), format!("{addr}: {e}")),
                    active,
                ));
            }
            Err(_) => {
                let e = format!("{addr}: no answer within {CONNECT_TIMEOUT:?}");
                return Err((SendFail::NotSent(Box::new(req), e), active));
            }
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        {
            Ok(pair) => pair,
            Err(e) => {
                return Err((
                    SendFail::NotSent(Box::new(req), format!("{addr}: {e}")),
                    active,
                ));
            }
        };
        let c = Conn {
            sender,
            conn: Box::pin(conn),
            ended: false,
        };
        match exchange(c, req).await {
            Ok((resp, c)) => Ok(self.relay(addr, resp, c, active)),
            Err(SendFail::NotSent(back, e)) => {
                Err((SendFail::NotSent(back, format!("{addr}: {e}")), active))
            }
            Err(e) => Err((e, active)),
        }
    }

    /// The answer with its body read through a [`Relay`].
    fn relay(
        self: &Arc<Self>,
        addr: SocketAddr,
        resp: Response<Incoming>,
        conn: Conn,
        active: Active,
    ) -> Response<Relay> {
        let (parts, body) = resp.into_parts();
        let mut relay = Relay {
            body,
            conn: Some(conn),
            pool: self.clone(),
            addr,
            active,
        };
        // An answer without a body (HEAD, 204, 304) may never be polled: done already.
        if relay.body.is_end_stream() {
            relay.finish();
        }
        Response::from_parts(parts, relay)
    }
}

/// Sends `req` on `c` once it takes one, driving it until the answer's head is in.
async fn exchange(
    mut c: Conn,
    req: Request<Incoming>,
) -> Result<(Response<Incoming>, Conn), SendFail> {
    // A pooled connection takes the next request once it has finished the last answer.
    let ready = poll_fn(|cx| {
        if !c.drive(cx) {
            return Poll::Ready(Err("the connection was closed".to_string()));
        }
        c.sender.poll_ready(cx).map_err(|e| e.to_string())
    })
    .await;
    if let Err(e) = ready {
        return Err(SendFail::NotSent(Box::new(req), e));
    }
    let mut answer = std::pin::pin!(c.sender.try_send_request(req));
    let answer = poll_fn(|cx| {
        c.drive(cx);
        answer.as_mut().poll(cx)
    })
    .await;
    match answer {
        Ok(resp) => Ok((resp, c)),
        Err(mut e) => match e.take_message() {
            Some(back) => Err(SendFail::NotSent(Box::new(back), e.error().to_string())),
            None => Err(SendFail::Failed(e.into_error().to_string())),
        },
    }
}

/// The body of a backend's answer: drives its connection while it is read, counts its
/// bytes, and returns the connection to the pool at its end. The request counts as active
/// until then. Dropped before its end (the client left), the connection is closed.
pub struct Relay {
    body: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
    addr: SocketAddr,
    active: Active,
}

impl Relay {
    /// Returns the connection to the pool.
    fn finish(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.put(self.addr, c);
        }
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(c) = this.conn.as_mut() {
            c.drive(cx);
        }
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    this.active
                        .stats
                        .bytes_received
                        .fetch_add(d.len() as u64, Ordering::Relaxed);
                }
                if this.body.is_end_stream() {
                    this.finish();
                }
            }
            None => this.finish(),
            Some(Err(_)) => {
                this.active.stats.errors.fetch_add(1, Ordering::Relaxed);
                this.conn = None;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
