//! Kafka 3.9's topic configs over the wire: every key is accepted,
//! described (value, source, synonyms, type, documentation) and altered
//! (SET, DELETE, APPEND, SUBTRACT, legacy replace) as Kafka's broker does,
//! survives a restart, and bad values are INVALID_CONFIG naming the key.
//! Each config ringlog honours shows its effect on a real partition.
//! Also CreateTopics with a manual replica assignment.

mod common;

use common::{create_topic, fetch_from_start, name, Client, Server};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use ringlog_engine::batch::build_batch;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CREATE_TOPICS_VERSION: i16 = 7;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const ALTER_CONFIGS_VERSION: i16 = 2;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 6;
const METADATA_VERSION: i16 = 12;

const TOPIC: i8 = 2;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// A valid value other than the default for every key (with the value
/// DescribeConfigs prints for it), accepted together: the round trip of
/// every config.
const EVERY_KEY: [(&str, &str, &str); 37] = [
    ("cleanup.policy", "", ""),
    ("compression.gzip.level", "5", "5"),
    ("compression.lz4.level", "12", "12"),
    ("compression.type", "lz4", "lz4"),
    ("compression.zstd.level", "-5", "-5"),
    ("delete.retention.ms", "1000", "1000"),
    ("file.delete.delay.ms", "0", "0"),
    ("flush.messages", "1", "1"),
    ("flush.ms", "1000", "1000"),
    (
        "follower.replication.throttled.replicas",
        "0:0, 1:0",
        "0:0,1:0",
    ),
    ("index.interval.bytes", "1024", "1024"),
    ("leader.replication.throttled.replicas", "*", "*"),
    ("local.retention.bytes", "-1", "-1"),
    ("local.retention.ms", "1000", "1000"),
    ("max.compaction.lag.ms", "100000", "100000"),
    ("max.message.bytes", "65536", "65536"),
    ("message.downconversion.enable", "FALSE", "false"),
    ("message.format.version", "2.8", "2.8"),
    ("message.timestamp.after.max.ms", "3600000", "3600000"),
    ("message.timestamp.before.max.ms", "3600000", "3600000"),
    ("message.timestamp.difference.max.ms", "3600000", "3600000"),
    ("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
    ("min.cleanable.dirty.ratio", "0.75", "0.75"),
    ("min.compaction.lag.ms", "1000", "1000"),
    ("min.insync.replicas", "2", "2"),
    ("preallocate", " true", "true"),
    ("remote.log.copy.disable", "true", "true"),
    ("remote.log.delete.on.disable", "true", "true"),
    ("remote.storage.enable", "false", "false"),
    ("retention.bytes", "-5", "-5"),
    ("retention.ms", "+86400000", "86400000"),
    ("ringlog.search.enable", " FALSE ", "false"),
    ("segment.bytes", "16777216", "16777216"),
    ("segment.index.bytes", "1048576", "1048576"),
    ("segment.jitter.ms", "1000", "1000"),
    ("segment.ms", "3600000", "3600000"),
    ("unclean.leader.election.enable", "true", "true"),
];

/// A config key and its value (`None`: no value) in a request.
type Setting<'a> = (&'a str, Option<&'a str>);

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn data_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(test)
}

/// CreateTopics of one topic with `configs` (None: no value) and
/// `assignments`; the topic's result.
fn create_with(
    client: &mut Client,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, Option<&str>)],
    assignments: &[(i32, &[i32])],
    validate_only: bool,
) -> create_topics_response::CreatableTopicResult {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(v.map(s))
                    })
                    .collect(),
            )
            .with_assignments(
                assignments
                    .iter()
                    .map(|(p, brokers)| {
                        create_topics_request::CreatableReplicaAssignment::default()
                            .with_partition_index(*p)
                            .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            )])
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only);
    let ResponseKind::CreateTopics(response) = client.call(CREATE_TOPICS_VERSION, request) else {
        panic!("not CreateTopics");
    };
    response.topics.into_iter().next().unwrap()
}

/// Creates `topic` with `configs`, which must succeed.
fn create_configured(client: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let configs: Vec<_> = configs.iter().map(|(k, v)| (*k, Some(*v))).collect();
    let result = create_with(client, topic, partitions, 1, &configs, &[], false);
    assert_eq!(result.error_code, 0, "{topic}: {:?}", result.error_message);
}

