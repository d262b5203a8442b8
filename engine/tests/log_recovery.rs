//! Corruption cases and recovery rules of the segmented log, on the
//! fault-injecting in-memory backend, each asserting the exact outcome.

mod common;

use common::{batch, read_all, run};
use ringlog_engine::batch::BatchError;
use ringlog_engine::format::{
    decode_log_start, encode_log_start, log_start_crc, parse_segment_file_name, segment_file_name,
    walk_frames, FrameRead, FILE_HEADER_BYTES, FILE_HEADER_CREATED_AT, FILE_HEADER_VERSION_AT,
    FRAME_HEADER_BYTES, FRAME_LENGTH_AT, LOG_START_BYTES, LOG_START_CRC_AT, LOG_START_FILE_NAME,
    LOG_START_OFFSET_AT, LOG_START_VERSION_AT, OFFSET_INDEX_EXTENSION, SEGMENT_EXTENSION,
    SEGMENT_FILE_EXTENSIONS, SEGMENT_MAGIC, TIME_INDEX_EXTENSION,
};
use ringlog_engine::io::mem::{Fault, MemStorage, OpKind};
use ringlog_engine::io::TMP_SUFFIX;
use ringlog_engine::partition::{AppendError, PartitionLog};
use ringlog_engine::{Clock, Corruption, Error, FlushPolicy, LogConfig};
use std::path::{Path, PathBuf};

const DIR: &str = "/data/topics/t/0";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        write_buffer_bytes: 64 * 1024,
        max_payload_bytes: 16 * 1024,
        index_interval_bytes: 1024,
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn seg_path(base: u64, ext: &str) -> PathBuf {
    Path::new(DIR).join(segment_file_name(base, ext))
}

fn log_path(base: u64) -> PathBuf {
    seg_path(base, SEGMENT_EXTENSION)
}

async fn open(mem: &MemStorage) -> ringlog_engine::Result<PartitionLog<MemStorage>> {
    PartitionLog::open(mem.clone(), DIR, config(), Clock::System).await
}

/// Appends `n` batches of 2 records (`value_bytes` each) tagged 0..n.
async fn fill(log: &PartitionLog<MemStorage>, n: u64, value_bytes: usize) {
    for tag in 0..n {
        log.append(&batch(tag, 2, value_bytes, 1_000 + tag as i64))
            .await
            .unwrap();
    }
}

/// Byte positions of every frame of a segment file: (start, len).
fn frame_positions(bytes: &[u8]) -> Vec<(usize, usize)> {
    walk_frames(bytes, FILE_HEADER_BYTES, usize::MAX)
        .filter_map(|(at, found)| match found {
            FrameRead::Frame(h) => Some((at, h.frame_bytes())),
            _ => None,
        })
        .collect()
}

fn expect_corrupt(
    result: ringlog_engine::Result<PartitionLog<MemStorage>>,
    path: &Path,
    offset: u64,
    corruption: Corruption,
) {
    match result {
        Err(Error::Corrupt {
            path: p,
            offset: o,
            corruption: c,
        }) => {
            assert_eq!((p.as_path(), o, c), (path, offset, corruption));
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("expected corruption, log opened"),
    }
}

#[test]
fn bad_magic_in_segment_header_fails_open() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 3, 100).await;
        mem.flip_bit(&log_path(0), 0, 0);
        expect_corrupt(open(&mem).await, &log_path(0), 0, Corruption::BadMagic);
    });
}

#[test]
fn bad_version_in_segment_header_fails_open() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 3, 100).await;
        let version_high_byte = FILE_HEADER_VERSION_AT + 1;
        mem.flip_bit(&log_path(0), version_high_byte as u64, 0); // 1 -> 257
        expect_corrupt(
            open(&mem).await,
            &log_path(0),
            0,
            Corruption::BadVersion(257),
        );
    });
}

#[test]
fn bad_header_crc_fails_open() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 3, 100).await;
        let created_ms_byte = FILE_HEADER_CREATED_AT + 6;
        mem.flip_bit(&log_path(0), created_ms_byte as u64, 3);
        expect_corrupt(open(&mem).await, &log_path(0), 0, Corruption::BadHeaderCrc);
    });
}

