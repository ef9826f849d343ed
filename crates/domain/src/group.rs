//! Marathon's application groups: path arithmetic (relative ids, `../db`), the dependencies
//! of apps and groups (a group's are inherited by everything under it), and the order in
//! which a deployment of several apps runs (steps in dependency order; a cycle is refused).
//! Pure: no state, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::app::AppId;

/// A group's path id: `/` (the root group) or an absolute path like `/prod/db`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(String);

impl GroupId {
    /// The root group, `/`.
    pub fn root() -> Self {
        GroupId("/".into())
    }

    /// Normalises and checks an id as [`AppId::parse`] does; `/` and the empty id are the root.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.trim_matches('/').is_empty() {
            return Ok(GroupId::root());
        }
        AppId::parse(raw).map(|id| GroupId(id.as_str().to_string()))
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The id as text, with its leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same path as an app id (`None` for the root, which no app can have).
    pub fn as_app_id(&self) -> Option<AppId> {
        AppId::parse(&self.0).ok()
    }

    /// Whether `path` (an app's or group's id) is this group or lies under it.
    pub fn contains(&self, path: &str) -> bool {
        self.is_root()
            || path == self.0
            || path
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether `path` lies strictly under this group.
    pub fn holds(&self, path: &str) -> bool {
        path != self.0 && self.contains(path)
    }

    /// The group that holds `path` directly (`/` for a top-level id).
    pub fn parent_of(path: &str) -> GroupId {
        match path.trim_end_matches('/').rsplit_once('/') {
            Some(("", _)) | None => GroupId::root(),
            Some((parent, _)) => GroupId(parent.to_string()),
        }
    }

    /// Resolves `raw` against this group as Marathon does: an absolute path stands as it
    /// is, a relative one (`db`, `./db`, `../db`) is read from this group.
    pub fn resolve(&self, raw: &str) -> Result<AppId, String> {
        AppId::parse(&self.resolve_path(raw)?)
            .map_err(|why| format!("{raw} (read from {self}): {why}"))
    }

    /// As [`GroupId::resolve`], for a group's id: `.`, `/` or a path that climbs back up to
    /// the root are groups too.
    pub fn resolve_group(&self, raw: &str) -> Result<GroupId, String> {
        GroupId::parse(&self.resolve_path(raw)?)
            .map_err(|why| format!("{raw} (read from {self}): {why}"))
    }

    fn resolve_path(&self, raw: &str) -> Result<String, String> {
        let mut segments: Vec<&str> = if raw.starts_with('/') {
            Vec::new()
        } else {
            self.0.split('/').filter(|s| !s.is_empty()).collect()
        };
        for segment in raw.split('/').filter(|s| !s.is_empty()) {
            match segment {
                "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(format!(
                            "{raw} (read from {self}) goes above the root group"
                        ));
                    }
                }
                s => segments.push(s),
            }
        }
        Ok(format!("/{}", segments.join("/")))
    }
}

impl From<&AppId> for GroupId {
    fn from(id: &AppId) -> Self {
        GroupId(id.as_str().to_string())
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for GroupId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GroupId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a set of dependencies cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyError {
    /// A dependency names neither an app nor a group with apps.
    Unknown {
        /// The app or group that declares it.
        declared_by: String,
        /// The dependency as resolved.
        dependency: String,
    },
    /// Apps depend on each other in a circle, listed in order, the first one again last.
    Cycle(Vec<AppId>),
}

impl fmt::Display for DependencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DependencyError::Unknown {
                declared_by,
                dependency,
            } => write!(
                f,
                "{declared_by} depends on {dependency}, which is neither an app nor a group with apps: create it first or remove the dependency"
            ),
            DependencyError::Cycle(path) => {
                let names: Vec<&str> = path.iter().map(AppId::as_str).collect();
                write!(
                    f,
                    "Dependency graph has cyclic dependencies: {}; remove one of these dependencies",
                    names.join(" -> ")
                )
            }
        }
    }
}

/// The apps and explicit groups a dependency graph is built from, each with the
/// dependencies it declares (absolute ids, see [`GroupId::resolve`]).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// Every app, with its own dependencies.
    pub apps: BTreeMap<AppId, Vec<AppId>>,
    /// Groups that declare dependencies (inherited by every app under them).
    pub groups: BTreeMap<GroupId, Vec<AppId>>,
}

