//! The Kafka front end: accepts connections, cuts frames, runs each
//! request's handler and writes the answers back in request order.
//!
//! Layer: router, the one way into the handlers (see the crate docs). May
//! import the handlers and every layer below them. Requests enter the
//! handlers here twice: from a Kafka connection, and, over the mesh, the
//! parts other shards' routers forward to this shard's group coordinator or
//! controller ([`Services`], the runtime's [`Service`] of each shard).
//!
//! Why a reader and a writer per connection joined by a bounded queue of
//! tasks: Kafka clients pipeline (librdkafka keeps up to 1,000,000 requests
//! in flight per connection, Java 5), and answers must go back in request
//! order. The reader spawns a task per request as soon as its frame is in
//! and queues the task handle; the writer awaits the handles in order. So
//! a slow acks=all produce does not stop the next request from being
//! parsed and routed, and the queue bound ([`IN_FLIGHT_REQUESTS_MAX`])
//! pushes back on a client that sends faster than we answer.
//!
//! What closes a connection (logged at WARN with the reason, never
//! affecting other connections): a size prefix that is not positive or
//! exceeds `--max-request-bytes` (before anything is allocated for it), a
//! frame too short for a header, an unknown API key, an unsupported
//! version of any API but ApiVersions (which gets the v0
//! UNSUPPORTED_VERSION answer instead, as KIP-511 requires), and a header
//! or body that does not decode. Answers to earlier requests on the
//! connection are written first.
//!
//! TLS (`--security-protocol SSL`) sits under all of this: the accepted
//! socket is handed to rustls (futures-rustls over glommio's socket) and
//! the connection code runs, unchanged, on the TLS stream instead. It is
//! generic over the stream, so a PLAINTEXT connection is the same code on
//! the bare socket with no TLS layer and no dynamic dispatch. The handshake
//! is bounded by [`TLS_HANDSHAKE_TIMEOUT_MS`] so a client that connects
//! and says nothing holds nothing for long; anything that is not a TLS
//! handshake (a plaintext Kafka client on the TLS port, garbage) fails it,
//! closing the connection with a WARN naming the peer before a single
//! request is read. With `--tls-client-ca` rustls requires and verifies a
//! client certificate, and the connection's principal is its subject.
//!
//! SASL (`--security-protocol SASL_PLAINTEXT` or `SASL_SSL`) is a phase
//! between the stream and the pipelined serving: the connection first runs
//! [`authenticate`], one request at a time, answering only ApiVersions,
//! SaslHandshake and SaslAuthenticate (KIP-152; after a v0 handshake the
//! tokens come as raw size-prefixed frames, as Kafka's legacy clients send
//! them). Anything else before authentication closes the connection with a
//! WARN naming the peer; so does a failed authentication, after its
//! SASL_AUTHENTICATION_FAILED answer (the WARN names the user and the
//! cause, never a password). Until then frames are limited to
//! [`PRE_AUTH_FRAME_BYTES_MAX`] and the whole phase to
//! [`SASL_AUTHENTICATION_TIMEOUT_MS`], so an anonymous client holds little
//! for little time. Why sequential: nothing is pipelined before
//! authentication, and a phase that owns the stream needs no state shared
//! with the request tasks. Once authenticated, the principal is
//! `User:<name>` and the bytes already read go on to the pipelined code.
//! Re-authentication (KIP-368) is not offered: the session lifetime is 0,
//! so clients never start one.

