//! The TCP proxy: one client connection to one backend, bytes both ways until either closes.

use std::sync::atomic::Ordering;

use tokio::net::TcpStream;

use crate::balancer::Balancer;
use crate::routes::Service;

/// Proxies `client` to a backend of `service` until either side closes. A connection that
/// finds no backend is closed at once (the client sees a reset or an end of stream).
pub async fn proxy(mut client: TcpStream, service: &Service, balancer: &Balancer) {
    let _ = client.set_nodelay(true);
    let (mut backend, active) = match balancer.connect(service).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("closing a connection: {e}");
            return;
        }
    };
    match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        Ok((sent, received)) => {
            active.stats.bytes_sent.fetch_add(sent, Ordering::Relaxed);
            active
                .stats
                .bytes_received
                .fetch_add(received, Ordering::Relaxed);
        }
        Err(e) => {
            active.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("connection to {} ended: {e}", active.addr);
        }
    }
}
