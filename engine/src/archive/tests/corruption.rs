//! One unit test per corruption case of an archive: its trailer, footer,
//! member table, indexes and records, each with the region and byte it
//! is reported at.

use super::*;

#[test]
fn unknown_member_kind_is_skipped_not_rejected() {
    let extra = [
        (HOTCACHE, vec![1, 2, 3]),
        (MemberKind(u32::MAX), Vec::new()),
    ];
    let Finished { bytes: o, footer } = write(&batches(0, 10), 500, &extra);
    assert_eq!(footer.members.len(), 5);
    assert_eq!(footer.member(HOTCACHE).unwrap().len_bytes, 3);
    assert_eq!(footer.member(MemberKind(u32::MAX)).unwrap().len_bytes, 0);
    assert_eq!(open_tail(&o), Ok(footer.clone()));
    assert_eq!(verify_all(&o).unwrap().footer, footer);
    let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
    assert_eq!(
        index.span(index.span_for_offset(0).unwrap()).first_offset,
        0
    );
}

#[test]
fn trailer_bad_magic() {
    let mut o = sample().bytes;
    let last = o.len() - 1;
    o[last] = b'X';
    assert_open_fails(
        &o,
        Region::Trailer,
        trailer_at(&o) + TRAILER_MAGIC_AT,
        ArchiveCorruption::BadMagic,
    );
}

#[test]
fn trailer_bad_version() {
    let mut o = sample().bytes;
    let t = trailer_at(&o);
    put(&mut o, t + TRAILER_VERSION_AT, 2u16);
    reseal_trailer(&mut o);
    assert_open_fails(
        &o,
        Region::Trailer,
        t + TRAILER_VERSION_AT,
        ArchiveCorruption::BadVersion(2),
    );
}

#[test]
fn trailer_crc_mismatch() {
    let mut o = sample().bytes;
    let t = trailer_at(&o);
    o[t + TRAILER_FOOTER_CRC_AT] ^= 0x20;
    let stored = le_u32(&o, t + TRAILER_CRC_AT);
    let computed = crc32c::crc32c(&o[t..t + TRAILER_CRC_AT]);
    assert_open_fails(
        &o,
        Region::Trailer,
        t,
        ArchiveCorruption::CrcMismatch { stored, computed },
    );
}

#[test]
fn trailer_reserved_bytes_set() {
    let mut o = sample().bytes;
    let t = trailer_at(&o);
    o[t + TRAILER_RESERVED_AT + 1] = 1;
    reseal_trailer(&mut o);
    assert_open_fails(
        &o,
        Region::Trailer,
        t + TRAILER_RESERVED_AT,
        malformed("reserved bytes set"),
    );
}

#[test]
fn trailer_footer_position_out_of_range() {
    let what = malformed("the footer does not end where the trailer starts");
    for position in [0, 1, o_len() as u64, u64::MAX] {
        let mut o = sample().bytes;
        let t = trailer_at(&o);
        put(&mut o, t + TRAILER_FOOTER_POSITION_AT, position);
        reseal_trailer(&mut o);
        assert_open_fails(
            &o,
            Region::Trailer,
            t + TRAILER_FOOTER_POSITION_AT,
            what.clone(),
        );
    }
}

#[test]
fn trailer_footer_length_below_the_fixed_fields() {
    let mut o = sample().bytes;
    let t = trailer_at(&o);
    let short = FOOTER_FIXED_BYTES as u32 - 1;
    let position = (t as u64) - u64::from(short);
    put(&mut o, t + TRAILER_FOOTER_POSITION_AT, position);
    put(&mut o, t + TRAILER_FOOTER_LENGTH_AT, short);
    reseal_trailer(&mut o);
    let what = malformed("footer shorter than its fixed fields");
    assert_open_fails(&o, Region::Trailer, t + TRAILER_FOOTER_LENGTH_AT, what);
}

#[test]
fn object_shorter_than_a_trailer() {
    let o = sample().bytes;
    for len in [0, 1, TRAILER_BYTES - 1] {
        assert_open_fails(
            &o[..len],
            Region::Trailer,
            len,
            ArchiveCorruption::Truncated,
        );
    }
    // A tail longer than the object it claims to end is no tail of it.
    assert_eq!(
        Footer::from_tail(&o, 100),
        corrupt_at(Region::Trailer, 100, ArchiveCorruption::Truncated)
    );
}

