//! Rolls, retention, reads and timestamp lookup of the segmented log.

mod common;

use common::{batch, run};
use ringlog_engine::format::{decode_log_start, SegmentKind, LOG_START_FILE_NAME};
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::{AppendError, PartitionLog};
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
            Err(AppendError::Log(Error::TooLarge {
                max_bytes: 8192,
                ..
            }))
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

#[test]
fn reconfigured_shorter_retention_deletes_at_the_next_enforce_retention() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(100_000_000);
        let cfg = LogConfig {
            retention_ms: Some(3 * 3_600_000),
            ..config()
        };
        let log = open_with(&mem, cfg.clone(), &clock).await;
        for tag in 0..40 {
            log.append(&batch(tag, 4, 200, clock.now_ms() - 7_200_000))
                .await
                .unwrap();
        }
        for tag in 40..80 {
            log.append(&batch(tag, 4, 200, clock.now_ms()))
                .await
                .unwrap();
        }
        let before = log.log().segments();
        log.log().enforce_retention().await.unwrap();
        assert_eq!(log.log().segments(), before, "two hours is within three");
        assert_eq!(log.log().log_start_offset(), 0);
        let shorter = LogConfig {
            retention_ms: Some(3_600_000),
            ..cfg
        };
        log.reconfigure(shorter.clone()).unwrap();
        assert_eq!(log.log().config(), shorter);
        log.log().enforce_retention().await.unwrap();
        let after = log.log().segments();
        assert!(after.len() < before.len());
        assert!(log.log().log_start_offset() > 0);
        for s in &before {
            let kept = after.iter().any(|a| a.base_offset == s.base_offset);
            assert_eq!(
                kept,
                s.max_timestamp_ms >= clock.now_ms() - 3_600_000 || !s.sealed,
                "{s:?}"
            );
        }
    });
}

#[test]
fn reconfigured_segment_bytes_and_segment_ms_change_rolling() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(10_000_000);
        let log = open_with(&mem, config(), &clock).await;
        // ~20 KiB in the active segment: below 32 KiB, above 16 KiB.
        for tag in 0..20 {
            log.append(&batch(tag, 4, 250, 1)).await.unwrap();
        }
        assert_eq!(log.log().segments().len(), 1);
        let active_bytes = log.log().segments()[0].size_bytes;
        assert!(active_bytes > 16 * 1024 && active_bytes < 32 * 1024);
        let smaller = LogConfig {
            segment_bytes: 16 * 1024,
            ..config()
        };
        log.reconfigure(smaller.clone()).unwrap();
        // The next append rolls the now oversized segment first.
        let a = log.append(&batch(20, 4, 250, 1)).await.unwrap();
        let segments = log.log().segments();
        assert_eq!(segments.len(), 2);
        assert!(segments[0].sealed);
        assert_eq!(segments[1].base_offset, a.base_offset);
        assert_eq!(log.log().stats().rolls, 1);
        for tag in 21..80 {
            log.append(&batch(tag, 4, 250, 1)).await.unwrap();
        }
        let segments = log.log().segments();
        assert!(segments.len() >= 5, "{segments:?}");
        for s in &segments[1..] {
            assert!(s.size_bytes <= 16 * 1024, "{s:?}");
        }
        // Larger again: the active segment grows past the old 32 KiB.
        log.reconfigure(LogConfig {
            segment_bytes: 128 * 1024,
            ..smaller.clone()
        })
        .unwrap();
        let rolls = log.log().stats().rolls;
        let mut tag = 80;
        while log.log().segments().last().unwrap().size_bytes < 48 * 1024 {
            log.append(&batch(tag, 4, 250, 1)).await.unwrap();
            tag += 1;
        }
        assert_eq!(log.log().stats().rolls, rolls, "no roll at 16 or 32 KiB");
        // A shorter segment.ms seals the idle active segment at the next maintain.
        clock.advance_ms(60_000);
        log.log().maintain().await.unwrap();
        assert!(!log.log().segments().last().unwrap().sealed);
        log.reconfigure(LogConfig {
            segment_ms: 60_000,
            segment_bytes: 128 * 1024,
            ..smaller
        })
        .unwrap();
        log.log().maintain().await.unwrap();
        let segments = log.log().segments();
        assert!(segments[segments.len() - 2].sealed);
        assert_eq!(
            segments.last().unwrap().size_bytes,
            64,
            "a fresh active segment"
        );
    });
}

