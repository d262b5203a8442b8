use super::*;

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn entry<'a>(rows: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
    rows.iter().find(|r| r.name == name).unwrap()
}

#[test]
fn the_table_is_sorted_complete_and_its_defaults_pass_their_own_checks() {
    let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted, no duplicates");
    for spec in &SPECS {
        assert_eq!(
            canonical(spec.name, spec.kafka_default).as_deref(),
            Ok(spec.kafka_default),
            "{}",
            spec.name
        );
        assert!(!spec.doc.is_empty());
    }
    // Every key Kafka 3.9's TopicConfig documents.
    for key in [
        "cleanup.policy",
        "compression.type",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.downconversion.enable",
        "message.format.version",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    ] {
        assert!(find(key).is_some(), "{key}");
    }
}

#[test]
fn the_readme_table_lists_every_key() {
    let readme = include_str!("../../../README.md");
    for spec in &SPECS {
        assert!(
            readme.contains(&format!("| `{}` |", spec.name)),
            "README.md has no row for {}",
            spec.name
        );
    }
}

#[test]
fn values_are_checked_and_printed_as_kafka_does() {
    for (key, value, printed) in [
        // Integers: trimmed, signs and leading zeros dropped.
        ("retention.ms", " 3600000 ", "3600000"),
        ("retention.ms", "-1", "-1"),
        ("retention.bytes", "-5", "-5"),
        ("segment.bytes", "+01048576", "1048576"),
        ("index.interval.bytes", "0", "0"),
        ("compression.gzip.level", "-1", "-1"),
        ("compression.gzip.level", "9", "9"),
        ("compression.zstd.level", "-131072", "-131072"),
        ("min.insync.replicas", "2", "2"),
        ("flush.messages", LONG_MAX, LONG_MAX),
        // Booleans in any case.
        ("preallocate", "TRUE", "true"),
        ("unclean.leader.election.enable", " False", "false"),
        ("remote.storage.enable", "false", "false"),
        // Doubles as Java prints them.
        ("min.cleanable.dirty.ratio", "1", "1.0"),
        ("min.cleanable.dirty.ratio", "0.25", "0.25"),
        ("min.cleanable.dirty.ratio", "0.0001", "1.0E-4"),
        // Strings trimmed, from their allowed set.
        ("compression.type", " zstd ", "zstd"),
        ("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
        ("message.format.version", "2.8", "2.8"),
        ("message.format.version", "0.10.2-IV0", "0.10.2-IV0"),
        ("message.format.version", "2.8.1", "2.8.1"),
        ("message.format.version", "4.0-IV1", "4.0-IV1"),
        // Lists: elements trimmed, joined by commas.
        ("cleanup.policy", " delete ", "delete"),
        ("cleanup.policy", "", ""),
        ("cleanup.policy", "delete , delete", "delete,delete"),
        (
            "leader.replication.throttled.replicas",
            "0:0, 1:0",
            "0:0,1:0",
        ),
        ("follower.replication.throttled.replicas", "*", "*"),
    ] {
        assert_eq!(
            canonical(key, value).as_deref(),
            Ok(printed),
            "{key}={value:?}"
        );
    }
}

#[test]
fn bad_values_are_refused_with_the_key_and_the_reason() {
    for (key, value, reason) in [
        ("retention.ms", "soon", "Not a number of type LONG"),
        ("retention.ms", "-2", "Value must be at least -1"),
        ("segment.bytes", "4294967296", "Not a number of type INT"),
        ("segment.bytes", "13", "Value must be at least 14"),
        ("segment.ms", "0", "Value must be at least 1"),
        ("max.message.bytes", "-1", "Value must be at least 0"),
        ("min.insync.replicas", "0", "Value must be at least 1"),
        ("flush.messages", "0", "Value must be at least 1"),
        ("local.retention.ms", "-3", "Value must be at least -2"),
        (
            "compression.lz4.level",
            "18",
            "Value must be no more than 17",
        ),
        (
            "compression.zstd.level",
            "23",
            "Value must be no more than 22",
        ),
        (
            "compression.gzip.level",
            "0",
            "between 1 and 9 or equal to -1",
        ),
        (
            "compression.gzip.level",
            "10",
            "between 1 and 9 or equal to -1",
        ),
        (
            "preallocate",
            "yes",
            "Expected value to be either true or false",
        ),
        (
            "min.cleanable.dirty.ratio",
            "1.5",
            "Value must be no more than 1",
        ),
        (
            "min.cleanable.dirty.ratio",
            "-0.1",
            "Value must be at least 0",
        ),
        (
            "min.cleanable.dirty.ratio",
            "NaN",
            "Not a number of type DOUBLE",
        ),
        (
            "compression.type",
            "LZ4",
            "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
        ),
        (
            "message.timestamp.type",
            "createtime",
            "String must be one of: CreateTime, LogAppendTime",
        ),
        ("message.format.version", "4.0", "is not a valid version"),
        (
            "message.format.version",
            "3.9-IV1",
            "is not a valid version",
        ),
        ("message.format.version", "banana", "is not a valid version"),
        (
            "cleanup.policy",
            "remove",
            "String must be one of: compact, delete",
        ),
        (
            "cleanup.policy",
            "compact",
            "ringlog does not compact logs yet",
        ),
        (
            "cleanup.policy",
            "delete,compact",
            "ringlog does not compact logs yet",
        ),
        (
            "leader.replication.throttled.replicas",
            "0-0",
            "must be the literal '*'",
        ),
        (
            "follower.replication.throttled.replicas",
            "*,0:1",
            "must be the literal '*'",
        ),
    ] {
        let err = canonical(key, value).unwrap_err();
        assert!(err.contains(key), "{key}={value:?}: {err}");
        assert!(err.contains(reason), "{key}={value:?}: {err}");
    }
    assert_eq!(
        canonical("compression", "lz4").unwrap_err(),
        "Unknown topic config name: compression"
    );
}

#[test]
fn compaction_lags_are_checked_together() {
    let lags = |min: &str, max: &str| {
        log_config(
            &LogConfig::default(),
            &overrides(&[(MIN_COMPACTION_LAG_MS, min), (MAX_COMPACTION_LAG_MS, max)]),
        )
    };
    assert!(lags("100", "100").is_ok());
    let err = lags("101", "100").unwrap_err();
    assert_eq!(
        err,
        "conflict topic config setting min.compaction.lag.ms (101) > max.compaction.lag.ms (100)"
    );
    let err = log_config(
        &LogConfig::default(),
        &overrides(&[(MAX_COMPACTION_LAG_MS, "0")]),
    )
    .unwrap_err();
    assert!(err.contains("Value must be at least 1"), "{err}");
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
            (INDEX_INTERVAL_BYTES, "4096"),
        ]),
    )
    .unwrap();
    assert_eq!(config.retention_ms, None);
    assert_eq!(config.retention_bytes, Some(1_000_000));
    assert_eq!(config.segment_bytes, 1 << 20);
    assert_eq!(config.segment_ms, 60_000);
    assert_eq!(config.max_payload_bytes, 4096);
    assert_eq!(config.index_interval_bytes, 4096);
    // Kafka's 0 indexes every batch; any negative size is no limit.
    let config = log_config(
        &defaults,
        &overrides(&[(INDEX_INTERVAL_BYTES, "0"), (RETENTION_BYTES, "-7")]),
    )
    .unwrap();
    assert_eq!(config.index_interval_bytes, 1);
    assert_eq!(config.retention_bytes, None);
}

