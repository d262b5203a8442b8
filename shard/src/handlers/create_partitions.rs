//! CreatePartitions (on the controller): grow topics, placing each new
//! partition on the least-loaded shard.
//!
//! Layer: handlers (see the crate docs).

use super::{text, topic_name};
use crate::controller::Controller;
use crate::message::AdminError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

/// Answers a CreatePartitions request; `applied` becomes the meta offset
/// the changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: CreatePartitionsRequest,
    applied: &mut u64,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let outcome = if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Err(AdminError::new(
                ResponseError::InvalidReplicaAssignment,
                "manual replica assignments are not supported; partitions are placed on shards by load",
            ))
        } else {
            controller
                .add_partitions(&name, topic.count, request.validate_only)
                .await
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
        results.push(match outcome {
            Ok(offset) => {
                *applied = (*applied).max(offset);
                result
            }
            Err(e) => result
                .with_error_code(e.error.code())
                .with_error_message(Some(text(e.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
