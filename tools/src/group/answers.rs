//! Reading the broker's answers into what the commands need. An answer
//! that leaves out what was asked is a protocol error naming the missing
//! entry, never a panic or a silent gap: `ringlog group` talks to any
//! Kafka broker, and a foreign one may answer anything.

use super::{CONSUMER_PROTOCOL_TYPE, OFFSET_FETCH_GROUPS_VERSION};
use crate::kafka_client::{check_error, ClientError};
use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsResponse, DescribeGroupsResponse, ListGroupsResponse,
    ListOffsetsResponse, OffsetCommitResponse, OffsetFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Message};
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet};

/// How a partition is named in messages.
pub fn partition_subject(topic: &str, partition: i32) -> String {
    format!("topic {topic} partition {partition}")
}

pub(super) fn kafka_error(subject: String, error: ResponseError, message: &str) -> ClientError {
    ClientError::Kafka {
        subject,
        error,
        message: Some(message.to_string()),
    }
}

pub(super) fn protocol_error(address: &str, why: String) -> ClientError {
    ClientError::Protocol {
        address: address.to_string(),
        why,
    }
}

/// The entry of an `api` answer's list whose `key` is `wanted`.
fn mentioned<'a, T>(
    address: &str,
    api: &str,
    entries: &'a [T],
    wanted: &str,
    key: impl Fn(&T) -> &str,
) -> Result<&'a T, ClientError> {
    entries
        .iter()
        .find(|entry| key(entry) == wanted)
        .ok_or_else(|| {
            protocol_error(
                address,
                format!("the {api} answer does not mention {wanted:?}"),
            )
        })
}

/// `group` from a DescribeGroups answer.
///
/// # Errors
///
/// The group's error, or an answer without it.
pub fn described_group<'a>(
    address: &str,
    group: &str,
    response: &'a DescribeGroupsResponse,
) -> Result<&'a DescribedGroup, ClientError> {
    let found = mentioned(address, "DescribeGroups", &response.groups, group, |g| {
        g.group_id.0.as_str()
    })?;
    check_error(group, found.error_code, found.error_message.as_ref())?;
    Ok(found)
}

/// A group's committed offsets by (topic, partition); partitions without
/// a commit (offset -1) are left out.
pub type Committed = BTreeMap<(String, i32), i64>;

/// (topic, partition, committed offset, error code) of every partition of
/// the topics of an OffsetFetch answer: the v8+ layout and the older one
/// have distinct types with the same fields.
macro_rules! fetched_partitions {
    ($topics:expr) => {
        $topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let topic = t.name.0.as_str();
                    (topic, p.partition_index, p.committed_offset, p.error_code)
                })
            })
            .collect::<Vec<_>>()
    };
}

/// The committed offsets in an OffsetFetch answer of `version` for `group`.
///
/// # Errors
///
/// The group's or a partition's error, or an answer without the group.
pub fn committed_offsets(
    address: &str,
    version: i16,
    group: &str,
    response: &OffsetFetchResponse,
) -> Result<Committed, ClientError> {
    let rows = if version >= OFFSET_FETCH_GROUPS_VERSION {
        let found = mentioned(address, "OffsetFetch", &response.groups, group, |g| {
            g.group_id.0.as_str()
        })?;
        check_error(group, found.error_code, None)?;
        fetched_partitions!(found.topics)
    } else {
        check_error(group, response.error_code, None)?;
        fetched_partitions!(response.topics)
    };
    let mut committed = Committed::new();
    for (topic, partition, offset, error_code) in rows {
        check_error(&partition_subject(topic, partition), error_code, None)?;
        if offset >= 0 {
            committed.insert((topic.to_string(), partition), offset);
        }
    }
    Ok(committed)
}

/// What ListOffsets answered by (topic, partition): an offset, `None`
/// when there is none (no record at or after the time asked), or the
/// partition's error.
pub type ListedOffsets = BTreeMap<(String, i32), Result<Option<i64>, ResponseError>>;

/// The offset (or the error) of every partition in a ListOffsets answer.
/// An offset of -1 (no record at or after the time asked) is `Ok(None)`.
pub fn listed_offsets(response: &ListOffsetsResponse) -> ListedOffsets {
    let mut out = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let answer = match ResponseError::try_from_code(p.error_code) {
                Some(error) => Err(error),
                None if p.offset >= 0 => Ok(Some(p.offset)),
                None => Ok(None),
            };
            out.insert((topic.name.0.to_string(), p.partition_index), answer);
        }
    }
    out
}

/// The partitions of `topic` in a Metadata answer, sorted; `wanted` (if
/// not empty) must all be among them and is what is returned.
///
/// # Errors
///
/// The topic's error, an answer without it, or a wanted partition it
/// does not have.
pub fn topic_partitions(
    address: &str,
    topic: &str,
    wanted: &[i32],
    response: &kafka_protocol::messages::MetadataResponse,
) -> Result<Vec<i32>, ClientError> {
    check_error(address, response.error_code, None)?;
    let found = mentioned(address, "Metadata", &response.topics, topic, |t| {
        t.name.as_ref().map_or("", |n| n.0.as_str())
    })?;
    check_error(&format!("topic {topic}"), found.error_code, None)?;
    let all: BTreeSet<i32> = found.partitions.iter().map(|p| p.partition_index).collect();
    if wanted.is_empty() {
        return Ok(all.into_iter().collect());
    }
    let wanted: BTreeSet<i32> = wanted.iter().copied().collect();
    if let Some(missing) = wanted.iter().find(|p| !all.contains(p)) {
        return Err(ClientError::Refused {
            subject: format!("topic {topic}"),
            why: format!(
                "has no partition {missing} (it has {} partitions)",
                all.len()
            ),
        });
    }
    Ok(wanted.into_iter().collect())
}

