//! The settings of one log, and the relationships between them.
//!
//! Why a check rather than clamping: the other files rely on these sizes
//! fitting together (the write buffer holds a largest frame, a footer and
//! two blocks, so an append at the head of the line needs a bounded number
//! of I/O steps; a segment holds at least one frame; index positions are
//! `u32`), so a config that breaks one is refused, at open and at
//! [`Log::reconfigure`], never quietly adjusted. What the open log
//! allocated from them (the write buffer) stays fixed until it is reopened.

use super::segment::FOOTER_FRAME_BYTES;
#[cfg(doc)]
use super::Log;
use crate::error::{Error, Result};
use crate::format::{SegmentKind, FILE_HEADER_BYTES, FRAME_HEADER_BYTES};
use crate::io::BLOCK_BYTES;
use crate::records::BatchPolicy;

/// When readers see appends, and whether the log fdatasyncs on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Readers see an append once an fdatasync covers it (group commit
    /// shares one among the appenders waiting), so a crash never takes
    /// back a record a reader has seen.
    Always,
    /// Readers see appends once they are written, before their fdatasync
    /// (the high watermark is the written offset); [`Log::maintain`] flushes
    /// and fdatasyncs when this many ms have passed since the last sync. A
    /// crash can take back up to that window of records readers have seen.
    /// Acknowledgement is the caller's choice: the broker still waits for
    /// [`Log::sync_to`] before answering acks=all.
    IntervalMs(u64),
}

/// Per-log settings (Kafka's topic-level names in parentheses). All but
/// `kind` and `write_buffer_bytes` can change on a live log with
/// [`Log::reconfigure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Partition data or metadata events.
    pub kind: SegmentKind,
    /// Roll when the active segment would exceed this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment is older than this (`segment.ms`).
    pub segment_ms: i64,
    /// Delete old segments while the log stays above this (`retention.bytes`).
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest record is older (`retention.ms`).
    pub retention_ms: Option<i64>,
    /// Tiered storage (`remote.storage.enable`): sealed segments are
    /// archived, and a segment leaves the local disk only once its archive
    /// is recorded ([`Log::set_archived_end`]) and it is beyond the local
    /// bounds below.
    pub remote_storage: bool,
    /// Record search (`ringlog.search.enable`): the shard's indexer
    /// indexes every batch appended to the log. The log itself ignores
    /// it; the shard reads it on each append, so a change applies to the
    /// next batch.
    pub search: bool,
    /// With remote storage, the local age bound (`local.retention.ms`):
    /// -2 follows `retention_ms`, -1 is no bound.
    pub local_retention_ms: i64,
    /// With remote storage, the local size bound (`local.retention.bytes`):
    /// -2 follows `retention_bytes`, -1 is no bound.
    pub local_retention_bytes: i64,
    /// Bytes between sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Write-behind buffer per log; the largest single disk write.
    pub write_buffer_bytes: usize,
    /// Largest payload accepted (`max.message.bytes`).
    pub max_payload_bytes: usize,
    /// Durability of acknowledged appends.
    pub flush_policy: FlushPolicy,
    /// What a partition log does to produced batches before storing them
    /// (`compression.type`, `message.timestamp.type`,
    /// `message.timestamp.before.max.ms`, `message.timestamp.after.max.ms`;
    /// see [`crate::records::prepare`]). The log itself stores payloads as
    /// given; [`crate::partition::PartitionLog`] applies it.
    pub batch_policy: BatchPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            kind: SegmentKind::Partition,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            remote_storage: false,
            search: true,
            local_retention_ms: Self::LOCAL_FOLLOWS_RETENTION,
            local_retention_bytes: Self::LOCAL_FOLLOWS_RETENTION,
            index_interval_bytes: 16 * 1024,
            write_buffer_bytes: Self::DEFAULT_WRITE_BUFFER_BYTES,
            max_payload_bytes: 1 << 20,
            flush_policy: FlushPolicy::Always,
            batch_policy: BatchPolicy::default(),
        }
    }
}

impl LogConfig {
    /// `local.retention.*` of -2: the local bound is the overall one.
    pub const LOCAL_FOLLOWS_RETENTION: i64 = -2;

    /// The local (age, size) bounds with remote storage, Kafka's -2 and -1
    /// resolved: `None` is no bound.
    pub fn local_retention(&self) -> (Option<i64>, Option<u64>) {
        let ms = match self.local_retention_ms {
            Self::LOCAL_FOLLOWS_RETENTION => self.retention_ms,
            ms => (ms >= 0).then_some(ms),
        };
        let bytes = match self.local_retention_bytes {
            Self::LOCAL_FOLLOWS_RETENTION => self.retention_bytes,
            bytes => u64::try_from(bytes).ok(),
        };
        (ms, bytes)
    }

    /// The default `write_buffer_bytes`: 2 MiB, large enough that one
    /// O_DIRECT write per sync reaches the disk's sequential bandwidth.
    pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 2 << 20;

    /// Checks the relationships the log relies on.
    pub fn validate(&self) -> Result<()> {
        let frame_max = (FRAME_HEADER_BYTES + self.max_payload_bytes) as u64;
        let fail = |why: String| Err(Error::Config(why));
        if self.segment_bytes > u32::MAX as u64 {
            return fail(format!(
                "segment_bytes {} exceeds 4 GiB (index positions are u32)",
                self.segment_bytes
            ));
        }
        if self.segment_bytes < FILE_HEADER_BYTES as u64 + frame_max + FOOTER_FRAME_BYTES as u64 {
            return fail(format!(
                "segment_bytes {} cannot hold one frame of max_payload_bytes {}",
                self.segment_bytes, self.max_payload_bytes
            ));
        }
        if !self.write_buffer_bytes.is_multiple_of(BLOCK_BYTES)
            || (self.write_buffer_bytes as u64)
                < frame_max + FOOTER_FRAME_BYTES as u64 + 2 * BLOCK_BYTES as u64
        {
            return fail(format!(
                "write_buffer_bytes {} must be a multiple of {BLOCK_BYTES} and hold a largest frame ({frame_max} bytes) plus two blocks",
                self.write_buffer_bytes
            ));
        }
        if self.index_interval_bytes == 0 || self.segment_ms <= 0 {
            return fail("index_interval_bytes and segment_ms must be positive".into());
        }
        assert!(self.max_payload_bytes <= self.largest_payload_bytes());
        Ok(())
    }

    /// The largest payload a write buffer of `write_buffer_bytes` holds
    /// (what [`LogConfig::validate`] requires of `max_payload_bytes`): a
    /// frame, a footer frame and two blocks of slack.
    pub(super) fn largest_payload_bytes(&self) -> usize {
        self.write_buffer_bytes
            .saturating_sub(FRAME_HEADER_BYTES + FOOTER_FRAME_BYTES + 2 * BLOCK_BYTES)
    }
}
