//! SyncGroup: the leader hands in the assignment; every member gets its
//! own once it is stored (runs on the group's coordinator shard).
//!
//! Layer: handlers (see the crate docs).
//!
//! Why the answer waits for the meta log: the stored generation is what a
//! restarted coordinator resumes, so members are told their assignment
//! only once a restart would give them the same one.

use super::text;
use crate::group::{now_ms, Answer, Coordinator, SyncResponse};
use crate::runtime::ShardClient;
use bytes::Bytes;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::check_group_id;
use std::rc::Rc;
use std::time::Instant;

/// Answers a SyncGroup.
pub async fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let group = request.group_id.0.to_string();
    if check_group_id(&group).is_err() {
        return encode(version, SyncResponse::error(ResponseError::InvalidGroupId));
    }
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let assignments: Vec<(String, Bytes)> = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let shard = client.local();
    let settings = &shard.config.coordinator.groups;
    let checked = groups.with_existing(client, &group, |g| {
        // v5 names the protocol; it must be the group's.
        let mismatch = |asked: &Option<kafka_protocol::protocol::StrBytes>, have: Option<&str>| {
            asked.as_ref().is_some_and(|a| Some(a.as_str()) != have)
        };
        if mismatch(&request.protocol_type, g.protocol_type())
            || mismatch(&request.protocol_name, g.protocol())
        {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(g.sync(
            &member_id,
            instance_id.as_deref(),
            request.generation_id,
            assignments,
            Instant::now(),
            now_ms(),
        ))
    });
    let (answer, store) = match checked {
        None => return encode(version, SyncResponse::error(ResponseError::UnknownMemberId)),
        Some(Err(e)) => return encode(version, SyncResponse::error(e)),
        Some(Ok(outcome)) => outcome,
    };
    if let Some(store) = store {
        let generation = store.generation;
        let stored = groups.store(client, &group, store).await;
        if let Err(e) = &stored {
            tracing::warn!(%group, generation, error = %e, "storing the group assignment failed");
        }
        groups.with_existing(client, &group, |g| {
            g.stored(
                generation,
                stored.is_ok(),
                settings,
                Instant::now(),
                now_ms(),
            )
        });
    }
    let response = match answer {
        Answer::Now(response) => response,
        Answer::Later(waiting) => waiting
            .await
            .unwrap_or_else(|_| SyncResponse::error(ResponseError::UnknownServerError)),
    };
    encode(version, response)
}

fn encode(version: i16, response: SyncResponse) -> SyncGroupResponse {
    let v5 = version >= 5;
    SyncGroupResponse::default()
        .with_error_code(response.error.map_or(0, |e| e.code()))
        .with_protocol_type(response.protocol_type.filter(|_| v5).map(text))
        .with_protocol_name(response.protocol.filter(|_| v5).map(text))
        .with_assignment(response.assignment)
}
