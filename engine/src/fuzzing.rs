//! The properties the engine fuzz targets check, as plain functions.
//!
//! Why here and not in the fuzz crate: the fuzz targets (`engine/fuzz`,
//! cargo-fuzz on nightly) and the corpus replay test
//! (`engine/tests/fuzz_corpus.rs`, stable `cargo test`) must check exactly
//! the same thing, and CI runs the replay everywhere, including where no
//! nightly toolchain exists. Each check panics when a property fails, which
//! is how libFuzzer learns of a finding.
//!
//! Both targets turn an input into the files of a directory on
//! [`MemStorage`] (no disk I/O per iteration), open it twice and compare:
//!
//! * [`segment_recovery`]: the segment, index, log start checkpoint and
//!   producer snapshot files of a partition log. Open ([`PartitionLog`])
//!   either recovers or refuses with [`Error::Corrupt`]; a second open of
//!   what the first left gives the same answer and the same log (offsets,
//!   segments, every frame read back, producer state, time lookups);
//!   reading everything back ends; and the recovered log takes an append
//!   that a third open finds after everything recovered before.
//! * [`metadata_log_replay`]: the meta log's segments and snapshots.
//!   [`MetaLog`] replays or refuses with [`Error::Corrupt`], twice alike;
//!   the replayed state survives its own snapshot encoding; and a snapshot
//!   plus one more event reopen to the same state.
//!
//! Checksums would stop almost every mutation at the first crc32c, so an
//! input flag ([`RESEAL`]) makes the harness recompute every checksum the
//! formats carry (file headers, frames, footers' index crcs, snapshot
//! payloads) before installing the files: mutations then reach the checks
//! behind them. Without the flag the files are installed as they are.
//!
//! ## Input layout
//!
//! ```text
//! byte 0   flags (bit 0: RESEAL)
//! then, until the input ends, files:
//!   0  1  kind (modulo 7, see FileKind)
//!   1  8  the offset in its name, little-endian
//!   9  2  length, little-endian (a last file shorter than that takes the rest)
//!  11  .. the file's bytes
//! ```
//!
//! The name's offset is separate from the header's (which recovery checks
//! against it), and a later file of the same name replaces an earlier one.

use crate::batch::{build_batch, BatchView};
use crate::clock::Clock;
use crate::error::Error;
use crate::format::{
    file_header_crc, frame_crc, index_crc, log_start_crc, peek_frame_header, segment_file_name,
    FILE_HEADER_BYTES, FILE_HEADER_CRC_AT, FOOTER_OFFSET_ENTRIES_AT, FOOTER_OFFSET_INDEX_CRC_AT,
    FOOTER_PAYLOAD_BYTES, FOOTER_TIME_ENTRIES_AT, FOOTER_TIME_INDEX_CRC_AT, FRAME_CRC_AT,
    FRAME_HEADER_BYTES, LOG_START_BYTES, LOG_START_CRC_AT, LOG_START_FILE_NAME,
    META_SNAPSHOT_EXTENSION, OFFSET_ENTRY_BYTES, OFFSET_INDEX_EXTENSION, OFFSET_MAX,
    PRODUCER_SNAPSHOT_EXTENSION, SEGMENT_EXTENSION, SNAPSHOT_PAYLOAD_CRC_AT, TIME_ENTRY_BYTES,
    TIME_INDEX_EXTENSION,
};
use crate::io::mem::MemStorage;
use crate::io::TMP_SUFFIX;
use crate::log::{FlushPolicy, LogConfig, SegmentInfo};
use crate::meta::{
    encode_snapshot_file, log_dir, read_snapshot_file, snapshot_dir, MetaConfig, MetaEvent,
    MetaLog, MetaState, ProducerIdBlock, PRODUCER_ID_BLOCK_END_MAX,
};
use crate::partition::{AppendError, PartitionLog};
use crate::producer::{classify, BatchRecord};
use std::future::Future;
use std::path::{Path, PathBuf};

