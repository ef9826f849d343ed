//! `GET /internal/agents/{id}/vips`: the apps as an agent serving VIPs reads them (see
//! [`crate::vips`]); its event stream is [`crate::events::vip_stream`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use client::AppList;

use super::app_query::AppEmbeds;
use super::apps::listed;
use crate::agents::AgentView;
use crate::error::ApiError;
use crate::node::RaftNode;

/// `GET /internal/agents/{id}/vips`: every app (pods aside, as `/v2/apps` lists them) with
/// its tasks, cut down to the routing fields; agent `id`'s certificate reads it.
pub async fn apps(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
) -> Result<Json<AppList>, ApiError> {
    let embeds = AppEmbeds {
        tasks: true,
        ..AppEmbeds::default()
    };
    m.linearizable().await?;
    let apps = listed(&m, &agents, embeds, |_| true)
        .into_iter()
        .map(crate::vips::app)
        .collect();
    Ok(Json(AppList { apps }))
}
