//! Helpers of the load-balancing tests: `drover lb` processes, instances that answer with
//! their own id, and a raw HTTP client that sets `Host`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{DROVER, free_port, tail};

/// A task command: `busybox httpd` on `$PORT0` whose `/` answers the instance's id, so a
/// client can count which instance served it.
pub const SERVE_ID: &str =
    "echo \"$MESOS_TASK_ID\" > index.html && exec busybox httpd -f -p \"$PORT0\"";

/// [`SERVE_ID`] on `$PORT0` and `$PORT1` (the second server in the task's process group).
pub const SERVE_ID_TWICE: &str = "echo \"$MESOS_TASK_ID\" > index.html && { busybox httpd -f -p \"$PORT1\" & } && exec busybox httpd -f -p \"$PORT0\"";

/// Per-exchange time limit of [`get`]: a liveness bound, not a speed assertion.
pub const EXCHANGE: Duration = Duration::from_secs(10);

/// One `drover lb` process.
pub struct Lb {
    /// `--bind-ip`, also the address of `--http` and `--admin`.
    pub ip: String,
    /// `--http` port.
    pub http_port: u16,
    /// `--admin` port.
    pub admin_port: u16,
    stderr: PathBuf,
    child: Option<Child>,
}

impl Lb {
    /// Starts `drover lb --masters masters` on `ip` (127.x) with free ports, logging into `dir`.
    pub fn start(dir: &Path, name: &str, masters: &str, ip: &str, extra: &[&str]) -> Lb {
        let (http_port, admin_port) = (free_port(), free_port());
        let stderr = dir.join(format!("lb-{name}.stderr"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .unwrap_or_else(|e| panic!("open {}: {e}", stderr.display()));
        let child = Command::new(DROVER)
            .args(["lb", "--insecure", "--masters", masters, "--bind-ip", ip])
            .args(["--http", &format!("{ip}:{http_port}")])
            .args(["--admin", &format!("{ip}:{admin_port}")])
            .args(["--resync-ms", "1000"])
            .args(extra)
            .env("RUST_LOG", "warn,lb=debug,drover=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {DROVER} lb: {e}"));
        Lb {
            ip: ip.to_string(),
            http_port,
            admin_port,
            stderr,
            child: Some(child),
        }
    }

    /// `ip:port`.
    pub fn at(&self, port: u16) -> String {
        format!("{}:{port}", self.ip)
    }

    /// The `--http` address.
    pub fn http(&self) -> String {
        self.at(self.http_port)
    }

    /// Its log tail.
    pub fn log_tail(&self) -> String {
        tail(&self.stderr, 40)
    }

    /// A note for [`crate::agent_support::Site::notes`]: its log tail when a wait fails.
    pub fn note(&self, name: &str) -> Box<dyn Fn() -> String> {
        let (path, name) = (self.stderr.clone(), name.to_string());
        Box::new(move || format!("\n===== drover lb {name}\n{}\n", tail(&path, 40)))
    }

    /// `GET /metrics` of its admin API.
    pub fn metrics(&self) -> Result<String, String> {
        get(&self.at(self.admin_port), "lb.admin", "/metrics").map(|(_, body)| body)
    }

    /// Sends it SIGTERM (it stops accepting and drains).
    pub fn term(&self) {
        if let Some(c) = &self.child
            && let Ok(pid) = i32::try_from(c.id())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    /// Its exit status once it has exited (does not wait).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILLs it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET path` on a fresh connection to `addr` with `Host: host`; (status, body trimmed).
pub fn get(addr: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s =
        TcpStream::connect_timeout(&sock, EXCHANGE).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(EXCHANGE))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(EXCHANGE))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: drover-tests\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr} answered no HTTP head: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr} answered no status: {head:?}"))?;
    Ok((status, body.trim().to_string()))
}

/// How many of `answers` each body got.
pub fn count(answers: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in answers {
        *out.entry(a.clone()).or_default() += 1;
    }
    out
}

/// One request of a [`Load`]: when it started, through which target, and its answer.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it started.
    pub at: std::time::Instant,
    /// The `addr` it went to.
    pub addr: String,
    /// The body of a 200, or what went wrong.
    pub answer: Result<String, String>,
}

/// Steady load: one request after another on fresh connections, round-robin over targets
/// (`addr`, `Host`), in a background thread until finished.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    samples: std::sync::Arc<std::sync::Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts the load.
    pub fn start(targets: Vec<(String, String)>) -> Load {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let (addr, host) = &targets[i % targets.len()];
                i += 1;
                let at = std::time::Instant::now();
                let answer = match get(addr, host, "/") {
                    Ok((200, body)) => Ok(body),
                    Ok((status, body)) => Err(format!("{status} {body}")),
                    Err(e) => Err(e),
                };
                let sample = Sample {
                    at,
                    addr: addr.clone(),
                    answer,
                };
                out.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
            }
        });
        Load {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Successful requests that started after `t`.
    pub fn ok_since(&self, t: std::time::Instant) -> usize {
        self.samples()
            .iter()
            .filter(|s| s.at >= t && s.answer.is_ok())
            .count()
    }

    /// Stops the load; returns every sample.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The failed samples, each with its start relative to `t0`, for a failure message.
pub fn failures(samples: &[Sample], t0: std::time::Instant) -> Vec<String> {
    samples
        .iter()
        .filter_map(|s| {
            let e = s.answer.as_ref().err()?;
            let ms = if s.at >= t0 {
                format!("+{}ms", (s.at - t0).as_millis())
            } else {
                format!("-{}ms", (t0 - s.at).as_millis())
            };
            Some(format!("{ms} via {}: {e}", s.addr))
        })
        .collect()
}