/// Per-partition errors of an OffsetCommit answer, as failures; the
/// partitions committed.
pub fn commit_results(
    group: &str,
    response: &OffsetCommitResponse,
) -> (Vec<(String, i32)>, Vec<ClientError>) {
    let mut committed = Vec::new();
    let mut failures = Vec::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let subject = format!(
                "{group}: {}",
                partition_subject(&topic.name.0, p.partition_index)
            );
            match check_error(&subject, p.error_code, None) {
                Ok(()) => committed.push((topic.name.0.to_string(), p.partition_index)),
                Err(err) => failures.push(err),
            }
        }
    }
    (committed, failures)
}

/// What DeleteGroups did to each of `groups`: `None` when deleted. The
/// errors a person meets here are explained.
///
/// # Errors
///
/// An answer without one of the groups.
pub fn delete_results(
    address: &str,
    groups: &[String],
    response: &DeleteGroupsResponse,
) -> Result<Vec<(String, Option<ClientError>)>, ClientError> {
    groups
        .iter()
        .map(|group| {
            let result = mentioned(address, "DeleteGroups", &response.results, group, |r| {
                r.group_id.0.as_str()
            })?;
            let failure = ResponseError::try_from_code(result.error_code).map(|error| {
                let why = match error {
                    ResponseError::NonEmptyGroup => {
                        "the group still has members; stop its consumers first"
                    }
                    ResponseError::GroupIdNotFound => "no such group",
                    _ => "",
                };
                ClientError::Kafka {
                    subject: group.clone(),
                    error,
                    message: Some(why.to_string()),
                }
            });
            Ok((group.clone(), failure))
        })
        .collect()
}

/// A group as `ringlog group list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group: String,
    /// Kafka's state name; empty until known (ListGroups before v4 does
    /// not say).
    pub state: String,
    /// Protocol type (`consumer` for Kafka consumers, empty for groups
    /// that only hold committed offsets).
    pub protocol_type: String,
}

/// The groups in a ListGroups answer.
///
/// # Errors
///
/// The answer's error.
pub fn listed_groups(
    address: &str,
    response: &ListGroupsResponse,
) -> Result<Vec<ListedGroup>, ClientError> {
    check_error(address, response.error_code, None)?;
    Ok(response
        .groups
        .iter()
        .map(|g| ListedGroup {
            group: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
        })
        .collect())
}

/// Fills in the states of `groups` from a DescribeGroups answer (for
/// brokers whose ListGroups does not report them).
///
/// # Errors
///
/// A group missing from the answer, or its error.
pub fn fill_states(
    address: &str,
    groups: &mut [ListedGroup],
    response: &DescribeGroupsResponse,
) -> Result<(), ClientError> {
    for listed in groups.iter_mut() {
        listed.state = described_group(address, &listed.group, response)?
            .group_state
            .to_string();
    }
    Ok(())
}

/// A member's assignment as the group's protocol carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// No assignment (the group is rebalancing, or the member has none).
    Empty,
    /// Partitions by topic, decoded from the `consumer` protocol.
    Partitions(BTreeMap<String, Vec<i32>>),
    /// Bytes of another protocol, or that do not decode.
    Opaque(Bytes),
}

/// Decodes a member's assignment: a ConsumerProtocolAssignment (an i16
/// version, then the body) when `protocol_type` is `consumer`. Versions
/// newer than `kafka-protocol` knows are read as the newest it knows: they
/// only add fields at the end.
pub fn decode_assignment(protocol_type: &str, bytes: &Bytes) -> Assignment {
    if bytes.is_empty() {
        return Assignment::Empty;
    }
    if protocol_type != CONSUMER_PROTOCOL_TYPE {
        return Assignment::Opaque(bytes.clone());
    }
    let mut buf = bytes.clone();
    let Some(version_bytes) = buf.get(..2) else {
        return Assignment::Opaque(bytes.clone());
    };
    let version = i16::from_be_bytes([version_bytes[0], version_bytes[1]]);
    if version < 0 {
        return Assignment::Opaque(bytes.clone());
    }
    let _ = buf.split_to(2);
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(assignment) => {
            let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for topic in assignment.assigned_partitions {
                partitions
                    .entry(topic.topic.0.to_string())
                    .or_default()
                    .extend(topic.partitions);
            }
            for indexes in partitions.values_mut() {
                indexes.sort_unstable();
                indexes.dedup();
            }
            Assignment::Partitions(partitions)
        }
        Err(_) => Assignment::Opaque(bytes.clone()),
    }
}
