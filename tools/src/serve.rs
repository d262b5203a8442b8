//! `ringlog serve`: settings from the command line, the environment and a
//! TOML file; start-up checks; signal handling; the HTTP endpoint (metrics
//! and the admin API); then
//! the broker itself ([`ringlog_shard::server::serve`]).
//!
//! Why settings are merged here rather than by clap: clap knows the command
//! line, environment variables and defaults, but not a config file, which
//! belongs between the environment and the defaults. So every option is
//! declared to clap as text with its default, and [`resolve`] picks, per
//! option, the first of: command line (`ArgMatches::value_source`), the
//! `RINGLOG_<OPTION>` environment variable, the config file key, clap's
//! default. The winning text is then parsed once, by one parser per option,
//! so a bad value reads the same wherever it came from and the error names
//! its origin. [`resolve`] is pure (the environment and the file contents
//! are arguments), which is what the precedence tests rely on.

use crate::{doctor, http};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches};
use ringlog_engine::meta::PARTITIONS_MAX;
use ringlog_engine::{FlushPolicy, LogConfig};
use ringlog_protocol::sasl::{parse_mechanisms, Mechanism, MECHANISMS_DEFAULT};
use ringlog_protocol::tls::{ListenerSecurity, SecurityProtocol, ServerTlsFiles};
use ringlog_shard::authorizer::{parse_super_users, AuthorizerConfig};
use ringlog_shard::config::{
    CoordinatorConfig, CoreBalancing, GroupSettings, RouterCores, ServerConfig,
};
use ringlog_shard::limits::ConnectionLimits;
use ringlog_shard::metrics::Metrics;
use ringlog_shard::search::SearchHub;
use ringlog_shard::tiered::ArchiveTarget;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Prefix of every option's environment variable.
pub const ENV_PREFIX: &str = "RINGLOG_";
/// The option naming the config file. It is read from the command line and
/// the environment only: a config file cannot name another.
pub const CONFIG_KEY: &str = "config";

/// Most shards one broker runs. The shard mesh has a channel between every
/// pair of shards, so its memory grows with the square of this.
pub const SHARDS_MAX: usize = 256;
/// CPU numbers must fit the kernel's default affinity mask (`CPU_SETSIZE`).
pub const CPU_MAX: usize = 1023;
/// io_uring refuses rings deeper than this (`IORING_MAX_ENTRIES`).
pub const RING_DEPTH_MAX: usize = 32_768;
/// Longest spin before parking: past 10 ms a shard idles at 100% CPU for
/// no latency gain (a request waiting that long is not waiting on a wake-up).
pub const SPIN_BEFORE_PARK_US_MAX: u64 = 10_000;
/// glommio rounds smaller I/O memory up to this; refuse it instead, so the
/// value in effect is the value given.
pub const IO_MEMORY_BYTES_MIN: usize = 64 * 1024;
/// Registered I/O memory per shard beyond this is surely a unit mistake.
pub const IO_MEMORY_BYTES_MAX: usize = 64 << 30;
/// Smallest request limit: an ApiVersions or Metadata request must fit.
pub const MAX_REQUEST_BYTES_MIN: usize = 1024;
/// Request frames carry an `i32` size.
pub const MAX_REQUEST_BYTES_MAX: usize = i32::MAX as usize;
/// Most `--max-connections` and `--max-connections-per-ip`: Linux's
/// default ceiling of open files per process (`fs.nr_open`); more is a
/// unit mistake.
pub const MAX_CONNECTIONS_MAX: u64 = 1 << 20;
/// Longest `--connections-max-idle-ms`: Kafka's timeouts are `i32`
/// milliseconds (about 24.8 days).
pub const CONNECTIONS_MAX_IDLE_MS_MAX: u64 = i32::MAX as u64;
/// Largest `--request-memory-bytes-max`: 1 TiB per shard is no host's
/// memory, so more is taken for a unit mistake.
pub const REQUEST_MEMORY_BYTES_MAX_MAX: u64 = 1 << 40;
/// Longest `--connections-max-reauth-ms`: 24 days; longer is taken for a
/// unit mistake (Kafka's default is 0, and hours are typical).
pub const REAUTH_MS_MAX: u64 = 24 * 24 * 3600 * 1000;
/// Longest `--flush-policy interval:<ms>`: a crash loses up to this much
/// acknowledged data, so a longer window is taken for a unit mistake.
pub const FLUSH_INTERVAL_MS_MAX: u64 = 3_600_000;

/// Longest group timeout (session, rebalance delay): Kafka's timeouts are
/// `i32` milliseconds.
pub const GROUP_TIMEOUT_MS_MAX: u64 = i32::MAX as u64;

/// Shortest `--core-balancing-debounce-ms`: shard load is counted per
/// second, so a shorter imbalance cannot be seen.
pub const CORE_BALANCING_DEBOUNCE_MS_MIN: u64 = 1_000;
/// Longest `--core-balancing-debounce-ms`: a day; longer is taken for a
/// unit mistake.
pub const CORE_BALANCING_DEBOUNCE_MS_MAX: u64 = 86_400_000;

/// Smallest `--archive-cache-bytes`: the cache holds chunks of a few MiB,
/// and below this it could not keep a chunk and its read-ahead for more
/// than one or two readers, so readers would evict each other's chunks
/// and fetch them again.
pub const ARCHIVE_CACHE_BYTES_MIN: u64 = 16 << 20;
/// Largest `--archive-read-mb-s`: 1 TB/s per shard is no disk's or
/// network's rate, so more is taken for a unit mistake (bytes for MB).
pub const ARCHIVE_READ_MB_S_MAX: u64 = 1_000_000;
/// `--archive-read-mb-s` counts megabytes of 10^6 bytes, as disk and
/// network rates are given.
const BYTES_PER_MB: u64 = 1_000_000;

/// One option of `ringlog serve`. Its name is the long flag, the config
/// file key, and (upper case, `-` as `_`, after [`ENV_PREFIX`]) the
/// environment variable.
struct Setting {
    name: &'static str,
    value_name: &'static str,
    /// Clap's default, shown in `--help`; `None` when the default depends on
    /// other options or on the host.
    default: Option<&'static str>,
    /// A switch: `--name` alone means `true`, `--name=false` is accepted too,
    /// so the command line can override a file that says `true`.
    switch: bool,
    help: &'static str,
}

