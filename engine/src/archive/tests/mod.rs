//! Round trips of the archive format, its lookups and the writer's
//! refusals; one unit test per corruption case in `corruption.rs`. The
//! helpers here build a sample archive and reseal one after an edit.

use super::*;
use crate::batch::{
    build_batch, set_base_offset, BatchView, HeaderPatch, ATTRIBUTE_LOG_APPEND_TIME,
};
use crate::format::{le_i64, le_u32, le_u64, put};
use proptest::collection::vec;
use proptest::prelude::*;

fn meta() -> ArchiveMeta {
    ArchiveMeta {
        topic_id: [7; 16],
        topic: "orders".into(),
        partition: 3,
    }
}

/// A batch of `records` records of `value_len` bytes at `timestamp_ms`,
/// from `offset`; under LogAppendTime stamped `append_ms` as the broker
/// does.
fn batch(
    offset: u64,
    records: usize,
    value_len: usize,
    timestamp_ms: i64,
    append_ms: Option<i64>,
) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let values: Vec<&[u8]> = (0..records).map(|_| value.as_slice()).collect();
    let mut b = build_batch(timestamp_ms, &values);
    set_base_offset(&mut b, offset);
    if let Some(append_ms) = append_ms {
        let view = BatchView::parse(&b).unwrap();
        let attributes = view.attributes() | ATTRIBUTE_LOG_APPEND_TIME;
        HeaderPatch::new(&view, attributes, append_ms).apply(&mut b);
    }
    b
}

/// `n` batches from offset `first`: batch i holds 1 + i % 3 records of
/// 100 bytes, at a timestamp that mostly grows but steps back every fifth
/// batch.
fn batches(first: u64, n: usize) -> Vec<Vec<u8>> {
    let mut offset = first;
    (0..n)
        .map(|i| {
            let timestamp_ms = 1000 + 10 * i as i64 - if i % 5 == 4 { 35 } else { 0 };
            let b = batch(offset, 1 + i % 3, 100, timestamp_ms, None);
            offset += 1 + (i % 3) as u64;
            b
        })
        .collect()
}

/// The kind of the extra member in [`sample`]: a kind this build does not know.
const HOTCACHE: MemberKind = MemberKind(77);

fn write(batches: &[Vec<u8>], interval_bytes: u64, extra: &[(MemberKind, Vec<u8>)]) -> Finished {
    let mut w = ArchiveWriter::with_index_interval(meta(), interval_bytes).unwrap();
    for b in batches {
        w.push_batch(b).unwrap();
    }
    for (kind, bytes) in extra {
        w.add_member(*kind, bytes.clone()).unwrap();
    }
    w.finish().unwrap()
}

/// 30 batches from offset 500 in spans of about 1000 bytes, with an
/// unknown member between the records and the indexes. Members: records,
/// kind 77, offset index, time index.
fn sample() -> Finished {
    write(&batches(500, 30), 1000, &[(HOTCACHE, (0..50).collect())])
}

/// Length of the [`sample`] object.
fn o_len() -> usize {
    sample().bytes.len()
}

fn trailer_at(o: &[u8]) -> usize {
    o.len() - TRAILER_BYTES
}

fn footer_at(o: &[u8]) -> usize {
    le_u64(o, trailer_at(o) + TRAILER_FOOTER_POSITION_AT) as usize
}

/// Position of member table entry `i`.
fn entry_at(o: &[u8], i: usize) -> usize {
    footer_at(o) + FOOTER_FIXED_BYTES + i * MEMBER_ENTRY_BYTES
}

/// Recomputes the trailer's own crc after an edit of the trailer.
fn reseal_trailer(o: &mut [u8]) {
    let t = trailer_at(o);
    let crc = crc32c::crc32c(&o[t..t + TRAILER_CRC_AT]);
    put(o, t + TRAILER_CRC_AT, crc);
}

