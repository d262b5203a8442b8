//! The bench's side of version negotiation: who it says it is, how large
//! an answer it accepts, and which versions it speaks.
//!
//! Framing, response decoding and the choice of version are
//! [`ringlog_protocol::client`], shared with the admin commands of the
//! `ringlog` binary. Versions are negotiated per connection with
//! ApiVersions, then each request goes at the highest version both the
//! broker and the bench speak, so the bench works against any Kafka broker.
//! [`client_range`] caps the versions whose semantics the bench does not
//! implement (topic ids instead of names in Produce v13+ and Fetch v13+).

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Request, VersionRange};
use ringlog_protocol::client::api_key;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-bench";
/// How the bench names itself when no version is in common.
pub const WHO: &str = "ringlog bench";
/// Largest response frame accepted: a Fetch answer is bounded by the
/// fetch `max_bytes` the bench asks for (at most 64 MiB) plus framing.
pub const RESPONSE_BYTES_MAX: usize = 96 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};
    use ringlog_protocol::client::pick_version;

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
            pick_version(
                &apis,
                ApiKey::Produce,
                client_range::<ProduceRequest>(),
                WHO
            ),
            Ok(10)
        );
        assert_eq!(
            pick_version(
                &apis,
                ApiKey::Metadata,
                client_range::<MetadataRequest>(),
                WHO
            ),
            Ok(client_range::<MetadataRequest>().max)
        );
        assert!(
            pick_version(&apis, ApiKey::Fetch, client_range::<FetchRequest>(), WHO)
                .unwrap_err()
                .contains("does not support Fetch")
        );
        let old = broker(&[(ApiKey::Produce, 0, 2)]);
        let err =
            pick_version(&old, ApiKey::Produce, client_range::<ProduceRequest>(), WHO).unwrap_err();
        assert!(err.contains("no Produce version in common"), "{err}");
        assert!(err.contains("ringlog bench 3..=12"), "{err}");
    }

    #[test]
    fn topic_id_versions_are_not_used() {
        assert_eq!(client_range::<ProduceRequest>().max, 12);
        assert_eq!(client_range::<FetchRequest>().max, 12);
        let new = broker(&[(ApiKey::Produce, 3, 13), (ApiKey::Fetch, 4, 17)]);
        assert_eq!(
            pick_version(&new, ApiKey::Produce, client_range::<ProduceRequest>(), WHO),
            Ok(12)
        );
        assert_eq!(
            pick_version(&new, ApiKey::Fetch, client_range::<FetchRequest>(), WHO),
            Ok(12)
        );
    }
}
