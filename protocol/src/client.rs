//! The client side of the wire, as pure functions: request frames out,
//! response frames in, the choice of version, and Kafka's names for error
//! codes. `ringlog bench` (pipelined, async) and the admin commands of the
//! `ringlog` binary (blocking, one request at a time) both frame their
//! requests here, so the two clients cannot drift apart on the rules below.
//!
//! Why it lives in this crate: the framing ([`crate::frame`]) and the
//! response header rule ([`response_header_version`], KIP-511) are the
//! broker's own, and a client that reuses them is tested against exactly
//! what the broker writes. It is behind the `client` cargo feature (which
//! turns on `kafka-protocol`'s request encoders and response decoders)
//! because the broker never encodes a request; its build stays without
//! them.
//!
//! Version negotiation: a connection starts with ApiVersions at
//! [`API_VERSIONS_FIRST_VERSION`]; a broker that does not know that version
//! answers UNSUPPORTED_VERSION in a v0 body (KIP-511), which
//! [`decode_response`] reads whatever version was asked, so the caller
//! retries at v0. Every later request goes at [`pick_version`]: the
//! highest version both the broker and the client speak. What differs
//! between the clients (client id, the name they give themselves in a
//! mismatch message, the buffer a frame goes into) is a parameter.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::frame::{begin_frame, finish_frame};
use crate::response::response_header_version;

/// ApiVersions version sent first: the highest ringlog's broker answers.
pub const API_VERSIONS_FIRST_VERSION: i16 = 3;

/// The API key of request type `R`.
pub fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("kafka-protocol knows the keys of its own requests")
}

