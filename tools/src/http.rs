//! The `--http` endpoint of `ringlog serve`: `GET /metrics` in the
//! OpenMetrics text format, for Prometheus and friends.
//!
//! Why a plain thread and `std::net` instead of an HTTP stack: one scrape
//! every few seconds does not justify an async runtime next to glommio's,
//! and the shards must never spend a cycle on it. The thread answers one
//! connection at a time, one request per connection, and bounds everything
//! a client controls: the request head is read with a byte limit and a
//! deadline for the whole head (not per read, so a client trickling one
//! byte at a time cannot hold the thread), and writes time out too.

use ringlog_shard::metrics::Metrics;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest request head (request line and headers) accepted; a scrape
/// request is a few hundred bytes.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its whole request head.
pub const REQUEST_HEAD_TIMEOUT_MS: u64 = 5_000;
/// Time each write of the response may block on a client not reading.
pub const WRITE_TIMEOUT_MS: u64 = 5_000;
/// After answering, bytes still read (and dropped) from the client before
/// closing, and for how long: closing a socket with unread input makes
/// the kernel send a reset, which can destroy the response in flight.
const DRAIN_BYTES_MAX: usize = 64 * 1024;
const DRAIN_TIMEOUT_MS: u64 = 200;
/// Pause after a failed accept (out of file descriptors, say) so the loop
/// does not spin while the condition lasts.
const ACCEPT_RETRY_DELAY_MS: u64 = 100;

/// The content type Prometheus asks for and `Metrics::encode` produces.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `listen` and serves `metrics` from a new thread for the rest of
/// the process. Returns the bound address (useful with port 0).
///
/// # Errors
///
/// Binding the listener or starting the thread failed; nothing runs then.
pub fn start(listen: SocketAddr, metrics: Arc<Metrics>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || accept_loop(listener, &metrics))?;
    Ok(local)
}

fn accept_loop(listener: TcpListener, metrics: &Metrics) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(err) = answer(stream, metrics) {
                    tracing::debug!(%peer, "metrics request failed: {err}");
                }
            }
            Err(err) => {
                tracing::warn!("metrics endpoint: accept failed: {err}");
                std::thread::sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MS));
            }
        }
    }
}

/// Reads one request from `stream`, writes the answer and closes.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_write_timeout(Some(Duration::from_millis(WRITE_TIMEOUT_MS)))?;
    let response = match read_head(&mut stream) {
        Ok(head) => respond(&head, metrics),
        Err(HeadError::TooLarge) => Response::plain(431, "Request Header Fields Too Large"),
        Err(HeadError::Io(err)) => return Err(err),
    };
    stream.write_all(&response.into_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    drain(&mut stream);
    Ok(())
}

enum HeadError {
    /// No blank line within [`REQUEST_HEAD_BYTES_MAX`].
    TooLarge,
    /// The client went away, or missed the deadline.
    Io(io::Error),
}

/// Reads up to the blank line ending the request head.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let deadline = Instant::now() + Duration::from_millis(REQUEST_HEAD_TIMEOUT_MS);
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() >= REQUEST_HEAD_BYTES_MAX {
            return Err(HeadError::TooLarge);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HeadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not received in time",
            )));
        }
        stream
            .set_read_timeout(Some(remaining))
            .map_err(HeadError::Io)?;
        let want = chunk.len().min(REQUEST_HEAD_BYTES_MAX - head.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(HeadError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the request head ended",
                )))
            }
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(HeadError::Io(err)),
        }
    }
}

/// Length of the head without its terminating blank line, once complete.
/// Bare `\n` line ends are accepted as well, as RFC 9112 recommends.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads and drops what the client still sends, briefly; see
/// [`DRAIN_BYTES_MAX`].
fn drain(stream: &mut TcpStream) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(DRAIN_TIMEOUT_MS)))
        .is_err()
    {
        return;
    }
    let mut scratch = [0u8; 4096];
    let mut drained_bytes = 0;
    while drained_bytes < DRAIN_BYTES_MAX {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained_bytes += n,
        }
    }
}

/// A complete HTTP/1.1 response.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    /// Extra header lines, each ending in `\r\n`.
    headers: &'static str,
    body: String,
    /// HEAD: headers as for GET, no body.
    omit_body: bool,
}

impl Response {
    fn plain(status: u16, reason: &'static str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            headers: "",
            body: format!("{reason}\n"),
            omit_body: false,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            self.headers
        )
        .into_bytes();
        if !self.omit_body {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The answer to a request head: routing and validation, no I/O.
fn respond(head: &[u8], metrics: &Metrics) -> Response {
    let Ok(head) = std::str::from_utf8(head) else {
        return Response::plain(400, "Bad Request");
    };
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::plain(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return Response::plain(400, "Bad Request");
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != "/metrics" {
        return Response::plain(404, "Not Found");
    }
    match method {
        "GET" | "HEAD" => Response {
            status: 200,
            reason: "OK",
            content_type: OPENMETRICS_CONTENT_TYPE,
            headers: "",
            body: metrics.encode(),
            omit_body: method == "HEAD",
        },
        _ => Response {
            headers: "Allow: GET, HEAD\r\n",
            ..Response::plain(405, "Method Not Allowed")
        },
    }
}
