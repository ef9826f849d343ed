//! What `GET /v2/apps` and `GET /v2/apps/{id}` are asked for: Marathon's `cmd`, `id` and
//! `label` filters, and the `embed` parameters, with or without the `apps.`/`app.` prefix.

use client::TaskFailure;
use domain::AppDefinition;
use state::{ClusterState, Condition};

use super::label_selector::{LabelSelectorError, LabelSelectors};
use crate::clock;

/// What to embed in each app, beyond the definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppEmbeds {
    /// `tasks`: the live tasks (implies `deployments`, as in Marathon).
    pub tasks: bool,
    /// `counts`: `tasksStaged`, `tasksRunning`, `tasksHealthy`, `tasksUnhealthy`.
    pub counts: bool,
    /// `deployments`: the deployments in progress.
    pub deployments: bool,
    /// `readiness`: `readinessCheckResults`.
    pub readiness: bool,
    /// `lastTaskFailure`: the app's latest failed task, if any is still known.
    pub last_task_failure: bool,
    /// `taskStats`: counts and life times of the live tasks by version.
    pub task_stats: bool,
}

impl AppEmbeds {
    /// Marathon's `GET /v2/apps`: counts and deployments always, the rest when asked.
    pub fn for_list() -> Self {
        AppEmbeds {
            counts: true,
            deployments: true,
            ..AppEmbeds::default()
        }
    }

    /// Marathon's `GET /v2/apps/{id}`: counts, tasks, deployments and lastTaskFailure always.
    pub fn for_one() -> Self {
        AppEmbeds {
            tasks: true,
            counts: true,
            deployments: true,
            last_task_failure: true,
            readiness: false,
            task_stats: false,
        }
    }

    /// Adds one `embed` value (`apps.tasks`, `app.counts`, `tasks`, …). Unknown values are
    /// ignored, as Marathon ignores them.
    pub fn add(&mut self, embed: &str) {
        let name = ["group.apps.", "apps.", "app."]
            .iter()
            .find_map(|p| embed.strip_prefix(p))
            .unwrap_or(embed);
        match name {
            "tasks" => {
                self.tasks = true;
                self.deployments = true;
            }
            "counts" => self.counts = true,
            "deployments" => self.deployments = true,
            "readiness" => self.readiness = true,
            "lastTaskFailure" => self.last_task_failure = true,
            "taskStats" => self.task_stats = true,
            // Deprecated in Marathon, still served.
            "failures" => {
                self.tasks = true;
                self.last_task_failure = true;
                self.deployments = true;
            }
            _ => {}
        }
    }
}

/// The filters and embeds of an apps query.
#[derive(Debug, Clone, Default)]
pub struct AppQuery {
    /// `cmd`: apps whose `cmd` contains this, ignoring case.
    pub cmd: Option<String>,
    /// `id`: apps whose id contains this, ignoring case.
    pub id: Option<String>,
    /// `label`: a label selector query.
    pub label: Option<LabelSelectors>,
    /// The `embed` parameters given.
    pub embeds: Vec<String>,
}

impl AppQuery {
    /// Reads the query's (decoded) parameters; other parameters are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, LabelSelectorError> {
        let mut q = AppQuery::default();
        for (k, v) in pairs {
            match k.as_str() {
                "cmd" => q.cmd = Some(v.clone()),
                "id" => q.id = Some(v.clone()),
                "label" => q.label = Some(LabelSelectors::parse(v)?),
                "embed" => q.embeds.push(v.clone()),
                _ => {}
            }
        }
        Ok(q)
    }

    /// `base` with this query's embeds added.
    pub fn embeds(&self, mut base: AppEmbeds) -> AppEmbeds {
        for e in &self.embeds {
            base.add(e);
        }
        base
    }

    /// True when `app` passes every filter given.
    pub fn matches(&self, app: &AppDefinition) -> bool {
        let contains =
            |needle: &str, hay: &str| hay.to_lowercase().contains(&needle.to_lowercase());
        self.cmd
            .as_deref()
            .is_none_or(|c| app.cmd.as_deref().is_some_and(|cmd| contains(c, cmd)))
            && self
                .id
                .as_deref()
                .is_none_or(|i| contains(i, app.id.as_str()))
            && self.label.as_ref().is_none_or(|l| l.matches(&app.labels))
    }
}