const fn setting(
    name: &'static str,
    value_name: &'static str,
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting {
        name,
        value_name,
        default,
        switch: false,
        help,
    }
}

/// Every option but `--config`, in `--help` order. The defaults of
/// `segment-bytes`, `segment-ms` and `flush-policy` are `LogConfig`'s, and
/// those of `archive-cache-bytes` and `archive-read-mb-s` are
/// `ServerConfig`'s (tests hold them equal).
const SETTINGS: &[Setting] = &[
    setting(
        "data-dir",
        "DIR",
        Some("./data"),
        "Data directory (metadata log and partitions); created if missing",
    ),
    setting(
        "listen",
        "IP:PORT",
        Some("127.0.0.1:9092"),
        "Address the Kafka listener binds",
    ),
    setting(
        "security-protocol",
        "PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL",
        Some("PLAINTEXT"),
        "Security protocol of the Kafka listener (Kafka's names): PLAINTEXT; SSL (TLS, needs --tls-cert and --tls-key); SASL_PLAINTEXT or SASL_SSL (clients authenticate with SASL against the users of `ringlog user add` before any other request)",
    ),
    setting(
        "sasl-mechanisms",
        "LIST",
        None,
        "With SASL_PLAINTEXT or SASL_SSL: the SASL mechanisms offered, comma-separated, of SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN [default: SCRAM-SHA-256,SCRAM-SHA-512,PLAIN]",
    ),
    setting(
        "connections-max-reauth-ms",
        "MS",
        Some("0"),
        "With SASL_PLAINTEXT or SASL_SSL: the session lifetime a client is told after it authenticates (KIP-368); it must re-authenticate on the connection before then or the connection is closed at its next request. 0: sessions never expire",
    ),
    setting(
        "tls-cert",
        "FILE",
        None,
        "With SSL: the listener's certificate chain (PEM, the broker's certificate first)",
    ),
    setting(
        "tls-key",
        "FILE",
        None,
        "With SSL: the private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)",
    ),
    setting(
        "tls-client-ca",
        "FILE",
        None,
        "With SSL: CA certificates (PEM) that must have signed a client certificate; clients without one are refused, and a client's principal is User:<its certificate's subject> [default: no client certificates]",
    ),
    setting(
        "authorizer",
        "on|off",
        Some("off"),
        "ACL authorization of every Kafka request (Kafka's StandardAuthorizer semantics, ACLs from `ringlog acl` or any Kafka admin client): off allows everything, as Kafka without an authorizer",
    ),
    setting(
        "super-users",
        "PRINCIPALS",
        None,
        "With --authorizer on: principals allowed everything, separated by ';' (e.g. \"User:admin;User:ops\") [default: none]",
    ),
    Setting {
        name: "allow-everyone-if-no-acl-found",
        value_name: "true|false",
        default: Some("false"),
        switch: true,
        help: "With --authorizer on: allow a request on a resource no ACL matches (Kafka's allow.everyone.if.no.acl.found)",
    },
    setting(
        "advertised-listener",
        "HOST:PORT",
        None,
        "Host and port clients are told to connect to [default: the --listen address]",
    ),
    setting(
        "shards",
        "N",
        None,
        "Shards, one executor thread each [default: the --cpuset size, else the CPUs this process may use]",
    ),
    setting(
        "cpuset",
        "CPUS",
        None,
        "CPUs to pin the shards to, in shard order, e.g. 0-3 or 0,2,4; as many as --shards [default: not pinned]",
    ),
    setting(
        "router-cores",
        "1|all",
        Some("1"),
        "Shards accepting Kafka connections: 1 (shard 0) or all (SO_REUSEPORT)",
    ),
    setting(
        "spin-before-park-us",
        "US",
        Some("0"),
        "How long an idle shard polls for work before it sleeps; needs --cpuset (dedicated cores: a request then skips the wake-up of a sleeping core, but a spinning shard takes its CPU from everything else there)",
    ),
    setting(
        "ring-depth",
        "N",
        Some("128"),
        "io_uring submission queue depth per shard",
    ),
    setting(
        "io-memory-bytes",
        "BYTES",
        Some("67108864"),
        "DMA buffer memory per shard (the logs' write buffers; ~6 MiB per busy partition)",
    ),
    setting(
        "segment-bytes",
        "BYTES",
        Some("1073741824"),
        "Default segment.bytes of a partition: roll segments at this size",
    ),
    setting(
        "segment-ms",
        "MS",
        Some("604800000"),
        "Default segment.ms of a partition: roll segments at this age",
    ),
    setting(
        "flush-policy",
        "always|interval:MS",
        Some("always"),
        "always: acknowledge after fdatasync; interval:MS: acknowledge when buffered and fdatasync every MS (a crash loses up to MS of acknowledged data)",
    ),
    setting(
        "max-request-bytes",
        "BYTES",
        Some("104857600"),
        "Largest Kafka request accepted",
    ),
    setting(
        "max-connections",
        "N",
        Some("8192"),
        "Kafka connections the broker holds open at once, over all router shards; a connection over it is closed at accept",
    ),
    setting(
        "max-connections-per-ip",
        "N",
        None,
        "Kafka connections one client IP may hold open at once; a connection over it is closed at accept (Kafka's max.connections.per.ip) [default: --max-connections]",
    ),
    setting(
        "connections-max-idle-ms",
        "MS",
        Some("600000"),
        "Close a Kafka connection with no request in flight that received and sent nothing for this long (Kafka's connections.max.idle.ms)",
    ),
    setting(
        "request-memory-bytes-max",
        "BYTES",
        Some("536870912"),
        "Bytes of requests each shard holds from reading a frame until its answer is written; over it the shard stops reading from its clients until answers go out (Kafka's queued.max.request.bytes, but per shard); at least --max-request-bytes",
    ),
    Setting {
        name: "auto-create-topics",
        value_name: "true|false",
        default: Some("false"),
        switch: true,
        help: "Create unknown topics named by Metadata and Produce requests",
    },
    setting(
        "index-lag-bytes-max",
        "BYTES",
        Some("33554432"),
        "Bytes of appended batches each shard's search indexer may have queued; past it a batch is not indexed (searches report its offsets as unindexed), so produce never waits for indexing",
    ),
    Setting {
        name: "search-default",
        value_name: "true|false",
        default: Some("true"),
        switch: true,
        help: "Whether a topic without its own ringlog.search.enable is searchable: its records indexed as they are appended and found by GET /search on the --http listener",
    },
    setting(
        "auto-create-partitions",
        "N",
        Some("1"),
        "Partitions of an auto-created topic",
    ),
    setting(
        "group-initial-rebalance-delay-ms",
        "MS",
        Some("3000"),
        "How long the first rebalance of an empty consumer group waits for more members (Kafka's group.initial.rebalance.delay.ms)",
    ),
    setting(
        "group-min-session-timeout-ms",
        "MS",
        Some("6000"),
        "Smallest session timeout a group member may ask for (group.min.session.timeout.ms)",
    ),
    setting(
        "group-max-session-timeout-ms",
        "MS",
        Some("1800000"),
        "Largest session timeout a group member may ask for (group.max.session.timeout.ms)",
    ),
    setting(
        "offsets-retention-ms",
        "MS",
        Some("604800000"),
        "Committed offsets of a group without members expire this long after the later of their commit and the group emptying (offsets.retention.minutes x 60000)",
    ),
    setting(
        "http",
        "IP:PORT",
        None,
        "Serve GET /metrics (OpenMetrics) and the admin API (/v1/..., used by ringlog shard and ringlog partition) on this address [default: off]",
    ),
    setting(
        "core-balancing",
        "off|on-change|continuous",
        Some("on-change"),
        "When partitions move between shards on their own: off (only by ringlog partition move and ringlog shard rebalance); on-change (at start, when --shards differs from the last start, spread them evenly); continuous (as on-change, and rebalance by load while running when the busiest shard stays above --core-balancing-threshold times the mean for --core-balancing-debounce-ms)",
    ),
    setting(
        "core-balancing-threshold",
        "RATIO",
        Some("1.25"),
        "With --core-balancing continuous: the busiest shard's load over the mean load that counts as imbalance (above 1)",
    ),
    setting(
        "core-balancing-debounce-ms",
        "MS",
        Some("30000"),
        "With --core-balancing continuous: how long the imbalance must last before a rebalance",
    ),
    setting(
        "archive",
        "off|DIR|s3://BUCKET[/PREFIX]",
        None,
        "Where sealed segments are archived (one object per segment, read back by Fetch and ListOffsets): off, a local directory, or an S3 bucket and key prefix [default: <data-dir>/archive]",
    ),
    setting(
        "s3-endpoint",
        "URL",
        None,
        "With an s3:// --archive: the URL of an S3-compatible server, http://host:port or https://host [default: AWS S3]; credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION",
    ),
    setting(
        "archive-cache-bytes",
        "BYTES",
        Some("1073741824"),
        "Bound of the on-disk cache (<data-dir>/cache) of archive chunks read from S3, over all shards",
    ),
    setting(
        "archive-read-mb-s",
        "MB/S",
        Some("200"),
        "Megabytes (10^6 bytes) per second each shard may read from the archive store, so a backfill cannot starve produce",
    ),
    setting(
        "local-retention-ms",
        "MS",
        None,
        "With archiving on, the default local.retention.ms of topics: how long an archived segment stays on the local disk; -2 follows retention.ms, 0 or more is milliseconds up to the default retention.ms (-1, no local bound, is refused: retention.ms is bounded) [default: 0 with a local-directory archive, -2 (follow retention) with S3]",
    ),
];

