//! What the bench learns from the cluster before and after a run: the
//! topic's partitions and their leaders (Metadata), the topic itself when
//! it has to be created (CreateTopics), and partition offsets
//! (ListOffsets) for the consumers' start and the end-of-run verification.
//!
//! Leaders are honoured rather than assumed: each connection talks to the
//! leader of its partitions, found by Metadata, so the bench measures
//! Kafka clusters of several brokers correctly, and a single ringlog node
//! is simply the leader of everything.

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::conn::{Conn, Dial};
use ringlog_protocol::client::error_code_name;

/// ListOffsets timestamp of the next offset to be written.
pub const LATEST: i64 = -1;
/// ListOffsets timestamp of the first offset still stored.
pub const EARLIEST: i64 = -2;
/// Pause between Metadata polls while a new topic's leaders are elected.
const LEADER_POLL_MS: u64 = 50;
/// Partition errors that go away by themselves: UNKNOWN_TOPIC_OR_PARTITION
/// (a new partition not open yet), LEADER_NOT_AVAILABLE,
/// NOT_LEADER_OR_FOLLOWER.
const RETRIABLE: [i16; 3] = [3, 5, 6];

/// One partition and the broker leading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLeader {
    /// Partition index.
    pub partition: i32,
    /// `host:port` of the leader.
    pub leader: String,
}

/// A topic's partitions and where they live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Topic name.
    pub topic: String,
    /// Every partition, by index.
    pub partitions: Vec<PartitionLeader>,
}

/// A topic name as the messages want it.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Metadata for `topic`; `None` when the broker does not know it.
///
/// # Errors
///
/// The request fails, or the topic has an error other than unknown, or a
/// partition has no leader.
pub async fn layout(conn: &mut Conn, topic: &str) -> Result<Option<Layout>, String> {
    let version = conn.version::<MetadataRequest>()?;
    let mut request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(false);
    }
    let response = conn.call(version, &request).await?;
    let brokers: BTreeMap<BrokerId, String> = response
        .brokers
        .iter()
        .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
        .collect();
    let Some(found) = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    else {
        return Ok(None);
    };
    if found.error_code == ResponseError::UnknownTopicOrPartition.code() {
        return Ok(None);
    }
    if found.error_code != 0 {
        return Err(format!(
            "Metadata for topic {topic}: {}",
            error_code_name(found.error_code)
        ));
    }
    let mut partitions = Vec::with_capacity(found.partitions.len());
    for p in &found.partitions {
        let leader = brokers.get(&p.leader_id).ok_or_else(|| {
            format!(
                "topic {topic} partition {} has no known leader (leader id {}, error {})",
                p.partition_index,
                p.leader_id.0,
                error_code_name(p.error_code)
            )
        })?;
        partitions.push(PartitionLeader {
            partition: p.partition_index,
            leader: leader.clone(),
        });
    }
    partitions.sort_by_key(|p| p.partition);
    Ok(Some(Layout {
        topic: topic.to_string(),
        partitions,
    }))
}

/// Creates `topic` with `partitions` partitions (broker-default
/// replication) unless it exists, then waits until every partition has a
/// leader. Returns the layout and whether the topic was created.
///
/// # Errors
///
/// CreateTopics refused (other than "already exists"), or the leaders did
/// not appear within the connection's timeout.
pub async fn ensure_topic(
    conn: &mut Conn,
    topic: &str,
    partitions: i32,
) -> Result<(Layout, bool), String> {
    assert!(partitions >= 1);
    if let Some(layout) = layout(conn, topic).await? {
        return Ok((layout, false));
    }
    create_topic(conn, topic, partitions).await?;
    let deadline = Instant::now() + conn.timeout();
    // Bounded by the deadline.
    loop {
        match layout(conn, topic).await {
            Ok(Some(layout)) if layout.partitions.len() == partitions as usize => {
                return Ok((layout, true))
            }
            Ok(_) | Err(_) if Instant::now() < deadline => {
                glommio::timer::sleep(Duration::from_millis(LEADER_POLL_MS)).await;
            }
            Ok(_) => {
                return Err(format!(
                    "topic {topic} was created but its {partitions} partitions did not all get leaders within {} ms",
                    conn.timeout().as_millis()
                ))
            }
            Err(e) => return Err(e),
        }
    }
}

