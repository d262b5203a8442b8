//! The records inside a RecordBatch v2, decoded only where Kafka's
//! semantics need them.
//!
//! The produce path stores batches without looking inside them (the fast
//! path: [`BatchView`] checks the header and CRC, the log copies the bytes
//! once). Two things need the records themselves:
//!
//! * **ListOffsets by timestamp** is exact per record, as in Kafka
//!   (`FileRecords.searchForTimestamp`): the log finds the first batch
//!   whose max timestamp reaches the target, and [`find_record`] walks that
//!   one batch (decompressing it) to the first record, in offset order, at
//!   or above the log start with a timestamp at or after the target. A
//!   batch's records need not be in timestamp order, and its max timestamp
//!   is the producer's claim, so when no record matches the search goes on
//!   to the next batch. LogAppendTime batches need no decoding: every
//!   record's timestamp is the batch's max timestamp.
//! * **Topic configs that change batches** (Kafka's `LogValidator`):
//!   [`prepare`] applies a [`BatchPolicy`] to a produced batch. Only what
//!   the policy needs is done: nothing for the defaults (the fast path), a
//!   header patch for LogAppendTime, a walk over the records for a
//!   timestamp window, a streaming decompress-and-recompress for a
//!   `compression.type` other than the batch's codec. Records are copied
//!   verbatim into the new codec, so keys, values, headers and the
//!   per-record timestamp and offset deltas stay as produced, and so do
//!   the header's base offset, producer id, epoch, base sequence, base
//!   timestamp, record count and the attributes other than codec and
//!   timestamp type.
//! * **Search indexing** (issue 14) needs every field of every record:
//!   [`RecordWalker`] yields each record's offset, timestamp, key, value
//!   and headers. The two uses above walk with the same parser.
//!
//! Decoding is bounded and total: decompression stops at
//! [`DECOMPRESSED_BYTES_MAX`], every length read from a record is checked
//! against the record's own length before anything is skipped, and any
//! inconsistency is a [`RecordsError`], never a panic.

use crate::batch::{
    finish_header, put_varint, BatchError, BatchView, HeaderPatch, ATTRIBUTE_CODEC_MASK,
    ATTRIBUTE_LOG_APPEND_TIME, BATCH_HEADER_BYTES, NO_TIMESTAMP,
};
use crate::codec::{Codec, CodecError, Compressor, Decompressor, DECOMPRESSED_BYTES_MAX};
use std::fmt;
use std::ops::Range;

/// Bytes of a zigzag varint holding an `int32`, and a `long`.
const VARINT_BYTES_MAX: u32 = 5;
const VARLONG_BYTES_MAX: u32 = 10;

/// Which clock a topic's record timestamps come from
/// (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps (`CreateTime`).
    #[default]
    CreateTime,
    /// The broker's append time (`LogAppendTime`).
    LogAppendTime,
}

/// What the broker does to a produced batch before storing it (Kafka's
/// topic configs of the same names). The default changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    /// `compression.type`: `None` for `producer` (keep the batch's codec),
    /// else the codec every stored batch has.
    pub compression: Option<Codec>,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: with CreateTime, how far in the
    /// past a record's timestamp may lie (`i64::MAX`: no limit).
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: with CreateTime, how far in the
    /// future a record's timestamp may lie (`i64::MAX`: no limit).
    pub timestamp_after_max_ms: i64,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            compression: None,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
        }
    }
}

impl BatchPolicy {
    fn checks_window(&self) -> bool {
        self.timestamp_type == TimestampType::CreateTime
            && (self.timestamp_before_max_ms != i64::MAX || self.timestamp_after_max_ms != i64::MAX)
    }
}

/// Why the records of a batch do not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordsError {
    /// The records section does not decompress.
    Codec(CodecError),
    /// The records' framing is inconsistent (named).
    Malformed(&'static str),
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordsError::Codec(e) => write!(f, "{e}"),
            RecordsError::Malformed(what) => write!(f, "malformed records: {what}"),
        }
    }
}

impl std::error::Error for RecordsError {}

impl From<CodecError> for RecordsError {
    fn from(e: CodecError) -> Self {
        RecordsError::Codec(e)
    }
}

/// A record found by [`find_record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundRecord {
    /// Its offset.
    pub offset: u64,
    /// Its timestamp.
    pub timestamp_ms: i64,
}

fn malformed(what: &'static str) -> RecordsError {
    RecordsError::Malformed(what)
}