/// Recomputes every member crc the member table can reach, the footer's
/// crc and the trailer's, so a check after them sees an edit.
fn reseal(o: &mut [u8]) {
    let (t, f) = (trailer_at(o), footer_at(o));
    let count = le_u32(o, f + FOOTER_MEMBER_COUNT_AT) as usize;
    for i in 0..count {
        let e = f + FOOTER_FIXED_BYTES + i * MEMBER_ENTRY_BYTES;
        if e + MEMBER_ENTRY_BYTES > t {
            break;
        }
        let position = le_u64(o, e + MEMBER_POSITION_AT) as usize;
        let end = position.checked_add(le_u64(o, e + MEMBER_LENGTH_AT) as usize);
        if let Some(end) = end.filter(|&end| end <= f) {
            let crc = crc32c::crc32c(&o[position..end]);
            put(o, e + MEMBER_CRC_AT, crc);
        }
    }
    let crc = crc32c::crc32c(&o[f..t]);
    put(o, t + TRAILER_FOOTER_CRC_AT, crc);
    reseal_trailer(o);
}

/// Recomputes every span crc in the offset index from its entries, then
/// [`reseal`]s.
fn reseal_spans(o: &mut [u8], footer: &Footer) {
    let records = footer.member(MemberKind::RECORDS).unwrap().range();
    let index = footer.member(MemberKind::OFFSET_INDEX).unwrap().range();
    let entries = ((index.end - index.start) as usize) / OFFSET_INDEX_ENTRY_BYTES;
    let position = |o: &[u8], i: usize| {
        le_u64(
            o,
            index.start as usize + i * OFFSET_INDEX_ENTRY_BYTES + OFFSET_INDEX_POSITION_AT,
        )
    };
    for i in 0..entries {
        let start = records.start + position(o, i);
        let end = if i + 1 < entries {
            records.start + position(o, i + 1)
        } else {
            records.end
        };
        let crc = crc32c::crc32c(&o[start as usize..end as usize]);
        put(
            o,
            index.start as usize + i * OFFSET_INDEX_ENTRY_BYTES + OFFSET_INDEX_CRC_AT,
            crc,
        );
    }
    reseal(o);
}

fn corrupt_at<T>(
    region: Region,
    at: usize,
    corruption: ArchiveCorruption,
) -> Result<T, ArchiveError> {
    Err(ArchiveError::Corrupt {
        region,
        at: at as u64,
        corruption,
    })
}

/// What a reader of the tail gets, as `verify_all` does.
fn open_tail(o: &[u8]) -> Result<Footer, ArchiveError> {
    let tail = &o[o.len().saturating_sub(TAIL_READ_BYTES as usize)..];
    match Footer::from_tail(tail, o.len() as u64)? {
        TailRead::Complete(footer) => Ok(footer),
        TailRead::NeedFooter(_) => panic!("the sample's footer fits the tail"),
    }
}

/// Checks a trailer or footer corruption through both readers.
fn assert_open_fails(o: &[u8], region: Region, at: usize, corruption: ArchiveCorruption) {
    assert_eq!(open_tail(o), corrupt_at(region, at, corruption.clone()));
    assert_eq!(verify_all(o), corrupt_at(region, at, corruption));
}

fn malformed(what: &'static str) -> ArchiveCorruption {
    ArchiveCorruption::Malformed(what)
}

// ---- round trips and lookups ----

