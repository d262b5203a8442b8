//! A typed response into one complete frame: size prefix, response header
//! of the version the API version calls for, body.
//!
//! Why the header version is looked up rather than passed in: a wrong
//! header version is invisible in tests that decode with the same table but
//! breaks real clients. Response header v0 is the correlation id alone, v1
//! (flexible responses) adds tagged fields. The one documented exception
//! (KIP-511): ApiVersions responses always use header v0, even at flexible
//! versions, because a client that sent a version the broker does not know
//! must still be able to read the answer. `kafka-protocol` encodes that
//! rule; [`response_header_version`] states it again so it cannot regress.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::frame::{begin_frame, finish_frame, FrameError};

/// Why a response could not be encoded. These are server bugs (a body that
/// does not fit its version), never client input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The body is a different API's response than `api_key` says.
    #[error("body is a {body:?} response, but the request was {api_key:?}")]
    BodyMismatch {
        /// The API the response is for.
        api_key: ApiKey,
        /// The API the body belongs to.
        body: ApiKey,
    },
    /// `kafka-protocol` refused to encode the header or body at this version
    /// (for example a field set that the version cannot carry).
    #[error("cannot encode {api_key:?} v{api_version} response: {reason}")]
    Codec {
        /// The API.
        api_key: ApiKey,
        /// The version.
        api_version: i16,
        /// What the encoder reported.
        reason: String,
    },
    /// The encoded response does not fit a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// The response header version for `api_key` at `api_version`.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(api_version)
    }
}

/// Encodes a complete response frame.
///
/// # Errors
///
/// See [`EncodeError`].
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::new();
    encode_response_into(&mut out, correlation_id, api_key, api_version, body)?;
    Ok(out.freeze())
}

/// Appends a complete response frame to `out`, so pipelined responses can
/// share one write buffer. On error `out` is left as it was.
///
/// # Errors
///
/// See [`EncodeError`].
pub fn encode_response_into(
    out: &mut BytesMut,
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> Result<(), EncodeError> {
    if let Some(body_key) = body_api_key(body) {
        if body_key != api_key {
            return Err(EncodeError::BodyMismatch {
                api_key,
                body: body_key,
            });
        }
    }
    let start = begin_frame(out);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(out, response_header_version(api_key, api_version))
        .and_then(|()| body.encode(out, api_version));
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(EncodeError::Codec {
            api_key,
            api_version,
            reason: format!("{e:#}"),
        });
    }
    finish_frame(out, start)?;
    Ok(())
}

/// The API a response body belongs to, for the APIs the broker implements
/// now or soon (other bodies are not checked).
fn body_api_key(body: &ResponseKind) -> Option<ApiKey> {
    macro_rules! keys {
        ($($api:ident),* $(,)?) => {
            match body {
                $(ResponseKind::$api(_) => Some(ApiKey::$api),)*
                _ => None,
            }
        };
    }
    keys!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        IncrementalAlterConfigs,
        DescribeCluster,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        DeleteGroups,
        InitProducerId,
        SaslHandshake,
        SaslAuthenticate,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::next_frame;
    use bytes::Buf;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse, ProduceResponse};
    use kafka_protocol::protocol::Decodable;

    fn unframe(frame: Bytes) -> Bytes {
        let mut buf = BytesMut::from(&frame[..]);
        let body = next_frame(&mut buf, usize::MAX).unwrap().unwrap();
        assert!(buf.is_empty(), "one frame, nothing after it");
        body
    }

    #[test]
    fn flexible_response_gets_header_v1() {
        // Metadata v9+ is flexible: correlation id then an empty tag buffer.
        let body = ResponseKind::Metadata(MetadataResponse::default());
        let mut frame = unframe(encode_response(0x01020304, ApiKey::Metadata, 12, &body).unwrap());
        assert_eq!(frame.get_i32(), 0x01020304);
        assert_eq!(frame.get_u8(), 0, "no header tagged fields");
        let decoded = MetadataResponse::decode(&mut frame, 12).unwrap();
        assert_eq!(decoded, MetadataResponse::default());
        assert!(frame.is_empty());
    }

    #[test]
    fn classic_response_gets_header_v0() {
        let body = ResponseKind::Produce(ProduceResponse::default());
        let mut frame = unframe(encode_response(7, ApiKey::Produce, 8, &body).unwrap());
        assert_eq!(frame.get_i32(), 7);
        let decoded = ProduceResponse::decode(&mut frame, 8).unwrap();
        assert_eq!(decoded, ProduceResponse::default());
        assert!(frame.is_empty());
    }

    #[test]
    fn api_versions_always_uses_header_v0() {
        for version in 0..=3 {
            assert_eq!(response_header_version(ApiKey::ApiVersions, version), 0);
            let body = ResponseKind::ApiVersions(ApiVersionsResponse::default());
            let mut frame =
                unframe(encode_response(99, ApiKey::ApiVersions, version, &body).unwrap());
            assert_eq!(frame.get_i32(), 99);
            // Straight into the body: error code, no tag buffer in between.
            assert_eq!(frame.get_i16(), 0);
        }
    }

    #[test]
    fn header_versions_follow_flexibility() {
        assert_eq!(response_header_version(ApiKey::Produce, 8), 0);
        assert_eq!(response_header_version(ApiKey::Produce, 9), 1);
        assert_eq!(response_header_version(ApiKey::Fetch, 11), 0);
        assert_eq!(response_header_version(ApiKey::Fetch, 12), 1);
        assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
    }

    #[test]
    fn mismatched_body_is_refused() {
        let body = ResponseKind::Produce(ProduceResponse::default());
        let mut out = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            encode_response_into(&mut out, 1, ApiKey::Fetch, 4, &body),
            Err(EncodeError::BodyMismatch {
                api_key: ApiKey::Fetch,
                body: ApiKey::Produce
            })
        );
        assert_eq!(&out[..], b"keep");
    }

    #[test]
    fn unencodable_version_leaves_the_buffer_alone() {
        let body = ResponseKind::Produce(ProduceResponse::default());
        let mut out = BytesMut::from(&b"keep"[..]);
        let err = encode_response_into(&mut out, 1, ApiKey::Produce, 99, &body).unwrap_err();
        assert!(matches!(err, EncodeError::Codec { .. }), "{err:?}");
        assert_eq!(&out[..], b"keep");
    }

    #[test]
    fn pipelined_responses_share_a_buffer() {
        let mut out = BytesMut::new();
        for corr in 0..3 {
            let body = ResponseKind::Produce(ProduceResponse::default());
            encode_response_into(&mut out, corr, ApiKey::Produce, 3, &body).unwrap();
        }
        for corr in 0..3 {
            let mut frame = next_frame(&mut out, usize::MAX).unwrap().unwrap();
            assert_eq!(frame.get_i32(), corr);
        }
        assert!(out.is_empty());
    }
}
