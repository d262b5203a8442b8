//! `ringlog topic`: the requests it builds, decoded by the broker's own
//! request parser (framing and response decoding are tested with
//! `ringlog_protocol::client`), and the command end to end against a fake broker built from the same
//! broker-side codecs (`ringlog_protocol`), which records what it was sent.

mod common;
mod fake_admin;

use common::{bodies, broker_parse, fake_broker, metadata_with, name, ringlog, s, text};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsResponse, CreateTopicsResponse, DeleteTopicsResponse,
    DescribeConfigsResponse, IncrementalAlterConfigsResponse, MetadataResponse, RequestKind,
    ResponseKind, TopicName,
};
use kafka_protocol::ResponseError;
use ringlog_protocol::api_versions::api_versions_response;
use ringlog_shard::admin::{AdminAnswer, AdminRequest, PartitionLoad, ShardLoad};
use ringlog_tools::admin_api::PlacementJson;
use ringlog_tools::kafka_client::ClientError;
use ringlog_tools::topic::{
    check_created, create_partitions_request, create_topics_request, delete_topics_request,
    describe_configs_request, incremental_alter_configs_request, metadata_request,
    render_description, render_topic_list, CLIENT_ID, CONFIG_OPERATION_DELETE,
    CONFIG_OPERATION_SET, CONFIG_SOURCE_STATIC_BROKER, CONFIG_SOURCE_TOPIC, RESOURCE_TYPE_TOPIC,
};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::Output;
use std::time::Duration;

#[test]
fn requests_decode_with_the_broker_parser() {
    let configs = vec![("retention.ms".to_string(), "1000".to_string())];
    for version in [2, 4, 7] {
        let built = create_topics_request(version, "orders", 3, &configs, true, 5000);
        let parsed = broker_parse(CLIENT_ID, version, 41, &built);
        assert_eq!(parsed.api_key, ApiKey::CreateTopics);
        assert_eq!(parsed.api_version, version);
        assert_eq!(parsed.correlation_id(), 41);
        assert_eq!(parsed.client_id(), Some(CLIENT_ID));
        let RequestKind::CreateTopics(body) = parsed.body else {
            panic!("{:?}", parsed.body)
        };
        assert_eq!(body, built);
        let topic = &body.topics[0];
        assert_eq!(topic.name, name("orders"));
        assert_eq!(topic.num_partitions, 3);
        assert_eq!(topic.replication_factor, if version >= 4 { -1 } else { 1 });
        assert_eq!(topic.configs[0].name, s("retention.ms"));
        assert_eq!(topic.configs[0].value, Some(s("1000")));
        assert!(body.validate_only);
        assert_eq!(body.timeout_ms, 5000);
    }

    for version in [0, 1, 4, 12] {
        let all = metadata_request(version, None);
        let RequestKind::Metadata(body) = broker_parse(CLIENT_ID, version, 1, &all).body else {
            panic!()
        };
        // v0 asks for every topic with an empty list, later versions with null.
        let every_topic = if version == 0 {
            body.topics.as_ref().is_some_and(|t| t.is_empty())
        } else {
            body.topics.is_none()
        };
        assert!(every_topic, "v{version}: {body:?}");
        let one = metadata_request(version, Some("orders"));
        let RequestKind::Metadata(body) = broker_parse(CLIENT_ID, version, 2, &one).body else {
            panic!()
        };
        assert_eq!(body.topics.unwrap()[0].name, Some(name("orders")));
        if version >= 4 {
            assert!(!body.allow_auto_topic_creation, "describe must not create");
        }
    }

    for version in [1, 5, 6] {
        let built = delete_topics_request(version, "orders", 3000);
        let RequestKind::DeleteTopics(body) = broker_parse(CLIENT_ID, version, 3, &built).body
        else {
            panic!()
        };
        let names: Vec<Option<TopicName>> = if version >= 6 {
            body.topics.iter().map(|t| t.name.clone()).collect()
        } else {
            body.topic_names.iter().cloned().map(Some).collect()
        };
        assert_eq!(names, vec![Some(name("orders"))]);
        assert_eq!(body.timeout_ms, 3000);
    }

    let built = describe_configs_request("orders");
    for version in [1, 4] {
        let RequestKind::DescribeConfigs(body) = broker_parse(CLIENT_ID, version, 4, &built).body
        else {
            panic!()
        };
        let resource = &body.resources[0];
        assert_eq!(resource.resource_type, RESOURCE_TYPE_TOPIC);
        assert_eq!(resource.resource_name, s("orders"));
        assert_eq!(resource.configuration_keys, None, "every config");
    }

    let built = incremental_alter_configs_request(
        "orders",
        &[("retention.ms".to_string(), "5".to_string())],
        &["segment.ms".to_string()],
    );
    for version in [0, 1] {
        let RequestKind::IncrementalAlterConfigs(body) =
            broker_parse(CLIENT_ID, version, 5, &built).body
        else {
            panic!()
        };
        let configs = &body.resources[0].configs;
        assert_eq!(body.resources[0].resource_name, s("orders"));
        assert_eq!(
            configs
                .iter()
                .map(|c| (c.name.as_str(), c.config_operation, c.value.as_deref()))
                .collect::<Vec<_>>(),
            vec![
                ("retention.ms", CONFIG_OPERATION_SET, Some("5")),
                ("segment.ms", CONFIG_OPERATION_DELETE, None)
            ]
        );
    }

    let built = create_partitions_request("orders", 6, 2000);
    for version in [0, 3] {
        let RequestKind::CreatePartitions(body) = broker_parse(CLIENT_ID, version, 6, &built).body
        else {
            panic!()
        };
        assert_eq!(body.topics[0].name, name("orders"));
        assert_eq!(body.topics[0].count, 6);
        assert_eq!(body.topics[0].assignments, None);
    }
}

