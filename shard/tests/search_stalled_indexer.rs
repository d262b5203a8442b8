//! A search never waits for a shard's indexer (issue 14). The indexer
//! runs under `SCHED_IDLE`, so while produce keeps every core busy it
//! may not run for seconds; searches are planned by the normal-priority
//! searcher thread from what the indexer last published. Here the
//! indexer is stalled inside its loop (the `search-indexer-loop` fault
//! point, feature `failpoints`) and a search still answers at once with
//! what was committed before; once the indexer runs again, what was fed
//! meanwhile becomes searchable too.
//!
//! Run with `cargo test -p ringlog-shard --features failpoints --test
//! search_stalled_indexer`.

use bytes::Bytes;
use crossbeam_channel::bounded;
use ringlog_engine::batch::set_base_offset;
use ringlog_engine::codec::Codec;
use ringlog_engine::records::{build_records_batch, NewRecord};
use ringlog_shard::search::{AppendedBatch, SearchHub, SearchRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a search or the indexer may take here: generous, since a
/// search against a stalled indexer used to fail only after the hub's
/// 10 s timeout.
const DEADLINE: Duration = Duration::from_secs(5);

fn feed(hub: &SearchHub, base_offset: u64, value: &str) {
    let record = NewRecord {
        timestamp_ms: 1_700_000_000_000 + base_offset as i64,
        key: None,
        value: Some(value.as_bytes()),
        headers: &[],
    };
    let mut batch = build_records_batch(Codec::None, &[record]);
    set_base_offset(&mut batch, base_offset);
    let appended = AppendedBatch {
        topic: Arc::from("t"),
        partition: 0,
        base_offset,
        log_append_time_ms: None,
        batch: Bytes::from(batch),
    };
    hub.feed(0, appended, base_offset);
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

/// Polls (every 10 ms, bounded by [`DEADLINE`]) until `q` finds
/// `offsets`.
fn await_found(hub: &SearchHub, q: &str, offsets: &[u64]) {
    let start = Instant::now();
    while search(hub, q) != offsets {
        assert!(start.elapsed() < DEADLINE, "{q} not found at {offsets:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_search_answers_while_the_indexer_is_stalled() {
    let scratch = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let hub = SearchHub::start(1, 64 << 20, scratch).unwrap();
    feed(&hub, 0, "zqbefore stall");
    await_found(&hub, "zqbefore", &[0]);

    // The indexer's next turn of its loop blocks until released.
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
    feed(&hub, 1, "zqduring stall");

    let start = Instant::now();
    assert_eq!(search(&hub, "zqbefore"), vec![0]);
    assert_eq!(search(&hub, "zqduring"), Vec::<u64>::new());
    assert!(start.elapsed() < DEADLINE, "{:?}", start.elapsed());

    fail::remove("search-indexer-loop");
    release.send(()).unwrap();
    await_found(&hub, "zqduring", &[1]);
}
