//! DescribeConfigs: a topic's supported configs with their effective
//! values, from this shard's metadata replica.

use super::text;
use crate::runtime::ShardClient;
use crate::topic_config::{self, ConfigEntry};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's ConfigResource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's ConfigResource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;
/// Config source: set on the topic.
const SOURCE_TOPIC: i8 = 1;
/// Config source: the server's default.
const SOURCE_DEFAULT: i8 = 5;
/// Kafka ConfigType codes (DescribeConfigs v3+).
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn config_type(name: &str) -> i8 {
    match name {
        topic_config::CLEANUP_POLICY => TYPE_LIST,
        topic_config::MAX_MESSAGE_BYTES | topic_config::SEGMENT_BYTES => TYPE_INT,
        _ => TYPE_LONG,
    }
}

/// Answers a DescribeConfigs request.
pub fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let shard = client.local();
    let defaults = &shard.config.log_defaults;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match resource.resource_type {
                RESOURCE_TOPIC => {
                    let overrides = shard
                        .meta
                        .with(|state| state.topic(&name).map(|t| t.configs.clone()));
                    let Some(overrides) = overrides else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(text(format!(
                                "topic {name:?} does not exist"
                            ))));
                    };
                    // Null or empty: every key (as Kafka's broker reads it).
                    let keys = resource.configuration_keys.filter(|k| !k.is_empty());
                    let configs = topic_config::describe(defaults, &overrides)
                        .into_iter()
                        .filter(|entry| {
                            keys.as_ref()
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == entry.name))
                        })
                        .map(|entry| row(version, entry))
                        .collect();
                    result.with_configs(configs)
                }
                // The broker's own configs are its command line; none is
                // settable through the protocol.
                RESOURCE_BROKER => result,
                other => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(text(format!(
                        "resource type {other} is not supported (topics 2, brokers 4)"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn row(version: i16, entry: ConfigEntry) -> DescribeConfigsResourceResult {
    let source = if entry.is_default {
        SOURCE_DEFAULT
    } else {
        SOURCE_TOPIC
    };
    let mut row = DescribeConfigsResourceResult::default()
        .with_name(text(entry.name))
        .with_value(Some(text(entry.value)))
        .with_config_source(source);
    if version >= 3 {
        row = row.with_config_type(config_type(entry.name));
    }
    row
}
