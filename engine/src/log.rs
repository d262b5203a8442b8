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

use crate::appender::{Appender, PendingWrite};
use crate::clock::Clock;
use crate::error::{Corruption, Error, Result};
use crate::format::{
    decode_footer, decode_index_header, decode_offset_entries, decode_segment_header,
    decode_time_entries, encode_footer, encode_frame_header, encode_index_header,
    encode_offset_entry, encode_segment_header, encode_time_entry, parse_segment_file_name,
    read_frame, segment_file_name, FrameHeader, FrameRead, OffsetEntry, SegmentFooter,
    SegmentHeader, SegmentKind, TimeEntry, FILE_HEADER_BYTES, FLAG_FOOTER, FOOTER_PAYLOAD_BYTES,
    FRAME_HEADER_BYTES, OFFSET_ENTRY_BYTES, OFFSET_INDEX_MAGIC, OFFSET_MAX, TIME_ENTRY_BYTES,
    TIME_INDEX_MAGIC,
};
use crate::format::{decode_log_start, encode_log_start, LOG_START_FILE_NAME};
use crate::io::{
    align_down, align_up, read_whole_file, write_file_atomic, OpenMode, Storage, StorageFile,
    BLOCK_BYTES, TMP_SUFFIX,
};
use crate::records::BatchPolicy;
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

const LOG_EXTENSION: &str = "log";
const OFFSET_INDEX_EXTENSION: &str = "index";
const TIME_INDEX_EXTENSION: &str = "timeindex";
const FOOTER_FRAME_BYTES: usize = FRAME_HEADER_BYTES + FOOTER_PAYLOAD_BYTES;
/// Bytes read per step when scanning frames.
const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// How many index entries recovery tries to verify (newest first) before
/// giving up on the index and scanning the whole segment.
const INDEX_VERIFY_TRIES_MAX: usize = 16;
/// Upper bound of I/O steps of one append at the head of the
/// `AppendLine`, which holds the I/O permit throughout: a roll leaves an
/// empty buffer in a new segment; a flush leaves less than one block
/// buffered, and [`LogConfig::validate`] makes the buffer hold a largest
/// frame plus a footer plus two blocks; a roll may follow a flush when
/// `segment.ms` passes meanwhile. More means a broken invariant, not load.
const APPEND_IO_STEPS_MAX: usize = 3;
/// Upper bound of rounds in [`Log::sync_to`] (see there).
const SYNC_ATTEMPTS_MAX: usize = 5;
/// Data writes handed to the disk and not yet awaited, besides the buffer
/// being filled: one keeps the disk busy while the next buffer fills, and
/// bounds the memory of a log to three write buffers.
const WRITES_IN_FLIGHT_MAX: usize = 1;

/// When acknowledged appends become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every acknowledged append waits for an fdatasync (shared by group
    /// commit). Nothing acknowledged is lost in a crash.
    Always,
    /// Appends are acknowledged when buffered; [`Log::maintain`] flushes and
    /// fdatasyncs when this many ms have passed since the last sync. A crash
    /// can lose up to that window of acknowledged data — chosen by the user.
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
            index_interval_bytes: 16 * 1024,
            write_buffer_bytes: Self::DEFAULT_WRITE_BUFFER_BYTES,
            max_payload_bytes: 1 << 20,
            flush_policy: FlushPolicy::Always,
            batch_policy: BatchPolicy::default(),
        }
    }
}

impl LogConfig {
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
    fn largest_payload_bytes(&self) -> usize {
        self.write_buffer_bytes
            .saturating_sub(FRAME_HEADER_BYTES + FOOTER_FRAME_BYTES + 2 * BLOCK_BYTES)
    }
}

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

/// Read-only facts about one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// First offset.
    pub base_offset: u64,
    /// Next offset after the segment.
    pub end_offset: u64,
    /// Logical size in bytes.
    pub size_bytes: u64,
    /// Largest timestamp (i64::MIN if empty).
    pub max_timestamp_ms: i64,
    /// Sealed (immutable, footer written) or active.
    pub sealed: bool,
    /// The segment file.
    pub path: PathBuf,
}

/// A frame returned by [`Log::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    /// First offset of the payload.
    pub base_offset: u64,
    /// Offsets covered.
    pub count: u32,
    /// Largest timestamp in the payload.
    pub max_timestamp_ms: i64,
    range: Range<usize>,
}

/// Whole frames read from one segment; payloads borrow one read buffer.
pub struct ReadBatches<R> {
    buf: Option<R>,
    frames: Vec<FrameSpan>,
}

impl<R: std::ops::Deref<Target = [u8]>> ReadBatches<R> {
    fn empty() -> Self {
        ReadBatches {
            buf: None,
            frames: Vec::new(),
        }
    }

    /// No frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames with their payloads, in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (&FrameSpan, &[u8])> {
        self.frames.iter().map(|f| {
            let buf = self.buf.as_ref().expect("frames imply a buffer");
            (f, &buf[f.range.clone()])
        })
    }

    /// Offset after the last frame, if any.
    pub fn next_offset(&self) -> Option<u64> {
        self.frames.last().map(|f| f.base_offset + f.count as u64)
    }

    /// Sum of payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.frames.iter().map(|f| f.range.len()).sum()
    }
}

struct Segment<F> {
    base_offset: u64,
    file: Rc<F>,
    path: PathBuf,
    created_ms: i64,
    end_offset: u64,
    /// Logical end of data, excluding the footer frame.
    data_end_bytes: u64,
    max_timestamp_ms: i64,
    offset_index: Vec<OffsetEntry>,
    time_index: Vec<TimeEntry>,
    sealed: bool,
}

impl<F> Segment<F> {
    fn has_data(&self) -> bool {
        self.end_offset > self.base_offset
    }

    /// File position to start scanning for `offset`.
    fn position_for_offset(&self, offset: u64) -> u64 {
        let relative = offset.saturating_sub(self.base_offset);
        match self
            .offset_index
            .partition_point(|e| e.relative_offset as u64 <= relative)
        {
            0 => FILE_HEADER_BYTES as u64,
            i => self.offset_index[i - 1].position as u64,
        }
    }

    /// File position to start scanning for the first timestamp >= `ts`.
    fn position_for_timestamp(&self, timestamp_ms: i64) -> u64 {
        match self
            .time_index
            .partition_point(|e| e.max_timestamp_ms < timestamp_ms)
        {
            0 => FILE_HEADER_BYTES as u64,
            i => self.time_index[i - 1].position as u64,
        }
    }

    fn info(&self) -> SegmentInfo {
        SegmentInfo {
            base_offset: self.base_offset,
            end_offset: self.end_offset,
            size_bytes: self.data_end_bytes,
            max_timestamp_ms: self.max_timestamp_ms,
            sealed: self.sealed,
            path: self.path.clone(),
        }
    }
}

/// An index file of the active segment. Its entries live in the segment
/// (`Segment::offset_index` / `time_index`); this tracks how many of them are
/// on disk. Index writes regenerate whole blocks from memory, so there is no
/// buffer to fill up and no index write ever forces a data sync.
struct IndexWriter<F: StorageFile> {
    file: Rc<F>,
    magic: [u8; 8],
    entry_bytes: usize,
    written_entries: usize,
}

/// The writers of the active segment.
struct Writer<F: StorageFile> {
    data: Appender<F>,
    offset_index: IndexWriter<F>,
    time_index: IndexWriter<F>,
    bytes_since_index: u64,
}

/// Builds the write that puts index entries `written..upto` on disk.
///
/// Entries follow the 64-byte header back to back; because 64, 8 and 16
/// all divide 4096, block boundaries fall between entries — e.g. time index
/// block 1 starts at byte 4096 = 64 + 252 x 16, with entry 252. The write
/// starts at the block holding entry `written` (rewriting its already
/// written prefix with the same bytes, which is safe as for data) and ends
/// at the last whole block, or, with `whole_blocks_only` false, at the
/// block holding the end, zero-padded. Returns the write and the number of
/// entries it puts fully on disk.
fn index_write<F: StorageFile>(
    index: &IndexWriter<F>,
    base_offset: u64,
    upto: usize,
    whole_blocks_only: bool,
    encode: impl Fn(usize, &mut [u8]),
) -> Option<(PendingWrite<F::Buf>, usize)> {
    let e = index.entry_bytes;
    assert!(BLOCK_BYTES.is_multiple_of(e) && FILE_HEADER_BYTES.is_multiple_of(e));
    let end = (FILE_HEADER_BYTES + upto * e) as u64;
    let start = align_down((FILE_HEADER_BYTES + index.written_entries * e) as u64);
    let write_end = if whole_blocks_only {
        align_down(end)
    } else {
        align_up(end)
    };
    if write_end <= start || (whole_blocks_only && index.written_entries == upto) {
        return None;
    }
    let mut buf = index.file.alloc((write_end - start) as usize);
    let bytes = crate::io::IoBuf::as_mut_slice(&mut buf);
    let first = (start.max(FILE_HEADER_BYTES as u64) as usize - FILE_HEADER_BYTES) / e;
    let last = upto.min((write_end as usize - FILE_HEADER_BYTES) / e);
    if start == 0 {
        bytes[..FILE_HEADER_BYTES].copy_from_slice(&encode_index_header(index.magic, base_offset));
    }
    for i in first..last {
        let at = FILE_HEADER_BYTES + i * e - start as usize;
        encode(i, &mut bytes[at..at + e]);
    }
    let data_end = FILE_HEADER_BYTES + last * e - start as usize;
    bytes[data_end..].fill(0);
    Some((PendingWrite { buf, pos: start }, last))
}

/// The index writes of the active segment up to its current entries.
fn index_writes<F: StorageFile>(
    writer: &Writer<F>,
    segment: &Segment<F>,
    whole_blocks_only: bool,
) -> Vec<IndexWrite<F>> {
    let offsets = &segment.offset_index;
    let times = &segment.time_index;
    let base = segment.base_offset;
    let offset_write = index_write(
        &writer.offset_index,
        base,
        offsets.len(),
        whole_blocks_only,
        |i, out| out.copy_from_slice(&encode_offset_entry(&offsets[i])),
    );
    let time_write = index_write(
        &writer.time_index,
        base,
        times.len(),
        whole_blocks_only,
        |i, out| out.copy_from_slice(&encode_time_entry(&times[i])),
    );
    [
        (IndexKind::Offset, offset_write),
        (IndexKind::Time, time_write),
    ]
    .into_iter()
    .filter_map(|(kind, w)| {
        w.map(|(write, covered)| IndexWrite {
            kind,
            write,
            covered,
        })
    })
    .collect()
}

