//! The metadata log: durability before apply, crash recovery, snapshots and
//! their fallbacks, rejected events, concurrency, and a real-disk run.

mod common;
use common::*;
use ringlog_engine::format::{
    segment_file_name, FILE_HEADER_BYTES, FILE_HEADER_OFFSET_AT, FRAME_HEADER_BYTES,
    META_SNAPSHOT_EXTENSION, SEGMENT_EXTENSION,
};
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::io::mem::SplitMix;
use ringlog_engine::io::mem::{Fault, MemStorage, OpKind};
use ringlog_engine::io::Storage;
use ringlog_engine::io::TMP_SUFFIX;
use ringlog_engine::meta::{
    encode_event, log_dir, snapshot_dir, ArchiveSealed, ArchivesTrimmed, GroupDeleted,
    GroupMemberRecord, GroupStored, MetaConfig, MetaEvent, MetaLog, MetaState, OffsetCommit,
    OffsetsCommitted, OffsetsDeleted, PartitionPlaced, PartitionsAdded, ProducerIdBlock,
    ShardsStarted, TopicConfigChanged, TopicCreated, TopicDeleted, UserScramCredential,
    UserScramCredentialDeleted,
};
use ringlog_engine::{Clock, Corruption, Error, Log};
use std::path::{Path, PathBuf};
use std::rc::Rc;

const META: &str = "/data/meta";

/// Small segments so the tests roll through several of them.
fn small_config(snapshot_interval_events: u64) -> MetaConfig {
    MetaConfig {
        segment_bytes: 16 << 10,
        max_event_bytes: 4 << 10,
        snapshot_interval_events,
        snapshots_kept: 2,
    }
}

fn topic_id(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(n + 1).to_le_bytes());
    id[8] = 0xAB;
    id
}

fn create(name: &str, n: u64, partitions: u32) -> MetaEvent {
    MetaEvent::TopicCreated(TopicCreated {
        name: name.into(),
        topic_id: topic_id(n),
        partitions,
        configs: vec![("retention.ms".into(), format!("{}", 1000 * (n + 1)))],
    })
}

fn place(topic: &str, partition: u32, shard: u32) -> MetaEvent {
    MetaEvent::PartitionPlaced(PartitionPlaced {
        topic: topic.into(),
        partition,
        shard,
    })
}

fn commit(group: &str, topic: &str, partition: u32, offset: i64) -> MetaEvent {
    MetaEvent::OffsetsCommitted(OffsetsCommitted {
        group: group.into(),
        commit_ms: 1_700_000_000_000 + offset,
        offsets: vec![OffsetCommit {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: format!("m{offset}"),
        }],
    })
}

fn archive(topic: &str, partition: u32, first_offset: u64, last_offset: u64) -> MetaEvent {
    MetaEvent::ArchiveSealed(archive_fields(topic, partition, first_offset, last_offset))
}

fn archive_fields(
    topic: &str,
    partition: u32,
    first_offset: u64,
    last_offset: u64,
) -> ArchiveSealed {
    ArchiveSealed {
        topic: topic.into(),
        partition,
        key: format!("{topic}/{partition}/{first_offset}-{last_offset}"),
        first_offset,
        last_offset,
        min_timestamp_ms: 1,
        max_timestamp_ms: 2,
        bytes: 1000,
        footer_offset: 900,
        footer_bytes: 100,
    }
}

fn stored_group(group: &str, generation: i32) -> MetaEvent {
    MetaEvent::GroupStored(GroupStored {
        group: group.into(),
        generation,
        protocol_type: "consumer".into(),
        protocol: "range".into(),
        leader: "member-1".into(),
        state_ms: 1_700_000_000_000,
        members: vec![GroupMemberRecord {
            member_id: "member-1".into(),
            instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            subscription: vec![0, 1, 2],
            assignment: vec![3, 4],
        }],
    })
}