/// `RINGLOG_DATA_DIR` for `data-dir`.
pub fn env_var_name(name: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The clap arguments of `ringlog serve`, every value as text; see the
/// module documentation.
pub fn arguments() -> Vec<Arg> {
    let mut args: Vec<Arg> = SETTINGS
        .iter()
        .map(|s| {
            // Negative numbers are values (`--local-retention-ms -2`), and
            // elsewhere reach the option's parser, which says why they are
            // out of range as it does for the same text from a file.
            let arg = Arg::new(s.name)
                .long(s.name)
                .value_name(s.value_name)
                .help(s.help)
                .allow_negative_numbers(true)
                .action(ArgAction::Set);
            let arg = match s.default {
                Some(default) => arg.default_value(default),
                None => arg,
            };
            if s.switch {
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
            } else {
                arg
            }
        })
        .collect();
    args.push(
        Arg::new(CONFIG_KEY)
            .long(CONFIG_KEY)
            .value_name("FILE")
            .help("TOML file of settings: a key per option, e.g. `data-dir = \"/var/lib/ringlog\"`, `shards = 4`")
            .action(ArgAction::Set),
    );
    args
}

const PRECEDENCE_HELP: &str = "\
Every option can also be set by an environment variable, RINGLOG_ and the \
option name in upper case with '_' for '-' (RINGLOG_DATA_DIR, RINGLOG_SHARDS, \
RINGLOG_CONFIG, ...), or by a key of the --config file named like the option \
(data-dir = \"/var/lib/ringlog\", shards = 4, auto-create-topics = true). \
The command line wins over the environment, which wins over the file, which \
wins over the defaults.";

/// The parsed command line of `ringlog serve`, kept as clap's matches so
/// [`resolve`] can tell given values from defaults.
pub struct ServeArgs {
    matches: ArgMatches,
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ServeArgs {
            matches: matches.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.matches = matches.clone();
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(arguments()).after_help(PRECEDENCE_HELP)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// A settings error: which option, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Everything `ringlog serve` runs with.
pub struct Settings {
    /// The broker's configuration.
    pub server: ServerConfig,
    /// Where to serve `/metrics` and the admin API, if anywhere.
    pub http: Option<SocketAddr>,
    /// The listener's TLS files with `--security-protocol SSL`; read by
    /// [`run`] into `server.tls` (resolving reads no files).
    pub tls: Option<ServerTlsFiles>,
    /// Batch bytes each shard's indexer may have queued
    /// (`--index-lag-bytes-max`); [`run`] starts the indexers.
    pub index_lag_bytes_max: u64,
}

/// Where a setting's text came from, for error messages.
enum Origin<'a> {
    Flag(&'static str),
    Env(String),
    File(&'a Path, &'static str),
    Default(&'static str),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(name) => write!(f, "--{name}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File(path, key) => write!(f, "config file {}: key {key:?}", path.display()),
            Origin::Default(name) => write!(f, "default of --{name}"),
        }
    }
}

/// A parsed config file.
struct ConfigFile<'a> {
    path: &'a Path,
    table: toml::Table,
}

/// The places a setting can come from, highest precedence first; clap's
/// defaults are in `matches` too, behind the file.
struct Sources<'a> {
    matches: &'a ArgMatches,
    env: &'a BTreeMap<String, String>,
    file: Option<ConfigFile<'a>>,
}

