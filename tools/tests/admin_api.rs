//! The admin API without sockets: which call each route makes, the JSON
//! each answer becomes, and the errors for bad bodies, paths, methods and
//! failed calls.

use ringlog_shard::admin::{
    AdminAnswer, AdminFailure, AdminFailureKind, AdminOutcome, AdminRequest, BalanceBy, Moved,
    PartitionLoad, PlannedMove, Rebalanced, ShardLoad,
};
use ringlog_tools::admin_api::{
    respond, BalanceByJson, MovedJson, PlacementsJson, RebalanceJson, RebalancedJson, Reply,
    ShardsJson,
};
use serde_json::{json, Value};
use std::cell::RefCell;

fn partition(topic: &str, partition: u32, bytes: u64, produce: f64, fetch: f64) -> PartitionLoad {
    PartitionLoad {
        topic: topic.to_string(),
        partition,
        bytes,
        produce_bytes_per_s: produce,
        fetch_bytes_per_s: fetch,
    }
}

/// Two shards: shard 0 pinned and busy with two partitions, shard 1 idle
/// with one.
fn shards() -> Vec<ShardLoad> {
    vec![
        ShardLoad {
            shard: 0,
            cpu: Some(2),
            partitions: vec![
                partition("orders", 0, 1_000, 1_500_000.0, 250_000.0),
                partition("orders", 2, 24, 500_000.0, 0.0),
            ],
            busy: 0.5,
            in_flight: 3,
        },
        ShardLoad {
            shard: 1,
            cpu: None,
            partitions: vec![partition("audit", 0, 7, 0.0, 0.0)],
            busy: 0.0,
            in_flight: 0,
        },
    ]
}

fn moved() -> Moved {
    Moved {
        topic: "orders".into(),
        partition: 2,
        from_shard: 0,
        to_shard: 1,
        unavailable_ms: 3.25,
    }
}

