//! Byte layouts of every engine file, as pure functions over byte slices so
//! the log, recovery and `ringlog inspect` share one definition.
//!
//! All integers are little-endian; every crc is CRC-32C (Castagnoli). Kafka
//! payloads keep their own big-endian layout inside frames. The `*_AT`
//! constants name the positions below and the `*_EXTENSION` constants the
//! file names; the codecs here, the fuzz harness's reseal, tools and tests
//! all take them from this module, so each layout is written once.
//!
//! ## Segment file `<base offset, 20 digits>.log`
//!
//! ```text
//! header (64 bytes)
//!   0  8  magic "RINGLSEG"
//!   8  2  format version (1)
//!  10  2  kind (1 = partition data, 2 = metadata log)
//!  12  4  header bytes (64)
//!  16  8  base offset
//!  24  8  created at, ms since the Unix epoch (drives segment.ms)
//!  32 28  zero
//!  60  4  crc32c of bytes 0..60
//! frames, back to back, each:
//!   0  4  payload length
//!   4  4  crc32c of frame bytes 8..32 and the payload
//!   8  8  base offset of the payload
//!  16  8  max timestamp (ms) of the payload
//!  24  4  offsets covered (0 only for the footer)
//!  28  2  flags (bit 0: footer)
//!  30  2  zero
//!  32  .. payload (a Kafka RecordBatch v2, or an rkyv metadata event)
//! footer frame, only in a sealed segment: flags = 1, count = 0,
//!   base offset = end offset, payload = SegmentFooter (40 bytes):
//!   0  8  end offset (next offset after this segment)
//!   8  8  data end (file position of the footer frame)
//!  16  8  max timestamp of the segment
//!  24  4  offset index entries
//!  28  4  time index entries
//!  32  4  crc32c of those offset index entries
//!  36  4  crc32c of those time index entries
//! ```
//!
//! Zero bytes after the last frame are padding (direct I/O writes whole
//! 4 KiB blocks): a frame header whose length and crc are both zero marks
//! the end of the data.
//!
//! ## Index files `<base>.index` and `<base>.timeindex`
//!
//! ```text
//! header (64 bytes): magic "RINGLIDX" / "RINGLTIX", version u16 at 8,
//!   base offset u64 at 16, zero to 60, crc32c of 0..60 at 60
//! offset index entry (8 bytes):  relative offset u32, position u32
//! time index entry (16 bytes):   max timestamp so far i64,
//!                                relative offset u32, position u32
//! ```
//!
//! Index entries are hints: recovery checks them against the frames they
//! point at and rebuilds an index that is missing or does not match the
//! crc recorded in the segment footer. Position 0 is inside the header, so a
//! zero entry is padding.
//!
//! ## Log start checkpoint `log-start-offset`
//!
//! ```text
//! 32 bytes, the whole file:
//!   0  8  magic "RINGLLSO"
//!   8  2  format version (1)
//!  10  6  zero
//!  16  8  log start offset
//!  24  4  zero
//!  28  4  crc32c of bytes 0..28
//! ```
//!
//! Written by Kafka DeleteRecords ([`crate::Log::delete_records_below`]),
//! which moves the log start to an arbitrary offset, usually inside a
//! segment; segment files alone can only say "starts at my base offset".
//! Replaced atomically (temp file, fdatasync, rename, directory sync), so a
//! crash leaves the old or the new file, never a torn one — a torn or
//! damaged file is therefore corruption, not a crash artefact. On open the
//! log start is the larger of the checkpoint and the first segment's base;
//! a checkpoint above the log end (data that was never durable is gone) is
//! clamped to the end and rewritten. A missing file means the log starts at
//! its first segment.
//!
//! ## Snapshot files `<applied offset>.snap` and `<covered offset>.producers`
//!
//! ```text
//! header (64 bytes), one codec for both snapshots (SnapshotKind)
//!   0  8  magic: metadata "RINGLSNP", producer "RINGLPRD"
//!   8  2  version: metadata 2 (2 added groups and their offsets), producer 1
//!  10  6  zero
//!  16  8  offset, equal to the number in the file name: the metadata
//!         snapshot's applied offset (it holds events 0..offset), the
//!         producer snapshot's covered offset (every batch below it)
//!  24  8  metadata: payload length in bytes (u64)
//!  24  4  producer: producer count (at most PRODUCERS_MAX)
//!  28  4  producer: payload length in bytes (u32)
//!  32  4  crc32c of the payload
//!  36 24  zero
//!  60  4  crc32c of bytes 0..60
//! payload from byte 64 to the end of the file, exactly its length
//! metadata payload: the rkyv archive of MetaState (crate::meta)
//! producer payload: one entry per producer, ascending producer id
//!   0  8  producer id (i64, >= 0)
//!   8  2  epoch (i16, >= 0)
//!  10  1  retained batches n (1..=BATCHES_RETAINED)
//!  11  5  zero
//!  16  8  last write, ms since the Unix epoch (broker clock)
//!  24  .  n batches, oldest first, 24 bytes each:
//!           0 4 first sequence (i32)   4 4 last sequence (i32)
//!           8 8 base offset           16 4 offsets covered (>= 1)
//!          20 4 zero
//! ```
//!
//! A snapshot header is the segment and index file header's frame with
//! different fields inside. Both are 64 bytes with the magic at 0, a u16
//! version at 8, the offset the file is named after at 16 and the crc32c
//! of bytes 0..60 at 60; one pair of functions writes and checks that
//! frame for all of them, in the same order (length, magic, version,
//! crc). Between those fields they differ: where a file header has its
//! kind (u16 at 10) and its own length (u32 at 12), a snapshot header has
//! zeros; where a file header has the creation time (24..32), a snapshot
//! has its payload size; where a file header has zeros (32..60), a
//! snapshot has its payload crc at 32. Every snapshot already on disk was
//! written with those bytes, so the snapshot fields keep their places
//! rather than borrowing the file header's kind, length and creation time,
//! and the frame is what the two share.
//!
//! The header checks only what frames the payload; the owners check the
//! payload itself (rkyv validation and state invariants in
//! [`crate::meta`]; ids ascending, every field in range and batches below
//! the covered offset in [`crate::producer`]), so a file that passes its
//! crcs but was written by a bug is still refused rather than trusted.

