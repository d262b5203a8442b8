//! `ringlog acl`: add, list and delete ACL bindings over the Kafka
//! protocol (CreateAcls, DescribeAcls, DeleteAcls), with the flags of
//! Kafka's `kafka-acls.sh`, so it works against ringlog and any Kafka
//! broker alike. The connection, version choice and error rendering are
//! the shared admin client's ([`crate::kafka_client`]).
//!
//! The request builders and the renderers are pure functions, tested
//! without a broker.

use crate::kafka_client::{
    check_error, exit_code, render_table, str_bytes, BrokerArgs, ClientError,
};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use ringlog_engine::meta::{
    AclOperation, AclPatternType, AclPermission, AclResourceType, CLUSTER_RESOURCE_NAME,
};
use serde::Serialize;
use std::process::ExitCode;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-acl";
/// Kafka's ANY code of the ACL enums.
const CODE_ANY: i8 = 1;
/// Kafka's MATCH pattern type code.
const CODE_MATCH: i8 = 2;
/// Most bindings one `acl add` creates (principals times operations):
/// what one CreateAcls event of the broker holds.
pub const ADD_BINDINGS_MAX: usize = ringlog_engine::meta::ACL_BINDINGS_PER_EVENT_MAX;

/// `ringlog acl` and its options.
#[derive(Args)]
pub struct AclArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: AclCommand,
}

/// The resource a binding is about: exactly one of these for `add`, at
/// most one for `list` and `delete` (none: every resource).
#[derive(Args, Clone, Debug, Default)]
#[command(group(ArgGroup::new("resource").multiple(false)))]
pub struct ResourceArgs {
    /// A topic (with --resource-pattern-type prefixed: a name prefix; `*`: every topic).
    #[arg(long, group = "resource")]
    pub topic: Option<String>,
    /// A consumer group.
    #[arg(long, group = "resource")]
    pub group: Option<String>,
    /// The cluster (`kafka-cluster`).
    #[arg(long, group = "resource")]
    pub cluster: bool,
    /// A transactional id.
    #[arg(long, group = "resource")]
    pub transactional_id: Option<String>,
}

/// Who, from where, may or may not do what.
#[derive(Args, Clone, Debug, Default)]
pub struct EntryArgs {
    /// A principal to allow, e.g. User:alice (User:* is everyone); repeat for more.
    #[arg(long, value_name = "PRINCIPAL")]
    pub allow_principal: Vec<String>,
    /// A principal to deny; repeat for more.
    #[arg(long, value_name = "PRINCIPAL")]
    pub deny_principal: Vec<String>,
    /// An operation: all, read, write, create, delete, alter, describe,
    /// cluster-action, describe-configs, alter-configs, idempotent-write;
    /// repeat for more.
    #[arg(long, value_name = "OPERATION", value_parser = parse_operation)]
    pub operation: Vec<AclOperation>,
    /// The client host (an IP address, or * for any) [add: default *; list/delete: any].
    #[arg(long)]
    pub host: Option<String>,
}

/// `--resource-pattern-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PatternArg {
    /// Every pattern type (list and delete only).
    Any,
    /// The bindings that apply to the named resource (list and delete only).
    Match,
    /// The exact name (`*`: every resource of the type).
    Literal,
    /// Every name starting with the name.
    Prefixed,
}

impl PatternArg {
    fn code(self) -> i8 {
        match self {
            PatternArg::Any => CODE_ANY,
            PatternArg::Match => CODE_MATCH,
            PatternArg::Literal => AclPatternType::Literal.code(),
            PatternArg::Prefixed => AclPatternType::Prefixed.code(),
        }
    }
}

