//! Topic creation over the wire: CreateTopics answers once the metadata is
//! durable while the owners are still creating the logs, so everything a
//! client does right after the answer — on the same or another connection,
//! through the same or another shard's router — must find the topic and
//! wait for the logs, never fail. Also: deletes racing creates, concurrent
//! creates of one name and of many names (placement stays balanced).

mod common;

use bytes::Bytes;
use common::{create_topic, fetch_from_start, name, try_create_topic, Client, Server};
use kafka_protocol::messages::*;
use ringlog_engine::batch::build_batch;
use ringlog_engine::meta::{MetaConfig, MetaLog};
use ringlog_engine::Clock;
use ringlog_shard::config::RouterCores;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

/// The newest versions of each API (all carry the fields used here).
const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 6;
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 6;
const METADATA_VERSION: i16 = 12;

fn try_create(client: &mut Client, topic: &str, partitions: i32) -> i16 {
    try_create_topic(client, CREATE_TOPICS_VERSION, topic, partitions)
}

fn delete(client: &mut Client, topic: &str) -> i16 {
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![
            delete_topics_request::DeleteTopicState::default().with_name(Some(name(topic)))
        ])
        .with_timeout_ms(10_000);
    let ResponseKind::DeleteTopics(response) = client.call(DELETE_TOPICS_VERSION, request) else {
        panic!("not DeleteTopics");
    };
    response.responses[0].error_code
}

/// Produces one batch with `value`; (error code, base offset).
fn produce(client: &mut Client, topic: &str, partition: i32, value: &[u8]) -> (i16, i64) {
    let batch = build_batch(1_700_000_000_000, &[value]);
    let answer = common::produce_batch(client, PRODUCE_VERSION, topic, partition, batch);
    (answer.error_code, answer.base_offset)
}

/// The latest offset of each of `partitions`: (error code, offset).
fn latest(client: &mut Client, topic: &str, partitions: i32) -> Vec<(i16, i64)> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(-1)
                    })
                    .collect(),
            )]);
    let ResponseKind::ListOffsets(response) = client.call(LIST_OFFSETS_VERSION, request) else {
        panic!("not ListOffsets");
    };
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect()
}

/// Fetches from offset 0 without waiting: (error code, record batches).
fn fetch(client: &mut Client, topic: &str, partition: i32) -> (i16, Bytes) {
    let request = fetch_from_start(topic, partition);
    let ResponseKind::Fetch(response) = client.call(FETCH_VERSION, request) else {
        panic!("not Fetch");
    };
    let answer = &response.responses[0].partitions[0];
    (
        answer.error_code,
        answer.records.clone().unwrap_or_default(),
    )
}

