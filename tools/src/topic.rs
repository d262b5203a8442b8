//! `ringlog topic`: create, list, describe, alter and delete topics over
//! the Kafka protocol, so it works against ringlog and any Kafka broker
//! alike. The connection, version choice and error rendering are the
//! shared admin client's ([`crate::kafka_client`]). Which shard owns each
//! partition is ringlog's own business, not Kafka's: `describe` asks the
//! admin API for it ([`crate::admin_client`]) when `--http` is given.
//!
//! The request builders and the renderers are pure functions, so the tests
//! check them with bytes made by the broker-side codecs, without a broker.

use crate::admin_api::{PlacementJson, PlacementsJson, PARTITIONS_PATH};
use crate::admin_client::{AdminAddressArgs, AdminClient};
use crate::kafka_client::{
    check_error, exit_code, render_table, str_bytes, topic_name, BrokerArgs, ClientError,
};
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
    MetadataResponse,
};
use kafka_protocol::ResponseError;
use ringlog_protocol::client::error_name;
use std::process::ExitCode;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-topic";
/// Kafka's ConfigResource type of a topic.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
pub const CONFIG_OPERATION_SET: i8 = 0;
/// See [`CONFIG_OPERATION_SET`].
pub const CONFIG_OPERATION_DELETE: i8 = 1;
/// DescribeConfigs source of a value set on the topic itself
/// (DYNAMIC_TOPIC_CONFIG); every source but this and
/// [`CONFIG_SOURCE_STATIC_BROKER`] is shown as a default.
pub const CONFIG_SOURCE_TOPIC: i8 = 1;
/// DescribeConfigs' source of a value the broker's own settings give.
pub const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;

/// `ringlog topic` and its options.
#[derive(Args)]
pub struct TopicArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    admin: AdminAddressArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

/// The `ringlog topic` subcommands.
#[derive(Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        topic: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// A topic config, e.g. retention.ms=86400000; repeat for more.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Only ask the broker whether the topic could be created.
        #[arg(long)]
        validate_only: bool,
    },
    /// List every topic and its number of partitions.
    List,
    /// Show a topic's partitions, their leaders and shards (shards need
    /// --http), and every config.
    Describe {
        /// Topic name.
        topic: String,
    },
    /// Change a topic's configs or add partitions.
    #[command(group(
        ArgGroup::new("change")
            .args(["sets", "deletes", "partitions"])
            .required(true)
            .multiple(true)
    ))]
    Alter {
        /// Topic name.
        topic: String,
        /// Set a config, e.g. retention.ms=86400000; repeat for more.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        sets: Vec<(String, String)>,
        /// Remove a config set on the topic (back to the default); repeat for more.
        #[arg(long = "delete", value_name = "KEY")]
        deletes: Vec<String>,
        /// Grow the topic to this many partitions.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        topic: String,
    },
}

/// `key=value`, split at the first `=`; the key must not be empty.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

// ---------------------------------------------------------------- requests

/// CreateTopics for one topic. The replication factor is the broker's
/// default (-1) from v4 on, where Kafka allows it, else 1: ringlog has a
/// single replica either way.
pub fn create_topics_request(
    version: i16,
    topic: &str,
    partitions: i32,
    configs: &[(String, String)],
    validate_only: bool,
    timeout_ms: i32,
) -> CreateTopicsRequest {
    assert!(partitions >= 1);
    let configs = configs
        .iter()
        .map(|(name, value)| {
            CreatableTopicConfig::default()
                .with_name(str_bytes(name))
                .with_value(Some(str_bytes(value)))
        })
        .collect();
    let topic = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(if version >= 4 { -1 } else { 1 })
        .with_configs(configs);
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout_ms)
        .with_validate_only(validate_only)
}

