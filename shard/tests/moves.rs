//! Partition moves between shards and changes of the shard count (issue
//! 16), against a real server over the Kafka protocol: the operator's
//! calls go through the same mailbox the `--http` endpoint uses.

mod common;

use common::{create_topic, fetch_from_start, Client, Server};
use kafka_protocol::messages::*;
use ringlog_engine::batch::{build_batch, build_producer_batch, BatchView};
use ringlog_protocol::batches;
use ringlog_shard::admin::{
    AdminAnswer, AdminFailureKind, AdminMailbox, AdminRequest, BalanceBy, Moved, ShardLoad,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// Produces one record with acks=all, retrying (bounded) while the
/// partition answers NOT_LEADER_OR_FOLLOWER, as a Kafka client would.
fn produce(client: &mut Client, topic: &str, partition: i32, batch: Vec<u8>) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = common::produce_batch(client, 9, topic, partition, batch.clone());
        if answer.error_code == NOT_LEADER_OR_FOLLOWER && Instant::now() < deadline {
            continue;
        }
        assert_eq!(answer.error_code, 0, "produce to {topic}-{partition}");
        return answer.base_offset;
    }
}

/// Every batch of the partition (one record each here), in offset order,
/// checking that the offsets are contiguous from 0.
fn batches_of(client: &mut Client, topic: &str, partition: i32) -> Vec<Vec<u8>> {
    let ResponseKind::Fetch(response) = client.call(12, fetch_from_start(topic, partition)) else {
        panic!("not Fetch");
    };
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch {topic}-{partition}");
    let records = data.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    for batch in batches(&records) {
        let batch = batch.unwrap();
        let view = BatchView::parse(&batch).unwrap();
        assert_eq!(
            view.base_offset(),
            out.len() as i64,
            "offsets are contiguous"
        );
        assert_eq!(view.record_count(), 1);
        out.push(batch.to_vec());
    }
    assert_eq!(data.high_watermark, out.len() as i64);
    out
}

/// Whether each batch holds the value at its index, and there are as
/// many batches as values.
fn holds(batches: &[Vec<u8>], values: &[Vec<u8>]) -> bool {
    batches.len() == values.len()
        && batches
            .iter()
            .zip(values)
            .all(|(batch, value)| batch.windows(value.len()).any(|w| w == value.as_slice()))
}

fn shards(admin: &AdminMailbox) -> Vec<ShardLoad> {
    match admin.call(AdminRequest::Shards).unwrap() {
        AdminAnswer::Shards(shards) => shards,
        other => panic!("not a shard list: {other:?}"),
    }
}

fn owner(admin: &AdminMailbox, topic: &str, partition: u32) -> u32 {
    let owners: Vec<u32> = shards(admin)
        .iter()
        .filter(|s| {
            s.partitions
                .iter()
                .any(|p| p.topic == topic && p.partition == partition)
        })
        .map(|s| s.shard)
        .collect();
    assert_eq!(
        owners.len(),
        1,
        "{topic}-{partition} has one owner: {owners:?}"
    );
    owners[0]
}

fn move_to(admin: &AdminMailbox, topic: &str, partition: u32, to_shard: u32) -> Moved {
    let request = AdminRequest::Move {
        topic: topic.into(),
        partition,
        to_shard,
    };
    match admin.call(request) {
        Ok(AdminAnswer::Moved(moved)) => moved,
        other => panic!("not moved: {other:?}"),
    }
}

fn start(name: &str, shards: usize) -> (Server, Arc<AdminMailbox>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    restart(dir, shards)
}

fn restart(dir: PathBuf, shards: usize) -> (Server, Arc<AdminMailbox>) {
    let mut admin = None;
    let server = Server::start_in(dir, |config| {
        config.shards = shards;
        config.metrics = Arc::new(ringlog_shard::metrics::Metrics::new(shards));
        admin = Some(config.admin.clone());
    });
    (server, admin.unwrap())
}

