//! The environment a task sees: what Marathon and Mesos tasks expect, plus the app's `env`.

use std::collections::BTreeMap;
use std::path::Path;

use state::protocol::TaskAssignment;

/// `PATH` for tasks when the agent itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The agent's variables a task inherits: the basics programs expect, nothing that
/// configures the agent itself (`RUST_LOG`, `DOCKER_HOST`, …).
const INHERITED: [&str; 8] = [
    "HOME", "LANG", "LC_ALL", "LOGNAME", "TMPDIR", "TZ", "USER", "SHELL",
];

/// Builds a task's environment. Tasks inherit only `PATH` and a few basics ([`INHERITED`])
/// from the agent. Precedence, lowest first: drover's Marathon variables, then the app's `env`
/// (an app may override `HOST` or a `PORT`), then the `MESOS_` variables, which describe the
/// sandbox and the task and so cannot be overridden.
///
/// - `HOST`: `host`, the agent's advertised IP ([`crate::health::task_host`]), as DC/OS
///   names its agents; Marathon-level health checks reach the task there.
/// - `PORT0…PORTn`, `PORT` (= `PORT0`), `PORTS` (comma-separated): the assigned host ports.
/// - `PORT_<NAME>` for named port definitions (upper case; characters outside `A-Z0-9_`
///   become `_`), and `PORT_<declared port>` for port definitions with a non-zero port.
/// - `MARATHON_APP_ID`, `MARATHON_APP_VERSION`, `MARATHON_APP_RESOURCE_CPUS`/`_MEM`/`_DISK`,
///   `MARATHON_APP_LABELS` and `MARATHON_APP_LABEL_<NAME>`, `MARATHON_APP_DOCKER_IMAGE`.
/// - `MESOS_TASK_ID` (the instance id) and `MESOS_SANDBOX` (the sandbox path).
pub fn task_env(
    assignment: &TaskAssignment,
    host: &str,
    sandbox: &Path,
) -> BTreeMap<String, String> {
    let app = &assignment.app;
    let mut env = BTreeMap::new();
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    env.insert("PATH".to_string(), path);
    for name in INHERITED {
        if let Ok(value) = std::env::var(name) {
            env.insert(name.to_string(), value);
        }
    }
    env.insert("HOST".to_string(), host.to_string());

    let ports = &assignment.ports;
    for (i, port) in ports.iter().enumerate() {
        env.insert(format!("PORT{i}"), port.to_string());
        if let Some(def) = app.port_definitions.get(i) {
            if let Some(name) = &def.name {
                env.insert(format!("PORT_{}", env_name(name)), port.to_string());
            }
            if def.port != 0 {
                env.insert(format!("PORT_{}", def.port), port.to_string());
            }
        }
    }
    if let Some(first) = ports.first() {
        env.insert("PORT".to_string(), first.to_string());
    }
    let list: Vec<String> = ports.iter().map(u64::to_string).collect();
    env.insert("PORTS".to_string(), list.join(","));

    env.insert("MARATHON_APP_ID".to_string(), app.id.to_string());
    env.insert(
        "MARATHON_APP_VERSION".to_string(),
        assignment.app_version.clone(),
    );
    env.insert("MARATHON_APP_RESOURCE_CPUS".to_string(), decimal(app.cpus));
    env.insert("MARATHON_APP_RESOURCE_MEM".to_string(), decimal(app.mem));
    env.insert("MARATHON_APP_RESOURCE_DISK".to_string(), decimal(app.disk));
    let label_names: Vec<&str> = app.labels.keys().map(String::as_str).collect();
    env.insert("MARATHON_APP_LABELS".to_string(), label_names.join(" "));
    for (name, value) in &app.labels {
        env.insert(
            format!("MARATHON_APP_LABEL_{}", env_name(name)),
            value.clone(),
        );
    }
    if let Some(image) = app.container.as_ref().and_then(|c| c.docker_image.as_ref()) {
        env.insert("MARATHON_APP_DOCKER_IMAGE".to_string(), image.clone());
    }

    for (k, v) in &app.env {
        env.insert(k.clone(), v.clone());
    }

    env.insert(
        "MESOS_TASK_ID".to_string(),
        assignment.instance_id.to_string(),
    );
    env.insert(
        "MESOS_SANDBOX".to_string(),
        sandbox.to_string_lossy().into_owned(),
    );
    env
}