/// A random event that is valid against `state`; `created` numbers new
/// topics.
fn random_event(rng: &mut SplitMix, state: &MetaState, created: &mut u64) -> MetaEvent {
    let names: Vec<String> = state.topics().map(|(n, _)| n.to_string()).collect();
    let roll = rng.below(100);
    if names.is_empty() || roll < 12 {
        *created += 1;
        let n = *created;
        return create(&format!("topic-{n}"), n, 1 + rng.below(6) as u32);
    }
    let name = names[rng.below(names.len() as u64) as usize].clone();
    let partitions = state.partition_count(&name).expect("listed topic");
    match roll {
        12..=21 => MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name,
            set: vec![(
                format!("k{}", rng.below(4)),
                format!("v{}", rng.next() % 1000),
            )],
            remove: vec![format!("k{}", 4 + rng.below(3)), "retention.ms".into()],
        }),
        22..=26 => MetaEvent::PartitionsAdded(PartitionsAdded {
            name,
            new_total: partitions + 1 + rng.below(3) as u32,
        }),
        27..=29 => MetaEvent::TopicDeleted(TopicDeleted { name }),
        30..=39 => commit(
            &format!("group-{}", rng.below(3)),
            &name,
            rng.below(partitions as u64) as u32,
            rng.below(1 << 20) as i64,
        ),
        40..=41 => MetaEvent::OffsetsDeleted(OffsetsDeleted {
            group: format!("group-{}", rng.below(3)),
            partitions: vec![(name, rng.below(partitions as u64) as u32)],
        }),
        42..=44 => {
            let group = format!("group-{}", rng.below(3));
            let stored = state
                .group(&group)
                .and_then(|g| g.record.as_ref())
                .map_or(0, |r| r.generation);
            stored_group(&group, stored + rng.below(2) as i32)
        }
        45 => match state.groups().next() {
            Some((group, _)) => MetaEvent::GroupDeleted(GroupDeleted {
                group: group.to_string(),
            }),
            None => MetaEvent::TopicDeleted(TopicDeleted { name }),
        },
        46..=48 => MetaEvent::ProducerIdBlock(ProducerIdBlock {
            block_end: state.producer_id_block_end() + 1 + rng.below(5000),
        }),
        49..=54 => {
            // The next archive of a partition: where its archives end (or
            // its log start), some offsets long.
            let partition = rng.below(partitions as u64) as u32;
            let first = state
                .archives(&name, partition)
                .map_or(0, |a| a.end_offset().max(a.log_start_offset));
            archive(&name, partition, first, first + rng.below(100))
        }
        57 => MetaEvent::ShardsStarted(ShardsStarted {
            shards: 1 + rng.below(8) as u32,
        }),
        55..=56 => {
            let partition = rng.below(partitions as u64) as u32;
            let (start, end) = state
                .archives(&name, partition)
                .map_or((0, 0), |a| (a.log_start_offset, a.end_offset()));
            MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
                topic: name,
                partition,
                log_start_offset: start + rng.below(end.saturating_sub(start) + 2),
            })
        }
        _ => place(
            &name,
            rng.below(partitions as u64) as u32,
            rng.below(4) as u32,
        ),
    }
}

/// Appends `count` random events, returning the state after each
/// acknowledged append (index i = after i+1 events of this call).
async fn append_random<S: Storage>(
    meta: &MetaLog<S>,
    rng: &mut SplitMix,
    created: &mut u64,
    count: usize,
) -> Vec<MetaState> {
    let mut states = Vec::with_capacity(count);
    for _ in 0..count {
        let event = meta.with_state(|s| random_event(rng, s, created));
        let before = meta.state();
        let offset = meta.append(&event).await.expect("valid event is appended");
        assert_eq!(offset, before.applied_offset());
        let mut expected = before;
        expected
            .apply_event(offset, &event)
            .expect("model applies the event");
        let after = meta.state();
        assert_eq!(after, expected, "append applied exactly the event");
        states.push(after);
    }
    states
}

async fn open_mem(mem: &MemStorage, config: MetaConfig) -> MetaLog<MemStorage> {
    MetaLog::open(mem.clone(), META, config, Clock::manual(1_700_000_000_000))
        .await
        .expect("open meta log")
}

/// `<offset, 20 digits>.snap`.
fn snapshot_name(offset: u64) -> String {
    segment_file_name(offset, META_SNAPSHOT_EXTENSION)
}

fn snapshot_files(mem: &MemStorage) -> Vec<PathBuf> {
    let dir = snapshot_dir(Path::new(META));
    mem.paths()
        .into_iter()
        .filter(|p| p.parent() == Some(dir.as_path()))
        .collect()
}

#[test]
fn replay_after_crash_equals_last_acknowledged_state() {
    run(|| async {
        for seed in 1..=8u64 {
            let mem = MemStorage::new();
            // Odd seeds snapshot automatically, even seeds replay everything.
            let interval = if seed % 2 == 1 { 37 } else { 0 };
            let meta = open_mem(&mem, small_config(interval)).await;
            let mut rng = SplitMix(seed);
            let mut created = 0;
            let states = append_random(&meta, &mut rng, &mut created, 250).await;
            let last = states.last().expect("events appended").clone();
            assert_eq!(last.applied_offset(), 250);
            if interval > 0 {
                assert_eq!(meta.snapshot_offset(), Some(222));
            }
            // Power loss without close: only what fdatasync covered is safe.
            let crashed = mem.crash(seed);
            drop(meta);
            let reopened = open_mem(&crashed, small_config(interval)).await;
            assert_eq!(reopened.state(), last, "seed {seed}");
            // And it keeps working after recovery.
            let more = append_random(&reopened, &mut rng, &mut created, 20).await;
            assert_eq!(more.last().map(MetaState::applied_offset), Some(270));
            reopened.close().await.expect("close");
        }
    });
}

