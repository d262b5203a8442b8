//! The `--http` endpoint of `ringlog serve`: `GET /metrics` in the
//! OpenMetrics text format, for Prometheus and friends, the admin API
//! under `/v1/` (JSON; routes and documents in [`crate::admin_api`]) and
//! record search, `GET /search` ([`crate::search_api`]).
//!
//! Why a plain thread and `std::net` instead of an HTTP stack: one scrape
//! every few seconds and an operator's occasional call do not justify an
//! async runtime next to glommio's, and the shards must never spend a
//! cycle on HTTP. The thread answers one connection at a time, one request
//! per connection, and bounds everything a client controls: the request
//! head and body are read with byte limits and one deadline for the whole
//! request (not per read, so a client trickling one byte at a time cannot
//! hold the thread), and writes time out too. A body needs a
//! `Content-Length`; chunked bodies are refused rather than parsed.
//!
//! An admin call holds the thread until the broker answers (a move waits
//! for in-flight appends and their fdatasync); connections arriving
//! meanwhile, scrapes included, wait in the listen backlog. The broker
//! bounds each step of a call, so the wait ends.

use crate::admin_api::{self, Reply, JSON_CONTENT_TYPE};
use crate::search_api::{self, SEARCH_PATH};
use ringlog_shard::admin::AdminMailbox;
use ringlog_shard::metrics::Metrics;
use ringlog_shard::search::{SearchError, SearchHub};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest request head (request line and headers) accepted; a scrape
/// request is a few hundred bytes.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Longest request body accepted; an admin call's body is under a hundred
/// bytes.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
/// Time a client has to send its whole request, head and body.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
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

/// Binds `listen` and serves `metrics`, the admin API (calls go to
/// `admin`) and search (over `search`'s indexers) from a new thread for
/// the rest of the process. Returns the bound address (useful with port
/// 0).
///
/// # Errors
///
/// Binding the listener or starting the thread failed; nothing runs then.
pub fn start(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    admin: Arc<AdminMailbox>,
    search: Option<Arc<SearchHub>>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let local = listener.local_addr()?;
    let served = Served {
        metrics,
        admin,
        search,
    };
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || accept_loop(listener, &served))?;
    Ok(local)
}

/// What the endpoint answers from.
struct Served {
    metrics: Arc<Metrics>,
    admin: Arc<AdminMailbox>,
    search: Option<Arc<SearchHub>>,
}

fn accept_loop(listener: TcpListener, served: &Served) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(err) = answer(stream, served) {
                    tracing::debug!(%peer, "http request failed: {err}");
                }
            }
            Err(err) => {
                tracing::warn!("http endpoint: accept failed: {err}");
                std::thread::sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MS));
            }
        }
    }
}

/// Reads one request from `stream`, writes the answer and closes.
fn answer(mut stream: TcpStream, served: &Served) -> io::Result<()> {
    stream.set_write_timeout(Some(Duration::from_millis(WRITE_TIMEOUT_MS)))?;
    let response = match read_request(&mut stream) {
        Ok(request) => respond(&request, served),
        Err(RequestError::Refused(response)) => response,
        Err(RequestError::Io(err)) => return Err(err),
    };
    stream.write_all(&response.into_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    drain(&mut stream);
    Ok(())
}

/// A request, read whole.
struct Request {
    method: String,
    /// The target without its query string.
    path: String,
    /// What follows the target's `?` (empty without one).
    query: String,
    body: Vec<u8>,
}

enum RequestError {
    /// Answered without routing: too large, malformed, no length.
    Refused(Response),
    /// The client went away, or missed the deadline.
    Io(io::Error),
}

/// Reads the request head and the body its `Content-Length` announces,
/// all before one deadline.
fn read_request(stream: &mut TcpStream) -> Result<Request, RequestError> {
    let deadline = Instant::now() + Duration::from_millis(REQUEST_TIMEOUT_MS);
    let mut buf = Vec::with_capacity(1024);
    let (head_len, body_start) = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() >= REQUEST_HEAD_BYTES_MAX {
            return Err(RequestError::Refused(Response::plain(
                431,
                "Request Header Fields Too Large",
            )));
        }
        read_more(stream, deadline, &mut buf, REQUEST_HEAD_BYTES_MAX, "head")?;
        if !may_start_request_line(&buf) {
            return Err(RequestError::Refused(Response::plain(400, "Bad Request")));
        }
    };
    let head = parse_head(&buf[..head_len]).map_err(RequestError::Refused)?;
    let mut body = buf.split_off(body_start);
    // A client may send more than it announced; what follows is not ours.
    body.truncate(head.content_length);
    while body.len() < head.content_length {
        read_more(stream, deadline, &mut body, head.content_length, "body")?;
    }
    Ok(Request {
        method: head.method,
        path: head.path,
        query: head.query,
        body,
    })
}

