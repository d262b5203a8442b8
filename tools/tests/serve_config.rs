//! `ringlog serve` settings: command line > environment > config file >
//! default, and errors that name the option and where its value came from.
//! Everything here runs the pure merge, without starting a broker.

use clap::ArgMatches;
use ringlog_engine::{FlushPolicy, LogConfig};
use ringlog_protocol::sasl::Mechanism;
use ringlog_protocol::tls::ServerTlsFiles;
use ringlog_shard::config::{
    CoreBalancing, RouterCores, ARCHIVE_CACHE_BYTES_DEFAULT, ARCHIVE_READ_BYTES_PER_S_DEFAULT,
};
use ringlog_shard::limits::{
    CONNECTIONS_MAX_IDLE_MS_DEFAULT, MAX_CONNECTIONS_DEFAULT, REQUEST_MEMORY_BYTES_MAX_DEFAULT,
};
use ringlog_shard::tiered::ArchiveTarget;
use ringlog_tools::serve::{
    arguments, config_path, env_var_name, parse_cpuset, parse_flush_policy, parse_host_port,
    resolve, Settings, SHARDS_MAX,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

fn matches(flags: &[&str]) -> ArgMatches {
    clap::Command::new("serve")
        .args(arguments())
        .try_get_matches_from(std::iter::once("serve").chain(flags.iter().copied()))
        .expect("flags parse")
}

fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const FILE: &str = "/etc/ringlog/test.toml";

fn settings(flags: &[&str], vars: &[(&str, &str)], file: Option<&str>) -> Settings {
    resolve(
        &matches(flags),
        &env(vars),
        file.map(|text| (Path::new(FILE), text)),
    )
    .unwrap_or_else(|err| panic!("resolve: {err}"))
}

fn error(flags: &[&str], vars: &[(&str, &str)], file: Option<&str>) -> String {
    match resolve(
        &matches(flags),
        &env(vars),
        file.map(|text| (Path::new(FILE), text)),
    ) {
        Ok(_) => panic!("expected an error for {flags:?} {vars:?} {file:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn defaults_without_any_source() {
    let s = settings(&[], &[], None);
    let c = &s.server;
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.listen, "127.0.0.1:9092".parse::<SocketAddr>().unwrap());
    assert_eq!(
        (c.advertised_host.as_str(), c.advertised_port),
        ("127.0.0.1", 9092)
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.shards, cpus.clamp(1, SHARDS_MAX));
    assert_eq!(c.cpus, None);
    assert_eq!(c.router_cores, RouterCores::One);
    assert_eq!(c.spin_before_park_us, 0);
    assert_eq!(c.ring_depth, 128);
    assert_eq!(c.io_memory_bytes, 67_108_864);
    assert_eq!(
        c.io_memory_bytes,
        ringlog_shard::config::IO_MEMORY_BYTES_DEFAULT
    );
    assert_eq!(c.max_request_bytes, 104_857_600);
    assert_eq!(c.connections.max_connections(), 8192);
    assert_eq!(c.connections.max_connections(), MAX_CONNECTIONS_DEFAULT);
    assert_eq!(
        c.connections.max_connections_per_ip(),
        8192,
        "per IP: as many as in all"
    );
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.connections_max_idle_ms, CONNECTIONS_MAX_IDLE_MS_DEFAULT);
    assert_eq!(c.request_memory_bytes_max, 512 << 20);
    assert_eq!(c.request_memory_bytes_max, REQUEST_MEMORY_BYTES_MAX_DEFAULT);
    assert!(!c.auto_create_topics);
    assert_eq!(c.auto_create_partitions, 1);
    assert!(s.http.is_none());
    assert_eq!(c.core_balancing, CoreBalancing::OnChange);
    assert_eq!(
        c.archive,
        ArchiveTarget::Local {
            dir: PathBuf::from("./data/archive")
        }
    );
    assert_eq!(c.archive, ArchiveTarget::default_for(&c.data_dir));
    assert_eq!(c.archive_cache_bytes, ARCHIVE_CACHE_BYTES_DEFAULT);
    assert_eq!(c.archive_read_bytes_per_s, ARCHIVE_READ_BYTES_PER_S_DEFAULT);
    assert_eq!(c.archive_read_bytes_per_s, 200_000_000);
    // Archiving to a local directory: remote storage on, and a sealed
    // segment leaves the data disk once its archive is recorded.
    assert!(c.log_defaults.remote_storage);
    assert_eq!(c.log_defaults.local_retention_ms, 0);
    assert_eq!(
        c.log_defaults.local_retention_bytes,
        LogConfig::LOCAL_FOLLOWS_RETENTION
    );
    // The log defaults are exactly the engine's.
    let engine = LogConfig::default();
    assert_eq!(c.log_defaults.segment_bytes, engine.segment_bytes);
    assert_eq!(c.log_defaults.segment_bytes, 1_073_741_824);
    assert_eq!(c.log_defaults.segment_ms, engine.segment_ms);
    assert_eq!(c.log_defaults.segment_ms, 604_800_000);
    assert_eq!(c.log_defaults.flush_policy, engine.flush_policy);
    assert_eq!(c.log_defaults.flush_policy, FlushPolicy::Always);
    assert_eq!(
        c.log_defaults.max_payload_bytes, engine.max_payload_bytes,
        "fields without an option keep the engine default"
    );
    assert_eq!(c.log_defaults.retention_ms, engine.retention_ms);
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let file = "shards = 2\nflush-policy = \"interval:20\"\ndata-dir = \"/from/file\"\n";
    let vars = [
        ("RINGLOG_SHARDS", "3"),
        ("RINGLOG_FLUSH_POLICY", "interval:30"),
        ("RINGLOG_DATA_DIR", "/from/env"),
    ];
    let flags = [
        "--shards",
        "4",
        "--flush-policy",
        "interval:40",
        "--data-dir",
        "/from/flag",
    ];

    let all = settings(&flags, &vars, Some(file)).server;
    assert_eq!(all.shards, 4);
    assert_eq!(all.log_defaults.flush_policy, FlushPolicy::IntervalMs(40));
    assert_eq!(all.data_dir, PathBuf::from("/from/flag"));

    let no_flags = settings(&[], &vars, Some(file)).server;
    assert_eq!(no_flags.shards, 3);
    assert_eq!(
        no_flags.log_defaults.flush_policy,
        FlushPolicy::IntervalMs(30)
    );
    assert_eq!(no_flags.data_dir, PathBuf::from("/from/env"));

    let file_only = settings(&[], &[], Some(file)).server;
    assert_eq!(file_only.shards, 2);
    assert_eq!(
        file_only.log_defaults.flush_policy,
        FlushPolicy::IntervalMs(20)
    );
    assert_eq!(file_only.data_dir, PathBuf::from("/from/file"));

    // A flag equal to the default still wins: it was given.
    let flag_equals_default = settings(&["--data-dir", "./data"], &vars, Some(file)).server;
    assert_eq!(flag_equals_default.data_dir, PathBuf::from("./data"));

    // Sources mix per option.
    let mixed = settings(&["--shards", "4"], &vars[1..2], Some(file)).server;
    assert_eq!(mixed.shards, 4);
    assert_eq!(mixed.log_defaults.flush_policy, FlushPolicy::IntervalMs(30));
    assert_eq!(mixed.data_dir, PathBuf::from("/from/file"));
}

#[test]
fn switch_can_be_turned_off_on_the_command_line() {
    let file = Some("auto-create-topics = true\n");
    assert!(settings(&[], &[], file).server.auto_create_topics);
    assert!(
        settings(&["--auto-create-topics"], &[], None)
            .server
            .auto_create_topics
    );
    assert!(
        !settings(&["--auto-create-topics=false"], &[], file)
            .server
            .auto_create_topics
    );
    assert!(
        !settings(&[], &[("RINGLOG_AUTO_CREATE_TOPICS", "false")], file)
            .server
            .auto_create_topics
    );
    assert!(
        settings(
            &["--auto-create-topics=true"],
            &[("RINGLOG_AUTO_CREATE_TOPICS", "false")],
            None
        )
        .server
        .auto_create_topics
    );
}

#[test]
fn every_option_has_an_env_var_and_a_file_key() {
    let file = "\
data-dir = \"/d\"
listen = \"127.0.0.2:9000\"
advertised-listener = \"broker.example.com:9093\"
shards = 2
cpuset = \"0-1\"
router-cores = \"all\"
ring-depth = 256
io-memory-bytes = 1048576
segment-bytes = 16777216
segment-ms = 60000
flush-policy = \"interval:5\"
max-request-bytes = 2097152
max-connections = 100
max-connections-per-ip = 10
connections-max-idle-ms = 30000
request-memory-bytes-max = 8388608
auto-create-topics = true
auto-create-partitions = 3
http = \"127.0.0.1:9644\"
core-balancing = \"continuous\"
core-balancing-threshold = 1.5
core-balancing-debounce-ms = 5000
archive = \"s3://ringlog-archive/cluster-a\"
s3-endpoint = \"http://127.0.0.1:9000\"
archive-cache-bytes = 2147483648
archive-read-mb-s = 50
local-retention-ms = 3600000
security-protocol = \"SSL\"
tls-cert = \"/etc/ringlog/broker.pem\"
tls-key = \"/etc/ringlog/broker.key\"
tls-client-ca = \"/etc/ringlog/clients-ca.pem\"
";
    let from_file = settings(&[], &[], Some(file));
    let vars: Vec<(String, String)> = file
        .lines()
        .map(|line| {
            let (key, value) = line.split_once(" = ").unwrap();
            (env_var_name(key), value.trim_matches('"').to_string())
        })
        .collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(vars.contains(&("RINGLOG_IO_MEMORY_BYTES", "1048576")));
    let from_env = settings(&[], &vars, None);
    for s in [from_file, from_env] {
        let c = &s.server;
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.listen, "127.0.0.2:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("broker.example.com", 9093)
        );
        assert_eq!(c.shards, 2);
        assert_eq!(c.cpus, Some(vec![0, 1]));
        assert_eq!(c.router_cores, RouterCores::All);
        assert_eq!(c.ring_depth, 256);
        assert_eq!(c.io_memory_bytes, 1 << 20);
        assert_eq!(c.log_defaults.segment_bytes, 16 << 20);
        assert_eq!(c.log_defaults.segment_ms, 60_000);
        assert_eq!(c.log_defaults.flush_policy, FlushPolicy::IntervalMs(5));
        assert_eq!(c.max_request_bytes, 2 << 20);
        assert_eq!(c.connections.max_connections(), 100);
        assert_eq!(c.connections.max_connections_per_ip(), 10);
        assert_eq!(c.connections_max_idle_ms, 30_000);
        assert_eq!(c.request_memory_bytes_max, 8 << 20);
        assert!(c.auto_create_topics);
        assert_eq!(c.auto_create_partitions, 3);
        assert_eq!(s.http, Some("127.0.0.1:9644".parse().unwrap()));
        assert_eq!(
            c.core_balancing,
            CoreBalancing::Continuous {
                threshold: 1.5,
                debounce_ms: 5000
            }
        );
        assert_eq!(
            c.archive,
            ArchiveTarget::S3 {
                bucket: "ringlog-archive".into(),
                prefix: "cluster-a".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
            }
        );
        assert_eq!(c.archive_cache_bytes, 2 << 30);
        assert_eq!(c.archive_read_bytes_per_s, 50_000_000);
        assert!(c.log_defaults.remote_storage);
        assert_eq!(c.log_defaults.local_retention_ms, 3_600_000);
        assert_eq!(
            s.tls,
            Some(ServerTlsFiles {
                cert: "/etc/ringlog/broker.pem".into(),
                key: "/etc/ringlog/broker.key".into(),
                client_ca: Some("/etc/ringlog/clients-ca.pem".into()),
            })
        );
        // Resolving reads no file: the configuration is built at start.
        assert!(c.tls.is_none());
    }
}

