//! `POST /v1/plan`: where an app's instances would go on the live cluster, and why not —
//! the same answer as `drover plan --json`, without deploying anything.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use client::{Plan, PlannedInstance};
use domain::AppDefinition;
use domain::placement::{ExistingInstance, Snapshot, place};
use serde_json::Value;

use crate::error::ApiError;
use crate::node::RaftNode;
use crate::scheduler::live_agents;

/// `POST /v1/plan` with a Marathon app definition.
pub async fn plan(State(m): State<Arc<RaftNode>>, body: Bytes) -> Result<Json<Plan>, ApiError> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid JSON: {e}. Send a Marathon app definition."),
        )
    })?;
    let app = AppDefinition::from_json(&value).map_err(|errors| ApiError::invalid(&errors))?;
    m.linearizable().await?;
    Ok(Json(m.state().read(|a| {
        let s = &a.state;
        let local = s
            .local_region()
            .unwrap_or(m.config().domain.region.as_str())
            .to_string();
        let agents = live_agents(s);
        let existing: Vec<ExistingInstance> = s
            .instances_of(&app.id)
            .filter(|i| !i.condition.is_terminal())
            .map(|i| ExistingInstance {
                agent_id: i.agent_id.clone(),
            })
            .collect();
        let missing = app.instances.saturating_sub(existing.len() as u32);
        let result = place(
            &app,
            missing,
            &Snapshot {
                local_region: &local,
                agents: &agents,
                existing: &existing,
            },
        );
        let placements = result
            .placements
            .iter()
            .map(|p| {
                let agent = &agents[p.agent_index];
                PlannedInstance {
                    agent_id: agent.id.to_string(),
                    hostname: agent.hostname.clone(),
                    region: agent.region().unwrap_or(&local).to_string(),
                    zone: agent.zone().map(str::to_string),
                    ports: p.ports.clone(),
                }
            })
            .collect();
        Plan {
            running: Some(existing.len()),
            placements,
            unplaced: result.unplaced,
            reasons: result.reasons,
            local_region: local,
        }
    })))
}