/// DescribeConfigs of every key of `topic` at `version`.
fn describe_at(
    client: &mut Client,
    version: i16,
    topic: &str,
    synonyms: bool,
    documentation: bool,
) -> describe_configs_response::DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s(topic))
                .with_configuration_keys(None),
        ])
        .with_include_synonyms(synonyms)
        .with_include_documentation(documentation);
    let ResponseKind::DescribeConfigs(response) = client.call(version, request) else {
        panic!("not DescribeConfigs");
    };
    response.results.into_iter().next().unwrap()
}

/// Every key of `topic`: (value, source).
fn described(client: &mut Client, topic: &str) -> BTreeMap<String, (String, i8)> {
    let result = describe_at(client, DESCRIBE_CONFIGS_VERSION, topic, false, false);
    assert_eq!(result.error_code, 0, "{topic}: {:?}", result.error_message);
    result
        .configs
        .into_iter()
        .map(|c| {
            let value = c.value.map(|v| v.to_string()).unwrap_or_default();
            (c.name.to_string(), (value, c.config_source))
        })
        .collect()
}

/// IncrementalAlterConfigs of `topic`: (error code, message).
fn incremental(
    client: &mut Client,
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s(topic))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(s(k))
                                .with_config_operation(*op)
                                .with_value(v.map(s))
                        })
                        .collect(),
                ),
        ])
        .with_validate_only(validate_only);
    let ResponseKind::IncrementalAlterConfigs(response) =
        client.call(INCREMENTAL_ALTER_CONFIGS_VERSION, request)
    else {
        panic!("not IncrementalAlterConfigs");
    };
    let answer = &response.responses[0];
    (
        answer.error_code,
        answer.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// Legacy AlterConfigs of `topic`: (error code, message).
fn legacy(
    client: &mut Client,
    topic: &str,
    configs: &[(&str, Option<&str>)],
) -> (i16, Option<String>) {
    let request = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(s(topic))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        alter_configs_request::AlterableConfig::default()
                            .with_name(s(k))
                            .with_value(v.map(s))
                    })
                    .collect(),
            ),
    ]);
    let ResponseKind::AlterConfigs(response) = client.call(ALTER_CONFIGS_VERSION, request) else {
        panic!("not AlterConfigs");
    };
    let answer = &response.responses[0];
    (
        answer.error_code,
        answer.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn set(client: &mut Client, topic: &str, key: &str, value: &str) {
    let answer = incremental(client, topic, &[(key, OP_SET, Some(value))], false);
    assert_eq!(answer.0, 0, "{topic}: {key}={value}: {:?}", answer.1);
}

/// Produces one batch of one record of `value_bytes` bytes, with acks=all:
/// the error code.
fn produce(client: &mut Client, topic: &str, partition: i32, value_bytes: usize) -> i16 {
    let value = vec![b'v'; value_bytes];
    let batch = build_batch(1_700_000_000_000, &[value.as_slice()]);
    common::produce_batch(client, PRODUCE_VERSION, topic, partition, batch).error_code
}

/// The earliest offset of partition 0 of `topic`.
fn earliest(client: &mut Client, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-2),
            ])]);
    let ResponseKind::ListOffsets(response) = client.call(LIST_OFFSETS_VERSION, request) else {
        panic!("not ListOffsets");
    };
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.error_code, 0);
    answer.offset
}

