//! `ringlog group`: list, describe and delete consumer groups and reset
//! their committed offsets, over the Kafka protocol (the shared admin
//! client of [`crate::kafka_client`]), like Kafka's
//! `kafka-consumer-groups.sh`.
//!
//! Why it is built this way:
//!
//! * One broker. Every request goes to `--bootstrap`: ringlog is a single
//!   broker that coordinates every group and leads every partition. On a
//!   multi-broker Kafka cluster a broker that is not the group's
//!   coordinator answers NOT_COORDINATOR (printed like any Kafka error),
//!   and one that does not lead a partition NOT_LEADER_OR_FOLLOWER (shown
//!   as that partition's log end).
//! * `describe` joins three answers: DescribeGroups (state, members and
//!   their assignments), OffsetFetch with a null topic list (every
//!   partition the group committed) and ListOffsets latest (the log end),
//!   whose difference is the lag. OffsetFetch v1 cannot carry a null list,
//!   so it is never sent; v8+ asks through the `groups` array, older
//!   versions through the single-group fields.
//! * Assignments are shown decoded when the group speaks the `consumer`
//!   protocol (the embedded ConsumerProtocolAssignment: a version, then
//!   topics and partitions); anything else, or bytes that do not decode,
//!   are shown as bytes, so a foreign protocol never fails the command.
//! * `reset-offsets` refuses while the group has members: a live member
//!   would overwrite the reset with its next commit. It commits the way a
//!   tool outside the group does (generation -1, empty member id), and
//!   clamps every new offset into [earliest, latest] like Kafka's tool, so
//!   a reset never points outside the log.
//! * Up to DescribeGroups v5 an unknown group is answered as state `Dead`
//!   with no members; v6 answers GROUP_ID_NOT_FOUND. `describe` reports
//!   both as GROUP_ID_NOT_FOUND (when the group has no committed offsets
//!   either), so the outcome does not depend on the version.
//!
//! The request builders, the offset arithmetic and the renderers are pure
//! functions, so the tests check them with bytes made by the broker-side
//! codecs, without a broker.

use crate::kafka_client::{
    check_error, exit_code, render_table, str_bytes, topic_name, BrokerArgs, Client, ClientError,
};
use crate::topic::metadata_request;
use bytes::Bytes;
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Message};
use kafka_protocol::ResponseError;
use ringlog_protocol::client::error_name;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-group";
/// The protocol type of Kafka consumers, whose assignments this command
/// can decode.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// ListOffsets marker timestamp for the log start.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets marker timestamp for the log end.
pub const LATEST_TIMESTAMP: i64 = -1;
/// Lowest OffsetFetch version sent: v1 cannot ask for every partition.
pub const OFFSET_FETCH_VERSION_MIN: i16 = 2;
/// OffsetFetch version that names groups in the `groups` array.
pub const OFFSET_FETCH_GROUPS_VERSION: i16 = 8;
/// ListGroups version that reports states and filters by them.
pub const LIST_GROUPS_STATES_VERSION: i16 = 4;
/// The group states Kafka reports, in its spelling.
pub const GROUP_STATES: &[&str] = &[
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
];
/// States in which a group has no members, so its offsets may be reset.
pub const RESETTABLE_STATES: &[&str] = &["Empty", "Dead"];
/// Bytes of an undecodable assignment shown in hex; the rest are counted.
pub const ASSIGNMENT_HEX_BYTES_MAX: usize = 32;
/// Groups one `delete` may name (one DeleteGroups request).
pub const DELETE_GROUPS_MAX: usize = 1000;

const _: () = assert!(OFFSET_FETCH_VERSION_MIN < OFFSET_FETCH_GROUPS_VERSION);
const _: () = assert!(EARLIEST_TIMESTAMP < LATEST_TIMESTAMP && LATEST_TIMESTAMP < 0);

/// `ringlog group` and its options.
#[derive(Args)]
pub struct GroupArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

