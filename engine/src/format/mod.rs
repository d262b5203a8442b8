//! Byte layouts of every engine file, as pure functions over byte slices so
//! the log, recovery and `ringlog inspect` share one definition.
//!
//! All integers are little-endian; every crc is CRC-32C (Castagnoli). Kafka
//! payloads keep their own big-endian layout inside frames. The `*_AT`
//! constants name the positions each layout's file draws (listed below)
//! and the `*_EXTENSION` constants the file names; the codecs here, the
//! fuzz harness's reseal, tools and tests all take them from this module,
//! so each layout is written once.
//!
//! ## Where each layout is
//!
//! * `segment.rs`: segment files `<base>.log` (header, frames, footer) and
//!   their index files `<base>.index` and `<base>.timeindex` (header and
//!   entries), the `FRAME_*` and `FOOTER_*` positions, [`OFFSET_MAX`] and
//!   the segment file names ([`segment_file_name`]).
//! * `log_start.rs`: the log start checkpoint `log-start-offset`
//!   ([`encode_log_start`], [`decode_log_start`]).
//! * `snapshot.rs`: the metadata snapshot `<applied offset>.snap` and the
//!   producer snapshot `<covered offset>.producers`, one header codec for
//!   both ([`SnapshotKind`]), with the producer snapshot's entries and
//!   batches.
//! * here: the 64-byte header frame all of them but the log start
//!   checkpoint share (the `FILE_HEADER_*` positions of its shared fields,
//!   [`file_header_crc`]) and the little-endian field readers and writer
//!   (which the archive format, `crate::archive`, uses too).
//!
//! Every item is re-exported here, so each is named `format::X` whichever
//! file holds it.
//!
//! ## The 64-byte header frame
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

use crate::error::Corruption;

mod log_start;
mod segment;
mod snapshot;

pub use log_start::{
    decode_log_start, encode_log_start, log_start_crc, LOG_START_BYTES, LOG_START_CRC_AT,
    LOG_START_FILE_NAME, LOG_START_MAGIC, LOG_START_OFFSET_AT, LOG_START_VERSION,
    LOG_START_VERSION_AT,
};
pub use segment::{
    decode_footer, decode_index_header, decode_offset_entries, decode_segment_header,
    decode_time_entries, encode_footer, encode_frame_header, encode_index_header,
    encode_offset_entry, encode_segment_header, encode_time_entry, frame_crc, index_crc,
    parse_segment_file_name, peek_frame_header, read_frame, segment_file_name, walk_frames,
    FrameHeader, FrameRead, OffsetEntry, SegmentFooter, SegmentHeader, SegmentKind, TimeEntry,
    FILE_HEADER_CREATED_AT, FILE_HEADER_KIND_AT, FILE_HEADER_LENGTH_AT, FLAG_FOOTER,
    FOOTER_DATA_END_AT, FOOTER_END_OFFSET_AT, FOOTER_MAX_TIMESTAMP_AT, FOOTER_OFFSET_ENTRIES_AT,
    FOOTER_OFFSET_INDEX_CRC_AT, FOOTER_PAYLOAD_BYTES, FOOTER_TIME_ENTRIES_AT,
    FOOTER_TIME_INDEX_CRC_AT, FORMAT_VERSION, FRAME_BASE_OFFSET_AT, FRAME_COUNT_AT, FRAME_CRC_AT,
    FRAME_CRC_FROM, FRAME_FLAGS_AT, FRAME_HEADER_BYTES, FRAME_LENGTH_AT, FRAME_MAX_TIMESTAMP_AT,
    FRAME_RESERVED_AT, OFFSET_ENTRY_BYTES, OFFSET_INDEX_EXTENSION, OFFSET_INDEX_MAGIC, OFFSET_MAX,
    SEGMENT_EXTENSION, SEGMENT_FILE_EXTENSIONS, SEGMENT_MAGIC, TIME_ENTRY_BYTES,
    TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC,
};
pub use snapshot::{
    decode_producer_snapshot_batch, decode_producer_snapshot_entry, decode_snapshot,
    encode_producer_snapshot_batch, encode_producer_snapshot_entry, encode_snapshot,
    ProducerSnapshotEntry, SnapshotKind, SnapshotView, META_SNAPSHOT_EXTENSION,
    META_SNAPSHOT_HEADER_BYTES, META_SNAPSHOT_MAGIC, META_SNAPSHOT_PAYLOAD_BYTES_AT,
    META_SNAPSHOT_VERSION, META_SNAPSHOT_VERSION_ACLS, META_SNAPSHOT_VERSION_ARCHIVES,
    META_SNAPSHOT_VERSION_OLDEST, META_SNAPSHOT_VERSION_USERS, PRODUCER_SNAPSHOT_BATCH_BYTES,
    PRODUCER_SNAPSHOT_ENTRIES_AT, PRODUCER_SNAPSHOT_ENTRY_BYTES, PRODUCER_SNAPSHOT_EXTENSION,
    PRODUCER_SNAPSHOT_HEADER_BYTES, PRODUCER_SNAPSHOT_MAGIC, PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT,
    PRODUCER_SNAPSHOT_PAYLOAD_BYTES_MAX, PRODUCER_SNAPSHOT_VERSION, SNAPSHOT_PAYLOAD_CRC_AT,
};

/// Bytes in a segment or index file header.
pub const FILE_HEADER_BYTES: usize = 64;

// Field positions: every 64-byte header (segment, index, both snapshots)
// has its magic at 0 and the shared fields; the rest are per file kind.
/// 64-byte header: format version, u16.
pub const FILE_HEADER_VERSION_AT: usize = 8;
/// 64-byte header: the offset in the file's name, u64.
pub const FILE_HEADER_OFFSET_AT: usize = 16;
/// 64-byte header: crc32c of the bytes before it, u32 ([`file_header_crc`]).
pub const FILE_HEADER_CRC_AT: usize = 60;

// The crc is the header's last field. (The snapshot fixtures, the
// committed fuzz seeds and the format tests pin every exact position.)
const _: () = assert!(FILE_HEADER_CRC_AT + 4 == FILE_HEADER_BYTES);

pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
pub(crate) fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}
/// Writes an integer field, little-endian, at its position.
pub(crate) trait WriteLe {
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
pub(crate) fn put(b: &mut [u8], at: usize, value: impl WriteLe) {
    value.write_le(b, at);
}

/// The crc32c a 64-byte header stores at [`FILE_HEADER_CRC_AT`]: of every
/// byte before it.
pub fn file_header_crc(header: &[u8]) -> u32 {
    crc32c::crc32c(&header[..FILE_HEADER_CRC_AT])
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
    versions: std::ops::RangeInclusive<u16>,
) -> Result<&[u8; FILE_HEADER_BYTES], (u64, Corruption)> {
    let Some(h) = bytes.first_chunk::<FILE_HEADER_BYTES>() else {
        return Err((bytes.len() as u64, Corruption::LengthPastEnd));
    };
    if h[0..8] != magic {
        return Err((0, Corruption::BadMagic));
    }
    let found = le_u16(h, FILE_HEADER_VERSION_AT);
    if !versions.contains(&found) {
        return Err((FILE_HEADER_VERSION_AT as u64, Corruption::BadVersion(found)));
    }
    if file_header_crc(h) != le_u32(h, FILE_HEADER_CRC_AT) {
        return Err((0, Corruption::BadHeaderCrc));
    }
    Ok(h)
}

#[cfg(test)]
mod tests;
