//! The producer side of `bench produce` and `bench e2e`: per connection, a
//! record generator, Kafka-style per-partition batching, and pipelined
//! Produce requests.
//!
//! How a connection works, and why it mirrors Kafka's producer:
//!
//! * **Generation** follows the [`Schedule`]: at `--rate`, record `i` is
//!   due at a fixed time and its latency is measured from then (open loop,
//!   no coordinated omission); without `--rate`, records are generated as
//!   fast as the buffer allows. `--buffer-bytes` bounds what is generated
//!   but not yet acknowledged (Kafka's `buffer.memory`): when the broker
//!   falls behind, generation waits — and at a fixed rate the waiting
//!   records keep their due times, so the stall shows in the latencies.
//! * **Batching** is the accumulator of Kafka's producer: one queue of
//!   batches per partition; a record joins the last batch of its
//!   partition until that reaches `--batch-bytes`. A batch is sent when it
//!   is full, when its first record is `--linger-ms` old, or when a newer
//!   batch waits behind it. Keyless records stick to one partition until
//!   its batch fills (Kafka's sticky partitioner), then move to the next;
//!   keyed records (`--key-cardinality`) go where murmur2 of the key says.
//! * **Requests** take at most one ready batch per partition, up to
//!   `--max-request-bytes`, with at most `--max-in-flight` requests
//!   outstanding per connection (Kafka's
//!   `max.in.flight.requests.per.connection`).
//! * **Failures** are counted, never retried: a partition error fails its
//!   batch's records; a timeout (`--request-timeout-ms`), a closed
//!   connection or a protocol error fails everything the connection has
//!   in flight or buffered and ends the connection. A load generator that
//!   retries hides the broker's behaviour; one that hangs hides it too.
//! * **Counting** matches the broker's: a record counts when its batch is
//!   acknowledged (acks=1/all) or written to the socket (acks=0); bytes
//!   are RecordBatch bytes as sent (compressed), which is what ringlog's
//!   `ringlog_produce_bytes_total` counts.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use ringlog_protocol::batch::BATCH_HEADER_BYTES;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{topic_name, Assignment};
use crate::conn::{Conn, Recv};
use crate::options::ClientSecurity;
use crate::records::{partition_of_key, write_key, BatchBuilder, Codec, Payload};
use crate::rng::Rng;
use crate::runner::{stopping, ThreadContext};
use crate::schedule::{Due, Schedule};
use ringlog_protocol::client::{correlation_id, decode_response, error_code_name};

/// Shortest wait of the connection loop: bounds how often an idle
/// connection wakes (at most 20,000 times a second).
pub const WAIT_MIN_NS: u64 = 50_000;

/// The producer settings every connection shares.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Topic written.
    pub topic: String,
    /// Kafka acks: 0, 1 or -1.
    pub acks: i16,
    /// Batch codec.
    pub codec: Codec,
    /// Value bytes per record (the due-time stamp included).
    pub message_bytes: usize,
    /// Target batch size (uncompressed).
    pub batch_bytes: usize,
    /// How long a batch may wait for more records.
    pub linger_ns: u64,
    /// Distinct keys; 0 sends keyless records.
    pub key_cardinality: u64,
    /// Requests outstanding per connection.
    pub max_in_flight: usize,
    /// Generated but unacknowledged bytes per connection.
    pub buffer_bytes: usize,
    /// Largest request (sum of its batches).
    pub max_request_bytes: usize,
    /// Time a request may take.
    pub request_timeout: Duration,
    /// TLS and SASL to the brokers (`--security-protocol`).
    pub security: ClientSecurity,
    /// Seed of keys and payloads.
    pub seed: u64,
    /// Whether acknowledged records are the measurement (`produce`) or
    /// load for consumers that measure (`e2e`: acknowledgement latencies
    /// go to the secondary histogram, records are counted when consumed).
    pub measured: bool,
}

/// One producer connection's plan.
#[derive(Clone, Debug)]
pub struct ProducerPlan {
    /// Broker and partitions.
    pub assignment: Assignment,
    /// Records per second (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// Due time of the first record, ns after the start.
    pub phase_ns: u64,
    /// Records to generate at most.
    pub limit: Option<u64>,
}