/// Reads what arrives into `buf`, up to `limit` bytes in all, waiting no
/// later than `deadline`.
fn read_more(
    stream: &mut TcpStream,
    deadline: Instant,
    buf: &mut Vec<u8>,
    limit: usize,
    what: &str,
) -> Result<(), RequestError> {
    let mut chunk = [0u8; 4096];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(RequestError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("request {what} not received in time"),
            )));
        }
        stream
            .set_read_timeout(Some(remaining))
            .map_err(RequestError::Io)?;
        let want = chunk.len().min(limit - buf.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(RequestError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed before the request {what} ended"),
                )))
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(RequestError::Io(err)),
        }
    }
}

/// Longest method token accepted before its space; the longest standard
/// method, `OPTIONS`, has 7 bytes.
const METHOD_BYTES_MAX: usize = 16;

/// Whether `buf` can still be the start of a request line: a method token
/// (RFC 9110 `tchar`s) and then a space. A client speaking another
/// protocol to this port (a Kafka client reconnecting to an address this
/// endpoint now holds sends a frame starting with a zero length byte, a
/// TLS client a 0x16) is refused at its first bytes instead of holding the
/// thread, and every scrape behind it, until [`REQUEST_TIMEOUT_MS`].
fn may_start_request_line(buf: &[u8]) -> bool {
    let is_tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    match buf.iter().position(|&b| b == b' ') {
        Some(space) => space > 0 && space <= METHOD_BYTES_MAX && buf[..space].iter().all(is_tchar),
        None => buf.len() <= METHOD_BYTES_MAX && buf.iter().all(is_tchar),
    }
}

/// The length of the head without its terminating blank line, and where
/// the body starts, once the head is complete. Bare `\n` line ends are
/// accepted as well, as RFC 9112 recommends.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) if b < a => Some((b, b + 2)),
        (Some(a), _) => Some((a, a + 4)),
        (None, Some(b)) => Some((b, b + 2)),
        (None, None) => None,
    }
}

/// What routing needs of a request head.
struct Head {
    method: String,
    path: String,
    query: String,
    content_length: usize,
}

/// Checks the request line and reads the body length. Per RFC 9112 a
/// request without `Content-Length` or `Transfer-Encoding` has no body.
fn parse_head(head: &[u8]) -> Result<Head, Response> {
    let bad = || Response::plain(400, "Bad Request");
    let head = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return Err(bad());
    }
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad());
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::plain(411, "Length Required"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value.parse().map_err(|_| bad())?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(bad());
            }
            content_length = Some(length);
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > REQUEST_BODY_BYTES_MAX {
        return Err(Response::plain(413, "Content Too Large"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Head {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        content_length,
    })
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
    /// The methods the path takes, sent as `Allow` (with a 405).
    allow: Option<&'static str>,
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
            allow: None,
            body: format!("{reason}\n"),
            omit_body: false,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let allow = self
            .allow
            .map_or(String::new(), |methods| format!("Allow: {methods}\r\n"));
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        if !self.omit_body {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The answer to a request: routing, no I/O but the admin call.
fn respond(request: &Request, served: &Served) -> Response {
    let method = request.method.as_str();
    if request.path == SEARCH_PATH {
        let reply = search_api::respond(
            method,
            &request.query,
            |call| served.admin.call(call),
            |topic, search| match &served.search {
                Some(hub) => hub.search(topic, search),
                None => Err(SearchError::Unavailable("this broker runs no indexers")),
            },
        );
        return json_response(reply);
    }
    if request.path != "/metrics" {
        let reply = admin_api::respond(method, &request.path, &request.body, |call| {
            served.admin.call(call)
        });
        return json_response(reply);
    }
    match method {
        "GET" | "HEAD" => Response {
            status: 200,
            reason: "OK",
            content_type: OPENMETRICS_CONTENT_TYPE,
            allow: None,
            body: served.metrics.encode(),
            omit_body: method == "HEAD",
        },
        _ => Response {
            allow: Some("GET, HEAD"),
            ..Response::plain(405, "Method Not Allowed")
        },
    }
}

fn json_response(reply: Reply) -> Response {
    Response {
        status: reply.status,
        reason: reason(reply.status),
        content_type: JSON_CONTENT_TYPE,
        allow: reply.allow,
        body: reply.body,
        omit_body: false,
    }
}

/// The reason phrase of each status the admin API answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}