use crate::authorizer::Identity;
use crate::controller::Controller;
use crate::dispatch_order::{DispatchOrder, Turn};
use crate::group::Coordinator;
use crate::handlers::{self, Handled};
use crate::message::{AdminReply, ServiceRequest};
use crate::runtime::{Service, ShardClient};
use bytes::Bytes;
use futures_lite::future::BoxedLocal;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::Task;
use kafka_protocol::messages::{RequestKind, ResponseKind, SaslAuthenticateRequest};
use ringlog_protocol::frame::FrameBuffer;
use ringlog_protocol::sasl::{Mechanism, ServerSession};
use ringlog_protocol::{encode_response, parse_request, ApiKey, RequestError};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests read but not yet answered, per connection.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 256;
/// Connections one router accepts at once; more are closed at accept.
pub const CONNECTIONS_MAX: usize = 8192;
/// Read buffer growth step (reads get at least half of it).
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Answers gathered into one write stop growing at this size (a single
/// larger answer is written as it is).
pub const WRITE_COALESCE_BYTES_MAX: usize = 64 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_RETRY_MS: u64 = 100;
/// Time a client has to complete the TLS handshake after connecting.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Time a client on a SASL listener has to authenticate after connecting
/// (after the TLS handshake with SASL_SSL).
pub const SASL_AUTHENTICATION_TIMEOUT_MS: u64 = 10_000;
/// Largest frame accepted before authentication: ApiVersions and SASL
/// tokens are small (Kafka's own pre-authentication limit is 512 KiB).
pub const PRE_AUTH_FRAME_BYTES_MAX: usize = 64 * 1024;
/// Requests one connection may send before it authenticates (ApiVersions
/// probes and the tokens of one exchange need a handful).
pub const PRE_AUTH_REQUESTS_MAX: usize = 16;
/// Kafka's principal of a connection that authenticated no one: PLAINTEXT,
/// or SSL without a client certificate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Who is at the other end of a connection.
struct Peer {
    /// The client's address, for log lines.
    addr: String,
    /// The client's host as Kafka shows a member's (DescribeGroups): `/<ip>`.
    host: Rc<str>,
    /// Kafka's principal: `User:<name>` of a client that authenticated
    /// with SASL, `User:<certificate subject>` for a client that presented
    /// a verified certificate, else [`ANONYMOUS`].
    principal: Rc<str>,
}

/// What a request task produced.
enum Reply {
    Respond(Bytes),
    Nothing,
    Close(String),
}

/// Binds the Kafka listener on this shard and serves connections in the
/// background. With `--router-cores all`, every shard binds the same
/// address; glommio sets SO_REUSEPORT, so the kernel spreads connections.
pub fn listen(client: Rc<ShardClient>) -> std::io::Result<()> {
    let config = client.local().config.clone();
    let listener = TcpListener::bind(config.listen)?;
    tracing::info!(
        shard = client.local().id,
        listen = %listener.local_addr()?,
        "accepting Kafka connections"
    );
    glommio::spawn_local(accept(client, listener)).detach();
    Ok(())
}

/// What the handlers work on besides the runtime, one per shard: the
/// shard's group coordinator and, on shard 0 once it has started, the
/// controller. The runtime hands it the requests that other shards' routers
/// forward to this shard's handlers.
pub struct Services {
    client: Weak<ShardClient>,
    groups: Rc<Coordinator>,
    controller: RefCell<Option<Rc<Controller>>>,
}

impl Services {
    /// This shard's services, with the group coordinator ticking (the
    /// function [`crate::runtime::run_pool`] makes each shard's with).
    pub fn start(client: &Rc<ShardClient>) -> Rc<Services> {
        let groups = Rc::new(Coordinator::default());
        groups.start_ticking(client);
        Rc::new(Services {
            client: Rc::downgrade(client),
            groups,
            controller: RefCell::new(None),
        })
    }

    /// Serves the controller's requests from now on (`None`: no longer).
    pub fn set_controller(&self, controller: Option<Rc<Controller>>) {
        *self.controller.borrow_mut() = controller;
    }

    fn controller(&self) -> Option<Rc<Controller>> {
        let controller = self.controller.borrow().clone();
        if controller.is_none() {
            tracing::error!("controller request sent to a shard that is not the controller");
        }
        controller
    }
}

impl Service for Services {
    fn handle(self: Rc<Self>, request: ServiceRequest) -> BoxedLocal<()> {
        Box::pin(async move {
            let Some(client) = self.client.upgrade() else {
                return; // the pool is ending
            };
            match request {
                ServiceRequest::Controller { request, reply } => {
                    if let Some(controller) = self.controller() {
                        let _ = reply.send(controller.handle(request).await);
                    }
                }
                ServiceRequest::Admin {
                    version,
                    body,
                    reply,
                } => {
                    if let Some(controller) = self.controller() {
                        let (body, applied_offset) =
                            handlers::admin(&controller, version, *body).await;
                        let _ = reply.send(AdminReply {
                            body,
                            applied_offset,
                        });
                    }
                }
                ServiceRequest::Group {
                    version,
                    body,
                    client: sender,
                    reply,
                } => {
                    let answer = handlers::group(&client, &self.groups, version, *body, &sender);
                    let _ = reply.send(answer.await);
                }
                ServiceRequest::StartRouter => {
                    if let Err(e) = listen(client.clone()) {
                        let shard = client.local().id;
                        tracing::error!(shard, error = %e, "router did not start");
                    }
                }
            }
        })
    }
}

async fn accept(client: Rc<ShardClient>, listener: TcpListener) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if open.get() >= CONNECTIONS_MAX {
                    tracing::warn!(
                        limit = CONNECTIONS_MAX,
                        "closing connection: too many open connections"
                    );
                    continue;
                }
                open.set(open.get() + 1);
                let (client, open) = (client.clone(), open.clone());
                glommio::spawn_local(async move {
                    connection(client, stream).await;
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
            }
        }
    }
}

