//! What travels between cores: requests from the router to the shard that
//! owns a partition, each carrying a oneshot for its reply. Everything here
//! is `Send`; record data moves as reference-counted `Bytes`, never copied
//! per record.
//!
//! Layer: foundation (see the crate docs): every layer sends or answers
//! these. Imports nothing of the crate.

use crate::admin::ShardLoad;
use crate::wake;
use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::messages::{OffsetCommitResponse, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{MetaEvent, MetaState};
use ringlog_engine::partition::AppendError;
use ringlog_engine::LogConfig;
use std::time::Duration;

/// Work for the controller (shard 0), which alone writes the meta log.
pub enum ControllerRequest {
    /// Create these topics with the auto-create defaults (Metadata and
    /// Produce with `--auto-create-topics`); existing ones are skipped.
    AutoCreate {
        /// Topic names.
        topics: Vec<String>,
    },
    /// Append one event (offset commits, group membership) as it is; the
    /// caller validated it against what it owns.
    Append {
        /// The event.
        event: Box<MetaEvent>,
    },
    /// Hand out a producer id (InitProducerId without a transactional id).
    AllocateProducerId,
}

/// What the controller answers.
pub struct ControllerReply {
    /// Why the work failed; `None` on success.
    pub failed: Option<AdminError>,
    /// The id `AllocateProducerId` handed out; `None` for the others.
    pub producer_id: Option<i64>,
    /// Meta log offset the caller's shard must have applied before it
    /// answers its client, so the client's next request sees the change.
    pub applied_offset: u64,
}

/// What an admin request's handler answers on the controller's shard.
pub struct AdminReply {
    /// The response body.
    pub body: ResponseKind,
    /// Meta log offset the router's shard must have applied before it
    /// answers, so the client's next request sees the change.
    pub applied_offset: u64,
}

/// A refused admin operation: the Kafka error and a message for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminError {
    /// The error code to answer with.
    pub error: ResponseError,
    /// Why, in words.
    pub message: String,
}

impl AdminError {
    /// An error with a message.
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        AdminError {
            error,
            message: message.into(),
        }
    }

    /// An engine failure, with the Kafka error it maps to.
    pub fn engine(e: &ringlog_engine::Error) -> Self {
        AdminError::new(ringlog_protocol::response_error(e), e.to_string())
    }
}

/// The result of an admin step.
pub type AdminResult<T = ()> = Result<T, AdminError>;

/// What a group's coordinator shard answers the router.
pub enum GroupAnswer {
    /// The response body.
    Done(ResponseKind),
    /// An OffsetCommit's response, true once the controller reports its
    /// event durable on `durable`; if it does not, the partitions answered
    /// without an error fail with COORDINATOR_NOT_AVAILABLE. Why the router
    /// waits and not the coordinator: the controller's verdict then goes
    /// straight to the router (on shard 0 by default, the controller's own
    /// core) instead of back through the coordinator shard, two cross-core
    /// hops fewer per commit.
    OnceDurable {
        /// The response if the event is durable.
        response: OffsetCommitResponse,
        /// The controller's verdict on the event.
        durable: wake::Answer<ControllerReply>,
    },
}

/// Who sent a request: kept with group members (DescribeGroups).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The request header's client id.
    pub client_id: String,
    /// The connection's peer address, as Kafka shows it (`/127.0.0.1`).
    pub host: String,
}

/// When the owner answers an open request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenReply {
    /// Once the partition is registered: its log is created by the first
    /// request that reaches the owner after this answer and needs it
    /// (CreateTopics, CreatePartitions).
    Registered,
    /// Once the log is open, with the outcome (start-up).
    Opened,
}

/// Which offset a ListOffsets query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset.
    Earliest,
    /// The high watermark (next offset a consumer would see).
    Latest,
    /// The first record, in offset order, whose timestamp is >= this.
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

/// An offset found by ListOffsets and the timestamp Kafka reports with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundOffset {
    /// The offset.
    pub offset: u64,
    /// The timestamp of the record at `offset` for a timestamp query; -1
    /// for earliest and latest, as Kafka answers them.
    pub timestamp: i64,
}

/// Result of an offset lookup: the offset (None: no record at or after the
/// timestamp) and the partition's offsets.
pub type OffsetsReply = Result<(Option<FoundOffset>, PartitionOffsets), ringlog_engine::Error>;