#[test]
fn bad_frame_crc_before_valid_frames_fails_open_instead_of_truncating() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 5, 100).await;
        let bytes = mem.file_bytes(&log_path(0)).unwrap();
        let frames = frame_positions(&bytes);
        let (pos, _) = frames[2];
        mem.flip_bit(&log_path(0), (pos + FRAME_HEADER_BYTES + 20) as u64, 1);
        // The index may point past the damage; remove it so recovery scans it.
        mem.set_file_bytes(&seg_path(0, OFFSET_INDEX_EXTENSION), Vec::new());
        expect_corrupt(
            open(&mem).await,
            &log_path(0),
            pos as u64,
            Corruption::BadFrameCrc,
        );
    });
}

#[test]
fn bad_frame_crc_in_last_frame_is_a_torn_tail() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 5, 100).await;
        let bytes = mem.file_bytes(&log_path(0)).unwrap();
        let (pos, _) = *frame_positions(&bytes).last().unwrap();
        mem.flip_bit(&log_path(0), (pos + FRAME_HEADER_BYTES + 20) as u64, 1);
        let log = open(&mem).await.unwrap();
        assert_eq!(log.log().next_offset(), 8);
        assert_eq!(read_all(&log).await, vec![(0, 0), (2, 1), (4, 2), (6, 3)]);
        assert_eq!(mem.file_bytes(&log_path(0)).unwrap().len(), pos);
    });
}

#[test]
fn bad_batch_crc_is_rejected_and_nothing_is_written() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 2, 100).await;
        let before = mem.file_bytes(&log_path(0)).unwrap();
        let mut bad = batch(9, 2, 100, 5);
        let last = bad.len() - 1;
        bad[last] ^= 0xFF;
        match log.append(&bad).await {
            Err(AppendError::Log(Error::InvalidBatch(BatchError::CrcMismatch { .. }))) => {}
            other => panic!("expected CrcMismatch, got {other:?}"),
        }
        log.log().sync().await.unwrap();
        assert_eq!(log.log().next_offset(), 4);
        assert_eq!(mem.file_bytes(&log_path(0)).unwrap(), before);
        // The log still accepts good batches at the next offset.
        assert_eq!(
            log.append(&batch(2, 2, 100, 5)).await.unwrap().base_offset,
            4
        );
    });
}

#[test]
fn length_past_end_in_last_frame_is_truncated() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 4, 100).await;
        let path = log_path(0);
        let mut bytes = mem.file_bytes(&path).unwrap();
        let (pos, len) = *frame_positions(&bytes).last().unwrap();
        bytes.truncate(pos + len);
        bytes[pos + FRAME_LENGTH_AT + 1] = 0x7F; // length now ~32 KiB, past the end of the file
        mem.set_file_bytes(&path, bytes);
        let log = open(&mem).await.unwrap();
        assert_eq!(log.log().next_offset(), 6);
        assert_eq!(mem.file_bytes(&path).unwrap().len(), pos);
    });
}

#[test]
fn torn_tail_at_every_byte_of_the_last_frame() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 4, 300).await;
        let path = log_path(0);
        let pristine = mem.file_bytes(&path).unwrap();
        let (pos, len) = *frame_positions(&pristine).last().unwrap();
        for kept in 0..len {
            let mut torn = pristine[..pos + kept].to_vec();
            torn.resize(pristine.len().next_multiple_of(4096), 0); // rest of the block never written
            mem.set_file_bytes(&path, torn);
            // A frame whose missing bytes were zeros anyway is complete.
            let complete = pristine[pos + kept..pos + len].iter().all(|&b| b == 0);
            let log = open(&mem).await.unwrap();
            if complete {
                assert_eq!(
                    log.log().next_offset(),
                    8,
                    "torn at byte {kept} of {len}, frame complete"
                );
                continue;
            }
            assert_eq!(log.log().next_offset(), 6, "torn at byte {kept} of {len}");
            assert_eq!(
                read_all(&log).await,
                vec![(0, 0), (2, 1), (4, 2)],
                "torn at byte {kept}"
            );
            assert_eq!(
                mem.file_bytes(&path).unwrap().len(),
                pos,
                "file truncated to the last whole frame"
            );
            // The slot is reused by the next append.
            assert_eq!(
                log.append(&batch(7, 2, 300, 9)).await.unwrap().base_offset,
                6
            );
            log.close().await.unwrap();
        }
    });
}

