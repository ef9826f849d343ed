//! The master's HTTP client: forwarding requests to the leader and asking peers questions.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// One pooled HTTP/1 client, shared.
#[derive(Clone)]
pub struct PeerClient {
    client: Client<HttpConnector, Body>,
}

impl Default for PeerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerClient {
    /// A client with connection pooling and TCP_NODELAY.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        PeerClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
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
        let request = Request::get(format!("http://{addr}{path}"))
            .body(Body::empty())
            .ok()?;
        let (status, body) = tokio::time::timeout(wait, self.exchange(request))
            .await
            .ok()??;
        status.is_success().then_some(body)
    }

    /// `POST http://{addr}{path}` with a JSON body; the status and JSON answer.
    pub async fn post_json(
        &self,
        addr: &str,
        path: &str,
        body: &Value,
        wait: Duration,
    ) -> Option<(StatusCode, Value)> {
        let request = Request::post(format!("http://{addr}{path}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .ok()?;
        tokio::time::timeout(wait, self.exchange(request))
            .await
            .ok()?
    }

    async fn exchange(&self, request: Request<Body>) -> Option<(StatusCode, Value)> {
        let response = self.client.request(request).await.ok()?;
        let status = response.status();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Some((status, body))
    }
}
