//! What the cluster state keeps of its credentials: join tokens (only their secrets'
//! SHA-256) and the agent certificates issued, with the ones revoked.

use std::collections::{BTreeMap, BTreeSet};

use domain::AgentId;
use serde::{Deserialize, Serialize};

use crate::command::{Response, Subject};
use crate::tls::{JoinKind, JoinToken};

/// A join token as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    /// Its public id (the fourth part of the token).
    pub id: String,
    /// Whom it admits.
    pub kind: JoinKind,
    /// SHA-256 of its secret, hex.
    pub secret_sha256: String,
    /// When it was made, ms since the Unix epoch.
    pub created_ms: u64,
    /// When it stops working, ms since the Unix epoch; `None`: never.
    #[serde(default)]
    pub expires_ms: Option<u64>,
    /// Revoked: it admits no one any more.
    #[serde(default)]
    pub revoked: bool,
}

/// Why a join token that parsed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefusal {
    /// No such token, or the secret does not match.
    #[error("the join token is not one of this cluster's (unknown id or wrong secret)")]
    Unknown,
    /// Revoked.
    #[error("the join token {0} was revoked; make a new one with `drover token create`")]
    Revoked(String),
    /// Expired.
    #[error("the join token {0} has expired; make a new one with `drover token create`")]
    Expired(String),
}

impl JoinTokenRecord {
    /// The record of `token`, made at `created_ms`, valid until `expires_ms`.
    pub fn of(token: &JoinToken, created_ms: u64, expires_ms: Option<u64>) -> Self {
        JoinTokenRecord {
            id: token.id.clone(),
            kind: token.kind,
            secret_sha256: token.secret_hash(),
            created_ms,
            expires_ms,
            revoked: false,
        }
    }

    /// Whether this record admits `token` at `now_ms`.
    pub fn admits(&self, token: &JoinToken, now_ms: u64) -> Result<(), JoinRefusal> {
        let hash = token.secret_hash();
        if token.id != self.id
            || token.kind != self.kind
            || !constant_time_eq(hash.as_bytes(), self.secret_sha256.as_bytes())
        {
            return Err(JoinRefusal::Unknown);
        }
        if self.revoked {
            return Err(JoinRefusal::Revoked(self.id.clone()));
        }
        if self.expires_ms.is_some_and(|at| now_ms >= at) {
            return Err(JoinRefusal::Expired(self.id.clone()));
        }
        Ok(())
    }
}

/// Compares without stopping at the first difference (secrets' hashes).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Join tokens, issued agent certificates and revocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    join_tokens: BTreeMap<String, JoinTokenRecord>,
    /// Fingerprints (SHA-256 of the DER, hex) of the certificates issued to each agent.
    #[serde(default)]
    agent_certificates: BTreeMap<AgentId, BTreeSet<String>>,
    /// Fingerprints of certificates that no longer admit their holder.
    #[serde(default)]
    revoked_certificates: BTreeSet<String>,
}

impl Credentials {
    /// Every join token, by id.
    pub fn join_tokens(&self) -> &BTreeMap<String, JoinTokenRecord> {
        &self.join_tokens
    }

    /// Whether `token` admits its holder at `now_ms`.
    pub fn admits(&self, token: &JoinToken, now_ms: u64) -> Result<(), JoinRefusal> {
        self.join_tokens
            .get(&token.id)
            .ok_or(JoinRefusal::Unknown)?
            .admits(token, now_ms)
    }

    /// Whether the certificate with this fingerprint (hex) was revoked.
    pub fn is_revoked(&self, fingerprint: &str) -> bool {
        self.revoked_certificates.contains(fingerprint)
    }

    pub(super) fn put_join_token(&mut self, token: JoinTokenRecord) -> Response {
        if self.join_tokens.contains_key(&token.id) {
            return Response::Conflict {
                message: format!("join token {} exists already", token.id),
            };
        }
        self.join_tokens.insert(token.id.clone(), token);
        Response::Ok
    }

