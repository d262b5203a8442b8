//! `ringlog topic`: a small admin client speaking the Kafka protocol, so it
//! works against ringlog and any Kafka broker alike.
//!
//! It is a blocking `std::net` client on purpose: one request at a time
//! over one connection, with a connect, read and write timeout, is all an
//! admin command needs. Messages are encoded and decoded by
//! `kafka-protocol`; this module only frames them and picks versions:
//! every connection starts with ApiVersions (v3, or v0 when the broker
//! answers UNSUPPORTED_VERSION, per KIP-511), then each request goes out at
//! the highest version both sides know.
//!
//! The request builders, the version choice and the renderers are pure
//! functions, so the tests check them with bytes made by the broker-side
//! codecs, without a broker.

use bytes::{Bytes, BytesMut};
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
    MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use ringlog_protocol::frame::{begin_frame, finish_frame, SIZE_PREFIX_BYTES};
use ringlog_protocol::response::response_header_version;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-topic";
/// ApiVersions version sent first: the highest ringlog's broker answers.
pub const API_VERSIONS_FIRST_VERSION: i16 = 3;
/// Largest response accepted. A Metadata answer listing every topic is the
/// biggest an admin command sees; tens of thousands of partitions fit.
pub const RESPONSE_BYTES_MAX: usize = 100 << 20;
/// Kafka's ConfigResource type of a topic.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
pub const CONFIG_OPERATION_SET: i8 = 0;
/// See [`CONFIG_OPERATION_SET`].
pub const CONFIG_OPERATION_DELETE: i8 = 1;
/// DescribeConfigs source of a value set on the topic itself
/// (DYNAMIC_TOPIC_CONFIG); every other source is a default.
pub const CONFIG_SOURCE_TOPIC: i8 = 1;

/// `ringlog topic` and its options.
#[derive(Args)]
pub struct TopicArgs {
    /// Broker to connect to.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092",
        env = "RINGLOG_BOOTSTRAP"
    )]
    bootstrap: String,
    /// Connect, read and write timeout; also the time the broker may take
    /// to create, alter or delete.
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    timeout_ms: u32,
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
    /// Show a topic's partitions, their leaders, and every config.
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

