//! DeleteRecords: advance partitions' log start offsets on their owning
//! shards (durable before the answer; see the engine's log start
//! checkpoint).

use super::topic_name;
use crate::message::ShardRequest;
use crate::runtime::ShardClient;
use futures_channel::oneshot;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's "up to the high watermark" marker.
const HIGH_WATERMARK: i64 = -1;

type Reply = Result<u64, ringlog_engine::Error>;

/// Answers a DeleteRecords request.
pub async fn handle(
    client: &Rc<ShardClient>,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
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
                send(client, &name, p.partition_index, p.offset).await,
            ));
        }
        sent.push((name, partitions));
    }
    let mut topics = Vec::with_capacity(sent.len());
    for (name, partitions) in sent {
        let mut results = Vec::with_capacity(partitions.len());
        for (index, reply) in partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(index)
                .with_low_watermark(-1);
            results.push(match reply {
                Err(error) => result.with_error_code(error.code()),
                Ok(reply) => match reply.await {
                    Ok(Ok(start)) => result.with_low_watermark(start as i64),
                    Ok(Err(e)) => result.with_error_code(ringlog_protocol::error_code(&e)),
                    Err(_) => result.with_error_code(ResponseError::UnknownServerError.code()),
                },
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(&name))
                .with_partitions(results),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

async fn send(
    client: &Rc<ShardClient>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<oneshot::Receiver<Reply>, ResponseError> {
    let owner = crate::calls::owner(client, topic, partition);
    let owner = owner.ok_or(ResponseError::UnknownTopicOrPartition)?;
    let offset = match offset {
        HIGH_WATERMARK => None,
        o if o >= 0 => Some(o as u64),
        _ => return Err(ResponseError::OffsetOutOfRange),
    };
    let (reply, answer) = oneshot::channel();
    client
        .send(
            owner as usize,
            ShardRequest::DeleteRecords {
                topic: topic.to_string(),
                partition: partition as u32,
                offset,
                reply,
            },
        )
        .await;
    Ok(answer)
}