/// Files of partition 0 of `topic` ending in `.extension`, by name.
fn partition_files(data: &Path, topic: &str, extension: &str) -> Vec<PathBuf> {
    let dir = data.join("topics").join(topic).join("0");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    files
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn expect_invalid_config(answer: (i16, Option<String>), key: &str, why: &str) {
    assert_eq!(
        answer.0,
        ResponseError::InvalidConfig.code(),
        "{key}: {:?}",
        answer.1
    );
    let message = answer.1.unwrap_or_default();
    assert!(
        message.contains(key) && message.contains(why),
        "{key}: {message}"
    );
}

// ---------------------------------------------------------------- round trips

#[test]
fn every_key_is_created_described_and_deleted_as_kafka_does() {
    let server = Server::start("configs-every-key");
    let mut client = Client::connect(server.addr);
    let configs: Vec<_> = EVERY_KEY.iter().map(|(k, v, _)| (*k, Some(*v))).collect();
    let created = create_with(&mut client, "every", 2, 1, &configs, &[], false);
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    // CreateTopics v5+ answers with the configs in force and their sources.
    let answered: BTreeMap<String, (String, i8)> = created
        .configs
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.name.to_string(),
                (c.value.unwrap().to_string(), c.config_source),
            )
        })
        .collect();
    assert_eq!(answered.len(), EVERY_KEY.len());
    for (key, _, printed) in EVERY_KEY {
        assert_eq!(answered[key], (printed.to_string(), SOURCE_TOPIC), "{key}");
    }

    // v4 with synonyms and documentation.
    let result = describe_at(&mut client, 4, "every", true, true);
    assert_eq!(result.error_code, 0);
    assert_eq!(result.configs.len(), EVERY_KEY.len());
    for (row, (key, _, printed)) in result.configs.iter().zip(EVERY_KEY) {
        assert_eq!(row.name.as_str(), key, "sorted by name");
        assert_eq!(row.value.as_deref(), Some(printed), "{key}");
        assert_eq!(row.config_source, SOURCE_TOPIC, "{key}");
        assert!(!row.read_only && !row.is_sensitive, "{key}");
        assert!(row.config_type > 0, "{key}: a type");
        assert!(
            row.documentation.as_ref().is_some_and(|d| !d.is_empty()),
            "{key}"
        );
        let first = &row.synonyms[0];
        assert_eq!(
            (first.name.as_str(), first.value.as_deref(), first.source),
            (key, Some(printed), SOURCE_TOPIC),
            "{key}: the override is the first synonym"
        );
    }
    let by_name = |name: &str| {
        result
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap()
    };
    // Kafka's ConfigType codes, and broker synonyms after the override.
    assert_eq!(by_name("cleanup.policy").config_type, 7);
    assert_eq!(by_name("preallocate").config_type, 1);
    assert_eq!(by_name("compression.type").config_type, 2);
    assert_eq!(by_name("segment.bytes").config_type, 3);
    assert_eq!(by_name("retention.ms").config_type, 5);
    assert_eq!(by_name("min.cleanable.dirty.ratio").config_type, 6);
    let synonyms: Vec<_> = by_name("min.insync.replicas")
        .synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_deref().unwrap().to_string(),
                s.source,
            )
        })
        .collect();
    assert_eq!(
        synonyms,
        vec![
            ("min.insync.replicas".into(), "2".into(), SOURCE_TOPIC),
            ("min.insync.replicas".into(), "1".into(), SOURCE_DEFAULT),
        ]
    );
    // Without the flags: no synonyms or documentation; before v3 no type.
    let plain = describe_at(&mut client, 3, "every", false, false);
    assert!(plain
        .configs
        .iter()
        .all(|c| c.synonyms.is_empty() && c.config_type > 0 && c.documentation.is_none()));
    let old = describe_at(&mut client, 1, "every", false, false);
    assert!(old.configs.iter().all(|c| c.config_type == 0));
    // Only the keys asked for; keys Kafka does not define are left out.
    let request = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(s("every"))
            .with_configuration_keys(Some(vec![s("retention.ms"), s("no.such.key")])),
    ]);
    let ResponseKind::DescribeConfigs(response) = client.call(DESCRIBE_CONFIGS_VERSION, request)
    else {
        panic!("not DescribeConfigs");
    };
    let names: Vec<_> = response.results[0]
        .configs
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, vec!["retention.ms"]);

    // DELETE of every key: all defaults again.
    let deletes: Vec<_> = EVERY_KEY
        .iter()
        .map(|(k, _, _)| (*k, OP_DELETE, None))
        .collect();
    assert_eq!(
        incremental(&mut client, "every", &deletes, false),
        (0, None)
    );
    let values = described(&mut client, "every");
    create_topic(&mut client, CREATE_TOPICS_VERSION, "plain", 1);
    assert_eq!(values, described(&mut client, "plain"));
    assert!(values.values().all(|(_, source)| *source == SOURCE_DEFAULT));
    assert_eq!(values["segment.bytes"].0, "1073741824");
    assert_eq!(values["retention.ms"].0, "604800000");
    assert_eq!(values["cleanup.policy"].0, "delete");
    assert_eq!(values["compression.type"].0, "producer");
    assert_eq!(values["message.format.version"].0, "3.0-IV1");
    assert_eq!(values["flush.ms"].0, "9223372036854775807");
    assert_eq!(values["min.cleanable.dirty.ratio"].0, "0.5");
}

