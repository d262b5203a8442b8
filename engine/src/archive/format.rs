//! The archive's bytes: the trailer, the footer with its member table,
//! and the entries of the two index members.
//!
//! ```text
//! members, back to back from byte 0, in the order of the member table:
//!   records       the segment's RecordBatch v2 bytes as stored
//!   (other kinds) in the order they were added
//!   offset index  one 16-byte entry per span of the records:
//!                   0  8  position of the span's first batch in the records member
//!                   8  4  relative offset: the span's first offset - first offset
//!                  12  4  crc32c of the span (to the next entry's position,
//!                         the last to the member's end)
//!   time index    one 12-byte entry per span, in the same order:
//!                   0  8  max timestamp (ms) of every batch up to the span's end
//!                   8  4  relative offset (the offset index entry's)
//! footer, right after the last member:
//!   0   8  magic "RINGLAFT"
//!   8   2  format version (1)
//!  10   2  topic name bytes n (at most 249)
//!  12   4  partition
//!  16  16  topic id
//!  32   8  first offset
//!  40   8  last offset
//!  48   8  min timestamp: smallest first-record timestamp of a batch
//!  56   8  max timestamp: largest batch max timestamp
//!  64   8  records
//!  72   8  batches
//!  80   4  members m
//!  84   .  m member entries of 24 bytes:
//!            0  4  kind   4  4  crc32c   8  8  position   16  8  length
//!   .   n  topic name, UTF-8
//! trailer, the object's last 32 bytes:
//!   0   8  footer position
//!   8   4  footer length
//!  12   4  footer crc32c
//!  16   2  format version (1)
//!  18   2  zero
//!  20   4  crc32c of trailer bytes 0..20
//!  24   8  magic "RINGLARC"
//! ```
//!
//! The footer carries no crc of its own: the trailer holds it, so the
//! metadata log can record the footer's place and crc together and a
//! reader that has them needs no trailer. The magic ends the object, where
//! a reader of the tail looks first.

use super::{corrupt, ArchiveCorruption as C, ArchiveError, MemberKind, Region};
use crate::format::{le_i64, le_u16, le_u32, le_u64, put, OFFSET_MAX};
use std::ops::Range;

/// Trailer magic: the object's last 8 bytes.
pub const TRAILER_MAGIC: [u8; 8] = *b"RINGLARC";
/// Footer magic: the footer's first 8 bytes.
pub const FOOTER_MAGIC: [u8; 8] = *b"RINGLAFT";
/// The only archive format version this build writes and reads (in the
/// trailer and in the footer).
pub const ARCHIVE_VERSION: u16 = 1;
/// Extension of archive object keys ([`super::archive_key`]).
pub const ARCHIVE_EXTENSION: &str = "rla";
/// How much of an object's end a reader fetches first: the trailer, the
/// footer and, for segments up to a few tens of MiB, both indexes in one
/// ranged read. A footer that does not fit costs one more read.
pub const TAIL_READ_BYTES: u64 = 64 * 1024;
/// The default span of the offset index: a new span starts at the first
/// batch after this many bytes of batches, as a segment's index
/// (`index_interval_bytes`) does by default. A read from the middle of a
/// span reads at most this much before its offset; the indexes of a
/// 1 GiB segment take under 2 MiB.
pub const INDEX_INTERVAL_BYTES: u64 = 16 * 1024;
/// Kafka's longest topic name.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Bytes in the trailer.
pub const TRAILER_BYTES: usize = 32;
/// Trailer: position of the footer in the object, u64.
pub const TRAILER_FOOTER_POSITION_AT: usize = 0;
/// Trailer: footer length, u32.
pub const TRAILER_FOOTER_LENGTH_AT: usize = 8;
/// Trailer: crc32c of the footer, u32.
pub const TRAILER_FOOTER_CRC_AT: usize = 12;
/// Trailer: format version, u16.
pub const TRAILER_VERSION_AT: usize = 16;
/// Trailer: two zero bytes.
pub const TRAILER_RESERVED_AT: usize = 18;
/// Trailer: crc32c of the trailer bytes before it, u32.
pub const TRAILER_CRC_AT: usize = 20;
/// Trailer: the magic, 8 bytes.
pub const TRAILER_MAGIC_AT: usize = 24;