/// Flag bit of input byte 0: recompute every checksum before installing.
pub const RESEAL: u8 = 0x01;
/// The partition directory [`segment_recovery`] recovers.
pub const PARTITION_DIR: &str = "/fuzz/topics/t/0";
/// The meta directory [`metadata_log_replay`] replays.
pub const META_DIR: &str = "/fuzz/meta";
/// The broker clock of every check (fixed, so runs are reproducible).
pub const NOW_MS: i64 = 1_700_000_000_000;
/// Bytes of one file an input can carry (the length field is a u16).
pub const FILE_BYTES_MAX: usize = u16::MAX as usize;

/// Bytes [`segment_recovery`] asks of each read.
const READ_BYTES: usize = 4096;
/// Time lookups [`segment_recovery`] compares between opens.
const TIME_LOOKUPS_MAX: usize = 8;

/// What a file of an input is; its name follows from this and its
/// contents (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `<base>.log` in the log directory.
    Segment,
    /// `<base>.index` in the log directory.
    OffsetIndex,
    /// `<base>.timeindex` in the log directory.
    TimeIndex,
    /// `log-start-offset` in the log directory.
    LogStart,
    /// `<covered>.producers` in the partition directory.
    ProducerSnapshot,
    /// `<applied>.snap` in the meta snapshot directory.
    MetaSnapshot,
    /// `<offset>.log.tmp`: an interrupted write, in the log directory.
    Leftover,
}

const KINDS: [FileKind; 7] = [
    FileKind::Segment,
    FileKind::OffsetIndex,
    FileKind::TimeIndex,
    FileKind::LogStart,
    FileKind::ProducerSnapshot,
    FileKind::MetaSnapshot,
    FileKind::Leftover,
];

/// One file of a fuzz input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzFile {
    /// What it is.
    pub kind: FileKind,
    /// The offset in its name (segment base, covered or applied offset).
    pub name_offset: u64,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// Bytes before a file's contents in an input: kind, name offset, length.
const FILE_ENTRY_HEADER_BYTES: usize = 11;

/// A decoded fuzz input: files to install, and whether to reseal them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuzzInput {
    /// Recompute every checksum before installing.
    pub reseal: bool,
    /// The files, in input order.
    pub files: Vec<FuzzFile>,
}

/// Where [`FuzzInput::install`] puts the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A partition directory ([`PARTITION_DIR`]).
    Partition,
    /// A meta directory ([`META_DIR`]): log files under `log/`, snapshots
    /// under `snapshots/`.
    Meta,
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn put_crc(bytes: &mut [u8], at: usize, crc: u32) {
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Stores at `at` the crc that `crc_of` computes over `bytes`.
fn seal(bytes: &mut [u8], at: usize, crc_of: impl Fn(&[u8]) -> u32) {
    let crc = crc_of(bytes);
    put_crc(bytes, at, crc);
}

impl FuzzInput {
    /// Decodes any bytes (see the module docs); never fails.
    pub fn decode(input: &[u8]) -> Self {
        let Some((&flags, mut rest)) = input.split_first() else {
            return FuzzInput::default();
        };
        let mut files = Vec::new();
        while rest.len() >= FILE_ENTRY_HEADER_BYTES {
            let (head, body) = rest.split_at(FILE_ENTRY_HEADER_BYTES);
            let len = (u16::from_le_bytes([head[9], head[10]]) as usize).min(body.len());
            files.push(FuzzFile {
                kind: KINDS[head[0] as usize % KINDS.len()],
                name_offset: u64::from_le_bytes(head[1..9].try_into().expect("8 bytes")),
                bytes: body[..len].to_vec(),
            });
            rest = &body[len..];
        }
        FuzzInput {
            reseal: flags & RESEAL != 0,
            files,
        }
    }

    /// The input bytes [`FuzzInput::decode`] turns into `self`.
    ///
    /// # Panics
    ///
    /// If a file is longer than [`FILE_BYTES_MAX`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![if self.reseal { RESEAL } else { 0 }];
        for file in &self.files {
            let len = u16::try_from(file.bytes.len()).expect("a file of at most 64 KiB");
            out.push(KINDS.iter().position(|k| *k == file.kind).expect("listed") as u8);
            out.extend_from_slice(&file.name_offset.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&file.bytes);
        }
        out
    }

    /// The path of `file` under `layout`.
    pub fn path(layout: Layout, file: &FuzzFile) -> PathBuf {
        let (log, home, snapshots) = match layout {
            Layout::Partition => {
                let dir = PathBuf::from(PARTITION_DIR);
                (dir.clone(), dir.clone(), dir)
            }
            Layout::Meta => {
                let dir = PathBuf::from(META_DIR);
                (log_dir(&dir), dir.clone(), snapshot_dir(&dir))
            }
        };
        let name = |extension| segment_file_name(file.name_offset, extension);
        match file.kind {
            FileKind::Segment => log.join(name(SEGMENT_EXTENSION)),
            FileKind::OffsetIndex => log.join(name(OFFSET_INDEX_EXTENSION)),
            FileKind::TimeIndex => log.join(name(TIME_INDEX_EXTENSION)),
            FileKind::LogStart => log.join(LOG_START_FILE_NAME),
            FileKind::ProducerSnapshot => home.join(name(PRODUCER_SNAPSHOT_EXTENSION)),
            FileKind::MetaSnapshot => snapshots.join(name(META_SNAPSHOT_EXTENSION)),
            FileKind::Leftover => log.join(name(SEGMENT_EXTENSION) + TMP_SUFFIX),
        }
    }

    /// Writes the files (resealed if asked) into `storage` as durable files.
    pub fn install(&self, storage: &MemStorage, layout: Layout) {
        let mut files = self.files.clone();
        if self.reseal {
            reseal(&mut files);
        }
        for file in files {
            storage.set_file_bytes(&Self::path(layout, &file), file.bytes);
        }
    }
}