#[derive(Clone, Debug)]
struct BatchSpec {
    records: usize,
    value_len: usize,
    timestamp_ms: i64,
    append_ms: Option<i64>,
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    (
        1..4usize,
        0..1500usize,
        -5..2000i64,
        proptest::option::of(0..2000i64),
    )
        .prop_map(|(records, value_len, timestamp_ms, append_ms)| BatchSpec {
            records,
            value_len,
            timestamp_ms,
            append_ms,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any segment round-trips: streamed or whole the same bytes, every
    /// footer field what the batches say, every offset and timestamp
    /// found in its span, every read range verified, the footer and the
    /// indexes found from the tail.
    #[test]
    fn archive_round_trips(
        first in 0..(1u64 << 40),
        specs in vec(batch_spec(), 1..40),
        interval_bytes in 0..6000u64,
        extra in vec((4..1000u32, vec(any::<u8>(), 0..200)), 0..3),
        takes in vec(any::<bool>(), 40),
        reads in vec((any::<prop::sample::Index>(), 0..20_000u64), 1..8),
    ) {
        let mut offset = first;
        let batches: Vec<Vec<u8>> = specs
            .iter()
            .map(|s| {
                let b = batch(offset, s.records, s.value_len, s.timestamp_ms, s.append_ms);
                offset += s.records as u64;
                b
            })
            .collect();
        let extra: Vec<_> = extra.into_iter().map(|(k, b)| (MemberKind(k), b)).collect();
        let whole = write(&batches, interval_bytes, &extra);

        let mut streamed = Vec::new();
        let mut w = ArchiveWriter::with_index_interval(meta(), interval_bytes).unwrap();
        for (b, take) in batches.iter().zip(&takes) {
            w.push_batch(b).unwrap();
            if *take {
                streamed.extend(w.take_output());
            }
        }
        for (kind, bytes) in &extra {
            w.add_member(*kind, bytes.clone()).unwrap();
        }
        let finished = w.finish().unwrap();
        streamed.extend(finished.bytes);
        prop_assert_eq!(&streamed, &whole.bytes);
        prop_assert_eq!(&finished.footer, &whole.footer);

        let o = &whole.bytes;
        let footer = &whole.footer;
        let views: Vec<BatchView> = batches.iter().map(|b| BatchView::parse(b).unwrap()).collect();
        prop_assert_eq!(footer.first_offset, first);
        prop_assert_eq!(footer.last_offset, offset - 1);
        prop_assert_eq!(footer.batch_count, batches.len() as u64);
        prop_assert_eq!(footer.record_count, specs.iter().map(|s| s.records as u64).sum::<u64>());
        let max_ts = views.iter().map(|v| v.max_timestamp()).max().unwrap();
        prop_assert_eq!(footer.max_timestamp_ms, max_ts);
        let min_ts = specs.iter().map(|s| s.append_ms.unwrap_or(s.timestamp_ms)).min().unwrap();
        prop_assert_eq!(footer.min_timestamp_ms, min_ts);
        let m = meta();
        prop_assert_eq!((&footer.topic, footer.topic_id, footer.partition), (&m.topic, m.topic_id, m.partition));
        let records = footer.member(MemberKind::RECORDS).unwrap().range();
        prop_assert_eq!(&o[records.start as usize..records.end as usize], &batches.concat()[..]);
        // Added members follow the records in the order added (a kind may
        // repeat), then the two indexes.
        prop_assert_eq!(footer.members.len(), extra.len() + 3);
        for ((kind, bytes), m) in extra.iter().zip(&footer.members[1..]) {
            prop_assert_eq!(m.kind, *kind);
            prop_assert_eq!(&o[m.position as usize..m.range().end as usize], &bytes[..]);
        }

        let report = verify_all(o).unwrap();
        prop_assert_eq!(&report.footer, footer);
        prop_assert_eq!(open_tail(o).unwrap(), footer.clone());
        let index = ArchiveIndex::decode(footer, o, 0).unwrap();
        prop_assert_eq!(report.spans, index.span_count());
        let range = footer.index_range();
        let index_bytes = &o[range.start as usize..range.end as usize];
        prop_assert_eq!(&ArchiveIndex::decode(footer, index_bytes, range.start).unwrap(), &index);

        // Batch positions and which span each lies in.
        let mut positions = Vec::new();
        let mut at = records.start;
        for b in &batches {
            positions.push(at);
            at += b.len() as u64;
        }
        let span_of_batch = |k: usize| {
            (0..index.span_count())
                .find(|&i| index.span(i).bytes.contains(&positions[k]))
                .unwrap()
        };
        let mut expected_start = records.start;
        for i in 0..index.span_count() {
            let span = index.span(i);
            prop_assert_eq!(span.bytes.start, expected_start);
            expected_start = span.bytes.end;
            let k = positions.iter().position(|&p| p == span.bytes.start).expect("a span starts at a batch");
            prop_assert_eq!(span.first_offset, views[k].base_offset() as u64);
        }
        prop_assert_eq!(expected_start, records.end);

        for offset in first..=footer.last_offset {
            let span = index.span(index.span_for_offset(offset).unwrap());
            prop_assert!(span.first_offset <= offset && offset < span.end_offset);
        }
        prop_assert_eq!(index.span_for_offset(footer.last_offset + 1), None);
        if first > 0 {
            prop_assert_eq!(index.span_for_offset(first - 1), None);
        }

        let min_max = views.iter().map(|v| v.max_timestamp()).min().unwrap();
        for ts in min_max - 1..=max_ts + 1 {
            let expected = views.iter().position(|v| v.max_timestamp() >= ts).map(span_of_batch);
            prop_assert_eq!(index.span_for_timestamp(ts), expected, "timestamp {}", ts);
        }

        for (span, max_bytes) in reads {
            let first_span = span.index(index.span_count());
            let r = index.read_range(first_span, max_bytes);
            prop_assert_eq!(r.spans.start, first_span);
            prop_assert!(r.bytes.end - r.bytes.start >= max_bytes || r.spans.end == index.span_count());
            if r.spans.len() > 1 {
                let shorter = index.span(r.spans.end - 2).bytes.end - r.bytes.start;
                prop_assert!(shorter < max_bytes);
            }
            prop_assert_eq!(r.first_offset, index.span(first_span).first_offset);
            prop_assert_eq!(r.end_offset, index.span(r.spans.end - 1).end_offset);
            prop_assert_eq!(index.verify(&r, &o[r.bytes.start as usize..]), Ok(()));
        }
    }
}

#[test]
fn build_archive_equals_the_writer_at_the_default_interval() {
    let batches = batches(0, 300);
    let built = build_archive(meta(), &batches.concat()).unwrap();
    assert_eq!(built, write(&batches, INDEX_INTERVAL_BYTES, &[]));
    assert!(
        ArchiveIndex::decode(&built.footer, &built.bytes, 0)
            .unwrap()
            .span_count()
            > 2
    );
    assert_eq!(verify_all(&built.bytes).unwrap().footer, built.footer);
}

#[test]
fn every_offset_finds_the_batch_that_holds_it() {
    let batches = batches(1 << 33, 50);
    for interval_bytes in [0, 1, 300, 1000, INDEX_INTERVAL_BYTES] {
        let Finished { bytes: o, footer } = write(&batches, interval_bytes, &[]);
        let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
        if interval_bytes <= 1 {
            assert_eq!(index.span_count(), batches.len());
        }
        for offset in footer.first_offset..=footer.last_offset {
            let span = index.span(index.span_for_offset(offset).unwrap());
            let r = index.read_range(index.span_for_offset(offset).unwrap(), 0);
            assert_eq!(r.bytes, span.bytes);
            // Walk the span's batches to the one holding the offset.
            let mut at = span.bytes.start as usize;
            let holder = loop {
                assert!(
                    at < span.bytes.end as usize,
                    "offset {offset} not in its span"
                );
                let len = 12 + i32::from_be_bytes(o[at + 8..at + 12].try_into().unwrap()) as usize;
                let view = BatchView::parse(&o[at..at + len]).unwrap();
                let base = view.base_offset() as u64;
                if (base..base + u64::from(view.offset_count())).contains(&offset) {
                    break view;
                }
                at += len;
            };
            assert!(holder.base_offset() as u64 >= span.first_offset);
        }
    }
}

#[test]
fn time_lookups_find_the_first_batch_reaching_the_timestamp() {
    // Max timestamps 1000, 1010, 1020, 1030, 1005 (a step back), 1050...
    let batches = batches(0, 20);
    let Finished { bytes: o, footer } = write(&batches, 0, &[]);
    let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
    let max: Vec<i64> = batches
        .iter()
        .map(|b| BatchView::parse(b).unwrap().max_timestamp())
        .collect();
    assert_eq!(max[..6], [1000, 1010, 1020, 1030, 1005, 1050]);
    // One span per batch: the span is the batch.
    assert_eq!(index.span_for_timestamp(i64::MIN), Some(0));
    assert_eq!(index.span_for_timestamp(1000), Some(0));
    assert_eq!(index.span_for_timestamp(1001), Some(1));
    assert_eq!(
        index.span_for_timestamp(1005),
        Some(1),
        "not the stepped-back batch 4"
    );
    assert_eq!(index.span_for_timestamp(1031), Some(5));
    assert_eq!(
        index.span(4).max_timestamp_ms,
        1030,
        "the max so far, not batch 4's own"
    );
    // The largest is batch 18's (batch 19 steps back).
    assert_eq!(index.span_for_timestamp(footer.max_timestamp_ms), Some(18));
    assert_eq!(index.span_for_timestamp(footer.max_timestamp_ms + 1), None);
    // Wider spans: the span holding that batch.
    let Finished { bytes: o, footer } = write(&batches, 1000, &[]);
    let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
    assert!(index.span_count() < batches.len());
    for ts in 990..1200 {
        let Some(k) = max.iter().position(|&m| m >= ts) else {
            assert_eq!(index.span_for_timestamp(ts), None);
            continue;
        };
        let span = index.span(index.span_for_timestamp(ts).unwrap());
        let base = BatchView::parse(&batches[k]).unwrap().base_offset() as u64;
        assert!(
            (span.first_offset..span.end_offset).contains(&base),
            "timestamp {ts}"
        );
    }
}

#[test]
fn a_footer_larger_than_the_tail_takes_a_second_read() {
    let Finished { bytes: o, footer } = sample();
    let len = o.len() as u64;
    let tail = &o[o.len() - 40..];
    let TailRead::NeedFooter(trailer) = Footer::from_tail(tail, len).unwrap() else {
        panic!("40 bytes cannot hold the footer");
    };
    assert_eq!(trailer, footer.trailer);
    assert_eq!(trailer.object_len_bytes(), len);
    let range = trailer.footer_range();
    let bytes = &o[range.start as usize..range.end as usize];
    assert_eq!(Footer::decode(bytes, &trailer), Ok(footer.clone()));
    // A tail that starts exactly at the footer holds it.
    let tail = &o[range.start as usize..];
    assert_eq!(
        Footer::from_tail(tail, len),
        Ok(TailRead::Complete(footer.clone()))
    );
    // A footer of many members: one tail read is not enough.
    let many: Vec<_> = (0..3000)
        .map(|k| (MemberKind(100 + k), vec![k as u8]))
        .collect();
    let Finished { bytes: o, footer } = write(&batches(0, 3), 0, &many);
    assert!(footer.trailer.footer_len_bytes as u64 > TAIL_READ_BYTES);
    let tail = &o[o.len() - TAIL_READ_BYTES as usize..];
    assert_eq!(
        Footer::from_tail(tail, o.len() as u64),
        Ok(TailRead::NeedFooter(footer.trailer))
    );
    assert_eq!(verify_all(&o).unwrap().footer, footer);
}

#[test]
fn a_recorded_trailer_reads_the_footer_and_a_tail_can_hold_the_indexes() {
    let Finished { bytes: o, footer } = sample();
    // What the metadata log records is enough: no tail read.
    let range = footer.trailer.footer_range();
    let decoded = Footer::decode(
        &o[range.start as usize..range.end as usize],
        &footer.trailer,
    );
    assert_eq!(decoded, Ok(footer.clone()));
    // The sample is small: the one tail read holds the indexes too.
    let tail_start = o.len().saturating_sub(TAIL_READ_BYTES as usize);
    assert!(footer.index_range().start >= tail_start as u64);
    let from_tail = ArchiveIndex::decode(&footer, &o[tail_start..], tail_start as u64).unwrap();
    assert_eq!(from_tail, ArchiveIndex::decode(&footer, &o, 0).unwrap());
}

#[test]
fn archive_key_orders_by_first_offset() {
    let id = [0x0f; 16];
    let a = archive_key(&id, 12, 9, 99);
    let b = archive_key(&id, 12, 100, 100);
    assert_eq!(
        a,
        "topics/0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f/12/00000000000000000009-00000000000000000099.rla"
    );
    assert!(a < b);
    let Finished { footer, .. } = sample();
    assert_eq!(
        archive_key(
            &footer.topic_id,
            footer.partition,
            footer.first_offset,
            footer.last_offset
        ),
        "topics/07070707070707070707070707070707/3/00000000000000000500-00000000000000000559.rla"
    );
}

#[test]
fn errors_name_the_member_and_the_byte() {
    let e = ArchiveError::Corrupt {
        region: Region::Member(MemberKind::OFFSET_INDEX),
        at: 4242,
        corruption: ArchiveCorruption::CrcMismatch {
            stored: 1,
            computed: 2,
        },
    };
    assert_eq!(
        e.to_string(),
        "member offset index at byte 4242: crc32c 0x00000001 stored, 0x00000002 computed"
    );
    let e = corrupt(Region::Member(HOTCACHE), 7, ArchiveCorruption::Truncated);
    assert_eq!(e.to_string(), "member kind 77 at byte 7: object ends early");
    assert_eq!(Region::Trailer.to_string(), "trailer");
    assert_eq!(MemberKind::TIME_INDEX.to_string(), "time index");
    assert_eq!(
        ArchiveError::from(InvalidInput::NoBatches).to_string(),
        "no record batches to archive"
    );
}

// ---- what the writer refuses ----

#[test]
fn writer_refuses_no_batches() {
    assert_eq!(
        ArchiveWriter::new(meta()).unwrap().finish(),
        Err(InvalidInput::NoBatches.into())
    );
    assert_eq!(
        build_archive(meta(), &[]),
        Err(InvalidInput::NoBatches.into())
    );
}

#[test]
fn writer_refuses_a_long_topic_name_and_a_partition_beyond_i32() {
    let mut m = meta();
    m.topic = "t".repeat(TOPIC_NAME_BYTES_MAX);
    assert!(ArchiveWriter::new(m.clone()).is_ok());
    m.topic.push('t');
    assert_eq!(
        ArchiveWriter::new(m).err(),
        Some(InvalidInput::TopicName(TOPIC_NAME_BYTES_MAX + 1).into())
    );
    let mut m = meta();
    m.partition = 1 << 31;
    assert_eq!(
        ArchiveWriter::new(m).err(),
        Some(InvalidInput::Partition(1 << 31).into())
    );
}

#[test]
fn writer_refuses_a_bad_batch_and_keeps_what_came_before() {
    let batches = batches(0, 3);
    let mut w = ArchiveWriter::new(meta()).unwrap();
    w.push_batch(&batches[0]).unwrap();
    let mut bad = batches[1].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let refused = w.push_batch(&bad).unwrap_err();
    let at = batches[0].len() as u64;
    assert!(matches!(
        refused,
        ArchiveError::Invalid(InvalidInput::Batch { at: a, error: crate::batch::BatchError::CrcMismatch { .. } }) if a == at
    ));
    w.push_batch(&batches[1]).unwrap();
    w.push_batch(&batches[2]).unwrap();
    assert_eq!(
        w.finish().unwrap(),
        write(&batches, INDEX_INTERVAL_BYTES, &[])
    );
}

#[test]
fn writer_refuses_an_offset_gap() {
    let batches = batches(10, 3);
    let mut w = ArchiveWriter::new(meta()).unwrap();
    w.push_batch(&batches[0]).unwrap();
    assert_eq!(
        w.push_batch(&batches[2]),
        Err(InvalidInput::OffsetGap {
            at: batches[0].len() as u64,
            expected: 11,
            found: 13
        }
        .into())
    );
}

#[test]
fn writer_refuses_offsets_out_of_range() {
    let mut w = ArchiveWriter::new(meta()).unwrap();
    let mut negative = batch(0, 1, 10, 0, None);
    negative[..8].copy_from_slice(&(-5i64).to_be_bytes());
    assert_eq!(
        w.push_batch(&negative),
        Err(InvalidInput::OffsetOutOfRange {
            at: 0,
            base_offset: -5
        }
        .into())
    );
    let past_max = batch(crate::format::OFFSET_MAX - 1, 2, 10, 0, None);
    assert_eq!(
        w.push_batch(&past_max),
        Err(InvalidInput::OffsetOutOfRange {
            at: 0,
            base_offset: i64::MAX - 1
        }
        .into())
    );
    // Relative offsets are u32: an archive spans at most 2^32 offsets.
    // Batches of 2^31 offsets each (last offset delta i32::MAX, CRC
    // recomputed) get there in three.
    let wide = |base_offset: u64| {
        let mut b = batch(base_offset, 1, 10, 0, None);
        b[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
        let view = BatchView::parse_unverified(&b).unwrap();
        HeaderPatch::new(&view, view.attributes(), 0).apply(&mut b);
        b
    };
    let first = batch(0, 1, 10, 0, None);
    w.push_batch(&first).unwrap();
    let second = wide(1);
    w.push_batch(&second).unwrap();
    let at = (first.len() + second.len()) as u64;
    let next = (1u64 << 31) + 1;
    assert_eq!(
        w.push_batch(&wide(next)),
        Err(InvalidInput::OffsetOutOfRange {
            at,
            base_offset: next as i64
        }
        .into())
    );
}

#[test]
fn build_archive_refuses_torn_records() {
    let records = batches(0, 3).concat();
    let cut = records.len() - 10;
    let first_len = batches(0, 1)[0].len();
    let at = (records.len() - batches(0, 3)[2].len()) as u64;
    assert_eq!(
        build_archive(meta(), &records[..cut]),
        Err(InvalidInput::Torn { at }.into())
    );
    assert_eq!(
        build_archive(meta(), &records[..first_len + 5]),
        Err(InvalidInput::Torn {
            at: first_len as u64
        }
        .into())
    );
}

#[test]
fn writer_refuses_reserved_member_kinds() {
    let mut w = ArchiveWriter::new(meta()).unwrap();
    for kind in [
        MemberKind(0),
        MemberKind::RECORDS,
        MemberKind::OFFSET_INDEX,
        MemberKind::TIME_INDEX,
    ] {
        assert_eq!(
            w.add_member(kind, vec![1]),
            Err(InvalidInput::ReservedKind(kind).into())
        );
    }
    assert_eq!(w.add_member(MemberKind(4), vec![1]), Ok(()));
}

#[test]
fn writer_refuses_a_batch_after_a_member() {
    let all = batches(2, 3);
    let mut w = ArchiveWriter::new(meta()).unwrap();
    w.push_batch(&all[0]).unwrap();
    w.add_member(MemberKind(4), vec![1]).unwrap();
    let at = all[0].len() as u64;
    assert_eq!(
        w.push_batch(&all[1]),
        Err(InvalidInput::BatchAfterMember { at }.into())
    );
}

mod corruption;

#[test]
fn stored_batches_archive_as_pushed_ones_and_still_need_their_length() {
    let all = batches(40, 12);
    let pushed = write(&all, 300, &[]);
    let mut w = ArchiveWriter::with_index_interval(meta(), 300).unwrap();
    for b in &all {
        w.push_stored_batch(b).unwrap();
    }
    assert_eq!(w.finish().unwrap(), pushed);

    // A stored batch's CRC-32C is the frame's business, not recomputed...
    let mut w = ArchiveWriter::new(meta()).unwrap();
    let mut flipped = batch(0, 2, 10, 5, None);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    w.push_stored_batch(&flipped).unwrap();
    // ...but a length field that disagrees with the frame is refused.
    let mut long = batch(2, 1, 10, 5, None);
    long.push(0);
    match w.push_stored_batch(&long) {
        Err(ArchiveError::Invalid(InvalidInput::Batch { at, error })) => {
            assert_eq!(at, flipped.len() as u64);
            assert!(matches!(
                error,
                crate::batch::BatchError::LengthMismatch { .. }
            ));
        }
        other => panic!("a batch longer than it says archived: {other:?}"),
    }
}
