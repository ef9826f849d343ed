//! Marathon's application groups over drover's state: which groups exist (explicit ones,
//! stored by `/v2/groups`, and implicit ones, implied by app ids like `/a/b/c`), and what a
//! group change does ([`plan`]): the apps it starts, changes and stops, in dependency order,
//! as the commands of one commit. Pure: decided from a state snapshot, nothing written here.

use std::collections::{BTreeMap, BTreeSet};

use domain::group::{self, Declared};
use domain::{AppDefinition, AppId, GroupId, ValidationErrors};
use serde_json::{Map, Value, json};
use state::{ClusterState, Command, Deployment};

use crate::deployments::{self, Action};

/// Fields of Marathon's app JSON that describe its state, not its definition.
pub const READ_ONLY_APP_FIELDS: &[&str] = &[
    "version",
    "versionInfo",
    "tasks",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "lastTaskFailure",
    "readinessCheckResults",
    "taskStats",
];

/// Whether group `id` exists: the root, an explicit group, or one implied by an app under it.
pub fn exists(state: &ClusterState, id: &GroupId) -> bool {
    id.is_root()
        || state.groups().contains_key(id)
        || state.apps().keys().any(|a| id.holds(a.as_str()))
}

/// Why an app cannot have id `app`: a group of that id exists (explicit, or with apps under
/// it). Marathon refuses an app and a group with the same id.
pub fn clashes_with_group(state: &ClusterState, app: &AppId) -> Option<String> {
    let as_group = GroupId::from(app);
    let clash = state.groups().contains_key(&as_group)
        || state.apps().keys().any(|a| as_group.holds(a.as_str()));
    clash.then(|| {
        format!(
            "Groups and Applications may not have the same identifier: {app} is a group; give the app another id"
        )
    })
}

/// The ids of the groups directly under `id`, explicit and implicit, in order.
pub fn children(state: &ClusterState, id: &GroupId) -> Vec<GroupId> {
    let mut out = BTreeSet::new();
    let child = |path: &str| -> Option<GroupId> {
        let rest = if id.is_root() {
            path.strip_prefix('/')?
        } else {
            path.strip_prefix(id.as_str())?.strip_prefix('/')?
        };
        let first = rest.split('/').next()?;
        let at = if id.is_root() {
            format!("/{first}")
        } else {
            format!("{id}/{first}")
        };
        // An app is not a group: only a path with more under it is.
        (at != path).then(|| GroupId::parse(&at).ok()).flatten()
    };
    for g in state.groups().keys() {
        if id.holds(g.as_str())
            && let Some(c) = child(g.as_str())
        {
            out.insert(c);
        }
    }
    for a in state.apps().keys() {
        if let Some(c) = child(a.as_str()) {
            out.insert(c);
        }
    }
    out.into_iter().collect()
}

/// The apps directly in group `id`.
pub fn apps_in<'a>(state: &'a ClusterState, id: &'a GroupId) -> impl Iterator<Item = &'a AppId> {
    state
        .apps()
        .keys()
        .filter(move |a| GroupId::parent_of(a.as_str()) == *id)
}

/// A group's version: its record's, or (implicit groups) the newest of its apps'.
pub fn version(state: &ClusterState, id: &GroupId) -> String {
    if let Some(r) = state.groups().get(id) {
        return r.version.clone();
    }
    state
        .apps()
        .iter()
        .filter(|(a, _)| id.holds(a.as_str()))
        .map(|(_, r)| r.current().version.clone())
        .max()
        .unwrap_or_default()
}

/// The dependencies an app declares, as absolute ids (read from its parent group).
fn app_dependencies(app: &AppDefinition) -> Result<Vec<AppId>, String> {
    let parent = GroupId::parent_of(app.id.as_str());
    match app.unknown.get("dependencies") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| format!("{}: a dependency must be a string", app.id))
                    .and_then(|s| parent.resolve(s))
            })
            .collect(),
        Some(_) => Err(format!("{}: dependencies must be an array of ids", app.id)),
    }
}

/// What a group change asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Create the group (`POST`): 409 when it exists.
    Create(Value),
    /// Change it (`PUT`, `PATCH`): apps and groups given replace those of the group;
    /// those not given stay.
    Update(Value),
    /// Scale every app under it by a factor (`{"scaleBy": f}`).
    ScaleBy(f64),
    /// Go back to a stored version (`{"version": v}`).
    Rollback(String),
    /// Delete it with everything under it.
    Delete,
}

