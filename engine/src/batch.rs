//! A zero-copy view of a Kafka RecordBatch (magic 2) header.
//!
//! The produce path never decodes records: it checks the batch CRC-32C,
//! reads the few header fields the log needs and rewrites the base offset in
//! place. The CRC covers bytes from `attributes` to the end, so rewriting
//! `base_offset` (and `partition_leader_epoch`) keeps it valid — which is
//! exactly why Kafka put those two fields before the CRC.
//!
//! Where a topic's configs make the broker change a batch (LogAppendTime,
//! a `compression.type` other than the batch's own, a timestamp window),
//! [`crate::records::prepare`] decides how, and [`HeaderPatch`] rewrites
//! the header fields it may change in place, with the CRC recomputed.
//!
//! ```text
//! offset size field
//!  0      8   base_offset            (rewritten by the log)
//!  8      4   batch_length           (bytes after this field)
//! 12      4   partition_leader_epoch
//! 16      1   magic = 2
//! 17      4   crc (CRC-32C of bytes 21..end)
//! 21      2   attributes (bits 0-2 codec, 3 timestamp type, 4 txn, 5 control)
//! 23      4   last_offset_delta
//! 27      8   base_timestamp
//! 35      8   max_timestamp
//! 43      8   producer_id
//! 51      2   producer_epoch
//! 53      4   base_sequence
//! 57      4   record_count
//! 61      ..  records
//! ```

use crate::codec::{Codec, CodecError};
use crate::records::RecordsError;
use std::fmt;

/// Bytes in a RecordBatch v2 header, before the first record.
pub const BATCH_HEADER_BYTES: usize = 61;
const CRC_START: usize = 21;
/// Attribute bits 0-2: the compression codec.
pub const ATTRIBUTE_CODEC_MASK: i16 = 0x7;
/// Attribute bit 3: timestamps are the broker's append time.
pub const ATTRIBUTE_LOG_APPEND_TIME: i16 = 1 << 3;
/// Kafka's "no timestamp" (`RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

/// Why a byte block is not an acceptable RecordBatch v2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header.
    TooShort(usize),
    /// `batch_length` disagrees with the block size.
    LengthMismatch {
        /// 12 + batch_length.
        declared: usize,
        /// Actual bytes.
        actual: usize,
    },
    /// Magic other than 2.
    BadMagic(i8),
    /// The CRC-32C does not match.
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// Negative last offset delta or record count, or a delta that does
    /// not fit the record count.
    BadCounts,
    /// Compression codec id 5, 6 or 7 (Kafka defines 0-4).
    UnknownCodec(u8),
    /// The records inside the batch do not decode (only batches the
    /// broker must decode are checked; see [`crate::records::prepare`]).
    Records(RecordsError),
    /// Recompressed into the topic's `compression.type`, the batch is
    /// larger than `max.message.bytes`.
    RecompressedTooLarge {
        /// The codec the topic asks for.
        codec: Codec,
        /// The topic's limit.
        max_bytes: usize,
    },
    /// A record's timestamp lies outside the topic's
    /// `message.timestamp.before.max.ms` / `after.max.ms` window.
    TimestampOutOfRange {
        /// Position of the first such record in the batch.
        record_index: u32,
        /// Its timestamp.
        timestamp_ms: i64,
        /// The window at the append time.
        earliest_ms: i64,
        /// See `earliest_ms`.
        latest_ms: i64,
    },
    /// The producer set the LogAppendTime attribute, which only the broker
    /// may set (Kafka refuses it in the same cases).
    LogAppendTimeFromProducer,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::TooShort(n) => write!(f, "{n} bytes is shorter than a batch header"),
            BatchError::LengthMismatch { declared, actual } => {
                write!(f, "batch length says {declared} bytes, block has {actual}")
            }
            BatchError::BadMagic(m) => write!(f, "magic {m} (only RecordBatch v2 is accepted)"),
            BatchError::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC-32C {stored:#010x} stored, {computed:#010x} computed"
                )
            }
            BatchError::BadCounts => write!(f, "inconsistent record count / last offset delta"),
            BatchError::UnknownCodec(id) => write!(f, "unknown compression codec id {id}"),
            BatchError::Records(e) => write!(f, "records do not decode: {e}"),
            BatchError::RecompressedTooLarge { codec, max_bytes } => write!(
                f,
                "recompressed with {codec} the batch exceeds max.message.bytes {max_bytes}"
            ),
            BatchError::TimestampOutOfRange {
                record_index,
                timestamp_ms,
                earliest_ms,
                latest_ms,
            } => write!(
                f,
                "timestamp {timestamp_ms} of record {record_index} is out of range: it must be within [{earliest_ms}, {latest_ms}]"
            ),
            BatchError::LogAppendTimeFromProducer => {
                write!(f, "the producer must not set the LogAppendTime timestamp type")
            }
        }
    }
}

