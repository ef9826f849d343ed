//! A master's configuration, as `drover master` flags give it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::FaultDomain;

/// Everything a master needs to start.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// This master's Raft id; a key of `masters`.
    pub id: u64,
    /// Where the HTTP API (and Raft) listens.
    pub listen: SocketAddr,
    /// Every master, by id, with the `host:port` the others reach it at.
    pub masters: BTreeMap<u64, String>,
    /// Where the Raft log, vote and snapshots live.
    pub data_dir: PathBuf,
    /// This master's region and zone.
    pub domain: FaultDomain,
    /// Raft heartbeat interval.
    pub heartbeat: Duration,
    /// Shortest election timeout.
    pub election_timeout_min: Duration,
    /// Longest election timeout.
    pub election_timeout_max: Duration,
    /// Exit with code 103 when this master stops being the leader.
    pub exit_on_leadership_loss: bool,
    /// How long a request waits for a leader before answering 503.
    pub leader_wait: Duration,
    /// How long a write waits for a quorum before failing.
    pub write_timeout: Duration,
    /// How often agents heartbeat.
    pub agent_heartbeat: Duration,
    /// An agent silent for this long is unreachable.
    pub agent_unreachable_after: Duration,
    /// After an election, how long agents have to be heard from before any is called
    /// unreachable.
    pub agent_reregistration_grace: Duration,
    /// Fraction of a zone's (or all) agents unreachable together that engages mass
    /// eviction protection.
    pub eviction_threshold: f64,
    /// In a protected scope, how often the instances of one more unreachable agent are
    /// replaced.
    pub eviction_interval: Duration,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A `--masters` entry without `ID=HOST:PORT`.
    #[error("--masters entry `{0}` must look like ID=HOST:PORT, e.g. 1=10.0.0.1:8080")]
    MasterEntry(String),
    /// The same id twice.
    #[error("--masters names master {0} twice")]
    DuplicateId(u64),
    /// An even number, none, or more than seven.
    #[error("--masters lists {0} masters; drover needs 1, 3, 5 or 7. {1}")]
    Count(usize, String),
    /// `--id` not among `--masters`.
    #[error("--id {0} is not in --masters ({1})")]
    UnknownId(u64, String),
    /// Timings that cannot work.
    #[error("{0}")]
    Timing(String),
}

/// Parses `1=HOST:PORT,2=HOST:PORT,…` and checks the count.
pub fn parse_masters(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || ConfigError::MasterEntry(entry.to_string());
        let (id, addr) = entry.split_once('=').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        let addr = addr.trim();
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        if out.insert(id, addr.to_string()).is_some() {
            return Err(ConfigError::DuplicateId(id));
        }
    }
    let n = out.len();
    if ![1, 3, 5, 7].contains(&n) {
        let why = if n == 0 {
            "Name every master, this one included: --masters 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT"
                .to_string()
        } else if n % 2 == 0 {
            format!(
                "A quorum is a majority, so {n} masters tolerate no more failures than {} would, and a split into two halves leaves no side with a majority",
                n - 1
            )
        } else {
            "Every write waits for a majority; more than 7 masters make writes slower and add no useful safety".to_string()
        };
        return Err(ConfigError::Count(n, why));
    }
    Ok(out)
}

