//! Kafka topic configs (`retention.ms`, `segment.bytes`, ...): every key
//! Apache Kafka 3.9 defines for a topic, how each is checked and
//! described, and how the ones that act on a partition's log become its
//! [`LogConfig`].
//!
//! Layer: foundation (see the crate docs): the controller checks against
//! this table and the handlers describe from it. Imports nothing of the
//! crate.
//!
//! Why every Kafka key is accepted: tools create topics with configs
//! copied from a Kafka cluster or with their house defaults
//! (`min.insync.replicas=2`, `unclean.leader.election.enable=false`, ...),
//! and a broker that refuses a key Kafka accepts breaks them. Why unknown
//! keys are still INVALID_CONFIG (as Kafka answers them): a misspelt key
//! would otherwise be stored and silently do nothing.
//!
//! A value is checked as Kafka's `LogConfig` checks it (type, range,
//! allowed strings) and refused with Kafka's message shape ("Invalid value
//! V for configuration K: why"). The meta log stores the value as given;
//! DescribeConfigs prints it the way Kafka does after parsing (trimmed,
//! `true`/`false`, list elements joined by commas), with Kafka's sources
//! and synonyms ([`describe`]).
//!
//! Keys that change what ringlog does are applied to the partition's
//! [`LogConfig`] by [`apply`] (and `cleanup.policy` by [`log_config`]).
//! The rest are stored and described: on one node without compaction,
//! replication or tiered storage they have nothing to act on (the README's
//! table says why, key by key). Two values Kafka can accept are refused
//! because accepting them would claim a behaviour ringlog lacks:
//! `cleanup.policy` with `compact` (no compaction yet) and, on a broker
//! started with `--archive off`, `remote.storage.enable=true` (Kafka
//! refuses it too on a broker without tiered storage).
//!
//! One key is ringlog's own, named under `ringlog.` so it can never
//! collide with one of Kafka's: `ringlog.search.enable`, record search
//! for the topic (its default is `serve --search-default`).

use ringlog_engine::codec::Codec;
use ringlog_engine::format::{FILE_HEADER_BYTES, FOOTER_PAYLOAD_BYTES, FRAME_HEADER_BYTES};
use ringlog_engine::records::TimestampType;
use ringlog_engine::LogConfig;
use std::collections::BTreeMap;

/// `retention.ms`: delete segments whose newest record is older (-1: never).
pub const RETENTION_MS: &str = "retention.ms";
/// `retention.bytes`: delete old segments above this size (negative: no limit).
pub const RETENTION_BYTES: &str = "retention.bytes";
/// `segment.bytes`: roll the active segment at this size.
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// `segment.ms`: roll the active segment at this age.
pub const SEGMENT_MS: &str = "segment.ms";
/// `cleanup.policy`: `delete` or nothing (compaction is not implemented).
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// `max.message.bytes`: the largest record batch accepted.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// `index.interval.bytes`: bytes of batches between two index entries.
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
// ---- Batch policy keys: what the broker does to produced batches
// (`ringlog_engine::records::BatchPolicy`), applied in `apply`.
/// `compression.type`: `producer` (store as produced), `uncompressed`,
/// `gzip`, `snappy`, `lz4` or `zstd` (recompress into that codec).
pub const COMPRESSION_TYPE: &str = "compression.type";
/// `message.timestamp.type`: `CreateTime` or `LogAppendTime`.
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
/// `message.timestamp.before.max.ms`: with CreateTime, how old a record's
/// timestamp may be.
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
/// `message.timestamp.after.max.ms`: with CreateTime, how far in the future
/// a record's timestamp may be.
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";
// ---- end of batch policy keys
const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
const REMOTE_STORAGE_ENABLE: &str = "remote.storage.enable";
/// ringlog's own topic config: record search on or off.
pub const SEARCH_ENABLE: &str = "ringlog.search.enable";
/// `local.retention.ms`: with remote storage, the local age bound.
const LOCAL_RETENTION_MS: &str = "local.retention.ms";
/// `local.retention.bytes`: with remote storage, the local size bound.
const LOCAL_RETENTION_BYTES: &str = "local.retention.bytes";

/// Kafka's `Long.MAX_VALUE`: the default of the limits Kafka leaves open.
const LONG_MAX: &str = "9223372036854775807";

/// A config's type, as Kafka's `ConfigDef` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false` (any case).
    Boolean,
    /// Free text, possibly limited to some values.
    String,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    Long,
    /// A floating-point number.
    Double,
    /// Comma-separated elements.
    List,
}