impl<'a> Sources<'a> {
    /// The winning text of `name` and its origin; `None` when no source sets
    /// it and it has no default.
    fn text(&self, name: &'static str) -> Result<Option<(String, Origin<'a>)>, ConfigError> {
        if self.matches.value_source(name) == Some(ValueSource::CommandLine) {
            let text = self.matches.get_one::<String>(name).expect("given");
            return Ok(Some((text.clone(), Origin::Flag(name))));
        }
        let var = env_var_name(name);
        if let Some(text) = self.env.get(&var).filter(|text| !text.is_empty()) {
            return Ok(Some((text.clone(), Origin::Env(var))));
        }
        if let Some(file) = &self.file {
            if let Some(value) = file.table.get(name) {
                let origin = Origin::File(file.path, name);
                let text = match value {
                    toml::Value::String(text) => text.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Float(x) => x.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError(format!(
                            "{origin}: expected a string, number or boolean, found {}",
                            other.type_str()
                        )))
                    }
                };
                return Ok(Some((text, origin)));
            }
        }
        Ok(self
            .matches
            .get_one::<String>(name)
            .map(|text| (text.clone(), Origin::Default(name))))
    }

    /// The value of `name` parsed by `parse`, with errors naming its origin.
    fn value<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.text(name)? {
            None => Ok(None),
            Some((text, origin)) => parse(&text)
                .map(Some)
                .map_err(|why| ConfigError(format!("{origin}: {why}"))),
        }
    }

    /// Like [`Sources::value`] for an option with a default.
    fn required<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self
            .value(name, parse)?
            .unwrap_or_else(|| panic!("--{name} has a default")))
    }
}

/// The config file named by `--config`, else by `RINGLOG_CONFIG`.
pub fn config_path(matches: &ArgMatches, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    matches
        .get_one::<String>(CONFIG_KEY)
        .or_else(|| {
            env.get(&env_var_name(CONFIG_KEY))
                .filter(|text| !text.is_empty())
        })
        .map(PathBuf::from)
}

