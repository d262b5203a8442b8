//! CreateAcls (on the controller): check each creation, then record the
//! valid ones in the metadata log with one event (per 1024 bindings).
//!
//! Layer: handlers (see the crate docs).
//!
//! Validation is Kafka's: a creation holding UNKNOWN or ANY (resource,
//! pattern, operation or permission), a cluster resource not named
//! `kafka-cluster`, a principal without the `User:` prefix or a host that
//! is neither `*` nor an IP address is answered INVALID_REQUEST, and the
//! others are still created. ACL APIs work with the authorizer off too
//! (as in Kafka with an authorizer configured): bindings can be prepared
//! before `--authorizer on`.

use super::text;
use crate::controller::Controller;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::acl::check_binding;
use ringlog_engine::meta::{
    AclBinding, AclOperation, AclPatternType, AclPermission, AclResourceType,
};

/// A result answering `error`.
pub fn failed(error: ResponseError, message: Option<String>) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(text(message.unwrap_or_else(|| error.to_string()))))
}

/// The binding a creation asks for, or why it cannot be created.
fn binding(creation: &AclCreation) -> Result<AclBinding, String> {
    let binding = AclBinding {
        resource_type: AclResourceType::from_code(creation.resource_type).ok_or_else(|| {
            format!(
                "resource type {} is not TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID",
                creation.resource_type
            )
        })?,
        pattern_type: AclPatternType::from_code(creation.resource_pattern_type).ok_or_else(
            || {
                format!(
                    "pattern type {} is not LITERAL or PREFIXED",
                    creation.resource_pattern_type
                )
            },
        )?,
        name: creation.resource_name.to_string(),
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        operation: AclOperation::from_code(creation.operation).ok_or_else(|| {
            format!(
                "operation {} is not a concrete operation",
                creation.operation
            )
        })?,
        permission: AclPermission::from_code(creation.permission_type).ok_or_else(|| {
            format!(
                "permission type {} is not ALLOW or DENY",
                creation.permission_type
            )
        })?,
    };
    check_binding(&binding)?;
    Ok(binding)
}

/// Answers a CreateAcls request; `applied` becomes the meta offset the
/// bindings reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: CreateAclsRequest,
    applied: &mut u64,
) -> CreateAclsResponse {
    let checked: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let outcome = if valid.is_empty() {
        Ok(*applied)
    } else {
        controller.create_acls(valid).await
    };
    let results = checked
        .into_iter()
        .map(|checked| match (checked, &outcome) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, Some(message)),
            (Ok(_), Ok(_)) => AclCreationResult::default(),
            (Ok(_), Err(e)) => failed(e.error, Some(e.message.clone())),
        })
        .collect();
    if let Ok(offset) = outcome {
        *applied = (*applied).max(offset);
    }
    CreateAclsResponse::default().with_results(results)
}
