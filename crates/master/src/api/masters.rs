//! `/v1/operator/masters`: the Raft membership (list, remove), and the internal endpoints a
//! joining or removed master uses (see [`crate::membership`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use client::Message;
use client::system::{MasterAnnouncement, MasterMember, MastersList};
use serde::Deserialize;

use crate::error::ApiError;
use crate::membership::{self, View};
use crate::node::RaftNode;

fn not_leader() -> ApiError {
    ApiError::unavailable(
        "This master is no longer the leader; nothing was done. Retry: the request will go to the new leader.",
    )
}

/// `GET /v1/operator/masters`: every member with its role, zone, last contact and log lag,
/// as the leader sees them.
pub async fn list(State(m): State<Arc<RaftNode>>) -> Result<Json<MastersList>, ApiError> {
    if !m.is_leader() {
        return Err(not_leader());
    }
    let view = View::of(&m);
    let lags = membership::lags(&m).unwrap_or_default();
    let me = m.config().id;
    let last_log_index = m.raft().metrics().borrow().last_log_index.unwrap_or(0);
    let masters = m.state().read(|a| {
        view.addrs
            .iter()
            .map(|(id, address)| MasterMember {
                id: *id,
                address: address.clone(),
                zone: a
                    .state
                    .masters()
                    .get(id)
                    .and_then(|r| r.domain.as_ref())
                    .map(|d| d.zone.clone()),
                role: if view.voters.contains(id) {
                    "voter"
                } else {
                    "learner"
                }
                .to_string(),
                leader: *id == me,
                last_contact_ms: if *id == me {
                    Some(0)
                } else {
                    m.contacts().since(*id).map(|d| d.as_millis() as u64)
                },
                log_lag: lags.get(id).copied(),
                protocol: a.state.masters().get(id).map(|r| r.protocol),
            })
            .collect()
    });
    Ok(Json(MastersList {
        leader: me,
        last_log_index,
        masters,
    }))
}

/// `DELETE /v1/operator/masters/{id}`: removes a member (see [`membership::remove`]).
pub async fn remove(
    State(m): State<Arc<RaftNode>>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{id}` is not a master id: give the number `drover operator masters` lists"),
        )
    })?;
    membership::remove(&m, id).await?;
    Ok(Json(Message {
        message: format!(
            "master {id} removed from the cluster; stop its process (it stops by itself when it is reachable). To bring it back, wipe its data dir and start it with --join"
        ),
    }))
}

/// `POST /internal/masters/join` (on the leader): adds the master as a learner; 409 when its
/// region is not the cluster's, its id or address belongs to another member, or it shares
/// no master protocol with the leader.
pub async fn join(
    State(m): State<Arc<RaftNode>>,
    Json(req): Json<MasterAnnouncement>,
) -> Result<Json<Message>, ApiError> {
    if !m.is_leader() {
        return Err(not_leader());
    }
    super::system::refuse_announcement(&req)?;
    let region = &m.config().domain.region;
    if &req.domain.region != region {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            state::machine::outside_the_region(req.id, &req.domain.region, region),
        ));
    }
    let message = membership::add_learner(&m, req.id, &req.addr).await?;
    Ok(Json(Message {
        message: message.to_string(),
    }))
}

/// The leader telling a master it was removed.
#[derive(Deserialize)]
pub struct RemovedNotice {
    id: u64,
    leader: String,
}

/// `POST /internal/masters/removed` (answered where it arrives): the master checks with the
/// leader named that it is no longer a member, then stops.
pub async fn removed(
    State(m): State<Arc<RaftNode>>,
    Json(notice): Json<RemovedNotice>,
) -> Result<Json<Message>, ApiError> {
    let me = m.config().id;
    if notice.id != me {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("this is master {me}, not master {}", notice.id),
        ));
    }
    let health = m
        .peers()
        .health(&notice.leader)
        .await
        .ok_or_else(|| ApiError::unavailable(format!("{} does not answer", notice.leader)))?;
    if health.role != "leader" || health.members.is_empty() || health.members.contains(&me) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} is not a leader that removed master {me} (role {}, members {:?})",
                notice.leader, health.role, health.members
            ),
        ));
    }
    m.set_removed();
    Ok(Json(Message {
        message: format!("master {me} stops"),
    }))
}
