//! Snapshot files outlive the build that wrote them: a data directory
//! written by an older ringlog must load, and what this build writes
//! must be what that build wrote. The fixtures under `tests/fixtures/` are
//! a metadata snapshot and a producer snapshot as the encoders wrote them
//! before the snapshot headers moved into `format/`; each test decodes
//! one with today's code, checks what it holds, and encodes it again
//! expecting the same bytes.
//!
//! The fixtures are the contract, not a cache: a failing test here means
//! the on-disk format changed. Such a change needs a new format version
//! (and a fixture of its own); only then rewrite these with
//! `cargo test -p ringlog-engine --test snapshot_fixtures -- --ignored`.
//! A fixture of an older version this build still reads is never
//! rewritten: it is what a data directory of that build holds.

use ringlog_engine::meta::{
    encode_snapshot_file, read_snapshot_file, AclBinding, AclOperation, AclPatternType,
    AclPermission, AclResourceType, AclsCreated, AclsDeleted, ArchiveSealed, ArchivesTrimmed,
    ClientQuotasAltered, GroupMemberRecord, GroupStored, MetaEvent, MetaState, OffsetCommit,
    OffsetsCommitted, OffsetsDeleted, PartitionPlaced, PartitionsAdded, ProducerIdBlock,
    QuotaEntity, QuotaName, ShardsStarted, TopicConfigChanged, TopicCreated, TopicDeleted,
    UserScramCredential,
};
use ringlog_engine::producer::{sequence_after, BatchRecord, ProducerBatch, ProducerStates};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The metadata snapshot of version 2 (before archives), named as the
/// meta log names it.
const META_V2_FIXTURE: &str = "00000000000000000020.snap";
/// Events folded into the version 2 fixture; its applied offset.
const META_EVENTS: u64 = 20;
/// The metadata snapshot of version 3: the same events, then archives
/// and a start's shard count.
const META_V3_FIXTURE: &str = "00000000000000000025.snap";
/// Events folded into the version 3 fixture.
const META_V3_EVENTS: u64 = 25;
/// The metadata snapshot of version 4: the version 3 events, then SCRAM
/// credentials.
const META_V4_FIXTURE: &str = "00000000000000000028.snap";
/// Events folded into the version 4 fixture.
const META_V4_EVENTS: u64 = 28;
/// The metadata snapshot of version 5: the version 4 events, then client
/// quotas, then ACLs created and one deleted.
const META_V5_FIXTURE: &str = "00000000000000000033.snap";
/// Events folded into the version 5 fixture.
const META_V5_EVENTS: u64 = 33;
/// The producer snapshot, named as a partition log names it.
const PRODUCER_FIXTURE: &str = "00000000000000000105.producers";
/// Every batch of the producer fixture lies below this offset.
const PRODUCER_COVERED: u64 = 105;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn configs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn placed(topic: &str, partition: u32, shard: u32) -> MetaEvent {
    MetaEvent::PartitionPlaced(PartitionPlaced {
        topic: topic.into(),
        partition,
        shard,
    })
}

fn commit(topic: &str, partition: u32, offset: i64, metadata: &str) -> OffsetCommit {
    OffsetCommit {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: 4,
        metadata: metadata.into(),
    }
}

fn member(id: &str, instance_id: Option<&str>, assignment: &[u8]) -> GroupMemberRecord {
    GroupMemberRecord {
        member_id: id.into(),
        instance_id: instance_id.map(Into::into),
        client_id: "rdkafka".into(),
        client_host: "/10.0.0.7".into(),
        session_timeout_ms: 45_000,
        rebalance_timeout_ms: 300_000,
        subscription: vec![0, 3, 0, 0, 0, 1, 0, 6, b'o', b'r', b'd', b'e', b'r', b's'],
        assignment: assignment.to_vec(),
    }
}

