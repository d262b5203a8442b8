//! What `ringlog group` prints, as pure functions of the decoded answers
//! so the output is tested without a broker. A value the broker did not
//! give is shown as `-`, so no table cell is ever blank.

use super::answers::{decode_assignment, Assignment, Committed, ListedGroup, ListedOffsets};
use super::run::PartitionOffsets;
use super::ASSIGNMENT_HEX_BYTES_MAX;
use crate::kafka_client::render_table;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use ringlog_protocol::client::error_name;
use std::collections::{BTreeMap, BTreeSet};

/// `ringlog group list`: the groups in `states` (all if empty), sorted by
/// id, as a table.
pub fn render_group_list(mut groups: Vec<ListedGroup>, states: &[String]) -> String {
    groups.retain(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&g.state)));
    if groups.is_empty() {
        return "no groups\n".to_string();
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|g| vec![g.group, or_dash(g.state), or_dash(g.protocol_type)])
        .collect();
    render_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

impl Assignment {
    /// `orders:0,1 payments:3`, `-` when empty, or the bytes in hex.
    pub fn render(&self) -> String {
        match self {
            Assignment::Empty => "-".to_string(),
            Assignment::Partitions(topics) if topics.is_empty() => "-".to_string(),
            Assignment::Partitions(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let list: Vec<String> = partitions.iter().map(|p| p.to_string()).collect();
                    format!("{topic}:{}", list.join(","))
                })
                .collect::<Vec<_>>()
                .join(" "),
            Assignment::Opaque(bytes) => {
                let shown = &bytes[..bytes.len().min(ASSIGNMENT_HEX_BYTES_MAX)];
                let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
                let more = if bytes.len() > shown.len() { "..." } else { "" };
                format!("{} bytes 0x{hex}{more}", bytes.len())
            }
        }
    }
}

/// `ringlog group describe`: the group's state and protocol; a row per
/// partition it committed or is assigned, with committed offset, log end
/// (`log_ends`, from ListOffsets latest), lag and the owning member; and
/// its members with their assignments.
pub fn render_description(
    group: &DescribedGroup,
    committed: &Committed,
    log_ends: &ListedOffsets,
) -> String {
    let protocol_type = group.protocol_type.as_str();
    let members: Vec<(&_, Assignment)> = group
        .members
        .iter()
        .map(|m| (m, decode_assignment(protocol_type, &m.member_assignment)))
        .collect();
    let mut owners: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (index, (_, assignment)) in members.iter().enumerate() {
        if let Assignment::Partitions(topics) = assignment {
            for (topic, partitions) in topics {
                for partition in partitions {
                    owners.insert((topic.clone(), *partition), index);
                }
            }
        }
    }
    let mut out = render_table(
        &["group", group.group_id.0.as_str()],
        &[
            vec!["state".to_string(), or_dash(group.group_state.to_string())],
            vec![
                "protocol-type".to_string(),
                or_dash(protocol_type.to_string()),
            ],
            vec![
                "protocol".to_string(),
                or_dash(group.protocol_data.to_string()),
            ],
            vec!["members".to_string(), group.members.len().to_string()],
        ],
    );
    out.push('\n');
    let partitions: BTreeSet<&(String, i32)> = committed.keys().chain(owners.keys()).collect();
    if partitions.is_empty() {
        out.push_str("no committed offsets and no assigned partitions\n");
    } else {
        let rows: Vec<Vec<String>> = partitions
            .into_iter()
            .map(|key| {
                let offset = committed.get(key).copied();
                let (log_end, lag) = match log_ends.get(key) {
                    Some(Ok(Some(end))) => (
                        end.to_string(),
                        offset.map_or("-".to_string(), |o| (end - o).to_string()),
                    ),
                    Some(Err(error)) => (error_name(*error), "-".to_string()),
                    Some(Ok(None)) | None => ("-".to_string(), "-".to_string()),
                };
                let (member_id, client_id, host) = match owners.get(key) {
                    Some(index) => {
                        let member = members[*index].0;
                        (
                            or_dash(member.member_id.to_string()),
                            or_dash(member.client_id.to_string()),
                            or_dash(member.client_host.to_string()),
                        )
                    }
                    None => ("-".to_string(), "-".to_string(), "-".to_string()),
                };
                vec![
                    key.0.clone(),
                    key.1.to_string(),
                    offset.map_or("-".to_string(), |o| o.to_string()),
                    log_end,
                    lag,
                    member_id,
                    client_id,
                    host,
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END",
                "LAG",
                "MEMBER-ID",
                "CLIENT-ID",
                "HOST",
            ],
            &rows,
        ));
    }
    out.push('\n');
    if members.is_empty() {
        out.push_str("no active members\n");
    } else {
        let rows: Vec<Vec<String>> = members
            .iter()
            .map(|(m, assignment)| {
                vec![
                    or_dash(m.member_id.to_string()),
                    m.group_instance_id
                        .as_ref()
                        .map_or("-".to_string(), |i| or_dash(i.to_string())),
                    or_dash(m.client_id.to_string()),
                    or_dash(m.client_host.to_string()),
                    assignment.render(),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "ASSIGNMENT",
            ],
            &rows,
        ));
    }
    out
}

/// `reset-offsets`: old and new offset of each partition, as a table.
pub fn render_reset(topic: &str, rows: &[(PartitionOffsets, i64)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(offsets, new)| {
            vec![
                topic.to_string(),
                offsets.partition.to_string(),
                offsets.committed.map_or("-".to_string(), |o| o.to_string()),
                new.to_string(),
            ]
        })
        .collect();
    render_table(&["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], &rows)
}