#[test]
fn zero_padding_after_the_last_frame_is_trimmed() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 3, 100).await;
        let path = log_path(0);
        let mut bytes = mem.file_bytes(&path).unwrap();
        let (pos, len) = *frame_positions(&bytes).last().unwrap();
        bytes.truncate(pos + len);
        bytes.resize(pos + len + 3 * 4096, 0);
        mem.set_file_bytes(&path, bytes);
        let log = open(&mem).await.unwrap();
        assert_eq!(log.log().next_offset(), 6);
        assert_eq!(read_all(&log).await, vec![(0, 0), (2, 1), (4, 2)]);
        assert_eq!(mem.file_bytes(&path).unwrap().len(), pos + len);
    });
}

/// Fills several segments and returns the sealed base offsets.
async fn sealed_segments(mem: &MemStorage) -> Vec<u64> {
    let log = open(mem).await.unwrap();
    fill(&log, 100, 1000).await;
    let sealed: Vec<u64> = log
        .log()
        .segments()
        .iter()
        .filter(|s| s.sealed)
        .map(|s| s.base_offset)
        .collect();
    assert!(
        sealed.len() >= 2,
        "expected rolls, got {:?}",
        log.log().segments()
    );
    log.close().await.unwrap();
    sealed
}

#[test]
fn missing_index_of_a_sealed_segment_is_rebuilt_identically() {
    run(|| async {
        let mem = MemStorage::new();
        let sealed = sealed_segments(&mem).await;
        let original = mem
            .file_bytes(&seg_path(sealed[0], OFFSET_INDEX_EXTENSION))
            .unwrap();
        let original_time = mem
            .file_bytes(&seg_path(sealed[0], TIME_INDEX_EXTENSION))
            .unwrap();
        let expected = read_all(&open(&mem).await.unwrap()).await;
        use ringlog_engine::io::Storage;
        mem.remove(&seg_path(sealed[0], OFFSET_INDEX_EXTENSION))
            .await
            .unwrap();
        mem.remove(&seg_path(sealed[0], TIME_INDEX_EXTENSION))
            .await
            .unwrap();
        let log = open(&mem).await.unwrap();
        assert_eq!(
            mem.file_bytes(&seg_path(sealed[0], OFFSET_INDEX_EXTENSION))
                .unwrap(),
            original
        );
        assert_eq!(
            mem.file_bytes(&seg_path(sealed[0], TIME_INDEX_EXTENSION))
                .unwrap(),
            original_time
        );
        assert_eq!(read_all(&log).await, expected);
    });
}

#[test]
fn stale_index_of_a_sealed_segment_is_rebuilt() {
    run(|| async {
        let mem = MemStorage::new();
        let sealed = sealed_segments(&mem).await;
        let path = seg_path(sealed[1], OFFSET_INDEX_EXTENSION);
        let original = mem.file_bytes(&path).unwrap();
        // An entry that no longer matches the footer's crc.
        mem.flip_bit(&path, (FILE_HEADER_BYTES + 12) as u64, 2);
        let log = open(&mem).await.unwrap();
        assert_eq!(mem.file_bytes(&path).unwrap(), original);
        assert_eq!(read_all(&log).await.len(), 100);
    });
}

#[test]
fn corrupt_active_index_is_ignored_and_rebuilt_from_the_frames() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 10, 600).await;
        log.close().await.unwrap();
        let path = seg_path(0, OFFSET_INDEX_EXTENSION);
        let mut bytes = mem.file_bytes(&path).unwrap();
        let garbage_at = FILE_HEADER_BYTES + 8;
        bytes[garbage_at..garbage_at + 8].copy_from_slice(&[0xEE; 8]);
        mem.set_file_bytes(&path, bytes);
        let log = open(&mem).await.unwrap();
        assert_eq!(log.log().next_offset(), 20);
        assert_eq!(read_all(&log).await.len(), 10);
        let offset_of_frame_7 = log.log().read(15, 1).await.unwrap();
        assert_eq!(offset_of_frame_7.iter().next().unwrap().0.base_offset, 14);
    });
}

