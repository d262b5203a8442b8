//! OffsetCommit: stores a group's positions as one meta-log event (runs on
//! the group's coordinator shard).
//!
//! Why one event per request: a request is what the client waits for, and
//! the meta log shares one fdatasync among all commits that arrive while
//! the previous one runs, so many groups committing at once cost a few
//! fdatasyncs, not one each.

use super::topic_name;
use crate::group::{append, now_ms};
use crate::runtime::ShardClient;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{
    check_group_id, MetaEvent, OffsetCommit, OffsetsCommitted, OFFSET_METADATA_BYTES_MAX,
};
use std::rc::Rc;
use std::time::Instant;

/// A partition index and its error (`None`: committed).
type PartitionAnswer = (i32, Option<ResponseError>);

/// Answers an OffsetCommit.
pub async fn handle(
    client: &Rc<ShardClient>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let generation = request.generation_id_or_member_epoch;
    let shard = client.local();
    let refused = if check_group_id(&group).is_err() {
        Some(ResponseError::InvalidGroupId)
    } else {
        let known = shard.groups.with_existing(client, &group, |g| {
            g.check_commit(
                &member_id,
                instance_id.as_deref(),
                generation,
                Instant::now(),
            )
        });
        match known {
            Some(checked) => checked,
            // An unknown group accepts only "simple" commits (no group
            // management), as Kafka does.
            None if generation < 0 => {
                shard.groups.with_group(client, &group, |_| ());
                None
            }
            None => Some(ResponseError::IllegalGeneration),
        }
    };
    let mut offsets = Vec::new();
    let mut answers: Vec<(String, Vec<PartitionAnswer>)> = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let count = shard.meta.with(|s| s.partition_count(&name));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let metadata = p
                .committed_metadata
                .map(|m| m.to_string())
                .unwrap_or_default();
            let error = match (refused, count) {
                (Some(e), _) => Some(e),
                (None, Some(n)) if (0..n as i64).contains(&(p.partition_index as i64)) => {
                    if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    } else {
                        offsets.push(OffsetCommit {
                            topic: name.clone(),
                            partition: p.partition_index as u32,
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata,
                        });
                        None
                    }
                }
                (None, _) => Some(ResponseError::UnknownTopicOrPartition),
            };
            partitions.push((p.partition_index, error));
        }
        answers.push((name, partitions));
    }
    if !offsets.is_empty() {
        let event = MetaEvent::OffsetsCommitted(OffsetsCommitted {
            group: group.clone(),
            commit_ms: now_ms(),
            offsets,
        });
        if let Err(e) = append(client, event).await {
            tracing::warn!(%group, error = %e, "offset commit not stored");
            for (_, partitions) in &mut answers {
                for (_, error) in partitions.iter_mut().filter(|(_, e)| e.is_none()) {
                    *error = Some(ResponseError::CoordinatorNotAvailable);
                }
            }
        }
    }
    let topics = answers
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, error)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(error.map_or(0, |e| e.code()))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
