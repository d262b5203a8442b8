//! Property: whatever sequence of appends, syncs, rolls, retention,
//! DeleteRecords and crashes (at a random point, tearing unsynced writes at
//! a random byte), the reopened log holds every acknowledged append still
//! above the log start, in order, with contiguous offsets — and anything
//! beyond is an in-order prefix of the unacknowledged appends, never
//! garbage. The log start never goes below an offset that
//! `delete_records_below` returned, unless the data up to it was never
//! durable and the log restarts at its end.
//!
//! Some appends come from three idempotent producers (with resends of
//! earlier batches and epoch bumps): a resend within a producer's retained
//! batches is answered with the original offsets and not written, and
//! after every crash the rebuilt producer state never contradicts the
//! batches the log holds — a producer is unknown, or known with exactly
//! the last of its batches — so its next sequence is always accepted.

mod common;

use common::{batch, producer_batch, read_all, run};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::{AppendError, PartitionLog};
use ringlog_engine::producer::{sequence_after, BatchRecord, ProducerError};
use ringlog_engine::{Clock, FlushPolicy, LogConfig};
use std::collections::HashMap;

/// Idempotent producers in play (ids 0..PRODUCERS).
const PRODUCERS: u8 = 3;

const DIR: &str = "/data/topics/p/0";

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: usize,
        value_bytes: usize,
        /// From this idempotent producer, with its next sequence.
        producer: Option<u8>,
    },
    /// An idempotent producer resends its batch `back` places before its
    /// last one.
    Resend {
        producer: u8,
        back: u8,
    },
    /// An idempotent producer moves to its next epoch (sequences restart
    /// at 0 with its next batch).
    Bump {
        producer: u8,
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
        8 => (1usize..6, 1usize..1500, prop::option::of(0..PRODUCERS))
            .prop_map(|(records, value_bytes, producer)| Op::Append { records, value_bytes, producer }),
        2 => (0..PRODUCERS, 0u8..7).prop_map(|(producer, back)| Op::Resend { producer, back }),
        1 => (0..PRODUCERS).prop_map(|producer| Op::Bump { producer }),
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
    /// Producer fields and bytes of the idempotent appends, by tag.
    produced: HashMap<u64, (u8, i16, BatchRecord, Vec<u8>)>,
    /// Each producer's epoch and next sequence.
    producers: Vec<(i16, i32)>,
}

impl Model {
    /// A producer's appends still in the model (also those below the log
    /// start) in the epoch of its last one, oldest first, with their bytes.
    fn batches_of(&self, producer: u8) -> Vec<(BatchRecord, &[u8])> {
        let mine: Vec<_> = self
            .appended
            .iter()
            .filter_map(|(_, tag, _)| self.produced.get(tag))
            .filter(|(p, ..)| *p == producer)
            .collect();
        let Some(&&(_, last_epoch, ..)) = mine.last() else {
            return Vec::new();
        };
        mine.into_iter()
            .filter(|(_, epoch, ..)| *epoch == last_epoch)
            .map(|(_, _, record, bytes)| (*record, bytes.as_slice()))
            .collect()
    }

    /// After a crash: each producer continues after its last surviving
    /// batch (a bumped epoch whose batches were all lost starts over at 0).
    fn resume_producers(&mut self) {
        for producer in 0..PRODUCERS {
            let last = self
                .appended
                .iter()
                .rev()
                .find_map(|(_, tag, _)| self.produced.get(tag).filter(|p| p.0 == producer))
                .map(|(_, epoch, record, _)| (*epoch, record.last_seq));
            let (epoch, next_seq) = &mut self.producers[producer as usize];
            match last {
                Some((e, last_seq)) if e == *epoch => *next_seq = sequence_after(last_seq, 1),
                Some(_) => *next_seq = 0,
                None => {}
            }
        }
    }
}