impl Kind {
    /// DescribeConfigs' `config_type` code (v3+).
    pub fn code(self) -> i8 {
        match self {
            Kind::Boolean => 1,
            Kind::String => 2,
            Kind::Int => 3,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List => 7,
        }
    }

    /// The name in Kafka's "Not a number of type ..." message.
    fn name(self) -> &'static str {
        match self {
            Kind::Boolean => "BOOLEAN",
            Kind::String => "STRING",
            Kind::Int => "INT",
            Kind::Long => "LONG",
            Kind::Double => "DOUBLE",
            Kind::List => "LIST",
        }
    }
}

/// What a value must satisfy beyond its type.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Any value of the type.
    Any,
    /// A number at least this.
    AtLeast(i64),
    /// A number in this inclusive range.
    Between(i64, i64),
    /// Kafka's gzip level: 1..=9, or -1 for the codec's default.
    GzipLevel,
    /// One of these strings (case-sensitive, as Kafka compares them).
    OneOf(&'static [&'static str]),
    /// `delete` and `compact` elements; `compact` refused (no compaction).
    CleanupPolicy,
    /// `*` or `partition:broker` elements.
    ThrottledReplicas,
    /// A Kafka metadata version such as `3.0-IV1` or `2.8`.
    MetadataVersion,
}