/// Footer: magic, 8 bytes.
pub const FOOTER_MAGIC_AT: usize = 0;
/// Footer: format version, u16.
pub const FOOTER_VERSION_AT: usize = 8;
/// Footer: length of the topic name at the footer's end, u16.
pub const FOOTER_TOPIC_NAME_LENGTH_AT: usize = 10;
/// Footer: partition, u32.
pub const FOOTER_PARTITION_AT: usize = 12;
/// Footer: topic id, 16 bytes.
pub const FOOTER_TOPIC_ID_AT: usize = 16;
/// Footer: first offset, u64.
pub const FOOTER_FIRST_OFFSET_AT: usize = 32;
/// Footer: last offset, u64.
pub const FOOTER_LAST_OFFSET_AT: usize = 40;
/// Footer: min timestamp (ms), i64.
pub const FOOTER_MIN_TIMESTAMP_AT: usize = 48;
/// Footer: max timestamp (ms), i64.
pub const FOOTER_MAX_TIMESTAMP_AT: usize = 56;
/// Footer: records, u64.
pub const FOOTER_RECORD_COUNT_AT: usize = 64;
/// Footer: batches, u64.
pub const FOOTER_BATCH_COUNT_AT: usize = 72;
/// Footer: entries in the member table, u32.
pub const FOOTER_MEMBER_COUNT_AT: usize = 80;
/// Bytes of the footer before the member table.
pub const FOOTER_FIXED_BYTES: usize = 84;

/// Member entry: kind, u32 ([`MemberKind`]).
pub const MEMBER_KIND_AT: usize = 0;
/// Member entry: crc32c of the member, u32.
pub const MEMBER_CRC_AT: usize = 4;
/// Member entry: position of the member in the object, u64.
pub const MEMBER_POSITION_AT: usize = 8;
/// Member entry: member length, u64.
pub const MEMBER_LENGTH_AT: usize = 16;
/// Bytes in a member table entry.
pub const MEMBER_ENTRY_BYTES: usize = 24;

/// Offset index entry: position of the span in the records member, u64.
pub const OFFSET_INDEX_POSITION_AT: usize = 0;
/// Offset index entry: the span's first offset minus the first offset, u32.
pub const OFFSET_INDEX_RELATIVE_OFFSET_AT: usize = 8;
/// Offset index entry: crc32c of the span's bytes, u32.
pub const OFFSET_INDEX_CRC_AT: usize = 12;
/// Bytes in an offset index entry.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 16;
/// Time index entry: largest batch max timestamp up to the span's end, i64.
pub const TIME_INDEX_MAX_TIMESTAMP_AT: usize = 0;
/// Time index entry: the span's relative offset, u32.
pub const TIME_INDEX_RELATIVE_OFFSET_AT: usize = 8;
/// Bytes in a time index entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