/// Recomputes every checksum of `files`: index crcs in segment footers
/// first (from the index files of the same base), then frame crcs, file
/// header crcs, the log start checkpoint's and both snapshots' payload and
/// header crcs.
fn reseal(files: &mut [FuzzFile]) {
    let index_of = |files: &[FuzzFile], kind: FileKind, base: u64| {
        files
            .iter()
            .rev()
            .find(|f| f.kind == kind && f.name_offset == base)
            .map(|f| {
                f.bytes
                    .get(FILE_HEADER_BYTES..)
                    .unwrap_or_default()
                    .to_vec()
            })
    };
    for i in 0..files.len() {
        if files[i].kind != FileKind::Segment {
            continue;
        }
        let base = files[i].name_offset;
        let offset_index = index_of(files, FileKind::OffsetIndex, base);
        let time_index = index_of(files, FileKind::TimeIndex, base);
        reseal_segment(&mut files[i].bytes, offset_index, time_index);
    }
    for file in files.iter_mut() {
        let bytes = &mut file.bytes;
        match file.kind {
            FileKind::Segment | FileKind::OffsetIndex | FileKind::TimeIndex => {
                if bytes.len() >= FILE_HEADER_BYTES {
                    seal(bytes, FILE_HEADER_CRC_AT, file_header_crc);
                }
            }
            FileKind::LogStart => {
                if bytes.len() >= LOG_START_BYTES {
                    seal(bytes, LOG_START_CRC_AT, log_start_crc);
                }
            }
            FileKind::ProducerSnapshot | FileKind::MetaSnapshot => {
                // Both snapshot headers are the 64-byte header with the
                // payload crc inside, and the payload follows the header.
                if bytes.len() >= FILE_HEADER_BYTES {
                    let payload_crc = |b: &[u8]| crc32c::crc32c(&b[FILE_HEADER_BYTES..]);
                    seal(bytes, SNAPSHOT_PAYLOAD_CRC_AT, payload_crc);
                    seal(bytes, FILE_HEADER_CRC_AT, file_header_crc);
                }
            }
            FileKind::Leftover => {}
        }
    }
}

