//! `ringlog group`: list, describe and delete consumer groups and reset
//! their committed offsets, over the Kafka protocol (the shared admin
//! client of [`crate::kafka_client`]), like Kafka's
//! `kafka-consumer-groups.sh`.
//!
//! Why it is built this way:
//!
//! * One broker. Every request goes to `--bootstrap`: ringlog is a single
//!   broker that coordinates every group and leads every partition. On a
//!   multi-broker Kafka cluster a broker that is not the group's
//!   coordinator answers NOT_COORDINATOR (printed like any Kafka error),
//!   and one that does not lead a partition NOT_LEADER_OR_FOLLOWER (shown
//!   as that partition's log end).
//! * `describe` joins three answers: DescribeGroups (state, members and
//!   their assignments), OffsetFetch with a null topic list (every
//!   partition the group committed) and ListOffsets latest (the log end),
//!   whose difference is the lag. OffsetFetch v1 cannot carry a null list,
//!   so it is never sent; v8+ asks through the `groups` array, older
//!   versions through the single-group fields.
//! * Assignments are shown decoded when the group speaks the `consumer`
//!   protocol (the embedded ConsumerProtocolAssignment: a version, then
//!   topics and partitions); anything else, or bytes that do not decode,
//!   are shown as bytes, so a foreign protocol never fails the command.
//! * `reset-offsets` refuses while the group has members: a live member
//!   would overwrite the reset with its next commit. It commits the way a
//!   tool outside the group does (generation -1, empty member id), and
//!   clamps every new offset into [earliest, latest] like Kafka's tool, so
//!   a reset never points outside the log.
//! * Up to DescribeGroups v5 an unknown group is answered as state `Dead`
//!   with no members; v6 answers GROUP_ID_NOT_FOUND. `describe` reports
//!   both as GROUP_ID_NOT_FOUND (when the group has no committed offsets
//!   either), so the outcome does not depend on the version.
//!
//! The request builders, the answer readers, the offset arithmetic and the
//! renderers are pure functions, so the tests check them with bytes made
//! by the broker-side codecs, without a broker; only [`run()`] talks to one.
//! They live in one file per job and are re-exported here, so callers name
//! them `group::...` whichever file holds them.

mod answers;
mod args;
mod render;
mod requests;
mod run;

pub use answers::*;
pub use args::*;
pub use render::*;
pub use requests::*;
pub use run::{check_resettable, new_offset, PartitionOffsets};

use crate::kafka_client::exit_code;
use std::process::ExitCode;

/// The client id in every request header.
pub const CLIENT_ID: &str = "ringlog-group";
/// The protocol type of Kafka consumers, whose assignments this command
/// can decode.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// ListOffsets marker timestamp for the log start.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets marker timestamp for the log end.
pub const LATEST_TIMESTAMP: i64 = -1;
/// Lowest OffsetFetch version sent: v1 cannot ask for every partition.
pub const OFFSET_FETCH_VERSION_MIN: i16 = 2;
/// OffsetFetch version that names groups in the `groups` array.
pub const OFFSET_FETCH_GROUPS_VERSION: i16 = 8;
/// ListGroups version that reports states and filters by them.
pub const LIST_GROUPS_STATES_VERSION: i16 = 4;
/// The group states Kafka reports, in its spelling.
pub const GROUP_STATES: &[&str] = &[
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
];
/// States in which a group has no members, so its offsets may be reset.
pub const RESETTABLE_STATES: &[&str] = &["Empty", "Dead"];
/// Bytes of an undecodable assignment shown in hex; the rest are counted.
pub const ASSIGNMENT_HEX_BYTES_MAX: usize = 32;
/// Groups one `delete` may name (one DeleteGroups request).
pub const DELETE_GROUPS_MAX: usize = 1000;

const _: () = assert!(OFFSET_FETCH_VERSION_MIN < OFFSET_FETCH_GROUPS_VERSION);
const _: () = assert!(EARLIEST_TIMESTAMP < LATEST_TIMESTAMP && LATEST_TIMESTAMP < 0);

/// Runs `ringlog group`: prints the result on stdout and returns 0, or
/// prints each failure as `ringlog group: <error>` on stderr and returns 1.
pub fn run(args: GroupArgs) -> ExitCode {
    let failures = match run::execute(&args) {
        Ok(failures) => failures,
        Err(err) => vec![err],
    };
    exit_code("group", failures)
}