#[test]
fn security_protocol_and_its_files() {
    let s = settings(&[], &[], None);
    assert_eq!(s.tls, None);
    let s = settings(
        &["--security-protocol", "ssl", "--tls-key", "k.pem"],
        &[("RINGLOG_TLS_CERT", "c.pem")],
        None,
    );
    assert_eq!(
        s.tls,
        Some(ServerTlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: None,
        })
    );
    assert_eq!(s.server.sasl, None);
    let err = error(&["--security-protocol", "SASL_SSL"], &[], None);
    assert!(err.contains("SASL_SSL needs --tls-cert FILE"), "{err}");
    let err = error(&[], &[], Some("security-protocol = \"TLS\""));
    assert!(
        err.contains("key \"security-protocol\"")
            && err.contains("not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
        "{err}"
    );
    let err = error(
        &["--security-protocol", "SSL", "--tls-key", "k.pem"],
        &[],
        None,
    );
    assert!(err.contains("SSL needs --tls-cert FILE"), "{err}");
    let err = error(
        &["--security-protocol", "SSL", "--tls-cert", "c.pem"],
        &[],
        None,
    );
    assert!(err.contains("SSL needs --tls-key FILE"), "{err}");
    let err = error(&["--tls-client-ca", "ca.pem"], &[], None);
    assert!(
        err.contains("--tls-client-ca is set but --security-protocol is PLAINTEXT"),
        "{err}"
    );
}

