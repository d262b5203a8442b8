//! The admin API over a real socket, with a test thread answering the
//! broker's mailbox: JSON in and out, the limits on request bodies, and
//! `ringlog shard` / `ringlog partition` as processes against it.

mod fake_admin;

use fake_admin::admin_endpoint;
use ringlog_shard::admin::{
    AdminAnswer, AdminFailure, AdminFailureKind, AdminOutcome, AdminRequest, BalanceBy, Moved,
    PartitionLoad, PlannedMove, Rebalanced, ShardLoad,
};
use ringlog_tools::http::{REQUEST_BODY_BYTES_MAX, REQUEST_TIMEOUT_MS};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Time to wait for anything the endpoint does.
const WAIT: Duration = Duration::from_secs(30);

fn shards() -> Vec<ShardLoad> {
    vec![
        ShardLoad {
            shard: 0,
            cpu: Some(0),
            partitions: vec![PartitionLoad {
                topic: "orders".into(),
                partition: 0,
                bytes: 3 << 20,
                produce_bytes_per_s: 2_000_000.0,
                fetch_bytes_per_s: 1_000_000.0,
            }],
            busy: 0.25,
            in_flight: 2,
        },
        ShardLoad {
            shard: 1,
            cpu: Some(1),
            partitions: Vec::new(),
            busy: 0.0,
            in_flight: 0,
        },
    ]
}

fn moved(partition: u32) -> Moved {
    Moved {
        topic: "orders".into(),
        partition,
        from_shard: 0,
        to_shard: 1,
        unavailable_ms: 4.56,
    }
}

/// What a broker with [`shards`] answers: moves of `orders` to shard 0 or
/// 1 succeed, others are refused as the controller refuses them.
fn broker(request: &AdminRequest) -> AdminOutcome {
    match request {
        AdminRequest::Shards => Ok(AdminAnswer::Shards(shards())),
        AdminRequest::Move {
            topic, to_shard, ..
        } if *to_shard > 1 => Err(AdminFailure::new(
            AdminFailureKind::BadRequest,
            format!("cannot move {topic} to shard {to_shard}: the broker has shards 0..=1"),
        )),
        AdminRequest::Move {
            topic, partition, ..
        } if topic != "orders" => Err(AdminFailure::new(
            AdminFailureKind::NotFound,
            format!("partition {topic}-{partition} does not exist"),
        )),
        AdminRequest::Move { partition, .. } => Ok(AdminAnswer::Moved(moved(*partition))),
        AdminRequest::Rebalance { by, dry_run } => Ok(AdminAnswer::Rebalanced(Rebalanced {
            by: *by,
            dry_run: *dry_run,
            before: vec![3_000_000.0, 0.0],
            after: vec![1_500_000.0, 1_500_000.0],
            plan: vec![PlannedMove {
                topic: "orders".into(),
                partition: 0,
                from_shard: 0,
                to_shard: 1,
            }],
            moved: if *dry_run { Vec::new() } else { vec![moved(0)] },
        })),
    }
}

/// Sends `request` and reads the whole answer (the endpoint closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Status line and JSON body of an answer; checks its framing.
fn split(answer: &str) -> (&str, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect(answer);
    assert!(
        head.lines().any(|l| l == "Content-Type: application/json"),
        "{head}"
    );
    assert!(
        head.lines()
            .any(|l| l == format!("Content-Length: {}", body.len())),
        "{head}"
    );
    (
        head.lines().next().unwrap(),
        serde_json::from_str(body).expect(body),
    )
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn next_call(calls: &Receiver<AdminRequest>) -> AdminRequest {
    calls
        .recv_timeout(WAIT)
        .expect("a call reached the mailbox")
}

#[test]
fn endpoints_answer_from_the_mailbox() {
    let (addr, calls) = admin_endpoint(broker);
    let answer = exchange(addr, b"GET /v1/shards HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body["shards"][0]["produce_mb_s"], json!(2.0));
    assert_eq!(body["shards"][0]["bytes"], json!(3 << 20));
    assert_eq!(body["shards"][1]["partitions"], json!([]));
    assert_eq!(next_call(&calls), AdminRequest::Shards);

    // A query string is ignored, as on /metrics.
    let answer = exchange(addr, b"GET /v1/partitions?pretty HTTP/1.1\r\n\r\n");
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        body,
        json!({"partitions": [{"topic": "orders", "partition": 0, "shard": 0}]})
    );
    assert_eq!(next_call(&calls), AdminRequest::Shards);

    let answer = exchange(
        addr,
        &post(
            "/v1/partitions/move",
            r#"{"topic":"orders","partition":0,"to_shard":1}"#,
        ),
    );
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        body,
        json!({"topic": "orders", "partition": 0, "from_shard": 0, "to_shard": 1, "unavailable_ms": 4.56})
    );
    assert_eq!(
        next_call(&calls),
        AdminRequest::Move {
            topic: "orders".into(),
            partition: 0,
            to_shard: 1
        }
    );

    // No body at all: the defaults.
    let answer = exchange(addr, b"POST /v1/shards/rebalance HTTP/1.1\r\n\r\n");
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body["before"], json!([3.0, 0.0]));
    assert_eq!(body["moved"][0]["unavailable_ms"], json!(4.56));
    assert_eq!(
        next_call(&calls),
        AdminRequest::Rebalance {
            by: BalanceBy::Load,
            dry_run: false
        }
    );
}