/// A zigzag varint of at most `max_bytes` bytes taken from `byte` (Kafka's
/// `ByteUtils.readVarlong`): the one varint decoder of the record stream
/// and of a record's body.
fn read_varint(
    max_bytes: u32,
    mut byte: impl FnMut() -> Result<u8, RecordsError>,
) -> Result<i64, RecordsError> {
    let mut raw = 0u64;
    for i in 0..max_bytes {
        let b = byte()?;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(malformed("varint too long"))
}

/// Where a header's key and value (`None`: null) lie in its record's body.
type HeaderSpan = (Range<usize>, Option<Range<usize>>);

/// The fields of one record body (the bytes after its length), each
/// checked to lie inside the body, which they must fill exactly.
struct Body {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

/// Reads the fields of a record body front to back.
struct BodyCursor<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl BodyCursor<'_> {
    fn byte(&mut self) -> Result<u8, RecordsError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(malformed("a field runs past its record"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self, max_bytes: u32) -> Result<i64, RecordsError> {
        read_varint(max_bytes, || self.byte())
    }

    fn int(&mut self) -> Result<i32, RecordsError> {
        let value = self.varint(VARINT_BYTES_MAX)?;
        i32::try_from(value).map_err(|_| malformed("varint out of int range"))
    }

    /// A length-prefixed field (-1: null, when `nullable`): where it lies.
    fn field(&mut self, nullable: bool) -> Result<Option<Range<usize>>, RecordsError> {
        match self.int()? {
            -1 if nullable => Ok(None),
            n if n < 0 => Err(malformed("negative field length")),
            n => {
                let start = self.at;
                let end = start + n as usize;
                if end > self.bytes.len() {
                    return Err(malformed("a field runs past its record"));
                }
                self.at = end;
                Ok(Some(start..end))
            }
        }
    }

    /// Parses a whole body, its headers' spans into `headers`.
    fn parse(bytes: &[u8], headers: &mut Vec<HeaderSpan>) -> Result<Body, RecordsError> {
        let mut cursor = BodyCursor { bytes, at: 0 };
        cursor.byte()?; // attributes (unused)
        let timestamp_delta = cursor.varint(VARLONG_BYTES_MAX)?;
        let offset_delta = cursor.int()?;
        let key = cursor.field(true)?;
        let value = cursor.field(true)?;
        let count = cursor.int()?;
        if count < 0 {
            return Err(malformed("negative header count"));
        }
        // Each header takes at least two bytes, so the body bounds the count.
        if count as usize > (bytes.len() - cursor.at) / 2 {
            return Err(malformed("a field runs past its record"));
        }
        headers.clear();
        for _ in 0..count {
            let key = cursor.field(false)?.unwrap_or_default();
            let value = cursor.field(true)?;
            headers.push((key, value));
        }
        if cursor.at != bytes.len() {
            return Err(malformed("record length disagrees with its fields"));
        }
        Ok(Body {
            timestamp_delta,
            offset_delta,
            key,
            value,
        })
    }
}

/// One record of a batch, as [`RecordWalker::next_record`] yields it; its
/// fields borrow the walker's copy of the record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'r> {
    /// Its offset: the batch's base offset plus the record's delta.
    pub offset: u64,
    /// Its timestamp: the batch's max timestamp in a LogAppendTime batch,
    /// else the base timestamp plus the record's delta.
    pub timestamp_ms: i64,
    /// Its key (`None`: null).
    pub key: Option<&'r [u8]>,
    /// Its value (`None`: null, a tombstone).
    pub value: Option<&'r [u8]>,
    /// Its position in the batch (0 for the first record).
    index: u32,
    body: &'r [u8],
    headers: &'r [HeaderSpan],
}

/// One header of a [`Record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader<'r> {
    /// Its key (a string in Kafka's clients, bytes here: never trusted to
    /// be UTF-8).
    pub key: &'r [u8],
    /// Its value (`None`: null).
    pub value: Option<&'r [u8]>,
}

impl<'r> Record<'r> {
    /// The record's headers, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = RecordHeader<'r>> + 'r {
        let body = self.body;
        // The spans were checked against this body, so `get` always finds them.
        let slice = move |span: &Range<usize>| body.get(span.clone()).unwrap_or_default();
        self.headers.iter().map(move |(key, value)| RecordHeader {
            key: slice(key),
            value: value.as_ref().map(slice),
        })
    }
}

/// Walks the records of one batch in order, checking each one's framing
/// (bounded and total: see the module docs).
///
/// Each record is copied out of the decompressed stream into one reused
/// buffer, so a record's key, value and headers are plain slices whatever
/// the codec, and the walk holds one record at a time, never the whole
/// decompressed batch.
///
/// ```
/// use ringlog_engine::batch::BatchView;
/// use ringlog_engine::codec::Codec;
/// use ringlog_engine::records::{build_records_batch, NewRecord, RecordWalker};
/// let bytes = build_records_batch(Codec::Gzip, &[NewRecord {
///     timestamp_ms: 5,
///     key: Some(b"k"),
///     value: None,
///     headers: &[(b"trace", Some(b"1"))],
/// }]);
/// let mut walker = RecordWalker::new(&BatchView::parse(&bytes).unwrap()).unwrap();
/// let record = walker.next_record().unwrap().unwrap();
/// assert_eq!((record.offset, record.timestamp_ms, record.key, record.value), (0, 5, Some(&b"k"[..]), None));
/// assert_eq!(record.headers().next().unwrap().key, b"trace");
/// assert!(walker.next_record().unwrap().is_none());
/// ```
pub struct RecordWalker<'a> {
    src: Decompressor<'a>,
    base_offset: u64,
    base_timestamp: i64,
    /// Every record's timestamp, for a LogAppendTime batch.
    append_time: Option<i64>,
    record_count: u32,
    last_offset_delta: i32,
    index: u32,
    previous_delta: i64,
    /// The current record's body, and its headers' spans (both reused).
    body: Vec<u8>,
    headers: Vec<HeaderSpan>,
    /// Whether the bytes after the last record have been checked.
    ended: bool,
}

impl<'a> RecordWalker<'a> {
    /// Starts walking the records of `view`, a batch (verified or not)
    /// whose header names its base offset.
    pub fn new(view: &BatchView<'a>) -> Result<Self, RecordsError> {
        let base_offset =
            u64::try_from(view.base_offset()).map_err(|_| malformed("negative base offset"))?;
        Self::with_tee(view, base_offset, None)
    }

    /// Starts walking the records of `view`, whose first offset is
    /// `base_offset`, copying every decompressed byte into `tee` if given.
    fn with_tee(
        view: &BatchView<'a>,
        base_offset: u64,
        tee: Option<&'a mut Compressor>,
    ) -> Result<Self, RecordsError> {
        let codec = Codec::from_id(view.codec()).ok_or(malformed("unknown codec id"))?;
        let records = view
            .bytes()
            .get(BATCH_HEADER_BYTES..)
            .ok_or(malformed("batch shorter than its header"))?;
        let mut src = Decompressor::new(codec, records, DECOMPRESSED_BYTES_MAX)?;
        if let Some(tee) = tee {
            src.tee(tee);
        }
        let record_count = u32::try_from(view.record_count()).map_err(|_| malformed("count"))?;
        Ok(RecordWalker {
            src,
            base_offset,
            base_timestamp: view.base_timestamp(),
            append_time: view.is_log_append_time().then(|| view.max_timestamp()),
            record_count,
            last_offset_delta: view.last_offset_delta(),
            index: 0,
            previous_delta: -1,
            body: Vec::new(),
            headers: Vec::new(),
            ended: false,
        })
    }

    fn stream_byte(&mut self) -> Result<u8, RecordsError> {
        let chunk = self.src.fill()?;
        let Some(&b) = chunk.first() else {
            return Err(malformed("records end before the batch's record count"));
        };
        self.src.consume(1);
        Ok(b)
    }