/// The append whose fdatasync fails is not applied in memory. After a crash
/// its frame was written but never synced, so the reopened state is either
/// the state before it (the write did not survive, or survived torn) or
/// the state including it (the whole frame happened to survive) — exactly
/// one of the two, and over these seeds both occur.
#[test]
fn failed_sync_is_not_applied_and_reopens_as_before_or_after() {
    run(|| async {
        let (mut saw_before, mut saw_after) = (false, false);
        for seed in 0..32u64 {
            let mem = MemStorage::new();
            let meta = open_mem(&mem, small_config(0)).await;
            let mut rng = SplitMix(1000 + seed);
            let mut created = 0;
            append_random(&meta, &mut rng, &mut created, 30 + seed as usize).await;
            let before = meta.state();
            let event = create("unlucky", 999, 3);
            let mut after = before.clone();
            after
                .apply_event(before.applied_offset(), &event)
                .expect("valid");

            mem.inject(Fault::Eio {
                op: OpKind::Sync,
                after: 0,
            });
            let err = meta.append(&event).await.expect_err("sync fails");
            assert!(matches!(err, Error::Io { .. }), "{err}");
            assert_eq!(meta.state(), before, "not durable, so not applied");
            assert_eq!(meta.log_end_offset(), before.applied_offset() + 1);
            let err = meta
                .append(&create("next", 1000, 1))
                .await
                .expect_err("log stopped");
            assert!(matches!(err, Error::Poisoned { .. }), "{err}");

            let crashed = mem.crash(seed);
            drop(meta);
            let reopened = open_mem(&crashed, small_config(0)).await.state();
            if reopened == before {
                saw_before = true;
            } else {
                assert_eq!(
                    reopened, after,
                    "seed {seed}: neither the state before nor after the failed event"
                );
                saw_after = true;
            }
        }
        assert!(
            saw_before && saw_after,
            "before {saw_before}, after {saw_after}"
        );
    });
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(0)).await;
        let mut rng = SplitMix(77);
        let mut created = 0;
        append_random(&meta, &mut rng, &mut created, 150).await;
        assert_eq!(meta.snapshot().await.expect("snapshot"), 150);
        append_random(&meta, &mut rng, &mut created, 150).await;
        let expected = meta.state();
        meta.close().await.expect("close");

        let with_snapshot = open_mem(&mem, small_config(0)).await;
        assert_eq!(with_snapshot.snapshot_offset(), Some(150));
        assert_eq!(with_snapshot.state(), expected);
        drop(with_snapshot);

        for path in snapshot_files(&mem) {
            mem.remove(&path).await.expect("remove snapshot");
        }
        let full = open_mem(&mem, small_config(0)).await;
        assert_eq!(full.snapshot_offset(), None);
        assert_eq!(full.state(), expected);
    });
}

/// SCRAM credentials set and deleted on both sides of a snapshot: the
/// snapshot (version 4, the users map) and the replayed tail give the
/// state a full replay gives, and a deletion of a missing credential is
/// refused without changing anything.
#[test]
fn scram_credential_deletions_survive_snapshot_and_replay() {
    fn credential(user: &str, mechanism: &str, keys: usize) -> MetaEvent {
        MetaEvent::UserScramCredential(UserScramCredential {
            user: user.into(),
            mechanism: mechanism.into(),
            salt: vec![4; 16],
            iterations: 4096,
            stored_key: vec![5; keys],
            server_key: vec![6; keys],
        })
    }
    fn deleted(user: &str, mechanism: &str) -> MetaEvent {
        MetaEvent::UserScramCredentialDeleted(UserScramCredentialDeleted {
            user: user.into(),
            mechanism: mechanism.into(),
        })
    }
    run(|| async move {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(0)).await;
        for event in [
            credential("alice", "SCRAM-SHA-256", 32),
            credential("alice", "SCRAM-SHA-512", 64),
            credential("bob", "SCRAM-SHA-256", 32),
            deleted("alice", "SCRAM-SHA-256"),
        ] {
            meta.append(&event).await.expect("valid");
        }
        assert_eq!(meta.snapshot().await.expect("snapshot"), 4);
        meta.append(&deleted("bob", "SCRAM-SHA-256"))
            .await
            .expect("valid");
        assert!(meta.append(&deleted("bob", "SCRAM-SHA-256")).await.is_err());
        let expected = meta.state();
        assert_eq!(expected.users().collect::<Vec<_>>(), ["alice"]);
        assert!(expected
            .scram_credential("alice", "SCRAM-SHA-256")
            .is_none());
        assert!(expected
            .scram_credential("alice", "SCRAM-SHA-512")
            .is_some());
        meta.close().await.expect("close");

        let with_snapshot = open_mem(&mem, small_config(0)).await;
        assert_eq!(with_snapshot.snapshot_offset(), Some(4));
        assert_eq!(with_snapshot.state(), expected);
        drop(with_snapshot);
        for path in snapshot_files(&mem) {
            mem.remove(&path).await.expect("remove snapshot");
        }
        let full = open_mem(&mem, small_config(0)).await;
        assert_eq!(full.state(), expected);
    });
}

