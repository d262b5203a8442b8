//! Two shards on real executors: requests cross the mesh to the owning
//! shard; produce, fetch (with long-poll) and offsets work end to end.

use bytes::Bytes;
use futures_channel::oneshot;
use ringlog_engine::batch::build_batch;
use ringlog_engine::LogConfig;
use ringlog_shard::message::{OffsetQuery, ShardRequest};
use ringlog_shard::runtime::{run_pool, ShardClient};
use ringlog_shard::server::ServerConfig;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn data_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn produce(client: &ShardClient, to: usize, value: &[u8], durable: bool) -> u64 {
    let (reply, answer) = oneshot::channel();
    let batch = Bytes::from(build_batch(1_000, &[value]));
    client
        .send(
            to,
            ShardRequest::Produce {
                topic: "t".into(),
                partition: 0,
                batches: vec![batch],
                durable,
                reply,
            },
        )
        .await;
    answer.await.unwrap().unwrap().0
}

async fn fetch(client: &ShardClient, to: usize, offset: u64, max_wait: Duration) -> Bytes {
    let (reply, answer) = oneshot::channel();
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
    run_pool(config, |client: Rc<ShardClient>| async move {
        assert_eq!(client.shard_count(), 2);
        let (reply, answer) = oneshot::channel();
        client
            .send(
                1,
                ShardRequest::Open {
                    topic: "t".into(),
                    partition: 0,
                    config: LogConfig::default(),
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

        let (reply, answer) = oneshot::channel();
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
        let (reply, answer) = oneshot::channel();
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