#[test]
fn a_body_arriving_in_pieces_is_read_whole() {
    let (addr, calls) = admin_endpoint(broker);
    let request = post("/v1/shards/rebalance", r#"{"by":"count","dry_run":true}"#);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // The head and the start of the body, then the rest a little later.
    let split_at = request.len() - 10;
    stream.write_all(&request[..split_at]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(&request[split_at..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body["by"], "count");
    assert_eq!(body["dry_run"], true);
    assert_eq!(
        next_call(&calls),
        AdminRequest::Rebalance {
            by: BalanceBy::Count,
            dry_run: true
        }
    );
}

#[test]
fn failures_and_bad_requests_answer_json_errors() {
    let (addr, calls) = admin_endpoint(broker);
    let answer = exchange(
        addr,
        &post(
            "/v1/partitions/move",
            r#"{"topic":"orders","partition":0,"to_shard":7}"#,
        ),
    );
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        body,
        json!({"error": "cannot move orders to shard 7: the broker has shards 0..=1"})
    );
    next_call(&calls);

    let answer = exchange(
        addr,
        &post(
            "/v1/partitions/move",
            r#"{"topic":"audit","partition":3,"to_shard":1}"#,
        ),
    );
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(body["error"], "partition audit-3 does not exist");
    next_call(&calls);

    let answer = exchange(addr, &post("/v1/partitions/move", r#"{"topic":"orders"}"#));
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `partition`"),
        "{body}"
    );

    let answer = exchange(addr, b"GET /v1/nothing HTTP/1.1\r\n\r\n");
    assert_eq!(split(&answer).0, "HTTP/1.1 404 Not Found");
    let answer = exchange(addr, b"DELETE /v1/shards HTTP/1.1\r\n\r\n");
    assert_eq!(split(&answer).0, "HTTP/1.1 405 Method Not Allowed");
    assert!(answer.contains("\r\nAllow: GET\r\n"), "{answer}");
    // Neither reached the broker.
    assert!(calls.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn bodies_need_a_bounded_content_length() {
    let (addr, calls) = admin_endpoint(broker);
    let status_line = |answer: &str| answer.lines().next().unwrap_or("").to_string();

    let chunked = b"POST /v1/shards/rebalance HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    assert_eq!(
        status_line(&exchange(addr, chunked)),
        "HTTP/1.1 411 Length Required"
    );

    let too_large = format!(
        "POST /v1/shards/rebalance HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        REQUEST_BODY_BYTES_MAX + 1
    );
    assert_eq!(
        status_line(&exchange(addr, too_large.as_bytes())),
        "HTTP/1.1 413 Content Too Large"
    );

    for lengths in [
        "Content-Length: x",
        "Content-Length: 2\r\nContent-Length: 3",
    ] {
        let request = format!("POST /v1/shards/rebalance HTTP/1.1\r\n{lengths}\r\n\r\n{{}}");
        assert_eq!(
            status_line(&exchange(addr, request.as_bytes())),
            "HTTP/1.1 400 Bad Request",
            "{lengths}"
        );
    }
    // Repeating the same length is allowed; bytes past it are not read.
    let request = b"POST /v1/shards/rebalance HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}garbage";
    assert_eq!(status_line(&exchange(addr, request)), "HTTP/1.1 200 OK");
    next_call(&calls);
    // The largest body allowed is read whole.
    let padded = format!("{{}}{}", " ".repeat(REQUEST_BODY_BYTES_MAX - 2));
    let answer = exchange(addr, &post("/v1/shards/rebalance", &padded));
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    next_call(&calls);
}

#[test]
fn a_client_stalling_in_its_body_is_dropped_at_the_request_deadline() {
    let (addr, _calls) = admin_endpoint(broker);
    let started = Instant::now();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"POST /v1/shards/rebalance HTTP/1.1\r\nContent-Length: 30\r\n\r\n{\"by\"")
        .unwrap();
    // The next client waits behind it, but not forever.
    let answer = exchange(addr, b"GET /v1/shards HTTP/1.1\r\n\r\n");
    assert_eq!(split(&answer).0, "HTTP/1.1 200 OK");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(REQUEST_TIMEOUT_MS + 5_000),
        "waited {waited:?}"
    );
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

// ---------------------------------------------------------------- commands

/// Runs `ringlog <args>` with no admin address from the environment.
fn ringlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(args)
        .env_remove("RINGLOG_HTTP")
        .output()
        .expect("run ringlog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn shard_list_prints_a_table_or_the_document() {
    let (addr, _calls) = admin_endpoint(broker);
    let addr = addr.to_string();
    let out = ringlog(&["shard", "list", "--http", &addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "SHARD  CPU  PARTITIONS  DISK     PRODUCE MB/S  FETCH MB/S  BUSY   IN FLIGHT\n\
         0      0    1           3.0 MiB  2.00          1.00        25.0%  2\n\
         1      1    0           0 B      0.00          0.00        0.0%   0\n"
    );
    // RINGLOG_HTTP works as --http does; --json prints the document as is.
    let out = Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(["shard", "list", "--json"])
        .env("RINGLOG_HTTP", &addr)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("{\"shards\":[{\"shard\":0,\"cpu\":0,"),
        "{stdout}"
    );
    assert!(stdout.ends_with("}\n"), "{stdout}");
}

#[test]
fn partition_move_prints_the_move_or_the_broker_error() {
    let (addr, calls) = admin_endpoint(broker);
    let addr = addr.to_string();
    let out = ringlog(&[
        "partition",
        "move",
        "orders",
        "0",
        "--to-shard",
        "1",
        "--http",
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "moved orders-0 from shard 0 to shard 1; unwritable for 4.6 ms\n"
    );
    assert_eq!(
        next_call(&calls),
        AdminRequest::Move {
            topic: "orders".into(),
            partition: 0,
            to_shard: 1
        }
    );

    let out = ringlog(&[
        "partition",
        "move",
        "orders",
        "0",
        "--to-shard",
        "5",
        "--http",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ringlog partition: cannot move orders to shard 5: the broker has shards 0..=1 (HTTP 400)\n"
    );
    assert!(out.stdout.is_empty());
    next_call(&calls);

    let out = ringlog(&[
        "partition",
        "move",
        "audit",
        "2",
        "--to-shard",
        "1",
        "--http",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ringlog partition: partition audit-2 does not exist (HTTP 404)\n"
    );
}

#[test]
fn shard_rebalance_sends_its_options_and_prints_the_outcome() {
    let (addr, calls) = admin_endpoint(broker);
    let addr = addr.to_string();
    let out = ringlog(&["shard", "rebalance", "--http", &addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "rebalance by load: 1 move planned\n\
         \x20 orders-0  shard 0 -> shard 1\n\
         SHARD  BEFORE MB/S  AFTER MB/S\n\
         0      3.00         1.50\n\
         1      0.00         1.50\n\
         moved orders-0 from shard 0 to shard 1; unwritable for 4.6 ms\n"
    );
    assert_eq!(
        next_call(&calls),
        AdminRequest::Rebalance {
            by: BalanceBy::Load,
            dry_run: false
        }
    );

    let out = ringlog(&[
        "shard",
        "rebalance",
        "--dry-run",
        "--by",
        "count",
        "--json",
        "--http",
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let document: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["by"], "count");
    assert_eq!(document["dry_run"], true);
    assert_eq!(document["moved"], json!([]));
    assert_eq!(
        next_call(&calls),
        AdminRequest::Rebalance {
            by: BalanceBy::Count,
            dry_run: true
        }
    );
}

#[test]
fn an_unreachable_or_missing_address_is_named() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = ringlog(&["shard", "list", "--http", &free]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("ringlog shard: cannot connect to http://{free}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");

    let out = ringlog(&["partition", "move", "orders", "0", "--to-shard", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ringlog partition: --http: no admin address given: pass the address \
         `ringlog serve --http` listens on, or set RINGLOG_HTTP\n"
    );
}

#[test]
fn usage_errors_exit_2_before_any_call() {
    for args in [
        &["partition", "move", "orders", "-1", "--to-shard", "1"][..],
        &["partition", "move", "orders", "0"],
        &["partition", "move", "orders", "0", "--to-shard", "one"],
        &["shard", "rebalance", "--by", "cpu"],
        &["shard", "list", "--timeout-ms", "0"],
    ] {
        let out = ringlog(&[args, &["--http", "127.0.0.1:1"]].concat());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
