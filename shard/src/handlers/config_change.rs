//! The one path of a config change, shared by AlterConfigs (the given
//! configs replace all of a topic's overrides) and IncrementalAlterConfigs
//! (single operations on single keys): Kafka's checks of the request, then
//! the controller's change of one resource.
//!
//! Layer: handlers (see the crate docs); runs next to the controller.

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::text;
use crate::controller::Controller;
use crate::message::{AdminError, AdminResult};
use crate::topic_config::Change;
use kafka_protocol::messages::{alter_configs_response, incremental_alter_configs_response};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeSet;

/// How a request changes its resources' configs.
pub struct ChangeRequest {
    /// The given keys replace every override (legacy AlterConfigs): keys
    /// not given return to the server default.
    pub replace: bool,
    /// Only check, change nothing.
    pub validate_only: bool,
}

/// One resource's row in either API's response (their types differ, their
/// fields do not).
pub trait ResourceRow {
    /// The row of resource `name` of type `kind`: its error code and
    /// message (code 0 and no message when the change was made).
    fn answered(kind: i8, name: StrBytes, error_code: i16, message: Option<StrBytes>) -> Self;
}

macro_rules! resource_row {
    ($($row:ty),*) => {$(
        impl ResourceRow for $row {
            fn answered(kind: i8, name: StrBytes, error_code: i16, message: Option<StrBytes>) -> Self {
                <$row>::default()
                    .with_resource_type(kind)
                    .with_resource_name(name)
                    .with_error_code(error_code)
                    .with_error_message(message)
            }
        }
    )*};
}

resource_row!(
    alter_configs_response::AlterConfigsResourceResponse,
    incremental_alter_configs_response::AlterConfigsResourceResponse
);

/// Changes each resource's configs in request order and answers a row for
/// each. A resource is its type, its name and its part of the request,
/// which `changes` reads into operations (refusing them as Kafka's broker
/// does before they reach the controller). `applied` becomes the meta
/// offset the changes reached.
pub async fn change_all<C, Row: ResourceRow>(
    controller: &Controller,
    how: &ChangeRequest,
    resources: impl ExactSizeIterator<Item = (i8, StrBytes, C)>,
    changes: impl Fn(&C) -> AdminResult<Vec<(String, Change)>>,
    applied: &mut u64,
) -> Vec<Row> {
    let mut rows = Vec::with_capacity(resources.len());
    for (kind, name, configs) in resources {
        let outcome = match kind {
            RESOURCE_TOPIC => match changes(&configs) {
                Ok(changes) => {
                    controller
                        .change_configs(&name, &changes, how.replace, how.validate_only)
                        .await
                }
                Err(e) => Err(e),
            },
            other => Err(unsupported_resource(other)),
        };
        rows.push(match outcome {
            Ok(offset) => {
                *applied = (*applied).max(offset);
                Row::answered(kind, name, 0, None)
            }
            Err(e) => Row::answered(kind, name, e.error.code(), Some(text(e.message))),
        });
    }
    rows
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
fn unsupported_resource(resource_type: i8) -> AdminError {
    let message = if resource_type == RESOURCE_BROKER {
        "broker configs are set on the command line, config file or environment".to_string()
    } else {
        format!("resource type {resource_type} is not supported (topics 2)")
    };
    AdminError::new(ResponseError::InvalidRequest, message)
}
