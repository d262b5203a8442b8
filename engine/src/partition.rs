//! A partition log: a [`Log`] whose payloads are Kafka RecordBatch v2
//! blocks, stored exactly as produced (any codec) except for the base
//! offset, which the log assigns.

use crate::batch::{set_base_offset, BatchView};
use crate::clock::Clock;
use crate::error::Result;
use crate::format::SegmentKind;
use crate::io::Storage;
use crate::log::{FlushPolicy, Log, LogConfig};
use std::path::PathBuf;

/// Where an appended batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
}

/// One topic-partition's log.
pub struct PartitionLog<S: Storage> {
    log: Log<S>,
}

impl<S: Storage> PartitionLog<S> {
    /// Opens or creates the partition log in `dir`
    /// (`<data>/topics/<topic>/<partition>`).
    pub async fn open(
        storage: S,
        dir: impl Into<PathBuf>,
        config: LogConfig,
        clock: Clock,
    ) -> Result<Self> {
        let config = LogConfig {
            kind: SegmentKind::Partition,
            ..config
        };
        Ok(PartitionLog {
            log: Log::open(storage, dir, config, clock).await?,
        })
    }

    /// Validates the batch (header, length, CRC-32C) and appends it with a
    /// log-assigned base offset, waiting for durability as the flush policy
    /// says. A batch that fails validation is rejected with
    /// [`crate::Error::InvalidBatch`] and nothing is written.
    pub async fn append(&self, batch: &[u8]) -> Result<Appended> {
        let appended = self.append_buffered(batch).await?;
        if self.log.config().flush_policy == FlushPolicy::Always {
            self.log.sync_to(appended.last_offset + 1).await?;
        }
        Ok(appended)
    }

    /// Validates and appends like [`PartitionLog::append`] but returns as
    /// soon as the batch is in the write buffer, whatever the flush policy
    /// (Kafka acks=0/1: the leader has it, not yet the disk). The caller
    /// arranges a [`crate::Log::sync`] so readers see it.
    pub async fn append_buffered(&self, batch: &[u8]) -> Result<Appended> {
        let view = BatchView::parse(batch)?;
        let count = view.offset_count();
        let base_offset = self
            .log
            .append_with(batch.len(), count, view.max_timestamp(), |dst, base| {
                dst.copy_from_slice(batch);
                set_base_offset(dst, base);
            })
            .await?;
        Ok(Appended {
            base_offset,
            last_offset: base_offset + count as u64 - 1,
        })
    }

    /// Changes the settings of the live log (Kafka AlterConfigs); see
    /// [`Log::reconfigure`]. The kind stays [`SegmentKind::Partition`], as
    /// in [`PartitionLog::open`].
    pub fn reconfigure(&self, config: LogConfig) -> Result<()> {
        self.log.reconfigure(LogConfig {
            kind: SegmentKind::Partition,
            ..config
        })
    }

    /// Kafka DeleteRecords: makes `offset` the log start, durably, and
    /// returns the new log start; see [`Log::delete_records_below`].
    pub async fn delete_records_below(&self, offset: u64) -> Result<u64> {
        self.log.delete_records_below(offset).await
    }

    /// The underlying log (reads, sync, retention, stats, sync observer).
    pub fn log(&self) -> &Log<S> {
        &self.log
    }

    /// Closes the log after a final sync.
    pub async fn close(self) -> Result<()> {
        self.log.close().await
    }
}
