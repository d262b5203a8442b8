//! One request frame into a typed [`Request`].
//!
//! Why the errors are shaped the way they are: what the router may do after
//! a bad request depends on how far parsing got. Without the eight fixed
//! header bytes there is no correlation id, so no answer can be matched to
//! the request and the connection must close. With them, the router can
//! answer — ApiVersions' UNSUPPORTED_VERSION fallback depends on exactly
//! this — so every later error carries the correlation id, API key and
//! version. Parsing goes: fixed header fields, then the version table (so
//! an unsupported version is reported even when the rest of its header is a
//! layout we do not know), then the full header of the version
//! `kafka-protocol` names for the request, then the body.
//!
//! Request header versions: v0 has no client id, v1 adds the nullable client
//! id, v2 (flexible requests) adds tagged fields. `kafka-protocol` decodes
//! v1 and v2; none of the APIs it knows uses v0 any more (that was
//! ControlledShutdown v0), but v0 is handled here too so the header version
//! mapping never meets a gap.
//!
//! Decoding reads from the frame's [`Bytes`], so byte fields of the body —
//! notably Produce `records` — are zero-copy slices of the frame.
//!
//! Bytes left over after the body are ignored, as Kafka's broker ignores
//! them.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use crate::versions::{self, VersionError};

/// Bytes of the fields every request header version starts with: API key
/// (i16), API version (i16), correlation id (i32).
pub const FIXED_HEADER_BYTES: usize = 8;

/// A decoded request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The request header, decoded at the header version of this API version.
    pub header: RequestHeader,
    /// The API (checked against [`versions::SUPPORTED_APIS`]).
    pub api_key: ApiKey,
    /// The API version (within the supported range).
    pub api_version: i16,
    /// The decoded body.
    pub body: RequestKind,
}

impl Request {
    /// The correlation id the response must echo.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// The client id, if the client sent one.
    pub fn client_id(&self) -> Option<&str> {
        self.header.client_id.as_deref()
    }
}

/// Why a frame is not a request the broker can handle.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Fewer bytes than the fixed header fields: there is no correlation id
    /// to answer with. The caller closes the connection.
    #[error("frame of {len} bytes is too short for a request header")]
    Truncated {
        /// Bytes in the frame.
        len: usize,
    },
    /// The API key is not one the broker implements. No body layout is known
    /// for it, so the caller normally closes the connection (as Kafka does);
    /// it may answer only if it can build that API's response.
    #[error("API key {api_key} (v{api_version}) is not supported")]
    UnknownApi {
        /// The API key sent.
        api_key: i16,
        /// The API version sent.
        api_version: i16,
        /// The correlation id sent.
        correlation_id: i32,
    },
    /// The API is implemented but not at this version. For ApiVersions the
    /// caller answers with the v0 UNSUPPORTED_VERSION fallback
    /// ([`crate::api_versions::api_versions_response`]); clients never send
    /// other APIs at versions that ApiVersions did not advertise, and Kafka
    /// closes the connection when they do.
    #[error("{api_key:?} v{api_version} is not supported")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version sent.
        api_version: i16,
        /// The correlation id sent.
        correlation_id: i32,
    },
    /// The header after its fixed fields (client id, tagged fields) does not
    /// decode. The API and version are supported, so the caller may answer
    /// with that API's error response.
    #[error("bad {api_key:?} v{api_version} request header: {reason}")]
    BadHeader {
        /// The API.
        api_key: ApiKey,
        /// The version sent.
        api_version: i16,
        /// The correlation id sent.
        correlation_id: i32,
        /// What the decoder reported.
        reason: String,
    },
    /// The header decoded but the body does not. The caller answers with
    /// the API's error response where the API has one.
    #[error("bad {api_key:?} v{api_version} request body: {reason}")]
    BadBody {
        /// The decoded header.
        header: RequestHeader,
        /// The API.
        api_key: ApiKey,
        /// The version sent.
        api_version: i16,
        /// What the decoder reported.
        reason: String,
    },
}

impl RequestError {
    /// The correlation id to answer with, or `None` when the request cannot
    /// be answered at all (close the connection).
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            RequestError::Truncated { .. } => None,
            RequestError::UnknownApi { correlation_id, .. }
            | RequestError::UnsupportedVersion { correlation_id, .. }
            | RequestError::BadHeader { correlation_id, .. } => Some(*correlation_id),
            RequestError::BadBody { header, .. } => Some(header.correlation_id),
        }
    }

    /// The Kafka error an answer carries: UNSUPPORTED_VERSION for an API or
    /// version outside the table, INVALID_REQUEST for an undecodable header
    /// or body; `None` when no answer is possible.
    pub fn response_error(&self) -> Option<ResponseError> {
        match self {
            RequestError::Truncated { .. } => None,
            RequestError::UnknownApi { .. } | RequestError::UnsupportedVersion { .. } => {
                Some(ResponseError::UnsupportedVersion)
            }
            RequestError::BadHeader { .. } | RequestError::BadBody { .. } => {
                Some(ResponseError::InvalidRequest)
            }
        }
    }
}

