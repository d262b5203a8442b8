//! Restart cost of a metadata log that has seen 1,000,000 offset commits
//! (custom harness: `harness = false`).
//!
//! Issue 4's target: a restart after 1,000,000 historical offset commits
//! takes under 1 s, because snapshots bound the replay — a group that
//! commits every 100 ms for days must not slow restarts down.
//!
//! Builds, once, a metadata log on the real disk the way the broker does:
//! `MetaLog::append` of `OffsetsCommitted` events (each commits 8
//! partitions of one of 200 groups) from 256 concurrent tasks, so the
//! appends share fdatasyncs, with the default snapshot interval. Then
//! times `MetaLog::open` (newest snapshot + replay of the events after it)
//! several times through `DmaStorage` (`O_DIRECT`: no page cache), and
//! prints the build rate (commits/s, fdatasyncs per commit) and the
//! median, min and max open time. Run with
//! `cargo bench -p ringlog-engine --bench meta_restart`.
//!
//! | variable                | default                           | meaning                      |
//! |-------------------------|-----------------------------------|------------------------------|
//! | `RINGLOG_BENCH_DIR`     | `<target>/tmp/bench-meta-restart` | directory on the disk to use |
//! | `RINGLOG_BENCH_COMMITS` | 1000000                           | offset commit events         |
//! | `RINGLOG_BENCH_RUNS`    | 7                                 | timed opens                  |

mod bench_util;

use bench_util::{env_u64, fresh_bench_dir, selected, Spread};
use glommio::LocalExecutorBuilder;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::meta::{MetaConfig, MetaEvent, MetaLog, OffsetCommit, OffsetsCommitted};
use ringlog_engine::Clock;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

const GROUPS: u64 = 200;
const PARTITIONS_PER_COMMIT: u32 = 8;
const TASKS: u64 = 256;

fn commit(i: u64) -> MetaEvent {
    let group = i % GROUPS;
    MetaEvent::OffsetsCommitted(OffsetsCommitted {
        group: format!("group-{group:04}"),
        commit_ms: 1_700_000_000_000 + i as i64,
        offsets: (0..PARTITIONS_PER_COMMIT)
            .map(|partition| OffsetCommit {
                topic: format!("topic-{:03}", group % 50),
                partition,
                offset: (i / GROUPS) as i64,
                leader_epoch: 0,
                metadata: String::new(),
            })
            .collect(),
    })
}

async fn build(meta_dir: &Path, commits: u64) -> (Duration, u64) {
    let meta = Rc::new(
        MetaLog::open(DmaStorage, meta_dir, MetaConfig::default(), Clock::System)
            .await
            .expect("open meta log"),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let meta = meta.clone();
        tasks.push(glommio::spawn_local(async move {
            let mut i = task;
            while i < commits {
                meta.append(&commit(i)).await.expect("append");
                i += TASKS;
            }
        }));
    }
    for task in tasks {
        task.await;
    }
    let took = started.elapsed();
    let syncs = meta.log_stats().fdatasyncs;
    assert_eq!(meta.applied_offset(), commits);
    Rc::try_unwrap(meta)
        .ok()
        .expect("tasks done")
        .close()
        .await
        .expect("close");
    (took, syncs)
}

fn main() {
    if !selected("meta_restart") {
        return;
    }
    let commits = env_u64("RINGLOG_BENCH_COMMITS", 1_000_000);
    let runs = env_u64("RINGLOG_BENCH_RUNS", 7).max(1);
    let meta_dir = fresh_bench_dir("bench-meta-restart").join("meta");
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let (took, syncs) = build(&meta_dir, commits).await;
            println!(
                "meta_restart: {commits} offset commits ({TASKS} concurrent appenders) in {:.1} s: {:.0} commits/s, {:.3} fdatasyncs per commit",
                took.as_secs_f64(),
                commits as f64 / took.as_secs_f64(),
                syncs as f64 / commits as f64
            );
            let mut opens = Vec::new();
            for run in 0..runs {
                let started = Instant::now();
                let meta = MetaLog::open(DmaStorage, &meta_dir, MetaConfig::default(), Clock::System)
                    .await
                    .expect("reopen");
                let took = started.elapsed();
                assert_eq!(meta.applied_offset(), commits);
                let snapshot = meta.snapshot_offset().unwrap_or(0);
                let offsets: usize = meta.with_state(|s| s.groups().map(|(_, g)| g.offset_count()).sum());
                println!(
                    "  open {run}: {:.1} ms (snapshot at {snapshot}, {} events replayed, {} groups, {offsets} committed offsets)",
                    took.as_secs_f64() * 1e3,
                    commits - snapshot,
                    meta.with_state(|s| s.groups().count()),
                );
                meta.close().await.expect("close");
                opens.push(took);
            }
            let spread = Spread::of(opens);
            println!(
                "meta_restart open: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs",
                spread.median.as_secs_f64() * 1e3,
                spread.min.as_secs_f64() * 1e3,
                spread.max.as_secs_f64() * 1e3,
                spread.runs,
            );
        })
        .expect("spawn executor")
        .join()
        .expect("executor thread");
}
