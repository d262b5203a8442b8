//! `ringlog group`: the client's requests decoded by the broker's own
//! request parser at every version ringlog advertises, the broker's
//! encoded answers read by the client, the pure parts (time parsing,
//! assignment decoding, offset arithmetic, rendering), and the command end
//! to end against a fake broker that records what it was sent.

mod common;

use bytes::{Bytes, BytesMut};
use common::{bodies, broker_parse, fake_broker, metadata_with, name, ringlog, s, text};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup as WireListedGroup;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsResponse, DescribeGroupsResponse, GroupId,
    ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use ringlog_protocol::api_versions::api_versions_response;
use ringlog_protocol::client::decode_response;
use ringlog_protocol::versions::supported;
use ringlog_protocol::Request;
use ringlog_tools::group::{
    check_resettable, committed_offsets, decode_assignment, delete_groups_request, delete_results,
    describe_groups_request, list_groups_request, list_offsets_request, new_offset,
    offset_commit_request, offset_fetch_request, parse_datetime_ms, parse_state,
    render_description, render_group_list, render_reset, Assignment, ListedGroup, PartitionOffsets,
    ResetTarget, CLIENT_ID, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP,
};
use ringlog_tools::kafka_client::ClientError;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Output;
use std::thread::JoinHandle;

/// A broker response frame without its size prefix, as the client reads it.
fn broker_answer(correlation_id: i32, key: ApiKey, version: i16, body: ResponseKind) -> Bytes {
    let frame = ringlog_protocol::encode_response(correlation_id, key, version, &body).unwrap();
    frame.slice(4..)
}

fn group_id(text: &str) -> GroupId {
    GroupId(s(text))
}

/// Every version of `key` ringlog's broker advertises.
fn advertised(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let entry = supported(key).expect("ringlog supports the group APIs");
    entry.min..=entry.max
}

fn parse<T>(version: i16, request: &T) -> Request
where
    T: kafka_protocol::protocol::Request,
{
    let parsed = broker_parse(CLIENT_ID, version, 7, request);
    assert_eq!(parsed.api_version, version);
    assert_eq!(parsed.client_id(), Some(CLIENT_ID));
    parsed
}

/// A `consumer` protocol assignment as a client's leader encodes it.
fn consumer_assignment(version: i16, topics: &[(&str, &[i32])]) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    TopicPartition::default()
                        .with_topic(name(topic))
                        .with_partitions(partitions.to_vec())
                })
                .collect(),
        )
        .with_user_data(None);
    let mut out = BytesMut::new();
    out.extend_from_slice(&version.to_be_bytes());
    assignment
        .encode(&mut out, version.min(3))
        .expect("a valid assignment");
    out.freeze()
}

/// (topic, partition indexes) of an OffsetFetch request's topic list in
/// the types of either layout; `None` asks for every partition.
macro_rules! asked_topics {
    ($topics:expr) => {
        $topics.as_ref().map(|topics| {
            let asked = topics.iter();
            asked
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect::<Vec<_>>()
        })
    };
}

/// (topic, partition, timestamp) of every partition a ListOffsets asks for.
fn asked_offsets(request: &ListOffsetsRequest) -> Vec<(String, i32, i64)> {
    let mut asked = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            asked.push((t.name.0.to_string(), p.partition_index, p.timestamp));
        }
    }
    asked
}

#[test]
fn requests_decode_with_the_broker_parser_at_every_version() {
    let states = vec!["Stable".to_string(), "Empty".to_string()];
    for version in advertised(ApiKey::ListGroups) {
        let RequestKind::ListGroups(body) =
            parse(version, &list_groups_request(version, &states)).body
        else {
            panic!()
        };
        let sent: Vec<&str> = body.states_filter.iter().map(|s| s.as_str()).collect();
        let expected: &[&str] = if version >= 4 {
            &["Stable", "Empty"]
        } else {
            &[]
        };
        assert_eq!(sent, expected, "v{version}");
    }

    let groups = vec!["billing".to_string(), "audit".to_string()];
    for version in advertised(ApiKey::DescribeGroups) {
        let RequestKind::DescribeGroups(body) =
            parse(version, &describe_groups_request(&groups)).body
        else {
            panic!()
        };
        assert_eq!(body.groups, vec![group_id("billing"), group_id("audit")]);
    }
    for version in advertised(ApiKey::DeleteGroups) {
        let RequestKind::DeleteGroups(body) = parse(version, &delete_groups_request(&groups)).body
        else {
            panic!()
        };
        assert_eq!(
            body.groups_names,
            vec![group_id("billing"), group_id("audit")]
        );
    }

    for version in advertised(ApiKey::OffsetFetch).filter(|v| *v >= 2) {
        for partitions in [None, Some(("orders", &[0, 2][..]))] {
            let request = offset_fetch_request(version, "billing", partitions);
            let RequestKind::OffsetFetch(body) = parse(version, &request).body else {
                panic!()
            };
            // (group, topics asked for: None for every partition)
            let (group, topics) = if version >= 8 {
                assert_eq!(body.groups.len(), 1, "v{version}");
                let g = &body.groups[0];
                (g.group_id.clone(), asked_topics!(g.topics))
            } else {
                assert!(body.groups.is_empty());
                (body.group_id.clone(), asked_topics!(body.topics))
            };
            assert_eq!(group, group_id("billing"), "v{version}");
            let expected = partitions.map(|(t, p)| vec![(t.to_string(), p.to_vec())]);
            assert_eq!(topics, expected, "v{version}");
        }
    }

    let partitions: BTreeSet<(String, i32)> = [("orders", 1), ("audit", 0), ("orders", 0)]
        .into_iter()
        .map(|(t, p)| (t.to_string(), p))
        .collect();
    for version in advertised(ApiKey::ListOffsets) {
        for timestamp in [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, 1_714_564_800_000] {
            let request = list_offsets_request(timestamp, &partitions, 3000);
            let RequestKind::ListOffsets(body) = parse(version, &request).body else {
                panic!()
            };
            assert_eq!(body.replica_id.0, -1, "a consumer, not a follower");
            assert_eq!(body.isolation_level, 0);
            assert_eq!(
                asked_offsets(&body),
                vec![
                    ("audit".to_string(), 0, timestamp),
                    ("orders".to_string(), 0, timestamp),
                    ("orders".to_string(), 1, timestamp)
                ],
                "v{version}"
            );
        }
    }

    for version in advertised(ApiKey::OffsetCommit) {
        let request = offset_commit_request("billing", "orders", &[(0, 5), (3, 0)]);
        let RequestKind::OffsetCommit(body) = parse(version, &request).body else {
            panic!()
        };
        assert_eq!(body.group_id, group_id("billing"));
        assert_eq!(body.generation_id_or_member_epoch, -1, "v{version}");
        assert_eq!(body.member_id.as_str(), "");
        assert_eq!(body.group_instance_id, None);
        assert_eq!(body.topics.len(), 1);
        assert_eq!(body.topics[0].name, name("orders"));
        let sent: Vec<(i32, i64)> = body.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        assert_eq!(sent, vec![(0, 5), (3, 0)], "v{version}");
    }
}