// Every field follows the one before it, and each layout ends with its
// last field. The trailer's crc covers every byte before it; the magic
// after it is checked first, on its own.
const _: () = assert!(
    TRAILER_FOOTER_POSITION_AT == 0
        && TRAILER_FOOTER_LENGTH_AT == TRAILER_FOOTER_POSITION_AT + 8
        && TRAILER_FOOTER_CRC_AT == TRAILER_FOOTER_LENGTH_AT + 4
        && TRAILER_VERSION_AT == TRAILER_FOOTER_CRC_AT + 4
        && TRAILER_RESERVED_AT == TRAILER_VERSION_AT + 2
        && TRAILER_CRC_AT == TRAILER_RESERVED_AT + 2
        && TRAILER_MAGIC_AT == TRAILER_CRC_AT + 4
        && TRAILER_BYTES == TRAILER_MAGIC_AT + TRAILER_MAGIC.len()
);
const _: () = assert!(
    FOOTER_MAGIC_AT == 0
        && FOOTER_VERSION_AT == FOOTER_MAGIC_AT + FOOTER_MAGIC.len()
        && FOOTER_TOPIC_NAME_LENGTH_AT == FOOTER_VERSION_AT + 2
        && FOOTER_PARTITION_AT == FOOTER_TOPIC_NAME_LENGTH_AT + 2
        && FOOTER_TOPIC_ID_AT == FOOTER_PARTITION_AT + 4
        && FOOTER_FIRST_OFFSET_AT == FOOTER_TOPIC_ID_AT + 16
        && FOOTER_LAST_OFFSET_AT == FOOTER_FIRST_OFFSET_AT + 8
        && FOOTER_MIN_TIMESTAMP_AT == FOOTER_LAST_OFFSET_AT + 8
        && FOOTER_MAX_TIMESTAMP_AT == FOOTER_MIN_TIMESTAMP_AT + 8
        && FOOTER_RECORD_COUNT_AT == FOOTER_MAX_TIMESTAMP_AT + 8
        && FOOTER_BATCH_COUNT_AT == FOOTER_RECORD_COUNT_AT + 8
        && FOOTER_MEMBER_COUNT_AT == FOOTER_BATCH_COUNT_AT + 8
        && FOOTER_FIXED_BYTES == FOOTER_MEMBER_COUNT_AT + 4
);
const _: () = assert!(
    MEMBER_KIND_AT == 0
        && MEMBER_CRC_AT == MEMBER_KIND_AT + 4
        && MEMBER_POSITION_AT == MEMBER_CRC_AT + 4
        && MEMBER_LENGTH_AT == MEMBER_POSITION_AT + 8
        && MEMBER_ENTRY_BYTES == MEMBER_LENGTH_AT + 8
);
const _: () = assert!(
    OFFSET_INDEX_POSITION_AT == 0
        && OFFSET_INDEX_RELATIVE_OFFSET_AT == OFFSET_INDEX_POSITION_AT + 8
        && OFFSET_INDEX_CRC_AT == OFFSET_INDEX_RELATIVE_OFFSET_AT + 4
        && OFFSET_INDEX_ENTRY_BYTES == OFFSET_INDEX_CRC_AT + 4
);
const _: () = assert!(
    TIME_INDEX_MAX_TIMESTAMP_AT == 0
        && TIME_INDEX_RELATIVE_OFFSET_AT == TIME_INDEX_MAX_TIMESTAMP_AT + 8
        && TIME_INDEX_ENTRY_BYTES == TIME_INDEX_RELATIVE_OFFSET_AT + 4
);
// The topic name's length is a u16 field.
const _: () = assert!(TOPIC_NAME_BYTES_MAX <= u16::MAX as usize);
// One tail read always holds the trailer and the footer of an archive with
// only the built-in members, whatever its topic name.
const _: () = assert!(
    TAIL_READ_BYTES
        >= (TRAILER_BYTES + FOOTER_FIXED_BYTES + 3 * MEMBER_ENTRY_BYTES + TOPIC_NAME_BYTES_MAX)
            as u64
);

/// Where the footer is: the trailer's fields. The metadata log records
/// them with the archive, so a reader that has them reads the footer
/// directly ([`Footer::decode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Position of the footer in the object.
    pub footer_position: u64,
    /// Footer length.
    pub footer_len_bytes: u32,
    /// crc32c of the footer.
    pub footer_crc32c: u32,
}

impl Trailer {
    /// The footer's bytes in the object.
    pub fn footer_range(&self) -> Range<u64> {
        self.footer_position..self.footer_position + u64::from(self.footer_len_bytes)
    }

    /// Length of the whole object: the trailer follows the footer.
    pub fn object_len_bytes(&self) -> u64 {
        self.footer_range().end + TRAILER_BYTES as u64
    }

    pub(super) fn encode(&self) -> [u8; TRAILER_BYTES] {
        let mut t = [0u8; TRAILER_BYTES];
        put(&mut t, TRAILER_FOOTER_POSITION_AT, self.footer_position);
        put(&mut t, TRAILER_FOOTER_LENGTH_AT, self.footer_len_bytes);
        put(&mut t, TRAILER_FOOTER_CRC_AT, self.footer_crc32c);
        put(&mut t, TRAILER_VERSION_AT, ARCHIVE_VERSION);
        let crc = crc32c::crc32c(&t[..TRAILER_CRC_AT]);
        put(&mut t, TRAILER_CRC_AT, crc);
        t[TRAILER_MAGIC_AT..].copy_from_slice(&TRAILER_MAGIC);
        t
    }