#[test]
fn keys_that_are_only_stored_leave_the_log_config_alone() {
    let defaults = LogConfig::default();
    let stored = overrides(&[
        ("min.insync.replicas", "3"),
        ("unclean.leader.election.enable", "true"),
        ("flush.messages", "1"),
        ("flush.ms", "1000"),
        ("preallocate", "true"),
        ("segment.index.bytes", "4096"),
        ("segment.jitter.ms", "1000"),
        ("file.delete.delay.ms", "0"),
        ("message.downconversion.enable", "false"),
        ("message.format.version", "2.8"),
        ("min.cleanable.dirty.ratio", "0.9"),
        ("delete.retention.ms", "0"),
        ("remote.log.copy.disable", "true"),
    ]);
    assert_eq!(log_config(&defaults, &stored).unwrap(), defaults);
}

#[test]
fn an_empty_cleanup_policy_keeps_every_segment() {
    let defaults = LogConfig::default();
    let config = log_config(
        &defaults,
        &overrides(&[
            (CLEANUP_POLICY, ""),
            (RETENTION_MS, "1000"),
            (RETENTION_BYTES, "10"),
        ]),
    )
    .unwrap();
    assert_eq!((config.retention_ms, config.retention_bytes), (None, None));
    // Described as set, as Kafka describes them.
    let rows = describe(
        &defaults,
        &overrides(&[(CLEANUP_POLICY, ""), (RETENTION_MS, "1000")]),
    );
    assert_eq!(entry(&rows, RETENTION_MS).value, "1000");
    assert_eq!(entry(&rows, CLEANUP_POLICY).value, "");
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
    )
    .unwrap_err();
    assert!(
        refused.contains("segment.bytes=1048576 with max.message.bytes=1048576"),
        "{refused}"
    );
    // Kafka accepts 14 bytes; a segment must hold its header and footer.
    let refused = log_config(&LogConfig::default(), &overrides(&[(SEGMENT_BYTES, "14")]));
    assert!(refused.unwrap_err().contains("segment.bytes=14"));
}