use crate::error::Corruption;
use crate::producer::{BatchRecord, BATCHES_RETAINED, PRODUCERS_MAX};

/// Segment file magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RINGLSEG";
/// Offset index magic.
pub const OFFSET_INDEX_MAGIC: [u8; 8] = *b"RINGLIDX";
/// Time index magic.
pub const TIME_INDEX_MAGIC: [u8; 8] = *b"RINGLTIX";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes in a segment or index file header.
pub const FILE_HEADER_BYTES: usize = 64;
/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: usize = 32;
/// Bytes in a segment footer payload.
pub const FOOTER_PAYLOAD_BYTES: usize = 40;
/// Bytes in an offset index entry.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes in a time index entry.
pub const TIME_ENTRY_BYTES: usize = 16;
/// Frame flag: this frame is the segment footer.
pub const FLAG_FOOTER: u16 = 1;
/// Log start checkpoint magic.
pub const LOG_START_MAGIC: [u8; 8] = *b"RINGLLSO";
/// The only log start checkpoint version this build writes and reads.
pub const LOG_START_VERSION: u16 = 1;
/// Bytes in a log start checkpoint file (the whole file).
pub const LOG_START_BYTES: usize = 32;
/// The largest offset a log holds. Kafka offsets are `i64` on the wire, so
/// a frame ends (base offset plus count) at most here, and no segment base
/// or footer end offset lies beyond it: a file that says otherwise is
/// corrupt, and appends stop here ([`crate::Error::OffsetsExhausted`]).
/// Keeping every offset at most `i64::MAX` also means an offset plus a
/// frame's `u32` count never overflows a `u64`.
pub const OFFSET_MAX: u64 = i64::MAX as u64;
/// Name of the log start checkpoint inside a log directory. Not a segment
/// name (those are 20 digits), so segment listings skip it.
pub const LOG_START_FILE_NAME: &str = "log-start-offset";
/// Extension of segment files: `<base offset, 20 digits>.log`.
pub const SEGMENT_EXTENSION: &str = "log";
/// Extension of offset index files: `<base offset, 20 digits>.index`.
pub const OFFSET_INDEX_EXTENSION: &str = "index";
/// Extension of time index files: `<base offset, 20 digits>.timeindex`.
pub const TIME_INDEX_EXTENSION: &str = "timeindex";
/// The extensions of the files of one segment.
pub const SEGMENT_FILE_EXTENSIONS: [&str; 3] = [
    SEGMENT_EXTENSION,
    OFFSET_INDEX_EXTENSION,
    TIME_INDEX_EXTENSION,
];
/// Metadata snapshot file magic.
pub const META_SNAPSHOT_MAGIC: [u8; 8] = *b"RINGLSNP";
/// The only metadata snapshot version this build writes and reads.
pub const META_SNAPSHOT_VERSION: u16 = 2;
/// Bytes in a metadata snapshot header; the payload starts here.
pub const META_SNAPSHOT_HEADER_BYTES: usize = FILE_HEADER_BYTES;
/// Extension of metadata snapshot files: `<applied offset, 20 digits>.snap`.
pub const META_SNAPSHOT_EXTENSION: &str = "snap";
/// Producer snapshot file magic.
pub const PRODUCER_SNAPSHOT_MAGIC: [u8; 8] = *b"RINGLPRD";
/// The only producer snapshot version this build writes and reads.
pub const PRODUCER_SNAPSHOT_VERSION: u16 = 1;
/// Bytes in a producer snapshot header; the payload starts here.
pub const PRODUCER_SNAPSHOT_HEADER_BYTES: usize = FILE_HEADER_BYTES;
/// Extension of producer snapshot files:
/// `<covered offset, 20 digits>.producers`.
pub const PRODUCER_SNAPSHOT_EXTENSION: &str = "producers";
/// Bytes of one producer's entry in a producer snapshot, before its
/// batches.
pub const PRODUCER_SNAPSHOT_ENTRY_BYTES: usize = 24;
/// Bytes of one retained batch in a producer snapshot entry.
pub const PRODUCER_SNAPSHOT_BATCH_BYTES: usize = 24;
/// The largest payload a valid producer snapshot has: every producer a
/// partition tracks, each with every batch it retains.
pub const PRODUCER_SNAPSHOT_PAYLOAD_BYTES_MAX: usize = PRODUCERS_MAX
    * (PRODUCER_SNAPSHOT_ENTRY_BYTES + BATCHES_RETAINED * PRODUCER_SNAPSHOT_BATCH_BYTES);