/// The topics of an OffsetFetch answer from (topic, partition, offset,
/// error code) rows, in the types of the v8+ layout or of the older one.
macro_rules! fetched_topics {
    ($topic:ident, $partition:ident, $rows:expr) => {{
        let mut topics: BTreeMap<&str, Vec<$partition>> = BTreeMap::new();
        for (topic, partition, offset, error) in $rows {
            let answer = $partition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset);
            topics
                .entry(topic)
                .or_default()
                .push(answer.with_error_code(*error));
        }
        topics
            .into_iter()
            .map(|(t, p)| $topic::default().with_name(name(t)).with_partitions(p))
            .collect()
    }};
}

fn fetch_v7(rows: &[(&str, i32, i64, i16)]) -> OffsetFetchResponse {
    OffsetFetchResponse::default().with_topics(fetched_topics!(
        OffsetFetchResponseTopic,
        OffsetFetchResponsePartition,
        rows
    ))
}

fn fetch_v8(group: &str, rows: &[(&str, i32, i64, i16)]) -> OffsetFetchResponse {
    let topics = fetched_topics!(
        OffsetFetchResponseTopics,
        OffsetFetchResponsePartitions,
        rows
    );
    OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
        .with_group_id(group_id(group))
        .with_topics(topics)])
}

/// The OffsetFetch answer in the layout of `version`.
fn fetch_answer(
    version: i16,
    group: &str,
    partitions: &[(&str, i32, i64, i16)],
) -> OffsetFetchResponse {
    if version >= 8 {
        fetch_v8(group, partitions)
    } else {
        fetch_v7(partitions)
    }
}