#[test]
fn authorizer_and_its_settings() {
    assert_eq!(settings(&[], &[], None).server.authorizer, None);
    let s = settings(
        &[
            "--authorizer",
            "on",
            "--super-users",
            "User:admin; User:ops",
            "--allow-everyone-if-no-acl-found",
        ],
        &[],
        None,
    );
    let authorizer = s.server.authorizer.expect("on");
    assert_eq!(authorizer.super_users, ["User:admin", "User:ops"]);
    assert!(authorizer.allow_everyone_if_no_acl_found);
    let s = settings(
        &[],
        &[("RINGLOG_AUTHORIZER", "on")],
        Some("super-users = \"User:root\""),
    );
    let authorizer = s.server.authorizer.expect("on");
    assert_eq!(authorizer.super_users, ["User:root"]);
    assert!(!authorizer.allow_everyone_if_no_acl_found);
    let err = error(&["--authorizer", "yes"], &[], None);
    assert!(err.contains("\"yes\" is not on or off"), "{err}");
    let err = error(&["--super-users", "User:admin"], &[], None);
    assert!(
        err.contains("--super-users is set but --authorizer is off"),
        "{err}"
    );
    let err = error(&["--allow-everyone-if-no-acl-found"], &[], None);
    assert!(err.contains("--authorizer is off"), "{err}");
    let err = error(&["--authorizer", "on", "--super-users", "admin"], &[], None);
    assert!(err.contains("not of the form User:<name>"), "{err}");
}

