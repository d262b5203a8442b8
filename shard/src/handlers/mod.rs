//! Kafka API handlers, one file per API.
//!
//! Two kinds, by where they run:
//! * **Router handlers** run on the core that read the request and use that
//!   shard's metadata replica: ApiVersions, Metadata, Produce, Fetch,
//!   ListOffsets, FindCoordinator, DescribeConfigs, DescribeCluster,
//!   DeleteRecords. Partition
//!   work goes to the owning shard over the mesh.
//! * **Admin handlers** run on the controller (shard 0), the only writer of
//!   the meta log: CreateTopics, DeleteTopics, CreatePartitions,
//!   AlterConfigs, IncrementalAlterConfigs. The router forwards the decoded
//!   request and, before answering, waits until its own replica has applied
//!   the change, so the client's next request sees it.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod fetch;
mod find_coordinator;
mod incremental_alter_configs;
pub(crate) mod init_producer_id;
mod list_offsets;
mod metadata;
mod produce;

use crate::controller::Controller;
use crate::message::{ControllerReply, ControllerRequest, ShardRequest};
use crate::runtime::ShardClient;
use futures_channel::oneshot;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use ringlog_protocol::Request;
use std::rc::Rc;

/// The only broker: ringlog is one node, whatever its shard count.
pub const NODE_ID: i32 = 0;
/// The cluster id clients see.
pub const CLUSTER_ID: &str = "ringlog";

/// What a request produced.
pub enum Handled {
    /// Answer with this body.
    Respond(Box<ResponseKind>),
    /// Answer nothing (Produce with acks=0).
    Silent,
}

/// Runs the handler of a decoded request. `Err` is a reason to close the
/// connection (a request this broker cannot answer).
pub async fn dispatch(client: &Rc<ShardClient>, request: Request) -> Result<Handled, String> {
    let version = request.api_version;
    let respond = |body| Ok(Handled::Respond(Box::new(body)));
    match request.body {
        RequestKind::ApiVersions(_) => {
            respond(ResponseKind::ApiVersions(api_versions::handle(version)))
        }
        RequestKind::Metadata(body) => respond(ResponseKind::Metadata(
            metadata::handle(client, version, body).await,
        )),
        RequestKind::Produce(body) => Ok(match produce::handle(client, version, body).await {
            Some(body) => Handled::Respond(Box::new(ResponseKind::Produce(body))),
            None => Handled::Silent,
        }),
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
        RequestKind::DeleteRecords(body) => respond(ResponseKind::DeleteRecords(
            delete_records::handle(client, version, body).await,
        )),
        RequestKind::InitProducerId(body) => respond(ResponseKind::InitProducerId(
            init_producer_id::handle(client, version, body).await,
        )),
        body @ (RequestKind::CreateTopics(_)
        | RequestKind::DeleteTopics(_)
        | RequestKind::CreatePartitions(_)
        | RequestKind::AlterConfigs(_)
        | RequestKind::IncrementalAlterConfigs(_)) => {
            let body = Box::new(body);
            let reply = call_controller(client, ControllerRequest::Admin { version, body }).await?;
            reply
                .body
                .map(|body| Handled::Respond(Box::new(body)))
                .ok_or_else(|| "controller answered an admin request without a body".to_string())
        }
        other => Err(format!(
            "no handler for {:?} v{version}",
            ringlog_protocol::ApiKey::try_from(request.header.request_api_key)
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
        other => unreachable!("not an admin request: {other:?}"),
    };
    (body, applied)
}

/// Sends work to the controller and waits until this shard's replica has
/// applied what it changed.
pub async fn call_controller(
    client: &Rc<ShardClient>,
    request: ControllerRequest,
) -> Result<ControllerReply, String> {
    let (reply, answer) = oneshot::channel();
    client
        .send(0, ShardRequest::Controller { request, reply })
        .await;
    let answer = answer
        .await
        .map_err(|_| "the controller dropped the request".to_string())?;
    if !client
        .local()
        .meta
        .wait_applied(answer.applied_offset)
        .await
    {
        tracing::warn!(
            offset = answer.applied_offset,
            "metadata replica did not catch up in time; answering anyway"
        );
    }
    Ok(answer)
}

/// The shard owning `topic`/`partition` in this shard's replica.
pub fn owner(client: &ShardClient, topic: &str, partition: i32) -> Option<u32> {
    let index = u32::try_from(partition).ok()?;
    client
        .local()
        .meta
        .with(|state| state.placement(topic, index))
}

/// A topic name for a response.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// An owned string for a response.
pub fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