/// Why a group change is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 422, Marathon's validation body.
    Invalid(ValidationErrors),
}

fn invalid(path: &str, message: impl Into<String>) -> Refusal {
    let mut errors = ValidationErrors::default();
    errors.add(path, message);
    Refusal::Invalid(errors)
}

/// What a group is to become: every app and explicit group under it, and its JSON.
#[derive(Debug, Clone, Default)]
struct Desired {
    apps: BTreeMap<AppId, AppDefinition>,
    groups: BTreeMap<GroupId, Vec<AppId>>,
}

/// A checked group change, ready to commit as one batch.
#[derive(Debug, Clone)]
pub struct Change {
    /// The group changed.
    pub group: GroupId,
    /// The version of the change.
    pub version: String,
    /// The commands, in order (one `Command::Batch` of them is one commit).
    pub commands: Vec<Command>,
    /// The deployment it starts (`None` when no app changes).
    pub deployment: Option<Deployment>,
    /// The group before the change (Marathon's group JSON, apps as definitions).
    pub original: Value,
    /// The group after it.
    pub target: Value,
}

/// Plans `request` on group `id` against `state`: the apps to start, change and stop, the
/// groups to store and forget, the deployment in dependency order. `version` is the new
/// version (later than every version it replaces); `force` lets the change take over apps
/// other deployments hold.
pub fn plan(
    state: &ClusterState,
    id: &GroupId,
    request: Request,
    version: &str,
    force: bool,
    now_ms: u64,
) -> Result<Change, Refusal> {
    let found = exists(state, id);
    let desired = match request {
        Request::Create(body) => {
            if found {
                return Err(Refusal::Conflict(format!(
                    "Group {id} is already created. Use PUT to change this group."
                )));
            }
            read_update(state, id, &body, false)?
        }
        Request::Update(body) => read_update(state, id, &body, true)?,
        Request::ScaleBy(factor) => {
            if !found {
                return Err(not_found(id));
            }
            if !(factor.is_finite() && factor >= 0.0) {
                return Err(invalid(
                    "/scaleBy",
                    format!("got {factor}, expected a number of 0 or more"),
                ));
            }
            let mut d = current(state, id);
            d.groups.entry(id.clone()).or_default();
            // Pods under the group scale with its apps (their `scaling` follows).
            for app in d.apps.values_mut() {
                app.set_instances((f64::from(app.instances) * factor).ceil() as u32);
            }
            d
        }
        Request::Rollback(v) => {
            let stored = state
                .groups()
                .get(id)
                .and_then(|r| r.versions.iter().find(|s| s.version == v))
                .ok_or_else(|| {
                    if found {
                        Refusal::NotFound(format!("Group {id} has no version {v}"))
                    } else {
                        not_found(id)
                    }
                })?;
            read_update(state, id, &stored.definition, false)?
        }
        Request::Delete => {
            if !found {
                return Err(not_found(id));
            }
            Desired::default()
        }
    };
    let deleting = desired.apps.is_empty() && desired.groups.is_empty();
    let before = current(state, id);
    check_consistent(state, id, &desired)?;
    let layers = after(state, id, &desired)
        .layers()
        .map_err(|e| invalid("/", e.to_string()))?;

    // What happens to each app under the group.
    let mut stops = Vec::new();
    let mut changes = Vec::new();
    for app_id in before.apps.keys() {
        if !desired.apps.contains_key(app_id) {
            stops.push((app_id.clone(), Action::StopApplication));
        }
    }
    for (app_id, app) in &desired.apps {
        let old = before.apps.get(app_id);
        if old != Some(app) {
            changes.push((app_id.clone(), deployments::action_for(old, app)));
        }
    }
    let touched: Vec<AppId> = stops
        .iter()
        .chain(&changes)
        .map(|(a, _)| a.clone())
        .collect();
    if !force && let Some(d) = locking(state, &touched) {
        return Err(Refusal::Conflict(format!(
            "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{}'.",
            d.id
        )));
    }

    // Stops first, then the rest layer by layer (dependencies before what needs them).
    let mut steps: Vec<Vec<(AppId, Action)>> = vec![stops.clone()];
    let changed: Vec<AppId> = changes.iter().map(|(a, _)| a.clone()).collect();
    for step in group::steps(&layers, &changed) {
        steps.push(
            step.into_iter()
                .filter_map(|a| changes.iter().find(|(c, _)| *c == a).cloned())
                .collect(),
        );
    }
    let deployment =
        (!touched.is_empty()).then(|| deployments::of_group(id, version, steps, now_ms));

    let target_json = group_json(id, &desired);
    let mut commands = Vec::new();
    // Explicit groups no longer wanted (the outermost of each subtree is enough).
    let mut forgotten: Vec<&GroupId> = Vec::new();
    for g in state.groups().keys() {
        if id.contains(g.as_str())
            && !desired.groups.contains_key(g)
            && !forgotten.iter().any(|f| f.contains(g.as_str()))
        {
            forgotten.push(g);
            commands.push(Command::DeleteGroup { id: g.clone() });
        }
    }
    if !deleting {
        for (g, dependencies) in &desired.groups {
            commands.push(Command::PutGroup {
                id: g.clone(),
                dependencies: dependencies.clone(),
                version: version.to_string(),
                definition: (g == id).then(|| target_json.clone()),
            });
        }
    }
    for (app_id, _) in &changes {
        if let Some(app) = desired.apps.get(app_id) {
            commands.push(Command::PutApp {
                app: app.clone(),
                version: version.to_string(),
            });
        }
    }
    for (app_id, _) in &stops {
        commands.push(Command::DeleteApp { id: app_id.clone() });
    }
    if let Some(d) = &deployment {
        commands.push(Command::PutDeployment {
            deployment: d.clone(),
            force: true,
        });
    }
    Ok(Change {
        group: id.clone(),
        version: version.to_string(),
        commands,
        deployment,
        original: group_json(id, &before),
        target: target_json,
    })
}

