//! OffsetDelete: removes a group's committed offsets for partitions it no
//! longer consumes (KIP-496). A consumer group still subscribed to a
//! topic keeps that topic's offsets (GROUP_SUBSCRIBED_TO_TOPIC); the
//! subscription is read from the members' `consumer` protocol metadata —
//! the one place the broker looks inside member metadata, as Kafka does.
//!
//! Layer: handlers (see the crate docs).

use super::topic_name;
use crate::group::{append, Coordinator};
use crate::runtime::ShardClient;
use bytes::Buf;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{check_group_id, MetaEvent, OffsetsDeleted};
use std::collections::BTreeSet;
use std::rc::Rc;

/// Answers an OffsetDelete.
pub async fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let refuse =
        |error: ResponseError| OffsetDeleteResponse::default().with_error_code(error.code());
    if check_group_id(&group).is_err() {
        return refuse(ResponseError::InvalidGroupId);
    }
    let shard = client.local();
    // `None`: no members; otherwise the topics the members subscribe to.
    let live = groups.with_existing(client, &group, |g| {
        if g.is_empty() {
            return Ok(None);
        }
        if g.protocol_type() != Some("consumer") {
            return Err(ResponseError::NonEmptyGroup);
        }
        let protocol = g.protocol().unwrap_or_default().to_string();
        Ok(Some(
            g.members()
                .flat_map(|m| subscribed_topics(&m.metadata(&protocol)))
                .collect::<BTreeSet<String>>(),
        ))
    });
    let stored = shard.meta.with(|s| s.group(&group).is_some());
    let subscribed = match live {
        Some(Err(e)) => return refuse(e),
        Some(Ok(subscribed)) => subscribed,
        None if stored => None,
        None => return refuse(ResponseError::GroupIdNotFound),
    };
    let mut doomed = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let exists = shard.meta.with(|s| s.partition_count(&name));
        let busy = subscribed.as_ref().is_some_and(|s| s.contains(&name));
        let partitions = topic
            .partitions
            .into_iter()
            .map(|p| {
                let index = p.partition_index;
                let error = match exists {
                    None => Some(ResponseError::UnknownTopicOrPartition),
                    Some(n) if !(0..n as i64).contains(&(index as i64)) => {
                        Some(ResponseError::UnknownTopicOrPartition)
                    }
                    Some(_) if busy => Some(ResponseError::GroupSubscribedToTopic),
                    Some(_) => {
                        doomed.push((name.clone(), index as u32));
                        None
                    }
                };
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(index)
                    .with_error_code(error.map_or(0, |e| e.code()))
            })
            .collect();
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions),
        );
    }
    if !doomed.is_empty() {
        let event = MetaEvent::OffsetsDeleted(OffsetsDeleted {
            group: group.clone(),
            partitions: doomed,
        });
        if let Err(e) = append(client, event).await {
            tracing::warn!(%group, error = %e, "offsets not deleted");
            return refuse(ResponseError::CoordinatorNotAvailable);
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

/// The topics in a `consumer` protocol subscription; none if the metadata
/// does not decode (the member then blocks nothing).
fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut buf = metadata;
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}
