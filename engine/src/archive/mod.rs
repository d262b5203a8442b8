//! Archives: one self-describing object per sealed segment, for object
//! storage (issue 13, tiered storage). This module is the format only:
//! building an archive in memory, opening one from its tail, looking up
//! offsets and timestamps, and verifying every byte. Uploading, tiering
//! and the read path build on it.
//!
//! ## Why this shape
//!
//! An object store serves ranged GETs, each with a round trip of
//! milliseconds, so the layout is built around reading as few ranges as
//! possible (the shape of a Quickwit split):
//!
//! * **Members back to back, then a footer, then a fixed trailer.** The
//!   trailer is the object's last [`TRAILER_BYTES`]: one GET of the last
//!   [`TAIL_READ_BYTES`] returns the trailer, the footer and, for a small
//!   segment, the indexes as well ([`Footer::from_tail`]). A footer larger
//!   than that tail costs one more GET, of exactly its range. When the
//!   metadata log has recorded the [`Trailer`]'s fields, no tail GET is
//!   needed at all ([`Footer::decode`]).
//! * **The records member is the segment's RecordBatch v2 bytes as
//!   stored**, back to back without frame headers: the bytes a Fetch
//!   answers with. A read of an offset is one ranged GET of whole batches
//!   from a batch boundary the offset index names, sent to the client as
//!   read.
//! * **The offset index splits the records into spans** of about
//!   [`INDEX_INTERVAL_BYTES`] of whole batches, each with its own crc32c. A
//!   reader of part of the records checks exactly the bytes it read
//!   ([`ArchiveIndex::verify`]), so a flipped byte is found on the range
//!   that holds it and the other ranges keep serving. The member's whole
//!   crc in the footer serves readers of the whole object.
//! * **The time index runs beside it**: per span, the largest timestamp of
//!   every batch up to the span's end, so the first span holding a batch
//!   at or after a timestamp is found exactly ([`ArchiveIndex::span_for_timestamp`]).
//! * **Member kinds are open** ([`MemberKind`]): readers skip kinds they
//!   do not know (the search issue adds Tantivy index files and a
//!   hotcache), and [`verify_all`] still checks their crc32c.
//! * **Deterministic bytes.** The same segment and [`ArchiveMeta`] always
//!   give the same object, under the same key ([`archive_key`]): an upload
//!   repeated after a crash writes the same object again.
//!
//! Every position is named once (`*_AT`, in `format.rs`), and
//! ARCHITECTURE.md ("Archive format") draws the layout byte by byte.
//!
//! ## Where each part is
//!
//! * `format.rs`: the positions, the [`Trailer`], the [`Footer`] and its
//!   member table, the index entries.
//! * `writer.rs`: [`ArchiveWriter`], [`build_archive`], and
//!   [`archive_segment`], which streams a sealed segment into an archive.
//! * `file.rs`: [`write_archive_file`], an archive written into a local
//!   directory with direct I/O (the local store's put).
//! * `reader.rs`: [`ArchiveIndex`] (lookups, ranged-read checks) and
//!   [`verify_all`].

use crate::batch::BatchError;
use crate::meta::format_topic_id;
use std::fmt;

mod file;
mod format;
mod reader;
mod writer;

pub use file::{write_archive_file, STAGING_SUFFIX};
pub use format::{
    Footer, Member, TailRead, Trailer, ARCHIVE_EXTENSION, ARCHIVE_VERSION, FOOTER_BATCH_COUNT_AT,
    FOOTER_FIRST_OFFSET_AT, FOOTER_FIXED_BYTES, FOOTER_LAST_OFFSET_AT, FOOTER_MAGIC,
    FOOTER_MAGIC_AT, FOOTER_MAX_TIMESTAMP_AT, FOOTER_MEMBER_COUNT_AT, FOOTER_MIN_TIMESTAMP_AT,
    FOOTER_PARTITION_AT, FOOTER_RECORD_COUNT_AT, FOOTER_TOPIC_ID_AT, FOOTER_TOPIC_NAME_LENGTH_AT,
    FOOTER_VERSION_AT, INDEX_INTERVAL_BYTES, MEMBER_CRC_AT, MEMBER_ENTRY_BYTES, MEMBER_KIND_AT,
    MEMBER_LENGTH_AT, MEMBER_POSITION_AT, OFFSET_INDEX_CRC_AT, OFFSET_INDEX_ENTRY_BYTES,
    OFFSET_INDEX_POSITION_AT, OFFSET_INDEX_RELATIVE_OFFSET_AT, TAIL_READ_BYTES,
    TIME_INDEX_ENTRY_BYTES, TIME_INDEX_MAX_TIMESTAMP_AT, TIME_INDEX_RELATIVE_OFFSET_AT,
    TOPIC_NAME_BYTES_MAX, TRAILER_BYTES, TRAILER_CRC_AT, TRAILER_FOOTER_CRC_AT,
    TRAILER_FOOTER_LENGTH_AT, TRAILER_FOOTER_POSITION_AT, TRAILER_MAGIC, TRAILER_MAGIC_AT,
    TRAILER_RESERVED_AT, TRAILER_VERSION_AT,
};
pub use reader::{verify_all, ArchiveIndex, ReadRange, Report, Span};
pub use writer::{
    archive_segment, build_archive, for_each_stored_batch, ArchiveMeta, ArchiveWriter, Archived,
    Finished, NewMember, SEGMENT_READ_BYTES,
};