/// Reseals the frames of one segment image, walking them as recovery
/// does; a footer's index crcs are recomputed over the entries it counts.
fn reseal_segment(bytes: &mut [u8], offset_index: Option<Vec<u8>>, time_index: Option<Vec<u8>>) {
    let mut at = FILE_HEADER_BYTES;
    while let Some(header) = bytes.get(at..).and_then(peek_frame_header) {
        let payload_len = header.payload_len as usize;
        if payload_len == 0 && le_u32(bytes, at + FRAME_CRC_AT) == 0 {
            break;
        }
        let payload = at + FRAME_HEADER_BYTES;
        let end = payload + payload_len;
        if end > bytes.len() {
            break;
        }
        if header.is_footer() && payload_len == FOOTER_PAYLOAD_BYTES {
            for (index, count_at, crc_at, entry_bytes) in [
                (
                    &offset_index,
                    FOOTER_OFFSET_ENTRIES_AT,
                    FOOTER_OFFSET_INDEX_CRC_AT,
                    OFFSET_ENTRY_BYTES,
                ),
                (
                    &time_index,
                    FOOTER_TIME_ENTRIES_AT,
                    FOOTER_TIME_INDEX_CRC_AT,
                    TIME_ENTRY_BYTES,
                ),
            ] {
                let count = le_u32(bytes, payload + count_at);
                let crc = index
                    .as_deref()
                    .and_then(|i| index_crc(i, count, entry_bytes));
                if let Some(crc) = crc {
                    put_crc(bytes, payload + crc_at, crc);
                }
            }
        }
        let crc = frame_crc(&bytes[at..payload], &bytes[payload..end]);
        put_crc(bytes, at + FRAME_CRC_AT, crc);
        at = end;
    }
}

thread_local! {
    static EXECUTOR: glommio::LocalExecutor = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("a glommio executor (it needs locked memory: see `ulimit -l`)");
}

/// Runs `future` to completion on this thread's glommio executor, made at
/// the first call and reused after: an executor per input would cost more
/// than most inputs.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    EXECUTOR.with(|executor| executor.run(future))
}

/// The partition log settings of [`segment_recovery`]: small segments and
/// index intervals so short inputs hold several of each, and a small write
/// buffer (frames longer than it allows are corrupt).
pub fn partition_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        write_buffer_bytes: 16 * 1024,
        max_payload_bytes: 2048,
        index_interval_bytes: 512,
        retention_ms: None,
        retention_bytes: None,
        flush_policy: FlushPolicy::Always,
        ..LogConfig::default()
    }
}

/// The meta log settings of [`metadata_log_replay`]: small segments, no
/// automatic snapshots (the check takes one itself).
pub fn meta_config() -> MetaConfig {
    MetaConfig {
        segment_bytes: 16 * 1024,
        max_event_bytes: 4096,
        snapshot_interval_events: 0,
        snapshots_kept: 2,
    }
}

/// How reading a recovered log from its start to its high watermark ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ReadEnd {
    /// Every offset was read.
    Complete,
    /// A read found damage that recovery does not look for (inside a sealed
    /// segment whose footer and index check out).
    Corrupt(String),
    /// A read below the high watermark found no frame at this offset: a
    /// sealed segment whose checksummed footer claims offsets its frames do
    /// not hold.
    Missing(u64),
}

/// A producer's id and what the partition holds for it: its epoch and its
/// retained batches, if it tracks the producer.
type ProducerSeen = (i64, Option<(i16, Vec<BatchRecord>)>);

/// Everything [`segment_recovery`] compares between two opens.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RecoveredPartition {
    log_start: u64,
    next_offset: u64,
    high_watermark: u64,
    segments: Vec<SegmentInfo>,
    /// (base offset, offsets covered, max timestamp, payload) of every frame
    /// read, in read order.
    frames: Vec<(u64, u32, i64, Vec<u8>)>,
    read_end: ReadEnd,
    producers: Vec<ProducerSeen>,
    /// (timestamp, answer or corruption) of time lookups.
    by_time: Vec<(i64, Result<Option<u64>, String>)>,
}

/// An open that refused is compared by its message.
fn refused(e: &Error) -> String {
    assert!(
        matches!(e, Error::Corrupt { .. }),
        "without injected faults, open fails only on corruption: {e}"
    );
    e.to_string()
}