#[test]
fn incremental_alter_sets_deletes_appends_and_subtracts() {
    let server = Server::start("configs-incremental");
    let mut client = Client::connect(server.addr);
    create_configured(
        &mut client,
        "inc",
        1,
        &[("retention.ms", "3600000"), ("preallocate", "true")],
    );

    // SET and DELETE; other overrides stay.
    let answer = incremental(
        &mut client,
        "inc",
        &[
            ("segment.ms", OP_SET, Some("60000")),
            ("retention.ms", OP_DELETE, None),
        ],
        false,
    );
    assert_eq!(answer, (0, None));
    let values = described(&mut client, "inc");
    assert_eq!(values["segment.ms"], ("60000".into(), SOURCE_TOPIC));
    assert_eq!(values["retention.ms"], ("604800000".into(), SOURCE_DEFAULT));
    assert_eq!(values["preallocate"], ("true".into(), SOURCE_TOPIC));

    // APPEND and SUBTRACT on a list key, from its default (empty).
    let key = "leader.replication.throttled.replicas";
    let op = |client: &mut Client, op: i8, value: &str| {
        let answer = incremental(client, "inc", &[(key, op, Some(value))], false);
        assert_eq!(answer, (0, None), "{op} {value}");
        described(client, "inc")[key].clone()
    };
    assert_eq!(
        op(&mut client, OP_APPEND, "0:0,1:0"),
        ("0:0,1:0".into(), SOURCE_TOPIC)
    );
    assert_eq!(
        op(&mut client, OP_APPEND, "1:0,2:0"),
        ("0:0,1:0,2:0".into(), SOURCE_TOPIC)
    );
    assert_eq!(
        op(&mut client, OP_SUBTRACT, "0:0,9:9"),
        ("1:0,2:0".into(), SOURCE_TOPIC)
    );
    // cleanup.policy: APPEND of the default changes nothing; SUBTRACT of
    // delete leaves the empty policy, set on the topic.
    let answer = incremental(
        &mut client,
        "inc",
        &[("cleanup.policy", OP_APPEND, Some("delete"))],
        false,
    );
    assert_eq!(answer, (0, None));
    assert_eq!(
        described(&mut client, "inc")["cleanup.policy"],
        ("delete".into(), SOURCE_TOPIC)
    );
    let answer = incremental(
        &mut client,
        "inc",
        &[("cleanup.policy", OP_SUBTRACT, Some("delete"))],
        false,
    );
    assert_eq!(answer, (0, None));
    assert_eq!(
        described(&mut client, "inc")["cleanup.policy"],
        ("".into(), SOURCE_TOPIC)
    );
    // APPEND of compact is refused like a SET of it.
    let answer = incremental(
        &mut client,
        "inc",
        &[("cleanup.policy", OP_APPEND, Some("compact"))],
        false,
    );
    expect_invalid_config(answer, "cleanup.policy", "does not compact");

    // Refusals, as Kafka's broker gives them; nothing changes.
    let before = described(&mut client, "inc");
    let answer = incremental(
        &mut client,
        "inc",
        &[("retention.ms", OP_APPEND, Some("1"))],
        false,
    );
    assert_eq!(
        answer,
        (
            ResponseError::InvalidConfig.code(),
            Some("Can't APPEND to key retention.ms because its type is not LIST.".into())
        )
    );
    let answer = incremental(
        &mut client,
        "inc",
        &[
            ("retention.ms", OP_SET, Some("1")),
            ("retention.ms", OP_DELETE, None),
        ],
        false,
    );
    assert_eq!(
        answer.0,
        ResponseError::InvalidRequest.code(),
        "{:?}",
        answer.1
    );
    assert_eq!(
        answer.1.as_deref(),
        Some("Error due to duplicate config keys")
    );
    let answer = incremental(&mut client, "inc", &[("retention.ms", OP_SET, None)], false);
    assert_eq!(answer.0, ResponseError::InvalidRequest.code());
    assert!(answer.1.unwrap().contains("retention.ms"));
    let answer = incremental(&mut client, "inc", &[("retention.ms", 7, Some("1"))], false);
    assert_eq!(answer.0, ResponseError::InvalidRequest.code());
    let answer = incremental(
        &mut client,
        "inc",
        &[("no.such.key", OP_DELETE, None)],
        false,
    );
    assert_eq!(
        answer,
        (
            ResponseError::InvalidConfig.code(),
            Some("Unknown topic config name: no.such.key".into())
        )
    );
    // validate_only checks but changes nothing.
    let answer = incremental(
        &mut client,
        "inc",
        &[("retention.ms", OP_SET, Some("5"))],
        true,
    );
    assert_eq!(answer, (0, None));
    assert_eq!(described(&mut client, "inc"), before);
}

