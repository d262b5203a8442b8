//! What the admin command tests share: the broker's own parser and
//! encoder applied to client bytes, a fake broker built from them that
//! records what it was sent, and running the `ringlog` binary.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use ringlog_protocol::api_versions::api_versions_response;
use ringlog_protocol::client::encode_request;
use ringlog_protocol::frame::next_frame;
use ringlog_protocol::{encode_response, parse_request, Request};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::thread::JoinHandle;

/// A string for a message.
pub fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A topic name for a message.
pub fn name(text: &str) -> TopicName {
    TopicName(s(text))
}

/// A client request, framed as the admin commands frame it and parsed as
/// the broker's router parses it.
pub fn broker_parse<R: kafka_protocol::protocol::Request>(
    client_id: &str,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> Request {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, client_id, version, correlation_id, request)
        .expect("the request fits its version");
    let body = next_frame(&mut buf, usize::MAX).unwrap().unwrap();
    assert!(buf.is_empty(), "exactly one frame");
    parse_request(body).expect("the broker parses the client's request")
}

/// A Metadata answer: one broker (node 0) leading every partition of
/// `topics` (name, partition count), partitions listed in reverse.
pub fn metadata_with(topics: &[(&str, usize)]) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(0))
            .with_host(s("127.0.0.1"))
            .with_port(9092)])
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name(topic)))
                        .with_partitions(
                            (0..*partitions as i32)
                                .rev()
                                .map(|index| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_leader_id(BrokerId(0))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// A broker that answers with `answer` (ApiVersions from the real table
/// unless `answer` handles it) on one connection, and returns every
/// request it parsed once the client hangs up.
pub fn fake_broker(
    answer: impl Fn(&Request) -> Option<(i16, ResponseKind)> + Send + 'static,
) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut seen = Vec::new();
        loop {
            let mut prefix = [0u8; 4];
            if stream.read_exact(&mut prefix).is_err() {
                return seen;
            }
            let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
            stream.read_exact(&mut body).unwrap();
            let request = parse_request(Bytes::from(body)).unwrap();
            let (version, response) = answer(&request).unwrap_or_else(|| {
                assert_eq!(
                    request.api_key,
                    ApiKey::ApiVersions,
                    "unexpected {request:?}"
                );
                let (version, response) = api_versions_response(request.api_version);
                (version, ResponseKind::ApiVersions(response))
            });
            let frame = encode_response(
                request.correlation_id(),
                request.api_key,
                version,
                &response,
            )
            .unwrap();
            stream.write_all(&frame).unwrap();
            seen.push(request);
        }
    });
    (addr, handle)
}

/// Runs `ringlog <command> <args> --bootstrap <addr>`, without an admin
/// address unless `args` give one.
pub fn ringlog(command: &str, addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .arg(command)
        .args(args)
        .args(["--bootstrap", &addr.to_string()])
        .env_remove("RINGLOG_BOOTSTRAP")
        .env_remove("RINGLOG_HTTP")
        .output()
        .expect("run ringlog topic")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The request bodies, without ApiVersions.
pub fn bodies(requests: &[Request]) -> Vec<&RequestKind> {
    requests
        .iter()
        .filter(|r| r.api_key != ApiKey::ApiVersions)
        .map(|r| &r.body)
        .collect()
}