#[test]
fn committed_offsets_read_both_offset_fetch_layouts() {
    let partitions = [
        ("orders", 0, 5, 0),
        ("orders", 1, -1, 0),
        ("audit", 2, 9, 0),
    ];
    for version in advertised(ApiKey::OffsetFetch).filter(|v| *v >= 2) {
        let answer = fetch_answer(version, "billing", &partitions);
        let frame = broker_answer(
            3,
            ApiKey::OffsetFetch,
            version,
            ResponseKind::OffsetFetch(answer),
        );
        let decoded = decode_response::<OffsetFetchRequest>(version, 3, frame).unwrap();
        let committed = committed_offsets("b:9092", version, "billing", &decoded).unwrap();
        let expected: BTreeMap<(String, i32), i64> = [
            (("audit".to_string(), 2), 9),
            (("orders".to_string(), 0), 5),
        ]
        .into();
        assert_eq!(committed, expected, "v{version}: offset -1 means none");
    }

    let unstable = ResponseError::UnstableOffsetCommit.code();
    for version in [7, 8] {
        let answer = fetch_answer(version, "billing", &[("orders", 3, 1, unstable)]);
        let err = committed_offsets("b:9092", version, "billing", &answer).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topic orders partition 3: UNSTABLE_OFFSET_COMMIT (88)"
        );
    }
    let loading = ResponseError::CoordinatorLoadInProgress.code();
    let mut v7 = fetch_v7(&[]);
    v7.error_code = loading;
    let mut v8 = fetch_v8("billing", &[]);
    v8.groups[0].error_code = loading;
    for (version, answer) in [(7, v7), (8, v8)] {
        let err = committed_offsets("b:9092", version, "billing", &answer).unwrap_err();
        assert_eq!(
            err.to_string(),
            "billing: COORDINATOR_LOAD_IN_PROGRESS (14)"
        );
    }
    let err = committed_offsets("b:9092", 8, "other", &fetch_v8("billing", &[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "b:9092: the OffsetFetch answer does not mention \"other\""
    );
}

#[test]
fn assignments_decode_from_the_consumer_protocol_or_show_bytes() {
    let topics: &[(&str, &[i32])] = &[("orders", &[2, 0, 1]), ("audit", &[4])];
    let expected: BTreeMap<String, Vec<i32>> = [
        ("audit".to_string(), vec![4]),
        ("orders".to_string(), vec![0, 1, 2]),
    ]
    .into();
    // v0..=3, and a newer version read as the newest known.
    for version in [0, 1, 3, 7] {
        let bytes = consumer_assignment(version, topics);
        let decoded = decode_assignment("consumer", &bytes);
        assert_eq!(
            decoded,
            Assignment::Partitions(expected.clone()),
            "v{version}"
        );
        assert_eq!(decoded.render(), "audit:4 orders:0,1,2");
    }
    assert_eq!(
        decode_assignment("consumer", &Bytes::new()),
        Assignment::Empty
    );
    assert_eq!(Assignment::Empty.render(), "-");
    let empty = consumer_assignment(0, &[]);
    assert_eq!(decode_assignment("consumer", &empty).render(), "-");

    let bytes = consumer_assignment(1, topics);
    let truncated = bytes.slice(..bytes.len() - 3);
    let opaque = decode_assignment("consumer", &truncated);
    assert_eq!(opaque, Assignment::Opaque(truncated.clone()));
    // Another protocol's bytes are never decoded.
    assert_eq!(
        decode_assignment("connect", &bytes),
        Assignment::Opaque(bytes.clone())
    );
    let negative = Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(
        decode_assignment("consumer", &negative).render(),
        "6 bytes 0xffff00000000"
    );
    assert_eq!(
        decode_assignment("consumer", &Bytes::from_static(&[1])).render(),
        "1 bytes 0x01"
    );
    let long = Bytes::from(vec![0xab; 40]);
    assert_eq!(
        Assignment::Opaque(long).render(),
        format!("40 bytes 0x{}...", "ab".repeat(32))
    );
}

#[test]
fn datetimes_parse_as_rfc_3339_or_milliseconds() {
    for (text, ms) in [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2024-05-01T12:00:00Z", 1_714_564_800_000),
        ("2024-05-01t12:00:00z", 1_714_564_800_000),
        ("2024-05-01 12:00:00Z", 1_714_564_800_000),
        ("2024-05-01T14:00:00.5+02:00", 1_714_564_800_500),
        ("2024-05-01T14:00:00.500999+02:00", 1_714_564_800_500),
        ("2000-02-29T00:00:00Z", 951_782_400_000),
        ("2000-03-01T00:00:00-00:30", 951_870_600_000),
        ("2024-02-29T23:59:59+00:00", 1_709_251_199_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ("1714564800000", 1_714_564_800_000),
        ("0", 0),
    ] {
        assert_eq!(parse_datetime_ms(text), Ok(ms), "{text}");
    }
    for (text, why) in [
        ("", "expected digits at byte 0"),
        ("2024-05-01", "expected \"Tt \" at byte 10"),
        ("2024-05-01T12:00:00", "expected Z or a UTC offset"),
        ("2024-05-01T12:00Z", "expected \":\" at byte 16"),
        ("2024-05-01T12:00:00.Z", "no digits after '.'"),
        ("2024-05-01T12:00:00+0200", "expected Z or a UTC offset"),
        ("2024-05-01T12:00:00+24:00", "UTC offset out of range"),
        ("2024-05-01T12:00:00Zjunk", "expected Z or a UTC offset"),
        ("2024-13-01T00:00:00Z", "month out of range"),
        ("2023-02-29T00:00:00Z", "day out of range"),
        ("2100-02-29T00:00:00Z", "day out of range"),
        ("2024-04-31T00:00:00Z", "day out of range"),
        ("2024-05-01T24:00:00Z", "time of day out of range"),
        ("2024-05-01T23:59:60Z", "time of day out of range"),
        ("1969-12-31T23:59:59Z", "before 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00+00:01", "before 1970-01-01T00:00:00Z"),
        ("99999999999999999999", "too large"),
        ("-5", "expected digits at byte 0"),
        ("2024-05-0１T00:00:00Z", "expected digits at byte 8"),
    ] {
        let err = parse_datetime_ms(text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
        assert!(err.contains("is not RFC 3339"), "{text}: {err}");
    }
    assert_eq!(parse_state("stable"), Ok("Stable".to_string()));
    assert_eq!(
        parse_state("completingrebalance"),
        Ok("CompletingRebalance".to_string())
    );
    assert!(parse_state("Running")
        .unwrap_err()
        .contains("is not a group state"));
}

#[test]
fn new_offsets_are_clamped_into_the_log() {
    let offsets = PartitionOffsets {
        partition: 0,
        committed: Some(50),
        earliest: 10,
        latest: 100,
        at_time: Some(70),
    };
    for (target, expected) in [
        (ResetTarget::Earliest, 10),
        (ResetTarget::Latest, 100),
        (ResetTarget::Offset(42), 42),
        (ResetTarget::Offset(5), 10),
        (ResetTarget::Offset(1000), 100),
        (ResetTarget::ShiftBy(-20), 30),
        (ResetTarget::ShiftBy(-45), 10),
        (ResetTarget::ShiftBy(60), 100),
        (ResetTarget::ShiftBy(i64::MAX), 100),
        (ResetTarget::ShiftBy(i64::MIN), 10),
        (ResetTarget::Timestamp(1), 70),
    ] {
        assert_eq!(new_offset(target, &offsets), Ok(expected), "{target:?}");
    }
    let none_that_new = PartitionOffsets {
        at_time: None,
        ..offsets
    };
    assert_eq!(
        new_offset(ResetTarget::Timestamp(1), &none_that_new),
        Ok(100),
        "no record at or after the time: the log end"
    );
    let never_committed = PartitionOffsets {
        committed: None,
        ..offsets
    };
    let err = new_offset(ResetTarget::ShiftBy(1), &never_committed).unwrap_err();
    assert!(err.starts_with("has no committed offset to shift"), "{err}");
    assert_eq!(new_offset(ResetTarget::Earliest, &never_committed), Ok(10));
    let nonsense = PartitionOffsets {
        earliest: 20,
        latest: 10,
        ..offsets
    };
    assert_eq!(
        new_offset(ResetTarget::Latest, &nonsense),
        Err("the broker reports log start 20 and log end 10".to_string())
    );
}

fn member(id: &str, client: &str, assignment: Bytes) -> DescribedGroupMember {
    DescribedGroupMember::default()
        .with_member_id(s(id))
        .with_client_id(s(client))
        .with_client_host(s("/127.0.0.1"))
        .with_member_assignment(assignment)
}

fn stable_group() -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(group_id("billing"))
        .with_group_state(s("Stable"))
        .with_protocol_type(s("consumer"))
        .with_protocol_data(s("range"))
        .with_members(vec![
            member("a-1", "a", consumer_assignment(1, &[("orders", &[0, 1])])),
            member("b-2", "b", consumer_assignment(1, &[("orders", &[2])]))
                .with_group_instance_id(Some(s("static-b"))),
        ])
}

#[test]
fn describe_renders_offsets_lag_and_members() {
    let committed: BTreeMap<(String, i32), i64> = [
        (("orders".to_string(), 0), 5),
        (("orders".to_string(), 2), 9),
        (("old".to_string(), 0), 3),
    ]
    .into();
    let log_ends = [
        (("orders".to_string(), 0), Ok(Some(8))),
        (("orders".to_string(), 1), Ok(Some(4))),
        (("orders".to_string(), 2), Ok(Some(9))),
        (
            ("old".to_string(), 0),
            Err(ResponseError::UnknownTopicOrPartition),
        ),
    ]
    .into();
    assert_eq!(
        render_description(&stable_group(), &committed, &log_ends),
        "group          billing\n\
         state          Stable\n\
         protocol-type  consumer\n\
         protocol       range\n\
         members        2\n\
         \n\
         TOPIC   PARTITION  COMMITTED  LOG-END                     LAG  MEMBER-ID  CLIENT-ID  HOST\n\
         old     0          3          UNKNOWN_TOPIC_OR_PARTITION  -    -          -          -\n\
         orders  0          5          8                           3    a-1        a          /127.0.0.1\n\
         orders  1          -          4                           -    a-1        a          /127.0.0.1\n\
         orders  2          9          9                           0    b-2        b          /127.0.0.1\n\
         \n\
         MEMBER-ID  INSTANCE-ID  CLIENT-ID  HOST        ASSIGNMENT\n\
         a-1        -            a          /127.0.0.1  orders:0,1\n\
         b-2        static-b     b          /127.0.0.1  orders:2\n"
    );
    // An empty field shows as "-", so every row has every column.
    let anonymous = DescribedGroup::default()
        .with_group_id(group_id("billing"))
        .with_group_state(s("Stable"))
        .with_protocol_type(s("consumer"))
        .with_members(vec![member(
            "m",
            "",
            consumer_assignment(0, &[("orders", &[0])]),
        )]);
    let rendered = render_description(&anonymous, &BTreeMap::new(), &BTreeMap::new());
    assert!(
        rendered.ends_with("\nm          -            -          /127.0.0.1  orders:0\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains(
            "\norders  0          -          -        -    m          -          /127.0.0.1\n"
        ),
        "{rendered}"
    );
    let empty = DescribedGroup::default()
        .with_group_id(group_id("idle"))
        .with_group_state(s("Empty"));
    assert_eq!(
        render_description(&empty, &BTreeMap::new(), &BTreeMap::new()),
        "group          idle\n\
         state          Empty\n\
         protocol-type  -\n\
         protocol       -\n\
         members        0\n\
         \n\
         no committed offsets and no assigned partitions\n\
         \n\
         no active members\n"
    );
}

#[test]
fn list_and_reset_render_tables() {
    let listed = |group: &str, state: &str, protocol_type: &str| ListedGroup {
        group: group.to_string(),
        state: state.to_string(),
        protocol_type: protocol_type.to_string(),
    };
    let groups = vec![
        listed("zeta", "Empty", ""),
        listed("billing", "Stable", "consumer"),
        listed("audit", "PreparingRebalance", "consumer"),
    ];
    assert_eq!(
        render_group_list(groups.clone(), &[]),
        "GROUP    STATE               PROTOCOL-TYPE\n\
         audit    PreparingRebalance  consumer\n\
         billing  Stable              consumer\n\
         zeta     Empty               -\n"
    );
    assert_eq!(
        render_group_list(groups.clone(), &["Empty".to_string(), "Stable".to_string()]),
        "GROUP    STATE   PROTOCOL-TYPE\nbilling  Stable  consumer\nzeta     Empty   -\n"
    );
    assert_eq!(
        render_group_list(groups, &["Dead".to_string()]),
        "no groups\n"
    );

    let row = |partition, committed| PartitionOffsets {
        partition,
        committed,
        earliest: 0,
        latest: 100,
        at_time: None,
    };
    assert_eq!(
        render_reset("orders", &[(row(0, Some(5)), 0), (row(11, None), 100)]),
        "TOPIC   PARTITION  OLD-OFFSET  NEW-OFFSET\n\
         orders  0          5           0\n\
         orders  11         -           100\n"
    );
}

#[test]
fn reset_needs_a_group_without_members_and_delete_explains_errors() {
    let empty = DescribedGroup::default().with_group_state(s("Empty"));
    let dead = DescribedGroup::default().with_group_state(s("Dead"));
    assert!(check_resettable("billing", &empty).is_ok());
    assert!(check_resettable("billing", &dead).is_ok());
    let err = check_resettable("billing", &stable_group()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "billing: the group has 2 active members (state Stable); offsets can only be reset \
         while it has none: stop its consumers first"
    );
    let rebalancing = DescribedGroup::default()
        .with_group_state(s("PreparingRebalance"))
        .with_members(vec![member("a-1", "a", Bytes::new())]);
    let err = check_resettable("billing", &rebalancing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("billing: the group has 1 active member (state PreparingRebalance);"),
        "{err}"
    );

    let groups = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let answer = DeleteGroupsResponse::default().with_results(vec![
        DeletableGroupResult::default().with_group_id(group_id("c")),
        DeletableGroupResult::default()
            .with_group_id(group_id("a"))
            .with_error_code(ResponseError::NonEmptyGroup.code()),
        DeletableGroupResult::default()
            .with_group_id(group_id("b"))
            .with_error_code(ResponseError::GroupIdNotFound.code()),
    ]);
    let results = delete_results("b:9092", &groups, &answer).unwrap();
    let shown: Vec<(String, Option<String>)> = results
        .into_iter()
        .map(|(g, e)| (g, e.map(|e| e.to_string())))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "a".to_string(),
                Some(
                    "a: NON_EMPTY_GROUP (68): the group still has members; stop its consumers first"
                        .to_string()
                )
            ),
            (
                "b".to_string(),
                Some("b: GROUP_ID_NOT_FOUND (69): no such group".to_string())
            ),
            ("c".to_string(), None),
        ]
    );
    let err = delete_results("b:9092", &["d".to_string()], &answer).unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
}

