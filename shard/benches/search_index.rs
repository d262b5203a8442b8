//! Search indexing throughput (custom harness: `harness = false`).
//!
//! Indexes `RINGLOG_BENCH_BYTES` (default 64 MiB) of ~1 KiB JSON records
//! (16 per uncompressed batch; a user, an action, a number and a message
//! of words from a 2,000-word vocabulary) two ways:
//!
//! * **tail**: a [`TailIndex`], committing every 4 MiB of records (a
//!   partition taking 8 MB/s under the 500 ms commit interval);
//! * **segment**: a [`SegmentIndexBuilder`] spilling to a scratch file in
//!   the target directory, then `finish` (write the blob's head), as a
//!   sealed segment is indexed for its archive.
//!
//! Each prints MB/s of record bytes (keys and values; MB = 10^6 bytes) by
//! wall time and per core (by the process's CPU time, tantivy's threads
//! included). Run with `cargo bench -p ringlog-shard --bench search_index`.

use ringlog_engine::batch::set_base_offset;
use ringlog_engine::codec::Codec;
use ringlog_engine::records::{build_records_batch, NewRecord};
use ringlog_shard::search::{SegmentIndexBuilder, TailIndex, TAIL_COMMIT_INTERVAL_MS};
use std::time::{Duration, Instant};

const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const VOCABULARY_WORDS: u64 = 2000;
const TAIL_COMMIT_BYTES: usize = 4 << 20;

/// The process's user plus system CPU time.
fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The batches, and the record bytes they hold.
fn batches(total_bytes: usize) -> (Vec<Vec<u8>>, usize) {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = Vec::new();
    let mut record_bytes = 0;
    let mut offset = 0u64;
    while record_bytes < total_bytes {
        let mut values = Vec::with_capacity(RECORDS_PER_BATCH);
        let mut keys = Vec::with_capacity(RECORDS_PER_BATCH);
        for _ in 0..RECORDS_PER_BATCH {
            let mut message = String::new();
            while message.len() < RECORD_BYTES - 120 {
                message.push_str(&format!("w{} ", next() % VOCABULARY_WORDS));
            }
            let value = format!(
                r#"{{"user":"user{}","action":"a{}","n":{},"msg":"{}"}}"#,
                next() % 10_000,
                next() % 20,
                next() % 1_000_000,
                message.trim_end()
            );
            keys.push(format!("user{}", next() % 10_000));
            values.push(value);
        }
        let records: Vec<NewRecord<'_>> = values
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (value, key))| NewRecord {
                timestamp_ms: 1_700_000_000_000 + (offset as i64) + i as i64,
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
                headers: &[],
            })
            .collect();
        record_bytes += keys.iter().chain(&values).map(String::len).sum::<usize>();
        let mut batch = build_records_batch(Codec::None, &records);
        set_base_offset(&mut batch, offset);
        offset += RECORDS_PER_BATCH as u64;
        out.push(batch);
    }
    (out, record_bytes)
}

fn report(name: &str, record_bytes: usize, wall: Duration, cpu: Duration) {
    let mb = record_bytes as f64 / 1e6;
    println!(
        "{name:<8} {mb:8.1} MB  wall {:7.2} s  {:7.1} MB/s  cpu {:7.2} s  {:7.1} MB/s per core",
        wall.as_secs_f64(),
        mb / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        mb / cpu.as_secs_f64()
    );
}

fn main() {
    let total_bytes = std::env::var("RINGLOG_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 20);
    let (batches, record_bytes) = batches(total_bytes);

    let (wall, cpu) = (Instant::now(), cpu_time());
    let mut tail = TailIndex::new(0).expect("tail index");
    let mut since_commit = 0;
    let mut now_ms = 0;
    for batch in &batches {
        tail.add_batch(batch).expect("indexed");
        since_commit += batch.len();
        if since_commit >= TAIL_COMMIT_BYTES {
            now_ms += TAIL_COMMIT_INTERVAL_MS;
            tail.commit_if_due(now_ms).expect("committed");
            since_commit = 0;
        }
    }
    tail.commit_if_due(now_ms + TAIL_COMMIT_INTERVAL_MS)
        .expect("committed");
    report("tail", record_bytes, wall.elapsed(), cpu_time() - cpu);
    drop(tail);

    // As an archive's index is built: in chunks, spilled to a scratch
    // file on the data disk (here the build's target directory).
    let scratch = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let (wall, cpu) = (Instant::now(), cpu_time());
    let mut builder = SegmentIndexBuilder::spilling(0, &scratch).expect("segment index");
    for batch in &batches {
        builder.add_batch(batch).expect("indexed");
    }
    let blob_bytes = builder.finish().expect("finished").len_bytes();
    report("segment", record_bytes, wall.elapsed(), cpu_time() - cpu);
    println!(
        "segment blob {:.1} MB ({:.0}% of the record bytes)",
        blob_bytes as f64 / 1e6,
        100.0 * blob_bytes as f64 / record_bytes as f64
    );
}