    /// Copies the next `length` bytes of the stream into `body`; the
    /// stream's own bound (the decompression limit) bounds the copy.
    fn copy_body(&mut self, length: u64) -> Result<(), RecordsError> {
        self.body.clear();
        let mut left = length;
        while left > 0 {
            let chunk = self.src.fill()?;
            if chunk.is_empty() {
                return Err(malformed("records end inside a record"));
            }
            let step = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            self.body.extend_from_slice(&chunk[..step]);
            self.src.consume(step);
            left -= step as u64;
        }
        Ok(())
    }

    /// The next record, `None` after the batch's record count, once the
    /// records section is checked to end there.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, RecordsError> {
        if self.index == self.record_count && !self.ended {
            self.ended = true;
            if !self.src.fill()?.is_empty() {
                return Err(malformed("bytes after the batch's last record"));
            }
        }
        self.next_unchecked_end()
    }

    /// The next record, `None` after the batch's record count (what
    /// follows the last record is not looked at).
    fn next_unchecked_end(&mut self) -> Result<Option<Record<'_>>, RecordsError> {
        if self.index >= self.record_count {
            return Ok(None);
        }
        let length = read_varint(VARINT_BYTES_MAX, || self.stream_byte())?;
        let length = u64::try_from(length).map_err(|_| malformed("negative record length"))?;
        self.copy_body(length)?;
        let body = BodyCursor::parse(&self.body, &mut self.headers)?;
        if i64::from(body.offset_delta) <= self.previous_delta
            || body.offset_delta > self.last_offset_delta
        {
            return Err(malformed(
                "offset deltas not increasing within the batch's last offset delta",
            ));
        }
        self.previous_delta = body.offset_delta.into();
        let index = self.index;
        self.index += 1;
        let bytes = self.body.as_slice();
        let slice = |span: Range<usize>| bytes.get(span).unwrap_or_default();
        Ok(Some(Record {
            offset: self.base_offset.saturating_add(body.offset_delta as u64),
            timestamp_ms: self
                .append_time
                .unwrap_or(self.base_timestamp.wrapping_add(body.timestamp_delta)),
            key: body.key.map(slice),
            value: body.value.map(slice),
            index,
            body: bytes,
            headers: &self.headers,
        }))
    }
}

/// The first record of `view` (a stored batch whose first offset is
/// `base_offset`), in offset order, whose offset is at least `min_offset`
/// (the log start) and whose timestamp is at least `target_ms`; `None` if
/// no record qualifies. Decodes only up to that record.
pub fn find_record(
    view: &BatchView<'_>,
    base_offset: u64,
    min_offset: u64,
    target_ms: i64,
) -> Result<Option<FoundRecord>, RecordsError> {
    let last_offset = base_offset + view.last_offset_delta().max(0) as u64;
    if view.is_log_append_time() {
        let found = view.max_timestamp() >= target_ms && last_offset >= min_offset;
        return Ok(found.then(|| FoundRecord {
            offset: base_offset.max(min_offset),
            timestamp_ms: view.max_timestamp(),
        }));
    }
    let mut records = RecordWalker::with_tee(view, base_offset, None)?;
    while let Some(record) = records.next_unchecked_end()? {
        if record.offset >= min_offset && record.timestamp_ms >= target_ms {
            return Ok(Some(FoundRecord {
                offset: record.offset,
                timestamp_ms: record.timestamp_ms,
            }));
        }
    }
    Ok(None)
}

/// How a produced batch is stored, as [`prepare`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// As produced (the fast path: nothing decoded, nothing copied here).
    AsIs,
    /// As produced but for the header fields in the patch.
    Patched(HeaderPatch),
    /// A new batch: the records recompressed under a new header.
    Rewritten {
        /// The whole batch.
        batch: Vec<u8>,
        /// Its max timestamp.
        max_timestamp: i64,
    },
}

impl Prepared {
    /// The max timestamp of the batch as stored.
    pub fn max_timestamp(&self, view: &BatchView<'_>) -> i64 {
        match self {
            Prepared::AsIs => view.max_timestamp(),
            Prepared::Patched(patch) => patch.max_timestamp,
            Prepared::Rewritten { max_timestamp, .. } => *max_timestamp,
        }
    }
}

/// Kafka's check of one record's timestamp against the topic's window
/// (`LogValidator.validateTimestamp`, 3.6+): records without a timestamp
/// pass.
fn check_window(policy: &BatchPolicy, now_ms: i64, record: &Record<'_>) -> Result<(), BatchError> {
    let ts = record.timestamp_ms;
    if ts == NO_TIMESTAMP {
        return Ok(());
    }
    let behind = i128::from(now_ms) - i128::from(ts);
    if behind > i128::from(policy.timestamp_before_max_ms)
        || -behind > i128::from(policy.timestamp_after_max_ms)
    {
        return Err(BatchError::TimestampOutOfRange {
            record_index: record.index,
            timestamp_ms: ts,
            earliest_ms: now_ms.saturating_sub(policy.timestamp_before_max_ms),
            latest_ms: now_ms.saturating_add(policy.timestamp_after_max_ms),
        });
    }
    Ok(())
}

/// Walks every record of a produced batch, checking its framing and (when
/// the policy has one) its timestamp against the window, copying the
/// decompressed records into `compressor` if given; returns the largest
/// record timestamp.
fn walk(
    view: &BatchView<'_>,
    policy: &BatchPolicy,
    now_ms: i64,
    compressor: Option<&mut Compressor>,
) -> Result<i64, BatchError> {
    let mut records = RecordWalker::with_tee(view, 0, compressor)?;
    let mut max_timestamp = NO_TIMESTAMP;
    while let Some(record) = records.next_record()? {
        if policy.checks_window() {
            check_window(policy, now_ms, &record)?;
        }
        max_timestamp = max_timestamp.max(record.timestamp_ms);
    }
    Ok(max_timestamp)
}

