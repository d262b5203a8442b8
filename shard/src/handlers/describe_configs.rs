//! DescribeConfigs: every topic config with its value, source and (when
//! asked) synonyms and documentation, from this shard's metadata replica
//! (see [`crate::topic_config::describe`]).
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::runtime::ShardClient;
use crate::topic_config::{self, ConfigEntry};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's ConfigResource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's ConfigResource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;

/// Answers a DescribeConfigs request.
pub fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let shard = client.local();
    let defaults = &shard.config.log_defaults;
    let (synonyms, documentation) = (request.include_synonyms, request.include_documentation);
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
                    // Null or empty: every key (as Kafka's broker reads it);
                    // keys Kafka does not define are left out, as there.
                    let keys = resource.configuration_keys.filter(|k| !k.is_empty());
                    let configs = topic_config::describe(defaults, &overrides)
                        .into_iter()
                        .filter(|entry| {
                            keys.as_ref()
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == entry.name))
                        })
                        .map(|entry| row(version, entry, synonyms, documentation))
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

/// One config as Kafka's broker answers it: never read-only or sensitive
/// (topic configs are neither), synonyms only when asked, the type and
/// documentation from v3 (documentation only when asked).
fn row(
    version: i16,
    entry: ConfigEntry,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    let mut row = DescribeConfigsResourceResult::default()
        .with_name(text(entry.name))
        .with_value(Some(text(entry.value)))
        .with_read_only(false)
        .with_is_sensitive(false)
        .with_config_source(entry.source.code());
    if synonyms {
        row = row.with_synonyms(
            entry
                .synonyms
                .into_iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(text(s.name))
                        .with_value(Some(text(s.value)))
                        .with_source(s.source.code())
                })
                .collect(),
        );
    }
    if version >= 3 {
        row = row
            .with_config_type(entry.kind.code())
            .with_documentation(documentation.then(|| text(entry.doc)));
    }
    row
}
