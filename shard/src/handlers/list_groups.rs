//! ListGroups: every group, gathered from every shard's coordinator (a
//! group lives on exactly one shard, so the union has no duplicates).
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::group::Coordinator;
use crate::runtime::ShardClient;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::rc::Rc;

/// Kafka's name for the classic group protocol (ListGroups v5 types).
const GROUP_TYPE: &str = "classic";

/// Coordinator side: this shard's groups, filtered by state (v4) and type
/// (v5).
pub fn handle(
    client: &Rc<ShardClient>,
    groups: &Coordinator,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let type_ok = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(GROUP_TYPE));
    let groups = super::describe_groups::summaries(client, groups)
        .into_iter()
        .filter(|g| {
            type_ok && (states.is_empty() || states.contains(&g.state.to_ascii_lowercase()))
        })
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(text(g.id)))
                .with_protocol_type(text(g.protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(text(g.state))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(text(GROUP_TYPE))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