    /// Decodes the trailer from `tail`, the last bytes of an object of
    /// `object_len_bytes` (at least [`TRAILER_BYTES`] of them). Checks, in
    /// order: length, magic, version, crc, the reserved bytes, and that the
    /// footer ends where the trailer starts.
    pub fn decode(tail: &[u8], object_len_bytes: u64) -> Result<Trailer, ArchiveError> {
        if object_len_bytes < TRAILER_BYTES as u64
            || tail.len() < TRAILER_BYTES
            || tail.len() as u64 > object_len_bytes
        {
            return Err(corrupt(Region::Trailer, object_len_bytes, C::Truncated));
        }
        let t = &tail[tail.len() - TRAILER_BYTES..];
        let start = object_len_bytes - TRAILER_BYTES as u64;
        let err = |at: usize, c| corrupt(Region::Trailer, start + at as u64, c);
        if t[TRAILER_MAGIC_AT..] != TRAILER_MAGIC {
            return Err(err(TRAILER_MAGIC_AT, C::BadMagic));
        }
        let version = le_u16(t, TRAILER_VERSION_AT);
        if version != ARCHIVE_VERSION {
            return Err(err(TRAILER_VERSION_AT, C::BadVersion(version)));
        }
        let stored = le_u32(t, TRAILER_CRC_AT);
        let computed = crc32c::crc32c(&t[..TRAILER_CRC_AT]);
        if stored != computed {
            return Err(err(0, C::CrcMismatch { stored, computed }));
        }
        if le_u16(t, TRAILER_RESERVED_AT) != 0 {
            return Err(err(TRAILER_RESERVED_AT, C::Malformed("reserved bytes set")));
        }
        let trailer = Trailer {
            footer_position: le_u64(t, TRAILER_FOOTER_POSITION_AT),
            footer_len_bytes: le_u32(t, TRAILER_FOOTER_LENGTH_AT),
            footer_crc32c: le_u32(t, TRAILER_FOOTER_CRC_AT),
        };
        if (trailer.footer_len_bytes as usize) < FOOTER_FIXED_BYTES {
            return Err(err(
                TRAILER_FOOTER_LENGTH_AT,
                C::Malformed("footer shorter than its fixed fields"),
            ));
        }
        let footer_end = trailer
            .footer_position
            .checked_add(u64::from(trailer.footer_len_bytes));
        if footer_end != Some(start) {
            return Err(err(
                TRAILER_FOOTER_POSITION_AT,
                C::Malformed("the footer does not end where the trailer starts"),
            ));
        }
        Ok(trailer)
    }
}

/// One entry of the member table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// What it holds.
    pub kind: MemberKind,
    /// Its first byte in the object.
    pub position: u64,
    /// Its length.
    pub len_bytes: u64,
    /// crc32c of its bytes.
    pub crc32c: u32,
}

impl Member {
    /// Its bytes in the object.
    pub fn range(&self) -> Range<u64> {
        self.position..self.position + self.len_bytes
    }
}

/// The footer manifest: what the archive holds and where each member is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footer {
    /// The topic's id (the metadata log's `TopicCreated::topic_id`).
    pub topic_id: [u8; 16],
    /// The topic's name when the archive was written.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Base offset of the first batch.
    pub first_offset: u64,
    /// Last offset of the last batch (inclusive).
    pub last_offset: u64,
    /// Smallest first-record timestamp of a batch: its base timestamp, or
    /// its max timestamp under LogAppendTime (every record has it). Read
    /// from batch headers only, so a record later in a batch can be
    /// earlier; for display and pruning by time, not for exact answers.
    pub min_timestamp_ms: i64,
    /// Largest batch max timestamp (a segment footer's max timestamp).
    pub max_timestamp_ms: i64,
    /// Records in all batches (their headers' record counts).
    pub record_count: u64,
    /// Batches in the records member.
    pub batch_count: u64,
    /// The member table, in object order: back to back from byte 0 to
    /// the footer. Each built-in kind appears exactly once.
    pub members: Vec<Member>,
    /// Where the footer itself is.
    pub trailer: Trailer,
}

/// What one read of an object's tail gave ([`Footer::from_tail`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TailRead {
    /// The tail held the whole footer.
    Complete(Footer),
    /// The footer starts before the tail: read
    /// [`Trailer::footer_range`] and pass it to [`Footer::decode`].
    NeedFooter(Trailer),
}

