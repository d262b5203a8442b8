//! The one table of Kafka APIs and versions this broker implements.
//!
//! Why one table: ApiVersions advertises exactly these ranges and dispatch
//! refuses anything outside them, so a client can never negotiate a version
//! the handlers do not implement, and adding an API is a one-line change
//! here plus its handler. The table lists only what the server implements.
//!
//! How each maximum was chosen (highest version `kafka-protocol` 0.18 knows
//! whose semantics are the classic ones, and not above what librdkafka 2.x,
//! kafka-python and the Java 3.x clients use):
//!
//! | API | range | why the maximum |
//! |---|---|---|
//! | Produce | 3–10 | v3 is the first RecordBatch v2 version. v10 (KIP-951) only adds tagged leader hints to NOT_LEADER answers, which a single broker never gives. v11/v12 change transaction error semantics (KIP-890), v13 addresses topics by id. |
//! | Fetch | 4–12 | v4 adds the isolation level and last stable offset. v12 is the first flexible version. v13+ names topics by id only, which needs topic-id lookup in the handler; stop at 12 until it exists. |
//! | ListOffsets | 1–6 | v7 adds the max-timestamp query (-3, KIP-734), which needs the record with the largest timestamp: not implemented, so not advertised. v8 adds earliest-local (-4, tiered storage), v9 earliest-pending-upload, v10 a timeout. |
//! | Metadata | 0–12 | v0 is kept because old clients send it and it costs one rule (in v0 an empty topic list means all topics, later a null list does). v10+ carry topic ids (answer the all-zero id when unknown); v12 lets a client name a topic by id only. v13 adds a top-level error code (KIP-1102). |
//! | ApiVersions | 0–3 | v3 is flexible with client software name/version. v4 only changes how feature ranges are filled (KAFKA-17011); clients fall back to v3 after the UNSUPPORTED_VERSION answer. |
//! | CreateTopics | 2–7 | all versions `kafka-protocol` knows. |
//! | DeleteTopics | 1–6 | all versions `kafka-protocol` knows. v6 may name topics by id instead of name: the handler must answer UNKNOWN_TOPIC_ID for ids it cannot resolve. |
//! | CreatePartitions | 0–3 | all versions `kafka-protocol` knows. |
//! | DescribeConfigs | 1–4 | all versions `kafka-protocol` knows. |
//! | AlterConfigs | 0–2 | all versions `kafka-protocol` knows. |
//! | IncrementalAlterConfigs | 0–1 | all versions `kafka-protocol` knows. |
//! | FindCoordinator | 0–4 | groups only, always this broker. v4 batches keys (KIP-699); v5/v6 add share-group and transaction-version semantics. Advertised before consumer groups because librdkafka enables LZ4 only for brokers that list it. |
//! | DescribeCluster | 0–1 | v1 adds the endpoint type; v2 adds fenced-broker listing (KRaft controllers only). |
//! | DeleteRecords | 0–2 | all versions `kafka-protocol` knows. |
//! | OffsetCommit | 2–8 | v0/v1 are ZooKeeper-era (kafka-protocol starts at 2). v9 only adds the KIP-848 member epoch meaning of the generation field, for the new consumer protocol. |
//! | OffsetFetch | 1–8 | v8 batches groups. v9 adds the KIP-848 member id/epoch. |
//! | JoinGroup | 0–9 | all versions `kafka-protocol` knows: v4 is KIP-394 (MEMBER_ID_REQUIRED), v5 static membership, v9 `skip_assignment` (always false: the leader assigns). |
//! | SyncGroup | 0–5 | all versions; v5 names the protocol, checked against the group's. |
//! | Heartbeat | 0–4 | all versions. |
//! | LeaveGroup | 0–5 | all versions; v3+ batches members (static members leave by instance id). |
//! | DescribeGroups | 0–5 | v6 adds error messages and GROUP_ID_NOT_FOUND for unknown groups (KIP-1043); up to v5 an unknown group is answered as `Dead`. |
//! | ListGroups | 0–5 | all versions; v4 filters by state, v5 by type (`classic`). |
//! | DeleteGroups | 0–2 | all versions. |
//! | OffsetDelete | 0 | the only version. |
//! | SaslHandshake | 0–1 | all versions; v1 means the tokens follow in SaslAuthenticate (KIP-152), v0 that they follow as raw size-prefixed frames. Advertised on every listener as Kafka does; outside a SASL listener's authentication phase it is ILLEGAL_SASL_STATE. |
//! | DescribeAcls | 1–3 | v1+ (v0 predates prefixed patterns, KIP-290); ANY/MATCH filters; v2 is flexible. |
//! | CreateAcls | 1–3 | v1+, literal and prefixed patterns; v2 is flexible. |
//! | DeleteAcls | 1–3 | v1+, answers the removed bindings per filter; v2 is flexible. |
//! | SaslAuthenticate | 0–2 | all versions; v1 adds the session lifetime (always 0: no re-authentication, KIP-368), v2 is flexible. |
//! | DescribeClientQuotas | 0–1 | all versions `kafka-protocol` knows; v1 is flexible. |
//! | AlterClientQuotas | 0–1 | all versions `kafka-protocol` knows; v1 is flexible. |
//! | DescribeUserScramCredentials | 0 | the only version (KIP-554). |
//! | AlterUserScramCredentials | 0 | the only version (KIP-554). |
//! | InitProducerId | 0–5 | idempotent producers only (no transactional id). v3 adds the producer's current id and epoch (KIP-360; without a transactional id the answer is a new id, epoch 0, at every version); v4 and v5 only let the broker answer PRODUCER_FENCED / TRANSACTION_ABORTABLE, transactional errors it never gives. v6 adds two-phase-commit fields `kafka-protocol` cannot encode in requests. |

