//! ACL tokens and their policies, replicated with the rest of the cluster state (Nomad's
//! model: one bootstrap creates the first management token; every API call carries a token).
//!
//! The state keeps a hash of each token's secret, never the secret: a stolen snapshot or log
//! gives no usable credential. What a policy allows is decided here, purely, so the rule is
//! unit-tested without a network; the master asks it for every request ([`AclToken::may`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use domain::AppId;
use serde::{Deserialize, Serialize};

/// What a token may do. Policies add up: a token with several may do what any one allows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    /// `read`: read everything (apps, tasks, deployments, nodes, metrics, events).
    Read,
    /// `apps-write:<prefix>`: read everything; create, change, restart and delete apps (and
    /// kill their tasks, cancel their deployments) whose id starts with the prefix.
    AppsWrite {
        /// An app id prefix that ends with `/`, e.g. `/team-a/`.
        prefix: String,
    },
    /// `operator`: read everything; leadership (abdicate), nodes, masters, eviction.
    Operator,
    /// `management`: everything, ACL tokens included.
    Management,
}

/// Why a policy name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not one of the known names.
    #[error(
        "unknown policy `{0}`: use read, apps-write:/PREFIX/ (e.g. apps-write:/team-a/), operator or management"
    )]
    Unknown(String),
    /// An `apps-write` prefix that is not an app path ending with `/`.
    #[error(
        "policy `apps-write:{0}`: the prefix must start and end with `/` (e.g. apps-write:/team-a/) so that it names a group of apps, not part of a name"
    )]
    Prefix(String),
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "read" => Ok(Policy::Read),
            "operator" => Ok(Policy::Operator),
            "management" => Ok(Policy::Management),
            other => match other.strip_prefix("apps-write:") {
                Some(prefix) => {
                    let well_formed = prefix.len() >= 2
                        && prefix.starts_with('/')
                        && prefix.ends_with('/')
                        && !prefix.contains("//")
                        && AppId::parse(prefix).is_ok();
                    if well_formed {
                        Ok(Policy::AppsWrite {
                            prefix: prefix.to_string(),
                        })
                    } else {
                        Err(PolicyError::Prefix(prefix.to_string()))
                    }
                }
                None => Err(PolicyError::Unknown(other.to_string())),
            },
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Read => f.write_str("read"),
            Policy::AppsWrite { prefix } => write!(f, "apps-write:{prefix}"),
            Policy::Operator => f.write_str("operator"),
            Policy::Management => f.write_str("management"),
        }
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a request needs, as the master classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Any valid token (e.g. `GET /v1/acl/token/self`).
    Authenticated,
    /// Reading anything.
    Read,
    /// Changing the app (its definition, its tasks, its deployments).
    WriteApp(&'a AppId),
    /// Changing something no single app owns under a prefix (e.g. a deployment of apps in
    /// several places): only tokens that may write every app.
    WriteAllApps,
    /// Operating the cluster: leadership, nodes, masters, eviction.
    Operate,
    /// ACL tokens and anything else not named.
    Manage,
}

impl Policy {
    /// True when this policy allows `access`.
    pub fn allows(&self, access: Access<'_>) -> bool {
        match (self, access) {
            (Policy::Management, _) => true,
            (_, Access::Authenticated | Access::Read) => true,
            (Policy::AppsWrite { prefix }, Access::WriteApp(app)) => {
                app.as_str().starts_with(prefix.as_str())
            }
            (Policy::Operator, Access::Operate) => true,
            _ => false,
        }
    }

    /// True when this policy reads every event of the stream (not only its apps').
    pub fn reads_every_event(&self) -> bool {
        !matches!(self, Policy::AppsWrite { .. })
    }
}

/// An ACL token as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclToken {
    /// Public id, safe to show and log; names the token to revoke it.
    pub accessor_id: String,
    /// SHA-256 of the secret, lower-case hex. The secret itself is never stored.
    pub secret_hash: String,
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub policies: Vec<Policy>,
    /// When it was created, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When it stops working, ms since the Unix epoch; `None` for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl AclToken {
    /// True when the token has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }

    /// True when one of the token's policies allows `access`.
    pub fn may(&self, access: Access<'_>) -> bool {
        self.policies.iter().any(|p| p.allows(access))
    }

    /// True when the token sees every event; otherwise only its apps' and the events no app
    /// owns (see `docs/security.md`).
    pub fn reads_every_event(&self) -> bool {
        self.policies.iter().any(Policy::reads_every_event)
    }

    /// The app id prefixes the token may write.
    pub fn app_prefixes(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().filter_map(|p| match p {
            Policy::AppsWrite { prefix } => Some(prefix.as_str()),
            _ => None,
        })
    }
}

/// The replicated ACL state: whether bootstrap happened, and the tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredAcl")]
pub struct AclState {
    bootstrapped: bool,
    tokens: BTreeMap<String, AclToken>,
    /// Accessor ids by secret hash (derived from `tokens`; rebuilt when a snapshot is read).
    #[serde(skip)]
    by_hash: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct StoredAcl {
    bootstrapped: bool,
    tokens: BTreeMap<String, AclToken>,
}

impl From<StoredAcl> for AclState {
    fn from(s: StoredAcl) -> Self {
        let by_hash = s
            .tokens
            .values()
            .map(|t| (t.secret_hash.clone(), t.accessor_id.clone()))
            .collect();
        AclState {
            bootstrapped: s.bootstrapped,
            tokens: s.tokens,
            by_hash,
        }
    }
}

/// Why an ACL change was refused (apply answers it as a conflict or not-found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclRefusal {
    /// Bootstrap happened before.
    AlreadyBootstrapped,
    /// The accessor id or the secret is taken.
    Taken(String),
    /// No token with that accessor id.
    NoSuchToken(String),
}