/// Parses one request frame (the bytes after the size prefix, as
/// [`crate::frame::next_frame`] returns them).
///
/// Never panics, whatever the bytes.
///
/// # Errors
///
/// See [`RequestError`]: each variant says whether the caller can answer.
pub fn parse_request(frame: Bytes) -> Result<Request, RequestError> {
    let Some(fixed) = frame.get(..FIXED_HEADER_BYTES) else {
        return Err(RequestError::Truncated { len: frame.len() });
    };
    let api_key = i16::from_be_bytes([fixed[0], fixed[1]]);
    let api_version = i16::from_be_bytes([fixed[2], fixed[3]]);
    let correlation_id = i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);

    let key = versions::check(api_key, api_version).map_err(|e| match e {
        VersionError::UnknownApi(_) => RequestError::UnknownApi {
            api_key,
            api_version,
            correlation_id,
        },
        VersionError::UnsupportedVersion { key, version } => RequestError::UnsupportedVersion {
            api_key: key,
            api_version: version,
            correlation_id,
        },
    })?;

    let mut buf = frame;
    let header =
        decode_header(&mut buf, key.request_header_version(api_version)).map_err(|reason| {
            RequestError::BadHeader {
                api_key: key,
                api_version,
                correlation_id,
                reason,
            }
        })?;
    match RequestKind::decode(key, &mut buf, api_version) {
        Ok(body) => Ok(Request {
            header,
            api_key: key,
            api_version,
            body,
        }),
        Err(e) => Err(RequestError::BadBody {
            header,
            api_key: key,
            api_version,
            reason: format!("{e:#}"),
        }),
    }
}

