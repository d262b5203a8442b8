//! The engine fuzz targets' corpora, replayed on stable.
//!
//! `engine/fuzz` runs [`segment_recovery`] and [`metadata_log_replay`]
//! under cargo-fuzz on nightly (see `ci/fuzz.sh`). This test runs the same
//! checks over every committed input (`engine/fuzz/corpus/<target>/` and
//! `engine/fuzz/regressions/<target>/`), so the corpora and every fixed
//! finding are exercised by `cargo test` wherever CI runs, with or without
//! a nightly toolchain. A counting allocator stands in for libFuzzer's
//! `-malloc_limit_mb`: no single allocation may exceed
//! [`ALLOCATION_BYTES_MAX`].
//!
//! The seed inputs are real files written by the engine (a partition log
//! with rolls, idempotent producers, DeleteRecords and a crash image; a
//! meta log with every event kind, a snapshot and a crash image). They are
//! rebuilt here and must recover exactly; to rewrite the committed seeds
//! after a format change:
//!
//! ```sh
//! cargo test -p ringlog-engine --test fuzz_corpus -- --ignored write_seed_corpus
//! ```

use ringlog_engine::batch::{build_batch, build_producer_batch};
use ringlog_engine::format::{
    parse_segment_file_name, LOG_START_FILE_NAME, META_SNAPSHOT_EXTENSION, OFFSET_INDEX_EXTENSION,
    OFFSET_MAX, PRODUCER_SNAPSHOT_EXTENSION, SEGMENT_EXTENSION, TIME_INDEX_EXTENSION,
};
use ringlog_engine::fuzzing::{
    block_on, metadata_log_replay, segment_recovery, FileKind, FuzzFile, FuzzInput, Layout,
    META_DIR, NOW_MS, PARTITION_DIR,
};
use ringlog_engine::fuzzing::{replay_corpus, WatchedAllocator};
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::io::TMP_SUFFIX;
use ringlog_engine::meta::{
    GroupMemberRecord, GroupStored, MetaConfig, MetaEvent, MetaLog, OffsetCommit, OffsetsCommitted,
    OffsetsDeleted, PartitionPlaced, PartitionsAdded, ProducerIdBlock, TopicConfigChanged,
    TopicCreated, TopicDeleted, UserScramCredential, UserScramCredentialDeleted,
};
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, LogConfig};
use std::path::{Path, PathBuf};

#[global_allocator]
static ALLOCATOR: WatchedAllocator = WatchedAllocator;

/// Runs `check` on every committed input of `target`; returns how many.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    replay_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        target,
        check,
    )
}

#[test]
fn segment_recovery_corpus() {
    let replayed = replay("segment_recovery", |input| {
        block_on(segment_recovery(input))
    });
    assert!(replayed >= partition_seeds().len(), "{replayed} inputs");
}

#[test]
fn metadata_log_replay_corpus() {
    let replayed = replay("metadata_log_replay", |input| {
        block_on(metadata_log_replay(input))
    });
    assert!(replayed >= meta_seeds().len(), "{replayed} inputs");
}

/// The committed seeds are exactly what the seed builders make now.
#[test]
fn committed_seeds_are_current() {
    for (target, seeds) in [
        ("segment_recovery", partition_seeds()),
        ("metadata_log_replay", meta_seeds()),
    ] {
        for (name, input) in seeds {
            let path = seed_path(target, &name);
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; rewrite the seeds (see the module docs)",
                    path.display()
                )
            });
            assert!(committed == input, "{} is stale", path.display());
        }
    }
}

/// Real partition logs recover exactly what was written.
#[test]
fn partition_seeds_recover_every_batch() {
    for (name, input) in partition_seeds() {
        block_on(async {
            let storage = MemStorage::new();
            FuzzInput::decode(&input).install(&storage, Layout::Partition);
            let log = PartitionLog::open(
                storage,
                PARTITION_DIR,
                ringlog_engine::fuzzing::partition_config(),
                Clock::manual(NOW_MS),
            )
            .await
            .unwrap_or_else(|e| panic!("seed {name}: {e}"));
            let (start, end) = (log.log().log_start_offset(), log.log().next_offset());
            assert!(
                end > start || name.ends_with("empty"),
                "seed {name} holds data"
            );
            let mut offset = start;
            while offset < end {
                let batches = log.log().read(offset, 1 << 20).await.expect("read");
                offset = batches.next_offset().expect("a frame below the end");
            }
        });
    }
}

