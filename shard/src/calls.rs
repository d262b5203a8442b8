//! Calls across the mesh that the layers above the runtime share: work for
//! the controller, a group's requests for its coordinator shard, and the
//! replica lookups that say where a partition's request goes.
//!
//! Layer: runtime (see the crate docs). May import the foundation
//! modules, `meta_view` and the rest of the runtime layer; nothing of the
//! controller, the group coordinator, the handlers or the router. Why
//! here: the handlers and the group coordinator both call the controller,
//! and the coordinator may not import the handlers.

use crate::message::{
    AdminReply, ClientInfo, ControllerReply, ControllerRequest, GroupAnswer, ServiceRequest,
    ShardRequest,
};
use crate::runtime::ShardClient;
use crate::wake;
use kafka_protocol::messages::RequestKind;
use ringlog_engine::meta::MetaState;

/// The shard the controller runs on.
pub const CONTROLLER_SHARD: usize = 0;

/// An answer from the controller's shard: the meta offset it reached.
trait Applied {
    fn applied_offset(&self) -> u64;
}

impl Applied for ControllerReply {
    fn applied_offset(&self) -> u64 {
        self.applied_offset
    }
}

impl Applied for AdminReply {
    fn applied_offset(&self) -> u64 {
        self.applied_offset
    }
}

/// Sends `request` to the controller's shard, waits for its answer and
/// then until this shard's replica has applied what it changed.
async fn on_controller<R: Applied>(
    client: &ShardClient,
    request: ServiceRequest,
    answer: wake::Answer<R>,
) -> Result<R, String> {
    client
        .send(CONTROLLER_SHARD, ShardRequest::Service(request))
        .await;
    let answer = answer
        .await
        .map_err(|_| "the controller dropped the request".to_string())?;
    let offset = answer.applied_offset();
    if !client.local().meta.wait_applied(offset).await {
        tracing::warn!(
            offset,
            "metadata replica did not catch up in time; answering anyway"
        );
    }
    Ok(answer)
}

/// Sends work to the controller and waits until this shard's replica has
/// applied what it changed.
pub async fn call_controller(
    client: &ShardClient,
    request: ControllerRequest,
) -> Result<ControllerReply, String> {
    let (reply, answer) = wake::channel();
    on_controller(
        client,
        ServiceRequest::Controller { request, reply },
        answer,
    )
    .await
}

/// Runs an admin request's handler next to the controller and waits until
/// this shard's replica has applied what it changed.
pub async fn call_admin(
    client: &ShardClient,
    version: i16,
    body: Box<RequestKind>,
) -> Result<AdminReply, String> {
    let (reply, answer) = wake::channel();
    let request = ServiceRequest::Admin {
        version,
        body,
        reply,
    };
    on_controller(client, request, answer).await
}

/// Sends a group request to shard `shard`'s coordinator and waits for its
/// answer.
pub async fn forward_to(
    client: &ShardClient,
    shard: usize,
    version: i16,
    body: RequestKind,
    sender: &ClientInfo,
) -> Result<GroupAnswer, String> {
    let (reply, answer) = wake::channel();
    let request = ServiceRequest::Group {
        version,
        body: Box::new(body),
        client: sender.clone(),
        reply,
    };
    client.send(shard, ShardRequest::Service(request)).await;
    answer
        .await
        .map_err(|_| format!("group coordinator on shard {shard} dropped the request"))
}

/// Waits for this shard's replica to catch up with the controller when
/// `known` says the request names something it does not know, so a topic
/// created through another router is found (see
/// [`crate::meta_view::MetaView::catch_up`]).
pub async fn catch_up_unless(client: &ShardClient, known: impl FnOnce(&MetaState) -> bool) {
    let meta = &client.local().meta;
    if !meta.with(known) {
        meta.catch_up().await;
    }
}

/// Whether every (topic, partition) is placed in `state`.
pub fn all_placed<'a>(
    state: &MetaState,
    mut partitions: impl Iterator<Item = (&'a str, i32)>,
) -> bool {
    partitions.all(|(topic, partition)| {
        u32::try_from(partition).is_ok_and(|p| state.placement(topic, p).is_some())
    })
}

/// The shard owning `topic`/`partition` in this shard's replica.
pub fn owner(client: &ShardClient, topic: &str, partition: i32) -> Option<u32> {
    let index = u32::try_from(partition).ok()?;
    client
        .local()
        .meta
        .with(|state| state.placement(topic, index))
}
