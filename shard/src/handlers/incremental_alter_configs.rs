//! IncrementalAlterConfigs (on the controller): SET and DELETE of single
//! topic configs; other keys keep their values.

use super::alter_configs::{outcome_fields, unsupported_resource};
use super::describe_configs::RESOURCE_TOPIC;
use crate::controller::{AdminError, AdminResult, Controller};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;

/// Kafka's config operation codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Answers an IncrementalAlterConfigs request; `applied` becomes the meta
/// offset the changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
    applied: &mut u64,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let outcome: AdminResult<u64> = match resource.resource_type {
            RESOURCE_TOPIC => {
                let mut set = BTreeMap::new();
                let mut remove = Vec::new();
                let mut refused = None;
                for config in &resource.configs {
                    let key = config.name.to_string();
                    match (config.config_operation, &config.value) {
                        (OP_SET, Some(value)) => {
                            set.insert(key, value.to_string());
                        }
                        (OP_DELETE, _) => remove.push(key),
                        (op, _) => {
                            refused = Some(format!(
                                "operation {op} on {key:?} is not supported (SET 0 with a value, DELETE 1)"
                            ))
                        }
                    }
                }
                match refused {
                    Some(message) => Err(AdminError::new(ResponseError::InvalidConfig, message)),
                    None => {
                        controller
                            .change_configs(&name, set, remove, request.validate_only)
                            .await
                    }
                }
            }
            other => Err(unsupported_resource(other)),
        };
        let (error_code, error_message) = outcome_fields(outcome, applied);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