impl Footer {
    /// Opens an archive from `tail`, the last bytes of an object of
    /// `object_len_bytes` (read [`TAIL_READ_BYTES`], or the whole object
    /// if it is smaller).
    pub fn from_tail(tail: &[u8], object_len_bytes: u64) -> Result<TailRead, ArchiveError> {
        let trailer = Trailer::decode(tail, object_len_bytes)?;
        let tail_start = object_len_bytes - tail.len() as u64;
        if trailer.footer_position < tail_start {
            return Ok(TailRead::NeedFooter(trailer));
        }
        let range = trailer.footer_range();
        let bytes = &tail[(range.start - tail_start) as usize..(range.end - tail_start) as usize];
        Footer::decode(bytes, &trailer).map(TailRead::Complete)
    }

    /// Decodes and checks the footer's bytes against the trailer's crc.
    /// Checks, in order: length, crc, magic, version, the sizes of the
    /// name and the member table, then every field and member entry.
    pub fn decode(bytes: &[u8], trailer: &Trailer) -> Result<Footer, ArchiveError> {
        let base = trailer.footer_position;
        let err = |at: usize, c| corrupt(Region::Footer, base + at as u64, c);
        let len = trailer.footer_len_bytes as usize;
        if bytes.len() < len {
            return Err(err(bytes.len(), C::Truncated));
        }
        if bytes.len() > len {
            return Err(err(
                len,
                C::Malformed("more footer bytes than the trailer says"),
            ));
        }
        let computed = crc32c::crc32c(bytes);
        if computed != trailer.footer_crc32c {
            let stored = trailer.footer_crc32c;
            return Err(err(0, C::CrcMismatch { stored, computed }));
        }
        if len < FOOTER_FIXED_BYTES {
            return Err(err(0, C::Malformed("footer shorter than its fixed fields")));
        }
        if bytes[FOOTER_MAGIC_AT..FOOTER_MAGIC_AT + FOOTER_MAGIC.len()] != FOOTER_MAGIC {
            return Err(err(FOOTER_MAGIC_AT, C::BadMagic));
        }
        let version = le_u16(bytes, FOOTER_VERSION_AT);
        if version != ARCHIVE_VERSION {
            return Err(err(FOOTER_VERSION_AT, C::BadVersion(version)));
        }
        let name_len = le_u16(bytes, FOOTER_TOPIC_NAME_LENGTH_AT) as usize;
        if name_len > TOPIC_NAME_BYTES_MAX {
            return Err(err(
                FOOTER_TOPIC_NAME_LENGTH_AT,
                C::Malformed("topic name longer than Kafka allows"),
            ));
        }
        let member_count = le_u32(bytes, FOOTER_MEMBER_COUNT_AT) as u64;
        let table_end = FOOTER_FIXED_BYTES as u64 + member_count * MEMBER_ENTRY_BYTES as u64;
        if table_end + name_len as u64 != len as u64 {
            return Err(err(
                FOOTER_MEMBER_COUNT_AT,
                C::Malformed("footer length disagrees with its member count and topic name"),
            ));
        }
        let table_end = table_end as usize;
        let topic = std::str::from_utf8(&bytes[table_end..])
            .map_err(|_| err(table_end, C::Malformed("topic name is not UTF-8")))?
            .to_owned();
        let partition = le_u32(bytes, FOOTER_PARTITION_AT);
        if partition > i32::MAX as u32 {
            return Err(err(
                FOOTER_PARTITION_AT,
                C::Malformed("partition beyond Kafka's i32"),
            ));
        }
        let first_offset = le_u64(bytes, FOOTER_FIRST_OFFSET_AT);
        let last_offset = le_u64(bytes, FOOTER_LAST_OFFSET_AT);
        if first_offset > last_offset
            || last_offset > OFFSET_MAX
            || last_offset - first_offset > u64::from(u32::MAX)
        {
            return Err(err(
                FOOTER_LAST_OFFSET_AT,
                C::Malformed("offset range out of order or too wide"),
            ));
        }
        let batch_count = le_u64(bytes, FOOTER_BATCH_COUNT_AT);
        if batch_count == 0 || batch_count > last_offset - first_offset + 1 {
            return Err(err(
                FOOTER_BATCH_COUNT_AT,
                C::Malformed("batch count outside 1..=offsets"),
            ));
        }
        let members = decode_members(bytes, member_count as usize, base)?;
        let mut topic_id = [0u8; 16];
        topic_id.copy_from_slice(&bytes[FOOTER_TOPIC_ID_AT..FOOTER_TOPIC_ID_AT + 16]);
        Ok(Footer {
            topic_id,
            topic,
            partition,
            first_offset,
            last_offset,
            min_timestamp_ms: le_i64(bytes, FOOTER_MIN_TIMESTAMP_AT),
            max_timestamp_ms: le_i64(bytes, FOOTER_MAX_TIMESTAMP_AT),
            record_count: le_u64(bytes, FOOTER_RECORD_COUNT_AT),
            batch_count,
            members,
            trailer: *trailer,
        })
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let table_end = FOOTER_FIXED_BYTES + self.members.len() * MEMBER_ENTRY_BYTES;
        let mut f = vec![0u8; table_end + self.topic.len()];
        f[FOOTER_MAGIC_AT..FOOTER_MAGIC_AT + FOOTER_MAGIC.len()].copy_from_slice(&FOOTER_MAGIC);
        put(&mut f, FOOTER_VERSION_AT, ARCHIVE_VERSION);
        let name_len = u16::try_from(self.topic.len()).expect("checked by the writer");
        put(&mut f, FOOTER_TOPIC_NAME_LENGTH_AT, name_len);
        put(&mut f, FOOTER_PARTITION_AT, self.partition);
        f[FOOTER_TOPIC_ID_AT..FOOTER_TOPIC_ID_AT + 16].copy_from_slice(&self.topic_id);
        put(&mut f, FOOTER_FIRST_OFFSET_AT, self.first_offset);
        put(&mut f, FOOTER_LAST_OFFSET_AT, self.last_offset);
        put(&mut f, FOOTER_MIN_TIMESTAMP_AT, self.min_timestamp_ms);
        put(&mut f, FOOTER_MAX_TIMESTAMP_AT, self.max_timestamp_ms);
        put(&mut f, FOOTER_RECORD_COUNT_AT, self.record_count);
        put(&mut f, FOOTER_BATCH_COUNT_AT, self.batch_count);
        let member_count = u32::try_from(self.members.len()).expect("members fit a u32");
        put(&mut f, FOOTER_MEMBER_COUNT_AT, member_count);
        for (i, m) in self.members.iter().enumerate() {
            let at = FOOTER_FIXED_BYTES + i * MEMBER_ENTRY_BYTES;
            put(&mut f, at + MEMBER_KIND_AT, m.kind.0);
            put(&mut f, at + MEMBER_CRC_AT, m.crc32c);
            put(&mut f, at + MEMBER_POSITION_AT, m.position);
            put(&mut f, at + MEMBER_LENGTH_AT, m.len_bytes);
        }
        f[table_end..].copy_from_slice(self.topic.as_bytes());
        f
    }

