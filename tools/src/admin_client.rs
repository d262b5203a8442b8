//! The client of the broker's admin API (`ringlog serve --http`, routes in
//! [`crate::admin_api`]), under `ringlog shard`, `ringlog partition` and
//! `ringlog topic describe`, with their shared `--http` option.
//!
//! Why a small HTTP/1.1 client over `std::net` rather than an HTTP
//! library: a command makes one or two calls to an endpoint this crate
//! serves itself, which takes one request per connection and answers with
//! a `Content-Length` and `Connection: close`. So a call is one write and
//! one read to end of file, under one deadline and a byte limit, and no
//! runtime or TLS stack comes along. Failures are [`ClientError`]s, so
//! these commands print and exit like the Kafka admin commands.
//!
//! [`encode_request`], [`parse_response`] and [`answer_body`] are pure, so
//! the tests check them with bytes, without a server.

use crate::admin_api::{ErrorJson, JSON_CONTENT_TYPE};
use crate::kafka_client::ClientError;
use clap::Args;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest answer accepted. `GET /v1/shards` is the largest, about 100
/// bytes per partition.
pub const RESPONSE_BYTES_MAX: usize = 64 << 20;
/// Default `--timeout-ms` of `ringlog shard` and `ringlog partition`: a
/// rebalance answers once every move is done, each waiting for in-flight
/// appends and their fdatasync.
pub const TIMEOUT_MS_DEFAULT: u32 = 60_000;

/// `--http`: where the admin API listens.
#[derive(Args)]
pub struct AdminAddressArgs {
    /// The broker's admin address: what `ringlog serve --http` listens on.
    #[arg(
        long = "http",
        global = true,
        value_name = "HOST:PORT",
        env = "RINGLOG_HTTP"
    )]
    pub http: Option<String>,
}

/// The options of the commands that only use the admin API.
#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    address: AdminAddressArgs,
    /// Connect timeout, and how long the broker may take to answer (a
    /// rebalance answers once every move is done).
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = TIMEOUT_MS_DEFAULT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    timeout_ms: u32,
}

impl AdminArgs {
    /// A client of `--http` with `--timeout-ms`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] when no `--http` (nor `RINGLOG_HTTP`) is given.
    pub fn client(&self) -> Result<AdminClient, ClientError> {
        let address = self
            .address
            .http
            .as_deref()
            .ok_or_else(|| ClientError::Refused {
                subject: "--http".to_string(),
                why: "no admin address given: pass the address `ringlog serve --http` listens on, or set RINGLOG_HTTP".to_string(),
            })?;
        Ok(AdminClient::new(
            address,
            Duration::from_millis(u64::from(self.timeout_ms)),
        ))
    }
}

/// Calls to one broker's admin API, a connection each.
pub struct AdminClient {
    /// `HOST:PORT` as given.
    address: String,
    timeout: Duration,
}

impl AdminClient {
    /// A client of `address` (`HOST:PORT`); `timeout` bounds the connect
    /// and, separately, the whole exchange after it.
    pub fn new(address: &str, timeout: Duration) -> AdminClient {
        assert!(!timeout.is_zero(), "a zero timeout means none to std::net");
        AdminClient {
            address: address.to_string(),
            timeout,
        }
    }

    /// `GET path`: the body of a successful answer, as sent.
    ///
    /// # Errors
    ///
    /// No connection, a timeout, an answer that is not HTTP, or the
    /// broker's error ([`ClientError::Admin`]).
    pub fn get(&self, path: &str) -> Result<String, ClientError> {
        self.exchange(&encode_request("GET", &self.address, path, None))
    }

    /// `POST path` with `body` as JSON: the body of a successful answer,
    /// as sent.
    ///
    /// # Errors
    ///
    /// As [`AdminClient::get`].
    pub fn post(&self, path: &str, body: &impl Serialize) -> Result<String, ClientError> {
        let body = serde_json::to_string(body).expect("request bodies always serialise");
        self.exchange(&encode_request("POST", &self.address, path, Some(&body)))
    }