/// CreateTopics for one topic. "Already exists" counts as success.
///
/// # Errors
///
/// The request fails or the broker refuses the topic.
pub async fn create_topic(conn: &mut Conn, topic: &str, partitions: i32) -> Result<(), String> {
    let version = conn.version::<CreateTopicsRequest>()?;
    let request = create_topics_request(version, topic, partitions, conn.timeout());
    let response = conn.call(version, &request).await?;
    check_created(topic, &response)
}

/// The CreateTopics request for one topic. Replication factor -1 (the
/// broker's default) from v4 on, where Kafka allows it, else 1.
pub fn create_topics_request(
    version: i16,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(if version >= 4 { -1 } else { 1 })])
        .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
}

/// Checks a CreateTopics answer for `topic`.
///
/// # Errors
///
/// The topic is missing from the answer or has an error other than
/// TOPIC_ALREADY_EXISTS.
pub fn check_created(
    topic: &str,
    response: &kafka_protocol::messages::CreateTopicsResponse,
) -> Result<(), String> {
    let result = response
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == topic)
        .ok_or_else(|| format!("CreateTopics answer does not mention topic {topic}"))?;
    if result.error_code == 0 || result.error_code == ResponseError::TopicAlreadyExists.code() {
        return Ok(());
    }
    Err(format!(
        "CreateTopics {topic}: {}{}",
        error_code_name(result.error_code),
        result
            .error_message
            .as_ref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    ))
}

/// The offset `timestamp` ([`LATEST`], [`EARLIEST`]) names in each of
/// `partitions` of `topic`, from their leader `conn`.
///
/// # Errors
///
/// The request fails or a partition answers with an error.
pub async fn list_offsets(
    conn: &mut Conn,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, String> {
    let version = conn.version::<ListOffsetsRequest>()?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )]);
    let deadline = Instant::now() + conn.timeout();
    let mut offsets = BTreeMap::new();
    // Retriable errors (a partition still opening on its broker) are
    // retried until the connection's timeout; bounded by the deadline.
    'attempts: loop {
        let response = conn.call(version, &request).await?;
        offsets.clear();
        for t in response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
        {
            for p in &t.partitions {
                if p.error_code != 0 {
                    if RETRIABLE.contains(&p.error_code) && Instant::now() < deadline {
                        glommio::timer::sleep(Duration::from_millis(LEADER_POLL_MS)).await;
                        continue 'attempts;
                    }
                    return Err(format!(
                        "ListOffsets {topic}-{}: {}",
                        p.partition_index,
                        error_code_name(p.error_code)
                    ));
                }
                offsets.insert(p.partition_index, p.offset);
            }
        }
        break;
    }
    if let Some(missing) = partitions.iter().find(|p| !offsets.contains_key(p)) {
        return Err(format!(
            "ListOffsets answer does not mention {topic}-{missing}"
        ));
    }
    Ok(offsets)
}

/// Offsets of every partition of `layout`, asking each leader for its own.
///
/// # Errors
///
/// A leader cannot be reached or answers with an error.
pub async fn all_offsets(
    layout: &Layout,
    timestamp: i64,
    dial: &Dial,
) -> Result<BTreeMap<i32, i64>, String> {
    let mut by_leader: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for p in &layout.partitions {
        by_leader.entry(&p.leader).or_default().push(p.partition);
    }
    let mut offsets = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let mut conn = dial.connect(leader, 1).await?;
        offsets.extend(list_offsets(&mut conn, &layout.topic, &partitions, timestamp).await?);
    }
    Ok(offsets)
}

/// The `host:port` of `group`'s coordinator (FindCoordinator: v0-3 name
/// one key, v4+ a list of keys).
///
/// # Errors
///
/// The request fails or the broker answers with an error.
pub async fn find_coordinator(conn: &mut Conn, group: &str) -> Result<String, String> {
    let version = conn.version::<FindCoordinatorRequest>()?;
    let key = StrBytes::from_string(group.to_string());
    let request = if version >= 4 {
        FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
    } else {
        FindCoordinatorRequest::default().with_key(key)
    };
    let response = conn.call(version, &request).await?;
    let (error_code, host, port) = if version >= 4 {
        let c = response
            .coordinators
            .iter()
            .find(|c| c.key.as_str() == group)
            .ok_or_else(|| format!("FindCoordinator answer does not mention group {group}"))?;
        (c.error_code, c.host.to_string(), c.port)
    } else {
        (
            response.error_code,
            response.host.to_string(),
            response.port,
        )
    };
    if error_code != 0 {
        return Err(format!(
            "FindCoordinator for group {group}: {}",
            error_code_name(error_code)
        ));
    }
    Ok(format!("{host}:{port}"))
}

