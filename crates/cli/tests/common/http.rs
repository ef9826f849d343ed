//! A tiny HTTP/1.1 client over `std::net::TcpStream`, enough to talk to a master.
//!
//! One request per connection (`Connection: close`), JSON bodies with `Content-Length`,
//! answers framed by `Content-Length`, chunked transfer coding, or the end of the stream.
//! Every call has a total deadline, so a hung master shows up as an error, never as a
//! hung test. Connect failures are kept apart from later ones because they prove that
//! the request was never sent (the linearizability checker relies on that).
//!
//! A master of a secure cluster is spoken to over TLS once [`trust`] has named its cluster
//! CA for its address; every helper built on [`request_with`] then works unchanged.
//!
//! Answers are read through the API's own types (`client`): [`Response::typed`] and
//! [`get_as`] decode a body into its type, and a body of another shape fails naming the
//! endpoint and the field, not as a `Null` somewhere down an index chain.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use client::{DecodeError, ErrorBody};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How long a connect may take on loopback before the master is considered unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default total time for one request: well above every server-side wait (a follower
/// waits about 3 s for a leader, a write without quorum fails within a few seconds), so
/// hitting it means the master hung.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer from a master.
#[derive(Debug, Clone)]
pub struct Response {
    /// The request that got this answer, `GET /v2/apps` (named in decode errors).
    pub endpoint: String,
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub body_json: Value,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `message` of the error body, or "" when the body is not one.
    pub fn message(&self) -> String {
        self.error().map(|e| e.message).unwrap_or_default()
    }

    /// The body as `T`, or an error naming the endpoint and the field that does not fit.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        client::decode(&self.endpoint, self.body_json.clone())
    }

    /// The body of a 2xx answer as `T`; panics with the answer when it is not a success or
    /// does not have `T`'s shape.
    #[track_caller]
    pub fn typed<T: DeserializeOwned>(&self) -> T {
        if !self.is_success() {
            panic!("{} answered {self}", self.endpoint);
        }
        self.decode()
            .unwrap_or_else(|e| panic!("{e}; the answer: {self}"))
    }

    /// The body of a 2xx answer as `T`, None for any other status (for polls that wait
    /// for a success); a 2xx body of another shape panics, since waiting cannot fix it.
    #[track_caller]
    pub fn typed_ok<T: DeserializeOwned>(&self) -> Option<T> {
        self.is_success().then(|| self.typed())
    }

    /// The error body (Marathon's `{"message", "details"?}`), None when the body is not one.
    pub fn error(&self) -> Option<ErrorBody> {
        self.decode().ok()
    }
}

