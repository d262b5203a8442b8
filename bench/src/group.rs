//! `bench consume --group`: consumers as members of a Kafka consumer group
//! (the classic protocol, as Kafka's Java consumer and librdkafka speak it).
//!
//! Each consumer connection is one member with its own coordinator
//! connection: JoinGroup (retried with the member id the broker hands out,
//! KIP-394), the leader assigns the topic's partitions round-robin over the
//! members and sends the assignments with SyncGroup, every member starts
//! where the group committed (or at `--from` where it has no offset), and
//! then fetches from the partition leaders while it heartbeats and commits
//! its positions every second. When the coordinator announces a rebalance
//! the member stops fetching, commits, and joins again; at the end it
//! commits and leaves. Counting the records consumed is the fetch loops'
//! job ([`crate::consume::fetch_loop`]), so a group run reports exactly
//! what an assigned run does.
//!
//! Why commit before rejoining: the next owner of a partition starts at
//! the committed offset, so committing what was consumed before giving
//! the partition up is what keeps a rebalance from consuming records twice.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{list_offsets, topic_name, EARLIEST, LATEST};
use crate::conn::Conn;
use crate::consume::{fetch_loop, ConsumerConfig, FetchState, StopRule};
use crate::options::StartFrom;
use crate::runner::ThreadContext;
use ringlog_protocol::client::error_code_name;

/// The assignor the bench's members announce and its leader applies.
pub const ASSIGNOR: &str = "roundrobin";
/// Member session timeout: a member silent this long is dropped.
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the coordinator waits for members to rejoin a rebalance.
pub const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Heartbeat and commit period.
pub const COORDINATION_INTERVAL: Duration = Duration::from_secs(1);
/// JoinGroup/SyncGroup attempts per generation before giving up (each is
/// bounded by the request timeout).
pub const JOIN_ATTEMPTS_MAX: usize = 16;
/// Generations one member goes through at most (each rebalance is one).
pub const GENERATIONS_MAX: usize = 1_000;
/// Version of the consumer protocol's embedded subscription and
/// assignment formats the bench writes (v0: topics only).
const CONSUMER_PROTOCOL_VERSION: i16 = 0;

/// What every member of the run shares.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// The group.
    pub group: String,
    /// The coordinator's `host:port`.
    pub coordinator: String,
    /// The topic subscribed to.
    pub topic: String,
    /// Every partition of the topic and its leader.
    pub leaders: BTreeMap<i32, String>,
    /// Where partitions without a committed offset start.
    pub from: StartFrom,
    /// `--until-end`: where each partition ends. A member whose partitions
    /// are all read to there leaves the group (the others take over what
    /// remains after the rebalance that follows).
    pub end: Option<BTreeMap<i32, i64>>,
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// The JoinGroup metadata of a member subscribed to `topic`: the consumer
/// protocol's version then a ConsumerProtocolSubscription.
pub fn subscription(topic: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(CONSUMER_PROTOCOL_VERSION);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![str_bytes(topic)])
        .encode(&mut out, CONSUMER_PROTOCOL_VERSION)
        .expect("a v0 subscription always encodes");
    out.freeze()
}

/// The SyncGroup assignment giving `partitions` of `topic` to a member.
pub fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(CONSUMER_PROTOCOL_VERSION);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![AssignedPartitions::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions.to_vec())])
        .encode(&mut out, CONSUMER_PROTOCOL_VERSION)
        .expect("a v0 assignment always encodes");
    out.freeze()
}

/// The partitions of `topic` in an assignment from SyncGroup (any
/// consumer protocol version; empty bytes mean no partitions).
///
/// # Errors
///
/// Bytes that are not a consumer protocol assignment.
pub fn assigned(topic: &str, bytes: &Bytes) -> Result<Vec<i32>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Err("assignment shorter than its version".to_string());
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = buf.split_to(2);
    let decoded = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3))
        .map_err(|e| format!("undecodable assignment (version {version}): {e:#}"))?;
    let mut partitions: Vec<i32> = decoded
        .assigned_partitions
        .iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    partitions.sort_unstable();
    Ok(partitions)
}