#[test]
fn kafka_errors_print_with_their_kafka_names() {
    let response =
        CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default()
            .with_name(name("orders"))
            .with_error_code(37)
            .with_error_message(Some(s("Number of partitions must be at least 1.")))]);
    let err = check_created("b:9092", "orders", 1, &response).unwrap_err();
    assert_eq!(
        err.to_string(),
        "orders: INVALID_PARTITIONS (37): Number of partitions must be at least 1."
    );
    let without_message =
        CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default()
            .with_name(name("orders"))
            .with_error_code(36)]);
    let err = check_created("b:9092", "orders", 1, &without_message).unwrap_err();
    assert_eq!(err.to_string(), "orders: TOPIC_ALREADY_EXISTS (36)");
    let err = check_created("b:9092", "other", 1, &without_message).unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
}

fn configs_of(topic: &str) -> DescribeConfigsResponse {
    DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
        .with_resource_type(RESOURCE_TYPE_TOPIC)
        .with_resource_name(s(topic))
        .with_configs(vec![
            DescribeConfigsResourceResult::default()
                .with_name(s("segment.bytes"))
                .with_value(Some(s("1073741824")))
                .with_config_source(5),
            DescribeConfigsResourceResult::default()
                .with_name(s("segment.ms"))
                .with_value(Some(s("60000")))
                .with_config_source(CONFIG_SOURCE_STATIC_BROKER),
            DescribeConfigsResourceResult::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("60000")))
                .with_config_source(CONFIG_SOURCE_TOPIC),
        ])])
}