use kafka_protocol::messages::ApiKey;

/// One API this broker implements and the version range it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSupport {
    /// The API.
    pub key: ApiKey,
    /// Lowest accepted version.
    pub min: i16,
    /// Highest accepted version.
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiSupport {
    ApiSupport { key, min, max }
}

/// Every API and version range the broker implements, sorted by API key.
/// ApiVersions advertises this list; [`check`] enforces it.
pub const SUPPORTED_APIS: &[ApiSupport] = &[
    api(ApiKey::Produce, 3, 10),
    api(ApiKey::Fetch, 4, 12),
    api(ApiKey::ListOffsets, 1, 6),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::ApiVersions, 0, 3),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::SaslAuthenticate, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
    api(ApiKey::DescribeCluster, 0, 1),
];

/// Compile-time checks: keys strictly increasing (so unique, and the table
/// reads in wire order) and every range non-empty and non-negative.
/// `ApiKey::valid_versions` is not a `const fn`, so containment in what
/// `kafka-protocol` can decode is a unit test instead.
const _: () = {
    let mut i = 0;
    while i < SUPPORTED_APIS.len() {
        let entry = SUPPORTED_APIS[i];
        assert!(0 <= entry.min && entry.min <= entry.max);
        if i > 0 {
            assert!((SUPPORTED_APIS[i - 1].key as i16) < (entry.key as i16));
        }
        i += 1;
    }
};

/// Why a request's API key and version are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The API key is not in [`SUPPORTED_APIS`] (unknown to Kafka, or an
    /// API this broker does not implement).
    #[error("API key {0} is not supported")]
    UnknownApi(i16),
    /// The API is implemented, but not at this version.
    #[error("{key:?} v{version} is not supported")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The requested version.
        version: i16,
    },
}

/// The table entry for `key`, if the broker implements it.
pub fn supported(key: ApiKey) -> Option<&'static ApiSupport> {
    SUPPORTED_APIS.iter().find(|entry| entry.key == key)
}