fn json_of(reply: &Reply) -> Value {
    assert!(reply.body.ends_with('\n'), "{:?}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

/// Routes `method path body`, answering the call it makes with `outcome`;
/// returns the reply and the call.
fn route(
    method: &str,
    path: &str,
    body: &str,
    outcome: AdminOutcome,
) -> (Reply, Option<AdminRequest>) {
    let made = RefCell::new(None);
    let reply = respond(method, path, body.as_bytes(), |request| {
        *made.borrow_mut() = Some(request);
        outcome
    });
    (reply, made.into_inner())
}

/// Routes a request that must be refused before any call.
fn refuse(method: &str, path: &str, body: &str) -> Reply {
    respond(method, path, body.as_bytes(), |request| {
        panic!("no call expected, got {request:?}")
    })
}

#[test]
fn shards_are_listed_in_mb_per_second_with_totals() {
    let (reply, call) = route("GET", "/v1/shards", "", Ok(AdminAnswer::Shards(shards())));
    assert_eq!(call, Some(AdminRequest::Shards));
    assert_eq!((reply.status, reply.allow), (200, None));
    assert_eq!(
        json_of(&reply),
        json!({"shards": [
            {"shard": 0, "cpu": 2, "partitions": [
                {"topic": "orders", "partition": 0, "bytes": 1000, "produce_mb_s": 1.5, "fetch_mb_s": 0.25},
                {"topic": "orders", "partition": 2, "bytes": 24, "produce_mb_s": 0.5, "fetch_mb_s": 0.0}
             ], "bytes": 1024, "produce_mb_s": 2.0, "fetch_mb_s": 0.25, "busy": 0.5, "in_flight": 3},
            {"shard": 1, "cpu": null, "partitions": [
                {"topic": "audit", "partition": 0, "bytes": 7, "produce_mb_s": 0.0, "fetch_mb_s": 0.0}
             ], "bytes": 7, "produce_mb_s": 0.0, "fetch_mb_s": 0.0, "busy": 0.0, "in_flight": 0}
        ]})
    );
    // The client reads back what the endpoint wrote.
    let decoded: ShardsJson = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(decoded, ShardsJson::from(shards().as_slice()));

    // A shard without partitions totals +0.0, not -0.0.
    let empty = ShardLoad {
        partitions: Vec::new(),
        ..shards()[1].clone()
    };
    let (reply, _) = route(
        "GET",
        "/v1/shards",
        "",
        Ok(AdminAnswer::Shards(vec![empty])),
    );
    assert!(
        reply
            .body
            .contains(r#""produce_mb_s":0.0,"fetch_mb_s":0.0"#),
        "{}",
        reply.body
    );
}

#[test]
fn placements_come_from_the_shards_answer_sorted_by_topic_and_partition() {
    let (reply, call) = route(
        "GET",
        "/v1/partitions",
        "",
        Ok(AdminAnswer::Shards(shards())),
    );
    assert_eq!(call, Some(AdminRequest::Shards));
    assert_eq!(reply.status, 200);
    assert_eq!(
        json_of(&reply),
        json!({"partitions": [
            {"topic": "audit", "partition": 0, "shard": 1},
            {"topic": "orders", "partition": 0, "shard": 0},
            {"topic": "orders", "partition": 2, "shard": 0}
        ]})
    );
    let decoded: PlacementsJson = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(decoded.partitions.len(), 3);
}

#[test]
fn a_move_carries_the_body_and_answers_the_move() {
    let (reply, call) = route(
        "POST",
        "/v1/partitions/move",
        r#"{"topic":"orders","partition":2,"to_shard":1}"#,
        Ok(AdminAnswer::Moved(moved())),
    );
    assert_eq!(
        call,
        Some(AdminRequest::Move {
            topic: "orders".into(),
            partition: 2,
            to_shard: 1
        })
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        json_of(&reply),
        json!({"topic": "orders", "partition": 2, "from_shard": 0, "to_shard": 1, "unavailable_ms": 3.25})
    );
    let decoded: MovedJson = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(decoded, MovedJson::from(&moved()));
}

fn rebalanced(by: BalanceBy, dry_run: bool) -> Rebalanced {
    let plan = vec![PlannedMove {
        topic: "orders".into(),
        partition: 2,
        from_shard: 0,
        to_shard: 1,
    }];
    let (before, after) = match by {
        BalanceBy::Load => (vec![2_250_000.0, 0.0], vec![1_750_000.0, 500_000.0]),
        BalanceBy::Count => (vec![2.0, 1.0], vec![1.0, 2.0]),
    };
    Rebalanced {
        by,
        dry_run,
        before,
        after,
        plan,
        moved: if dry_run { Vec::new() } else { vec![moved()] },
    }
}

#[test]
fn a_rebalance_defaults_to_load_applied_and_reports_mb_per_second() {
    for body in ["", "  \r\n", "{}"] {
        let (reply, call) = route(
            "POST",
            "/v1/shards/rebalance",
            body,
            Ok(AdminAnswer::Rebalanced(rebalanced(BalanceBy::Load, false))),
        );
        assert_eq!(
            call,
            Some(AdminRequest::Rebalance {
                by: BalanceBy::Load,
                dry_run: false
            }),
            "{body:?}"
        );
        assert_eq!(reply.status, 200);
        assert_eq!(
            json_of(&reply),
            json!({
                "by": "load", "dry_run": false,
                "before": [2.25, 0.0], "after": [1.75, 0.5],
                "plan": [{"topic": "orders", "partition": 2, "from_shard": 0, "to_shard": 1}],
                "moved": [{"topic": "orders", "partition": 2, "from_shard": 0, "to_shard": 1, "unavailable_ms": 3.25}]
            })
        );
    }
}

#[test]
fn a_rebalance_by_count_reports_partition_counts() {
    let (reply, call) = route(
        "POST",
        "/v1/shards/rebalance",
        r#"{"by":"count","dry_run":true}"#,
        Ok(AdminAnswer::Rebalanced(rebalanced(BalanceBy::Count, true))),
    );
    assert_eq!(
        call,
        Some(AdminRequest::Rebalance {
            by: BalanceBy::Count,
            dry_run: true
        })
    );
    let decoded: RebalancedJson = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(decoded.by, BalanceByJson::Count);
    assert!(decoded.dry_run);
    assert_eq!(decoded.before, [2.0, 1.0]);
    assert_eq!(decoded.after, [1.0, 2.0]);
    assert!(decoded.moved.is_empty());
}

#[test]
fn request_bodies_encode_as_the_endpoint_reads_them() {
    let body = RebalanceJson {
        by: BalanceByJson::Count,
        dry_run: true,
    };
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"by":"count","dry_run":true}"#
    );
    assert_eq!(
        serde_json::from_str::<RebalanceJson>(r#"{"dry_run":true}"#).unwrap(),
        RebalanceJson {
            by: BalanceByJson::Load,
            dry_run: true
        }
    );
}

#[test]
fn bad_bodies_are_refused_naming_the_problem() {
    let error = |reply: &Reply| json_of(reply)["error"].as_str().unwrap().to_string();
    let cases = [
        ("/v1/partitions/move", "{", "EOF while parsing an object"),
        ("/v1/partitions/move", "", "missing field `topic`"),
        (
            "/v1/partitions/move",
            r#"{"topic":"t","partition":0}"#,
            "missing field `to_shard`",
        ),
        (
            "/v1/partitions/move",
            r#"{"topic":"t","partition":-1,"to_shard":1}"#,
            "invalid value: integer `-1`, expected u32",
        ),
        (
            "/v1/partitions/move",
            r#"{"topic":"t","partition":0,"to_shard":"one"}"#,
            "invalid type: string \"one\", expected u32",
        ),
        (
            "/v1/partitions/move",
            r#"{"topic":"t","partition":0,"to_shard":1,"force":true}"#,
            "unknown field `force`",
        ),
        (
            "/v1/shards/rebalance",
            r#"{"dryrun":true}"#,
            "unknown field `dryrun`",
        ),
        (
            "/v1/shards/rebalance",
            r#"{"by":"cpu"}"#,
            "unknown variant `cpu`, expected `load` or `count`",
        ),
        (
            "/v1/shards/rebalance",
            r#""count""#,
            "invalid type: string \"count\"",
        ),
        ("/v1/shards/rebalance", "\u{ff}", "expected value"),
    ];
    for (path, body, why) in cases {
        let reply = refuse("POST", path, body);
        assert_eq!(reply.status, 400, "{path} {body:?}");
        let message = error(&reply);
        assert!(message.starts_with("bad request body: "), "{message}");
        assert!(message.contains(why), "{body:?}: {message}");
        assert!(message.contains("expected JSON like {"), "{message}");
    }
}

#[test]
fn unknown_paths_and_wrong_methods_are_refused() {
    let reply = refuse("GET", "/v1/shard", "");
    assert_eq!(reply.status, 404);
    assert_eq!(
        json_of(&reply)["error"],
        "no endpoint at /v1/shard; there are GET /v1/shards, GET /v1/partitions, \
         POST /v1/partitions/move, POST /v1/shards/rebalance"
    );
    assert_eq!(refuse("GET", "/", "").status, 404);
    assert_eq!(refuse("GET", "/v1/shards/", "").status, 404);

    for (method, path, allowed) in [
        ("POST", "/v1/shards", "GET"),
        ("HEAD", "/v1/partitions", "GET"),
        ("GET", "/v1/partitions/move", "POST"),
        ("PUT", "/v1/shards/rebalance", "POST"),
    ] {
        let reply = refuse(method, path, "{}");
        assert_eq!((reply.status, reply.allow), (405, Some(allowed)));
        assert_eq!(
            json_of(&reply)["error"],
            format!("{path} takes {allowed}, not {method}")
        );
    }
}

#[test]
fn failed_calls_answer_their_status_and_message() {
    for (kind, status) in [
        (AdminFailureKind::BadRequest, 400),
        (AdminFailureKind::NotFound, 404),
        (AdminFailureKind::Conflict, 409),
        (AdminFailureKind::Unavailable, 503),
        (AdminFailureKind::Internal, 500),
    ] {
        let message = "shard 9 does not exist: the broker has 2 shards";
        let (reply, call) = route(
            "POST",
            "/v1/partitions/move",
            r#"{"topic":"t","partition":0,"to_shard":9}"#,
            Err(AdminFailure::new(kind, message)),
        );
        assert!(call.is_some());
        assert_eq!(reply.status, status);
        assert_eq!(json_of(&reply), json!({ "error": message }));
    }
}

#[test]
fn an_answer_of_the_wrong_kind_is_an_internal_error() {
    let (reply, _) = route("GET", "/v1/shards", "", Ok(AdminAnswer::Moved(moved())));
    assert_eq!(reply.status, 500);
    let message = json_of(&reply)["error"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("the broker answered /v1/shards with a mismatched answer: Moved("),
        "{message}"
    );
}
