//! The master's HTTP client: forwarding requests to the leader and asking peers questions.

use std::time::Duration;

use axum::body::Body;
pub use axum::http::Method;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use serde_json::Value;
use state::transport::Connector;

/// One pooled HTTP/1 client, shared.
#[derive(Clone)]
pub struct PeerClient {
    client: Client<Connector, Body>,
}

impl Default for PeerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerClient {
    /// A client over TCP with connection pooling, TCP_NODELAY and a 2 s connect limit.
    pub fn new() -> Self {
        Self::with_connector(Connector::tcp(Some(Duration::from_secs(2))))
    }

    /// A pooled client that opens connections with `connector` (a test's or a simulation's
    /// transport).
    pub fn with_connector(connector: Connector) -> Self {
        PeerClient {
            client: state::transport::client(connector),
        }
    }

    /// Sends a request as is (the URI must be absolute) and returns the answer unread.
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }

    /// `GET http://{addr}{path}` as JSON, or `None` if it fails or takes longer than `wait`.
    pub async fn get_json(&self, addr: &str, path: &str, wait: Duration) -> Option<Value> {
        match self.call(Method::GET, addr, path, None, wait).await {
            Ok((status, body)) if status.is_success() => Some(body),
            _ => None,
        }
    }

    /// How long a peer's `/health` may take to answer before it counts as not answering.
    pub const HEALTH_WAIT: Duration = Duration::from_millis(700);

    /// A peer's `/health`, if it answers in time with that shape (another master of any
    /// drover version: fields it does not send take their defaults).
    pub async fn health(&self, addr: &str) -> Option<client::ProcessHealth> {
        let answer = self.get_json(addr, "/health", Self::HEALTH_WAIT).await?;
        serde_json::from_value(answer).ok()
    }

    /// `POST http://{addr}{path}` with a JSON body; the status and JSON answer.
    pub async fn post_json(
        &self,
        addr: &str,
        path: &str,
        body: &Value,
        wait: Duration,
    ) -> Option<(StatusCode, Value)> {
        self.call(Method::POST, addr, path, Some(body), wait)
            .await
            .ok()
    }

    /// Any JSON call: the status and the JSON answer (`null` when the body is not JSON), or
    /// why there is none.
    pub async fn call(
        &self,
        method: Method,
        addr: &str,
        path: &str,
        body: Option<&Value>,
        wait: Duration,
    ) -> Result<(StatusCode, Value), CallError> {
        self.call_as(method, addr, path, body, None, wait).await
    }

    /// [`PeerClient::call`] with an ACL token's secret, sent as `Authorization: Bearer`.
    pub async fn call_as(
        &self,
        method: Method,
        addr: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        wait: Duration,
    ) -> Result<(StatusCode, Value), CallError> {
        let url = format!("http://{addr}{path}");
        let mut request = Request::builder().method(method).uri(&url);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .map_err(|e| CallError::Request(url.clone(), e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| CallError::Unreachable(addr.to_string(), innermost(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Unreachable(addr.to_string(), e.to_string()))?
                .to_bytes();
            Ok((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ))
        };
        tokio::time::timeout(wait, exchange)
            .await
            .map_err(|_| CallError::Timeout(addr.to_string(), wait))?
    }
}

/// Why a call got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The request could not be built (a bad address).
    #[error("cannot build a request to {0}: {1}")]
    Request(String, String),
    /// Nothing answers at the address.
    #[error("{0} does not answer: {1}")]
    Unreachable(String, String),
    /// No answer in time.
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
}

/// The innermost cause of an error ("Connection refused"), which is what people need.
pub(crate) fn innermost(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use serde_json::json;
    use state::transport::Stream;

    use super::*;

    #[tokio::test]
    async fn a_peer_client_reaches_its_peers_through_the_connector_given() {
        let peer = axum::Router::new().route(
            "/health",
            get(|| async { axum::Json(json!({"region": "local"})) }),
        );
        let dialled: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = dialled.clone();
        let client = PeerClient::with_connector(Connector::new(move |uri: hyper::Uri| {
            seen.lock().unwrap().push(uri.to_string());
            let (client, server) = tokio::io::duplex(64 * 1024);
            let service = TowerToHyperService::new(peer.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(server), service)
                    .await;
            });
            async move { Ok(Stream::tokio(client)) }
        }));
        let health = client
            .get_json(
                "master-2.simulated:8080",
                "/health",
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(health, Some(json!({"region": "local"})));
        assert_eq!(
            *dialled.lock().unwrap(),
            ["http://master-2.simulated:8080/"]
        );
    }
}
