//! Moving the log start: retention by time and size, deletion below an
//! offset (the metadata log after a snapshot), and Kafka DeleteRecords.
//!
//! Why one prefix deletion under the I/O permit serves them all: the
//! permit orders every change of the log start, so a retention pass never
//! overtakes a checkpoint DeleteRecords is writing, and only whole sealed
//! segments go, oldest first, never the active one. DeleteRecords makes
//! the new start durable in its checkpoint before it deletes anything, so
//! a crash leaves the old start or the new one, and recovery finishes the
//! deletions.

use super::segment::{index_path, Segment};
use super::{high_watermark_of, Log};
use crate::error::{Error, Result};
use crate::format::{encode_log_start, LOG_START_FILE_NAME, SEGMENT_FILE_EXTENSIONS};
use crate::io::{write_file_atomic, Storage};

impl<S: Storage> Log<S> {
    /// Deletes whole sealed segments beyond `retention.ms` / `retention.bytes`
    /// and advances the log start offset. The active segment is never
    /// deleted. With remote storage the bounds are the local ones, and a
    /// segment goes only once its archive is recorded (it ends at or below
    /// [`Log::set_archived_end`]'s offset): the archive holds it from then.
    pub async fn enforce_retention(&self) -> Result<()> {
        let (retention_ms, retention_bytes, archived_end) = {
            let config = self.config.borrow();
            if config.remote_storage {
                let (ms, bytes) = config.local_retention();
                (ms, bytes, Some(self.archived_end.get()))
            } else {
                (config.retention_ms, config.retention_bytes, None)
            }
        };
        if retention_ms.is_none() && retention_bytes.is_none() {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        self.delete_prefix(|segment, total_bytes| {
            let archived = archived_end.is_none_or(|end| segment.end_offset <= end);
            let too_old =
                retention_ms.is_some_and(|ms| segment.max_timestamp_ms < now_ms.saturating_sub(ms));
            let too_big =
                retention_bytes.is_some_and(|limit| total_bytes - segment.data_end_bytes >= limit);
            archived && (too_old || too_big)
        })
        .await
    }

    /// Deletes the sealed segments that lie wholly below `offset` (the
    /// metadata log drops what a snapshot covers) and advances the log
    /// start offset to the first remaining segment.
    pub async fn delete_segments_below(&self, offset: u64) -> Result<()> {
        self.delete_prefix(|segment, _| segment.end_offset <= offset)
            .await
    }

    /// Kafka DeleteRecords: advances the log start offset to `offset`, which
    /// may lie anywhere (not only at a segment boundary), and returns the new
    /// log start. Durable when it returns: the start is written to the log
    /// start checkpoint file (atomically replaced, then the directory
    /// synced) before anything else changes, and only then are the sealed
    /// segments wholly below it deleted. The active segment is never
    /// deleted, so records below the start may stay on disk, unreadable.
    ///
    /// An `offset` at or below the current start changes nothing and
    /// returns the current start; one above the high watermark is
    /// [`Error::OffsetOutOfRange`]. Afterwards reads below the start fail
    /// with [`Error::OffsetOutOfRange`] and [`Log::offset_for_timestamp`]
    /// answers at or above it. A failed checkpoint write poisons the log;
    /// a crash before this returns leaves the old or the new start.
    pub async fn delete_records_below(&self, offset: u64) -> Result<u64> {
        let _permit = self
            .io_permit
            .acquire_permit(1)
            .await
            .expect("permit never closed");
        {
            let st = self.state.borrow();
            self.check_poisoned(&st)?;
            let start = st.log_start_offset;
            if offset <= start {
                return Ok(start);
            }
            let high_watermark = high_watermark_of(&st, self.config.borrow().flush_policy);
            if offset > high_watermark {
                return Err(Error::OffsetOutOfRange {
                    offset,
                    start,
                    end: high_watermark,
                });
            }
        }
        self.write_log_start(offset).await?;
        {
            // The permit orders every change of the start (retention too),
            // so nothing moved it while the checkpoint was written.
            let mut st = self.state.borrow_mut();
            assert!(st.log_start_offset < offset && offset <= st.next_offset);
            st.log_start_offset = offset;
        }
        tracing::info!(log = %self.dir.display(), log_start_offset = offset, "records deleted below");
        self.delete_prefix_locked(|segment, _| segment.end_offset <= offset)
            .await?;
        let start = self.log_start_offset();
        assert_eq!(start, offset, "only segments wholly below the start go");
        Ok(start)
    }

    /// Durably replaces the log start checkpoint. Caller holds the I/O
    /// permit (one writer of the temp file at a time).
    pub(super) async fn write_log_start(&self, offset: u64) -> Result<()> {
        let path = self.dir.join(LOG_START_FILE_NAME);
        if let Err(e) =
            write_file_atomic(&self.storage, &self.dir, &path, &encode_log_start(offset)).await
        {
            return self.poison(&path, e);
        }
        Ok(())
    }

    /// Deletes sealed segments from the oldest while `doomed(segment, total
    /// bytes of the log before deleting it)` holds.
    pub(super) async fn delete_prefix(
        &self,
        doomed: impl Fn(&Segment<S::File>, u64) -> bool,
    ) -> Result<()> {
        let _permit = self
            .io_permit
            .acquire_permit(1)
            .await
            .expect("permit never closed");
        self.delete_prefix_locked(doomed).await
    }

    /// [`Log::delete_prefix`] for a caller holding the I/O permit.
    async fn delete_prefix_locked(
        &self,
        doomed: impl Fn(&Segment<S::File>, u64) -> bool,
    ) -> Result<()> {
        let (bases, every_sealed) = {
            let st = self.state.borrow();
            self.check_poisoned(&st)?;
            let mut total_bytes: u64 = st.segments.values().map(|s| s.data_end_bytes).sum();
            let mut bases = Vec::new();
            for segment in st.segments.values().filter(|s| s.sealed) {
                if !doomed(segment, total_bytes) {
                    break;
                }
                total_bytes -= segment.data_end_bytes;
                bases.push(segment.base_offset);
            }
            let every_sealed = bases.len() == st.segments.values().filter(|s| s.sealed).count();
            (bases, every_sealed)
        };
        if bases.is_empty() {
            return Ok(());
        }
        if every_sealed {
            // Only the active segment will be left, and its file may hold
            // nothing durable yet: after a roll its header reaches the disk
            // with the first flush, and recovery removes a blank last
            // segment. With no segment before it, the log end would be lost
            // and offsets reused. So make it durable first (an extra
            // fdatasync, only when everything sealed goes).
            self.flush_locked(true).await?;
        }
        let victims: Vec<Segment<S::File>> = {
            let mut st = self.state.borrow_mut();
            let victims: Vec<_> = bases.iter().filter_map(|b| st.segments.remove(b)).collect();
            assert_eq!(
                victims.len(),
                bases.len(),
                "the I/O permit keeps sealed segments"
            );
            if let Some(first) = st.segments.values().next() {
                st.log_start_offset = st.log_start_offset.max(first.base_offset);
            }
            st.stats.segments_deleted += victims.len() as u64;
            victims
        };
        for segment in victims {
            tracing::debug!(log = %self.dir.display(), base_offset = segment.base_offset, "deleting segment");
            for extension in SEGMENT_FILE_EXTENSIONS {
                let path = index_path(&self.dir, segment.base_offset, extension);
                if let Err(e) = self.storage.remove(&path).await {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return self.poison(&path, e);
                    }
                }
            }
        }
        if let Err(e) = self.storage.sync_dir(&self.dir).await {
            return self.poison(&self.dir.clone(), e);
        }
        Ok(())
    }
}
