//! Leadership, health, info, metrics, and the internal endpoints masters use.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use client::system::{
    DroverInfo, HttpConfig, MarathonConfig, RaftInfo, RaftMember, ZooKeeperConfig,
};
use client::{Info, Leader, Message, ProcessHealth};
use state::network::{MASTER_PROTOCOL, MASTER_PROTOCOL_UNSUPPORTED, RaftRpc};
use state::{Command, Response as Applied};

use crate::callbacks::CallbackMetrics;
use crate::clock::Rarely;
use crate::error::ApiError;
use crate::node::{RaftNode, Role, TransferRequest};

/// `GET /ping`.
pub async fn ping() -> &'static str {
    "pong"
}

/// `GET /health`: this process, whatever the cluster's state.
pub async fn health(State(m): State<Arc<RaftNode>>) -> Json<ProcessHealth> {
    let metrics = m.raft().metrics().borrow().clone();
    let (cluster_id, registered_masters) = m.state().read(|a| {
        (
            a.state.cluster_id().map(str::to_string),
            a.state.masters().keys().copied().collect::<Vec<_>>(),
        )
    });
    Json(ProcessHealth {
        id: m.config().id,
        role: m.role().as_str().to_string(),
        term: metrics.current_term,
        leader: m.leader().map(|(_, addr)| addr),
        region: m.config().domain.region.clone(),
        zone: m.config().domain.zone.clone(),
        initialized: metrics.last_log_index.is_some(),
        cluster_id,
        registered_masters,
        members: m.members().into_keys().collect(),
    })
}

/// `GET /v2/leader`.
pub async fn leader(State(m): State<Arc<RaftNode>>) -> Result<Json<Leader>, ApiError> {
    match m.leader() {
        Some((_, addr)) => Ok(Json(Leader { leader: addr })),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "There is no leader")),
    }
}

/// How long a handover asked for by `DELETE /v2/leader` may take before this master leads on.
const HAND_OVER_WAIT: Duration = Duration::from_secs(5);

/// `DELETE /v2/leader`: the leader (requests are forwarded to it) hands leadership to an
/// up-to-date follower ([`RaftNode::hand_over`]). Like Marathon it answers at once; the
/// handover takes a round trip or two, and a handover that cannot happen is logged. A
/// cluster of one master has nobody to hand to: 409.
pub async fn abdicate(State(m): State<Arc<RaftNode>>) -> Result<Json<Message>, ApiError> {
    if !m.has_other_voter() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{}; nothing was done",
                crate::node::HandOverError::NoOtherVoter(m.config().id)
            ),
        ));
    }
    tokio::spawn(async move {
        // The outcome is logged by `hand_over`.
        let _ = m.hand_over(HAND_OVER_WAIT).await;
    });
    Ok(Json(Message {
        message: "Leadership abdicated".into(),
    }))
}

/// `POST /internal/raft/transfer`: the leader hands leadership to this master, which stands
/// for election at once if it is the leader's follower in its term with its whole log; 409
/// with the reason otherwise.
pub async fn take_over(
    State(m): State<Arc<RaftNode>>,
    Json(request): Json<TransferRequest>,
) -> Result<Json<Message>, ApiError> {
    m.take_over(&request)
        .await
        .map_err(|why| ApiError::new(StatusCode::CONFLICT, why))?;
    Ok(Json(Message {
        message: format!("master {} stands for election", m.config().id),
    }))
}

/// `GET /v2/info`: Marathon's fields only.
pub async fn info(State(m): State<Arc<RaftNode>>) -> Json<Info> {
    let leader = m.leader().map(|(_, addr)| addr);
    let cluster_id = m.state().read(|a| a.state.cluster_id().map(str::to_string));
    Json(Info {
        name: "drover".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        leader,
        elected: m.role() == Role::Leader && !m.abdicating(),
        framework_id: cluster_id,
        http_config: HttpConfig {
            http_port: m.config().listen.port(),
        },
        marathon_config: MarathonConfig {
            framework_name: "drover".into(),
            ha: m.voter_count() > 1,
            hostname: m.config().listen.ip().to_string(),
            features: Vec::new(),
        },
        zookeeper_config: ZooKeeperConfig::default(),
    })
}

/// `GET /v1/info`: this master, its fault domain and its Raft figures.
pub async fn drover_info(State(m): State<Arc<RaftNode>>) -> Json<DroverInfo> {
    let figures = m.raft_figures();
    let members = m
        .members()
        .into_iter()
        .map(|(id, address)| RaftMember { id, address })
        .collect();
    Json(DroverInfo {
        id: m.config().id,
        region: m.config().domain.region.clone(),
        zone: m.config().domain.zone.clone(),
        raft: RaftInfo {
            term: figures.term,
            state: m.role().as_str().to_string(),
            members,
            commit_index: figures.applied,
            last_log_index: figures.last_log,
        },
    })
}

