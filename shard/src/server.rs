//! `ringlog serve`: the pool of shards, the controller and the Kafka
//! routers, started from one [`ServerConfig`].
//!
//! Layer: start-up, the top (see the crate docs). Imports every layer: it
//! is where the router's listener and [`Services`] are handed to the
//! runtime, which may not name them.
//!
//! Why the listen address is checked before any shard starts: glommio's
//! `TcpListener` sets SO_REUSEPORT (which `--router-cores all` relies on to
//! share the port between shards), so a second broker on the same address
//! would bind without complaint and silently take half the connections of
//! the first. [`claim_listen`] looks for a listening socket on the address
//! in the kernel's socket table and stops start-up with an error naming
//! the address. With port 0 an ephemeral port is picked once, and every
//! shard binds (and Metadata advertises) that one.

use crate::admin::AdminCall;
use crate::config::{CoreBalancing, RouterCores, ServerConfig};
use crate::controller::Controller;
use crate::message::{ServiceRequest, ShardRequest};
use crate::router::{self, Services};
use crate::runtime::run_pool;
use crate::wake;
use futures_lite::StreamExt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The shard executors could not start (memlock, CPU set).
    #[error("cannot start the shards: {0}")]
    Runtime(std::io::Error),
    /// The metadata log or a partition log could not be opened or closed.
    #[error("{0}")]
    Storage(#[from] ringlog_engine::Error),
    /// Something already listens on the Kafka address.
    #[error("{addr} is already in use (another ringlog or Kafka broker?)")]
    AddressInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The Kafka listener could not bind.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// Runs the broker until `shutdown` resolves (or its sender is dropped):
/// starts one executor per shard, the controller on shard 0, the Kafka
/// listener(s); then stops accepting, closes every log (final fdatasync)
/// and the meta log, and returns.
pub fn serve(config: ServerConfig, shutdown: wake::Answer<()>) -> Result<(), ServeError> {
    assert!(config.shards >= 1, "at least one shard");
    let mut config = config;
    claim_listen(&mut config)?;
    // Absolute from here on: io_uring opens relative to the executor
    // thread's view, and log messages should name the full path.
    std::fs::create_dir_all(&config.data_dir)
        .and_then(|()| std::fs::canonicalize(&config.data_dir))
        .map(|dir| config.data_dir = dir)
        .map_err(|e| ServeError::Storage(ringlog_engine::Error::io(&config.data_dir, e)))?;
    let config = Arc::new(config);
    let main_config = config.clone();
    run_pool(
        config,
        Services::start,
        move |client, services| async move {
            let config = main_config;
            let controller = Controller::start(
                client.clone(),
                &config.data_dir,
                config.log_defaults.clone(),
                config.auto_create_partitions,
                config.core_balancing,
            )
            .await?;
            services.set_controller(Some(controller.clone()));
            serve_admin_calls(&config, &controller);
            if let CoreBalancing::Continuous {
                threshold,
                debounce_ms,
            } = config.core_balancing
            {
                glommio::spawn_local(controller.clone().keep_balanced(threshold, debounce_ms))
                    .detach();
            }
            router::listen(client.clone()).map_err(|error| ServeError::Listen {
                addr: config.listen,
                error,
            })?;
            if config.router_cores == RouterCores::All {
                for other in 1..client.shard_count() {
                    let start = ShardRequest::Service(ServiceRequest::StartRouter);
                    client.send(other, start).await;
                }
            }
            tracing::info!(
                listen = %config.listen,
                shards = config.shards,
                data_dir = %config.data_dir.display(),
                "ringlog is serving"
            );
            let _ = shutdown.await;
            tracing::info!("shutting down: closing logs");
            services.set_controller(None);
            controller.close().await?;
            Ok(())
        },
    )
    .map_err(ServeError::Runtime)?
}

/// Takes the operator's calls from the mailbox (the `--http` thread
/// sends them) and runs each as a task of its own on the controller's
/// shard, so a long move does not hold up a `shard list`.
fn serve_admin_calls(config: &ServerConfig, controller: &Rc<Controller>) {
    let Some(mut calls) = config.admin.take_receiver() else {
        tracing::warn!("admin calls are served by another pool in this process; not here");
        return;
    };
    let controller = controller.clone();
    glommio::spawn_local(async move {
        while let Some(AdminCall { request, reply }) = wake::shield(calls.next()).await {
            let controller = controller.clone();
            glommio::spawn_local(async move {
                let _ = reply.send(controller.admin_call(request).await);
            })
            .detach();
        }
    })
    .detach();
}

/// Checks that no socket listens on `config.listen` already, and for port
/// 0 fixes the port to an ephemeral one the kernel picks (in `listen` and,
/// when that is 0 too, `advertised_port`).
///
/// Why the kernel's socket table and not a test bind: a plain bind also
/// fails on the connections a previous run of this server left in
/// TIME_WAIT (glommio's listener does not set SO_REUSEADDR, so they carry
/// no reuse flag), which would refuse every quick restart on the same
/// port. Only a socket in the LISTEN state means another broker, and only
/// if it is still there after [`LISTENER_GONE_WAIT_MS`].
///
/// # Errors
///
/// [`ServeError::AddressInUse`] when something listens there, else
/// [`ServeError::Listen`] when the socket table cannot be read or port 0
/// cannot be resolved.
pub fn claim_listen(config: &mut ServerConfig) -> Result<(), ServeError> {
    let listen = config.listen;
    if listen.port() == 0 {
        let probe = std::net::TcpListener::bind(listen)
            .and_then(|probe| probe.local_addr())
            .map_err(|error| ServeError::Listen {
                addr: listen,
                error,
            })?;
        assert_ne!(probe.port(), 0, "the kernel picks a port for port 0");
        config.listen = probe;
        if config.advertised_port == 0 {
            config.advertised_port = probe.port();
        }
        return Ok(());
    }
    // Bounded: a listener still there after the wait is another broker.
    let deadline = Instant::now() + Duration::from_millis(LISTENER_GONE_WAIT_MS);
    while listener_on(listen)? {
        if Instant::now() >= deadline {
            return Err(ServeError::AddressInUse { addr: listen });
        }
        std::thread::sleep(Duration::from_millis(LISTENER_POLL_MS));
    }
    Ok(())
}

/// How long start-up waits for a listener on its address to go away. A
/// process using io_uring closes its sockets only when the kernel has torn
/// its rings down, shortly *after* it exits: the listener of the run being
/// restarted can linger for milliseconds.
const LISTENER_GONE_WAIT_MS: u64 = 3_000;
/// How often the socket table is read meanwhile.
const LISTENER_POLL_MS: u64 = 20;
const _: () = assert!(LISTENER_POLL_MS < LISTENER_GONE_WAIT_MS);

/// Whether a socket in the kernel's table listens where `listen` would.
fn listener_on(listen: SocketAddr) -> Result<bool, ServeError> {
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // No IPv6 in this kernel: nothing listens there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(ServeError::Listen {
                    addr: listen,
                    error: std::io::Error::new(error.kind(), format!("reading {table}: {error}")),
                })
            }
        };
        if listeners(&text).any(|taken| conflicts(taken, listen)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// TCP state LISTEN in `/proc/net/tcp*` (include/net/tcp_states.h).
const TCP_LISTEN_STATE: &str = "0A";

/// Local addresses of the sockets in LISTEN state in a `/proc/net/tcp` or
/// `/proc/net/tcp6` table. Lines that do not parse are skipped.
fn listeners(table: &str) -> impl Iterator<Item = SocketAddr> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        if state != TCP_LISTEN_STATE {
            return None;
        }
        let (ip_hex, port_hex) = local.split_once(':')?;
        let port = u16::from_str_radix(port_hex, 16).ok()?;
        // The kernel prints the address as 32-bit words in host order
        // (little-endian here): 127.0.0.1 is 0100007F.
        let words = (0..ip_hex.len() / 8)
            .map(|i| u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok())
            .collect::<Option<Vec<u32>>>()?;
        let ip = match words.as_slice() {
            [a] => std::net::IpAddr::from(a.to_le_bytes()),
            [a, b, c, d] => {
                let mut bytes = [0u8; 16];
                for (chunk, word) in bytes.chunks_exact_mut(4).zip([a, b, c, d]) {
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                std::net::IpAddr::from(bytes)
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    })
}

/// Whether a listener on `taken` keeps `wanted` from being ours: the same
/// port on the same address, or either side on every address.
fn conflicts(taken: SocketAddr, wanted: SocketAddr) -> bool {
    let canonical = |ip: std::net::IpAddr| ip.to_canonical();
    taken.port() == wanted.port()
        && (canonical(taken.ip()) == canonical(wanted.ip())
            || taken.ip().is_unspecified()
            || wanted.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: SocketAddr) -> ServerConfig {
        let mut config = ServerConfig::new("unused", 1);
        config.listen = listen;
        config.advertised_port = listen.port();
        config
    }

    #[test]
    fn a_taken_address_is_refused_by_name() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = claim_listen(&mut config(addr)).unwrap_err();
        assert!(matches!(err, ServeError::AddressInUse { addr: a } if a == addr));
        assert_eq!(
            err.to_string(),
            format!("{addr} is already in use (another ringlog or Kafka broker?)")
        );
    }

    #[test]
    fn a_free_address_is_kept_and_left_free() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut config = config(addr);
        claim_listen(&mut config).unwrap();
        assert_eq!(config.listen, addr);
        assert_eq!(config.advertised_port, addr.port());
        // The probe is closed: the address can be bound again.
        std::net::TcpListener::bind(addr).unwrap();
    }

    #[test]
    fn port_zero_becomes_the_ephemeral_port() {
        let mut config = config(SocketAddr::from(([127, 0, 0, 1], 0)));
        claim_listen(&mut config).unwrap();
        assert_ne!(config.listen.port(), 0);
        assert_eq!(config.listen.ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_eq!(config.advertised_port, config.listen.port());
        let mut explicit = config.clone();
        explicit.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        explicit.advertised_port = 9092;
        claim_listen(&mut explicit).unwrap();
        assert_eq!(
            explicit.advertised_port, 9092,
            "a set advertised port stays"
        );
    }

    #[test]
    fn connections_left_in_time_wait_do_not_count_as_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // The side that closes first keeps the port in TIME_WAIT.
        drop(accepted);
        drop(client);
        drop(listener);
        claim_listen(&mut config(addr)).unwrap();
    }

    #[test]
    fn the_socket_tables_are_read_in_host_order() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:2384 0100007F:C350 06 00000000:00000000 03:00000F6A 00000000     0        0 0 3 0
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   3: garbage";
        let found: Vec<SocketAddr> = listeners(tcp).collect();
        assert_eq!(
            found,
            vec![
                "127.0.0.1:9092".parse::<SocketAddr>().unwrap(),
                "0.0.0.0:8080".parse::<SocketAddr>().unwrap()
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:2384 00000000000000000000000000000000:0000 0A 00000000:00000000";
        let found: Vec<SocketAddr> = listeners(tcp6).collect();
        assert_eq!(found, vec!["[::1]:9092".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn a_listener_on_every_address_or_the_same_one_conflicts() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(conflicts(at("127.0.0.1:9092"), at("127.0.0.1:9092")));
        assert!(conflicts(at("0.0.0.0:9092"), at("127.0.0.1:9092")));
        assert!(conflicts(at("127.0.0.1:9092"), at("0.0.0.0:9092")));
        assert!(conflicts(
            at("[::ffff:127.0.0.1]:9092"),
            at("127.0.0.1:9092")
        ));
        assert!(!conflicts(at("127.0.0.1:9093"), at("127.0.0.1:9092")));
        assert!(!conflicts(at("127.0.0.2:9092"), at("127.0.0.1:9092")));
    }
}
