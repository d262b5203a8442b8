//! A partition log: a [`Log`] whose payloads are Kafka RecordBatch v2
//! blocks, stored as produced (any codec) except for the base offset,
//! which the log assigns, and what the topic's
//! [`BatchPolicy`](crate::records::BatchPolicy) changes
//! (`compression.type`, LogAppendTime; [`crate::records::prepare`]) —
//! plus the idempotent producer state of the partition
//! ([`crate::producer`]).
//!
//! ## Copy once on the fast path
//!
//! With the default policy a batch is checked (header, CRC-32C), then
//! copied once, straight from the request buffer into the log's write
//! buffer, with its base offset written there. A LogAppendTime patch is
//! written into that same copy (its CRC computed beforehand, without a
//! copy). Only a recompression builds a new batch, which is then copied
//! into the write buffer like a produced one. Producer id, epoch and
//! sequence survive every rewrite, so the idempotent producer rules apply
//! to rewritten batches unchanged.
//!
//! ## Why the producer state lives here, and how it stays atomic
//!
//! The sequence check and the offset assignment must act as one step: two
//! batches of one producer must not both pass the check against the same
//! state. Glommio tasks interleave at every `.await`, and an append may
//! await (a roll, a full write buffer) before it gets its offset, so an
//! idempotent batch holds a per-partition permit from its check until its
//! append is recorded in the state. Batches without a producer id never
//! take it. The record happens in the same poll that assigned the offset
//! (no `.await` between), so at every suspension point the state covers
//! exactly the batches below the log end — which is what lets a snapshot
//! be taken at any roll without stopping appenders.
//!
//! ## Producer snapshot files, beside the segments
//!
//! `<covered offset, 20 digits>.producers` (format in [`crate::producer`]).
//! The log calls back right after every roll ([`Log::set_roll_observer`]):
//! the state is encoded then, covering exactly the segments sealed (and
//! fdatasynced) so far. The append that caused the roll writes it once its
//! own batch is in (a roll by [`Log::maintain`] leaves it to the next
//! append or [`PartitionLog::close`]): temp file, fdatasync, rename,
//! directory sync, one write at a time, keeping the newest
//! [`PRODUCER_SNAPSHOTS_KEPT`]. Written inline rather than by a spawned
//! task so that what reaches the disk does not depend on scheduling, and
//! the crash tests see the same sequence production does. Close writes
//! one at the log end after the final sync.
//!
//! On open, after the log has recovered: snapshots above the log end are
//! deleted (they describe data a crash took back; left alone they would be
//! trusted once new appends reused those offsets); the newest snapshot that
//! decodes and is not below the log start is loaded (a corrupt one is
//! skipped with a warning naming the file); then the batch headers from its
//! offset to the log end are folded in. Without a usable snapshot the scan
//! starts at the second-to-last segment (or the log start): a producer whose
//! batches all lie before that is unknown, which is accepted — the outcome
//! Kafka gives a producer whose state expired. Snapshots below the log
//! start are never used: batches between them and the start are gone, and
//! a producer's state from before those batches would reject its next
//! sequence as out of order.

use crate::batch::{set_base_offset, BatchView};
use crate::clock::Clock;
use crate::error::{Corruption, Error, Result};
use crate::format::{
    parse_segment_file_name, segment_file_name, SegmentKind, PRODUCER_SNAPSHOT_EXTENSION,
};
use crate::io::{read_whole_file, write_file_atomic, Storage};
use crate::log::{FlushPolicy, Log, LogConfig};
use crate::producer::{
    classify, BatchRecord, ProducerError, ProducerStates, Verdict, PRODUCER_EXPIRATION_MS,
};
use crate::records::{find_record, prepare, FoundRecord, Prepared, TimestampType};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;

/// Producer snapshots kept after writing one: the newest and a fallback
/// in case it rots.
pub const PRODUCER_SNAPSHOTS_KEPT: usize = 2;
/// Segments whose batch headers are scanned when no snapshot is usable.
const SEGMENTS_SCANNED_WITHOUT_SNAPSHOT: usize = 2;
/// Bytes asked of [`Log::read`] per step of the scan.
const SCAN_READ_BYTES: usize = 1 << 20;
/// How often appends look for expired producers (Kafka checks every 10
/// minutes too).
const EXPIRY_CHECK_INTERVAL_MS: i64 = 10 * 60 * 1000;

