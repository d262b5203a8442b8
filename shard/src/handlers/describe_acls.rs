//! DescribeAcls: the bindings a filter matches, answered by the router
//! from its own metadata replica (like Metadata), grouped by resource
//! pattern as Kafka answers them.
//!
//! Layer: handlers (see the crate docs).
//!
//! The replica first catches up with everything the controller published,
//! so a DescribeAcls after an acknowledged CreateAcls (through any router)
//! sees the bindings.

use super::text;
use crate::authorizer::AclFilter;
use crate::runtime::ShardClient;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::AclBinding;
use std::rc::Rc;

/// Answers a DescribeAcls request.
pub async fn handle(
    client: &Rc<ShardClient>,
    _version: i16,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let filter = match AclFilter::from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(message) => {
            return DescribeAclsResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(text(message)))
        }
    };
    client.local().meta.catch_up().await;
    let bindings: Vec<AclBinding> = client.local().meta.with(|state| {
        state
            .acls()
            .bindings()
            .filter(|b| filter.matches(b))
            .collect()
    });
    // Bindings come sorted by resource type, pattern type and name: one
    // resource entry per run.
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut last: Option<(i8, i8, String)> = None;
    for binding in bindings {
        let key = (
            binding.resource_type.code(),
            binding.pattern_type.code(),
            binding.name.clone(),
        );
        if last.as_ref() != Some(&key) {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(key.0)
                    .with_pattern_type(key.1)
                    .with_resource_name(text(key.2.clone())),
            );
            last = Some(key);
        }
        let description = AclDescription::default()
            .with_principal(text(binding.principal))
            .with_host(text(binding.host))
            .with_operation(binding.operation.code())
            .with_permission_type(binding.permission.code());
        resources
            .last_mut()
            .expect("a resource was pushed")
            .acls
            .push(description);
    }
    DescribeAclsResponse::default().with_resources(resources)
}