fn not_found(id: &GroupId) -> Refusal {
    Refusal::NotFound(format!("Group '{id}' does not exist"))
}

/// A deployment in progress that holds one of `apps`.
fn locking<'a>(state: &'a ClusterState, apps: &[AppId]) -> Option<&'a Deployment> {
    state
        .deployments()
        .values()
        .find(|d| d.affected_apps.iter().any(|a| apps.contains(a)))
}

/// The group as it is: every app and explicit group under it.
fn current(state: &ClusterState, id: &GroupId) -> Desired {
    Desired {
        apps: state
            .apps()
            .iter()
            .filter(|(a, _)| id.holds(a.as_str()))
            .map(|(a, r)| (a.clone(), r.current().app.clone()))
            .collect(),
        groups: state
            .groups()
            .iter()
            .filter(|(g, _)| id.contains(g.as_str()))
            .map(|(g, r)| (g.clone(), r.dependencies.clone()))
            .collect(),
    }
}

/// The whole cluster's apps and groups, with the group `id` as `desired` makes it.
fn after(state: &ClusterState, id: &GroupId, desired: &Desired) -> Declared {
    let mut declared = Declared::default();
    for (a, r) in state.apps() {
        if !id.holds(a.as_str()) {
            let deps = app_dependencies(&r.current().app).unwrap_or_default();
            declared.apps.insert(a.clone(), deps);
        }
    }
    for (a, app) in &desired.apps {
        let deps = app_dependencies(app).unwrap_or_default();
        declared.apps.insert(a.clone(), deps);
    }
    for (g, r) in state.groups() {
        if !id.contains(g.as_str()) {
            declared.groups.insert(g.clone(), r.dependencies.clone());
        }
    }
    declared.groups.extend(desired.groups.clone());
    declared
}