async fn connection(client: Rc<ShardClient>, stream: TcpStream) {
    let peer_addr = stream.peer_addr().ok();
    let addr = peer_addr.map_or_else(|| "unknown".to_string(), |a| a.to_string());
    // Kafka shows a member's host as "/<ip>" (DescribeGroups).
    let host: Rc<str> =
        peer_addr.map_or_else(|| "/unknown".into(), |a| format!("/{}", a.ip()).into());
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(peer = %addr, error = %e, "TCP_NODELAY not set");
    }
    let tls = client.local().config.tls.clone();
    match tls {
        None => {
            let peer = Peer {
                addr,
                host,
                principal: ANONYMOUS.into(),
            };
            serve(client, stream, peer).await;
        }
        Some(tls) => {
            if let Some((stream, principal)) = tls_handshake(tls, stream, &addr).await {
                let peer = Peer {
                    addr,
                    host,
                    principal,
                };
                serve(client, stream, peer).await;
            }
        }
    }
}

/// The TLS handshake of an accepted connection, within
/// [`TLS_HANDSHAKE_TIMEOUT_MS`], and the principal it authenticated;
/// `None` (the connection is dropped, so closed) when it fails.
async fn tls_handshake(
    config: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    peer: &str,
) -> Option<(futures_rustls::server::TlsStream<TcpStream>, Rc<str>)> {
    let handshake = futures_rustls::TlsAcceptor::from(config).accept(stream);
    let timeout = async {
        glommio::timer::sleep(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no TLS handshake within {TLS_HANDSHAKE_TIMEOUT_MS} ms"),
        ))
    };
    let stream = match futures_lite::future::or(handshake, timeout).await {
        Ok(stream) => stream,
        // The client left before finishing the handshake; most often a
        // port probe (a health check connects and closes), which is no
        // reason for a WARN.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, reason = %e, "client closed during the TLS handshake");
            return None;
        }
        Err(e) => {
            tracing::warn!(%peer, reason = %e, "closing connection: TLS handshake failed");
            return None;
        }
    };
    let principal: Rc<str> = match stream.get_ref().1.peer_certificates() {
        None => ANONYMOUS.into(),
        Some(chain) => match chain
            .first()
            .and_then(|c| ringlog_protocol::tls::principal(c))
        {
            Some(principal) => principal.into(),
            None => {
                // rustls verified the certificate, so this does not happen;
                // if it did, the client must not pass for anonymous.
                tracing::warn!(%peer, "closing connection: the client certificate's subject does not parse");
                return None;
            }
        },
    };
    tracing::debug!(%peer, %principal, "TLS connection");
    Some((stream, principal))
}

/// Serves Kafka requests on `stream`, a TCP socket or a TLS stream over
/// one, until either side closes it.
async fn serve<S>(client: Rc<ShardClient>, mut stream: S, mut peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max_request_bytes = client.local().config.max_request_bytes;
    let mut frames = FrameBuffer::new(max_request_bytes, READ_CHUNK_BYTES);
    if let Some(mechanisms) = client.local().config.sasl.clone() {
        frames.set_max_frame_bytes(PRE_AUTH_FRAME_BYTES_MAX.min(max_request_bytes));
        let phase = authenticate(&client, &mut stream, &mut frames, &peer, &mechanisms);
        let timeout = async {
            glommio::timer::sleep(Duration::from_millis(SASL_AUTHENTICATION_TIMEOUT_MS)).await;
            Err(format!(
                "not authenticated within {SASL_AUTHENTICATION_TIMEOUT_MS} ms"
            ))
        };
        match futures_lite::future::or(phase, timeout).await {
            Ok(user) => {
                tracing::debug!(peer = %peer.addr, %user, "SASL authenticated");
                peer.principal = format!("User:{user}").into();
            }
            // Most often a port probe (a health check connects and
            // closes), which is no reason for a WARN.
            Err(reason) if reason == CLIENT_LEFT => {
                tracing::debug!(peer = %peer.addr, "client closed before authenticating");
                return;
            }
            Err(reason) => {
                tracing::warn!(peer = %peer.addr, %reason, "closing connection: not authenticated");
                return;
            }
        }
        frames.set_max_frame_bytes(max_request_bytes);
    }
    let (reader, writer) = futures_lite::io::split(stream);
    let (queue, answers) = local_channel::new_bounded(IN_FLIGHT_REQUESTS_MAX);
    let read = async {
        read_requests(&client, reader, frames, queue, &peer).await;
        // Let the writer drain what is queued; it ends the connection.
        std::future::pending::<()>().await;
    };
    futures_lite::future::or(write_responses(writer, answers, &peer), read).await;
}