/// Round-robin assignment: partition `i` (in order) to member `i mod n`
/// (members sorted by id), so every member's share differs by at most one.
pub fn round_robin(members: &[String], partitions: &[i32]) -> BTreeMap<String, Vec<i32>> {
    let mut members = members.to_vec();
    members.sort();
    members.dedup();
    let mut out: BTreeMap<String, Vec<i32>> =
        members.iter().map(|m| (m.clone(), Vec::new())).collect();
    if members.is_empty() {
        return out;
    }
    let mut partitions = partitions.to_vec();
    partitions.sort_unstable();
    for (i, p) in partitions.into_iter().enumerate() {
        out.get_mut(&members[i % members.len()])
            .expect("every member has an entry")
            .push(p);
    }
    out
}

/// One member's place in the group.
struct Membership {
    member_id: String,
    generation: i32,
}

/// What ended a generation.
enum Outcome {
    /// The run is over: leave the group.
    Done,
    /// The coordinator asked for a rebalance: join again.
    Rejoin,
}

fn is_rebalance(code: i16) -> bool {
    code == ResponseError::RebalanceInProgress.code()
        || code == ResponseError::IllegalGeneration.code()
        || code == ResponseError::UnknownMemberId.code()
}

async fn join(
    coordinator: &mut Conn,
    config: &GroupConfig,
    member_id: &mut String,
) -> Result<(Membership, Vec<i32>), String> {
    let group = GroupId(str_bytes(&config.group));
    let join_version = coordinator.version::<JoinGroupRequest>()?;
    let sync_version = coordinator.version::<SyncGroupRequest>()?;
    // Each attempt is one JoinGroup and at most one SyncGroup, both with
    // deadlines.
    for _ in 0..JOIN_ATTEMPTS_MAX {
        let request = JoinGroupRequest::default()
            .with_group_id(group.clone())
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(str_bytes(member_id))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str(ASSIGNOR))
                .with_metadata(subscription(&config.topic))]);
        let joined = coordinator.call(join_version, &request).await?;
        if joined.error_code == ResponseError::MemberIdRequired.code() {
            *member_id = joined.member_id.to_string();
            continue;
        }
        if joined.error_code == ResponseError::UnknownMemberId.code() {
            member_id.clear();
            continue;
        }
        if joined.error_code == ResponseError::RebalanceInProgress.code() {
            continue;
        }
        if joined.error_code != 0 {
            return Err(format!(
                "JoinGroup {}: {}",
                config.group,
                error_code_name(joined.error_code)
            ));
        }
        *member_id = joined.member_id.to_string();
        let assignments = if joined.leader == joined.member_id {
            let members: Vec<String> = joined
                .members
                .iter()
                .map(|m| m.member_id.to_string())
                .collect();
            let partitions: Vec<i32> = config.leaders.keys().copied().collect();
            round_robin(&members, &partitions)
                .into_iter()
                .map(|(member, mine)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(str_bytes(&member))
                        .with_assignment(assignment(&config.topic, &mine))
                })
                .collect()
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str(ASSIGNOR)))
            .with_assignments(assignments);
        let synced = coordinator.call(sync_version, &request).await?;
        if is_rebalance(synced.error_code) {
            if synced.error_code == ResponseError::UnknownMemberId.code() {
                member_id.clear();
            }
            continue;
        }
        if synced.error_code != 0 {
            return Err(format!(
                "SyncGroup {}: {}",
                config.group,
                error_code_name(synced.error_code)
            ));
        }
        let partitions = assigned(&config.topic, &synced.assignment)?;
        return Ok((
            Membership {
                member_id: member_id.clone(),
                generation: joined.generation_id,
            },
            partitions,
        ));
    }
    Err(format!(
        "group {}: no stable generation after {JOIN_ATTEMPTS_MAX} JoinGroup attempts",
        config.group
    ))
}