/// One topic config key as Kafka 3.9 defines it.
#[derive(Debug)]
pub struct Spec {
    /// The key.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    rule: Rule,
    /// Kafka's default, as DescribeConfigs prints it. For keys ringlog
    /// honours, the default in force comes from the server's log defaults
    /// instead (see [`describe`]).
    kafka_default: &'static str,
    /// The broker config Kafka reports as this key's synonym, and whether
    /// Kafka gives that broker config a default (then DescribeConfigs lists
    /// it as a DEFAULT_CONFIG synonym).
    broker: Option<(&'static str, bool)>,
    /// What the key means (DescribeConfigs' documentation).
    pub doc: &'static str,
}

const fn spec(
    name: &'static str,
    kind: Kind,
    rule: Rule,
    kafka_default: &'static str,
    broker: Option<(&'static str, bool)>,
    doc: &'static str,
) -> Spec {
    Spec {
        name,
        kind,
        rule,
        kafka_default,
        broker,
        doc,
    }
}

/// Every topic config of Kafka 3.9 (its `LogConfig`), sorted by name,
/// which is the order DescribeConfigs lists them in.
pub const SPECS: [Spec; 37] = [
    spec(CLEANUP_POLICY, Kind::List, Rule::CleanupPolicy, "delete", Some(("log.cleanup.policy", true)),
        "How old segments are discarded: \"delete\" removes them by retention.ms and retention.bytes; an empty list keeps them. \"compact\" is refused: ringlog does not compact logs yet."),
    spec("compression.gzip.level", Kind::Int, Rule::GzipLevel, "-1", Some(("compression.gzip.level", true)),
        "The gzip level (1-9, or -1 for the codec's default) when the broker recompresses batches for compression.type=gzip."),
    spec("compression.lz4.level", Kind::Int, Rule::Between(1, 17), "9", Some(("compression.lz4.level", true)),
        "The lz4 level when the broker recompresses batches for compression.type=lz4."),
    spec("compression.type", Kind::String, Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), "producer", Some(("compression.type", true)),
        "The codec of stored batches: \"producer\" keeps the producer's; uncompressed, gzip, snappy, lz4 or zstd make the broker recompress each batch on append."),
    spec("compression.zstd.level", Kind::Int, Rule::Between(-131_072, 22), "3", Some(("compression.zstd.level", true)),
        "The zstd level when the broker recompresses batches for compression.type=zstd."),
    spec("delete.retention.ms", Kind::Long, Rule::AtLeast(0), "86400000", Some(("log.cleaner.delete.retention.ms", true)),
        "How long delete tombstones stay in a compacted topic. No effect in ringlog: it does not compact."),
    spec("file.delete.delay.ms", Kind::Long, Rule::AtLeast(0), "60000", Some(("log.segment.delete.delay.ms", true)),
        "How long Kafka keeps a segment's files after retention removed it. No effect in ringlog: it deletes them at once (a reader still holding one keeps its open file)."),
    spec("flush.messages", Kind::Long, Rule::AtLeast(1), LONG_MAX, Some(("log.flush.interval.messages", true)),
        "Kafka forces an fsync after this many messages. No effect in ringlog: acks=all always waits for an fdatasync (group commit), acks=0/1 are synced right after."),
    spec("flush.ms", Kind::Long, Rule::AtLeast(0), LONG_MAX, Some(("log.flush.interval.ms", false)),
        "Kafka forces an fsync when unsynced data is this old. No effect in ringlog: acks=all always waits for an fdatasync (group commit), acks=0/1 are synced right after."),
    spec("follower.replication.throttled.replicas", Kind::List, Rule::ThrottledReplicas, "", None,
        "Replicas (partition:broker, or *) whose follower fetches are throttled. No effect on one node: there are no followers."),
    spec(INDEX_INTERVAL_BYTES, Kind::Int, Rule::AtLeast(0), "4096", Some(("log.index.interval.bytes", true)),
        "Bytes of batches between two entries of a segment's offset and time indexes (0: an entry for every batch). Smaller means shorter scans per lookup and larger indexes."),
    spec("leader.replication.throttled.replicas", Kind::List, Rule::ThrottledReplicas, "", None,
        "Replicas (partition:broker, or *) whose fetches from the leader are throttled. No effect on one node: there are no followers."),
    spec(LOCAL_RETENTION_BYTES, Kind::Long, Rule::AtLeast(-2), "-2", Some(("log.local.retention.bytes", true)),
        "The local size bound of a partition with remote storage (-2: retention.bytes, -1: none): sealed segments whose archive is recorded leave the local disk beyond it. At most retention.bytes."),
    spec(LOCAL_RETENTION_MS, Kind::Long, Rule::AtLeast(-2), "-2", Some(("log.local.retention.ms", true)),
        "The local age bound of a partition with remote storage (-2: retention.ms, -1: none): sealed segments whose archive is recorded leave the local disk beyond it. At most retention.ms."),
    spec(MAX_COMPACTION_LAG_MS, Kind::Long, Rule::AtLeast(1), LONG_MAX, Some(("log.cleaner.max.compaction.lag.ms", true)),
        "The longest a record stays ineligible for compaction. No effect in ringlog: it does not compact."),
    spec(MAX_MESSAGE_BYTES, Kind::Int, Rule::AtLeast(0), "1048588", Some(("message.max.bytes", true)),
        "The largest record batch accepted, as sent (compressed); a larger batch answers MESSAGE_TOO_LARGE."),
    spec("message.downconversion.enable", Kind::Boolean, Rule::Any, "true", Some(("log.message.downconversion.enable", true)),
        "Whether Kafka converts batches for fetch requests of old versions. No effect in ringlog: it serves Fetch v4 and later, which never need it."),
    spec("message.format.version", Kind::String, Rule::MetadataVersion, "3.0-IV1", Some(("log.message.format.version", true)),
        "Deprecated record format version. No effect: ringlog, like Kafka 3.x, stores RecordBatch v2."),
    spec("message.timestamp.after.max.ms", Kind::Long, Rule::AtLeast(0), LONG_MAX, Some(("log.message.timestamp.after.max.ms", true)),
        "How far a record's CreateTime may be ahead of the broker's clock; a batch with a record beyond answers INVALID_TIMESTAMP."),
    spec("message.timestamp.before.max.ms", Kind::Long, Rule::AtLeast(0), LONG_MAX, Some(("log.message.timestamp.before.max.ms", true)),
        "How far a record's CreateTime may be behind the broker's clock; a batch with a record beyond answers INVALID_TIMESTAMP."),
    spec("message.timestamp.difference.max.ms", Kind::Long, Rule::AtLeast(0), LONG_MAX, Some(("log.message.timestamp.difference.max.ms", true)),
        "Deprecated bound on the distance between a record's CreateTime and the broker's clock, replaced by message.timestamp.before.max.ms and message.timestamp.after.max.ms."),
    spec("message.timestamp.type", Kind::String, Rule::OneOf(&["CreateTime", "LogAppendTime"]), "CreateTime", Some(("log.message.timestamp.type", true)),
        "CreateTime keeps the producer's timestamps; LogAppendTime makes the broker stamp each batch with its clock on append."),
    spec("min.cleanable.dirty.ratio", Kind::Double, Rule::Between(0, 1), "0.5", Some(("log.cleaner.min.cleanable.ratio", true)),
        "The share of a compacted log that must be uncompacted before it is cleaned. No effect in ringlog: it does not compact."),
    spec(MIN_COMPACTION_LAG_MS, Kind::Long, Rule::AtLeast(0), "0", Some(("log.cleaner.min.compaction.lag.ms", true)),
        "The shortest a record stays uncompacted. No effect in ringlog: it does not compact."),
    spec("min.insync.replicas", Kind::Int, Rule::AtLeast(1), "1", Some(("min.insync.replicas", true)),
        "Replicas that must have a batch before acks=all is answered. Kafka uses at most the replication factor; with one replica, acks=all waits for this broker's fdatasync."),
    spec("preallocate", Kind::Boolean, Rule::Any, "false", Some(("log.preallocate", true)),
        "Whether Kafka preallocates a new segment's file. No effect in ringlog: segments grow as written."),
    spec("remote.log.copy.disable", Kind::Boolean, Rule::Any, "false", None,
        "Stops copying segments to remote storage. No effect in ringlog: no tiered storage."),
    spec("remote.log.delete.on.disable", Kind::Boolean, Rule::Any, "false", None,
        "Deletes the remote data when remote storage is turned off. No effect in ringlog: no tiered storage."),
    spec(REMOTE_STORAGE_ENABLE, Kind::Boolean, Rule::Any, "false", None,
        "Tiered storage for the topic: sealed segments are archived to the broker's --archive store and Fetch serves them from there. Defaults to true when the broker archives; true is refused on a broker started with --archive off."),
    spec(RETENTION_BYTES, Kind::Long, Rule::Any, "-1", Some(("log.retention.bytes", true)),
        "Delete the oldest segments while the partition is larger than this (negative: no limit). The active segment stays."),
    spec(RETENTION_MS, Kind::Long, Rule::AtLeast(-1), "604800000", Some(("log.retention.ms", false)),
        "Delete segments whose newest record is older than this (-1: keep them). The active segment stays."),
    spec(SEARCH_ENABLE, Kind::Boolean, Rule::Any, "true", None,
        "ringlog's record search for the topic: the shard's indexer indexes every appended batch, and GET /search on the --http listener finds records by their value, key and headers. Defaults to serve --search-default; a change applies to the next batch."),
    spec(SEGMENT_BYTES, Kind::Int, Rule::AtLeast(14), "1073741824", Some(("log.segment.bytes", true)),
        "Roll the active segment at this size. It must hold one batch of max.message.bytes; without max.message.bytes, a small segment lowers the batch limit to what it holds."),
    spec("segment.index.bytes", Kind::Int, Rule::AtLeast(4), "10485760", Some(("log.index.size.max.bytes", true)),
        "The size Kafka preallocates for a segment's offset index. No effect in ringlog: its indexes grow with their segment."),
    spec("segment.jitter.ms", Kind::Long, Rule::AtLeast(0), "0", Some(("log.roll.jitter.ms", false)),
        "Random amount taken off segment.ms to spread segment rolls. No effect in ringlog: it rolls at segment.ms."),
    spec(SEGMENT_MS, Kind::Long, Rule::AtLeast(1), "604800000", Some(("log.roll.ms", false)),
        "Roll the active segment at this age, so that retention can remove it."),
    spec("unclean.leader.election.enable", Kind::Boolean, Rule::Any, "false", Some(("unclean.leader.election.enable", true)),
        "Whether a replica out of sync may become leader. No effect on one node: its only replica is always in sync."),
];

/// The definition of `key`, if Kafka 3.9 has such a topic config.
fn find(key: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == key)
}

