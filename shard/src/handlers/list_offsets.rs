//! ListOffsets: earliest (-2), latest (-1) or the first offset at or after
//! a timestamp, from the owning shard.
//!
//! Layer: handlers (see the crate docs).
//!
//! Timestamp lookups are exact per record, as in Kafka: the answer is the
//! offset and timestamp of the first record, in offset order, at or above
//! the log start whose timestamp is at or after the target. The owning
//! shard's engine finds the batch by its time index and decodes only that
//! batch (decompressing it where needed); a stored batch that does not
//! decode answers KAFKA_STORAGE_ERROR.

use super::fan_out::Parts;
use super::topic_name;
use crate::message::{OffsetQuery, ShardRequest};
use crate::runtime::ShardClient;
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
    let wanted = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t.partitions.iter();
            let timestamps = partitions.map(|p| (p.partition_index, p.timestamp));
            (t.name.0.to_string(), timestamps.collect())
        })
        .collect();
    let sent = Parts::new(client, wanted)
        .await
        .send(client, |topic, partition, timestamp, reply| {
            let query = match timestamp {
                LATEST_TIMESTAMP => OffsetQuery::Latest,
                EARLIEST_TIMESTAMP => OffsetQuery::Earliest,
                t if t >= 0 => OffsetQuery::Timestamp(t),
                _ => return Err((ResponseError::InvalidRequest, None)),
            };
            Ok(ShardRequest::Offsets {
                topic: topic.to_string(),
                partition,
                query,
                reply,
            })
        })
        .await;
    let topics = sent
        .answer(
            |_, index, reply| {
                let mut answer = ListOffsetsPartitionResponse::default()
                    .with_partition_index(index)
                    .with_timestamp(-1)
                    .with_offset(-1);
                if version >= 4 {
                    answer = answer.with_leader_epoch(0);
                }
                match reply {
                    Err((error, _)) => answer.with_error_code(error.code()),
                    Ok(Ok((Some(found), _))) => answer
                        .with_offset(found.offset as i64)
                        .with_timestamp(found.timestamp),
                    Ok(Ok((None, _))) => answer,
                    Ok(Err(e)) => answer.with_error_code(ringlog_protocol::error_code(&e)),
                }
            },
            |name, partitions| {
                ListOffsetsTopicResponse::default()
                    .with_name(topic_name(name))
                    .with_partitions(partitions)
            },
        )
        .await;
    ListOffsetsResponse::default().with_topics(topics)
}