/// The group's committed offsets of `partitions` (absent: none committed).
async fn committed(
    coordinator: &mut Conn,
    config: &GroupConfig,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, String> {
    let version = coordinator.version::<OffsetFetchRequest>()?;
    let group = GroupId(str_bytes(&config.group));
    let request = if version >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group)
            .with_member_epoch(-1)
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(&config.topic))
                .with_partition_indexes(partitions.to_vec())]))])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(group)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(&config.topic))
                .with_partition_indexes(partitions.to_vec())]))
    };
    let response = coordinator.call(version, &request).await?;
    let mut out = BTreeMap::new();
    let mut found = |p: i32, offset: i64, code: i16| -> Result<(), String> {
        if code != 0 {
            return Err(format!(
                "OffsetFetch {}: {}",
                config.group,
                error_code_name(code)
            ));
        }
        if offset >= 0 {
            out.insert(p, offset);
        }
        Ok(())
    };
    if version >= 8 {
        for g in &response.groups {
            if g.error_code != 0 {
                return Err(format!(
                    "OffsetFetch {}: {}",
                    config.group,
                    error_code_name(g.error_code)
                ));
            }
            for p in g.topics.iter().flat_map(|t| &t.partitions) {
                found(p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    } else {
        if response.error_code != 0 {
            return Err(format!(
                "OffsetFetch {}: {}",
                config.group,
                error_code_name(response.error_code)
            ));
        }
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            found(p.partition_index, p.committed_offset, p.error_code)?;
        }
    }
    Ok(out)
}

/// Commits `positions`; returns the first error code (0: all committed).
async fn commit(
    coordinator: &mut Conn,
    config: &GroupConfig,
    membership: &Membership,
    positions: &BTreeMap<i32, i64>,
) -> Result<i16, String> {
    if positions.is_empty() {
        return Ok(0);
    }
    let version = coordinator.version::<OffsetCommitRequest>()?;
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(&config.group)))
        .with_generation_id_or_member_epoch(membership.generation)
        .with_member_id(str_bytes(&membership.member_id))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(&config.topic))
            .with_partitions(
                positions
                    .iter()
                    .map(|(&p, &offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    let response = coordinator.call(version, &request).await?;
    Ok(response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .find(|&code| code != 0)
        .unwrap_or(0))
}

async fn heartbeat(
    coordinator: &mut Conn,
    config: &GroupConfig,
    membership: &Membership,
) -> Result<i16, String> {
    let version = coordinator.version::<HeartbeatRequest>()?;
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(str_bytes(&config.group)))
        .with_generation_id(membership.generation)
        .with_member_id(str_bytes(&membership.member_id));
    Ok(coordinator.call(version, &request).await?.error_code)
}

async fn leave(
    coordinator: &mut Conn,
    config: &GroupConfig,
    member_id: &str,
) -> Result<(), String> {
    let version = coordinator.version::<LeaveGroupRequest>()?;
    let request = if version >= 3 {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&config.group)))
            .with_members(vec![
                MemberIdentity::default().with_member_id(str_bytes(member_id))
            ])
    } else {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&config.group)))
            .with_member_id(str_bytes(member_id))
    };
    let response = coordinator.call(version, &request).await?;
    match response.error_code {
        0 => Ok(()),
        code => Err(format!(
            "LeaveGroup {}: {}",
            config.group,
            error_code_name(code)
        )),
    }
}

