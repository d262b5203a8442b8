//! Two shards on real executors: requests cross the mesh to the owning
//! shard; produce, fetch (with long-poll) and offsets work end to end.

use bytes::Bytes;
use futures_lite::future::BoxedLocal;
use ringlog_engine::batch::build_batch;
use ringlog_engine::LogConfig;
use ringlog_shard::config::ServerConfig;
use ringlog_shard::message::{OffsetQuery, OpenReply, ServiceRequest, ShardRequest};
use ringlog_shard::runtime::{run_pool, Service, ShardClient};
use ringlog_shard::wake;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The runtime on its own: no layer above it.
struct Alone;

impl Service for Alone {
    fn handle(self: Rc<Self>, _: ServiceRequest) -> BoxedLocal<()> {
        unreachable!("these tests send nothing to the layers above the runtime")
    }
}

fn alone(_: &Rc<ShardClient>) -> Rc<Alone> {
    Rc::new(Alone)
}

fn data_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn produce(client: &ShardClient, to: usize, value: &[u8], durable: bool) -> u64 {
    produce_to(client, to, 0, value, durable).await
}

async fn produce_to(
    client: &ShardClient,
    to: usize,
    partition: u32,
    value: &[u8],
    durable: bool,
) -> u64 {
    let (reply, answer) = wake::channel();
    let batch = Bytes::from(build_batch(1_000, &[value]));
    client
        .send(
            to,
            ShardRequest::Produce {
                topic: "t".into(),
                partition,
                batches: vec![batch],
                durable,
                reply,
            },
        )
        .await;
    answer.await.unwrap().unwrap().base_offset
}

async fn fetch(client: &ShardClient, to: usize, offset: u64, max_wait: Duration) -> Bytes {
    let (reply, answer) = wake::channel();
    client
        .send(
            to,
            ShardRequest::Fetch {
                topic: "t".into(),
                partition: 0,
                offset,
                max_bytes: 1 << 20,
                max_wait,
                reply,
            },
        )
        .await;
    answer.await.unwrap().records.unwrap()
}

#[test]
fn produce_and_fetch_cross_the_mesh_to_the_owning_shard() {
    let dir = data_dir("runtime-two-shards");
    let config = Arc::new(ServerConfig::new(dir.clone(), 2));
    run_pool(config, alone, |client: Rc<ShardClient>, _| async move {
        assert_eq!(client.shard_count(), 2);
        let (reply, answer) = wake::channel();
        client
            .send(
                1,
                ShardRequest::Open {
                    topic: "t".into(),
                    partition: 0,
                    config: LogConfig::default(),
                    answer: OpenReply::Opened,
                    reply,
                },
            )
            .await;
        answer.await.unwrap().unwrap();
        assert_eq!(produce(&client, 1, b"first", true).await, 0);
        assert_eq!(produce(&client, 1, b"second", true).await, 1);
        let records = fetch(&client, 1, 0, Duration::ZERO).await;
        assert!(
            records.windows(5).any(|w| w == b"first") && records.windows(6).any(|w| w == b"second")
        );

        // Long-poll: a fetch waiting at the end wakes on new data.
        let waiting = {
            let client = client.clone();
            glommio::spawn_local(async move {
                let started = Instant::now();
                let got = fetch(&client, 1, 2, Duration::from_secs(5)).await;
                (got, started.elapsed())
            })
        };
        glommio::timer::sleep(Duration::from_millis(100)).await;
        produce(&client, 1, b"third", false).await;
        let (got, waited) = waiting.await;
        assert!(
            got.windows(5).any(|w| w == b"third"),
            "woken fetch returns the new batch"
        );
        assert!(
            waited < Duration::from_secs(2),
            "woke on data, not at max_wait: {waited:?}"
        );

        // An idle fetch returns after max_wait, not before.
        let started = Instant::now();
        assert!(fetch(&client, 1, 3, Duration::from_millis(300))
            .await
            .is_empty());
        let idle = started.elapsed();
        assert!(
            idle >= Duration::from_millis(300) && idle < Duration::from_millis(1500),
            "{idle:?}"
        );

        let (reply, answer) = wake::channel();
        client
            .send(
                1,
                ShardRequest::Offsets {
                    topic: "t".into(),
                    partition: 0,
                    query: OffsetQuery::Latest,
                    reply,
                },
            )
            .await;
        assert_eq!(answer.await.unwrap().unwrap().0.map(|f| f.offset), Some(3));
        // Unknown partition: a typed error, not a hang.
        let (reply, answer) = wake::channel();
        client
            .send(
                0,
                ShardRequest::Offsets {
                    topic: "t".into(),
                    partition: 0,
                    query: OffsetQuery::Latest,
                    reply,
                },
            )
            .await;
        assert!(answer.await.unwrap().is_err());
    })
    .unwrap();
    // Shutdown closed the logs: the data is on disk in the owner's partition directory.
    let segment = dir.join("topics/t/0").join(format!("{:020}.log", 0));
    assert!(std::fs::metadata(&segment).unwrap().len() > 64);
}