// Field positions: every 64-byte header (segment, index, both snapshots)
// has its magic at 0 and the shared fields; the rest are per file kind.
/// 64-byte header: format version, u16.
pub const FILE_HEADER_VERSION_AT: usize = 8;
/// Segment and index header: segment kind, u16 (0 in an index file).
pub const FILE_HEADER_KIND_AT: usize = 10;
/// Segment and index header: the header's own length, u32.
pub const FILE_HEADER_LENGTH_AT: usize = 12;
/// 64-byte header: the offset in the file's name, u64.
pub const FILE_HEADER_OFFSET_AT: usize = 16;
/// Segment and index header: creation time in ms, i64.
pub const FILE_HEADER_CREATED_AT: usize = 24;
/// 64-byte header: crc32c of the bytes before it, u32 ([`file_header_crc`]).
pub const FILE_HEADER_CRC_AT: usize = 60;
/// Metadata snapshot header: payload length in bytes, u64.
pub const META_SNAPSHOT_PAYLOAD_BYTES_AT: usize = 24;
/// Producer snapshot header: producer count, u32.
pub const PRODUCER_SNAPSHOT_ENTRIES_AT: usize = 24;
/// Producer snapshot header: payload length in bytes, u32.
pub const PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT: usize = 28;
/// Both snapshot headers: crc32c of the payload (the file after the
/// header), u32.
pub const SNAPSHOT_PAYLOAD_CRC_AT: usize = 32;
/// Frame header: payload length, u32.
pub const FRAME_LENGTH_AT: usize = 0;
/// Frame header: frame crc32c, u32 ([`frame_crc`]).
pub const FRAME_CRC_AT: usize = 4;
/// Frame header: the first byte the frame crc covers; it covers the rest
/// of the header, then the payload.
pub const FRAME_CRC_FROM: usize = 8;
/// Frame header: base offset of the payload, u64.
pub const FRAME_BASE_OFFSET_AT: usize = 8;
/// Frame header: max timestamp (ms) of the payload, i64.
pub const FRAME_MAX_TIMESTAMP_AT: usize = 16;
/// Frame header: offsets covered, u32.
pub const FRAME_COUNT_AT: usize = 24;
/// Frame header: flags ([`FLAG_FOOTER`]), u16.
pub const FRAME_FLAGS_AT: usize = 28;
/// Frame header: two reserved zero bytes.
pub const FRAME_RESERVED_AT: usize = 30;
/// Footer payload: end offset, u64.
pub const FOOTER_END_OFFSET_AT: usize = 0;
/// Footer payload: data end (file position of the footer frame), u64.
pub const FOOTER_DATA_END_AT: usize = 8;
/// Footer payload: max timestamp of the segment, i64.
pub const FOOTER_MAX_TIMESTAMP_AT: usize = 16;
/// Footer payload: offset index entries, u32.
pub const FOOTER_OFFSET_ENTRIES_AT: usize = 24;
/// Footer payload: time index entries, u32.
pub const FOOTER_TIME_ENTRIES_AT: usize = 28;
/// Footer payload: crc32c of the offset index entries, u32 ([`index_crc`]).
pub const FOOTER_OFFSET_INDEX_CRC_AT: usize = 32;
/// Footer payload: crc32c of the time index entries, u32 ([`index_crc`]).
pub const FOOTER_TIME_INDEX_CRC_AT: usize = 36;
/// Log start checkpoint: version, u16.
pub const LOG_START_VERSION_AT: usize = 8;
/// Log start checkpoint: log start offset, u64.
pub const LOG_START_OFFSET_AT: usize = 16;
/// Log start checkpoint: crc32c of the bytes before it, u32
/// ([`log_start_crc`]).
pub const LOG_START_CRC_AT: usize = 28;

const _: () = assert!(FILE_HEADER_BYTES.is_multiple_of(8) && FRAME_HEADER_BYTES.is_multiple_of(8));
const _: () = assert!(crate::io::BLOCK_BYTES.is_multiple_of(OFFSET_ENTRY_BYTES));
const _: () = assert!(crate::io::BLOCK_BYTES.is_multiple_of(TIME_ENTRY_BYTES));
// Index blocks end between entries (see `index_write` in log/write.rs).
const _: () = assert!(FILE_HEADER_BYTES.is_multiple_of(OFFSET_ENTRY_BYTES));
const _: () = assert!(FILE_HEADER_BYTES.is_multiple_of(TIME_ENTRY_BYTES));
// Both snapshot headers are the 64-byte header frame, and the producer
// header's u32 fields hold whatever a valid snapshot counts.
const _: () = assert!(META_SNAPSHOT_HEADER_BYTES == FILE_HEADER_BYTES);
const _: () = assert!(PRODUCER_SNAPSHOT_HEADER_BYTES == FILE_HEADER_BYTES);
const _: () = assert!(PRODUCERS_MAX <= u32::MAX as usize);
const _: () = assert!(PRODUCER_SNAPSHOT_PAYLOAD_BYTES_MAX <= u32::MAX as usize);
// A producer entry stores its batch count in one byte.
const _: () = assert!(BATCHES_RETAINED <= u8::MAX as usize);
// Producer entries and batches keep 8-byte fields 8-byte aligned.
const _: () = assert!(PRODUCER_SNAPSHOT_ENTRY_BYTES.is_multiple_of(8));
const _: () = assert!(PRODUCER_SNAPSHOT_BATCH_BYTES.is_multiple_of(8));

// Each crc is its layout's last field and a frame's crc covers every
// header field after it; the snapshot fields sit between the offset and
// the header crc. (The snapshot fixtures, the committed fuzz seeds and
// the format tests pin every exact position.)
const _: () = assert!(FILE_HEADER_CRC_AT + 4 == FILE_HEADER_BYTES);
const _: () = assert!(LOG_START_CRC_AT + 4 == LOG_START_BYTES);
const _: () = assert!(FOOTER_TIME_INDEX_CRC_AT + 4 == FOOTER_PAYLOAD_BYTES);
const _: () = assert!(FRAME_RESERVED_AT + 2 == FRAME_HEADER_BYTES);
const _: () = assert!(FRAME_CRC_FROM == FRAME_CRC_AT + 4 && FRAME_CRC_FROM == FRAME_BASE_OFFSET_AT);
const _: () = assert!(FILE_HEADER_OFFSET_AT + 8 <= META_SNAPSHOT_PAYLOAD_BYTES_AT);
const _: () = assert!(FILE_HEADER_OFFSET_AT + 8 <= PRODUCER_SNAPSHOT_ENTRIES_AT);
const _: () = assert!(PRODUCER_SNAPSHOT_ENTRIES_AT + 4 <= PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT);
const _: () = assert!(META_SNAPSHOT_PAYLOAD_BYTES_AT + 8 <= SNAPSHOT_PAYLOAD_CRC_AT);
const _: () = assert!(PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT + 4 <= SNAPSHOT_PAYLOAD_CRC_AT);
const _: () = assert!(SNAPSHOT_PAYLOAD_CRC_AT + 4 <= FILE_HEADER_CRC_AT);