#[test]
fn describe_reports_values_sources_and_synonyms_as_kafka_does() {
    let defaults = LogConfig::default();
    let rows = describe(
        &defaults,
        &overrides(&[
            (RETENTION_MS, "1000"),
            ("preallocate", "TRUE"),
            (CLEANUP_POLICY, "delete, delete"),
        ]),
    );
    assert_eq!(rows.len(), SPECS.len());

    // A topic override: its canonical value, first synonym.
    let retention = entry(&rows, RETENTION_MS);
    assert_eq!(
        (retention.value.as_str(), retention.source),
        ("1000", Source::Topic)
    );
    // log.retention.ms has no built-in default in Kafka: no other synonym.
    assert_eq!(
        retention.synonyms,
        vec![Synonym {
            name: RETENTION_MS,
            value: "1000".into(),
            source: Source::Topic
        }]
    );
    let preallocate = entry(&rows, "preallocate");
    assert_eq!(preallocate.value, "true");
    assert_eq!(preallocate.kind, Kind::Boolean);
    assert_eq!(
        preallocate.synonyms,
        vec![
            Synonym {
                name: "preallocate",
                value: "true".into(),
                source: Source::Topic
            },
            Synonym {
                name: "log.preallocate",
                value: "false".into(),
                source: Source::Default
            },
        ]
    );
    assert_eq!(entry(&rows, CLEANUP_POLICY).value, "delete,delete");

    // Defaults: the engine's for honoured keys, Kafka's for the rest.
    let segment = entry(&rows, SEGMENT_BYTES);
    assert_eq!(segment.value, defaults.segment_bytes.to_string());
    assert_eq!(segment.source, Source::Default);
    assert_eq!(
        segment.synonyms,
        vec![Synonym {
            name: "log.segment.bytes",
            value: defaults.segment_bytes.to_string(),
            source: Source::Default
        }]
    );
    assert_eq!(
        entry(&rows, INDEX_INTERVAL_BYTES).value,
        defaults.index_interval_bytes.to_string()
    );
    assert_eq!(
        entry(&rows, MAX_MESSAGE_BYTES).value,
        defaults.max_payload_bytes.to_string()
    );
    assert_eq!(entry(&rows, "compression.type").value, "producer");
    assert_eq!(entry(&rows, "min.insync.replicas").kind, Kind::Int);
    // No broker synonym at all: DEFAULT_CONFIG, no synonyms.
    let remote = entry(&rows, REMOTE_STORAGE_ENABLE);
    assert_eq!(
        (remote.value.as_str(), remote.source),
        ("false", Source::Default)
    );
    assert!(remote.synonyms.is_empty());
}