#[derive(Clone, Copy)]
enum IndexKind {
    Offset,
    Time,
}

struct IndexWrite<F: StorageFile> {
    kind: IndexKind,
    write: PendingWrite<F::Buf>,
    covered: usize,
}

impl<F: StorageFile> Writer<F> {
    fn index(&mut self, kind: IndexKind) -> &mut IndexWriter<F> {
        match kind {
            IndexKind::Offset => &mut self.offset_index,
            IndexKind::Time => &mut self.time_index,
        }
    }
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

enum NeedIo {
    Roll,
    Flush,
}

/// The appenders waiting for I/O before they can append, first come first
/// served.
///
/// Why a line and not a retry loop: an append that finds the write buffer
/// full (or the segment due to roll) must wait for the disk, and while it
/// waits other tasks of the shard run. If they could append whenever the
/// buffer had room, a large frame could wait behind an endless stream of
/// small ones, and — worse for a log — a request that arrived later would
/// get the lower offset. So once anyone is in line the fast path closes:
/// every later append joins the line behind it. The head of the line holds
/// the I/O permit from its first I/O step to its append, so nobody fills
/// the room its roll or flush made; that bounds its steps (see
/// [`APPEND_IO_STEPS_MAX`]). The line is bounded by the tasks appending to
/// this log, each of which stands in it at most once.
#[derive(Default)]
struct AppendLine {
    next_ticket: Cell<u64>,
    /// Tickets of the appenders in line, in arrival order, with the waker
    /// of each one waiting for its turn.
    waiting: RefCell<VecDeque<(u64, Option<Waker>)>>,
}

impl AppendLine {
    fn is_empty(&self) -> bool {
        self.waiting.borrow().is_empty()
    }

    /// Joins the end of the line.
    fn join(&self) -> PlaceInLine<'_> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        self.waiting.borrow_mut().push_back((ticket, None));
        PlaceInLine { line: self, ticket }
    }
}

/// One appender's place in the [`AppendLine`]. Dropping it (after the
/// append, on error, or when the appending task is cancelled) leaves the
/// line and wakes the next appender.
struct PlaceInLine<'a> {
    line: &'a AppendLine,
    ticket: u64,
}

impl PlaceInLine<'_> {
    /// Resolves when every appender that joined earlier has left.
    async fn turn(&self) {
        poll_fn(|cx| {
            let mut waiting = self.line.waiting.borrow_mut();
            match waiting.iter_mut().position(|(t, _)| *t == self.ticket) {
                Some(0) => Poll::Ready(()),
                Some(at) => {
                    waiting[at].1 = Some(cx.waker().clone());
                    Poll::Pending
                }
                None => unreachable!("a place is in its line until dropped"),
            }
        })
        .await
    }
}

impl Drop for PlaceInLine<'_> {
    fn drop(&mut self) {
        let mut waiting = self.line.waiting.borrow_mut();
        let at = waiting
            .iter()
            .position(|(t, _)| *t == self.ticket)
            .expect("a place is in its line until dropped");
        waiting.remove(at);
        if at == 0 {
            if let Some((_, Some(waker))) = waiting.front_mut().map(|(t, w)| (*t, w.take())) {
                waker.wake();
            }
        }
    }
}