/// Why a typed read ([`get_as`]) has no value.
#[derive(Debug)]
pub enum ReadError {
    /// No answer.
    Http(HttpError),
    /// An answer outside 2xx (boxed, like the next: an answer is large).
    Status(Box<Response>),
    /// A 2xx answer of another shape than its type.
    Shape(DecodeError, Box<Response>),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Http(e) => write!(f, "no answer: {e}"),
            ReadError::Status(r) => write!(f, "{} answered {r}", r.endpoint),
            ReadError::Shape(e, r) => write!(f, "{e}; the answer: {r}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<HttpError> for ReadError {
    fn from(e: HttpError) -> Self {
        ReadError::Http(e)
    }
}

/// `GET addr path`, its 2xx body decoded as `T`.
pub fn get_as<T: DeserializeOwned>(addr: &str, path: &str) -> Result<T, ReadError> {
    read_as(get(addr, path)?)
}

/// A 2xx answer of any request decoded as `T` (`read_as(http::post(..)?)`).
pub fn read_as<T: DeserializeOwned>(r: Response) -> Result<T, ReadError> {
    if !r.is_success() {
        return Err(ReadError::Status(Box::new(r)));
    }
    r.decode().map_err(|e| ReadError::Shape(e, Box::new(r)))
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = self.body.clone();
        if body.len() > 600 {
            let mut cut = 600;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push_str("...");
        }
        write!(f, "HTTP {} {}", self.status, body)
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum HttpError {
    /// The connection could not be opened: the request was certainly not sent.
    Connect(io::Error),
    /// The connection broke or timed out after it was opened: the request may have been
    /// received and acted on.
    Transport(io::Error),
    /// The answer was not valid HTTP/1.1.
    Malformed(String),
}

impl HttpError {
    /// True when the request certainly never reached the server.
    pub fn not_sent(&self) -> bool {
        matches!(self, HttpError::Connect(_))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect failed: {e}"),
            HttpError::Transport(e) => write!(f, "connection failed after connect: {e}"),
            HttpError::Malformed(m) => write!(f, "malformed answer: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// `GET addr path` with the default timeout.
pub fn get(addr: &str, path: &str) -> Result<Response, HttpError> {
    request(addr, "GET", path, None, DEFAULT_TIMEOUT)
}

/// `POST addr path` with a JSON body and the default timeout.
pub fn post(addr: &str, path: &str, body: &Value) -> Result<Response, HttpError> {
    request(addr, "POST", path, Some(body), DEFAULT_TIMEOUT)
}

/// `PUT addr path` with a JSON body and the default timeout.
pub fn put(addr: &str, path: &str, body: &Value) -> Result<Response, HttpError> {
    request(addr, "PUT", path, Some(body), DEFAULT_TIMEOUT)
}

/// `DELETE addr path` with the default timeout.
pub fn delete(addr: &str, path: &str) -> Result<Response, HttpError> {
    request(addr, "DELETE", path, None, DEFAULT_TIMEOUT)
}

/// The TLS client configurations of the addresses [`trust`] named.
fn trusted() -> &'static Mutex<HashMap<String, Arc<rustls::ClientConfig>>> {
    static TRUSTED: OnceLock<Mutex<HashMap<String, Arc<rustls::ClientConfig>>>> = OnceLock::new();
    TRUSTED.get_or_init(Mutex::default)
}

/// From now on, requests to `addr` speak TLS that trusts only the CA certificate in
/// `ca_file` (a secure master's `ca.pem`), without a client certificate.
pub fn trust(addr: &str, ca_file: &Path) {
    let ca = state::tls::ca::read_ca_cert(ca_file)
        .unwrap_or_else(|e| panic!("the cluster CA {}: {e}", ca_file.display()));
    let config = state::tls::config::client_config(&ca, None)
        .unwrap_or_else(|e| panic!("a TLS client trusting {}: {e}", ca_file.display()));
    trusted()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr.to_string(), config);
}

/// The ACL token secrets that [`authorize`] named, by address.
fn authorized() -> &'static Mutex<HashMap<String, String>> {
    static AUTHORIZED: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    AUTHORIZED.get_or_init(Mutex::default)
}

/// From now on, requests to `addr` that carry no `Authorization` header of their own send
/// `Authorization: Bearer secret`, so the harness's probes (`/v2/leader`, `/metrics`) work
/// on a secure cluster once a token is bootstrapped.
pub fn authorize(addr: &str, secret: &str) {
    authorized()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr.to_string(), secret.to_string());
}

/// A connection to a master: plain, or TLS for an address [`trust`] named.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn open(addr: &str, stream: TcpStream) -> Result<Self, HttpError> {
        let config = trusted()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
            .cloned();
        let Some(config) = config else {
            return Ok(Conn::Plain(stream));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| HttpError::Connect(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let tls = rustls::ClientConnection::new(config, name)
            .map_err(|e| HttpError::Connect(io::Error::other(e)))?;
        Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(tls, stream))))
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// One request on a fresh connection; `timeout` bounds the whole exchange after connect.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    request_with(addr, method, path, body, &[], timeout)
}

/// [`request`] with extra header lines (`("Authorization", "Bearer …")`), sent as given.
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| HttpError::Connect(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let stream = TcpStream::connect_timeout(&sock, CONNECT_TIMEOUT).map_err(HttpError::Connect)?;
    let stream = Conn::open(addr, stream)?;
    let deadline = Instant::now() + timeout;
    let own = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let default = (!own)
        .then(|| {
            authorized()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(addr)
                .map(|secret| format!("Bearer {secret}"))
        })
        .flatten();
    match default {
        Some(auth) => {
            let mut with = headers.to_vec();
            with.push(("Authorization", &auth));
            exchange(stream, addr, method, path, body, &with, deadline)
        }
        None => exchange(stream, addr, method, path, body, headers, deadline),
    }
}

