//! DescribeGroups: state, protocol and members (with their metadata and
//! assignments) of each group, from its coordinator shard.
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::group::{coordinator_shard, Coordinator, Phase};
use crate::runtime::ShardClient;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use std::rc::Rc;

/// A group as ListGroups and DescribeGroups show it.
pub struct Summary {
    /// Group id.
    pub id: String,
    /// Kafka state name.
    pub state: &'static str,
    /// Protocol type ("" if none).
    pub protocol_type: String,
}

/// Every group this shard coordinates: live ones, and those the meta log
/// knows only by their offsets or stored (empty) membership.
pub fn summaries(client: &Rc<ShardClient>, groups: &Coordinator) -> Vec<Summary> {
    let shard = client.local();
    let mut out: Vec<Summary> = groups
        .live_ids(client)
        .into_iter()
        .filter_map(|id| {
            groups.with_existing(client, &id, |g| Summary {
                id: id.clone(),
                state: g.phase().name(),
                protocol_type: g.protocol_type().unwrap_or_default().to_string(),
            })
        })
        .collect();
    let shards = client.shard_count();
    shard.meta.with(|state| {
        for (id, stored) in state.groups() {
            if coordinator_shard(id, shards) == shard.id && !out.iter().any(|s| s.id == id) {
                out.push(Summary {
                    id: id.to_string(),
                    state: Phase::Empty.name(),
                    protocol_type: stored
                        .record
                        .as_ref()
                        .map(|r| r.protocol_type.clone())
                        .unwrap_or_default(),
                });
            }
        }
    });
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Answers the groups of this shard (the router asks each group's
/// coordinator for its own: see `group_route.rs`).
pub fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let shard = client.local();
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let name = id.0.to_string();
            let live = groups.with_existing(client, &name, |g| {
                let stable = g.phase() == Phase::Stable;
                let protocol = g.protocol().unwrap_or_default().to_string();
                let members = g
                    .members()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(text(m.id.clone()))
                            .with_group_instance_id(m.instance_id.clone().map(text))
                            .with_client_id(text(m.client_id.clone()))
                            .with_client_host(text(m.client_host.clone()))
                            .with_member_metadata(m.metadata(&protocol))
                            .with_member_assignment(if stable {
                                m.assignment.clone()
                            } else {
                                Default::default()
                            })
                    })
                    .collect::<Vec<_>>();
                DescribedGroup::default()
                    .with_group_state(text(g.phase().name()))
                    .with_protocol_type(text(g.protocol_type().unwrap_or_default()))
                    .with_protocol_data(text(protocol))
                    .with_members(members)
            });
            let described = live.unwrap_or_else(|| {
                let stored_type = shard.meta.with(|s| {
                    s.group(&name).map(|g| {
                        g.record
                            .as_ref()
                            .map(|r| r.protocol_type.clone())
                            .unwrap_or_default()
                    })
                });
                let state = if stored_type.is_some() {
                    Phase::Empty.name()
                } else {
                    "Dead"
                };
                DescribedGroup::default()
                    .with_group_state(text(state))
                    .with_protocol_type(text(stored_type.unwrap_or_default()))
            });
            described.with_group_id(GroupId(text(name)))
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