#[test]
fn truncated_object() {
    let o = sample().bytes;
    for len in [
        o.len() - 1,
        o.len() - TRAILER_BYTES,
        o.len() / 2,
        TRAILER_BYTES,
    ] {
        let cut = &o[..len];
        assert_open_fails(cut, Region::Trailer, len - 8, ArchiveCorruption::BadMagic);
    }
}

#[test]
fn footer_crc_mismatch() {
    let mut o = sample().bytes;
    let f = footer_at(&o);
    let t = trailer_at(&o);
    o[t - 1] ^= 0x01; // the topic name's last byte
    let stored = le_u32(&o, t + TRAILER_FOOTER_CRC_AT);
    let computed = crc32c::crc32c(&o[f..t]);
    assert_open_fails(
        &o,
        Region::Footer,
        f,
        ArchiveCorruption::CrcMismatch { stored, computed },
    );
}

#[test]
fn footer_short_read() {
    let Finished { bytes: o, footer } = sample();
    let range = footer.trailer.footer_range();
    let short = &o[range.start as usize..range.end as usize - 1];
    assert_eq!(
        Footer::decode(short, &footer.trailer),
        corrupt_at(
            Region::Footer,
            range.end as usize - 1,
            ArchiveCorruption::Truncated
        )
    );
    let long = &o[range.start as usize..range.end as usize + 1];
    assert_eq!(
        Footer::decode(long, &footer.trailer),
        corrupt_at(
            Region::Footer,
            range.end as usize,
            malformed("more footer bytes than the trailer says")
        )
    );
}

#[test]
fn footer_bad_magic() {
    let mut o = sample().bytes;
    let f = footer_at(&o);
    o[f + FOOTER_MAGIC_AT + 3] = b'x';
    reseal(&mut o);
    assert_open_fails(&o, Region::Footer, f, ArchiveCorruption::BadMagic);
}

#[test]
fn footer_bad_version() {
    let mut o = sample().bytes;
    let f = footer_at(&o);
    put(&mut o, f + FOOTER_VERSION_AT, 0u16);
    reseal(&mut o);
    assert_open_fails(
        &o,
        Region::Footer,
        f + FOOTER_VERSION_AT,
        ArchiveCorruption::BadVersion(0),
    );
}

#[test]
fn footer_length_disagrees_with_its_member_count() {
    let mut o = sample().bytes;
    let f = footer_at(&o);
    put(&mut o, f + FOOTER_MEMBER_COUNT_AT, 5u32);
    reseal(&mut o);
    let what = malformed("footer length disagrees with its member count and topic name");
    assert_open_fails(&o, Region::Footer, f + FOOTER_MEMBER_COUNT_AT, what);
}

#[test]
fn footer_topic_name_too_long() {
    let mut o = sample().bytes;
    let f = footer_at(&o);
    put(
        &mut o,
        f + FOOTER_TOPIC_NAME_LENGTH_AT,
        TOPIC_NAME_BYTES_MAX as u16 + 1,
    );
    reseal(&mut o);
    let what = malformed("topic name longer than Kafka allows");
    assert_open_fails(&o, Region::Footer, f + FOOTER_TOPIC_NAME_LENGTH_AT, what);
}

#[test]
fn footer_topic_name_not_utf8() {
    let mut o = sample().bytes;
    let t = trailer_at(&o);
    o[t - 6] = 0xff; // "orders" ends the footer
    reseal(&mut o);
    assert_open_fails(
        &o,
        Region::Footer,
        t - 6,
        malformed("topic name is not UTF-8"),
    );
}

#[test]
fn footer_partition_beyond_i32() {
    let mut o = sample().bytes;
    let f = footer_at(&o);
    put(&mut o, f + FOOTER_PARTITION_AT, 1u32 << 31);
    reseal(&mut o);
    let what = malformed("partition beyond Kafka's i32");
    assert_open_fails(&o, Region::Footer, f + FOOTER_PARTITION_AT, what);
}

#[test]
fn footer_offsets_out_of_order() {
    let what = malformed("offset range out of order or too wide");
    let Finished { bytes, footer } = sample();
    for (first, last) in [
        (footer.last_offset + 1, footer.last_offset),
        (0, u64::from(u32::MAX) + 1),
        (footer.first_offset, crate::format::OFFSET_MAX + 1),
    ] {
        let mut o = bytes.clone();
        let f = footer_at(&o);
        put(&mut o, f + FOOTER_FIRST_OFFSET_AT, first);
        put(&mut o, f + FOOTER_LAST_OFFSET_AT, last);
        reseal(&mut o);
        assert_open_fails(&o, Region::Footer, f + FOOTER_LAST_OFFSET_AT, what.clone());
    }
}