/// The `ringlog acl` subcommands.
#[derive(Subcommand)]
pub enum AclCommand {
    /// Add bindings: every principal times every operation, on one resource.
    Add {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        /// How the resource name matches.
        #[arg(long, value_enum, default_value = "literal")]
        resource_pattern_type: PatternArg,
    },
    /// List the bindings matching the filter (no flag: every binding).
    List {
        #[command(flatten)]
        resource: ResourceArgs,
        /// Only this principal's bindings.
        #[arg(long)]
        principal: Option<String>,
        /// How the resource name matches bindings.
        #[arg(long, value_enum, default_value = "any")]
        resource_pattern_type: PatternArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete the bindings matching the filter, and print them.
    Delete {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        /// How the resource name matches bindings.
        #[arg(long, value_enum, default_value = "any")]
        resource_pattern_type: PatternArg,
    },
}

/// Parses an operation name (`read`, `describe-configs`, any case, `-` or `_`).
pub fn parse_operation(text: &str) -> Result<AclOperation, String> {
    let wanted = text.to_ascii_uppercase().replace('-', "_");
    AclOperation::ALL
        .into_iter()
        .find(|o| o.name() == wanted)
        .ok_or_else(|| {
            let names: Vec<String> = AclOperation::ALL
                .iter()
                .map(|o| o.name().to_ascii_lowercase().replace('_', "-"))
                .collect();
            format!("{text:?} is not an operation: {}", names.join(", "))
        })
}

impl ResourceArgs {
    /// The resource type and name given, if any.
    fn resource(&self) -> Option<(AclResourceType, String)> {
        if let Some(topic) = &self.topic {
            return Some((AclResourceType::Topic, topic.clone()));
        }
        if let Some(group) = &self.group {
            return Some((AclResourceType::Group, group.clone()));
        }
        if self.cluster {
            return Some((AclResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()));
        }
        self.transactional_id
            .as_ref()
            .map(|id| (AclResourceType::TransactionalId, id.clone()))
    }
}

impl EntryArgs {
    /// Each principal with its permission.
    fn principals(&self) -> Vec<(String, AclPermission)> {
        self.allow_principal
            .iter()
            .map(|p| (p.clone(), AclPermission::Allow))
            .chain(
                self.deny_principal
                    .iter()
                    .map(|p| (p.clone(), AclPermission::Deny)),
            )
            .collect()
    }
}

/// The CreateAcls request of `acl add`.
pub fn create_request(
    resource: &ResourceArgs,
    entry: &EntryArgs,
    pattern: PatternArg,
) -> Result<CreateAclsRequest, String> {
    let Some((resource_type, name)) = resource.resource() else {
        return Err("name a resource: --topic, --group, --cluster or --transactional-id".into());
    };
    let pattern_type = match pattern {
        PatternArg::Literal => AclPatternType::Literal,
        PatternArg::Prefixed => AclPatternType::Prefixed,
        PatternArg::Any | PatternArg::Match => {
            return Err("--resource-pattern-type of a new binding is literal or prefixed".into())
        }
    };
    let principals = entry.principals();
    if principals.is_empty() || entry.operation.is_empty() {
        return Err(
            "name at least one --allow-principal or --deny-principal and one --operation".into(),
        );
    }
    let count = principals.len() * entry.operation.len();
    if count > ADD_BINDINGS_MAX {
        return Err(format!(
            "{count} bindings (principals times operations), at most {ADD_BINDINGS_MAX} at once"
        ));
    }
    let host = entry.host.clone().unwrap_or_else(|| "*".to_string());
    let creations = principals
        .iter()
        .flat_map(|(principal, permission)| {
            entry.operation.iter().map(|operation| {
                AclCreation::default()
                    .with_resource_type(resource_type.code())
                    .with_resource_name(str_bytes(&name))
                    .with_resource_pattern_type(pattern_type.code())
                    .with_principal(str_bytes(principal))
                    .with_host(str_bytes(&host))
                    .with_operation(operation.code())
                    .with_permission_type(permission.code())
            })
        })
        .collect();
    Ok(CreateAclsRequest::default().with_creations(creations))
}

/// The DescribeAcls request of `acl list`.
pub fn describe_request(
    resource: &ResourceArgs,
    principal: Option<&str>,
    pattern: PatternArg,
) -> DescribeAclsRequest {
    let (resource_type, name) = match resource.resource() {
        Some((t, name)) => (t.code(), Some(name)),
        None => (CODE_ANY, None),
    };
    DescribeAclsRequest::default()
        .with_resource_type_filter(resource_type)
        .with_resource_name_filter(name.as_deref().map(str_bytes))
        .with_pattern_type_filter(pattern.code())
        .with_principal_filter(principal.map(str_bytes))
        .with_host_filter(None)
        .with_operation(CODE_ANY)
        .with_permission_type(CODE_ANY)
}

/// The DeleteAcls request of `acl delete`: one filter per principal (with
/// its permission) and operation; no principal or operation matches any.
pub fn delete_request(
    resource: &ResourceArgs,
    entry: &EntryArgs,
    pattern: PatternArg,
) -> DeleteAclsRequest {
    let (resource_type, name) = match resource.resource() {
        Some((t, name)) => (t.code(), Some(name)),
        None => (CODE_ANY, None),
    };
    let principals: Vec<(Option<String>, i8)> = match entry.principals() {
        principals if principals.is_empty() => vec![(None, CODE_ANY)],
        principals => principals
            .into_iter()
            .map(|(p, permission)| (Some(p), permission.code()))
            .collect(),
    };
    let operations: Vec<i8> = if entry.operation.is_empty() {
        vec![CODE_ANY]
    } else {
        entry.operation.iter().map(|o| o.code()).collect()
    };
    let filters = principals
        .iter()
        .flat_map(|(principal, permission)| {
            operations.iter().map(|operation| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(resource_type)
                    .with_resource_name_filter(name.as_deref().map(str_bytes))
                    .with_pattern_type_filter(pattern.code())
                    .with_principal_filter(principal.as_deref().map(str_bytes))
                    .with_host_filter(entry.host.as_deref().map(str_bytes))
                    .with_operation(*operation)
                    .with_permission_type(*permission)
            })
        })
        .collect();
    DeleteAclsRequest::default().with_filters(filters)
}

