//! The command line of `ringlog bench` (also `ringlog-bench`).
//!
//! Options are grouped by concern and flattened into each subcommand, so
//! `produce`, `consume`, `e2e` and `requests` spell the same thing the
//! same way. Every group is `Serialize`: the `--json` report carries the
//! exact options a run used.
//!
//! Producer defaults follow Kafka's producer (acks=all, linger 5 ms, 32 MiB
//! buffer, 1 MiB requests) except two that bound the client's window: the
//! batch size, 256 KiB rather than the Java client's 16 KiB (librdkafka's
//! is ~1 MB), and 16 requests in flight rather than Java's 5 (librdkafka
//! allows a million). With acks=all a connection's throughput is the bytes
//! it has in flight over the round trip of a durable write (a few ms: a
//! write and an fdatasync), so with Java's settings a run measures the
//! client, not the broker. Measured on the 2-core test host, one
//! connection, 8 partitions: 64 KiB batches 454 MB/s, 256 KiB 785 MB/s,
//! 1 MiB no better; 5 requests in flight 513 MB/s, 16 715 MB/s.

use clap::{Args, Subcommand, ValueEnum};
use ringlog_protocol::sasl::{ClientCredentials, Mechanism};
use ringlog_protocol::tls::{ClientTlsFiles, ListenerSecurity, SecurityProtocol};
use serde::{Serialize, Serializer};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::records::Codec;
use crate::requests::Api;
use crate::units::{parse_bytes, parse_duration, serialize_optional_seconds, serialize_seconds};

/// Largest batch or request size accepted (Kafka's `message.max.bytes`
/// ceiling is far below).
pub const SIZE_MAX_BYTES: u64 = 1 << 30;
/// Most threads.
pub const THREADS_MAX: usize = 256;
/// Most connections.
pub const CONNECTIONS_MAX: usize = 65_536;

fn bytes_usize(text: &str) -> Result<usize, String> {
    let value = parse_bytes(text)?;
    if value == 0 || value > SIZE_MAX_BYTES {
        return Err(format!("{text:?} must be 1 B ..= 1 GiB"));
    }
    Ok(value as usize)
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(d)
}

fn rate(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of records per second"))?;
    if !(value > 0.0 && value.is_finite()) {
        return Err(format!("{text:?}: the rate must be positive"));
    }
    Ok(value)
}

/// `ringlog bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The workload.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The workloads.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce records and measure acknowledged throughput and latency.
    Produce(ProduceArgs),
    /// Fetch records from assigned partitions and measure throughput.
    Consume(ConsumeArgs),
    /// Produce and consume at once; measure produce-to-consume latency.
    E2e(E2eArgs),
    /// Send one request type from many clients; measure its latency.
    Requests(RequestsArgs),
    /// Measure the disk's ceiling: O_DIRECT write MB/s and fdatasync latency.
    Disk(DiskArgs),
}

/// Kafka's client security settings, the same flags on every command that
/// speaks Kafka (`ringlog bench`, `ringlog topic`, `ringlog group`,
/// `ringlog user`): this one definition is flattened into each. Flags
/// only, no environment variables (`RINGLOG_TLS_CERT` and the like are
/// `ringlog serve`'s), except the SASL password: it never goes on the
/// command line, where any user of the host can read it, so it comes from
/// `--sasl-password-file` or [`SASL_PASSWORD_ENV`].
#[derive(Args, Clone, Debug, Serialize)]
pub struct SecurityOptions {
    /// Security protocol to the broker (Kafka's security.protocol).
    #[arg(
        long,
        global = true,
        value_name = "PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL",
        default_value = "PLAINTEXT",
        value_parser = ListenerSecurity::parse
    )]
    #[serde(serialize_with = "serialize_display")]
    pub security_protocol: ListenerSecurity,
    /// With SSL: CA certificates (PEM) the broker's certificate must chain to.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// With SSL: this client's certificate (PEM), for brokers that require one.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// With SSL: the private key of --tls-cert (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// With SASL_*: the mechanism (Kafka's sasl.mechanism).
    #[arg(
        long,
        global = true,
        value_name = "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512",
        default_value = SASL_MECHANISM_DEFAULT,
        value_parser = parse_mechanism
    )]
    #[serde(serialize_with = "serialize_display")]
    pub sasl_mechanism: Mechanism,
    /// With SASL_*: the user to authenticate as.
    #[arg(long, global = true, value_name = "NAME")]
    pub sasl_username: Option<String>,
    /// With SASL_*: a file whose first line is the password (else the
    /// RINGLOG_SASL_PASSWORD environment variable).
    #[arg(long, global = true, value_name = "FILE")]
    pub sasl_password_file: Option<PathBuf>,
}

