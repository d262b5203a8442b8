//! Heartbeat: keeps a member's session alive and tells it when to rejoin
//! (runs on the group's coordinator shard).
//!
//! Layer: handlers (see the crate docs).

use crate::group::Coordinator;
use crate::runtime::ShardClient;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;
use std::time::Instant;

/// Answers a Heartbeat.
pub fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    let group = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let error = groups
        .with_existing(client, &group, |g| {
            g.heartbeat(
                &member_id,
                instance_id.as_deref(),
                request.generation_id,
                Instant::now(),
            )
        })
        .unwrap_or(Some(ResponseError::UnknownMemberId));
    HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
