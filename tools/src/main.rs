//! `ringlog` — the ringlog binary: the broker (`serve`), its admin clients
//! (`topic`, `group` over the Kafka protocol; `shard`, `partition` over the
//! broker's HTTP admin API), the load generator (`bench`, from the
//! `ringlog-bench` crate), and the host and file checks (`doctor`,
//! `inspect`).
//!
//! Exit codes: 0 success, 1 a check failed (corruption found, doctor
//! verdict FAIL, a startup check or the broker failed, the broker answered
//! an admin request with an error or could not be reached), 2 bad usage or
//! an I/O error.

use clap::{Parser, Subcommand};
use ringlog_shard::tiered::ArchiveTarget;
use ringlog_tools::{acl, doctor, group, inspect, partition, search, serve, shard, topic, user};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ringlog",
    version,
    about = "Kafka-compatible thread-per-core streaming storage engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// Create, list, describe, alter and delete topics on a running broker.
    Topic(topic::TopicArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(group::GroupArgs),
    /// Show each shard's load and partitions; rebalance partitions across shards.
    Shard(shard::ShardArgs),
    /// Move a partition to another shard, live.
    Partition(partition::PartitionArgs),
    /// Find records by their value, key and headers (GET /search on --http).
    Search(search::SearchArgs),
    /// SASL users' SCRAM credentials: add (online or with the broker stopped), delete, list.
    User(user::UserArgs),
    /// Add, list and delete ACL bindings on a running broker.
    Acl(acl::AclArgs),
    /// Load generator and disk ceiling: produce, consume, e2e, requests, disk.
    Bench(Box<ringlog_bench::BenchArgs>),
    /// Print and verify on-disk files.
    Inspect {
        #[command(subcommand)]
        what: InspectCommand,
    },
    /// Check that this host can run ringlog: kernel, io_uring, memlock,
    /// O_DIRECT, the archive target.
    Doctor {
        /// Data directory to check (created if missing).
        #[arg(long, default_value = "./data", env = "RINGLOG_DATA_DIR")]
        data_dir: PathBuf,
        /// Shards the host should support (memlock need = shards x 512 KiB).
        #[arg(long, default_value_t = 2, env = "RINGLOG_SHARDS")]
        shards: usize,
        /// Archive target to check, as `serve --archive`: off, a directory
        /// (created if missing) or s3://bucket[/prefix] [default:
        /// <data-dir>/archive].
        #[arg(long, env = "RINGLOG_ARCHIVE")]
        archive: Option<String>,
        /// With an s3:// --archive: the S3-compatible server's URL.
        #[arg(long, env = "RINGLOG_S3_ENDPOINT")]
        s3_endpoint: Option<String>,
    },
}

#[derive(Subcommand)]
enum InspectCommand {
    /// Print every frame of a segment file and verify every crc.
    Segment {
        /// A `<base offset>.log` segment file.
        file: PathBuf,
        /// Print only the summary line.
        #[arg(long)]
        quiet: bool,
    },
    /// Print an archive's footer and member table and verify every member.
    Archive {
        /// An archive object (`.rla`): a local file, or s3://bucket/key
        /// (credentials and region from the AWS_* variables).
        path: String,
        /// With an s3:// object: the S3-compatible server's URL
        /// (http://host:port or https://host) [default: AWS S3].
        #[arg(long, env = "RINGLOG_S3_ENDPOINT")]
        s3_endpoint: Option<String>,
        /// Print only the summary line.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the metadata log's snapshots and events and verify every crc.
    Meta {
        /// The data directory (its `meta/` subdirectory is read).
        data_dir: PathBuf,
        /// Print only the summary lines.
        #[arg(long)]
        quiet: bool,
    },
}

/// Logs go to stderr, filtered by `RINGLOG_LOG`, else `RUST_LOG`, else
/// `default_filter`.
fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGLOG_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, not escape codes in journald.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// `ringlog doctor`: the archive target is read as `serve` reads
/// `--archive` and `--s3-endpoint`, defaulting to `<data-dir>/archive`.
fn run_doctor(
    data_dir: &Path,
    shards: usize,
    archive: Option<&str>,
    s3_endpoint: Option<&str>,
) -> Result<(), inspect::Failure> {
    let archive = match (archive, s3_endpoint) {
        (Some(archive), endpoint) => {
            ArchiveTarget::parse(archive, endpoint, data_dir).map_err(inspect::Failure::Usage)?
        }
        (None, Some(endpoint)) => {
            return Err(inspect::Failure::Usage(format!(
                "--s3-endpoint {endpoint} is set but --archive is not an s3:// target"
            )))
        }
        (None, None) => ArchiveTarget::default_for(data_dir),
    };
    let report = doctor::run(data_dir, shards, &archive);
    print!("{}", report.render());
    if report.passed() {
        Ok(())
    } else {
        Err(inspect::Failure::Check)
    }
}

fn main() -> ExitCode {
    // Like any Unix filter, end quietly when the reader of stdout goes away
    // (`ringlog inspect ... | head`) instead of panicking on EPIPE.
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Bench(_)) {
        // SAFETY: called before any other thread exists; SIG_DFL is always
        // valid. Never for `serve` or `bench`: a peer that disconnects
        // while we write must cost an EPIPE on that connection, not the
        // process (a bench run against a dying broker still reports).
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // The broker reports its life cycle at `info`; the other commands print
    // their own results and stay quiet below `warn`.
    init_logging(match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    });
    let outcome = match cli.command {
        // No thread has been started yet: `serve::run` blocks the shutdown
        // signals before it starts any, so every thread inherits the mask.
        Command::Serve(args) => return serve::run(args),
        Command::Topic(args) => return topic::run(args),
        Command::Group(args) => return group::run(args),
        Command::Shard(args) => return shard::run(args),
        Command::Partition(args) => return partition::run(args),
        Command::Search(args) => return search::run(args),
        Command::User(args) => return user::run(args),
        Command::Acl(args) => return acl::run(args),
        Command::Bench(args) => return ringlog_bench::run(*args),
        Command::Inspect {
            what: InspectCommand::Segment { file, quiet },
        } => inspect::segment(&file, quiet),
        Command::Inspect {
            what:
                InspectCommand::Archive {
                    path,
                    s3_endpoint,
                    quiet,
                },
        } => inspect::archive(&path, s3_endpoint.as_deref(), quiet),
        Command::Inspect {
            what: InspectCommand::Meta { data_dir, quiet },
        } => inspect::meta(&data_dir, quiet),
        Command::Doctor {
            data_dir,
            shards,
            archive,
            s3_endpoint,
        } => run_doctor(
            &data_dir,
            shards,
            archive.as_deref(),
            s3_endpoint.as_deref(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(inspect::Failure::Check) => ExitCode::from(1),
        Err(inspect::Failure::Corrupt(message)) => {
            eprintln!("ringlog: {message}");
            ExitCode::from(1)
        }
        Err(inspect::Failure::Usage(message)) => {
            eprintln!("ringlog: {message}");
            ExitCode::from(2)
        }
    }
}