/// Metadata for `topic`, or for every topic. Never creates the topic
/// (from v4, where the request can say so).
pub fn metadata_request(version: i16, topic: Option<&str>) -> MetadataRequest {
    let topics = match topic {
        Some(name) => Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(name)))
        ]),
        // v0 reads an empty list as every topic, later versions a null one.
        None if version == 0 => Some(Vec::new()),
        None => None,
    };
    let request = MetadataRequest::default().with_topics(topics);
    if version >= 4 {
        request.with_allow_auto_topic_creation(false)
    } else {
        request
    }
}

/// DescribeConfigs of every config of `topic`.
pub fn describe_configs_request(topic: &str) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_TYPE_TOPIC)
        .with_resource_name(str_bytes(topic))
        .with_configuration_keys(None)])
}

/// IncrementalAlterConfigs setting `sets` and deleting `deletes` on `topic`.
pub fn incremental_alter_configs_request(
    topic: &str,
    sets: &[(String, String)],
    deletes: &[String],
) -> IncrementalAlterConfigsRequest {
    let set = sets.iter().map(|(name, value)| {
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(CONFIG_OPERATION_SET)
            .with_value(Some(str_bytes(value)))
    });
    let delete = deletes.iter().map(|name| {
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(CONFIG_OPERATION_DELETE)
            .with_value(None)
    });
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TYPE_TOPIC)
        .with_resource_name(str_bytes(topic))
        .with_configs(set.chain(delete).collect())])
}

/// CreatePartitions growing `topic` to `count` partitions.
pub fn create_partitions_request(
    topic: &str,
    count: i32,
    timeout_ms: i32,
) -> CreatePartitionsRequest {
    assert!(count >= 1);
    CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(topic))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(timeout_ms)
}

/// DeleteTopics of `topic`, by name (v6 moved names into a list of states).
pub fn delete_topics_request(version: i16, topic: &str, timeout_ms: i32) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= 6 {
        request.with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(topic)))
        ])
    } else {
        request.with_topic_names(vec![topic_name(topic)])
    }
}

// ---------------------------------------------------------------- answers

fn missing(address: &str, api: &str, topic: &str) -> ClientError {
    ClientError::Protocol {
        address: address.to_string(),
        why: format!("the {api} answer does not mention topic {topic:?}"),
    }
}

/// The partition count CreateTopics reports (v5+), else the one asked for.
///
/// # Errors
///
/// The topic's error, or an answer without the topic.
pub fn check_created(
    address: &str,
    topic: &str,
    partitions: i32,
    response: &CreateTopicsResponse,
) -> Result<i32, ClientError> {
    let result = response
        .topics
        .iter()
        .find(|result| result.name.as_str() == topic)
        .ok_or_else(|| missing(address, "CreateTopics", topic))?;
    check_error(topic, result.error_code, result.error_message.as_ref())?;
    Ok(if result.num_partitions > 0 {
        result.num_partitions
    } else {
        partitions
    })
}

/// # Errors
///
/// The topic's error, or an answer without the topic.
pub fn check_deleted(
    address: &str,
    topic: &str,
    response: &DeleteTopicsResponse,
) -> Result<(), ClientError> {
    let result = response
        .responses
        .iter()
        .find(|result| result.name.as_deref().map(|n| n.as_str()) == Some(topic))
        .ok_or_else(|| missing(address, "DeleteTopics", topic))?;
    check_error(topic, result.error_code, result.error_message.as_ref())
}

/// # Errors
///
/// The topic's error, or an answer without the topic.
pub fn check_altered(
    address: &str,
    topic: &str,
    response: &IncrementalAlterConfigsResponse,
) -> Result<(), ClientError> {
    let result = response
        .responses
        .iter()
        .find(|result| {
            result.resource_type == RESOURCE_TYPE_TOPIC && result.resource_name.as_str() == topic
        })
        .ok_or_else(|| missing(address, "IncrementalAlterConfigs", topic))?;
    check_error(topic, result.error_code, result.error_message.as_ref())
}