#[test]
fn a_partition_moves_back_and_forth_and_keeps_every_record_and_producer() {
    let (server, admin) = start("moves-back-and-forth", 2);
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, 5, "m", 2);
    let value = |i: usize| format!("record-{i:04}").into_bytes();
    let mut written = 0;
    for _ in 0..5 {
        produce(&mut client, "m", 0, build_batch(1, &[&value(written)]));
        written += 1;
    }
    for round in 0..4 {
        let from = owner(&admin, "m", 0);
        let to = 1 - from;
        let moved = move_to(&admin, "m", 0, to);
        assert_eq!((moved.from_shard, moved.to_shard), (from, to));
        assert!(moved.unavailable_ms > 0.0);
        assert_eq!(owner(&admin, "m", 0), to, "round {round}");
        for _ in 0..5 {
            produce(&mut client, "m", 0, build_batch(1, &[&value(written)]));
            written += 1;
        }
    }
    let expected: Vec<Vec<u8>> = (0..written).map(value).collect();
    assert!(holds(&batches_of(&mut client, "m", 0), &expected));
    // The other partition stayed where it was, untouched.
    assert!(batches_of(&mut client, "m", 1).is_empty());

    // An idempotent producer's state moves with the partition: a retry of
    // its last batch after the move is a duplicate (same offset), and its
    // next sequence is accepted.
    let ResponseKind::InitProducerId(init) = client.call(
        4,
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    ) else {
        panic!("not InitProducerId");
    };
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);
    assert_eq!(init.error_code, 0);
    // Timestamped now: a reopened log expires producers whose last batch
    // is older than the expiration, by batch time, as Kafka does.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let batch = |seq: i32| build_producer_batch(now_ms, &[b"idempotent"], id, epoch, seq);
    let first = produce(&mut client, "m", 1, batch(0));
    let to = 1 - owner(&admin, "m", 1);
    move_to(&admin, "m", 1, to);
    assert_eq!(produce(&mut client, "m", 1, batch(0)), first, "a duplicate");
    assert_eq!(produce(&mut client, "m", 1, batch(1)), first + 1);
    assert_eq!(batches_of(&mut client, "m", 1).len(), 2);
}

#[test]
fn bad_moves_get_clear_errors_and_change_nothing() {
    let (server, admin) = start("moves-bad-input", 2);
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, 5, "b", 1);
    produce(&mut client, "b", 0, build_batch(1, &[b"kept"]));
    let at = owner(&admin, "b", 0);
    let refused = |topic: &str, partition: u32, to_shard: u32| {
        let request = AdminRequest::Move {
            topic: topic.into(),
            partition,
            to_shard,
        };
        admin.call(request).expect_err("refused")
    };
    let e = refused("b", 0, 7);
    assert_eq!(e.kind, AdminFailureKind::BadRequest);
    assert!(
        e.message.contains("shard 7 does not exist"),
        "{}",
        e.message
    );
    let e = refused("nope", 0, 1);
    assert_eq!(e.kind, AdminFailureKind::NotFound);
    assert!(
        e.message.contains("\"nope\" does not exist"),
        "{}",
        e.message
    );
    let e = refused("b", 3, 1);
    assert_eq!(e.kind, AdminFailureKind::NotFound);
    assert!(
        e.message.contains("partition 3 does not exist"),
        "{}",
        e.message
    );
    let e = refused("b", 0, at);
    assert_eq!(e.kind, AdminFailureKind::BadRequest);
    assert!(e.message.contains("already on shard"), "{}", e.message);
    assert_eq!(owner(&admin, "b", 0), at);
    assert!(holds(&batches_of(&mut client, "b", 0), &[b"kept".to_vec()]));

    // Two moves of one partition at once: the second is refused while the
    // first runs. Calls race, so rounds repeat (bounded) until one
    // overlaps; every move that is not refused must succeed.
    let mut conflicts = 0;
    for _ in 0..50 {
        let from = owner(&admin, "b", 0);
        let to = 1 - from;
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let admin = admin.clone();
                std::thread::spawn(move || {
                    admin.call(AdminRequest::Move {
                        topic: "b".into(),
                        partition: 0,
                        to_shard: to,
                    })
                })
            })
            .collect();
        for call in calls {
            match call.join().unwrap() {
                Ok(AdminAnswer::Moved(moved)) => assert_eq!(moved.to_shard, to),
                Err(e) if e.kind == AdminFailureKind::Conflict => {
                    assert!(e.message.contains("already running"), "{}", e.message);
                    conflicts += 1;
                }
                // The second call ran after the first finished.
                Err(e) if e.kind == AdminFailureKind::BadRequest => {
                    assert!(e.message.contains("already on shard"), "{}", e.message);
                }
                other => panic!("unexpected: {other:?}"),
            }
        }
        if conflicts > 0 {
            break;
        }
    }
    assert!(conflicts > 0, "no two moves overlapped in 50 rounds");
    assert!(holds(&batches_of(&mut client, "b", 0), &[b"kept".to_vec()]));
}