/// Kafka's refusal of a key it does not define.
fn unknown_key(key: &str) -> String {
    format!("Unknown topic config name: {key}")
}

/// Kafka's `ConfigException` message.
fn invalid(key: &str, value: &str, why: impl std::fmt::Display) -> String {
    format!("Invalid value {value} for configuration {key}: {why}")
}

/// A list value's elements, split as Kafka splits them.
fn elements(value: &str) -> Vec<&str> {
    let value = value.trim();
    if value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

/// Whether `version` is a Kafka metadata version, as Kafka 3.9's
/// `MetadataVersion.fromVersionString` reads it: a release (`2.8`,
/// `0.10.2`) or one of its internal versions (`3.0-IV1`), with segments
/// past the release ignored (`2.8.1` is `2.8`).
fn is_metadata_version(version: &str) -> bool {
    // Each release with its count of internal versions (IV0, IV1, ...),
    // and whether the bare release is accepted: 4.0 is not released in
    // 3.9, which knows only its internal versions.
    const RELEASES: &[(&str, u8, bool)] = &[
        ("0.8.0", 0, true),
        ("0.8.1", 0, true),
        ("0.8.2", 0, true),
        ("0.9.0", 0, true),
        ("0.10.0", 2, true),
        ("0.10.1", 3, true),
        ("0.10.2", 1, true),
        ("0.11.0", 3, true),
        ("1.0", 1, true),
        ("1.1", 1, true),
        ("2.0", 2, true),
        ("2.1", 3, true),
        ("2.2", 2, true),
        ("2.3", 2, true),
        ("2.4", 2, true),
        ("2.5", 1, true),
        ("2.6", 1, true),
        ("2.7", 3, true),
        ("2.8", 2, true),
        ("3.0", 2, true),
        ("3.1", 1, true),
        ("3.2", 1, true),
        ("3.3", 4, true),
        ("3.4", 1, true),
        ("3.5", 3, true),
        ("3.6", 3, true),
        ("3.7", 5, true),
        ("3.8", 1, true),
        ("3.9", 1, true),
        ("4.0", 2, false),
    ];
    let segments = if version.starts_with("0.") { 3 } else { 2 };
    let key = version
        .split('.')
        .take(segments)
        .collect::<Vec<_>>()
        .join(".");
    RELEASES.iter().any(|&(release, internal, bare)| {
        let internal_version = key
            .strip_prefix(release)
            .and_then(|rest| rest.strip_prefix("-IV"))
            .and_then(|iv| iv.parse::<u8>().ok().filter(|n| n.to_string() == iv));
        (bare && key == release) || internal_version.is_some_and(|iv| iv < internal)
    })
}

/// Java's `Double.toString`, which DescribeConfigs prints doubles with.
fn java_double(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = value.to_string();
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        let text = format!("{value:E}");
        match text.split_once('E') {
            Some((mantissa, exponent)) if !mantissa.contains('.') => {
                format!("{mantissa}.0E{exponent}")
            }
            _ => text,
        }
    }
}