/// Appends one complete request frame to `out`: size prefix, request header
/// of the version `version` calls for (naming `client_id`), body.
///
/// # Errors
///
/// The body does not fit `version` (a field set that it cannot carry), or
/// the frame is too large; `out` is left as it was.
pub fn encode_request<R: Request>(
    out: &mut BytesMut,
    client_id: &str,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> Result<(), String> {
    let key = api_key::<R>();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let start = begin_frame(out);
    let encoded = header
        .encode(out, key.request_header_version(version))
        .and_then(|()| request.encode(out, version));
    if let Err(err) = encoded {
        out.truncate(start);
        return Err(format!("cannot encode {key:?} v{version} request: {err:#}"));
    }
    finish_frame(out, start).map_err(|err| err.to_string())
}

/// The correlation id of a response frame (without its size prefix): the
/// first four bytes in every response header version.
pub fn correlation_id(frame: &[u8]) -> Option<i32> {
    frame
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
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
/// `client` (the versions the caller, named `who` in the error, speaks).
///
/// # Errors
///
/// The broker does not list `key`, or the ranges do not meet.
pub fn pick_version(
    broker: &[ApiVersion],
    key: ApiKey,
    client: VersionRange,
    who: &str,
) -> Result<i16, String> {
    let entry = broker
        .iter()
        .find(|entry| entry.api_key == key as i16)
        .ok_or_else(|| format!("the broker does not support {key:?}"))?;
    let min = entry.min_version.max(client.min);
    let max = entry.max_version.min(client.max);
    if min > max {
        return Err(format!(
            "no {key:?} version in common: the broker speaks {}..={}, {who} {}..={}",
            entry.min_version, entry.max_version, client.min, client.max
        ));
    }
    Ok(max)
}

/// Kafka's name of an error, `TOPIC_ALREADY_EXISTS` for 36; `UNKNOWN` for
/// a code `kafka-protocol` does not know.
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

/// An error code as a message shows it: `NOT_LEADER_OR_FOLLOWER (6)`, and
/// `NONE` for 0.
pub fn error_code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(error) => format!("{} ({code})", error_name(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_versions::api_versions_response;
    use crate::frame::next_frame;
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{
        ApiVersionsRequest, BrokerId, CreateTopicsRequest, CreateTopicsResponse,
        DeleteTopicsRequest, MetadataRequest, MetadataResponse, RequestKind, ResponseKind,
        TopicName,
    };
    use kafka_protocol::protocol::Message;

    const CLIENT_ID: &str = "ringlog-test";

    fn s(text: &'static str) -> StrBytes {
        StrBytes::from_static_str(text)
    }

    /// A response frame as the broker writes it, without its size prefix.
    fn broker_answer(correlation_id: i32, key: ApiKey, version: i16, body: ResponseKind) -> Bytes {
        let frame = crate::encode_response(correlation_id, key, version, &body).unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let body = next_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert!(buf.is_empty());
        body
    }

    #[test]
    fn request_frames_parse_on_the_broker_side() {
        let mut out = BytesMut::new();
        encode_request(&mut out, CLIENT_ID, 3, 41, &ApiVersionsRequest::default()).unwrap();
        encode_request(&mut out, "other", 9, 42, &MetadataRequest::default()).unwrap();
        let first = next_frame(&mut out, 1 << 20).unwrap().unwrap();
        let second = next_frame(&mut out, 1 << 20).unwrap().unwrap();
        assert!(out.is_empty());
        let parsed = crate::parse_request(first).unwrap();
        assert_eq!(parsed.api_key, ApiKey::ApiVersions);
        assert_eq!(parsed.correlation_id(), 41);
        assert_eq!(parsed.client_id(), Some(CLIENT_ID));
        let parsed = crate::parse_request(second).unwrap();
        assert_eq!(parsed.api_version, 9);
        assert_eq!(parsed.correlation_id(), 42);
        assert_eq!(parsed.client_id(), Some("other"));
        assert!(matches!(parsed.body, RequestKind::Metadata(_)));
    }

    #[test]
    fn a_request_that_does_not_fit_its_version_leaves_the_buffer_as_it_was() {
        let mut out = BytesMut::new();
        encode_request(&mut out, CLIENT_ID, 3, 1, &ApiVersionsRequest::default()).unwrap();
        let before = out.clone();
        // Metadata v0 cannot say "no auto-creation".
        let request = MetadataRequest::default().with_allow_auto_topic_creation(false);
        let err = encode_request(&mut out, CLIENT_ID, 0, 2, &request).unwrap_err();
        assert!(err.contains("cannot encode Metadata v0 request"), "{err}");
        assert_eq!(out, before);
    }

    #[test]
    fn responses_decode_from_the_broker_encoder() {
        let metadata = MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(0))
                .with_host(s("127.0.0.1"))
                .with_port(9092)])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(s("orders"))))
                .with_partitions(vec![MetadataResponsePartition::default()])]);
        for version in [1, 9, 12] {
            let frame = broker_answer(
                9,
                ApiKey::Metadata,
                version,
                ResponseKind::Metadata(metadata.clone()),
            );
            assert_eq!(correlation_id(&frame), Some(9));
            let decoded = decode_response::<MetadataRequest>(version, 9, frame).unwrap();
            assert_eq!(decoded, metadata, "v{version}");
        }
        let created =
            CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default()
                .with_name(TopicName(s("orders")))
                .with_error_code(ResponseError::TopicAlreadyExists.code())
                .with_error_message(Some(s("exists")))]);
        let frame = broker_answer(
            1,
            ApiKey::CreateTopics,
            7,
            ResponseKind::CreateTopics(created.clone()),
        );
        assert_eq!(
            decode_response::<CreateTopicsRequest>(7, 1, frame.clone()).unwrap(),
            created
        );
        let err = decode_response::<CreateTopicsRequest>(7, 2, frame).unwrap_err();
        assert!(
            err.contains("answer to request 1 arrived while waiting for request 2"),
            "{err}"
        );
    }

    #[test]
    fn garbage_and_short_frames_are_errors() {
        assert_eq!(correlation_id(&[0, 0, 1]), None);
        let err =
            decode_response::<MetadataRequest>(12, 0, Bytes::from_static(&[0, 0])).unwrap_err();
        assert!(
            err.contains("cannot decode Metadata v12 response header"),
            "{err}"
        );
        // Header fine, body cut short.
        let err = decode_response::<MetadataRequest>(1, 5, Bytes::from_static(&[0, 0, 0, 5, 0]))
            .unwrap_err();
        assert!(err.contains("cannot decode Metadata v1 response"), "{err}");
    }

    #[test]
    fn api_versions_unsupported_answer_is_read_at_v0() {
        // What a broker answers to an ApiVersions version it does not know.
        let (answer_version, answer) = api_versions_response(i16::MAX);
        assert_eq!(answer_version, 0);
        let frame = broker_answer(
            0,
            ApiKey::ApiVersions,
            answer_version,
            ResponseKind::ApiVersions(answer.clone()),
        );
        let decoded =
            decode_response::<ApiVersionsRequest>(API_VERSIONS_FIRST_VERSION, 0, frame).unwrap();
        assert_eq!(decoded.error_code, ResponseError::UnsupportedVersion.code());
        assert!(!decoded.api_keys.is_empty());
        assert_eq!(decoded.api_keys, answer.api_keys);
        // A normal answer decodes at the version asked.
        let (version, answer) = api_versions_response(API_VERSIONS_FIRST_VERSION);
        assert_eq!(version, API_VERSIONS_FIRST_VERSION);
        let frame = broker_answer(
            0,
            ApiKey::ApiVersions,
            version,
            ResponseKind::ApiVersions(answer.clone()),
        );
        assert_eq!(
            decode_response::<ApiVersionsRequest>(version, 0, frame).unwrap(),
            answer
        );
    }

    #[test]
    fn pick_version_takes_the_highest_common_version() {
        let (_, ringlog) = api_versions_response(API_VERSIONS_FIRST_VERSION);
        let apis = &ringlog.api_keys;
        let metadata_max = crate::versions::supported(ApiKey::Metadata).unwrap().max;
        assert!(metadata_max <= MetadataRequest::VERSIONS.max);
        assert_eq!(
            pick_version(apis, ApiKey::Metadata, MetadataRequest::VERSIONS, "me"),
            Ok(metadata_max)
        );
        let below = VersionRange { min: 0, max: 4 };
        assert_eq!(pick_version(apis, ApiKey::DeleteTopics, below, "me"), Ok(4));
        let err =
            pick_version(apis, ApiKey::ElectLeaders, MetadataRequest::VERSIONS, "me").unwrap_err();
        assert_eq!(err, "the broker does not support ElectLeaders");
        let old = [ApiVersion::default()
            .with_api_key(ApiKey::DeleteTopics as i16)
            .with_min_version(0)
            .with_max_version(1)];
        let err = pick_version(
            &old,
            ApiKey::DeleteTopics,
            DeleteTopicsRequest::VERSIONS.intersect(&VersionRange { min: 2, max: 6 }),
            "ringlog bench",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "no DeleteTopics version in common: the broker speaks 0..=1, ringlog bench 2..=6"
        );
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(
            error_name(ResponseError::TopicAlreadyExists),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            error_name(ResponseError::InvalidTopicException),
            "INVALID_TOPIC_EXCEPTION"
        );
        assert_eq!(error_name(ResponseError::Unknown(999)), "UNKNOWN");
        assert_eq!(error_code_name(6), "NOT_LEADER_OR_FOLLOWER (6)");
        assert_eq!(error_code_name(3), "UNKNOWN_TOPIC_OR_PARTITION (3)");
        assert_eq!(error_code_name(999), "UNKNOWN (999)");
        assert_eq!(error_code_name(0), "NONE");
    }
}