/// Bit rot in an event below the snapshot (in a sealed segment, which
/// recovery does not scan) is never read when a snapshot covers it — proof
/// that open replays only the tail — and is reported once a full replay
/// has to read it.
#[test]
fn snapshot_compacts_the_log_and_open_replays_only_the_tail() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(0)).await;
        let mut rng = SplitMix(5);
        let mut created = 0;
        append_random(&meta, &mut rng, &mut created, 1500).await;
        assert!(
            meta.log_stats().rolls >= 2,
            "the test needs several meta segments"
        );
        meta.snapshot().await.expect("snapshot");
        append_random(&meta, &mut rng, &mut created, 10).await;
        let expected = meta.state();
        meta.close().await.expect("close");

        // The only snapshot covers offset 1500: every sealed segment wholly
        // below it is gone, so restart cost follows state size, not history.
        let log = log_dir(Path::new(META));
        let first_segment = log.join(segment_file_name(0, SEGMENT_EXTENSION));
        assert!(
            mem.file_bytes(&first_segment).is_none(),
            "segment below the snapshot deleted"
        );
        let reopened = open_mem(&mem, small_config(0)).await;
        assert_eq!(reopened.state(), expected);
        assert_eq!(reopened.applied_offset(), 1510);
        drop(reopened);

        // Without the snapshot the deleted events cannot be replayed: the
        // open refuses instead of rebuilding a partial state.
        for path in snapshot_files(&mem) {
            mem.remove(&path).await.expect("remove snapshot");
        }
        match MetaLog::open(mem.clone(), META, small_config(0), Clock::System).await {
            Err(Error::Corrupt {
                path,
                corruption: Corruption::Malformed(why),
                ..
            }) => {
                assert_eq!(path, snapshot_dir(Path::new(META)));
                assert!(why.contains("below the log start"), "{why}");
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a metadata log whose early events are gone"),
        }
    });
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_older_then_to_full_replay() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(0)).await;
        let mut rng = SplitMix(99);
        let mut created = 0;
        append_random(&meta, &mut rng, &mut created, 50).await;
        meta.snapshot().await.expect("snapshot at 50");
        append_random(&meta, &mut rng, &mut created, 50).await;
        meta.snapshot().await.expect("snapshot at 100");
        append_random(&meta, &mut rng, &mut created, 20).await;
        let expected = meta.state();
        meta.close().await.expect("close");

        let dir = snapshot_dir(Path::new(META));
        let newest = dir.join(snapshot_name(100));
        let older = dir.join(snapshot_name(50));
        assert_eq!(snapshot_files(&mem), vec![older.clone(), newest.clone()]);

        // A payload bit in the newest: fall back to the older snapshot.
        let newest_len = mem.file_bytes(&newest).expect("exists").len() as u64;
        mem.flip_bit(&newest, newest_len - 3, 0);
        let meta = open_mem(&mem, small_config(0)).await;
        assert_eq!(meta.snapshot_offset(), Some(50));
        assert_eq!(meta.state(), expected);
        drop(meta);

        // A header bit in the older one too: full replay.
        mem.flip_bit(&older, FILE_HEADER_OFFSET_AT as u64 + 4, 5);
        let meta = open_mem(&mem, small_config(0)).await;
        assert_eq!(meta.snapshot_offset(), None);
        assert_eq!(meta.state(), expected);

        // The next snapshot prunes the older rotten one.
        assert_eq!(meta.snapshot().await.expect("snapshot"), 120);
        let files = snapshot_files(&mem);
        assert_eq!(files, vec![newest.clone(), dir.join(snapshot_name(120))]);
        drop(meta);
        let meta = open_mem(&mem, small_config(0)).await;
        assert_eq!(meta.snapshot_offset(), Some(120));
        assert_eq!(meta.state(), expected);
    });
}

