//! Property: several tasks appending to one partition log at once, with
//! batches of random size up to `max.message.bytes` and I/O that yields
//! to other tasks mid-step (as the ring does), never panic and never
//! reorder. Every append is acknowledged; the log holds each acknowledged
//! batch exactly once, at offsets assigned in the order the appends began
//! (first come, first served, even when a large batch must wait for the
//! disk while small ones could still fit); and readers with any fetch
//! size, down to one byte, read every batch back in offset order with no
//! gap — a batch larger than the fetch size is returned whole.
//!
//! This is the engine half of issue 12's regression: a 500 KB batch once
//! waited behind 10 KB ones until the append loop's bound panicked the
//! shard, or got a later offset than a batch sent after it.
//!
//! `PROPTEST_CASES` sets the number of cases (CI runs the default; run it
//! longer by hand, e.g. `PROPTEST_CASES=5000 cargo test --release -p
//! ringlog-engine --test log_concurrency_prop`). The cases share one
//! executor per thread ([`ringlog_engine::fuzzing::block_on`], made for
//! the same reason): glommio 0.9 keeps one file descriptor of every
//! executor it has made, so an executor per case ran out of descriptors
//! near 20,000 cases.

mod common;

use common::{batch, tag_of};
use proptest::prelude::*;
use ringlog_engine::fuzzing::block_on;
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, FlushPolicy, LogConfig};
use std::cell::RefCell;
use std::rc::Rc;

const DIR: &str = "/data/topics/c/0";

/// Bytes a `common::batch` record adds besides its value: length,
/// attributes, timestamp and offset deltas, key and value lengths, header
/// count (varints, at most 5 bytes each here).
const RECORD_OVERHEAD_BYTES_MAX: usize = 24;
/// The RecordBatch v2 header.
const BATCH_HEADER_BYTES: usize = 61;

#[derive(Clone, Debug)]
struct Case {
    write_buffer_blocks: usize,
    segment_buffers: u64,
    io_yields: u32,
    interval_policy: bool,
    /// Per writer: its batches as (records, value bytes).
    writers: Vec<Vec<(usize, usize)>>,
    /// Fetch sizes the reader cycles through.
    fetch_bytes: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (16usize..=96, 2u64..=6, 0u32..=3, any::<bool>()).prop_flat_map(
        |(write_buffer_blocks, segment_buffers, io_yields, interval_policy)| {
            let max_payload = max_payload_bytes(write_buffer_blocks);
            let one_batch = (1usize..=20).prop_flat_map(move |records| {
                let value_max =
                    (max_payload - BATCH_HEADER_BYTES) / records - RECORD_OVERHEAD_BYTES_MAX;
                // Mostly small values, some up to the limit.
                prop_oneof![
                    3 => (Just(records), 0usize..=64.min(value_max)),
                    1 => (Just(records), 0usize..=value_max),
                ]
            });
            (
                prop::collection::vec(prop::collection::vec(one_batch, 1..=24), 1..=6),
                prop::collection::vec(
                    prop_oneof![Just(1usize), 1usize..=4096, 1usize..=max_payload * 2],
                    1..=4,
                ),
            )
                .prop_map(move |(writers, fetch_bytes)| Case {
                    write_buffer_blocks,
                    segment_buffers,
                    io_yields,
                    interval_policy,
                    writers,
                    fetch_bytes,
                })
        },
    )
}

/// The largest payload a write buffer of this many 4 KiB blocks takes
/// (what `LogConfig::validate` allows: a frame, a footer, two blocks).
fn max_payload_bytes(write_buffer_blocks: usize) -> usize {
    write_buffer_blocks * 4096 - 3 * 4096
}

fn config(case: &Case) -> LogConfig {
    let write_buffer_bytes = case.write_buffer_blocks * 4096;
    LogConfig {
        write_buffer_bytes,
        max_payload_bytes: max_payload_bytes(case.write_buffer_blocks),
        segment_bytes: write_buffer_bytes as u64 * case.segment_buffers,
        index_interval_bytes: 4096,
        retention_ms: None,
        flush_policy: if case.interval_policy {
            FlushPolicy::IntervalMs(1)
        } else {
            FlushPolicy::Always
        },
        ..LogConfig::default()
    }
}

fn tag(writer: usize, seq: usize) -> u64 {
    (writer as u64) << 32 | seq as u64
}

fn check(case: Case) {
    block_on(async move {
        let mem = MemStorage::new();
        mem.set_io_yields(case.io_yields);
        let log = Rc::new(
            PartitionLog::open(mem.clone(), DIR, config(&case), Clock::System)
                .await
                .expect("open"),
        );
        // Tags in the order their appends began.
        let begun = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for (writer, batches) in case.writers.iter().cloned().enumerate() {
            let log = log.clone();
            let begun = begun.clone();
            tasks.push(glommio::spawn_local(async move {
                for (seq, (records, value_bytes)) in batches.into_iter().enumerate() {
                    let bytes = batch(tag(writer, seq), records, value_bytes, 1_000);
                    begun.borrow_mut().push(tag(writer, seq));
                    let appended = log.append(&bytes).await.expect("append acknowledged");
                    assert!(!appended.duplicate);
                }
            }));
        }
        for task in tasks {
            task.await;
        }
        log.log().sync().await.expect("sync");
        let begun = begun.borrow().clone();
        let total: usize = case.writers.iter().map(Vec::len).sum();
        assert_eq!(begun.len(), total);

        // Read everything back, cycling through the fetch sizes.
        let mut read = Vec::new();
        let mut offset = log.log().log_start_offset();
        let end = log.log().high_watermark();
        for round in 0..=total {
            if offset == end {
                break;
            }
            let max_bytes = case.fetch_bytes[round % case.fetch_bytes.len()];
            let batches = log.log().read(offset, max_bytes).await.expect("read");
            assert!(!batches.is_empty(), "nothing read at {offset} below {end}");
            let mut payload = 0;
            for (frame, bytes) in batches.iter() {
                assert_eq!(frame.base_offset, offset, "gap or overlap at {offset}");
                assert!(
                    payload == 0 || payload + bytes.len() <= max_bytes,
                    "a second batch past max_bytes {max_bytes}"
                );
                payload += bytes.len();
                read.push(tag_of(bytes));
                offset += frame.count as u64;
            }
        }
        assert_eq!(offset, end, "read did not reach the high watermark");
        assert_eq!(read, begun, "offsets not in the order the appends began");
    });
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn concurrent_appends_of_any_size_are_kept_in_arrival_order(case in case()) {
        check(case);
    }
}

/// The shape of the reported failure, fixed: 10 KB batches from several
/// writers while one writer sends batches as large as the buffer allows.
#[test]
fn a_largest_batch_is_not_starved_by_small_ones() {
    let blocks = 64;
    let max_payload = max_payload_bytes(blocks);
    let large = (
        1,
        max_payload - BATCH_HEADER_BYTES - RECORD_OVERHEAD_BYTES_MAX,
    );
    let mut writers = vec![vec![large; 12]];
    writers.extend((0..4).map(|_| vec![(10, 1000); 40]));
    check(Case {
        write_buffer_blocks: blocks,
        segment_buffers: 4,
        io_yields: 2,
        interval_policy: false,
        writers,
        fetch_bytes: vec![1, 100_000],
    });
}