/// Asks shard `to` to open partition `partition` of "t", answered once it
/// is registered (as CreateTopics does).
async fn register(client: &ShardClient, to: usize, partition: u32) {
    let (reply, answer) = wake::channel();
    let request = ShardRequest::Open {
        topic: "t".into(),
        partition,
        config: LogConfig::default(),
        answer: OpenReply::Registered,
        reply,
    };
    client.send(to, request).await;
    answer.await.unwrap().unwrap();
}

#[test]
fn a_registered_partition_gets_its_log_from_the_first_request_that_needs_it() {
    let dir = data_dir("runtime-unopened");
    let config = Arc::new(ServerConfig::new(dir.clone(), 2));
    let (data, checked) = (dir.clone(), dir.clone());
    run_pool(config, alone, |client: Rc<ShardClient>, _| async move {
        let partitions = &client.local().partitions;
        // On this shard: registered inline, no files yet.
        register(&client, 0, 0).await;
        assert_eq!(partitions.unopened_count(), 1);
        assert!(
            !data.join("topics/t/0").exists(),
            "registering creates no files"
        );
        // Two produces at once: one creates the log, the other waits for it.
        let (a, b) = futures_lite::future::zip(
            produce_to(&client, 0, 0, b"first", true),
            produce_to(&client, 0, 0, b"second", true),
        )
        .await;
        assert_eq!((a.min(b), a.max(b)), (0, 1));
        assert_eq!(
            partitions.unopened_count(),
            0,
            "the produce created the log"
        );
        assert!(data.join("topics/t/0").is_dir());

        // On the other shard: produce and offsets right after registration.
        register(&client, 1, 1).await;
        assert_eq!(produce_to(&client, 1, 1, b"remote", true).await, 0);
        let (reply, answer) = wake::channel();
        let query = ShardRequest::Offsets {
            topic: "t".into(),
            partition: 1,
            query: OffsetQuery::Latest,
            reply,
        };
        client.send(1, query).await;
        assert_eq!(answer.await.unwrap().unwrap().0.map(|f| f.offset), Some(1));

        // A reconfigured unopened partition gets the new settings when its
        // log is created.
        register(&client, 0, 3).await;
        let reconfigure = |segment_bytes| {
            let (reply, answer) = wake::channel();
            let request = ShardRequest::Reconfigure {
                topic: "t".into(),
                partition: 3,
                config: LogConfig {
                    segment_bytes,
                    ..LogConfig::default()
                },
                reply,
            };
            (request, answer)
        };
        let (request, answer) = reconfigure(1024);
        client.send(0, request).await;
        assert!(
            answer.await.unwrap().is_err(),
            "an invalid configuration is refused before any log exists"
        );
        let segment_bytes = 4 << 20;
        let (request, answer) = reconfigure(segment_bytes);
        client.send(0, request).await;
        answer.await.unwrap().unwrap();
        assert_eq!(
            partitions.unopened_count(),
            1,
            "reconfiguring opens nothing"
        );
        assert_eq!(produce_to(&client, 0, 3, b"configured", true).await, 0);
        let log = partitions.ready("t", 3).await.unwrap();
        assert_eq!(log.log.log().config().segment_bytes, segment_bytes);

        // Remove right after registration: nothing was created, nothing
        // is left, and the partition is unknown afterwards.
        register(&client, 0, 2).await;
        let (reply, answer) = wake::channel();
        let remove = ShardRequest::Remove {
            topic: "t".into(),
            partition: 2,
            reply,
        };
        client.send(0, remove).await;
        answer.await.unwrap().unwrap();
        assert_eq!(partitions.unopened_count(), 0);
        let (reply, answer) = wake::channel();
        let query = ShardRequest::Offsets {
            topic: "t".into(),
            partition: 2,
            query: OffsetQuery::Latest,
            reply,
        };
        client.send(0, query).await;
        assert!(
            answer.await.unwrap().is_err(),
            "a removed partition is unknown"
        );
    })
    .unwrap();
    assert!(checked.join("topics/t/0").is_dir());
    assert!(checked.join("topics/t/1").is_dir());
    assert!(!checked.join("topics/t/2").exists(), "never created");
}