#[test]
fn reconfigure_refuses_changes_that_cannot_apply_live_and_changes_nothing() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        for tag in 0..3 {
            log.append(&batch(tag, 4, 200, 1)).await.unwrap();
        }
        let refused = [
            (
                LogConfig {
                    kind: SegmentKind::Meta,
                    ..config()
                },
                "kind",
            ),
            (
                LogConfig {
                    write_buffer_bytes: 64 * 1024,
                    max_payload_bytes: 16 * 1024,
                    ..config()
                },
                "write_buffer_bytes",
            ),
            (
                // Valid for a new log with a larger buffer, not for this one.
                LogConfig {
                    max_payload_bytes: 30 * 1024,
                    segment_bytes: 64 * 1024,
                    ..config()
                },
                "max_payload_bytes",
            ),
            (
                LogConfig {
                    index_interval_bytes: 0,
                    retention_ms: Some(1),
                    ..config()
                },
                "index_interval_bytes",
            ),
            (
                LogConfig {
                    segment_bytes: 4096,
                    retention_ms: Some(1),
                    ..config()
                },
                "segment_bytes",
            ),
            (
                LogConfig {
                    segment_bytes: 1 << 33,
                    ..config()
                },
                "segment_bytes",
            ),
        ];
        for (cfg, field) in refused {
            match log.log().reconfigure(cfg.clone()) {
                Err(Error::Config(why)) => assert!(why.contains(field), "{field}: {why}"),
                Err(e) => panic!("expected Config error for {cfg:?}, got {e}"),
                Ok(()) => panic!("accepted {cfg:?}"),
            }
            assert_eq!(log.log().config(), config(), "unchanged after {field}");
        }
        // The partition pass-through keeps the kind, so Meta cannot sneak in there either.
        log.reconfigure(LogConfig {
            kind: SegmentKind::Meta,
            ..config()
        })
        .unwrap();
        assert_eq!(log.log().config().kind, SegmentKind::Partition);
        // Still the old limits: an 8 KiB payload fits, retention is off.
        log.append(&batch(3, 1, 8000, 1)).await.unwrap();
        log.log().enforce_retention().await.unwrap();
        assert_eq!(log.log().log_start_offset(), 0);
        assert_eq!(log.log().segments().len(), 1);
    });
}

#[test]
fn lowered_max_payload_refuses_larger_appends_and_keeps_written_batches_readable() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        log.append(&batch(0, 1, 7000, 1)).await.unwrap();
        log.append(&batch(1, 1, 100, 1)).await.unwrap();
        let lowered = LogConfig {
            max_payload_bytes: 1024,
            ..config()
        };
        log.reconfigure(lowered.clone()).unwrap();
        assert!(matches!(
            log.append(&batch(2, 1, 2000, 1)).await,
            Err(AppendError::Log(Error::TooLarge {
                max_bytes: 1024,
                ..
            }))
        ));
        let r = log.log().read(0, 1).await.unwrap();
        assert!(r.iter().next().unwrap().1.len() > 7000);
        assert_eq!(read_tags(&log).await, vec![0, 1]);
        // Reopened with the lowered limit (as a restart after AlterConfigs
        // would), the large batch is still data, not corruption.
        log.close().await.unwrap();
        let log = open_with(&mem, lowered, &Clock::System).await;
        assert_eq!(read_tags(&log).await, vec![0, 1]);
        assert_eq!(log.log().offset_for_timestamp(1).await.unwrap(), Some(0));
    });
}

async fn read_tags(log: &PartitionLog<MemStorage>) -> Vec<u64> {
    common::read_all(log)
        .await
        .into_iter()
        .map(|(_, tag)| tag)
        .collect()
}

/// Batch i: 4 records, offsets [4i, 4i + 4), timestamp 1000 + 10 i.
async fn hundred_batches(log: &PartitionLog<MemStorage>) {
    for i in 0..100u64 {
        log.append(&batch(i, 4, 200, 1000 + 10 * i as i64))
            .await
            .unwrap();
    }
}