#[test]
fn footer_batch_count_impossible() {
    let Finished { bytes, footer } = sample();
    for count in [0, footer.last_offset - footer.first_offset + 2] {
        let mut o = bytes.clone();
        let f = footer_at(&o);
        put(&mut o, f + FOOTER_BATCH_COUNT_AT, count);
        reseal(&mut o);
        let what = malformed("batch count outside 1..=offsets");
        assert_open_fails(&o, Region::Footer, f + FOOTER_BATCH_COUNT_AT, what);
    }
}

#[test]
fn member_kind_zero() {
    let mut o = sample().bytes;
    let e = entry_at(&o, 1);
    put(&mut o, e + MEMBER_KIND_AT, 0u32);
    reseal(&mut o);
    assert_open_fails(
        &o,
        Region::Footer,
        e + MEMBER_KIND_AT,
        malformed("member kind 0"),
    );
}

#[test]
fn member_out_of_bounds() {
    for len in [u64::MAX, o_len() as u64] {
        let mut o = sample().bytes;
        let e = entry_at(&o, 3);
        put(&mut o, e + MEMBER_LENGTH_AT, len);
        reseal(&mut o);
        let what = malformed("member runs past the footer");
        assert_open_fails(&o, Region::Footer, e + MEMBER_LENGTH_AT, what);
    }
}

#[test]
fn members_not_back_to_back() {
    for shift in [1i64, -1] {
        let mut o = sample().bytes;
        let e = entry_at(&o, 2);
        let position = le_u64(&o, e + MEMBER_POSITION_AT).wrapping_add_signed(shift);
        put(&mut o, e + MEMBER_POSITION_AT, position);
        reseal(&mut o);
        let what = malformed("members are not back to back");
        assert_open_fails(&o, Region::Footer, e + MEMBER_POSITION_AT, what);
    }
}

#[test]
fn members_end_before_the_footer() {
    let mut o = sample().bytes;
    let e = entry_at(&o, 3);
    let len = le_u64(&o, e + MEMBER_LENGTH_AT);
    put(&mut o, e + MEMBER_LENGTH_AT, len - 1);
    reseal(&mut o);
    let f = footer_at(&o);
    let what = malformed("members end before the footer");
    assert_open_fails(&o, Region::Footer, f + FOOTER_MEMBER_COUNT_AT, what);
}

#[test]
fn builtin_member_twice() {
    let mut o = sample().bytes;
    let e = entry_at(&o, 1);
    put(&mut o, e + MEMBER_KIND_AT, MemberKind::OFFSET_INDEX.0);
    reseal(&mut o);
    let what = malformed("a built-in member appears twice");
    assert_open_fails(&o, Region::Footer, entry_at(&o, 2) + MEMBER_KIND_AT, what);
}

#[test]
fn builtin_member_missing() {
    let mut o = sample().bytes;
    let e = entry_at(&o, 3);
    put(&mut o, e + MEMBER_KIND_AT, 99u32);
    reseal(&mut o);
    let f = footer_at(&o);
    let what = malformed("no time index member");
    assert_open_fails(&o, Region::Footer, f + FOOTER_MEMBER_COUNT_AT, what);
}

#[test]
fn offset_index_not_whole_entries() {
    let mut o = sample().bytes;
    let (offsets, times) = (entry_at(&o, 2), entry_at(&o, 3));
    let len = le_u64(&o, offsets + MEMBER_LENGTH_AT);
    put(&mut o, offsets + MEMBER_LENGTH_AT, len - 1);
    let (position, len) = (
        le_u64(&o, times + MEMBER_POSITION_AT),
        le_u64(&o, times + MEMBER_LENGTH_AT),
    );
    put(&mut o, times + MEMBER_POSITION_AT, position - 1);
    put(&mut o, times + MEMBER_LENGTH_AT, len + 1);
    reseal(&mut o);
    let what = malformed("offset index is not a whole number of entries");
    assert_open_fails(&o, Region::Footer, offsets + MEMBER_LENGTH_AT, what);
}

