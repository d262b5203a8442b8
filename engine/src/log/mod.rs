//! The segmented log: the one storage structure under both partition logs
//! and the metadata log.
//!
//! A log is a directory of segment files named by base offset. The last one
//! is *active* (appended to); the others are *sealed* (immutable, ending in
//! a footer frame that summarises them). Each segment has a sparse offset
//! index and time index beside it.
//!
//! ## Why it is shaped this way
//!
//! * **One owner, no locks on data.** A `Log` lives on one shard's executor
//!   and is used through `&self` from many tasks of that executor; state sits
//!   in a `RefCell` that is never borrowed across an `.await`. The only
//!   "lock" is a one-permit semaphore that orders I/O (flush, sync, roll,
//!   retention), because two overlapping direct writes of the same partial
//!   block could otherwise land out of order.
//! * **Appends never wait for the disk** unless the disk falls behind or
//!   the segment must roll: the frame is copied once into the aligned
//!   write-behind buffer and gets its offset immediately. A full buffer's
//!   whole blocks go to the disk while the next buffer fills (one write in
//!   flight), so copying and writing overlap.
//! * **Group commit.** [`Log::sync_to`] waits for the I/O permit, then
//!   checks whether an fdatasync that finished meanwhile already covered
//!   its offset. If not, one flush + fdatasync covers *every* append made so
//!   far — all the appenders that queued behind the previous sync share it.
//! * **Index blocks reach the disk only after the fdatasync that covers the
//!   frames they point to.** So an index entry found at recovery proves
//!   every frame before its position is durable, and recovery scans only
//!   from the last verifiable index entry to the end of the active segment.
//!   Index entries live in memory and are written as whole blocks at syncs
//!   (the partial block at seal and close), so the index never forces a
//!   data sync and recovery scans at most one index block's worth of data.
//! * **Only the active segment holds non-durable data.** Rolling seals the
//!   old segment with a footer and fdatasync before the new file is created,
//!   so a crash can tear only the tail of the last segment.
//! * **I/O failure poisons the log.** After a failed write or fdatasync the
//!   state of the file is unknown (and a retried fdatasync can report
//!   success for lost pages), so every later call fails with
//!   [`Error::Poisoned`] until the log is reopened and recovered.
//! * **Settings change live, sizes do not.** [`Log::reconfigure`] swaps the
//!   topic-level settings (Kafka AlterConfigs) between two appends; the
//!   write buffer is allocated at open, so its size and everything bounded
//!   by it stay fixed until the log is reopened.
//! * **The log start is a checkpoint, not only a file name.** Retention
//!   deletes whole segments, so the first segment's base offset is the log
//!   start. Kafka DeleteRecords moves the start to any offset; that is made
//!   durable in a small checkpoint file ([`crate::format::encode_log_start`])
//!   before the call returns, and open takes the larger of the two.
//!
//! ## Where the code is
//!
//! One file per job. The [`Log`] type and the state every job shares live
//! here; each other file holds the `impl Log` methods of its job, with the
//! types only that job uses, so it can be read on its own.
//!
//! * `mod.rs`: the [`Log`] type and its state, open, the accessors, live
//!   reconfiguration, stopping (poison), periodic maintenance and close.
//! * `config.rs`: [`LogConfig`] and [`FlushPolicy`], and the size
//!   relationships the other files rely on.
//! * `segment.rs`: one segment in memory (offsets, extent, sparse
//!   indexes) and the names of its files.
//! * `write.rs`: appends: the append line, the write-behind of the buffer
//!   and the index block writes.
//! * `sync.rs`: flush and fdatasync, with group commit.
//! * `roll.rs`: sealing the active segment and creating the next.
//! * `retention.rs`: moving the log start: retention, deletion below an
//!   offset, and DeleteRecords with its checkpoint.
//! * `read.rs`: reads by offset and by timestamp.
//! * `scan.rs`: the sequential frame scanner, shared by recovery and time
//!   lookups, and the segment scans of recovery.
//! * `recovery.rs`: what [`Log::open`] does with the files it finds (the
//!   recovery rules in ARCHITECTURE.md).

mod config;
mod read;
mod recovery;
mod retention;
mod roll;
mod scan;
mod segment;
mod sync;
mod write;

pub use config::{FlushPolicy, LogConfig};
pub use read::{FrameSpan, ReadBatches};
pub use segment::SegmentInfo;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::io::{Storage, StorageFile};
use glommio::sync::Semaphore;
use roll::RollObserver;
use segment::Segment;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use sync::{SyncGate, SyncObserver};
use write::{index_writes, AppendLine, InFlightWrite, Writer};

