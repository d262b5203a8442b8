//! The client side of the Kafka wire protocol, as pure functions: request
//! frames out, response frames in, and the choice of version.
//!
//! Messages are encoded and decoded by `kafka-protocol`'s generated codecs
//! (`client` feature) and framed by `ringlog-protocol`; nothing here is
//! hand-written wire format. Versions are negotiated per connection with
//! ApiVersions (v3, or v0 after UNSUPPORTED_VERSION as KIP-511 says), then
//! each request goes at the highest version both the broker and the bench
//! speak, so the bench works against any Kafka broker. [`client_range`]
//! caps the versions whose semantics the bench does not implement (topic
//! ids instead of names in Produce v13+ and Fetch v13+).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use ringlog_protocol::frame::{begin_frame, finish_frame};
use ringlog_protocol::response::response_header_version;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-bench";
/// ApiVersions version sent first.
pub const API_VERSIONS_FIRST_VERSION: i16 = 3;
/// Largest response frame accepted: a Fetch answer is bounded by the
/// fetch `max_bytes` the bench asks for (at most 64 MiB) plus framing.
pub const RESPONSE_BYTES_MAX: usize = 96 << 20;

/// The API key of request type `R`.
pub fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("kafka-protocol knows the keys of its own requests")
}

/// The versions of `R` the bench speaks: what `kafka-protocol` encodes,
/// minus versions that address topics by id only.
pub fn client_range<R: Request>() -> VersionRange {
    let range = R::VERSIONS;
    let max = match api_key::<R>() {
        ApiKey::Produce | ApiKey::Fetch => range.max.min(12),
        _ => range.max,
    };
    VersionRange {
        min: range.min,
        max,
    }
}

/// Appends one complete request frame to `out`: size prefix, request header
/// of the version `version` calls for, body.
///
/// # Errors
///
/// The body does not fit `version`; `out` is left as it was.
pub fn encode_request<R: Request>(
    out: &mut BytesMut,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> Result<(), String> {
    let key = api_key::<R>();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
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
/// was asked (KIP-511): every version starts with the error code.
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
            "answer to request {} arrived while request {correlation_id} was next",
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
/// `client`.
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
            "no {key:?} version in common: the broker speaks {}..={}, ringlog bench {}..={}",
            entry.min_version, entry.max_version, client.min, client.max
        ));
    }
    Ok(max)
}

/// Kafka's name of an error code: `NOT_LEADER_OR_FOLLOWER` for 6.
pub fn error_name(code: i16) -> String {
    let Some(error) = ResponseError::try_from_code(code) else {
        return "NONE".to_string();
    };
    if let ResponseError::Unknown(_) = error {
        return format!("UNKNOWN_ERROR_{code}");
    }
    let camel = error.to_string();
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    format!("{name} ({code})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        ApiVersionsRequest, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest,
        RequestKind,
    };
    use ringlog_protocol::frame::next_frame;

    fn broker(entries: &[(ApiKey, i16, i16)]) -> Vec<ApiVersion> {
        entries
            .iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect()
    }

    #[test]
    fn versions_are_the_highest_in_common() {
        let apis = broker(&[(ApiKey::Produce, 3, 10), (ApiKey::Metadata, 0, 20)]);
        assert_eq!(
            pick_version(&apis, ApiKey::Produce, client_range::<ProduceRequest>()),
            Ok(10)
        );
        assert_eq!(
            pick_version(&apis, ApiKey::Metadata, client_range::<MetadataRequest>()),
            Ok(client_range::<MetadataRequest>().max)
        );
        assert!(
            pick_version(&apis, ApiKey::Fetch, client_range::<FetchRequest>())
                .unwrap_err()
                .contains("does not support Fetch")
        );
        let old = broker(&[(ApiKey::Produce, 0, 2)]);
        assert!(
            pick_version(&old, ApiKey::Produce, client_range::<ProduceRequest>())
                .unwrap_err()
                .contains("no Produce version in common")
        );
    }

    #[test]
    fn topic_id_versions_are_not_used() {
        assert_eq!(client_range::<ProduceRequest>().max, 12);
        assert_eq!(client_range::<FetchRequest>().max, 12);
        let new = broker(&[(ApiKey::Produce, 3, 13), (ApiKey::Fetch, 4, 17)]);
        assert_eq!(
            pick_version(&new, ApiKey::Produce, client_range::<ProduceRequest>()),
            Ok(12)
        );
        assert_eq!(
            pick_version(&new, ApiKey::Fetch, client_range::<FetchRequest>()),
            Ok(12)
        );
    }

    #[test]
    fn request_frames_parse_on_the_broker_side() {
        let mut out = BytesMut::new();
        encode_request(&mut out, 3, 41, &ApiVersionsRequest::default()).unwrap();
        encode_request(&mut out, 9, 42, &MetadataRequest::default()).unwrap();
        let first = next_frame(&mut out, 1 << 20).unwrap().unwrap();
        let second = next_frame(&mut out, 1 << 20).unwrap().unwrap();
        assert!(out.is_empty());
        let parsed = ringlog_protocol::parse_request(first).unwrap();
        assert_eq!(parsed.correlation_id(), 41);
        assert_eq!(parsed.client_id(), Some(CLIENT_ID));
        let parsed = ringlog_protocol::parse_request(second).unwrap();
        assert_eq!(parsed.api_version, 9);
        assert!(matches!(parsed.body, RequestKind::Metadata(_)));
    }

    #[test]
    fn responses_decode_and_check_the_correlation_id() {
        let body =
            MetadataResponse::default().with_cluster_id(Some(StrBytes::from_static_str("c")));
        let frame = ringlog_protocol::encode_response(
            7,
            ApiKey::Metadata,
            12,
            &kafka_protocol::messages::ResponseKind::Metadata(body),
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let frame = next_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(correlation_id(&frame), Some(7));
        let decoded = decode_response::<MetadataRequest>(12, 7, frame.clone()).unwrap();
        assert_eq!(decoded.cluster_id.as_deref(), Some("c"));
        assert!(decode_response::<MetadataRequest>(12, 8, frame)
            .unwrap_err()
            .contains("answer to request 7"));
    }

    #[test]
    fn unsupported_api_versions_answer_decodes_at_v0() {
        let (version, body) = ringlog_protocol::api_versions_response(99);
        assert_eq!(version, 0);
        let frame = ringlog_protocol::encode_response(
            1,
            ApiKey::ApiVersions,
            version,
            &kafka_protocol::messages::ResponseKind::ApiVersions(body),
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let frame = next_frame(&mut buf, 1 << 20).unwrap().unwrap();
        let decoded = decode_response::<ApiVersionsRequest>(3, 1, frame).unwrap();
        assert_eq!(decoded.error_code, ResponseError::UnsupportedVersion.code());
        assert!(!decoded.api_keys.is_empty());
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER (6)");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION (3)");
        assert_eq!(error_name(0), "NONE");
    }
}