async fn read_requests(
    client: &Rc<ShardClient>,
    mut reader: impl AsyncRead + Unpin,
    mut frames: FrameBuffer,
    queue: LocalSender<Task<Reply>>,
    peer: &Peer,
) {
    let order = Rc::new(DispatchOrder::default());
    let identity = Rc::new(Identity {
        principal: peer.principal.clone(),
        host: peer.host.clone(),
    });
    loop {
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => {
                    let turn = order.take();
                    let task = glommio::spawn_local(handle_frame(
                        client.clone(),
                        frame,
                        identity.clone(),
                        turn,
                    ));
                    if queue.send(task).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let reason = e.to_string();
                    let _ = queue
                        .send(glommio::spawn_local(async move { Reply::Close(reason) }))
                        .await;
                    return;
                }
            }
        }
        match reader.read(frames.room()).await {
            Ok(0) => {
                if frames.buffered() > 0 {
                    tracing::debug!(peer = %peer.addr, buffered = frames.buffered(), "client closed mid-request");
                }
                return;
            }
            Ok(n) => frames.filled(n),
            Err(e) => {
                tracing::debug!(peer = %peer.addr, error = %e, "read failed");
                return;
            }
        }
    }
}

/// The SASL phase of a connection: answers ApiVersions, SaslHandshake
/// and SaslAuthenticate one at a time until the client authenticated, and
/// returns its user name; `Err` is why the connection closes (a failed
/// authentication was answered first and is logged here, with the user).
async fn authenticate<S>(
    client: &Rc<ShardClient>,
    stream: &mut S,
    frames: &mut FrameBuffer,
    peer: &Peer,
    mechanisms: &[Mechanism],
) -> Result<String, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session: Option<ServerSession> = None;
    // After a v0 handshake the tokens come as bare frames (no header).
    let mut raw_tokens = false;
    for _ in 0..PRE_AUTH_REQUESTS_MAX {
        let frame = next_frame(stream, frames).await?;
        if raw_tokens {
            let Some(session) = session.as_mut() else {
                return Err("SASL token without a handshake".into());
            };
            let request = SaslAuthenticateRequest::default().with_auth_bytes(frame);
            let (response, outcome) =
                handlers::sasl_authenticate::handle(session, &client.local().meta, &request);
            let done = sasl_outcome(outcome, session.mechanism(), peer)?;
            let mut answer = bytes::BytesMut::new();
            ringlog_protocol::frame::write_frame_header(&mut answer, response.auth_bytes.len())
                .map_err(|e| e.to_string())?;
            answer.extend_from_slice(&response.auth_bytes);
            write_answer(stream, &answer).await?;
            if let Some(user) = done {
                return Ok(user);
            }
            continue;
        }
        let request = match parse(frame) {
            Parsed::Request(request) => *request,
            Parsed::Answer(answer) => {
                write_answer(stream, &answer).await?;
                continue;
            }
            Parsed::Close(reason) => return Err(reason),
        };
        let (key, version, correlation_id) = (
            request.api_key,
            request.api_version,
            request.correlation_id(),
        );
        let (body, done) = match request.body {
            RequestKind::ApiVersions(_) => (
                ResponseKind::ApiVersions(ringlog_protocol::api_versions_response(version).1),
                Ok(None),
            ),
            RequestKind::SaslHandshake(body) if session.is_none() => {
                let (response, chosen) = handlers::sasl_handshake::handle(mechanisms, &body);
                let done = match chosen {
                    Some(mechanism) => {
                        session = Some(ServerSession::new(mechanism));
                        raw_tokens = version == 0;
                        Ok(None)
                    }
                    None => Err(format!(
                        "SASL mechanism {:?} is not enabled",
                        body.mechanism.as_str()
                    )),
                };
                (ResponseKind::SaslHandshake(response), done)
            }
            RequestKind::SaslAuthenticate(body) => match session.as_mut() {
                Some(session) => {
                    let (response, outcome) =
                        handlers::sasl_authenticate::handle(session, &client.local().meta, &body);
                    (
                        ResponseKind::SaslAuthenticate(response),
                        sasl_outcome(outcome, session.mechanism(), peer),
                    )
                }
                None => (
                    ResponseKind::SaslAuthenticate(handlers::sasl_authenticate::refused()),
                    Err("SaslAuthenticate before SaslHandshake".into()),
                ),
            },
            RequestKind::SaslHandshake(_) => (
                ResponseKind::SaslHandshake(handlers::sasl_handshake::refused()),
                Err("a second SaslHandshake".into()),
            ),
            _ => return Err(format!("{key:?} before authentication")),
        };
        let answer = answer(correlation_id, key, version, &body)?;
        write_answer(stream, &answer).await?;
        if let Some(user) = done? {
            return Ok(user);
        }
    }
    Err(format!(
        "{PRE_AUTH_REQUESTS_MAX} requests without authenticating"
    ))
}