/// Checks a request's API key and version against [`SUPPORTED_APIS`].
///
/// # Errors
///
/// [`VersionError::UnknownApi`] when the key is not in the table,
/// [`VersionError::UnsupportedVersion`] when the version is outside its range.
///
/// ```
/// use ringlog_protocol::versions::{check, VersionError};
/// use ringlog_protocol::ApiKey;
/// assert_eq!(check(18, 3), Ok(ApiKey::ApiVersions));
/// assert_eq!(
///     check(18, 4),
///     Err(VersionError::UnsupportedVersion { key: ApiKey::ApiVersions, version: 4 })
/// );
/// assert_eq!(check(9999, 0), Err(VersionError::UnknownApi(9999)));
/// ```
pub fn check(api_key: i16, version: i16) -> Result<ApiKey, VersionError> {
    let entry = SUPPORTED_APIS
        .iter()
        .find(|entry| entry.key as i16 == api_key)
        .ok_or(VersionError::UnknownApi(api_key))?;
    if (entry.min..=entry.max).contains(&version) {
        Ok(entry.key)
    } else {
        Err(VersionError::UnsupportedVersion {
            key: entry.key,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_entry_is_within_kafka_protocol_valid_versions() {
        for entry in SUPPORTED_APIS {
            let valid = entry.key.valid_versions();
            assert!(
                valid.min <= entry.min && entry.max <= valid.max,
                "{:?} {}..={} outside kafka-protocol's {valid}",
                entry.key,
                entry.min,
                entry.max
            );
        }
    }

    #[test]
    fn keys_are_unique() {
        let keys: HashSet<i16> = SUPPORTED_APIS.iter().map(|e| e.key as i16).collect();
        assert_eq!(keys.len(), SUPPORTED_APIS.len());
    }

    #[test]
    fn table_lists_exactly_the_implemented_apis() {
        let expected = [
            (ApiKey::ApiVersions, 0, 3),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::FindCoordinator, 0, 4),
            (ApiKey::OffsetCommit, 2, 8),
            (ApiKey::OffsetFetch, 1, 8),
            (ApiKey::JoinGroup, 0, 9),
            (ApiKey::Heartbeat, 0, 4),
            (ApiKey::LeaveGroup, 0, 5),
            (ApiKey::SyncGroup, 0, 5),
            (ApiKey::DescribeGroups, 0, 5),
            (ApiKey::ListGroups, 0, 5),
            (ApiKey::DeleteGroups, 0, 2),
            (ApiKey::OffsetDelete, 0, 0),
            (ApiKey::Produce, 3, 10),
            (ApiKey::Fetch, 4, 12),
            (ApiKey::ListOffsets, 1, 6),
            (ApiKey::CreateTopics, 2, 7),
            (ApiKey::DeleteTopics, 1, 6),
            (ApiKey::CreatePartitions, 0, 3),
            (ApiKey::DescribeConfigs, 1, 4),
            (ApiKey::AlterConfigs, 0, 2),
            (ApiKey::IncrementalAlterConfigs, 0, 1),
            (ApiKey::DescribeCluster, 0, 1),
            (ApiKey::DeleteRecords, 0, 2),
            (ApiKey::InitProducerId, 0, 5),
            (ApiKey::SaslHandshake, 0, 1),
            (ApiKey::SaslAuthenticate, 0, 2),
            (ApiKey::DescribeClientQuotas, 0, 1),
            (ApiKey::AlterClientQuotas, 0, 1),
            (ApiKey::DescribeAcls, 1, 3),
            (ApiKey::CreateAcls, 1, 3),
            (ApiKey::DeleteAcls, 1, 3),
            (ApiKey::DescribeUserScramCredentials, 0, 0),
            (ApiKey::AlterUserScramCredentials, 0, 0),
        ];
        assert_eq!(SUPPORTED_APIS.len(), expected.len());
        for (key, min, max) in expected {
            assert_eq!(supported(key), Some(&ApiSupport { key, min, max }));
        }
    }

    #[test]
    fn check_accepts_the_range_and_refuses_its_edges() {
        for entry in SUPPORTED_APIS {
            let key = entry.key as i16;
            assert_eq!(check(key, entry.min), Ok(entry.key));
            assert_eq!(check(key, entry.max), Ok(entry.key));
            for version in [entry.min - 1, entry.max + 1, i16::MIN, i16::MAX] {
                assert_eq!(
                    check(key, version),
                    Err(VersionError::UnsupportedVersion {
                        key: entry.key,
                        version
                    })
                );
            }
        }
    }

    #[test]
    fn check_refuses_unknown_and_unimplemented_keys() {
        assert_eq!(check(-1, 0), Err(VersionError::UnknownApi(-1)));
        assert_eq!(check(i16::MAX, 0), Err(VersionError::UnknownApi(i16::MAX)));
        // Leader elections are not implemented (one broker leads all).
        let elect_leaders = ApiKey::ElectLeaders as i16;
        assert_eq!(
            check(elect_leaders, 0),
            Err(VersionError::UnknownApi(elect_leaders))
        );
    }
}