/// Applies `policy` to a produced batch (validated by [`BatchView::parse`])
/// as Kafka's `LogValidator` does, doing only the work the policy needs
/// (see the module docs). `now_ms` is asked for only when the policy
/// needs the time; `max_bytes` (`max.message.bytes`) bounds a rewritten
/// batch.
///
/// As in Kafka: with LogAppendTime the max timestamp becomes the append
/// time and the timestamp-type bit is set, per-record deltas untouched; a
/// producer's own LogAppendTime bit is refused; with CreateTime a walk over
/// the records (a window check or a recompression) also sets the max
/// timestamp to the largest record timestamp and clears that bit. Every
/// record is checked against the window, and the first outside it refuses
/// the batch.
pub fn prepare(
    view: &BatchView<'_>,
    policy: &BatchPolicy,
    max_bytes: usize,
    now_ms: impl FnOnce() -> i64,
) -> Result<Prepared, BatchError> {
    let source = Codec::from_id(view.codec()).ok_or(BatchError::UnknownCodec(view.codec()))?;
    let target = policy.compression.unwrap_or(source);
    let append_time = policy.timestamp_type == TimestampType::LogAppendTime;
    let has_records = view.record_count() > 0;
    if has_records
        && view.is_log_append_time()
        && (append_time || view.max_timestamp() == NO_TIMESTAMP)
    {
        return Err(BatchError::LogAppendTimeFromProducer);
    }
    let decode = target != source || policy.checks_window();
    if !decode && !append_time {
        return Ok(Prepared::AsIs);
    }
    let now_ms = now_ms();
    let other_attributes = view.attributes() & !(ATTRIBUTE_CODEC_MASK | ATTRIBUTE_LOG_APPEND_TIME);
    let timestamp_bit = if append_time {
        ATTRIBUTE_LOG_APPEND_TIME
    } else {
        0
    };
    let attributes = other_attributes | timestamp_bit | i16::from(target.id());
    if !decode {
        return Ok(Prepared::Patched(HeaderPatch::new(
            view, attributes, now_ms,
        )));
    }
    // The limit keeps the batch length an i32, as the header needs.
    let limit = max_bytes.min(i32::MAX as usize);
    let too_large = BatchError::RecompressedTooLarge {
        codec: target,
        max_bytes,
    };
    let mut compressor = if target != source {
        Some(Compressor::new(
            target,
            &view.bytes()[..BATCH_HEADER_BYTES],
            limit,
        )?)
    } else {
        None
    };
    let walked = walk(view, policy, now_ms, compressor.as_mut());
    let max_record_timestamp = match walked {
        Err(BatchError::Records(RecordsError::Codec(CodecError::CompressedTooLarge {
            ..
        }))) => return Err(too_large),
        other => other?,
    };
    let max_timestamp = if append_time {
        now_ms
    } else {
        max_record_timestamp
    };
    let Some(compressor) = compressor else {
        let unchanged = attributes == view.attributes() && max_timestamp == view.max_timestamp();
        return Ok(if unchanged {
            Prepared::AsIs
        } else {
            Prepared::Patched(HeaderPatch::new(view, attributes, max_timestamp))
        });
    };
    let mut batch = compressor.finish().map_err(|e| match e {
        CodecError::CompressedTooLarge { .. } => too_large,
        other => BatchError::from(other),
    })?;
    finish_header(&mut batch, attributes, max_timestamp);
    Ok(Prepared::Rewritten {
        batch,
        max_timestamp,
    })
}

/// One record for [`build_records_batch`].
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    /// Its timestamp.
    pub timestamp_ms: i64,
    /// Its key (`None`: null).
    pub key: Option<&'a [u8]>,
    /// Its value (`None`: null).
    pub value: Option<&'a [u8]>,
    /// Its headers: key, value (`None`: null).
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Builds a valid RecordBatch v2 of `records` (offset deltas 0, 1, ...)
/// compressed with `codec`: base timestamp the first record's, max
/// timestamp the largest, base offset 0 — for tests and benchmarks.
pub fn build_records_batch(codec: Codec, records: &[NewRecord<'_>]) -> Vec<u8> {
    assert!(!records.is_empty());
    let base_timestamp = records[0].timestamp_ms;
    let put_field = |body: &mut Vec<u8>, field: Option<&[u8]>| match field {
        Some(bytes) => {
            put_varint(body, bytes.len() as i64);
            body.extend_from_slice(bytes);
        }
        None => put_varint(body, -1),
    };
    let mut plain = Vec::new();
    for (delta, record) in records.iter().enumerate() {
        let mut body = Vec::new();
        body.push(0); // attributes
        put_varint(&mut body, record.timestamp_ms - base_timestamp);
        put_varint(&mut body, delta as i64);
        put_field(&mut body, record.key);
        put_field(&mut body, record.value);
        put_varint(&mut body, record.headers.len() as i64);
        for (key, value) in record.headers {
            put_field(&mut body, Some(key));
            put_field(&mut body, *value);
        }
        put_varint(&mut plain, body.len() as i64);
        plain.extend_from_slice(&body);
    }
    let mut header = Vec::with_capacity(BATCH_HEADER_BYTES);
    header.extend_from_slice(&0i64.to_be_bytes()); // base offset
    header.extend_from_slice(&0i32.to_be_bytes()); // length, set below
    header.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    header.push(2); // magic
    header.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    header.extend_from_slice(&0i16.to_be_bytes()); // attributes, set below
    header.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    header.extend_from_slice(&base_timestamp.to_be_bytes());
    header.extend_from_slice(&0i64.to_be_bytes()); // max timestamp, set below
    header.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    header.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    header.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    header.extend_from_slice(&(records.len() as i32).to_be_bytes());
    let mut compressor =
        Compressor::new(codec, &header, i32::MAX as usize).expect("no limit to reach");
    compressor.write(&plain).expect("no limit to reach");
    let mut batch = compressor.finish().expect("no limit to reach");
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp_ms)
        .max()
        .unwrap_or(NO_TIMESTAMP);
    finish_header(&mut batch, i16::from(codec.id()), max_timestamp);
    batch
}

