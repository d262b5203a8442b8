//! Idempotent producers on a partition log (in-memory backend with its
//! crash model): duplicates are answered with the original offsets and not
//! written, refusals write nothing, and the sequence state survives clean
//! restarts, crashes at every step of a roll and its snapshot, corrupt and
//! stale snapshot files, and DeleteRecords.

mod common;

use common::{batch, producer_batch, run};
use ringlog_engine::batch::BatchView;
use ringlog_engine::format::{
    parse_segment_file_name, segment_file_name, PRODUCER_SNAPSHOT_EXTENSION,
    PRODUCER_SNAPSHOT_HEADER_BYTES,
};
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::{AppendError, Appended, PartitionLog, PRODUCER_SNAPSHOTS_KEPT};
use ringlog_engine::producer::{
    classify, BatchRecord, ProducerError, ProducerStates, PRODUCER_EXPIRATION_MS,
};
use ringlog_engine::{Clock, LogConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DIR: &str = "/data/topics/idem/0";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 24 * 1024,
        write_buffer_bytes: 24 * 1024,
        max_payload_bytes: 12 * 1024,
        index_interval_bytes: 1024,
        retention_ms: None,
        ..LogConfig::default()
    }
}

async fn open(mem: &MemStorage) -> PartitionLog<MemStorage> {
    PartitionLog::open(mem.clone(), DIR, config(), Clock::System)
        .await
        .unwrap()
}

fn snapshot_path(offset: u64) -> PathBuf {
    Path::new(DIR).join(segment_file_name(offset, PRODUCER_SNAPSHOT_EXTENSION))
}

/// Covered offsets of the producer snapshot files, ascending.
fn snapshots(mem: &MemStorage) -> Vec<u64> {
    let mut out: Vec<u64> = mem
        .paths()
        .iter()
        .filter(|p| p.parent() == Some(Path::new(DIR)))
        .filter_map(|p| {
            parse_segment_file_name(p.file_name()?.to_str()?, PRODUCER_SNAPSHOT_EXTENSION)
        })
        .collect();
    out.sort_unstable();
    out
}

/// One idempotent producer's view of what it sent.
struct Producer {
    id: i64,
    epoch: i16,
    next_seq: i32,
}

impl Producer {
    fn new(id: i64) -> Self {
        Producer {
            id,
            epoch: 0,
            next_seq: 0,
        }
    }

    /// The next batch of `records` records (`value_bytes` each), advancing
    /// the sequence.
    fn next(&mut self, records: usize, value_bytes: usize) -> Vec<u8> {
        let tag = (self.id as u64) << 32 | self.next_seq as u64;
        let bytes = producer_batch(
            tag,
            records,
            value_bytes,
            1_000,
            (self.id, self.epoch, self.next_seq),
        );
        self.next_seq += records as i32;
        bytes
    }
}

/// Per producer, the batches the log holds from its start, in the
/// producer's current (last) epoch: what the state must describe.
async fn batches_in_log(log: &PartitionLog<MemStorage>) -> BTreeMap<i64, (i16, Vec<BatchRecord>)> {
    let mut out: BTreeMap<i64, (i16, Vec<BatchRecord>)> = BTreeMap::new();
    let mut offset = log.log().log_start_offset();
    while offset < log.log().high_watermark() {
        let read = log.log().read(offset, 1 << 20).await.unwrap();
        for (frame, payload) in read.iter() {
            let view = BatchView::parse(payload).unwrap();
            if let Some(b) = classify(&view).unwrap() {
                let entry = out.entry(b.producer_id).or_insert((b.epoch, Vec::new()));
                if entry.0 != b.epoch {
                    *entry = (b.epoch, Vec::new());
                }
                entry.1.push(BatchRecord {
                    first_seq: b.first_seq,
                    last_seq: b.last_seq,
                    base_offset: frame.base_offset,
                    offset_count: frame.count,
                });
            }
        }
        offset = read.next_offset().unwrap();
    }
    out
}

