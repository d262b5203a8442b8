//! The Kafka client under the admin commands (`ringlog topic`,
//! `ringlog group`): one blocking connection, version negotiation, request
//! framing, error rendering and the shared `--bootstrap` / `--timeout-ms`
//! options, so every admin command behaves the same way. The commands that
//! use the broker's HTTP admin API instead ([`crate::admin_client`]) report
//! their failures through the same [`ClientError`].
//!
//! It is a blocking `std::net` client on purpose: one request at a time
//! over one connection, with a connect, read and write timeout, is all an
//! admin command needs. Messages are encoded and decoded by
//! `kafka-protocol` and framed by `ringlog_protocol::client` (shared with
//! `ringlog bench`, and tested there): every connection starts with
//! ApiVersions (v3, or v0 when the broker answers UNSUPPORTED_VERSION, per
//! KIP-511), then each request goes out at the highest version both sides
//! know.
//!
//! With `--security-protocol SSL` the socket is wrapped in rustls's
//! blocking stream and the handshake completes inside the connect, so a
//! certificate the client does not trust (or a broker that is not speaking
//! TLS) fails as a connect error naming the broker, not as a garbled first
//! answer. With SASL_PLAINTEXT or SASL_SSL the client authenticates next
//! (SaslHandshake v1, then SaslAuthenticate rounds driven by
//! `ringlog_protocol::sasl::ClientSession`, which verifies the broker's
//! SCRAM signature), before ApiVersions; a refusal is
//! [`ClientError::Authentication`], naming the user and mechanism. The
//! flags themselves are `ringlog bench`'s
//! ([`SecurityOptions`]), flattened here, so every command spells them the
//! same way.
//!
//! Everything except [`Client`] is a pure function, so the tests check it
//! with bytes made by the broker-side codecs, without a broker.

use bytes::{Bytes, BytesMut};
use clap::Args;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use ringlog_bench::options::{ClientSecurity, SecurityOptions};
use ringlog_protocol::client::{
    api_key, decode_response, encode_request, error_name, pick_version, API_VERSIONS_FIRST_VERSION,
};
use ringlog_protocol::frame::SIZE_PREFIX_BYTES;
use ringlog_protocol::sasl::{self, ClientCredentials, ClientSession};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How the admin commands name themselves when no version is in common.
pub const WHO: &str = "ringlog";
/// Rounds of TLS handshake I/O before a broker is given up on (one
/// normally does it).
const TLS_HANDSHAKE_CALLS_MAX: usize = 16;
/// Largest response accepted. A Metadata answer listing every topic is the
/// biggest an admin command sees; tens of thousands of partitions fit.
pub const RESPONSE_BYTES_MAX: usize = 100 << 20;

