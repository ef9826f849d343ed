//! The simulation's API client: writers that create, update, scale and delete apps
//! through the Marathon API of a master picked at random, each op recorded with its
//! outcome for the linearizability check, and every answer added to the run's trace.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use master::peer::{Method, PeerClient};
use serde_json::{Value, json};

use super::plan::{REMOTE_REGION, Rng};
use crate::common::history::{Kind, Op, Outcome};

/// How long the client waits for one answer: past every server-side timeout, so an op
/// without an answer is one whose fate is unknown.
pub const CALL: Duration = Duration::from_secs(20);

/// What every writer appends to: the ops for the checker and the run's trace.
#[derive(Debug, Default)]
pub struct Record {
    /// Every op, in the order issued (per app, ops never overlap).
    pub ops: Vec<Op>,
    /// One line per answer and per fault, in simulated-time order.
    pub trace: Vec<String>,
    /// Every writer has had its last answer: the history is complete.
    pub writers_done: bool,
}

/// The shape of app a writer creates, drawn from the seed.
fn definition(id: &str, op: &str, rng: &mut Rng) -> Value {
    let instances = rng.between(1, 4);
    let constraints = match rng.below(5) {
        0 => json!([["hostname", "UNIQUE"]]),
        1 => json!([["@zone", "GROUP_BY"]]),
        2 => json!([["@zone", "MAX_PER", "2"]]),
        3 => json!([["@region", "IS", REMOTE_REGION]]),
        _ => json!([]),
    };
    let cpus = [0.1, 0.25, 0.5][rng.below(3) as usize];
    json!({
        "id": id,
        "cmd": format!("serve {op}"),
        "instances": instances,
        "cpus": cpus,
        "mem": 64,
        "constraints": constraints,
        "labels": {"op": op},
    })
}

/// One writer: owns `apps`, issues one op at a time until `until` (simulated time since the
/// start), each through a random master of `masters`.
pub async fn writer(
    name: String,
    apps: Vec<String>,
    masters: Vec<String>,
    until: Duration,
    mut rng: Rng,
    record: Rc<RefCell<Record>>,
) {
    let client = PeerClient::with_connector(super::net::connector());
    let mut present = vec![None::<bool>; apps.len()];
    present.iter_mut().for_each(|p| *p = Some(false));
    let mut n = 0u64;
    while turmoil::sim_elapsed().unwrap_or_default() < until {
        tokio::time::sleep(rng.ms(50, 1_500)).await;
        n += 1;
        let which = rng.below(apps.len() as u64) as usize;
        let app = &apps[which];
        let via = rng.pick(&masters).clone();
        let op_id = format!("{name}-{n}");
        let kind = match present[which] {
            Some(false) => Kind::Create,
            Some(true) if rng.chance(20) => Kind::Delete,
            _ => Kind::Put,
        };
        let (method, path, body) = match kind {
            Kind::Create => (
                Method::POST,
                "/v2/apps".to_string(),
                Some(definition(app, &op_id, &mut rng)),
            ),
            Kind::Put => (
                Method::PUT,
                format!("/v2/apps{app}"),
                Some(definition(app, &op_id, &mut rng)),
            ),
            Kind::Delete => (Method::DELETE, format!("/v2/apps{app}"), None),
        };
        let answer = client
            .call(method.clone(), &via, &path, body.as_ref(), CALL)
            .await;
        let outcome = match &answer {
            Ok((status, _)) if status.is_success() => Outcome::Acknowledged(status.as_u16()),
            Ok((status, body)) if status.is_client_error() => {
                Outcome::Failed(format!("{status} {body}"))
            }
            Ok((status, body)) => Outcome::Unknown(format!("{status} {body}")),
            Err(e) => Outcome::Unknown(e.to_string()),
        };
        present[which] = match (&outcome, kind) {
            (Outcome::Acknowledged(_), Kind::Delete) => Some(false),
            (Outcome::Acknowledged(_), _) => Some(true),
            // 409: it exists; 404: it does not.
            (Outcome::Failed(m), _) if m.starts_with("409") => Some(true),
            (Outcome::Failed(m), _) if m.starts_with("404") => Some(false),
            (Outcome::Failed(_), _) => present[which],
            // Unknown: a create or update may have landed; a put is right either way.
            (Outcome::Unknown(_), Kind::Delete) => None,
            (Outcome::Unknown(_), _) => None,
        };
        let mut r = record.borrow_mut();
        r.trace.push(format!(
            "{:?} {op_id} {method} {path} via {via}: {}",
            turmoil::sim_elapsed().unwrap_or_default(),
            trace_answer(&answer)
        ));
        r.ops.push(Op {
            id: op_id,
            app: app.clone(),
            kind,
            via,
            outcome,
        });
    }
}

/// An answer as the trace keeps it: the status and the body without the fields that name
/// wall-clock time only (they are simulated, so they would match anyway; kept short).
fn trace_answer(
    answer: &Result<(axum::http::StatusCode, Value), master::peer::CallError>,
) -> String {
    match answer {
        Ok((status, body)) => format!("{status} {body}"),
        Err(e) => format!("error {e}"),
    }
}
