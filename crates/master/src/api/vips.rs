//! `GET /internal/agents/{id}/vips`: the apps as an agent serving VIPs reads them (see
//! [`crate::vips`]); its event stream is [`crate::events::vip_stream`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use client::AppList;

use super::app_query::AppEmbeds;
use super::apps::app_with_status;
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
    let apps = m.state().read(|a| {
        a.state
            .apps()
            .values()
            .filter(|r| !r.current().app.is_pod())
            .map(|r| {
                let v = r.current();
                let listed = app_with_status(
                    &agents,
                    &m.config().domain.region,
                    &a.state,
                    v,
                    embeds,
                    m.clock().now_ms(),
                );
                crate::vips::app(listed, &v.app)
            })
            .collect()
    });
    Ok(Json(AppList { apps }))
}