/// The user of a finished exchange (`None`: more tokens to come); a
/// failure is logged (peer, user, mechanism, cause; never a password) and
/// closes the connection after its answer.
fn sasl_outcome(
    outcome: handlers::sasl_authenticate::Outcome,
    mechanism: Mechanism,
    peer: &Peer,
) -> Result<Option<String>, String> {
    use handlers::sasl_authenticate::Outcome;
    match outcome {
        Outcome::Continue => Ok(None),
        Outcome::Authenticated(user) => Ok(Some(user)),
        Outcome::Failed { user, reason } => {
            tracing::warn!(
                peer = %peer.addr,
                // Quoted and escaped: the client chose it.
                user = ?user.as_deref().unwrap_or(""),
                %mechanism,
                %reason,
                "SASL authentication failed"
            );
            Err("SASL authentication failed".into())
        }
    }
}

/// Why the authentication phase ended when the client closed the
/// connection.
const CLIENT_LEFT: &str = "client closed the connection";

/// The next whole frame of the authentication phase, reading as needed.
async fn next_frame<S>(stream: &mut S, frames: &mut FrameBuffer) -> Result<Bytes, String>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(frame) = frames.next_frame().map_err(|e| e.to_string())? {
            return Ok(frame);
        }
        match stream.read(frames.room()).await {
            Ok(0) => return Err(CLIENT_LEFT.into()),
            Ok(n) => frames.filled(n),
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

async fn write_answer(stream: &mut (impl AsyncWrite + Unpin), answer: &[u8]) -> Result<(), String> {
    stream
        .write_all(answer)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("write failed: {e}"))
}

/// Writes the answers in request order. Answers already finished behind
/// the one just awaited go out in the same write (up to
/// [`WRITE_COALESCE_BYTES_MAX`]): a pipelining client then costs one send
/// per burst of answers instead of one per answer, and on loopback the
/// kernel's TCP path per send, not the handlers, is where a small
/// request's time goes.
async fn write_responses(
    mut writer: impl AsyncWrite + Unpin,
    answers: LocalReceiver<Task<Reply>>,
    peer: &Peer,
) {
    let mut ready = ReadyAnswers::default();
    let mut waiting: Option<Task<Reply>> = None;
    loop {
        let task = match waiting.take() {
            Some(task) => task,
            None => match answers.recv().await {
                Some(task) => task,
                None => break,
            },
        };
        let mut reply = task.await;
        let close = loop {
            match reply {
                Reply::Respond(bytes) => ready.push(bytes),
                Reply::Nothing => {}
                Reply::Close(reason) => break Some(reason),
            }
            // At most one queue's worth: the loop does not yield, so the
            // reader cannot add to the queue meanwhile.
            if ready.bytes >= WRITE_COALESCE_BYTES_MAX
                || ready.answers.len() >= IN_FLIGHT_REQUESTS_MAX
            {
                break None;
            }
            // The next answer joins this write only if it is already
            // queued and finished; otherwise it is awaited after the write.
            let Some(Some(mut next)) = futures_lite::future::poll_once(answers.recv()).await else {
                break None;
            };
            match futures_lite::future::poll_once(&mut next).await {
                Some(next_reply) => reply = next_reply,
                None => {
                    waiting = Some(next);
                    break None;
                }
            }
        };
        if let Err(e) = ready.write(&mut writer).await {
            tracing::debug!(peer = %peer.addr, error = %e, "write failed");
            return;
        }
        if let Some(reason) = close {
            tracing::warn!(
                peer = %peer.addr,
                principal = %peer.principal,
                %reason,
                "closing connection"
            );
            return;
        }
    }
    let _ = writer.flush().await;
}

