//! OffsetCommit: stores a group's positions as one meta-log event. The
//! group's coordinator shard checks the member and generation and sends
//! the event to the controller; the router answers once the controller
//! reports it durable ([`GroupAnswer::OnceDurable`]).
//!
//! Layer: handlers (see the crate docs).
//!
//! Why one event per request: a request is what the client waits for, and
//! the meta log shares one fdatasync among all commits that arrive while
//! the previous one runs, so many groups committing at once cost a few
//! fdatasyncs, not one each.
//!
//! Why the router waits for the controller, not the coordinator: the
//! verdict then crosses from the controller to the router directly (the
//! same core by default) instead of back through the coordinator shard.
//! Nothing on the coordinator needs the commit applied first: OffsetFetch
//! is answered by routers from their replicas, caught up with everything
//! the controller published, so a fetch after the answer reads the commit.

use super::topic_name;
use crate::calls::CONTROLLER_SHARD;
use crate::group::{now_ms, Coordinator};
use crate::message::{
    ControllerReply, ControllerRequest, GroupAnswer, ServiceRequest, ShardRequest,
};
use crate::runtime::ShardClient;
use crate::wake;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{
    check_group_id, MetaEvent, OffsetCommit, OffsetsCommitted, OFFSET_METADATA_BYTES_MAX,
};
use std::rc::Rc;
use std::time::Instant;

/// A partition index and its error (`None`: committed).
type PartitionAnswer = (i32, Option<ResponseError>);

/// Coordinator side: checks the commit and sends its event to the
/// controller; the router waits for the verdict ([`once_durable`]).
pub async fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    request: OffsetCommitRequest,
) -> GroupAnswer {
    let group = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let generation = request.generation_id_or_member_epoch;
    let shard = client.local();
    let refused = if check_group_id(&group).is_err() {
        Some(ResponseError::InvalidGroupId)
    } else {
        let known = groups.with_existing(client, &group, |g| {
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
                groups.with_group(client, &group, |_| ());
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
    let response = OffsetCommitResponse::default().with_topics(topics);
    if offsets.is_empty() {
        return GroupAnswer::Done(ResponseKind::OffsetCommit(response));
    }
    let event = MetaEvent::OffsetsCommitted(OffsetsCommitted {
        group,
        commit_ms: now_ms(),
        offsets,
    });
    let (reply, durable) = wake::channel();
    let request = ControllerRequest::Append {
        event: Box::new(event),
    };
    let request = ServiceRequest::Controller { request, reply };
    client
        .send(CONTROLLER_SHARD, ShardRequest::Service(request))
        .await;
    GroupAnswer::OnceDurable { response, durable }
}

/// Router side: `response` once the controller reports the commit's event
/// durable; if it refuses it or drops it, the partitions that were to be
/// committed answer COORDINATOR_NOT_AVAILABLE (the client retries).
pub async fn once_durable(
    mut response: OffsetCommitResponse,
    durable: wake::Answer<ControllerReply>,
) -> OffsetCommitResponse {
    let failed = match durable.await {
        Ok(reply) => reply.failed.map(|e| e.message),
        Err(_) => Some("the controller dropped the request".to_string()),
    };
    if let Some(why) = failed {
        tracing::warn!(error = %why, "offset commit not stored");
        let unavailable = ResponseError::CoordinatorNotAvailable.code();
        for partition in response
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
            .filter(|p| p.error_code == 0)
        {
            partition.error_code = unavailable;
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AdminError;

    fn response(errors: &[i16]) -> OffsetCommitResponse {
        let partitions = errors
            .iter()
            .enumerate()
            .map(|(i, &e)| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(i as i32)
                    .with_error_code(e)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(partitions)])
    }

    fn codes(response: &OffsetCommitResponse) -> Vec<i16> {
        response.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect()
    }

    const UNKNOWN: i16 = 3;
    const UNAVAILABLE: i16 = 15;

    #[test]
    fn a_durable_commit_keeps_its_answers() {
        let (reply, durable) = wake::channel();
        reply
            .send(ControllerReply {
                failed: None,
                producer_id: None,
                applied_offset: 7,
            })
            .unwrap_or_else(|_| panic!("receiver dropped"));
        let answered =
            futures_lite::future::block_on(once_durable(response(&[0, UNKNOWN]), durable));
        assert_eq!(codes(&answered), [0, UNKNOWN]);
    }

    #[test]
    fn a_refused_commit_fails_only_the_partitions_it_was_storing() {
        let (reply, durable) = wake::channel();
        reply
            .send(ControllerReply {
                failed: Some(AdminError::new(
                    ResponseError::UnknownServerError,
                    "meta log poisoned",
                )),
                producer_id: None,
                applied_offset: 0,
            })
            .unwrap_or_else(|_| panic!("receiver dropped"));
        let answered =
            futures_lite::future::block_on(once_durable(response(&[0, UNKNOWN, 0]), durable));
        assert_eq!(codes(&answered), [UNAVAILABLE, UNKNOWN, UNAVAILABLE]);
    }

    #[test]
    fn a_dropped_commit_fails_like_a_refused_one() {
        let (reply, durable) = wake::channel::<ControllerReply>();
        drop(reply);
        let answered = futures_lite::future::block_on(once_durable(response(&[0]), durable));
        assert_eq!(codes(&answered), [UNAVAILABLE]);
    }
}