/// Topics created, placed, reconfigured, grown and deleted; a group with
/// a stored generation and offsets, one with offsets only, one deleted
/// partition's offset; two producer id blocks.
fn meta_events() -> Vec<MetaEvent> {
    vec![
        MetaEvent::TopicCreated(TopicCreated {
            name: "orders".into(),
            topic_id: *b"orders-topic-id!",
            partitions: 4,
            configs: configs(&[("retention.ms", "60000"), ("cleanup.policy", "delete")]),
        }),
        MetaEvent::TopicCreated(TopicCreated {
            name: "logs".into(),
            topic_id: [0xa5; 16],
            partitions: 2,
            configs: vec![],
        }),
        MetaEvent::TopicCreated(TopicCreated {
            name: "scratch".into(),
            topic_id: [7; 16],
            partitions: 1,
            configs: configs(&[("segment.ms", "1000")]),
        }),
        placed("orders", 0, 0),
        placed("orders", 1, 1),
        placed("orders", 3, 1),
        placed("logs", 0, 0),
        placed("scratch", 0, 1),
        MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name: "orders".into(),
            set: configs(&[
                ("max.message.bytes", "2097152"),
                ("retention.ms", "86400000"),
            ]),
            remove: vec!["cleanup.policy".into()],
        }),
        MetaEvent::PartitionsAdded(PartitionsAdded {
            name: "logs".into(),
            new_total: 3,
        }),
        placed("logs", 2, 1),
        MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name: "logs".into(),
            set: configs(&[("segment.ms", "3600000")]),
            remove: vec![],
        }),
        MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end: 1000 }),
        MetaEvent::GroupStored(GroupStored {
            group: "billing".into(),
            generation: 3,
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            leader: "m-1".into(),
            state_ms: 1_700_000_100_000,
            members: vec![
                member("m-1", None, &[0, 0, 0, 1, 0, 0, 0, 0]),
                member("m-2", Some("static-2"), &[0, 0, 0, 1, 0, 0, 0, 3]),
            ],
        }),
        MetaEvent::OffsetsCommitted(OffsetsCommitted {
            group: "billing".into(),
            commit_ms: 1_700_000_200_000,
            offsets: vec![
                commit("orders", 0, 99, "checkpoint"),
                commit("orders", 3, 7, ""),
                commit("logs", 1, 12_345, "λ"),
            ],
        }),
        MetaEvent::OffsetsCommitted(OffsetsCommitted {
            group: "audit".into(),
            commit_ms: 1_700_000_300_000,
            offsets: vec![commit("logs", 0, 5, "admin"), commit("scratch", 0, 1, "")],
        }),
        MetaEvent::OffsetsDeleted(OffsetsDeleted {
            group: "billing".into(),
            partitions: vec![("orders".into(), 3), ("orders".into(), 2)],
        }),
        MetaEvent::TopicDeleted(TopicDeleted {
            name: "scratch".into(),
        }),
        MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end: 2000 }),
        MetaEvent::OffsetsCommitted(OffsetsCommitted {
            group: "billing".into(),
            commit_ms: 1_700_000_400_000,
            offsets: vec![commit("orders", 0, 120, "checkpoint-2")],
        }),
    ]
}

fn meta_state() -> MetaState {
    let mut state = MetaState::new();
    for (offset, event) in meta_events().iter().enumerate() {
        state
            .apply_event(offset as u64, event)
            .unwrap_or_else(|e| panic!("event {offset}: {e}"));
    }
    assert_eq!(state.applied_offset(), META_EVENTS);
    state
}

fn sealed(topic: &str, partition: u32, first_offset: u64, last_offset: u64) -> MetaEvent {
    MetaEvent::ArchiveSealed(ArchiveSealed {
        topic: topic.into(),
        partition,
        key: format!("topics/{topic}/{partition}/{first_offset:020}-{last_offset:020}.rla"),
        first_offset,
        last_offset,
        min_timestamp_ms: 1_700_000_000_000 + first_offset as i64,
        max_timestamp_ms: 1_700_000_000_000 + last_offset as i64,
        bytes: 4096 + last_offset,
        footer_offset: 4000,
        footer_bytes: 90,
    })
}

