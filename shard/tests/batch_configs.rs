//! The topic configs that change produced batches, over the wire against a
//! real server: `compression.type` recompresses, LogAppendTime stamps the
//! batch and answers the time in the Produce response, the timestamp
//! window answers INVALID_TIMESTAMP with the record named, and ListOffsets
//! by time answers the exact record inside a compressed batch.

mod common;

use common::{create_topic, create_topic_with_configs, fetch_from_start, name, Client, Server};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use ringlog_engine::batch::BatchView;
use ringlog_engine::codec::Codec;
use ringlog_engine::records::build_timed_batch;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn produce(
    client: &mut Client,
    topic: &str,
    batch: Vec<u8>,
) -> produce_response::PartitionProduceResponse {
    common::produce_batch(client, 9, topic, 0, batch)
}

/// Every stored batch of partition 0, as fetched.
fn fetch_batches(client: &mut Client, topic: &str) -> Vec<Vec<u8>> {
    let ResponseKind::Fetch(response) = client.call(11, fetch_from_start(topic, 0)) else {
        panic!("not Fetch");
    };
    let mut records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut out = Vec::new();
    while records.len() >= 12 {
        let length = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        out.push(records.split_to(12 + length).to_vec());
    }
    out
}

/// ListOffsets by `timestamp` on partition 0: (error, offset, timestamp).
fn offset_for(client: &mut Client, topic: &str, timestamp: i64) -> (i16, i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp),
            ])]);
    let ResponseKind::ListOffsets(response) = client.call(6, request) else {
        panic!("not ListOffsets");
    };
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// 100 records 10 ms apart from `start_ms`, with value `i`.
fn hundred(codec: Codec, start_ms: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("record-{i:03}").into_bytes())
        .collect();
    let records: Vec<(i64, &[u8])> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (start_ms + 10 * i as i64, v.as_slice()))
        .collect();
    build_timed_batch(codec, &records)
}

#[test]
fn list_offsets_by_time_answers_the_record_inside_a_compressed_batch() {
    let server = Server::start("batch-configs-list-offsets");
    let mut client = Client::connect(server.addr);
    let start = 1_700_000_000_000;
    for codec in Codec::ALL {
        let topic = format!("times-{codec}");
        create_topic(&mut client, 7, &topic, 1);
        for b in 0..3 {
            let produced = produce(&mut client, &topic, hundred(codec, start + 1000 * b));
            assert_eq!((produced.error_code, produced.base_offset), (0, 100 * b));
            assert_eq!(produced.log_append_time_ms, -1, "CreateTime answers -1");
        }
        // Inside the second batch: record 37 (start + 1370) is the first at
        // or after start + 1365.
        assert_eq!(
            offset_for(&mut client, &topic, start + 1365),
            (0, 137, start + 1370),
            "{codec}"
        );
        assert_eq!(
            offset_for(&mut client, &topic, start + 1370),
            (0, 137, start + 1370)
        );
        assert_eq!(offset_for(&mut client, &topic, start), (0, 0, start));
        assert_eq!(
            offset_for(&mut client, &topic, start + 2991),
            (0, -1, -1),
            "none after"
        );
    }
}

#[test]
fn compression_type_recompresses_what_is_produced() {
    let server = Server::start("batch-configs-compression");
    let mut client = Client::connect(server.addr);
    create_topic_with_configs(&mut client, "to-zstd", &[("compression.type", "zstd")]);
    let now = now_ms();
    let produced = hundred(Codec::None, now);
    assert_eq!(
        produce(&mut client, "to-zstd", produced.clone()).error_code,
        0
    );
    assert_eq!(
        produce(&mut client, "to-zstd", hundred(Codec::Gzip, now)).error_code,
        0
    );
    let stored = fetch_batches(&mut client, "to-zstd");
    assert_eq!(stored.len(), 2);
    for bytes in &stored {
        let view = BatchView::parse(bytes).expect("a valid CRC");
        assert_eq!(view.codec(), Codec::Zstd.id());
        assert_eq!(view.record_count(), 100);
    }
    assert!(stored[0].len() < produced.len(), "zstd shrinks the batch");
    // The records inside the zstd batch are the ones produced: ListOffsets
    // reads them back.
    assert_eq!(
        offset_for(&mut client, "to-zstd", now + 555),
        (0, 56, now + 560)
    );

    // AlterConfigs back to `producer`: the next batch is stored as produced.
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("to-zstd"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("compression.type"))
                    .with_config_operation(0)
                    .with_value(Some(text("producer"))),
            ]),
    ]);
    let ResponseKind::IncrementalAlterConfigs(response) = client.call(1, request) else {
        panic!("not IncrementalAlterConfigs");
    };
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(
        produce(&mut client, "to-zstd", hundred(Codec::Lz4, now)).error_code,
        0
    );
    let last = fetch_batches(&mut client, "to-zstd").pop().unwrap();
    assert_eq!(BatchView::parse(&last).unwrap().codec(), Codec::Lz4.id());
}

#[test]
fn log_append_time_is_stamped_and_answered() {
    let server = Server::start("batch-configs-log-append-time");
    let mut client = Client::connect(server.addr);
    create_topic_with_configs(
        &mut client,
        "stamped",
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let before = now_ms();
    let produced = produce(&mut client, "stamped", hundred(Codec::Snappy, 1_000));
    let after = now_ms();
    assert_eq!(produced.error_code, 0);
    let stamp = produced.log_append_time_ms;
    assert!(
        (before..=after).contains(&stamp),
        "{before} <= {stamp} <= {after}"
    );
    let stored = fetch_batches(&mut client, "stamped");
    let view = BatchView::parse(&stored[0]).expect("the CRC is recomputed");
    assert!(view.is_log_append_time());
    assert_eq!(view.max_timestamp(), stamp);
    assert_eq!(view.base_timestamp(), 1_000, "record deltas and base stay");
    assert_eq!(offset_for(&mut client, "stamped", 500), (0, 0, stamp));
}

#[test]
fn records_outside_the_timestamp_window_answer_invalid_timestamp() {
    let server = Server::start("batch-configs-window");
    let mut client = Client::connect(server.addr);
    create_topic_with_configs(
        &mut client,
        "windowed",
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "60000"),
        ],
    );
    let now = now_ms();
    let old = build_timed_batch(
        Codec::Lz4,
        &[
            (now, b"fresh".as_slice()),
            (now - 7_200_000, b"two hours old"),
        ],
    );
    let refused = produce(&mut client, "windowed", old);
    assert_eq!((refused.error_code, refused.base_offset), (32, -1));
    assert_eq!(refused.record_errors.len(), 1);
    assert_eq!(refused.record_errors[0].batch_index, 1);
    assert!(refused.error_message.is_some());
    let future = build_timed_batch(
        Codec::None,
        &[(now + 3_600_000, b"an hour ahead".as_slice())],
    );
    assert_eq!(produce(&mut client, "windowed", future).error_code, 32);
    let fresh = build_timed_batch(Codec::Zstd, &[(now, b"fresh".as_slice())]);
    let accepted = produce(&mut client, "windowed", fresh);
    assert_eq!(
        (accepted.error_code, accepted.base_offset),
        (0, 0),
        "nothing was appended before"
    );
}
