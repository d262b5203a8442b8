//! Broker metrics in Prometheus form.
//!
//! Layer: foundation (see the crate docs). Imports nothing of the crate.
//!
//! Why every handle is created up front: shards update counters on the
//! data path, and `prometheus-client` families take a lock to find a
//! label set. Creating one counter per shard (and one histogram per API)
//! at start-up leaves the hot path with a relaxed atomic add on a cache
//! line only that shard writes.

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use ringlog_protocol::SUPPORTED_APIS;
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

/// Buckets of the latency histograms: 50 µs doubling to ~1.6 s.
const LATENCY_BUCKET_START_S: f64 = 50e-6;
const LATENCY_BUCKETS: u16 = 16;

/// Counters of one shard.
struct ShardMetrics {
    produce_records: Counter,
    produce_bytes: Counter,
    fetch_records: Counter,
    fetch_bytes: Counter,
    fsync_seconds: Histogram,
    segments: Gauge,
    partitions_stopped: Counter,
    archived_bytes: Counter,
    archive_upload_failures: Counter,
    archive_lag_bytes: Gauge,
    archive_lag_segments: Gauge,
    store_retries: Gauge,
    store_failures: Gauge,
    request_memory_bytes: Gauge,
    request_memory_peak_bytes: Gauge,
}

/// Every metric the broker exports. Shared by all shards (`Send + Sync`).
pub struct Metrics {
    registry: Registry,
    shards: Vec<ShardMetrics>,
    /// Request latency per API, indexed by API key.
    requests: Vec<Option<Histogram>>,
    /// How long each partition move kept its partition unwritable.
    move_unavailable_seconds: Histogram,
    /// Kafka connections open, over all shards.
    open_connections: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_BUCKET_START_S,
        2.0,
        LATENCY_BUCKETS,
    ))
}