/// Why an admin command failed.
#[derive(Debug)]
pub enum ClientError {
    /// No TCP connection to the broker.
    Connect {
        /// The broker as given.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The connection failed or timed out mid-request.
    Io {
        /// The broker as given.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The broker's bytes make no sense, or no API version is common.
    Protocol {
        /// The broker as given.
        address: String,
        /// What is wrong.
        why: String,
    },
    /// The client's own settings cannot be used (a TLS file, say).
    Settings(String),
    /// SASL authentication failed: why, naming the user and mechanism
    /// (never the password).
    Authentication {
        /// The broker as given.
        address: String,
        /// Why.
        why: String,
    },
    /// The command will not do what was asked, and says why.
    Refused {
        /// What it is about: a group, a topic, a partition.
        subject: String,
        /// Why.
        why: String,
    },
    /// The broker's admin API (`--http`) answered the call with an error.
    Admin {
        /// The HTTP status.
        status: u16,
        /// The broker's explanation.
        message: String,
    },
    /// The broker answered with a Kafka error.
    Kafka {
        /// What it is about: a topic, a group, or for cluster-wide
        /// requests the broker address.
        subject: String,
        /// The error code.
        error: ResponseError,
        /// The broker's explanation, when it sent one.
        message: Option<String>,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { address, source } => {
                write!(f, "cannot connect to {address}: {source}")
            }
            ClientError::Io { address, source } => write!(f, "{address}: {source}"),
            ClientError::Protocol { address, why } => write!(f, "{address}: {why}"),
            ClientError::Settings(why) => f.write_str(why),
            ClientError::Authentication { address, why } => write!(f, "{address}: {why}"),
            ClientError::Refused { subject, why } => write!(f, "{subject}: {why}"),
            ClientError::Admin { status, message } => write!(f, "{message} (HTTP {status})"),
            ClientError::Kafka {
                subject,
                error,
                message,
            } => {
                write!(f, "{subject}: {} ({})", error_name(*error), error.code())?;
                match message {
                    Some(message) if !message.is_empty() => write!(f, ": {message}"),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// `Ok` for error code 0, else the Kafka error about `subject`.
pub fn check_error(
    subject: &str,
    error_code: i16,
    message: Option<&StrBytes>,
) -> Result<(), ClientError> {
    match ResponseError::try_from_code(error_code) {
        None => Ok(()),
        Some(error) => Err(ClientError::Kafka {
            subject: subject.to_string(),
            error,
            message: message.map(|m| m.to_string()),
        }),
    }
}

/// The connection under a [`Client`]: a socket, or TLS over one.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// A connection to one broker, after version negotiation.
pub struct Client {
    address: String,
    client_id: &'static str,
    stream: Stream,
    timeout: Duration,
    correlation_id: i32,
    broker_apis: Vec<ApiVersion>,
}

impl Client {
    /// Connects to `address` (`host:port`, trying every address the host
    /// resolves to), over TLS with `tls`, and negotiates versions.
    /// `timeout` bounds the connect and every read and write (of the TLS
    /// handshake too); `client_id` goes in every request header.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`] when no address accepts or the TLS
    /// handshake fails; any error of the ApiVersions exchange.
    pub fn connect(
        address: &str,
        security: &ClientSecurity,
        timeout: Duration,
        client_id: &'static str,
    ) -> Result<Client, ClientError> {
        assert!(!timeout.is_zero(), "a zero timeout means none to std::net");
        let connect_error = |source| ClientError::Connect {
            address: address.to_string(),
            source,
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        let mut connected = None;
        for addr in address.to_socket_addrs().map_err(connect_error)? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(err) => last_error = err,
            }
        }
        let stream = connected.ok_or_else(|| connect_error(last_error))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(connect_error)?;
        let stream = match &security.tls {
            None => Stream::Plain(stream),
            Some(tls) => Stream::Tls(Box::new(tls_handshake(address, tls, stream)?)),
        };
        let mut client = Client {
            address: address.to_string(),
            client_id,
            stream,
            timeout,
            correlation_id: 0,
            broker_apis: Vec::new(),
        };
        if let Some(credentials) = &security.sasl {
            client.authenticate(credentials)?;
        }
        client.negotiate()?;
        Ok(client)
    }

    /// The broker as given to [`Client::connect`].
    pub fn address(&self) -> &str {
        &self.address
    }

    /// SaslHandshake and SaslAuthenticate (KIP-152), before any other
    /// request.
    fn authenticate(&mut self, credentials: &ClientCredentials) -> Result<(), ClientError> {
        let address = self.address.clone();
        let failed = |why: String| ClientError::Authentication {
            address: address.clone(),
            why,
        };
        let response = self.call(
            sasl::CLIENT_HANDSHAKE_VERSION,
            &sasl::handshake_request(credentials),
        )?;
        sasl::check_handshake(credentials, &response).map_err(failed)?;
        let mut session = ClientSession::new(credentials.clone());
        let mut token = session
            .first()
            .map_err(|why| failed(sasl::client_failure(credentials, &why)))?;
        for _ in 0..sasl::CLIENT_ROUNDS_MAX {
            let response = self.call(
                sasl::CLIENT_AUTHENTICATE_VERSION,
                &sasl::authenticate_request(token),
            )?;
            let server = sasl::check_authenticate(credentials, response).map_err(failed)?;
            match session.step(&server) {
                Ok(Some(next)) => token = next,
                Ok(None) => return Ok(()),
                Err(why) => return Err(failed(sasl::client_failure(credentials, &why))),
            }
        }
        Err(failed(sasl::client_failure(
            credentials,
            &format!("not done after {} rounds", sasl::CLIENT_ROUNDS_MAX),
        )))
    }

    fn negotiate(&mut self) -> Result<(), ClientError> {
        let mut response = self.api_versions(API_VERSIONS_FIRST_VERSION)?;
        if response.error_code == ResponseError::UnsupportedVersion.code() {
            response = self.api_versions(0)?;
        }
        check_error(&self.address, response.error_code, None)?;
        if response.api_keys.is_empty() {
            return Err(self.protocol("the broker's ApiVersions answer lists no APIs".into()));
        }
        self.broker_apis = response.api_keys;
        Ok(())
    }

    fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("ringlog"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        self.call(version, &request)
    }

    /// The version to send `R` at; see [`pick_version`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Protocol`] when there is none.
    pub fn version<R: Request>(&self) -> Result<i16, ClientError> {
        self.version_from::<R>(R::VERSIONS.min)
    }

    /// Like [`Client::version`], never below `min` (for requests whose
    /// older versions cannot say what the command needs).
    ///
    /// # Errors
    ///
    /// [`ClientError::Protocol`] when there is none.
    pub fn version_from<R: Request>(&self, min: i16) -> Result<i16, ClientError> {
        assert!(min <= R::VERSIONS.max);
        let client = VersionRange {
            min: min.max(R::VERSIONS.min),
            max: R::VERSIONS.max,
        };
        pick_version(&self.broker_apis, api_key::<R>(), client, WHO)
            .map_err(|why| self.protocol(why))
    }

    /// Sends `request` at `version` and waits for its answer.
    ///
    /// # Errors
    ///
    /// I/O errors and timeouts, and undecodable answers.
    pub fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        let correlation_id = self.correlation_id;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut frame = BytesMut::new();
        encode_request(&mut frame, self.client_id, version, correlation_id, request)
            .map_err(|why| self.protocol(why))?;
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .map_err(|err| self.io_error(err))?;
        let body = self.read_frame()?;
        decode_response::<R>(version, correlation_id, body).map_err(|why| self.protocol(why))
    }

    fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let mut prefix = [0u8; SIZE_PREFIX_BYTES];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|err| self.io_error(err))?;
        let declared = i32::from_be_bytes(prefix);
        let size = match usize::try_from(declared) {
            Ok(size) if (1..=RESPONSE_BYTES_MAX).contains(&size) => size,
            _ => {
                return Err(self.protocol(format!(
                    "response frame size {declared} is outside 1..={RESPONSE_BYTES_MAX}"
                )))
            }
        };
        // Grows with what arrives, so a lying size prefix costs nothing.
        let mut body = Vec::new();
        (&mut self.stream)
            .take(size as u64)
            .read_to_end(&mut body)
            .map_err(|err| self.io_error(err))?;
        if body.len() != size {
            return Err(self.io_error(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(Bytes::from(body))
    }

    fn protocol(&self, why: String) -> ClientError {
        ClientError::Protocol {
            address: self.address.clone(),
            why,
        }
    }

    fn io_error(&self, err: io::Error) -> ClientError {
        // A read timeout surfaces as WouldBlock on Linux; say what it means.
        let source = match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} ms", self.timeout.as_millis()),
            ),
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            ),
            _ => err,
        };
        ClientError::Io {
            address: self.address.clone(),
            source,
        }
    }
}

/// Completes the TLS handshake on `stream` (bounded by its read and write
/// timeouts), so a failure reads as a connect error naming the broker.
fn tls_handshake(
    address: &str,
    tls: &Arc<ClientConfig>,
    mut stream: TcpStream,
) -> Result<StreamOwned<ClientConnection, TcpStream>, ClientError> {
    let connect_error = |why: String| ClientError::Connect {
        address: address.to_string(),
        source: io::Error::other(why),
    };
    let name = ringlog_protocol::tls::server_name(address).map_err(connect_error)?;
    let mut connection =
        ClientConnection::new(tls.clone(), name).map_err(|e| connect_error(format!("TLS: {e}")))?;
    // `complete_io` drives the whole handshake (a few flights) or fails;
    // the bound only stops a broker that keeps it going forever.
    for _ in 0..TLS_HANDSHAKE_CALLS_MAX {
        if !connection.is_handshaking() {
            return Ok(StreamOwned::new(connection, stream));
        }
        connection
            .complete_io(&mut stream)
            .map_err(|e| connect_error(format!("TLS handshake failed: {e}")))?;
    }
    Err(connect_error(format!(
        "TLS handshake not done after {TLS_HANDSHAKE_CALLS_MAX} rounds"
    )))
}

/// A topic name for a request.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A string for a request.
pub fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// The options every admin command takes, in any position.
#[derive(Args)]
pub struct BrokerArgs {
    /// Broker to connect to.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092",
        env = "RINGLOG_BOOTSTRAP"
    )]
    pub bootstrap: String,
    /// Connect, read and write timeout; also the time the broker may take
    /// for requests that carry a timeout (creating, altering, deleting topics).
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    pub timeout_ms: u32,
    /// The security protocol, the TLS files and the SASL login.
    #[command(flatten)]
    pub security: SecurityOptions,
}