/// The `ringlog group` subcommands.
#[derive(Subcommand)]
pub enum GroupCommand {
    /// List every consumer group with its state and protocol type.
    List {
        /// Only groups in this state (Stable, Empty, PreparingRebalance,
        /// CompletingRebalance, Dead, ...); repeat or comma-separate for several.
        #[arg(
            long = "state",
            value_name = "STATE",
            value_delimiter = ',',
            value_parser = parse_state
        )]
        states: Vec<String>,
    },
    /// Show a group's state, committed offsets, log ends, lag and members.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        /// Group ids.
        #[arg(required = true, num_args = 1..=DELETE_GROUPS_MAX)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets on a topic (the group must have no members).
    ResetOffsets(ResetArgs),
}

/// `ringlog group reset-offsets` options.
#[derive(Args)]
#[command(group(
    ArgGroup::new("target")
        .args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])
        .required(true)
))]
pub struct ResetArgs {
    /// Group id.
    group: String,
    /// The topic whose offsets to reset.
    #[arg(long)]
    topic: String,
    /// Only these partitions (comma-separated); default every partition.
    #[arg(
        long,
        value_name = "P,P,...",
        value_delimiter = ',',
        value_parser = clap::value_parser!(i32).range(0..)
    )]
    partitions: Vec<i32>,
    /// To the log start.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped into the log).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    to_offset: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped into the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// To the first record at or after this time: RFC 3339
    /// (2024-05-01T12:00:00Z, 2024-05-01T14:00:00.5+02:00) or epoch milliseconds.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime_ms)]
    to_datetime: Option<i64>,
    /// Print the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
}

impl ResetArgs {
    fn target(&self) -> ResetTarget {
        match (self.to_offset, self.shift_by, self.to_datetime) {
            _ if self.to_earliest => ResetTarget::Earliest,
            _ if self.to_latest => ResetTarget::Latest,
            (Some(offset), _, _) => ResetTarget::Offset(offset),
            (_, Some(shift), _) => ResetTarget::ShiftBy(shift),
            (_, _, Some(timestamp_ms)) => ResetTarget::Timestamp(timestamp_ms),
            (None, None, None) => unreachable!("clap requires one reset target"),
        }
    }
}

/// Where `reset-offsets` moves each partition's committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetTarget {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// This offset.
    Offset(i64),
    /// The committed offset plus this (may be negative).
    ShiftBy(i64),
    /// The first offset whose record is at or after this time (ms since
    /// the epoch); the log end when there is none.
    Timestamp(i64),
}

/// A group state given to `--state`, in Kafka's spelling; any case is
/// accepted.
pub fn parse_state(text: &str) -> Result<String, String> {
    GROUP_STATES
        .iter()
        .find(|state| state.eq_ignore_ascii_case(text))
        .map(|state| state.to_string())
        .ok_or_else(|| {
            format!(
                "{text:?} is not a group state (one of {})",
                GROUP_STATES.join(", ")
            )
        })
}

