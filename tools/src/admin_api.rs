//! The admin API of `ringlog serve --http`: its JSON documents and its
//! routing, shared by the endpoint (which encodes answers and decodes
//! request bodies) and by `ringlog shard`, `ringlog partition` and
//! `ringlog topic describe` (which do the reverse).
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /v1/shards` | none | [`ShardsJson`] |
//! | `GET /v1/partitions` | none | [`PlacementsJson`] |
//! | `POST /v1/partitions/move` | [`MoveJson`] | [`MovedJson`] |
//! | `POST /v1/shards/rebalance` | [`RebalanceJson`] | [`RebalancedJson`] |
//!
//! A failure is answered with the status of its
//! [`AdminFailureKind`](ringlog_shard::admin::AdminFailureKind) and an
//! [`ErrorJson`].
//!
//! Why mirror types here rather than serde on the shard crate's: the JSON
//! shape is this endpoint's promise to operators and scripts (MB/s rather
//! than bytes per second, per-shard totals, names like `to_shard`), and
//! the shard crate stays free of a serialisation format it never reads.
//!
//! Request bodies refuse unknown fields, so a typo (`"dryrun": true`) is
//! an error rather than a silently applied default. Answers do not, so a
//! client keeps working against a broker that adds fields.
//!
//! [`respond`] is pure but for the call it is handed, which is how the
//! tests route requests without a broker.

use ringlog_shard::admin::{
    AdminAnswer, AdminFailure, AdminOutcome, AdminRequest, BalanceBy, Moved, PartitionLoad,
    PlannedMove, Rebalanced, ShardLoad,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bytes in the MB of every `*_mb_s` figure (decimal, as network and disk
/// rates are quoted).
pub const BYTES_PER_MB: f64 = 1e6;

/// `GET /v1/shards`.
pub const SHARDS_PATH: &str = "/v1/shards";
/// `GET /v1/partitions`.
pub const PARTITIONS_PATH: &str = "/v1/partitions";
/// `POST /v1/partitions/move`.
pub const MOVE_PATH: &str = "/v1/partitions/move";
/// `POST /v1/shards/rebalance`.
pub const REBALANCE_PATH: &str = "/v1/shards/rebalance";

/// The content type of every admin answer.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// `GET /v1/shards`: every shard, by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardsJson {
    /// The shards.
    pub shards: Vec<ShardJson>,
}

/// One shard's load and partitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardJson {
    /// Shard id.
    pub shard: u32,
    /// The CPU it is pinned to; `null` when not pinned.
    pub cpu: Option<usize>,
    /// Its partitions, by topic then index.
    pub partitions: Vec<PartitionLoadJson>,
    /// Bytes on disk of its partitions.
    pub bytes: u64,
    /// MB/s produced to its partitions over the load window.
    pub produce_mb_s: f64,
    /// MB/s fetched from its partitions over the load window.
    pub fetch_mb_s: f64,
    /// Fraction of the load window its reactor was busy (0..=1).
    pub busy: f64,
    /// Partition requests it is executing now.
    pub in_flight: u64,
}

/// One partition's size and traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionLoadJson {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Bytes of its log on disk.
    pub bytes: u64,
    /// MB/s produced over the load window.
    pub produce_mb_s: f64,
    /// MB/s fetched over the load window.
    pub fetch_mb_s: f64,
}

/// `GET /v1/partitions`: which shard owns each partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementsJson {
    /// Every partition, by topic then index.
    pub partitions: Vec<PlacementJson>,
}

/// Where one partition lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlacementJson {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The shard that owns it.
    pub shard: u32,
}

/// The body of `POST /v1/partitions/move`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveJson {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The shard to move it to.
    pub to_shard: u32,
}

/// The answer to a move: where the partition was and how long it could
/// not be written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MovedJson {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The shard that owned it.
    pub from_shard: u32,
    /// The shard that owns it now.
    pub to_shard: u32,
    /// Milliseconds appends to it were refused.
    pub unavailable_ms: f64,
}

/// What a rebalance evens out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BalanceByJson {
    /// Produce plus fetch MB/s.
    #[default]
    Load,
    /// Partition counts.
    Count,
}

/// The body of `POST /v1/shards/rebalance`; an empty body takes the
/// defaults (by load, applied).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebalanceJson {
    /// What to even out.
    #[serde(default)]
    pub by: BalanceByJson,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to a rebalance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RebalancedJson {
    /// What was evened out.
    pub by: BalanceByJson,
    /// Whether the plan was only computed.
    pub dry_run: bool,
    /// Each shard's measure before, by shard id: produce plus fetch MB/s
    /// (by load) or partitions (by count).
    pub before: Vec<f64>,
    /// Each shard's measure once the plan is applied.
    pub after: Vec<f64>,
    /// The moves planned, in the order they run.
    pub plan: Vec<PlannedMoveJson>,
    /// The moves done (none on a dry run).
    pub moved: Vec<MovedJson>,
}

/// One planned move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMoveJson {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Its shard now.
    pub from_shard: u32,
    /// Its shard after the move.
    pub to_shard: u32,
}

/// Every failed call's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorJson {
    /// What went wrong, naming the thing.
    pub error: String,
}

fn mb_s(bytes_per_s: f64) -> f64 {
    bytes_per_s / BYTES_PER_MB
}

impl From<&[ShardLoad]> for ShardsJson {
    fn from(shards: &[ShardLoad]) -> Self {
        let shards = shards
            .iter()
            .map(|shard| {
                let partitions: Vec<PartitionLoadJson> = shard
                    .partitions
                    .iter()
                    .map(|p| PartitionLoadJson {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        bytes: p.bytes,
                        produce_mb_s: mb_s(p.produce_bytes_per_s),
                        fetch_mb_s: mb_s(p.fetch_bytes_per_s),
                    })
                    .collect();
                // Folded from +0.0: `Sum` of no floats is -0.0, which
                // would print as "-0.0" for a shard without partitions.
                let total = |rate: fn(&PartitionLoad) -> f64| {
                    mb_s(shard.partitions.iter().map(rate).fold(0.0, |a, b| a + b))
                };
                ShardJson {
                    shard: shard.shard,
                    cpu: shard.cpu,
                    bytes: shard.partitions.iter().map(|p| p.bytes).sum(),
                    produce_mb_s: total(|p| p.produce_bytes_per_s),
                    fetch_mb_s: total(|p| p.fetch_bytes_per_s),
                    partitions,
                    busy: shard.busy,
                    in_flight: shard.in_flight,
                }
            })
            .collect();
        ShardsJson { shards }
    }
}

impl From<&[ShardLoad]> for PlacementsJson {
    fn from(shards: &[ShardLoad]) -> Self {
        let mut partitions: Vec<PlacementJson> = shards
            .iter()
            .flat_map(|shard| {
                shard.partitions.iter().map(|p| PlacementJson {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    shard: shard.shard,
                })
            })
            .collect();
        partitions.sort();
        PlacementsJson { partitions }
    }
}

impl From<&Moved> for MovedJson {
    fn from(moved: &Moved) -> Self {
        MovedJson {
            topic: moved.topic.clone(),
            partition: moved.partition,
            from_shard: moved.from_shard,
            to_shard: moved.to_shard,
            unavailable_ms: moved.unavailable_ms,
        }
    }
}

impl From<&PlannedMove> for PlannedMoveJson {
    fn from(planned: &PlannedMove) -> Self {
        PlannedMoveJson {
            topic: planned.topic.clone(),
            partition: planned.partition,
            from_shard: planned.from_shard,
            to_shard: planned.to_shard,
        }
    }
}

impl From<BalanceBy> for BalanceByJson {
    fn from(by: BalanceBy) -> Self {
        match by {
            BalanceBy::Load => BalanceByJson::Load,
            BalanceBy::Count => BalanceByJson::Count,
        }
    }
}

impl From<BalanceByJson> for BalanceBy {
    fn from(by: BalanceByJson) -> Self {
        match by {
            BalanceByJson::Load => BalanceBy::Load,
            BalanceByJson::Count => BalanceBy::Count,
        }
    }
}

impl From<&Rebalanced> for RebalancedJson {
    fn from(rebalanced: &Rebalanced) -> Self {
        // The broker measures load in bytes per second; the API speaks MB/s.
        let measure = |values: &[f64]| -> Vec<f64> {
            match rebalanced.by {
                BalanceBy::Load => values.iter().map(|v| mb_s(*v)).collect(),
                BalanceBy::Count => values.to_vec(),
            }
        };
        RebalancedJson {
            by: rebalanced.by.into(),
            dry_run: rebalanced.dry_run,
            before: measure(&rebalanced.before),
            after: measure(&rebalanced.after),
            plan: rebalanced.plan.iter().map(PlannedMoveJson::from).collect(),
            moved: rebalanced.moved.iter().map(MovedJson::from).collect(),
        }
    }
}

/// An admin answer before HTTP framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The methods the path takes, for the `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// JSON, ending in a newline.
    pub body: String,
}