/// Counters for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Appends accepted.
    pub appends: u64,
    /// Payload bytes accepted.
    pub append_bytes: u64,
    /// fdatasync calls on segment files.
    pub fdatasyncs: u64,
    /// Segment data writes issued.
    pub writes: u64,
    /// Segments rolled.
    pub rolls: u64,
    /// Segments deleted by retention.
    pub segments_deleted: u64,
}

struct State<F: StorageFile> {
    segments: BTreeMap<u64, Segment<F>>,
    writer: Option<Writer<F>>,
    next_offset: u64,
    written_offset: u64,
    durable_offset: u64,
    /// The high watermark never goes below this: [`Log::reconfigure`]
    /// raises it to the high watermark in force before the change, so
    /// switching from an interval policy (written offset) to `Always`
    /// (durable offset) does not take back offsets readers were shown.
    high_watermark_floor: u64,
    log_start_offset: u64,
    last_sync_ms: i64,
    poisoned: bool,
    stats: LogStats,
}

impl<F: StorageFile> State<F> {
    fn active(&self) -> &Segment<F> {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment<F> {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }
    fn writer(&mut self) -> &mut Writer<F> {
        self.writer.as_mut().expect("active segment has a writer")
    }
}

/// One segmented log. See the module docs for the design.
pub struct Log<S: Storage> {
    storage: S,
    dir: PathBuf,
    /// The settings in force. [`Log::reconfigure`] replaces them, so every
    /// use reads them through a short borrow, never held across an `.await`.
    config: RefCell<LogConfig>,
    /// Frame payload lengths above this are corrupt when reading and
    /// recovering. It is what the write buffer can hold, not
    /// `max_payload_bytes`: that limit applies to new appends, and lowering
    /// it (live or between restarts) must not make the larger frames
    /// already written look corrupt. Fixed because the buffer size is.
    frame_payload_max: usize,
    clock: Clock,
    io_permit: Semaphore,
    /// Set while a roll seals the active segment and creates the next:
    /// appends wait for it (see `try_append`).
    rolling: Cell<bool>,
    append_line: AppendLine,
    sync_gate: SyncGate,
    writes_in_flight: RefCell<VecDeque<InFlightWrite>>,
    state: RefCell<State<S::File>>,
    sync_observer: RefCell<Option<SyncObserver>>,
    roll_observer: RefCell<Option<RollObserver>>,
    /// With remote storage, offsets below this are archived and recorded:
    /// only segments ending at or below it may leave the local disk.
    archived_end: Cell<u64>,
}

/// The high watermark of `st` under `policy` (see [`Log::high_watermark`]).
fn high_watermark_of<F: StorageFile>(st: &State<F>, policy: FlushPolicy) -> u64 {
    let by_policy = match policy {
        FlushPolicy::Always => st.durable_offset,
        FlushPolicy::IntervalMs(_) => st.written_offset.max(st.durable_offset),
    };
    by_policy.max(st.high_watermark_floor)
}

impl<S: Storage> Log<S> {
    /// Opens (recovering) or creates the log in `dir`.
    ///
    /// Recovery reads the header, footer and index files of every segment,
    /// and scans frames only from the last verified index entry of the
    /// active segment to its end. A torn or zero-padded tail is truncated; a
    /// bad frame followed by a valid one is corruption and fails the open
    /// instead of dropping the valid data after it.
    pub async fn open(
        storage: S,
        dir: impl Into<PathBuf>,
        config: LogConfig,
        clock: Clock,
    ) -> Result<Self> {
        config.validate()?;
        let dir = dir.into();
        storage
            .create_dir_all(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
        let frame_payload_max = config.largest_payload_bytes();
        let log = Log {
            storage,
            dir,
            config: RefCell::new(config),
            frame_payload_max,
            clock,
            io_permit: Semaphore::new(1),
            rolling: Cell::new(false),
            append_line: AppendLine::default(),
            sync_gate: SyncGate::default(),
            writes_in_flight: RefCell::new(VecDeque::new()),
            state: RefCell::new(State {
                segments: BTreeMap::new(),
                writer: None,
                next_offset: 0,
                written_offset: 0,
                durable_offset: 0,
                high_watermark_floor: 0,
                log_start_offset: 0,
                last_sync_ms: 0,
                poisoned: false,
                stats: LogStats::default(),
            }),
            sync_observer: RefCell::new(None),
            roll_observer: RefCell::new(None),
            archived_end: Cell::new(0),
        };
        log.recover().await?;
        Ok(log)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force (a copy: [`Log::reconfigure`] may
    /// replace it at any time).
    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Changes the settings of the live log (Kafka AlterConfigs on a
    /// topic). They apply from the next operation that reads them: a
    /// smaller `segment_bytes` or `segment_ms` rolls at the next append or
    /// [`Log::maintain`], shorter retention deletes at the next
    /// [`Log::maintain`] / [`Log::enforce_retention`], a new
    /// `max_payload_bytes` bounds the next append (batches already written
    /// stay readable), and a new flush policy governs the next
    /// acknowledgement.
    ///
    /// Refused with [`Error::Config`], changing nothing, when the new
    /// settings are invalid ([`LogConfig::validate`]) or cannot apply to an
    /// open log: a different `kind` (every segment records it), a different
    /// `write_buffer_bytes` (the buffer holding the active segment's tail
    /// is allocated at open), or a `max_payload_bytes` the existing write
    /// buffer cannot hold.
    pub fn reconfigure(&self, config: LogConfig) -> Result<()> {
        let current = self.config();
        if config.kind != current.kind {
            return Err(Error::Config(format!(
                "kind cannot change on an open log ({:?} -> {:?})",
                current.kind, config.kind
            )));
        }
        if config.write_buffer_bytes != current.write_buffer_bytes {
            return Err(Error::Config(format!(
                "write_buffer_bytes cannot change on an open log ({} -> {}); it applies when the log is reopened",
                current.write_buffer_bytes, config.write_buffer_bytes
            )));
        }
        if config.max_payload_bytes > current.largest_payload_bytes() {
            return Err(Error::Config(format!(
                "max_payload_bytes {} does not fit the write buffer of this open log ({} bytes hold payloads of at most {} bytes)",
                config.max_payload_bytes,
                current.write_buffer_bytes,
                current.largest_payload_bytes()
            )));
        }
        config.validate()?;
        {
            let mut st = self.state.borrow_mut();
            let floor = high_watermark_of(&st, current.flush_policy);
            st.high_watermark_floor = st.high_watermark_floor.max(floor);
        }
        if config != current {
            tracing::info!(log = %self.dir.display(), ?config, "log reconfigured");
        }
        *self.config.borrow_mut() = config;
        Ok(())
    }

    /// Calls `observer` with the duration of every successful fdatasync of
    /// segment data from now on — each one [`LogStats::fdatasyncs`] counts
    /// (group-commit syncs and the sync that seals a segment). For latency
    /// metrics. It runs on the log's executor right after the sync, with no
    /// borrow of the log held, so it may call the log's accessors; it should
    /// be quick. Replaces an earlier observer.
    pub fn set_sync_observer(&self, observer: Rc<dyn Fn(Duration)>) {
        *self.sync_observer.borrow_mut() = Some(observer);
    }

    /// Calls `observer` after every roll from now on (by size or age, from
    /// an append or [`Log::maintain`]) with the base offset of the new
    /// active segment — the log end at that moment: every segment before
    /// it is sealed and durable, and nothing has been appended to the new
    /// one yet. It runs synchronously on the log's executor with no borrow
    /// of the log held, in the same poll that finished the roll, so state
    /// kept in step with appends describes exactly the offsets below that
    /// base. It cannot await: it should note what to do and leave the I/O
    /// to its owner. Replaces an earlier observer.
    pub fn set_roll_observer(&self, observer: Rc<dyn Fn(u64)>) {
        *self.roll_observer.borrow_mut() = Some(observer);
    }

    /// With remote storage: every offset below `offset` is archived and
    /// the archive recorded, so retention may delete the local segments
    /// that end at or below it (never one above it). Never moves back.
    pub fn set_archived_end(&self, offset: u64) {
        self.archived_end.set(self.archived_end.get().max(offset));
    }

    /// Offset the next append gets (Kafka's log end offset).
    pub fn next_offset(&self) -> u64 {
        self.state.borrow().next_offset
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.state.borrow().log_start_offset
    }

    /// Everything below this offset is on stable storage.
    pub fn durable_offset(&self) -> u64 {
        self.state.borrow().durable_offset
    }

    /// Readers see offsets below this: the durable offset under
    /// [`FlushPolicy::Always`] (a consumer never sees a record a crash could
    /// take back), the written offset under an interval policy.
    ///
    /// It never decreases, even when [`Log::reconfigure`] switches an
    /// interval policy to `Always`: offsets already shown stay visible.
    pub fn high_watermark(&self) -> u64 {
        let policy = self.config.borrow().flush_policy;
        high_watermark_of(&self.state.borrow(), policy)
    }

    /// Counters.
    pub fn stats(&self) -> LogStats {
        self.state.borrow().stats
    }

    /// Every segment, oldest first; the last is active.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.state
            .borrow()
            .segments
            .values()
            .map(Segment::info)
            .collect()
    }

    fn check_poisoned(&self, st: &State<S::File>) -> Result<()> {
        if st.poisoned {
            return Err(Error::Poisoned {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Stops the log after an internal invariant broke (see
    /// [`Error::Invariant`]): the ERROR line carries a backtrace, and every
    /// later call answers [`Error::Poisoned`] until the log is reopened.
    fn broken_invariant<T>(&self, what: String) -> Result<T> {
        self.stop();
        tracing::error!(
            log = %self.dir.display(),
            what = %what,
            backtrace = %std::backtrace::Backtrace::force_capture(),
            "internal invariant broken; log stopped until reopened"
        );
        Err(Error::Invariant {
            path: self.dir.clone(),
            what,
        })
    }

    /// Stops the log: every later call answers [`Error::Poisoned`] until
    /// it is reopened (and recovered). For the owner, after a panic inside
    /// one of this log's calls left its state unknown.
    pub fn stop(&self) {
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.poisoned = true;
        }
    }

    fn poison<T>(&self, path: &Path, err: std::io::Error) -> Result<T> {
        self.state.borrow_mut().poisoned = true;
        tracing::error!(log = %self.dir.display(), file = %path.display(), error = %err, "I/O failure; log stopped until reopened");
        Err(Error::io(path, err))
    }

    /// Time-driven work, to be called periodically by the owner: seals an
    /// idle active segment older than `segment.ms` (so later stages see it
    /// sealed even without new appends), syncs under an interval flush
    /// policy, and applies retention.
    pub async fn maintain(&self) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let (roll, sync) = {
            let st = self.state.borrow();
            self.check_poisoned(&st)?;
            let roll = self.needs_roll(st.active(), 0, now_ms);
            let policy = self.config.borrow().flush_policy;
            let sync = match policy {
                FlushPolicy::IntervalMs(ms) => {
                    st.durable_offset < st.next_offset && now_ms - st.last_sync_ms >= ms as i64
                }
                FlushPolicy::Always => false,
            };
            (roll, sync)
        };
        if roll {
            let _permit = self
                .io_permit
                .acquire_permit(1)
                .await
                .expect("permit never closed");
            self.roll_locked(0).await?;
        }
        if sync {
            self.sync().await?;
        }
        self.enforce_retention().await
    }

    /// Flushes and fdatasyncs everything, writes the active segment's
    /// index tails (so a clean restart scans nothing), then closes the files.
    pub async fn close(self) -> Result<()> {
        if !self.state.borrow().poisoned {
            self.sync().await?;
            let tails = {
                let st = self.state.borrow();
                index_writes(
                    st.writer.as_ref().expect("active writer"),
                    st.active(),
                    false,
                )
            };
            self.write_index_blocks(tails, true).await?;
        }
        let st = self.state.into_inner();
        let writer_files = st
            .writer
            .into_iter()
            .flat_map(|w| [w.offset_index.file, w.time_index.file]);
        let files: Vec<Rc<S::File>> = st
            .segments
            .into_values()
            .map(|s| s.file)
            .chain(writer_files)
            .collect();
        for file in files {
            if let Ok(file) = Rc::try_unwrap(file) {
                file.close().await.map_err(|e| Error::io(&self.dir, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::MemStorage;

    #[test]
    fn high_watermark_never_decreases_when_the_flush_policy_changes() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let interval = LogConfig {
                    flush_policy: FlushPolicy::IntervalMs(1 << 40),
                    segment_bytes: 64 * 1024,
                    write_buffer_bytes: 64 * 1024,
                    max_payload_bytes: 1024,
                    ..LogConfig::default()
                };
                let log = Log::open(MemStorage::new(), "/l", interval.clone(), Clock::System)
                    .await
                    .unwrap();
                for ts in 0..4 {
                    log.append_with(10, 1, ts, |dst, _| dst.fill(7))
                        .await
                        .unwrap();
                }
                {
                    // Written without an fdatasync, as a write-behind of
                    // less than a block does: visible under the interval policy.
                    let _permit = log.io_permit.acquire_permit(1).await.unwrap();
                    log.flush_locked(false).await.unwrap();
                }
                assert_eq!((log.durable_offset(), log.high_watermark()), (0, 4));
                log.reconfigure(LogConfig {
                    flush_policy: FlushPolicy::Always,
                    ..interval
                })
                .unwrap();
                assert_eq!(log.high_watermark(), 4, "offsets shown stay shown");
                assert_eq!(log.read(0, 1 << 20).await.unwrap().next_offset(), Some(4));
                // Under Always, the next append becomes visible once durable.
                log.append_with(10, 1, 4, |dst, _| dst.fill(7))
                    .await
                    .unwrap();
                assert_eq!(log.high_watermark(), 4);
                log.sync().await.unwrap();
                assert_eq!(log.high_watermark(), 5);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
