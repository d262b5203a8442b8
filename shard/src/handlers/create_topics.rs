//! CreateTopics (on the controller): validate each topic, record it and
//! its placement in the meta log, open its partitions on their shards.

use super::{text, topic_name};
use crate::controller::Controller;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Answers a CreateTopics request; `applied` becomes the meta offset the
/// changes reached.
pub async fn handle(
    controller: &Controller,
    version: i16,
    request: CreateTopicsRequest,
    applied: &mut u64,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default().with_name(topic_name(&name));
        let mut configs = BTreeMap::new();
        let mut duplicate = None;
        for config in &topic.configs {
            let key = config.name.to_string();
            match &config.value {
                Some(value) => {
                    if configs.insert(key.clone(), value.to_string()).is_some() {
                        duplicate = Some(key);
                    }
                }
                None => duplicate = duplicate.or(Some(key)),
            }
        }
        let outcome = if let Some(key) = duplicate {
            Err(crate::controller::AdminError::new(
                ResponseError::InvalidConfig,
                format!("config {key:?} is given twice or without a value"),
            ))
        } else if !topic.assignments.is_empty() {
            Err(crate::controller::AdminError::new(
                ResponseError::InvalidRequest,
                "manual replica assignments are not supported; partitions are placed on shards by load",
            ))
        } else {
            controller
                .create_topic(
                    &name,
                    topic.num_partitions,
                    topic.replication_factor,
                    configs,
                    request.validate_only,
                )
                .await
        };
        results.push(match outcome {
            Ok(offset) => {
                *applied = (*applied).max(offset);
                let mut result = result;
                if version >= 5 {
                    result = result
                        .with_num_partitions(if topic.num_partitions == -1 {
                            controller.partition_count(&name).map_or(-1, |n| n as i32)
                        } else {
                            topic.num_partitions
                        })
                        .with_replication_factor(1);
                }
                if version >= 7 {
                    if let Some(id) = controller.topic_id(&name) {
                        result = result.with_topic_id(Uuid::from_bytes(id));
                    }
                }
                result
            }
            Err(e) => {
                tracing::info!(topic = %name, error = ?e.error, message = %e.message, "CreateTopics refused");
                let mut result = result.with_error_code(e.error.code());
                if version >= 1 {
                    result = result.with_error_message(Some(text(e.message)));
                }
                result
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}
