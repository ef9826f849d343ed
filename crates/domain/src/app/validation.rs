//! Marathon's 422 body: every problem at once, each under the JSON path it belongs to.

use serde_json::{Value, json};

/// The problems found in one document, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    details: Vec<(String, Vec<String>)>,
    /// Set when reading what is already stored: see [`ValidationErrors::for_stored`].
    limits_waived: bool,
}

impl ValidationErrors {
    /// Errors for reading a definition that was accepted before (the log, a snapshot): the
    /// limits of [`crate::limits`] are not enforced, so tightening one never makes a
    /// replicated entry unreadable; values beyond a limit are clamped to it instead.
    pub fn for_stored() -> Self {
        ValidationErrors {
            details: Vec::new(),
            limits_waived: true,
        }
    }

    /// False when reading a stored definition (see [`ValidationErrors::for_stored`]).
    pub fn enforces_limits(&self) -> bool {
        !self.limits_waived
    }

    /// Records a value beyond one of drover's limits (not recorded for stored definitions).
    pub fn add_limit(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if !self.limits_waived {
            self.add(path, message);
        }
    }

    /// Records `message` under `path` (Marathon's `/constraints(0)` syntax).
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let message = message.into();
        match self.details.iter_mut().find(|(p, _)| *p == path) {
            Some((_, errors)) if !errors.contains(&message) => errors.push(message),
            Some(_) => {}
            None => self.details.push((path, vec![message])),
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    /// The recorded problems as `(path, messages)`.
    pub fn details(&self) -> &[(String, Vec<String>)] {
        &self.details
    }

    /// The messages recorded for one path.
    pub fn at(&self, path: &str) -> &[String] {
        self.details
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, e)| e.as_slice())
            .unwrap_or(&[])
    }

    /// Marathon's body: `{"message":"Object is not valid","details":[{"path":…,"errors":[…]}]}`.
    pub fn to_json(&self) -> Value {
        let details: Vec<Value> = self
            .details
            .iter()
            .map(|(path, errors)| json!({"path": path, "errors": errors}))
            .collect();
        json!({"message": "Object is not valid", "details": details})
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (path, errors)) in self.details.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{path}: {}", errors.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
