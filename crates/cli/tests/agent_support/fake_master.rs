//! A fake master: the master's side of the agent protocol (`state::protocol`, JSON over
//! HTTP/1.1), served from a thread of the test on 127.0.0.1, with assignments the test
//! chooses. A real `drover agent` registers with it, heartbeats, long-polls and reports; the
//! test then sees exactly what the agent was told and what it answered, which a real master
//! (whose term only grows) cannot show: an answer from an older term.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The longest the fake master holds a long poll open.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// One answer to `GET /internal/agents/{id}/assignments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The term the answer carried.
    pub term: u64,
    /// Its revision.
    pub revision: u64,
    /// The instance ids it listed.
    pub tasks: Vec<String>,
}

/// What the fake master was told and has answered so far.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The term it answers with now.
    pub term: u64,
    /// The revision of the current assignments.
    pub revision: u64,
    /// The current assignments (`TaskAssignment` JSON).
    pub tasks: Vec<Value>,
    /// Registration bodies received.
    pub registrations: Vec<Value>,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Assignment answers sent, oldest first.
    pub served: Vec<Served>,
    /// Status updates received (`TaskStatus` JSON), oldest first.
    pub updates: Vec<Value>,
    /// `METHOD path` of every request, oldest first (for failure messages).
    pub requests: Vec<String>,
    shutdown: bool,
}

impl Record {
    /// The status updates for one instance, oldest first.
    pub fn updates_of(&self, instance_id: &str) -> Vec<&Value> {
        self.updates
            .iter()
            .filter(|u| u["instance_id"] == instance_id)
            .collect()
    }
}

struct Shared {
    record: Mutex<Record>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fake master listening on 127.0.0.1; stops (and joins its accept loop) on drop.
pub struct FakeMaster {
    addr: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FakeMaster {
    /// Starts a fake master that answers with `term` and no tasks.
    pub fn start(term: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake master");
        let addr = listener
            .local_addr()
            .expect("fake master's address")
            .to_string();
        let shared = Arc::new(Shared {
            record: Mutex::new(Record {
                term,
                revision: 1,
                ..Record::default()
            }),
            changed: Condvar::new(),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.lock().shutdown {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    std::thread::spawn(move || serve(stream, &shared));
                }
            })
        };
        FakeMaster {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:port`, for `drover agent --masters`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// From now on, answers with `term` and `tasks` (a new revision, so held long polls
    /// answer at once).
    pub fn assign(&self, term: u64, tasks: Vec<Value>) {
        let mut r = self.shared.lock();
        r.term = term;
        r.tasks = tasks;
        r.revision += 1;
        drop(r);
        self.shared.changed.notify_all();
    }

    /// A copy of what happened so far.
    pub fn record(&self) -> Record {
        self.shared.lock().clone()
    }

    /// A summary for failure messages: the last requests, answers and updates.
    pub fn describe(&self) -> String {
        describe(&self.addr, &self.shared.lock())
    }

    /// [`FakeMaster::describe`] as a closure that outlives borrows (for `Site::notes`).
    pub fn describer(&self) -> impl Fn() -> String + 'static {
        let (addr, shared) = (self.addr.clone(), self.shared.clone());
        move || describe(&addr, &shared.lock())
    }
}

fn describe(addr: &str, r: &Record) -> String {
    let last = |n: usize, v: &[String]| v[v.len().saturating_sub(n)..].join("\n  ");
    let served: Vec<String> = r.served.iter().map(|s| format!("{s:?}")).collect();
    let updates: Vec<String> = r.updates.iter().map(Value::to_string).collect();
    format!(
        "===== fake master {} (term {}, revision {}, {} registration(s), {} heartbeat(s))\nlast requests:\n  {}\nlast assignment answers:\n  {}\nlast status updates:\n  {}\n",
        addr,
        r.term,
        r.revision,
        r.registrations.len(),
        r.heartbeats,
        last(15, &r.requests),
        last(10, &served),
        last(15, &updates),
    )
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A `TaskAssignment` as the protocol sends it: run `cmd` as app `app_id`.
pub fn task(instance_id: &str, app_id: &str, cmd: &str, term: u64) -> Value {
    json!({
        "instance_id": instance_id,
        "app": {"id": app_id, "cmd": cmd, "instances": 1, "cpus": 0.1, "mem": 16},
        "app_version": "2024-01-01T00:00:00.000Z",
        "ports": [],
        "goal": "running",
        "term": term,
    })
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let Some((method, target, body)) = read_request(&mut reader) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    shared.lock().requests.push(format!("{method} {target}"));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, answer) = match (method.as_str(), parts.as_slice()) {
        ("POST", ["internal", "agents", "register"]) => {
            let mut r = shared.lock();
            r.registrations.push(body.clone());
            (
                200,
                json!({
                    "agent_id": body["agent"]["id"],
                    "term": r.term,
                    "heartbeat_interval_ms": 1000,
                    "local_region": "local",
                    "remote": false,
                }),
            )
        }
        ("POST", ["internal", "agents", _, "heartbeat"]) => {
            let mut r = shared.lock();
            r.heartbeats += 1;
            (200, json!({"term": r.term}))
        }
        ("GET", ["internal", "agents", _, "assignments"]) => {
            (200, assignments(shared, query_u64(query, "after"), query))
        }
        ("POST", ["internal", "agents", _, "status"]) => {
            let mut r = shared.lock();
            if let Some(updates) = body["updates"].as_array() {
                r.updates.extend(updates.iter().cloned());
            }
            (200, json!({}))
        }
        _ => (
            404,
            json!({"message": format!("the fake master does not serve {method} {path}")}),
        ),
    };
    let body = answer.to_string();
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = writer.write_all(head.as_bytes());
    let _ = writer.write_all(body.as_bytes());
    let _ = writer.flush();
}

/// The long poll: answers at once when the revision moved past `after`, else when it does,
/// when `wait_ms` (at most [`MAX_WAIT`]) passes, or when the fake master stops.
fn assignments(shared: &Shared, after: u64, query: &str) -> Value {
    let wait = Duration::from_millis(query_u64(query, "wait_ms")).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let mut r = shared.lock();
    while r.revision <= after && !r.shutdown {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        r = shared
            .changed
            .wait_timeout(r, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    let served = Served {
        term: r.term,
        revision: r.revision,
        tasks: r
            .tasks
            .iter()
            .filter_map(|t| t["instance_id"].as_str().map(str::to_string))
            .collect(),
    };
    let answer = json!({"term": r.term, "revision": r.revision, "tasks": r.tasks});
    r.served.push(served);
    answer
}

fn query_u64(query: &str, key: &str) -> u64 {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Reads one request: method, target and JSON body (Null when there is none).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Value)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some((method, target, body))
}
