//! `ringlog-bench`: the same load generator as `ringlog bench`, as its own
//! binary for hosts that only generate load.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ringlog-bench",
    version,
    about = "Kafka load generator and disk ceiling (same as `ringlog bench`)"
)]
struct Cli {
    #[command(flatten)]
    bench: ringlog_bench::BenchArgs,
}

fn main() -> ExitCode {
    ringlog_bench::run(Cli::parse().bench)
}
