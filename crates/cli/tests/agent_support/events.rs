//! A reader of a master's `GET /v2/events` stream (Server-Sent Events), for tests that wait
//! for an event. A thread reads the stream and hands every event to the test, decoded into
//! `client::events::Event` (an event that does not decode fails the test: the wire drifted).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use client::events::{Event, Stamped};

/// What the reader thread hands over: an event, or the data that is not one and why.
type Received = Result<Event, String>;

/// An open `/v2/events` subscription; closed on drop.
pub struct EventStream {
    events: Receiver<Received>,
    /// Every event received so far, for failure messages.
    seen: Vec<Event>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl EventStream {
    /// Subscribes to `addr`'s events of the given types (all events when empty). Returns
    /// once the master has answered 200 and the stream is open.
    pub fn open(addr: &str, event_types: &[&str]) -> Result<Self, String> {
        let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(2))
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let query: Vec<String> = event_types
            .iter()
            .map(|t| format!("event_type={t}"))
            .collect();
        let request = format!(
            "GET /v2/events?{} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nUser-Agent: drover-tests\r\n\r\n",
            query.join("&")
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("send to {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader
            .read_line(&mut status)
            .map_err(|e| format!("read the answer of {addr}: {e}"))?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(format!("GET /v2/events on {addr}: {}", status.trim_end()));
        }
        let mut chunked = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).map_err(|e| e.to_string())? == 0 {
                return Err(format!("{addr} closed the event stream in its head"));
            }
            let header = header.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if header.starts_with("transfer-encoding:") && header.contains("chunked") {
                chunked = true;
            }
        }
        // Short reads let the thread notice `stop`.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            let source: Box<dyn Read + Send> = if chunked {
                Box::new(Dechunk::new(reader))
            } else {
                Box::new(reader)
            };
            let mut lines = BufReader::new(source);
            let mut data = String::new();
            let mut line = Vec::new();
            while !thread_stop.load(Ordering::Relaxed) {
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) if line.ends_with(b"\n") => {}
                    Ok(_) => continue,
                    Err(e) if is_timeout(&e) => continue,
                    Err(_) => return,
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
                if let Some(d) = text.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                } else if text.is_empty() && !data.is_empty() {
                    let event = decode(&data);
                    data.clear();
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(EventStream {
            events: rx,
            seen: Vec::new(),
            stop,
            reader: Some(thread),
        })
    }

    /// Waits up to `timeout` for an event that `pick` picks (`Some`), and returns what it
    /// picked; events before it are skipped (and kept for [`EventStream::seen`]). Panics on
    /// an event that does not decode.
    #[track_caller]
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        pick: impl Fn(&Event) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok(event)) => {
                    let picked = pick(&event);
                    self.seen.push(event);
                    if picked.is_some() {
                        return picked;
                    }
                }
                Ok(Err(bad)) => panic!("{bad}"),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// The events received so far (as far as [`EventStream::wait_for`] read).
    pub fn seen(&self) -> &[Event] {
        &self.seen
    }
}

/// One message's data as an event (its timestamp checked for shape, then dropped: no test
/// reads the time).
fn decode(data: &str) -> Received {
    let bad = |why: String| format!("an event on /v2/events is not one: {why}; its data: {data}");
    let json = serde_json::from_str(data).map_err(|e| bad(e.to_string()))?;
    client::decode::<Stamped>("GET /v2/events", json)
        .map(|s| s.event)
        .map_err(|e| bad(e.to_string()))
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Decodes HTTP/1.1 chunked transfer coding; read timeouts of the socket pass through (and
/// the decoder resumes where it was).
struct Dechunk<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: usize,
    /// A partly read chunk-size line.
    size_line: Vec<u8>,
    /// After a chunk's data, its CRLF is still to be skipped.
    skip_crlf: usize,
    done: bool,
}

impl<R: BufRead> Dechunk<R> {
    fn new(inner: R) -> Self {
        Dechunk {
            inner,
            left: 0,
            size_line: Vec::new(),
            skip_crlf: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Dechunk<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done {
                return Ok(0);
            }
            while self.skip_crlf > 0 {
                let mut b = [0u8; 1];
                if self.inner.read(&mut b)? == 0 {
                    return Ok(0);
                }
                self.skip_crlf -= 1;
            }
            if self.left > 0 {
                let want = buf.len().min(self.left);
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Ok(0);
                }
                self.left -= n;
                if self.left == 0 {
                    self.skip_crlf = 2;
                }
                return Ok(n);
            }
            if self.inner.read_until(b'\n', &mut self.size_line)? == 0 {
                return Ok(0);
            }
            if !self.size_line.ends_with(b"\n") {
                continue;
            }
            let text = String::from_utf8_lossy(&self.size_line).into_owned();
            self.size_line.clear();
            let hex = text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("chunk size {hex:?}"))
            })?;
            if size == 0 {
                self.done = true;
            }
            self.left = size;
        }
    }
}