#[test]
fn restarts_with_one_two_and_three_shards_keep_everything_placed_evenly() {
    let name = "moves-shard-count";
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let (server, _) = start(name, 2);
    let mut client = Client::connect(server.addr);
    let topics = [("a", 3), ("b", 2), ("c", 1)];
    for (topic, partitions) in topics {
        create_topic(&mut client, 5, topic, partitions);
        for p in 0..partitions {
            let value = format!("value-{topic}-{p}");
            produce(&mut client, topic, p, build_batch(1, &[value.as_bytes()]));
        }
    }
    drop(client);
    drop(server);
    for shards_now in [1usize, 2, 3] {
        let (server, admin) = restart(dir.clone(), shards_now);
        let mut client = Client::connect(server.addr);
        for (topic, partitions) in topics {
            for p in 0..partitions {
                let got = batches_of(&mut client, topic, p);
                let wanted = [format!("value-{topic}-{p}").into_bytes()];
                assert!(holds(&got, &wanted), "{topic}-{p} with {shards_now} shards");
            }
        }
        let counts: Vec<usize> = shards(&admin).iter().map(|s| s.partitions.len()).collect();
        assert_eq!(counts.len(), shards_now);
        assert_eq!(counts.iter().sum::<usize>(), 6, "{counts:?}");
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(
            max - min <= 1,
            "even placement with {shards_now} shards: {counts:?}"
        );
    }
}

#[test]
fn a_rebalance_by_count_evens_out_a_skewed_placement() {
    let (server, admin) = start("moves-rebalance", 2);
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, 5, "r", 4);
    // Everything onto shard 0.
    for p in 0..4 {
        if owner(&admin, "r", p) != 0 {
            move_to(&admin, "r", p, 0);
        }
    }
    let dry = match admin.call(AdminRequest::Rebalance {
        by: BalanceBy::Count,
        dry_run: true,
    }) {
        Ok(AdminAnswer::Rebalanced(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(dry.before, vec![4.0, 0.0]);
    assert_eq!(dry.after, vec![2.0, 2.0]);
    assert_eq!(dry.plan.len(), 2);
    assert!(dry.moved.is_empty());
    let counts = |admin: &AdminMailbox| -> Vec<usize> {
        shards(admin).iter().map(|s| s.partitions.len()).collect()
    };
    assert_eq!(counts(&admin), vec![4, 0], "a dry run moves nothing");
    let done = match admin.call(AdminRequest::Rebalance {
        by: BalanceBy::Count,
        dry_run: false,
    }) {
        Ok(AdminAnswer::Rebalanced(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(done.moved.len(), 2);
    assert_eq!(counts(&admin), vec![2, 2]);
    for p in 0..4 {
        produce(&mut client, "r", p, build_batch(1, &[b"after"]));
        assert_eq!(batches_of(&mut client, "r", p).len(), 1);
    }
}