async fn open_partition(
    storage: &MemStorage,
) -> (
    Result<RecoveredPartition, String>,
    Option<PartitionLog<MemStorage>>,
) {
    let log = match PartitionLog::open(
        storage.clone(),
        PARTITION_DIR,
        partition_config(),
        Clock::manual(NOW_MS),
    )
    .await
    {
        Ok(log) => log,
        Err(e) => return (Err(refused(&e)), None),
    };
    let recovered = read_partition(storage, &log).await;
    (Ok(recovered), Some(log))
}

/// Reads a recovered partition log back whole.
async fn read_partition(
    storage: &MemStorage,
    log: &PartitionLog<MemStorage>,
) -> RecoveredPartition {
    let inner = log.log();
    let (log_start, next_offset, high_watermark) = (
        inner.log_start_offset(),
        inner.next_offset(),
        inner.high_watermark(),
    );
    assert!(log_start <= next_offset && next_offset == high_watermark);
    let segments = inner.segments();
    assert!(!segments.is_empty() && !segments.last().expect("active").sealed);
    assert!(segments
        .windows(2)
        .all(|w| w[0].end_offset == w[1].base_offset));
    assert_eq!(segments.last().expect("active").end_offset, next_offset);
    // Every read moves past at least one frame end it has not moved past
    // before, so a log of n frames needs at most n reads; more is a loop.
    let storage_bytes: usize = storage
        .paths()
        .iter()
        .filter_map(|p| storage.file_bytes(p))
        .map(|b| b.len())
        .sum();
    let reads_max = storage_bytes / FRAME_HEADER_BYTES + 1;
    let mut frames = Vec::new();
    let mut offset = log_start;
    let mut reads = 0;
    let read_end = loop {
        if offset >= high_watermark {
            break ReadEnd::Complete;
        }
        reads += 1;
        assert!(reads <= reads_max, "reading back does not end");
        let batches = match inner.read(offset, READ_BYTES).await {
            Ok(batches) => batches,
            Err(e @ Error::Corrupt { .. }) => break ReadEnd::Corrupt(e.to_string()),
            Err(e) => panic!("read at {offset} of [{log_start}, {high_watermark}): {e}"),
        };
        let Some(next) = batches.next_offset() else {
            break ReadEnd::Missing(offset);
        };
        for (frame, payload) in batches.iter() {
            assert!(frame.base_offset < high_watermark && frame.count >= 1);
            frames.push((
                frame.base_offset,
                frame.count,
                frame.max_timestamp_ms,
                payload.to_vec(),
            ));
        }
        assert!(next > offset, "a read moves forward");
        offset = next;
    };
    let mut producer_ids: Vec<i64> = frames
        .iter()
        .filter_map(|(_, _, _, payload)| BatchView::parse_unverified(payload).ok())
        .filter_map(|view| classify(&view).ok().flatten())
        .map(|batch| batch.producer_id)
        .collect();
    producer_ids.sort_unstable();
    producer_ids.dedup();
    let producers = producer_ids
        .into_iter()
        .map(|id| (id, log.producer(id)))
        .collect();
    let mut timestamps: Vec<i64> = frames.iter().map(|f| f.2).collect();
    timestamps.sort_unstable();
    timestamps.dedup();
    timestamps.truncate(TIME_LOOKUPS_MAX - 2);
    timestamps.extend([i64::MIN, i64::MAX]);
    let mut by_time = Vec::new();
    for timestamp in timestamps {
        let found = match inner.offset_for_timestamp(timestamp).await {
            Ok(found) => {
                assert!(found.is_none_or(|o| log_start <= o && o < high_watermark));
                Ok(found)
            }
            Err(e @ Error::Corrupt { .. }) => Err(e.to_string()),
            Err(e) => panic!("time lookup of {timestamp}: {e}"),
        };
        by_time.push((timestamp, found));
    }
    RecoveredPartition {
        log_start,
        next_offset,
        high_watermark,
        segments,
        frames,
        read_end,
        producers,
        by_time,
    }
}

