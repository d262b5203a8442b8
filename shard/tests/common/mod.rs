//! What the wire-level tests share: a real server on 127.0.0.1 (two
//! shards, data under the cargo target dir on the real disk) and a
//! blocking client speaking the Kafka protocol with `kafka-protocol`'s
//! client-side codecs.
#![allow(dead_code)] // each test binary uses a different subset

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_channel::oneshot;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use ringlog_shard::config::ServerConfig;
use ringlog_shard::server::serve;
use ringlog_shard::wake;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A running server, stopped when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Two shards on a fresh data dir named `name`.
    pub fn start(name: &str) -> Server {
        Server::start_with(name, |_| {})
    }

    /// Like [`Server::start`], with `adjust` applied to the config.
    pub fn start_with(name: &str, adjust: impl FnOnce(&mut ServerConfig)) -> Server {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        Server::start_in(dir, adjust)
    }

    /// Starts on `dir` as it is (a restart keeps the data).
    pub fn start_in(dir: PathBuf, adjust: impl FnOnce(&mut ServerConfig)) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = ServerConfig::new(dir, 2);
        config.listen = SocketAddr::from(([127, 0, 0, 1], port));
        config.advertised_port = port;
        adjust(&mut config);
        let addr = config.listen;
        let (stop, stopped) = wake::channel();
        let thread = std::thread::spawn(move || serve(config, stopped).unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "server did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A blocking Kafka client, one request at a time.
pub struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends `request` at `version` and decodes the response.
    pub fn call<Req>(&mut self, version: i16, request: Req) -> ResponseKind
    where
        Req: Request,
    {
        let (correlation_id, frame) = self.frame(version, request);
        self.write_raw(&frame);
        self.receive(ApiKey::try_from(Req::KEY).unwrap(), version, correlation_id)
    }

    /// `request` at `version` as a frame ready for the wire, and its
    /// correlation id (for pipelining: write several, then
    /// [`Client::receive`] each).
    pub fn frame<Req>(&mut self, version: i16, request: Req) -> (i32, BytesMut)
    where
        Req: Request,
    {
        self.correlation_id += 1;
        let key = ApiKey::try_from(Req::KEY).unwrap();
        let header = RequestHeader::default()
            .with_request_api_key(Req::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("wire-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        (self.correlation_id, frame)
    }

    /// Writes bytes as they are.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads the next response, which must answer `correlation_id`, a
    /// `key` request at `version`, and decodes it.
    pub fn receive(&mut self, key: ApiKey, version: i16, correlation_id: i32) -> ResponseKind {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: no response ({e})"));
        let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut response).unwrap();
        let mut response = Bytes::from(response);
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            key.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut response, header_version).unwrap();
        assert_eq!(
            header.correlation_id, correlation_id,
            "{key:?} v{version}: the answer to another request"
        );
        let body = ResponseKind::decode(key, &mut response, version)
            .unwrap_or_else(|e| panic!("{key:?} v{version} response does not decode: {e}"));
        assert!(
            !response.has_remaining(),
            "{key:?} v{version}: {} bytes after the body",
            response.remaining()
        );
        body
    }
}

/// A topic name for a request.
pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Creates `topic`; answers its error code.
pub fn try_create_topic(client: &mut Client, version: i16, topic: &str, partitions: i32) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let ResponseKind::CreateTopics(response) = client.call(version, request) else {
        panic!("not a CreateTopics response");
    };
    response.topics[0].error_code
}

/// Creates `topic` with one partition and these topic configs, which
/// must succeed.
pub fn create_topic_with_configs(client: &mut Client, topic: &str, configs: &[(&str, &str)]) {
    let text = |s: &str| StrBytes::from_string(s.to_string());
    let configs = configs
        .iter()
        .map(|(k, v)| {
            create_topics_request::CreatableTopicConfig::default()
                .with_name(text(k))
                .with_value(Some(text(v)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs)])
        .with_timeout_ms(10_000);
    let ResponseKind::CreateTopics(response) = client.call(7, request) else {
        panic!("not CreateTopics");
    };
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0]);
}

/// Creates `topic`, which must succeed.
pub fn create_topic(client: &mut Client, version: i16, topic: &str, partitions: i32) {
    let error_code = try_create_topic(client, version, topic, partitions);
    assert_eq!(error_code, 0, "CreateTopics v{version}");
}

/// A Produce request of one `batch` for `partition` of `topic`.
pub fn produce_request(topic: &str, partition: i32, acks: i16, batch: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(Bytes::from(batch))),
            ])])
}

/// Produces one `batch` with acks=all at `version`; the partition's answer.
pub fn produce_batch(
    client: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    batch: Vec<u8>,
) -> produce_response::PartitionProduceResponse {
    let request = produce_request(topic, partition, -1, batch);
    let ResponseKind::Produce(response) = client.call(version, request) else {
        panic!("not a Produce response");
    };
    response.responses[0].partition_responses[0].clone()
}

/// A Fetch of `partition` of `topic` from offset 0 that does not wait.
pub fn fetch_from_start(topic: &str, partition: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}