/// The version 2 state, then three archives, a trim that drops the
/// first of them, and a start with 4 shards.
fn meta_state_v3() -> MetaState {
    let mut state = meta_state();
    let more = [
        sealed("orders", 0, 0, 99),
        sealed("orders", 0, 100, 199),
        sealed("logs", 1, 0, 9),
        MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
            topic: "orders".into(),
            partition: 0,
            log_start_offset: 150,
        }),
        MetaEvent::ShardsStarted(ShardsStarted { shards: 4 }),
    ];
    for (offset, event) in (META_EVENTS..).zip(more.iter()) {
        state
            .apply_event(offset, event)
            .unwrap_or_else(|e| panic!("event {offset}: {e}"));
    }
    assert_eq!(state.applied_offset(), META_V3_EVENTS);
    state
}

fn scram(user: &str, mechanism: &str, keys: usize, iterations: u32, fill: u8) -> MetaEvent {
    MetaEvent::UserScramCredential(UserScramCredential {
        user: user.into(),
        mechanism: mechanism.into(),
        salt: vec![fill; 32],
        iterations,
        stored_key: vec![fill.wrapping_add(1); keys],
        server_key: vec![fill.wrapping_add(2); keys],
    })
}

/// The version 3 state, then SCRAM credentials: two mechanisms for one
/// user, and one replaced.
fn meta_state_v4() -> MetaState {
    let mut state = meta_state_v3();
    let more = [
        scram("admin", "SCRAM-SHA-256", 32, 4096, 1),
        scram("admin", "SCRAM-SHA-512", 64, 8192, 2),
        scram("admin", "SCRAM-SHA-256", 32, 16384, 3),
    ];
    for (offset, event) in (META_V3_EVENTS..).zip(more.iter()) {
        state
            .apply_event(offset, event)
            .unwrap_or_else(|e| panic!("event {offset}: {e}"));
    }
    assert_eq!(state.applied_offset(), META_V4_EVENTS);
    state
}

fn quota(
    user: Option<QuotaName>,
    client_id: Option<QuotaName>,
    set: &[(&str, f64)],
    remove: &[&str],
) -> MetaEvent {
    MetaEvent::ClientQuotasAltered(ClientQuotasAltered {
        entity: QuotaEntity { user, client_id },
        set: set
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_bits()))
            .collect(),
        remove: remove.iter().map(|key| key.to_string()).collect(),
    })
}

fn acl(
    resource_type: AclResourceType,
    pattern_type: AclPatternType,
    name: &str,
    principal: &str,
    operation: AclOperation,
    permission: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type,
        pattern_type,
        name: name.into(),
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission,
    }
}

fn acl_bindings() -> Vec<AclBinding> {
    use AclOperation::*;
    use AclPatternType::*;
    use AclPermission::*;
    use AclResourceType::*;
    vec![
        acl(Topic, Prefixed, "orders-", "User:alice", Write, Allow),
        acl(Topic, Literal, "orders-secret", "User:alice", All, Deny),
        acl(Topic, Literal, "*", "User:*", Describe, Allow),
        acl(Group, Literal, "billing", "User:bob", Read, Allow),
        acl(Cluster, Literal, "kafka-cluster", "User:ops", Alter, Allow),
        acl(TransactionalId, Prefixed, "tx-", "User:alice", Write, Allow),
    ]
}