#[test]
fn delete_records_below_moves_the_log_start_inside_a_segment() {
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        hundred_batches(&log).await;
        let before = log.log().segments();
        assert!(before.len() >= 3, "{before:?}");
        // Inside batch 40 (offsets 160..164), inside a sealed segment.
        let cut = 162;
        let holder = before
            .iter()
            .find(|s| s.base_offset <= cut && cut < s.end_offset)
            .unwrap()
            .clone();
        assert!(holder.sealed && holder.base_offset > 0 && holder.base_offset < 160);
        assert_eq!(log.delete_records_below(cut).await.unwrap(), cut);
        assert_eq!(log.log().log_start_offset(), cut);
        // Segments wholly below the start are gone, the one holding it stays.
        let after = log.log().segments();
        assert_eq!(after[0], holder);
        for s in &before {
            let kept = s.end_offset > cut;
            assert_eq!(after.contains(s), kept, "{s:?}");
            assert_eq!(mem.file_bytes(&s.path).is_some(), kept, "{s:?}");
        }
        let checkpoint = mem
            .file_bytes(&std::path::Path::new(DIR).join(LOG_START_FILE_NAME))
            .unwrap();
        assert_eq!(decode_log_start(&checkpoint), Ok(cut));
        // Below the start: out of range, even inside the segment still on disk.
        for below in [0, holder.base_offset, cut - 1] {
            match log.log().read(below, 1 << 20).await {
                Err(Error::OffsetOutOfRange { offset, start, end }) => {
                    assert_eq!((offset, start, end), (below, cut, 400))
                }
                other => panic!("read {below}: {:?}", other.map(|r| r.next_offset())),
            }
        }
        // At the start: the whole batch that holds it, as Kafka returns it.
        let r = log.log().read(cut, 1).await.unwrap();
        assert_eq!(r.iter().next().unwrap().0.base_offset, 160);
        let got = common::read_all(&log).await;
        assert_eq!(got.first(), Some(&(160, 40)));
        assert_eq!(got.len(), 60);
        // Timestamp lookups never answer below the start.
        for (ts, want) in [
            (0, Some(cut)),
            (1000, Some(cut)),
            (1400, Some(cut)), // batch 40 itself straddles the start
            (1401, Some(164)),
            (1990, Some(396)),
            (1991, None),
        ] {
            assert_eq!(
                log.log().offset_for_timestamp(ts).await.unwrap(),
                want,
                "timestamp {ts}"
            );
        }
        // At or below the start: nothing to do. Above the high watermark: refused.
        assert_eq!(log.delete_records_below(cut).await.unwrap(), cut);
        assert_eq!(log.delete_records_below(5).await.unwrap(), cut);
        assert!(matches!(
            log.delete_records_below(401).await,
            Err(Error::OffsetOutOfRange {
                offset: 401,
                start: 162,
                end: 400
            })
        ));
        assert_eq!(log.log().log_start_offset(), cut);
        // Up to the high watermark: every sealed segment goes, the active one stays.
        assert_eq!(log.delete_records_below(400).await.unwrap(), 400);
        let left = log.log().segments();
        assert_eq!(left.len(), 1);
        assert!(!left[0].sealed);
        assert!(log.log().read(400, 1 << 20).await.unwrap().is_empty());
        assert_eq!(log.log().offset_for_timestamp(0).await.unwrap(), None);
        let a = log.append(&batch(100, 4, 200, 5000)).await.unwrap();
        assert_eq!(a.base_offset, 400);
        assert_eq!(log.log().offset_for_timestamp(0).await.unwrap(), Some(400));
        assert_eq!(common::read_all(&log).await, vec![(400, 100)]);
    });
}