#[test]
fn time_index_entries_differ_from_offset_index_entries() {
    let mut o = sample().bytes;
    let (offsets, times) = (entry_at(&o, 2), entry_at(&o, 3));
    let len = le_u64(&o, offsets + MEMBER_LENGTH_AT);
    let step = OFFSET_INDEX_ENTRY_BYTES as u64;
    put(&mut o, offsets + MEMBER_LENGTH_AT, len - step);
    let (position, len) = (
        le_u64(&o, times + MEMBER_POSITION_AT),
        le_u64(&o, times + MEMBER_LENGTH_AT),
    );
    put(&mut o, times + MEMBER_POSITION_AT, position - step);
    put(&mut o, times + MEMBER_LENGTH_AT, len + step);
    reseal(&mut o);
    let what = malformed("time index entries differ from offset index entries");
    assert_open_fails(&o, Region::Footer, times + MEMBER_LENGTH_AT, what);
}

#[test]
fn records_member_crc_mismatch() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let batches = batches(500, 30);
    let k = 17;
    let at: usize = batches[..k].iter().map(Vec::len).sum();
    o[at + 80] ^= 0x04; // inside batch 17's records: Kafka's CRC covers it
    let ArchiveError::Corrupt {
        region,
        at: found,
        corruption,
    } = verify_all(&o).unwrap_err()
    else {
        panic!("corruption expected");
    };
    assert_eq!(
        (region, found),
        (Region::Member(MemberKind::RECORDS), at as u64)
    );
    assert!(matches!(
        corruption,
        ArchiveCorruption::BadBatch(crate::batch::BatchError::CrcMismatch { .. })
    ));
    // A ranged read of the span finds it too; other spans still verify.
    let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
    let i = (0..index.span_count())
        .find(|&i| index.span(i).bytes.contains(&(at as u64)))
        .unwrap();
    assert!(i > 0);
    let r = index.read_range(i, 0);
    assert!(r.bytes.contains(&(at as u64)));
    let read = &o[r.bytes.start as usize..r.bytes.end as usize];
    assert!(
        matches!(index.verify(&r, read), Err(ArchiveError::Corrupt { at: a, .. }) if a == at as u64)
    );
    let other = index.read_range(0, 0);
    assert_eq!(
        index.verify(&other, &o[other.bytes.start as usize..]),
        Ok(())
    );
}

#[test]
fn records_damage_outside_the_batch_crc_is_an_offset_gap() {
    let mut o = sample().bytes;
    let batches = batches(500, 30);
    let k = 9;
    let at: usize = batches[..k].iter().map(Vec::len).sum();
    let base = BatchView::parse(&batches[k]).unwrap().base_offset();
    o[at + 7] ^= 0x40; // the base offset, which Kafka's CRC does not cover
    let expected = ArchiveCorruption::OffsetGap {
        expected: base as u64,
        found: base ^ 0x40,
    };
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::RECORDS), at, expected)
    );
}

#[test]
fn records_damage_no_batch_check_sees_is_reported_at_its_span() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let batches = batches(500, 30);
    let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
    let span = index.span(3);
    let k = batches
        .iter()
        .scan(0u64, |at, b| {
            let start = *at;
            *at += b.len() as u64;
            Some(start)
        })
        .position(|start| start > span.bytes.start)
        .unwrap();
    let at: usize = batches[..k].iter().map(Vec::len).sum();
    assert!(span.bytes.contains(&(at as u64)));
    o[at + 13] ^= 0x01; // the partition leader epoch: no check of a batch covers it
    let computed = crc32c::crc32c(&o[span.bytes.start as usize..span.bytes.end as usize]);
    let expected = ArchiveCorruption::CrcMismatch {
        stored: span.crc32c,
        computed,
    };
    assert_eq!(
        verify_all(&o),
        corrupt_at(
            Region::Member(MemberKind::RECORDS),
            span.bytes.start as usize,
            expected
        )
    );
}

#[test]
fn records_short_read() {
    let Finished { bytes: o, footer } = sample();
    let index = ArchiveIndex::decode(&footer, &o, 0).unwrap();
    let r = index.read_range(2, 3000);
    let short = &o[r.bytes.start as usize..r.bytes.end as usize - 1];
    assert_eq!(
        index.verify(&r, short),
        corrupt_at(
            Region::Member(MemberKind::RECORDS),
            r.bytes.end as usize - 1,
            ArchiveCorruption::Truncated
        )
    );
}