impl Declared {
    /// The apps a dependency names: the app of that id, or every app under the group.
    fn named<'a>(&'a self, dependency: &'a AppId) -> Vec<&'a AppId> {
        if self.apps.contains_key(dependency) {
            return vec![dependency];
        }
        let group = GroupId::from(dependency);
        self.apps
            .keys()
            .filter(|a| group.holds(a.as_str()))
            .collect()
    }

    /// Every app's effective dependencies: its own and those of the groups above it, each
    /// expanded to apps (an app never depends on itself through its group).
    pub fn resolve(&self) -> Result<BTreeMap<AppId, BTreeSet<AppId>>, DependencyError> {
        let mut out = BTreeMap::new();
        for (app, own) in &self.apps {
            let mut wanted: Vec<(String, &AppId)> =
                own.iter().map(|d| (app.as_str().to_string(), d)).collect();
            for (group, deps) in &self.groups {
                if group.holds(app.as_str()) {
                    wanted.extend(deps.iter().map(|d| (group.as_str().to_string(), d)));
                }
            }
            let mut deps = BTreeSet::new();
            for (declared_by, dependency) in wanted {
                let named = self.named(dependency);
                if named.is_empty() {
                    return Err(DependencyError::Unknown {
                        declared_by,
                        dependency: dependency.to_string(),
                    });
                }
                deps.extend(named.into_iter().filter(|d| *d != app).cloned());
            }
            out.insert(app.clone(), deps);
        }
        Ok(out)
    }

    /// Every app's layer: 0 without dependencies, else one more than its deepest dependency.
    /// A cycle is an error naming it.
    pub fn layers(&self) -> Result<BTreeMap<AppId, usize>, DependencyError> {
        let graph = self.resolve()?;
        let mut layers: BTreeMap<AppId, usize> = BTreeMap::new();
        for app in graph.keys() {
            let mut path = Vec::new();
            layer_of(app, &graph, &mut layers, &mut path)?;
        }
        Ok(layers)
    }
}

/// Depth-first layering; `path` holds the apps being visited, to name a cycle.
fn layer_of(
    app: &AppId,
    graph: &BTreeMap<AppId, BTreeSet<AppId>>,
    layers: &mut BTreeMap<AppId, usize>,
    path: &mut Vec<AppId>,
) -> Result<usize, DependencyError> {
    if let Some(layer) = layers.get(app) {
        return Ok(*layer);
    }
    if let Some(start) = path.iter().position(|a| a == app) {
        let mut cycle = path[start..].to_vec();
        cycle.push(app.clone());
        return Err(DependencyError::Cycle(cycle));
    }
    path.push(app.clone());
    let mut layer = 0;
    for dep in graph.get(app).into_iter().flatten() {
        layer = layer.max(layer_of(dep, graph, layers, path)? + 1);
    }
    path.pop();
    layers.insert(app.clone(), layer);
    Ok(layer)
}