impl std::error::Error for BatchError {}

impl From<RecordsError> for BatchError {
    fn from(e: RecordsError) -> Self {
        BatchError::Records(e)
    }
}

impl From<CodecError> for BatchError {
    fn from(e: CodecError) -> Self {
        BatchError::Records(RecordsError::Codec(e))
    }
}

/// A validated RecordBatch v2 header over borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> BatchView<'a> {
    /// Validates the header and the CRC-32C of one whole batch.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::TooShort(bytes.len()));
        }
        let declared = 12usize.saturating_add(be_i32(bytes, 8).max(0) as usize);
        if declared != bytes.len() {
            return Err(BatchError::LengthMismatch {
                declared,
                actual: bytes.len(),
            });
        }
        let magic = bytes[16] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
        let stored = u32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(&bytes[CRC_START..]);
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        let view = BatchView { bytes };
        view.check_counts()?;
        if Codec::from_id(view.codec()).is_none() {
            return Err(BatchError::UnknownCodec(view.codec()));
        }
        Ok(view)
    }

    /// Checks the header (length, magic, counts) but not the CRC-32C: for
    /// batches read back from a log frame, whose own crc32c already proved
    /// the bytes are the ones written.
    pub fn parse_unverified(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::TooShort(bytes.len()));
        }
        let magic = bytes[16] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
        let view = BatchView { bytes };
        view.check_counts()?;
        Ok(view)
    }

    fn check_counts(&self) -> Result<(), BatchError> {
        if self.last_offset_delta() < 0
            || self.record_count() < 0
            || self.record_count() as i64 > self.last_offset_delta() as i64 + 1
        {
            return Err(BatchError::BadCounts);
        }
        Ok(())
    }

    /// The first offset as stored.
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, 0)
    }
    /// Offsets covered minus one.
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, 23)
    }
    /// How many offsets this batch occupies in the log.
    pub fn offset_count(&self) -> u32 {
        self.last_offset_delta() as u32 + 1
    }
    /// Attributes bit field.
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, 21)
    }
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn codec(&self) -> u8 {
        (self.attributes() & ATTRIBUTE_CODEC_MASK) as u8
    }
    /// Whether the timestamps are the broker's append time (then every
    /// record's timestamp is [`BatchView::max_timestamp`]).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTRIBUTE_LOG_APPEND_TIME != 0
    }
    /// First record timestamp.
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, 27)
    }
    /// Largest record timestamp.
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, 35)
    }
    /// Producer id (-1 when not idempotent).
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, 43)
    }
    /// Producer epoch.
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, 51)
    }
    /// Sequence of the first record.
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, 53)
    }
    /// Records in the batch.
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, 57)
    }
    /// The whole batch.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// New attributes and max timestamp for a batch, with the CRC the batch has
/// once they are written: the broker's in-place change of a batch (Kafka's
/// `setMaxTimestamp`), applied while the batch is copied into the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderPatch {
    /// Attributes after the change.
    pub attributes: i16,
    /// Max timestamp after the change.
    pub max_timestamp: i64,
    crc: u32,
}

impl HeaderPatch {
    /// The patch giving `view`'s batch these fields; computes the new CRC
    /// in one pass over the batch, without copying it.
    pub fn new(view: &BatchView<'_>, attributes: i16, max_timestamp: i64) -> Self {
        let bytes = view.bytes();
        let mut head = [0u8; MAX_TIMESTAMP_END - CRC_START];
        head.copy_from_slice(&bytes[CRC_START..MAX_TIMESTAMP_END]);
        head[..2].copy_from_slice(&attributes.to_be_bytes());
        head[MAX_TIMESTAMP_AT - CRC_START..].copy_from_slice(&max_timestamp.to_be_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&head), &bytes[MAX_TIMESTAMP_END..]);
        HeaderPatch {
            attributes,
            max_timestamp,
            crc,
        }
    }

    /// Writes the fields into a copy of the batch it was made for.
    pub fn apply(&self, batch: &mut [u8]) {
        assert!(batch.len() >= BATCH_HEADER_BYTES);
        batch[17..21].copy_from_slice(&self.crc.to_be_bytes());
        batch[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_END]
            .copy_from_slice(&self.max_timestamp.to_be_bytes());
    }
}