#[test]
fn delete_records_below_survives_a_restart_and_retention_keeps_working() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(100_000_000);
        let log = open_with(&mem, config(), &clock).await;
        hundred_batches(&log).await;
        let cut = 251; // inside batch 62
        assert_eq!(log.delete_records_below(cut).await.unwrap(), cut);
        let segments = log.log().segments();
        log.close().await.unwrap();
        let log = open_with(&mem, config(), &clock).await;
        assert_eq!(log.log().log_start_offset(), cut);
        assert_eq!(log.log().segments(), segments);
        assert!(matches!(
            log.log().read(cut - 1, 1).await,
            Err(Error::OffsetOutOfRange { start: 251, .. })
        ));
        assert_eq!(common::read_all(&log).await.first(), Some(&(248, 62)));
        assert_eq!(log.log().offset_for_timestamp(0).await.unwrap(), Some(cut));
        // Retention moves the start past the checkpoint; a restart keeps the larger.
        for tag in 100..140 {
            log.append(&batch(tag, 4, 200, clock.now_ms()))
                .await
                .unwrap();
        }
        log.reconfigure(LogConfig {
            retention_ms: Some(3_600_000),
            ..config()
        })
        .unwrap();
        log.log().maintain().await.unwrap();
        let start = log.log().log_start_offset();
        assert!(start > cut, "old segments deleted: start {start}");
        assert_eq!(start, log.log().segments()[0].base_offset);
        log.close().await.unwrap();
        let log = open_with(&mem, config(), &clock).await;
        assert_eq!(log.log().log_start_offset(), start);
    });
}

#[test]
fn sync_observer_sees_every_segment_fdatasync() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(1_000_000);
        let log = std::rc::Rc::new(open_with(&mem, config(), &clock).await);
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let observer_seen = seen.clone();
        let observer_log = std::rc::Rc::downgrade(&log);
        log.log()
            .set_sync_observer(std::rc::Rc::new(move |elapsed| {
                // May look at the log: nothing is borrowed while it runs.
                let fdatasyncs = observer_log.upgrade().unwrap().log().stats().fdatasyncs;
                observer_seen.borrow_mut().push((elapsed, fdatasyncs));
            }));
        // Group-commit syncs from concurrent appenders, and seals at rolls.
        let tasks: Vec<_> = (0..4u64)
            .map(|task| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    for i in 0..30 {
                        log.append(&batch(task * 100 + i, 4, 200, 1)).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        clock.advance_ms(7 * 24 * 3600 * 1000);
        log.log().maintain().await.unwrap(); // seals the idle segment by age
        let stats = log.log().stats();
        assert!(stats.rolls >= 3, "{stats:?}");
        let seen = seen.borrow();
        assert_eq!(seen.len() as u64, stats.fdatasyncs, "{stats:?}");
        // Called after each sync was counted, in order.
        for (i, (_, counted)) in seen.iter().enumerate() {
            assert_eq!(*counted, i as u64 + 1);
        }
        assert!(mem.sync_count() >= stats.fdatasyncs);
    });
}

#[test]
fn with_remote_storage_only_archived_segments_leave_and_by_the_local_bounds() {
    run(|| async {
        let mem = MemStorage::new();
        let clock = Clock::manual(100_000_000);
        let cfg = LogConfig {
            remote_storage: true,
            // The local bound: everything sealed is old enough.
            local_retention_ms: 0,
            // The overall bound would keep everything.
            retention_ms: Some(1 << 40),
            ..config()
        };
        let log = open_with(&mem, cfg, &clock).await;
        for tag in 0..150 {
            log.append(&batch(tag, 4, 200, clock.now_ms() - 1))
                .await
                .unwrap();
        }
        let sealed: Vec<_> = log
            .log()
            .segments()
            .into_iter()
            .filter(|s| s.sealed)
            .collect();
        assert!(sealed.len() >= 3, "{sealed:?}");
        // Nothing archived: nothing leaves, whatever the bounds say.
        log.log().enforce_retention().await.unwrap();
        assert_eq!(log.log().log_start_offset(), 0);
        // The first two archived: exactly those two leave.
        log.log().set_archived_end(sealed[1].end_offset);
        log.log().enforce_retention().await.unwrap();
        assert_eq!(log.log().log_start_offset(), sealed[2].base_offset);
        assert!(mem.file_bytes(&sealed[1].path).is_none());
        assert!(mem.file_bytes(&sealed[2].path).is_some());
        // The fence never moves back.
        log.log().set_archived_end(0);
        log.log().set_archived_end(sealed[2].end_offset);
        log.log().enforce_retention().await.unwrap();
        assert_eq!(log.log().log_start_offset(), sealed[2].end_offset);
    });
}

