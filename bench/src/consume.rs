//! The consumer side of `bench consume` and `bench e2e`: per connection,
//! Fetch long-polls over assigned partitions.
//!
//! A connection reads its partitions (assigned like producers', see
//! [`crate::cluster::assign`]) from the start offsets resolved before the
//! run, one Fetch in flight at a time as Kafka's consumer does per broker.
//! Every returned batch is checked (length, magic, CRC-32C) and counted
//! from its header — records and RecordBatch bytes, the broker's own
//! units. In end-to-end mode each record is also decoded (any codec) and
//! its latency is the consumer's wall clock minus the due time stamped in
//! the value by the producer.
//!
//! A Fetch that parks on an empty partition for `--fetch-max-wait-ms` is
//! not a slow answer, so `consume` records the round trip only of fetches
//! that returned records.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::ResponseError;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{topic_name, Assignment};
use crate::conn::{Conn, Recv};
use crate::options::ClientSecurity;
use crate::records::{count_fetched, value_stamps};
use crate::runner::{stopping, ThreadContext};
use ringlog_protocol::client::{decode_response, error_code_name};

/// Longest Fetch long-poll in end-to-end runs: the consumers must notice
/// the end of the run promptly.
pub const E2E_MAX_WAIT_MS: i32 = 100;

/// The consumer settings every connection shares.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Topic read.
    pub topic: String,
    /// Fetch `max_wait_ms`.
    pub max_wait_ms: i32,
    /// Fetch `max_bytes`.
    pub fetch_max_bytes: i32,
    /// Fetch `partition_max_bytes`.
    pub partition_max_bytes: i32,
    /// Time a request may take beyond its long-poll.
    pub request_timeout: Duration,
    /// TLS and SASL to the brokers (`--security-protocol`).
    pub security: ClientSecurity,
    /// Decode records and measure produce-to-consume latency.
    pub end_to_end: bool,
}

/// One consumer connection's plan.
#[derive(Clone, Debug)]
pub struct ConsumerPlan {
    /// Broker and partitions.
    pub assignment: Assignment,
    /// Where each partition starts.
    pub start: BTreeMap<i32, i64>,
    /// Where each partition ends (`--until-end`), if it does.
    pub end: Option<BTreeMap<i32, i64>>,
}

/// When consumers stop, shared by every consumer thread.
#[derive(Debug, Default)]
pub struct StopRule {
    /// Stop once this many records were consumed (`--records`).
    pub target: Option<u64>,
    /// Records consumed so far, over all connections.
    pub consumed: AtomicU64,
    /// End-to-end runs: producer connections still running.
    pub producers_running: AtomicUsize,
    /// End-to-end runs: records the producers had acknowledged (the
    /// producers add to it).
    pub acknowledged: Arc<AtomicU64>,
    /// End-to-end runs: when the last producer finished, ns after the
    /// start (0 while producing).
    pub producers_done_ns: AtomicU64,
    /// End-to-end runs: how long consumers keep reading after the last
    /// producer finished, for records still on their way.
    pub drain_ns: u64,
}

impl StopRule {
    /// Whether consumers should stop at `now_ns` (`end_ns` is the run's
    /// generation end, which only plain consume runs stop at).
    pub fn should_stop(&self, now_ns: u64, end_ns: Option<u64>, end_to_end: bool) -> bool {
        let consumed = self.consumed.load(Ordering::Relaxed);
        if stopping() || self.target.is_some_and(|t| consumed >= t) {
            return true;
        }
        if !end_to_end {
            return end_ns.is_some_and(|end| now_ns >= end);
        }
        if self.producers_running.load(Ordering::Acquire) > 0 {
            return false;
        }
        let done_ns = self.producers_done_ns.load(Ordering::Acquire);
        consumed >= self.acknowledged.load(Ordering::Acquire)
            || now_ns >= done_ns.saturating_add(self.drain_ns)
    }
}

/// Runs every consumer connection of this thread.
pub async fn thread_body(
    ctx: Rc<ThreadContext>,
    config: Arc<ConsumerConfig>,
    plans: Arc<Vec<ConsumerPlan>>,
    stop: Arc<StopRule>,
) {
    let tasks: Vec<_> = plans
        .iter()
        .filter(|plan| plan.assignment.thread == ctx.thread)
        .map(|plan| {
            glommio::spawn_local(connection(
                ctx.clone(),
                config.clone(),
                plan.clone(),
                stop.clone(),
            ))
        })
        .collect();
    for task in tasks {
        task.await;
    }
}