#[test]
fn server_settings_are_static_broker_configs() {
    let server = LogConfig {
        segment_bytes: 64 << 20,
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let rows = describe(&server, &overrides(&[(SEGMENT_MS, "1000")]));
    let segment = entry(&rows, SEGMENT_BYTES);
    assert_eq!(
        (segment.value.as_str(), segment.source),
        ("67108864", Source::StaticBroker)
    );
    assert_eq!(
        segment.synonyms,
        vec![
            Synonym {
                name: "log.segment.bytes",
                value: "67108864".into(),
                source: Source::StaticBroker
            },
            Synonym {
                name: "log.segment.bytes",
                value: (1u64 << 30).to_string(),
                source: Source::Default
            },
        ]
    );
    // The topic's own setting still comes first.
    let roll = entry(&rows, SEGMENT_MS);
    assert_eq!((roll.value.as_str(), roll.source), ("1000", Source::Topic));
    assert_eq!(
        roll.synonyms,
        vec![
            Synonym {
                name: SEGMENT_MS,
                value: "1000".into(),
                source: Source::Topic
            },
            Synonym {
                name: "log.roll.ms",
                value: "60000".into(),
                source: Source::StaticBroker
            },
        ]
    );
}

#[test]
fn alter_operations_follow_kafka() {
    let stored = overrides(&[(RETENTION_MS, "1000"), (SEGMENT_MS, "2000")]);
    let set = |k: &str, v: &str| (k.to_string(), Change::Set(v.to_string()));
    // Incremental: named keys change, others stay.
    let wanted = altered(
        &stored,
        &[
            set(RETENTION_MS, "5"),
            (SEGMENT_MS.to_string(), Change::Delete),
        ],
        false,
    )
    .unwrap();
    assert_eq!(wanted, overrides(&[(RETENTION_MS, "5")]));
    // Legacy: everything not named goes back to its default.
    let wanted = altered(&stored, &[set("preallocate", "true")], true).unwrap();
    assert_eq!(wanted, overrides(&[("preallocate", "true")]));
    // APPEND starts from Kafka's default, skips present elements;
    // SUBTRACT removes them (an empty list stays set).
    let key = "leader.replication.throttled.replicas";
    let append = |v: &str| (key.to_string(), Change::Append(v.to_string()));
    let subtract = |v: &str| (key.to_string(), Change::Subtract(v.to_string()));
    let wanted = altered(&stored, &[append("0:0,1:0")], false).unwrap();
    assert_eq!(wanted[key], "0:0,1:0");
    let wanted = altered(&wanted, &[append("1:0,2:0")], false).unwrap();
    assert_eq!(wanted[key], "0:0,1:0,2:0");
    let wanted = altered(&wanted, &[subtract("0:0,2:0,9:9")], false).unwrap();
    assert_eq!(wanted[key], "1:0");
    let wanted = altered(&wanted, &[subtract("1:0")], false).unwrap();
    assert_eq!(wanted[key], "");
    let policy = altered(
        &stored,
        &[(
            CLEANUP_POLICY.to_string(),
            Change::Subtract("delete".into()),
        )],
        false,
    )
    .unwrap();
    assert_eq!(policy[CLEANUP_POLICY], "");
    // Refusals.
    assert_eq!(
        altered(
            &stored,
            &[(RETENTION_MS.to_string(), Change::Append("1".into()))],
            false
        )
        .unwrap_err(),
        "Can't APPEND to key retention.ms because its type is not LIST."
    );
    assert_eq!(
        altered(
            &stored,
            &[("no.such.key".to_string(), Change::Delete)],
            false
        )
        .unwrap_err(),
        "Unknown topic config name: no.such.key"
    );
}

#[test]
fn batch_policy_keys_set_the_batch_policy() {
    let defaults = LogConfig::default();
    assert_eq!(
        log_config(&defaults, &BTreeMap::new())
            .unwrap()
            .batch_policy,
        ringlog_engine::records::BatchPolicy::default()
    );
    for (value, codec) in [
        ("producer", None),
        ("uncompressed", Some(Codec::None)),
        ("gzip", Some(Codec::Gzip)),
        ("snappy", Some(Codec::Snappy)),
        ("lz4", Some(Codec::Lz4)),
        (" zstd ", Some(Codec::Zstd)),
    ] {
        let config = log_config(&defaults, &overrides(&[(COMPRESSION_TYPE, value)])).unwrap();
        assert_eq!(config.batch_policy.compression, codec, "{value}");
    }
    let policy = log_config(
        &defaults,
        &overrides(&[
            (MESSAGE_TIMESTAMP_TYPE, "LogAppendTime"),
            (MESSAGE_TIMESTAMP_BEFORE_MAX_MS, "3600000"),
            (MESSAGE_TIMESTAMP_AFTER_MAX_MS, "0"),
        ]),
    )
    .unwrap()
    .batch_policy;
    assert_eq!(policy.timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(policy.timestamp_before_max_ms, 3_600_000);
    assert_eq!(policy.timestamp_after_max_ms, 0);
    for (key, value) in [
        (COMPRESSION_TYPE, "brotli"),
        (MESSAGE_TIMESTAMP_TYPE, "createtime"),
        (MESSAGE_TIMESTAMP_BEFORE_MAX_MS, "-1"),
    ] {
        assert!(
            log_config(&defaults, &overrides(&[(key, value)])).is_err(),
            "{key}={value}"
        );
    }
}

#[test]
fn remote_storage_follows_the_broker_and_local_bounds_stay_within_the_overall_ones() {
    let off = LogConfig::default();
    let err = log_config(&off, &overrides(&[(REMOTE_STORAGE_ENABLE, "true")])).unwrap_err();
    assert!(err.contains("--archive off"), "{err}");
    assert!(!log_config(&off, &overrides(&[])).unwrap().remote_storage);
    let on = LogConfig {
        remote_storage: true,
        retention_ms: Some(10_000),
        ..LogConfig::default()
    };
    assert!(log_config(&on, &overrides(&[])).unwrap().remote_storage);
    let opted_out = log_config(&on, &overrides(&[(REMOTE_STORAGE_ENABLE, "false")])).unwrap();
    assert!(!opted_out.remote_storage);
    let local = |ms: &str| log_config(&on, &overrides(&[("local.retention.ms", ms)]));
    assert_eq!(local("0").unwrap().local_retention(), (Some(0), None));
    assert_eq!(local("-2").unwrap().local_retention(), (Some(10_000), None));
    assert_eq!(
        local("10000").unwrap().local_retention(),
        (Some(10_000), None)
    );
    for too_much in ["10001", "-1"] {
        let err = local(too_much).unwrap_err();
        assert!(err.contains("must not exceed retention.ms=10000"), "{err}");
    }
    let rows = describe(&on, &BTreeMap::new());
    assert_eq!(entry(&rows, REMOTE_STORAGE_ENABLE).value, "true");
}

#[test]
fn search_follows_the_broker_default_and_the_topic_override() {
    let on = LogConfig::default();
    let off = LogConfig {
        search: false,
        ..LogConfig::default()
    };
    assert!(log_config(&on, &overrides(&[])).unwrap().search);
    assert!(!log_config(&off, &overrides(&[])).unwrap().search);
    assert!(
        !log_config(&on, &overrides(&[(SEARCH_ENABLE, "false")]))
            .unwrap()
            .search
    );
    assert!(
        log_config(&off, &overrides(&[(SEARCH_ENABLE, " TRUE ")]))
            .unwrap()
            .search
    );
    assert!(canonical(SEARCH_ENABLE, "maybe").is_err());
    assert_eq!(
        entry(&describe(&off, &BTreeMap::new()), SEARCH_ENABLE).value,
        "false"
    );
    let rows = describe(&on, &overrides(&[(SEARCH_ENABLE, "false")]));
    assert_eq!(entry(&rows, SEARCH_ENABLE).value, "false");
}