/// Real meta logs replay to their end.
#[test]
fn meta_seeds_replay_to_their_end() {
    for (name, input) in meta_seeds() {
        block_on(async {
            let storage = MemStorage::new();
            FuzzInput::decode(&input).install(&storage, Layout::Meta);
            let meta = MetaLog::open(
                storage,
                META_DIR,
                ringlog_engine::fuzzing::meta_config(),
                Clock::manual(NOW_MS),
            )
            .await
            .unwrap_or_else(|e| panic!("seed {name}: {e}"));
            assert!(meta.applied_offset() > 0, "seed {name} holds events");
        });
    }
}

/// Writes the seeds into `engine/fuzz/corpus/<target>/seed-<name>`.
#[test]
#[ignore = "rewrites the committed seed corpus"]
fn write_seed_corpus() {
    for (target, seeds) in [
        ("segment_recovery", partition_seeds()),
        ("metadata_log_replay", meta_seeds()),
    ] {
        for (name, input) in seeds {
            let path = seed_path(target, &name);
            std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
            std::fs::write(&path, input).expect("write seed");
        }
    }
}

fn seed_path(target: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
        .join(format!("seed-{name}"))
}

/// The files of `storage` as a fuzz input (sealed as written).
fn input_of(storage: &MemStorage, layout: Layout) -> Vec<u8> {
    let mut files = Vec::new();
    for path in storage.paths() {
        let bytes = storage.file_bytes(&path).expect("listed");
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
        let extension = name.rsplit('.').next().expect("a name");
        let kind = match extension {
            _ if name.ends_with(TMP_SUFFIX) => FileKind::Leftover,
            _ if name == LOG_START_FILE_NAME => FileKind::LogStart,
            SEGMENT_EXTENSION => FileKind::Segment,
            OFFSET_INDEX_EXTENSION => FileKind::OffsetIndex,
            TIME_INDEX_EXTENSION => FileKind::TimeIndex,
            PRODUCER_SNAPSHOT_EXTENSION => FileKind::ProducerSnapshot,
            META_SNAPSHOT_EXTENSION => FileKind::MetaSnapshot,
            _ => panic!("unexpected file {}", path.display()),
        };
        let name_offset = name
            .get(..20)
            .and_then(|stem| stem.parse().ok())
            .unwrap_or(0);
        let file = FuzzFile {
            kind,
            name_offset,
            bytes,
        };
        // Leftovers are named by the harness alone: any `.tmp` is one.
        if kind != FileKind::Leftover {
            assert_eq!(
                FuzzInput::path(layout, &file),
                path,
                "the input names the file as the engine did"
            );
            assert!(
                kind == FileKind::LogStart || parse_segment_file_name(name, extension).is_some()
            );
        }
        files.push(file);
    }
    FuzzInput {
        reseal: false,
        files,
    }
    .encode()
}

/// Small segments so a seed of a few KiB holds several of them.
fn seed_partition_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        max_payload_bytes: 1024,
        ..ringlog_engine::fuzzing::partition_config()
    }
}

/// Appends batches `batches` (numbered across calls): plain ones and two
/// idempotent producers, with growing timestamps and one out of order.
async fn fill_partition(log: &PartitionLog<MemStorage>, batches: std::ops::Range<i32>) {
    for i in batches {
        let value = format!("value-{i}");
        let producer = i % 3;
        // Producer p's batches hold 1 + p records each.
        let values = vec![value.as_bytes(); 1 + producer as usize];
        let timestamp = NOW_MS - 10_000 + i as i64 * 100 - if i == 5 { 5_000 } else { 0 };
        let batch = match producer {
            0 => build_batch(timestamp, &values),
            _ => build_producer_batch(
                timestamp,
                &values,
                producer as i64 * 1000,
                0,
                (i / 3) * (1 + producer),
            ),
        };
        log.append(&batch).await.expect("append");
    }
}