/// `--sasl-mechanism`'s default: the strongest mechanism the broker offers
/// (SCRAM never sends the password, and SHA-512 is Kafka's stronger hash).
pub const SASL_MECHANISM_DEFAULT: &str = "SCRAM-SHA-512";
/// Where the SASL password comes from without `--sasl-password-file`.
pub const SASL_PASSWORD_ENV: &str = "RINGLOG_SASL_PASSWORD";

fn parse_mechanism(text: &str) -> Result<Mechanism, String> {
    Mechanism::from_name(&text.to_ascii_uppercase())
        .ok_or_else(|| format!("{text:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn serialize_display<S: Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// How every connection of a command is opened: TLS or not, SASL or not.
/// Cheap to clone (shared configurations).
#[derive(Clone, Debug, Default)]
pub struct ClientSecurity {
    /// The client's TLS configuration; `None` for PLAINTEXT and
    /// SASL_PLAINTEXT.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Who to authenticate as right after connecting (and after TLS);
    /// `None` without SASL.
    pub sasl: Option<Arc<ClientCredentials>>,
}

impl SecurityOptions {
    /// How a headline names the security protocol: nothing for PLAINTEXT
    /// (the default), ` over SSL` (or the SASL protocol and mechanism)
    /// otherwise, so a report says what it measured.
    pub fn over(&self) -> String {
        match self.security_protocol {
            ListenerSecurity {
                transport: SecurityProtocol::Plaintext,
                sasl: false,
            } => String::new(),
            ListenerSecurity { sasl: false, .. } => format!(" over {}", self.security_protocol),
            ListenerSecurity { sasl: true, .. } => {
                format!(" over {} {}", self.security_protocol, self.sasl_mechanism)
            }
        }
    }

    /// The TLS configuration and SASL credentials to connect with, read
    /// from the files (and the environment) once.
    ///
    /// # Errors
    ///
    /// SSL without `--tls-ca`, TLS files without SSL, SASL flags without
    /// SASL, SASL without a user or password, or a file that cannot be
    /// used (named, with why).
    pub fn resolve(&self) -> Result<ClientSecurity, String> {
        self.resolve_with(std::env::var_os(SASL_PASSWORD_ENV))
    }

    fn resolve_with(&self, password_env: Option<OsString>) -> Result<ClientSecurity, String> {
        let files = ClientTlsFiles {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        };
        let protocol = self.security_protocol;
        let tls = match protocol.transport {
            SecurityProtocol::Ssl => Some(files.load().map_err(|e| e.to_string())?),
            SecurityProtocol::Plaintext if files == ClientTlsFiles::default() => None,
            SecurityProtocol::Plaintext => {
                return Err(format!(
                    "--tls-ca, --tls-cert and --tls-key need --security-protocol SSL or SASL_SSL, not {protocol}"
                ))
            }
        };
        if !protocol.sasl {
            if self.sasl_username.is_some() || self.sasl_password_file.is_some() {
                return Err(format!(
                    "--sasl-username and --sasl-password-file need --security-protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}"
                ));
            }
            return Ok(ClientSecurity { tls, sasl: None });
        }
        let mechanism = self.sasl_mechanism;
        let Some(user) = &self.sasl_username else {
            return Err(format!(
                "--security-protocol {protocol} needs --sasl-username NAME"
            ));
        };
        let password = match (&self.sasl_password_file, password_env) {
            (Some(path), _) => read_password_file(path)?,
            (None, Some(value)) => value
                .into_string()
                .map_err(|_| format!("{SASL_PASSWORD_ENV} is not UTF-8"))?
                .into_bytes(),
            (None, None) => {
                return Err(format!(
                    "--security-protocol {protocol} needs the password of {user:?}: --sasl-password-file FILE (its first line) or the {SASL_PASSWORD_ENV} environment variable"
                ))
            }
        };
        let credentials = ClientCredentials::new(mechanism, user, password)
            .map_err(|e| format!("SASL {mechanism} as {user:?}: {e}"))?;
        Ok(ClientSecurity {
            tls,
            sasl: Some(Arc::new(credentials)),
        })
    }
}

/// Longest password file read: a password is at most
/// [`ringlog_protocol::sasl::PASSWORD_BYTES_MAX`] bytes, plus a line end.
const PASSWORD_FILE_BYTES_MAX: u64 = ringlog_protocol::sasl::PASSWORD_BYTES_MAX as u64 + 2;

/// The first line of `path`, without its line end.
fn read_password_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PASSWORD_FILE_BYTES_MAX).read_to_end(&mut text))
        .map_err(|e| format!("--sasl-password-file {}: {e}", path.display()))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(format!(
            "--sasl-password-file {}: the first line is empty",
            path.display()
        ));
    }
    Ok(line.to_vec())
}

