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
//! Limits (see [`crate::limits`] for why each is where it is): a
//! connection over `--max-connections` (counted over every router shard)
//! or over `--max-connections-per-ip` from its IP is closed as soon as it
//! is accepted, with a WARN naming the peer and the limit. A connection
//! with no request in flight that received and sent nothing for
//! `--connections-max-idle-ms` is closed with an INFO line; a request in
//! flight (a long-polling Fetch, a frame waiting for request memory)
//! keeps it open, and the TLS handshake and the SASL phase keep their own
//! timeouts, since the idle clock starts after them. Request memory is
//! bounded per shard: the reader takes a frame's bytes from the shard's
//! [`RequestMemory`] as soon as its size prefix is in, before it reads the
//! body, and the writer gives them back once the answer is written. A
//! shard at `--request-memory-bytes-max` therefore stops reading its
//! sockets until answers go out: per shard because a shard's requests live
//! in its memory and only its executor serves them, so its budget needs
//! no cross-core coordination and a busy shard slows its own clients only.
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
//! Re-authentication (KIP-368): with `--connections-max-reauth-ms` the
//! successful SaslAuthenticate (v1+) tells the client its session
//! lifetime; before it ends the client sends SaslHandshake (v1+) and
//! SaslAuthenticate again on the same connection, between its other
//! requests, which go on meanwhile ([`reauthenticate`]). The new session
//! must be the same user's. A request other than those two after the
//! session expired closes the connection with a WARN, as does a failed
//! re-authentication after its answer.

use crate::authorizer::Identity;
use crate::controller::Controller;
use crate::dispatch_order::{DispatchOrder, Turn};
use crate::group::Coordinator;
use crate::handlers::{self, Handled};
use crate::limits::{MemoryPermit, Refusal, RequestMemory};
use crate::message::{AdminReply, ServiceRequest};
use crate::quota::{produce_client_id, quota_user, set_throttle_time, Usage};
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
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests read but not yet answered, per connection.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 256;
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

/// What the authentication phase produced.
struct Authenticated {
    /// The user.
    user: String,
    /// Whether the client was told a session lifetime (SaslAuthenticate
    /// v1+ with `--connections-max-reauth-ms` set), so must re-authenticate.
    expires: bool,
}

/// The SASL session of an authenticated connection: who, until when, and
/// a re-authentication in progress (KIP-368).
struct SaslSession {
    user: String,
    mechanisms: Vec<Mechanism>,
    /// How long each (re-)authentication lasts; `None`: forever.
    lifetime: Option<Duration>,
    expires_at: Cell<Option<Instant>>,
    /// The exchange of a re-authentication, between its handshake and its
    /// last token.
    exchange: RefCell<Option<ServerSession>>,
}

impl SaslSession {
    fn new(user: String, mechanisms: Vec<Mechanism>, lifetime: Option<Duration>) -> SaslSession {
        SaslSession {
            user,
            mechanisms,
            lifetime,
            expires_at: Cell::new(lifetime.map(|lifetime| Instant::now() + lifetime)),
            exchange: RefCell::new(None),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires_at.get().is_some_and(|at| at <= now)
    }
}

/// What the request tasks of one connection share.
struct Conn {
    /// The client's address, for log lines.
    addr: Rc<str>,
    /// The SASL session on a SASL listener.
    session: Option<SaslSession>,
    /// Who the client is, as the handlers and the authorizer need it.
    identity: Identity,
    /// The user client quotas match: the principal's name.
    quota_user: Rc<str>,
    /// Until when the connection is muted (a client over its quota,
    /// KIP-219): no request is read before then.
    muted_until: Cell<Option<Instant>>,
}

impl Conn {
    /// Mutes the connection for `wait` from now (a longer mute already
    /// set stays).
    fn mute_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        if self.muted_until.get().is_none_or(|muted| muted < until) {
            self.muted_until.set(Some(until));
        }
    }

