//! Engine failures as Kafka error codes — the one table, in one place.
//!
//! Why these codes: a Kafka client decides from the code alone whether to
//! retry, refresh metadata, or give up, so the code must describe whose
//! fault it is. The table:
//!
//! | engine error | Kafka error (code) | why |
//! |---|---|---|
//! | `InvalidBatch(CrcMismatch)` | CORRUPT_MESSAGE (2) | what Kafka answers for a failed batch CRC (retriable: the bytes may have been damaged in flight) |
//! | `InvalidBatch(TooShort \| LengthMismatch)` | CORRUPT_MESSAGE (2) | Kafka's batch reader reports a truncated or mis-sized batch as corrupt |
//! | `InvalidBatch(BadMagic)` | INVALID_RECORD (87) | Kafka: "Produce requests with version N are only allowed to contain record batches with magic version 2" |
//! | `InvalidBatch(BadCounts)` | INVALID_RECORD (87) | Kafka's log validator refuses a record count that disagrees with the offset delta |
//! | `InvalidBatch(UnknownCodec \| Records(Malformed \| Codec(Corrupt)))` | INVALID_RECORD (87) | a codec id Kafka does not define, or records that do not decode where the topic's configs make the broker decode them (Kafka's `InvalidRecordException`); the CRC matched, so resending the same bytes cannot help |
//! | `InvalidBatch(Records(Codec(DecompressedTooLarge)) \| RecompressedTooLarge)` | MESSAGE_TOO_LARGE (10) | the batch expands past the decompression bound, or recompressed into the topic's `compression.type` it exceeds `max.message.bytes` (Kafka re-checks the size after recompressing) |
//! | `InvalidBatch(TimestampOutOfRange \| LogAppendTimeFromProducer)` | INVALID_TIMESTAMP (32) | Kafka's `LogValidator` answers both |
//! | `TooLarge` | MESSAGE_TOO_LARGE (10) | batch above the topic's `max.message.bytes` |
//! | `OffsetOutOfRange` | OFFSET_OUT_OF_RANGE (1) | consumers reset by their `auto.offset.reset` |
//! | `Io`, `Poisoned`, `Invariant` | KAFKA_STORAGE_ERROR (56) | the broker's disk failed; retriable after metadata refresh |
//! | `Corrupt` | KAFKA_STORAGE_ERROR (56) | bytes on the *broker's* disk fail validation: the request was fine, so CORRUPT_MESSAGE (which tells a producer its batch is bad, and makes it resend the same bytes) would blame the client; Kafka reports a failed log directory this way too |
//! | `Config` | INVALID_CONFIG (40) | a configuration value the engine cannot use |
//! | `OffsetsExhausted` | UNKNOWN_SERVER_ERROR (-1) | the partition reached the largest offset; Kafka has no code for it, and a retriable one would make producers retry forever |
//! | `Rejected` | refined by the handler ([`Rejection`]), else UNKNOWN_SERVER_ERROR (-1) | the engine only says "conflicts with current state"; which conflict is known to the handler that checked for it |
//!
//! Prefer [`ResponseError`] (from `kafka-protocol`) over raw numbers:
//! `.code()` gives the wire value.

use kafka_protocol::ResponseError;
use ringlog_engine::batch::BatchError;
use ringlog_engine::codec::CodecError;
use ringlog_engine::records::RecordsError;
use ringlog_engine::Error;

/// Which metadata conflict a handler was guarding against when the engine
/// answered `Error::Rejected`. The engine's message is free text; the
/// handler knows which precondition it checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// CreateTopics for a name that exists: TOPIC_ALREADY_EXISTS (36).
    TopicExists,
    /// A topic or partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION (3).
    UnknownTopic,
    /// A topic id that does not exist: UNKNOWN_TOPIC_ID (100).
    UnknownTopicId,
    /// An illegal topic name: INVALID_TOPIC_EXCEPTION (17).
    InvalidTopicName,
    /// A partition count that is not larger than the current one, or below
    /// one: INVALID_PARTITIONS (37).
    InvalidPartitions,
    /// A replication factor other than what a single broker can host:
    /// INVALID_REPLICATION_FACTOR (38).
    InvalidReplicationFactor,
    /// A config change the state refuses (unknown key, set and removed at
    /// once): INVALID_CONFIG (40).
    InvalidConfig,
    /// A request that is well-formed but contradicts itself or the state in
    /// a way no specific code describes: INVALID_REQUEST (42).
    InvalidRequest,
}