/// Milliseconds since the Unix epoch of `text`: a non-negative integer
/// (already milliseconds), or an RFC 3339 date-time such as
/// `2024-05-01T12:00:00Z` or `2024-05-01t14:00:00.250+02:00` (fractions
/// beyond milliseconds are dropped).
pub fn parse_datetime_ms(text: &str) -> Result<i64, String> {
    let invalid = |why: &str| {
        format!("{text:?} is not RFC 3339 (like 2024-05-01T12:00:00Z) or epoch milliseconds: {why}")
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|_| invalid("too large"));
    }
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Result<i64, String> {
        match bytes.get(range.clone()) {
            Some(part) if part.iter().all(u8::is_ascii_digit) => Ok(part
                .iter()
                .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'))),
            _ => Err(invalid(&format!("expected digits at byte {}", range.start))),
        }
    };
    let separator = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match bytes.get(at) {
            Some(b) if allowed.contains(b) => Ok(()),
            _ => Err(invalid(&format!(
                "expected {:?} at byte {at}",
                String::from_utf8_lossy(allowed)
            ))),
        }
    };
    let year = digits(0..4)?;
    separator(4, b"-")?;
    let month = digits(5..7)?;
    separator(7, b"-")?;
    let day = digits(8..10)?;
    separator(10, b"Tt ")?;
    let hour = digits(11..13)?;
    separator(13, b":")?;
    let minute = digits(14..16)?;
    separator(16, b":")?;
    let second = digits(17..19)?;
    let mut at = 19;
    let mut fraction_ms = 0;
    if bytes.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err(invalid("no digits after '.'"));
        }
        // The first three digits are milliseconds; pad shorter fractions.
        let kept = &text[start..at.min(start + 3)];
        fraction_ms = format!("{kept:0<3}")
            .parse::<i64>()
            .map_err(|e| invalid(&e.to_string()))?;
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() => {
            let hours = digits(at + 1..at + 3)?;
            separator(at + 3, b":")?;
            let minutes = digits(at + 4..at + 6)?;
            if hours > 23 || minutes > 59 {
                return Err(invalid("UTC offset out of range"));
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(invalid("expected Z or a UTC offset like +02:00 at the end")),
    };
    if !(1..=12).contains(&month) {
        return Err(invalid("month out of range"));
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return Err(invalid("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(invalid("time of day out of range"));
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    let ms = seconds * 1000 + fraction_ms;
    if ms < 0 {
        return Err(invalid("before 1970-01-01T00:00:00Z"));
    }
    Ok(ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm: count in 400-year eras that start on
/// March 1st, so the leap day is the last day of its year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    assert!((1..=12).contains(&month) && (1..=31).contains(&day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

// ---------------------------------------------------------------- requests

/// ListGroups, filtered by `states` where the version can say so (v4+).
pub fn list_groups_request(version: i16, states: &[String]) -> ListGroupsRequest {
    let request = ListGroupsRequest::default();
    if version >= LIST_GROUPS_STATES_VERSION {
        request.with_states_filter(states.iter().map(|s| str_bytes(s)).collect())
    } else {
        request
    }
}

/// DescribeGroups of `groups`.
pub fn describe_groups_request(groups: &[String]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| group_id(g)).collect())
}

/// DeleteGroups of `groups`.
pub fn delete_groups_request(groups: &[String]) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| group_id(g)).collect())
}

/// OffsetFetch of `group`'s committed offsets: of `partitions` of `topic`,
/// or (`None`) of every partition it committed. v8+ names the group in
/// the `groups` array, earlier versions in the single-group fields.
pub fn offset_fetch_request(
    version: i16,
    group: &str,
    partitions: Option<(&str, &[i32])>,
) -> OffsetFetchRequest {
    assert!(
        version >= OFFSET_FETCH_VERSION_MIN,
        "v1 cannot ask for every partition"
    );
    if version >= OFFSET_FETCH_GROUPS_VERSION {
        let topics = partitions.map(|(topic, indexes)| {
            vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(indexes.to_vec())]
        });
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(topics)])
    } else {
        let topics = partitions.map(|(topic, indexes)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(indexes.to_vec())]
        });
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics)
    }
}

/// ListOffsets of `partitions` (topic, index) at `timestamp` (a time in
/// ms, or [`EARLIEST_TIMESTAMP`] / [`LATEST_TIMESTAMP`]), as a consumer
/// asks (replica -1, uncommitted records visible).
pub fn list_offsets_request(
    timestamp: i64,
    partitions: &BTreeSet<(String, i32)>,
    timeout_ms: i32,
) -> ListOffsetsRequest {
    assert!(timestamp >= EARLIEST_TIMESTAMP);
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(*partition)
                .with_timestamp(timestamp),
        );
    }
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_timeout_ms(timeout_ms)
}

/// OffsetCommit of `offsets` (partition, offset) of `topic` for `group`,
/// as a tool outside the group commits: generation -1, no member id.
pub fn offset_commit_request(
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(str_bytes(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(partition, offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*partition)
                            .with_committed_offset(*offset)
                    })
                    .collect(),
            )])
}

fn group_id(group: &str) -> GroupId {
    GroupId(str_bytes(group))
}

// ---------------------------------------------------------------- answers

/// How a partition is named in messages.
pub fn partition_subject(topic: &str, partition: i32) -> String {
    format!("topic {topic} partition {partition}")
}

fn kafka_error(subject: String, error: ResponseError, message: &str) -> ClientError {
    ClientError::Kafka {
        subject,
        error,
        message: Some(message.to_string()),
    }
}

fn protocol_error(address: &str, why: String) -> ClientError {
    ClientError::Protocol {
        address: address.to_string(),
        why,
    }
}