/// The `RINGLOG_*` variables of this process.
///
/// # Errors
///
/// One of them is not UTF-8.
pub fn env_vars() -> Result<BTreeMap<String, String>, ConfigError> {
    let mut vars = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        let value = value.into_string().map_err(|value| {
            ConfigError(format!(
                "environment variable {name}: {value:?} is not UTF-8"
            ))
        })?;
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

/// Merges the command line `matches` (from [`arguments`]), the environment
/// `env` and the config file (path and contents) into the settings, and
/// checks them. Pure: reads nothing but its arguments (and, when no source
/// sets `--shards` or `--cpuset`, how many CPUs this process may use).
///
/// # Errors
///
/// A value that does not parse or is out of range (naming the option and
/// where it came from), an unknown key or a syntax error in the config file
/// (naming the file), or options that contradict each other.
pub fn resolve(
    matches: &ArgMatches,
    env: &BTreeMap<String, String>,
    config_file: Option<(&Path, &str)>,
) -> Result<Settings, ConfigError> {
    let file = match config_file {
        None => None,
        Some((path, text)) => Some(parse_config_file(path, text)?),
    };
    let sources = Sources { matches, env, file };

    let data_dir = sources.required("data-dir", parse_path)?;
    let listen = sources.required("listen", parse_socket_addr)?;
    let security = sources.required("security-protocol", ListenerSecurity::parse)?;
    let tls = tls_files(&sources, security)?;
    let sasl = sasl_mechanisms(&sources, security)?;
    let reauth_ms = sources.required("connections-max-reauth-ms", |text| {
        parse_number(text, 0, REAUTH_MS_MAX)
    })?;
    if reauth_ms > 0 && !security.sasl {
        return Err(ConfigError(format!(
            "--connections-max-reauth-ms is set but --security-protocol is {security}: re-authentication needs SASL_PLAINTEXT or SASL_SSL"
        )));
    }
    let authorizer = authorizer(&sources)?;
    let (advertised_host, advertised_port) =
        match sources.value("advertised-listener", parse_host_port)? {
            Some(listener) => listener,
            None => advertise_listen(listen)?,
        };
    let cpus = sources.value("cpuset", parse_cpuset)?;
    let shards = sources.value("shards", |text| {
        parse_number(text, 1, SHARDS_MAX as u64).map(|n| n as usize)
    })?;
    let shards = match (shards, &cpus) {
        (Some(shards), Some(cpus)) if cpus.len() != shards => {
            return Err(ConfigError(format!(
                "--cpuset names {} CPUs but --shards is {shards}: give one CPU per shard",
                cpus.len()
            )))
        }
        (Some(shards), _) => shards,
        (None, Some(cpus)) => cpus.len(),
        (None, None) => available_cpus(),
    };
    assert!((1..=SHARDS_MAX).contains(&shards));
    let router_cores = sources.required("router-cores", parse_router_cores)?;
    let spin_before_park_us = sources.required("spin-before-park-us", |text| {
        parse_number(text, 0, SPIN_BEFORE_PARK_US_MAX)
    })?;
    if spin_before_park_us > 0 && cpus.is_none() {
        return Err(ConfigError(format!(
            "--spin-before-park-us {spin_before_park_us} needs --cpuset: glommio spins only executors pinned to a CPU, and spinning on shared CPUs takes them from other work"
        )));
    }
    let ring_depth = sources.required("ring-depth", |text| {
        parse_number(text, 1, RING_DEPTH_MAX as u64).map(|n| n as usize)
    })?;
    let io_memory_bytes = sources.required("io-memory-bytes", |text| {
        parse_number(text, IO_MEMORY_BYTES_MIN as u64, IO_MEMORY_BYTES_MAX as u64)
            .map(|n| n as usize)
    })?;
    let segment_bytes =
        sources.required("segment-bytes", |text| parse_number(text, 0, u64::MAX))?;
    let segment_ms = sources.required("segment-ms", |text| {
        parse_number(text, 1, i64::MAX as u64).map(|n| n as i64)
    })?;
    let flush_policy = sources.required("flush-policy", parse_flush_policy)?;
    let archive = archive_target(&sources, &data_dir)?;
    let local_retention_ms = sources.value("local-retention-ms", parse_local_retention_ms)?;
    let mut log_defaults = LogConfig {
        segment_bytes,
        segment_ms,
        flush_policy,
        ..LogConfig::default()
    };
    log_defaults.remote_storage = archive != ArchiveTarget::Off;
    log_defaults.search = sources.required("search-default", parse_bool)?;
    log_defaults.local_retention_ms = match (&archive, local_retention_ms) {
        (ArchiveTarget::Off, Some(ms)) => {
            return Err(ConfigError(format!(
                "--local-retention-ms {ms} has no effect with --archive off: nothing is archived, so segments stay local until retention"
            )))
        }
        (_, Some(ms)) => ms,
        // The archive is on the same host, usually the same disk: keeping
        // the sealed segment once its archive is recorded would hold every
        // byte twice.
        (ArchiveTarget::Local { .. }, None) => 0,
        // S3 is another failure domain and reads from it cost requests:
        // local segments stay for the whole retention unless lowered.
        (_, None) => LogConfig::LOCAL_FOLLOWS_RETENTION,
    };
    // Kafka's rule, which the broker applies to every topic's settings: a
    // local bound within the overall one, so -1 (none) only with no
    // retention.ms. Refused here, or every topic would be refused.
    if let (Some(retention_ms), (local_ms, _)) =
        (log_defaults.retention_ms, log_defaults.local_retention())
    {
        if local_ms.is_none_or(|ms| ms > retention_ms) {
            return Err(ConfigError(format!(
                "--local-retention-ms {} exceeds the default retention.ms {retention_ms}: a segment cannot stay local longer than the log keeps it (-2 keeps it for the whole retention)",
                log_defaults.local_retention_ms
            )));
        }
    }
    log_defaults.validate().map_err(|err| {
        ConfigError(format!(
            "--segment-bytes {segment_bytes}, --segment-ms {segment_ms}: invalid log settings: {err}"
        ))
    })?;
    let max_request_bytes = sources.required("max-request-bytes", |text| {
        parse_number(
            text,
            MAX_REQUEST_BYTES_MIN as u64,
            MAX_REQUEST_BYTES_MAX as u64,
        )
        .map(|n| n as usize)
    })?;
    let max_connections = sources.required("max-connections", |text| {
        parse_number(text, 1, MAX_CONNECTIONS_MAX).map(|n| n as usize)
    })?;
    let max_connections_per_ip = sources
        .value("max-connections-per-ip", |text| {
            parse_number(text, 1, MAX_CONNECTIONS_MAX).map(|n| n as usize)
        })?
        .unwrap_or(max_connections);
    let connections_max_idle_ms = sources.required("connections-max-idle-ms", |text| {
        parse_number(text, 1, CONNECTIONS_MAX_IDLE_MS_MAX)
    })?;
    let request_memory_bytes_max = sources.required("request-memory-bytes-max", |text| {
        parse_number(
            text,
            MAX_REQUEST_BYTES_MIN as u64,
            REQUEST_MEMORY_BYTES_MAX_MAX,
        )
        .map(|n| n as usize)
    })?;
    if request_memory_bytes_max < max_request_bytes {
        return Err(ConfigError(format!(
            "--request-memory-bytes-max {request_memory_bytes_max} is below --max-request-bytes {max_request_bytes}: a shard could never hold the largest request"
        )));
    }
    let auto_create_topics = sources.required("auto-create-topics", parse_bool)?;
    let auto_create_partitions = sources.required("auto-create-partitions", |text| {
        parse_number(text, 1, u64::from(PARTITIONS_MAX)).map(|n| n as u32)
    })?;
    let initial_rebalance_delay_ms = sources
        .required("group-initial-rebalance-delay-ms", |text| {
            parse_number(text, 0, GROUP_TIMEOUT_MS_MAX)
        })?;
    let min_session_timeout_ms = sources.required("group-min-session-timeout-ms", |text| {
        parse_number(text, 1, GROUP_TIMEOUT_MS_MAX).map(|n| n as i32)
    })?;
    let max_session_timeout_ms = sources.required("group-max-session-timeout-ms", |text| {
        parse_number(text, 1, GROUP_TIMEOUT_MS_MAX).map(|n| n as i32)
    })?;
    if min_session_timeout_ms > max_session_timeout_ms {
        return Err(ConfigError(format!(
            "--group-min-session-timeout-ms {min_session_timeout_ms} is above --group-max-session-timeout-ms {max_session_timeout_ms}"
        )));
    }
    let offsets_retention_ms = sources.required("offsets-retention-ms", |text| {
        parse_number(text, 1, i64::MAX as u64)
    })?;
    let http = sources.value("http", parse_socket_addr)?;
    let core_balancing = sources.required("core-balancing", parse_core_balancing)?;
    // Checked whatever the mode, so a bad value in a file is caught before
    // the day continuous balancing is turned on.
    let threshold = sources.required("core-balancing-threshold", parse_imbalance_threshold)?;
    let debounce_ms = sources.required("core-balancing-debounce-ms", |text| {
        parse_number(
            text,
            CORE_BALANCING_DEBOUNCE_MS_MIN,
            CORE_BALANCING_DEBOUNCE_MS_MAX,
        )
    })?;
    let core_balancing = match core_balancing {
        CoreBalancingMode::Off => CoreBalancing::Off,
        CoreBalancingMode::OnChange => CoreBalancing::OnChange,
        CoreBalancingMode::Continuous => CoreBalancing::Continuous {
            threshold,
            debounce_ms,
        },
    };
    let archive_cache_bytes = sources.required("archive-cache-bytes", |text| {
        parse_number(text, ARCHIVE_CACHE_BYTES_MIN, u64::MAX)
    })?;
    let archive_read_bytes_per_s = sources.required("archive-read-mb-s", |text| {
        parse_number(text, 1, ARCHIVE_READ_MB_S_MAX).map(|mb| mb * BYTES_PER_MB)
    })?;

    let index_lag_bytes_max = sources.required("index-lag-bytes-max", |text| {
        parse_number(text, 1, u64::MAX)
    })?;

    Ok(Settings {
        server: ServerConfig {
            data_dir,
            listen,
            tls: None,
            advertised_host,
            advertised_port,
            shards,
            cpus,
            router_cores,
            spin_before_park_us,
            ring_depth,
            io_memory_bytes,
            log_defaults,
            max_request_bytes,
            connections: Arc::new(ConnectionLimits::new(
                max_connections,
                max_connections_per_ip,
            )),
            connections_max_idle_ms,
            request_memory_bytes_max,
            auto_create_topics,
            auto_create_partitions,
            coordinator: CoordinatorConfig {
                groups: GroupSettings {
                    min_session_timeout_ms,
                    max_session_timeout_ms,
                    initial_rebalance_delay_ms,
                },
                offsets_retention_ms,
            },
            metrics: Arc::new(Metrics::new(shards)),
            admin: Arc::default(),
            core_balancing,
            archive,
            archive_cache_bytes,
            archive_read_bytes_per_s,
            search: None,
            sasl,
            reauth_ms,
            authorizer,
        },
        http,
        tls,
        index_lag_bytes_max,
    })
}

/// `--authorizer` with its settings; `--super-users` and
/// `--allow-everyone-if-no-acl-found` are refused with the authorizer off,
/// where they would be silently ignored.
fn authorizer(sources: &Sources<'_>) -> Result<Option<Arc<AuthorizerConfig>>, ConfigError> {
    let on = sources.required("authorizer", |text| match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?} is not on or off")),
    })?;
    let super_users = sources.value("super-users", parse_super_users)?;
    let allow_everyone = sources.required("allow-everyone-if-no-acl-found", parse_bool)?;
    if !on {
        if super_users.is_some() {
            return Err(ConfigError(
                "--super-users is set but --authorizer is off: use --authorizer on".into(),
            ));
        }
        if allow_everyone {
            return Err(ConfigError(
                "--allow-everyone-if-no-acl-found is set but --authorizer is off: use --authorizer on".into(),
            ));
        }
        return Ok(None);
    }
    Ok(Some(Arc::new(AuthorizerConfig {
        super_users: super_users.unwrap_or_default(),
        allow_everyone_if_no_acl_found: allow_everyone,
    })))
}