/// `GET /metrics`: Prometheus text (the callback subscribers' counts included).
pub async fn metrics(
    State(m): State<Arc<RaftNode>>,
    State(callbacks): State<Arc<CallbackMetrics>>,
) -> Response {
    let mut text = m.metrics().render(&m.raft_figures());
    callbacks.render(m.config().id, &mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `POST /internal/raft/{append|vote|snapshot}`.
pub async fn raft_rpc(
    State(m): State<Arc<RaftNode>>,
    Path(rpc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(rpc) = RaftRpc::from_path(&format!("/internal/raft/{rpc}")) else {
        return ApiError::new(StatusCode::NOT_FOUND, format!("no Raft RPC named {rpc}"))
            .into_response();
    };
    // A peer with which this master shares no protocol would be misread: refused before
    // Raft sees the request, naming both sides' versions.
    let (oldest, newest) = state::network::sender_protocols(&headers);
    if let Some(problem) =
        state::network::unsupported_master_protocol("the sending master", oldest, newest)
    {
        // Every heartbeat is refused: said once a minute, not ten times a second.
        if RAFT_REFUSALS_LOGGED.due(m.clock().now_ms()) {
            tracing::warn!("refused a Raft RPC: {problem}");
        }
        let body = serde_json::json!({"message": problem, "reason": MASTER_PROTOCOL_UNSUPPORTED});
        return (StatusCode::CONFLICT, Json(body)).into_response();
    }
    // A candidate that is not a member (a removed master that did not stop) gets no vote:
    // refused before Raft sees it, so it cannot disturb the cluster.
    if rpc == RaftRpc::Vote
        && let Some(candidate) = state::network::vote_candidate(&body)
    {
        let members = m.members();
        if !members.is_empty() && !members.contains_key(&candidate) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "master {candidate} is not a member of this cluster (it was removed); it gets no vote. Stop it, or wipe its data dir and start it with --join"
                ),
            )
            .into_response();
        }
    }
    match state::network::answer(m.raft(), rpc, &body).await {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    HeaderName::from_static(state::network::PROTOCOL_HEADER),
                    HeaderValue::from(MASTER_PROTOCOL),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot decode the Raft request: {e}"),
        )
        .into_response(),
    }
}

/// `POST /internal/masters`: records a master in the registry; 409 when its region differs
/// from the cluster's.
pub async fn register_master(
    State(m): State<Arc<RaftNode>>,
    Json(reg): Json<client::system::MasterAnnouncement>,
) -> Result<Json<Message>, ApiError> {
    refuse_announcement(&reg)?;
    let answer = m
        .write(Command::PutMaster {
            id: reg.id,
            protocol: reg.protocols().1,
            addr: reg.addr,
            domain: Some(reg.domain),
        })
        .await?;
    match answer {
        Applied::Conflict { message } => Err(ApiError::new(StatusCode::CONFLICT, message)),
        _ => Ok(Json(Message {
            message: "registered".into(),
        })),
    }
}

/// Refused Raft RPCs are logged at most once a minute.
static RAFT_REFUSALS_LOGGED: Rarely = Rarely::every(Duration::from_secs(60));

/// Refuses a master's registration or join when it shares no master protocol with this
/// one (409, which a registering master stops on with the message, and a joining one logs).
pub fn refuse_announcement(a: &client::system::MasterAnnouncement) -> Result<(), ApiError> {
    let (oldest, newest) = a.protocols();
    let who = format!("master {} ({})", a.id, a.addr);
    match state::network::unsupported_master_protocol(&who, oldest, newest) {
        Some(problem) => {
            tracing::warn!("refused a master: {problem}");
            Err(ApiError::new(StatusCode::CONFLICT, problem))
        }
        None => Ok(()),
    }
}

/// Any path no route matches: Marathon's JSON 404.
pub async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "No endpoint {method} {}; see docs/operations.md for the API",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::system::MasterAnnouncement;

    fn announcement(protocols: serde_json::Value) -> MasterAnnouncement {
        let mut body = serde_json::json!({
            "id": 2, "addr": "127.0.0.2:7070",
            "domain": {"fault_domain": {"region": {"name": "local"}, "zone": {"name": "local-a"}}},
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), protocols.as_object()) {
            body.extend(extra.clone());
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_master_released_before_versions_is_accepted_at_protocol_1() {
        let old = announcement(serde_json::json!({}));
        assert_eq!(old.protocols(), (1, 1));
        assert!(refuse_announcement(&old).is_ok());
        let next = announcement(
            serde_json::json!({"protocol": MASTER_PROTOCOL + 1, "oldest_protocol": MASTER_PROTOCOL}),
        );
        assert!(
            refuse_announcement(&next).is_ok(),
            "the next release speaks this one's"
        );
    }

    #[test]
    fn a_master_sharing_no_protocol_is_refused_with_both_versions() {
        let far = announcement(
            serde_json::json!({"protocol": MASTER_PROTOCOL + 2, "oldest_protocol": MASTER_PROTOCOL + 1}),
        );
        let e = refuse_announcement(&far).unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let want = format!(
            "master 2 (127.0.0.2:7070) speaks master protocols {} to {}; this master speaks {} to {MASTER_PROTOCOL}",
            MASTER_PROTOCOL + 1,
            MASTER_PROTOCOL + 2,
            state::network::OLDEST_MASTER_PROTOCOL
        );
        assert!(e.body.message.starts_with(&want), "{}", e.body.message);
    }
}
