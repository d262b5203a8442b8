//! Segment files and their two index files: the 64-byte segment and index
//! headers (on the frame shared with the snapshots, in [`super`]), the
//! frames a segment holds, the footer that seals it, the index entries and
//! the file names.
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

use super::{
    decode_header, encode_header, le_i64, le_u16, le_u32, le_u64, put, FILE_HEADER_BYTES,
    FILE_HEADER_OFFSET_AT,
};
use crate::error::Corruption;

/// Segment file magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RINGLSEG";
/// Offset index magic.
pub const OFFSET_INDEX_MAGIC: [u8; 8] = *b"RINGLIDX";
/// Time index magic.
pub const TIME_INDEX_MAGIC: [u8; 8] = *b"RINGLTIX";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
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
/// The largest offset a log holds. Kafka offsets are `i64` on the wire, so
/// a frame ends (base offset plus count) at most here, and no segment base
/// or footer end offset lies beyond it: a file that says otherwise is
/// corrupt, and appends stop here ([`crate::Error::OffsetsExhausted`]).
/// Keeping every offset at most `i64::MAX` also means an offset plus a
/// frame's `u32` count never overflows a `u64`.
pub const OFFSET_MAX: u64 = i64::MAX as u64;
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

// Field positions between the shared fields of the 64-byte header
// (magic, version, offset, crc: in mod.rs) that only the segment and
// index headers have, then the frame and footer positions.
/// Segment and index header: segment kind, u16 (0 in an index file).
pub const FILE_HEADER_KIND_AT: usize = 10;
/// Segment and index header: the header's own length, u32.
pub const FILE_HEADER_LENGTH_AT: usize = 12;
/// Segment and index header: creation time in ms, i64.
pub const FILE_HEADER_CREATED_AT: usize = 24;
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

const _: () = assert!(FILE_HEADER_BYTES.is_multiple_of(8) && FRAME_HEADER_BYTES.is_multiple_of(8));
const _: () = assert!(crate::io::BLOCK_BYTES.is_multiple_of(OFFSET_ENTRY_BYTES));
const _: () = assert!(crate::io::BLOCK_BYTES.is_multiple_of(TIME_ENTRY_BYTES));
// Index blocks end between entries (see `index_write` in log/write.rs).
const _: () = assert!(FILE_HEADER_BYTES.is_multiple_of(OFFSET_ENTRY_BYTES));
const _: () = assert!(FILE_HEADER_BYTES.is_multiple_of(TIME_ENTRY_BYTES));

// Each crc is its layout's last field and a frame's crc covers every
// header field after it.
const _: () = assert!(FOOTER_TIME_INDEX_CRC_AT + 4 == FOOTER_PAYLOAD_BYTES);
const _: () = assert!(FRAME_RESERVED_AT + 2 == FRAME_HEADER_BYTES);
const _: () = assert!(FRAME_CRC_FROM == FRAME_CRC_AT + 4 && FRAME_CRC_FROM == FRAME_BASE_OFFSET_AT);

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

/// The crc32c a frame stores at [`FRAME_CRC_AT`]: of its header from
/// [`FRAME_CRC_FROM`] on, then of its payload.
pub fn frame_crc(header: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(
        crc32c::crc32c(&header[FRAME_CRC_FROM..FRAME_HEADER_BYTES]),
        payload,
    )
}

/// The crc32c a segment footer records for an index file: of its first
/// `entries` entries of `entry_bytes` each (`bytes` is the file after its
/// header); `None` if it holds fewer.
pub fn index_crc(bytes: &[u8], entries: u32, entry_bytes: usize) -> Option<u32> {
    let len = (entries as usize).checked_mul(entry_bytes)?;
    bytes.get(..len).map(crc32c::crc32c)
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
    let h = decode_header(bytes, magic, FORMAT_VERSION..=FORMAT_VERSION)
        .map_err(|(_, corruption)| corruption)?;
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
