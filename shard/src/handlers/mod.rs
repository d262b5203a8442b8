//! Kafka API handlers, one file per API: each reads its request and
//! writes its answer; what the request does is the controller's, the group
//! coordinator's or the owning shard's.
//!
//! Layer: handlers (see the crate docs). May import the controller, the
//! group coordinator and every layer below them; only the router imports
//! the handlers. Three kinds, by where they run:
//! * **Router handlers** run on the core that read the request and use that
//!   shard's metadata replica: ApiVersions, SaslHandshake and
//!   SaslAuthenticate (called by the router's authentication and
//!   re-authentication on a SASL listener, refused with
//!   ILLEGAL_SASL_STATE here otherwise), Metadata, Produce, Fetch,
//!   ListOffsets, FindCoordinator, DescribeConfigs, DescribeCluster,
//!   DescribeClientQuotas, DescribeUserScramCredentials,
//!   DeleteRecords, OffsetFetch (committed offsets are replicated meta
//!   state), InitProducerId (the id comes from the controller),
//!   DescribeAcls (ACLs are replicated meta state). Partition
//!   work goes to the owning shard over the mesh (`fan_out.rs`).
//! * **Admin handlers** run next to the controller (shard 0), the only
//!   writer of the meta log: CreateTopics, DeleteTopics, CreatePartitions,
//!   AlterConfigs, IncrementalAlterConfigs, AlterClientQuotas, CreateAcls,
//!   DeleteAcls, AlterUserScramCredentials ([`admin`]). The router forwards
//!   the decoded request and, before answering, waits until its own
//!   replica has applied the change, so the client's next request sees it.
//! * **Group handlers** run on the group's coordinator shard
//!   ([`crate::group`]): JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//!   OffsetCommit, DescribeGroups, DeleteGroups, OffsetDelete, ListGroups
//!   ([`group`]). The router sends each group's part of a request there
//!   and joins the answers (`group_route.rs`).
//!
//! Before any of them, the authorizer screens the request with the
//! connection's principal ([`access`]), so what a caller may not do never
//! reaches a handler.

pub mod access;
mod alter_client_quotas;
mod alter_configs;
mod alter_user_scram_credentials;
mod api_versions;
mod config_change;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_client_quotas;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_user_scram_credentials;
mod fan_out;
mod fetch;
mod find_coordinator;
mod group_route;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
mod sync_group;

use crate::authorizer::Identity;
use crate::calls::call_admin;
use crate::controller::Controller;
use crate::dispatch_order::Turn;
use crate::group::Coordinator;
use crate::message::{ClientInfo, GroupAnswer};
use crate::runtime::ShardClient;
use access::{Access, Refused};
use group_route::{GroupRoute, Routed};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use ringlog_protocol::Request;
use std::rc::Rc;

/// What a request produced.
pub enum Handled {
    /// Answer with this body.
    Respond(Box<ResponseKind>),
    /// Answer nothing (Produce with acks=0).
    Silent,
}

/// Runs the handler of a decoded request from `identity`'s connection,
/// after the authorizer took out what the caller may not do
/// ([`access::screen`]). `Err` is a reason to close the connection (a
/// request this broker cannot answer).
pub async fn dispatch(
    client: &Rc<ShardClient>,
    request: Request,
    identity: &Identity,
    turn: Turn,
) -> Result<Handled, String> {
    let Request {
        header,
        api_key,
        api_version: version,
        body,
    } = request;
    // Only Produce dispatches in arrival order; every other request gives
    // its turn up here.
    let produce_turn = (api_key == ApiKey::Produce).then_some(turn);
    let access = Access::new(client, identity);
    let (body, refused) = access::screen(&access, version, body);
    if let Refused::Whole(response) = refused {
        return Ok(Handled::Respond(response));
    }
    let respond = |body| Ok(Handled::Respond(Box::new(body)));
    let handled = match GroupRoute::of(body, client.shard_count()) {
        Routed::Group(route) => {
            // Group members keep who sent them.
            let sender = ClientInfo {
                client_id: header.client_id.unwrap_or_default().to_string(),
                host: identity.host.to_string(),
            };
            respond(route.ask(client, api_key, version, &sender).await?)
        }
        Routed::Other(body) => {
            run(
                client,
                &access,
                version,
                header.request_api_key,
                body,
                produce_turn,
            )
            .await
        }
    }?;
    Ok(match handled {
        Handled::Respond(mut body) => {
            access::join(&access, &mut body, refused);
            Handled::Respond(body)
        }
        Handled::Silent => Handled::Silent,
    })
}