/// What a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// Kafka record batches of one topic-partition.
    Partition = 1,
    /// Metadata log events.
    Meta = 2,
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Partition or meta.
    pub kind: SegmentKind,
    /// First offset in the segment.
    pub base_offset: u64,
    /// Creation time (ms) — the age that `segment.ms` measures.
    pub created_ms: i64,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}
/// Writes an integer field, little-endian, at its position.
trait WriteLe {
    fn write_le(self, b: &mut [u8], at: usize);
}
macro_rules! write_le {
    ($($t:ty),*) => {$(
        impl WriteLe for $t {
            fn write_le(self, b: &mut [u8], at: usize) {
                b[at..at + size_of::<$t>()].copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
write_le!(u16, u32, u64, i64);
fn put(b: &mut [u8], at: usize, value: impl WriteLe) {
    value.write_le(b, at);
}

/// The crc32c a 64-byte header stores at [`FILE_HEADER_CRC_AT`]: of every
/// byte before it.
pub fn file_header_crc(header: &[u8]) -> u32 {
    crc32c::crc32c(&header[..FILE_HEADER_CRC_AT])
}

/// The crc32c a frame stores at [`FRAME_CRC_AT`]: of its header from
/// [`FRAME_CRC_FROM`] on, then of its payload.
pub fn frame_crc(header: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(
        crc32c::crc32c(&header[FRAME_CRC_FROM..FRAME_HEADER_BYTES]),
        payload,
    )
}

/// The crc32c a log start checkpoint stores at [`LOG_START_CRC_AT`]: of
/// every byte before it.
pub fn log_start_crc(checkpoint: &[u8]) -> u32 {
    crc32c::crc32c(&checkpoint[..LOG_START_CRC_AT])
}

/// The crc32c a segment footer records for an index file: of its first
/// `entries` entries of `entry_bytes` each (`bytes` is the file after its
/// header); `None` if it holds fewer.
pub fn index_crc(bytes: &[u8], entries: u32, entry_bytes: usize) -> Option<u32> {
    let len = (entries as usize).checked_mul(entry_bytes)?;
    bytes.get(..len).map(crc32c::crc32c)
}

/// Writes the frame every 64-byte header shares (magic at 0, version, the
/// offset the file is named after), lets `fields` fill the bytes in
/// between, and seals it with [`file_header_crc`].
fn encode_header(
    magic: [u8; 8],
    version: u16,
    offset: u64,
    fields: impl FnOnce(&mut [u8; FILE_HEADER_BYTES]),
) -> [u8; FILE_HEADER_BYTES] {
    let mut h = [0u8; FILE_HEADER_BYTES];
    fields(&mut h);
    assert!(
        h[..FILE_HEADER_VERSION_AT + 2]
            .iter()
            .chain(&h[FILE_HEADER_OFFSET_AT..FILE_HEADER_OFFSET_AT + 8])
            .chain(&h[FILE_HEADER_CRC_AT..])
            .all(|&b| b == 0),
        "header fields stay out of the frame"
    );
    h[..magic.len()].copy_from_slice(&magic);
    put(&mut h, FILE_HEADER_VERSION_AT, version);
    put(&mut h, FILE_HEADER_OFFSET_AT, offset);
    let crc = file_header_crc(&h);
    put(&mut h, FILE_HEADER_CRC_AT, crc);
    h
}

/// Checks the frame of a 64-byte header: length, magic, version, crc, in
/// that order. On failure returns the byte position of the bad range (a
/// short file at its length, magic and crc at 0, version at its position)
/// with what is wrong there.
fn decode_header(
    bytes: &[u8],
    magic: [u8; 8],
    version: u16,
) -> Result<&[u8; FILE_HEADER_BYTES], (u64, Corruption)> {
    let Some(h) = bytes.first_chunk::<FILE_HEADER_BYTES>() else {
        return Err((bytes.len() as u64, Corruption::LengthPastEnd));
    };
    if h[0..8] != magic {
        return Err((0, Corruption::BadMagic));
    }
    let found = le_u16(h, FILE_HEADER_VERSION_AT);
    if found != version {
        return Err((FILE_HEADER_VERSION_AT as u64, Corruption::BadVersion(found)));
    }
    if file_header_crc(h) != le_u32(h, FILE_HEADER_CRC_AT) {
        return Err((0, Corruption::BadHeaderCrc));
    }
    Ok(h)
}

fn encode_file_header(magic: [u8; 8], kind: u16, base_offset: u64, created_ms: i64) -> [u8; 64] {
    encode_header(magic, FORMAT_VERSION, base_offset, |h| {
        put(h, FILE_HEADER_KIND_AT, kind);
        put(h, FILE_HEADER_LENGTH_AT, FILE_HEADER_BYTES as u32);
        put(h, FILE_HEADER_CREATED_AT, created_ms);
    })
}

/// Checks the frame and the length field of a segment or index file
/// header; returns its kind, base offset and creation time.
fn decode_file_header(bytes: &[u8], magic: [u8; 8]) -> Result<(u16, u64, i64), Corruption> {
    let h = decode_header(bytes, magic, FORMAT_VERSION).map_err(|(_, corruption)| corruption)?;
    if le_u32(h, FILE_HEADER_LENGTH_AT) as usize != FILE_HEADER_BYTES {
        return Err(Corruption::Malformed("header length"));
    }
    Ok((
        le_u16(h, FILE_HEADER_KIND_AT),
        le_u64(h, FILE_HEADER_OFFSET_AT),
        le_i64(h, FILE_HEADER_CREATED_AT),
    ))
}

/// Encodes a segment header.
pub fn encode_segment_header(header: &SegmentHeader) -> [u8; FILE_HEADER_BYTES] {
    encode_file_header(
        SEGMENT_MAGIC,
        header.kind as u16,
        header.base_offset,
        header.created_ms,
    )
}

/// Decodes and verifies a segment header.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, Corruption> {
    let (kind, base_offset, created_ms) = decode_file_header(bytes, SEGMENT_MAGIC)?;
    let kind = match kind {
        1 => SegmentKind::Partition,
        2 => SegmentKind::Meta,
        _ => return Err(Corruption::Malformed("segment kind")),
    };
    if base_offset > OFFSET_MAX {
        return Err(Corruption::Malformed(
            "base offset beyond the largest offset",
        ));
    }
    Ok(SegmentHeader {
        kind,
        base_offset,
        created_ms,
    })
}

/// Encodes an index file header.
pub fn encode_index_header(magic: [u8; 8], base_offset: u64) -> [u8; FILE_HEADER_BYTES] {
    encode_file_header(magic, 0, base_offset, 0)
}

/// Decodes an index file header, returning its base offset.
pub fn decode_index_header(bytes: &[u8], magic: [u8; 8]) -> Result<u64, Corruption> {
    decode_file_header(bytes, magic).map(|(_, base_offset, _)| base_offset)
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes after the 32-byte header.
    pub payload_len: u32,
    /// First offset the payload covers.
    pub base_offset: u64,
    /// Largest timestamp in the payload.
    pub max_timestamp_ms: i64,
    /// Offsets covered; 0 only for the footer.
    pub count: u32,
    /// Flag bits.
    pub flags: u16,
}

impl FrameHeader {
    /// Header plus payload.
    pub fn frame_bytes(&self) -> usize {
        FRAME_HEADER_BYTES + self.payload_len as usize
    }
    /// The offset after this frame.
    pub fn end_offset(&self) -> u64 {
        self.base_offset + self.count as u64
    }
    /// Whether this is a segment footer.
    pub fn is_footer(&self) -> bool {
        self.flags & FLAG_FOOTER != 0
    }
}

/// Writes a frame header for `payload` into `out[..32]`.
pub fn encode_frame_header(out: &mut [u8], header: &FrameHeader, payload: &[u8]) {
    assert_eq!(header.payload_len as usize, payload.len());
    put(out, FRAME_LENGTH_AT, header.payload_len);
    put(out, FRAME_BASE_OFFSET_AT, header.base_offset);
    put(out, FRAME_MAX_TIMESTAMP_AT, header.max_timestamp_ms);
    put(out, FRAME_COUNT_AT, header.count);
    put(out, FRAME_FLAGS_AT, header.flags);
    put(out, FRAME_RESERVED_AT, 0u16);
    let crc = frame_crc(out, payload);
    put(out, FRAME_CRC_AT, crc);
}

/// The fields of the frame header at the start of `bytes` as they are,
/// before any check: for readers that size a read or screen a candidate
/// before [`read_frame`] verifies it. `None` if `bytes` is shorter than a
/// frame header.
pub fn peek_frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    let h = bytes.first_chunk::<FRAME_HEADER_BYTES>()?;
    Some(FrameHeader {
        payload_len: le_u32(h, FRAME_LENGTH_AT),
        base_offset: le_u64(h, FRAME_BASE_OFFSET_AT),
        max_timestamp_ms: le_i64(h, FRAME_MAX_TIMESTAMP_AT),
        count: le_u32(h, FRAME_COUNT_AT),
        flags: le_u16(h, FRAME_FLAGS_AT),
    })
}

/// The result of looking for a frame at the start of `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameRead {
    /// A complete, valid frame.
    Frame(FrameHeader),
    /// Zero padding: the end of the written data.
    End,
    /// Bytes that are not a valid frame.
    Invalid(Corruption),
}

/// Decodes and verifies the frame at the start of `bytes` (which runs to the
/// end of the available data). `max_payload_bytes` bounds the length field
/// so a corrupt length cannot make a reader allocate gigabytes.
pub fn read_frame(bytes: &[u8], max_payload_bytes: usize) -> FrameRead {
    let Some(header) = peek_frame_header(bytes) else {
        if bytes.iter().all(|&b| b == 0) {
            return FrameRead::End;
        }
        return FrameRead::Invalid(Corruption::LengthPastEnd);
    };
    let stored_crc = le_u32(bytes, FRAME_CRC_AT);
    if header.payload_len == 0 && stored_crc == 0 {
        return FrameRead::End;
    }
    if header.payload_len as usize > max_payload_bytes {
        return FrameRead::Invalid(Corruption::Malformed("length above the frame limit"));
    }
    if header.frame_bytes() > bytes.len() {
        return FrameRead::Invalid(Corruption::LengthPastEnd);
    }
    let payload = &bytes[FRAME_HEADER_BYTES..header.frame_bytes()];
    if frame_crc(bytes, payload) != stored_crc {
        return FrameRead::Invalid(Corruption::BadFrameCrc);
    }
    if le_u16(bytes, FRAME_RESERVED_AT) != 0 || header.flags & !FLAG_FOOTER != 0 {
        return FrameRead::Invalid(Corruption::Malformed("reserved bits set"));
    }
    if (header.count == 0) != header.is_footer() {
        return FrameRead::Invalid(Corruption::Malformed("offset count"));
    }
    if header.base_offset > OFFSET_MAX - header.count as u64 {
        return FrameRead::Invalid(Corruption::Malformed("offsets beyond the largest offset"));
    }
    FrameRead::Frame(header)
}

/// Walks the frames of an in-memory segment image from `start`, yielding
/// each frame's position and what was found there; stops after the first
/// end marker or invalid frame. For tools and tests that hold a whole file.
///
/// ```
/// use ringlog_engine::format::{walk_frames, FrameRead};
/// let zeros = [0u8; 64];
/// let found: Vec<_> = walk_frames(&zeros, 0, 1024).collect();
/// assert_eq!(found, vec![(0, FrameRead::End)]);
/// ```
pub fn walk_frames(
    bytes: &[u8],
    start: usize,
    max_payload_bytes: usize,
) -> impl Iterator<Item = (usize, FrameRead)> + '_ {
    let mut position = Some(start);
    std::iter::from_fn(move || {
        let at = position?;
        if at >= bytes.len() {
            return None;
        }
        let found = read_frame(&bytes[at..], max_payload_bytes);
        position = match &found {
            FrameRead::Frame(h) => Some(at + h.frame_bytes()),
            FrameRead::End | FrameRead::Invalid(_) => None,
        };
        Some((at, found))
    })
}

/// The summary a sealed segment ends with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentFooter {
    /// Next offset after the segment.
    pub end_offset: u64,
    /// File position of the footer frame.
    pub data_end_bytes: u64,
    /// Largest timestamp in the segment (i64::MIN when empty).
    pub max_timestamp_ms: i64,
    /// Entries in the offset index.
    pub offset_entries: u32,
    /// Entries in the time index.
    pub time_entries: u32,
    /// crc32c of the offset index entries.
    pub offset_index_crc: u32,
    /// crc32c of the time index entries.
    pub time_index_crc: u32,
}

