//! Kafka topic configs (`retention.ms`, `segment.bytes`, ...) and how they
//! become a partition's [`LogConfig`].
//!
//! Why only these keys: each one changes what the engine does. Accepting a
//! key the engine ignores would tell the user a setting is in force when
//! it is not, so unknown keys are INVALID_CONFIG, as Kafka answers them.

use ringlog_engine::format::{FILE_HEADER_BYTES, FOOTER_PAYLOAD_BYTES, FRAME_HEADER_BYTES};
use ringlog_engine::LogConfig;
use std::collections::BTreeMap;

/// `retention.ms`: delete segments whose newest record is older (-1: never).
pub const RETENTION_MS: &str = "retention.ms";
/// `retention.bytes`: delete old segments above this size (-1: no limit).
pub const RETENTION_BYTES: &str = "retention.bytes";
/// `segment.bytes`: roll the active segment at this size.
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// `segment.ms`: roll the active segment at this age.
pub const SEGMENT_MS: &str = "segment.ms";
/// `cleanup.policy`: only `delete` (compaction is not implemented).
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// `max.message.bytes`: the largest record batch accepted.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";

/// Every supported key, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIG_KEYS: [&str; 6] = [
    CLEANUP_POLICY,
    MAX_MESSAGE_BYTES,
    RETENTION_BYTES,
    RETENTION_MS,
    SEGMENT_BYTES,
    SEGMENT_MS,
];

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

/// Applies one `key=value` to `config`.
fn apply(config: &mut LogConfig, key: &str, value: &str) -> Result<(), String> {
    match key {
        RETENTION_MS => {
            let ms = parse_i64(key, value, -1)?;
            config.retention_ms = (ms >= 0).then_some(ms);
        }
        RETENTION_BYTES => {
            let bytes = parse_i64(key, value, -1)?;
            config.retention_bytes = (bytes >= 0).then_some(bytes as u64);
        }
        SEGMENT_BYTES => config.segment_bytes = parse_i64(key, value, 1)? as u64,
        SEGMENT_MS => config.segment_ms = parse_i64(key, value, 1)?,
        MAX_MESSAGE_BYTES => {
            let bytes = parse_i64(key, value, 1)?;
            config.max_payload_bytes = usize::try_from(bytes)
                .map_err(|_| format!("{key}={bytes} does not fit this platform"))?;
        }
        CLEANUP_POLICY => {
            if value.trim() != "delete" {
                return Err(format!(
                    "{key}={value:?} is not supported: only \"delete\" (no compaction)"
                ));
            }
        }
        other => {
            return Err(format!(
                "unknown topic config {other:?}; supported: {}",
                TOPIC_CONFIG_KEYS.join(", ")
            ))
        }
    }
    Ok(())
}

/// The log settings of a topic with these overrides on top of the
/// server's defaults; the reason if a key or value is not acceptable.
pub fn log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
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
    config
        .validate()
        .map_err(|e| format!("topic configs rejected by the log: {e}"))?;
    Ok(config)
}

/// The value of `key` in effect under `config`, as Kafka prints it.
fn effective_value(config: &LogConfig, key: &str) -> String {
    match key {
        RETENTION_MS => config.retention_ms.unwrap_or(-1).to_string(),
        RETENTION_BYTES => config
            .retention_bytes
            .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX))
            .to_string(),
        SEGMENT_BYTES => config.segment_bytes.to_string(),
        SEGMENT_MS => config.segment_ms.to_string(),
        MAX_MESSAGE_BYTES => config.max_payload_bytes.to_string(),
        CLEANUP_POLICY => "delete".to_string(),
        other => unreachable!("not a supported key: {other}"),
    }
}

/// One row of DescribeConfigs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: &'static str,
    /// The value in effect.
    pub value: String,
    /// True when the topic does not override the server default.
    pub is_default: bool,
}

/// Every supported key with its effective value.
pub fn describe(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    // Stored overrides were validated when set; a server default change
    // can still make them invalid, and then the defaults are shown.
    let config = log_config(defaults, overrides).unwrap_or_else(|_| defaults.clone());
    TOPIC_CONFIG_KEYS
        .iter()
        .map(|&name| ConfigEntry {
            name,
            value: effective_value(&config, name),
            is_default: !overrides.contains_key(name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_change_the_log_config() {
        let defaults = LogConfig::default();
        let config = log_config(
            &defaults,
            &overrides(&[
                (RETENTION_MS, "-1"),
                (RETENTION_BYTES, "1000000"),
                (SEGMENT_BYTES, "1048576"),
                (SEGMENT_MS, "60000"),
                (CLEANUP_POLICY, "delete"),
                (MAX_MESSAGE_BYTES, "4096"),
            ]),
        )
        .unwrap();
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.retention_bytes, Some(1_000_000));
        assert_eq!(config.segment_bytes, 1 << 20);
        assert_eq!(config.segment_ms, 60_000);
        assert_eq!(config.max_payload_bytes, 4096);
    }

    #[test]
    fn a_one_mebibyte_segment_lowers_the_default_batch_limit() {
        let config = log_config(
            &LogConfig::default(),
            &overrides(&[(SEGMENT_BYTES, "1048576")]),
        )
        .unwrap();
        assert_eq!(config.segment_bytes, 1 << 20);
        assert!(config.max_payload_bytes < 1 << 20);
        assert!(config.max_payload_bytes > (1 << 20) - 256);
        // An explicit max.message.bytes is never lowered behind the user's back.
        let refused = log_config(
            &LogConfig::default(),
            &overrides(&[(SEGMENT_BYTES, "1048576"), (MAX_MESSAGE_BYTES, "1048576")]),
        );
        assert!(refused.is_err());
    }

    #[test]
    fn bad_keys_and_values_are_refused() {
        let defaults = LogConfig::default();
        for (key, value) in [
            ("compression.type", "lz4"),
            (RETENTION_MS, "soon"),
            (RETENTION_MS, "-2"),
            (SEGMENT_BYTES, "0"),
            (CLEANUP_POLICY, "compact"),
            (MAX_MESSAGE_BYTES, "999999999999"),
        ] {
            let err = log_config(&defaults, &overrides(&[(key, value)])).unwrap_err();
            assert!(
                err.contains(key) || err.contains("rejected"),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn describe_marks_overrides() {
        let defaults = LogConfig::default();
        let rows = describe(&defaults, &overrides(&[(RETENTION_MS, "1000")]));
        assert_eq!(rows.len(), TOPIC_CONFIG_KEYS.len());
        let retention = rows.iter().find(|r| r.name == RETENTION_MS).unwrap();
        assert_eq!(retention.value, "1000");
        assert!(!retention.is_default);
        let segment = rows.iter().find(|r| r.name == SEGMENT_BYTES).unwrap();
        assert_eq!(segment.value, defaults.segment_bytes.to_string());
        assert!(segment.is_default);
    }
}