/// The producer state never contradicts the model: unknown, or in the
/// epoch of the producer's last batch holding a run of its last batches.
fn check_producers(log: &PartitionLog<MemStorage>, model: &Model) -> Result<(), TestCaseError> {
    for producer in 0..PRODUCERS {
        let batches = model.batches_of(producer);
        let Some((epoch, retained)) = log.producer(producer as i64) else {
            continue;
        };
        let Some(&&(_, last_epoch, ..)) = model
            .appended
            .iter()
            .filter_map(|(_, tag, _)| model.produced.get(tag))
            .filter(|(p, ..)| *p == producer)
            .collect::<Vec<_>>()
            .last()
        else {
            return Err(TestCaseError::fail(format!(
                "producer {producer} known as {retained:?} without a batch in the log"
            )));
        };
        prop_assert_eq!(epoch, last_epoch, "producer {}", producer);
        prop_assert!(
            !retained.is_empty() && retained.len() <= batches.len().min(5),
            "producer {}: {:?} of {:?}",
            producer,
            retained,
            batches
        );
        let tail: Vec<BatchRecord> = batches[batches.len() - retained.len()..]
            .iter()
            .map(|(r, _)| *r)
            .collect();
        prop_assert_eq!(&retained, &tail, "producer {}", producer);
    }
    Ok(())
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
        produced: HashMap::new(),
        producers: vec![(0, 0); PRODUCERS as usize],
    };
    let mut next_tag = 0u64;
    for op in case.ops {
        match op {
            Op::Append {
                records,
                value_bytes,
                producer,
            } => {
                let expected_base = log.log().next_offset();
                let bytes = match producer {
                    None => batch(next_tag, records, value_bytes, clock.now_ms()),
                    Some(p) => {
                        let (epoch, seq) = model.producers[p as usize];
                        let ids = (p as i64, epoch, seq);
                        producer_batch(next_tag, records, value_bytes, clock.now_ms(), ids)
                    }
                };
                let appended = log.append(&bytes).await.unwrap();
                prop_assert!(!appended.duplicate, "a new sequence is new data");
                prop_assert_eq!(appended.base_offset, expected_base);
                if let Some(p) = producer {
                    let (epoch, seq) = &mut model.producers[p as usize];
                    let last_seq = sequence_after(*seq, records as i32 - 1);
                    let record = BatchRecord {
                        first_seq: *seq,
                        last_seq,
                        base_offset: expected_base,
                        offset_count: records as u32,
                    };
                    model.produced.insert(next_tag, (p, *epoch, record, bytes));
                    *seq = sequence_after(last_seq, 1);
                }
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
            Op::Resend { producer, back } => {
                let batches = model.batches_of(producer);
                let Some((_, retained)) = log.producer(producer as i64) else {
                    continue; // unknown: a resend would be new data
                };
                let Some(k) = batches.len().checked_sub(1 + back as usize) else {
                    continue;
                };
                let (record, bytes) = batches[k];
                let end = log.log().next_offset();
                let got = log.append(bytes).await;
                if k + retained.len() >= batches.len() {
                    let got = got.unwrap();
                    prop_assert!(got.duplicate, "resend of {:?}: {:?}", record, got);
                    prop_assert_eq!(got.base_offset, record.base_offset);
                    prop_assert_eq!(got.last_offset, record.last_offset());
                } else {
                    let refused = matches!(
                        got,
                        Err(AppendError::Producer(
                            ProducerError::OutOfOrderSequence { .. }
                        ))
                    );
                    prop_assert!(
                        refused,
                        "resend of {:?} beyond the window: {:?}",
                        record,
                        got
                    );
                }
                prop_assert_eq!(log.log().next_offset(), end, "a resend writes nothing");
            }
            Op::Bump { producer } => {
                let (epoch, seq) = &mut model.producers[producer as usize];
                *epoch += 1;
                *seq = 0;
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
                model.resume_producers();
                check_producers(&log, &model)?;
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
