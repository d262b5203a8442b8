//! One unit test per corruption case of every layout in [`super`], and
//! round trips of each codec.

use super::*;
use crate::producer::{BatchRecord, PRODUCERS_MAX};

fn header() -> SegmentHeader {
    SegmentHeader {
        kind: SegmentKind::Partition,
        base_offset: 77,
        created_ms: 1_700_000_000_000,
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; FRAME_HEADER_BYTES + payload.len()];
    let h = FrameHeader {
        payload_len: payload.len() as u32,
        base_offset: 5,
        max_timestamp_ms: 9,
        count: 2,
        flags: 0,
    };
    encode_frame_header(&mut out, &h, payload);
    out[FRAME_HEADER_BYTES..].copy_from_slice(payload);
    out
}

#[test]
fn segment_header_round_trips() {
    let bytes = encode_segment_header(&header());
    assert_eq!(decode_segment_header(&bytes), Ok(header()));
}

#[test]
fn segment_header_bad_magic() {
    let mut bytes = encode_segment_header(&header());
    bytes[0] = b'X';
    assert_eq!(decode_segment_header(&bytes), Err(Corruption::BadMagic));
}

#[test]
fn segment_header_bad_version() {
    let mut bytes = encode_segment_header(&header());
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(
        decode_segment_header(&bytes),
        Err(Corruption::BadVersion(2))
    );
}

#[test]
fn segment_header_bad_crc() {
    let mut bytes = encode_segment_header(&header());
    bytes[20] ^= 0x10;
    assert_eq!(decode_segment_header(&bytes), Err(Corruption::BadHeaderCrc));
}