#[test]
fn sasl_protocols_and_mechanisms() {
    let s = settings(&["--security-protocol", "sasl_plaintext"], &[], None);
    assert_eq!(
        (s.tls, s.server.sasl),
        (None, Some(Mechanism::ALL.to_vec()))
    );
    let s = settings(
        &[
            "--security-protocol",
            "SASL_SSL",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ],
        &[("RINGLOG_SASL_MECHANISMS", "PLAIN,SCRAM-SHA-512")],
        None,
    );
    assert!(s.tls.is_some());
    assert_eq!(
        s.server.sasl,
        Some(vec![Mechanism::Plain, Mechanism::ScramSha512])
    );
    let s = settings(
        &[],
        &[],
        Some("security-protocol = \"SASL_PLAINTEXT\"\nsasl-mechanisms = \"SCRAM-SHA-256\""),
    );
    assert_eq!(s.server.sasl, Some(vec![Mechanism::ScramSha256]));
    let err = error(&["--sasl-mechanisms", "PLAIN"], &[], None);
    assert!(
        err.contains("--sasl-mechanisms is set but --security-protocol is PLAINTEXT"),
        "{err}"
    );
    let err = error(
        &[
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanisms",
            "GSSAPI",
        ],
        &[],
        None,
    );
    assert!(err.contains("\"GSSAPI\" is not a SASL mechanism"), "{err}");
}

#[test]
fn reauthentication_needs_sasl_and_a_bounded_lifetime() {
    assert_eq!(settings(&[], &[], None).server.reauth_ms, 0);
    let s = settings(
        &["--security-protocol", "SASL_PLAINTEXT"],
        &[("RINGLOG_CONNECTIONS_MAX_REAUTH_MS", "3600000")],
        None,
    );
    assert_eq!(s.server.reauth_ms, 3_600_000);
    let s = settings(
        &[],
        &[],
        Some("security-protocol = \"SASL_PLAINTEXT\"\nconnections-max-reauth-ms = 1000"),
    );
    assert_eq!(s.server.reauth_ms, 1000);
    let err = error(&["--connections-max-reauth-ms", "1000"], &[], None);
    assert!(
        err.contains("--connections-max-reauth-ms is set but --security-protocol is PLAINTEXT"),
        "{err}"
    );
    let err = error(
        &[
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--connections-max-reauth-ms",
            "99999999999",
        ],
        &[],
        None,
    );
    assert!(err.contains("connections-max-reauth-ms"), "{err}");
}