/// # Errors
///
/// The topic's error, or an answer without the topic.
pub fn check_partitions_created(
    address: &str,
    topic: &str,
    response: &CreatePartitionsResponse,
) -> Result<(), ClientError> {
    let result = response
        .results
        .iter()
        .find(|result| result.name.as_str() == topic)
        .ok_or_else(|| missing(address, "CreatePartitions", topic))?;
    check_error(topic, result.error_code, result.error_message.as_ref())
}

/// Metadata v13 added an error for the whole request.
fn check_metadata(address: &str, response: &MetadataResponse) -> Result<(), ClientError> {
    check_error(address, response.error_code, None)
}

/// `ringlog topic list`: a table of topic names and partition counts,
/// sorted by name. A topic the broker reports an error for shows it.
///
/// # Errors
///
/// The request-wide error of Metadata v13.
pub fn render_topic_list(
    address: &str,
    response: &MetadataResponse,
) -> Result<String, ClientError> {
    check_metadata(address, response)?;
    if response.topics.is_empty() {
        return Ok("no topics\n".to_string());
    }
    let mut rows: Vec<Vec<String>> = response
        .topics
        .iter()
        .map(|topic| {
            let name = match &topic.name {
                Some(name) => name.to_string(),
                None => topic.topic_id.to_string(),
            };
            let partitions = match ResponseError::try_from_code(topic.error_code) {
                None => topic.partitions.len().to_string(),
                Some(error) => format!(
                    "{}  {} ({})",
                    topic.partitions.len(),
                    error_name(error),
                    error.code()
                ),
            };
            vec![name, partitions]
        })
        .collect();
    rows.sort();
    Ok(render_table(&["TOPIC", "PARTITIONS"], &rows))
}