/// The version 4 state, then client quotas (a user's, a default
/// client's, and one of two keys removed again), then six ACL bindings
/// (one given twice) and the deletion of one.
fn meta_state_v5() -> MetaState {
    let mut state = meta_state_v4();
    let alice = || Some(QuotaName::Named("alice".into()));
    let mut created = acl_bindings();
    created.push(created[0].clone());
    let more = [
        quota(
            alice(),
            None,
            &[
                ("producer_byte_rate", 1_048_576.0),
                ("request_percentage", 25.5),
            ],
            &[],
        ),
        quota(
            None,
            Some(QuotaName::Default),
            &[("consumer_byte_rate", 2_097_152.0)],
            &[],
        ),
        quota(alice(), None, &[], &["request_percentage"]),
        MetaEvent::AclsCreated(AclsCreated { bindings: created }),
        MetaEvent::AclsDeleted(AclsDeleted {
            bindings: vec![acl_bindings()[3].clone()],
        }),
    ];
    for (offset, event) in (META_V4_EVENTS..).zip(more.iter()) {
        state
            .apply_event(offset, event)
            .unwrap_or_else(|e| panic!("event {offset}: {e}"));
    }
    assert_eq!(state.applied_offset(), META_V5_EVENTS);
    state
}

/// Four producers: one with a single batch, one whose epoch moved on and
/// that wrote more batches than are retained, one whose sequences wrap
/// past `i32::MAX`, one with an id above `u32::MAX`.
fn producer_states() -> ProducerStates {
    let mut states = ProducerStates::new();
    let mut end = 0u64;
    let mut write = |producer_id: i64, epoch: i16, first_seq: i32, records: u32, ms: i64| {
        let batch = ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq: sequence_after(first_seq, records as i32 - 1),
        };
        states.record(&batch, end, records, ms);
        end += records as u64;
    };
    write(7, 0, 0, 10, 1_700_000_000_000);
    write(42, 0, 0, 3, 1_700_000_000_100);
    write(42, 0, 3, 3, 1_700_000_000_200);
    for i in 0..7 {
        write(42, 1, i * 4, 4, 1_700_000_001_000 + i as i64);
    }
    write(1_000_003, 3, i32::MAX - 1, 3, 1_700_000_002_000);
    write(1_000_003, 3, 1, 50, 1_700_000_002_500);
    write(0x0123_4567_89ab_cdef, 12, 500, 2, 1_700_000_003_000);
    write(42, 1, 28, 5, 1_700_000_004_000);
    assert_eq!(end + 1, PRODUCER_COVERED, "one offset of data follows");
    states
}

#[test]
fn meta_snapshot_fixture_of_version_3_still_decodes() {
    let bytes = fixture(META_V3_FIXTURE);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 3);
    let (applied_offset, state) = read_snapshot_file(&bytes).expect("the fixture decodes");
    assert_eq!(applied_offset, META_V3_EVENTS);
    assert_eq!(state, meta_state_v3());
    let orders = state.archives("orders", 0).expect("orders-0 archives");
    assert_eq!(orders.log_start_offset, 150);
    let firsts: Vec<u64> = orders.archives.keys().copied().collect();
    assert_eq!(
        firsts,
        [100],
        "the trim dropped the archive wholly below 150"
    );
    assert_eq!(orders.holding(150).map(|a| a.last_offset), Some(199));
    assert_eq!(orders.end_offset(), 200);
    let logs = state.archives("logs", 1).expect("logs-1 archives");
    assert_eq!((logs.log_start_offset, logs.archives.len()), (0, 1));
    assert_eq!(state.all_archives().count(), 2);
    assert_eq!(state.started_shards(), Some(4));
    assert_eq!(state.users().count(), 0, "version 3 had no users");
    // Written again, it is a version 5 snapshot of the same state.
    let rewritten = encode_snapshot_file(&state).expect("encode");
    assert_eq!(u16::from_le_bytes([rewritten[8], rewritten[9]]), 5);
    assert_eq!(read_snapshot_file(&rewritten).expect("decodes").1, state);
}