    /// The first member of `kind`; every built-in kind is always there.
    pub fn member(&self, kind: MemberKind) -> Option<&Member> {
        self.members.iter().find(|m| m.kind == kind)
    }

    pub(super) fn builtin(&self, kind: MemberKind) -> &Member {
        debug_assert!(kind.is_builtin());
        self.member(kind)
            .expect("decode and the writer require every built-in member")
    }

    /// The object bytes both index members lie in: one ranged read of
    /// these (or a tail read that covers them) is all
    /// [`super::ArchiveIndex::decode`] needs.
    pub fn index_range(&self) -> Range<u64> {
        let offsets = self.builtin(MemberKind::OFFSET_INDEX).range();
        let times = self.builtin(MemberKind::TIME_INDEX).range();
        offsets.start.min(times.start)..offsets.end.max(times.end)
    }
}

/// Decodes the member table and checks its shape: members back to back
/// from byte 0 to the footer, no kind 0, every built-in kind exactly once,
/// the index members whole numbers of entries with one time entry per
/// offset entry.
fn decode_members(bytes: &[u8], count: usize, base: u64) -> Result<Vec<Member>, ArchiveError> {
    let err = |at: usize, what| corrupt(Region::Footer, base + at as u64, C::Malformed(what));
    let mut members: Vec<Member> = Vec::with_capacity(count);
    let mut entry_of = [0usize; 3];
    let mut next_position = 0u64;
    for i in 0..count {
        let at = FOOTER_FIXED_BYTES + i * MEMBER_ENTRY_BYTES;
        let member = Member {
            kind: MemberKind(le_u32(bytes, at + MEMBER_KIND_AT)),
            crc32c: le_u32(bytes, at + MEMBER_CRC_AT),
            position: le_u64(bytes, at + MEMBER_POSITION_AT),
            len_bytes: le_u64(bytes, at + MEMBER_LENGTH_AT),
        };
        if member.kind.0 == 0 {
            return Err(err(at + MEMBER_KIND_AT, "member kind 0"));
        }
        match member.position.checked_add(member.len_bytes) {
            Some(end) if end <= base => {}
            _ => return Err(err(at + MEMBER_LENGTH_AT, "member runs past the footer")),
        }
        if member.position != next_position {
            return Err(err(at + MEMBER_POSITION_AT, "members are not back to back"));
        }
        next_position = member.range().end;
        if member.kind.is_builtin() {
            let slot = &mut entry_of[member.kind.0 as usize - 1];
            if *slot != 0 {
                return Err(err(at + MEMBER_KIND_AT, "a built-in member appears twice"));
            }
            *slot = at;
        }
        members.push(member);
    }
    if next_position != base {
        return Err(err(FOOTER_MEMBER_COUNT_AT, "members end before the footer"));
    }
    for (slot, what) in entry_of.iter().zip([
        "no records member",
        "no offset index member",
        "no time index member",
    ]) {
        if *slot == 0 {
            return Err(err(FOOTER_MEMBER_COUNT_AT, what));
        }
    }
    let [records, offsets, times] = entry_of.map(|at| le_u64(bytes, at + MEMBER_LENGTH_AT));
    if records == 0 {
        return Err(err(entry_of[0] + MEMBER_LENGTH_AT, "empty records member"));
    }
    let spans = offsets / OFFSET_INDEX_ENTRY_BYTES as u64;
    if spans == 0 || offsets % OFFSET_INDEX_ENTRY_BYTES as u64 != 0 {
        return Err(err(
            entry_of[1] + MEMBER_LENGTH_AT,
            "offset index is not a whole number of entries",
        ));
    }
    if times != spans * TIME_INDEX_ENTRY_BYTES as u64 {
        return Err(err(
            entry_of[2] + MEMBER_LENGTH_AT,
            "time index entries differ from offset index entries",
        ));
    }
    Ok(members)
}