/// The segment recovery target; see the module docs for the properties.
pub async fn segment_recovery(input: &[u8]) {
    let storage = MemStorage::new();
    FuzzInput::decode(input).install(&storage, Layout::Partition);
    let (first, log) = open_partition(&storage).await;
    drop(log);
    let (second, log) = open_partition(&storage).await;
    assert_eq!(first, second, "a second open recovers the same log");
    let (Ok(recovered), Some(log)) = (second, log) else {
        return;
    };
    // The recovered log goes on: an append lands at its end, and a reopen
    // after a clean close finds it after everything recovered before.
    let batch = build_batch(NOW_MS, &[b"after recovery".as_slice()]);
    let appended = match log.append(&batch).await {
        Ok(appended) => appended,
        Err(AppendError::Log(Error::OffsetsExhausted { .. }))
            if recovered.next_offset == OFFSET_MAX =>
        {
            return;
        }
        Err(e) => panic!("a recovered log takes an append: {e}"),
    };
    assert_eq!(appended.base_offset, recovered.next_offset);
    log.close().await.expect("close after an append");
    let (third, log) = open_partition(&storage).await;
    let third = third.expect("a log that closed cleanly reopens");
    drop(log);
    assert_eq!(third.log_start, recovered.log_start);
    assert_eq!(third.next_offset, recovered.next_offset + 1);
    if recovered.read_end == ReadEnd::Complete {
        assert_eq!(third.read_end, ReadEnd::Complete);
        assert_eq!(third.frames[..recovered.frames.len()], recovered.frames[..]);
        let (base, count, _, payload) = third.frames.last().expect("the appended frame");
        assert_eq!((*base, *count), (recovered.next_offset, 1));
        assert_eq!(
            payload[8..],
            batch[8..],
            "the batch, with its base offset set"
        );
    }
}

/// Everything [`metadata_log_replay`] compares between two opens.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReplayedMeta {
    state: MetaState,
    log_end: u64,
    snapshot_offset: Option<u64>,
}

async fn open_meta(
    storage: &MemStorage,
) -> (Result<ReplayedMeta, String>, Option<MetaLog<MemStorage>>) {
    match MetaLog::open(
        storage.clone(),
        META_DIR,
        meta_config(),
        Clock::manual(NOW_MS),
    )
    .await
    {
        Ok(meta) => {
            let replayed = ReplayedMeta {
                state: meta.state(),
                log_end: meta.log_end_offset(),
                snapshot_offset: meta.snapshot_offset(),
            };
            assert_eq!(replayed.state.applied_offset(), replayed.log_end);
            (Ok(replayed), Some(meta))
        }
        Err(e) => (Err(refused(&e)), None),
    }
}

