//! DeleteGroups: removes empty groups and their committed offsets.
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::group::{append, Coordinator};
use crate::runtime::ShardClient;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{check_group_id, GroupDeleted, MetaEvent};
use std::rc::Rc;

/// Deletes the groups of this shard (the router asks each group's
/// coordinator for its own: see `group_route.rs`).
pub async fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group in request.groups_names {
        let id = group.0.to_string();
        let error = delete(client, groups, &id).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(GroupId(text(id)))
                .with_error_code(error.map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

async fn delete(client: &Rc<ShardClient>, groups: &Coordinator, id: &str) -> Option<ResponseError> {
    if check_group_id(id).is_err() {
        return Some(ResponseError::InvalidGroupId);
    }
    let shard = client.local();
    let live_empty = groups.with_existing(client, id, |g| g.is_empty());
    if live_empty == Some(false) {
        return Some(ResponseError::NonEmptyGroup);
    }
    let stored = shard.meta.with(|s| s.group(id).is_some());
    if stored {
        let event = MetaEvent::GroupDeleted(GroupDeleted {
            group: id.to_string(),
        });
        if let Err(e) = append(client, event).await {
            tracing::warn!(group = id, error = %e, "group not deleted");
            return Some(ResponseError::CoordinatorNotAvailable);
        }
    } else if live_empty.is_none() {
        return Some(ResponseError::GroupIdNotFound);
    }
    groups.forget(id);
    tracing::info!(group = id, "group deleted");
    None
}