/// Encodes a footer payload.
pub fn encode_footer(footer: &SegmentFooter) -> [u8; FOOTER_PAYLOAD_BYTES] {
    let (f, mut out) = (footer, [0u8; FOOTER_PAYLOAD_BYTES]);
    put(&mut out, FOOTER_END_OFFSET_AT, f.end_offset);
    put(&mut out, FOOTER_DATA_END_AT, f.data_end_bytes);
    put(&mut out, FOOTER_MAX_TIMESTAMP_AT, f.max_timestamp_ms);
    put(&mut out, FOOTER_OFFSET_ENTRIES_AT, f.offset_entries);
    put(&mut out, FOOTER_TIME_ENTRIES_AT, f.time_entries);
    put(&mut out, FOOTER_OFFSET_INDEX_CRC_AT, f.offset_index_crc);
    put(&mut out, FOOTER_TIME_INDEX_CRC_AT, f.time_index_crc);
    out
}

/// Decodes a footer payload (already crc-checked as a frame).
pub fn decode_footer(payload: &[u8]) -> Result<SegmentFooter, Corruption> {
    if payload.len() != FOOTER_PAYLOAD_BYTES {
        return Err(Corruption::Malformed("footer length"));
    }
    let end_offset = le_u64(payload, FOOTER_END_OFFSET_AT);
    if end_offset > OFFSET_MAX {
        return Err(Corruption::Malformed(
            "end offset beyond the largest offset",
        ));
    }
    Ok(SegmentFooter {
        end_offset,
        data_end_bytes: le_u64(payload, FOOTER_DATA_END_AT),
        max_timestamp_ms: le_i64(payload, FOOTER_MAX_TIMESTAMP_AT),
        offset_entries: le_u32(payload, FOOTER_OFFSET_ENTRIES_AT),
        time_entries: le_u32(payload, FOOTER_TIME_ENTRIES_AT),
        offset_index_crc: le_u32(payload, FOOTER_OFFSET_INDEX_CRC_AT),
        time_index_crc: le_u32(payload, FOOTER_TIME_INDEX_CRC_AT),
    })
}