/// Where each assigned partition starts: the group's committed offset,
/// else `--from` on its leader.
async fn start_positions(
    coordinator: &mut Conn,
    config: &GroupConfig,
    partitions: &[i32],
    consumer: &ConsumerConfig,
) -> Result<BTreeMap<i32, i64>, String> {
    let mut positions = committed(coordinator, config, partitions).await?;
    let mut missing: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for p in partitions.iter().filter(|p| !positions.contains_key(p)) {
        let leader = config
            .leaders
            .get(p)
            .ok_or_else(|| format!("assigned partition {p} is not in the topic's metadata"))?;
        missing.entry(leader).or_default().push(*p);
    }
    let timestamp = match config.from {
        StartFrom::Earliest => EARLIEST,
        StartFrom::Latest => LATEST,
    };
    for (leader, partitions) in missing {
        let mut conn =
            Conn::connect(leader, &consumer.security, consumer.request_timeout, 1).await?;
        positions.extend(list_offsets(&mut conn, &config.topic, &partitions, timestamp).await?);
    }
    Ok(positions)
}

/// One generation: fetch the assigned partitions while heartbeating and
/// committing, until the run ends or a rebalance starts.
async fn generation(
    ctx: &Rc<ThreadContext>,
    consumer: &Arc<ConsumerConfig>,
    config: &GroupConfig,
    stop: &Arc<StopRule>,
    coordinator: &mut Conn,
    membership: &Membership,
    partitions: &[i32],
) -> Result<Outcome, String> {
    let positions = start_positions(coordinator, config, partitions, consumer).await?;
    let mut by_leader: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for (p, offset) in positions {
        let leader = config.leaders.get(&p).cloned().unwrap_or_default();
        by_leader.entry(leader).or_default().insert(p, offset);
    }
    let running = Rc::new(Cell::new(0usize));
    let mut states = Vec::with_capacity(by_leader.len());
    let mut tasks = Vec::with_capacity(by_leader.len());
    for (leader, positions) in by_leader {
        let end = config.end.as_ref().map(|end| {
            end.iter()
                .filter(|(p, _)| positions.contains_key(p))
                .map(|(&p, &e)| (p, e))
                .collect()
        });
        let state = Rc::new(FetchState {
            positions: RefCell::new(positions),
            end,
            revoked: Cell::new(false),
        });
        let (ctx, consumer, stop, running, task_state) = (
            ctx.clone(),
            consumer.clone(),
            stop.clone(),
            running.clone(),
            state.clone(),
        );
        running.set(running.get() + 1);
        tasks.push(glommio::spawn_local(async move {
            let result = fetch_loop(&ctx, &consumer, &leader, &task_state, &stop).await;
            running.set(running.get() - 1);
            result
        }));
        states.push(state);
    }
    let positions = |states: &[Rc<FetchState>]| -> BTreeMap<i32, i64> {
        states
            .iter()
            .flat_map(|state| state.positions.borrow().clone())
            .collect()
    };
    let finished = || {
        if states.is_empty() {
            // A member without partitions stays in the group until the run
            // ends (leaving would make the others rebalance), unless the
            // run ends with the partitions: then it has nothing to wait for.
            config.end.is_some()
                || stop.should_stop(ctx.clock.now_ns(), ctx.clock.end_ns, consumer.end_to_end)
        } else {
            running.get() == 0
        }
    };
    let mut outcome = Outcome::Done;
    // Each round sleeps one interval (cut short once the fetchers end),
    // then commits and heartbeats; it ends with the run or a rebalance.
    while !finished() {
        let ticks = 20u32;
        for _ in 0..ticks {
            if finished() {
                break;
            }
            glommio::timer::sleep(COORDINATION_INTERVAL / ticks).await;
        }
        let code = commit(coordinator, config, membership, &positions(&states)).await?;
        let code = if code == 0 {
            heartbeat(coordinator, config, membership).await?
        } else {
            code
        };
        if is_rebalance(code) {
            outcome = Outcome::Rejoin;
            break;
        }
        if code != 0 {
            return Err(format!("group {}: {}", config.group, error_code_name(code)));
        }
    }
    for state in &states {
        state.revoked.set(true);
    }
    let mut failure = None;
    for task in tasks {
        if let Err(why) = task.await {
            failure.get_or_insert(why);
        }
    }
    let final_positions = positions(&states);
    // What was consumed is committed before the partitions go to another
    // member (a generation already gone refuses it; the next owner then
    // starts from the previous commit, at most one interval back).
    let code = commit(coordinator, config, membership, &final_positions).await?;
    if code != 0 && !is_rebalance(code) {
        return Err(format!(
            "group {}: final commit: {}",
            config.group,
            error_code_name(code)
        ));
    }
    match failure {
        Some(why) => Err(why),
        None => Ok(outcome),
    }
}

