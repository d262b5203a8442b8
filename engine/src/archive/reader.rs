//! Reading an archive: the index that turns an offset or a timestamp into
//! one ranged read of whole batches, the check of the bytes such a read
//! returns, and the check of a whole object.
//!
//! A reader over an object store goes: [`Footer::from_tail`] on the last
//! [`super::TAIL_READ_BYTES`] (one more read of the footer if it asks),
//! [`ArchiveIndex::decode`] on [`Footer::index_range`] (often inside the
//! tail already), then per fetch [`ArchiveIndex::span_for_offset`] or
//! [`ArchiveIndex::span_for_timestamp`], [`ArchiveIndex::read_range`], one
//! ranged read of its bytes, and [`ArchiveIndex::verify`] before serving
//! them.

use super::format::{batch_len, decode_indexes, Footer, Member, SpanEntry, Trailer};
use super::{corrupt, ArchiveCorruption as C, ArchiveError, MemberKind, Region};
use super::{
    FOOTER_BATCH_COUNT_AT, FOOTER_FIRST_OFFSET_AT, FOOTER_LAST_OFFSET_AT, FOOTER_MIN_TIMESTAMP_AT,
    FOOTER_RECORD_COUNT_AT, OFFSET_INDEX_ENTRY_BYTES, OFFSET_INDEX_RELATIVE_OFFSET_AT,
    TIME_INDEX_ENTRY_BYTES,
};
use crate::batch::BatchView;
use crate::format::OFFSET_MAX;
use std::ops::Range;

/// One span of the records: whole batches, with their own crc32c.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Base offset of its first batch.
    pub first_offset: u64,
    /// The offset after its last batch.
    pub end_offset: u64,
    /// Largest batch max timestamp of every batch up to its end.
    pub max_timestamp_ms: i64,
    /// Its bytes in the object.
    pub bytes: Range<u64>,
    /// crc32c of those bytes.
    pub crc32c: u32,
}

/// Consecutive spans to read with one ranged read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRange {
    /// The spans, by index.
    pub spans: Range<usize>,
    /// Base offset of the first batch read.
    pub first_offset: u64,
    /// The offset after the last batch read.
    pub end_offset: u64,
    /// The bytes to read from the object: whole batches.
    pub bytes: Range<u64>,
}

/// The decoded, checked offset and time indexes of one archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveIndex {
    first_offset: u64,
    last_offset: u64,
    records: Member,
    spans: Vec<SpanEntry>,
}

impl ArchiveIndex {
    /// Checks both index members (their crcs, their order, their agreement
    /// with each other and with the footer) and decodes them. `bytes` holds
    /// the object from position `start` on and covers
    /// [`Footer::index_range`]; panics if it does not.
    pub fn decode(footer: &Footer, bytes: &[u8], start: u64) -> Result<Self, ArchiveError> {
        Ok(ArchiveIndex {
            first_offset: footer.first_offset,
            last_offset: footer.last_offset,
            records: *footer.builtin(MemberKind::RECORDS),
            spans: decode_indexes(footer, bytes, start)?,
        })
    }

    /// Spans in the archive (at least one).
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Span `i`; panics if there is no such span.
    pub fn span(&self, i: usize) -> Span {
        let s = &self.spans[i];
        let (end_offset, end) = match self.spans.get(i + 1) {
            Some(next) => (
                self.first_offset + u64::from(next.relative_offset),
                next.position,
            ),
            None => (self.last_offset + 1, self.records.len_bytes),
        };
        Span {
            first_offset: self.first_offset + u64::from(s.relative_offset),
            end_offset,
            max_timestamp_ms: s.max_timestamp_ms,
            bytes: self.records.position + s.position..self.records.position + end,
            crc32c: s.crc32c,
        }
    }

    /// The span holding `offset`; `None` outside the archive's offsets.
    pub fn span_for_offset(&self, offset: u64) -> Option<usize> {
        if offset < self.first_offset || offset > self.last_offset {
            return None;
        }
        let relative = offset - self.first_offset;
        Some(
            self.spans
                .partition_point(|s| u64::from(s.relative_offset) <= relative)
                - 1,
        )
    }

    /// The span holding the first batch whose max timestamp is at or after
    /// `timestamp_ms`; `None` if no batch reaches it. ListOffsets by time
    /// decodes that batch for the exact record (as the local log does,
    /// [`crate::records::find_record`]), and goes on to later batches and
    /// spans when no record in it matches (a batch's max timestamp is the
    /// producer's claim).
    pub fn span_for_timestamp(&self, timestamp_ms: i64) -> Option<usize> {
        let i = self
            .spans
            .partition_point(|s| s.max_timestamp_ms < timestamp_ms);
        (i < self.spans.len()).then_some(i)
    }

