//! How a consumer group request reaches the coordinators, in one table:
//! a request naming one group goes whole to that group's coordinator
//! shard, DescribeGroups and DeleteGroups are split into one request per
//! group, ListGroups asks every shard; the answers are joined in the order
//! asked.
//!
//! Layer: handlers (see the crate docs); the router side of the group
//! APIs, whose coordinator side is in each API's file.

use super::offset_commit;
use crate::calls::forward_to;
use crate::group::coordinator_shard;
use crate::message::{ClientInfo, GroupAnswer};
use crate::runtime::ShardClient;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, RequestKind, ResponseKind,
};
use std::rc::Rc;

/// A request, by whether it goes to group coordinators.
pub enum Routed {
    /// A consumer group request, and where its parts go.
    Group(GroupRoute),
    /// Any other request, given back.
    Other(RequestKind),
}

/// A consumer group request as its coordinators get it.
pub enum GroupRoute {
    /// The whole request, for the coordinator on this shard.
    One(usize, RequestKind),
    /// Parts for several coordinators, asked in this order.
    Split {
        /// Each part's shard and the request it runs there.
        parts: Vec<(usize, RequestKind)>,
        /// The empty response the answers are joined into.
        joined: ResponseKind,
    },
}

/// The group a request names when it names exactly one: such a request
/// goes whole to that group's coordinator.
fn one_group(body: &RequestKind) -> Option<&str> {
    let id = match body {
        RequestKind::JoinGroup(request) => &request.group_id,
        RequestKind::SyncGroup(request) => &request.group_id,
        RequestKind::Heartbeat(request) => &request.group_id,
        RequestKind::LeaveGroup(request) => &request.group_id,
        RequestKind::OffsetCommit(request) => &request.group_id,
        RequestKind::OffsetDelete(request) => &request.group_id,
        _ => return None,
    };
    Some(id.0.as_str())
}

impl GroupRoute {
    /// The route of a consumer group request among `shards` shards; any
    /// other request is given back.
    pub fn of(body: RequestKind, shards: usize) -> Routed {
        if let Some(group) = one_group(&body) {
            let shard = coordinator_shard(group, shards);
            return Routed::Group(GroupRoute::One(shard, body));
        }
        let on = |group: &str| coordinator_shard(group, shards);
        let (parts, joined) = match body {
            RequestKind::DescribeGroups(request) => {
                let include = request.include_authorized_operations;
                let parts = request.groups.into_iter().map(|group| {
                    let single = DescribeGroupsRequest::default()
                        .with_groups(vec![group.clone()])
                        .with_include_authorized_operations(include);
                    (on(&group.0), RequestKind::DescribeGroups(single))
                });
                (
                    parts.collect(),
                    ResponseKind::DescribeGroups(Default::default()),
                )
            }
            RequestKind::DeleteGroups(request) => {
                let parts = request.groups_names.into_iter().map(|group| {
                    let shard = on(&group.0);
                    let single = DeleteGroupsRequest::default().with_groups_names(vec![group]);
                    (shard, RequestKind::DeleteGroups(single))
                });
                (
                    parts.collect(),
                    ResponseKind::DeleteGroups(Default::default()),
                )
            }
            RequestKind::ListGroups(request) => {
                let parts =
                    (0..shards).map(|shard| (shard, RequestKind::ListGroups(request.clone())));
                (
                    parts.collect(),
                    ResponseKind::ListGroups(Default::default()),
                )
            }
            other => return Routed::Other(other),
        };
        Routed::Group(GroupRoute::Split { parts, joined })
    }

    /// Asks the coordinators one after the other and answers `api`.
    /// `sender` is who sent the request (group members keep it).
    pub async fn ask(
        self,
        client: &Rc<ShardClient>,
        api: ApiKey,
        version: i16,
        sender: &ClientInfo,
    ) -> Result<ResponseKind, String> {
        let (parts, mut joined) = match self {
            GroupRoute::One(shard, body) => {
                return ask_coordinator(client, shard, version, body, sender).await
            }
            GroupRoute::Split { parts, joined } => (parts, joined),
        };
        for (shard, body) in parts {
            let answer = ask_coordinator(client, shard, version, body, sender).await?;
            match (&mut joined, answer) {
                (ResponseKind::DescribeGroups(all), ResponseKind::DescribeGroups(one)) => {
                    all.groups.extend(one.groups)
                }
                (ResponseKind::DeleteGroups(all), ResponseKind::DeleteGroups(one)) => {
                    all.results.extend(one.results)
                }
                (ResponseKind::ListGroups(all), ResponseKind::ListGroups(one)) => {
                    all.groups.extend(one.groups)
                }
                (_, other) => return Err(format!("coordinator answered {api:?} with {other:?}")),
            }
        }
        Ok(joined)
    }
}

/// Sends a group request to shard `shard`'s coordinator and waits for the
/// response body (an OffsetCommit's, once its event is durable).
async fn ask_coordinator(
    client: &Rc<ShardClient>,
    shard: usize,
    version: i16,
    body: RequestKind,
    sender: &ClientInfo,
) -> Result<ResponseKind, String> {
    Ok(
        match forward_to(client, shard, version, body, sender).await? {
            GroupAnswer::Done(body) => body,
            GroupAnswer::OnceDurable { response, durable } => {
                ResponseKind::OffsetCommit(offset_commit::once_durable(response, durable).await)
            }
        },
    )
}