/// Where an appended batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// A retry of a batch the log already holds (idempotent producer):
    /// nothing was written and the offsets are the original ones.
    pub duplicate: bool,
    /// The append time the batch carries, for a LogAppendTime topic (Kafka
    /// answers it in the Produce response); `None` with CreateTime and for
    /// a duplicate.
    pub log_append_time_ms: Option<i64>,
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The log refused the batch or failed.
    #[error(transparent)]
    Log(#[from] Error),
    /// The idempotent producer rules refused the batch; nothing was written.
    #[error(transparent)]
    Producer(#[from] ProducerError),
}

/// A snapshot image and the offset it covers.
type PendingSnapshot = (u64, Vec<u8>);

/// The producer snapshot files of one partition directory.
struct SnapshotFiles<S: Storage> {
    storage: S,
    dir: PathBuf,
    /// One snapshot write (and prune) at a time.
    permit: Semaphore,
}

impl<S: Storage> SnapshotFiles<S> {
    fn path(&self, covered_offset: u64) -> PathBuf {
        self.dir.join(segment_file_name(
            covered_offset,
            PRODUCER_SNAPSHOT_EXTENSION,
        ))
    }

    /// Covered offsets of the snapshot files present, newest first.
    async fn list(&self) -> Result<Vec<u64>> {
        let names = self
            .storage
            .list_dir(&self.dir)
            .await
            .map_err(|e| Error::io(&self.dir, e))?;
        let mut offsets: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_segment_file_name(n, PRODUCER_SNAPSHOT_EXTENSION))
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        Ok(offsets)
    }

    async fn remove(&self, covered_offset: u64) -> Result<()> {
        let path = self.path(covered_offset);
        match self.storage.remove(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Writes `image` as the snapshot covering `covered_offset`, durably,
    /// then deletes all but the newest [`PRODUCER_SNAPSHOTS_KEPT`].
    async fn write(&self, covered_offset: u64, image: &[u8]) -> Result<()> {
        let _permit = self
            .permit
            .acquire_permit(1)
            .await
            .expect("permit never closed");
        let path = self.path(covered_offset);
        write_file_atomic(&self.storage, &self.dir, &path, image)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let doomed: Vec<u64> = self
            .list()
            .await?
            .into_iter()
            .skip(PRODUCER_SNAPSHOTS_KEPT)
            .collect();
        for &offset in &doomed {
            self.remove(offset).await?;
        }
        if !doomed.is_empty() {
            self.storage
                .sync_dir(&self.dir)
                .await
                .map_err(|e| Error::io(&self.dir, e))?;
        }
        tracing::debug!(file = %path.display(), producers_bytes = image.len(), "producer snapshot written");
        Ok(())
    }
}

/// One topic-partition's log.
pub struct PartitionLog<S: Storage> {
    log: Log<S>,
    clock: Clock,
    producers: Rc<RefCell<ProducerStates>>,
    /// Held by an idempotent batch from its check until its append is
    /// recorded (see the module docs).
    producer_permit: Semaphore,
    snapshots: SnapshotFiles<S>,
    /// The snapshot the last roll encoded, until an append writes it.
    pending_snapshot: Rc<RefCell<Option<PendingSnapshot>>>,
    /// When appends next look for expired producers.
    next_expiry_ms: Cell<i64>,
    /// Frames whose headers open read to rebuild the producer state.
    frames_scanned: u64,
}

impl<S: Storage> PartitionLog<S> {
    /// Opens or creates the partition log in `dir`
    /// (`<data>/topics/<topic>/<partition>`), recovering the log and then
    /// rebuilding the producer state (see the module docs).
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
        let dir = dir.into();
        let log = Log::open(storage.clone(), dir.clone(), config, clock.clone()).await?;
        let snapshots = SnapshotFiles {
            storage,
            dir,
            permit: Semaphore::new(1),
        };
        let now_ms = clock.now_ms();
        let (producers, frames_scanned) = load_producers(&log, &snapshots, now_ms).await?;
        let producers = Rc::new(RefCell::new(producers));
        let pending_snapshot = Rc::new(RefCell::new(None));
        let (observed, pending) = (producers.clone(), pending_snapshot.clone());
        log.set_roll_observer(Rc::new(move |covered_offset| {
            let image = observed.borrow().encode_snapshot(covered_offset);
            // A newer snapshot supersedes one not yet written.
            *pending.borrow_mut() = Some((covered_offset, image));
        }));
        Ok(PartitionLog {
            log,
            clock,
            producers,
            producer_permit: Semaphore::new(1),
            snapshots,
            pending_snapshot,
            next_expiry_ms: Cell::new(now_ms + EXPIRY_CHECK_INTERVAL_MS),
            frames_scanned,
        })
    }

    /// Validates the batch (header, length, CRC-32C, producer rules) and
    /// appends it with a log-assigned base offset, waiting for durability
    /// as the flush policy says — for a duplicate, the durability of the
    /// original. A batch that fails validation is rejected and nothing is
    /// written.
    pub async fn append(&self, batch: &[u8]) -> Result<Appended, AppendError> {
        let appended = self.append_buffered(batch).await?;
        if self.log.config().flush_policy == FlushPolicy::Always {
            self.log.sync_to(appended.last_offset + 1).await?;
        }
        Ok(appended)
    }

    /// Validates and appends like [`PartitionLog::append`] but returns as
    /// soon as the batch is in the write buffer, whatever the flush policy
    /// (Kafka acks=0/1: the leader has it, not yet the disk). The caller
    /// arranges a [`crate::Log::sync`] (or [`crate::Log::sync_to`] the last
    /// offset, also for a duplicate) so readers see it.
    ///
    /// A batch with a producer id goes through the idempotent producer
    /// rules ([`crate::producer`]): a retry of one of the producer's last
    /// batches returns the original offsets with `duplicate` set and
    /// writes nothing; a stale epoch or a sequence gap is
    /// [`AppendError::Producer`].
    ///
    /// The topic's [`BatchPolicy`](crate::records::BatchPolicy) applies
    /// first ([`prepare`]): a record outside the timestamp window refuses
    /// the batch before the producer rules see it, as in Kafka.
    pub async fn append_buffered(&self, batch: &[u8]) -> Result<Appended, AppendError> {
        let view = BatchView::parse(batch).map_err(Error::from)?;
        let producer = classify(&view)?;
        let (policy, max_bytes) = {
            let config = self.log.config();
            (config.batch_policy, config.max_payload_bytes)
        };
        let mut now_ms = None;
        let prepared = prepare(&view, &policy, max_bytes, || {
            *now_ms.insert(self.clock.now_ms())
        })
        .map_err(Error::from)?;
        let log_append_time_ms = match policy.timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => None,
        };
        let Some(producer) = producer else {
            let appended = self
                .append_prepared(&view, &prepared, log_append_time_ms)
                .await?;
            self.write_pending_snapshot().await;
            return Ok(appended);
        };
        let _permit = self
            .producer_permit
            .acquire_permit(1)
            .await
            .expect("permit never closed");
        self.expire_producers();
        let verdict = self.producers.borrow().check(&producer)?;
        if let Verdict::Duplicate(original) = verdict {
            return Ok(duplicate(original));
        }
        let appended = self
            .append_prepared(&view, &prepared, log_append_time_ms)
            .await?;
        // Same poll as the offset assignment: no task sees the log end
        // move without the state following it.
        self.producers.borrow_mut().record(
            &producer,
            appended.base_offset,
            view.offset_count(),
            self.clock.now_ms(),
        );
        self.write_pending_snapshot().await;
        Ok(appended)
    }

    /// Writes the snapshot a roll encoded, if any. A failure costs only a
    /// longer scan at the next open, so it is logged, not returned: the
    /// append it follows has succeeded.
    async fn write_pending_snapshot(&self) {
        let pending = self.pending_snapshot.borrow_mut().take();
        if let Some((covered_offset, image)) = pending {
            if let Err(e) = self.snapshots.write(covered_offset, &image).await {
                tracing::warn!(error = %e, "producer snapshot at roll not written; the next open scans more");
            }
        }
    }

    /// Copies the batch as [`prepare`] decided into the log, once.
    async fn append_prepared(
        &self,
        view: &BatchView<'_>,
        prepared: &Prepared,
        log_append_time_ms: Option<i64>,
    ) -> Result<Appended> {
        let (batch, patch) = match prepared {
            Prepared::AsIs => (view.bytes(), None),
            Prepared::Patched(patch) => (view.bytes(), Some(patch)),
            Prepared::Rewritten { batch, .. } => (&batch[..], None),
        };
        let count = view.offset_count();
        let max_timestamp = prepared.max_timestamp(view);
        let base_offset = self
            .log
            .append_with(batch.len(), count, max_timestamp, |dst, base| {
                dst.copy_from_slice(batch);
                set_base_offset(dst, base);
                if let Some(patch) = patch {
                    patch.apply(dst);
                }
            })
            .await?;
        Ok(Appended {
            base_offset,
            last_offset: base_offset + count as u64 - 1,
            duplicate: false,
            log_append_time_ms,
        })
    }

    /// Kafka's ListOffsets by timestamp: the first record, in offset order,
    /// at or above the log start whose timestamp is at or after
    /// `timestamp_ms`, with that timestamp; `None` when there is none. The
    /// log's time index finds the first batch whose max timestamp reaches
    /// the target; only that batch is decoded ([`find_record`]), and the
    /// next one if none of its records qualifies. A stored batch that does
    /// not decode is [`Error::Corrupt`].
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<FoundRecord>> {
        self.log
            .search_by_timestamp(timestamp_ms, |frame, payload, start| {
                let view = BatchView::parse_unverified(payload)
                    .map_err(|_| Corruption::Malformed("stored record batch header"))?;
                find_record(&view, frame.base_offset, start, timestamp_ms)
                    .map_err(Corruption::BadBatch)
            })
            .await
    }

    fn expire_producers(&self) {
        let now_ms = self.clock.now_ms();
        if now_ms < self.next_expiry_ms.get() {
            return;
        }
        self.next_expiry_ms.set(now_ms + EXPIRY_CHECK_INTERVAL_MS);
        let expired = self
            .producers
            .borrow_mut()
            .expire(now_ms, PRODUCER_EXPIRATION_MS);
        if expired > 0 {
            tracing::debug!(log = %self.log.dir().display(), expired, "idle producers forgotten");
        }
    }

    /// The producer's current epoch and its retained batches, if the
    /// partition tracks it.
    pub fn producer(&self, producer_id: i64) -> Option<(i16, Vec<BatchRecord>)> {
        self.producers.borrow().producer(producer_id)
    }

    /// Producers the partition tracks.
    pub fn producer_count(&self) -> usize {
        self.producers.borrow().len()
    }

    /// Frames whose batch headers open read to rebuild the producer state
    /// after the snapshot it loaded (0 after a clean shutdown).
    pub fn producer_frames_scanned(&self) -> u64 {
        self.frames_scanned
    }

    /// Writes a producer snapshot covering everything appended so far, once
    /// that is durable; returns the covered offset. Rolls and
    /// [`PartitionLog::close`] do this on their own.
    pub async fn snapshot_producers(&self) -> Result<u64> {
        // Encoded in one synchronous step: the state covers exactly the
        // offsets below the log end now.
        let (covered_offset, image) = {
            let covered_offset = self.log.next_offset();
            (
                covered_offset,
                self.producers.borrow().encode_snapshot(covered_offset),
            )
        };
        self.log.sync_to(covered_offset).await?;
        self.snapshots.write(covered_offset, &image).await?;
        Ok(covered_offset)
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

    /// Writes a producer snapshot at the log end (after the final sync),
    /// so a clean restart scans nothing, then closes the log.
    pub async fn close(self) -> Result<()> {
        if let Err(e) = self.snapshot_producers().await {
            tracing::warn!(log = %self.log.dir().display(), error = %e, "producer snapshot at close not written; the next open scans the active segment");
        }
        self.log.close().await
    }
}

fn duplicate(original: BatchRecord) -> Appended {
    Appended {
        base_offset: original.base_offset,
        last_offset: original.last_offset(),
        duplicate: true,
        log_append_time_ms: None,
    }
}

/// Rebuilds the producer state of a freshly recovered log (see the module
/// docs).
async fn load_producers<S: Storage>(
    log: &Log<S>,
    files: &SnapshotFiles<S>,
    now_ms: i64,
) -> Result<(ProducerStates, u64)> {
    let (start, end) = (log.log_start_offset(), log.next_offset());
    let mut loaded = None;
    let mut removed_any = false;
    for offset in files.list().await? {
        let path = files.path(offset);
        if offset > end {
            tracing::warn!(file = %path.display(), log_end = end, "removing a producer snapshot beyond the log end (its data did not survive a crash)");
            files.remove(offset).await?;
            removed_any = true;
            continue;
        }
        if offset < start {
            break;
        }
        let bytes = read_whole_file(&files.storage, &path)
            .await
            .map_err(|e| Error::io(&path, e))?;
        match ProducerStates::decode_snapshot(&bytes) {
            Ok((covered, states)) if covered == offset => {
                loaded = Some((offset, states));
                break;
            }
            Ok((covered, _)) => {
                tracing::warn!(file = %path.display(), covered, "skipping a producer snapshot whose name disagrees with its header");
            }
            Err((at, corruption)) => {
                tracing::warn!(file = %path.display(), at, %corruption, "skipping a corrupt producer snapshot");
            }
        }
    }
    if removed_any {
        files
            .storage
            .sync_dir(&files.dir)
            .await
            .map_err(|e| Error::io(&files.dir, e))?;
    }
    let had_snapshot = loaded.is_some();
    let (from, mut states) = loaded.unwrap_or_else(|| {
        let segments = log.segments();
        let first_scanned = segments
            .len()
            .saturating_sub(SEGMENTS_SCANNED_WITHOUT_SNAPSHOT);
        let base = segments.get(first_scanned).map_or(start, |s| s.base_offset);
        (base.max(start), ProducerStates::new())
    });
    let scanned_frames = fold_batches(log, &mut states, from, now_ms).await?;
    states.expire(now_ms, PRODUCER_EXPIRATION_MS);
    tracing::debug!(log = %log.dir().display(), from, to = end, scanned_frames, producers = states.len(), had_snapshot, "producer state rebuilt");
    if scanned_frames > 0 {
        // The next open starts here instead of scanning the same frames.
        let image = states.encode_snapshot(end);
        if let Err(e) = files.write(end, &image).await {
            tracing::warn!(log = %log.dir().display(), error = %e, "producer snapshot after rebuild not written");
        }
    }
    Ok((states, scanned_frames))
}

/// Folds the producer fields of every batch from `from` to the log end into
/// `states`; returns the frames read. Reads only what the log already
/// verified (frame crc32c), so the batch crc is not checked again.
async fn fold_batches<S: Storage>(
    log: &Log<S>,
    states: &mut ProducerStates,
    from: u64,
    now_ms: i64,
) -> Result<u64> {
    let end = log.next_offset();
    let mut offset = from;
    let mut frames = 0u64;
    // Where the next frame must start: recovery does not scan a sealed
    // segment whose footer and index check out, so the frames read here
    // are checked to follow each other (the first holds `from`) and to end
    // by the log end before the producer state trusts their order.
    let mut expected: Option<u64> = None;
    // Each round reads at least one frame and moves `offset` past it.
    while offset < end {
        let batches = log.read(offset, SCAN_READ_BYTES).await?;
        let Some(next) = batches.next_offset() else {
            return Err(Error::corrupt(
                log.dir(),
                0,
                Corruption::Malformed("partition log ends before its end offset"),
            ));
        };
        assert!(next > offset, "a read moves forward");
        for (frame, payload) in batches.iter() {
            frames += 1;
            let frame_end = frame.base_offset + frame.count as u64;
            let follows = match expected {
                None => frame.base_offset <= from,
                Some(expected) => frame.base_offset == expected,
            };
            if !follows || frame_end > end {
                return Err(Error::corrupt(
                    log.dir(),
                    0,
                    Corruption::OffsetGap {
                        expected: expected.unwrap_or(from),
                        found: frame.base_offset,
                    },
                ));
            }
            expected = Some(frame_end);
            if frame.base_offset < from {
                continue; // straddles the scan start: its producer is unknown or folded
            }
            let producer = BatchView::parse_unverified(payload)
                .ok()
                .and_then(|view| classify(&view).ok().flatten());
            if let Some(producer) = producer {
                states.record(&producer, frame.base_offset, frame.count, now_ms);
            }
        }
        offset = next;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::build_producer_batch;
    use crate::format::{
        encode_frame_header, walk_frames, FrameHeader, FrameRead, FILE_HEADER_BYTES,
        FRAME_HEADER_BYTES,
    };
    use crate::io::mem::MemStorage;
    use std::path::Path;

    /// Found by the segment_recovery fuzz target: frames of a sealed
    /// segment are not scanned at open when its footer and index check
    /// out, so a (checksummed) frame whose base offset goes backwards
    /// reached `ProducerStates::record` out of order and panicked there.
    /// The rebuild now refuses frames that do not follow each other.
    #[test]
    fn producer_rebuild_refuses_frames_out_of_order() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = Path::new("/p");
                let config = LogConfig {
                    segment_bytes: 4096,
                    write_buffer_bytes: 16 * 1024,
                    max_payload_bytes: 1024,
                    ..LogConfig::default()
                };
                let mem = MemStorage::new();
                let log = PartitionLog::open(mem.clone(), dir, config.clone(), Clock::System)
                    .await
                    .unwrap();
                for seq in 0..100 {
                    let batch = build_producer_batch(seq as i64, &[b"v".as_slice()], 7, 0, seq);
                    log.append(&batch).await.unwrap();
                }
                assert!(log.log().segments().len() >= 3);
                let first = log.log().segments()[0].path.clone();
                log.close().await.unwrap();
                // No snapshot: open rebuilds from the last two segments'
                // frames. Make the third frame of the first of them repeat
                // the second one's offset, with a valid crc.
                for path in mem.paths() {
                    if path
                        .extension()
                        .is_some_and(|e| e == PRODUCER_SNAPSHOT_EXTENSION)
                    {
                        mem.remove(&path).await.unwrap();
                    }
                }
                let segments = {
                    let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                        .await
                        .unwrap();
                    log.segments()
                };
                let target = &segments[segments.len() - 2];
                assert_ne!(target.path, first);
                let mut bytes = mem.file_bytes(&target.path).unwrap();
                let (at, header) = walk_frames(&bytes, FILE_HEADER_BYTES, 1 << 20)
                    .filter_map(|(at, found)| match found {
                        FrameRead::Frame(h) => Some((at, h)),
                        _ => None,
                    })
                    .nth(2)
                    .unwrap();
                let forged = FrameHeader {
                    base_offset: target.base_offset + 1,
                    ..header
                };
                let payload = bytes[at + FRAME_HEADER_BYTES..at + header.frame_bytes()].to_vec();
                encode_frame_header(&mut bytes[at..at + FRAME_HEADER_BYTES], &forged, &payload);
                mem.set_file_bytes(&target.path, bytes);
                match PartitionLog::open(mem, dir, config, Clock::System).await {
                    Err(Error::Corrupt {
                        corruption: Corruption::OffsetGap { expected, found },
                        ..
                    }) => assert_eq!(
                        (expected, found),
                        (target.base_offset + 2, target.base_offset + 1)
                    ),
                    Err(other) => panic!("expected an offset gap, got {other}"),
                    Ok(_) => panic!("a partition with frames out of order opened"),
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