/// One consumer connection until the stop rule says so.
pub async fn connection(
    ctx: Rc<ThreadContext>,
    config: Arc<ConsumerConfig>,
    plan: ConsumerPlan,
    stop: Arc<StopRule>,
) {
    let label = format!(
        "consumer connection {} to {}",
        plan.assignment.connection, plan.assignment.leader
    );
    if let Err(why) = consume(&ctx, &config, &plan, &stop).await {
        eprintln!("ringlog bench: {label}: {why}");
        ctx.recorder
            .borrow_mut()
            .failed(ctx.clock.now_ns(), 1, &why);
    }
}

fn fetch_request(
    config: &ConsumerConfig,
    offsets: &BTreeMap<i32, i64>,
    max_wait_ms: i32,
) -> FetchRequest {
    let partitions = offsets
        .iter()
        .map(|(&partition, &offset)| {
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(config.partition_max_bytes)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(config.fetch_max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(&config.topic))
            .with_partitions(partitions)])
}

async fn consume(
    ctx: &ThreadContext,
    config: &ConsumerConfig,
    plan: &ConsumerPlan,
    stop: &StopRule,
) -> Result<(), String> {
    let state = FetchState {
        positions: RefCell::new(plan.start.clone()),
        end: plan.end.clone(),
        revoked: Cell::new(false),
    };
    fetch_loop(ctx, config, &plan.assignment.leader, &state, stop).await
}

/// What one fetch loop reads: where each of its partitions is (the next
/// offset to fetch; group members commit these), where each ends
/// (`--until-end`), and whether a rebalance took the partitions away.
#[derive(Debug, Default)]
pub struct FetchState {
    /// Partition -> next offset to fetch.
    pub positions: RefCell<BTreeMap<i32, i64>>,
    /// Partition -> offset to stop at.
    pub end: Option<BTreeMap<i32, i64>>,
    /// Set to end the loop after its current Fetch.
    pub revoked: Cell<bool>,
}

impl FetchState {
    /// The partitions still to fetch, at their positions.
    fn wanted(&self) -> BTreeMap<i32, i64> {
        let positions = self.positions.borrow();
        positions
            .iter()
            .filter(|(p, &offset)| {
                self.end
                    .as_ref()
                    .is_none_or(|end| end.get(p).is_some_and(|&e| offset < e))
            })
            .map(|(&p, &offset)| (p, offset))
            .collect()
    }
}

