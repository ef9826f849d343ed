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
    /// `--insecure`: no TLS inside the cluster and no API tokens; for loopback and trusted
    /// networks only, and logged loudly at start.
    pub insecure: bool,
    /// How events are delivered to HTTP callback subscribers.
    pub callbacks: crate::callbacks::CallbackConfig,
    /// Joining a running cluster, forcing a new one, removing dead masters.
    pub membership: MembershipConfig,
}

/// How a master takes part in membership changes (see [`crate::membership`]).
#[derive(Debug, Clone, Default)]
pub struct MembershipConfig {
    /// `--join`: this master joins a running cluster (as a learner, then a voter) through the
    /// other masters in `--masters`, instead of forming one with them. Any count of masters
    /// may be listed.
    pub join: bool,
    /// `--force-new-cluster`: before Raft starts, rewrite the stored membership to this
    /// master alone (recovery from a single surviving master).
    pub force_new_cluster: bool,
    /// `--remove-dead-masters-after`: the leader removes a voter down this long, when that
    /// keeps a quorum (off when `None`).
    pub remove_dead_after: Option<Duration>,
    /// `--redundancy-zones`: the leader keeps one voter per zone and the other masters as
    /// standby learners, and promotes a standby (same zone first) when a voter has been down
    /// `remove_dead_after` (see [`crate::membership::zone_step`]).
    pub redundancy_zones: bool,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A `--masters` entry without `ID=HOST:PORT`.
    #[error("--masters entry `{0}` must look like ID=HOST:PORT, e.g. 1=10.0.0.1:8080")]
    MasterEntry(String),
    /// The same id twice.
    #[error("--masters names master {0} twice; give every master its own id")]
    DuplicateId(u64),
    /// The same address for two ids: one process would count as two masters and
    /// acknowledge writes with fewer copies than a quorum.
    #[error(
        "--masters gives master {first} and master {second} the same address {addr}; every master needs its own HOST:PORT, or one process would count as two and acknowledge writes nobody else has"
    )]
    DuplicateAddress {
        /// The address named twice.
        addr: String,
        /// The first id with it.
        first: u64,
        /// The second id with it.
        second: u64,
    },
    /// This master's entry in `--masters` is not where it listens.
    #[error(
        "--masters says master {id} is at {advertised}, but --listen is {listen}; the other masters would reach someone else there. Make master {id}'s entry in --masters the address this master listens on (the same port, and the same host unless --listen is 0.0.0.0 or [::])"
    )]
    NotListening {
        /// This master's id.
        id: u64,
        /// Its address in `--masters`.
        advertised: String,
        /// Its `--listen`.
        listen: SocketAddr,
    },
    /// A number outside its range.
    #[error("{flag} {value} is out of range: it must be {range}")]
    Range {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// The allowed range, in words.
        range: String,
    },
    /// An even number, none, or more than seven.
    #[error("--masters lists {0} masters; drover needs 1, 3, 5 or 7. {1}")]
    Count(usize, String),
    /// `--join` with fewer than two masters.
    #[error(
        "--masters lists {0} masters; with --join, name this master and at least one master of the running cluster, e.g. --masters 1=10.0.1.10:8080,4=10.0.4.10:8080"
    )]
    JoinCount(usize),
    /// `--id` not among `--masters`.
    #[error("--id {0} is not in --masters ({1})")]
    UnknownId(u64, String),
    /// Timings that cannot work.
    #[error("{0}")]
    Timing(String),
}

/// The longest any `*-ms` flag may be: one day. Longer is a typo, and would overflow
/// timers that add two of them.
pub const MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// The most events `--event-callback-queue` may hold per subscriber (with 100 subscribers
/// and events of a few KiB, a few GiB at worst).
pub const MAX_CALLBACK_QUEUE: usize = 100_000;

/// Parses `1=HOST:PORT,2=HOST:PORT,…` and checks the count, and that no id or address is
/// named twice.
pub fn parse_masters(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let out = parse_master_list(text)?;
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

/// Parses `1=HOST:PORT,2=HOST:PORT,…` as [`parse_masters`] does, for any count of at least
/// two (`--join`: the masters to reach, and this one).
pub fn parse_join_masters(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let out = parse_master_list(text)?;
    if out.len() < 2 {
        return Err(ConfigError::JoinCount(out.len()));
    }
    Ok(out)
}

fn parse_master_list(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut out = BTreeMap::new();
    // Addresses as (lower-case host without brackets, port), so `A:08080` and `a:8080` match.
    let mut seen: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || ConfigError::MasterEntry(entry.to_string());
        let (id, addr) = entry.split_once('=').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        let addr = addr.trim();
        let (host, port) = split_host_port(addr).ok_or_else(bad)?;
        if out.insert(id, addr.to_string()).is_some() {
            return Err(ConfigError::DuplicateId(id));
        }
        if let Some(first) = seen.insert((host.to_ascii_lowercase(), port), id) {
            return Err(ConfigError::DuplicateAddress {
                addr: addr.to_string(),
                first,
                second: id,
            });
        }
    }
    Ok(out)
}

