//! A search never waits for a shard's indexer (issue 14). The indexer
//! runs under `SCHED_IDLE`, so while produce keeps every core busy it
//! may not run for seconds; searches are planned by the normal-priority
//! searcher thread from what the indexer last published. Here the
//! indexer is stalled inside its loop (the `search-indexer-loop` fault
//! point, feature `failpoints`) and a search still answers at once with
//! what was committed before; once the indexer runs again, what was fed
//! meanwhile becomes searchable too.
//!
//! The stall also builds a backlog: a busy partition's batches queued
//! ahead of a quiet partition's one record. The indexer takes partitions
//! in turn and commits the least changed tail first, so the quiet record
//! is searchable long before a record a quarter into the backlog (in
//! arrival order it waited for all of it; with turns but commits in name
//! order, for the busy tail's 4.4 s commit in a debug build).
//!
//! Run with `cargo test -p ringlog-shard --features failpoints --test
//! search_stalled_indexer`.

use bytes::Bytes;
use crossbeam_channel::bounded;
use ringlog_engine::batch::set_base_offset;
use ringlog_engine::codec::Codec;
use ringlog_engine::records::{build_records_batch, NewRecord};
use ringlog_shard::search::{AppendedBatch, SearchHub, SearchRequest};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a search may take here, and the stall may last: a search
/// against a stalled indexer used to fail only after the hub's 10 s
/// timeout.
const DEADLINE: Duration = Duration::from_secs(5);
/// How long indexing may take before a record is searchable. Generous:
/// the indexer runs under `SCHED_IDLE`, so whatever else keeps the
/// host's cores busy delays it (a debug build on a busy 2-core host took
/// over 5 s). What the tests check is order, not speed.
const INDEXED_WITHIN: Duration = Duration::from_secs(60);

/// Fault points are set for the whole process: one test at a time.
static FAULT_POINTS: Mutex<()> = Mutex::new(());

fn fault_points() -> MutexGuard<'static, ()> {
    FAULT_POINTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Feeds one batch of `values` (records from `base_offset` on) of
/// partition `partition` of topic "t" to shard 0's indexer.
fn feed(hub: &SearchHub, partition: u32, base_offset: u64, values: &[&str]) {
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .map(|value| NewRecord {
            timestamp_ms: 1_700_000_000_000 + base_offset as i64,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .collect();
    let mut batch = build_records_batch(Codec::None, &records);
    set_base_offset(&mut batch, base_offset);
    let appended = AppendedBatch {
        topic: Arc::from("t"),
        partition,
        base_offset,
        log_append_time_ms: None,
        batch: Bytes::from(batch),
    };
    hub.feed(0, appended, base_offset + values.len() as u64 - 1);
}

/// Stalls the indexer at its next turn of its loop, once it gets there;
/// sending on (or dropping) the returned sender releases it.
fn stall_indexer() -> crossbeam_channel::Sender<()> {
    let (reached, stalled) = bounded(1);
    let (release, released) = bounded::<()>(1);
    fail::cfg_callback("search-indexer-loop", move || {
        let _ = reached.try_send(());
        let _ = released.recv_timeout(DEADLINE);
    })
    .unwrap();
    stalled
        .recv_timeout(DEADLINE)
        .expect("the indexer reached its fault point");
    release
}

fn release_indexer(release: &crossbeam_channel::Sender<()>) {
    fail::remove("search-indexer-loop");
    release.send(()).unwrap();
}

/// The offsets `q` finds now.
fn search(hub: &SearchHub, q: &str) -> Vec<u64> {
    let request = SearchRequest {
        q: q.to_string(),
        limit: 10,
        ..SearchRequest::default()
    };
    let found = hub.search("t", &request).expect("the search answers");
    found.hits.iter().map(|h| h.offset).collect()
}

/// Polls (every 10 ms, bounded by [`INDEXED_WITHIN`]) until `q` finds
/// `offsets`.
fn await_found(hub: &SearchHub, q: &str, offsets: &[u64]) {
    let start = Instant::now();
    while search(hub, q) != offsets {
        assert!(
            start.elapsed() < INDEXED_WITHIN,
            "{q} not found at {offsets:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_search_answers_while_the_indexer_is_stalled() {
    let _one_at_a_time = fault_points();
    let hub = SearchHub::start(1, 64 << 20, scratch_dir()).unwrap();
    feed(&hub, 0, 0, &["zqbefore stall"]);
    await_found(&hub, "zqbefore", &[0]);

    let release = stall_indexer();
    feed(&hub, 0, 1, &["zqduring stall"]);

    let start = Instant::now();
    assert_eq!(search(&hub, "zqbefore"), vec![0]);
    assert_eq!(search(&hub, "zqduring"), Vec::<u64>::new());
    assert!(start.elapsed() < DEADLINE, "{:?}", start.elapsed());

    release_indexer(&release);
    await_found(&hub, "zqduring", &[1]);
}

fn scratch_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

#[test]
fn a_quiet_partition_is_searchable_before_a_busy_partitions_backlog() {
    let _one_at_a_time = fault_points();
    const BUSY_BATCHES: u64 = 400;
    const RECORDS_PER_BATCH: u64 = 16;
    /// The busy batch whose last record carries `zqearly`: a quarter in.
    const EARLY_BATCH: u64 = 100;
    let hub = SearchHub::start(1, 64 << 20, scratch_dir()).unwrap();
    let release = stall_indexer();
    // ~26 MB of busy records, each value 4 KiB of distinct words, queued
    // first.
    let words: String = (0..800).map(|w| format!("w{w} ")).collect();
    for batch in 0..BUSY_BATCHES {
        let values: Vec<String> = (0..RECORDS_PER_BATCH)
            .map(
                |r| match batch == EARLY_BATCH && r + 1 == RECORDS_PER_BATCH {
                    true => format!("{words} zqearly"),
                    false => words.clone(),
                },
            )
            .collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        feed(&hub, 0, batch * RECORDS_PER_BATCH, &values);
    }
    feed(&hub, 1, 0, &["zqquiet record"]);
    release_indexer(&release);

    await_found(&hub, "zqquiet", &[0]);
    // In arrival order the quiet record was indexed after the whole
    // backlog, and the busy tail commits at least every 500 ms, so a
    // record a quarter into the backlog was searchable long before it. In
    // turn, the quiet record is indexed second and committed at the next
    // check; the busy partition is ~100 batches (6.5 MB) from `zqearly`.
    assert_eq!(
        search(&hub, "zqearly"),
        Vec::<u64>::new(),
        "the quiet partition's record waited for the busy backlog"
    );
}