/// Where and how to connect.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ClientOptions {
    /// Broker to bootstrap from.
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092",
        env = "RINGLOG_BOOTSTRAP"
    )]
    pub bootstrap: String,
    /// The security protocol, the TLS files and the SASL login.
    #[command(flatten)]
    pub security: SecurityOptions,
    /// Load-generator threads, one glommio executor each.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=THREADS_MAX as i64))]
    pub threads: u16,
    /// Connections in total, spread over the threads (default: one per thread).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=CONNECTIONS_MAX as i64))]
    pub connections: Option<u32>,
    /// Time a request may take before it fails and its connection is closed.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub request_timeout_ms: u64,
}

impl ClientOptions {
    /// Connections to open.
    pub fn connections(&self) -> usize {
        self.connections
            .map_or(usize::from(self.threads), |c| c as usize)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// How long, and what to write at the end.
#[derive(Args, Clone, Debug, Serialize)]
pub struct RunOptions {
    /// Measured time after the warm-up (default 10s unless --records is given).
    #[arg(long, value_parser = positive_duration, value_name = "DURATION")]
    #[serde(serialize_with = "serialize_optional_seconds")]
    pub duration: Option<Duration>,
    /// Records (or requests) to send in total, warm-up included.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: Option<u64>,
    /// Time before measuring starts (its results are left out).
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    #[serde(serialize_with = "serialize_seconds")]
    pub warmup: Duration,
    /// Seed of keys and payloads.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency percentile distribution (HdrHistogram .hgrm) to this file.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Draw the latency percentile curve and throughput over time to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// No per-second progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// Default measured time without `--duration` or `--records`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

impl RunOptions {
    /// The measured time: as given, else 10 s unless `--records` bounds
    /// the run.
    pub fn duration(&self) -> Option<Duration> {
        match (self.duration, self.records) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_DURATION),
        }
    }
}

/// The topic written.
#[derive(Args, Clone, Debug, Serialize)]
pub struct TopicOptions {
    /// Topic name.
    #[arg(long, default_value = "ringlog-bench")]
    pub topic: String,
    /// Partitions of the topic, created with this many if missing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: i32,
}

/// Kafka acks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Acks {
    /// Fire and forget.
    #[value(name = "0")]
    #[serde(rename = "0")]
    Zero,
    /// The leader has it.
    #[value(name = "1")]
    #[serde(rename = "1")]
    One,
    /// Every in-sync replica has it (ringlog: on stable storage).
    #[value(name = "all", alias = "-1")]
    #[serde(rename = "all")]
    All,
}

impl Acks {
    /// The wire value.
    pub fn wire(self) -> i16 {
        match self {
            Acks::Zero => 0,
            Acks::One => 1,
            Acks::All => -1,
        }
    }
}