#[test]
fn never_written_last_segment_from_a_torn_roll_is_removed() {
    run(|| async {
        for blank in [Vec::new(), vec![0u8; 4096]] {
            let mem = MemStorage::new();
            let clock = Clock::manual(1_000_000);
            let cfg = LogConfig {
                segment_ms: 1000,
                ..config()
            };
            let log = PartitionLog::open(mem.clone(), DIR, cfg.clone(), clock.clone())
                .await
                .unwrap();
            fill(&log, 3, 100).await;
            clock.advance_ms(1000);
            log.log().maintain().await.unwrap(); // rolls: segment 6 created, header not yet written
            assert_eq!(log.log().segments().len(), 2);
            drop(log); // crash before the new segment's first write
            mem.set_file_bytes(&log_path(6), blank.clone());
            let log = PartitionLog::open(mem.clone(), DIR, cfg, clock.clone())
                .await
                .unwrap();
            assert_eq!(log.log().next_offset(), 6);
            let segments = log.log().segments();
            assert_eq!(segments.len(), 2);
            assert!(segments[0].sealed && !segments[1].sealed);
            assert_eq!(
                mem.file_bytes(&log_path(6)).unwrap().len(),
                0,
                "recreated empty"
            );
            assert_eq!(
                log.append(&batch(3, 2, 100, 1)).await.unwrap().base_offset,
                6
            );
        }
    });
}

#[test]
fn garbage_last_segment_header_with_data_fails_open() {
    run(|| async {
        let mem = MemStorage::new();
        fill(&open(&mem).await.unwrap(), 3, 100).await;
        let path = log_path(0);
        let mut bytes = mem.file_bytes(&path).unwrap();
        bytes[..8].copy_from_slice(b"NOTASEG!");
        mem.set_file_bytes(&path, bytes);
        expect_corrupt(open(&mem).await, &path, 0, Corruption::BadMagic);
    });
}

#[test]
fn offset_gap_between_segments_fails_open() {
    run(|| async {
        let mem = MemStorage::new();
        let sealed = sealed_segments(&mem).await;
        use ringlog_engine::io::Storage;
        // Deleting a middle segment (not the first: that is what retention does) leaves a hole.
        for ext in SEGMENT_FILE_EXTENSIONS {
            mem.remove(&seg_path(sealed[1], ext)).await.unwrap();
        }
        let next = mem
            .paths()
            .into_iter()
            .filter_map(|p| parse_segment_file_name(p.file_name()?.to_str()?, SEGMENT_EXTENSION))
            .find(|&b| b > sealed[1])
            .unwrap();
        match open(&mem).await {
            Err(Error::Corrupt {
                path,
                offset: 0,
                corruption: Corruption::OffsetGap { expected, found },
            }) => {
                assert_eq!(path, log_path(next));
                assert_eq!((expected, found), (sealed[1], next));
            }
            other => panic!("expected OffsetGap, got {:?}", other.err()),
        }
    });
}

#[test]
fn bit_flip_in_a_sealed_segment_is_reported_on_read() {
    run(|| async {
        let mem = MemStorage::new();
        let sealed = sealed_segments(&mem).await;
        let path = log_path(sealed[0]);
        let bytes = mem.file_bytes(&path).unwrap();
        let (pos, _) = frame_positions(&bytes)[3];
        mem.flip_bit(&path, (pos + FRAME_HEADER_BYTES + 70) as u64, 4);
        let log = open(&mem).await.unwrap();
        let target = sealed[0] + 6; // frame 3 holds offsets 6..8
        match log.log().read(target, 1 << 20).await {
            Err(Error::Corrupt {
                path: p,
                offset,
                corruption: Corruption::BadFrameCrc,
            }) => {
                assert_eq!((p, offset), (path, pos as u64));
            }
            Err(e) => panic!("expected BadFrameCrc, got {e}"),
            Ok(_) => panic!("expected BadFrameCrc, read succeeded"),
        }
    });
}