impl MasterConfig {
    /// Checks what the flags cannot check alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.masters.contains_key(&self.id) {
            let ids: Vec<String> = self.masters.keys().map(u64::to_string).collect();
            return Err(ConfigError::UnknownId(self.id, ids.join(", ")));
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.election_timeout_min {
            return Err(ConfigError::Timing(format!(
                "--heartbeat-ms ({} ms) must be above 0 and below --election-timeout-min-ms ({} ms)",
                self.heartbeat.as_millis(),
                self.election_timeout_min.as_millis()
            )));
        }
        if self.election_timeout_min >= self.election_timeout_max {
            return Err(ConfigError::Timing(format!(
                "--election-timeout-min-ms ({} ms) must be below --election-timeout-max-ms ({} ms)",
                self.election_timeout_min.as_millis(),
                self.election_timeout_max.as_millis()
            )));
        }
        Ok(())
    }

    /// The election timeouts to give openraft, in ms: `(min, max)`.
    ///
    /// drover's election timeout is the time from the last heartbeat a follower saw to the
    /// moment it stands for election. openraft 0.9 waits its leader lease (equal to its own
    /// maximum election timeout) *plus* a random timeout, so a follower would wait up to twice
    /// the maximum. drover halves the maximum for openraft, making lease + timeout fall
    /// within `[min, max]` (from `max/2 + openraft's min` up to `max`).
    pub fn openraft_election_timeouts(&self) -> (u64, u64) {
        let heartbeat = self.heartbeat.as_millis() as u64;
        let max = (self.election_timeout_max.as_millis() as u64 / 2).max(heartbeat * 2 + 1);
        let min = (self.election_timeout_min.as_millis() as u64)
            .saturating_sub(max)
            .max(heartbeat * 2)
            .min(max - 1);
        (min, max)
    }

    /// The address other masters and clients reach this one at.
    pub fn advertised(&self) -> &str {
        self.masters.get(&self.id).map(String::as_str).unwrap_or("")
    }

    /// The other masters.
    pub fn peers(&self) -> impl Iterator<Item = (u64, &str)> {
        self.masters
            .iter()
            .filter(move |(id, _)| **id != self.id)
            .map(|(id, a)| (*id, a.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(heartbeat: u64, min: u64, max: u64) -> MasterConfig {
        MasterConfig {
            id: 1,
            listen: "127.0.0.1:1".parse().unwrap(),
            masters: parse_masters("1=127.0.0.1:1").unwrap(),
            data_dir: "/tmp".into(),
            domain: FaultDomain::new("r", "z"),
            heartbeat: Duration::from_millis(heartbeat),
            election_timeout_min: Duration::from_millis(min),
            election_timeout_max: Duration::from_millis(max),
            exit_on_leadership_loss: false,
            leader_wait: Duration::from_secs(3),
            write_timeout: Duration::from_secs(5),
            agent_heartbeat: Duration::from_secs(1),
            agent_unreachable_after: Duration::from_secs(5),
            agent_reregistration_grace: Duration::from_secs(5),
            eviction_threshold: 0.55,
            eviction_interval: Duration::from_secs(30),
        }
    }

    #[test]
    fn openraft_lease_plus_timeout_stays_within_the_flags() {
        for (hb, min, max) in [
            (100, 600, 1200),
            (50, 300, 600),
            (100, 1000, 5000),
            (10, 150, 300),
        ] {
            let c = config(hb, min, max);
            c.validate().unwrap();
            let (omin, omax) = c.openraft_election_timeouts();
            assert!(
                omin > hb && omin < omax,
                "{hb} {min} {max} -> {omin} {omax}"
            );
            // openraft waits lease (= omax) + a timeout in [omin, omax].
            assert!(omax + omax <= max, "{hb} {min} {max} -> {omin} {omax}");
            assert!(
                omax + omin >= min.min(max / 2 + 2 * hb),
                "{hb} {min} {max} -> {omin} {omax}"
            );
        }
        assert_eq!(
            config(100, 600, 1200).openraft_election_timeouts(),
            (200, 600)
        );
    }

    #[test]
    fn even_counts_are_refused_with_the_reason() {
        let e = parse_masters("1=a:1,2=b:2").unwrap_err().to_string();
        assert!(e.contains("1, 3, 5 or 7") && e.contains("majority"), "{e}");
        let e = parse_masters("1=a:1,2=b:2,3=c:3,4=d:4")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("4 masters tolerate no more failures than 3"),
            "{e}"
        );
        assert_eq!(parse_masters("1=a:1,2=b:2,3=c:3").unwrap().len(), 3);
        assert!(matches!(
            parse_masters("1=a:1,1=b:2,3=c:3"),
            Err(ConfigError::DuplicateId(1))
        ));
        assert!(matches!(
            parse_masters("one=a:1"),
            Err(ConfigError::MasterEntry(_))
        ));
        assert!(matches!(
            parse_masters("1=a"),
            Err(ConfigError::MasterEntry(_))
        ));
    }
}