/// Splits a total rate and record count over `assignments`: equal rates,
/// phases staggered so the merged schedule is evenly spaced, counts
/// differing by at most one.
pub fn plans(
    assignments: &[Assignment],
    rate: Option<f64>,
    records: Option<u64>,
) -> Vec<ProducerPlan> {
    let n = assignments.len();
    assert!(n >= 1);
    assignments
        .iter()
        .enumerate()
        .map(|(i, assignment)| {
            let rate = rate.map(|r| r / n as f64);
            let phase_ns = rate.map_or(0, |r| ((i as f64 / n as f64) * 1e9 / r) as u64);
            let limit =
                records.map(|total| total / n as u64 + u64::from((i as u64) < total % n as u64));
            ProducerPlan {
                assignment: assignment.clone(),
                rate,
                phase_ns,
                limit,
            }
        })
        .collect()
}

/// Per-partition batch queues of one connection.
pub struct Accumulator {
    partitions: Vec<i32>,
    queues: Vec<VecDeque<BatchBuilder>>,
    /// Slots whose queue is not empty, in the order they became so.
    pending: VecDeque<usize>,
    batch_bytes: usize,
    record_bytes: usize,
    buffered_bytes: usize,
    buffered_records: u64,
}

impl Accumulator {
    /// Queues for `partitions`; batches close at `batch_bytes`, records
    /// are at most `record_bytes` each.
    pub fn new(partitions: Vec<i32>, batch_bytes: usize, record_bytes: usize) -> Accumulator {
        assert!(!partitions.is_empty());
        let queues = partitions.iter().map(|_| VecDeque::new()).collect();
        Accumulator {
            partitions,
            queues,
            pending: VecDeque::new(),
            batch_bytes,
            record_bytes,
            buffered_bytes: 0,
            buffered_records: 0,
        }
    }

