//! `ringlog partition move`: moves a partition to another shard of a
//! running broker, live, through the admin API ([`crate::admin_client`]).
//!
//! The broker does the work (see the README): the source shard stops
//! appends, drains those in flight and their fdatasync, and closes the
//! log; the controller records the new placement; the target shard opens
//! the same files. The command prints how long the partition could not be
//! written.

use crate::admin_api::{MoveJson, MovedJson, MOVE_PATH};
use crate::admin_client::AdminArgs;
use crate::kafka_client::{exit_code, ClientError};
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `ringlog partition` and its options.
#[derive(Args)]
pub struct PartitionArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: PartitionCommand,
}

/// The `ringlog partition` subcommands.
#[derive(Subcommand)]
pub enum PartitionCommand {
    /// Move a partition to another shard, live; prints how long it could
    /// not be written.
    Move {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The shard to move it to.
        #[arg(long, value_name = "N")]
        to_shard: u32,
    },
}

/// `moved t-0 from shard 0 to shard 1; unwritable for 3.2 ms`, and a
/// newline.
pub fn render_moved(moved: &MovedJson) -> String {
    format!(
        "moved {}-{} from shard {} to shard {}; unwritable for {:.1} ms\n",
        moved.topic, moved.partition, moved.from_shard, moved.to_shard, moved.unavailable_ms
    )
}

/// Runs `ringlog partition`: prints the result on stdout and returns 0, or
/// prints `ringlog partition: <error>` on stderr and returns 1.
pub fn run(args: PartitionArgs) -> ExitCode {
    exit_code("partition", execute(&args).err())
}

fn execute(args: &PartitionArgs) -> Result<(), ClientError> {
    let client = args.admin.client()?;
    match &args.command {
        PartitionCommand::Move {
            topic,
            partition,
            to_shard,
        } => {
            let body = MoveJson {
                topic: topic.clone(),
                partition: *partition,
                to_shard: *to_shard,
            };
            let answer = client.post(MOVE_PATH, &body)?;
            print!("{}", render_moved(&client.decode(&answer)?));
        }
    }
    Ok(())
}