// ---------------------------------------------------------------- end to end

fn ringlog_group(addr: SocketAddr, args: &[&str]) -> Output {
    ringlog("group", addr, args)
}

/// The stdout of a run that must succeed and print nothing on stderr.
fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Asserts that a run failed (exit 1) printing exactly `stderr`.
fn assert_failed(out: &Output, stderr: impl AsRef<str>) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(text(&out.stderr), stderr.as_ref());
}

/// A fake broker that answers each request at the version it was sent
/// with (ApiVersions from the real table unless `answer` handles it).
fn answering_broker(
    answer: impl Fn(&RequestKind) -> Option<ResponseKind> + Send + 'static,
) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    fake_broker(move |request| answer(&request.body).map(|kind| (request.api_version, kind)))
}

/// ApiVersions v3 as ringlog answers it, with `key` capped at `max`.
fn capped_api_versions(key: ApiKey, max: i16) -> ResponseKind {
    let (version, mut response) = api_versions_response(3);
    assert_eq!(version, 3);
    for api in &mut response.api_keys {
        if api.api_key == key as i16 {
            api.max_version = max;
        }
    }
    ResponseKind::ApiVersions(response)
}

/// The answer to a ListOffsets request: `offset(topic, partition,
/// timestamp)` for every partition asked.
fn list_offsets_answer(
    request: &ListOffsetsRequest,
    offset: impl Fn(&str, i32, i64) -> i64,
) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_offset(offset(&t.name.0, p.partition_index, p.timestamp))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn describe_answer(group: DescribedGroup) -> ResponseKind {
    ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(vec![group]))
}

