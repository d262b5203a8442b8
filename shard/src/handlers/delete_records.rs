//! DeleteRecords: advance partitions' log start offsets on their owning
//! shards (durable before the answer; see the engine's log start
//! checkpoint).
//!
//! Layer: handlers (see the crate docs).

use super::fan_out::Parts;
use super::topic_name;
use crate::message::ShardRequest;
use crate::runtime::ShardClient;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's "up to the high watermark" marker.
const HIGH_WATERMARK: i64 = -1;

/// Answers a DeleteRecords request.
pub async fn handle(
    client: &Rc<ShardClient>,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let wanted = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t.partitions.iter();
            let offsets = partitions.map(|p| (p.partition_index, p.offset));
            (t.name.0.to_string(), offsets.collect())
        })
        .collect();
    let sent = Parts::new(client, wanted)
        .await
        .send(client, |topic, partition, offset, reply| {
            let offset = match offset {
                HIGH_WATERMARK => None,
                o if o >= 0 => Some(o as u64),
                _ => return Err((ResponseError::OffsetOutOfRange, None)),
            };
            Ok(ShardRequest::DeleteRecords {
                topic: topic.to_string(),
                partition,
                offset,
                reply,
            })
        })
        .await;
    let topics = sent
        .answer(
            |_, index, reply| {
                let result = DeleteRecordsPartitionResult::default()
                    .with_partition_index(index)
                    .with_low_watermark(-1);
                match reply {
                    Err((error, _)) => result.with_error_code(error.code()),
                    Ok(Ok(start)) => result.with_low_watermark(start as i64),
                    Ok(Err(e)) => result.with_error_code(ringlog_protocol::error_code(&e)),
                }
            },
            |name, partitions| {
                DeleteRecordsTopicResult::default()
                    .with_name(topic_name(name))
                    .with_partitions(partitions)
            },
        )
        .await;
    DeleteRecordsResponse::default().with_topics(topics)
}
