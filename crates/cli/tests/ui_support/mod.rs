//! What the browser test stands on: a real `drover dev` cluster, Debian's chromedriver driving
//! a headless Chromium, and waits that poll the page until a deadline.
//!
//! Every process started here is stopped on drop, also when the test panics: `drover dev`
//! gets SIGTERM (it then stops its masters and agents and kills their tasks), chromedriver and
//! the browser it started get SIGKILL by process group.

use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// The binary under test.
const DROVER: &str = env!("CARGO_BIN_EXE_drover");

/// Debian's Chromium (package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the test leaves its screenshots: `target/ui-screenshots/` of the workspace.
pub const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/ui-screenshots");

/// How long `drover dev` may take to start three masters and twelve agents on a loaded machine.
const DEV_START: Duration = Duration::from_secs(120);

/// How long a stopped process may take to exit.
const EXIT: Duration = Duration::from_secs(30);

/// How often waits poll the page.
const POLL: Duration = Duration::from_millis(250);

const INSTALL: &str = "the UI test needs Debian's chromium and chromium-driver: \
     install them with `apt-get install chromium chromium-driver` (.ci/run does this)";

/// Finds chromedriver, or fails the test saying what to install. Never skips.
pub fn chromedriver() -> PathBuf {
    if !Path::new(CHROMIUM).is_file() {
        panic!("{CHROMIUM} is missing: {INSTALL}");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("chromedriver is not on PATH nor in /usr/bin: {INSTALL}"))
}

/// Creates the screenshot directory and removes the failure screenshots of earlier runs.
pub fn fresh_screenshots() {
    fs::create_dir_all(SCREENSHOTS).expect("cannot create target/ui-screenshots");
    for entry in fs::read_dir(SCREENSHOTS).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("failed-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port to find a free one")
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Waits for a child to exit; false if it did not within `within`.
fn wait_exit(child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"))
}

/// A running `drover dev`: three masters and twelve agents in three regions.
pub struct DevCluster {
    child: Child,
    /// The UI and API address, `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
    output: PathBuf,
}

impl DevCluster {
    /// Starts `drover dev` on free loopback ports (its three masters take three in a row) and
    /// waits until it says it is running.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("drover-ui-test-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let output = dir.path().join("dev.out");
        let out = File::create(&output).expect("cannot create the dev output file");
        let err = out.try_clone().expect("cannot open the dev output file");
        let port = crate::common::free_ports(3);
        let child = Command::new(DROVER)
            .args([
                "dev",
                "--insecure",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DROVER} dev: {e}"));
        let mut dev = DevCluster {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            output,
        };
        let deadline = Instant::now() + DEV_START;
        loop {
            let text = fs::read_to_string(&dev.output).unwrap_or_default();
            if text.contains("drover dev is running") {
                return dev;
            }
            if let Ok(Some(status)) = dev.child.try_wait() {
                panic!("drover dev exited ({status}) before it was running:\n{text}");
            }
            if Instant::now() > deadline {
                panic!(
                    "drover dev did not say it was running within {DEV_START:?}:\n{text}\n{}",
                    dev.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The temporary directory holding the cluster's data, logs and the test's own logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What `drover dev` printed and the tail of the master's log, for failure messages.
    pub fn logs(&self) -> String {
        let master = self.dir.path().join("data/logs/master-1.log");
        format!(
            "--- drover dev output ({}):\n{}\n--- {}:\n{}",
            self.output.display(),
            tail(&self.output, 40),
            master.display(),
            tail(&master, 40)
        )
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: drover dev then stops its agents and kills their tasks.
        let _ = kill(pid_of(&self.child), Signal::SIGTERM);
        if !wait_exit(&mut self.child, EXIT) {
            eprintln!("drover dev did not stop within {EXIT:?} of SIGTERM; killing it");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "{}\n(kept {} for inspection)",
                self.logs(),
                self.dir.path().display()
            );
        }
    }
}

/// chromedriver and a headless Chromium session.
pub struct Browser {
    driver: Child,
    log: PathBuf,
    /// The WebDriver session.
    pub client: Option<Client>,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session through it.
    pub async fn start(chromedriver: &Path, log_dir: &Path) -> Self {
        let port = free_port();
        let log = log_dir.join("chromedriver.log");
        let out = File::create(&log).expect("cannot create the chromedriver log");
        let err = out.try_clone().expect("cannot open the chromedriver log");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, so that dropping it also ends the browser it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", chromedriver.display()));
        let mut browser = Browser {
            driver,
            log,
            client: None,
        };
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1300,900"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    browser.client = Some(client);
                    return browser;
                }
                Err(e) if Instant::now() > deadline => panic!(
                    "no Chromium session through chromedriver at {url}: {e}\n--- {}:\n{}",
                    browser.log.display(),
                    tail(&browser.log, 30)
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The session.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser session is open")
    }

    /// Ends the session (closing Chromium) before chromedriver goes.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = killpg(pid_of(&self.driver), Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}

/// A page under test: the browser plus where to save screenshots and what to show on failure.
pub struct Page<'a> {
    /// The browser session.
    pub client: &'a Client,
    /// Context for failure messages (the cluster's logs).
    pub dev: &'a DevCluster,
}

impl Page<'_> {
    /// Saves a screenshot as `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        fs::create_dir_all(SCREENSHOTS).expect("cannot create target/ui-screenshots");
        let path = Path::new(SCREENSHOTS).join(format!("{name}.png"));
        let png = self
            .client
            .screenshot()
            .await
            .expect("the browser cannot take a screenshot");
        fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Runs a script in the page and returns its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed in the page: {e}\n{script}"))
    }

    /// Navigates to a hash route of the UI.
    pub async fn open(&self, hash: &str) {
        let url = format!("{}/{hash}", self.dev.url);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Clicks the element `css`. The UI re-renders what it polls (the groups tree, the
    /// nodes): an element found just before a re-render is gone by the click ("stale
    /// element reference"), and the click goes to the element that replaced it, found anew.
    pub async fn click(&self, css: &str) {
        const ATTEMPTS: usize = 10;
        for attempt in 1..=ATTEMPTS {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() && attempt < ATTEMPTS => continue,
                Err(e) => panic!("cannot click {css} (attempt {attempt}): {e}"),
            }
        }
    }

    /// Replaces the text of the input `css` by typing `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Polls `check` (a script returning a JSON value) until `done` accepts its result or
    /// `within` passes; on timeout saves a `failed-<name>` screenshot and panics with what
    /// the page showed and the cluster's logs.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        within: Duration,
        check: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.eval(check).await;
            if done(&seen) {
                return seen;
            }
            if Instant::now() > deadline {
                let shot = self.screenshot(&format!("failed-{name}")).await;
                let text = self
                    .eval("return document.body.innerText")
                    .await
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                panic!(
                    "waited {within:?} for {what}; last seen: {seen}\n--- the page ({}):\n{text}\n{}",
                    shot.display(),
                    self.dev.logs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