/// (name, input) of the partition log seeds.
fn partition_seeds() -> Vec<(String, Vec<u8>)> {
    block_on(async {
        let mut seeds = Vec::new();
        let open = |storage: &MemStorage| {
            PartitionLog::open(
                storage.clone(),
                PARTITION_DIR,
                seed_partition_config(),
                Clock::manual(NOW_MS),
            )
        };

        let empty = MemStorage::new();
        open(&empty)
            .await
            .expect("open")
            .close()
            .await
            .expect("close");
        seeds.push((
            "partition-empty".into(),
            input_of(&empty, Layout::Partition),
        ));

        let clean = MemStorage::new();
        let log = open(&clean).await.expect("open");
        fill_partition(&log, 0..24).await;
        log.close().await.expect("close");
        seeds.push((
            "partition-closed".into(),
            input_of(&clean, Layout::Partition),
        ));

        let deleted = MemStorage::new();
        let log = open(&deleted).await.expect("open");
        fill_partition(&log, 0..16).await;
        log.delete_records_below(9).await.expect("delete records");
        fill_partition(&log, 16..20).await;
        log.close().await.expect("close");
        seeds.push((
            "partition-delete-records".into(),
            input_of(&deleted, Layout::Partition),
        ));

        // A log ending one offset below the largest: recovery turns a
        // blank segment file into the empty log ending at its name, and
        // the 24 batches cover 48 offsets.
        let high = MemStorage::new();
        let base = OFFSET_MAX - 49;
        high.set_file_bytes(
            &Path::new(PARTITION_DIR).join(format!("{base:020}.log")),
            vec![0; 4096],
        );
        let log = open(&high).await.expect("open");
        assert_eq!(log.log().next_offset(), base);
        fill_partition(&log, 0..24).await;
        assert_eq!(log.log().next_offset(), OFFSET_MAX - 1);
        log.close().await.expect("close");
        seeds.push((
            "partition-high-offsets".into(),
            input_of(&high, Layout::Partition),
        ));

        // Crash images taken before each write and sync of appends that
        // roll: torn tails, unsynced index blocks, half-written snapshots.
        let crashing = MemStorage::new();
        let log = open(&crashing).await.expect("open");
        fill_partition(&log, 0..12).await;
        crashing.record_crash_images(7);
        fill_partition(&log, 12..24).await;
        let images = crashing.take_crash_images();
        drop(log);
        for (i, image) in images.iter().enumerate().step_by(images.len() / 4) {
            seeds.push((
                format!("partition-crash-{i}"),
                input_of(image, Layout::Partition),
            ));
        }
        seeds
    })
}