    /// Partitions served.
    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// Bytes of records buffered (not yet drained).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Records buffered.
    pub fn buffered_records(&self) -> u64 {
        self.buffered_records
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn is_full(&self, batch: &BatchBuilder) -> bool {
        !batch.is_empty() && batch.size_bytes() + self.record_bytes > self.batch_bytes
    }

    /// Appends a record to the partition in `slot` through `push`; returns
    /// whether that batch is now full.
    pub fn append(&mut self, slot: usize, push: impl FnOnce(&mut BatchBuilder)) -> bool {
        let capacity = self.batch_bytes;
        let needs_new = self.queues[slot]
            .back()
            .is_none_or(|back| self.is_full(back));
        let queue = &mut self.queues[slot];
        if queue.is_empty() {
            self.pending.push_back(slot);
        }
        if needs_new {
            queue.push_back(BatchBuilder::new(capacity));
        }
        let batch = queue.back_mut().expect("just ensured");
        let before = batch.size_bytes();
        push(batch);
        let added = batch.size_bytes() - before;
        self.buffered_bytes += added;
        self.buffered_records += 1;
        let back = self.queues[slot].back().expect("non-empty");
        self.is_full(back)
    }

    fn sendable(&self, slot: usize, now_ns: u64, linger_ns: u64, flush: bool) -> bool {
        let queue = &self.queues[slot];
        let Some(front) = queue.front() else {
            return false;
        };
        flush
            || queue.len() > 1
            || self.is_full(front)
            || front
                .first_due_ns()
                .is_some_and(|due| now_ns >= due.saturating_add(linger_ns))
    }

    /// Takes at most one sendable batch per partition, up to
    /// `max_request_bytes` in total (at least one batch). `flush` makes
    /// every batch sendable (the end of the run).
    pub fn drain(
        &mut self,
        now_ns: u64,
        linger_ns: u64,
        flush: bool,
        max_request_bytes: usize,
    ) -> Vec<(i32, BatchBuilder)> {
        let mut out = Vec::new();
        let mut total = 0;
        // Each pending slot is looked at once.
        for _ in 0..self.pending.len() {
            let slot = self.pending.pop_front().expect("counted");
            let take = self.sendable(slot, now_ns, linger_ns, flush) && {
                let size = self.queues[slot]
                    .front()
                    .map_or(0, BatchBuilder::size_bytes);
                out.is_empty() || total + size <= max_request_bytes
            };
            if take {
                let batch = self.queues[slot].pop_front().expect("sendable");
                total += batch.size_bytes();
                self.buffered_bytes -= batch.size_bytes() - BATCH_HEADER_BYTES;
                self.buffered_records -= u64::from(batch.count());
                out.push((self.partitions[slot], batch));
            }
            if !self.queues[slot].is_empty() {
                self.pending.push_back(slot);
            }
        }
        out
    }

    /// The earliest time a batch becomes sendable by lingering, if any is
    /// waiting for that.
    pub fn next_linger_ns(&self, linger_ns: u64) -> Option<u64> {
        self.pending
            .iter()
            .filter_map(|&slot| self.queues[slot].front())
            .filter_map(BatchBuilder::first_due_ns)
            .map(|due| due.saturating_add(linger_ns))
            .min()
    }
}

struct SentBatch {
    partition: i32,
    records: u32,
    bytes: u64,
    due_ns: Vec<u64>,
}

struct InFlight {
    correlation_id: i32,
    sent_ns: u64,
    batches: Vec<SentBatch>,
    buffer_bytes: usize,
}

/// Runs every producer connection of this thread; returns when all have
/// finished, with the latest time one stopped generating. `acked` (end-
/// to-end runs) is advanced by every acknowledged record.
pub async fn thread_body(
    ctx: Rc<ThreadContext>,
    config: Arc<ProducerConfig>,
    plans: Arc<Vec<ProducerPlan>>,
    acked: Option<Arc<AtomicU64>>,
) -> u64 {
    let payload = Rc::new(Payload::new(config.seed, config.message_bytes));
    let tasks: Vec<_> = plans
        .iter()
        .filter(|plan| plan.assignment.thread == ctx.thread)
        .map(|plan| {
            glommio::spawn_local(connection(
                ctx.clone(),
                config.clone(),
                plan.clone(),
                payload.clone(),
                acked.clone(),
            ))
        })
        .collect();
    let mut end = 0;
    for task in tasks {
        end = end.max(task.await);
    }
    end
}

/// One producer connection from connect to its last answer; returns when
/// it stopped generating (ns after the start).
pub async fn connection(
    ctx: Rc<ThreadContext>,
    config: Arc<ProducerConfig>,
    plan: ProducerPlan,
    payload: Rc<Payload>,
    acked: Option<Arc<AtomicU64>>,
) -> u64 {
    let clock = ctx.clock;
    let label = format!(
        "producer connection {} to {}",
        plan.assignment.connection, plan.assignment.leader
    );
    let mut conn = match Conn::connect(
        &plan.assignment.leader,
        &config.security,
        config.request_timeout,
        config.max_in_flight + 1,
    )
    .await
    {
        Ok(conn) => conn,
        Err(why) => {
            let now = clock.now_ns();
            eprintln!("ringlog bench: {label}: {why}");
            ctx.recorder
                .borrow_mut()
                .failed(now, 1, &format!("connect: {why}"));
            return now;
        }
    };
    let version = match conn.version::<ProduceRequest>() {
        Ok(v) => v,
        Err(why) => {
            let now = clock.now_ns();
            eprintln!("ringlog bench: {label}: {why}");
            ctx.recorder.borrow_mut().failed(now, 1, &why);
            return now;
        }
    };
    let mut producer = Producer {
        ctx: ctx.clone(),
        topic: topic_name(&config.topic),
        schedule: Schedule::new(plan.rate, plan.phase_ns, clock.end_ns, plan.limit),
        rng: Rng::new(config.seed, plan.assignment.connection as u64),
        accumulator: Accumulator::new(
            plan.assignment.partitions.clone(),
            config.batch_bytes,
            BatchBuilder::record_bytes(
                (config.key_cardinality > 0).then_some(&[0u8; 20][..]),
                config.message_bytes,
            ),
        ),
        sticky: plan.assignment.connection % plan.assignment.partitions.len(),
        key: Vec::new(),
        in_flight: VecDeque::with_capacity(config.max_in_flight),
        in_flight_bytes: 0,
        generation_end_ns: None,
        acked,
        config,
        payload,
        version,
    };
    match producer.run(&mut conn).await {
        Ok(()) => {}
        Err(why) => {
            eprintln!("ringlog bench: {label}: {why}");
            producer.fail_all(&why);
        }
    }
    producer.generation_end_ns.unwrap_or_else(|| clock.now_ns())
}

struct Producer {
    ctx: Rc<ThreadContext>,
    config: Arc<ProducerConfig>,
    payload: Rc<Payload>,
    topic: TopicName,
    version: i16,
    schedule: Schedule,
    rng: Rng,
    accumulator: Accumulator,
    sticky: usize,
    key: Vec<u8>,
    in_flight: VecDeque<InFlight>,
    in_flight_bytes: usize,
    generation_end_ns: Option<u64>,
    acked: Option<Arc<AtomicU64>>,
}

impl Producer {
    fn generating(&self) -> bool {
        self.generation_end_ns.is_none()
    }

