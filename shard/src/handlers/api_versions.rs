//! ApiVersions: the supported-version table, from `ringlog_protocol`.
//! Unsupported request versions never reach this handler: the router
//! answers them with the v0 UNSUPPORTED_VERSION fallback
//! ([`ringlog_protocol::api_versions_response`]).
//!
//! Layer: handlers (see the crate docs).

use kafka_protocol::messages::ApiVersionsResponse;

/// The answer at a supported `version`.
pub fn handle(version: i16) -> ApiVersionsResponse {
    let (encoded_at, response) = ringlog_protocol::api_versions_response(version);
    debug_assert_eq!(encoded_at, version, "dispatch only sees supported versions");
    response
}