/// The length the Kafka batch at the start of `bytes` declares (its
/// `batch_length` field plus the 12 bytes before that field's end), or
/// `None` if `bytes` is too short to hold that field. The caller checks
/// that the batch fits and [`crate::batch::BatchView::parse`] the rest.
pub(super) fn batch_len(bytes: &[u8]) -> Option<usize> {
    let field = bytes.get(8..12)?;
    let declared = i32::from_be_bytes(field.try_into().expect("4 bytes"));
    Some(12 + declared.max(0) as usize)
}

/// One span of the records, as both index members describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SpanEntry {
    /// Position of its first batch in the records member.
    pub(super) position: u64,
    /// Its first offset minus the archive's first offset.
    pub(super) relative_offset: u32,
    /// crc32c of its bytes.
    pub(super) crc32c: u32,
    /// Largest batch max timestamp up to its end.
    pub(super) max_timestamp_ms: i64,
}

/// The offset index and the time index of `spans`.
pub(super) fn encode_indexes(spans: &[SpanEntry]) -> (Vec<u8>, Vec<u8>) {
    let mut offsets = vec![0u8; spans.len() * OFFSET_INDEX_ENTRY_BYTES];
    let mut times = vec![0u8; spans.len() * TIME_INDEX_ENTRY_BYTES];
    for (i, s) in spans.iter().enumerate() {
        let at = i * OFFSET_INDEX_ENTRY_BYTES;
        put(&mut offsets, at + OFFSET_INDEX_POSITION_AT, s.position);
        put(
            &mut offsets,
            at + OFFSET_INDEX_RELATIVE_OFFSET_AT,
            s.relative_offset,
        );
        put(&mut offsets, at + OFFSET_INDEX_CRC_AT, s.crc32c);
        let at = i * TIME_INDEX_ENTRY_BYTES;
        put(
            &mut times,
            at + TIME_INDEX_MAX_TIMESTAMP_AT,
            s.max_timestamp_ms,
        );
        put(
            &mut times,
            at + TIME_INDEX_RELATIVE_OFFSET_AT,
            s.relative_offset,
        );
    }
    (offsets, times)
}

