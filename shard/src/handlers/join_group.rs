//! JoinGroup: a member (re)joins its group; answered when the rebalance
//! completes (runs on the group's coordinator shard).
//!
//! Layer: handlers (see the crate docs).
//!
//! Why the answer waits: the classic protocol needs every member's
//! metadata before the leader can assign, so the coordinator parks each
//! join until all members are in (or the rebalance timeout drops the
//! stragglers); see [`crate::group`].

use super::text;
use crate::group::{now_ms, Answer, Coordinator, JoinRequest, JoinResponse};
use crate::message::ClientInfo;
use crate::runtime::ShardClient;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::check_group_id;
use std::rc::Rc;
use std::time::Instant;

/// Answers a JoinGroup.
pub async fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    version: i16,
    request: JoinGroupRequest,
    sender: &ClientInfo,
) -> JoinGroupResponse {
    let group = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    if check_group_id(&group).is_err() {
        return encode(
            version,
            JoinResponse::error(ResponseError::InvalidGroupId, &member_id),
        );
    }
    let join = JoinRequest {
        member_id,
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: sender.client_id.clone(),
        client_host: sender.host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let settings = &client.local().config.coordinator.groups;
    let answer = groups.with_group(client, &group, |g| {
        g.join(join, settings, Instant::now(), now_ms())
    });
    let response = match answer {
        Answer::Now(response) => response,
        Answer::Later(waiting) => waiting
            .await
            .unwrap_or_else(|_| JoinResponse::error(ResponseError::UnknownServerError, "")),
    };
    encode(version, response)
}

fn encode(version: i16, response: JoinResponse) -> JoinGroupResponse {
    let members = response
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(text(id))
                .with_group_instance_id(instance.filter(|_| version >= 5).map(text))
                .with_metadata(metadata)
        })
        .collect();
    // Before v7 the protocol name is a non-nullable string.
    let protocol = match response.protocol {
        Some(p) => Some(text(p)),
        None if version < 7 => Some(text("")),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(response.error.map_or(0, |e| e.code()))
        .with_generation_id(response.generation)
        .with_protocol_type(response.protocol_type.filter(|_| version >= 7).map(text))
        .with_protocol_name(protocol)
        .with_leader(text(response.leader))
        .with_member_id(text(response.member_id))
        .with_members(members)
}
