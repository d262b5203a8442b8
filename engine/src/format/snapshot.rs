//! The metadata snapshot and the producer snapshot: one header codec for
//! both (`SnapshotKind`), on the 64-byte header frame the segment and
//! index files use (see [`super`] for how the two headers relate), and the
//! producer snapshot's entries and batches.
//!
//! ## Snapshot files `<applied offset>.snap` and `<covered offset>.producers`
//!
//! ```text
//! header (64 bytes), one codec for both snapshots (SnapshotKind)
//!   0  8  magic: metadata "RINGLSNP", producer "RINGLPRD"
//!   8  2  version: metadata 3 (2 added groups and their offsets, 3 archives; 2 is still read), producer 1
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
//! The header checks only what frames the payload; the owners check the
//! payload itself (rkyv validation and state invariants in
//! [`crate::meta`]; ids ascending, every field in range and batches below
//! the covered offset in [`crate::producer`]), so a file that passes its
//! crcs but was written by a bug is still refused rather than trusted.

use super::{
    decode_header, encode_header, le_i64, le_u16, le_u32, le_u64, put, FILE_HEADER_BYTES,
    FILE_HEADER_CRC_AT, FILE_HEADER_OFFSET_AT, FILE_HEADER_VERSION_AT,
};
use crate::error::Corruption;
use crate::producer::{BatchRecord, BATCHES_RETAINED, PRODUCERS_MAX};

/// Metadata snapshot file magic.
pub const META_SNAPSHOT_MAGIC: [u8; 8] = *b"RINGLSNP";
/// The metadata snapshot version this build writes: 5 added client
/// quotas and ACL bindings.
pub const META_SNAPSHOT_VERSION: u16 = 5;
/// The version that added archives to the metadata state.
pub const META_SNAPSHOT_VERSION_ARCHIVES: u16 = 3;
/// The version that added users' SCRAM credentials to the metadata state.
pub const META_SNAPSHOT_VERSION_USERS: u16 = 4;
/// The version that added client quotas and ACL bindings to the
/// metadata state.
pub const META_SNAPSHOT_VERSION_QUOTAS: u16 = 5;
/// The oldest metadata snapshot version this build reads (2 added groups
/// and their offsets; a version 2 state is read and given no archives).
pub const META_SNAPSHOT_VERSION_OLDEST: u16 = 2;
const _: () = assert!(META_SNAPSHOT_VERSION_OLDEST <= META_SNAPSHOT_VERSION);
const _: () = assert!(META_SNAPSHOT_VERSION == META_SNAPSHOT_VERSION_QUOTAS);
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

// Field positions between the shared fields of the 64-byte header
// (magic, version, offset, crc: in mod.rs).
/// Metadata snapshot header: payload length in bytes, u64.
pub const META_SNAPSHOT_PAYLOAD_BYTES_AT: usize = 24;
/// Producer snapshot header: producer count, u32.
pub const PRODUCER_SNAPSHOT_ENTRIES_AT: usize = 24;
/// Producer snapshot header: payload length in bytes, u32.
pub const PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT: usize = 28;
/// Both snapshot headers: crc32c of the payload (the file after the
/// header), u32.
pub const SNAPSHOT_PAYLOAD_CRC_AT: usize = 32;

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

// The snapshot fields sit between the offset and the header crc.
const _: () = assert!(FILE_HEADER_OFFSET_AT + 8 <= META_SNAPSHOT_PAYLOAD_BYTES_AT);
const _: () = assert!(FILE_HEADER_OFFSET_AT + 8 <= PRODUCER_SNAPSHOT_ENTRIES_AT);
const _: () = assert!(PRODUCER_SNAPSHOT_ENTRIES_AT + 4 <= PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT);
const _: () = assert!(META_SNAPSHOT_PAYLOAD_BYTES_AT + 8 <= SNAPSHOT_PAYLOAD_CRC_AT);
const _: () = assert!(PRODUCER_SNAPSHOT_PAYLOAD_BYTES_AT + 4 <= SNAPSHOT_PAYLOAD_CRC_AT);
const _: () = assert!(SNAPSHOT_PAYLOAD_CRC_AT + 4 <= FILE_HEADER_CRC_AT);

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
    pub(super) const fn magic(self) -> [u8; 8] {
        match self {
            Self::Meta => META_SNAPSHOT_MAGIC,
            Self::Producer => PRODUCER_SNAPSHOT_MAGIC,
        }
    }

    pub(super) const fn version(self) -> u16 {
        match self {
            Self::Meta => META_SNAPSHOT_VERSION,
            Self::Producer => PRODUCER_SNAPSHOT_VERSION,
        }
    }

    /// The oldest version this build reads.
    pub(super) const fn oldest_version(self) -> u16 {
        match self {
            Self::Meta => META_SNAPSHOT_VERSION_OLDEST,
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
    /// The format version in the header (between the kind's oldest
    /// readable and current versions).
    pub version: u16,
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
    let h = decode_header(bytes, kind.magic(), kind.oldest_version()..=kind.version())?;
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
        version: le_u16(h, FILE_HEADER_VERSION_AT),
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
