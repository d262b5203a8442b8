//! AlterConfigs (on the controller), the legacy form: the given configs
//! replace all of a topic's overrides (keys not given return to the
//! server default).
//!
//! Layer: handlers (see the crate docs).

use super::config_change::{change_all, refuse_duplicates, refuse_null_values, ChangeRequest};
use crate::controller::Controller;
use crate::message::AdminResult;
use crate::topic_config::Change;
use kafka_protocol::messages::alter_configs_request::AlterableConfig;
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
    let resources = request.resources.into_iter();
    let resources = resources.map(|r| (r.resource_type, r.resource_name, r.configs));
    let responses = change_all(controller, &how, resources, |c| checked_changes(c), applied).await;
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
