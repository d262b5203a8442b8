//! Rolls, retention, reads and timestamp lookup of the segmented log.

mod common;

use common::{batch, run};
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, Error, FlushPolicy, LogConfig};

const DIR: &str = "/data/topics/t/3";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 32 * 1024,
        write_buffer_bytes: 32 * 1024,
        max_payload_bytes: 8 * 1024,
        index_interval_bytes: 2048,
        retention_ms: None,
        ..LogConfig::default()
    }
}

async fn open_with(mem: &MemStorage, cfg: LogConfig, clock: &Clock) -> PartitionLog<MemStorage> {
    PartitionLog::open(mem.clone(), DIR, cfg, clock.clone())
        .await
        .unwrap()
}

#[test]
fn rolls_by_size_with_zero_padded_names_and_contiguous_bases() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        for tag in 0..100 {
            log.append(&batch(tag, 4, 200, 1)).await.unwrap();
        }
        let segments = log.log().segments();
        assert!(segments.len() >= 3, "{segments:?}");
        for pair in segments.windows(2) {
            assert!(pair[0].sealed);
            assert_eq!(pair[0].end_offset, pair[1].base_offset);
            assert!(pair[0].size_bytes <= 32 * 1024);
        }
        assert!(!segments.last().unwrap().sealed);
        for s in &segments {
            let name = s.path.file_name().unwrap().to_str().unwrap();
            assert_eq!(name, format!("{:020}.log", s.base_offset));
        }
        assert_eq!(log.log().stats().rolls as usize, segments.len() - 1);
    });
}

#[test]
fn idle_active_segment_is_sealed_when_its_age_passes() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(10_000_000);
        let log = open_with(
            &mem,
            LogConfig {
                segment_ms: 60_000,
                ..config()
            },
            &clock,
        )
        .await;
        log.append(&batch(0, 1, 10, 1)).await.unwrap();
        clock.advance_ms(59_999);
        log.log().maintain().await.unwrap();
        assert!(!log.log().segments()[0].sealed, "too young to seal");
        clock.advance_ms(1);
        log.log().maintain().await.unwrap();
        let segments = log.log().segments();
        assert!(segments[0].sealed, "sealed without a new append");
        assert_eq!(segments.len(), 2);
        // An empty active segment is never rolled, however old.
        clock.advance_ms(10 * 60_000);
        log.log().maintain().await.unwrap();
        assert_eq!(log.log().segments().len(), 2);
        // And the sealed state survives a restart.
        log.close().await.unwrap();
        let log = open_with(&mem, config(), &clock).await;
        assert!(log.log().segments()[0].sealed);
    });
}

#[test]
fn retention_by_time_deletes_whole_sealed_segments_and_moves_log_start() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(100_000_000);
        let cfg = LogConfig {
            retention_ms: Some(3_600_000),
            ..config()
        };
        let log = open_with(&mem, cfg, &clock).await;
        // Old data (timestamps two hours back), then fresh data.
        for tag in 0..40 {
            log.append(&batch(tag, 4, 200, clock.now_ms() - 7_200_000))
                .await
                .unwrap();
        }
        let old_end = log.log().next_offset();
        for tag in 40..80 {
            log.append(&batch(tag, 4, 200, clock.now_ms()))
                .await
                .unwrap();
        }
        let before = log.log().segments();
        log.log().maintain().await.unwrap();
        let after = log.log().segments();
        assert!(after.len() < before.len());
        let start = log.log().log_start_offset();
        assert_eq!(start, after[0].base_offset);
        assert!(start > 0 && start <= old_end);
        // Every deleted segment held only old data; every kept one is not entirely old.
        for s in &before {
            let kept = after.iter().any(|a| a.base_offset == s.base_offset);
            assert_eq!(
                kept,
                s.max_timestamp_ms >= clock.now_ms() - 3_600_000 || !s.sealed,
                "{s:?}"
            );
            assert_eq!(mem.file_bytes(&s.path).is_some(), kept);
        }
        match log.log().read(0, 1024).await {
            Err(Error::OffsetOutOfRange {
                offset: 0,
                start: s,
                ..
            }) => assert_eq!(s, start),
            other => panic!(
                "expected OffsetOutOfRange, got {:?}",
                other.map(|b| b.next_offset())
            ),
        }
        // Log start survives a restart.
        log.close().await.unwrap();
        let log = open_with(&mem, config(), &clock).await;
        assert_eq!(log.log().log_start_offset(), start);
    });
}

#[test]
fn retention_by_size_keeps_the_log_at_or_above_the_limit() {
    run(|| async {
        let mem = MemStorage::new();
        let cfg = LogConfig {
            retention_bytes: Some(64 * 1024),
            ..config()
        };
        let log = open_with(&mem, cfg, &Clock::System).await;
        for tag in 0..200 {
            log.append(&batch(tag, 4, 200, 1)).await.unwrap();
        }
        let before: u64 = log.log().segments().iter().map(|s| s.size_bytes).sum();
        log.log().enforce_retention().await.unwrap();
        let segments = log.log().segments();
        let after: u64 = segments.iter().map(|s| s.size_bytes).sum();
        assert!(
            before > 64 * 1024 && after >= 64 * 1024,
            "{before} -> {after}"
        );
        // Deleting one more segment would go below the limit.
        assert!(after - segments[0].size_bytes < 64 * 1024);
        assert!(log.log().stats().segments_deleted > 0);
    });
}

