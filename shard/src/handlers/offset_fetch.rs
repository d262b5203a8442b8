//! OffsetFetch: a group's committed positions, answered by the router from
//! its own metadata replica (no meta-log I/O, no hop to the coordinator).
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
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
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