/// How the start line names the listener's security.
fn listener_description(tls: Option<&ServerTlsFiles>, sasl: Option<&[Mechanism]>) -> String {
    let transport = match tls {
        None => "PLAINTEXT",
        Some(files) if files.client_ca.is_some() => "SSL, client certificates required",
        Some(_) => "SSL",
    };
    match sasl {
        None => transport.to_string(),
        Some(mechanisms) => {
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            format!("SASL_{transport}, mechanisms {}", names.join(","))
        }
    }
}

/// `--sasl-mechanisms` on a SASL listener (every mechanism when unset);
/// refused on any other listener, where it would be silently ignored.
fn sasl_mechanisms(
    sources: &Sources<'_>,
    security: ListenerSecurity,
) -> Result<Option<Vec<Mechanism>>, ConfigError> {
    let mechanisms = sources.value("sasl-mechanisms", parse_mechanisms)?;
    match (security.sasl, mechanisms) {
        (true, Some(mechanisms)) => Ok(Some(mechanisms)),
        (true, None) => Ok(Some(
            parse_mechanisms(MECHANISMS_DEFAULT).map_err(ConfigError)?,
        )),
        (false, None) => Ok(None),
        (false, Some(_)) => Err(ConfigError(format!(
            "--sasl-mechanisms is set but --security-protocol is {security}: use SASL_PLAINTEXT or SASL_SSL for SASL"
        ))),
    }
}

/// `--security-protocol` with the files it needs: none for PLAINTEXT (and
/// TLS files are refused, rather than ignored, since a listener the
/// operator meant to secure would serve in plain text), a certificate and
/// key for SSL.
fn tls_files(
    sources: &Sources<'_>,
    security: ListenerSecurity,
) -> Result<Option<ServerTlsFiles>, ConfigError> {
    let cert = sources.value("tls-cert", parse_path)?;
    let key = sources.value("tls-key", parse_path)?;
    let client_ca = sources.value("tls-client-ca", parse_path)?;
    match security.transport {
        SecurityProtocol::Plaintext => {
            let given = [
                ("tls-cert", &cert),
                ("tls-key", &key),
                ("tls-client-ca", &client_ca),
            ];
            match given.iter().find(|(_, path)| path.is_some()) {
                Some((name, _)) => Err(ConfigError(format!(
                    "--{name} is set but --security-protocol is {security}: use SSL or SASL_SSL for TLS"
                ))),
                None => Ok(None),
            }
        }
        SecurityProtocol::Ssl => {
            let missing = |name: &str, what: &str| {
                ConfigError(format!(
                    "--security-protocol {security} needs --{name} FILE ({what}, PEM)"
                ))
            };
            Ok(Some(ServerTlsFiles {
                cert: cert
                    .ok_or_else(|| missing("tls-cert", "the listener's certificate chain"))?,
                key: key.ok_or_else(|| missing("tls-key", "its private key"))?,
                client_ca,
            }))
        }
    }
}