    pub(super) fn revoke_join_token(&mut self, id: &str) -> Response {
        match self.join_tokens.get_mut(id) {
            Some(token) => {
                token.revoked = true;
                Response::Ok
            }
            None => Response::NotFound {
                kind: Subject::JoinToken,
                id: id.to_string(),
            },
        }
    }

    pub(super) fn put_agent_certificate(&mut self, agent: AgentId, fingerprint: String) {
        self.agent_certificates
            .entry(agent)
            .or_default()
            .insert(fingerprint);
    }

    /// Revokes every certificate issued to `agent` (it was removed).
    pub(super) fn revoke_agent(&mut self, agent: &AgentId) {
        if let Some(issued) = self.agent_certificates.remove(agent) {
            self.revoked_certificates.extend(issued);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{ClusterCa, JoinKind, JoinToken};
    use crate::{ClusterState, Command};

    fn token(kind: JoinKind) -> JoinToken {
        JoinToken::generate(ClusterCa::create().unwrap().fingerprint(), kind).unwrap()
    }

    #[test]
    fn a_token_admits_until_it_expires_or_is_revoked_and_only_with_its_secret() {
        let mut state = ClusterState::default();
        let t = token(JoinKind::Agent);
        let record = JoinTokenRecord::of(&t, 1_000, Some(2_000));
        assert!(
            !format!("{record:?}").contains(&t.secret),
            "only the hash is kept"
        );
        assert_eq!(
            state.apply(Command::PutJoinToken {
                token: record.clone()
            }),
            Response::Ok
        );
        assert!(matches!(
            state.apply(Command::PutJoinToken { token: record }),
            Response::Conflict { .. }
        ));
        assert_eq!(state.credentials().admits(&t, 1_500), Ok(()));
        assert_eq!(
            state.credentials().admits(&t, 2_000),
            Err(JoinRefusal::Expired(t.id.clone()))
        );
        let mut forged = t.clone();
        forged.secret = "0".repeat(64);
        assert_eq!(
            state.credentials().admits(&forged, 1_500),
            Err(JoinRefusal::Unknown)
        );
        let mut other_kind = t.clone();
        other_kind.kind = JoinKind::Master;
        assert_eq!(
            state.credentials().admits(&other_kind, 1_500),
            Err(JoinRefusal::Unknown)
        );
        assert_eq!(
            state.apply(Command::RevokeJoinToken { id: t.id.clone() }),
            Response::Ok
        );
        assert_eq!(
            state.credentials().admits(&t, 1_500),
            Err(JoinRefusal::Revoked(t.id.clone()))
        );
        assert!(matches!(
            state.apply(Command::RevokeJoinToken { id: "nope".into() }),
            Response::NotFound {
                kind: Subject::JoinToken,
                ..
            }
        ));
    }

    #[test]
    fn removing_an_agent_revokes_the_certificates_issued_to_it() {
        let mut state = ClusterState::default();
        let agent = domain::Agent {
            id: AgentId("a-1".into()),
            hostname: "h".into(),
            ip: "10.0.0.1".into(),
            domain: None,
            resources: Default::default(),
            attributes: Default::default(),
        };
        state.apply(Command::RegisterAgent {
            agent,
            remote: false,
            at_ms: 1,
        });
        state.apply(Command::PutAgentCertificate {
            agent_id: AgentId("a-1".into()),
            fingerprint: "ab".into(),
        });
        assert!(!state.credentials().is_revoked("ab"));
        state.apply(Command::SetAgentState {
            agent_id: AgentId("a-1".into()),
            state: crate::AgentState::Gone,
            at_ms: 2,
        });
        assert!(state.credentials().is_revoked("ab"));
        // The state survives a snapshot round trip with its credentials.
        let copy: ClusterState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert!(copy.credentials().is_revoked("ab"));
    }
}