/// The state never contradicts the log: a producer is unknown, or known
/// in its last epoch with a non-empty run of its last batches (all five
/// when `exact`). Returns how many producers are known.
async fn assert_state_matches_log(
    log: &PartitionLog<MemStorage>,
    exact: bool,
    context: &str,
) -> usize {
    let mut known = 0;
    for (id, (epoch, batches)) in batches_in_log(log).await {
        let Some((state_epoch, retained)) = log.producer(id) else {
            assert!(!exact, "{context}: producer {id} unknown");
            continue;
        };
        known += 1;
        assert_eq!(state_epoch, epoch, "{context}: producer {id} epoch");
        let want = batches.len().min(5);
        assert!(
            !retained.is_empty() && retained.len() <= want,
            "{context}: producer {id} retains {retained:?} of {batches:?}"
        );
        if exact {
            assert_eq!(retained.len(), want, "{context}: producer {id}");
        }
        assert_eq!(
            retained[..],
            batches[batches.len() - retained.len()..],
            "{context}: producer {id} state is not the end of its batches"
        );
    }
    known
}

fn expect_duplicate(got: Result<Appended, AppendError>, of: Appended) {
    let got = got.unwrap();
    assert!(got.duplicate, "{got:?} is not a duplicate");
    assert_eq!(
        (got.base_offset, got.last_offset),
        (of.base_offset, of.last_offset)
    );
}

#[test]
fn resent_batches_are_acknowledged_once_at_their_original_offsets() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut p = Producer::new(7);
        let first = p.next(3, 10);
        let a = log.append(&first).await.unwrap();
        assert_eq!((a.base_offset, a.last_offset, a.duplicate), (0, 2, false));
        log.append(&batch(1, 1, 10, 1)).await.unwrap();
        let second = p.next(2, 10);
        let b = log.append(&second).await.unwrap();
        assert_eq!((b.base_offset, b.last_offset), (4, 5));
        expect_duplicate(log.append(&first).await, a);
        expect_duplicate(log.append_buffered(&second).await, b);
        assert_eq!(log.log().next_offset(), 6, "duplicates are not written");
        // A gap, then an older epoch after a bump: refused, nothing written.
        p.next_seq += 1;
        let gap = p.next(1, 10);
        match log.append(&gap).await {
            Err(AppendError::Producer(ProducerError::OutOfOrderSequence {
                producer_id: 7,
                epoch: 0,
                first_seq: 6,
                expected_seq: 5,
            })) => {}
            other => panic!("{other:?}"),
        }
        p.epoch = 1;
        p.next_seq = 0;
        let bumped = log.append(&p.next(1, 10)).await.unwrap();
        assert_eq!(bumped.base_offset, 6);
        match log.append(&first).await {
            Err(AppendError::Producer(ProducerError::InvalidEpoch {
                epoch: 0,
                current_epoch: 1,
                ..
            })) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(log.log().next_offset(), 7);
        assert_eq!(log.producer_count(), 1);
    });
}

#[test]
fn a_clean_restart_loads_the_state_and_scans_nothing() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut producers: Vec<Producer> = (0..3).map(Producer::new).collect();
        let mut sent = Vec::new();
        for round in 0..8 {
            for p in &mut producers {
                let bytes = p.next(1 + round % 3, 50);
                let appended = log.append(&bytes).await.unwrap();
                sent.push((bytes, appended));
            }
        }
        let before: Vec<_> = (0..3).map(|id| log.producer(id)).collect();
        let end = log.log().next_offset();
        log.close().await.unwrap();
        assert_eq!(snapshots(&mem).last(), Some(&end));
        let log = open(&mem).await;
        assert_eq!(log.producer_frames_scanned(), 0);
        let after: Vec<_> = (0..3).map(|id| log.producer(id)).collect();
        assert_eq!(after, before);
        assert_state_matches_log(&log, true, "clean restart").await;
        // The last batch of each producer is still a duplicate; the next
        // sequence goes on.
        for (bytes, appended) in &sent[sent.len() - 3..] {
            expect_duplicate(log.append(bytes).await, *appended);
        }
        for p in &mut producers {
            assert!(!log.append(&p.next(1, 50)).await.unwrap().duplicate);
        }
    });
}

