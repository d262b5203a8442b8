//! Runs the commands against the broker: the only part of `ringlog group`
//! that does I/O, and where the rules of a reset are applied (no members,
//! every new offset clamped into the log) before anything is committed.

use super::answers::{
    commit_results, committed_offsets, decode_assignment, delete_results, described_group,
    fill_states, kafka_error, listed_groups, listed_offsets, partition_subject, protocol_error,
    topic_partitions, Assignment, Committed, ListedOffsets,
};
use super::args::{GroupArgs, GroupCommand, ResetArgs, ResetTarget};
use super::render::{render_description, render_group_list, render_reset};
use super::requests::{
    delete_groups_request, describe_groups_request, list_groups_request, list_offsets_request,
    offset_commit_request, offset_fetch_request,
};
use super::{
    CLIENT_ID, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, LIST_GROUPS_STATES_VERSION,
    OFFSET_FETCH_VERSION_MIN, RESETTABLE_STATES,
};
use crate::kafka_client::{Client, ClientError};
use crate::topic::metadata_request;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, DescribeGroupsResponse, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet};

/// What `reset-offsets` knows about one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Partition index.
    pub partition: i32,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// Log start offset.
    pub earliest: i64,
    /// Log end offset.
    pub latest: i64,
    /// For [`ResetTarget::Timestamp`]: the first offset at or after the
    /// time, `None` when no record is that new.
    pub at_time: Option<i64>,
}

/// The offset `target` moves `offsets` to, clamped into
/// [earliest, latest].
///
/// # Errors
///
/// [`ResetTarget::ShiftBy`] on a partition without a committed offset;
/// log bounds that make no sense.
pub fn new_offset(target: ResetTarget, offsets: &PartitionOffsets) -> Result<i64, String> {
    if offsets.earliest < 0 || offsets.earliest > offsets.latest {
        return Err(format!(
            "the broker reports log start {} and log end {}",
            offsets.earliest, offsets.latest
        ));
    }
    let wanted = match target {
        ResetTarget::Earliest => offsets.earliest,
        ResetTarget::Latest => offsets.latest,
        ResetTarget::Offset(offset) => offset,
        ResetTarget::ShiftBy(shift) => match offsets.committed {
            Some(committed) => committed.saturating_add(shift),
            None => {
                return Err(
                    "has no committed offset to shift; reset it with --to-earliest, \
                     --to-latest, --to-offset or --to-datetime"
                        .to_string(),
                )
            }
        },
        ResetTarget::Timestamp(_) => offsets.at_time.unwrap_or(offsets.latest),
    };
    Ok(wanted.clamp(offsets.earliest, offsets.latest))
}

/// Runs the command; `Ok` holds the failures of single items (groups,
/// partitions) when the rest went through.
pub(super) fn execute(args: &GroupArgs) -> Result<Vec<ClientError>, ClientError> {
    let mut client = args.broker.connect(CLIENT_ID)?;
    match &args.command {
        GroupCommand::List { states } => {
            let version = client.version::<ListGroupsRequest>()?;
            let response = client.call(version, &list_groups_request(version, states))?;
            let mut groups = listed_groups(client.address(), &response)?;
            if version < LIST_GROUPS_STATES_VERSION && !groups.is_empty() {
                let ids: Vec<String> = groups.iter().map(|g| g.group.clone()).collect();
                let described = describe(&mut client, &ids)?;
                fill_states(client.address(), &mut groups, &described)?;
            }
            print!("{}", render_group_list(groups, states));
            Ok(Vec::new())
        }
        GroupCommand::Describe { group } => {
            describe_one(&mut client, group, args.broker.timeout_ms_i32())?;
            Ok(Vec::new())
        }
        GroupCommand::Delete { groups } => {
            let mut unique: Vec<String> = Vec::with_capacity(groups.len());
            for group in groups {
                if !unique.contains(group) {
                    unique.push(group.clone());
                }
            }
            let version = client.version::<DeleteGroupsRequest>()?;
            let response = client.call(version, &delete_groups_request(&unique))?;
            let mut failures = Vec::new();
            for (group, failure) in delete_results(client.address(), &unique, &response)? {
                match failure {
                    None => println!("deleted group {group}"),
                    Some(err) => failures.push(err),
                }
            }
            Ok(failures)
        }
        GroupCommand::ResetOffsets(reset) => {
            reset_offsets(&mut client, reset, args.broker.timeout_ms_i32())
        }
    }
}

fn describe(client: &mut Client, groups: &[String]) -> Result<DescribeGroupsResponse, ClientError> {
    let version = client.version::<DescribeGroupsRequest>()?;
    client.call(version, &describe_groups_request(groups))
}

fn fetch_committed(
    client: &mut Client,
    group: &str,
    partitions: Option<(&str, &[i32])>,
) -> Result<Committed, ClientError> {
    let version = client.version_from::<OffsetFetchRequest>(OFFSET_FETCH_VERSION_MIN)?;
    let response = client.call(version, &offset_fetch_request(version, group, partitions))?;
    committed_offsets(client.address(), version, group, &response)
}

fn list_offsets(
    client: &mut Client,
    timestamp: i64,
    partitions: &BTreeSet<(String, i32)>,
    timeout_ms: i32,
) -> Result<ListedOffsets, ClientError> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let version = client.version::<ListOffsetsRequest>()?;
    let response = client.call(
        version,
        &list_offsets_request(timestamp, partitions, timeout_ms),
    )?;
    Ok(listed_offsets(&response))
}