/// Builds a valid RecordBatch v2 of `records` (timestamp, value; no keys,
/// no headers) compressed with `codec`, as [`build_records_batch`] does —
/// for tests and benchmarks.
///
/// ```
/// use ringlog_engine::batch::BatchView;
/// use ringlog_engine::codec::Codec;
/// use ringlog_engine::records::{build_timed_batch, find_record};
/// let bytes = build_timed_batch(Codec::Zstd, &[(10, b"a".as_slice()), (30, b"b"), (20, b"c")]);
/// let view = BatchView::parse(&bytes).unwrap();
/// let found = find_record(&view, 0, 0, 15).unwrap().unwrap();
/// assert_eq!((found.offset, found.timestamp_ms), (1, 30));
/// ```
pub fn build_timed_batch(codec: Codec, records: &[(i64, &[u8])]) -> Vec<u8> {
    let records: Vec<NewRecord<'_>> = records
        .iter()
        .map(|&(timestamp_ms, value)| NewRecord {
            timestamp_ms,
            key: None,
            value: Some(value),
            headers: &[],
        })
        .collect();
    build_records_batch(codec, &records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_producer_batch, set_base_offset};

    const NOW: i64 = 1_700_000_000_000;

    /// 200 records whose timestamps are NOW + 10 * i, except that every
    /// seventh is 5 ms older than its predecessor (out of order).
    fn timestamps() -> Vec<i64> {
        (0..200i64)
            .map(|i| {
                if i % 7 == 6 {
                    NOW + 10 * i - 15
                } else {
                    NOW + 10 * i
                }
            })
            .collect()
    }

    fn batch(codec: Codec, timestamps: &[i64]) -> Vec<u8> {
        let values: Vec<Vec<u8>> = (0..timestamps.len())
            .map(|i| format!("value-{i:04}-{}", "x".repeat(40)).into_bytes())
            .collect();
        let records: Vec<(i64, &[u8])> = timestamps
            .iter()
            .zip(&values)
            .map(|(t, v)| (*t, v.as_slice()))
            .collect();
        build_timed_batch(codec, &records)
    }

    /// Kafka's answer by brute force: the first record in offset order.
    fn expected(timestamps: &[i64], base: u64, min: u64, target: i64) -> Option<FoundRecord> {
        timestamps
            .iter()
            .enumerate()
            .map(|(i, &t)| (base + i as u64, t))
            .find(|&(o, t)| o >= min && t >= target)
            .map(|(offset, timestamp_ms)| FoundRecord {
                offset,
                timestamp_ms,
            })
    }

    fn plain_records(view: &BatchView<'_>) -> Vec<u8> {
        let codec = Codec::from_id(view.codec()).unwrap();
        let mut d =
            Decompressor::new(codec, &view.bytes()[BATCH_HEADER_BYTES..], usize::MAX).unwrap();
        let mut out = Vec::new();
        loop {
            let chunk = d.fill().unwrap();
            if chunk.is_empty() {
                return out;
            }
            let n = chunk.len();
            out.extend_from_slice(chunk);
            d.consume(n);
        }
    }

    /// Every record of a batch, owned: offset, timestamp, key, value,
    /// headers.
    type Walked = (
        u64,
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(Vec<u8>, Option<Vec<u8>>)>,
    );

    fn walk_all(bytes: &[u8]) -> Result<Vec<Walked>, RecordsError> {
        let view = BatchView::parse_unverified(bytes).unwrap();
        let mut walker = RecordWalker::new(&view)?;
        let mut out = Vec::new();
        while let Some(r) = walker.next_record()? {
            let headers = r
                .headers()
                .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                .collect();
            out.push((
                r.offset,
                r.timestamp_ms,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                headers,
            ));
        }
        Ok(out)
    }

    /// Three records: a keyed one with two headers (one null), a null key,
    /// a tombstone (null value) with an empty key.
    fn mixed_records() -> Vec<NewRecord<'static>> {
        vec![
            NewRecord {
                timestamp_ms: NOW,
                key: Some(b"user-1"),
                value: Some(b"{\"user\":\"alice\"}"),
                headers: &[(b"trace", Some(b"abc")), (b"empty", None)],
            },
            NewRecord {
                timestamp_ms: NOW + 7,
                key: None,
                value: Some(b"\xff\x00binary"),
                headers: &[],
            },
            NewRecord {
                timestamp_ms: NOW - 3,
                key: Some(b""),
                value: None,
                headers: &[(b"k", Some(b""))],
            },
        ]
    }

    fn expected_mixed(base: u64, times: [i64; 3]) -> Vec<Walked> {
        vec![
            (
                base,
                times[0],
                Some(b"user-1".to_vec()),
                Some(b"{\"user\":\"alice\"}".to_vec()),
                vec![
                    (b"trace".to_vec(), Some(b"abc".to_vec())),
                    (b"empty".to_vec(), None),
                ],
            ),
            (
                base + 1,
                times[1],
                None,
                Some(b"\xff\x00binary".to_vec()),
                vec![],
            ),
            (
                base + 2,
                times[2],
                Some(Vec::new()),
                None,
                vec![(b"k".to_vec(), Some(Vec::new()))],
            ),
        ]
    }

    #[test]
    fn the_walker_yields_every_field_in_every_codec() {
        for codec in Codec::ALL {
            let mut bytes = build_records_batch(codec, &mixed_records());
            set_base_offset(&mut bytes, 5000);
            assert_eq!(
                walk_all(&bytes).unwrap(),
                expected_mixed(5000, [NOW, NOW + 7, NOW - 3]),
                "{codec}"
            );
            // Large batches cross the decoders' chunks.
            let many = batch(codec, &timestamps());
            let walked = walk_all(&many).unwrap();
            assert_eq!(walked.len(), 200, "{codec}");
            for (i, (offset, timestamp, key, value, headers)) in walked.into_iter().enumerate() {
                assert_eq!(offset, i as u64);
                assert_eq!(timestamp, timestamps()[i]);
                assert_eq!(key, None);
                assert_eq!(
                    value.unwrap(),
                    format!("value-{i:04}-{}", "x".repeat(40)).into_bytes()
                );
                assert!(headers.is_empty());
            }
        }
    }

    #[test]
    fn the_walker_gives_log_append_time_records_the_batch_max_timestamp() {
        for codec in Codec::ALL {
            let mut bytes = build_records_batch(codec, &mixed_records());
            let view = BatchView::parse(&bytes).unwrap();
            let patch = HeaderPatch::new(
                &view,
                view.attributes() | ATTRIBUTE_LOG_APPEND_TIME,
                NOW + 900,
            );
            patch.apply(&mut bytes);
            assert_eq!(
                walk_all(&bytes).unwrap(),
                expected_mixed(0, [NOW + 900; 3]),
                "{codec}"
            );
        }
    }

    /// An uncompressed batch of one record whose records section is `records`.
    fn raw_records_batch(records: &[u8]) -> Vec<u8> {
        let mut bytes = build_producer_batch(NOW, &[b"x".as_slice()], -1, -1, -1);
        bytes.truncate(BATCH_HEADER_BYTES);
        bytes.extend_from_slice(records);
        finish_header(&mut bytes, 0, NOW);
        bytes
    }

    fn walk_error(bytes: &[u8]) -> RecordsError {
        walk_all(bytes).expect_err("a corrupt batch")
    }

    #[test]
    fn walker_truncated_records_section() {
        let good = build_records_batch(Codec::None, &mixed_records());
        for cut in [BATCH_HEADER_BYTES, BATCH_HEADER_BYTES + 1, good.len() - 1] {
            let mut bytes = good[..cut].to_vec();
            finish_header(&mut bytes, 0, NOW);
            assert!(
                matches!(walk_error(&bytes), RecordsError::Malformed(_)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn walker_truncated_compressed_stream() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let good = build_records_batch(codec, &mixed_records());
            let half = BATCH_HEADER_BYTES + (good.len() - BATCH_HEADER_BYTES) / 2;
            let mut bytes = good[..half].to_vec();
            finish_header(&mut bytes, i16::from(codec.id()), NOW);
            assert!(walk_all(&bytes).is_err(), "{codec}");
        }
    }

    #[test]
    fn walker_garbled_compressed_stream() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut bytes = build_records_batch(codec, &mixed_records());
            for b in &mut bytes[BATCH_HEADER_BYTES..] {
                *b = 0xa5;
            }
            finish_header(&mut bytes, i16::from(codec.id()), NOW);
            assert!(
                matches!(walk_error(&bytes), RecordsError::Codec(_)),
                "{codec}"
            );
        }
    }

    #[test]
    fn walker_negative_record_length() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0x01])),
            RecordsError::Malformed("negative record length")
        );
    }

    #[test]
    fn walker_record_length_past_the_data() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0x7e, 0, 0, 0])),
            RecordsError::Malformed("records end inside a record")
        );
    }

    #[test]
    fn walker_key_longer_than_its_record() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0x0c, 0, 0, 0, 0x40, 0, 0, 0])),
            RecordsError::Malformed("a field runs past its record")
        );
    }

    #[test]
    fn walker_negative_field_length() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0x0a, 0, 0, 0, 0x03, 0, 0])),
            RecordsError::Malformed("negative field length")
        );
    }

    #[test]
    fn walker_negative_header_count() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0x0c, 0, 0, 0, 0x01, 0x01, 0x01])),
            RecordsError::Malformed("negative header count")
        );
    }

    #[test]
    fn walker_header_count_beyond_its_record() {
        // 100 headers claimed, two bytes left.
        assert_eq!(
            walk_error(&raw_records_batch(&[
                0x10, 0, 0, 0, 0x01, 0x01, 0xc8, 0x01, 0, 0x01
            ])),
            RecordsError::Malformed("a field runs past its record")
        );
    }

    #[test]
    fn walker_varint_too_long() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
            RecordsError::Malformed("varint too long")
        );
    }

    #[test]
    fn walker_record_longer_than_its_fields() {
        assert_eq!(
            walk_error(&raw_records_batch(&[0x0e, 0, 0, 0, 0x01, 0x01, 0, 0])),
            RecordsError::Malformed("record length disagrees with its fields")
        );
    }

    #[test]
    fn walker_offset_deltas_not_increasing() {
        // Offset delta 1 in a batch whose last offset delta is 0.
        assert_eq!(
            walk_error(&raw_records_batch(&[0x0c, 0, 0, 0x02, 0x01, 0x01, 0])),
            RecordsError::Malformed(
                "offset deltas not increasing within the batch's last offset delta"
            )
        );
    }

    #[test]
    fn walker_bytes_after_the_last_record() {
        let mut bytes = build_records_batch(Codec::None, &mixed_records());
        bytes.push(0);
        finish_header(&mut bytes, 0, NOW);
        assert_eq!(
            walk_error(&bytes),
            RecordsError::Malformed("bytes after the batch's last record")
        );
    }

    #[test]
    fn walker_unknown_codec() {
        let mut bytes = build_records_batch(Codec::None, &mixed_records());
        finish_header(&mut bytes, 6, NOW);
        assert_eq!(
            walk_error(&bytes),
            RecordsError::Malformed("unknown codec id")
        );
    }

    #[test]
    fn walker_negative_base_offset() {
        let mut bytes = build_records_batch(Codec::None, &mixed_records());
        bytes[..8].copy_from_slice(&(-2i64).to_be_bytes());
        assert_eq!(
            walk_error(&bytes),
            RecordsError::Malformed("negative base offset")
        );
    }

    #[test]
    fn find_record_is_exact_in_every_codec() {
        let ts = timestamps();
        for codec in Codec::ALL {
            let bytes = batch(codec, &ts);
            let view = BatchView::parse(&bytes).unwrap();
            assert_eq!(view.codec(), codec.id());
            for target in [
                0,
                NOW,
                NOW + 1,
                NOW + 55,
                NOW + 61,
                NOW + 995,
                NOW + 1990,
                NOW + 1991,
            ] {
                for min in [0, 3, 150] {
                    assert_eq!(
                        find_record(&view, 1000, 1000 + min, target).unwrap(),
                        expected(&ts, 1000, 1000 + min, target),
                        "{codec} target {target} min {min}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_out_of_order_record_is_found_in_offset_order() {
        // Offset 6 (NOW + 45) is older than offset 5 (NOW + 50): a target
        // of NOW + 46 answers offset 5, the first in offset order.
        let ts = timestamps();
        let view_bytes = batch(Codec::Lz4, &ts);
        let view = BatchView::parse(&view_bytes).unwrap();
        let found = find_record(&view, 0, 0, NOW + 46).unwrap().unwrap();
        assert_eq!((found.offset, found.timestamp_ms), (5, NOW + 50));
        // The max timestamp says yes, no record does (a producer's claim).
        let mut lying = batch(Codec::None, &[NOW, NOW + 1]);
        let view = BatchView::parse(&lying).unwrap();
        let patch = HeaderPatch::new(&view, view.attributes(), NOW + 100);
        patch.apply(&mut lying);
        let view = BatchView::parse(&lying).unwrap();
        assert_eq!(find_record(&view, 0, 0, NOW + 50).unwrap(), None);
    }

    #[test]
    fn log_append_time_batches_need_no_decoding() {
        let mut bytes = batch(Codec::Gzip, &[NOW, NOW + 1, NOW + 2]);
        let view = BatchView::parse(&bytes).unwrap();
        let patch = HeaderPatch::new(
            &view,
            view.attributes() | ATTRIBUTE_LOG_APPEND_TIME,
            NOW + 500,
        );
        patch.apply(&mut bytes);
        // Garbage records: never looked at.
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let view = BatchView::parse_unverified(&bytes).unwrap();
        let found = find_record(&view, 10, 11, NOW + 400).unwrap().unwrap();
        assert_eq!((found.offset, found.timestamp_ms), (11, NOW + 500));
        assert_eq!(find_record(&view, 10, 13, NOW).unwrap(), None);
        assert_eq!(find_record(&view, 10, 0, NOW + 501).unwrap(), None);
    }

    #[test]
    fn default_policy_keeps_the_batch_as_produced() {
        for codec in Codec::ALL {
            let bytes = batch(codec, &timestamps());
            let view = BatchView::parse(&bytes).unwrap();
            let prepared = prepare(&view, &BatchPolicy::default(), 1 << 20, || {
                panic!("the fast path reads no clock")
            })
            .unwrap();
            assert_eq!(prepared, Prepared::AsIs);
            // Same codec asked for: as produced too.
            let same = BatchPolicy {
                compression: Some(codec),
                ..BatchPolicy::default()
            };
            assert_eq!(
                prepare(&view, &same, 1 << 20, || NOW).unwrap(),
                Prepared::AsIs
            );
        }
    }

    #[test]
    fn log_append_time_patches_the_header_only() {
        let policy = BatchPolicy {
            timestamp_type: TimestampType::LogAppendTime,
            ..BatchPolicy::default()
        };
        let original = build_producer_batch(NOW - 5000, &[b"a".as_slice(), b"b"], 7, 3, 40);
        let view = BatchView::parse(&original).unwrap();
        let Prepared::Patched(patch) = prepare(&view, &policy, 1 << 20, || NOW).unwrap() else {
            panic!("a header patch");
        };
        let mut stored = original.clone();
        set_base_offset(&mut stored, 77);
        patch.apply(&mut stored);
        let after = BatchView::parse(&stored).expect("the CRC is recomputed");
        assert!(after.is_log_append_time());
        assert_eq!(after.max_timestamp(), NOW);
        assert_eq!(after.base_timestamp(), NOW - 5000);
        assert_eq!(after.codec(), 0);
        assert_eq!(
            (
                after.producer_id(),
                after.producer_epoch(),
                after.base_sequence()
            ),
            (7, 3, 40)
        );
        assert_eq!(after.base_offset(), 77);
        // Records untouched (per-record deltas stay, as in Kafka).
        assert_eq!(stored[BATCH_HEADER_BYTES..], original[BATCH_HEADER_BYTES..]);
        // A producer may not set the bit itself.
        let view = BatchView::parse(&stored).unwrap();
        assert_eq!(
            prepare(&view, &policy, 1 << 20, || NOW),
            Err(BatchError::LogAppendTimeFromProducer)
        );
    }

    #[test]
    fn recompression_keeps_records_and_header_fields() {
        let ts = timestamps();
        for source in Codec::ALL {
            let mut produced = batch(source, &ts);
            // Producer fields of an idempotent producer, a recomputed CRC.
            produced[43..51].copy_from_slice(&9i64.to_be_bytes());
            produced[51..53].copy_from_slice(&2i16.to_be_bytes());
            produced[53..57].copy_from_slice(&1234i32.to_be_bytes());
            let view = BatchView::parse_unverified(&produced).unwrap();
            let (attributes, max) = (view.attributes(), view.max_timestamp());
            finish_header(&mut produced, attributes, max);
            let view = BatchView::parse(&produced).unwrap();
            for target in Codec::ALL {
                for timestamp_type in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
                    let policy = BatchPolicy {
                        compression: Some(target),
                        timestamp_type,
                        ..BatchPolicy::default()
                    };
                    let prepared = prepare(&view, &policy, 1 << 20, || NOW).unwrap();
                    let stored = match (&prepared, source == target) {
                        (Prepared::Rewritten { batch, .. }, false) => batch.clone(),
                        (Prepared::AsIs, true) => produced.clone(),
                        (Prepared::Patched(patch), true) => {
                            let mut copy = produced.clone();
                            patch.apply(&mut copy);
                            copy
                        }
                        other => panic!("{source} -> {target}: {other:?}"),
                    };
                    let after = BatchView::parse(&stored).expect("valid CRC");
                    assert_eq!(after.codec(), target.id(), "{source} -> {target}");
                    assert_eq!(plain_records(&after), plain_records(&view));
                    assert_eq!(
                        (
                            after.producer_id(),
                            after.producer_epoch(),
                            after.base_sequence(),
                            after.base_timestamp(),
                            after.record_count(),
                            after.last_offset_delta()
                        ),
                        (9, 2, 1234, view.base_timestamp(), 200, 199)
                    );
                    let (lat, stamp) = match timestamp_type {
                        TimestampType::CreateTime => (false, max),
                        TimestampType::LogAppendTime => (true, NOW),
                    };
                    assert_eq!(after.is_log_append_time(), lat);
                    assert_eq!(after.max_timestamp(), stamp);
                    assert_eq!(prepared.max_timestamp(&view), stamp);
                    if lat {
                        let found = find_record(&after, 0, 0, NOW).unwrap();
                        assert_eq!(found.map(|f| (f.offset, f.timestamp_ms)), Some((0, NOW)));
                    } else {
                        let found = find_record(&after, 0, 0, NOW + 995).unwrap();
                        assert_eq!(found, expected(&ts, 0, 0, NOW + 995));
                    }
                }
            }
        }
    }

    #[test]
    fn recompression_beyond_max_message_bytes_is_refused() {
        let noise: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let bytes = build_timed_batch(Codec::Zstd, &[(NOW, &vec![0u8; 20_000]), (NOW, &noise)]);
        let view = BatchView::parse(&bytes).unwrap();
        let policy = BatchPolicy {
            compression: Some(Codec::None),
            ..BatchPolicy::default()
        };
        assert_eq!(
            prepare(&view, &policy, 30_000, || NOW),
            Err(BatchError::RecompressedTooLarge {
                codec: Codec::None,
                max_bytes: 30_000
            })
        );
        assert!(matches!(
            prepare(&view, &policy, 50_000, || NOW),
            Ok(Prepared::Rewritten { .. })
        ));
    }

    #[test]
    fn the_timestamp_window_checks_every_record() {
        let policy = BatchPolicy {
            timestamp_before_max_ms: 60_000,
            timestamp_after_max_ms: 1_000,
            ..BatchPolicy::default()
        };
        for codec in Codec::ALL {
            let fresh = batch(codec, &[NOW - 59_000, NOW, NOW + 1_000]);
            let view = BatchView::parse(&fresh).unwrap();
            assert_eq!(
                prepare(&view, &policy, 1 << 20, || NOW).unwrap(),
                Prepared::AsIs,
                "{codec}: in the window, nothing changes"
            );
            // Only the third record is too old: the batch is refused.
            let stale = batch(codec, &[NOW, NOW, NOW - 60_001, NOW]);
            let view = BatchView::parse(&stale).unwrap();
            assert_eq!(
                prepare(&view, &policy, 1 << 20, || NOW),
                Err(BatchError::TimestampOutOfRange {
                    record_index: 2,
                    timestamp_ms: NOW - 60_001,
                    earliest_ms: NOW - 60_000,
                    latest_ms: NOW + 1_000
                })
            );
            let future = batch(codec, &[NOW + 1_001]);
            let view = BatchView::parse(&future).unwrap();
            assert!(matches!(
                prepare(&view, &policy, 1 << 20, || NOW),
                Err(BatchError::TimestampOutOfRange {
                    record_index: 0,
                    ..
                })
            ));
            // Records without a timestamp (-1) pass, as in Kafka.
            let untimed = batch(codec, &[NO_TIMESTAMP, NO_TIMESTAMP]);
            let view = BatchView::parse(&untimed).unwrap();
            assert!(prepare(&view, &policy, 1 << 20, || NOW).is_ok());
            // LogAppendTime topics do not check the window.
            let appended = BatchPolicy {
                timestamp_type: TimestampType::LogAppendTime,
                ..policy
            };
            let view = BatchView::parse(&stale).unwrap();
            assert!(matches!(
                prepare(&view, &appended, 1 << 20, || NOW),
                Ok(Prepared::Patched(_))
            ));
        }
    }

    #[test]
    fn a_walk_corrects_a_wrong_max_timestamp() {
        let mut bytes = batch(Codec::Snappy, &[NOW, NOW + 5]);
        let view = BatchView::parse(&bytes).unwrap();
        let wrong = HeaderPatch::new(&view, view.attributes(), NOW + 1_000_000);
        wrong.apply(&mut bytes);
        let view = BatchView::parse(&bytes).unwrap();
        let policy = BatchPolicy {
            timestamp_before_max_ms: 1 << 40,
            ..BatchPolicy::default()
        };
        let Prepared::Patched(patch) = prepare(&view, &policy, 1 << 20, || NOW).unwrap() else {
            panic!("the max timestamp is corrected");
        };
        assert_eq!(patch.max_timestamp, NOW + 5);
    }

    #[test]
    fn garbage_records_are_errors_never_panics() {
        let policies = [
            BatchPolicy {
                compression: Some(Codec::Gzip),
                ..BatchPolicy::default()
            },
            BatchPolicy {
                timestamp_before_max_ms: 1,
                ..BatchPolicy::default()
            },
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for codec in Codec::ALL {
            let good = batch(codec, &timestamps()[..20]);
            for _ in 0..400 {
                let mut bad = good.clone();
                let flips = 1 + next() % 4;
                for _ in 0..flips {
                    let at =
                        BATCH_HEADER_BYTES + (next() as usize) % (bad.len() - BATCH_HEADER_BYTES);
                    bad[at] ^= 1 << (next() % 8);
                }
                if next() % 5 == 0 {
                    let cut =
                        BATCH_HEADER_BYTES + (next() as usize) % (bad.len() - BATCH_HEADER_BYTES);
                    bad.truncate(cut);
                }
                let view = BatchView::parse_unverified(&bad).unwrap();
                let (attributes, max) = (view.attributes(), view.max_timestamp());
                finish_header(&mut bad, attributes, max);
                let view = BatchView::parse(&bad).unwrap();
                let _ = find_record(&view, 0, 0, NOW + 100);
                let _ = walk_all(&bad);
                for policy in &policies {
                    let _ = prepare(&view, policy, 1 << 20, || NOW);
                }
            }
        }
        // Hand-made framing errors, each a typed error.
        let cases: [(&[u8], &str); 5] = [
            (&[0x01], "a record shorter than its fields"),
            (&[0x7f, 0, 0, 0, 0, 0, 0, 0], "a length past the data"),
            (
                &[0x0c, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0],
                "a key longer than its record",
            ),
            (
                &[0x0a, 0, 0, 0, 0x01, 0x01, 0x00],
                "a negative header count",
            ),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "a varint too long"),
        ];
        for (records, what) in cases {
            let mut bytes = build_producer_batch(NOW, &[b"x".as_slice()], -1, -1, -1);
            bytes.truncate(BATCH_HEADER_BYTES);
            bytes.extend_from_slice(records);
            finish_header(&mut bytes, 0, NOW);
            let view = BatchView::parse(&bytes).unwrap();
            assert!(
                matches!(find_record(&view, 0, 0, 0), Err(RecordsError::Malformed(_))),
                "{what}"
            );
        }
        // Trailing bytes after the last record are refused by a rewrite.
        let mut bytes = batch(Codec::None, &[NOW]);
        bytes.push(0);
        finish_header(&mut bytes, 0, NOW);
        let view = BatchView::parse(&bytes).unwrap();
        assert!(matches!(
            prepare(&view, &policies[0], 1 << 20, || NOW),
            Err(BatchError::Records(RecordsError::Malformed(_)))
        ));
    }
}
