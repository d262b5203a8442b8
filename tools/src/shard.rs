//! `ringlog shard`: each shard's load and partitions, and rebalancing
//! partitions across shards, on a running broker through the admin API
//! ([`crate::admin_client`]).
//!
//! The renderers are pure functions of the API's documents, so the tests
//! check them without a broker; `--json` prints the document as the
//! broker sent it, for scripts.

use crate::admin_api::{
    BalanceByJson, RebalanceJson, RebalancedJson, ShardsJson, REBALANCE_PATH, SHARDS_PATH,
};
use crate::admin_client::AdminArgs;
use crate::kafka_client::{exit_code, render_table, ClientError};
use crate::partition::render_moved;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `ringlog shard` and its options.
#[derive(Args)]
pub struct ShardArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: ShardCommand,
}

/// The `ringlog shard` subcommands.
#[derive(Subcommand)]
pub enum ShardCommand {
    /// One row per shard: pinned CPU, partitions, bytes on disk, produce
    /// and fetch MB/s over the last 10 s, busy fraction, requests in flight.
    List {
        /// Print the broker's JSON document (GET /v1/shards) instead.
        #[arg(long)]
        json: bool,
    },
    /// Plan moves that even out load (or partition counts) across shards,
    /// print the plan and apply it.
    Rebalance {
        /// Print the plan without moving anything.
        #[arg(long)]
        dry_run: bool,
        /// What to even out: produce plus fetch MB/s, or partition counts.
        #[arg(long, value_enum, default_value_t = BalanceByJson::Load)]
        by: BalanceByJson,
        /// Print the broker's JSON document (POST /v1/shards/rebalance) instead.
        #[arg(long)]
        json: bool,
    },
}

/// Bytes in binary units, one decimal: `512 B`, `1.5 KiB`, `20.0 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `ringlog shard list`: a table, one row per shard.
pub fn render_shard_list(shards: &ShardsJson) -> String {
    let rows: Vec<Vec<String>> = shards
        .shards
        .iter()
        .map(|shard| {
            vec![
                shard.shard.to_string(),
                shard.cpu.map_or("-".to_string(), |cpu| cpu.to_string()),
                shard.partitions.len().to_string(),
                human_bytes(shard.bytes),
                format!("{:.2}", shard.produce_mb_s),
                format!("{:.2}", shard.fetch_mb_s),
                format!("{:.1}%", shard.busy * 100.0),
                shard.in_flight.to_string(),
            ]
        })
        .collect();
    render_table(
        &[
            "SHARD",
            "CPU",
            "PARTITIONS",
            "DISK",
            "PRODUCE MB/S",
            "FETCH MB/S",
            "BUSY",
            "IN FLIGHT",
        ],
        &rows,
    )
}

/// `ringlog shard rebalance`: what was evened out, the plan (one line per
/// move), each shard's measure before and after, and the moves done with
/// how long each partition could not be written.
pub fn render_rebalance(rebalanced: &RebalancedJson) -> String {
    let (by, unit, decimals) = match rebalanced.by {
        BalanceByJson::Load => ("load", "MB/S", 2),
        BalanceByJson::Count => ("count", "PARTITIONS", 0),
    };
    let planned = match rebalanced.plan.len() {
        0 => "no moves planned".to_string(),
        1 => "1 move planned".to_string(),
        n => format!("{n} moves planned"),
    };
    let dry_run = if rebalanced.dry_run && !rebalanced.plan.is_empty() {
        " (dry run: nothing moved)"
    } else {
        ""
    };
    let mut out = format!("rebalance by {by}: {planned}{dry_run}\n");
    for planned in &rebalanced.plan {
        out.push_str(&format!(
            "  {}-{}  shard {} -> shard {}\n",
            planned.topic, planned.partition, planned.from_shard, planned.to_shard
        ));
    }
    let figure = |values: &[f64], shard: usize| {
        values
            .get(shard)
            .map_or("-".to_string(), |v| format!("{v:.decimals$}"))
    };
    let rows: Vec<Vec<String>> = (0..rebalanced.before.len().max(rebalanced.after.len()))
        .map(|shard| {
            vec![
                shard.to_string(),
                figure(&rebalanced.before, shard),
                figure(&rebalanced.after, shard),
            ]
        })
        .collect();
    out.push_str(&render_table(
        &["SHARD", &format!("BEFORE {unit}"), &format!("AFTER {unit}")],
        &rows,
    ));
    for moved in &rebalanced.moved {
        out.push_str(&render_moved(moved));
    }
    out
}

/// Runs `ringlog shard`: prints the result on stdout and returns 0, or
/// prints `ringlog shard: <error>` on stderr and returns 1.
pub fn run(args: ShardArgs) -> ExitCode {
    exit_code("shard", execute(&args).err())
}

fn execute(args: &ShardArgs) -> Result<(), ClientError> {
    let client = args.admin.client()?;
    match &args.command {
        ShardCommand::List { json } => {
            let answer = client.get(SHARDS_PATH)?;
            if *json {
                print!("{answer}");
            } else {
                print!("{}", render_shard_list(&client.decode(&answer)?));
            }
        }
        ShardCommand::Rebalance { dry_run, by, json } => {
            let body = RebalanceJson {
                by: *by,
                dry_run: *dry_run,
            };
            let answer = client.post(REBALANCE_PATH, &body)?;
            if *json {
                print!("{answer}");
            } else {
                print!("{}", render_rebalance(&client.decode(&answer)?));
            }
        }
    }
    Ok(())
}
