//! The launch queue: `GET /v2/queue` (apps with instances waiting, why, and their launch
//! delay) and `GET`/`DELETE /v2/queue/{app}/delay` (an app's backoff after failures, and its
//! reset), in Marathon's shapes (`queue.raml`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use client::{Delay, DelayResult, Queue, QueueItem};
use state::Command;

use crate::error::ApiError;
use crate::node::RaftNode;
use crate::scheduler::QueueEntry;

/// An entry's delay at `now_ms`, as Marathon shows it: whole seconds left, and whether the
/// launch may happen (the delay is over).
fn delay(entry: &QueueEntry, now_ms: u64) -> Delay {
    let left = entry
        .delayed_until_ms
        .map_or(0, |u| u.saturating_sub(now_ms));
    Delay {
        time_left_seconds: left / 1000,
        overdue: left == 0,
    }
}

/// `GET /v2/queue`: apps with instances waiting, with the counted reasons and the delay.
pub async fn list(
    State(m): State<Arc<RaftNode>>,
    State(queue): State<Arc<crate::scheduler::Queue>>,
) -> Result<Json<Queue>, ApiError> {
    m.linearizable().await?;
    let now = m.clock().now_ms();
    let entries = queue.entries();
    let queue: Vec<QueueItem> = m.state().read(|a| {
        entries
            .iter()
            .filter_map(|(id, e)| {
                let app = a.state.app(id)?;
                Some(QueueItem {
                    app: super::apps::definition_map(&app.current().app),
                    count: e.unplaced,
                    delay: delay(e, now),
                    processed_offers_summary: client::OffersSummary::from_reasons(
                        &e.reasons,
                        e.error.clone(),
                    ),
                })
            })
            .collect()
    });
    Ok(Json(Queue { queue }))
}

/// The app a `/v2/queue/{app}/delay` path names; any other path under `/v2/queue/` is a 404.
fn delay_app(path: &str) -> Result<domain::AppId, ApiError> {
    let raw = path.strip_suffix("/delay").ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("/v2/queue/{path}: only /v2/queue/{{app}}/delay is served under /v2/queue"),
        )
    })?;
    super::apps::app_id(raw)
}

/// `GET /v2/queue/{app}/delay`: the app's launch delay (Marathon's `DelayResult`): the
/// backoff after its latest failures, its cap, and while it waits in the queue the time
/// left.
pub async fn get_delay(
    State(m): State<Arc<RaftNode>>,
    State(queue): State<Arc<crate::scheduler::Queue>>,
    Path(path): Path<String>,
) -> Result<Json<DelayResult>, ApiError> {
    let id = delay_app(&path)?;
    m.linearizable().await?;
    let now = m.clock().now_ms();
    let queued = queue.entries().remove(&id);
    m.state().read(|a| {
        let app = a
            .state
            .app(&id)
            .ok_or_else(|| ApiError::app_not_found(id.as_str()))?;
        let backoff = a.state.backoffs().get(&id);
        Ok(Json(DelayResult {
            queue_delay: queued.map(|e| delay(&e, now)),
            current_delay_seconds: backoff.map_or(0, |b| b.delay_ms / 1000),
            max_launch_delay_seconds: app.current().app.max_launch_delay_seconds as u64,
        }))
    })
}

/// `DELETE /v2/queue/{app}/delay`: resets the app's launch backoff, so its next launch
/// happens at once (the next failure starts again at `backoffSeconds`). 204 with no body, as
/// Marathon; 404 for an unknown app.
pub async fn reset_delay(
    State(m): State<Arc<RaftNode>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let id = delay_app(&path)?;
    m.linearizable().await?;
    if m.state().read(|a| a.state.app(&id).is_none()) {
        return Err(ApiError::app_not_found(id.as_str()));
    }
    m.write(Command::ClearBackoff { app_id: id }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