/// `value` checked as Kafka checks `key`, in the form DescribeConfigs
/// prints it; the reason (naming the key) if it is not acceptable.
pub fn canonical(key: &str, value: &str) -> Result<String, String> {
    let spec = find(key).ok_or_else(|| unknown_key(key))?;
    let trimmed = value.trim();
    let refuse = |why: String| Err(invalid(key, value, why));
    let not_a_number = || {
        invalid(
            key,
            value,
            format!("Not a number of type {}", spec.kind.name()),
        )
    };
    let out_of_range = |n: f64| match spec.rule {
        Rule::AtLeast(min) | Rule::Between(min, _) if n < min as f64 => {
            Some(format!("Value must be at least {min}"))
        }
        Rule::Between(_, max) if n > max as f64 => {
            Some(format!("Value must be no more than {max}"))
        }
        Rule::GzipLevel if n != -1.0 && !(1.0..=9.0).contains(&n) => {
            Some("Value must be between 1 and 9 or equal to -1".to_string())
        }
        _ => None,
    };
    match spec.kind {
        Kind::Int | Kind::Long => {
            let parsed = match spec.kind {
                Kind::Int => trimmed.parse::<i32>().map(i64::from),
                _ => trimmed.parse::<i64>(),
            };
            let n = parsed.map_err(|_| not_a_number())?;
            match out_of_range(n as f64) {
                Some(why) => refuse(why),
                None => Ok(n.to_string()),
            }
        }
        Kind::Double => {
            let n: f64 = trimmed
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(not_a_number)?;
            match out_of_range(n) {
                Some(why) => refuse(why),
                None => Ok(java_double(n)),
            }
        }
        Kind::Boolean => {
            let parsed = if trimmed.eq_ignore_ascii_case("true") {
                true
            } else if trimmed.eq_ignore_ascii_case("false") {
                false
            } else {
                return refuse("Expected value to be either true or false".to_string());
            };
            Ok(parsed.to_string())
        }
        Kind::String => match spec.rule {
            Rule::OneOf(allowed) if !allowed.contains(&trimmed) => {
                refuse(format!("String must be one of: {}", allowed.join(", ")))
            }
            Rule::MetadataVersion if !is_metadata_version(trimmed) => {
                refuse(format!("Version {trimmed} is not a valid version"))
            }
            _ => Ok(trimmed.to_string()),
        },
        Kind::List => {
            let parts = elements(value);
            match spec.rule {
                Rule::CleanupPolicy => {
                    if let Some(bad) = parts.iter().find(|p| !["compact", "delete"].contains(p)) {
                        return Err(invalid(key, bad, "String must be one of: compact, delete"));
                    }
                    if parts.contains(&"compact") {
                        return Err(format!(
                            "{key}={value} is not supported: ringlog does not compact logs yet; use {key}=delete (the default)"
                        ));
                    }
                }
                Rule::ThrottledReplicas => {
                    let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
                    let replica = |p: &&str| {
                        p.is_empty()
                            || p.split_once(':').is_some_and(|(partition, broker)| {
                                digits(partition) && digits(broker)
                            })
                    };
                    if !(parts.iter().all(replica) || parts.concat() == "*") {
                        return refuse(format!(
                            "{key} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                        ));
                    }
                }
                other => unreachable!("{key}: list key with rule {other:?}"),
            }
            Ok(parts.join(","))
        }
    }
}

/// Kafka's checks across keys (`LogConfig.validateValues`), on the
/// overrides over Kafka's defaults.
fn check_together(overrides: &BTreeMap<String, String>) -> Result<(), String> {
    let long = |key: &str| -> i64 {
        let value = overrides.get(key).map_or_else(
            || find(key).expect("a known key").kafka_default,
            String::as_str,
        );
        value.trim().parse().expect("checked by canonical")
    };
    let (min_lag, max_lag) = (long(MIN_COMPACTION_LAG_MS), long(MAX_COMPACTION_LAG_MS));
    if min_lag > max_lag {
        return Err(format!(
            "conflict topic config setting {MIN_COMPACTION_LAG_MS} ({min_lag}) > {MAX_COMPACTION_LAG_MS} ({max_lag})"
        ));
    }
    Ok(())
}

fn parse_i64(key: &str, value: &str, min: i64) -> Result<i64, String> {
    let parsed: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{key}={value:?} is not an integer"))?;
    if parsed < min {
        return Err(format!("{key}={parsed} is below the minimum {min}"));
    }
    Ok(parsed)
}

/// Applies one `key=value` to `config`. Keys that ringlog only stores
/// change nothing here; every value has passed [`canonical`].
fn apply(config: &mut LogConfig, key: &str, value: &str) -> Result<(), String> {
    match key {
        RETENTION_MS => {
            let ms = parse_i64(key, value, -1)?;
            config.retention_ms = (ms >= 0).then_some(ms);
        }
        RETENTION_BYTES => {
            // Kafka accepts any long; every negative one is "no limit".
            let bytes = parse_i64(key, value, i64::MIN)?;
            config.retention_bytes = u64::try_from(bytes).ok();
        }
        REMOTE_STORAGE_ENABLE => {
            let enable = value.trim().eq_ignore_ascii_case("true");
            // The server's default is true exactly when it archives.
            if enable && !config.remote_storage {
                return Err(format!(
                    "{key}=true is not supported: this broker runs with --archive off, so a topic cannot be configured with remote log storage"
                ));
            }
            config.remote_storage = enable;
        }
        SEARCH_ENABLE => config.search = value.trim().eq_ignore_ascii_case("true"),
        LOCAL_RETENTION_MS => config.local_retention_ms = parse_i64(key, value, -2)?,
        LOCAL_RETENTION_BYTES => config.local_retention_bytes = parse_i64(key, value, -2)?,
        SEGMENT_BYTES => config.segment_bytes = parse_i64(key, value, 1)? as u64,
        SEGMENT_MS => config.segment_ms = parse_i64(key, value, 1)?,
        MAX_MESSAGE_BYTES => {
            let bytes = parse_i64(key, value, 0)?;
            config.max_payload_bytes = usize::try_from(bytes)
                .map_err(|_| format!("{key}={bytes} does not fit this platform"))?;
        }
        INDEX_INTERVAL_BYTES => {
            // Kafka's 0 (an entry for every batch) is the engine's 1.
            config.index_interval_bytes = parse_i64(key, value, 0)?.max(1) as u64;
        }
        // ---- Batch policy keys (see their constants).
        COMPRESSION_TYPE => {
            config.batch_policy.compression = match value.trim() {
                "producer" => None,
                "uncompressed" => Some(Codec::None),
                "gzip" => Some(Codec::Gzip),
                "snappy" => Some(Codec::Snappy),
                "lz4" => Some(Codec::Lz4),
                "zstd" => Some(Codec::Zstd),
                _ => return Err(format!("{key}={value:?} is not a codec")),
            }
        }
        MESSAGE_TIMESTAMP_TYPE => {
            config.batch_policy.timestamp_type = match value.trim() {
                "CreateTime" => TimestampType::CreateTime,
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => return Err(format!("{key}={value:?} is not a timestamp type")),
            }
        }
        MESSAGE_TIMESTAMP_BEFORE_MAX_MS => {
            config.batch_policy.timestamp_before_max_ms = parse_i64(key, value, 0)?;
        }
        MESSAGE_TIMESTAMP_AFTER_MAX_MS => {
            config.batch_policy.timestamp_after_max_ms = parse_i64(key, value, 0)?;
        }
        // ---- end of batch policy keys
        // Stored and described only (`cleanup.policy` acts in `log_config`).
        _ => {}
    }
    Ok(())
}

/// `defaults` with the topic's honoured overrides applied and, unless the
/// topic sets `max.message.bytes`, the batch limit fitted to a small
/// segment: every value DescribeConfigs reports. The reason if a key or
/// value is not acceptable.
fn configured(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    for (key, value) in overrides {
        canonical(key, value)?;
    }
    check_together(overrides)?;
    let mut config = defaults.clone();
    for (key, value) in overrides {
        apply(&mut config, key, value)?;
    }
    if !overrides.contains_key(MAX_MESSAGE_BYTES) {
        // A small `segment.bytes` (Kafka accepts 1 MiB) with the default
        // `max.message.bytes` would leave no room for the segment header
        // and footer; lower the batch limit to what one segment holds, as
        // DescribeConfigs then shows.
        let overhead = (FILE_HEADER_BYTES + 2 * FRAME_HEADER_BYTES + FOOTER_PAYLOAD_BYTES) as u64;
        let fits = config.segment_bytes.saturating_sub(overhead);
        if (config.max_payload_bytes as u64) > fits && fits > 0 {
            config.max_payload_bytes = fits as usize;
        }
    }
    Ok(config)
}

/// The log settings of a topic with these overrides on top of the
/// server's defaults; the reason if a key or value is not acceptable.
pub fn log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    let mut config = configured(defaults, overrides)?;
    check_local_retention(&config)?;
    let deletes = overrides
        .get(CLEANUP_POLICY)
        .is_none_or(|policy| elements(policy).contains(&"delete"));
    if !deletes {
        // An empty cleanup.policy: Kafka keeps every segment, whatever the
        // retention settings (which it still describes).
        config.retention_ms = None;
        config.retention_bytes = None;
    }
    config.validate().map_err(|e| {
        format!(
            "segment.bytes={} with max.message.bytes={} is not accepted by the log: {e}",
            config.segment_bytes, config.max_payload_bytes
        )
    })?;
    Ok(config)
}

/// Kafka's rule: a local bound may not exceed the overall one (-2 follows
/// it; -1, no local bound, only with no overall bound either).
fn check_local_retention(config: &LogConfig) -> Result<(), String> {
    let (local_ms, local_bytes) = config.local_retention();
    if let Some(overall) = config.retention_ms {
        if local_ms.is_none_or(|ms| ms > overall) {
            return Err(format!(
                "{LOCAL_RETENTION_MS}={} must not exceed {RETENTION_MS}={overall}",
                config.local_retention_ms
            ));
        }
    }
    if let Some(overall) = config.retention_bytes {
        if local_bytes.is_none_or(|bytes| bytes > overall) {
            return Err(format!(
                "{LOCAL_RETENTION_BYTES}={} must not exceed {RETENTION_BYTES}={overall}",
                config.local_retention_bytes
            ));
        }
    }
    Ok(())
}

/// The value of honoured `key` under `config`, as Kafka prints it; None for
/// keys that ringlog only stores.
fn engine_value(config: &LogConfig, key: &str) -> Option<String> {
    Some(match key {
        RETENTION_MS => config.retention_ms.unwrap_or(-1).to_string(),
        RETENTION_BYTES => config
            .retention_bytes
            .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX))
            .to_string(),
        SEGMENT_BYTES => config.segment_bytes.to_string(),
        SEGMENT_MS => config.segment_ms.to_string(),
        MAX_MESSAGE_BYTES => config.max_payload_bytes.to_string(),
        INDEX_INTERVAL_BYTES => config.index_interval_bytes.to_string(),
        REMOTE_STORAGE_ENABLE => config.remote_storage.to_string(),
        SEARCH_ENABLE => config.search.to_string(),
        LOCAL_RETENTION_MS => config.local_retention_ms.to_string(),
        LOCAL_RETENTION_BYTES => config.local_retention_bytes.to_string(),
        _ => return None,
    })
}

