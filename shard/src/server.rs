//! `ringlog serve`: the pool of shards, the controller and the Kafka
//! routers, started from one [`ServerConfig`].

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