#[test]
fn eio_on_fdatasync_fails_the_append_and_poisons_the_log() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 3, 100).await;
        mem.inject(Fault::Eio {
            op: OpKind::Sync,
            after: 0,
        });
        assert!(matches!(
            log.append(&batch(3, 2, 100, 1)).await,
            Err(AppendError::Log(Error::Io { .. }))
        ));
        assert!(matches!(
            log.append(&batch(4, 2, 100, 1)).await,
            Err(AppendError::Log(Error::Poisoned { .. }))
        ));
        assert!(matches!(
            log.log().sync().await,
            Err(Error::Poisoned { .. })
        ));
        drop(log);
        // After a crash only the durable prefix is guaranteed; the failed append was never acknowledged.
        for seed in 0..8 {
            let crashed = mem.crash(seed);
            let log = PartitionLog::open(crashed, DIR, config(), Clock::System)
                .await
                .unwrap();
            let got = read_all(&log).await;
            assert!(
                got == vec![(0, 0), (2, 1), (4, 2)] || got == vec![(0, 0), (2, 1), (4, 2), (6, 3)],
                "seed {seed}: {got:?}"
            );
        }
    });
}

#[test]
fn eio_on_write_fails_the_append_and_poisons_the_log() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 2, 100).await;
        mem.inject(Fault::Eio {
            op: OpKind::Write,
            after: 0,
        });
        assert!(matches!(
            log.append(&batch(2, 2, 100, 1)).await,
            Err(AppendError::Log(Error::Io { .. }))
        ));
        assert!(matches!(
            log.append(&batch(3, 2, 100, 1)).await,
            Err(AppendError::Log(Error::Poisoned { .. }))
        ));
        drop(log);
        let log = open(&mem).await.unwrap();
        assert_eq!(read_all(&log).await, vec![(0, 0), (2, 1)]);
    });
}

#[test]
fn enospc_fails_appends_and_keeps_every_acknowledged_batch() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 2, 100).await;
        let used: u64 = mem
            .paths()
            .iter()
            .map(|p| mem.file_bytes(p).unwrap().len() as u64)
            .sum();
        mem.set_capacity_bytes(Some(used + 8192));
        let mut acked = 2u64;
        let err = loop {
            match log.append(&batch(acked, 2, 1000, 1)).await {
                Ok(_) => acked += 1,
                Err(e) => break e,
            }
            assert!(acked < 100, "capacity never ran out");
        };
        match err {
            AppendError::Log(Error::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC))
            }
            other => panic!("expected ENOSPC, got {other}"),
        }
        drop(log);
        mem.set_capacity_bytes(None);
        let log = open(&mem).await.unwrap();
        let got = read_all(&log).await;
        assert_eq!(got.len() as u64, acked);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, &(off, tag))| off == 2 * i as u64 && tag == i as u64));
    });
}

#[test]
fn interval_policy_acknowledges_before_sync_and_maintain_syncs() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(1_000_000);
        let cfg = LogConfig {
            flush_policy: FlushPolicy::IntervalMs(50),
            ..config()
        };
        let log = PartitionLog::open(mem.clone(), DIR, cfg, clock.clone())
            .await
            .unwrap();
        log.append(&batch(0, 2, 100, 1)).await.unwrap();
        let syncs = mem.sync_count();
        assert_eq!(log.log().durable_offset(), 0);
        log.log().maintain().await.unwrap();
        assert_eq!(mem.sync_count(), syncs, "interval not elapsed: no sync");
        clock.advance_ms(50);
        log.log().maintain().await.unwrap();
        assert_eq!(log.log().durable_offset(), 2);
        assert_eq!(mem.sync_count(), syncs + 1);
    });
}

fn checkpoint_path() -> PathBuf {
    Path::new(DIR).join(LOG_START_FILE_NAME)
}

#[test]
fn corrupt_log_start_checkpoint_fails_open_naming_the_file_and_byte() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 10, 100).await;
        assert_eq!(log.delete_records_below(5).await.unwrap(), 5);
        log.close().await.unwrap();
        let path = checkpoint_path();
        let pristine = mem.file_bytes(&path).unwrap();
        assert_eq!(pristine.len(), LOG_START_BYTES);
        let reseal = |bytes: &mut Vec<u8>| {
            let crc = log_start_crc(bytes);
            bytes[LOG_START_CRC_AT..][..4].copy_from_slice(&crc.to_le_bytes());
        };
        let mut bad_magic = pristine.clone();
        bad_magic[2] ^= 0x20;
        let mut bad_version = pristine.clone();
        bad_version[LOG_START_VERSION_AT..][..2].copy_from_slice(&2u16.to_le_bytes());
        reseal(&mut bad_version);
        let mut bad_crc = pristine.clone();
        bad_crc[LOG_START_OFFSET_AT + 1] ^= 0x01; // the offset, 5 -> 261: the crc catches it
        let truncated = pristine[..20].to_vec();
        for (bytes, at, corruption) in [
            (bad_magic, 0, Corruption::BadMagic),
            (
                bad_version,
                LOG_START_VERSION_AT as u64,
                Corruption::BadVersion(2),
            ),
            (bad_crc, 0, Corruption::BadHeaderCrc),
            (truncated, 20, Corruption::LengthPastEnd),
        ] {
            mem.set_file_bytes(&path, bytes);
            expect_corrupt(open(&mem).await, &path, at, corruption);
        }
        mem.set_file_bytes(&path, pristine);
        assert_eq!(open(&mem).await.unwrap().log().log_start_offset(), 5);
    });
}

