//! Records inside stored batches, through a partition log on the in-memory
//! backend: ListOffsets by time is exact per record inside batches of every
//! codec, and the topic configs that change batches (`compression.type`,
//! `message.timestamp.type`, the timestamp window) are applied on append,
//! with idempotent producers' sequence rules intact on rewritten batches.

mod common;

use common::run;
use ringlog_engine::batch::{BatchError, BatchView, ATTRIBUTE_CODEC_MASK, BATCH_HEADER_BYTES};
use ringlog_engine::codec::Codec;
use ringlog_engine::error::Corruption;
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::{AppendError, PartitionLog};
use ringlog_engine::producer::ProducerError;
use ringlog_engine::records::{build_timed_batch, BatchPolicy, FoundRecord, TimestampType};
use ringlog_engine::{Clock, Error, LogConfig};

const DIR: &str = "/data/topics/policy/0";
const T0: i64 = 1_700_000_000_000;
const RECORDS_PER_BATCH: usize = 50;

fn config(policy: BatchPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 32 * 1024,
        write_buffer_bytes: 64 * 1024,
        max_payload_bytes: 16 * 1024,
        index_interval_bytes: 1024,
        retention_ms: None,
        batch_policy: policy,
        ..LogConfig::default()
    }
}

async fn open(mem: &MemStorage, policy: BatchPolicy, clock: &Clock) -> PartitionLog<MemStorage> {
    PartitionLog::open(mem.clone(), DIR, config(policy), clock.clone())
        .await
        .unwrap()
}

fn values(batch: usize) -> Vec<Vec<u8>> {
    (0..RECORDS_PER_BATCH)
        .map(|i| format!("batch-{batch:03}-record-{i:03}-{}", "z".repeat(60)).into_bytes())
        .collect()
}

/// Timestamps of batch `b`: 10 ms apart, rising across batches, but every
/// fifth record 25 ms older than its predecessor (out of order inside the
/// batch, as producers may send them).
fn timestamps(b: usize) -> Vec<i64> {
    (0..RECORDS_PER_BATCH)
        .map(|i| {
            let t = T0 + 10 * (b * RECORDS_PER_BATCH + i) as i64;
            if i % 5 == 4 {
                t - 25
            } else {
                t
            }
        })
        .collect()
}

fn timed_batch(codec: Codec, b: usize) -> Vec<u8> {
    let values = values(b);
    let records: Vec<(i64, &[u8])> = timestamps(b)
        .into_iter()
        .zip(values.iter().map(Vec::as_slice))
        .collect();
    build_timed_batch(codec, &records)
}

/// Kafka's answer by brute force over every record's (offset, timestamp).
fn expected(all: &[(u64, i64)], start: u64, target: i64) -> Option<FoundRecord> {
    all.iter()
        .find(|&&(o, t)| o >= start && t >= target)
        .map(|&(offset, timestamp_ms)| FoundRecord {
            offset,
            timestamp_ms,
        })
}

/// The stored batches from the log start, as their header views' bytes.
async fn stored(log: &PartitionLog<MemStorage>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log().log_start_offset();
    while offset < log.log().high_watermark() {
        let batches = log.log().read(offset, 1 << 20).await.unwrap();
        for (_, payload) in batches.iter() {
            out.push(payload.to_vec());
        }
        offset = batches.next_offset().unwrap();
    }
    out
}

#[test]
fn list_offsets_by_time_is_exact_inside_batches_of_every_codec() {
    run(|| async {
        for codec in Codec::ALL {
            let mem = MemStorage::new();
            let log = open(&mem, BatchPolicy::default(), &Clock::System).await;
            let mut all = Vec::new();
            for b in 0..12 {
                let appended = log.append(&timed_batch(codec, b)).await.unwrap();
                for (i, t) in timestamps(b).into_iter().enumerate() {
                    all.push((appended.base_offset + i as u64, t));
                }
            }
            assert!(
                log.log().segments().len() > 1 || codec != Codec::None,
                "the uncompressed run spans segments"
            );
            let last = all.last().unwrap().1;
            let mut targets = vec![0, T0, T0 + 1, last, last + 1];
            // The middle of batches, and just around the out-of-order records.
            for b in [0, 3, 7, 11] {
                let base = T0 + 10 * (b * RECORDS_PER_BATCH) as i64;
                targets.extend([base + 205, base + 231, base + 236, base + 240, base + 241]);
            }
            for &target in &targets {
                assert_eq!(
                    log.offset_for_timestamp(target).await.unwrap(),
                    expected(&all, 0, target),
                    "{codec}: target {target}"
                );
            }
            // The log start inside a batch: records below it are skipped.
            let start = 3 * RECORDS_PER_BATCH as u64 + 17;
            log.delete_records_below(start).await.unwrap();
            for &target in &targets {
                assert_eq!(
                    log.offset_for_timestamp(target).await.unwrap(),
                    expected(&all, start, target),
                    "{codec}: target {target} above log start {start}"
                );
            }
            log.close().await.unwrap();
        }
    });
}