impl Reply {
    pub(crate) fn ok(document: &impl Serialize) -> Reply {
        Reply {
            status: 200,
            allow: None,
            body: to_json_line(document),
        }
    }

    /// An error answer: `{"error": message}`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply {
            status,
            allow: None,
            body: to_json_line(&ErrorJson {
                error: message.into(),
            }),
        }
    }

    fn failure(failure: AdminFailure) -> Reply {
        Reply::error(failure.kind.http_status(), failure.message)
    }
}

fn to_json_line(document: &impl Serialize) -> String {
    let mut text = serde_json::to_string(document).expect("admin documents always serialise");
    text.push('\n');
    text
}

/// The admin endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Shards,
    Partitions,
    Move,
    Rebalance,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::Shards,
        Endpoint::Partitions,
        Endpoint::Move,
        Endpoint::Rebalance,
    ];

    fn path(self) -> &'static str {
        match self {
            Endpoint::Shards => SHARDS_PATH,
            Endpoint::Partitions => PARTITIONS_PATH,
            Endpoint::Move => MOVE_PATH,
            Endpoint::Rebalance => REBALANCE_PATH,
        }
    }

    fn method(self) -> &'static str {
        match self {
            Endpoint::Shards | Endpoint::Partitions => "GET",
            Endpoint::Move | Endpoint::Rebalance => "POST",
        }
    }
}