/// What producers send.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ProducerOptions {
    /// Value bytes per record (at least 8: the send-time stamp).
    #[arg(long, value_parser = bytes_usize, default_value = "1024", value_name = "BYTES")]
    pub message_bytes: usize,
    /// Batch size per partition, uncompressed (Kafka's batch.size).
    #[arg(long, value_parser = bytes_usize, default_value = "256KiB", value_name = "BYTES")]
    pub batch_bytes: usize,
    /// How long a batch may wait for more records (Kafka's linger.ms).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub linger_ms: u64,
    /// Acknowledgement level.
    #[arg(long, value_enum, default_value = "all", allow_hyphen_values = true)]
    pub acks: Acks,
    /// Batch compression.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Codec,
    /// Records per second in total, open loop; omit for the maximum rate.
    #[arg(long, value_parser = rate, value_name = "RECORDS_PER_S")]
    pub rate: Option<f64>,
    /// Distinct record keys (murmur2-partitioned); 0 sends keyless records.
    #[arg(long, default_value_t = 0)]
    pub key_cardinality: u64,
    /// Produce requests outstanding per connection (Kafka's max.in.flight.requests.per.connection).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_in_flight: u32,
    /// Generated but unacknowledged bytes per connection (Kafka's buffer.memory).
    #[arg(long, value_parser = bytes_usize, default_value = "32MiB", value_name = "BYTES")]
    pub buffer_bytes: usize,
    /// Largest Produce request.
    #[arg(long, value_parser = bytes_usize, default_value = "1MiB", value_name = "BYTES")]
    pub max_request_bytes: usize,
}

/// Where consumers start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The first offset still stored.
    Earliest,
    /// The end of each partition (only new records).
    Latest,
}

/// How consumers fetch.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ConsumerOptions {
    /// Fetch max_bytes.
    #[arg(long, value_parser = bytes_usize, default_value = "50MiB", value_name = "BYTES")]
    pub fetch_max_bytes: usize,
    /// Fetch partition_max_bytes.
    #[arg(long, value_parser = bytes_usize, default_value = "1MiB", value_name = "BYTES")]
    pub partition_max_bytes: usize,
    /// Fetch max_wait_ms (long-poll).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i32).range(0..=60_000))]
    pub fetch_max_wait_ms: i32,
}

/// `bench produce`.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ProduceArgs {
    /// Connection settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub client: ClientOptions,
    /// Run length, seed and outputs.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunOptions,
    /// The topic.
    #[command(flatten)]
    #[serde(flatten)]
    pub topic: TopicOptions,
    /// Producer settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub producer: ProducerOptions,
}

/// `bench consume`.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ConsumeArgs {
    /// Connection settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub client: ClientOptions,
    /// Run length, seed and outputs.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunOptions,
    /// Topic read (it must exist).
    #[arg(long, default_value = "ringlog-bench")]
    pub topic: String,
    /// Start at the earliest or the latest offset.
    #[arg(long, value_enum, default_value = "earliest")]
    pub from: StartFrom,
    /// Stop once every partition is read up to where it ended at the start.
    #[arg(long)]
    pub until_end: bool,
    /// Consume as members of this consumer group (one per connection): partitions
    /// assigned by the group, starting at its committed offsets, committed every second.
    #[arg(long)]
    pub group: Option<String>,
    /// Consumer settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub consumer: ConsumerOptions,
}

/// `bench e2e`.
#[derive(Args, Clone, Debug, Serialize)]
pub struct E2eArgs {
    /// Connection settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub client: ClientOptions,
    /// Run length, seed and outputs.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunOptions,
    /// The topic.
    #[command(flatten)]
    #[serde(flatten)]
    pub topic: TopicOptions,
    /// Producer settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub producer: ProducerOptions,
    /// Consumer connections (spread over the threads like producers).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=CONNECTIONS_MAX as i64))]
    pub consumers: u32,
    /// Consumer settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub consumer: ConsumerOptions,
}

/// `bench requests`.
#[derive(Args, Clone, Debug, Serialize)]
pub struct RequestsArgs {
    /// Connection settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub client: ClientOptions,
    /// Run length, seed and outputs.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunOptions,
    /// The request type.
    #[arg(long, value_enum)]
    pub api: Api,
    /// Topic named by metadata/offset requests (created if missing), or the
    /// name prefix of created topics.
    #[arg(long, default_value = "ringlog-bench")]
    pub topic: String,
    /// Partitions of that topic (or of each created topic).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: i32,
    /// Consumer group of offset-commit / offset-fetch.
    #[arg(long, default_value = "ringlog-bench")]
    pub group: String,
    /// Requests per second in total, open loop; omit to send back to back.
    #[arg(long, value_parser = rate, value_name = "REQUESTS_PER_S")]
    pub rate: Option<f64>,
    /// Requests outstanding per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_in_flight: u32,
}