    fn buffer_full(&self) -> bool {
        self.accumulator.buffered_bytes() + self.in_flight_bytes >= self.config.buffer_bytes
    }

    /// Generates every record due by `now_ns` that fits the buffer.
    fn generate(&mut self, now_ns: u64) {
        if !self.generating() {
            return;
        }
        if stopping() {
            self.generation_end_ns = Some(now_ns);
            return;
        }
        let clock = self.ctx.clock;
        let partitions = self.accumulator.partitions().len();
        // Bounded by the buffer.
        while !self.buffer_full() {
            let due = match self.schedule.take(now_ns) {
                Due::Now(due) => due,
                Due::At(_) => return,
                Due::Done => {
                    self.generation_end_ns = Some(now_ns);
                    return;
                }
            };
            let cardinality = self.config.key_cardinality;
            let slot = if cardinality > 0 {
                let n = self.rng.below(cardinality);
                write_key(n, cardinality, &mut self.key);
                partition_of_key(&self.key, partitions)
            } else {
                self.sticky
            };
            let wall_ns = clock.wall_ns(due);
            let key = (cardinality > 0).then_some(self.key.as_slice());
            let tail = self.payload.tail(&mut self.rng);
            let full = self.accumulator.append(slot, |batch| {
                batch.push(key, Some(wall_ns), tail, (wall_ns / 1_000_000) as i64, due);
            });
            if full && cardinality == 0 {
                self.sticky = (self.sticky + 1) % partitions;
            }
        }
    }