#[test]
fn frame_round_trips() {
    let bytes = frame(b"payload");
    match read_frame(&bytes, 1 << 20) {
        FrameRead::Frame(h) => {
            assert_eq!(h.payload_len, 7);
            assert_eq!(h.end_offset(), 7);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn frame_bad_crc_in_payload_and_header() {
    let mut bytes = frame(b"payload");
    bytes[FRAME_HEADER_BYTES + 3] ^= 0x80;
    assert_eq!(
        read_frame(&bytes, 1 << 20),
        FrameRead::Invalid(Corruption::BadFrameCrc)
    );
    let mut bytes = frame(b"payload");
    bytes[10] ^= 0x01; // base offset is covered by the crc too
    assert_eq!(
        read_frame(&bytes, 1 << 20),
        FrameRead::Invalid(Corruption::BadFrameCrc)
    );
}

#[test]
fn frame_length_past_end() {
    let bytes = frame(b"payload");
    assert_eq!(
        read_frame(&bytes[..bytes.len() - 1], 1 << 20),
        FrameRead::Invalid(Corruption::LengthPastEnd)
    );
    assert_eq!(
        read_frame(&bytes[..FRAME_HEADER_BYTES - 1], 1 << 20),
        FrameRead::Invalid(Corruption::LengthPastEnd)
    );
}

/// Found by the segment_recovery fuzz target's harness: a frame whose
/// base offset plus count overflowed `u64` panicked in
/// `FrameHeader::end_offset` during recovery.
#[test]
fn frame_offsets_beyond_the_largest_offset_are_malformed() {
    let frame_at = |base_offset: u64, count: u32| {
        let payload = b"payload";
        let mut out = vec![0u8; FRAME_HEADER_BYTES + payload.len()];
        let h = FrameHeader {
            payload_len: payload.len() as u32,
            base_offset,
            max_timestamp_ms: 9,
            count,
            flags: 0,
        };
        encode_frame_header(&mut out, &h, payload);
        out[FRAME_HEADER_BYTES..].copy_from_slice(payload);
        read_frame(&out, 1 << 20)
    };
    let beyond = FrameRead::Invalid(Corruption::Malformed("offsets beyond the largest offset"));
    assert_eq!(frame_at(u64::MAX - 1, 5), beyond);
    assert_eq!(frame_at(OFFSET_MAX, 1), beyond);
    assert_eq!(
        frame_at(OFFSET_MAX - 4, 5).clone(),
        frame_at(OFFSET_MAX - 4, 5)
    );
    assert!(
        matches!(frame_at(OFFSET_MAX - 5, 5), FrameRead::Frame(h) if h.end_offset() == OFFSET_MAX)
    );
}

#[test]
fn segment_bases_and_footer_ends_beyond_the_largest_offset_are_malformed() {
    let mut at_max = header();
    at_max.base_offset = OFFSET_MAX;
    assert_eq!(
        decode_segment_header(&encode_segment_header(&at_max)),
        Ok(at_max)
    );
    at_max.base_offset = OFFSET_MAX + 1;
    assert!(matches!(
        decode_segment_header(&encode_segment_header(&at_max)),
        Err(Corruption::Malformed(_))
    ));
    let footer = SegmentFooter {
        end_offset: OFFSET_MAX + 1,
        ..SegmentFooter::default()
    };
    assert!(matches!(
        decode_footer(&encode_footer(&footer)),
        Err(Corruption::Malformed(_))
    ));
}

#[test]
fn frame_length_over_limit() {
    let bytes = frame(b"payload");
    assert!(matches!(
        read_frame(&bytes, 3),
        FrameRead::Invalid(Corruption::Malformed(_))
    ));
}

#[test]
fn zero_padding_is_end() {
    assert_eq!(read_frame(&[0u8; 100], 1 << 20), FrameRead::End);
    assert_eq!(read_frame(&[0u8; 5], 1 << 20), FrameRead::End);
}

#[test]
fn index_entries_stop_at_padding_and_torn_entry() {
    let mut bytes = Vec::new();
    for i in 1..=3u32 {
        bytes.extend_from_slice(&encode_offset_entry(&OffsetEntry {
            relative_offset: i,
            position: 64 * i,
        }));
    }
    bytes.extend_from_slice(&[7, 7, 7]); // torn fourth entry
    assert_eq!(decode_offset_entries(&bytes).len(), 3);
    bytes.truncate(2 * OFFSET_ENTRY_BYTES);
    bytes.extend_from_slice(&[0u8; 16]);
    assert_eq!(decode_offset_entries(&bytes).len(), 2);
}

#[test]
fn log_start_round_trips() {
    for offset in [0, 1, 12_345, u64::MAX] {
        let bytes = encode_log_start(offset);
        assert_eq!(&bytes[0..8], b"RINGLLSO");
        assert_eq!(le_u64(&bytes, 16), offset);
        assert_eq!(decode_log_start(&bytes), Ok(offset));
    }
    // Not a segment file name: segment listings must skip it.
    assert_eq!(parse_segment_file_name(LOG_START_FILE_NAME, "log"), None);
}

#[test]
fn log_start_bad_magic() {
    let mut bytes = encode_log_start(77);
    bytes[7] = b'X';
    assert_eq!(decode_log_start(&bytes), Err((0, Corruption::BadMagic)));
}

#[test]
fn log_start_bad_version() {
    let mut bytes = encode_log_start(77);
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode_log_start(&bytes),
        Err((8, Corruption::BadVersion(2)))
    );
}

#[test]
fn log_start_bad_crc() {
    let mut bytes = encode_log_start(77);
    bytes[16] ^= 0x01; // the offset itself
    assert_eq!(decode_log_start(&bytes), Err((0, Corruption::BadHeaderCrc)));
    let mut bytes = encode_log_start(77);
    bytes[31] ^= 0x80; // the crc
    assert_eq!(decode_log_start(&bytes), Err((0, Corruption::BadHeaderCrc)));
}

#[test]
fn log_start_truncated() {
    let bytes = encode_log_start(77);
    for len in [0, 8, 27, LOG_START_BYTES - 1] {
        assert_eq!(
            decode_log_start(&bytes[..len]),
            Err((len as u64, Corruption::LengthPastEnd)),
            "{len} bytes"
        );
    }
}

#[test]
fn log_start_trailing_or_reserved_bytes() {
    let mut longer = encode_log_start(77).to_vec();
    longer.push(0);
    assert!(matches!(
        decode_log_start(&longer),
        Err((32, Corruption::Malformed(_)))
    ));
    let mut bytes = encode_log_start(77);
    bytes[25] = 1;
    let crc = crc32c::crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        decode_log_start(&bytes),
        Err((25, Corruption::Malformed(_)))
    ));
}

const KINDS: [SnapshotKind; 2] = [SnapshotKind::Meta, SnapshotKind::Producer];

/// A snapshot of `kind` at offset 77 with a 40-byte payload.
fn snapshot(kind: SnapshotKind) -> Vec<u8> {
    let entries = match kind {
        SnapshotKind::Meta => 0,
        SnapshotKind::Producer => 3,
    };
    let payload: Vec<u8> = (1..=40).collect();
    encode_snapshot(kind, 77, entries, &payload)
}

