//! Property: whatever sequence of appends, syncs, rolls, retention,
//! DeleteRecords and crashes (at a random point, tearing unsynced writes at
//! a random byte), the reopened log holds every acknowledged append still
//! above the log start, in order, with contiguous offsets — and anything
//! beyond is an in-order prefix of the unacknowledged appends, never
//! garbage. The log start never goes below an offset that
//! `delete_records_below` returned, unless the data up to it was never
//! durable and the log restarts at its end.

mod common;

use common::{batch, read_all, run};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, FlushPolicy, LogConfig};

const DIR: &str = "/data/topics/p/0";

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: usize,
        value_bytes: usize,
    },
    Sync,
    /// Advance the clock and run maintenance (age rolls, retention).
    Tick {
        ms: i64,
    },
    Crash {
        seed: u64,
    },
    /// DeleteRecords at a point between the log start and the high
    /// watermark (`pick` scaled into that range).
    DeleteRecords {
        pick: u64,
    },
    /// Live reconfigure (AlterConfigs) of `segment.bytes`; later reopens
    /// use the new value, as a broker would.
    Resize {
        segment_bytes: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..6, 1usize..1500).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        2 => Just(Op::Sync),
        1 => (1i64..40_000).prop_map(|ms| Op::Tick { ms }),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => any::<u64>().prop_map(|pick| Op::DeleteRecords { pick }),
        1 => (16u64 * 1024..48 * 1024).prop_map(|segment_bytes| Op::Resize { segment_bytes }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    always: bool,
    retention_bytes: Option<u64>,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::option::of(40_000u64..120_000),
        prop::collection::vec(op(), 1..80),
    )
        .prop_map(|(always, retention_bytes, ops)| Case {
            always,
            retention_bytes,
            ops,
        })
}

fn config(case: &Case) -> LogConfig {
    LogConfig {
        segment_bytes: 24 * 1024,
        segment_ms: 60_000,
        write_buffer_bytes: 24 * 1024,
        max_payload_bytes: 12 * 1024,
        index_interval_bytes: 1024,
        retention_bytes: case.retention_bytes,
        retention_ms: Some(30 * 60_000),
        flush_policy: if case.always {
            FlushPolicy::Always
        } else {
            FlushPolicy::IntervalMs(1 << 40)
        },
        ..LogConfig::default()
    }
}

/// Every append the model knows of — (base offset, tag, offsets) — and how
/// many of them are acknowledged (a prefix).
struct Model {
    appended: Vec<(u64, u64, u64)>,
    acked: usize,
    /// The largest log start `delete_records_below` returned.
    deleted_below: u64,
}

async fn check_case(case: Case) -> Result<(), TestCaseError> {
    let clock = Clock::manual(1_700_000_000_000);
    let mut mem = MemStorage::new();
    let mut cfg = config(&case);
    let mut log = PartitionLog::open(mem.clone(), DIR, cfg.clone(), clock.clone())
        .await
        .unwrap();
    let mut model = Model {
        appended: Vec::new(),
        acked: 0,
        deleted_below: 0,
    };
    let mut next_tag = 0u64;
    for op in case.ops {
        match op {
            Op::Append {
                records,
                value_bytes,
            } => {
                let expected_base = log.log().next_offset();
                let appended = log
                    .append(&batch(next_tag, records, value_bytes, clock.now_ms()))
                    .await
                    .unwrap();
                prop_assert_eq!(appended.base_offset, expected_base);
                prop_assert_eq!(appended.last_offset, expected_base + records as u64 - 1);
                model
                    .appended
                    .push((appended.base_offset, next_tag, records as u64));
                next_tag += 1;
                if case.always {
                    model.acked = model.appended.len();
                }
            }
            Op::Sync => {
                log.log().sync().await.unwrap();
                model.acked = model.appended.len();
            }
            Op::Tick { ms } => {
                clock.advance_ms(ms);
                log.log().maintain().await.unwrap();
                // A roll seals (fdatasyncs) everything before the new segment.
                if log.log().durable_offset() == log.log().next_offset() {
                    model.acked = model.appended.len();
                }
            }
            Op::DeleteRecords { pick } => {
                let start = log.log().log_start_offset();
                let high_watermark = log.log().high_watermark();
                let offset = start + pick % (high_watermark - start + 1);
                let new_start = log.delete_records_below(offset).await.unwrap();
                prop_assert_eq!(new_start, offset);
                prop_assert_eq!(log.log().log_start_offset(), offset);
                model.deleted_below = model.deleted_below.max(new_start);
            }
            Op::Resize { segment_bytes } => {
                cfg.segment_bytes = segment_bytes;
                log.reconfigure(cfg.clone()).unwrap();
            }
            Op::Crash { seed } => {
                drop(log);
                mem = mem.crash(seed);
                log = PartitionLog::open(mem.clone(), DIR, cfg.clone(), clock.clone())
                    .await
                    .unwrap();
                let start = log.log().log_start_offset();
                prop_assert!(
                    start >= model.deleted_below.min(log.log().next_offset()),
                    "log start {} below a returned DeleteRecords offset {}",
                    start,
                    model.deleted_below
                );
                model.deleted_below = start;
                let got = read_all(&log).await;
                // A batch straddling the log start is still read whole.
                let live_entries: Vec<(u64, u64, u64)> = model
                    .appended
                    .iter()
                    .copied()
                    .filter(|&(base, _, count)| base + count > start)
                    .collect();
                let live: Vec<(u64, u64)> = live_entries
                    .iter()
                    .map(|&(base, tag, _)| (base, tag))
                    .collect();
                let acked_live = model.acked - (model.appended.len() - live.len()).min(model.acked);
                // Every acknowledged append still in retention is there, in order.
                prop_assert!(
                    got.len() >= acked_live,
                    "lost acknowledged appends: got {} of {}",
                    got.len(),
                    acked_live
                );
                prop_assert_eq!(&got[..acked_live], &live[..acked_live]);
                // Beyond that: a prefix of the unacknowledged appends.
                prop_assert!(got.len() <= live.len(), "more appends than were made");
                prop_assert_eq!(&got[..], &live[..got.len()]);
                // Offsets are contiguous and the log end follows the last batch.
                let end = got
                    .len()
                    .checked_sub(1)
                    .map_or(start, |last| live_entries[last].0 + live_entries[last].2);
                prop_assert_eq!(log.log().next_offset(), end);
                // The recovered log is the new truth: durable, and appends continue after it.
                let kept = model.appended.len() - live.len() + got.len();
                model.appended.truncate(kept);
                model.acked = kept;
            }
        }
    }
    Ok(())
}

#[test]
fn acknowledged_appends_survive_any_crash() {
    run(|| async {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(96);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&case(), |case| {
                futures_lite::future::block_on(check_case(case))
            })
            .unwrap();
    });
}
