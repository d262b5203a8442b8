//! OffsetFetch: a group's committed positions, answered by the router from
//! its own metadata replica (no meta-log I/O, no hop to the coordinator).
//!
//! Layer: handlers (see the crate docs).
//!
//! Why the router and not the coordinator: committed offsets are meta-log
//! state, which every shard replicates, and nothing else the coordinator
//! holds (members, generations) changes the answer. Reading locally saves
//! two cross-core hops per request. Read-your-writes still holds: a commit
//! is acknowledged only after the controller published its event, and the
//! router first catches its replica up with everything published
//! ([`crate::meta_view::MetaView::catch_up`]), so an OffsetFetch after an
//! acknowledged commit (through any router) sees it.

use super::{text, topic_name};
use crate::runtime::ShardClient;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{check_group_id, CommittedOffset};
use std::rc::Rc;

/// One partition's answer.
type Found = (i32, Option<CommittedOffset>);
/// Each topic's answers.
type TopicsFound = Vec<(String, Vec<Found>)>;

/// Answers an OffsetFetch (v0-7: one group; v8+: any number of groups).
pub async fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    client.local().meta.catch_up().await;
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|group: OffsetFetchRequestGroup| {
                let wanted = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                answer_group(client, group.group_id, wanted)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    // v0-7 carry the one group's answer at the top level, in their own
    // types; leader epochs exist from v5.
    let answer = answer_group(client, request.group_id, wanted);
    let topics = answer
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_committed_offset(p.committed_offset)
                        .with_committed_leader_epoch(if version >= 5 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        })
                        .with_metadata(p.metadata)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(answer.error_code)
    } else {
        response
    }
}

/// One group's answer, in the v8+ layout.
fn answer_group(
    client: &Rc<ShardClient>,
    group_id: GroupId,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> OffsetFetchResponseGroup {
    let (error, found) = lookup(client, &group_id.0, wanted);
    let topics = found
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, o)| {
                    let (offset, epoch, metadata) = fields(o);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(text(metadata)))
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponseGroup::default()
        .with_group_id(group_id)
        .with_topics(topics)
        .with_error_code(error.map_or(0, |e| e.code()))
}

fn fields(found: Option<CommittedOffset>) -> (i64, i32, String) {
    match found {
        Some(o) => (o.offset, o.leader_epoch, o.metadata),
        None => (-1, -1, String::new()),
    }
}

/// The committed offsets asked for (`None`: every partition the group has
/// committed); partitions without a commit answer offset -1.
fn lookup(
    client: &Rc<ShardClient>,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> (Option<ResponseError>, TopicsFound) {
    if check_group_id(group).is_err() {
        return (Some(ResponseError::InvalidGroupId), Vec::new());
    }
    client.local().meta.with(|state| match wanted {
        Some(topics) => {
            let found = topics
                .into_iter()
                .map(|(name, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|p| {
                            let o = u32::try_from(p)
                                .ok()
                                .and_then(|p| state.committed_offset(group, &name, p))
                                .cloned();
                            (p, o)
                        })
                        .collect();
                    (name, found)
                })
                .collect();
            (None, found)
        }
        None => {
            let found = state
                .group(group)
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|(name, partitions)| {
                            let found = partitions
                                .iter()
                                .map(|(p, o)| (*p as i32, Some(o.clone())))
                                .collect();
                            (name.clone(), found)
                        })
                        .collect()
                })
                .unwrap_or_default();
            (None, found)
        }
    })
}