/// Decodes a request header of `header_version` from the front of `buf`.
fn decode_header(buf: &mut Bytes, header_version: i16) -> Result<RequestHeader, String> {
    if header_version == 0 {
        // v0: the fixed fields only, no client id.
        if buf.len() < FIXED_HEADER_BYTES {
            return Err(format!("{} bytes is shorter than a v0 header", buf.len()));
        }
        return Ok(RequestHeader::default()
            .with_request_api_key(buf.get_i16())
            .with_request_api_version(buf.get_i16())
            .with_correlation_id(buf.get_i32())
            .with_client_id(None));
    }
    RequestHeader::decode(buf, header_version).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    /// A v1 header: fixed fields plus a nullable i16-length client id.
    fn header_v1(out: &mut BytesMut, key: i16, version: i16, corr: i32, client: Option<&str>) {
        out.put_i16(key);
        out.put_i16(version);
        out.put_i32(corr);
        match client {
            Some(c) => {
                out.put_i16(c.len() as i16);
                out.put_slice(c.as_bytes());
            }
            None => out.put_i16(-1),
        }
    }

    #[test]
    fn header_v0_has_no_client_id() {
        let mut buf = BytesMut::new();
        buf.put_i16(7);
        buf.put_i16(0);
        buf.put_i32(42);
        buf.put_slice(b"body");
        let mut bytes = buf.freeze();
        let header = decode_header(&mut bytes, 0).unwrap();
        assert_eq!(header.request_api_key, 7);
        assert_eq!(header.request_api_version, 0);
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id, None);
        assert_eq!(&bytes[..], b"body");
        assert!(decode_header(&mut Bytes::from_static(&[0, 1, 2]), 0).is_err());
    }

    #[test]
    fn header_v1_with_null_and_present_client_id() {
        // Metadata v1 uses header v1; body: topics = null (i32 -1).
        for client in [None, Some("kcat")] {
            let mut buf = BytesMut::new();
            header_v1(&mut buf, ApiKey::Metadata as i16, 1, 9, client);
            buf.put_i32(-1);
            let request = parse_request(buf.freeze()).unwrap();
            assert_eq!(request.api_key, ApiKey::Metadata);
            assert_eq!(request.api_version, 1);
            assert_eq!(request.correlation_id(), 9);
            assert_eq!(request.client_id(), client);
            let RequestKind::Metadata(body) = request.body else {
                panic!("not metadata");
            };
            assert_eq!(body.topics, None);
        }
    }

    #[test]
    fn header_v2_tagged_fields_are_kept_and_skipped() {
        // ApiVersions v3 uses header v2 (flexible).
        let mut buf = BytesMut::new();
        header_v1(&mut buf, ApiKey::ApiVersions as i16, 3, 77, Some("rdkafka"));
        buf.put_u8(2); // two tagged fields
        buf.put_u8(5); // tag 5
        buf.put_u8(3); // 3 bytes
        buf.put_slice(b"abc");
        buf.put_u8(9); // tag 9
        buf.put_u8(0); // empty
                       // Body: compact strings client_software_name, _version, no tags.
        buf.put_u8(b"librdkafka".len() as u8 + 1);
        buf.put_slice(b"librdkafka");
        buf.put_u8(b"2.0.2".len() as u8 + 1);
        buf.put_slice(b"2.0.2");
        buf.put_u8(0);
        let request = parse_request(buf.freeze()).unwrap();
        assert_eq!(request.api_key, ApiKey::ApiVersions);
        assert_eq!(request.correlation_id(), 77);
        assert_eq!(request.client_id(), Some("rdkafka"));
        assert_eq!(
            request.header.unknown_tagged_fields.get(&5).map(|b| &b[..]),
            Some(&b"abc"[..])
        );
        assert_eq!(
            request.header.unknown_tagged_fields.get(&9).map(|b| &b[..]),
            Some(&b""[..])
        );
        let RequestKind::ApiVersions(body) = request.body else {
            panic!("not api versions");
        };
        assert_eq!(&*body.client_software_name, "librdkafka");
        assert_eq!(&*body.client_software_version, "2.0.2");
    }

    #[test]
    fn short_frames_are_truncated() {
        for len in 0..FIXED_HEADER_BYTES {
            let frame = Bytes::from(vec![0u8; len]);
            let err = parse_request(frame).unwrap_err();
            assert_eq!(err, RequestError::Truncated { len });
            assert_eq!(err.correlation_id(), None);
            assert_eq!(err.response_error(), None);
        }
    }

    #[test]
    fn unknown_api_keeps_the_correlation_id() {
        let mut buf = BytesMut::new();
        header_v1(&mut buf, ApiKey::ElectLeaders as i16, 1, 5, None);
        let err = parse_request(buf.freeze()).unwrap_err();
        assert_eq!(
            err,
            RequestError::UnknownApi {
                api_key: ApiKey::ElectLeaders as i16,
                api_version: 1,
                correlation_id: 5
            }
        );
        assert_eq!(err.correlation_id(), Some(5));
        assert_eq!(
            err.response_error(),
            Some(ResponseError::UnsupportedVersion)
        );
    }

    #[test]
    fn unsupported_version_is_reported_before_the_header_is_read() {
        // ApiVersions v4 from a newer client, with a header we do not parse.
        let mut buf = BytesMut::new();
        buf.put_i16(ApiKey::ApiVersions as i16);
        buf.put_i16(4);
        buf.put_i32(31);
        buf.put_slice(&[0xff; 3]);
        let err = parse_request(buf.freeze()).unwrap_err();
        assert_eq!(
            err,
            RequestError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                api_version: 4,
                correlation_id: 31
            }
        );
        assert_eq!(
            err.response_error(),
            Some(ResponseError::UnsupportedVersion)
        );
    }

    #[test]
    fn bad_client_id_is_a_bad_header_with_correlation_id() {
        let mut buf = BytesMut::new();
        buf.put_i16(ApiKey::Metadata as i16);
        buf.put_i16(1);
        buf.put_i32(8);
        buf.put_i16(50); // client id claims 50 bytes
        buf.put_slice(b"short");
        let err = parse_request(buf.freeze()).unwrap_err();
        assert!(matches!(
            err,
            RequestError::BadHeader {
                api_key: ApiKey::Metadata,
                api_version: 1,
                correlation_id: 8,
                ..
            }
        ));
        assert_eq!(err.correlation_id(), Some(8));
        assert_eq!(err.response_error(), Some(ResponseError::InvalidRequest));
    }

    #[test]
    fn bad_body_keeps_the_header() {
        let mut buf = BytesMut::new();
        header_v1(&mut buf, ApiKey::Produce as i16, 3, 12, Some("p"));
        buf.put_i16(-1); // transactional id null, then nothing
        let err = parse_request(buf.freeze()).unwrap_err();
        let RequestError::BadBody {
            header, api_key, ..
        } = &err
        else {
            panic!("expected BadBody, got {err:?}");
        };
        assert_eq!(*api_key, ApiKey::Produce);
        assert_eq!(header.client_id.as_deref(), Some("p"));
        assert_eq!(err.correlation_id(), Some(12));
        assert_eq!(err.response_error(), Some(ResponseError::InvalidRequest));
    }
}
