//! `ringlog serve`: the pool of shards, the controller and the Kafka
//! routers, started from one [`ServerConfig`].

use crate::metrics::Metrics;
use ringlog_engine::LogConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Registered DMA buffer memory per shard.
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
    /// Shared metrics, exported by the HTTP endpoint.
    pub metrics: Arc<Metrics>,
}
