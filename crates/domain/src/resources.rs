//! Resources an agent offers and an instance needs: `cpus`, `mem` (MiB), `disk` (MiB), `ports`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::attributes::shown;
use crate::ranges::{self, Ranges, RangesError};

/// The largest `cpus`, `mem` or `disk` an agent may offer: far above any machine, and low
/// enough that thousandths stay exact in a u64 and sums of many agents cannot overflow.
pub const MAX_SCALAR: f64 = 1e12;

/// Scalar resources are compared in thousandths, as Mesos does, so sums never drift.
pub fn to_millis(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        (value * 1000.0).round() as u64
    } else {
        0
    }
}

/// A bundle of resources.
///
/// Unknown fields are ignored, as for [`crate::Agent`] (a newer agent may offer a resource
/// this build does not know); operators' files are checked where they are read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU shares (cores).
    #[serde(default, deserialize_with = "deserialize_scalar")]
    pub cpus: f64,
    /// Memory in MiB.
    #[serde(default, deserialize_with = "deserialize_scalar")]
    pub mem: f64,
    /// Disk in MiB.
    #[serde(default, deserialize_with = "deserialize_scalar")]
    pub disk: f64,
    /// Port ranges, `[31000-32000]`, within 0..=65535.
    #[serde(default, deserialize_with = "ranges::deserialize_ports")]
    pub ports: Ranges,
}

/// Why a `--resources` text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// An entry has no `name:value` shape.
    #[error(
        "resource `{0}` must look like `name:value`, e.g. `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`"
    )]
    Shape(String),
    /// A resource name drover does not know.
    #[error("unknown resource `{0}`: drover knows cpus, mem, disk and ports")]
    Unknown(String),
    /// A scalar that is not a number from 0 to [`MAX_SCALAR`].
    #[error("resource `{name}` must be a number from 0 to 1000000000000 (1e12), got `{value}`")]
    Scalar {
        /// Resource name.
        name: String,
        /// The text given.
        value: String,
    },
    /// The same resource twice: the second would silently replace the first.
    #[error("resource `{0}` is given twice; give each resource once")]
    Duplicate(String),
    /// Malformed port ranges.
    #[error("resource `ports`: {0}")]
    Ports(#[from] RangesError),
}

impl Resources {
    /// Parses Mesos's `--resources` form: `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`.
    /// Resources not named keep the values of `self` (so callers can start from detected ones).
    pub fn parse_over(mut self, text: &str) -> Result<Self, ResourcesError> {
        let mut seen: Vec<&str> = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry
                .split_once(':')
                .ok_or_else(|| ResourcesError::Shape(shown(entry)))?;
            let (name, value) = (name.trim(), value.trim());
            if seen.contains(&name) {
                return Err(ResourcesError::Duplicate(shown(name)));
            }
            seen.push(name);
            let scalar = || -> Result<f64, ResourcesError> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| scalar_in_range(*v))
                    .ok_or_else(|| ResourcesError::Scalar {
                        name: shown(name),
                        value: shown(value),
                    })
            };
            match name {
                "cpus" => self.cpus = scalar()?,
                "mem" => self.mem = scalar()?,
                "disk" => self.disk = scalar()?,
                "ports" => self.ports = Ranges::parse_ports(value)?,
                other => return Err(ResourcesError::Unknown(shown(other))),
            }
        }
        Ok(self)
    }

    /// Parses `--resources` text starting from nothing.
    pub fn parse(text: &str) -> Result<Self, ResourcesError> {
        Resources::default().parse_over(text)
    }
}

/// True for a scalar resource drover accepts: finite, from 0 to [`MAX_SCALAR`].
pub fn scalar_in_range(value: f64) -> bool {
    (0.0..=MAX_SCALAR).contains(&value)
}

fn deserialize_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if scalar_in_range(value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be a number from 0 to 1000000000000 (1e12), got {value}"
        )))
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpus:{};mem:{};disk:{};ports:{}",
            self.cpus, self.mem, self.disk, self.ports
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_mesos_resources_flag() {
        let r = Resources::parse("cpus:4;mem:8192;disk:10000;ports:[31000-32000]").unwrap();
        assert_eq!(r.cpus, 4.0);
        assert_eq!(r.mem, 8192.0);
        assert_eq!(r.disk, 10000.0);
        assert_eq!(r.ports.count(), 1001);
        assert_eq!(
            r.to_string(),
            "cpus:4;mem:8192;disk:10000;ports:[31000-32000]"
        );
    }

    #[test]
    fn keeps_what_is_not_overridden() {
        let detected = Resources {
            cpus: 2.0,
            mem: 1024.0,
            ..Resources::default()
        };
        let r = detected.parse_over("mem:512").unwrap();
        assert_eq!((r.cpus, r.mem), (2.0, 512.0));
    }

    #[test]
    fn says_what_is_wrong() {
        let e = Resources::parse("cpus=4").unwrap_err().to_string();
        assert!(e.contains("name:value"), "{e}");
        let e = Resources::parse("gpus:1").unwrap_err().to_string();
        assert!(e.contains("unknown resource `gpus`"), "{e}");
        let e = Resources::parse("mem:-1").unwrap_err().to_string();
        assert!(
            e.contains("from 0 to 1000000000000") && e.contains("`-1`"),
            "{e}"
        );
        let e = Resources::parse("ports:31000-32000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("brackets"), "{e}");
    }

    #[test]
    fn ports_above_65535_are_refused_naming_the_value_and_the_range() {
        let e = Resources::parse("ports:[0-70000]").unwrap_err().to_string();
        assert_eq!(
            e,
            "resource `ports`: port 70000 in `[0-70000]` is out of range: ports are 0 to 65535, e.g. `[31000-32000]`"
        );
        let r = Resources::parse("ports:[0-65535]").unwrap();
        assert_eq!(r.ports.count(), 65536);
    }

    #[test]
    fn scalars_must_be_finite_and_within_bounds() {
        for bad in ["NaN", "inf", "-inf", "1e13", "-0.5", "4e308", ""] {
            let e = Resources::parse(&format!("cpus:{bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("`cpus` must be a number from 0 to 1000000000000"),
                "{bad}: {e}"
            );
            assert!(e.contains(&format!("got `{bad}`")), "{bad}: {e}");
        }
        assert_eq!(Resources::parse("disk:1e12").unwrap().disk, MAX_SCALAR);
    }

    #[test]
    fn json_resources_are_held_to_the_same_bounds() {
        let e = serde_json::from_str::<Resources>(r#"{"cpus":-1}"#).unwrap_err();
        assert!(e.to_string().contains("got -1"), "{e}");
        let e = serde_json::from_str::<Resources>(r#"{"mem":1e300}"#).unwrap_err();
        assert!(e.to_string().contains("from 0 to 1000000000000"), "{e}");
        let e = serde_json::from_str::<Resources>(r#"{"ports":"[1-70000]"}"#).unwrap_err();
        assert!(e.to_string().contains("port 70000"), "{e}");
        let r: Resources = serde_json::from_str(r#"{"cpus":2,"ports":"[1-2]"}"#).unwrap();
        assert_eq!((r.cpus, r.ports.count()), (2.0, 2));
    }

    #[test]
    fn a_resource_given_twice_is_refused() {
        let e = Resources::parse("cpus:1;mem:2;cpus:3").unwrap_err();
        assert_eq!(e, ResourcesError::Duplicate("cpus".into()));
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn millis_are_exact() {
        assert_eq!(to_millis(0.1) * 3, to_millis(0.3));
        assert_eq!(to_millis(-1.0), 0);
        assert_eq!(to_millis(f64::NAN), 0);
    }
}
