//! The HTTP(S) GET that health checks and readiness checks send to a task: one request per
//! connection (`Connection: close`), HTTPS without certificate verification (see `tls`).
//! A health check needs only the status line; a readiness check that preserves its last
//! response also reads the headers and the body (up to [`MAX_BODY_BYTES`]).

use state::protocol::HttpAnswer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls;

/// The most of an answer's body a check keeps (the rest is cut): a readiness answer is
/// shown by the API and held in the leader's memory, so it stays small.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The most of an answer's head (status line and headers) a check reads.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Plain HTTP or HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://` (the task's certificate is not verified).
    Https,
}

/// `host:port` with IPv6 addresses in brackets, as URLs and `Host` headers write them.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A check's path as sent: always absolute.
pub fn request_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// What a check reaches, for messages: `http://10.0.0.5:31000/health`.
pub fn url(scheme: Scheme, host: &str, port: u16, path: &str) -> String {
    let scheme = match scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    format!("{scheme}://{}{}", authority(host, port), request_path(path))
}

/// GETs `path` from `host:port`: the answer's status, and with `with_body` its content type
/// and body too. The error says why there is no answer (for a message after the URL). Not
/// bounded in time: the caller applies the check's timeout.
pub async fn get(
    scheme: Scheme,
    host: &str,
    port: u16,
    path: &str,
    with_body: bool,
) -> Result<HttpAnswer, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    match scheme {
        Scheme::Http => exchange(tcp, host, port, path, with_body).await,
        Scheme::Https => {
            let stream = tls::connect(host, tcp).await.map_err(|e| e.to_string())?;
            exchange(stream, host, port, path, with_body).await
        }
    }
}

/// One request and its answer over `stream`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    port: u16,
    path: &str,
    with_body: bool,
) -> Result<HttpAnswer, String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: drover-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        request_path(path),
        authority(host, port),
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    // The status line is enough without a body; the whole head with one.
    let head_done = |buf: &[u8]| {
        if with_body {
            buf.windows(4).any(|w| w == b"\r\n\r\n")
        } else {
            buf.windows(2).any(|w| w == b"\r\n")
        }
    };
    let mut eof = false;
    while !head_done(&buf) && buf.len() < MAX_HEAD_BYTES {
        match stream.read(&mut chunk).await {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let status = status_code(&buf).ok_or_else(|| "the answer is not HTTP".to_string())?;
    let mut answer = HttpAnswer {
        status,
        content_type: String::new(),
        body: String::new(),
    };
    if !with_body {
        return Ok(answer);
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        // A head that never ended: the status is all there is.
        return Ok(answer);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut body = buf[end + 4..].to_vec();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    answer.content_type = header("content-type").unwrap_or_default();
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    // Reads until the body is complete, the limit is passed, or the server closes.
    let wanted = |body: &[u8]| match length {
        _ if chunked => chunked_complete(body),
        Some(n) => body.len() >= n,
        None => false,
    };
    let limit = MAX_BODY_BYTES + MAX_HEAD_BYTES;
    while !eof && !wanted(&body) && body.len() < limit {
        match stream.read(&mut chunk).await {
            Ok(0) => eof = true,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            // The status came; a body cut short is still worth showing.
            Err(_) => break,
        }
    }
    let mut body = if chunked { dechunk(&body) } else { body };
    if let Some(n) = length {
        body.truncate(n);
    }
    body.truncate(MAX_BODY_BYTES);
    answer.body = String::from_utf8_lossy(&body).to_string();
    Ok(answer)
}

/// The status code in an HTTP status line (`HTTP/1.1 200 OK`).
pub fn status_code(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// The chunks of a chunked body joined, as far as they are complete.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let start = line_end + 2;
        if size == 0 {
            break;
        }
        let end = (start + size).min(raw.len());
        out.extend_from_slice(&raw[start..end]);
        if start + size + 2 > raw.len() {
            break;
        }
        raw = &raw[start + size + 2..];
    }
    out
}

/// True when a chunked body has reached its last (empty) chunk.
fn chunked_complete(mut raw: &[u8]) -> bool {
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return true;
        };
        if size == 0 {
            return true;
        }
        let next = line_end + 2 + size + 2;
        if next > raw.len() {
            return false;
        }
        raw = &raw[next..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined_and_known_complete_at_the_last_chunk() {
        let raw = b"5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n";
        assert_eq!(dechunk(raw), b"hello, world");
        assert!(chunked_complete(raw));
        assert!(!chunked_complete(b"5\r\nhel"));
        assert_eq!(dechunk(b"5\r\nhel"), b"hel");
    }

    #[test]
    fn urls_bracket_ipv6_hosts_and_make_paths_absolute() {
        assert_eq!(
            url(Scheme::Http, "::1", 80, "ready"),
            "http://[::1]:80/ready"
        );
        assert_eq!(
            url(Scheme::Https, "10.0.0.5", 31000, "/"),
            "https://10.0.0.5:31000/"
        );
    }
}