/// What `spec` is under `config` when the topic does not set it.
fn default_value(config: &LogConfig, spec: &Spec) -> String {
    engine_value(config, spec.name).unwrap_or_else(|| spec.kafka_default.to_string())
}

/// Where a described value comes from (Kafka's `ConfigSource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Set on the topic (DYNAMIC_TOPIC_CONFIG).
    Topic,
    /// The server's own setting (`--segment-bytes`, ...; STATIC_BROKER_CONFIG).
    StaticBroker,
    /// The built-in default (DEFAULT_CONFIG).
    Default,
}

impl Source {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            Source::Topic => 1,
            Source::StaticBroker => 4,
            Source::Default => 5,
        }
    }
}

/// One place a value is or could be set, highest precedence first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synonym {
    /// The topic key, or Kafka's name of the broker config.
    pub name: &'static str,
    /// The value set there.
    pub value: String,
    /// Which kind of place.
    pub source: Source,
}

/// One row of DescribeConfigs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: &'static str,
    /// The value in effect (for a key ringlog only stores: the one stored).
    pub value: String,
    /// Where the value comes from.
    pub source: Source,
    /// Every place that sets it, the one in effect first.
    pub synonyms: Vec<Synonym>,
    /// Its type.
    pub kind: Kind,
    /// What it means.
    pub doc: &'static str,
}

