//! The operator's calls into a running broker: shard load and placement,
//! partition moves and rebalancing, as plain data, and the mailbox that
//! carries them from the `--http` thread to the controller's shard.
//!
//! Layer: foundation (see the crate docs). The controller executes the
//! calls ([`crate::controller`]); start-up hands it the mailbox's receiving
//! end; the HTTP endpoint of `ringlog serve` holds the sending end and
//! turns answers into JSON.
//!
//! Why a bounded channel and a blocking wait rather than an HTTP server on
//! a shard: the shards never parse HTTP, and an operator's call is rare
//! and may take a while (a move waits for in-flight appends and their
//! fdatasync). The HTTP thread blocks on the answer; the shard side bounds
//! every step, so the wait ends.

use crate::wake;
use futures_channel::{mpsc, oneshot};
use std::sync::Mutex;

/// Calls queued for the controller before more are refused (an operator
/// issues a few; more means a script gone wrong, and it is told so).
pub const ADMIN_CALLS_QUEUED_MAX: usize = 16;

/// What a shard reports of one partition it owns.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionLoad {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Bytes of its log on the local disk.
    pub bytes: u64,
    /// Bytes produced per second over the last [`crate::load::LOAD_WINDOW_S`] seconds.
    pub produce_bytes_per_s: f64,
    /// Bytes fetched per second over the same window.
    pub fetch_bytes_per_s: f64,
}

/// What a shard reports of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardLoad {
    /// Shard id.
    pub shard: u32,
    /// The CPU it is pinned to, if any.
    pub cpu: Option<usize>,
    /// Partitions it owns, by topic then index.
    pub partitions: Vec<PartitionLoad>,
    /// Fraction of the last window its reactor spent running tasks (0..=1).
    pub busy: f64,
    /// Partition requests it is executing now.
    pub in_flight: u64,
}

/// A finished move.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The shard that owned it.
    pub from_shard: u32,
    /// The shard that owns it now.
    pub to_shard: u32,
    /// How long the partition could not be written: from the moment the
    /// source refused new appends to the moment every router could route
    /// to the target.
    pub unavailable_ms: f64,
}

/// What a rebalance evens out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceBy {
    /// Produce plus fetch bytes per second.
    Load,
    /// Partition counts.
    Count,
}

/// One move of a rebalance plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Its shard now.
    pub from_shard: u32,
    /// Its shard after the move.
    pub to_shard: u32,
}

/// A rebalance: the plan, and what applying it did.
#[derive(Clone, Debug, PartialEq)]
pub struct Rebalanced {
    /// What was evened out.
    pub by: BalanceBy,
    /// Whether the plan was only printed.
    pub dry_run: bool,
    /// Each shard's measure (bytes per second, or partitions) before.
    pub before: Vec<f64>,
    /// Each shard's measure once the plan is applied.
    pub after: Vec<f64>,
    /// The moves planned, in the order they run.
    pub plan: Vec<PlannedMove>,
    /// The moves done (empty on a dry run).
    pub moved: Vec<Moved>,
}

/// A call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// Every shard's load and partitions.
    Shards,
    /// Moves one partition to another shard.
    Move {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The shard to move it to.
        to_shard: u32,
    },
    /// Plans (and unless `dry_run`, applies) moves that even out `by`.
    Rebalance {
        /// What to even out.
        by: BalanceBy,
        /// Plan only.
        dry_run: bool,
    },
}

/// The answer to a call.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminAnswer {
    /// To [`AdminRequest::Shards`], by shard id.
    Shards(Vec<ShardLoad>),
    /// To [`AdminRequest::Move`].
    Moved(Moved),
    /// To [`AdminRequest::Rebalance`].
    Rebalanced(Rebalanced),
}

/// Why a call failed, as an HTTP endpoint reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminFailureKind {
    /// The call names something impossible (a shard that does not exist).
    BadRequest,
    /// The topic or partition does not exist.
    NotFound,
    /// Another operation on the same thing is running.
    Conflict,
    /// The broker cannot take calls now (queue full, shutting down).
    Unavailable,
    /// Storage or an internal step failed; the message says which.
    Internal,
}

impl AdminFailureKind {
    /// The HTTP status that reports it.
    pub fn http_status(self) -> u16 {
        match self {
            AdminFailureKind::BadRequest => 400,
            AdminFailureKind::NotFound => 404,
            AdminFailureKind::Conflict => 409,
            AdminFailureKind::Unavailable => 503,
            AdminFailureKind::Internal => 500,
        }
    }
}

/// A failed call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AdminFailure {
    /// Its kind.
    pub kind: AdminFailureKind,
    /// What went wrong, naming the thing.
    pub message: String,
}

impl AdminFailure {
    /// A failure of `kind`.
    pub fn new(kind: AdminFailureKind, message: impl Into<String>) -> Self {
        AdminFailure {
            kind,
            message: message.into(),
        }
    }
}

/// The outcome of a call.
pub type AdminOutcome = Result<AdminAnswer, AdminFailure>;

/// A call in the mailbox, with where its answer goes.
pub struct AdminCall {
    /// The call.
    pub request: AdminRequest,
    /// Where the answer goes.
    pub reply: oneshot::Sender<AdminOutcome>,
}

/// The mailbox between the `--http` thread and the controller.
pub struct AdminMailbox {
    sender: mpsc::Sender<AdminCall>,
    receiver: Mutex<Option<mpsc::Receiver<AdminCall>>>,
}

impl Default for AdminMailbox {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(ADMIN_CALLS_QUEUED_MAX);
        AdminMailbox {
            sender,
            receiver: Mutex::new(Some(receiver)),
        }
    }
}

impl AdminMailbox {
    /// Sends `request` and blocks the calling thread until the answer.
    /// For threads outside the shards (the HTTP endpoint) only.
    pub fn call(&self, request: AdminRequest) -> AdminOutcome {
        let (reply, answer) = wake::channel();
        let unavailable = |why: &str| AdminFailure::new(AdminFailureKind::Unavailable, why);
        // One HTTP thread calls at a time, so the queue holds at most
        // [`ADMIN_CALLS_QUEUED_MAX`] plus one slot per clone in flight.
        let mut sender = self.sender.clone();
        sender.try_send(AdminCall { request, reply }).map_err(|e| {
            if e.is_full() {
                unavailable("too many admin calls queued; try again")
            } else {
                unavailable("the broker is not taking admin calls (starting or stopping)")
            }
        })?;
        futures_lite::future::block_on(answer)
            .unwrap_or_else(|_| Err(unavailable("the broker stopped before answering")))
    }

    /// The receiving end, once: the controller's shard takes it at start.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<AdminCall>> {
        self.receiver.lock().ok()?.take()
    }
}