fn describe_one(client: &mut Client, group: &str, timeout_ms: i32) -> Result<(), ClientError> {
    let groups = [group.to_string()];
    let response = describe(client, &groups)?;
    let described = described_group(client.address(), group, &response)?;
    let committed = fetch_committed(client, group, None)?;
    if described.group_state.as_str() == "Dead"
        && described.members.is_empty()
        && committed.is_empty()
    {
        return Err(kafka_error(
            group.to_string(),
            ResponseError::GroupIdNotFound,
            "no such group",
        ));
    }
    let mut partitions: BTreeSet<(String, i32)> = committed.keys().cloned().collect();
    for member in &described.members {
        if let Assignment::Partitions(topics) =
            decode_assignment(&described.protocol_type, &member.member_assignment)
        {
            for (topic, indexes) in topics {
                partitions.extend(indexes.into_iter().map(|p| (topic.clone(), p)));
            }
        }
    }
    let log_ends = list_offsets(client, LATEST_TIMESTAMP, &partitions, timeout_ms)?;
    print!("{}", render_description(described, &committed, &log_ends));
    Ok(())
}

/// Refuses unless the group has no members.
///
/// # Errors
///
/// [`ClientError::Refused`] naming the state and member count.
pub fn check_resettable(group: &str, described: &DescribedGroup) -> Result<(), ClientError> {
    let state = described.group_state.as_str();
    if RESETTABLE_STATES.contains(&state) && described.members.is_empty() {
        return Ok(());
    }
    let count = described.members.len();
    Err(ClientError::Refused {
        subject: group.to_string(),
        why: format!(
            "the group has {count} active member{} (state {state}); offsets can only be \
             reset while it has none: stop its consumers first",
            if count == 1 { "" } else { "s" }
        ),
    })
}

/// The offset ListOffsets (asked for `what`) answered for `key`.
fn listed_offset(
    address: &str,
    answers: &ListedOffsets,
    key: &(String, i32),
    what: &str,
) -> Result<Option<i64>, ClientError> {
    let subject = partition_subject(&key.0, key.1);
    match answers.get(key) {
        Some(Ok(offset)) => Ok(*offset),
        Some(Err(error)) => Err(ClientError::Kafka {
            subject,
            error: *error,
            message: None,
        }),
        None => Err(protocol_error(
            address,
            format!("the ListOffsets answer ({what}) does not mention {subject}"),
        )),
    }
}

fn reset_offsets(
    client: &mut Client,
    args: &ResetArgs,
    timeout_ms: i32,
) -> Result<Vec<ClientError>, ClientError> {
    let group = args.group.as_str();
    let topic = args.topic.as_str();
    let groups = [group.to_string()];
    let response = describe(client, &groups)?;
    match described_group(client.address(), group, &response) {
        Ok(described) => check_resettable(group, described)?,
        // DescribeGroups v6+ names an unknown group so; it has no members.
        Err(ClientError::Kafka {
            error: ResponseError::GroupIdNotFound,
            ..
        }) => {}
        Err(err) => return Err(err),
    }
    let version = client.version::<MetadataRequest>()?;
    let metadata = client.call(version, &metadata_request(version, Some(topic)))?;
    let partitions = topic_partitions(client.address(), topic, &args.partitions, &metadata)?;
    let committed = fetch_committed(client, group, Some((topic, &partitions)))?;
    let keys: BTreeSet<(String, i32)> =
        partitions.iter().map(|p| (topic.to_string(), *p)).collect();
    let earliest = list_offsets(client, EARLIEST_TIMESTAMP, &keys, timeout_ms)?;
    let latest = list_offsets(client, LATEST_TIMESTAMP, &keys, timeout_ms)?;
    let target = args.target();
    let at_time = match target {
        ResetTarget::Timestamp(timestamp_ms) => {
            list_offsets(client, timestamp_ms, &keys, timeout_ms)?
        }
        _ => BTreeMap::new(),
    };
    let address = client.address().to_string();
    let mut plan = Vec::with_capacity(keys.len());
    for key in &keys {
        let bound = |answers: &ListedOffsets, what: &str| {
            listed_offset(&address, answers, key, what)?.ok_or_else(|| ClientError::Refused {
                subject: partition_subject(&key.0, key.1),
                why: format!("the broker reports no {what} offset"),
            })
        };
        let offsets = PartitionOffsets {
            partition: key.1,
            committed: committed.get(key).copied(),
            earliest: bound(&earliest, "earliest")?,
            latest: bound(&latest, "latest")?,
            at_time: match target {
                ResetTarget::Timestamp(_) => listed_offset(&address, &at_time, key, "by time")?,
                _ => None,
            },
        };
        let new = new_offset(target, &offsets).map_err(|why| ClientError::Refused {
            subject: format!("{group}: {}", partition_subject(topic, key.1)),
            why,
        })?;
        plan.push((offsets, new));
    }
    if args.dry_run {
        print!("{}", render_reset(topic, &plan));
        println!("dry run: nothing committed");
        return Ok(Vec::new());
    }
    let offsets: Vec<(i32, i64)> = plan.iter().map(|(o, new)| (o.partition, *new)).collect();
    let version = client.version::<OffsetCommitRequest>()?;
    let response = client.call(version, &offset_commit_request(group, topic, &offsets))?;
    let (done, mut failures) = commit_results(group, &response);
    let answered = done.len() + failures.len();
    plan.retain(|(o, _)| done.contains(&(topic.to_string(), o.partition)));
    if answered < offsets.len() {
        failures.push(protocol_error(
            &address,
            format!(
                "the OffsetCommit answer mentions {answered} of the {} partitions committed",
                offsets.len()
            ),
        ));
    }
    if !plan.is_empty() {
        print!("{}", render_reset(topic, &plan));
        println!(
            "group {group}: committed {} offsets on topic {topic}",
            plan.len()
        );
    }
    Ok(failures)
}