fn kinds(requests: &[Request]) -> Vec<(ApiKey, i16)> {
    requests
        .iter()
        .map(|r| (r.api_key, r.api_version))
        .collect()
}

/// Runs `ringlog group list <args>` against a broker whose ListGroups
/// (capped at `list_groups_max`) lists `billing` (Stable) and `audit`
/// (Empty), filtered by the states asked for, with states only from v4;
/// DescribeGroups knows the states too. Its stdout and the requests.
fn list_groups(list_groups_max: i16, args: &[&str]) -> (String, Vec<Request>) {
    const GROUPS: [(&str, &str); 2] = [("billing", "Stable"), ("audit", "Empty")];
    let state_of = |group: &str| GROUPS.iter().find(|(g, _)| *g == group).unwrap().1;
    let (addr, broker) = answering_broker(move |body| match body {
        RequestKind::ApiVersions(_) => {
            Some(capped_api_versions(ApiKey::ListGroups, list_groups_max))
        }
        RequestKind::ListGroups(list) => {
            let listed = GROUPS
                .iter()
                .filter(|(_, state)| {
                    list.states_filter.is_empty()
                        || list.states_filter.iter().any(|f| f.as_str() == *state)
                })
                .map(|(group, state)| {
                    WireListedGroup::default()
                        .with_group_id(group_id(group))
                        .with_protocol_type(s("consumer"))
                        .with_group_state(s(if list_groups_max >= 4 { state } else { "" }))
                })
                .collect();
            Some(ResponseKind::ListGroups(
                ListGroupsResponse::default().with_groups(listed),
            ))
        }
        RequestKind::DescribeGroups(describe) => Some(ResponseKind::DescribeGroups(
            DescribeGroupsResponse::default().with_groups(
                describe
                    .groups
                    .iter()
                    .map(|g| {
                        DescribedGroup::default()
                            .with_group_id(g.clone())
                            .with_group_state(s(state_of(g.0.as_str())))
                    })
                    .collect(),
            ),
        )),
        _ => None,
    });
    let out = ringlog_group(addr, args);
    (succeeded(&out), broker.join().unwrap())
}

