//! `drover hollow-agents` end to end (issue 13, "The hollow-agent tool has a test that runs a
//! small fleet end to end in CI"): a real `drover master` on loopback and one
//! `drover hollow-agents 30` process spread over two regions of four zones. The fleet
//! registers with its domains, runs apps placed `GROUP_BY` zone in both regions, a fake task
//! told to fail through the control endpoint is replaced, a zone whose machines crash has its
//! instances run elsewhere, and the agents go unreachable once the tool stops.
//!
//! Waits poll conditions with deadlines and fail with the masters' and the fleet's logs;
//! nothing here asserts on timings.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, DROVER, ELECTION, EXIT, free_port, http, tail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// How many hollow agents the fleet runs.
const AGENTS: usize = 30;
/// The fleet's regions, four zones each (`<region>-a` … `<region>-d`).
const REGIONS: [&str; 2] = ["local", "aws-us-east2"];
/// Zones per region.
const ZONES: usize = 4;
/// A liveness bound for a loaded 2-core machine, not a speed assertion.
const SETTLE: Duration = Duration::from_secs(90);
/// Per-request limit of the test's calls.
const CALL: Duration = Duration::from_secs(10);

/// The `drover hollow-agents` process; dropping it kills it.
struct Fleet {
    child: Option<Child>,
    control: String,
    stderr: PathBuf,
    stdout: PathBuf,
}

impl Fleet {
    fn start(c: &Cluster, master: &str) -> Fleet {
        let control = format!("127.0.0.1:{}", free_port());
        let stdout = c.dir().join("hollow.stdout");
        let stderr = c.dir().join("hollow.stderr");
        let file = |p: &PathBuf| File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let child = Command::new(DROVER)
            .arg("hollow-agents")
            .arg("--insecure")
            .arg(AGENTS.to_string())
            .args(["--masters", master])
            .arg("--work-dir")
            .arg(c.dir().join("hollow"))
            .args(["--regions", &REGIONS.join(",")])
            .args(["--zones", &ZONES.to_string()])
            .args(["--control", &control])
            .args([
                "--resources",
                "cpus:1;mem:1024;disk:1000;ports:[31000-31010]",
            ])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {DROVER} hollow-agents: {e}"));
        Fleet {
            child: Some(child),
            control,
            stderr,
            stdout,
        }
    }