/// The app's latest failed task that the state still holds (failed, error or gone).
pub fn last_task_failure(state: &ClusterState, app: &domain::AppId) -> Option<TaskFailure> {
    let failed = state
        .instances_of(app)
        .filter(|i| {
            matches!(
                i.condition,
                Condition::Failed | Condition::Error | Condition::Gone
            )
        })
        .max_by_key(|i| i.updated_at_ms)?;
    Some(TaskFailure {
        app_id: app.to_string(),
        host: state
            .agent(&failed.agent_id)
            .map(|r| r.agent.hostname.clone())
            .unwrap_or_default(),
        // The state keeps a task's condition, not its agent's message.
        message: String::new(),
        state: super::agents::mesos_task_state(failed.condition).to_string(),
        task_id: failed.id.to_string(),
        timestamp: clock::iso(failed.updated_at_ms),
        version: failed.app_version.clone(),
        slave_id: Some(failed.agent_id.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(v: serde_json::Value) -> AppDefinition {
        AppDefinition::from_json(&v).unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> AppQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AppQuery::from_pairs(&pairs).unwrap()
    }

    /// Marathon's `cmd` and `id` filters: "contains", ignoring case (apps.raml).
    #[test]
    fn id_and_cmd_filters_match_what_contains_them_ignoring_case() {
        let db = app(
            json!({"id": "/us-east/database/memsql", "cmd": "java -jar memsql.jar",
                            "labels": {"tier": "db"}}),
        );
        let web = app(json!({"id": "/us-east/web", "cmd": "python3 -m http.server"}));
        /// Query parameters, and whether the database and the web app pass them.
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool);
        let cases: &[Case<'_>] = &[
            (&[], true, true),
            (&[("id", "/us-east/database/memsql")], true, false),
            (&[("id", "database")], true, false),
            (&[("id", "US-EAST")], true, true),
            (&[("id", "/eu")], false, false),
            (&[("cmd", "java")], true, false),
            (&[("cmd", "JAVA")], true, false),
            (&[("cmd", "http")], false, true),
            (&[("cmd", "java"), ("id", "web")], false, false),
            (&[("label", "tier")], true, false),
            (&[("label", "tier==db"), ("cmd", "java")], true, false),
            (&[("label", "tier!=db")], false, false),
        ];
        for (pairs, want_db, want_web) in cases {
            let q = query(pairs);
            assert_eq!(q.matches(&db), *want_db, "{pairs:?} against the database");
            assert_eq!(q.matches(&web), *want_web, "{pairs:?} against the web app");
        }
    }

    #[test]
    fn a_bad_label_query_is_an_error() {
        let pairs = vec![("label".to_string(), "foo in one".to_string())];
        assert!(AppQuery::from_pairs(&pairs).is_err());
    }

    #[test]
    fn embeds_read_with_either_prefix_or_none() {
        for prefix in ["apps.", "app.", ""] {
            let mut e = AppEmbeds::default();
            e.add(&format!("{prefix}tasks"));
            assert!(e.tasks && e.deployments && !e.counts, "{prefix}tasks");
            let mut e = AppEmbeds::default();
            for name in ["counts", "readiness", "lastTaskFailure", "taskStats"] {
                e.add(&format!("{prefix}{name}"));
            }
            assert_eq!(
                e,
                AppEmbeds {
                    counts: true,
                    readiness: true,
                    last_task_failure: true,
                    task_stats: true,
                    ..AppEmbeds::default()
                },
                "{prefix}"
            );
        }
        let mut e = AppEmbeds::for_list();
        e.add("apps.unknown");
        assert_eq!(e, AppEmbeds::for_list());
    }
}
