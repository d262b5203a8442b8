//! DeleteTopics (on the controller): record the deletion, then remove the
//! partitions' logs on their shards.
//!
//! Layer: handlers (see the crate docs).

use super::{text, topic_name};
use crate::controller::Controller;
use crate::message::AdminError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::ResponseError;
use uuid::Uuid;

/// Answers a DeleteTopics request; `applied` becomes the meta offset the
/// changes reached.
pub async fn handle(
    controller: &Controller,
    version: i16,
    request: DeleteTopicsRequest,
    applied: &mut u64,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = name.or_else(|| controller.topic_name_by_id(id.as_bytes()));
        let mut result = DeletableTopicResult::default();
        if version >= 6 {
            result = result.with_topic_id(id);
        }
        let outcome = match &name {
            Some(name) => controller.delete_topic(name).await,
            None => Err(AdminError::new(
                ResponseError::UnknownTopicId,
                format!("no topic has id {id}"),
            )),
        };
        result = result.with_name(name.as_deref().map(topic_name));
        responses.push(match outcome {
            Ok(offset) => {
                *applied = (*applied).max(offset);
                result
            }
            Err(e) => {
                let mut result = result.with_error_code(e.error.code());
                if version >= 5 {
                    result = result.with_error_message(Some(text(e.message)));
                }
                result
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
