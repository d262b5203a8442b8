//! DeleteAcls (on the controller): remove every binding each filter
//! matches and answer them, per filter.
//!
//! Layer: handlers (see the crate docs).
//!
//! Filters have Kafka's semantics ([`AclFilter`]: ANY and null match
//! anything, MATCH selects the bindings that apply to a resource); a
//! filter holding UNKNOWN is answered INVALID_REQUEST and the others still
//! run.

use super::text;
use crate::authorizer::AclFilter;
use crate::controller::Controller;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::AclBinding;

/// A filter result answering `error`.
pub fn failed(error: ResponseError, message: Option<String>) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(text(message.unwrap_or_else(|| error.to_string()))))
}

fn matching(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(binding.resource_type.code())
        .with_resource_name(text(binding.name.clone()))
        .with_pattern_type(binding.pattern_type.code())
        .with_principal(text(binding.principal.clone()))
        .with_host(text(binding.host.clone()))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}

/// Answers a DeleteAcls request; `applied` becomes the meta offset the
/// deletions reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: DeleteAclsRequest,
    applied: &mut u64,
) -> DeleteAclsResponse {
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let outcome = controller.delete_acls(&valid).await;
    let mut matched = match &outcome {
        Ok((matched, offset)) => {
            *applied = (*applied).max(*offset);
            matched.clone().into_iter()
        }
        Err(_) => Vec::new().into_iter(),
    };
    let results = parsed
        .into_iter()
        .map(|parsed| match (parsed, &outcome) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, Some(message)),
            (Ok(_), Err(e)) => failed(e.error, Some(e.message.clone())),
            (Ok(_), Ok(_)) => {
                let bindings = matched.next().expect("one match list per valid filter");
                DeleteAclsFilterResult::default()
                    .with_matching_acls(bindings.iter().map(matching).collect())
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
