//! The error body every failed request answers with (Marathon's `{"message", "details"?}`),
//! and decoding an answer into its type with an error that names the endpoint and the field.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use domain::ValidationErrors;

use crate::deployments::DeploymentRef;

/// The body of an answer outside 2xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, in words.
    pub message: String,
    /// Marathon's validation errors (422): one entry per offending path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ErrorDetail>>,
    /// The deployments locking an app (409 on a change that is not forced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeploymentRef>>,
    /// Why an agent's registration was refused, for the agent to act on
    /// (`state::protocol::AGENT_ID_IN_USE`, `AGENT_PROTOCOL_UNSUPPORTED`), with the agents involved. Boxed: it is rare,
    /// and inline it would make every error answer (every `Result<_, ApiError>`) large.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Box<Refusal>>,
}

/// An agent registration refused: its id is live at another IP (a copied work dir), or it
/// speaks an agent protocol the master does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// Machine-readable reason, `agent_id_in_use` or `agent_protocol_unsupported`.
    pub reason: String,
    /// The id of the agent (both agents claim it, for `agent_id_in_use`).
    pub agent_id: String,
    /// The IP the live agent with that id registered from (`agent_id_in_use` only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub live_ip: String,
    /// The IP of the agent that was refused.
    pub ip: String,
}

/// One validation error: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// JSON pointer of the field, `/id`, `/constraints(0)`.
    pub path: String,
    /// The problems, in words.
    pub errors: Vec<String>,
}

impl ErrorBody {
    /// An error with just a message.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorBody {
            message: message.into(),
            details: None,
            deployments: None,
            refusal: None,
        }
    }

    /// Marathon's 422: `"Object is not valid"` with one detail per offending path.
    pub fn invalid(errors: &ValidationErrors) -> Self {
        ErrorBody {
            details: Some(
                errors
                    .details()
                    .iter()
                    .map(|(path, errors)| ErrorDetail {
                        path: path.clone(),
                        errors: errors.clone(),
                    })
                    .collect(),
            ),
            ..ErrorBody::new("Object is not valid")
        }
    }
}

/// The message, then each validation detail as `path: problems`.
impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for detail in self.details.iter().flatten() {
            write!(f, "; {}: {}", detail.path, detail.errors.join(", "))?;
        }
        Ok(())
    }
}

/// An answer that does not have the shape its endpoint promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The endpoint that answered, `GET /v1/nodes`.
    pub endpoint: String,
    /// The JSON path of the offending field (`.` for the whole body).
    pub path: String,
    /// What serde found wrong.
    pub problem: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer of {} does not have the expected shape at {}: {}. Is the master the same drover version as this CLI?",
            self.endpoint, self.path, self.problem
        )
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the answer of `endpoint` (said in the error, `GET /v2/apps`) into its type.
pub fn decode<T: DeserializeOwned>(endpoint: &str, answer: Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(answer).map_err(|e| DecodeError {
        endpoint: endpoint.to_string(),
        path: e.path().to_string(),
        problem: e.inner().to_string(),
    })
}