/// Recomputes both crcs after editing a snapshot image, so the decoder
/// reaches the checks after them.
fn reseal_snapshot(bytes: &mut [u8]) {
    let crc = crc32c::crc32c(&bytes[FILE_HEADER_BYTES..]);
    bytes[32..36].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn snapshot_round_trips() {
    let meta = snapshot(SnapshotKind::Meta);
    assert_eq!(&meta[0..8], b"RINGLSNP");
    assert_eq!(le_u16(&meta, 8), 5);
    assert_eq!(le_u64(&meta, 24), 40, "payload length, u64");
    let producer = snapshot(SnapshotKind::Producer);
    assert_eq!(&producer[0..8], b"RINGLPRD");
    assert_eq!(le_u16(&producer, 8), 1);
    assert_eq!(le_u32(&producer, 24), 3, "producer count");
    assert_eq!(le_u32(&producer, 28), 40, "payload length, u32");
    for (kind, entries) in [(SnapshotKind::Meta, 0), (SnapshotKind::Producer, 3)] {
        let bytes = snapshot(kind);
        assert_eq!(bytes.len(), FILE_HEADER_BYTES + 40);
        assert_eq!(le_u64(&bytes, 16), 77);
        assert_eq!(le_u32(&bytes, 32), crc32c::crc32c(&bytes[64..]));
        let view = decode_snapshot(kind, &bytes).expect("valid");
        assert_eq!((view.offset, view.entries), (77, entries));
        assert_eq!(view.payload, &bytes[64..]);
        let empty = encode_snapshot(kind, 0, 0, &[]);
        let view = decode_snapshot(kind, &empty).expect("valid");
        assert_eq!((view.offset, view.entries, view.payload), (0, 0, &[][..]));
    }
}

/// The frame (magic, version, offset, crc) is the file header's: the
/// same function checks both, and only the fields between differ.
#[test]
fn snapshot_header_is_the_file_header_frame() {
    let segment = encode_segment_header(&header());
    let frame =
        decode_header(&segment, SEGMENT_MAGIC, FORMAT_VERSION..=FORMAT_VERSION).expect("frame");
    assert_eq!(le_u64(frame, 16), header().base_offset);
    for kind in KINDS {
        let bytes = snapshot(kind);
        let frame =
            decode_header(&bytes, kind.magic(), kind.version()..=kind.version()).expect("frame");
        assert_eq!(le_u64(frame, 16), 77);
        assert!(frame[10..16].iter().all(|&b| b == 0), "no kind, no length");
        // A snapshot is no segment, and a segment no snapshot.
        assert_eq!(decode_segment_header(&bytes), Err(Corruption::BadMagic));
        assert_eq!(
            decode_snapshot(kind, &segment),
            Err((0, Corruption::BadMagic))
        );
    }
}

#[test]
fn snapshot_bad_magic() {
    for kind in KINDS {
        let mut bytes = snapshot(kind);
        bytes[3] = b'X';
        assert_eq!(
            decode_snapshot(kind, &bytes),
            Err((0, Corruption::BadMagic))
        );
    }
    let meta = snapshot(SnapshotKind::Meta);
    assert_eq!(
        decode_snapshot(SnapshotKind::Producer, &meta),
        Err((0, Corruption::BadMagic))
    );
    let producer = snapshot(SnapshotKind::Producer);
    assert_eq!(
        decode_snapshot(SnapshotKind::Meta, &producer),
        Err((0, Corruption::BadMagic))
    );
}

#[test]
fn snapshot_bad_version() {
    for kind in KINDS {
        let mut bytes = snapshot(kind);
        let oldest = kind.oldest_version();
        for version in [
            0,
            oldest - 1,
            oldest,
            kind.version(),
            kind.version() + 1,
            u16::MAX,
        ] {
            bytes[8..10].copy_from_slice(&version.to_le_bytes());
            reseal_snapshot(&mut bytes);
            // Every version from the oldest readable one is read, and
            // says which it is.
            let expected = if (oldest..=kind.version()).contains(&version) {
                Ok((77, version))
            } else {
                Err((8, Corruption::BadVersion(version)))
            };
            let decoded = decode_snapshot(kind, &bytes).map(|v| (v.offset, v.version));
            assert_eq!(decoded, expected);
        }
    }
}

#[test]
fn snapshot_bad_header_crc() {
    for kind in KINDS {
        let mut bytes = snapshot(kind);
        bytes[17] ^= 0x01; // the offset
        assert_eq!(
            decode_snapshot(kind, &bytes),
            Err((0, Corruption::BadHeaderCrc))
        );
        let mut bytes = snapshot(kind);
        bytes[61] ^= 0x80; // the crc itself
        assert_eq!(
            decode_snapshot(kind, &bytes),
            Err((0, Corruption::BadHeaderCrc))
        );
    }
}

#[test]
fn snapshot_bad_payload_crc() {
    for kind in KINDS {
        let mut bytes = snapshot(kind);
        bytes[FILE_HEADER_BYTES + 5] ^= 0x04;
        assert_eq!(
            decode_snapshot(kind, &bytes),
            Err((64, Corruption::BadFrameCrc))
        );
        let mut bytes = snapshot(kind);
        bytes[33] ^= 0x04; // the payload crc, header resealed
        let crc = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_snapshot(kind, &bytes),
            Err((64, Corruption::BadFrameCrc))
        );
    }
}

