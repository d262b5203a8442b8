//! AlterConfigs (on the controller), the legacy form: the given configs
//! replace all of a topic's overrides (keys not given return to the
//! server default).

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::text;
use crate::controller::Controller;
use crate::message::{AdminError, AdminResult};
use crate::topic_config::Change;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeSet;

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
                let given = resource
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())));
                match checked_changes(given) {
                    Ok(changes) => {
                        controller
                            .change_configs(&name, &changes, true, request.validate_only)
                            .await
                    }
                    Err(e) => Err(e),
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

/// The SETs of a legacy request, refused as Kafka's broker refuses them
/// before they reach the controller: a key given twice, a missing value.
fn checked_changes(
    given: impl Iterator<Item = (String, Option<String>)>,
) -> AdminResult<Vec<(String, Change)>> {
    let given: Vec<_> = given.collect();
    refuse_duplicates(given.iter().map(|(key, _)| key.as_str()))?;
    let without_value: Vec<&str> = given
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| key.as_str())
        .collect();
    refuse_null_values(&without_value)?;
    Ok(given
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, Change::Set(v))))
        .collect())
}

/// INVALID_REQUEST if a key appears twice in one resource (Kafka's check).
pub fn refuse_duplicates<'a>(keys: impl Iterator<Item = &'a str>) -> AdminResult {
    let mut seen = BTreeSet::new();
    if keys.into_iter().all(|key| seen.insert(key)) {
        Ok(())
    } else {
        Err(AdminError::new(
            ResponseError::InvalidRequest,
            "Error due to duplicate config keys",
        ))
    }
}

/// INVALID_REQUEST naming the keys given without a value (Kafka's check).
pub fn refuse_null_values(keys: &[&str]) -> AdminResult {
    if keys.is_empty() {
        return Ok(());
    }
    Err(AdminError::new(
        ResponseError::InvalidRequest,
        format!("Null value not supported for : {}", keys.join(", ")),
    ))
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
