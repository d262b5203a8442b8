//! `ringlog serve`: the pool of shards, the controller and the Kafka
//! routers, started from one [`ServerConfig`].
//!
//! Why the listen address is probed before any shard starts: glommio's
//! `TcpListener` sets SO_REUSEPORT (which `--router-cores all` relies on to
//! share the port between shards), so a second broker on the same address
//! would bind without complaint and silently take half the connections of
//! the first. One plain bind without SO_REUSEPORT ([`claim_listen`]) fails
//! while anyone listens there, and start-up stops with an error naming the
//! address. With port 0 the probe's ephemeral port is the one every shard
//! then binds, and the one advertised.

use crate::controller::Controller;
use crate::group::CoordinatorConfig;
use crate::message::ShardRequest;
use crate::metrics::Metrics;
use crate::router;
use crate::runtime::run_pool;
use futures_channel::oneshot;
use ringlog_engine::LogConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Default DMA buffer memory per shard: 64 MiB.
///
/// A log being written fills a 2 MiB write buffer (the default
/// `write_buffer_bytes`); every sync hands it to the disk and takes a fresh
/// one, so a partition under load holds two or three (4-6 MiB) at a time.
/// 64 MiB covers about ten busy partitions per shard from the arena.
/// Measured on the 8-partition produce benchmark (2 shards, 4 partitions
/// each, needing 16-24 MiB): the former 10 MiB default sent most buffers
/// to `malloc` and ran 30% slower with 1.5-2.5x the p99 (BENCHMARKS.md).
pub const IO_MEMORY_BYTES_DEFAULT: usize = 64 << 20;
const _: () = assert!(IO_MEMORY_BYTES_DEFAULT >= 4 * 3 * LogConfig::DEFAULT_WRITE_BUFFER_BYTES);

/// Where Kafka connections are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterCores {
    /// One listener, on shard 0 (next to the controller).
    One,
    /// A listener on every shard, sharing the port with SO_REUSEPORT, for
    /// hosts where one core cannot parse requests fast enough.
    All,
}

/// Everything `ringlog serve` needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// `<data>/meta`, `<data>/topics/...`.
    pub data_dir: PathBuf,
    /// Address the Kafka listener binds.
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to (Metadata,
    /// DescribeCluster).
    pub advertised_host: String,
    /// Port of the advertised listener.
    pub advertised_port: u16,
    /// Number of shards (executors).
    pub shards: usize,
    /// CPU of each shard, `None` to leave it to the OS.
    pub cpus: Option<Vec<usize>>,
    /// Which shards accept connections.
    pub router_cores: RouterCores,
    /// io_uring submission queue depth per shard.
    pub ring_depth: usize,
    /// DMA buffer memory per shard (glommio's arena, registered with
    /// io_uring when memlock allows). Every log's write-behind buffers come
    /// from it while it has room; past that they come from `malloc`, which
    /// maps and unmaps 2 MiB per flush and page-faults on every 4 KiB
    /// written (BENCHMARKS.md, "What was changed").
    pub io_memory_bytes: usize,
    /// Settings of a new partition's log before topic overrides
    /// (`--segment-bytes`, `--segment-ms`, `--flush-policy`).
    pub log_defaults: LogConfig,
    /// Largest request frame accepted.
    pub max_request_bytes: usize,
    /// Create unknown topics on Metadata/Produce.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic.
    pub auto_create_partitions: u32,
    /// Consumer group and offset settings.
    pub coordinator: CoordinatorConfig,
    /// Shared metrics, exported by the HTTP endpoint.
    pub metrics: Arc<Metrics>,
}

impl ServerConfig {
    /// The defaults of `ringlog serve` for `shards` shards on `data_dir`,
    /// listening on 127.0.0.1:9092.
    pub fn new(data_dir: impl Into<PathBuf>, shards: usize) -> Self {
        let listen: SocketAddr = ([127, 0, 0, 1], 9092).into();
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            shards,
            cpus: None,
            router_cores: RouterCores::One,
            ring_depth: 128,
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
            log_defaults: LogConfig::default(),
            max_request_bytes: 100 << 20,
            auto_create_topics: false,
            auto_create_partitions: 1,
            coordinator: CoordinatorConfig::default(),
            metrics: Arc::new(Metrics::new(shards)),
        }
    }
}

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
pub fn serve(config: ServerConfig, shutdown: oneshot::Receiver<()>) -> Result<(), ServeError> {
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
    run_pool(config, move |client| async move {
        let config = main_config;
        let shard = client.local().clone();
        let controller = Controller::start(
            client.clone(),
            &config.data_dir,
            config.log_defaults.clone(),
            config.auto_create_partitions,
        )
        .await?;
        *shard.controller.borrow_mut() = Some(controller.clone());
        router::listen(client.clone()).map_err(|error| ServeError::Listen {
            addr: config.listen,
            error,
        })?;
        if config.router_cores == RouterCores::All {
            for other in 1..client.shard_count() {
                client.send(other, ShardRequest::StartRouter).await;
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
        shard.controller.borrow_mut().take();
        controller.close().await?;
        Ok(())
    })
    .map_err(ServeError::Runtime)?
}

/// Checks that nothing listens on `config.listen` with one bind that,
/// unlike the shards' listeners, does not set SO_REUSEPORT; the probe is
/// closed again at once. For port 0 it fixes the port to the ephemeral one
/// the probe got, in `listen` and (when that is 0 too) `advertised_port`.
///
/// # Errors
///
/// [`ServeError::AddressInUse`] when something listens there, else
/// [`ServeError::Listen`] when the address cannot be bound.
pub fn claim_listen(config: &mut ServerConfig) -> Result<(), ServeError> {
    let probe = std::net::TcpListener::bind(config.listen).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            ServeError::AddressInUse {
                addr: config.listen,
            }
        } else {
            ServeError::Listen {
                addr: config.listen,
                error,
            }
        }
    })?;
    if config.listen.port() == 0 {
        let bound = probe.local_addr().map_err(|error| ServeError::Listen {
            addr: config.listen,
            error,
        })?;
        assert_ne!(bound.port(), 0, "the kernel picks a port for port 0");
        config.listen = bound;
        if config.advertised_port == 0 {
            config.advertised_port = bound.port();
        }
    }
    Ok(())
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
    fn an_address_that_is_not_local_is_a_listen_error() {
        // TEST-NET-1 (RFC 5737) is never assigned to this host.
        let addr = SocketAddr::from(([192, 0, 2, 1], 9092));
        let err = claim_listen(&mut config(addr)).unwrap_err();
        assert!(matches!(err, ServeError::Listen { addr: a, .. } if a == addr));
    }
}