/// The entry of an `api` answer's list whose `key` is `wanted`.
fn mentioned<'a, T>(
    address: &str,
    api: &str,
    entries: &'a [T],
    wanted: &str,
    key: impl Fn(&T) -> &str,
) -> Result<&'a T, ClientError> {
    entries
        .iter()
        .find(|entry| key(entry) == wanted)
        .ok_or_else(|| {
            protocol_error(
                address,
                format!("the {api} answer does not mention {wanted:?}"),
            )
        })
}

/// `group` from a DescribeGroups answer.
///
/// # Errors
///
/// The group's error, or an answer without it.
pub fn described_group<'a>(
    address: &str,
    group: &str,
    response: &'a DescribeGroupsResponse,
) -> Result<&'a DescribedGroup, ClientError> {
    let found = mentioned(address, "DescribeGroups", &response.groups, group, |g| {
        g.group_id.0.as_str()
    })?;
    check_error(group, found.error_code, found.error_message.as_ref())?;
    Ok(found)
}

/// A group's committed offsets by (topic, partition); partitions without
/// a commit (offset -1) are left out.
pub type Committed = BTreeMap<(String, i32), i64>;

/// (topic, partition, committed offset, error code) of every partition of
/// the topics of an OffsetFetch answer: the v8+ layout and the older one
/// have distinct types with the same fields.
macro_rules! fetched_partitions {
    ($topics:expr) => {
        $topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let topic = t.name.0.as_str();
                    (topic, p.partition_index, p.committed_offset, p.error_code)
                })
            })
            .collect::<Vec<_>>()
    };
}

/// The committed offsets in an OffsetFetch answer of `version` for `group`.
///
/// # Errors
///
/// The group's or a partition's error, or an answer without the group.
pub fn committed_offsets(
    address: &str,
    version: i16,
    group: &str,
    response: &OffsetFetchResponse,
) -> Result<Committed, ClientError> {
    let rows = if version >= OFFSET_FETCH_GROUPS_VERSION {
        let found = mentioned(address, "OffsetFetch", &response.groups, group, |g| {
            g.group_id.0.as_str()
        })?;
        check_error(group, found.error_code, None)?;
        fetched_partitions!(found.topics)
    } else {
        check_error(group, response.error_code, None)?;
        fetched_partitions!(response.topics)
    };
    let mut committed = Committed::new();
    for (topic, partition, offset, error_code) in rows {
        check_error(&partition_subject(topic, partition), error_code, None)?;
        if offset >= 0 {
            committed.insert((topic.to_string(), partition), offset);
        }
    }
    Ok(committed)
}

/// What ListOffsets answered by (topic, partition): an offset, `None`
/// when there is none (no record at or after the time asked), or the
/// partition's error.
pub type ListedOffsets = BTreeMap<(String, i32), Result<Option<i64>, ResponseError>>;

/// The offset (or the error) of every partition in a ListOffsets answer.
/// An offset of -1 (no record at or after the time asked) is `Ok(None)`.
pub fn listed_offsets(response: &ListOffsetsResponse) -> ListedOffsets {
    let mut out = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let answer = match ResponseError::try_from_code(p.error_code) {
                Some(error) => Err(error),
                None if p.offset >= 0 => Ok(Some(p.offset)),
                None => Ok(None),
            };
            out.insert((topic.name.0.to_string(), p.partition_index), answer);
        }
    }
    out
}

/// The partitions of `topic` in a Metadata answer, sorted; `wanted` (if
/// not empty) must all be among them and is what is returned.
///
/// # Errors
///
/// The topic's error, an answer without it, or a wanted partition it
/// does not have.
pub fn topic_partitions(
    address: &str,
    topic: &str,
    wanted: &[i32],
    response: &kafka_protocol::messages::MetadataResponse,
) -> Result<Vec<i32>, ClientError> {
    check_error(address, response.error_code, None)?;
    let found = mentioned(address, "Metadata", &response.topics, topic, |t| {
        t.name.as_ref().map_or("", |n| n.0.as_str())
    })?;
    check_error(&format!("topic {topic}"), found.error_code, None)?;
    let all: BTreeSet<i32> = found.partitions.iter().map(|p| p.partition_index).collect();
    if wanted.is_empty() {
        return Ok(all.into_iter().collect());
    }
    let wanted: BTreeSet<i32> = wanted.iter().copied().collect();
    if let Some(missing) = wanted.iter().find(|p| !all.contains(p)) {
        return Err(ClientError::Refused {
            subject: format!("topic {topic}"),
            why: format!(
                "has no partition {missing} (it has {} partitions)",
                all.len()
            ),
        });
    }
    Ok(wanted.into_iter().collect())
}

