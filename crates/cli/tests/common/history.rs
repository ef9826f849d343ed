//! The history checker of app writes: given the writes clients issued to one app (each
//! acknowledged, failed or of unknown outcome) and what the cluster holds at the end, is
//! the history linearizable? Used by `linearizability.rs` (real processes, SIGKILL) and by
//! the simulation (`sim.rs`); the checks are described in `linearizability.rs`.

use std::collections::{BTreeMap, HashSet};

/// Which write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /v2/apps`.
    Create,
    /// `PUT /v2/apps/{id}` (creates or replaces).
    Put,
    /// `DELETE /v2/apps/{id}`.
    Delete,
}

/// How a write ended, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer, with its status.
    Acknowledged(u16),
    /// Certainly without effect (a 4xx, or never sent).
    Failed(String),
    /// May or may not have taken effect.
    Unknown(String),
}

/// One write as the client issued it.
#[derive(Debug, Clone)]
pub struct Op {
    /// Unique op id; for creates and updates also the app's `labels.op`.
    pub id: String,
    /// The app it writes.
    pub app: String,
    /// Which write.
    pub kind: Kind,
    /// The master it was sent to.
    pub via: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl Op {
    /// Whether it writes `labels.op` (creates and updates do, deletes do not).
    pub fn writes_label(&self) -> bool {
        self.kind != Kind::Delete
    }

    /// The state it leaves: `Some(op id)` for a create or update, `None` (absent) for a delete.
    pub fn effect(&self) -> Option<String> {
        self.writes_label().then(|| self.id.clone())
    }
}

/// Sort key of a Marathon version timestamp (`2024-05-01T10:00:00.123Z`): the part before
/// the fraction, then the fraction in nanoseconds, so that `.1` and `.12` compare right.
pub fn version_key(v: &str) -> (String, u64) {
    let (base, rest) = match v.split_once('.') {
        Some((b, r)) => (b.to_string(), r),
        None => (v.trim_end_matches('Z').to_string(), ""),
    };
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(9)
        .collect();
    let nanos = format!("{digits:0<9}").parse().unwrap_or(0);
    (base, nanos)
}

/// What the cluster holds for one app at the end.
#[derive(Debug)]
pub struct Observed {
    /// `labels.op` of the current app, or None when it does not exist.
    pub current: Option<String>,
    /// `labels.op` of every version, oldest first.
    pub history: Vec<String>,
}

/// What is wrong with one app's history (empty: nothing).
pub fn check(app_id: &str, ops: &[&Op], seen: &Observed) -> Vec<String> {
    let mut errors = Vec::new();
    let index: BTreeMap<&str, usize> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let last_ack = ops
        .iter()
        .rposition(|o| matches!(o.outcome, Outcome::Acknowledged(_)));

    // 1. Final state.
    let mut allowed: Vec<Option<String>> = match last_ack {
        Some(i) => vec![ops[i].effect()],
        None => vec![None],
    };
    let after = last_ack.map_or(0, |i| i + 1);
    for o in &ops[after..] {
        if matches!(o.outcome, Outcome::Unknown(_)) {
            allowed.push(o.effect());
        }
    }
    if !allowed.contains(&seen.current) {
        errors.push(format!(
            "{app_id}: final state {:?}, but the last acknowledged op ({}) and the unknown ops after it allow only {allowed:?}",
            seen.current,
            last_ack.map_or("none".to_string(), |i| format!("{:?} {}", ops[i].kind, ops[i].id)),
        ));
    }

    // 2. Acknowledged creates and updates are in the history unless a later delete may
    // have removed it.
    for (i, o) in ops.iter().enumerate() {
        if !(o.writes_label() && matches!(o.outcome, Outcome::Acknowledged(_))) {
            continue;
        }
        let deleted_later = ops[i + 1..].iter().any(|d| {
            d.kind == Kind::Delete
                && matches!(d.outcome, Outcome::Acknowledged(_) | Outcome::Unknown(_))
        });
        if !deleted_later && !seen.history.contains(&o.id) {
            errors.push(format!(
                "{app_id}: acknowledged {:?} {} (via {}) is missing from the version history {:?}",
                o.kind, o.id, o.via, seen.history
            ));
        }
    }

    // 3. No duplicates.
    let mut once = HashSet::new();
    for op in &seen.history {
        if !once.insert(op) {
            errors.push(format!(
                "{app_id}: op {op} appears twice in the version history {:?}",
                seen.history
            ));
        }
    }

    // 4. No phantoms, 5. order.
    let mut previous: Option<usize> = None;
    for op in &seen.history {
        match index.get(op.as_str()) {
            None => errors.push(format!(
                "{app_id}: version history holds {op}, which no client wrote to this app"
            )),
            Some(&i) => {
                let o = ops[i];
                if !o.writes_label() || matches!(o.outcome, Outcome::Failed(_)) {
                    errors.push(format!(
                        "{app_id}: version history holds {op}, a {:?} that failed: {:?}",
                        o.kind, o.outcome
                    ));
                }
                if previous.is_some_and(|p| p >= i) {
                    errors.push(format!(
                        "{app_id}: version history {:?} is not in the order the writes were issued",
                        seen.history
                    ));
                }
                previous = Some(i);
            }
        }
    }
    if let Some(current) = &seen.current
        && seen.history.last() != Some(current)
    {
        errors.push(format!(
            "{app_id}: the current app has op {current} but the newest version has {:?}",
            seen.history.last()
        ));
    }
    errors
}