/// `--archive` with `--s3-endpoint`, parsed by [`ArchiveTarget::parse`];
/// `<data-dir>/archive` when `--archive` is not set. Its messages name
/// the option; a value that did not come from the command line also gets
/// its origin in front.
fn archive_target(sources: &Sources<'_>, data_dir: &Path) -> Result<ArchiveTarget, ConfigError> {
    let archive = sources.text("archive")?;
    let endpoint = sources.text("s3-endpoint")?;
    let named = |origin: &Origin<'_>, why: String| match origin {
        Origin::Flag(_) => ConfigError(why),
        origin => ConfigError(format!("{origin}: {why}")),
    };
    match (archive, endpoint) {
        (None, None) => Ok(ArchiveTarget::default_for(data_dir)),
        (None, Some((endpoint, origin))) => Err(named(
            &origin,
            format!(
                "--s3-endpoint {endpoint} is set but --archive is not an s3:// target (it defaults to {})",
                data_dir.join(ringlog_shard::tiered::ARCHIVE_DIR_DEFAULT).display()
            ),
        )),
        (Some((archive, archive_origin)), endpoint) => {
            let (endpoint, endpoint_origin) = endpoint.unzip();
            ArchiveTarget::parse(&archive, endpoint.as_deref(), data_dir).map_err(|why| {
                match endpoint_origin.filter(|_| why.starts_with("--s3-endpoint")) {
                    Some(origin) => named(&origin, why),
                    None => named(&archive_origin, why),
                }
            })
        }
    }
}

/// Kafka's `local.retention.ms`: -2 (follow `retention.ms`), -1 (no local
/// bound) or a number of milliseconds; whether it fits `retention.ms` is
/// checked with the other log settings.
fn parse_local_retention_ms(text: &str) -> Result<i64, String> {
    let ms: i64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if ms < LogConfig::LOCAL_FOLLOWS_RETENTION {
        return Err(format!(
            "{ms} is not -2 (follow retention.ms), -1 (no local bound) or a number of milliseconds"
        ));
    }
    Ok(ms)
}

/// The listener to advertise when none is set: the listen address itself,
/// unless it is the wildcard, which no client can connect to.
fn advertise_listen(listen: SocketAddr) -> Result<(String, u16), ConfigError> {
    if listen.ip().is_unspecified() {
        return Err(ConfigError(format!(
            "--listen {listen} binds every address, so it cannot be advertised to clients; \
             set --advertised-listener to the host:port clients should connect to"
        )));
    }
    Ok((listen.ip().to_string(), listen.port()))
}

fn parse_config_file<'a>(path: &'a Path, text: &str) -> Result<ConfigFile<'a>, ConfigError> {
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        ConfigError(format!(
            "config file {}: {}",
            path.display(),
            err.to_string().trim_end()
        ))
    })?;
    if let Some(unknown) = table
        .keys()
        .find(|key| !SETTINGS.iter().any(|s| s.name == key.as_str()))
    {
        let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        return Err(ConfigError(format!(
            "config file {}: unknown key {unknown:?} (known keys: {})",
            path.display(),
            known.join(", ")
        )));
    }
    Ok(ConfigFile { path, table })
}

/// CPUs this process may run on (its affinity mask and cgroup quota), at
/// least 1 and at most [`SHARDS_MAX`]: one shard per CPU is the point of
/// thread-per-core, and more shards than CPUs only time-slice.
fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, SHARDS_MAX)
}

fn parse_path(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

/// A whole number in `min..=max`.
fn parse_number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("{n} is outside {min}..={max}"));
    }
    Ok(n)
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not IP:PORT (e.g. 127.0.0.1:9092 or [::1]:9092)"))
}

/// `host:port`, `[v6 address]:port`; the port must be one clients can use.
pub fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("{text:?} is not HOST:PORT (e.g. broker1.example.com:9092)");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(char::is_whitespace) || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// `0-3`, `0,2,4`, `0-1,8-9`: distinct CPUs, in the order given.
pub fn parse_cpuset(text: &str) -> Result<Vec<usize>, String> {
    let cpu = |part: &str| -> Result<usize, String> {
        let n: usize = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} in {text:?} is not a CPU number"))?;
        if n > CPU_MAX {
            return Err(format!("CPU {n} is above {CPU_MAX}"));
        }
        Ok(n)
    };
    let mut cpus = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (cpu(first)?, cpu(last)?);
                if first > last {
                    return Err(format!("range {part:?} in {text:?} is backwards"));
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(cpu(part)?),
        }
        if cpus.len() > SHARDS_MAX {
            return Err(format!(
                "{text:?} names more than {SHARDS_MAX} CPUs, the shard limit"
            ));
        }
    }
    let mut sorted = cpus.clone();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!(
            "CPU {} appears twice in {text:?}: two shards on one CPU time-slice",
            pair[0]
        ));
    }
    Ok(cpus)
}

fn parse_router_cores(text: &str) -> Result<RouterCores, String> {
    match text {
        "1" => Ok(RouterCores::One),
        "all" => Ok(RouterCores::All),
        _ => Err(format!("{text:?} is not 1 or all")),
    }
}

/// `--core-balancing` before its continuous mode's parameters are known.
enum CoreBalancingMode {
    Off,
    OnChange,
    Continuous,
}

fn parse_core_balancing(text: &str) -> Result<CoreBalancingMode, String> {
    match text {
        "off" => Ok(CoreBalancingMode::Off),
        "on-change" => Ok(CoreBalancingMode::OnChange),
        "continuous" => Ok(CoreBalancingMode::Continuous),
        _ => Err(format!("{text:?} is not off, on-change or continuous")),
    }
}

/// A finite number above 1: the busiest shard's load over the mean is never
/// below 1, so a threshold of 1 or less would call every load imbalanced.
fn parse_imbalance_threshold(text: &str) -> Result<f64, String> {
    let ratio: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !ratio.is_finite() || ratio <= 1.0 {
        return Err(format!(
            "{ratio} is not above 1 (the busiest shard's load over the mean load)"
        ));
    }
    Ok(ratio)
}

/// `always` or `interval:<ms>`.
pub fn parse_flush_policy(text: &str) -> Result<FlushPolicy, String> {
    if text == "always" {
        return Ok(FlushPolicy::Always);
    }
    match text.strip_prefix("interval:") {
        Some(ms) => parse_number(ms, 1, FLUSH_INTERVAL_MS_MAX)
            .map(FlushPolicy::IntervalMs)
            .map_err(|why| format!("interval: {why} (milliseconds)")),
        None => Err(format!("{text:?} is not always or interval:<ms>")),
    }
}

// ---------------------------------------------------------------- running