/// Checks both index members against their crcs and each other and
/// decodes their spans. `bytes` holds the object from `start` and covers
/// both members (the footer guarantees their lengths agree).
pub(super) fn decode_indexes(
    footer: &Footer,
    bytes: &[u8],
    start: u64,
) -> Result<Vec<SpanEntry>, ArchiveError> {
    let member_bytes = |kind| -> Result<(&Member, &[u8]), ArchiveError> {
        let m = footer.builtin(kind);
        let range = m.range();
        assert!(
            range.start >= start && range.end - start <= bytes.len() as u64,
            "the bytes given cover the index members"
        );
        let b = &bytes[(range.start - start) as usize..(range.end - start) as usize];
        let computed = crc32c::crc32c(b);
        if computed != m.crc32c {
            let stored = m.crc32c;
            return Err(corrupt(
                Region::Member(kind),
                m.position,
                C::CrcMismatch { stored, computed },
            ));
        }
        Ok((m, b))
    };
    let (offset_member, offsets) = member_bytes(MemberKind::OFFSET_INDEX)?;
    let (time_member, times) = member_bytes(MemberKind::TIME_INDEX)?;
    let records_len = footer.builtin(MemberKind::RECORDS).len_bytes;
    let offsets_max = footer.last_offset - footer.first_offset;
    let spans_len = offsets.len() / OFFSET_INDEX_ENTRY_BYTES;
    let mut spans: Vec<SpanEntry> = Vec::with_capacity(spans_len);
    for i in 0..spans_len {
        let o = i * OFFSET_INDEX_ENTRY_BYTES;
        let t = i * TIME_INDEX_ENTRY_BYTES;
        let span = SpanEntry {
            position: le_u64(offsets, o + OFFSET_INDEX_POSITION_AT),
            relative_offset: le_u32(offsets, o + OFFSET_INDEX_RELATIVE_OFFSET_AT),
            crc32c: le_u32(offsets, o + OFFSET_INDEX_CRC_AT),
            max_timestamp_ms: le_i64(times, t + TIME_INDEX_MAX_TIMESTAMP_AT),
        };
        let offsets_err = |what| {
            corrupt(
                Region::Member(MemberKind::OFFSET_INDEX),
                offset_member.position + o as u64,
                C::Malformed(what),
            )
        };
        let times_err = |what| {
            corrupt(
                Region::Member(MemberKind::TIME_INDEX),
                time_member.position + t as u64,
                C::Malformed(what),
            )
        };
        match spans.last() {
            None if span.position != 0 || span.relative_offset != 0 => {
                return Err(offsets_err("the first span does not start the records"));
            }
            Some(prev)
                if span.position <= prev.position
                    || span.relative_offset <= prev.relative_offset =>
            {
                return Err(offsets_err("spans out of order"));
            }
            Some(prev) if span.max_timestamp_ms < prev.max_timestamp_ms => {
                return Err(times_err("max timestamp decreases"));
            }
            _ => {}
        }
        if span.position >= records_len || u64::from(span.relative_offset) > offsets_max {
            return Err(offsets_err("span beyond the records"));
        }
        if le_u32(times, t + TIME_INDEX_RELATIVE_OFFSET_AT) != span.relative_offset {
            return Err(times_err("relative offset differs from the offset index"));
        }
        spans.push(span);
    }
    let last = spans.last().expect("the footer requires one span");
    if last.max_timestamp_ms != footer.max_timestamp_ms {
        let at = time_member.position + ((spans_len - 1) * TIME_INDEX_ENTRY_BYTES) as u64;
        return Err(corrupt(
            Region::Member(MemberKind::TIME_INDEX),
            at,
            C::Malformed("the last max timestamp differs from the footer's"),
        ));
    }
    Ok(spans)
}