#[test]
fn automatic_snapshots_every_interval_keep_the_newest_two() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(25)).await;
        let mut rng = SplitMix(3);
        let mut created = 0;
        append_random(&meta, &mut rng, &mut created, 60).await;
        assert_eq!(meta.snapshot_offset(), Some(50));
        let dir = snapshot_dir(Path::new(META));
        assert_eq!(
            snapshot_files(&mem),
            vec![dir.join(snapshot_name(25)), dir.join(snapshot_name(50))]
        );
        append_random(&meta, &mut rng, &mut created, 40).await;
        assert_eq!(
            snapshot_files(&mem),
            vec![dir.join(snapshot_name(75)), dir.join(snapshot_name(100))]
        );
        // A leftover temp file from a crash mid-snapshot is ignored and removed.
        let tmp = dir.join(snapshot_name(110) + TMP_SUFFIX);
        mem.set_file_bytes(&tmp, vec![1, 2, 3]);
        let expected = meta.state();
        drop(meta);
        let meta = open_mem(&mem, small_config(25)).await;
        assert_eq!(meta.state(), expected);
        assert!(mem.file_bytes(&tmp).is_none());
    });
}

fn all_files(mem: &MemStorage) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    mem.paths()
        .into_iter()
        .map(|p| (p.clone(), mem.file_bytes(&p)))
        .collect()
}

#[test]
fn rejected_events_leave_state_and_log_unchanged() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(0)).await;
        meta.append(&create("a", 1, 2)).await.expect("create a");
        meta.append(&create("b", 2, 1)).await.expect("create b");
        meta.append(&archive("a", 0, 0, 99))
            .await
            .expect("archive a-0");
        meta.append(&MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
            topic: "a".into(),
            partition: 1,
            log_start_offset: 5,
        }))
        .await
        .expect("trim a-1");
        let cases: Vec<(&str, MetaEvent)> = vec![
            ("duplicate topic", create("a", 3, 1)),
            ("duplicate topic id", create("c", 1, 1)),
            (
                "zero topic id",
                MetaEvent::TopicCreated(TopicCreated {
                    name: "c".into(),
                    topic_id: [0; 16],
                    partitions: 1,
                    configs: vec![],
                }),
            ),
            ("zero partitions", create("c", 3, 0)),
            ("path in topic name", create("../etc", 3, 1)),
            ("empty topic name", create("", 3, 1)),
            ("dot topic name", create("..", 3, 1)),
            (
                "duplicate config key",
                MetaEvent::TopicCreated(TopicCreated {
                    name: "c".into(),
                    topic_id: topic_id(3),
                    partitions: 1,
                    configs: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
                }),
            ),
            (
                "delete missing",
                MetaEvent::TopicDeleted(TopicDeleted { name: "zzz".into() }),
            ),
            ("place on missing topic", place("zzz", 0, 0)),
            ("place missing partition", place("a", 2, 0)),
            (
                "reduce partitions",
                MetaEvent::PartitionsAdded(PartitionsAdded {
                    name: "a".into(),
                    new_total: 1,
                }),
            ),
            (
                "same partition count",
                MetaEvent::PartitionsAdded(PartitionsAdded {
                    name: "a".into(),
                    new_total: 2,
                }),
            ),
            (
                "add partitions to missing topic",
                MetaEvent::PartitionsAdded(PartitionsAdded {
                    name: "zzz".into(),
                    new_total: 5,
                }),
            ),
            (
                "config change on missing topic",
                MetaEvent::TopicConfigChanged(TopicConfigChanged {
                    name: "zzz".into(),
                    set: vec![],
                    remove: vec![],
                }),
            ),
            (
                "set and remove the same key",
                MetaEvent::TopicConfigChanged(TopicConfigChanged {
                    name: "a".into(),
                    set: vec![("k".into(), "v".into())],
                    remove: vec!["k".into()],
                }),
            ),
            ("archive of a missing topic", archive("zzz", 0, 0, 9)),
            ("archive of a missing partition", archive("a", 2, 0, 9)),
            ("archive ending before it starts", archive("a", 0, 10, 9)),
            ("archive overlapping another", archive("a", 0, 95, 120)),
            ("archive below the log start", archive("a", 1, 0, 4)),
            (
                "archive with an empty key",
                MetaEvent::ArchiveSealed(ArchiveSealed {
                    key: String::new(),
                    ..archive_fields("a", 0, 200, 210)
                }),
            ),
            (
                "archive footer past its end",
                MetaEvent::ArchiveSealed(ArchiveSealed {
                    footer_offset: 950,
                    ..archive_fields("a", 0, 200, 210)
                }),
            ),
            (
                "archive log start moving back",
                MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
                    topic: "a".into(),
                    partition: 1,
                    log_start_offset: 4,
                }),
            ),
            (
                "trim of a missing partition",
                MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
                    topic: "a".into(),
                    partition: 7,
                    log_start_offset: 4,
                }),
            ),
        ];
        let state = meta.state();
        let files = all_files(&mem);
        for (what, event) in &cases {
            match meta.append(event).await {
                Err(Error::Rejected(why)) => assert!(!why.is_empty(), "{what}"),
                Err(other) => panic!("{what}: unexpected error {other}"),
                Ok(offset) => panic!("{what}: accepted at offset {offset}"),
            }
            assert!(
                matches!(state.check_event(event), Err(Error::Rejected(_))),
                "{what}"
            );
            assert_eq!(meta.state(), state, "{what}");
            assert_eq!(meta.log_end_offset(), 4, "{what}");
            assert_eq!(all_files(&mem), files, "{what}: nothing written");
        }
        // Still healthy: a valid change goes through and survives reopen.
        meta.append(&place("a", 1, 3))
            .await
            .expect("valid placement");
        let expected = meta.state();
        assert_eq!(expected.placement("a", 1), Some(3));
        assert_eq!(expected.placement("a", 0), None);
        assert_eq!(expected.placement("a", 2), None);
        assert_eq!(expected.partition_count("a"), Some(2));
        assert_eq!(expected.archives("a", 0).map(|a| a.end_offset()), Some(100));
        assert_eq!(
            expected.archives("a", 1).map(|a| a.log_start_offset),
            Some(5)
        );
        assert_eq!(
            expected.topic_by_id(&topic_id(2)).map(|(n, _)| n),
            Some("b")
        );
        meta.close().await.expect("close");
        assert_eq!(open_mem(&mem, small_config(0)).await.state(), expected);
    });
}