/// One group member from its first JoinGroup to LeaveGroup.
pub async fn member(
    ctx: Rc<ThreadContext>,
    consumer: Arc<ConsumerConfig>,
    config: Arc<GroupConfig>,
    stop: Arc<StopRule>,
    index: usize,
) {
    let label = format!("group member {index} of {}", config.group);
    if let Err(why) = run_member(&ctx, &consumer, &config, &stop).await {
        eprintln!("ringlog bench: {label}: {why}");
        ctx.recorder
            .borrow_mut()
            .failed(ctx.clock.now_ns(), 1, &why);
    }
}

async fn run_member(
    ctx: &Rc<ThreadContext>,
    consumer: &Arc<ConsumerConfig>,
    config: &GroupConfig,
    stop: &Arc<StopRule>,
) -> Result<(), String> {
    let mut coordinator = Conn::connect(
        &config.coordinator,
        &consumer.security,
        consumer.request_timeout,
        2,
    )
    .await?;
    let mut member_id = String::new();
    for _ in 0..GENERATIONS_MAX {
        let (membership, partitions) = join(&mut coordinator, config, &mut member_id).await?;
        let outcome = generation(
            ctx,
            consumer,
            config,
            stop,
            &mut coordinator,
            &membership,
            &partitions,
        )
        .await?;
        let now = ctx.clock.now_ns();
        let over = stop.should_stop(now, ctx.clock.end_ns, consumer.end_to_end);
        if matches!(outcome, Outcome::Done) || over {
            return leave(&mut coordinator, config, &membership.member_id).await;
        }
    }
    Err(format!(
        "group {}: more than {GENERATIONS_MAX} rebalances",
        config.group
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_spreads_partitions_evenly_over_sorted_members() {
        let members = vec!["b".to_string(), "a".to_string(), "c".to_string()];
        let got = round_robin(&members, &[7, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(got["a"], [0, 3, 6]);
        assert_eq!(got["b"], [1, 4, 7]);
        assert_eq!(got["c"], [2, 5]);
        let lonely = round_robin(&["x".to_string()], &[1, 0]);
        assert_eq!(lonely["x"], [0, 1]);
        let more_members = round_robin(&["a".into(), "b".into(), "c".into()], &[0]);
        assert_eq!(more_members["a"], [0]);
        assert!(more_members["b"].is_empty() && more_members["c"].is_empty());
    }

    #[test]
    fn assignments_round_trip_and_filter_by_topic() {
        let bytes = assignment("t", &[3, 1]);
        assert_eq!(&bytes[..2], &[0, 0], "consumer protocol version 0");
        assert_eq!(assigned("t", &bytes), Ok(vec![1, 3]));
        assert_eq!(assigned("other", &bytes), Ok(vec![]));
        assert_eq!(assigned("t", &Bytes::new()), Ok(vec![]));
        assert!(assigned("t", &Bytes::from_static(&[0])).is_err());
        assert!(assigned("t", &Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }

    #[test]
    fn subscriptions_decode_as_kafka_consumers_write_them() {
        let mut bytes = subscription("orders");
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        let _ = bytes.split_to(2);
        let decoded = ConsumerProtocolSubscription::decode(&mut bytes, version).unwrap();
        assert_eq!(decoded.topics, vec![StrBytes::from_static_str("orders")]);
        assert!(bytes.is_empty());
    }
}