    /// Sends requests while the in-flight limit allows and batches are
    /// ready.
    async fn send(&mut self, conn: &mut Conn, now_ns: u64) -> Result<(), String> {
        let config = self.config.clone();
        // Bounded by the in-flight limit (acks=0 requests complete at once,
        // but each drains at least one batch).
        while self.in_flight.len() < config.max_in_flight {
            let flush = !self.generating();
            let batches =
                self.accumulator
                    .drain(now_ns, config.linger_ns, flush, config.max_request_bytes);
            if batches.is_empty() {
                return Ok(());
            }
            let mut data = Vec::with_capacity(batches.len());
            let mut sent = Vec::with_capacity(batches.len());
            let mut buffer_bytes = 0;
            for (partition, builder) in batches {
                buffer_bytes += builder.size_bytes();
                let records = builder.count();
                match builder.finish(config.codec) {
                    Ok(batch) => {
                        data.push(
                            PartitionProduceData::default()
                                .with_index(partition)
                                .with_records(Some(batch.bytes.clone())),
                        );
                        sent.push(SentBatch {
                            partition,
                            records: batch.records,
                            bytes: batch.bytes.len() as u64,
                            due_ns: batch.due_ns,
                        });
                    }
                    Err(why) => {
                        self.ctx
                            .recorder
                            .borrow_mut()
                            .failed(now_ns, u64::from(records), &why)
                    }
                }
            }
            if data.is_empty() {
                continue;
            }
            let request = ProduceRequest::default()
                .with_acks(config.acks)
                .with_timeout_ms(
                    i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
                )
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(self.topic.clone())
                    .with_partition_data(data)]);
            let deadline = self.ctx.clock.instant(now_ns) + config.request_timeout;
            let in_flight = InFlight {
                correlation_id: 0,
                sent_ns: self.ctx.clock.now_ns(),
                batches: sent,
                buffer_bytes,
            };
            // Counted before the write so a failed write fails them too.
            self.in_flight_bytes += buffer_bytes;
            self.in_flight.push_back(in_flight);
            let correlation_id = conn.send(self.version, &request, deadline).await?;
            if config.acks == 0 {
                let done = self.in_flight.pop_back().expect("just pushed");
                self.complete(done, &HashMap::new());
            } else {
                self.in_flight
                    .back_mut()
                    .expect("just pushed")
                    .correlation_id = correlation_id;
            }
        }
        Ok(())
    }

    /// Books a finished request: `errors` maps partitions to their error
    /// code (absent: acks=0, nothing to check).
    fn complete(&mut self, done: InFlight, errors: &HashMap<i32, i16>) {
        let now = self.ctx.clock.now_ns();
        self.in_flight_bytes -= done.buffer_bytes;
        let mut recorder = self.ctx.recorder.borrow_mut();
        if self.config.acks != 0 && self.config.measured {
            recorder.secondary(now, [now.saturating_sub(done.sent_ns)]);
        }
        for batch in done.batches {
            let code = if self.config.acks == 0 {
                Some(0)
            } else {
                errors.get(&batch.partition).copied()
            };
            match code {
                Some(0) => {
                    let latencies = batch.due_ns.iter().map(|&due| now.saturating_sub(due));
                    if self.config.measured {
                        recorder.completed(now, u64::from(batch.records), batch.bytes, latencies);
                    } else {
                        recorder.secondary(now, latencies);
                    }
                    if let Some(acked) = &self.acked {
                        acked.fetch_add(u64::from(batch.records), Ordering::Relaxed);
                    }
                }
                Some(code) => {
                    recorder.failed(now, u64::from(batch.records), &error_code_name(code))
                }
                None => recorder.failed(
                    now,
                    u64::from(batch.records),
                    &format!("no answer for partition {}", batch.partition),
                ),
            }
        }
    }

    fn handle(&mut self, frame: Bytes) -> Result<(), String> {
        let front = self
            .in_flight
            .pop_front()
            .ok_or("an answer arrived with no request in flight")?;
        let expected = front.correlation_id;
        if correlation_id(&frame) != Some(expected) {
            self.in_flight.push_front(front);
            return Err(format!(
                "answer {:?} arrived while request {expected} was next",
                correlation_id(&frame)
            ));
        }
        let response = match decode_response::<ProduceRequest>(self.version, expected, frame) {
            Ok(response) => response,
            Err(why) => {
                self.in_flight.push_front(front);
                return Err(why);
            }
        };
        let mut errors = HashMap::new();
        for topic in &response.responses {
            for p in &topic.partition_responses {
                errors.insert(p.index, p.error_code);
            }
        }
        self.complete(front, &errors);
        Ok(())
    }

    /// Fails everything in flight and buffered with `why` (the connection
    /// is gone).
    fn fail_all(&mut self, why: &str) {
        let now = self.ctx.clock.now_ns();
        let mut count = self.accumulator.buffered_records();
        for request in self.in_flight.drain(..) {
            count += request
                .batches
                .iter()
                .map(|b| u64::from(b.records))
                .sum::<u64>();
        }
        // A connection that fails with nothing pending still counts once.
        self.ctx
            .recorder
            .borrow_mut()
            .failed(now, count.max(1), why);
        self.generation_end_ns.get_or_insert(now);
    }

    async fn run(&mut self, conn: &mut Conn) -> Result<(), String> {
        let clock = self.ctx.clock;
        let timeout_ns = self.config.request_timeout.as_nanos() as u64;
        // Each round generates, sends, and waits (bounded by a deadline)
        // for an answer or the next due record; the loop ends when the
        // schedule is done and everything is answered.
        loop {
            let now = clock.now_ns();
            self.generate(now);
            self.send(conn, now).await?;
            if !self.generating() && self.accumulator.is_empty() && self.in_flight.is_empty() {
                return Ok(());
            }
            let mut wake = u64::MAX;
            if self.generating() && !self.buffer_full() {
                match self.schedule.peek(now) {
                    Due::Now(_) => wake = now,
                    Due::At(at) => wake = at,
                    Due::Done => {}
                }
                if let Some(end) = clock.end_ns {
                    wake = wake.min(end);
                }
            }
            if self.in_flight.len() < self.config.max_in_flight {
                if let Some(at) = self.accumulator.next_linger_ns(self.config.linger_ns) {
                    wake = wake.min(at);
                }
            }
            let timeout_at = self.in_flight.front().map(|f| f.sent_ns + timeout_ns);
            if let Some(at) = timeout_at {
                wake = wake.min(at);
            }
            let wake = wake.max(now + WAIT_MIN_NS);
            if self.in_flight.is_empty() {
                if wake == u64::MAX {
                    return Ok(());
                }
                glommio::timer::sleep(Duration::from_nanos(wake - now)).await;
                continue;
            }
            match conn.recv(clock.instant(wake)).await {
                Recv::Frame(frame) => self.handle(frame)?,
                Recv::TimedOut => {
                    if timeout_at.is_some_and(|at| clock.now_ns() >= at) {
                        return Err(format!(
                            "request timed out: no answer within {} ms",
                            self.config.request_timeout.as_millis()
                        ));
                    }
                }
                Recv::Closed(why) => return Err(why),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(i: usize, partitions: Vec<i32>) -> Assignment {
        Assignment {
            connection: i,
            thread: 0,
            leader: "b:1".into(),
            partitions,
        }
    }

    fn push(acc: &mut Accumulator, slot: usize, due: u64) -> bool {
        acc.append(slot, |b| b.push(None, Some(due), &[b'x'; 92], 0, due))
    }

    #[test]
    fn plans_split_rate_and_records_evenly() {
        let a: Vec<Assignment> = (0..4).map(|i| assignment(i, vec![i as i32])).collect();
        let p = plans(&a, Some(4000.0), Some(10));
        assert!(p.iter().all(|p| p.rate == Some(1000.0)));
        let phases: Vec<u64> = p.iter().map(|p| p.phase_ns).collect();
        assert_eq!(phases, [0, 250_000, 500_000, 750_000]);
        let limits: Vec<Option<u64>> = p.iter().map(|p| p.limit).collect();
        assert_eq!(limits, [Some(3), Some(3), Some(2), Some(2)]);
        let p = plans(&a, None, None);
        assert!(p
            .iter()
            .all(|p| p.rate.is_none() && p.limit.is_none() && p.phase_ns == 0));
    }

    #[test]
    fn batches_fill_to_the_batch_size_then_a_new_one_opens() {
        // 100-byte values: each record is ~105 bytes encoded, bounded by 152.
        let mut acc = Accumulator::new(vec![7], 1000, BatchBuilder::record_bytes(None, 100));
        let mut fulls = 0;
        for due in 0..20 {
            fulls += usize::from(push(&mut acc, 0, due));
        }
        assert!(fulls >= 2, "{fulls}");
        assert_eq!(acc.buffered_records(), 20);
        // Not lingered yet at t=0 with a long linger, but a full batch with
        // another behind it is sendable; one batch per partition per drain.
        let drained = acc.drain(0, 1_000_000, false, usize::MAX);
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].0, 7);
        let first = drained[0].1.count();
        assert!(drained[0].1.size_bytes() <= 1000);
        assert_eq!(acc.buffered_records(), 20 - u64::from(first));
    }

    #[test]
    fn linger_and_flush_release_partial_batches() {
        let mut acc = Accumulator::new(vec![0, 1], 1 << 20, BatchBuilder::record_bytes(None, 100));
        push(&mut acc, 0, 1_000);
        push(&mut acc, 1, 3_000);
        assert!(acc.drain(1_500, 5_000, false, usize::MAX).is_empty());
        assert_eq!(acc.next_linger_ns(5_000), Some(6_000));
        let at_6000 = acc.drain(6_000, 5_000, false, usize::MAX);
        assert_eq!(at_6000.iter().map(|b| b.0).collect::<Vec<_>>(), [0]);
        assert_eq!(acc.next_linger_ns(5_000), Some(8_000));
        let flushed = acc.drain(6_000, 5_000, true, usize::MAX);
        assert_eq!(flushed.iter().map(|b| b.0).collect::<Vec<_>>(), [1]);
        assert!(acc.is_empty());
        assert_eq!(acc.buffered_bytes(), 0);
        assert_eq!(acc.buffered_records(), 0);
        assert_eq!(acc.next_linger_ns(5_000), None);
    }

    #[test]
    fn requests_respect_the_size_limit_but_carry_at_least_one_batch() {
        let mut acc = Accumulator::new(
            vec![0, 1, 2],
            1 << 20,
            BatchBuilder::record_bytes(None, 100),
        );
        for slot in 0..3 {
            for due in 0..10 {
                push(&mut acc, slot, due);
            }
        }
        let one = acc.drain(0, 0, false, 1);
        assert_eq!(
            one.len(),
            1,
            "a batch larger than the limit still goes alone"
        );
        let size = one[0].1.size_bytes();
        let two = acc.drain(0, 0, false, 2 * size);
        assert_eq!(two.len(), 2);
        assert!(acc.is_empty());
    }
}
