//! OffsetFetch: a group's committed positions, read from the coordinator
//! shard's metadata replica (no meta-log I/O). v8+ asks for several
//! groups at once: the router splits them by coordinator shard.

use super::{forward_group, text, topic_name};
use crate::message::ClientInfo;
use crate::runtime::ShardClient;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetFetchRequest, OffsetFetchResponse, RequestKind, ResponseKind,
};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{check_group_id, CommittedOffset};
use std::rc::Rc;

/// One partition's answer.
type Found = (i32, Option<CommittedOffset>);
/// Each topic's answers.
type TopicsFound = Vec<(String, Vec<Found>)>;

/// Router side: v0-7 name one group (forwarded whole); v8+ may name many,
/// each forwarded to its coordinator and the answers joined in order.
pub async fn route(
    client: &Rc<ShardClient>,
    version: i16,
    request: OffsetFetchRequest,
    sender: &ClientInfo,
) -> Result<OffsetFetchResponse, String> {
    if version < 8 {
        let group = request.group_id.0.to_string();
        let body = RequestKind::OffsetFetch(request);
        return match forward_group(client, &group, version, body, sender).await? {
            ResponseKind::OffsetFetch(response) => Ok(response),
            other => Err(format!("coordinator answered OffsetFetch with {other:?}")),
        };
    }
    let mut groups = Vec::with_capacity(request.groups.len());
    for group in request.groups {
        let id = group.group_id.0.to_string();
        let single = OffsetFetchRequest::default()
            .with_groups(vec![group])
            .with_require_stable(request.require_stable);
        let body = RequestKind::OffsetFetch(single);
        match forward_group(client, &id, version, body, sender).await? {
            ResponseKind::OffsetFetch(response) => groups.extend(response.groups),
            other => return Err(format!("coordinator answered OffsetFetch with {other:?}")),
        }
    }
    Ok(OffsetFetchResponse::default().with_groups(groups))
}

/// Coordinator side.
pub fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version < 8 {
        let group = request.group_id.0.to_string();
        let wanted = request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let (error, found) = lookup(client, &group, wanted);
        let topics = found
            .into_iter()
            .map(|(name, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&name))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(index, o)| {
                                let (offset, epoch, metadata) = fields(o);
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(if version >= 5 {
                                        epoch
                                    } else {
                                        -1
                                    })
                                    .with_metadata(Some(text(metadata)))
                            })
                            .collect(),
                    )
            })
            .collect();
        let response = OffsetFetchResponse::default().with_topics(topics);
        return if version >= 2 {
            response.with_error_code(error.map_or(0, |e| e.code()))
        } else {
            response
        };
    }
    let groups = request
        .groups
        .into_iter()
        .map(|group: OffsetFetchRequestGroup| {
            let id = group.group_id.0.to_string();
            let wanted = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let (error, found) = lookup(client, &id, wanted);
            let topics = found
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(topic_name(&name))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, o)| {
                                    let (offset, epoch, metadata) = fields(o);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(text(metadata)))
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponseGroup::default()
                .with_group_id(group.group_id)
                .with_topics(topics)
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
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