    /// Waits until the process exits; returns how.
    #[track_caller]
    fn wait_exit(&mut self, c: &Cluster, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => status,
                Some(Ok(None)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                other => c.fail(&format!(
                    "hollow-agents did not exit within {timeout:?} ({other:?})\n{}",
                    self.logs()
                )),
            };
            self.child = None;
            return exited;
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- hollow-agents stdout:\n{}\n--- hollow-agents stderr:\n{}",
            tail(&self.stdout, 20),
            tail(&self.stderr, 40)
        )
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` until it gives `Some`; on timeout fails with what it waited for, the last
/// thing seen, and every log.
#[track_caller]
fn wait_for<T>(
    c: &Cluster,
    fleet: &Fleet,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f() {
            Ok(t) => return t,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            c.fail(&format!(
                "timed out after {timeout:?} waiting until {what}; last seen: {last}\n{}",
                fleet.logs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hollow agents of `GET /v1/nodes`, by hostname.
fn hollow_nodes(master: &str) -> Result<BTreeMap<String, Value>, String> {
    let r = http::request(master, "GET", "/v1/nodes", None, CALL).map_err(|e| e.to_string())?;
    let nodes = r.body_json["nodes"]
        .as_array()
        .ok_or_else(|| format!("/v1/nodes answered {r}"))?;
    Ok(nodes
        .iter()
        .filter(|n| n["type"] == "agent")
        .filter_map(|n| Some((n["hostname"].as_str()?.to_string(), n.clone())))
        .filter(|(h, _)| h.starts_with("hollow-"))
        .collect())
}

/// The region and zone agent `hollow-K` is given: the K-th of the fleet's zones, round-robin.
fn expected_domain(k: usize) -> (String, String) {
    let d = (k - 1) % (REGIONS.len() * ZONES);
    let region = REGIONS[d / ZONES];
    let zone = format!("{region}-{}", (b'a' + (d % ZONES) as u8) as char);
    (region.to_string(), zone)
}

/// `(instance id, zone)` of an app's tasks, when all `n` run.
fn running_tasks(master: &str, app: &str, n: usize) -> Result<Vec<(String, String)>, String> {
    let r = http::request(master, "GET", &format!("/v2/apps{app}"), None, CALL)
        .map_err(|e| e.to_string())?;
    let tasks = r.body_json["app"]["tasks"]
        .as_array()
        .ok_or_else(|| format!("/v2/apps{app} answered {r}"))?;
    let running: Vec<(String, String)> = tasks
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| {
            Some((
                t["id"].as_str()?.to_string(),
                t["zone"].as_str()?.to_string(),
            ))
        })
        .collect();
    if running.len() == n && tasks.len() == n {
        Ok(running)
    } else {
        Err(format!(
            "{} of {} task(s) running: {tasks:?}",
            running.len(),
            tasks.len()
        ))
    }
}

/// How many of `tasks` run in each zone.
fn per_zone(tasks: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, zone) in tasks {
        *out.entry(zone.clone()).or_insert(0) += 1;
    }
    out
}

/// Zones `<region>-a` … `<region>-d`, each with `n` instances.
fn even(region: &str, n: usize) -> BTreeMap<String, usize> {
    (0..ZONES)
        .map(|z| (format!("{region}-{}", (b'a' + z as u8) as char), n))
        .collect()
}

#[test]
fn a_hollow_fleet_registers_in_its_zones_runs_apps_replaces_a_failed_task_survives_a_lost_zone_and_goes_unreachable_when_stopped()
 {
    let mut c = Cluster::new("hollow-agents", 1);
    c.extra_args = [
        "--agent-heartbeat-ms",
        "250",
        "--agent-unreachable-ms",
        "2500",
        "--agent-reregistration-grace-ms",
        "2500",
    ]
    .map(String::from)
    .to_vec();
    c.start_all();
    let master = c
        .wait_for_leader(ELECTION)
        .trim_start_matches("http://")
        .to_string();
    let mut fleet = Fleet::start(&c, &master);

    // Every agent registers with its own id, address label and fault domain.
    let nodes = wait_for(&c, &fleet, SETTLE, "30 hollow agents are active", || {
        let nodes = hollow_nodes(&master)?;
        let active = nodes.values().filter(|n| n["state"] == "active").count();
        if active == AGENTS {
            Ok(nodes)
        } else {
            Err(format!("{active} of {AGENTS} active"))
        }
    });
    let mut ids = std::collections::BTreeSet::new();
    for k in 1..=AGENTS {
        let host = format!("hollow-{k}");
        let node = &nodes[&host];
        let (region, zone) = expected_domain(k);
        assert_eq!(
            (node["region"].as_str(), node["zone"].as_str()),
            (Some(region.as_str()), Some(zone.as_str())),
            "{host}'s domain: {node}"
        );
        assert_eq!(node["remote"], json!(region != "local"), "{host}: {node}");
        assert_eq!(node["ip"], json!(format!("127.3.0.{k}")), "{host}: {node}");
        ids.insert(node["id"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(
        ids.len(),
        AGENTS,
        "every hollow agent has its own id: {ids:?}"
    );

    // Apps spread GROUP_BY zone over the local region's four zones and the remote region's.
    let web = json!({"id": "/hollow-web", "cmd": "sleep 1000", "instances": 8,
        "cpus": 0.1, "mem": 16, "constraints": [["@zone", "GROUP_BY"]]});
    let east = json!({"id": "/hollow-east", "cmd": "sleep 1000", "instances": 4,
        "cpus": 0.1, "mem": 16,
        "constraints": [["@region", "IS", "aws-us-east2"], ["@zone", "GROUP_BY"]]});
    for app in [&web, &east] {
        let r = http::post(&master, "/v2/apps", app)
            .unwrap_or_else(|e| c.fail(&format!("POST /v2/apps {app}: {e}")));
        if r.status != 201 {
            c.fail(&format!("POST /v2/apps {app} answered {r}"));
        }
    }
    let web_tasks = wait_for(&c, &fleet, SETTLE, "/hollow-web runs 8 instances", || {
        running_tasks(&master, "/hollow-web", 8)
    });
    assert_eq!(
        per_zone(&web_tasks),
        even("local", 2),
        "/hollow-web per zone"
    );
    let east_tasks = wait_for(&c, &fleet, SETTLE, "/hollow-east runs 4 instances", || {
        running_tasks(&master, "/hollow-east", 4)
    });
    assert_eq!(
        per_zone(&east_tasks),
        even("aws-us-east2", 1),
        "/hollow-east per zone"
    );
    let listed = http::request(&fleet.control, "GET", "/tasks", None, CALL)
        .unwrap_or_else(|e| c.fail(&format!("GET /tasks of the control endpoint: {e}")));
    let mut fake: Vec<String> = listed.body_json["tasks"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    fake.sort();
    let mut placed: Vec<String> = web_tasks
        .iter()
        .chain(&east_tasks)
        .map(|t| t.0.clone())
        .collect();
    placed.sort();
    assert_eq!(
        fake, placed,
        "the control endpoint lists every running task"
    );

    // Fake tasks leave nothing on disk: no checkpoint file, no sandbox.
    for k in 1..=AGENTS {
        let work_dir = c.dir().join("hollow").join(format!("hollow-{k}"));
        for sub in ["tasks", "sandboxes"] {
            let dir = work_dir.join(sub);
            let entries: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| c.fail(&format!("{}: {e}", dir.display())))
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect();
            assert!(entries.is_empty(), "{} holds {entries:?}", dir.display());
        }
    }

    // A fake task told to fail is replaced, in its zone (GROUP_BY keeps two per zone).
    let (failed, zone) = web_tasks[0].clone();
    let r = http::request(
        &fleet.control,
        "POST",
        &format!("/tasks/{failed}/fail"),
        None,
        CALL,
    )
    .unwrap_or_else(|e| c.fail(&format!("POST /tasks/{failed}/fail: {e}")));
    assert_eq!(r.status, 200, "POST /tasks/{failed}/fail: {r}");
    let after = wait_for(&c, &fleet, SETTLE, "the failed task is replaced", || {
        let ts = running_tasks(&master, "/hollow-web", 8)?;
        if ts.iter().any(|t| t.0 == failed) {
            Err(format!("{failed} is still listed running: {ts:?}"))
        } else {
            Ok(ts)
        }
    });
    assert_eq!(
        per_zone(&after),
        even("local", 2),
        "/hollow-web per zone after the failure"
    );
    let replacement: Vec<&(String, String)> =
        after.iter().filter(|t| !web_tasks.contains(t)).collect();
    assert_eq!(replacement.len(), 1, "one new instance: {after:?}");
    assert_eq!(
        replacement[0].1, zone,
        "the replacement runs in the failed one's zone"
    );
    let r = http::request(
        &fleet.control,
        "POST",
        &format!("/tasks/{failed}/fail"),
        None,
        CALL,
    )
    .unwrap_or_else(|e| c.fail(&format!("POST /tasks/{failed}/fail again: {e}")));
    assert_eq!(r.status, 404, "a task that ended cannot fail again: {r}");
    assert!(
        r.message().contains("GET /tasks"),
        "the 404 says what to do: {r}"
    );

    // A whole zone's machines die: those agents stop without a word and their fake tasks
    // die with them; the leader marks them unreachable and runs their instances elsewhere.
    let r = http::request(
        &fleet.control,
        "POST",
        "/agents/crash?zone=local-b",
        None,
        CALL,
    )
    .unwrap_or_else(|e| c.fail(&format!("POST /agents/crash?zone=local-b: {e}")));
    assert_eq!(r.status, 200, "POST /agents/crash?zone=local-b: {r}");
    let mut crashed: Vec<String> = serde_json::from_value(r.body_json["crashed"].clone())
        .unwrap_or_else(|e| c.fail(&format!("crashed agents in {r}: {e}")));
    crashed.sort();
    let mut in_b: Vec<String> = (1..=AGENTS)
        .filter(|&k| expected_domain(k).1 == "local-b")
        .map(|k| format!("hollow-{k}"))
        .collect();
    in_b.sort();
    assert_eq!(crashed, in_b, "the agents of zone local-b crashed");
    let lost: Vec<String> = after
        .iter()
        .filter(|t| t.1 == "local-b")
        .map(|t| t.0.clone())
        .collect();
    assert_eq!(
        lost.len(),
        2,
        "/hollow-web had two instances in local-b: {after:?}"
    );
    let moved = wait_for(
        &c,
        &fleet,
        SETTLE,
        "/hollow-web runs 8 instances outside local-b",
        || {
            let ts = running_tasks(&master, "/hollow-web", 8)?;
            if ts.iter().any(|t| t.1 == "local-b") {
                Err(format!("instances still listed in local-b: {ts:?}"))
            } else {
                Ok(ts)
            }
        },
    );
    let counts: Vec<usize> = per_zone(&moved).into_values().collect();
    assert!(
        counts.len() == 3 && counts.iter().max() <= Some(&3) && counts.iter().min() >= Some(&2),
        "GROUP_BY zone over the three zones left: {:?}",
        per_zone(&moved)
    );
    let nodes = hollow_nodes(&master).unwrap_or_else(|e| c.fail(&e));
    for host in &in_b {
        assert_eq!(
            nodes[host]["state"], "unreachable",
            "{host}: {}",
            nodes[host]
        );
    }
    let listed = http::request(&fleet.control, "GET", "/tasks", None, CALL)
        .unwrap_or_else(|e| c.fail(&format!("GET /tasks: {e}")));
    let fake = listed.body_json["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for id in &lost {
        assert!(
            !fake.contains(&json!(id)),
            "{id} died with its machine, yet the control endpoint lists it running"
        );
    }
    let agents = http::request(&fleet.control, "GET", "/agents", None, CALL)
        .unwrap_or_else(|e| c.fail(&format!("GET /agents: {e}")));
    let down: Vec<&str> = agents.body_json["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["running"] == false)
                .filter_map(|a| a["hostname"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        down.len(),
        in_b.len(),
        "GET /agents shows the crashed ones: {agents}"
    );
    for (path, what) in [
        ("/agents/hollow-999/crash", "GET /agents"),
        ("/agents/crash?zone=nowhere", "GET /agents"),
    ] {
        let r = http::request(&fleet.control, "POST", path, None, CALL)
            .unwrap_or_else(|e| c.fail(&format!("POST {path}: {e}")));
        assert_eq!(r.status, 404, "POST {path}: {r}");
        assert!(
            r.message().contains(what),
            "POST {path} says what to do: {r}"
        );
    }

    // Stopping the tool stops every agent: the leader marks them all unreachable.
    let pid = fleet.child.as_ref().map(Child::id).unwrap_or_default();
    let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits an i32"));
    kill(pid, Signal::SIGTERM).unwrap_or_else(|e| c.fail(&format!("SIGTERM to {pid}: {e}")));
    let status = fleet.wait_exit(&c, EXIT);
    assert!(
        status.success(),
        "hollow-agents exited with {status}\n{}",
        fleet.logs()
    );
    wait_for(
        &c,
        &fleet,
        SETTLE,
        "every hollow agent is unreachable",
        || {
            let nodes = hollow_nodes(&master)?;
            let states: BTreeMap<String, usize> =
                nodes.values().fold(BTreeMap::new(), |mut m, n| {
                    *m.entry(n["state"].to_string()).or_insert(0) += 1;
                    m
                });
            if states == BTreeMap::from([("\"unreachable\"".to_string(), AGENTS)]) {
                Ok(())
            } else {
                Err(format!("agents by state: {states:?}"))
            }
        },
    );
}