/// Every topic config with its value and sources, as Kafka's broker
/// describes them: a topic override first (TOPIC_CONFIG), then the broker
/// config Kafka names as its synonym when the server sets it
/// (STATIC_BROKER_CONFIG), then that broker config's built-in default
/// (DEFAULT_CONFIG). The value's source is the first synonym's, or
/// DEFAULT_CONFIG when there is none.
pub fn describe(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    // Stored overrides were checked when set; a change of the server's
    // defaults can still make them unacceptable, and then the server's
    // defaults are shown.
    let config = configured(defaults, overrides).unwrap_or_else(|_| defaults.clone());
    let built_in = LogConfig::default();
    SPECS
        .iter()
        .map(|spec| {
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(spec.name) {
                synonyms.push(Synonym {
                    name: spec.name,
                    value: canonical(spec.name, value).unwrap_or_else(|_| value.clone()),
                    source: Source::Topic,
                });
            }
            if let Some((broker, has_default)) = spec.broker {
                let (server, default) = (
                    default_value(defaults, spec),
                    default_value(&built_in, spec),
                );
                if server != default {
                    synonyms.push(Synonym {
                        name: broker,
                        value: server,
                        source: Source::StaticBroker,
                    });
                }
                if has_default {
                    synonyms.push(Synonym {
                        name: broker,
                        value: default,
                        source: Source::Default,
                    });
                }
            }
            let (value, source) = match synonyms.first() {
                Some(first) if first.source == Source::Topic => {
                    (first.value.clone(), Source::Topic)
                }
                first => (
                    default_value(&config, spec),
                    first.map_or(Source::Default, |s| s.source),
                ),
            };
            ConfigEntry {
                name: spec.name,
                value,
                source,
                synonyms,
                kind: spec.kind,
                doc: spec.doc,
            }
        })
        .collect()
}

