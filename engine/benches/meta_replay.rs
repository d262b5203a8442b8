//! Metadata log replay benchmark (custom harness: `harness = false`).
//!
//! Builds, once, a snapshot-less metadata log of 1,000,000 events on the
//! real disk (98% `PartitionPlaced`, 1% `TopicCreated` with 64 partitions
//! and two configs, 1% `TopicConfigChanged`), then times `MetaLog::open`
//! — log recovery plus the replay of every event into the state — several
//! times, reading through `DmaStorage` (`O_DIRECT`, so no run is served
//! from the page cache). For reference it also times reading the frames
//! without applying them (the I/O floor), and both again from the same
//! bytes in `MemStorage` (the CPU-only ceiling). Prints each disk replay,
//! and the median, min and max in events/s of every measurement. Run with
//! `cargo bench -p ringlog-engine --bench meta_replay`.
//!
//! Environment:
//!
//! | variable               | default                                  | meaning                        |
//! |------------------------|------------------------------------------|--------------------------------|
//! | `RINGLOG_BENCH_DIR`    | `<target>/tmp/bench-meta-replay`         | directory on the disk to use   |
//! | `RINGLOG_BENCH_EVENTS` | 1000000                                  | events in the log              |
//! | `RINGLOG_BENCH_RUNS`   | 7                                        | timed replays per backend      |

mod bench_util;

use bench_util::{env_u64, fresh_bench_dir, selected, Spread};
use glommio::LocalExecutorBuilder;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::io::mem::SplitMix;
use ringlog_engine::io::Storage;
use ringlog_engine::meta::{
    encode_event, log_dir, MetaConfig, MetaEvent, MetaLog, PartitionPlaced, TopicConfigChanged,
    TopicCreated,
};
use ringlog_engine::{Clock, Log};
use std::path::Path;
use std::time::{Duration, Instant};

const PARTITIONS_PER_TOPIC: u32 = 64;

fn topic_name(k: u64) -> String {
    format!("bench-topic-{k:06}")
}

/// Event `i` of the benchmark log; valid in sequence.
fn event(i: u64, topics: &mut u64, rng: &mut SplitMix) -> MetaEvent {
    match i % 100 {
        0 => {
            let k = *topics;
            *topics += 1;
            let mut topic_id = [0u8; 16];
            topic_id[..8].copy_from_slice(&(k + 1).to_le_bytes());
            MetaEvent::TopicCreated(TopicCreated {
                name: topic_name(k),
                topic_id,
                partitions: PARTITIONS_PER_TOPIC,
                configs: vec![
                    ("retention.ms".into(), "604800000".into()),
                    ("segment.bytes".into(), "1073741824".into()),
                ],
            })
        }
        50 => MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name: topic_name(rng.next() % *topics),
            set: vec![(
                "retention.ms".into(),
                format!("{}", rng.next() % 1_000_000_000),
            )],
            remove: vec!["cleanup.policy".into()],
        }),
        _ => MetaEvent::PartitionPlaced(PartitionPlaced {
            topic: topic_name(rng.next() % *topics),
            partition: (rng.next() % PARTITIONS_PER_TOPIC as u64) as u32,
            shard: (rng.next() % 2) as u32,
        }),
    }
}

/// The meta log's event log alone (no state), as `MetaLog` lays it out.
async fn open_log<S: Storage>(storage: S, meta_dir: &Path, config: &MetaConfig) -> Log<S> {
    Log::open(
        storage,
        log_dir(meta_dir),
        config.log_config(),
        Clock::System,
    )
    .await
    .expect("open log")
}

/// Writes the log once with buffered appends and one final sync (a real
/// meta log syncs every event; only the resulting bytes matter here).
async fn build(meta_dir: &Path, events: u64, config: &MetaConfig) -> u64 {
    let log = open_log(DmaStorage, meta_dir, config).await;
    let mut rng = SplitMix(42);
    let mut topics = 0;
    let start_ms = 1_700_000_000_000i64;
    for i in 0..events {
        let bytes = encode_event(&event(i, &mut topics, &mut rng)).expect("encode");
        log.append_with(bytes.len(), 1, start_ms + i as i64, |dst, _| {
            dst.copy_from_slice(&bytes)
        })
        .await
        .expect("append");
    }
    log.sync().await.expect("sync");
    let bytes: u64 = log.segments().iter().map(|s| s.size_bytes).sum();
    log.close().await.expect("close");
    bytes
}

