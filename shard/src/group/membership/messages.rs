//! What requests ask of a group's state machine and what it answers:
//! JoinGroup and SyncGroup as the state machine sees them, free of the
//! wire types (the handlers translate).
//!
//! Layer: group (see the crate docs); imports nothing of the crate.

use crate::wake;
use bytes::Bytes;
use kafka_protocol::ResponseError;

/// A JoinGroup request as the state machine sees it.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id` (static membership).
    pub instance_id: Option<String>,
    /// The connection's client id.
    pub client_id: String,
    /// The connection's peer host.
    pub client_host: String,
    /// Session timeout asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout asked for.
    pub rebalance_timeout_ms: i32,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Protocols in preference order, with this member's metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
}

/// A JoinGroup answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    /// `None` on success.
    pub error: Option<ResponseError>,
    /// The generation joined (-1 on error).
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member id of the requester (also on MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// For the leader: every member with its instance id and metadata for
    /// the chosen protocol. Empty for followers.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResponse {
    /// The answer that refuses a join with `error`.
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        JoinResponse {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    /// `None` on success.
    pub error: Option<ResponseError>,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResponse {
    /// The answer that refuses a sync with `error`.
    pub fn error(error: ResponseError) -> Self {
        SyncResponse {
            error: Some(error),
            protocol_type: None,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

/// What a request gets: an answer now, or later through the receiver.
pub enum Answer<T> {
    /// Answer now.
    Now(T),
    /// Answer when the group moves on.
    Later(wake::Answer<T>),
}
