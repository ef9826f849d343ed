//! Where new instance ids come from: random in production, counted in tests, so that a
//! scheduler decision can be compared with an expected one.

use domain::AppId;
use state::InstanceId;

/// Makes the ids of new instances.
pub trait IdSource {
    /// A new, unique id for an instance of `app`.
    fn instance_id(&mut self, app: &AppId) -> InstanceId;
}

/// Marathon-style ids with a random UUID: `prod_web.instance-<uuid>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidIds;

impl IdSource for UuidIds {
    fn instance_id(&mut self, app: &AppId) -> InstanceId {
        InstanceId(format!(
            "{}.instance-{}",
            base(app),
            state::runtime::uuid_v4()
        ))
    }
}

/// Ids numbered in the order they are asked for: `prod_web.instance-1`, `-2`, … (tests).
#[derive(Debug, Default, Clone)]
pub struct CountedIds {
    next: u64,
}

impl IdSource for CountedIds {
    fn instance_id(&mut self, app: &AppId) -> InstanceId {
        self.next += 1;
        InstanceId(format!("{}.instance-{}", base(app), self.next))
    }
}

/// An app id as the first part of an instance id: `/prod/web` → `prod_web`.
fn base(app: &AppId) -> String {
    app.as_str().trim_start_matches('/').replace('/', "_")
}