    /// The spans from `first_span` on until they hold at least `max_bytes`
    /// (at least one span, never past the last): the bytes of one ranged
    /// read of whole batches. Panics if `first_span` is no span.
    pub fn read_range(&self, first_span: usize, max_bytes: u64) -> ReadRange {
        let start = self.span(first_span);
        let mut last = start.clone();
        let mut end_span = first_span + 1;
        while end_span < self.spans.len() && last.bytes.end - start.bytes.start < max_bytes {
            last = self.span(end_span);
            end_span += 1;
        }
        ReadRange {
            spans: first_span..end_span,
            first_offset: start.first_offset,
            end_offset: last.end_offset,
            bytes: start.bytes.start..last.bytes.end,
        }
    }

    /// Checks the bytes read for `range` (the object from
    /// `range.bytes.start`; bytes after the range are ignored) against each
    /// span's crc32c. A mismatch is located to the batch that fails its own
    /// checks (Kafka's CRC-32C, its length, offsets that continue the
    /// span's), else reported at the span's start.
    pub fn verify(&self, range: &ReadRange, bytes: &[u8]) -> Result<(), ArchiveError> {
        let region = Region::Member(MemberKind::RECORDS);
        let needed = range.bytes.end - range.bytes.start;
        if (bytes.len() as u64) < needed {
            let at = range.bytes.start + bytes.len() as u64;
            return Err(corrupt(region, at, C::Truncated));
        }
        for i in range.spans.clone() {
            let span = self.span(i);
            let from = (span.bytes.start - range.bytes.start) as usize;
            let b = &bytes[from..from + (span.bytes.end - span.bytes.start) as usize];
            let computed = crc32c::crc32c(b);
            if computed == span.crc32c {
                continue;
            }
            let damage = batches(b, span.bytes.start, Some(span.first_offset))
                .find_map(Result::err)
                .unwrap_or((
                    span.bytes.start,
                    C::CrcMismatch {
                        stored: span.crc32c,
                        computed,
                    },
                ));
            return Err(corrupt(region, damage.0, damage.1));
        }
        Ok(())
    }
}

/// The batches of `bytes`, which hold the object from `position`: each
/// with its position, checked by [`BatchView::parse`] and for offsets that
/// continue from `expected` (from the first batch's own, if `None`). Ends
/// at the first bad batch, with its position and what is wrong.
fn batches(
    bytes: &[u8],
    position: u64,
    mut expected: Option<u64>,
) -> impl Iterator<Item = Result<(u64, BatchView<'_>), (u64, C)>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let pos = position + at as u64;
        let fail = |c| Some(Err((pos, c)));
        let Some(len) = batch_len(&bytes[at..]).filter(|len| at + len <= bytes.len()) else {
            at = bytes.len();
            return fail(C::Malformed("batch length runs past the end"));
        };
        let view = match BatchView::parse(&bytes[at..at + len]) {
            Ok(view) => view,
            Err(e) => {
                at = bytes.len();
                return fail(C::BadBatch(e));
            }
        };
        let base = view.base_offset();
        let count = u64::from(view.offset_count());
        match expected {
            Some(e) if base != e as i64 => {
                at = bytes.len();
                return fail(C::OffsetGap {
                    expected: e,
                    found: base,
                });
            }
            _ if base < 0 || base as u64 > OFFSET_MAX - count => {
                at = bytes.len();
                return fail(C::Malformed("offsets beyond the largest offset"));
            }
            _ => {}
        }
        expected = Some(base as u64 + count);
        at += len;
        Some(Ok((pos, view)))
    })
}

/// What [`verify_all`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The footer.
    pub footer: Footer,
    /// Spans in the offset and time indexes.
    pub spans: usize,
}

/// Checks every byte of a whole archive, in this order: the trailer, the
/// footer, both indexes, the records span by span (each batch's own
/// checks, its offsets, the spans and the footer's summary against the
/// batches), then every other member's crc32c, unknown kinds included.
/// The first corruption found is returned with its region and byte.
pub fn verify_all(object: &[u8]) -> Result<Report, ArchiveError> {
    let trailer = Trailer::decode(object, object.len() as u64)?;
    let range = trailer.footer_range();
    let footer = Footer::decode(&object[range.start as usize..range.end as usize], &trailer)?;
    let index = ArchiveIndex::decode(&footer, object, 0)?;
    let all = index.read_range(0, u64::MAX);
    let records = &object[all.bytes.start as usize..all.bytes.end as usize];
    index.verify(&all, records)?;
    check_records(&footer, &index, records)?;
    for m in &footer.members {
        if matches!(m.kind, MemberKind::OFFSET_INDEX | MemberKind::TIME_INDEX) {
            continue;
        }
        let computed = crc32c::crc32c(&object[m.position as usize..m.range().end as usize]);
        if computed != m.crc32c {
            let stored = m.crc32c;
            return Err(corrupt(
                Region::Member(m.kind),
                m.position,
                C::CrcMismatch { stored, computed },
            ));
        }
    }
    Ok(Report {
        spans: index.span_count(),
        footer,
    })
}