/// `ringlog topic describe`: the topic's id, partitions with their leaders
/// and shards (`-` for a partition not in `placements`, which is empty
/// without `--http`), and every config with its value and whether it is a
/// default.
///
/// # Errors
///
/// The topic's error in either answer, or an answer without the topic.
pub fn render_description(
    address: &str,
    topic: &str,
    metadata: &MetadataResponse,
    configs: &DescribeConfigsResponse,
    placements: &[PlacementJson],
) -> Result<String, ClientError> {
    check_metadata(address, metadata)?;
    let found = metadata
        .topics
        .iter()
        .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(topic))
        .ok_or_else(|| missing(address, "Metadata", topic))?;
    check_error(topic, found.error_code, None)?;
    let described = configs
        .results
        .iter()
        .find(|r| r.resource_type == RESOURCE_TYPE_TOPIC && r.resource_name.as_str() == topic)
        .ok_or_else(|| missing(address, "DescribeConfigs", topic))?;
    check_error(
        topic,
        described.error_code,
        described.error_message.as_ref(),
    )?;

    let mut out = format!("topic       {topic}\n");
    if !found.topic_id.is_nil() {
        out.push_str(&format!("id          {}\n", found.topic_id));
    }
    out.push_str(&format!("partitions  {}\n", found.partitions.len()));
    let mut partitions: Vec<_> = found.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    for partition in partitions {
        let leader = if partition.leader_id.0 < 0 {
            "none".to_string()
        } else {
            match metadata
                .brokers
                .iter()
                .find(|b| b.node_id == partition.leader_id)
            {
                Some(broker) => format!(
                    "{} ({}:{})",
                    partition.leader_id.0, broker.host, broker.port
                ),
                None => partition.leader_id.0.to_string(),
            }
        };
        let shard = placements
            .iter()
            .find(|p| {
                p.topic == topic && u32::try_from(partition.partition_index) == Ok(p.partition)
            })
            .map_or("-".to_string(), |p| p.shard.to_string());
        out.push_str(&format!(
            "  partition {}  leader {leader}  shard {shard}",
            partition.partition_index
        ));
        if let Some(error) = ResponseError::try_from_code(partition.error_code) {
            out.push_str(&format!("  error {} ({})", error_name(error), error.code()));
        }
        out.push('\n');
    }
    out.push_str("configs\n");
    let mut entries: Vec<(&str, String, &str)> = described
        .configs
        .iter()
        .map(|c| {
            let value = match (&c.value, c.is_sensitive) {
                (_, true) => "(sensitive)".to_string(),
                (Some(value), false) => value.to_string(),
                (None, false) => "(none)".to_string(),
            };
            let origin = match c.config_source {
                CONFIG_SOURCE_TOPIC => "set on topic",
                CONFIG_SOURCE_STATIC_BROKER => "server setting",
                _ => "default",
            };
            (c.name.as_str(), value, origin)
        })
        .collect();
    entries.sort();
    let name_width = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
    let value_width = entries.iter().map(|e| e.1.len()).max().unwrap_or(0);
    for (name, value, origin) in entries {
        out.push_str(&format!(
            "  {name:<name_width$}  {value:<value_width$}  ({origin})\n"
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------- running

/// Runs `ringlog topic`: prints the result on stdout and returns 0, or
/// prints `ringlog topic: <error>` on stderr and returns 1.
pub fn run(args: TopicArgs) -> ExitCode {
    exit_code("topic", execute(&args).err())
}

fn execute(args: &TopicArgs) -> Result<(), ClientError> {
    let mut client = args.broker.connect(CLIENT_ID)?;
    let timeout_ms = args.broker.timeout_ms_i32();
    match &args.command {
        TopicCommand::Create {
            topic,
            partitions,
            configs,
            validate_only,
        } => {
            let version = client.version::<CreateTopicsRequest>()?;
            let request = create_topics_request(
                version,
                topic,
                *partitions,
                configs,
                *validate_only,
                timeout_ms,
            );
            let response = client.call(version, &request)?;
            let count = check_created(client.address(), topic, *partitions, &response)?;
            if *validate_only {
                println!("topic {topic} can be created with {count} partitions (--validate-only: not created)");
            } else {
                println!("created topic {topic} with {count} partitions");
            }
        }
        TopicCommand::List => {
            let version = client.version::<MetadataRequest>()?;
            let response = client.call(version, &metadata_request(version, None))?;
            print!("{}", render_topic_list(client.address(), &response)?);
        }
        TopicCommand::Describe { topic } => {
            let version = client.version::<MetadataRequest>()?;
            let metadata = client.call(version, &metadata_request(version, Some(topic)))?;
            let version = client.version::<DescribeConfigsRequest>()?;
            let configs = client.call(version, &describe_configs_request(topic))?;
            let placements = match &args.admin.http {
                Some(address) => {
                    let admin = AdminClient::new(address, args.broker.timeout());
                    let answer = admin.get(PARTITIONS_PATH)?;
                    admin.decode::<PlacementsJson>(&answer)?.partitions
                }
                None => Vec::new(),
            };
            print!(
                "{}",
                render_description(client.address(), topic, &metadata, &configs, &placements)?
            );
        }
        TopicCommand::Alter {
            topic,
            sets,
            deletes,
            partitions,
        } => {
            if !sets.is_empty() || !deletes.is_empty() {
                let version = client.version::<IncrementalAlterConfigsRequest>()?;
                let request = incremental_alter_configs_request(topic, sets, deletes);
                let response = client.call(version, &request)?;
                check_altered(client.address(), topic, &response)?;
                for (name, value) in sets {
                    println!("topic {topic}: set {name}={value}");
                }
                for name in deletes {
                    println!("topic {topic}: deleted {name}");
                }
            }
            if let Some(count) = partitions {
                let version = client.version::<CreatePartitionsRequest>()?;
                let request = create_partitions_request(topic, *count, timeout_ms);
                let response = client.call(version, &request)?;
                check_partitions_created(client.address(), topic, &response)?;
                println!("topic {topic}: now {count} partitions");
            }
        }
        TopicCommand::Delete { topic } => {
            let version = client.version::<DeleteTopicsRequest>()?;
            let response =
                client.call(version, &delete_topics_request(version, topic, timeout_ms))?;
            check_deleted(client.address(), topic, &response)?;
            println!("deleted topic {topic}");
        }
    }
    Ok(())
}