async fn replay_once<S: Storage>(
    storage: S,
    meta_dir: &Path,
    config: &MetaConfig,
    events: u64,
) -> Duration {
    let started = Instant::now();
    let meta = MetaLog::open(storage, meta_dir, config.clone(), Clock::System)
        .await
        .expect("open meta log");
    let elapsed = started.elapsed();
    assert_eq!(meta.applied_offset(), events);
    assert_eq!(
        meta.snapshot_offset(),
        None,
        "the benchmark replays without snapshots"
    );
    assert_eq!(
        meta.with_state(|s| s.topic_count() as u64),
        events.div_ceil(100)
    );
    meta.close().await.expect("close");
    elapsed
}

fn report(label: &str, events: u64, log_bytes: u64, runs: Vec<Duration>) {
    let spread = Spread::of(runs);
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "{label}: median {:.0} events/s ({:.1} ms, {:.0} MB/s of log), min {:.0}, max {:.0} events/s over {} runs",
        rate(spread.median),
        spread.median.as_secs_f64() * 1e3,
        log_bytes as f64 / spread.median.as_secs_f64() / 1e6,
        rate(spread.max),
        rate(spread.min),
        spread.runs
    );
}

/// Opening the event log and reading every frame without applying
/// anything: the I/O-plus-crc floor under a replay.
async fn read_only_once<S: Storage>(
    storage: S,
    meta_dir: &Path,
    config: &MetaConfig,
    events: u64,
) -> Duration {
    let started = Instant::now();
    let log = open_log(storage, meta_dir, config).await;
    let mut offset = 0;
    while offset < events {
        let batches = log.read(offset, 1 << 20).await.expect("read");
        offset = batches.next_offset().expect("frames up to the end");
    }
    let elapsed = started.elapsed();
    log.close().await.expect("close");
    elapsed
}

/// The same log files, loaded into an in-memory file system.
fn load_into_mem(meta_dir: &Path) -> MemStorage {
    let mem = MemStorage::new();
    let dir = log_dir(meta_dir);
    for entry in std::fs::read_dir(&dir).expect("read log dir") {
        let path = entry.expect("dir entry").path();
        mem.set_file_bytes(&path, std::fs::read(&path).expect("read file"));
    }
    mem
}

fn main() {
    if !selected("meta_replay") {
        return;
    }
    let events = env_u64("RINGLOG_BENCH_EVENTS", 1_000_000);
    let runs = env_u64("RINGLOG_BENCH_RUNS", 7).max(1);
    let meta_dir = fresh_bench_dir("bench-meta-replay").join("meta");
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let config = MetaConfig::default();
            let started = Instant::now();
            let log_bytes = build(&meta_dir, events, &config).await;
            println!(
                "meta_replay: built {events} events ({:.1} MB, {:.1} bytes/event) in {} in {:.1} s",
                log_bytes as f64 / 1e6,
                log_bytes as f64 / events as f64,
                meta_dir.display(),
                started.elapsed().as_secs_f64()
            );
            let mut disk = Vec::new();
            for run in 0..runs {
                let took = replay_once(DmaStorage, &meta_dir, &config, events).await;
                println!(
                    "  disk run {run}: {:.1} ms, {:.0} events/s",
                    took.as_secs_f64() * 1e3,
                    events as f64 / took.as_secs_f64()
                );
                disk.push(took);
            }
            let mut disk_read = Vec::new();
            for _ in 0..runs {
                disk_read.push(read_only_once(DmaStorage, &meta_dir, &config, events).await);
            }
            let mem = load_into_mem(&meta_dir);
            let mut memory = Vec::new();
            let mut memory_read = Vec::new();
            for _ in 0..runs {
                memory.push(replay_once(mem.clone(), &meta_dir, &config, events).await);
                memory_read.push(read_only_once(mem.clone(), &meta_dir, &config, events).await);
            }
            report("meta_replay disk (DmaStorage)", events, log_bytes, disk);
            report(
                "  reference: disk, read frames only, no apply",
                events,
                log_bytes,
                disk_read,
            );
            report(
                "  reference: memory (MemStorage, CPU only)",
                events,
                log_bytes,
                memory,
            );
            report(
                "  reference: memory, read frames only, no apply",
                events,
                log_bytes,
                memory_read,
            );
        })
        .expect("spawn executor")
        .join()
        .expect("executor thread");
}
