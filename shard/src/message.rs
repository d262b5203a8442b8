//! What travels between cores: requests from the router to the shard that
//! owns a partition, each carrying a oneshot for its reply. Everything here
//! is `Send`; record data moves as reference-counted `Bytes`, never copied
//! per record.

use bytes::Bytes;
use futures_channel::oneshot;
use ringlog_engine::LogConfig;
use std::time::Duration;

/// Which offset a ListOffsets query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset.
    Earliest,
    /// The high watermark (next offset a consumer would see).
    Latest,
    /// The first offset whose batch max timestamp is >= this.
    Timestamp(i64),
}

/// Offsets of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// First offset still stored.
    pub log_start: u64,
    /// Readers see offsets below this.
    pub high_watermark: u64,
}

/// Result of a produce to one partition.
pub type ProduceReply = Result<(u64, PartitionOffsets), ringlog_engine::Error>;

/// Result of a fetch from one partition.
pub struct FetchReply {
    /// Record batches, concatenated as Kafka sends them.
    pub records: Result<Bytes, ringlog_engine::Error>,
    /// Offsets at the time of the read.
    pub offsets: PartitionOffsets,
}

/// A request for the shard that owns `topic`/`partition`.
pub enum ShardRequest {
    /// Open (or create) the partition's log with this configuration.
    Open {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Log settings from the topic's configs.
        config: LogConfig,
        /// Done, or why not.
        reply: oneshot::Sender<Result<(), ringlog_engine::Error>>,
    },
    /// Append whole record batches.
    Produce {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Each a whole RecordBatch v2.
        batches: Vec<Bytes>,
        /// acks=all: answer after fdatasync (group commit).
        durable: bool,
        /// Base offset of the first batch.
        reply: oneshot::Sender<ProduceReply>,
    },
    /// Read batches from an offset, waiting up to `max_wait` for data.
    Fetch {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// First offset wanted.
        offset: u64,
        /// Payload bound (at least one batch is returned).
        max_bytes: usize,
        /// How long to wait for data at the end of the log.
        max_wait: Duration,
        /// The batches.
        reply: oneshot::Sender<FetchReply>,
    },
    /// Look up an offset.
    Offsets {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Which offset.
        query: OffsetQuery,
        /// The offset (None: no record at or after the timestamp) and the partition's offsets.
        reply: oneshot::Sender<Result<(Option<u64>, PartitionOffsets), ringlog_engine::Error>>,
    },
    /// Close every partition (final fdatasync) and stop the shard.
    Shutdown {
        /// Sent once the shard's logs are closed.
        reply: oneshot::Sender<()>,
    },
}
