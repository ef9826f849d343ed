//! `/v1/acl/…`: ACL bootstrap and tokens. A token's secret appears in exactly two answers:
//! the bootstrap's and the creation's; every other answer shows its accessor id only.

use serde::{Deserialize, Serialize};

/// A token as the API shows it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AclToken {
    /// Public id: names the token to revoke it; safe to log.
    pub accessor_id: String,
    /// A name for people.
    pub name: String,
    /// Its policies: `read`, `apps-write:/PREFIX/`, `operator`, `management`.
    pub policies: Vec<String>,
    /// When it was created (ISO-8601).
    pub create_time: String,
    /// When it stops working (ISO-8601), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
}

/// A token just created: the only answer that carries its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The token.
    #[serde(flatten)]
    pub token: AclToken,
    /// The secret to send as `Authorization: Bearer <secret>`; shown once, stored hashed.
    pub secret_id: String,
}

/// `GET /v1/acl/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTokens {
    /// Every token, by accessor id.
    pub tokens: Vec<AclToken>,
}

/// `POST /v1/acl/tokens`: what the new token should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// A name for people.
    pub name: String,
    /// Its policies (at least one).
    pub policies: Vec<String>,
    /// How long it works, in seconds; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}