/// Encodes a complete log start checkpoint file.
pub fn encode_log_start(log_start_offset: u64) -> [u8; LOG_START_BYTES] {
    let mut out = [0u8; LOG_START_BYTES];
    out[..LOG_START_MAGIC.len()].copy_from_slice(&LOG_START_MAGIC);
    put(&mut out, LOG_START_VERSION_AT, LOG_START_VERSION);
    put(&mut out, LOG_START_OFFSET_AT, log_start_offset);
    let crc = log_start_crc(&out);
    put(&mut out, LOG_START_CRC_AT, crc);
    out
}

/// Decodes and verifies a whole log start checkpoint file. On failure
/// returns the byte position of the bad range with what is wrong there:
/// magic and crc at 0 (the crc covers bytes 0..28), version at 8, a
/// truncated file at its length (the first missing byte), extra bytes at 32,
/// a reserved byte at its position.
///
/// ```
/// use ringlog_engine::format::{decode_log_start, encode_log_start};
/// use ringlog_engine::Corruption;
/// assert_eq!(decode_log_start(&encode_log_start(42)), Ok(42));
/// assert_eq!(decode_log_start(&[]), Err((0, Corruption::LengthPastEnd)));
/// ```
pub fn decode_log_start(bytes: &[u8]) -> Result<u64, (u64, Corruption)> {
    if bytes.len() < LOG_START_BYTES {
        return Err((bytes.len() as u64, Corruption::LengthPastEnd));
    }
    if bytes[0..8] != LOG_START_MAGIC {
        return Err((0, Corruption::BadMagic));
    }
    let version = le_u16(bytes, LOG_START_VERSION_AT);
    if version != LOG_START_VERSION {
        return Err((LOG_START_VERSION_AT as u64, Corruption::BadVersion(version)));
    }
    if log_start_crc(bytes) != le_u32(bytes, LOG_START_CRC_AT) {
        return Err((0, Corruption::BadHeaderCrc));
    }
    if bytes.len() > LOG_START_BYTES {
        return Err((
            LOG_START_BYTES as u64,
            Corruption::Malformed("bytes after the log start checkpoint"),
        ));
    }
    let mut reserved = (LOG_START_VERSION_AT + 2..LOG_START_OFFSET_AT)
        .chain(LOG_START_OFFSET_AT + 8..LOG_START_CRC_AT);
    if let Some(at) = reserved.find(|&at| bytes[at] != 0) {
        return Err((
            at as u64,
            Corruption::Malformed("reserved log start checkpoint bytes set"),
        ));
    }
    Ok(le_u64(bytes, LOG_START_OFFSET_AT))
}

/// Which of the two snapshot files a header belongs to: they differ in
/// magic, version and what bytes 24..32 of the header hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotKind {
    /// `<applied offset>.snap`: the metadata state ([`crate::meta`]).
    Meta,
    /// `<covered offset>.producers`: the idempotent producer state of one
    /// partition ([`crate::producer`]).
    Producer,
}