fn meta_events() -> Vec<MetaEvent> {
    let topic = |name: &str, n: u8, partitions| {
        MetaEvent::TopicCreated(TopicCreated {
            name: name.into(),
            topic_id: [n; 16],
            partitions,
            configs: vec![("retention.ms".into(), "60000".into())],
        })
    };
    let place = |topic: &str, partition, shard| {
        MetaEvent::PartitionPlaced(PartitionPlaced {
            topic: topic.into(),
            partition,
            shard,
        })
    };
    let mut events = vec![
        topic("orders", 1, 3),
        place("orders", 0, 0),
        place("orders", 1, 1),
        place("orders", 2, 0),
        topic("logs", 2, 1),
        place("logs", 0, 1),
        MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name: "logs".into(),
            set: vec![("cleanup.policy".into(), "delete".into())],
            remove: vec!["retention.ms".into()],
        }),
        MetaEvent::PartitionsAdded(PartitionsAdded {
            name: "orders".into(),
            new_total: 4,
        }),
        place("orders", 3, 1),
        MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end: 1000 }),
        MetaEvent::GroupStored(GroupStored {
            group: "billing".into(),
            generation: 1,
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            leader: "member-1".into(),
            state_ms: NOW_MS,
            members: vec![GroupMemberRecord {
                member_id: "member-1".into(),
                instance_id: Some("instance-1".into()),
                client_id: "client".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: vec![0, 1, 2],
                assignment: vec![3, 4],
            }],
        }),
    ];
    for offset in 0..12 {
        events.push(MetaEvent::OffsetsCommitted(OffsetsCommitted {
            group: "billing".into(),
            commit_ms: NOW_MS + offset,
            offsets: vec![OffsetCommit {
                topic: "orders".into(),
                partition: (offset % 4) as u32,
                offset,
                leader_epoch: -1,
                metadata: format!("checkpoint-{offset}"),
            }],
        }));
    }
    events.extend([
        MetaEvent::OffsetsDeleted(OffsetsDeleted {
            group: "billing".into(),
            partitions: vec![("orders".into(), 1)],
        }),
        MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end: 2000 }),
        MetaEvent::TopicDeleted(TopicDeleted {
            name: "logs".into(),
        }),
        MetaEvent::GroupDeleted(ringlog_engine::meta::GroupDeleted {
            group: "billing".into(),
        }),
    ]);
    // SCRAM credentials: one user with both mechanisms, then one deleted.
    for (mechanism, keys) in [("SCRAM-SHA-256", 32), ("SCRAM-SHA-512", 64)] {
        events.push(MetaEvent::UserScramCredential(UserScramCredential {
            user: "alice".into(),
            mechanism: mechanism.into(),
            salt: vec![1; 32],
            iterations: 4096,
            stored_key: vec![2; keys],
            server_key: vec![3; keys],
        }));
    }
    events.push(MetaEvent::UserScramCredentialDeleted(
        UserScramCredentialDeleted {
            user: "alice".into(),
            mechanism: "SCRAM-SHA-256".into(),
        },
    ));
    events
}

/// Small meta segments so a seed holds several of them.
fn seed_meta_config() -> MetaConfig {
    MetaConfig {
        segment_bytes: 2048,
        max_event_bytes: 1024,
        ..ringlog_engine::fuzzing::meta_config()
    }
}

/// (name, input) of the metadata log seeds.
fn meta_seeds() -> Vec<(String, Vec<u8>)> {
    block_on(async {
        let mut seeds = Vec::new();
        let open = |storage: &MemStorage| {
            MetaLog::open(
                storage.clone(),
                META_DIR,
                seed_meta_config(),
                Clock::manual(NOW_MS),
            )
        };
        let events = meta_events();
        let (early, late) = events.split_at(events.len() / 2);

        let replay_only = MemStorage::new();
        let meta = open(&replay_only).await.expect("open");
        for event in &events {
            meta.append(event).await.expect("append");
        }
        meta.close().await.expect("close");
        seeds.push(("meta-replay".into(), input_of(&replay_only, Layout::Meta)));

        let snapshotted = MemStorage::new();
        let meta = open(&snapshotted).await.expect("open");
        for event in early {
            meta.append(event).await.expect("append");
        }
        meta.snapshot().await.expect("snapshot");
        for event in late {
            meta.append(event).await.expect("append");
        }
        meta.close().await.expect("close");
        seeds.push(("meta-snapshot".into(), input_of(&snapshotted, Layout::Meta)));

        // Crash images taken before each step of a snapshot and of the
        // appends after it: a snapshot's temp file, torn event frames.
        let crashing = MemStorage::new();
        let meta = open(&crashing).await.expect("open");
        for event in early {
            meta.append(event).await.expect("append");
        }
        crashing.record_crash_images(11);
        meta.snapshot().await.expect("snapshot");
        for event in late {
            meta.append(event).await.expect("append");
        }
        let images = crashing.take_crash_images();
        drop(meta);
        for (i, image) in images.iter().enumerate().step_by(images.len() / 4) {
            seeds.push((format!("meta-crash-{i}"), input_of(image, Layout::Meta)));
        }
        seeds
    })
}