#[test]
fn snapshot_truncated() {
    for kind in KINDS {
        let bytes = snapshot(kind);
        for len in [
            0,
            8,
            59,
            FILE_HEADER_BYTES - 1,
            FILE_HEADER_BYTES,
            bytes.len() - 1,
        ] {
            assert_eq!(
                decode_snapshot(kind, &bytes[..len]),
                Err((len as u64, Corruption::LengthPastEnd)),
                "{kind:?}, {len} bytes"
            );
        }
    }
}

#[test]
fn snapshot_trailing_bytes() {
    for kind in KINDS {
        let mut bytes = snapshot(kind);
        let end = bytes.len() as u64;
        bytes.push(0);
        assert!(matches!(
            decode_snapshot(kind, &bytes),
            Err((at, Corruption::Malformed(_))) if at == end
        ));
    }
}

#[test]
fn snapshot_reserved_header_bytes() {
    for kind in KINDS {
        for at in (10..16).chain(36..60) {
            let mut bytes = snapshot(kind);
            bytes[at] = 1;
            reseal_snapshot(&mut bytes);
            assert!(
                matches!(
                    decode_snapshot(kind, &bytes),
                    Err((pos, Corruption::Malformed(_))) if pos == at as u64
                ),
                "{kind:?}, byte {at}"
            );
        }
    }
}

#[test]
fn producer_snapshot_over_the_limit() {
    let kind = SnapshotKind::Producer;
    let mut bytes = snapshot(kind);
    bytes[24..28].copy_from_slice(&(PRODUCERS_MAX as u32 + 1).to_le_bytes());
    reseal_snapshot(&mut bytes);
    assert!(matches!(
        decode_snapshot(kind, &bytes),
        Err((24, Corruption::Malformed(_)))
    ));
    let mut bytes = snapshot(kind);
    let over = PRODUCER_SNAPSHOT_PAYLOAD_BYTES_MAX as u32 + 1;
    bytes[28..32].copy_from_slice(&over.to_le_bytes());
    reseal_snapshot(&mut bytes);
    assert!(matches!(
        decode_snapshot(kind, &bytes),
        Err((24, Corruption::Malformed(_)))
    ));
}

#[test]
fn producer_snapshot_entries_round_trip() {
    let entry = ProducerSnapshotEntry {
        producer_id: 0x0123_4567_89ab_cdef,
        epoch: i16::MAX,
        batches: 5,
        last_write_ms: -2,
    };
    let bytes = encode_producer_snapshot_entry(&entry);
    assert_eq!(le_i64(&bytes, 0), entry.producer_id);
    assert_eq!((le_u16(&bytes, 8), bytes[10]), (i16::MAX as u16, 5));
    assert_eq!(le_i64(&bytes, 16), -2);
    assert_eq!(decode_producer_snapshot_entry(&bytes), Some(entry));
    let batch = BatchRecord {
        first_seq: i32::MAX,
        last_seq: 3,
        base_offset: OFFSET_MAX - 4,
        offset_count: 4,
    };
    let bytes = encode_producer_snapshot_batch(&batch);
    assert_eq!((le_u32(&bytes, 0), le_u32(&bytes, 4)), (i32::MAX as u32, 3));
    assert_eq!((le_u64(&bytes, 8), le_u32(&bytes, 16)), (OFFSET_MAX - 4, 4));
    assert_eq!(decode_producer_snapshot_batch(&bytes), Some(batch));
}

#[test]
fn producer_snapshot_entry_reserved_bytes() {
    let entry = ProducerSnapshotEntry {
        producer_id: 42,
        epoch: 1,
        batches: 2,
        last_write_ms: 1_000,
    };
    for at in 11..16 {
        let mut bytes = encode_producer_snapshot_entry(&entry);
        bytes[at] = 1;
        assert_eq!(decode_producer_snapshot_entry(&bytes), None, "byte {at}");
    }
    let batch = BatchRecord {
        first_seq: 0,
        last_seq: 1,
        base_offset: 10,
        offset_count: 2,
    };
    for at in 20..24 {
        let mut bytes = encode_producer_snapshot_batch(&batch);
        bytes[at] = 1;
        assert_eq!(decode_producer_snapshot_batch(&bytes), None, "byte {at}");
    }
}

#[test]
fn file_names_round_trip() {
    let name = segment_file_name(123, "index");
    assert_eq!(parse_segment_file_name(&name, "index"), Some(123));
    assert_eq!(parse_segment_file_name(&name, "log"), None);
    assert_eq!(parse_segment_file_name("12.log", "log"), None);
}