#[test]
fn a_batch_whose_max_timestamp_no_record_reaches_is_passed_over() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open(&mem, BatchPolicy::default(), &Clock::System).await;
        // Batch 0 claims a max timestamp of T0 + 1000 that none of its
        // records has; batch 1 has the first record at or after T0 + 500.
        let mut lying = build_timed_batch(Codec::Gzip, &[(T0, b"a".as_slice()), (T0 + 1, b"b")]);
        let view = BatchView::parse(&lying).unwrap();
        let attributes = view.attributes();
        ringlog_engine::batch::finish_header(&mut lying, attributes, T0 + 1000);
        log.append(&lying).await.unwrap();
        log.append(&build_timed_batch(
            Codec::Snappy,
            &[(T0 + 400, b"c".as_slice()), (T0 + 600, b"d")],
        ))
        .await
        .unwrap();
        assert_eq!(
            log.offset_for_timestamp(T0 + 500).await.unwrap(),
            Some(FoundRecord {
                offset: 3,
                timestamp_ms: T0 + 600
            })
        );
        assert_eq!(log.offset_for_timestamp(T0 + 601).await.unwrap(), None);
        log.close().await.unwrap();
    });
}

#[test]
fn a_stored_batch_that_does_not_decode_is_corrupt_not_a_panic() {
    run(|| async {
        for codec in Codec::ALL {
            let mem = MemStorage::new();
            let log = open(&mem, BatchPolicy::default(), &Clock::System).await;
            // The default policy stores without decoding: a batch with a
            // valid CRC over broken records gets in.
            let mut bad = timed_batch(codec, 0);
            let middle = BATCH_HEADER_BYTES + (bad.len() - BATCH_HEADER_BYTES) / 2;
            bad.truncate(middle);
            let view = BatchView::parse_unverified(&bad).unwrap();
            let (attributes, max) = (view.attributes(), view.max_timestamp());
            ringlog_engine::batch::finish_header(&mut bad, attributes, max);
            log.append(&bad).await.unwrap();
            match log.offset_for_timestamp(T0 + 400).await {
                Err(Error::Corrupt {
                    corruption: Corruption::BadBatch(_),
                    ..
                }) => {}
                other => panic!("{codec}: {other:?}"),
            }
            log.close().await.unwrap();
        }
    });
}

#[test]
fn compression_type_recompresses_appended_batches_and_reconfigures_live() {
    run(|| async {
        let mem = MemStorage::new();
        let zstd = BatchPolicy {
            compression: Some(Codec::Zstd),
            ..BatchPolicy::default()
        };
        let log = open(&mem, zstd, &Clock::System).await;
        let mut all = Vec::new();
        for (b, codec) in [Codec::None, Codec::Gzip, Codec::Zstd, Codec::Lz4]
            .into_iter()
            .enumerate()
        {
            let produced = timed_batch(codec, b);
            let appended = log.append(&produced).await.unwrap();
            assert_eq!(appended.log_append_time_ms, None);
            for (i, t) in timestamps(b).into_iter().enumerate() {
                all.push((appended.base_offset + i as u64, t));
            }
        }
        let batches = stored(&log).await;
        assert_eq!(batches.len(), 4);
        for (b, bytes) in batches.iter().enumerate() {
            let view = BatchView::parse(bytes).expect("a valid CRC after the rewrite");
            assert_eq!(view.codec(), Codec::Zstd.id(), "batch {b}");
            assert_eq!(view.base_offset(), (b * RECORDS_PER_BATCH) as i64);
            assert_eq!(view.record_count(), RECORDS_PER_BATCH as i32);
            assert_eq!(view.max_timestamp(), *timestamps(b).iter().max().unwrap());
        }
        let target = T0 + 10 * (2 * RECORDS_PER_BATCH) as i64 + 236;
        assert_eq!(
            log.offset_for_timestamp(target).await.unwrap(),
            expected(&all, 0, target)
        );
        // Back to `producer`: stored as produced from the next append on.
        log.reconfigure(config(BatchPolicy::default())).unwrap();
        let lz4 = timed_batch(Codec::Lz4, 4);
        log.append(&lz4).await.unwrap();
        let last = stored(&log).await.pop().unwrap();
        assert_eq!(last[BATCH_HEADER_BYTES..], lz4[BATCH_HEADER_BYTES..]);
        assert_eq!(
            BatchView::parse(&last).unwrap().attributes() & ATTRIBUTE_CODEC_MASK,
            i16::from(Codec::Lz4.id())
        );
        log.close().await.unwrap();
    });
}