#[test]
fn list_filters_by_state_and_falls_back_to_describe_on_old_brokers() {
    let (stdout, requests) = list_groups(5, &["list"]);
    assert_eq!(
        stdout,
        "GROUP    STATE   PROTOCOL-TYPE\naudit    Empty   consumer\nbilling  Stable  consumer\n"
    );
    assert_eq!(
        kinds(&requests),
        [(ApiKey::ApiVersions, 3), (ApiKey::ListGroups, 5)]
    );

    // The broker filters (v4+), by the names in Kafka's spelling.
    let (stdout, requests) = list_groups(5, &["list", "--state", "stable,dead"]);
    assert_eq!(
        stdout,
        "GROUP    STATE   PROTOCOL-TYPE\nbilling  Stable  consumer\n"
    );
    let RequestKind::ListGroups(body) = bodies(&requests)[0] else {
        panic!()
    };
    assert_eq!(body.states_filter, vec![s("Stable"), s("Dead")]);

    // ListGroups v3 has no states: DescribeGroups supplies them and the
    // client filters.
    let (stdout, requests) = list_groups(3, &["list", "--state", "Empty"]);
    assert_eq!(
        stdout,
        "GROUP  STATE  PROTOCOL-TYPE\naudit  Empty  consumer\n"
    );
    assert_eq!(
        kinds(&requests),
        [
            (ApiKey::ApiVersions, 3),
            (ApiKey::ListGroups, 3),
            (ApiKey::DescribeGroups, 5)
        ]
    );
    let RequestKind::ListGroups(body) = bodies(&requests)[0] else {
        panic!()
    };
    assert!(body.states_filter.is_empty(), "v3 cannot carry states");
    let RequestKind::DescribeGroups(body) = bodies(&requests)[1] else {
        panic!()
    };
    assert_eq!(body.groups, vec![group_id("billing"), group_id("audit")]);

    let (stdout, _) = list_groups(5, &["list", "--state", "Dead"]);
    assert_eq!(stdout, "no groups\n");
}

/// A broker with `billing` (stable, two members) and its commits, whose
/// OffsetFetch is capped at `offset_fetch_max`.
fn describing_broker(offset_fetch_max: i16) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    answering_broker(move |body| match body {
        RequestKind::ApiVersions(_) => {
            Some(capped_api_versions(ApiKey::OffsetFetch, offset_fetch_max))
        }
        RequestKind::DescribeGroups(_) => Some(describe_answer(stable_group())),
        RequestKind::OffsetFetch(_) => Some(ResponseKind::OffsetFetch(fetch_answer(
            offset_fetch_max,
            "billing",
            &[("orders", 0, 5, 0), ("orders", 2, 9, 0), ("old", 0, 3, 0)],
        ))),
        RequestKind::ListOffsets(body) => Some(ResponseKind::ListOffsets(list_offsets_answer(
            body,
            |_, p, _| 10 + i64::from(p),
        ))),
        _ => None,
    })
}

#[test]
fn describe_joins_group_offsets_and_log_ends_with_either_offset_fetch_layout() {
    for offset_fetch_max in [8, 7] {
        let (addr, broker) = describing_broker(offset_fetch_max);
        let out = ringlog_group(addr, &["describe", "billing"]);
        let stdout = succeeded(&out);
        assert!(
            stdout.contains(
                "TOPIC   PARTITION  COMMITTED  LOG-END  LAG  MEMBER-ID  CLIENT-ID  HOST\n\
                 old     0          3          10       7    -          -          -\n\
                 orders  0          5          10       5    a-1        a          /127.0.0.1\n\
                 orders  1          -          11       -    a-1        a          /127.0.0.1\n\
                 orders  2          9          12       3    b-2        b          /127.0.0.1\n"
            ),
            "{stdout}"
        );
        let requests = broker.join().unwrap();
        assert_eq!(
            kinds(&requests),
            [
                (ApiKey::ApiVersions, 3),
                (ApiKey::DescribeGroups, 5),
                (ApiKey::OffsetFetch, offset_fetch_max),
                (ApiKey::ListOffsets, 6)
            ]
        );
        let sent = bodies(&requests);
        let RequestKind::OffsetFetch(fetch) = sent[1] else {
            panic!()
        };
        if offset_fetch_max >= 8 {
            assert_eq!(fetch.groups[0].group_id, group_id("billing"));
            assert_eq!(fetch.groups[0].topics, None, "every partition");
        } else {
            assert_eq!(fetch.group_id, group_id("billing"));
            assert_eq!(fetch.topics, None, "every partition");
        }
        let RequestKind::ListOffsets(list) = sent[2] else {
            panic!()
        };
        assert_eq!(
            asked_offsets(list),
            vec![
                ("old".to_string(), 0, LATEST_TIMESTAMP),
                ("orders".to_string(), 0, LATEST_TIMESTAMP),
                ("orders".to_string(), 1, LATEST_TIMESTAMP),
                ("orders".to_string(), 2, LATEST_TIMESTAMP)
            ],
            "committed and assigned partitions"
        );
    }

    // OffsetFetch v1 cannot ask for every partition.
    let (addr, _broker) = describing_broker(1);
    let out = ringlog_group(addr, &["describe", "billing"]);
    assert_failed(
        &out,
        format!(
            "ringlog group: {addr}: no OffsetFetch version in common: the broker speaks 1..=1, ringlog 2..=9\n"
        )
    );
}

