//! # ringlog-bench
//!
//! `ringlog bench`: a Kafka load generator and a raw-disk ceiling, for
//! sizing hardware, comparing brokers, and holding ringlog to its goals.
//!
//! What makes its numbers trustworthy, and where each rule lives:
//!
//! * **It speaks Kafka itself** ([`wire`], [`conn`], [`group`]): requests encoded by
//!   `kafka-protocol` and framed by `ringlog_protocol::client` (the same
//!   code as the admin commands), versions negotiated with ApiVersions, partition
//!   leaders from Metadata — so it runs unchanged against ringlog or any
//!   Kafka broker, and what it sends is what Kafka clients send
//!   ([`records`]: RecordBatch v2, all five codecs, Kafka's batching and
//!   partitioners in [`produce`]).
//! * **Open loop at a fixed rate** ([`schedule`]): latency is measured
//!   from when a message was due, not when the generator got round to
//!   sending it, so a broker stall is charged to every message it delayed
//!   (no coordinated omission).
//! * **Thread-per-core** ([`runner`]): one glommio executor per
//!   `--threads`, each owning its connections and histograms, so the
//!   generator adds no cross-thread queueing of its own.
//! * **HdrHistogram** ([`stats`], [`report`], [`plot`]): every latency
//!   recorded, 3 significant digits from 1 µs to an hour; percentiles,
//!   `.hgrm` files and SVG plots from the same data.
//! * **Counted like the broker counts** and **verified**: produced
//!   records and RecordBatch bytes match ringlog's `/metrics`; at the end
//!   of an acks=1/all run the partitions' high watermarks must have
//!   advanced by at least the acknowledged count (DESIGN §7: a throughput
//!   figure counts only when every acknowledged record is readable).
//! * **Failures are loud**: errors are counted by kind and printed, a
//!   broker that stops answering costs at most `--request-timeout-ms`,
//!   and any error makes the exit code 1.
//! * **The ceiling is measured, not assumed** ([`commands::disk`]): O_DIRECT
//!   sequential writes at the segment write size and fdatasync latency on
//!   the same disk, via `io-uring` directly, so broker results are stated
//!   as ratios of what the hardware can do.
//!
//! Each command's body is in [`commands`]; the workloads they drive on
//! the load-generator threads are [`produce`], [`consume`] and [`requests`].
//!
//! Exit codes: 0 clean run; 1 errors during the run, failed verification,
//! or a broker that cannot be reached; 2 bad usage or an output file that
//! cannot be written.
#![warn(missing_docs)]

pub mod cluster;
pub mod commands;
pub mod conn;
pub mod consume;
pub mod group;
pub mod options;
pub mod plot;
pub mod produce;
pub mod records;
pub mod report;
pub mod requests;
pub mod rng;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod units;
pub mod wire;

use std::process::ExitCode;

pub use options::{BenchArgs, BenchCommand};

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad options or an output file that cannot be written (exit 2).
    Usage(String),
    /// The run could not happen or went wrong (exit 1).
    Run(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Run(why)
    }
}

/// Runs `ringlog bench ...` and returns the process exit code.
pub fn run(args: BenchArgs) -> ExitCode {
    runner::install_interrupt_handler();
    let outcome = match args.command {
        BenchCommand::Produce(args) => commands::produce::run(args),
        BenchCommand::Consume(args) => commands::consume::run(args),
        BenchCommand::E2e(args) => commands::e2e::run(args),
        BenchCommand::Requests(args) => commands::requests::run(args),
        BenchCommand::Disk(args) => commands::disk::run(&args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Run(why)) => {
            eprintln!("ringlog bench: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(why)) => {
            eprintln!("ringlog bench: {why}");
            ExitCode::from(2)
        }
    }
}