/// What a member holds: an open code, so a reader skips kinds it does not
/// know instead of refusing the archive. Kind 0 is never valid (a zeroed
/// member table entry is damage, not a member).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberKind(pub u32);

impl MemberKind {
    /// The segment's record batches, as stored.
    pub const RECORDS: MemberKind = MemberKind(1);
    /// The sparse offset index: one entry per span of the records.
    pub const OFFSET_INDEX: MemberKind = MemberKind(2);
    /// The time index: one entry per span, beside the offset index.
    pub const TIME_INDEX: MemberKind = MemberKind(3);
    /// The segment's search index (a `ringlog_shard::search` blob), when
    /// the topic is searchable and the indexer kept up; archives without
    /// one are whole all the same.
    pub const SEARCH_INDEX: MemberKind = MemberKind(16);

    /// Whether the archive itself writes and reads this kind (once each in
    /// every archive); other kinds are added with
    /// [`ArchiveWriter::add_member`].
    pub fn is_builtin(self) -> bool {
        matches!(
            self,
            MemberKind::RECORDS | MemberKind::OFFSET_INDEX | MemberKind::TIME_INDEX
        )
    }
}

impl fmt::Display for MemberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemberKind::RECORDS => write!(f, "records"),
            MemberKind::OFFSET_INDEX => write!(f, "offset index"),
            MemberKind::TIME_INDEX => write!(f, "time index"),
            MemberKind::SEARCH_INDEX => write!(f, "search index"),
            MemberKind(kind) => write!(f, "kind {kind}"),
        }
    }
}

/// The part of an archive a corruption was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The fixed-size trailer at the end of the object.
    Trailer,
    /// The footer: the summary fields and the member table.
    Footer,
    /// The member of this kind.
    Member(MemberKind),
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Trailer => write!(f, "trailer"),
            Region::Footer => write!(f, "footer"),
            Region::Member(kind) => write!(f, "member {kind}"),
        }
    }
}

/// What exactly is wrong with an archive's bytes (the archive's
/// counterpart of [`crate::Corruption`], whose variants name file headers
/// and frames an archive does not have).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveCorruption {
    /// The object (or the bytes read of it) is shorter than its layout
    /// says.
    #[error("object ends early")]
    Truncated,
    /// Not the trailer's or the footer's magic bytes.
    #[error("bad magic")]
    BadMagic,
    /// A format version this build cannot read.
    #[error("unsupported format version {0}")]
    BadVersion(u16),
    /// The bytes do not match the crc32c stored for them.
    #[error("crc32c {stored:#010x} stored, {computed:#010x} computed")]
    CrcMismatch {
        /// The crc the archive stores.
        stored: u32,
        /// The crc of the bytes read.
        computed: u32,
    },
    /// A field with an impossible value (named).
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A batch whose base offset does not continue the one before it.
    #[error("offset gap: expected base offset {expected}, found {found}")]
    OffsetGap {
        /// The offset the previous batch ends at.
        expected: u64,
        /// The base offset found.
        found: i64,
    },
    /// A record batch that fails its own checks (Kafka's CRC-32C among
    /// them).
    #[error("record batch: {0}")]
    BadBatch(BatchError),
    /// A footer or index field that disagrees with the records it
    /// describes. Wide enough for every offset, count and timestamp.
    #[error("{field} is {stored} in the archive, {found} in the records")]
    Mismatch {
        /// The field.
        field: &'static str,
        /// Its value in the footer or index.
        stored: i128,
        /// The value the records give.
        found: i128,
    },
}