/// Runs the handler of a request that is not a group request.
async fn run(
    client: &Rc<ShardClient>,
    access: &Access<'_>,
    version: i16,
    api_key: i16,
    body: RequestKind,
    produce_turn: Option<Turn>,
) -> Result<Handled, String> {
    let respond = |body| Ok(Handled::Respond(Box::new(body)));
    match body {
        RequestKind::OffsetFetch(body) => respond(ResponseKind::OffsetFetch(
            offset_fetch::handle(client, version, body).await,
        )),
        RequestKind::ApiVersions(_) => {
            respond(ResponseKind::ApiVersions(api_versions::handle(version)))
        }
        RequestKind::Metadata(body) => respond(ResponseKind::Metadata(
            metadata::handle(client, access, version, body).await,
        )),
        RequestKind::Produce(body) => Ok(
            match produce::handle(client, access, version, body, produce_turn).await {
                Some(body) => Handled::Respond(Box::new(ResponseKind::Produce(body))),
                None => Handled::Silent,
            },
        ),
        RequestKind::Fetch(body) => respond(ResponseKind::Fetch(
            fetch::handle(client, version, body).await,
        )),
        RequestKind::ListOffsets(body) => respond(ResponseKind::ListOffsets(
            list_offsets::handle(client, version, body).await,
        )),
        RequestKind::DescribeConfigs(body) => respond(ResponseKind::DescribeConfigs(
            describe_configs::handle(client, version, body),
        )),
        RequestKind::FindCoordinator(body) => respond(ResponseKind::FindCoordinator(
            find_coordinator::handle(client, version, body),
        )),
        RequestKind::DescribeCluster(body) => respond(ResponseKind::DescribeCluster(
            describe_cluster::handle(client, version, body),
        )),
        RequestKind::DescribeClientQuotas(body) => respond(ResponseKind::DescribeClientQuotas(
            describe_client_quotas::handle(client, version, body),
        )),
        RequestKind::DescribeUserScramCredentials(body) => {
            respond(ResponseKind::DescribeUserScramCredentials(
                describe_user_scram_credentials::handle(client, version, body),
            ))
        }
        RequestKind::DeleteRecords(body) => respond(ResponseKind::DeleteRecords(
            delete_records::handle(client, version, body).await,
        )),
        RequestKind::InitProducerId(body) => respond(ResponseKind::InitProducerId(
            init_producer_id::handle(client, version, body).await,
        )),
        RequestKind::DescribeAcls(body) => respond(ResponseKind::DescribeAcls(
            describe_acls::handle(client, version, body).await,
        )),
        // The router answers these on a SASL listener (authentication
        // and re-authentication); here the listener is not one.
        RequestKind::SaslHandshake(_) => {
            respond(ResponseKind::SaslHandshake(sasl_handshake::refused()))
        }
        RequestKind::SaslAuthenticate(_) => {
            respond(ResponseKind::SaslAuthenticate(sasl_authenticate::refused()))
        }
        body @ (RequestKind::CreateTopics(_)
        | RequestKind::DeleteTopics(_)
        | RequestKind::CreatePartitions(_)
        | RequestKind::AlterConfigs(_)
        | RequestKind::IncrementalAlterConfigs(_)
        | RequestKind::AlterClientQuotas(_)
        | RequestKind::CreateAcls(_)
        | RequestKind::DeleteAcls(_)
        | RequestKind::AlterUserScramCredentials(_)) => {
            let reply = call_admin(client, version, Box::new(body)).await?;
            Ok(Handled::Respond(Box::new(reply.body)))
        }
        other => Err(format!(
            "no handler for {:?} v{version}",
            ringlog_protocol::ApiKey::try_from(api_key)
                .map_or_else(|_| format!("{other:?}"), |k| format!("{k:?}"))
        )),
    }
}

/// Runs an admin request on the controller (this shard is shard 0).
/// Returns the response and the meta offset it needs replicas to reach.
pub async fn admin(
    controller: &Controller,
    version: i16,
    body: RequestKind,
) -> (ResponseKind, u64) {
    let mut applied = controller.applied_offset();
    let body = match body {
        RequestKind::CreateTopics(body) => ResponseKind::CreateTopics(
            create_topics::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::DeleteTopics(body) => ResponseKind::DeleteTopics(
            delete_topics::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::CreatePartitions(body) => ResponseKind::CreatePartitions(
            create_partitions::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::AlterConfigs(body) => ResponseKind::AlterConfigs(
            alter_configs::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::IncrementalAlterConfigs(body) => ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::AlterClientQuotas(body) => ResponseKind::AlterClientQuotas(
            alter_client_quotas::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::CreateAcls(body) => ResponseKind::CreateAcls(
            create_acls::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::DeleteAcls(body) => ResponseKind::DeleteAcls(
            delete_acls::handle(controller, version, body, &mut applied).await,
        ),
        RequestKind::AlterUserScramCredentials(body) => ResponseKind::AlterUserScramCredentials(
            alter_user_scram_credentials::handle(controller, version, body, &mut applied).await,
        ),
        other => unreachable!("not an admin request: {other:?}"),
    };
    (body, applied)
}

/// Runs a group request on this shard, its coordinator (the group's part
/// of a multi-group request).
pub async fn group(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    version: i16,
    body: RequestKind,
    sender: &ClientInfo,
) -> GroupAnswer {
    let body = match body {
        RequestKind::JoinGroup(body) => {
            ResponseKind::JoinGroup(join_group::handle(client, groups, version, body, sender).await)
        }
        RequestKind::SyncGroup(body) => {
            ResponseKind::SyncGroup(sync_group::handle(client, groups, version, body).await)
        }
        RequestKind::Heartbeat(body) => {
            ResponseKind::Heartbeat(heartbeat::handle(client, groups, body))
        }
        RequestKind::LeaveGroup(body) => {
            ResponseKind::LeaveGroup(leave_group::handle(client, groups, version, body).await)
        }
        RequestKind::OffsetCommit(body) => {
            return offset_commit::handle(client, groups, body).await
        }
        RequestKind::OffsetDelete(body) => {
            ResponseKind::OffsetDelete(offset_delete::handle(client, groups, body).await)
        }
        RequestKind::DescribeGroups(body) => {
            ResponseKind::DescribeGroups(describe_groups::handle(client, groups, body))
        }
        RequestKind::DeleteGroups(body) => {
            ResponseKind::DeleteGroups(delete_groups::handle(client, groups, body).await)
        }
        RequestKind::ListGroups(body) => {
            ResponseKind::ListGroups(list_groups::handle(client, groups, version, body))
        }
        other => unreachable!("not a group request: {other:?}"),
    };
    GroupAnswer::Done(body)
}

/// A topic name for a response.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// An owned string for a response.
pub fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