#[test]
fn list_and_describe_render_readable_text() {
    let listed = render_topic_list("b:9092", &metadata_with(&[("orders", 3), ("a", 1)])).unwrap();
    assert_eq!(listed, "TOPIC   PARTITIONS\na       1\norders  3\n");
    assert_eq!(
        render_topic_list("b:9092", &MetadataResponse::default()).unwrap(),
        "no topics\n"
    );
    let described = render_description(
        "b:9092",
        "orders",
        &metadata_with(&[("orders", 2)]),
        &configs_of("orders"),
        &[],
    )
    .unwrap();
    assert_eq!(
        described,
        "topic       orders\n\
         partitions  2\n\
         \x20 partition 0  leader 0 (127.0.0.1:9092)  shard -\n\
         \x20 partition 1  leader 0 (127.0.0.1:9092)  shard -\n\
         configs\n\
         \x20 retention.ms   60000       (set on topic)\n\
         \x20 segment.bytes  1073741824  (default)\n\
         \x20 segment.ms     60000       (server setting)\n"
    );
    // Each partition shows the shard its placement names.
    let placement = |topic: &str, partition, shard| PlacementJson {
        topic: topic.to_string(),
        partition,
        shard,
    };
    let described = render_description(
        "b:9092",
        "orders",
        &metadata_with(&[("orders", 2)]),
        &configs_of("orders"),
        &[
            placement("audit", 0, 0),
            placement("orders", 0, 3),
            placement("orders", 1, 1),
        ],
    )
    .unwrap();
    assert!(
        described.contains(
            "  partition 0  leader 0 (127.0.0.1:9092)  shard 3\n\
             \x20 partition 1  leader 0 (127.0.0.1:9092)  shard 1\n"
        ),
        "{described}"
    );
    let mut unknown = metadata_with(&[("orders", 0)]);
    unknown.topics[0].error_code = ResponseError::UnknownTopicOrPartition.code();
    let err =
        render_description("b:9092", "orders", &unknown, &configs_of("orders"), &[]).unwrap_err();
    assert_eq!(err.to_string(), "orders: UNKNOWN_TOPIC_OR_PARTITION (3)");
}

// ---------------------------------------------------------------- end to end

fn ringlog_topic(addr: SocketAddr, args: &[&str]) -> Output {
    ringlog("topic", addr, args)
}

#[test]
fn create_sends_the_topic_and_reports_success() {
    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::CreateTopics(body) => Some((
            request.api_version,
            ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(vec![
                CreatableTopicResult::default()
                    .with_name(body.topics[0].name.clone())
                    .with_num_partitions(body.topics[0].num_partitions),
            ])),
        )),
        _ => None,
    });
    let out = ringlog_topic(
        addr,
        &[
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=1000",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "created topic orders with 3 partitions\n"
    );
    let requests = broker.join().unwrap();
    assert_eq!(requests[0].api_key, ApiKey::ApiVersions);
    assert_eq!(requests[0].api_version, 3);
    assert_eq!(requests[1].api_key, ApiKey::CreateTopics);
    assert_eq!(requests[1].api_version, 7, "highest version both know");
    let RequestKind::CreateTopics(body) = &requests[1].body else {
        panic!()
    };
    assert_eq!(body.topics[0].num_partitions, 3);
    assert_eq!(body.topics[0].replication_factor, -1);
    assert_eq!(body.topics[0].configs[0].name, s("retention.ms"));
    assert!(!body.validate_only);
    assert_eq!(body.timeout_ms, 10_000);
}

#[test]
fn a_kafka_error_is_printed_with_name_code_and_message() {
    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::CreateTopics(_) => Some((
            request.api_version,
            ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(vec![
                CreatableTopicResult::default()
                    .with_name(name("orders"))
                    .with_error_code(ResponseError::TopicAlreadyExists.code())
                    .with_error_message(Some(s("Topic 'orders' already exists."))),
            ])),
        )),
        _ => None,
    });
    let out = ringlog_topic(addr, &["create", "orders", "--validate-only"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ringlog topic: orders: TOPIC_ALREADY_EXISTS (36): Topic 'orders' already exists.\n"
    );
    assert!(out.stdout.is_empty());
    let requests = broker.join().unwrap();
    let RequestKind::CreateTopics(body) = bodies(&requests)[0] else {
        panic!()
    };
    assert!(body.validate_only);
}