/// The metadata log replay target; see the module docs for the properties.
pub async fn metadata_log_replay(input: &[u8]) {
    let storage = MemStorage::new();
    FuzzInput::decode(input).install(&storage, Layout::Meta);
    let (first, meta) = open_meta(&storage).await;
    drop(meta);
    let (second, meta) = open_meta(&storage).await;
    assert_eq!(first, second, "a second open replays the same state");
    let (Ok(replayed), Some(meta)) = (second, meta) else {
        return;
    };
    // Whatever replay accepts, a snapshot of it must load again: otherwise
    // the next open would skip the snapshot and replay from segments the
    // snapshot let it delete.
    let image = encode_snapshot_file(&replayed.state).expect("a replayed state encodes");
    assert_eq!(
        read_snapshot_file(&image),
        Ok((replayed.log_end, replayed.state.clone())),
        "a replayed state survives its snapshot"
    );
    let snapshot_at = meta
        .snapshot()
        .await
        .expect("a replayed log takes a snapshot");
    assert_eq!(snapshot_at, replayed.log_end);
    let mut expected = replayed.state.clone();
    let block_end = replayed.state.producer_id_block_end() + 1;
    if block_end <= PRODUCER_ID_BLOCK_END_MAX {
        let event = MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end });
        match meta.append(&event).await {
            Ok(offset) => {
                assert_eq!(offset, replayed.log_end);
                expected
                    .apply_event(offset, &event)
                    .expect("the event applies");
            }
            Err(Error::OffsetsExhausted { .. }) if replayed.log_end == OFFSET_MAX => {}
            Err(e) => panic!("a replayed log takes an event: {e}"),
        }
    }
    assert_eq!(meta.state(), expected);
    meta.close().await.expect("close after an append");
    let (third, meta) = open_meta(&storage).await;
    drop(meta);
    let third = third.expect("a meta log that closed cleanly reopens");
    assert_eq!(
        third.state, expected,
        "snapshot plus replay gives the same state"
    );
    assert_eq!(third.snapshot_offset, Some(snapshot_at));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn inputs_round_trip_through_their_encoding() {
        let file = |kind, name_offset, bytes| FuzzFile {
            kind,
            name_offset,
            bytes,
        };
        let input = FuzzInput {
            reseal: true,
            files: vec![
                file(FileKind::Segment, 3, vec![1; 100]),
                file(FileKind::LogStart, 0, vec![]),
                file(FileKind::Leftover, u64::MAX, vec![2; 3]),
            ],
        };
        assert_eq!(FuzzInput::decode(&input.encode()), input);
        assert_eq!(FuzzInput::decode(&[]), FuzzInput::default());
        // A short last file takes what is left; a torn entry is dropped.
        assert_eq!(
            FuzzInput::decode(&[0, 7, 9, 0, 0, 0, 0, 0, 0, 0, 10, 0, 5, 6]).files,
            vec![file(FileKind::Segment, 9, vec![5, 6])]
        );
        assert!(FuzzInput::decode(&[0, 1, 2]).files.is_empty());
    }

    #[test]
    fn names_carry_the_name_offset() {
        let file = |kind| FuzzFile {
            kind,
            name_offset: 42,
            bytes: vec![],
        };
        assert_eq!(
            FuzzInput::path(Layout::Partition, &file(FileKind::TimeIndex)),
            Path::new(PARTITION_DIR).join("00000000000000000042.timeindex")
        );
        assert_eq!(
            FuzzInput::path(Layout::Meta, &file(FileKind::MetaSnapshot)),
            Path::new(META_DIR).join("snapshots/00000000000000000042.snap")
        );
        assert_eq!(
            FuzzInput::path(Layout::Meta, &file(FileKind::Segment)),
            Path::new(META_DIR).join("log/00000000000000000042.log")
        );
    }

    #[test]
    fn empty_inputs_recover_empty_logs() {
        block_on(segment_recovery(&[]));
        block_on(metadata_log_replay(&[]));
    }
}

/// The largest single allocation any fuzz input may cause (libFuzzer runs
/// with `-malloc_limit_mb=64` too). The largest legitimate one is a topic
/// of `PARTITIONS_MAX` partitions, 8 MiB of placements.
pub const ALLOCATION_BYTES_MAX: usize = 64 << 20;

thread_local! {
    static LARGEST_ALLOCATION: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The system allocator, noting the largest request made on each thread:
/// the corpus replay tests install it (`#[global_allocator]`) in place of
/// libFuzzer's `-malloc_limit_mb`, and [`replay_corpus`] checks it.
pub struct WatchedAllocator;

fn note_allocation(size: usize) {
    let _ = LARGEST_ALLOCATION.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl std::alloc::GlobalAlloc for WatchedAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note_allocation(layout.size());
        std::alloc::System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note_allocation(layout.size());
        std::alloc::System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        std::alloc::System.realloc(ptr, layout, new_size)
    }
}

/// Runs `check` on every committed input of `target` under `fuzz_dir`
/// (`corpus/<target>/` and `regressions/<target>/`, in name order) and
/// returns how many there were. Panics naming the file when an input made
/// an allocation above [`ALLOCATION_BYTES_MAX`]; that needs
/// [`WatchedAllocator`] as the test binary's global allocator.
pub fn replay_corpus(fuzz_dir: &Path, target: &str, check: impl Fn(&[u8])) -> usize {
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(fuzz_dir.join(dir).join(target)).ok())
        .flatten()
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    for path in &files {
        let input = std::fs::read(path).expect("a corpus file");
        LARGEST_ALLOCATION.with(|largest| largest.set(0));
        check(&input);
        let largest = LARGEST_ALLOCATION.with(std::cell::Cell::get);
        assert!(
            largest <= ALLOCATION_BYTES_MAX,
            "{}: an allocation of {largest} bytes",
            path.display()
        );
    }
    files.len()
}