impl Rejection {
    /// The Kafka error for this rejection.
    pub const fn error(self) -> ResponseError {
        match self {
            Rejection::TopicExists => ResponseError::TopicAlreadyExists,
            Rejection::UnknownTopic => ResponseError::UnknownTopicOrPartition,
            Rejection::UnknownTopicId => ResponseError::UnknownTopicId,
            Rejection::InvalidTopicName => ResponseError::InvalidTopicException,
            Rejection::InvalidPartitions => ResponseError::InvalidPartitions,
            Rejection::InvalidReplicationFactor => ResponseError::InvalidReplicationFactor,
            Rejection::InvalidConfig => ResponseError::InvalidConfig,
            Rejection::InvalidRequest => ResponseError::InvalidRequest,
        }
    }
}

/// The Kafka error for an invalid RecordBatch (from the engine or from
/// [`crate::batch::batches`]).
pub const fn batch_error(err: &BatchError) -> ResponseError {
    match err {
        BatchError::CrcMismatch { .. }
        | BatchError::TooShort(_)
        | BatchError::LengthMismatch { .. } => ResponseError::CorruptMessage,
        BatchError::BadMagic(_)
        | BatchError::BadCounts
        | BatchError::UnknownCodec(_)
        | BatchError::Records(RecordsError::Malformed(_))
        | BatchError::Records(RecordsError::Codec(CodecError::Corrupt { .. })) => {
            ResponseError::InvalidRecord
        }
        BatchError::Records(RecordsError::Codec(
            CodecError::DecompressedTooLarge { .. } | CodecError::CompressedTooLarge { .. },
        ))
        | BatchError::RecompressedTooLarge { .. } => ResponseError::MessageTooLarge,
        BatchError::TimestampOutOfRange { .. } | BatchError::LogAppendTimeFromProducer => {
            ResponseError::InvalidTimestamp
        }
    }
}

/// The Kafka error for an engine failure; `Rejected` becomes
/// UNKNOWN_SERVER_ERROR (use [`response_error_with`] where the handler knows
/// what it guarded against).
pub fn response_error(err: &Error) -> ResponseError {
    match err {
        Error::InvalidBatch(batch) => batch_error(batch),
        Error::TooLarge { .. } => ResponseError::MessageTooLarge,
        Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        Error::Io { .. }
        | Error::Poisoned { .. }
        | Error::Invariant { .. }
        | Error::Corrupt { .. }
        | Error::Archive { .. } => ResponseError::KafkaStorageError,
        Error::Config(_) => ResponseError::InvalidConfig,
        Error::NotOwned(_) => ResponseError::NotLeaderOrFollower,
        Error::Rejected(_) | Error::OffsetsExhausted { .. } => ResponseError::UnknownServerError,
    }
}

/// Like [`response_error`], but a `Rejected` error becomes `rejected`'s code.
pub fn response_error_with(err: &Error, rejected: Rejection) -> ResponseError {
    match err {
        Error::Rejected(_) => rejected.error(),
        other => response_error(other),
    }
}