/// What a produce to one partition answers when it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceAck {
    /// Base offset of the first batch (for a retried batch of an
    /// idempotent producer, where it was first written).
    pub base_offset: u64,
    /// The append time stamped on the batches of a LogAppendTime topic
    /// (the Produce response's `log_append_time_ms`); `None` otherwise.
    pub log_append_time_ms: Option<i64>,
    /// The partition's offsets after the append.
    pub offsets: PartitionOffsets,
}

/// Result of a produce to one partition, or why the batches were refused
/// (an engine failure, the topic's batch policy, or the idempotent
/// producer rules).
pub type ProduceReply = Result<ProduceAck, AppendError>;

/// Result of a fetch from one partition.
pub struct FetchReply {
    /// Record batches, concatenated as Kafka sends them.
    pub records: Result<Bytes, ringlog_engine::Error>,
    /// Offsets at the time of the read.
    pub offsets: PartitionOffsets,
}

/// A request for the shard that owns `topic`/`partition`.
pub enum ShardRequest {
    /// Open (or create) the partition's log with this configuration. The
    /// owner registers the partition when the request arrives (inline in
    /// its receive loop); see [`OpenReply`] for when the log is opened.
    Open {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Log settings from the topic's configs.
        config: LogConfig,
        /// When to answer.
        answer: OpenReply,
        /// Registered or opened (as `answer` says), or why the open failed.
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
        /// What was found.
        reply: oneshot::Sender<OffsetsReply>,
    },
    /// A meta event the controller made durable, to fold into this
    /// shard's replica of the metadata. Applied in arrival order.
    MetaApplied {
        /// The event's offset in the meta log.
        offset: u64,
        /// The event.
        event: MetaEvent,
    },
    /// Replace this shard's metadata replica (start-up).
    MetaReset {
        /// The controller's state.
        state: Box<MetaState>,
    },
    /// Apply changed topic configs to an open partition.
    Reconfigure {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The new settings.
        config: LogConfig,
        /// Done, or why not.
        reply: oneshot::Sender<Result<(), ringlog_engine::Error>>,
    },
    /// Close a deleted partition's log and remove its directory.
    Remove {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Done, or why not.
        reply: oneshot::Sender<Result<(), ringlog_engine::Error>>,
    },
    /// Kafka DeleteRecords: advance the log start offset.
    DeleteRecords {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// New log start; `None` means the high watermark.
        offset: Option<u64>,
        /// The new log start offset.
        reply: oneshot::Sender<Result<u64, ringlog_engine::Error>>,
    },
    /// Give the partition up for a move to another shard (see
    /// [`crate::partitions::Partitions::release`]).
    Release {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// How long new requests were refused before the log closed, or
        /// why the partition stays here.
        reply: oneshot::Sender<Result<Duration, ringlog_engine::Error>>,
    },
    /// Report this shard's load and partitions.
    Load {
        /// The report.
        reply: oneshot::Sender<ShardLoad>,
    },
    /// Work for the layers above the runtime.
    Service(ServiceRequest),
    /// Close every partition (final fdatasync) and stop the shard.
    Shutdown {
        /// Sent once the shard's logs are closed.
        reply: oneshot::Sender<()>,
    },
}

/// Requests the runtime hands to the layers above it (the runtime's
/// `Service`).
pub enum ServiceRequest {
    /// Work for the controller; only shard 0 accepts it.
    Controller {
        /// The work.
        request: ControllerRequest,
        /// The answer (dropped if this shard is not the controller).
        reply: oneshot::Sender<ControllerReply>,
    },
    /// An admin API request (CreateTopics, DeleteTopics, CreatePartitions,
    /// AlterConfigs, IncrementalAlterConfigs), answered by its handler next
    /// to the controller; only shard 0 accepts it.
    Admin {
        /// The API version the response must be encodable at.
        version: i16,
        /// The decoded request.
        body: Box<RequestKind>,
        /// The answer (dropped if this shard is not the controller).
        reply: oneshot::Sender<AdminReply>,
    },
    /// A consumer group request for the group's coordinator shard.
    Group {
        /// The API version the response must be encodable at.
        version: i16,
        /// The decoded request (one group).
        body: Box<RequestKind>,
        /// Who sent it.
        client: ClientInfo,
        /// The answer.
        reply: oneshot::Sender<GroupAnswer>,
    },
    /// Start accepting Kafka connections on this shard
    /// (`--router-cores all`).
    StartRouter,
}