/// A connection's share of a topic: which broker, which partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Connection index (0-based over the whole run).
    pub connection: usize,
    /// The thread that runs it.
    pub thread: usize,
    /// The leader it talks to.
    pub leader: String,
    /// The partitions it writes or reads.
    pub partitions: Vec<i32>,
}

/// Spreads `connections` connections over the partitions of `layout`,
/// grouped by leader, and the connections over `threads` threads.
///
/// Each leader gets connections in proportion to its partitions (at least
/// one). Within a leader, with at least as many partitions as connections,
/// partition `i` goes to connection `i mod k`, so every partition has
/// exactly one writer; with more connections than partitions, connection
/// `j` takes partition `j mod n` and partitions are shared. Connections go
/// to threads round-robin.
pub fn assign(layout: &Layout, connections: usize, threads: usize) -> Vec<Assignment> {
    assert!(connections >= 1 && threads >= 1);
    assert!(!layout.partitions.is_empty(), "a topic has partitions");
    let mut by_leader: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for p in &layout.partitions {
        by_leader.entry(&p.leader).or_default().push(p.partition);
    }
    let total = layout.partitions.len();
    let mut out = Vec::with_capacity(connections.max(by_leader.len()));
    for (leader, partitions) in by_leader {
        let share = (connections * partitions.len()).div_ceil(total).max(1);
        for j in 0..share {
            let mine: Vec<i32> = if partitions.len() >= share {
                partitions
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % share == j)
                    .map(|(_, &p)| p)
                    .collect()
            } else {
                vec![partitions[j % partitions.len()]]
            };
            let connection = out.len();
            out.push(Assignment {
                connection,
                thread: connection % threads,
                leader: leader.to_string(),
                partitions: mine,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(leaders: &[&str]) -> Layout {
        Layout {
            topic: "t".into(),
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(i, l)| PartitionLeader {
                    partition: i as i32,
                    leader: l.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn one_writer_per_partition_when_partitions_outnumber_connections() {
        let l = layout(&["a"; 8]);
        let plan = assign(&l, 3, 2);
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].partitions, [0, 3, 6]);
        assert_eq!(plan[1].partitions, [1, 4, 7]);
        assert_eq!(plan[2].partitions, [2, 5]);
        assert_eq!(plan.iter().map(|a| a.thread).collect::<Vec<_>>(), [0, 1, 0]);
        let mut all: Vec<i32> = plan.iter().flat_map(|a| a.partitions.clone()).collect();
        all.sort();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn connections_share_partitions_when_they_outnumber_them() {
        let l = layout(&["a"; 2]);
        let plan = assign(&l, 5, 1);
        let parts: Vec<Vec<i32>> = plan.iter().map(|a| a.partitions.clone()).collect();
        assert_eq!(parts, [vec![0], vec![1], vec![0], vec![1], vec![0]]);
    }

    #[test]
    fn each_leader_gets_its_own_connections() {
        let l = layout(&["a", "b", "a", "b", "a", "b"]);
        let plan = assign(&l, 2, 4);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].leader, "a");
        assert_eq!(plan[0].partitions, [0, 2, 4]);
        assert_eq!(plan[1].leader, "b");
        assert_eq!(plan[1].partitions, [1, 3, 5]);
        // One connection for two leaders still reaches both.
        let plan = assign(&l, 1, 1);
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn create_topics_request_uses_the_broker_default_replication_from_v4() {
        let r = create_topics_request(7, "x", 3, Duration::from_secs(5));
        assert_eq!(r.topics[0].replication_factor, -1);
        assert_eq!(r.topics[0].num_partitions, 3);
        assert_eq!(r.timeout_ms, 5000);
        let r = create_topics_request(3, "x", 3, Duration::from_secs(5));
        assert_eq!(r.topics[0].replication_factor, 1);
    }
}