#[test]
fn legacy_alter_replaces_every_override() {
    let server = Server::start("configs-legacy");
    let mut client = Client::connect(server.addr);
    create_configured(
        &mut client,
        "legacy",
        1,
        &[("retention.ms", "3600000"), ("preallocate", "true")],
    );
    let answer = legacy(
        &mut client,
        "legacy",
        &[
            ("segment.ms", Some("60000")),
            ("min.insync.replicas", Some("2")),
        ],
    );
    assert_eq!(answer, (0, None));
    let values = described(&mut client, "legacy");
    assert_eq!(values["segment.ms"], ("60000".into(), SOURCE_TOPIC));
    assert_eq!(values["min.insync.replicas"], ("2".into(), SOURCE_TOPIC));
    assert_eq!(values["retention.ms"], ("604800000".into(), SOURCE_DEFAULT));
    assert_eq!(values["preallocate"], ("false".into(), SOURCE_DEFAULT));

    let answer = legacy(&mut client, "legacy", &[("segment.ms", None)]);
    assert_eq!(
        answer.0,
        ResponseError::InvalidRequest.code(),
        "{:?}",
        answer.1
    );
    let answer = legacy(
        &mut client,
        "legacy",
        &[("segment.ms", Some("1")), ("segment.ms", Some("2"))],
    );
    assert_eq!(
        answer.0,
        ResponseError::InvalidRequest.code(),
        "{:?}",
        answer.1
    );
    let answer = legacy(&mut client, "legacy", &[("segment.ms", Some("0"))]);
    expect_invalid_config(answer, "segment.ms", "Value must be at least 1");
    assert_eq!(
        described(&mut client, "legacy"),
        values,
        "refusals change nothing"
    );
}

#[test]
fn bad_values_are_invalid_config_naming_the_key() {
    let server = Server::start("configs-bad-values");
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, CREATE_TOPICS_VERSION, "target", 1);
    let before = described(&mut client, "target");
    for (key, value, why) in [
        ("retention.ms", "-5", "Value must be at least -1"),
        ("retention.ms", "a week", "Not a number of type LONG"),
        ("segment.bytes", "3000000000", "Not a number of type INT"),
        ("compression.type", "brotli", "String must be one of"),
        ("min.insync.replicas", "0", "Value must be at least 1"),
        (
            "preallocate",
            "maybe",
            "Expected value to be either true or false",
        ),
        (
            "min.cleanable.dirty.ratio",
            "2",
            "Value must be no more than 1",
        ),
        ("message.format.version", "9.9", "is not a valid version"),
        (
            "cleanup.policy",
            "compact",
            "ringlog does not compact logs yet",
        ),
        (
            "cleanup.policy",
            "compact,delete",
            "ringlog does not compact logs yet",
        ),
        (
            "remote.storage.enable",
            "true",
            "cannot be configured with remote log storage",
        ),
        ("no.such.key", "1", "Unknown topic config name"),
    ] {
        let created = create_with(
            &mut client,
            "refused",
            1,
            1,
            &[(key, Some(value))],
            &[],
            false,
        );
        expect_invalid_config(
            (
                created.error_code,
                created.error_message.map(|m| m.to_string()),
            ),
            key,
            why,
        );
        let altered = incremental(&mut client, "target", &[(key, OP_SET, Some(value))], false);
        expect_invalid_config(altered, key, why);
    }
    let refusals: [(&[Setting], &str); 3] = [
        // Across keys, as Kafka checks them.
        (
            &[
                ("min.compaction.lag.ms", Some("10")),
                ("max.compaction.lag.ms", Some("5")),
            ],
            "min.compaction.lag.ms (10) > max.compaction.lag.ms (5)",
        ),
        // A segment too small for a batch of max.message.bytes.
        (
            &[
                ("segment.bytes", Some("1048576")),
                ("max.message.bytes", Some("1048576")),
            ],
            "segment.bytes=1048576",
        ),
        // No value at create: Kafka's message.
        (
            &[("retention.ms", None)],
            "Null value not supported for topic configs: retention.ms",
        ),
    ];
    for (configs, message) in refusals {
        let created = create_with(&mut client, "refused", 1, 1, configs, &[], false);
        assert_eq!(created.error_code, ResponseError::InvalidConfig.code());
        let got = created.error_message.unwrap_or_default();
        assert!(got.contains(message), "{configs:?}: {got}");
    }
    // A key given twice keeps its last value, as in Kafka.
    let created = create_with(
        &mut client,
        "twice",
        1,
        1,
        &[
            ("retention.ms", Some("1000")),
            ("retention.ms", Some("2000")),
        ],
        &[],
        false,
    );
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    assert_eq!(described(&mut client, "twice")["retention.ms"].0, "2000");

    assert_eq!(described(&mut client, "target"), before);
    let ResponseKind::Metadata(metadata) = client.call(
        METADATA_VERSION,
        MetadataRequest::default().with_topics(None),
    ) else {
        panic!("not Metadata");
    };
    let names: Vec<_> = metadata
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref())
        .map(|n| n.0.to_string())
        .collect();
    assert!(!names.contains(&"refused".to_string()), "{names:?}");
}