#[test]
fn a_sealed_segment_archives_batch_for_batch_and_an_active_one_does_not() {
    use ringlog_engine::archive::{
        archive_segment, verify_all, ArchiveMeta, InvalidInput, MemberKind, NewMember,
    };
    run(|| async {
        let mem = MemStorage::new();
        let log = open_with(&mem, config(), &Clock::System).await;
        for tag in 0..40 {
            log.append(&batch(tag, 4, 200, 1)).await.unwrap();
        }
        let segments = log.log().segments();
        let meta = || ArchiveMeta {
            topic_id: [9; 16],
            topic: "t".into(),
            partition: 0,
        };
        let sealed = &segments[0];
        assert!(sealed.sealed);
        let image = mem.file_bytes(&sealed.path).unwrap();
        let len = image.len() as u64;
        let mut bytes = Vec::new();
        let archived =
            archive_segment(meta(), "k", &image[..], len, Vec::new(), &mut bytes).unwrap();
        let footer = verify_all(&bytes).unwrap().footer;
        assert_eq!(footer, archived.footer);
        assert_eq!(archived.len_bytes, bytes.len() as u64);
        // Read a few bytes at a time, so frames straddle every refill of
        // the read window: the same object.
        let mut trickled = Vec::new();
        let reader = Trickle {
            bytes: &image,
            step: 0,
        };
        archive_segment(meta(), "k", reader, len, Vec::new(), &mut trickled).unwrap();
        assert_eq!(trickled, bytes);
        // A member added by the caller (the search index) lands after the
        // records, named by the footer, with its crc checked by verify_all.
        // A member longer than one copy buffer streams through from its
        // reader, after the ones before it.
        let member = b"a search index".to_vec();
        let streamed: Vec<u8> = (0..(5 << 20) / 2 + 7).map(|i| (i % 251) as u8).collect();
        let members = |streamed_len_bytes: u64| {
            vec![
                NewMember::from_bytes(MemberKind::SEARCH_INDEX, member.clone()),
                NewMember {
                    kind: MemberKind(77),
                    len_bytes: streamed_len_bytes,
                    bytes: Box::new(std::io::Cursor::new(streamed.clone())),
                },
            ]
        };
        let mut with_member = Vec::new();
        let archived_with = archive_segment(
            meta(),
            "k",
            &image[..],
            len,
            members(streamed.len() as u64),
            &mut with_member,
        )
        .unwrap();
        let footer_with = verify_all(&with_member).unwrap().footer;
        assert_eq!(footer_with, archived_with.footer);
        assert_eq!(archived_with.len_bytes, with_member.len() as u64);
        for (kind, bytes) in [
            (MemberKind::SEARCH_INDEX, &member),
            (MemberKind(77), &streamed),
        ] {
            let range = footer_with.member(kind).unwrap().range();
            assert_eq!(
                &with_member[range.start as usize..range.end as usize],
                &bytes[..]
            );
        }
        // A reader that ends sooner or runs longer than the length it
        // declared is an error naming the member, never a footer that lies.
        for wrong_len_bytes in [streamed.len() as u64 + 1, streamed.len() as u64 - 1] {
            let e = archive_segment(
                meta(),
                "k",
                &image[..],
                len,
                members(wrong_len_bytes),
                &mut Vec::new(),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("writing member kind 77"), "{e}");
        }
        assert!(footer.member(MemberKind::SEARCH_INDEX).is_none());
        assert_eq!(
            (footer.first_offset, footer.last_offset + 1),
            (sealed.base_offset, sealed.end_offset)
        );
        // The records member is the segment's batches as read back.
        let read = log.log().read(0, usize::MAX).await.unwrap();
        let stored: Vec<u8> = read
            .iter()
            .take_while(|(h, _)| h.base_offset < sealed.end_offset)
            .flat_map(|(_, payload)| payload.to_vec())
            .collect();
        assert!(bytes.starts_with(&stored));
        let active = segments.last().unwrap();
        assert!(!active.sealed);
        let image = mem.file_bytes(&active.path).unwrap();
        let len = image.len() as u64;
        match archive_segment(meta(), "k", &image[..], len, Vec::new(), &mut Vec::new()) {
            Err(Error::Archive { object, error }) => {
                assert_eq!(object, "k");
                assert_eq!(
                    error,
                    ringlog_engine::archive::ArchiveError::Invalid(InvalidInput::SegmentNotSealed)
                );
            }
            other => panic!("an active segment archived: {:?}", other.map(|_| ())),
        }
    });
}

/// A reader that hands out 1 to 7 bytes per call.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.step += 1;
        let n = (self.step % 7 + 1).min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}