/// Many tasks of one executor appending at once: each event is validated
/// against the state it is applied to, so of two tasks creating the same
/// topic exactly one wins, and replay reproduces the state.
#[test]
fn concurrent_appends_from_many_tasks() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = Rc::new(open_mem(&mem, small_config(10)).await);
        let mut tasks = Vec::new();
        for task in 0..8u64 {
            let meta = meta.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut accepted = 0u32;
                for round in 0..10u64 {
                    // Tasks 2k and 2k+1 race to create the same topic.
                    let name = format!("t{}-{round}", task / 2);
                    match meta.append(&create(&name, task * 100 + round, 2)).await {
                        Ok(_) => accepted += 1,
                        Err(Error::Rejected(_)) => {}
                        Err(other) => panic!("unexpected error {other}"),
                    }
                    meta.append(&place(&name, (task % 2) as u32, task as u32))
                        .await
                        .expect("topic exists by now");
                }
                accepted
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += task.await;
        }
        assert_eq!(accepted, 40, "one creation per topic name");
        let expected = meta.state();
        assert_eq!(expected.topic_count(), 40);
        assert_eq!(expected.applied_offset(), 40 + 80);
        let meta = Rc::try_unwrap(meta).ok().expect("tasks done");
        meta.close().await.expect("close");
        assert_eq!(open_mem(&mem, small_config(10)).await.state(), expected);
    });
}

/// Events built from the tail state under the append permit: concurrent
/// builders each see the placements of the ones before them (so a
/// least-loaded choice stays balanced), and a refused build appends
/// nothing.
#[test]
fn built_appends_see_the_tail_state_of_the_appends_before_them() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = Rc::new(open_mem(&mem, small_config(0)).await);
        let mut tasks = Vec::new();
        for task in 0..16u64 {
            let meta = meta.clone();
            tasks.push(glommio::spawn_local(async move {
                let name = format!("built-{task}");
                let (first, events) = meta
                    .append_built(|tail| {
                        let mut load = [0u32; 2];
                        for (_, t) in tail.topics() {
                            for shard in t.partitions.iter().flatten() {
                                load[*shard as usize] += 1;
                            }
                        }
                        let shard = if load[0] <= load[1] { 0 } else { 1 };
                        vec![create(&name, task, 1), place(&name, 0, shard)]
                    })
                    .await
                    .expect("built append");
                assert_eq!(events.len(), 2);
                assert!(meta.applied_offset() >= first + 2, "durable when answered");
            }));
        }
        for task in tasks {
            task.await;
        }
        let state = meta.state();
        let mut load = [0u32; 2];
        for (_, t) in state.topics() {
            for shard in t.partitions.iter().flatten() {
                load[*shard as usize] += 1;
            }
        }
        assert_eq!(load, [8, 8], "each builder saw the placements before it");
        // A create of an existing name is refused and appends nothing.
        let refused = meta.append_built(|_| vec![create("built-0", 99, 1)]).await;
        assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
        assert_eq!(meta.applied_offset(), 32);
        assert_eq!(meta.with_tail_state(MetaState::applied_offset), 32);
    });
}