#[test]
fn describe_of_an_unknown_group_is_group_id_not_found() {
    let (addr, broker) = answering_broker(|body| match body {
        RequestKind::DescribeGroups(_) => Some(describe_answer(
            DescribedGroup::default()
                .with_group_id(group_id("nobody"))
                .with_group_state(s("Dead")),
        )),
        RequestKind::OffsetFetch(_) => Some(ResponseKind::OffsetFetch(fetch_v8("nobody", &[]))),
        _ => None,
    });
    let out = ringlog_group(addr, &["describe", "nobody"]);
    assert_failed(
        &out,
        "ringlog group: nobody: GROUP_ID_NOT_FOUND (69): no such group\n",
    );
    assert!(out.stdout.is_empty());
    let requests = broker.join().unwrap();
    assert_eq!(
        requests.len(),
        3,
        "no ListOffsets for a group without partitions"
    );
}

#[test]
fn delete_reports_each_group_and_fails_if_any_failed() {
    let (addr, broker) = answering_broker(|body| match body {
        RequestKind::DeleteGroups(body) => Some(ResponseKind::DeleteGroups(
            DeleteGroupsResponse::default().with_results(
                body.groups_names
                    .iter()
                    .map(|g| {
                        let error = if g.0.as_str() == "busy" {
                            ResponseError::NonEmptyGroup.code()
                        } else {
                            0
                        };
                        DeletableGroupResult::default()
                            .with_group_id(g.clone())
                            .with_error_code(error)
                    })
                    .collect(),
            ),
        )),
        _ => None,
    });
    let out = ringlog_group(addr, &["delete", "idle", "busy", "idle", "done"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "deleted group idle\ndeleted group done\n"
    );
    assert_eq!(
        text(&out.stderr),
        "ringlog group: busy: NON_EMPTY_GROUP (68): the group still has members; stop its consumers first\n"
    );
    let requests = broker.join().unwrap();
    assert_eq!(kinds(&requests)[1], (ApiKey::DeleteGroups, 2));
    let RequestKind::DeleteGroups(body) = bodies(&requests)[0] else {
        panic!()
    };
    assert_eq!(
        body.groups_names,
        vec![group_id("idle"), group_id("busy"), group_id("done")],
        "each group once"
    );
}

#[test]
fn reset_is_refused_while_the_group_has_members() {
    let (addr, broker) = answering_broker(|body| match body {
        RequestKind::DescribeGroups(_) => Some(describe_answer(stable_group())),
        _ => None,
    });
    let out = ringlog_group(
        addr,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
        ],
    );
    assert_failed(
        &out,
        "ringlog group: billing: the group has 2 active members (state Stable); offsets can \
         only be reset while it has none: stop its consumers first\n",
    );
    let requests = broker.join().unwrap();
    assert_eq!(
        kinds(&requests),
        [(ApiKey::ApiVersions, 3), (ApiKey::DescribeGroups, 5)],
        "nothing read or committed"
    );
}

/// A broker with an empty `billing` group (or, with `unknown_group`, one
/// DescribeGroups v6 calls GROUP_ID_NOT_FOUND), topic `orders` with three
/// partitions (log 2..10, committed 0:5 and 2:9), commits accepted.
fn resetting_broker(unknown_group: bool) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    answering_broker(move |body| match body {
        RequestKind::DescribeGroups(_) => {
            let group = DescribedGroup::default().with_group_id(group_id("billing"));
            let group = if unknown_group {
                group.with_error_code(ResponseError::GroupIdNotFound.code())
            } else {
                group
                    .with_group_state(s("Empty"))
                    .with_protocol_type(s("consumer"))
            };
            Some(describe_answer(group))
        }
        RequestKind::Metadata(_) => Some(ResponseKind::Metadata(metadata_with(&[("orders", 3)]))),
        RequestKind::OffsetFetch(_) => Some(ResponseKind::OffsetFetch(fetch_v8(
            "billing",
            &[
                ("orders", 0, 5, 0),
                ("orders", 1, -1, 0),
                ("orders", 2, 9, 0),
            ],
        ))),
        RequestKind::ListOffsets(body) => Some(ResponseKind::ListOffsets(list_offsets_answer(
            body,
            |_, p, timestamp| match timestamp {
                EARLIEST_TIMESTAMP => 2,
                LATEST_TIMESTAMP => 10,
                // Partition 1 has no record that new.
                _ if p == 1 => -1,
                _ => 7,
            },
        ))),
        RequestKind::OffsetCommit(body) => Some(ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(
                body.topics
                    .iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        )),
        _ => None,
    })
}