/// One binding as `acl list --json` prints it.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct BindingJson {
    /// TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID.
    pub resource_type: String,
    /// The resource name or prefix.
    pub name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: String,
    /// `User:<name>`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    /// READ, WRITE, ...
    pub operation: String,
    /// ALLOW or DENY.
    pub permission: String,
}

fn code_name<T>(
    code: i8,
    from: impl Fn(i8) -> Option<T>,
    name: impl Fn(T) -> &'static str,
) -> String {
    from(code).map_or_else(|| format!("UNKNOWN({code})"), |v| name(v).to_string())
}

#[allow(clippy::too_many_arguments)]
fn binding_json(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> BindingJson {
    BindingJson {
        resource_type: code_name(
            resource_type,
            AclResourceType::from_code,
            AclResourceType::name,
        ),
        name: name.to_string(),
        pattern_type: code_name(
            pattern_type,
            AclPatternType::from_code,
            AclPatternType::name,
        ),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: code_name(operation, AclOperation::from_code, AclOperation::name),
        permission: code_name(permission, AclPermission::from_code, AclPermission::name),
    }
}

/// The bindings of a DescribeAcls answer, or its error.
pub fn described(
    address: &str,
    response: &DescribeAclsResponse,
) -> Result<Vec<BindingJson>, ClientError> {
    check_error(
        address,
        response.error_code,
        response.error_message.as_ref(),
    )?;
    Ok(response
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(move |a| {
                binding_json(
                    r.resource_type,
                    &r.resource_name,
                    r.pattern_type,
                    &a.principal,
                    &a.host,
                    a.operation,
                    a.permission_type,
                )
            })
        })
        .collect())
}