#[test]
fn server_settings_are_static_broker_configs() {
    let server = Server::start_with("configs-server-settings", |config| {
        config.log_defaults.segment_bytes = 64 << 20;
    });
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, CREATE_TOPICS_VERSION, "served", 1);
    let result = describe_at(&mut client, DESCRIBE_CONFIGS_VERSION, "served", true, false);
    let segment = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == "segment.bytes")
        .unwrap();
    assert_eq!(segment.value.as_deref(), Some("67108864"));
    assert_eq!(segment.config_source, SOURCE_STATIC_BROKER);
    let synonyms: Vec<_> = segment
        .synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_deref().unwrap().to_string(),
                s.source,
            )
        })
        .collect();
    assert_eq!(
        synonyms,
        vec![
            (
                "log.segment.bytes".into(),
                "67108864".into(),
                SOURCE_STATIC_BROKER
            ),
            (
                "log.segment.bytes".into(),
                "1073741824".into(),
                SOURCE_DEFAULT
            ),
        ]
    );
    // retention.ms's broker synonym has no default in Kafka: no synonyms.
    let retention = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.config_source, SOURCE_DEFAULT);
    assert!(retention.synonyms.is_empty());
}

#[test]
fn configs_survive_a_restart() {
    let dir = data_dir("configs-restart");
    let _ = std::fs::remove_dir_all(&dir);
    let before = {
        let server = Server::start_in(dir.clone(), |_| {});
        let mut client = Client::connect(server.addr);
        create_configured(
            &mut client,
            "kept",
            2,
            &[
                ("max.message.bytes", "2000"),
                ("retention.ms", "3600000"),
                ("unclean.leader.election.enable", "true"),
            ],
        );
        let answer = incremental(
            &mut client,
            "kept",
            &[
                (
                    "follower.replication.throttled.replicas",
                    OP_APPEND,
                    Some("0:0"),
                ),
                ("retention.ms", OP_DELETE, None),
                ("compression.zstd.level", OP_SET, Some("7")),
            ],
            false,
        );
        assert_eq!(answer, (0, None));
        assert_eq!(
            produce(&mut client, "kept", 0, 4000),
            ResponseError::MessageTooLarge.code()
        );
        described(&mut client, "kept")
    };
    assert_eq!(before["follower.replication.throttled.replicas"].0, "0:0");
    assert_eq!(before["compression.zstd.level"].0, "7");
    assert_eq!(before["retention.ms"].1, SOURCE_DEFAULT);

    let server = Server::start_in(dir, |_| {});
    let mut client = Client::connect(server.addr);
    assert_eq!(described(&mut client, "kept"), before);
    // The honoured one is in force again on the reopened partitions.
    assert_eq!(
        produce(&mut client, "kept", 1, 4000),
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(produce(&mut client, "kept", 1, 1000), 0);
}

// ---------------------------------------------------------------- honoured keys

#[test]
fn max_message_bytes_bounds_the_batch() {
    let server = Server::start("configs-max-message-bytes");
    let mut client = Client::connect(server.addr);
    create_configured(&mut client, "small", 1, &[("max.message.bytes", "1000")]);
    // A batch is the 61-byte header, the record and its framing.
    assert_eq!(produce(&mut client, "small", 0, 900), 0);
    assert_eq!(
        produce(&mut client, "small", 0, 1000),
        ResponseError::MessageTooLarge.code()
    );
    set(&mut client, "small", "max.message.bytes", "100000");
    assert_eq!(produce(&mut client, "small", 0, 1000), 0);
}

#[test]
fn segment_bytes_and_segment_ms_roll_segments() {
    let dir = data_dir("configs-segments");
    let server = Server::start("configs-segments");
    let mut client = Client::connect(server.addr);
    // 1 MiB segments hold two 400 KB batches each (the batch limit is
    // lowered to what a segment holds). No retention: the records are from
    // 2023.
    create_configured(
        &mut client,
        "by-size",
        1,
        &[("segment.bytes", "1048576"), ("retention.ms", "-1")],
    );
    for _ in 0..5 {
        assert_eq!(produce(&mut client, "by-size", 0, 400_000), 0);
    }
    assert_eq!(partition_files(&dir, "by-size", "log").len(), 3);
    create_configured(&mut client, "by-age", 1, &[("retention.ms", "-1")]);
    assert_eq!(produce(&mut client, "by-age", 0, 100), 0);
    assert_eq!(partition_files(&dir, "by-age", "log").len(), 1);
    set(&mut client, "by-age", "segment.ms", "1");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(produce(&mut client, "by-age", 0, 100), 0);
    assert!(partition_files(&dir, "by-age", "log").len() >= 2);
}

#[test]
fn retention_deletes_old_segments_unless_the_cleanup_policy_is_empty() {
    let server = Server::start("configs-retention");
    let mut client = Client::connect(server.addr);
    // Every append after the first rolls (segment.ms=1); the records are
    // from 2023, older than any retention.ms here.
    for (topic, configs) in [
        ("by-time", vec![("retention.ms", "3600000")]),
        (
            "by-size",
            vec![("retention.bytes", "0"), ("retention.ms", "-1")],
        ),
        (
            "no-limit",
            vec![("retention.bytes", "-5"), ("retention.ms", "-1")],
        ),
        (
            "kept",
            vec![
                ("cleanup.policy", ""),
                ("retention.ms", "3600000"),
                ("retention.bytes", "0"),
            ],
        ),
    ] {
        let mut configs = configs;
        configs.push(("segment.ms", "1"));
        create_configured(&mut client, topic, 1, &configs);
        for _ in 0..3 {
            assert_eq!(produce(&mut client, topic, 0, 100), 0);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    wait_for("retention by time", || {
        earliest(&mut client, "by-time") >= 2
    });
    wait_for("retention by size", || {
        earliest(&mut client, "by-size") >= 2
    });
    // Several maintenance rounds later, nothing was deleted from the others.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(earliest(&mut client, "no-limit"), 0);
    assert_eq!(earliest(&mut client, "kept"), 0);
    // Back to delete: the retention settings act again.
    set(&mut client, "kept", "cleanup.policy", "delete");
    wait_for("retention after cleanup.policy=delete", || {
        earliest(&mut client, "kept") >= 2
    });
}

#[test]
fn index_interval_bytes_spaces_index_entries() {
    let dir = data_dir("configs-index-interval");
    let server = Server::start("configs-index-interval");
    let mut client = Client::connect(server.addr);
    const BATCHES: u64 = 40;
    for (topic, interval) in [("every-batch", "0"), ("every-8k", "8192"), ("default", "")] {
        // The records are from 2023: no retention, which would delete the
        // sealed segment.
        let configs: Vec<_> = [("index.interval.bytes", interval), ("retention.ms", "-1")]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        create_configured(&mut client, topic, 1, &configs);
        for _ in 0..BATCHES {
            assert_eq!(produce(&mut client, topic, 0, 1000), 0);
        }
        // Seal the segment: the index file then holds every entry.
        set(&mut client, topic, "segment.ms", "1");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(produce(&mut client, topic, 0, 1000), 0);
    }
    // Index files: a 64-byte header and 8 bytes per entry.
    let entries = |topic: &str| {
        let first = &partition_files(&dir, topic, "index")[0];
        (std::fs::metadata(first).unwrap().len() - 64) / 8
    };
    assert_eq!(entries("every-batch"), BATCHES);
    // ~1.1 KB per batch: an entry every 8 batches; every 15 at 16 KiB.
    assert_eq!(entries("every-8k"), BATCHES.div_ceil(8));
    assert_eq!(entries("default"), BATCHES.div_ceil(15));
}

#[test]
fn min_insync_replicas_is_accepted_as_kafka_accepts_it() {
    let server = Server::start("configs-min-insync");
    let mut client = Client::connect(server.addr);
    // Kafka 3.9 takes any value >= 1 and requires at most the replication
    // factor in sync: with one replica, acks=all is answered.
    create_configured(&mut client, "isr", 1, &[("min.insync.replicas", "3")]);
    assert_eq!(produce(&mut client, "isr", 0, 10), 0);
    set(&mut client, "isr", "min.insync.replicas", "2");
    assert_eq!(produce(&mut client, "isr", 0, 10), 0);
    assert_eq!(
        described(&mut client, "isr")["min.insync.replicas"],
        ("2".into(), SOURCE_TOPIC)
    );
    let answer = incremental(
        &mut client,
        "isr",
        &[("min.insync.replicas", OP_SET, Some("0"))],
        false,
    );
    expect_invalid_config(answer, "min.insync.replicas", "Value must be at least 1");
}

// ---------------------------------------------------------------- replica assignment

#[test]
fn a_manual_assignment_to_this_broker_is_accepted_others_are_refused() {
    let server = Server::start("configs-assignment");
    let mut client = Client::connect(server.addr);
    let on_node: &[(i32, &[i32])] = &[(0, &[0]), (2, &[0]), (1, &[0])];
    let created = create_with(
        &mut client,
        "assigned",
        -1,
        -1,
        &[("retention.ms", Some("60000"))],
        on_node,
        false,
    );
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
    assert_eq!(
        described(&mut client, "assigned")["retention.ms"].0,
        "60000"
    );
    let ResponseKind::Metadata(metadata) = client.call(
        METADATA_VERSION,
        MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name("assigned"))),
        ])),
    ) else {
        panic!("not Metadata");
    };
    let partitions = &metadata.topics[0].partitions;
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!(
            (p.leader_id, p.replica_nodes.clone()),
            (BrokerId(0), vec![BrokerId(0)])
        );
    }
    assert_eq!(produce(&mut client, "assigned", 2, 10), 0);
    let ResponseKind::Fetch(fetched) = client.call(FETCH_VERSION, fetch_from_start("assigned", 2))
    else {
        panic!("not Fetch");
    };
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert!(partition.records.as_ref().is_some_and(|r| !r.is_empty()));

    // validate_only: checked, not created.
    let checked = create_with(&mut client, "checked", -1, -1, &[], &[(0, &[0])], true);
    assert_eq!((checked.error_code, checked.num_partitions), (0, 1));
    assert_eq!(
        create_with(&mut client, "checked", 1, 1, &[], &[], false).error_code,
        0,
        "the validate-only create created nothing"
    );

    for (assignment, partitions, rf, error, message) in [
        (
            &[(0, &[1][..])][..],
            -1,
            -1,
            ResponseError::InvalidReplicaAssignment,
            "includes broker 1, but no such broker is registered",
        ),
        (
            &[(0, &[0, 0][..])],
            -1,
            -1,
            ResponseError::InvalidReplicaAssignment,
            "includes the broker 0 more than once",
        ),
        (
            &[(0, &[][..])],
            -1,
            -1,
            ResponseError::InvalidReplicaAssignment,
            "empty replica list",
        ),
        (
            &[(0, &[0][..]), (2, &[0][..])],
            -1,
            -1,
            ResponseError::InvalidReplicaAssignment,
            "consecutive 0-based",
        ),
        (
            &[(0, &[0][..]), (0, &[0][..])],
            -1,
            -1,
            ResponseError::InvalidReplicaAssignment,
            "multiple manual partition assignments",
        ),
        (
            &[(0, &[0][..])],
            1,
            -1,
            ResponseError::InvalidRequest,
            "numPartitions was not set to -1",
        ),
        (
            &[(0, &[0][..])],
            -1,
            1,
            ResponseError::InvalidRequest,
            "replication factor was not set to -1",
        ),
    ] {
        let refused = create_with(
            &mut client,
            "refused",
            partitions,
            rf,
            &[],
            assignment,
            false,
        );
        assert_eq!(
            refused.error_code,
            error.code(),
            "{assignment:?}: {:?}",
            refused.error_message
        );
        let text = refused.error_message.unwrap().to_string();
        assert!(text.contains(message), "{assignment:?}: {text}");
    }
    // Configs are checked first, as in Kafka.
    let refused = create_with(
        &mut client,
        "refused",
        -1,
        -1,
        &[("retention.ms", Some("x"))],
        &[(0, &[1])],
        false,
    );
    assert_eq!(refused.error_code, ResponseError::InvalidConfig.code());
}
