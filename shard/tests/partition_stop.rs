//! A broken invariant stops one partition, not the shard or the process
//! (issue 12). The engine's `log-append` fault point (feature
//! `failpoints`, test builds only) panics inside one partition's append;
//! that partition then answers KAFKA_STORAGE_ERROR to produce and fetch
//! while another partition on the same shard keeps serving both, the
//! metric counts the stop, and a restart recovers the stopped partition
//! with everything it had acknowledged.
//!
//! Run with `cargo test -p ringlog-shard --features failpoints --test
//! partition_stop`.

mod common;

use common::{create_topic, fetch_from_start, Client, Server};
use kafka_protocol::messages::*;
use ringlog_engine::batch::{build_batch, BatchView};
use ringlog_protocol::batches;
use std::path::PathBuf;
use std::sync::Arc;

const KAFKA_STORAGE_ERROR: i16 = 56;

fn produce(client: &mut Client, topic: &str, partition: i32, value: &[u8]) -> i16 {
    common::produce_batch(client, 9, topic, partition, build_batch(1, &[value])).error_code
}

/// The error code and the record count of a fetch from offset 0.
fn fetch(client: &mut Client, topic: &str, partition: i32) -> (i16, i32) {
    let ResponseKind::Fetch(response) = client.call(12, fetch_from_start(topic, partition)) else {
        panic!("not Fetch");
    };
    let data = &response.responses[0].partitions[0];
    let records = data.records.clone().unwrap_or_default();
    let count = batches(&records)
        .map(|b| BatchView::parse(&b.unwrap()).unwrap().record_count())
        .sum();
    (data.error_code, count)
}

fn stopped_metric(metrics: &ringlog_shard::metrics::Metrics) -> bool {
    metrics
        .encode()
        .contains("ringlog_partitions_stopped_total{shard=\"0\"} 1")
}

#[test]
fn a_panic_in_one_partition_stops_that_partition_only() {
    let mut metrics = None;
    // One shard: both partitions live on the same core.
    let server = Server::start_with("partition-stop", |config| {
        config.shards = 1;
        metrics = Some(Arc::clone(&config.metrics));
    });
    let metrics = metrics.unwrap();
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, 5, "victim", 2);
    assert_eq!(produce(&mut client, "victim", 0, b"before"), 0);
    assert_eq!(produce(&mut client, "victim", 1, b"before"), 0);

    fail::cfg("log-append", "return(victim/0)").unwrap();
    assert_eq!(
        produce(&mut client, "victim", 0, b"during"),
        KAFKA_STORAGE_ERROR
    );
    fail::remove("log-append");
    assert!(stopped_metric(&metrics), "{}", metrics.encode());

    // The stopped partition stays stopped until restart; its neighbour on
    // the same shard, and the connection, keep working.
    assert_eq!(
        produce(&mut client, "victim", 0, b"after"),
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(fetch(&mut client, "victim", 0).0, KAFKA_STORAGE_ERROR);
    assert_eq!(produce(&mut client, "victim", 1, b"after"), 0);
    assert_eq!(fetch(&mut client, "victim", 1), (0, 2));
    drop(client);
    drop(server);

    // A restart recovers it with every acknowledged record.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("partition-stop");
    let server = Server::start_in(dir, |config| config.shards = 1);
    let mut client = Client::connect(server.addr);
    assert_eq!(fetch(&mut client, "victim", 0), (0, 1));
    assert_eq!(produce(&mut client, "victim", 0, b"again"), 0);
    assert_eq!(fetch(&mut client, "victim", 0), (0, 2));
    assert_eq!(fetch(&mut client, "victim", 1), (0, 2));
}
