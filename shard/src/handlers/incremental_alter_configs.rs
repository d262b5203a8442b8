//! IncrementalAlterConfigs (on the controller): SET, DELETE, and for list
//! keys APPEND and SUBTRACT of single topic configs; other keys keep their
//! values.
//!
//! Layer: handlers (see the crate docs).

use super::config_change::{change_all, refuse_duplicates, refuse_null_values, ChangeRequest};
use crate::controller::Controller;
use crate::message::{AdminError, AdminResult};
use crate::topic_config::Change;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;

/// Kafka's config operation codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Answers an IncrementalAlterConfigs request; `applied` becomes the meta
/// offset the changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
    applied: &mut u64,
) -> IncrementalAlterConfigsResponse {
    let how = ChangeRequest {
        replace: false,
        validate_only: request.validate_only,
    };
    let resources = request.resources.into_iter();
    let resources = resources.map(|r| (r.resource_type, r.resource_name, r.configs));
    let responses = change_all(controller, &how, resources, |c| changes(c), applied).await;
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The operations of one resource, refused as Kafka's broker refuses them
/// before they reach the controller: a key given twice, a missing value
/// for anything but DELETE, an operation code Kafka does not define.
fn changes(configs: &[AlterableConfig]) -> AdminResult<Vec<(String, Change)>> {
    refuse_duplicates(configs.iter().map(|c| c.name.as_str()))?;
    let without_value: Vec<&str> = configs
        .iter()
        .filter(|c| c.config_operation != OP_DELETE && c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    refuse_null_values(&without_value)?;
    configs
        .iter()
        .map(|c| {
            let key = c.name.to_string();
            let value = || {
                let value = c.value.as_ref().expect("a missing value is refused above");
                value.to_string()
            };
            let change = match c.config_operation {
                OP_SET => Change::Set(value()),
                OP_DELETE => Change::Delete,
                OP_APPEND => Change::Append(value()),
                OP_SUBTRACT => Change::Subtract(value()),
                op => {
                    return Err(AdminError::new(
                        ResponseError::InvalidRequest,
                        format!("unknown config operation {op} on {key:?} (SET 0, DELETE 1, APPEND 2, SUBTRACT 3)"),
                    ))
                }
            };
            Ok((key, change))
        })
        .collect()
}