fn metadata_error(client: &mut Client, topic: &str) -> i16 {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    let ResponseKind::Metadata(response) = client.call(METADATA_VERSION, request) else {
        panic!("not Metadata");
    };
    response.topics[0].error_code
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn connect_all(addr: SocketAddr, count: usize) -> Vec<Client> {
    (0..count).map(|_| Client::connect(addr)).collect()
}

/// Partitions placed on each shard, read from the meta log of a stopped
/// server.
fn placements_per_shard(data_dir: PathBuf, shards: usize) -> Vec<usize> {
    let executor = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor");
    executor.run(async move {
        let meta = MetaLog::open(
            ringlog_engine::io::dma::DmaStorage,
            data_dir.join("meta"),
            MetaConfig::default(),
            Clock::System,
        )
        .await
        .expect("meta log opens");
        let mut load = vec![0; shards];
        meta.with_state(|state| {
            for (_, topic) in state.topics() {
                for shard in &topic.partitions {
                    load[shard.expect("every partition placed") as usize] += 1;
                }
            }
        });
        meta.close().await.expect("meta log closes");
        load
    })
}

#[test]
fn a_new_topic_is_usable_at_once_from_every_connection() {
    // A router on every shard: SO_REUSEPORT spreads the connections, so the
    // requests after each create often reach a router on another shard than
    // the create's, whose replica may not have the topic yet.
    let server = Server::start_with("topics-usable-at-once", |config| {
        config.router_cores = RouterCores::All;
    });
    let mut clients = connect_all(server.addr, 8);
    let count = clients.len();
    const PARTITIONS: i32 = 16;
    for round in 0..40 {
        let topic = format!("instant-{round}");
        let creator = round % count;
        create_topic(
            &mut clients[creator],
            CREATE_TOPICS_VERSION,
            &topic,
            PARTITIONS,
        );
        // Right after the answer, on other connections: the partitions'
        // logs may still be opening on their owners.
        let offsets = latest(&mut clients[(creator + 1) % count], &topic, PARTITIONS);
        assert_eq!(
            offsets,
            vec![(0, 0); PARTITIONS as usize],
            "{topic}: ListOffsets right after CreateTopics"
        );
        let partition = (round as i32) % PARTITIONS;
        let value = format!("value-{round}");
        assert_eq!(
            produce(
                &mut clients[(creator + 2) % count],
                &topic,
                partition,
                value.as_bytes()
            ),
            (0, 0),
            "{topic}: Produce right after CreateTopics"
        );
        let (error, records) = fetch(&mut clients[(creator + 3) % count], &topic, partition);
        assert_eq!(error, 0, "{topic}: Fetch right after CreateTopics");
        assert!(contains(&records, value.as_bytes()), "{topic}: the record");
    }
}

#[test]
fn a_topic_deleted_right_after_its_create_is_gone() {
    let server = Server::start("topics-delete-after-create");
    let mut client = Client::connect(server.addr);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("topics-delete-after-create");
    for round in 0..10 {
        let topic = format!("short-lived-{round}");
        assert_eq!(try_create(&mut client, &topic, 8), 0);
        assert_eq!(delete(&mut client, &topic), 0, "delete right after create");
        assert_eq!(metadata_error(&mut client, &topic), 3, "{topic} is unknown");
        assert!(
            !dir.join("topics").join(&topic).exists(),
            "{topic}: the directory is removed, not recreated by a late open"
        );
    }
}

#[test]
fn delete_and_recreate_one_name_gives_an_empty_writable_topic_each_time() {
    let server = Server::start("topics-recreate");
    let mut clients = connect_all(server.addr, 2);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("topics-recreate");
    const PARTITIONS: i32 = 4;
    for round in 0..20 {
        let (a, b) = clients.split_at_mut(1);
        let (creator, user) = (&mut a[0], &mut b[0]);
        assert_eq!(try_create(creator, "again", PARTITIONS), 0, "round {round}");
        assert_eq!(
            latest(user, "again", PARTITIONS),
            vec![(0, 0); PARTITIONS as usize],
            "round {round}: the recreated topic is empty"
        );
        let value = format!("round-{round}");
        for partition in 0..PARTITIONS {
            assert_eq!(
                produce(user, "again", partition, value.as_bytes()),
                (0, 0),
                "round {round}, partition {partition}"
            );
            let (error, records) = fetch(creator, "again", partition);
            assert_eq!(error, 0);
            assert!(contains(&records, value.as_bytes()), "round {round}");
            if round > 0 {
                let before = format!("round-{}", round - 1);
                assert!(
                    !contains(&records, before.as_bytes()),
                    "round {round}: a record of the deleted topic"
                );
            }
            assert!(
                dir.join("topics/again")
                    .join(partition.to_string())
                    .is_dir(),
                "round {round}: the partition directory survives the delete before it"
            );
        }
        if round < 19 {
            assert_eq!(delete(creator, "again"), 0, "round {round}");
        }
    }
}

#[test]
fn concurrent_creates_of_one_name_exactly_one_succeeds() {
    let server = Server::start("topics-same-name");
    const CLIENTS: usize = 16;
    for round in 0..5 {
        let topic = format!("contested-{round}");
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let codes: Vec<i16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let (barrier, topic, addr) = (barrier.clone(), topic.clone(), server.addr);
                    scope.spawn(move || {
                        let mut client = Client::connect(addr);
                        barrier.wait();
                        try_create(&mut client, &topic, 4)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            codes.iter().filter(|&&c| c == 0).count(),
            1,
            "{topic}: exactly one create succeeds: {codes:?}"
        );
        assert!(
            codes.iter().all(|&c| c == 0 || c == 36),
            "{topic}: the others are TOPIC_ALREADY_EXISTS: {codes:?}"
        );
    }
}

#[test]
fn concurrent_creates_of_many_names_all_exist_and_are_balanced() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("topics-many-names");
    const CLIENTS: usize = 16;
    const TOPICS_PER_CLIENT: usize = 20;
    const PARTITIONS: i32 = 3;
    {
        let server = Server::start("topics-many-names");
        let barrier = Arc::new(Barrier::new(CLIENTS));
        std::thread::scope(|scope| {
            for c in 0..CLIENTS {
                let (barrier, addr) = (barrier.clone(), server.addr);
                scope.spawn(move || {
                    let mut client = Client::connect(addr);
                    barrier.wait();
                    for t in 0..TOPICS_PER_CLIENT {
                        let topic = format!("many-{c}-{t}");
                        assert_eq!(try_create(&mut client, &topic, PARTITIONS), 0, "{topic}");
                    }
                });
            }
        });
    }
    let shards = 2;
    let load = placements_per_shard(dir.clone(), shards);
    let total = CLIENTS * TOPICS_PER_CLIENT * PARTITIONS as usize;
    assert_eq!(load.iter().sum::<usize>(), total, "every partition placed");
    let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
    assert!(max - min <= 1, "placement balanced within one: {load:?}");
    // After a restart every topic is there and writable.
    let server = Server::start_in(dir, |_| {});
    let mut client = Client::connect(server.addr);
    for c in 0..CLIENTS {
        for t in 0..TOPICS_PER_CLIENT {
            let topic = format!("many-{c}-{t}");
            assert_eq!(metadata_error(&mut client, &topic), 0, "{topic}");
        }
    }
    assert_eq!(produce(&mut client, "many-0-0", 2, b"x"), (0, 0));
}
