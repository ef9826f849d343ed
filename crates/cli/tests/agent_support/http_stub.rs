//! A stand-in for a task's HTTP endpoint: the test listens on a port an agent offers, so
//! that a health check of the task on that port has something to reach, and stops listening
//! to make it fail.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Answers `200 OK` to every request on `ip`:`port` until stopped (or dropped).
pub struct HttpStub {
    ip: String,
    port: u16,
    stop: Arc<AtomicBool>,
    paths: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpStub {
    /// Listens on `ip`:`port` (an agent's address: HTTP checks reach tasks there).
    pub fn start(ip: &str, port: u16) -> Self {
        let listener = TcpListener::bind((ip, port))
            .unwrap_or_else(|e| panic!("the HTTP stub cannot listen on {ip}:{port}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, paths) = (stop.clone(), paths.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return; // the listener closes here
                    }
                    if let Ok(s) = stream {
                        answer(s, &paths);
                    }
                }
            })
        };
        HttpStub {
            ip: ip.to_string(),
            port,
            stop,
            paths,
            thread: Some(thread),
        }
    }

    /// The paths requested so far.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Stops listening: connections to the port are refused from when this returns.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect((self.ip.as_str(), self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(stream: TcpStream, paths: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    if let Some(path) = line.split_whitespace().nth(1)
        && let Ok(mut p) = paths.lock()
    {
        p.push(path.to_string());
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    let _ =
        writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}