/// Offset commits that arrive while a fdatasync runs share the next one,
/// and the durable state still applies them in log order.
#[test]
fn concurrent_commits_share_fdatasyncs() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = Rc::new(open_mem(&mem, small_config(0)).await);
        meta.append(&create("orders", 0, 64)).await.expect("create");
        let syncs_before = meta.log_stats().fdatasyncs;
        const TASKS: u64 = 64;
        const ROUNDS: u64 = 10;
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let meta = meta.clone();
            tasks.push(glommio::spawn_local(async move {
                for round in 0..ROUNDS {
                    let offset = meta
                        .append(&commit("g", "orders", task as u32, round as i64))
                        .await
                        .expect("commit");
                    assert!(meta.applied_offset() > offset, "acknowledged means applied");
                    let seen = meta.with_state(|s| {
                        s.committed_offset("g", "orders", task as u32)
                            .map(|o| o.offset)
                    });
                    assert!(seen >= Some(round as i64), "a commit is visible once acked");
                }
            }));
        }
        for task in tasks {
            task.await;
        }
        let syncs = meta.log_stats().fdatasyncs - syncs_before;
        assert!(
            syncs < TASKS * ROUNDS / 4,
            "{syncs} fdatasyncs for {} commits: no group commit",
            TASKS * ROUNDS
        );
        let expected = meta.state();
        assert_eq!(expected.applied_offset(), 1 + TASKS * ROUNDS);
        for partition in 0..TASKS as u32 {
            let committed = expected.committed_offset("g", "orders", partition);
            assert_eq!(committed.map(|o| o.offset), Some(ROUNDS as i64 - 1));
        }
        let meta = Rc::try_unwrap(meta).ok().expect("tasks done");
        meta.close().await.expect("close");
        assert_eq!(open_mem(&mem, small_config(0)).await.state(), expected);
    });
}

/// A batch shares one fdatasync; each event is validated against the ones
/// before it; a rejected event keeps the valid ones before it.
#[test]
fn append_all_validates_in_order_with_one_fdatasync() {
    run(|| async {
        let mem = MemStorage::new();
        let meta = open_mem(&mem, small_config(0)).await;
        let syncs = meta.log_stats().fdatasyncs;
        let first = meta
            .append_all(&[
                create("orders", 0, 2),
                place("orders", 0, 1),
                place("orders", 1, 0),
            ])
            .await
            .expect("a valid batch");
        assert_eq!(first, 0);
        assert_eq!(meta.log_stats().fdatasyncs - syncs, 1);
        assert_eq!(meta.with_state(|s| s.placement("orders", 1)), Some(0));
        let refused = meta
            .append_all(&[
                place("orders", 0, 0),
                create("orders", 1, 1),
                place("orders", 1, 1),
            ])
            .await;
        assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
        assert_eq!(
            meta.applied_offset(),
            4,
            "the valid event before the rejected one stays"
        );
        assert_eq!(meta.with_state(|s| s.placement("orders", 0)), Some(0));
        assert_eq!(meta.with_state(|s| s.placement("orders", 1)), Some(0));
        let expected = meta.state();
        meta.close().await.expect("close");
        assert_eq!(open_mem(&mem, small_config(0)).await.state(), expected);
    });
}

/// Group rules: a stored generation never goes back, a deleted topic takes
/// its offsets along, and a deleted group is gone with its offsets.
#[test]
fn group_events_follow_their_rules() {
    let mut state = MetaState::new();
    let mut offset = 0;
    let mut apply = |state: &mut MetaState, event: MetaEvent| {
        let applied = state.apply_event(offset, &event);
        if applied.is_ok() {
            offset += 1;
        }
        applied
    };
    apply(&mut state, create("orders", 0, 2)).expect("create");
    apply(&mut state, commit("g", "orders", 1, 7)).expect("commit");
    apply(&mut state, stored_group("g", 5)).expect("store");
    assert!(matches!(
        apply(&mut state, stored_group("g", 4)),
        Err(Error::Rejected(_))
    ));
    assert_eq!(
        state
            .committed_offset("g", "orders", 1)
            .map(|o| (o.offset, o.metadata.as_str())),
        Some((7, "m7"))
    );
    let mut long = commit("g", "orders", 0, 1);
    if let MetaEvent::OffsetsCommitted(c) = &mut long {
        c.offsets[0].metadata = "x".repeat(4097);
    }
    assert!(matches!(apply(&mut state, long), Err(Error::Rejected(_))));
    apply(
        &mut state,
        MetaEvent::TopicDeleted(TopicDeleted {
            name: "orders".into(),
        }),
    )
    .expect("delete topic");
    let group = state
        .group("g")
        .expect("the stored generation keeps the group");
    assert_eq!(
        group.offset_count(),
        0,
        "offsets of the deleted topic are gone"
    );
    apply(
        &mut state,
        MetaEvent::GroupDeleted(GroupDeleted { group: "g".into() }),
    )
    .expect("delete group");
    assert!(state.group("g").is_none());
    assert!(matches!(
        apply(
            &mut state,
            MetaEvent::GroupDeleted(GroupDeleted { group: "g".into() })
        ),
        Err(Error::Rejected(_))
    ));
}