    /// Whether a mute is set (it may have ended already).
    fn is_muted(&self) -> bool {
        self.muted_until.get().is_some()
    }

    /// Returns once the connection is not muted. A mute set while waiting
    /// (a request in flight finished over the quota) is waited out too;
    /// each comes from one such request, so the loop ends.
    async fn unmuted(&self) {
        for _ in 0..=IN_FLIGHT_REQUESTS_MAX {
            let Some(until) = self.muted_until.get() else {
                return;
            };
            let now = Instant::now();
            if until <= now {
                self.muted_until.set(None);
                return;
            }
            glommio::timer::sleep(until - now).await;
        }
    }
}

/// What a request task produced.
enum Reply {
    Respond(Bytes),
    /// Answer, then close the connection for this reason (a failed
    /// re-authentication).
    RespondThenClose(Bytes, String),
    Nothing,
    Close(String),
}

/// Binds the Kafka listener on this shard and serves connections in the
/// background. With `--router-cores all`, every shard binds the same
/// address; glommio sets SO_REUSEPORT, so the kernel spreads connections.
pub fn listen(client: Rc<ShardClient>) -> std::io::Result<()> {
    let config = client.local().config.clone();
    assert!(
        config.request_memory_bytes_max >= config.max_request_bytes,
        "the request memory bound must hold the largest request"
    );
    let shard = client.local().id;
    let memory = RequestMemory::new(
        config.request_memory_bytes_max,
        Some((config.metrics.clone(), shard)),
    );
    let listener = TcpListener::bind(config.listen)?;
    tracing::info!(
        shard,
        listen = %listener.local_addr()?,
        "accepting Kafka connections"
    );
    glommio::spawn_local(accept(client, listener, memory)).detach();
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

/// Accepts connections, each counted against `--max-connections` and
/// `--max-connections-per-ip` from accept to close; one over a limit is
/// closed at once (dropping the socket closes it).
async fn accept(client: Rc<ShardClient>, listener: TcpListener, memory: Rc<RequestMemory>) {
    let limits = client.local().config.connections.clone();
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let peer = match stream.peer_addr() {
                    Ok(peer) => peer,
                    Err(e) => {
                        tracing::debug!(error = %e, "closing connection: its peer address is unknown (the client left)");
                        continue;
                    }
                };
                let slot = match limits.open(peer.ip()) {
                    Ok(slot) => slot,
                    Err(Refusal::Total { limit }) => {
                        tracing::warn!(
                            %peer,
                            limit,
                            "closing connection: the broker has --max-connections open connections"
                        );
                        continue;
                    }
                    Err(Refusal::PerIp { limit }) => {
                        tracing::warn!(
                            %peer,
                            ip = %peer.ip(),
                            limit,
                            "closing connection: its IP has --max-connections-per-ip open connections"
                        );
                        continue;
                    }
                };
                let metrics = client.local().config.metrics.clone();
                metrics.connection_opened();
                let (client, memory) = (client.clone(), memory.clone());
                glommio::spawn_local(async move {
                    connection(client, stream, peer, memory).await;
                    drop(slot);
                    metrics.connection_closed();
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

async fn connection(
    client: Rc<ShardClient>,
    stream: TcpStream,
    peer_addr: SocketAddr,
    memory: Rc<RequestMemory>,
) {
    let addr = peer_addr.to_string();
    // Kafka shows a member's host as "/<ip>" (DescribeGroups).
    let host: Rc<str> = format!("/{}", peer_addr.ip()).into();
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
            serve(client, stream, peer, memory).await;
        }
        Some(tls) => {
            if let Some((stream, principal)) = tls_handshake(tls, stream, &addr).await {
                let peer = Peer {
                    addr,
                    host,
                    principal,
                };
                serve(client, stream, peer, memory).await;
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
/// one, until either side closes it or it stays idle for
/// `--connections-max-idle-ms`.
async fn serve<S>(client: Rc<ShardClient>, mut stream: S, mut peer: Peer, memory: Rc<RequestMemory>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max_request_bytes = client.local().config.max_request_bytes;
    let mut frames = FrameBuffer::new(max_request_bytes, READ_CHUNK_BYTES);
    let mut session = None;
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
            Ok(Authenticated { user, expires }) => {
                tracing::debug!(peer = %peer.addr, %user, "SASL authenticated");
                peer.principal = format!("User:{user}").into();
                session = Some(SaslSession::new(
                    user,
                    mechanisms,
                    expires.then(|| Duration::from_millis(client.local().config.reauth_ms)),
                ));
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
    let idle_ms = client.local().config.connections_max_idle_ms;
    let activity = Rc::new(Activity::new());
    let (reader, writer) = futures_lite::io::split(stream);
    let (queue, answers) = local_channel::new_bounded(IN_FLIGHT_REQUESTS_MAX);
    let conn = Rc::new(Conn {
        addr: peer.addr.as_str().into(),
        session,
        identity: Identity {
            principal: peer.principal.clone(),
            host: peer.host.clone(),
        },
        quota_user: quota_user(&peer.principal).into(),
        muted_until: Cell::new(None),
    });
    let read = async {
        read_requests(&client, reader, frames, queue, &memory, &activity, &conn).await;
        // Let the writer drain what is queued; it ends the connection.
        std::future::pending::<()>().await;
    };
    let served = futures_lite::future::or(write_responses(writer, answers, &peer, &activity), read);
    let idle = async {
        activity.idle(Duration::from_millis(idle_ms)).await;
        tracing::info!(
            peer = %peer.addr,
            principal = %peer.principal,
            idle_ms,
            "closing idle connection"
        );
    };
    futures_lite::future::or(served, idle).await;
}

/// What tells an idle connection from a busy one: when it last received
/// or sent bytes, and how many requests are in flight (read and not yet
/// answered, or waiting for request memory). A long-polling Fetch is in
/// flight, so its connection is not idle however long it waits.
struct Activity {
    last: Cell<Instant>,
    in_flight: Cell<usize>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            last: Cell::new(Instant::now()),
            in_flight: Cell::new(0),
        }
    }

    fn touch(&self) {
        self.last.set(Instant::now());
    }

    /// Returns once nothing was in flight and nothing was received or sent
    /// for `idle`; wakes at most once per `idle` while the connection is
    /// busy, so an active connection costs no timer per read.
    async fn idle(&self, idle: Duration) {
        loop {
            let quiet = self.last.get().elapsed();
            let wait = if self.in_flight.get() > 0 {
                idle
            } else if quiet >= idle {
                return;
            } else {
                idle - quiet
            };
            glommio::timer::sleep(wait).await;
        }
    }
}

/// One request in flight on [`Activity`], until dropped.
struct InFlight(Rc<Activity>);

impl InFlight {
    fn new(activity: &Rc<Activity>) -> Self {
        activity.in_flight.set(activity.in_flight.get() + 1);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let count = self.0.in_flight.get();
        assert!(count > 0);
        self.0.in_flight.set(count - 1);
    }
}

/// A request on its way from the reader to the writer: the task making
/// its answer, and what it holds until that answer is written.
struct Queued {
    task: Task<Reply>,
    held: Held,
}

/// What a request holds until its answer was written: its frame's bytes
/// of the shard's request memory (none for a close), and its place in the
/// connection's in-flight count.
struct Held {
    _memory: Option<MemoryPermit>,
    _in_flight: InFlight,
}

impl Queued {
    fn new(task: Task<Reply>, memory: Option<MemoryPermit>, activity: &Rc<Activity>) -> Self {
        Queued {
            task,
            held: Held {
                _memory: memory,
                _in_flight: InFlight::new(activity),
            },
        }
    }
}

async fn read_requests(
    client: &Rc<ShardClient>,
    mut reader: impl AsyncRead + Unpin,
    mut frames: FrameBuffer,
    queue: LocalSender<Queued>,
    memory: &Rc<RequestMemory>,
    activity: &Rc<Activity>,
    conn: &Rc<Conn>,
) {
    let order = Rc::new(DispatchOrder::default());
    // The request memory of the frame at the front, taken once its size
    // prefix is in and before the rest of it is read.
    let mut permit: Option<MemoryPermit> = None;
    loop {
        loop {
            if conn.is_muted() {
                // A mute (a client over its quota) is the broker's doing,
                // not the client's idleness.
                let _waiting = InFlight::new(activity);
                conn.unmuted().await;
            }
            let frame = match frames.next_frame_bytes() {
                Ok(Some(size)) => {
                    if permit.is_none() {
                        // Waiting for memory is the broker's doing, not
                        // the client's idleness.
                        let _waiting = InFlight::new(activity);
                        permit = Some(memory.acquire(size).await);
                    }
                    frames.next_frame()
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            match frame {
                Ok(Some(frame)) => {
                    assert_eq!(permit.as_ref().map(MemoryPermit::bytes), Some(frame.len()));
                    let turn = order.take();
                    // A Produce is charged to its quota here, before the
                    // next frame is read, so a client pipelining produces
                    // is muted from the request that went over, not from
                    // the first answer (after an fsync) on.
                    let produce_throttle = match produce_client_id(&frame) {
                        Some(client_id) => {
                            let usage = Usage::of(ApiKey::Produce, frame.len(), 0, Duration::ZERO);
                            throttle(client, conn, Some(client_id), usage)
                        }
                        None => Duration::ZERO,
                    };
                    let task = glommio::spawn_local(handle_frame(
                        client.clone(),
                        frame,
                        conn.clone(),
                        turn,
                        produce_throttle,
                    ));
                    if queue
                        .send(Queued::new(task, permit.take(), activity))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let reason = e.to_string();
                    let task = glommio::spawn_local(async move { Reply::Close(reason) });
                    let _ = queue.send(Queued::new(task, None, activity)).await;
                    return;
                }
            }
        }
        match reader.read(frames.room()).await {
            Ok(0) => {
                if frames.buffered() > 0 {
                    tracing::debug!(peer = %conn.addr, buffered = frames.buffered(), "client closed mid-request");
                }
                return;
            }
            Ok(n) => {
                activity.touch();
                frames.filled(n);
            }
            Err(e) => {
                tracing::debug!(peer = %conn.addr, error = %e, "read failed");
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
) -> Result<Authenticated, String>
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
            // SaslAuthenticate v0's framing: no session lifetime.
            let (response, outcome) =
                handlers::sasl_authenticate::handle(session, &client.local().meta, &request, 0, 0);
            let done = sasl_outcome(outcome, session.mechanism(), peer)?;
            let mut answer = bytes::BytesMut::new();
            ringlog_protocol::frame::write_frame_header(&mut answer, response.auth_bytes.len())
                .map_err(|e| e.to_string())?;
            answer.extend_from_slice(&response.auth_bytes);
            write_answer(stream, &answer).await?;
            if let Some(user) = done {
                return Ok(Authenticated {
                    user,
                    expires: false,
                });
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
                    let (response, outcome) = handlers::sasl_authenticate::handle(
                        session,
                        &client.local().meta,
                        &body,
                        version,
                        client.local().config.reauth_ms,
                    );
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
            let reauth_ms = client.local().config.reauth_ms;
            return Ok(Authenticated {
                user,
                expires: reauth_ms > 0 && key == ApiKey::SaslAuthenticate && version >= 1,
            });
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
    answers: LocalReceiver<Queued>,
    peer: &Peer,
    activity: &Activity,
) {
    let mut ready = ReadyAnswers::default();
    let mut waiting: Option<Queued> = None;
    // What the answers of this write hold; at most one queue's worth.
    let mut held: Vec<Held> = Vec::new();
    loop {
        let Queued { task, held: first } = match waiting.take() {
            Some(queued) => queued,
            None => match answers.recv().await {
                Some(queued) => queued,
                None => break,
            },
        };
        let mut reply = task.await;
        held.push(first);
        let close = loop {
            match reply {
                Reply::Respond(bytes) => ready.push(bytes),
                Reply::Nothing => {}
                Reply::Close(reason) => break Some(reason),
                Reply::RespondThenClose(bytes, reason) => {
                    ready.push(bytes);
                    break Some(reason);
                }
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
            match futures_lite::future::poll_once(&mut next.task).await {
                Some(next_reply) => {
                    reply = next_reply;
                    held.push(next.held);
                }
                None => {
                    waiting = Some(next);
                    break None;
                }
            }
        };
        assert!(held.len() <= IN_FLIGHT_REQUESTS_MAX + 1);
        if let Err(e) = ready.write(&mut writer).await {
            tracing::debug!(peer = %peer.addr, error = %e, "write failed");
            return;
        }
        activity.touch();
        held.clear();
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

/// Runs one request and encodes its answer. `produce_throttle` is the
/// throttle a Produce was given when its frame was read (it is charged
/// there); every other request is charged here, after its answer is made.
async fn handle_frame(
    client: Rc<ShardClient>,
    frame: Bytes,
    conn: Rc<Conn>,
    turn: Turn,
    produce_throttle: Duration,
) -> Reply {
    let started = Instant::now();
    let request_bytes = frame.len();
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
    if let Some(session) = &conn.session {
        if matches!(
            request.body,
            RequestKind::SaslHandshake(_) | RequestKind::SaslAuthenticate(_)
        ) {
            return reauthenticate(&client, &conn, session, request);
        }
        if session.expired(Instant::now()) {
            return Reply::Close(format!(
                "the SASL session of User:{} expired (--connections-max-reauth-ms) and the client did not re-authenticate",
                session.user
            ));
        }
    }
    let client_id = request.header.client_id.clone();
    let parsed = started.elapsed();
    let handled = handlers::dispatch(&client, request, &conn.identity, turn).await;
    let encoding = Instant::now();
    // The Produce bytes were charged when the frame was read.
    let request_bytes = if key == ApiKey::Produce {
        0
    } else {
        request_bytes
    };
    let reply = match handled {
        Ok(Handled::Respond(mut body)) => {
            let mut reply = encode(correlation_id, key, version, &body);
            if let Reply::Respond(answer) = &reply {
                let router_time = parsed + encoding.elapsed();
                let usage = Usage::of(key, request_bytes, answer.len(), router_time);
                let wait =
                    throttle(&client, &conn, client_id.as_deref(), usage).max(produce_throttle);
                if !wait.is_zero() {
                    let throttle_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
                    if set_throttle_time(&mut body, throttle_ms) {
                        reply = encode(correlation_id, key, version, &body);
                    }
                }
            }
            reply
        }
        Ok(Handled::Silent) => {
            throttle(
                &client,
                &conn,
                client_id.as_deref(),
                Usage::of(key, 0, 0, parsed),
            );
            Reply::Nothing
        }
        Err(reason) => Reply::Close(reason),
    };
    client
        .local()
        .config
        .metrics
        .request_done(key, started.elapsed());
    reply
}

/// One step of a re-authentication (KIP-368) on an authenticated
/// connection: a SaslHandshake (v1+) starts an exchange, SaslAuthenticate
/// steps it. The new session must be the same user's; any failure is
/// answered, then the connection closes. Other requests go on meanwhile:
/// the session stays valid until it expires.
fn reauthenticate(
    client: &ShardClient,
    conn: &Conn,
    session: &SaslSession,
    request: ringlog_protocol::Request,
) -> Reply {
    let (key, version, correlation_id) = (
        request.api_key,
        request.api_version,
        request.correlation_id(),
    );
    let respond = |body: ResponseKind, close: Option<String>| match (
        answer(correlation_id, key, version, &body),
        close,
    ) {
        (Ok(bytes), None) => Reply::Respond(bytes),
        (Ok(bytes), Some(reason)) => Reply::RespondThenClose(bytes, reason),
        (Err(reason), _) => Reply::Close(reason),
    };
    match request.body {
        RequestKind::SaslHandshake(_) if version < 1 => respond(
            ResponseKind::SaslHandshake(handlers::sasl_handshake::refused()),
            Some("re-authentication with SaslHandshake v0 (KIP-368 needs v1)".into()),
        ),
        RequestKind::SaslHandshake(body) => {
            let (response, chosen) = handlers::sasl_handshake::handle(&session.mechanisms, &body);
            let close = chosen.is_none().then(|| {
                format!(
                    "re-authentication with SASL mechanism {:?}, which is not enabled",
                    body.mechanism.as_str()
                )
            });
            *session.exchange.borrow_mut() = chosen.map(ServerSession::new);
            respond(ResponseKind::SaslHandshake(response), close)
        }
        RequestKind::SaslAuthenticate(body) => {
            let mut exchange = session.exchange.borrow_mut();
            let Some(step) = exchange.as_mut() else {
                return respond(
                    ResponseKind::SaslAuthenticate(handlers::sasl_authenticate::refused()),
                    Some("SaslAuthenticate without a re-authentication handshake".into()),
                );
            };
            let lifetime_ms = session.lifetime.map_or(0, |l| l.as_millis() as u64);
            let (response, outcome) = handlers::sasl_authenticate::handle(
                step,
                &client.local().meta,
                &body,
                version,
                lifetime_ms,
            );
            use handlers::sasl_authenticate::Outcome;
            let close = match outcome {
                Outcome::Continue => {
                    return respond(ResponseKind::SaslAuthenticate(response), None)
                }
                Outcome::Authenticated(user) if user == session.user => {
                    *exchange = None;
                    // SaslAuthenticate v0 cannot carry a lifetime, so it
                    // renews nothing: the session expires as it would.
                    if version >= 1 {
                        session
                            .expires_at
                            .set(session.lifetime.map(|l| Instant::now() + l));
                    }
                    tracing::debug!(peer = %conn.addr, %user, "SASL re-authenticated");
                    return respond(ResponseKind::SaslAuthenticate(response), None);
                }
                Outcome::Authenticated(user) => {
                    tracing::warn!(
                        peer = %conn.addr,
                        user = ?user,
                        principal = %format!("User:{}", session.user),
                        "SASL re-authentication as another user refused"
                    );
                    let refused = response
                        .with_error_code(
                            kafka_protocol::ResponseError::SaslAuthenticationFailed.code(),
                        )
                        .with_error_message(Some(handlers::text(
                            "re-authentication must keep the connection's principal",
                        )))
                        .with_auth_bytes(Bytes::new())
                        .with_session_lifetime_ms(0);
                    return respond(
                        ResponseKind::SaslAuthenticate(refused),
                        Some("SASL re-authentication as another user".into()),
                    );
                }
                Outcome::Failed { user, reason } => {
                    tracing::warn!(
                        peer = %conn.addr,
                        user = ?user.as_deref().unwrap_or(""),
                        mechanism = %step.mechanism(),
                        %reason,
                        "SASL re-authentication failed"
                    );
                    "SASL re-authentication failed".to_string()
                }
            };
            respond(ResponseKind::SaslAuthenticate(response), Some(close))
        }
        other => unreachable!("not a SASL request: {other:?}"),
    }
}

/// Charges a request to its client's quota sensors and mutes the
/// connection for the throttle that results; returns the throttle.
fn throttle(client: &ShardClient, conn: &Conn, client_id: Option<&str>, usage: Usage) -> Duration {
    let wait = client.local().throttles.charge(
        client,
        &conn.quota_user,
        client_id.unwrap_or(""),
        usage,
        Instant::now(),
    );
    if !wait.is_zero() {
        conn.mute_for(wait);
    }
    wait
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