#[test]
fn log_append_time_stamps_batches_with_the_append_time() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(T0 + 1_000_000);
        let policy = BatchPolicy {
            timestamp_type: TimestampType::LogAppendTime,
            ..BatchPolicy::default()
        };
        let log = open(&mem, policy, &clock).await;
        let first = log.append(&timed_batch(Codec::Snappy, 0)).await.unwrap();
        assert_eq!(first.log_append_time_ms, Some(T0 + 1_000_000));
        clock.advance_ms(50);
        let second = log.append(&timed_batch(Codec::None, 1)).await.unwrap();
        assert_eq!(second.log_append_time_ms, Some(T0 + 1_000_050));
        for (bytes, time) in stored(&log)
            .await
            .iter()
            .zip([T0 + 1_000_000, T0 + 1_000_050])
        {
            let view = BatchView::parse(bytes).expect("the CRC is recomputed");
            assert!(view.is_log_append_time());
            assert_eq!(view.max_timestamp(), time);
            assert_eq!(view.base_timestamp(), bytes_base_timestamp(bytes));
        }
        // Every record carries its batch's append time.
        assert_eq!(
            log.offset_for_timestamp(T0).await.unwrap(),
            Some(FoundRecord {
                offset: 0,
                timestamp_ms: T0 + 1_000_000
            })
        );
        assert_eq!(
            log.offset_for_timestamp(T0 + 1_000_001).await.unwrap(),
            Some(FoundRecord {
                offset: RECORDS_PER_BATCH as u64,
                timestamp_ms: T0 + 1_000_050
            })
        );
        log.close().await.unwrap();
    });
}

fn bytes_base_timestamp(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes[27..35].try_into().unwrap())
}

#[test]
fn records_outside_the_timestamp_window_refuse_the_batch() {
    run(|| async {
        let mem = MemStorage::new();
        let now = T0 + 3_600_000;
        let clock = Clock::manual(now);
        let policy = BatchPolicy {
            timestamp_before_max_ms: 3_600_000,
            timestamp_after_max_ms: 60_000,
            ..BatchPolicy::default()
        };
        let log = open(&mem, policy, &clock).await;
        // Only the third record is over an hour old.
        let stale = [(now, b"a".as_slice()), (now, b"b"), (now - 3_600_001, b"c")];
        for codec in [Codec::None, Codec::Zstd] {
            match log.append(&build_timed_batch(codec, &stale)).await {
                Err(AppendError::Log(Error::InvalidBatch(BatchError::TimestampOutOfRange {
                    record_index,
                    earliest_ms,
                    ..
                }))) => {
                    assert_eq!(record_index, 2, "the record outside the window");
                    assert_eq!(earliest_ms, T0);
                }
                other => panic!("{codec}: {other:?}"),
            }
        }
        assert_eq!(log.log().next_offset(), 0, "nothing appended");
        let future = build_timed_batch(Codec::Lz4, &[(now, b"a".as_slice()), (now + 60_001, b"b")]);
        assert!(matches!(
            log.append(&future).await,
            Err(AppendError::Log(Error::InvalidBatch(
                BatchError::TimestampOutOfRange {
                    record_index: 1,
                    ..
                }
            )))
        ));
        let fresh = build_timed_batch(
            Codec::Gzip,
            &[(now - 10, b"a".as_slice()), (now + 10, b"b")],
        );
        let appended = log.append(&fresh).await.unwrap();
        assert_eq!((appended.base_offset, appended.last_offset), (0, 1));
        log.close().await.unwrap();
    });
}

#[test]
fn idempotent_sequences_hold_on_rewritten_batches() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(T0);
        let policy = BatchPolicy {
            compression: Some(Codec::Gzip),
            timestamp_type: TimestampType::LogAppendTime,
            ..BatchPolicy::default()
        };
        let producer_batch = |seq: i32| {
            let mut bytes = build_timed_batch(
                Codec::Lz4,
                &[(T0, b"x".as_slice()), (T0 + 1, b"y"), (T0 + 2, b"z")],
            );
            bytes[43..51].copy_from_slice(&42i64.to_be_bytes());
            bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
            bytes[53..57].copy_from_slice(&seq.to_be_bytes());
            let view = BatchView::parse_unverified(&bytes).unwrap();
            let (attributes, max) = (view.attributes(), view.max_timestamp());
            ringlog_engine::batch::finish_header(&mut bytes, attributes, max);
            bytes
        };
        let log = open(&mem, policy, &clock).await;
        let first = log.append(&producer_batch(0)).await.unwrap();
        assert!(!first.duplicate);
        let retry = log.append(&producer_batch(0)).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, first.base_offset);
        assert!(matches!(
            log.append(&producer_batch(7)).await,
            Err(AppendError::Producer(
                ProducerError::OutOfOrderSequence { .. }
            ))
        ));
        let next = log.append(&producer_batch(3)).await.unwrap();
        assert_eq!(next.base_offset, 3);
        let batches = stored(&log).await;
        assert_eq!(batches.len(), 2, "the retry was not written");
        for bytes in &batches {
            let view = BatchView::parse(bytes).unwrap();
            assert_eq!(view.codec(), Codec::Gzip.id());
            assert_eq!((view.producer_id(), view.producer_epoch()), (42, 0));
        }
        // The state rebuilt from the rewritten batches after a reopen.
        log.close().await.unwrap();
        let log = open(&mem, policy, &clock).await;
        assert!(log.append(&producer_batch(3)).await.unwrap().duplicate);
        assert_eq!(log.append(&producer_batch(6)).await.unwrap().base_offset, 6);
        log.close().await.unwrap();
    });
}