impl SnapshotKind {
    const fn magic(self) -> [u8; 8] {
        match self {
            Self::Meta => META_SNAPSHOT_MAGIC,
            Self::Producer => PRODUCER_SNAPSHOT_MAGIC,
        }
    }

    const fn version(self) -> u16 {
        match self {
            Self::Meta => META_SNAPSHOT_VERSION,
            Self::Producer => PRODUCER_SNAPSHOT_VERSION,
        }
    }

    /// The most entries a header may count; the metadata header counts
    /// none (its payload is one archive).
    const fn entries_max(self) -> u32 {
        match self {
            Self::Meta => 0,
            Self::Producer => PRODUCERS_MAX as u32,
        }
    }

    /// The largest payload a header may frame. The metadata payload is
    /// bounded by what it holds, not by this format.
    const fn payload_bytes_max(self) -> u64 {
        match self {
            Self::Meta => u64::MAX,
            Self::Producer => PRODUCER_SNAPSHOT_PAYLOAD_BYTES_MAX as u64,
        }
    }

    const fn reserved_bytes_set(self) -> Corruption {
        Corruption::Malformed(match self {
            Self::Meta => "reserved snapshot header bytes set",
            Self::Producer => "reserved producer snapshot header bytes set",
        })
    }

    const fn over_the_limit(self) -> Corruption {
        Corruption::Malformed(match self {
            Self::Meta => "snapshot claims more than the limit",
            Self::Producer => "producer snapshot claims more than the limit",
        })
    }

    const fn bytes_after_the_payload(self) -> Corruption {
        Corruption::Malformed(match self {
            Self::Meta => "bytes after the snapshot payload",
            Self::Producer => "bytes after the producer snapshot payload",
        })
    }
}

/// A snapshot file whose header and payload crc passed their checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotView<'a> {
    /// The offset in the header (and the file name): applied offset of a
    /// metadata snapshot, covered offset of a producer snapshot.
    pub offset: u64,
    /// Entries the header counts: producers of a producer snapshot, 0 for
    /// a metadata snapshot.
    pub entries: u32,
    /// The payload, exactly as long as the header says.
    pub payload: &'a [u8],
}

/// Encodes a complete snapshot file: the header framing `payload`, then
/// `payload`. `entries` is what the payload counts (producers; 0 for a
/// metadata snapshot, whose header has no count).
///
/// ```
/// use ringlog_engine::format::{decode_snapshot, encode_snapshot, SnapshotKind};
/// let file = encode_snapshot(SnapshotKind::Producer, 40, 1, &[7; 48]);
/// let view = decode_snapshot(SnapshotKind::Producer, &file).unwrap();
/// assert_eq!((view.offset, view.entries, view.payload), (40, 1, &[7; 48][..]));
/// ```
pub fn encode_snapshot(kind: SnapshotKind, offset: u64, entries: u32, payload: &[u8]) -> Vec<u8> {
    assert!(entries <= kind.entries_max());
    assert!(payload.len() as u64 <= kind.payload_bytes_max());
    let header = encode_header(kind.magic(), kind.version(), offset, |h| {
        match kind {
            SnapshotKind::Meta => put(h, META_SNAPSHOT_PAYLOAD_BYTES_AT, payload.len() as u64),
            SnapshotKind::Producer => {
                put(h, PRODUCER_SNAPSHOT_ENTRIES_AT, entries);
                put(h, PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT, payload.len() as u32);
            }
        }
        put(h, SNAPSHOT_PAYLOAD_CRC_AT, crc32c::crc32c(payload));
    });
    let mut file = Vec::with_capacity(FILE_HEADER_BYTES + payload.len());
    file.extend_from_slice(&header);
    file.extend_from_slice(payload);
    file
}

/// Decodes and verifies a whole snapshot file of `kind` up to its payload
/// crc: the header frame (length, magic, version, crc), reserved bytes,
/// the count and length limits, a payload exactly as long as the header
/// says, and the payload crc. On failure returns the byte position of the
/// bad range with what is wrong there: a short file at its length, magic
/// and header crc at 0, version at 8, a reserved byte at its position, a
/// count or length over the limit at 24, bytes after the payload where
/// they start, and the payload crc ([`Corruption::BadFrameCrc`]: the
/// header frames the payload) at 64.
pub fn decode_snapshot(
    kind: SnapshotKind,
    bytes: &[u8],
) -> Result<SnapshotView<'_>, (u64, Corruption)> {
    let h = decode_header(bytes, kind.magic(), kind.version())?;
    // Zero where a segment header has its kind and length, and after
    // the payload crc.
    let mut reserved = (FILE_HEADER_VERSION_AT + 2..FILE_HEADER_OFFSET_AT)
        .chain(SNAPSHOT_PAYLOAD_CRC_AT + 4..FILE_HEADER_CRC_AT);
    if let Some(at) = reserved.find(|&at| h[at] != 0) {
        return Err((at as u64, kind.reserved_bytes_set()));
    }
    let (entries, payload_bytes, fields_at) = match kind {
        SnapshotKind::Meta => {
            let at = META_SNAPSHOT_PAYLOAD_BYTES_AT;
            (0, le_u64(h, at), at)
        }
        SnapshotKind::Producer => (
            le_u32(h, PRODUCER_SNAPSHOT_ENTRIES_AT),
            u64::from(le_u32(h, PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT)),
            PRODUCER_SNAPSHOT_ENTRIES_AT,
        ),
    };
    if entries > kind.entries_max() || payload_bytes > kind.payload_bytes_max() {
        return Err((fields_at as u64, kind.over_the_limit()));
    }
    let available = (bytes.len() - FILE_HEADER_BYTES) as u64;
    if payload_bytes > available {
        return Err((bytes.len() as u64, Corruption::LengthPastEnd));
    }
    if payload_bytes < available {
        return Err((
            FILE_HEADER_BYTES as u64 + payload_bytes,
            kind.bytes_after_the_payload(),
        ));
    }
    let payload = &bytes[FILE_HEADER_BYTES..];
    if crc32c::crc32c(payload) != le_u32(h, SNAPSHOT_PAYLOAD_CRC_AT) {
        return Err((FILE_HEADER_BYTES as u64, Corruption::BadFrameCrc));
    }
    Ok(SnapshotView {
        offset: le_u64(h, FILE_HEADER_OFFSET_AT),
        entries,
        payload,
    })
}