/// Walks every batch of the records member and checks the indexes and the
/// footer against them.
fn check_records(
    footer: &Footer,
    index: &ArchiveIndex,
    records: &[u8],
) -> Result<(), ArchiveError> {
    let base = index.records.position;
    let offsets_at = footer.builtin(MemberKind::OFFSET_INDEX).position;
    let times_at = footer.builtin(MemberKind::TIME_INDEX).position;
    let footer_at = footer.trailer.footer_position;
    let mut next_span = 0;
    let mut end_offset = footer.first_offset;
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    let (mut record_count, mut batch_count) = (0u64, 0u64);
    for item in batches(records, base, None) {
        let (pos, view) =
            item.map_err(|(at, c)| corrupt(Region::Member(MemberKind::RECORDS), at, c))?;
        let base_offset = view.base_offset() as u64;
        if batch_count == 0 && base_offset != footer.first_offset {
            return Err(mismatch(
                Region::Footer,
                footer_at + FOOTER_FIRST_OFFSET_AT as u64,
                "first offset",
                footer.first_offset.into(),
                base_offset.into(),
            ));
        }
        let span = index.spans.get(next_span);
        if span.is_some_and(|s| base + s.position < pos) {
            let at = offsets_at + (next_span * OFFSET_INDEX_ENTRY_BYTES) as u64;
            return Err(corrupt(
                Region::Member(MemberKind::OFFSET_INDEX),
                at,
                C::Malformed("span does not start at a batch"),
            ));
        }
        if let Some(s) = span.filter(|s| base + s.position == pos) {
            let relative = base_offset - footer.first_offset;
            if u64::from(s.relative_offset) != relative {
                let at = offsets_at
                    + (next_span * OFFSET_INDEX_ENTRY_BYTES + OFFSET_INDEX_RELATIVE_OFFSET_AT)
                        as u64;
                return Err(mismatch(
                    Region::Member(MemberKind::OFFSET_INDEX),
                    at,
                    "span relative offset",
                    s.relative_offset.into(),
                    relative.into(),
                ));
            }
            if next_span > 0 {
                check_span_max(index, next_span - 1, max_ts, times_at)?;
            }
            next_span += 1;
        }
        max_ts = max_ts.max(view.max_timestamp());
        min_ts = min_ts.min(if view.is_log_append_time() {
            view.max_timestamp()
        } else {
            view.base_timestamp()
        });
        record_count += view.record_count() as u64;
        batch_count += 1;
        end_offset = base_offset + u64::from(view.offset_count());
    }
    if next_span < index.spans.len() {
        let at = offsets_at + (next_span * OFFSET_INDEX_ENTRY_BYTES) as u64;
        return Err(corrupt(
            Region::Member(MemberKind::OFFSET_INDEX),
            at,
            C::Malformed("span does not start at a batch"),
        ));
    }
    // The last span's max timestamp is the footer's (checked on decode),
    // so this checks the footer's max timestamp too.
    check_span_max(index, next_span - 1, max_ts, times_at)?;
    let summary: [(usize, &str, i128, i128); 4] = [
        (
            FOOTER_LAST_OFFSET_AT,
            "last offset",
            footer.last_offset.into(),
            (end_offset - 1).into(),
        ),
        (
            FOOTER_MIN_TIMESTAMP_AT,
            "min timestamp",
            footer.min_timestamp_ms.into(),
            min_ts.into(),
        ),
        (
            FOOTER_RECORD_COUNT_AT,
            "record count",
            footer.record_count.into(),
            record_count.into(),
        ),
        (
            FOOTER_BATCH_COUNT_AT,
            "batch count",
            footer.batch_count.into(),
            batch_count.into(),
        ),
    ];
    for (at, field, stored, found) in summary {
        if stored != found {
            return Err(mismatch(
                Region::Footer,
                footer_at + at as u64,
                field,
                stored,
                found,
            ));
        }
    }
    Ok(())
}

/// Checks the time index entry of span `i` against the largest batch max
/// timestamp up to its end.
fn check_span_max(
    index: &ArchiveIndex,
    i: usize,
    found: i64,
    times_at: u64,
) -> Result<(), ArchiveError> {
    let stored = index.spans[i].max_timestamp_ms;
    if stored == found {
        return Ok(());
    }
    let at = times_at + (i * TIME_INDEX_ENTRY_BYTES) as u64;
    Err(mismatch(
        Region::Member(MemberKind::TIME_INDEX),
        at,
        "span max timestamp",
        stored.into(),
        found.into(),
    ))
}

fn mismatch(
    region: Region,
    at: u64,
    field: &'static str,
    stored: i128,
    found: i128,
) -> ArchiveError {
    corrupt(
        region,
        at,
        C::Mismatch {
            field,
            stored,
            found,
        },
    )
}