#[test]
fn meta_snapshot_fixture_of_version_4_still_decodes() {
    let bytes = fixture(META_V4_FIXTURE);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 4);
    let (applied_offset, state) = read_snapshot_file(&bytes).expect("the fixture decodes");
    assert_eq!(applied_offset, META_V4_EVENTS);
    assert_eq!(state, meta_state_v4());
    assert_eq!(state.users().collect::<Vec<_>>(), ["admin"]);
    let sha256 = state
        .scram_credential("admin", "SCRAM-SHA-256")
        .expect("stored");
    assert_eq!(
        (sha256.iterations, sha256.salt[0], sha256.stored_key.len()),
        (16384, 3, 32),
        "the later credential replaced the first"
    );
    let sha512 = state
        .scram_credential("admin", "SCRAM-SHA-512")
        .expect("stored");
    assert_eq!((sha512.iterations, sha512.server_key.len()), (8192, 64));
    assert_eq!(state.all_archives().count(), 2);
    assert!(state.client_quotas().is_empty(), "version 4 had no quotas");
    assert!(state.acls().is_empty(), "version 4 had no ACLs");
    // Written again, it is a version 5 snapshot of the same state.
    let rewritten = encode_snapshot_file(&state).expect("encode");
    assert_eq!(u16::from_le_bytes([rewritten[8], rewritten[9]]), 5);
    assert_eq!(read_snapshot_file(&rewritten).expect("decodes").1, state);
}

#[test]
fn meta_snapshot_fixture_of_version_5_decodes_and_encodes_to_the_same_bytes() {
    let bytes = fixture(META_V5_FIXTURE);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 5);
    let (applied_offset, state) = read_snapshot_file(&bytes).expect("the fixture decodes");
    assert_eq!(applied_offset, META_V5_EVENTS);
    assert_eq!(state, meta_state_v5());
    assert_eq!(state.client_quotas().len(), 2);
    assert_eq!(
        state
            .client_quota("alice", "any", "producer_byte_rate")
            .map(|(_, value)| value),
        Some(1_048_576.0)
    );
    assert_eq!(
        state.client_quota("alice", "any", "request_percentage"),
        None,
        "removed again"
    );
    assert_eq!(
        state
            .client_quota("bob", "any", "consumer_byte_rate")
            .map(|(_, value)| value),
        Some(2_097_152.0),
        "the default client's quota"
    );
    let mut expected = acl_bindings();
    expected.remove(3);
    expected.sort();
    let mut held: Vec<AclBinding> = state.acls().bindings().collect();
    held.sort();
    assert_eq!(held, expected, "deduplicated, the group binding deleted");
    assert_eq!(state.users().collect::<Vec<_>>(), ["admin"]);
    assert_eq!(
        encode_snapshot_file(&state).expect("encode"),
        bytes,
        "the decoded state encodes to the fixture's bytes"
    );
}