impl Metrics {
    /// Metrics for `shards` shards, all zero.
    pub fn new(shards: usize) -> Self {
        assert!(shards >= 1, "at least one shard");
        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let produce_records = counter(
            &mut registry,
            "ringlog_produce_records",
            "Records accepted by Produce, per shard",
        );
        let produce_bytes = counter(
            &mut registry,
            "ringlog_produce_bytes",
            "RecordBatch bytes accepted by Produce, per shard",
        );
        let fetch_records = counter(
            &mut registry,
            "ringlog_fetch_records",
            "Records returned by Fetch, per shard",
        );
        let fetch_bytes = counter(
            &mut registry,
            "ringlog_fetch_bytes",
            "RecordBatch bytes returned by Fetch, per shard",
        );
        let fsync = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "ringlog_fsync_duration_seconds",
            "fdatasync of partition segment data, per shard",
            fsync.clone(),
        );
        let segments = Family::<Labels, Gauge>::default();
        registry.register(
            "ringlog_segments",
            "Segments of the partitions a shard owns",
            segments.clone(),
        );
        let partitions_stopped = counter(
            &mut registry,
            "ringlog_partitions_stopped",
            "Partitions stopped because an internal invariant broke (a panic in their work), per shard",
        );
        let archived_bytes = counter(
            &mut registry,
            "ringlog_archived_bytes",
            "Archive bytes put into the object store and recorded, per shard",
        );
        let archive_upload_failures = counter(
            &mut registry,
            "ringlog_archive_upload_failures",
            "Segment uploads that failed after the store's retries (retried at the next maintenance round), per shard",
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<Labels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let archive_lag_bytes = gauge(
            &mut registry,
            "ringlog_archive_upload_lag_bytes",
            "Bytes of sealed segments not archived yet, per shard",
        );
        let archive_lag_segments = gauge(
            &mut registry,
            "ringlog_archive_upload_lag_segments",
            "Sealed segments not archived yet, per shard",
        );
        let store_retries = gauge(
            &mut registry,
            "ringlog_archive_store_retries",
            "Object store requests retried since start, per shard",
        );
        let store_failures = gauge(
            &mut registry,
            "ringlog_archive_store_failures",
            "Object store requests that failed after every retry since start, per shard",
        );
        let request_memory_bytes = gauge(
            &mut registry,
            "ringlog_request_memory_bytes",
            "Bytes of request frames read and not yet answered, per shard (bounded by --request-memory-bytes-max)",
        );
        let request_memory_peak_bytes = gauge(
            &mut registry,
            "ringlog_request_memory_peak_bytes",
            "The most bytes of request frames held at once since start, per shard (at most --request-memory-bytes-max)",
        );
        let shards = (0..shards)
            .map(|shard| {
                let labels = vec![("shard", shard.to_string())];
                ShardMetrics {
                    produce_records: produce_records.get_or_create(&labels).clone(),
                    produce_bytes: produce_bytes.get_or_create(&labels).clone(),
                    fetch_records: fetch_records.get_or_create(&labels).clone(),
                    fetch_bytes: fetch_bytes.get_or_create(&labels).clone(),
                    fsync_seconds: fsync.get_or_create(&labels).clone(),
                    segments: segments.get_or_create(&labels).clone(),
                    partitions_stopped: partitions_stopped.get_or_create(&labels).clone(),
                    archived_bytes: archived_bytes.get_or_create(&labels).clone(),
                    archive_upload_failures: archive_upload_failures.get_or_create(&labels).clone(),
                    archive_lag_bytes: archive_lag_bytes.get_or_create(&labels).clone(),
                    archive_lag_segments: archive_lag_segments.get_or_create(&labels).clone(),
                    store_retries: store_retries.get_or_create(&labels).clone(),
                    store_failures: store_failures.get_or_create(&labels).clone(),
                    request_memory_bytes: request_memory_bytes.get_or_create(&labels).clone(),
                    request_memory_peak_bytes: request_memory_peak_bytes
                        .get_or_create(&labels)
                        .clone(),
                }
            })
            .collect();
        let request_family = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "ringlog_request_duration_seconds",
            "Time from a request's arrival to its response being ready, per API",
            request_family.clone(),
        );
        let max_key = SUPPORTED_APIS
            .iter()
            .map(|api| api.key as usize)
            .max()
            .expect("some APIs");
        let mut requests = vec![None; max_key + 1];
        for api in SUPPORTED_APIS {
            let labels = vec![("api", format!("{:?}", api.key))];
            requests[api.key as usize] = Some(request_family.get_or_create(&labels).clone());
        }
        let move_unavailable_seconds = latency_histogram();
        registry.register(
            "ringlog_partition_move_unavailable_seconds",
            "Time each partition move kept its partition unwritable (one observation per move)",
            move_unavailable_seconds.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "ringlog_open_connections",
            "Kafka connections open, over all shards (bounded by --max-connections)",
            open_connections.clone(),
        );
        Metrics {
            registry,
            shards,
            requests,
            move_unavailable_seconds,
            open_connections,
        }
    }

    fn shard(&self, shard: usize) -> &ShardMetrics {
        &self.shards[shard]
    }

    /// `records` records in `bytes` bytes of batches accepted on `shard`.
    pub fn produced(&self, shard: usize, records: u64, bytes: u64) {
        let m = self.shard(shard);
        m.produce_records.inc_by(records);
        m.produce_bytes.inc_by(bytes);
    }

    /// `records` records in `bytes` bytes of batches returned from `shard`.
    pub fn fetched(&self, shard: usize, records: u64, bytes: u64) {
        let m = self.shard(shard);
        m.fetch_records.inc_by(records);
        m.fetch_bytes.inc_by(bytes);
    }

    /// One request of `api` answered after `elapsed`.
    pub fn request_done(&self, api: ApiKey, elapsed: Duration) {
        if let Some(Some(histogram)) = self.requests.get(api as usize) {
            histogram.observe(elapsed.as_secs_f64());
        }
    }

    /// One fdatasync of segment data on `shard` took `elapsed`.
    pub fn fsync_done(&self, shard: usize, elapsed: Duration) {
        self.shard(shard)
            .fsync_seconds
            .observe(elapsed.as_secs_f64());
    }

    /// `shard` now holds `count` segments.
    pub fn set_segments(&self, shard: usize, count: u64) {
        self.shard(shard)
            .segments
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A partition moved between shards, unwritable for `unavailable`.
    pub fn partition_moved(&self, unavailable: Duration) {
        self.move_unavailable_seconds
            .observe(unavailable.as_secs_f64());
    }

    /// An archive of `bytes` bytes put and recorded by `shard`.
    pub fn archived(&self, shard: usize, bytes: u64) {
        self.shard(shard).archived_bytes.inc_by(bytes);
    }

    /// A segment upload on `shard` failed (it is retried).
    pub fn archive_upload_failed(&self, shard: usize) {
        self.shard(shard).archive_upload_failures.inc();
    }

    /// What `shard` has sealed and not archived yet.
    pub fn set_archive_lag(&self, shard: usize, bytes: u64, segments: u64) {
        let m = self.shard(shard);
        m.archive_lag_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        m.archive_lag_segments
            .set(i64::try_from(segments).unwrap_or(i64::MAX));
    }

    /// The retry and failure counts of `shard`'s store thread.
    pub fn set_store_stats(&self, shard: usize, stats: &crate::tiered::StoreStats) {
        let m = self.shard(shard);
        m.store_retries
            .set(i64::try_from(stats.retries).unwrap_or(i64::MAX));
        m.store_failures
            .set(i64::try_from(stats.failures).unwrap_or(i64::MAX));
    }

    /// `shard`'s requests now hold `bytes` bytes of its request budget,
    /// and at most `peak_bytes` at once since start.
    pub fn set_request_memory(&self, shard: usize, bytes: usize, peak_bytes: usize) {
        assert!(bytes <= peak_bytes);
        let m = self.shard(shard);
        m.request_memory_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        m.request_memory_peak_bytes
            .set(i64::try_from(peak_bytes).unwrap_or(i64::MAX));
    }

    /// A Kafka connection was accepted within the connection limits.
    pub fn connection_opened(&self) {
        self.open_connections.inc();
    }

    /// A connection counted by [`Metrics::connection_opened`] closed.
    pub fn connection_closed(&self) {
        self.open_connections.dec();
    }

    /// A partition on `shard` stopped after an internal invariant broke.
    pub fn partition_stopped(&self, shard: usize) {
        self.shard(shard).partitions_stopped.inc();
    }

    /// Records accepted on `shard` so far.
    pub fn produce_records(&self, shard: usize) -> u64 {
        self.shard(shard).produce_records.get()
    }

    /// The Prometheus (OpenMetrics) text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_per_shard() {
        let metrics = Metrics::new(2);
        metrics.produced(1, 3, 300);
        metrics.fetched(0, 2, 200);
        metrics.request_done(ApiKey::Produce, Duration::from_micros(120));
        metrics.fsync_done(0, Duration::from_micros(200));
        metrics.set_segments(1, 4);
        metrics.partition_stopped(0);
        metrics.set_request_memory(1, 4096, 8192);
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        let text = metrics.encode();
        assert!(
            text.contains("ringlog_request_memory_bytes{shard=\"1\"} 4096"),
            "{text}"
        );
        assert!(
            text.contains("ringlog_request_memory_peak_bytes{shard=\"1\"} 8192"),
            "{text}"
        );
        assert!(text.contains("ringlog_open_connections 1"), "{text}");
        assert!(
            text.contains("ringlog_produce_records_total{shard=\"1\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ringlog_produce_records_total{shard=\"0\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("ringlog_produce_bytes_total{shard=\"1\"} 300"),
            "{text}"
        );
        assert!(
            text.contains("ringlog_fetch_records_total{shard=\"0\"} 2"),
            "{text}"
        );
        assert!(text.contains("ringlog_segments{shard=\"1\"} 4"), "{text}");
        assert!(
            text.contains("ringlog_partitions_stopped_total{shard=\"0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringlog_request_duration_seconds_count{api=\"Produce\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringlog_fsync_duration_seconds_count{shard=\"0\"} 1"),
            "{text}"
        );
        assert_eq!(metrics.produce_records(1), 3);
    }
}
