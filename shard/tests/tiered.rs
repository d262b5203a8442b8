//! Tiered storage against a real server with a local-directory archive
//! (issue 13): sealed segments become archives, local segments go once
//! their archives are recorded, and Fetch, ListOffsets and DeleteRecords
//! keep serving every offset from the log start, also after a restart.

mod common;

use bytes::Bytes;
use common::{Client, Server};
use kafka_protocol::messages::*;
use ringlog_engine::archive::{parse_archive_key, verify_all, STAGING_SUFFIX};
use ringlog_engine::batch::{build_batch, BatchView};
use ringlog_protocol::batches;
use ringlog_shard::config::ServerConfig;
use ringlog_shard::tiered::ArchiveTarget;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOPIC: &str = "tiered";
const RECORDS: usize = 400;
/// The record timestamps: record i at `TS_BASE + i * 1000`.
const TS_BASE: i64 = 1_700_000_000_000;
const OFFSET_OUT_OF_RANGE: i16 = 1;

fn value(i: usize) -> Vec<u8> {
    format!("record-{i:05}-{}", "x".repeat(900)).into_bytes()
}

fn archiving(dir: &Path) -> impl FnOnce(&mut ServerConfig) + '_ {
    move |config: &mut ServerConfig| {
        config.archive = ArchiveTarget::Local {
            dir: dir.join("archive"),
        };
        config.log_defaults.remote_storage = true;
        config.log_defaults.local_retention_ms = 0;
    }
}

/// (error code, batches) of a Fetch from `offset`.
fn fetch(client: &mut Client, offset: i64) -> (i16, Bytes) {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(common::name(TOPIC))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(64 << 10)])]);
    let ResponseKind::Fetch(response) = client.call(12, request) else {
        panic!("not Fetch");
    };
    let data = &response.responses[0].partitions[0];
    (data.error_code, data.records.clone().unwrap_or_default())
}

/// Every batch from offset 0 to the end, fetch after fetch, as (base
/// offset, bytes).
fn read_all(client: &mut Client) -> Vec<(i64, Vec<u8>)> {
    let mut out: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut next = 0i64;
    // Bounded: every round returns at least one batch or ends.
    for _ in 0..RECORDS {
        let (error, records) = fetch(client, next);
        assert_eq!(error, 0, "fetch from {next}");
        if records.is_empty() {
            break;
        }
        for batch in batches(&records) {
            let batch = batch.unwrap();
            let view = BatchView::parse(&batch).unwrap();
            if view.base_offset() < next {
                continue; // a span starts before the offset asked for
            }
            next = view.base_offset() + i64::from(view.last_offset_delta()) + 1;
            out.push((view.base_offset(), batch.to_vec()));
        }
    }
    out
}

fn list_offset(client: &mut Client, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(common::name(TOPIC))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp),
            ])]);
    let ResponseKind::ListOffsets(response) = client.call(6, request) else {
        panic!("not ListOffsets");
    };
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// The archive objects in the local store: its files but the staging
/// files of archives being written (`ringlog_engine::archive::STAGING_SUFFIX`).
fn archives(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if !path.to_string_lossy().ends_with(STAGING_SUFFIX) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("archive"), &mut out);
    out.sort();
    out
}

fn local_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("topics").join(TOPIC).join("0"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .count()
        })
        .unwrap_or(0)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn archived_offsets_are_served_from_the_archives_after_the_local_segments_go() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tiered-local");
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start_in(dir.clone(), archiving(&dir));
    let mut client = Client::connect(server.addr);
    common::create_topic_with_configs(
        &mut client,
        TOPIC,
        &[("segment.bytes", "65536"), ("retention.ms", "-1")],
    );
    let mut produced = Vec::new();
    for i in 0..RECORDS {
        let batch = build_batch(TS_BASE + i as i64 * 1000, &[&value(i)]);
        let answer = common::produce_batch(&mut client, 9, TOPIC, 0, batch);
        assert_eq!((answer.error_code, answer.base_offset), (0, i as i64));
        produced.push(i);
    }
    // Segments of 64 KiB hold about 60 records: most seal, get archived,
    // and then leave the local disk (local.retention.ms=0).
    wait_until("archives recorded and local segments gone", || {
        archives(&dir).len() >= 4 && local_segments(&dir) <= 2
    });
    for path in archives(&dir) {
        let key = path.strip_prefix(dir.join("archive")).unwrap();
        assert!(
            parse_archive_key(key.to_str().unwrap()).is_some(),
            "{key:?}"
        );
        verify_all(&std::fs::read(&path).unwrap()).expect("every archive verifies");
    }
    let check = |client: &mut Client| {
        let read = read_all(client);
        let offsets: Vec<i64> = read.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..RECORDS as i64).collect::<Vec<_>>());
        for (i, (_, batch)) in read.iter().enumerate() {
            let want = value(i);
            assert!(
                batch.windows(want.len()).any(|w| w == want.as_slice()),
                "record {i}"
            );
        }
        assert_eq!(list_offset(client, -2), (0, 0), "earliest is archived");
        assert_eq!(list_offset(client, -1), (0, RECORDS as i64));
        // Record 7's timestamp lies in the first archive.
        assert_eq!(list_offset(client, TS_BASE + 7_000), (0, 7));
        assert_eq!(list_offset(client, TS_BASE + 6_500), (0, 7));
    };
    check(&mut client);
    drop(client);
    drop(server);

    // After a restart the archives serve as before.
    let server = Server::start_in(dir.clone(), archiving(&dir));
    let mut client = Client::connect(server.addr);
    check(&mut client);

    // DeleteRecords below the local start moves the archive start.
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
            .with_name(common::name(TOPIC))
            .with_partitions(vec![
                delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(130),
            ])]);
    let ResponseKind::DeleteRecords(response) = client.call(2, request) else {
        panic!("not DeleteRecords");
    };
    let result = &response.topics[0].partitions[0];
    assert_eq!((result.error_code, result.low_watermark), (0, 130));
    assert_eq!(list_offset(&mut client, -2), (0, 130));
    assert_eq!(fetch(&mut client, 5).0, OFFSET_OUT_OF_RANGE);
    let (error, records) = fetch(&mut client, 130);
    assert_eq!(error, 0);
    let first = batches(&records).next().unwrap().unwrap();
    let view = BatchView::parse(&first).unwrap();
    assert!(view.base_offset() <= 130 && 130 <= view.base_offset() + 60);
    // The archives wholly below 130 are gone from the store.
    wait_until("archives below the new start removed", || {
        archives(&dir).iter().all(|path| {
            let key = path.strip_prefix(dir.join("archive")).unwrap();
            let (_, _, _, last) = parse_archive_key(key.to_str().unwrap()).unwrap();
            last >= 130
        })
    });
}