impl AclState {
    /// True once the first management token was created.
    pub fn bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// Tokens by accessor id.
    pub fn tokens(&self) -> &BTreeMap<String, AclToken> {
        &self.tokens
    }

    /// The token whose secret hashes to `secret_hash`.
    pub fn by_secret_hash(&self, secret_hash: &str) -> Option<&AclToken> {
        self.tokens.get(self.by_hash.get(secret_hash)?)
    }

    /// Applies bootstrap: the first management token, once.
    pub fn bootstrap(&mut self, token: AclToken) -> Result<(), AclRefusal> {
        if self.bootstrapped {
            return Err(AclRefusal::AlreadyBootstrapped);
        }
        self.put(token)?;
        self.bootstrapped = true;
        Ok(())
    }

    /// Adds a token; its accessor id and secret hash must be new.
    pub fn put(&mut self, token: AclToken) -> Result<(), AclRefusal> {
        if self.tokens.contains_key(&token.accessor_id)
            || self.by_hash.contains_key(&token.secret_hash)
        {
            return Err(AclRefusal::Taken(token.accessor_id));
        }
        self.by_hash
            .insert(token.secret_hash.clone(), token.accessor_id.clone());
        self.tokens.insert(token.accessor_id.clone(), token);
        Ok(())
    }

    /// Removes a token: it stops working as soon as this is applied.
    pub fn revoke(&mut self, accessor_id: &str) -> Result<AclToken, AclRefusal> {
        let token = self
            .tokens
            .remove(accessor_id)
            .ok_or_else(|| AclRefusal::NoSuchToken(accessor_id.to_string()))?;
        self.by_hash.remove(&token.secret_hash);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, hash: &str, policies: &[&str]) -> AclToken {
        AclToken {
            accessor_id: id.into(),
            secret_hash: hash.into(),
            name: id.into(),
            policies: policies
                .iter()
                .map(|p| p.parse().expect("policy"))
                .collect(),
            created_at_ms: 1,
            expires_at_ms: None,
        }
    }

    fn app(id: &str) -> AppId {
        AppId::parse(id).expect("app id")
    }

    #[test]
    fn policies_read_and_print_as_their_names() {
        for name in ["read", "operator", "management", "apps-write:/team-a/"] {
            let p: Policy = name.parse().expect("known");
            assert_eq!(p.to_string(), name);
            let json = serde_json::to_string(&p).expect("encodes");
            assert_eq!(serde_json::from_str::<Policy>(&json).expect("decodes"), p);
        }
        for bad in [
            "write",
            "apps-write:team-a",
            "apps-write:/team-a",
            "apps-write:/",
            "",
        ] {
            assert!(bad.parse::<Policy>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_prefix_token_writes_only_apps_under_its_prefix_and_reads_everything() {
        let t = token("a", "h", &["apps-write:/team-a/"]);
        assert!(t.may(Access::WriteApp(&app("/team-a/web"))));
        assert!(t.may(Access::WriteApp(&app("/team-a/db/primary"))));
        assert!(!t.may(Access::WriteApp(&app("/team-ab/web"))));
        assert!(!t.may(Access::WriteApp(&app("/team-a"))));
        assert!(!t.may(Access::WriteApp(&app("/team-b/web"))));
        assert!(!t.may(Access::WriteAllApps));
        assert!(t.may(Access::Read));
        assert!(!t.may(Access::Operate));
        assert!(!t.may(Access::Manage));
        assert!(!t.reads_every_event());
    }

    #[test]
    fn read_operator_and_management_allow_what_their_names_say() {
        let read = token("r", "1", &["read"]);
        assert!(read.may(Access::Read) && read.may(Access::Authenticated));
        assert!(!read.may(Access::WriteApp(&app("/x"))) && !read.may(Access::Operate));
        let operator = token("o", "2", &["operator"]);
        assert!(operator.may(Access::Operate) && !operator.may(Access::Manage));
        assert!(!operator.may(Access::WriteAllApps));
        let management = token("m", "3", &["management"]);
        assert!(management.may(Access::Manage) && management.may(Access::WriteAllApps));
        let both = token("b", "4", &["read", "apps-write:/t/"]);
        assert!(both.reads_every_event());
    }

    #[test]
    fn bootstrap_happens_once_and_a_revoked_token_is_not_found_by_its_secret() {
        let mut acl = AclState::default();
        acl.bootstrap(token("m", "h1", &["management"]))
            .expect("first");
        assert_eq!(
            acl.bootstrap(token("m2", "h2", &["management"])),
            Err(AclRefusal::AlreadyBootstrapped)
        );
        acl.put(token("r", "h3", &["read"])).expect("new");
        assert!(matches!(
            acl.put(token("x", "h3", &["read"])),
            Err(AclRefusal::Taken(_))
        ));
        assert_eq!(acl.by_secret_hash("h3").map(|t| t.name.as_str()), Some("r"));
        let json = serde_json::to_string(&acl).expect("encodes");
        let mut read: AclState = serde_json::from_str(&json).expect("decodes");
        assert_eq!(read, acl, "a snapshot carries the tokens and the index");
        read.revoke("r").expect("exists");
        assert!(read.by_secret_hash("h3").is_none());
        assert!(matches!(read.revoke("r"), Err(AclRefusal::NoSuchToken(_))));
    }

    #[test]
    fn a_token_expires_at_its_time() {
        let mut t = token("e", "h", &["read"]);
        assert!(!t.expired(u64::MAX));
        t.expires_at_ms = Some(100);
        assert!(!t.expired(99));
        assert!(t.expired(100));
    }
}