#[test]
fn list_and_describe_ask_for_metadata_and_configs() {
    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::Metadata(_) => Some((
            request.api_version,
            ResponseKind::Metadata(metadata_with(&[("orders", 2), ("events", 1)])),
        )),
        _ => None,
    });
    let out = ringlog_topic(addr, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "TOPIC   PARTITIONS\nevents  1\norders  2\n"
    );
    let requests = broker.join().unwrap();
    assert_eq!(requests[1].api_version, 12);
    let RequestKind::Metadata(body) = bodies(&requests)[0] else {
        panic!()
    };
    assert_eq!(body.topics, None);

    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::Metadata(_) => Some((
            request.api_version,
            ResponseKind::Metadata(metadata_with(&[("orders", 2)])),
        )),
        RequestKind::DescribeConfigs(_) => Some((
            request.api_version,
            ResponseKind::DescribeConfigs(configs_of("orders")),
        )),
        _ => None,
    });
    let out = ringlog_topic(addr, &["describe", "orders"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("topic       orders\npartitions  2\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("retention.ms   60000       (set on topic)"),
        "{stdout}"
    );
    let requests = broker.join().unwrap();
    let kinds: Vec<ApiKey> = requests.iter().map(|r| r.api_key).collect();
    assert_eq!(
        kinds,
        [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::DescribeConfigs
        ]
    );
}

#[test]
fn describe_with_http_shows_each_partition_shard() {
    let (addr, _broker) = fake_broker(|request| match &request.body {
        RequestKind::Metadata(_) => Some((
            request.api_version,
            ResponseKind::Metadata(metadata_with(&[("orders", 2)])),
        )),
        RequestKind::DescribeConfigs(_) => Some((
            request.api_version,
            ResponseKind::DescribeConfigs(configs_of("orders")),
        )),
        _ => None,
    });
    let (http, calls) = fake_admin::admin_endpoint(|request| {
        assert_eq!(request, &AdminRequest::Shards);
        let load = |partition| PartitionLoad {
            topic: "orders".into(),
            partition,
            bytes: 0,
            produce_bytes_per_s: 0.0,
            fetch_bytes_per_s: 0.0,
        };
        Ok(AdminAnswer::Shards(vec![
            ShardLoad {
                shard: 0,
                cpu: None,
                partitions: vec![load(1)],
                busy: 0.0,
                in_flight: 0,
            },
            ShardLoad {
                shard: 1,
                cpu: None,
                partitions: vec![load(0)],
                busy: 0.0,
                in_flight: 0,
            },
        ]))
    });
    let out = ringlog_topic(addr, &["describe", "orders", "--http", &http.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "  partition 0  leader 0 (127.0.0.1:9092)  shard 1\n\
             \x20 partition 1  leader 0 (127.0.0.1:9092)  shard 0\n"
        ),
        "{stdout}"
    );
    assert_eq!(
        calls.recv_timeout(Duration::from_secs(30)),
        Ok(AdminRequest::Shards)
    );
}

#[test]
fn describe_names_an_unreachable_admin_address() {
    let (addr, _broker) = fake_broker(|request| match &request.body {
        RequestKind::Metadata(_) => Some((
            request.api_version,
            ResponseKind::Metadata(metadata_with(&[("orders", 1)])),
        )),
        RequestKind::DescribeConfigs(_) => Some((
            request.api_version,
            ResponseKind::DescribeConfigs(configs_of("orders")),
        )),
        _ => None,
    });
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = ringlog_topic(addr, &["describe", "orders", "--http", &free]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("ringlog topic: cannot connect to http://{free}: ")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn alter_sets_deletes_and_grows() {
    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::IncrementalAlterConfigs(_) => Some((
            request.api_version,
            ResponseKind::IncrementalAlterConfigs(
                IncrementalAlterConfigsResponse::default().with_responses(vec![
                    AlterConfigsResourceResponse::default()
                        .with_resource_type(RESOURCE_TYPE_TOPIC)
                        .with_resource_name(s("orders")),
                ]),
            ),
        )),
        RequestKind::CreatePartitions(_) => Some((
            request.api_version,
            ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(vec![
                CreatePartitionsTopicResult::default().with_name(name("orders")),
            ])),
        )),
        _ => None,
    });
    let out = ringlog_topic(
        addr,
        &[
            "alter",
            "orders",
            "--set",
            "retention.ms=5",
            "--delete",
            "segment.ms",
            "--partitions",
            "4",
            "--timeout-ms",
            "3000",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "topic orders: set retention.ms=5\ntopic orders: deleted segment.ms\ntopic orders: now 4 partitions\n"
    );
    let requests = broker.join().unwrap();
    let sent = bodies(&requests);
    let RequestKind::IncrementalAlterConfigs(alter) = sent[0] else {
        panic!()
    };
    assert_eq!(alter.resources[0].configs.len(), 2);
    let RequestKind::CreatePartitions(grow) = sent[1] else {
        panic!()
    };
    assert_eq!(grow.topics[0].count, 4);
    assert_eq!(grow.timeout_ms, 3000);
}

#[test]
fn delete_by_name_and_unknown_topic_error() {
    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::DeleteTopics(_) => Some((
            request.api_version,
            ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(vec![
                DeletableTopicResult::default()
                    .with_name(Some(name("orders")))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            ])),
        )),
        _ => None,
    });
    let out = ringlog_topic(addr, &["delete", "orders"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ringlog topic: orders: UNKNOWN_TOPIC_OR_PARTITION (3)\n"
    );
    let requests = broker.join().unwrap();
    assert_eq!(requests[1].api_version, 6);
    let RequestKind::DeleteTopics(body) = bodies(&requests)[0] else {
        panic!()
    };
    assert_eq!(body.topics[0].name, Some(name("orders")));

    let (addr, _broker) = fake_broker(|request| match &request.body {
        RequestKind::DeleteTopics(_) => Some((
            request.api_version,
            ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(vec![
                DeletableTopicResult::default().with_name(Some(name("orders"))),
            ])),
        )),
        _ => None,
    });
    let out = ringlog_topic(addr, &["delete", "orders"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "deleted topic orders\n");
}