#[test]
fn archive_targets_and_their_local_retention() {
    let c = settings(&["--archive", "off"], &[], None).server;
    assert_eq!(c.archive, ArchiveTarget::Off);
    assert!(!c.log_defaults.remote_storage);
    assert_eq!(
        c.log_defaults.local_retention_ms,
        LogConfig::LOCAL_FOLLOWS_RETENTION
    );

    let c = settings(
        &["--data-dir", "/d"],
        &[("RINGLOG_ARCHIVE", "/mnt/archive")],
        None,
    )
    .server;
    assert_eq!(
        c.archive,
        ArchiveTarget::Local {
            dir: PathBuf::from("/mnt/archive")
        }
    );
    assert!(c.log_defaults.remote_storage);
    assert_eq!(c.log_defaults.local_retention_ms, 0);

    // S3 without an endpoint is AWS itself; local segments follow
    // retention.ms unless lowered.
    let c = settings(&[], &[], Some("archive = \"s3://bucket\"\n")).server;
    assert_eq!(
        c.archive,
        ArchiveTarget::S3 {
            bucket: "bucket".into(),
            prefix: String::new(),
            endpoint: None,
        }
    );
    assert!(c.log_defaults.remote_storage);
    assert_eq!(
        c.log_defaults.local_retention_ms,
        LogConfig::LOCAL_FOLLOWS_RETENTION
    );

    let retention = |flags: &[&str]| settings(flags, &[], None).server.log_defaults;
    let s3 = [
        "--archive",
        "s3://bucket/p",
        "--s3-endpoint",
        "https://s3.example.com",
    ];
    for (ms, want) in [("-2", -2), ("0", 0), ("604800000", 604_800_000)] {
        let flags = [&s3[..], &["--local-retention-ms", ms]].concat();
        assert_eq!(retention(&flags).local_retention_ms, want, "{ms}");
        assert_eq!(
            retention(&["--local-retention-ms", ms]).local_retention_ms,
            want,
            "{ms}"
        );
    }
    let c = settings(&[], &[("RINGLOG_LOCAL_RETENTION_MS", "-2")], None).server;
    assert_eq!(c.log_defaults.local_retention_ms, -2);
}

#[test]
fn bad_archive_values_name_the_option() {
    let err = error(&["--archive", "s3://"], &[], None);
    assert_eq!(
        err,
        "--archive s3://: no bucket name (give s3://bucket[/prefix])"
    );
    let err = error(&[], &[("RINGLOG_ARCHIVE", "s3:///prefix")], None);
    assert_eq!(
        err,
        "environment variable RINGLOG_ARCHIVE: --archive s3:///prefix: no bucket name (give s3://bucket[/prefix])"
    );
    let err = error(&["--archive", "s3://Bad_Bucket"], &[], None);
    assert!(err.contains("bad bucket name \"Bad_Bucket\""), "{err}");
    let err = error(&["--archive", "gs://bucket"], &[], None);
    assert!(err.contains("unsupported scheme gs://"), "{err}");
    let err = error(&["--archive", ""], &[], None);
    assert!(err.starts_with("--archive is empty"), "{err}");

    // --s3-endpoint only with an s3:// target, whether --archive is set or
    // left to its default.
    let err = error(&["--s3-endpoint", "http://127.0.0.1:9000"], &[], None);
    assert_eq!(
        err,
        "--s3-endpoint http://127.0.0.1:9000 is set but --archive is not an s3:// target (it defaults to ./data/archive)"
    );
    let err = error(
        &["--archive", "off"],
        &[],
        Some("s3-endpoint = \"http://127.0.0.1:9000\"\n"),
    );
    assert_eq!(
        err,
        format!("config file {FILE}: key \"s3-endpoint\": --s3-endpoint http://127.0.0.1:9000 is set but --archive off is not an s3:// target")
    );
    let err = error(
        &["--archive", "s3://bucket"],
        &[("RINGLOG_S3_ENDPOINT", "127.0.0.1:9000")],
        None,
    );
    assert!(
        err.starts_with(
            "environment variable RINGLOG_S3_ENDPOINT: --s3-endpoint 127.0.0.1:9000: not a URL"
        ),
        "{err}"
    );

    // A local directory that would be taken for broker state.
    let err = error(
        &["--data-dir", "/d", "--archive", "/d/topics/archive"],
        &[],
        None,
    );
    assert!(
        err.contains("inside the broker's own topics/ directory"),
        "{err}"
    );
    let err = error(&["--data-dir", "/d/data", "--archive", "/d"], &[], None);
    assert!(err.contains("must not contain the data directory"), "{err}");

    let err = error(&["--archive-read-mb-s", "0"], &[], None);
    assert_eq!(err, "--archive-read-mb-s: 0 is outside 1..=1000000");
    let err = error(&[], &[], Some("archive-read-mb-s = 2.5\n"));
    assert_eq!(
        err,
        format!("config file {FILE}: key \"archive-read-mb-s\": \"2.5\" is not a whole number")
    );
    let err = error(&["--archive-cache-bytes", "1GiB"], &[], None);
    assert_eq!(err, "--archive-cache-bytes: \"1GiB\" is not a whole number");
    let err = error(&[], &[("RINGLOG_ARCHIVE_CACHE_BYTES", "4096")], None);
    assert!(
        err.starts_with(
            "environment variable RINGLOG_ARCHIVE_CACHE_BYTES: 4096 is outside 16777216..="
        ),
        "{err}"
    );

    let err = error(&["--local-retention-ms", "-3"], &[], None);
    assert!(
        err.starts_with("--local-retention-ms: -3 is not -2"),
        "{err}"
    );
    let err = error(&["--local-retention-ms", "soon"], &[], None);
    assert_eq!(err, "--local-retention-ms: \"soon\" is not a whole number");
    // Within retention.ms, as the broker requires of every topic; -1 (no
    // local bound) exceeds a bounded retention.ms.
    for ms in ["604800001", "-1"] {
        let err = error(&["--local-retention-ms", ms], &[], None);
        assert!(
            err.starts_with(&format!(
                "--local-retention-ms {ms} exceeds the default retention.ms 604800000"
            )),
            "{err}"
        );
    }
    let err = error(
        &["--archive", "off", "--local-retention-ms", "0"],
        &[],
        None,
    );
    assert!(
        err.starts_with("--local-retention-ms 0 has no effect with --archive off"),
        "{err}"
    );
}

