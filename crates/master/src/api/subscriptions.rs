//! `/v2/eventSubscriptions`: HTTP callback URLs that the leader POSTs every event to
//! (Marathon's `http_callback` subscriber). The URLs are replicated; delivery is
//! [`crate::callbacks`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use client::EventSubscriptions;
use client::events::Event;
use serde::Deserialize;
use serde_json::Value;
use state::{Command, Response as Applied};

use crate::callbacks::CallbackUrl;
use crate::error::ApiError;
use crate::events::EventBus;
use crate::node::RaftNode;

/// The query of `POST` and `DELETE`: `?callbackUrl=URL` (URL-encoded).
#[derive(Debug, Deserialize)]
pub struct Subscription {
    #[serde(rename = "callbackUrl")]
    callback_url: Option<String>,
}

impl Subscription {
    /// The checked URL: 400 when there is none, 422 when it is not one drover delivers to.
    fn url(&self) -> Result<CallbackUrl, ApiError> {
        let Some(text) = self.callback_url.as_deref() else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Missing the callbackUrl query parameter: send ?callbackUrl=http://HOST:PORT/PATH (URL-encoded); nothing was done.",
            ));
        };
        CallbackUrl::parse(text)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
    }
}

/// `GET /v2/eventSubscriptions`: `{"callbackUrls": [...]}`.
pub async fn list(State(m): State<Arc<RaftNode>>) -> Result<Json<EventSubscriptions>, ApiError> {
    m.linearizable().await?;
    let callback_urls = m
        .state()
        .read(|a| a.state.event_subscriptions().iter().cloned().collect());
    Ok(Json(EventSubscriptions { callback_urls }))
}

/// `POST /v2/eventSubscriptions?callbackUrl=URL`: subscribes the URL (again is no change)
/// and answers with the `subscribe_event` it published, as Marathon does.
pub async fn subscribe(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Query(query): Query<Subscription>,
) -> Result<Json<Value>, ApiError> {
    let url = query.url()?;
    let callback_url = url.as_str().to_string();
    match m
        .write(Command::Subscribe {
            callback_url: callback_url.clone(),
        })
        .await?
    {
        Applied::Ok => Ok(Json(events.publish_and_show(Event::SubscribeEvent {
            client_ip: None,
            callback_url,
        }))),
        Applied::Conflict { message } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{message}; nothing was done."),
        )),
        other => Err(unexpected(&other)),
    }
}

/// `DELETE /v2/eventSubscriptions?callbackUrl=URL`: unsubscribes the URL and answers with
/// the `unsubscribe_event` it published. A URL that was not subscribed is answered the same
/// way (as Marathon): afterwards it is not subscribed either way.
pub async fn unsubscribe(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Query(query): Query<Subscription>,
) -> Result<Json<Value>, ApiError> {
    let url = query.url()?;
    let callback_url = url.as_str().to_string();
    match m
        .write(Command::Unsubscribe {
            callback_url: callback_url.clone(),
        })
        .await?
    {
        Applied::Ok | Applied::NotFound { .. } => {
            Ok(Json(events.publish_and_show(Event::UnsubscribeEvent {
                client_ip: None,
                callback_url,
            })))
        }
        other => Err(unexpected(&other)),
    }
}

fn unexpected(answer: &Applied) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("unexpected answer of the state machine to an event subscription: {answer:?}"),
    )
}
