//! The requests `ringlog group` sends. Built by pure functions from plain
//! values, so the tests decode them with the broker's own parser at every
//! version the command may negotiate.

use super::{
    EARLIEST_TIMESTAMP, LIST_GROUPS_STATES_VERSION, OFFSET_FETCH_GROUPS_VERSION,
    OFFSET_FETCH_VERSION_MIN,
};
use crate::kafka_client::{str_bytes, topic_name};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
    ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use std::collections::{BTreeMap, BTreeSet};

/// ListGroups, filtered by `states` where the version can say so (v4+).
pub fn list_groups_request(version: i16, states: &[String]) -> ListGroupsRequest {
    let request = ListGroupsRequest::default();
    if version >= LIST_GROUPS_STATES_VERSION {
        request.with_states_filter(states.iter().map(|s| str_bytes(s)).collect())
    } else {
        request
    }
}

/// DescribeGroups of `groups`.
pub fn describe_groups_request(groups: &[String]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| group_id(g)).collect())
}

/// DeleteGroups of `groups`.
pub fn delete_groups_request(groups: &[String]) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| group_id(g)).collect())
}

/// OffsetFetch of `group`'s committed offsets: of `partitions` of `topic`,
/// or (`None`) of every partition it committed. v8+ names the group in
/// the `groups` array, earlier versions in the single-group fields.
pub fn offset_fetch_request(
    version: i16,
    group: &str,
    partitions: Option<(&str, &[i32])>,
) -> OffsetFetchRequest {
    assert!(
        version >= OFFSET_FETCH_VERSION_MIN,
        "v1 cannot ask for every partition"
    );
    if version >= OFFSET_FETCH_GROUPS_VERSION {
        let topics = partitions.map(|(topic, indexes)| {
            vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(indexes.to_vec())]
        });
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(topics)])
    } else {
        let topics = partitions.map(|(topic, indexes)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(indexes.to_vec())]
        });
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics)
    }
}

/// ListOffsets of `partitions` (topic, index) at `timestamp` (a time in
/// ms, or [`EARLIEST_TIMESTAMP`] / [`LATEST_TIMESTAMP`](super::LATEST_TIMESTAMP)), as a consumer
/// asks (replica -1, uncommitted records visible).
pub fn list_offsets_request(
    timestamp: i64,
    partitions: &BTreeSet<(String, i32)>,
    timeout_ms: i32,
) -> ListOffsetsRequest {
    assert!(timestamp >= EARLIEST_TIMESTAMP);
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(*partition)
                .with_timestamp(timestamp),
        );
    }
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_timeout_ms(timeout_ms)
}

/// OffsetCommit of `offsets` (partition, offset) of `topic` for `group`,
/// as a tool outside the group commits: generation -1, no member id.
pub fn offset_commit_request(
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(str_bytes(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(partition, offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*partition)
                            .with_committed_offset(*offset)
                    })
                    .collect(),
            )])
}

fn group_id(group: &str) -> GroupId {
    GroupId(str_bytes(group))
}