/// Flips a byte inside the member of `kind` and expects its crc mismatch,
/// reported at the member's start.
fn assert_member_crc_mismatch(kind: MemberKind) {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let m = *footer.member(kind).unwrap();
    o[m.position as usize + 5] ^= 0x10;
    let computed = crc32c::crc32c(&o[m.position as usize..m.range().end as usize]);
    let expected = ArchiveCorruption::CrcMismatch {
        stored: m.crc32c,
        computed,
    };
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(kind), m.position as usize, expected)
    );
    // The footer itself is intact: a reader opens the archive and finds
    // the damage only in the member it reads.
    assert_eq!(open_tail(&o), Ok(footer));
}

#[test]
fn offset_index_crc_mismatch() {
    assert_member_crc_mismatch(MemberKind::OFFSET_INDEX);
}

#[test]
fn time_index_crc_mismatch() {
    assert_member_crc_mismatch(MemberKind::TIME_INDEX);
}

#[test]
fn unknown_member_crc_mismatch() {
    assert_member_crc_mismatch(HOTCACHE);
}

#[test]
fn records_member_crc_mismatch_when_every_span_matches() {
    // A records member whose crc in the table is wrong while every span's
    // crc in the index is right: reported for the member as a whole.
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let e = entry_at(&o, 0);
    let stored = le_u32(&o, e + MEMBER_CRC_AT) ^ 1;
    put(&mut o, e + MEMBER_CRC_AT, stored);
    let (f, t) = (footer_at(&o), trailer_at(&o));
    let crc = crc32c::crc32c(&o[f..t]);
    put(&mut o, t + TRAILER_FOOTER_CRC_AT, crc);
    reseal_trailer(&mut o);
    let computed = footer.member(MemberKind::RECORDS).unwrap().crc32c;
    let expected = ArchiveCorruption::CrcMismatch { stored, computed };
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::RECORDS), 0, expected)
    );
}

/// Position of field `field_at` of offset index entry `i`.
fn offset_entry_at(footer: &Footer, i: usize, field_at: usize) -> usize {
    footer.member(MemberKind::OFFSET_INDEX).unwrap().position as usize
        + i * OFFSET_INDEX_ENTRY_BYTES
        + field_at
}

/// Position of field `field_at` of time index entry `i`.
fn time_entry_at(footer: &Footer, i: usize, field_at: usize) -> usize {
    footer.member(MemberKind::TIME_INDEX).unwrap().position as usize
        + i * TIME_INDEX_ENTRY_BYTES
        + field_at
}

#[test]
fn offset_index_first_span_not_at_the_start() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    put(
        &mut o,
        offset_entry_at(&footer, 0, OFFSET_INDEX_RELATIVE_OFFSET_AT),
        1u32,
    );
    reseal(&mut o);
    let at = offset_entry_at(&footer, 0, 0);
    let what = malformed("the first span does not start the records");
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::OFFSET_INDEX), at, what)
    );
}

#[test]
fn offset_index_spans_out_of_order() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let at = offset_entry_at(&footer, 2, OFFSET_INDEX_POSITION_AT);
    let previous = le_u64(&o, offset_entry_at(&footer, 1, OFFSET_INDEX_POSITION_AT));
    put(&mut o, at, previous);
    reseal(&mut o);
    let what = malformed("spans out of order");
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::OFFSET_INDEX), at, what)
    );
}

#[test]
fn offset_index_span_beyond_the_records() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let entries = footer.member(MemberKind::OFFSET_INDEX).unwrap().len_bytes as usize
        / OFFSET_INDEX_ENTRY_BYTES;
    let last = offset_entry_at(&footer, entries - 1, 0);
    let records_len = footer.member(MemberKind::RECORDS).unwrap().len_bytes;
    put(&mut o, last + OFFSET_INDEX_POSITION_AT, records_len);
    reseal(&mut o);
    let what = malformed("span beyond the records");
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::OFFSET_INDEX), last, what)
    );
}

#[test]
fn offset_index_span_inside_a_batch() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let at = offset_entry_at(&footer, 2, OFFSET_INDEX_POSITION_AT);
    let position = le_u64(&o, at);
    put(&mut o, at, position + 1);
    reseal_spans(&mut o, &footer);
    let what = malformed("span does not start at a batch");
    let entry = offset_entry_at(&footer, 2, 0);
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::OFFSET_INDEX), entry, what)
    );
}