#[test]
fn after_a_crash_the_state_comes_from_the_roll_snapshot_and_the_tail() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut producers: Vec<Producer> = (0..4).map(Producer::new).collect();
        let mut frames = 0u64;
        for round in 0..60 {
            for p in &mut producers {
                log.append(&p.next(1 + round % 4, 200)).await.unwrap();
                frames += 1;
            }
        }
        let rolls = log.log().stats().rolls;
        assert!(rolls >= 4, "{rolls} rolls");
        // One snapshot per roll, the newest kept.
        let kept = snapshots(&mem);
        assert_eq!(kept.len(), PRODUCER_SNAPSHOTS_KEPT, "{kept:?}");
        let active_base = log.log().segments().last().unwrap().base_offset;
        assert_eq!(kept.last(), Some(&active_base));
        let before: Vec<_> = (0..4).map(|id| log.producer(id)).collect();
        drop(log);
        let log = open(&mem.crash(11)).await;
        let after: Vec<_> = (0..4).map(|id| log.producer(id)).collect();
        assert_eq!(after, before, "acks=all: every batch survived");
        let scanned = log.producer_frames_scanned();
        assert!(
            scanned > 0 && scanned < frames / 2,
            "scanned {scanned} of {frames} frames: only the active segment"
        );
        assert_state_matches_log(&log, true, "crash").await;
    });
}

#[test]
fn every_crash_point_of_a_roll_and_its_snapshot_recovers_a_consistent_state() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut producers: Vec<Producer> = (0..3).map(Producer::new).collect();
        // Three segments, the last one almost full.
        let mut i = 0;
        while log.log().stats().rolls < 2
            || log.log().segments().last().unwrap().size_bytes < 20 * 1024
        {
            log.append(&producers[i % 3].next(2, 300)).await.unwrap();
            i += 1;
        }
        // A crash image before every mutating step of the next roll: the
        // seal, the new segment, the snapshot's temp file, its fdatasync,
        // the rename, the prune.
        mem.record_crash_images(5);
        let rolls = log.log().stats().rolls;
        while log.log().stats().rolls == rolls {
            log.append(&producers[i % 3].next(2, 300)).await.unwrap();
            i += 1;
        }
        let new_base = log.log().segments().last().unwrap().base_offset;
        let images = mem.take_crash_images();
        assert!(images.len() >= 10, "{} crash points", images.len());
        let (mut with_new_snapshot, mut without) = (0, 0);
        for (step, image) in images.into_iter().enumerate() {
            let context = format!("crash point {step}");
            if snapshots(&image).contains(&new_base) {
                with_new_snapshot += 1;
            } else {
                without += 1;
            }
            let log = open(&image).await;
            let known = assert_state_matches_log(&log, false, &context).await;
            assert_eq!(known, 3, "{context}: the scan covers every producer");
            // Whatever survived, each producer goes on with its next
            // sequence, and its last batch is a duplicate.
            for (id, (_, batches)) in batches_in_log(&log).await {
                let last = batches.last().unwrap();
                let read = log.log().read(last.base_offset, 1).await.unwrap();
                let (_, payload) = read.iter().next().unwrap();
                let resent = log.append(payload).await.unwrap();
                assert!(resent.duplicate, "{context}: producer {id}");
                assert_eq!(resent.base_offset, last.base_offset, "{context}");
                let mut p = Producer::new(id);
                p.next_seq = last.last_seq + 1;
                let next = log.append(&p.next(1, 10)).await;
                assert!(!next.unwrap().duplicate, "{context}");
            }
        }
        assert!(
            with_new_snapshot > 0 && without > 0,
            "crash points with the new snapshot: {with_new_snapshot}, without: {without}"
        );
    });
}