/// Runs `ringlog serve`: the exit code is 0 after a clean shutdown, 1 when a
/// start-up check or the broker fails, 2 for bad settings. Every failure
/// is printed on stderr as `ringlog serve: ...`.
///
/// Must be called before the process starts any thread: it blocks SIGINT
/// and SIGTERM first, so that every thread started afterwards (the
/// shards, the HTTP endpoint) inherits the mask and only the signal
/// thread ever sees them.
pub fn run(args: ServeArgs) -> ExitCode {
    let signals = match block_shutdown_signals() {
        Ok(signals) => signals,
        Err(err) => return fail(1, &format!("cannot block SIGINT and SIGTERM: {err}")),
    };
    let settings = match load_settings(&args.matches) {
        Ok(settings) => settings,
        Err(err) => return fail(2, &err.to_string()),
    };
    let mut config = settings.server;
    // Built once here and shared by every shard's listener; a bad file
    // stops the start, naming it.
    if let Some(files) = &settings.tls {
        match files.load() {
            Ok(tls) => config.tls = Some(tls),
            Err(err) => return fail(1, &err.to_string()),
        }
    }

    // The doctor checks include the archive target's (the directory takes
    // a file, or the bucket exists and accepts the credentials), so a
    // wrong --archive fails here, naming it, not at the first upload.
    let report = doctor::run(&config.data_dir, config.shards, &config.archive);
    let mut passed = true;
    for check in &report.checks {
        match check.verdict {
            doctor::Verdict::Ok => tracing::debug!("check {}: {}", check.name, check.detail),
            doctor::Verdict::Warn => tracing::warn!("check {}: {}", check.name, check.detail),
            doctor::Verdict::Fail => {
                eprintln!("ringlog serve: {}: {}", check.name, check.detail);
                passed = false;
            }
        }
    }
    if !passed {
        return ExitCode::from(1);
    }
    // Held until the process ends: `ringlog user add` writes the metadata
    // log only while no broker holds it, and a second broker on the same
    // directory stops here.
    let _data_dir_lock = match crate::user::lock_data_dir(&config.data_dir) {
        Ok(lock) => lock,
        Err(err) => return fail(1, &err),
    };

    match SearchHub::start(
        config.shards,
        settings.index_lag_bytes_max,
        config.data_dir.clone(),
    ) {
        Ok(hub) => config.search = Some(hub),
        Err(err) => return fail(1, &format!("cannot start the search indexers: {err}")),
    }
    if let Some(listen) = settings.http {
        match http::start(
            listen,
            config.metrics.clone(),
            config.admin.clone(),
            config.search.clone(),
        ) {
            Ok(bound) => tracing::info!(
                "serving GET /metrics on http://{bound}/metrics, the admin API on http://{bound}/v1/ and search on http://{bound}/search"
            ),
            Err(err) => {
                return fail(
                    1,
                    &format!("http: cannot serve metrics and the admin API on {listen}: {err}"),
                )
            }
        }
    }
    let (shutdown_sender, shutdown) = ringlog_shard::wake::channel();
    if let Err(err) = spawn_signal_thread(signals, shutdown_sender) {
        return fail(1, &format!("cannot start the signal thread: {err}"));
    }

    match &config.archive {
        ArchiveTarget::Off => {
            tracing::info!("archive: off; sealed segments stay local until retention")
        }
        target => tracing::info!(
            "archive: {target}; local.retention.ms default {}",
            config.log_defaults.local_retention_ms
        ),
    }
    match &config.authorizer {
        None => tracing::info!("authorizer: off; every request is allowed"),
        Some(authorizer) => tracing::info!(
            "authorizer: on; super users {:?}, allow everyone if no ACL found: {}",
            authorizer.super_users,
            authorizer.allow_everyone_if_no_acl_found
        ),
    }
    tracing::info!(
        "starting: {} shards{}, listening on {} ({}), advertising {}:{}, data in {}",
        config.shards,
        match &config.cpus {
            Some(cpus) => format!(" on CPUs {cpus:?}"),
            None => String::new(),
        },
        config.listen,
        listener_description(settings.tls.as_ref(), config.sasl.as_deref()),
        config.advertised_host,
        config.advertised_port,
        config.data_dir.display()
    );
    match ringlog_shard::server::serve(config, shutdown) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => fail(1, &err.to_string()),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("ringlog serve: {message}");
    ExitCode::from(code)
}

fn load_settings(matches: &ArgMatches) -> Result<Settings, ConfigError> {
    let env = env_vars()?;
    let path = config_path(matches, &env);
    let text = match &path {
        None => None,
        Some(path) => Some(std::fs::read_to_string(path).map_err(|err| {
            ConfigError(format!("cannot read config file {}: {err}", path.display()))
        })?),
    };
    let file = path.as_deref().zip(text.as_deref());
    resolve(matches, &env, file)
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread
/// it starts later) and returns the set, for [`spawn_signal_thread`].
fn block_shutdown_signals() -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain old data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
    }
    // SAFETY: valid set pointer; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(set)
}

/// Starts the thread that waits for the blocked `signals`: the first one
/// asks the broker to shut down cleanly, a second one (an impatient
/// operator, or a broker stuck closing) exits at once. Exiting without
/// closing is safe: acknowledged data is durable by the flush policy and
/// recovery handles torn tails, exactly as after a crash.
fn spawn_signal_thread(
    signals: libc::sigset_t,
    shutdown: futures_channel::oneshot::Sender<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut shutdown = Some(shutdown);
            loop {
                let mut signal: libc::c_int = 0;
                // SAFETY: valid set and out pointer; the set's signals are
                // blocked in this thread, as sigwait requires.
                let rc = unsafe { libc::sigwait(&signals, &mut signal) };
                assert_eq!(rc, 0, "sigwait with a valid set cannot fail");
                let name = if signal == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                match shutdown.take() {
                    Some(sender) => {
                        tracing::info!("{name}: shutting down (send it again to exit at once)");
                        // The broker may already have stopped on its own.
                        let _ = sender.send(());
                    }
                    None => {
                        tracing::warn!("{name} again: exiting without a clean shutdown");
                        std::process::exit(1);
                    }
                }
            }
        })?;
    Ok(())
}