#[test]
fn meta_snapshot_fixture_of_version_2_still_decodes() {
    let bytes = fixture(META_V2_FIXTURE);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    let (applied_offset, state) = read_snapshot_file(&bytes).expect("the fixture decodes");
    assert_eq!(applied_offset, META_EVENTS);
    assert_eq!(state, meta_state());

    let topics: Vec<&str> = state.topics().map(|(name, _)| name).collect();
    assert_eq!(topics, ["logs", "orders"], "scratch was deleted");
    let orders = state.topic("orders").expect("orders");
    assert_eq!(orders.topic_id, *b"orders-topic-id!");
    assert_eq!(orders.partitions, [Some(0), Some(1), None, Some(1)]);
    let expected_configs: BTreeMap<String, String> = configs(&[
        ("max.message.bytes", "2097152"),
        ("retention.ms", "86400000"),
    ])
    .into_iter()
    .collect();
    assert_eq!(orders.configs, expected_configs);
    assert_eq!(
        state.topic_by_id(&[0xa5; 16]).map(|(name, _)| name),
        Some("logs"),
        "the id index is rebuilt on load"
    );
    assert_eq!(state.partition_count("logs"), Some(3));
    assert_eq!(
        state.topic("logs").map(|t| t.configs.get("segment.ms")),
        Some(Some(&"3600000".to_string()))
    );
    assert_eq!(state.placement("logs", 2), Some(1));
    assert_eq!(state.producer_id_block_end(), 2000);

    let groups: Vec<&str> = state.groups().map(|(id, _)| id).collect();
    assert_eq!(groups, ["audit", "billing"]);
    let billing = state.group("billing").expect("billing");
    let record = billing.record.as_ref().expect("a stored generation");
    assert_eq!(
        (
            record.generation,
            record.leader.as_str(),
            record.members.len()
        ),
        (3, "m-1", 2)
    );
    assert_eq!(record.members[1].instance_id.as_deref(), Some("static-2"));
    assert_eq!(billing.offset_count(), 2, "orders 3 was deleted");
    let orders_0 = state.committed_offset("billing", "orders", 0).expect("set");
    assert_eq!(
        (
            orders_0.offset,
            orders_0.metadata.as_str(),
            orders_0.commit_ms
        ),
        (120, "checkpoint-2", 1_700_000_400_000)
    );
    assert_eq!(
        state.committed_offset("billing", "logs", 1).map(|c| (
            c.offset,
            c.leader_epoch,
            c.metadata.as_str()
        )),
        Some((12_345, 4, "λ"))
    );
    let audit = state.group("audit").expect("audit");
    assert!(audit.record.is_none(), "offsets only");
    assert_eq!(audit.offset_count(), 1, "scratch's offset left with it");
    assert_eq!(state.all_archives().count(), 0, "version 2 had no archives");
    assert_eq!(state.started_shards(), None, "nor a recorded shard count");

    // Written again, it is a version 5 snapshot of the same state.
    let rewritten = encode_snapshot_file(&state).expect("encode");
    assert_eq!(u16::from_le_bytes([rewritten[8], rewritten[9]]), 5);
    assert_eq!(read_snapshot_file(&rewritten).expect("decodes").1, state);
}

#[test]
fn producer_snapshot_fixture_decodes_and_encodes_to_the_same_bytes() {
    let bytes = fixture(PRODUCER_FIXTURE);
    let (covered_offset, states) =
        ProducerStates::decode_snapshot(&bytes).expect("the fixture decodes");
    assert_eq!(covered_offset, PRODUCER_COVERED);
    assert_eq!(states, producer_states());

    assert_eq!(states.len(), 4);
    let batch = |first_seq, last_seq, base_offset, offset_count| BatchRecord {
        first_seq,
        last_seq,
        base_offset,
        offset_count,
    };
    assert_eq!(states.producer(7), Some((0, vec![batch(0, 9, 0, 10)])));
    assert_eq!(
        states.producer(42),
        Some((
            1,
            vec![
                batch(12, 15, 28, 4),
                batch(16, 19, 32, 4),
                batch(20, 23, 36, 4),
                batch(24, 27, 40, 4),
                batch(28, 32, 99, 5),
            ]
        )),
        "epoch 1 dropped epoch 0's batches; the oldest of epoch 1 fell out"
    );
    assert_eq!(
        states.producer(1_000_003),
        Some((3, vec![batch(i32::MAX - 1, 0, 44, 3), batch(1, 50, 47, 50)])),
        "sequences wrap past i32::MAX"
    );
    assert_eq!(
        states.producer(0x0123_4567_89ab_cdef),
        Some((12, vec![batch(500, 501, 97, 2)]))
    );

    assert_eq!(
        states.encode_snapshot(covered_offset),
        bytes,
        "the decoded state encodes to the fixture's bytes"
    );
}

/// Writes the fixtures of the current versions from the states above
/// (never the version 2, 3 and 4 ones). See the module docs for when this may run.
#[test]
#[ignore = "rewrites the committed snapshot fixtures"]
fn write_snapshot_fixtures() {
    let dir = fixture_path("");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let meta = encode_snapshot_file(&meta_state_v5()).expect("encode");
    std::fs::write(fixture_path(META_V5_FIXTURE), meta).expect("write");
    let producers = producer_states().encode_snapshot(PRODUCER_COVERED);
    std::fs::write(fixture_path(PRODUCER_FIXTURE), producers).expect("write");
}