const MAX_TIMESTAMP_AT: usize = 35;
const MAX_TIMESTAMP_END: usize = 43;

/// Completes a header copied from another batch for new records: sets the
/// batch length, attributes and max timestamp, then the CRC over it all.
/// `batch` is the whole new batch (header and records).
pub fn finish_header(batch: &mut [u8], attributes: i16, max_timestamp: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    let length = i32::try_from(batch.len() - 12).expect("a batch is bounded by max.message.bytes");
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_END].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites the base offset of a batch in place. The CRC stays valid
/// because it does not cover this field.
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    batch[0..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
}

/// Builds a valid uncompressed RecordBatch v2 holding `values` (no keys, no
/// headers) — for tests, benchmarks and the load generator's simplest mode.
///
/// ```
/// use ringlog_engine::batch::{build_batch, BatchView};
/// let bytes = build_batch(1_700_000_000_000, &[b"a".as_slice(), b"bc".as_slice()]);
/// let view = BatchView::parse(&bytes).unwrap();
/// assert_eq!(view.record_count(), 2);
/// assert_eq!(view.offset_count(), 2);
/// ```
pub fn build_batch(timestamp_ms: i64, values: &[&[u8]]) -> Vec<u8> {
    build_producer_batch(timestamp_ms, values, -1, -1, -1)
}

/// [`build_batch`] with the producer fields of an idempotent producer:
/// `base_sequence` numbers the first record.
///
/// ```
/// use ringlog_engine::batch::{build_producer_batch, BatchView};
/// let bytes = build_producer_batch(1, &[b"a".as_slice(), b"b".as_slice()], 7, 0, 10);
/// let view = BatchView::parse(&bytes).unwrap();
/// assert_eq!((view.producer_id(), view.producer_epoch(), view.base_sequence()), (7, 0, 10));
/// ```
pub fn build_producer_batch(
    timestamp_ms: i64,
    values: &[&[u8]],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    assert!(!values.is_empty());
    let mut records = Vec::new();
    for (delta, value) in values.iter().enumerate() {
        let mut body = Vec::with_capacity(value.len() + 16);
        body.push(0); // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64); // offset delta
        put_varint(&mut body, -1); // key length: null
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        put_varint(&mut body, 0); // header count
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((BATCH_HEADER_BYTES - 12 + records.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&[0; 4]); // crc, filled below
    batch.extend_from_slice(&0i16.to_be_bytes()); // attributes
    batch.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes());
    batch.extend_from_slice(&timestamp_ms.to_be_bytes());
    batch.extend_from_slice(&timestamp_ms.to_be_bytes());
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&producer_epoch.to_be_bytes());
    batch.extend_from_slice(&base_sequence.to_be_bytes());
    batch.extend_from_slice(&(values.len() as i32).to_be_bytes());
    batch.extend_from_slice(&records);
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Appends `value` as a zigzag varint (Kafka's record field encoding).
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_parses() {
        let bytes = build_batch(42, &[b"x".as_slice(); 3]);
        let view = BatchView::parse(&bytes).unwrap();
        assert_eq!(view.offset_count(), 3);
        assert_eq!(view.max_timestamp(), 42);
        assert_eq!(view.producer_id(), -1);
        assert_eq!(view.codec(), 0);
    }

    #[test]
    fn bad_crc_is_rejected() {
        let mut bytes = build_batch(42, &[b"hello".as_slice()]);
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        assert!(matches!(
            BatchView::parse(&bytes),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn base_offset_rewrite_keeps_crc() {
        let mut bytes = build_batch(42, &[b"hello".as_slice()]);
        set_base_offset(&mut bytes, 12345);
        let view = BatchView::parse(&bytes).unwrap();
        assert_eq!(view.base_offset(), 12345);
    }

    #[test]
    fn short_and_mislabelled_blocks_are_rejected() {
        let bytes = build_batch(42, &[b"hello".as_slice()]);
        assert_eq!(
            BatchView::parse(&bytes[..10]).unwrap_err(),
            BatchError::TooShort(10)
        );
        assert!(matches!(
            BatchView::parse(&bytes[..bytes.len() - 1]),
            Err(BatchError::LengthMismatch { .. })
        ));
        let mut wrong_magic = bytes.clone();
        wrong_magic[16] = 1;
        assert_eq!(
            BatchView::parse(&wrong_magic).unwrap_err(),
            BatchError::BadMagic(1)
        );
    }
}
