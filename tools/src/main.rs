//! `ringlog` — the ringlog binary: admin and inspection commands today;
//! `serve` arrives with the Kafka front end.
//!
//! Exit codes: 0 success, 1 a check failed (corruption found, doctor
//! verdict FAIL), 2 bad usage or an I/O error.

mod doctor;
mod inspect;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Print and verify on-disk files.
    Inspect {
        #[command(subcommand)]
        what: InspectCommand,
    },
    /// Check that this host can run ringlog: kernel, io_uring, memlock, O_DIRECT.
    Doctor {
        /// Data directory to check (created if missing).
        #[arg(long, default_value = "./data", env = "RINGLOG_DATA_DIR")]
        data_dir: PathBuf,
        /// Shards the host should support (memlock need = shards x 512 KiB).
        #[arg(long, default_value_t = 2, env = "RINGLOG_SHARDS")]
        shards: usize,
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
    /// Print the metadata log's snapshots and events and verify every crc.
    Meta {
        /// The data directory (its `meta/` subdirectory is read).
        data_dir: PathBuf,
        /// Print only the summary lines.
        #[arg(long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    // Like any Unix filter, end quietly when the reader of stdout goes away
    // (`ringlog inspect ... | head`) instead of panicking on EPIPE.
    // SAFETY: called before any other thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RINGLOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Inspect {
            what: InspectCommand::Segment { file, quiet },
        } => inspect::segment(&file, quiet),
        Command::Inspect {
            what: InspectCommand::Meta { data_dir, quiet },
        } => inspect::meta(&data_dir, quiet),
        Command::Doctor { data_dir, shards } => {
            let report = doctor::run(&data_dir, shards);
            print!("{}", report.render());
            if report.passed() {
                Ok(())
            } else {
                Err(inspect::Failure::Check)
            }
        }
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
