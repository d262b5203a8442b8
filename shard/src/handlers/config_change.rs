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
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeSet;

/// How a request changes a resource's configs.
pub struct ChangeRequest {
    /// The given keys replace every override (legacy AlterConfigs): keys
    /// not given return to the server default.
    pub replace: bool,
    /// Only check, change nothing.
    pub validate_only: bool,
}

/// Changes one resource's configs and answers with its error code and
/// message; `changes` reads the request's operations on it (refusing them
/// as Kafka's broker does before they reach the controller). A success
/// moves `applied` to the meta offset the change reached.
pub async fn change(
    controller: &Controller,
    how: &ChangeRequest,
    resource_type: i8,
    name: &str,
    changes: impl FnOnce() -> AdminResult<Vec<(String, Change)>>,
    applied: &mut u64,
) -> (i16, Option<StrBytes>) {
    let outcome = match resource_type {
        RESOURCE_TOPIC => match changes() {
            Ok(changes) => {
                controller
                    .change_configs(name, &changes, how.replace, how.validate_only)
                    .await
            }
            Err(e) => Err(e),
        },
        other => Err(unsupported_resource(other)),
    };
    match outcome {
        Ok(offset) => {
            *applied = (*applied).max(offset);
            (0, None)
        }
        Err(e) => (e.error.code(), Some(text(e.message))),
    }
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