#[test]
fn a_corrupt_snapshot_is_skipped_and_the_tail_scanned() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut p = Producer::new(3);
        let mut last = None;
        for _ in 0..10 {
            let bytes = p.next(2, 100);
            last = Some((log.append(&bytes).await.unwrap(), bytes));
        }
        let end = log.log().next_offset();
        log.close().await.unwrap();
        let payload_byte = PRODUCER_SNAPSHOT_HEADER_BYTES + 6;
        mem.flip_bit(&snapshot_path(end), payload_byte as u64, 2);
        let log = open(&mem).await;
        assert_eq!(log.producer_frames_scanned(), 10);
        assert_state_matches_log(&log, true, "corrupt snapshot").await;
        let (appended, bytes) = last.unwrap();
        expect_duplicate(log.append(&bytes).await, appended);
        // The rebuild wrote a fresh snapshot at the end over the bad one.
        let image = mem.file_bytes(&snapshot_path(end)).unwrap();
        assert!(ProducerStates::decode_snapshot(&image).is_ok());
    });
}

#[test]
fn a_snapshot_beyond_the_log_end_is_removed() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut p = Producer::new(9);
        for _ in 0..4 {
            log.append(&p.next(1, 10)).await.unwrap();
        }
        log.close().await.unwrap();
        // A snapshot of offsets the log does not hold (as after a crash that
        // lost acknowledged-but-unsynced data under an interval policy),
        // claiming producer 9 reached sequence 100.
        let mut stale = ProducerStates::new();
        let fake = ringlog_engine::producer::ProducerBatch {
            producer_id: 9,
            epoch: 0,
            first_seq: 100,
            last_seq: 100,
        };
        stale.record(&fake, 10, 1, 1);
        mem.set_file_bytes(&snapshot_path(20), stale.encode_snapshot(20));
        let log = open(&mem).await;
        assert!(!snapshots(&mem).contains(&20));
        assert_eq!(log.producer(9).unwrap().1.last().unwrap().last_seq, 3);
        assert!(!log.append(&p.next(1, 10)).await.unwrap().duplicate);
    });
}

#[test]
fn a_snapshot_below_the_log_start_is_not_used() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem).await;
        let mut p = Producer::new(4);
        log.append(&p.next(1, 10)).await.unwrap();
        log.close().await.unwrap();
        assert_eq!(snapshots(&mem), vec![1]);
        let log = open(&mem).await;
        // Sequence 1 at offset 1, then DeleteRecords removes it: the
        // snapshot (sequence 0) is older than what the log lost.
        log.append(&p.next(1, 10)).await.unwrap();
        log.append(&batch(0, 1, 10, 1)).await.unwrap();
        assert_eq!(log.delete_records_below(2).await.unwrap(), 2);
        drop(log);
        let log = open(&mem.crash(3)).await;
        assert_eq!(log.log().log_start_offset(), 2);
        // Trusting the snapshot would expect sequence 1 and refuse 2.
        assert!(log.producer(4).is_none(), "{:?}", log.producer(4));
        assert!(!log.append(&p.next(1, 10)).await.unwrap().duplicate);
    });
}

#[test]
fn idle_producers_are_forgotten_after_the_expiration() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(1_700_000_000_000);
        let log = PartitionLog::open(mem.clone(), DIR, config(), clock.clone())
            .await
            .unwrap();
        let (mut idle, mut busy) = (Producer::new(1), Producer::new(2));
        log.append(&idle.next(1, 10)).await.unwrap();
        clock.advance_ms(PRODUCER_EXPIRATION_MS / 2);
        log.append(&busy.next(1, 10)).await.unwrap();
        clock.advance_ms(PRODUCER_EXPIRATION_MS / 2 + 1);
        log.append(&busy.next(1, 10)).await.unwrap();
        assert!(log.producer(1).is_none(), "idle for a day");
        assert!(log.producer(2).is_some());
        // Unknown again: a resend of its old batch is written as new data.
        idle.next_seq = 0;
        assert!(!log.append(&idle.next(1, 10)).await.unwrap().duplicate);
    });
}