/// An example body of each POST endpoint, for error messages.
const MOVE_EXAMPLE: &str = r#"{"topic":"t","partition":0,"to_shard":1}"#;
/// See [`MOVE_EXAMPLE`].
const REBALANCE_EXAMPLE: &str = r#"{"by":"load","dry_run":true}"#;

/// The answer to `method path` with request body `body`; `call` carries a
/// request to the broker and waits for its outcome. A GET ignores its
/// body; an empty POST body reads as `{}`.
pub fn respond(
    method: &str,
    path: &str,
    body: &[u8],
    call: impl FnOnce(AdminRequest) -> AdminOutcome,
) -> Reply {
    let Some(endpoint) = Endpoint::ALL.into_iter().find(|e| e.path() == path) else {
        let known: Vec<String> = Endpoint::ALL
            .iter()
            .map(|e| format!("{} {}", e.method(), e.path()))
            .collect();
        return Reply::error(
            404,
            format!("no endpoint at {path}; there are {}", known.join(", ")),
        );
    };
    let expected = endpoint.method();
    if method != expected {
        return Reply {
            allow: Some(expected),
            ..Reply::error(405, format!("{path} takes {expected}, not {method}"))
        };
    }
    let request = match endpoint {
        Endpoint::Shards | Endpoint::Partitions => AdminRequest::Shards,
        Endpoint::Move => match decode::<MoveJson>(body, MOVE_EXAMPLE) {
            Ok(MoveJson {
                topic,
                partition,
                to_shard,
            }) => AdminRequest::Move {
                topic,
                partition,
                to_shard,
            },
            Err(reply) => return reply,
        },
        Endpoint::Rebalance => match decode::<RebalanceJson>(body, REBALANCE_EXAMPLE) {
            Ok(RebalanceJson { by, dry_run }) => AdminRequest::Rebalance {
                by: by.into(),
                dry_run,
            },
            Err(reply) => return reply,
        },
    };
    match (endpoint, call(request)) {
        (_, Err(failure)) => Reply::failure(failure),
        (Endpoint::Shards, Ok(AdminAnswer::Shards(shards))) => {
            Reply::ok(&ShardsJson::from(shards.as_slice()))
        }
        (Endpoint::Partitions, Ok(AdminAnswer::Shards(shards))) => {
            Reply::ok(&PlacementsJson::from(shards.as_slice()))
        }
        (Endpoint::Move, Ok(AdminAnswer::Moved(moved))) => Reply::ok(&MovedJson::from(&moved)),
        (Endpoint::Rebalance, Ok(AdminAnswer::Rebalanced(rebalanced))) => {
            Reply::ok(&RebalancedJson::from(&rebalanced))
        }
        (_, Ok(other)) => Reply::error(
            500,
            format!("the broker answered {path} with a mismatched answer: {other:?}"),
        ),
    }
}

/// A request body as `T`, or a 400 naming what is wrong and showing
/// `example`.
fn decode<T: DeserializeOwned>(body: &[u8], example: &str) -> Result<T, Reply> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| {
        Reply::error(
            400,
            format!("bad request body: {err} (expected JSON like {example})"),
        )
    })
}