#[test]
fn read_returns_whole_batches_bounded_by_max_bytes_but_at_least_one() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        for tag in 0..10 {
            log.append(&batch(tag, 5, 100, 1)).await.unwrap(); // ~600 byte batches
        }
        // Offset 7 is inside the batch [5, 10): the whole batch comes back.
        let r = log.log().read(7, 1).await.unwrap();
        let frames: Vec<_> = r
            .iter()
            .map(|(f, p)| (f.base_offset, f.count, p.len()))
            .collect();
        assert_eq!(frames.len(), 1, "max_bytes 1 still returns the first batch");
        assert_eq!((frames[0].0, frames[0].1), (5, 5));
        let one = frames[0].2;
        let r = log.log().read(7, 3 * one).await.unwrap();
        assert_eq!(r.iter().count(), 3);
        assert!(r.payload_bytes() <= 3 * one);
        assert_eq!(r.next_offset(), Some(20));
        // Payload is the batch with its log-assigned base offset.
        let (_, payload) = r.iter().next().unwrap();
        assert_eq!(i64::from_be_bytes(payload[..8].try_into().unwrap()), 5);
        // At the high watermark: empty. Past it: out of range.
        assert!(log.log().read(50, 1 << 20).await.unwrap().is_empty());
        assert!(matches!(
            log.log().read(51, 1).await,
            Err(Error::OffsetOutOfRange {
                offset: 51,
                start: 0,
                end: 50
            })
        ));
    });
}

#[test]
fn unsynced_appends_are_invisible_to_readers_under_the_always_policy() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        log.append(&batch(0, 2, 10, 1)).await.unwrap();
        let raw = batch(1, 2, 10, 1);
        log.log()
            .append_with(raw.len(), 2, 1, |dst, base| {
                dst.copy_from_slice(&raw);
                ringlog_engine::batch::set_base_offset(dst, base);
            })
            .await
            .unwrap();
        assert_eq!(
            (log.log().next_offset(), log.log().high_watermark()),
            (4, 2)
        );
        assert_eq!(
            log.log().read(0, 1 << 20).await.unwrap().next_offset(),
            Some(2)
        );
        log.log().sync().await.unwrap();
        assert_eq!(
            log.log().read(2, 1 << 20).await.unwrap().next_offset(),
            Some(4)
        );
    });
}

#[test]
fn offset_for_timestamp_finds_the_first_batch_at_or_after_it_across_segments() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        // Batch i has timestamp 1000 + 10 i and offsets [3i, 3i + 3).
        for i in 0..150i64 {
            log.append(&batch(i as u64, 3, 150, 1000 + 10 * i))
                .await
                .unwrap();
        }
        assert!(log.log().segments().len() > 2);
        for (ts, want) in [
            (0, Some(0)),
            (1000, Some(0)),
            (1001, Some(3)),
            (1500, Some(150)),
            (1495, Some(150)),
            (2490, Some(447)),
            (2491, None),
        ] {
            assert_eq!(
                log.log().offset_for_timestamp(ts).await.unwrap(),
                want,
                "timestamp {ts}"
            );
        }
        // The same after a restart (time indexes from disk).
        log.close().await.unwrap();
        let log = open_with(&mem, config(), &Clock::System).await;
        assert_eq!(
            log.log().offset_for_timestamp(1731).await.unwrap(),
            Some(222)
        );
    });
}

#[test]
fn oversized_payloads_are_refused() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        let big = batch(0, 1, 9000, 1);
        assert!(matches!(
            log.append(&big).await,
            Err(Error::TooLarge {
                max_bytes: 8192,
                ..
            })
        ));
        assert_eq!(log.log().next_offset(), 0);
    });
}

#[test]
fn invalid_configs_are_refused_with_a_reason() {
    run(|| async {
        let mem = MemStorage::new();
        for cfg in [
            LogConfig {
                segment_bytes: 1 << 33,
                ..config()
            },
            LogConfig {
                write_buffer_bytes: 5000,
                ..config()
            },
            LogConfig {
                max_payload_bytes: 64 * 1024,
                ..config()
            },
            LogConfig {
                index_interval_bytes: 0,
                ..config()
            },
            LogConfig {
                flush_policy: FlushPolicy::Always,
                segment_ms: 0,
                ..config()
            },
        ] {
            match PartitionLog::open(mem.clone(), DIR, cfg, Clock::System).await {
                Err(Error::Config(why)) => assert!(!why.is_empty()),
                Err(e) => panic!("expected Config error, got {e}"),
                Ok(_) => panic!("invalid config accepted"),
            }
        }
    });
}