#[test]
fn log_start_checkpoint_above_the_log_end_is_clamped_and_rewritten() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await.unwrap();
        fill(&log, 5, 100).await;
        log.close().await.unwrap();
        // As if DeleteRecords had moved the start into data a crash then took back.
        mem.set_file_bytes(&checkpoint_path(), encode_log_start(25).to_vec());
        let log = open(&mem).await.unwrap();
        assert_eq!(log.log().log_start_offset(), 10);
        assert_eq!(log.log().next_offset(), 10);
        assert_eq!(
            decode_log_start(&mem.file_bytes(&checkpoint_path()).unwrap()),
            Ok(10),
            "rewritten, or it would hide appends after the next restart"
        );
        assert_eq!(
            log.append(&batch(7, 2, 100, 1)).await.unwrap().base_offset,
            10
        );
        log.close().await.unwrap();
        let log = open(&mem).await.unwrap();
        assert_eq!(log.log().log_start_offset(), 10);
        assert_eq!(read_all(&log).await, vec![(10, 7)]);
    });
}

#[test]
fn every_crash_point_of_delete_records_below_recovers_the_old_or_the_new_start() {
    run(|| async {
        for seed in 0..4 {
            let mem = MemStorage::new();
            let log = open(&mem).await.unwrap();
            fill(&log, 100, 1000).await; // batch i: offsets 2i, 2i + 1
            let old = log.delete_records_below(7).await.unwrap();
            let segments = log.log().segments();
            assert!(segments.len() >= 4, "{segments:?}");
            let new = segments[2].base_offset + 3; // the first two segments go
            mem.record_crash_images(seed);
            assert_eq!(log.delete_records_below(new).await.unwrap(), new);
            let images = mem.take_crash_images();
            // Temp file: create, write, truncate, fdatasync; rename; 2 x 3 segment files removed.
            assert!(images.len() >= 11, "{} crash points", images.len());
            let (mut moved, mut kept_old) = (false, 0);
            for (step, image) in images.into_iter().chain([mem.crash(seed)]).enumerate() {
                let context = format!("seed {seed}, crash point {step}");
                let log = PartitionLog::open(image.clone(), DIR, config(), Clock::System)
                    .await
                    .unwrap();
                let start = log.log().log_start_offset();
                assert!(start == old || start == new, "{context}: start {start}");
                assert!(!moved || start == new, "{context}: start went back");
                moved = start == new;
                kept_old += usize::from(start == old);
                let got = read_all(&log).await;
                assert_eq!(
                    got.first(),
                    Some(&(start - 1, (start - 1) / 2)),
                    "{context}"
                );
                assert_eq!(got.len() as u64, 100 - start / 2, "{context}");
                assert_eq!(got.last(), Some(&(198, 99)), "{context}");
                // Segments wholly below the start are gone (open finishes the deletion).
                let on_disk = log.log().segments();
                assert!(on_disk[0].base_offset <= start && start < on_disk[0].end_offset);
                let files = image.paths();
                let segment_files = files
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == SEGMENT_EXTENSION));
                assert_eq!(segment_files.count(), on_disk.len(), "{context}");
                assert!(
                    !files
                        .iter()
                        .any(|p| p.to_string_lossy().ends_with(TMP_SUFFIX)),
                    "{context}: temp file left: {files:?}"
                );
            }
            assert!(
                moved,
                "seed {seed}: a crash after the call returned keeps the new start"
            );
            assert!(
                kept_old >= 4,
                "seed {seed}: crashes before the rename keep the old start"
            );
        }
    });
}