/// One producer's entry in a producer snapshot payload; its retained
/// batches follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerSnapshotEntry {
    /// Producer id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub epoch: i16,
    /// Retained batches after this entry.
    pub batches: u8,
    /// Broker time of the producer's last write, ms.
    pub last_write_ms: i64,
}

/// Encodes a producer snapshot entry (without its batches).
pub fn encode_producer_snapshot_entry(
    entry: &ProducerSnapshotEntry,
) -> [u8; PRODUCER_SNAPSHOT_ENTRY_BYTES] {
    let mut out = [0u8; PRODUCER_SNAPSHOT_ENTRY_BYTES];
    out[0..8].copy_from_slice(&entry.producer_id.to_le_bytes());
    out[8..10].copy_from_slice(&entry.epoch.to_le_bytes());
    out[10] = entry.batches;
    out[16..24].copy_from_slice(&entry.last_write_ms.to_le_bytes());
    out
}

/// Decodes a producer snapshot entry; `None` if its reserved bytes are
/// set. The ranges of its fields are the producer state's to check.
pub fn decode_producer_snapshot_entry(
    bytes: &[u8; PRODUCER_SNAPSHOT_ENTRY_BYTES],
) -> Option<ProducerSnapshotEntry> {
    if bytes[11..16].iter().any(|&b| b != 0) {
        return None;
    }
    Some(ProducerSnapshotEntry {
        producer_id: le_i64(bytes, 0),
        epoch: le_u16(bytes, 8) as i16,
        batches: bytes[10],
        last_write_ms: le_i64(bytes, 16),
    })
}

/// Encodes one retained batch of a producer snapshot entry.
pub fn encode_producer_snapshot_batch(batch: &BatchRecord) -> [u8; PRODUCER_SNAPSHOT_BATCH_BYTES] {
    let mut out = [0u8; PRODUCER_SNAPSHOT_BATCH_BYTES];
    out[0..4].copy_from_slice(&batch.first_seq.to_le_bytes());
    out[4..8].copy_from_slice(&batch.last_seq.to_le_bytes());
    out[8..16].copy_from_slice(&batch.base_offset.to_le_bytes());
    out[16..20].copy_from_slice(&batch.offset_count.to_le_bytes());
    out
}

/// Decodes one retained batch of a producer snapshot entry; `None` if its
/// reserved bytes are set. The ranges of its fields are the producer
/// state's to check.
pub fn decode_producer_snapshot_batch(
    bytes: &[u8; PRODUCER_SNAPSHOT_BATCH_BYTES],
) -> Option<BatchRecord> {
    if le_u32(bytes, 20) != 0 {
        return None;
    }
    Some(BatchRecord {
        first_seq: le_u32(bytes, 0) as i32,
        last_seq: le_u32(bytes, 4) as i32,
        base_offset: le_u64(bytes, 8),
        offset_count: le_u32(bytes, 16),
    })
}

/// One sparse offset index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Offset minus the segment base offset.
    pub relative_offset: u32,
    /// File position of the frame holding that offset.
    pub position: u32,
}

/// One sparse time index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp in the segment up to and including this frame.
    pub max_timestamp_ms: i64,
    /// Offset minus base of the frame.
    pub relative_offset: u32,
    /// File position of the frame.
    pub position: u32,
}

/// Encodes an offset index entry.
pub fn encode_offset_entry(entry: &OffsetEntry) -> [u8; OFFSET_ENTRY_BYTES] {
    let mut out = [0u8; OFFSET_ENTRY_BYTES];
    out[0..4].copy_from_slice(&entry.relative_offset.to_le_bytes());
    out[4..8].copy_from_slice(&entry.position.to_le_bytes());
    out
}

/// Encodes a time index entry.
pub fn encode_time_entry(entry: &TimeEntry) -> [u8; TIME_ENTRY_BYTES] {
    let mut out = [0u8; TIME_ENTRY_BYTES];
    out[0..8].copy_from_slice(&entry.max_timestamp_ms.to_le_bytes());
    out[8..12].copy_from_slice(&entry.relative_offset.to_le_bytes());
    out[12..16].copy_from_slice(&entry.position.to_le_bytes());
    out
}

/// Decodes offset index entries, stopping at padding or a torn entry.
pub fn decode_offset_entries(bytes: &[u8]) -> Vec<OffsetEntry> {
    bytes
        .chunks_exact(OFFSET_ENTRY_BYTES)
        .map(|c| OffsetEntry {
            relative_offset: le_u32(c, 0),
            position: le_u32(c, 4),
        })
        .take_while(|e| e.position != 0)
        .collect()
}

/// Decodes time index entries, stopping at padding or a torn entry.
pub fn decode_time_entries(bytes: &[u8]) -> Vec<TimeEntry> {
    bytes
        .chunks_exact(TIME_ENTRY_BYTES)
        .map(|c| TimeEntry {
            max_timestamp_ms: le_i64(c, 0),
            relative_offset: le_u32(c, 8),
            position: le_u32(c, 12),
        })
        .take_while(|e| e.position != 0)
        .collect()
}

/// Segment and index file names: the base offset, zero-padded to 20 digits
/// so lexical order is offset order.
///
/// ```
/// assert_eq!(ringlog_engine::format::segment_file_name(42, "log"), "00000000000000000042.log");
/// ```
pub fn segment_file_name(base_offset: u64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// Parses `<20 digits>.<extension>` back into a base offset.
pub fn parse_segment_file_name(name: &str, extension: &str) -> Option<u64> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests;