/// `bench disk`.
#[derive(Args, Clone, Debug, Serialize)]
pub struct DiskArgs {
    /// Directory on the disk to measure (test files are created and removed).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Bytes per sequential write (default: the segment write-behind buffer).
    #[arg(long, value_parser = bytes_usize, value_name = "BYTES")]
    pub write_bytes: Option<usize>,
    /// Sequential writes in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub queue_depth: u16,
    /// Bytes the sequential test writes at most.
    #[arg(long = "bytes", value_parser = parse_bytes, default_value = "4GiB", value_name = "BYTES")]
    pub total_bytes: u64,
    /// Time the sequential test runs at most.
    #[arg(long, value_parser = positive_duration, default_value = "10s", value_name = "DURATION")]
    #[serde(serialize_with = "serialize_seconds")]
    pub duration: Duration,
    /// Appending write + fdatasync rounds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub fsyncs: u64,
    /// Bytes written before each fdatasync.
    #[arg(long, value_parser = bytes_usize, default_value = "4KiB", value_name = "BYTES")]
    pub fsync_write_bytes: usize,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchCommand, String> {
        let mut argv = vec!["ringlog-bench"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map(|c| c.bench.command)
            .map_err(|e| e.to_string())
    }

    fn security(args: &[&str]) -> SecurityOptions {
        let mut argv = vec!["produce"];
        argv.extend_from_slice(args);
        match parse(&argv).expect("parses") {
            BenchCommand::Produce(p) => p.client.security,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sasl_needs_a_user_and_a_password_from_a_file_or_the_environment() {
        let plain = security(&[]);
        assert_eq!(plain.over(), "");
        assert!(plain.resolve_with(None).unwrap().sasl.is_none());

        let sasl = security(&["--security-protocol", "sasl_plaintext"]);
        let err = sasl.resolve_with(None).unwrap_err();
        assert!(err.contains("--sasl-username"), "{err}");
        let sasl = security(&[
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-username",
            "bob",
            "--sasl-mechanism",
            "plain",
        ]);
        assert_eq!(sasl.over(), " over SASL_PLAINTEXT PLAIN");
        let err = sasl.resolve_with(None).unwrap_err();
        assert!(
            err.contains("--sasl-password-file") && err.contains(SASL_PASSWORD_ENV),
            "{err}"
        );
        let resolved = sasl.resolve_with(Some("from-env".into())).unwrap();
        let credentials = resolved.sasl.expect("SASL");
        assert_eq!(
            (
                credentials.mechanism,
                credentials.user.as_str(),
                &credentials.password[..]
            ),
            (Mechanism::Plain, "bob", &b"from-env"[..])
        );
        assert!(resolved.tls.is_none());

        // The file wins over the environment; only its first line counts.
        let dir = std::env::temp_dir().join(format!("ringlog-sasl-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "from-file\r\nsecond line\n").unwrap();
        let file_flag = file.to_str().unwrap();
        let with_file = security(&[
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-username",
            "bob",
            "--sasl-password-file",
            file_flag,
        ]);
        let credentials = with_file
            .resolve_with(Some("from-env".into()))
            .unwrap()
            .sasl
            .unwrap();
        assert_eq!(credentials.password, b"from-file");
        assert_eq!(credentials.mechanism, Mechanism::ScramSha512, "the default");
        std::fs::write(&file, "\n").unwrap();
        assert!(with_file.resolve_with(None).unwrap_err().contains("empty"));
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = security(&[
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-username",
            "bob",
            "--sasl-password-file",
            "/nonexistent/password",
        ]);
        assert!(missing
            .resolve_with(None)
            .unwrap_err()
            .contains("/nonexistent/password"));

        // SASL flags without SASL, and SASL_SSL without a CA.
        let err = security(&["--sasl-username", "bob"])
            .resolve_with(None)
            .unwrap_err();
        assert!(err.contains("need --security-protocol SASL_"), "{err}");
        assert!(
            security(&["--security-protocol", "SASL_SSL", "--sasl-username", "bob"])
                .resolve_with(Some("pw".into()))
                .is_err()
        );
        assert!(parse(&["produce", "--sasl-mechanism", "GSSAPI"]).is_err());
    }

    #[test]
    fn produce_defaults() {
        let BenchCommand::Produce(p) = parse(&["produce"]).unwrap() else {
            panic!("not produce");
        };
        assert_eq!(p.client.bootstrap, "127.0.0.1:9092");
        assert_eq!(p.client.connections(), 1);
        assert_eq!(p.run.duration(), Some(DEFAULT_DURATION));
        assert_eq!(p.producer.acks, Acks::All);
        assert_eq!(p.producer.message_bytes, 1024);
        assert_eq!(p.producer.batch_bytes, 256 << 10);
        assert_eq!(p.producer.compression, Codec::None);
        assert!(p.producer.rate.is_none());
        assert_eq!(p.topic.partitions, 1);
    }

    #[test]
    fn produce_options_parse() {
        let BenchCommand::Produce(p) = parse(&[
            "produce",
            "--bootstrap",
            "h:1",
            "--threads",
            "2",
            "--connections",
            "8",
            "--partitions",
            "8",
            "--message-bytes",
            "1KiB",
            "--batch-bytes",
            "128k",
            "--linger-ms",
            "0",
            "--acks",
            "-1",
            "--compression",
            "zstd",
            "--rate",
            "25000.5",
            "--records",
            "1000",
            "--warmup",
            "2s",
            "--key-cardinality",
            "100",
            "--seed",
            "7",
            "--json",
            "out.json",
        ])
        .unwrap() else {
            panic!("not produce");
        };
        assert_eq!(p.client.connections(), 8);
        assert_eq!(p.client.threads, 2);
        assert_eq!(p.producer.acks, Acks::All);
        assert_eq!(p.producer.acks.wire(), -1);
        assert_eq!(p.producer.batch_bytes, 128 << 10);
        assert_eq!(p.producer.compression, Codec::Zstd);
        assert_eq!(p.producer.rate, Some(25000.5));
        assert_eq!(p.run.duration(), None, "--records alone bounds the run");
        assert_eq!(p.run.warmup, Duration::from_secs(2));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["acks"], "all");
        assert_eq!(json["compression"], "zstd");
        assert_eq!(json["warmup"], 2.0);
        assert_eq!(json["partitions"], 8);
        assert_eq!(json["json"], "out.json");
        assert!(json["duration"].is_null());
    }

    #[test]
    fn acks_spellings() {
        for (text, acks) in [
            ("0", Acks::Zero),
            ("1", Acks::One),
            ("all", Acks::All),
            ("-1", Acks::All),
        ] {
            let BenchCommand::Produce(p) = parse(&["produce", "--acks", text]).unwrap() else {
                panic!("not produce");
            };
            assert_eq!(p.producer.acks, acks, "{text}");
        }
        assert!(parse(&["produce", "--acks", "2"]).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_option_named() {
        for args in [
            &["produce", "--rate", "0"][..],
            &["produce", "--rate", "-5"],
            &["produce", "--message-bytes", "0"],
            &["produce", "--batch-bytes", "2GiB"],
            &["produce", "--threads", "0"],
            &["produce", "--duration", "0s"],
            &["produce", "--compression", "brotli"],
            &["produce", "--records", "0"],
            &["requests", "--api", "join-group"],
            &["disk"],
        ] {
            let err = parse(args).expect_err(&format!("{args:?} accepted"));
            assert!(err.contains("error"), "{err}");
        }
    }

    #[test]
    fn other_subcommands_parse() {
        assert!(matches!(
            parse(&["consume", "--from", "latest", "--until-end"]).unwrap(),
            BenchCommand::Consume(ConsumeArgs {
                from: StartFrom::Latest,
                until_end: true,
                ..
            })
        ));
        let BenchCommand::E2e(e) = parse(&["e2e", "--consumers", "2", "--rate", "1000"]).unwrap()
        else {
            panic!("not e2e");
        };
        assert_eq!(e.consumers, 2);
        let BenchCommand::Requests(r) =
            parse(&["requests", "--api", "offset-commit", "--connections", "64"]).unwrap()
        else {
            panic!("not requests");
        };
        assert_eq!(r.api, Api::OffsetCommit);
        assert_eq!(r.client.connections(), 64);
        let BenchCommand::Disk(d) = parse(&["disk", "--dir", "/x", "--queue-depth", "8"]).unwrap()
        else {
            panic!("not disk");
        };
        assert_eq!(d.queue_depth, 8);
        assert_eq!(d.total_bytes, 4 << 30);
        assert!(d.write_bytes.is_none());
    }
}