#[test]
fn core_balancing_modes_and_their_parameters() {
    let mode = |flags: &[&str]| settings(flags, &[], None).server.core_balancing;
    assert_eq!(mode(&["--core-balancing", "off"]), CoreBalancing::Off);
    assert_eq!(
        mode(&["--core-balancing", "on-change"]),
        CoreBalancing::OnChange
    );
    assert_eq!(
        mode(&["--core-balancing", "continuous"]),
        CoreBalancing::Continuous {
            threshold: 1.25,
            debounce_ms: 30_000
        }
    );
    assert_eq!(
        mode(&[
            "--core-balancing",
            "continuous",
            "--core-balancing-threshold",
            "2",
            "--core-balancing-debounce-ms",
            "1000"
        ]),
        CoreBalancing::Continuous {
            threshold: 2.0,
            debounce_ms: 1000
        }
    );
    // A TOML integer is a threshold too.
    let c = settings(
        &[],
        &[],
        Some("core-balancing = \"continuous\"\ncore-balancing-threshold = 3\n"),
    )
    .server;
    assert_eq!(
        c.core_balancing,
        CoreBalancing::Continuous {
            threshold: 3.0,
            debounce_ms: 30_000
        }
    );
}

#[test]
fn bad_core_balancing_values_name_the_option() {
    let err = error(&["--core-balancing", "always"], &[], None);
    assert_eq!(
        err,
        "--core-balancing: \"always\" is not off, on-change or continuous"
    );
    for threshold in ["1", "0.5", "-2", "inf", "NaN"] {
        let flag = format!("--core-balancing-threshold={threshold}");
        let err = error(&[&flag], &[], None);
        assert!(
            err.starts_with("--core-balancing-threshold: ") && err.contains("is not above 1"),
            "{threshold}: {err}"
        );
    }
    let err = error(&[], &[("RINGLOG_CORE_BALANCING_THRESHOLD", "high")], None);
    assert_eq!(
        err,
        "environment variable RINGLOG_CORE_BALANCING_THRESHOLD: \"high\" is not a number"
    );
    let err = error(&["--core-balancing-debounce-ms", "999"], &[], None);
    assert_eq!(
        err,
        "--core-balancing-debounce-ms: 999 is outside 1000..=86400000"
    );
    // Checked even while the mode does not use them.
    let err = error(
        &["--core-balancing", "off"],
        &[],
        Some("core-balancing-threshold = 1.0\n"),
    );
    assert!(
        err.starts_with(&format!(
            "config file {FILE}: key \"core-balancing-threshold\": 1 is not above 1"
        )),
        "{err}"
    );
}

#[test]
fn advertised_listener_follows_listen_from_any_source() {
    let c = settings(&[], &[("RINGLOG_LISTEN", "10.0.0.5:19092")], None).server;
    assert_eq!(
        (c.advertised_host.as_str(), c.advertised_port),
        ("10.0.0.5", 19092)
    );
    let c = settings(&["--listen", "[::1]:9092"], &[], None).server;
    assert_eq!(c.advertised_host, "::1");
    let err = error(&["--listen", "0.0.0.0:9092"], &[], None);
    assert!(err.contains("--advertised-listener"), "{err}");
    let c = settings(
        &[
            "--listen",
            "0.0.0.0:9092",
            "--advertised-listener",
            "[fd00::1]:9092",
        ],
        &[],
        None,
    )
    .server;
    assert_eq!(c.advertised_host, "fd00::1");
}