    /// An answer's body read as `T`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Protocol`] when it is not the document expected.
    pub fn decode<T: DeserializeOwned>(&self, body: &str) -> Result<T, ClientError> {
        serde_json::from_str(body).map_err(|err| self.protocol(format!("unexpected answer: {err}")))
    }

    fn exchange(&self, request: &[u8]) -> Result<String, ClientError> {
        let mut stream = self.connect()?;
        let deadline = Instant::now() + self.timeout;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(|err| self.io_error(err))?;
        stream
            .write_all(request)
            .map_err(|err| self.io_error(err))?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.io_error(io::ErrorKind::TimedOut.into()));
            }
            stream
                .set_read_timeout(Some(remaining))
                .map_err(|err| self.io_error(err))?;
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) if response.len() + n > RESPONSE_BYTES_MAX => {
                    return Err(self.protocol(format!(
                        "the answer is larger than {RESPONSE_BYTES_MAX} bytes"
                    )))
                }
                Ok(n) => response.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.io_error(err)),
            }
        }
        let (status, body) = parse_response(&response).map_err(|why| self.protocol(why))?;
        answer_body(status, body).map(str::to_string)
    }

    /// Connects to the first address `HOST:PORT` resolves to that accepts.
    fn connect(&self) -> Result<TcpStream, ClientError> {
        let connect_error = |source| ClientError::Connect {
            address: self.url(),
            source,
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for addr in self.address.to_socket_addrs().map_err(connect_error)? {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(stream) => return Ok(stream),
                Err(err) => last_error = err,
            }
        }
        Err(connect_error(last_error))
    }

    /// The address as errors name it: the scheme says it is the admin
    /// endpoint, not the Kafka listener.
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn protocol(&self, why: String) -> ClientError {
        ClientError::Protocol {
            address: self.url(),
            why,
        }
    }

    fn io_error(&self, err: io::Error) -> ClientError {
        // A read timeout surfaces as WouldBlock on Linux; say what it means.
        let source = match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer within {} ms (a move or rebalance the broker has started still runs to its end)",
                    self.timeout.as_millis()
                ),
            ),
            _ => err,
        };
        ClientError::Io {
            address: self.url(),
            source,
        }
    }
}

/// An HTTP/1.1 request for one exchange: `Connection: close`, and with a
/// body, its JSON content type and length.
pub fn encode_request(method: &str, host: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {JSON_CONTENT_TYPE}\r\nConnection: close\r\n"
    );
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: {JSON_CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    request.into_bytes()
}

/// The status and body of a whole HTTP/1.x answer. With a
/// `Content-Length`, the body is that many bytes and must all be there;
/// without, it is everything after the head.
///
/// # Errors
///
/// Why the bytes are not such an answer.
pub fn parse_response(bytes: &[u8]) -> Result<(u16, &str), String> {
    let head_len = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer ({} bytes, no end of head)", bytes.len()))?;
    let head = std::str::from_utf8(&bytes[..head_len])
        .map_err(|_| "the answer's head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .filter(|code| (100..=599).contains(code))
    .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;
    let mut body = &bytes[head_len + 4..];
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {:?}", value.trim()))
        })
        .transpose()?;
    if let Some(length) = length {
        if body.len() < length {
            return Err(format!(
                "the answer ended after {} of its {length} body bytes",
                body.len()
            ));
        }
        body = &body[..length];
    }
    let body =
        std::str::from_utf8(body).map_err(|_| "the answer's body is not UTF-8".to_string())?;
    Ok((status, body))
}

/// The body of a 2xx answer; any other status is the broker's error, its
/// message taken from the `{"error": ...}` document (or the body as text
/// when it is not one).
///
/// # Errors
///
/// [`ClientError::Admin`] for a status other than 2xx.
pub fn answer_body(status: u16, body: &str) -> Result<&str, ClientError> {
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = match serde_json::from_str::<ErrorJson>(body) {
        Ok(ErrorJson { error }) => error,
        Err(_) if body.trim().is_empty() => "no explanation".to_string(),
        Err(_) => body.trim().to_string(),
    };
    Err(ClientError::Admin { status, message })
}