/// The bindings a DeleteAcls answer removed, or the first error.
pub fn deleted(
    address: &str,
    response: &DeleteAclsResponse,
) -> Result<Vec<BindingJson>, ClientError> {
    let mut removed = Vec::new();
    for result in &response.filter_results {
        check_error(address, result.error_code, result.error_message.as_ref())?;
        for m in &result.matching_acls {
            check_error(address, m.error_code, m.error_message.as_ref())?;
            removed.push(binding_json(
                m.resource_type,
                &m.resource_name,
                m.pattern_type,
                &m.principal,
                &m.host,
                m.operation,
                m.permission_type,
            ));
        }
    }
    Ok(removed)
}

/// Every creation's error, if any.
pub fn check_created(address: &str, response: &CreateAclsResponse) -> Result<usize, ClientError> {
    for result in &response.results {
        check_error(address, result.error_code, result.error_message.as_ref())?;
    }
    Ok(response.results.len())
}

/// Bindings as a table, one per line.
pub fn render_bindings(bindings: &[BindingJson]) -> String {
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| {
            vec![
                b.resource_type.clone(),
                b.name.clone(),
                b.pattern_type.clone(),
                b.principal.clone(),
                b.host.clone(),
                b.operation.clone(),
                b.permission.clone(),
            ]
        })
        .collect();
    render_table(
        &[
            "RESOURCE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    )
}

/// Runs `ringlog acl`.
pub fn run(args: AclArgs) -> ExitCode {
    exit_code("acl", execute(&args).err())
}

fn execute(args: &AclArgs) -> Result<(), ClientError> {
    let refused = |why: String| ClientError::Refused {
        subject: "acl".into(),
        why,
    };
    match &args.command {
        AclCommand::Add {
            resource,
            entry,
            resource_pattern_type,
        } => {
            let request =
                create_request(resource, entry, *resource_pattern_type).map_err(refused)?;
            let mut client = args.broker.connect(CLIENT_ID)?;
            let version = client.version::<CreateAclsRequest>()?;
            let response = client.call(version, &request)?;
            let count = check_created(client.address(), &response)?;
            println!("added {count} ACL bindings");
        }
        AclCommand::List {
            resource,
            principal,
            resource_pattern_type,
            json,
        } => {
            let request = describe_request(resource, principal.as_deref(), *resource_pattern_type);
            let mut client = args.broker.connect(CLIENT_ID)?;
            let version = client.version::<DescribeAclsRequest>()?;
            let response = client.call(version, &request)?;
            let bindings = described(client.address(), &response)?;
            if *json {
                let text = serde_json::to_string_pretty(&bindings)
                    .map_err(|e| refused(format!("cannot render JSON: {e}")))?;
                println!("{text}");
            } else {
                print!("{}", render_bindings(&bindings));
            }
        }
        AclCommand::Delete {
            resource,
            entry,
            resource_pattern_type,
        } => {
            let request = delete_request(resource, entry, *resource_pattern_type);
            let mut client = args.broker.connect(CLIENT_ID)?;
            let version = client.version::<DeleteAclsRequest>()?;
            let response = client.call(version, &request)?;
            let removed = deleted(client.address(), &response)?;
            println!("deleted {} ACL bindings", removed.len());
            if !removed.is_empty() {
                print!("{}", render_bindings(&removed));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
    use kafka_protocol::ResponseError;

    fn topic(name: &str) -> ResourceArgs {
        ResourceArgs {
            topic: Some(name.into()),
            ..ResourceArgs::default()
        }
    }

    #[test]
    fn operations_parse_in_kafka_spellings() {
        assert_eq!(parse_operation("read"), Ok(AclOperation::Read));
        assert_eq!(
            parse_operation("DESCRIBE_CONFIGS"),
            Ok(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            parse_operation("idempotent-write"),
            Ok(AclOperation::IdempotentWrite)
        );
        let err = parse_operation("any").unwrap_err();
        assert!(err.contains("cluster-action"), "{err}");
    }

    #[test]
    fn add_makes_every_principal_times_every_operation() {
        let entry = EntryArgs {
            allow_principal: vec!["User:alice".into(), "User:bob".into()],
            deny_principal: vec!["User:eve".into()],
            operation: vec![AclOperation::Read, AclOperation::Write],
            host: None,
        };
        let request =
            create_request(&topic("orders-"), &entry, PatternArg::Prefixed).expect("valid");
        assert_eq!(request.creations.len(), 6);
        let eve = &request.creations[4];
        assert_eq!(
            (
                eve.resource_type,
                eve.resource_name.as_str(),
                eve.resource_pattern_type,
                eve.principal.as_str(),
                eve.host.as_str(),
                eve.operation,
                eve.permission_type
            ),
            (2, "orders-", 4, "User:eve", "*", 3, 2)
        );
        let cluster = ResourceArgs {
            cluster: true,
            ..ResourceArgs::default()
        };
        let request = create_request(&cluster, &entry, PatternArg::Literal).expect("valid");
        assert_eq!(request.creations[0].resource_name.as_str(), "kafka-cluster");
        assert!(create_request(&ResourceArgs::default(), &entry, PatternArg::Literal).is_err());
        assert!(create_request(&topic("t"), &entry, PatternArg::Match).is_err());
        assert!(create_request(&topic("t"), &EntryArgs::default(), PatternArg::Literal).is_err());
    }

    #[test]
    fn list_and_delete_filters_default_to_any() {
        let request = describe_request(&ResourceArgs::default(), None, PatternArg::Any);
        assert_eq!(
            (
                request.resource_type_filter,
                request.resource_name_filter.is_none(),
                request.pattern_type_filter,
                request.operation,
                request.permission_type
            ),
            (1, true, 1, 1, 1)
        );
        let request = describe_request(&topic("orders-eu"), Some("User:alice"), PatternArg::Match);
        assert_eq!(
            (request.resource_type_filter, request.pattern_type_filter),
            (2, 2)
        );
        assert_eq!(request.principal_filter.as_deref(), Some("User:alice"));
        let request = delete_request(&topic("t"), &EntryArgs::default(), PatternArg::Literal);
        assert_eq!(request.filters.len(), 1);
        assert_eq!(request.filters[0].principal_filter, None);
        assert_eq!(
            (
                request.filters[0].operation,
                request.filters[0].permission_type
            ),
            (1, 1)
        );
        let entry = EntryArgs {
            deny_principal: vec!["User:eve".into()],
            operation: vec![AclOperation::Write],
            ..EntryArgs::default()
        };
        let request = delete_request(&topic("t"), &entry, PatternArg::Literal);
        assert_eq!(
            (
                request.filters[0].operation,
                request.filters[0].permission_type
            ),
            (4, 2)
        );
    }

    #[test]
    fn bindings_render_as_a_table_and_errors_name_the_broker() {
        let response =
            DescribeAclsResponse::default().with_resources(vec![DescribeAclsResource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes("orders-"))
                .with_pattern_type(4)
                .with_acls(vec![AclDescription::default()
                    .with_principal(str_bytes("User:alice"))
                    .with_host(str_bytes("*"))
                    .with_operation(4)
                    .with_permission_type(3)])]);
        let bindings = described("b:9092", &response).expect("no error");
        assert_eq!(
            render_bindings(&bindings),
            "RESOURCE  NAME     PATTERN   PRINCIPAL   HOST  OPERATION  PERMISSION\n\
             TOPIC     orders-  PREFIXED  User:alice  *     WRITE      ALLOW\n"
        );
        let refused = DescribeAclsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        let err = described("b:9092", &refused).unwrap_err().to_string();
        assert!(
            err.contains("b:9092") && err.contains("CLUSTER_AUTHORIZATION_FAILED"),
            "{err}"
        );
    }
}