#[test]
fn offset_index_relative_offset_disagrees_with_the_batch() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let at = offset_entry_at(&footer, 2, OFFSET_INDEX_RELATIVE_OFFSET_AT);
    let relative = le_u32(&o, at);
    put(&mut o, at, relative + 1);
    put(
        &mut o,
        time_entry_at(&footer, 2, TIME_INDEX_RELATIVE_OFFSET_AT),
        relative + 1,
    );
    reseal(&mut o);
    let expected = ArchiveCorruption::Mismatch {
        field: "span relative offset",
        stored: i128::from(relative + 1),
        found: i128::from(relative),
    };
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::OFFSET_INDEX), at, expected)
    );
}

#[test]
fn time_index_relative_offset_differs_from_the_offset_index() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let at = time_entry_at(&footer, 1, TIME_INDEX_RELATIVE_OFFSET_AT);
    let relative = le_u32(&o, at);
    put(&mut o, at, relative + 1);
    reseal(&mut o);
    let what = malformed("relative offset differs from the offset index");
    let entry = time_entry_at(&footer, 1, 0);
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::TIME_INDEX), entry, what)
    );
}

#[test]
fn time_index_max_timestamp_decreases() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let at = time_entry_at(&footer, 2, TIME_INDEX_MAX_TIMESTAMP_AT);
    put(&mut o, at, i64::MIN);
    reseal(&mut o);
    let what = malformed("max timestamp decreases");
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::TIME_INDEX), at, what)
    );
}

#[test]
fn time_index_max_timestamp_disagrees_with_the_batches() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let at = time_entry_at(&footer, 2, TIME_INDEX_MAX_TIMESTAMP_AT);
    let stored = le_i64(&o, at);
    assert!(stored - 1 > le_i64(&o, time_entry_at(&footer, 1, TIME_INDEX_MAX_TIMESTAMP_AT)));
    put(&mut o, at, stored - 1);
    reseal(&mut o);
    let expected = ArchiveCorruption::Mismatch {
        field: "span max timestamp",
        stored: i128::from(stored - 1),
        found: i128::from(stored),
    };
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::TIME_INDEX), at, expected)
    );
}

#[test]
fn time_index_last_max_timestamp_differs_from_the_footer() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let f = footer_at(&o);
    put(
        &mut o,
        f + FOOTER_MAX_TIMESTAMP_AT,
        footer.max_timestamp_ms + 1,
    );
    reseal(&mut o);
    let entries =
        footer.member(MemberKind::TIME_INDEX).unwrap().len_bytes as usize / TIME_INDEX_ENTRY_BYTES;
    let at = time_entry_at(&footer, entries - 1, 0);
    let what = malformed("the last max timestamp differs from the footer's");
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Member(MemberKind::TIME_INDEX), at, what)
    );
}

#[test]
fn footer_first_offset_disagrees_with_the_records() {
    let Finished {
        bytes: mut o,
        footer,
    } = sample();
    let f = footer_at(&o);
    put(&mut o, f + FOOTER_FIRST_OFFSET_AT, footer.first_offset + 1);
    reseal(&mut o);
    let expected = ArchiveCorruption::Mismatch {
        field: "first offset",
        stored: i128::from(footer.first_offset + 1),
        found: i128::from(footer.first_offset),
    };
    assert_eq!(
        verify_all(&o),
        corrupt_at(Region::Footer, f + FOOTER_FIRST_OFFSET_AT, expected)
    );
}

#[test]
fn footer_summary_disagrees_with_the_records() {
    let Finished { bytes, footer } = sample();
    let cases: [(usize, &str, i128, i128); 4] = [
        (
            FOOTER_LAST_OFFSET_AT,
            "last offset",
            footer.last_offset.into(),
            -1,
        ),
        (
            FOOTER_MIN_TIMESTAMP_AT,
            "min timestamp",
            footer.min_timestamp_ms.into(),
            -1,
        ),
        (
            FOOTER_RECORD_COUNT_AT,
            "record count",
            footer.record_count.into(),
            1,
        ),
        (
            FOOTER_BATCH_COUNT_AT,
            "batch count",
            footer.batch_count.into(),
            -1,
        ),
    ];
    for (field_at, field, found, delta) in cases {
        let mut o = bytes.clone();
        let f = footer_at(&o);
        let stored = found + delta;
        put(&mut o, f + field_at, stored as u64);
        reseal(&mut o);
        let expected = ArchiveCorruption::Mismatch {
            field,
            stored,
            found,
        };
        assert_eq!(
            verify_all(&o),
            corrupt_at(Region::Footer, f + field_at, expected),
            "{field}"
        );
    }
}