/// The wire error code for an engine failure ([`response_error`]`.code()`).
pub fn error_code(err: &Error) -> i16 {
    response_error(err).code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog_engine::Corruption;
    use std::io;
    use std::path::PathBuf;

    fn invalid(batch: BatchError) -> Error {
        Error::InvalidBatch(batch)
    }

    #[test]
    fn crc_mismatch_is_corrupt_message() {
        let e = invalid(BatchError::CrcMismatch {
            stored: 1,
            computed: 2,
        });
        assert_eq!(response_error(&e), ResponseError::CorruptMessage);
        assert_eq!(error_code(&e), 2);
    }

    #[test]
    fn truncated_batch_is_corrupt_message() {
        assert_eq!(error_code(&invalid(BatchError::TooShort(3))), 2);
        let e = invalid(BatchError::LengthMismatch {
            declared: 100,
            actual: 90,
        });
        assert_eq!(error_code(&e), 2);
    }

    #[test]
    fn a_partition_served_elsewhere_is_not_leader_or_follower() {
        let e = Error::NotOwned("partition t-0 moved to shard 1".into());
        assert_eq!(response_error(&e), ResponseError::NotLeaderOrFollower);
        assert_eq!(error_code(&e), 6);
    }

    #[test]
    fn bad_magic_is_invalid_record() {
        let e = invalid(BatchError::BadMagic(1));
        assert_eq!(response_error(&e), ResponseError::InvalidRecord);
        assert_eq!(error_code(&e), 87);
    }

    #[test]
    fn bad_counts_is_invalid_record() {
        assert_eq!(error_code(&invalid(BatchError::BadCounts)), 87);
    }

    #[test]
    fn batch_policy_refusals() {
        let table = [
            (BatchError::UnknownCodec(5), 87),
            (BatchError::Records(RecordsError::Malformed("x")), 87),
            (
                BatchError::Records(RecordsError::Codec(CodecError::Corrupt {
                    codec: ringlog_engine::codec::Codec::Zstd,
                    reason: "x".into(),
                })),
                87,
            ),
            (
                BatchError::Records(RecordsError::Codec(CodecError::DecompressedTooLarge {
                    limit: 1,
                })),
                10,
            ),
            (
                BatchError::RecompressedTooLarge {
                    codec: ringlog_engine::codec::Codec::None,
                    max_bytes: 1,
                },
                10,
            ),
            (
                BatchError::TimestampOutOfRange {
                    record_index: 0,
                    timestamp_ms: 0,
                    earliest_ms: 1,
                    latest_ms: 2,
                },
                32,
            ),
            (BatchError::LogAppendTimeFromProducer, 32),
        ];
        for (batch, code) in table {
            assert_eq!(error_code(&invalid(batch.clone())), code, "{batch:?}");
        }
    }

    #[test]
    fn a_stored_batch_that_does_not_decode_is_a_storage_error() {
        let e = Error::Corrupt {
            path: PathBuf::from("/data/seg.log"),
            offset: 64,
            corruption: Corruption::BadBatch(RecordsError::Malformed("x")),
        };
        assert_eq!(error_code(&e), 56);
    }

    #[test]
    fn too_large_is_message_too_large() {
        let e = Error::TooLarge {
            len_bytes: 2,
            max_bytes: 1,
        };
        assert_eq!(response_error(&e), ResponseError::MessageTooLarge);
        assert_eq!(error_code(&e), 10);
    }

    #[test]
    fn offset_out_of_range() {
        let e = Error::OffsetOutOfRange {
            offset: 9,
            start: 0,
            end: 5,
        };
        assert_eq!(response_error(&e), ResponseError::OffsetOutOfRange);
        assert_eq!(error_code(&e), 1);
    }

    #[test]
    fn io_is_storage_error() {
        let e = Error::Io {
            path: PathBuf::from("/data"),
            source: io::Error::from_raw_os_error(libc_eio()),
        };
        assert_eq!(response_error(&e), ResponseError::KafkaStorageError);
        assert_eq!(error_code(&e), 56);
    }

    #[test]
    fn poisoned_is_storage_error() {
        let e = Error::Poisoned {
            path: PathBuf::from("/data"),
        };
        assert_eq!(error_code(&e), 56);
    }

    #[test]
    fn corrupt_on_disk_is_storage_error_not_corrupt_message() {
        let e = Error::Corrupt {
            path: PathBuf::from("/data/seg.log"),
            offset: 64,
            corruption: Corruption::BadFrameCrc,
        };
        assert_eq!(response_error(&e), ResponseError::KafkaStorageError);
        assert_eq!(error_code(&e), 56);
    }

    #[test]
    fn config_is_invalid_config() {
        let e = Error::Config("segment.bytes too small".into());
        assert_eq!(response_error(&e), ResponseError::InvalidConfig);
        assert_eq!(error_code(&e), 40);
    }

    #[test]
    fn offsets_exhausted_is_unknown_server_error() {
        let e = Error::OffsetsExhausted {
            path: "/data/topics/t/0".into(),
            next_offset: i64::MAX as u64,
            count: 1,
        };
        assert_eq!(response_error(&e), ResponseError::UnknownServerError);
        assert_eq!(error_code(&e), -1);
    }

    #[test]
    fn unrefined_rejection_is_unknown_server_error() {
        let e = Error::Rejected("topic \"t\" already exists".into());
        assert_eq!(response_error(&e), ResponseError::UnknownServerError);
        assert_eq!(error_code(&e), -1);
    }

    #[test]
    fn rejections_refine_to_their_codes() {
        let e = Error::Rejected("whatever".into());
        let table = [
            (Rejection::TopicExists, 36),
            (Rejection::UnknownTopic, 3),
            (Rejection::UnknownTopicId, 100),
            (Rejection::InvalidTopicName, 17),
            (Rejection::InvalidPartitions, 37),
            (Rejection::InvalidReplicationFactor, 38),
            (Rejection::InvalidConfig, 40),
            (Rejection::InvalidRequest, 42),
        ];
        for (rejection, code) in table {
            assert_eq!(rejection.error().code(), code, "{rejection:?}");
            assert_eq!(response_error_with(&e, rejection).code(), code);
        }
    }

    #[test]
    fn refinement_leaves_other_errors_alone() {
        let e = Error::Config("x".into());
        assert_eq!(response_error_with(&e, Rejection::TopicExists).code(), 40);
    }

    #[test]
    fn storage_errors_are_retriable_and_client_faults_are_not() {
        assert!(ResponseError::KafkaStorageError.is_retriable());
        assert!(ResponseError::CorruptMessage.is_retriable());
        assert!(!ResponseError::InvalidRecord.is_retriable());
        assert!(!ResponseError::MessageTooLarge.is_retriable());
    }

    fn libc_eio() -> i32 {
        5 // EIO on Linux
    }
}