/// Why an admin command failed.
#[derive(Debug)]
pub enum ClientError {
    /// No TCP connection to the broker.
    Connect {
        /// The broker as given.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The connection failed or timed out mid-request.
    Io {
        /// The broker as given.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The broker's bytes make no sense, or no API version is common.
    Protocol {
        /// The broker as given.
        address: String,
        /// What is wrong.
        why: String,
    },
    /// The broker answered with a Kafka error.
    Kafka {
        /// The topic (or, for cluster-wide requests, the broker address).
        subject: String,
        /// The error code.
        error: ResponseError,
        /// The broker's explanation, when it sent one.
        message: Option<String>,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { address, source } => {
                write!(f, "cannot connect to {address}: {source}")
            }
            ClientError::Io { address, source } => write!(f, "{address}: {source}"),
            ClientError::Protocol { address, why } => write!(f, "{address}: {why}"),
            ClientError::Kafka {
                subject,
                error,
                message,
            } => {
                write!(f, "{subject}: {} ({})", error_name(*error), error.code())?;
                match message {
                    Some(message) if !message.is_empty() => write!(f, ": {message}"),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Kafka's name of an error code, `TOPIC_ALREADY_EXISTS` for 36.
pub fn error_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(_) = error {
        return "UNKNOWN".to_string();
    }
    // `kafka-protocol` displays the variant name, `TopicAlreadyExists`.
    let camel = error.to_string();
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// `Ok` for error code 0, else the Kafka error about `subject`.
pub fn check_error(
    subject: &str,
    error_code: i16,
    message: Option<&StrBytes>,
) -> Result<(), ClientError> {
    match ResponseError::try_from_code(error_code) {
        None => Ok(()),
        Some(error) => Err(ClientError::Kafka {
            subject: subject.to_string(),
            error,
            message: message.map(|m| m.to_string()),
        }),
    }
}

fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("kafka-protocol knows the keys of its own requests")
}

/// One complete request frame: size prefix, request header of the version
/// `version` calls for, body.
///
/// # Errors
///
/// The body does not fit `version` (a field set that it cannot carry).
pub fn encode_request<R: Request>(
    version: i16,
    correlation_id: i32,
    request: &R,
) -> Result<Bytes, String> {
    let key = api_key::<R>();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut out = BytesMut::new();
    let start = begin_frame(&mut out);
    header
        .encode(&mut out, key.request_header_version(version))
        .and_then(|()| request.encode(&mut out, version))
        .map_err(|err| format!("cannot encode {key:?} v{version} request: {err:#}"))?;
    finish_frame(&mut out, start).map_err(|err| err.to_string())?;
    Ok(out.freeze())
}

/// Decodes a response frame (without its size prefix) to a request of
/// `version` sent with `correlation_id`.
///
/// An ApiVersions answer with UNSUPPORTED_VERSION is decoded at v0 whatever
/// was asked: that is how brokers answer a version they do not know
/// (KIP-511), and every version starts with the error code, so it can be
/// read before choosing the layout.
///
/// # Errors
///
/// Bytes that are not such a response, or the answer to another request.
pub fn decode_response<R: Request>(
    version: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> Result<R::Response, String> {
    let key = api_key::<R>();
    let header = ResponseHeader::decode(&mut frame, response_header_version(key, version))
        .map_err(|err| format!("cannot decode {key:?} v{version} response header: {err:#}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "answer to request {} arrived while waiting for request {correlation_id}",
            header.correlation_id
        ));
    }
    let unsupported = ResponseError::UnsupportedVersion.code().to_be_bytes();
    let body_version = if key == ApiKey::ApiVersions && frame.starts_with(&unsupported) {
        0
    } else {
        version
    };
    R::Response::decode(&mut frame, body_version)
        .map_err(|err| format!("cannot decode {key:?} v{body_version} response: {err:#}"))
}

/// The highest version of `key` in both the broker's ApiVersions list and
/// `client` (what `kafka-protocol` can encode).
///
/// # Errors
///
/// The broker does not list `key`, or the ranges do not meet.
pub fn pick_version(
    broker: &[ApiVersion],
    key: ApiKey,
    client: VersionRange,
) -> Result<i16, String> {
    let entry = broker
        .iter()
        .find(|entry| entry.api_key == key as i16)
        .ok_or_else(|| format!("the broker does not support {key:?}"))?;
    let min = entry.min_version.max(client.min);
    let max = entry.max_version.min(client.max);
    if min > max {
        return Err(format!(
            "no {key:?} version in common: the broker speaks {}..={}, ringlog {}..={}",
            entry.min_version, entry.max_version, client.min, client.max
        ));
    }
    Ok(max)
}

/// A connection to one broker, after version negotiation.
pub struct Client {
    address: String,
    stream: TcpStream,
    timeout: Duration,
    correlation_id: i32,
    broker_apis: Vec<ApiVersion>,
}

impl Client {
    /// Connects to `address` (`host:port`, trying every address the host
    /// resolves to) and negotiates versions. `timeout` bounds the connect
    /// and every read and write.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`] when no address accepts; any error of the
    /// ApiVersions exchange.
    pub fn connect(address: &str, timeout: Duration) -> Result<Client, ClientError> {
        assert!(!timeout.is_zero(), "a zero timeout means none to std::net");
        let connect_error = |source| ClientError::Connect {
            address: address.to_string(),
            source,
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        let mut connected = None;
        for addr in address.to_socket_addrs().map_err(connect_error)? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(err) => last_error = err,
            }
        }
        let stream = connected.ok_or_else(|| connect_error(last_error))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(connect_error)?;
        let mut client = Client {
            address: address.to_string(),
            stream,
            timeout,
            correlation_id: 0,
            broker_apis: Vec::new(),
        };
        client.negotiate()?;
        Ok(client)
    }

    /// The broker as given to [`Client::connect`].
    pub fn address(&self) -> &str {
        &self.address
    }

    fn negotiate(&mut self) -> Result<(), ClientError> {
        let mut response = self.api_versions(API_VERSIONS_FIRST_VERSION)?;
        if response.error_code == ResponseError::UnsupportedVersion.code() {
            response = self.api_versions(0)?;
        }
        check_error(&self.address, response.error_code, None)?;
        if response.api_keys.is_empty() {
            return Err(self.protocol("the broker's ApiVersions answer lists no APIs".into()));
        }
        self.broker_apis = response.api_keys;
        Ok(())
    }

    fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("ringlog"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        self.call(version, &request)
    }

    /// The version to send `R` at; see [`pick_version`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Protocol`] when there is none.
    pub fn version<R: Request>(&self) -> Result<i16, ClientError> {
        pick_version(&self.broker_apis, api_key::<R>(), R::VERSIONS)
            .map_err(|why| self.protocol(why))
    }

    /// Sends `request` at `version` and waits for its answer.
    ///
    /// # Errors
    ///
    /// I/O errors and timeouts, and undecodable answers.
    pub fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        let correlation_id = self.correlation_id;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame =
            encode_request(version, correlation_id, request).map_err(|why| self.protocol(why))?;
        self.stream
            .write_all(&frame)
            .map_err(|err| self.io_error(err))?;
        let body = self.read_frame()?;
        decode_response::<R>(version, correlation_id, body).map_err(|why| self.protocol(why))
    }

    fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let mut prefix = [0u8; SIZE_PREFIX_BYTES];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|err| self.io_error(err))?;
        let declared = i32::from_be_bytes(prefix);
        let size = match usize::try_from(declared) {
            Ok(size) if (1..=RESPONSE_BYTES_MAX).contains(&size) => size,
            _ => {
                return Err(self.protocol(format!(
                    "response frame size {declared} is outside 1..={RESPONSE_BYTES_MAX}"
                )))
            }
        };
        // Grows with what arrives, so a lying size prefix costs nothing.
        let mut body = Vec::new();
        (&mut self.stream)
            .take(size as u64)
            .read_to_end(&mut body)
            .map_err(|err| self.io_error(err))?;
        if body.len() != size {
            return Err(self.io_error(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(Bytes::from(body))
    }

    fn protocol(&self, why: String) -> ClientError {
        ClientError::Protocol {
            address: self.address.clone(),
            why,
        }
    }

    fn io_error(&self, err: io::Error) -> ClientError {
        // A read timeout surfaces as WouldBlock on Linux; say what it means.
        let source = match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} ms", self.timeout.as_millis()),
            ),
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            ),
            _ => err,
        };
        ClientError::Io {
            address: self.address.clone(),
            source,
        }
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
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
    let mut rows: Vec<(String, String)> = response
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
            (name, partitions)
        })
        .collect();
    rows.sort();
    let width = rows
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0)
        .max("TOPIC".len());
    let mut out = format!("{:<width$}  PARTITIONS\n", "TOPIC");
    for (name, partitions) in rows {
        out.push_str(&format!("{name:<width$}  {partitions}\n"));
    }
    Ok(out)
}

/// `ringlog topic describe`: the topic's id, partitions with their leaders,
/// and every config with its value and whether it is a default.
///
/// # Errors
///
/// The topic's error in either answer, or an answer without the topic.
pub fn render_description(
    address: &str,
    topic: &str,
    metadata: &MetadataResponse,
    configs: &DescribeConfigsResponse,
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
        out.push_str(&format!(
            "  partition {}  leader {leader}",
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
            let origin = if c.config_source == CONFIG_SOURCE_TOPIC {
                "set on topic"
            } else {
                "default"
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
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringlog topic: {err}");
            ExitCode::from(1)
        }
    }
}

fn execute(args: &TopicArgs) -> Result<(), ClientError> {
    let mut client = Client::connect(
        &args.bootstrap,
        Duration::from_millis(u64::from(args.timeout_ms)),
    )?;
    let timeout_ms = i32::try_from(args.timeout_ms).expect("clap bounds --timeout-ms to i32");
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
            print!(
                "{}",
                render_description(client.address(), topic, &metadata, &configs)?
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