/// Refuses an app whose id is also a group's, in the state the change leaves.
fn check_consistent(state: &ClusterState, id: &GroupId, desired: &Desired) -> Result<(), Refusal> {
    let declared = after(state, id, desired);
    for app in declared.apps.keys() {
        let as_group = GroupId::from(app);
        let clash = declared.groups.contains_key(&as_group)
            || declared
                .apps
                .keys()
                .any(|other| as_group.holds(other.as_str()));
        if clash {
            return Err(invalid(
                "/",
                format!(
                    "Groups and Applications may not have the same identifier: {app} is both an app and a group; rename one of them"
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a group update (Marathon's `GroupUpdate` JSON) for group `id`; with `keep`, apps
/// and groups it does not list stay as they are.
fn read_update(
    state: &ClusterState,
    id: &GroupId,
    body: &Value,
    keep: bool,
) -> Result<Desired, Refusal> {
    let Some(obj) = body.as_object() else {
        return Err(invalid("/", "a group must be a JSON object"));
    };
    if let Some(raw) = obj.get("id") {
        let given = raw
            .as_str()
            .map(|s| id.resolve_group(s))
            .unwrap_or_else(|| Err("must be a string".into()));
        match given {
            Ok(g) if g == *id => {}
            Ok(g) => {
                return Err(invalid(
                    "/id",
                    format!(
                        "the group id in the body ({g}) differs from the one in the path ({id}); leave it out or make them equal"
                    ),
                ));
            }
            Err(why) => return Err(invalid("/id", why)),
        }
    }
    let mut errors = ValidationErrors::default();
    let mut out = Desired::default();
    read_group(state, id, obj, "", keep, &mut errors, &mut out);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Refusal::Invalid(errors))
    }
}

fn read_group(
    state: &ClusterState,
    id: &GroupId,
    obj: &Map<String, Value>,
    at: &str,
    keep: bool,
    errors: &mut ValidationErrors,
    out: &mut Desired,
) {
    let dependencies = match obj.get("dependencies") {
        None | Some(Value::Null) if keep => state
            .groups()
            .get(id)
            .map(|r| r.dependencies.clone())
            .unwrap_or_default(),
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let resolved = v
                    .as_str()
                    .ok_or_else(|| "must be a string".to_string())
                    .and_then(|s| id.resolve(s));
                resolved
                    .map_err(|why| errors.add(format!("{at}/dependencies({i})"), why))
                    .ok()
            })
            .collect(),
        Some(_) => {
            errors.add(format!("{at}/dependencies"), "must be an array of ids");
            Vec::new()
        }
    };
    out.groups.insert(id.clone(), dependencies);
    if let Some(pods) = obj.get("pods").and_then(Value::as_array)
        && !pods.is_empty()
    {
        errors.add(
            format!("{at}/pods"),
            "drover does not run pods in groups yet; deploy them through /v2/pods",
        );
    }

    match obj.get("apps") {
        None | Some(Value::Null) if keep => {
            for a in apps_in(state, id) {
                if let Some(r) = state.app(a) {
                    out.apps.insert(a.clone(), r.current().app.clone());
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(Value::Array(apps)) => {
            for (i, app) in apps.iter().enumerate() {
                let path = format!("{at}/apps({i})");
                if let Some(app) = read_app(id, app, &path, errors) {
                    if out.apps.contains_key(&app.id) {
                        errors.add(
                            format!("{path}/id"),
                            format!("app {} is given twice: give each app once", app.id),
                        );
                    }
                    out.apps.insert(app.id.clone(), app);
                }
            }
        }
        Some(_) => errors.add(format!("{at}/apps"), "must be an array of apps"),
    }
    // Pods are changed through /v2/pods only: a group file's `apps` never drops one.
    for a in apps_in(state, id) {
        if let Some(r) = state.app(a).filter(|r| r.current().app.is_pod()) {
            out.apps
                .entry(a.clone())
                .or_insert_with(|| r.current().app.clone());
        }
    }

    match obj.get("groups") {
        None | Some(Value::Null) if keep => {
            for a in state.apps().keys() {
                if id.holds(a.as_str())
                    && GroupId::parent_of(a.as_str()) != *id
                    && let Some(r) = state.app(a)
                {
                    out.apps.insert(a.clone(), r.current().app.clone());
                }
            }
            for (g, r) in state.groups() {
                if id.holds(g.as_str()) {
                    out.groups.insert(g.clone(), r.dependencies.clone());
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(Value::Array(groups)) => {
            for (i, sub) in groups.iter().enumerate() {
                let path = format!("{at}/groups({i})");
                let Some(sub_obj) = sub.as_object() else {
                    errors.add(path, "a group must be a JSON object");
                    continue;
                };
                let Some(raw) = sub_obj.get("id").and_then(Value::as_str) else {
                    errors.add(format!("{path}/id"), "a group needs its id");
                    continue;
                };
                let sub_id = match id.resolve(raw) {
                    Ok(a) => GroupId::from(&a),
                    Err(why) => {
                        errors.add(format!("{path}/id"), why);
                        continue;
                    }
                };
                if GroupId::parent_of(sub_id.as_str()) != *id {
                    errors.add(
                        format!("{path}/id"),
                        format!(
                            "group {sub_id} is not a direct member of group {id}: give its id relative to {id}, or absolute directly under it"
                        ),
                    );
                    continue;
                }
                if out.groups.contains_key(&sub_id) {
                    errors.add(
                        format!("{path}/id"),
                        format!("group {sub_id} is given twice: give each group once"),
                    );
                    continue;
                }
                read_group(state, &sub_id, sub_obj, &path, keep, errors, out);
            }
        }
        Some(_) => errors.add(format!("{at}/groups"), "must be an array of groups"),
    }
}

/// Reads one app of group `group`: its id read from the group (it must be a direct
/// member), its dependencies made absolute, validated as `POST /v2/apps` validates.
fn read_app(
    group: &GroupId,
    app: &Value,
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<AppDefinition> {
    let Some(obj) = app.as_object() else {
        errors.add(path, "an app must be a JSON object");
        return None;
    };
    let mut obj = obj.clone();
    let Some(raw) = obj.get("id").and_then(Value::as_str) else {
        errors.add(format!("{path}/id"), "an app of a group needs its id");
        return None;
    };
    let app_id = match group.resolve(raw) {
        Ok(a) => a,
        Err(why) => {
            errors.add(format!("{path}/id"), why);
            return None;
        }
    };
    if GroupId::parent_of(app_id.as_str()) != *group {
        errors.add(
            format!("{path}/id"),
            format!(
                "app {app_id} is not in group {group}: an app of a group must be a direct member of it (give its id relative to the group, or put it in a nested group)"
            ),
        );
        return None;
    }
    obj.insert("id".into(), json!(app_id.as_str()));
    if let Some(Value::Array(deps)) = obj.get("dependencies") {
        let mut resolved = Vec::new();
        for (i, d) in deps.iter().enumerate() {
            match d.as_str().map(|s| group.resolve(s)) {
                Some(Ok(a)) => resolved.push(json!(a.as_str())),
                Some(Err(why)) => errors.add(format!("{path}/dependencies({i})"), why),
                None => errors.add(format!("{path}/dependencies({i})"), "must be a string"),
            }
        }
        obj.insert("dependencies".into(), Value::Array(resolved));
    }
    for key in READ_ONLY_APP_FIELDS {
        obj.remove(*key);
    }
    match AppDefinition::from_json(&Value::Object(obj)) {
        Ok(app) => Some(app),
        Err(app_errors) => {
            for (p, messages) in app_errors.details() {
                for m in messages {
                    errors.add(format!("{path}{}", p.trim_end_matches('/')), m.clone());
                }
            }
            None
        }
    }
}

/// Marathon's group JSON of `id` as `d` describes it: apps as definitions, nested groups,
/// absolute ids (what a version stores and a rollback reads back).
fn group_json(id: &GroupId, d: &Desired) -> Value {
    let apps: Vec<Value> = d
        .apps
        .values()
        .filter(|a| GroupId::parent_of(a.id.as_str()) == *id)
        .map(AppDefinition::to_json)
        .collect();
    let mut subgroups: BTreeSet<GroupId> = d
        .groups
        .keys()
        .filter(|g| *g != id && GroupId::parent_of(g.as_str()) == *id)
        .cloned()
        .collect();
    for a in d.apps.keys() {
        let mut parent = GroupId::parent_of(a.as_str());
        while id.holds(parent.as_str()) {
            if GroupId::parent_of(parent.as_str()) == *id {
                subgroups.insert(parent.clone());
                break;
            }
            parent = GroupId::parent_of(parent.as_str());
        }
    }
    let groups: Vec<Value> = subgroups.iter().map(|g| group_json(g, d)).collect();
    let dependencies: Vec<&str> = d
        .groups
        .get(id)
        .into_iter()
        .flatten()
        .map(AppId::as_str)
        .collect();
    json!({
        "id": id.as_str(),
        "apps": apps,
        "groups": groups,
        "pods": [],
        "dependencies": dependencies,
    })
}

#[cfg(test)]
mod tests;