/// One change an alter request asks for of a key: IncrementalAlterConfigs'
/// operations (legacy AlterConfigs only sets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Set the value.
    Set(String),
    /// Remove the override (back to the default).
    Delete,
    /// Add list elements that are not there yet.
    Append(String),
    /// Remove list elements.
    Subtract(String),
}

/// The overrides after `changes`, computed as Kafka's controller does:
/// APPEND and SUBTRACT take the stored value (or Kafka's default) of a
/// LIST key apart at commas and add or remove the given elements. With
/// `replace` (legacy AlterConfigs), keys that `changes` does not name go
/// back to their defaults. Unknown keys and list operations on other types
/// are refused; values are checked by [`log_config`] afterwards.
pub fn altered(
    stored: &BTreeMap<String, String>,
    changes: &[(String, Change)],
    replace: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut wanted = if replace {
        BTreeMap::new()
    } else {
        stored.clone()
    };
    for (key, change) in changes {
        let spec = find(key).ok_or_else(|| unknown_key(key))?;
        let (operation, given) = match change {
            Change::Set(value) => {
                wanted.insert(key.clone(), value.clone());
                continue;
            }
            Change::Delete => {
                wanted.remove(key);
                continue;
            }
            Change::Append(given) => ("APPEND", given),
            Change::Subtract(given) => ("SUBTRACT", given),
        };
        if spec.kind != Kind::List {
            return Err(format!(
                "Can't {operation} to key {key} because its type is not LIST."
            ));
        }
        let current = wanted.get(key).map_or(spec.kafka_default, String::as_str);
        let mut parts: Vec<&str> = current.split(',').filter(|p| !p.is_empty()).collect();
        for element in given.split(',') {
            match change {
                Change::Append(_) if !parts.contains(&element) => parts.push(element),
                Change::Subtract(_) => {
                    if let Some(at) = parts.iter().position(|p| *p == element) {
                        parts.remove(at);
                    }
                }
                _ => {}
            }
        }
        let joined = parts.join(",");
        wanted.insert(key.clone(), joined);
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests;