impl BrokerArgs {
    /// Connects to `--bootstrap` within `--timeout-ms`, naming itself
    /// `client_id` in every request.
    ///
    /// # Errors
    ///
    /// See [`Client::connect`]; and [`ClientError::Settings`] when the TLS
    /// files cannot be used.
    pub fn connect(&self, client_id: &'static str) -> Result<Client, ClientError> {
        let security = self.security.resolve().map_err(ClientError::Settings)?;
        Client::connect(&self.bootstrap, &security, self.timeout(), client_id)
    }

    /// `--timeout-ms`.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }

    /// `--timeout-ms` as the requests carry it.
    pub fn timeout_ms_i32(&self) -> i32 {
        i32::try_from(self.timeout_ms).expect("clap bounds --timeout-ms to i32")
    }
}

/// Prints every failure as `ringlog <command>: <error>` on stderr; the
/// exit code is 1 if there was any, else 0.
pub fn exit_code(command: &str, failures: impl IntoIterator<Item = ClientError>) -> ExitCode {
    let mut failed = false;
    for failure in failures {
        eprintln!("ringlog {command}: {failure}");
        failed = true;
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A text table: a header line and one line per row, columns two spaces
/// apart and padded to their widest cell, the last one not padded (no
/// trailing blanks).
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    assert!(!header.is_empty());
    assert!(rows.iter().all(|row| row.len() == header.len()));
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
                .max(header[column].chars().count())
        })
        .collect();
    let mut out = String::new();
    let lines = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for line in lines {
        let last = line.len() - 1;
        for (column, cell) in line.iter().enumerate() {
            if column == last {
                out.push_str(cell);
            } else {
                let pad = widths[column] - cell.chars().count();
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push('\n');
    }
    out
}