/// Group commit bookkeeping: whether a sync is in flight, and the tasks
/// waiting for it to finish. Waiters are bounded by the number of tasks
/// appending to this log (each waits at most once at a time).
#[derive(Default)]
struct SyncGate {
    in_flight: Cell<bool>,
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl SyncGate {
    /// Resolves when the sync in flight now has finished.
    async fn wait_for_next(&self) {
        let seen = self.generation.get();
        poll_fn(|cx| {
            if self.generation.get() != seen {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Marks a sync in flight; dropping it (on success, error or cancellation)
/// ends it and wakes the waiters.
struct SyncInFlight<'a>(&'a SyncGate);

impl<'a> SyncInFlight<'a> {
    fn start(gate: &'a SyncGate) -> Self {
        assert!(
            !gate.in_flight.replace(true),
            "one sync in flight at a time"
        );
        SyncInFlight(gate)
    }
}

impl Drop for SyncInFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(false);
        self.0.generation.set(self.0.generation.get() + 1);
        for waker in self.0.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

/// Marks a roll under way; dropping it (on success, error or
/// cancellation) ends it.
struct Rolling<'a>(&'a Cell<bool>);

impl<'a> Rolling<'a> {
    fn start(flag: &'a Cell<bool>) -> Self {
        assert!(
            !flag.replace(true),
            "rolls hold the I/O permit: one at a time"
        );
        Rolling(flag)
    }
}

impl Drop for Rolling<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// A data write handed to the ring, awaited later.
type InFlightWrite =
    Pin<Box<dyn Future<Output = std::result::Result<(), (PathBuf, std::io::Error)>>>>;

/// Called with the duration of every successful fdatasync of segment data.
type SyncObserver = Rc<dyn Fn(Duration)>;

/// Called after every roll with the base offset of the new active segment.
type RollObserver = Rc<dyn Fn(u64)>;

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
}

/// The high watermark of `st` under `policy` (see [`Log::high_watermark`]).
fn high_watermark_of<F: StorageFile>(st: &State<F>, policy: FlushPolicy) -> u64 {
    let by_policy = match policy {
        FlushPolicy::Always => st.durable_offset,
        FlushPolicy::IntervalMs(_) => st.written_offset.max(st.durable_offset),
    };
    by_policy.max(st.high_watermark_floor)
}

fn index_path(dir: &Path, base_offset: u64, extension: &str) -> PathBuf {
    dir.join(segment_file_name(base_offset, extension))
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

    /// Appends one payload covering `count` offsets. `fill` writes the
    /// payload into the log's buffer and receives the assigned base offset
    /// (Kafka batches rewrite their base offset there), so the payload is
    /// copied exactly once. Returns the base offset. Not durable yet: see
    /// [`Log::append_acked`] and [`Log::sync_to`].
    pub async fn append_with(
        &self,
        payload_len: usize,
        count: u32,
        max_timestamp_ms: i64,
        fill: impl FnOnce(&mut [u8], u64),
    ) -> Result<u64> {
        #[cfg(feature = "failpoints")]
        if fail::eval("log-append", |victim| victim)
            .flatten()
            .is_some_and(|victim| self.dir.ends_with(victim))
        {
            panic!(
                "failpoint log-append: an internal invariant broken on purpose in {}",
                self.dir.display()
            );
        }
        let max_bytes = self.config.borrow().max_payload_bytes;
        if payload_len > max_bytes {
            return Err(Error::TooLarge {
                len_bytes: payload_len,
                max_bytes,
            });
        }
        assert!(max_bytes <= self.frame_payload_max);
        assert!(count > 0, "a payload covers at least one offset");
        let frame_bytes = FRAME_HEADER_BYTES + payload_len;
        let mut fill = Some(fill);
        if self.append_line.is_empty() {
            let mut st = self.state.borrow_mut();
            self.check_appendable(&st, count)?;
            if let Ok(base_offset) =
                self.try_append(&mut st, frame_bytes, count, max_timestamp_ms, &mut fill)
            {
                return Ok(base_offset);
            }
        }
        // The slow path: wait for our turn. Nobody appends while we are at
        // the head of the line, so room only grows: take the I/O permit
        // only if we still need a step, and keep it until we have appended.
        let place = self.append_line.join();
        place.turn().await;
        let mut permit = None;
        let mut steps = 0;
        loop {
            let need = {
                let mut st = self.state.borrow_mut();
                self.check_appendable(&st, count)?;
                match self.try_append(&mut st, frame_bytes, count, max_timestamp_ms, &mut fill) {
                    Ok(base_offset) => return Ok(base_offset),
                    Err(need) => need,
                }
            };
            if permit.is_none() {
                // Its holder may have made the room meanwhile: look again.
                permit = Some(
                    self.io_permit
                        .acquire_permit(1)
                        .await
                        .expect("permit never closed"),
                );
                continue;
            }
            if steps == APPEND_IO_STEPS_MAX {
                break;
            }
            steps += 1;
            match need {
                NeedIo::Roll => self.roll_locked(frame_bytes).await?,
                NeedIo::Flush => self.write_behind_locked().await?,
            }
        }
        self.broken_invariant(format!(
            "an append of {frame_bytes} bytes found no room after {APPEND_IO_STEPS_MAX} I/O steps with the I/O permit held"
        ))
    }

    /// Appends and, under [`FlushPolicy::Always`], waits until the append is
    /// durable (sharing the fdatasync with concurrent appenders).
    pub async fn append_acked(
        &self,
        payload_len: usize,
        count: u32,
        max_timestamp_ms: i64,
        fill: impl FnOnce(&mut [u8], u64),
    ) -> Result<u64> {
        let base_offset = self
            .append_with(payload_len, count, max_timestamp_ms, fill)
            .await?;
        if self.config.borrow().flush_policy == FlushPolicy::Always {
            self.sync_to(base_offset + count as u64).await?;
        }
        Ok(base_offset)
    }

    /// An append of `count` offsets may go ahead: the log is not stopped
    /// and its offsets stay within [`OFFSET_MAX`].
    fn check_appendable(&self, st: &State<S::File>, count: u32) -> Result<()> {
        self.check_poisoned(st)?;
        if st.next_offset > OFFSET_MAX - count as u64 {
            return Err(Error::OffsetsExhausted {
                path: self.dir.clone(),
                next_offset: st.next_offset,
                count,
            });
        }
        Ok(())
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

    fn needs_roll(&self, active: &Segment<S::File>, frame_bytes: usize, now_ms: i64) -> bool {
        let (segment_bytes, segment_ms) = {
            let config = self.config.borrow();
            (config.segment_bytes, config.segment_ms)
        };
        active.has_data()
            && (active.data_end_bytes + (frame_bytes + FOOTER_FRAME_BYTES) as u64 > segment_bytes
                || now_ms - active.created_ms >= segment_ms)
    }

    fn try_append<G: FnOnce(&mut [u8], u64)>(
        &self,
        st: &mut State<S::File>,
        frame_bytes: usize,
        count: u32,
        max_timestamp_ms: i64,
        fill: &mut Option<G>,
    ) -> Result<u64, NeedIo> {
        let now_ms = self.clock.now_ms();
        // While a roll is under way the active segment is being sealed: its
        // footer is already in the write buffer, and a frame reserved after
        // it would be acknowledged and then cut off with the footer. A
        // smaller frame than the one that forced the roll still "fits", so
        // the size check alone does not keep it out.
        if self.rolling.get() || self.needs_roll(st.active(), frame_bytes, now_ms) {
            return Err(NeedIo::Roll);
        }
        if st.writer().data.room_bytes() < frame_bytes + FOOTER_FRAME_BYTES {
            return Err(NeedIo::Flush);
        }
        let base_offset = st.next_offset;
        let interval = self.config.borrow().index_interval_bytes;
        let (segment_base, segment_max_ts, indexes_empty) = {
            let active = st.active();
            (
                active.base_offset,
                active.max_timestamp_ms,
                active.offset_index.is_empty(),
            )
        };
        let writer = st.writer();
        let position = writer.data.end_bytes();
        let frame = writer.data.reserve(frame_bytes);
        let (header_bytes, payload) = frame.split_at_mut(FRAME_HEADER_BYTES);
        (fill.take().expect("fill used once"))(payload, base_offset);
        let header = FrameHeader {
            payload_len: (frame_bytes - FRAME_HEADER_BYTES) as u32,
            base_offset,
            max_timestamp_ms,
            count,
            flags: 0,
        };
        encode_frame_header(header_bytes, &header, payload);
        let index_now = indexes_empty || writer.bytes_since_index >= interval;
        let new_max_ts = segment_max_ts.max(max_timestamp_ms);
        let relative_offset = (base_offset - segment_base) as u32;
        if index_now {
            writer.bytes_since_index = 0;
        }
        writer.bytes_since_index += frame_bytes as u64;
        let active = st.active_mut();
        if index_now {
            active.offset_index.push(OffsetEntry {
                relative_offset,
                position: position as u32,
            });
            active.time_index.push(TimeEntry {
                max_timestamp_ms: new_max_ts,
                relative_offset,
                position: position as u32,
            });
        }
        active.end_offset += count as u64;
        active.data_end_bytes = position + frame_bytes as u64;
        active.max_timestamp_ms = new_max_ts;
        st.next_offset += count as u64;
        st.stats.appends += 1;
        st.stats.append_bytes += (frame_bytes - FRAME_HEADER_BYTES) as u64;
        Ok(base_offset)
    }

    /// Makes every append so far durable.
    pub async fn sync(&self) -> Result<()> {
        let target = self.next_offset();
        self.sync_to(target).await
    }

    /// Makes offsets below `offset` durable, with group commit.
    ///
    /// At most one sync is in flight. A caller that finds one waits for it
    /// to finish (on the sync gate, not on the I/O permit) and returns if it
    /// covered `offset`; otherwise it starts the next sync, which covers
    /// every append made so far. Waiting on the gate rather than queueing on
    /// the permit matters: glommio's semaphore lets a running task take a
    /// free permit ahead of woken waiters, so an appender that just got its
    /// ack could otherwise sync alone again and again while waiters whose
    /// data is already durable starve behind it.
    pub async fn sync_to(&self, offset: u64) -> Result<()> {
        // Normally a sync that started before `offset` was appended, then
        // one that started after it: at most two waits, one yield, and our
        // own sync; past the rounds, a sync of our own.
        let mut yielded = false;
        for _ in 0..SYNC_ATTEMPTS_MAX {
            if self.durable_offset() >= offset {
                return Ok(());
            }
            self.check_poisoned(&self.state.borrow())?;
            if self.sync_gate.in_flight.get() {
                self.sync_gate.wait_for_next().await;
                continue;
            }
            if !yielded {
                // The tasks woken by the last sync are runnable now: let
                // them append first, so this sync covers them too instead
                // of syncing our append alone (measured: 64 appenders went
                // from 32 to 64 appends per fdatasync).
                yielded = true;
                futures_lite::future::yield_now().await;
                continue;
            }
            let _syncing = SyncInFlight::start(&self.sync_gate);
            return self.sync_under_permit(offset).await;
        }
        // The syncs waited for kept missing `offset` (one was cancelled,
        // or cut short because a roll made its own appends durable): sync
        // under the permit without the gate, which is always correct.
        self.sync_under_permit(offset).await
    }

    /// Takes the I/O permit, then flushes and fdatasyncs unless `offset`
    /// became durable while waiting for it.
    async fn sync_under_permit(&self, offset: u64) -> Result<()> {
        let _permit = self
            .io_permit
            .acquire_permit(1)
            .await
            .expect("permit never closed");
        if self.durable_offset() >= offset {
            return Ok(());
        }
        self.flush_locked(true).await
    }

    /// Writes the buffered tail; with `sync`, fdatasyncs it and then writes
    /// the index blocks that point into the now-durable data. Caller holds
    /// the I/O permit.
    async fn flush_locked(&self, sync: bool) -> Result<()> {
        self.drain_writes_locked().await?;
        let (data_write, index_writes, file, path, target_offset) = {
            let mut st = self.state.borrow_mut();
            self.check_poisoned(&st)?;
            let target_offset = st.next_offset;
            let (file, path) = {
                let active = st.active();
                (active.file.clone(), active.path.clone())
            };
            let data_write = st.writer().data.take_write(&file, false);
            // Only a sync advances the index, and only to the entries that
            // exist now: later entries point at frames this sync does not
            // cover, and an index entry on disk vouches for every frame
            // before it.
            let index_writes = if sync {
                let writer = st.writer.as_ref().expect("active writer");
                Some(index_writes(writer, st.active(), true))
            } else {
                None
            };
            (data_write, index_writes, file, path, target_offset)
        };
        if let Some(PendingWrite { buf, pos }) = data_write {
            if let Err(e) = file.write_at(buf, pos).await {
                return self.poison(&path, e);
            }
            self.state.borrow_mut().stats.writes += 1;
        }
        {
            let mut st = self.state.borrow_mut();
            st.written_offset = st.written_offset.max(target_offset);
        }
        let Some(index_writes) = index_writes else {
            return Ok(());
        };
        if let Err(e) = self.sync_segment_data(&file).await {
            return self.poison(&path, e);
        }
        {
            let mut st = self.state.borrow_mut();
            st.durable_offset = st.durable_offset.max(target_offset);
            st.last_sync_ms = self.clock.now_ms();
        }
        self.write_index_blocks(index_writes, false).await
    }

    /// fdatasyncs a segment file: counts it in the stats and reports its
    /// duration to the sync observer.
    async fn sync_segment_data(&self, file: &S::File) -> std::io::Result<()> {
        let started = Instant::now();
        file.fdatasync().await?;
        let elapsed = started.elapsed();
        self.state.borrow_mut().stats.fdatasyncs += 1;
        // Cloned out so the observer runs with no borrow held.
        let observer = self.sync_observer.borrow().clone();
        if let Some(observer) = observer {
            observer(elapsed);
        }
        Ok(())
    }

    /// Writes index blocks of the active segment and records what is on
    /// disk; with `sync`, fdatasyncs the index files too.
    async fn write_index_blocks(&self, writes: Vec<IndexWrite<S::File>>, sync: bool) -> Result<()> {
        for IndexWrite {
            kind,
            write,
            covered,
        } in writes
        {
            let file = self.state.borrow_mut().writer().index(kind).file.clone();
            let written = async {
                file.write_at(write.buf, write.pos).await?;
                if sync {
                    file.fdatasync().await?;
                }
                Ok::<_, std::io::Error>(())
            };
            if let Err(e) = written.await {
                return self.poison(&self.dir.clone(), e);
            }
            self.state.borrow_mut().writer().index(kind).written_entries = covered;
        }
        Ok(())
    }

    /// The write buffer is full: hands its whole blocks to the disk without
    /// waiting (the partial last block stays buffered, so queued writes
    /// never overlap) and waits only for writes beyond
    /// [`WRITES_IN_FLIGHT_MAX`]. Waiting for the *oldest* write is also what
    /// lets glommio's reactor submit the newest one, so one write is always
    /// at the disk while the next buffer fills. Caller holds the I/O permit.
    async fn write_behind_locked(&self) -> Result<()> {
        let (write, file, path) = {
            let mut st = self.state.borrow_mut();
            self.check_poisoned(&st)?;
            let (file, path) = {
                let active = st.active();
                (active.file.clone(), active.path.clone())
            };
            (st.writer().data.take_write(&file, true), file, path)
        };
        let Some(PendingWrite { buf, pos }) = write else {
            // Less than one whole block buffered: write it all.
            return self.flush_locked(false).await;
        };
        let mut in_flight: InFlightWrite =
            Box::pin(async move { file.write_at(buf, pos).await.map_err(|e| (path, e)) });
        // The first poll hands the request to the ring.
        match futures_lite::future::poll_once(&mut in_flight).await {
            Some(Err((path, e))) => return self.poison(&path, e),
            Some(Ok(())) => {}
            None => self.writes_in_flight.borrow_mut().push_back(in_flight),
        }
        self.state.borrow_mut().stats.writes += 1;
        while self.writes_in_flight.borrow().len() > WRITES_IN_FLIGHT_MAX {
            let oldest = self
                .writes_in_flight
                .borrow_mut()
                .pop_front()
                .expect("non-empty");
            if let Err((path, e)) = oldest.await {
                return self.poison(&path, e);
            }
        }
        Ok(())
    }

    /// Waits for every write in flight, oldest first. Caller holds the I/O
    /// permit.
    async fn drain_writes_locked(&self) -> Result<()> {
        for _ in 0..=WRITES_IN_FLIGHT_MAX {
            let oldest = self.writes_in_flight.borrow_mut().pop_front();
            let Some(write) = oldest else {
                return Ok(());
            };
            if let Err((path, e)) = write.await {
                return self.poison(&path, e);
            }
        }
        unreachable!("more than {WRITES_IN_FLIGHT_MAX} writes in flight")
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

    /// Seals the active segment if it still needs rolling and starts a new
    /// one. Caller holds the I/O permit.
    async fn roll_locked(&self, frame_bytes: usize) -> Result<()> {
        let now_ms = self.clock.now_ms();
        if !self.needs_roll(self.state.borrow().active(), frame_bytes, now_ms) {
            return Ok(());
        }
        let rolling = Rolling::start(&self.rolling);
        self.seal_active_locked().await?;
        let next_offset = self.next_offset();
        self.create_active_segment(next_offset, now_ms).await?;
        drop(rolling);
        self.state.borrow_mut().stats.rolls += 1;
        // Cloned out so the observer runs with no borrow held.
        let observer = self.roll_observer.borrow().clone();
        if let Some(observer) = observer {
            observer(next_offset);
        }
        Ok(())
    }

    /// Appends the footer, writes everything, fdatasyncs the segment and
    /// its index files, and trims the file to end at the footer.
    async fn seal_active_locked(&self) -> Result<()> {
        self.drain_writes_locked().await?;
        let (file, path, writes, index_writes, index_files, footer_end) = {
            let mut st = self.state.borrow_mut();
            self.check_poisoned(&st)?;
            let active = st.active();
            let file = active.file.clone();
            let path = active.path.clone();
            let offset_bytes: Vec<u8> = active
                .offset_index
                .iter()
                .flat_map(encode_offset_entry)
                .collect();
            let time_bytes: Vec<u8> = active
                .time_index
                .iter()
                .flat_map(encode_time_entry)
                .collect();
            let footer = SegmentFooter {
                end_offset: active.end_offset,
                data_end_bytes: active.data_end_bytes,
                max_timestamp_ms: active.max_timestamp_ms,
                offset_entries: active.offset_index.len() as u32,
                time_entries: active.time_index.len() as u32,
                offset_index_crc: crc32c::crc32c(&offset_bytes),
                time_index_crc: crc32c::crc32c(&time_bytes),
            };
            let index_files = [
                (FILE_HEADER_BYTES + offset_bytes.len()) as u64,
                (FILE_HEADER_BYTES + time_bytes.len()) as u64,
            ];
            let index_writes =
                index_writes(st.writer.as_ref().expect("active writer"), active, false);
            let writer = st.writer();
            let index_files = [
                (writer.offset_index.file.clone(), index_files[0]),
                (writer.time_index.file.clone(), index_files[1]),
            ];
            let mut writes = Vec::new();
            if writer.data.room_bytes() < FOOTER_FRAME_BYTES {
                writes.extend(writer.data.take_write(&file, false));
            }
            append_footer(&mut writer.data, &footer);
            let footer_end = writer.data.end_bytes();
            writes.extend(writer.data.take_write(&file, false));
            (file, path, writes, index_writes, index_files, footer_end)
        };
        let sealed: std::io::Result<()> = async {
            for PendingWrite { buf, pos } in writes {
                file.write_at(buf, pos).await?;
            }
            file.truncate(footer_end).await?;
            self.sync_segment_data(&file).await
        }
        .await;
        if let Err(e) = sealed {
            return self.poison(&path, e);
        }
        self.write_index_blocks(index_writes, false).await?;
        for (index_file, end_bytes) in index_files {
            let trimmed = async {
                index_file.truncate(end_bytes).await?;
                index_file.fdatasync().await
            };
            if let Err(e) = trimmed.await {
                return self.poison(&path, e);
            }
        }
        let mut st = self.state.borrow_mut();
        st.writer = None;
        let end = st.next_offset;
        st.durable_offset = end;
        st.written_offset = end;
        st.active_mut().sealed = true;
        Ok(())
    }

    /// Creates segment `base_offset` with its index files and makes it the
    /// active segment.
    async fn create_active_segment(&self, base_offset: u64, now_ms: i64) -> Result<()> {
        let path = self.dir.join(segment_file_name(base_offset, LOG_EXTENSION));
        let opened = async {
            let file = self.storage.open(&path, OpenMode::CreateNew).await?;
            let offset_file = self
                .storage
                .open(
                    &index_path(&self.dir, base_offset, OFFSET_INDEX_EXTENSION),
                    OpenMode::CreateNew,
                )
                .await?;
            let time_file = self
                .storage
                .open(
                    &index_path(&self.dir, base_offset, TIME_INDEX_EXTENSION),
                    OpenMode::CreateNew,
                )
                .await?;
            self.storage.sync_dir(&self.dir).await?;
            Ok::<_, std::io::Error>((file, offset_file, time_file))
        }
        .await;
        let (file, offset_file, time_file) = match opened {
            Ok(files) => files,
            Err(e) => return self.poison(&path, e),
        };
        let (kind, write_buffer_bytes) = {
            let config = self.config.borrow();
            (config.kind, config.write_buffer_bytes)
        };
        let header = encode_segment_header(&SegmentHeader {
            kind,
            base_offset,
            created_ms: now_ms,
        });
        let mut data = Appender::new(&file, write_buffer_bytes, 0, &[]);
        data.reserve(FILE_HEADER_BYTES).copy_from_slice(&header);
        let writer = Writer {
            data,
            offset_index: IndexWriter {
                file: Rc::new(offset_file),
                magic: OFFSET_INDEX_MAGIC,
                entry_bytes: OFFSET_ENTRY_BYTES,
                written_entries: 0,
            },
            time_index: IndexWriter {
                file: Rc::new(time_file),
                magic: TIME_INDEX_MAGIC,
                entry_bytes: TIME_ENTRY_BYTES,
                written_entries: 0,
            },
            bytes_since_index: 0,
        };
        let segment = Segment {
            base_offset,
            file: Rc::new(file),
            path,
            created_ms: now_ms,
            end_offset: base_offset,
            data_end_bytes: FILE_HEADER_BYTES as u64,
            max_timestamp_ms: i64::MIN,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            sealed: false,
        };
        let mut st = self.state.borrow_mut();
        st.segments.insert(base_offset, segment);
        st.writer = Some(writer);
        Ok(())
    }

    /// Deletes whole sealed segments beyond `retention.ms` / `retention.bytes`
    /// and advances the log start offset. The active segment is never
    /// deleted.
    pub async fn enforce_retention(&self) -> Result<()> {
        let (retention_ms, retention_bytes) = {
            let config = self.config.borrow();
            (config.retention_ms, config.retention_bytes)
        };
        if retention_ms.is_none() && retention_bytes.is_none() {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        self.delete_prefix(|segment, total_bytes| {
            let too_old = retention_ms.is_some_and(|ms| segment.max_timestamp_ms < now_ms - ms);
            let too_big =
                retention_bytes.is_some_and(|limit| total_bytes - segment.data_end_bytes >= limit);
            too_old || too_big
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
    async fn write_log_start(&self, offset: u64) -> Result<()> {
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
    async fn delete_prefix(&self, doomed: impl Fn(&Segment<S::File>, u64) -> bool) -> Result<()> {
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
            for extension in [LOG_EXTENSION, OFFSET_INDEX_EXTENSION, TIME_INDEX_EXTENSION] {
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

    /// Whole frames starting with the one that holds `offset`, from one
    /// segment, up to `max_bytes` of payload — but always at least one frame
    /// (as Kafka returns an oversized first batch). Empty at the high
    /// watermark; [`Error::OffsetOutOfRange`] outside `[start, hw]`.
    pub async fn read(
        &self,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadBatches<<S::File as StorageFile>::Read>> {
        let (file, path, mut position, segment_end_bytes, high_watermark) = {
            let st = self.state.borrow();
            let high_watermark = self.high_watermark();
            if offset < st.log_start_offset || offset > high_watermark {
                return Err(Error::OffsetOutOfRange {
                    offset,
                    start: st.log_start_offset,
                    end: high_watermark,
                });
            }
            if offset == high_watermark {
                return Ok(ReadBatches::empty());
            }
            let segment = st
                .segments
                .range(..=offset)
                .next_back()
                .map(|(_, s)| s)
                .expect("offset at or above log start lies in a segment");
            (
                segment.file.clone(),
                segment.path.clone(),
                segment.position_for_offset(offset),
                segment.data_end_bytes,
                high_watermark,
            )
        };
        let want_bytes = max_bytes.clamp(1, SCAN_CHUNK_BYTES * 16);
        while position < segment_end_bytes {
            // From the index entry up to `offset` there are at most
            // index_interval_bytes of frames to skip; after it, frame headers
            // add at most one header per 61-byte minimum batch (< 2x).
            let window = 2 * want_bytes as u64
                + self.config.borrow().index_interval_bytes
                + FRAME_HEADER_BYTES as u64;
            let len = (segment_end_bytes - position).min(window) as usize;
            let buf = file
                .read_at(position, len)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let mut cursor = 0usize;
            let mut frames = Vec::new();
            let mut payload_total = 0usize;
            let mut need_bigger = None;
            while cursor < buf.len() {
                match read_frame(&buf[cursor..], self.frame_payload_max) {
                    FrameRead::Frame(h) if h.is_footer() => break,
                    FrameRead::Frame(h) => {
                        if h.base_offset >= high_watermark {
                            break;
                        }
                        let frame_bytes = h.frame_bytes();
                        if h.end_offset() > offset {
                            if !frames.is_empty()
                                && payload_total + h.payload_len as usize > max_bytes
                            {
                                break;
                            }
                            payload_total += h.payload_len as usize;
                            frames.push(FrameSpan {
                                base_offset: h.base_offset,
                                count: h.count,
                                max_timestamp_ms: h.max_timestamp_ms,
                                range: cursor + FRAME_HEADER_BYTES..cursor + frame_bytes,
                            });
                        }
                        cursor += frame_bytes;
                    }
                    FrameRead::End => break,
                    FrameRead::Invalid(Corruption::LengthPastEnd)
                        if position + (buf.len() as u64) < segment_end_bytes =>
                    {
                        need_bigger = Some(cursor);
                        break;
                    }
                    FrameRead::Invalid(corruption) => {
                        return Err(Error::corrupt(&path, position + cursor as u64, corruption));
                    }
                }
            }
            if !frames.is_empty() {
                return Ok(ReadBatches {
                    buf: Some(buf),
                    frames,
                });
            }
            match need_bigger {
                // The wanted frame is larger than this read: read it whole.
                Some(0) => {
                    let declared =
                        u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
                    let grown = FRAME_HEADER_BYTES + declared.min(self.frame_payload_max);
                    if grown <= len {
                        return Err(Error::corrupt(&path, position, Corruption::LengthPastEnd));
                    }
                    let bigger = file
                        .read_at(position, grown)
                        .await
                        .map_err(|e| Error::io(&path, e))?;
                    if let FrameRead::Frame(h) = read_frame(&bigger, self.frame_payload_max) {
                        if h.end_offset() > offset && h.base_offset < high_watermark {
                            return Ok(ReadBatches {
                                buf: Some(bigger),
                                frames: vec![FrameSpan {
                                    base_offset: h.base_offset,
                                    count: h.count,
                                    max_timestamp_ms: h.max_timestamp_ms,
                                    range: FRAME_HEADER_BYTES..h.frame_bytes(),
                                }],
                            });
                        }
                        position += h.frame_bytes() as u64;
                    } else {
                        return Err(Error::corrupt(&path, position, Corruption::LengthPastEnd));
                    }
                }
                Some(at) => position += at as u64,
                None if cursor == 0 => break,
                None => position += cursor as u64,
            }
        }
        Ok(ReadBatches::empty())
    }

    /// The first offset at or after the log start whose frame's max
    /// timestamp is >= `timestamp_ms` (frame granularity: the log does not
    /// look inside payloads), or `None` when every readable frame is older.
    /// A frame that straddles the log start answers with the log start.
    /// [`crate::partition::PartitionLog::offset_for_timestamp`] is the
    /// exact, per-record answer for Kafka batches.
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<u64>> {
        self.search_by_timestamp(timestamp_ms, |frame, _, start| {
            Ok(Some(frame.base_offset.max(start)))
        })
        .await
    }

    /// Offers `inspect` the readable frames that end above the log start
    /// and whose max timestamp is >= `timestamp_ms`, in offset order, with
    /// their payload and the log start, starting at the first frame that
    /// can qualify (time index); returns the first answer it gives, or
    /// `None` when it declines every frame. Its [`Corruption`] becomes an
    /// [`Error::Corrupt`] naming the segment and frame position.
    pub async fn search_by_timestamp<T>(
        &self,
        timestamp_ms: i64,
        mut inspect: impl FnMut(&FrameHeader, &[u8], u64) -> Result<Option<T>, Corruption>,
    ) -> Result<Option<T>> {
        // Normally one segment is scanned. The segment holding the log start
        // can match only below the start, and `inspect` may decline every
        // candidate of a segment; then a later segment answers. Each round
        // moves to a later segment, so this ends.
        let mut after_base: Option<u64> = None;
        loop {
            let (file, path, mut position, end_bytes, high_watermark, start, base) = {
                let st = self.state.borrow();
                let high_watermark = high_watermark_of(&st, self.config.borrow().flush_policy);
                let start = st.log_start_offset;
                let Some(segment) = st.segments.values().find(|s| {
                    after_base.is_none_or(|b| s.base_offset > b)
                        && s.has_data()
                        && s.end_offset > start
                        && s.max_timestamp_ms >= timestamp_ms
                }) else {
                    return Ok(None);
                };
                // Every frame before the time index position is older than
                // `timestamp_ms`, and every frame before the offset index
                // position lies below the start: scan from the later one.
                let position = segment
                    .position_for_timestamp(timestamp_ms)
                    .max(segment.position_for_offset(start));
                (
                    segment.file.clone(),
                    segment.path.clone(),
                    position,
                    segment.data_end_bytes,
                    high_watermark,
                    start,
                    segment.base_offset,
                )
            };
            let mut scanner = Scanner::new(&*file, position, end_bytes, self.frame_payload_max);
            while let Some(item) = scanner.next().await.map_err(|e| Error::io(&path, e))? {
                match item {
                    ScanItem::Frame(h) if h.is_footer() => break,
                    ScanItem::Frame(h) if h.base_offset >= high_watermark => return Ok(None),
                    ScanItem::Frame(h)
                        if h.end_offset() > start && h.max_timestamp_ms >= timestamp_ms =>
                    {
                        match inspect(&h, scanner.last_payload(&h), start) {
                            Ok(Some(found)) => return Ok(Some(found)),
                            Ok(None) => position += h.frame_bytes() as u64,
                            Err(corruption) => {
                                return Err(Error::corrupt(&path, position, corruption))
                            }
                        }
                    }
                    ScanItem::Frame(h) => position += h.frame_bytes() as u64,
                    ScanItem::End => break,
                    ScanItem::Invalid(corruption) => {
                        return Err(Error::corrupt(&path, position, corruption))
                    }
                }
            }
            after_base = Some(base);
        }
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

fn append_footer<F: StorageFile>(data: &mut Appender<F>, footer: &SegmentFooter) {
    let payload = encode_footer(footer);
    let frame = data.reserve(FOOTER_FRAME_BYTES);
    let (header_bytes, body) = frame.split_at_mut(FRAME_HEADER_BYTES);
    body.copy_from_slice(&payload);
    let header = FrameHeader {
        payload_len: FOOTER_PAYLOAD_BYTES as u32,
        base_offset: footer.end_offset,
        max_timestamp_ms: footer.max_timestamp_ms,
        count: 0,
        flags: FLAG_FOOTER,
    };
    encode_frame_header(header_bytes, &header, body);
}

/// What the scanner found at the current position.
#[derive(Debug)]
enum ScanItem {
    Frame(FrameHeader),
    End,
    Invalid(Corruption),
}

/// Reads frames sequentially in large chunks.
struct Scanner<'a, F: StorageFile> {
    file: &'a F,
    pos: u64,
    end: u64,
    max_payload_bytes: usize,
    chunk: Option<F::Read>,
    chunk_pos: u64,
    done: bool,
}

impl<'a, F: StorageFile> Scanner<'a, F> {
    fn new(file: &'a F, pos: u64, end: u64, max_payload_bytes: usize) -> Self {
        Scanner {
            file,
            pos,
            end,
            max_payload_bytes,
            chunk: None,
            chunk_pos: 0,
            done: false,
        }
    }

    fn chunk_slice(&self) -> &[u8] {
        match &self.chunk {
            Some(c)
                if self.pos >= self.chunk_pos && self.pos <= self.chunk_pos + c.len() as u64 =>
            {
                &c[(self.pos - self.chunk_pos) as usize..]
            }
            _ => &[],
        }
    }

    /// The payload of the frame `next` just returned.
    fn last_payload(&self, header: &FrameHeader) -> &[u8] {
        let chunk = self.chunk.as_ref().expect("a frame was read");
        let start =
            (self.pos - header.frame_bytes() as u64 - self.chunk_pos) as usize + FRAME_HEADER_BYTES;
        &chunk[start..start + header.payload_len as usize]
    }

    async fn refill(&mut self, min_len: usize) -> std::io::Result<()> {
        let len = ((self.end - self.pos) as usize).min(SCAN_CHUNK_BYTES.max(min_len));
        self.chunk = Some(self.file.read_at(self.pos, len).await?);
        self.chunk_pos = self.pos;
        Ok(())
    }

    /// The next item; `None` at `end`. After `End` or `Invalid` the scan
    /// stops and `pos` stays at the start of that item.
    async fn next(&mut self) -> std::io::Result<Option<ScanItem>> {
        if self.done || self.pos >= self.end {
            return Ok(None);
        }
        let remaining = (self.end - self.pos) as usize;
        if self.chunk_slice().len() < FRAME_HEADER_BYTES.min(remaining) {
            self.refill(FRAME_HEADER_BYTES).await?;
        }
        let mut found = read_frame(self.chunk_slice(), self.max_payload_bytes);
        if found == FrameRead::Invalid(Corruption::LengthPastEnd)
            && self.chunk_slice().len() < remaining
        {
            let bytes = self.chunk_slice();
            let declared =
                u32::from_le_bytes(bytes[0..4].try_into().expect("header present")) as usize;
            self.refill(FRAME_HEADER_BYTES + declared.min(self.max_payload_bytes))
                .await?;
            found = read_frame(self.chunk_slice(), self.max_payload_bytes);
        }
        Ok(Some(match found {
            FrameRead::Frame(h) => {
                self.pos += h.frame_bytes() as u64;
                ScanItem::Frame(h)
            }
            FrameRead::End => {
                self.done = true;
                ScanItem::End
            }
            FrameRead::Invalid(c) => {
                self.done = true;
                ScanItem::Invalid(c)
            }
        }))
    }
}

/// Recovery: everything `Log::open` does after validating the config.
impl<S: Storage> Log<S> {
    async fn recover(&self) -> Result<()> {
        let names = self
            .storage
            .list_dir(&self.dir)
            .await
            .map_err(|e| Error::io(&self.dir, e))?;
        let mut bases: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_segment_file_name(n, LOG_EXTENSION))
            .collect();
        bases.sort_unstable();
        // Leftovers of interrupted work: temp files, and index files whose
        // segment retention already deleted.
        for name in &names {
            let orphan_index = [OFFSET_INDEX_EXTENSION, TIME_INDEX_EXTENSION]
                .iter()
                .filter_map(|ext| parse_segment_file_name(name, ext))
                .any(|base| bases.binary_search(&base).is_err());
            if name.ends_with(TMP_SUFFIX) || orphan_index {
                let path = self.dir.join(name);
                self.storage
                    .remove(&path)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
            }
        }
        let now_ms = self.clock.now_ms();
        let mut next_base = None;
        let mut blank_base = None;
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let path = self.dir.join(segment_file_name(base, LOG_EXTENSION));
            if base > OFFSET_MAX {
                // Checked on the name because a blank last segment has no
                // header to check, and its name becomes the log end.
                return Err(Error::corrupt(
                    &path,
                    0,
                    Corruption::Malformed("segment name beyond the largest offset"),
                ));
            }
            let file = self
                .storage
                .open(&path, OpenMode::Existing)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let size = file.size().await.map_err(|e| Error::io(&path, e))?;
            let head = file
                .read_at(0, FILE_HEADER_BYTES)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let header = match decode_segment_header(&head) {
                Ok(h) => h,
                Err(corruption) => {
                    if is_last && self.is_zero(&file, 0, size, &path).await? {
                        // A roll that crashed before its first write: the
                        // segment never held acknowledged data.
                        tracing::warn!(file = %path.display(), "removing never-written last segment");
                        drop(file);
                        for extension in
                            [LOG_EXTENSION, OFFSET_INDEX_EXTENSION, TIME_INDEX_EXTENSION]
                        {
                            let p = index_path(&self.dir, base, extension);
                            match self.storage.remove(&p).await {
                                Ok(()) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => return Err(Error::io(&p, e)),
                            }
                        }
                        self.storage
                            .sync_dir(&self.dir)
                            .await
                            .map_err(|e| Error::io(&self.dir, e))?;
                        blank_base = Some(base);
                        continue;
                    }
                    return Err(Error::corrupt(&path, 0, corruption));
                }
            };
            if header.base_offset != base {
                return Err(Error::corrupt(
                    &path,
                    0,
                    Corruption::Malformed("base offset differs from file name"),
                ));
            }
            if header.kind != self.config.borrow().kind {
                return Err(Error::corrupt(
                    &path,
                    0,
                    Corruption::Malformed("segment kind"),
                ));
            }
            if let Some(expected) = next_base {
                if expected != base {
                    return Err(Error::corrupt(
                        &path,
                        0,
                        Corruption::OffsetGap {
                            expected,
                            found: base,
                        },
                    ));
                }
            }
            let footer = self.read_footer(&file, size, &path).await?;
            let segment = match footer {
                Some(footer) => self.open_sealed(file, path, header, footer).await?,
                None if is_last => self.open_active(file, path, header, size).await?,
                None => {
                    // A sealed segment must end in a footer; scan it and
                    // refuse unless every frame is intact.
                    let scanned = self
                        .scan_segment(
                            &file,
                            &path,
                            header.base_offset,
                            FILE_HEADER_BYTES as u64,
                            size,
                            i64::MIN,
                        )
                        .await?;
                    if let Some((at, corruption)) = scanned.invalid {
                        return Err(Error::corrupt(&path, at, corruption));
                    }
                    return Err(Error::corrupt(
                        &path,
                        scanned.data_end_bytes,
                        Corruption::Malformed("sealed segment has no footer"),
                    ));
                }
            };
            next_base = Some(segment.segment.end_offset);
            assert_eq!(segment.segment.sealed, segment.writer.is_none());
            let mut st = self.state.borrow_mut();
            st.segments.insert(base, segment.segment);
            if segment.writer.is_some() {
                st.writer = segment.writer;
            }
        }
        let (needs_active, end_offset) = {
            let st = self.state.borrow();
            match st.segments.values().next_back() {
                Some(s) => (s.sealed, s.end_offset),
                // Retention or DeleteRecords may have deleted every segment
                // before a blank one: its name still says where the log ends.
                None => (true, blank_base.unwrap_or(0)),
            }
        };
        if needs_active {
            self.create_active_segment(end_offset, now_ms).await?;
        }
        let checkpoint = self.read_log_start().await?;
        let (start, clamped) = {
            let mut st = self.state.borrow_mut();
            let end = st.active().end_offset;
            let first_base = st.segments.values().next().map_or(0, |s| s.base_offset);
            assert!(first_base <= end);
            let (start, clamped) = match checkpoint {
                // Only data that was never durable can be missing above a
                // checkpointed start (a torn tail truncated after
                // DeleteRecords under an interval flush policy): the log
                // restarts empty at its end.
                Some(offset) if offset > end => {
                    tracing::warn!(log = %self.dir.display(), checkpoint = offset, log_end = end, "log start checkpoint above the log end; clamping it to the end");
                    (end, true)
                }
                Some(offset) => (offset.max(first_base), false),
                None => (first_base, false),
            };
            st.next_offset = end;
            st.written_offset = end;
            st.durable_offset = end;
            st.log_start_offset = start;
            st.last_sync_ms = now_ms;
            (start, clamped)
        };
        if clamped {
            // Rewritten before any append: left above the end, the stale
            // checkpoint would hide the next appends after a later restart.
            self.write_log_start(start).await?;
        }
        if checkpoint.is_some() {
            // Finish a DeleteRecords that crashed between its checkpoint and
            // its segment deletions.
            self.delete_prefix(|segment, _| segment.end_offset <= start)
                .await?;
        }
        Ok(())
    }

    /// The log start checkpoint, if the file exists.
    async fn read_log_start(&self) -> Result<Option<u64>> {
        let path = self.dir.join(LOG_START_FILE_NAME);
        match read_whole_file(&self.storage, &path).await {
            Ok(bytes) => decode_log_start(&bytes)
                .map(Some)
                .map_err(|(at, corruption)| Error::corrupt(&path, at, corruption)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// True when a file holds nothing but zeros (or nothing) from `from`
    /// to `size`.
    async fn is_zero(&self, file: &S::File, from: u64, size: u64, path: &Path) -> Result<bool> {
        let mut pos = from;
        while pos < size {
            let len = ((size - pos) as usize).min(SCAN_CHUNK_BYTES);
            let bytes = file
                .read_at(pos, len)
                .await
                .map_err(|e| Error::io(path, e))?;
            if bytes.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += len as u64;
        }
        Ok(true)
    }

    /// The footer frame at the very end of the file, if there is a valid one.
    async fn read_footer(
        &self,
        file: &S::File,
        size: u64,
        path: &Path,
    ) -> Result<Option<SegmentFooter>> {
        if size < (FILE_HEADER_BYTES + FOOTER_FRAME_BYTES) as u64 {
            return Ok(None);
        }
        let at = size - FOOTER_FRAME_BYTES as u64;
        let bytes = file
            .read_at(at, FOOTER_FRAME_BYTES)
            .await
            .map_err(|e| Error::io(path, e))?;
        match read_frame(&bytes, FOOTER_PAYLOAD_BYTES) {
            FrameRead::Frame(h) if h.is_footer() => {
                let footer = decode_footer(&bytes[FRAME_HEADER_BYTES..])
                    .map_err(|c| Error::corrupt(path, at, c))?;
                if footer.data_end_bytes != at || footer.end_offset != h.base_offset {
                    return Err(Error::corrupt(
                        path,
                        at,
                        Corruption::Malformed("footer disagrees with its position"),
                    ));
                }
                Ok(Some(footer))
            }
            _ => Ok(None),
        }
    }

    /// Reads an index file's entries if its header is valid for `base`.
    async fn load_index(
        &self,
        base: u64,
        extension: &str,
        magic: [u8; 8],
    ) -> Result<Option<Vec<u8>>> {
        let path = index_path(&self.dir, base, extension);
        let file = match self.storage.open(&path, OpenMode::Existing).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let size = file.size().await.map_err(|e| Error::io(&path, e))?;
        let bytes = file
            .read_at(0, size as usize)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let valid = decode_index_header(&bytes, magic) == Ok(base);
        file.close().await.map_err(|e| Error::io(&path, e))?;
        Ok(valid.then(|| bytes[FILE_HEADER_BYTES..].to_vec()))
    }

    async fn open_sealed(
        &self,
        file: S::File,
        path: PathBuf,
        header: SegmentHeader,
        footer: SegmentFooter,
    ) -> Result<Opened<S::File>> {
        let base = header.base_offset;
        let offset_bytes = self
            .load_index(base, OFFSET_INDEX_EXTENSION, OFFSET_INDEX_MAGIC)
            .await?;
        let time_bytes = self
            .load_index(base, TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC)
            .await?;
        let matches = |bytes: &Option<Vec<u8>>, entries: u32, entry_bytes: usize, crc: u32| {
            bytes.as_ref().is_some_and(|b| {
                let n = entries as usize * entry_bytes;
                b.len() >= n && crc32c::crc32c(&b[..n]) == crc
            })
        };
        let offset_ok = matches(
            &offset_bytes,
            footer.offset_entries,
            OFFSET_ENTRY_BYTES,
            footer.offset_index_crc,
        );
        let time_ok = matches(
            &time_bytes,
            footer.time_entries,
            TIME_ENTRY_BYTES,
            footer.time_index_crc,
        );
        let (offset_index, time_index) = if offset_ok && time_ok {
            let o = offset_bytes.expect("checked");
            let t = time_bytes.expect("checked");
            (
                decode_offset_entries(&o[..footer.offset_entries as usize * OFFSET_ENTRY_BYTES]),
                decode_time_entries(&t[..footer.time_entries as usize * TIME_ENTRY_BYTES]),
            )
        } else {
            // Missing or stale index: rebuild it from the frames (the
            // footer proves the segment complete) and persist it.
            tracing::warn!(file = %path.display(), "rebuilding index of sealed segment");
            let scanned = self
                .scan_segment(
                    &file,
                    &path,
                    base,
                    FILE_HEADER_BYTES as u64,
                    footer.data_end_bytes,
                    i64::MIN,
                )
                .await?;
            if let Some((at, corruption)) = scanned.invalid {
                return Err(Error::corrupt(&path, at, corruption));
            }
            if scanned.end_offset != footer.end_offset {
                return Err(Error::corrupt(
                    &path,
                    footer.data_end_bytes,
                    Corruption::OffsetGap {
                        expected: scanned.end_offset,
                        found: footer.end_offset,
                    },
                ));
            }
            self.write_index_file(
                base,
                OFFSET_INDEX_EXTENSION,
                OFFSET_INDEX_MAGIC,
                &scanned
                    .offset_index
                    .iter()
                    .flat_map(encode_offset_entry)
                    .collect::<Vec<_>>(),
            )
            .await?;
            self.write_index_file(
                base,
                TIME_INDEX_EXTENSION,
                TIME_INDEX_MAGIC,
                &scanned
                    .time_index
                    .iter()
                    .flat_map(encode_time_entry)
                    .collect::<Vec<_>>(),
            )
            .await?;
            (scanned.offset_index, scanned.time_index)
        };
        Ok(Opened {
            writer: None,
            segment: Segment {
                base_offset: base,
                file: Rc::new(file),
                path,
                created_ms: header.created_ms,
                end_offset: footer.end_offset,
                data_end_bytes: footer.data_end_bytes,
                max_timestamp_ms: footer.max_timestamp_ms,
                offset_index,
                time_index,
                sealed: true,
            },
        })
    }

    /// Writes a complete index file atomically (temp file, fdatasync,
    /// rename, directory sync).
    async fn write_index_file(
        &self,
        base: u64,
        extension: &str,
        magic: [u8; 8],
        entries: &[u8],
    ) -> Result<()> {
        let path = index_path(&self.dir, base, extension);
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
        let result = async {
            let file = self.storage.open(&tmp, OpenMode::CreateNew).await?;
            let total = FILE_HEADER_BYTES + entries.len();
            let mut buf = file.alloc(align_up(total as u64) as usize);
            {
                let bytes = crate::io::IoBuf::as_mut_slice(&mut buf);
                bytes[..FILE_HEADER_BYTES].copy_from_slice(&encode_index_header(magic, base));
                bytes[FILE_HEADER_BYTES..total].copy_from_slice(entries);
                bytes[total..].fill(0);
            }
            file.write_at(buf, 0).await?;
            file.truncate(total as u64).await?;
            file.fdatasync().await?;
            file.close().await?;
            self.storage.rename(&tmp, &path).await?;
            self.storage.sync_dir(&self.dir).await
        }
        .await;
        result.map_err(|e| Error::io(&path, e))
    }

    /// Verifies index entries newest-first against the frames they point
    /// at; returns how many leading entries are trustworthy.
    async fn verified_prefix(
        &self,
        file: &S::File,
        path: &Path,
        base: u64,
        positions: &[(u32, u32, i64)],
        size: u64,
    ) -> Result<usize> {
        // Structural check first: positions inside the data, both fields
        // strictly increasing.
        let mut n = positions
            .iter()
            .enumerate()
            .take_while(|(i, (rel, pos, _))| {
                (*pos as u64) >= FILE_HEADER_BYTES as u64
                    && (*pos as u64) < size
                    && (*i == 0 || (positions[i - 1].0 < *rel && positions[i - 1].1 < *pos))
            })
            .count();
        for _ in 0..INDEX_VERIFY_TRIES_MAX {
            if n == 0 {
                return Ok(0);
            }
            let (rel, pos, max_ts) = positions[n - 1];
            let mut scanner = Scanner::new(file, pos as u64, size, self.frame_payload_max);
            if let Some(ScanItem::Frame(h)) =
                scanner.next().await.map_err(|e| Error::io(path, e))?
            {
                if !h.is_footer()
                    && h.base_offset == base + rel as u64
                    && h.max_timestamp_ms <= max_ts
                {
                    return Ok(n);
                }
            }
            n -= 1;
        }
        Ok(0)
    }

    async fn open_active(
        &self,
        file: S::File,
        path: PathBuf,
        header: SegmentHeader,
        size: u64,
    ) -> Result<Opened<S::File>> {
        let base = header.base_offset;
        let offset_entries = self
            .load_index(base, OFFSET_INDEX_EXTENSION, OFFSET_INDEX_MAGIC)
            .await?
            .map(|b| decode_offset_entries(&b))
            .unwrap_or_default();
        let time_entries = self
            .load_index(base, TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC)
            .await?
            .map(|b| decode_time_entries(&b))
            .unwrap_or_default();
        let offset_keys: Vec<_> = offset_entries
            .iter()
            .map(|e| (e.relative_offset, e.position, i64::MAX))
            .collect();
        let time_keys: Vec<_> = time_entries
            .iter()
            .map(|e| (e.relative_offset, e.position, e.max_timestamp_ms))
            .collect();
        let n_offset = self
            .verified_prefix(&file, &path, base, &offset_keys, size)
            .await?;
        let n_time = self
            .verified_prefix(&file, &path, base, &time_keys, size)
            .await?;
        // Both indexes get entries at the same frames; resume from the
        // older of their last verified entries.
        let common = n_offset.min(n_time);
        let (mut offset_index, mut time_index) = (offset_entries, time_entries);
        offset_index.truncate(common);
        time_index.truncate(common);
        let (scan_from, expected, max_ts) = match (offset_index.last(), time_index.last()) {
            (Some(o), Some(t))
                if o.position == t.position && o.relative_offset == t.relative_offset =>
            {
                // Rescan from the last verified frame, which re-adds its
                // entries; its time entry's running maximum already covers
                // every frame before it, and max is idempotent.
                let resume = (
                    o.position as u64,
                    base + o.relative_offset as u64,
                    t.max_timestamp_ms,
                );
                offset_index.pop();
                time_index.pop();
                resume
            }
            _ => {
                offset_index.clear();
                time_index.clear();
                (FILE_HEADER_BYTES as u64, base, i64::MIN)
            }
        };
        let mut scanned = self
            .scan_segment(&file, &path, expected, scan_from, size, max_ts)
            .await?;
        if let Some((at, corruption)) = scanned.invalid.take() {
            if let Some(valid_at) = self
                .find_valid_frame_after(&file, &path, at, size, scanned.end_offset)
                .await?
            {
                tracing::error!(file = %path.display(), at, valid_at, "bad frame followed by valid data");
                return Err(Error::corrupt(&path, at, corruption));
            }
            tracing::warn!(file = %path.display(), at, %corruption, "truncating torn tail");
        }
        if let Some(footer) = scanned.footer {
            // Crash after sealing, before the next segment existed. A seal
            // writes the footer's block (zero-padded to the block end),
            // then truncates the file after the footer: a crash between
            // the two leaves the padding, and a later open, which looks for
            // a sealed segment's footer at the end of the file, would call
            // the segment footless. So finish the seal here.
            let footer_end = footer.data_end_bytes + FOOTER_FRAME_BYTES as u64;
            if size > footer_end {
                if !self.is_zero(&file, footer_end, size, &path).await? {
                    return Err(Error::corrupt(
                        &path,
                        footer_end,
                        Corruption::Malformed("bytes after the segment footer"),
                    ));
                }
                file.truncate(footer_end)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
                file.fdatasync().await.map_err(|e| Error::io(&path, e))?;
            }
            drop(file);
            let reopened = self
                .storage
                .open(&path, OpenMode::Existing)
                .await
                .map_err(|e| Error::io(&path, e))?;
            return self.open_sealed(reopened, path, header, footer).await;
        }
        offset_index.append(&mut scanned.offset_index);
        time_index.append(&mut scanned.time_index);
        let data_end = scanned.data_end_bytes;
        if size != data_end {
            file.truncate(data_end)
                .await
                .map_err(|e| Error::io(&path, e))?;
            file.fdatasync().await.map_err(|e| Error::io(&path, e))?;
        }
        // Rewrite the index files to match exactly what was verified, then
        // keep appending to them.
        let offset_bytes: Vec<u8> = offset_index.iter().flat_map(encode_offset_entry).collect();
        let time_bytes: Vec<u8> = time_index.iter().flat_map(encode_time_entry).collect();
        self.write_index_file(
            base,
            OFFSET_INDEX_EXTENSION,
            OFFSET_INDEX_MAGIC,
            &offset_bytes,
        )
        .await?;
        self.write_index_file(base, TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC, &time_bytes)
            .await?;
        let offset_writer = self
            .reopen_index(
                base,
                OFFSET_INDEX_EXTENSION,
                OFFSET_INDEX_MAGIC,
                offset_index.len(),
                OFFSET_ENTRY_BYTES,
            )
            .await?;
        let time_writer = self
            .reopen_index(
                base,
                TIME_INDEX_EXTENSION,
                TIME_INDEX_MAGIC,
                time_index.len(),
                TIME_ENTRY_BYTES,
            )
            .await?;
        let tail_start = align_down(data_end);
        let tail = file
            .read_at(tail_start, (data_end - tail_start) as usize)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let data = Appender::new(
            &file,
            self.config.borrow().write_buffer_bytes,
            data_end,
            &tail,
        );
        Ok(Opened {
            writer: Some(Writer {
                data,
                offset_index: offset_writer,
                time_index: time_writer,
                bytes_since_index: scanned.bytes_since_index,
            }),
            segment: Segment {
                base_offset: base,
                file: Rc::new(file),
                path,
                created_ms: header.created_ms,
                end_offset: scanned.end_offset,
                data_end_bytes: data_end,
                max_timestamp_ms: scanned.max_timestamp_ms,
                offset_index,
                time_index,
                sealed: false,
            },
        })
    }

    /// Opens an index file that `write_index_file` just wrote with
    /// `entries` entries, to keep appending to it.
    async fn reopen_index(
        &self,
        base: u64,
        extension: &str,
        magic: [u8; 8],
        entries: usize,
        entry_bytes: usize,
    ) -> Result<IndexWriter<S::File>> {
        let path = index_path(&self.dir, base, extension);
        let file = self
            .storage
            .open(&path, OpenMode::Existing)
            .await
            .map_err(|e| Error::io(&path, e))?;
        Ok(IndexWriter {
            file: Rc::new(file),
            magic,
            entry_bytes,
            written_entries: entries,
        })
    }

    /// Scans frames from `from` to `end`, checking offset continuity and
    /// building index entries as appends would have.
    async fn scan_segment(
        &self,
        file: &S::File,
        path: &Path,
        expected: u64,
        from: u64,
        end: u64,
        max_ts: i64,
    ) -> Result<Scanned> {
        let segment_base = {
            // The relative offsets are against the file's base, which the
            // caller's first expected offset may exceed (resumed scan).
            let head = file
                .read_at(0, FILE_HEADER_BYTES)
                .await
                .map_err(|e| Error::io(path, e))?;
            decode_segment_header(&head)
                .map_err(|c| Error::corrupt(path, 0, c))?
                .base_offset
        };
        let mut out = Scanned {
            end_offset: expected,
            data_end_bytes: from,
            max_timestamp_ms: max_ts,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
            invalid: None,
            footer: None,
        };
        let interval = self.config.borrow().index_interval_bytes;
        let mut first = true;
        let mut scanner = Scanner::new(file, from, end, self.frame_payload_max);
        let mut position = from;
        while let Some(item) = scanner.next().await.map_err(|e| Error::io(path, e))? {
            match item {
                ScanItem::Frame(h) if h.is_footer() => {
                    let footer = decode_footer(scanner.last_payload(&h))
                        .map_err(|c| Error::corrupt(path, position, c))?;
                    if footer.end_offset != out.end_offset || footer.data_end_bytes != position {
                        return Err(Error::corrupt(
                            path,
                            position,
                            Corruption::Malformed("footer disagrees with the frames"),
                        ));
                    }
                    out.footer = Some(footer);
                    break;
                }
                ScanItem::Frame(h) => {
                    if h.base_offset != out.end_offset {
                        return Err(Error::corrupt(
                            path,
                            position,
                            Corruption::OffsetGap {
                                expected: out.end_offset,
                                found: h.base_offset,
                            },
                        ));
                    }
                    out.max_timestamp_ms = out.max_timestamp_ms.max(h.max_timestamp_ms);
                    if first || out.bytes_since_index >= interval {
                        let relative_offset = (h.base_offset - segment_base) as u32;
                        out.offset_index.push(OffsetEntry {
                            relative_offset,
                            position: position as u32,
                        });
                        out.time_index.push(TimeEntry {
                            max_timestamp_ms: out.max_timestamp_ms,
                            relative_offset,
                            position: position as u32,
                        });
                        out.bytes_since_index = 0;
                    }
                    first = false;
                    out.bytes_since_index += h.frame_bytes() as u64;
                    out.end_offset = h.end_offset();
                    position += h.frame_bytes() as u64;
                    out.data_end_bytes = position;
                }
                ScanItem::End => break,
                ScanItem::Invalid(corruption) => {
                    out.invalid = Some((position, corruption));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// After a bad frame at `from`, looks for any later valid frame
    /// continuing the offsets — the difference between a torn tail (safe
    /// to truncate) and damage in the middle of acknowledged data (not).
    async fn find_valid_frame_after(
        &self,
        file: &S::File,
        path: &Path,
        from: u64,
        end: u64,
        expected: u64,
    ) -> Result<Option<u64>> {
        let mut chunk_start = from + 1;
        while chunk_start + FRAME_HEADER_BYTES as u64 <= end {
            let len = ((end - chunk_start) as usize).min(SCAN_CHUNK_BYTES + FRAME_HEADER_BYTES);
            let bytes = file
                .read_at(chunk_start, len)
                .await
                .map_err(|e| Error::io(path, e))?;
            let last_start = bytes.len().saturating_sub(FRAME_HEADER_BYTES);
            for at in 0..=last_start.min(SCAN_CHUNK_BYTES - 1) {
                let h = &bytes[at..at + FRAME_HEADER_BYTES];
                let payload_len = u32::from_le_bytes(h[0..4].try_into().expect("4")) as u64;
                let base_offset = u64::from_le_bytes(h[8..16].try_into().expect("8"));
                let pos = chunk_start + at as u64;
                // Cheap filters before reading and checksumming a candidate:
                // a plausible length and an offset that could follow.
                let plausible = payload_len > 0
                    && payload_len as usize <= self.frame_payload_max
                    && pos + FRAME_HEADER_BYTES as u64 + payload_len <= end
                    && base_offset >= expected
                    && base_offset - expected <= end - from;
                if !plausible {
                    continue;
                }
                let candidate = file
                    .read_at(pos, FRAME_HEADER_BYTES + payload_len as usize)
                    .await
                    .map_err(|e| Error::io(path, e))?;
                if matches!(
                    read_frame(&candidate, self.frame_payload_max),
                    FrameRead::Frame(_)
                ) {
                    return Ok(Some(pos));
                }
            }
            chunk_start += SCAN_CHUNK_BYTES as u64;
        }
        Ok(None)
    }
}

struct Scanned {
    end_offset: u64,
    data_end_bytes: u64,
    max_timestamp_ms: i64,
    offset_index: Vec<OffsetEntry>,
    time_index: Vec<TimeEntry>,
    bytes_since_index: u64,
    invalid: Option<(u64, Corruption)>,
    footer: Option<SegmentFooter>,
}

struct Opened<F: StorageFile> {
    writer: Option<Writer<F>>,
    segment: Segment<F>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::MemStorage;

    /// A log recovered with its end just below [`OFFSET_MAX`] (which
    /// recovery accepts) takes appends up to that offset and refuses the
    /// next with [`Error::OffsetsExhausted`], instead of writing a frame
    /// recovery would call corrupt (or overflowing `u64` further on).
    #[test]
    fn appends_stop_at_the_largest_offset() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let config = LogConfig {
                    segment_bytes: 64 * 1024,
                    write_buffer_bytes: 64 * 1024,
                    max_payload_bytes: 1024,
                    ..LogConfig::default()
                };
                let mem = MemStorage::new();
                let base = OFFSET_MAX - 3;
                let header = encode_segment_header(&SegmentHeader {
                    kind: SegmentKind::Partition,
                    base_offset: base,
                    created_ms: 0,
                });
                let dir = Path::new("/l");
                mem.set_file_bytes(&index_path(dir, base, LOG_EXTENSION), header.to_vec());
                let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                    .await
                    .unwrap();
                assert_eq!(log.next_offset(), base);
                let appended = log.append_acked(10, 3, 0, |dst, _| dst.fill(7)).await;
                assert_eq!(appended.unwrap(), base);
                match log.append_acked(10, 1, 0, |dst, _| dst.fill(7)).await {
                    Err(Error::OffsetsExhausted {
                        next_offset, count, ..
                    }) => assert_eq!((next_offset, count), (OFFSET_MAX, 1)),
                    other => panic!("expected OffsetsExhausted, got {other:?}"),
                }
                log.close().await.unwrap();
                let log = Log::open(mem, dir, config, Clock::System).await.unwrap();
                assert_eq!(log.next_offset(), OFFSET_MAX);
                let read = log.read(base, 1 << 20).await.unwrap();
                assert_eq!(read.next_offset(), Some(OFFSET_MAX));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Found by the segment_recovery fuzz target (its second open of the
    /// same files disagreed with the first): a crash during a seal after
    /// the footer's zero-padded block was written but before the file was
    /// truncated after the footer. The first open found the footer by
    /// scanning and created the next segment; the second looked for the
    /// footer at the end of the file, found padding, and refused the now
    /// not-last segment as footless. Recovery now finishes the seal.
    #[test]
    fn a_seal_interrupted_before_its_truncate_recovers_twice() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let config = LogConfig {
                    segment_bytes: 4096,
                    write_buffer_bytes: 16 * 1024,
                    max_payload_bytes: 1024,
                    ..LogConfig::default()
                };
                let dir = Path::new("/l");
                let mem = MemStorage::new();
                let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                    .await
                    .unwrap();
                while log.segments().len() < 2 {
                    log.append_acked(90, 1, 0, |dst, _| dst.fill(7))
                        .await
                        .unwrap();
                }
                let (sealed, active) = (log.segments()[0].clone(), log.segments()[1].clone());
                let footer_end = sealed.size_bytes + FOOTER_FRAME_BYTES as u64;
                assert_ne!(footer_end, align_up(footer_end), "padding to write");
                log.close().await.unwrap();
                // The crash image: the next segment not created yet, the
                // sealed one still padded to its block end.
                for extension in [LOG_EXTENSION, OFFSET_INDEX_EXTENSION, TIME_INDEX_EXTENSION] {
                    mem.remove(&index_path(dir, active.base_offset, extension))
                        .await
                        .unwrap();
                }
                let mut bytes = mem.file_bytes(&sealed.path).unwrap();
                bytes.resize(align_up(bytes.len() as u64) as usize, 0);
                mem.set_file_bytes(&sealed.path, bytes);
                let mut recovered = Vec::new();
                for _ in 0..2 {
                    let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                        .await
                        .unwrap();
                    recovered.push((log.next_offset(), log.segments()));
                }
                assert_eq!(recovered[0], recovered[1]);
                assert_eq!(recovered[0].0, sealed.end_offset);
                assert!(recovered[0].1[0].sealed);
                // Anything but padding after the footer is damage.
                let mut bytes = mem.file_bytes(&sealed.path).unwrap();
                bytes.extend_from_slice(&[0, 1]);
                mem.set_file_bytes(&sealed.path, bytes);
                for extension in [LOG_EXTENSION, OFFSET_INDEX_EXTENSION, TIME_INDEX_EXTENSION] {
                    mem.remove(&index_path(dir, active.base_offset, extension))
                        .await
                        .unwrap();
                }
                match Log::open(mem, dir, config, Clock::System).await {
                    Err(Error::Corrupt { corruption, .. }) => assert_eq!(
                        corruption,
                        Corruption::Malformed("bytes after the segment footer")
                    ),
                    Err(other) => panic!("expected corruption, got {other}"),
                    Ok(_) => panic!("bytes after a footer opened"),
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Found by the segment_recovery fuzz target: a blank (never written)
    /// last segment named beyond [`OFFSET_MAX`] became the log end, so the
    /// recovered log could not take a single append. Such a name is now
    /// corruption; one at the largest offset is an empty, full log.
    #[test]
    fn blank_segments_named_beyond_the_largest_offset_are_corrupt() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = Path::new("/l");
                let blank = |base| {
                    let mem = MemStorage::new();
                    mem.set_file_bytes(&index_path(dir, base, LOG_EXTENSION), vec![0; 2]);
                    mem
                };
                let beyond = blank(OFFSET_MAX + 1);
                match Log::open(beyond, dir, LogConfig::default(), Clock::System).await {
                    Err(Error::Corrupt {
                        path, corruption, ..
                    }) => {
                        assert_eq!(path, index_path(dir, OFFSET_MAX + 1, LOG_EXTENSION));
                        assert_eq!(
                            corruption,
                            Corruption::Malformed("segment name beyond the largest offset")
                        );
                    }
                    Err(other) => panic!("expected corruption, got {other}"),
                    Ok(_) => panic!("a segment beyond the largest offset opened"),
                }
                let at_max = blank(OFFSET_MAX);
                let log = Log::open(at_max, dir, LogConfig::default(), Clock::System)
                    .await
                    .unwrap();
                assert_eq!(log.next_offset(), OFFSET_MAX);
                assert!(matches!(
                    log.append_with(1, 1, 0, |dst, _| dst.fill(1)).await,
                    Err(Error::OffsetsExhausted { .. })
                ));
            })
            .unwrap()
            .join()
            .unwrap();
    }

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