/// A name as an environment variable name: upper case, `A-Z0-9_` only.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_alphanumeric() { c } else { '_' }
        })
        .collect()
}

/// A resource amount as Marathon prints it (Java's `Double.toString`): `1.0`, `0.5`, `128.0`.
fn decimal(v: f64) -> String {
    format!("{v:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AppDefinition;
    use serde_json::json;
    use state::protocol::TaskGoal;

    fn assignment(app: serde_json::Value, ports: Vec<u64>) -> TaskAssignment {
        TaskAssignment {
            instance_id: "prod_web.instance-1".into(),
            app: AppDefinition::from_json(&app).unwrap(),
            app_version: "2024-01-01T00:00:00.000Z".into(),
            ports,
            goal: TaskGoal::Running,
            term: 1,
        }
    }

    #[test]
    fn marathon_variables_ports_and_sandbox() {
        let a = assignment(
            json!({
                "id": "/prod/web", "cmd": "true", "cpus": 0.5, "mem": 64, "disk": 0,
                "portDefinitions": [{"port": 0, "name": "http-api"}, {"port": 9000}],
                "labels": {"team": "blue"},
                "env": {"GREETING": "hi"}
            }),
            vec![31001, 31002],
        );
        let env = task_env(&a, "node-1", Path::new("/w/sandboxes/x"));
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("HOST"), Some("node-1"));
        assert_eq!(get("PORT0"), Some("31001"));
        assert_eq!(get("PORT1"), Some("31002"));
        assert_eq!(get("PORT"), Some("31001"));
        assert_eq!(get("PORTS"), Some("31001,31002"));
        assert_eq!(get("PORT_HTTP_API"), Some("31001"));
        assert_eq!(get("PORT_9000"), Some("31002"));
        assert_eq!(get("MARATHON_APP_ID"), Some("/prod/web"));
        assert_eq!(
            get("MARATHON_APP_VERSION"),
            Some("2024-01-01T00:00:00.000Z")
        );
        assert_eq!(get("MARATHON_APP_RESOURCE_CPUS"), Some("0.5"));
        assert_eq!(get("MARATHON_APP_RESOURCE_MEM"), Some("64.0"));
        assert_eq!(get("MARATHON_APP_RESOURCE_DISK"), Some("0.0"));
        assert_eq!(get("MARATHON_APP_LABELS"), Some("team"));
        assert_eq!(get("MARATHON_APP_LABEL_TEAM"), Some("blue"));
        assert_eq!(get("MESOS_TASK_ID"), Some("prod_web.instance-1"));
        assert_eq!(get("MESOS_SANDBOX"), Some("/w/sandboxes/x"));
        assert_eq!(get("GREETING"), Some("hi"));
        assert!(get("PATH").is_some());
        assert_eq!(get("MARATHON_APP_DOCKER_IMAGE"), None);
    }

    #[test]
    fn app_env_overrides_marathon_variables_but_not_mesos_ones() {
        let a = assignment(
            json!({"id": "/a", "cmd": "true",
                   "env": {"HOST": "custom", "MESOS_TASK_ID": "spoofed"}}),
            vec![],
        );
        let env = task_env(&a, "node-1", Path::new("/s"));
        assert_eq!(env["HOST"], "custom");
        assert_eq!(env["MESOS_TASK_ID"], "prod_web.instance-1");
        assert_eq!(env["PORTS"], "");
        assert!(!env.contains_key("PORT"));
    }
}
