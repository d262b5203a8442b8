//! The ApiVersions answer, built from [`SUPPORTED_APIS`].
//!
//! Why the fallback matters: a client opens every connection by sending
//! ApiVersions at the highest version *it* knows. If that is above what the
//! broker supports, Kafka's rule (KIP-511) is to answer error
//! UNSUPPORTED_VERSION (35) encoded as version 0 — the one layout every
//! client can read — with the full API list anyway. Java clients and
//! librdkafka then retry at the highest ApiVersions version in that list;
//! kafka-python reads the list to pick versions. Answering at the
//! requested version instead, or closing the connection, leaves those
//! clients unable to connect at all.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::versions::{supported, SUPPORTED_APIS};

/// The version the fallback answer is encoded with.
pub const FALLBACK_VERSION: i16 = 0;

/// The ApiVersions response for a request of `request_version`, and the
/// version to encode it with.
///
/// A supported request version is answered at that version with error 0.
/// Any other version (newer than we know, or negative) is answered at
/// [`FALLBACK_VERSION`] with UNSUPPORTED_VERSION and the same API list.
///
/// ```
/// use ringlog_protocol::api_versions::api_versions_response;
/// let (version, response) = api_versions_response(4);
/// assert_eq!(version, 0);
/// assert_eq!(response.error_code, 35);
/// assert!(!response.api_keys.is_empty());
/// ```
pub fn api_versions_response(request_version: i16) -> (i16, ApiVersionsResponse) {
    let range = supported(ApiKey::ApiVersions).expect("ApiVersions is in the table");
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|entry| {
            ApiVersion::default()
                .with_api_key(entry.key as i16)
                .with_min_version(entry.min)
                .with_max_version(entry.max)
        })
        .collect();
    let response = ApiVersionsResponse::default()
        .with_api_keys(api_keys)
        .with_throttle_time_ms(0);
    if (range.min..=range.max).contains(&request_version) {
        (request_version, response.with_error_code(0))
    } else {
        (
            FALLBACK_VERSION,
            response.with_error_code(ResponseError::UnsupportedVersion.code()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::next_frame;
    use crate::response::encode_response;
    use bytes::{Buf, BytesMut};
    use kafka_protocol::messages::ResponseKind;
    use kafka_protocol::protocol::Decodable;

    fn expected_list() -> Vec<(i16, i16, i16)> {
        SUPPORTED_APIS
            .iter()
            .map(|e| (e.key as i16, e.min, e.max))
            .collect()
    }

    fn list(response: &ApiVersionsResponse) -> Vec<(i16, i16, i16)> {
        response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect()
    }

    /// Encodes as the router would, then decodes the bytes as a client
    /// would: frame, header v0, body at `version`.
    fn wire_round_trip(
        corr: i32,
        version: i16,
        response: ApiVersionsResponse,
    ) -> ApiVersionsResponse {
        let frame = encode_response(
            corr,
            ApiKey::ApiVersions,
            version,
            &ResponseKind::ApiVersions(response),
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let mut body = next_frame(&mut buf, usize::MAX).unwrap().unwrap();
        assert_eq!(body.get_i32(), corr);
        let decoded = ApiVersionsResponse::decode(&mut body, version).unwrap();
        assert!(
            body.is_empty(),
            "v{version}: {} bytes left over",
            body.len()
        );
        decoded
    }

    #[test]
    fn supported_versions_answer_at_that_version() {
        for request_version in 0..=3 {
            let (version, response) = api_versions_response(request_version);
            assert_eq!(version, request_version);
            assert_eq!(response.error_code, 0);
            assert_eq!(list(&response), expected_list());
            let decoded = wire_round_trip(request_version as i32, version, response);
            assert_eq!(decoded.error_code, 0);
            assert_eq!(list(&decoded), expected_list());
        }
    }

    #[test]
    fn v3_round_trips_exactly() {
        // kcat (librdkafka 2.0.2) is strict about the v3 layout.
        let (version, response) = api_versions_response(3);
        let decoded = wire_round_trip(1, version, response.clone());
        assert_eq!(decoded, response);
        assert!(decoded.supported_features.is_empty());
        assert!(decoded.finalized_features.is_empty());
        assert_eq!(decoded.finalized_features_epoch, -1);
    }

    #[test]
    fn v3_bytes_have_the_flexible_layout() {
        let (version, response) = api_versions_response(3);
        let frame = encode_response(
            5,
            ApiKey::ApiVersions,
            version,
            &ResponseKind::ApiVersions(response),
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let mut b = next_frame(&mut buf, usize::MAX).unwrap().unwrap();
        assert_eq!(b.get_i32(), 5, "correlation id, header v0: no tag buffer");
        assert_eq!(b.get_i16(), 0, "error code");
        let n = SUPPORTED_APIS.len();
        assert_eq!(b.get_u8() as usize, n + 1, "compact array length");
        for entry in SUPPORTED_APIS {
            assert_eq!(b.get_i16(), entry.key as i16);
            assert_eq!(b.get_i16(), entry.min);
            assert_eq!(b.get_i16(), entry.max);
            assert_eq!(b.get_u8(), 0, "per-entry tag buffer");
        }
        assert_eq!(b.get_i32(), 0, "throttle time");
        assert_eq!(b.get_u8(), 0, "no top-level tagged fields");
        assert!(b.is_empty());
    }

    #[test]
    fn too_new_request_gets_v0_unsupported_version_with_the_list() {
        for request_version in [4, 5, i16::MAX, -1, i16::MIN] {
            let (version, response) = api_versions_response(request_version);
            assert_eq!(version, FALLBACK_VERSION);
            assert_eq!(response.error_code, 35);
            let decoded = wire_round_trip(3, version, response);
            assert_eq!(decoded.error_code, 35);
            assert_eq!(list(&decoded), expected_list());
        }
    }

    #[test]
    fn v0_fallback_bytes() {
        let (version, response) = api_versions_response(4);
        let frame = encode_response(
            11,
            ApiKey::ApiVersions,
            version,
            &ResponseKind::ApiVersions(response),
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let mut b = next_frame(&mut buf, usize::MAX).unwrap().unwrap();
        assert_eq!(b.get_i32(), 11);
        assert_eq!(b.get_i16(), 35);
        assert_eq!(
            b.get_i32() as usize,
            SUPPORTED_APIS.len(),
            "classic array length"
        );
        for entry in SUPPORTED_APIS {
            assert_eq!(b.get_i16(), entry.key as i16);
            assert_eq!(b.get_i16(), entry.min);
            assert_eq!(b.get_i16(), entry.max);
        }
        assert!(b.is_empty(), "v0 has no throttle time and no tags");
    }

    #[test]
    fn advertised_api_versions_range_is_the_table_entry() {
        let (_, response) = api_versions_response(3);
        let entry = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions as i16)
            .unwrap();
        assert_eq!((entry.min_version, entry.max_version), (0, 3));
    }
}