#[test]
fn an_old_broker_gets_api_versions_v0() {
    // A broker that knows ApiVersions 0..=2 answers v3 the KIP-511 way.
    let (addr, broker) = fake_broker(|request| match &request.body {
        RequestKind::ApiVersions(_) => {
            let (_, mut response) = api_versions_response(request.api_version);
            for api in &mut response.api_keys {
                if api.api_key == ApiKey::ApiVersions as i16 {
                    api.max_version = 2;
                }
            }
            if request.api_version > 2 {
                response.error_code = ResponseError::UnsupportedVersion.code();
                Some((0, ResponseKind::ApiVersions(response)))
            } else {
                response.error_code = 0;
                Some((request.api_version, ResponseKind::ApiVersions(response)))
            }
        }
        RequestKind::Metadata(_) => Some((
            request.api_version,
            ResponseKind::Metadata(MetadataResponse::default()),
        )),
        _ => None,
    });
    let out = ringlog_topic(addr, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "no topics\n");
    let requests = broker.join().unwrap();
    let sent: Vec<(ApiKey, i16)> = requests
        .iter()
        .map(|r| (r.api_key, r.api_version))
        .collect();
    assert_eq!(
        sent,
        [
            (ApiKey::ApiVersions, 3),
            (ApiKey::ApiVersions, 0),
            (ApiKey::Metadata, 12)
        ]
    );
}

#[test]
fn connection_failures_name_the_broker() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let out = ringlog_topic(addr, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("ringlog topic: cannot connect to {addr}: ")),
        "{stderr}"
    );

    // A broker that accepts but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(stream);
    });
    let out = ringlog_topic(silent, &["list", "--timeout-ms", "300"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("ringlog topic: {silent}: no answer within 300 ms\n")
    );
    holder.join().unwrap();

    // One that hangs up instead of answering.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let rude = listener.local_addr().unwrap();
    let closer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Reads the whole request (closing on unread bytes would reset).
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut body).unwrap();
    });
    let out = ringlog_topic(rude, &["list"]);
    closer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("ringlog topic: {rude}: the broker closed the connection\n")
    );
}

#[test]
fn usage_errors_exit_2() {
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for args in [
        &["alter", "orders"][..],
        &["create", "orders", "--partitions", "0"],
        &["create", "orders", "--config", "novalue"],
        &["create"],
        &["list", "--timeout-ms", "0"],
    ] {
        let out = ringlog_topic(unused, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