/// Per-partition errors of an OffsetCommit answer, as failures; the
/// partitions committed.
pub fn commit_results(
    group: &str,
    response: &OffsetCommitResponse,
) -> (Vec<(String, i32)>, Vec<ClientError>) {
    let mut committed = Vec::new();
    let mut failures = Vec::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let subject = format!(
                "{group}: {}",
                partition_subject(&topic.name.0, p.partition_index)
            );
            match check_error(&subject, p.error_code, None) {
                Ok(()) => committed.push((topic.name.0.to_string(), p.partition_index)),
                Err(err) => failures.push(err),
            }
        }
    }
    (committed, failures)
}

/// What DeleteGroups did to each of `groups`: `None` when deleted. The
/// errors a person meets here are explained.
///
/// # Errors
///
/// An answer without one of the groups.
pub fn delete_results(
    address: &str,
    groups: &[String],
    response: &DeleteGroupsResponse,
) -> Result<Vec<(String, Option<ClientError>)>, ClientError> {
    groups
        .iter()
        .map(|group| {
            let result = mentioned(address, "DeleteGroups", &response.results, group, |r| {
                r.group_id.0.as_str()
            })?;
            let failure = ResponseError::try_from_code(result.error_code).map(|error| {
                let why = match error {
                    ResponseError::NonEmptyGroup => {
                        "the group still has members; stop its consumers first"
                    }
                    ResponseError::GroupIdNotFound => "no such group",
                    _ => "",
                };
                ClientError::Kafka {
                    subject: group.clone(),
                    error,
                    message: Some(why.to_string()),
                }
            });
            Ok((group.clone(), failure))
        })
        .collect()
}

// ---------------------------------------------------------------- rendering

/// A group as `ringlog group list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group: String,
    /// Kafka's state name; empty until known (ListGroups before v4 does
    /// not say).
    pub state: String,
    /// Protocol type (`consumer` for Kafka consumers, empty for groups
    /// that only hold committed offsets).
    pub protocol_type: String,
}

/// The groups in a ListGroups answer.
///
/// # Errors
///
/// The answer's error.
pub fn listed_groups(
    address: &str,
    response: &ListGroupsResponse,
) -> Result<Vec<ListedGroup>, ClientError> {
    check_error(address, response.error_code, None)?;
    Ok(response
        .groups
        .iter()
        .map(|g| ListedGroup {
            group: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
        })
        .collect())
}

/// Fills in the states of `groups` from a DescribeGroups answer (for
/// brokers whose ListGroups does not report them).
///
/// # Errors
///
/// A group missing from the answer, or its error.
pub fn fill_states(
    address: &str,
    groups: &mut [ListedGroup],
    response: &DescribeGroupsResponse,
) -> Result<(), ClientError> {
    for listed in groups.iter_mut() {
        listed.state = described_group(address, &listed.group, response)?
            .group_state
            .to_string();
    }
    Ok(())
}

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

/// A member's assignment as the group's protocol carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// No assignment (the group is rebalancing, or the member has none).
    Empty,
    /// Partitions by topic, decoded from the `consumer` protocol.
    Partitions(BTreeMap<String, Vec<i32>>),
    /// Bytes of another protocol, or that do not decode.
    Opaque(Bytes),
}