fn exchange(
    mut stream: Conn,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
    deadline: Instant,
) -> Result<Response, HttpError> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: drover-tests\r\n"
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if body.is_some() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", payload.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(payload.as_bytes());
    stream
        .tcp()
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(HttpError::Transport)?;
    stream.write_all(&bytes).map_err(HttpError::Transport)?;
    stream.flush().map_err(HttpError::Transport)?;

    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader, deadline)?;
    let status = parse_status(&status_line)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut reader, deadline)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Malformed(format!("header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |n: &str| {
        headers
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.clone())
    };
    let no_body =
        method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
    let raw = if no_body {
        Vec::new()
    } else if find("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(&mut reader, deadline)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Malformed(format!("content-length {len:?}")))?;
        let mut buf = vec![0; len];
        read_exact(&mut reader, &mut buf, deadline)?;
        buf
    } else {
        read_to_end(&mut reader, deadline)?
    };
    let body = String::from_utf8_lossy(&raw).into_owned();
    let body_json = serde_json::from_str(&body).unwrap_or(Value::Null);
    let endpoint = format!("{method} {path}");
    Ok(Response {
        endpoint,
        status,
        headers,
        body,
        body_json,
    })
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HttpError::Transport(io::Error::new(
            io::ErrorKind::TimedOut,
            "request deadline passed",
        )))
    } else {
        Ok(left)
    }
}

fn arm(reader: &mut BufReader<Conn>, deadline: Instant) -> Result<(), HttpError> {
    let left = remaining(deadline)?;
    reader
        .get_ref()
        .tcp()
        .set_read_timeout(Some(left))
        .map_err(HttpError::Transport)
}

fn read_line(reader: &mut BufReader<Conn>, deadline: Instant) -> Result<String, HttpError> {
    let mut line = Vec::new();
    loop {
        arm(reader, deadline)?;
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => {
                return Err(HttpError::Transport(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of the answer's head",
                )));
            }
            Ok(_) if line.ends_with(b"\n") => break,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HttpError::Transport(e)),
        }
    }
    while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|e| HttpError::Malformed(format!("non-UTF-8 head: {e}")))
}

fn read_exact(
    reader: &mut BufReader<Conn>,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), HttpError> {
    let mut filled = 0;
    while filled < buf.len() {
        arm(reader, deadline)?;
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(HttpError::Transport(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body ended after {filled} of {} bytes", buf.len()),
                )));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HttpError::Transport(e)),
        }
    }
    Ok(())
}

fn read_to_end(reader: &mut BufReader<Conn>, deadline: Instant) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        arm(reader, deadline)?;
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HttpError::Transport(e)),
        }
    }
}

fn read_chunked(reader: &mut BufReader<Conn>, deadline: Instant) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let size_line = read_line(reader, deadline)?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size line {size_line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line that ends the message.
            while !read_line(reader, deadline)?.is_empty() {}
            return Ok(out);
        }
        let start = out.len();
        out.resize(start + size, 0);
        read_exact(reader, &mut out[start..], deadline)?;
        let end = read_line(reader, deadline)?;
        if !end.is_empty() {
            return Err(HttpError::Malformed(format!(
                "chunk of {size} bytes not followed by CRLF but {end:?}"
            )));
        }
    }
}

fn parse_status(line: &str) -> Result<u16, HttpError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("status line {line:?}")));
    }
    code.parse()
        .map_err(|_| HttpError::Malformed(format!("status line {line:?}")))
}

/// Sends `body` as it is (not necessarily JSON, for malformed-input tests) over plain
/// HTTP; returns the status and the body as JSON (`Null` when it is not).
pub fn raw(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(DEFAULT_TIMEOUT))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}
