//! ListOffsets: earliest (-2), latest (-1) or the first offset at or after
//! a timestamp, from the owning shard.
//!
//! Timestamp lookups are exact per record, as in Kafka: the answer is the
//! offset and timestamp of the first record, in offset order, at or above
//! the log start whose timestamp is at or after the target. The owning
//! shard's engine finds the batch by its time index and decodes only that
//! batch (decompressing it where needed); a stored batch that does not
//! decode answers KAFKA_STORAGE_ERROR.

use super::topic_name;
use crate::message::{OffsetQuery, OffsetsReply, ShardRequest};
use crate::runtime::ShardClient;
use futures_channel::oneshot;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's "latest" marker timestamp.
const LATEST_TIMESTAMP: i64 = -1;
/// Kafka's "earliest" marker timestamp.
const EARLIEST_TIMESTAMP: i64 = -2;

/// Answers a ListOffsets request.
pub async fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    crate::calls::catch_up_unless(client, |state| {
        crate::calls::all_placed(
            state,
            request.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.as_str(), p.partition_index))
            }),
        )
    })
    .await;
    let mut sent = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            partitions.push((
                p.partition_index,
                send(client, &name, p.partition_index, p.timestamp).await,
            ));
        }
        sent.push((name, partitions));
    }
    let mut topics = Vec::with_capacity(sent.len());
    for (name, partitions) in sent {
        let mut answers = Vec::with_capacity(partitions.len());
        for (index, reply) in partitions {
            let mut answer = ListOffsetsPartitionResponse::default()
                .with_partition_index(index)
                .with_timestamp(-1)
                .with_offset(-1);
            if version >= 4 {
                answer = answer.with_leader_epoch(0);
            }
            let answer = match reply {
                Err(error) => answer.with_error_code(error.code()),
                Ok(reply) => match reply.await {
                    Ok(Ok((Some(found), _))) => answer
                        .with_offset(found.offset as i64)
                        .with_timestamp(found.timestamp),
                    Ok(Ok((None, _))) => answer,
                    Ok(Err(e)) => answer.with_error_code(ringlog_protocol::error_code(&e)),
                    Err(_) => answer.with_error_code(ResponseError::UnknownServerError.code()),
                },
            };
            answers.push(answer);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(&name))
                .with_partitions(answers),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn send(
    client: &Rc<ShardClient>,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<oneshot::Receiver<OffsetsReply>, ResponseError> {
    let owner = crate::calls::owner(client, topic, partition);
    let owner = owner.ok_or(ResponseError::UnknownTopicOrPartition)?;
    let query = match timestamp {
        LATEST_TIMESTAMP => OffsetQuery::Latest,
        EARLIEST_TIMESTAMP => OffsetQuery::Earliest,
        t if t >= 0 => OffsetQuery::Timestamp(t),
        _ => return Err(ResponseError::InvalidRequest),
    };
    let (reply, answer) = oneshot::channel();
    client
        .send(
            owner as usize,
            ShardRequest::Offsets {
                topic: topic.to_string(),
                partition: partition as u32,
                query,
                reply,
            },
        )
        .await;
    Ok(answer)
}