/// `HOST:PORT` (or `[V6]:PORT`) split into the host without brackets and the port.
fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None => host,
    };
    let port = port.parse::<u16>().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

/// Checks that a duration flag is above 0 and at most [`MAX_MS`].
fn check_ms(flag: &'static str, value: Duration) -> Result<(), ConfigError> {
    let ms = value.as_millis();
    if ms == 0 || ms > u128::from(MAX_MS) {
        return Err(ConfigError::Range {
            flag,
            value: ms.to_string(),
            range: format!("from 1 to {MAX_MS} ms (one day)"),
        });
    }
    Ok(())
}

/// Checks `--eviction-threshold`: a finite fraction in (0, 1].
pub fn check_eviction_threshold(value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0 && value <= 1.0) {
        return Err(ConfigError::Range {
            flag: "--eviction-threshold",
            value: value.to_string(),
            range: "a fraction above 0 and at most 1, e.g. 0.55 (the share of a zone's agents unreachable together that engages protection)".to_string(),
        });
    }
    Ok(())
}

impl MasterConfig {
    /// Checks what the flags cannot check alone: ranges, and how the flags fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.masters.contains_key(&self.id) {
            let ids: Vec<String> = self.masters.keys().map(u64::to_string).collect();
            return Err(ConfigError::UnknownId(self.id, ids.join(", ")));
        }
        self.check_listen()?;
        for (flag, value) in [
            ("--heartbeat-ms", self.heartbeat),
            ("--election-timeout-min-ms", self.election_timeout_min),
            ("--election-timeout-max-ms", self.election_timeout_max),
            ("--leader-wait-ms", self.leader_wait),
            ("--write-timeout-ms", self.write_timeout),
            ("--agent-heartbeat-ms", self.agent_heartbeat),
            ("--agent-unreachable-ms", self.agent_unreachable_after),
            (
                "--agent-reregistration-grace-ms",
                self.agent_reregistration_grace,
            ),
            ("--eviction-interval-ms", self.eviction_interval),
            ("--event-callback-timeout-ms", self.callbacks.timeout),
        ] {
            check_ms(flag, value)?;
        }
        check_eviction_threshold(self.eviction_threshold)?;
        if !(1..=MAX_CALLBACK_QUEUE).contains(&self.callbacks.queue) {
            return Err(ConfigError::Range {
                flag: "--event-callback-queue",
                value: self.callbacks.queue.to_string(),
                range: format!("1 to {MAX_CALLBACK_QUEUE} events"),
            });
        }
        if self.agent_unreachable_after <= self.agent_heartbeat {
            return Err(ConfigError::Timing(format!(
                "--agent-unreachable-ms ({} ms) must be above --agent-heartbeat-ms ({} ms), or every agent would be called unreachable between two heartbeats",
                self.agent_unreachable_after.as_millis(),
                self.agent_heartbeat.as_millis()
            )));
        }
        if self.heartbeat >= self.election_timeout_min {
            return Err(ConfigError::Timing(format!(
                "--heartbeat-ms ({} ms) must be below --election-timeout-min-ms ({} ms): followers must hear a heartbeat before they stand for election",
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

    /// This master's entry in `--masters` must be where it listens: the same port, and the
    /// same host unless it listens on every address. A host name is compared with what it
    /// resolves to; one that does not resolve is let through (the peers' checks catch it).
    fn check_listen(&self) -> Result<(), ConfigError> {
        let advertised = self.advertised();
        let mismatch = || ConfigError::NotListening {
            id: self.id,
            advertised: advertised.to_string(),
            listen: self.listen,
        };
        let (host, port) = split_host_port(advertised).ok_or_else(mismatch)?;
        if port != self.listen.port() {
            return Err(mismatch());
        }
        if self.listen.ip().is_unspecified() {
            return Ok(());
        }
        let same = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip == self.listen.ip(),
            Err(_) => match std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) {
                Ok(mut addrs) => addrs.any(|a| a.ip() == self.listen.ip()),
                Err(_) => true,
            },
        };
        if same { Ok(()) } else { Err(mismatch()) }
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

    /// What this master tells the leader of itself when it registers or joins.
    pub fn announcement(&self) -> client::system::MasterAnnouncement {
        client::system::MasterAnnouncement {
            id: self.id,
            addr: self.advertised().to_string(),
            domain: self.domain.clone(),
            protocol: state::network::MASTER_PROTOCOL,
            oldest_protocol: Some(state::network::OLDEST_MASTER_PROTOCOL),
        }
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
            insecure: true,
            callbacks: Default::default(),
            membership: Default::default(),
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

    #[test]
    fn a_repeated_address_is_refused_naming_both_ids() {
        let e = parse_masters("1=a:1,2=a:1,3=b:2").unwrap_err();
        assert_eq!(
            e,
            ConfigError::DuplicateAddress {
                addr: "a:1".into(),
                first: 1,
                second: 2
            }
        );
        assert!(e.to_string().contains("master 1 and master 2"), "{e}");
        // Case of the host and leading zeros of the port do not make another address.
        assert!(matches!(
            parse_masters("1=Host:8080,2=host:08080,3=c:3"),
            Err(ConfigError::DuplicateAddress { .. })
        ));
        assert!(matches!(
            parse_masters("1=[::1]:80,2=[::1]:80,3=c:3"),
            Err(ConfigError::DuplicateAddress { .. })
        ));
        assert!(matches!(
            parse_masters("1=a:0"),
            Err(ConfigError::MasterEntry(_))
        ));
    }

    #[test]
    fn this_masters_entry_must_be_where_it_listens() {
        let mut c = config(100, 600, 1200);
        c.masters = parse_masters("1=127.0.0.1:8081,2=127.0.0.1:8082,3=127.0.0.1:8083").unwrap();
        c.listen = "127.0.0.1:8081".parse().unwrap();
        c.validate().unwrap();
        c.listen = "127.0.0.1:8082".parse().unwrap();
        let e = c.validate().unwrap_err();
        assert!(matches!(e, ConfigError::NotListening { id: 1, .. }), "{e}");
        assert!(e.to_string().contains("127.0.0.1:8081") && e.to_string().contains("--listen"));
        c.listen = "127.0.0.2:8081".parse().unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NotListening { .. })
        ));
        // A wildcard listen address matches any host, but not another port.
        c.listen = "0.0.0.0:8081".parse().unwrap();
        c.validate().unwrap();
        c.listen = "0.0.0.0:9999".parse().unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NotListening { .. })
        ));
        c.masters = parse_masters("1=localhost:8081").unwrap();
        c.listen = "127.0.0.1:8081".parse().unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn every_duration_flag_has_a_range() {
        let base = config(100, 600, 1200);
        base.validate().unwrap();
        let day = Duration::from_millis(MAX_MS);
        type Set = fn(&mut MasterConfig, Duration);
        let cases: [(&str, Set); 6] = [
            ("--leader-wait-ms", |c, d| c.leader_wait = d),
            ("--write-timeout-ms", |c, d| c.write_timeout = d),
            ("--agent-heartbeat-ms", |c, d| c.agent_heartbeat = d),
            ("--agent-unreachable-ms", |c, d| {
                c.agent_unreachable_after = d
            }),
            ("--agent-reregistration-grace-ms", |c, d| {
                c.agent_reregistration_grace = d
            }),
            ("--eviction-interval-ms", |c, d| c.eviction_interval = d),
        ];
        for (flag, set) in cases {
            for bad in [Duration::ZERO, day + Duration::from_millis(1)] {
                let mut c = base.clone();
                set(&mut c, bad);
                let e = c.validate().unwrap_err().to_string();
                assert!(
                    e.contains(flag) && e.contains(&bad.as_millis().to_string()),
                    "{flag} {bad:?}: {e}"
                );
            }
        }
        let mut c = base.clone();
        c.heartbeat = Duration::ZERO;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--heartbeat-ms")
        );
        let mut c = base.clone();
        c.election_timeout_max = day + Duration::from_millis(1);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--election-timeout-max-ms"), "{e}");
    }

    #[test]
    fn agent_unreachable_must_exceed_the_heartbeat() {
        let mut c = config(100, 600, 1200);
        c.agent_heartbeat = Duration::from_secs(5);
        c.agent_unreachable_after = Duration::from_secs(5);
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("--agent-unreachable-ms") && e.contains("--agent-heartbeat-ms"),
            "{e}"
        );
    }

    #[test]
    fn the_eviction_threshold_is_a_finite_fraction() {
        for bad in [5.0, 0.0, -0.1, f64::NAN, f64::INFINITY, 1.000_001] {
            let mut c = config(100, 600, 1200);
            c.eviction_threshold = bad;
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("--eviction-threshold"), "{bad}: {e}");
        }
        for good in [1.0, 0.55, 0.01] {
            let mut c = config(100, 600, 1200);
            c.eviction_threshold = good;
            c.validate().unwrap();
        }
    }

    #[test]
    fn event_callback_flags_have_ranges() {
        for (queue, timeout_ms, flag) in [
            (0, 1000, "--event-callback-queue"),
            (MAX_CALLBACK_QUEUE + 1, 1000, "--event-callback-queue"),
            (16, 0, "--event-callback-timeout-ms"),
        ] {
            let mut c = config(100, 600, 1200);
            c.callbacks = crate::callbacks::CallbackConfig {
                queue,
                timeout: Duration::from_millis(timeout_ms),
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(flag), "{queue}, {timeout_ms}: {e}");
        }
        let mut c = config(100, 600, 1200);
        c.callbacks.queue = MAX_CALLBACK_QUEUE;
        c.validate().unwrap();
    }
}
