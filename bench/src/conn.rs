//! One Kafka connection on a glommio executor: connect, negotiate
//! versions, then pipelined requests with deadlines.
//!
//! Why a reader task and a writer in the caller: Kafka answers requests on
//! a connection in order, so pipelining needs no bookkeeping beyond a FIFO
//! of what is in flight, but reads must not wait for writes (or a full
//! socket buffer on both sides deadlocks). The reader task cuts response
//! frames off the socket and queues them; the caller writes requests and
//! takes answers in order, each with a deadline. Every wait is bounded: a
//! broker that stops answering (or stops reading) turns into
//! [`Recv::TimedOut`] or a write error after `--request-timeout-ms`,
//! never a hang. Dropping a [`Conn`] cancels its reader task and closes
//! the socket.
//!
//! With `--security-protocol SSL` the socket is wrapped in TLS
//! (futures-rustls) right after the connect, within the same timeout, and
//! everything above runs on the TLS stream; with SASL_* the client
//! authenticates next (SaslHandshake v1 and SaslAuthenticate, driven by
//! `ringlog_protocol::sasl::ClientSession`), before ApiVersions; the writer is boxed so one
//! [`Conn`] type serves both (one indirect call per request written, next
//! to a system call).

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::Task;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;
use ringlog_protocol::frame::FrameBuffer;
use std::net::ToSocketAddrs;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::options::ClientSecurity;
use crate::wire;
use ringlog_protocol::client;
use ringlog_protocol::sasl::{self, ClientCredentials, ClientSession};

/// Read buffer growth step (reads get at least half of it).
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// What waiting for the next answer gave.
#[derive(Debug)]
pub enum Recv {
    /// The next response frame (without its size prefix).
    Frame(Bytes),
    /// The deadline passed first.
    TimedOut,
    /// The connection is gone; why.
    Closed(String),
}

/// How connections are opened: TLS and SASL (`--security-protocol`) or
/// not, and the timeout of the connect, the handshake, the authentication
/// and the version negotiation.
#[derive(Clone)]
pub struct Dial {
    /// TLS and SASL settings.
    pub security: ClientSecurity,
    /// Bound of the connect, the TLS handshake and the ApiVersions
    /// exchange; the default of [`Conn::call`].
    pub timeout: Duration,
}

impl Dial {
    /// Connects to `address`; see [`Conn::connect`].
    ///
    /// # Errors
    ///
    /// See [`Conn::connect`].
    pub async fn connect(&self, address: &str, queue: usize) -> Result<Conn, String> {
        Conn::connect(address, &self.security, self.timeout, queue).await
    }
}

/// A negotiated connection to one broker.
pub struct Conn {
    address: String,
    writer: Pin<Box<dyn AsyncWrite>>,
    responses: LocalReceiver<Result<Bytes, String>>,
    _reader: Task<()>,
    correlation_id: i32,
    apis: Vec<ApiVersion>,
    timeout: Duration,
    out: BytesMut,
}

async fn read_frames(
    mut reader: impl AsyncRead + Unpin,
    queue: LocalSender<Result<Bytes, String>>,
) {
    let mut frames = FrameBuffer::new(wire::RESPONSE_BYTES_MAX, READ_CHUNK_BYTES);
    loop {
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => {
                    if queue.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = queue.send(Err(format!("bad response frame: {e}"))).await;
                    return;
                }
            }
        }
        match reader.read(frames.room()).await {
            Ok(0) => {
                let _ = queue
                    .send(Err("the broker closed the connection".to_string()))
                    .await;
                return;
            }
            Ok(n) => frames.filled(n),
            Err(e) => {
                let _ = queue.send(Err(format!("read failed: {e}"))).await;
                return;
            }
        }
    }
}

/// The TLS handshake on a connected socket, within `timeout`; the name
/// checked against the broker's certificate is `address`'s host.
async fn tls_handshake(
    address: &str,
    tls: &Arc<rustls::ClientConfig>,
    stream: TcpStream,
    timeout: Duration,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, String> {
    let name = ringlog_protocol::tls::server_name(address)?;
    let handshake = futures_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
    futures_lite::future::or(
        async {
            handshake
                .await
                .map_err(|e| format!("{address}: TLS handshake failed: {e}"))
        },
        async {
            glommio::timer::sleep(timeout).await;
            Err(format!(
                "{address}: no TLS handshake within {} ms",
                timeout.as_millis()
            ))
        },
    )
    .await
}

async fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        glommio::timer::sleep(deadline - now).await;
    }
}