/// The steps in which `affected` apps deploy: by layer, lowest first, empty layers left
/// out; an app without a layer (not in the graph) goes first.
pub fn steps(layers: &BTreeMap<AppId, usize>, affected: &[AppId]) -> Vec<Vec<AppId>> {
    let mut by_layer: BTreeMap<usize, Vec<AppId>> = BTreeMap::new();
    for app in affected {
        let layer = layers.get(app).copied().unwrap_or(0);
        by_layer.entry(layer).or_default().push(app.clone());
    }
    by_layer.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AppId {
        AppId::parse(s).expect("id")
    }

    fn group(s: &str) -> GroupId {
        GroupId::parse(s).expect("group id")
    }

    #[test]
    fn relative_paths_resolve_as_marathon_reads_them() {
        let prod = group("/prod/svc");
        assert_eq!(prod.resolve("db").unwrap(), id("/prod/svc/db"));
        assert_eq!(prod.resolve("./db").unwrap(), id("/prod/svc/db"));
        assert_eq!(prod.resolve("../db").unwrap(), id("/prod/db"));
        assert_eq!(prod.resolve("../../db/mysql").unwrap(), id("/db/mysql"));
        assert_eq!(prod.resolve("/other").unwrap(), id("/other"));
        assert_eq!(GroupId::root().resolve("web").unwrap(), id("/web"));
        assert!(prod.resolve("../../../x").is_err());
        assert!(prod.resolve("Bad_Name").is_err());
        assert!(prod.resolve("../..").is_err(), "the root is no app");
        assert_eq!(prod.resolve_group(".").unwrap(), prod);
        assert_eq!(prod.resolve_group("../..").unwrap(), GroupId::root());
        assert_eq!(prod.resolve_group("x").unwrap(), group("/prod/svc/x"));
    }

    #[test]
    fn groups_contain_what_lies_under_them() {
        let g = group("/prod");
        assert!(g.contains("/prod") && g.holds("/prod/web"));
        assert!(!g.holds("/prod") && !g.contains("/production/web"));
        assert!(GroupId::root().holds("/anything"));
        assert_eq!(GroupId::parent_of("/prod/web"), g);
        assert_eq!(GroupId::parent_of("/web"), GroupId::root());
    }

    fn declared(apps: &[(&str, &[&str])], groups: &[(&str, &[&str])]) -> Declared {
        Declared {
            apps: apps
                .iter()
                .map(|(a, d)| (id(a), d.iter().map(|d| id(d)).collect()))
                .collect(),
            groups: groups
                .iter()
                .map(|(g, d)| (group(g), d.iter().map(|d| id(d)).collect()))
                .collect(),
        }
    }

    #[test]
    fn group_dependencies_are_inherited_and_expand_to_apps() {
        let d = declared(
            &[
                ("/p/db/mysql", &[]),
                ("/p/db/mongo", &[]),
                ("/p/svc/rails", &[]),
                ("/p/svc/play", &["/p/cache"]),
                ("/p/cache", &[]),
            ],
            &[("/p/svc", &["/p/db"])],
        );
        let deps = d.resolve().expect("resolves");
        let both: BTreeSet<AppId> = [id("/p/db/mongo"), id("/p/db/mysql")].into();
        assert_eq!(deps[&id("/p/svc/rails")], both);
        let mut play = both.clone();
        play.insert(id("/p/cache"));
        assert_eq!(deps[&id("/p/svc/play")], play);
        assert!(deps[&id("/p/db/mysql")].is_empty());
    }

    #[test]
    fn a_group_depending_on_its_own_member_does_not_make_it_depend_on_itself() {
        let d = declared(&[("/p/db", &[]), ("/p/web", &[])], &[("/p", &["/p/db"])]);
        let layers = d.layers().expect("no cycle");
        assert_eq!(layers[&id("/p/db")], 0);
        assert_eq!(layers[&id("/p/web")], 1);
    }

    #[test]
    fn an_unknown_dependency_is_named() {
        let d = declared(&[("/a", &["/nope"])], &[]);
        let err = d.resolve().unwrap_err();
        assert_eq!(
            err,
            DependencyError::Unknown {
                declared_by: "/a".into(),
                dependency: "/nope".into()
            }
        );
        assert!(err.to_string().contains("/a depends on /nope"));
    }

    #[test]
    fn a_cycle_is_refused_and_named() {
        let d = declared(&[("/a", &["/b"]), ("/b", &["/c"]), ("/c", &["/a"])], &[]);
        let err = d.layers().unwrap_err();
        assert_eq!(
            err,
            DependencyError::Cycle(vec![id("/a"), id("/b"), id("/c"), id("/a")])
        );
        assert!(err.to_string().contains("/a -> /b -> /c -> /a"));
        // Through a group too.
        let d = declared(&[("/g/x", &[]), ("/y", &["/g"])], &[("/g", &["/y"])]);
        assert!(matches!(d.layers(), Err(DependencyError::Cycle(_))));
    }

    #[test]
    fn steps_follow_the_layers_of_the_affected_apps() {
        let d = declared(
            &[
                ("/db", &[]),
                ("/cache", &[]),
                ("/api", &["/db", "/cache"]),
                ("/web", &["/api"]),
            ],
            &[],
        );
        let layers = d.layers().expect("layers");
        let all = [id("/web"), id("/api"), id("/db"), id("/cache")];
        assert_eq!(
            steps(&layers, &all),
            vec![
                vec![id("/db"), id("/cache")],
                vec![id("/api")],
                vec![id("/web")]
            ]
        );
        // Only what changes is deployed; empty layers make no step.
        assert_eq!(
            steps(&layers, &[id("/web"), id("/db")]),
            vec![vec![id("/db")], vec![id("/web")]]
        );
    }
}