/// Fetches `state`'s partitions from `leader` until they are all read to
/// their end, the stop rule says so, or they are revoked.
///
/// # Errors
///
/// The connection fails, times out, or returns corrupt batches.
pub async fn fetch_loop(
    ctx: &ThreadContext,
    config: &ConsumerConfig,
    leader: &str,
    state: &FetchState,
    stop: &StopRule,
) -> Result<(), String> {
    let clock = ctx.clock;
    let mut conn = Conn::connect(leader, &config.security, config.request_timeout, 2).await?;
    let version = conn.version::<FetchRequest>()?;
    let max_wait_ms = if config.end_to_end {
        config.max_wait_ms.min(E2E_MAX_WAIT_MS)
    } else {
        config.max_wait_ms
    };
    let max_wait = Duration::from_millis(u64::try_from(max_wait_ms).unwrap_or(0));
    // One Fetch per round; every round is bounded by the request deadline.
    loop {
        let offsets = state.wanted();
        if offsets.is_empty() || state.revoked.get() {
            return Ok(());
        }
        let now = clock.now_ns();
        if stop.should_stop(now, clock.end_ns, config.end_to_end) {
            return Ok(());
        }
        let request = fetch_request(config, &offsets, max_wait_ms);
        let deadline = clock.instant(now) + config.request_timeout + max_wait;
        let correlation_id = conn.send(version, &request, deadline).await?;
        let frame = match conn.recv(deadline).await {
            Recv::Frame(frame) => frame,
            Recv::TimedOut => {
                return Err(format!(
                    "request timed out: no Fetch answer within {} ms",
                    (config.request_timeout + max_wait).as_millis()
                ))
            }
            Recv::Closed(why) => return Err(why),
        };
        let response = decode_response::<FetchRequest>(version, correlation_id, frame)?;
        let done_ns = clock.now_ns();
        let round_trip_ns = done_ns - now;
        if response.error_code != 0 {
            ctx.recorder.borrow_mut().failed(
                done_ns,
                1,
                &format!("Fetch: {}", error_code_name(response.error_code)),
            );
            continue;
        }
        let mut records = 0;
        let mut bytes = 0;
        let mut latencies = Vec::new();
        for topic in &response.responses {
            for p in &topic.partitions {
                let partition = p.partition_index;
                if p.error_code != 0 {
                    ctx.recorder.borrow_mut().failed(
                        done_ns,
                        1,
                        &format!("Fetch: {}", error_code_name(p.error_code)),
                    );
                    if p.error_code == ResponseError::OffsetOutOfRange.code()
                        && p.log_start_offset >= 0
                    {
                        state
                            .positions
                            .borrow_mut()
                            .insert(partition, p.log_start_offset);
                    }
                    continue;
                }
                let Some(data) = &p.records else {
                    continue;
                };
                let counted = count_fetched(data)?;
                if let Some(next) = counted.next_offset {
                    state.positions.borrow_mut().insert(partition, next);
                }
                records += counted.records;
                bytes += counted.bytes;
                if config.end_to_end {
                    let now_wall = clock.wall_ns(clock.now_ns());
                    for batch in &counted.batches {
                        for stamp in value_stamps(batch)? {
                            latencies.push(now_wall.saturating_sub(stamp));
                        }
                    }
                }
            }
        }
        if records == 0 {
            continue;
        }
        stop.consumed.fetch_add(records, Ordering::Relaxed);
        let mut recorder = ctx.recorder.borrow_mut();
        if config.end_to_end {
            recorder.completed(done_ns, records, bytes, latencies);
        } else {
            recorder.completed(done_ns, records, bytes, [round_trip_ns]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_consumers_stop_at_the_end_or_the_target() {
        let rule = StopRule {
            target: Some(100),
            ..StopRule::default()
        };
        assert!(!rule.should_stop(5, Some(10), false));
        assert!(rule.should_stop(10, Some(10), false));
        rule.consumed.store(100, Ordering::Relaxed);
        assert!(rule.should_stop(5, Some(10), false));
        let open = StopRule::default();
        assert!(!open.should_stop(u64::MAX / 2, None, false));
    }

    #[test]
    fn end_to_end_consumers_drain_what_was_acknowledged() {
        let rule = StopRule {
            drain_ns: 1_000,
            ..StopRule::default()
        };
        rule.producers_running.store(1, Ordering::Relaxed);
        // The run's end does not stop them while producers run.
        assert!(!rule.should_stop(50, Some(10), true));
        rule.producers_running.store(0, Ordering::Relaxed);
        rule.producers_done_ns.store(100, Ordering::Relaxed);
        rule.acknowledged.store(10, Ordering::Relaxed);
        rule.consumed.store(9, Ordering::Relaxed);
        assert!(!rule.should_stop(500, Some(10), true));
        assert!(
            rule.should_stop(1_100, Some(10), true),
            "drain time is over"
        );
        rule.consumed.store(10, Ordering::Relaxed);
        assert!(rule.should_stop(500, Some(10), true));
    }

    #[test]
    fn partitions_read_to_their_end_are_not_fetched_again() {
        let state = FetchState {
            positions: RefCell::new(BTreeMap::from([(0, 10), (1, 5), (2, 0)])),
            end: Some(BTreeMap::from([(0, 10), (1, 7)])),
            revoked: Cell::new(false),
        };
        // 0 is at its end, 1 is not, 2 has no end offset: nothing to read.
        assert_eq!(state.wanted(), BTreeMap::from([(1, 5)]));
        state.positions.borrow_mut().insert(1, 7);
        assert!(state.wanted().is_empty());
        let open = FetchState {
            positions: RefCell::new(BTreeMap::from([(0, 10)])),
            ..FetchState::default()
        };
        assert_eq!(open.wanted(), BTreeMap::from([(0, 10)]));
    }

    #[test]
    fn fetch_requests_name_every_partition_at_its_offset() {
        let config = ConsumerConfig {
            topic: "t".into(),
            max_wait_ms: 500,
            fetch_max_bytes: 1 << 20,
            partition_max_bytes: 1 << 16,
            request_timeout: Duration::from_secs(1),
            security: ClientSecurity::default(),
            end_to_end: false,
        };
        let offsets = BTreeMap::from([(0, 5), (3, 9)]);
        let r = fetch_request(&config, &offsets, 100);
        assert_eq!(r.max_wait_ms, 100);
        assert_eq!(r.min_bytes, 1);
        assert_eq!(r.topics.len(), 1);
        let parts: Vec<(i32, i64, i32)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
            .collect();
        assert_eq!(parts, [(0, 5, 1 << 16), (3, 9, 1 << 16)]);
    }
}
