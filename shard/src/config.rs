//! The settings of `ringlog serve`, as plain data.
//!
//! Layer: foundation (see the crate docs). Imports only `metrics` of the
//! crate, so every layer can read the settings: the runtime sizes its
//! executors from them, the group state machine takes its session rules
//! from them, the handlers advertise the listener from them.
//! Also imports `limits`, whose connection count every router shares.

use crate::admin::AdminMailbox;
use crate::authorizer::AuthorizerConfig;
use crate::limits::{
    ConnectionLimits, CONNECTIONS_MAX_IDLE_MS_DEFAULT, MAX_CONNECTIONS_DEFAULT,
    REQUEST_MEMORY_BYTES_MAX_DEFAULT,
};
use crate::metrics::Metrics;
use crate::search::SearchHub;
use crate::tiered::ArchiveTarget;
use ringlog_engine::LogConfig;
use ringlog_protocol::sasl::Mechanism;
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
    /// The listener's TLS (`--security-protocol SSL`), built once from the
    /// PEM files at start and shared by every shard's router; `None` for
    /// PLAINTEXT.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The mechanisms a SASL listener offers (`--security-protocol
    /// SASL_PLAINTEXT` or `SASL_SSL`, `--sasl-mechanisms`); `None`: no
    /// SASL, connections are served from their first request.
    pub sasl: Option<Vec<Mechanism>>,
    /// Longest an authenticated SASL session lasts before the client must
    /// re-authenticate on the same connection (KIP-368,
    /// `--connections-max-reauth-ms`); 0: sessions never expire.
    pub reauth_ms: u64,
    /// The ACL authorizer (`--authorizer on`); `None`: every request is
    /// allowed, as in Kafka without an authorizer.
    pub authorizer: Option<Arc<AuthorizerConfig>>,
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
    /// How long an idle shard polls before it parks (sleeps in the
    /// kernel until woken); 0 parks at once. Only pinned shards (`cpus`)
    /// spin: glommio ignores it otherwise.
    pub spin_before_park_us: u64,
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
    /// Open Kafka connections of the whole broker, counted against
    /// `--max-connections` and `--max-connections-per-ip`; one count shared
    /// by every shard's router.
    pub connections: Arc<ConnectionLimits>,
    /// A connection with no request in flight that received nothing and
    /// was sent nothing for this long is closed (`--connections-max-idle-ms`).
    pub connections_max_idle_ms: u64,
    /// Bytes of request frames each shard holds at most, from the frame's
    /// size prefix until its answer is written
    /// (`--request-memory-bytes-max`); at least `max_request_bytes`.
    pub request_memory_bytes_max: usize,
    /// Create unknown topics on Metadata/Produce.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic.
    pub auto_create_partitions: u32,
    /// Consumer group and offset settings.
    pub coordinator: CoordinatorConfig,
    /// Shared metrics, exported by the HTTP endpoint.
    pub metrics: Arc<Metrics>,
    /// Operator calls from the HTTP endpoint to the controller.
    pub admin: Arc<AdminMailbox>,
    /// When partitions are re-placed across shards on their own.
    pub core_balancing: CoreBalancing,
    /// Where sealed segments are archived (`--archive`). `Off` here;
    /// `ringlog serve` defaults to a directory under the data directory.
    pub archive: ArchiveTarget,
    /// Bound of the on-disk chunk cache of archives read from a remote
    /// store, over all shards (`--archive-cache-bytes`).
    pub archive_cache_bytes: u64,
    /// Bytes per second each shard may read from a remote store
    /// (`--archive-read-mb-s`), so a backfill cannot starve produce.
    pub archive_read_bytes_per_s: u64,
    /// Every shard's search indexer (`None`: the broker indexes nothing;
    /// `ringlog serve` always starts them, and a topic's
    /// `ringlog.search.enable` says whether its batches are fed).
    pub search: Option<Arc<SearchHub>>,
}

/// Default `--archive-cache-bytes`: 1 GiB.
pub const ARCHIVE_CACHE_BYTES_DEFAULT: u64 = 1 << 30;
/// Default `--archive-read-mb-s`: 200 MB/s per shard.
pub const ARCHIVE_READ_BYTES_PER_S_DEFAULT: u64 = 200_000_000;

/// When partitions move between shards without an operator asking
/// (`--core-balancing`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CoreBalancing {
    /// Never: placement changes only by `ringlog partition move` and
    /// `ringlog shard rebalance`.
    Off,
    /// At start, when `--shards` differs from the last start: partitions
    /// are spread evenly over the shards there are now.
    OnChange,
    /// As `OnChange`, and while running: when the busiest shard carries
    /// more than `threshold` times the mean load for `debounce_ms`, a
    /// rebalance by load runs.
    Continuous {
        /// Busiest shard over mean load that counts as imbalance (> 1).
        threshold: f64,
        /// How long the imbalance must last.
        debounce_ms: u64,
    },
}

impl ServerConfig {
    /// Shards that accept Kafka connections.
    pub fn router_count(&self) -> usize {
        match self.router_cores {
            RouterCores::One => 1,
            RouterCores::All => self.shards,
        }
    }

    /// The defaults of `ringlog serve` for `shards` shards on `data_dir`,
    /// listening on 127.0.0.1:9092.
    pub fn new(data_dir: impl Into<PathBuf>, shards: usize) -> Self {
        let listen: SocketAddr = ([127, 0, 0, 1], 9092).into();
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
            tls: None,
            sasl: None,
            reauth_ms: 0,
            authorizer: None,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            shards,
            cpus: None,
            router_cores: RouterCores::One,
            spin_before_park_us: 0,
            ring_depth: 128,
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
            log_defaults: LogConfig::default(),
            max_request_bytes: 100 << 20,
            connections: Arc::new(ConnectionLimits::new(
                MAX_CONNECTIONS_DEFAULT,
                MAX_CONNECTIONS_DEFAULT,
            )),
            connections_max_idle_ms: CONNECTIONS_MAX_IDLE_MS_DEFAULT,
            request_memory_bytes_max: REQUEST_MEMORY_BYTES_MAX_DEFAULT,
            auto_create_topics: false,
            auto_create_partitions: 1,
            coordinator: CoordinatorConfig::default(),
            metrics: Arc::new(Metrics::new(shards)),
            admin: Arc::default(),
            core_balancing: CoreBalancing::OnChange,
            archive: ArchiveTarget::Off,
            archive_cache_bytes: ARCHIVE_CACHE_BYTES_DEFAULT,
            archive_read_bytes_per_s: ARCHIVE_READ_BYTES_PER_S_DEFAULT,
            search: None,
        }
    }
}

/// Coordinator-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Session and rebalance rules.
    pub groups: GroupSettings,
    /// Kafka's `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            groups: GroupSettings::default(),
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// Coordinator settings that shape every group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    /// Smallest session timeout a member may ask for
    /// (`group.min.session.timeout.ms`).
    pub min_session_timeout_ms: i32,
    /// Largest session timeout (`group.max.session.timeout.ms`).
    pub max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more
    /// members (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay_ms: u64,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
        }
    }
}