/// Encoded answers waiting for one write.
#[derive(Default)]
struct ReadyAnswers {
    answers: Vec<Bytes>,
    bytes: usize,
}

impl ReadyAnswers {
    fn push(&mut self, answer: Bytes) {
        self.bytes += answer.len();
        self.answers.push(answer);
    }

    /// Writes what is ready: each run of two or more answers smaller than
    /// [`WRITE_COALESCE_BYTES_MAX`] joined into one write; a lone answer,
    /// or one of the bound or more (a large Fetch), as it is, not copied.
    /// A joined run stays below twice the bound: answers are added only
    /// while the total is under it, each smaller than it. Ends with a
    /// flush: a TLS stream holds the last record until flushed (on a bare
    /// socket the flush is a no-op).
    async fn write(&mut self, writer: &mut (impl AsyncWrite + Unpin)) -> std::io::Result<()> {
        let answers = std::mem::take(&mut self.answers);
        self.bytes = 0;
        let mut next = 0;
        while next < answers.len() {
            let run = answers[next..]
                .iter()
                .take_while(|a| a.len() < WRITE_COALESCE_BYTES_MAX)
                .count();
            if run < 2 {
                writer.write_all(&answers[next]).await?;
                next += 1;
                continue;
            }
            let joined = answers[next..next + run].concat();
            debug_assert!(joined.len() < 2 * WRITE_COALESCE_BYTES_MAX);
            writer.write_all(&joined).await?;
            next += run;
        }
        self.answers = answers;
        self.answers.clear();
        writer.flush().await
    }
}

async fn handle_frame(
    client: Rc<ShardClient>,
    frame: Bytes,
    identity: Rc<Identity>,
    turn: Turn,
) -> Reply {
    let started = Instant::now();
    let request = match parse(frame) {
        Parsed::Request(request) => *request,
        Parsed::Answer(answer) => return Reply::Respond(answer),
        Parsed::Close(reason) => return Reply::Close(reason),
    };
    let (key, version, correlation_id) = (
        request.api_key,
        request.api_version,
        request.correlation_id(),
    );
    let reply = match handlers::dispatch(&client, request, &identity, turn).await {
        Ok(Handled::Respond(body)) => encode(correlation_id, key, version, &body),
        Ok(Handled::Silent) => Reply::Nothing,
        Err(reason) => Reply::Close(reason),
    };
    client
        .local()
        .config
        .metrics
        .request_done(key, started.elapsed());
    reply
}

fn encode(correlation_id: i32, key: ApiKey, version: i16, body: &ResponseKind) -> Reply {
    answer(correlation_id, key, version, body).map_or_else(Reply::Close, Reply::Respond)
}

/// An encoded answer; `Err` (logged) is the reason to close the connection.
fn answer(
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<Bytes, String> {
    encode_response(correlation_id, key, version, body).map_err(|e| {
        tracing::error!(api = ?key, version, error = %e, "response does not encode");
        format!("internal error encoding the {key:?} v{version} response: {e}")
    })
}

/// What a frame is to the connection.
enum Parsed {
    /// A request to handle.
    Request(Box<ringlog_protocol::Request>),
    /// An answer already made: the v0 UNSUPPORTED_VERSION answer to an
    /// ApiVersions request of a version this broker does not know
    /// (KIP-511).
    Answer(Bytes),
    /// Why to close the connection.
    Close(String),
}

fn parse(frame: Bytes) -> Parsed {
    match parse_request(frame) {
        Ok(request) => Parsed::Request(Box::new(request)),
        Err(RequestError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            api_version,
            correlation_id,
        }) => {
            let (version, body) = ringlog_protocol::api_versions_response(api_version);
            match answer(
                correlation_id,
                ApiKey::ApiVersions,
                version,
                &ResponseKind::ApiVersions(body),
            ) {
                Ok(bytes) => Parsed::Answer(bytes),
                Err(reason) => Parsed::Close(reason),
            }
        }
        Err(e) => Parsed::Close(e.to_string()),
    }
}