/// Decodes a member's assignment: a ConsumerProtocolAssignment (an i16
/// version, then the body) when `protocol_type` is `consumer`. Versions
/// newer than `kafka-protocol` knows are read as the newest it knows: they
/// only add fields at the end.
pub fn decode_assignment(protocol_type: &str, bytes: &Bytes) -> Assignment {
    if bytes.is_empty() {
        return Assignment::Empty;
    }
    if protocol_type != CONSUMER_PROTOCOL_TYPE {
        return Assignment::Opaque(bytes.clone());
    }
    let mut buf = bytes.clone();
    let Some(version_bytes) = buf.get(..2) else {
        return Assignment::Opaque(bytes.clone());
    };
    let version = i16::from_be_bytes([version_bytes[0], version_bytes[1]]);
    if version < 0 {
        return Assignment::Opaque(bytes.clone());
    }
    let _ = buf.split_to(2);
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(assignment) => {
            let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for topic in assignment.assigned_partitions {
                partitions
                    .entry(topic.topic.0.to_string())
                    .or_default()
                    .extend(topic.partitions);
            }
            for indexes in partitions.values_mut() {
                indexes.sort_unstable();
                indexes.dedup();
            }
            Assignment::Partitions(partitions)
        }
        Err(_) => Assignment::Opaque(bytes.clone()),
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

// ---------------------------------------------------------------- running

/// Runs `ringlog group`: prints the result on stdout and returns 0, or
/// prints each failure as `ringlog group: <error>` on stderr and returns 1.
pub fn run(args: GroupArgs) -> ExitCode {
    let failures = match execute(&args) {
        Ok(failures) => failures,
        Err(err) => vec![err],
    };
    exit_code("group", failures)
}

/// Runs the command; `Ok` holds the failures of single items (groups,
/// partitions) when the rest went through.
fn execute(args: &GroupArgs) -> Result<Vec<ClientError>, ClientError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The message `--to-datetime` shows for `text`, rejected because of `why`.
    fn rejection(text: &str, why: &str) -> String {
        format!("{text:?} is not RFC 3339 (like 2024-05-01T12:00:00Z) or epoch milliseconds: {why}")
    }

    #[test]
    fn datetimes_give_exact_epoch_milliseconds() {
        for (text, ms) in [
            // Epoch milliseconds, as given.
            ("0", 0),
            ("00001", 1),
            ("1714564800000", 1_714_564_800_000),
            ("9223372036854775807", i64::MAX),
            // UTC, with every spelling of the separators.
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01t12:00:00z", 1_714_564_800_000),
            ("2024-05-01 12:00:00Z", 1_714_564_800_000),
            ("1999-12-31T23:59:59Z", 946_684_799_000),
            ("2000-01-01T00:00:00Z", 946_684_800_000),
            // Leap years: every 4th, not every 100th, every 400th.
            ("1972-02-29T00:00:00Z", 68_169_600_000),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("2024-02-29T23:59:59+00:00", 1_709_251_199_000),
            ("2100-02-28T23:59:59Z", 4_107_542_399_000),
            ("2100-03-01T00:00:00Z", 4_107_542_400_000),
            ("2400-02-29T00:00:00Z", 13_574_563_200_000),
            // Fractions: milliseconds, padded or truncated (never rounded).
            ("1970-01-01T00:00:00.001Z", 1),
            ("1970-01-01T00:00:00.1Z", 100),
            ("1970-01-01T00:00:00.12Z", 120),
            ("1970-01-01T00:00:00.123Z", 123),
            ("1970-01-01T00:00:00.1239Z", 123),
            ("1970-01-01T00:00:00.000000001Z", 0),
            ("1970-01-01T00:00:00.12345678901234567890Z", 123),
            ("2024-12-31T23:59:59.999Z", 1_735_689_599_999),
            // Offsets: local time minus the offset.
            ("1970-01-01T01:00:00+01:00", 0),
            ("1970-01-01T00:00:00-00:00", 0),
            ("1970-01-01T00:00:00-23:59", 86_340_000),
            ("2024-01-01T00:00:00+23:59", 1_703_980_860_000),
            ("2024-05-01T14:00:00.5+02:00", 1_714_564_800_500),
            ("2024-05-01T14:00:00.500999+02:00", 1_714_564_800_500),
            ("2024-05-01T17:45:00+05:45", 1_714_564_800_000),
            ("2000-03-01T00:00:00-00:30", 951_870_600_000),
            // The last representable instants.
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
            ("9999-12-31T23:59:59-23:59", 253_402_387_139_000),
        ] {
            assert_eq!(parse_datetime_ms(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn every_month_ends_on_its_last_day() {
        const LAST_DAYS: [(i64, [i64; 12]); 4] = [
            (2023, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
            (2024, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
            (2100, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
            (2000, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
        ];
        const DAY_MS: i64 = 86_400_000;
        for (year, last_days) in LAST_DAYS {
            for (month, last) in (1..=12).zip(last_days) {
                let last_day = format!("{year}-{month:02}-{last:02}T00:00:00Z");
                let after = format!("{year}-{month:02}-{:02}T00:00:00Z", last + 1);
                let next = if month == 12 {
                    format!("{}-01-01T00:00:00Z", year + 1)
                } else {
                    format!("{year}-{:02}-01T00:00:00Z", month + 1)
                };
                assert_eq!(
                    parse_datetime_ms(&last_day).map(|ms| ms + DAY_MS),
                    parse_datetime_ms(&next),
                    "{last_day} is the day before {next}"
                );
                assert_eq!(
                    parse_datetime_ms(&after),
                    Err(rejection(&after, "day out of range"))
                );
            }
        }
    }

    #[test]
    fn bad_datetimes_are_refused_with_the_reason() {
        assert_eq!(
            parse_datetime_ms("2024-05-01"),
            Err(
                "\"2024-05-01\" is not RFC 3339 (like 2024-05-01T12:00:00Z) or epoch \
                 milliseconds: expected \"Tt \" at byte 10"
                    .to_string()
            )
        );
        for (text, why) in [
            ("", "expected digits at byte 0"),
            ("yesterday", "expected digits at byte 0"),
            ("-5", "expected digits at byte 0"),
            ("+5", "expected digits at byte 0"),
            ("99999999999999999999", "too large"),
            ("24-05-01T12:00:00Z", "expected digits at byte 0"),
            ("2024/05/01T12:00:00Z", "expected \"-\" at byte 4"),
            ("2024-5-01T12:00:00Z", "expected digits at byte 5"),
            ("2024-05-0\u{ff11}T00:00:00Z", "expected digits at byte 8"),
            ("2024-05-01_12:00:00Z", "expected \"Tt \" at byte 10"),
            ("2024-05-01T12:00Z", "expected \":\" at byte 16"),
            (
                "2024-05-01T12:00:00",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            ("2024-05-01T12:00:00.Z", "no digits after '.'"),
            (
                "2024-05-01T12:00:00,5Z",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            (
                "2024-05-01T12:00:00+0200",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            (
                "2024-05-01T12:00:00+02",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            ("2024-05-01T12:00:00+02:0x", "expected digits at byte 23"),
            ("2024-05-01T12:00:00+02-00", "expected \":\" at byte 22"),
            ("2024-05-01T12:00:00+24:00", "UTC offset out of range"),
            ("2024-05-01T12:00:00-00:60", "UTC offset out of range"),
            (
                "2024-05-01T12:00:00Zjunk",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            (
                "2024-05-01T12:00:00Z[UTC]",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            ("2024-00-01T00:00:00Z", "month out of range"),
            ("2024-13-01T00:00:00Z", "month out of range"),
            ("2024-13-45T25:61:61Z", "month out of range"),
            ("2024-05-00T00:00:00Z", "day out of range"),
            ("2023-02-29T00:00:00Z", "day out of range"),
            ("2100-02-29T00:00:00Z", "day out of range"),
            ("2024-04-31T00:00:00Z", "day out of range"),
            ("2023-02-29T24:00:00Z", "day out of range"),
            ("2024-05-01T24:00:00Z", "time of day out of range"),
            ("2024-05-01T23:60:00Z", "time of day out of range"),
            ("2024-05-01T23:59:60Z", "time of day out of range"),
            ("2024-05-01T24:00:00+24:00", "UTC offset out of range"),
            ("1969-12-31T23:59:59Z", "before 1970-01-01T00:00:00Z"),
            ("1969-12-31T23:59:59.999Z", "before 1970-01-01T00:00:00Z"),
            ("1970-01-01T00:00:00+00:01", "before 1970-01-01T00:00:00Z"),
            ("0000-03-01T00:00:00Z", "before 1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(parse_datetime_ms(text), Err(rejection(text, why)), "{text}");
        }
    }
}