/// A frame with a valid crc but a payload that is not an event: replay
/// names the segment file and the frame's byte position.
#[test]
fn undecodable_event_is_bad_payload_with_path_and_position() {
    run(|| async {
        let mem = MemStorage::new();
        let config = small_config(0);
        let log = Log::open(
            mem.clone(),
            log_dir(Path::new(META)),
            config.log_config(),
            Clock::System,
        )
        .await
        .expect("open log");
        let good = encode_event(&create("a", 1, 1)).expect("encode");
        log.append_acked(good.len(), 1, 1, |dst, _| dst.copy_from_slice(&good))
            .await
            .expect("append");
        let bad = [0xEEu8; 11];
        log.append_acked(bad.len(), 1, 2, |dst, _| dst.copy_from_slice(&bad))
            .await
            .expect("append");
        log.close().await.expect("close");

        match MetaLog::open(mem.clone(), META, config, Clock::System).await {
            Err(Error::Corrupt {
                path,
                offset,
                corruption,
            }) => {
                assert_eq!(
                    path,
                    log_dir(Path::new(META)).join(segment_file_name(0, SEGMENT_EXTENSION))
                );
                assert_eq!(
                    offset,
                    (FILE_HEADER_BYTES + FRAME_HEADER_BYTES + good.len()) as u64
                );
                assert_eq!(corruption, Corruption::BadPayload);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("garbage payload accepted"),
        }
    });
}

#[test]
fn real_disk_create_place_reopen() {
    run(|| async {
        let dir = disk_dir("meta_real_disk");
        let config = MetaConfig {
            snapshot_interval_events: 0,
            ..MetaConfig::default()
        };
        let meta = MetaLog::open(DmaStorage, &dir, config.clone(), Clock::System)
            .await
            .expect("open");
        for t in 0..5u64 {
            let name = format!("orders-{t}");
            meta.append(&create(&name, t, 4)).await.expect("create");
            for p in 0..4 {
                meta.append(&place(&name, p, (p + t as u32) % 2))
                    .await
                    .expect("place");
            }
        }
        let snapshot_at = meta.snapshot().await.expect("snapshot");
        assert_eq!(snapshot_at, 25);
        meta.append(&MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name: "orders-1".into(),
            set: vec![("cleanup.policy".into(), "compact".into())],
            remove: vec!["retention.ms".into()],
        }))
        .await
        .expect("config");
        meta.append(&MetaEvent::PartitionsAdded(PartitionsAdded {
            name: "orders-2".into(),
            new_total: 6,
        }))
        .await
        .expect("grow");
        meta.append(&MetaEvent::TopicDeleted(TopicDeleted {
            name: "orders-4".into(),
        }))
        .await
        .expect("delete");
        let expected = meta.state();
        meta.close().await.expect("close");
        assert!(snapshot_dir(&dir).join(snapshot_name(25)).is_file());

        let meta = MetaLog::open(DmaStorage, &dir, config.clone(), Clock::System)
            .await
            .expect("reopen");
        assert_eq!(meta.snapshot_offset(), Some(25));
        assert_eq!(meta.state(), expected);
        let state = meta.state();
        assert_eq!(state.topic_count(), 4);
        assert_eq!(state.placement("orders-3", 2), Some(1));
        assert_eq!(state.partition_count("orders-2"), Some(6));
        let orders_1 = state.topic("orders-1").expect("exists");
        assert_eq!(
            orders_1.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert!(!orders_1.configs.contains_key("retention.ms"));
        meta.close().await.expect("close");

        std::fs::remove_dir_all(dir.join("snapshots")).expect("remove snapshots");
        let meta = MetaLog::open(DmaStorage, &dir, config, Clock::System)
            .await
            .expect("full replay");
        assert_eq!(meta.snapshot_offset(), None);
        assert_eq!(meta.state(), expected);
        meta.close().await.expect("close");
    });
}
