//! AlterConfigs (on the controller), the legacy form: the given configs
//! replace all of a topic's overrides (keys not given return to the
//! server default).

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::text;
use crate::controller::{AdminError, AdminResult, Controller};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;

/// Answers an AlterConfigs request; `applied` becomes the meta offset the
/// changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: AlterConfigsRequest,
    applied: &mut u64,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let outcome: AdminResult<u64> = match resource.resource_type {
            RESOURCE_TOPIC => {
                let mut set = BTreeMap::new();
                let mut refused = None;
                for config in &resource.configs {
                    match &config.value {
                        Some(value) => {
                            set.insert(config.name.to_string(), value.to_string());
                        }
                        None => refused = Some(config.name.to_string()),
                    }
                }
                match refused {
                    Some(key) => Err(AdminError::new(
                        ResponseError::InvalidConfig,
                        format!("config {key:?} has no value"),
                    )),
                    None => {
                        let remove = controller
                            .topic_overrides(&name)
                            .into_iter()
                            .filter(|k| !set.contains_key(k))
                            .collect();
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
    AlterConfigsResponse::default().with_responses(responses)
}

/// The error for altering a resource that is not a topic.
pub fn unsupported_resource(resource_type: i8) -> AdminError {
    let message = if resource_type == RESOURCE_BROKER {
        "broker configs are set on the command line, config file or environment".to_string()
    } else {
        format!("resource type {resource_type} is not supported (topics 2)")
    };
    AdminError::new(ResponseError::InvalidRequest, message)
}

/// The error code and message of an admin outcome; a success moves
/// `applied` to the offset it reached.
pub fn outcome_fields(outcome: AdminResult<u64>, applied: &mut u64) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(offset) => {
            *applied = (*applied).max(offset);
            (0, None)
        }
        Err(e) => (e.error.code(), Some(text(e.message))),
    }
}