#[test]
fn failed_checkpoint_write_poisons_the_log_and_keeps_the_old_start() {
    run(|| async {
        for op in [OpKind::Write, OpKind::Sync] {
            let mem = MemStorage::new();
            let log = open(&mem).await.unwrap();
            fill(&log, 10, 100).await;
            mem.inject(Fault::Eio { op, after: 0 });
            match log.delete_records_below(9).await {
                Err(Error::Io { path, .. }) => assert_eq!(path, checkpoint_path()),
                other => panic!("{op:?}: expected Io, got {other:?}"),
            }
            assert_eq!(log.log().log_start_offset(), 0);
            assert!(matches!(
                log.delete_records_below(9).await,
                Err(Error::Poisoned { .. })
            ));
            assert!(matches!(
                log.append(&batch(10, 2, 100, 1)).await,
                Err(AppendError::Log(Error::Poisoned { .. }))
            ));
            drop(log);
            for seed in 0..4 {
                let log = open(&mem.crash(seed)).await.unwrap();
                assert_eq!(log.log().log_start_offset(), 0, "{op:?}, seed {seed}");
                assert_eq!(read_all(&log).await.len(), 10);
                assert!(!mem.crash(seed).paths().contains(&checkpoint_path()));
            }
        }
    });
}

#[test]
fn deleting_every_sealed_segment_keeps_the_log_end_across_a_crash() {
    run(|| async {
        for by_retention in [false, true] {
            let mem = MemStorage::new();
            let clock = Clock::manual(1_000_000);
            let cfg = LogConfig {
                segment_ms: 1000,
                retention_ms: by_retention.then_some(60_000),
                ..config()
            };
            let log = PartitionLog::open(mem.clone(), DIR, cfg.clone(), clock.clone())
                .await
                .unwrap();
            fill(&log, 3, 100).await; // timestamps ~1000: far older than the retention
            clock.advance_ms(1000);
            log.log().maintain().await.unwrap(); // rolls: segment 6, header only buffered
            if !by_retention {
                assert_eq!(log.delete_records_below(6).await.unwrap(), 6);
            }
            let segments = log.log().segments();
            assert_eq!(segments.len(), 1, "{segments:?}");
            assert_eq!(log.log().log_start_offset(), 6);
            for seed in 0..4 {
                let crashed = mem.crash(seed);
                // The only segment left has a durable header naming its base.
                let bytes = crashed.file_bytes(&log_path(6)).unwrap();
                assert_eq!(bytes[..8], SEGMENT_MAGIC, "retention {by_retention}");
                let log = PartitionLog::open(crashed, DIR, cfg.clone(), clock.clone())
                    .await
                    .unwrap();
                assert_eq!(log.log().next_offset(), 6, "retention {by_retention}");
                assert_eq!(log.log().log_start_offset(), 6);
                assert_eq!(
                    log.append(&batch(3, 2, 100, 1)).await.unwrap().base_offset,
                    6
                );
            }
        }
    });
}

#[test]
fn blank_last_segment_with_nothing_before_it_keeps_its_base() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(1_000_000);
        let cfg = LogConfig {
            segment_ms: 1000,
            ..config()
        };
        let log = PartitionLog::open(mem.clone(), DIR, cfg.clone(), clock.clone())
            .await
            .unwrap();
        fill(&log, 3, 100).await;
        clock.advance_ms(1000);
        log.log().maintain().await.unwrap(); // segment 6 created, header not yet written
        drop(log);
        // What a log written before the header was made durable could hold
        // after retention deleted everything sealed and a crash followed.
        use ringlog_engine::io::Storage;
        for ext in SEGMENT_FILE_EXTENSIONS {
            mem.remove(&seg_path(0, ext)).await.unwrap();
        }
        mem.set_file_bytes(&log_path(6), Vec::new());
        let log = PartitionLog::open(mem.clone(), DIR, cfg, clock.clone())
            .await
            .unwrap();
        assert_eq!(log.log().next_offset(), 6, "offsets are never reused");
        assert_eq!(log.log().log_start_offset(), 6);
        assert_eq!(log.log().segments()[0].base_offset, 6);
        assert_eq!(
            log.append(&batch(3, 2, 100, 1)).await.unwrap().base_offset,
            6
        );
    });
}
