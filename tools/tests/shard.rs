//! `ringlog shard` and `ringlog partition` without a broker: the tables
//! and lines they print, and the HTTP client's requests and answer
//! parsing.

use ringlog_tools::admin_api::{
    BalanceByJson, MovedJson, PartitionLoadJson, PlannedMoveJson, RebalancedJson, ShardJson,
    ShardsJson,
};
use ringlog_tools::admin_client::{answer_body, encode_request, parse_response};
use ringlog_tools::kafka_client::ClientError;
use ringlog_tools::partition::render_moved;
use ringlog_tools::shard::{human_bytes, render_rebalance, render_shard_list};

fn moved(partition: u32, unavailable_ms: f64) -> MovedJson {
    MovedJson {
        topic: "orders".into(),
        partition,
        from_shard: 0,
        to_shard: 1,
        unavailable_ms,
    }
}

#[test]
fn bytes_read_in_binary_units() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1024), "1.0 KiB");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    assert_eq!(human_bytes(20 << 30), "20.0 GiB");
    assert_eq!(human_bytes(3 << 40), "3.0 TiB");
    assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
}

#[test]
fn shard_list_is_one_row_per_shard() {
    let partition = |index, bytes| PartitionLoadJson {
        topic: "orders".into(),
        partition: index,
        bytes,
        produce_mb_s: 0.0,
        fetch_mb_s: 0.0,
    };
    let shards = ShardsJson {
        shards: vec![
            ShardJson {
                shard: 0,
                cpu: Some(2),
                partitions: vec![partition(0, 1 << 30), partition(1, 512 << 20)],
                bytes: 1536 << 20,
                produce_mb_s: 412.345,
                fetch_mb_s: 0.5,
                busy: 0.877,
                in_flight: 12,
            },
            ShardJson {
                shard: 1,
                cpu: None,
                partitions: Vec::new(),
                bytes: 0,
                produce_mb_s: 0.0,
                fetch_mb_s: 0.0,
                busy: 0.0,
                in_flight: 0,
            },
        ],
    };
    assert_eq!(
        render_shard_list(&shards),
        "SHARD  CPU  PARTITIONS  DISK     PRODUCE MB/S  FETCH MB/S  BUSY   IN FLIGHT\n\
         0      2    2           1.5 GiB  412.35        0.50        87.7%  12\n\
         1      -    0           0 B      0.00          0.00        0.0%   0\n"
    );
}

#[test]
fn a_move_prints_where_and_how_long_it_was_unwritable() {
    assert_eq!(
        render_moved(&moved(0, 3.24)),
        "moved orders-0 from shard 0 to shard 1; unwritable for 3.2 ms\n"
    );
}

fn rebalanced(by: BalanceByJson, dry_run: bool, moves: u32) -> RebalancedJson {
    let plan: Vec<PlannedMoveJson> = (0..moves)
        .map(|partition| PlannedMoveJson {
            topic: "orders".into(),
            partition,
            from_shard: 0,
            to_shard: 1,
        })
        .collect();
    RebalancedJson {
        by,
        dry_run,
        before: vec![30.0, 0.0],
        after: vec![15.0, 15.0],
        moved: if dry_run {
            Vec::new()
        } else {
            plan.iter()
                .map(|p| moved(p.partition, 2.0 + f64::from(p.partition)))
                .collect()
        },
        plan,
    }
}

#[test]
fn a_rebalance_prints_the_plan_the_figures_and_the_moves() {
    assert_eq!(
        render_rebalance(&rebalanced(BalanceByJson::Load, false, 2)),
        "rebalance by load: 2 moves planned\n\
         \x20 orders-0  shard 0 -> shard 1\n\
         \x20 orders-1  shard 0 -> shard 1\n\
         SHARD  BEFORE MB/S  AFTER MB/S\n\
         0      30.00        15.00\n\
         1      0.00         15.00\n\
         moved orders-0 from shard 0 to shard 1; unwritable for 2.0 ms\n\
         moved orders-1 from shard 0 to shard 1; unwritable for 3.0 ms\n"
    );
    assert_eq!(
        render_rebalance(&rebalanced(BalanceByJson::Count, true, 1)),
        "rebalance by count: 1 move planned (dry run: nothing moved)\n\
         \x20 orders-0  shard 0 -> shard 1\n\
         SHARD  BEFORE PARTITIONS  AFTER PARTITIONS\n\
         0      30                 15\n\
         1      0                  15\n"
    );
    let mut even = rebalanced(BalanceByJson::Count, true, 0);
    even.before = vec![2.0, 2.0, 2.0];
    even.after = even.before.clone();
    assert_eq!(
        render_rebalance(&even),
        "rebalance by count: no moves planned\n\
         SHARD  BEFORE PARTITIONS  AFTER PARTITIONS\n\
         0      2                  2\n\
         1      2                  2\n\
         2      2                  2\n"
    );
}

#[test]
fn requests_carry_a_length_and_close() {
    assert_eq!(
        String::from_utf8(encode_request("GET", "b:9644", "/v1/shards", None)).unwrap(),
        "GET /v1/shards HTTP/1.1\r\nHost: b:9644\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(
        String::from_utf8(encode_request(
            "POST",
            "b:9644",
            "/v1/shards/rebalance",
            Some("{}")
        ))
        .unwrap(),
        "POST /v1/shards/rebalance HTTP/1.1\r\nHost: b:9644\r\nAccept: application/json\r\n\
         Connection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    );
}

#[test]
fn answers_are_parsed_by_their_length() {
    let answer =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 3\r\n\r\n{}\nextra";
    assert_eq!(parse_response(answer), Ok((200, "{}\n")));
    // Without a length the body runs to the end.
    assert_eq!(
        parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nnope"),
        Ok((404, "nope"))
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"),
        Err("the answer ended after 2 of its 10 body bytes".to_string())
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n{}"),
        Err("bad Content-Length \"ten\"".to_string())
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\n"),
        Err("not an HTTP answer (17 bytes, no end of head)".to_string())
    );
    assert_eq!(
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n"),
        Err("not an HTTP answer: \"SSH-2.0-OpenSSH\"".to_string())
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 999 Odd\r\n\r\n"),
        Err("not an HTTP answer: \"HTTP/1.1 999 Odd\"".to_string())
    );
    assert!(parse_response(b"").is_err());
}

#[test]
fn error_answers_carry_the_broker_message() {
    assert_eq!(answer_body(200, "{}").unwrap(), "{}");
    let message = |status, body| match answer_body(status, body) {
        Err(err @ ClientError::Admin { .. }) => err.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        message(404, "{\"error\":\"partition orders-9 does not exist\"}\n"),
        "partition orders-9 does not exist (HTTP 404)"
    );
    assert_eq!(
        message(413, "Content Too Large\n"),
        "Content Too Large (HTTP 413)"
    );
    assert_eq!(message(502, ""), "no explanation (HTTP 502)");
}