impl Conn {
    /// Connects to `address` (`host:port`, trying each address it resolves
    /// to), over TLS with `tls`, and negotiates versions. `timeout` bounds
    /// the connect, the TLS handshake and the ApiVersions exchange, and is
    /// the default for [`Conn::call`].
    /// `queue` bounds the answers buffered before the caller takes them
    /// (at least the requests the caller keeps in flight).
    ///
    /// # Errors
    ///
    /// No address accepts, the TLS handshake fails, or the ApiVersions
    /// exchange fails.
    pub async fn connect(
        address: &str,
        security: &ClientSecurity,
        timeout: Duration,
        queue: usize,
    ) -> Result<Conn, String> {
        assert!(!timeout.is_zero() && queue >= 1);
        let addrs: Vec<_> = address
            .to_socket_addrs()
            .map_err(|e| format!("{address}: {e}"))?
            .collect();
        let mut last_error = format!("{address}: resolves to no address");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(addr, timeout).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = format!("cannot connect to {address}: {e}"),
            }
        }
        let stream = stream.ok_or(last_error)?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("{address}: TCP_NODELAY: {e}"))?;
        let (sender, responses) = local_channel::new_bounded(queue);
        let (reader, writer): (Task<()>, Pin<Box<dyn AsyncWrite>>) = match &security.tls {
            None => {
                let (reader, writer) = futures_lite::io::split(stream);
                (
                    glommio::spawn_local(read_frames(reader, sender)),
                    Box::pin(writer),
                )
            }
            Some(tls) => {
                let stream = tls_handshake(address, tls, stream, timeout).await?;
                let (reader, writer) = futures_lite::io::split(stream);
                (
                    glommio::spawn_local(read_frames(reader, sender)),
                    Box::pin(writer),
                )
            }
        };
        let mut conn = Conn {
            address: address.to_string(),
            writer,
            responses,
            _reader: reader,
            correlation_id: 0,
            apis: Vec::new(),
            timeout,
            out: BytesMut::new(),
        };
        if let Some(credentials) = &security.sasl {
            conn.authenticate(credentials).await?;
        }
        conn.negotiate().await?;
        Ok(conn)
    }

    /// The broker as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The default request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// SaslHandshake and SaslAuthenticate (KIP-152), before any other
    /// request; `Err` names the user and mechanism, never the password.
    async fn authenticate(&mut self, credentials: &ClientCredentials) -> Result<(), String> {
        let address = self.address.clone();
        let failed = |why: String| format!("{address}: {why}");
        let response = self
            .call(
                sasl::CLIENT_HANDSHAKE_VERSION,
                &sasl::handshake_request(credentials),
            )
            .await?;
        sasl::check_handshake(credentials, &response).map_err(failed)?;
        let mut session = ClientSession::new(credentials.clone());
        let mut token = session
            .first()
            .map_err(|why| failed(sasl::client_failure(credentials, &why)))?;
        for _ in 0..sasl::CLIENT_ROUNDS_MAX {
            let response = self
                .call(
                    sasl::CLIENT_AUTHENTICATE_VERSION,
                    &sasl::authenticate_request(token),
                )
                .await?;
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

    async fn negotiate(&mut self) -> Result<(), String> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("ringlog-bench"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response = self
            .call(client::API_VERSIONS_FIRST_VERSION, &request)
            .await?;
        if response.error_code == ResponseError::UnsupportedVersion.code() {
            response = self.call(0, &request).await?;
        }
        if response.error_code != 0 {
            return Err(format!(
                "{}: ApiVersions: {}",
                self.address,
                client::error_code_name(response.error_code)
            ));
        }
        if response.api_keys.is_empty() {
            return Err(format!(
                "{}: the ApiVersions answer lists no APIs",
                self.address
            ));
        }
        self.apis = response.api_keys;
        Ok(())
    }

    /// The version to send `R` at.
    ///
    /// # Errors
    ///
    /// The broker and the bench have none in common.
    pub fn version<R: Request>(&self) -> Result<i16, String> {
        client::pick_version(
            &self.apis,
            client::api_key::<R>(),
            wire::client_range::<R>(),
            wire::WHO,
        )
        .map_err(|why| format!("{}: {why}", self.address))
    }

    /// Whether the broker lists `R` at all.
    pub fn supports<R: Request>(&self) -> bool {
        self.version::<R>().is_ok()
    }

    /// Writes `request` at `version`; returns its correlation id. The
    /// write must finish by `deadline`.
    ///
    /// # Errors
    ///
    /// The request does not encode, the write failed or timed out; the
    /// connection is unusable after a write error.
    pub async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        deadline: Instant,
    ) -> Result<i32, String> {
        let correlation_id = self.correlation_id;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let written = match client::encode_request(
            &mut out,
            wire::CLIENT_ID,
            version,
            correlation_id,
            request,
        ) {
            Ok(()) => self.write(&out, deadline).await,
            Err(e) => Err(e),
        };
        self.out = out;
        written.map(|()| correlation_id)
    }

    async fn write(&mut self, frame: &[u8], deadline: Instant) -> Result<(), String> {
        let address = &self.address;
        let timeout_ms = self.timeout.as_millis();
        let writer = &mut self.writer;
        futures_lite::future::or(
            async {
                // The flush sends what TLS holds back; a no-op on a socket.
                let written = match writer.write_all(frame).await {
                    Ok(()) => writer.flush().await,
                    Err(e) => Err(e),
                };
                written.map_err(|e| format!("{address}: write failed: {e}"))
            },
            async {
                sleep_until(deadline).await;
                Err(format!(
                    "{address}: request not written within {timeout_ms} ms (the broker stopped reading)"
                ))
            },
        )
        .await
    }

    /// The next answer, or [`Recv::TimedOut`] at `deadline`.
    pub async fn recv(&self, deadline: Instant) -> Recv {
        futures_lite::future::or(
            async {
                match self.responses.recv().await {
                    Some(Ok(frame)) => Recv::Frame(frame),
                    Some(Err(why)) => Recv::Closed(format!("{}: {why}", self.address)),
                    None => Recv::Closed(format!("{}: connection reader ended", self.address)),
                }
            },
            async {
                sleep_until(deadline).await;
                Recv::TimedOut
            },
        )
        .await
    }

    /// Sends `request` and waits for its answer, within the connection's
    /// timeout. Only for connections with nothing else in flight.
    ///
    /// # Errors
    ///
    /// Write or read failure, timeout, or an answer that does not decode.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, String> {
        let deadline = Instant::now() + self.timeout;
        let correlation_id = self.send(version, request, deadline).await?;
        match self.recv(deadline).await {
            Recv::Frame(frame) => client::decode_response::<R>(version, correlation_id, frame)
                .map_err(|why| format!("{}: {why}", self.address)),
            Recv::TimedOut => Err(format!(
                "{}: no answer to {:?} within {} ms",
                self.address,
                client::api_key::<R>(),
                self.timeout.as_millis()
            )),
            Recv::Closed(why) => Err(why),
        }
    }
}
