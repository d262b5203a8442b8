//! AlterConfigs (on the controller), the legacy form: the given configs
//! replace all of a topic's overrides (keys not given return to the
//! server default).

use super::config_change::{change, refuse_duplicates, refuse_null_values, ChangeRequest};
use crate::controller::Controller;
use crate::message::AdminResult;
use crate::topic_config::Change;
use kafka_protocol::messages::alter_configs_request::AlterableConfig;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

/// Answers an AlterConfigs request; `applied` becomes the meta offset the
/// changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: AlterConfigsRequest,
    applied: &mut u64,
) -> AlterConfigsResponse {
    let how = ChangeRequest {
        replace: true,
        validate_only: request.validate_only,
    };
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let (kind, name) = (resource.resource_type, resource.resource_name.as_str());
        let changes = || checked_changes(&resource.configs);
        let (error_code, error_message) =
            change(controller, &how, kind, name, changes, applied).await;
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
fn checked_changes(configs: &[AlterableConfig]) -> AdminResult<Vec<(String, Change)>> {
    refuse_duplicates(configs.iter().map(|c| c.name.as_str()))?;
    let without_value: Vec<&str> = configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    refuse_null_values(&without_value)?;
    Ok(configs
        .iter()
        .filter_map(|c| {
            let value = c.value.as_ref()?;
            Some((c.name.to_string(), Change::Set(value.to_string())))
        })
        .collect())
}