#[test]
fn cpuset_sets_the_shard_count_or_must_match_it() {
    let c = settings(&["--cpuset", "0,2-3"], &[], None).server;
    assert_eq!(c.cpus, Some(vec![0, 2, 3]));
    assert_eq!(c.shards, 3);
    let err = error(&["--cpuset", "0-1"], &[("RINGLOG_SHARDS", "3")], None);
    assert!(
        err.contains("--cpuset names 2 CPUs but --shards is 3"),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_origin() {
    let err = error(&["--shards", "many"], &[], None);
    assert_eq!(err, "--shards: \"many\" is not a whole number");
    // A negative number is the option's value, judged by its parser.
    let err = error(&["--shards", "-1"], &[], None);
    assert_eq!(err, "--shards: \"-1\" is not a whole number");
    let err = error(&[], &[("RINGLOG_SHARDS", "0")], None);
    assert_eq!(
        err,
        format!("environment variable RINGLOG_SHARDS: 0 is outside 1..={SHARDS_MAX}")
    );
    let err = error(&[], &[], Some("ring-depth = -1\n"));
    assert_eq!(
        err,
        format!("config file {FILE}: key \"ring-depth\": \"-1\" is not a whole number")
    );
    let err = error(&[], &[], Some("shards = [1, 2]\n"));
    assert_eq!(
        err,
        format!(
            "config file {FILE}: key \"shards\": expected a string, number or boolean, found array"
        )
    );
    let err = error(&["--router-cores", "2"], &[], None);
    assert!(err.contains("is not 1 or all"), "{err}");
    let err = error(&["--listen", "localhost:9092"], &[], None);
    assert!(
        err.starts_with("--listen: \"localhost:9092\" is not IP:PORT"),
        "{err}"
    );
    let err = error(&["--auto-create-topics=yes"], &[], None);
    assert!(err.contains("is not true or false"), "{err}");
    let err = error(&["--io-memory-bytes", "4096"], &[], None);
    assert!(err.contains("outside 65536..="), "{err}");
    let err = error(&["--max-request-bytes", "3000000000"], &[], None);
    assert!(err.contains("outside 1024..=2147483647"), "{err}");
    let err = error(&["--http", "nowhere"], &[], None);
    assert!(err.starts_with("--http:"), "{err}");
}

#[test]
fn connection_and_request_memory_limits() {
    // The per-IP limit follows --max-connections unless given.
    let c = settings(&["--max-connections", "50"], &[], None).server;
    assert_eq!(c.connections.max_connections(), 50);
    assert_eq!(c.connections.max_connections_per_ip(), 50);
    let c = settings(
        &["--max-connections-per-ip", "5"],
        &[("RINGLOG_MAX_CONNECTIONS", "20")],
        Some("max-connections-per-ip = 7\n"),
    )
    .server;
    assert_eq!(c.connections.max_connections(), 20);
    assert_eq!(c.connections.max_connections_per_ip(), 5);
    let c = settings(
        &[],
        &[("RINGLOG_CONNECTIONS_MAX_IDLE_MS", "1000")],
        Some("request-memory-bytes-max = 4194304\nmax-request-bytes = 1048576\n"),
    )
    .server;
    assert_eq!(c.connections_max_idle_ms, 1000);
    assert_eq!(c.request_memory_bytes_max, 4 << 20);
    // Exactly one largest request per shard is enough.
    let c = settings(
        &[
            "--request-memory-bytes-max",
            "1048576",
            "--max-request-bytes",
            "1048576",
        ],
        &[],
        None,
    )
    .server;
    assert_eq!(c.request_memory_bytes_max, c.max_request_bytes);

    let err = error(&["--max-connections", "0"], &[], None);
    assert_eq!(err, "--max-connections: 0 is outside 1..=1048576");
    let err = error(&[], &[("RINGLOG_MAX_CONNECTIONS_PER_IP", "0")], None);
    assert_eq!(
        err,
        "environment variable RINGLOG_MAX_CONNECTIONS_PER_IP: 0 is outside 1..=1048576"
    );
    let err = error(&["--max-connections", "many"], &[], None);
    assert_eq!(err, "--max-connections: \"many\" is not a whole number");
    let err = error(&[], &[], Some("connections-max-idle-ms = 0\n"));
    assert_eq!(
        err,
        format!("config file {FILE}: key \"connections-max-idle-ms\": 0 is outside 1..=2147483647")
    );
    let err = error(&["--connections-max-idle-ms", "-1"], &[], None);
    assert!(err.starts_with("--connections-max-idle-ms: "), "{err}");
    let err = error(&["--request-memory-bytes-max", "100"], &[], None);
    assert!(
        err.starts_with("--request-memory-bytes-max: 100 is outside 1024..="),
        "{err}"
    );
    // Below the largest request: refused, naming both options.
    let err = error(&["--request-memory-bytes-max", "1048576"], &[], None);
    assert_eq!(
        err,
        "--request-memory-bytes-max 1048576 is below --max-request-bytes 104857600: a shard could never hold the largest request"
    );
    let err = error(
        &["--max-request-bytes", "2097152"],
        &[],
        Some("request-memory-bytes-max = 2097151\n"),
    );
    assert!(
        err.starts_with("--request-memory-bytes-max 2097151 is below --max-request-bytes 2097152"),
        "{err}"
    );
}

#[test]
fn spinning_before_parking_needs_pinned_shards() {
    let s = settings(
        &["--cpuset", "0", "--spin-before-park-us", "100"],
        &[],
        None,
    );
    assert_eq!(s.server.spin_before_park_us, 100);
    assert_eq!(s.server.cpus, Some(vec![0]));
    let err = error(&["--spin-before-park-us", "100"], &[], None);
    assert!(
        err.starts_with("--spin-before-park-us 100 needs --cpuset"),
        "{err}"
    );
    // Zero is parking at once, which needs no pinning.
    let s = settings(&["--spin-before-park-us", "0"], &[], None);
    assert_eq!(s.server.spin_before_park_us, 0);
    let err = error(
        &["--cpuset", "0", "--spin-before-park-us", "10001"],
        &[],
        None,
    );
    assert!(err.contains("outside 0..=10000"), "{err}");
}

#[test]
fn log_settings_are_validated_by_the_engine() {
    let err = error(&["--segment-bytes", "5000000000"], &[], None);
    assert!(err.contains("invalid log settings"), "{err}");
    assert!(err.contains("exceeds 4 GiB"), "{err}");
    let err = error(&[], &[], Some("segment-bytes = 4096\n"));
    assert!(err.contains("cannot hold one frame"), "{err}");
    let err = error(&["--segment-ms", "0"], &[], None);
    assert!(err.starts_with("--segment-ms: 0 is outside"), "{err}");
}

#[test]
fn config_file_errors_name_the_file() {
    let err = error(&[], &[], Some("shard = 2\n"));
    assert!(
        err.starts_with(&format!(
            "config file {FILE}: unknown key \"shard\" (known keys: data-dir, listen,"
        )),
        "{err}"
    );
    let err = error(&[], &[], Some("config = \"other.toml\"\n"));
    assert!(err.contains("unknown key \"config\""), "{err}");
    let err = error(&[], &[], Some("[server]\nshards = 2\n"));
    assert!(err.contains("unknown key \"server\""), "{err}");
    let err = error(&[], &[], Some("shards = \n"));
    assert!(err.starts_with(&format!("config file {FILE}: ")), "{err}");
}

#[test]
fn config_path_comes_from_the_flag_then_the_environment() {
    let vars = env(&[("RINGLOG_CONFIG", "/from/env.toml")]);
    assert_eq!(
        config_path(&matches(&["--config", "/from/flag.toml"]), &vars),
        Some(PathBuf::from("/from/flag.toml"))
    );
    assert_eq!(
        config_path(&matches(&[]), &vars),
        Some(PathBuf::from("/from/env.toml"))
    );
    assert_eq!(config_path(&matches(&[]), &env(&[])), None);
}

#[test]
fn empty_env_vars_count_as_unset() {
    let c = settings(&[], &[("RINGLOG_SHARDS", "")], Some("shards = 2\n")).server;
    assert_eq!(c.shards, 2);
}

#[test]
fn value_parsers() {
    assert_eq!(parse_cpuset("3"), Ok(vec![3]));
    assert_eq!(parse_cpuset("4-6,0"), Ok(vec![4, 5, 6, 0]));
    assert!(parse_cpuset("1,1").unwrap_err().contains("appears twice"));
    assert!(parse_cpuset("0-2,2").unwrap_err().contains("appears twice"));
    assert!(parse_cpuset("3-1").unwrap_err().contains("backwards"));
    assert!(parse_cpuset("").is_err());
    assert!(parse_cpuset("0-4096").unwrap_err().contains("above"));
    assert_eq!(parse_flush_policy("always"), Ok(FlushPolicy::Always));
    assert_eq!(
        parse_flush_policy("interval:250"),
        Ok(FlushPolicy::IntervalMs(250))
    );
    assert!(parse_flush_policy("interval:0").is_err());
    assert!(parse_flush_policy("never").is_err());
    assert_eq!(
        parse_host_port("b.example.com:9092"),
        Ok(("b.example.com".to_string(), 9092))
    );
    assert!(parse_host_port("b.example.com").is_err());
    assert!(parse_host_port(":9092").is_err());
    assert!(parse_host_port("b:0").is_err());
}
