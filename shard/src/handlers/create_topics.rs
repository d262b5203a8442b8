//! CreateTopics (on the controller): validate each topic, record it and
//! its placement in the meta log, open its partitions on their shards.
//!
//! Layer: handlers (see the crate docs).
//!
//! The checks, the placement and the events are the controller's
//! ([`Controller::create_topic`]); this handler reads the request and
//! writes the answer.

use super::{text, topic_name};
use crate::controller::Controller;
use crate::message::AdminError;
use crate::topic_config;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
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
        // A key given twice keeps its last value, as in Kafka.
        let mut configs = BTreeMap::new();
        let mut without_value = Vec::new();
        for config in &topic.configs {
            match &config.value {
                Some(value) => {
                    configs.insert(config.name.to_string(), value.to_string());
                }
                None => without_value.push(config.name.to_string()),
            }
        }
        let assignments: Vec<(i32, Vec<i32>)> = topic
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect();
        let outcome = if without_value.is_empty() {
            controller
                .create_topic(
                    &name,
                    topic.num_partitions,
                    topic.replication_factor,
                    &assignments,
                    configs.clone(),
                    request.validate_only,
                )
                .await
        } else {
            Err(AdminError::new(
                ResponseError::InvalidConfig,
                format!(
                    "Null value not supported for topic configs: {}",
                    without_value.join(",")
                ),
            ))
        };
        results.push(match outcome {
            Ok(created) => {
                *applied = (*applied).max(created.applied);
                let mut result = result;
                if version >= 5 {
                    let described = topic_config::describe(controller.log_defaults(), &configs)
                        .into_iter()
                        .map(|entry| {
                            CreatableTopicConfigs::default()
                                .with_name(text(entry.name))
                                .with_value(Some(text(entry.value)))
                                .with_read_only(false)
                                .with_config_source(entry.source.code())
                                .with_is_sensitive(false)
                        })
                        .collect();
                    result = result
                        .with_num_partitions(created.partitions as i32)
                        .with_replication_factor(1)
                        .with_configs(Some(described));
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