/// Why [`ArchiveWriter`] refused its input; nothing usable was built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// An archive holds at least one batch (its offsets are its name).
    #[error("no record batches to archive")]
    NoBatches,
    /// A segment handed to [`archive_segment`] does not end in its footer
    /// frame: it is not sealed, or a frame in it does not verify.
    #[error("the segment does not end in a footer frame (not sealed, or a frame does not verify)")]
    SegmentNotSealed,
    /// The topic name is longer than Kafka allows.
    #[error("topic name of {0} bytes exceeds {TOPIC_NAME_BYTES_MAX}")]
    TopicName(usize),
    /// A partition beyond Kafka's `i32` partition ids.
    #[error("partition {0} beyond Kafka's i32")]
    Partition(u32),
    /// A batch fails [`crate::batch::BatchView::parse`].
    #[error("record batch at byte {at}: {error}")]
    Batch {
        /// Its position in the records.
        at: u64,
        /// What is wrong.
        error: BatchError,
    },
    /// The records end inside a batch.
    #[error("records end inside the batch at byte {at}")]
    Torn {
        /// Position of that batch in the records.
        at: u64,
    },
    /// A batch does not start where the previous one ended.
    #[error("batch at byte {at}: expected base offset {expected}, found {found}")]
    OffsetGap {
        /// Its position in the records.
        at: u64,
        /// The offset the previous batch ends at.
        expected: u64,
        /// Its base offset.
        found: i64,
    },
    /// A batch's offsets are negative, pass [`crate::format::OFFSET_MAX`],
    /// or lie more than `u32::MAX` after the archive's first offset (index
    /// entries hold relative offsets as u32, as a segment's do).
    #[error("batch at byte {at}: offsets from {base_offset} are out of range")]
    OffsetOutOfRange {
        /// Its position in the records.
        at: u64,
        /// Its base offset.
        base_offset: i64,
    },
    /// [`ArchiveWriter::add_member`] with kind 0 or a kind the archive
    /// writes itself.
    #[error("member {0} is reserved")]
    ReservedKind(MemberKind),
    /// A batch pushed after a member was added: the records are one
    /// member, from byte 0, before every other.
    #[error("batch at byte {at} pushed after a member")]
    BatchAfterMember {
        /// Where the records ended.
        at: u64,
    },
}

/// Every failure of the archive format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The archive's bytes fail validation. `at` is the byte position in
    /// the object of the first bad range (a field, an entry, a batch, or
    /// the start of the range a crc covers).
    #[error("{region} at byte {at}: {corruption}")]
    Corrupt {
        /// Where.
        region: Region,
        /// Byte position in the object.
        at: u64,
        /// What.
        corruption: ArchiveCorruption,
    },
    /// The writer's input cannot be archived.
    #[error("{0}")]
    Invalid(InvalidInput),
}

impl From<InvalidInput> for ArchiveError {
    fn from(e: InvalidInput) -> Self {
        ArchiveError::Invalid(e)
    }
}

pub(crate) fn corrupt(region: Region, at: u64, corruption: ArchiveCorruption) -> ArchiveError {
    ArchiveError::Corrupt {
        region,
        at,
        corruption,
    }
}

/// The object key of an archive: deterministic from what names it, so an
/// upload repeated after a crash writes the same key, and keys list in
/// offset order within a partition (offsets zero-padded to 20 digits, as
/// segment file names are). The topic id, not the name, keeps a deleted
/// and recreated topic's archives apart.
///
/// ```
/// use ringlog_engine::archive::archive_key;
/// assert_eq!(
///     archive_key(&[0xab; 16], 3, 100, 199),
///     "topics/abababababababababababababababab/3/00000000000000000100-00000000000000000199.rla"
/// );
/// ```
pub fn archive_key(
    topic_id: &[u8; 16],
    partition: u32,
    first_offset: u64,
    last_offset: u64,
) -> String {
    format!(
        "topics/{}/{partition}/{first_offset:020}-{last_offset:020}.{ARCHIVE_EXTENSION}",
        format_topic_id(topic_id)
    )
}

/// What an archive key names: the inverse of [`archive_key`]. `None` for
/// a key [`archive_key`] does not make (anything else in the store).
///
/// ```
/// use ringlog_engine::archive::{archive_key, parse_archive_key};
/// let key = archive_key(&[0xab; 16], 3, 100, 199);
/// assert_eq!(parse_archive_key(&key), Some(([0xab; 16], 3, 100, 199)));
/// assert_eq!(parse_archive_key("topics/x/3/1-2.rla"), None);
/// ```
pub fn parse_archive_key(key: &str) -> Option<([u8; 16], u32, u64, u64)> {
    let rest = key.strip_prefix("topics/")?;
    let mut parts = rest.split('/');
    let (id, partition, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || id.len() != 32 {
        return None;
    }
    let mut topic_id = [0u8; 16];
    for (i, byte) in topic_id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let (first, last) = name
        .strip_suffix(ARCHIVE_EXTENSION)?
        .strip_suffix('.')?
        .split_once('-')?;
    let parsed = (
        topic_id,
        partition.parse().ok()?,
        first.parse().ok()?,
        last.parse().ok()?,
    );
    (archive_key(&parsed.0, parsed.1, parsed.2, parsed.3) == key).then_some(parsed)
}

#[cfg(test)]
mod tests;