fn committed_by(requests: &[Request]) -> Vec<(i32, i64)> {
    let commits: Vec<_> = bodies(requests)
        .into_iter()
        .filter_map(|body| match body {
            RequestKind::OffsetCommit(commit) => Some(commit),
            _ => None,
        })
        .collect();
    assert!(commits.len() <= 1);
    commits
        .first()
        .map(|commit| {
            assert_eq!(commit.generation_id_or_member_epoch, -1);
            assert_eq!(commit.member_id.as_str(), "");
            assert_eq!(commit.topics[0].name, name("orders"));
            commit.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.committed_offset))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `ringlog group reset-offsets billing --topic orders <args>`
/// against [`resetting_broker`]: its output and the requests it sent.
fn reset_orders(unknown_group: bool, args: &[&str]) -> (Output, Vec<Request>) {
    let (addr, broker) = resetting_broker(unknown_group);
    let mut all = vec!["reset-offsets", "billing", "--topic", "orders"];
    all.extend_from_slice(args);
    let out = ringlog_group(addr, &all);
    (out, broker.join().unwrap())
}

/// [`reset_orders`] that must succeed: its stdout and the requests.
fn reset_orders_ok(unknown_group: bool, args: &[&str]) -> (String, Vec<Request>) {
    let (out, requests) = reset_orders(unknown_group, args);
    (succeeded(&out), requests)
}

#[test]
fn reset_reads_offsets_clamps_and_commits_as_a_tool() {
    let (stdout, requests) = reset_orders_ok(false, &["--partitions", "2,0", "--shift-by", "-4"]);
    assert_eq!(
        stdout,
        "TOPIC   PARTITION  OLD-OFFSET  NEW-OFFSET\n\
         orders  0          5           2\n\
         orders  2          9           5\n\
         group billing: committed 2 offsets on topic orders\n"
    );
    assert_eq!(
        kinds(&requests),
        [
            (ApiKey::ApiVersions, 3),
            (ApiKey::DescribeGroups, 5),
            (ApiKey::Metadata, 12),
            (ApiKey::OffsetFetch, 8),
            (ApiKey::ListOffsets, 6),
            (ApiKey::ListOffsets, 6),
            (ApiKey::OffsetCommit, 8)
        ]
    );
    let RequestKind::OffsetFetch(fetch) = bodies(&requests)[2] else {
        panic!()
    };
    let topics = fetch.groups[0].topics.as_ref().unwrap();
    assert_eq!(topics[0].partition_indexes, vec![0, 2]);
    assert_eq!(committed_by(&requests), vec![(0, 2), (2, 5)]);

    // By time, every partition, on a group DescribeGroups v6 does not know.
    let (stdout, requests) = reset_orders_ok(true, &["--to-datetime", "2024-05-01T12:00:00Z"]);
    assert_eq!(
        stdout,
        "TOPIC   PARTITION  OLD-OFFSET  NEW-OFFSET\n\
         orders  0          5           7\n\
         orders  1          -           10\n\
         orders  2          9           7\n\
         group billing: committed 3 offsets on topic orders\n"
    );
    let timestamps: Vec<i64> = bodies(&requests)
        .into_iter()
        .filter_map(|body| match body {
            RequestKind::ListOffsets(list) => Some(list.topics[0].partitions[0].timestamp),
            _ => None,
        })
        .collect();
    assert_eq!(
        timestamps,
        vec![EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, 1_714_564_800_000]
    );
    assert_eq!(committed_by(&requests), vec![(0, 7), (1, 10), (2, 7)]);

    // --dry-run commits nothing.
    let (stdout, requests) = reset_orders_ok(false, &["--to-offset", "100", "--dry-run"]);
    assert_eq!(
        stdout,
        "TOPIC   PARTITION  OLD-OFFSET  NEW-OFFSET\n\
         orders  0          5           10\n\
         orders  1          -           10\n\
         orders  2          9           10\n\
         dry run: nothing committed\n"
    );
    assert!(requests.iter().all(|r| r.api_key != ApiKey::OffsetCommit));
}

#[test]
fn reset_refuses_what_it_cannot_do() {
    for (args, stderr) in [
        (
            &["--shift-by", "1"][..],
            "ringlog group: billing: topic orders partition 1: has no committed offset to shift; \
             reset it with --to-earliest, --to-latest, --to-offset or --to-datetime\n",
        ),
        (
            &["--partitions", "0,3", "--to-latest"],
            "ringlog group: topic orders: has no partition 3 (it has 3 partitions)\n",
        ),
    ] {
        let (out, requests) = reset_orders(false, args);
        assert_failed(&out, stderr);
        assert!(out.stdout.is_empty());
        assert!(requests.iter().all(|r| r.api_key != ApiKey::OffsetCommit));
    }
}

#[test]
fn usage_errors_exit_2() {
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let reset = ["reset-offsets", "billing", "--topic", "orders"];
    let reset_with = |extra: &[&'static str]| [&reset[..], extra].concat();
    for args in [
        vec!["list", "--state", "Running"],
        vec!["list", "--timeout-ms", "0"],
        vec!["describe"],
        vec!["delete"],
        vec!["reset-offsets", "billing", "--to-earliest"],
        reset_with(&[]),
        reset_with(&["--to-earliest", "--to-latest"]),
        reset_with(&["--to-offset", "-1"]),
        reset_with(&["--to-latest", "--partitions", "x"]),
        reset_with(&["--to-latest", "--partitions", "-1"]),
        reset_with(&["--to-datetime", "yesterday"]),
        reset_with(&["--shift-by", "many"]),
    ] {
        let out = ringlog_group(unused, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
