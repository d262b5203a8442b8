//! LeaveGroup: members leave at once instead of timing out, so the group
//! rebalances immediately (runs on the group's coordinator shard). v3+
//! batches members (static members leave by instance id).
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::group::{now_ms, Coordinator};
use crate::runtime::ShardClient;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;
use std::time::Instant;

/// Answers a LeaveGroup.
pub async fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group = request.group_id.0.to_string();
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let shard = client.local();
    let settings = &shard.config.coordinator.groups;
    let mut stores = Vec::new();
    let mut results = Vec::with_capacity(leaving.len());
    for (member_id, instance_id) in &leaving {
        let (error, store) = groups
            .with_existing(client, &group, |g| {
                g.leave(
                    member_id,
                    instance_id.as_deref(),
                    settings,
                    Instant::now(),
                    now_ms(),
                )
            })
            .unwrap_or((Some(ResponseError::UnknownMemberId), None));
        stores.extend(store);
        results.push(error);
    }
    for store in stores {
        if let Err(e) = groups.store(client, &group, store).await {
            tracing::warn!(%group, error = %e, "storing the emptied group failed");
        }
    }
    if version < 3 {
        let error = results.first().copied().flatten();
        return LeaveGroupResponse::default().with_error_code(error.map_or(0, |e| e.code()));
    }
    let members = leaving
        .into_iter()
        .zip(results)
        .map(|((member_id, instance_id), error)| {
            MemberResponse::default()
                .with_member_id(text(member_id))
                .with_group_instance_id(instance_id.map(text))
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
